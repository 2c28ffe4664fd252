"""record_sink.py - an SMTP sink that records each message it accepts, for
tests/integ/cases/840-deliver-kill.sh (duplicates after killed workers).

    record_sink.py PORT LOG [--dot-delay SECONDS]

It listens on 127.0.0.1:PORT, one thread a connection, offers PIPELINING
and 8BITMIME, accepts every sender and recipient, and appends one line
per event to LOG, written, flushed and fsynced before the reply that
follows it, so the log holds every message the client may believe
delivered (and maybe one it does not: one whose 250 it never read):

    CONN n PORT         connection n, from the client's port PORT
    MSG n MESSAGE-ID    connection n's message accepted (before its 250)
    QUIT n              the client said QUIT
    DROP n              the client went away without QUIT

--dot-delay: wait this long after the final dot before the message is
accepted and answered (a server's own fsync; it also makes a run last
long enough to be interrupted at chosen points).

Every read is bounded: lines of at most 4096 bytes, messages of at most
1 MiB; a client that exceeds either is dropped.
"""
import argparse
import os
import re
import socket
import socketserver
import threading
import time

LINE_MAX = 4096
MSG_MAX = 1 << 20

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("log")
ap.add_argument("--dot-delay", type=float, default=0.0)
args = ap.parse_args()

log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
log_mu = threading.Lock()
conn_seq = [0]
MID = re.compile(rb"^message-id:\s*(<[^>\r\n]{1,200}>)", re.I | re.M)


def record(line):
    with log_mu:
        os.write(log_fd, (line + "\n").encode())
        os.fsync(log_fd)


class Gone(Exception):
    pass


class Session(socketserver.StreamRequestHandler):
    def line(self):
        ln = self.rfile.readline(LINE_MAX + 1)
        if not ln:
            raise Gone()
        if len(ln) > LINE_MAX:
            raise Gone()
        return ln

    def say(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        with log_mu:
            conn_seq[0] += 1
            n = conn_seq[0]
        record("CONN %d %d" % (n, self.client_address[1]))
        try:
            self.session(n)
        except (Gone, OSError):
            record("DROP %d" % n)

    def session(self, n):
        self.say("220 sink.test.example ESMTP record_sink")
        while True:
            cmd = self.line().rstrip(b"\r\n")
            verb = cmd[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.say("250-sink.test.example\r\n250-PIPELINING\r\n"
                         "250 8BITMIME")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.say("250 2.0.0 Ok")
            elif verb == b"DATA":
                self.say("354 go ahead")
                self.data(n)
            elif verb == b"QUIT":
                record("QUIT %d" % n)
                self.say("221 2.0.0 Bye")
                return
            else:
                self.say("502 5.5.2 what")

    def data(self, n):
        body = []
        size = 0
        while True:
            ln = self.line()
            if ln in (b".\r\n", b".\n"):
                break
            size += len(ln)
            if size > MSG_MAX:
                raise Gone()
            body.append(ln[1:] if ln.startswith(b".") else ln)
        if args.dot_delay > 0:
            time.sleep(args.dot_delay)
        m = MID.search(b"".join(body))
        record("MSG %d %s" % (n, m.group(1).decode("ascii", "replace")
                              if m else "none"))
        self.say("250 2.0.0 Ok: recorded")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


with Server(("127.0.0.1", args.port), Session) as srv:
    srv.serve_forever()

"""bdat_sink.py - an SMTP sink that records how each message came: DATA or
BDAT, the size of every chunk, and the octets, for
tests/integ/cases/931-deliver-bdat.sh.

    bdat_sink.py IP PORT DIR [--chunking] [--binarymime]

It listens on IP:PORT, one thread a connection, offers PIPELINING,
8BITMIME and, when asked, CHUNKING and BINARYMIME. Each message accepted
(or refused at a chunk) appends one JSON line to DIR/log:

    {"how": "DATA"|"BDAT", "mail": "MAIL FROM:...", "rcpt": [...],
     "chunks": [[size, last], ...], "sha": hex of the octets (after
     un-stuffing for DATA), "len": n, "result": "250 ..."}

and the octets go to DIR/N.eml. Commands are logged too, one per line,
in DIR/cmds ("RSET", "BDAT 262144", ...), so the test sees the RSET
after a refused chunk. A recipient whose local part is "chunk5xx" makes
the first chunk's reply 554 5.6.0; "chunk4xx" makes it 452 4.3.1 (the
later chunks, pipelined, are read and answered 503).

Every read is bounded: lines of at most 4096 octets, messages of at most
8 MiB; a client past either is dropped.
"""
import argparse
import hashlib
import json
import os
import socket
import socketserver
import threading

LINE_MAX = 4096
MSG_MAX = 8 << 20

ap = argparse.ArgumentParser()
ap.add_argument("ip")
ap.add_argument("port", type=int)
ap.add_argument("dir")
ap.add_argument("--chunking", action="store_true")
ap.add_argument("--binarymime", action="store_true")
args = ap.parse_args()

mu = threading.Lock()
seq = [0]


def log(name, line):
    with mu:
        with open(os.path.join(args.dir, name), "a") as f:
            f.write(line + "\n")


def record(rec, data):
    with mu:
        seq[0] += 1
        n = seq[0]
        with open(os.path.join(args.dir, "%d.eml" % n), "wb") as f:
            f.write(data)
        rec["n"] = n
        rec["sha"] = hashlib.sha256(data).hexdigest()
        rec["len"] = len(data)
        with open(os.path.join(args.dir, "log"), "a") as f:
            f.write(json.dumps(rec) + "\n")


class Drop(Exception):
    pass


class H(socketserver.BaseRequestHandler):
    def setup(self):
        self.buf = b""
        self.request.settimeout(60)

    def fill(self):
        d = self.request.recv(65536)
        if not d:
            raise Drop()
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > LINE_MAX:
                raise Drop()
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("latin-1")

    def octets(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def say(self, s):
        self.request.sendall(s.encode() + b"\r\n")

    def handle(self):
        try:
            self.session()
        except (Drop, OSError):
            pass

    def reset(self):
        self.mail, self.rcpt, self.chunks, self.data = None, [], [], b""
        self.failed = None

    def session(self):
        self.say("220 sink.test ESMTP")
        self.reset()
        while True:
            l = self.line()
            verb = l.split(" ", 1)[0].upper()
            log("cmds", l if verb != "BDAT" else l)
            if verb == "EHLO":
                ext = ["PIPELINING", "8BITMIME", "SIZE 0"]
                if args.chunking:
                    ext.append("CHUNKING")
                if args.binarymime:
                    ext.append("BINARYMIME")
                self.say("250-sink.test")
                for i, e in enumerate(ext):
                    self.say("250%s%s" % ("-" if i + 1 < len(ext) else " ", e))
            elif verb == "MAIL":
                self.reset()
                self.mail = l
                self.say("250 2.1.0 ok")
            elif verb == "RCPT":
                self.rcpt.append(l)
                self.say("250 2.1.5 ok")
            elif verb == "DATA":
                self.say("354 go")
                body = b""
                while True:
                    x = self.line().encode("latin-1")
                    if x == b".":
                        break
                    if x.startswith(b"."):
                        x = x[1:]
                    body += x + b"\r\n"
                    if len(body) > MSG_MAX:
                        raise Drop()
                self.say("250 2.0.0 queued as D%d" % (seq[0] + 1))
                record({"how": "DATA", "mail": self.mail, "rcpt": self.rcpt,
                        "chunks": [], "result": "250"}, body)
                self.reset()
            elif verb == "BDAT":
                parts = l.split()
                n = int(parts[1])
                last = len(parts) > 2 and parts[2].upper() == "LAST"
                if n > MSG_MAX:
                    raise Drop()
                d = self.octets(n)
                if self.failed is not None:
                    self.say("503 5.5.1 after a refused chunk")
                    continue
                if self.mail is None:
                    self.say("503 5.5.1 no transaction")
                    continue
                self.chunks.append([n, last])
                self.data += d
                if len(self.data) > MSG_MAX:
                    raise Drop()
                bad = None
                if len(self.chunks) == 1:
                    if any("<chunk5xx@" in r for r in self.rcpt):
                        bad = "554 5.6.0 chunk refused"
                    elif any("<chunk4xx@" in r for r in self.rcpt):
                        bad = "452 4.3.1 chunk refused for now"
                if bad is not None:
                    self.failed = bad
                    self.say(bad)
                    record({"how": "BDAT", "mail": self.mail,
                            "rcpt": self.rcpt, "chunks": self.chunks,
                            "result": bad}, self.data)
                    continue
                if last:
                    self.say("250 2.0.0 queued as B%d" % (seq[0] + 1))
                    record({"how": "BDAT", "mail": self.mail,
                            "rcpt": self.rcpt, "chunks": self.chunks,
                            "result": "250"}, self.data)
                    self.reset()
                else:
                    self.say("250 2.0.0 %d octets" % n)
            elif verb == "RSET":
                self.reset()
                self.say("250 2.0.0 ok")
            elif verb == "QUIT":
                self.say("221 2.0.0 bye")
                return
            else:
                self.say("250 2.0.0 ok")


class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


S((args.ip, args.port), H).serve_forever()

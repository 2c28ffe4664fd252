"""deliver_fail_srv.py - a small SMTP server that fails on purpose, for
tests/integ/cases/310-deliver-failures.sh (and the sites of 530-etrn-site.sh
and 540-backup-mx.sh, the destinations of 800-disk-full.sh and
805-map-full.sh).

    deliver_fail_srv.py PORT LOG [options]

It listens on 127.0.0.1:PORT (--addr: another address), one thread a
connection, and appends one line per event to LOG (flushed at once, so the
case can poll it):

    ACCEPT n            connection n accepted
    RCPT <addr> CODE    the reply given to that RCPT
    STALL n             the final dot of session n arrived; no reply yet
    ABORTED n           the client went away while we stalled
    MSG n addr addr...  a message accepted (250 to the dot) with its
                        accepted recipients
    421 n CMD           a 421 was given to CMD and the connection closed
    QUIT n

Options (the control file CTRL switches the misbehaviour off once it
exists, so a case can make the server "behave" without restarting it):

    --ctrl FILE         the control file
    --fail-first N      RCPT: 451 4.3.0 the first N times an address is
                        seen (across sessions), 250 afterwards
    --bad TEXT          RCPT whose address contains TEXT: 550 5.1.1
    --421 CMD           MAIL, RCPT, DATA or DOT (the final dot): 421 4.3.2
                        and close, while CTRL does not exist
    --silent            accept and never say a word (until the client
                        closes)
    --stall-dot         do not answer the final dot while CTRL does not
                        exist; notice the client going away meanwhile
    --no-pipelining     do not offer PIPELINING
    --temp TEXT         RCPT whose address contains TEXT: 451 4.2.0, always
    --dump DIR          write each accepted message to DIR/N.K.eml (as
                        received, dot-stuffing undone, CRLF) and its
                        envelope to DIR/N.K.env ("from <a>", "to <b>"...)
    --dsn               offer the DSN extension
    --addr IP           listen on IP instead of 127.0.0.1
"""
import argparse
import os
import select
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("log")
ap.add_argument("--ctrl", default="")
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--bad", default="")
ap.add_argument("--421", dest="q421", default="")
ap.add_argument("--silent", action="store_true")
ap.add_argument("--stall-dot", action="store_true")
ap.add_argument("--no-pipelining", action="store_true")
ap.add_argument("--temp", default="")
ap.add_argument("--dump", default="")
ap.add_argument("--dsn", action="store_true")
ap.add_argument("--addr", default="127.0.0.1")
opt = ap.parse_args()

lock = threading.Lock()
logf = open(opt.log, "a")
seen = {}
nconn = [0]
nmsg = [0]


def log(text):
    with lock:
        logf.write(text + "\n")
        logf.flush()


def behaving():
    return opt.ctrl != "" and os.path.exists(opt.ctrl)


def peer_gone(c):
    """True when the client has closed (EOF or reset) - never blocks."""
    try:
        r, _, _ = select.select([c], [], [], 0)
        if not r:
            return False
        return c.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Session:
    def __init__(self, c, n):
        self.c = c
        self.n = n
        self.buf = b""

    def send(self, *lines):
        self.c.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

    def rawline(self):
        while b"\r\n" not in self.buf:
            d = self.c.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("utf-8", "surrogateescape")

    def line(self):
        return self.rawline().encode("utf-8", "surrogateescape").decode(
            "utf-8", "replace")

    def data(self):
        lines = []
        while True:
            l = self.rawline()
            if l == ".":
                return lines
            lines.append(l[1:] if l.startswith(".") else l)


def session(s):
    n = s.n
    if opt.silent:
        # Never speak; wait (bounded) for the client to give up.
        end = time.time() + 120
        while time.time() < end and not peer_gone(s.c):
            time.sleep(0.05)
        return
    s.send("220 failsrv.test ESMTP")
    rcpts = []
    sender = ""
    while True:
        cmd = s.line()
        verb = cmd.split(" ", 1)[0].upper()
        q421 = opt.q421.upper() if not behaving() else ""
        if verb == q421:
            log("421 %d %s" % (n, verb))
            s.send("421 4.3.2 failsrv.test closing, try later")
            return
        if verb in ("EHLO", "HELO"):
            ext = ["ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 10000000"]
            if opt.dsn:
                ext.insert(0, "DSN")
            if not opt.no_pipelining:
                ext.insert(0, "PIPELINING")
            if verb == "HELO":
                s.send("250 failsrv.test")
            else:
                s.send(*(["250-failsrv.test"] + ["250-" + e for e in ext[:-1]]
                         + ["250 " + ext[-1]]))
        elif verb == "MAIL":
            rcpts = []
            sender = cmd[cmd.find("<") + 1:cmd.find(">")]
            s.send("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = cmd[cmd.find("<") + 1:cmd.find(">")].lower()
            k = seen.get(addr, 0)
            seen[addr] = k + 1
            if opt.bad and opt.bad in addr:
                code, text = 550, "550 5.1.1 <%s>: no such user" % addr
            elif opt.temp and opt.temp in addr:
                code, text = 451, "451 4.2.0 <%s>: mailbox busy" % addr
            elif k < opt.fail_first:
                code, text = 451, "451 4.3.0 <%s>: try again later" % addr
            else:
                code, text = 250, "250 2.1.5 ok"
                rcpts.append(addr)
            log("RCPT <%s> %d" % (addr, code))
            s.send(text)
        elif verb == "DATA":
            if not rcpts:
                s.send("554 5.5.1 no valid recipients")
                continue
            s.send("354 go ahead")
            body = s.data()
            if opt.q421.upper() == "DOT" and not behaving():
                log("421 %d DOT" % n)
                s.send("421 4.3.2 failsrv.test closing, try later")
                return
            if opt.stall_dot and not behaving():
                log("STALL %d" % n)
                end = time.time() + 120
                while time.time() < end:
                    if peer_gone(s.c):
                        log("ABORTED %d" % n)
                        return
                    if behaving():
                        break
                    time.sleep(0.05)
                # The client may have gone just as CTRL appeared.
                time.sleep(0.1)
                if peer_gone(s.c):
                    log("ABORTED %d" % n)
                    return
            if opt.dump:
                with lock:
                    nmsg[0] += 1
                    k = nmsg[0]
                base = os.path.join(opt.dump, "%d.%d" % (n, k))
                with open(base + ".env.tmp", "w") as f:
                    f.write("from <%s>\n" % sender)
                    for r in rcpts:
                        f.write("to <%s>\n" % r)
                with open(base + ".eml", "w", encoding="utf-8",
                          errors="surrogateescape", newline="") as f:
                    f.write("".join(l + "\r\n" for l in body))
                os.rename(base + ".env.tmp", base + ".env")
            log("MSG %d %s" % (n, " ".join(rcpts)))
            rcpts = []
            s.send("250 2.0.0 queued")
        elif verb == "RSET":
            rcpts = []
            s.send("250 2.0.0 ok")
        elif verb == "NOOP":
            s.send("250 2.0.0 ok")
        elif verb == "QUIT":
            log("QUIT %d" % n)
            s.send("221 2.0.0 bye")
            return
        else:
            s.send("502 5.5.1 what")


def run(c, n):
    try:
        session(Session(c, n))
    except (EOFError, OSError):
        pass
    try:
        c.close()
    except OSError:
        pass


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((opt.addr, opt.port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    with lock:
        nconn[0] += 1
        n = nconn[0]
    log("ACCEPT %d" % n)
    threading.Thread(target=run, args=(c, n), daemon=True).start()

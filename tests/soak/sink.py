"""sink.py - the soak's misbehaving receivers (tests/soak/run.sh).

    sink.py PORT LOG (--defer PCT | --reject PCT)

An SMTP server on 127.0.0.1:PORT, one thread a connection, offering
PIPELINING (replies are written in order, one per command, so a
pipelining client is served as it sends). Each RCPT is answered by a
deterministic rule, so a run can be replayed and its failures predicted:

  --defer PCT   451 4.3.0 for about PCT % of RCPT commands: the hash of
                "address:n", n = how often this address was seen before,
                so each retry of a deferred recipient draws again (one
                that is deferred is not deferred forever).
  --reject PCT  550 5.1.1 for about PCT % of addresses: the hash of the
                address alone, so a recipient is refused every time.

LOG gets one line per event (appended and flushed, so it survives a
kill): "DEFER addr n", "REJECT addr", and for each accepted message one
"ACCEPT addr" per accepted recipient, written only once the final dot
has arrived and just before 250 is sent (a message we answered 250 to is
in the log).
"""
import argparse
import hashlib
import socket
import sys
import threading

LINE_MAX = 4096		# a command or text line, more is a broken client

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("log")
ap.add_argument("--defer", type=int, default=0)
ap.add_argument("--reject", type=int, default=0)
opt = ap.parse_args()

lock = threading.Lock()
logf = open(opt.log, "a")
seen = {}


def log(lines):
    with lock:
        logf.write("".join(l + "\n" for l in lines))
        logf.flush()


def draw(key):
    """A number in 0..99 fixed by key."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100


def rcpt_reply(addr):
    if opt.defer:
        with lock:
            n = seen.get(addr, 0)
            seen[addr] = n + 1
        if draw("%s:%d" % (addr, n)) < opt.defer:
            log(["DEFER %s %d" % (addr, n)])
            return "451 4.3.0 soak deferral, try again", False
    if opt.reject and draw(addr) < opt.reject:
        log(["REJECT %s" % addr])
        return "550 5.1.1 soak rejection", False
    return "250 2.1.5 ok", True


def session(c):
    rf = c.makefile("rb")

    def send(text):
        c.sendall(text.encode() + b"\r\n")

    def line():
        l = rf.readline(LINE_MAX)
        if not l:
            raise EOFError
        return l.rstrip(b"\r\n").decode("utf-8", "replace")

    send("220 soaksink.test ESMTP")
    rcpts = []
    while True:
        cmd = line()
        verb = cmd.split(" ", 1)[0].upper()
        if verb == "EHLO":
            send("250-soaksink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                 "250 ENHANCEDSTATUSCODES")
        elif verb == "HELO":
            send("250 soaksink.test")
        elif verb == "MAIL":
            rcpts = []
            send("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = cmd[cmd.find("<") + 1:cmd.find(">")].lower()
            text, ok = rcpt_reply(addr)
            if ok:
                rcpts.append(addr)
            send(text)
        elif verb == "DATA":
            if not rcpts:
                send("554 5.5.1 no valid recipients")
                continue
            send("354 go ahead")
            while line() != ".":
                pass
            log(["ACCEPT %s" % r for r in rcpts])
            rcpts = []
            send("250 2.0.0 queued")
        elif verb == "RSET":
            rcpts = []
            send("250 2.0.0 ok")
        elif verb == "NOOP":
            send("250 2.0.0 ok")
        elif verb == "QUIT":
            send("221 2.0.0 bye")
            return
        else:
            send("502 5.5.1 what")


def run(c):
    # Replies go out as written: with Nagle a pipelined client's second
    # reply waits for the ACK of the first, which the client delays
    # (40 ms a message, and the soak would measure that instead of us).
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        session(c)
    except (EOFError, OSError):
        pass
    try:
        c.close()
    except OSError:
        pass


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", opt.port))
srv.listen(128)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=run, args=(c,), daemon=True).start()

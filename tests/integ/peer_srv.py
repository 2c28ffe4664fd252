"""peer_srv.py - a receiving SMTP server that misbehaves on purpose, for
tests/integ/cases/810-peer-server.sh (postern's delivery client against
hostile servers).

    peer_srv.py LOG MODE:IP:PORT[:NAME] [MODE:IP:PORT[:NAME]...]

One listener per MODE:IP:PORT, one thread a connection; its log lines say
NAME (default: MODE) where they say mode below. Every event is one
line in LOG (flushed at once, so that the case can poll it), stamped with
the monotonic clock so that the case can measure the client's timeouts:

    T ACCEPT mode n          connection n of mode accepted
    T CMD mode n VERB        a command line arrived (its first word)
    T SENT mode n BYTES      what a flood sent, once it stops
    T CLOSED mode n how      the client closed (eof, reset) or we did
    T MSG mode n             a whole message was received (the dot)

Modes, each one way a server can misbehave (a normal dialogue otherwise:
EHLO with PIPELINING, 250 to MAIL and RCPT, 354, 250 after the dot):

    bigline     the greeting is "220 " and 10 MB of text without an end
                of line
    manylines   the reply to EHLO is 10 MB of "250-" continuation lines
    slowlines   the reply to EHLO never ends: "250-..." every 0.3 s
    stall       the reply to MAIL FROM stops after its first line, in
                the middle of the second
    early       three "250" replies nobody asked for right after the
                greeting (in the same write)
    early421    the reply to EHLO, and in the same write a 421 (going
                away, which RFC 5321 §3.8 allows at any time)
    early354    no PIPELINING; DATA gets its 354 and, in the same write,
                "250" for the message the client has not sent yet
    drop354     DATA gets its 354, then the connection is closed
    tlsgarbage  offers STARTTLS, answers it with 220, then sends 64 KB of
                binary garbage (control bytes, NUL, ESC, CR, LF) instead
                of a TLS handshake, then stays silent
    tlssilent   offers STARTTLS, answers it with 220, then says nothing
    tlswarm     as tlsgarbage, but a second passes before the 220 to
                STARTTLS (the case keeps every worker busy with one at
                once, so that each has made its TLS context before the
                memory is measured)
    nogreet     accepts and never says a word
    good        behaves (a control)

A flood stops when the client stops reading or goes away; the case checks
in LOG how much went out (SENT).
"""
import socket
import sys
import threading
import time

FLOOD = 10 * 1024 * 1024

lock = threading.Lock()
logf = open(sys.argv[1], "a")


def log(*words):
    with lock:
        logf.write("%.3f %s\n" % (time.monotonic(),
                                  " ".join(str(w) for w in words)))
        logf.flush()


class Gone(Exception):
    pass


class Session:
    def __init__(self, c, mode, name, n):
        self.c = c
        self.mode = mode
        self.name = name
        self.n = n
        self.buf = b""

    def send(self, data):
        try:
            self.c.sendall(data)
        except OSError:
            raise Gone("reset")

    def line(self):
        while b"\n" not in self.buf:
            try:
                d = self.c.recv(65536)
            except OSError:
                raise Gone("reset")
            if not d:
                raise Gone("eof")
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l.rstrip(b"\r").decode("latin-1")

    def flood(self, chunk, total):
        """Send chunk until total bytes went out or the client stopped
        reading (no progress for 5 s) or left."""
        sent = 0
        self.c.settimeout(5)
        try:
            while sent < total:
                try:
                    self.c.sendall(chunk)
                except socket.timeout:
                    break
                except OSError:
                    break
                sent += len(chunk)
        finally:
            self.c.settimeout(None)
            log("SENT", self.name, self.n, sent)

    def wait_gone(self):
        """Read (and drop) until the client closes."""
        while True:
            try:
                d = self.c.recv(65536)
            except OSError:
                raise Gone("reset")
            if not d:
                raise Gone("eof")

    def ehlo_reply(self, pipelining=True, starttls=False):
        r = b"250-peer.test.example\r\n"
        if pipelining:
            r += b"250-PIPELINING\r\n"
        if starttls:
            r += b"250-STARTTLS\r\n"
        return r + b"250 8BITMIME\r\n"

    def run(self):
        m = self.mode
        if m == "nogreet":
            self.wait_gone()
        if m == "bigline":
            self.send(b"220 ")
            self.flood(b"x" * 65536, FLOOD)
            self.wait_gone()
        greet = b"220 peer.test.example ESMTP\r\n"
        if m == "early":
            greet += b"250 2.0.0 nobody asked\r\n" * 3
        self.send(greet)
        while True:
            l = self.line()
            verb = l.split(" ", 1)[0].upper()
            log("CMD", self.name, self.n, verb[:16])
            if verb in ("EHLO", "HELO"):
                if m == "manylines":
                    self.send(b"250-peer.test.example\r\n")
                    self.flood((b"250-" + b"y" * 94 + b"\r\n") * 655,
                               FLOOD)
                    self.wait_gone()
                if m == "slowlines":
                    self.send(b"250-peer.test.example\r\n")
                    for i in range(1000):
                        self.send(b"250-SLOW%d\r\n" % i)
                        time.sleep(0.3)
                    self.wait_gone()
                if m == "early421":
                    self.send(self.ehlo_reply() +
                              b"421 4.3.2 peer.test.example shutting down\r\n")
                    self.wait_gone()
                self.send(self.ehlo_reply(m != "early354",
                                          m.startswith("tls")))
            elif verb == "STARTTLS" and m == "tlssilent":
                self.send(b"220 2.0.0 go ahead\r\n")
                self.wait_gone()
            elif verb == "STARTTLS" and m in ("tlsgarbage", "tlswarm"):
                if m == "tlswarm":
                    time.sleep(1)
                junk = bytes(range(256)) * 256
                self.send(b"220 2.0.0 go ahead\r\n" + junk)
                log("SENT", self.name, self.n, len(junk))
                self.wait_gone()
            elif verb == "MAIL":
                if m == "stall":
                    self.send(b"250-2.1.0 first line of a reply\r\n"
                              b"250-2.1.0 and a line that does not")
                    self.wait_gone()
                self.send(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                self.send(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                if m == "drop354":
                    self.send(b"354 go ahead\r\n")
                    self.c.shutdown(socket.SHUT_RDWR)
                    raise Gone("closed by us after 354")
                if m == "early354":
                    self.send(b"354 go ahead\r\n"
                              b"250 2.0.0 Ok: queued before it came\r\n")
                else:
                    self.send(b"354 go ahead\r\n")
                while self.line() != ".":
                    pass
                log("MSG", self.name, self.n)
                self.send(b"250 2.0.0 Ok: queued\r\n")
            elif verb == "RSET" or verb == "NOOP":
                self.send(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                self.send(b"221 2.0.0 Bye\r\n")
                raise Gone("quit")
            else:
                self.send(b"502 5.5.2 Error\r\n")


def serve(mode, ip, port, name):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(64)
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        threading.Thread(target=conn, args=(c, mode, name, n),
                         daemon=True).start()


def conn(c, mode, name, n):
    log("ACCEPT", name, n)
    s = Session(c, mode, name, n)
    try:
        s.run()
    except Gone as e:
        log("CLOSED", name, n, str(e).replace(" ", "_"))
    finally:
        c.close()


for spec in sys.argv[2:]:
    mode, ip, port, name = (spec + ":").split(":")[:4]
    threading.Thread(target=serve, args=(mode, ip, int(port), name or mode),
                     daemon=True).start()
log("READY")
while True:
    time.sleep(3600)

"""dane_sink.py - an SMTP sink with STARTTLS, one certificate per address,
for tests/integ/cases/900-dane.sh.

    dane_sink.py PORT LOG IP=CHAIN:KEY|IP=plain ...

It listens on each IP at PORT, one thread a connection, offers STARTTLS
with that address's certificate chain (CHAIN: a PEM file, the server's
certificate first, then any CA certificates to send) and key ("plain":
no STARTTLS), and appends one line per event to LOG, flushed at once:

    ACCEPT IP           a connection to IP
    TLS IP VERSION      the handshake with a client finished
    TLSFAIL IP WHY      a handshake failed (the client gave up on it)
    MSG IP TLS|CLEAR <rcpt> ...   a message accepted
    READY               every socket listens

Limits: 64 KiB a line, 10 MiB a message, 60 s of silence a connection.
"""
import socket
import ssl
import sys
import threading

LINE_MAX = 65536
MSG_MAX = 10 * 1024 * 1024
IDLE_S = 60

port = int(sys.argv[1])
logf = open(sys.argv[2], "a", buffering=1)
lock = threading.Lock()


def log(s):
    with lock:
        logf.write(s + "\n")
        logf.flush()


class Conn:
    def __init__(self, sock, ip, ctx):
        self.sock = sock
        self.ip = ip
        self.ctx = ctx
        self.buf = b""
        self.tls = False

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > LINE_MAX:
                raise OSError("line too long")
            d = self.sock.recv(16384)
            if not d:
                raise OSError("eof")
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("latin-1")

    def say(self, s):
        self.sock.sendall(s.encode() + b"\r\n")

    def serve(self):
        self.say("220 %s ESMTP dane_sink" % self.ip)
        rcpts = []
        while True:
            cmd = self.line()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                ext = ["250-%s" % self.ip, "250-PIPELINING"]
                if self.ctx is not None and not self.tls:
                    ext.append("250-STARTTLS")
                ext.append("250 8BITMIME")
                self.sock.sendall(("\r\n".join(ext) + "\r\n").encode())
            elif verb == "STAR" and self.ctx is not None and not self.tls:
                self.say("220 2.0.0 go ahead")
                self.buf = b""
                try:
                    self.sock = self.ctx.wrap_socket(self.sock,
                                                     server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log("TLSFAIL %s %s" % (self.ip, str(e)[:120]))
                    return
                self.tls = True
                log("TLS %s %s" % (self.ip, self.sock.version()))
            elif verb == "MAIL":
                rcpts = []
                self.say("250 2.1.0 ok")
            elif verb == "RCPT":
                rcpts.append(cmd[8:].strip())
                self.say("250 2.1.5 ok")
            elif verb == "DATA":
                self.say("354 go")
                size = 0
                while True:
                    ln = self.line()
                    if ln == ".":
                        break
                    size += len(ln)
                    if size > MSG_MAX:
                        raise OSError("message too big")
                log("MSG %s %s %s" % (self.ip, "TLS" if self.tls else
                                      "CLEAR", " ".join(rcpts)))
                self.say("250 2.0.0 queued")
            elif verb == "RSET":
                rcpts = []
                self.say("250 2.0.0 ok")
            elif verb == "QUIT":
                self.say("221 2.0.0 bye")
                return
            else:
                self.say("250 2.0.0 ok")


def handle(sock, ip, ctx):
    sock.settimeout(IDLE_S)
    log("ACCEPT %s" % ip)
    try:
        Conn(sock, ip, ctx).serve()
    except OSError:
        pass
    finally:
        sock.close()


def listen(ls, ip, ctx):
    while True:
        s, _ = ls.accept()
        threading.Thread(target=handle, args=(s, ip, ctx),
                         daemon=True).start()


threads = []
for spec in sys.argv[3:]:
    ip, what = spec.split("=", 1)
    ctx = None
    if what != "plain":
        chain, key = what.split(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(16)
    t = threading.Thread(target=listen, args=(ls, ip, ctx), daemon=True)
    t.start()
    threads.append(t)
log("READY")
for t in threads:
    t.join()

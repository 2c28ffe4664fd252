"""pull_sink.py - the site's final SMTP server in 520-pull: stores each
message it accepts in OUTDIR as N.eml (the bytes as received,
dot-unstuffed) with N.rcpt (one recipient a line). Threaded, so that the
site's workers may deliver in parallel; big messages cost linear time.

usage: pull_sink.py ADDR PORT OUTDIR    (prints "ready", runs until killed)
"""
import itertools, os, socketserver, sys, threading

OUT = None
SEQ = itertools.count(1)
LOCK = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def send(self, s):
        self.wfile.write(s.encode())
        self.wfile.flush()

    def handle(self):
        self.send("220 sink.test.example ESMTP pull sink\r\n")
        rcpts = []
        while True:
            l = self.rfile.readline()
            if not l:
                return
            verb = l.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self.send("250-sink.test.example\r\n250-PIPELINING\r\n"
                          "250-8BITMIME\r\n250 SIZE 104857600\r\n")
            elif verb == b"MAIL":
                rcpts = []
                self.send("250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(l[8:].split(b">")[0].lstrip(b"<").decode())
                self.send("250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                self.send("354 go ahead\r\n")
                parts = []
                while True:
                    d = self.rfile.readline()
                    if not d:
                        return
                    if d == b".\r\n":
                        break
                    parts.append(d[1:] if d.startswith(b".") else d)
                with LOCK:
                    n = next(SEQ)
                p = os.path.join(OUT, "%04d" % n)
                with open(p + ".tmp", "wb") as f:
                    f.write(b"".join(parts))
                with open(p + ".rcpt", "w") as f:
                    f.write("\n".join(rcpts) + "\n")
                os.rename(p + ".tmp", p + ".eml")
                self.send("250 2.0.0 stored\r\n")
            elif verb == b"QUIT":
                self.send("221 2.0.0 bye\r\n")
                return
            else:
                self.send("250 2.0.0 ok\r\n")


def main():
    global OUT
    addr, port, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(OUT, exist_ok=True)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer((addr, port), Handler)
    srv.daemon_threads = True
    print("ready")
    sys.stdout.flush()
    srv.serve_forever()


main()

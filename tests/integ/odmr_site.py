"""odmr_site.py - the customer's side of ODMR (RFC 2645) for the tests:
connect to the provider's ODMR (or SMTP) port, EHLO, optionally STARTTLS,
AUTH CRAM-MD5, ATRN (or TURN), and after a 250 act as the SMTP server on
the same connection, storing each message it accepts in OUTDIR as
NNN.eml (the bytes as received, dot-unstuffed) with NNN.rcpt (one
recipient a line).

usage: odmr_site.py PORT USER PASSWORD OUTDIR [options]
  --verb "ATRN d1,d2" | "ATRN" | "TURN"   (default "ATRN")
  --tls             STARTTLS before AUTH; after the reversal the session
                    goes on inside the same TLS session
  --drop-after N    close the connection (no reply) at the DATA of
                    message N+1 (N messages accepted)
  --no-auth         skip AUTH
  --src ADDR        source address (default 127.0.0.1)
  --cmds "A|B"      send these commands after AUTH instead of the verb,
                    print each reply, then QUIT
  --pause-file F    after the 250, wait (30 s at most) until F exists
                    before sending the 220
  --stall-after N   at the DATA of message N+1, answer nothing and wait
                    for the provider to close (60 s at most)
  --data-file F     after each 354, read nothing until F exists (30 s at
                    most); prints "in_data" when it starts waiting
  --rcvbuf N        SO_RCVBUF of the socket (a site whose kernel takes
                    little: with --data-file, the provider's writes stall
                    soon)
Prints "auth=REPLY", "verb=REPLY", then "got=N" (messages accepted),
"tls_after=yes|no", "quit=yes|no" (the provider sent QUIT).

usage: odmr_site.py sink ADDR PORT OUTDIR
  a plain SMTP server storing messages the same way (fetchmail's
  smtphost in ODMR mode), until killed; prints "ready" once listening.
"""
import base64, hashlib, hmac, os, socket, ssl, sys, time


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.off = 0

    def line(self):
        # An offset into the buffer: splitting it per line would copy
        # the rest of it every time (slow for a large message).
        while True:
            i = self.buf.find(b"\n", self.off)
            if i >= 0:
                l = self.buf[self.off:i + 1]
                self.off = i + 1
                return l
            self.buf = self.buf[self.off:]
            self.off = 0
            try:
                d = self.s.recv(65536)
            except OSError:
                d = b""
            if not d:
                raise EOFError
            self.buf += d

    def reply(self):
        lines = []
        while True:
            l = self.line().rstrip(b"\r\n").decode("utf-8", "replace")
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return lines

    def send(self, b):
        self.s.sendall(b if isinstance(b, bytes) else b.encode())

    def cmd(self, line):
        self.send(line + "\r\n")
        try:
            return self.reply()[-1]
        except EOFError:
            return "EOF"


def wait_file(f):
    for _ in range(3000):
        if os.path.exists(f):
            return
        time.sleep(0.01)


def serve(c, outdir, drop_after, pause, stall_after=None, data_file=None):
    """Be the SMTP server after the reversal; returns (messages, quit)."""
    got = 0
    rcpts = []
    if pause is not None:
        for _ in range(3000):
            if os.path.exists(pause):
                break
            time.sleep(0.01)
    c.send("220 site.test.example ESMTP odmr test site\r\n")
    while True:
        try:
            l = c.line().rstrip(b"\r\n").decode("utf-8", "replace")
        except EOFError:
            return got, False
        verb = l.split(" ", 1)[0].upper()
        if verb == "EHLO":
            c.send("250-site.test.example\r\n250-PIPELINING\r\n"
                   "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
        elif verb == "MAIL":
            rcpts = []
            c.send("250 2.1.0 ok\r\n")
        elif verb == "RCPT":
            rcpts.append(l[8:].split(">")[0].lstrip("<"))
            c.send("250 2.1.5 ok\r\n")
        elif verb == "DATA":
            if drop_after is not None and got >= drop_after:
                c.s.close()
                return got, False
            if stall_after is not None and got >= stall_after:
                print("stalled")
                sys.stdout.flush()
                c.s.settimeout(60)
                try:
                    while c.s.recv(65536):
                        pass
                except OSError:
                    pass
                return got, False
            c.send("354 go ahead\r\n")
            if data_file is not None:
                print("in_data")
                sys.stdout.flush()
                wait_file(data_file)
            body = []
            while True:
                try:
                    d = c.line()
                except EOFError:
                    return got, False
                if d == b".\r\n":
                    break
                if d.startswith(b"."):
                    d = d[1:]
                body.append(d)
            body = b"".join(body)
            got += 1
            n = len(os.listdir(outdir)) // 2 + 1
            with open(os.path.join(outdir, "%03d.eml" % n), "wb") as f:
                f.write(body)
            with open(os.path.join(outdir, "%03d.rcpt" % n), "w") as f:
                f.write("\n".join(rcpts) + "\n")
            c.send("250 2.0.0 stored\r\n")
        elif verb == "RSET" or verb == "NOOP":
            c.send("250 2.0.0 ok\r\n")
        elif verb == "QUIT":
            c.send("221 2.0.0 bye\r\n")
            return got, True
        else:
            c.send("502 5.5.1 not here\r\n")


def sink(addr, port, outdir):
    os.makedirs(outdir, exist_ok=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    print("ready")
    sys.stdout.flush()
    while True:
        s, _ = ls.accept()
        s.settimeout(60)
        try:
            serve(Conn(s), outdir, None, None)
        except OSError:
            pass
        s.close()


def main():
    a = sys.argv[1:]
    if a[0] == "sink":
        sink(a[1], int(a[2]), a[3])
        return
    port, user, pw, outdir = int(a[0]), a[1], a[2], a[3]
    opts = a[4:]
    verb, tls, drop, auth, src, cmds = "ATRN", False, None, True, \
        "127.0.0.1", None
    pause = None
    stall = None
    data_file = None
    rcvbuf = None
    i = 0
    while i < len(opts):
        o = opts[i]
        if o == "--verb":
            verb = opts[i + 1]; i += 1
        elif o == "--tls":
            tls = True
        elif o == "--drop-after":
            drop = int(opts[i + 1]); i += 1
        elif o == "--no-auth":
            auth = False
        elif o == "--src":
            src = opts[i + 1]; i += 1
        elif o == "--data-file":
            data_file = opts[i + 1]; i += 1
        elif o == "--rcvbuf":
            rcvbuf = int(opts[i + 1]); i += 1
        elif o == "--stall-after":
            stall = int(opts[i + 1]); i += 1
        elif o == "--pause-file":
            pause = opts[i + 1]; i += 1
        elif o == "--cmds":
            cmds = opts[i + 1].split("|"); i += 1
        i += 1
    os.makedirs(outdir, exist_ok=True)
    s = socket.socket()
    s.settimeout(30)
    if rcvbuf is not None:
        # Before connect, so that the window scale follows it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    c = Conn(s)
    c.reply()
    c.send("EHLO site.test.example\r\n")
    ehlo = c.reply()
    print("ehlo=" + " ".join(l[4:] for l in ehlo[1:]))
    if tls:
        r = c.cmd("STARTTLS")
        print("starttls=" + r)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.s = ctx.wrap_socket(c.s)
        c.buf = b""
        c.off = 0
        c.send("EHLO site.test.example\r\n")
        c.reply()
    if auth:
        r = c.cmd("AUTH CRAM-MD5")
        if r.startswith("334 "):
            chal = base64.b64decode(r[4:])
            d = hmac.new(pw.encode(), chal, hashlib.md5).hexdigest()
            r = c.cmd(base64.b64encode(
                (user + " " + d).encode()).decode())
        print("auth=" + r)
    if cmds is not None:
        for k, x in enumerate(cmds):
            print("cmd%d=%s" % (k, c.cmd(x)))
        print("quit_reply=" + c.cmd("QUIT"))
        return
    r = c.cmd(verb)
    print("verb=" + r)
    sys.stdout.flush()
    if not r.startswith("250"):
        print("quit_reply=" + c.cmd("QUIT"))
        return
    got, quit = serve(c, outdir, drop, pause, stall, data_file)
    print("got=%d" % got)
    print("tls_after=" + ("yes" if isinstance(c.s, ssl.SSLSocket)
                          else "no"))
    print("quit=" + ("yes" if quit else "no"))


main()

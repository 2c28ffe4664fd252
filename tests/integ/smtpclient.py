"""smtpclient.py - a raw-socket SMTP client for the integration cases.

The cases run small Python programs (here-documents) that import this
module, talk to posternd byte by byte as a (mis)behaving client would, and
write what they saw as KEY=VALUE lines into the file named by $RESULTS;
the shell then asserts on them through lib.sh (see `res` in the cases).
Every reply that says "queued as ID" is also appended to the file named by
$ACKED, so a case can check that everything acknowledged is still queued.

Nothing here waits forever: every read is bounded by a socket timeout, a
missing reply is reported as "TIMEOUT" and a closed connection as "EOF".
"""
import os
import re
import socket
import ssl
import time

TIMEOUT = float(os.environ.get("SMTPC_TIMEOUT", "20"))
PORT = int(os.environ.get("PORT", "0") or 0)
_QUEUED = re.compile(r"queued as ([0-9A-Z]+)")


def record(key, value):
    """Append KEY=VALUE (one line) to $RESULTS."""
    value = str(value).replace("\n", "\\n").replace("\r", "\\r")
    with open(os.environ["RESULTS"], "a") as f:
        f.write("%s=%s\n" % (key, value))


def summary(reply):
    """'250 2.0.0' for '250-...\\r\\n250 2.0.0 Ok' (code and enhanced code
    of the last line); EOF and TIMEOUT stay as they are."""
    if reply in ("EOF", "TIMEOUT"):
        return reply
    last = reply.split("\r\n")[-1]
    m = re.match(r"(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})?", last)
    if not m:
        return "BAD:" + last[:60]
    return m.group(1) + (" " + m.group(2) if m.group(2) else "")


class Client:
    def __init__(self, port=None, host="127.0.0.1", src=None, greet=True,
                 timeout=TIMEOUT):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src is not None:
            s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((host, port or PORT))
        self.s = s
        self.buf = b""
        self.eof = False
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def _fill(self):
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return "TIMEOUT"
        except OSError:
            d = b""
        if not d:
            self.eof = True
            return "EOF"
        self.buf += d
        return None

    def line(self):
        while b"\n" not in self.buf:
            r = self._fill()
            if r is not None:
                return r
        i = self.buf.index(b"\n") + 1
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln.decode("utf-8", "replace").rstrip("\r\n")

    def reply(self):
        """One whole (multi-line) reply as text, or EOF / TIMEOUT."""
        lines = []
        while True:
            ln = self.line()
            if ln in ("EOF", "TIMEOUT"):
                return ln if not lines else "\r\n".join(lines)
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                break
        text = "\r\n".join(lines)
        m = _QUEUED.search(text)
        if m and os.environ.get("ACKED"):
            with open(os.environ["ACKED"], "a") as f:
                f.write(m.group(1) + "\n")
        return text

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def closed(self, within=10.0):
        """True when the server closes the connection within `within`
        seconds (polled; any further reply is kept in self.extra)."""
        self.extra = []
        end = time.monotonic() + within
        while not self.eof and time.monotonic() < end:
            self.s.settimeout(max(0.05, min(0.5, end - time.monotonic())))
            r = self.reply()
            if r not in ("EOF", "TIMEOUT"):
                self.extra.append(r)
        self.s.settimeout(TIMEOUT)
        return self.eof

    def quiet(self, within=0.5):
        """True when nothing more arrives within `within` seconds (used
        after a reply to prove no extra reply was sent)."""
        self.s.settimeout(within)
        r = self.reply()
        self.s.settimeout(TIMEOUT)
        self.unexpected = r
        return r == "TIMEOUT"

    def starttls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.s = ctx.wrap_socket(self.s, server_hostname="mx.test.example")
        self.buf = b""

    def quit(self):
        """QUIT, then wait for the close: '221 2.0.0' on success."""
        r = summary(self.cmd("QUIT"))
        if not self.closed(5):
            r += " (not closed)"
        self.close()
        return r

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def stuff(body):
    """Dot-stuff CRLF text (RFC 5321 §4.5.2)."""
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..")


def session(port=None, src=None, helo="EHLO client.example",
            sender="<alice@example.com>", rcpts=("<bob@relay.example>",)):
    """Connect, greet, MAIL, RCPT..., DATA; returns the client and the
    summaries of those replies ('220', '250 ...', ..., '354')."""
    c = Client(port, src=src)
    got = [summary(c.greeting), summary(c.cmd(helo)),
           summary(c.cmd("MAIL FROM:" + sender))]
    got += [summary(c.cmd("RCPT TO:" + r)) for r in rcpts]
    got.append(summary(c.cmd("DATA")))
    return c, got


def stored_sha(path):
    """sha256 of a stored message (`postern show --raw`) without the one
    Received: field the server put in front; '' when it is not there."""
    import hashlib
    data = open(path, "rb").read()
    if not data.startswith(b"Received: "):
        return ""
    i = 0
    while True:
        j = data.index(b"\r\n", i) + 2
        if data[j:j + 1] not in (b" ", b"\t"):
            break
        i = j
    return hashlib.sha256(data[j:]).hexdigest()


def stored_bodies(qdir):
    """Every message stored in the queue in qdir, by queue id, in one read:
    the body chunks of its msg table (queue/queue.h: id(8) 0x02 chunk#(4)
    -> bytes) dumped by mdb_dump, each message's chunks joined in key
    order. Envelopes and recipients are skipped."""
    import subprocess
    b32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    def qid(v):
        return "".join(b32[(v >> (5 * i)) & 31] for i in range(10, -1, -1))
    stored = {}
    with subprocess.Popen(["mdb_dump", "-s", "msg", qdir],
                          stdout=subprocess.PIPE) as pr:
        lines = iter(pr.stdout)
        for ln in lines:
            if ln.strip() == b"HEADER=END":
                break
        for ln in lines:
            if ln.strip() == b"DATA=END":
                break
            k = bytes.fromhex(ln.strip().decode())
            v = bytes.fromhex(next(lines).strip().decode())
            if len(k) != 13 or k[8] != 2:
                continue            # an envelope or a recipient
            stored.setdefault(qid(int.from_bytes(k[:8], "big")), []).append(
                (int.from_bytes(k[9:13], "big"), v))
    return {i: b"".join(v for _, v in sorted(c)) for i, c in stored.items()}


def message(size, seed, dots=True):
    """A CRLF message of about `size` octets: a few headers, then lines of
    printable text (some starting with a dot when `dots`)."""
    import hashlib
    out = [b"Subject: test %d\r\nFrom: <alice@example.com>\r\n\r\n" % seed]
    n = len(out[0])
    i = 0
    while n < size:
        h = hashlib.sha256(b"%d.%d" % (seed, i)).hexdigest().encode()
        ln = (b"." if dots and i % 7 == 0 else b"") + h + h[:10] + b"\r\n"
        out.append(ln)
        n += len(ln)
        i += 1
    return b"".join(out)

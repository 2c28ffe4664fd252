"""peer_client.py - SMTP clients that misbehave on purpose, and one that
behaves and measures, for tests/integ/cases/815-peer-client.sh.

    peer_client.py OUT PORT SRC_IP COMMAND [ARGS...]

Each connects to 127.0.0.1:PORT from SRC_IP (a 127.0.0.x of its own, so
that the server's per-address limits see different clients), and writes
what it saw to OUT as KEY=VALUE lines (the case asserts on them). Times
are seconds on the monotonic clock. Every wait is bounded.

    flood N HOLD STOP   open N connections at once (non-blocking), read
                        the first reply of each (10 s at most), keep them
                        open until the file STOP exists (HOLD s at most),
                        then read what each got meanwhile and close.
                        greet=N refused421=N (421 first), eof=N, reset=N,
                        silent=N, other=N; cut421=N: greeted, later 421;
                        refused_text= one 421's text; opened=N.
    slow MODE [GAP]     one byte a second (or every GAP s): MODE "line": "NOOP" that never
                        ends; "data": a message after DATA; "noop":
                        whole "NOOP\\r\\n" commands, a byte a second.
                        secs= from the greeting (line, noop) or the 354
                        (data) to the server's close; last= the last reply
                        line; replies=N.
    pipe VERB N QUIT READ
                        EHLO (and MAIL FROM for RCPT), then N commands
                        "VERB ..." (QUIT after them when QUIT is 1) in one
                        write. READ 1: read every reply until the server
                        closes (60 s at most). READ 0: read nothing for
                        (READ_WAIT, default 12) s with a small receive
                        buffer, then read what is there. replies=N (lines
                        after the ones of EHLO/MAIL), codes= counts per
                        code, last=, closed=1 when the server closed,
                        secs= from the write to the close.
    probe SECS          a client that behaves (a 421 greeting: it tries
                        again every 0.5 s, 20 s at most; tries=,
                        greeted_after=): EHLO, then HELP every 0.1 s
                        for SECS s (max_rtt_ms=, noops=; HELP rather than
                        NOOP, which junk_command_limit counts), then one
                        message to
                        rcpt@dest.example (sent=250 ...).
"""
import os
import selectors
import socket
import sys
import time

out, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cmd, args = sys.argv[4], sys.argv[5:]
res = {}


def save():
    with open(out + ".tmp", "w") as f:
        for k, v in res.items():
            f.write("%s=%s\n" % (k, str(v).replace("\n", "\\n")))
    os.rename(out + ".tmp", out)


def connect(timeout=10, rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


class Lines:
    """Reply lines from a socket, each read bounded by the socket's
    timeout."""

    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.eof = False

    def line(self):
        while b"\r\n" not in self.buf:
            if self.eof:
                return None
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return "TIMEOUT"
            except OSError:
                d = b""
            if not d:
                self.eof = True
                if self.buf:
                    l, self.buf = self.buf, b""
                    return l.decode("latin-1")
                return None
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("latin-1")

    def reply(self):
        """A whole reply: its last line, or None (EOF) / TIMEOUT."""
        while True:
            l = self.line()
            if l is None or l == "TIMEOUT":
                return l
            if len(l) < 4 or l[3] != "-":
                return l


def flood(n, hold, stop):
    sel = selectors.DefaultSelector()
    socks = []
    srcs = src.split(",")
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((srcs[i % len(srcs)], 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    res["opened"] = len(socks)
    first = {}
    buf = {}
    # Until every connection has its first reply, bounded: 2,000 SYNs
    # overflow the listen backlog, and those the kernel dropped come
    # back after 1, 3, 7, 15, 31, 63 s of SYN retries (more on a loaded machine).
    t0 = time.monotonic()
    end = t0 + 120
    while len(first) < len(socks) and time.monotonic() < end:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                d = None
            except OSError:
                d = None
            if d:
                buf[s] = buf.get(s, b"") + d
                if b"\r\n" not in buf[s]:
                    continue
                first[s] = buf[s].split(b"\r\n", 1)[0].decode("latin-1")
            else:
                first[s] = "EOF" if d == b"" else "RESET"
            sel.unregister(s)
    res["first_reply_secs"] = "%.1f" % (time.monotonic() - t0)
    counts = {"greet": 0, "refused421": 0, "eof": 0, "reset": 0,
              "silent": 0, "other": 0}
    for s in socks:
        f = first.get(s)
        if f is None:
            counts["silent"] += 1
        elif f.startswith("220"):
            counts["greet"] += 1
        elif f.startswith("421"):
            counts["refused421"] += 1
            res["refused_text"] = f
        elif f == "EOF":
            counts["eof"] += 1
        elif f == "RESET":
            counts["reset"] += 1
        else:
            counts["other"] += 1
            res["other_text"] = f
    res.update(counts)
    save()
    end = time.monotonic() + hold
    while not os.path.exists(stop) and time.monotonic() < end:
        time.sleep(0.1)
    # What the greeted ones got meanwhile (a 421 when the server cut
    # them), without waiting.
    cut = 0
    for s in socks:
        if first.get(s, "").startswith("220"):
            s.setblocking(False)
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d.startswith(b"421"):
                cut += 1
                res["cut_text"] = d.split(b"\r\n")[0].decode("latin-1")
        s.close()
    res["cut421"] = cut
    save()


def slow(mode, gap=1.0):
    s = connect(timeout=120)
    r = Lines(s)
    g = r.reply()
    res["greeting"] = g
    if mode == "data":
        s.sendall(b"EHLO slow.example\r\n")
        r.reply()
        for c in (b"MAIL FROM:<a@slow.example>", b"RCPT TO:<b@dest.example>",
                  b"DATA"):
            s.sendall(c + b"\r\n")
            res["reply_" + c.split(b" ")[0].decode()] = r.reply()
        text = b"Subject: slow\r\n\r\n" + b"x" * 200 + b"\r\n"
    elif mode == "noop":
        text = b"NOOP\r\n" * 200
    else:
        text = b"NOOP" + b"x" * 400
    t0 = time.monotonic()
    replies = 0
    last = None
    closed = False
    for b in text:
        tb = time.monotonic()
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = True
            break
        # A second a byte; what comes meanwhile (the 250s to NOOP, a
        # 421, the close) is taken as it comes.
        while not closed and time.monotonic() < tb + gap:
            s.settimeout(max(0.01, tb + gap - time.monotonic()))
            try:
                d = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                d = b""
            if not d:
                closed = True
                break
            r.buf += d
            while b"\r\n" in r.buf:
                l, r.buf = r.buf.split(b"\r\n", 1)
                last = l.decode("latin-1")
                replies += 1
        if closed:
            break
    res["secs"] = "%.1f" % (time.monotonic() - t0)
    res["closed"] = 1 if closed else 0
    res["last"] = last
    res["replies"] = replies
    s.close()
    save()


def pipe(verb, n, quit, read):
    rcvbuf = 0 if read else 4096
    s = connect(timeout=60, rcvbuf=rcvbuf)
    r = Lines(s)
    res["greeting"] = r.reply()
    s.sendall(b"EHLO pipe.example\r\n")
    res["ehlo"] = r.reply()
    if verb == "RCPT":
        s.sendall(b"MAIL FROM:<a@pipe.example>\r\n")
        res["mail"] = r.reply()
    arg = {"RCPT": " TO:<r%d@dest.example>", "NOOP": "", "RSET": "",
           "HELP": "", "BOGUS": " %d", "VRFY": " u%d"}[verb]
    lines = []
    for i in range(n):
        a = arg % i if "%d" in arg else arg
        lines.append((verb + a + "\r\n").encode())
    if quit:
        lines.append(b"QUIT\r\n")
    data = b"".join(lines)
    t0 = time.monotonic()
    s.settimeout(30)
    try:
        if read:
            s.sendall(data)
        else:
            # Write what the server takes, never read: a client that
            # does not read its replies.
            s.setblocking(False)
            off = 0
            end = t0 + float(os.environ.get("READ_WAIT", "12"))
            while off < len(data) and time.monotonic() < end:
                try:
                    off += s.send(data[off:off + 65536])
                except BlockingIOError:
                    time.sleep(0.05)
            res["written"] = off
            while time.monotonic() < end:
                time.sleep(0.1)
            s.setblocking(True)
    except OSError as e:
        res["write_error"] = type(e).__name__
    codes = {}
    replies = 0
    last = None
    s.settimeout(60 if read else 2)
    end = time.monotonic() + 60
    closed = False
    while time.monotonic() < end:
        l = r.line()
        if l is None:
            closed = True
            break
        if l == "TIMEOUT":
            break
        replies += 1
        last = l
        codes[l[:3]] = codes.get(l[:3], 0) + 1
    res["secs"] = "%.1f" % (time.monotonic() - t0)
    res["replies"] = replies
    res["codes"] = ",".join("%s:%d" % kv for kv in sorted(codes.items()))
    res["last"] = last
    res["closed"] = 1 if closed else 0
    s.close()
    save()


def probe(secs):
    t0 = time.monotonic()
    tries = 0
    while True:
        tries += 1
        s = connect(timeout=10)
        r = Lines(s)
        res["greeting"] = r.reply()
        if not (res["greeting"] or "").startswith("421") or \
                time.monotonic() > t0 + 20:
            break
        s.close()
        time.sleep(0.5)
    res["tries"] = tries
    res["greeted_after"] = "%.1f" % (time.monotonic() - t0)
    s.sendall(b"EHLO probe.example\r\n")
    res["ehlo"] = r.reply()
    worst = 0.0
    n = 0
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t = time.monotonic()
        s.sendall(b"HELP\r\n")
        rep = r.reply()
        if rep is None or not rep.startswith("214"):
            res["noop_failed"] = rep
            break
        worst = max(worst, time.monotonic() - t)
        n += 1
        time.sleep(0.1)
    res["noops"] = n
    res["max_rtt_ms"] = int(worst * 1000)
    for c in (b"MAIL FROM:<p@probe.example>", b"RCPT TO:<rcpt@dest.example>",
              b"DATA"):
        s.sendall(c + b"\r\n")
        rep = r.reply()
    s.sendall(b"Subject: probe\r\n\r\nhello\r\n.\r\n")
    res["sent"] = r.reply()
    s.sendall(b"QUIT\r\n")
    r.reply()
    s.close()
    save()


try:
    if cmd == "flood":
        flood(int(args[0]), float(args[1]), args[2])
    elif cmd == "slow":
        slow(args[0], float(args[1]) if len(args) > 1 else 1.0)
    elif cmd == "pipe":
        pipe(args[0], int(args[1]), args[2] == "1", args[3] == "1")
    elif cmd == "probe":
        probe(float(args[0]))
except Exception as e:          # the case says what went wrong
    res["error"] = "%s: %s" % (type(e).__name__, e)
    save()
    raise

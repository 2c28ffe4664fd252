# 930-smtpd-bdat: posternd's CHUNKING (RFC 3030) against a raw Python
# client (this machine's swaks, 20201014, has no --bdat):
#  - EHLO offers CHUNKING and BINARYMIME;
#  - one chunk, many chunks (lines split across them), "BDAT 0 LAST", a
#    message of only "BDAT 0 LAST", chunks pipelined in one write: each
#    queued, and its stored body is the octets sent (sha256) under our one
#    Received: field;
#  - message_size_limit counted over the chunks: 552 on the chunk that
#    passes it, the chunk pipelined after it discarded (503), nothing
#    queued;
#  - refused chunks have their octets read and thrown away (RFC 3030 §2):
#    BDAT before MAIL, after LAST, with a bad LAST word; the octets are
#    SMTP commands, and none of them is answered (the smuggling check);
#  - DATA after BDAT, and BODY=BINARYMIME with DATA: 503;
#  - bare LF, bare CR, NUL, an over-long line (split across chunks) and
#    too many Received: fields (one split across chunks): refused as in
#    DATA; a bare LF in a BINARYMIME message is taken, stored as sent;
#  - a size that cannot be read (letters, a sign, 20 digits): 501, 421,
#    closed;
#  - a connection cut mid-chunk: nothing queued, no spool file left, the
#    daemon serves the next client.
. "$POSTERN_TOP/tests/integ/lib.sh"

echo '.example hold' >"$T/routes"
chmod 644 "$T/routes"
start_posternd relay_domains=relay.example mynetworks=127.0.0.1/32 \
	max_errors=50 message_size_limit=600k max_received_headers=5 \
	"routes_file=$T/routes" || exit 1

cat >"$T/bdat.py" <<'EOF'
import hashlib, os, random, socket, sys, time
port = int(sys.argv[1])
outdir = sys.argv[2]
out = {}

class C:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.reply()                        # greeting
    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("latin-1")
    def reply(self):
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return lines
    def r1(self):
        return self.reply()[-1]
    def send(self, b):
        self.s.sendall(b)
    def cmd(self, c):
        self.send(c.encode("latin-1") + b"\r\n")
        return self.r1()
    def closed(self):
        # True when the server closed (after what it sent).
        try:
            self.s.settimeout(5)
            d = self.s.recv(100)
            return d == b""
        except OSError:
            return True
    def close(self):
        self.s.close()

def qid(r):
    return r.split()[-1] if "queued as" in r else "none"

def envelope(c, body=""):
    assert c.cmd("MAIL FROM:<s@py.test.example>" + body).startswith("250"), "mail"
    assert c.cmd("RCPT TO:<r@relay.example>").startswith("250"), "rcpt"

def msg(i, n=3000):
    rnd = random.Random(i)
    lines = ["Subject: bdat %d" % i, "Message-ID: <%d@py.test.example>" % i, ""]
    while sum(len(l) + 2 for l in lines) < n:
        lines.append("".join(rnd.choice("abcdefghij .,") for _ in range(rnd.randint(0, 120))))
    return ("\r\n".join(lines) + "\r\n").encode()

def save(name, data, r):
    out[name] = r
    out[name + "_id"] = qid(r)
    with open(os.path.join(outdir, name + ".sent"), "wb") as f:
        f.write(data)

c = C()
ext = c.send(b"EHLO py.test.example\r\n") or c.reply()
out["ehlo_chunking"] = "250-CHUNKING" in ext or "250 CHUNKING" in ext
out["ehlo_binarymime"] = any(l[4:] == "BINARYMIME" for l in ext)

# One chunk.
m = msg(1)
envelope(c)
c.send(b"BDAT %d LAST\r\n" % len(m) + m)
save("one", m, c.r1())

# Many chunks, cut anywhere (in lines, between CR and LF), then BDAT 0 LAST.
m = msg(2, 15000)
envelope(c)
cuts = sorted(random.Random(7).sample(range(1, len(m)), 60))
i = 0
rs = []
for j in cuts + [len(m)]:
    c.send(b"BDAT %d\r\n" % (j - i) + m[i:j])
    rs.append(c.r1())
    i = j
out["many_chunk_replies"] = all(r.startswith("250 2.0.0 Ok") for r in rs)
c.send(b"BDAT 0 LAST\r\n")
save("many", m, c.r1())

# Only BDAT 0 LAST: an empty message (our Received: field alone).
envelope(c)
c.send(b"BDAT 0 LAST\r\n")
save("empty", b"", c.r1())

# MAIL, RCPT and three chunks in one write.
m = msg(3)
a, b = len(m) // 3, 2 * len(m) // 3
c.send(b"MAIL FROM:<p@py.test.example>\r\nRCPT TO:<r@relay.example>\r\n" +
       b"BDAT %d\r\n" % a + m[:a] + b"BDAT %d\r\n" % (b - a) + m[a:b] +
       b"BDAT %d LAST\r\n" % (len(m) - b) + m[b:])
rs = [c.r1() for _ in range(5)]
out["pipe_codes"] = " ".join(r[:3] for r in rs)
save("pipe", m, rs[-1])

# message_size_limit (600k) over the chunks: 3 x 250000; the LAST chunk,
# pipelined after the refused one, is discarded (503).
envelope(c)
big = b"".join(b"%08d" % k + b"x" * 80 + b"\r\n" for k in range(9000))
c.send(b"BDAT 250000\r\n" + big[:250000] + b"BDAT 250000\r\n" + big[250000:500000] +
       b"BDAT 250000\r\n" + big[500000:750000] +
       b"BDAT 100 LAST\r\n" + big[:100] + b"NOOP\r\n")
rs = [c.r1() for _ in range(5)]
out["size_codes"] = " ".join(r[:9] for r in rs)

# Refused chunks: their octets are commands that must not run.
evil = b"MAIL FROM:<evil@py.test.example>\r\nRCPT TO:<r@relay.example>\r\nBDAT 5 LAST\r\nevil!"
c.send(b"RSET\r\nBDAT %d\r\n" % len(evil) + evil + b"NOOP\r\n")
rs = [c.r1() for _ in range(3)]
out["nomail_codes"] = " ".join(r[:9] for r in rs)
# BDAT after LAST (the transaction is over).
m = msg(4, 500)
envelope(c)
c.send(b"BDAT %d LAST\r\n" % len(m) + m)
save("last", m, c.r1())
c.send(b"BDAT %d LAST\r\n" % len(evil) + evil + b"NOOP\r\n")
rs = [c.r1() for _ in range(2)]
out["after_last_codes"] = " ".join(r[:9] for r in rs)
# A bad LAST word: 501, octets discarded, the transaction over.
envelope(c)
c.send(b"BDAT %d LASTX\r\n" % len(evil) + evil + b"BDAT 3 LAST\r\nabc" + b"NOOP\r\n")
rs = [c.r1() for _ in range(3)]
out["badlast_codes"] = " ".join(r[:9] for r in rs)
c.cmd("RSET")

# DATA after BDAT; BODY=BINARYMIME with DATA.
envelope(c)
c.send(b"BDAT 4\r\nab\r\n")
c.r1()
out["data_after_bdat"] = c.cmd("DATA")[:9]
c.cmd("RSET")
envelope(c, " BODY=BINARYMIME")
out["binary_data"] = c.cmd("DATA")[:9]
c.cmd("RSET")

# Content checks as in DATA, the line state carried across chunks.
def refused(name, chunks):
    envelope(c)
    for k, ch in enumerate(chunks):
        last = b" LAST" if k == len(chunks) - 1 else b""
        c.send(b"BDAT %d%s\r\n" % (len(ch), last) + ch)
    rs = [c.r1() for _ in chunks]
    out[name] = " ".join(r[:9] for r in rs)
    out[name + "_next"] = c.cmd("RSET")[:3]
refused("bare_lf", [b"Subject: x\r\n\r\nab\ncd\r\n", b"more\r\n"])
refused("bare_cr", [b"Subject: x\r\n\r\nab\r", b"cd\r\n"])
refused("nul", [b"Subject: x\r\n\r\nab\0cd\r\n"])
refused("long_line", [b"Subject: x\r\n\r\n" + b"y" * 600, b"y" * 600 + b"\r\n"])
refused("hops", [b"Received: a\r\n" * 3 + b"Recei", b"ved: b\r\nReceived: c\r\nReceived: d\r\n\r\nhi\r\n"])
# Five Received: fields (the limit) and one in the body pass.
m = b"Received: a\r\n" * 4 + b"Subject: h\r\n\r\nReceived: body\r\n"
envelope(c)
c.send(b"BDAT 10\r\n" + m[:10] + b"BDAT %d LAST\r\n" % (len(m) - 10) + m[10:])
c.r1()
save("hops_ok", m, c.r1())

# BINARYMIME: bare LF, CR and NUL octets are content, stored as sent.
m = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) * 4
envelope(c, " BODY=BINARYMIME")
c.send(b"BDAT 100\r\n" + m[:100] + b"BDAT %d LAST\r\n" % (len(m) - 100) + m[100:])
c.r1()
save("binary", m, c.r1())
c.cmd("QUIT")
c.close()

# Sizes that cannot be read: the session ends.
for name, arg in (("size_alpha", "1x"), ("size_sign", "+5"),
                  ("size_20digits", "9" * 20), ("size_none", "")):
    c = C()
    c.cmd("EHLO py.test.example")
    envelope(c)
    c.send(b"BDAT " + arg.encode() + b"\r\nRSET\r\n")
    out[name] = "%s %s %s" % (c.r1()[:9], c.r1()[:9], c.closed())
    c.close()

for k in sorted(out):
    print("%s=%s" % (k, out[k]))
EOF
"$PY" "$T/bdat.py" "$SMTP_PORT" "$T" >"$T/res" 2>"$T/err"
expect_eq client_ran "$? $(head -c 300 "$T/err")" "0 "
val() { sed -n "s/^$1=//p" "$T/res" | head -n 1; }
expect_eq ehlo_chunking "$(val ehlo_chunking)" True
expect_eq ehlo_binarymime "$(val ehlo_binarymime)" True
expect_eq many_chunk_replies "$(val many_chunk_replies)" True
expect_eq pipelined_codes "$(val pipe_codes)" "250 250 250 250 250"
expect_eq size_limit_over_chunks "$(val size_codes)" \
	"250 2.0.0 250 2.0.0 552 5.3.4 503 5.5.1 250 2.0.0"
expect_eq no_mail_discarded "$(val nomail_codes)" "250 2.0.0 503 5.5.1 250 2.0.0"
expect_eq after_last_discarded "$(val after_last_codes)" "503 5.5.1 250 2.0.0"
expect_eq bad_last_discarded "$(val badlast_codes)" "501 5.5.4 503 5.5.1 250 2.0.0"
expect_eq data_after_bdat "$(val data_after_bdat)" "503 5.5.1"
expect_eq binarymime_with_data "$(val binary_data)" "503 5.5.1"
expect_eq bare_lf "$(val bare_lf) $(val bare_lf_next)" "550 5.6.0 503 5.5.1 250"
expect_eq bare_cr "$(val bare_cr) $(val bare_cr_next)" "250 2.0.0 550 5.6.0 250"
expect_eq nul "$(val nul) $(val nul_next)" "550 5.6.0 250"
expect_eq long_line "$(val long_line) $(val long_line_next)" "250 2.0.0 500 5.5.2 250"
expect_eq too_many_hops "$(val hops) $(val hops_next)" "250 2.0.0 554 5.4.6 250"
for n in size_alpha size_sign size_20digits size_none; do
	expect_eq "$n" "$(val $n)" "501 5.5.4 421 4.5.0 True"
done

# Stored bodies: the octets sent, under our one Received: field.
for n in one many empty pipe last hops_ok binary; do
	id=$(val ${n}_id)
	if [ "$id" = none ]; then notok "stored_$n" "not queued: $(val $n)"; continue; fi
	"$P" show --raw "$id" >"$T/$n.raw" 2>"$T/err"
	"$PY" - "$T/$n.raw" "$T/$n.sent" >"$T/cmp" <<'EOF'
import hashlib, sys
raw = open(sys.argv[1], "rb").read()
sent = open(sys.argv[2], "rb").read()
# Our Received: field: its first line and the folded ones after it.
assert raw.startswith(b"Received: from py.test.example"), raw[:80]
i = raw.index(b"\r\n") + 2
while raw[i:i + 1] in (b"\t", b" "):
    i = raw.index(b"\r\n", i) + 2
body = raw[i:]
print("same" if hashlib.sha256(body).digest() == hashlib.sha256(sent).digest()
      else "differ %d %d" % (len(body), len(sent)))
EOF
	expect_eq "stored_$n" "$(cat "$T/cmp")" same
done
"$P" show "$(val binary_id)" >"$T/show.bin" 2>&1
expect_grep binary_flag_kept 'BINARYMIME' "$T/show.bin"
# Exactly the messages acknowledged are queued: none of the refused ones,
# none of the "evil" ones in discarded octets.
expect_eq queued_count "$(qjson 'len(msgs)')" 7
expect_eq no_evil_sender "$(qjson 'sum(m["sender"].startswith("evil") for m in msgs)')" 0
expect_grep log_reject_bdat 'reject BDAT from=<s@py.test.example>, nrcpt=1: 552 5.3.4' "$T/posternd.log"
expect_grep log_bdat_no_size 'disconnect (BDAT without a readable size)' "$T/posternd.log"

# A connection cut in the middle of a chunk: nothing queued, no spool
# file left behind, and the daemon serves the next client.
before=$(qjson 'len(msgs)')
pid_before=$(smtpd_pid)
"$PY" - "$SMTP_PORT" "$T" >"$T/cut" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO py.test.example\r\n")
for _ in range(30):
    if f.readline()[:4] in (b"250 ", b""): break
s.sendall(b"MAIL FROM:<cut@py.test.example>\r\n")
f.readline()
s.sendall(b"RCPT TO:<r@relay.example>\r\n")
f.readline()
l = b"y" * 78 + b"\r\n"
s.sendall(b"BDAT 4000\r\n" + l * 50 + b"BDAT 500000 LAST\r\n" + l * 5000)
f.readline()
# Past SMTPD_SPOOL_THRESHOLD (256 KiB): the message is in a spool file.
import glob, time
for _ in range(100):
    if glob.glob(sys.argv[2] + "/queue/spool/*"): break
    time.sleep(0.1)
print("spooled=%d" % len(glob.glob(sys.argv[2] + "/queue/spool/*")))
s.close()
EOF
expect_eq cut_was_spooled "$(cat "$T/cut")" spooled=1
poll_for 10 grep -q 'disconnect (end of file in BDAT)' "$T/posternd.log"
expect_grep cut_logged 'disconnect (end of file in BDAT)' "$T/posternd.log"
expect_eq cut_nothing_queued "$(qjson 'len(msgs)')" "$before"
expect_eq cut_no_spool "$(find "$T/queue" -path '*spool*' -type f | wc -l)" 0
expect_eq cut_same_smtpd "$(smtpd_pid)" "$pid_before"
check cut_daemon_serves swaks --server "127.0.0.1:$SMTP_PORT" -f a@py.test.example \
	-t r@relay.example --quit-after RCPT --timeout 20
stop_posternd

# 210-smtpc: runner/smtpc*.c, the ESMTP client, driven by
# tests/integ/smtpc_probe.c (built by make asan into build/asan/probe/)
# against Postfix's smtp-sink, posternd itself and small Python servers
# for what neither can be made to do (silence, pipelining checks, a lone
# dot, odd replies, plaintext injected before TLS, AUTH LOGIN).
. "$POSTERN_TOP/tests/integ/lib.sh"

# A version manager's python3 shim can take a second to start: run the
# interpreter itself (many small Python steps below).
py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"
cd "$POSTERN_TOP" || exit 1
PROBE="$(cd "$POSTERN_BIN/.." && pwd)/probe/smtpc_probe"
if [ ! -x "$PROBE" ]; then
	notok probe_builds "no $PROBE (make asan builds it)"
	exit 1
fi
ok probe_builds

NPROBE=0
# probe OUT ARGS... - run the probe; stdout in $T/OUT, stderr in
# $T/OUT.err, and the wall time in ms in $T/OUT.ms.
probe() {
	out=$1
	shift
	t0=$(date +%s%N)
	timeout 60 "$PROBE" "$@" >"$T/$out" 2>"$T/$out.err"
	echo "probe exit $?" >>"$T/$out.err"
	echo $((($(date +%s%N) - t0) / 1000000)) >"$T/$out.ms"
	NPROBE=$((NPROBE + 1))
}
# line OUT TEXT - the first line of $T/OUT that contains TEXT.
line() { grep -m 1 -F -- "$2" "$T/$1"; }
# rcpt OUT N.I - "code=C status=S" of that recipient.
rcpt() { sed -n "s/^rcpt $2 [^ ]* \(code=[0-9]* status=[0-9.]*\) .*/\1/p" "$T/$1" | head -n 1; }
# reply OUT N.I - its reply text.
reply() { sed -n "s/^rcpt $2 [^ ]* code=[0-9]* status=[0-9.]* reply=//p" "$T/$1" | head -n 1; }

# Ports: free_port, wait_listen (tests/common.sh, through lib.sh).

# sink NAME OPTION... - start smtp-sink with these options, dumping each
# message into $T/NAME/; its port in $SINK, counters in $T/NAME.out.
sink() {
	name=$1
	shift
	mkdir -p "$T/$name"
	chmod 777 "$T/$name"
	SINK=$(free_port)
	smtp-sink -u postern -c -d "$T/$name/%H%M%S." "$@" "127.0.0.1:$SINK" 10 \
		>"$T/$name.out" 2>&1 &
	reap $!
	wait_listen "$SINK" || notok "sink_$name" "smtp-sink $* did not start"
}
# counters NAME - smtp-sink's last "sess=N quit=N mesg=N", once its
# session count is at least $2 (polled, 5 s at most).
counters() { sink_counters "$T/$1.out" sess "$2"; }
# dumps NAME - how many messages smtp-sink stored.
dumps() { find "$T/$1" -type f | wc -l | tr -d ' '; }

# ------------------------------------------------------------------
# Bodies (the stored form: CRLF lines).
printf 'Subject: dots\r\nX-Test: 1\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\n.\r\n. dot space\r\nlast line without CRLF' >"$T/body1"
"$PY" - "$T/big" <<'EOF'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"Subject: big\r\n\r\n")
    for i in range(4000):
        f.write(b"%s%05d %s\r\n" % (b"." if i % 7 == 0 else b"", i, b"x" * (i % 70)))
    f.write(b".\r\n..\r\nend\r\n")
EOF
printf 'Subject: caf\303\251\r\n\r\nna\357ve \377 octets\r\n' >"$T/body8"

# sinkbody DUMP BODY - is the message in smtp-sink's dump file BODY byte
# for byte (the dump has LF line ends and its own headers first)?
cat >"$T/sinkbody.py" <<'EOF'
import sys
dump = open(sys.argv[1], "rb").read()
body = open(sys.argv[2], "rb").read()
if not body.endswith(b"\r\n"):
    body += b"\r\n"
want = body.replace(b"\r\n", b"\n") + b"\n"
i = dump.find(b"\nReceived: ")
rest = dump[i + 1:].split(b"\n", 3)[3] if i >= 0 else b""
print("same" if rest == want else "differs: %r" % rest[:300])
EOF
sinkbody() {
	"$PY" "$T/sinkbody.py" "$1" "$2" 2>&1
}

# ------------------------------------------------------------------
# smtp-sink with its defaults (PIPELINING, 8BITMIME, DSN, enhanced
# codes): two recipients, three messages, one connection; the body
# comes out byte for byte (dots un-stuffed, the missing last CRLF added),
# whatever the size of the pieces it is handed in.
sink plain
probe p1 -p "$SINK" -n 3 -k 1 -b "$T/body1" a@one.example b@two.example
expect_eq sink_open "$(line p1 'open ')" "open ok peer=127.0.0.1[127.0.0.1]:$SINK tls="
expect_eq sink_msg1 "$(line p1 'msg 1 ')" "msg 1 rc=0 conn=1 reused=no"
expect_eq sink_msg3_reused "$(line p1 'msg 3 ')" "msg 3 rc=0 conn=1 reused=yes"
for r in 1.1 1.2 2.1 2.2 3.1 3.2; do
	expect_eq "sink_rcpt_$r" "$(rcpt p1 $r)" "code=250 status=2.0.0"
done
expect_eq sink_reply_text "$(reply p1 3.2)" "250 2.0.0 Ok"
expect_eq sink_one_connection "$(counters plain 1)" "sess=1 quit=1 mesg=3"
expect_eq sink_three_dumps "$(dumps plain)" 3
f=$(find "$T/plain" -type f | head -n 1)
expect_eq sink_body_exact "$(sinkbody "$f" "$T/body1")" same
expect_eq sink_two_rcpts "$(grep -c '^X-Rcpt-Args: <[ab]@\(one\|two\)\.example>$' "$f")" 2
expect_eq sink_mail_args "$(grep '^X-Mail-Args:' "$f")" "X-Mail-Args: <probe@client.test.example>"

# A big message (several 64 KiB blocks), pieces of 7 bytes and of 256 KiB;
# an 8-bit one goes with BODY=8BITMIME; DSN parameters pass unchanged
# (ORCPT byte for byte) because the sink offers DSN.
sink bigs
probe p2 -p "$SINK" -k 7 -b "$T/big" r@big.example
probe p3 -p "$SINK" -k 262144 -b "$T/big" r@big.example
probe p4 -p "$SINK" -8 -b "$T/body8" -R HDRS -E QQ314+2B \
	'r1@dsn.example|SUCCESS,FAILURE|rfc822;R1+2Bx@DSN.example' \
	'r2@dsn.example|NEVER' 'r3@dsn.example'
expect_eq big_small_pieces "$(rcpt p2 1.1)" "code=250 status=2.0.0"
expect_eq big_large_pieces "$(rcpt p3 1.1)" "code=250 status=2.0.0"
expect_eq big_counters "$(counters bigs 3)" "sess=3 quit=3 mesg=3"
n=0
for f in "$T"/bigs/*; do
	if grep -q '^X-Mail-Args: .*BODY=8BITMIME' "$f"; then
		expect_eq eightbit_body_exact "$(sinkbody "$f" "$T/body8")" same
		expect_eq dsn_mail_args "$(grep '^X-Mail-Args:' "$f")" \
			"X-Mail-Args: <probe@client.test.example> BODY=8BITMIME RET=HDRS ENVID=QQ314+2B"
		expect_eq dsn_rcpt_args "$(grep '^X-Rcpt-Args:' "$f" | tr '\n' '/')" \
			"X-Rcpt-Args: <r1@dsn.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;R1+2Bx@DSN.example/X-Rcpt-Args: <r2@dsn.example> NOTIFY=NEVER/X-Rcpt-Args: <r3@dsn.example>/"
	else
		expect_eq "big_body_exact_$n" "$(sinkbody "$f" "$T/big")" same
		n=$((n + 1))
	fi
done
expect_eq big_both_dumped "$n" 2

# Without DSN (-N) the parameters are left off; without 8BITMIME (-8) an
# 8-bit message is refused here (5.6.3) and nothing is sent; smtp-sink
# has no SMTPUTF8, so a message that needs it fails with 5.6.7 unsent.
sink nodsn -N -8
probe p5 -p "$SINK" -R FULL -E ENV1 'r1@dsn.example|SUCCESS|rfc822;r1@dsn.example'
probe p6 -p "$SINK" -8 -b "$T/body8" r1@x.example r2@x.example
probe p7 -p "$SINK" -U "$(printf 'bj\303\270rn@x.example')" r2@x.example
probe p8 -p "$SINK" -f "$(printf 'j\303\270rn@x.example')" r3@x.example
expect_eq nodsn_delivered "$(rcpt p5 1.1)" "code=250 status=2.0.0"
expect_eq nodsn_counters "$(counters nodsn 4)" "sess=4 quit=4 mesg=1"
f=$(find "$T/nodsn" -type f | head -n 1)
expect_eq nodsn_mail_args "$(grep '^X-Mail-Args:' "$f")" "X-Mail-Args: <probe@client.test.example>"
expect_eq nodsn_rcpt_args "$(grep '^X-Rcpt-Args:' "$f")" "X-Rcpt-Args: <r1@dsn.example>"
expect_eq no8bit_rcpt1 "$(rcpt p6 1.1)" "code=554 status=5.6.3"
expect_eq no8bit_rcpt2 "$(rcpt p6 1.2)" "code=554 status=5.6.3"
expect_grep no8bit_reply 'conversion required but not supported' "$T/p6"
expect_eq no8bit_reused "$(line p6 'msg 1 ')" "msg 1 rc=0 conn=1 reused=no"
expect_eq noutf8_rcpt1 "$(rcpt p7 1.1)" "code=550 status=5.6.7"
expect_eq noutf8_rcpt2 "$(rcpt p7 1.2)" "code=550 status=5.6.7"
expect_grep noutf8_reply 'message requires SMTPUTF8, but host 127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]* does not support SMTPUTF8' "$T/p7"
expect_eq noutf8_sender "$(rcpt p8 1.1)" "code=550 status=5.6.7"
expect_eq nodsn_nothing_else_sent "$(dumps nodsn)" 1

# Per-recipient 4xx and 5xx from smtp-sink (-r/-f reject every RCPT; both
# imply no PIPELINING): no DATA, RSET, and the connection carries the
# next message. MAIL refused: every recipient gets that reply.
sink rcpt4 -r RCPT
probe p9 -p "$SINK" -n 2 a@x.example b@x.example
expect_eq rcpt4xx_a "$(rcpt p9 1.1)" "code=450 status=4.3.0"
expect_eq rcpt4xx_b "$(rcpt p9 2.2)" "code=450 status=4.3.0"
expect_eq rcpt4xx_reused "$(line p9 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"
expect_eq rcpt4xx_counters "$(counters rcpt4 1)" "sess=1 quit=1 mesg=0"
sink rcpt5 -f RCPT
probe p10 -p "$SINK" -n 2 a@x.example b@x.example
expect_eq rcpt5xx_a "$(rcpt p10 1.1)" "code=500 status=5.3.0"
expect_eq rcpt5xx_reply "$(reply p10 1.2)" "500 5.3.0 Error: command failed"
expect_eq rcpt5xx_counters "$(counters rcpt5 1)" "sess=1 quit=1 mesg=0"
sink mail5 -f MAIL -E -B "550 Sorry no"
probe p11 -p "$SINK" -n 2 a@x.example b@x.example
expect_eq mail5xx_a "$(rcpt p11 1.1)" "code=550 status=5.0.0"
expect_eq mail5xx_b "$(rcpt p11 2.2)" "code=550 status=5.0.0"
expect_eq mail5xx_reply_no_enhanced "$(reply p11 1.1)" "550 Sorry no"
expect_eq mail5xx_reused "$(line p11 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"
sink dot5 -f .
probe p12 -p "$SINK" a@x.example b@x.example
expect_eq dot5xx_a "$(rcpt p12 1.1)" "code=500 status=5.3.0"
expect_eq dot5xx_b "$(rcpt p12 1.2)" "code=500 status=5.3.0"

# 421 mid-session (-Q): everything without a final reply is temporary and
# the connection is gone (the next message opens a new one). A silent
# disconnect (-q) is 4.4.2.
sink q421 -Q RCPT
probe p13 -p "$SINK" -n 2 a@x.example b@x.example
expect_eq rcpt421_a "$(rcpt p13 1.1)" "code=421 status=4.0.0"
expect_eq rcpt421_b "$(rcpt p13 1.2)" "code=421 status=4.0.0"
expect_eq rcpt421_gone "$(line p13 'msg 1 ')" "msg 1 rc=-1 conn=1 reused=no"
expect_eq rcpt421_new_conn "$(line p13 'msg 2 ')" "msg 2 rc=-1 conn=2 reused=no"
sink dot421 -Q .
probe p14 -p "$SINK" a@x.example b@x.example
expect_eq dot421_a "$(rcpt p14 1.1)" "code=421 status=4.0.0"
expect_eq dot421_text "$(reply p14 1.2)" "421 4.0.0 Server closing connection"
expect_eq dot421_rc "$(line p14 'msg 1 ')" "msg 1 rc=-1 conn=1 reused=no"
sink qdata -q DATA
probe p15 -p "$SINK" a@x.example
expect_eq drop_data "$(rcpt p15 1.1)" "code=0 status=4.4.2"
expect_grep drop_data_why 'reply=lost connection with 127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]* while receiving the reply to DATA$' "$T/p15"

# The final dot answered late: dot_timeout 1 s, the sink waits 4 s.
sink slowdot -W .:4
probe p16 -p "$SINK" -O 1 a@x.example
expect_eq dot_timeout "$(rcpt p16 1.1)" "code=0 status=4.4.2"
expect_grep dot_timeout_why 'timed out while receiving the reply to end of data' "$T/p16"
expect_eq dot_timeout_bounded "$(($(cat "$T/p16.ms") < 4000))" 1

# The message cannot be read here half-way: the connection is dropped
# (no dot), so the server keeps nothing.
sink badbody
probe p17 -p "$SINK" -F -k 4096 -b "$T/big" a@x.example
expect_eq local_error "$(rcpt p17 1.1)" "code=0 status=4.3.0"
expect_eq local_error_gone "$(line p17 'msg 1 ')" "msg 1 rc=-1 conn=1 reused=no"
expect_eq local_error_nothing_kept "$(counters badbody 1 | sed 's/.* mesg=//')" 0

# No ESMTP (-e): HELO after EHLO is refused; no 8BITMIME then.
sink noesmtp -e
probe p18 -p "$SINK" a@x.example
probe p19 -p "$SINK" -8 -b "$T/body8" a@x.example
expect_eq helo_fallback "$(rcpt p18 1.1)" "code=250 status=2.0.0"
f=$(find "$T/noesmtp" -type f | head -n 1)
expect_grep helo_proto '^X-Client-Proto: SMTP$' "$f"
expect_eq helo_no_8bit "$(rcpt p19 1.1)" "code=554 status=5.6.3"

# Addresses: the first refuses connections, the second is a sink. TLS
# "may" against a server without STARTTLS goes on in the clear;
# "encrypt" refuses (4.7.5). AUTH is never sent without TLS (4.7.5).
closed=$(free_port)
sink second
SECOND=$SINK
probe p20 -p "$closed" -p "$SINK" -t may a@x.example
expect_eq next_address "$(line p20 'open ')" "open ok peer=127.0.0.1[127.0.0.1]:$SINK tls="
expect_eq next_address_sent "$(rcpt p20 1.1)" "code=250 status=2.0.0"
probe p21 -p "$closed" a@x.example
expect_grep connect_refused "^open fail status=4\.4\.1 permanent=0 why=connect to 127\.0\.0\.1\[127\.0\.0\.1\]:$closed: Connection refused\$" "$T/p21"
probe p22 -p "$SINK" -t encrypt a@x.example
expect_grep encrypt_not_offered '^open fail status=4\.7\.5 permanent=0 why=TLS is required, but was not offered by host ' "$T/p22"
probe p23 -p "$SINK" -u user -w secret a@x.example
expect_grep auth_needs_tls '^open fail status=4\.7\.5 permanent=0 why=no TLS with host .* (TLS is off for this hop); AUTH not sent$' "$T/p23"
expect_eq second_counters "$(counters second 3)" "sess=3 quit=3 mesg=1"

# smtpc_attach over a connection made by the caller.
probe p24 -X -p "$SINK" -n 2 a@x.example
expect_eq attach_open "$(line p24 'open ')" "open ok peer=127.0.0.1[127.0.0.1]:$SINK tls="
expect_eq attach_sent "$(rcpt p24 2.1)" "code=250 status=2.0.0"
expect_eq attach_reused "$(line p24 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"

# Refusals while opening: a 5xx greeting is temporary (the next address
# may differ); EHLO and HELO both refused (5xx) at every address is
# permanent, and only then; EHLO 4xx is temporary, without HELO.
sink greet5 -f CONNECT
probe p25 -p "$SINK" a@x.example
expect_grep greet5xx '^open fail status=4\.3\.0 permanent=0 why=host .* refused to talk to me: 500 5\.3\.0 Error: command failed$' "$T/p25"
sink helo5 -f EHLO,HELO
probe p26 -p "$SINK" a@x.example
probe p27 -p "$closed" -p "$SINK" a@x.example
expect_grep helo5xx_permanent '^open fail status=5\.3\.0 permanent=1 why=host .* refused to talk to me: 500 5\.3\.0 ' "$T/p26"
expect_grep helo5xx_not_everywhere '^open fail status=4\.3\.0 permanent=0 ' "$T/p27"
sink ehlo4 -r EHLO
probe p28 -p "$SINK" a@x.example
expect_grep ehlo4xx '^open fail status=4\.3\.0 permanent=0 why=host .* refused to talk to me: 450 4\.3\.0 ' "$T/p28"

# ------------------------------------------------------------------
# Python servers.
cat >"$T/pysrv.py" <<'EOF'
# pysrv.py MODE PORT LOG [CERT KEY] - one scripted SMTP server.
#   silent   accept, never say a word
#   pipe     offer PIPELINING; log which commands came in one group
#   nopipe   no PIPELINING; log any command sent before the last reply
#   lonedot  PIPELINING, every RCPT refused, DATA answered 354 anyway
#   weird    multiline replies, an over-long line, 452 without a code
#   flood    an EHLO reply of 150 lines
#   tls      STARTTLS with plaintext injected after the 220, then
#            AUTH LOGIN only (user "u1", password "p w")
#   badtls   STARTTLS answered 454 (EHLO refuse.test) or 220 and garbage
import base64, select, socket, ssl, sys, threading
mode, port, logf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = open(logf, "a", buffering=1)
held = []

class S:
    def __init__(self, c):
        self.c, self.buf = c, b""
    def fill(self, t=None):
        if not (hasattr(self.c, "pending") and self.c.pending()):
            r, _, _ = select.select([self.c], [], [], t)
            if not r:
                return False
        d = self.c.recv(65536)
        if not d:
            raise EOFError
        self.buf += d
        return True
    def line(self):
        while b"\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\n", 1)
        return l.rstrip(b"\r").decode("utf-8", "replace")
    def data(self):
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            self.fill()
        t = b"\r\n" + self.buf
        i = t.index(b"\r\n.\r\n")
        self.buf = t[i + 5:]
        return t[2:i + 2]
    def send(self, *lines):
        self.c.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

def session(c):
    if mode == "silent":
        held.append(c)
        return
    s = S(c)
    tls = False
    helo = ""
    if mode == "flood":
        s.send("220 py ESMTP")
        s.line()
        s.send(*(["250-py"] + ["250-X%d" % i for i in range(150)] + ["250 DSN"]))
        s.line()
        return
    s.send("220 py ESMTP")
    while True:
        cmd = s.line()
        verb = cmd.split(" ")[0].upper()
        if mode == "nopipe":
            if s.buf or s.fill(0.3):
                log.write("PIPELINED after %s\n" % verb)
                s.send("554 5.5.0 pipelining")
                return
        if mode == "pipe" and verb == "MAIL":
            while s.fill(0.3):
                pass
            more = [l.split(" ")[0].upper() for l in s.buf.decode().split("\r\n") if l]
            log.write("GROUP %s\n" % " ".join(["MAIL"] + more))
        if verb == "EHLO":
            helo = cmd[5:]
            ext = {"badtls": ["STARTTLS", "ENHANCEDSTATUSCODES"],"pipe": ["PIPELINING", "ENHANCEDSTATUSCODES"],
                   "lonedot": ["PIPELINING"],
                   "nopipe": ["8BITMIME", "SIZE 1000000", "ENHANCEDSTATUSCODES"],
                   "weird": ["X-LONG " + "x" * 700, "SIZE 1000000", "ENHANCEDSTATUSCODES"],
                   "tls": ["AUTH LOGIN", "8BITMIME"] if tls else
                          ["STARTTLS", "SIZE 1000000"]}[mode]
            s.send(*(["250-py"] + ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]))
        elif verb == "STARTTLS" and mode == "tls" and not tls:
            # The reply and a forged EHLO reply in one write: a client
            # that keeps the extra lines would see SIZE 10.
            s.c.sendall(b"220 2.0.0 go\r\n250-py\r\n250 SIZE 10\r\n")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[4], sys.argv[5])
            s.c = ctx.wrap_socket(s.c, server_side=True)
            s.buf = b""
            tls = True
            log.write("TLS %s\n" % s.c.version())
        elif verb == "STARTTLS" and mode == "badtls":
            if helo == "refuse.test":
                s.send("454 4.7.0 TLS not available now")
            else:
                s.send("220 2.0.0 go")
                s.c.sendall(b"this is not TLS\r\n" * 20)
                return
        elif verb == "AUTH" and mode == "tls":
            if not tls or cmd.upper() != "AUTH LOGIN":
                s.send("504 5.5.4 no")
                continue
            s.send("334 VXNlcm5hbWU6")
            u = base64.b64decode(s.line()).decode()
            s.send("334 UGFzc3dvcmQ6")
            p = base64.b64decode(s.line()).decode()
            ok = (u, p) == ("u1", "p w")
            log.write("AUTH %s %s\n" % (u, "ok" if ok else "bad"))
            s.send("235 2.7.0 ok" if ok else "535 5.7.8 no")
        elif verb == "MAIL":
            s.send("250-2.1.0 sender" if mode == "weird" else "250 2.1.0 ok",
                   *(["250 2.1.0 ok"] if mode == "weird" else []))
        elif verb == "RCPT":
            if mode == "lonedot" or "bad" in cmd:
                s.send("550 5.1.1 no such user")
            elif mode == "weird" and "many" in cmd:
                s.send("452-Too many", "452 recipients")
            else:
                s.send("250 ok" if mode == "weird" else "250 2.1.5 ok")
        elif verb == "DATA":
            s.send("354 go ahead")
            body = s.data()
            log.write("DATA %d %r\n" % (len(body), body[:40]))
            if mode == "lonedot":
                s.send("554 5.5.1 no valid recipients")
            elif mode == "weird":
                s.send("250-2.0.0 first", "250-2.0.0 " + "y" * 700, "250 2.0.0 last")
            else:
                s.send("250 2.0.0 queued")
        elif verb == "RSET":
            log.write("RSET\n")
            s.send("250 2.0.0 ok")
        elif verb == "QUIT":
            s.send("221 2.0.0 bye")
            return
        else:
            s.send("502 5.5.1 what")

def run(c):
    try:
        session(c)
    except (EOFError, OSError, ssl.SSLError):
        pass
    if c not in held:
        try:
            c.close()
        except OSError:
            pass

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
while True:
    c, _ = srv.accept()
    threading.Thread(target=run, args=(c,), daemon=True).start()
EOF
# pysrv MODE [ARGS] - start it; its port in $PYPORT, log in $T/py-MODE.log.
pysrv() {
	PYPORT=$(free_port)
	: >"$T/py-$1.log"
	"$PY" "$T/pysrv.py" "$1" "$PYPORT" "$T/py-$1.log" ${2:-} ${3:-} \
		>>"$T/py.err" 2>&1 &
	reap $!
	wait_listen "$PYPORT" || notok "pysrv_$1" "did not start"
}

# A server that accepts and never speaks: cmd_timeout 2 s, then the next
# address is tried; alone, it is 4.4.2 within bounds.
pysrv silent
probe s1 -p "$PYPORT" -T 2 a@x.example
expect_grep silent_timeout '^open fail status=4\.4\.2 permanent=0 why=conversation with 127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]* timed out while receiving the reply to the initial server greeting$' "$T/s1"
ms=$(cat "$T/s1.ms")
expect_eq silent_bounded "$((ms >= 1900 && ms < 5000))" 1
probe s1b -p "$PYPORT" -p "$SECOND" -T 2 a@x.example
expect_eq silent_then_next "$(line s1b 'open ')" "open ok peer=127.0.0.1[127.0.0.1]:$SECOND tls="
expect_eq silent_then_next_sent "$(rcpt s1b 1.1)" "code=250 status=2.0.0"

# PIPELINING offered: MAIL, every RCPT and DATA go in one group.
pysrv pipe
probe s2 -p "$PYPORT" a@x.example bad@x.example c@x.example
expect_eq pipe_group "$(grep '^GROUP' "$T/py-pipe.log")" "GROUP MAIL RCPT RCPT RCPT DATA"
expect_eq pipe_a "$(rcpt s2 1.1)" "code=250 status=2.0.0"
expect_eq pipe_bad "$(rcpt s2 1.2)" "code=550 status=5.1.1"
expect_eq pipe_c "$(rcpt s2 1.3)" "code=250 status=2.0.0"

# Not offered: one command at a time, never a second before the reply.
pysrv nopipe
probe s3 -p "$PYPORT" -n 2 -b "$T/body1" a@x.example bad@x.example c@x.example
expect_eq nopipe_never_pipelined "$(grep -c PIPELINED "$T/py-nopipe.log")" 0
expect_eq nopipe_two_messages "$(grep -c '^DATA ' "$T/py-nopipe.log")" 2
expect_eq nopipe_a "$(rcpt s3 2.1)" "code=250 status=2.0.0"
expect_eq nopipe_bad "$(rcpt s3 2.2)" "code=550 status=5.1.1"
expect_eq nopipe_reused "$(line s3 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"

# Every RCPT refused, but the pipelined DATA got 354: a lone dot goes
# out (RFC 2920 §3.1), then RSET; the connection is still good.
pysrv lonedot
probe s4 -p "$PYPORT" -n 2 bad1@x.example bad2@x.example
expect_eq lonedot_sent "$(grep -c "^DATA 0 b''\$" "$T/py-lonedot.log")" 2
expect_eq lonedot_rset "$(grep -c '^RSET$' "$T/py-lonedot.log")" 2
expect_eq lonedot_rcpt "$(rcpt s4 2.2)" "code=550 status=5.1.1"
expect_eq lonedot_reused "$(line s4 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"

# Multiline replies are joined, over-long lines cut, 452 without an
# enhanced code is 4.5.3 (that recipient waits, the others go on).
pysrv weird
probe s5 -p "$PYPORT" a@x.example many@x.example
expect_eq weird_452 "$(rcpt s5 1.2)" "code=452 status=4.5.3"
expect_eq weird_452_text "$(reply s5 1.2)" "452 Too many recipients"
expect_eq weird_dot "$(rcpt s5 1.1)" "code=250 status=2.0.0"
expect_grep weird_dot_text '^rcpt 1\.1 a@x\.example code=250 status=2\.0\.0 reply=250 2\.0\.0 first yyyy' "$T/s5"
expect_eq weird_reply_capped "$(reply s5 1.1 | wc -c | tr -d ' ')" 401
pysrv flood
probe s6 -p "$PYPORT" a@x.example
expect_grep flood_refused '^open fail status=4\.4\.2 permanent=0 why=bad reply from .* to EHLO: more than 100 lines$' "$T/s6"

# STARTTLS: what came in the clear with the 220 is dropped (else SIZE 10
# would refuse the message), the extensions are asked for again, and
# AUTH LOGIN is done inside TLS, its certificate verified for the name.
make_cert py py.test.example
pysrv tls "$T/py.crt" "$T/py.key"
probe s7 -p "$PYPORT" -H py.test.example -C "$T/py.crt" -t may -u u1 \
	-w 'p w' a@x.example
expect_grep tls_inject_tls '^open ok peer=.* tls=TLSv1\.[23] ' "$T/s7"
expect_eq tls_inject_ignored "$(rcpt s7 1.1)" "code=250 status=2.0.0"
expect_grep tls_inject_logged 'STARTTLS: discarded [0-9]* octets of plaintext' "$T/s7.err"
expect_eq tls_auth_login "$(grep '^AUTH' "$T/py-tls.log")" "AUTH u1 ok"
probe s8 -p "$PYPORT" -H py.test.example -C "$T/py.crt" -t may -u u1 \
	-w wrong a@x.example
expect_grep tls_auth_refused '^open fail status=4\.7\.8 permanent=0 why=SASL authentication failed; server .* said: 535 5\.7\.8 no$' "$T/s8"
# Credentials and a certificate not verified (no CA for it; and trusted
# but not for the name we were given): no AUTH, 4.7.5, under "may" too.
probe s8b -p "$PYPORT" -H py.test.example -t may -u u1 -w 'p w' a@x.example
expect_grep tls_auth_untrusted '^open fail status=4\.7\.5 permanent=0 why=certificate of host py\.test\.example\[127\.0\.0\.1\]:[0-9]* not verified for py\.test\.example: self-signed certificate; AUTH not sent$' "$T/s8b"
probe s8c -p "$PYPORT" -H other.test.example -C "$T/py.crt" -t may -u u1 \
	-w 'p w' a@x.example
expect_grep tls_auth_wrong_name '^open fail status=4\.7\.5 permanent=0 why=certificate of host other\.test\.example\[127\.0\.0\.1\]:[0-9]* not verified for other\.test\.example: [Hh]ostname mismatch; AUTH not sent$' "$T/s8c"
expect_eq tls_auth_not_sent "$(grep -c '^AUTH' "$T/py-tls.log")" 2

# STARTTLS refused (454): "may" goes on in the clear, "encrypt" gives up;
# a handshake that fails is a temporary failure of that connection.
pysrv badtls
probe s9 -p "$PYPORT" -h refuse.test -t may a@x.example
expect_eq badtls_454_may "$(line s9 'open ')" "open ok peer=127.0.0.1[127.0.0.1]:$PYPORT tls="
expect_eq badtls_454_may_sent "$(rcpt s9 1.1)" "code=250 status=2.0.0"
probe s10 -p "$PYPORT" -h refuse.test -t encrypt a@x.example
expect_grep badtls_454_encrypt '^open fail status=4\.7\.5 permanent=0 why=TLS is required, but host .* refused to start TLS: 454 4\.7\.0 TLS not available now$' "$T/s10"
probe s11 -p "$PYPORT" -t may a@x.example
expect_grep badtls_handshake '^open fail status=4\.7\.5 permanent=0 why=TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]* failed: ' "$T/s11"

# ------------------------------------------------------------------
# posternd: STARTTLS with its certificate, AUTH PLAIN, SIZE, SMTPUTF8,
# DSN, and the recipient refusals of a real server. 127.0.0.1 is not in
# mynetworks, so only relay.example is taken without AUTH.
pw='relay s3cret'
make_cert mx mx.test.example
make_cert other mx.test.example
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example >"$T/users"
chmod 644 "$T/users"
echo '.example hold' >"$T/routes"	# the runner leaves it all queued
chmod 644 "$T/routes"
start_posternd relay_domains=relay.example mynetworks=127.0.0.2/32 \
	max_recipients=3 message_size_limit=300000 "routes_file=$T/routes" \
	"tls_cert_file=$T/mx.crt" "tls_key_file=$T/mx.key" \
	"users_file=$T/users" || exit 1
PD=$SMTP_PORT
# qid OUT N.I - the queue id in that recipient's reply.
qid() { reply "$1" "$2" | sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-Z]\{11\}\)$/\1/p'; }
# rawbody RAW BODY - the stored message less our Received: field is BODY.
cat >"$T/rawbody.py" <<'EOF'
import re, sys
raw = open(sys.argv[1], "rb").read()
body = open(sys.argv[2], "rb").read()
if not body.endswith(b"\r\n"):
    body += b"\r\n"
m = re.match(rb"Received: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*", raw)
print("same" if m and raw[m.end():] == body else "differs: %r" % raw[:300])
EOF

# Several recipients, pipelined (posternd drops a client that pipelines
# wrongly): relayed, refused (554 5.7.1), over max_recipients (452).
probe d1 -p "$PD" -n 2 -k 5 -b "$T/body1" a@relay.example x@far.example \
	b@relay.example c@relay.example d@relay.example
expect_eq pd_a "$(rcpt d1 1.1)" "code=250 status=2.0.0"
expect_eq pd_relay_denied "$(rcpt d1 1.2)" "code=554 status=5.7.1"
expect_eq pd_relay_denied_text "$(reply d1 1.2)" "554 5.7.1 <x@far.example>: Relay access denied"
expect_eq pd_c "$(rcpt d1 1.4)" "code=250 status=2.0.0"
expect_eq pd_too_many "$(rcpt d1 1.5)" "code=452 status=4.5.3"
expect_eq pd_msg2_reused "$(line d1 'msg 2 ')" "msg 2 rc=0 conn=1 reused=yes"
expect_eq pd_msg2_b "$(rcpt d1 2.3)" "code=250 status=2.0.0"
id1=$(qid d1 1.1)
id2=$(qid d1 2.1)
expect_eq pd_same_id_for_all "$(qid d1 1.3) $(qid d1 1.4)" "$id1 $id1"
expect_eq pd_queued "$(qjson '" ".join(r["address"] for m in msgs if m["id"] == "'"$id1"'" for r in m["recipients"])')" "a@relay.example b@relay.example c@relay.example"
"$P" show --raw "$id2" >"$T/raw1"
expect_eq pd_body_exact "$("$PY" "$T/rawbody.py" "$T/raw1" "$T/body1")" same
expect_eq pd_no_sync_error "$(grep -c 'improper command pipelining' "$T/posternd.log")" 0

# The big one, to the server's SIZE: taken; declared over it: 5.3.4 here.
probe d2 -p "$PD" -k 100000 -b "$T/big" a@relay.example
probe d3 -p "$PD" -S 300001 a@relay.example b@relay.example
expect_eq pd_big "$(rcpt d2 1.1)" "code=250 status=2.0.0"
"$P" show --raw "$(qid d2 1.1)" >"$T/raw2"
expect_eq pd_big_exact "$("$PY" "$T/rawbody.py" "$T/raw2" "$T/big")" same
expect_eq pd_size_a "$(rcpt d3 1.1)" "code=552 status=5.3.4"
expect_eq pd_size_b "$(rcpt d3 1.2)" "code=552 status=5.3.4"
expect_grep pd_size_text 'message size 300001 exceeds size limit 300000 of server' "$T/d3"

# SMTPUTF8 and DSN pass through to a server that has them.
u=$(printf 'bj\303\270rn@relay.example')
probe d4 -p "$PD" -U -f "$(printf 'j\303\270rn@client.test.example')" "$u"
expect_eq pd_utf8 "$(rcpt d4 1.1)" "code=250 status=2.0.0"
"$P" show "$(qid d4 1.1)" >"$T/show4"
expect_grep pd_utf8_flag '^flags:.*SMTPUTF8' "$T/show4"
probe d5 -p "$PD" -R HDRS -E QQ314 \
	'bob@relay.example|SUCCESS,FAILURE|rfc822;Bob+2Bx@Relay.example'
"$P" show "$(qid d5 1.1)" >"$T/show5"
expect_grep pd_dsn_envid '^envid: QQ314$' "$T/show5"
expect_grep pd_dsn_ret '^flags:.*RET=HDRS' "$T/show5"
expect_grep pd_dsn_notify '^recipient: <bob@relay\.example> .*notify=SUCCESS,FAILURE' "$T/show5"
expect_grep pd_dsn_orcpt '^recipient: <bob@relay\.example> .*orcpt=rfc822;Bob+2Bx@Relay\.example$' "$T/show5"

# STARTTLS may: TLS with posternd, received as ESMTPS.
probe d6 -p "$PD" -t may a@relay.example
expect_grep pd_tls_may "^open ok peer=127\.0\.0\.1\[127\.0\.0\.1\]:$PD tls=TLSv1\.3 TLS_" "$T/d6"
expect_eq pd_tls_may_sent "$(rcpt d6 1.1)" "code=250 status=2.0.0"
expect_grep pd_tls_may_logged "$(qid d6 1.1): client=probe\.test\.example\[127\.0\.0\.1\], .*tls=TLSv1\.3" "$T/posternd.log"

# encrypt: the right CA and name; a wrong name; an untrusted certificate;
# an IP the certificate does not name. Refusals are 4.7.5, temporary.
probe d7 -p "$PD" -H mx.test.example -t encrypt -C "$T/mx.crt" a@relay.example
expect_grep pd_encrypt_ok "^open ok peer=mx\.test\.example\[127\.0\.0\.1\]:$PD tls=TLSv1\.3 " "$T/d7"
expect_eq pd_encrypt_sent "$(rcpt d7 1.1)" "code=250 status=2.0.0"
probe d8 -p "$PD" -H wrong.test.example -t encrypt -C "$T/mx.crt" a@relay.example
expect_grep pd_encrypt_wrong_name '^open fail status=4\.7\.5 permanent=0 why=server certificate verification failed for wrong\.test\.example\[127\.0\.0\.1\]:[0-9]*: [Hh]ostname mismatch$' "$T/d8"
probe d9 -p "$PD" -H mx.test.example -t encrypt -C "$T/other.crt" a@relay.example
expect_grep pd_encrypt_untrusted '^open fail status=4\.7\.5 permanent=0 why=server certificate verification failed for mx\.test\.example' "$T/d9"
probe d10 -p "$PD" -t encrypt -C "$T/mx.crt" a@relay.example
expect_grep pd_encrypt_ip '^open fail status=4\.7\.5 permanent=0 why=server certificate verification failed .*IP address mismatch$' "$T/d10"

# One client TLS context serves every connection of a process: what one
# connection's policy asks (verification, the CA store) must not change
# the next one's. Without a CA, "encrypt" fails on posternd's self-signed
# certificate and "may" still goes on in TLS after it; a "may" first and
# "encrypt" with the CA after it verifies.
probe d10b -p "$PD" -H mx.test.example -n 4 -P encrypt,may,encrypt,may \
	a@relay.example
expect_eq pd_shared_ctx_opens "$(grep '^open ' "$T/d10b" | cut -d' ' -f1-2 | tr '\n' ' ')" \
	"open fail open ok open fail open ok "
expect_eq pd_shared_ctx_may_after_encrypt "$(rcpt d10b 4.1)" "code=250 status=2.0.0"
expect_grep pd_shared_ctx_encrypt_refused '^open fail status=4\.7\.5 permanent=0 why=server certificate verification failed for mx\.test\.example' "$T/d10b"
probe d10c -p "$PD" -H mx.test.example -C "$T/mx.crt" -n 3 \
	-P may,encrypt,may a@relay.example
expect_eq pd_shared_ctx_ca_later "$(grep -c '^open ok .* tls=TLSv1\.3 ' "$T/d10c")" 3
expect_eq pd_shared_ctx_ca_later_sent "$(rcpt d10c 2.1)" "code=250 status=2.0.0"

# AUTH PLAIN after STARTTLS: far.example is relayed for site1 from a
# client outside mynetworks; a wrong password is a temporary failure.
probe d11 -p "$PD" -H mx.test.example -C "$T/mx.crt" -t may -u site1 \
	-w "$pw" -f '' dave@far.example
expect_eq pd_auth_relayed "$(rcpt d11 1.1)" "code=250 status=2.0.0"
expect_grep pd_auth_logged "$(qid d11 1.1): client=probe\.test\.example\[127\.0\.0\.1\], .*tls=TLSv1\.3 .*auth=site1" "$T/posternd.log"
probe d12 -p "$PD" -H mx.test.example -C "$T/mx.crt" -t may -u site1 \
	-w 'not it' -f '' dave@far.example
expect_grep pd_auth_wrong '^open fail status=4\.7\.8 permanent=0 why=SASL authentication failed; server .* said: 535 5\.7\.8 ' "$T/d12"
expect_grep pd_auth_wrong_logged 'user=site1: authentication failed' "$T/posternd.log"

stop_posternd
expect_eq posternd_stops "$?" 0
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# Every probe ended normally, with no sanitizer report.
expect_eq probes_ran "$(cat "$T"/*.err | grep -c '^probe exit 0$')" "$NPROBE"
expect_eq probes_no_sanitizer_report "$(cat "$T"/*.err | grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer')" 0

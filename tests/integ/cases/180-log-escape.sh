# 180-log-escape: what a peer sends cannot forge or split a log line, and
# `postern show` / `postern queue` never print its control bytes.
#
# Every entry point where peer text reaches a log line is tried with CR,
# LF, ESC, bytes that are not UTF-8 and ", " / ">": AUTH user names of
# every mechanism (CRAM-MD5, SCRAM-SHA-256, and PLAIN and LOGIN with
# auth_plaintext = yes), EHLO names, MAIL and RCPT with quoted local parts,
# ORCPT and ENVID with "+", "=", "\\", ">" and "," in their xtext, and
# a hostile receiver (a Python SMTP server) that the runner logs and
# stores. Then: every line of the log starts with "postern/", each event
# has exactly one line, and its fields, split on ", ", give the expected
# keys and values that unescape to exactly what was sent. The stored
# messages are then printed by `show` and `queue` (text and --json): no
# control byte, valid UTF-8, no C1 control, JSON that parses.
. "$POSTERN_TOP/tests/integ/lib.sh"

pw='log escape pw'
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example >"$T/users"
chmod 644 "$T/users"

# The hostile receiver: answers RCPT with 450 and a text full of control
# bytes, bytes that are not UTF-8, a C1 control and a forged field.
RP=$(free_port)
cat >"$T/hostile.py" <<'EOF'
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(8)
srv.settimeout(120)
REPLY = (b"450 4.2.0 busy\x1b[31m \xff\xfe \x9b1m \xc2\x9b2m \\x41 a>b, "
         b"status=sent (250 forged)\r\n")
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(20)
    f = c.makefile("rb")
    c.sendall(b"220 hostile.test ESMTP\r\n")
    try:
        for line in f:
            cmd = line[:4].upper()
            if cmd == b"EHLO":
                c.sendall(b"250-hostile.test\r\n250-DSN\r\n250 8BITMIME\r\n")
            elif cmd in (b"HELO", b"MAIL", b"RSET", b"NOOP"):
                c.sendall(b"250 2.0.0 Ok\r\n")
            elif cmd == b"RCPT":
                c.sendall(REPLY)
            elif cmd == b"QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                break
            else:
                c.sendall(b"502 5.5.2 no\r\n")
    except OSError:
        pass
    c.close()
EOF
"$PY" "$T/hostile.py" "$RP" >"$T/hostile.log" 2>&1 &
reap $!
wait_port "$RP" || notok hostile_receiver "not listening on $RP"

# deliver.example goes to the hostile receiver; the rest of .example is
# held for its site, so what the server stored stays to be inspected.
printf '.example hold\ndeliver.example [127.0.0.1]:%s tls=none\n' "$RP" \
	>"$T/routes"
chmod 644 "$T/routes"
# 127.0.0.1 is mynetworks; 127.0.0.2.. are "the Internet".
start_posternd relay_domains=relay.example,deliver.example \
	mynetworks=127.0.0.1/32 auth_plaintext=yes max_errors=50 \
	"users_file=$T/users" "routes_file=$T/routes" || exit 1

# The client. Each attempt prints NAME=REPLY; the hostile values it used
# go to $T/sent.json for the log check.
cat >"$T/client.py" <<'EOF'
import base64, hashlib, hmac, json, socket, sys
port = int(sys.argv[1])
sent = {}

class C:
    def __init__(self, src):
        self.s = socket.create_connection(("127.0.0.1", port), 20,
            source_address=(src, 0))
        self.f = self.s.makefile("rb")
        self.reply()
    def reply(self):
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                return lines or [b"EOF"]
            lines.append(l.rstrip(b"\r\n"))
            if len(l) < 4 or l[3:4] != b"-":
                return lines
    def cmd(self, b):
        self.s.sendall(b + b"\r\n")
        return self.reply()[-1].decode("utf-8", "replace")
    def close(self):
        self.cmd(b"QUIT")
        self.s.close()

b64 = lambda b: base64.b64encode(b)
FORGED = b"\npostern/smtpd[1]: 1K0VFQ9AWNR: client=forged[6.6.6.6], auth=admin"

# AUTH: one failure per client address (no throttling interferes).
name = b"cram\r" + FORGED + b"\x1b[31m, user=root"
c = C("127.0.0.2")
c.cmd(b"EHLO auth.test")
ch = c.cmd(b"AUTH CRAM-MD5")
print("cram_334=" + ch[:3])
print("cram=" + c.cmd(b64(name + b" " + b"0" * 32)))
sent["cram"] = name.decode("latin-1")
c.close()

name = b"plain" + FORGED + b"\\n, x=y>"
c = C("127.0.0.3")
c.cmd(b"EHLO auth.test")
print("plain=" + c.cmd(b"AUTH PLAIN " + b64(b"\0" + name + b"\0wrong")))
sent["plain"] = name.decode("latin-1")
c.close()

name = b"login" + FORGED + b"\xff\xc2\x9b"
c = C("127.0.0.4")
c.cmd(b"EHLO auth.test")
print("login_334=" + c.cmd(b"AUTH LOGIN")[:3])
print("login_user=" + c.cmd(b64(name))[:3])
print("login=" + c.cmd(b64(b"wrong")))
sent["login"] = name.decode("latin-1")
c.close()

# SCRAM-SHA-256 (RFC 5802): a made-up name gets a fake salt; the proof
# is wrong, so the exchange ends in 535 and the name is logged.
name = b"scram" + FORGED + b"\x7f"
c = C("127.0.0.5")
c.cmd(b"EHLO auth.test")
first = b"n=" + name.replace(b"=", b"=3D").replace(b",", b"=2C") + b",r=abcdef"
r = c.cmd(b"AUTH SCRAM-SHA-256 " + b64(b"n,," + first))
print("scram_334=" + r[:3])
sf = base64.b64decode(r[4:]) if r.startswith("334 ") else b""
nonce = dict(kv.split(b"=", 1) for kv in sf.split(b",")).get(b"r", b"x")
final = b"c=" + b64(b"n,,") + b",r=" + nonce + b",p=" + b64(b"\0" * 32)
print("scram=" + c.cmd(b64(final)))
sent["scram"] = name.decode("latin-1")
c.close()

# EHLO with control and 8-bit bytes, then MAIL and RCPT with quoted local
# parts carrying "> , = \" and a relay refusal (from 127.0.0.6, which is
# not in mynetworks, to a domain that is not ours).
helo = b"e\x1bh\x01lo,\x1bauth=admin\x7f\xff\x9b"
frm = b'"a>, to=<x@y>, b=c\\\\d"@client.example'
c = C("127.0.0.6")
print("ehlo=" + c.cmd(b"EHLO " + helo))
print("mail=" + c.cmd(b"MAIL FROM:<" + frm + b">"))
print("rcpt_denied=" + c.cmd(b'RCPT TO:<"r>, from=<z"@far.example>'))
print("rcpt=" + c.cmd(b'RCPT TO:<"q>,x"@relay.example>'))
print("data=" + c.cmd(b"DATA"))
print("dot=" + c.cmd(b"Subject: x\r\n\r\nbody\r\n."))
c.close()
# The server keeps an EHLO name with its control bytes made spaces.
sent["helo"] = bytes(b if b >= 0x20 and b != 0x7f else 0x20
    for b in helo).decode("latin-1")
sent["from"] = frm.decode("latin-1")
sent["denied"] = '"r>, from=<z"@far.example'

# ORCPT and ENVID with xtext-encoded "+=\\" and ">,"; the
# recipient goes to the hostile receiver, whose reply the runner logs.
c = C("127.0.0.1")
c.cmd(b"EHLO orcpt.test")
print("mail_envid=" + c.cmd(b"MAIL FROM:<s@client.example> ENVID=e+2B+3Dv>,w+5C"))
print("rcpt_orcpt=" + c.cmd(b'RCPT TO:<"t>, u"@deliver.example> '
    b"ORCPT=rfc822;o>,+2B+5Cp@deliver.example NOTIFY=FAILURE"))
print("data2=" + c.cmd(b"DATA"))
print("dot2=" + c.cmd(b"Subject: y\r\n\r\nbody\r\n."))
c.close()
sent["orcpt_to"] = '"t>, u"@deliver.example'
sent["orcpt"] = "o>,+2B+5Cp@deliver.example"

# A sender with a C1 control (U+009B, CSI) under SMTPUTF8, for `show`.
c = C("127.0.0.1")
c.cmd(b"EHLO utf8.test")
print("mail_c1=" + c.cmd(b'MAIL FROM:<"c1\xc2\x9b31m"@client.example> SMTPUTF8'))
print("rcpt_c1=" + c.cmd(b"RCPT TO:<c1@relay.example>"))
print("data3=" + c.cmd(b"DATA"))
print("dot3=" + c.cmd(b"Subject: z\r\n\r\nbody\r\n."))
c.close()
json.dump(sent, open(sys.argv[2], "w"))
EOF
"$PY" "$T/client.py" "$SMTP_PORT" "$T/sent.json" >"$T/client.out" 2>&1
val() { sed -n "s/^$1=//p" "$T/client.out" | head -n 1; }
expect_eq cram_challenge "$(val cram_334)" 334
expect_eq cram_failed "$(val cram | cut -c 1-9)" "535 5.7.8"
expect_eq plain_failed "$(val plain | cut -c 1-9)" "535 5.7.8"
expect_eq login_asked "$(val login_334) $(val login_user)" "334 334"
expect_eq login_failed "$(val login | cut -c 1-9)" "535 5.7.8"
expect_eq scram_challenge "$(val scram_334)" 334
expect_eq scram_failed "$(val scram | cut -c 1-9)" "535 5.7.8"
expect_eq ehlo_taken "$(val ehlo | cut -c 1-3)" 250
expect_eq quoted_mail_taken "$(val mail)" "250 2.1.0 Ok"
expect_eq quoted_rcpt_denied "$(val rcpt_denied | cut -c 1-9)" "554 5.7.1"
expect_eq quoted_rcpt_taken "$(val rcpt)" "250 2.1.5 Ok"
id1=$(val dot | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq quoted_queued "$(printf '%s' "$id1" | grep -c '^[0-9A-Z]\{11\}$')" 1
expect_eq envid_taken "$(val mail_envid)" "250 2.1.0 Ok"
expect_eq orcpt_taken "$(val rcpt_orcpt)" "250 2.1.5 Ok"
id2=$(val dot2 | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq orcpt_queued "$(printf '%s' "$id2" | grep -c '^[0-9A-Z]\{11\}$')" 1
id3=$(val dot3 | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq c1_queued "$(printf '%s' "$id3" | grep -c '^[0-9A-Z]\{11\}$')" 1

# A local sender with a C1 control through `postern enqueue`; an ESC in
# a quoted local part is refused (RFC 5321 qtextSMTP) without echoing it.
printf 'Subject: local\n\nbody\n' | "$P" enqueue \
	-f "$(printf '"loc\302\2331m"@client.example')" r@relay.example \
	>"$T/enq.out" 2>&1
expect_eq enqueue_c1 "$?" 0
id4=$(tail -n 1 "$T/enq.out")
printf 'x\n' | "$P" enqueue -f "$(printf '"e\033[31m"@client.example')" \
	r@relay.example >"$T/enq2.out" 2>&1
expect_eq enqueue_esc_refused "$?" 2
expect_eq enqueue_esc_not_echoed "$(grep -c "$(printf '\033')" "$T/enq2.out")" 0

# The runner's attempt at the hostile receiver is logged (poll, 30 s).
i=0
while ! grep -q ': to=<.*status=deferred' "$T/posternd.log" && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_grep runner_tried ': to=<.*status=deferred' "$T/posternd.log"
stop_posternd
expect_eq posternd_stops "$?" 0

# ------------------------------------------------------------------
# The log.
cat >"$T/logcheck.py" <<'EOF'
import json, re, sys
raw = open(sys.argv[1], "rb").read()
sent = json.load(open(sys.argv[2]))
ids = sys.argv[3:]
out = {}

def unesc(s):
    """The log's escapes back to bytes: \\n \\r \\t \\\\ \\xHH."""
    b, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in "nrt\\":
                b += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}[n]
                i += 2
                continue
            if n == "x" and re.match(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
                b.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            return None             # a lone backslash: not our escaping
        b += s[i].encode("utf-8")
        i += 1
    return b.decode("latin-1")

lines = raw.split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
out["all_postern"] = all(l.startswith(b"postern/") for l in lines)
out["no_cr"] = b"\r" not in raw
out["no_ctl"] = not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", raw)
try:
    text = raw.decode("utf-8")
    out["utf8"] = not re.search("[\u0080-\u009f]", text)
except UnicodeDecodeError:
    out["utf8"] = False
    text = raw.decode("latin-1")
out["no_forged"] = not any(l.startswith(b"postern/smtpd[1]:") for l in lines)
body = [re.sub(r"^postern/\w+\[\d+\]: ", "", l) for l in text.split("\n")]

def fields(line):
    """key -> value of the ", "-separated fields (values unescaped)."""
    d = {}
    for f in line.split(", "):
        k, sep, v = f.partition("=")
        if not sep or k in d:
            return None
        d[k] = v
    return d

# AUTH failures: "client=H[A], addr=A, user=NAME: authentication failed".
for mech in ("cram", "plain", "login", "scram"):
    want = sent[mech]
    got = [l for l in body if l.endswith(": authentication failed")
           and "user=" + mech in l]
    ok = len(got) == 1
    if ok:
        d = fields(got[0][:-len(": authentication failed")])
        ok = d is not None and sorted(d) == ["addr", "client", "user"] \
            and unesc(d["user"]) == want
    out["auth_" + mech] = ok
out["auth_lines"] = sum(l.endswith(": authentication failed") for l in body)

# The message from the hostile EHLO: "ID: client=.., from=<..>, ...".
def msgline(qid):
    got = [l for l in body if l.startswith(qid + ": client=")]
    if len(got) != 1:
        return None
    return fields(got[0][len(qid) + 2:])
d = msgline(ids[0])
out["msg_keys"] = d is not None and list(d) == ["client", "from", "size",
    "nrcpt", "tls", "auth"]
out["msg_client"] = d is not None and \
    unesc(d["client"]) == sent["helo"] + "[127.0.0.6]"
out["msg_from"] = d is not None and d["from"].startswith("<") and \
    d["from"].endswith(">") and unesc(d["from"][1:-1]) == sent["from"]

# The relay refusal: "client=.., reject RCPT from=<..>, to=<..>: relay ...".
got = [l for l in body if "reject RCPT" in l]
ok = len(got) == 1 and got[0].endswith(": relay access denied")
if ok:
    d = fields(got[0][:-len(": relay access denied")])
    ok = d is not None and list(d) == ["client", "reject RCPT from", "to"] \
        and unesc(d["reject RCPT from"][1:-1]) == sent["from"] \
        and unesc(d["to"][1:-1]) == sent["denied"]
out["reject_line"] = ok

# The runner's line: "ID: to=<..>, orig_to=<..>, relay=.., ..., status=
# deferred (text)"; the peer text is last, in ( ).
got = [l for l in body if l.startswith(ids[1] + ": to=")]
ok = len(got) == 1
if ok:
    m = re.match(r"(.*?), status=(\w+) \((.*)\)$", got[0][len(ids[1]) + 2:])
    ok = m is not None and m.group(2) == "deferred"
    d = fields(m.group(1)) if ok else None
    ok = ok and d is not None and list(d) == ["to", "orig_to", "relay",
        "delay", "delays", "attempts", "dsn"] \
        and unesc(d["to"][1:-1]) == sent["orcpt_to"] \
        and unesc(d["orig_to"][1:-1]) == sent["orcpt"] \
        and d["dsn"] == "4.2.0"
out["dlog_line"] = ok
for k in sorted(out):
    print("%s=%s" % (k, out[k]))
EOF
"$PY" "$T/logcheck.py" "$T/posternd.log" "$T/sent.json" "$id1" "$id2" \
	>"$T/logcheck.out" 2>&1
lv() { sed -n "s/^$1=//p" "$T/logcheck.out" | head -n 1; }
for k in all_postern no_cr no_ctl utf8 no_forged auth_cram auth_plain \
    auth_login auth_scram msg_keys msg_client msg_from reject_line \
    dlog_line; do
	expect_eq "log_$k" "$(lv "$k")" True
done
expect_eq log_auth_lines "$(lv auth_lines)" 4
[ "$(lv all_postern)" = True ] ||
	grep -v '^postern/' "$T/posternd.log" | head -5 | sed 's/^/    | /'

# ------------------------------------------------------------------
# `show` and `queue`: every stored field escaped; JSON always valid.
cat >"$T/outcheck.py" <<'EOF'
import json, re, sys
raw = sys.stdin.buffer.read()
bad = []
# TAB is allowed in text: header fields are folded with it.
ctl = rb"[\x00-\x08\x0b-\x1f\x7f]" if sys.argv[1] == "text" else \
    rb"[\x00-\x09\x0b-\x1f\x7f]"
m = re.search(rb".{0,20}" + ctl + rb".{0,5}", raw)
if m:
    bad.append("control byte in %r" % m.group(0))
try:
    text = raw.decode("utf-8")
    m = re.search("[\u0080-\u009f\u2028\u2029]", text)
    if m:
        bad.append("C1 control U+%04X" % ord(m.group(0)))
except UnicodeDecodeError as e:
    bad.append("not UTF-8: %s" % e)
    text = raw.decode("latin-1")
if sys.argv[1] == "json":
    for l in raw.split(b"\n"):
        if l.strip():
            try:
                json.loads(l)
            except ValueError as e:
                bad.append("bad JSON: %s" % e)
else:
    for want in sys.argv[2:]:
        if want not in text:
            bad.append("no %r" % want)
print("; ".join(bad) if bad else "clean")
EOF
"$P" show "$id1" >"$T/show1" 2>&1
expect_eq show_hostile_ehlo "$("$PY" "$T/outcheck.py" text \
	'client: e h lo, auth=admin \xff\x9b[127.0.0.6]' \
	'sender: <"a\x3e\x2c to=<x@y\x3e\x2c b=c\\\\d"@client.example>' \
	'recipient: <"q\x3e\x2cx"@relay.example>' <"$T/show1")" clean
"$P" show "$id2" >"$T/show2" 2>&1
expect_eq show_hostile_reply "$("$PY" "$T/outcheck.py" text \
	'busy [31m \xff\xfe \x9b1m \xc2\x9b2m \\x41 a>b' \
	'envid: e+2B+3Dv>,w+5C' 'orcpt=rfc822;o>,+2B+5Cp@deliver.example' \
	<"$T/show2")" clean
"$P" show "$id3" >"$T/show3" 2>&1
expect_eq show_c1_sender "$("$PY" "$T/outcheck.py" text \
	'sender: <"c1\xc2\x9b31m"@client.example>' <"$T/show3")" clean
"$P" show "$id4" >"$T/show4" 2>&1
expect_eq show_c1_local "$("$PY" "$T/outcheck.py" text \
	'sender: <"loc\xc2\x9b1m"@client.example>' <"$T/show4")" clean
"$P" queue >"$T/queue.txt" 2>&1
expect_eq queue_text_clean "$("$PY" "$T/outcheck.py" text \
	'\xff\xfe \x9b1m' <"$T/queue.txt")" clean
"$P" queue --json >"$T/queue.json" 2>&1
expect_eq queue_json_clean "$("$PY" "$T/outcheck.py" json <"$T/queue.json")" clean
# The JSON reads back to what was stored (bytes that are not UTF-8 as
# U+00XX, as Latin-1 would read them).
expect_eq queue_json_values "$("$PY" -c '
import json, sys
m = {}
for l in open(sys.argv[1], "rb"):
    o = json.loads(l)
    m[o["id"]] = o
print(m[sys.argv[2]]["sender"] == "\"c1\u009b31m\"@client.example",
      "\u00ff\u00fe \u009b1m \u009b2m" in m[sys.argv[3]]["recipients"][0]["last_reply"])
' "$T/queue.json" "$id3" "$id2" 2>&1)" "True True"
"$P" flush --dry-run "$id2" >"$T/dry.txt" 2>&1
expect_eq flush_dry_run_escaped "$("$PY" "$T/outcheck.py" text \
	"$id2"' <"t\x3e\x2c u"@deliver.example> deferred via' <"$T/dry.txt")" clean
"$P" stats >"$T/stats.txt" 2>&1
expect_eq stats_text_clean "$("$PY" "$T/outcheck.py" text <"$T/stats.txt")" clean
"$P" stats --json >"$T/stats.json" 2>&1
expect_eq stats_json_clean "$("$PY" "$T/outcheck.py" json <"$T/stats.json")" clean
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

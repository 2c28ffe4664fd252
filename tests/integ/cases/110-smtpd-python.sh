# 110-smtpd-python: posternd against Python's smtplib: one session with
# several messages and RSET between, the state errors (503, 500, 554),
# VRFY/NOOP/HELP, an enhanced status code on every reply, and
# SCRAM-SHA-256 (RFC 5802) done by hand against a `postern passwd` line.
. "$POSTERN_TOP/tests/integ/lib.sh"

pw='scram pass 42'
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example >"$T/users"
chmod 644 "$T/users"
# posternd also runs the delivery scheduler: every recipient here (all
# under .example) is held for its site, so what the server stored stays
# in the queue to be inspected.
echo '.example hold' >"$T/routes"
chmod 644 "$T/routes"
# The session below makes nine errors on purpose: keep it open.
start_posternd relay_domains=relay.example mynetworks=127.0.0.1/32 \
	max_errors=20 "users_file=$T/users" "routes_file=$T/routes" || exit 1

val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# rcpts ID - "sender: rcpt rcpt..." of that message in `postern queue --json`.
rcpts() {
	qjson '"; ".join(m["sender"] + ": " + " ".join(r["address"] for r in m["recipients"]) for m in msgs if m["id"] == "'"$1"'")'
}

# ------------------------------------------------------------------
# One session. Every reply after the greeting and EHLO is recorded and
# checked for an enhanced status code of its own class (RFC 2034 §3).
cat >"$T/session.py" <<'EOF'
import re, smtplib, sys
port = int(sys.argv[1])
out = {}
seen = []           # (what, code, text) of every reply to check

def rec(key, what, r):
    code, msg = r
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    seen.append((what, code, text))
    out[key] = "%d %s" % (code, text.split("\n")[0])
    return code, text

def qid(text):
    m = re.match(r"2\.0\.0 Ok: queued as ([0-9A-Z]{11})$", text)
    return m.group(1) if m else "none"

s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.test.example",
                 timeout=20)
rec("mail_before_ehlo", "MAIL", s.docmd("MAIL FROM:<a@py.test.example>"))
s.ehlo()
out["ehlo_esc"] = s.has_extn("enhancedstatuscodes")
rec("rcpt_before_mail", "RCPT", s.docmd("RCPT TO:<r@relay.example>"))
rec("data_before_mail", "DATA", s.docmd("DATA"))
rec("unknown", "XYZZY", s.docmd("XYZZY plugh"))
rec("vrfy", "VRFY", s.verify("r1@relay.example"))
rec("vrfy_noarg", "VRFY", s.docmd("VRFY"))
rec("noop", "NOOP", s.noop())
rec("help", "HELP", s.docmd("HELP"))
rec("expn", "EXPN", s.docmd("EXPN staff"))
# DATA with a sender but no recipient.
rec("mail0", "MAIL", s.mail("nobody@py.test.example"))
rec("data_no_rcpt", "DATA", s.docmd("DATA"))
rec("rset0", "RSET", s.rset())

# Message 1.
rec("mail1", "MAIL", s.mail("one@py.test.example"))
rec("rcpt1", "RCPT", s.rcpt("r1@relay.example"))
c, t = rec("data1", "DATA", s.data("Subject: one\r\n\r\nfirst\r\n"))
out["id1"] = qid(t)
rec("rset1", "RSET", s.rset())
# Abandoned: MAIL and RCPT, then RSET: nothing of it may be queued, and
# the next transaction must not inherit its recipient.
rec("mail_ab", "MAIL", s.mail("abandoned@py.test.example"))
rec("rcpt_ab", "RCPT", s.rcpt("abandoned@relay.example"))
rec("rset_ab", "RSET", s.rset())
rec("rcpt_after_rset", "RCPT", s.rcpt("late@relay.example"))
# Message 2, two recipients.
rec("mail2", "MAIL", s.mail("two@py.test.example"))
rec("rcpt2a", "RCPT", s.rcpt("r2a@relay.example"))
rec("rcpt2b", "RCPT", s.rcpt("r2b@relay.example"))
rec("mail2_nested", "MAIL", s.docmd("MAIL FROM:<nested@py.test.example>"))
c, t = rec("data2", "DATA", s.data("Subject: two\r\n\r\nsecond\r\n"))
out["id2"] = qid(t)
# Message 3 straight after, no RSET (a new MAIL may follow the dot).
rec("mail3", "MAIL", s.mail("three@py.test.example"))
rec("rcpt3", "RCPT", s.rcpt("r3@relay.example"))
c, t = rec("data3", "DATA", s.data("Subject: three\r\n\r\nthird\r\n"))
out["id3"] = qid(t)
rec("rset3", "RSET", s.rset())
rec("quit", "QUIT", s.quit())

bad = []
for what, code, text in seen:
    lines = text.split("\n")
    if 200 <= code < 600 and code // 100 != 3:
        for l in lines:
            m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3}) ", l)
            if not m or int(m.group(1)) != code // 100:
                bad.append("%s: %d %s" % (what, code, l))
out["esc_checked"] = len(seen)
out["esc_bad"] = "; ".join(bad) or "none"
for k, v in out.items():
    print("%s=%s" % (k, v))
EOF
"$PY" "$T/session.py" "$SMTP_PORT" >"$T/s.out" 2>&1
S="$T/s.out"
expect_eq mail_before_ehlo_503 "$(val mail_before_ehlo "$S" | cut -c 1-9)" "503 5.5.1"
expect_eq ehlo_offers_esc "$(val ehlo_esc "$S")" True
expect_eq rcpt_before_mail_503 "$(val rcpt_before_mail "$S" | cut -c 1-3)" 503
expect_eq data_before_mail_503 "$(val data_before_mail "$S" | cut -c 1-3)" 503
expect_eq unknown_500 "$(val unknown "$S" | cut -c 1-9)" "500 5.5.1"
expect_eq vrfy_252 "$(val vrfy "$S" | cut -c 1-3)" 252
expect_eq vrfy_noarg_501 "$(val vrfy_noarg "$S" | cut -c 1-3)" 501
expect_eq noop_250 "$(val noop "$S")" "250 2.0.0 Ok"
expect_eq help_214 "$(val help "$S" | cut -c 1-3)" 214
expect_eq expn_502 "$(val expn "$S" | cut -c 1-3)" 502
expect_eq data_no_rcpt "$(val data_no_rcpt "$S" | cut -c 1-3 | grep -c '^\(503\|554\)$')" 1
expect_eq rset_250 "$(val rset_ab "$S")" "250 2.0.0 Ok"
expect_eq rcpt_after_rset_503 "$(val rcpt_after_rset "$S" | cut -c 1-3)" 503
expect_eq nested_mail_503 "$(val mail2_nested "$S" | cut -c 1-3)" 503
expect_eq quit_221 "$(val quit "$S")" "221 2.0.0 Bye"
expect_eq esc_every_reply "$(val esc_bad "$S")" none
expect_eq esc_checked_all "$(val esc_checked "$S")" 30
id1=$(val id1 "$S")
id2=$(val id2 "$S")
id3=$(val id3 "$S")
expect_eq msg1_queued "$(rcpts "$id1")" "one@py.test.example: r1@relay.example"
expect_eq msg2_queued "$(rcpts "$id2")" "two@py.test.example: r2a@relay.example r2b@relay.example"
expect_eq msg3_queued "$(rcpts "$id3")" "three@py.test.example: r3@relay.example"
expect_eq three_messages "$(qjson 'len(msgs)')" 3
expect_eq each_once "$(qjson 'sorted(m["id"] for m in msgs) == sorted("'"$id1 $id2 $id3"'".split())')" True
expect_eq abandoned_not_queued "$(qjson 'sum(1 for m in msgs if m["sender"].startswith(("abandoned@", "nobody@")) or any(r["address"] in ("abandoned@relay.example", "late@relay.example") for r in m["recipients"]))')" 0

# ------------------------------------------------------------------
# SCRAM-SHA-256 by hand (RFC 5802 §3, §5), from 127.0.0.2 (outside
# mynetworks, so relaying anywhere needs the AUTH).
cat >"$T/scram.py" <<'EOF'
import base64, hashlib, hmac, os, re, smtplib, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
b64 = lambda b: base64.b64encode(b).decode()
H = lambda k, m: hmac.new(k, m, hashlib.sha256).digest()
out = {}
esc = re.compile(r"([245])\.\d{1,3}\.\d{1,3} ")
def esc_ok(code, msg):
    m = esc.match(msg)
    return bool(m) and int(m.group(1)) == code // 100

s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.test.example",
                 timeout=20, source_address=("127.0.0.2", 0))
s.ehlo()
out["offered"] = "SCRAM-SHA-256" in s.esmtp_features.get("auth", "").split()
cnonce = b64(os.urandom(18))
bare = "n=%s,r=%s" % (user, cnonce)
code, sf = s.docmd("AUTH", "SCRAM-SHA-256 " + b64(("n,," + bare).encode()))
out["first"] = code
server_first = base64.b64decode(sf).decode()
f = dict(kv.split("=", 1) for kv in server_first.split(","))
out["nonce_extends"] = f["r"].startswith(cnonce) and len(f["r"]) > len(cnonce)
salted = hashlib.pbkdf2_hmac("sha256", pw, base64.b64decode(f["s"]),
                             int(f["i"]))
ckey = H(salted, b"Client Key")
without_proof = "c=%s,r=%s" % (b64(b"n,,"), f["r"])
authmsg = ",".join((bare, server_first, without_proof)).encode()
proof = bytes(a ^ b for a, b in zip(ckey, H(hashlib.sha256(ckey).digest(),
                                               authmsg)))
code, m = s.docmd(b64((without_proof + ",p=" + b64(proof)).encode()))
out["final"] = code
if code == 334:
    sig = base64.b64decode(m).decode()
    out["server_sig_ok"] = sig == "v=" + b64(H(H(salted, b"Server Key"),
                                                authmsg))
    code, m = s.docmd("")               # the empty answer to v=
text = m.decode()
out["result"] = "%d %s" % (code, text)
out["result_esc_ok"] = esc_ok(code, text)
if code == 235:
    code, m = s.docmd("MAIL FROM:<%s@dialup.example>" % user)
    code, m = s.docmd("RCPT TO:<far@far.example>")
    out["relay_rcpt"] = "%d %s" % (code, m.decode())
    code, m = s.data("Subject: scram\r\n\r\nauthenticated\r\n")
    out["relay_data"] = "%d %s" % (code, m.decode())
else:
    code, m = s.docmd("MAIL FROM:<%s@dialup.example>" % user)
    code, m = s.docmd("RCPT TO:<far@far.example>")
    out["relay_rcpt"] = "%d %s" % (code, m.decode())
s.quit()
for k, v in out.items():
    print("%s=%s" % (k, v))
EOF
"$PY" "$T/scram.py" "$SMTP_PORT" site1 "$pw" >"$T/scram.out" 2>&1
A="$T/scram.out"
expect_eq scram_offered "$(val offered "$A")" True
expect_eq scram_server_first_334 "$(val first "$A")" 334
expect_eq scram_nonce "$(val nonce_extends "$A")" True
expect_eq scram_server_final_334 "$(val final "$A")" 334
expect_eq scram_server_signature "$(val server_sig_ok "$A")" True
expect_eq scram_235 "$(val result "$A" | cut -c 1-9)" "235 2.7.0"
expect_eq scram_relay_rcpt "$(val relay_rcpt "$A")" "250 2.1.5 Ok"
id4=$(val relay_data "$A" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq scram_relayed "$(rcpts "$id4")" "site1@dialup.example: far@far.example"
"$P" show --raw "$id4" >"$T/raw4"
expect_grep scram_received_esmtpa 'by mx\.test\.example (postern) with ESMTPA' "$T/raw4"
expect_grep scram_received_user '(Authenticated sender: site1)' "$T/raw4"

"$PY" "$T/scram.py" "$SMTP_PORT" site1 'scram pass 43' >"$T/scram2.out" 2>&1
B="$T/scram2.out"
expect_eq scram_wrong_first_334 "$(val first "$B")" 334
expect_eq scram_wrong_535 "$(val result "$B" | cut -c 1-9)" "535 5.7.8"
expect_eq scram_wrong_esc "$(val result_esc_ok "$B")" True
expect_eq scram_wrong_no_relay "$(val relay_rcpt "$B" | cut -c 1-9)" "554 5.7.1"
expect_grep scram_wrong_logged 'addr=127\.0\.0\.2, user=site1: authentication failed' "$T/posternd.log"
# An unknown user fails the same way, after the same exchange.
"$PY" "$T/scram.py" "$SMTP_PORT" nosuchuser "$pw" >"$T/scram3.out" 2>&1
expect_eq scram_unknown_user_334 "$(val first "$T/scram3.out")" 334
expect_eq scram_unknown_user_535 "$(val result "$T/scram3.out" | cut -c 1-9)" "535 5.7.8"

expect_eq four_messages "$(qjson 'len(msgs)')" 4
stop_posternd
expect_eq posternd_stops "$?" 0
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# 100-smtpd-swaks: posternd's SMTP server against a real client (swaks),
# with raw-socket Python where swaks cannot say it: plain delivery and
# transparency, STARTTLS, AUTH (PLAIN, LOGIN, CRAM-MD5, failures),
# pipelining, 8BITMIME, SMTPUTF8 and the DSN parameters.
. "$POSTERN_TOP/tests/integ/lib.sh"

pw='dial-up s3cret'
make_cert mx mx.test.example
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example >"$T/users"
chmod 644 "$T/users"
# posternd also runs the delivery scheduler: every recipient here (all
# under .example) is held for its site, so what the server stored stays
# in the queue to be inspected.
echo '.example hold' >"$T/routes"
chmod 644 "$T/routes"
# 127.0.0.1 is mynetworks; 127.0.0.2 is "the Internet".
start_posternd relay_domains=relay.example mynetworks=127.0.0.1/32 \
	"tls_cert_file=$T/mx.crt" "tls_key_file=$T/mx.key" \
	"users_file=$T/users" "routes_file=$T/routes" || exit 1

HELO=client.test.example
TAB=$(printf '\t')
CR=$(printf '\r')
swaks_() {
	out=$1
	shift
	swaks --server "127.0.0.1:$SMTP_PORT" --helo "$HELO" --timeout 20 \
		"$@" >"$T/$out" 2>&1
}
# qid FILE - the queue id in swaks' transcript (plain or TLS).
qid() {
	sed -n 's/^<[-~]  250 2\.0\.0 Ok: queued as \([0-9A-Z]\{11\}\)$/\1/p' "$1"
}
# rcpts ID - "sender: rcpt rcpt..." of that message in `postern queue --json`.
rcpts() {
	qjson '"; ".join(m["sender"] + ": " + " ".join(r["address"] for r in m["recipients"]) for m in msgs if m["id"] == "'"$1"'")'
}

# ------------------------------------------------------------------
# Plain delivery: the body comes back byte for byte, un-stuffed, after
# our Received: field. Lines start with dots, one is a lone dot (in the
# middle: swaks stuffs it); the file ends in ".\r\n" so swaks adds
# nothing.
printf 'Subject: plain\r\nX-Test: 1\r\n\r\nfirst line\r\n.leading dot\r\n' >"$T/body1"
printf '..two dots\r\n. dot space\r\n.\r\nlast line\r\n.\r\n' >>"$T/body1"
swaks_ s1 --from alice@client.test.example --to bob@relay.example \
	--data "@$T/body1"
id1=$(qid "$T/s1")
expect_eq plain_queued "$(printf '%s' "$id1" | grep -c '^[0-9A-Z]\{11\}$')" 1
# swaks doubles a leading dot on the wire; the server takes one away.
expect_grep plain_dot_stuffed_on_wire "^ -> \.\.leading dot${CR}\$" "$T/s1"
expect_grep plain_dot_stuffed_twice "^ -> \.\.\.two dots${CR}\$" "$T/s1"
expect_grep plain_lone_dot_stuffed "^ -> \.\.${CR}\$" "$T/s1"
expect_eq plain_in_queue "$(rcpts "$id1")" "alice@client.test.example: bob@relay.example"
"$P" show --raw "$id1" >"$T/raw1"
expect_eq plain_raw_size "$(wc -c <"$T/raw1" | tr -d ' ')" "$(qjson '[m["size"] for m in msgs if m["id"] == "'"$id1"'"][0]')"
cat >"$T/recv.py" <<'EOF'
# recv.py RAW BODY HELO ADDR PROTO RCPT|- - check the stored message:
# our Received: field first (folded lines), then BODY byte for byte (the
# file less its final ".\r\n"). Prints one word per check.
import re, sys
raw = open(sys.argv[1], "rb").read()
body = open(sys.argv[2], "rb").read()
helo, addr, proto, rcpt = sys.argv[3:7]
if body.endswith(b"\r\n.\r\n"):
    body = body[:-3]
m = re.match(rb"Received: ((?:[^\r\n]*\r\n)(?:\t[^\r\n]*\r\n)*)", raw)
if not m:
    print("no-received"); sys.exit()
rec = m.group(1).decode()
want_from = "from %s ([%s])" % (helo, addr)
print("from-ok" if rec.startswith(want_from + "\r\n") else "from-bad:" + rec[:80])
print("by-ok" if ("\tby mx.test.example (postern) with %s\r\n" % proto in rec
      or "\tby mx.test.example (postern) with %s;" % proto in rec) else "by-bad:" + rec)
fors = re.findall(r"\tfor <([^>]*)>;", rec)
print("for-ok" if fors == ([] if rcpt == "-" else [rcpt]) else "for-bad:%r" % fors)
print("date-ok" if re.search(r"; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$", rec) else "date-bad")
print("body-ok" if raw[m.end():] == body else "body-bad:%r" % raw[m.end():][:200])
EOF
# recv_check PREFIX RAW BODY ADDR PROTO RCPT
recv_check() {
	"$PY" "$T/recv.py" "$2" "$3" "$HELO" "$4" "$5" "$6" >"$T/rc.out"
	expect_eq "$1_received_from" "$(sed -n 1p "$T/rc.out")" from-ok
	expect_eq "$1_received_by" "$(sed -n 2p "$T/rc.out")" by-ok
	expect_eq "$1_received_for" "$(sed -n 3p "$T/rc.out")" for-ok
	expect_eq "$1_received_date" "$(sed -n 4p "$T/rc.out")" date-ok
	expect_eq "$1_body_exact" "$(sed -n 5p "$T/rc.out")" body-ok
}
recv_check plain "$T/raw1" "$T/body1" 127.0.0.1 ESMTP bob@relay.example

# ------------------------------------------------------------------
# STARTTLS: offered in the clear (with AUTH but not PLAIN), not after.
printf 'Subject: tls\r\n\r\nover TLS\r\n.\r\n' >"$T/body2"
swaks_ s2 --tls --from alice@client.test.example --to carol@relay.example \
	--data "@$T/body2"
id2=$(qid "$T/s2")
expect_eq tls_queued "$(printf '%s' "$id2" | grep -c '^[0-9A-Z]\{11\}$')" 1
expect_grep tls_offered '^<-  250[- ]STARTTLS$' "$T/s2"
expect_grep tls_auth_in_clear_cram '^<-  250[- ]AUTH CRAM-MD5 SCRAM-SHA-256$' "$T/s2"
expect_eq tls_no_plain_in_clear "$(grep -c '^<-  250[- ]AUTH.*\(PLAIN\|LOGIN\)' "$T/s2")" 0
expect_grep tls_started '^=== TLS started with cipher TLSv1\.3' "$T/s2"
expect_grep tls_ehlo_again '^<~  250-mx\.test\.example$' "$T/s2"
expect_eq tls_no_starttls_after "$(grep -c '^<~  250[- ]STARTTLS' "$T/s2")" 0
expect_grep tls_plain_after '^<~  250[- ]AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256$' "$T/s2"
"$P" show --raw "$id2" >"$T/raw2"
recv_check tls "$T/raw2" "$T/body2" 127.0.0.1 ESMTPS carol@relay.example
expect_grep tls_received_using "^${TAB}(using TLSv1\.3 TLS_[A-Z0-9_]*)${CR}\$" "$T/raw2"

# ------------------------------------------------------------------
# AUTH. From 127.0.0.2 (outside mynetworks) a non-local domain is refused
# without AUTH and relayed with it.
swaks_ s3 -li 127.0.0.2 --from site1@dialup.example --to dave@far.example
expect_grep auth_none_relay_denied '^<\*\* 554 5\.7\.1 <dave@far\.example>: Relay access denied$' "$T/s3"
expect_eq auth_none_nothing_queued "$(qid "$T/s3")" ""

swaks_ s4 -li 127.0.0.2 --tls --auth PLAIN --auth-user site1 \
	--auth-password "$pw" --from site1@dialup.example --to dave@far.example \
	--data "@$T/body2"
expect_grep auth_plain_235 '^<~  235 2\.7\.0 ' "$T/s4"
id4=$(qid "$T/s4")
expect_eq auth_plain_relayed "$(rcpts "$id4")" "site1@dialup.example: dave@far.example"
"$P" show --raw "$id4" >"$T/raw4"
recv_check auth_plain "$T/raw4" "$T/body2" 127.0.0.2 ESMTPSA dave@far.example
expect_grep auth_plain_received_user "^${TAB}(Authenticated sender: site1)${CR}\$" "$T/raw4"

swaks_ s5 -li 127.0.0.2 --tls --auth LOGIN --auth-user site1 \
	--auth-password "$pw" --from site1@dialup.example --to erin@far.example
expect_grep auth_login_334_username '^<~  334 VXNlcm5hbWU6$' "$T/s5"
expect_grep auth_login_235 '^<~  235 2\.7\.0 ' "$T/s5"
id5=$(qid "$T/s5")
expect_eq auth_login_relayed "$(rcpts "$id5")" "site1@dialup.example: erin@far.example"

swaks_ s6 -li 127.0.0.2 --auth CRAM-MD5 --auth-user site1 \
	--auth-password "$pw" --from site1@dialup.example --to frank@far.example \
	--data "@$T/body2"
expect_grep auth_cram_235 '^<-  235 2\.7\.0 ' "$T/s6"
id6=$(qid "$T/s6")
expect_eq auth_cram_relayed "$(rcpts "$id6")" "site1@dialup.example: frank@far.example"
"$P" show --raw "$id6" >"$T/raw6"
recv_check auth_cram "$T/raw6" "$T/body2" 127.0.0.2 ESMTPA frank@far.example

swaks_ s7 -li 127.0.0.2 --tls --auth PLAIN --auth-user site1 \
	--auth-password 'not the password' --from site1@dialup.example \
	--to gina@far.example
expect_grep auth_wrong_535 '^<~\* 535 5\.7\.8 ' "$T/s7"
expect_eq auth_wrong_nothing_queued "$(qid "$T/s7")" ""
expect_grep auth_wrong_logged 'client=client\.test\.example\[127\.0\.0\.2\], addr=127\.0\.0\.2, user=site1: authentication failed' "$T/posternd.log"

# A raw client for what swaks will not send.
cat >"$T/smtpc.py" <<'EOF'
import socket
class C:
    def __init__(self, port, src=None):
        self.s = socket.create_connection(("127.0.0.1", port), 20,
            source_address=(src, 0) if src else None)
        self.f = self.s.makefile("rb")
        self.greeting = self.reply()
    def reply(self):
        """The reply's lines (str), or None at EOF before any line."""
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                return lines or None
            lines.append(l.rstrip(b"\r\n").decode("utf-8", "replace"))
            if len(lines[-1]) < 4 or lines[-1][3] != "-":
                return lines
    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())
    def cmd(self, line):
        """Send a command, return the first line of its reply."""
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        r = self.reply()
        return r[0] if r else "EOF"
    def ehlo(self, name="client.test.example"):
        self.send("EHLO %s\r\n" % name)
        return self.reply()
EOF
cat >"$T/auth.py" <<'EOF'
import base64, sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
port = int(sys.argv[1])
b64 = lambda s: base64.b64encode(s.encode()).decode()
c = C(port, "127.0.0.2")
c.ehlo()
print("plain_clear=" + c.cmd("AUTH PLAIN " + b64("\0site1\0x")))
print("login_clear=" + c.cmd("AUTH LOGIN"))
print("cram_ir=" + c.cmd("AUTH CRAM-MD5 " + b64("site1 " + "0" * 32)))
# Three bad CRAM-MD5 answers: 535 each, then 421 and the end.
for i in range(3):
    ch = c.cmd("AUTH CRAM-MD5")
    r = c.cmd(b64("site1 " + "%032x" % i)) if ch.startswith("334 ") else ch
    print("fail%d=%s" % (i + 1, r))
after = c.reply()
print("after_third=" + (after[0] if after else "EOF"))
print("then=" + ("EOF" if c.reply() is None else "open"))
# An exchange line over 12288 octets (RFC 4954 §4), whole or in pieces.
c = C(port, "127.0.0.2")
c.ehlo()
for n in (13000, 40000):
    print("long%d_334=%s" % (n, c.cmd("AUTH SCRAM-SHA-256")))
    print("long%d=%s" % (n, c.cmd("A" * n)))
    print("long%d_noop=%s" % (n, c.cmd("NOOP")))
EOF
"$PY" "$T/auth.py" "$SMTP_PORT" "$T" >"$T/auth.out" 2>&1
val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
expect_eq auth_plain_clear_538 "$(val plain_clear "$T/auth.out" | cut -c 1-10)" "538 5.7.11"
expect_eq auth_login_clear_538 "$(val login_clear "$T/auth.out" | cut -c 1-10)" "538 5.7.11"
expect_eq auth_cram_ir_501 "$(val cram_ir "$T/auth.out" | cut -c 1-9)" "501 5.7.0"
expect_eq auth_fail1_535 "$(val fail1 "$T/auth.out" | cut -c 1-9)" "535 5.7.8"
expect_eq auth_fail2_535 "$(val fail2 "$T/auth.out" | cut -c 1-9)" "535 5.7.8"
expect_eq auth_fail3_535 "$(val fail3 "$T/auth.out" | cut -c 1-9)" "535 5.7.8"
expect_eq auth_fail3_421 "$(val after_third "$T/auth.out" | cut -c 1-9)" "421 4.7.0"
expect_eq auth_fail3_disconnect "$(val then "$T/auth.out")" EOF
for n in 13000 40000; do
	expect_eq "auth_line_${n}_334" "$(val "long${n}_334" "$T/auth.out")" "334 "
	expect_eq "auth_line_${n}_500" "$(val "long$n" "$T/auth.out" | cut -c 1-9)" "500 5.5.6"
	expect_eq "auth_line_${n}_then_cmd" "$(val "long${n}_noop" "$T/auth.out")" "250 2.0.0 Ok"
done
expect_grep auth_fail3_logged 'disconnect (too many AUTH failures)' "$T/posternd.log"

# ------------------------------------------------------------------
# Pipelining: MAIL, three RCPTs and DATA go in one group, and every one
# is answered, in order.
swaks_ s8 --pipeline --from alice@client.test.example \
	--to a1@relay.example,a2@relay.example,a3@far.example --data "@$T/body2"
id8=$(qid "$T/s8")
expect_eq pipe_queued "$(rcpts "$id8")" "alice@client.test.example: a1@relay.example a2@relay.example a3@far.example"
# The transcript, one letter a line: C a command sent, R a reply read.
expect_eq pipe_one_group "$(sed -n '/^ -> MAIL FROM/,/^<-  354/p' "$T/s8" | \
	sed 's/^ -> \([A-Z]*\).*/\1/; s/^<-  \([0-9]*\) .*/\1/' | tr '\n' ' ')" \
	"MAIL RCPT RCPT RCPT DATA 250 250 250 250 354 "
expect_eq pipe_replies "$(grep -c '^<-  250 2\.1\.[05] Ok$' "$T/s8")" 4
"$P" show --raw "$id8" >"$T/raw8"
recv_check pipe "$T/raw8" "$T/body2" 127.0.0.1 ESMTP -

# ------------------------------------------------------------------
# 8BITMIME and SMTPUTF8 (raw: swaks sends neither parameter).
cat >"$T/eight.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
port = int(sys.argv[1])
body8 = open(sys.argv[3], "rb").read()
c = C(port)
ext = c.ehlo()
print("ehlo_8bit=%s" % ("250-8BITMIME" in ext))
print("ehlo_utf8=%s" % ("250-SMTPUTF8" in ext))
print("mail8=" + c.cmd("MAIL FROM:<alice@client.test.example> BODY=8BITMIME"))
print("rcpt8=" + c.cmd("RCPT TO:<bob@relay.example>"))
print("data8=" + c.cmd("DATA"))
c.send(body8)		# ends in CRLF.CRLF
print("dot8=" + c.reply()[0])
u = "<bj\u00f8rn@relay.example>".encode()
print("mail_ascii=" + c.cmd("MAIL FROM:<alice@client.test.example>"))
print("rcpt_utf8_no=" + c.cmd(b"RCPT TO:" + u))
print("rset=" + c.cmd("RSET"))
print("mail_utf8_no=" + c.cmd("MAIL FROM:<j\u00f8rn@client.test.example>".encode()))
print("mail_utf8=" + c.cmd("MAIL FROM:<j\u00f8rn@client.test.example> SMTPUTF8".encode()))
print("rcpt_utf8=" + c.cmd(b"RCPT TO:" + u))
print("data_utf8=" + c.cmd("DATA"))
c.send("Subject: gr\u00fc\u00dfe\r\n\r\nhej bj\u00f8rn\r\n".encode())
print("dot_utf8=" + c.cmd("."))
print("quit=" + c.cmd("QUIT"))
EOF
printf 'Subject: caf\303\251\r\nContent-Type: text/plain; charset=latin1\r\n\r\nna\357ve \377\376 octets \200\r\nline two \351\r\n.\r\n' >"$T/body8"
"$PY" "$T/eight.py" "$SMTP_PORT" "$T" "$T/body8" >"$T/eight.out" 2>&1
expect_eq ehlo_8bitmime "$(val ehlo_8bit "$T/eight.out")" True
expect_eq ehlo_smtputf8 "$(val ehlo_utf8 "$T/eight.out")" True
expect_eq mail_body_8bitmime "$(val mail8 "$T/eight.out")" "250 2.1.0 Ok"
id9=$(val dot8 "$T/eight.out" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq eightbit_queued "$(rcpts "$id9")" "alice@client.test.example: bob@relay.example"
"$P" show --raw "$id9" >"$T/raw9"
recv_check eightbit "$T/raw9" "$T/body8" 127.0.0.1 ESMTP bob@relay.example
"$P" show "$id9" >"$T/show9"
expect_grep eightbit_flag '^flags: 8BITMIME$' "$T/show9"
expect_eq utf8_rcpt_without_smtputf8 "$(val rcpt_utf8_no "$T/eight.out" | cut -c 1-9)" "553 5.6.7"
expect_eq utf8_mail_without_smtputf8 "$(val mail_utf8_no "$T/eight.out" | cut -c 1-9)" "550 5.6.7"
expect_eq utf8_mail_smtputf8 "$(val mail_utf8 "$T/eight.out")" "250 2.1.0 Ok"
expect_eq utf8_rcpt_smtputf8 "$(val rcpt_utf8 "$T/eight.out")" "250 2.1.5 Ok"
id10=$(val dot_utf8 "$T/eight.out" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq utf8_queued "$(rcpts "$id10")" "$(printf 'j\303\270rn@client.test.example: bj\303\270rn@relay.example')"
"$P" show "$id10" >"$T/show10"
expect_grep utf8_flag '^flags:.* SMTPUTF8' "$T/show10"
"$P" show --raw "$id10" >"$T/raw10"
expect_grep utf8_received_proto "^${TAB}by mx\.test\.example (postern) with UTF8SMTP${CR}\$" "$T/raw10"
expect_eq utf8_quit "$(val quit "$T/eight.out")" "221 2.0.0 Bye"

# ------------------------------------------------------------------
# DSN parameters are kept with the message.
cat >"$T/dsn.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
c = C(int(sys.argv[1]))
c.ehlo()
print("mail=" + c.cmd("MAIL FROM:<alice@client.test.example> RET=HDRS ENVID=QQ314159"))
print("rcpt=" + c.cmd("RCPT TO:<bob@relay.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@relay.example"))
print("rcpt_bad=" + c.cmd("RCPT TO:<carl@relay.example> NOTIFY=NEVER,SUCCESS"))
print("data=" + c.cmd("DATA"))
c.send(b"Subject: dsn\r\n\r\ndsn body\r\n")
print("dot=" + c.cmd("."))
print("quit=" + c.cmd("QUIT"))
EOF
"$PY" "$T/dsn.py" "$SMTP_PORT" "$T" >"$T/dsn.out" 2>&1
expect_eq dsn_mail "$(val mail "$T/dsn.out")" "250 2.1.0 Ok"
expect_eq dsn_rcpt "$(val rcpt "$T/dsn.out")" "250 2.1.5 Ok"
expect_eq dsn_notify_never_and_more_501 "$(val rcpt_bad "$T/dsn.out" | cut -c 1-9)" "501 5.5.4"
id11=$(val dot "$T/dsn.out" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
expect_eq dsn_queued_one_rcpt "$(rcpts "$id11")" "alice@client.test.example: bob@relay.example"
"$P" show "$id11" >"$T/show11"
expect_grep dsn_envid '^envid: QQ314159$' "$T/show11"
expect_grep dsn_ret_hdrs '^flags:.* RET=HDRS' "$T/show11"
expect_grep dsn_notify '^recipient: <bob@relay\.example> .* notify=SUCCESS,FAILURE' "$T/show11"
expect_grep dsn_orcpt '^recipient: <bob@relay\.example> .* orcpt=rfc822;bob@relay\.example$' "$T/show11"

# Every message accepted above is in the queue exactly once.
expect_eq all_queued_once "$(qjson 'sorted(m["id"] for m in msgs) == sorted("'"$id1 $id2 $id4 $id5 $id6 $id8 $id9 $id10 $id11"'".split())')" True

stop_posternd
expect_eq posternd_stops "$?" 0
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# 920-idn: international domains (RFC 5890, RFC 6531) end to end.
#
# DNS is a dnsmasq on 127.0.0.1 holding records under A-labels only:
# xn--bcher-kva.test ("bücher.test") MX to 127.0.92.2, a sink that offers
# SMTPUTF8; xn--mller-kva.test ("müller.test") MX to 127.0.92.3, a sink
# without SMTPUTF8; DSNs to sender@src.test go by routes_file to a third
# sink (127.0.92.4). The sinks (tests/integ/idn_sink.py) keep each MAIL
# and RCPT line as sent. One posternd takes mail with SMTPUTF8 from
# Python's smtplib, with mynetworks elsewhere so that only relay_domains
# and hold_domains let mail in, written half in U-labels, half in
# A-labels; its routes_file likewise.
#
# Checked: relay_domains in either form match the other; delivery to
# user@bücher.test finds the A-label's MX and, as the server offers
# SMTPUTF8, sends the address as given with SMTPUTF8; to a server without
# SMTPUTF8 an ASCII local part goes with A-labels and no SMTPUTF8 (by MX
# and by a routes_file key in A-labels), a UTF-8 local part fails 5.6.7
# with exactly one DSN, and a UTF-8 header with ASCII addresses fails
# 5.6.7; hold_domains in either form hold; ETRN with a U-label releases
# mail held for the A-label to its routes_file entry written in
# U-labels; invalid IDNs (a disallowed code point, bad UTF-8) are
# refused at MAIL, RCPT and ETRN, and `postern check` names one in the
# configuration and in routes_file.
. "$POSTERN_TOP/tests/integ/lib.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"

SP=$(free_port)
DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/test/ --log-queries --log-facility=- \
	--host-record=mx.xn--bcher-kva.test,127.0.92.2 \
	--mx-host=xn--bcher-kva.test,mx.xn--bcher-kva.test,10 \
	--host-record=mx.xn--mller-kva.test,127.0.92.3 \
	--mx-host=xn--mller-kva.test,mx.xn--mller-kva.test,10 \
	>"$T/dnsmasq.log" 2>&1 &
reap $!
if ! wait_dns "$DNS_PORT"; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

# isink NAME IP [--utf8] - idn_sink.py on IP:SP, messages in $T/NAME/.
isink() {
	mkdir -p "$T/$1"
	chmod 777 "$T/$1"
	"$PY" "$POSTERN_TOP/tests/integ/idn_sink.py" "$2" "$SP" "$T/$1" \
		${3:-} >"$T/$1.log" 2>&1 &
	reap $!
	wait_listen "$SP" "$2" || notok "sink_$1" "no sink on $2:$SP"
}
isink u8 127.0.92.2 --utf8
isink n 127.0.92.3
isink dsn 127.0.92.4

{
	echo "# U-label key, A-label recipients"
	echo "straße.test		[127.0.92.3]:$SP"
	echo "# A-label key, U-label recipients"
	echo "xn--rger-koa.test	[127.0.92.3]:$SP"
	echo "src.test		[127.0.92.4]:$SP"
} >"$T/routes"
chmod 644 "$T/routes"

start_posternd "mynetworks=10.0.0.0/8" "dns_servers=127.0.0.1:$DNS_PORT" \
	"smtp_port=$SP" "routes_file=$T/routes" \
	"relay_domains=xn--bcher-kva.test müller.test ärger.test" \
	"hold_domains=straße.test xn--l-0ga.test" \
	"min_backoff=1h" "max_backoff=2h" "workers=2" || exit 1

# smtp OUT - run the Python on stdin as a client of posternd (c is an
# smtplib.SMTP after EHLO; cmd() sends raw bytes); its output in $T/OUT.
smtp() {
	{
		printf '%s\n' "import smtplib, sys" \
		    "c = smtplib.SMTP('127.0.0.1', $SMTP_PORT, local_hostname='client.test')" \
		    "c.ehlo()" \
		    "def cmd(b):" \
		    "    c.send(b + b'\\r\\n')" \
		    "    code, msg = c.getreply()" \
		    "    return '%d %s' % (code, msg.decode('utf-8', 'replace'))"
		cat
	} >"$T/$1.py"
	"$PY" "$T/$1.py" >"$T/$1" 2>&1
}
val() { sed -n "s/^$1=//p" "$T/$2"; }

# ------------------------------------------------------------------
# The server: relay_domains and hold_domains in either form, invalid
# IDNs refused.
smtp rc <<'EOPY'
print("mail=" + cmd("MAIL FROM:<sender@src.test> SMTPUTF8".encode()))
print("u_for_a=" + cmd("RCPT TO:<anna@bücher.test>".encode()))
print("a_for_u=" + cmd(b"RCPT TO:<bob@xn--mller-kva.test>"))
print("upper=" + cmd("RCPT TO:<bob2@MÜLLER.TEST>".encode()))
print("other=" + cmd(b"RCPT TO:<x@other.test>"))
print("snowman=" + cmd("RCPT TO:<x@\u2603.test>".encode()))
print("badutf8=" + cmd(b"RCPT TO:<x@b\xc3.test>"))
print("held_a=" + cmd(b"RCPT TO:<eve@xn--strae-oqa.test>"))
print("held_u=" + cmd("RCPT TO:<gus@öl.test>".encode()))
c.rset()
print("mail_snowman=" + cmd("MAIL FROM:<a@\u2603.test> SMTPUTF8".encode()))
c.quit()
EOPY
expect_eq relay_u_rcpt_a_conf "$(val u_for_a rc | cut -c 1-9)" "250 2.1.5"
expect_eq relay_a_rcpt_u_conf "$(val a_for_u rc | cut -c 1-9)" "250 2.1.5"
expect_eq relay_upper_u_rcpt "$(val upper rc | cut -c 1-9)" "250 2.1.5"
expect_eq relay_other_denied "$(val other rc | cut -c 1-9)" "554 5.7.1"
expect_eq rcpt_snowman_refused "$(val snowman rc | cut -c 1-9)" "553 5.1.2"
expect_grep rcpt_snowman_says_why 'not a valid international domain name' "$T/rc"
expect_eq rcpt_bad_utf8_refused "$(val badutf8 rc | cut -c 1)" "5"
expect_eq hold_u_conf_a_rcpt "$(val held_a rc | cut -c 1-9)" "250 2.1.5"
expect_eq hold_a_conf_u_rcpt "$(val held_u rc | cut -c 1-9)" "250 2.1.5"
expect_eq mail_snowman_refused "$(val mail_snowman rc | cut -c 1-9)" "553 5.1.8"
expect_grep rcpt_snowman_logged 'reject RCPT .*to=<x@☃.test>: not a valid international domain name' "$T/posternd.log"

# send OUT RCPT SUBJECT - one message from sender@src.test with SMTPUTF8.
send() {
	smtp "$1" <<EOPY
msg = "Subject: $3\r\n\r\nhi\r\n"
r = c.sendmail("sender@src.test", ["$2"], msg.encode(), mail_options=["SMTPUTF8"])
print("refused=%r" % (r,))
c.quit()
EOPY
}
# sunk SINK PATTERN - the sink's message files holding PATTERN (fixed).
sunk() { grep -l -a -F -- "$2" "$T/$1"/*.msg 2>/dev/null; }
has() { [ -n "$(sunk "$1" "$2")" ]; }

send m1 "anna@bücher.test" "to bücher"
send m2 "carl@müller.test" "ascii"
send m3 "fred@ärger.test" "ascii"
send m4 "jörg@müller.test" "utf-8 local part"
send m5 "dora@xn--mller-kva.test" "Grüße"
expect_grep smtputf8_taken "refused={}" "$T/m1"

# 1. SMTPUTF8 server: the address as given, with SMTPUTF8, at the MX of
#    the A-label.
if poll_for 30 has u8 "RCPT TO:<anna@bücher.test>"; then
	ok u8_got_u_label
	f=$(sunk u8 "RCPT TO:<anna@bücher.test>")
	expect_grep u8_mail_smtputf8 '^MAIL FROM:<sender@src.test>.* SMTPUTF8' "$f"
else
	notok u8_got_u_label "nothing at 127.0.92.2: $(tail -c 600 "$T/posternd.log")"
	notok u8_mail_smtputf8 "no message"
fi
expect_grep dns_asked_a_label 'query\[MX\] xn--bcher-kva.test' "$T/dnsmasq.log"
if grep -a 'query\[' "$T/dnsmasq.log" | grep -q -a "$(printf '[\200-\377]')"; then
	notok dns_no_u_label "raw UTF-8 reached the DNS"
else ok dns_no_u_label; fi

# 2. No SMTPUTF8, ASCII local part: A-labels, no SMTPUTF8 (by MX, and by
#    the routes_file key in A-labels).
for a in "carl xn--mller-kva.test" "fred xn--rger-koa.test"; do
	set -- $a
	if poll_for 30 has n "RCPT TO:<$1@$2>"; then
		ok "downgraded_$1"
		f=$(sunk n "RCPT TO:<$1@$2>")
		expect_eq "no_smtputf8_$1" "$(head -n 1 "$f" | tr -d '\r')" \
			"MAIL FROM:<sender@src.test>"
		if grep -q -a "$(printf '[\200-\377]')" "$f"; then
			notok "ascii_only_$1" "8-bit in $(head -c 300 "$f")"
		else ok "ascii_only_$1"; fi
	else
		notok "downgraded_$1" "not at 127.0.92.3: $(ls "$T/n"; tail -c 600 "$T/posternd.log")"
	fi
done
expect_grep log_keeps_u_label 'to=<carl@müller.test>, relay=mx.xn--mller-kva.test\[127.0.92.3\]:[0-9]*, .*status=sent' "$T/posternd.log"

# 3. No SMTPUTF8, UTF-8 local part: 5.6.7, one DSN; UTF-8 header: 5.6.7.
bounced() { grep -F "$1" "$T/posternd.log" | grep -q 'status=bounced'; }
if poll_for 30 bounced "to=<jörg@müller.test>"; then
	ok utf8_local_bounced
	expect_grep utf8_local_5_6_7 'to=<jörg@müller.test>, .*dsn=5.6.7, status=bounced (.*requires SMTPUTF8' "$T/posternd.log"
else
	notok utf8_local_bounced "$(grep -F jörg "$T/posternd.log" | tail -n 2)"
fi
if poll_for 30 bounced "to=<dora@xn--mller-kva.test>"; then
	ok utf8_header_bounced
	expect_grep utf8_header_5_6_7 'to=<dora@xn--mller-kva.test>, .*dsn=5.6.7, status=bounced (.*SMTPUTF8 (UTF-8 in its header)' "$T/posternd.log"
else
	notok utf8_header_bounced "$(grep -F dora "$T/posternd.log" | tail -n 2)"
fi
dsns() { grep -l -i -a "^Final-Recipient: .*$1" "$T/dsn"/*.msg 2>/dev/null | wc -l | tr -d ' '; }
dsn1() { [ "$(dsns "$1")" -ge 1 ]; }
poll_for 30 dsn1 "j.*rg@m.*ller.test" || true
poll_for 30 dsn1 "dora@xn--mller-kva.test" || true
expect_eq utf8_local_one_dsn "$(dsns 'j.*rg@m.*ller.test')" 1
expect_eq utf8_header_one_dsn "$(dsns 'dora@xn--mller-kva.test')" 1
if has n "jörg" || has n "dora@"; then
	notok nothing_sent_needing_smtputf8 "$(ls "$T/n")"
else ok nothing_sent_needing_smtputf8; fi

# 4. Held in either form; ETRN with U-labels releases the A-label's mail
#    to the routes_file entry written in U-labels.
send m6 "eve@xn--strae-oqa.test" "held"
send m7 "gus@öl.test" "held"
held() { [ "$(qjson "sum(1 for m in msgs for r in m['recipients'] if r['address'] == '$1' and r['state'] == 'held')")" = 1 ]; }
if poll_for 10 held "eve@xn--strae-oqa.test"; then ok held_eve; else
	notok held_eve "$("$P" queue 2>&1 | tail -n 5)"; fi
if poll_for 10 held "gus@öl.test"; then ok held_gus; else
	notok held_gus "$("$P" queue 2>&1 | tail -n 5)"; fi
expect_eq queue_domain_either_form "$("$P" queue --domain xn--l-0ga.test | grep -c 'gus@öl.test') $("$P" queue --domain öl.test | grep -c 'gus@öl.test')" "1 1"
smtp etrn <<'EOPY'
print("etrn=" + cmd("ETRN straße.test".encode()))
print("etrn_bad=" + cmd("ETRN \u2603.test".encode()))
c.quit()
EOPY
expect_eq etrn_u_label "$(val etrn etrn | cut -c 1-9)" "253 2.0.0"
expect_grep etrn_names_a_label '^etrn=253 .*1 pending messages\? for node xn--strae-oqa.test' "$T/etrn"
expect_eq etrn_invalid_idn "$(val etrn_bad etrn | cut -c 1-9)" "501 5.5.4"
if poll_for 30 has n "RCPT TO:<eve@xn--strae-oqa.test>"; then
	ok etrn_released_to_u_route; else
	notok etrn_released_to_u_route "$(tail -c 600 "$T/posternd.log")"; fi
expect_eq gus_still_held "$(qjson "[r['state'] for m in msgs for r in m['recipients'] if r['address'] == 'gus@öl.test']")" "['held']"
stop_posternd

# 5. `postern check` names an unconvertible domain.
conf "relay_domains=ok.test ☃.test"
expect_rc check_bad_relay_domain 1 "$P" check
expect_grep check_says_which 'relay_domains: bad domain "☃.test": not a valid international domain name' "$T/out"
printf '☃.test [127.0.0.1]:25\n' >"$T/routes2"
conf "routes_file=$T/routes2"
expect_rc check_bad_route 1 "$P" check
expect_grep check_route_says_which 'routes2:1: bad domain "☃.test": not a valid international domain name' "$T/out"

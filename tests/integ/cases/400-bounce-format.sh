# 400-bounce-format: the DSNs bounce/ composes, checked field by field.
#
# test_bounce --emit writes one DSN per case (each cause, RET full and
# headers, bounce_return, the size cap, ENVID/ORCPT, three recipients in
# one DSN, an 8-bit original, an SMTPUTF8 original, hostile replies and
# addresses with CR/LF, a double bounce, over-long lines); dsn_check.py
# parses each with Python's email package and checks it against what the
# case should say. The hostname, clock and token are pinned by the unit
# test, so a failure here is a change in the composer, not a flake.
. "$POSTERN_TOP/tests/integ/lib.sh"

EMIT="$POSTERN_BIN/../unit/test_bounce"
CHECK="$POSTERN_TOP/tests/integ/dsn_check.py"
D="$T/dsn"
H=mx2.example.net
M=BODY-MARKER-7f3a
U1=user1@example.org
U2=user2@example.org
U3=user3@example.org

if "$EMIT" --emit "$D" >"$T/out" 2>&1; then ok "emit"; else
	notok "emit" "$(head -c 300 "$T/out")"; fi

# dsn NAME ARGS... - check $D/NAME.eml; dsn_check prints the ok lines.
dsn() {
	_n=$1
	shift
	if [ ! -f "$D/$_n.eml" ]; then
		notok "$_n" "not emitted"
		return
	fi
	"$PY" "$CHECK" "$D/$_n.eml" --name "$_n" --reporting-mta "$H" \
		--body-marker "$M" "$@"
}

# Failure causes: the status each must carry, one recipient each.
dsn reply-5xx --to alice@example.com --rcpt "$U1=5.1.1" --ret headers \
	--remote-mta "$U1=mx.example.org" --diag "$U1=550 5.1.1 user unknown" \
	--text "refused it and said" --no-field Injected
dsn three-rcpts --to alice@example.com --rcpt "$U1=5.1.1" \
	--rcpt "$U2=5.2.2" --rcpt "$U3=5.7.1" --ret headers \
	--remote-mta "$U2=mx2.example.org" --remote-mta "$U3=mx3.example.org" \
	--diag "$U3=a-rather-long-url"
dsn expired --rcpt "$U1=4.4.1" --ret headers \
	--diag "$U1=421 4.4.1 connection timed out" --text "has given up"
dsn expired-nostatus --rcpt "$U1=4.4.7" --ret headers --text "has given up"
dsn hold-expired --rcpt "$U1=4.4.7" --ret headers \
	--text "never connected to collect it"
dsn nullmx --rcpt "$U1=5.1.10" --ret headers --text "null MX"
dsn nxdomain --rcpt "$U1=5.1.2" --ret headers --text "does not exist" \
	--diag "$U1=Host or domain name not found"
expect_grep "nxdomain: an X- diagnostic" \
	'^Diagnostic-Code: X-Postern; Host or domain' "$D/nxdomain.eml"
dsn loop --rcpt "$U1=5.4.6" --ret headers --text "loop"
dsn hops --rcpt "$U1=5.4.6" --ret headers --text "too many Received"
dsn admin --rcpt "$U1=5.0.0" --ret headers \
	--text "returned by the administrator"
dsn double --double --to "postmaster@$H" --rcpt "alice@example.com=5.1.1" \
	--ret headers --text "postmaster"

# Delay warning and success notice: headers only even with RET=FULL.
dsn delay --kind delay --rcpt "$U1=4.4.1" --ret headers \
	--text "has not been delivered yet"
expect_grep "delay: Will-Retry-Until" '^Will-Retry-Until: ' "$D/delay.eml"
dsn success --kind success --rcpt "$U1=2.0.0" --ret headers \
	--text "was passed on successfully"

# What is returned: RET, bounce_return, the size cap.
dsn ret-full --rcpt "$U1=5.1.1" --ret full
dsn ret-hdrs --rcpt "$U1=5.1.1" --ret headers
dsn return-full --rcpt "$U1=5.1.1" --ret full
dsn capped --rcpt "$U1=5.1.1" --ret headers --capped
dsn longline --rcpt "$U1=5.1.1" --ret headers --text "cannot be returned whole"

# ENVID decoded into Original-Envelope-Id; ORCPT into Original-Recipient,
# case kept, only for the recipient that gave one.
dsn envid-orcpt --rcpt "$U1=5.1.1" --rcpt "$U2=5.1.1" --ret headers \
	--envid "QQ+314159" --orcpt "$U1=rfc822;User1+x@Example.ORG"

# 8-bit and SMTPUTF8 originals.
dsn eightbit --rcpt "$U1=5.1.1" --ret full --eightbit
dsn smtputf8 --global --eightbit --to "ren$(printf '\303\251')@example.com" \
	--rcpt "j$(printf '\303\266')rg@example.org=5.1.1" --rcpt "$U2=5.1.1" \
	--ret headers

# Hostile replies, addresses, ENVID, ORCPT and client: nothing may start a
# field or a part. The ENVID does not decode to printable text, so it is
# written as stored.
dsn hostile --to "alice@example.com??Bcc:?victim@example.net" \
	--rcpt "$U1=5.1.1" --rcpt '"odd Injected: rcpt"@example.org=5.1.1' \
	--ret full --envid "E+0D+0AInjected:+20envid" \
	--orcpt '"odd Injected: rcpt"@example.org=rfc822;x Injected: orcpt' \
	--no-field Injected --no-field Bcc --no-field X
if grep -q 'Injected: host' "$D/hostile.eml"; then
	notok "hostile: bad Remote-MTA left out" "found"
else
	ok "hostile: bad Remote-MTA left out"
fi

# The validator itself must be able to fail: a DSN with a bare LF, a
# wrong Status and a missing part is refused.
sed 's/^Status: 5.1.1\r$/Status: 5.01.1\r/; s/^Auto-Submitted:.*//' \
	"$D/reply-5xx.eml" | tr -d '\r' >"$T/broken.eml"
if "$PY" "$CHECK" "$T/broken.eml" --rcpt "$U1=5.1.1" >"$T/out" 2>&1; then
	notok "validator refuses a broken DSN" "it passed"
else
	n=$(grep -c '^not ok' "$T/out")
	if [ "$n" -ge 3 ]; then ok "validator refuses a broken DSN"; else
		notok "validator refuses a broken DSN" \
			"$n failures: $(cat "$T/out")"
	fi
fi

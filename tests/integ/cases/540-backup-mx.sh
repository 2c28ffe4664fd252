# 540-backup-mx: the backup-MX story end to end (RFC 5321 §5.1, RFC 1985).
#
# DNS (dnsmasq on 127.0.0.1, `dns_servers` points c-ares at it):
# primary.example has MX 10 mx1.primary.example (127.0.0.2, the primary)
# and MX 20 mx.test.example (127.0.0.1: posternd's own myhostname).
# posternd is the secondary: relay_domains = primary.example, smtp_port
# the port the primary listens on, a backoff of an hour.
#
# The primary is down (nobody on 127.0.0.2). Mail for the domain arrives
# at posternd over SMTP and stays queued, deferred after a try at the
# primary; it never loops to posternd itself (self-exclusion: MX 20 is
# ours, so only MX 10 is tried; a listener on 127.0.0.1:smtp_port, where
# a loop would go, sees no connection; no 5.4.6 "loops back to myself").
# Then the primary comes up (tests/integ/deliver_fail_srv.py on
# 127.0.0.2) and sends ETRN with `postern etrn`: every message reaches
# it within seconds (the backoff alone would wait an hour), byte for byte
# as queued, none twice.
. "$POSTERN_TOP/tests/integ/lib.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"

SP=$(free_port)		# smtp_port: where the MX hosts listen
DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/primary.example/ --local=/test.example/ \
	--log-queries --log-facility=- \
	--host-record=mx1.primary.example,127.0.0.2 \
	--host-record=mx.test.example,127.0.0.1 \
	--mx-host=primary.example,mx1.primary.example,10 \
	--mx-host=primary.example,mx.test.example,20 \
	>"$T/dnsmasq.log" 2>&1 &
reap $!
if ! wait_dns "$DNS_PORT"; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

# Where a loop would go: our own address on smtp_port. Counts sessions.
"$PY" "$SRV" "$SP" "$T/self.log" --addr 127.0.0.1 >"$T/self.out" 2>&1 &
reap $!
wait_listen "$SP" 127.0.0.1 || notok self_start "$(cat "$T/self.out")"

start_posternd relay_domains=primary.example "dns_servers=127.0.0.1:$DNS_PORT" \
	"smtp_port=$SP" min_backoff=1h max_backoff=2h smtp_connect_timeout=5s \
	|| exit 1

# The mail for the primary's domain, over SMTP from outside.
N=20
"$PY" - "$SMTP_PORT" "$N" <<'EOPY' >"$T/inject.out" 2>&1
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=("127.0.0.8", 0))
s.ehlo("outside.example")
for i in range(1, n + 1):
    body = ("From: <a@outside.example>\r\nTo: <u%d@primary.example>\r\n"
            "Subject: backup mx %d\r\n\r\n.dot\r\nbody %d\r\n" % (i, i, i))
    s.sendmail("a@outside.example", ["u%d@primary.example" % i], body)
s.quit()
EOPY
q=$(grep -c ': client=.*nrcpt=1' "$T/posternd.log")
expect_eq backup_accepted "$q" "$N"

if poll_for 30 eval '[ "$(qstates)" = "deferred:$N" ]'; then ok backup_deferred
else notok backup_deferred "$(qstates); $(tail -n 5 "$T/posternd.log")"; fi
# Tried at the primary only (after one refusal the scheduler holds the
# rest back: "is down"), and never at ourselves.
tries=$(grep -c 'to=<u[0-9]*@primary.example>, relay=.*status=deferred' "$T/posternd.log")
prim=$(grep -c 'to=<u[0-9]*@primary.example>, .*status=deferred (connect to mx1.primary.example\[127.0.0.2\]:'"$SP"': Connection refused)' "$T/posternd.log")
down=$(grep -c 'to=<u[0-9]*@primary.example>, .*status=deferred (mx:primary.example is down' "$T/posternd.log")
if [ "$tries" -ge "$N" ] && [ "$prim" -ge 1 ] && [ "$tries" -eq $((prim + down)) ]; then
	ok backup_tried_primary_only
else notok backup_tried_primary_only "$tries tries, $prim at the primary, $down held back: $(grep 'to=<' "$T/posternd.log" | head -n 3)"; fi
if grep -q 'relay=mx.test.example\|127.0.0.1\]:'"$SP"'\|5\.4\.6\|loops back' "$T/posternd.log"; then
	notok backup_no_loop "$(grep -m 3 'relay=mx.test.example\|5\.4\.6\|loops back' "$T/posternd.log")"
else ok backup_no_loop; fi
n=$(grep -c ACCEPT "$T/self.log" 2>/dev/null)
expect_eq backup_nothing_to_self "${n:-0}" 0
grep -q 'query\[MX\] primary.example' "$T/dnsmasq.log" &&
	ok backup_asked_dns || notok backup_asked_dns "$(tail -n 5 "$T/dnsmasq.log")"

# Save what is queued, to compare with what arrives.
mkdir -p "$T/raw"
"$P" queue --json | "$PY" -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        m = json.loads(l)
        print(m["id"], m["recipients"][0]["address"])' |
while read -r id addr; do
	"$P" show --raw "$id" >"$T/raw/$addr"
done

# The primary comes up and asks for its mail.
mkdir -p "$T/primary"
"$PY" "$SRV" "$SP" "$T/primary.log" --addr 127.0.0.2 --dump "$T/primary" \
	>"$T/primary.out" 2>&1 &
reap $!
wait_listen "$SP" 127.0.0.2 || notok primary_start "$(cat "$T/primary.out")"
expect_eq backup_nothing_before_etrn "$(ls "$T/primary" | wc -l | tr -d ' ')" 0

arrived() {
	grep -l -x -F "to <$1>" "$T"/primary/*.env 2>/dev/null | wc -l | tr -d ' '
}
all_arrived() {
	_i=1
	while [ "$_i" -le "$N" ]; do
		[ "$(arrived "u$_i@primary.example")" -ge 1 ] || return 1
		_i=$((_i + 1))
	done
}
t0=$(now_ms)
expect_rc backup_etrn_exit0 0 "$P" etrn "127.0.0.1:$SMTP_PORT" primary.example
cp "$T/out" "$T/etrn.out"
expect_grep backup_etrn_reply "^primary.example: 25[0-3] " "$T/etrn.out"
if poll_for 10 all_arrived; then
	echo "# all $N at the primary $(($(now_ms) - t0)) ms after the ETRN"
	ok backup_all_arrived
else notok backup_all_arrived "$(ls "$T/primary" | wc -l) files; $(cat "$T/etrn.out"); $(tail -n 8 "$T/posternd.log")"; fi
poll_for 10 eval '[ -z "$(qstates | sed "s/delivered:[0-9]*//; s/ //g")" ]'
expect_eq backup_queue_done "$(qstates | sed 's/delivered:[0-9]*//; s/ //g')" ""
bad=""
i=1
while [ "$i" -le "$N" ]; do
	a="u$i@primary.example"
	f=$(grep -l -x -F "to <$a>" "$T"/primary/*.env 2>/dev/null)
	if [ "$(echo "$f" | grep -c .)" -ne 1 ]; then
		bad="$bad $a:$(echo "$f" | grep -c .)x"
	elif ! cmp -s "${f%.env}.eml" "$T/raw/$a"; then
		bad="$bad $a:differs"
	fi
	i=$((i + 1))
done
if [ -z "$bad" ]; then ok backup_each_once_byte_for_byte; else
	notok backup_each_once_byte_for_byte "$bad"; fi
n=$(grep -c ACCEPT "$T/self.log" 2>/dev/null)
expect_eq backup_still_nothing_to_self "${n:-0}" 0

# 830-resolver: delivery through a resolver in trouble (issue 13).
#
# posternd delivers with MX lookups through c-ares (dns_servers) to a
# sink (tests/integ/deliver_fail_srv.py on 127.0.0.2, one line a message
# it accepts). Two parts:
#
# 1. dnsmasq serves d.test. Mail flows to r1..r8.d.test; dnsmasq is killed
#    by PID in the middle. What is routed meanwhile is deferred (4.4.3,
#    "MX lookup ... failed"), never failed, no DSN. sf.d.test is forwarded
#    to a port where nothing listens (dnsmasq never answers: a timeout):
#    deferred too, also after a retry. dnsmasq comes back on the same port
#    and a flush delivers every message exactly once.
# 2. tests/integ/dns_srv.py (struct-packed answers) is the only server:
#    an MX set too large for UDP (TC set: c-ares asks again over TCP, the
#    server logs the TCP query) is delivered; an MX host that is a CNAME is
#    followed with a warning; an MX host that is an IP address ("127.0.0.5"
#    or "[127.0.0.5]"), or has a space in a label, is never looked up:
#    skipped with a warning (the next MX is used), and when it is the only
#    one that is 5.4.4 with a DSN; an underscore is let through; a
#    null MX is 5.1.10 with a DSN; SERVFAIL, and malformed answers (pointer
#    loops, pointers past the end, wrong ids, cut packets, rdlength past
#    the end) defer (4.4.3) and crash nothing.
. "$POSTERN_TOP/tests/integ/lib.sh"

SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"
DNSSRV="$POSTERN_TOP/tests/integ/dns_srv.py"

SP=$(free_port)		# smtp_port: the sink's
mkdir -p "$T/sink"
"$PY" "$SRV" "$SP" "$T/sink.log" --addr 127.0.0.2 >"$T/sink.out" 2>&1 &
reap $!
wait_listen "$SP" 127.0.0.2 || notok sink_start "$(cat "$T/sink.out")"

DNS_PORT=$(free_port)
DEAD_PORT=$(free_port)	# nobody: dnsmasq's upstream for sf.d.test
# start_dnsmasq - dnsmasq for d.test on 127.0.0.1:$DNS_PORT; $DNS_PID.
start_dnsmasq() {
	set -- --keep-in-foreground --port="$DNS_PORT" \
		--listen-address=127.0.0.1 --bind-interfaces --no-resolv \
		--no-hosts --conf-file=/dev/null --pid-file= \
		--local=/d.test/ --log-queries --log-facility=- \
		--server="/sf.d.test/127.0.0.1#$DEAD_PORT" \
		--host-record=mx.d.test,127.0.0.2
	for i in 1 2 3 4 5 6 7 8; do
		set -- "$@" --mx-host=r$i.d.test,mx.d.test,10
	done
	dnsmasq "$@" >>"$T/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	reap "$DNS_PID"
	wait_dns "$DNS_PORT"
}
if ! start_dnsmasq; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

start_posternd "dns_servers=127.0.0.1:$DNS_PORT" "smtp_port=$SP" \
	"relay_domains=d.test x.test" min_backoff=1h max_backoff=2h \
	smtp_connect_timeout=5s || exit 1

# send FIRST LAST DOMAINS... - messages FIRST..LAST over SMTP, message i to
# u<i>@ the (i mod count)th domain, one every 50 ms.
send() {
	"$PY" - "$SMTP_PORT" "$@" <<'EOPY' >>"$T/send.out" 2>&1
import smtplib, sys, time
port, first, last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
doms = sys.argv[4:]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("outside.example")
for i in range(first, last + 1):
    to = "u%d@%s" % (i, doms[i % len(doms)])
    body = "From: <a@outside.example>\r\nTo: <%s>\r\nSubject: %d\r\n\r\nm\r\n" % (to, i)
    s.sendmail("a@outside.example", [to], body)
    time.sleep(0.05)
s.quit()
EOPY
}
# at_sink ADDR - how many messages the sink accepted for ADDR.
at_sink() {
	grep -c -E "^MSG [0-9]+ (.* )?$1( |\$)" "$T/sink.log" 2>/dev/null || true
}

T0=$(now_ms)
# ---- 1. dnsmasq dies mid-run, SERVFAIL, dnsmasq comes back.
DOMS="r1.d.test r2.d.test r3.d.test r4.d.test r5.d.test r6.d.test r7.d.test r8.d.test"
N=40
# Mail flows (one message every 50 ms); dnsmasq dies once 8 are through.
send 1 1 sf.d.test
send 1 "$N" $DOMS &
SEND_PID=$!
reap "$SEND_PID"
poll_for 20 eval '[ "$(grep -c "^MSG " "$T/sink.log")" -ge 8 ]'
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null
first=$(grep -c "^MSG " "$T/sink.log")
echo "# dnsmasq killed after $first of $N delivered"
if [ "$first" -ge 8 ] && [ "$first" -lt "$N" ]; then ok dns_killed_mid_run; else
	notok dns_killed_mid_run "$first of $N delivered"; fi
wait "$SEND_PID"
# down_settled - what has not reached the sink is deferred, all of it.
down_settled() {
	[ "$(qstates '@(r[0-9]|sf)\.d\.test')" = \
	    "deferred:$((N + 1 - $(grep -c '^MSG ' "$T/sink.log")))" ]
}
if poll_for 60 down_settled; then
	ok dns_down_deferred
else notok dns_down_deferred "$(qstates 'd\.test'); $(tail -n 5 "$T/posternd.log")"; fi
lookup_fail=$(grep -c 'to=<u[0-9]*@r[0-9]\.d\.test>, .*dsn=4\.4\.3, status=deferred (MX lookup for r[0-9]\.d\.test failed: ' "$T/posternd.log")
if [ "$lookup_fail" -ge 1 ]; then ok dns_down_logged; else
	notok dns_down_logged "$(grep 'status=' "$T/posternd.log" | tail -n 3)"; fi
if grep -q 'status=\(bounced\|failed\)\|non-delivery' "$T/posternd.log"; then
	notok dns_down_never_failed "$(grep -m 3 'status=\(bounced\|failed\)\|non-delivery' "$T/posternd.log")"
else ok dns_down_never_failed; fi
grep 'to=<u1@sf\.d\.test>' "$T/posternd.log" | tail -n 1 >"$T/sf.line"
expect_grep dead_upstream_deferred 'dsn=4\.4\.3, status=deferred (MX lookup for sf\.d\.test failed: ' "$T/sf.line"

echo "# dnsmasq down: $(($(now_ms) - T0)) ms"
# dnsmasq back on the same port; the operator flushes.
if ! start_dnsmasq; then
	notok dnsmasq_restart "$(tail -c 600 "$T/dnsmasq.log")"
	exit 1
fi
check flush_after_restart "$P" flush
# Delivered recipients leave the queue: none of r1..r8 is left.
if poll_for 40 eval '[ -z "$(qstates "@r[0-9]\\.d\\.test")" ] && [ "$(grep -c "^MSG " "$T/sink.log")" -ge "$N" ]'; then
	ok dns_back_all_delivered
else notok dns_back_all_delivered "$(qstates 'r[0-9]\.d\.test'); $(tail -n 5 "$T/posternd.log")"; fi
bad=""
i=1
while [ "$i" -le "$N" ]; do
	n=$(at_sink "u$i@r$((i % 8 + 1))\.d\.test")
	[ "$n" = 1 ] || bad="$bad u$i:${n}x"
	i=$((i + 1))
done
if [ -z "$bad" ]; then ok dns_back_each_once; else notok dns_back_each_once "$bad"; fi
# SERVFAIL still: deferred again after the retry, never failed.
poll_for 20 eval '[ "$(grep -c "to=<u1@sf\.d\.test>.*status=deferred" "$T/posternd.log")" -ge 2 ]'
expect_eq dead_upstream_still_deferred "$(qstates '@sf\.d\.test')" "deferred:1"
stop_posternd

echo "# part 1: $(($(now_ms) - T0)) ms"
# ---- 2. A server that sends what no good server would.
"$PY" "$DNSSRV" "$T/dnsq.log" 127.0.0.2 >"$T/dnssrv.out" 2>&1 &
reap $!
until_ok 100 eval '[ -s "$T/dnssrv.out" ]'
XPORT=$(head -n 1 "$T/dnssrv.out")
if ! wait_dns "$XPORT"; then
	notok dnssrv_start "$(cat "$T/dnssrv.out")"
	exit 1
fi
: >"$T/posternd.log"
start_posternd "dns_servers=127.0.0.1:$XPORT" "smtp_port=$SP" \
	"relay_domains=d.test x.test" min_backoff=1h max_backoff=2h \
	smtp_connect_timeout=5s || exit 1
GOOD="tc.x.test cname.x.test numeric2.x.test under.x.test"
FAIL="numeric.x.test bracket.x.test spacey.x.test nullmx.x.test"
TEMP="servfail.x.test ptrloop.x.test ptrout.x.test badid.x.test short.x.test tiny.x.test rdlen.x.test"
set -- $GOOD $FAIL $TEMP
NX=$#
send 100 $((100 + NX - 1)) "$@"
# send puts message i to the (i mod count)th domain: which is whose.
addr_of() {
	_k=0
	for _d in $GOOD $FAIL $TEMP; do
		_j=100
		while [ "$_j" -lt $((100 + NX)) ]; do
			[ $((_j % NX)) -eq "$_k" ] && [ "$_d" = "$1" ] &&
				echo "u$_j@$_d"
			_j=$((_j + 1))
		done
		_k=$((_k + 1))
	done
}
# settled - every recipient of x.test tried: what is delivered or bounced
# has left the queue, the rest is deferred.
settled() {
	[ "$(qstates 'x\.test')" = "deferred:$(echo $TEMP | wc -w)" ] &&
	[ "$(grep -c 'x\.test>, .*status=\(sent\|bounced\)' "$T/posternd.log")" -ge 8 ]
}
poll_for 60 settled || echo "# not settled: $(qstates 'x\.test')"
echo "# part 2 settled: $(($(now_ms) - T0)) ms"
for d in $GOOD; do
	a=$(addr_of "$d")
	expect_eq "delivered_$d" "$(at_sink "$a")" 1
done
if grep -q '^TCP MX tc\.x\.test$' "$T/dnsq.log"; then ok tc_retried_over_tcp; else
	notok tc_retried_over_tcp "$(grep tc.x.test "$T/dnsq.log" | head -n 3)"; fi
expect_grep cname_warned 'MX host alias\.x\.test of cname\.x\.test is an alias' "$T/posternd.log"
expect_grep numeric_warned 'numeric2\.x\.test: MX host 127\.0\.0\.5 is an address, not a name: skipped' "$T/posternd.log"
if grep -q ' 127\.0\.0\.5$\| \[127\.0\.0\.5\]$' "$T/dnsq.log"; then
	notok numeric_never_looked_up "$(grep -m 2 '127\.0\.0\.5' "$T/dnsq.log")"
else ok numeric_never_looked_up; fi
for d in $FAIL; do
	a=$(addr_of "$d")
	case $d in
	nullmx.*) code=5.1.10 ;;
	*) code=5.4.4 ;;
	esac
	if grep -q "to=<$a>, .*dsn=$code, status=bounced" "$T/posternd.log"; then
		ok "failed_$d"
	else notok "failed_$d" "$(grep "to=<$a>" "$T/posternd.log" | tail -n 2)"; fi
done
dsns=$(grep -c 'postern/bounce\[[0-9]*\]: [0-9A-Z]*: sender non-delivery notification: ' "$T/posternd.log")
expect_eq failed_each_a_dsn "$dsns" 4
for d in $TEMP; do
	a=$(addr_of "$d")
	if grep "to=<$a>" "$T/posternd.log" | tail -n 1 |
	    grep -q "dsn=4\.4\.3, status=deferred (MX lookup for $d failed: "; then
		ok "deferred_$d"
	else notok "deferred_$d" "$(grep "to=<$a>" "$T/posternd.log" | tail -n 2)"; fi
done
expect_grep servfail_named 'MX lookup for servfail\.x\.test failed: [^)]*SERVFAIL' "$T/posternd.log"
if grep -q 'died\|AddressSanitizer\|runtime error' "$T/posternd.log"; then
	notok nothing_crashed "$(grep -m 3 'died\|AddressSanitizer\|runtime error' "$T/posternd.log")"
else ok nothing_crashed; fi
stop_posternd

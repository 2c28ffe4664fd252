# 200-route-dns: route_lookup() and route_dns_resolve() against a real dnsmasq.
#
# tests/integ/route_probe.c (built by make asan into build/asan/probe/)
# prints the route, the result (code, x.y.z, reason) and each
# address ("pref host ip port") for a config and a domain. dnsmasq serves
# test.example on 127.0.0.1 (--local: unknown names are NXDOMAIN); a small
# Python server answers SERVFAIL to everything (dnsmasq forwards
# sf.test.example there), another swallows queries (timeout). Checked: MX
# order, equal-preference spread, the implicit MX (A then AAAA), null MX
# alone and mixed, NXDOMAIN, MX hosts that do not resolve, backup-MX
# self-exclusion and the loop, AAAA-only hosts, SERVFAIL, timeout,
# unreachable servers, routes_file and relayhost next hops (literal IPs,
# [host], host:port) and the answer cache outliving the server.
. "$POSTERN_TOP/tests/integ/lib.sh"

PROBE="$(cd "$POSTERN_BIN/.." && pwd)/probe/route_probe"
if [ -x "$PROBE" ]; then
	ok build_probe
else
	notok build_probe "no $PROBE (make asan builds it)"
	exit 1
fi

# dnsstub MODE - a UDP DNS server on 127.0.0.1 (a free port): "servfail"
# answers SERVFAIL to every query, "blackhole" never answers. Sets
# STUB_PORT; reaped at exit.
cat >"$T/dnsstub.py" <<'EOPY'
import socket, sys, time
mode = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
end = time.time() + 120
s.settimeout(1)
while time.time() < end:
    try:
        q, peer = s.recvfrom(4096)
    except socket.timeout:
        continue
    if mode != "servfail" or len(q) < 12:
        continue
    # Header: same id, QR, RD as asked, RA, rcode 2; the question back.
    qd = q[4:6]
    r = q[:2] + bytes([0x80 | (q[2] & 0x01), 0x82]) + qd + b"\0" * 6 + q[12:]
    s.sendto(r, peer)
EOPY
dnsstub() {
	"$PY" "$T/dnsstub.py" "$1" >"$T/stub.$1" 2>&1 &
	reap $!
	i=0
	while [ ! -s "$T/stub.$1" ] && [ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	STUB_PORT=$(head -n 1 "$T/stub.$1")
}
dnsstub servfail
SF_PORT=$STUB_PORT
dnsstub blackhole
BH_PORT=$STUB_PORT

DNS_PORT=$(free_port)
T10=mx10.test.example
T20=mx20.test.example
dnsmasq --no-daemon --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/test.example/ --local-ttl=300 \
	--server="/sf.test.example/127.0.0.1#$SF_PORT" \
	--host-record=$T10,127.0.0.10 \
	--host-record=$T20,127.0.0.20,::1 \
	--host-record=mx6.test.example,::1 \
	--host-record=a.eq.test.example,127.0.0.11 \
	--host-record=b.eq.test.example,127.0.0.12 \
	--mx-host=ord.test.example,$T20,20 \
	--mx-host=ord.test.example,$T10,10 \
	--host-record=ord.test.example,127.0.0.99 \
	--mx-host=eq.test.example,a.eq.test.example,10 \
	--mx-host=eq.test.example,b.eq.test.example,10 \
	--host-record=nomx.test.example,127.0.0.30,::1 \
	--txt-record=txtonly.test.example,nothing-else \
	--dns-rr=null.test.example,15,000000 \
	--dns-rr=nullmixed.test.example,15,000000 \
	--mx-host=nullmixed.test.example,$T10,10 \
	--mx-host=backup.test.example,$T10,10 \
	--mx-host=backup.test.example,mx.test.example,20 \
	--mx-host=backup.test.example,$T20,30 \
	--mx-host=best.test.example,mx.test.example,10 \
	--mx-host=best.test.example,$T20,20 \
	--mx-host=v6.test.example,mx6.test.example,10 \
	--mx-host=skip.test.example,missing.test.example,10 \
	--mx-host=skip.test.example,$T20,20 \
	--mx-host=noaddr.test.example,missing.test.example,10 \
	--mx-host=noaddr.test.example,txtonly.test.example,20 \
	--mx-host=sfskip.test.example,a.sf.test.example,10 \
	--mx-host=sfskip.test.example,$T10,20 \
	--mx-host=sfall.test.example,a.sf.test.example,10 \
	>"$T/dnsmasq.log" 2>&1 &
DNS_PID=$!
reap "$DNS_PID"
if ! wait_dns "$DNS_PORT"; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

# probe_conf NAME KEY=VALUE... - a config for the probe in $T/NAME.conf.
probe_conf() {
	name=$1
	shift
	{
		echo "queue_dir = $T/queue"
		case " $* " in
		*" myhostname="*) ;;
		*) echo "myhostname = mx.test.example" ;;
		esac
		echo "smtp_port = 2525"
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
	} >"$T/$name.conf"
}
cat >"$T/routes" <<EOF
# routes for 200-route-dns
lit.test.example	[127.0.0.7]:2526
hostname.test.example	[ord.test.example]:2527	# A/AAAA only, no MX
viamx.test.example	ord.test.example:2528	tls=encrypt
v6lit.test.example	[::1]:2529
badrelay.test.example	[nope.test.example]
loophop.test.example	best.test.example
.held.example		hold
EOF
probe_conf dns "dns_servers=127.0.0.1:$DNS_PORT" "routes_file=$T/routes"

# expect_probe NAME CONF DOMAIN EXPECTED - the probe's whole output.
# Its standard error (sanitizer reports) goes to $T/probe.err, checked at
# the end.
: >"$T/probe.err"
expect_probe() {
	"$PROBE" -t 5000 "$T/$2.conf" "$3" >"$T/probe.out" 2>>"$T/probe.err"
	expect_eq "$1" "$(cat "$T/probe.out")" "$4"
}

expect_probe mx_order dns ord.test.example "route mx mx:ord.test.example
result ok -
addr 10 $T10 127.0.0.10 2525
addr 20 $T20 127.0.0.20 2525
addr 20 $T20 ::1 2525"

expect_probe no_mx_a_then_aaaa dns nomx.test.example "route mx mx:nomx.test.example
result ok -
addr 0 nomx.test.example 127.0.0.30 2525
addr 0 nomx.test.example ::1 2525"

expect_probe trailing_dot_any_case dns NoMX.Test.Example. "route mx mx:nomx.test.example
result ok -
addr 0 nomx.test.example 127.0.0.30 2525
addr 0 nomx.test.example ::1 2525"

expect_probe no_mx_no_address dns txtonly.test.example "route mx mx:txtonly.test.example
result noaddr 5.4.4 no address for txtonly.test.example (no MX)"

expect_probe null_mx dns null.test.example "route mx mx:null.test.example
result nullmx 5.1.10 domain null.test.example accepts no mail (null MX)"

expect_probe null_mx_mixed_ignored dns nullmixed.test.example "route mx mx:nullmixed.test.example
result ok -
addr 10 $T10 127.0.0.10 2525"

expect_probe nxdomain dns nope.test.example "route mx mx:nope.test.example
result nxdomain 5.1.2 domain nope.test.example not found"

expect_probe backup_mx_self_excluded dns backup.test.example "route mx mx:backup.test.example
result ok -
addr 10 $T10 127.0.0.10 2525"

expect_probe best_mx_is_us dns best.test.example "route mx mx:best.test.example
result loop 5.4.6 mail for best.test.example loops back to myself"

# myhostname in another case, with a trailing dot; my_names too.
probe_conf me2 "dns_servers=127.0.0.1:$DNS_PORT" \
	"myhostname=MX.Test.Example."
expect_probe self_any_case_dot me2 best.test.example "route mx mx:best.test.example
result loop 5.4.6 mail for best.test.example loops back to myself"
probe_conf me3 "dns_servers=127.0.0.1:$DNS_PORT" \
	"myhostname=other.example" "my_names=elsewhere.example mx.test.example"
expect_probe self_my_names me3 backup.test.example "route mx mx:backup.test.example
result ok -
addr 10 $T10 127.0.0.10 2525"

expect_probe aaaa_only_mx_host dns v6.test.example "route mx mx:v6.test.example
result ok -
addr 10 mx6.test.example ::1 2525"

expect_probe mx_host_missing_skipped dns skip.test.example "route mx mx:skip.test.example
result ok -
addr 20 $T20 127.0.0.20 2525
addr 20 $T20 ::1 2525"

expect_probe mx_hosts_no_address dns noaddr.test.example "route mx mx:noaddr.test.example
result noaddr 5.4.4 no address for the MX hosts of noaddr.test.example"

expect_probe mx_host_servfail_skipped dns sfskip.test.example "route mx mx:sfskip.test.example
result ok -
addr 20 $T10 127.0.0.10 2525"

"$PROBE" -t 5000 "$T/dns.conf" sfall.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep mx_hosts_all_servfail '^result temp 4\.4\.3 address lookup for the MX hosts of sfall\.test\.example failed' "$T/probe.out"
"$PROBE" -t 5000 "$T/dns.conf" x.sf.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep mx_servfail_via_dnsmasq '^result temp 4\.4\.3 MX lookup for x\.sf\.test\.example failed' "$T/probe.out"

# Equal preferences: both hosts come first often (200 tries).
"$PROBE" -t 5000 -n 200 "$T/dns.conf" eq.test.example >"$T/spread.out" 2>>"$T/probe.err"
na=$(grep -c '^first a\.eq\.test\.example$' "$T/spread.out")
nb=$(grep -c '^first b\.eq\.test\.example$' "$T/spread.out")
if [ "$na" -ge 20 ] && [ "$nb" -ge 20 ] && [ $((na + nb)) -eq 200 ]; then
	ok equal_preference_spread
else
	notok equal_preference_spread "a first $na, b first $nb of 200"
fi
expect_eq equal_preference_both_listed "$(grep -c '^addr 10 [ab]\.eq\.test\.example 127\.0\.0\.1[12] 2525$' "$T/spread.out")" 2

# routes_file next hops.
expect_probe route_literal_ip dns lit.test.example "route host host:[127.0.0.7]:2526
result ok -
addr 0 127.0.0.7 127.0.0.7 2526"
expect_probe route_literal_ipv6 dns v6lit.test.example "route host host:[::1]:2529
result ok -
addr 0 ::1 ::1 2529"
expect_probe route_host_no_mx dns hostname.test.example "route host host:[ord.test.example]:2527
result ok -
addr 0 ord.test.example 127.0.0.99 2527"
expect_probe route_mxhost dns viamx.test.example "route mxhost mxhost:ord.test.example:2528 tls=encrypt
result ok -
addr 10 $T10 127.0.0.10 2528
addr 20 $T20 127.0.0.20 2528
addr 20 $T20 ::1 2528"
# A configured hop that does not resolve, or is us, defers.
"$PROBE" -t 5000 "$T/dns.conf" badrelay.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep route_bad_host_defers '^result temp 4\.4\.3 host nope\.test\.example not found' "$T/probe.out"
"$PROBE" -t 5000 "$T/dns.conf" loophop.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep route_loop_defers '^result temp 4\.4\.6 mail for best\.test\.example loops back' "$T/probe.out"
expect_probe route_hold dns x.held.example "route hold hold
result temp 4.3.0 route hold waits for its site: nothing to resolve"

# relayhost: everything not in routes_file; routes_file still first.
probe_conf relay "dns_servers=127.0.0.1:$DNS_PORT" "routes_file=$T/routes" \
	"relayhost=[127.0.0.8]:2530"
expect_probe relayhost_literal relay ord.test.example "route host host:[127.0.0.8]:2530 auth
result ok -
addr 0 127.0.0.8 127.0.0.8 2530"
expect_probe relayhost_routes_first relay lit.test.example "route host host:[127.0.0.7]:2526
result ok -
addr 0 127.0.0.7 127.0.0.7 2526"
probe_conf relay2 "dns_servers=127.0.0.1:$DNS_PORT" "relayhost=ord.test.example"
expect_probe relayhost_mx relay2 anything.example "route mxhost mxhost:ord.test.example:2525 auth
result ok -
addr 10 $T10 127.0.0.10 2525
addr 20 $T20 127.0.0.20 2525
addr 20 $T20 ::1 2525"

# Servers in trouble: SERVFAIL, silence (the deadline), nobody there.
probe_conf sf "dns_servers=127.0.0.1:$SF_PORT"
"$PROBE" -t 5000 "$T/sf.conf" ord.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep servfail '^result temp 4\.4\.3 MX lookup for ord\.test\.example failed' "$T/probe.out"
probe_conf bh "dns_servers=127.0.0.1:$BH_PORT"
t0=$(date +%s%N)
"$PROBE" -t 1000 "$T/bh.conf" ord.test.example >"$T/probe.out" 2>>"$T/probe.err"
t1=$(date +%s%N)
expect_eq timeout_temp "$(sed -n 2p "$T/probe.out")" "result temp 4.4.3 MX lookup for ord.test.example failed: DNS timeout"
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -ge 900 ] && [ "$ms" -lt 4000 ]; then ok timeout_bounded; else
	notok timeout_bounded "took $ms ms with -t 1000"; fi
DEAD=$(free_port)
probe_conf dead "dns_servers=127.0.0.1:$DEAD"
"$PROBE" -t 3000 "$T/dead.conf" ord.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep unreachable_temp '^result temp 4\.4\.3 MX lookup for ord\.test\.example failed' "$T/probe.out"

# The cache: answers (and NXDOMAIN) outlive the server on the same
# handle; a new handle has nothing cached and must ask.
rm -f "$T/go"
"$PROBE" -t 2000 -w "$T/go" "$T/dns.conf" ord.test.example nope.test.example \
	>"$T/cache.out" 2>>"$T/probe.err" &
CPID=$!
i=0
while [ "$(cat "$T/cache.out" 2>/dev/null | grep -c '^result ')" -lt 2 ] && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null
touch "$T/go"
wait "$CPID"
sed -n '/^round 2$/,$p' "$T/cache.out" | sed 1d >"$T/cache2.out"
sed '/^round 2$/,$d' "$T/cache.out" >"$T/cache1.out"
expect_eq cache_outlives_server "$(cat "$T/cache2.out")" "$(cat "$T/cache1.out")"
expect_grep cache_first_round_ok '^addr 10 mx10\.test\.example 127\.0\.0\.10 2525$' "$T/cache1.out"
expect_grep cache_nxdomain_kept '^result nxdomain 5\.1\.2' "$T/cache2.out"
"$PROBE" -t 1000 "$T/dns.conf" ord.test.example >"$T/probe.out" 2>>"$T/probe.err"
expect_grep server_really_gone '^result temp 4\.4\.3' "$T/probe.out"

# A TTL of 0 (dnsmasq's default --local-ttl) is not cached; negative
# answers are, for a minute: NXDOMAIN, and NODATA for zero's MX, so the
# second round fails at its A lookup.
DNS2_PORT=$(free_port)
dnsmasq --no-daemon --port="$DNS2_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/test.example/ \
	--host-record=zero.test.example,127.0.0.50 >"$T/dnsmasq2.log" 2>&1 &
DNS2_PID=$!
reap "$DNS2_PID"
if wait_dns "$DNS2_PORT"; then
	probe_conf zero "dns_servers=127.0.0.1:$DNS2_PORT"
	rm -f "$T/go"
	"$PROBE" -t 1000 -w "$T/go" "$T/zero.conf" zero.test.example \
		nope.test.example >"$T/zero.out" 2>>"$T/probe.err" &
	CPID=$!
	i=0
	while [ "$(cat "$T/zero.out" 2>/dev/null | grep -c '^result ')" -lt 2 ] &&
		[ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	kill "$DNS2_PID"
	wait "$DNS2_PID" 2>/dev/null
	touch "$T/go"
	wait "$CPID"
	grep '^result' "$T/zero.out" | cut -c1-60 >"$T/zero.res"
	expect_eq ttl0_not_cached "$(tr '\n' '|' <"$T/zero.res")" \
		"result ok -|result nxdomain 5.1.2 domain nope.test.example not found|result temp 4.4.3 address lookup for zero.test.example (no M|result nxdomain 5.1.2 domain nope.test.example not found|"
else
	notok ttl0_not_cached "dnsmasq did not start: $(head -c 300 "$T/dnsmasq2.log")"
fi

if grep -q -E 'Sanitizer|runtime error|LeakSanitizer' "$T/probe.err"; then
	notok no_sanitizer_reports "$(head -c 1500 "$T/probe.err")"
else
	ok no_sanitizer_reports
fi

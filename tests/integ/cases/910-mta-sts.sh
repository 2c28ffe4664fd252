# 910-mta-sts: MTA-STS (RFC 8461) in the delivery path, against real
# peers: dnsmasq answering TXT (_mta-sts.D), MX and A records; an HTTPS
# server (tests/integ/sts_https.py, Python's http.server with ssl) on
# 127.0.91.100:443 serving the policies with a certificate from a CA the
# test makes (smtp_mta_sts_ca_file); STARTTLS sinks (dane_sink.py) on
# 127.0.91.1 and .2 (a certificate from that CA for the MX names:
# tls_ca_file)
# and 127.0.91.4 (self-signed: never verified). Delivery by `postern run`
# and, for the cache across a restart, by posternd.
#
# Cases: enforce, matching MX, valid certificate -> delivered, the TLS
# line says mta-sts=enforce; an MX matching no pattern skipped for the
# next; none matching -> deferred 4.7.5; an invalid certificate ->
# deferred 4.7.5, nothing sent; testing -> delivered, with what would
# fail logged; mode none and no policy -> as ever; hostile policies
# (oversized, bad max_age, a redirect, text/html) refused -> no policy;
# smtp_mta_sts = no and routes_file mta-sts=no -> not consulted; an id
# bump -> the new policy fetched and obeyed; the policy host down -> the
# cached policy still used, and not asked again within 5 minutes; the
# cache read by a new posternd with no HTTPS server at all.
. "$POSTERN_TOP/tests/integ/lib.sh"
. "$POSTERN_TOP/tests/integ/sconf.sh"

SP=$(free_port)
DNS_PORT=$(free_port)
WEB=127.0.91.100

# ------------------------------------------------------------------
# Certificates: a CA, the MX certificate (127.0.91.1), the policy
# server's, and a self-signed one (127.0.91.4).
make_ca ca "sts test CA"
make_leaf ca mx mx1.e.sts.test mx.nm.sts.test mxo.nm.sts.test mx.c.sts.test \
	mx.r.sts.test
WEBNAMES=""
for d in e nm nm2 bc t n c r h1 h2 h3 h4; do
	WEBNAMES="$WEBNAMES mta-sts.$d.sts.test"
done
# shellcheck disable=SC2086
make_leaf ca web $WEBNAMES
make_cert self mx.bc.sts.test
chmod 644 "$T/ca.crt"
for f in ca mx web self; do
	[ -s "$T/$f.crt" ] || { notok certs "no $T/$f.crt"; exit 1; }
done

# ------------------------------------------------------------------
# Policies. policy D MODE MX... - the body served for mta-sts.D.sts.test.
mkdir -p "$T/www"
policy() {
	d=$1
	m=$2
	shift 2
	{
		printf 'version: STSv1\r\nmode: %s\r\nmax_age: 86400\r\n' "$m"
		for x in "$@"; do printf 'mx: %s\r\n' "$x"; done
	} >"$T/www/mta-sts.$d.sts.test"
}
policy e enforce '*.e.sts.test'
policy nm enforce mx.nm.sts.test
policy nm2 enforce mx.nm2.sts.test
policy bc enforce mx.bc.sts.test
policy t testing '*.other.test'
policy n none mx.n.sts.test
policy c enforce mx.c.sts.test
policy r enforce mx.r.sts.test
# Hostile: 70,000 octets; max_age past a year; a redirect; text/html.
{ printf 'version: STSv1\nmode: enforce\nmax_age: 86400\nmx: nowhere.test\n'
  head -c 70000 /dev/zero | tr '\0' '#'; } >"$T/www/mta-sts.h1.sts.test"
printf 'version: STSv1\nmode: enforce\nmax_age: 31557601\nmx: nowhere.test\n' \
	>"$T/www/mta-sts.h2.sts.test"
policy h3 enforce nowhere.test
echo "https://mta-sts.e.sts.test/.well-known/mta-sts.txt" \
	>"$T/www/mta-sts.h3.sts.test.redirect"
policy h4 enforce nowhere.test
echo "text/html" >"$T/www/mta-sts.h4.sts.test.ctype"

WLOG="$T/web.log"
WEB_PID=""
web_start() {
	: >"$WLOG"
	"$PY" "$POSTERN_TOP/tests/integ/sts_https.py" "$WEB" 443 "$T/web.crt" \
		"$T/web.key" "$T/www" "$WLOG" >"$T/web.out" 2>&1 &
	WEB_PID=$!
	reap "$WEB_PID"
	poll_for 10 grep -q '^READY' "$WLOG" ||
		{ notok web_start "$(head -c 400 "$T/web.out")"; exit 1; }
}
web_stop() {
	kill "$WEB_PID" 2>/dev/null
	wait "$WEB_PID" 2>/dev/null
}
web_start

# ------------------------------------------------------------------
# DNS: dns_start [D=ID...] - dnsmasq (again) with the TXT records; c's id
# is $CID.
DNS_PID=""
CID=1
dns_start() {
	if [ -n "$DNS_PID" ]; then
		kill "$DNS_PID" 2>/dev/null
		wait "$DNS_PID" 2>/dev/null
	fi
	set --
	for d in e nm nm2 bc t n r h1 h2 h3 h4; do
		set -- "$@" "--txt-record=_mta-sts.$d.sts.test,v=STSv1; id=1;" \
			"--host-record=mta-sts.$d.sts.test,$WEB"
	done
	set -- "$@" "--txt-record=_mta-sts.c.sts.test,v=STSv1; id=$CID;" \
		"--host-record=mta-sts.c.sts.test,$WEB"
	dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
		--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
		--pid-file= --local=/sts.test/ --log-queries --log-facility=- \
		--host-record=mx1.e.sts.test,127.0.91.1 \
		--mx-host=e.sts.test,mx1.e.sts.test,10 \
		--host-record=mxo.nm.sts.test,127.0.91.2 \
		--host-record=mx.nm.sts.test,127.0.91.1 \
		--mx-host=nm.sts.test,mxo.nm.sts.test,10 \
		--mx-host=nm.sts.test,mx.nm.sts.test,20 \
		--host-record=mxo.nm2.sts.test,127.0.91.1 \
		--mx-host=nm2.sts.test,mxo.nm2.sts.test,10 \
		--host-record=mx.bc.sts.test,127.0.91.4 \
		--mx-host=bc.sts.test,mx.bc.sts.test,10 \
		--host-record=mx.t.sts.test,127.0.91.4 \
		--mx-host=t.sts.test,mx.t.sts.test,10 \
		--host-record=mx.n.sts.test,127.0.91.4 \
		--mx-host=n.sts.test,mx.n.sts.test,10 \
		--host-record=mx.p.sts.test,127.0.91.4 \
		--mx-host=p.sts.test,mx.p.sts.test,10 \
		--host-record=mx.c.sts.test,127.0.91.1 \
		--mx-host=c.sts.test,mx.c.sts.test,10 \
		--host-record=mx.r.sts.test,127.0.91.4 \
		--mx-host=r.sts.test,mx.r.sts.test,10 \
		--host-record=mx.h.sts.test,127.0.91.4 \
		--mx-host=h1.sts.test,mx.h.sts.test,10 \
		--mx-host=h2.sts.test,mx.h.sts.test,10 \
		--mx-host=h3.sts.test,mx.h.sts.test,10 \
		--mx-host=h4.sts.test,mx.h.sts.test,10 \
		"$@" >>"$T/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	reap "$DNS_PID"
	wait_dns "$DNS_PORT" ||
		{ notok dnsmasq_start "$(tail -c 600 "$T/dnsmasq.log")"; exit 1; }
}
dns_start

# ------------------------------------------------------------------
# Receivers.
SINK="$T/sink.log"
"$PY" "$POSTERN_TOP/tests/integ/dane_sink.py" "$SP" "$SINK" \
	"127.0.91.1=$T/mx.crt:$T/mx.key" \
	"127.0.91.2=$T/mx.crt:$T/mx.key" \
	"127.0.91.4=$T/self.crt:$T/self.key" >"$T/sink.out" 2>&1 &
reap $!
if ! poll_for 10 grep -q '^READY' "$SINK" 2>/dev/null; then
	notok sink_start "$(head -c 400 "$T/sink.out")"
	exit 1
fi

enq() {
	c=$1
	shift
	printf 'Subject: sts\n\nhello %s\n' "$*" |
		"$P" -c "$T/$c.conf" enqueue -f sender@src.example "$@" >/dev/null
}
prun() {
	timeout 90 "$P" -c "$T/$1.conf" run >"$T/$1.out" 2>>"$T/$1.log"
}
msgs() { grep -c "^MSG $1 $2 <$3>" "$SINK"; }
gets() { grep -c "^GET mta-sts\.$1\.sts\.test " "$WLOG"; }

sconf s "tls_ca_file=$T/ca.crt" "smtp_mta_sts_ca_file=$T/ca.crt" \
	"routes_file=$T/routes" "listen=127.0.0.1:$(free_port)"
printf 'r.sts.test mx mta-sts=no\n' >"$T/routes"
chmod 644 "$T/routes"

enq s a@e.sts.test
enq s b@nm.sts.test
enq s c@nm2.sts.test
enq s d@bc.sts.test
enq s e@t.sts.test
enq s f@n.sts.test
enq s g@p.sts.test
enq s h@c.sts.test
enq s i@r.sts.test
enq s j1@h1.sts.test
enq s j2@h2.sts.test
enq s j3@h3.sts.test
enq s j4@h4.sts.test
prun s

# enforce, matching MX, a valid certificate.
expect_line enforce_sent s a@e.sts.test \
	"relay=mx1\.e\.sts\.test\[127\.0\.91\.1\]:$SP, .*dsn=2\.0\.0, status=sent"
expect_grep enforce_tls_line "mx1\.e\.sts\.test\[127\.0\.91\.1\]:$SP: tls=verified, cipher=TLSv1\.[23] [A-Z0-9_]*, mta-sts=enforce" "$T/s.log"
expect_grep enforce_fetched "MTA-STS policy of e\.sts\.test: id 1, mode enforce, max_age 86400, 1 mx pattern" "$T/s.log"
expect_eq enforce_at_sink "$(msgs 127.0.91.1 TLS a@e.sts.test)" 1

# enforce: an MX matching no pattern is passed over for the next (mxo,
# preferred, 127.0.91.2, would take the mail with a valid certificate:
# its name is in the sink's certificate too).
expect_line enforce_skip_mx s b@nm.sts.test \
	"relay=mx\.nm\.sts\.test\[127\.0\.91\.1\]:$SP, .*status=sent"
expect_eq enforce_skip_no_conn "$(grep -c '^ACCEPT 127.0.91.2' "$SINK")" 0
expect_grep enforce_skip_logged "MTA-STS policy of nm\.sts\.test (enforce): MX host mxo\.nm\.sts\.test matches no mx pattern: not using it" "$T/s.log"
# ... and none left: deferred, never bounced.
expect_line enforce_no_mx s c@nm2.sts.test \
	"dsn=4\.7\.5, status=deferred \(MTA-STS policy of nm2\.sts\.test \(enforce\): no MX host matches its mx patterns\)"

# enforce: a certificate that does not verify.
expect_line enforce_badcert s d@bc.sts.test \
	"dsn=4\.7\.5, status=deferred \(MTA-STS policy of bc\.sts\.test \(enforce\): mx\.bc\.sts\.test\[127\.0\.91\.4\]:$SP: certificate not verified for mx\.bc\.sts\.test: self[- ]signed certificate"
expect_eq enforce_badcert_nothing "$(grep -c '<d@bc.sts.test>' "$SINK")" 0

# testing: delivered; what enforce would refuse is logged.
expect_line testing_sent s e@t.sts.test \
	"relay=mx\.t\.sts\.test\[127\.0\.91\.4\]:$SP, .*status=sent"
expect_grep testing_mx_logged "MTA-STS policy of t\.sts\.test (testing): MX host mx\.t\.sts\.test matches no mx pattern: would not be used" "$T/s.log"
expect_grep testing_cert_logged "MTA-STS policy of t\.sts\.test (testing): mx\.t\.sts\.test\[127\.0\.91\.4\]:$SP: certificate not verified for mx\.t\.sts\.test: self[- ]signed certificate; would not deliver under enforce" "$T/s.log"
expect_grep testing_tls_line "mx\.t\.sts\.test\[127\.0\.91\.4\]:$SP: tls=[a-z]*, cipher=[^,]*, mta-sts=testing" "$T/s.log"

# mode none, and no policy at all: as ever (no mta-sts= on the line).
expect_line none_sent s f@n.sts.test "relay=mx\.n\.sts\.test.*status=sent"
expect_grep none_fetched "MTA-STS policy of n\.sts\.test: id 1, mode none" "$T/s.log"
expect_eq none_no_mode "$(grep -c 'mx\.n\.sts\.test\[.*tls=.*mta-sts=' "$T/s.log")" 0
expect_line nopolicy_sent s g@p.sts.test "relay=mx\.p\.sts\.test.*status=sent"
expect_eq nopolicy_no_fetch "$(gets p)" 0

# routes_file mta-sts=no: r's enforce policy (which its self-signed MX
# would fail) is never asked for.
expect_line route_off_sent s i@r.sts.test "relay=mx\.r\.sts\.test.*status=sent"
expect_eq route_off_no_fetch "$(gets r)" 0

# Hostile policies: refused, and the domain has no policy.
expect_grep hostile_big "MTA-STS policy fetch for h1\.sts\.test (id 1) failed: https://mta-sts\.h1\.sts\.test/\.well-known/mta-sts\.txt: policy larger than 65536 octets; no policy" "$T/s.log"
expect_grep hostile_age "MTA-STS policy fetch for h2\.sts\.test (id 1) failed: .*bad policy: line 3: max_age over 31557600; no policy" "$T/s.log"
expect_grep hostile_redirect "MTA-STS policy fetch for h3\.sts\.test (id 1) failed: .*HTTP status 301, not 200; no policy" "$T/s.log"
expect_eq hostile_redirect_not_followed "$(grep -c '^GET mta-sts\.e\.sts\.test' "$WLOG")" 1
expect_grep hostile_ctype "MTA-STS policy fetch for h4\.sts\.test (id 1) failed: .*Content-Type \"text/html\", not text/plain; no policy" "$T/s.log"
for j in j1 j2 j3 j4; do
	n=${j#j}
	expect_line "hostile_${j}_sent" s "$j@h$n.sts.test" "status=sent"
done

# ------------------------------------------------------------------
# The cache: c (id 1) delivered; id 2 says another MX -> fetched, and
# the mail waits; the server down with id 3 -> the cached id 2 is used;
# asked again at once -> no fetch within 5 minutes.
expect_line cache_c1_sent s h@c.sts.test "relay=mx\.c\.sts\.test.*status=sent"
policy c enforce other.c.sts.test
CID=2
dns_start
enq s h2@c.sts.test
prun s
expect_grep cache_id2_fetched "MTA-STS policy of c\.sts\.test: id 2, mode enforce" "$T/s.log"
expect_line cache_id2_obeyed s h2@c.sts.test \
	"dsn=4\.7\.5, status=deferred \(MTA-STS policy of c\.sts\.test \(enforce\): no MX host matches"
# e's policy (id 1, fetched in the first run) was not fetched again.
expect_eq cache_e_once "$(gets e)" 1

web_stop
CID=3
dns_start
enq s h3@c.sts.test
prun s
expect_grep cache_down_used "MTA-STS policy fetch for c\.sts\.test (id 3) failed: .*; using the cached policy (id 2)" "$T/s.log"
expect_line cache_down_obeyed s h3@c.sts.test \
	"dsn=4\.7\.5, status=deferred \(MTA-STS policy of c\.sts\.test \(enforce\): no MX host matches"
web_start
enq s h4@c.sts.test
prun s
expect_eq cache_backoff_no_fetch "$(gets c)" 0
expect_eq cache_backoff_logged_once "$(grep -c 'MTA-STS policy fetch for c\.sts\.test (id 3) failed' "$T/s.log")" 1
expect_line cache_backoff_obeyed s h4@c.sts.test "dsn=4\.7\.5, status=deferred"
web_stop

# A new posternd, no HTTPS server at all: e's cached policy (enforce)
# from the first run is in the queue database.
"$POSTERN_BIN/posternd" -c "$T/s.conf" -f >>"$T/pd.log" 2>&1 &
PD_PID=$!
reap "$PD_PID"
enq s k@e.sts.test
poll_for 30 grep -q 'to=<k@e\.sts\.test>, .*status=' "$T/pd.log"
l=$(grep -F 'to=<k@e.sts.test>,' "$T/pd.log" | tail -n 1)
if printf '%s\n' "$l" | grep -q "status=sent"; then ok restart_sent; else
	notok restart_sent "line '$l' ($(tail -c 800 "$T/pd.log"))"; fi
expect_grep restart_enforced "mx1\.e\.sts\.test\[127\.0\.91\.1\]:$SP: tls=verified, .*mta-sts=enforce" "$T/pd.log"
expect_eq restart_no_fetch "$(grep -c 'MTA-STS policy fetch for e' "$T/pd.log")" 0
stop_posternd

# smtp_mta_sts = no: bc's enforce policy is not consulted; delivered
# (to a self-signed MX) as with no policy.
sconf off "tls_ca_file=$T/ca.crt" smtp_mta_sts=no
enq off m@bc.sts.test
q0=$(grep -c 'query\[TXT\] _mta-sts\.bc' "$T/dnsmasq.log")
prun off
expect_line off_sent off m@bc.sts.test "relay=mx\.bc\.sts\.test.*status=sent"
expect_eq off_no_mta_sts_lines "$(grep -c 'MTA-STS\|mta-sts=' "$T/off.log")" 0
expect_eq off_no_txt_query "$(grep -c 'query\[TXT\] _mta-sts\.bc' "$T/dnsmasq.log")" "$q0"

# postern check loads smtp_mta_sts_ca_file as the fetch will.
sconf badca "smtp_mta_sts_ca_file=$T/nonexistent.pem"
"$P" -c "$T/badca.conf" check >"$T/check.out" 2>&1
expect_eq check_badca_rc "$?" 1
expect_grep check_badca_named 'smtp_mta_sts_ca_file' "$T/check.out"
"$P" -c "$T/s.conf" check >"$T/check2.out" 2>&1
expect_eq check_goodca_rc "$? $(grep -c smtp_mta_sts_ca_file "$T/check2.out")" "0 0"

# The workers, posternd and the fetches ran under ASan and UBSan.
if cat "$T"/*.log "$T"/*.out 2>/dev/null |
    grep -q -E 'Sanitizer|runtime error'; then
	notok no_sanitizer_reports "$(cat "$T"/*.log "$T"/*.out |
	    grep -m 3 -E 'Sanitizer|runtime error')"
else
	ok no_sanitizer_reports
fi

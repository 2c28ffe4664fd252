# 900-dane: outbound DANE (RFC 7672, RFC 6698) against a real validating
# resolver.
#
# DNS (tests/integ/dane_dns.sh): nsd serves dane.test, signed by the test
# with a fresh key, and plain.test, unsigned; unbound validates with the
# key's DS as its trust anchor, and postern's dns_servers is unbound.
# Certificates are made here with openssl: self-signed ones for DANE-EE
# (3 1 1), a CA and a certificate it signed, sent with the CA, for DANE-TA
# (2 1 1). Receivers: tests/integ/dane_sink.py on 127.0.9.N, one
# certificate per address, all on smtp_port $SP.
#
#	domain		MX				TLSA at _SP._tcp.MX
#	d311.dane.test	mx311 (127.0.9.1)		3 1 1 of its key
#	d211.dane.test	mx211 (127.0.9.2)		2 1 1 of the CA's key
#	dbad.dane.test	mxbad (127.0.9.3)		3 1 1 of another key
#	dsf.dane.test	10 mxsf (127.0.9.4)		bogus (bad signature;
#							a zone of its own)
#			20 mxok (127.0.9.5)		3 1 1 of its key
#	d.plain.test	mx.plain.test (127.0.9.6)	3 1 1 of nothing, unsigned
#	dnot.dane.test	mxnot (127.0.9.7)		none (secure denial)
#	dpkix.dane.test	mxpkix (127.0.9.8, no STARTTLS)	1 1 1 (PKIX-EE: unusable)
#	d302.dane.test	mx302 (127.0.9.1, mx311's)	3 0 2 of mx311's certificate
#	d201.dane.test	mx201 (127.0.9.10)		2 0 1 of the CA's certificate
#	dwrong.dane.test mxwrong (127.0.9.2, mx211's)	2 1 1 of the CA's key: the
#							certificate names mx211
#	di.plain.test	mxbad.dane.test (secure host, insecure MX RRset)
#
# Checked, with smtp_tls = dane and `postern run`: the resolver's answers
# carry AD for dane.test and not for plain.test, and SERVFAIL for the
# bogus TLSA; 3 1 1 and 2 1 1 are delivered and logged tls=dane-verified;
# the mismatch is deferred 4.7.5 with the verification error and nothing
# reaches mxbad; the bogus TLSA's MX is skipped (not even connected to) and
# the next MX takes the mail; the full-certificate selector and SHA2-512
# work (3 0 2, 2 0 1); DANE-TA checks the name (mx211's certificate on
# mxwrong: deferred), DANE-EE does not (mx311's on mx302); the unsigned domain and the secure MX without
# TLSA are delivered opportunistically (tls=untrusted), and so is a
# domain whose MX RRset is insecure though its MX host has (mismatching)
# TLSA records (RFC 7672 §2.2.1); unusable TLSA
# records make TLS mandatory (no STARTTLS: deferred 4.7.5); a routes_file
# tls=dane entry does the same as smtp_tls = dane, while other domains keep
# smtp_tls = may (a connection without TLS logs tls=none).
. "$POSTERN_TOP/tests/integ/lib.sh"
. "$POSTERN_TOP/tests/integ/dane_dns.sh"
. "$POSTERN_TOP/tests/integ/sconf.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"

SP=$(free_port)		# smtp_port: where every MX host listens

# ------------------------------------------------------------------
# Certificates. cert NAME CN [CA]: $T/NAME.key, $T/NAME.crt (signed by CA
# when given, else self-signed); spki NAME: SHA-256 of its key (selector
# 1, matching type 1).
cert() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$T/$1.key" 2>/dev/null
	if [ $# -ge 3 ]; then
		openssl req -new -key "$T/$1.key" -subj "/CN=$2" \
			-out "$T/$1.csr" 2>/dev/null
		printf 'subjectAltName=DNS:%s\n' "$2" >"$T/$1.ext"
		openssl x509 -req -in "$T/$1.csr" -CA "$T/$3.crt" \
			-CAkey "$T/$3.key" -CAcreateserial -days 2 \
			-extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null
	else
		openssl req -x509 -key "$T/$1.key" -subj "/CN=$2" -days 2 \
			-addext "subjectAltName=DNS:$2" -out "$T/$1.crt" 2>/dev/null
	fi
}
# full NAME ALG: the digest (sha256, sha512) of its certificate (selector
# 0).
full() {
	openssl x509 -in "$T/$1.crt" -outform DER | openssl dgst "-$2" -r |
		cut -d' ' -f1
}
spki() {
	openssl x509 -in "$T/$1.crt" -noout -pubkey |
		openssl pkey -pubin -outform DER | openssl dgst -sha256 -r |
		cut -d' ' -f1
}
cert ee311 mx311.dane.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/ca.key" -out "$T/ca.crt" -days 2 -subj "/CN=DANE test CA" \
	-addext "basicConstraints=critical,CA:true" \
	-addext "keyUsage=critical,keyCertSign" 2>/dev/null
cert ee211 mx211.dane.test ca
cat "$T/ee211.crt" "$T/ca.crt" >"$T/ee211.chain"
cert ee201 mx201.dane.test ca
cat "$T/ee201.crt" "$T/ca.crt" >"$T/ee201.chain"
cert bad mxbad.dane.test
cert other mxbad.dane.test
cert sf mxsf.dane.test
cert okee mxok.dane.test
cert plain mx.plain.test
cert not mxnot.dane.test
cert pkix mxpkix.dane.test
for f in ee311 ee211 ee201 ca bad other sf okee plain not pkix; do
	[ -s "$T/$f.crt" ] || notok "cert_$f" "openssl made no $T/$f.crt"
done

# ------------------------------------------------------------------
# DNS.
cat >"$T/signed.rr" <<EOF
d311 IN MX 10 mx311
mx311 IN A 127.0.9.1
_$SP._tcp.mx311 IN TLSA 3 1 1 $(spki ee311)
d211 IN MX 10 mx211
mx211 IN A 127.0.9.2
_$SP._tcp.mx211 IN TLSA 2 1 1 $(spki ca)
dbad IN MX 10 mxbad
mxbad IN A 127.0.9.3
_$SP._tcp.mxbad IN TLSA 3 1 1 $(spki other)
dsf IN MX 10 mxsf
dsf IN MX 20 mxok
mxsf IN A 127.0.9.4
mxok IN A 127.0.9.5
_$SP._tcp.mxok IN TLSA 3 1 1 $(spki okee)
dnot IN MX 10 mxnot
mxnot IN A 127.0.9.7
dpkix IN MX 10 mxpkix
mxpkix IN A 127.0.9.8
_$SP._tcp.mxpkix IN TLSA 1 1 1 $(spki pkix)
droute IN MX 10 mxbad
d302 IN MX 10 mx302
mx302 IN A 127.0.9.1
_$SP._tcp.mx302 IN TLSA 3 0 2 $(full ee311 sha512)
d201 IN MX 10 mx201
mx201 IN A 127.0.9.10
_$SP._tcp.mx201 IN TLSA 2 0 1 $(full ca sha256)
dwrong IN MX 10 mxwrong
mxwrong IN A 127.0.9.2
_$SP._tcp.mxwrong IN TLSA 2 1 1 $(spki ca)
EOF
cat >"$T/unsigned.rr" <<EOF
d IN MX 10 mx
mx IN A 127.0.9.6
_$SP._tcp.mx IN TLSA 3 1 1 $(spki other)
di IN MX 10 mxbad.dane.test.
EOF
cat >"$T/spoilt.rr" <<EOF
@ IN TLSA 3 1 1 $(spki sf)
EOF
dane_dns_start "$T/signed.rr" "$T/unsigned.rr" "_$SP._tcp.mxsf.dane.test" \
	"$T/spoilt.rr" || exit 1

# The resolver validates: AD on dane.test's answers (and its secure
# denials), none on plain.test's, SERVFAIL for the spoilt record.
expect_eq dns_ad_tlsa "$(dns_ad "_$SP._tcp.mx311.dane.test" TLSA)" \
	"NOERROR ad=1 answers=1"
expect_eq dns_ad_mx "$(dns_ad d311.dane.test MX)" "NOERROR ad=1 answers=1"
expect_eq dns_ad_nodata "$(dns_ad "_$SP._tcp.mxnot.dane.test" TLSA)" \
	"NXDOMAIN ad=1 answers=0"
expect_eq dns_insecure "$(dns_ad "_$SP._tcp.mx.plain.test" TLSA)" \
	"NOERROR ad=0 answers=1"
expect_eq dns_bogus "$(dns_ad "_$SP._tcp.mxsf.dane.test" TLSA)" \
	"SERVFAIL ad=0 answers=0"
# ... and that takes nothing else down.
expect_eq dns_after_bogus "$(dns_ad d311.dane.test MX)" "NOERROR ad=1 answers=1"

# ------------------------------------------------------------------
# Receivers.
SINK="$T/sink.log"
"$PY" "$POSTERN_TOP/tests/integ/dane_sink.py" "$SP" "$SINK" \
	"127.0.9.1=$T/ee311.crt:$T/ee311.key" \
	"127.0.9.2=$T/ee211.chain:$T/ee211.key" \
	"127.0.9.3=$T/bad.crt:$T/bad.key" \
	"127.0.9.4=$T/sf.crt:$T/sf.key" \
	"127.0.9.5=$T/okee.crt:$T/okee.key" \
	"127.0.9.6=$T/plain.crt:$T/plain.key" \
	"127.0.9.7=$T/not.crt:$T/not.key" \
	"127.0.9.8=plain" \
	"127.0.9.10=$T/ee201.chain:$T/ee201.key" >"$T/sink.out" 2>&1 &
reap $!
if ! poll_for 10 grep -q '^READY' "$SINK" 2>/dev/null; then
	notok dane_sink_start "$(head -c 400 "$T/sink.out")"
	exit 1
fi

# ------------------------------------------------------------------
# postern: sconf NAME KEY=VALUE... (tests/integ/sconf.sh), enq NAME
# RCPT..., prun NAME (as in 300-deliver-route.sh).
enq() {
	c=$1
	shift
	printf 'Subject: dane\n\nhello %s\n' "$*" |
		"$P" -c "$T/$c.conf" enqueue -f sender@src.example "$@" >/dev/null
}
prun() {
	timeout 60 "$P" -c "$T/$1.conf" run >"$T/$1.out" 2>"$T/$1.log"
}
# tlsline NAME CONF HOST IP LEVEL - the connection's TLS line.
tlsline() {
	if grep -q -E "^postern/[a-z]+\[[0-9]+\]: $3\[$4\]:$SP: tls=$5[, ]|^postern.*: $3\[$4\]:$SP: tls=$5\$" "$T/$2.log"; then
		ok "$1"
	else
		notok "$1" "no tls=$5 line for $3[$4] in: $(grep -F "[$4]" "$T/$2.log" | head -c 600)"
	fi
}
sinkmsg() { grep -c "^MSG $1 TLS <$2>" "$SINK"; }

sconf dn smtp_tls=dane
enq dn a@d311.dane.test
enq dn b@d211.dane.test
enq dn c@dbad.dane.test
enq dn d@dsf.dane.test
enq dn e@d.plain.test
enq dn f@dnot.dane.test
enq dn g@dpkix.dane.test
enq dn j@d302.dane.test
enq dn k@d201.dane.test
enq dn l@dwrong.dane.test
enq dn m@di.plain.test
prun dn

expect_line dane_311_sent dn a@d311.dane.test \
	"relay=mx311\.dane\.test\[127\.0\.9\.1\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_311_verified dn mx311.dane.test 127.0.9.1 dane-verified
expect_eq dane_311_at_sink "$(sinkmsg 127.0.9.1 a@d311.dane.test)" 1

expect_line dane_211_sent dn b@d211.dane.test \
	"relay=mx211\.dane\.test\[127\.0\.9\.2\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_211_verified dn mx211.dane.test 127.0.9.2 dane-verified
expect_eq dane_211_at_sink "$(sinkmsg 127.0.9.2 b@d211.dane.test)" 1

expect_line dane_mismatch_deferred dn c@dbad.dane.test \
	"dsn=4\.7\.5, status=deferred \(.*DANE.*mxbad\.dane\.test.*[Nn]o matching DANE TLSA records"
expect_eq dane_mismatch_nothing "$(grep -c '^MSG 127.0.9.3 TLS <c@' "$SINK")" 0

expect_line dane_servfail_next_mx dn d@dsf.dane.test \
	"relay=mxok\.dane\.test\[127\.0\.9\.5\]:$SP, .*dsn=2\.0\.0, status=sent"
expect_eq dane_servfail_skipped "$(grep -c '^ACCEPT 127.0.9.4' "$SINK")" 0
expect_grep dane_servfail_logged "TLSA lookup for _$SP._tcp.mxsf.dane.test failed (SERVFAIL): not using MX host mxsf.dane.test" "$T/dn.log"
tlsline dane_servfail_next_verified dn mxok.dane.test 127.0.9.5 dane-verified

expect_line dane_unsigned_sent dn e@d.plain.test \
	"relay=mx\.plain\.test\[127\.0\.9\.6\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_unsigned_untrusted dn mx.plain.test 127.0.9.6 untrusted

expect_line dane_no_tlsa_sent dn f@dnot.dane.test \
	"relay=mxnot\.dane\.test\[127\.0\.9\.7\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_no_tlsa_untrusted dn mxnot.dane.test 127.0.9.7 untrusted

expect_line dane_unusable_needs_tls dn g@dpkix.dane.test \
	"dsn=4\.7\.5, status=deferred \(TLS is required, but was not offered by host mxpkix\.dane\.test"
expect_eq dane_unusable_nothing "$(grep -c '^MSG 127.0.9.8' "$SINK")" 0

expect_line dane_302_sent dn j@d302.dane.test \
	"relay=mx302\.dane\.test\[127\.0\.9\.1\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_302_verified dn mx302.dane.test 127.0.9.1 "dane-verified, cipher=TLSv1\.[23] [A-Z0-9_]*, tlsa=3 0 2 depth 0"
expect_line dane_201_sent dn k@d201.dane.test \
	"relay=mx201\.dane\.test\[127\.0\.9\.10\]:$SP, .*dsn=2\.0\.0, status=sent"
tlsline dane_201_verified dn mx201.dane.test 127.0.9.10 "dane-verified, cipher=TLSv1\.[23] [A-Z0-9_]*, tlsa=2 0 1 depth 1"
expect_line dane_ta_name_checked dn l@dwrong.dane.test \
	"dsn=4\.7\.5, status=deferred \(DANE TLSA verification failed for mxwrong\.dane\.test\[127\.0\.9\.2\]:$SP: [Hh]ostname mismatch"
expect_eq dane_ta_name_nothing "$(grep -c '^MSG 127.0.9.2 TLS <l@' "$SINK")" 0

expect_line dane_insecure_mx_sent dn m@di.plain.test \
	"relay=mxbad\.dane\.test\[127\.0\.9\.3\]:$SP, .*dsn=2\.0\.0, status=sent"
expect_eq dane_insecure_mx_at_sink "$(sinkmsg 127.0.9.3 m@di.plain.test)" 1

# Per route: tls=dane in routes_file, smtp_tls = may otherwise. droute's
# MX is mxbad: its TLSA does not match.
cat >"$T/routes" <<EOF
droute.dane.test	mx	tls=dane
EOF
chmod 644 "$T/routes"
sconf rt smtp_tls=may "routes_file=$T/routes"
enq rt h@droute.dane.test
enq rt i@d311.dane.test
enq rt n@dpkix.dane.test
prun rt
expect_line dane_route_mismatch rt h@droute.dane.test \
	"dsn=4\.7\.5, status=deferred \(.*[Nn]o matching DANE TLSA records"
expect_line dane_route_may_sent rt i@d311.dane.test "dsn=2\.0\.0, status=sent"
tlsline dane_route_may_untrusted rt mx311.dane.test 127.0.9.1 untrusted
# may, no STARTTLS (mxpkix): delivered in the clear, logged tls=none.
expect_line dane_route_may_clear rt n@dpkix.dane.test "dsn=2\.0\.0, status=sent"
tlsline dane_route_may_none rt mxpkix.dane.test 127.0.9.8 none
expect_eq dane_route_may_clear_sink "$(grep -c '^MSG 127.0.9.8 CLEAR <n@dpkix.dane.test>' "$SINK")" 1

# dns_servers in every form it takes: the TLSA lookups' channel gets the
# same list (an IPv6 address in brackets without a port included).
sconf v6 smtp_tls=dane "dns_servers=127.0.0.1:$DNS_PORT, [::1], ::1, [::1]:53"
enq v6 o@d311.dane.test
prun v6
expect_line dane_servers_forms_sent v6 o@d311.dane.test "dsn=2\.0\.0, status=sent"
tlsline dane_servers_forms_verified v6 mx311.dane.test 127.0.9.1 dane-verified

# Without dns_servers no answer is trusted: `postern check` says dane acts
# as may (the workers say it too, once each).
conf smtp_tls=dane "smtp_port=$SP"
"$P" check >"$T/nodns.check" 2>&1
expect_grep dane_nodns_check_warns "warning: smtp_tls = dane without dns_servers acts as may" "$T/nodns.check"

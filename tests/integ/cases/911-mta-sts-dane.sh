# 911-mta-sts-dane: MTA-STS beside DANE (RFC 8461 §2: a DANE verdict is
# never overridden). A validating resolver (tests/integ/dane_dns.sh: nsd
# serving the signed dane.test, unbound validating it) holds two domains
# that both publish an MTA-STS record whose enforce policy their MX would
# fail:
#
#	dd.dane.test	mxd (127.0.91.21), TLSA 3 1 1 of its key; the
#			policy names another MX
#	dn.dane.test	mxn (127.0.91.22), no TLSA (secure denial); the
#			policy names mxn, whose certificate is self-signed
#
# With smtp_tls = dane: dd is DANE's (delivered, tls=dane-verified, the
# policy never fetched); dn has no DANE, so its policy applies (deferred
# 4.7.5 for the certificate, nothing sent). The HTTPS server
# (tests/integ/sts_https.py) is on 127.0.91.101:443.
. "$POSTERN_TOP/tests/integ/lib.sh"
. "$POSTERN_TOP/tests/integ/dane_dns.sh"
. "$POSTERN_TOP/tests/integ/sconf.sh"

SP=$(free_port)
WEB=127.0.91.101

make_ca ca "sts dane test CA"
make_leaf ca web mta-sts.dd.dane.test mta-sts.dn.dane.test
make_cert mxd mxd.dane.test
make_cert mxn mxn.dane.test
chmod 644 "$T/ca.crt" "$T/web.key" "$T/web.crt"
for f in ca web mxd mxn; do
	[ -s "$T/$f.crt" ] || { notok certs "no $T/$f.crt"; exit 1; }
done
spki() {
	openssl x509 -in "$T/$1.crt" -noout -pubkey |
		openssl pkey -pubin -outform DER | openssl dgst -sha256 -r |
		cut -d' ' -f1
}

mkdir -p "$T/www"
printf 'version: STSv1\nmode: enforce\nmax_age: 86400\nmx: other.dane.test\n' \
	>"$T/www/mta-sts.dd.dane.test"
printf 'version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mxn.dane.test\n' \
	>"$T/www/mta-sts.dn.dane.test"
WLOG="$T/web.log"
: >"$WLOG"
"$PY" "$POSTERN_TOP/tests/integ/sts_https.py" "$WEB" 443 "$T/web.crt" \
	"$T/web.key" "$T/www" "$WLOG" >"$T/web.out" 2>&1 &
reap $!
poll_for 10 grep -q '^READY' "$WLOG" ||
	{ notok web_start "$(head -c 400 "$T/web.out")"; exit 1; }

cat >"$T/signed.rr" <<EOF
dd IN MX 10 mxd
mxd IN A 127.0.91.21
_$SP._tcp.mxd IN TLSA 3 1 1 $(spki mxd)
_mta-sts.dd IN TXT "v=STSv1; id=1;"
mta-sts.dd IN A $WEB
dn IN MX 10 mxn
mxn IN A 127.0.91.22
_mta-sts.dn IN TXT "v=STSv1; id=1;"
mta-sts.dn IN A $WEB
EOF
: >"$T/unsigned.rr"
cat >"$T/spoilt.rr" <<EOF
@ IN TLSA 3 1 1 $(spki mxn)
EOF
dane_dns_start "$T/signed.rr" "$T/unsigned.rr" "_$SP._tcp.mxsf.dane.test" \
	"$T/spoilt.rr" || exit 1
expect_eq dns_tlsa_secure "$(dns_ad "_$SP._tcp.mxd.dane.test" TLSA)" \
	"NOERROR ad=1 answers=1"
expect_eq dns_txt "$(dns_ad _mta-sts.dn.dane.test TXT)" "NOERROR ad=1 answers=1"

SINK="$T/sink.log"
"$PY" "$POSTERN_TOP/tests/integ/dane_sink.py" "$SP" "$SINK" \
	"127.0.91.21=$T/mxd.crt:$T/mxd.key" \
	"127.0.91.22=$T/mxn.crt:$T/mxn.key" >"$T/sink.out" 2>&1 &
reap $!
poll_for 10 grep -q '^READY' "$SINK" 2>/dev/null ||
	{ notok sink_start "$(head -c 400 "$T/sink.out")"; exit 1; }

sconf dn smtp_tls=dane "tls_ca_file=$T/ca.crt" \
	"smtp_mta_sts_ca_file=$T/ca.crt"
for r in a@dd.dane.test b@dn.dane.test; do
	printf 'Subject: sts+dane\n\nhello\n' |
		"$P" -c "$T/dn.conf" enqueue -f sender@src.example "$r" >/dev/null
done
timeout 90 "$P" -c "$T/dn.conf" run >"$T/dn.out" 2>"$T/dn.log"

# DANE's hop: delivered by DANE, MTA-STS never consulted.
expect_line dane_wins_sent dn a@dd.dane.test \
	"relay=mxd\.dane\.test\[127\.0\.91\.21\]:$SP, .*status=sent"
expect_grep dane_wins_verified "mxd\.dane\.test\[127\.0\.91\.21\]:$SP: tls=dane-verified, cipher=[^,]*, tlsa=3 1 1 depth 0\$" "$T/dn.log"
expect_eq dane_wins_no_fetch "$(grep -c 'mta-sts\.dd\.' "$WLOG")" 0
expect_eq dane_wins_no_sts_line "$(grep -c 'MTA-STS policy of dd\.' "$T/dn.log")" 0

# No DANE (secure MX, no TLSA): the policy applies.
expect_grep nodane_fetched "MTA-STS policy of dn\.dane\.test: id 1, mode enforce" "$T/dn.log"
expect_line nodane_enforced dn b@dn.dane.test \
	"dsn=4\.7\.5, status=deferred \(MTA-STS policy of dn\.dane\.test \(enforce\): mxn\.dane\.test\[127\.0\.91\.22\]:$SP: certificate not verified"
expect_eq nodane_nothing_sent "$(grep -c '<b@dn.dane.test>' "$SINK")" 0

if grep -q -E 'Sanitizer|runtime error' "$T/dn.log" "$T/dn.out"; then
	notok no_sanitizer_reports "$(grep -m 3 -E 'Sanitizer|runtime error' "$T/dn.log")"
else
	ok no_sanitizer_reports
fi

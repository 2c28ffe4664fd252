#!/bin/sh
# tlsa_seeds.sh - the seeds of the tlsa fuzz target (fuzz_tlsa.c), called
# by seed.sh: real replies of a validating resolver (unbound over nsd
# with signed zones, tests/integ/dane_dns.sh) to the queries route_tlsa.c
# makes (TLSA, MX, A with AD; dns_capture.py), some with DO too (RRSIGs
# among the answers); then a few broken by hand. Writes
# tests/fuzz/corpus/tlsa/seed-*.
top=$(cd "$(dirname "$0")/../.." && pwd)
POSTERN_TOP=$top
POSTERN_BIN=${POSTERN_BIN:-$top/build/asan/bin}
. "$top/tests/integ/lib.sh"
. "$top/tests/integ/dane_dns.sh"
C=$top/tests/fuzz/corpus/tlsa
mkdir -p "$C"
rm -f "$C"/seed-*

# A CA and a server certificate (EC), as DER, their keys as SPKI DER.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/ca.key" -out "$T/ca.crt" -days 2 -subj "/CN=seed CA" \
	-addext "basicConstraints=critical,CA:true" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ee.key" \
	-out "$T/ee.crt" -days 2 -subj "/CN=mx.dane.test" 2>/dev/null
hex() { od -An -v -tx1 | tr -d ' \n'; }
der() { openssl x509 -in "$T/$1.crt" -outform DER; }
spkider() { openssl x509 -in "$T/$1.crt" -noout -pubkey |
	openssl pkey -pubin -outform DER; }
EEFULL=$(der ee | hex)
CASPKI=$(spkider ca | hex)
EE256=$(der ee | openssl dgst -sha256 -r | cut -d' ' -f1)
EE512=$(der ee | openssl dgst -sha512 -r | cut -d' ' -f1)
EESPKI=$(spkider ee | openssl dgst -sha256 -r | cut -d' ' -f1)
CA256=$(der ca | openssl dgst -sha256 -r | cut -d' ' -f1)

cat >"$T/signed.rr" <<R
d IN MX 10 mx
d IN MX 20 mx2
mx IN A 127.0.9.1
mx2 IN A 127.0.9.2
_25._tcp.mx IN TLSA 3 1 1 $EESPKI
_25._tcp.mx2 IN TLSA 3 1 1 $EESPKI
_25._tcp.mx2 IN TLSA 3 0 2 $EE512
_25._tcp.mx2 IN TLSA 2 0 1 $CA256
_25._tcp.mx2 IN TLSA 2 1 0 $CASPKI
_25._tcp.mx2 IN TLSA 1 1 1 $EESPKI
_25._tcp.mx2 IN TLSA 3 1 9 $EESPKI
_25._tcp.full IN TLSA 3 0 0 $EEFULL
_25._tcp.pkix IN TLSA 0 0 1 $EE256
_25._tcp.cname IN CNAME _25._tcp.mx
R
cat >"$T/unsigned.rr" <<R
d IN MX 10 mx
mx IN A 127.0.9.6
_25._tcp.mx IN TLSA 3 1 1 $EESPKI
R
echo "@ IN TLSA 3 1 1 $EESPKI" >"$T/spoilt.rr"
dane_dns_start "$T/signed.rr" "$T/unsigned.rr" _25._tcp.bogus.dane.test \
	"$T/spoilt.rr" || exit 1

n=0
cap() {		# SEED NAME TYPE [do]
	if "$PY" "$top/tests/fuzz/dns_capture.py" "$DNS_PORT" "$2" "$3" \
	    "$C/seed-$1" ${4:-}; then
		n=$((n + 1))
	else
		echo "tlsa_seeds.sh: no answer for $2 $3" >&2
	fi
}
cap tlsa-one _25._tcp.mx.dane.test TLSA
cap tlsa-one-do _25._tcp.mx.dane.test TLSA do
cap tlsa-mixed _25._tcp.mx2.dane.test TLSA
cap tlsa-mixed-do _25._tcp.mx2.dane.test TLSA do
cap tlsa-full _25._tcp.full.dane.test TLSA
cap tlsa-pkix _25._tcp.pkix.dane.test TLSA
cap tlsa-cname _25._tcp.cname.dane.test TLSA
cap tlsa-nodata _25._tcp.mx.dane.test A
cap tlsa-nxdomain _25._tcp.none.dane.test TLSA do
cap tlsa-insecure _25._tcp.mx.plain.test TLSA
cap tlsa-servfail _25._tcp.bogus.dane.test TLSA
cap mx-secure d.dane.test MX
cap mx-insecure d.plain.test MX
cap a-secure mx.dane.test A do
cap a-insecure mx.plain.test A
echo "tlsa_seeds.sh: $n replies captured"

# Broken by hand: cut inside a record, an answer count past the end, a
# data length past the end, a compression pointer cut in two, a label
# running off the end, and the limit of kept records met (flag byte 1).
f=$C/seed-tlsa-mixed
if [ -f "$f" ]; then
	len=$(wc -c <"$f")
	head -c $((len - 7)) "$f" >"$C/seed-broken-cut"
	{ head -c 7 "$f"; printf '\377'; tail -c +9 "$f"; } >"$C/seed-broken-ancount"
	{ printf '\001'; tail -c +2 "$f"; } >"$C/seed-broken-max1"
fi
f=$C/seed-tlsa-one
if [ -f "$f" ]; then
	len=$(wc -c <"$f")
	# The reply without its OPT record: the TLSA RDATA's length, two
	# octets before the record's last 3 + 32, made 0xffff.
	"$PY" - "$f" "$C/seed-broken-rdlen" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"\x00\x34\x00\x01", 30)	# the answer's TYPE, CLASS
if i > 0:
    b[i + 8:i + 10] = b"\xff\xff"
open(sys.argv[2], "wb").write(bytes(b))
PYEOF
fi
printf '\000\000\001\201\240\000\001\000\001\000\000\000\000\003_25\004_tcp\002mx\004dane\004test\000\000\064\000\001\300' >"$C/seed-broken-pointer"
printf '\000\000\001\201\240\000\001\000\000\000\000\000\000\077abc' >"$C/seed-broken-label"
echo "tlsa_seeds.sh: $(ls "$C" | wc -l) files in $C"

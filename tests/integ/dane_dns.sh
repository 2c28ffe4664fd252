# dane_dns.sh - a validating resolver over signed test zones, for the DANE
# cases (tests/integ/cases/900-dane.sh). Sourced after lib.sh.
#
#	dane_dns_start SIGNED UNSIGNED BZONE SPOILT
#
# SIGNED, UNSIGNED and SPOILT are files of records (zone file syntax,
# names relative to the origin) for the zones dane.test, plain.test and
# BZONE (a name below dane.test, e.g. _25._tcp.mxsf.dane.test: a zone of
# its own, no delegation needed). dane.test and BZONE are signed, each
# with a fresh key (ldns-keygen, ldns-signzone); then every TLSA record of
# BZONE has its data changed, so that its signature no longer matches and
# a validating resolver answers SERVFAIL for it. (A zone of its own:
# unbound, failing to validate, fetches the zone's keys again and holds
# them bogus for a while, which would take the rest of the zone, the MX
# host's address too, down with it.) nsd serves the three zones on
# 127.0.0.1:$NSD_PORT; unbound on 127.0.0.1:$DNS_PORT validates with the
# keys' DS records as trust anchors, and knows no anchor for plain.test
# (insecure). Both are reaped at exit. Files are in $T/dns; logs in
# $T/dns/nsd.log and $T/dns/unbound.log. Returns 1 (with "not ok" lines)
# when a server does not come up.
#
#	dns_ad NAME TYPE	"NOERROR ad=1 answers=1" (tests/integ/dns_ad.py)

dane_dns_zone() {	# ORIGIN BODY OUT
	{
		echo "\$ORIGIN $1."
		echo "\$TTL 300"
		echo "@ IN SOA ns.$1. hostmaster.$1. 1 3600 600 86400 300"
		echo "@ IN NS ns.$1."
		echo "ns IN A 127.0.0.1"
		cat "$2"
	} >"$3"
}

# dane_dns_sign ZONE - sign $T/dns/ZONE.zone into ZONE.zone.signed; the
# DS file's name (the trust anchor) into $T/dns/ZONE.ds.name.
dane_dns_sign() {
	_dk=$(cd "$T/dns" && ldns-keygen -a ECDSAP256SHA256 -k "$1") || {
		notok dane_dns_keygen "ldns-keygen $1 failed"
		return 1
	}
	echo "$_dk.ds" >"$T/dns/$1.ds.name"
	(cd "$T/dns" && ldns-signzone -n "$1.zone" "$_dk") >"$T/dns/sign.out" 2>&1 || {
		notok dane_dns_sign "$1: $(head -c 300 "$T/dns/sign.out")"
		return 1
	}
}

dane_dns_start() {
	_dz="$T/dns"
	mkdir -p "$_dz"
	dane_dns_zone dane.test "$1" "$_dz/dane.test.zone"
	dane_dns_zone plain.test "$2" "$_dz/plain.test.zone"
	BZONE=$3
	dane_dns_zone "$BZONE" "$4" "$_dz/$BZONE.zone"
	dane_dns_sign dane.test || return 1
	dane_dns_sign "$BZONE" || return 1
	# Each TLSA record's data changes (a digit before its first octet);
	# its RRSIG stays: the signature is bogus now.
	sed -i "s/^\([^;]*[[:space:]]TLSA[[:space:]]*[0-9] [0-9] [0-9] \)\(.\)/\1f\2/" \
		"$_dz/$BZONE.zone.signed"
	grep -q "TLSA[[:space:]]*[0-9] [0-9] [0-9] f" "$_dz/$BZONE.zone.signed" ||
		notok dane_dns_bogus "no TLSA record in $BZONE to spoil"
	NSD_PORT=$(free_port)
	DNS_PORT=$(free_port)
	cat >"$_dz/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1@$NSD_PORT
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "$_dz"
	pidfile: "$_dz/nsd.pid"
	xfrdfile: "$_dz/xfrd.state"
	zonelistfile: "$_dz/zone.list"
	database: ""
	logfile: "$_dz/nsd.log"
	server-count: 1
	tcp-count: 16
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: dane.test
	zonefile: dane.test.zone.signed
zone:
	name: plain.test
	zonefile: plain.test.zone
zone:
	name: $BZONE
	zonefile: $BZONE.zone.signed
EOF
	cat >"$_dz/unbound.conf" <<EOF
server:
	interface: 127.0.0.1@$DNS_PORT
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$_dz"
	pidfile: ""
	use-syslog: no
	logfile: "$_dz/unbound.log"
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	do-not-query-localhost: no
	qname-minimisation: no
	# "test." is a special-use name unbound answers itself by default.
	local-zone: "test." nodefault
	trust-anchor-file: "$_dz/$(cat "$_dz/dane.test.ds.name")"
	trust-anchor-file: "$_dz/$(cat "$_dz/$BZONE.ds.name")"
remote-control:
	control-enable: no
stub-zone:
	name: "dane.test"
	stub-addr: 127.0.0.1@$NSD_PORT
stub-zone:
	name: "plain.test"
	stub-addr: 127.0.0.1@$NSD_PORT
stub-zone:
	name: "$BZONE"
	stub-addr: 127.0.0.1@$NSD_PORT
EOF
	nsd -d -c "$_dz/nsd.conf" >"$_dz/nsd.out" 2>&1 &
	reap $!
	unbound -d -c "$_dz/unbound.conf" >"$_dz/unbound.out" 2>&1 &
	reap $!
	if ! wait_dns "$NSD_PORT"; then
		notok dane_dns_nsd "$(head -c 400 "$_dz/nsd.log" "$_dz/nsd.out")"
		return 1
	fi
	if ! wait_dns "$DNS_PORT"; then
		notok dane_dns_unbound "$(head -c 400 "$_dz/unbound.log" "$_dz/unbound.out")"
		return 1
	fi
}

dns_ad() {
	"$PY" "$POSTERN_TOP/tests/integ/dns_ad.py" "$DNS_PORT" "$1" "$2"
}

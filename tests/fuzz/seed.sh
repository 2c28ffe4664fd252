#!/bin/sh
# seed.sh - make the seed corpora of tests/fuzz/corpus/ again from real
# peers and real files (README "Fuzzing"). Run from anywhere; needs the
# test packages (make test-deps) and the ASan build (make asan: postern
# passwd, enqueue, flush).
#
#	smtpd_session	swaks (PLAIN, LOGIN, CRAM-MD5, pipelining, dots,
#			8-bit data, STARTTLS, HELO), Postfix's smtp-source,
#			fetchmail (ETRN, ODMR), each against capture.py's
#			scripted server that keeps every client write as one
#			segment; a few hand-written streams for what they do
#			not send (DSN parameters, SMTPUTF8, BDAT, TURN).
#	reply		Postfix's smtp-sink (several of its options)
#			answering capture.py's client.
#	smtpd_param, etrn_args, addr, sasl, dsn, header_scan
#			the MAIL/RCPT lines, ETRN arguments, addresses, AUTH
#			lines and messages of those transcripts, and the
#			test data (tests/data/*.ref DSNs).
#	conf, routes, users, policy, known
#			the sample configuration, files as the tests write
#			them, postern passwd's output.
#	queue_rec	records the queue code wrote (postern enqueue, flush)
#			read back with mdb_dump (queue_seeds.py).
#	tlsa		a validating resolver's replies to DANE's queries
#			(TLSA, MX, A with AD; unbound over nsd, signed
#			zones) and a few broken ones (tlsa_seeds.sh).
#
# Seeds are named "seed-*" and replaced; other corpus files (inputs that
# found a defect, what make fuzz-merge added) are left alone.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
. tests/common.sh
C=tests/fuzz/corpus
P=build/asan/bin/postern
PY=$(python3 -c 'import sys; print(sys.executable)')
T=$(mktemp -d /tmp/postern-seed.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

[ -x "$P" ] || { echo "seed.sh: $P missing (make asan)" >&2; exit 1; }
for t in smtpd_session smtpd_param etrn_args addr reply conf routes \
    users policy known queue_rec header_scan dsn sasl; do
	mkdir -p "$C/$t"
	rm -f "$C/$t"/seed-*
done

# cap NAME FLAGS MODE CMD... - the client CMD (its "$PORT" is the
# capture server's port) against capture.py; its session(s) become
# smtpd_session seeds seed-NAME[.N].
cap() {
	name=$1 flags=$2 mode=$3
	shift 3
	PORT=$(free_port)
	"$PY" tests/fuzz/capture.py server "$PORT" "$T/seed-$name" \
	    "$flags" "$mode" >"$T/ready" 2>&1 &
	cpid=$!
	PIDS="$PIDS $cpid"
	wait_listen "$PORT" || { echo "seed.sh: capture did not start"; return 1; }
	PORT=$PORT "$@" >"$T/client.log" 2>&1
	wait "$cpid"
	n=0
	for f in "$T/seed-$name" "$T/seed-$name".*; do
		[ -f "$f" ] && mv "$f" "$C/smtpd_session/" && n=$((n + 1))
	done
	echo "seed.sh: smtpd_session/seed-$name: $n session(s)"
}

# A message with dot-stuffing, 8-bit text and Received: fields.
printf 'Received: from a\r\nReceived: from b\r\nSubject: seed \351\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast\r\n' >"$T/data"
sw() { swaks --server "127.0.0.1:$PORT" --to a@relay.example \
    --from s@client.example --helo client.example --timeout 10 "$@"; }

cap swaks-plain 0000 smtp sw
cap swaks-pipeline 0000 smtp sw --pipeline --to a@relay.example,b@hold.example,c@other.example
cap swaks-data 0000 smtp sw --pipeline --data "$T/data"
cap swaks-auth-plain 4000 smtp sw --auth PLAIN --auth-user fast --auth-password secret
cap swaks-auth-login 4000 smtp sw --auth LOGIN --auth-user fast --auth-password secret --pipeline
cap swaks-auth-cram 0000 smtp sw --auth CRAM-MD5 --auth-user site --auth-password secret
cap swaks-starttls 0000 smtp sw -tls
cap swaks-helo 0000 smtp sw --protocol SMTP
cap swaks-8bit 0004 smtp sw --pipeline --body "8-bit body \344\366\374" --header "Subject: \344"
# (its address last: $PORT is the capture server's, known only in cap)
src() { /usr/sbin/smtp-source "$@" "127.0.0.1:$PORT"; }
cap smtp-source 0000 smtp src -m 2 -r 2 -l 200 -f s@client.example -t a@relay.example
cap smtp-source-d 0000 smtp src -d -m 3 -s 1 -l 2000 -f s@client.example -t a@relay.example
cap smtp-source-old 0000 smtp src -o -m 1 -l 100

# fetchmail: ETRN, and ODMR (AUTH CRAM-MD5, then ATRN) on the ODMR port.
export HOME="$T"
fm() {
	printf 'poll 127.0.0.1 port %s protocol %s user site password secret fetchdomains %s\n' \
	    "$PORT" "$1" "$2" >"$T/fetchmailrc"
	chmod 600 "$T/fetchmailrc"
	fetchmail -f "$T/fetchmailrc" --nosyslog -v -t 10 \
	    -i "$T/fetchids" --pidfile "$T/fetchmail.pid" 2>&1
}
cap fetchmail-etrn 0000 smtp fm ETRN relay.example,site.example
cap fetchmail-odmr 0100 odmr fm ODMR site.example,caller.example

# What the tools above never send: DSN and SMTPUTF8 parameters, BDAT
# (chunks, BINARYMIME, refused and discarded ones),
# VRFY/EXPN/HELP, TURN after AUTH, ETRN's forms, a local session.
S='\0\377'
printf "\000\000EHLO c.example\r\n${S}MAIL FROM:<s@c.example> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>\r\nRCPT TO:<a@relay.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2B@relay.example\r\nRCPT TO:<b@relay.example> NOTIFY=NEVER\r\nDATA\r\n${S}Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n" >"$C/smtpd_session/seed-dsn"
printf "\000\000EHLO c.example\r\n${S}MAIL FROM:<\303\251@c.example> SMTPUTF8\r\nRCPT TO:<\303\274@relay.example>\r\nDATA\r\n${S}Subject: \303\251\r\n\r\nx\r\n.\r\n${S}BDAT 10 LAST\r\n${S}VRFY a\r\n${S}EXPN a\r\n${S}HELP\r\n${S}RSET\r\n${S}NOOP\r\n${S}QUIT\r\n" >"$C/smtpd_session/seed-utf8-misc"
printf "\100\000EHLO c.example\r\n${S}AUTH PLAIN AGZhc3QAc2VjcmV0\r\n${S}TURN\r\n${S}ETRN @kids.example\r\n${S}ETRN #pair\r\n${S}ETRN site.example.\r\n${S}QUIT\r\n" >"$C/smtpd_session/seed-turn-etrn"
printf "\000\000EHLO c.example\r\n${S}MAIL FROM:<s@c.example> BODY=BINARYMIME\r\nRCPT TO:<a@relay.example>\r\nBDAT 5\r\nab\ncdBDAT 3 LAST\r\nx\r\n${S}MAIL FROM:<s@c.example>\r\nRCPT TO:<a@relay.example>\r\nBDAT 4\r\nReceBDAT 9\r\nived: x\r\nBDAT 0 LAST\r\n${S}BDAT 12\r\nMAIL FROM:<>DATA\r\n${S}MAIL FROM:<s@c.example>\r\nRCPT TO:<a@relay.example>\r\nBDAT 3\r\na\rbBDAT 2 LAST\r\nxyRSET\r\n${S}BDAT 1x\r\nQUIT\r\n" >"$C/smtpd_session/seed-bdat"
printf "\000\002EHLO localhost\r\n${S}MAIL FROM:<root@localhost>\r\nRCPT TO:<a@other.example>\r\nDATA\r\n${S}Subject: local\r\n\r\nx\r\n.\r\n${S}QUIT\r\n" >"$C/smtpd_session/seed-local"
printf "\101\000EHLO site.example\r\n${S}AUTH PLAIN AHNpdGUAc2VjcmV0\r\n${S}ATRN site.example,caller.example\r\n${S}ATRN\r\n${S}MAIL FROM:<a@b>\r\n${S}QUIT\r\n" >"$C/smtpd_session/seed-odmr-plain"

# reply: Postfix's smtp-sink, as it is and with its options.
sink() {
	name=$1
	shift
	PORT=$(free_port)
	/usr/sbin/smtp-sink -u postfix "$@" "127.0.0.1:$PORT" 10 \
	    >/dev/null 2>&1 &
	spid=$!
	PIDS="$PIDS $spid"
	wait_listen "$PORT" || { echo "seed.sh: smtp-sink did not start"; return 1; }
	"$PY" tests/fuzz/capture.py client "$PORT" "$C/reply/seed-$name" \
	    ${AUTH:-}
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	mv "$C/reply/seed-$name.reader" "$C/reply/seed-$name-reader"
	echo "seed.sh: reply/seed-$name"
}
sink smtp-sink
sink smtp-sink-nopipe -p -E
sink smtp-sink-rcpt-5xx -f rcpt
sink smtp-sink-data-4xx -q data
sink smtp-sink-noesmtp -e
sink smtp-sink-nodsn -N -8
AUTH=auth sink smtp-sink-auth
# What a server may also send: a 421 anywhere, a long line, a reply
# without an end, a CRAM-MD5 and a SCRAM-SHA-256 challenge.
printf '\001220-mx.example ESMTP\r\n220 more\r\n250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-DSN\r\n250 AUTH SCRAM-SHA-256 CRAM-MD5 PLAIN\r\n421 4.3.2 shutting down\r\n' >"$C/reply/seed-421"
printf '\003220 mx\r\n250-mx\r\n250 AUTH SCRAM-SHA-256\r\n334 %s\r\n334 dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n235 2.7.0 ok\r\n250 ok\r\n' \
    "$(printf 'r=rOprNGfwEbeRWgbNEkqO%%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096' | base64 -w0)" >"$C/reply/seed-scram"
{ printf '\000250-'; head -c 3000 /dev/zero | tr '\0' x; printf '\r\n250 5.1.1 end\r\n'; } >"$C/reply/seed-long"

# smtpd_param, addr, etrn_args, sasl: from the transcripts and the tests.
n=0
for f in "$C"/smtpd_session/seed-*; do
	tr '\377\000' '\n\n' <"$f" | tr -d '\r' | grep -aE '^(MAIL FROM|RCPT TO):' |
	while IFS= read -r l; do
		n=$((n + 1))
		path=${l#*:}
		params=${path#*>}
		case $l in
		MAIL*) printf '\003%s' "$params" ;;
		*) printf '\002%s' "$params" ;;
		esac >"$C/smtpd_param/seed-$(echo "$l" | cksum | cut -d' ' -f1)"
		printf '\001%s' "${path%%>*}>" \
		    >"$C/addr/seed-$(echo "$path" | cksum | cut -d' ' -f1)"
	done
done
for a in '<postmaster>' '<>' '<@a.example,@b.example:u@c.example>' \
    '<"quoted local"@[192.0.2.1]>' '<u@[IPv6:2001:db8::1]>' \
    'bare@example.org' '<u@xn--bcher-kva.example>'; do
	printf '\016%s' "$a" >"$C/addr/seed-$(echo "$a" | cksum | cut -d' ' -f1)"
done
i=0
for e in 'relay.example\n--\n@kids.example\n--\n#pair' \
    'site.example,caller.example\n--\nsite.example.' \
    'caller.example\n--\n@example\n--\n#nope'; do
	i=$((i + 1))
	printf "\\00$i$e" >"$C/etrn_args/seed-$i"
done
printf '\000\000fast\000secret' >"$C/sasl/seed-plain"
printf '\001fast\n--\nsecret' >"$C/sasl/seed-login"
printf '\012\n--\nsite 0123456789abcdef0123456789abcdef' >"$C/sasl/seed-cram"
printf '\003n,,n=site,r=rOprNGfwEbeRWgbNEkqO\n--\nc=biws,r=rOprNGfwEbeRWgbNEkqOfuzzfuzzfuzznonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=' >"$C/sasl/seed-scram"
printf '\004r=rOprNGfwEbeRWgbNEkqO%%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\n--\nv=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=' >"$C/sasl/seed-scram-client"

# header_scan and dsn: the DSNs of tests/data and the message above.
for f in tests/data/*.ref; do
	b=$(basename "$f" .ref)
	{ printf '\000'; sed 's/$/\r/' "$f"; } >"$C/header_scan/seed-$b"
	{ printf '\005\016550 5.1.1 <a@relay.example>: user unknown\n--\n421 4.4.2 timeout\n--\ns@client.example\n--\na@relay.example\n--\nrfc822;a+2B@relay.example\n--\nENV+2B1\n--\nmx.relay.example\n--\nclient.example[192.0.2.1]\n--\n'
	    sed 's/$/\r/' "$f"; } >"$C/dsn/seed-$b"
done
{ printf '\001'; cat "$T/data"; } >"$C/header_scan/seed-data"
{ printf '\024\007250 2.0.0 ok\n--\n452 4.2.2 full\n--\n\n--\n\303\274@relay.example\n--\nutf-8;\303\274@relay.example\n--\n\n--\n\n--\nc\n--\n'
    cat "$T/data"; } >"$C/dsn/seed-utf8-full"

# conf, routes, users, policy, known.
sed -e 's|@SBINDIR@|/usr/sbin|g' -e 's|@CONFFILE@|/etc/postern.conf|g' \
    -e 's|@QUEUEDIR@|/var/spool/postern|g' tools/postern.conf.sample.in \
    >"$C/conf/seed-sample"
printf 'myhostname = mx.example.org\nmy_names = example.org\nrelay_domains = a.example .b.example\nhold_domains = site.example\nmynetworks = 127.0.0.0/8 ::1/128 10.0.0.0/8\nlisten = 127.0.0.1:25 [::1]:25\nodmr_listen = 0.0.0.0:366\nmessage_size_limit = 10m\ncommand_timeout = 5m\netrn_queues = q:a.example:@b.example\nsmtp_tls = encrypt\nbounce_return = full\nlog = syslog\nauth_failure_delay = 0\n' >"$C/conf/seed-keys"
"$P" check --keys 2>/dev/null | head -c 20000 >"$C/conf/seed-check-keys" || true
printf '# routes\nrelay.example      [smart.example.net]:2525\nbracket.example    [Smart.Example.NET]\nmxhost.example     mx.example.net:587   tls=encrypt # a comment\nMixed.Case.Example.  [192.0.2.1]\nv6.example         [IPv6:2001:db8::1]:26\nbareip.example     192.0.2.5:2527\ndirect.example     mx tls=none\nsite.example       hold\ncaller.example     CALLER:2526 tls=may\n.parent.example    [relay.example]\n' >"$C/routes/seed-tests"
printf 'secret\n' | "$P" passwd site site.example .kids.example >"$C/users/seed-passwd" 2>/dev/null
printf 'secret\n' | "$P" passwd tim >>"$C/users/seed-passwd" 2>/dev/null
printf 'tim:{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b:example.org\nbob:$6$abcdefgh12345678$va.5Cu4V3VVDTTqGxBFLJLe96seoR7t27vdfZXImlG605uxgrHTyzCgabN4Vc/Y7Qs3Z1NzMmGGkjXsRvwVIt1:\n' >"$C/users/seed-tests"
printf '# rules\nsite.example   192.0.2.0/24 user=site1\nboth.example   192.0.2.0/24+user=site1   # both\n.parent.example any\nown.example    owner\nv6.example     2001:db8::/32\n' >"$C/policy/seed-tests"
printf 'known@relay.example\n@open.example\nPostMaster@Relay.Example\n# comment\n' >"$C/known/seed-tests"

# queue_rec: what the queue code writes.
printf 'queue_dir = %s/q\nhold_domains = site.example\nmyhostname = mx.test\n' "$T" >"$T/q.conf"
ids=""
for r in "a@site.example b@other.example" "c@relay.example"; do
	# shellcheck disable=SC2086
	id=$(printf 'Subject: q\r\n\r\nbody\r\n' |
	    "$P" -c "$T/q.conf" enqueue -f s@a.example $r 2>/dev/null)
	ids="$ids $id"
done
"$P" -c "$T/q.conf" flush --domain site.example >/dev/null 2>&1
"$P" -c "$T/q.conf" hold --domain relay.example >/dev/null 2>&1
# shellcheck disable=SC2086
"$PY" tests/fuzz/queue_seeds.py "$T/q" "$C/queue_rec" $ids
for f in "$C/queue_rec"/queue-*; do
	[ -f "$f" ] && mv "$f" "$C/queue_rec/seed-${f##*/queue-}"
done

# tlsa: its own script (its DNS servers are reaped when it ends).
sh tests/fuzz/tlsa_seeds.sh

for t in "$C"/*; do
	echo "seed.sh: ${t##*/}: $(ls "$t" | wc -l) files"
done

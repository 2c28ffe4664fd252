#!/bin/sh
# selftest.sh - report.py's checks can fail: it is fed made-up results
# (a clean run, then one defect at a time) and must pass the clean one
# and fail each defect for the right reason. run.sh runs this first (a
# second); `sh tests/soak/selftest.sh` alone prints "ok"/"not ok" lines.
set -u
S=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
D=$(mktemp -d /tmp/postern-soak-self.XXXXXX)
trap 'rm -rf "$D"' EXIT
fails=0

# base - a clean run in $D/r: 4 ok.soak, 2 reject.soak (one refused, its
# DSN at the sink), 1 defer.soak still deferred; flat samples for 20 min.
base() {
	rm -rf "$D/r"
	mkdir -p "$D/r/dumps"
	cd "$D/r" || exit 1
	printf 'SENT 1.0 ok.soak 4 4 0\nSENT 1.0 reject.soak 2 2 0\n' >sent.log
	printf 'SENT 1.0 defer.soak 1 1 0\n' >>sent.log
	for n in 1 2 3 4; do
		printf 'X-Client-Addr: 127.0.0.1\nX-Rcpt-Args: <%sk1.0x@ok.soak>\n\nbody\n' "$n"
	done >dumps/ok
	printf 'ACCEPT 1k1.0x@reject.soak\nREJECT 2k1.0x@reject.soak\n' >reject.log
	printf 'DEFER 1k1.0x@defer.soak 0\n' >defer.log
	dsn 2k1.0x@reject.soak >dumps/dsn
	printf '{"id":"A","sender":"sender@src.soak","recipients":[{"address":"1k1.0x@defer.soak","state":"deferred"}]}\n' >final.json
	echo 'postern/runner[1]: X: to=<2k1.0x@reject.soak>, relay=r, delay=1, delays=0/0/0/0, attempts=1, dsn=5.1.1, status=bounced (550)' >posternd.log
	samples 0 >samples.csv
}
# dsn ADDR - a failure DSN for ADDR as the DSN sink dumps it.
dsn() {
	printf 'X-Client-Addr: 127.0.0.1\nX-Mail-Args: <>\nX-Rcpt-Args: <sender@src.soak>\n\n'
	printf 'Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: 5.1.1\n\n' "$1"
}
# samples KIB_PER_MIN [FILE_KIB_PER_MIN] - 20 min of 10 s samples of
# smtpd (heap 12 MiB plus the growth, +-64 KiB of noise; file pages 8 MiB
# plus theirs; fds 20, up to 12 more with the sessions open) and two
# workers (come and go).
samples() {
	awk -v g="$1" -v fg="${2:-0}" 'BEGIN {
		print "t,pid,ppid,role,rss_kib,anon_kib,fds"
		for (t = 0; t <= 1200; t += 10) {
			n = (t / 10) % 3 - 1
			a = 12288 + g * t / 60 + 64 * n
			r = a + 8192 + fg * t / 60
			f = 20 + 8 * ((t / 10) % 5 == 0) + 4 * ((t / 10) % 3 == 0)
			printf "%d,10,1,smtpd,%d,%d,%d\n", t, r, a, f
			printf "%d,%d,2,worker,9000,3000,12\n", t, 100 + int(t / 300)
		}
	}'
}
# expect NAME WANT [PATTERN] - report.py on $D/r exits WANT (and says
# PATTERN).
expect() {
	"$PY" "$S/report.py" "$D/r" 300 >"$D/out" 2>&1
	rc=$?
	if [ "$rc" -ne "$2" ]; then
		echo "not ok soak_self_$1: exit $rc, want $2"
		sed 's/^/    | /' "$D/out"
		fails=$((fails + 1))
	elif [ $# -ge 3 ] && ! grep -q -- "$3" "$D/out"; then
		echo "not ok soak_self_$1: no '$3'"
		sed 's/^/    | /' "$D/out"
		fails=$((fails + 1))
	else
		echo "ok soak_self_$1"
	fi
}

base
expect clean 0 'soak: PASS'
base
sed -i '/3k1.0x/d' dumps/ok
expect lost 1 'VIOLATION lost: 1'
base
dsn 2k1.0x@reject.soak >>dumps/dsn
expect dsn_twice 1 'VIOLATION DSN more than once: 1'
base
: >dumps/dsn
expect failed_without_dsn 1 'VIOLATION failed in the log without a DSN: 1'
base
dsn 1k1.0x@reject.soak >>dumps/dsn
expect dsn_and_delivered 1 'VIOLATION delivered and a DSN: 1'
base
mkdir live-dsn
dsn 2k1.0x@reject.soak >live-dsn/B
: >dumps/dsn
expect dsn_queued_counts 0 'soak: PASS'
base
samples 40 >samples.csv
expect heap_growth 1 'smtpd: GROWS: heap grows'
base
awk -F, -v OFS=, 'NR > 1 && $4 == "smtpd" { $7 += int($1 / 120) } 1' \
	samples.csv >s.tmp && mv s.tmp samples.csv
expect fd_growth 1 'smtpd: GROWS: fds grow'
base
samples 20 >samples.csv		# 200 KiB/10 min: under 256
expect heap_small_growth_ok 0 'soak: PASS'
base
samples 0 100 >samples.csv	# file pages only: no leak, said so
expect file_pages_ok 0 'smtpd .* ok (file pages +10[0-9][0-9] KiB/10min)'
base				# one step up at 400 s, flat after: a high-water mark
awk -F, -v OFS=, 'NR > 1 && $4 == "smtpd" && $1 >= 400 { $5 += 800; $6 += 800 } 1' \
	samples.csv >s.tmp && mv s.tmp samples.csv
expect heap_step_ok 0 'smtpd .* ok (heap rose +[89][0-9][0-9] KiB until minute'
base				# the same step late in the window: still a leak
awk -F, -v OFS=, 'NR > 1 && $4 == "smtpd" && $1 >= 1000 { $5 += 800; $6 += 800 } 1' \
	samples.csv >s.tmp && mv s.tmp samples.csv
expect heap_late_step 1 'smtpd: GROWS: heap grows'
base				# a step, then growth goes on: a leak
samples 40 >samples.csv
awk -F, -v OFS=, 'NR > 1 && $4 == "smtpd" && $1 >= 400 { $5 += 800; $6 += 800 } 1' \
	samples.csv >s.tmp && mv s.tmp samples.csv
expect heap_step_then_growth 1 'smtpd: GROWS: heap grows'
cd /
[ $fails -eq 0 ]

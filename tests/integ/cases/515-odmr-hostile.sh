# 515-odmr-hostile: ATRN against sites that misbehave, and a busy queue.
#  1. A site that stops reading in the middle of a large message: once
#     the session process gives up (small smtp_data_timeout) and exits,
#     the listener does not spin on the socketpair's hang-up (its CPU
#     time over 2 s stays small), and the domain is not left locked: a
#     second ATRN gets 250 and the message, intact; the stalled site's
#     connection is closed 10 s after the session process left.
. "$POSTERN_TOP/tests/integ/lib.sh"

SITE="$POSTERN_TOP/tests/integ/odmr_site.py"
{
	printf 'pw1\n' | "$P" passwd site1 site1.example
	printf 'pw2\n' | "$P" passwd site2 site2.example
	printf 'pw3\n' | "$P" passwd site3 site3.example
} >"$T/users"
chown postern "$T/users" 2>/dev/null
chmod 600 "$T/users"
OP=$(free_port)
start_posternd "users_file=$T/users" \
	"hold_domains=site1.example,site2.example,site3.example" \
	"odmr_listen=127.0.0.1:$OP" smtp_data_timeout=2s smtp_dot_timeout=2s \
	smtp_command_timeout=2s lease_time=60s || exit 1
until_ok 100 listening "$OP" || notok odmr_listening "nothing on $OP"
val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
live() {
	qjson "sum(1 for m in msgs for r in m['recipients'] if r['address'].endswith('@$1') and r['state'] == '$2')"
}
site() { "$PY" "$SITE" "$OP" "$@"; }
# cpu PID - utime + stime in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# ------------------------------------------------------------------
# 1. A site that stops reading after its 354.
"$PY" -c '
import sys
sys.stdout.write("Subject: stop\n\n")
line = "s" * 98 + "\n"
for i in range(8 * 1024 * 1024 // 99):
    sys.stdout.write(line)' >"$T/big"
big=$("$P" enqueue -f a@b.example h@site1.example <"$T/big")
"$P" show --raw "$big" >"$T/big.raw"
lpid=$(smtpd_pid)
site site1 pw1 "$T/o1" --data-file "$T/go1" --rcvbuf 4096 >"$T/p1" 2>&1 &
c1=$!
reap $c1
until_ok 300 grep -q '^in_data' "$T/p1"
until_ok 300 grep -q 'user=site1, domains=site1.example: session over' \
	"$T/posternd.log"
expect_grep stopped_site_session_gave_up \
	'user=site1, domains=site1.example: session over.*connection lost' \
	"$T/posternd.log"
t0=$(cpu "$lpid")
sleep 2
t1=$(cpu "$lpid")
echo "# stopped site: listener CPU $((t1 - t0)) ticks in 2 s"
expect_eq stopped_site_listener_idle \
	"${t0:+measured} $(( t1 - t0 < 40 ))" "measured 1"
# The session is over: the domain is free for the next ATRN.
site site1 pw1 "$T/o1b" >"$T/p1b" 2>&1
expect_eq stopped_site_domain_unlocked "$(val verb "$T/p1b" | cut -c 1-3)" 250
expect_eq stopped_site_next_gets_it "$(val got "$T/p1b")" 1
expect_eq stopped_site_intact \
	"$(cmp -s "$T/big.raw" "$T/o1b/001.eml" && echo same)" same
# The stalled site's connection is closed SMTPD_CLOSE_MS (10 s) after
# the session process left, not at the idle deadline (2 minutes on).
until_ok 200 grep -q 'user=site1: reversed session over, but the site does not read' \
	"$T/posternd.log"
expect_grep stopped_site_closed_soon \
	'user=site1: reversed session over, but the site does not read' \
	"$T/posternd.log"
touch "$T/go1"
wait $c1
stop_posternd

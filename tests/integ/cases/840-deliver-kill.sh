# 840-deliver-kill: delivery workers SIGKILLed in mid-run cost at most the
# transaction in flight on their connection (README, Delivery: "at least
# once"). 400 messages, each with its own Message-ID, go over SMTP into
# posternd (workers=2), which delivers them to tests/integ/record_sink.py;
# the sink records every message it accepts, with the connection it came
# on, before its 250. At five points spread over the run (the sink has
# recorded 40, 100, 160, 220, 280 messages) a worker that holds a
# connection to the sink is SIGKILLed by its PID (a child of the
# scheduler); the scheduler hands its claims back and starts another.
# Then everything must finish: every message recorded at least once, the
# queue empty. A delivery that is not its message's last was never
# recorded in the queue (else it would not have been sent again): it is
# charged to the kill of the connection it came on, and each kill may
# cost at most one (one connection a worker). Each kill's line from the
# scheduler (recipients handed back, results recorded from the dead
# worker's journal) is printed. Before the journal (runner_int.h, struct
# wjournal) a killed worker's whole batch so far (up to 100 recipients)
# went out again: 5 kills cost 235 duplicates.
. "$POSTERN_TOP/tests/integ/lib.sh"

N=400
KILLS=5
WORKERS=2
SINK="$POSTERN_TOP/tests/integ/record_sink.py"

SP=$(free_port)
"$PY" "$SINK" "$SP" "$T/sink.log" --dot-delay 0.01 >"$T/sink.out" 2>&1 &
SINK_PID=$!
reap "$SINK_PID"
wait_listen "$SP" || notok sink_start "record_sink did not start: $(head -c 300 "$T/sink.out")"

printf 'kill.example [127.0.0.1]:%s\n' "$SP" >"$T/routes"
chmod 644 "$T/routes"
start_posternd "routes_file=$T/routes" "workers=$WORKERS" \
	"dest_concurrency=$WORKERS" "min_backoff=1s" "max_backoff=2s" \
	"connection_reuse_time=30s" || exit 0
SCHED=$(sed -n "s/^postern\/master\[$PD_PID\]: started sched, pid \([0-9]*\)$/\1/p" \
	"$T/posternd.log" | tail -n 1)
expect_eq sched_known "$([ -n "$SCHED" ] && echo yes)" yes

# The messages, over one SMTP session to posternd's listener.
cat >"$T/inject.py" <<'EOF'
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.test.example")
for i in range(1, n + 1):
    msg = ("From: <sender@client.test.example>\r\n"
           "To: <k%d@kill.example>\r\n"
           "Subject: kill %d\r\n"
           "Message-ID: <kill-%d@client.test.example>\r\n\r\n"
           "message %d\r\n" % (i, i, i, i)) + ("x" * 70 + "\r\n") * 30
    s.sendmail("sender@client.test.example", ["k%d@kill.example" % i], msg)
s.quit()
print("sent", n)
EOF
"$PY" "$T/inject.py" "$SMTP_PORT" "$N" >"$T/inject.out" 2>&1 &
INJ=$!
reap "$INJ"

# recorded - messages the sink has accepted so far (with repeats).
recorded() {
	_rn=$(grep -c '^MSG ' "$T/sink.log" 2>/dev/null)
	echo "${_rn:-0}"
}
at_least() { [ "$(recorded)" -ge "$1" ]; }
# victim - "PID PORT" of a worker (a child of the scheduler) with an
# open connection to the sink; the one killed least so far first.
victim() {
	ss -Htnp state established "( dport = :$SP )" 2>/dev/null |
	    sed -n 's/.*:\([0-9]*\) *127\.0\.0\.1:[0-9]* .*pid=\([0-9]*\),.*/\2 \1/p' |
	    while read -r pid port; do
		pgrep -P "$SCHED" | grep -qx "$pid" || continue
		echo "$(grep -c "^$pid " "$T/kills" 2>/dev/null) $pid $port"
	    done | sort -n | head -n 1 | cut -d' ' -f2-
}
has_victim() { V=$(victim); [ -n "$V" ]; }
died() { grep -q "postern/sched\[$SCHED\]: worker $1 died (status 9)" "$T/posternd.log"; }

: >"$T/kills"
i=0
for at in 40 100 160 220 280; do
	i=$((i + 1))
	if ! until_ok 600 at_least "$at"; then
		notok "kill_$i" "the sink has only $(recorded) messages, want $at"
		break
	fi
	if ! until_ok 100 has_victim; then
		notok "kill_$i" "no worker with a connection to the sink"
		break
	fi
	set -- $V
	line=$(wc -l <"$T/sink.log")
	kill -KILL "$1"
	echo "$1 $2 $line" >>"$T/kills"
	if until_ok 100 died "$1"; then ok "kill_${i}_seen"; else
		notok "kill_${i}_seen" "no 'worker $1 died (status 9)' in the log"; fi
	echo "# kill $i: worker $1 (port $2) at $(recorded) messages recorded"
done
expect_eq kills_done "$(wc -l <"$T/kills" | tr -d ' ')" "$KILLS"
# Each kill came in mid-batch: the worker held claims (handed back, or
# recorded from its journal).
midbatch() {
	grep "postern/sched\[$SCHED\]: worker [0-9]* died (status 9): " "$T/posternd.log" |
	    sed -n 's/.*: \([0-9]*\) recipients handed back\(, \([0-9]*\) results recorded\)\{0,1\}.*/\1 \3/p' |
	    awk '$1 + $2 > 0' | wc -l | tr -d ' '
}
expect_eq kills_mid_batch "$(midbatch)" "$KILLS"

# Then everything finishes.
wait "$INJ"
expect_eq injected "$(cat "$T/inject.out")" "sent $N"
distinct() { grep '^MSG ' "$T/sink.log" | cut -d' ' -f3 | sort -u | wc -l | tr -d ' '; }
all_there() { [ "$(distinct)" -ge "$N" ]; }
qempty() { [ "$(qjson 'len(msgs)')" = 0 ]; }
until_ok 1200 all_there
until_ok 300 qempty
expect_eq all_delivered "$(distinct)" "$N"
expect_eq queue_empty "$(qjson 'len(msgs)')" 0
expect_eq no_unknown "$(grep -c '^MSG [0-9]* none$' "$T/sink.log")" 0

# The accounting: each delivery that is not its message's last is
# charged to its connection; each killed connection is the last one from
# the killed worker's port before the kill.
"$PY" - "$T/sink.log" "$T/kills" >"$T/acct" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
kills = [l.split() for l in open(sys.argv[2]) if l.strip()]
last = {}
for no, l in enumerate(lines):
    f = l.split()
    if len(f) == 3 and f[0] == "MSG":
        last[f[2]] = no
extra = {}
for no, l in enumerate(lines):
    f = l.split()
    if len(f) == 3 and f[0] == "MSG" and last[f[2]] != no:
        extra[f[1]] = extra.get(f[1], 0) + 1
charged = 0
for k, (pid, port, at) in enumerate(kills, 1):
    conn = None
    for l in lines[:int(at)]:
        f = l.split()
        if len(f) == 3 and f[0] == "CONN" and f[2] == port:
            conn = f[1]
    n = extra.get(conn, 0) if conn else 0
    charged += n
    print("kill %d %s %s %s %d" % (k, pid, port, conn, n))
print("total %d %d" % (sum(extra.values()), sum(extra.values()) - charged))
EOF
total=$(sed -n 's/^total \([0-9]*\) .*/\1/p' "$T/acct")
other=$(sed -n 's/^total [0-9]* \([0-9]*\)$/\1/p' "$T/acct")
while read -r w k pid port conn n; do
	[ "$w" = kill ] || continue
	echo "# kill $k: worker $pid, connection $conn (port $port): $n duplicate(s)"
	if [ "$n" -le 1 ]; then ok "kill_${k}_at_most_one_duplicate"; else
		notok "kill_${k}_at_most_one_duplicate" "$n messages delivered again"; fi
	expect_grep "kill_${k}_connection_dropped" "^DROP $conn$" "$T/sink.log"
done <"$T/acct"
echo "# duplicates: $total in all after $KILLS kills ($other not on a killed connection)"
expect_eq duplicates_only_from_kills "$other" 0
if [ "${total:-999}" -le "$KILLS" ]; then ok duplicates_at_most_one_a_kill; else
	notok duplicates_at_most_one_a_kill "$total duplicates after $KILLS kills"; fi
grep "died (status 9)" "$T/posternd.log" | sed "s/^/# /"
stop_posternd

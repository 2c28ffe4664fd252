#!/bin/sh
# run.sh - `make soak`: posternd under mixed traffic for SOAK_MINUTES
# (default 30), its memory and descriptors sampled, every recipient
# accounted for at the end. Not part of `make test`. README "Soak test"
# says how to read the output.
#
#	SOAK_MINUTES=n	minutes of paced traffic (default 30)
#	SOAK_RATE=r	messages a second instead of the measured choice
#	SOAK_MAX_RATE=r	an upper bound on the paced rate (default none)
#	SOAK_WARMUP=s	seconds left out of the slopes (default 300, or half
#			the run when that is shorter)
#	SOAK_SETTLE=s	at most this long for the queue to settle (180)
#	SOAK_DIR=dir	where everything goes (default a new
#			/tmp/postern-soak.XXXXXX); kept at the end, the
#			queue and the sinks' dumps removed when it passed
#
# What runs (every process started here is stopped by its PID at exit):
#   posternd (release build, bin/) listening on 127.0.0.1 (SMTP, ODMR,
#	metrics), routes_file sending ok.soak to Postfix's smtp-sink,
#	defer.soak to sink.py --defer 30 (451 to ~30% of RCPTs, each retry
#	drawn again), reject.soak to sink.py --reject 10 (550 to ~10% of
#	addresses, always), etrn.soak (a hold domain) to a second smtp-sink
#	and the return path's domain src.soak to a third that collects the
#	DSNs; atrn.soak is held for the user site1 (users_file) and fetched
#	by fetchmail (protocol ODMR) into a fourth smtp-sink. Retries are
#	quick (min_backoff 10s, max_backoff 1m) so deferrals are retried
#	within the run; bounce_rate_limit 0 so that every failure gets its
#	DSN (they all go to one return path).
#   load.py: first the peak receive rate (smtp-source, 10 sessions, a
#	count sized to last ~10 s after a 300-message calibration) and the
#	rate at which that burst is delivered (until nothing is queued or
#	active), then smtp-source paced at half the peak (at most 80% of
#	the delivery rate, so that the queue does not grow without end on
#	a machine that receives faster than it delivers; or SOAK_RATE) for
#	SOAK_MINUTES:
#	40% ok.soak, 30% defer.soak, 30% reject.soak, plus 0.1/s each to
#	etrn.soak and atrn.soak; every acknowledged recipient in sent.log.
#   monitor.py, while the paced traffic runs: every 10 s RSS and fds of
#	every posternd process (samples.csv) and `postern queue --json`;
#	every minute an ETRN (`postern etrn`) and an ATRN (fetchmail); each
#	must succeed.
# At the end: traffic stops, the queue settles (flushed every 15 s) until
# nothing is queued, active or deferred, SOAK_SETTLE at most (what is
# deferred then counts as deferred), a last ETRN and ATRN collect the held
# mail, the final queue is listed, posternd and the sinks stop, and
# report.py prints the slope table and the account of every recipient.
# Exit 0 when all passed, 1 on any violation. First of all selftest.sh
# shows that report.py's checks can fail.
set -u
# The whole script is one compound command, read before any of it runs:
# editing this file while a soak runs cannot change the running one.
{
TOP=$(cd "$(dirname "$0")/../.." && pwd)
S="$TOP/tests/soak"
MIN=${SOAK_MINUTES:-30}
SETTLE=${SOAK_SETTLE:-180}
WARMUP=${SOAK_WARMUP:-300}
[ $((MIN * 60)) -lt $((WARMUP * 2)) ] && WARMUP=$((MIN * 30))
PY=$(python3 -c 'import sys; print(sys.executable)')
BIN="$TOP/bin"
P="$BIN/postern"
. "$TOP/tests/common.sh"	# free_port, wait_listen, term_wait

say() { echo "soak: $(date -u +%H:%M:%S) $*"; }

make -C "$TOP" --no-print-directory -j2 all || exit 1
W=${SOAK_DIR:-$(mktemp -d /tmp/postern-soak.XXXXXX)}
mkdir -p "$W"
chmod 755 "$W"
export POSTERN_CONF="$W/postern.conf"
sh "$S/selftest.sh" >"$W/selftest.out" 2>&1 ||
	{ cat "$W/selftest.out"; say "report.py's self-test failed"; exit 1; }
say "directory $W, $MIN minutes, warm-up $WARMUP s"

PIDS=""
reap() { PIDS="$PIDS $1"; }
# stop_pid PID - SIGTERM, 30 s at most to exit (then SIGKILL), reaped.
# (A child that exited stays a zombie until waited for, and kill -0
# still reaches a zombie: hence the look at its state.)
alive() {
	_st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$(echo "$_st" | sed 's/.*) \(.\).*/\1/')" != Z ]
}
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	_i=0
	while alive "$1" && [ $_i -lt 300 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
stop_all() {
	for pid in $PIDS; do
		stop_pid "$pid"
	done
	PIDS=""
}
trap 'stop_all' EXIT
trap 'exit 1' INT TERM

# ------------------------------------------------------------------
# Sinks.
SP=$(free_port)		# posternd's SMTP
OP=$(free_port)		# its ODMR
MP=$(free_port)		# its metrics
OKP=$(free_port)
DFP=$(free_port)
RJP=$(free_port)
ETP=$(free_port)
ATP=$(free_port)
DSNP=$(free_port)
# smtp_sink NAME PORT - Postfix's smtp-sink appending every message to
# $W/dumps/NAME (envelope as X-*-Args lines, then the message).
mkdir -p "$W/dumps"
chmod 777 "$W/dumps"	# smtp-sink writes as postern
smtp_sink() {
	smtp-sink -u postern -D "$W/dumps/$1" "127.0.0.1:$2" 100 \
		>"$W/$1.sink.out" 2>&1 &
	reap $!
	wait_listen "$2" || { say "smtp-sink $1 did not start"; exit 1; }
}
smtp_sink ok "$OKP"
smtp_sink etrn "$ETP"
smtp_sink atrn "$ATP"
smtp_sink dsn "$DSNP"
"$PY" "$S/sink.py" "$DFP" "$W/defer.log" --defer 30 >"$W/defer.out" 2>&1 &
reap $!
"$PY" "$S/sink.py" "$RJP" "$W/reject.log" --reject 10 >"$W/reject.out" 2>&1 &
reap $!
wait_listen "$DFP" && wait_listen "$RJP" || { say "sink.py did not start"; exit 1; }

# ------------------------------------------------------------------
# posternd.
cat >"$W/routes" <<EOF
# the soak's destinations
ok.soak		[127.0.0.1]:$OKP
defer.soak	[127.0.0.1]:$DFP
reject.soak	[127.0.0.1]:$RJP
etrn.soak	[127.0.0.1]:$ETP
src.soak	[127.0.0.1]:$DSNP
EOF
cat >"$W/postern.conf" <<EOF
queue_dir = $W/queue
myhostname = mx.soak.test
listen = 127.0.0.1:$SP
odmr_listen = 127.0.0.1:$OP
metrics_listen = 127.0.0.1:$MP
users_file = $W/users
routes_file = $W/routes
hold_domains = etrn.soak, atrn.soak
min_backoff = 10s
max_backoff = 1m
bounce_rate_limit = 0
smtp_tls = none
auth_failure_delay = 0s
max_connections_per_ip = 100
EOF
printf 'soakpw\n' | "$P" passwd site1 atrn.soak >"$W/users"
chmod 644 "$W/postern.conf" "$W/routes"
chown postern "$W/users"
chmod 600 "$W/users"
"$P" check >"$W/check.out" 2>&1 || { say "postern check: $(cat "$W/check.out")"; exit 1; }
"$BIN/posternd" -c "$W/postern.conf" -f >>"$W/posternd.log" 2>&1 &
PD=$!
reap "$PD"
wait_listen "$SP" && wait_listen "$OP" || { say "posternd did not start"; exit 1; }
cat >"$W/fetchmailrc" <<EOF
set no syslog
poll 127.0.0.1 protocol ODMR port $OP auth cram-md5
  user "site1" password "soakpw" fetchdomains atrn.soak
  smtphost 127.0.0.1/$ATP
EOF
chmod 600 "$W/fetchmailrc"

# ------------------------------------------------------------------
# The peak receive rate, and how fast that burst is delivered.
# qcount STATES - live recipients in one of STATES (a regex).
qcount() {
	"$P" queue --json | "$PY" -c '
import json, re, sys
print(sum(1 for l in sys.stdin if l.strip()
          for r in json.loads(l)["recipients"]
          if re.fullmatch(sys.argv[1], r["state"])))' "$1"
}
"$PY" "$S/load.py" burst "$SP" "$W/sent.log" c 300 10 >"$W/calib.out"
n=$(awk '{ r = $2 / $1 * 10; if (r < 300) r = 300; if (r > 20000) r = 20000; printf "%d", r }' "$W/calib.out")
i=0
while [ "$(qcount 'queued|active')" -gt 0 ] && [ $i -lt 300 ]; do
	sleep 1
	i=$((i + 1))
done
t0=$(date +%s%N)
"$PY" "$S/load.py" burst "$SP" "$W/sent.log" b "$n" 10 >"$W/burst.out"
read -r el acked rc <"$W/burst.out"
PEAK=$(awk -v n="$acked" -v t="$el" 'BEGIN { printf "%.1f", n / t }')
say "peak receive rate: $acked messages in $el s (exit $rc): $PEAK/s"
# Delivered: nothing queued or active is left (each second, 5 min at
# most; what it measures is the time this takes).
i=0
while [ "$(qcount 'queued|active')" -gt 0 ] && [ $i -lt 300 ]; do
	sleep 1
	i=$((i + 1))
done
DELIV=$(awk -v n="$acked" -v t0="$t0" -v t1="$(date +%s%N)" \
	'BEGIN { printf "%.1f", n / ((t1 - t0) / 1e9) }')
say "burst delivered at $DELIV/s (from its start until nothing was queued or active)"
RATE=${SOAK_RATE:-$(awk -v p="$PEAK" -v d="$DELIV" \
	'BEGIN { r = p / 2; if (r > 0.8 * d) r = 0.8 * d; printf "%.1f", r }')}
[ -n "${SOAK_MAX_RATE:-}" ] &&
	RATE=$(awk -v r="$RATE" -v m="$SOAK_MAX_RATE" 'BEGIN { print (r > m ? m : r) }')
say "paced traffic at $RATE/s for $MIN minutes (half the peak, at most 80% of the burst's delivery rate)"

# ------------------------------------------------------------------
# The run: traffic and the monitor side by side.
POSTERN="$P" QUEUE_DIR="$W/queue" SMTP_PORT="$SP" FETCHMAILRC="$W/fetchmailrc" \
	"$PY" "$S/monitor.py" "$W" "$PD" "$W/posternd.log" "$W/stop" \
	$((MIN * 60 + SETTLE + 600)) >"$W/monitor.out" 2>&1 &
MON=$!
reap "$MON"
"$PY" "$S/load.py" paced "$SP" "$W/sent.log" "$RATE" $((MIN * 60)) \
	"$W/stop" >"$W/load.out" 2>&1
say "$(cat "$W/load.out")"
# The samples cover the traffic only: what follows (the queue draining,
# flushes) is another load, and its first touch of pages would read as
# growth.
touch "$W/stop"
wait "$MON"

# ------------------------------------------------------------------
# Settle: until only deferred (and held) recipients are left, flushing
# every 15 s so retries need not wait for their backoff.
end=$(($(date +%s) + SETTLE))
i=0
while :; do
	busy=$(qcount 'queued|active')
	dfr=$(qcount deferred)
	[ "$busy" -eq 0 ] && [ "$dfr" -eq 0 ] && break
	[ "$(date +%s)" -ge "$end" ] && break
	[ $((i % 15)) -eq 0 ] && "$P" flush >/dev/null 2>&1
	i=$((i + 1))
	sleep 1
done
say "settled: $busy queued or active, $dfr deferred"
# The last ETRN and ATRN: the held mail goes, then the queue settles.
"$P" etrn --tls none "127.0.0.1:$SP" etrn.soak >"$W/last-etrn.out" 2>&1
erc=$?
HOME=$W fetchmail -f "$W/fetchmailrc" --nosyslog -i "$W/fmid" \
	>"$W/last-atrn.out" 2>&1
arc=$?
say "last ETRN: exit $erc ($(head -c 200 "$W/last-etrn.out")); last ATRN (fetchmail): exit $arc"
end=$(($(date +%s) + 60))
while [ "$(qcount 'queued|active')" -gt 0 ] && [ "$(date +%s)" -lt "$end" ]; do
	sleep 1
done
"$P" queue --json >"$W/final.json"
# The DSNs still queued (their return path deferred them): which
# recipients each reports, for the account.
mkdir -p "$W/live-dsn"
"$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    if l.strip() and json.loads(l)["sender"] == "":
        print(json.loads(l)["id"])' "$W/final.json" |
while read -r id; do
	"$P" show --raw "$id" >"$W/live-dsn/$id"
done
"$P" stats >"$W/final.stats" 2>&1
stop_pid "$PD"
stop_all
"$PY" "$S/report.py" "$W" "$WARMUP" | tee "$W/report.txt"
rc=$?
# A POSIX sh has no pipefail: the status is report.py's, read back.
grep -q '^soak: PASS$' "$W/report.txt" && rc=0 || rc=1
printf '\nrequests: %s ETRN ok, %s ATRN ok, %s failed; queue listings: %s, %s failed\n' \
	"$(grep -c ' ETRN 0 ok' "$W/requests.log")" \
	"$(grep -c ' ATRN [01] ok' "$W/requests.log")" \
	"$(grep -c ' FAIL ' "$W/requests.log")" \
	"$(wc -l <"$W/queue.log")" "$(awk '$2 != 0' "$W/queue.log" | wc -l)"
[ "$(grep -c ' FAIL ' "$W/requests.log")" -eq 0 ] || rc=1
[ $erc -eq 0 ] && [ $arc -le 1 ] || rc=1
[ "$(awk '$2 != 0' "$W/queue.log" | wc -l)" -eq 0 ] || rc=1
if [ $rc -eq 0 ]; then
	rm -rf "$W/queue" "$W/dumps"
fi
say "results in $W (report.txt, samples.csv, sent.log, requests.log, queue.log, posternd.log)"
exit $rc
}

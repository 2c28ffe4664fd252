#!/bin/sh
# bench_bounce.sh - bounces: posternd's DSNs against Postfix's bounce
# daemon, on the same input in the same run.
#
# Usage: sh tests/bench/bench_bounce.sh [DIR]     (from anywhere, as root)
#	DIR: where the queues go, on a real disk (run.sh passes
#	$BENCH_DIR/bounce); default /tmp/postern-bench-bounce.PID, or below
#	build/benchtmp when /tmp is tmpfs. Removed at the end.
#	POSTERN_BIN=dir     another postern/posternd (default: bin/ here)
#	BOUNCE_ROUNDS=n     rounds (default 3 while the budget allows; the
#			    first always runs)
#	BOUNCE_BUDGET=s     seconds for the whole (default 300)
#	BOUNCE_KEEP=1       keep DIR (queues, logs) at the end
#
# 10,000 messages of 1 KiB (smtp-source -l 1024), 3 recipients each: 20
# smtp-source runs at once, run i sending 500 messages (-m 500 -r 3 -N -d)
# from bench<i>@ret.example to recipients in d<i>.example. So senders are
# not distinct per message: 20 return paths, 500 DSNs each (posternd runs
# with bounce_rate_limit = 0, no limit; Postfix has none). Every recipient
# domain goes to one smtp-sink that refuses every RCPT with 550 (-f RCPT);
# ret.example goes to a second smtp-sink that takes everything and counts
# its transactions (-c: "mesg=N"). Both sinks are new for each run.
# (smtp-sink -f answers "500 5.3.0 Error: command failed": a hard 5xx,
# which fails the recipient as a 550 does.)
#
# Both servers take the mail over SMTP first and only hold it, untimed,
# as bench_deliver.sh does:
#   posternd: hold_domains = the 20 domains; then posternd is stopped and
#	`postern flush ID...` makes every recipient due now. That queue is
#	kept as a template and copied for each run. Timed: from starting
#	posternd (routes_file: d<i>.example to the refusing sink, ret.example
#	to the counting sink; workers 4; dest_concurrency 20;
#	bounce_rate_limit 0; the rest default: bounce_return headers)
#	until the counting sink has 10,000 transactions.
#   Postfix: smtpd puts each message on hold (static:HOLD), a fresh queue
#	each round. Timed: from `postsuper -H ALL` + `postqueue -f`
#	(relayhost the refusing sink, transport_maps ret.example to the
#	counting sink, default_destination_concurrency_limit 20, bounce
#	settings default: the notice returns the whole message under
#	bounce_size_limit 50000) until the counting sink has 10,000.
#   Then, untimed, until nothing is left queued (postern: stats says 0
#   recipients; Postfix: no queue file), and the checks: the counting sink
#   has exactly 10,000 transactions (one DSN per message); the log says
#   30,000 recipients bounced and 10,000 "sender non-delivery
#   notification" lines. A run that misses one says so and FAILs.
#   DSNs/s = 10,000 / time; median of the rounds; target posternd/Postfix
#   >= 3x. The CPU seconds used during each posternd run by its processes
#   (master, scheduler, workers, smtpd) and by the two sinks are shown:
#   the hint for where the time went.
#
# The Postfix instance is our own (bench_lib.sh); the system's Postfix is
# neither read nor changed. Every process started here is stopped by its
# pid.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SRC=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
PDBIN=${POSTERN_BIN:-$top/bin}
BUDGET=${BOUNCE_BUDGET:-300}
NDOM=20
PER=500			# messages per domain (and per sender)
NR=3			# recipients per message
N=$((NDOM * PER))
NRCPT=$((N * NR))
TARGET_RATIO=3
t_begin=$(date +%s)

say() { echo "bounce  $*"; }
die() { echo "bounce: $*" >&2; exit 1; }
. "$top/tests/bench/bench_lib.sh"	# ports, greets, median, Postfix

[ -x "$SRC" ] && [ -x "$SINK" ] || die "smtp-source/smtp-sink missing (apt-get install postfix)"
command -v postfix >/dev/null 2>&1 || die "postfix missing"
[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix's master, posternd's user, smtp-sink -u)"
need_pd

bench_dir bounce "$@"

PD_PID=""
REJ_PID=""
DSN_PID=""
SRC_PIDS=""
PF_Q=""
cleanup() {
	for p in $SRC_PIDS; do kill "$p" 2>/dev/null; done
	[ -n "$PD_PID" ] && pd_stop
	sinks_stop
	[ -n "$PF_Q" ] && pf_stop
	if [ -n "${BOUNCE_KEEP:-}" ]; then
		echo "bounce: kept $DIR" >&2
		return
	fi
	bench_dir_rm
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REJ_PORT=$(free_port)
DSN_PORT=$(free_port)
PD_PORT=$(free_port)
PF_PORT=$(free_port)

# ------------------------------------------------------------------
# The sinks: new ones for each run. The refusing one answers every RCPT
# 550; the counting one's counters go to $W/dsn.out.
sinks_start() {
	"$SINK" -u postern -f RCPT "127.0.0.1:$REJ_PORT" 1000 >"$W/rej.out" 2>&1 &
	REJ_PID=$!
	"$SINK" -u postern -c "127.0.0.1:$DSN_PORT" 1000 >"$W/dsn.out" 2>&1 &
	DSN_PID=$!
	greets "$REJ_PORT" || die "smtp-sink -f RCPT does not answer: $(head -c 300 "$W/rej.out")"
	greets "$DSN_PORT" || die "smtp-sink -c does not answer: $(head -c 300 "$W/dsn.out")"
}
sinks_stop() {
	for p in $REJ_PID $DSN_PID; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	REJ_PID=""
	DSN_PID=""
}
# dsn_count - transactions the counting sink has taken ("mesg=N"); greets
# opened one session, which counts no transaction.
dsn_count() {
	n=$(tail -c 200 "$W/dsn.out" 2>/dev/null | tr '\r' '\n' |
	    sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
	echo "${n:-0}"
}
# dsn_wait N LIMIT - until the counting sink has N (1: gave up after LIMIT
# seconds).
dsn_wait() {
	_end=$(($(date +%s) + $2))
	while [ "$(dsn_count)" -lt "$1" ]; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.1
	done
	return 0
}
# cpu PID... - user+system CPU seconds of these processes so far, with
# their children that have ended and been waited for.
cpu() {
	_tk=$(getconf CLK_TCK)
	for _p in "$@"; do
		sed 's/.*) //' "/proc/$_p/stat" 2>/dev/null
	done | awk -v tk="$_tk" '{ s += $12 + $13 + $14 + $15 }
	    END { printf "%.1f\n", s / tk }'
}
# tree PID - PID and its descendants.
tree() {
	echo "$1"
	for _c in $(ps -o pid= --ppid "$1"); do
		tree "$_c"
	done
}

# ------------------------------------------------------------------
# posternd (pd_conf, pd_start, pd_stop, pd_rcpts: bench_lib.sh).
bench_domains "$NDOM" d

# inject PORT - the 10,000 messages: 20 smtp-source runs at once.
inject() {
	SRC_PIDS=""
	i=1
	for d in $DOMAINS; do
		timeout -k 5 300 "$SRC" -s 1 -d -N -m "$PER" -r "$NR" \
		    -l 1024 -f "bench$i@ret.example" -t "u@$d" \
		    "127.0.0.1:$1" >"$W/src.$d" 2>&1 &
		SRC_PIDS="$SRC_PIDS $!"
		i=$((i + 1))
	done
	src_wait
}

# ------------------------------------------------------------------
# Postfix: our own instance; what is released goes to the refusing sink,
# its DSNs to ret.example to the counting one.
echo "ret.example smtp:[127.0.0.1]:$DSN_PORT" >"$W/pf-transport"
pf_setup "$PF_PORT" "relayhost = [127.0.0.1]:$REJ_PORT" \
    "transport_maps = texthash:$W/pf-transport" \
    "default_destination_concurrency_limit = 20" \
    "smtp_tls_security_level = none"

# ------------------------------------------------------------------
# The postern template queue, made once.
ROUTES=$W/routes
{
	for d in $DOMAINS; do
		echo "$d [127.0.0.1]:$REJ_PORT"
	done
	echo "ret.example [127.0.0.1]:$DSN_PORT"
} >"$ROUTES"
chmod 644 "$ROUTES"
TPL=$W/pd-template
say "$(bench_where);" "load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
pd_template inject

# pd_run ROUND - one timed posternd run from a copy of the template.
pd_run() {
	r=$1
	pd_copy
	pd_conf "$W/run.conf" "$Q" "routes_file=$ROUTES" "workers=4" \
	    "dest_concurrency=20" "bounce_rate_limit=0"
	sinks_start
	c0=$(cpu "$REJ_PID" "$DSN_PID")
	t0=$(now)
	pd_start "$W/run.conf" "$W/pd-run.log"
	ok=true
	dsn_wait "$N" 600 || ok=false
	t1=$(now)
	# What the posternd processes used: master, smtpd, scheduler,
	# workers.
	pids=$(tree "$PD_PID" | tr '\n' ' ')
	# shellcheck disable=SC2086
	pdcpu=$(cpu $pids)
	skcpu=$(cpu "$REJ_PID" "$DSN_PID")
	drain 600 "$t0" pd_rcpts "$W/run.conf"
	pd_stop
	dsns=$(dsn_count)
	sinks_stop
	bounced=$(grep -c 'status=bounced' "$W/pd-run.log")
	notes=$(grep -c ': sender non-delivery notification: ' "$W/pd-run.log")
	other=$(grep -c 'status=\(deferred\|sent\|expired\)' "$W/pd-run.log")
	elapsed "$t0" "$t1" >>"$W/pd.t"
	echo "$dsns" >>"$W/pd.dsn"
	echo "$pdcpu $(awk -v a="$c0" -v b="$skcpu" 'BEGIN { printf "%.1f", b - a }')" >>"$W/pd.cpu"
	$ok || echo "round $r: not done after 600 s: $(dsn_count) DSNs, $left recipients left" >>"$W/bad.pd"
	[ "$dsns" -eq "$N" ] || echo "round $r: $dsns DSNs at the sink, want $N" >>"$W/bad.pd"
	[ "$bounced" -eq "$NRCPT" ] ||
		echo "round $r: $bounced of $NRCPT recipients bounced, $other deferred/sent/expired" >>"$W/bad.pd"
	[ "$notes" -eq "$N" ] ||
		echo "round $r: $notes non-delivery notifications logged, want $N" >>"$W/bad.pd"
	# A message reported twice: its id and its DSNs.
	sed -n 's/^postern\/bounce\[[0-9]*\]: \([0-9A-Z]*\): sender non-delivery notification: .*/\1/p' \
	    "$W/pd-run.log" | sort | uniq -d >"$W/dup"
	[ -s "$W/dup" ] &&
		echo "round $r: $(wc -l <"$W/dup") message(s) with more than one DSN: $(head -n 3 "$W/dup" | while read -r id; do
		    printf '%s (%s) ' "$id" "$(grep "^postern/bounce\[[0-9]*\]: $id: " "$W/pd-run.log" | sed 's/.*: //' | tr '\n' ' ')"; done)" >>"$W/bad.pd"
	cp "$W/pd-run.log" "$W/pd-run.log.$r"
	grep -q 'died\|fatal\|dropped' "$W/pd-run.log" &&
		echo "round $r: $(grep -m 1 'died\|fatal\|dropped' "$W/pd-run.log")" >>"$W/bad.pd"
	rm -rf "$Q"
}

# pf_run ROUND - one Postfix run: a fresh queue, take the mail over SMTP
# and hold it (untimed); then release and flush (timed).
pf_run() {
	r=$1
	pf_start
	inject "$PF_PORT"
	held=$(find "$PF_Q/hold" -type f | wc -l | tr -d ' ')
	[ "$held" -eq "$N" ] || echo "round $r: Postfix held $held of $N" >>"$W/bad.pf"
	sinks_start
	t0=$(now)
	postsuper -c "$PF_ETC" -H ALL >/dev/null 2>&1
	postqueue -c "$PF_ETC" -f
	ok=true
	dsn_wait "$N" 600 || ok=false
	t1=$(now)
	drain 600 "$t0" pf_files
	dsns=$(dsn_count)
	sinks_stop
	bounced=$(grep -c 'status=bounced' "$W/pf-maillog")
	notes=$(grep -c ': sender non-delivery notification: ' "$W/pf-maillog")
	pf_stop
	elapsed "$t0" "$t1" >>"$W/pf.t"
	echo "$dsns" >>"$W/pf.dsn"
	$ok || echo "round $r: not done after 600 s: $dsns DSNs, $left queue files left" >>"$W/bad.pf"
	[ "$dsns" -eq "$N" ] || echo "round $r: $dsns DSNs at the sink, want $N" >>"$W/bad.pf"
	[ "$bounced" -eq "$NRCPT" ] ||
		echo "round $r: $bounced of $NRCPT recipients bounced" >>"$W/bad.pf"
	[ "$notes" -eq "$N" ] ||
		echo "round $r: $notes non-delivery notifications logged, want $N" >>"$W/bad.pf"
}

rounds=0
round() {
	rounds=$((rounds + 1))
	pd_run "$rounds"
	pf_run "$rounds"
}
r_t0=$(date +%s)
round
t_round=$(($(date +%s) - r_t0))
say "round 1: $t_round s (posternd $(tail -n 1 "$W/pd.t") s; Postfix $(tail -n 1 "$W/pf.t") s)"
want=${BOUNCE_ROUNDS:-3}
while [ "$rounds" -lt "$want" ] &&
    { [ -n "${BOUNCE_ROUNDS:-}" ] ||
    [ $(($(date +%s) - t_begin + t_round + t_round / 5)) -le "$BUDGET" ]; }; do
	round
done

# ------------------------------------------------------------------
# Results.
pd_m=$(median "$W/pd.t")
pf_m=$(median "$W/pf.t")
pd_r=$(rate "$pd_m")
pf_r=$(rate "$pf_m")
ratio=$(ratio_of "$pf_m" "$pd_m")
v=$(awk -v r="$ratio" -v w="$TARGET_RATIO" 'BEGIN { print (r >= w) ? "PASS" : "FAIL" }')
# One DSN per message on both sides is part of the target.
[ -s "$W/bad.pd" ] || [ -s "$W/bad.pf" ] && v="FAIL (counts, below)"
say "$N msgs x $NR rcpts, every RCPT refused 5xx (smtp-sink -f RCPT: 500 5.3.0); time to the ${N}th DSN at the counting sink; median of $rounds round(s); DSNs/s (runs)"
printf 'bounce  posternd %6s DSNs/s in %6.2f s  Postfix %6s DSNs/s in %6.2f s  ratio %5.2fx  (target >= %sx: %s)  [posternd: %s; Postfix: %s; DSNs at the sink posternd %s, Postfix %s]\n' \
	"$pd_r" "$pd_m" "$pf_r" "$pf_m" "$ratio" "$TARGET_RATIO" "$v" \
	"$(runs_of "$W/pd.t")" "$(runs_of "$W/pf.t")" \
	"$(list "$W/pd.dsn")" "$(list "$W/pf.dsn")"
say "posternd runs: CPU s of posternd's processes, of the two sinks: $(awk '{ printf "%s%s, %s", (NR > 1 ? "; " : ""), $1, $2 }' "$W/pd.cpu")"
[ -s "$W/bad.pd" ] && sed 's/^/bounce      incomplete (posternd): /' "$W/bad.pd"
[ -s "$W/bad.pf" ] && sed 's/^/bounce      incomplete (Postfix): /' "$W/bad.pf"
say "total $(($(date +%s) - t_begin)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)" \
	"(other work on the machine makes every number here lower)"

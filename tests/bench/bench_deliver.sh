#!/bin/sh
# bench_deliver.sh - delivery: posternd's scheduler and workers against a
# private Postfix instance, both sending to Postfix's smtp-sink on the same
# machine in the same run; and the scheduler's cost of a domain flush in a
# queue of 10,000 against one of 1,000,000.
#
# Usage: sh tests/bench/bench_deliver.sh [DIR]     (from anywhere, as root)
#	DIR: where the queues go, on a real disk (run.sh passes
#	$BENCH_DIR/deliver); default /tmp/postern-bench-deliver.PID, or below
#	build/benchtmp when /tmp is tmpfs. Removed at the end.
#	POSTERN_BIN=dir     another postern/posternd (default: bin/ here)
#	DELIVER_ROUNDS=n    throughput rounds (default 3 while the budget
#			    allows; the first always runs)
#	DELIVER_BUDGET=s    seconds for the whole (default 540)
#	DELIVER_LARGE=n     the large queue of part 2 (default 1000000)
#
# 1. Throughput. 10,000 messages of 4 KiB (smtp-source -l 4096): 5,000
# with 1 recipient and 5,000 with 5, over 20 domains d1.example ..
# d20.example (each domain gets 250 of each kind: 40 smtp-source runs
# at once, -m 250 -r 1|5 -N -d, each message's recipients in one domain,
# as smtp-source makes them), all routed to one smtp-sink (-u postern, a
# new one for each run). Both servers take the mail over SMTP first and
# only hold it, untimed:
#   posternd: hold_domains = the 20 domains, so its scheduler never
#	touches the mail; then posternd is stopped and `postern flush ID...`
#	(every message, by id: that releases site holds) makes every
#	recipient queued and due now, the state a queue run starts from. That
#	queue (data.mdb) is kept as a template and copied for each run.
#	Timed: from starting posternd (routes_file: the 20 domains to
#	[127.0.0.1]:SINK; workers 4, and 8; dest_concurrency 20) until
#	`postern stats --json` says 0 recipients.
#   Postfix: smtpd with check_recipient_access static:HOLD puts each
#	message on hold (cleanup; qmgr never sees it), a fresh queue each
#	round. Timed: from `postsuper -H ALL` + `postqueue -f` (relayhost
#	[127.0.0.1]:SINK, default_destination_concurrency_limit 20, its
#	default fsync behaviour) until no queue file is left in incoming,
#	active, deferred, hold or maildrop.
#   For both the end is checked after the sink has counted at least
#   10,000 transactions (smtp-sink -c: "mesg=N"; polled every 0.1 s), then
#   every 0.2 s; every recipient must have been delivered (postern: its
#   log's status=sent lines; Postfix: its maillog's) or the run says so.
#   msgs/s = 10,000 / time; median of the rounds; target postern/Postfix
#   >= 2x with 4 workers. One run with 8 workers (in the first round) is
#   shown for comparison.
#
# 2. Scheduler scale. bench_fill (tests/bench/bench_fill.c) builds a queue
# of N other recipients (10 a message, 200-byte bodies, over 2,000 domains
# dK.example.com, routed to a dead port) and 1,000 one-recipient 4 KiB
# messages for each of 5 flush domains f1..f5.example.net (routed to the
# sink), spread among the others in arrival order, everything due in an
# hour. posternd (workers 4, dest_concurrency 20) is started on it; then
# for each flush domain: `postern flush --domain fK.example.net` and the
# time until the sink has counted its 1,000 messages (bench_sinkwait.c
# runs the command and reads the sink's counter every millisecond). Median
# of the 5, in a queue of 10,000 and one of 1,000,000; target: within
# 1.5x. The scheduler child's peak RSS (VmHWM of the pid the master logs
# as "started sched, pid N", after the 5 flushes) is printed with its
# RssAnon (private memory) and RssFile (data.mdb pages it has mapped by
# reading them: each minor fault maps neighbouring cached pages too) and
# its minor page faults; target < 100 MB with 1,000,000 queued, on VmHWM.
# (The scheduler drops its map of the queue file past 32 MiB:
# runner/runner_mem.c.)
#
# The Postfix instance is our own (config and queue directories in DIR,
# smtpd on 127.0.0.1 on a free port, no chroot, its log in a file, `postfix
# -c DIR start/stop`); the system's Postfix is neither read nor changed.
# Every process started here is stopped by its pid.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SRC=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
PDBIN=${POSTERN_BIN:-$top/bin}
BUDGET=${DELIVER_BUDGET:-540}
LARGE=${DELIVER_LARGE:-1000000}
SMALL=10000
NDOM=20
PER=250			# messages per domain and kind (x 2 kinds x 20 domains)
N=$((NDOM * PER * 2))
NRCPT=$((NDOM * PER * 6))
FLUSH_N=1000
TARGET_RATIO=2
TARGET_SCALE=1.5
TARGET_RSS_MB=100
t_begin=$(date +%s)

say() { echo "deliver  $*"; }
die() { echo "deliver: $*" >&2; exit 1; }
. "$top/tests/bench/bench_lib.sh"	# ports, greets, median, Postfix

[ -x "$SRC" ] && [ -x "$SINK" ] || die "smtp-source/smtp-sink missing (apt-get install postfix)"
command -v postfix >/dev/null 2>&1 || die "postfix missing"
[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix's master, posternd's user, smtp-sink -u)"
need_pd

# ------------------------------------------------------------------
# The directory ($DIR, $W, $PF_ETC): a real disk.
bench_dir deliver "$@"

PD_PID=""
SINK_PID=""
SRC_PIDS=""
PF_Q=""
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

SINK_PORT=$(free_port)
PD_PORT=$(free_port)
PF_PORT=$(free_port)
DEAD_PORT=$(free_port)	# nobody listens there

# ------------------------------------------------------------------
# The sink: a new one for each run, its counters in $W/sink.out.
sink_start() {
	"$SINK" -u postern -c "127.0.0.1:$SINK_PORT" 1000 >"$W/sink.out" 2>&1 &
	SINK_PID=$!
	greets "$SINK_PORT" || die "smtp-sink does not answer: $(head -c 300 "$W/sink.out")"
}
sink_stop() {
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}
# sink_count - transactions the sink has taken so far ("mesg=N").
sink_count() {
	n=$(tail -c 200 "$W/sink.out" 2>/dev/null | tr '\r' '\n' |
	    sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
	echo "${n:-0}"
}
# sink_wait N LIMIT - until the sink has counted N (0: gave up after
# LIMIT seconds).
sink_wait() {
	_end=$(($(date +%s) + $2))
	while [ "$(sink_count)" -lt "$1" ]; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.1
	done
	return 0
}

# ------------------------------------------------------------------
# posternd (pd_conf, pd_start, pd_stop, pd_rcpts: bench_lib.sh).
bench_domains "$NDOM" d
# hwm PID - "VmHWM RssAnon RssFile" in MiB, and its minor page faults.
hwm() {
	_mf=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $8 }')
	awk -v mf="${_mf:-0}" '/^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 }
	    /^RssFile:/ { f = $2 }
	    END { printf "%.1f %.1f %.1f %d\n", h / 1024, a / 1024, f / 1024, mf }' \
	    "/proc/$1/status" 2>/dev/null || echo "0 0 0 0"
}

# ------------------------------------------------------------------
# Postfix: our own instance (bench_lib.sh), a fresh queue for each run;
# what is released goes to the sink.
pf_setup "$PF_PORT" "relayhost = [127.0.0.1]:$SINK_PORT" \
    "default_destination_concurrency_limit = 20" \
    "smtp_tls_security_level = none"

# ------------------------------------------------------------------
# Part 1: the postern template queue, made once.
pd_routes "$SINK_PORT"
say "$(bench_where);" "load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
pd_template inject_mix

# pd_run WORKERS ROUND - one timed posternd run from a copy of the template.
pd_run() {
	wk=$1 r=$2
	pd_copy
	pd_conf "$W/run.conf" "$Q" "routes_file=$ROUTES" "workers=$wk" \
	    "dest_concurrency=20"
	sink_start
	t0=$(now)
	pd_start "$W/run.conf" "$W/pd-run.log"
	ok=true
	sink_wait "$N" 600 || ok=false
	drain 600 "$t0" pd_rcpts "$W/run.conf"
	t1=$(now)
	hw=$(hwm "$PD_SCHED")
	pd_stop
	tx=$(sink_count)
	sink_stop
	sent=$(grep -c 'status=sent' "$W/pd-run.log")
	other=$(grep -c 'status=\(deferred\|bounced\|expired\)' "$W/pd-run.log")
	elapsed "$t0" "$t1" >>"$W/pd$wk.t"
	echo "$tx" >>"$W/pd$wk.tx"
	echo "${hw%% *}" >>"$W/pd$wk.hwm"
	$ok || echo "round $r: not done after 600 s, $left recipients left" >>"$W/bad.pd$wk"
	[ "$sent" -eq "$NRCPT" ] ||
		echo "round $r: $sent of $NRCPT recipients sent, $other deferred/failed" >>"$W/bad.pd$wk"
	grep -q 'died\|fatal' "$W/pd-run.log" &&
		echo "round $r: $(grep -m 1 'died\|fatal' "$W/pd-run.log")" >>"$W/bad.pd$wk"
	rm -rf "$Q"
}

# pf_run ROUND - one Postfix run: a fresh queue, take the mail over SMTP
# and hold it (untimed); then release and flush (timed).
pf_run() {
	r=$1
	pf_start
	inject_mix "$PF_PORT"
	held=$(find "$PF_Q/hold" -type f | wc -l | tr -d ' ')
	[ "$held" -eq "$N" ] || echo "round $r: Postfix held $held of $N" >>"$W/bad.pf"
	sink_start
	t0=$(now)
	postsuper -c "$PF_ETC" -H ALL >/dev/null 2>&1
	postqueue -c "$PF_ETC" -f
	ok=true
	sink_wait "$N" 600 || ok=false
	drain 600 "$t0" pf_files
	t1=$(now)
	tx=$(sink_count)
	sink_stop
	sent=$(grep -c 'status=sent' "$W/pf-maillog")
	pf_stop
	elapsed "$t0" "$t1" >>"$W/pf.t"
	echo "$tx" >>"$W/pf.tx"
	$ok || echo "round $r: not done after 600 s, $left queue files left" >>"$W/bad.pf"
	[ "$sent" -eq "$NRCPT" ] ||
		echo "round $r: $sent of $NRCPT recipients sent" >>"$W/bad.pf"
}

# A round: posternd with 4 workers and Postfix; 8 workers only in the
# first (for comparison: time is short).
rounds=0
round() {
	rounds=$((rounds + 1))
	pd_run 4 "$rounds"
	pf_run "$rounds"
}
r_t0=$(date +%s)
round
t_round=$(($(date +%s) - r_t0))
pd_run 8 1
say "round 1: $t_round s (posternd w4 $(tail -n 1 "$W/pd4.t") s; Postfix $(tail -n 1 "$W/pf.t") s); posternd w8 $(tail -n 1 "$W/pd8.t") s"

# ------------------------------------------------------------------
# Part 2: a domain flush in a queue of 10,000 and of 1,000,000.
FDOMS="f1.example.net f2.example.net f3.example.net f4.example.net f5.example.net"
{
	for d in $FDOMS; do
		echo "$d [127.0.0.1]:$SINK_PORT"
	done
	echo ".example.com [127.0.0.1]:$DEAD_PORT"
} >"$W/routes-fill"
chmod 644 "$W/routes-fill"

# Build bench_fill and bench_sinkwait like run.sh builds the C benchmarks
# (bench_lib.sh's bench_cc).
bench_cc "$W/bench_fill" tests/bench/bench_fill.c
bench_cc "$W/bench_sinkwait" tests/bench/bench_sinkwait.c

# scale LABEL OTHERS - fill, start posternd, flush each D, time each.
scale() {
	label=$1
	Q=$W/fill-$label
	rm -rf "$Q"
	"$W/bench_fill" -o "$2" -n "$FLUSH_N" "$Q" $FDOMS >"$W/fill.out" 2>&1 ||
		die "bench_fill: $(cat "$W/fill.out")"
	say "$label: $(cat "$W/fill.out")"
	pd_conf "$W/fill.conf" "$Q" "routes_file=$W/routes-fill" "workers=4" \
	    "dest_concurrency=20"
	sink_start
	pd_start "$W/fill.conf" "$W/pd-fill-$label.log"
	sleep 1
	base=0
	runs=""
	for d in $FDOMS; do
		base=$((base + FLUSH_N))
		# From the flush command to the sink's count, polled every ms.
		if ! t=$("$W/bench_sinkwait" "$W/sink.out" "$base" 120 \
		    "$PDBIN/postern" -c "$W/fill.conf" flush --domain "$d"); then
			echo "$label $d: $t (the sink has $(sink_count) of $base)" >>"$W/bad.scale"
			t=120
		fi
		echo "$t" >>"$W/scale.$label"
		runs="$runs $t"
		sent=$(grep -c "@$d>, .*status=sent" "$W/pd-fill-$label.log")
		[ "$sent" -eq "$FLUSH_N" ] || echo "$label $d: $sent of $FLUSH_N sent" >>"$W/bad.scale"
	done
	hw=$(hwm "$PD_SCHED")
	echo "$hw" >"$W/hwm.$label"
	pd_stop
	sink_stop
	tried=$(grep -c 'example.com>, .*status=' "$W/pd-fill-$label.log")
	[ "$tried" -eq 0 ] || echo "$label: $tried delivery attempts of the other (not due) domains" >>"$W/bad.scale"
	say "$label: flush of $FLUSH_N messages, s:$runs; scheduler VmHWM/RssAnon/RssFile MiB, minor faults: $hw"
	rm -rf "$Q"
}
scale 10k "$SMALL"
scale large "$LARGE"

# ------------------------------------------------------------------
# More throughput rounds while the budget allows.
want=${DELIVER_ROUNDS:-3}
while [ "$rounds" -lt "$want" ] &&
    { [ -n "${DELIVER_ROUNDS:-}" ] ||
    [ $(($(date +%s) - t_begin + t_round + t_round / 5)) -le "$BUDGET" ]; }; do
	round
done

# ------------------------------------------------------------------
# Results.
say "throughput: $N msgs ($NRCPT rcpts, 4 KiB) to one smtp-sink; median of $rounds round(s); msgs/s (runs)"
pf_m=$(median "$W/pf.t")
pf_r=$(rate "$pf_m")
for wk in 4 8; do
	m=$(median "$W/pd$wk.t")
	r=$(rate "$m")
	ratio=$(ratio_of "$r" "$pf_r")
	tgt=""
	if [ "$wk" -eq 4 ]; then
		v=$(awk -v r="$ratio" -v w="$TARGET_RATIO" 'BEGIN { print (r >= w) ? "PASS" : "FAIL" }')
		[ -s "$W/bad.pd4" ] || [ -s "$W/bad.pf" ] && v=FAIL
		tgt="  (target >= ${TARGET_RATIO}x: $v)"
	fi
	printf 'deliver  posternd workers=%d  %6s msgs/s in %6.2f s  Postfix %6s msgs/s in %6.2f s  ratio %5.2fx%s  [posternd: %s; Postfix: %s; sink transactions posternd %s, Postfix %s; sched VmHWM %s MiB]\n' \
		"$wk" "$r" "$m" "$pf_r" "$pf_m" "$ratio" "$tgt" \
		"$(runs_of "$W/pd$wk.t")" "$(runs_of "$W/pf.t")" \
		"$(list "$W/pd$wk.tx")" \
		"$(list "$W/pf.tx")" \
		"$(sort -n "$W/pd$wk.hwm" | tail -n 1)"
	[ -s "$W/bad.pd$wk" ] && sed "s/^/deliver      incomplete (posternd w$wk): /" "$W/bad.pd$wk"
done
[ -s "$W/bad.pf" ] && sed 's/^/deliver      incomplete (Postfix): /' "$W/bad.pf"

s_m=$(median "$W/scale.10k")
l_m=$(median "$W/scale.large")
sr=$(ratio_of "$l_m" "$s_m")
v=$(awk -v r="$sr" -v w="$TARGET_SCALE" 'BEGIN { print (r > 0 && r <= w) ? "PASS" : "FAIL" }')
[ -s "$W/bad.scale" ] && v=FAIL
printf 'deliver  flush --domain D (%d msgs) to the sink: 10k queued %.2f s, %s queued %.2f s, ratio %.2fx  (target within %sx: %s)  [10k: %s; large: %s]\n' \
	"$FLUSH_N" "$s_m" "$LARGE" "$l_m" "$sr" "$TARGET_SCALE" "$v" \
	"$(list "$W/scale.10k")" \
	"$(list "$W/scale.large")"
[ -s "$W/bad.scale" ] && sed 's/^/deliver      incomplete: /' "$W/bad.scale"
# shellcheck disable=SC2046
set -- $(cat "$W/hwm.large")
v=$(awk -v m="$1" -v w="$TARGET_RSS_MB" 'BEGIN { print (m > 0 && m < w) ? "PASS" : "FAIL" }')
# shellcheck disable=SC2046
set -- $(cat "$W/hwm.large") $(cat "$W/hwm.10k")
printf 'deliver  scheduler peak RSS with %s queued: VmHWM %s MiB (at the end: private RssAnon %s, mapped data.mdb pages RssFile %s after %s minor faults)  (target < %d MB: %s)  [10k queued: VmHWM %s MiB, RssAnon %s, RssFile %s]\n' \
	"$LARGE" "$1" "$2" "$3" "$4" "$TARGET_RSS_MB" "$v" "$5" "$6" "$7"
say "total $(($(date +%s) - t_begin)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)" \
	"(other work on the machine makes every number here lower)"

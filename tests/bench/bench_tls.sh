#!/bin/sh
# bench_tls.sh - what TLS costs a delivery: posternd and a private Postfix
# instance, each sending the same 10,000 messages in the clear and with
# opportunistic TLS (postern smtp_tls = may, Postfix
# smtp_tls_security_level = may) to one STARTTLS sink over reused
# connections, in the same run.
#
# Usage: sh tests/bench/bench_tls.sh [DIR]     (from anywhere, as root)
#	DIR: where the queues go, on a real disk (run.sh passes
#	$BENCH_DIR/tls); default /tmp/postern-bench-tls.PID, or below
#	build/benchtmp when /tmp is tmpfs. Removed at the end.
#	POSTERN_BIN=dir   another postern/posternd (default: bin/ here)
#	TLS_ROUNDS=n      rounds (default 5 while the budget allows, at
#			  least 3 while they fit in 18 minutes)
#	TLS_BUDGET=s      seconds for the whole (default 720)
#	TLS_NOREUSE=0     skip the one Postfix run without TLS connection
#			  reuse (about 2 minutes: it makes 10,000 handshakes)
#	TLS_PERF=dir      profile posternd's scheduler and workers in the
#			  first round's runs: perf record -g into
#			  dir/pd-plain.data and dir/pd-tls.data (perf report
#			  -i ...); the profiled runs are slower and counted
#
# The mail is bench_deliver.sh's: 10,000 messages of 4 KiB (smtp-source
# -l 4096), 5,000 with 1 recipient and 5,000 with 5, over d1..d20.example,
# taken over SMTP and held untimed (posternd: a template queue made once,
# hold_domains then `postern flush ID...`, copied for each run; Postfix:
# check_recipient_access static:HOLD on a fresh queue for each run, then
# `postsuper -H ALL` + `postqueue -f`), everything to one sink.
#
# The sink is bench_tlssink.c (built here with cc): it offers STARTTLS,
# PIPELINING, SIZE, 8BITMIME, takes every message and keeps nothing, one
# thread per connection; a new one for each run, on the same port. It
# counts messages, recipients, messages taken over TLS, connections and
# handshakes in a file this script polls (every 0.1 s) - no sleeps in
# place of a condition. Its certificate (RSA 2048, self-signed) is made
# here with openssl. Its CPU time is printed per message, to show it is
# not the bottleneck.
#
# The configurations, both with connection reuse (the fair comparison):
#   posternd: workers = 4, dest_concurrency = 20, routes_file: the 20
#	domains to [127.0.0.1]:SINK; smtp_tls = none, then may (no CA store
#	is loaded under may: nothing is verified, as in Postfix). A worker
#	keeps its connection (connection_reuse_time, 5 s) and takes the
#	next batch for the same hop: each worker makes one connection and
#	one handshake for the whole run.
#   Postfix 3.7: relayhost = [127.0.0.1]:SINK,
#	default_destination_concurrency_limit = 20,
#	smtp_connection_cache_destinations = the relayhost (the cache is on
#	for it, not only on demand), smtp_tls_security_level = none, then
#	may with smtp_tls_connection_reuse = yes: without it Postfix closes
#	every TLS connection after one delivery (the connection cache holds
#	only plaintext sockets); with it smtp(8) hands the TLS to
#	tlsproxy(8) and caches the proxied connection in scache(8) (Postfix
#	3.4 and later; tlsproxy and tlsmgr are in master.cf), and
#	smtp_tls_session_cache_database (btree) resumes sessions for the
#	connections it does open.
#   Once, in the first round, for comparison: Postfix with TLS and
#	smtp_tls_connection_reuse = no (a connection and a resumed session
#	for each delivery): the configuration most sites run.
#   Each run is checked: every recipient sent (the sender's log), the sink
#   counted 10,000 messages and 30,000 recipients, all over TLS in a TLS
#   run and none in a plain one; the connections and handshakes of each
#   run are printed (one connection more than the sender made: this
#   script's probe that the sink answers).
#
# A round is the four runs, in the order postern plain, Postfix plain,
# postern TLS, Postfix TLS, and reversed in every second round, so that
# load from elsewhere on the machine falls on both alike. Printed: the
# median of each (msgs/s = 10,000 / seconds), the TLS cost per message of
# each (median over the rounds of (TLS time - plain time) / 10,000, in
# ms), and postern's TLS rate over Postfix's; target >= 2x.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SRC=/usr/sbin/smtp-source
PDBIN=${POSTERN_BIN:-$top/bin}
BUDGET=${TLS_BUDGET:-720}
NDOM=20
PER=250			# messages per domain and kind (x 2 kinds x 20 domains)
N=$((NDOM * PER * 2))
NRCPT=$((NDOM * PER * 6))
TARGET_RATIO=2
MIN_ROUNDS=3
HARD_LIMIT=1080		# seconds: no round is begun that would end later
RUN_LIMIT=600		# seconds one run may take
t_begin=$(date +%s)

say() { echo "tls      $*"; }
die() { echo "tls: $*" >&2; exit 1; }
. "$top/tests/bench/bench_lib.sh"	# ports, greets, median, Postfix

[ -x "$SRC" ] || die "smtp-source missing (apt-get install postfix)"
command -v postfix >/dev/null 2>&1 || die "postfix missing"
command -v openssl >/dev/null 2>&1 || die "openssl missing"
[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix's master, posternd's user)"
need_pd
[ -x /usr/lib/postfix/sbin/tlsproxy ] ||
	die "Postfix's tlsproxy missing (Postfix 3.4 or later wanted)"

bench_dir tls "$@"

PD_PID=""
SINK_PID=""
SRC_PIDS=""
PF_Q=""
cleanup() {
	perf_stop
	bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SINK_PORT=$(free_port)
PD_PORT=$(free_port)
PF_PORT=$(free_port)

# ------------------------------------------------------------------
# The sink: built with the project's warnings, a certificate, and a new
# process for each run.
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wstrict-prototypes \
    -Wmissing-prototypes -Wshadow -Wcast-qual -Wformat=2 \
    $(pkg-config --cflags openssl) -o "$W/bench_tlssink" \
    "$top/tests/bench/bench_tlssink.c" $(pkg-config --libs openssl) -lpthread ||
	die "cannot build bench_tlssink"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/sink.key" \
    -out "$W/sink.crt" -days 2 -subj /CN=sink.example \
    >"$W/openssl.out" 2>&1 || die "openssl req: $(cat "$W/openssl.out")"

sink_start() {
	rm -f "$W/sink.count"
	"$W/bench_tlssink" "127.0.0.1:$SINK_PORT" "$W/sink.crt" "$W/sink.key" \
	    "$W/sink.count" >"$W/sink.out" 2>&1 &
	SINK_PID=$!
	greets "$SINK_PORT" || die "bench_tlssink does not answer: $(head -c 300 "$W/sink.out")"
}
sink_stop() {
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}
# sink_counts - "msgs rcpts tls_msgs conns handshakes" so far.
sink_counts() {
	# shellcheck disable=SC2046
	set -- $(cat "$W/sink.count" 2>/dev/null)
	echo "${1:-0} ${2:-0} ${3:-0} ${4:-0} ${5:-0}"
}
sink_msgs() {
	# shellcheck disable=SC2046
	set -- $(sink_counts)
	echo "$1"
}
# sink_wait N LIMIT - until the sink has counted N messages (1: gave up
# after LIMIT seconds).
sink_wait() {
	_end=$(($(date +%s) + $2))
	while [ "$(sink_msgs)" -lt "$1" ]; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.1
	done
	return 0
}
# sink_cpu - the sink's CPU seconds so far (user + system).
sink_cpu() {
	sed 's/.*) //' "/proc/$SINK_PID/stat" 2>/dev/null |
	    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($12 + $13) / hz }'
}
# sink_check LABEL ROUND TLS - the counts of the run that just ended; a
# shortfall goes to $W/bad.LABEL.
sink_check() {
	# shellcheck disable=SC2046
	set -- "$1" "$2" "$3" $(sink_counts)
	[ "$4" -eq "$N" ] && [ "$5" -eq "$NRCPT" ] ||
		echo "round $2: the sink counted $4 messages, $5 recipients; want $N, $NRCPT" >>"$W/bad.$1"
	if [ "$3" != plain ]; then
		[ "$6" -eq "$4" ] ||
			echo "round $2: only $6 of $4 messages over TLS" >>"$W/bad.$1"
	else
		[ "$6" -eq 0 ] ||
			echo "round $2: $6 messages over TLS in a plain run" >>"$W/bad.$1"
	fi
	echo "$7/$8" >>"$W/$1.conns"
}

# ------------------------------------------------------------------
# posternd (bench_deliver.sh's template queue; pd_conf, pd_start and the
# rest in bench_lib.sh).
bench_domains "$NDOM" d
# perf_start FILE - perf record -g the scheduler and its workers (the
# children of the pid the master logs as "started sched, pid N").
PERF_PID=""
perf_start() {
	_s=$PD_SCHED
	[ -n "$_s" ] || { say "perf: no scheduler pid in the log"; return 0; }
	_i=0
	while [ "$(pgrep -P "$_s" | wc -l)" -lt 4 ] && [ $_i -lt 100 ]; do
		sleep 0.01
		_i=$((_i + 1))
	done
	mkdir -p "$(dirname "$1")"
	perf record -q -g -o "$1" -p "$(echo "$_s" $(pgrep -P "$_s") | tr ' ' ,)" \
	    >"$W/perf.out" 2>&1 &
	PERF_PID=$!
}
perf_stop() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" 2>/dev/null
	PERF_PID=""
}
# ------------------------------------------------------------------
# Postfix: our own instance (bench_lib.sh) with the TLS services, a fresh
# queue for each run.
pf_setup "$PF_PORT" "relayhost = [127.0.0.1]:$SINK_PORT" \
    "default_destination_concurrency_limit = 20" \
    "smtp_connection_cache_destinations = [127.0.0.1]:$SINK_PORT" \
    "smtp_tls_connection_reuse = yes" \
    "smtp_tls_session_cache_database = btree:$W/pf-data/smtp_scache" \
    "smtp_tls_loglevel = 1" \
    "smtp_tls_security_level = none"
cat >>"$PF_ETC/master.cf" <<EOCF
tlsmgr     unix  - - n 1000? 1 tlsmgr
tlsproxy   unix  - - n -  0 tlsproxy
EOCF

# ------------------------------------------------------------------
# The postern template queue, made once.
pd_routes "$SINK_PORT"
say "$(bench_where)," \
	"$(openssl version | cut -d ' ' -f 1-2); load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
pd_template inject_mix

# pd_run MODE ROUND - one timed posternd run (MODE plain or tls) from a
# copy of the template.
pd_run() {
	mode=$1 r=$2
	pd_copy
	sync
	if [ "$mode" = tls ]; then tls=may; else tls=none; fi
	pd_conf "$W/run.conf" "$Q" "routes_file=$ROUTES" "workers=4" \
	    "dest_concurrency=20" "smtp_tls=$tls"
	sink_start
	t0=$(now)
	pd_start "$W/run.conf" "$W/pd-run.log"
	[ -n "${TLS_PERF:-}" ] && [ "$r" -eq 1 ] && perf_start "$TLS_PERF/pd-$mode.data"
	ok=true
	sink_wait "$N" "$RUN_LIMIT" || ok=false
	drain "$RUN_LIMIT" "$t0" pd_rcpts "$W/run.conf"
	t1=$(now)
	cpu=$(sink_cpu)
	perf_stop
	pd_stop
	sink_check "pd-$mode" "$r" "$mode"
	sink_stop
	sent=$(grep -c 'status=sent' "$W/pd-run.log")
	elapsed "$t0" "$t1" >>"$W/pd-$mode.t"
	echo "$cpu" >>"$W/pd-$mode.cpu"
	$ok || echo "round $r: not done after $RUN_LIMIT s, $left recipients left" >>"$W/bad.pd-$mode"
	[ "$sent" -eq "$NRCPT" ] ||
		echo "round $r: $sent of $NRCPT recipients sent" >>"$W/bad.pd-$mode"
	grep -q 'died\|fatal' "$W/pd-run.log" &&
		echo "round $r: $(grep -m 1 'died\|fatal' "$W/pd-run.log")" >>"$W/bad.pd-$mode"
	rm -rf "$Q"
}

# pf_run MODE ROUND - one Postfix run: a fresh queue, take the mail over
# SMTP and hold it (untimed); then release and flush (timed).
pf_run() {
	mode=$1 r=$2
	case $mode in
	plain)		tls=none reuse=yes ;;
	tls)		tls=may reuse=yes ;;
	tls-noreuse)	tls=may reuse=no ;;
	esac
	postconf -c "$PF_ETC" -e "smtp_tls_security_level = $tls" \
	    "smtp_tls_connection_reuse = $reuse" || die "postconf -e failed"
	rm -f "$W/pf-data/smtp_scache.db"
	pf_start
	inject_mix "$PF_PORT"
	held=$(find "$PF_Q/hold" -type f | wc -l | tr -d ' ')
	[ "$held" -eq "$N" ] || echo "round $r: Postfix held $held of $N" >>"$W/bad.pf-$mode"
	sync
	sink_start
	t0=$(now)
	postsuper -c "$PF_ETC" -H ALL >/dev/null 2>&1
	postqueue -c "$PF_ETC" -f
	ok=true
	sink_wait "$N" "$RUN_LIMIT" || ok=false
	drain "$RUN_LIMIT" "$t0" pf_files
	t1=$(now)
	cpu=$(sink_cpu)
	sink_check "pf-$mode" "$r" "$mode"
	sink_stop
	sent=$(grep -c 'status=sent' "$W/pf-maillog")
	reused=$(grep -c 'Untrusted TLS connection established' "$W/pf-maillog")
	pf_stop
	elapsed "$t0" "$t1" >>"$W/pf-$mode.t"
	echo "$cpu" >>"$W/pf-$mode.cpu"
	$ok || echo "round $r: not done after $RUN_LIMIT s, $left queue files left" >>"$W/bad.pf-$mode"
	[ "$sent" -eq "$NRCPT" ] ||
		echo "round $r: $sent of $NRCPT recipients sent" >>"$W/bad.pf-$mode"
	[ "$mode" = plain ] || [ "$reused" -gt 0 ] ||
		echo "round $r: Postfix logged no TLS connection" >>"$W/bad.pf-$mode"
}

# A round: the four runs, in reverse order every second round.
rounds=0
round() {
	rounds=$((rounds + 1))
	if [ $((rounds % 2)) -eq 1 ]; then
		pd_run plain "$rounds"; pf_run plain "$rounds"
		pd_run tls "$rounds"; pf_run tls "$rounds"
	else
		pf_run tls "$rounds"; pd_run tls "$rounds"
		pf_run plain "$rounds"; pd_run plain "$rounds"
	fi
	say "round $rounds: s: postern plain $(tail -n 1 "$W/pd-plain.t")," \
	    "TLS $(tail -n 1 "$W/pd-tls.t"); Postfix plain $(tail -n 1 "$W/pf-plain.t")," \
	    "TLS $(tail -n 1 "$W/pf-tls.t"); load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
}
want=${TLS_ROUNDS:-5}
r_t0=$(date +%s)
round
t_round=$(($(date +%s) - r_t0))
# For comparison, once: Postfix's TLS without connection reuse (a new
# connection and a resumed session for each delivery).
if [ "${TLS_NOREUSE:-1}" != 0 ]; then
	pf_run tls-noreuse 1
	say "Postfix TLS without connection reuse: $(tail -n 1 "$W/pf-tls-noreuse.t") s," \
	    "$(rate "$(tail -n 1 "$W/pf-tls-noreuse.t")") msgs/s;" \
	    "conns/handshakes at the sink $(tail -n 1 "$W/pf-tls-noreuse.conns")"
fi
# Up to 5 rounds while the budget allows; 3 at least (a median of fewer
# says little) while they fit in HARD_LIMIT (run.sh's timeout is 1200 s).
while [ "$rounds" -lt "$want" ]; do
	end=$(($(date +%s) - t_begin + t_round + t_round / 5))
	if [ -z "${TLS_ROUNDS:-}" ] && [ "$end" -gt "$BUDGET" ] &&
	    { [ "$rounds" -ge "$MIN_ROUNDS" ] || [ "$end" -gt "$HARD_LIMIT" ]; }; then
		break
	fi
	round
done

# ------------------------------------------------------------------
# Results.
# cost A B - per round, (B - A) / N in ms (B the TLS times, A the plain).
cost() {
	paste "$1" "$2" | awk -v n="$N" '{ printf "%.4f\n", ($2 - $1) * 1000 / n }' >"$W/cost.tmp"
	median "$W/cost.tmp"
}
# cpu_per_msg CPU TIMES - the sink's CPU per message (µs) and its share
# of the run's time (%), medians.
cpu_per_msg() {
	paste "$1" "$2" | awk -v n="$N" '{ printf "%.1f\n", $1 * 1e6 / n }' >"$W/cpu.tmp"
	paste "$1" "$2" | awk '{ printf "%.1f\n", 100 * $1 / $2 }' >"$W/share.tmp"
	echo "$(median "$W/cpu.tmp") us/msg, $(median "$W/share.tmp")% of the run"
}
say "$N msgs ($NRCPT rcpts, 4 KiB) to one STARTTLS sink over reused connections; median of $rounds rounds"
for who in pd pf; do
	if [ "$who" = pd ]; then name="posternd w4"; else name="Postfix    "; fi
	pm=$(median "$W/$who-plain.t")
	tm=$(median "$W/$who-tls.t")
	printf 'tls      %s plain %5s msgs/s (%.2f s), TLS %5s msgs/s (%.2f s); TLS cost %.3f ms/msg  [plain: %s; TLS: %s; conns/handshakes at the sink: plain %s, TLS %s; sink CPU: plain %s, TLS %s]\n' \
	    "$name" "$(rate "$pm")" "$pm" "$(rate "$tm")" "$tm" \
	    "$(cost "$W/$who-plain.t" "$W/$who-tls.t")" \
	    "$(runs_of "$W/$who-plain.t")" "$(runs_of "$W/$who-tls.t")" \
	    "$(list "$W/$who-plain.conns")" "$(list "$W/$who-tls.conns")" \
	    "$(cpu_per_msg "$W/$who-plain.cpu" "$W/$who-plain.t")" \
	    "$(cpu_per_msg "$W/$who-tls.cpu" "$W/$who-tls.t")"
done
pd_t=$(rate "$(median "$W/pd-tls.t")")
pf_t=$(rate "$(median "$W/pf-tls.t")")
pd_p=$(rate "$(median "$W/pd-plain.t")")
pf_p=$(rate "$(median "$W/pf-plain.t")")
ratio=$(ratio_of "$pd_t" "$pf_t")
pratio=$(ratio_of "$pd_p" "$pf_p")
# The ratio of each round's rates too: they share the round's load.
paste "$W/pd-tls.t" "$W/pf-tls.t" | awk '{ printf "%.2f\n", $2 / $1 }' >"$W/ratios"
v=$(awk -v r="$ratio" -v w="$TARGET_RATIO" 'BEGIN { print (r >= w) ? "PASS" : "FAIL" }')
for f in "$W"/bad.*; do
	[ -s "$f" ] && v=FAIL
done
say "TLS rate posternd/Postfix ${ratio}x (per round: $(list "$W/ratios"); median $(median "$W/ratios")x)  (target >= ${TARGET_RATIO}x: $v); plain ${pratio}x"
for f in "$W"/bad.*; do
	[ -s "$f" ] && sed "s/^/tls          incomplete (${f##*/bad.}): /" "$f"
done
say "total $(($(date +%s) - t_begin)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)" \
	"(other work on the machine makes every number here lower)"
exit 0

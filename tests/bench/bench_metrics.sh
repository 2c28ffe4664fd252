#!/bin/sh
# bench_metrics.sh - does scraping /metrics slow delivery? The same
# delivery run with a scrape of /metrics every 100 ms and with none,
# alternating, in the same run.
#
# Usage: sh tests/bench/bench_metrics.sh [DIR]     (as root)
#	DIR: where the queues go, on a real disk (run.sh passes
#	$BENCH_DIR/metrics). Removed at the end.
#	POSTERN_BIN=dir     another postern/posternd (default: bin/ here)
#	METRICS_ROUNDS=n    pairs of runs (default 3)
#	METRICS_PER=n       messages per domain and kind (default 250)
#
# The queue, as bench_deliver.sh makes it: smtp-source puts 20 domains x
# PER messages x 2 kinds (1 and 5 recipients, 4 KiB) into posternd over
# SMTP with the domains held, untimed; posternd is stopped and `postern
# flush ID...` makes every recipient due. That queue is the template of
# every run. A run: a copy of the template, posternd (workers 4,
# dest_concurrency 20, metrics_listen on) started against a fresh
# smtp-sink, timed until `postern stats --json` says 0 recipients; in a
# "scrape" run a python client GETs /metrics every 100 ms from the start
# (each scrape is one queue_shape() over every live recipient: the whole
# queue at first). Runs alternate none, scrape, none, scrape ... so that a
# drift of the machine's load hits both alike. Reported: the median
# msgs/s of each and scrape/none; target >= 0.90 (the metrics process
# reads in read-only transactions and writes nothing, so what it costs is
# CPU, on a 2-core machine shared with the workers).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SRC=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
PDBIN=${POSTERN_BIN:-$top/bin}
ROUNDS=${METRICS_ROUNDS:-3}
NDOM=20
PER=${METRICS_PER:-250}
N=$((NDOM * PER * 2))
NRCPT=$((NDOM * PER * 6))
TARGET=0.90

say() { echo "metrics  $*"; }
die() { echo "metrics: $*" >&2; exit 1; }
. "$top/tests/bench/bench_lib.sh"

[ -x "$SRC" ] && [ -x "$SINK" ] || die "smtp-source/smtp-sink missing (apt-get install postfix)"
[ "$(id -u)" -eq 0 ] || die "must run as root (posternd's user, smtp-sink -u)"
[ -x "$PDBIN/posternd" ] && [ -x "$PDBIN/postern" ] ||
	die "$PDBIN/posternd or postern missing: run make"
command -v curl >/dev/null 2>&1 || die "curl missing"

bench_dir metrics "$@"

PD_PID=""
SINK_PID=""
SCR_PID=""
cleanup() {
	[ -n "$SCR_PID" ] && kill "$SCR_PID" 2>/dev/null
	[ -n "$PD_PID" ] && { term_wait "$PD_PID" 400 || kill -KILL "$PD_PID"; }
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	bench_dir_rm
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SINK_PORT=$(free_port)
PD_PORT=$(free_port)
M_PORT=$(free_port)

bench_domains "$NDOM" m
ML="metrics_listen=127.0.0.1:$M_PORT"	# in every pd_conf (bench_lib.sh)

# The template.
TPL=$W/template
pd_conf "$W/inject.conf" "$TPL" "$ML" "hold_domains=$(echo "$DOMAINS" | sed 's/^ //; s/ /,/g')"
pd_start "$W/inject.conf" "$W/pd-inject.log"
pids=""
for d in $DOMAINS; do
	for r in 1 5; do
		timeout -k 5 300 "$SRC" -s 1 -d -N -m "$PER" -r "$r" -l 4096 \
		    -f bench@client.example -t "u@$d" "127.0.0.1:$PD_PORT" \
		    >"$W/src.$d.$r" 2>&1 &
		pids="$pids $!"
	done
done
for p in $pids; do wait "$p" || die "smtp-source failed: $(cat "$W/src."* | head -c 300)"; done
pd_stop
"$PDBIN/postern" -c "$W/inject.conf" queue --json |
    sed -n 's/^{"id":"\([0-9A-Z]*\)".*/\1/p' >"$W/ids"
[ "$(wc -l <"$W/ids")" -eq "$N" ] || die "queued $(wc -l <"$W/ids") of $N messages"
xargs -n 1000 "$PDBIN/postern" -c "$W/inject.conf" flush <"$W/ids" >/dev/null 2>&1 ||
	die "postern flush failed"
rm -f "$TPL/lock.mdb" "$TPL/counters"
for d in $DOMAINS; do echo "$d [127.0.0.1]:$SINK_PORT"; done >"$W/routes"
chmod 644 "$W/routes"
say "template: $N messages, $NRCPT recipients; $(nproc) CPUs, load average $(cut -d ' ' -f 1-3 /proc/loadavg)"

# The scraper: GET /metrics every 100 ms until killed; on SIGTERM prints
# "scrapes=N failed=N bytes=N mean_ms=X".
cat >"$W/scrape.py" <<'EOPY'
import signal, sys, time, urllib.request
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
n = bad = size = 0
spent = 0.0
def done(*_):
    print("scrapes=%d failed=%d bytes=%d mean_ms=%.1f" %
          (n, bad, size // max(n - bad, 1), 1000 * spent / max(n, 1)))
    sys.stdout.flush()
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
nxt = time.monotonic()
while True:
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            size += len(r.read())
    except Exception:
        bad += 1
    n += 1
    spent += time.monotonic() - t
    nxt += 0.1
    time.sleep(max(0.0, nxt - time.monotonic()))
EOPY

# run KIND ROUND - one timed run (KIND none or scrape).
run() {
	Q=$W/q
	rm -rf "$Q"
	cp -a "$TPL" "$Q"
	pd_conf "$W/run.conf" "$Q" "$ML" "routes_file=$W/routes" workers=4 \
	    dest_concurrency=20
	"$SINK" -u postern -c "127.0.0.1:$SINK_PORT" 1000 >"$W/sink.out" 2>&1 &
	SINK_PID=$!
	greets "$SINK_PORT" || die "smtp-sink does not answer"
	t0=$(now)
	pd_start "$W/run.conf" "$W/pd-run.log"
	if [ "$1" = scrape ]; then
		wait_listen "$M_PORT" || die "nothing on metrics_listen"
		python3 "$W/scrape.py" "$M_PORT" >"$W/scrape.out" 2>&1 &
		SCR_PID=$!
	fi
	left=$(pd_rcpts "$W/run.conf")
	while [ "${left:-1}" -ne 0 ]; do
		sleep 0.2
		left=$(pd_rcpts "$W/run.conf")
		[ $(($(date +%s) - ${t0%.*})) -gt 600 ] && die "$1 run $2: not done after 600 s"
	done
	t1=$(now)
	if [ -n "$SCR_PID" ]; then
		kill "$SCR_PID"
		wait "$SCR_PID" 2>/dev/null
		SCR_PID=""
		echo "$(cat "$W/scrape.out")" >>"$W/scrapes"
	fi
	pd_stop
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
	sent=$(grep -c 'status=sent' "$W/pd-run.log")
	[ "$sent" -eq "$NRCPT" ] || die "$1 run $2: $sent of $NRCPT recipients sent"
	elapsed "$t0" "$t1" >>"$W/$1.t"
}

r=1
while [ $r -le "$ROUNDS" ]; do
	run none $r
	run scrape $r
	r=$((r + 1))
done

none=$(rate "$(median "$W/none.t")")
scr=$(rate "$(median "$W/scrape.t")")
ratio=$(awk -v a="$scr" -v b="$none" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
v=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r >= t) ? "PASS" : "FAIL" }')
printf 'metrics  delivery of %d msgs (%d rcpts), median of %d: no scrape %s msgs/s, /metrics every 100 ms %s msgs/s, ratio %sx  (target >= %sx: %s)  [none: %s; scrape: %s; scrapers: %s]\n' \
	"$N" "$NRCPT" "$ROUNDS" "$none" "$scr" "$ratio" "$TARGET" "$v" \
	"$(runs_of "$W/none.t")" "$(runs_of "$W/scrape.t")" \
	"$(tr '\n' ';' <"$W/scrapes" | sed 's/;$//')"

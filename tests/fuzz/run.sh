#!/bin/sh
# run.sh - run the libFuzzer targets, or merge what they found (make fuzz,
# make fuzz-merge; README "Fuzzing").
#
# Usage: tests/fuzz/run.sh run TARGET...
#            (FUZZ_SECONDS, FUZZ_JOBS, FUZZ_PARALLEL)
#        tests/fuzz/run.sh merge TARGET...
#
# run: each target for FUZZ_SECONDS (default 60) over its working corpus,
# build/fuzz/work/TARGET/ (the seeds of tests/fuzz/corpus/TARGET/ copied
# in first; the work directory is kept, so a later run goes on from it).
# FUZZ_JOBS > 1 runs that many processes (libFuzzer's -fork) that go on
# after a crash. FUZZ_PARALLEL=N runs N targets at a time (default 1:
# one after the other; the stats file then lists them as they end). Crashes, leaks and sanitizer reports are written to
# build/fuzz/crash/TARGET/, the log to build/fuzz/log/TARGET.log; one
# line per target (final executions, executions per second, edges, features,
# corpus files, crash files) goes to build/fuzz/stats.txt and is printed.
# Exit status 1 when a target left a crash file.
#
# merge: the working corpus into tests/fuzz/corpus/TARGET/ with -merge=1
# and -use_counters=0: only inputs that reach an edge the corpus does not
# are added (hit counts aside: fewer files), none is removed (a regression
# input stays even when it covers nothing new).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
mode=${1:-}
[ $# -gt 0 ] && shift
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
par=${FUZZ_PARALLEL:-1}
out=build/fuzz
stats=$out/stats.txt

# maxlen TARGET - the longest input worth trying: streams and messages
# are longer than a parameter or an address.
maxlen() {
	case $1 in
	smtpd_session|dsn|header_scan|reply) echo 32768 ;;
	conf|routes|users|policy|known) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

# field LOG PATTERN - the number after the last "PATTERN" in LOG.
field() {
	grep -o "$2 *[0-9]*" "$1" | tail -n 1 | grep -o '[0-9]*$'
}

run_one() {
	t=$1
	bin=$out/bin/fuzz_$t
	work=$out/work/$t
	crash=$out/crash/$t
	log=$out/log/$t.log
	tmp=$out/tmp/$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin missing (make fuzz-build)" >&2
		return 1
	fi
	mkdir -p "$work" "$crash" "$out/log" "$tmp"
	# The seeds, each time: a new one joins the work directory.
	if [ -d "tests/fuzz/corpus/$t" ]; then
		for f in "tests/fuzz/corpus/$t"/*; do
			[ -f "$f" ] && [ ! -e "$work/${f##*/}" ] && cp "$f" "$work/"
		done
	fi
	before=$(ls "$crash" | wc -l)
	set -- -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$crash/" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$(maxlen "$t")"
	if [ -f "tests/fuzz/dict/$t.dict" ]; then
		set -- "$@" -dict="tests/fuzz/dict/$t.dict"
	fi
	if [ "$jobs" -gt 1 ]; then
		set -- "$@" -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 \
		    -ignore_timeouts=1
	fi
	echo "fuzz: $t for ${secs}s ($jobs job(s)), log $log"
	FUZZ_TMP=$tmp ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$bin" "$@" "$work" >"$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	execs=$(field "$log" "stat::number_of_executed_units:")
	eps=$(field "$log" "stat::average_exec_per_sec:")
	if [ -z "$execs" ]; then	# fork mode: its last status line
		execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
		eps=$(field "$log" "exec/s:")
	fi
	cov=$(field "$log" "cov:")
	ft=$(field "$log" "ft:")
	files=$(ls "$work" | wc -l)
	crashes=$(ls "$crash" | wc -l)
	printf '%-14s %12s %8s %7s %7s %7s %7s\n' "$t" "${execs:-?}" \
	    "${eps:-?}" "${cov:-?}" "${ft:-?}" "$files" \
	    "$((crashes - before))" >>"$stats"
	if [ "$crashes" -gt "$before" ] || { [ "$rc" -ne 0 ] &&
	    [ "$jobs" -le 1 ]; }; then
		echo "fuzz: $t: exit $rc, new files in $crash:" >&2
		ls -t "$crash" | head -n 5 >&2
		grep -m 3 -E 'ERROR: (Address|Leak|libFuzzer)|runtime error' \
		    "$log" >&2
		return 1
	fi
	return 0
}

merge_one() {
	t=$1
	bin=$out/bin/fuzz_$t
	work=$out/work/$t
	dst=tests/fuzz/corpus/$t
	[ -d "$work" ] || { echo "merge: $t: no $work (make fuzz first)"; return 0; }
	mkdir -p "$dst" "$out/tmp/$t"
	n0=$(ls "$dst" | wc -l)
	FUZZ_TMP=$out/tmp/$t "$bin" -merge=1 -use_counters=0 \
	    -max_len="$(maxlen "$t")" \
	    "$dst" "$work" >"$out/log/$t.merge.log" 2>&1 ||
	    { echo "merge: $t failed, see $out/log/$t.merge.log"; return 1; }
	rm -rf "$out/tmp/$t"
	echo "merge: $t: $n0 -> $(ls "$dst" | wc -l) files in $dst"
}

case $mode in
run)
	mkdir -p "$out"
	printf '%-14s %12s %8s %7s %7s %7s %7s\n' target execs exec/s cov \
	    ft corpus crashes >"$stats"
	rm -f "$out"/bad.*
	# Group g of FUZZ_PARALLEL takes every par-th target, in order.
	g=0
	while [ "$g" -lt "$par" ]; do
		(
			i=0
			for t in "$@"; do
				if [ $((i % par)) -eq "$g" ]; then
					run_one "$t" || echo "$t" >>"$out/bad.$g"
				fi
				i=$((i + 1))
			done
		) &
		g=$((g + 1))
	done
	wait
	cat "$stats"
	bad=$(cat "$out"/bad.* 2>/dev/null | tr '\n' ' ')
	rm -f "$out"/bad.*
	[ -z "$bad" ] || { echo "fuzz: crashes or errors in: $bad" >&2; exit 1; }
	;;
merge)
	mkdir -p "$out/log"
	for t in "$@"; do
		merge_one "$t"
	done
	;;
*)
	echo "usage: run.sh run|merge TARGET..." >&2
	exit 2
	;;
esac

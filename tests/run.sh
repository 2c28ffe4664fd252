#!/bin/sh
# run.sh - run every unit and integration test; end with "N passed, N failed".
#
# Usage: tests/run.sh BUILD_DIR   (build/asan: unit/ and bin/ below it)
#
# Unit test binaries and integration case scripts print "ok NAME" or
# "not ok NAME" lines; they are counted. A program that ends badly without
# saying "not ok" (a crash, a sanitizer report, a timeout) counts as one
# failure of its own. Each program is bounded by `timeout`.
set -u
build=${1:-build/asan}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
export POSTERN_BIN="$build/bin"
export POSTERN_TOP="$top"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
unset POSTERN_CONF

passed=0
failed=0
failures=""
log=$(mktemp /tmp/postern-test.XXXXXX)

# run_one NAME TIMEOUT CMD... - run, count its ok/not ok lines.
run_one() {
	name=$1
	limit=$2
	shift 2
	timeout -k 10 "$limit" "$@" >"$log" 2>&1
	rc=$?
	ok=$(grep -c '^ok ' "$log")
	nok=$(grep -c '^not ok ' "$log")
	passed=$((passed + ok))
	failed=$((failed + nok))
	if [ "$nok" -gt 0 ] || [ "$rc" -ne 0 ]; then
		if [ "$nok" -eq 0 ]; then
			failed=$((failed + 1))
			echo "not ok $name (exit $rc)"
		fi
		failures="$failures $name"
		sed 's/^/    | /' "$log" | tail -n 60
	fi
	grep -E '^(ok|not ok) ' "$log" | sed "s|^|[$name] |"
}

for t in "$build"/unit/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" 300 "$t"
done
for c in "$top"/tests/integ/cases/*.sh; do
	[ -f "$c" ] || continue
	run_one "$(basename "$c" .sh)" 600 sh "$c"
done
rm -f "$log"
[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

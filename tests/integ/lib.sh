# lib.sh - helpers for the integration cases (sourced by tests/integ/cases/*.sh).
#
# Every case gets a scratch directory $T (removed at exit) with a config
# file $T/postern.conf whose queue is $T/queue, and $P = the postern binary
# under test. Assertions print "ok NAME" or "not ok NAME: why"; tests/run.sh
# counts them. Servers a case starts are registered with `reap PID` and
# killed by PID at exit, never by name.
set -u
P="$POSTERN_BIN/postern"
T=$(mktemp -d /tmp/postern-integ.XXXXXX)
chmod 755 "$T"		# posternd runs as the postern user
export POSTERN_CONF="$T/postern.conf"
REAP=""
cleanup() {
	for pid in $REAP; do
		kill "$pid" 2>/dev/null
	done
	for pid in $REAP; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
reap() { REAP="$REAP $1"; }

# conf KEY=VALUE... - write the config: queue in $T/queue plus the keys.
conf() {
	{
		echo "queue_dir = $T/queue"
		echo "myhostname = mx.test.example"
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
	} >"$T/postern.conf"
}
conf

ok() { echo "ok $1"; }
notok() { echo "not ok $1: $2"; }

# check NAME CMD... - the command must succeed.
check() {
	name=$1
	shift
	if "$@" >"$T/out" 2>&1; then ok "$name"; else
		notok "$name" "failed: $* -> $(head -c 300 "$T/out")"; fi
}

# expect_rc NAME RC CMD... - the command must exit with RC.
expect_rc() {
	name=$1
	want=$2
	shift 2
	"$@" >"$T/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$name"; else
		notok "$name" "exit $got, want $want: $(head -c 300 "$T/out")"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		notok "$1" "got '$2', want '$3'"; fi
}

# expect_grep NAME PATTERN FILE
expect_grep() {
	if grep -q -- "$2" "$3"; then ok "$1"; else
		notok "$1" "no '$2' in $(head -c 300 "$3")"; fi
}

# qjson EXPR - evaluate a Python expression over the queue's JSON lines,
# bound to `msgs` (a list of objects).
qjson() {
	"$P" queue --json | python3 -c "
import json, sys
msgs = [json.loads(l) for l in sys.stdin if l.strip()]
print($1)"
}

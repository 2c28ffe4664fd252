#!/bin/sh
# run.sh - build and run the benchmarks; `make bench` calls it.
#
# Usage: sh tests/bench/run.sh        (from the top of the checkout)
#	BENCH_DIR=/some/disk/dir sh tests/bench/run.sh
#	BENCH_ONLY="tls deliver" sh tests/bench/run.sh   (those sections;
#	make bench BENCH="tls deliver" does the same)
#
# The programs link the release objects (build/rel/), so `make bin/postern`
# (or `make bench`) must have built them from the sources as they are now:
# objects older than a header would give the benchmark another struct
# layout than the library, so that is refused. Each section builds its
# program with the Makefile's REL_CFLAGS into a scratch directory, runs it
# under `timeout` and prints its lines; queues go below BENCH_DIR, a
# directory on a real disk (/tmp unless /tmp is tmpfs, then
# build/benchtmp), and everything is removed at the end. Target lines say
# PASS or FAIL and are counted, but only a program that fails (or runs out
# of time) makes the exit status non-zero: speed depends on the machine.
#
# Time: each section has a `timeout`; enqueue stops a run at 20 s and
# makes 5 rounds of its 4 cases only when the first round took under 30 s
# (else 3), flush builds its queues again only while the 1M one takes
# under 60 s; the whole run stays under ~10 minutes on a 2-core machine
# (about a minute here). A new benchmark (receive, deliver) is one more
# bench_<name>.c and one more `section` line at the end.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

objs="build/rel/smtp/*.o build/rel/queue/*.o"
# What the objects link with: the Makefile's PKGS (libidn2 and libcurl
# too since issue 14).
# shellcheck disable=SC2016
pkgs=$(make -s --no-print-directory --eval 'bench-print-pkgs: ; @echo $(PKGS)' \
    bench-print-pkgs 2>/dev/null) || pkgs=""
[ -n "$pkgs" ] || pkgs="lmdb libcares openssl libmicrohttpd libidn2 libcurl"
# shellcheck disable=SC2086
libs="$(pkg-config --libs $pkgs) -lcrypt -lpthread"

# The objects must exist and be newer than every header and their source.
stale=""
for o in $objs; do
	if [ ! -f "$o" ]; then
		echo "bench: $o missing: run make bin/postern first" >&2
		exit 1
	fi
	src=${o#build/rel/}
	src=${src%.o}.c
	[ -f "$src" ] && stale="$stale $(find "$src" -newer "$o")"
done
# shellcheck disable=SC2012,SC2086
oldest=$(ls -tr $objs | head -n 1)
stale="$stale $(find smtp queue -name '*.h' -newer "$oldest")"
if [ -n "$(echo "$stale" | tr -d ' ')" ]; then
	# shellcheck disable=SC2086
	echo "bench: objects in build/rel are older than:" $stale >&2
	echo "bench: run make bin/postern first" >&2
	exit 1
fi

# The Makefile's own flags, so the benchmark is built like the objects.
# shellcheck disable=SC2016
cflags=$(make -s --no-print-directory \
    --eval 'bench-print-cflags: ; @echo $(REL_CFLAGS) $(INC_tools)' bench-print-cflags \
    2>/dev/null) || cflags=""
[ -n "$cflags" ] || cflags="-std=c17 -D_GNU_SOURCE -g -Wall -Wextra -Werror \
-Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wcast-qual -Wformat=2 \
-Ismtp -Iqueue -O2"
cflags="$cflags -Itests/bench $(pkg-config --cflags lmdb libcares openssl)"

# Queues on a disk: an fsync on tmpfs costs nothing.
madetmp=false
if [ -z "${BENCH_DIR:-}" ]; then
	case $(stat -f -c %T /tmp 2>/dev/null) in
	tmpfs|ramfs|"")
		[ -d build/benchtmp ] || madetmp=true
		BENCH_DIR=$top/build/benchtmp/run.$$ ;;
	*)
		BENCH_DIR=/tmp/postern-bench.$$ ;;
	esac
fi
bin=$(mktemp -d "${TMPDIR:-/tmp}/postern-bench-bin.XXXXXX") || exit 1
cleanup() {
	rm -rf "$BENCH_DIR" "$bin"
	if $madetmp; then
		rmdir build/benchtmp 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BENCH_DIR" || exit 1

failed=0
failures=""
out="$bin/out"

# section NAME LIMIT PROGRAM [ARGS...] - build tests/bench/PROGRAM.c (or,
# for PROGRAM.sh, run that script with sh), run it for at most LIMIT
# seconds, show its output as it comes, count the targets it met and
# missed.
section() {
	name=$1
	limit=$2
	prog=$3
	shift 3
	# BENCH_ONLY="flush receive" runs just those sections.
	case " ${BENCH_ONLY:-$name} " in
	*" $name "*) ;;
	*) return ;;
	esac
	echo "== $name =="
	# A shell benchmark (PROGRAM.sh) is run with sh, not built.
	case $prog in
	*.sh) run="sh tests/bench/$prog" ;;
	*)
		run="$bin/$prog"
		# shellcheck disable=SC2086
		if ! cc $cflags -o "$bin/$prog" "tests/bench/$prog.c" \
		    tests/bench/bench_util.c $objs $libs; then
			echo "bench: $name: build failed"
			failed=$((failed + 1))
			failures="$failures $name"
			return
		fi ;;
	esac
	start=$(date +%s)
	{
		# shellcheck disable=SC2086
		timeout -k 10 "$limit" $run "$@" 2>&1
		echo $? >"$bin/rc"
	} | tee "$out"
	rc=$(cat "$bin/rc")
	if [ "$rc" -ne 0 ]; then
		[ "$rc" -eq 124 ] &&
		    echo "bench: $name: timed out after ${limit} s"
		echo "bench: $name: exit status $rc"
		failed=$((failed + 1))
		failures="$failures $name"
	fi
	tpass=$((tpass + $(grep -c 'target.*: PASS' "$out")))
	tfail=$((tfail + $(grep -c 'target.*: FAIL' "$out")))
	echo "   ($name: $(($(date +%s) - start)) s)"
	echo
}

tpass=0
tfail=0
dev=$(df -P "$BENCH_DIR" | awk 'NR == 2 { print $1 }')
echo "bench: queues in $BENCH_DIR (on $dev), $(nproc) CPUs"
echo
section enqueue 330 bench_enqueue "$BENCH_DIR/enqueue"
section flush 240 bench_flush "$BENCH_DIR/flush"
section receive 540 bench_receive.sh "$BENCH_DIR/receive"
section deliver 720 bench_deliver.sh "$BENCH_DIR/deliver"
section bounce 600 bench_bounce.sh "$BENCH_DIR/bounce"
section etrn 900 bench_etrn.sh "$BENCH_DIR/etrn"
section inject 600 bench_inject.sh "$BENCH_DIR/inject"
section metrics 600 bench_metrics.sh "$BENCH_DIR/metrics"
section tls 1200 bench_tls.sh "$BENCH_DIR/tls"
# Further sections (receive, deliver) go here.

echo "bench: targets $tpass met, $tfail missed;" \
    "$failed program(s) failed${failures:+:$failures}"
[ "$failed" -eq 0 ]

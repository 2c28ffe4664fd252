# 850-fuzz-replay: every file of every fuzz corpus (tests/fuzz/corpus/
# TARGET/) goes through its target once more, in the ASan + UBSan build
# (build/asan/fuzz/replay_TARGET, made by make asan with
# tests/fuzz/replay_main.c): the seeds and every input that once crashed,
# leaked or tripped UBSan are regression tests. One check per target: its
# replay ran every file and ended cleanly (a sanitizer report or an
# abort of a harness check ends it otherwise). A target of the Makefile's
# FUZZ_ALL without a replay program or without a corpus fails too.
. "$POSTERN_TOP/tests/integ/lib.sh"

FZ="$POSTERN_BIN/../fuzz"
CORPUS="$POSTERN_TOP/tests/fuzz/corpus"
targets=$(sed -n '/^FUZZ_ALL/,/[^\\]$/p' "$POSTERN_TOP/Makefile" |
    sed 's/^FUZZ_ALL *= *//; s/\\$//')

if [ -z "$targets" ]; then
	notok fuzz_targets_listed "no FUZZ_ALL in the Makefile"
	exit 1
fi
for t in $targets; do
	bin="$FZ/replay_$t"
	if [ ! -x "$bin" ]; then
		notok "fuzz_replay_$t" "$bin missing (make asan)"
		continue
	fi
	n=$(ls "$CORPUS/$t" 2>/dev/null | wc -l)
	if [ "$n" -eq 0 ]; then
		notok "fuzz_replay_$t" "no corpus in $CORPUS/$t"
		continue
	fi
	if FUZZ_TMP="$T" timeout 120 "$bin" "$CORPUS/$t" >"$T/out" 2>&1 &&
	    grep -q "^replayed $n files$" "$T/out"; then
		ok "fuzz_replay_$t ($n files)"
	else
		notok "fuzz_replay_$t" "$(grep -m 3 -E \
		    'ERROR|runtime error|fuzz:|replay:|Abort' "$T/out" |
		    tr '\n' ' ')"
		tail -n 30 "$T/out" | sed 's/^/    /'
	fi
done

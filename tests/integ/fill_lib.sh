# fill_lib.sh - what 800-disk-full.sh and 805-map-full.sh share: filling
# the queue with fill_smtp.py (held mail for hold.example), and the checks
# of delivery while it was full (deliver_fail_srv.py --dump in $T/dump,
# messages r-N@fill.test, the refused ones d-N@fill.test). Sourced after
# lib.sh; $SMTP_PORT is the daemon's port when a function runs.
FILL="$POSTERN_TOP/tests/integ/fill_smtp.py"

# alive PID - the process runs.
alive() { kill -0 "$1" 2>/dev/null; }
# fill OUTDIR TAG MAX - send until 3 refusals in a row; the summary in
# $T/TAG.sum.
fill() {
	"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$1" "$2" \
	    rcpt@hold.example "$3" >"$T/$2.sum" 2>&1
}
# sumf TAG FIELD - a field of the fill summary.
sumf() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$T/$1.sum"; }
# delete_held - delete the fillers (held for hold.example).
delete_held() {
	"$P" delete $(qjson "' '.join(m['id'] for m in msgs if any(r['address'] == 'rcpt@hold.example' for r in m['recipients']))") >"$T/del.out" 2>&1
}
# qempty - the queue holds no message.
qempty() { [ "$(qjson 'len(msgs)' 2>/dev/null)" = 0 ]; }

# etrn.py PORT DOMAIN - "CODE ENHANCED NOOPCODE" of an ETRN and a NOOP.
cat >"$T/etrn.py" <<'EOPY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("site.test")
code, text = s.docmd("ETRN", sys.argv[2])
noop, _ = s.noop()
s.quit()
print(code, text.decode().split(" ")[0], noop)
EOPY

# srv_mids - the Message-IDs the server accepted (one a line, repeats
# kept).
srv_mids() {
	cat "$T"/dump/*.eml 2>/dev/null |
	    sed -n 's/^Message-ID: <\(r-[0-9]*\)@fill.test>.*/\1/p'
}
# dsn_for - for each DSN the server took, the Message-IDs of the messages
# it reports.
dsn_for() {
	for f in "$T"/dump/*.env; do
		grep -q '^from <>' "$f" && grep -h -o "d-[0-9]*@fill.test" "${f%.env}.eml" | sort -u
	done
}
# expect_converged NAME DOMAIN - ETRN for DOMAIN until the queue is empty
# (what could not be recorded waits for its site again once its lease is
# over), 10 rounds at most.
expect_converged() {
	for i in 1 2 3 4 5 6 7 8 9 10; do
		"$PY" "$T/etrn.py" "$SMTP_PORT" "$2" >/dev/null 2>&1
		until_ok 40 qempty && break
	done
	if qempty; then ok "$1"; else
		notok "$1" "$(qjson 'len(msgs)') messages left"; fi
}
# expect_counts_zero NAME - `postern stats` counts no message and no
# recipient.
expect_counts_zero() {
	"$P" stats --json >"$T/stats.json"
	expect_eq "$1" "$("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s.get("messages"), s.get("recipients"))' "$T/stats.json")" "0 0"
}
# expect_one_dsn_each NAME - one DSN for each of d-0..d-2.
expect_one_dsn_each() {
	expect_eq "$1" "$(dsn_for | sort | uniq -c | awk '{print $1 "x" $2}' | paste -sd' ')" \
	    "1xd-0@fill.test 1xd-1@fill.test 1xd-2@fill.test"
}

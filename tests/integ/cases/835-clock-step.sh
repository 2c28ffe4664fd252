# 835-clock-step: the wall clock stepped by an hour, back and forth, under
# load (issue 13).
#
# posternd and postern run under libfaketime (Debian faketime) with a
# control file read at every call (FAKETIME_NO_CACHE), so the test moves
# their wall clock while they run; CLOCK_MONOTONIC is left alone
# (FAKETIME_DONT_FAKE_MONOTONIC), as a real step (date -s, NTP) leaves it.
# Routes send lease.test to sink A (127.0.0.2) and load.test to sink B
# (127.0.0.3), both tests/integ/deliver_fail_srv.py.
#
# 1. Leases: two messages are out, their final dots unanswered (sink A
#    stalls); the clock jumps an hour ahead, far past their leases
#    (lease_time 5m). The scheduler must not take them again: no second
#    session for them, and each arrives once when sink A answers.
# 2. Load: 60 messages stream to load.test, every third recipient to a
#    mailbox sink B always answers 451; meanwhile the clock steps back an
#    hour, forward, back. Every other recipient arrives exactly once; the
#    451 ones are all still queued (deferred), none lost or delivered; and
#    none was tried in a storm (a handful of RCPTs each in the whole run).
# 3. Dates: at +1h a message's Received header and a DSN's Date carry the
#    wall clock (+1h), not the time the daemon started with.
. "$POSTERN_TOP/tests/integ/lib.sh"

FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
if [ ! -r "$FT" ]; then
	notok faketime_installed "no $FT (tools/install-deps.sh test installs faketime)"
	exit 1
fi
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"

# Wrappers: posternd and postern with the faked wall clock.
echo "+0" >"$T/faketime"
chmod 644 "$T/faketime"
mkdir "$T/bin"
for b in posternd postern; do
	cat >"$T/bin/$b" <<EOF
#!/bin/sh
export LD_PRELOAD=$FT FAKETIME_TIMESTAMP_FILE=$T/faketime FAKETIME_NO_CACHE=1
export FAKETIME_DONT_FAKE_MONOTONIC=1
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "$POSTERN_BIN/$b" "\$@"
EOF
	chmod 755 "$T/bin/$b"
done
REAL_BIN=$POSTERN_BIN
POSTERN_BIN=$T/bin
P=$T/bin/postern
# clock OFFSET - set the faked wall clock ("+0", "+1h", "-1h").
clock() { echo "$1" >"$T/faketime.new" && mv "$T/faketime.new" "$T/faketime"; }

SPA=$(free_port)
SPB=$(free_port)
mkdir -p "$T/a" "$T/b"
"$PY" "$SRV" "$SPA" "$T/a.log" --addr 127.0.0.2 --stall-dot --ctrl "$T/go" \
	--dump "$T/a" >"$T/a.out" 2>&1 &
reap $!
"$PY" "$SRV" "$SPB" "$T/b.log" --addr 127.0.0.3 --temp tmp --bad bad \
	--dump "$T/b" >"$T/b.out" 2>&1 &
reap $!
wait_listen "$SPA" 127.0.0.2 || notok sink_a_start "$(cat "$T/a.out")"
wait_listen "$SPB" 127.0.0.3 || notok sink_b_start "$(cat "$T/b.out")"
cat >"$T/routes" <<EOF
lease.test	[127.0.0.2]:$SPA
load.test	[127.0.0.3]:$SPB
EOF
chmod 644 "$T/routes"
start_posternd "routes_file=$T/routes" "relay_domains=lease.test load.test" \
	lease_time=5m min_backoff=10s max_backoff=20s workers=6 || exit 1

# send FIRST LAST SPACING FMT - messages FIRST..LAST, message i to
# FMT % i (a Python format), from s@load.test, SPACING seconds apart.
send() {
	"$PY" - "$SMTP_PORT" "$@" <<'EOPY' >>"$T/send.out" 2>&1
import smtplib, sys, time
port, first, last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
gap, fmt = float(sys.argv[4]), sys.argv[5]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("outside.example")
for i in range(first, last + 1):
    to = eval(fmt) % i if fmt.startswith("(") else fmt % i
    body = "From: <s@load.test>\r\nTo: <%s>\r\nSubject: %d\r\n\r\nm\r\n" % (to, i)
    s.sendmail("s@load.test", [to], body)
    time.sleep(gap)
s.quit()
EOPY
}
# at_sink LOG ADDR - messages the sink accepted for ADDR.
at_sink() {
	grep -c -E "^MSG [0-9]+ (.* )?$2( |\$)" "$1" 2>/dev/null || true
}
stalls() { grep -c '^STALL ' "$T/a.log" 2>/dev/null || true; }

# ---- 1. Leases across a forward step.
# One at a time: two claimed together would go out as one worker's batch.
send 1 1 0 "l%d@lease.test"
poll_for 20 eval '[ "$(stalls)" -ge 1 ]'
send 2 2 0 "l%d@lease.test"
if poll_for 20 eval '[ "$(stalls)" -ge 2 ]'; then ok lease_both_out; else
	notok lease_both_out "$(cat "$T/a.log"; tail -n 5 "$T/posternd.log")"; fi
clock "+1h"
# Whatever would take them again has 4 scheduler ticks to do it.
poll_for 4 eval '[ "$(stalls)" -gt 2 ]'
expect_eq lease_not_taken_again "$(stalls)" 2
: >"$T/go"
poll_for 20 eval '[ -z "$(qstates "lease\\.test")" ]'
expect_eq lease_l1_once "$(at_sink "$T/a.log" 'l1@lease\.test')" 1
expect_eq lease_l2_once "$(at_sink "$T/a.log" 'l2@lease\.test')" 1
expect_grep lease_step_logged 'wall clock stepped forward by 36[0-9][0-9] s' "$T/posternd.log"

# ---- 2. Load while the clock steps back, forward, back.
M=60
send 1 "$M" 0.05 '("tmp%d@load.test" if i % 3 == 0 else "u%d@load.test")' &
SEND_PID=$!
reap "$SEND_PID"
poll_for 10 eval '[ "$(grep -c "^RCPT " "$T/b.log")" -ge 10 ]'
clock "+0"
poll_for 10 eval '[ "$(grep -c "^RCPT " "$T/b.log")" -ge 25 ]'
clock "+1h"
poll_for 10 eval '[ "$(grep -c "^RCPT " "$T/b.log")" -ge 40 ]'
clock "+0"
MARK=$(wc -l <"$T/b.log")
wait "$SEND_PID"
T0=$(now_ms)
# all_u - every u<i> at sink B.
all_u() {
	[ "$(grep -c -E '^MSG [0-9]+ u[0-9]+@load\.test$' "$T/b.log")" -ge $((M - M / 3)) ]
}
poll_for 30 all_u
echo "# all u* delivered $(($(now_ms) - T0)) ms after the last step"
bad=""
i=1
while [ "$i" -le "$M" ]; do
	if [ $((i % 3)) -ne 0 ]; then
		n=$(at_sink "$T/b.log" "u$i@load\.test")
		[ "$n" = 1 ] || bad="$bad u$i:${n}x"
	fi
	i=$((i + 1))
done
if [ -z "$bad" ]; then ok load_each_once; else notok load_each_once "$bad"; fi
# The 451 ones: deferred by the +1h clock for 10 to 20 s, then stepped
# back an hour. Each is tried again within max_backoff and a bit, not an
# hour later (the scheduler moves what the old clock timed).
retried_after_step() {
	[ "$(tail -n +$((MARK + 1)) "$T/b.log" | grep '^RCPT <tmp' | sort -u | wc -l)" -ge $((M / 3)) ]
}
if poll_for 40 retried_after_step; then ok load_tmp_retried_after_back_step; else
	notok load_tmp_retried_after_back_step "$(tail -n +$((MARK + 1)) "$T/b.log" | grep '^RCPT <tmp' | sort -u | wc -l) of $((M / 3)); $(grep 'stepped' "$T/posternd.log")"; fi
echo "# every 451 recipient tried again $(($(now_ms) - T0)) ms after the last step"
expect_eq load_tmp_all_queued "$(qstates '^tmp[0-9]+@load\.test')" "deferred:$((M / 3))"
expect_eq load_tmp_none_delivered "$(grep -c -E '^MSG [0-9]+ .*tmp' "$T/b.log")" 0
max=$(grep '^RCPT <tmp' "$T/b.log" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $1 }')
echo "# most RCPTs for one 451 recipient: $max (in $(($(now_ms) - T0 + 15000)) ms or so, 3 clock steps)"
if [ "${max:-0}" -ge 1 ] && [ "$max" -le 4 ]; then ok load_no_retry_storm; else
	notok load_no_retry_storm "$max tries: $(grep '^RCPT <tmp' "$T/b.log" | sort | uniq -c | sort -rn | head -n 3)"; fi
left=$(qstates 'load\.test')
expect_eq load_accounted "$left" "deferred:$((M / 3))"

# ---- 3. Dates follow the wall clock.
clock "+1h"
send 1 1 0 "d%d@load.test"
send 1 1 0 "bad%d@load.test"
dsn_at_b() { grep -l -x -F 'to <s@load.test>' "$T"/b/*.env 2>/dev/null | head -n 1; }
poll_for 20 eval '[ "$(at_sink "$T/b.log" "d1@load\.test")" -ge 1 ] && [ -n "$(dsn_at_b)" ]'
dfile=$(grep -l -x -F 'to <d1@load.test>' "$T"/b/*.env 2>/dev/null | head -n 1)
dsn=$(dsn_at_b)
# hdr_offset EML HEADER - that header's date minus the real time, in s.
hdr_offset() {
	"$PY" - "$1" "$2" <<'EOPY'
import email, email.utils, sys, time
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
v = m.get(sys.argv[2], "")
if sys.argv[2] == "Received":
    v = v.rsplit(";", 1)[-1]
d = email.utils.parsedate_to_datetime(v.strip())
print(int(d.timestamp() - time.time()))
EOPY
}
off=$(hdr_offset "${dfile%.env}.eml" Received 2>&1)
if [ "$off" -ge 3500 ] 2>/dev/null && [ "$off" -le 3700 ]; then ok received_wall_clock; else
	notok received_wall_clock "offset $off s: $(grep -m 1 -A 1 '^Received' "${dfile%.env}.eml")"; fi
off=$(hdr_offset "${dsn%.env}.eml" Date 2>&1)
if [ "$off" -ge 3500 ] 2>/dev/null && [ "$off" -le 3700 ]; then ok dsn_date_wall_clock; else
	notok dsn_date_wall_clock "offset $off s: $(grep -m 1 '^Date' "${dsn%.env}.eml")"; fi
expect_grep back_step_logged 'wall clock stepped back by 36[0-9][0-9] s: [1-9][0-9]* waiting recipients moved' "$T/posternd.log"
if grep -q 'died\|AddressSanitizer\|runtime error' "$T/posternd.log"; then
	notok nothing_crashed "$(grep -m 3 'died\|AddressSanitizer\|runtime error' "$T/posternd.log")"
else ok nothing_crashed; fi
stop_posternd
POSTERN_BIN=$REAL_BIN

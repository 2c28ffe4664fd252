# 815-peer-client: posternd's SMTP server (and its ODMR listener) against
# clients that misbehave (tests/integ/peer_client.py), while a client that
# behaves (127.0.0.3, "the probe") sends HELPs and a message.
#
# Each client has its own 127.0.0.x, none in mynetworks (so that the
# per-address limit holds for all of them); mail is for dest.example (a
# relay domain, held: nothing is delivered). Small limits: max_connections
# 100, max_connections_per_ip 10, command_timeout 4 s, data_timeout 5 s,
# stress_timeout 3 s, max_errors 10, max_recipients 100,
# junk_command_limit 5. Checked:
#   1. 2,000 connections at once from one address: 10 greeted, 1,990 get
#      421 (too many connections from it), none is reset or left silent;
#      the probe is greeted at once, its HELPs answered within 500 ms, its
#      message queued; the 10 are cut by the command timeout (421).
#   2. 2,000 connections at once from 200 addresses: max_connections
#      greeted, the rest 421; stress mode is logged and cuts the 100 at
#      stress_timeout; the probe, refused at first, is greeted within 8 s.
#   3. One byte a second: a command line that never ends is cut at
#      command_timeout, a message at data_timeout (from the 354), whole
#      NOOPs (one every 1.5 s, each inside the timeout) once past
#      junk_command_limit and max_errors; each with 421 and a log line;
#      meanwhile the probe as in 1.
#   4. 10,000 commands in one write: NOOPs (554 5.5.0, improper
#      pipelining),
#      RCPTs (100 taken, then 452s until max_errors: 421), RSETs past
#      junk_command_limit (421), with and without a final QUIT; the RSETs
#      and NOOPs against odmr_listen too.
#   5. (A second posternd, junk_command_limit = 0.) 10,000 RSETs and a
#      QUIT: all answered; 1,000,000 RSETs from a client that never reads,
#      on both ports: the server stops reading at 64 KB of waiting
#      replies, and the command timeout ends the session (421).
# For each part the SMTP listener's VmRSS (sampled every 50 ms) grows less
# than the bound printed, the log says what happened to whom, and the
# listener is still the same process at the end.
. "$POSTERN_TOP/tests/integ/lib.sh"

CLI="$POSTERN_TOP/tests/integ/peer_client.py"
RSS="$POSTERN_TOP/tests/integ/peer_rss.py"

# 2,000 connections of the client's and as many of the server's, in this
# shell's processes: raise the soft limit when it is lower.
need=4500
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need ]; then
	ulimit -n $need 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
fi
nofile=$(ulimit -n)
echo "# open files: soft limit $nofile"
if [ "$nofile" = unlimited ] || [ "$nofile" -ge $need ]; then ok fd_limit
else notok fd_limit "ulimit -n is $nofile, and cannot be raised to $need"; fi

# Under ASan a freed block waits in quarantine (256 MB of them) before it
# is used again: every refused connection would add its session to the
# RSS. A small quarantine makes the RSS show what is live.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"

printf 'pw1\n' | "$P" passwd site1 dest.example >"$T/users"
chown postern "$T/users" 2>/dev/null
chmod 600 "$T/users"
OP=$(free_port)
start_posternd "users_file=$T/users" "odmr_listen=127.0.0.1:$OP" \
	relay_domains=dest.example hold_domains=dest.example \
	mynetworks=127.0.0.250/32 max_connections=100 \
	max_connections_per_ip=10 command_timeout=4s data_timeout=5s \
	stress_timeout=3s max_errors=10 max_recipients=100 \
	junk_command_limit=5 || exit 1
until_ok 100 listening "$OP" || notok odmr_listening "nothing on $OP"
LPID=$(smtpd_pid)
echo "# smtpd pid $LPID"

# val KEY FILE - a KEY=VALUE of a client's results.
val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
cli() { _o=$1; _src=$2; shift 2; "$PY" "$CLI" "$T/$_o" "$SMTP_PORT" "$_src" "$@"; }
ocli() { _o=$1; _src=$2; shift 2; "$PY" "$CLI" "$T/$_o" "$OP" "$_src" "$@"; }
# rss_start NAME / rss_stop NAME BOUND_KB - the listener's memory over a part.
rss_start() {
	rm -f "$T/rss.stop"
	"$PY" "$RSS" "$T/rss.$1" "$T/rss.stop" "$LPID" &
	RSS_PID=$!
	reap $RSS_PID
	sleep 0.2
}
rss_stop() {
	touch "$T/rss.stop"
	until_ok 50 test -s "$T/rss.$1"
	wait $RSS_PID 2>/dev/null
	_g=$(sed -n 's/^growth //p' "$T/rss.$1")
	echo "# $1: listener RSS $(sed -n "s/^$LPID //p" "$T/rss.$1") kB (first, peak), growth ${_g:-?} kB, bound $2 kB"
	if [ -n "$_g" ] && [ "$_g" -lt "$2" ]; then ok "$1_memory_bounded"
	else notok "$1_memory_bounded" "grew ${_g:-?} kB"; fi
}
# probe_ok PART FILE - the probe was served: HELPs fast, message queued.
probe_ok() {
	_rtt=$(val max_rtt_ms "$2")
	echo "# $1: probe $(tr '\n' ' ' <"$2")"
	expect_eq "$1_probe_greeted" "$(val greeting "$2" | cut -c 1-3)" 220
	if [ -n "$_rtt" ] && [ "$_rtt" -lt 500 ] && [ "$(val noops "$2")" -ge 5 ]; then
		ok "$1_probe_noops_fast"
	else notok "$1_probe_noops_fast" "$(tr '\n' ' ' <"$2")"; fi
	case "$(val sent "$2")" in
	"250 2.0.0 Ok: queued as "*) ok "$1_probe_message_queued" ;;
	*) notok "$1_probe_message_queued" "$(val sent "$2")" ;;
	esac
}
logcount() { grep -c -- "$1" "$T/posternd.log"; }

# ------------------------------------------------------------------
# 1. 2,000 connections at once from one address.
rss_start flood1
t0=$(now_ms)
cli flood1 127.0.0.2 flood 2000 30 "$T/flood1.stop" &
fpid=$!
reap $fpid
until_ok 200 test -s "$T/flood1"
echo "# flood1: first replies after $(val first_reply_secs "$T/flood1") s: $(tr '\n' ' ' <"$T/flood1")"
cli probe1 127.0.0.3 probe 2
probe_ok flood1 "$T/probe1"
expect_eq flood1_probe_first_try "$(val tries "$T/probe1")" 1
# The 10 it was given are cut by the command timeout (4 s).
until_ok 100 eval '[ "$(logcount "client=unknown\[127.0.0.2\], disconnect (timeout)")" -ge 10 ]'
touch "$T/flood1.stop"
wait $fpid
rss_stop flood1 8192
expect_eq flood1_opened "$(val opened "$T/flood1")" 2000
expect_eq flood1_greeted "$(val greet "$T/flood1")" 10
expect_eq flood1_refused "$(val refused421 "$T/flood1")" 1990
expect_eq flood1_refused_text "$(val refused_text "$T/flood1")" \
	"421 4.7.0 mx.test.example Error: too many connections from 127.0.0.2"
expect_eq flood1_no_unclean "$(val eof "$T/flood1") $(val reset "$T/flood1") $(val silent "$T/flood1") $(val other "$T/flood1")" "0 0 0 0"
expect_eq flood1_cut_by_timeout "$(val cut421 "$T/flood1")" 10
expect_eq flood1_cut_text "$(val cut_text "$T/flood1")" \
	"421 4.4.2 mx.test.example Error: timeout exceeded"
expect_eq flood1_logged "$(logcount 'client=unknown\[127.0.0.2\], refused: max_connections_per_ip')" 1990

# ------------------------------------------------------------------
# 2. 2,000 connections at once from 200 addresses.
srcs=$(seq -f '127.0.1.%g' 1 200 | paste -sd, -)
rss_start flood2
cli flood2 "$srcs" flood 2000 30 "$T/flood2.stop" &
fpid=$!
reap $fpid
until_ok 200 test -s "$T/flood2"
echo "# flood2: $(tr '\n' ' ' <"$T/flood2")"
cli probe2 127.0.0.3 probe 2
probe_ok flood2 "$T/probe2"
echo "# flood2: the probe was greeted after $(val greeted_after "$T/probe2") s, $(val tries "$T/probe2") tries"
if awk -v x="$(val greeted_after "$T/probe2")" 'BEGIN { exit !(x < 8) }'; then
	ok flood2_probe_soon; else notok flood2_probe_soon "$(val greeted_after "$T/probe2") s"; fi
touch "$T/flood2.stop"
wait $fpid
rss_stop flood2 8192
expect_eq flood2_greeted "$(val greet "$T/flood2")" 100
expect_eq flood2_refused "$(val refused421 "$T/flood2")" 1900
expect_eq flood2_no_unclean "$(val eof "$T/flood2") $(val reset "$T/flood2") $(val silent "$T/flood2") $(val other "$T/flood2")" "0 0 0 0"
expect_grep flood2_stress_logged 'stress: [0-9]* of 100 sessions, timeouts now 3s' "$T/posternd.log"
expect_eq flood2_cut_by_stress "$(val cut421 "$T/flood2")" 100
expect_grep flood2_max_logged 'refused: max_connections$' "$T/posternd.log"

# ------------------------------------------------------------------
# 3. One byte a second.
rss_start slow
cli slowline 127.0.0.4 slow line &
s1=$!
cli slowdata 127.0.0.5 slow data &
s2=$!
cli slownoop 127.0.0.6 slow noop 0.25 &
s3=$!
reap $s1
reap $s2
reap $s3
cli probe3 127.0.0.3 probe 3
probe_ok slow "$T/probe3"
wait $s1 $s2 $s3
rss_stop slow 4096
# in FILE LO HI - is the secs= of FILE within [LO, HI)?
in_secs() { awk -v x="$(val secs "$1")" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x < hi) }'; }
for f in slowline slowdata slownoop; do
	echo "# $f: $(tr '\n' ' ' <"$T/$f")"
	expect_eq "${f}_closed" "$(val closed "$T/$f")" 1
done
in_secs "$T/slowline" 3.5 7 && ok slowline_time || notok slowline_time "$(val secs "$T/slowline") s, want 4"
expect_eq slowline_421 "$(val last "$T/slowline")" "421 4.4.2 mx.test.example Error: timeout exceeded"
expect_grep slowline_logged 'client=unknown\[127.0.0.4\], disconnect (timeout)' "$T/posternd.log"
expect_eq slowdata_354 "$(val reply_DATA "$T/slowdata" | cut -c 1-3)" 354
in_secs "$T/slowdata" 4.5 8 && ok slowdata_time || notok slowdata_time "$(val secs "$T/slowdata") s, want 5"
expect_eq slowdata_421 "$(val last "$T/slowdata")" "421 4.4.2 mx.test.example Error: timeout exceeded"
expect_grep slowdata_logged 'client=slow.example\[127.0.0.5\], disconnect (timeout in DATA)' "$T/posternd.log"
# 5 junk commands free, then 10 errors: the 16th is answered 421.
expect_eq slownoop_replies "$(val replies "$T/slownoop")" 16
expect_eq slownoop_421 "$(val last "$T/slownoop")" "421 4.7.0 mx.test.example Error: too many errors"
expect_grep slownoop_logged 'client=unknown\[127.0.0.6\], disconnect (too many errors)' "$T/posternd.log"

# ------------------------------------------------------------------
# 4. 10,000 commands in one write, the replies read.
rss_start pipe
cli pipenoop 127.0.0.7 pipe NOOP 10000 1 1
cli pipercpt 127.0.0.7 pipe RCPT 10000 1 1
cli pipercptnq 127.0.0.7 pipe RCPT 10000 0 1
cli pipersetq 127.0.0.7 pipe RSET 10000 1 1
cli pipersetnq 127.0.0.7 pipe RSET 10000 0 1
ocli opiperset 127.0.0.8 pipe RSET 10000 1 1
ocli opipenoop 127.0.0.8 pipe NOOP 10000 1 1
cli probe4 127.0.0.3 probe 2
probe_ok pipe "$T/probe4"
rss_stop pipe 4096
for f in pipenoop pipercpt pipercptnq pipersetq pipersetnq opiperset opipenoop; do
	echo "# $f: $(tr '\n' ' ' <"$T/$f")"
	expect_eq "${f}_closed" "$(val closed "$T/$f")" 1
done
for f in pipenoop opipenoop; do
	expect_eq "${f}_replies" "$(val codes "$T/$f")" "554:1"
done
expect_grep pipenoop_logged 'client=pipe.example\[127.0.0.7\], disconnect (improper command pipelining)' "$T/posternd.log"
for f in pipercpt pipercptnq; do
	expect_eq "${f}_replies" "$(val codes "$T/$f")" "250:100,421:1,452:10"
done
for f in pipersetq pipersetnq opiperset; do
	expect_eq "${f}_replies" "$(val codes "$T/$f")" "250:15,421:1"
	expect_eq "${f}_421" "$(val last "$T/$f")" "421 4.7.0 mx.test.example Error: too many errors"
done
expect_grep pipe_errors_logged 'client=pipe.example\[127.0.0.7\], disconnect (too many errors)' "$T/posternd.log"
expect_eq listener_same_process "$(smtpd_pid)" "$LPID"
stop_posternd

# ------------------------------------------------------------------
# 5. Without junk_command_limit (0, as the operator may set it): 10,000
# RSETs and a QUIT, read: every one answered, then 221; 1,000,000 RSETs
# from a client that never reads (14 MB of replies asked for, more than
# the kernel's 4 MB send buffer), on both ports: the server stops reading
# at 64 KB of waiting replies, the client finds less than half of them
# later, and the command timeout ends the session (its 421 is queued
# behind the replies the client never read: the log says it).
mv "$T/posternd.log" "$T/posternd1.log"
SMTP_PORT=$(free_port)
OP=$(free_port)
start_posternd "users_file=$T/users" "odmr_listen=127.0.0.1:$OP" \
	relay_domains=dest.example hold_domains=dest.example \
	mynetworks=127.0.0.250/32 command_timeout=4s junk_command_limit=0 || exit 1
until_ok 100 listening "$OP" || notok odmr2_listening "nothing on $OP"
LPID=$(smtpd_pid)
rss_start unread
cli pipeall 127.0.0.7 pipe RSET 10000 1 1
READ_WAIT=8 cli pipeunread 127.0.0.7 pipe RSET 1000000 0 0 &
h1=$!
reap $h1
READ_WAIT=8 ocli opipeunread 127.0.0.8 pipe RSET 1000000 0 0 &
h2=$!
reap $h2
cli probe5 127.0.0.3 probe 3
probe_ok unread "$T/probe5"
wait $h1 $h2
rss_stop unread 4096
for f in pipeall pipeunread opipeunread; do
	echo "# $f: $(tr '\n' ' ' <"$T/$f")"
	expect_eq "${f}_closed" "$(val closed "$T/$f")" 1
done
expect_eq pipeall_replies "$(val codes "$T/pipeall")" "221:1,250:10000"
for f in pipeunread opipeunread; do
	n=$(val replies "$T/$f")
	if [ -n "$n" ] && [ "$n" -gt 1000 ] && [ "$n" -lt 500000 ]; then ok "${f}_output_bounded"
	else notok "${f}_output_bounded" "$n replies of 1,000,000"; fi
done
expect_eq unread_logged "$(logcount 'client=pipe.example\[127.0.0.[78]\], disconnect (timeout)')" 2

# ------------------------------------------------------------------
expect_eq listener2_same_process "$(smtpd_pid)" "$LPID"
cat "$T/posternd1.log" >>"$T/posternd.log"
expect_eq no_child_died "$(logcount 'killed by signal\|exited with status')" 0
LC_ALL=C grep -c '[^[:print:][:space:]]' "$T/posternd.log" >"$T/ctl"
expect_eq log_no_control_bytes "$(cat "$T/ctl")" 0
stop_posternd

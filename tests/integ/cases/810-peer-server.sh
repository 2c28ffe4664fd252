# 810-peer-server: posternd's delivery workers against receiving servers
# that misbehave (tests/integ/peer_srv.py, one listener a mode on
# 127.0.0.5), while other mail goes to a Postfix smtp-sink on 127.0.0.6.
#
# Modes: 10 MB of reply text as one endless line (the greeting) and as
# continuation lines (EHLO); a multi-line reply that never ends (a "250-"
# line every 0.3 s) and one that stops after its first line (MAIL FROM);
# replies before the command (three 250s after the greeting; the 250 for
# the message sent with the 354, before the message; a 421 after the
# reply to EHLO, which is let through as the reply to MAIL); the connection
# dropped right after 354; binary garbage instead of a TLS handshake after
# the 220 to STARTTLS (smtp_tls=may, and a route with tls=encrypt), and
# silence there; a greeting that never comes. For each, one message is queued for the mode's
# domain and three for the sink's, at the same time, and checked:
#   - the workers' memory: their VmRSS, sampled every 50 ms from before the
#     message was queued until its attempt was logged, grows < 4 MB (the
#     floods are 10 MB);
#   - the timeouts (smtp_*_timeout = 3 s here): the server's clock, from
#     the command to the client's close, says 2.5-7 s where a timeout is
#     the cure, under 2.5 s where a limit or an error is;
#   - the delivery log line: status=deferred, the expected dsn= and reason,
#     naming the peer; the whole log has no control byte, no line over
#     1,000 bytes and no run of the flood's text;
#   - the queue: the recipient deferred after one attempt (not bounced, not
#     delivered, not lost), no DSN;
#   - the other deliveries: the sink's three messages arrive within 6 s of
#     being queued, while the hostile attempt is still going on (for the
#     modes that take a timeout).
. "$POSTERN_TOP/tests/integ/lib.sh"

SRV="$POSTERN_TOP/tests/integ/peer_srv.py"
RSS="$POSTERN_TOP/tests/integ/peer_rss.py"
HIP=127.0.0.5
NIP=127.0.0.6
MODES="bigline manylines slowlines stall early early421 early354 drop354 tlsgarbage tlssilent nogreet"

# The hostile server: one port a mode, and tlsgarbage a second time for
# the route with tls=encrypt.
specs=""
: >"$T/routes"
for m in $MODES tlsenc warm1 warm2 warm3 warm4; do
	port=$(free_port)
	eval "PORT_$m=$port"
	tls=""
	case $m in
	tlsenc) specs="$specs tlsgarbage:$HIP:$port:$m" tls=" tls=encrypt" ;;
	warm*) specs="$specs tlswarm:$HIP:$port:$m" tls=" tls=encrypt" ;;
	*) specs="$specs $m:$HIP:$port" ;;
	esac
	echo "$m.peer.example [$HIP]:$port$tls" >>"$T/routes"
done
"$PY" "$SRV" "$T/srv.log" $specs >"$T/srv.out" 2>&1 &
reap $!
SINKPORT=$(free_port)
echo "normal.example [$NIP]:$SINKPORT" >>"$T/routes"
echo "client.test.example [$NIP]:$SINKPORT" >>"$T/routes"
chmod 644 "$T/routes"
smtp-sink -u postern -c "$NIP:$SINKPORT" 20 >"$T/sink.out" 2>&1 &
reap $!
wait_listen "$SINKPORT" "$NIP" || notok sink_started "no smtp-sink"
until_ok 100 grep -q READY "$T/srv.log" || notok peer_started "no peer_srv"
for m in $MODES; do
	eval "wait_listen \$PORT_$m $HIP" || notok "peer_$m" "not listening"
done

start_posternd "routes_file=$T/routes" workers=4 dest_concurrency=2 \
	smtp_connect_timeout=3s smtp_command_timeout=3s \
	smtp_data_timeout=3s smtp_dot_timeout=3s \
	min_backoff=30m max_backoff=1h connection_reuse_time=1s || exit 1
sched=$(sed -n 's/^postern\/master\[[0-9]*\]: started sched, pid \([0-9]*\)$/\1/p' \
	"$T/posternd.log" | tail -n 1)
until_ok 100 eval '[ -n "$(cat /proc/$sched/task/$sched/children 2>/dev/null)" ]' ||
	notok workers_started "no worker under sched $sched"
printf 'Subject: peer test\n\nhello\n' >"$T/body"

# state ADDR - "state attempts" of ADDR in the queue, or "gone".
state() {
	qjson 'next(("%s %d" % (r["state"], r["attempts"]) for m in msgs for r in m["recipients"] if r["address"] == "'"$1"'"), "gone")'
}
# dline ADDR - ADDR's delivery log lines.
dline() { grep -F "to=<$1>," "$T/posternd.log"; }
sink_mesg() {
	tr '\r' '\n' <"$T/sink.out" | grep '^sess=' | tail -n 1 |
		sed -n 's/.*mesg=\([0-9]*\).*/\1/p'
}
# srv_elapsed MODE FROM_EVENT - seconds (server's clock) from the last
# FROM_EVENT of MODE's last connection to that connection's CLOSED.
srv_elapsed() {
	awk -v m="$1" -v ev="$2" '
		$2 == "ACCEPT" && $3 == m { n = $4 }
		$3 == m && $4 == n && ($2 == ev || ($2 == "CMD" && $5 == ev)) { t0 = $1 }
		$2 == "CLOSED" && $3 == m && $4 == n { t1 = $1 }
		END { if (t0 && t1) printf "%.1f\n", t1 - t0; else print "none" }' \
		"$T/srv.log"
}
# within X LO HI - is LO <= X < HI (decimals)?
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "none" && x >= lo && x < hi) }'; }

# run_mode MODE DSN REASON EVENT LO HI - one hostile delivery and three
# normal ones at once; see the top.
run_mode() {
	m=$1
	want_dsn=$2
	want_why=$3
	ev=$4
	lo=$5
	hi=$6
	addr="u@$m.peer.example"
	rm -f "$T/rss.stop" "$T/rss.$m"
	"$PY" "$RSS" "$T/rss.$m" "$T/rss.stop" --children "$sched" &
	rpid=$!
	reap $rpid
	sleep 0.2	# a baseline sample (the sampler's first)
	base=$(sink_mesg)
	t0=$(now_ms)
	"$P" enqueue -f sender@client.test.example "$addr" <"$T/body" >/dev/null
	for i in 1 2 3; do
		"$P" enqueue -f sender@client.test.example "n$i.$m@normal.example" \
			<"$T/body" >/dev/null
	done
	until_ok 60 eval '[ "$(sink_mesg)" -ge $((${base:-0} + 3)) ]'
	tn=$(($(now_ms) - t0))
	hostile_done=$(dline "$addr" | wc -l)
	until_ok 300 eval 'dline "$addr" | grep -q status='
	th=$(($(now_ms) - t0))
	touch "$T/rss.stop"
	until_ok 50 test -s "$T/rss.$m"
	wait $rpid 2>/dev/null
	growth=$(sed -n 's/^growth //p' "$T/rss.$m")
	echo "# $m: hostile attempt logged after ${th} ms, normal mail delivered after ${tn} ms, worker RSS growth ${growth:-?} kB (bound 4096)"
	expect_eq "${m}_others_delivered" "$(sink_mesg)" "$((${base:-0} + 3))"
	if [ "$tn" -lt 6000 ]; then ok "${m}_others_fast"; else
		notok "${m}_others_fast" "took $tn ms"; fi
	if [ "$lo" != 0 ]; then
		# A timeout: the others were done while it still ran.
		expect_eq "${m}_others_not_held_up" "$hostile_done" 0
	fi
	if [ -n "$growth" ] && [ "$growth" -lt 4096 ]; then ok "${m}_memory_bounded"
	else notok "${m}_memory_bounded" "worker RSS grew by ${growth:-?} kB: $(cat "$T/rss.$m")"; fi
	l=$(dline "$addr" | tail -n 1)
	echo "# $m: $l"
	expect_eq "${m}_one_attempt" "$(dline "$addr" | wc -l)" 1
	case "$l" in
	*", dsn=$want_dsn, status=deferred ($want_why"*) ok "${m}_log_line" ;;
	*) notok "${m}_log_line" "want dsn=$want_dsn, status=deferred ($want_why...): $l" ;;
	esac
	expect_eq "${m}_deferred_in_queue" "$(state "$addr")" "deferred 1"
	# The server sees the close at its next read or write.
	until_ok 50 eval '[ "$(srv_elapsed "$m" "$ev")" != none ]'
	el=$(srv_elapsed "$m" "$ev")
	if within "$el" "$lo" "$hi"; then ok "${m}_time"; else
		notok "${m}_time" "$el s from $ev to the close, want [$lo, $hi)"; fi
}

# MODE DSN REASON (from) (EVENT LO HI: seconds on the server's clock)
run_mode bigline 4.4.2 "bad reply from $HIP[$HIP]:$PORT_bigline to the initial server greeting: line too long" \
	ACCEPT 0 2.5
run_mode manylines 4.4.2 "bad reply from $HIP[$HIP]:$PORT_manylines to EHLO: more than 100 lines" \
	EHLO 0 2.5
run_mode slowlines 4.4.2 "conversation with $HIP[$HIP]:$PORT_slowlines timed out while receiving the reply to EHLO" \
	EHLO 2.5 7
run_mode stall 4.4.2 "conversation with $HIP[$HIP]:$PORT_stall timed out while receiving the reply to MAIL FROM" \
	MAIL 2.5 7
run_mode early 4.5.0 "unexpected reply from $HIP[$HIP]:$PORT_early before EHLO was sent" \
	ACCEPT 0 2.5
# A 421 that comes unasked is the server going away: taken as the reply.
run_mode early421 4.3.2 "421 4.3.2 peer.test.example shutting down" \
	EHLO 0 2.5
run_mode early354 4.5.0 "unexpected reply from $HIP[$HIP]:$PORT_early354 before the message content was sent" \
	DATA 0 2.5
run_mode drop354 4.4.2 "lost connection with $HIP[$HIP]:$PORT_drop354 while" \
	DATA 0 2.5
# Every worker makes its TLS context (and, for tls=encrypt, loads the CA
# store: 18 MB under ASan) once; four slow handshakes at once, one a
# worker, so that the memory measured below is what the garbage costs.
for w in 1 2 3 4; do
	"$P" enqueue -f sender@client.test.example "u@warm$w.peer.example" \
		<"$T/body" >/dev/null
done
until_ok 150 eval '[ "$(grep -c "to=<u@warm[1-4].peer.example>.*status=deferred" "$T/posternd.log")" -eq 4 ]'
echo "# TLS warm-up: $(grep "to=<u@warm" "$T/posternd.log" | sed -n 's/.*runner\[\([0-9]*\)\].*/\1/p' | sort -u | wc -l) workers"
run_mode tlsgarbage 4.7.5 "TLS handshake with $HIP[$HIP]:$PORT_tlsgarbage failed" \
	STARTTLS 0 2.5
run_mode tlsenc 4.7.5 "TLS handshake with $HIP[$HIP]:$PORT_tlsenc failed" \
	STARTTLS 0 2.5
run_mode tlssilent 4.7.5 "TLS handshake with $HIP[$HIP]:$PORT_tlssilent timed out" \
	STARTTLS 2.5 7
run_mode nogreet 4.4.2 "conversation with $HIP[$HIP]:$PORT_nogreet timed out while receiving the reply to the initial server greeting" \
	ACCEPT 2.5 7

# The floods went out (up to what the client read before it gave up) and
# the client stopped reading: less than the 10 MB was sent.
for m in bigline manylines; do
	sent=$(awk -v m=$m '$2 == "SENT" && $3 == m { s = $5 } END { print s + 0 }' "$T/srv.log")
	echo "# $m: the server got $sent bytes out before the client left"
	if [ "$sent" -gt 0 ] && [ "$sent" -lt 10485760 ]; then ok "${m}_flood_cut"
	else notok "${m}_flood_cut" "$sent bytes sent"; fi
done

# The log: nothing raw.
LC_ALL=C grep -n '[^[:print:][:space:]]' "$T/posternd.log" | head -3 >"$T/ctl"
expect_eq log_no_control_bytes "$(wc -l <"$T/ctl")" 0
expect_eq log_no_long_lines "$(awk 'length > 1000' "$T/posternd.log" | wc -l)" 0
expect_eq log_no_flood_text "$(grep -c 'xxxxxxxxxxxxxxxxxxxx\|yyyyyyyyyyyyyyyyyyyy' "$T/posternd.log")" 0
# Nothing bounced, nothing failed: no DSN, no failed recipient.
expect_eq nothing_bounced "$(grep -c 'status=bounced\|non-delivery' "$T/posternd.log")" 0
expect_eq all_deferred "$(qjson 'sorted(set(r["state"] for m in msgs for r in m["recipients"]))')" "['deferred']"
# The daemon is whole: no child died.
expect_eq no_child_died "$(grep -c 'killed by signal\|exited with status' "$T/posternd.log")" 0
stop_posternd

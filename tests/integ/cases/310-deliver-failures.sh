# 310-deliver-failures: the delivery side when the other end misbehaves.
#
# `postern run` and posternd's scheduler against Postfix's smtp-sink, a
# second posternd (a receiver that refuses unauthorised pipelining) and
# tests/integ/deliver_fail_srv.py, a small server that fails on purpose
# (4xx the first time, 5xx for some recipients, 421 mid-session, silence,
# a stall before the reply to the final dot). Checked, from the delivery
# log lines, `postern queue --json` and what the servers saw: retry after
# a 4xx with the backoff, per-recipient 5xx in one transaction, 421 and
# silent hops (one connection for a whole hop), max_queue_lifetime, a
# worker SIGKILLed mid-DATA, two concurrent runs, connection reuse and
# pipelining, `postern flush` waking the daemon, and held domains.
# Where a recipient fails, its DSN to the sender (client.test.example,
# routed to an smtp-sink of the part's own) is checked too: one per
# message, delivered in the same run, naming the failed recipient.
#
# Each part has its own configuration and queue ($T/NAME.conf,
# $T/NAME.q); routes_file entries send its domains to 127.0.0.1 ports, so
# no DNS is needed but for the held domains (dnsmasq, as in 200).
. "$POSTERN_TOP/tests/integ/lib.sh"

# A version manager's python3 shim can take a second to start: run the
# interpreter itself.
PY=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${PY%/*}:$PATH"
PY=${PY:-python3}
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"
INJECT="$POSTERN_TOP/tests/integ/deliver_fail_inject.py"
printf 'Subject: delivery test\n\nhello\n' >"$T/body"
SINKPORT=

# ------------------------------------------------------------------
# Helpers.

# Ports: free_port, listening PORT (tests/common.sh, through lib.sh).

# stop_pid PID - SIGTERM a server we started, wait for it.
stop_pid() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# dconf NAME KEY=VALUE... - the configuration $T/NAME.conf (queue
# $T/NAME.q) made current (POSTERN_CONF). Short backoffs and client
# timeouts unless given.
dconf() {
	_name=$1
	shift
	{
		echo "queue_dir = $T/$_name.q"
		echo "myhostname = mx.test.example"
		echo "queue_map_size = 64m"
		echo "odmr_listen ="
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
		for kv in min_backoff=1s max_backoff=2s smtp_connect_timeout=2s \
			smtp_command_timeout=2s smtp_data_timeout=2s \
			smtp_dot_timeout=5s connection_reuse_time=2s; do
			case " $* " in
			*" ${kv%%=*}="*) ;;
			*) echo "$kv" | sed 's/=/ = /' ;;
			esac
		done
	} >"$T/$_name.conf"
	export POSTERN_CONF="$T/$_name.conf"
}

# routes NAME LINE... - $T/NAME.routes with these lines.
routes() {
	_f="$T/$1.routes"
	shift
	printf '%s\n' "$@" >"$_f"
	chmod 644 "$_f"
}

# enq RCPT... - queue a message with `postern enqueue`; its id in $ID.
enq() {
	if ! ID=$("$P" enqueue -f sender@client.test.example "$@" \
		<"$T/body" 2>"$T/enq.err") || [ -z "$ID" ]; then
		notok "enqueue_$1" "$(head -c 300 "$T/enq.err")"
	fi
}

# runq OUT [ARGS] - `postern run`: summary in $T/OUT.sum, delivery log in
# $T/OUT.log, exit status in $T/OUT.rc.
runq() {
	_o=$1
	shift
	"$P" run "$@" >"$T/$_o.sum" 2>"$T/$_o.log"
	echo $? >"$T/$_o.rc"
}
sum() { cat "$T/$1.sum"; }
rc() { cat "$T/$1.rc"; }
summary() { echo "postern run: $1 delivered, $2 deferred, $3 failed, $4 held"; }

# att FILE ADDR - "attempts=N dsn=X status=S" of each delivery log line
# for ADDR, joined by " / ".
att() {
	grep -F "to=<$2>," "$1" |
		sed -n 's/.* attempts=\([0-9]*\), dsn=\([0-9.]*\), status=\([a-z]*\) .*/attempts=\1 dsn=\2 status=\3/p' |
		paste -sd '|' - | sed 's/|/ \/ /g'
}
# relay FILE ADDR - the relay= of ADDR's last log line.
relay() {
	grep -F "to=<$2>," "$1" | tail -n 1 | sed -n 's/.* relay=\([^,]*\), .*/\1/p'
}

# backoff_of ID ADDR - seconds from ADDR's last attempt (its last history
# line in `postern show`) to its next try.
backoff_of() {
	"$P" show "$1" | awk -v a="<$2>" '
		$1 == "recipient:" { mine = $2 == a; if (mine) { sub(/.*next=/, ""); nx = $0 }; next }
		mine && /^    [0-9]/ { last = $1 " " $2 }
		/^$/ { mine = 0 }
		END { print nx; print last }' >"$T/backoff"
	echo $(($(date -d "$(sed -n 1p "$T/backoff")" +%s) - 		$(date -d "$(sed -n 2p "$T/backoff")" +%s)))
}

# qj EXPR - like lib.sh's qjson (EXPR over the JSON lines, as `msgs`), but
# a failing `postern queue` prints "queue error: ..." instead of an empty
# queue, so that no assertion takes an error for "gone".
qj() {
	if "$P" queue --json >"$T/qj.out" 2>"$T/qj.err"; then
		"$PY" -c "
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print($1)" "$T/qj.out"
	else
		echo "queue error: $(head -c 200 "$T/qj.err")"
	fi
}

# rq ADDR - "state attempts" of the recipient in the current queue, or
# "gone"; rnext ADDR - its next_try.
rq() {
	qj 'next(("%s %d" % (r["state"], r["attempts"]) for m in msgs for r in m["recipients"] if r["address"] == "'"$1"'"), "gone")'
}
rnext() {
	qj 'next((r["next_try"] for m in msgs for r in m["recipients"] if r["address"] == "'"$1"'"), 0)'
}
qcount() { qj 'len(msgs)'; }
is_gone() { [ "$(rq "$1")" = gone ]; }
is_state() { [ "$(rq "$1")" = "$2" ]; }
# due ADDR - is its next_try reached?
due() { [ "$(rnext "$1")" -le "$(date +%s)" ]; }

# srv NAME OPTION... - start deliver_fail_srv.py; port in $SP, PID in
# $SPID, log $T/NAME.srv.
srv() {
	_n=$1
	shift
	SP=$(free_port)
	: >"$T/$_n.srv"
	"$PY" "$SRV" "$SP" "$T/$_n.srv" "$@" >>"$T/srv.err" 2>&1 &
	SPID=$!
	reap "$SPID"
	until_ok 100 listening "$SP" || notok "srv_$_n" "did not start"
}
srvcount() { grep -c "^$2" "$T/$1.srv"; }

# sink NAME OPTION... - smtp-sink dumping each message into $T/NAME/;
# port in $SP, PID in $SPID, counters in $T/NAME.out.
sink() {
	_n=$1
	shift
	mkdir -p "$T/$_n"
	chmod 777 "$T/$_n"
	SP=${SINKPORT:-$(free_port)}
	SINKPORT=
	smtp-sink -u postern -c -d "$T/$_n/%H%M%S." "$@" "127.0.0.1:$SP" 64 \
		>"$T/$_n.out" 2>&1 &
	SPID=$!
	reap "$SPID"
	until_ok 100 listening "$SP" || notok "sink_$_n" "did not start"
}
# counters NAME MESG - smtp-sink's last "sess=N quit=N mesg=N", once it
# counts at least MESG messages (polled, 5 s at most).
counters() { sink_counters "$T/$1.out" mesg "$2"; }
sess() { counters "$1" "$2" | sed -n 's/^sess=\([0-9]*\) .*/\1/p'; }
mesg() { counters "$1" "$2" | sed -n 's/.* mesg=\([0-9]*\).*/\1/p'; }
# rcpts NAME - every X-Rcpt-Args address in smtp-sink's dumps, one a line.
rcpts() {
	find "$T/$1" -type f -exec cat {} + 2>/dev/null |
		sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p'
}

# dsn_sink NAME - an smtp-sink for a part's DSNs (dumps in $T/NAME/),
# port in $DP, PID in $DPID; SP and SPID are left as they were. Route
# client.test.example (the senders' domain) to 127.0.0.1:$DP.
dsn_sink() {
	_sp=${SP:-}
	_spid=${SPID:-}
	sink "$1"
	DP=$SP
	DPID=$SPID
	SP=$_sp
	SPID=$_spid
}
# dsn_check NAME - the DSN(s) at dsn_sink NAME (polled, 5 s at most, for
# the first): "N files, to <sender@client.test.example> from <>: K;
# Final-Recipient: A...; Status: S..." (every Final-Recipient and Status
# line of all the files, in order), or "no DSN".
has_file() { [ -n "$(find "$T/$1" -type f)" ]; }
dsn_check() {
	until_ok 50 has_file "$1"
	_f=$(find "$T/$1" -type f | sort)
	if [ -z "$_f" ]; then
		echo "no DSN"
		return
	fi
	# shellcheck disable=SC2086
	printf '%d files, to <sender@client.test.example> from <>: %d; Final-Recipient: %s; Status: %s\n' \
		"$(echo "$_f" | wc -l)" \
		"$(grep -l -x -F 'X-Rcpt-Args: <sender@client.test.example>' $_f |
			xargs -r grep -l '^X-Mail-Args: <>' | wc -l)" \
		"$(cat $_f | tr -d '\r' | sed -n 's/^Final-Recipient: rfc822; *//p' | paste -sd ' ' -)" \
		"$(cat $_f | tr -d '\r' | sed -n 's/^Status: //p' | paste -sd ' ' -)"
}

# pd_start NAME PORT - posternd -f on $T/NAME.conf (listening on PORT),
# log $T/NAME.pd; master PID in $PDP, scheduler PID in $SCHED.
pd_start() {
	"$POSTERN_BIN/posternd" -c "$T/$1.conf" -f >>"$T/$1.pd" 2>&1 &
	PDP=$!
	reap "$PDP"
	SCHED=
	_i=0
	while [ $_i -lt 100 ]; do
		SCHED=$(sed -n "s/^postern\/master\[$PDP\]: started sched, pid \([0-9]*\)$/\1/p" \
			"$T/$1.pd" | tail -n 1)
		[ -n "$SCHED" ] && listening "$2" && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	notok "pd_start_$1" "posternd did not start: $(tail -c 400 "$T/$1.pd")"
	return 1
}
# pd_stop - SIGTERM the master, wait for it (35 s at most).
pd_stop() {
	term_wait "$PDP" 350
}

# ------------------------------------------------------------------
# 1. 4xx, then success on the retry. The server answers 451 to an
# address the first time: deferred, attempts=1, next_try within the
# backoff (5 s +-20%: 4 to 6 s after the attempt, from `postern show`);
# a run before next_try takes nothing; once it is reached the next run
# delivers it, attempts=2.
srv c1 --fail-first 1
routes c1 "c1.example [127.0.0.1]:$SP" "j.c1.example [127.0.0.1]:$SP"
dconf c1 "routes_file=$T/c1.routes" min_backoff=5s max_backoff=20s
enq a@c1.example
ID1=$ID
runq c1a
runq c1b			# at once: before next_try
expect_eq c1_first_summary "$(sum c1a)" "$(summary 0 1 0 0)"
expect_eq c1_first_exit "$(rc c1a)" 1
expect_eq c1_first_log "$(att "$T/c1a.log" a@c1.example)" \
	"attempts=1 dsn=4.3.0 status=deferred"
expect_eq c1_first_relay "$(relay "$T/c1a.log" a@c1.example)" \
	"127.0.0.1[127.0.0.1]:$SP"
expect_grep c1_first_reply_logged 'status=deferred (451 4\.3\.0 <a@c1\.example>: try again later)$' "$T/c1a.log"
expect_eq c1_first_queue "$(rq a@c1.example)" "deferred 1"
b1=$(backoff_of "$ID1" a@c1.example)
expect_eq c1_next_try_in_backoff "$((b1 >= 4 && b1 <= 6))" 1
expect_eq c1_last_reply "$(qj 'msgs[0]["recipients"][0]["last_reply"]')" \
	"451 4.3.0 <a@c1.example>: try again later"
expect_eq c1_not_due_summary "$(sum c1b)" "$(summary 0 0 0 0)"
expect_eq c1_not_due_exit "$(rc c1b)" 0
expect_eq c1_not_due_untouched "$(srvcount c1 ACCEPT)" 1
until_ok 100 due a@c1.example
runq c1c
expect_eq c1_retry_summary "$(sum c1c)" "$(summary 1 0 0 0)"
expect_eq c1_retry_exit "$(rc c1c)" 0
expect_eq c1_retry_log "$(att "$T/c1c.log" a@c1.example)" \
	"attempts=2 dsn=2.0.0 status=sent"
expect_eq c1_retry_queue_empty "$(qcount)" 0
expect_eq c1_server_rcpts "$(grep '^RCPT <a@' "$T/c1.srv" | paste -sd ' ' -)" \
	"RCPT <a@c1.example> 451 RCPT <a@c1.example> 250"
expect_eq c1_server_one_message "$(grep '^MSG' "$T/c1.srv" | cut -d ' ' -f 3-)" \
	"a@c1.example"
# The jitter with a small backoff: min_backoff = 2 s is 1.6 to 2.4 s,
# i.e. 2 s in whole seconds. (Fails today: runner_result_backoff() truncates
# d * 8 / 10 and d * 4 / 10, so 2 s always gives 1 s.)
dconf c1j "routes_file=$T/c1.routes" min_backoff=2s max_backoff=2s
enq j@j.c1.example
ID1=$ID
runq c1j
expect_eq c1j_deferred "$(att "$T/c1j.log" j@j.c1.example)" \
	"attempts=1 dsn=4.3.0 status=deferred"
expect_eq c1j_backoff_2s "$(backoff_of "$ID1" j@j.c1.example)" 2
stop_pid "$SPID"

# ------------------------------------------------------------------
# 2. One recipient 550, two 250, in one transaction: one bounced (5.1.1),
# two sent, one session and one message at the server, queue empty. The
# sender gets one DSN naming bad@ alone (at sink c2dsn).
srv c2 --bad bad
dsn_sink c2dsn
routes c2 "c2.example [127.0.0.1]:$SP" "client.test.example [127.0.0.1]:$DP"
dconf c2 "routes_file=$T/c2.routes"
enq a@c2.example bad@c2.example c@c2.example
runq c2a
# 3 delivered: a@, c@ and the DSN for bad@ (to its sender, routed to the
# DSN sink, sent in the same run); 1 failed: bad@.
expect_eq c2_summary "$(sum c2a)" "$(summary 3 0 1 0)"
expect_eq c2_dsn_sent "$(att "$T/c2a.log" sender@client.test.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_eq c2_dsn_logged_once "$(grep -c ": sender non-delivery notification: " "$T/c2a.log")" 1
expect_eq c2_dsn "$(dsn_check c2dsn)" \
	"1 files, to <sender@client.test.example> from <>: 1; Final-Recipient: bad@c2.example; Status: 5.1.1"
expect_eq c2_exit "$(rc c2a)" 1
expect_eq c2_a "$(att "$T/c2a.log" a@c2.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_eq c2_bad "$(att "$T/c2a.log" bad@c2.example)" "attempts=1 dsn=5.1.1 status=bounced"
expect_eq c2_c "$(att "$T/c2a.log" c@c2.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_grep c2_bad_reply 'to=<bad@c2\.example>, .*status=bounced (550 5\.1\.1 <bad@c2\.example>: no such user)$' "$T/c2a.log"
expect_eq c2_one_session "$(srvcount c2 ACCEPT)" 1
expect_eq c2_one_transaction "$(grep '^MSG' "$T/c2.srv" | cut -d ' ' -f 3-)" \
	"a@c2.example c@c2.example"
expect_eq c2_queue_empty "$(qcount)" 0
stop_pid "$SPID"
stop_pid "$DPID"
# The same without PIPELINING (one command at a time).
srv c2n --bad bad --no-pipelining
dsn_sink c2ndsn
routes c2n "c2.example [127.0.0.1]:$SP" "client.test.example [127.0.0.1]:$DP"
dconf c2n "routes_file=$T/c2n.routes"
enq a@c2.example bad@c2.example c@c2.example
runq c2n
# As in c2: a@, c@ and bad@'s DSN delivered; bad@ failed.
expect_eq c2n_summary "$(sum c2n)" "$(summary 3 0 1 0)"
expect_eq c2n_dsn "$(dsn_check c2ndsn)" \
	"1 files, to <sender@client.test.example> from <>: 1; Final-Recipient: bad@c2.example; Status: 5.1.1"
expect_eq c2n_bad "$(att "$T/c2n.log" bad@c2.example)" "attempts=1 dsn=5.1.1 status=bounced"
expect_eq c2n_one_transaction "$(grep '^MSG' "$T/c2n.srv" | cut -d ' ' -f 3-)" \
	"a@c2.example c@c2.example"
expect_eq c2n_queue_empty "$(qcount)" 0
stop_pid "$SPID"
stop_pid "$DPID"

# ------------------------------------------------------------------
# 3. 421 mid-session: after MAIL (nothing accepted yet) and after the
# final dot (recipients accepted, message sent, then 421). Everything is
# deferred with 4.x.x, nothing bounced; the second message to the hop
# gets a new connection (the first one is gone). Once the servers behave
# (control files), the next run delivers everything, attempts=2.
srv c3m --421 MAIL --ctrl "$T/c3m.ctrl"
PM=$SP
PMPID=$SPID
srv c3d --421 DOT --ctrl "$T/c3d.ctrl"
PD3=$SP
PDPID=$SPID
routes c3 "m.c3.example [127.0.0.1]:$PM" "d.c3.example [127.0.0.1]:$PD3"
dconf c3 "routes_file=$T/c3.routes" workers=1 min_backoff=3s max_backoff=3s
enq x@m.c3.example y@m.c3.example
enq x@d.c3.example y@d.c3.example
enq z@d.c3.example
runq c3a
expect_eq c3_summary "$(sum c3a)" "$(summary 0 5 0 0)"
expect_eq c3_exit "$(rc c3a)" 1
expect_eq c3_none_bounced "$(grep -c 'status=bounced\|status=expired' "$T/c3a.log")" 0
expect_eq c3_all_4xx "$(grep -c 'dsn=4\.3\.2, status=deferred (421 4\.3\.2 failsrv\.test closing, try later)$' "$T/c3a.log")" 5
for a in x@m.c3.example y@m.c3.example x@d.c3.example y@d.c3.example \
	z@d.c3.example; do
	expect_eq "c3_deferred_$a" "$(rq "$a")" "deferred 1"
done
expect_eq c3_mail_421 "$(srvcount c3m '421 [0-9]* MAIL')" 1
expect_eq c3_dot_421_each_message "$(srvcount c3d '421 [0-9]* DOT')" 2
expect_eq c3_dot_new_connection "$(srvcount c3d ACCEPT)" 2
expect_eq c3_nothing_taken "$(cat "$T/c3m.srv" "$T/c3d.srv" | grep -c '^MSG')" 0
touch "$T/c3m.ctrl" "$T/c3d.ctrl"
until_ok 50 due z@d.c3.example
until_ok 50 due x@m.c3.example
until_ok 50 due y@d.c3.example
runq c3b
expect_eq c3_later_summary "$(sum c3b)" "$(summary 5 0 0 0)"
expect_eq c3_later_exit "$(rc c3b)" 0
expect_eq c3_later_attempts "$(grep -c 'attempts=2, dsn=2\.0\.0, status=sent' "$T/c3b.log")" 5
expect_eq c3_later_queue_empty "$(qcount)" 0
expect_eq c3_later_received "$(cat "$T/c3m.srv" "$T/c3d.srv" | grep '^MSG' | cut -d ' ' -f 3- | tr ' ' '\n' | sort | paste -sd ' ' -)" \
	"x@d.c3.example x@m.c3.example y@d.c3.example y@m.c3.example z@d.c3.example"
stop_pid "$PMPID"
stop_pid "$PDPID"

# ------------------------------------------------------------------
# 4. A server that accepts and never speaks: the first message waits
# smtp_command_timeout (2 s) for the greeting, 4.4.2, and the hop is down:
# the four other messages are deferred without a connection of their own
# (one accept at the server, attempts=0, relay=none).
srv c4 --silent
routes c4 "c4.example [127.0.0.1]:$SP"
dconf c4 "routes_file=$T/c4.routes" min_backoff=10s max_backoff=20s
for i in 1 2 3 4 5; do
	enq "s$i@c4.example"
done
t0=$(date +%s%N)
runq c4a
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq c4_summary "$(sum c4a)" "$(summary 0 5 0 0)"
expect_eq c4_exit "$(rc c4a)" 1
expect_eq c4_one_timeout_not_five "$((ms >= 1900 && ms < 9000))" 1
expect_eq c4_one_connection "$(srvcount c4 ACCEPT)" 1
expect_eq c4_tried_once "$(grep -c 'attempts=1, dsn=4\.4\.2, status=deferred (conversation with 127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]* timed out while receiving the reply to the initial server greeting)$' "$T/c4a.log")" 1
expect_eq c4_rest_not_tried "$(grep -c 'relay=none, .*attempts=0, dsn=4\.4\.2, status=deferred' "$T/c4a.log")" 4
expect_eq c4_queue_attempts "$(qj 'sorted(r["state"] + str(r["attempts"]) for m in msgs for r in m["recipients"])')" \
	"['deferred0', 'deferred0', 'deferred0', 'deferred0', 'deferred1']"

# The same through posternd's scheduler, with messages that arrive after
# the hop went down: they are deferred by the scheduler ("not tried until
# the next retry"), still one connection in all.
stop_pid "$SPID"
srv c4d --silent
routes c4d "c4d.example [127.0.0.1]:$SP"
LP=$(free_port)
dconf c4d "listen=127.0.0.1:$LP" "routes_file=$T/c4d.routes" \
	min_backoff=60s max_backoff=120s
pd_start c4d "$LP"
enq d1@c4d.example
until_ok 100 is_state d1@c4d.example "deferred 1"
expect_eq c4d_first "$(att "$T/c4d.pd" d1@c4d.example)" "attempts=1 dsn=4.4.2 status=deferred"
expect_grep c4d_hop_down "next hop host:\[127\.0\.0\.1\]:$SP does not answer: backed off [0-9]* s" "$T/c4d.pd"
for i in 2 3 4 5; do
	enq "d$i@c4d.example"
done
for i in 2 3 4 5; do
	until_ok 100 is_state "d$i@c4d.example" "deferred 0"
done
for i in 2 3 4 5; do
	expect_eq "c4d_not_tried_$i" "$(att "$T/c4d.pd" "d$i@c4d.example")" \
		"attempts=0 dsn=4.4.1 status=deferred"
done
expect_eq c4d_not_tried_text "$(grep -c "relay=none, .*status=deferred (host:\[127\.0\.0\.1\]:$SP is down: not tried until the next retry)\$" "$T/c4d.pd")" 4
expect_eq c4d_one_connection "$(srvcount c4d ACCEPT)" 1
pd_stop
expect_eq c4d_stops "$?" 0
stop_pid "$SPID"

# ------------------------------------------------------------------
# 5. max_queue_lifetime = 5 s toward a port nobody listens on: deferred
# with 4.4.1 until the lifetime is over, then "expired" with that 4.4.1
# (the last temporary error), never 4.4.7. Its DSN says 4.4.1 too.
DEAD=$(free_port)
dsn_sink c5dsn
routes c5 "c5.example [127.0.0.1]:$DEAD" "client.test.example [127.0.0.1]:$DP"
dconf c5 "routes_file=$T/c5.routes" max_queue_lifetime=5s max_backoff=1s
enq a@c5.example
: >"$T/c5.log"
k=0
while [ $k -lt 15 ] && [ "$(rq a@c5.example)" != gone ]; do
	until_ok 30 due a@c5.example
	runq "c5_$k"
	cat "$T/c5_$k.log" >>"$T/c5.log"
	k=$((k + 1))
done
expect_eq c5_gone "$(rq a@c5.example)" gone
# The last run: a@ expired (1 failed) and its DSN, sent in that run to
# the DSN sink, is the 1 delivered.
expect_grep c5_last_run_failed '^postern run: 1 delivered, [0-9]* deferred, 1 failed, 0 held$' "$T/c5_$((k - 1)).sum"
expect_eq c5_dsn "$(dsn_check c5dsn)" \
	"1 files, to <sender@client.test.example> from <>: 1; Final-Recipient: a@c5.example; Status: 4.4.1"
expect_grep c5_expired '^postern/runner\[[0-9]*\]: [0-9A-Z]*: to=<a@c5\.example>, relay=none, .*attempts=[0-9]*, dsn=4\.4\.1, status=expired (' "$T/c5.log"
expect_eq c5_expired_once "$(grep -c 'status=expired' "$T/c5.log")" 1
expect_eq c5_expired_is_last "$(grep -F 'to=<a@c5.example>' "$T/c5.log" | tail -n 1 | grep -c 'status=expired')" 1
nd=$(grep -c 'status=deferred' "$T/c5.log")
expect_eq c5_deferred_before "$((nd >= 1))" 1
expect_eq c5_all_4_4_1 "$(grep -c 'to=<a@c5\.example>, .*dsn=4\.4\.1, status=' "$T/c5.log")" "$((nd + 1))"
expect_eq c5_no_447 "$(grep -c 'dsn=4\.4\.7' "$T/c5.log")" 0
stop_pid "$DPID"

# ------------------------------------------------------------------
# 6. A worker SIGKILLed while it waits for the reply to the final dot:
# the scheduler hands its claims back and starts another worker, and the
# message is delivered (at least once: nobody lost), queue empty.
srv c6 --stall-dot --ctrl "$T/c6.ctrl"
routes c6 "c6.example [127.0.0.1]:$SP"
LP=$(free_port)
dconf c6 "listen=127.0.0.1:$LP" "routes_file=$T/c6.routes" workers=1 \
	smtp_dot_timeout=60s
pd_start c6 "$LP"
enq a@c6.example b@c6.example
until_ok 150 grep -q '^STALL ' "$T/c6.srv"
expect_eq c6_stalled_in_data "$(srvcount c6 STALL)" 1
W=$(pgrep -P "$SCHED")
expect_eq c6_one_worker "$(printf '%s\n' "$W" | grep -c '^[0-9][0-9]*$')" 1
# One worker, a child of the scheduler: SIGKILL it by its PID.
[ "$(printf '%s\n' "$W" | grep -c '^[0-9][0-9]*$')" -eq 1 ] && kill -KILL "$W"
until_ok 100 grep -q "worker $W died (status 9): 2 recipients handed back" "$T/c6.pd"
expect_grep c6_handed_back "postern/sched\[$SCHED\]: worker $W died (status 9): 2 recipients handed back" "$T/c6.pd"
until_ok 50 grep -q '^ABORTED ' "$T/c6.srv"
expect_eq c6_server_saw_abort "$(srvcount c6 ABORTED)" 1
touch "$T/c6.ctrl"
until_ok 150 is_gone b@c6.example
W2=$(pgrep -P "$SCHED")
expect_eq c6_worker_restarted "$([ -n "$W2" ] && [ "$W2" != "$W" ] && echo yes)" yes
expect_eq c6_queue_empty "$(qcount)" 0
expect_eq c6_a_received "$(grep '^MSG' "$T/c6.srv" | grep -c ' a@c6\.example')" 1
expect_eq c6_b_received "$(grep '^MSG' "$T/c6.srv" | grep -c ' b@c6\.example')" 1
expect_eq c6_a_sent "$(att "$T/c6.pd" a@c6.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_eq c6_b_sent "$(att "$T/c6.pd" b@c6.example)" "attempts=1 dsn=2.0.0 status=sent"
pd_stop
expect_eq c6_stops "$?" 0
stop_pid "$SPID"

# A delivery that takes longer than lease_time (3 s) keeps its claim:
# the scheduler renews the lease, so a `postern run` beside the daemon
# meanwhile takes nothing, and the recipient is delivered once.
srv c6b --stall-dot --ctrl "$T/c6b.ctrl"
routes c6b "c6b.example [127.0.0.1]:$SP"
LP=$(free_port)
dconf c6b "listen=127.0.0.1:$LP" "routes_file=$T/c6b.routes" workers=1 \
	smtp_dot_timeout=60s lease_time=3s
pd_start c6b "$LP"
enq a@c6b.example
until_ok 150 grep -q '^STALL ' "$T/c6b.srv"
# The condition under test is time itself: two leases' worth of it.
t7=$(($(now_ms) + 7000))
lapsed() { [ "$(now_ms)" -ge "$t7" ]; }
until_ok 100 lapsed
expect_eq c6b_still_active "$(rq a@c6b.example)" "active 0"
runq c6b
expect_eq c6b_beside_takes_nothing "$(sum c6b)" "$(summary 0 0 0 0)"
expect_eq c6b_beside_exit "$(rc c6b)" 0
expect_eq c6b_one_session "$(srvcount c6b ACCEPT)" 1
touch "$T/c6b.ctrl"
until_ok 100 is_gone a@c6b.example
expect_eq c6b_delivered "$(att "$T/c6b.pd" a@c6b.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_eq c6b_received_once "$(grep -c '^MSG .*a@c6b\.example' "$T/c6b.srv")" 1
pd_stop
stop_pid "$SPID"

# ------------------------------------------------------------------
# 7. Two `postern run` at once on one queue: 200 messages of 2 recipients
# each (queued through a posternd whose route goes nowhere, then
# requeued: 200 `postern enqueue` would take a minute), to one smtp-sink.
# Each recipient arrives exactly once, both runs exit 0, the queue is
# empty. (A run claims up to 500 a round and 4,000 in hand, so whichever
# claims first usually takes all 400 and the other finds them claimed.)
sink c7
SINK7=$SP
SINK7PID=$SPID
DEAD=$(free_port)
routes c7 "bulk.example [127.0.0.1]:$DEAD"
LP=$(free_port)
dconf c7 "listen=127.0.0.1:$LP" "routes_file=$T/c7.routes" \
	min_backoff=1h max_backoff=1h workers=2
pd_start c7 "$LP"
expect_eq c7_injected "$("$PY" "$INJECT" "$LP" 200 4 'm{i}-a@bulk.example' 'm{i}-b@bulk.example' 2>"$T/c7.inject.err")" 200
alldeferred() {
	[ "$(qj 'sum(r["state"] == "deferred" for m in msgs for r in m["recipients"])')" = 400 ]
}
until_ok 600 alldeferred
expect_eq c7_staged "$(qj 'sum(r["state"] == "deferred" for m in msgs for r in m["recipients"])')" 400
pd_stop
routes c7 "bulk.example [127.0.0.1]:$SINK7"
expect_eq c7_requeued "$("$P" requeue --all)" "postern requeue: requeued 400 recipients"
runq c7a &
RA=$!
runq c7b &
RB=$!
wait "$RA"
wait "$RB"
expect_eq c7_run_a_exit "$(rc c7a)" 0
expect_eq c7_run_b_exit "$(rc c7b)" 0
expect_eq c7_delivered_total "$(cat "$T/c7a.sum" "$T/c7b.sum" | sed -n 's/^postern run: \([0-9]*\) delivered, 0 deferred, 0 failed, 0 held$/\1/p' | awk '{ n += $1 } END { print n }')" 400
expect_eq c7_queue_empty "$(qcount)" 0
expect_eq c7_sink_messages "$(mesg c7 200)" 200
rcpts c7 >"$T/c7.rcpts"
expect_eq c7_sink_recipients "$(wc -l <"$T/c7.rcpts" | tr -d ' ')" 400
expect_eq c7_sink_each_once "$(sort "$T/c7.rcpts" | uniq | wc -l | tr -d ' ')" 400
expect_eq c7_sink_no_duplicate "$(sort "$T/c7.rcpts" | uniq -d | head -n 3 | paste -sd ' ' -)" ""
cat "$T/c7a.log" "$T/c7b.log" | grep 'status=sent' |
	sed 's/.* to=<\([^>]*\)>.*/\1/' | sort >"$T/c7.sent"
echo "# c7: run a: $(sum c7a); run b: $(sum c7b); sink: $(counters c7 200)"
expect_eq c7_logged_once_each "$(uniq "$T/c7.sent" | wc -l | tr -d ' ') $(wc -l <"$T/c7.sent" | tr -d ' ')" "400 400"
stop_pid "$SINK7PID"

# ------------------------------------------------------------------
# 8. Connection reuse and pipelining: 20 messages to smtp-sink (which
# offers PIPELINING) and 20 to a second posternd (which drops a client
# that pipelines where it must not), one worker: a few sessions at the
# sink for all 20 messages; the posternd takes all 20, no protocol error.
sink c8
SINK8PID=$SPID
RP=$(free_port)
routes c8r "reuse2.example hold"
dconf c8r "listen=127.0.0.1:$RP" "routes_file=$T/c8r.routes"
pd_start c8r "$RP"
routes c8 "reuse.example [127.0.0.1]:$SP" "reuse2.example [127.0.0.1]:$RP"
dconf c8 "routes_file=$T/c8.routes" workers=1
# (Leak checks at the exit of 40 short enqueues take longer than
# everything else here; the enqueue path has its own tests.)
for i in $(seq 1 20); do
	ASAN_OPTIONS=detect_leaks=0 "$P" enqueue -f s@client.test.example \
		"r$i@reuse.example" <"$T/body" >/dev/null
	ASAN_OPTIONS=detect_leaks=0 "$P" enqueue -f s@client.test.example \
		"p$i@reuse2.example" <"$T/body" >/dev/null
done
runq c8a
expect_eq c8_summary "$(sum c8a)" "$(summary 40 0 0 0)"
expect_eq c8_exit "$(rc c8a)" 0
expect_eq c8_sink_messages "$(mesg c8 20)" 20
s8=$(sess c8 20)
echo "# c8: sink: $(counters c8 20)"
expect_eq c8_sink_few_sessions "$((s8 >= 1 && s8 < 5))" 1
expect_eq c8_sink_recipients "$(rcpts c8 | sort -u | wc -l | tr -d ' ')" 20
expect_eq c8_posternd_took_all "$(grep -c ': client=mx\.test\.example\[127\.0\.0\.1\], from=<s@client\.test\.example>, size=[0-9]*, nrcpt=1, ' "$T/c8r.pd")" 20
expect_eq c8_posternd_no_sync_error "$(grep -c 'improper command pipelining\|synchronization' "$T/c8r.pd")" 0
expect_eq c8_posternd_queue "$("$P" -c "$T/c8r.conf" queue --json | grep -c '"id"')" 20
pd_stop
stop_pid "$SINK8PID"

# ------------------------------------------------------------------
# 9. `postern flush` wakes the daemon. Backoff of an hour; a deferred
# recipient is delivered within seconds of a flush. (a) deferred by a
# 4xx reply; (b) deferred because nothing listened (the hop is down),
# then the server is started: the operator's flush is exactly for this.
# ((b) fails today: sched_take() defers every claim of a hop whose
# down_until is ahead, and a wake-up does not clear it.)
srv c9 --fail-first 1
S9PID=$SPID
DEAD9=$(free_port)
routes c9 "f1.example [127.0.0.1]:$SP" "f2.example [127.0.0.1]:$DEAD9"
LP=$(free_port)
dconf c9 "listen=127.0.0.1:$LP" "routes_file=$T/c9.routes" \
	min_backoff=1h max_backoff=1h
pd_start c9 "$LP"
enq a@f1.example
until_ok 100 is_state a@f1.example "deferred 1"
expect_eq c9a_deferred "$(att "$T/c9.pd" a@f1.example)" "attempts=1 dsn=4.3.0 status=deferred"
nt=$(rnext a@f1.example)
expect_eq c9a_next_try_far "$((nt - $(date +%s) > 2800))" 1
t0=$(date +%s%N)
expect_eq c9a_flush "$("$P" flush)" "postern flush: 1 recipient made due"
until_ok 50 is_gone a@f1.example
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq c9a_delivered "$(rq a@f1.example)" gone
expect_eq c9a_within_5s "$((ms <= 5000))" 1
expect_eq c9a_sent "$(att "$T/c9.pd" a@f1.example | sed 's/.* \/ //')" \
	"attempts=2 dsn=2.0.0 status=sent"
expect_eq c9a_received "$(grep '^MSG' "$T/c9.srv" | cut -d ' ' -f 3-)" a@f1.example

enq b@f2.example
until_ok 100 is_state b@f2.example "deferred 1"
expect_eq c9b_deferred "$(att "$T/c9.pd" b@f2.example)" "attempts=1 dsn=4.4.1 status=deferred"
SINKPORT=$DEAD9
sink c9b
S9BPID=$SPID
t0=$(date +%s%N)
expect_eq c9b_flush "$("$P" flush)" "postern flush: 1 recipient made due"
until_ok 50 is_gone b@f2.example
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq c9b_delivered_after_flush "$(rq b@f2.example)" gone
expect_eq c9b_within_5s "$((ms <= 5000))" 1
expect_eq c9b_sink_got_it "$(mesg c9b 1)" 1
expect_eq c9b_log "$(att "$T/c9.pd" b@f2.example | sed 's/.* \/ //')" \
	"attempts=2 dsn=2.0.0 status=sent"
pd_stop
expect_eq c9_stops "$?" 0
stop_pid "$S9PID"
stop_pid "$S9BPID"

# ------------------------------------------------------------------
# 10. Held domains. site.example and site3.example are hold_domains,
# site2.example a routes_file "hold": `postern run` delivers none of them
# (site2 is found by the timer and held again: "1 held"); `run --domain`
# sends each to its MX (dnsmasq: mx.site.example = 127.0.0.1, smtp_port
# the sink's); `postern flush ID` releases a held recipient too (README:
# "IDs and --domain also release mail held for its site"). (The flush by
# ID fails today: the due index's claim is not "flushed", so sched_take()
# holds it again; the domain flush below is the workaround.)
sink c10
S10=$SP
DNS_PORT=$(free_port)
dnsmasq --no-daemon --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/example/ --local-ttl=300 \
	--host-record=mx.site.example,127.0.0.1 \
	--mx-host=site.example,mx.site.example,10 \
	--mx-host=site2.example,mx.site.example,10 \
	--mx-host=site3.example,mx.site.example,10 \
	>"$T/dnsmasq.log" 2>&1 &
reap $!
wait_dns "$DNS_PORT" || notok c10_dnsmasq "$(head -c 300 "$T/dnsmasq.log")"
routes c10 "site2.example hold"
dconf c10 "routes_file=$T/c10.routes" hold_domains=site.example,site3.example \
	"dns_servers=127.0.0.1:$DNS_PORT" "smtp_port=$S10" smtp_tls=none
enq a@site.example
enq b@site2.example
enq c@site3.example
ID3=$ID
expect_eq c10_held_at_arrival "$(rq a@site.example) $(rq c@site3.example)" "held 0 held 0"
runq c10a
expect_eq c10_run_summary "$(sum c10a)" "$(summary 0 0 0 1)"
expect_eq c10_run_exit "$(rc c10a)" 0
expect_eq c10_run_no_delivery_lines "$(grep -c 'to=<' "$T/c10a.log")" 0
expect_eq c10_still_held "$(rq a@site.example) $(rq b@site2.example) $(rq c@site3.example)" \
	"held 0 held 0 held 0"
runq c10b --all
expect_eq c10_run_all_leaves_holds "$(sum c10b)" "$(summary 0 0 0 0)"
expect_eq c10_sink_untouched "$(sess c10 0)" ""
runq c10c --domain site.example
expect_eq c10_domain_summary "$(sum c10c)" "$(summary 1 0 0 0)"
expect_eq c10_domain_exit "$(rc c10c)" 0
expect_eq c10_domain_log "$(att "$T/c10c.log" a@site.example)" "attempts=1 dsn=2.0.0 status=sent"
expect_eq c10_domain_relay "$(relay "$T/c10c.log" a@site.example)" "mx.site.example[127.0.0.1]:$S10"
expect_eq c10_domain_others_held "$(rq b@site2.example) $(rq c@site3.example)" "held 0 held 0"
runq c10d --domain site2.example
expect_eq c10_route_hold_domain "$(sum c10d)" "$(summary 1 0 0 0)"
expect_eq c10_route_hold_relay "$(relay "$T/c10d.log" b@site2.example)" "mx.site.example[127.0.0.1]:$S10"
expect_eq c10_flush_id "$("$P" flush "$ID3")" "postern flush: 1 recipient made due"
runq c10e
expect_eq c10_flush_id_then_run "$(sum c10e)" "$(summary 1 0 0 0)"
expect_eq c10_flush_id_delivered "$(rq c@site3.example)" gone
# The domain flush (a flush request, served first by the claim) does.
if [ "$(rq c@site3.example)" != gone ]; then
	expect_eq c10_flush_domain "$("$P" flush --domain site3.example)" \
		"postern flush: 1 recipient made due"
	runq c10f
	expect_eq c10_flush_domain_then_run "$(sum c10f)" "$(summary 1 0 0 0)"
fi
expect_eq c10_sink_received "$(rcpts c10 | sort | paste -sd ' ' -)" \
	"a@site.example b@site2.example c@site3.example"
expect_eq c10_queue_empty "$(qcount)" 0

# Past hold_lifetime (2 s) a held recipient fails with 4.4.7, untried;
# its sender gets a DSN saying so.
dsn_sink c10hdsn
routes c10h "client.test.example [127.0.0.1]:$DP"
dconf c10h hold_domains=site4.example hold_lifetime=2s \
	"dns_servers=127.0.0.1:$DNS_PORT" "smtp_port=$S10" \
	"routes_file=$T/c10h.routes"
enq x@site4.example
t3=$(($(now_ms) + 3000))
lapsed() { [ "$(now_ms)" -ge "$t3" ]; }
until_ok 50 lapsed
runq c10h
# 1 failed: x@; 1 delivered: its DSN, to the DSN sink in the same run.
expect_eq c10h_summary "$(sum c10h)" "$(summary 1 0 1 0)"
expect_eq c10h_dsn "$(dsn_check c10hdsn)" \
	"1 files, to <sender@client.test.example> from <>: 1; Final-Recipient: x@site4.example; Status: 4.4.7"
expect_eq c10h_exit "$(rc c10h)" 1
expect_grep c10h_log 'to=<x@site4\.example>, relay=none, .*attempts=0, dsn=4\.4\.7, status=[a-z]* (held for its site longer than hold_lifetime)$' "$T/c10h.log"
expect_eq c10h_gone "$(rq x@site4.example)" gone
expect_eq c10h_nothing_sent "$(rcpts c10 | grep -c site4)" 0
stop_pid "$DPID"

# ------------------------------------------------------------------
# No sanitizer report anywhere.
expect_eq no_sanitizer_report "$(cat "$T"/*.log "$T"/*.pd 2>/dev/null | grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer')" 0
expect_eq servers_no_traceback "$(cat "$T/srv.err" "$T/c7.inject.err" 2>/dev/null | grep -c Traceback)" 0

# 410-bounce-deliver: DSNs end to end, with real peers. posternd delivers
# deliver.example to a scripted server (tests/integ/deliver_fail_srv.py)
# that refuses some recipients (550), defers others (451) and takes the
# rest; the return paths' domain, back.example, and our own name go to a
# second one that dumps every message it takes. Every DSN that arrives is
# parsed with Python's email package (tests/integ/dsn_check.py) and checked
# field by field.
#  - three recipients, one refused: the receiver gets the message for two,
#    the sender exactly one DSN naming only the third, nothing left queued;
#  - NOTIFY: NEVER (nothing), SUCCESS (a "relayed" notice, our next hop
#    having no DSN extension; none when it has), DELAY (one warning per
#    message, at most max_delay_warnings), FAILURE;
#  - mail from <>: one double bounce to postmaster@myhostname, never a
#    third message; a DSN whose own delivery fails becomes one double
#    bounce, and a double bounce that fails is dropped;
#  - bounce_rate_limit: the rest dropped and counted;
#  - held mail never collected within hold_lifetime: 4.4.7 "never
#    connected";
#  - crash: workers SIGKILLed at random moments (at least 20 kills) while
#    failures are recorded: afterwards each failed message is covered by
#    exactly one DSN (distinct Message-IDs at the sink) and nothing is left.
. "$POSTERN_TOP/tests/integ/lib.sh"

SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"
CHECK="$POSTERN_TOP/tests/integ/dsn_check.py"

# srv NAME OPTION... - start the scripted server on a free port: $SP.
srv() {
	_n=$1
	shift
	SP=$(free_port)
	mkdir -p "$T/$_n"
	"$PY" "$SRV" "$SP" "$T/$_n.log" --dump "$T/$_n" "$@" \
		>"$T/$_n.err" 2>&1 &
	reap $!
	wait_listen "$SP" 127.0.0.1 ||
		notok "${_n}_start" "$(head -c 300 "$T/$_n.err")"
}

# dumps NAME - how many messages NAME took.
dumps() { ls "$T/$1" 2>/dev/null | grep -c '\.env$'; }

# took NAME N - NAME took N messages or more.
took() { [ "$(dumps "$1")" -ge "$2" ]; }
# wait_dumps NAME N - poll (30 s at most) until NAME took N messages.
wait_dumps() { until_ok 300 took "$1" "$2"; }

# empty - nothing is queued.
empty() { [ "$(qjson 'len(msgs)')" = 0 ]; }
# wait_empty [TENTHS] - poll until the queue is empty.
wait_empty() { until_ok "${1:-300}" empty; }

# seen N PATTERN FILE - FILE has N lines matching PATTERN, or more.
seen() { [ "$(grep -c -- "$2" "$3")" -ge "$1" ]; }

# send FROM RCPT[,RCPT...] [RCPT-OPTION...] - submit over SMTP to posternd.
send() {
	"$PY" - "$SMTP_PORT" "$@" <<'EOPY'
import smtplib, sys
port, frm, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
opts = sys.argv[4:]
msg = ("From: <%s>\r\nTo: test\r\nSubject: bounce test\r\n"
       "Message-ID: <%d.test@back.example>\r\n\r\nhello\r\n"
       % (frm or "MAILER-DAEMON", abs(hash(sys.argv[3]))))
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo("client.test")
s.mail(frm, ["ENVID=env-" + rcpts[0].split("@")[0]])
for r in rcpts:
    code, text = s.rcpt(r, opts)
    assert code == 250, (code, text)
code, text = s.data(msg)
assert code == 250, (code, text)
s.quit()
EOPY
}

# dsns_to ADDR - the dumped messages sent to ADDR, one file name a line.
dsns_to() {
	grep -l "^to <$1>$" "$T"/back/*.env 2>/dev/null | sed 's/\.env$/.eml/'
}

# check_dsn NAME FILE KEY=VALUE... - dsn_check.py on one DSN.
check_dsn() {
	_n=$1
	_f=$2
	shift 2
	if "$PY" "$CHECK" "$_f" "$@" >"$T/check.out" 2>&1; then ok "$_n"; else
		notok "$_n" "$(grep -v '^ok ' "$T/check.out" | head -c 600)"; fi
}

srv rcv --bad refuse --temp busy
RCV=$SP
srv back --bad nobody
BACK=$SP
cat >"$T/routes" <<EOF
deliver.example [127.0.0.1]:$RCV
back.example [127.0.0.1]:$BACK
mx.test.example [127.0.0.1]:$BACK
EOF
chmod 644 "$T/routes"
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=0 bounce_rate_limit=0 || exit 1

# ------------------------------------------------------------------
# One message, three recipients, the third refused.
send a@back.example r1@deliver.example,r2@deliver.example,refuse3@deliver.example
wait_dumps back 1
wait_empty
expect_eq three_receiver_got_two "$(grep -c '^to <r[12]@deliver.example>$' "$T"/rcv/*.env)" 2
expect_eq three_one_dsn "$(dsns_to a@back.example | wc -l)" 1
f=$(dsns_to a@back.example | head -n 1)
check_dsn three_dsn_fields "$f" --to a@back.example \
	--rcpt refuse3@deliver.example=5.1.1 --envid env-r1 --ret headers \
	--reporting-mta mx.test.example
expect_eq three_dsn_names_only_third "$(grep -c 'r[12]@deliver.example' "$f")" 0
expect_eq three_dsn_from_null "$(sed -n 's/^from //p' "${f%.eml}.env")" "<>"
expect_eq three_nothing_queued "$(qjson 'len(msgs)')" 0
expect_grep three_log_line "postern/bounce\[[0-9]*\]: [0-9A-Z]*: sender non-delivery notification: [0-9A-Z]*$" "$T/posternd.log"

# ------------------------------------------------------------------
# NOTIFY=NEVER: refused, and nobody is told.
n0=$(dumps back)
send b@back.example refuse-never@deliver.example NOTIFY=NEVER
until_ok 100 seen 1 'RCPT <refuse-never@deliver.example> 550' "$T/rcv.log"
wait_empty
expect_eq never_no_dsn "$(dsns_to b@back.example | wc -l)" 0

# NOTIFY=SUCCESS to a hop without DSN: a "relayed" notice.
send c@back.example ok-success@deliver.example NOTIFY=SUCCESS
wait_dumps back $((n0 + 1))
wait_empty
f=$(dsns_to c@back.example | head -n 1)
expect_eq success_one_notice "$(dsns_to c@back.example | wc -l)" 1
check_dsn success_relayed "$f" --kind success --to c@back.example \
	--rcpt ok-success@deliver.example=2.0.0 --envid env-ok-success

# NOTIFY=FAILURE,DELAY with NOTIFY=FAILURE only on another: a failure DSN
# for the refused one.
send d@back.example refuse-fd@deliver.example NOTIFY=FAILURE,DELAY
wait_dumps back $((n0 + 2))
wait_empty
f=$(dsns_to d@back.example | head -n 1)
check_dsn failure_notify "$f" --rcpt refuse-fd@deliver.example=5.1.1 \
	--envid env-refuse-fd

# ------------------------------------------------------------------
# Mail from <> that fails: one double bounce to postmaster@myhostname.
n1=$(dumps back)
send "" refuse-null@deliver.example
wait_dumps back $((n1 + 1))
wait_empty
expect_eq null_double_bounce "$(dsns_to postmaster@mx.test.example | wc -l)" 1
check_dsn null_double_fields "$(dsns_to postmaster@mx.test.example | head -n 1)" \
	--double --to postmaster@mx.test.example \
	--rcpt refuse-null@deliver.example=5.1.1 --envid env-refuse-null
expect_eq null_nothing_to_null "$(grep -l '^to <>$' "$T"/back/*.env 2>/dev/null | wc -l)" 0
expect_grep null_log "double bounce to postmaster" "$T/posternd.log"

# A DSN that cannot be delivered (the sender's server refuses it): one
# double bounce, and nothing more.
n2=$(dumps back)
send nobody@back.example refuse-dsnfail@deliver.example
wait_dumps back $((n2 + 1))
wait_empty
expect_eq dsnfail_double_bounce "$(dsns_to postmaster@mx.test.example | wc -l)" 2
expect_eq dsnfail_no_third "$(dumps back)" $((n2 + 1))

stop_posternd
expect_eq part1_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# ------------------------------------------------------------------
# A double bounce that fails is dropped: postmaster refused too.
mv "$T/posternd.log" "$T/posternd1.log"
SMTP_PORT=
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=0 bounce_rate_limit=0 \
	double_bounce_recipient=nobody-pm@back.example || exit 1
n3=$(dumps back)
send "" refuse-null2@deliver.example
until_ok 100 seen 1 'RCPT <nobody-pm@back.example> 550' "$T/back.log"
wait_empty
expect_eq dropped_double_nothing_taken "$(dumps back)" "$n3"
expect_eq dropped_double_tried_once "$(grep -c 'RCPT <nobody-pm@back.example> 550' "$T/back.log")" 1
stop_posternd

# ------------------------------------------------------------------
# Delay warnings: NOTIFY=DELAY, a recipient that keeps getting 451: one
# warning (max_delay_warnings 1), none for NOTIFY=FAILURE.
mv "$T/posternd.log" "$T/posternd2.log"
SMTP_PORT=
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=2s max_delay_warnings=1 \
	bounce_rate_limit=0 || exit 1
send e@back.example busy-delay@deliver.example NOTIFY=DELAY,FAILURE
send f@back.example busy-nodelay@deliver.example NOTIFY=FAILURE
wait_dumps back "$(($(dumps back) + 1))"
# Three more tries at least (1 s apart) after the warning.
until_ok 150 seen 6 'RCPT <busy-delay@deliver.example> 451' "$T/rcv.log"
expect_eq delay_one_warning "$(dsns_to e@back.example | wc -l)" 1
f=$(dsns_to e@back.example | head -n 1)
check_dsn delay_fields "$f" --kind delay --to e@back.example \
	--rcpt busy-delay@deliver.example=4.2.0 --envid env-busy-delay
expect_eq delay_none_without_notify "$(dsns_to f@back.example | wc -l)" 0
expect_eq delay_still_queued "$(qjson 'sum(1 for m in msgs for r in m["recipients"] if r["address"].startswith("busy-"))')" 2
stop_posternd
# Stopped: nothing is out with a runner, so everything goes.
"$P" delete --domain deliver.example >/dev/null 2>&1
expect_eq delay_deleted "$(qjson 'len(msgs)')" 0

# ------------------------------------------------------------------
# Rate limit: 2 DSNs an hour to one return path; the third is dropped
# and counted.
mv "$T/posternd.log" "$T/posternd3.log"
SMTP_PORT=
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=0 bounce_rate_limit=2 || exit 1
n4=$(dumps back)
send g@back.example refuse-g1@deliver.example
send g@back.example refuse-g2@deliver.example
send g@back.example refuse-g3@deliver.example
wait_dumps back $((n4 + 2))
until_ok 100 seen 3 'RCPT <refuse-g[123]@deliver.example> 550' "$T/rcv.log"
wait_empty
expect_eq rate_two_sent "$(dsns_to g@back.example | wc -l)" 2
expect_grep rate_logged "dropped (rate limit)" "$T/posternd.log"
stop_posternd

# ------------------------------------------------------------------
# Held mail never collected: hold_lifetime 2s.
mv "$T/posternd.log" "$T/posternd4.log"
SMTP_PORT=
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=1s hold_domains=site.example \
	hold_lifetime=2s bounce_rate_limit=0 || exit 1
n5=$(dumps back)
send h@back.example bob@site.example NOTIFY=DELAY,FAILURE
wait_dumps back $((n5 + 1))
wait_empty
expect_eq hold_one_dsn "$(dsns_to h@back.example | wc -l)" 1
f=$(dsns_to h@back.example | head -n 1)
check_dsn hold_expired "$f" --to h@back.example --rcpt bob@site.example=4.4.7 --envid env-bob
expect_grep hold_words "never connected" "$f"
stop_posternd

# ------------------------------------------------------------------
# Crash: 40 messages, each with one refused recipient, while posternd's
# workers, and then the whole daemon, are SIGKILLed at random moments
# (24 rounds); a short lease brings back what the dead held. Every message
# gets exactly one DSN: the same one (its Message-ID) if a DSN was sent
# again because its own delivery was cut short (delivery is at least
# once), never a second one.
mv "$T/posternd.log" "$T/posternd5.log"
SMTP_PORT=
start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
	max_backoff=1s delay_warning=0 bounce_rate_limit=0 lease_time=2s || exit 1
"$PY" - "$SMTP_PORT" <<'EOPY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
for i in range(40):
    s.sendmail("crash%d@back.example" % i,
               ["refuse-c%d@deliver.example" % i, "ok-c%d@deliver.example" % i],
               "Subject: crash %d\r\n\r\nbody\r\n" % i)
s.quit()
EOPY
# tree PID - PID and all its descendants.
tree() {
	echo "$1"
	for _c in $(pgrep -P "$1"); do
		tree "$_c"
	done
}
kills=0
round=0
while [ $round -lt 24 ]; do
	round=$((round + 1))
	sleep "0.$(shuf -i 1-4 -n 1)"
	for w in $(pgrep -P "$PD_PID"); do
		for k in $(pgrep -P "$w"); do
			kill -KILL "$k" 2>/dev/null && kills=$((kills + 1))
		done
	done
	sleep "0.0$(shuf -i 1-9 -n 1)"
	# shellcheck disable=SC2046
	kill -KILL $(tree "$PD_PID") 2>/dev/null
	wait "$PD_PID" 2>/dev/null
	start_posternd "routes_file=$T/routes" workers=2 min_backoff=1s \
		max_backoff=1s delay_warning=0 bounce_rate_limit=0 \
		lease_time=2s || break
done
expect_eq crash_kills_done "$([ $kills -ge 20 ] && echo yes)" yes
wait_empty 600
"$PY" - "$T/back" <<'EOPY' >"$T/crash.out"
import email, glob, os, sys
by_sender = {}
for env in glob.glob(os.path.join(sys.argv[1], "*.env")):
    to = [l[4:-1] for l in open(env).read().splitlines() if l.startswith("to <")]
    if not to or not to[0].startswith("crash"):
        continue
    m = email.message_from_bytes(open(env[:-4] + ".eml", "rb").read())
    by_sender.setdefault(to[0], set()).add(m["Message-ID"])
print("senders", len(by_sender))
print("multi", sum(1 for v in by_sender.values() if len(v) != 1))
EOPY
expect_eq crash_every_message_one_dsn "$(sed -n 's/^senders //p' "$T/crash.out")" 40
expect_eq crash_no_second_dsn "$(sed -n 's/^multi //p' "$T/crash.out")" 0
expect_eq crash_nothing_left "$(qjson 'len(msgs)')" 0
[ "$(qjson 'len(msgs)')" = 0 ] || "$P" queue | sed 's/^/    | /' | head -20
stop_posternd
expect_eq no_sanitizer_report "$(cat "$T"/posternd*.log | grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer')" 0

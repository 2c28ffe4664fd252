# 500-etrn: ETRN on the SMTP port (RFC 1985) against a real posternd, with
# python smtplib as the client and Postfix smtp-sink as the sites' servers.
#
# The sites' mail is held (hold_domains) and routed in routes_file to an
# smtp-sink on 127.0.0.2 (site.example, its subdomains, q1/q2 of the
# queue "pair", locked.example), and "caller:CP" for cal.example, whose
# owner site1 (users_file) listens on 127.0.0.7:CP.
#
# Checked: ETRN before EHLO (503), without an argument and with a bad one
# (501), inside a mail transaction (503); an unknown domain and an unknown
# #queue (459, no count); a plain domain flush: 253 with the number of
# messages (not recipients), every message at the sink and one compared
# byte for byte with the stored one, the subdomain's mail left held;
# @domain takes the subdomains; #queue; 251 when nothing waits; a repeat
# within etrn_min_interval (the same answer, no flush request, newly held
# mail stays held, the log says so); after a SIGHUP to a rules file
# (etrn_policy), a domain the client may not flush (459 in the same words
# as an unknown one, nothing flushed); a backup MX's deferred mail for a
# relay domain, due at once when its primary ETRNs; authenticated ETRN to
# the caller:
# without AUTH and as another user 459 and nothing moves, as the owner the
# mail arrives at the caller's 127.0.0.7:CP; one log line per ETRN;
# "ETRN @par.example" by its owner is refused when sub.par.example below
# it is another user's caller route (bob's mail stays held, nothing at
# the caller 127.0.0.8); an ETRN resets only the flushed domains' hops
# (new mail for a dead host stays deferred without a connection).
. "$POSTERN_TOP/tests/integ/lib.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"

SP=$(free_port)		# the site sink on 127.0.0.2
PP=$(free_port)		# the primary MX of relay.example, 127.0.0.3: down
CP=$(free_port)		# the caller's listener on 127.0.0.7
DP=$(free_port)		# dead.example's host on 127.0.0.4: closes at once

# sink NAME IP PORT - smtp-sink dumping each message into $T/NAME/.
sink() {
	mkdir -p "$T/$1"
	chmod 777 "$T/$1"
	smtp-sink -u postern -c -d "$T/$1/%H%M%S." "$2:$3" 10 \
		>>"$T/$1.out" 2>&1 &
	reap $!
	wait_listen "$3" "$2" || notok "sink_$1" "smtp-sink on $2:$3 did not start"
}
# got NAME ADDR - messages at sink NAME for ADDR.
got() {
	grep -l -x -F "X-Rcpt-Args: <$2>" "$T/$1"/* 2>/dev/null | wc -l |
		tr -d ' '
}
has() { [ "$(got "$1" "$2")" -ge 1 ]; }
# files NAME - message files at sink NAME.
files() { ls "$T/$1" 2>/dev/null | wc -l | tr -d ' '; }
# state ADDR - the queue states of ADDR's recipients, sorted, one line.
state() {
	qjson "' '.join(sorted(r['state'] for m in msgs for r in m['recipients'] if r['address'] == '$1'))"
}
gone() { [ -z "$(state "$1")" ]; }
pending() {
	"$P" stats --json | "$PY" -c '
import json, sys
print(" ".join(json.load(sys.stdin)["flush_pending"]))'
}
send() {	# send RCPT... - one message, its id in $T/last_id
	{
		printf 'Subject: etrn test %s\n' "$*"
		printf 'From: sender@src.example\n\n'
		printf 'body line for %s\n' "$*"
	} | "$P" enqueue -f sender@src.example "$@" >"$T/last_id" 2>"$T/enq.err"
}

sink site 127.0.0.2 "$SP"
sink caller 127.0.0.7 "$CP"
sink alice 127.0.0.8 "$CP"

cat >"$T/routes" <<EOF
site.example	[127.0.0.2]:$SP
.site.example	[127.0.0.2]:$SP
q1.example	[127.0.0.2]:$SP
.q2.example	[127.0.0.2]:$SP
locked.example	[127.0.0.2]:$SP
empty.example	[127.0.0.2]:$SP
cal.example	caller:$CP
sub.par.example	caller:$CP
relay.example	[127.0.0.3]:$PP
dead.example	[127.0.0.4]:$DP
EOF
printf '%s\n' "sitepass" | "$P" passwd site1 cal.example >"$T/users"
printf '%s\n' "otherpass" | "$P" passwd other other.example |
	tail -n 1 >>"$T/users"
printf '%s\n' "alicepass" | "$P" passwd alice par.example |
	tail -n 1 >>"$T/users"
printf '%s\n' "bobpass" | "$P" passwd bob sub.par.example |
	tail -n 1 >>"$T/users"
chmod 644 "$T/routes" "$T/users"
cat >"$T/etrn.rules" <<EOF
# who may ETRN what, after the reload
site.example	any
locked.example	192.0.2.0/24 user=nobody
EOF
chmod 644 "$T/etrn.rules"

# `postern check` reads etrn_policy and etrn_queues with the listener's
# parser, naming the key, the file and the line.
printf 'site.example any\nlocked.example sometimes\n' >"$T/bad.rules"
conf "etrn_policy=$T/bad.rules"
expect_rc etrn_check_bad_rules 1 "$P" check
expect_grep etrn_check_bad_rules_says \
	"etrn_policy: $T/bad.rules:2: bad condition \"sometimes\"" "$T/out"
conf "etrn_queues=pair:q1.example:bad..example"
expect_rc etrn_check_bad_queues 1 "$P" check
expect_grep etrn_check_bad_queues_says "etrn_queues: queue \"pair\": bad domain" \
	"$T/out"
conf "etrn_policy=$T/etrn.rules" "etrn_queues=pair:q1.example:@q2.example"
expect_rc etrn_check_good 0 "$P" check

HOLD="site.example .site.example q1.example .q2.example locked.example empty.example cal.example other.example par.example sub.par.example"
start_posternd "hold_domains=$HOLD" "relay_domains=relay.example" "routes_file=$T/routes" \
	"users_file=$T/users" "etrn_queues=pair:q1.example:@q2.example" \
	"etrn_min_interval=1h" "workers=2" "min_backoff=1h" \
	"max_backoff=2h" || exit 1
BASE_CONF=$(cat "$T/postern.conf")

# The client: python smtplib. etrn_client [--src IP] [--user U --pw P]
# [--no-ehlo] [--mail] ARG... - one session: EHLO (unless --no-ehlo), AUTH
# CRAM-MD5 (with --user), MAIL FROM (with --mail), then "ETRN ARG" for
# each ARG ("-" sends ETRN without one); prints "CODE TEXT" a reply.
cat >"$T/etrn.py" <<'EOPY'
import smtplib, sys
args = sys.argv[1:]
src, user, pw, ehlo, mail = None, None, None, True, False
while args and args[0].startswith("--"):
    o = args.pop(0)
    if o == "--src": src = args.pop(0)
    elif o == "--user": user = args.pop(0)
    elif o == "--pw": pw = args.pop(0)
    elif o == "--no-ehlo": ehlo = False
    elif o == "--mail": mail = True
port = int(args.pop(0))
s = smtplib.SMTP("127.0.0.1", port, timeout=20,
                 source_address=(src, 0) if src else None)
if ehlo:
    s.ehlo("client.test")
if user:
    s.login(user, pw)
if mail:
    s.mail("a@src.example")
for a in args:
    c, m = s.docmd("ETRN", "" if a == "-" else a)
    print(c, m.decode())
s.quit()
EOPY
etrn() { "$PY" "$T/etrn.py" "$@" 2>&1; }

# ------------------------------------------------------------------
# Refusals that need no queue.
r=$(etrn --no-ehlo "$SMTP_PORT" site.example)
expect_eq etrn_before_ehlo_503 "${r%% *}" 503
r=$(etrn "$SMTP_PORT" -)
expect_eq etrn_no_arg_501 "${r%% *}" 501
r=$(etrn "$SMTP_PORT" 'bad..domain')
expect_eq etrn_bad_domain_501 "${r%% *}" 501
r=$(etrn --mail "$SMTP_PORT" site.example)
expect_eq etrn_in_transaction_503 "${r%% *}" 503
R_UNKNOWN=$(etrn "$SMTP_PORT" unknown.example)
expect_eq etrn_unknown_459 "$R_UNKNOWN" \
	"459 4.7.0 Node unknown.example not allowed: unavailable"
r=$(etrn "$SMTP_PORT" '#nosuch')
expect_eq etrn_unknown_queue_459 "$r" \
	"459 4.7.0 Node #nosuch not allowed: unavailable"

# ------------------------------------------------------------------
# A plain domain: three messages, four recipients; one in a subdomain.
send a@site.example b@site.example
ID1=$(cat "$T/last_id")
send c@site.example
send d@site.example
send e@x.site.example
"$P" show --raw "$ID1" >"$T/raw1"
expect_eq etrn_site_held "$(state a@site.example) $(state e@x.site.example)" \
	"held held"
r=$(etrn "$SMTP_PORT" site.example)
expect_eq etrn_count_is_messages "$r" \
	"253 2.0.0 OK, 3 pending messages for node site.example started"
if poll_for 20 eval '[ "$(files site)" -ge 3 ] && gone a@site.example &&
    gone b@site.example && gone c@site.example && gone d@site.example'; then
	ok etrn_site_delivered
else
	notok etrn_site_delivered "sink has $(files site) files; queue: $(state a@site.example)/$(state c@site.example)"
fi
expect_eq etrn_site_messages_at_sink "$(files site) $(got site a@site.example) $(got site b@site.example) $(got site d@site.example)" "3 1 1 1"
# The two-recipient message, byte for byte as stored. smtp-sink writes
# LF line ends and adds its X- lines and its own Received: field first.
f=$(grep -l -x -F "X-Rcpt-Args: <a@site.example>" "$T/site"/* | head -n 1)
if "$PY" - "$T/raw1" "$f" <<'EOPY'
import re, sys
raw = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
got = open(sys.argv[2], "rb").read()
got = re.sub(rb"\A(X-[A-Za-z-]+: [^\n]*\n)*", b"", got)
got = re.sub(rb"\AReceived: from [^\n]*\n(\t[^\n]*\n)*", b"", got, count=1)
# (and a blank line after the message)
sys.exit(0 if got in (raw, raw + b"\n") and b"by smtp-sink" not in raw
         else 1)
EOPY
then ok etrn_site_bytes; else
	notok etrn_site_bytes "$(diff "$T/raw1" "$f" | head -c 300)"; fi
expect_eq etrn_plain_not_subdomain "$(state e@x.site.example)" held

# @domain: the subdomain too.
r=$(etrn "$SMTP_PORT" @site.example)
expect_eq etrn_at_domain_253 "$r" \
	"253 2.0.0 OK, 1 pending message for node @site.example started"
if poll_for 20 eval 'has site e@x.site.example && gone e@x.site.example'; then
	ok etrn_at_domain_delivered
else
	notok etrn_at_domain_delivered "queue: $(state e@x.site.example)"
fi

# #queue: q1.example and the subdomains of q2.example.
send f@q1.example
send g@y.q2.example
r=$(etrn "$SMTP_PORT" '#pair')
expect_eq etrn_queue_253 "$r" \
	"253 2.0.0 OK, 2 pending messages for node #pair started"
if poll_for 20 eval 'has site f@q1.example && has site g@y.q2.example'; then
	ok etrn_queue_delivered
else
	notok etrn_queue_delivered "queue: $(state f@q1.example)/$(state g@y.q2.example)"
fi

# Nothing waiting: 251.
r=$(etrn "$SMTP_PORT" empty.example)
expect_eq etrn_none_251 "$r" \
	"251 2.0.0 OK, no messages waiting for node empty.example"

# The rate limit: site.example again within etrn_min_interval gets the
# first answer, and newly held mail is not flushed by it.
send h@site.example
r=$(etrn "$SMTP_PORT" site.example)
expect_eq etrn_repeat_same_answer "$r" \
	"253 2.0.0 OK, 3 pending messages for node site.example started"
expect_eq etrn_repeat_not_flushed "$(state h@site.example) [$(pending)]" \
	"held []"
expect_grep etrn_repeat_logged \
	"arg=site.example, .*repeated within etrn_min_interval" "$T/posternd.log"
expect_grep etrn_log_line \
	"client=client.test\[127.0.0.1\], user=none, command=ETRN, arg=site.example, domains=site.example, msgs=3, reply=253 (started)" \
	"$T/posternd.log"

# ------------------------------------------------------------------
# A backup MX: relay.example is not held; its primary is down, so its
# mail is deferred (an hour: min_backoff). The primary comes back and
# sends ETRN: the mail is due now and the hop found down is tried again.
send k@relay.example
if poll_for 20 eval '[ "$(state k@relay.example)" = deferred ]'; then
	ok etrn_relay_deferred
else
	notok etrn_relay_deferred "state $(state k@relay.example)"
fi
sink primary 127.0.0.3 "$PP"
r=$(etrn --src 127.0.0.3 "$SMTP_PORT" relay.example)
expect_eq etrn_relay_253 "$r" \
	"253 2.0.0 OK, 1 pending message for node relay.example started"
if poll_for 20 eval 'has primary k@relay.example && gone k@relay.example'; then
	ok etrn_relay_delivered
else
	notok etrn_relay_delivered "state $(state k@relay.example); $(grep -e relay.example -e 127.0.0.3 -e 'ETRN' "$T/posternd.log" | tail -n 8)"
fi

# ------------------------------------------------------------------
# Authenticated ETRN to the caller.
send i@cal.example
r=$(etrn --src 127.0.0.7 "$SMTP_PORT" cal.example)
expect_eq etrn_caller_noauth_459 "$r" \
	"459 4.7.0 Node cal.example not allowed: unavailable"
r=$(etrn --src 127.0.0.7 --user other --pw otherpass "$SMTP_PORT" cal.example)
expect_eq etrn_caller_other_user_459 "$r" \
	"459 4.7.0 Node cal.example not allowed: unavailable"
expect_eq etrn_caller_noauth_nothing_moves \
	"$(state i@cal.example) [$(pending)] $(files caller)" "held [] 0"
r=$(etrn --src 127.0.0.7 --user site1 --pw sitepass "$SMTP_PORT" cal.example)
expect_eq etrn_caller_owner_253 "$r" \
	"253 2.0.0 OK, 1 pending message for node cal.example started"
if poll_for 20 eval 'has caller i@cal.example && gone i@cal.example'; then
	ok etrn_caller_delivered_to_caller
else
	notok etrn_caller_delivered_to_caller "queue: $(state i@cal.example); caller sink $(files caller); $(grep 'i@cal.example' "$T/posternd.log" | tail -n 2)"
fi
expect_grep etrn_caller_relay_logged \
	"to=<i@cal.example>, relay=127.0.0.7\[127.0.0.7\]:$CP" "$T/posternd.log"

# Another owner's caller-routed subdomain: alice owns par.example, bob
# its subdomain sub.par.example (caller:CP). "ETRN @par.example" by alice
# would send bob's mail to alice's address: refused, bob's mail held.
send w@sub.par.example
send x@par.example
r=$(etrn --src 127.0.0.8 --user alice --pw alicepass "$SMTP_PORT" @par.example)
expect_eq etrn_caller_sub_other_owner_459 "$r" \
	"459 4.7.0 Node @par.example not allowed: unavailable"
# Her own domain by its name still flushes (it has no caller route: its
# mail goes by its MX, not to her; the point is that bob's stays).
r=$(etrn --src 127.0.0.8 --user alice --pw alicepass "$SMTP_PORT" par.example)
expect_eq etrn_caller_sub_own_253 "${r%% *}" 253
if poll_for 10 eval '[ "$(state x@par.example)" != held ]'; then :; fi
expect_eq etrn_caller_sub_bob_held \
	"$(state w@sub.par.example) $(files alice)" "held 0"

# ------------------------------------------------------------------
# An ETRN resets only the flushed domains' hops. dead.example's host
# accepts and closes at once (a hop down; it counts connections). Each
# round flushes another held domain (253, delivered), then new mail for
# dead.example comes: its hop stays down (deferred, no connection),
# where any ETRN used to make every hop found down be tried again.
cat >"$T/deadsrv.py" <<'EOPY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.4", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as f: f.write("conn\n")
    c.close()
EOPY
"$PY" "$T/deadsrv.py" "$DP" "$T/dead.log" >/dev/null 2>&1 &
reap $!
wait_listen "$DP" 127.0.0.4 || notok deadsrv_start "did not start"
conns() { wc -l <"$T/dead.log" 2>/dev/null | tr -d ' '; }
send d0@dead.example
if poll_for 20 eval '[ "$(state d0@dead.example)" = deferred ]'; then
	ok etrn_dead_deferred
else notok etrn_dead_deferred "state $(state d0@dead.example)"; fi
c0=$(conns)
for i in 1 2 3; do
	send "m@x$i.site.example"
	r=$(etrn "$SMTP_PORT" "x$i.site.example")
	[ "${r%% *}" = 253 ] || notok etrn_dead_round_$i "$r"
	poll_for 20 has site "m@x$i.site.example" ||
		notok etrn_dead_round_$i "x$i.site.example not delivered"
	send "d$i@dead.example"
	poll_for 20 eval '[ "$(state d$i@dead.example)" = deferred ]' ||
		notok etrn_dead_round_$i "state $(state d$i@dead.example)"
done
expect_eq etrn_other_hops_stay_down "$c0 $(conns)" "1 1"

# ------------------------------------------------------------------
# A rules file (SIGHUP): locked.example has mail; this client may not
# flush it, and hears the words an unknown domain gets.
send j@locked.example
{
	printf '%s\n' "$BASE_CONF"
	echo "etrn_policy = $T/etrn.rules"
} | grep -v '^etrn_policy = relay_domains$' >"$T/postern.conf"
kill -HUP "$PD_PID"
if poll_for 10 grep -q "smtpd.*configuration reloaded" "$T/posternd.log"; then
	ok etrn_policy_reloaded
else
	notok etrn_policy_reloaded "$(tail -n 5 "$T/posternd.log")"
fi
r=$(etrn "$SMTP_PORT" locked.example)
expect_eq etrn_not_allowed_same_words \
	"$(printf '%s' "$r" | sed 's/locked.example/unknown.example/')" "$R_UNKNOWN"
expect_eq etrn_not_allowed_nothing_flushed \
	"$(state j@locked.example) [$(pending)]" "held []"
r=$(etrn "$SMTP_PORT" q1.example)
expect_eq etrn_rules_no_rule_459 "${r%% *}" 459

stop_posternd

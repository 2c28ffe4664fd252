# 610-sites: held sites, "mail is waiting" notices, stats, run progress.
#  0. `postern check` wants site_notify_command to be an absolute path
#     to a program.
#  1. site_notify_command (a script that writes its arguments and the
#     time to a file), site_notify_threshold=3, interval 3 s: nothing
#     with two messages waiting for held.example; once a third comes, one
#     notice with "held.example 3 AGE 0"; a second one only after the
#     interval has passed (2 s or more after the first: the times are
#     whole seconds), not within it; no other domain is named.
#  2. site_notify_age=2s (threshold off): a single message to
#     aged.example gets its notice once it is 2 s old, with an age >= 2.
#  3. A command that hangs (sleep 1000 under a shell script) is killed,
#     its whole process group, at site_notify_timeout (4 s), and logged;
#     meanwhile mail to another domain is delivered (at a smtp-sink) while
#     the hung command still lives.
#  4. `postern stats --json` (its old fields kept) shows each held site
#     with messages, recipients, oldest (the arrival `postern queue`
#     shows) and last_seen: 0 before; after an accepted ETRN the time of
#     it; after an ETRN refused by the policy (a caller route without
#     AUTH: 459) still 0; after `postern pull` (ATRN on odmr_listen) the
#     time of it, and again after a pull that finds no mail (453). The
#     text output lists the held sites.
#  5. `postern run` on a terminal (script(1)'s pty) draws its progress
#     line ("N of M recipients done"); piped, only the summary.
. "$POSTERN_TOP/tests/integ/lib.sh"

SP=$(free_port)		# the sink for other.example and etrned.example
CP=$(free_port)		# calld.example's caller port (nobody listens)
OP=$(free_port)		# odmr_listen

mkdir -p "$T/sink"
chmod 777 "$T/sink"
smtp-sink -u postern -c -d "$T/sink/%H%M%S." "127.0.0.2:$SP" 10 \
	>>"$T/sink.out" 2>&1 &
reap $!
wait_listen "$SP" 127.0.0.2 || notok sink_started "no smtp-sink on $SP"
# sunk ADDR - messages at the sink for ADDR.
sunk() {
	grep -l -x -F "X-Rcpt-Args: <$1>" "$T/sink"/* 2>/dev/null | wc -l |
		tr -d ' '
}

cat >"$T/routes" <<EOF
other.example	[127.0.0.2]:$SP
etrned.example	[127.0.0.2]:$SP
calld.example	caller:$CP
EOF
printf 'pw1\n' | "$P" passwd site1 pulled.example calld.example >"$T/users"
chmod 644 "$T/routes" "$T/users"

# The notice command and the hanging one; posternd runs as postern.
: >"$T/notices"
: >"$T/hang.pids"
chmod 666 "$T/notices" "$T/hang.pids"
cat >"$T/notify.sh" <<EOF
#!/bin/sh
echo "\$(date +%s.%N) \$*" >>"$T/notices"
EOF
cat >"$T/hang.sh" <<EOF
#!/bin/sh
echo "\$\$" >>"$T/hang.pids"
sleep 1000
EOF
chmod 755 "$T/notify.sh" "$T/hang.sh"

HOLD="held.example aged.example hang.example pulled.example etrned.example"
COMMON="hold_domains=$HOLD|routes_file=$T/routes|users_file=$T/users|odmr_listen=127.0.0.1:$OP|workers=2|auth_failure_delay=0s|etrn_min_interval=0s"
# start KEY=VALUE... - posternd on the common keys and these.
start() {
	_old=$IFS
	IFS='|'
	# shellcheck disable=SC2086
	set -- $COMMON "$@"
	IFS=$_old
	start_posternd "$@"
}
N=0
enq() {
	N=$((N + 1))
	printf 'Subject: sites %s\n\nbody %s\n' "$N" "$N" |
	    "$P" enqueue -f a@src.example "$@" >/dev/null
}
# notices DOMAIN - lines of the notice file naming DOMAIN.
notices() { grep -c " $1 " "$T/notices"; }

# ------------------------------------------------------------------
# 0. `postern check`: the command runs without a shell, so it must be an
# absolute path to a program.
conf "site_notify_command=notify.sh x"
expect_rc check_notify_relative 1 "$P" check
expect_grep check_notify_relative_says \
	"site_notify_command: notify.sh: want an absolute path" "$T/out"
conf "site_notify_command=$T/nosuch.sh"
expect_rc check_notify_missing 1 "$P" check
conf "site_notify_command=$T/notify.sh"
expect_rc check_notify_good 0 "$P" check

# ------------------------------------------------------------------
# 1. The threshold and the interval.
enq a@held.example b@held.example
enq c@held.example
start "site_notify_command=$T/notify.sh" site_notify_threshold=3 \
	site_notify_age=0 site_notify_interval=3s || exit 1
until_ok 100 grep -q "started notify" "$T/posternd.log" ||
	notok notify_started "no notify process"
# Two checks (one a second, half the interval) with two messages: none.
# A bounded wait is the only way to see that something does not happen.
sleep 2.5
expect_eq notify_below_threshold_none "$(notices held.example)" 0
enq d@held.example
if poll_for 10 eval '[ "$(notices held.example)" -ge 1 ]'; then
	ok notify_threshold_fires
else
	notok notify_threshold_fires "no notice: $(tail -3 "$T/posternd.log")"
fi
first=$(grep " held.example " "$T/notices" | head -n 1)
set -- $first - - - - -		# (set -u: none may be missing)
expect_eq notify_args "$2 $3 $5" "held.example 3 0"
case $4 in
''|*[!0-9]*) notok notify_arg_age "age \"$4\"" ;;
*) [ "$4" -le 60 ] && ok notify_arg_age || notok notify_arg_age "age $4" ;;
esac
expect_grep notify_logged \
	"site=held.example, msgs=3, rcpts=4, oldest_age=[0-9]*, last_seen=0, why=threshold, pid=[0-9]*: notice command started" \
	"$T/posternd.log"
t1=$1
if poll_for 10 eval '[ "$(notices held.example)" -ge 2 ]'; then
	t2=$(grep " held.example " "$T/notices" | sed -n '2s/ .*//p')
	if "$PY" -c "import sys; d = $t2 - $t1; sys.exit(0 if 2.0 <= d <= 6.0 else 1)"; then
		ok notify_not_within_interval_again_after
	else
		notok notify_not_within_interval_again_after "first $t1, second $t2"
	fi
else
	notok notify_not_within_interval_again_after "no second notice"
fi
expect_eq notify_only_held_over_threshold \
	"$(grep -v -c " held.example " "$T/notices")" 0
stop_posternd

# ------------------------------------------------------------------
# 2. The age.
: >"$T/notices"
enq x@aged.example
start "site_notify_command=$T/notify.sh" site_notify_threshold=0 \
	site_notify_age=2s site_notify_interval=1h || exit 1
if poll_for 10 eval '[ "$(notices aged.example)" -ge 1 ]'; then
	ok notify_age_fires
	set -- $(grep " aged.example " "$T/notices" | head -n 1) - - - - -
	expect_eq notify_age_args "$2 $3" "aged.example 1"
	[ "$4" -ge 2 ] 2>/dev/null && ok notify_age_at_least ||
		notok notify_age_at_least "age $4"
else
	notok notify_age_fires "no notice: $(tail -3 "$T/posternd.log")"
fi
expect_grep notify_age_logged "site=aged.example, .*why=age" "$T/posternd.log"
stop_posternd

# ------------------------------------------------------------------
# 3. A command that hangs: killed at its timeout, delivery goes on.
# (The other held domains had their notices within the interval.)
enq h@hang.example
start "site_notify_command=$T/hang.sh" site_notify_threshold=1 \
	site_notify_age=0 site_notify_interval=1h site_notify_timeout=4s ||
	exit 1
until_ok 100 test -s "$T/hang.pids" || notok hang_started "no hang.sh"
HP=$(head -n 1 "$T/hang.pids")
HP=${HP:-0}
enq z@other.example
if [ "$HP" -gt 0 ] && poll_for 10 eval '[ "$(sunk z@other.example)" -ge 1 ]' &&
    kill -0 "$HP" 2>/dev/null; then
	ok hang_delivery_goes_on
else
	notok hang_delivery_goes_on "sunk $(sunk z@other.example), hang alive: $(kill -0 "$HP" 2>&1 && echo yes)"
fi
if [ "$HP" -gt 0 ] && poll_for 10 eval '! kill -0 "$HP" 2>/dev/null && [ -z "$(pgrep -g "$HP")" ]'; then
	ok hang_killed_whole_group
else
	notok hang_killed_whole_group "pid $HP or its group still there"
fi
expect_grep hang_logged \
	"site=hang.example, pid=$HP: notice command timed out after 4 s: killed" \
	"$T/posternd.log"

# ------------------------------------------------------------------
# 4. stats --json: backlog, oldest, last seen.
sites() {
	"$P" stats --json | "$PY" -c "
import json, sys
s = json.load(sys.stdin)
d = {x['domain']: x for x in s['sites']}
print($1)"
}
oldest=$(qjson "min(m['arrival'] for m in msgs if any(r['address'].endswith('@held.example') for r in m['recipients']))")
expect_eq stats_site_backlog \
	"$(sites "d['held.example']['messages'], d['held.example']['recipients'], d['held.example']['oldest'], d['held.example']['last_seen']")" \
	"3 4 $oldest 0"
expect_eq stats_old_fields_kept \
	"$("$P" stats --json | "$PY" -c "import json,sys; s=json.load(sys.stdin); print(all(k in s for k in ('time','messages','recipients','oldest','buckets_min','total','domains','deferral_reasons','flush_pending','bounce_dropped')))")" \
	True
expect_eq stats_site_list \
	"$(sites "sorted(d)")" \
	"['aged.example', 'calld.example', 'etrned.example', 'hang.example', 'held.example', 'pulled.example']"
"$P" stats >"$T/stats.txt"
expect_grep stats_text_sites "^held sites:" "$T/stats.txt"
expect_grep stats_text_held "held.example       3       4 .* never$" "$T/stats.txt"

cat >"$T/etrn.py" <<'EOPY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test")
c, m = s.docmd("ETRN", sys.argv[2])
print(c)
s.quit()
EOPY
enq e@etrned.example
before=$(date +%s)
expect_eq etrn_accepted "$("$PY" "$T/etrn.py" "$SMTP_PORT" etrned.example)" 253
after=$(date +%s)
seen=$(sites "d['etrned.example']['last_seen']")
if [ "${seen:-0}" -ge "$before" ] 2>/dev/null && [ "$seen" -le "$after" ]; then
	ok stats_last_seen_etrn
else
	notok stats_last_seen_etrn "last_seen $seen, ETRN at $before..$after"
fi
expect_eq etrn_refused "$("$PY" "$T/etrn.py" "$SMTP_PORT" calld.example)" 459
expect_eq stats_refused_not_seen "$(sites "d['calld.example']['last_seen']")" 0

# ATRN: `postern pull` from a site with its own queue.
enq p@pulled.example
mkdir -p "$T/sq"
cat >"$T/site.conf" <<EOF
queue_dir = $T/sq
myhostname = site.test.example
listen = 127.0.0.1:$(free_port)
odmr_listen =
relay_domains = pulled.example
EOF
printf 'pw1\n' >"$T/pw1"
chmod 600 "$T/pw1"
# (the site's queue is made by its first message)
printf 'Subject: local\n\nx\n' | "$P" -c "$T/site.conf" enqueue -f a@b.example \
	local@pulled.example >/dev/null
until_ok 100 listening "$OP" || notok odmr_listening "nothing on $OP"
before=$(date +%s)
"$P" -c "$T/site.conf" pull "127.0.0.1:$OP" --user site1 \
	--password-file "$T/pw1" --domain pulled.example >"$T/pull.out" 2>&1
expect_eq pull_ok "$?" 0
after=$(date +%s)
seen=$(sites "d['pulled.example']['last_seen'], d['pulled.example']['messages']")
case $seen in
"$before 0"|"$after 0") ok stats_last_seen_atrn ;;
*) notok stats_last_seen_atrn "got $seen, pull at $before..$after" ;;
esac
# Again, a second later, with nothing waiting: 453, and still a sighting.
until_ok 30 eval '[ "$(date +%s)" -gt "$after" ]'
before=$(date +%s)
"$P" -c "$T/site.conf" pull "127.0.0.1:$OP" --user site1 \
	--password-file "$T/pw1" --domain pulled.example >"$T/pull2.out" 2>&1
expect_eq pull_no_mail_ok "$?" 0
expect_grep pull_no_mail_453 "453" "$T/pull2.out"
after=$(date +%s)
seen=$(sites "d['pulled.example']['last_seen']")
if [ "${seen:-0}" -ge "$before" ] 2>/dev/null && [ "$seen" -le "$after" ]; then
	ok stats_last_seen_atrn_no_mail
else
	notok stats_last_seen_atrn_no_mail "last_seen $seen, pull at $before..$after"
fi
stop_posternd

# ------------------------------------------------------------------
# 5. postern run: a progress line on a terminal, none piped.
enq r1@other.example r2@other.example
enq r3@other.example
script -qc "$P run" /dev/null >"$T/run.tty" 2>&1
expect_grep run_tty_progress "postern run: [0-9]* of [0-9]* recipients done, [0-9.]*/s" \
	"$T/run.tty"
expect_grep run_tty_final "3 of 3 recipients done" "$T/run.tty"
expect_grep run_tty_summary "postern run: 3 delivered" "$T/run.tty"
enq r4@other.example
"$P" run 2>&1 | cat >"$T/run.pipe"
if grep -q "recipients done" "$T/run.pipe"; then
	notok run_piped_no_progress "$(head -c 300 "$T/run.pipe")"
else
	ok run_piped_no_progress
fi
expect_grep run_piped_summary "postern run: 1 delivered" "$T/run.pipe"

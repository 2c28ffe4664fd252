# 520-pull: `postern pull`, the site's ODMR client, against postern's own
# ODMR listener (a provider posternd) with a site posternd of its own
# (queue, config, routes to a python sink on 127.0.0.3).
#  1. Over TLS (--starttls, the provider's certificate checked against
#     --ca-file for 127.0.0.1), three domains with --domain: exit 0, a
#     summary, no progress line when stderr is no terminal; every message
#     reaches the site's sink once and byte for byte (the provider's stored
#     message under the site's one Received: field); the provider keeps
#     mail of a domain not asked for and another user's.
#  2. No mail: exit 0 with the 453 shown.
#  3. Wrong password: exit 1 and "authentication failed".
#  4. --starttls against a provider without TLS (the site's own ODMR
#     port): exit 1 before any AUTH; without --starttls SCRAM-SHA-256 goes
#     in the clear (453, exit 0).
#  5. kill -9 of the pull while a big message is in DATA (its spool file
#     exists): what was acknowledged is stored; a second pull gets exactly
#     the rest (Message-IDs: none lost, none twice) and sweeps the dead
#     pull's spool file.
#  6. The provider's listener killed mid-message: the pull exits 1 saying
#     the connection was lost; the next pull gets the rest, once.
#  7. On a terminal (script(1)'s pty) the progress line shows.
#  8. Without --domain: ATRN for all the user's domains, but the site
#     takes only its relay_domains/hold_domains: a recipient of another
#     domain the user owns gets 450 and stays at the provider.
#  9. A provider that offers only CRAM-MD5 (a python server, not postern:
#     postern offers SCRAM too) gets CRAM-MD5, in the clear; one that
#     offers only PLAIN without TLS gets no AUTH at all.
. "$POSTERN_TOP/tests/integ/lib.sh"

SINKPY="$POSTERN_TOP/tests/integ/pull_sink.py"
# The provider's certificate names 127.0.0.1: the pull checks the name it
# was given (HOST), and HOST here is an address.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/mx.key" \
	-out "$T/mx.crt" -days 2 -subj "/CN=mx.test.example" \
	-addext "subjectAltName=DNS:mx.test.example,IP:127.0.0.1" \
	>/dev/null 2>&1
chmod 644 "$T/mx.key" "$T/mx.crt"
{
	printf 'pw1\n' | "$P" passwd site1 a.example b.example c.example \
	    w.example
	printf 'pw2\n' | "$P" passwd site2 z.example
} >"$T/users"
chmod 644 "$T/users"
OP=$(free_port)
start_posternd "users_file=$T/users" \
	"hold_domains=a.example,b.example,c.example,d.example,w.example,z.example" \
	"odmr_listen=127.0.0.1:$OP" "tls_cert_file=$T/mx.crt" \
	"tls_key_file=$T/mx.key" auth_failure_limit=20 \
	auth_failure_delay=0s || exit 1
until_ok 100 listening "$OP" || notok provider_odmr_listening "nothing on $OP"

# The site: its own queue, an ODMR port without TLS (for 4), routes of
# the pulled domains to the sink.
SINKP=$(free_port)
"$PY" "$SINKPY" 127.0.0.3 "$SINKP" "$T/sink" >"$T/sink.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/sink.out" || notok sink_started "no sink"
printf 'pw9\n' | "$P" passwd site9 q.example >"$T/susers"
chmod 644 "$T/susers"
for d in a.example b.example c.example; do
	echo "$d [127.0.0.3]:$SINKP"
done >"$T/routes"
SP=$(free_port)
SOP=$(free_port)
mkdir -p "$T/sq"
cat >"$T/site.conf" <<EOF
queue_dir = $T/sq
myhostname = site.test.example
listen = 127.0.0.1:$SP
odmr_listen = 127.0.0.1:$SOP
users_file = $T/susers
relay_domains = a.example, b.example, c.example
routes_file = $T/routes
EOF
"$POSTERN_BIN/posternd" -c "$T/site.conf" -f >>"$T/site.log" 2>&1 &
SITE_PID=$!
reap "$SITE_PID"
wait_port "$SP" || notok site_started "$(tail -5 "$T/site.log")"
wait_port "$SOP"
printf 'pw1\n' >"$T/pw1"
printf 'bad\n' >"$T/pwbad"
printf 'pw9\n' >"$T/pw9"
chmod 600 "$T/pw1" "$T/pwbad" "$T/pw9"
pull() { "$P" -c "$T/site.conf" pull "$@"; }
tlspull() { pull 127.0.0.1:"$OP" --user site1 --password-file "$T/pw1" \
	--starttls --ca-file "$T/mx.crt" "$@"; }
# repull OUT ERR - tlspull again while the provider answers 451 (right
# after a cut its odmr process may not have let the domains go yet: RFC
# 2645 §7, try later), 10 s at most; its exit status.
repull() {
	_re=$(($(now_ms) + 10000))
	while :; do
		tlspull >"$1" 2>"$2"
		_rc=$?
		grep -q "refused ATRN: 451 " "$2" || return $_rc
		[ "$(now_ms)" -ge "$_re" ] && return $_rc
		sleep 0.2
	done
}

# enq ID RCPT [SIZE] - a message with Message-ID <ID@test>, a dot-led
# line, and SIZE octets more of 76-character lines; its raw form as the
# provider stored it goes to $T/raw/ID.
mkdir -p "$T/raw"
enq() {
	"$PY" - "$1" "${3:-0}" >"$T/msg" <<'EOF'
import sys
mid, size = sys.argv[1], int(sys.argv[2])
sys.stdout.write("Subject: pull %s\nMessage-ID: <%s@test>\n\nfirst\n"
                 ".leading dot\n" % (mid, mid))
line = "x" * 75 + "\n"
sys.stdout.write(line * (size // 76))
sys.stdout.write("end %s\n" % mid)
EOF
	_id=$("$P" enqueue -f sender@x.example "$2" <"$T/msg") &&
	    "$P" show --raw "$_id" >"$T/raw/$1"
}
# held DOMAIN - the provider's held recipients of DOMAIN; active: all
# active ones.
held() {
	qjson "sum(1 for m in msgs for r in m['recipients'] if r['address'].endswith('@$1') and r['state'] == 'held')"
}
active() {
	qjson "sum(1 for m in msgs for r in m['recipients'] if r['state'] == 'active')"
}
# sink_count - messages at the sink.
sink_count() { ls "$T/sink" 2>/dev/null | grep -c '\.eml$'; }
# compare PREFIX - for the raw messages whose ID starts with PREFIX: how
# many sink messages are one of them byte for byte under exactly one
# Received: field of the site's, how many distinct, how many raw.
compare() {
	"$PY" - "$T/raw" "$T/sink" "$1" <<'EOF'
import os, re, sys
raw = {n: open(os.path.join(sys.argv[1], n), "rb").read()
       for n in os.listdir(sys.argv[1]) if n.startswith(sys.argv[3])}
seen, bad = [], 0
for n in sorted(os.listdir(sys.argv[2])):
    if not n.endswith(".eml"):
        continue
    b = open(os.path.join(sys.argv[2], n), "rb").read()
    m = re.match(rb"Received: from mx\.test\.example \(\[127\.0\.0\.1\]\)"
                 rb"(\r\n[ \t][^\r\n]*)*by site\.test\.example \(postern\)"
                 rb"[^\r\n]*(\r\n[ \t][^\r\n]*)*\r\n", b)
    rest = b[m.end():] if m else None
    for k, v in raw.items():
        if v == rest:
            seen.append(k)
print("matched=%d distinct=%d raw=%d" % (len(seen), len(set(seen)),
                                          len(raw)))
EOF
}

# ------------------------------------------------------------------
# 1. TLS, several domains.
for i in 1 2 3 4; do enq "p$i" "u$i@a.example"; done
for i in 5 6 7; do enq "p$i" "u$i@b.example"; done
for i in 8 9; do enq "p$i" "u$i@c.example"; done
enq q1 x@d.example
enq q2 y@z.example
tlspull --domain a.example --domain b.example,c.example >"$T/o1" 2>"$T/e1"
expect_eq pull_tls_exit "$?" 0
expect_grep pull_summary '^postern pull: 127.0.0.1: 9 messages, [0-9]* bytes in [0-9.]* s$' "$T/o1"
if grep -q received "$T/e1"; then
	notok pull_no_progress_off_tty "$(cat "$T/e1")"
else ok pull_no_progress_off_tty; fi
expect_grep pull_tls_kept_across_reversal \
	"user=site1, domains=a.example b.example c.example, tls=TLSv1" \
	"$T/posternd.log"
poll_for 30 eval '[ "$(sink_count)" -ge 9 ]'
expect_eq pull_tls_at_sink_byte_for_byte_once "$(compare p)" \
	"matched=9 distinct=9 raw=9"
expect_eq pull_provider_asked_domains_empty \
	"$(($(held a.example) + $(held b.example) + $(held c.example)))" 0
expect_eq pull_provider_keeps_other_domain "$(held d.example)" 1
expect_eq pull_provider_keeps_other_user "$(held z.example)" 1
expect_grep pull_site_delivered_by_route \
	"postern/runner.*to=<u5@b.example>, relay=127.0.0.3.*status=sent" \
	"$T/site.log"

# ------------------------------------------------------------------
# 2. No mail.
tlspull >"$T/o2" 2>"$T/e2"
expect_eq pull_no_mail_exit "$?" 0
expect_grep pull_no_mail_453 "no mail waiting (453 " "$T/o2"

# ------------------------------------------------------------------
# 3. Wrong password.
pull 127.0.0.1:"$OP" --user site1 --password-file "$T/pwbad" --starttls \
	--ca-file "$T/mx.crt" >"$T/o3" 2>"$T/e3"
expect_eq pull_wrong_password_exit "$?" 1
expect_grep pull_wrong_password_said "authentication failed.*535" "$T/e3"

# ------------------------------------------------------------------
# 4. --starttls against a provider without TLS (the site's own ODMR port).
pull 127.0.0.1:"$SOP" --user site9 --password-file "$T/pw9" --starttls \
	>"$T/o4" 2>"$T/e4"
expect_eq pull_starttls_required_exit "$?" 1
expect_grep pull_starttls_required_said "TLS is required, but was not offered" "$T/e4"
if grep -q "auth" "$T/site.log"; then
	notok pull_starttls_refused_before_auth "$(grep auth "$T/site.log")"
else ok pull_starttls_refused_before_auth; fi
pull 127.0.0.1:"$SOP" --user site9 --password-file "$T/pw9" -v \
	>"$T/o4b" 2>"$T/e4b"
expect_eq pull_scram_in_clear_exit "$?" 0
expect_grep pull_scram_in_clear "authenticated as site9 with SCRAM-SHA-256, no TLS" "$T/e4b"
expect_grep pull_scram_in_clear_453 "no mail waiting (453 " "$T/o4b"

# ------------------------------------------------------------------
# 5. kill -9 of the pull in the middle of a big message.
for i in 1 2 3 4 5 6; do enq "c$i" "k$i@a.example"; done
enq c7 "big@b.example" 20000000
for i in 8 9 10 11 12 13; do enq "c$i" "k$i@c.example"; done
before=$(sink_count)
# The postern process itself, not a subshell: its PID names its spool file.
"$P" -c "$T/site.conf" pull 127.0.0.1:"$OP" --user site1 \
	--password-file "$T/pw1" --starttls --ca-file "$T/mx.crt" \
	>"$T/o5" 2>"$T/e5" &
PULL=$!
reap "$PULL"
# The pull's spool file (PID.SEQ) exists only while a message over 256
# KiB is in DATA: kill it then, not between a commit and its 250.
"$PY" - "$T/sq/spool" "$PULL" >"$T/k5" <<'EOF'
import os, sys, time
d, pid = sys.argv[1], sys.argv[2]
for _ in range(12000):
    try:
        if any(n.startswith(pid + ".") for n in os.listdir(d)):
            os.kill(int(pid), 9)
            print("killed")
            break
    except FileNotFoundError:
        pass
    time.sleep(0.005)
EOF
wait "$PULL" 2>/dev/null
expect_eq pull_killed_in_data "$(cat "$T/k5")" killed
poll_for 30 eval '[ "$(active)" -eq 0 ]'
left=$(($(held a.example) + $(held b.example) + $(held c.example)))
if [ "$left" -gt 0 ] && [ "$left" -lt 13 ]; then ok pull_cut_left_some
else notok pull_cut_left_some "held after the cut: $left of 13"; fi
ls "$T/sq/spool" | grep -q "^$PULL\." && had=1 || had=0
repull "$T/o5b" "$T/e5b"
expect_eq pull_after_cut_exit "$?" 0
expect_grep pull_after_cut_got_the_rest \
	"^postern pull: 127.0.0.1: $left messages" "$T/o5b"
expect_eq pull_after_cut_provider_empty \
	"$(($(held a.example) + $(held b.example) + $(held c.example)))" 0
poll_for 60 eval '[ "$(sink_count)" -ge $((before + 13)) ]'
expect_eq pull_cut_none_lost_none_twice "$(compare c)" \
	"matched=13 distinct=13 raw=13"
if [ "$had" = 1 ] && ! ls "$T/sq/spool" | grep -q "^$PULL\."; then
	ok pull_swept_dead_spool
else notok pull_swept_dead_spool "had=$had: $(ls "$T/sq/spool")"; fi

# ------------------------------------------------------------------
# 6. The provider's listener dies mid-message: the pull says so.
for i in 1 2 3; do enq "e$i" "m$i@a.example"; done
enq e4 "big2@b.example" 20000000
for i in 5 6 7; do enq "e$i" "m$i@c.example"; done
before=$(sink_count)
LST=$(smtpd_pid)
"$P" -c "$T/site.conf" pull 127.0.0.1:"$OP" --user site1 \
	--password-file "$T/pw1" --starttls --ca-file "$T/mx.crt" \
	>"$T/o6" 2>"$T/e6" &
PULL=$!
"$PY" - "$T/sq/spool" "$PULL" "$LST" >"$T/k6" <<'EOF'
import os, sys, time
d, pid, victim = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(12000):
    try:
        if any(n.startswith(pid + ".") for n in os.listdir(d)):
            os.kill(victim, 9)
            print("killed")
            break
    except FileNotFoundError:
        pass
    time.sleep(0.005)
EOF
wait "$PULL"
expect_eq pull_provider_cut_exit "$?" 1
expect_eq pull_provider_cut_in_data "$(cat "$T/k6")" killed
expect_grep pull_provider_cut_said \
	"connection lost in the middle of a message.*stored" "$T/e6"
until_ok 100 listening "$OP"
poll_for 30 eval '[ "$(active)" -eq 0 ]'
repull "$T/o6b" "$T/e6b"
expect_eq pull_after_provider_cut_exit "$?" 0
poll_for 60 eval '[ "$(sink_count)" -ge $((before + 7)) ]'
expect_eq pull_provider_cut_none_lost_none_twice "$(compare e)" \
	"matched=7 distinct=7 raw=7"

# ------------------------------------------------------------------
# 7. On a terminal: the progress line.
for i in 1 2 3; do enq "t$i" "t$i@a.example"; done
script -qec "$P -c $T/site.conf pull 127.0.0.1:$OP --user site1 --password-file $T/pw1 --starttls --ca-file $T/mx.crt" /dev/null >"$T/o7" 2>&1
expect_eq pull_tty_exit "$?" 0
expect_grep pull_tty_progress_line "$(printf '\r')postern pull: [0-9]* messages*, .* received" "$T/o7"
expect_grep pull_tty_summary "postern pull: 127.0.0.1: 3 messages" "$T/o7"

# ------------------------------------------------------------------
# 8. Without --domain: only what the site takes anyway.
enq r1 r1@a.example
enq r2 r2@w.example
tlspull >"$T/o8" 2>"$T/e8"
expect_eq pull_nodomain_exit "$?" 0
expect_grep pull_nodomain_took_one "^postern pull: 127.0.0.1: 1 message," "$T/o8"
expect_eq pull_nodomain_other_domain_kept \
	"$(qjson "[r['last_reply'][:9] for m in msgs for r in m['recipients'] if r['address'] == 'r2@w.example' and r['state'] in ('held', 'deferred')]")" \
	"['450 4.7.1']"
poll_for 30 eval '[ "$(compare r | cut -d" " -f1)" = matched=1 ]'
expect_eq pull_nodomain_at_sink "$(compare r | cut -d' ' -f1)" matched=1

# ------------------------------------------------------------------
# 9. One mechanism offered.
MP=$(free_port)
"$PY" "$POSTERN_TOP/tests/integ/pull_mech.py" 127.0.0.1 "$MP" CRAM-MD5 \
	"$T/mech1.log" >"$T/mech1.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/mech1.out"
pull 127.0.0.1:"$MP" --user site1 --password-file "$T/pw1" -v \
	>"$T/o9" 2>"$T/e9"
expect_eq pull_cram_exit "$?" 0
expect_grep pull_cram_used "authenticated as site1 with CRAM-MD5, no TLS" "$T/e9"
MP=$(free_port)
"$PY" "$POSTERN_TOP/tests/integ/pull_mech.py" 127.0.0.1 "$MP" PLAIN \
	"$T/mech2.log" >"$T/mech2.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/mech2.out"
pull 127.0.0.1:"$MP" --user site1 --password-file "$T/pw1" \
	>"$T/o9b" 2>"$T/e9b"
expect_eq pull_plain_in_clear_exit "$?" 1
expect_grep pull_plain_in_clear_said "no TLS with host .*AUTH not sent" "$T/e9b"
if grep -qi "^AUTH" "$T/mech2.log"; then
	notok pull_plain_not_sent_in_clear "$(cat "$T/mech2.log")"
else ok pull_plain_not_sent_in_clear; fi

# ------------------------------------------------------------------
# 10. A hostile provider: the ATRN reply's text is printed escaped; on the
# reversed connection ETRN, TURN, ATRN, AUTH and STARTTLS are refused (the
# site's pull serves mail only: an ETRN there crashed it) and not offered;
# a provider that keeps the session alive with NOOPs and sends no mail is
# cut off after command_timeout, not served forever.
MP=$(free_port)
"$PY" "$POSTERN_TOP/tests/integ/pull_mech.py" 127.0.0.1 "$MP" CRAM-MD5 \
	"$T/mech3.log" c1 >"$T/mech3.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/mech3.out"
pull 127.0.0.1:"$MP" --user site1 --password-file "$T/pw1" \
	>"$T/o10" 2>"$T/e10"
if grep -q "$(printf '\302\233')" "$T/o10" "$T/e10" ||
    grep -q "$(printf '\342\200\256')" "$T/o10" "$T/e10"; then
	notok pull_reply_escaped "raw control in: $(cat "$T/o10" "$T/e10" | od -c | head -5)"
else ok pull_reply_escaped; fi
MP=$(free_port)
"$PY" "$POSTERN_TOP/tests/integ/pull_mech.py" 127.0.0.1 "$MP" CRAM-MD5 \
	"$T/mech4.log" hostile >"$T/mech4.out" 2>&1 &
MPID=$!
reap $MPID
until_ok 100 grep -q ready "$T/mech4.out"
{ cat "$T/site.conf"; echo "command_timeout = 3s"; } >"$T/site_short.conf"
"$P" -c "$T/site_short.conf" pull 127.0.0.1:"$MP" --user site1 \
	--password-file "$T/pw1" --domain a.example >"$T/o10b" 2>"$T/e10b"
expect_eq pull_hostile_exit "$?" 1
wait "$MPID" 2>/dev/null
if grep -q '^ehlo: .*ETRN' "$T/mech4.log"; then
	notok pull_no_etrn_offered "$(grep '^ehlo' "$T/mech4.log")"
else ok pull_no_etrn_offered; fi
for c in ETRN TURN ATRN AUTH STARTTLS; do
	expect_grep "pull_refuses_$c" "^R: $c.* -> 502 " "$T/mech4.log"
done
if grep -Eq "^closed after ([3-9]|1[0-9])\.[0-9] s, last: 421 " "$T/mech4.log"
then ok pull_idle_provider_cut; else
	notok pull_idle_provider_cut "$(tail -n 1 "$T/mech4.log")"; fi

stop_posternd
term_wait "$SITE_PID" 300
check posternd_no_sanitizer_report sh -c "! grep -q 'Sanitizer' '$T/posternd.log' '$T/site.log' '$T'/e*"

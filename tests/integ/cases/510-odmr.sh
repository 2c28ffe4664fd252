# 510-odmr: ODMR/ATRN on odmr_listen (RFC 2645) and TURN on the SMTP port.
#  1. fetchmail as the real ODMR client (protocol ODMR, AUTH CRAM-MD5,
#     fetchdomains), relaying the reversed session to a python sink on
#     127.0.0.2: every held message of the user's two domains arrives
#     once, byte for byte as stored (`postern show --raw`), a message with
#     recipients in both domains in one transaction; the queue is empty
#     after, another user's mail is untouched.
#  2. The profile: EHLO lists AUTH CRAM-MD5 and ATRN, no PIPELINING/SIZE;
#     MAIL, RCPT, VRFY on the ODMR port: 502; ATRN on the SMTP port: 502.
#  3. ATRN before AUTH: 530; for a domain the user does not own: 450 and
#     nothing moves; no mail waiting: 453.
#  4. Wrong password: 535; after auth_failure_limit failures the address
#     gets 421 even with the right password.
#  5. A second ATRN for a domain being turned: 451 (the first session
#     waits at its greeting meanwhile, then completes).
#  6. STARTTLS before AUTH: the reversed session goes on inside the same
#     TLS session (the customer reads the provider's commands through its
#     TLS socket); the odmr log line says tls=TLS...; a 4 MiB message
#     passes the proxy's 64 KiB buffers byte for byte.
#  7. The customer drops the connection at the third message's DATA: two
#     delivered, the other three held again (none active); a second ATRN
#     gets exactly those three: five distinct messages in all, none twice.
#  8. TURN: 502 with turn_enable off (even after AUTH); with it on, 530
#     before AUTH, and after AUTH the user's mail comes over the same
#     connection.
#  9. The session process killed mid-delivery: the lease is renewed while
#     it lives; once killed its claims come back held, and the next ATRN
#     gets exactly the undelivered rest.
# 10. A site that stops reading in the middle of a 24 MiB message: the
#     listener's memory grows by less than 8 MiB (its proxy buffers 64 KiB
#     each way); then the site reads on and gets the message intact.
. "$POSTERN_TOP/tests/integ/lib.sh"

SITE="$POSTERN_TOP/tests/integ/odmr_site.py"
make_cert mx mx.test.example
{
	printf 'pw1\n' | "$P" passwd site1 site1.example site1b.example
	printf 'pw2\n' | "$P" passwd site2 site2.example
	printf 'pw3\n' | "$P" passwd site3 site3.example
	printf 'pw4\n' | "$P" passwd site4 site4.example
	printf 'pw5\n' | "$P" passwd site5 site5.example
} >"$T/users"
chown postern "$T/users" 2>/dev/null
chmod 600 "$T/users"
OP=$(free_port)
HOLD=site1.example,site1b.example,site2.example,site3.example
HOLD=$HOLD,site4.example,site5.example
start_posternd "users_file=$T/users" "hold_domains=$HOLD" \
	"odmr_listen=127.0.0.1:$OP" "tls_cert_file=$T/mx.crt" \
	"tls_key_file=$T/mx.key" auth_failure_limit=3 \
	auth_failure_delay=0s || exit 1
until_ok 100 listening "$OP" || notok odmr_listening "nothing on $OP"

val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# enq RCPT... - one message (From a@b.example, a dot-led line in it);
# prints its id.
N=0
enq() {
	N=$((N + 1))
	printf 'Subject: odmr %s\n\nline one\n.leading dot\nend %s\n' "$N" "$N" |
	    "$P" enqueue -f a@b.example "$@"
}
# live DOMAIN STATE - recipients of DOMAIN in STATE.
live() {
	qjson "sum(1 for m in msgs for r in m['recipients'] if r['address'].endswith('@$1') and r['state'] == '$2')"
}
site() { "$PY" "$SITE" "$OP" "$@"; }

# ------------------------------------------------------------------
# 1. fetchmail, protocol ODMR.
ids=""
for i in 1 2 3; do ids="$ids $(enq "u$i@site1.example")"; done
ids="$ids $(enq x@site1b.example u9@site1.example)"
ids="$ids $(enq v@site1b.example)"
other=$(enq w@site2.example)
mkdir -p "$T/raw"
for id in $ids; do "$P" show --raw "$id" >"$T/raw/$id"; done
SINKP=$(free_port)
"$PY" "$SITE" sink 127.0.0.2 "$SINKP" "$T/fm" >"$T/sink.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/sink.out"
cat >"$T/fetchmailrc" <<EOF
set no syslog
poll 127.0.0.1 protocol ODMR port $OP auth cram-md5
  user "site1" password "pw1" fetchdomains site1.example,site1b.example
  smtphost 127.0.0.2/$SINKP
EOF
chmod 600 "$T/fetchmailrc"
HOME=$T timeout 60 fetchmail -f "$T/fetchmailrc" --nosyslog \
	-i "$T/fmid" >"$T/fetchmail.out" 2>&1
expect_eq fetchmail_exit "$?" 0
got=$(ls "$T/fm" 2>/dev/null | grep -c 'eml$')
expect_eq fetchmail_five_messages "$got" 5
# Each stored message arrived once, as stored: match by content.
"$PY" - "$T/raw" "$T/fm" >"$T/cmp.out" 2>&1 <<'EOF'
import os, sys
raw = {n: open(os.path.join(sys.argv[1], n), "rb").read()
       for n in os.listdir(sys.argv[1])}
got = [open(os.path.join(sys.argv[2], n), "rb").read()
       for n in sorted(os.listdir(sys.argv[2])) if n.endswith(".eml")]
seen = [k for g in got for k, v in raw.items() if v == g]
print("matched=%d distinct=%d raw=%d" % (len(seen), len(set(seen)),
                                          len(raw)))
EOF
expect_eq fetchmail_byte_for_byte_once "$(cat "$T/cmp.out")" \
	"matched=5 distinct=5 raw=5"
expect_eq fetchmail_two_domains_one_transaction \
	"$(grep -l 'x@site1b.example' "$T/fm"/*.rcpt 2>/dev/null |
	    xargs cat 2>/dev/null | sort | tr '\n' ' ')" \
	"u9@site1.example x@site1b.example "
expect_eq fetchmail_site1_queue_empty \
	"$(($(live site1.example held) + $(live site1b.example held)))" 0
expect_eq fetchmail_other_user_untouched "$(live site2.example held)" 1
expect_grep fetchmail_logged_sent \
	"odmr\[.*to=<u1@site1.example>, relay=odmr:.*status=sent" \
	"$T/posternd.log"

# ------------------------------------------------------------------
# 2. The profile.
site site1 pw1 "$T/o2" --cmds "MAIL FROM:<a@b.example>|RCPT TO:<u@site1.example>|VRFY u" \
	>"$T/p2" 2>&1
expect_eq ehlo_lists_atrn "$(val ehlo "$T/p2")" \
	"ENHANCEDSTATUSCODES STARTTLS AUTH CRAM-MD5 SCRAM-SHA-256 ATRN"
expect_eq mail_502 "$(val cmd0 "$T/p2" | cut -c 1-9)" "502 5.5.1"
expect_eq rcpt_502 "$(val cmd1 "$T/p2" | cut -c 1-9)" "502 5.5.1"
expect_eq vrfy_502 "$(val cmd2 "$T/p2" | cut -c 1-9)" "502 5.5.1"
"$PY" "$SITE" "$SMTP_PORT" site1 pw1 "$T/o2b" --cmds "ATRN" >"$T/p2b" 2>&1
expect_eq atrn_on_smtp_port_502 "$(val cmd0 "$T/p2b" | cut -c 1-9)" \
	"502 5.5.1"

# ------------------------------------------------------------------
# 3. Before AUTH, someone else's domain, no mail.
site site2 pw2 "$T/o3" --no-auth >"$T/p3" 2>&1
expect_eq atrn_before_auth_530 "$(val verb "$T/p3")" \
	"530 5.7.0 Authentication required"
site site1 pw1 "$T/o3b" --verb "ATRN site2.example" >"$T/p3b" 2>&1
expect_eq atrn_other_domain_450 "$(val verb "$T/p3b")" \
	"450 4.7.0 ATRN request refused"
site site1 pw1 "$T/o3c" --verb "ATRN site1.example,site2.example" \
	>"$T/p3c" 2>&1
expect_eq atrn_one_foreign_domain_450 "$(val verb "$T/p3c" | cut -c 1-3)" 450
expect_eq atrn_450_nothing_moved "$(live site2.example held)" 1
site site3 pw3 "$T/o3d" >"$T/p3d" 2>&1
expect_eq atrn_no_mail_453 "$(val verb "$T/p3d")" "453 4.0.0 You have no mail"

# ------------------------------------------------------------------
# 4. Wrong password, then the lock-out (auth_failure_limit = 3) from
# 127.0.0.5, while 127.0.0.1 is not locked out.
for k in 1 2 3; do
	site site2 wrong "$T/o4" --src 127.0.0.5 >"$T/p4.$k" 2>&1
done
expect_eq auth_wrong_535 "$(val auth "$T/p4.1" | cut -c 1-9)" "535 5.7.8"
expect_eq auth_third_wrong_535 "$(val auth "$T/p4.3" | cut -c 1-9)" \
	"535 5.7.8"
site site2 pw2 "$T/o4" --src 127.0.0.5 >"$T/p4.4" 2>&1
expect_eq auth_lockout_421 "$(val auth "$T/p4.4" | cut -c 1-9)" "421 4.7.0"
expect_eq auth_lockout_nothing_moved "$(live site2.example held)" 1

# ------------------------------------------------------------------
# 5. A concurrent ATRN for the same domain: 451.
enq a@site2.example >/dev/null
site site2 pw2 "$T/o5" --pause-file "$T/go5" >"$T/p5" 2>&1 &
first=$!
reap $first
until_ok 200 grep -q '^verb=' "$T/p5"
expect_eq concurrent_first_250 "$(val verb "$T/p5" | cut -c 1-3)" 250
site site2 pw2 "$T/o5b" >"$T/p5b" 2>&1
expect_eq concurrent_second_451 "$(val verb "$T/p5b")" \
	"451 4.3.0 Unable to process ATRN request now"
touch "$T/go5"
wait $first
expect_eq concurrent_first_completes "$(val got "$T/p5")" 2
expect_eq concurrent_second_got_none "$(ls "$T/o5b" | wc -l)" 0

# ------------------------------------------------------------------
# 6. TLS stays on across the reversal; a 4 MiB message goes through the
# proxy's bounded buffers intact.
enq t1@site3.example >/dev/null
"$PY" -c '
import sys
sys.stdout.write("Subject: big\n\n")
for i in range(52000):
    sys.stdout.write("%07d " % i + "x" * 72 + "\n")' >"$T/big"
big=$("$P" enqueue -f a@b.example t2@site3.example <"$T/big")
"$P" show --raw "$big" >"$T/big.raw"
site site3 pw3 "$T/o6" --tls >"$T/p6" 2>&1
expect_eq tls_starttls "$(val starttls "$T/p6" | cut -c 1-3)" 220
expect_eq tls_atrn_250 "$(val verb "$T/p6" | cut -c 1-3)" 250
expect_eq tls_messages "$(val got "$T/p6")" 2
expect_eq tls_big_intact "$(cmp -s "$T/big.raw" "$T/o6/002.eml" && echo same)" \
	same
expect_eq tls_still_on_after "$(val tls_after "$T/p6")" yes
expect_eq tls_quit "$(val quit "$T/p6")" yes
expect_grep tls_logged "user=site3, domains=site3.example, tls=TLS" \
	"$T/posternd.log"

# ------------------------------------------------------------------
# 7. A customer that drops mid-session: the rest waits for the next ATRN.
for i in 1 2 3 4 5; do enq "d$i@site4.example" >/dev/null; done
site site4 pw4 "$T/o7" --drop-after 2 >"$T/p7" 2>&1
expect_eq drop_first_got_two "$(val got "$T/p7")" 2
until_ok 200 test "$(live site4.example held)" = 3
expect_eq drop_three_held_again "$(live site4.example held)" 3
expect_eq drop_none_active "$(live site4.example active)" 0
# The first session's process may still be finishing: 451 until then.
until_ok 100 sh -c "\"$PY\" \"$SITE\" $OP site4 pw4 \"$T/o7b\" >\"$T/p7b\" 2>&1;
	grep -q '^verb=250' \"$T/p7b\""
expect_eq drop_second_got_rest "$(val got "$T/p7b")" 3
expect_eq drop_all_five_once "$(cat "$T/o7"/*.rcpt "$T/o7b"/*.rcpt |
	sort | uniq | wc -l) $(cat "$T/o7"/*.rcpt "$T/o7b"/*.rcpt | wc -l)" "5 5"
expect_eq drop_queue_empty "$(live site4.example held)" 0

# ------------------------------------------------------------------
# 8. TURN on the SMTP port.
enq z@site5.example >/dev/null
"$PY" "$SITE" "$SMTP_PORT" site5 pw5 "$T/o8" --verb TURN >"$T/p8" 2>&1
expect_eq turn_off_502 "$(val verb "$T/p8" | cut -c 1-9)" "502 5.5.1"
stop_posternd
start_posternd "users_file=$T/users" "hold_domains=$HOLD" \
	"odmr_listen=127.0.0.1:$OP" turn_enable=yes lease_time=2s || exit 1
"$PY" "$SITE" "$SMTP_PORT" site5 pw5 "$T/o8b" --verb TURN --no-auth \
	>"$T/p8b" 2>&1
expect_eq turn_before_auth_530 "$(val verb "$T/p8b" | cut -c 1-9)" \
	"530 5.7.0"
"$PY" "$SITE" "$SMTP_PORT" site5 pw5 "$T/o8c" --verb TURN >"$T/p8c" 2>&1
expect_eq turn_on_250 "$(val verb "$T/p8c" | cut -c 1-3)" 250
expect_eq turn_delivered "$(val got "$T/p8c") $(cat "$T/o8c"/*.rcpt)" \
	"1 z@site5.example"
expect_eq turn_queue_empty "$(live site5.example held)" 0

# ------------------------------------------------------------------
# 9. The session process killed in the middle (the site stalls at the
# second message's DATA): the first message stays delivered, the claims
# of the other two come back held when their lease (lease_time = 2s)
# runs out, and the next ATRN gets exactly those two.
for i in 1 2 3; do enq "k$i@site2.example" >/dev/null; done
site site2 pw2 "$T/o9" --stall-after 1 >"$T/p9" 2>&1 &
c9=$!
reap $c9
until_ok 200 grep -q '^stalled' "$T/p9"
spid=$(sed -n 's/^postern\/odmr\[\([0-9]*\)\]: client=.*, user=site2, domains=site2\.example, tls=none: reversed session.*/\1/p' \
	"$T/posternd.log" | tail -n 1)
expect_eq killed_two_claimed "$(live site2.example active)" 2
# The lease is renewed while the session lives (3 leases here).
sleep 3
expect_eq killed_renewed_still_claimed "$(live site2.example active)" 2
kill -9 "$spid"
wait $c9
expect_eq killed_site_got_one "$(val got "$T/p9")" 1
until_ok 200 test "$(live site2.example held)" = 2
expect_eq killed_claims_back_held "$(live site2.example held)" 2
until_ok 100 sh -c "\"$PY\" \"$SITE\" $OP site2 pw2 \"$T/o9b\" >\"$T/p9b\" 2>&1;
	grep -q '^verb=250' \"$T/p9b\""
expect_eq killed_next_gets_rest "$(val got "$T/p9b") $(cat "$T/o9b"/*.rcpt |
	sort | tr '\n' ' ')" "2 k2@site2.example k3@site2.example "
expect_eq killed_queue_empty "$(live site2.example held)" 0

# ------------------------------------------------------------------
# 10. A site that does not read: the listener buffers at most 64 KiB of
# the session process's output (the rest waits in the socket buffers and
# the session process), not the 24 MiB message.
"$PY" -c '
import sys
sys.stdout.write("Subject: huge\n\n")
line = "y" * 98 + "\n"
for i in range(24 * 1024 * 1024 // 99):
    sys.stdout.write(line)' >"$T/huge"
huge=$("$P" enqueue -f a@b.example h@site5.example <"$T/huge")
"$P" show --raw "$huge" >"$T/huge.raw"
lpid=$(smtpd_pid)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
rss0=$(rss "$lpid")
site site5 pw5 "$T/o10" --data-file "$T/go10" >"$T/p10" 2>&1 &
c10=$!
reap $c10
until_ok 300 grep -q '^in_data' "$T/p10"
# The largest the listener gets while the site reads nothing (2 s).
peak=$rss0
for k in $(seq 20); do
	r=$(rss "$lpid")
	[ "${r:-0}" -gt "$peak" ] && peak=$r
	sleep 0.1
done
touch "$T/go10"
wait $c10
echo "# stalled site: listener RSS ${rss0:-?} kB, peak ${peak:-?} kB"
expect_eq stalled_site_listener_bounded \
	"${rss0:+measured} $(( (peak - ${rss0:-0}) < 8192 )) $(( (peak - ${rss0:-0}) / 1024 ))MB" \
	"measured 1 $(( (peak - ${rss0:-0}) / 1024 ))MB"
expect_eq stalled_site_then_delivered "$(val got "$T/p10")" 1
expect_eq stalled_site_intact \
	"$(cmp -s "$T/huge.raw" "$T/o10/001.eml" && echo same)" same
stop_posternd

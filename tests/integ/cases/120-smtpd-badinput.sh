# 120-smtpd-badinput: posternd's SMTP server against bad and hostile input.
#
# Raw-socket clients (tests/integ/smtpclient.py, driven by here-documents)
# send over-long lines, too many recipients, oversized mail, too many
# connections, errors, idle and stalled sessions, relay attempts, SMTP
# smuggling, early talkers, improper pipelining, STARTTLS injection, mail
# loops, a 20 MiB message, a full disk and a killed listener. For every
# case: the documented reply (code and enhanced code), the listener did not
# crash (same smtpd PID, nothing in the log), nothing was queued that should
# not be, and every "250 ... queued as ID" is still in the queue.
#
# Five servers, one after the other: A (limits, relay, smuggling, TLS), B
# (timeouts, max_errors), B2 (line limits set above the read buffers), C
# (a TLS burst, a huge message, then SIGKILL of the listener), D
# (queue_dir on a 3 MiB tmpfs, filled up).
. "$POSTERN_TOP/tests/integ/lib.sh"

# Python runs some fifty times here: resolve the interpreter once (a
# version manager's shim can cost a second a call).
python3() { "$PY" "$@"; }

export PYTHONPATH="$POSTERN_TOP/tests/integ${PYTHONPATH:+:$PYTHONPATH}"
export RESULTS="$T/results" ACKED="$T/acked"
: >"$RESULTS"
: >"$ACKED"
LOG="$T/posternd.log"
: >"$LOG"
MNT=""
KILLS=0
CRASH0=0
NSERV=0

# Stop the servers by PID, then unmount, then lib.sh's cleanup.
cleanup_120() {
	reap_all
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null
	[ -n "${KEEP_LOG:-}" ] && cp "$LOG" "$KEEP_LOG"
	cleanup
}
trap cleanup_120 EXIT INT TERM

# res KEY - the last value a client recorded for KEY.
res() { sed -n "s/^$1=//p" "$RESULTS" | tail -n 1; }
# qids - the queue's message ids, sorted, on one line.
qids() {
	"$P" queue --json | "$PY" -c '
import json, sys
print(" ".join(sorted(json.loads(l)["id"] for l in sys.stdin if l.strip())))'
}
# acked - every id a client was told "queued as", sorted, on one line.
acked() { sort -u "$ACKED" | tr '\n' ' ' | sed 's/ $//'; }
# crashes - lines in the log that say a process died or a sanitizer fired
# since this server started.
crashes() {
	echo $(($(grep -cE 'killed by signal|smtpd pid [0-9]* exited|Sanitizer|runtime error' "$LOG") - CRASH0))
}
# after CASE - the checks every case ends with.
after() {
	expect_eq "$1_listener_alive" "$(smtpd_pid)" "$SPID0"
	expect_eq "$1_no_crash_logged" "$(crashes)" "$KILLS"
	expect_eq "$1_queue_is_acked" "$(qids)" "$(acked)"
}
# server KEY=VALUE... - start posternd, remember its listener's PID. The
# scheduler it also runs holds every recipient (all under .example), so
# what was acknowledged stays in the queue.
server() {
	KILLS=0
	CRASH0=0
	CRASH0=$(crashes)
	start_posternd "routes_file=$T/routes" "$@" || exit 1
	export PORT="$SMTP_PORT"
	i=0
	while [ -z "$(smtpd_pid)" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	SPID0=$(smtpd_pid)
	export SPID0
	NSERV=$((NSERV + 1))
	expect_eq "server_${NSERV}_has_listener" "$(test -n "$SPID0" && echo yes)" yes
}
# server_done NAME - stop it; the queue still holds what was acknowledged.
server_done() {
	check "$1_stopped" stop_posternd
	expect_eq "$1_no_crash_at_exit" "$(crashes)" "$KILLS"
	expect_eq "$1_queue_kept_after_stop" "$(qids)" "$(acked)"
}

echo '.example hold' >"$T/routes"
chmod 644 "$T/routes"

# ====================================================================
# Server A: limits, relay, smuggling, pipelining, STARTTLS, loops.
make_cert srv mx.test.example
printf 'bob@relay.example\n# comment\ncarol@relay.example\n' >"$T/relay_rcpts"
chmod 644 "$T/relay_rcpts"
server "mynetworks=127.0.0.1/32" "relay_domains=relay.example" \
	"relay_recipients=$T/relay_rcpts" "command_length_limit=512" \
	"max_recipients=5" "message_size_limit=64k" "max_connections=3" \
	"max_connections_per_ip=2" "tls_cert_file=$T/srv.crt" \
	"tls_key_file=$T/srv.key"

# --- A command line over command_length_limit: 500 5.5.2, and on. ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
record("lc_greet", summary(c.greeting))
record("lc_ehlo", summary(c.cmd("EHLO client.example")))
# 512 octets with CRLF is the limit itself: fine.
record("lc_at_limit", summary(c.cmd("NOOP " + "x" * 505)))
record("lc_over", summary(c.cmd("NOOP " + "x" * 506)))
record("lc_after", summary(c.cmd("NOOP")))
# Far longer than the read buffer: one reply, not one per buffer.
r = c.cmd("NOOP " + "y" * 100000)
record("lc_huge", summary(r))
record("lc_huge_then", c.cmd("NOOP"))
record("lc_mail", summary(c.cmd("MAIL FROM:<a@example.com>")))
record("lc_quit", c.quit())
EOF
expect_eq long_cmd_greeting "$(res lc_greet)" "220"
expect_eq long_cmd_at_limit_ok "$(res lc_at_limit)" "250 2.0.0"
expect_eq long_cmd_over_limit "$(res lc_over)" "500 5.5.2"
expect_eq long_cmd_session_goes_on "$(res lc_after)" "250 2.0.0"
expect_eq long_cmd_huge "$(res lc_huge)" "500 5.5.2"
expect_eq long_cmd_huge_one_reply "$(res lc_huge_then)" "250 2.0.0 Ok"
expect_eq long_cmd_mail_after "$(res lc_mail)" "250 2.1.0"
expect_eq long_cmd_quit "$(res lc_quit)" "221 2.0.0"
after long_cmd

# --- A DATA line over 1000 octets: refused after the real end. ---
"$PY" - <<'EOF'
from smtpclient import *
for name, line in (("ld", b"a" * 1500), ("ldh", b"b" * 200000),
                   ("ld1001", b"e" * 999), ("lds", b".." + b"f" * 998)):
    c, got = session()
    record(name + "_open", " ".join(got))
    c.send(b"Subject: long\r\n\r\n" + line + b"\r\nnext line\r\n.\r\n")
    record(name + "_end", summary(c.reply()))
    record(name + "_then", c.cmd("NOOP"))
    record(name + "_quit", c.quit())
# The limit is 1000 octets with CRLF, not counting a stuffed dot (RFC 5321
# §4.5.3.1.6): 998 + CRLF passes, and so does "." + 997 + CRLF (1001 on
# the wire, stuffed); one more (above) does not.
c, got = session()
record("lb_open", " ".join(got))
c.send(b"Subject: limit\r\n\r\n" + b"c" * 998 + b"\r\n.." + b"d" * 997 +
       b"\r\n.\r\n")
record("lb_end", summary(c.reply()))
record("lb_quit", c.quit())
EOF
expect_eq long_data_open "$(res ld_open)" "220 250 250 2.1.0 250 2.1.5 354"
expect_eq long_data_refused "$(res ld_end)" "500 5.5.2"
expect_eq long_data_session_goes_on "$(res ld_then)" "250 2.0.0 Ok"
expect_eq long_data_quit "$(res ld_quit)" "221 2.0.0"
expect_eq huge_data_line_refused "$(res ldh_end)" "500 5.5.2"
expect_eq huge_data_line_session_goes_on "$(res ldh_then)" "250 2.0.0 Ok"
expect_eq data_line_1001_refused "$(res ld1001_end)" "500 5.5.2"
expect_eq data_line_1001_stuffed_refused "$(res lds_end)" "500 5.5.2"
expect_eq data_line_at_limit_queued "$(res lb_end)" "250 2.0.0"
after long_data

# --- max_recipients=5: the 6th RCPT gets 452 4.5.3 (pipelined). ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
record("mr_ehlo", summary(c.cmd("EHLO client.example")))
c.send("MAIL FROM:<alice@example.com>\r\n" + "".join(
    "RCPT TO:<r%d@site.example>\r\n" % i for i in range(1, 7)))
record("mr_replies", " ".join(summary(r) for r in c.replies(7)))
record("mr_data", summary(c.cmd("DATA")))
c.send(b"Subject: five\r\n\r\nhello\r\n.\r\n")
r = c.reply()
record("mr_end", summary(r))
record("mr_id", r.split()[-1])
record("mr_quit", c.quit())
EOF
expect_eq max_rcpt_replies "$(res mr_replies)" \
	"250 2.1.0 250 2.1.5 250 2.1.5 250 2.1.5 250 2.1.5 250 2.1.5 452 4.5.3"
expect_eq max_rcpt_data "$(res mr_data)" "354"
expect_eq max_rcpt_queued "$(res mr_end)" "250 2.0.0"
expect_eq max_rcpt_five_kept "$(qjson "[len(m['recipients']) for m in msgs if m['id']=='$(res mr_id)']")" "[5]"
after max_rcpt

# --- message_size_limit=64k: SIZE= and a 100 KB message without it. ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
c.cmd("EHLO client.example")
record("sz_big", summary(c.cmd("MAIL FROM:<alice@example.com> SIZE=100000")))
record("sz_small", summary(c.cmd("MAIL FROM:<alice@example.com> SIZE=1000")))
record("sz_rcpt", summary(c.cmd("RCPT TO:<bob@relay.example>")))
record("sz_data", summary(c.cmd("DATA")))
c.send(stuff(message(100 * 1024, 1)) + b".\r\n")
record("sz_end", summary(c.reply()))
record("sz_then", c.cmd("NOOP"))
# Just under the limit is fine.
record("sz_mail2", summary(c.cmd("MAIL FROM:<alice@example.com>")))
c.cmd("RCPT TO:<bob@relay.example>")
c.cmd("DATA")
c.send(stuff(message(60000, 2)) + b".\r\n")
record("sz_end2", summary(c.reply()))
record("sz_quit", c.quit())
EOF
expect_eq size_param_over "$(res sz_big)" "552 5.3.4"
expect_eq size_param_under "$(res sz_small)" "250 2.1.0"
expect_eq size_data_354 "$(res sz_data)" "354"
expect_eq size_100k_refused "$(res sz_end)" "552 5.3.4"
expect_eq size_session_goes_on "$(res sz_then)" "250 2.0.0 Ok"
expect_eq size_60k_queued "$(res sz_end2)" "250 2.0.0"
after size

# --- max_connections=3, max_connections_per_ip=2 (127.0.0.2). ---
"$PY" - <<'EOF'
from smtpclient import *
cs = [Client() for _ in range(3)]
record("mc_three", " ".join(summary(c.greeting) for c in cs))
c4 = Client()
record("mc_fourth", summary(c4.greeting))
record("mc_fourth_closed", c4.closed(10))
# The refused one is not counted; a freed slot is usable again.
record("mc_quit1", cs[0].quit())
c5 = Client()
record("mc_fifth", summary(c5.greeting))
record("mc_ehlo_others", " ".join(summary(c.cmd("EHLO x.example"))
                                  for c in cs[1:] + [c5]))
for c in cs[1:] + [c5]:
    c.quit()
ds = [Client(src="127.0.0.2") for _ in range(2)]
record("pi_two", " ".join(summary(d.greeting) for d in ds))
d3 = Client(src="127.0.0.2")
record("pi_third", summary(d3.greeting))
record("pi_third_closed", d3.closed(10))
other = Client()           # another address is not limited by that
record("pi_other", summary(other.greeting))
other.quit()
ds[0].quit()
d4 = Client(src="127.0.0.2")
record("pi_again", summary(d4.greeting))
for d in (ds[1], d4):
    d.quit()
EOF
expect_eq maxconn_three_served "$(res mc_three)" "220 220 220"
expect_eq maxconn_fourth_refused "$(res mc_fourth)" "421 4.7.0"
expect_eq maxconn_fourth_closed "$(res mc_fourth_closed)" True
expect_eq maxconn_slot_freed "$(res mc_fifth)" "220"
expect_eq maxconn_others_unharmed "$(res mc_ehlo_others)" "250 250 250"
expect_grep maxconn_logged "refused: max_connections$" "$LOG"
expect_eq perip_two_served "$(res pi_two)" "220 220"
expect_eq perip_third_refused "$(res pi_third)" "421 4.7.0"
expect_eq perip_third_closed "$(res pi_third_closed)" True
expect_eq perip_other_addr_served "$(res pi_other)" "220"
expect_eq perip_slot_freed "$(res pi_again)" "220"
expect_grep perip_logged "unknown\[127.0.0.2\], refused: max_connections_per_ip" "$LOG"
after maxconn

# --- Relay control from 127.0.0.2 (not in mynetworks). ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client(src="127.0.0.2")
c.cmd("EHLO outside.example")
record("rl_mail", summary(c.cmd("MAIL FROM:<alice@example.com>")))
record("rl_other", summary(c.cmd("RCPT TO:<victim@other.example>")))
record("rl_ours", summary(c.cmd("RCPT TO:<bob@relay.example>")))
record("rl_unknown", summary(c.cmd("RCPT TO:<nobody@relay.example>")))
record("rl_pm", summary(c.cmd("RCPT TO:<Postmaster>")))
record("rl_data", summary(c.cmd("DATA")))
c.send(b"Subject: relay\r\n\r\nhi\r\n.\r\n")
r = c.reply()
record("rl_end", summary(r))
record("rl_id", r.split()[-1])
record("rl_quit", c.quit())
EOF
expect_eq relay_mail "$(res rl_mail)" "250 2.1.0"
expect_eq relay_denied "$(res rl_other)" "554 5.7.1"
expect_grep relay_denied_logged "reject RCPT from=<alice@example.com>, to=<victim@other.example>: relay access denied" "$LOG"
expect_eq relay_domain_ok "$(res rl_ours)" "250 2.1.5"
expect_eq relay_unknown_rcpt "$(res rl_unknown)" "550 5.1.1"
expect_eq relay_postmaster_ok "$(res rl_pm)" "250 2.1.5"
expect_eq relay_queued "$(res rl_end)" "250 2.0.0"
expect_eq relay_rcpts_kept "$(qjson "[[r['address'] for r in m['recipients']] for m in msgs if m['id']=='$(res rl_id)']")" \
	"[['bob@relay.example', 'postmaster@mx.test.example']]"
after relay

# --- SMTP smuggling: <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF>. ---
"$PY" - <<'EOF'
from smtpclient import *
smuggled = (b"MAIL FROM:<x@evil.example>\r\nRCPT TO:<bob@relay.example>\r\n"
            b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
for name, seq in (("sm_lf", b"\n.\n"), ("sm_cr", b"\r.\r"),
                  ("sm_lfcrlf", b"\n.\r\n")):
    c, got = session()
    record(name + "_open", " ".join(got))
    c.send(b"Subject: innocent\r\n\r\nhello" + seq + smuggled)
    # Nothing may come back yet: the data has not ended.
    record(name + "_quiet", c.quiet(0.3))
    c.send(b"more text\r\n.\r\n")
    record(name + "_end", summary(c.reply()))
    # No reply for the smuggled MAIL/RCPT/DATA: the next one is NOOP's.
    record(name + "_next", c.cmd("NOOP"))
    record(name + "_quit", c.quit())
EOF
for v in lf cr lfcrlf; do
	expect_eq "smuggle_${v}_open" "$(res sm_${v}_open)" "220 250 250 2.1.0 250 2.1.5 354"
	expect_eq "smuggle_${v}_not_ended" "$(res sm_${v}_quiet)" True
	expect_eq "smuggle_${v}_refused" "$(res sm_${v}_end)" "550 5.6.0"
	expect_eq "smuggle_${v}_not_executed" "$(res sm_${v}_next)" "250 2.0.0 Ok"
	expect_eq "smuggle_${v}_quit" "$(res sm_${v}_quit)" "221 2.0.0"
done
after smuggle

# --- Bare LF / CR in a command line, NUL in DATA. ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
c.cmd("EHLO client.example")
c.send("NOOP\n")
record("bl_noop", summary(c.reply()))
c.send("MAIL FROM:<a@example.com>\nRCPT TO:<bob@relay.example>\r\n")
record("bl_pair", " ".join(summary(r) for r in c.replies(2)))
c.send("NOOP\rRSET\r\n")
record("bl_cr", summary(c.reply()))
record("bl_then", c.cmd("NOOP"))
record("bl_quit", c.quit())
c, got = session()
record("nul_open", " ".join(got))
c.send(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n")
record("nul_end", summary(c.reply()))
record("nul_then", c.cmd("NOOP"))
record("nul_quit", c.quit())
EOF
expect_eq bare_lf_command "$(res bl_noop)" "500 5.5.2"
expect_eq bare_lf_mail_not_taken "$(res bl_pair)" "500 5.5.2 503 5.5.1"
expect_eq bare_cr_command "$(res bl_cr)" "500 5.5.2"
expect_eq bare_lf_session_goes_on "$(res bl_then)" "250 2.0.0 Ok"
expect_eq nul_data_open "$(res nul_open)" "220 250 250 2.1.0 250 2.1.5 354"
expect_eq nul_data_refused "$(res nul_end)" "550 5.6.0"
expect_eq nul_session_goes_on "$(res nul_then)" "250 2.0.0 Ok"
after bare

# --- Commands before the greeting; improper pipelining. ---
# The listener is stopped while the client connects and talks, so the
# bytes are there before it accepts: the pre-greeting check must see them.
"$PY" - <<'EOF'
import os, signal
from smtpclient import *
pid = int(os.environ["SPID0"])
os.kill(pid, signal.SIGSTOP)
try:
    c = Client(greet=False)
    c.send("EHLO x.example\r\nMAIL FROM:<a@example.com>\r\n")
finally:
    os.kill(pid, signal.SIGCONT)
record("pg_reply", summary(c.reply()))
record("pg_closed", c.closed(10))
record("pg_extra", len(c.extra))
# Without stopping it: either the greeting goes out first (then EHLO with
# more behind it breaks the pipelining rule) or the early input is seen.
c = Client(greet=False)
c.send("EHLO x.example\r\nMAIL FROM:<a@example.com>\r\n")
seq = [summary(c.reply())]
while seq[-1] not in ("EOF", "TIMEOUT") and len(seq) < 5:
    seq.append(summary(c.reply()))
record("pr_seq", ",".join(seq))
# HELO (no PIPELINING), then MAIL and RCPT in one write.
c = Client()
record("hp_helo", summary(c.cmd("HELO client.example")))
c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<bob@relay.example>\r\n")
record("hp_reply", summary(c.reply()))
record("hp_closed", c.closed(10))
record("hp_extra", len(c.extra))
EOF
expect_eq pregreet_refused "$(res pg_reply)" "554 5.5.0"
expect_eq pregreet_closed "$(res pg_closed)" True
expect_eq pregreet_nothing_else "$(res pg_extra)" 0
expect_grep pregreet_logged "disconnect (command sent before the greeting)" "$LOG"
expect_eq pregreet_race_refused "$(res pr_seq | sed 's/^220,//')" "554 5.5.0,EOF"
expect_eq helo_pipelining_helo "$(res hp_helo)" "250"
expect_eq helo_pipelining_refused "$(res hp_reply)" "554 5.5.0"
expect_eq helo_pipelining_closed "$(res hp_closed)" True
expect_eq helo_pipelining_nothing_else "$(res hp_extra)" 0
after pipelining

# --- STARTTLS with plaintext pipelined after it. ---
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
r = c.cmd("EHLO client.example")
record("tl_offered", "STARTTLS" in r.split("\r\n")[-1] or "250-STARTTLS" in r)
c.send("STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
record("tl_220", summary(c.reply()))
c.starttls()
r = c.cmd("EHLO client.example")
record("tl_ehlo", summary(r))
record("tl_not_again", "STARTTLS" not in r)
record("tl_rcpt", summary(c.cmd("RCPT TO:<bob@relay.example>")))
record("tl_mail", summary(c.cmd("MAIL FROM:<alice@example.com>")))
record("tl_rcpt2", summary(c.cmd("RCPT TO:<bob@relay.example>")))
record("tl_data", summary(c.cmd("DATA")))
c.send(stuff(message(40000, 3)) + b".\r\n")
record("tl_end", summary(c.reply()))
# Larger than one read: the end of it may wait in OpenSSL's buffer.
c.cmd("MAIL FROM:<alice@example.com>")
c.cmd("RCPT TO:<bob@relay.example>")
c.cmd("DATA")
c.send(stuff(message(62 * 1024, 4)) + b".\r\n")
record("tl_end2", summary(c.reply()))
record("tl_quit", c.quit())
EOF
expect_eq starttls_offered "$(res tl_offered)" True
expect_eq starttls_220 "$(res tl_220)" "220 2.0.0"
expect_eq starttls_ehlo_after "$(res tl_ehlo)" "250"
expect_eq starttls_not_offered_again "$(res tl_not_again)" True
expect_eq starttls_injected_mail_discarded "$(res tl_rcpt)" "503 5.5.1"
expect_eq starttls_mail_after "$(res tl_mail)" "250 2.1.0"
expect_eq starttls_message "$(res tl_end)" "250 2.0.0"
expect_eq starttls_message_62k "$(res tl_end2)" "250 2.0.0"
expect_grep starttls_discard_logged "STARTTLS: discarded 28 octets of pipelined plaintext" "$LOG"
after starttls

# --- Mail loop: 101 Received: fields (max_received_headers 100). ---
"$PY" - <<'EOF'
from smtpclient import *
def hops(n):
    return b"".join(b"Received: from h%d.example by h%d.example; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1)
                    for i in range(n))
for name, n in (("lp101", 101), ("lp100", 100)):
    c, got = session()
    record(name + "_open", " ".join(got))
    c.send(hops(n) + b"Subject: loop\r\n\r\nround and round\r\n.\r\n")
    record(name + "_end", summary(c.reply()))
    record(name + "_quit", c.quit())
EOF
expect_eq loop_101_refused "$(res lp101_end)" "554 5.4.6"
expect_eq loop_100_accepted "$(res lp100_end)" "250 2.0.0"
after loop

server_done server_a

# ====================================================================
# Server B: timeouts and max_errors.
server "command_timeout=2s" "data_timeout=2s" "max_errors=3"

"$PY" - <<'EOF'
import time
from smtpclient import *
# Idle after the greeting: 421 4.4.2, then closed.
c = Client()
t0 = time.monotonic()
record("to_cmd", summary(c.reply()))
record("to_cmd_after", round(time.monotonic() - t0) >= 1)
record("to_cmd_closed", c.closed(10))
# Stalled in DATA.
c, got = session()
record("to_data_open", " ".join(got))
c.send(b"Subject: stalled\r\n\r\nhalf a mess")
record("to_data", summary(c.reply()))
record("to_data_closed", c.closed(10))
# A slow but steady client that ends within data_timeout is not cut off
# (data_timeout is the deadline of the whole message, 354 to the dot; one
# that goes on past it is dropped: 160-smtpd-hardening).
c, got = session()
end = time.monotonic() + 1.0
i = 0
while time.monotonic() < end:
    c.send(b"line %d\r\n" % i)
    i += 1
    time.sleep(0.5)
c.send(b".\r\n")
record("to_slow", summary(c.reply()))
record("to_slow_quit", c.quit())
EOF
expect_eq timeout_command "$(res to_cmd)" "421 4.4.2"
expect_eq timeout_command_not_early "$(res to_cmd_after)" True
expect_eq timeout_command_closed "$(res to_cmd_closed)" True
expect_eq timeout_data_open "$(res to_data_open)" "220 250 250 2.1.0 250 2.1.5 354"
expect_eq timeout_data "$(res to_data)" "421 4.4.2"
expect_eq timeout_data_closed "$(res to_data_closed)" True
expect_grep timeout_data_logged "disconnect (timeout in DATA)" "$LOG"
expect_eq timeout_slow_data_ok "$(res to_slow)" "250 2.0.0"
after timeout

"$PY" - <<'EOF'
from smtpclient import *
c = Client()
record("me_two", " ".join(summary(c.cmd("XYZZY")) for _ in range(2)))
record("me_noop", summary(c.cmd("NOOP")))
record("me_third", summary(c.cmd("XYZZY")))
record("me_421", summary(c.reply()))
record("me_closed", c.closed(10))
EOF
expect_eq max_errors_two "$(res me_two)" "500 5.5.1 500 5.5.1"
expect_eq max_errors_not_yet "$(res me_noop)" "250 2.0.0"
expect_eq max_errors_third "$(res me_third)" "500 5.5.1"
expect_eq max_errors_421 "$(res me_421)" "421 4.7.0"
expect_eq max_errors_closed "$(res me_closed)" True
after max_errors

server_done server_b

# ====================================================================
# Server B2: limits set above the buffers' natural sizes.
server "command_length_limit=20000" "line_length_limit=100000"
"$PY" - <<'EOF'
from smtpclient import *
c = Client()
record("cl_ehlo", summary(c.cmd("EHLO client.example")))
record("cl_15k", summary(c.cmd("NOOP " + "z" * 15000)))
record("cl_then", c.cmd("NOOP"))
record("cl_quit", c.quit())
c, got = session()
c.send(b"Subject: wide\r\n\r\n" + b"w" * 70000 + b"\r\n.\r\n")
record("ll_end", summary(c.reply()))
record("ll_quit", c.quit())
EOF
expect_eq cmdlimit_big_ehlo "$(res cl_ehlo)" "250"
expect_eq cmdlimit_big_line "$(res cl_15k)" "500 5.5.2"
expect_eq cmdlimit_big_then "$(res cl_then)" "250 2.0.0 Ok"
expect_eq linelimit_big_line_queued "$(res ll_end)" "250 2.0.0"
after cmdlimit_big
server_done server_b2

# ====================================================================
# Server C: a 20 MiB message through the spool, then a killed listener.
server "message_size_limit=50m" "tls_cert_file=$T/srv.crt" \
	"tls_key_file=$T/srv.key"

# Over TLS, a burst larger than one read: the listener is stopped while
# the client sends, so it finds the whole message at once and must not
# leave the tail in OpenSSL's buffer, where epoll cannot see it.
"$PY" - <<'EOF'
import os, signal, threading
from smtpclient import *
pid = int(os.environ["SPID0"])
c = Client()
c.cmd("EHLO client.example")
record("tb_220", summary(c.cmd("STARTTLS")))
c.starttls()
c.cmd("EHLO client.example")
got = []
for i, size in enumerate((70000, 140000, 200000, 300000)):
    c.cmd("MAIL FROM:<alice@example.com>")
    c.cmd("RCPT TO:<bob@relay.example>")
    c.cmd("DATA")
    data = stuff(message(size, 30 + i)) + b".\r\n"
    os.kill(pid, signal.SIGSTOP)
    try:
        th = threading.Thread(target=c.send, args=(data,))
        th.start()
        th.join(2.0)        # until it is all in the socket buffers
    finally:
        os.kill(pid, signal.SIGCONT)
    th.join()
    got.append(summary(c.reply()))
record("tb_replies", " ".join(got))
record("tb_quit", c.quit())
EOF
expect_eq tls_burst_starttls "$(res tb_220)" "220 2.0.0"
expect_eq tls_burst_all_queued "$(res tb_replies)" "250 2.0.0 250 2.0.0 250 2.0.0 250 2.0.0"
expect_eq tls_burst_quit "$(res tb_quit)" "221 2.0.0"
after tls_burst

"$PY" - <<'EOF'
import hashlib
from smtpclient import *
msg = message(20 * 1024 * 1024, 20)
record("hg_sha", hashlib.sha256(msg).hexdigest())
c, got = session()
record("hg_open", " ".join(got))
c.send(stuff(msg) + b".\r\n")
r = c.reply()
record("hg_end", summary(r))
record("hg_id", r.split()[-1])
record("hg_quit", c.quit())
EOF
expect_eq huge_open "$(res hg_open)" "220 250 250 2.1.0 250 2.1.5 354"
expect_eq huge_queued "$(res hg_end)" "250 2.0.0"
hg_id=$(res hg_id)
"$P" show --raw "$hg_id" >"$T/raw20" 2>&1
expect_eq huge_stored_exactly "$("$PY" -c "import smtpclient; print(smtpclient.stored_sha('$T/raw20'))")" "$(res hg_sha)"
expect_eq huge_no_spool_left "$(ls -A "$T/queue/spool" | wc -l | tr -d ' ')" 0
after huge

# Mid-session, with a spool file open: SIGKILL the listener.
export SPOOL="$T/queue/spool"
"$PY" - <<'EOF'
import os, signal, time
from smtpclient import *
spool = os.environ["SPOOL"]
c, got = session()
record("kl_open", " ".join(got))
c.send(stuff(message(400 * 1024, 21)))
end = time.monotonic() + 10
while not os.listdir(spool) and time.monotonic() < end:
    time.sleep(0.05)
record("kl_spooled", len(os.listdir(spool)))
os.kill(int(os.environ["SPID0"]), signal.SIGKILL)
record("kl_client", summary(c.reply()))
# Poll until a new listener greets (bounded).
got, end = "none", time.monotonic() + 20
while time.monotonic() < end:
    try:
        n = Client(timeout=2)
        got = summary(n.greeting)
        if got == "220":
            n.quit()
            break
        n.close()
    except OSError:
        pass
    time.sleep(0.1)
record("kl_new", got)
EOF
KILLS=1
i=0
while { [ -z "$(smtpd_pid)" ] || [ "$(smtpd_pid)" = "$SPID0" ]; } && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
new_pid=$(smtpd_pid)
expect_eq kill_open "$(res kl_open)" "220 250 250 2.1.0 250 2.1.5 354"
expect_eq kill_was_spooling "$(res kl_spooled)" 1
expect_eq kill_client_sees_close "$(res kl_client)" "EOF"
expect_eq kill_new_listener_greets "$(res kl_new)" "220"
expect_eq kill_new_pid "$(test -n "$new_pid" && test "$new_pid" != "$SPID0" && echo differs)" differs
expect_grep kill_logged "smtpd pid $SPID0 killed by signal 9" "$LOG"
expect_grep kill_restart_logged "restarting smtpd" "$LOG"
expect_grep kill_spool_swept "removed 1 spool file of an earlier listener" "$LOG"
expect_eq kill_no_spool_left "$(ls -A "$T/queue/spool" | wc -l | tr -d ' ')" 0
SPID0=$new_pid
"$P" show --raw "$hg_id" >"$T/raw20b" 2>&1
expect_eq kill_huge_intact "$("$PY" -c "import smtpclient; print(smtpclient.stored_sha('$T/raw20b'))")" "$(res hg_sha)"
after kill
server_done server_c

# ====================================================================
# Server D: the queue on a 3 MiB tmpfs, filled with 256 KB messages.
mv "$T/queue" "$T/queue.c"
sort -u "$ACKED" >"$T/acked.c"
: >"$ACKED"
mkdir "$T/queue"
if mount -t tmpfs -o size=3m,mode=0755 tmpfs "$T/queue"; then
	MNT="$T/queue"
	ok tmpfs_mounted
else
	notok tmpfs_mounted "mount -t tmpfs failed"
fi
server
"$PY" - <<'EOF'
import hashlib, os
from smtpclient import *
c = Client()
c.cmd("EHLO client.example")
last, n = "none", 0
with open(os.environ["RESULTS"] + ".sha", "w") as f:
    for i in range(40):
        r = c.cmd("MAIL FROM:<alice@example.com>")
        if not r.startswith("250"):
            last = "MAIL " + summary(r)
            break
        c.cmd("RCPT TO:<bob@relay.example>")
        r = c.cmd("DATA")
        if not r.startswith("354"):
            last = "DATA " + summary(r)
            break
        msg = message(256 * 1024, 100 + i)
        c.send(stuff(msg) + b".\r\n")
        r = c.reply()
        last = summary(r)
        if last != "250 2.0.0":
            break
        n += 1
        f.write("%s %s\n" % (r.split()[-1], hashlib.sha256(msg).hexdigest()))
record("fd_last", last)
record("fd_n", n)
# Bigger than what is left: now the spool file is what cannot be written.
c.cmd("MAIL FROM:<alice@example.com>")
c.cmd("RCPT TO:<bob@relay.example>")
c.cmd("DATA")
c.send(stuff(message(4 * 1024 * 1024, 99)) + b".\r\n")
record("fd_spool", summary(c.reply()))
record("fd_rset", summary(c.cmd("RSET")))
record("fd_noop", summary(c.cmd("NOOP")))
record("fd_quit", c.quit())
EOF
expect_eq full_disk_452 "$(res fd_last)" "452 4.3.1"
expect_eq full_disk_spool_452 "$(res fd_spool)" "452 4.3.1"
expect_eq full_disk_some_fit "$(test "$(res fd_n)" -ge 2 && echo yes)" yes
expect_eq full_disk_rset "$(res fd_rset)" "250 2.0.0"
expect_eq full_disk_noop "$(res fd_noop)" "250 2.0.0"
expect_eq full_disk_quit "$(res fd_quit)" "221 2.0.0"
bad=0
while read -r id sha; do
	"$P" show --raw "$id" >"$T/rawfd" 2>&1
	got=$("$PY" -c "import smtpclient; print(smtpclient.stored_sha('$T/rawfd'))")
	[ "$got" = "$sha" ] || bad=$((bad + 1))
done <"$RESULTS.sha"
expect_eq full_disk_acked_readable "$bad" 0
expect_eq full_disk_acked_count "$(wc -l <"$RESULTS.sha" | tr -d ' ')" "$(res fd_n)"
expect_eq full_disk_no_spool_left "$(ls -A "$T/queue/spool" | wc -l | tr -d ' ')" 0
after full_disk
server_done server_d
if [ -n "$MNT" ]; then
	check tmpfs_unmounted umount "$MNT"
	MNT=""
fi

# 025-cli-inject: with posternd running, sendmail and `postern enqueue`
# hand their message to the listener over queue_dir/inject.sock, where it
# joins the group commit; the message stored is the one direct enqueue
# stores (but for the date in the trace field), with the same envelope and
# the same trust (any recipient, as direct enqueue takes it). Only root
# and the daemon's user may use the socket; others get what they get today
# (a queue they cannot write: EX_TEMPFAIL). Without the daemon, or with a
# dead listener's socket left behind, sendmail stores the message itself.
. "$POSTERN_TOP/tests/integ/lib.sh"
ln -s "$P" "$T/sendmail"
S="$T/sendmail"
SOCK="$T/queue/inject.sock"
printf 'known@relay.example\n' >"$T/rr"
chmod 644 "$T/rr"
KEYS="hold_domains=example.org,example.net,relay.example relay_domains=relay.example relay_recipients=$T/rr"
# shellcheck disable=SC2086
conf $KEYS

# The same input both ways: fixed Date: and Message-ID:, a leading dot
# (stuffed on the socket, stored once), an 8-bit byte, a Bcc: to drop.
printf 'From: Alice <alice@example.com>\nTo: bob@example.org\nCc: carol@example.net\nBcc: dave@example.org\nDate: Thu, 3 Dec 2026 10:00:00 +0000\nMessage-ID: <fixed@example.com>\nSubject: inject\n\nline one\n.hidden dot\n..two dots\nna\303\257ve\n' >"$T/m"

# raw_without_trace ID - the stored message without its first field (our
# Received:, two lines).
raw_without_trace() {
	"$P" show --raw "$1" | "$PY" -c '
import sys
b = sys.stdin.buffer.read()
i = b.index(b"\r\n\t") + 2
sys.stdout.buffer.write(b[b.index(b"\r\n", i) + 2:])'
}
envelope() {
	qjson "[(m['sender'], sorted(r['address'] for r in m['recipients'])) for m in msgs if m['id'] == '$1'][0]"
}
# via_daemon ID - the listener logged storing ID for a local client.
via_daemon() {
	grep -q "smtpd\[[0-9]*\]: $1: client=local\[uid $(id -u)\]" "$T/posternd.log"
}

# Direct first: no daemon.
"$S" -t -oi -f alice@example.com <"$T/m"
expect_eq direct_rc $? 0
D=$(qjson 'msgs[-1]["id"]')
raw_without_trace "$D" >"$T/direct.raw"
"$P" show --raw "$D" | head -n 1 >"$T/direct.trace"

# shellcheck disable=SC2086
start_posternd $KEYS || exit 1
if until_ok 100 test -S "$SOCK"; then ok socket_made; else
	notok socket_made "no $SOCK: $(tail -n 5 "$T/posternd.log")"; fi
# 0600, the daemon's user's, in the 0700 queue_dir.
expect_eq socket_mode "$(stat -c '%a %U' "$SOCK")" "600 $(stat -c %U "$T/queue")"

"$S" -t -oi -f alice@example.com <"$T/m"
expect_eq inject_rc $? 0
I=$(qjson 'msgs[-1]["id"]')
if [ "$I" != "$D" ] && via_daemon "$I"; then ok inject_via_daemon; else
	notok inject_via_daemon "$I not stored by the listener: $(tail -n 5 "$T/posternd.log")"; fi
raw_without_trace "$I" >"$T/inject.raw"
if cmp -s "$T/direct.raw" "$T/inject.raw"; then ok inject_body_identical; else
	notok inject_body_identical "$(diff "$T/direct.raw" "$T/inject.raw" | head -c 300)"; fi
# The trace field has the same form (the uid from SO_PEERCRED).
expect_eq inject_trace_form "$("$P" show --raw "$I" | head -n 1)" "$(cat "$T/direct.trace")"
expect_grep inject_trace_uid "from userid $(id -u));" "$T/direct.trace"
expect_eq inject_envelope "$(envelope "$I")" "$(envelope "$D")"
expect_eq inject_envelope_t "$(envelope "$I")" \
	"('alice@example.com', ['bob@example.org', 'carol@example.net', 'dave@example.org'])"
expect_eq inject_client "$("$P" show "$I" | grep -c 'local\[uid '"$(id -u)"'\]')" 1
# BODY=8BITMIME on the socket: the flag direct enqueue sets.
expect_eq inject_flags "$("$P" show "$I" | grep '^flags:')" "$("$P" show "$D" | grep '^flags:')"
expect_eq inject_flags_8bit "$("$P" show "$I" | grep '^flags:')" "flags: 8BITMIME"

# postern enqueue prints the id the listener gave; trusted as direct
# enqueue is: relay_recipients does not apply.
id=$(printf 'Subject: e\n\nx\n' | "$P" enqueue -f bob@example.com known@relay.example unknown@relay.example)
expect_eq enqueue_prints_id "$id" "$(qjson 'msgs[-1]["id"]')"
if via_daemon "$id"; then ok enqueue_via_daemon; else
	notok enqueue_via_daemon "$id not stored by the listener"; fi
expect_eq enqueue_trusted "$(envelope "$id")" \
	"('bob@example.com', ['known@relay.example', 'unknown@relay.example'])"

# -f '<>': the null sender; argument recipients.
printf 'x\n' | "$S" -f '<>' null@example.org
I=$(qjson 'msgs[-1]["id"]')
if via_daemon "$I"; then ok null_sender_via_daemon; else
	notok null_sender_via_daemon "$I not stored by the listener"; fi
expect_eq null_sender_envelope "$(envelope "$I")" "('', ['null@example.org'])"

# Bad input: the same exit codes as ever, nothing queued.
before=$(qjson 'len(msgs)')
printf 'x\n' | "$S" 'bad@@example.org' >/dev/null 2>&1
expect_eq bad_rcpt_ex_dataerr $? 65
expect_eq nothing_queued_on_error "$(qjson 'len(msgs)')" "$before"

# Acknowledged after the commit: SIGKILL the listener as soon as sendmail
# returns; the message is in the queue.
pid=$(smtpd_pid)
printf 'Subject: durable\n\nx\n' | "$S" -f k@example.com durable@example.org
rc=$?
kill -KILL "$pid"
expect_eq durable_rc "$rc" 0
I=$(qjson 'msgs[-1]["id"]')
expect_eq durable_queued "$(envelope "$I")" "('k@example.com', ['durable@example.org'])"
if via_daemon "$I"; then ok durable_via_daemon; else
	notok durable_via_daemon "$I not stored by the listener"; fi

# The master restarts the listener, which makes the socket again.
newpid() { p=$(smtpd_pid); [ -n "$p" ] && [ "$p" != "$pid" ] && test -S "$SOCK"; }
until_ok 100 newpid
# A dead listener's socket left behind: connect is refused, sendmail
# stores the message itself. (The master stopped, so no restart.)
pid=$(smtpd_pid)
kill -STOP "$PD_PID"
kill -KILL "$pid"
gone() { st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null); [ -z "$st" ] || [ "$st" = Z ]; }
until_ok 50 gone "$pid"
printf 'Subject: refused\n\nx\n' | "$S" -f r@example.com refused@example.org
expect_eq fallback_refused_rc $? 0
I=$(qjson 'msgs[-1]["id"]')
expect_eq fallback_refused_queued "$(envelope "$I")" "('r@example.com', ['refused@example.org'])"
if via_daemon "$I"; then notok fallback_refused_direct "stored by a dead listener?"; else
	ok fallback_refused_direct; fi
kill -CONT "$PD_PID"
until_ok 100 newpid

# Another local user: the queue_dir (0700) and the socket (0600) keep
# them out; they get today's EX_TEMPFAIL and nothing is queued.
before=$(qjson 'len(msgs)')
printf 'x\n' | setpriv --reuid=nobody --regid=nogroup --clear-groups "$S" -f n@example.com n@example.org >"$T/nobody.out" 2>&1
expect_eq other_user_tempfail $? 75
expect_eq other_user_nothing_queued "$(qjson 'len(msgs)')" "$before"
# Even with the modes opened by hand, the listener refuses a uid that is
# neither root nor its own (SO_PEERCRED).
qmode=$(stat -c %a "$T/queue")
chmod 711 "$T/queue"
chmod 666 "$SOCK"
printf 'x\n' | setpriv --reuid=nobody --regid=nogroup --clear-groups "$S" -f n@example.com n@example.org >"$T/nobody.out" 2>&1
expect_eq other_user_open_tempfail $? 75
expect_eq other_user_open_nothing_queued "$(qjson 'len(msgs)')" "$before"
expect_grep other_user_refused_logged "local client uid $(id -u nobody), pid [0-9]*: refused" "$T/posternd.log"
chmod "$qmode" "$T/queue"
chmod 600 "$SOCK"

# Stopped: the socket is gone, sendmail stores the message itself.
stop_posternd
if [ -e "$SOCK" ]; then notok socket_removed "$SOCK still there"; else ok socket_removed; fi
lines=$(wc -l <"$T/posternd.log")
printf 'Subject: stopped\n\nx\n' | "$S" -f s@example.com stopped@example.org
expect_eq fallback_stopped_rc $? 0
I=$(qjson 'msgs[-1]["id"]')
expect_eq fallback_stopped_queued "$(envelope "$I")" "('s@example.com', ['stopped@example.org'])"
expect_eq fallback_stopped_no_daemon "$(wc -l <"$T/posternd.log")" "$lines"

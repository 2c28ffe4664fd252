# 932-deliver-bdat-postfix: the client's BDAT against real servers.
#  - Postfix's own smtpd (an instance of this case: config, queue and log
#    in $T, tests/bench/bench_lib.sh's pf_setup, every message put on
#    hold; started and stopped here), which offers CHUNKING: with
#    smtp_bdat_min_size = 1 posternd sends BDAT (Postfix's verbose log of
#    our address shows the commands), the delivery is "sent" with
#    Postfix's queue id, and the held message's body is the one sent; a
#    BINARYMIME message fails with 5.6.3 (Postfix offers CHUNKING, not
#    BINARYMIME) before anything is sent.
#  - Postfix's smtp-sink, which does not offer CHUNKING: DATA, delivered.
. "$POSTERN_TOP/tests/integ/lib.sh"

top=$POSTERN_TOP
die() { notok postfix_setup "$*"; exit 1; }
. "$top/tests/bench/bench_lib.sh"
W=$T/pf
mkdir -p "$W"
chmod 755 "$W"
PF_ETC=$W/etc
PFP=$(free_port)
# Verbose for our address: each SMTP command is logged ("< ...: BDAT").
pf_setup "$PFP" "debug_peer_list = 127.0.0.1" "debug_peer_level = 2"
pf_start
trap 'pf_stop; cleanup' EXIT INT TERM

SSP=$(free_port)
mkdir -p "$T/ss"
chmod 777 "$T/ss"
smtp-sink -u postern -c -d "$T/ss/%H%M%S." 127.0.93.4:"$SSP" 10 \
	>"$T/ss.out" 2>&1 &
reap $!
wait_listen "$SSP" 127.0.93.4 || notok smtp_sink "not listening"
{
	echo "pf.example [127.0.0.1]:$PFP"
	echo "ss.example [127.0.93.4]:$SSP"
} >"$T/routes"
chmod 644 "$T/routes"
start_posternd mynetworks=127.0.0.1/32 "routes_file=$T/routes" \
	min_backoff=1h max_backoff=2h smtp_bdat_min_size=1 || exit 1

status_of() {
	sed -n "s/.*: to=<$1>,.* status=\([a-z]*\) .*/\1/p" "$T/posternd.log" |
	    tail -n 1
}
has_status() { [ -n "$(status_of "$1")" ]; }
final() { poll_for 60 has_status "$1"; status_of "$1"; }

"$PY" - "$T" <<'EOF'
import sys
t = sys.argv[1]
body = b"".join(b".%05d " % i + b"p" * 60 + b"\r\n" for i in range(6000))
open(t + "/text", "wb").write(b"Subject: to postfix\r\n\r\n" + body)
open(t + "/textbody", "wb").write(body)
bbody = bytes(range(256)) * 200
open(t + "/bin", "wb").write(b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n" + bbody)
open(t + "/binbody", "wb").write(bbody)
EOF
# send FILE RCPT [--binary] - into posternd (lib.sh's smtp_inject): DATA, or BDAT
# with BODY=BINARYMIME.
send() { smtp_inject "$SMTP_PORT" s@py.test.example "$@"; }
# pf_body ADDR - "same" when the message Postfix holds for ADDR has the
# body FILE.
pf_body() {
	qid=$(sed -n "s/.*: to=<$1>,.* status=sent (250 .*queued as \([0-9A-Za-z]*\))$/\1/p" \
	    "$T/posternd.log" | tail -n 1)
	postcat -c "$PF_ETC" -b -q "$qid" 2>/dev/null |
	    "$PY" -c '
import sys
got = sys.stdin.buffer.read().replace(b"\n", b"\r\n")
got = got[2:] if got.startswith(b"\r\n") else got   # postcat: the empty line
want = open(sys.argv[1], "rb").read()
print("same" if got == want else "differ %d %d" % (len(got), len(want)))' "$2"
}

send "$T/text" t@pf.example >/dev/null
expect_eq pf_text_sent "$(final t@pf.example)" sent
expect_grep pf_saw_bdat ": BDAT [0-9]* LAST$" "$W/pf-maillog"
expect_eq pf_no_data "$(grep -c ': DATA$' "$W/pf-maillog")" 0
expect_eq pf_text_body "$(pf_body t@pf.example "$T/textbody")" same

# Postfix offers CHUNKING but not BINARYMIME (RFC 3030 §3: both are
# needed): 5.6.3, without a word to Postfix.
send "$T/bin" b@pf.example --binary >/dev/null
expect_eq pf_binary_refused "$(final b@pf.example)" bounced
expect_grep pf_binary_563 "to=<b@pf.example>.*dsn=5.6.3, status=bounced" "$T/posternd.log"
expect_eq pf_binary_not_sent "$(grep -c 'BODY=BINARYMIME' "$W/pf-maillog")" 0

send "$T/text" t@ss.example >/dev/null
expect_eq sink_sent "$(final t@ss.example)" sent
expect_grep sink_mesg "mesg=1" "$T/ss.out"
expect_eq sink_dumped "$(ls "$T/ss" | wc -l)" 1
stop_posternd

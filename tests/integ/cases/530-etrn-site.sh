# 530-etrn-site: a site asks its provider for its mail with ETRN
# (RFC 1985), with real clients: fetchmail (`protocol ETRN`) and `postern
# etrn`.
#
# The provider is posternd on 127.0.0.1 (hold_domains: the sites' mail
# waits for them; routes_file sends each site's mail to its listener on
# 127.0.0.3, a small SMTP server that dumps every message as received,
# tests/integ/deliver_fail_srv.py --dump). Checked:
#  - fetchmail `protocol ETRN fetchdomains site.example` exits 0, and
#    every message of site.example reaches the site byte for byte (as
#    `postern show --raw` had it before the ETRN), once, and nothing
#    arrived before the ETRN;
#  - `postern etrn`: exit 0 for 25x (mail waiting, delivered; nothing
#    waiting; #queue and @domain too), 1 for 459 (an unknown domain) and for a mix, 1 when the
#    connection is refused, when the server does not offer ETRN (and with
#    --force, on its 502), 2 for bad arguments with nothing sent (no
#    connection at all); a hostile reply is printed escaped; AUTH PLAIN/
#    LOGIN only inside TLS verified against --ca-file (a server on plain
#    TCP offering only those gets neither AUTH nor ETRN), and refused with
#    the wrong password; --tls encrypt without a trusted certificate;
#  - `postern etrn --user --tls none`: SCRAM-SHA-256 over plain TCP, and
#    the caller-routed domain's mail arrives at the caller's 127.0.0.1.
. "$POSTERN_TOP/tests/integ/lib.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"

# The provider's certificate names it by name and by address: `postern
# etrn` checks the HOST it was given, here 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/mx.key" \
	-out "$T/mx.crt" -days 2 -subj "/CN=mx.test.example" \
	-addext "subjectAltName=DNS:mx.test.example,IP:127.0.0.1" \
	>/dev/null 2>&1
chmod 644 "$T/mx.key" "$T/mx.crt"
pw='site one 530'
printf '%s\n' "$pw" >"$T/pw"
printf 'wrong\n' >"$T/badpw"
printf '%s\n' "$pw" | "$P" passwd site1 site.example calsite.example \
	>"$T/users"
chmod 644 "$T/users"

# The site's listener on 127.0.0.3.
SITE_PORT=$(free_port)
mkdir -p "$T/site"
"$PY" "$SRV" "$SITE_PORT" "$T/site.log" --addr 127.0.0.3 \
	--dump "$T/site" >"$T/site.out" 2>&1 &
reap $!
wait_listen "$SITE_PORT" 127.0.0.3 || notok site_start "$(cat "$T/site.out")"

DOMS="site.example site2.example site3.example site4.example site5.example
    site6.example empty.example"
for d in $DOMS; do
	echo "$d [127.0.0.3]:$SITE_PORT"
done >"$T/routes"
CAL_PORT=$(free_port)	# site1's caller listener on 127.0.0.1
echo "calsite.example caller:$CAL_PORT" >>"$T/routes"
mkdir -p "$T/caller"
"$PY" "$SRV" "$CAL_PORT" "$T/caller.log" --dump "$T/caller" \
	>"$T/caller.out" 2>&1 &
reap $!
wait_listen "$CAL_PORT" 127.0.0.1 || notok caller_start "$(cat "$T/caller.out")"
chmod 644 "$T/routes"
start_posternd "hold_domains=$(echo $DOMS calsite.example | tr ' ' ',')" \
	"routes_file=$T/routes" "users_file=$T/users" \
	"tls_cert_file=$T/mx.crt" "tls_key_file=$T/mx.key" \
	etrn_queues=q5:site5.example min_backoff=1h max_backoff=2h || exit 1

# inject DOMAIN N - N messages over SMTP, to u1@DOMAIN .. uN@DOMAIN, each
# with what a careless relay would change: dot-led lines, 8-bit UTF-8,
# a long line, trailing spaces, a line with a lone dot inside.
inject() {
	"$PY" - "$SMTP_PORT" "$1" "$2" <<'EOPY' >"$T/inject.out" 2>&1
import smtplib, sys
port, dom, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("client.test.example")
for i in range(1, n + 1):
    body = ("From: <sender@client.example>\r\nTo: <u%d@%s>\r\n"
            "Subject: etrn %d \u00e9t\u00e9\r\n\r\n"
            ".leading dot\r\n..two dots\r\n.\r\nline with trailing  \r\n"
            "caf\u00e9 \u2603 %d\r\n%s\r\n\r\nend\r\n"
            % (i, dom, i, i, "x" * 900)).encode()
    s.sendmail("sender@client.example", ["u%d@%s" % (i, dom)], body,
               mail_options=["BODY=8BITMIME"])
s.quit()
EOPY
}
# arrived ADDR - how many messages the site has for ADDR.
arrived() {
	grep -l -x -F "to <$1>" "$T"/site/*.env 2>/dev/null | wc -l | tr -d ' '
}
# all_arrived DOMAIN N - each of u1..uN@DOMAIN at least once.
all_arrived() {
	_i=1
	while [ "$_i" -le "$2" ]; do
		[ "$(arrived "u$_i@$1")" -ge 1 ] || return 1
		_i=$((_i + 1))
	done
}
# live DOMAIN - recipients of DOMAIN still in the queue, not delivered.
live() {
	"$P" queue --json --domain "$1" | "$PY" -c '
import json, sys
n = 0
for l in sys.stdin:
    if l.strip():
        n += sum(1 for r in json.loads(l)["recipients"]
                 if r["state"] not in ("delivered", "failed"))
print(n)'
}
# save_raw DOMAIN - `postern show --raw` of each message of DOMAIN into
# $T/raw/ADDR (one recipient a message).
save_raw() {
	mkdir -p "$T/raw"
	"$P" queue --json --domain "$1" | "$PY" -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        m = json.loads(l)
        print(m["id"], m["recipients"][0]["address"])' |
	while read -r id addr; do
		"$P" show --raw "$id" >"$T/raw/$addr"
	done
}
# same_bytes DOMAIN N - every message of u1..uN@DOMAIN arrived once and
# is byte for byte what the queue held.
same_bytes() {
	_i=1
	_bad=""
	while [ "$_i" -le "$2" ]; do
		a="u$_i@$1"
		f=$(grep -l -x -F "to <$a>" "$T"/site/*.env 2>/dev/null)
		if [ "$(echo "$f" | grep -c .)" -ne 1 ]; then
			_bad="$_bad $a:$(echo "$f" | grep -c .)x"
		elif ! cmp -s "${f%.env}.eml" "$T/raw/$a"; then
			_bad="$_bad $a:differs"
		fi
		_i=$((_i + 1))
	done
	[ -z "$_bad" ] && return 0
	echo "$_bad"
	return 1
}

# ------------------------------------------------------------------
# (a) fetchmail, protocol ETRN.
N=5
inject site.example "$N"
expect_eq inject_site "$(live site.example)" "$N"
save_raw site.example
expect_eq raw_saved "$(ls "$T/raw" | wc -l | tr -d ' ')" "$N"
# Held for the site: nothing has gone there before it asks.
expect_eq nothing_before_etrn "$(ls "$T/site" | wc -l | tr -d ' ')" 0

printf 'poll 127.0.0.1 service %s protocol ETRN fetchdomains site.example\n' \
	"$SMTP_PORT" >"$T/fetchmailrc"
chmod 600 "$T/fetchmailrc"
HOME=$T timeout 60 fetchmail -f "$T/fetchmailrc" --nosyslog -v \
	--pidfile "$T/fetchmail.pid" >"$T/fetchmail.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then ok fetchmail_etrn_exit0; else
	notok fetchmail_etrn_exit0 "exit $rc: $(tail -c 600 "$T/fetchmail.out")"; fi
expect_grep fetchmail_sent_etrn 'ETRN> ETRN site.example' "$T/fetchmail.out"
if poll_for 20 all_arrived site.example "$N"; then ok fetchmail_flush_arrived
else notok fetchmail_flush_arrived "$(ls "$T/site"); $(tail -n 20 "$T/posternd.log")"; fi
# Recorded as delivered: nothing is left to send a second time.
poll_for 10 eval '[ "$(live site.example)" -eq 0 ]'
expect_eq fetchmail_queue_empty "$(live site.example)" 0
if out=$(same_bytes site.example "$N"); then ok fetchmail_byte_for_byte_once
else notok fetchmail_byte_for_byte_once "$out"; fi
# The message as the client sent it is the tail of what arrived (the
# provider adds only its Received: field on top).
f=$(grep -l -x -F "to <u1@site.example>" "$T"/site/*.env | head -n 1)
if grep -q -F "$(printf '..two dots\r')" "${f%.env}.eml" &&
    grep -q -x -F "$(printf '.\r')" "${f%.env}.eml"; then ok dots_kept
else notok dots_kept "$(head -c 600 "${f%.env}.eml")"; fi

# ------------------------------------------------------------------
# (b) postern etrn against posternd.
inject site2.example 3
expect_rc etrn_waiting_exit0 0 "$P" etrn "127.0.0.1:$SMTP_PORT" site2.example
cp "$T/out" "$T/etrn2.out"
expect_grep etrn_waiting_reply '^site2.example: 25[0-3] ' "$T/etrn2.out"
if poll_for 20 all_arrived site2.example 3; then ok etrn_waiting_arrived
else notok etrn_waiting_arrived "$(cat "$T/etrn2.out"); $(tail -n 20 "$T/posternd.log")"; fi

expect_rc etrn_empty_exit0 0 "$P" etrn "127.0.0.1:$SMTP_PORT" empty.example
expect_grep etrn_empty_251 '^empty.example: 251 ' "$T/out"

expect_rc etrn_unknown_exit1 1 "$P" etrn "127.0.0.1:$SMTP_PORT" unknown.example
expect_grep etrn_unknown_459 '^unknown.example: 459 ' "$T/out"

# One bad reply among good ones: every reply printed, exit 1.
inject site3.example 1
expect_rc etrn_mixed_exit1 1 "$P" etrn "127.0.0.1:$SMTP_PORT" site3.example \
	nowhere.example
if grep -q '^site3.example: 25[0-3] ' "$T/out" &&
    grep -q '^nowhere.example: 459 ' "$T/out"; then ok etrn_mixed_replies
else notok etrn_mixed_replies "$(cat "$T/out")"; fi

# The other two forms: #queue and @domain.
inject site5.example 2
inject site6.example 2
expect_rc etrn_queue_at_exit0 0 "$P" etrn "127.0.0.1:$SMTP_PORT" '#q5' @site6.example
if grep -q '^#q5: 25[0-3] ' "$T/out" && grep -q '^@site6.example: 25[0-3] ' "$T/out"
then ok etrn_queue_at_replies; else notok etrn_queue_at_replies "$(cat "$T/out")"; fi
if poll_for 20 all_arrived site5.example 2 && poll_for 20 all_arrived site6.example 2
then ok etrn_queue_at_arrived; else notok etrn_queue_at_arrived "$(ls "$T/site")"; fi

# Bad arguments: exit 2, and not even a connection (a counting server).
CNT_PORT=$(free_port)
"$PY" "$SRV" "$CNT_PORT" "$T/cnt.log" --addr 127.0.0.4 >"$T/cnt.out" 2>&1 &
reap $!
wait_listen "$CNT_PORT" 127.0.0.4 || notok cnt_start "$(cat "$T/cnt.out")"
cr=$(printf 'a.example\r\nQUIT')
k=0
for bad in "a b.example" "$cr" "#" "@" "#a b" "a..example" \
    "$(printf 'x\033.example')" "-x.example"; do
	k=$((k + 1))
	expect_rc "etrn_badarg_exit2_$k" 2 \
		"$P" etrn "127.0.0.4:$CNT_PORT" ok.example "$bad"
done
expect_rc etrn_badhost_exit2 2 "$P" etrn "127.0.0.4:99999" ok.example
expect_rc etrn_badhost2_exit2 2 "$P" etrn "[127.0.0.4" ok.example
expect_rc etrn_noarg_exit2 2 "$P" etrn "127.0.0.4:$CNT_PORT"
expect_rc etrn_badopt_exit2 2 "$P" etrn --tls maybe "127.0.0.4:$CNT_PORT" ok.example
expect_rc etrn_user_alone_exit2 2 "$P" etrn --user u "127.0.0.4:$CNT_PORT" ok.example
# Nothing at all reached the server.
n=$(grep -c ACCEPT "$T/cnt.log" 2>/dev/null)
expect_eq etrn_badarg_no_connection "${n:-0}" 0

# A server without ETRN in its EHLO reply is not asked; --force asks.
expect_rc etrn_not_offered_exit1 1 "$P" etrn "127.0.0.4:$CNT_PORT" ok.example
expect_grep etrn_not_offered_said 'does not offer ETRN' "$T/out"
expect_rc etrn_force_502_exit1 1 "$P" etrn --force "127.0.0.4:$CNT_PORT" ok.example
expect_grep etrn_force_502_reply '^ok.example: 502 ' "$T/out"

# Nobody listening.
DEAD=$(free_port)
expect_rc etrn_refused_exit1 1 "$P" etrn "127.0.0.4:$DEAD" ok.example
expect_grep etrn_refused_said 'Connection refused' "$T/out"
# IPv6 as [addr]:port.
expect_rc etrn_v6_refused_exit1 1 "$P" etrn "[::1]:$DEAD" ok.example
expect_grep etrn_v6_tried "\[::1\]:$DEAD" "$T/out"

# A hostile server: its reply reaches the terminal escaped.
HPORT=$(free_port)
"$PY" - "$HPORT" >"$T/hostile.out" 2>&1 <<'EOPY' &
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.5", int(sys.argv[1])))
srv.listen(4)
while True:
    c, _ = srv.accept()
    f = c.makefile("rb")
    c.sendall(b"220 hostile\r\n")
    for l in f:
        v = l[:4].upper()
        if v == b"EHLO":
            c.sendall(b"250-hostile\r\n250 ETRN\r\n")
        elif v == b"ETRN":
            c.sendall(b"250-ok \xff\xfe\x1b[2J\x07\r\n250 \\ \xe2\x80\xae end\r\n")
        elif v == b"QUIT":
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"502 no\r\n")
    c.close()
EOPY
reap $!
wait_listen "$HPORT" 127.0.0.5 || notok hostile_start "$(cat "$T/hostile.out")"
expect_rc etrn_hostile_exit0 0 "$P" etrn "127.0.0.5:$HPORT" ok.example
if ! LC_ALL=C grep -q "$(printf '[\033\007\377\376]')" "$T/out" &&
    ! grep -q "$(printf '\342\200\256')" "$T/out" &&
    grep -q -F '\xff\xfe' "$T/out" && grep -q -F '\\' "$T/out"; then
	ok etrn_hostile_escaped
else notok etrn_hostile_escaped "$(od -c "$T/out" | head -n 8)"; fi

# AUTH PLAIN/LOGIN: only inside TLS verified for the HOST given. A
# server on plain TCP offering only those gets no AUTH (and no ETRN).
PL_PORT=$(free_port)
cat >"$T/plainsrv.py" <<'EOPY'
import socketserver, sys
log = open(sys.argv[2], "a")
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 plain.test ESMTP\r\n")
        for line in self.rfile:
            log.write(line.decode("latin-1")); log.flush()
            c = line[:4].upper()
            if c == b"EHLO":
                self.wfile.write(b"250-plain.test\r\n250-ETRN\r\n"
                                 b"250 AUTH PLAIN LOGIN\r\n")
            elif c == b"QUIT":
                self.wfile.write(b"221 bye\r\n"); return
            else:
                self.wfile.write(b"502 no\r\n")
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOPY
"$PY" "$T/plainsrv.py" "$PL_PORT" "$T/plainsrv.log" >/dev/null 2>&1 &
reap $!
wait_listen "$PL_PORT" 127.0.0.1 || notok plainsrv_start "did not start"
inject site4.example 2
expect_rc etrn_auth_unverified_exit1 1 "$P" etrn --user site1 \
	--password-file "$T/pw" "127.0.0.1:$PL_PORT" site4.example
expect_grep etrn_auth_unverified_said 'AUTH not sent' "$T/out"
expect_eq etrn_auth_plain_not_sent \
	"$(grep -c -i -e '^AUTH' -e '^ETRN' "$T/plainsrv.log")" 0
expect_rc etrn_auth_wrong_exit1 1 "$P" etrn --user site1 \
	--password-file "$T/badpw" --ca-file "$T/mx.crt" \
	"127.0.0.1:$SMTP_PORT" site4.example
expect_grep etrn_auth_wrong_said 'authentication failed' "$T/out"
expect_eq etrn_auth_refused_nothing_sent "$(arrived u1@site4.example)" 0
expect_rc etrn_tls_encrypt_untrusted_exit1 1 "$P" etrn --tls encrypt \
	"127.0.0.1:$SMTP_PORT" site4.example
expect_rc etrn_auth_exit0 0 "$P" etrn -v --user site1 --password-file "$T/pw" \
	--ca-file "$T/mx.crt" "127.0.0.1:$SMTP_PORT" site4.example
cp "$T/out" "$T/etrn4.out"
expect_grep etrn_auth_over_tls 'connected to .*(TLSv1' "$T/etrn4.out"
if poll_for 20 all_arrived site4.example 2; then ok etrn_auth_arrived
else notok etrn_auth_arrived "$(cat "$T/etrn4.out")"; fi

# SCRAM-SHA-256 and CRAM-MD5 send no password: `postern etrn --user` uses
# them over plain TCP too, and its caller-routed ETRN delivers to the
# address it came from (127.0.0.1) at the route's port.
inject calsite.example 2
expect_rc etrn_challenge_plain_tcp_exit0 0 "$P" etrn -v --tls none \
	--user site1 --password-file "$T/pw" "127.0.0.1:$SMTP_PORT" \
	calsite.example
cp "$T/out" "$T/etrncal.out"
expect_grep etrn_challenge_no_tls '(no TLS)' "$T/etrncal.out"
expect_grep etrn_challenge_253 'calsite.example: 253 ' "$T/etrncal.out"
if poll_for 20 eval '[ "$(grep -l -x -F -e "to <u1@calsite.example>" \
    -e "to <u2@calsite.example>" "$T"/caller/*.env 2>/dev/null |
    wc -l)" -eq 2 ]'; then ok etrn_challenge_caller_arrived
else notok etrn_challenge_caller_arrived "$(cat "$T/etrncal.out"; grep calsite "$T/posternd.log" | tail -n 3)"; fi

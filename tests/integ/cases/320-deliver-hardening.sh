# 320-deliver-hardening: the delivery side's part of issue 8 (items 11,
# 12 and 15), end to end with real peers on loopback.
#
# 11. Credentials go to the relayhost only over TLS with a certificate
#     verified (tls_ca_file, or the system's store) for the relayhost's
#     own name or IP, under the default smtp_tls = may too; else the mail
#     waits (4.7.5, "AUTH not sent") and the server never sees AUTH. The
#     servers are one Python script (several listeners, a transcript of
#     the commands each got): a self-signed certificate not trusted, the
#     system store, a trusted one (sent, with AUTH), a trusted one for
#     another IP, no STARTTLS at all; and a relayhost given by name without
#     brackets (an MX lookup, dnsmasq) whose MX presents a trusted
#     certificate for the MX's name only - the spoofed-MX case - against
#     one for the relayhost's name. smtp_tls = dane and tls=dane are
#     taken (DANE itself: 900-dane.sh); a misspelt policy is refused by
#     `postern check`/posternd with a clear message.
# 12. A held domain's mail, released by `postern flush --domain`, goes by
#     its routes_file entry ([127.0.0.9]:PORT, an smtp-sink), with no DNS
#     and a relayhost set elsewhere (a second sink that gets only the mail
#     meant for it); a relay domain does not go to the relayhost either.
# 15. No delay= or delays= field is ever negative: 40 runs of three
#     messages each over one TLS connection (the first opens it, the
#     other two reuse it) to a posternd, every line checked.
. "$POSTERN_TOP/tests/integ/lib.sh"

py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"

# sink NAME IP PORT - smtp-sink on IP:PORT dumping each message into
# $T/NAME/.
sink() {
	mkdir -p "$T/$1"
	chmod 777 "$T/$1"
	smtp-sink -u postern -c -d "$T/$1/%H%M%S." "$2:$3" 10 \
		>>"$T/$1.out" 2>&1 &
	reap $!
	wait_listen "$3" "$2" ||
		notok "sink_$1" "smtp-sink on $2:$3 did not start"
}
# got NAME ADDR - how many messages sink NAME has for recipient ADDR.
got() {
	grep -l -x -F "X-Rcpt-Args: <$2>" "$T/$1"/* 2>/dev/null | wc -l | tr -d ' '
}
has() { [ "$(got "$1" "$2")" -ge 1 ]; }
inlog() { grep -q -F -- "$2" "$T/$1"; }

# sconf NAME KEY=VALUE... - a sender config $T/NAME.conf, queue $T/NAME.q.
sconf() {
	name=$1
	shift
	{
		echo "queue_dir = $T/$name.q"
		echo "myhostname = me.test"
		echo "dns_servers = 127.0.0.1:$DNS_PORT"
		echo "min_backoff = 1h"
		echo "max_backoff = 2h"
		echo "workers = 1"
		echo "smtp_connect_timeout = 5s"
		echo "smtp_command_timeout = 20s"
		echo "odmr_listen ="
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
	} >"$T/$name.conf"
	chmod 644 "$T/$name.conf"
}
# enq CONF RCPT - queue one small message.
enq() {
	printf 'Subject: hardening\n\nhello %s\n' "$2" |
		"$P" -c "$T/$1.conf" enqueue -f sender@src.test "$2" >/dev/null
}
# prun CONF OUT - `postern run` (60 s at most): log in $T/OUT.log.
prun() {
	timeout 60 "$P" -c "$T/$1.conf" run >"$T/$2.out" 2>"$T/$2.log"
	cat "$T/$2.log" >>"$T/all-runs.log"
}
# dline OUT ADDR - the delivery log line for ADDR (the last one).
dline() { grep -F "to=<$2>," "$T/$1" | tail -n 1; }
# expect_line NAME LOG ADDR REGEX - that line matches an extended regex.
expect_line() {
	l=$(dline "$2" "$3")
	if printf '%s\n' "$l" | grep -q -E -- "$4"; then ok "$1"; else
		notok "$1" "line '$l' does not match '$4' (log: $(head -c 600 "$T/$2"))"; fi
}
# qstate CONF ADDR - the recipient's state, or "absent".
qstate() {
	"$P" -c "$T/$1.conf" queue --json | "$PY" -c "
import json, sys
s = 'absent'
for l in sys.stdin:
    if l.strip():
        for r in json.loads(l)['recipients']:
            if r['address'] == sys.argv[1]:
                s = r['state']
print(s)" "$2"
}
# cert NAME SAN - a self-signed certificate $T/NAME.crt (key $T/NAME.key)
# whose subjectAltName is SAN ("IP:127.0.0.1", "DNS:x.test").
cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -days 2 -subj "/CN=$1" \
		-addext "subjectAltName=$2" >/dev/null 2>&1
	chmod 644 "$T/$1.key" "$T/$1.crt"
}

DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/test/ --log-queries --log-facility=- \
	--mx-host=mxrelay.test,mx.mxrelay.test,10 \
	--host-record=mx.mxrelay.test,127.0.0.1 \
	>"$T/dnsmasq.log" 2>&1 &
reap $!
if ! wait_dns "$DNS_PORT"; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

# ------------------------------------------------------------------
# 11. AUTH to the relayhost only over verified TLS.
cat >"$T/authsrv.py" <<'EOF'
# authsrv.py PORT,MODE,CERT,KEY,LOG... - SMTP servers that log each
# command they get (AUTH with its mechanism only) into LOG.
#   tls    STARTTLS with CERT/KEY; AUTH PLAIN LOGIN offered before and
#          after it (a man in the middle would offer it in the clear)
#   notls  no STARTTLS; AUTH PLAIN LOGIN offered
# Any credentials are taken; mail is taken and thrown away.
import socket, ssl, sys, threading

def session(c, mode, cert, key, log):
    f = c.makefile("rb")
    tls = False
    def send(*lines):
        c.sendall(b"".join(l.encode() + b"\r\n" for l in lines))
    def line():
        l = f.readline(1000)
        if not l:
            raise EOFError
        return l.rstrip(b"\r\n").decode("utf-8", "replace")
    log.write("CONNECT\n")
    send("220 authsrv ESMTP")
    while True:
        cmd = line()
        w = cmd.split(" ")
        verb = w[0].upper()
        log.write("AUTH %s\n" % w[1].upper() if verb == "AUTH" and len(w) > 1
                  else verb + "\n")
        if verb == "EHLO":
            ext = ["AUTH PLAIN LOGIN", "8BITMIME"]
            if mode == "tls" and not tls:
                ext = ["STARTTLS"] + ext
            send(*(["250-authsrv"] + ["250-" + e for e in ext[:-1]] +
                   ["250 " + ext[-1]]))
        elif verb == "STARTTLS" and mode == "tls" and not tls:
            send("220 2.0.0 go ahead")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            c = ctx.wrap_socket(c, server_side=True)
            f = c.makefile("rb")
            tls = True
            log.write("TLS\n")
        elif verb == "AUTH":
            mech = w[1].upper() if len(w) > 1 else ""
            if mech == "PLAIN" and len(w) < 3:
                send("334 ")
                line()
            elif mech == "LOGIN":
                send("334 VXNlcm5hbWU6")
                line()
                send("334 UGFzc3dvcmQ6")
                line()
            send("235 2.7.0 Authentication successful")
        elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            send("250 2.0.0 ok")
        elif verb == "DATA":
            send("354 go ahead")
            while line() != ".":
                pass
            log.write("DATA-END\n")
            send("250 2.0.0 Ok: queued as AUTHSRV")
        elif verb == "QUIT":
            send("221 2.0.0 bye")
            return
        else:
            send("502 5.5.1 what")

def run(c, *a):
    try:
        session(c, *a)
    except (EOFError, OSError, ssl.SSLError):
        pass
    try:
        c.close()
    except OSError:
        pass

def serve(port, mode, cert, key, logf):
    log = open(logf, "a", buffering=1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(16)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=run, args=(c, mode, cert, key, log),
                         daemon=True).start()

ts = [threading.Thread(target=serve, args=a.split(","), daemon=True)
      for a in sys.argv[1:]]
for t in ts:
    t.start()
for t in ts:
    t.join()
EOF
cert ip "IP:127.0.0.1"			# the relayhost [127.0.0.1]
cert other "IP:127.0.0.1"		# a CA that is not the server's
cert wrongip "IP:127.0.0.2,DNS:wrong.test"	# trusted, another IP
cert mxname "DNS:mx.mxrelay.test"	# trusted, the MX's name only
cert rhname "DNS:mxrelay.test"		# trusted, the relayhost's name
A_IP=$(free_port)
A_WRONG=$(free_port)
A_NOTLS=$(free_port)
A_MX=$(free_port)
A_NAME=$(free_port)
for n in ip wrong notls mx name; do : >"$T/tr-$n.log"; done
"$PY" "$T/authsrv.py" \
	"$A_IP,tls,$T/ip.crt,$T/ip.key,$T/tr-ip.log" \
	"$A_WRONG,tls,$T/wrongip.crt,$T/wrongip.key,$T/tr-wrong.log" \
	"$A_NOTLS,notls,,,$T/tr-notls.log" \
	"$A_MX,tls,$T/mxname.crt,$T/mxname.key,$T/tr-mx.log" \
	"$A_NAME,tls,$T/rhname.crt,$T/rhname.key,$T/tr-name.log" \
	>"$T/authsrv.err" 2>&1 &
reap $!
for p in "$A_IP" "$A_WRONG" "$A_NOTLS" "$A_MX" "$A_NAME"; do
	wait_listen "$p" 127.0.0.1 || notok authsrv_start "port $p: $(head -c 300 "$T/authsrv.err")"
done
printf 'site1:the password\n' >"$T/rh.auth"
chmod 644 "$T/rh.auth"
# tr NAME - the commands server NAME got, on one line.
tr_of() { tr '\n' ' ' <"$T/tr-$1.log" | sed 's/ $//'; }

# auth_case NAME SERVER RELAYHOST [KEY=VALUE...] - one message through
# that relayhost with credentials, the server's transcript reset first.
auth_case() {
	n=$1
	srv=$2
	rh=$3
	shift 3
	: >"$T/tr-$srv.log"
	sconf "$n" "relayhost=$rh" "relayhost_auth_file=$T/rh.auth" "$@"
	enq "$n" "$n@far.test"
	prun "$n" "$n"
}

# A self-signed certificate that tls_ca_file does not trust, under the
# default smtp_tls = may: TLS, then nothing - no AUTH, no MAIL.
auth_case untr ip "[127.0.0.1]:$A_IP" "tls_ca_file=$T/other.crt"
expect_line auth_untrusted_deferred untr.log untr@far.test \
	"relay=none, .*dsn=4\.7\.5, status=deferred \(certificate of host 127\.0\.0\.1\[127\.0\.0\.1\]:$A_IP not verified for 127\.0\.0\.1: self-signed certificate; AUTH not sent\)"
expect_eq auth_untrusted_no_auth "$(tr_of ip)" "CONNECT EHLO STARTTLS TLS EHLO QUIT"
expect_eq auth_untrusted_state "$(qstate untr untr@far.test)" deferred
# The same without tls_ca_file: the system's store does not know it.
auth_case sys ip "[127.0.0.1]:$A_IP"
expect_line auth_system_store_deferred sys.log sys@far.test \
	"dsn=4\.7\.5, status=deferred \(certificate of host .* not verified for 127\.0\.0\.1: self-signed certificate; AUTH not sent\)"
expect_eq auth_system_store_no_auth "$(tr_of ip)" "CONNECT EHLO STARTTLS TLS EHLO QUIT"
# Trusted, for the relayhost's IP: sent, with AUTH inside TLS.
auth_case good ip "[127.0.0.1]:$A_IP" "tls_ca_file=$T/ip.crt"
expect_line auth_verified_sent good.log good@far.test \
	"relay=127\.0\.0\.1\[127\.0\.0\.1\]:$A_IP, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as AUTHSRV\)"
expect_eq auth_verified_auth "$(tr_of ip)" "CONNECT EHLO STARTTLS TLS EHLO AUTH PLAIN MAIL RCPT DATA DATA-END QUIT"
# Trusted, but for another IP: not sent.
auth_case wrong wrong "[127.0.0.1]:$A_WRONG" "tls_ca_file=$T/wrongip.crt"
expect_line auth_wrong_ip_deferred wrong.log wrong@far.test \
	"dsn=4\.7\.5, status=deferred \(certificate of host 127\.0\.0\.1\[127\.0\.0\.1\]:$A_WRONG not verified for 127\.0\.0\.1: [Ii][Pp] address mismatch; AUTH not sent\)"
expect_eq auth_wrong_ip_no_auth "$(tr_of wrong)" "CONNECT EHLO STARTTLS TLS EHLO QUIT"
# No STARTTLS (AUTH offered in the clear): not sent.
auth_case notls notls "[127.0.0.1]:$A_NOTLS" "tls_ca_file=$T/ip.crt"
expect_line auth_no_starttls_deferred notls.log notls@far.test \
	"dsn=4\.7\.5, status=deferred \(no TLS with host 127\.0\.0\.1\[127\.0\.0\.1\]:$A_NOTLS \(STARTTLS is not offered\); AUTH not sent\)"
expect_eq auth_no_starttls_no_auth "$(tr_of notls)" "CONNECT EHLO QUIT"
# smtp_tls = none with credentials: not sent either.
auth_case none notls "[127.0.0.1]:$A_NOTLS" smtp_tls=none
expect_line auth_tls_none_deferred none.log none@far.test \
	"dsn=4\.7\.5, status=deferred \(no TLS with host .* \(TLS is off for this hop\); AUTH not sent\)"
expect_eq auth_tls_none_no_auth "$(tr_of notls)" "CONNECT EHLO QUIT"
# relayhost by name, no brackets: its MX (mx.mxrelay.test) presents a
# trusted certificate for the MX's own name. The relayhost's name is what
# counts (DNS can be spoofed): not sent. A certificate for the relayhost's
# name: sent.
auth_case mxn mx "mxrelay.test:$A_MX" "tls_ca_file=$T/mxname.crt"
expect_line auth_mx_name_deferred mxn.log mxn@far.test \
	"dsn=4\.7\.5, status=deferred \(certificate of host mx\.mxrelay\.test\[127\.0\.0\.1\]:$A_MX not verified for mxrelay\.test: [Hh]ostname mismatch; AUTH not sent\)"
expect_eq auth_mx_name_no_auth "$(tr_of mx)" "CONNECT EHLO STARTTLS TLS EHLO QUIT"
auth_case rhn name "mxrelay.test:$A_NAME" "tls_ca_file=$T/rhname.crt"
expect_line auth_relayhost_name_sent rhn.log rhn@far.test \
	"relay=mx\.mxrelay\.test\[127\.0\.0\.1\]:$A_NAME, .*status=sent"
expect_eq auth_relayhost_name_auth "$(tr_of name)" "CONNECT EHLO STARTTLS TLS EHLO AUTH PLAIN MAIL RCPT DATA DATA-END QUIT"
# Without credentials nothing changes: may over an untrusted certificate
# delivers (opportunistic TLS), and no AUTH is tried.
: >"$T/tr-ip.log"
sconf noauth "relayhost=[127.0.0.1]:$A_IP"
enq noauth noauth@far.test
prun noauth noauth
expect_line noauth_may_sent noauth.log noauth@far.test "status=sent"
expect_eq noauth_may_no_auth "$(tr_of ip)" "CONNECT EHLO STARTTLS TLS EHLO MAIL RCPT DATA DATA-END QUIT"

# dane is taken (900-dane.sh tests what it does); a policy that does not
# exist is refused by `postern check` and posternd, in the config and in
# routes_file.
sconf dane smtp_tls=dane
"$P" -c "$T/dane.conf" check >"$T/dane.check" 2>&1
expect_eq dane_conf_check_ok "$?" 0
sconf danish smtp_tls=danish
"$P" -c "$T/danish.conf" check >"$T/danish.check" 2>&1
expect_eq danish_conf_check_fails "$?" 1
expect_grep danish_conf_message 'smtp_tls: bad value "danish" (want none, may, encrypt or dane)' "$T/danish.check"
timeout 20 "$POSTERN_BIN/posternd" -c "$T/danish.conf" -f >"$T/danish.pd" 2>&1
expect_eq danish_conf_posternd_refuses "$?" 1
expect_grep danish_conf_posternd_message 'smtp_tls: bad value "danish"' "$T/danish.pd"
printf 'x.test [127.0.0.1]:25 tls=danish\n' >"$T/danish.routes"
chmod 644 "$T/danish.routes"
sconf danishr "routes_file=$T/danish.routes"
enq danishr r@x.test
timeout 20 "$P" -c "$T/danishr.conf" run >"$T/danishr.out" 2>&1
expect_eq danish_route_run_refuses "$?" 1
expect_grep danish_route_message 'danish.routes:1: bad option "tls=danish" (want tls=none|may|encrypt|dane)' "$T/danishr.out"

# ------------------------------------------------------------------
# 12. A held domain's routes_file entry, and no relayhost for relay or
# held domains. No DNS at all: dns_servers is a port where nothing
# answers. The relayhost is another sink, which must get only far.test.
P9=$(free_port)
P10=$(free_port)
DEAD=$(free_port)
sink s9 127.0.0.9 "$P9"
sink s10 127.0.0.10 "$P10"
printf 'site.test [127.0.0.9]:%s\n' "$P9" >"$T/routes12"
chmod 644 "$T/routes12"
start_posternd hold_domains=site.test relay_domains=relayd.test \
	"routes_file=$T/routes12" "relayhost=[127.0.0.10]:$P10" \
	"dns_servers=127.0.0.1:$DEAD" min_backoff=1h max_backoff=2h \
	workers=2 || exit 1
for a in h1@site.test r1@relayd.test f1@far.test; do
	printf 'Subject: held\n\nhello\n' | "$P" enqueue -f s@src.test "$a" >/dev/null
done
"$P" flush >/dev/null 2>&1	# wake the daemon: the queued two go now
poll_for 15 has s10 f1@far.test
expect_eq relayhost_gets_others "$(got s10 f1@far.test)" 1
poll_for 15 inlog posternd.log "to=<r1@relayd.test>,"
expect_grep relay_domain_not_relayhost "to=<r1@relayd\.test>, relay=none, .*status=deferred" "$T/posternd.log"
expect_eq relay_domain_not_at_relayhost "$(got s10 r1@relayd.test)" 0
# qstate_pd ADDR - the recipient's state in posternd's queue.
qstate_pd() {
	"$P" queue --json | "$PY" -c "
import json, sys
s = 'absent'
for l in sys.stdin:
    if l.strip():
        for r in json.loads(l)['recipients']:
            if r['address'] == sys.argv[1]:
                s = r['state']
print(s)" "$1"
}
expect_eq held_stays_held "$(qstate_pd h1@site.test)" held
expect_eq held_not_sent "$(got s9 h1@site.test)$(got s10 h1@site.test)" 00
"$P" flush --dry-run --domain site.test >"$T/dry12" 2>&1
expect_grep held_dry_run_route "<h1@site\.test> held via host:\[127\.0\.0\.9\]:$P9 -> 127\.0\.0\.9\[127\.0\.0\.9\]\$" "$T/dry12"
"$P" flush --domain site.test >"$T/flush12" 2>&1
expect_grep held_flush '^postern flush: 1 recipient made due$' "$T/flush12"
poll_for 15 has s9 h1@site.test
expect_eq held_flush_to_route "$(got s9 h1@site.test)" 1
expect_eq held_flush_not_relayhost "$(got s10 h1@site.test)" 0
poll_for 10 inlog posternd.log "to=<h1@site.test>,"
expect_grep held_flush_line "to=<h1@site\.test>, relay=127\.0\.0\.9\[127\.0\.0\.9\]:$P9, .*status=sent" "$T/posternd.log"
stop_posternd
expect_eq held_posternd_stops "$?" 0

# ------------------------------------------------------------------
# 15. delays= over reused connections: a posternd with STARTTLS takes
# 120 messages in 40 runs of three (one connection a run: the first
# message opens it, the next two reuse it).
make_cert r r.test
RP=$(free_port)
echo '.test hold' >"$T/r.routes"
chmod 644 "$T/r.routes"
cat >"$T/r.conf" <<EOF
queue_dir = $T/r.q
myhostname = r.test
listen = 127.0.0.1:$RP
odmr_listen =
relay_domains = reuse.test
routes_file = $T/r.routes
tls_cert_file = $T/r.crt
tls_key_file = $T/r.key
workers = 1
EOF
chmod 644 "$T/r.conf"
"$POSTERN_BIN/posternd" -c "$T/r.conf" -f >>"$T/r.log" 2>&1 &
reap $!
wait_port "$RP" || notok r_start "$(tail -c 600 "$T/r.log")"
printf 'reuse.test [127.0.0.1]:%s\n' "$RP" >"$T/reuse.routes"
chmod 644 "$T/reuse.routes"
sconf reuse "routes_file=$T/reuse.routes"
: >"$T/reuse.all"
i=0
while [ $i -lt 40 ]; do
	enq reuse "a$i@reuse.test"
	enq reuse "b$i@reuse.test"
	enq reuse "c$i@reuse.test"
	prun reuse reuse1
	cat "$T/reuse1.log" >>"$T/reuse.all"
	i=$((i + 1))
done
expect_eq reuse_all_sent "$(grep -c 'status=sent' "$T/reuse.all")" 120
expect_eq reuse_lines_have_delays "$(grep -c ' delay=[0-9.]*, delays=[0-9.]*/[0-9.]*/[0-9.]*/[0-9.]*, ' "$T/reuse.all")" 120
# The second and third of each run had no set-up of their own (reused).
reused=$(grep -E 'to=<[bc][0-9]+@reuse\.test>' "$T/reuse.all" |
	grep -c ' delays=[0-9.]*/0\.000/0\.000/')
expect_eq reuse_reused "$reused" 80
neg=$(grep -o ' delays\{0,1\}=[^ ,]*' "$T/reuse.all" | grep -e '-' | head -n 3 | tr '\n' ' ')
expect_eq reuse_no_negative_delay "$neg" ""
expect_eq no_sanitizer_report "$(cat "$T"/*.log "$T"/*.pd 2>/dev/null | grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer')" 0

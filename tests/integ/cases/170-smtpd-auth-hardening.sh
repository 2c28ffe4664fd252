# 170-smtpd-auth-hardening: what issue 8 asks of AUTH, STARTTLS and RCPT.
#  - ORCPT's addr-type must be an atom (RFC 3461 §4.2): an escape sequence
#    or a non-atext byte there is 501 5.5.4 and nothing is stored.
#  - STARTTLS forgets EHLO and AUTH (RFC 3207 §4.2): a client that
#    authenticated in the clear is a stranger again after the handshake.
#  - Password guessing: each failed AUTH is answered after a delay that
#    does not stall other sessions, and an address that fails too often is
#    refused (421 4.7.0) on its next connections; other addresses are not.
#  - SIGHUP while a CRAM-MD5 or SCRAM-SHA-256 exchange is half done: the
#    users database the exchange started with stays alive until it ends.
# 127.0.0.9 is mynetworks, so every client here (127.0.0.2 .. .5) is "the
# Internet": relaying outside relay.example needs AUTH.
. "$POSTERN_TOP/tests/integ/lib.sh"

pw='guess me 170'
make_cert mx mx.test.example
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example >"$T/users"
chmod 644 "$T/users"
echo '.example hold' >"$T/routes"
chmod 644 "$T/routes"
start_posternd relay_domains=relay.example mynetworks=127.0.0.9/32 \
	"tls_cert_file=$T/mx.crt" "tls_key_file=$T/mx.key" \
	"users_file=$T/users" "routes_file=$T/routes" || exit 1

val() { sed -n "s/^$1=//p" "$2" | head -n 1; }

cat >"$T/smtpc.py" <<'EOF'
import base64, hashlib, hmac, os, socket, ssl
b64 = lambda b: base64.b64encode(b if isinstance(b, bytes) else
                                 b.encode()).decode()
class C:
    def __init__(self, port, src):
        self.s = socket.create_connection(("127.0.0.1", port), 20,
                                          source_address=(src, 0))
        self.f = self.s.makefile("rb")
        self.greeting = self.reply()
    def reply(self):
        """The reply's lines (str), or None at EOF before any line."""
        lines = []
        while True:
            try:
                l = self.f.readline()
            except OSError:
                l = b""
            if not l:
                return lines or None
            lines.append(l.rstrip(b"\r\n").decode("utf-8", "replace"))
            if len(lines[-1]) < 4 or lines[-1][3] != "-":
                return lines
    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())
    def cmd(self, line):
        """Send a command, return the last line of its reply."""
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        r = self.reply()
        return r[-1] if r else "EOF"
    def ehlo(self, name="client.test.example"):
        self.send("EHLO %s\r\n" % name)
        return self.reply() or []
    def starttls(self):
        r = self.cmd("STARTTLS")
        if r.startswith("220"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.s = ctx.wrap_socket(self.s)
            self.f = self.s.makefile("rb")
        return r
    def cram(self, user, pw, then=None):
        """AUTH CRAM-MD5; `then` runs between the challenge and the
        answer. Returns the final reply line."""
        r = self.cmd("AUTH CRAM-MD5")
        if not r.startswith("334 "):
            return r
        chal = base64.b64decode(r[4:])
        if then:
            then()
        d = hmac.new(pw.encode(), chal, hashlib.md5).hexdigest()
        return self.cmd(b64(user + " " + d))
    def scram(self, user, pw, then=None):
        """AUTH SCRAM-SHA-256 (RFC 5802); `then` runs between the
        server-first message and the client-final one."""
        H = lambda k, m: hmac.new(k, m, hashlib.sha256).digest()
        cnonce = b64(os.urandom(18))
        bare = "n=%s,r=%s" % (user, cnonce)
        r = self.cmd("AUTH SCRAM-SHA-256 " + b64("n,," + bare))
        if not r.startswith("334 "):
            return r
        sf = base64.b64decode(r[4:]).decode()
        f = dict(kv.split("=", 1) for kv in sf.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", pw.encode(),
                                     base64.b64decode(f["s"]), int(f["i"]))
        ckey = H(salted, b"Client Key")
        wo = "c=%s,r=%s" % (b64("n,,"), f["r"])
        am = ",".join((bare, sf, wo)).encode()
        proof = bytes(a ^ b for a, b in
                      zip(ckey, H(hashlib.sha256(ckey).digest(), am)))
        if then:
            then()
        r = self.cmd(b64(wo + ",p=" + b64(proof)))
        if not r.startswith("334 "):
            return r
        return self.cmd("")
EOF

# ------------------------------------------------------------------
# 5. ORCPT's addr-type is an atom (RFC 3461 §4.2, RFC 5321 atext).
cat >"$T/orcpt.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
c = C(int(sys.argv[1]), "127.0.0.4")
c.ehlo()
print("mail=" + c.cmd("MAIL FROM:<a@client.test.example>"))
print("esc=" + c.cmd(b"RCPT TO:<r1@relay.example> ORCPT=\x1b[31m;a@b"))
print("eight=" + c.cmd(b"RCPT TO:<r1@relay.example> ORCPT=rfc\xc3\xa9;a@b"))
print("paren=" + c.cmd("RCPT TO:<r1@relay.example> ORCPT=rfc(822);a@b"))
print("good=" + c.cmd("RCPT TO:<r2@relay.example> ORCPT=rfc822;a@b"))
print("data=" + c.cmd("DATA"))
print("dot=" + c.cmd("Subject: orcpt\r\n\r\nbody\r\n."))
print("quit=" + c.cmd("QUIT"))
EOF
"$PY" "$T/orcpt.py" "$SMTP_PORT" "$T" >"$T/orcpt.out" 2>&1
O="$T/orcpt.out"
expect_eq orcpt_mail "$(val mail "$O")" "250 2.1.0 Ok"
expect_eq orcpt_escape_501 "$(val esc "$O" | cut -c 1-9)" "501 5.5.4"
expect_eq orcpt_8bit_501 "$(val eight "$O" | cut -c 1-9)" "501 5.5.4"
expect_eq orcpt_nonatom_501 "$(val paren "$O" | cut -c 1-9)" "501 5.5.4"
expect_eq orcpt_rfc822_250 "$(val good "$O")" "250 2.1.5 Ok"
id=$(val dot "$O" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
"$P" show "$id" >"$T/show" 2>&1
expect_grep orcpt_stored 'orcpt=rfc822;a@b' "$T/show"
expect_eq orcpt_only_good_rcpt "$(qjson '[[r["address"] for r in m["recipients"]] for m in msgs if m["id"] == "'"$id"'"]')" "[['r2@relay.example']]"
expect_eq orcpt_no_control_stored "$(grep -c "$(printf '\033')" "$T/show")" 0

# ------------------------------------------------------------------
# 5b. ENVID and ORCPT are xtext that must decode to printable US-ASCII
# (RFC 3461 §4.2, §4.4): "+0A" or "+1B" is 501, "+20" and "+2B" are fine.
# An 8-bit EHLO name is written with '?' in our Received: header.
cat >"$T/xtext.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
c = C(int(sys.argv[1]), "127.0.0.4")
c.send(b"EHLO h\xc3\xa9lo.test\r\n")
c.reply()
print("envid_lf=" + c.cmd("MAIL FROM:<a@client.test.example> ENVID=x+0Ay"))
print("envid_esc=" + c.cmd("MAIL FROM:<a@client.test.example> ENVID=+1B[31m"))
print("mail=" + c.cmd("MAIL FROM:<a@client.test.example> ENVID=a+20b+2Bc"))
print("orcpt_lf=" + c.cmd("RCPT TO:<r1@relay.example> ORCPT=rfc822;a+0D+0Ab@c"))
print("orcpt_ok=" + c.cmd("RCPT TO:<r3@relay.example> ORCPT=rfc822;a+2Bb@c"))
print("data=" + c.cmd("DATA"))
print("dot=" + c.cmd("Subject: xtext\r\n\r\nbody\r\n."))
print("quit=" + c.cmd("QUIT"))
EOF
"$PY" "$T/xtext.py" "$SMTP_PORT" "$T" >"$T/xtext.out" 2>&1
O="$T/xtext.out"
expect_eq envid_lf_501 "$(val envid_lf "$O")" "501 5.5.4 Bad ENVID value"
expect_eq envid_esc_501 "$(val envid_esc "$O")" "501 5.5.4 Bad ENVID value"
expect_eq envid_printable_250 "$(val mail "$O")" "250 2.1.0 Ok"
expect_eq orcpt_crlf_501 "$(val orcpt_lf "$O" | cut -c 1-9)" "501 5.5.4"
expect_eq orcpt_plus_250 "$(val orcpt_ok "$O")" "250 2.1.5 Ok"
id=$(val dot "$O" | sed -n 's/^250 2\.0\.0 Ok: queued as //p')
"$P" show --raw "$id" >"$T/raw" 2>&1
expect_grep received_helo_ascii '^Received: from h??lo\.test (\[127\.0\.0\.4\])' "$T/raw"
expect_eq received_no_8bit "$("$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); h=d.split(b"\r\n\r\n")[0]; print(sum(1 for b in h if b > 0x7e))' "$T/raw")" 0

# ------------------------------------------------------------------
# 6. STARTTLS forgets AUTH and EHLO (RFC 3207 §4.2).
cat >"$T/tls.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from smtpc import C
port, pw = int(sys.argv[1]), sys.argv[3]
c = C(port, "127.0.0.5")
c.ehlo()
print("auth_clear=" + c.cram("site1", pw))
c.cmd("MAIL FROM:<site1@dialup.example>")
print("rcpt_clear=" + c.cmd("RCPT TO:<x@far.example>"))
print("rset=" + c.cmd("RSET"))
print("starttls=" + c.starttls())
print("mail_no_ehlo=" + c.cmd("MAIL FROM:<site1@dialup.example>"))
ext = c.ehlo()
print("auth_offered=%s" % any(l[4:].startswith("AUTH ") for l in ext))
print("mail=" + c.cmd("MAIL FROM:<site1@dialup.example>"))
print("rcpt_far=" + c.cmd("RCPT TO:<x@far.example>"))
print("rset2=" + c.cmd("RSET"))
print("auth_tls=" + c.cram("site1", pw))
print("mail2=" + c.cmd("MAIL FROM:<site1@dialup.example>"))
print("rcpt_far2=" + c.cmd("RCPT TO:<x@far.example>"))
print("quit=" + c.cmd("QUIT"))
EOF
"$PY" "$T/tls.py" "$SMTP_PORT" "$T" "$pw" >"$T/tls.out" 2>&1
L="$T/tls.out"
expect_eq tls_auth_in_clear_235 "$(val auth_clear "$L" | cut -c 1-9)" "235 2.7.0"
expect_eq tls_relay_in_clear "$(val rcpt_clear "$L")" "250 2.1.5 Ok"
expect_eq tls_starttls_220 "$(val starttls "$L" | cut -c 1-3)" 220
expect_eq tls_ehlo_forgotten_503 "$(val mail_no_ehlo "$L" | cut -c 1-9)" "503 5.5.1"
expect_eq tls_auth_offered_again "$(val auth_offered "$L")" True
expect_eq tls_mail_250 "$(val mail "$L")" "250 2.1.0 Ok"
expect_eq tls_auth_forgotten_554 "$(val rcpt_far "$L" | cut -c 1-9)" "554 5.7.1"
expect_eq tls_auth_again_235 "$(val auth_tls "$L" | cut -c 1-9)" "235 2.7.0"
expect_eq tls_relay_after_auth "$(val rcpt_far2 "$L")" "250 2.1.5 Ok"

# ------------------------------------------------------------------
# 8. Password guessing. Four connections from 127.0.0.2 guess CRAM-MD5
# answers at once (three a connection, the per-session limit); meanwhile
# 127.0.0.3 sends NOOPs and must be answered at once: the delay must not
# stall the loop. Then 127.0.0.2 is refused (auth_failure_limit = 10 in
# auth_failure_window = 10m), even with the right password, and
# 127.0.0.3 still logs in.
cat >"$T/guess.py" <<'EOF'
import sys, threading, time
sys.path.insert(0, sys.argv[2])
from smtpc import C, b64
port, pw = int(sys.argv[1]), sys.argv[3]
lock = threading.Lock()
fails, times, other = [], [], []
stop = threading.Event()

def guesser(n):
    c = C(port, "127.0.0.2")
    c.ehlo()
    for k in range(3):
        r = c.cmd("AUTH CRAM-MD5")
        if not r.startswith("334 "):
            with lock:
                other.append(r)
            return
        t0 = time.monotonic()
        r = c.cmd(b64("site1 %032x" % (n * 10 + k)))
        dt = time.monotonic() - t0
        with lock:
            if r.startswith("535"):
                fails.append(r)
                times.append(dt)
            else:
                other.append(r)
        if not r.startswith("535"):
            return

noop_max = [0.0]
def nooper():
    c = C(port, "127.0.0.3")
    c.ehlo()
    while not stop.is_set():
        t0 = time.monotonic()
        r = c.cmd("NOOP")
        noop_max[0] = max(noop_max[0], time.monotonic() - t0)
        if not r.startswith("250"):
            noop_max[0] = 99
            return
        time.sleep(0.05)
    c.cmd("QUIT")

n = threading.Thread(target=nooper)
n.start()
g = [threading.Thread(target=guesser, args=(i,)) for i in range(4)]
for t in g:
    t.start()
for t in g:
    t.join()
stop.set()
n.join()
print("fails=%d" % len(fails))
print("min_delay_ok=%s" % (bool(times) and min(times) >= 0.9))
print("min_delay=%.2f" % (min(times) if times else -1))
print("noop_fast=%s" % (noop_max[0] < 0.5))
print("noop_max=%.2f" % noop_max[0])
# A new connection from the guessing address: refused at AUTH, even with
# the right password.
c = C(port, "127.0.0.2")
c.ehlo()
r = c.cram("site1", pw)
print("blocked=" + r)
# After a 421 the server closes (RFC 5321 §3.8).
c.s.settimeout(5)
print("blocked_then=" + ("EOF" if r.startswith("421") and c.reply() is None
                         else "open"))
# The other address is not concerned.
t0 = time.monotonic()
c = C(port, "127.0.0.3")
c.ehlo()
print("other_ok=" + c.cram("site1", pw))
print("other_fast=%s" % (time.monotonic() - t0 < 0.9))
EOF
"$PY" "$T/guess.py" "$SMTP_PORT" "$T" "$pw" >"$T/guess.out" 2>&1
G="$T/guess.out"
expect_eq guess_ten_failures "$(val fails "$G" | grep -c '^1[0-2]$')" 1
expect_eq guess_failures_delayed "$(val min_delay_ok "$G")" True
expect_eq guess_loop_not_stalled "$(val noop_fast "$G")" True
expect_eq guess_blocked_421 "$(val blocked "$G" | cut -c 1-9)" "421 4.7.0"
expect_eq guess_blocked_closed "$(val blocked_then "$G")" EOF
expect_eq guess_other_address_235 "$(val other_ok "$G" | cut -c 1-9)" "235 2.7.0"
expect_eq guess_other_address_fast "$(val other_fast "$G")" True
# Passwords are at most 256 octets (the server fails longer ones without
# hashing them, smtp_auth.c); `postern passwd` makes no line it would fail.
"$PY" -c "print('p' * 257)" | expect_rc passwd_257_refused 2 "$P" passwd site9
"$PY" -c "print('p' * 256)" | expect_rc passwd_256_ok 0 "$P" passwd site9
expect_grep guess_block_logged 'addr=127\.0\.0\.2.*too many authentication failures' "$T/posternd.log"

# ------------------------------------------------------------------
# 10. SIGHUP between the challenge and the answer: the exchange goes on
# over the database it started with (no use after free under ASan), and
# the login succeeds (the file did not change).
cat >"$T/reload.py" <<'EOF'
import os, signal, sys, time
sys.path.insert(0, sys.argv[2])
from smtpc import C
port, pw, master, log = int(sys.argv[1]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
def reload():
    n = open(log, errors="replace").read().count("configuration reloaded")
    os.kill(master, signal.SIGHUP)
    for _ in range(200):
        if open(log, errors="replace").read().count(
                "configuration reloaded") > n:
            return
        time.sleep(0.05)
    print("reload_timeout=1")
c = C(port, "127.0.0.4")
c.ehlo()
print("cram=" + c.cram("site1", pw, reload))
c = C(port, "127.0.0.4")
c.ehlo()
print("scram=" + c.scram("site1", pw, reload))
EOF
smtpd_before=$(smtpd_pid)
"$PY" "$T/reload.py" "$SMTP_PORT" "$T" "$pw" "$PD_PID" "$T/posternd.log" \
	>"$T/reload.out" 2>&1
R="$T/reload.out"
expect_eq reload_seen "$(val reload_timeout "$R")" ""
expect_eq reload_cram_235 "$(val cram "$R" | cut -c 1-9)" "235 2.7.0"
expect_eq reload_scram_235 "$(val scram "$R" | cut -c 1-9)" "235 2.7.0"
expect_eq reload_same_smtpd "$(smtpd_pid)" "$smtpd_before"

stop_posternd
expect_eq posternd_stops "$?" 0
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# lib.sh - helpers for the integration cases (sourced by tests/integ/cases/*.sh).
#
# Every case gets a scratch directory $T (removed at exit) with a config
# file $T/postern.conf whose queue is $T/queue, and $P = the postern binary
# under test. Assertions print "ok NAME" or "not ok NAME: why"; tests/run.sh
# counts them. Servers a case starts are registered with `reap PID` and
# killed by PID at exit, never by name.
set -u
P="$POSTERN_BIN/postern"
# The real interpreter: python3 may be a slow version-manager shim.
PY=$(python3 -c 'import sys; print(sys.executable)')
T=$(mktemp -d /tmp/postern-integ.XXXXXX)
chmod 755 "$T"		# posternd runs as the postern user
export POSTERN_CONF="$T/postern.conf"
REAP=""
# reap_all - stop every server registered with reap, by PID.
reap_all() {
	for pid in $REAP; do
		kill "$pid" 2>/dev/null
	done
	for pid in $REAP; do
		wait "$pid" 2>/dev/null
	done
}
cleanup() {
	reap_all
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
reap() { REAP="$REAP $1"; }

# conf KEY=VALUE... - write the config: queue in $QDIR ($T/queue unless
# the case sets it) plus the keys; odmr_listen is off unless given (its
# default port is one for all).
conf() {
	{
		echo "queue_dir = ${QDIR:-$T/queue}"
		echo "myhostname = mx.test.example"
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
		# Last, so that the keys given keep their line numbers.
		case " $* " in
		*" odmr_listen="*) ;;
		*) echo "odmr_listen =" ;;
		esac
	} >"$T/postern.conf"
}
conf

ok() { echo "ok $1"; }
notok() { echo "not ok $1: $2"; }

# check NAME CMD... - the command must succeed.
check() {
	name=$1
	shift
	if "$@" >"$T/out" 2>&1; then ok "$name"; else
		notok "$name" "failed: $* -> $(head -c 300 "$T/out")"; fi
}

# expect_rc NAME RC CMD... - the command must exit with RC.
expect_rc() {
	name=$1
	want=$2
	shift 2
	"$@" >"$T/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$name"; else
		notok "$name" "exit $got, want $want: $(head -c 300 "$T/out")"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		notok "$1" "got '$2', want '$3'"; fi
}

# expect_grep NAME PATTERN FILE
expect_grep() {
	if grep -q -- "$2" "$3"; then ok "$1"; else
		notok "$1" "no '$2' in $(head -c 300 "$3")"; fi
}

# qjson EXPR - evaluate a Python expression over the queue's JSON lines,
# bound to `msgs` (a list of objects).
qjson() {
	"$P" queue --json | "$PY" -c "
import json, sys
msgs = [json.loads(l) for l in sys.stdin if l.strip()]
print($1)"
}

. "$POSTERN_TOP/tests/common.sh"	# free_port, wait_listen, term_wait ...

# start_posternd [KEY=VALUE...] - write the config (listen on a free port,
# $SMTP_PORT), start posternd -f in the background (log in $T/posternd.log),
# wait until it accepts. $PD_PID is the master's PID; it is reaped at exit.
start_posternd() {
	SMTP_PORT=${SMTP_PORT:-$(free_port)}
	conf "listen=127.0.0.1:$SMTP_PORT" "$@"
	"$POSTERN_BIN/posternd" -c "$T/postern.conf" -f >>"$T/posternd.log" 2>&1 &
	PD_PID=$!
	reap "$PD_PID"
	if ! wait_port "$SMTP_PORT"; then
		echo "not ok start_posternd: not listening on $SMTP_PORT"
		sed 's/^/    | /' "$T/posternd.log" | tail -20
		return 1
	fi
	# The master binds before it forks: the port answers before the
	# listener child exists. Cases compare smtpd_pid before and after.
	until_ok 100 smtpd_known ||
		echo "# start_posternd: no smtpd child logged within 10 s"
}
smtpd_known() { [ -n "$(smtpd_pid)" ]; }

# stop_posternd - SIGTERM to the master; wait (30 s at most) for it to exit.
stop_posternd() {
	term_wait "$PD_PID" 300
}

# smtpd_pid - the PID of posternd's SMTP listener child (the master has
# other children too, the scheduler: the one its log names "smtpd"), if it
# is alive.
smtpd_pid() {
	_sp=$(sed -n "s/^postern\/master\[$PD_PID\]: started smtpd, pid \([0-9]*\)$/\1/p" \
	    "$T/posternd.log" | tail -n 1)
	[ -n "$_sp" ] && pgrep -P "$PD_PID" | grep -qx "$_sp" && echo "$_sp"
	return 0
}

# sink_counters FILE FIELD N - the last "sess=N quit=N mesg=N" line that
# smtp-sink -c wrote to FILE, once its FIELD (sess or mesg) is at least N
# (polled every 0.05 s, 5 s at most: then the last line as it is).
sink_counters() {
	_si=0
	while :; do
		_sc=$(tr '\r' '\n' <"$1" | grep '^sess=' | tail -n 1)
		_sn=$(printf '%s' "$_sc" | sed -n "s/.*$2=\([0-9]*\).*/\1/p")
		[ "${_sn:-0}" -ge "$3" ] && break
		_si=$((_si + 1))
		[ $_si -gt 100 ] && break
		sleep 0.05
	done
	printf '%s\n' "$_sc"
}

# make_cert NAME CN - a self-signed certificate $T/NAME.crt, key $T/NAME.key
# (readable by the postern user posternd runs as).
make_cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -days 2 -subj "/CN=$2" \
		-addext "subjectAltName=DNS:$2" >/dev/null 2>&1
	chmod 644 "$T/$1.key" "$T/$1.crt"
}

# wait_dns PORT - poll until a DNS server answers a UDP query on
# 127.0.0.1:PORT (any answer; 10 s at most). dnsmasq may listen on TCP
# a moment before its UDP socket is bound, so wait_port is not enough.
wait_dns() {
	"$PY" - "$1" <<'EOPY'
import socket, struct, sys, time
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + \
    b"\x05probe\x04test\x00\x00\x01\x00\x01"
for _ in range(100):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    try:
        s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
        if s.recv(512)[:2] == q[:2]:
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
sys.exit(1)
EOPY
}

# now_ms - the time in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# until_ok TENTHS CMD... - run CMD every 0.1 s until it succeeds; 1 when it
# has not within TENTHS tenths of a second.
until_ok() {
	_ue=$(($(now_ms) + $1 * 100))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$_ue" ] && return 1
		sleep 0.1
	done
}

# poll_for SECONDS CMD... - until_ok, counted in seconds.
poll_for() {
	_ps=$1
	shift
	until_ok $((_ps * 10)) "$@"
}

# posternd_refuses NAME [PATTERN] - posternd -f on the current
# configuration must exit non-zero by itself within 10 s, without starting
# a child, and (with PATTERN) say PATTERN; its output is in $T/pd.out. One
# still running then is killed, and the check fails.
posternd_refuses() {
	"$POSTERN_BIN/posternd" -c "$T/postern.conf" -f >"$T/pd.out" 2>&1 &
	_rp=$!
	reap "$_rp"
	until_ok 100 eval '! kill -0 "$_rp" 2>/dev/null'
	if kill -0 "$_rp" 2>/dev/null; then
		kill "$_rp"
		wait "$_rp" 2>/dev/null
		notok "$1" "posternd still running after 10 s: $(tail -c 300 "$T/pd.out")"
		return
	fi
	wait "$_rp"
	_rc=$?
	if [ "$_rc" -eq 0 ]; then
		notok "$1" "posternd exited 0: $(tail -c 300 "$T/pd.out")"
	elif grep -q "started smtpd\|started sched" "$T/pd.out"; then
		notok "$1" "posternd forked children first: $(tail -c 300 "$T/pd.out")"
	elif [ $# -ge 2 ] && ! grep -q -- "$2" "$T/pd.out"; then
		notok "$1" "no '$2' in: $(tail -c 300 "$T/pd.out")"
	else
		ok "$1"
	fi
}

# qstates [REGEX] - "deferred:N delivered:N ..." (sorted) over the queued
# recipients whose address matches REGEX (every one without it).
qstates() {
	"$P" queue --json | "$PY" -c '
import collections, json, re, sys
c = collections.Counter()
for l in sys.stdin:
    if l.strip():
        for r in json.loads(l)["recipients"]:
            if re.search(sys.argv[1], r["address"]):
                c[r["state"]] += 1
print(" ".join("%s:%d" % kv for kv in sorted(c.items())))' "${1:-}"
}

# smtp_inject PORT FROM FILE RCPT [--binary] - FILE from FROM to RCPT
# over SMTP on 127.0.0.1:PORT (EHLO py.test.example): smtplib's DATA, or
# with --binary MAIL FROM ... BODY=BINARYMIME and one BDAT LAST of the
# whole file; prints the last word of the final reply (posternd's queue
# id when it took the message).
smtp_inject() {
	"$PY" - "$@" <<'EOF_PY'
import smtplib, socket, sys
port, sender, path, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
data = open(path, "rb").read()
if len(sys.argv) > 5:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    def r():
        while True:
            l = f.readline().decode()
            if l[3:4] != "-":
                return l.strip()
    r()
    for c in (b"EHLO py.test.example",
              b"MAIL FROM:<%s> BODY=BINARYMIME" % sender.encode(),
              b"RCPT TO:<%s>" % rcpt.encode()):
        s.sendall(c + b"\r\n"); r()
    s.sendall(b"BDAT %d LAST\r\n" % len(data) + data)
    print(r().split()[-1])
else:
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="py.test.example", timeout=20)
    c.ehlo()
    c.mail(sender)
    c.rcpt(rcpt)
    code, text = c.data(data)
    print(text.decode().split()[-1])
    c.quit()
EOF_PY
}

# after_received RAW SENT PREFIX - "same" when the octets in file RAW are
# file SENT's under one Received: field (its first line starts with
# PREFIX, folded lines may follow), else "differ GOT WANT" (their sizes).
after_received() {
	"$PY" - "$@" <<'EOF_PY'
import sys
raw = open(sys.argv[1], "rb").read()
sent = open(sys.argv[2], "rb").read()
assert raw.startswith(sys.argv[3].encode()), raw[:60]
i = raw.index(b"\r\n") + 2
while raw[i:i + 1] in (b"\t", b" "):
    i = raw.index(b"\r\n", i) + 2
print("same" if raw[i:] == sent else "differ %d %d" % (len(raw) - i, len(sent)))
EOF_PY
}

# make_ca NAME CN - a CA certificate $T/NAME.crt (CN, 2 days) and its key
# $T/NAME.key, for cases that sign leaves with it.
make_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -days 2 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}

# make_leaf CA NAME SAN... - $T/NAME.crt and .key (readable by the
# postern user), a server certificate for the DNS names SAN... (CN the
# first), signed by make_ca's $T/CA.crt.
make_leaf() {
	_ca=$1 _n=$2
	shift 2
	_san=""
	for _h in "$@"; do _san="${_san:+$_san,}DNS:$_h"; done
	openssl req -newkey rsa:2048 -nodes -keyout "$T/$_n.key" \
		-out "$T/$_n.csr" -subj "/CN=$1" >/dev/null 2>&1
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$_san" >"$T/$_n.ext"
	openssl x509 -req -in "$T/$_n.csr" -CA "$T/$_ca.crt" -CAkey "$T/$_ca.key" \
		-CAcreateserial -days 2 -out "$T/$_n.crt" -extfile "$T/$_n.ext" \
		>/dev/null 2>&1
	chmod 644 "$T/$_n.key" "$T/$_n.crt"
}

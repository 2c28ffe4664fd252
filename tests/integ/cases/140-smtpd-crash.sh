# 140-smtpd-crash: clients send while posternd's SMTP listener is killed
# with SIGKILL four times. Nothing acknowledged may be lost: every
# "250 2.0.0 Ok: queued as ID" a client received names a message that is
# in the queue afterwards, whole (its recipients, and a body whose sha256
# is what that client sent). The master logs each death and restarts the
# listener with its backoff (1 s, 2 s, 4 s, 8 s); spool files of the dead
# listeners (messages over 256 KiB in DATA) are swept, so none is left
# after a stop.
#
# Load: smtp-source (restarted whenever a kill makes it give up) and a
# Python client of several threads that puts a unique token in every
# message, sends some over the spool threshold and some with leading dots,
# and records each 250 it gets with the sha256 of what it sent.
. "$POSTERN_TOP/tests/integ/lib.sh"

SRC=/usr/sbin/smtp-source
KILLS=4
THREADS=6

if [ ! -x "$SRC" ]; then
	notok smtp_source_installed "$SRC missing (apt-get install postfix)"
	exit 1
fi

# Everything under hold.example is held for its site (posternd also runs
# the delivery scheduler), so what was received stays in the queue.
start_posternd hold_domains=hold.example || exit 1

# greets PORT - a listener answers: the master keeps the listening socket,
# so a connect succeeds even while no child is there; the 220 is the test.
cat >"$T/greets.py" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)
    s.settimeout(1)
    sys.exit(0 if s.recv(4) == b"220 " else 1)
except OSError:
    sys.exit(1)
EOF

# served PID - how many messages listener PID queued (its log lines).
served() {
	grep -c "postern/smtpd\[$1\]: [0-9A-Z]\{11\}: client=" "$T/posternd.log"
}
# wait_served PID - until that listener has queued a message (20 s).
wait_served() {
	w=0
	while [ "$(served "$1")" -eq 0 ] && [ $w -lt 200 ]; do
		sleep 0.1
		w=$((w + 1))
	done
}

# ------------------------------------------------------------------
# The recording client.
cat >"$T/client.py" <<'EOF'
# client.py PORT THREADS STOPFILE DEADLINE OUTDIR - send until STOPFILE
# exists (or the time DEADLINE); each thread writes OUTDIR/acked.N lines
# "ID sha256 rcpt,rcpt token" for every 250 it got after its final dot,
# and OUTDIR/lost.N lines "token why" for messages whose fate it did not
# learn (the connection died after DATA began).
import hashlib, os, random, smtplib, socket, sys, threading, time
port, nthreads = int(sys.argv[1]), int(sys.argv[2])
stop, deadline, outdir = sys.argv[3], float(sys.argv[4]), sys.argv[5]

def message(tok, rnd):
    size = rnd.choice([600, 3000, 20000, 70000] * 4 + [300000, 700000])
    lines = [b"From: <crash-client@example.com>", b"To: <many@hold.example>",
             b"Subject: " + tok.encode(), b"X-Token: " + tok.encode(), b""]
    n = 0
    while n < size:
        line = ("%s line %d " % (tok, len(lines))).encode()
        line += bytes(rnd.choice(b"abcdefghij .") for _ in range(rnd.randint(0, 90)))
        if rnd.random() < 0.05:
            line = b"." + line          # transparency: stuffed on the wire
        if rnd.random() < 0.01:
            line = b"."                 # a lone dot in the content
        lines.append(line)
        n += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"

def worker(k):
    rnd = random.Random(k * 7919 + os.getpid())
    acked = open(os.path.join(outdir, "acked.%d" % k), "w")
    lost = open(os.path.join(outdir, "lost.%d" % k), "w")
    seq = 0
    while not os.path.exists(stop) and time.time() < deadline:
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)
            continue
        try:
            s.ehlo("crash-client.test.example")
            # A few messages per session, then QUIT or just go.
            for _ in range(rnd.randint(1, 4)):
                if os.path.exists(stop) or time.time() >= deadline:
                    break
                seq += 1
                tok = "tok-%d-%d-%d" % (os.getpid(), k, seq)
                rcpts = ["r%d-%d@hold.example" % (k, i)
                         for i in range(rnd.randint(1, 3))]
                body = message(tok, rnd)
                code, _ = s.mail("crash-client@example.com")
                if code != 250:
                    break
                for r in rcpts:
                    s.rcpt(r)
                try:
                    code, msg = s.data(body)
                except smtplib.SMTPDataError:
                    raise                       # no 354: nothing sent
                except (OSError, smtplib.SMTPException) as e:
                    lost.write("%s %s\n" % (tok, type(e).__name__))
                    lost.flush()
                    raise
                msg = msg.decode()
                if code == 250 and msg.startswith("2.0.0 Ok: queued as "):
                    acked.write("%s %s %s %s\n" % (msg.split()[-1],
                        hashlib.sha256(body).hexdigest(), ",".join(rcpts), tok))
                    acked.flush()
            if rnd.random() < 0.5:
                s.quit()
            else:
                s.close()
        except (OSError, smtplib.SMTPException):
            try:
                s.close()
            except OSError:
                pass
            time.sleep(0.05)
    acked.close()
    lost.close()

ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
EOF
mkdir "$T/rec"
chmod 755 "$T/rec"
deadline=$(($(date +%s) + 150))
"$PY" "$T/client.py" "$SMTP_PORT" "$THREADS" "$T/stop" "$deadline" \
	"$T/rec" >"$T/client.out" 2>&1 &
CLIENT=$!
reap "$CLIENT"
(
	while [ ! -f "$T/stop" ] && [ "$(date +%s)" -lt "$deadline" ]; do
		timeout -k 5 40 "$SRC" -s 8 -m 300 -l 4000 -f src@example.com \
			-t src@hold.example "127.0.0.1:$SMTP_PORT" >>"$T/src.out" 2>&1
		echo "rc $?" >>"$T/src.rc"
	done
) &
LOADER=$!
reap "$LOADER"

# ------------------------------------------------------------------
# The kills: at intervals, once the listener has queued something (so it
# dies under load), SIGKILL to it, then poll until the master has started
# another (a new PID, greeting on the port again).
killed=""
restarts_ok=0
i=0
while [ $i -lt $KILLS ]; do
	i=$((i + 1))
	sleep 2
	old=$(smtpd_pid)
	if [ -z "$old" ]; then
		notok "kill_$i" "no listener to kill"
		break
	fi
	wait_served "$old"
	kill -KILL "$old"
	killed="$killed $old"
	t0=$(date +%s)
	new=""
	while [ $(($(date +%s) - t0)) -lt 30 ]; do
		new=$(smtpd_pid)
		if [ -n "$new" ] && [ "$new" != "$old" ] &&
		    "$PY" "$T/greets.py" "$SMTP_PORT"; then
			break
		fi
		new=""
		sleep 0.1
	done
	if [ -n "$new" ]; then
		restarts_ok=$((restarts_ok + 1))
		echo "# kill $i: listener $old killed, $new greeting after $(($(date +%s) - t0)) s"
	else
		notok "restart_$i" "no new listener 30 s after killing $old"
		break
	fi
done
expect_eq listener_restarted_each_time "$restarts_ok" "$KILLS"
expect_eq master_alive "$(kill -0 "$PD_PID" 2>/dev/null && echo yes)" yes

# Load on the last listener for a moment, then stop the senders.
last=$(smtpd_pid)
wait_served "$last"
sleep 1
touch "$T/stop"
wait "$CLIENT"
wait "$LOADER"
acked=$(cat "$T/rec"/acked.* | wc -l | tr -d ' ')
echo "# python client: $acked messages acknowledged," \
	"$(cat "$T/rec"/lost.* | wc -l | tr -d ' ') with the reply lost;" \
	"smtp-source runs: $(grep -c . "$T/src.rc" 2>/dev/null)," \
	"$(grep -vc '^rc 0$' "$T/src.rc" 2>/dev/null) cut short"
[ -s "$T/client.out" ] && sed 's/^/    | /' "$T/client.out" | tail -20
if [ "$acked" -gt 0 ]; then ok client_got_acks; else
	notok client_got_acks "no 250 at all"; fi
# Every listener, the first and each restarted one, queued mail.
per=""
unserved=0
for p in $killed $last; do
	per="$per $(served "$p")"
	[ "$(served "$p")" -gt 0 ] || unserved=$((unserved + 1))
done
echo "# messages queued by each listener:$per"
expect_eq every_listener_served "$unserved" 0

# ------------------------------------------------------------------
# Every acknowledged message is in the queue, whole.
"$P" queue --json >"$T/q.json" 2>"$T/q.err"
expect_eq queue_json_exit "$?" 0
cat >"$T/verify.py" <<'EOF'
import glob, hashlib, json, os, re, subprocess, sys
from smtpclient import stored_bodies
P, qdir, qfile, recdir = sys.argv[1:5]
msgs = {}
for l in open(qfile):
    if l.strip():
        m = json.loads(l)
        msgs[m["id"]] = m
acked = []
for f in glob.glob(os.path.join(recdir, "acked.*")):
    acked += [l.split() for l in open(f) if l.strip()]
res = {}
def out(k, v): res[k] = v
out("acked", len(acked))
out("acked_ids_distinct", len(set(a[0] for a in acked)) == len(acked))
present = [a for a in acked if a[0] in msgs]
out("acked_in_queue", len(present))
missing = [a for a in acked if a[0] not in msgs]
out("first_missing", " ".join(missing[0]) if missing else "")
out("rcpts_match", sum(1 for a in present if
    [(r["address"], r["state"]) for r in msgs[a[0]]["recipients"]] ==
    [(r, "held") for r in a[2].split(",")] and
    msgs[a[0]]["sender"] == "crash-client@example.com"))

# Bodies: the body chunks of the msg table in one read
# (smtpclient.stored_bodies), checked against `postern show --raw` for a
# sample.
stored = stored_bodies(qdir)
out("every_queued_msg_has_body", all(i in stored for i in msgs))

RCVD = re.compile(rb"\AReceived: from crash-client\.test\.example "
    rb"\(\[127\.0\.0\.1\]\)\r\n\tby mx\.test\.example \(postern\) with ESMTP"
    rb"(\r\n\tfor <[^>]*>)?; [^\r\n]+\r\n")
good, bad = 0, []
for a in present:
    raw = stored.get(a[0], b"")
    r = RCVD.match(raw)
    if r and hashlib.sha256(raw[r.end():]).hexdigest() == a[1] and \
            len(raw) == msgs[a[0]]["size"]:
        good += 1
    else:
        bad.append(a[0] + " " + a[3])
out("bodies_match", good)
out("first_bad_body", bad[0] if bad else "")

env = dict(os.environ)
env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
sample = present[::max(1, len(present) // 40)]
same = sum(1 for a in sample if subprocess.run([P, "show", "--raw", a[0]],
    capture_output=True, env=env).stdout == stored.get(a[0]))
out("show_raw_sample", "%d/%d" % (same, len(sample)))
out("large_acked", sum(1 for a in present if len(stored.get(a[0], b"")) > 256 * 1024))
for k, v in res.items():
    print("%s=%s" % (k, v))
EOF
PYTHONPATH="$POSTERN_TOP/tests/integ" "$PY" "$T/verify.py" "$P" \
	"$T/queue" "$T/q.json" "$T/rec" >"$T/verify.out" 2>&1
val() { sed -n "s/^$1=//p" "$T/verify.out" | head -n 1; }
grep -q '^acked=' "$T/verify.out" || sed 's/^/    | /' "$T/verify.out" | tail -20
n=$(val acked)
echo "# $(val large_acked) of the acknowledged messages were over 256 KiB (spooled)"
expect_eq acked_ids_distinct "$(val acked_ids_distinct)" True
expect_eq every_acked_in_queue "$(val acked_in_queue)" "$n"
[ -n "$(val first_missing)" ] && echo "# first missing: $(val first_missing)"
expect_eq acked_recipients_match "$(val rcpts_match)" "$n"
expect_eq acked_bodies_match "$(val bodies_match)" "$n"
[ -n "$(val first_bad_body)" ] && echo "# first bad body: $(val first_bad_body)"
expect_eq every_queued_msg_has_body "$(val every_queued_msg_has_body)" True
s=$(val show_raw_sample)
expect_eq show_raw_matches_sample "${s%/*}" "${s#*/}"

# ------------------------------------------------------------------
# The master's log: each kill seen and answered with a restart, with the
# backoff doubling (the listeners lived under a minute).
want_backoff=""
b=1
for p in $killed; do
	expect_grep "master_saw_kill_$p" "smtpd pid $p killed by signal 9" "$T/posternd.log"
	want_backoff="$want_backoff $b"
	b=$((b * 2))
done
expect_eq master_restart_backoff \
	"$(sed -n 's/.*restarting smtpd in \([0-9]*\) s.*/\1/p' "$T/posternd.log" | tr '\n' ' ' | sed 's/ $//')" \
	"${want_backoff# }"
expect_eq listeners_started "$(grep -c 'started smtpd, pid' "$T/posternd.log")" $((KILLS + 1))
swept=$(sed -n 's/.*removed \([0-9]*\) spool file.*/\1/p' "$T/posternd.log" | awk '{ n += $1 } END { print n + 0 }')
echo "# spool files of killed listeners swept at restart: $swept"

# A clean stop: nothing left in the spool, no sanitizer report.
if stop_posternd; then ok posternd_stops; else notok posternd_stops "still running"; fi
expect_eq spool_empty "$(find "$T/queue/spool" -type f | wc -l | tr -d ' ')" 0
expect_eq no_sanitizer_report "$(grep -c -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/posternd.log")" 0
expect_eq queue_after_stop "$("$P" queue --json | wc -l | tr -d ' ')" "$(wc -l <"$T/q.json" | tr -d ' ')"

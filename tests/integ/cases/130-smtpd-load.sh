# 130-smtpd-load: Postfix's smtp-source sends 2,000 messages over 50
# parallel sessions to posternd; exactly 2,000 are queued, each once, each
# byte for byte what was sent (behind our Received: header), and the
# listener neither dies nor leaves a spool file behind.
#
# smtp-source's messages are generated: fixed From:/To: (our -f/-t), a
# Subject: (-S), then a Date: and a Message-Id: that vary from message to
# message, a blank line and -l LENGTH bytes of payload that is the same in
# every message. What it sends is captured once from a small Python sink
# with the same options; every stored message must be that, with only the
# Date: and Message-Id: values its own (and the Message-Ids all distinct).
. "$POSTERN_TOP/tests/integ/lib.sh"

SRC=/usr/sbin/smtp-source
N=2000
CONC=50
LEN=3000
FROM=load-sender@example.com
TO=load-rcpt@hold.example
SUBJ="postern load 130"

if [ ! -x "$SRC" ]; then
	notok smtp_source_installed "$SRC missing (apt-get install postfix)"
	exit 1
fi

# ------------------------------------------------------------------
# What smtp-source sends: one message into a sink that records it.
cat >"$T/sink.py" <<'EOF'
# sink.py PORTFILE OUT - accept one SMTP session, write the message's
# content (dot-unstuffed, CRLFs kept) to OUT. The port goes to PORTFILE.
import socket, sys
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(20)
open(sys.argv[1] + ".tmp", "w").write(str(ls.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = ls.accept()
c.settimeout(20)
f = c.makefile("rb")
def say(s): c.sendall(s.encode() + b"\r\n")
say("220 sink ESMTP")
data = None
while True:
    line = f.readline()
    if not line:
        break
    if data is not None:
        if line == b".\r\n":
            open(sys.argv[2], "wb").write(b"".join(data))
            data = None
            say("250 2.0.0 Ok")
        else:
            data.append(line[1:] if line.startswith(b".") else line)
        continue
    verb = line[:4].upper()
    if verb == b"DATA":
        data = []
        say("354 go on")
    elif verb == b"QUIT":
        say("221 2.0.0 Bye")
        break
    else:
        say("250 sink")
EOF
"$PY" "$T/sink.py" "$T/sinkport" "$T/ref" &
SINK=$!
reap "$SINK"
i=0
while [ ! -f "$T/sinkport" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
timeout 20 "$SRC" -m 1 -l "$LEN" -S "$SUBJ" -f "$FROM" -t "$TO" \
	"127.0.0.1:$(cat "$T/sinkport")" >"$T/ref.out" 2>&1
wait "$SINK"
if [ ! -s "$T/ref" ]; then
	notok reference_captured "no message from smtp-source: $(head -c 300 "$T/ref.out")"
	exit 1
fi
ok reference_captured

# ------------------------------------------------------------------
# The load. posternd also runs the delivery scheduler: the recipients'
# domain is held for its site (hold_domains: held as they are queued), so
# what was received stays queued as it came.
start_posternd hold_domains=hold.example || exit 1
pid0=$(smtpd_pid)
expect_eq smtpd_found "$([ -n "$pid0" ] && echo yes)" yes

start=$(date +%s)
timeout -k 5 100 "$SRC" -s "$CONC" -m "$N" -l "$LEN" -S "$SUBJ" \
	-f "$FROM" -t "$TO" "127.0.0.1:$SMTP_PORT" >"$T/src.out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
echo "# smtp-source: $N messages, $CONC sessions, ${secs} s"
expect_eq smtp_source_exit "$rc" 0
expect_eq smtp_source_quiet "$(head -c 300 "$T/src.out")" ""

# The same listener throughout, alive.
expect_eq smtpd_same_pid "$(smtpd_pid)" "$pid0"

# ------------------------------------------------------------------
# The queue: N messages, each with our envelope, each body intact.
"$P" queue --json >"$T/q.json" 2>"$T/q.err"
expect_eq queue_json_exit "$?" 0
cat >"$T/verify.py" <<'EOF'
import hashlib, json, os, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from smtpclient import stored_bodies
P, qdir, qfile, ref, log, frm, to, sample = sys.argv[1:9]
sample = int(sample)
msgs = [json.loads(l) for l in open(qfile) if l.strip()]
res = {}
def out(k, v): res[k] = v

out("count", len(msgs))
out("ids_unique", len(set(m["id"] for m in msgs)) == len(msgs))
out("envelopes", sum(1 for m in msgs if m["sender"] == frm and
    [(r["address"], r["state"]) for r in m["recipients"]] == [(to, "held")]))

# The reference: smtp-source's message with Date and Message-Id blanked.
VARY = re.compile(rb"^(Date|Message-Id): .*$", re.M | re.I)
refb = open(ref, "rb").read()
refn = VARY.sub(rb"\1: -", refb)
body = refb.split(b"\r\n\r\n", 1)[1]
refsum = hashlib.sha256(refn).hexdigest()
bodysum = hashlib.sha256(body).hexdigest()
RCVD = re.compile(rb"\AReceived: from [^\r\n]* \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby mx\.test\.example \(postern\) with E?SMTP\r\n"
    rb"\tfor <" + re.escape(to.encode()) + rb">; [^\r\n]+\r\n")

# Every stored message, in one read (smtpclient.stored_bodies: the body
# chunks of the msg table, dumped by mdb_dump). 2,000 runs of `postern show
# --raw` (a sanitizer build) would take minutes on a loaded 2-core
# machine, so the command is run on a sample of SAMPLE messages, and what
# it prints must be the dump's bytes exactly.
stored = stored_bodies(qdir)
out("body_table_messages", len(stored))

env = dict(os.environ)
env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
step = max(1, len(msgs) // sample)
picked = msgs[::step] + msgs[-1:]
def show(m):
    return subprocess.run([P, "show", "--raw", m["id"]], capture_output=True,
        check=False, env=env).stdout == stored.get(m["id"])
with ThreadPoolExecutor(4) as ex:
    same = list(ex.map(show, picked))
out("show_raw_sample", "%d/%d" % (sum(same), len(same)))

def check(m):
    raw = stored.get(m["id"], b"")
    r = RCVD.match(raw)
    if r is None:
        return m["id"], "no Received header of ours first", None
    rest = raw[r.end():]
    if rest.startswith((b"\t", b" ")):
        return m["id"], "Received header has more lines", None
    if len(raw) != m["size"]:
        return m["id"], "size %d != %d" % (len(raw), m["size"]), None
    b = rest.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in rest else b""
    if hashlib.sha256(b).hexdigest() != bodysum:
        return m["id"], "body sha256 differs", None
    if hashlib.sha256(VARY.sub(rb"\1: -", rest)).hexdigest() != refsum:
        return m["id"], "headers differ", None
    mid = re.search(rb"^Message-Id: (.*)\r$", rest, re.M | re.I)
    return m["id"], None, mid.group(1) if mid else None

results = [check(m) for m in msgs]
bad = [(i, why) for i, why, _ in results if why]
out("bodies_intact", len(msgs) - len(bad))
out("first_bad", "%s: %s" % bad[0] if bad else "")
mids = [mid for _, why, mid in results if not why]
out("message_ids_distinct", len(set(mids)))

# The listener logged each message it queued, once.
logged = re.findall(r"\b([0-9A-Z]{11}): client=\S+, from=<" + re.escape(frm),
    open(log, errors="replace").read())
out("log_ids_match", sorted(logged) == sorted(m["id"] for m in msgs))
for k, v in res.items():
    print("%s=%s" % (k, v))
EOF
start=$(date +%s)
PYTHONPATH="$POSTERN_TOP/tests/integ" "$PY" "$T/verify.py" "$P" "$T/queue" "$T/q.json" "$T/ref" \
	"$T/posternd.log" "$FROM" "$TO" 100 >"$T/verify.out" 2>&1
echo "# verified $N stored messages in $(($(date +%s) - start)) s"
val() { sed -n "s/^$1=//p" "$T/verify.out" | head -n 1; }
expect_eq queued_count "$(val count)" "$N"
expect_eq queued_ids_unique "$(val ids_unique)" True
expect_eq queued_envelopes "$(val envelopes)" "$N"
expect_eq body_table_messages "$(val body_table_messages)" "$N"
expect_eq bodies_byte_for_byte "$(val bodies_intact)" "$N"
expect_eq show_raw_matches_sample "$(val show_raw_sample)" "101/101"
[ -n "$(val first_bad)" ] && echo "# first bad: $(val first_bad)"
expect_eq message_ids_distinct "$(val message_ids_distinct)" "$N"
expect_eq log_one_line_per_message "$(val log_ids_match)" True
grep -q '^count=' "$T/verify.out" || sed 's/^/    | /' "$T/verify.out" | tail -20

# ------------------------------------------------------------------
# A clean stop: no sanitizer report, no restart, no spool file left.
if stop_posternd; then ok posternd_stops; else notok posternd_stops "still running"; fi
expect_eq no_sanitizer_report "$(grep -c -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/posternd.log")" 0
expect_eq no_child_died "$(grep -c -E 'killed by signal|exited with status' "$T/posternd.log")" 0
expect_eq spool_empty "$(find "$T/queue/spool" -type f | wc -l | tr -d ' ')" 0
expect_eq queue_after_stop "$("$P" queue --json | wc -l | tr -d ' ')" "$N"

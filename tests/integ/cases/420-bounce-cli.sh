# 420-bounce-cli: `postern bounce`, and the DSN columns of `show`,
# `queue --json` and `stats`.
#
# Messages are queued with `postern enqueue` to recipients of held domains
# (hold_domains: they stay queued, untried); the senders' domain and
# myhostname's (postmaster, the double bounce recipient) are routed by
# routes_file to an smtp-sink on 127.0.0.1 that dumps what it gets.
# `postern bounce` fails the recipients and queues the DSNs, checked in
# `postern queue --json`; `postern run` delivers them to the sink, and
# every DSN the sink got is parsed with tests/integ/dsn_check.py
# (check_dsn) field by field. Parts: by id, by --domain (one DSN per
# message, the failed recipient's dsn id in show and JSON while its
# message still has a held recipient), a message from <> (one double
# bounce to postmaster@myhostname, or none with double_bounce_recipient
# empty), bad ids (exit 2, nothing changed), and bounce_rate_limit
# (stats' bounce_dropped, show's "dsn=none (dropped)").
. "$POSTERN_TOP/tests/integ/lib.sh"

CHECK="$POSTERN_TOP/tests/integ/dsn_check.py"
printf 'Subject: bounce cli test\nFrom: someone@snd.example\n\nhello\n' \
	>"$T/body"

# The sink: every message into $T/sink/.
mkdir -p "$T/sink"
chmod 777 "$T/sink"
SP=$(free_port)
smtp-sink -u postern -c -d "$T/sink/%H%M%S." "127.0.0.1:$SP" 64 \
	>"$T/sink.out" 2>&1 &
reap $!
until_ok 100 listening "$SP" || notok sink_started "smtp-sink not listening"
printf '%s\n' "snd.example [127.0.0.1]:$SP" \
	"mx.test.example [127.0.0.1]:$SP" >"$T/routes"
chmod 644 "$T/routes"

# bconf KEY=VALUE... - the configuration, with the routes and held domains.
bconf() {
	conf "routes_file=$T/routes" "hold_domains=held.example,held2.example" \
		"min_backoff=1s" "smtp_connect_timeout=2s" "$@"
}
bconf

# enq SENDER RCPT... - queue the body; its id on stdout.
enq() {
	_s=$1
	shift
	"$P" enqueue -f "$_s" "$@" <"$T/body" 2>>"$T/enq.err"
}
nfiles() { find "$T/sink" -type f | wc -l; }
# sink_clear - forget what the sink got so far.
sink_clear() { find "$T/sink" -type f -exec rm -f {} +; }
# deliver NAME N - `postern run`, then wait for N dumps in the sink.
deliver() {
	check "$1_run" "$P" run
	if until_ok 50 sh -c "[ \$(find '$T/sink' -type f | wc -l) -ge $2 ]"
	then ok "$1_sink_got_$2"; else
		notok "$1_sink_got_$2" "$(nfiles) messages at the sink"; fi
	expect_eq "$1_sink_exactly_$2" "$(nfiles)" "$2"
}

# dsns NAME SPEC... - check every DSN in the sink with check_dsn. A SPEC
# is "TO=RCPT,RCPT[/double]": exactly one dump is to TO (X-Rcpt-Args)
# from <> and reports exactly these recipients, each failed with 5.0.0;
# no dump is left over.
dsns() {
	"$PY" - "$CHECK" "$T/sink" "$@" <<'EOPY'
import importlib.util, os, re, sys
spec = importlib.util.spec_from_file_location("dsn_check", sys.argv[1])
dc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dc)
sink, name, specs = sys.argv[2], sys.argv[3], sys.argv[4:]
dumps = []
for f in sorted(os.listdir(sink)):
    raw = open(os.path.join(sink, f), "rb").read()
    env = {}
    # smtp-sink's own lines first (X-Client-Addr ... X-Rcpt-Args), LF ends.
    while True:
        m = re.match(rb"(X-[A-Za-z-]+): ([^\n]*)\n", raw)
        if not m:
            break
        env.setdefault(m.group(1).decode(), []).append(m.group(2).decode())
        raw = raw[m.end():]
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    fr = re.findall(rb"(?im)^Final-Recipient: *rfc822; *([^\r\n]+)", raw)
    dumps.append((f, env, raw, sorted(x.decode() for x in fr)))
bad = 0
def out(ok, what, why=""):
    global bad
    if ok:
        print("ok %s: %s" % (name, what))
    else:
        bad += 1
        print("not ok %s: %s: %s" % (name, what, why))
left = list(dumps)
for s in specs:
    double = s.endswith("/double")
    s = s[:-len("/double")] if double else s
    to, rc = s.split("=", 1)
    rcpts = sorted(rc.split(","))
    # X-Rcpt-Args: <addr> and the RCPT parameters (a double bounce
    # goes with NOTIFY=NEVER: its own failure is dropped).
    want_args = "<%s>%s" % (to, " NOTIFY=NEVER" if double else "")
    hit = [d for d in left if d[1].get("X-Rcpt-Args") == [want_args]
           and d[3] == rcpts]
    out(len(hit) == 1, "one DSN to %s for %s" % (to, rc),
        "%d of them; dumps: %r" % (len(hit), [(d[1].get("X-Rcpt-Args"),
                                              d[3]) for d in dumps]))
    for d in hit:
        left.remove(d)
        out(d[1].get("X-Mail-Args") == ["<>"], "from <> to " + to,
            d[1].get("X-Mail-Args"))
        res = dc.check_dsn(d[2], name=name, kind="failure", to=to,
                           reporting_mta="mx.test.example", double=double,
                           rcpt=[(r, "5.0.0") for r in rcpts],
                           ret="headers",
                           text=["returned by the administrator"])
        for ok, what, why in res:
            out(ok, "%s %s" % (to, what), why)
        out(b"Action: failed" in d[2], "Action: failed", "")
out(not left, "no other message at the sink",
    [(d[1].get("X-Rcpt-Args"), d[3]) for d in left])
sys.exit(1 if bad else 0)
EOPY
}

# ------------------------------------------------------------------
# 1. By id: both held recipients fail, one DSN to the sender.
A=$(enq alice@snd.example u1@held.example u2@held.example)
expect_eq id_queued "$(qjson 'sum(len(m["recipients"]) for m in msgs if m["id"] == "'"$A"'")')" 2
check bounce_id "$P" bounce "$A"
expect_grep bounce_id_count "bounced 2 recipients" "$T/out"
expect_eq id_message_gone "$(qjson 'sum(1 for m in msgs if m["id"] == "'"$A"'")')" 0
expect_eq id_one_dsn_queued \
	"$(qjson '[(m["sender"], [r["address"] for r in m["recipients"]]) for m in msgs]')" \
	"[('', ['alice@snd.example'])]"
deliver id 1
dsns id "alice@snd.example=u1@held.example,u2@held.example"
expect_eq id_queue_empty "$(qjson 'len(msgs)')" 0

# ------------------------------------------------------------------
# 2. By --domain: three messages, each with a held2 recipient (bounced)
# and a held one (left): one DSN per message naming only its held2
# recipient. The failed recipient shows its DSN's id.
sink_clear
B1=$(enq bob@snd.example r1@held2.example k1@held.example)
B2=$(enq bob@snd.example r2@held2.example k2@held.example)
B3=$(enq bob@snd.example r3@held2.example)
check bounce_domain "$P" bounce --domain held2.example
expect_grep bounce_domain_count "bounced 3 recipients" "$T/out"
expect_eq domain_dsns_queued \
	"$(qjson 'sum(1 for m in msgs if m["sender"] == "" and [r["address"] for r in m["recipients"]] == ["bob@snd.example"])')" 3
expect_eq domain_b3_gone "$(qjson 'sum(1 for m in msgs if m["id"] == "'"$B3"'")')" 0
expect_eq domain_states \
	"$(qjson '[(r["address"], r["state"]) for m in msgs if m["id"] in ("'"$B1"'", "'"$B2"'") for r in m["recipients"]]')" \
	"[('r1@held2.example', 'failed'), ('k1@held.example', 'held'), ('r2@held2.example', 'failed'), ('k2@held.example', 'held')]"
# queue --json: a "dsn" key on every recipient, the failed one's the id
# of a DSN in the queue (from <> to bob), the held one's null; and every
# line is JSON (qjson parses them all).
expect_eq json_dsn_key_everywhere \
	"$(qjson 'all("dsn" in r for m in msgs for r in m["recipients"])')" True
expect_eq json_dsn_values "$(qjson '(lambda ids, d: [
 d["r1@held2.example"] in ids, d["r2@held2.example"] in ids,
 d["r1@held2.example"] != d["r2@held2.example"], d["k1@held.example"],
 [r["dsn"] for m in msgs if m["sender"] == "" for r in m["recipients"]]])(
 {m["id"] for m in msgs if m["sender"] == "" and m["recipients"][0]["address"] == "bob@snd.example"},
 {r["address"]: r["dsn"] for m in msgs for r in m["recipients"]})')" \
	"[True, True, True, None, [None, None, None]]"
D1=$(qjson 'next(r["dsn"] for m in msgs for r in m["recipients"] if r["address"] == "r1@held2.example")')
"$P" show "$B1" >"$T/show.b1" 2>&1
expect_grep show_failed_dsn_id \
	"^recipient: <r1@held2.example> state=failed .* status=5.0.0 dsn=$D1\$" \
	"$T/show.b1"
expect_grep show_held_no_dsn "^recipient: <k1@held.example> state=held attempts=0 site-hold\$" \
	"$T/show.b1"
expect_grep show_history_admin "5.0.0 returned by the administrator" "$T/show.b1"
deliver domain 3
dsns domain "bob@snd.example=r1@held2.example" \
	"bob@snd.example=r2@held2.example" "bob@snd.example=r3@held2.example"
# The held recipients are still there; bounce them, then nothing is left.
check bounce_rest "$P" bounce "$B1" "$B2"
expect_grep bounce_rest_count "bounced 2 recipients" "$T/out"
sink_clear
deliver rest 2
dsns rest "bob@snd.example=k1@held.example" "bob@snd.example=k2@held.example"
expect_eq rest_queue_empty "$(qjson 'len(msgs)')" 0

# ------------------------------------------------------------------
# 3. Bad input: an unknown id among good ones changes nothing (exit 2).
sink_clear
C=$(enq carol@snd.example c1@held.example)
expect_rc unknown_id_rc 2 "$P" bounce "$C" 0000000000Z
expect_grep unknown_id_says "0000000000Z: no such message" "$T/out"
expect_rc bad_id_rc 2 "$P" bounce NOT-AN-ID
expect_rc bounce_all_refused 2 "$P" bounce --all
expect_rc bounce_nothing_rc 2 "$P" bounce
expect_rc bounce_bad_domain_rc 2 "$P" bounce --domain 'bad..domain'
expect_eq unknown_id_unchanged \
	"$(qjson '[(m["sender"], r["address"], r["state"]) for m in msgs for r in m["recipients"]]')" \
	"[('carol@snd.example', 'c1@held.example', 'held')]"
check bounce_c "$P" bounce "$C"
deliver carol 1
dsns carol "carol@snd.example=c1@held.example"

# ------------------------------------------------------------------
# 4. A message from <>: never a DSN to <>; one notice to
# postmaster@myhostname (the default double_bounce_recipient) ...
sink_clear
N=$(enq '<>' n1@held.example)
expect_eq null_sender_queued "$(qjson '[m["sender"] for m in msgs if m["id"] == "'"$N"'"]')" "['']"
check bounce_null "$P" bounce "$N"
expect_eq null_one_notice \
	"$(qjson '[(m["sender"], [r["address"] for r in m["recipients"]]) for m in msgs]')" \
	"[('', ['postmaster@mx.test.example'])]"
deliver null 1
dsns null "postmaster@mx.test.example=n1@held.example/double"
expect_eq null_queue_empty "$(qjson 'len(msgs)')" 0
# ... and none at all with double_bounce_recipient empty.
bconf "double_bounce_recipient="
N2=$(enq '' n2@held.example)
expect_eq null2_sender "$(qjson '[m["sender"] for m in msgs if m["id"] == "'"$N2"'"]')" "['']"
check bounce_null_nodbr "$P" bounce "$N2"
expect_grep bounce_null_nodbr_count "bounced 1 recipient$" "$T/out"
expect_eq null_nodbr_nothing_queued "$(qjson 'len(msgs)')" 0

# ------------------------------------------------------------------
# 5. bounce_rate_limit=2: three messages of one sender bounced, two DSNs;
# stats counts the third as dropped, and show says so while its message
# still has a held recipient.
bconf "bounce_rate_limit=2"
sink_clear
R1=$(enq dave@snd.example x1@held2.example y1@held.example)
R2=$(enq dave@snd.example x2@held2.example y2@held.example)
R3=$(enq dave@snd.example x3@held2.example y3@held.example)
check bounce_rate "$P" bounce --domain held2.example
expect_grep bounce_rate_count "bounced 3 recipients" "$T/out"
expect_eq rate_two_dsns \
	"$(qjson 'sum(1 for m in msgs if m["sender"] == "")')" 2
"$P" stats --json >"$T/stats.json"
expect_eq rate_stats_json "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["bounce_dropped"])' "$T/stats.json")" 1
"$P" stats >"$T/stats.txt"
expect_grep rate_stats_text "^bounces dropped (rate limit): 1\$" "$T/stats.txt"
"$P" show "$R3" >"$T/show.r3" 2>&1
expect_grep rate_show_dropped \
	"^recipient: <x3@held2.example> state=failed .* status=5.0.0 dsn=none (dropped)\$" \
	"$T/show.r3"
expect_eq rate_json_null "$(qjson '[r["dsn"] for m in msgs if m["id"] == "'"$R3"'" for r in m["recipients"]]')" "[None, None]"
"$P" show "$R2" >"$T/show.r2" 2>&1
expect_grep rate_show_sent "^recipient: <x2@held2.example> state=failed .* dsn=[0-9A-Z]\{11\}\$" \
	"$T/show.r2"
deliver rate 2
dsns rate "dave@snd.example=x1@held2.example" "dave@snd.example=x2@held2.example"

# ------------------------------------------------------------------
# 6. With posternd running, `postern bounce` alone gets the DSN sent: it
# wakes the daemon's scheduler, which delivers it (no `postern run`).
check clear_held "$P" delete --domain held.example
expect_eq queue_empty_before_daemon "$(qjson 'len(msgs)')" 0
sink_clear
start_posternd "routes_file=$T/routes" \
	"hold_domains=held.example,held2.example" "min_backoff=1s" \
	"smtp_connect_timeout=2s" || exit 1
E=$(enq erin@snd.example e1@held.example e2@held2.example)
check bounce_daemon "$P" bounce "$E"
expect_grep bounce_daemon_count "bounced 2 recipients" "$T/out"
if until_ok 100 sh -c "[ \$(find '$T/sink' -type f | wc -l) -ge 1 ]"; then
	ok daemon_sent_dsn; else notok daemon_sent_dsn "nothing at the sink"; fi
dsns daemon "erin@snd.example=e1@held.example,e2@held2.example"
queue_empty() { [ "$(qjson 'len(msgs)')" = 0 ]; }
if until_ok 100 queue_empty; then ok daemon_queue_empty; else
	notok daemon_queue_empty "$("$P" queue | head -c 300)"; fi
stop_posternd || notok posternd_stops "still running"
expect_eq posternd_no_sanitizer_report "$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$T/posternd.log")" 0

# 600-metrics: metrics_listen after real traffic, against a real posternd.
#
# Traffic: messages received over SMTP (python smtplib) for ok.example
# (delivered to an smtp-sink), bad.example (a sink that refuses RCPT with
# 5xx: bounced twice, one DSN delivered to ok.example and the other
# dropped by bounce_rate_limit=1), down.example (a
# closed port: deferred), xss.example (a python server whose 451 carries
# markup and quotes: deferred, and its text shown escaped), etrn.example
# (held, then flushed by an ETRN: 253) and site.example (held, then taken
# by its site over ATRN on odmr_listen).
#
# Checked:
#  1. /metrics passes `promtool check metrics`; its queue numbers are
#     `postern stats --json`'s (messages, recipients, per-domain totals,
#     deferred and held); deliveries by status are the log's status= lines;
#     ETRN ok 1, ATRN ok 1, one reversed session, one DSN sent, the
#     messages received and the commit histograms' sum are the messages
#     sent; connections in and out (ok and failed) counted; every held
#     domain has its last-seen series.
#  2. 404 for other paths; 405 for POST; a 32 KiB header (431) or URL
#     (414) is refused and the server goes on; HEAD works.
#  3. Tokens (after a SIGHUP reload): / and /metrics 401 without, 401 with
#     a wrong one, 200 with "Authorization: Bearer" and with ?token=.
#  4. The counters survive kill -9 of the listener and of the metrics
#     process: posternd restarts both and the numbers carry on.
#  5. The status page in headless Chromium (desktop and phone width):
#     every domain and count of `postern stats`, the message and recipient
#     totals, the held sites, the deferral reason escaped (no element made
#     of a peer's text), the SVG plot; screenshots are PNGs of the asked
#     size; without the token the page is the 401.
. "$POSTERN_TOP/tests/integ/lib.sh"

SITE="$POSTERN_TOP/tests/integ/odmr_site.py"
SP=$(free_port)		# ok.example's sink, 127.0.0.2
BP=$(free_port)		# bad.example's sink (5xx to RCPT), 127.0.0.4
DP=$(free_port)		# down.example: nothing listens on 127.0.0.3
XP=$(free_port)		# xss.example's server, 127.0.0.5
OP=$(free_port)		# odmr_listen
MP=$(free_port)		# metrics_listen

smtp-sink -u postern -c "127.0.0.2:$SP" 10 >>"$T/sink.out" 2>&1 &
reap $!
smtp-sink -u postern -f RCPT "127.0.0.4:$BP" 10 >>"$T/bad.out" 2>&1 &
reap $!
cat >"$T/xss.py" <<'EOPY'
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda s: self.wfile.write(s.encode() + b"\r\n")
        w("220 xss.test ESMTP")
        for l in self.rfile:
            v = l[:4].upper()
            if v in (b"EHLO", b"HELO"): w("250 xss.test")
            elif v == b"MAIL": w("250 ok")
            elif v == b"RCPT": w('451 4.3.0 <b id="evil">bold</b> & "q" \'s')
            elif v == b"QUIT": w("221 bye"); return
            else: w("503 no")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.5", int(sys.argv[1])), H).serve_forever()
EOPY
"$PY" "$T/xss.py" "$XP" >"$T/xss.out" 2>&1 &
reap $!
wait_listen "$SP" 127.0.0.2 && wait_listen "$BP" 127.0.0.4 &&
	wait_listen "$XP" 127.0.0.5 || notok peers "a test server did not start"

cat >"$T/routes" <<EOF
ok.example	[127.0.0.2]:$SP
etrn.example	[127.0.0.2]:$SP
bad.example	[127.0.0.4]:$BP
down.example	[127.0.0.3]:$DP
xss.example	[127.0.0.5]:$XP
EOF
printf 'pw1\n' | "$P" passwd site1 site.example >"$T/users"
chmod 644 "$T/routes" "$T/users"
# with_keys CMD ARG... - CMD ARG... and this case's configuration keys.
with_keys() {
	"$@" "users_file=$T/users" "routes_file=$T/routes" \
	    "hold_domains=site.example etrn.example idle.example" \
	    "relay_domains=etrn.example" "odmr_listen=127.0.0.1:$OP" \
	    "metrics_listen=127.0.0.1:$MP" min_backoff=1h max_backoff=2h \
	    workers=2 bounce_rate_limit=1
}
with_keys start_posternd || exit 1
wait_listen "$MP" || notok metrics_listening "nothing on $MP"

# get PATH [curl args] - the body into $T/body, prints the status.
get() {
	_gp=$1
	shift
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@" \
	    "http://127.0.0.1:$MP$_gp"
}
# metric NAME{LABELS} - its value in $T/m.txt (empty if absent).
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/m.txt"
}
# sum_metric PREFIX - the sum of every sample whose name{labels} starts so.
sum_metric() {
	awk -v k="$1" 'index($1, k) == 1 { s += $2 } END { print s + 0 }' \
	    "$T/m.txt"
}
scrape() {
	get /metrics "$@" >"$T/code" && cp "$T/body" "$T/m.txt"
}

# ------------------------------------------------------------------
# Traffic.
cat >"$T/send.py" <<'EOPY'
import smtplib, sys
port, n, rcpt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.test")
for i in range(n):
    s.sendmail("s@ok.example", [rcpt],
               "Subject: metrics %d\r\nFrom: s@ok.example\r\n\r\nbody %d\r\n" % (i, i))
s.quit()
EOPY
send() { "$PY" "$T/send.py" "$SMTP_PORT" "$2" "$1" >>"$T/send.out" 2>&1; }
send a@ok.example 3
send b@bad.example 2
send c@down.example 2
send d@xss.example 1
send e@etrn.example 1
send u@site.example 2
SENT=11
SESSIONS=6

stats_dom() {	# stats_dom DOMAIN - its total in `postern stats --json`
	"$P" stats --json | "$PY" -c "
import json, sys
d = [x['total'] for x in json.load(sys.stdin)['domains'] if x['domain'] == '$1']
print(d[0] if d else 0)"
}
gone_dom() { [ "$(stats_dom "$1")" = 0 ]; }
logged() { [ "$(grep -c "$1" "$T/posternd.log")" -ge "$2" ]; }
poll_for 30 gone_dom ok.example || notok traffic_ok "ok.example still queued"
poll_for 30 gone_dom bad.example || notok traffic_bad "bad.example still queued"
poll_for 30 logged "to=<c@down.example>.*status=deferred" 2 ||
	notok traffic_down "down.example not deferred"
poll_for 30 logged "to=<d@xss.example>.*status=deferred" 1 ||
	notok traffic_xss "xss.example not deferred"
# The DSN of bad.example, to s@ok.example.
poll_for 30 logged "to=<s@ok.example>.*status=sent" 1 ||
	notok traffic_dsn "the DSN was not delivered"

r=$("$PY" - "$SMTP_PORT" <<'EOPY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("site.test")
c, m = s.docmd("ETRN", "etrn.example")
print(c)
s.quit()
EOPY
)
expect_eq etrn_253 "$r" 253
poll_for 30 gone_dom etrn.example || notok traffic_etrn "etrn.example still queued"
"$PY" "$SITE" "$OP" site1 pw1 "$T/site" >"$T/atrn.out" 2>&1
expect_grep atrn_got_two "^got=2" "$T/atrn.out"
poll_for 30 gone_dom site.example || notok traffic_atrn "site.example still queued"
sleep 0.2	# the odmr session's last result is logged as it ends
poll_for 10 logged "odmr\[.*to=<u@site.example>.*status=sent" 2

# ------------------------------------------------------------------
# 1. /metrics
scrape
expect_eq metrics_200 "$(cat "$T/code")" 200
promtool check metrics <"$T/m.txt" >"$T/promtool.out" 2>&1
expect_eq metrics_promtool "$?:$(head -c 300 "$T/promtool.out")" "0:"
"$P" stats --json >"$T/stats.json"
sj() { "$PY" -c "import json; s = json.load(open('$T/stats.json')); print($1)"; }
expect_eq metrics_messages_as_stats "$(metric postern_queue_messages)" \
	"$(sj "s['messages']")"
expect_eq metrics_recipients_as_stats "$(sum_metric postern_queue_recipients)" \
	"$(sj "s['recipients']")"
expect_eq metrics_deferred_as_stats \
	"$(metric 'postern_queue_recipients{state="deferred"}')" \
	"$(sj "sum(d['deferred'] for d in s['domains'])")"
expect_eq metrics_held_as_stats \
	"$(metric 'postern_queue_recipients{state="held"}')" \
	"$(sj "sum(d['held'] for d in s['domains'])")"
want=$(sj "' '.join('%s=%d' % (d['domain'], d['total']) for d in sorted(s['domains'], key=lambda d: d['domain']))")
got=$(sed -n 's/^postern_domain_recipients{domain="\([^"]*\)"} \([0-9]*\)$/\1=\2/p' \
	"$T/m.txt" | grep -v '=0$' | sort | tr '\n' ' ' | sed 's/ $//')
expect_eq metrics_domains_as_stats "$got" "$want"
expect_eq metrics_domains_nonempty "$([ -n "$want" ] && echo yes)" yes
expect_eq metrics_held_idle_domain_zero \
	"$(metric 'postern_domain_recipients{domain="idle.example"}')" 0
for d in site.example etrn.example idle.example; do
	expect_eq "metrics_last_seen_$d" \
	    "$(metric "postern_site_last_seen_timestamp_seconds{domain=\"$d\"}" | grep -c .)" 1
done
for st in sent deferred bounced; do
	expect_eq "metrics_deliveries_${st}_as_log" \
	    "$(sum_metric "postern_deliveries_total{status=\"$st\"")" \
	    "$(grep -c "status=$st (" "$T/posternd.log")"
done
expect_eq metrics_sent_class_2 \
	"$(metric 'postern_deliveries_total{status="sent",class="2"}')" \
	"$(grep -c "dsn=2\..*status=sent (" "$T/posternd.log")"
expect_eq metrics_bounced_class_5 \
	"$(metric 'postern_deliveries_total{status="bounced",class="5"}')" 2
expect_eq metrics_etrn_ok "$(metric 'postern_requests_total{command="ETRN",outcome="ok"}')" 1
expect_eq metrics_atrn_ok "$(metric 'postern_requests_total{command="ATRN",outcome="ok"}')" 1
expect_eq metrics_reversed "$(metric postern_reversed_sessions_total)" 1
expect_eq metrics_dsn_sent "$(metric postern_dsn_sent_total)" 1
expect_eq metrics_dsn_dropped "$(metric postern_dsn_dropped_total)" 1
expect_eq metrics_dsn_dropped_as_stats "$(metric postern_dsn_dropped_total)" \
	"$(sj "s['bounce_dropped']")"
expect_eq metrics_received "$(metric postern_messages_received_total)" "$SENT"
expect_eq metrics_commit_batch_sum "$(metric postern_commit_batch_size_sum)" "$SENT"
expect_eq metrics_commit_seconds_count \
	"$(metric postern_commit_seconds_count)" \
	"$(metric postern_commit_batch_size_count)"
cin=$(metric postern_connections_in_total)
expect_eq metrics_connections_in "$([ "${cin:-0}" -ge $((SESSIONS + 1)) ] && echo yes)" yes
expect_eq metrics_connections_out_ok \
	"$([ "$(metric 'postern_connections_out_total{result="ok"}')" -ge 3 ] && echo yes)" yes
expect_eq metrics_connections_out_failed \
	"$([ "$(metric 'postern_connections_out_total{result="failed"}')" -ge 1 ] && echo yes)" yes

# ------------------------------------------------------------------
# 2. Other paths and methods.
expect_eq metrics_404 "$(get /nothing)" 404
expect_eq metrics_404_sub "$(get /metrics/x)" 404
expect_eq metrics_405_post "$(get /metrics -X POST -d x=1)" 405
# Bounded requests (16 KiB per connection): a 32 KiB header or URL is
# refused, and the server goes on.
big=$(head -c 32768 /dev/zero | tr '\0' a)
expect_eq metrics_big_header_431 "$(get /metrics -H "X-Big: $big")" 431
expect_eq metrics_big_url_414 "$(get "/metrics?$big")" 414
expect_eq metrics_head_200 "$(get /metrics -I)" 200
expect_eq metrics_after_big_200 "$(get /metrics)" 200

# ------------------------------------------------------------------
# 3. Tokens, after a reload.
pid_of() {	# pid_of ROLE - the last one the master started
	sed -n "s/^postern\/master\[$PD_PID\]: started $1, pid \([0-9]*\)$/\1/p" \
	    "$T/posternd.log" | tail -n 1
}
with_keys conf "listen=127.0.0.1:$SMTP_PORT" "status_token=s3cret-page" \
	"metrics_token=s3cret-scrape"
old=$(pid_of metrics)
kill -HUP "$PD_PID"
restarted() { [ "$(pid_of metrics)" != "$old" ] && [ "$(get /)" = 401 ]; }
poll_for 20 restarted || notok token_reload "the metrics process did not restart"
expect_eq page_401_without "$(get /)" 401
expect_grep page_401_says "token" "$T/body"
expect_eq page_401_wrong "$(get / -H 'Authorization: Bearer s3cret-pagX')" 401
expect_eq page_401_other_token "$(get '/?token=s3cret-scrape')" 401
expect_eq page_200_bearer "$(get / -H 'Authorization: Bearer s3cret-page')" 200
expect_eq page_200_query "$(get '/?token=s3cret-page')" 200
expect_eq metrics_401_without "$(get /metrics)" 401
expect_eq metrics_401_wrong "$(get /metrics -H 'Authorization: Bearer s3cret')" 401
expect_eq metrics_200_bearer \
	"$(get /metrics -H 'Authorization: Bearer s3cret-scrape')" 200
expect_eq metrics_200_query "$(get '/metrics?token=s3cret-scrape')" 200
expect_eq metrics_404_with_token \
	"$(get /x -H 'Authorization: Bearer s3cret-scrape')" 404
AUTH="Authorization: Bearer s3cret-scrape"

# ------------------------------------------------------------------
# 4. Counters survive kill -9 of the listener and the metrics process.
scrape -H "$AUTH"
before_rcv=$(metric postern_messages_received_total)
before_in=$(metric postern_connections_in_total)
before_sent=$(sum_metric 'postern_deliveries_total{status="sent"')
old_smtpd=$(pid_of smtpd)
old_metrics=$(pid_of metrics)
kill -9 "$old_smtpd" "$old_metrics"
back() {
	[ "$(pid_of smtpd)" != "$old_smtpd" ] &&
	    [ "$(pid_of metrics)" != "$old_metrics" ] &&
	    listening "$SMTP_PORT" && [ "$(get /metrics -H "$AUTH")" = 200 ]
}
poll_for 20 back || notok kill9_restart "smtpd or metrics not restarted"
send a@ok.example 1
scrape -H "$AUTH"
expect_eq kill9_received_carries_on "$(metric postern_messages_received_total)" \
	$((before_rcv + 1))
expect_eq kill9_connections_carry_on \
	"$([ "$(metric postern_connections_in_total)" -gt "$before_in" ] && echo yes)" yes
poll_for 30 gone_dom ok.example
scrape -H "$AUTH"
expect_eq kill9_sent_carries_on \
	"$(sum_metric 'postern_deliveries_total{status="sent"')" $((before_sent + 1))

# ------------------------------------------------------------------
# 5. The status page in headless Chromium.
"$P" stats --json >"$T/stats.json"
URL="http://127.0.0.1:$MP/?token=s3cret-page"
chrome() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu \
	    --user-data-dir="$T/chrome" --no-first-run "$@" 2>>"$T/chrome.err"
}
chrome --dump-dom "$URL" >"$T/dom.html"
sj "'\n'.join('<tr><td>%s</td><td>%d</td>' % (d['domain'], d['total']) for d in s['domains'])" \
	>"$T/rows"
miss=""
while read -r row; do
	grep -qF "$row" "$T/dom.html" || miss="$miss $row"
done <"$T/rows"
expect_eq page_domains_as_stats "${miss:-none}" none
expect_eq page_has_rows "$(grep -c . "$T/rows" | awk '$1 > 0 { print "yes" }')" yes
expect_grep page_messages_as_stats \
	"<div id=\"messages\">messages<b>$(sj "s['messages']")</b>" "$T/dom.html"
expect_grep page_recipients_as_stats \
	"<div id=\"recipients\">recipients<b>$(sj "s['recipients']")</b>" "$T/dom.html"
expect_grep page_total_row "<tr><th>TOTAL</th><th>$(sj "s['recipients']")</th>" \
	"$T/dom.html"
expect_grep page_held_site "<td>idle.example</td><td>0</td>" "$T/dom.html"
expect_grep page_reason_escaped "&lt;b id=\"evil\"&gt;bold&lt;/b&gt; &amp;" "$T/dom.html"
expect_eq page_no_injected_element "$(grep -c '<b id="evil">' "$T/dom.html")" 0
expect_grep page_svg_plot '<svg id="plot"' "$T/dom.html"
expect_grep page_viewport 'name="viewport"' "$T/dom.html"
for size in 1280,900 390,844; do
	rm -f "$T/shot.png"
	chrome --screenshot="$T/shot.png" --window-size="$size" \
	    --hide-scrollbars "$URL" >/dev/null
	dims=$("$PY" -c "
import struct, sys
b = open('$T/shot.png', 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n'
w, h = struct.unpack('>II', b[16:24])
print('%d,%d' % (w, h))" 2>&1)
	expect_eq "page_screenshot_$size" "$dims" "$size"
	cp "$T/shot.png" "/tmp/postern-600-${size%,*}.png" 2>/dev/null
done
chrome --dump-dom "http://127.0.0.1:$MP/" >"$T/dom401.html"
expect_grep page_chromium_401 "a token is needed" "$T/dom401.html"
expect_eq page_chromium_401_no_data "$(grep -c 'down.example' "$T/dom401.html")" 0

stop_posternd || notok stop "posternd did not stop"

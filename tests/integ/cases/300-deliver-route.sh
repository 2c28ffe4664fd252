# 300-deliver-route: the delivery side end to end - the scheduler, the
# workers, routing and the ESMTP client - with real receivers.
#
# Mail is queued with `postern enqueue` (or SMTP into a posternd) and
# delivered by `postern run` (or posternd's scheduler). DNS is a dnsmasq on
# 127.0.0.1 serving d.example (--local: unknown names are NXDOMAIN; every
# query is logged, so "no DNS" can be checked). Receivers: Postfix
# smtp-sink on 127.0.0.2 (mx1), 127.0.0.3 (mx2, and "me", our own name),
# 127.0.0.6 (A records), 127.0.0.7 (450 to every RCPT), 127.0.0.5 (the
# return path's domain src.example, by routes_file: where the DSNs of the
# mail that fails go), all on smtp_port, and on 127.0.0.4 on another port
# (the routes_file target); and a second
# posternd "R" (certificate for relay.d.example and 127.0.0.1, a user,
# mynetworks elsewhere, ".example hold") as relayhost and STARTTLS peer,
# whose queue is inspected. Each sender setting has its own config and
# queue ($T/NAME.conf, $T/NAME.q).
#
# Checked: MX order and fallback within a run, the implicit MX, null MX,
# NXDOMAIN, backup-MX self-exclusion and the loop (relay domain: bounced;
# held domain: held), routes_file [host]:port without DNS, .parent, hold
# and `run --domain`, flush --dry-run, relayhost with AUTH over verified
# STARTTLS (right and wrong password), TLS may/encrypt (no STARTTLS, wrong
# name, untrusted, right; per-route tls=), posternd's scheduler (SMTP in,
# hold route, flush wake-up, equal-preference spread over 40 messages),
# expiry, that `run --domain` tries each recipient once, and that each
# failed message sends one DSN, in the same run, to its return path.
. "$POSTERN_TOP/tests/integ/lib.sh"
. "$POSTERN_TOP/tests/integ/sconf.sh"

# A version manager's python3 shim can take a second to start: run the
# interpreter itself (lib.sh's qjson, free_port, wait_port use python3).
py=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	PATH="${py%/*}:$PATH"

# Ports: free_port, wait_listen PORT IP (tests/common.sh, through lib.sh).

# sink NAME IP PORT [OPTION...] - smtp-sink on IP:PORT dumping each
# message into $T/NAME/; its counters in $T/NAME.out, its PID in
# $T/NAME.pid.
sink() {
	sn=$1
	sip=$2
	sport=$3
	shift 3
	mkdir -p "$T/$sn"
	chmod 777 "$T/$sn"
	smtp-sink -u postern -c -d "$T/$sn/%H%M%S." "$@" "$sip:$sport" 10 \
		>>"$T/$sn.out" 2>&1 &
	echo $! >"$T/$sn.pid"
	reap $!
	wait_listen "$sport" "$sip" ||
		notok "sink_$sn" "smtp-sink on $sip:$sport did not start"
}
# sink_stop NAME - stop it by PID.
sink_stop() {
	kill "$(cat "$T/$1.pid")" 2>/dev/null
	wait "$(cat "$T/$1.pid")" 2>/dev/null
}
# got NAME ADDR - how many messages sink NAME has for recipient ADDR.
got() {
	grep -l -x -F "X-Rcpt-Args: <$2>" "$T/$1"/* 2>/dev/null | wc -l | tr -d ' '
}
has() { [ "$(got "$1" "$2")" -ge 1 ]; }
inlog() { grep -q -F -- "$2" "$T/$1"; }
# dsn_for ADDR - the DSN files at sink sb (to sender@src.example, from <>)
# that report ADDR (a Final-Recipient line), one a line.
dsn_for() {
	grep -l -x -F "X-Rcpt-Args: <sender@src.example>" "$T"/sb/* 2>/dev/null |
		xargs -r grep -l '^X-Mail-Args: <>' |
		xargs -r grep -l -i "^Final-Recipient: rfc822; *$1"
}
# dsn_status ADDR - the Status: of ADDR's block in its DSN(s), one a line.
dsn_status() {
	dsn_for "$1" | xargs -r awk -v a="$1" '
		{ sub(/\r$/, "") }
		tolower($0) ~ "^final-recipient: rfc822; *" a "$" { mine = 1; next }
		/^$/ { mine = 0 }
		mine && /^Status: / { print $2 }'
}

# ------------------------------------------------------------------
# DNS.
SP=$(free_port)		# the sinks' port: smtp_port for MX delivery
RP=$(free_port)		# the routes_file target's port (127.0.0.4)
PR=$(free_port)		# posternd R (relayhost, STARTTLS peer)
DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --port="$DNS_PORT" --listen-address=127.0.0.1 \
	--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
	--pid-file= --local=/d.example/ --log-queries --log-facility=- \
	--host-record=mx1.d.example,127.0.0.2 \
	--host-record=mx2.d.example,127.0.0.3 \
	--host-record=me.d.example,127.0.0.3 \
	--host-record=relay.d.example,127.0.0.1 \
	--host-record=wrong.d.example,127.0.0.1 \
	--mx-host=ord.d.example,mx2.d.example,20 \
	--mx-host=ord.d.example,mx1.d.example,10 \
	--host-record=ord.d.example,127.0.0.6 \
	--mx-host=ord2.d.example,mx1.d.example,10 \
	--mx-host=ord2.d.example,mx2.d.example,20 \
	--host-record=ord2.d.example,127.0.0.6 \
	--mx-host=eq.d.example,mx1.d.example,10 \
	--mx-host=eq.d.example,mx2.d.example,10 \
	--host-record=aonly.d.example,127.0.0.6 \
	--dns-rr=null.d.example,15,000000 \
	--host-record=null.d.example,127.0.0.6 \
	--mx-host=bk.d.example,mx1.d.example,10 \
	--mx-host=bk.d.example,me.d.example,20 \
	--mx-host=bk2.d.example,mx1.d.example,10 \
	--mx-host=bk2.d.example,me.d.example,20 \
	--mx-host=loop.d.example,me.d.example,10 \
	--mx-host=loop.d.example,mx2.d.example,20 \
	--mx-host=held.d.example,mx1.d.example,10 \
	--mx-host=site.d.example,mx1.d.example,10 \
	--mx-host=dn.d.example,mx1.d.example,10 \
	--host-record=mx7.d.example,127.0.0.7 \
	--mx-host=tf.d.example,mx7.d.example,10 \
	>"$T/dnsmasq.log" 2>&1 &
reap $!
if ! wait_dns "$DNS_PORT"; then
	notok dnsmasq_start "$(head -c 600 "$T/dnsmasq.log")"
	exit 1
fi

# Receivers: mx1 (127.0.0.2), mx2 and me (127.0.0.3), the A records of
# aonly/ord/null (127.0.0.6), the routes_file target (127.0.0.4:RP).
sink s2 127.0.0.2 "$SP"
sink s3 127.0.0.3 "$SP"
sink s6 127.0.0.6 "$SP"
sink s4 127.0.0.4 "$RP"
sink s7 127.0.0.7 "$SP" -r RCPT		# 450 4.3.0 to every RCPT
sink sb 127.0.0.5 "$SP"			# DSNs to sender@src.example

cat >"$T/routes" <<EOF
# routes for 300-deliver-route
routed.example		[127.0.0.4]:$RP
.sub.example		[127.0.0.4]:$RP
held.d.example		hold
src.example		[127.0.0.5]:$SP
EOF
chmod 644 "$T/routes"

# enq CONF RCPT... - queue a small message; its id on stdout.
enq() {
	c=$1
	shift
	printf 'Subject: deliver-route\n\nhello %s\n' "$*" |
		"$P" -c "$T/$c.conf" enqueue -f sender@src.example "$@"
}
# prun CONF OUT [ARGS] - `postern run` (bounded): summary in $T/OUT.out,
# delivery log in $T/OUT.log, exit status in $T/OUT.rc (124: it did
# not end within $RUN_TIMEOUT seconds, 60 by default).
prun() {
	c=$1
	o=$2
	shift 2
	timeout "${RUN_TIMEOUT:-60}" "$P" -c "$T/$c.conf" run "$@" \
		>"$T/$o.out" 2>"$T/$o.log"
	echo $? >"$T/$o.rc"
	cat "$T/$o.log" >>"$T/all-runs.log"
}
# summary OUT - "N delivered, N deferred, N failed, N held".
summary() { sed -n 's/^postern run: //p' "$T/$1.out"; }
# dline, expect_line: sconf.sh.
# qfield CONF ADDR FIELD - a field of the recipient in CONF's queue
# (state, attempts, last_reply), or "absent".
qfield() {
	"$P" -c "$T/$1.conf" queue --json | "$PY" -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        for r in json.loads(l)["recipients"]:
            if r["address"] == sys.argv[1]:
                print(r[sys.argv[2]])
                sys.exit(0)
print("absent")' "$2" "$3"
}
# qstate CONF ADDR - the recipient's state, or "absent".
qstate() { qfield "$1" "$2" state; }

# ------------------------------------------------------------------
# MX order, the implicit MX, null MX, NXDOMAIN, backup MX, the loop and
# routes_file, all in one run (sender config "m").
sconf m "routes_file=$T/routes" relay_domains=loop.d.example
# The same, but loop.d.example is held for its site.
sconf lh "routes_file=$T/routes" hold_domains=loop.d.example
enq m o1@ord.d.example >/dev/null
enq m a1@aonly.d.example >/dev/null
enq m n1@null.d.example >/dev/null
enq m x1@nope.d.example >/dev/null
enq m b1@bk.d.example >/dev/null
enq m l1@loop.d.example >/dev/null
enq m r1@routed.example >/dev/null
enq m r2@a.sub.example r3@b.c.sub.example >/dev/null
enq m h1@held.d.example >/dev/null
prun m m1
# The 3 failed are n1, x1 and l1 (below). Each is the only recipient of
# its message, so each message sends one DSN to sender@src.example, which
# routes_file sends to sink sb; the same run delivers them: 6 delivered
# (o1, a1, b1, r1, r2, r3) + 3 DSNs = 9, and none deferred.
expect_eq m_run_summary "$(summary m1)" "9 delivered, 0 deferred, 3 failed, 1 held"
expect_eq m_run_exit "$(cat "$T/m1.rc")" 1
expect_eq m_dsns_sent "$(grep -c 'to=<sender@src\.example>, relay=127\.0\.0\.5\[127\.0\.0\.5\]:'"$SP"', .*status=sent' "$T/m1.log") $(grep -c ': sender non-delivery notification: ' "$T/m1.log")" "3 3"
expect_eq m_dsns_at_sink "$(got sb sender@src.example)" 3
expect_eq m_dsn_each_once "$(dsn_for n1@null.d.example | wc -l) $(dsn_for x1@nope.d.example | wc -l) $(dsn_for l1@loop.d.example | wc -l)" "1 1 1"
expect_eq m_dsn_status "$(dsn_status n1@null.d.example) $(dsn_status x1@nope.d.example) $(dsn_status l1@loop.d.example)" "5.1.10 5.1.2 5.4.6"
expect_eq m_dsn_no_double_bounce "$(grep -c 'double bounce' "$T/m1.log")" 0

# MX order: the pref 10 host (not pref 20, not the domain's own A).
expect_line mx_order_pref10 m1 o1@ord.d.example \
	"relay=mx1\.d\.example\[127\.0\.0\.2\]:$SP, .*attempts=1, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok"
expect_eq mx_order_sink10 "$(got s2 o1@ord.d.example)" 1
expect_eq mx_order_not20 "$(got s3 o1@ord.d.example)" 0
expect_eq mx_order_not_a "$(got s6 o1@ord.d.example)" 0
expect_eq mx_order_delivered_gone "$(qstate m o1@ord.d.example)" absent

# No MX: the domain's own A.
expect_line no_mx_a_fallback m1 a1@aonly.d.example \
	"relay=aonly\.d\.example\[127\.0\.0\.6\]:$SP, .*dsn=2\.0\.0, status=sent"
expect_eq no_mx_a_sink "$(got s6 a1@aonly.d.example)" 1

# Null MX: 5.1.10, bounced, nothing sent (not to its A either).
expect_line null_mx_bounced m1 n1@null.d.example \
	"relay=none, .*dsn=5\.1\.10, status=bounced \(domain null\.d\.example accepts no mail \(null MX\)\)"
expect_eq null_mx_nothing_sent "$(got s6 n1@null.d.example)$(got s2 n1@null.d.example)$(got s3 n1@null.d.example)" 000
expect_line nxdomain_bounced m1 x1@nope.d.example \
	"relay=none, .*dsn=5\.1\.2, status=bounced \(domain nope\.d\.example not found\)"
n=$(qstate m n1@null.d.example)
if [ "$n" = failed ] || [ "$n" = absent ]; then ok null_mx_final; else
	notok null_mx_final "state $n"; fi

# Backup MX: myhostname is the pref 20 host, so pref 10 only.
expect_line backup_mx_pref10 m1 b1@bk.d.example \
	"relay=mx1\.d\.example\[127\.0\.0\.2\]:$SP, .*status=sent"
expect_eq backup_mx_sink10 "$(got s2 b1@bk.d.example)" 1
expect_eq backup_mx_not_self "$(got s3 b1@bk.d.example)" 0
# We are the best MX of a relay domain: 5.4.6, nothing sent to pref 20.
expect_line best_mx_loop m1 l1@loop.d.example \
	"relay=none, .*dsn=5\.4\.6, status=bounced \(mail for loop\.d\.example loops back to myself\)"
expect_eq best_mx_loop_nothing_sent "$(got s3 l1@loop.d.example)" 0

# routes_file: [127.0.0.4]:RP without any DNS; .sub.example for its
# subdomains; "hold" keeps the mail, with no delivery line.
expect_line route_host m1 r1@routed.example \
	"relay=127\.0\.0\.4\[127\.0\.0\.4\]:$RP, .*dsn=2\.0\.0, status=sent"
expect_eq route_host_sink "$(got s4 r1@routed.example)" 1
expect_line route_parent m1 r2@a.sub.example \
	"relay=127\.0\.0\.4\[127\.0\.0\.4\]:$RP, .*status=sent"
expect_line route_parent_deeper m1 r3@b.c.sub.example \
	"relay=127\.0\.0\.4\[127\.0\.0\.4\]:$RP, .*status=sent"
expect_eq route_parent_one_message "$(grep -l -F 'X-Rcpt-Args: <r2@a.sub.example>' "$T"/s4/* | xargs grep -c -F 'X-Rcpt-Args: <r3@b.c.sub.example>')" 1
expect_eq route_no_dns "$(grep -c -E 'query\[[A-Z]+\] [a-z.]*(routed\.example|sub\.example) ' "$T/dnsmasq.log")" 0
expect_grep dns_log_works 'query\[MX\] ord\.d\.example from 127\.0\.0\.1' "$T/dnsmasq.log"
expect_eq route_hold_no_line "$(dline m1 h1@held.d.example)" ""
expect_eq route_hold_state "$(qstate m h1@held.d.example)" held
expect_eq route_hold_nothing_sent "$(got s2 h1@held.d.example)" 0

# A second run: nothing is due (the held stay held, no line at all).
prun m m2
expect_eq m_rerun_summary "$(summary m2)" "0 delivered, 0 deferred, 0 failed, 0 held"
expect_eq m_rerun_exit "$(cat "$T/m2.rc")" 0
expect_eq route_hold_still "$(qstate m h1@held.d.example)" held

# flush --dry-run: where each recipient of the domain would go; nothing
# changes (the queue, the sinks).
"$P" -c "$T/m.conf" queue --json >"$T/before.json"
"$P" -c "$T/m.conf" flush --dry-run --domain held.d.example >"$T/dry1" 2>&1
expect_eq dry_run_exit "$?" 0
expect_grep dry_run_hold_to_mx "^[0-9A-Z]\{11\} <h1@held\.d\.example> held via mx:held\.d\.example -> mx1\.d\.example\[127\.0\.0\.2\]\$" "$T/dry1"
expect_grep dry_run_count '^postern flush --dry-run: 1 recipient would be made due$' "$T/dry1"
enq m f1@ord.d.example f2@routed.example f3@nope.d.example >/dev/null
"$P" -c "$T/m.conf" queue --json >"$T/before.json"
"$P" -c "$T/m.conf" flush --dry-run --domain ord.d.example >"$T/dry2" 2>&1
expect_eq dry_run_mx_addrs "$(grep -F '<f1@ord.d.example>' "$T/dry2" | cut -d' ' -f2-)" \
	"<f1@ord.d.example> queued via mx:ord.d.example -> mx1.d.example[127.0.0.2] mx2.d.example[127.0.0.3]"
expect_eq dry_run_only_domain "$(grep -c '^[0-9A-Z]\{11\} <' "$T/dry2")" 1
"$P" -c "$T/m.conf" flush --dry-run --domain routed.example >"$T/dry3" 2>&1
expect_eq dry_run_route "$(grep -F '<f2@routed.example>' "$T/dry3" | cut -d' ' -f2-)" \
	"<f2@routed.example> queued via host:[127.0.0.4]:$RP -> 127.0.0.4[127.0.0.4]"
"$P" -c "$T/m.conf" flush --dry-run --domain nope.d.example >"$T/dry4" 2>&1
expect_eq dry_run_nxdomain "$(grep -F '<f3@nope.d.example>' "$T/dry4" | cut -d' ' -f2-)" \
	"<f3@nope.d.example> queued via mx:nope.d.example -> 5.1.2 domain nope.d.example not found"
"$P" -c "$T/m.conf" queue --json >"$T/after.json"
if cmp -s "$T/before.json" "$T/after.json"; then ok dry_run_changes_nothing; else
	notok dry_run_changes_nothing "$(diff "$T/before.json" "$T/after.json" | head -c 600)"; fi
expect_eq dry_run_sent_nothing "$(got s2 f1@ord.d.example)$(got s2 h1@held.d.example)$(got s4 f2@routed.example)" 000
"$P" -c "$T/m.conf" stats >"$T/stats" 2>&1
expect_eq dry_run_no_flush_request "$(grep -c '^flush pending:' "$T/stats")" 0

# The hold route until `postern run --domain`: to the domain's MX.
prun m m3 --domain held.d.example
expect_eq run_domain_summary "$(summary m3)" "1 delivered, 0 deferred, 0 failed, 0 held"
expect_line run_domain_to_mx m3 h1@held.d.example \
	"relay=mx1\.d\.example\[127\.0\.0\.2\]:$SP, .*dsn=2\.0\.0, status=sent"
expect_eq run_domain_sink "$(got s2 h1@held.d.example)" 1
expect_eq run_domain_only_it "$(grep -c 'to=<' "$T/m3.log")" 1
# The same domain held for its site (hold_domains): the timer never tries
# it; flushed, its loop (5.4.6) sends it back to waiting for its site,
# never bounced, nothing sent. The run ends after that one try (bounded
# here: 10 s).
enq lh lh1@loop.d.example >/dev/null
expect_eq hold_domain_queued_held "$(qstate lh lh1@loop.d.example)" held
prun lh lh0
expect_eq hold_domain_not_tried "$(summary lh0) $(dline lh0 lh1@loop.d.example)" \
	"0 delivered, 0 deferred, 0 failed, 0 held "
RUN_TIMEOUT=10 prun lh m4 --domain loop.d.example
expect_eq hold_loop_run_ends "$(cat "$T/m4.rc")" 0
expect_eq hold_loop_summary "$(summary m4)" "0 delivered, 0 deferred, 0 failed, 1 held"
expect_line hold_loop_line m4 lh1@loop.d.example \
	"relay=none, .*dsn=5\.4\.6, status=deferred \(mail for loop\.d\.example loops back to myself\)"
expect_eq hold_loop_one_try "$(grep -c 'to=<lh1@loop' "$T/m4.log") $(qfield lh lh1@loop.d.example attempts)" "1 1"
expect_eq hold_loop_state "$(qstate lh lh1@loop.d.example)" held
expect_eq hold_loop_nothing_sent "$(got s3 lh1@loop.d.example)" 0

# ------------------------------------------------------------------
# posternd R: STARTTLS (a certificate for relay.d.example and 127.0.0.1),
# AUTH for site1; 127.0.0.1 is not in its mynetworks, so only its
# relay_domains are taken without AUTH; everything stays held there.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/relay.key" \
	-out "$T/relay.crt" -days 2 -subj "/CN=relay.d.example" \
	-addext "subjectAltName=DNS:relay.d.example,IP:127.0.0.1" >/dev/null 2>&1
chmod 644 "$T/relay.key" "$T/relay.crt"
make_cert other relay.d.example
pw='site one pw'
printf '%s\n' "$pw" | "$P" passwd site1 >"$T/users"
chmod 644 "$T/users"
echo '.example hold' >"$T/r.routes"
chmod 644 "$T/r.routes"
cat >"$T/r.conf" <<EOF
queue_dir = $T/r.q
myhostname = relay.d.example
listen = 127.0.0.1:$PR
odmr_listen =
mynetworks = 127.0.0.254/32
relay_domains = tls.example wrongname.example untrusted.example maytls.example nonetls.example
routes_file = $T/r.routes
tls_cert_file = $T/relay.crt
tls_key_file = $T/relay.key
users_file = $T/users
workers = 1
EOF
chmod 644 "$T/r.conf"
"$POSTERN_BIN/posternd" -c "$T/r.conf" -f >>"$T/r.log" 2>&1 &
R_PID=$!
reap "$R_PID"
if ! wait_port "$PR"; then
	notok r_start "$(tail -c 600 "$T/r.log")"
	exit 1
fi
# rid OUT ADDR - the queue id R gave (from "queued as" in our log line).
rid() { dline "$1" "$2" | sed -n 's/.*Ok: queued as \([0-9A-Z]\{11\}\).*/\1/p'; }
# rstate ADDR - the recipient's state in R's queue.
rstate() { qstate r "$1"; }

# relayhost with AUTH over STARTTLS, verified against R's certificate.
printf 'site1:%s\n' "$pw" >"$T/rh.auth"
printf 'site1:not the password\n' >"$T/rhbad.auth"
chmod 644 "$T/rh.auth" "$T/rhbad.auth"
sconf rh "relayhost=[127.0.0.1]:$PR" "relayhost_auth_file=$T/rh.auth" \
	smtp_tls=encrypt "tls_ca_file=$T/relay.crt"
enq rh rh1@far.example >/dev/null
prun rh rh1
expect_eq relayhost_summary "$(summary rh1)" "1 delivered, 0 deferred, 0 failed, 0 held"
expect_line relayhost_sent rh1 rh1@far.example \
	"relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PR, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as "
id=$(rid rh1 rh1@far.example)
expect_eq relayhost_in_r_queue "$(rstate rh1@far.example)" held
"$P" -c "$T/r.conf" show "$id" >"$T/rshow1" 2>&1
expect_grep relayhost_auth_sender '(Authenticated sender: site1)' "$T/rshow1"
expect_grep relayhost_esmtpsa 'with ESMTPSA' "$T/rshow1"
poll_for 5 inlog r.log "$id: client="
expect_grep relayhost_r_log "$id: client=me\.d\.example\[127\.0\.0\.1\], .*tls=TLSv1\.[23].*auth=site1" "$T/r.log"
expect_eq relayhost_no_dns "$(grep -c 'far\.example' "$T/dnsmasq.log")" 0
# A wrong password: deferred (4.7.8), not bounced; nothing at R.
sconf rhbad "relayhost=[127.0.0.1]:$PR" "relayhost_auth_file=$T/rhbad.auth" \
	smtp_tls=encrypt "tls_ca_file=$T/relay.crt"
enq rhbad rh2@far.example >/dev/null
prun rhbad rh2
expect_eq relayhost_badpw_summary "$(summary rh2)" "0 delivered, 1 deferred, 0 failed, 0 held"
expect_eq relayhost_badpw_exit "$(cat "$T/rh2.rc")" 1
expect_line relayhost_badpw_deferred rh2 rh2@far.example \
	"relay=none, .*attempts=1, dsn=4\.7\.8, status=deferred \(SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\]:$PR said: 535 5\.7\.8"
expect_eq relayhost_badpw_state "$(qstate rhbad rh2@far.example)" deferred
expect_eq relayhost_badpw_not_at_r "$(rstate rh2@far.example)" absent

# TLS: may to smtp-sink (no STARTTLS): in the clear; may to R: TLS
# without verification; encrypt to smtp-sink: 4.7.5; encrypt to R under a
# name its certificate lacks, or with another CA: 4.7.5, nothing sent;
# encrypt with the right CA and name: sent, ESMTPS at R.
cat >"$T/tls.routes" <<EOF
tls.example		[relay.d.example]:$PR
wrongname.example	[wrong.d.example]:$PR
untrusted.example	[relay.d.example]:$PR
maytls.example		[wrong.d.example]:$PR	tls=may
nonetls.example		[relay.d.example]:$PR	tls=none
EOF
chmod 644 "$T/tls.routes"
sconf may smtp_tls=may "routes_file=$T/tls.routes"
enq may t1@ord.d.example >/dev/null
enq may t2@tls.example >/dev/null
prun may may
expect_eq tls_may_summary "$(summary may)" "2 delivered, 0 deferred, 0 failed, 0 held"
expect_line tls_may_clear may t1@ord.d.example \
	"relay=mx1\.d\.example\[127\.0\.0\.2\]:$SP, .*status=sent"
expect_line tls_may_clear_delays may t1@ord.d.example \
	"delays=[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/0\.000/[0-9]+\.[0-9]{3}, "
expect_eq tls_may_sink "$(got s2 t1@ord.d.example)" 1
f=$(grep -l -x -F 'X-Rcpt-Args: <t1@ord.d.example>' "$T"/s2/* | head -n 1)
expect_grep tls_may_helo '^X-Helo-Args: me\.d\.example$' "${f:-/dev/null}"
expect_line tls_may_r may t2@tls.example \
	"relay=relay\.d\.example\[127\.0\.0\.1\]:$PR, .*status=sent"
id=$(rid may t2@tls.example)
"$P" -c "$T/r.conf" show "$id" >"$T/rshow2" 2>&1
expect_grep tls_may_r_esmtps 'with ESMTPS' "$T/rshow2"

sconf enc smtp_tls=encrypt "tls_ca_file=$T/relay.crt" \
	"routes_file=$T/tls.routes"
enq enc t3@ord.d.example >/dev/null
enq enc t4@wrongname.example >/dev/null
enq enc t5@tls.example >/dev/null
prun enc enc
expect_eq tls_enc_summary "$(summary enc)" "1 delivered, 2 deferred, 0 failed, 0 held"
expect_line tls_enc_not_offered enc t3@ord.d.example \
	"relay=none, .*dsn=4\.7\.5, status=deferred \(TLS is required, but was not offered by host mx[12]\.d\.example\[127\.0\.0\.[23]\]:$SP\)"
expect_eq tls_enc_not_offered_state "$(qstate enc t3@ord.d.example)" deferred
expect_eq tls_enc_not_offered_nothing "$(got s2 t3@ord.d.example)$(got s3 t3@ord.d.example)" 00
expect_line tls_enc_wrong_name enc t4@wrongname.example \
	"relay=none, .*dsn=4\.7\.5, status=deferred \(server certificate verification failed for wrong\.d\.example\[127\.0\.0\.1\]:$PR: [Hh]ostname mismatch\)"
expect_eq tls_enc_wrong_name_state "$(qstate enc t4@wrongname.example)" deferred
expect_eq tls_enc_wrong_name_not_at_r "$(rstate t4@wrongname.example)" absent
expect_line tls_enc_ok enc t5@tls.example \
	"relay=relay\.d\.example\[127\.0\.0\.1\]:$PR, .*dsn=2\.0\.0, status=sent"
# delays= queue/connect/tls/transfer: this message opened the connection,
# so its handshake is in the tls part; the parts add up to delay=.
delays_check() {
	dline "$1" "$2" | sed -n 's/.* delay=\([0-9.]*\), delays=\([0-9.]*\)\/\([0-9.]*\)\/\([0-9.]*\)\/\([0-9.]*\),.*/\1 \2 \3 \4 \5/p' |
	    awk -v want="$3" '{ sum = $2 + $3 + $4 + $5; d = sum - $1
		tls = ($4 > 0) ? "tls" : "notls"
		print (d < 0.06 && d > -0.06 && tls == want) ? "ok" : $0 }'
}
expect_eq tls_enc_delays "$(delays_check enc t5@tls.example tls)" ok
id=$(rid enc t5@tls.example)
"$P" -c "$T/r.conf" show "$id" >"$T/rshow3" 2>&1
expect_grep tls_enc_r_esmtps 'with ESMTPS' "$T/rshow3"
poll_for 5 inlog r.log "$id: client="
expect_grep tls_enc_r_tls "$id: client=me\.d\.example\[127\.0\.0\.1\], .*tls=TLSv1\.[23]" "$T/r.log"

# The route's own tls= over smtp_tls = encrypt, each alone in its run:
# tls=may under a name the certificate lacks (nothing checked); tls=none
# (no STARTTLS: ESMTP at R).
enq enc t6@maytls.example >/dev/null
prun enc encmay
expect_line tls_route_may encmay t6@maytls.example \
	"relay=wrong\.d\.example\[127\.0\.0\.1\]:$PR, .*status=sent"
enq enc t8@nonetls.example >/dev/null
prun enc encnone
expect_line tls_route_none encnone t8@nonetls.example \
	"relay=relay\.d\.example\[127\.0\.0\.1\]:$PR, .*status=sent"
id=$(rid encnone t8@nonetls.example)
"$P" -c "$T/r.conf" show "$id" >"$T/rshow4" 2>&1
expect_grep tls_route_none_esmtp 'with ESMTP\($\|[^SA]\)' "$T/rshow4"
poll_for 5 inlog r.log "$id: client="
expect_grep tls_route_none_r_log "$id: client=me\.d\.example\[127\.0\.0\.1\], .*tls=none" "$T/r.log"
# Two domains routed to the same host with different policies, in one
# run: each keeps its own. The tls=none one comes first; the encrypt one
# after it must not ride its clear-text connection.
enq enc m1@nonetls.example >/dev/null
enq enc m2@tls.example >/dev/null
prun enc encmix
expect_eq tls_mixed_summary "$(summary encmix)" "2 delivered, 0 deferred, 0 failed, 0 held"
id=$(rid encmix m2@tls.example)
"$P" -c "$T/r.conf" show "$id" >"$T/rshow5" 2>&1
expect_grep tls_mixed_encrypt_kept 'with ESMTPS' "$T/rshow5"
id=$(rid encmix m1@nonetls.example)
"$P" -c "$T/r.conf" show "$id" >"$T/rshow6" 2>&1
expect_grep tls_mixed_none_kept 'with ESMTP\($\|[^SA]\)' "$T/rshow6"

sconf untr smtp_tls=encrypt "tls_ca_file=$T/other.crt" \
	"routes_file=$T/tls.routes"
enq untr t7@untrusted.example >/dev/null
prun untr untr
expect_eq tls_untrusted_summary "$(summary untr)" "0 delivered, 1 deferred, 0 failed, 0 held"
expect_line tls_untrusted_line untr t7@untrusted.example \
	"dsn=4\.7\.5, status=deferred \(server certificate verification failed for relay\.d\.example\[127\.0\.0\.1\]:$PR"
expect_eq tls_untrusted_not_at_r "$(rstate t7@untrusted.example)" absent

# ------------------------------------------------------------------
# posternd's own scheduler as the sender: mail taken by SMTP goes to its
# MX; the hold route keeps a recipient until `postern flush --domain`
# wakes the daemon, which sends it to the domain's MX.
PD=$(free_port)
sconf pd "listen=127.0.0.1:$PD" "routes_file=$T/routes" \
	connection_reuse_time=0s
"$POSTERN_BIN/posternd" -c "$T/pd.conf" -f >>"$T/pd.log" 2>&1 &
PD_PID=$!
reap "$PD_PID"
if wait_port "$PD"; then
	ok pd_start
else
	notok pd_start "$(tail -c 600 "$T/pd.log")"
fi
swaks -s 127.0.0.1 -p "$PD" -f s@src.example -t d1@ord.d.example,d2@held.d.example \
	--ehlo client.example >"$T/swaks.out" 2>&1
expect_grep pd_accepted '<-  250 2\.0\.0 Ok: queued as' "$T/swaks.out"
poll_for 15 has s2 d1@ord.d.example
expect_eq pd_sched_delivered "$(got s2 d1@ord.d.example)" 1
poll_for 10 inlog pd.log "to=<d1@ord.d.example>, relay=mx1.d.example[127.0.0.2]:$SP,"
expect_grep pd_sched_line "postern/runner\[[0-9]*\]: [0-9A-Z]\{11\}: to=<d1@ord\.d\.example>, relay=mx1\.d\.example\[127\.0\.0\.2\]:$SP, .*status=sent" "$T/pd.log"
pdheld() { [ "$(qstate pd d2@held.d.example)" = held ]; }
poll_for 10 pdheld
expect_eq pd_route_hold "$(qstate pd d2@held.d.example)" held
expect_eq pd_route_hold_unsent "$(got s2 d2@held.d.example)" 0
"$P" -c "$T/pd.conf" flush --domain held.d.example >"$T/flush.out" 2>&1
expect_grep pd_flush '^postern flush: 1 recipient made due$' "$T/flush.out"
poll_for 15 has s2 d2@held.d.example
expect_eq pd_flush_delivered "$(got s2 d2@held.d.example)" 1
f=$(grep -l -x -F 'X-Rcpt-Args: <d2@held.d.example>' "$T"/s2/* | head -n 1)
expect_grep pd_flush_received '^Received: from client\.example' "${f:-/dev/null}"
pdgone() { [ "$(qstate pd d2@held.d.example)" = absent ]; }
poll_for 10 pdgone
expect_eq pd_flush_done "$(qstate pd d2@held.d.example)" absent

# Equal preferences: 40 messages for one domain with two MX of
# preference 10, taken one at a time by SMTP and each delivered (on a
# connection of its own: connection_reuse_time 0) before the next is
# sent. Both hosts get a fair share.
cat >"$T/spread.py" <<'EOPY'
import glob, smtplib, sys, time
port, n, dirs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def where(rcpt):
    line = ("X-Rcpt-Args: <%s>\n" % rcpt).encode()
    for k, d in enumerate(dirs):
        for f in glob.glob(d + "/*"):
            if line in open(f, "rb").read():
                return k
    return None
got = [0] * len(dirs)
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=20)
for i in range(n):
    rcpt = "e%d@eq.d.example" % i
    s.sendmail("s@src.example", [rcpt], "Subject: spread %d\r\n\r\nhi\r\n" % i)
    end = time.time() + 10
    while (k := where(rcpt)) is None and time.time() < end:
        time.sleep(0.02)
    if k is None:
        print("timeout at", rcpt)
        break
    got[k] += 1
s.quit()
print(" ".join(map(str, got)))
EOPY
"$PY" "$T/spread.py" "$PD" 40 "$T/s2" "$T/s3" >"$T/spread.out" 2>&1
read -r n2 n3 <"$T/spread.out"
if [ "${n2:-0}" -ge 5 ] 2>/dev/null && [ "${n3:-0}" -ge 5 ] && [ $((n2 + n3)) -eq 40 ]; then
	ok equal_preference_spread
else
	notok equal_preference_spread "mx1, mx2 got: $(head -c 300 "$T/spread.out") of 40"
fi
poll_for 10 inlog pd.log "to=<e39@eq.d.example>,"
expect_eq equal_preference_all_sent "$(grep -c 'to=<e[0-9]*@eq\.d\.example>, relay=mx[12]\.d\.example\[127\.0\.0\.[23]\]:[0-9]*, .*status=sent' "$T/pd.log")" 40
expect_eq equal_preference_nothing_else "$(grep -l -E -x 'X-Rcpt-Args: <e[0-9]+@eq\.d\.example>' "$T"/s2/* "$T"/s3/* "$T"/s6/* 2>/dev/null | wc -l)" 40

stop_posternd
expect_eq pd_stops "$?" 0

# ------------------------------------------------------------------
# The pref 10 host is down (its sink stopped): the same run goes on to
# pref 20; for the backup-MX domain pref 20 is us, so it waits.
sink_stop s2
sconf down hold_domains=site.d.example
enq down o2@ord2.d.example >/dev/null
enq down b2@bk2.d.example >/dev/null
prun down down
expect_eq mx_fallback_summary "$(summary down)" "1 delivered, 1 deferred, 0 failed, 0 held"
expect_line mx_fallback_pref20 down o2@ord2.d.example \
	"relay=mx2\.d\.example\[127\.0\.0\.3\]:$SP, .*attempts=1, dsn=2\.0\.0, status=sent"
expect_eq mx_fallback_sink20 "$(got s3 o2@ord2.d.example)" 1
expect_eq mx_fallback_not_a "$(got s6 o2@ord2.d.example)" 0
expect_line backup_mx_down_deferred down b2@bk2.d.example \
	"relay=none, .*dsn=4\.4\.1, status=deferred \(connect to mx1\.d\.example\[127\.0\.0\.2\]:$SP: Connection refused\)"
expect_eq backup_mx_down_not_self "$(got s3 b2@bk2.d.example)" 0
expect_eq backup_mx_down_state "$(qstate down b2@bk2.d.example)" deferred

# `postern run --domain D` while D's only MX is down: one try, one
# result, the real reason kept - for a plain domain and for one held for
# its site (hold_domains), which goes back to waiting.
enq down p1@dn.d.example >/dev/null
enq down s1@site.d.example >/dev/null
RUN_TIMEOUT=10 prun down dn --domain dn.d.example
expect_eq run_domain_down_summary "$(summary dn)" "0 delivered, 1 deferred, 0 failed, 0 held"
expect_eq run_domain_down_one_result "$(grep -c 'to=<p1@dn\.d\.example>' "$T/dn.log")" 1
expect_eq run_domain_down_state "$(qstate down p1@dn.d.example) $(qfield down p1@dn.d.example attempts)" "deferred 1"
expect_eq run_domain_down_reason "$(qfield down p1@dn.d.example last_reply)" \
	"connect to mx1.d.example[127.0.0.2]:$SP: Connection refused"
RUN_TIMEOUT=10 prun down site --domain site.d.example
expect_eq run_site_down_summary "$(summary site)" "0 delivered, 0 deferred, 0 failed, 1 held"
expect_eq run_site_down_one_result "$(grep -c 'to=<s1@site\.d\.example>' "$T/site.log")" 1
expect_eq run_site_down_state "$(qstate down s1@site.d.example) $(qfield down s1@site.d.example attempts)" "held 1"
expect_eq run_site_down_reason "$(qfield down s1@site.d.example last_reply)" \
	"connect to mx1.d.example[127.0.0.2]:$SP: Connection refused"

# A receiver that answers 450 to RCPT: the timer's run tries once; so
# must `postern run --domain` (it must end, not retry at once for ever).
enq down tf1@tf.d.example >/dev/null
prun down tf1
expect_eq tempfail_summary "$(summary tf1)" "0 delivered, 1 deferred, 0 failed, 0 held"
expect_line tempfail_line tf1 tf1@tf.d.example \
	"relay=mx7\.d\.example\[127\.0\.0\.7\]:$SP, .*attempts=1, dsn=4\.3\.0, status=deferred \(450 4\.3\.0 "
RUN_TIMEOUT=10 prun down tf2 --domain tf.d.example
expect_eq run_domain_tempfail_ends "$(cat "$T/tf2.rc")" 1
expect_eq run_domain_tempfail_summary "$(summary tf2)" "0 delivered, 1 deferred, 0 failed, 0 held"
expect_eq run_domain_tempfail_one_try "$(grep -c 'to=<tf1@tf\.d\.example>' "$T/tf2.log") $(qfield down tf1@tf.d.example attempts)" "1 2"

# Past max_queue_lifetime a temporary failure fails as "expired", with
# the last temporary status. Its DSN goes to sink sb (routes_file).
sconf exp max_queue_lifetime=1s "routes_file=$T/routes"
enq exp x1@tf.d.example >/dev/null
t0=$(date +%s)
i=0
while [ "$(date +%s)" -le $((t0 + 1)) ] && [ $i -lt 40 ]; do
	sleep 0.1
	i=$((i + 1))
done
prun exp exp
# x1 expired (1 failed); the 1 delivered is its DSN, to sink sb in the
# same run.
expect_eq expired_summary "$(summary exp)" "1 delivered, 0 deferred, 1 failed, 0 held"
expect_eq expired_dsn "$(dsn_for x1@tf.d.example | wc -l) $(dsn_status x1@tf.d.example)" "1 4.3.0"
expect_line expired_line exp x1@tf.d.example \
	"relay=mx7\.d\.example\[127\.0\.0\.7\]:$SP, .*attempts=1, dsn=4\.3\.0, status=expired \(450 4\.3\.0 "

# ------------------------------------------------------------------
kill "$R_PID"
i=0
while kill -0 "$R_PID" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_eq r_stops "$(kill -0 "$R_PID" 2>/dev/null && echo running || echo stopped)" stopped
expect_eq no_sanitizer_report "$(cat "$T/all-runs.log" "$T/r.log" "$T/pd.log" | grep -c 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer')" 0

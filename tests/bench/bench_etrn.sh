#!/bin/sh
# bench_etrn.sh - ETRN (RFC 1985): how fast posternd answers it in a big
# queue, how fast the site then has its mail, and the same against
# Postfix's ETRN (its flush service).
#
# Usage: sh tests/bench/bench_etrn.sh [DIR]     (from anywhere, as root)
#	DIR: where the queues go, on a real disk (run.sh passes
#	$BENCH_DIR/etrn); default /tmp/postern-bench-etrn.PID, or below
#	build/benchtmp when /tmp is tmpfs. Removed at the end.
#	POSTERN_BIN=dir     another postern/posternd (default: bin/ here)
#	ETRN_LARGE=n        the large queue of part 1 (default 1000000)
#	ETRN_OTHERS=n       the other messages of part 2 (default 50000)
#
# Every ETRN is timed by tests/bench/etrn_time.py: connect and EHLO
# (untimed), then from writing `ETRN node` to its reply (reply_ms), and
# to the first read of the sink's counter (smtp-sink -c, read every
# millisecond) that shows the node's last message (flush_s).
#
# 1. Scale. bench_fill (tests/bench/bench_fill.c) builds a queue of N
# recipients of other domains (10 a message, 2,000 domains dK.example.com
# routed to a dead port, due in an hour) and among them 1,000 one-recipient
# 4 KiB messages for each of 5 domains f1..f5.example.net (relay_domains,
# so anyone may ETRN them; routed to the sink). posternd (workers 4,
# dest_concurrency 20) is started on it, and each fK gets one ETRN: 5
# samples, median. N = 10,000 and 1,000,000. Targets: the reply under 10
# ms (median) in both, and it is "253 ... 1000 pending messages" (the true
# count); flush-to-last-delivered at 1,000,000 within 1.5x of 10,000.
#
# 2. Against Postfix. Each server takes, over SMTP (smtp-source, 10 runs
# at once), 50,000 one-recipient messages for other domains
# (dK.example.com, routed to a dead port: tried once, deferred, backoff
# an hour) and then, for each of 3 rounds, 100 messages of 4 KiB for the
# site's domain siteR.example, which waits for its ETRN:
#   posternd: hold_domains = site1..3.example, routes_file to the sink.
#   Postfix: relay_domains = fast_flush_domains = site1..3.example,
#	transport_maps sends them to the sink through a transport of their
#	own that defer_transports defers (its ETRN_README's recipe for a
#	site that asks for its mail); the flush service logs them, and ETRN
#	makes smtpd ask it to deliver them.
#   Each round starts once the 100 are waiting (posternd: held; Postfix:
#   in deferred) and everything else is settled (every other message
#   deferred). Timed: ETRN to the last of the 100 at the sink; median of
#   the rounds for each; target posternd at most a quarter of Postfix.
#
# The Postfix instance is our own (bench_lib.sh); the system's Postfix is
# neither read nor changed. Every process started here is stopped by pid.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SRC=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
PDBIN=${POSTERN_BIN:-$top/bin}
LARGE=${ETRN_LARGE:-1000000}
SMALL=10000
OTHERS=${ETRN_OTHERS:-50000}
FLUSH_N=1000
SITE_N=100
ROUNDS=3
TARGET_REPLY_MS=10
TARGET_SCALE=1.5
TARGET_VS_PF=0.25
t_begin=$(date +%s)

say() { echo "etrn  $*"; }
die() { echo "etrn: $*" >&2; exit 1; }
. "$top/tests/bench/bench_lib.sh"	# ports, greets, median, Postfix

[ -x "$SRC" ] && [ -x "$SINK" ] || die "smtp-source/smtp-sink missing (apt-get install postfix)"
command -v postfix >/dev/null 2>&1 || die "postfix missing"
[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix's master, posternd's user, smtp-sink -u)"
need_pd
PY=$(python3 -c 'import sys; print(sys.executable)')
TIMER="$top/tests/bench/etrn_time.py"

bench_dir etrn "$@"

PD_PID=""
SINK_PID=""
SRC_PIDS=""
PF_Q=""
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

SINK_PORT=$(free_port)
PD_PORT=$(free_port)
PF_PORT=$(free_port)
DEAD_PORT=$(free_port)	# nobody listens there

# ------------------------------------------------------------------
# The sink (a new one each time: its counter starts at 0).
sink_start() {
	"$SINK" -u postern -c "127.0.0.1:$SINK_PORT" 1000 >"$W/sink.out" 2>&1 &
	SINK_PID=$!
	greets "$SINK_PORT" || die "smtp-sink does not answer: $(head -c 300 "$W/sink.out")"
}
sink_stop() {
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}

# ------------------------------------------------------------------
# posternd (pd_conf, pd_start, pd_stop: bench_lib.sh); this benchmark
# leaves odmr_listen at its default.
PD_ODMR=default
# pd_live CONF DOMAIN - messages of DOMAIN in the queue.
pd_live() {
	"$PDBIN/postern" -c "$1" queue --json --domain "$2" 2>/dev/null | wc -l |
	    tr -d ' '
}

# etrn PORT NODE N LIMIT OUT - one timed ETRN; its line appended to OUT.
etrn() {
	"$PY" "$TIMER" "$1" "$2" "$W/sink.out" "$3" "$4" >>"$5" 2>&1
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$2"; }

# ------------------------------------------------------------------
# Part 1: scale.
FDOMS="f1.example.net f2.example.net f3.example.net f4.example.net f5.example.net"
{
	for d in $FDOMS; do
		echo "$d [127.0.0.1]:$SINK_PORT"
	done
	echo ".example.com [127.0.0.1]:$DEAD_PORT"
} >"$W/routes-fill"
chmod 644 "$W/routes-fill"
bench_cc "$W/bench_fill" tests/bench/bench_fill.c

say "queues in $DIR ($(stat -f -c %T "$DIR"), $(df -P "$DIR" | awk 'NR == 2 { print $1 }')), $(nproc) CPUs;" \
	"posternd $PDBIN/posternd, Postfix $(postconf -d -h mail_version 2>/dev/null);" \
	"load average $(cut -d ' ' -f 1-3 /proc/loadavg)"

# scale LABEL OTHERS - fill, start posternd, one timed ETRN per fK.
scale() {
	label=$1
	Q=$W/fill-$label
	rm -rf "$Q"
	"$W/bench_fill" -o "$2" -n "$FLUSH_N" "$Q" $FDOMS >"$W/fill.out" 2>&1 ||
		die "bench_fill: $(cat "$W/fill.out")"
	say "$label: $(cat "$W/fill.out")"
	pd_conf "$W/fill.conf" "$Q" "routes_file=$W/routes-fill" "workers=4" \
	    "dest_concurrency=20" \
	    "relay_domains=$(echo $FDOMS | tr ' ' ',')"
	sink_start
	pd_start "$W/fill.conf" "$W/pd-fill-$label.log"
	base=0
	: >"$W/etrn.$label"
	for d in $FDOMS; do
		base=$((base + FLUSH_N))
		if ! etrn "$PD_PORT" "$d" "$base" 120 "$W/etrn.$label"; then
			echo "$label $d: $(tail -n 1 "$W/etrn.$label")" >>"$W/bad.scale"
		fi
		grep -q "code=253 text=253 2.0.0 OK, $FLUSH_N pending messages" \
		    "$W/etrn.$label" ||
			echo "$label $d: not the true count: $(tail -n 1 "$W/etrn.$label")" >>"$W/bad.scale"
		sed -i '$s/$/ node='"$d"'/' "$W/etrn.$label"
	done
	pd_stop
	sink_stop
	sent=$(grep -c 'example.net>, .*status=sent' "$W/pd-fill-$label.log")
	[ "$sent" -eq $((FLUSH_N * 5)) ] ||
		echo "$label: $sent of $((FLUSH_N * 5)) sent" >>"$W/bad.scale"
	tried=$(grep -c 'example.com>, .*status=' "$W/pd-fill-$label.log")
	[ "$tried" -eq 0 ] || echo "$label: $tried delivery attempts of the other (not due) domains" >>"$W/bad.scale"
	field reply_ms "$W/etrn.$label" >"$W/reply.$label"
	field flush_s "$W/etrn.$label" >"$W/flush.$label"
	say "$label: ETRN reply ms: $(tr '\n' ' ' <"$W/reply.$label"); to the last of $FLUSH_N delivered, s: $(tr '\n' ' ' <"$W/flush.$label")"
	rm -rf "$Q"
}
scale 10k "$SMALL"
scale large "$LARGE"

# ------------------------------------------------------------------
# Part 2: posternd against Postfix.
SITES=""
r=1
while [ $r -le $ROUNDS ]; do
	SITES="$SITES site$r.example"
	r=$((r + 1))
done

# inject PORT - the other messages: 10 smtp-source runs at once, one
# domain each.
inject_others() {
	SRC_PIDS=""
	per=$((OTHERS / 10))
	k=1
	while [ $k -le 10 ]; do
		timeout -k 5 600 "$SRC" -s 5 -m "$per" -r 1 -l 300 \
		    -f bench@client.example -t "u@d$k.example.com" \
		    "127.0.0.1:$1" >"$W/src.$k" 2>&1 &
		SRC_PIDS="$SRC_PIDS $!"
		k=$((k + 1))
	done
	src_wait
}
# inject_site PORT DOMAIN - the site's 100 messages.
inject_site() {
	timeout -k 5 120 "$SRC" -s 5 -m "$SITE_N" -r 1 -l 4096 \
	    -f bench@client.example -t "u@$2" "127.0.0.1:$1" >"$W/src.site" 2>&1 ||
		die "smtp-source ($2): $(head -c 300 "$W/src.site")"
}
# settle LIMIT CMD... - until CMD succeeds (every 0.2 s), LIMIT s at most.
settle() {
	_end=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.2
	done
}

# posternd.
{
	for d in $SITES; do
		echo "$d [127.0.0.1]:$SINK_PORT"
	done
	echo ".example.com [127.0.0.1]:$DEAD_PORT"
} >"$W/routes-vs"
chmod 644 "$W/routes-vs"
PQ=$W/pd-vs
pd_conf "$W/vs.conf" "$PQ" "routes_file=$W/routes-vs" "workers=4" \
    "dest_concurrency=20" "min_backoff=1h" "max_backoff=2h" \
    "hold_domains=$(echo $SITES | tr ' ' ',')"
sink_start
t0=$(now)
pd_start "$W/vs.conf" "$W/pd-vs.log"
inject_others "$PD_PORT"
pd_others_deferred() {
	[ "$(grep -c 'example.com>, .*status=deferred' "$W/pd-vs.log")" -ge "$OTHERS" ]
}
settle 300 pd_others_deferred ||
	die "posternd: the other messages not all deferred after 300 s: $(grep -c 'status=deferred' "$W/pd-vs.log")"
say "posternd: $OTHERS other messages taken and deferred in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
: >"$W/vs.pd"
base=0		# one sink throughout: a worker may keep its connection
for d in $SITES; do
	inject_site "$PD_PORT" "$d"
	settle 60 eval '[ "$(pd_live "$W/vs.conf" "$d")" -eq "$SITE_N" ]' ||
		die "posternd: $d has $(pd_live "$W/vs.conf" "$d") messages, want $SITE_N"
	base=$((base + SITE_N))
	etrn "$PD_PORT" "$d" "$base" 60 "$W/vs.pd" ||
		echo "posternd $d: $(tail -n 1 "$W/vs.pd")" >>"$W/bad.vs"
done
pd_stop
sink_stop
sent=$(grep -c '@site[0-9]*.example>, .*status=sent' "$W/pd-vs.log")
[ "$sent" -eq $((SITE_N * ROUNDS)) ] ||
	echo "posternd: $sent of $((SITE_N * ROUNDS)) site messages sent" >>"$W/bad.vs"
rm -rf "$PQ"

# Postfix.
tmap=""
for d in $SITES; do
	tmap="$tmap $d=sitetx:[127.0.0.1]:$SINK_PORT,"
done
pf_setup "$PF_PORT" "relayhost = [127.0.0.1]:$DEAD_PORT" \
    "smtpd_recipient_restrictions = permit_mynetworks, reject" \
    "relay_domains = $(echo $SITES)" \
    "fast_flush_domains = \$relay_domains" \
    "transport_maps = inline:{${tmap%,} }" \
    "defer_transports = sitetx" \
    "default_destination_concurrency_limit = 20" \
    "minimal_backoff_time = 1h" "maximal_backoff_time = 2h" \
    "queue_run_delay = 1h" \
    "smtp_tls_security_level = none"
echo "sitetx     unix  - - n -  - smtp" >>"$PF_ETC/master.cf"
# Postfix's smtpd: the last setting of a parameter in main.cf wins, so
# the HOLD of pf_setup is replaced.
sink_start
t0=$(now)
pf_start
inject_others "$PF_PORT"
pf_deferred() {
	find "$PF_Q/deferred" -type f 2>/dev/null | wc -l | tr -d ' '
}
pf_busy() {
	find "$PF_Q/incoming" "$PF_Q/active" "$PF_Q/maildrop" -type f 2>/dev/null |
	    wc -l | tr -d ' '
}
settle 300 eval '[ "$(pf_deferred)" -ge "$OTHERS" ] && [ "$(pf_busy)" -eq 0 ]' ||
	die "Postfix: $(pf_deferred) deferred, $(pf_busy) busy after 300 s"
say "Postfix: $OTHERS other messages taken and deferred in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
: >"$W/vs.pf"
base=0
want=$OTHERS
for d in $SITES; do
	inject_site "$PF_PORT" "$d"
	want=$((want + SITE_N))
	settle 60 eval '[ "$(pf_deferred)" -ge "$want" ] && [ "$(pf_busy)" -eq 0 ]' ||
		die "Postfix: $(pf_deferred) deferred, want $want, $(pf_busy) busy"
	base=$((base + SITE_N))
	etrn "$PF_PORT" "$d" "$base" 60 "$W/vs.pf" ||
		echo "Postfix $d: $(tail -n 1 "$W/vs.pf")" >>"$W/bad.vs"
	want=$((want - SITE_N))
done
sink_stop
sent=$(grep -c 'to=<u@site[0-9]*.example>.*status=sent' "$W/pf-maillog")
[ "$sent" -eq $((SITE_N * ROUNDS)) ] ||
	echo "Postfix: $sent of $((SITE_N * ROUNDS)) site messages sent" >>"$W/bad.vs"
pf_stop

# ------------------------------------------------------------------
# Results.
for l in 10k large; do
	m=$(median "$W/reply.$l")
	v=$(awk -v m="$m" -v w="$TARGET_REPLY_MS" 'BEGIN { print (m > 0 && m < w) ? "PASS" : "FAIL" }')
	grep -q "^$l .*not the true count" "$W/bad.scale" 2>/dev/null && v=FAIL
	n=$SMALL
	[ "$l" = large ] && n=$LARGE
	printf 'etrn  ETRN reply with %s others queued, %d waiting: median %.2f ms  (target < %d ms with "253 ... %d pending": %s)  [%s]\n' \
		"$n" "$FLUSH_N" "$m" "$TARGET_REPLY_MS" "$FLUSH_N" "$v" \
		"$(tr '\n' ' ' <"$W/reply.$l" | sed 's/ $//')"
done
s_m=$(median "$W/flush.10k")
l_m=$(median "$W/flush.large")
sr=$(ratio_of "$l_m" "$s_m")
v=$(awk -v r="$sr" -v w="$TARGET_SCALE" 'BEGIN { print (r > 0 && r <= w) ? "PASS" : "FAIL" }')
[ -s "$W/bad.scale" ] && v=FAIL
printf 'etrn  ETRN to the last of %d delivered: 10k queued %.3f s, %s queued %.3f s, ratio %.2fx  (target within %sx: %s)  [10k: %s; large: %s]\n' \
	"$FLUSH_N" "$s_m" "$LARGE" "$l_m" "$sr" "$TARGET_SCALE" "$v" \
	"$(tr '\n' ' ' <"$W/flush.10k" | sed 's/ $//')" \
	"$(tr '\n' ' ' <"$W/flush.large" | sed 's/ $//')"
[ -s "$W/bad.scale" ] && sed 's/^/etrn      incomplete: /' "$W/bad.scale"

field flush_s "$W/vs.pd" >"$W/vs.pd.t"
field flush_s "$W/vs.pf" >"$W/vs.pf.t"
field reply_ms "$W/vs.pd" >"$W/vs.pd.r"
field reply_ms "$W/vs.pf" >"$W/vs.pf.r"
pd_m=$(median "$W/vs.pd.t")
pf_m=$(median "$W/vs.pf.t")
vr=$(ratio_of "$pd_m" "$pf_m")
v=$(awk -v r="$vr" -v w="$TARGET_VS_PF" 'BEGIN { print (r > 0 && r <= w) ? "PASS" : "FAIL" }')
[ -s "$W/bad.vs" ] && v=FAIL
printf 'etrn  ETRN to the last of %d delivered, %d others queued: posternd %.3f s, Postfix %.3f s, ratio %.2f  (target <= %s: %s)  [posternd: %s, replies %s ms (%s); Postfix: %s, replies %s ms (%s)]\n' \
	"$SITE_N" "$OTHERS" "$pd_m" "$pf_m" "$vr" "$TARGET_VS_PF" "$v" \
	"$(tr '\n' ' ' <"$W/vs.pd.t" | sed 's/ $//')" \
	"$(tr '\n' ' ' <"$W/vs.pd.r" | sed 's/ $//')" \
	"$(sed -n 's/.*text=\(.*\)/\1/p' "$W/vs.pd" | head -n 1)" \
	"$(tr '\n' ' ' <"$W/vs.pf.t" | sed 's/ $//')" \
	"$(tr '\n' ' ' <"$W/vs.pf.r" | sed 's/ $//')" \
	"$(sed -n 's/.*text=\(.*\)/\1/p' "$W/vs.pf" | head -n 1)"
[ -s "$W/bad.vs" ] && sed 's/^/etrn      incomplete: /' "$W/bad.vs"
say "total $(($(date +%s) - t_begin)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"

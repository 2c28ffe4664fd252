# 800-disk-full: the queue on a 16 MiB tmpfs (in a mount namespace of the
# test's own, `unshare -m`), filled until it is full.
#  1. Receiving: a client sends 64-200 KiB messages with unique Message-IDs
#     until it is refused. Every message acknowledged with 250 is in the
#     queue once, byte for byte; the refusals are 452 4.3.1; the daemon
#     runs on (the same master and listener PIDs, EHLO answered); once a
#     filler file on the same tmpfs is removed it accepts again, and once
#     the queue fills again, after `postern delete` of some messages.
#  2. Delivery results and DSNs: messages held for their site; the disk
#     filled up (held mail, then a filler file); an ETRN: the workers
#     deliver, and the results they cannot record, and the DSNs
#     of the recipients the server refuses with 550, wait (the claims'
#     lease runs out) and are tried again once the filler is gone. Then
#     the queue is empty and its counts say so, every message reached the
#     server (at least once), and each refused message got exactly one
#     DSN.
#  3. ETRN: held mail for a site, the queue filled until refused and the
#     disk to the last block: ETRN answers a 4xx (458) or starts the flush,
#     cleanly (the session goes on); nothing is lost; once there is room
#     an ETRN flushes, and every held message reaches the site.
#  4. `postern pull` into a site queue on the full tmpfs from a provider
#     posternd (on a normal disk): the site answers 452 4.3.1, then 421
#     4.3.1 to the next command; the pull exits 1 saying the local queue
#     is full; the provider keeps every message; once the filler is gone
#     a second pull gets them all, once each.
#  5. The queue alone fills the disk: `postern delete` of all of it works
#     (the room new mail leaves), and it accepts again.
#  6. ATRN at a provider on the full disk (the pulling site on a normal
#     one): the provider runs on; once the filler is gone, pulls until it
#     has nothing left give the site every message (duplicates allowed:
#     a result the provider could not record is delivered again).
. "$POSTERN_TOP/tests/integ/lib.sh"

if [ "${POSTERN_IN_NS:-}" != 1 ]; then
	# A mount namespace of our own: the tmpfs goes with it.
	rm -rf "$T"
	trap - EXIT INT TERM
	POSTERN_IN_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi

. "$POSTERN_TOP/tests/integ/fill_lib.sh"
FS=$T/fs
mkdir "$FS"
if ! mount -t tmpfs -o size=16m,mode=755 tmpfs "$FS"; then
	notok tmpfs_mounted "mount -t tmpfs failed (root and unshare -m needed)"
	exit 1
fi
cleanup() {
	reap_all
	umount -l "$FS" 2>/dev/null
	rm -rf "$T"
}

# The queue on the tmpfs (lib.sh's conf writes it).
QDIR=$FS/queue

# fs_free - free KiB on the tmpfs.
fs_free() { df -k --output=avail "$FS" | tail -n 1 | tr -d ' '; }

# ------------------------------------------------------------------
# 1. Receiving.
# A filler file on the queue's tmpfs, removed later to give space back.
dd if=/dev/zero of="$FS/filler" bs=1M count=3 status=none
start_posternd hold_domains=hold.example || exit 1
L1=$(smtpd_pid)
fill "$T/a" a 400
acked=$(sumf a acked)
first=$(sed -n 's/.*first_refusal=//p' "$T/a.sum")
if [ "${acked:-0}" -ge 20 ]; then ok recv_acked_some; else
	notok recv_acked_some "$(cat "$T/a.sum")"; fi
case "$first" in
"452 4.3.1"*) ok recv_full_452 ;;
*) notok recv_full_452 "first refusal: $first" ;;
esac
# Every refusal was a 452 4.3.1 (not a 451, not a dropped connection).
expect_eq recv_refusals_all_452 \
    "$(awk '$2 != 250 && !($2 == 452 && $3 == "4.3.1")' "$T/a/replies" |
	head -3)" ""
# Full but for the room kept for deliveries, bounces and deletions
# (QUEUE_RESERVE_OF in queue/queue_txn.c: 1 MiB of 16).
expect_eq recv_disk_really_full "$([ "$(fs_free)" -lt 2600 ] && echo y)" y
"$PY" "$FILL" verify "$P" "$T/a" >"$T/va" 2>&1
expect_eq recv_acked_intact "$(cut -d' ' -f1-4 "$T/va")" \
    "intact=$acked missing=0 damaged=0 twice=0"
expect_eq recv_master_alive "$(alive "$PD_PID" && echo y)" y
expect_eq recv_listener_same "$(smtpd_pid)" "$L1"
check recv_ehlo_answered "$PY" "$FILL" ehlo 127.0.0.1 "$SMTP_PORT"
expect_eq recv_still_refuses "$(fill "$T/a2" a2 1; sumf a2 acked)" 0

# Space back (the filler): accepted again.
rm -f "$FS/filler"
fill "$T/b" b 400
if [ "$(sumf b acked)" -ge 5 ]; then ok recv_accepts_after_space; else
	notok recv_accepts_after_space "$(cat "$T/b.sum")"; fi
case "$(sed -n 's/.*first_refusal=//p' "$T/b.sum")" in
"452 4.3.1"*) ok recv_full_again_452 ;;
*) notok recv_full_again_452 "$(cat "$T/b.sum")" ;;
esac

# Space back inside the queue (postern delete): accepted again.
"$P" queue --json | "$PY" -c '
import json, sys
ids = [json.loads(l)["id"] for l in sys.stdin if l.strip()]
print("\n".join(ids[:40]))' >"$T/del.ids"
if "$P" delete $(cat "$T/del.ids") >"$T/del.out" 2>&1; then
	ok recv_delete_when_full
else
	notok recv_delete_when_full "$(head -c 300 "$T/del.out")"
fi
fill "$T/c" c 400
if [ "$(sumf c acked)" -ge 3 ]; then ok recv_accepts_after_delete; else
	notok recv_accepts_after_delete "$(cat "$T/c.sum")"; fi
# What was acknowledged since is intact too (those deleted are gone on
# purpose: drop their files first).
for id in $(cat "$T/del.ids"); do
	"$P" show --raw "$id" 2>/dev/null | grep -q . && echo "$id"
done >"$T/del.left"
expect_eq recv_deleted_gone "$(cat "$T/del.left")" ""
mkdir "$T/all"
cat "$T/a/replies" "$T/b/replies" "$T/c/replies" >"$T/all/replies"
cp "$T"/a/*.eml "$T"/b/*.eml "$T"/c/*.eml "$T/all/"
# The deleted ones were the 40 oldest: a-0 .. a-39.
for i in $(seq 0 39); do rm -f "$T/all/a-$i.eml"; done
"$PY" "$FILL" verify "$P" "$T/all" >"$T/vall" 2>&1
expect_eq recv_all_acked_intact "$(cut -d' ' -f2-4 "$T/vall")" \
    "missing=0 damaged=0 twice=0"
expect_eq recv_master_alive_end "$(alive "$PD_PID" && echo y)" y
expect_eq recv_listener_same_end "$(smtpd_pid)" "$L1"
stop_posternd

# ------------------------------------------------------------------
# 2. Delivery results and DSNs.
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"
rm -rf "$QDIR" "$FS/filler"
DP=$(free_port)
printf 'dest.example [127.0.0.1]:%s\nclient.test [127.0.0.1]:%s\n' \
    "$DP" "$DP" >"$T/routes"
chmod 644 "$T/routes"
SMTP_PORT=$(free_port)
start_posternd hold_domains=hold.example,dest.example "routes_file=$T/routes" \
    min_backoff=1s max_backoff=2s lease_time=3s smtp_connect_timeout=2s \
    smtp_command_timeout=5s smtp_data_timeout=5s smtp_dot_timeout=5s \
    connection_reuse_time=1s workers=2 || exit 1
# 30 to deliver, 3 to refuse (their DSNs go to fill@client.test, the same
# server), 64-128 KiB each.
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/r" r ok@dest.example 30 1 \
    64 128 >"$T/r.sum"
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/d" d bad@dest.example 3 1 \
    64 128 >"$T/d.sum"
expect_eq deliv_queued "$(sumf r acked) $(sumf d acked)" "30 3"
# The queue fills the disk (held mail), so that its own file has no room
# to spare either; then the rest of the disk, to the last block. (The
# filler is there first: see the report on a queue that fills the whole
# disk, which even `postern delete` cannot then shrink.)
dd if=/dev/zero of="$FS/filler" bs=1M count=2 status=none
fill "$T/df" df 400
dd if=/dev/zero of="$FS/filler" bs=64k oflag=append conv=notrunc status=none 2>/dev/null
expect_eq deliv_disk_full "$([ "$(fs_free)" -lt 64 ] && echo y)" y
mkdir "$T/dump"
"$PY" "$SRV" "$DP" "$T/srv.log" --bad bad@ --dump "$T/dump" \
    >"$T/srv.out" 2>&1 &
SRVPID=$!
reap $SRVPID
wait_listen "$DP" || notok deliv_server_up "$(cat "$T/srv.out")"
# Held until now (nothing in the queue changed while the disk filled):
# an ETRN sends them.
"$PY" "$T/etrn.py" "$SMTP_PORT" dest.example >"$T/etrn0" 2>&1
expect_eq deliv_etrn_started "$(cut -c1-3 "$T/etrn0")" 253
srv_got_all() { [ "$(srv_mids | sort -u | wc -l)" -ge 30 ]; }
refused3() { [ "$(grep -c 'RCPT <bad@dest.example> 550' "$T/srv.log")" -ge 3 ]; }
until_ok 300 srv_got_all || notok deliv_sent_while_full "$(srv_mids | sort -u | wc -l) of 30"
until_ok 200 refused3 || notok deliv_refused_while_full "$(grep -c ' 550' "$T/srv.log")"
# unrecorded - result transactions that failed for space.
unrecorded() { grep -c "queue_claim_result: .*\(No space\|full\)" "$T/posternd.log"; }
until_ok 100 eval '[ "$(unrecorded)" -ge 1 ]'
if [ "$(unrecorded)" -ge 1 ]; then ok deliv_results_failed_while_full; else
	notok deliv_results_failed_while_full "no failed result commit in the log"; fi
expect_eq deliv_master_alive "$(alive "$PD_PID" && echo y)" y
rm -f "$FS/filler"
delete_held
# What could not be recorded waits for its site again once its lease is
# over (held mail): ETRN until the queue is empty.
expect_converged deliv_queue_converged dest.example
expect_eq deliv_every_message_sent "$(srv_mids | sort -u | wc -l)" 30
echo "# deliveries: $(srv_mids | wc -l) for 30 messages; result commits failed: $(unrecorded)"
expect_counts_zero deliv_counts_zero
# One DSN for each refused message.
expect_one_dsn_each deliv_one_dsn_each
stop_posternd

# ------------------------------------------------------------------
# 3. ETRN.
rm -rf "$QDIR" "$FS/filler"
SMTP_PORT=$(free_port)
printf 'site.example [127.0.0.1]:%s\n' "$DP" >"$T/routes"
start_posternd hold_domains=hold.example,site.example \
    "routes_file=$T/routes" min_backoff=1s max_backoff=2s lease_time=3s \
    smtp_connect_timeout=2s connection_reuse_time=1s || exit 1
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/e" e x@site.example 5 1 \
    64 128 >"$T/e.sum"
expect_eq etrn_held_queued "$(sumf e acked)" 5
fill "$T/ef" ef 400
dd if=/dev/zero of="$FS/filler" bs=64k status=none 2>/dev/null
"$PY" "$T/etrn.py" "$SMTP_PORT" site.example >"$T/etrn1" 2>&1
echo "# ETRN on a full disk: $(cat "$T/etrn1")"
case "$(cat "$T/etrn1")" in
"458 4.3.1 250"|"253 "*" 250"|"251 "*" 250") ok etrn_full_answered_cleanly ;;
*) notok etrn_full_answered_cleanly "$(cat "$T/etrn1")" ;;
esac
expect_eq etrn_master_alive "$(alive "$PD_PID" && echo y)" y
# e_seen - the e-N messages the site got (distinct); e_left - how many
# are still queued here.
e_seen() {
	cat "$T"/dump/*.eml 2>/dev/null |
	    sed -n 's/^Message-ID: <\(e-[0-9]*\)@fill.test>.*/\1/p' | sort -u
}
e_left() {
	qjson "sum(1 for m in msgs if any(r['address'] == 'x@site.example' for r in m['recipients']))"
}
# (A message sent whose result was not recorded is in both.)
# (The server writes its copy just after its 250: poll.)
e_somewhere() { [ $(($(e_seen | wc -l) + $(e_left))) -ge 5 ]; }
if until_ok 50 e_somewhere; then ok etrn_full_nothing_lost
else notok etrn_full_nothing_lost "seen $(e_seen | wc -l), left $(e_left)"; fi
rm -f "$FS/filler"
delete_held
e_all() { [ "$(e_seen | wc -l)" -ge 5 ]; }
e_none() { [ "$(e_left)" -eq 0 ]; }
# A result that could not be recorded leaves its recipient to wait for
# the site again once the lease is over: ETRN until none is left.
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$PY" "$T/etrn.py" "$SMTP_PORT" site.example >"$T/etrn2" 2>&1
	until_ok 30 e_none && break
done
case "$(cat "$T/etrn2")" in
"253 "*|"251 "*) ok etrn_after_space_accepted ;;
*) notok etrn_after_space_accepted "$(cat "$T/etrn2")" ;;
esac
expect_eq etrn_all_reached_site "$(e_seen | wc -l)" 5
expect_eq etrn_none_left "$(e_left)" 0
stop_posternd

# ------------------------------------------------------------------
# 4. postern pull into a full site queue.
rm -rf "$QDIR" "$FS/filler"
printf 'pw1\n' | "$P" passwd site1 pull.example >"$T/users"
printf 'pw1\n' >"$T/pw1"
chmod 644 "$T/users"
chmod 600 "$T/pw1"
OP=$(free_port)
SMTP_PORT=$(free_port)
QDIR=$T/pq		# the provider's queue: a normal disk
start_posternd "users_file=$T/users" hold_domains=pull.example \
    "odmr_listen=127.0.0.1:$OP" || exit 1
until_ok 100 listening "$OP" || notok pull_provider_odmr "nothing on $OP"
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/p" p u@pull.example 12 1 \
    64 128 >"$T/p.sum"
expect_eq pull_provider_queued "$(sumf p acked)" 12
cat >"$T/site.conf" <<EOC
queue_dir = $FS/sq
myhostname = site.test.example
listen = 127.0.0.1:$(free_port)
odmr_listen =
relay_domains = pull.example
EOC
spull() {
	"$P" -c "$T/site.conf" pull 127.0.0.1:"$OP" --user site1 \
	    --password-file "$T/pw1" "$@"
}
# The site's queue made, then the disk filled.
printf 'Subject: x\n\nx\n' | "$P" -c "$T/site.conf" enqueue -f a@site.test \
    nobody@pull.example >"$T/sid" 2>&1
"$P" -c "$T/site.conf" delete "$(cat "$T/sid")" >/dev/null 2>&1
dd if=/dev/zero of="$FS/filler" bs=64k status=none 2>/dev/null
spull >"$T/pull1.out" 2>"$T/pull1.err"
expect_eq pull_full_exit_1 "$?" 1
# It says why: the local queue is full (not "connection lost").
expect_grep pull_full_says_queue_full "the local queue is full" "$T/pull1.err"
site_msgs() { POSTERN_CONF="$T/site.conf" qjson 'len(msgs)'; }
expect_eq pull_full_site_stored_none "$(site_msgs)" 0
pheld() {
	qjson "sum(1 for m in msgs for r in m['recipients'] if r['address'] == 'u@pull.example' and r['state'] in ('held', 'deferred'))"
}
pactive() { [ "$(qjson "sum(1 for m in msgs for r in m['recipients'] if r['state'] == 'active')")" = 0 ]; }
until_ok 100 pactive
expect_eq pull_provider_kept_all "$(pheld)" 12
expect_grep pull_full_452 "u@pull.example.*452 4.3.1" "$T/posternd.log"
# The site stops the session at the first refusal (421 4.3.1): the
# provider does not send every other message only to hear 452 again.
expect_eq pull_full_stops_at_first "$(grep -c "u@pull.example.*452 4.3.1" "$T/posternd.log")" 1
rm -f "$FS/filler"
# Right after a session the provider may answer 451 (the domain not yet
# let go): try again for 10 s.
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	spull >"$T/pull2.out" 2>"$T/pull2.err"
	grep -q "451 " "$T/pull2.err" || break
	sleep 0.5
done
expect_grep pull_after_space_got_all "^postern pull: 127.0.0.1: 12 messages" "$T/pull2.out"
expect_eq pull_provider_empty "$(qjson 'len(msgs)')" 0
mkdir "$T/pv"
cp "$T"/p/*.eml "$T/pv/"
POSTERN_CONF="$T/site.conf" "$PY" "$FILL" verify "$P" "$T/pv" >"$T/vp" 2>&1
expect_eq pull_site_once_each "$(cut -d' ' -f2,4 "$T/vp")" "missing=0 twice=0"
stop_posternd

# ------------------------------------------------------------------
# 5. The queue alone fills the disk: `postern delete` still makes room.
rm -rf "$QDIR" "$FS/filler" "$FS/sq"
QDIR=$FS/queue
SMTP_PORT=$(free_port)
start_posternd hold_domains=hold.example || exit 1
fill "$T/g" g 400
expect_eq alone_full_452 "$(sed -n 's/.*first_refusal=\(452 4.3.1\).*/\1/p' "$T/g.sum")" "452 4.3.1"
"$P" delete $(qjson "' '.join(m['id'] for m in msgs)") >"$T/gdel.out" 2>&1
expect_eq alone_delete_all "$?" 0
expect_eq alone_queue_empty "$(qjson 'len(msgs)')" 0
fill "$T/g2" g2 5
expect_eq alone_accepts_after_delete "$(sumf g2 acked)" 5
stop_posternd

# ------------------------------------------------------------------
# 6. ATRN at a provider whose disk is full (the site's queue on a normal
#    disk): the provider's bookkeeping (site seen, claims, results) may
#    fail; nothing is lost, and once there is room a pull gets the rest.
rm -rf "$QDIR" "$FS/filler"
QDIR=$FS/queue
OP=$(free_port)
SMTP_PORT=$(free_port)
start_posternd "users_file=$T/users" hold_domains=pull.example,hold.example \
    "odmr_listen=127.0.0.1:$OP" lease_time=3s || exit 1
until_ok 100 listening "$OP" || notok atrn_provider_odmr "nothing on $OP"
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/t" t u@pull.example 10 1 \
    64 128 >"$T/t.sum"
expect_eq atrn_provider_queued "$(sumf t acked)" 10
fill "$T/tf" tf 400
dd if=/dev/zero of="$FS/filler" bs=64k status=none 2>/dev/null
sed "s|^queue_dir = .*|queue_dir = $T/sq2|" "$T/site.conf" >"$T/site2.conf"
spull2() {
	"$P" -c "$T/site2.conf" pull 127.0.0.1:"$OP" --user site1 \
	    --password-file "$T/pw1"
}
spull2 >"$T/pull3.out" 2>"$T/pull3.err"
echo "# pull from a full provider: exit $? $(head -c 160 "$T/pull3.out")"
expect_eq atrn_full_provider_alive "$(alive "$PD_PID" && echo y)" y
rm -f "$FS/filler"
tleft() { qjson "sum(1 for m in msgs if any(r['address'] == 'u@pull.example' for r in m['recipients']))"; }
# Until the provider has none left (a result it could not record comes
# back when its lease is over: 451 or mail again).
for i in $(seq 1 30); do
	[ "$(tleft)" -eq 0 ] && break
	spull2 >>"$T/pull4.out" 2>>"$T/pull4.err"
	sleep 0.5
done
expect_eq atrn_provider_none_left "$(tleft)" 0
mkdir "$T/tv"
cp "$T"/t/*.eml "$T/tv/"
POSTERN_CONF="$T/site2.conf" "$PY" "$FILL" verify "$P" "$T/tv" >"$T/vt" 2>&1
# (Two Received: fields there, the provider's and the site's: "damaged"
# is verify's word for that; what counts is that none is missing.)
echo "# at the site: $(cut -d' ' -f2,4 "$T/vt"); provider bookkeeping failures: $(grep -c 'odmr.*\(full\|No space\)' "$T/posternd.log")"
expect_eq atrn_site_got_all "$(cut -d' ' -f2 "$T/vt")" "missing=0"
stop_posternd

# 805-map-full: the LMDB map (queue_map_size = 8m) fills before the disk.
#  1. Receiving: a client sends 64-200 KiB messages with unique Message-IDs
#     until refused: the refusals are 452 4.3.1; every message
#     acknowledged is in the queue once, byte for byte; the log names the
#     setting to raise and its value; the daemon runs on (same master and
#     listener, EHLO answered); after `postern delete` of some messages it
#     accepts again.
#  2. Delivery results and DSNs with the map full: held mail for
#     dest.example (3 of its recipients refused with 550 by the server),
#     the map filled with other held mail, an ETRN: once the fillers are
#     deleted and ETRN repeated, the queue is empty and its counts say so,
#     every message reached the server, and each refused one got exactly
#     one DSN.
. "$POSTERN_TOP/tests/integ/lib.sh"

. "$POSTERN_TOP/tests/integ/fill_lib.sh"
SRV="$POSTERN_TOP/tests/integ/deliver_fail_srv.py"

# ------------------------------------------------------------------
# 1. Receiving.
start_posternd hold_domains=hold.example queue_map_size=8m || exit 1
L1=$(smtpd_pid)
fill "$T/a" a 200
acked=$(sumf a acked)
if [ "${acked:-0}" -ge 10 ]; then ok map_acked_some; else
	notok map_acked_some "$(cat "$T/a.sum")"; fi
case "$(sed -n 's/.*first_refusal=//p' "$T/a.sum")" in
"452 4.3.1"*) ok map_full_452 ;;
*) notok map_full_452 "$(cat "$T/a.sum")" ;;
esac
expect_eq map_refusals_all_452 \
    "$(awk '$2 != 250 && !($2 == 452 && $3 == "4.3.1")' "$T/a/replies" | head -3)" ""
expect_grep map_full_log_names_setting \
    "queue full: .*queue map full (queue_map_size = 8m): raise queue_map_size" \
    "$T/posternd.log"
"$PY" "$FILL" verify "$P" "$T/a" >"$T/va" 2>&1
expect_eq map_acked_intact "$(cut -d' ' -f1-4 "$T/va")" \
    "intact=$acked missing=0 damaged=0 twice=0"
expect_eq map_master_alive "$(alive "$PD_PID" && echo y)" y
expect_eq map_listener_same "$(smtpd_pid)" "$L1"
check map_ehlo_answered "$PY" "$FILL" ehlo 127.0.0.1 "$SMTP_PORT"
"$P" queue --json | "$PY" -c '
import json, sys
ids = [json.loads(l)["id"] for l in sys.stdin if l.strip()]
print("\n".join(ids[:5]))' >"$T/del.ids"
check map_delete_when_full "$P" delete $(cat "$T/del.ids")
fill "$T/b" b 3
expect_eq map_accepts_after_delete "$(sumf b acked)" 3
stop_posternd

# ------------------------------------------------------------------
# 2. Delivery results and DSNs.
rm -rf "$T/queue"
DP=$(free_port)
printf 'dest.example [127.0.0.1]:%s\nclient.test [127.0.0.1]:%s\n' \
    "$DP" "$DP" >"$T/routes"
chmod 644 "$T/routes"
SMTP_PORT=$(free_port)
start_posternd hold_domains=hold.example,dest.example queue_map_size=8m \
    "routes_file=$T/routes" min_backoff=1s max_backoff=2s lease_time=3s \
    smtp_connect_timeout=2s connection_reuse_time=1s || exit 1
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/r" r ok@dest.example 20 1 \
    64 100 >"$T/r.sum"
"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$T/d" d bad@dest.example 3 1 \
    64 100 >"$T/d.sum"
expect_eq map_deliv_queued "$(sumf r acked) $(sumf d acked)" "20 3"
fill "$T/df" df 200
case "$(sed -n 's/.*first_refusal=//p' "$T/df.sum")" in
"452 4.3.1"*) ok map_deliv_full ;;
*) notok map_deliv_full "$(cat "$T/df.sum")" ;;
esac
mkdir "$T/dump"
"$PY" "$SRV" "$DP" "$T/srv.log" --bad bad@ --dump "$T/dump" \
    >"$T/srv.out" 2>&1 &
reap $!
wait_listen "$DP" || notok map_server_up "$(cat "$T/srv.out")"
"$PY" "$T/etrn.py" "$SMTP_PORT" dest.example >"$T/etrn0" 2>&1
echo "# ETRN with the map full: $(cat "$T/etrn0")"
case "$(cat "$T/etrn0")" in
"458 4.3.1 250"|"253 "*" 250") ok map_etrn_answered_cleanly ;;
*) notok map_etrn_answered_cleanly "$(cat "$T/etrn0")" ;;
esac
got_some() { [ "$(srv_mids | wc -l)" -ge 1 ]; }
until_ok 100 got_some
expect_eq map_deliv_master_alive "$(alive "$PD_PID" && echo y)" y
delete_held
expect_converged map_deliv_queue_converged dest.example
expect_eq map_deliv_every_message_sent "$(srv_mids | sort -u | wc -l)" 20
echo "# deliveries: $(srv_mids | wc -l) for 20 messages; result commits failed: $(grep -c 'queue_claim_result: .*full' "$T/posternd.log")"
expect_counts_zero map_deliv_counts_zero
dsns3() { [ "$(dsn_for | wc -l)" -ge 3 ]; }
until_ok 50 dsns3
expect_one_dsn_each map_deliv_one_dsn_each
stop_posternd

# 800-disk-full: the queue on a 16 MiB tmpfs (in a mount namespace of the
# test's own, `unshare -m`), filled until it is full.
#  1. Receiving: a client sends 64-200 KiB messages with unique Message-IDs
#     until it is refused. Every message acknowledged with 250 is in the
#     queue once, byte for byte; the refusals are 452 4.3.1; the daemon
#     runs on (the same master and listener PIDs, EHLO answered); once a
#     filler file on the same tmpfs is removed it accepts again, and once
#     the queue fills again, after `postern delete` of some messages.
. "$POSTERN_TOP/tests/integ/lib.sh"

if [ "${POSTERN_IN_NS:-}" != 1 ]; then
	# A mount namespace of our own: the tmpfs goes with it.
	rm -rf "$T"
	trap - EXIT INT TERM
	POSTERN_IN_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi

FILL="$POSTERN_TOP/tests/integ/fill_smtp.py"
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

# conf (lib.sh's, with the queue in $QDIR).
QDIR=$FS/queue
conf() {
	{
		echo "queue_dir = $QDIR"
		echo "myhostname = mx.test.example"
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
		case " $* " in
		*" odmr_listen="*) ;;
		*) echo "odmr_listen =" ;;
		esac
	} >"$T/postern.conf"
}

# fs_free - free KiB on the tmpfs.
fs_free() { df -k --output=avail "$FS" | tail -n 1 | tr -d ' '; }
# alive PID - the process runs.
alive() { kill -0 "$1" 2>/dev/null; }
# fill OUTDIR TAG MAX - send until 3 refusals in a row; the summary in
# $T/TAG.sum.
fill() {
	"$PY" "$FILL" send 127.0.0.1 "$SMTP_PORT" "$1" "$2" \
	    rcpt@hold.example "$3" >"$T/$2.sum" 2>&1
}
# sumf TAG FIELD - a field of the fill summary.
sumf() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$T/$1.sum"; }

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
expect_eq recv_disk_really_full "$([ "$(fs_free)" -lt 1024 ] && echo y)" y
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
print("\n".join(ids[:10]))' >"$T/del.ids"
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
# The deleted ones were the 10 oldest: a-0 .. a-9.
for i in 0 1 2 3 4 5 6 7 8 9; do rm -f "$T/all/a-$i.eml"; done
"$PY" "$FILL" verify "$P" "$T/all" >"$T/vall" 2>&1
expect_eq recv_all_acked_intact "$(cut -d' ' -f2-4 "$T/vall")" \
    "missing=0 damaged=0 twice=0"
expect_eq recv_master_alive_end "$(alive "$PD_PID" && echo y)" y
expect_eq recv_listener_same_end "$(smtpd_pid)" "$L1"
stop_posternd

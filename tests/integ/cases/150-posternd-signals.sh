# 150-posternd-signals: SIGHUP reloads (a bad file keeps the old
# configuration), SIGTERM lets a session in DATA finish, then exit 0.
. "$POSTERN_TOP/tests/integ/lib.sh"

echo ".example hold" >"$T/routes"
start_posternd "routes_file=$T/routes" "message_size_limit=1m" || exit 1

ehlo_size() {
	"$PY" - "$SMTP_PORT" <<'EOPY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
print(s.esmtp_features.get("size", "none"))
s.quit()
EOPY
}
expect_eq size_before "$(ehlo_size)" 1048576

# A good new file: SIZE follows it without a restart.
sed -i 's/^message_size_limit = .*/message_size_limit = 2m/' "$T/postern.conf"
smtpd_before=$(smtpd_pid)
kill -HUP "$PD_PID"
i=0
until grep -q "configuration reloaded" "$T/posternd.log" || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_grep reload_logged "smtpd.*configuration reloaded" "$T/posternd.log"
expect_eq size_after_reload "$(ehlo_size)" 2097152
# The same listener child, found both times (no pid is no proof).
smtpd_after=$(smtpd_pid)
if [ -n "$smtpd_before" ] && [ "$smtpd_after" = "$smtpd_before" ]; then
	ok same_listener
else
	why="'$smtpd_before' before the reload, '$smtpd_after' after"
	notok same_listener "smtpd pid $why (empty: not found)"
fi

# A bad file: logged, the old configuration kept, still serving.
echo "no_such_key = 1" >>"$T/postern.conf"
kill -HUP "$PD_PID"
i=0
until grep -q "keeping the old configuration" "$T/posternd.log" || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_grep bad_reload_logged "no_such_key.*keeping the old configuration" "$T/posternd.log"
expect_eq still_serving "$(ehlo_size)" 2097152

# SIGTERM while a session is in DATA: it may finish, gets its 250; the
# master exits 0; idle sessions get 421.
"$PY" - "$SMTP_PORT" "$PD_PID" >"$T/term.out" 2>&1 <<'EOPY'
import os, signal, socket, sys, time
port, master = int(sys.argv[1]), int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    return s, s.makefile("rb")
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return lines[-1].strip()
a, fa = conn(); reply(fa)
idle, fi = conn(); reply(fi)
a.sendall(b"EHLO x\r\n"); reply(fa)
a.sendall(b"MAIL FROM:<a@b.example>\r\n"); reply(fa)
a.sendall(b"RCPT TO:<c@d.example>\r\n"); reply(fa)
a.sendall(b"DATA\r\n"); print("data", reply(fa)[:3])
a.sendall(b"Subject: half\r\n\r\nfirst part\r\n")
os.kill(master, signal.SIGTERM)
print("idle", reply(fi)[:9])
time.sleep(0.5)		# the stop is under way while we are in DATA
a.sendall(b"second part\r\n.\r\n")
print("dot", reply(fa)[:3])
EOPY
expect_grep term_data_started "^data 354" "$T/term.out"
expect_grep term_idle_421 "^idle 421 4.3.2" "$T/term.out"
expect_grep term_dot_250 "^dot 250" "$T/term.out"
i=0
while kill -0 "$PD_PID" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$PD_PID" 2>/dev/null; then notok master_exited "still running"; else
	wait "$PD_PID"
	expect_eq master_exit_status $? 0
fi
expect_grep master_stopped "postern stopped" "$T/posternd.log"
sed -i '/^no_such_key/d' "$T/postern.conf"
expect_eq finished_message_queued "$(qjson '[r["address"] for m in msgs for r in m["recipients"]]')" "['c@d.example']"

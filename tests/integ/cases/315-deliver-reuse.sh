# 315-deliver-reuse: a cached connection that died while idle (the
# receiver restarted within connection_reuse_time) is not used: the next
# message goes out on a new connection at once instead of being deferred
# for min_backoff with "lost connection".
. "$POSTERN_TOP/tests/integ/lib.sh"

SINK_PORT=$(free_port)
mkdir -p "$T/sink"
chmod 777 "$T/sink"
sink_start() {
	smtp-sink -u postern -c -d "$T/sink/%H%M%S." "127.0.0.2:$SINK_PORT" 10 \
		>>"$T/sink.out" 2>&1 &
	SINK_PID=$!
	reap "$SINK_PID"
	wait_listen "$SINK_PORT" 127.0.0.2 || notok sink_start "smtp-sink did not start"
}
# delivered N - N messages are in the sink's dump directory.
delivered() { [ "$(ls "$T/sink" | wc -l)" -ge "$1" ]; }
printf 'reuse.example [127.0.0.2]:%s\n' "$SINK_PORT" >"$T/routes"
chmod 644 "$T/routes"
sink_start
start_posternd "routes_file=$T/routes" "connection_reuse_time=60s" \
	"min_backoff=1h" "max_backoff=1h" "workers=1" || exit 0

msg() {
	printf 'From: a@src.example\r\nSubject: reuse %s\r\n\r\nbody %s\r\n' "$1" "$1" |
		"$P" enqueue -f a@src.example "rcpt$1@reuse.example" >/dev/null
	"$P" flush >/dev/null 2>&1
}
msg 1
if poll_for 10 delivered 1; then ok first_delivered; else
	notok first_delivered "the first message did not arrive"; fi
# The receiver restarts: the worker's cached connection is now dead.
kill "$SINK_PID"
wait "$SINK_PID" 2>/dev/null
sink_start
msg 2
if poll_for 10 delivered 2; then ok second_on_new_connection; else
	notok second_on_new_connection "not delivered after the restart: $(
	    grep 'rcpt2@' "$T/posternd.log" | tail -1)"; fi
if grep 'rcpt2@' "$T/posternd.log" | grep -q 'status=deferred'; then
	notok no_deferral "$(grep 'rcpt2@' "$T/posternd.log" | tail -1)"
else
	ok no_deferral
fi
stop_posternd

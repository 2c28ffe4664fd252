# common.sh - ports and processes, for the integration cases (through
# tests/integ/lib.sh) and the benchmarks (through tests/bench/bench_lib.sh).
# Sourced; defines functions only.
#
# The port helpers read /proc/net: no Python to start for each port, and
# no connection made to learn that a server listens (smtp-sink and the
# test servers count every session).

# free_port - a port in 20000-60999 that no TCP or UDP socket of this
# host uses now.
free_port() {
	while :; do
		_np=$(shuf -i 20000-60999 -n 1)
		_nhex=$(printf '%04X' "$_np")
		grep -q "^ *[0-9]*: [0-9A-F]*:$_nhex " /proc/net/tcp \
			/proc/net/tcp6 /proc/net/udp /proc/net/udp6 \
			2>/dev/null || break
	done
	echo "$_np"
}

# listening PORT [IP] - does a TCP socket listen on IP:PORT (IPv4,
# default 127.0.0.1), or on any address?
listening() {
	_nip=$(echo "${2:-127.0.0.1}" |
		awk -F. '{ printf "%02X%02X%02X%02X", $4, $3, $2, $1 }')
	_nhex=$(printf '%04X' "$1")
	grep -Eq "^ *[0-9]+: ($_nip|00000000):$_nhex 0+:0000 0A" \
		/proc/net/tcp ||
	grep -Eq "^ *[0-9]+: 0{32}:$_nhex 0+:0000 0A" /proc/net/tcp6 \
		2>/dev/null
}

# wait_listen PORT [IP] - poll until listening (10 s at most); 1 if not.
wait_listen() {
	_ni=0
	while ! listening "$@"; do
		_ni=$((_ni + 1))
		[ $_ni -gt 200 ] && return 1
		sleep 0.05
	done
}

# wait_port PORT [IP] - the same (the name the older cases use).
wait_port() {
	wait_listen "$@"
}

# term_wait PID TENTHS - SIGTERM to PID (a process we started), then wait
# until it is gone, TENTHS tenths of a second at most; 1 if it is not.
term_wait() {
	kill -TERM "$1" 2>/dev/null
	_nt=0
	while kill -0 "$1" 2>/dev/null && [ $_nt -lt "$2" ]; do
		sleep 0.1
		_nt=$((_nt + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

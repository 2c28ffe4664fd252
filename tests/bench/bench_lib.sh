# bench_lib.sh - what the benchmark scripts share; sourced by
# bench_receive.sh and bench_deliver.sh once they have set $top and
# defined die(). Defines functions only.
#
# The Postfix instance is our own: config in $PF_ETC, queue and data
# directories below $W, smtpd on 127.0.0.1 on a port of our choosing, no
# chroot, its log in $W/pf-maillog, `postfix -c $PF_ETC start/stop`; the
# system's Postfix is neither read nor changed.

# free_port, listening, wait_listen, term_wait.
. "$top/tests/common.sh"

now() { date +%s.%N; }

# bench_dir NAME [DIR] - the scratch directory: $DIR (DIR, else a new
# /tmp/postern-bench-NAME.PID, or build/benchtmp/NAME.PID when /tmp is
# tmpfs: an fsync on tmpfs costs nothing, so a tmpfs DIR is refused), $W
# below it, and $PF_ETC for the Postfix instance. $madetmp: whether
# build/benchtmp was made for it (the caller's cleanup removes both).
bench_dir() {
	madetmp=false
	if [ $# -ge 2 ]; then
		DIR=$2
	else
		case $(stat -f -c %T /tmp 2>/dev/null) in
		tmpfs|ramfs|"")
			[ -d "$top/build/benchtmp" ] || madetmp=true
			DIR=$top/build/benchtmp/$1.$$ ;;
		*)
			DIR=/tmp/postern-bench-$1.$$ ;;
		esac
	fi
	mkdir -p "$DIR" || die "cannot make $DIR"
	DIR=$(cd "$DIR" && pwd)
	case $(stat -f -c %T "$DIR") in
	tmpfs|ramfs) die "$DIR is on tmpfs: give a directory on a disk" ;;
	esac
	chmod 755 "$DIR"	# posternd runs as the postern user
	W=$DIR/work
	mkdir -p "$W"
	chmod 755 "$W"
	PF_ETC=$DIR/postfix-etc
}

# greets PORT - poll (30 s at most) until a server there says 220.
greets() {
	python3 - "$1" <<'EOPY'
import socket, sys, time
end = time.time() + 30
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)
        s.settimeout(2)
        if s.recv(4) == b"220 ":
            s.sendall(b"QUIT\r\n")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit(1)
EOPY
}

# median FILE - of the numbers in FILE, one a line.
median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# pf_setup PORT [LINE...] - write the instance's main.cf and master.cf:
# smtpd on 127.0.0.1:PORT puts every message it takes on hold
# (check_recipient_access static:HOLD; qmgr never sees it); each LINE is
# added to main.cf ("relayhost = ..." to relay what is released).
pf_setup() {
	_pfport=$1
	shift
	mkdir -p "$PF_ETC" "$W/pf-data"
	chown postfix "$W/pf-data"
	{
		cat <<EOCF
# A private Postfix for a benchmark: smtpd holds what it takes.
compatibility_level = 3.6
queue_directory = $W/pf-queue
data_directory = $W/pf-data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.example
mydomain = bench.example
myorigin = \$myhostname
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access static:HOLD
maillog_file = $W/pf-maillog
maillog_file_prefixes = $W
biff = no
EOCF
		for _l in "$@"; do
			echo "$_l"
		done
	} >"$PF_ETC/main.cf"
	cat >"$PF_ETC/master.cf" <<EOCF
127.0.0.1:$_pfport inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
local      unix  - n n -  - local
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOCF
	PF_PORT=$_pfport
}

# pf_start - start the instance on a fresh queue ($PF_Q); wait until its
# smtpd answers.
pf_start() {
	PF_Q=$W/pf-queue
	rm -rf "$PF_Q" "$W/pf-maillog"
	mkdir -m 755 "$PF_Q"
	postfix -c "$PF_ETC" start >"$W/pf-start.out" 2>&1 ||
		die "postfix -c $PF_ETC start failed: $(cat "$W/pf-start.out") $(tail -n 5 "$W/pf-maillog" 2>/dev/null)"
	greets "$PF_PORT" || die "Postfix does not answer: $(tail -n 5 "$W/pf-maillog")"
}

# pf_stop - stop it (its master by pid, 30 s at most), remove its queue,
# and sync: the next run does not pay for this one's writes.
pf_stop() {
	pf_master=$(tr -d ' ' <"$PF_Q/pid/master.pid" 2>/dev/null)
	postfix -c "$PF_ETC" stop >/dev/null 2>&1
	i=0
	while [ -n "$pf_master" ] && kill -0 "$pf_master" 2>/dev/null &&
	    [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	rm -rf "$PF_Q"
	PF_Q=""
	sync
}

# bench_lib.sh - what the benchmark scripts share; sourced by each
# bench_*.sh (and by 932-deliver-bdat-postfix.sh, for pf_setup) once it
# has set $top and defined say() and die(). Defines functions only; a
# script that needs another pd_conf or pd_start defines its own after
# sourcing this.
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

# bench_dir_rm - remove $DIR, and build/benchtmp when bench_dir made it.
bench_dir_rm() {
	rm -rf "$DIR"
	if $madetmp; then
		rmdir "$top/build/benchtmp" 2>/dev/null
	fi
}

# need_pd - $PDBIN's posternd and postern, and (when they are bin/'s, no
# POSTERN_BIN given) no older than their sources: they are this source.
need_pd() {
	[ -x "$PDBIN/posternd" ] && [ -x "$PDBIN/postern" ] ||
		die "$PDBIN/posternd or postern missing: run make bin/postern bin/posternd"
	if [ -z "${POSTERN_BIN:-}" ] &&
	    ! (cd "$top" && make -q bin/postern bin/posternd) >/dev/null 2>&1; then
		die "bin/postern or bin/posternd is not up to date: run make bin/postern bin/posternd"
	fi
}

# elapsed A B - seconds from A to B (now's format), 3 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
# rate SECONDS - $N messages in SECONDS, per second.
rate() { awk -v n="$N" -v t="$1" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print 0 }'; }
# runs_of FILE - the rate of each run in FILE (seconds, one a line).
runs_of() { awk -v n="$N" '{ printf "%s%.0f", (NR > 1 ? " " : ""), n / $1 }' "$1"; }
# ratio_of A B - A / B, 2 decimals (0 when B is 0).
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }'; }
# list FILE - its lines on one line.
list() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

# bench_domains N PREFIX - $DOMAINS: " PREFIX1.example ... PREFIXN.example".
bench_domains() {
	DOMAINS=""
	_i=1
	while [ $_i -le "$1" ]; do
		DOMAINS="$DOMAINS $2$_i.example"
		_i=$((_i + 1))
	done
}

# pd_conf FILE QUEUE [KEY=VALUE...] - a posternd config: QUEUE, smtpd on
# 127.0.0.1:$PD_PORT, no ODMR listener (odmr_listen at its default when
# PD_ODMR is set: bench_etrn.sh), then each KEY=VALUE.
pd_conf() {
	_f=$1 _q=$2
	shift 2
	{
		echo "queue_dir = $_q"
		echo "listen = 127.0.0.1:$PD_PORT"
		[ -n "${PD_ODMR:-}" ] || echo "odmr_listen ="
		echo "myhostname = bench.example"
		echo "max_connections = 200"
		for kv in "$@"; do
			echo "$kv" | sed 's/=/ = /'
		done
	} >"$_f"
	chmod 644 "$_f"
}
# pd_start CONF LOG - start posternd -f ($PD_PID); wait until it answers;
# $PD_SCHED is its scheduler child.
pd_start() {
	"$PDBIN/posternd" -c "$1" -f >"$2" 2>&1 &
	PD_PID=$!
	greets "$PD_PORT" || die "posternd does not answer: $(tail -n 5 "$2")"
	PD_SCHED=$(sed -n "s/^postern\/master\[$PD_PID\]: started sched, pid \([0-9]*\)$/\1/p" \
	    "$2" | tail -n 1)
}
# pd_stop - stop it by its pid (40 s, then KILL).
pd_stop() {
	term_wait "$PD_PID" 400 || kill -KILL "$PD_PID" 2>/dev/null
	wait "$PD_PID" 2>/dev/null
	PD_PID=""
}
# pd_rcpts CONF - live recipients ("recipients" of postern stats --json).
pd_rcpts() {
	"$PDBIN/postern" -c "$1" stats --json 2>/dev/null |
	    sed -n 's/^{"time":[0-9]*,"messages":[0-9]*,"recipients":\([0-9]*\),.*/\1/p'
}

# src_wait - wait for the smtp-source runs in $SRC_PIDS; die if one failed.
src_wait() {
	_bad=0
	for p in $SRC_PIDS; do
		wait "$p" || _bad=$((_bad + 1))
	done
	SRC_PIDS=""
	[ "$_bad" -eq 0 ] || die "smtp-source: $_bad run(s) failed: $(cat "$W"/src.* | head -c 300)"
}
# inject_mix PORT - $SRC's mail to 127.0.0.1:PORT: $PER messages of 4 KiB
# with 1 recipient and $PER with 5 to each of $DOMAINS, all runs at once.
inject_mix() {
	SRC_PIDS=""
	for d in $DOMAINS; do
		for r in 1 5; do
			timeout -k 5 300 "$SRC" -s 1 -d -N -m "$PER" -r "$r" \
			    -l 4096 -f bench@client.example -t "u@$d" \
			    "127.0.0.1:$1" >"$W/src.$d.$r" 2>&1 &
			SRC_PIDS="$SRC_PIDS $!"
		done
	done
	src_wait
}

# pd_template INJECT - the template queue $TPL, made once: posternd holds
# $DOMAINS while INJECT $PD_PORT sends $N messages ($NRCPT recipients);
# then every message is flushed by id (a flush by id releases site holds:
# due now) with no posternd running.
pd_template() {
	t0=$(now)
	pd_conf "$W/inject.conf" "$TPL" "hold_domains=$(echo "$DOMAINS" | sed 's/^ //; s/ /,/g')"
	pd_start "$W/inject.conf" "$W/pd-inject.log"
	"$1" "$PD_PORT"
	pd_stop
	q=$(grep -c ': client=.*, size=[0-9]*, nrcpt=' "$W/pd-inject.log")
	[ "$q" -eq "$N" ] || die "posternd queued $q of $N messages"
	"$PDBIN/postern" -c "$W/inject.conf" queue --json |
	    sed -n 's/^{"id":"\([0-9A-Z]*\)".*/\1/p' >"$W/ids"
	[ "$(wc -l <"$W/ids")" -eq "$N" ] || die "postern queue lists $(wc -l <"$W/ids") messages, want $N"
	xargs -n 1000 "$PDBIN/postern" -c "$W/inject.conf" flush <"$W/ids" >"$W/flush.out" 2>&1 ||
		die "postern flush by id: $(head -c 300 "$W/flush.out")"
	made=$(awk '{ s += $3 } END { print s }' "$W/flush.out")
	[ "$made" -eq "$NRCPT" ] || die "postern flush made $made recipients due, want $NRCPT"
	rm -f "$TPL/lock.mdb"
	say "posternd template: $N messages, $NRCPT recipients taken over SMTP and made due in $(elapsed "$t0" "$(now)") s"
}

# drain LIMIT T0 COUNT [ARG...] - while $ok, poll (every 0.2 s) until
# COUNT ARG... prints 0 ($left: what it printed last); $ok is false once
# more than LIMIT seconds have passed since T0 (now's format).
drain() {
	_lim=$1 _t0=$2
	shift 2
	left=$("$@")
	while $ok && [ "${left:-1}" -ne 0 ]; do
		sleep 0.2
		left=$("$@")
		[ $(($(date +%s) - ${_t0%.*})) -gt "$_lim" ] && ok=false
	done
}

# pf_files - the Postfix instance's queue files not yet gone.
pf_files() {
	find "$PF_Q/incoming" "$PF_Q/active" "$PF_Q/deferred" "$PF_Q/hold" \
	    "$PF_Q/maildrop" -type f 2>/dev/null | wc -l | tr -d ' '
}

# bench_cleanup - what the EXIT trap does: stop by pid what still runs
# (smtp-source runs, posternd, the script's sink, Postfix) and remove the
# scratch directory.
bench_cleanup() {
	for p in $SRC_PIDS; do kill "$p" 2>/dev/null; done
	[ -n "$PD_PID" ] && pd_stop
	[ -n "$SINK_PID" ] && sink_stop
	[ -n "$PF_Q" ] && pf_stop
	bench_dir_rm
}

# bench_where - "queues in DIR (fs, device), N CPUs; posternd PATH,
# Postfix VERSION": the first line a benchmark says.
bench_where() {
	echo "queues in $DIR ($(stat -f -c %T "$DIR"), $(df -P "$DIR" | awk 'NR == 2 { print $1 }')), $(nproc) CPUs;" \
	    "posternd $PDBIN/posternd, Postfix $(postconf -d -h mail_version 2>/dev/null)"
}

# pd_routes PORT - $ROUTES: each of $DOMAINS to [127.0.0.1]:PORT; $TPL,
# where pd_template makes the template queue.
pd_routes() {
	ROUTES=$W/routes
	for d in $DOMAINS; do
		echo "$d [127.0.0.1]:$1"
	done >"$ROUTES"
	chmod 644 "$ROUTES"
	TPL=$W/pd-template
}

# pd_copy - $Q: a fresh copy of the template queue, for one timed run.
pd_copy() {
	Q=$W/pd-q
	rm -rf "$Q"
	cp -a "$TPL" "$Q"
}

# bench_pkgs - the Makefile's PKGS (what the objects link with: libidn2,
# libcurl... as well as lmdb, c-ares and OpenSSL).
bench_pkgs() {
	# shellcheck disable=SC2016
	_pk=$(cd "$top" && make -s --no-print-directory \
	    --eval 'bench-print-pkgs: ; @echo $(PKGS)' bench-print-pkgs 2>/dev/null) || _pk=""
	echo "${_pk:-lmdb libcares openssl libmicrohttpd libidn2 libcurl}"
}

# bench_cc OUT SRC... - build a C benchmark as run.sh builds them: the
# Makefile's REL_CFLAGS and PKGS, bench_util.c and the release objects of
# smtp/ and queue/; die if it does not build.
bench_cc() {
	_out=$1
	shift
	# shellcheck disable=SC2016
	_cf=$(cd "$top" && make -s --no-print-directory \
	    --eval 'bench-print-cflags: ; @echo $(REL_CFLAGS) $(INC_tools)' bench-print-cflags \
	    2>/dev/null) || _cf=""
	[ -n "$_cf" ] || _cf="-std=c17 -D_GNU_SOURCE -O2 -Ismtp -Iqueue"
	_pk=$(bench_pkgs)
	# shellcheck disable=SC2086,SC2046
	(cd "$top" && cc $_cf -Itests/bench $(pkg-config --cflags $_pk) \
	    -o "$_out" "$@" tests/bench/bench_util.c \
	    build/rel/smtp/*.o build/rel/queue/*.o \
	    $(pkg-config --libs $_pk) -lcrypt -lpthread) ||
		die "cannot build ${_out##*/}"
}

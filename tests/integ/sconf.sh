# sconf.sh - sconf, the sender configs of 300-deliver-route.sh,
# 900-dane.sh, 910-mta-sts.sh and 911-mta-sts-dane.sh (delivering through
# the DNS server at $DNS_PORT to SMTP port $SP), and dline/expect_line over
# their logs. Sourced after lib.sh.

# sconf NAME KEY=VALUE... - a sender config $T/NAME.conf with its own
# queue $T/NAME.q; the defaults below unless a KEY=VALUE gives the key.
sconf() {
	name=$1
	shift
	{
		echo "queue_dir = $T/$name.q"
		for kv in "myhostname=me.d.example" \
			"dns_servers=127.0.0.1:$DNS_PORT" "smtp_port=$SP" \
			min_backoff=1h max_backoff=2h workers=2 odmr_listen= \
			smtp_connect_timeout=5s smtp_command_timeout=20s "$@"; do
			echo "$kv"
		done | awk -F= '{ k[NR] = $1; l[NR] = $0; last[$1] = NR }
			END { for (i = 1; i <= NR; i++) if (last[k[i]] == i) {
				sub(/=/, " = ", l[i]); print l[i] } }'
	} >"$T/$name.conf"
	chmod 644 "$T/$name.conf"
}

# dline NAME ADDR - the delivery log line for ADDR in $T/NAME.log (the
# last one).
dline() { grep -F "to=<$2>," "$T/$1.log" | tail -n 1; }
# expect_line TEST NAME ADDR REGEX - that line matches an extended regex;
# a failure shows the start of the log (without the postern command's own
# lines).
expect_line() {
	l=$(dline "$2" "$3")
	if printf '%s\n' "$l" | grep -q -E -- "$4"; then ok "$1"; else
		notok "$1" "line '$l' does not match '$4' (log: $(grep -v '^postern/postern' "$T/$2.log" | head -c 1200))"; fi
}

# sconf.sh - sconf, the sender configs of 300-deliver-route.sh and
# 900-dane.sh (delivering through the DNS server at $DNS_PORT to SMTP
# port $SP). Sourced after lib.sh.

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

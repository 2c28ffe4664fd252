# 045-cli-check-hardening: `postern check` parses what the daemon parses,
# with the daemon's own parsers, and posternd refuses to start on the same
# errors with the same words before it forks anything.
. "$POSTERN_TOP/tests/integ/lib.sh"

# cf KEY=VALUE... - the configuration `postern check` and posternd read.
PORT=$(free_port)
cf() { conf "listen=127.0.0.1:$PORT" "$@"; }

# same_words NAME - every error `postern check` printed (in $T/out) is
# also in posternd's output ($T/pd.out), word for word.
same_words() {
	sed -n 's/^postern check: error: //p' "$T/out" >"$T/errs"
	if [ ! -s "$T/errs" ]; then
		notok "$1" "check printed no error: $(head -c 300 "$T/out")"
		return
	fi
	while IFS= read -r _l; do
		if ! grep -qF -- "$_l" "$T/pd.out"; then
			notok "$1" "posternd did not say '$_l': $(tail -c 300 "$T/pd.out")"
			return
		fi
	done <"$T/errs"
	ok "$1"
}

# An empty queue directory (as packaging leaves it) is fine, like a
# missing one.
mkdir -m 700 "$T/queue"
check check_empty_queue_dir "$P" check
expect_grep empty_queue_said "empty" "$T/out"
# ... but a directory that holds something else is not a queue.
touch "$T/queue/stray"
expect_rc check_not_a_queue 1 "$P" check
rm -f "$T/queue/stray"

# A routes_file syntax error: named with its file and line.
printf 'good.example [127.0.0.1]:25\nbad.example [127.0.0.1\n' >"$T/routes"
cf "routes_file=$T/routes"
expect_rc check_routes_bad 1 "$P" check
expect_grep check_routes_line "routes_file: $T/routes:2: " "$T/out"
posternd_refuses posternd_routes_bad
same_words posternd_routes_same_words

# A bad users_file line.
printf '# users\nalice-without-secrets\n' >"$T/users"
chmod 600 "$T/users"
chown postern "$T/users"	# posternd reads it as postern
cf "users_file=$T/users"
expect_rc check_users_bad 1 "$P" check
expect_grep check_users_line "users_file: $T/users:2: " "$T/out"
posternd_refuses posternd_users_bad
same_words posternd_users_same_words

# A bad relayhost_auth_file: a line that is not USER:PASSWORD.
printf '# relay\nuser-without-password\n' >"$T/relayauth"
chmod 600 "$T/relayauth"
chown postern "$T/relayauth"
cf "relayhost=[127.0.0.1]:2999" "relayhost_auth_file=$T/relayauth"
expect_rc check_relayauth_bad 1 "$P" check
expect_grep check_relayauth_line "relayhost_auth_file: $T/relayauth:2: " "$T/out"
posternd_refuses posternd_relayauth_bad
same_words posternd_relayauth_same_words
printf '# relay\n\n' >"$T/relayauth"
expect_rc check_relayauth_empty 1 "$P" check
expect_grep check_relayauth_empty_said "relayhost_auth_file: $T/relayauth: " "$T/out"

# A certificate and a key that do not match.
make_cert c1 mx.test.example
make_cert c2 other.example
cf "tls_cert_file=$T/c1.crt" "tls_key_file=$T/c2.key"
expect_rc check_tls_mismatch 1 "$P" check
expect_grep check_tls_line "postern.conf:[0-9]*: tls_cert_file: " "$T/out"
posternd_refuses posternd_tls_mismatch
same_words posternd_tls_same_words
# A key without its certificate is an error too.
cf "tls_key_file=$T/c1.key"
expect_rc check_tls_key_alone 1 "$P" check
# A CA file that holds no certificate.
printf 'not a certificate\n' >"$T/ca.pem"
cf "tls_ca_file=$T/ca.pem"
expect_rc check_ca_bad 1 "$P" check
expect_grep check_ca_line "postern.conf:[0-9]*: tls_ca_file: $T/ca.pem" "$T/out"
posternd_refuses posternd_ca_bad
same_words posternd_ca_same_words

# A bad dns_servers value, named with the configuration's line.
cf "dns_servers=127.0.0.1:53 300.1.2.3"
expect_rc check_dns_bad 1 "$P" check
expect_grep check_dns_line "postern.conf:4: dns_servers: bad server \"300.1.2.3\"" "$T/out"
posternd_refuses posternd_dns_bad
same_words posternd_dns_same_words

# Several errors at once: each is reported.
cf "routes_file=$T/routes" "dns_servers=300.1.2.3"
expect_rc check_two_errors 1 "$P" check
expect_grep check_two_errors_count "2 errors" "$T/out"

# A users_file or relayhost_auth_file that others can read: a warning,
# and still exit 0.
printf 'x\n' | "$P" passwd alice >"$T/users" 2>/dev/null
printf 'bob:secret\n' >"$T/relayauth"
chmod 644 "$T/users" "$T/relayauth"
cf "users_file=$T/users" "relayhost=[127.0.0.1]:2999" \
	"relayhost_auth_file=$T/relayauth"
check check_readable_ok "$P" check
expect_grep check_users_warned "postern check: warning: .*users_file: $T/users: .*mode 0644" "$T/out"
expect_grep check_relayauth_warned "postern check: warning: .*relayhost_auth_file: $T/relayauth: .*mode 0644" "$T/out"
chmod 600 "$T/users" "$T/relayauth"
check check_private_ok "$P" check
if grep -q warning "$T/out"; then
	notok check_private_no_warning "$(head -c 300 "$T/out")"
else
	ok check_private_no_warning
fi

# A good configuration still starts; the warning reaches posternd's log.
chmod 644 "$T/users"
chown postern "$T/users" "$T/relayauth"
SMTP_PORT=$PORT start_posternd "users_file=$T/users" "relayhost=[127.0.0.1]:2999" \
	"relayhost_auth_file=$T/relayauth" && ok posternd_starts
expect_grep posternd_warned "warning: .*users_file: $T/users: .*mode 0644" "$T/posternd.log"
stop_posternd && ok posternd_stops

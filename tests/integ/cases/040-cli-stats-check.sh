# 040-cli-stats-check: `stats` (queue shape) and `check` (configuration).
. "$POSTERN_TOP/tests/integ/lib.sh"

for i in 1 2 3; do echo x | "$P" enqueue "u$i@big.example" >/dev/null; done
echo x | "$P" enqueue a@small.example b@big.example >/dev/null
"$P" stats --json >"$T/stats"
st() { "$PY" -c "import json; s = json.load(open('$T/stats')); print($1)"; }
expect_eq stats_messages "$(st 's["messages"]')" 4
expect_eq stats_recipients "$(st 's["recipients"]')" 5
expect_eq stats_domains "$(st '[(d["domain"], d["total"]) for d in s["domains"]]')" "[('big.example', 4), ('small.example', 1)]"
expect_eq stats_young_bucket "$(st 's["total"][0]')" 5
expect_eq stats_buckets "$(st 's["buckets_min"]')" "[5, 10, 20, 40, 80, 160, 320]"
"$P" stats >"$T/text"
expect_grep stats_text_total "TOTAL       5" "$T/text"
expect_grep stats_text_domain "big.example       4" "$T/text"

check check_ok "$P" check
expect_grep check_says_ok "ok" "$T/out"

# Configuration errors name the file, the line and the key.
printf 'queue_dir = %s/queue\nworkers = 0\n' "$T" >"$T/bad.conf"
expect_rc check_bad_value 1 "$P" -c "$T/bad.conf" check
expect_grep bad_value_names_it "bad.conf:2: workers" "$T/out"
printf 'queue_dir = %s/queue\nno_such_key = 1\n' "$T" >"$T/bad2.conf"
expect_rc unknown_key_usage 2 "$P" -c "$T/bad2.conf" queue
expect_grep unknown_key_named "bad2.conf:2: no_such_key" "$T/out"
expect_rc missing_conf 1 "$P" -c "$T/nope.conf" check
expect_grep missing_conf_named "nope.conf" "$T/out"

# TLS material: a key that does not match its certificate is an error.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k1.pem" -out "$T/c1.pem" \
	-days 1 -subj /CN=mx.test.example >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k2.pem" -out "$T/c2.pem" \
	-days 1 -subj /CN=other >/dev/null 2>&1
conf "tls_cert_file=$T/c1.pem" "tls_key_file=$T/k1.pem"
check check_tls_ok "$P" check
conf "tls_cert_file=$T/c1.pem" "tls_key_file=$T/k2.pem"
expect_rc check_tls_mismatch 1 "$P" check
expect_grep tls_mismatch_said "mismatch" "$T/out"
conf "routes_file=$T/no-routes"
expect_rc check_missing_file 1 "$P" check
expect_grep missing_file_said "routes_file: $T/no-routes: " "$T/out"

# A queue of another schema version is refused clearly.
conf
rm -rf "$T/queue"
echo x | "$P" enqueue z@example.org >/dev/null
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 76657273696f6e\n 00000063\nDATA=END\n' |
	mdb_load -s meta "$T/queue" 2>"$T/out"
expect_rc wrong_schema_refused 1 "$P" queue
expect_grep wrong_schema_said "schema version 99" "$T/out"

# A missing queue directory is an error for readers.
conf "queue_dir=$T/none"
sed -i "1d" "$T/postern.conf"
expect_rc missing_queue_dir 1 "$P" queue
expect_grep missing_queue_said "$T/none" "$T/out"

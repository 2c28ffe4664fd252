# 931-deliver-bdat: the client's BDAT (RFC 3030), through posternd (SMTP
# in, its scheduler delivering) to tests/integ/bdat_sink.py, which records
# how each message came and its chunks:
#  - a small message goes by DATA, one of smtp_bdat_min_size (64k) or
#    more by BDAT: chunks of 262144 octets, the last one LAST, not
#    dot-stuffed, the octets those stored (sha256);
#  - smtp_bdat_min_size = 1: every message by BDAT ("BDAT n LAST");
#    = 0: the big one by DATA;
#  - a server without CHUNKING gets DATA;
#  - 554 to a chunk: RSET, the recipient bounced, a DSN to the sender;
#    452: RSET, the recipient deferred;
#  - a BINARYMIME message (taken by posternd with BDAT) goes on with
#    BODY=BINARYMIME and its octets as received; to a server without
#    BINARYMIME it fails with 5.6.3 and a DSN.
# Addresses: 127.0.93.1 (CHUNKING and BINARYMIME), 127.0.93.2 (neither).
. "$POSTERN_TOP/tests/integ/lib.sh"

SINK="$POSTERN_TOP/tests/integ/bdat_sink.py"
P1=$(free_port)
P2=$(free_port)
mkdir -p "$T/s1" "$T/s2"
"$PY" "$SINK" 127.0.93.1 "$P1" "$T/s1" --chunking --binarymime \
	>"$T/s1.out" 2>&1 &
reap $!
"$PY" "$SINK" 127.0.93.2 "$P2" "$T/s2" >"$T/s2.out" 2>&1 &
reap $!
wait_listen "$P1" 127.0.93.1 || notok sink1 "not listening"
wait_listen "$P2" 127.0.93.2 || notok sink2 "not listening"
{
	echo "chunk.example [127.0.93.1]:$P1"
	echo "src.example [127.0.93.1]:$P1"
	echo "plain.example [127.0.93.2]:$P2"
} >"$T/routes"
chmod 644 "$T/routes"

# run_daemon [KEY=VALUE...] - posternd with these routes, a fresh queue.
run_daemon() {
	QDIR="$T/q.$1"
	shift
	start_posternd mynetworks=127.0.0.1/32 "routes_file=$T/routes" \
		min_backoff=1h max_backoff=2h "$@" || exit 1
}
# inject FILE RCPT [--binary] - one message over SMTP into posternd (BDAT
# for --binary, BODY=BINARYMIME; smtplib's DATA else); prints its queue id.
inject() { smtp_inject "$SMTP_PORT" s@src.example "$@"; }
# status_of ADDR - the status= of ADDR's last delivery line; final ADDR:
# the same, once there is one (30 s at most).
status_of() {
	sed -n "s/.*: to=<$1>,.* status=\([a-z]*\) .*/\1/p" "$T/posternd.log" |
	    tail -n 1
}
has_status() { [ -n "$(status_of "$1")" ]; }
final() { poll_for 30 has_status "$1"; status_of "$1"; }
# rec DIR N EXPR - a Python expression over the N-th record (1-based) of
# sink DIR's log whose rcpt names WHO, bound to `r`.
rec() {
	"$PY" - "$T/$1/log" "$2" "$3" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rs = [r for r in rs if any(sys.argv[2] in x for x in r["rcpt"])]
r = rs[-1] if rs else None
print(eval(sys.argv[3]) if r else "no-record")
EOF
}
# same SINKDIR WHO FILE - "same" when the octets sink SINKDIR got for WHO
# are FILE's under posternd's one Received: field.
same() {
	after_received "$T/$1/$(rec "$1" "$2" 'r["n"]').eml" "$3" \
	    "Received: from py.test.example"
}

# Messages: small (1 KiB), big (600 KiB, lines that start with a dot).
"$PY" - "$T" <<'EOF'
import sys
t = sys.argv[1]
small = b"Subject: small\r\n\r\n" + b"".join(b".line %d\r\n" % i for i in range(100))
big = b"Subject: big\r\n\r\n" + b"".join(b".%05d " % i + b"z" * 70 + b"\r\n" for i in range(8000))
open(t + "/small", "wb").write(small)
open(t + "/big", "wb").write(big)
binary = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) * 300
open(t + "/binary", "wb").write(binary)
EOF

# --- default threshold (64k) ------------------------------------------
run_daemon d
id_small=$(inject "$T/small" small@chunk.example)
id_big=$(inject "$T/big" big@chunk.example)
id_plain=$(inject "$T/big" big@plain.example)
expect_eq small_sent "$(final small@chunk.example)" sent
expect_eq big_sent "$(final big@chunk.example)" sent
expect_eq plain_sent "$(final big@plain.example)" sent
expect_eq small_by_data "$(rec s1 small@ 'r["how"]')" DATA
expect_eq big_by_bdat "$(rec s1 big@chunk 'r["how"]')" BDAT
sz=$(stat -c %s "$T/big")
# Our Received: field is in front: the stored message is a little bigger.
expect_eq big_chunks "$(rec s1 big@chunk '[c[0] for c in r["chunks"][:-1]] + [r["chunks"][-1][1]]')" \
	"[262144, 262144, True]"
expect_eq big_same_octets "$(same s1 big@chunk "$T/big")" same
expect_eq small_same_octets "$(same s1 small@ "$T/small")" same
expect_eq big_not_stuffed "$(grep -c '^\.\.' "$T/s1/$(rec s1 big@chunk 'r["n"]').eml")" 0
expect_eq no_chunking_data "$(rec s2 big@plain 'r["how"]')" DATA
expect_eq no_chunking_same "$(same s2 big@plain "$T/big")" same
expect_grep bdat_in_pipeline "^BDAT 262144$" "$T/s1/cmds"
expect_grep bdat_last_cmd "^BDAT [0-9]* LAST$" "$T/s1/cmds"

# 554 to a chunk: bounced, with a DSN to s@src.example (routed to the same
# sink); 452: deferred. Both end with RSET.
: >"$T/s1/cmds"
id5=$(inject "$T/big" chunk5xx@chunk.example)
expect_eq chunk_5xx_bounced "$(final chunk5xx@chunk.example)" bounced
id4=$(inject "$T/big" chunk4xx@chunk.example)
poll_for 30 eval '[ "$(qstates chunk4xx)" = "deferred:1" ]'
expect_eq chunk_4xx_deferred "$(qstates chunk4xx)" "deferred:1"
expect_eq chunk_reset "$(grep -c '^RSET$' "$T/s1/cmds")" 2
poll_for 30 grep -q 'MAIL FROM:<>' "$T/s1/log"
expect_eq chunk_5xx_dsn "$(rec s1 s@src.example 'r["mail"].startswith("MAIL FROM:<>")')" True
expect_grep chunk_5xx_logged "to=<chunk5xx@chunk.example>.*dsn=5.6.0, status=bounced (554 5.6.0 chunk refused)" "$T/posternd.log"
expect_grep chunk_4xx_logged "to=<chunk4xx@chunk.example>.*dsn=4.3.1, status=deferred (452 4.3.1 chunk refused for now)" "$T/posternd.log"

# BINARYMIME: taken with BDAT, passed on with BODY=BINARYMIME, octets as
# received; to the server without BINARYMIME: 5.6.3 and a DSN.
idb=$(inject "$T/binary" bin@chunk.example --binary)
idb2=$(inject "$T/binary" bin@plain.example --binary)
expect_eq binary_delivered "$(final bin@chunk.example)" sent
expect_eq binary_body_param "$(rec s1 bin@chunk '"BODY=BINARYMIME" in r["mail"]')" True
expect_eq binary_by_bdat "$(rec s1 bin@chunk 'r["how"]')" BDAT
expect_eq binary_same_octets "$(same s1 bin@chunk "$T/binary")" same
expect_eq binary_refused "$(final bin@plain.example)" bounced
expect_grep binary_563_logged "to=<bin@plain.example>.*dsn=5.6.3, status=bounced" "$T/posternd.log"
poll_for 30 eval '[ "$(grep -c "MAIL FROM:<>" "$T/s1/log")" -ge 2 ]'
expect_eq binary_dsn "$(grep -c 'MAIL FROM:<>' "$T/s1/log")" 2
stop_posternd

# --- smtp_bdat_min_size = 1: every message by BDAT ---------------------
SMTP_PORT=
run_daemon one smtp_bdat_min_size=1
inject "$T/small" small1@chunk.example >/dev/null
expect_eq one_delivered "$(final small1@chunk.example)" sent
expect_eq one_small_by_bdat "$(rec s1 small1@ 'r["how"] + " " + str(r["chunks"])')" \
	"BDAT [[$(rec s1 small1@ 'r["len"]'), True]]"
stop_posternd

# --- smtp_bdat_min_size = 0: DATA always --------------------------------
SMTP_PORT=
run_daemon zero smtp_bdat_min_size=0
inject "$T/big" big0@chunk.example >/dev/null
expect_eq zero_delivered "$(final big0@chunk.example)" sent
expect_eq zero_big_by_data "$(rec s1 big0@ 'r["how"]')" DATA
stop_posternd

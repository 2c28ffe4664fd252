# 933-pull-bdat: `postern pull` takes BDAT too. Its reversed session is
# the listener's session code, so it offers CHUNKING to the provider
# (tests/integ/pull_mech.py in "bdat" mode, CRAM-MD5 in the clear): MAIL,
# RCPT and three chunks in one write are each answered 250, the message is
# in the site's queue with the octets sent under one Received: field, and
# a BDAT after the transaction has its octets (a MAIL command) discarded:
# 503, then RSET's 250; nothing from "evil" is queued; the pull exits 0.
. "$POSTERN_TOP/tests/integ/lib.sh"

conf relay_domains=a.example
printf 'pw1\n' >"$T/pw1"
chmod 600 "$T/pw1"
"$PY" - "$T/msg" <<'EOF'
import sys
m = b"Subject: pulled by BDAT\r\n\r\n" + b"".join(b".%04d " % i + b"q" * 50 + b"\r\n" for i in range(2000))
open(sys.argv[1], "wb").write(m)
EOF
MP=$(free_port)
BDAT_MSG="$T/msg" "$PY" "$POSTERN_TOP/tests/integ/pull_mech.py" 127.0.0.1 \
	"$MP" CRAM-MD5 "$T/mech.log" bdat >"$T/mech.out" 2>&1 &
reap $!
until_ok 100 grep -q ready "$T/mech.out"
"$P" pull 127.0.0.1:"$MP" --user site1 --password-file "$T/pw1" \
	--domain a.example >"$T/o" 2>"$T/e"
expect_eq pull_exit "$? $(head -c 200 "$T/e")" "0 "
expect_grep pull_offers_chunking "^ehlo: .*CHUNKING" "$T/mech.log"
expect_eq pull_replies "$(sed -n 's/^R: \([0-9]* [0-9.]*\).*/\1/p' "$T/mech.log" | tr '\n' ' ')" \
	"250 2.1.0 250 2.1.5 250 2.0.0 250 2.0.0 250 2.0.0 503 5.5.1 250 2.0.0 221 2.0.0 "
expect_eq pull_one_queued "$(qjson 'len(msgs)')" 1
expect_eq pull_no_evil "$(qjson 'sum(m["sender"].startswith("evil") for m in msgs)')" 0
id=$(qjson 'msgs[0]["id"] if msgs else "none"')
"$P" show --raw "$id" >"$T/raw" 2>&1
after_received "$T/raw" "$T/msg" "Received: " >"$T/cmp"
expect_eq pull_same_octets "$(cat "$T/cmp")" same

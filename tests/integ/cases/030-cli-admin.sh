# 030-cli-admin: hold, release, requeue, flush, delete by id and by domain.
. "$POSTERN_TOP/tests/integ/lib.sh"
conf "hold_domains=site.example"

a=$(echo x | "$P" enqueue one@example.org two@example.net)
b=$(echo x | "$P" enqueue three@example.org)
c=$(echo x | "$P" enqueue four@site.example five@sub.example.org)
state() { qjson '",".join(r["state"] for m in msgs if m["id"]=="'"$1"'" for r in m["recipients"])'; }

expect_eq initial_states "$(state "$a")/$(state "$c")" "queued,queued/held,queued"
check hold_by_id "$P" hold "$a"
expect_eq held_by_id "$(state "$a")" "held,held"
expect_grep hold_count "held 2 recipients" "$T/out"
check release_by_id "$P" release "$a"
expect_eq released "$(state "$a")" "queued,queued"

check hold_domain "$P" hold --domain example.org
expect_eq held_domain_only "$(state "$a")/$(state "$b")/$(state "$c")" "held,queued/held/held,queued"
check hold_subdomains "$P" hold --domain @example.org
expect_eq held_subdomains "$(state "$c")" "held,held"
expect_grep hold_sub_count "held 1 recipient$" "$T/out"
check release_all "$P" release --all
expect_eq released_all "$(state "$a")/$(state "$b")/$(state "$c")" "queued,queued/queued/held,queued"

# A held site's mail is made due by a domain flush, not by --all.
check flush_all "$P" flush --all
expect_eq flush_all_keeps_site "$(state "$c")" "held,queued"
check flush_site "$P" flush --domain site.example
expect_grep flush_site_count "1 recipient made due" "$T/out"
# A domain flush is a request the runners serve from the domain index
# (its cost does not grow with the queue); stats shows it pending.
expect_eq flush_site_pending "$("$P" stats --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["flush_pending"])')" "['site.example']"
check flush_sub "$P" flush --domain @example.org
expect_eq flush_sub_pending "$("$P" stats --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["flush_pending"])')" "['site.example', '@example.org']"

# requeue: due now, attempts reset.
check requeue "$P" requeue "$b"
expect_eq requeue_next_try "$(qjson '[r["next_try"] <= __import__("time").time() for m in msgs if m["id"]=="'"$b"'" for r in m["recipients"]][0]')" True

# delete by domain removes those recipients; a message left with none goes.
check delete_domain "$P" delete --domain example.org
expect_eq delete_domain_left "$(qjson '" ".join(sorted(r["address"] for m in msgs for r in m["recipients"] if r["state"] not in ("delivered","failed")))')" \
	"five@sub.example.org four@site.example two@example.net"
expect_eq message_b_gone "$(qjson 'sum(1 for m in msgs if m["id"]=="'"$b"'")')" 0
check delete_id "$P" delete "$c"
expect_eq message_c_gone "$(qjson 'sum(1 for m in msgs if m["id"]=="'"$c"'")')" 0

# Bad selections exit 2 and change nothing.
expect_rc bad_id_rc 2 "$P" hold NOTANID
expect_rc two_selectors_rc 2 "$P" hold "$a" --domain example.net
expect_rc bad_domain_rc 2 "$P" flush --domain 'bad..domain'
expect_rc delete_all_refused 2 "$P" delete --all
expect_rc missing_msg_rc 1 "$P" hold 0000000000Z
expect_eq unchanged_after_errors "$(state "$a")" "failed,queued"

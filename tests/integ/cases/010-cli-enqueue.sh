# 010-cli-enqueue: `postern enqueue`, `queue`, `show` through the binary.
. "$POSTERN_TOP/tests/integ/lib.sh"
conf "hold_domains=hold.example"

printf 'Subject: one\n\nline 1\n.leading dot\n' >"$T/m1"
id=$("$P" enqueue -f alice@example.com bob@example.org Carol@Hold.Example <"$T/m1")
expect_eq enqueue_prints_id "$(printf %s "$id" | grep -c '^[0-9A-Z]\{11\}$')" 1
expect_eq queue_json_one_msg "$(qjson 'len(msgs)')" 1
expect_eq queue_json_id "$(qjson 'msgs[0]["id"]')" "$id"
expect_eq queue_json_sender "$(qjson 'msgs[0]["sender"]')" alice@example.com
expect_eq queue_json_states "$(qjson '",".join(r["address"]+"="+r["state"] for r in msgs[0]["recipients"])')" \
	"bob@example.org=queued,Carol@Hold.Example=held"
expect_eq queue_json_keys "$(qjson 'sorted(msgs[0].keys()) == ["arrival","id","recipients","sender","size"] and sorted(msgs[0]["recipients"][0].keys()) == ["address","attempts","dsn","last_reply","next_try","state"]')" True

# The stored message: CRLF line ends, our Received/From/Date/Message-ID
# added, the body as given.
"$P" show --raw "$id" >"$T/raw"
expect_eq raw_size_matches "$(wc -c <"$T/raw" | tr -d ' ')" "$(qjson 'msgs[0]["size"]')"
expect_eq raw_all_crlf "$("$PY" -c "
d = open('$T/raw','rb').read()
print(d.count(b'\n') == d.count(b'\r\n') and d.count(b'\r') == d.count(b'\r\n'))")" True
expect_eq raw_body_kept "$("$PY" -c "
d = open('$T/raw','rb').read()
print(d.endswith(b'\r\n\r\nline 1\r\n.leading dot\r\n'))")" True
expect_grep raw_has_received '^Received: by mx.test.example (postern' "$T/raw"
expect_grep raw_has_msgid '^Message-ID: <' "$T/raw"
expect_grep raw_subject_kept '^Subject: one' "$T/raw"

"$P" show "$id" >"$T/show"
expect_grep show_envelope "sender: <alice@example.com>" "$T/show"
expect_grep show_rcpt_held "recipient: <Carol@Hold.Example> state=held" "$T/show"
expect_grep show_headers "^Subject: one" "$T/show"

# The text listing is mailq-like: id, size, sender, then recipients.
"$P" queue >"$T/list"
expect_grep list_id "^$id " "$T/list"
expect_grep list_rcpt "queued    <bob@example.org>" "$T/list"
expect_grep list_total "^-- 1 message, 2 recipients" "$T/list"
"$P" queue --domain example.org --json >"$T/dom"
expect_eq queue_domain_filter "$(wc -l <"$T/dom" | tr -d ' ')" 1
"$P" queue --domain other.example --json >"$T/dom2"
expect_eq queue_domain_filter_none "$(wc -l <"$T/dom2" | tr -d ' ')" 0

# 8-bit and UTF-8: flags recorded.
printf 'Subject: caf\303\251\n\nna\303\257ve\n' | "$P" enqueue -f x@example.com "$(printf 'j\303\270rn@example.org')" >"$T/id2"
id2=$(cat "$T/id2")
"$P" show "$id2" >"$T/show2"
expect_grep utf8_flags "flags: 8BITMIME SMTPUTF8" "$T/show2"

# Ids sort by arrival.
id3=$(echo x | "$P" enqueue a@example.net)
expect_eq ids_sort "$(printf '%s\n%s\n%s\n' "$id3" "$id" "$id2" | sort | tr '\n' ' ')" "$id $id2 $id3 "
expect_eq queue_order "$(qjson '" ".join(m["id"] for m in msgs)')" "$id $id2 $id3"

# A bare local name is a user at myhostname.
id4=$(echo x | "$P" enqueue root)
expect_eq local_name_qualified "$(qjson '[r["address"] for m in msgs if m["id"]=="'"$id4"'" for r in m["recipients"]][0]')" root@mx.test.example

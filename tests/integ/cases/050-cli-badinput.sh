# 050-cli-badinput: refused input gets a clear message, exit 2, nothing queued.
. "$POSTERN_TOP/tests/integ/lib.sh"
conf "message_size_limit=64k"

count() { qjson 'len(msgs)' 2>/dev/null || echo 0; }
echo x | "$P" enqueue ok@example.org >/dev/null
n0=$(count)

"$PY" -c "print('Subject: long'); print(); print('a' * 1200)" >"$T/long"
expect_rc overlong_line 2 "$P" enqueue a@example.org <"$T/long"
expect_grep overlong_said "line 3 is 1200 octets" "$T/out"
printf 'Subject: nul\n\na\000b\n' >"$T/nul"
expect_rc nul_byte 2 "$P" enqueue a@example.org <"$T/nul"
expect_grep nul_said "NUL" "$T/out"
"$PY" -c "
for i in range(2000): print('x' * 60)" >"$T/big"
expect_rc too_big 2 "$P" enqueue a@example.org <"$T/big"
expect_grep too_big_said "message_size_limit" "$T/out"
expect_rc bad_rcpt 2 "$P" enqueue 'a b@example.org' </dev/null
expect_grep bad_rcpt_named 'a b@example.org' "$T/out"
expect_rc bad_domain 2 "$P" enqueue 'a@-bad-.example' </dev/null
expect_rc bad_sender 2 "$P" enqueue -f 'x@@y' a@example.org </dev/null
expect_rc no_rcpt 2 "$P" enqueue </dev/null
expect_grep no_rcpt_said "no recipients" "$T/out"
expect_rc bad_option 2 "$P" enqueue -Q a@example.org </dev/null
expect_rc unknown_command 2 "$P" frobnicate
expect_rc bad_show_id 2 "$P" show '!!'
expect_eq nothing_queued "$(count)" "$n0"

# Stray CR becomes a space; bare LF line ends become CRLF.
printf 'Subject: cr\n\na\rb\n' | "$P" enqueue a@example.org >"$T/id"
"$P" show --raw "$(cat "$T/id")" >"$T/raw"
expect_eq stray_cr_replaced "$("$PY" -c "
d = open('$T/raw','rb').read()
print(d.endswith(b'\r\n\r\na b\r\n') and d.count(b'\r') == d.count(b'\r\n'))")" True

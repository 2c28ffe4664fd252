# 020-cli-sendmail: the sendmail(1) interface (argv[0] ends in "sendmail").
. "$POSTERN_TOP/tests/integ/lib.sh"
ln -s "$P" "$T/sendmail"
S="$T/sendmail"

# -t: recipients from To/Cc/Bcc, Bcc removed; prints nothing.
cat >"$T/m" <<'EOM'
From: Alice <alice@example.com>
To: Bob <bob@example.org>, "Doe, Jane" <jane@example.net>
Cc: team: x@example.com, y@example.com;
Bcc: secret@example.org
Subject: -t test

body
EOM
"$S" -t -oi -f alice@example.com <"$T/m" >"$T/out" 2>&1
expect_eq sendmail_t_rc $? 0
expect_eq sendmail_prints_nothing "$(wc -c <"$T/out" | tr -d ' ')" 0
expect_eq sendmail_t_rcpts "$(qjson '" ".join(sorted(r["address"] for r in msgs[0]["recipients"]))')" \
	"bob@example.org jane@example.net secret@example.org x@example.com y@example.com"
id=$(qjson 'msgs[0]["id"]')
"$P" show --raw "$id" >"$T/raw"
if grep -qi '^Bcc:' "$T/raw"; then notok bcc_removed "Bcc: still there"; else ok bcc_removed; fi
expect_grep from_kept '^From: Alice <alice@example.com>' "$T/raw"

# Without -i a line with a lone "." ends the message; with -i it does not.
printf 'Subject: dot\n\nbefore\n.\nafter\n' | "$S" -f s@example.com one@example.org
id1=$(qjson 'msgs[-1]["id"]')
"$P" show --raw "$id1" >"$T/raw1"
if grep -q after "$T/raw1"; then notok dot_ends_input "text after . kept"; else ok dot_ends_input; fi
printf 'Subject: dot\n\nbefore\n.\nafter\n' | "$S" -i -f s@example.com two@example.org
id2=$(qjson 'msgs[-1]["id"]')
"$P" show --raw "$id2" >"$T/raw2"
expect_grep dash_i_keeps_dot "^after" "$T/raw2"
expect_grep dash_i_stuffing_untouched "^\.\s*$" "$T/raw2"

# -F sets the From: name when the message has none.
printf 'Subject: f\n\nx\n' | "$S" -F "Full Name" -f who@example.com three@example.org
id3=$(qjson 'msgs[-1]["id"]')
"$P" show --raw "$id3" >"$T/raw3"
expect_grep dash_F_from '^From: "Full Name" <who@example.com>' "$T/raw3"
expect_eq sender_from_f "$(qjson 'msgs[-1]["sender"]')" who@example.com

# -f <> is the null sender.
printf 'x\n' | "$S" -f '<>' four@example.org
expect_eq null_sender "$(qjson 'repr(msgs[-1]["sender"])')" "''"

# Unsupported option: EX_USAGE, nothing queued; bad address: EX_DATAERR.
before=$(qjson 'len(msgs)')
printf 'x\n' | "$S" -Z a@example.org >/dev/null 2>&1
expect_eq bad_option_ex_usage $? 64
printf 'x\n' | "$S" 'bad@@example.org' >/dev/null 2>&1
expect_eq bad_rcpt_ex_dataerr $? 65
expect_eq nothing_queued_on_error "$(qjson 'len(msgs)')" "$before"

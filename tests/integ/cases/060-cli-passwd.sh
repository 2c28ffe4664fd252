# 060-cli-passwd: `postern passwd` prints a users_file line whose secrets
# check out against independent implementations (openssl passwd, Python's
# hashlib/hmac); bad input exits 2 and prints no line.
. "$POSTERN_TOP/tests/integ/lib.sh"

pw='s3cret pass'
printf '%s\n' "$pw" | "$P" passwd site1 dialup.example Dialup2.Example \
	>"$T/pw" 2>"$T/pw.err"
expect_eq passwd_exit "$?" 0
line=$(tail -n 1 "$T/pw")
expect_eq passwd_one_line "$(wc -l <"$T/pw" | tr -d ' ')" 1
b64='[A-Za-z0-9+/]'
expect_eq passwd_line_shape "$(printf '%s\n' "$line" | grep -c \
	"^site1:{CRYPT}\\\$6\\\$[./0-9A-Za-z]\{16\}\\\$[./0-9A-Za-z]\{86\};{CRAM-MD5}[0-9a-f]\{64\};{SCRAM-SHA-256}$b64\{22\}==,4096,$b64\{43\}=,$b64\{43\}=:dialup.example,dialup2.example\$")" 1
expect_eq passwd_no_cleartext "$(cat "$T/pw" "$T/pw.err" | grep -c -F "$pw")" 0

# {CRYPT}: openssl recomputes the same SHA-512 crypt from the salt.
hash=$(printf '%s\n' "$line" | sed 's/^site1:{CRYPT}\([^;]*\);.*/\1/')
salt=$(printf '%s\n' "$hash" | cut -d '$' -f 3)
expect_eq crypt_verifies "$(openssl passwd -6 -salt "$salt" "$pw")" "$hash"
expect_eq crypt_wrong_pw_differs \
	"$(openssl passwd -6 -salt "$salt" 's3cret Pass' | grep -c -F "$hash")" 0

# {CRAM-MD5} and {SCRAM-SHA-256}, recomputed in Python: the MD5 states
# after the key block (outer A..D, inner A..D, little-endian words, as
# Dovecot stores them), and RFC 5802's StoredKey/ServerKey.
cat >"$T/check.py" <<'EOF'
import base64, hashlib, hmac, math, struct, sys
line, pw = sys.argv[1], sys.argv[2].encode()
user, secrets, domains = line.split(":")
tags = dict(s[1:].split("}", 1) for s in secrets.split(";"))
K = [int(abs(math.sin(i + 1)) * 2**32) & 0xffffffff for i in range(64)]
R = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + \
    [6, 10, 15, 21] * 4
IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]
M = 0xffffffff
def md5_block(st, blk):
    x = struct.unpack("<16I", blk)
    a, b, c, d = st
    for i in range(64):
        if i < 16: f, g = (b & c) | (~b & d), i
        elif i < 32: f, g = (d & b) | (~d & c), (5 * i + 1) % 16
        elif i < 48: f, g = b ^ c ^ d, (3 * i + 5) % 16
        else: f, g = c ^ (b | (~d & M)), (7 * i) % 16
        f = (f + a + K[i] + x[g]) & M
        a, d, c = d, c, b
        b = (b + (((f << R[i]) | (f >> (32 - R[i]))) & M)) & M
    return [(p + q) & M for p, q in zip(st, [a, b, c, d])]
for m in (b"", b"abc"):     # the block function is MD5's
    blk = m + b"\x80" + b"\0" * (55 - len(m)) + struct.pack("<Q", 8 * len(m))
    assert struct.pack("<4I", *md5_block(IV, blk)) == hashlib.md5(m).digest()
key = (hashlib.md5(pw).digest() if len(pw) > 64 else pw).ljust(64, b"\0")
outer = md5_block(IV, bytes(k ^ 0x5c for k in key))
inner = md5_block(IV, bytes(k ^ 0x36 for k in key))
cram = struct.pack("<8I", *(outer + inner)).hex()
salt, it, stored, server = tags["SCRAM-SHA-256"].split(",")
salted = hashlib.pbkdf2_hmac("sha256", pw, base64.b64decode(salt), int(it))
ck = hmac.new(salted, b"Client Key", "sha256").digest()
sk = hmac.new(salted, b"Server Key", "sha256").digest()
print(tags["CRAM-MD5"] == cram, len(base64.b64decode(salt)) == 16,
      base64.b64decode(stored) == hashlib.sha256(ck).digest(),
      base64.b64decode(server) == sk)
EOF
expect_eq cram_scram_verify "$("$PY" "$T/check.py" "$line" "$pw")" \
	"True True True True"
expect_eq cram_scram_wrong_pw "$("$PY" "$T/check.py" "$line" 's3cret Pass')" \
	"False True False False"

# CRLF input: the CR is part of the line end, not of the password.
printf 'abc\r\n' | "$P" passwd site2 >"$T/pw2" 2>&1
expect_eq crlf_exit "$?" 0
h2=$(tail -n 1 "$T/pw2" | sed 's/^site2:{CRYPT}\([^;]*\);.*/\1/')
expect_eq crlf_stripped "$(openssl passwd -6 -salt "$(echo "$h2" | cut -d '$' -f 3)" abc)" "$h2"
expect_eq no_domains "$(tail -n 1 "$T/pw2" | grep -c ':$')" 1
# Only the first line is the password.
printf 'abc\nignored\n' | "$P" passwd site3 sub.example >"$T/pw3" 2>&1
h3=$(tail -n 1 "$T/pw3" | sed 's/^site3:{CRYPT}\([^;]*\);.*/\1/')
expect_eq first_line_only "$(openssl passwd -6 -salt "$(echo "$h3" | cut -d '$' -f 3)" abc)" "$h3"

# Bad input: exit 2, a message, no line.
echo pw | expect_rc bad_user_space 2 "$P" passwd 'site 1' dialup.example
expect_grep bad_user_said 'bad user name' "$T/out"
echo pw | expect_rc bad_user_colon 2 "$P" passwd 'site:1'
echo pw | expect_rc bad_user_hash 2 "$P" passwd '#site1'
echo pw | expect_rc bad_user_long 2 "$P" passwd \
	"$("$PY" -c "print('u' * 65)")"
echo pw | expect_rc bad_domain 2 "$P" passwd site1 dialup.example -bad-.example
expect_grep bad_domain_said 'bad domain "-bad-.example"' "$T/out"
echo pw | expect_rc bad_domain_underscore 2 "$P" passwd site1 bad_dom.example
echo pw | expect_rc bad_domain_dots 2 "$P" passwd site1 'a..example'
printf '\n' | expect_rc empty_password 2 "$P" passwd site1 dialup.example
expect_grep empty_password_said 'empty password' "$T/out"
expect_rc no_password 2 "$P" passwd site1 dialup.example </dev/null
printf '\r\n' | expect_rc cr_only_password 2 "$P" passwd site1
expect_rc no_user 2 "$P" passwd </dev/null
echo pw | expect_rc unknown_option 2 "$P" passwd -x site1
"$PY" -c "print('p' * 1025)" | expect_rc long_password 2 "$P" passwd site1
expect_eq bad_input_no_line "$(grep -c '{CRYPT}' "$T/out")" 0
# "--" ends the options; a 64-octet name is the longest.
echo pw | expect_rc dashdash 0 "$P" passwd -- "$("$PY" -c "print('u' * 64)")"

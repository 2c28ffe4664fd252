/*
 * test_smtp_auth.c - unit tests for smtp_b64.c and smtp_auth.c.
 *
 * The vectors come from the RFCs: RFC 4648 §10 (base64), RFC 2195 §2
 * (CRAM-MD5: tim / tanstaaftanstaaf), RFC 7677 §3 (SCRAM-SHA-256: user /
 * pencil). The stored CRAM-MD5 contexts were computed independently (a
 * pure-Python MD5 compression function) and agree with what Dovecot's
 * `doveadm pw -s CRAM-MD5 -p password` prints, so lines move between the
 * two. The client sides of CRAM-MD5 and SCRAM are written here with
 * OpenSSL's one-shot HMAC/PBKDF2, separately from the server code.
 */
#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "smtp.h"
#include "tharness.h"
#include "tutil.h"

#define OK	AUTH_OK
#define CONT	AUTH_CONTINUE
#define FAIL	AUTH_FAIL
#define BAD	AUTH_BADPROTO

/* RFC 2195 §2. */
#define CRAM_CHAL	"<1896.697170952@postoffice.reston.mci.net>"
#define CRAM_KEY	"tanstaaftanstaaf"
#define CRAM_DIGEST	"b913a602c7eda7a495b4e6e7334d3890"
/* Outer A..D then inner A..D, little-endian words (Dovecot's order). */
#define CRAM_TIM	"d06d4e1b26fccaa4b0b61801132340a3" \
			"54b21152711fb604ca3e035e7015116b"
/* doveadm pw -s CRAM-MD5 -p password */
#define CRAM_DOVECOT	"9186d855e11eba527a7a52ca82b313e1" \
			"80d62234f0acc9051b527243d41e2740"
/* The same for "s3cret", from the independent Python computation. */
#define CRAM_S3CRET	"f5ed572d28e21dc835df33e856b52ed7" \
			"fa69d793810545332aa71e91b9ed7e06"

/* RFC 7677 §3. */
#define SC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define SC_SNONCE	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SC_SALT		"W22ZaJ0SNY7soEsUEjb6gQ=="
#define SC_FIRST	"n,,n=user,r=" SC_CNONCE
#define SC_SFIRST	"r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=4096"
#define SC_FINAL	"c=biws,r=" SC_CNONCE SC_SNONCE \
			",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SC_VERIFY	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* openssl passwd -6 -salt abcdefgh12345678 hunter2 */
#define HASH_HUNTER2	"$6$abcdefgh12345678$va.5Cu4V3VVDTTqGxBFLJLe96seoR7t2" \
			"7vdfZXImlG605uxgrHTyzCgabN4Vc/Y7Qs3Z1NzMmGGkjXsRvwVIt1"

static const char *const mechs[] = { "PLAIN", "LOGIN", "CRAM-MD5",
    "SCRAM-SHA-256" };

/* ------------------------------------------------------------------ */
/* Helpers. */

/* load_str - auth_db_load() over a file holding s; the file is removed. */
static struct auth_db *
load_str(struct t *t, const char *s, char *path, size_t pathsz, char *err,
    size_t errsz)
{
	struct auth_db	*db;

	err[0] = '\0';
	if (write_tmp(s, path, pathsz) == -1) {
		t_errorf(t, "cannot write a temporary file");
		return NULL;
	}
	db = auth_db_load(path, err, errsz);
	unlink(path);
	return db;
}

static struct auth_db *
load_ok(struct t *t, const char *s)
{
	struct auth_db	*db;
	char		 path[64], err[512];

	if ((db = load_str(t, s, path, sizeof(path), err, sizeof(err))) ==
	    NULL)
		t_errorf(t, "auth_db_load: %s", err);
	return db;
}

/* step - one step with a C-string input (NULL: no initial response). */
static int
step(struct auth_sasl *a, const char *in, struct sbuf *ch)
{
	return auth_sasl_step(a, in, in != NULL ? strlen(in) : 0, in != NULL,
	    ch);
}

static void
b64(const void *p, size_t len, char *out, size_t outsz)
{
	struct sbuf	*b = sbuf_new();

	smtp_b64_encode(p, len, b);
	strl_copy(out, sbuf_str(b), outsz);
	sbuf_free(b);
}

/* unb64 - decode into out (at most max); returns the length or -1. */
static int
unb64(const char *s, size_t slen, unsigned char *out, size_t max)
{
	struct sbuf	*b = sbuf_new();
	int		 n = -1;

	if (smtp_b64_decode(s, slen, b) == 0 && sbuf_len(b) <= max) {
		memcpy(out, sbuf_str(b), sbuf_len(b));
		n = (int)sbuf_len(b);
	}
	sbuf_free(b);
	return n;
}

/* scram_keys - StoredKey and ServerKey, the client's way (RFC 5802 §3). */
static void
scram_keys(const char *pw, const unsigned char *salt, size_t saltlen,
    int iter, unsigned char salted[32], unsigned char stored[32],
    unsigned char server[32])
{
	unsigned char	ckey[32];
	unsigned int	n;

	PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)saltlen, iter,
	    EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key",
	    10, ckey, &n);
	SHA256(ckey, 32, stored);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key",
	    10, server, &n);
}

/* scram_line - "NAME:{SCRAM-SHA-256}...:" for pw and this salt. */
static void
scram_line(const char *name, const char *pw, const char *salt_b64,
    char *out, size_t outsz)
{
	unsigned char	salt[64], salted[32], stored[32], server[32];
	char		sk[64], vk[64];
	int		n;

	n = unb64(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	scram_keys(pw, salt, (size_t)n, 4096, salted, stored, server);
	b64(stored, 32, sk, sizeof(sk));
	b64(server, 32, vk, sizeof(vk));
	bsnprintf(out, outsz, "%s:{SCRAM-SHA-256}%s,4096,%s,%s:\n", name,
	    salt_b64, sk, vk);
}

/*
 * scram_client_final - the client-final-message for pw, given the
 * client-first-bare, the server-first and base64(gs2-header); the
 * ServerSignature the client expects goes into vwant ("v=...").
 */
static bool
scram_client_final(const char *pw, const char *bare, const char *sfirst,
    const char *cbind, char *out, size_t outsz, char *vwant, size_t vsz)
{
	unsigned char	 salt[128], salted[32], stored[32], server[32];
	unsigned char	 ckey[32], csig[32], proof[32], ssig[32];
	char		 authmsg[1024], wo[512], pb[64], sb[64];
	const char	*s, *i, *r;
	unsigned int	 n;
	int		 slen, k;

	if (strncmp(sfirst, "r=", 2) != 0 ||
	    (s = strstr(sfirst, ",s=")) == NULL ||
	    (i = strstr(sfirst, ",i=")) == NULL || i < s)
		return false;
	r = sfirst + 2;
	slen = unb64(s + 3, (size_t)(i - s - 3), salt, sizeof(salt));
	if (slen < 0)
		return false;
	scram_keys(pw, salt, (size_t)slen, atoi(i + 3), salted, stored,
	    server);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key",
	    10, ckey, &n);
	bsnprintf(wo, sizeof(wo), "c=%s,r=%.*s", cbind, (int)(s - r), r);
	bsnprintf(authmsg, sizeof(authmsg), "%s,%s,%s", bare, sfirst, wo);
	HMAC(EVP_sha256(), stored, 32, (const unsigned char *)authmsg,
	    strlen(authmsg), csig, &n);
	for (k = 0; k < 32; k++)
		proof[k] = ckey[k] ^ csig[k];
	HMAC(EVP_sha256(), server, 32, (const unsigned char *)authmsg,
	    strlen(authmsg), ssig, &n);
	b64(proof, 32, pb, sizeof(pb));
	b64(ssig, 32, sb, sizeof(sb));
	bsnprintf(vwant, vsz, "v=%s", sb);
	return bsnprintf(out, outsz, "%s,p=%s", wo, pb);
}

/*
 * scram_run - a whole SCRAM-SHA-256 exchange: gs2 header (e.g. "n,,"),
 * the saslname as sent, the password. Returns the first step result that
 * is not AUTH_CONTINUE, and checks the server's signature on the way.
 */
static int
scram_run(struct t *t, struct auth_db *db, const char *gs2,
    const char *name, const char *pw)
{
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	char			 first[256], final[512], v[128], cb[64];
	int			 rc;

	bsnprintf(first, sizeof(first), "%sn=%s,r=fyko+d2lbbFgONRv9qkxdawL",
	    gs2, name);
	b64(gs2, strlen(gs2), cb, sizeof(cb));
	a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
	if ((rc = step(a, first, ch)) != CONT)
		goto out;
	if (!scram_client_final(pw, first + strlen(gs2), sbuf_str(ch), cb,
	    final, sizeof(final), v, sizeof(v))) {
		t_errorf(t, "scram_run(%s): bad server-first \"%s\"", name,
		    sbuf_str(ch));
		rc = -99;
		goto out;
	}
	if ((rc = step(a, final, ch)) != CONT)
		goto out;
	if (strcmp(sbuf_str(ch), v) != 0)
		t_errorf(t, "scram_run(%s): server-final \"%s\", want \"%s\"",
		    name, sbuf_str(ch), v);
	rc = step(a, "", ch);
out:
	auth_sasl_free(a);
	sbuf_free(ch);
	return rc;
}

/* cram_run - a CRAM-MD5 exchange for user with key pw. */
static int
cram_run(struct auth_db *db, const char *user, const char *pw)
{
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	unsigned char		 mac[16];
	unsigned int		 n;
	char			 resp[256];
	int			 rc, k, len;

	a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5, "mx.example");
	if ((rc = step(a, NULL, ch)) != CONT)
		goto out;
	HMAC(EVP_md5(), pw, (int)strlen(pw), (const unsigned char *)
	    sbuf_str(ch), sbuf_len(ch), mac, &n);
	len = snprintf(resp, sizeof(resp), "%s ", user);
	for (k = 0; k < 16; k++)
		len += snprintf(resp + len, sizeof(resp) - (size_t)len, "%02x",
		    mac[k]);
	rc = step(a, resp, ch);
out:
	auth_sasl_free(a);
	sbuf_free(ch);
	return rc;
}

/* plain_run - PLAIN with the message given as an initial response. */
static int
plain_run(struct auth_db *db, const char *msg, size_t len)
{
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	int			 rc;

	a = auth_sasl_new(db, AUTH_MECH_PLAIN, "mx.example");
	rc = auth_sasl_step(a, msg, len, true, ch);
	auth_sasl_free(a);
	sbuf_free(ch);
	return rc;
}

static int
login_run(struct auth_db *db, const char *user, const char *pw)
{
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	int			 rc;

	a = auth_sasl_new(db, AUTH_MECH_LOGIN, "mx.example");
	if ((rc = step(a, NULL, ch)) == CONT &&
	    (rc = step(a, user, ch)) == CONT)
		rc = step(a, pw, ch);
	auth_sasl_free(a);
	sbuf_free(ch);
	return rc;
}

/* mech_run - authenticate with mechanism m as user/pw, whole exchange. */
static int
mech_run(struct t *t, struct auth_db *db, int m, const char *user,
    const char *pw)
{
	char	msg[256];
	int	n;

	switch (m) {
	case AUTH_MECH_PLAIN:
		n = snprintf(msg, sizeof(msg), "%c%s%c%s", 0, user, 0, pw);
		return plain_run(db, msg, (size_t)n);
	case AUTH_MECH_LOGIN:
		return login_run(db, user, pw);
	case AUTH_MECH_CRAM_MD5:
		return cram_run(db, user, pw);
	default:
		return scram_run(t, db, "n,,", user, pw);
	}
}

/* ------------------------------------------------------------------ */
/* base64 */

static void
b64_vectors(struct t *t)
{
	static const struct {
		const char	*raw, *enc;
	} v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
		{ "\xff\xfe\x00\x01", "//4AAQ==" },
	};
	struct sbuf	*b = sbuf_new();
	size_t		 i, rlen;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		rlen = i == 7 ? 4 : strlen(v[i].raw);
		sbuf_reset(b);
		smtp_b64_encode(v[i].raw, rlen, b);
		if (strcmp(sbuf_str(b), v[i].enc) != 0)
			t_errorf(t, "smtp_b64_encode(\"%s\"): got \"%s\", "
			    "want \"%s\"", v[i].raw, sbuf_str(b), v[i].enc);
		sbuf_reset(b);
		if (smtp_b64_decode(v[i].enc, strlen(v[i].enc), b) != 0 ||
		    sbuf_len(b) != rlen || memcmp(sbuf_str(b), v[i].raw,
		    rlen) != 0)
			t_errorf(t, "smtp_b64_decode(\"%s\"): got \"%s\" "
			    "(%zu octets), want \"%s\"", v[i].enc, sbuf_str(b),
			    sbuf_len(b), v[i].raw);
	}
	/* Decoding appends. */
	sbuf_reset(b);
	sbuf_cat(b, "x");
	if (smtp_b64_decode("Zm9v", 4, b) != 0 ||
	    strcmp(sbuf_str(b), "xfoo") != 0)
		t_errorf(t, "smtp_b64_decode appends: got \"%s\", want "
		    "\"xfoo\"", sbuf_str(b));
	sbuf_free(b);
}

static void
b64_strict(struct t *t)
{
	static const struct {
		const char	*in;
		size_t		 len;	/* 0: strlen */
		const char	*why;
	} bad[] = {
		{ "Zg=", 0, "length not a multiple of 4" },
		{ "Zg", 0, "no padding" },
		{ "Zm9vY", 0, "length 5" },
		{ "Z===", 0, "three '='" },
		{ "====", 0, "only padding" },
		{ "Zh==", 0, "non-canonical: low bits in the last symbol" },
		{ "Zm9=", 0, "non-canonical: low bits before '='" },
		{ "Zg==Zg==", 0, "padding in the middle" },
		{ "Z=g=", 0, "'=' then a letter" },
		{ "=m9v", 0, "'=' first" },
		{ "Zm=v", 0, "'=' in position 3 of 4, then a letter" },
		{ "Zm9v====", 0, "a whole quantum of padding" },
		{ "Zm 9", 0, "a space" },
		{ "Zm9v\r\n", 0, "a line end" },
		{ "Zm-v", 0, "URL-safe '-'" },
		{ "Zm_v", 0, "URL-safe '_'" },
		{ "Zm*v", 0, "'*'" },
		{ "Zm\0v", 4, "a NUL" },
		{ "Zm9v\xc3\xa9==", 0, "8-bit" },
	};
	struct sbuf	*b = sbuf_new();
	size_t		 i, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].in);
		sbuf_reset(b);
		sbuf_cat(b, "keep");
		if (smtp_b64_decode(bad[i].in, len, b) != -1)
			t_errorf(t, "smtp_b64_decode(\"%s\") (%s): accepted",
			    bad[i].in, bad[i].why);
		if (sbuf_len(b) != 4 || strcmp(sbuf_str(b), "keep") != 0)
			t_errorf(t, "smtp_b64_decode(\"%s\"): output changed "
			    "to \"%s\"", bad[i].in, sbuf_str(b));
	}
	sbuf_free(b);
}

static void
mech_names(struct t *t)
{
	static const struct {
		const char	*s;
		int		 want;
	} v[] = {
		{ "PLAIN", AUTH_MECH_PLAIN }, { "plain", AUTH_MECH_PLAIN },
		{ "Login", AUTH_MECH_LOGIN },
		{ "cram-md5", AUTH_MECH_CRAM_MD5 },
		{ "SCRAM-SHA-256", AUTH_MECH_SCRAM_SHA256 },
		{ "SCRAM-SHA-256-PLUS", -1 }, { "SCRAM-SHA-1", -1 },
		{ "DIGEST-MD5", -1 }, { "", -1 }, { "PLAIN ", -1 },
	};
	size_t	i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (auth_mech_parse(v[i].s) != v[i].want)
			t_errorf(t, "auth_mech_parse(\"%s\"): got %d, want %d",
			    v[i].s, auth_mech_parse(v[i].s), v[i].want);
	if (auth_mech_parse(NULL) != -1)
		t_errorf(t, "auth_mech_parse(NULL): want -1");
	for (i = 0; i < 4; i++)
		if (strcmp(auth_mech_name((enum auth_mech)i), mechs[i]) != 0)
			t_errorf(t, "auth_mech_name(%zu): got \"%s\", want "
			    "\"%s\"", i, auth_mech_name((enum auth_mech)i),
			    mechs[i]);
}

/* ------------------------------------------------------------------ */
/* CRAM-MD5 */

static void
cram_rfc2195(struct t *t)
{
	static const struct {
		const char	*resp;	/* NULL: send an initial response */
		int		 want;
		const char	*why;
	} v[] = {
		{ "tim " CRAM_DIGEST, OK, "RFC 2195 example" },
		{ "tim b913a602c7eda7a495b4e6e7334d3891", FAIL,
		    "wrong digest" },
		{ "tom " CRAM_DIGEST, FAIL, "unknown user" },
		{ "hunter " CRAM_DIGEST, FAIL, "user without {CRAM-MD5}" },
		{ "tim B913A602C7EDA7A495B4E6E7334D3890", BAD, "upper case" },
		{ "tim b913a602c7eda7a495b4e6e7334d389", BAD, "31 digits" },
		{ "tim  " CRAM_DIGEST, FAIL, "two spaces: user \"tim \"" },
		{ "tim" CRAM_DIGEST, BAD, "no space" },
		{ " " CRAM_DIGEST, BAD, "no user" },
		{ "tim b913a602c7eda7a495b4e6e7334d389g", BAD, "not hex" },
		{ "", BAD, "empty" },
		{ NULL, BAD, "initial response" },
	};
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new(), *line = sbuf_new();
	struct conf_list	 none = { NULL, 0 };
	size_t			 i;
	int			 rc;

	/* Our precomputation gives the independently computed contexts. */
	if (auth_make_line("tim", CRAM_KEY, &none, line) != 0 ||
	    strstr(sbuf_str(line), ";{CRAM-MD5}" CRAM_TIM ";") == NULL)
		t_errorf(t, "auth_make_line(tim): no {CRAM-MD5}%s in \"%s\"",
		    CRAM_TIM, sbuf_str(line));
	db = load_ok(t, "tim:{CRAM-MD5}" CRAM_TIM ":example.org\n"
	    "hunter:" HASH_HUNTER2 ":\n");
	if (db == NULL)
		goto out;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		auth_sasl_test_nonce(CRAM_CHAL);
		a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5,
		    "postoffice.reston.mci.net");
		if (v[i].resp == NULL) {
			rc = step(a, "tim " CRAM_DIGEST, ch);
			goto check;
		}
		rc = step(a, NULL, ch);
		if (rc != CONT || strcmp(sbuf_str(ch), CRAM_CHAL) != 0) {
			t_errorf(t, "cram (%s): challenge: got %d \"%s\", want "
			    "%d \"%s\"", v[i].why, rc, sbuf_str(ch), CONT,
			    CRAM_CHAL);
			auth_sasl_free(a);
			continue;
		}
		rc = step(a, v[i].resp, ch);
check:
		if (rc != v[i].want)
			t_errorf(t, "cram (%s): \"%s\": got %d, want %d",
			    v[i].why, v[i].resp ? v[i].resp : "(initial)", rc,
			    v[i].want);
		if (rc == OK && strcmp(auth_sasl_user(a), "tim") != 0)
			t_errorf(t, "cram: auth_sasl_user: got \"%s\", want "
			    "\"tim\"", auth_sasl_user(a));
		if (rc != CONT && step(a, "tim " CRAM_DIGEST, ch) != BAD)
			t_errorf(t, "cram (%s): a step after the end: want %d",
			    v[i].why, BAD);
		auth_sasl_free(a);
	}
out:
	auth_db_free(db);
	sbuf_free(ch);
	sbuf_free(line);
}

static void
cram_dovecot(struct t *t)
{
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new(), *line = sbuf_new();
	struct conf_list	 none = { NULL, 0 };
	const char		*c, *at;
	size_t			 n;

	/* Both directions of `doveadm pw -s CRAM-MD5 -p password`. */
	if (auth_make_line("dove", "password", &none, line) != 0 ||
	    strstr(sbuf_str(line), ";{CRAM-MD5}" CRAM_DOVECOT ";") == NULL)
		t_errorf(t, "auth_make_line(dove, password): want {CRAM-MD5}"
		    CRAM_DOVECOT " in \"%s\"", sbuf_str(line));
	if ((db = load_ok(t, "dove:{CRAM-MD5}" CRAM_DOVECOT ":\n")) == NULL)
		goto out;
	if (cram_run(db, "dove", "password") != OK)
		t_errorf(t, "cram_run(dove, password): want %d", OK);
	if (cram_run(db, "dove", "Password") != FAIL)
		t_errorf(t, "cram_run(dove, Password): want %d", FAIL);

	/* A real challenge: "<digits.digits@host>", new each time. */
	a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5, "mx.example");
	if (step(a, NULL, ch) != CONT)
		t_errorf(t, "cram challenge: want %d", CONT);
	c = sbuf_str(ch);
	n = strspn(c + 1, "0123456789");
	at = c + 1 + n;
	if (c[0] != '<' || n == 0 || at[0] != '.' ||
	    strspn(at + 1, "0123456789") == 0 ||
	    strcmp(at + 1 + strspn(at + 1, "0123456789"), "@mx.example>") != 0)
		t_errorf(t, "cram challenge: got \"%s\", want "
		    "<random.time@mx.example>", c);
	auth_sasl_free(a);
	line = sbuf_free(line);
	line = sbuf_new();
	sbuf_cat(line, sbuf_str(ch));
	a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5, "mx.example");
	step(a, NULL, ch);
	if (strcmp(sbuf_str(ch), sbuf_str(line)) == 0)
		t_errorf(t, "cram challenge repeated: \"%s\"", sbuf_str(ch));
	auth_sasl_free(a);
	/* The empty hostname still gives a msg-id. */
	a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5, NULL);
	step(a, NULL, ch);
	if (strstr(sbuf_str(ch), "@localhost>") == NULL)
		t_errorf(t, "cram challenge, no host: got \"%s\"",
		    sbuf_str(ch));
	auth_sasl_free(a);
out:
	auth_db_free(db);
	sbuf_free(ch);
	sbuf_free(line);
}

/* ------------------------------------------------------------------ */
/* SCRAM-SHA-256 */

static void
scram_rfc7677(struct t *t)
{
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	char			 line[512];
	int			 rc;

	scram_line("user", "pencil", SC_SALT, line, sizeof(line));
	if ((db = load_ok(t, line)) == NULL)
		goto out;
	if (!auth_user_has(auth_db_find(db, "user"), AUTH_MECH_SCRAM_SHA256))
		t_errorf(t, "auth_user_has(user, SCRAM-SHA-256): want true");

	/* The RFC's messages, the client-first as an initial response. */
	auth_sasl_test_nonce(SC_SNONCE);
	a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
	rc = step(a, SC_FIRST, ch);
	if (rc != CONT || strcmp(sbuf_str(ch), SC_SFIRST) != 0)
		t_errorf(t, "scram server-first: got %d \"%s\", want %d \"%s\"",
		    rc, sbuf_str(ch), CONT, SC_SFIRST);
	rc = step(a, SC_FINAL, ch);
	if (rc != CONT || strcmp(sbuf_str(ch), SC_VERIFY) != 0)
		t_errorf(t, "scram server-final: got %d \"%s\", want %d \"%s\"",
		    rc, sbuf_str(ch), CONT, SC_VERIFY);
	if ((rc = step(a, "", ch)) != OK || sbuf_len(ch) != 0)
		t_errorf(t, "scram empty response: got %d \"%s\", want %d",
		    rc, sbuf_str(ch), OK);
	if (strcmp(auth_sasl_user(a), "user") != 0)
		t_errorf(t, "scram auth_sasl_user: got \"%s\"",
		    auth_sasl_user(a));
	auth_sasl_free(a);

	/* The same without an initial response: an empty challenge first. */
	auth_sasl_test_nonce(SC_SNONCE);
	a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
	if ((rc = step(a, NULL, ch)) != CONT || sbuf_len(ch) != 0)
		t_errorf(t, "scram, no initial response: got %d \"%s\", want "
		    "%d \"\"", rc, sbuf_str(ch), CONT);
	if ((rc = step(a, SC_FIRST, ch)) != CONT ||
	    strcmp(sbuf_str(ch), SC_SFIRST) != 0)
		t_errorf(t, "scram, no initial response: server-first: got %d "
		    "\"%s\"", rc, sbuf_str(ch));
	if ((rc = step(a, SC_FINAL, ch)) != CONT ||
	    strcmp(sbuf_str(ch), SC_VERIFY) != 0)
		t_errorf(t, "scram, no initial response: server-final: got %d "
		    "\"%s\"", rc, sbuf_str(ch));
	if ((rc = step(a, "", ch)) != OK)
		t_errorf(t, "scram, no initial response: got %d, want %d", rc,
		    OK);
	auth_sasl_free(a);

	/* The RFC's proof against another password's keys. */
	scram_line("user", "pencil2", SC_SALT, line, sizeof(line));
	auth_db_free(db);
	if ((db = load_ok(t, line)) == NULL)
		goto out;
	auth_sasl_test_nonce(SC_SNONCE);
	a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
	step(a, SC_FIRST, ch);
	if ((rc = step(a, SC_FINAL, ch)) != FAIL || sbuf_len(ch) != 0)
		t_errorf(t, "scram wrong proof: got %d \"%s\", want %d", rc,
		    sbuf_str(ch), FAIL);
	auth_sasl_free(a);
out:
	auth_db_free(db);
	sbuf_free(ch);
}

static void
scram_exchange(struct t *t)
{
	static const struct {
		const char	*gs2, *name, *pw;
		int		 want;
		const char	*why;
	} v[] = {
		{ "n,,", "user", "pencil", OK, "plain" },
		{ "y,,", "user", "pencil", OK, "client could bind, we can't" },
		{ "n,a=user,", "user", "pencil", OK, "authzid = user" },
		{ "n,a=other,", "user", "pencil", FAIL, "authzid != user" },
		{ "n,,", "user", "pencil2", FAIL, "wrong password" },
		{ "n,,", "nobody", "pencil", FAIL, "unknown user" },
		{ "n,,", "plainonly", "hunter2", FAIL, "no SCRAM secret" },
		{ "n,,", "a=2Cb=3Dc", "pencil", OK, "escaped name a,b=c" },
		{ "n,,", "a,b=c", "pencil", BAD, "unescaped ','" },
		{ "n,,", "a=2cb", "pencil", BAD, "bad escape =2c" },
		{ "n,,", "us=41er", "pencil", BAD, "bad escape =41" },
		{ "n,,", "", "pencil", BAD, "empty name" },
		{ "p=tls-unique,,", "user", "pencil", BAD, "channel binding" },
		{ "x,,", "user", "pencil", BAD, "bad gs2 flag" },
		{ "n,", "user", "pencil", BAD, "short gs2 header" },
		{ "n,a=us=4er,", "user", "pencil", BAD, "bad authzid escape" },
	};
	struct auth_db	*db;
	struct sbuf	*file = sbuf_new();
	char		 line[512];
	size_t		 i;
	int		 rc;

	scram_line("user", "pencil", SC_SALT, line, sizeof(line));
	sbuf_cat(file, line);
	scram_line("a,b=c", "pencil", "c2FsdHNhbHRzYWx0", line, sizeof(line));
	sbuf_cat(file, line);
	sbuf_cat(file, "plainonly:" HASH_HUNTER2 ":\n");
	if ((db = load_ok(t, sbuf_str(file))) == NULL)
		goto out;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		rc = scram_run(t, db, v[i].gs2, v[i].name, v[i].pw);
		if (rc != v[i].want)
			t_errorf(t, "scram (%s): %s n=%s: got %d, want %d",
			    v[i].why, v[i].gs2, v[i].name, rc, v[i].want);
	}
out:
	auth_db_free(db);
	sbuf_free(file);
}

static void
scram_malformed(struct t *t)
{
	static const struct {
		const char	*first, *final, *ack;	/* final NULL: stop */
		int		 want;
		const char	*why;
	} v[] = {
		{ "", NULL, NULL, BAD, "empty client-first" },
		{ "n,,m=x,n=user,r=abc", NULL, NULL, BAD, "m= extension" },
		{ "n,,n=user", NULL, NULL, BAD, "no nonce" },
		{ "n,,n=user,r=", NULL, NULL, BAD, "empty nonce" },
		{ "n,,r=abc,n=user", NULL, NULL, BAD, "wrong order" },
		{ "n,,n=user,r=ab\x01" "c", NULL, NULL, BAD,
		    "control in nonce" },
		{ SC_FIRST, "c=eSws,r=" SC_CNONCE SC_SNONCE ",p=dHzbZapWIk4jUhN"
		    "+Ute9ytag9zjfMHgsqmmiz7AndVQ=", NULL, BAD,
		    "c= is not base64 of our gs2 header" },
		{ SC_FIRST, "c=biws,r=" SC_CNONCE SC_SNONCE, NULL, BAD,
		    "no proof" },
		{ SC_FIRST, "c=biws,r=" SC_CNONCE SC_SNONCE ",p=dHzb", NULL,
		    BAD, "short proof" },
		{ SC_FIRST, "c=biws,r=" SC_CNONCE SC_SNONCE ",p=dHzbZapWIk4jUhN"
		    "+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1", NULL, BAD,
		    "proof not last" },
		{ SC_FIRST, "r=" SC_CNONCE SC_SNONCE ",c=biws,p=dHzbZapWIk4jUhN"
		    "+Ute9ytag9zjfMHgsqmmiz7AndVQ=", NULL, BAD, "r before c" },
		{ SC_FIRST, "c=biws,r=" SC_CNONCE "X,p=dHzbZapWIk4jUhN"
		    "+Ute9ytag9zjfMHgsqmmiz7AndVQ=", NULL, FAIL,
		    "another nonce" },
		{ SC_FIRST, SC_FINAL, "x", BAD, "non-empty last response" },
		{ SC_FIRST, SC_FINAL, "", OK, "the good exchange" },
	};
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	char			 line[512];
	size_t			 i;
	int			 rc;

	scram_line("user", "pencil", SC_SALT, line, sizeof(line));
	if ((db = load_ok(t, line)) == NULL)
		goto out;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		auth_sasl_test_nonce(SC_SNONCE);
		a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
		rc = step(a, v[i].first, ch);
		if (rc == CONT && v[i].final != NULL)
			rc = step(a, v[i].final, ch);
		if (rc == CONT && v[i].ack != NULL)
			rc = step(a, v[i].ack, ch);
		if (rc != v[i].want)
			t_errorf(t, "scram (%s): got %d, want %d", v[i].why, rc,
			    v[i].want);
		auth_sasl_free(a);
	}
out:
	auth_db_free(db);
	sbuf_free(ch);
}

/* An unknown user gets a salt and count like a real one, stable for the
 * name, so that the answer does not tell who exists. */
static void
scram_unknown(struct t *t)
{
	static const char *const names[] = { "nobody", "nobody", "somebody",
	    "user" };
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new();
	unsigned char		 salt[64];
	char			 line[512], first[128], got[4][128];
	const char		*s;
	size_t			 i;
	int			 n;

	scram_line("user", "pencil", "c2FsdHNhbHRzYWx0c2FsdA==", line,
	    sizeof(line));
	if ((db = load_ok(t, line)) == NULL)
		goto out;
	for (i = 0; i < 4; i++) {
		bsnprintf(first, sizeof(first), "n,,n=%s,r=abc", names[i]);
		a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
		if (step(a, first, ch) != CONT ||
		    (s = strstr(sbuf_str(ch), ",s=")) == NULL) {
			t_errorf(t, "scram %s: server-first \"%s\"", names[i],
			    sbuf_str(ch));
			auth_sasl_free(a);
			goto out;
		}
		strl_copy(got[i], s, sizeof(got[i]));
		n = unb64(s + 3, strcspn(s + 3, ","), salt, sizeof(salt));
		if (n != 16 || strstr(s, ",i=4096") == NULL)
			t_errorf(t, "scram %s: got \"%s\", want a 16-octet "
			    "salt and i=4096", names[i], s);
		auth_sasl_free(a);
	}
	if (strcmp(got[0], got[1]) != 0)
		t_errorf(t, "scram unknown user: salt changed: %s, %s", got[0],
		    got[1]);
	if (strcmp(got[0], got[2]) == 0)
		t_errorf(t, "scram: two unknown users share salt %s", got[0]);
	if (strcmp(got[3], ",s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096") != 0)
		t_errorf(t, "scram real user: got %s", got[3]);
	/* No users file at all: still an ordinary-looking exchange. */
	if ((n = scram_run(t, NULL, "n,,", "user", "pencil")) != FAIL)
		t_errorf(t, "scram with no db: got %d, want %d", n, FAIL);
out:
	auth_db_free(db);
	sbuf_free(ch);
}

/* ------------------------------------------------------------------ */
/* PLAIN and LOGIN */

#define P3(a, b, c)	a "\0" b "\0" c, sizeof(a "\0" b "\0" c) - 1

static void
plain_login(struct t *t)
{
	static const struct {
		const char	*msg;
		size_t		 len;
		int		 want;
		const char	*user, *why;
	} v[] = {
		{ P3("", "site1", "s3cret"), OK, "site1", "no authzid" },
		{ P3("site1", "site1", "s3cret"), OK, "site1",
		    "authzid = user" },
		{ P3("", "site1", "wrong"), FAIL, "site1", "wrong password" },
		{ P3("", "site1", "s3cret "), FAIL, "site1", "trailing space" },
		{ P3("", "Site1", "s3cret"), FAIL, "Site1", "names are exact" },
		{ P3("", "nobody", "s3cret"), FAIL, "nobody", "unknown user" },
		{ P3("", "tim", "x"), FAIL, "tim", "no crypt hash" },
		{ P3("other", "site1", "s3cret"), FAIL, "site1", "authzid" },
		{ "site1s3cret", 11, BAD, "", "no NUL" },
		{ "\0site1s3cret", 12, BAD, "", "one NUL" },
		{ "", 0, BAD, "", "empty" },
		{ P3("", "", "s3cret"), BAD, "", "empty authcid" },
		{ P3("", "site1", ""), BAD, "", "empty password" },
		{ "\0site1\0s3\0cret", 15, BAD, "", "three NULs" },
	};
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new(), *file = sbuf_new();
	struct conf_list	 none = { NULL, 0 };
	size_t			 i;
	int			 rc;

	if (auth_make_line("site1", "s3cret", &none, file) != 0)
		t_fatalf(t, "auth_make_line(site1) failed");
	sbuf_cat(file, "\ntim:{CRAM-MD5}" CRAM_TIM ":\n");
	if ((db = load_ok(t, sbuf_str(file))) == NULL)
		goto out;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		a = auth_sasl_new(db, AUTH_MECH_PLAIN, "mx.example");
		rc = auth_sasl_step(a, v[i].msg, v[i].len, true, ch);
		if (rc != v[i].want || sbuf_len(ch) != 0)
			t_errorf(t, "plain (%s): got %d \"%s\", want %d",
			    v[i].why, rc, sbuf_str(ch), v[i].want);
		if (strcmp(auth_sasl_user(a), v[i].user) != 0)
			t_errorf(t, "plain (%s): auth_sasl_user: got \"%s\", "
			    "want \"%s\"", v[i].why, auth_sasl_user(a),
			    v[i].user);
		auth_sasl_free(a);
	}

	/* PLAIN without an initial response: "334 " then the message. */
	a = auth_sasl_new(db, AUTH_MECH_PLAIN, "mx.example");
	if ((rc = step(a, NULL, ch)) != CONT || sbuf_len(ch) != 0)
		t_errorf(t, "plain, no initial response: got %d \"%s\"", rc,
		    sbuf_str(ch));
	if ((rc = auth_sasl_step(a, P3("", "site1", "s3cret"), true, ch)) !=
	    OK)
		t_errorf(t, "plain, then the message: got %d, want %d", rc,
		    OK);
	if ((rc = auth_sasl_step(a, P3("", "site1", "s3cret"), true, ch)) !=
	    BAD)
		t_errorf(t, "plain, a step after success: got %d, want %d", rc,
		    BAD);
	auth_sasl_free(a);

	/* LOGIN: "Username:", "Password:". */
	a = auth_sasl_new(db, AUTH_MECH_LOGIN, "mx.example");
	if ((rc = step(a, NULL, ch)) != CONT ||
	    strcmp(sbuf_str(ch), "Username:") != 0)
		t_errorf(t, "login: first challenge: got %d \"%s\"", rc,
		    sbuf_str(ch));
	if ((rc = step(a, "site1", ch)) != CONT ||
	    strcmp(sbuf_str(ch), "Password:") != 0)
		t_errorf(t, "login: second challenge: got %d \"%s\"", rc,
		    sbuf_str(ch));
	if ((rc = step(a, "s3cret", ch)) != OK || sbuf_len(ch) != 0)
		t_errorf(t, "login: got %d \"%s\", want %d", rc, sbuf_str(ch),
		    OK);
	if (strcmp(auth_sasl_user(a), "site1") != 0)
		t_errorf(t, "login: auth_sasl_user: got \"%s\"",
		    auth_sasl_user(a));
	auth_sasl_free(a);
	/* An initial response is the user name. */
	a = auth_sasl_new(db, AUTH_MECH_LOGIN, "mx.example");
	if ((rc = step(a, "site1", ch)) != CONT ||
	    strcmp(sbuf_str(ch), "Password:") != 0)
		t_errorf(t, "login, initial response: got %d \"%s\"", rc,
		    sbuf_str(ch));
	if ((rc = step(a, "s3cret", ch)) != OK)
		t_errorf(t, "login, initial response: got %d, want %d", rc, OK);
	auth_sasl_free(a);
	if ((rc = login_run(db, "site1", "wrong")) != FAIL)
		t_errorf(t, "login wrong password: got %d, want %d", rc, FAIL);
	if ((rc = login_run(db, "nobody", "s3cret")) != FAIL)
		t_errorf(t, "login unknown user: got %d, want %d", rc, FAIL);
	if ((rc = login_run(db, "", "s3cret")) != FAIL)
		t_errorf(t, "login empty user: got %d, want %d", rc, FAIL);
	if ((rc = login_run(db, "site1", "")) != FAIL)
		t_errorf(t, "login empty password: got %d, want %d", rc, FAIL);
	a = auth_sasl_new(db, AUTH_MECH_LOGIN, "mx.example");
	step(a, "site1", ch);
	if ((rc = auth_sasl_step(a, "s3\0cret", 7, true, ch)) != BAD)
		t_errorf(t, "login NUL in password: got %d, want %d", rc, BAD);
	auth_sasl_free(a);
out:
	auth_db_free(db);
	sbuf_free(ch);
	sbuf_free(file);
}

/* ------------------------------------------------------------------ */
/* auth_make_line */

static void
make_line_roundtrip(struct t *t)
{
	static const char *const domv[] = { "dialup.example" };
	struct conf_list	 doms = { (char **)(uintptr_t)domv, 1 };
	struct auth_db		*db;
	const struct auth_user	*u;
	struct sbuf		*line = sbuf_new(), *line2 = sbuf_new();
	struct crypt_data	*cd;
	unsigned char		 salt[64], salted[32], stored[32], server[32];
	char			*s, *f[8], hash[256], want[128], sk[64], vk[64];
	const char		*res;
	int			 i, n, m;

	if (auth_make_line("site1", "s3cret", &doms, line) != 0)
		t_fatalf(t, "auth_make_line(site1) failed");
	/* site1:{CRYPT}h;{CRAM-MD5}x;{SCRAM-SHA-256}s,4096,k,k:domains */
	s = xstrdup(sbuf_str(line));
	f[0] = strtok(s, ":");
	f[1] = strtok(NULL, ":");
	f[2] = strtok(NULL, ":");
	if (f[0] == NULL || f[1] == NULL || f[2] == NULL ||
	    strtok(NULL, ":") != NULL || strcmp(f[0], "site1") != 0 ||
	    strcmp(f[2], "dialup.example") != 0 ||
	    strchr(sbuf_str(line), '\n') != NULL) {
		t_errorf(t, "auth_make_line: got \"%s\"", sbuf_str(line));
		free(s);
		goto out;
	}
	f[3] = strtok(f[1], ";");
	f[4] = strtok(NULL, ";");
	f[5] = strtok(NULL, ";");
	if (f[3] == NULL || f[4] == NULL || f[5] == NULL ||
	    strncmp(f[3], "{CRYPT}$6$", 10) != 0 ||
	    strcmp(f[4], "{CRAM-MD5}" CRAM_S3CRET) != 0 ||
	    strncmp(f[5], "{SCRAM-SHA-256}", 15) != 0) {
		t_errorf(t, "auth_make_line secrets: got \"%s\"",
		    sbuf_str(line));
		free(s);
		goto out;
	}
	/* {CRYPT}: $6$, a 16-character salt, and libcrypt agrees. */
	strl_copy(hash, f[3] + 7, sizeof(hash));
	if (strlen(hash) != 3 + 16 + 1 + 86 || hash[19] != '$')
		t_errorf(t, "{CRYPT}: got \"%s\", want $6$ + 16 + $ + 86",
		    hash);
	cd = xcalloc(1, sizeof(*cd));
	if ((res = crypt_r("s3cret", hash, cd)) == NULL ||
	    strcmp(res, hash) != 0)
		t_errorf(t, "{CRYPT}: crypt_r(s3cret) does not verify");
	free(cd);
	/* {SCRAM-SHA-256}: the keys, computed here from the salt. */
	f[6] = f[5] + 15;
	n = unb64(f[6], strcspn(f[6], ","), salt, sizeof(salt));
	scram_keys("s3cret", salt, n > 0 ? (size_t)n : 0, 4096, salted,
	    stored, server);
	m = (int)strcspn(f[6], ",");
	b64(stored, 32, sk, sizeof(sk));
	b64(server, 32, vk, sizeof(vk));
	bsnprintf(want, sizeof(want), ",4096,%s,%s", sk, vk);
	if (n != 16 || strcmp(f[6] + m, want) != 0)
		t_errorf(t, "{SCRAM-SHA-256}: got \"%s\", want a 16-octet salt "
		    "then \"%s\"", f[6], want);
	free(s);

	/* Salts are random: the same input gives another line. */
	auth_make_line("site1", "s3cret", &doms, line2);
	if (strcmp(sbuf_str(line), sbuf_str(line2)) == 0)
		t_errorf(t, "auth_make_line twice: same line");

	sbuf_catc(line, '\n');
	if ((db = load_ok(t, sbuf_str(line))) == NULL)
		goto out;
	if ((u = auth_db_find(db, "site1")) == NULL)
		t_errorf(t, "auth_db_find(site1): NULL");
	for (i = 0; u != NULL && i < 4; i++)
		if (!auth_user_has(u, (enum auth_mech)i))
			t_errorf(t, "auth_user_has(site1, %s): false",
			    mechs[i]);
	if (u != NULL && (!auth_user_owns(u, "dialup.example") ||
	    !auth_user_owns(u, "DialUp.Example") ||
	    auth_user_owns(u, "sub.dialup.example") ||
	    auth_user_owns(u, "other.example") ||
	    auth_user_domains(u)->n != 1 ||
	    strcmp(auth_user_name(u), "site1") != 0))
		t_errorf(t, "site1: domains or name wrong");
	for (i = 0; i < 4; i++) {
		if ((n = mech_run(t, db, i, "site1", "s3cret")) != OK)
			t_errorf(t, "%s site1/s3cret: got %d, want %d",
			    mechs[i], n, OK);
		if ((n = mech_run(t, db, i, "site1", "s3cre")) != FAIL)
			t_errorf(t, "%s site1/s3cre: got %d, want %d",
			    mechs[i], n, FAIL);
		if ((n = mech_run(t, db, i, "site2", "s3cret")) != FAIL)
			t_errorf(t, "%s site2/s3cret: got %d, want %d",
			    mechs[i], n, FAIL);
	}
	auth_db_free(db);
out:
	sbuf_free(line);
	sbuf_free(line2);
}

static void
make_line_refuses(struct t *t)
{
	static const struct {
		const char	*user, *pw, *dom;
	} v[] = {
		{ "bad user", "pw", NULL },
		{ "a:b", "pw", NULL },
		{ "", "pw", NULL },
		{ "#site", "pw", NULL },
		{ "caf\xc3\xa9", "pw", NULL },
		{ "x123456789012345678901234567890123456789012345678901234567"
		    "8901234", "pw", NULL },			/* 65 octets */
		{ "site1", "", NULL },
		{ "site1", "pw", "-bad-.example" },
		{ "site1", "pw", "a..example" },
		{ "site1", "pw", "bad_domain.example" },
	};
	struct sbuf		*out = sbuf_new();
	struct conf_list	 doms;
	char			*dv[1];
	size_t			 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		dv[0] = (char *)(uintptr_t)v[i].dom;
		doms.v = dv;
		doms.n = v[i].dom != NULL;
		sbuf_reset(out);
		if (auth_make_line(v[i].user, v[i].pw, &doms, out) != -1 ||
		    sbuf_len(out) != 0)
			t_errorf(t, "auth_make_line(\"%s\", \"%s\", %s): got "
			    "\"%s\", want -1", v[i].user, v[i].pw,
			    v[i].dom ? v[i].dom : "-", sbuf_str(out));
	}
	/* 64 octets is the longest name; domains come out lower-cased. */
	dv[0] = (char *)(uintptr_t)"Dialup.EXAMPLE";
	doms.n = 1;
	sbuf_reset(out);
	if (auth_make_line("x12345678901234567890123456789012345678901234567"
	    "8901234567890123", "pw", &doms, out) != 0 ||
	    strcmp(sbuf_str(out) + sbuf_len(out) - 15, ":dialup.example") != 0)
		t_errorf(t, "auth_make_line(64-octet name, Dialup.EXAMPLE): "
		    "got \"%s\"", sbuf_str(out));
	sbuf_free(out);
}

/* ------------------------------------------------------------------ */
/* users_file */

static void
users_file_ok(struct t *t)
{
	struct auth_db		*db;
	const struct auth_user	*a, *b;
	const struct conf_list	*d;
	int			 rc;

	db = load_ok(t,
	    "# users\n"
	    "\n"
	    "   # indented comment\n"
	    "alice:" HASH_HUNTER2 ":Example.ORG, .Sub.Example.net\r\n"
	    "  bob:{crypt}" HASH_HUNTER2 ";{cram-md5}D06D4E1B26FCCAA4B0B6180113"
	    "2340A354B21152711FB604CA3E035E7015116B:  \n"
	    "carol:{CRAM-MD5}" CRAM_TIM ":a.example,b.example");
	if (db == NULL)
		return;
	a = auth_db_find(db, "alice");
	b = auth_db_find(db, "bob");
	if (a == NULL || b == NULL || auth_db_find(db, "carol") == NULL)
		t_fatalf(t, "alice, bob or carol missing");
	if (auth_db_find(db, "Alice") != NULL || auth_db_find(db, "") != NULL ||
	    auth_db_find(db, "# users") != NULL)
		t_errorf(t, "auth_db_find: found a user that isn't there");
	d = auth_user_domains(a);
	if (d->n != 2 || strcmp(d->v[0], "example.org") != 0 ||
	    strcmp(d->v[1], ".sub.example.net") != 0)
		t_errorf(t, "alice's domains: got %zu", d->n);
	if (!auth_user_owns(a, "EXAMPLE.org") ||
	    !auth_user_owns(a, "x.sub.example.net") ||
	    auth_user_owns(a, "sub.example.net") ||
	    auth_user_owns(a, "x.example.org"))
		t_errorf(t, "auth_user_owns(alice, ...) wrong");
	if (!auth_user_has(a, AUTH_MECH_PLAIN) ||
	    !auth_user_has(a, AUTH_MECH_LOGIN) ||
	    auth_user_has(a, AUTH_MECH_CRAM_MD5) ||
	    auth_user_has(a, AUTH_MECH_SCRAM_SHA256))
		t_errorf(t, "auth_user_has(alice) wrong: a bare hash is "
		    "PLAIN and LOGIN only");
	if (!auth_user_has(b, AUTH_MECH_CRAM_MD5) ||
	    !auth_user_has(b, AUTH_MECH_PLAIN) || auth_user_domains(b)->n != 0)
		t_errorf(t, "bob: tags in lower case, hex in upper case");
	if ((rc = mech_run(t, db, AUTH_MECH_PLAIN, "alice", "hunter2")) != OK)
		t_errorf(t, "PLAIN alice/hunter2: got %d", rc);
	if ((rc = mech_run(t, db, AUTH_MECH_CRAM_MD5, "bob", CRAM_KEY)) != OK)
		t_errorf(t, "CRAM-MD5 bob: got %d", rc);
	if ((rc = mech_run(t, db, AUTH_MECH_CRAM_MD5, "alice", "hunter2")) !=
	    FAIL)
		t_errorf(t, "CRAM-MD5 alice (no secret): got %d", rc);
	if (auth_user_has(NULL, AUTH_MECH_PLAIN) ||
	    auth_user_owns(NULL, "example.org"))
		t_errorf(t, "NULL user: want false");
	auth_db_free(db);

	/* An empty file is a users_file with nobody in it. */
	if ((db = load_ok(t, "")) != NULL &&
	    auth_db_find(db, "alice") != NULL)
		t_errorf(t, "empty file: found alice");
	auth_db_free(db);
	auth_db_free(NULL);
}

#define K32	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static void
users_file_errors(struct t *t)
{
	static const struct {
		const char	*file;
		int		 line;
		const char	*why;
	} v[] = {
		{ "alice:" HASH_HUNTER2 "\n", 1, "USER:SECRETS:DOMAINS" },
		{ "# c\n\nbad line\n", 3, "USER:SECRETS:DOMAINS" },
		{ "a:{CRAM-MD5}" CRAM_TIM ":x.example:y\n", 1,
		    "USER:SECRETS:DOMAINS" },
		{ "a:{CRAM-MD5}" CRAM_TIM ":\nb:{CRAM-MD5}" CRAM_TIM ":\n"
		    "a:{CRAM-MD5}" CRAM_TIM ":\n", 3,
		    "duplicate user \"a\" (first on line 1)" },
		{ "a b:{CRAM-MD5}" CRAM_TIM ":\n", 1, "bad user name" },
		{ ":{CRAM-MD5}" CRAM_TIM ":\n", 1, "bad user name" },
		{ "x12345678901234567890123456789012345678901234567890123456789"
		    "01234:{CRAM-MD5}" CRAM_TIM ":\n", 1, "bad user name" },
		{ "a::\n", 1, "no secrets" },
		{ "a:{CRAM-MD5}" CRAM_TIM ";:\n", 1, "empty secret" },
		{ "a:{PLAIN}secret:\n", 1, "unknown scheme {PLAIN}" },
		{ "a:{CRAM-MD5:\n", 1, "no '}'" },
		{ "a:{CRAM-MD5}abc:\n", 1, "64 hex digits" },
		{ "a:{CRAM-MD5}" CRAM_TIM ";{CRAM-MD5}" CRAM_TIM ":\n", 1,
		    "more than one {CRAM-MD5}" },
		{ "a:" HASH_HUNTER2 ";{CRYPT}" HASH_HUNTER2 ":\n", 1,
		    "more than one {CRYPT}" },
		{ "a:!locked:\n", 1, "not a hash libcrypt knows" },
		{ "a:$6$abcdefgh12345678$va.5Cu4V3:\n", 1, "cut short" },
		{ "a:{SCRAM-SHA-256}" SC_SALT ",100," K32 "," K32 ":\n", 1,
		    "iteration count" },
		{ "a:{SCRAM-SHA-256}" SC_SALT ",4096x," K32 "," K32 ":\n", 1,
		    "iteration count" },
		{ "a:{SCRAM-SHA-256}W22ZaJ0SNY7soEsUEjb6gQ=," "4096," K32 ","
		    K32 ":\n", 1, "bad salt" },
		{ "a:{SCRAM-SHA-256}" SC_SALT ",4096,AAAA," K32 ":\n", 1,
		    "StoredKey" },
		{ "a:{SCRAM-SHA-256}" SC_SALT ",4096," K32 ":\n", 1, "want" },
		{ "a:{SCRAM-SHA-256}" SC_SALT ",4096," K32 "," K32 ",x:\n", 1,
		    "want" },
		{ "a:{CRAM-MD5}" CRAM_TIM ":bad_domain.example\n", 1,
		    "bad domain \"bad_domain.example\"" },
		{ "a:{CRAM-MD5}" CRAM_TIM ":ok.example,-x.example\n", 1,
		    "bad domain" },
	};
	static const char nul[] = "a:{CRAM-MD5}" CRAM_TIM ":\nb\0:x:\n";
	struct auth_db	*db;
	char		 path[64], err[512], want[128];
	size_t		 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		db = load_str(t, v[i].file, path, sizeof(path), err,
		    sizeof(err));
		bsnprintf(want, sizeof(want), "%s:%d: ", path, v[i].line);
		if (db != NULL) {
			t_errorf(t, "auth_db_load(%s): loaded, want \"%s\"",
			    v[i].file, v[i].why);
			auth_db_free(db);
			continue;
		}
		if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, v[i].why) == NULL)
			t_errorf(t, "auth_db_load(%s): got \"%s\", want \"%s"
			    "...%s...\"", v[i].file, err, want, v[i].why);
	}
	/* A NUL byte in the file. */
	if (write_tmpn(nul, sizeof(nul) - 1, path, sizeof(path)) == 0) {
		db = auth_db_load(path, err, sizeof(err));
		bsnprintf(want, sizeof(want), "%s:2: NUL", path);
		if (db != NULL || strncmp(err, want, strlen(want)) != 0)
			t_errorf(t, "NUL byte: got \"%s\", want \"%s\"", err,
			    want);
		auth_db_free(db);
		unlink(path);
	}
	/* No file. */
	db = auth_db_load("/nonexistent/users", err, sizeof(err));
	if (db != NULL || strcmp(err, "/nonexistent/users: No such file or "
	    "directory") != 0)
		t_errorf(t, "missing file: got \"%s\"", err);
	auth_db_free(db);
}

/* ------------------------------------------------------------------ */
/* Issue 8: the db outlives a reload, long passwords, guessing. */

/*
 * db_reload_midway - the server drops its db (a SIGHUP reload) between a
 * challenge and the answer: the exchange holds its own reference, so the
 * answer is checked against the users it started with, and the db goes
 * with the exchange (ASan sees a use after free or a leak otherwise).
 */
static void
db_reload_midway(struct t *t)
{
	struct auth_db		*db;
	struct auth_sasl	*a;
	struct sbuf		*ch = sbuf_new(), *file = sbuf_new();
	struct conf_list	 none = { NULL, 0 };
	unsigned char		 mac[16];
	unsigned int		 n;
	char			 resp[256], first[128], final[512], v[128];
	char			 cb[16];
	int			 rc, k, len;

	if (auth_make_line("site1", "s3cret", &none, file) != 0)
		t_fatalf(t, "auth_make_line(site1) failed");
	sbuf_catc(file, '\n');

	/* CRAM-MD5. */
	if ((db = load_ok(t, sbuf_str(file))) == NULL)
		goto out;
	a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5, "mx.example");
	if ((rc = step(a, NULL, ch)) != CONT)
		t_errorf(t, "cram challenge: got %d, want %d", rc, CONT);
	auth_db_free(db);		/* the reload */
	HMAC(EVP_md5(), "s3cret", 6, (const unsigned char *)sbuf_str(ch),
	    sbuf_len(ch), mac, &n);
	len = snprintf(resp, sizeof(resp), "site1 ");
	for (k = 0; k < 16; k++)
		len += snprintf(resp + len, sizeof(resp) - (size_t)len, "%02x",
		    mac[k]);
	if ((rc = step(a, resp, ch)) != OK)
		t_errorf(t, "cram after the db was dropped: got %d, want %d",
		    rc, OK);
	auth_sasl_free(a);		/* frees the db */

	/* SCRAM-SHA-256: the salt, then the keys, come from the db. */
	if ((db = load_ok(t, sbuf_str(file))) == NULL)
		goto out;
	a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256, "mx.example");
	bsnprintf(first, sizeof(first), "n,,n=site1,r=fyko+d2lbbFgONRv9qkxd");
	b64("n,,", 3, cb, sizeof(cb));
	if ((rc = step(a, first, ch)) != CONT)
		t_errorf(t, "scram server-first: got %d, want %d", rc, CONT);
	auth_db_free(db);		/* the reload */
	if (!scram_client_final("s3cret", first + 3, sbuf_str(ch), cb, final,
	    sizeof(final), v, sizeof(v)))
		t_errorf(t, "scram: bad server-first \"%s\"", sbuf_str(ch));
	else if ((rc = step(a, final, ch)) != CONT ||
	    strcmp(sbuf_str(ch), v) != 0)
		t_errorf(t, "scram after the db was dropped: got %d \"%s\", "
		    "want %d \"%s\"", rc, sbuf_str(ch), CONT, v);
	else if ((rc = step(a, "", ch)) != OK)
		t_errorf(t, "scram end: got %d, want %d", rc, OK);
	auth_sasl_free(a);

	/* No db at all: every user is unknown, nothing to hold. */
	a = auth_sasl_new(NULL, AUTH_MECH_CRAM_MD5, "mx.example");
	step(a, NULL, ch);
	if ((rc = step(a, resp, ch)) != FAIL)
		t_errorf(t, "cram without a db: got %d, want %d", rc, FAIL);
	auth_sasl_free(a);
out:
	sbuf_free(ch);
	sbuf_free(file);
}

/*
 * password_cap - PLAIN and LOGIN take passwords of up to 256 octets; a
 * longer one fails without being hashed, even when it is the right one,
 * and `postern passwd` (auth_make_line) refuses to make such a line.
 */
static void
password_cap(struct t *t)
{
	struct crypt_data	*cd = calloc(1, sizeof(*cd));
	struct auth_db		*db;
	struct sbuf		*file = sbuf_new(), *msg = sbuf_new();
	struct conf_list	 none = { NULL, 0 };
	char			 pw[258];
	const char		*h;
	size_t			 len;
	int			 rc;

	memset(pw, 'p', sizeof(pw) - 1);
	for (len = 256; len <= 257; len++) {
		pw[len] = '\0';
		sbuf_reset(file);
		if ((auth_make_line("u", pw, &none, file) == 0) != (len == 256))
			t_errorf(t, "auth_make_line(%zu-octet password): got "
			    "\"%s\"", len, sbuf_str(file));
		/* A hash made elsewhere for the long one. */
		if (cd == NULL || (h = crypt_r(pw, "$6$abcdefgh12345678", cd)) ==
		    NULL || h[0] == '*') {
			t_errorf(t, "crypt_r failed");
			break;
		}
		sbuf_reset(file);
		sbuf_catf(file, "u:{CRYPT}%s:\n", h);
		if ((db = load_ok(t, sbuf_str(file))) == NULL)
			break;
		sbuf_reset(msg);
		sbuf_catn(msg, "\0u\0", 3);
		sbuf_cat(msg, pw);
		rc = plain_run(db, sbuf_str(msg), sbuf_len(msg));
		if (rc != (len == 256 ? OK : FAIL))
			t_errorf(t, "plain with a %zu-octet password: got %d, "
			    "want %d", len, rc, len == 256 ? OK : FAIL);
		rc = login_run(db, "u", pw);
		if (rc != (len == 256 ? OK : FAIL))
			t_errorf(t, "login with a %zu-octet password: got %d, "
			    "want %d", len, rc, len == 256 ? OK : FAIL);
		auth_db_free(db);
		pw[len] = 'p';
	}
	free(cd);
	sbuf_free(file);
	sbuf_free(msg);
}

/* throttle_window - a count per address within a window, from its first
 * failure; then the address waits for the rest of the window. */
static void
throttle_window(struct t *t)
{
	struct auth_throttle	*th = auth_throttle_new(16);
	uint64_t		 w;

	/* Limit 3 in 1000 ms. */
	if ((w = auth_throttle_fail(th, "192.0.2.1", 3, 1000, 100)) != 0 ||
	    (w = auth_throttle_fail(th, "192.0.2.1", 3, 1000, 200)) != 0)
		t_errorf(t, "two failures: got %llu, want 0",
		    (unsigned long long)w);
	if ((w = auth_throttle_fail(th, "192.0.2.1", 3, 1000, 300)) != 800)
		t_errorf(t, "third failure at 300: got %llu, want 800",
		    (unsigned long long)w);
	if ((w = auth_throttle_wait(th, "192.0.2.1", 3, 1000, 600)) != 500)
		t_errorf(t, "wait at 600: got %llu, want 500",
		    (unsigned long long)w);
	if ((w = auth_throttle_wait(th, "192.0.2.2", 3, 1000, 600)) != 0)
		t_errorf(t, "another address: got %llu, want 0",
		    (unsigned long long)w);
	if ((w = auth_throttle_wait(th, "192.0.2.1", 3, 1000, 1100)) != 0)
		t_errorf(t, "wait at the end of the window: got %llu, want 0",
		    (unsigned long long)w);
	/* A new window: one failure is not enough. */
	if ((w = auth_throttle_fail(th, "192.0.2.1", 3, 1000, 1100)) != 0 ||
	    (w = auth_throttle_wait(th, "192.0.2.1", 3, 1000, 1101)) != 0)
		t_errorf(t, "a failure in a new window: got %llu, want 0",
		    (unsigned long long)w);
	/* The limit read at each call (a reload may change it). */
	if ((w = auth_throttle_wait(th, "192.0.2.1", 1, 1000, 1101)) != 999)
		t_errorf(t, "limit 1: got %llu, want 999",
		    (unsigned long long)w);
	/* Limit 0 is off: nothing counted, nothing refused. */
	if ((w = auth_throttle_fail(th, "192.0.2.9", 0, 1000, 0)) != 0 ||
	    (w = auth_throttle_wait(th, "192.0.2.1", 0, 1000, 1101)) != 0)
		t_errorf(t, "limit 0: got %llu, want 0",
		    (unsigned long long)w);
	/* IPv6 counts per /64; IPv4-mapped is IPv4. */
	auth_throttle_fail(th, "2001:db8:1:2::1", 2, 1000, 0);
	if ((w = auth_throttle_fail(th, "2001:db8:1:2:aaaa::7", 2, 1000, 0)) !=
	    1000)
		t_errorf(t, "two addresses of one /64: got %llu, want 1000",
		    (unsigned long long)w);
	if ((w = auth_throttle_wait(th, "2001:db8:1:3::1", 2, 1000, 0)) != 0)
		t_errorf(t, "another /64: got %llu, want 0",
		    (unsigned long long)w);
	auth_throttle_fail(th, "::ffff:198.51.100.7", 2, 1000, 0);
	if ((w = auth_throttle_fail(th, "198.51.100.7", 2, 1000, 0)) != 1000)
		t_errorf(t, "v4-mapped and v4: got %llu, want 1000",
		    (unsigned long long)w);
	/* Text that is no address is counted as it is. */
	if ((w = auth_throttle_fail(th, "not an address", 1, 1000, 5)) != 1000)
		t_errorf(t, "not an address: got %llu, want 1000",
		    (unsigned long long)w);
	auth_throttle_free(th);
	auth_throttle_free(NULL);
	if (auth_throttle_fail(NULL, "192.0.2.1", 1, 1000, 0) != 0 ||
	    auth_throttle_wait(NULL, "192.0.2.1", 1, 1000, 0) != 0)
		t_errorf(t, "no table: want 0");
}

/* throttle_lru - a full table forgets its least recently failing
 * address, and only that one. */
static void
throttle_lru(struct t *t)
{
	struct auth_throttle	*th = auth_throttle_new(2);
	char			 a[32];
	int			 i;

	auth_throttle_fail(th, "192.0.2.1", 1, 1000, 0);	/* A */
	auth_throttle_fail(th, "192.0.2.2", 1, 1000, 1);	/* B */
	auth_throttle_fail(th, "192.0.2.1", 1, 1000, 2);	/* A again */
	auth_throttle_fail(th, "192.0.2.3", 1, 1000, 3);	/* C: B goes */
	if (auth_throttle_wait(th, "192.0.2.2", 1, 1000, 4) != 0)
		t_errorf(t, "B should have been evicted");
	if (auth_throttle_wait(th, "192.0.2.1", 1, 1000, 4) != 996 ||
	    auth_throttle_wait(th, "192.0.2.3", 1, 1000, 4) != 999)
		t_errorf(t, "A and C should be kept");
	auth_throttle_fail(th, "192.0.2.4", 1, 1000, 5);	/* D: A goes */
	if (auth_throttle_wait(th, "192.0.2.1", 1, 1000, 6) != 0 ||
	    auth_throttle_wait(th, "192.0.2.3", 1, 1000, 6) == 0 ||
	    auth_throttle_wait(th, "192.0.2.4", 1, 1000, 6) == 0)
		t_errorf(t, "after D: want A gone, C and D kept");
	auth_throttle_free(th);

	/* Many addresses through a small table: the hash chains stay
	 * consistent (ASan), the newest are all there. */
	th = auth_throttle_new(64);
	for (i = 0; i < 1000; i++) {
		bsnprintf(a, sizeof(a), "10.0.%d.%d", i / 256, i % 256);
		auth_throttle_fail(th, a, 1, 100000, (uint64_t)i);
	}
	for (i = 0; i < 1000; i++) {
		bsnprintf(a, sizeof(a), "10.0.%d.%d", i / 256, i % 256);
		if ((auth_throttle_wait(th, a, 1, 100000, 1000) != 0) !=
		    (i >= 1000 - 64))
			t_errorf(t, "address %d of 1000 in a table of 64: "
			    "wrong", i);
	}
	auth_throttle_free(th);
	/* A table of nothing counts nothing. */
	th = auth_throttle_new(0);
	if (auth_throttle_fail(th, "192.0.2.1", 1, 1000, 0) != 0)
		t_errorf(t, "a table of 0: want 0");
	auth_throttle_free(th);
}

/* The one comment rule (smtp.h, linefile.c) in users_file: '#' after
 * white space starts a comment, '#' inside a word is text; a line over
 * LINEFILE_LINE_MAX is an error naming it. */
static void
users_file_comment_rule(struct t *t)
{
	struct auth_db		*db;
	const struct auth_user	*u;
	struct sbuf		*text;
	char			 path[64], err[512];
	size_t			 i;

	db = load_ok(t, "alice:" HASH_HUNTER2 ":a.example # the site\n"
	    "b#ob:" HASH_HUNTER2 ":\t# no domains\n");
	if (db == NULL)
		return;
	if ((u = auth_db_find(db, "alice")) == NULL ||
	    auth_user_domains(u)->n != 1 || !auth_user_owns(u, "a.example"))
		t_errorf(t, "alice: a trailing comment is not a domain");
	if ((u = auth_db_find(db, "b#ob")) == NULL ||
	    auth_user_domains(u)->n != 0)
		t_errorf(t, "b#ob: '#' inside a name is text");
	auth_db_free(db);

	text = sbuf_new();
	sbuf_cat(text, "# long\nalice:" HASH_HUNTER2 ":");
	for (i = 0; i < LINEFILE_LINE_MAX; i++)
		sbuf_catc(text, 'a');
	db = load_str(t, sbuf_str(text), path, sizeof(path), err, sizeof(err));
	if (db != NULL || strstr(err, ":2: line longer than") == NULL)
		t_errorf(t, "a long line: got \"%s\"", err);
	auth_db_free(db);
	sbuf_free(text);
}

/* The user-name rule, one function for users_file and `postern passwd`. */
static void
user_name_rule(struct t *t)
{
	static const struct {
		const char	*name;
		bool		 ok;
	} v[] = {
		{ "site1", true },
		{ "a#b", true },
		{ "a@example.org", true },
		{ "x123456789012345678901234567890123456789012345678901234567"
		    "890123", true },			/* 64 octets */
		{ "x123456789012345678901234567890123456789012345678901234567"
		    "8901234", false },				/* 65 */
		{ "", false },
		{ "#site", false },
		{ "a:b", false },
		{ "a b", false },
		{ "a\tb", false },
		{ "a\x7f", false },
		{ "caf\xc3\xa9", false },
	};
	size_t	i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (auth_user_name_ok(v[i].name, strlen(v[i].name)) != v[i].ok)
			t_errorf(t, "auth_user_name_ok(\"%s\"): got %d, "
			    "want %d", v[i].name, !v[i].ok, v[i].ok);
	if (AUTH_USER_MAX != 64)
		t_errorf(t, "AUTH_USER_MAX: got %d, want 64", AUTH_USER_MAX);
}

int
main(void)
{
	T_RUN(b64_vectors);
	T_RUN(b64_strict);
	T_RUN(mech_names);
	T_RUN(cram_rfc2195);
	T_RUN(cram_dovecot);
	T_RUN(scram_rfc7677);
	T_RUN(scram_exchange);
	T_RUN(scram_malformed);
	T_RUN(scram_unknown);
	T_RUN(plain_login);
	T_RUN(make_line_roundtrip);
	T_RUN(make_line_refuses);
	T_RUN(users_file_ok);
	T_RUN(users_file_errors);
	T_RUN(db_reload_midway);
	T_RUN(password_cap);
	T_RUN(throttle_window);
	T_RUN(throttle_lru);
	T_RUN(users_file_comment_rule);
	T_RUN(user_name_rule);
	T_EXIT();
}

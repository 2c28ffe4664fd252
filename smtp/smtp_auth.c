/*
 * smtp_auth.c - users_file and the server side of SASL (RFC 4954): PLAIN
 * (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195) and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677, no channel binding).
 *
 * users_file, one user a line: USER:SECRETS:DOMAINS.
 *   USER	1..64 octets 0x21..0x7e other than ':', not starting with '#'
 *		(that would be a comment). Compared exactly (case matters).
 *   SECRETS	';'-separated; each secret at most once:
 *		{CRYPT}hash, or an untagged hash: any crypt(3) hash that
 *		libcrypt accepts (crypt_checksalt); PLAIN and LOGIN.
 *		{CRAM-MD5}64 hex digits: the HMAC-MD5 states after the key
 *		block, exactly as Dovecot's CRAM-MD5 scheme stores them
 *		(hmac_md5_get_cram_context): the OUTER (key XOR 0x5c)
 *		context's A, B, C, D, then the INNER (key XOR 0x36) one's;
 *		each 32-bit word as 4 octets, least significant first, each
 *		octet 2 hex digits (the MD5 initial A 0x67452301 would read
 *		"01234567"). `doveadm pw -s CRAM-MD5 -p password` gives
 *		9186d855...b313e1 (outer) 80d62234...e2740 (inner), and so
 *		do we. We write lower case and read either case.
 *		{SCRAM-SHA-256}base64(salt),iterations,base64(StoredKey),
 *		base64(ServerKey): RFC 5802 §3 with SHA-256; salt 1..128
 *		octets, iterations 4096..10000000, keys 32 octets. (Dovecot's
 *		own scheme puts the iterations first; this file follows smtp.h.)
 *		Tags are matched in any case.
 *   DOMAINS	comma (or white space) separated domains the user may pull,
 *		lower-cased; ".example.org" means every subdomain of it, as
 *		in conf_domain_in(). May be empty.
 * Comments, blank lines and white space around a line (CR of a CRLF file
 * too) go as in every file postern reads (linefile.c): '#' starts a
 * comment at the start of a line or after white space, so a '#' inside a
 * name or a hash is text.
 *
 * Unknown users, and users without the secret a mechanism needs, go
 * through the same exchange as a wrong password and end in AUTH_FAIL:
 * PLAIN/LOGIN run crypt against a dummy SHA-512 setting, CRAM-MD5 runs the
 * HMAC over dummy states, and SCRAM sends a salt made from
 * HMAC-SHA-256(SHA-256(every SECRETS field of the file), user name) and
 * 4096 iterations, so the salt is stable for a name and unguessable
 * without the file.
 *
 * Passwords are used as the octets given: no SASLprep (RFC 4013) for
 * SCRAM, which is the identity for printable ASCII. PLAIN and LOGIN
 * refuse passwords over 256 octets (AUTH_FAIL, without hashing them):
 * sha512crypt's cost grows with the length, and the SMTP server runs it
 * in its one event loop (a 511-octet password took ~12 ms).
 *
 * For the caller (the SMTP session): auth_sasl_step() empties `challenge`
 * first and fills it only on AUTH_CONTINUE; an empty challenge is "334 ".
 * The first step decides: have_in false means no initial response; later
 * steps always take the response (maybe empty). PLAIN and SCRAM with no
 * initial response ask with an empty challenge; CRAM-MD5 is server-first,
 * so an initial response there is AUTH_BADPROTO (RFC 4954 §4 wants 501
 * 5.7.0 for it: check before calling if you want that code). SCRAM ends
 * with AUTH_CONTINUE carrying "v=..." and AUTH_OK on the empty response.
 * Any step after the end is AUTH_BADPROTO. Each auth_sasl holds a
 * reference on its db, so a reload may drop the old db at once: it is
 * freed when the last exchange that uses it ends.
 *
 * Against online guessing the server also keeps an auth_throttle: failed
 * attempts per client address in a fixed-size table (hash chains and an
 * LRU list over one array, so a flood of addresses costs no memory),
 * with the limit and window given at each call so that a reload applies.
 * The caller wipes its own copy of the decoded responses, and cleans
 * auth_sasl_user() (peer text) before logging it. A failing RAND_bytes
 * ends the process (log_panic): there is no safe way to go on.
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* MD5_* low level, for CRAM-MD5 */

#include <arpa/inet.h>
#include <netinet/in.h>

#include <crypt.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "smtp.h"

#define AUTH_SCRAM_ITER		4096	/* RFC 7677 §4: at least 4096 */
#define AUTH_SCRAM_ITER_MAX	10000000
#define AUTH_SCRAM_SALT		16
#define AUTH_SCRAM_SALT_MAX	128
#define AUTH_KEY_LEN		SHA256_DIGEST_LENGTH
#define AUTH_NONCE_BYTES	18	/* 24 base64 characters */
#define AUTH_TEST_NONCE_MAX	256

/* For unknown users: same cost as the hashes auth_make_line() writes. */
static const char auth_dummy_crypt[] = "$6$postern.unknown$";
static const uint32_t auth_dummy_cram[8] = {
	0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
	0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
};

struct auth_user {
	char		*name;
	int		 line;
	char		*crypt;		/* NULL: no PLAIN/LOGIN */
	bool		 has_cram;
	bool		 has_scram;
	uint32_t	 cram[8];	/* outer A..D, inner A..D, as stored */
	unsigned char	 salt[AUTH_SCRAM_SALT_MAX];
	size_t		 saltlen;
	int		 iter;
	unsigned char	 stored_key[AUTH_KEY_LEN];
	unsigned char	 server_key[AUTH_KEY_LEN];
	struct conf_list domains;
};

struct auth_db {
	struct auth_user	**v;	/* sorted by name */
	size_t			  n;
	unsigned long		  refs;	/* the loader's, and each auth_sasl's */
	unsigned char		  fake_key[AUTH_KEY_LEN];
};

enum auth_state {
	AUTH_S_START,
	AUTH_S_PLAIN,		/* waiting for the PLAIN message */
	AUTH_S_LOGIN_USER,
	AUTH_S_LOGIN_PASS,
	AUTH_S_CRAM,		/* challenge sent */
	AUTH_S_SCRAM_FIRST,	/* waiting for client-first */
	AUTH_S_SCRAM_FINAL,	/* server-first sent */
	AUTH_S_SCRAM_ACK,	/* v= sent, waiting for the empty response */
	AUTH_S_DONE,
};

struct auth_sasl {
	struct auth_db		*db;	/* a reference */
	enum auth_mech		 mech;
	enum auth_state		 state;
	char			*user;		/* attempted name, or NULL */
	const struct auth_user	*u;		/* NULL: unknown */
	bool			 doomed;	/* fails at the end (authzid) */
	char			*test_nonce;
	struct sbuf		*cram_chal;
	struct sbuf		*authmsg;	/* SCRAM AuthMessage so far */
	struct sbuf		*nonce;		/* SCRAM c-nonce + s-nonce */
	struct sbuf		*cbind;		/* base64(gs2-header) */
};

/* Set by auth_sasl_test_nonce(), taken by the next auth_sasl_new(). */
static char	auth_test_nonce[AUTH_TEST_NONCE_MAX];
static bool	auth_test_nonce_set;

/* ------------------------------------------------------------------ */
/* Small helpers. */

static void
auth_wipe_free(void *p, size_t len)
{
	if (p != NULL) {
		explicit_bzero(p, len);
		free(p);
	}
}

static void
auth_wipe_str(char *s)
{
	if (s != NULL)
		auth_wipe_free(s, strlen(s));
}

static struct sbuf *
auth_sbuf_wipe(struct sbuf *b)
{
	if (b != NULL)
		explicit_bzero(b->s, b->cap);
	return sbuf_free(b);
}

bool
auth_user_name_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > AUTH_USER_MAX || s[0] == '#')
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e ||
		    s[i] == ':')
			return false;
	return true;
}

/* auth_domain_ok - a domain for DOMAINS: optional leading dot, then an
 * RFC 5321 domain, U-labels allowed when they have A-labels. */
static bool
auth_domain_ok(const char *d)
{
	char	a[SMTP_DOMAIN_MAX + 2];

	return smtp_idn_domain(d, a, sizeof(a), NULL) == 0;
}

/* auth_hexval - a hex digit's value, or -1; upper case only if upper. */
static int
auth_hexval(int c, bool upper)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (upper && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* auth_random - RAND_bytes, or abort: nothing here can go on without. */
static void
auth_random(void *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
		log_panic("%s: RAND_bytes failed", __func__);
}

static bool
auth_hmac256(const void *key, size_t keylen, const void *msg, size_t len,
    unsigned char out[AUTH_KEY_LEN])
{
	unsigned int	olen = 0;

	if (keylen > INT_MAX)
		return false;
	return HMAC(EVP_sha256(), key, (int)keylen, msg, len, out,
	    &olen) != NULL && olen == AUTH_KEY_LEN;
}

/* ------------------------------------------------------------------ */
/* CRAM-MD5: HMAC-MD5 (RFC 2104) from the precomputed states. */

/* auth_cram_resume - an MD5 context that has processed one 64-octet
 * block and reached state st[0..3]. OpenSSL counts bits in Nl/Nh. */
static void
auth_cram_resume(MD5_CTX *c, const uint32_t st[4])
{
	MD5_Init(c);
	c->A = st[0];
	c->B = st[1];
	c->C = st[2];
	c->D = st[3];
	c->Nl = 512;
	c->Nh = 0;
	c->num = 0;
}

/* auth_cram_mac - HMAC-MD5 of msg; st is outer A..D, inner A..D. */
static void
auth_cram_mac(const uint32_t st[8], const void *msg, size_t len,
    unsigned char out[MD5_DIGEST_LENGTH])
{
	MD5_CTX		c;
	unsigned char	inner[MD5_DIGEST_LENGTH];

	auth_cram_resume(&c, st + 4);
	MD5_Update(&c, msg, len);
	MD5_Final(inner, &c);
	auth_cram_resume(&c, st);
	MD5_Update(&c, inner, sizeof(inner));
	MD5_Final(out, &c);
	explicit_bzero(&c, sizeof(c));
	explicit_bzero(inner, sizeof(inner));
}

/* auth_cram_precompute - the outer and inner states for this key, in
 * Dovecot's order (outer first). */
static void
auth_cram_precompute(const char *pw, size_t len, uint32_t st[8])
{
	MD5_CTX		c;
	unsigned char	key[MD5_CBLOCK], blk[MD5_CBLOCK];
	int		k;
	size_t		i;

	memset(key, 0, sizeof(key));
	if (len > sizeof(key))
		MD5((const unsigned char *)pw, len, key); /* RFC 2104 */
	else
		memcpy(key, pw, len);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < sizeof(blk); i++)
			blk[i] = key[i] ^ (k == 0 ? 0x5c : 0x36);
		MD5_Init(&c);
		MD5_Update(&c, blk, sizeof(blk));
		st[k * 4] = c.A;
		st[k * 4 + 1] = c.B;
		st[k * 4 + 2] = c.C;
		st[k * 4 + 3] = c.D;
	}
	explicit_bzero(&c, sizeof(c));
	explicit_bzero(key, sizeof(key));
	explicit_bzero(blk, sizeof(blk));
}

/* auth_cram_parse - 64 hex digits into the eight words (little-endian). */
static int
auth_cram_parse(const char *s, uint32_t st[8])
{
	int	i, j, hi, lo;

	if (strlen(s) != 64)
		return -1;
	for (i = 0; i < 8; i++) {
		st[i] = 0;
		for (j = 0; j < 4; j++) {
			hi = auth_hexval(s[i * 8 + j * 2], true);
			lo = auth_hexval(s[i * 8 + j * 2 + 1], true);
			if (hi < 0 || lo < 0)
				return -1;
			st[i] |= (uint32_t)(hi << 4 | lo) << (8 * j);
		}
	}
	return 0;
}

static void
auth_cram_format(const uint32_t st[8], struct sbuf *out)
{
	int	i, j;

	for (i = 0; i < 8; i++)
		for (j = 0; j < 4; j++)
			sbuf_catf(out, "%02x",
			    (unsigned int)(st[i] >> (8 * j)) & 0xff);
}

/* ------------------------------------------------------------------ */
/* SCRAM-SHA-256 keys (RFC 5802 §3). */

static bool
auth_scram_keys(const char *pw, size_t pwlen, const unsigned char *salt,
    size_t saltlen, int iter, unsigned char stored[AUTH_KEY_LEN],
    unsigned char server[AUTH_KEY_LEN])
{
	unsigned char	salted[AUTH_KEY_LEN], ckey[AUTH_KEY_LEN];
	bool		ok;

	ok = pwlen <= INT_MAX && saltlen <= INT_MAX &&
	    PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)saltlen, iter,
	    EVP_sha256(), sizeof(salted), salted) == 1 &&
	    auth_hmac256(salted, sizeof(salted), "Client Key", 10, ckey) &&
	    SHA256(ckey, sizeof(ckey), stored) != NULL &&
	    auth_hmac256(salted, sizeof(salted), "Server Key", 10, server);
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(ckey, sizeof(ckey));
	return ok;
}

/* auth_b64_exact - strict base64 of exactly want octets (0: 1..max). */
static int
auth_b64_exact(const char *s, size_t len, unsigned char *out, size_t want,
    size_t max, size_t *got)
{
	struct sbuf	*b = sbuf_new();
	int		 rc = -1;

	if (smtp_b64_decode(s, len, b) == 0 && (want != 0 ?
	    sbuf_len(b) == want : sbuf_len(b) >= 1 && sbuf_len(b) <= max)) {
		memcpy(out, sbuf_str(b), sbuf_len(b));
		if (got != NULL)
			*got = sbuf_len(b);
		rc = 0;
	}
	auth_sbuf_wipe(b);
	return rc;
}

static int
auth_scram_parse(struct auth_user *u, char *s, char *why, size_t whysz)
{
	char	*f[4], *end;
	long	 it;
	int	 i;

	for (i = 0; i < 4; i++) {
		f[i] = s;
		s = strchr(s, ',');
		if ((s == NULL) != (i == 3))
			goto syntax;
		if (s != NULL)
			*s++ = '\0';
	}
	if (auth_b64_exact(f[0], strlen(f[0]), u->salt, 0,
	    AUTH_SCRAM_SALT_MAX, &u->saltlen) != 0) {
		bsnprintf(why, whysz, "{SCRAM-SHA-256}: bad salt (want "
		    "base64 of 1..%d octets)", AUTH_SCRAM_SALT_MAX);
		return -1;
	}
	errno = 0;
	it = strtol(f[1], &end, 10);
	if (f[1][0] < '0' || f[1][0] > '9' || *end != '\0' || errno != 0 ||
	    it < AUTH_SCRAM_ITER || it > AUTH_SCRAM_ITER_MAX) {
		bsnprintf(why, whysz, "{SCRAM-SHA-256}: bad iteration count "
		    "\"%.20s\" (want %d..%d)", f[1], AUTH_SCRAM_ITER,
		    AUTH_SCRAM_ITER_MAX);
		return -1;
	}
	u->iter = (int)it;
	if (auth_b64_exact(f[2], strlen(f[2]), u->stored_key, AUTH_KEY_LEN, 0,
	    NULL) != 0 || auth_b64_exact(f[3], strlen(f[3]), u->server_key,
	    AUTH_KEY_LEN, 0, NULL) != 0) {
		bsnprintf(why, whysz, "{SCRAM-SHA-256}: StoredKey and "
		    "ServerKey must be base64 of %d octets", AUTH_KEY_LEN);
		return -1;
	}
	u->has_scram = true;
	return 0;
syntax:
	bsnprintf(why, whysz, "{SCRAM-SHA-256}: want "
	    "base64(salt),iterations,base64(StoredKey),base64(ServerKey)");
	return -1;
}

/* ------------------------------------------------------------------ */
/* users_file. */

static void
auth_user_free(struct auth_user *u)
{
	if (u == NULL)
		return;
	free(u->name);
	auth_wipe_str(u->crypt);
	conf_list_free(&u->domains);
	auth_wipe_free(u, sizeof(*u));
}

/*
 * auth_crypt_complete - for the methods whose hash length is fixed, is the
 * hash all there? A cut-off line would otherwise load and never match.
 */
static bool
auth_crypt_complete(const char *h)
{
	const char	*last = strrchr(h, '$');
	size_t		 want = 0;

	if (strncmp(h, "$6$", 3) == 0)
		want = 86;
	else if (strncmp(h, "$5$", 3) == 0 || strncmp(h, "$y$", 3) == 0 ||
	    strncmp(h, "$gy$", 4) == 0)
		want = 43;
	else if (strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2a$", 4) == 0 ||
	    strncmp(h, "$2y$", 4) == 0)
		return strlen(h) == 60;
	return want == 0 || strlen(last + 1) == want;
}

static int
auth_parse_crypt(struct auth_user *u, const char *h, char *why, size_t whysz)
{
	const char	*p;
	int		 rc;

	for (p = h; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			break;
	if (*p != '\0' || *h == '\0') {
		bsnprintf(why, whysz, "bad crypt hash");
		return -1;
	}
	rc = crypt_checksalt(h);
	if (rc == CRYPT_SALT_INVALID || rc == CRYPT_SALT_METHOD_DISABLED) {
		bsnprintf(why, whysz, "crypt hash \"%.8s...\": %s", h,
		    rc == CRYPT_SALT_INVALID ? "not a hash libcrypt knows" :
		    "method disabled");
		return -1;
	}
	if (!auth_crypt_complete(h)) {
		bsnprintf(why, whysz, "crypt hash \"%.8s...\": cut short", h);
		return -1;
	}
	u->crypt = xstrdup(h);
	return 0;
}

/* auth_parse_secrets - the ';' list; s is modified. */
static int
auth_parse_secrets(struct auth_user *u, char *s, char *why, size_t whysz)
{
	char	*item, *next, *val, *close;

	if (*s == '\0') {
		bsnprintf(why, whysz, "no secrets");
		return -1;
	}
	for (item = s; item != NULL; item = next) {
		if ((next = strchr(item, ';')) != NULL)
			*next++ = '\0';
		if (*item == '\0') {
			bsnprintf(why, whysz, "empty secret");
			return -1;
		}
		if (*item != '{') {
			val = item;		/* a bare crypt(3) hash */
			goto crypt;
		}
		if ((close = strchr(item, '}')) == NULL) {
			bsnprintf(why, whysz, "secret \"%.20s\": no '}'", item);
			return -1;
		}
		*close = '\0';
		val = close + 1;
		if (strcasecmp(item + 1, "CRYPT") == 0) {
crypt:
			if (u->crypt != NULL) {
				bsnprintf(why, whysz, "more than one {CRYPT}");
				return -1;
			}
			if (auth_parse_crypt(u, val, why, whysz) != 0)
				return -1;
		} else if (strcasecmp(item + 1, "CRAM-MD5") == 0) {
			if (u->has_cram) {
				bsnprintf(why, whysz, "more than one "
				    "{CRAM-MD5}");
				return -1;
			}
			if (auth_cram_parse(val, u->cram) != 0) {
				bsnprintf(why, whysz, "{CRAM-MD5}: want 64 "
				    "hex digits");
				return -1;
			}
			u->has_cram = true;
		} else if (strcasecmp(item + 1, "SCRAM-SHA-256") == 0) {
			if (u->has_scram) {
				bsnprintf(why, whysz, "more than one "
				    "{SCRAM-SHA-256}");
				return -1;
			}
			if (auth_scram_parse(u, val, why, whysz) != 0)
				return -1;
		} else {
			bsnprintf(why, whysz, "unknown scheme {%.20s} (want "
			    "CRYPT, CRAM-MD5 or SCRAM-SHA-256)", item + 1);
			return -1;
		}
	}
	return 0;
}

static int
auth_parse_domains(struct auth_user *u, const char *s, char *why,
    size_t whysz)
{
	static const char	 sep[] = ", \t";
	char			*d, a[SMTP_DOMAIN_MAX + 2];
	const char		*reason;
	size_t			 n;

	for (;;) {
		s += strspn(s, sep);
		if (*s == '\0')
			return 0;
		n = strcspn(s, sep);
		d = xstrndup(s, n);
		/* Stored as A-labels (smtp_idn.c): auth_user_owns() is
		 * asked with either form. */
		if (smtp_idn_domain(d, a, sizeof(a), &reason) != 0) {
			bsnprintf(why, whysz, "bad domain \"%.80s\"%s%s", d,
			    smtp_idn_has8(d) ? ": not a valid international "
			    "domain name: " : "", smtp_idn_has8(d) ? reason :
			    "");
			free(d);
			return -1;
		}
		free(d);
		d = xstrdup(a);
		u->domains.v = xreallocarray(u->domains.v, u->domains.n + 1,
		    sizeof(*u->domains.v));
		u->domains.v[u->domains.n++] = d;
		s += n;
	}
}

/*
 * auth_parse_line - one line with text (linefile.c has taken the comment
 * and the white space around it off; modified in place) into *out. The
 * SECRETS field is appended to `all` (for the fake-salt key). 0, or -1
 * with the reason in why.
 */
static int
auth_parse_line(char *line, int lineno, struct sbuf *all,
    struct auth_user **out, char *why, size_t whysz)
{
	struct auth_user	*u;
	char			*c1, *c2;

	*out = NULL;
	if ((c1 = strchr(line, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL ||
	    strchr(c2 + 1, ':') != NULL) {
		bsnprintf(why, whysz, "want USER:SECRETS:DOMAINS");
		return -1;
	}
	*c1 = *c2 = '\0';
	if (!auth_user_name_ok(line, strlen(line))) {
		bsnprintf(why, whysz, "bad user name \"%.80s\" (1..%d "
		    "printable characters, no space or ':')", line,
		    AUTH_USER_MAX);
		return -1;
	}
	u = xcalloc(1, sizeof(*u));
	u->name = xstrdup(line);
	u->line = lineno;
	sbuf_cat(all, c1 + 1);
	sbuf_catc(all, '\n');
	if (auth_parse_secrets(u, c1 + 1, why, whysz) != 0 ||
	    auth_parse_domains(u, c2 + 1, why, whysz) != 0) {
		auth_user_free(u);
		return -1;
	}
	*out = u;
	return 0;
}

static int
auth_user_cmp(const void *a, const void *b)
{
	const struct auth_user	*x = *(struct auth_user *const *)a;
	const struct auth_user	*y = *(struct auth_user *const *)b;
	int			 c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

/* What auth_load_line fills. */
struct auth_read {
	struct auth_db	*db;
	struct sbuf	*all;
};

/* auth_load_line - a linefile_fn: one user into the db. */
static int
auth_load_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct auth_read	*r = arg;
	struct auth_user	*u;

	(void)len;
	if (auth_parse_line(line, lineno, r->all, &u, why, whysz) != 0)
		return -1;
	r->db->v = xreallocarray(r->db->v, r->db->n + 1, sizeof(*r->db->v));
	r->db->v[r->db->n++] = u;
	return 0;
}

struct auth_db *
auth_db_load(const char *file, char *err, size_t errsz)
{
	struct auth_read	 r;
	struct auth_db		*db;
	size_t			 i;

	db = xcalloc(1, sizeof(*db));
	db->refs = 1;
	r.db = db;
	r.all = sbuf_new();
	sbuf_cat(r.all, "postern SCRAM fake salt\n");
	if (linefile_read(file, auth_load_line, &r, err, errsz) == -1)
		goto fail;
	if (db->n > 0)
		qsort(db->v, db->n, sizeof(*db->v), auth_user_cmp);
	for (i = 1; i < db->n; i++) {
		if (strcmp(db->v[i - 1]->name, db->v[i]->name) == 0) {
			bsnprintf(err, errsz, "%s:%d: duplicate user \"%s\" "
			    "(first on line %d)", file, db->v[i]->line,
			    db->v[i]->name, db->v[i - 1]->line);
			goto fail;
		}
	}
	SHA256((const unsigned char *)sbuf_str(r.all), sbuf_len(r.all),
	    db->fake_key);
	auth_sbuf_wipe(r.all);
	return db;
fail:
	auth_sbuf_wipe(r.all);
	auth_db_free(db);
	return NULL;
}

void
auth_db_free(struct auth_db *db)
{
	size_t	i;

	if (db == NULL)
		return;
	if (db->refs == 0)
		log_panic("%s: db freed twice", __func__);
	if (--db->refs > 0)
		return;		/* an exchange still uses it */
	for (i = 0; i < db->n; i++)
		auth_user_free(db->v[i]);
	free(db->v);
	auth_wipe_free(db, sizeof(*db));
}

const struct auth_user *
auth_db_find(const struct auth_db *db, const char *name)
{
	size_t	lo = 0, hi, mid;
	int	c;

	if (db == NULL || name == NULL)
		return NULL;
	hi = db->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, db->v[mid]->name)) == 0)
			return db->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
auth_user_name(const struct auth_user *u)
{
	return u->name;
}

const struct conf_list *
auth_user_domains(const struct auth_user *u)
{
	return &u->domains;
}

bool
auth_user_owns(const struct auth_user *u, const char *domain)
{
	return u != NULL && conf_domain_in(&u->domains, domain);
}

bool
auth_user_has(const struct auth_user *u, enum auth_mech mech)
{
	if (u == NULL)
		return false;
	switch (mech) {
	case AUTH_MECH_PLAIN:
	case AUTH_MECH_LOGIN:
		return u->crypt != NULL;
	case AUTH_MECH_CRAM_MD5:
		return u->has_cram;
	case AUTH_MECH_SCRAM_SHA256:
		return u->has_scram;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Mechanism names. */

static const char *const auth_mech_names[] = {
	[AUTH_MECH_PLAIN] = "PLAIN",
	[AUTH_MECH_LOGIN] = "LOGIN",
	[AUTH_MECH_CRAM_MD5] = "CRAM-MD5",
	[AUTH_MECH_SCRAM_SHA256] = "SCRAM-SHA-256",
};

int
auth_mech_parse(const char *s)
{
	size_t	i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(auth_mech_names) / sizeof(auth_mech_names[0]);
	    i++)
		if (strcasecmp(s, auth_mech_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
auth_mech_name(enum auth_mech m)
{
	if ((size_t)m >= sizeof(auth_mech_names) / sizeof(auth_mech_names[0]))
		return "?";
	return auth_mech_names[m];
}

/* ------------------------------------------------------------------ */
/* The SASL exchange. */

void
auth_sasl_test_nonce(const char *s)
{
	auth_test_nonce_set = s != NULL;
	if (s != NULL && !strl_copy(auth_test_nonce, s,
	    sizeof(auth_test_nonce)))
		log_panic("%s: nonce too long", __func__);
}

struct auth_sasl *
auth_sasl_new(struct auth_db *db, enum auth_mech mech, const char *hostname)
{
	struct auth_sasl	*a;
	unsigned char		 r[8];
	uint64_t		 v = 0;
	struct timespec		 ts;
	size_t			 i;

	a = xcalloc(1, sizeof(*a));
	a->db = db;
	if (db != NULL)
		db->refs++;
	a->mech = mech;
	a->state = AUTH_S_START;
	if (auth_test_nonce_set) {
		a->test_nonce = xstrdup(auth_test_nonce);
		auth_test_nonce_set = false;
	}
	if (mech == AUTH_MECH_CRAM_MD5) {
		a->cram_chal = sbuf_new();
		if (a->test_nonce != NULL) {
			sbuf_cat(a->cram_chal, a->test_nonce);
		} else {
			/* RFC 2195 §2: msg-id syntax, unique per attempt. */
			auth_random(r, sizeof(r));
			for (i = 0; i < sizeof(r); i++)
				v = v << 8 | r[i];
			clock_gettime(CLOCK_REALTIME, &ts);
			sbuf_catf(a->cram_chal, "<%llu.%lld@%s>",
			    (unsigned long long)v, (long long)ts.tv_sec,
			    hostname != NULL && *hostname != '\0' ?
			    hostname : "localhost");
		}
	}
	return a;
}

void
auth_sasl_free(struct auth_sasl *a)
{
	if (a == NULL)
		return;
	auth_wipe_str(a->user);
	free(a->test_nonce);
	sbuf_free(a->cram_chal);
	auth_sbuf_wipe(a->authmsg);
	auth_sbuf_wipe(a->nonce);
	sbuf_free(a->cbind);
	auth_db_free(a->db);
	auth_wipe_free(a, sizeof(*a));
}

const char *
auth_sasl_user(const struct auth_sasl *a)
{
	return a->user != NULL ? a->user : "";
}

static void
auth_set_user(struct auth_sasl *a, const char *s, size_t len)
{
	auth_wipe_str(a->user);
	a->user = xstrndup(s, len);
	a->u = auth_db_find(a->db, a->user);
}

/* auth_check_password - crypt(3) the password against the user's hash,
 * or against a dummy setting for an unknown user (same cost, no leak). */
static int
auth_check_password(struct auth_sasl *a, const char *pw, size_t len)
{
	struct crypt_data	*cd;
	const char		*hash, *res;
	char			*copy;
	bool			 ok;

	if (len == 0 || len > AUTH_PASS_MAX)
		return AUTH_FAIL;
	hash = a->u != NULL && a->u->crypt != NULL ? a->u->crypt :
	    auth_dummy_crypt;
	copy = xstrndup(pw, len);
	cd = xcalloc(1, sizeof(*cd));
	res = crypt_r(copy, hash, cd);
	ok = res != NULL && res[0] != '*' && strlen(res) == strlen(hash) &&
	    CRYPTO_memcmp(res, hash, strlen(hash)) == 0 &&
	    hash != auth_dummy_crypt && !a->doomed;
	auth_wipe_free(copy, len);
	auth_wipe_free(cd, sizeof(*cd));
	return ok ? AUTH_OK : AUTH_FAIL;
}

/* PLAIN (RFC 4616 §2): [authzid] NUL authcid NUL passwd. */
static int
auth_step_plain(struct auth_sasl *a, const char *in, size_t len,
    bool have_in)
{
	const char	*n1, *n2, *cid, *pw;
	size_t		 zlen, clen, plen;

	if (a->state == AUTH_S_START && !have_in) {
		a->state = AUTH_S_PLAIN;	/* empty challenge */
		return AUTH_CONTINUE;
	}
	if ((n1 = memchr(in, '\0', len)) == NULL)
		return AUTH_BADPROTO;
	zlen = (size_t)(n1 - in);
	cid = n1 + 1;
	if ((n2 = memchr(cid, '\0', len - zlen - 1)) == NULL)
		return AUTH_BADPROTO;
	clen = (size_t)(n2 - cid);
	pw = n2 + 1;
	plen = len - zlen - clen - 2;
	if (clen == 0 || plen == 0 || memchr(pw, '\0', plen) != NULL)
		return AUTH_BADPROTO;
	auth_set_user(a, cid, clen);
	/* We authorise nobody to act as somebody else. */
	if (zlen > 0 && (zlen != clen || memcmp(in, cid, clen) != 0))
		return AUTH_FAIL;
	return auth_check_password(a, pw, plen);
}

/* LOGIN: "Username:", "Password:"; an initial response is the name. */
static int
auth_step_login(struct auth_sasl *a, const char *in, size_t len,
    bool have_in, struct sbuf *ch)
{
	switch (a->state) {
	case AUTH_S_START:
		if (!have_in) {
			sbuf_cat(ch, "Username:");
			a->state = AUTH_S_LOGIN_USER;
			return AUTH_CONTINUE;
		}
		/* FALLTHROUGH */
	case AUTH_S_LOGIN_USER:
		if (memchr(in, '\0', len) != NULL)
			return AUTH_BADPROTO;
		auth_set_user(a, in, len);
		sbuf_cat(ch, "Password:");
		a->state = AUTH_S_LOGIN_PASS;
		return AUTH_CONTINUE;
	case AUTH_S_LOGIN_PASS:
		if (memchr(in, '\0', len) != NULL)
			return AUTH_BADPROTO;
		return auth_check_password(a, in, len);
	default:
		return AUTH_BADPROTO;
	}
}

/* CRAM-MD5 (RFC 2195 §2): challenge, then "user SP 32 lowercase hex". */
static int
auth_step_cram(struct auth_sasl *a, const char *in, size_t len,
    bool have_in, struct sbuf *ch)
{
	unsigned char	 want[MD5_DIGEST_LENGTH], got[MD5_DIGEST_LENGTH];
	const uint32_t	*st;
	const char	*hex;
	size_t		 i;
	int		 hi, lo;
	bool		 ok;

	if (a->state == AUTH_S_START) {
		if (have_in)
			return AUTH_BADPROTO;	/* server speaks first */
		sbuf_catn(ch, sbuf_str(a->cram_chal), sbuf_len(a->cram_chal));
		a->state = AUTH_S_CRAM;
		return AUTH_CONTINUE;
	}
	if (len < 34 || memchr(in, '\0', len) != NULL || in[len - 33] != ' ')
		return AUTH_BADPROTO;
	hex = in + len - 32;
	for (i = 0; i < sizeof(got); i++) {
		hi = auth_hexval(hex[2 * i], false);
		lo = auth_hexval(hex[2 * i + 1], false);
		if (hi < 0 || lo < 0)
			return AUTH_BADPROTO;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	auth_set_user(a, in, len - 33);
	st = a->u != NULL && a->u->has_cram ? a->u->cram : auth_dummy_cram;
	auth_cram_mac(st, sbuf_str(a->cram_chal), sbuf_len(a->cram_chal),
	    want);
	ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0 &&
	    st != auth_dummy_cram;
	explicit_bzero(want, sizeof(want));
	return ok ? AUTH_OK : AUTH_FAIL;
}

/*
 * auth_scram_name - decode a saslname (RFC 5802 §5.1: "=2C" is ',',
 * "=3D" is '='; any other '=' is an error) from s up to ',' or the end.
 * Returns the decoded name (malloc'd) and sets *end, or NULL.
 */
static char *
auth_scram_name(const char *s, const char **end)
{
	struct sbuf	*b = sbuf_new();
	char		*r;

	for (; *s != '\0' && *s != ','; s++) {
		if (*s != '=') {
			sbuf_catc(b, *s);
		} else if (s[1] == '2' && s[2] == 'C') {
			sbuf_catc(b, ',');
			s += 2;
		} else if (s[1] == '3' && s[2] == 'D') {
			sbuf_catc(b, '=');
			s += 2;
		} else {
			sbuf_free(b);
			return NULL;
		}
	}
	*end = s;
	r = xstrndup(sbuf_str(b), sbuf_len(b));
	sbuf_free(b);
	return r;
}

/* auth_scram_salt - the user's salt and iterations, or a fake pair for a
 * name we cannot authenticate with SCRAM (see the top of the file). */
static void
auth_scram_salt(struct auth_sasl *a, struct sbuf *out)
{
	unsigned char	fake[AUTH_KEY_LEN];
	unsigned char	zero[AUTH_KEY_LEN];

	sbuf_cat(out, ",s=");
	if (a->u != NULL && a->u->has_scram) {
		smtp_b64_encode(a->u->salt, a->u->saltlen, out);
		sbuf_catf(out, ",i=%d", a->u->iter);
		return;
	}
	memset(zero, 0, sizeof(zero));
	if (!auth_hmac256(a->db != NULL ? a->db->fake_key : zero,
	    AUTH_KEY_LEN, a->user, strlen(a->user), fake))
		log_panic("%s: HMAC failed", __func__);
	smtp_b64_encode(fake, AUTH_SCRAM_SALT, out);
	sbuf_catf(out, ",i=%d", AUTH_SCRAM_ITER);
}

/* SCRAM client-first: gs2-header client-first-message-bare. */
static int
auth_scram_first(struct auth_sasl *a, const char *in, size_t len,
    struct sbuf *ch)
{
	unsigned char	 r[AUTH_NONCE_BYTES];
	char		*s, *authz = NULL, *name = NULL;
	const char	*p, *bare, *cn;
	size_t		 cnlen;
	int		 rc = AUTH_BADPROTO;

	if (len == 0 || memchr(in, '\0', len) != NULL)
		return AUTH_BADPROTO;
	s = xstrndup(in, len);
	/* gs2-cbind-flag: we offer no -PLUS mechanism, so "p=" is wrong. */
	if ((s[0] != 'n' && s[0] != 'y') || s[1] != ',')
		goto out;
	p = s + 2;
	if (p[0] == 'a' && p[1] == '=') {
		if ((authz = auth_scram_name(p + 2, &p)) == NULL)
			goto out;
	}
	if (*p != ',')
		goto out;
	bare = ++p;
	/* "m=" is reserved for mandatory extensions we don't know. */
	if (p[0] != 'n' || p[1] != '=' ||
	    (name = auth_scram_name(p + 2, &p)) == NULL || *name == '\0')
		goto out;
	if (p[0] != ',' || p[1] != 'r' || p[2] != '=')
		goto out;
	cn = p + 3;
	for (cnlen = 0; cn[cnlen] != '\0' && cn[cnlen] != ','; cnlen++)
		if ((unsigned char)cn[cnlen] < 0x21 ||
		    (unsigned char)cn[cnlen] > 0x7e)
			goto out;
	if (cnlen == 0)
		goto out;
	/* Anything after is an extension, ignored (RFC 5802 §5.1). */

	auth_set_user(a, name, strlen(name));
	if (authz != NULL && strcmp(authz, name) != 0)
		a->doomed = true;
	a->cbind = sbuf_new();
	smtp_b64_encode(s, (size_t)(bare - s), a->cbind);
	a->nonce = sbuf_new();
	sbuf_catn(a->nonce, cn, cnlen);
	if (a->test_nonce != NULL) {
		sbuf_cat(a->nonce, a->test_nonce);
	} else {
		auth_random(r, sizeof(r));
		smtp_b64_encode(r, sizeof(r), a->nonce);
	}
	sbuf_cat(ch, "r=");
	sbuf_catn(ch, sbuf_str(a->nonce), sbuf_len(a->nonce));
	auth_scram_salt(a, ch);
	a->authmsg = sbuf_new();
	sbuf_cat(a->authmsg, bare);
	sbuf_catc(a->authmsg, ',');
	sbuf_catn(a->authmsg, sbuf_str(ch), sbuf_len(ch));
	a->state = AUTH_S_SCRAM_FINAL;
	rc = AUTH_CONTINUE;
out:
	free(authz);
	free(name);
	free(s);
	return rc;
}

/* SCRAM client-final: c=... ,r=... [,ext...] ,p=proof. */
static int
auth_scram_final(struct auth_sasl *a, const char *in, size_t len,
    struct sbuf *ch)
{
	unsigned char	 proof[AUTH_KEY_LEN], sig[AUTH_KEY_LEN];
	unsigned char	 key[AUTH_KEY_LEN], h[AUTH_KEY_LEN];
	unsigned char	 zero[AUTH_KEY_LEN];
	const unsigned char *stored, *server;
	char		*s;
	const char	*p, *v, *pstart = NULL, *pval = NULL;
	size_t		 vlen, i;
	int		 rc = AUTH_BADPROTO;
	bool		 ok;

	if (memchr(in, '\0', len) != NULL)
		return AUTH_BADPROTO;
	s = xstrndup(in, len);
	p = s;
	for (i = 0; *p != '\0'; i++) {
		if (i > 0 && *p++ != ',')
			goto out;
		if (p[0] < 'a' || p[0] > 'z' || p[1] != '=')
			goto out;
		if (pval != NULL)
			goto out;		/* p= must come last */
		v = p + 2;
		vlen = strcspn(v, ",");
		if (i == 0 && (p[0] != 'c' || vlen != sbuf_len(a->cbind) ||
		    memcmp(v, sbuf_str(a->cbind), vlen) != 0))
			goto out;
		if (i == 1 && p[0] != 'r')
			goto out;
		if (i == 1 && (vlen != sbuf_len(a->nonce) ||
		    memcmp(v, sbuf_str(a->nonce), vlen) != 0)) {
			rc = AUTH_FAIL;		/* not our exchange */
			goto out;
		}
		if (i >= 2 && p[0] == 'p') {
			pstart = p - 1;
			pval = v;
		}
		p = v + vlen;
	}
	if (pval == NULL || auth_b64_exact(pval, strlen(pval), proof,
	    AUTH_KEY_LEN, 0, NULL) != 0)
		goto out;

	/* AuthMessage = client-first-bare "," server-first "," c-f-w-p */
	sbuf_catc(a->authmsg, ',');
	sbuf_catn(a->authmsg, s, (size_t)(pstart - s));
	memset(zero, 0, sizeof(zero));
	if (a->u != NULL && a->u->has_scram) {
		stored = a->u->stored_key;
		server = a->u->server_key;
	} else {
		stored = server = zero;
	}
	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage). */
	if (!auth_hmac256(stored, AUTH_KEY_LEN, sbuf_str(a->authmsg),
	    sbuf_len(a->authmsg), sig))
		log_panic("%s: HMAC failed", __func__);
	for (i = 0; i < sizeof(key); i++)
		key[i] = proof[i] ^ sig[i];
	SHA256(key, sizeof(key), h);
	ok = CRYPTO_memcmp(h, stored, AUTH_KEY_LEN) == 0 && stored != zero &&
	    !a->doomed;
	explicit_bzero(key, sizeof(key));
	explicit_bzero(h, sizeof(h));
	if (!ok) {
		rc = AUTH_FAIL;
		goto out;
	}
	if (!auth_hmac256(server, AUTH_KEY_LEN, sbuf_str(a->authmsg),
	    sbuf_len(a->authmsg), sig))
		log_panic("%s: HMAC failed", __func__);
	sbuf_cat(ch, "v=");
	smtp_b64_encode(sig, sizeof(sig), ch);
	a->state = AUTH_S_SCRAM_ACK;
	rc = AUTH_CONTINUE;
out:
	auth_wipe_free(s, len);
	return rc;
}

static int
auth_step_scram(struct auth_sasl *a, const char *in, size_t len,
    bool have_in, struct sbuf *ch)
{
	switch (a->state) {
	case AUTH_S_START:
		if (!have_in) {
			a->state = AUTH_S_SCRAM_FIRST;	/* empty challenge */
			return AUTH_CONTINUE;
		}
		/* FALLTHROUGH */
	case AUTH_S_SCRAM_FIRST:
		return auth_scram_first(a, in, len, ch);
	case AUTH_S_SCRAM_FINAL:
		return auth_scram_final(a, in, len, ch);
	case AUTH_S_SCRAM_ACK:
		/* RFC 4954 §4: the server's last data came as a challenge;
		 * the client answers it with an empty response. */
		return len == 0 ? AUTH_OK : AUTH_BADPROTO;
	default:
		return AUTH_BADPROTO;
	}
}

int
auth_sasl_step(struct auth_sasl *a, const void *in, size_t inlen,
    bool have_in, struct sbuf *challenge)
{
	const char	*s = in;
	int		 rc;

	sbuf_reset(challenge);
	if (a->state == AUTH_S_DONE)
		return AUTH_BADPROTO;
	/* After the first step there is always a response, maybe empty. */
	if (a->state != AUTH_S_START)
		have_in = true;
	if (s == NULL) {
		s = "";
		inlen = 0;
	}
	if (!have_in)
		inlen = 0;
	switch (a->mech) {
	case AUTH_MECH_PLAIN:
		rc = auth_step_plain(a, s, inlen, have_in);
		break;
	case AUTH_MECH_LOGIN:
		rc = auth_step_login(a, s, inlen, have_in, challenge);
		break;
	case AUTH_MECH_CRAM_MD5:
		rc = auth_step_cram(a, s, inlen, have_in, challenge);
		break;
	case AUTH_MECH_SCRAM_SHA256:
		rc = auth_step_scram(a, s, inlen, have_in, challenge);
		break;
	default:
		rc = AUTH_BADPROTO;
		break;
	}
	if (rc != AUTH_CONTINUE) {
		a->state = AUTH_S_DONE;
		sbuf_reset(challenge);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Password guessing: failures per client address (see smtp.h). */

#define AUTH_THROTTLE_KEY	(INET6_ADDRSTRLEN + 4)	/* "...::/64" */

struct auth_throttle_ent {
	char				 key[AUTH_THROTTLE_KEY];
	uint64_t			 start;	/* first failure counted */
	int				 count;	/* failures since start */
	struct auth_throttle_ent	*hnext;	/* hash chain */
	struct auth_throttle_ent	*older, *newer;	/* LRU list */
};

struct auth_throttle {
	struct auth_throttle_ent	 *ents;	/* max of them, n in use */
	size_t				  n, max;
	struct auth_throttle_ent	**hash;
	size_t				  nhash;	/* a power of two */
	uint64_t			  seed;	/* against chosen collisions */
	struct auth_throttle_ent	 *newest, *oldest;
};

struct auth_throttle *
auth_throttle_new(size_t max)
{
	struct auth_throttle	*t = xcalloc(1, sizeof(*t));

	t->max = max;
	t->ents = xcalloc(max > 0 ? max : 1, sizeof(*t->ents));
	for (t->nhash = 16; t->nhash < max; t->nhash *= 2)
		;
	t->hash = xcalloc(t->nhash, sizeof(*t->hash));
	auth_random(&t->seed, sizeof(t->seed));
	return t;
}

void
auth_throttle_free(struct auth_throttle *t)
{
	if (t == NULL)
		return;
	free(t->ents);
	free(t->hash);
	free(t);
}

/* auth_throttle_key - the address as counted: IPv6 by its /64, an
 * IPv4-mapped address as IPv4, anything else as it is. */
static void
auth_throttle_key(const char *addr, char key[AUTH_THROTTLE_KEY])
{
	struct in6_addr	a6;
	char		buf[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, addr, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6) &&
		    inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf)) !=
		    NULL) {
			strl_copy(key, buf, AUTH_THROTTLE_KEY);
			return;
		}
		memset(&a6.s6_addr[8], 0, 8);
		if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) != NULL) {
			(void)bsnprintf(key, AUTH_THROTTLE_KEY, "%s/64", buf);
			return;
		}
	}
	(void)strl_copy(key, addr, AUTH_THROTTLE_KEY);	/* cut is fine */
}

/* auth_throttle_hash - FNV-1a from a random basis. */
static size_t
auth_throttle_hash(const struct auth_throttle *t, const char *key)
{
	uint64_t	h = t->seed ^ 0xcbf29ce484222325ULL;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ h >> 32) & (t->nhash - 1);
}

static struct auth_throttle_ent *
auth_throttle_find(const struct auth_throttle *t, const char *key)
{
	struct auth_throttle_ent	*e;

	for (e = t->hash[auth_throttle_hash(t, key)]; e != NULL; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void
auth_throttle_lru_unlink(struct auth_throttle *t, struct auth_throttle_ent *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	e->older = e->newer = NULL;
}

static void
auth_throttle_lru_push(struct auth_throttle *t, struct auth_throttle_ent *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = e;
	t->newest = e;
	if (t->oldest == NULL)
		t->oldest = e;
}

/* auth_throttle_get - the entry for key, made (evicting the least
 * recently used when the table is full) if there is none; NULL if the
 * table has no room at all (max 0). */
static struct auth_throttle_ent *
auth_throttle_get(struct auth_throttle *t, const char *key)
{
	struct auth_throttle_ent	*e, **pp;
	size_t				 h;

	if ((e = auth_throttle_find(t, key)) != NULL)
		return e;
	if (t->max == 0)
		return NULL;
	if (t->n < t->max) {
		e = &t->ents[t->n++];
	} else {
		e = t->oldest;
		auth_throttle_lru_unlink(t, e);
		for (pp = &t->hash[auth_throttle_hash(t, e->key)]; *pp != e;
		    pp = &(*pp)->hnext)
			;
		*pp = e->hnext;
	}
	memset(e, 0, sizeof(*e));
	strl_copy(e->key, key, sizeof(e->key));
	h = auth_throttle_hash(t, key);
	e->hnext = t->hash[h];
	t->hash[h] = e;
	auth_throttle_lru_push(t, e);
	return e;
}

static uint64_t
auth_throttle_left(const struct auth_throttle_ent *e, int limit,
    uint64_t window_ms, uint64_t now_ms)
{
	if (e == NULL || e->count < limit || now_ms < e->start ||
	    now_ms - e->start >= window_ms)
		return 0;
	return e->start + window_ms - now_ms;
}

uint64_t
auth_throttle_wait(struct auth_throttle *t, const char *addr, int limit,
    uint64_t window_ms, uint64_t now_ms)
{
	char	key[AUTH_THROTTLE_KEY];

	if (t == NULL || limit <= 0)
		return 0;
	auth_throttle_key(addr, key);
	return auth_throttle_left(auth_throttle_find(t, key), limit,
	    window_ms, now_ms);
}

uint64_t
auth_throttle_fail(struct auth_throttle *t, const char *addr, int limit,
    uint64_t window_ms, uint64_t now_ms)
{
	struct auth_throttle_ent	*e;
	char				 key[AUTH_THROTTLE_KEY];

	if (t == NULL || limit <= 0)
		return 0;
	auth_throttle_key(addr, key);
	if ((e = auth_throttle_get(t, key)) == NULL)
		return 0;
	/* A window starts at the first failure after the last one ended. */
	if (e->count == 0 || now_ms < e->start ||
	    now_ms - e->start >= window_ms) {
		e->start = now_ms;
		e->count = 0;
	}
	if (e->count < INT_MAX)
		e->count++;
	auth_throttle_lru_unlink(t, e);
	auth_throttle_lru_push(t, e);
	return auth_throttle_left(e, limit, window_ms, now_ms);
}

/* ------------------------------------------------------------------ */
/* Making a users_file line. */

/* auth_make_crypt - "$6$" + 16 random salt characters, hashed. */
static int
auth_make_crypt(const char *pw, struct sbuf *out)
{
	static const char	 abc[] =
	    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct crypt_data	*cd;
	unsigned char		 r[16];
	char			 setting[3 + sizeof(r) + 1];
	const char		*res;
	size_t			 i;
	int			 rc = -1;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	strl_copy(setting, "$6$", sizeof(setting));
	for (i = 0; i < sizeof(r); i++)
		setting[3 + i] = abc[r[i] & 63];	/* 64: uniform */
	setting[3 + sizeof(r)] = '\0';
	cd = xcalloc(1, sizeof(*cd));
	res = crypt_r(pw, setting, cd);
	if (res != NULL && strncmp(res, "$6$", 3) == 0) {
		sbuf_cat(out, res);
		rc = 0;
	}
	auth_wipe_free(cd, sizeof(*cd));
	return rc;
}

int
auth_make_line(const char *user, const char *password,
    const struct conf_list *domains, struct sbuf *out)
{
	unsigned char	 salt[AUTH_SCRAM_SALT];
	unsigned char	 stored[AUTH_KEY_LEN], server[AUTH_KEY_LEN];
	uint32_t	 st[8];
	struct sbuf	*b;
	size_t		 i, plen;
	int		 rc = -1;
	char		*d;

	if (user == NULL || password == NULL ||
	    !auth_user_name_ok(user, strlen(user)))
		return -1;
	plen = strlen(password);
	if (plen == 0 || plen > AUTH_PASS_MAX)
		return -1;
	for (i = 0; domains != NULL && i < domains->n; i++)
		if (!auth_domain_ok(domains->v[i]))
			return -1;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;

	b = sbuf_new();
	sbuf_cat(b, user);
	sbuf_cat(b, ":{CRYPT}");
	if (auth_make_crypt(password, b) != 0)
		goto out;
	auth_cram_precompute(password, plen, st);
	sbuf_cat(b, ";{CRAM-MD5}");
	auth_cram_format(st, b);
	explicit_bzero(st, sizeof(st));
	if (!auth_scram_keys(password, plen, salt, sizeof(salt),
	    AUTH_SCRAM_ITER, stored, server))
		goto out;
	sbuf_cat(b, ";{SCRAM-SHA-256}");
	smtp_b64_encode(salt, sizeof(salt), b);
	sbuf_catf(b, ",%d,", AUTH_SCRAM_ITER);
	smtp_b64_encode(stored, sizeof(stored), b);
	sbuf_catc(b, ',');
	smtp_b64_encode(server, sizeof(server), b);
	sbuf_catc(b, ':');
	for (i = 0; domains != NULL && i < domains->n; i++) {
		d = strl_lower(xstrdup(domains->v[i]));
		if (i > 0)
			sbuf_catc(b, ',');
		sbuf_cat(b, d);
		free(d);
	}
	sbuf_catn(out, sbuf_str(b), sbuf_len(b));
	rc = 0;
out:
	explicit_bzero(stored, sizeof(stored));
	explicit_bzero(server, sizeof(server));
	auth_sbuf_wipe(b);
	return rc;
}

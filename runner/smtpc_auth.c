/*
 * smtpc_auth.c - AUTH for the ESMTP client (RFC 4954): SCRAM-SHA-256 (RFC
 * 5802, RFC 7677, no channel binding), CRAM-MD5 (RFC 2195), PLAIN (RFC
 * 4616) or LOGIN, the first of these the server offers.
 *
 * Why that order: SCRAM sends no password, and its last step proves that
 * the server holds the password's keys (mutual authentication, so an
 * impostor cannot pass itself off as the provider); CRAM-MD5 sends no
 * password either, but proves nothing about the server; PLAIN and LOGIN
 * hand the password over. Postfix with Cyrus SASL picks the strongest
 * offered mechanism the same way.
 *
 * Where credentials may go. PLAIN and LOGIN only inside TLS (RFC 4954 §4)
 * whose certificate was verified for the hop's name (whatever the TLS
 * policy: smtpc_tls.c checks it when there are credentials to send).
 * The delivery path (a relayhost) keeps that rule for every mechanism:
 * the hop is one we must authenticate to, and AUTH over a link an
 * attacker controls would deliver the mail to the attacker anyway. The
 * site's commands (postern pull, postern etrn) set auth_challenge_ok:
 * SCRAM-SHA-256 and CRAM-MD5 go without TLS there, as RFC 2645 expects
 * of ODMR (fetchmail speaks CRAM-MD5 in the clear).
 *
 * For a relayhost this changes only the mechanism when the server offers
 * SCRAM-SHA-256 or CRAM-MD5 as well as PLAIN: still inside verified TLS,
 * now without handing the password over, and with SCRAM the server must
 * prove it knows it (a failed proof is a failed AUTH, 4.7.0).
 *
 * Every buffer that held a secret is wiped: ours, and the connection's
 * output buffer, which is made big enough beforehand so that a realloc
 * never leaves a copy behind.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "smtpc_int.h"

bool
smtpc_auth_wanted(const struct smtpc_opts *o)
{
	return o->auth_user != NULL && o->auth_user[0] != '\0';
}

/* ------------------------------------------------------------------ */
/* The mechanisms, apart from the connection. */

static struct sbuf *
smtpc_auth_wipe(struct sbuf *b)
{
	if (b != NULL)
		explicit_bzero(b->s, b->cap);
	return sbuf_free(b);
}

int
smtpc_cram_response(const char *user, const char *pass, const void *chal,
    size_t chlen, struct sbuf *out)
{
	unsigned char	mac[EVP_MAX_MD_SIZE];
	unsigned int	len = 0, i;
	size_t		pl = strlen(pass);

	explicit_bzero(out->s, out->cap);
	sbuf_reset(out);
	if (pl > INT_MAX || HMAC(EVP_md5(), pass, (int)pl, chal, chlen, mac,
	    &len) == NULL || len != 16)
		return -1;
	sbuf_cat(out, user);
	sbuf_catc(out, ' ');
	for (i = 0; i < len; i++)
		sbuf_catf(out, "%02x", mac[i]);
	explicit_bzero(mac, sizeof(mac));
	return 0;
}

/* smtpc_scram_name - a saslname (RFC 5802 §5.1): ',' and '=' escaped. */
static void
smtpc_scram_name(struct sbuf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == ',')
			sbuf_cat(out, "=2C");
		else if (*s == '=')
			sbuf_cat(out, "=3D");
		else
			sbuf_catc(out, *s);
	}
}

void
smtpc_scram_first(struct smtpc_scram *st, const char *user,
    const char *nonce, struct sbuf *out)
{
	unsigned char	r[SMTPC_SCRAM_NONCE];
	struct sbuf	*b;

	memset(st, 0, sizeof(*st));
	if (nonce != NULL)
		strl_copy(st->cnonce, nonce, sizeof(st->cnonce));
	else {
		if (RAND_bytes(r, sizeof(r)) != 1)
			log_panic("%s: RAND_bytes failed", __func__);
		b = sbuf_new();
		smtp_b64_encode(r, sizeof(r), b);
		strl_copy(st->cnonce, b->s, sizeof(st->cnonce));
		sbuf_free(b);
	}
	st->authmsg = sbuf_new();
	sbuf_cat(st->authmsg, "n=");
	smtpc_scram_name(st->authmsg, user);
	sbuf_cat(st->authmsg, ",r=");
	sbuf_cat(st->authmsg, st->cnonce);
	sbuf_reset(out);
	sbuf_cat(out, "n,,");
	sbuf_catn(out, st->authmsg->s, st->authmsg->len);
}

static bool
smtpc_hmac256(const void *key, size_t klen, const void *d, size_t dlen,
    unsigned char out[SMTPC_SCRAM_KEY])
{
	unsigned int	len = 0;

	return klen <= INT_MAX && HMAC(EVP_sha256(), key, (int)klen, d, dlen,
	    out, &len) != NULL && len == SMTPC_SCRAM_KEY;
}

/* smtpc_scram_attr - the value of attribute `a` ("r", "s", "i") of a
 * SCRAM message into out (NUL-terminated); false when missing or too
 * long. Attributes are single letters, comma-separated. */
static bool
smtpc_scram_attr(const char *m, char a, char *out, size_t outsz)
{
	const char	*p = m, *e;

	for (;;) {
		e = strchr(p, ',');
		if (p[0] == a && p[1] == '=') {
			size_t	n = (e != NULL ? (size_t)(e - p) :
			    strlen(p)) - 2;

			if (n >= outsz)
				return false;
			memcpy(out, p + 2, n);
			out[n] = '\0';
			return true;
		}
		if (e == NULL)
			return false;
		p = e + 1;
	}
}

int
smtpc_scram_final(struct smtpc_scram *st, const char *pass,
    const char *sfirst, size_t len, struct sbuf *out)
{
	unsigned char	 salted[SMTPC_SCRAM_KEY], ckey[SMTPC_SCRAM_KEY];
	unsigned char	 stored[SMTPC_SCRAM_KEY], sig[SMTPC_SCRAM_KEY];
	char		 nonce[512], salt64[512], iters[16], *m, *ep;
	struct sbuf	*salt = sbuf_new();
	unsigned long	 it;
	size_t		 i, pl = strlen(pass);
	int		 rc = -1;

	m = xstrndup(sfirst, len);
	sbuf_reset(out);
	/* "m=" first is a mandatory extension we do not know (§5.1). */
	if (st->authmsg == NULL || strlen(m) != len ||
	    strncmp(m, "r=", 2) != 0 ||
	    !smtpc_scram_attr(m, 'r', nonce, sizeof(nonce)) ||
	    !smtpc_scram_attr(m, 's', salt64, sizeof(salt64)) ||
	    !smtpc_scram_attr(m, 'i', iters, sizeof(iters)))
		goto out;
	/* The server's nonce extends ours, with printable characters. */
	if (strlen(nonce) <= strlen(st->cnonce) ||
	    strncmp(nonce, st->cnonce, strlen(st->cnonce)) != 0)
		goto out;
	for (i = 0; nonce[i] != '\0'; i++)
		if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',')
			goto out;
	if (smtp_b64_decode(salt64, strlen(salt64), salt) != 0 ||
	    salt->len == 0)
		goto out;
	if (iters[0] < '1' || iters[0] > '9')
		goto out;
	it = strtoul(iters, &ep, 10);
	if (*ep != '\0' || it < SMTPC_SCRAM_ITER_MIN ||
	    it > SMTPC_SCRAM_ITER_MAX || pl > INT_MAX)
		goto out;

	/* client-final-without-proof: "c=biws" is base64("n,,"). */
	sbuf_cat(out, "c=biws,r=");
	sbuf_cat(out, nonce);
	sbuf_catc(st->authmsg, ',');
	sbuf_cat(st->authmsg, m);
	sbuf_catc(st->authmsg, ',');
	sbuf_catn(st->authmsg, out->s, out->len);
	if (PKCS5_PBKDF2_HMAC(pass, (int)pl, (unsigned char *)salt->s,
	    (int)salt->len, (int)it, EVP_sha256(), sizeof(salted),
	    salted) != 1 ||
	    !smtpc_hmac256(salted, sizeof(salted), "Client Key", 10, ckey) ||
	    SHA256(ckey, sizeof(ckey), stored) == NULL ||
	    !smtpc_hmac256(stored, sizeof(stored), st->authmsg->s,
	    st->authmsg->len, sig) ||
	    !smtpc_hmac256(salted, sizeof(salted), "Server Key", 10,
	    st->server_key))
		goto out;
	st->have_key = true;
	/* ClientProof = ClientKey XOR ClientSignature. */
	for (i = 0; i < sizeof(ckey); i++)
		ckey[i] ^= sig[i];
	sbuf_cat(out, ",p=");
	smtp_b64_encode(ckey, sizeof(ckey), out);
	rc = 0;
out:
	if (rc != 0)
		sbuf_reset(out);
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(ckey, sizeof(ckey));
	explicit_bzero(stored, sizeof(stored));
	free(m);
	sbuf_free(salt);
	return rc;
}

int
smtpc_scram_verify(struct smtpc_scram *st, const char *sfinal, size_t len)
{
	unsigned char	 want[SMTPC_SCRAM_KEY];
	struct sbuf	*got = sbuf_new();
	int		 rc = -1;

	if (st->have_key && len > 2 && strncmp(sfinal, "v=", 2) == 0 &&
	    memchr(sfinal, ',', len) == NULL &&
	    smtp_b64_decode(sfinal + 2, len - 2, got) == 0 &&
	    got->len == SMTPC_SCRAM_KEY &&
	    smtpc_hmac256(st->server_key, sizeof(st->server_key),
	    st->authmsg->s, st->authmsg->len, want) &&
	    CRYPTO_memcmp(want, got->s, SMTPC_SCRAM_KEY) == 0)
		rc = 0;
	sbuf_free(got);
	return rc;
}

void
smtpc_scram_free(struct smtpc_scram *st)
{
	st->authmsg = smtpc_auth_wipe(st->authmsg);
	explicit_bzero(st, sizeof(*st));
}

/* ------------------------------------------------------------------ */
/* The exchange on the connection. */

/* smtpc_auth_send - one line of the SASL exchange, then wipe it from the
 * output buffer. With chal, the text of a 334 reply (after "334 ", at
 * most a line, not cleaned) goes there. */
static int
smtpc_auth_send(struct smtpc *sc, struct smtp_reply *r, const char *a,
    const char *b, struct sbuf *chal)
{
	struct sbuf	*out = sc->conn->out;
	int		 rc = -1;

	sbuf_cat(out, a);
	sbuf_cat(out, b);
	sbuf_cat(out, "\r\n");
	if (chal != NULL)
		sbuf_reset(chal);
	if (smtpc_in_step(sc, "AUTH") == 0 &&
	    smtpc_flush(sc, sc->t_cmd, "AUTH") == 0)
		rc = smtpc_read_reply(sc, sc->t_cmd, "AUTH", r, chal);
	explicit_bzero(out->s, out->cap);
	/* One line: the last '\n' smtp_reply_feed appends goes. */
	if (chal != NULL && chal->len > 0 && chal->s[chal->len - 1] == '\n')
		chal->s[--chal->len] = '\0';
	return rc;
}

/* smtpc_auth_reserve - room for n bytes in an empty b, so that a secret put
 * there later is never left behind by a realloc. */
static void
smtpc_auth_reserve(struct sbuf *b, size_t n)
{
	if (b->len == 0 && b->cap <= n) {
		sbuf_catf(b, "%*s", (int)n, "");
		sbuf_reset(b);
	}
}

/* smtpc_auth_b64 - base64 of s into b (reset first). */
static void
smtpc_auth_b64(struct sbuf *b, const void *s, size_t n)
{
	if (b->len > 0)
		explicit_bzero(b->s, b->len);
	sbuf_reset(b);
	smtp_b64_encode(s, n, b);
}

/* smtpc_auth_decode - a 334 challenge's base64 into raw; -1 if bad. */
static int
smtpc_auth_decode(struct sbuf *chal, struct sbuf *raw)
{
	sbuf_reset(raw);
	return smtp_b64_decode(chal->s, chal->len, raw);
}

/* What one mechanism's exchange ended in. */
enum smtpc_auth_end {
	SMTPC_AUTH_REPLY,	/* r holds the server's final reply */
	SMTPC_AUTH_DEAD,	/* the connection died (sc->err) */
	SMTPC_AUTH_PROTO,	/* the server broke the exchange: why */
};

static enum smtpc_auth_end
smtpc_auth_plain(struct smtpc *sc, const struct smtpc_opts *o,
    const char *pass, struct smtp_reply *r, struct sbuf *b,
    struct sbuf *raw)
{
	size_t	ul = strlen(o->auth_user), pl = strlen(pass);

	if (sc->ext & SMTPC_X_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, o->auth_user, ul);
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, pass, pl);
		smtpc_auth_b64(b, raw->s, raw->len);
		if (b->len + 13 <= SMTPC_CMD_MAX) {
			if (smtpc_auth_send(sc, r, "AUTH PLAIN ", b->s,
			    NULL) != 0)
				return SMTPC_AUTH_DEAD;
		} else {
			/* Too long for one command line: after the 334. */
			if (smtpc_auth_send(sc, r, "AUTH PLAIN", "", NULL) != 0)
				return SMTPC_AUTH_DEAD;
			if (r->code == 334 &&
			    smtpc_auth_send(sc, r, b->s, "", NULL) != 0)
				return SMTPC_AUTH_DEAD;
		}
	} else {
		if (smtpc_auth_send(sc, r, "AUTH LOGIN", "", NULL) != 0)
			return SMTPC_AUTH_DEAD;
		if (r->code == 334) {
			smtpc_auth_b64(b, o->auth_user, ul);
			if (smtpc_auth_send(sc, r, b->s, "", NULL) != 0)
				return SMTPC_AUTH_DEAD;
		}
		if (r->code == 334) {
			smtpc_auth_b64(b, pass, pl);
			if (smtpc_auth_send(sc, r, b->s, "", NULL) != 0)
				return SMTPC_AUTH_DEAD;
		}
	}
	return SMTPC_AUTH_REPLY;
}

static enum smtpc_auth_end
smtpc_auth_cram(struct smtpc *sc, const struct smtpc_opts *o,
    const char *pass, struct smtp_reply *r, struct sbuf *b,
    struct sbuf *raw, const char **why)
{
	struct sbuf	*chal = sbuf_new();
	enum smtpc_auth_end rc = SMTPC_AUTH_DEAD;

	if (smtpc_auth_send(sc, r, "AUTH CRAM-MD5", "", chal) != 0)
		goto out;
	rc = SMTPC_AUTH_REPLY;
	if (r->code != 334)
		goto out;
	rc = SMTPC_AUTH_PROTO;
	*why = "bad CRAM-MD5 challenge";
	if (smtpc_auth_decode(chal, b) != 0 || b->len == 0 ||
	    smtpc_cram_response(o->auth_user, pass, b->s, b->len, raw) != 0)
		goto out;
	smtpc_auth_b64(b, raw->s, raw->len);
	rc = smtpc_auth_send(sc, r, b->s, "", NULL) != 0 ? SMTPC_AUTH_DEAD :
	    SMTPC_AUTH_REPLY;
out:
	sbuf_free(chal);
	return rc;
}

static enum smtpc_auth_end
smtpc_auth_scram(struct smtpc *sc, const struct smtpc_opts *o,
    const char *pass, struct smtp_reply *r, struct sbuf *b,
    struct sbuf *raw, const char **why)
{
	struct smtpc_scram	 st;
	struct sbuf		*chal = sbuf_new();
	enum smtpc_auth_end	 rc = SMTPC_AUTH_DEAD;

	smtpc_scram_first(&st, o->auth_user, NULL, raw);
	smtpc_auth_b64(b, raw->s, raw->len);
	if (b->len + 23 <= SMTPC_CMD_MAX) {
		if (smtpc_auth_send(sc, r, "AUTH SCRAM-SHA-256 ", b->s,
		    chal) != 0)
			goto out;
	} else {
		/* RFC 4954 §4: without an initial response the server
		 * asks with an empty challenge. */
		if (smtpc_auth_send(sc, r, "AUTH SCRAM-SHA-256", "",
		    chal) != 0)
			goto out;
		if (r->code == 334 &&
		    smtpc_auth_send(sc, r, b->s, "", chal) != 0)
			goto out;
	}
	rc = SMTPC_AUTH_REPLY;
	if (r->code != 334)
		goto out;
	rc = SMTPC_AUTH_PROTO;
	*why = "bad SCRAM-SHA-256 server-first message";
	if (smtpc_auth_decode(chal, raw) != 0 ||
	    smtpc_scram_final(&st, pass, raw->s, raw->len, b) != 0)
		goto out;
	smtpc_auth_b64(raw, b->s, b->len);
	if (smtpc_auth_send(sc, r, raw->s, "", chal) != 0) {
		rc = SMTPC_AUTH_DEAD;
		goto out;
	}
	rc = SMTPC_AUTH_REPLY;
	if (r->code != 334) {
		/* 235 here would skip the server's proof: RFC 5802 §5
		 * wants it checked, and without it the server might be
		 * anybody. */
		if (r->code / 100 == 2) {
			rc = SMTPC_AUTH_PROTO;
			*why = "the server did not prove it knows the "
			    "password (SCRAM-SHA-256: no server signature)";
		}
		goto out;
	}
	rc = SMTPC_AUTH_PROTO;
	*why = "the server did not prove it knows the password "
	    "(SCRAM-SHA-256: wrong server signature)";
	if (smtpc_auth_decode(chal, raw) != 0 ||
	    smtpc_scram_verify(&st, raw->s, raw->len) != 0)
		goto out;
	/* RFC 4954 §4: the empty response to the server's last data. */
	rc = smtpc_auth_send(sc, r, "", "", NULL) != 0 ? SMTPC_AUTH_DEAD :
	    SMTPC_AUTH_REPLY;
out:
	smtpc_scram_free(&st);
	sbuf_free(chal);
	return rc;
}

/*
 * smtpc_auth - AUTH with the configured credentials (see the top for the
 * mechanism and where it may go). Without verified TLS (and without
 * auth_challenge_ok and a mechanism that sends no password) the mail
 * waits (4.7.5) and nothing is sent, whether or not AUTH is offered: the
 * hop is one we must authenticate to. A server that offers no AUTH gets
 * none. 0, or -1 with status and why; refusals stay temporary (a
 * credentials mistake must not bounce mail), as Postfix's
 * smtp_sasl_auth_soft_bounce.
 */
int
smtpc_auth(struct smtpc *sc, const struct smtpc_opts *o, char status[16],
    char *why, size_t whysz)
{
	struct smtp_reply	 r;
	struct sbuf		*b = NULL, *raw = NULL;
	const char		*pass, *mech, *pwhy = NULL;
	enum smtpc_auth_end	 end;
	bool			 challenge, tls_ok;
	size_t			 ul, pl;
	int			 rc = -1;

	if (o->auth_user == NULL || o->auth_user[0] == '\0')
		return 0;
	pass = o->auth_pass != NULL ? o->auth_pass : "";
	challenge = (sc->ext & (SMTPC_X_AUTH_SCRAM | SMTPC_X_AUTH_CRAM)) != 0;
	tls_ok = sc->conn->ssl != NULL && sc->tls_verified;
	if (!tls_ok && !(o->auth_challenge_ok && challenge)) {
		strl_copy(status, "4.7.5", 16);
		if (sc->conn->ssl == NULL)
			bsnprintf(why, whysz, "no TLS with host %s (%s); AUTH "
			    "not sent", sc->peer, o->tls == CONF_TLS_NONE ?
			    "TLS is off for this hop" :
			    (sc->ext & SMTPC_X_STARTTLS) ? "STARTTLS was "
			    "refused" : "STARTTLS is not offered");
		else
			bsnprintf(why, whysz, "certificate of host %s not "
			    "verified for %s: %s; AUTH not sent", sc->peer,
			    sc->tls_name, sc->tls_vr != X509_V_OK ?
			    X509_verify_cert_error_string(sc->tls_vr) :
			    "no certificate");
		return -1;
	}
	if (!(sc->ext & SMTPC_X_AUTH)) {
		log_info("%s: AUTH is not offered: delivering without it",
		    sc->peer);
		return 0;
	}
	if (!challenge &&
	    !(sc->ext & (SMTPC_X_AUTH_PLAIN | SMTPC_X_AUTH_LOGIN))) {
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "cannot authenticate to %s: none of "
		    "SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN is offered",
		    sc->peer);
		return -1;
	}
	ul = strlen(o->auth_user);
	pl = strlen(pass);
	b = sbuf_new();
	raw = sbuf_new();
	smtpc_auth_reserve(raw, ul * 3 + pl + 256);
	smtpc_auth_reserve(b, (ul * 3 + pl + 256) * 4 / 3 + 8);
	smtpc_auth_reserve(sc->conn->out, (ul * 3 + pl + 256) * 4 / 3 + 32);
	if (sc->ext & SMTPC_X_AUTH_SCRAM) {
		mech = "SCRAM-SHA-256";
		end = smtpc_auth_scram(sc, o, pass, &r, b, raw, &pwhy);
	} else if (sc->ext & SMTPC_X_AUTH_CRAM) {
		mech = "CRAM-MD5";
		end = smtpc_auth_cram(sc, o, pass, &r, b, raw, &pwhy);
	} else {
		mech = sc->ext & SMTPC_X_AUTH_PLAIN ? "PLAIN" : "LOGIN";
		end = smtpc_auth_plain(sc, o, pass, &r, b, raw);
	}
	if (end == SMTPC_AUTH_DEAD)
		goto dead;
	if (end == SMTPC_AUTH_REPLY && r.code == 334) {
		/* More than the mechanism has. */
		pwhy = "unexpected challenge";
		end = SMTPC_AUTH_PROTO;
	}
	if (end == SMTPC_AUTH_PROTO) {
		/* Mid-exchange: cancel (RFC 4954 §4); the connection is
		 * out of step if the server does not take that. After a
		 * 235 we cannot trust (no SCRAM proof): just leave. */
		if (r.code != 334 ||
		    smtpc_auth_send(sc, &r, "*", "", NULL) != 0 ||
		    r.code / 100 == 2 || r.code == 334)
			sc->state = SMTPC_S_DEAD;
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "SASL %s authentication with %s "
		    "failed: %s", mech, sc->peer, pwhy);
		goto done;
	}
	if (r.code / 100 == 2) {
		sc->auth_mech = mech;
		rc = 0;
		goto done;
	}
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	smtp_reply_status(&r, status);
	status[0] = '4';
	bsnprintf(why, whysz, "SASL authentication failed; server %s said: %s",
	    sc->peer, r.text);
	goto done;
dead:
	strl_copy(status, sc->err_status, 16);
	strl_copy(why, sc->err, whysz);
done:
	smtpc_auth_wipe(b);
	smtpc_auth_wipe(raw);
	return rc;
}

/*
 * smtpc_auth.c - AUTH for the ESMTP client (RFC 4954): PLAIN (RFC 4616)
 * or LOGIN with the relayhost's credentials.
 *
 * The credentials go only inside TLS (RFC 4954 §4) whose certificate was
 * verified for the hop's name (whatever the TLS policy: smtpc_tls.c checks
 * it when there are credentials to send), and every buffer that held them
 * is wiped: ours, and the connection's output buffer, which is made big
 * enough beforehand so that a realloc never leaves a copy behind.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "smtpc_int.h"

bool
smtpc_auth_wanted(const struct smtpc_opts *o)
{
	return o->auth_user != NULL && o->auth_user[0] != '\0';
}

/* smtpc_auth_send - one line of the SASL exchange, then wipe it from the
 * output buffer. */
static int
smtpc_auth_send(struct smtpc *sc, struct smtp_reply *r, const char *a,
    const char *b)
{
	struct sbuf	*out = sc->conn->out;
	int		 rc = -1;

	sbuf_cat(out, a);
	sbuf_cat(out, b);
	sbuf_cat(out, "\r\n");
	if (smtpc_flush(sc, sc->t_cmd, "AUTH") == 0)
		rc = smtpc_read_reply(sc, sc->t_cmd, "AUTH", r, NULL);
	explicit_bzero(out->s, out->cap);
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

/*
 * smtpc_auth - AUTH PLAIN (or LOGIN) with the configured credentials,
 * only under TLS (RFC 4954 §4) whose certificate was verified (against
 * tls_ca_file or the system's store) for the name we were given: under
 * "may" an active attacker, or a spoofed MX for a relayhost given without
 * brackets, would otherwise collect the password. Without that the mail
 * waits (4.7.5) and nothing is sent, whether or not AUTH is offered: the
 * hop is one we must authenticate to. A verified server that offers no
 * AUTH gets none. 0, or -1 with status and why; refusals stay temporary
 * (a credentials mistake must not bounce mail), as Postfix's
 * smtp_sasl_auth_soft_bounce.
 */
int
smtpc_auth(struct smtpc *sc, const struct smtpc_opts *o, char status[16],
    char *why, size_t whysz)
{
	struct smtp_reply	 r;
	struct sbuf		*b = NULL, *raw = NULL;
	const char		*pass;
	size_t			 ul, pl;
	int			 rc = -1;

	if (o->auth_user == NULL || o->auth_user[0] == '\0')
		return 0;
	pass = o->auth_pass != NULL ? o->auth_pass : "";
	if (sc->conn->ssl == NULL) {
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "no TLS with host %s (%s); AUTH not sent",
		    sc->peer, o->tls == CONF_TLS_NONE ? "TLS is off for this "
		    "hop" : (sc->ext & SMTPC_X_STARTTLS) ? "STARTTLS was "
		    "refused" : "STARTTLS is not offered");
		return -1;
	}
	if (!sc->tls_verified) {
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "certificate of host %s not verified for "
		    "%s: %s; AUTH not sent", sc->peer, sc->tls_name,
		    sc->tls_vr != X509_V_OK ?
		    X509_verify_cert_error_string(sc->tls_vr) :
		    "no certificate");
		return -1;
	}
	if (!(sc->ext & SMTPC_X_AUTH)) {
		log_info("%s: AUTH is not offered: delivering without it",
		    sc->peer);
		return 0;
	}
	if (!(sc->ext & (SMTPC_X_AUTH_PLAIN | SMTPC_X_AUTH_LOGIN))) {
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "cannot authenticate to %s: neither "
		    "PLAIN nor LOGIN is offered", sc->peer);
		return -1;
	}
	ul = strlen(o->auth_user);
	pl = strlen(pass);
	b = sbuf_new();
	raw = sbuf_new();
	smtpc_auth_reserve(raw, ul + pl + 3);
	smtpc_auth_reserve(b, (ul + pl + 3) * 4 / 3 + 8);
	smtpc_auth_reserve(sc->conn->out, (ul + pl + 3) * 4 / 3 + 32);
	if (sc->ext & SMTPC_X_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, o->auth_user, ul);
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, pass, pl);
		smtpc_auth_b64(b, raw->s, raw->len);
		if (b->len + 13 <= SMTPC_CMD_MAX) {
			if (smtpc_auth_send(sc, &r, "AUTH PLAIN ", b->s) != 0)
				goto dead;
		} else {
			/* Too long for one command line: after the 334. */
			if (smtpc_auth_send(sc, &r, "AUTH PLAIN", "") != 0)
				goto dead;
			if (r.code == 334 &&
			    smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
	} else {
		if (smtpc_auth_send(sc, &r, "AUTH LOGIN", "") != 0)
			goto dead;
		if (r.code == 334) {
			smtpc_auth_b64(b, o->auth_user, ul);
			if (smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
		if (r.code == 334) {
			smtpc_auth_b64(b, pass, pl);
			if (smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
	}
	if (r.code == 334) {
		/* More than the mechanism has: cancel (RFC 4954 §4). */
		if (smtpc_auth_send(sc, &r, "*", "") != 0)
			goto dead;
		r.code = 0;
	}
	if (r.code / 100 == 2) {
		rc = 0;
		goto done;
	}
	if (r.code == 0) {
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "SASL authentication with %s failed: "
		    "unexpected challenge", sc->peer);
		sc->state = SMTPC_S_DEAD;
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
	strl_copy(status, "4.4.2", 16);
	strl_copy(why, sc->err, whysz);
done:
	explicit_bzero(b->s, b->cap);
	explicit_bzero(raw->s, raw->cap);
	sbuf_free(b);
	sbuf_free(raw);
	return rc;
}

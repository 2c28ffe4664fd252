/*
 * fuzz_sasl.c - SASL messages and base64: the server side of every
 * mechanism (smtp/smtp_auth.c: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256)
 * fed arbitrary client responses, the client side's reading of the
 * server's SCRAM messages and CRAM challenge (runner/smtpc_auth.c), and
 * the strict base64 of smtp/smtp_b64.c.
 *
 * Input: a flag byte (bits 0-1: the mechanism; bit 2: the client side;
 * bit 3: AUTH without an initial response), then up to 8 messages
 * separated by FUZZ_SEP, raw (already base64-decoded, as the session
 * hands them on). Each message is also base64-decoded and encoded.
 *
 * Checks beyond the sanitizers: what base64 decodes encodes back to the
 * same text, and any bytes encode and decode to themselves; a server
 * exchange ends within its messages (no AUTH_CONTINUE for ever).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtpc_int.h"

#define NMSG	8

static void
b64(const char *p, size_t n)
{
	struct sbuf	*d = sbuf_new(), *e = sbuf_new(), *d2 = sbuf_new();

	if (smtp_b64_decode(p, n, d) == 0) {
		smtp_b64_encode(d->s, d->len, e);
		if (e->len != n || memcmp(e->s, p, n) != 0) {
			fprintf(stderr, "fuzz: base64 \"%.*s\" re-encodes as "
			    "\"%s\"\n", (int)n, p, e->s);
			abort();
		}
	}
	sbuf_reset(e);
	smtp_b64_encode(p, n, e);
	if (smtp_b64_decode(e->s, e->len, d2) != 0 || d2->len != n ||
	    memcmp(d2->s, p, n) != 0)
		abort();
	sbuf_free(d);
	sbuf_free(e);
	sbuf_free(d2);
}

/* iter_ok - a server-first message's i= within what runs fast (the
 * client takes up to SMTPC_SCRAM_ITER_MAX: a slow input, not a bug). */
static bool
iter_ok(const char *s)
{
	const char	*i = strstr(s, "i=");

	return i == NULL || strtoll(i + 2, NULL, 10) <= 8192;
}

static void
client(char **msg, size_t *len, int n)
{
	struct smtpc_scram	 st;
	struct sbuf		*out = sbuf_new();

	memset(&st, 0, sizeof(st));
	smtpc_scram_first(&st, "user", "rOprNGfwEbeRWgbNEkqO", out);
	if (n > 0 && iter_ok(msg[0]) &&
	    smtpc_scram_final(&st, "pencil", msg[0], len[0], out) == 0 &&
	    n > 1)
		(void)smtpc_scram_verify(&st, msg[1], len[1]);
	smtpc_scram_free(&st);
	if (n > 0)
		(void)smtpc_cram_response("user", "pencil", msg[0], len[0],
		    out);
	sbuf_free(out);
}

static void
server(const struct fuzz_env *env, int mech, bool no_ir, char **msg,
    size_t *len, int n)
{
	struct auth_sasl	*s;
	struct sbuf		*chal = sbuf_new();
	int			 i = 0, rc;

	s = auth_sasl_new(env->auth, (enum auth_mech)mech, "mx.fuzz.example");
	if (no_ir)
		rc = auth_sasl_step(s, "", 0, false, chal);
	else if (n > 0)
		rc = auth_sasl_step(s, msg[i], len[i], true, chal), i++;
	else
		rc = AUTH_CONTINUE;
	while (rc == AUTH_CONTINUE && i < n) {
		sbuf_reset(chal);
		rc = auth_sasl_step(s, msg[i], len[i], true, chal);
		i++;
	}
	if (rc == AUTH_CONTINUE && i >= 3 && n >= 3) {
		fprintf(stderr, "fuzz: %d messages, still continuing\n", i);
		abort();
	}
	(void)auth_sasl_user(s);
	auth_sasl_free(s);
	sbuf_free(chal);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_env	*env;
	struct fuzz_in		 in = { data, size };
	char			*msg[NMSG];
	size_t			 len[NMSG];
	uint8_t			 flags;
	int			 n = 0, i;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	env = fuzz_env();
	flags = fuzz_take_byte(&in);
	while (in.n > 0 && n < NMSG) {
		msg[n] = fuzz_take_part(&in, &len[n]);
		b64(msg[n], len[n]);
		n++;
	}
	if (flags & 0x04)
		client(msg, len, n);
	else
		server(env, flags & 3, (flags & 0x08) != 0, msg, len, n);
	for (i = 0; i < n; i++)
		free(msg[i]);
	return 0;
}

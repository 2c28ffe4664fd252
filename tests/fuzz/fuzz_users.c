/*
 * fuzz_users.c - users_file (smtp/smtp_auth.c): auth_db_load of the
 * input as a file, then the look-ups ETRN and ATRN make of a user, and
 * one SASL exchange of each mechanism against what it took (the
 * secrets' decoding: {CRYPT}, {CRAM-MD5}, {SCRAM-SHA-256}).
 *
 * Input: the file's bytes. The users tried are the first line's (its
 * name up to the ':') and "site".
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* try - one exchange of mech for user: the first step only (a wrong
 * answer is what the users' secrets decide, and costs a hash). */
static void
try(struct auth_db *db, enum auth_mech mech, const char *user)
{
	struct auth_sasl	*s = auth_sasl_new(db, mech, "mx.fuzz.example");
	struct sbuf		*chal = sbuf_new(), *in = sbuf_new();

	if (mech == AUTH_MECH_SCRAM_SHA256) {
		sbuf_catf(in, "n,,n=%s,r=fuzznonce", user);
		(void)auth_sasl_step(s, in->s, in->len, true, chal);
	} else if (mech == AUTH_MECH_CRAM_MD5) {
		(void)auth_sasl_step(s, "", 0, false, chal);
		sbuf_reset(chal);
		sbuf_catf(in, "%s 0123456789abcdef0123456789abcdef", user);
		(void)auth_sasl_step(s, in->s, in->len, true, chal);
	}
	auth_sasl_free(s);
	sbuf_free(chal);
	sbuf_free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_db		*db;
	const struct auth_user	*u;
	const char		*f;
	char			 err[1024], name[AUTH_USER_MAX + 1];
	size_t			 i;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	if ((f = fuzz_file("users-in", data, size)) == NULL ||
	    (db = auth_db_load(f, err, sizeof(err))) == NULL)
		return 0;
	for (i = 0; i < size && i < AUTH_USER_MAX && data[i] != ':' &&
	    data[i] != '\n' && data[i] != '\0'; i++)
		name[i] = (char)data[i];
	name[i] = '\0';
	if ((u = auth_db_find(db, name)) != NULL) {
		(void)auth_user_name(u);
		(void)auth_user_domains(u);
		(void)auth_user_owns(u, "site.example");
		(void)auth_user_owns(u, "a.kids.example");
		(void)auth_user_has(u, AUTH_MECH_SCRAM_SHA256);
		try(db, AUTH_MECH_SCRAM_SHA256, name);
		try(db, AUTH_MECH_CRAM_MD5, name);
	}
	(void)auth_db_find(db, "site");
	auth_db_free(db);
	return 0;
}

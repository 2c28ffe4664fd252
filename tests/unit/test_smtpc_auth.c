/*
 * test_smtpc_auth.c - the client halves of CRAM-MD5 and SCRAM-SHA-256
 * (runner/smtpc_auth.c): against the RFC vectors (RFC 2195 §2, RFC 7677
 * §3), and against the server side (smtp/smtp_auth.c, auth_sasl_*) with a
 * users_file line made by auth_make_line(), the code of `postern passwd`.
 * A server that cheats (a SCRAM signature it cannot know, too few
 * iterations, a nonce that is not ours) must be caught by the client.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpc_int.h"
#include "tharness.h"
#include "tutil.h"

#define CRAM_CHAL	"<1896.697170952@postoffice.reston.mci.net>"
#define SC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define SC_SNONCE	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SC_SALT		"W22ZaJ0SNY7soEsUEjb6gQ=="
#define SC_SFIRST	"r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=4096"
#define SC_FINAL	"c=biws,r=" SC_CNONCE SC_SNONCE \
			",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SC_VERIFY	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void
cram_vector(struct t *t)
{
	struct sbuf	*out = sbuf_new();

	if (smtpc_cram_response("tim", "tanstaaftanstaaf", CRAM_CHAL,
	    strlen(CRAM_CHAL), out) != 0 ||
	    strcmp(out->s, "tim b913a602c7eda7a495b4e6e7334d3890") != 0)
		t_errorf(t, "smtpc_cram_response(RFC 2195): got \"%s\"",
		    out->s);
	sbuf_free(out);
}

static void
scram_vector(struct t *t)
{
	struct smtpc_scram	 st;
	struct sbuf		*out = sbuf_new();

	smtpc_scram_first(&st, "user", SC_CNONCE, out);
	if (strcmp(out->s, "n,,n=user,r=" SC_CNONCE) != 0)
		t_errorf(t, "client-first: got \"%s\"", out->s);
	if (smtpc_scram_final(&st, "pencil", SC_SFIRST, strlen(SC_SFIRST),
	    out) != 0 || strcmp(out->s, SC_FINAL) != 0)
		t_errorf(t, "client-final: got \"%s\", want \"%s\"", out->s,
		    SC_FINAL);
	if (smtpc_scram_verify(&st, SC_VERIFY, strlen(SC_VERIFY)) != 0)
		t_errorf(t, "server-final of RFC 7677 refused");
	if (smtpc_scram_verify(&st, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJ"
	    "Rsjl95G5=", 45) == 0)
		t_errorf(t, "a wrong server signature was taken");
	if (smtpc_scram_verify(&st, "e=invalid-proof", 15) == 0)
		t_errorf(t, "e= was taken as success");
	smtpc_scram_free(&st);
	sbuf_free(out);
}

/* The server-first messages a client must refuse. */
static void
scram_bad_server(struct t *t)
{
	static const struct {
		const char	*sfirst, *why;
	} v[] = {
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=1",
		    "one iteration (downgrade)" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=4095",
		    "4095 iterations" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=99999999999",
		    "too many iterations" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=1000001",
		    "past the ceiling (a second of CPU a connection)" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=04096",
		    "leading zero" },
		{ "r=xyz" SC_SNONCE ",s=" SC_SALT ",i=4096", "not our nonce" },
		{ "r=" SC_CNONCE ",s=" SC_SALT ",i=4096", "nonce not extended" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=,i=4096", "empty salt" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=W22Z*J0=,i=4096", "bad salt" },
		{ "r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT, "no i=" },
		{ "m=ext,r=" SC_CNONCE SC_SNONCE ",s=" SC_SALT ",i=4096",
		    "m= extension" },
		{ "", "empty" },
	};
	struct smtpc_scram	 st;
	struct sbuf		*out = sbuf_new();
	size_t			 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		smtpc_scram_first(&st, "user", SC_CNONCE, out);
		if (smtpc_scram_final(&st, "pencil", v[i].sfirst,
		    strlen(v[i].sfirst), out) == 0)
			t_errorf(t, "server-first (%s) \"%s\" was taken",
			    v[i].why, v[i].sfirst);
		smtpc_scram_free(&st);
	}
	sbuf_free(out);
}

/* load_db - a users_file with these users (password = name + "-pw"),
 * made by auth_make_line. */
static struct auth_db *
load_db(struct t *t, const char *const *users, size_t n)
{
	struct conf_list	 none = { NULL, 0 };
	struct sbuf		*file = sbuf_new(), *line = sbuf_new();
	struct auth_db		*db;
	char			 path[64], pw[128], err[256];
	size_t			 i;

	for (i = 0; i < n; i++) {
		sbuf_reset(line);
		bsnprintf(pw, sizeof(pw), "%s-pw", users[i]);
		if (auth_make_line(users[i], pw, &none, line) != 0)
			t_errorf(t, "auth_make_line(%s) failed", users[i]);
		sbuf_cat(file, line->s);
		sbuf_cat(file, "\n");
	}
	if (write_tmp(file->s, path, sizeof(path)) != 0) {
		t_errorf(t, "write_tmp failed");
		db = NULL;
	} else {
		if ((db = auth_db_load(path, err, sizeof(err))) == NULL)
			t_errorf(t, "auth_db_load: %s", err);
		unlink(path);
	}
	sbuf_free(file);
	sbuf_free(line);
	return db;
}

/* cram_run - one exchange; the server's verdict. */
static int
cram_run(struct auth_db *db, const char *user, const char *pw)
{
	struct auth_sasl	*a = auth_sasl_new(db, AUTH_MECH_CRAM_MD5,
	    "site.example");
	struct sbuf		*ch = sbuf_new(), *resp = sbuf_new();
	int			 rc;

	rc = auth_sasl_step(a, NULL, 0, false, ch);
	if (rc == AUTH_CONTINUE) {
		if (smtpc_cram_response(user, pw, ch->s, ch->len, resp) != 0)
			rc = -100;
		else
			rc = auth_sasl_step(a, resp->s, resp->len, true, ch);
	}
	auth_sasl_free(a);
	sbuf_free(ch);
	sbuf_free(resp);
	return rc;
}

/* scram_run - one exchange. Returns the server's verdict, or 100 when
 * the client refused the server (tamper: 1 flips a bit of the server
 * signature). */
static int
scram_run(struct auth_db *db, const char *user, const char *pw,
    int tamper)
{
	struct auth_sasl	*a = auth_sasl_new(db, AUTH_MECH_SCRAM_SHA256,
	    "site.example");
	struct smtpc_scram	 st;
	struct sbuf		*ch = sbuf_new(), *msg = sbuf_new();
	int			 rc;

	smtpc_scram_first(&st, user, NULL, msg);
	rc = auth_sasl_step(a, msg->s, msg->len, true, ch);
	if (rc != AUTH_CONTINUE)
		goto out;
	if (smtpc_scram_final(&st, pw, ch->s, ch->len, msg) != 0) {
		rc = 100;
		goto out;
	}
	rc = auth_sasl_step(a, msg->s, msg->len, true, ch);
	if (rc != AUTH_CONTINUE)
		goto out;
	if (tamper && ch->len > 4)
		ch->s[3] = ch->s[3] == 'A' ? 'B' : 'A';
	if (smtpc_scram_verify(&st, ch->s, ch->len) != 0) {
		rc = 100;
		goto out;
	}
	rc = auth_sasl_step(a, "", 0, true, ch);
out:
	smtpc_scram_free(&st);
	auth_sasl_free(a);
	sbuf_free(ch);
	sbuf_free(msg);
	return rc;
}

static void
against_server(struct t *t)
{
	static const char *const users[] = { "site1", "we,ird=name" };
	static const struct {
		const char	*user, *pw;
		int		 tamper, cram, scram;
		const char	*why;
	} v[] = {
		{ "site1", "site1-pw", 0, AUTH_OK, AUTH_OK, "right password" },
		{ "site1", "site1-px", 0, AUTH_FAIL, AUTH_FAIL, "wrong one" },
		{ "site2", "site2-pw", 0, AUTH_FAIL, AUTH_FAIL, "unknown" },
		{ "we,ird=name", "we,ird=name-pw", 0, AUTH_OK, AUTH_OK,
		    "',' and '=' in the name (saslname escapes)" },
		{ "site1", "site1-pw", 1, AUTH_OK, 100,
		    "tampered server signature" },
	};
	struct auth_db	*db;
	size_t		 i;
	int		 rc;

	if ((db = load_db(t, users, 2)) == NULL)
		return;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (!v[i].tamper &&
		    (rc = cram_run(db, v[i].user, v[i].pw)) != v[i].cram)
			t_errorf(t, "CRAM-MD5 (%s): got %d, want %d", v[i].why,
			    rc, v[i].cram);
		if ((rc = scram_run(db, v[i].user, v[i].pw, v[i].tamper)) !=
		    v[i].scram)
			t_errorf(t, "SCRAM-SHA-256 (%s): got %d, want %d",
			    v[i].why, rc, v[i].scram);
	}
	auth_db_free(db);
}

int
main(void)
{
	log_init("test", LOG_DEST_NONE);
	T_RUN(cram_vector);
	T_RUN(scram_vector);
	T_RUN(scram_bad_server);
	T_RUN(against_server);
	T_EXIT();
}

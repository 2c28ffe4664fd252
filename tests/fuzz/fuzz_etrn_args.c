/*
 * fuzz_etrn_args.c - the arguments of ETRN (etrn/etrn.c: "domain",
 * "@domain", "#queue", with etrn_policy.c's rules and routes_file's
 * caller routes behind them), ATRN ("domain,domain...") and TURN
 * (etrn/atrn.c), each as a session that said EHLO would run it.
 *
 * Input: a flag byte (bits 0-1: the AUTH user: none, "site", "fast" or
 * "none"; bits 2-3: which configuration of fuzz_env; bit 4: an IPv6
 * client), then arguments separated by FUZZ_SEP, each cut at its first
 * CR, LF or NUL (the session never passes those on). Each argument is
 * given to ETRN, then to ATRN on the ODMR port, then to TURN.
 *
 * The commit thread is a stub, as in fuzz_smtpd_session.c: nothing
 * waits. Checks beyond the sanitizers: each command replies with one
 * reply line ("ddd " and CRLF, no other CR or LF): an argument echoed
 * in a reply cannot break it.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etrn_int.h"
#include "fuzz.h"
#include "smtpd_int.h"

static const char *const users[4] = { NULL, "site", "fast", "none" };

/* check_one - one reply line in out, then out is dropped. */
static void
check_one(struct smtpd_session *s, const char *verb, const char *arg)
{
	const struct sbuf	*o = s->conn->out;
	const char		*lf = memchr(o->s, '\n', o->len);

	if (o->len < 6 || lf == NULL || lf != o->s + o->len - 1 ||
	    lf[-1] != '\r' || memchr(o->s, '\r', o->len - 2) != NULL ||
	    o->s[0] < '2' || o->s[0] > '5' || o->s[3] != ' ') {
		fprintf(stderr, "fuzz: %s \"%s\": reply \"%.*s\"\n", verb,
		    arg, (int)o->len, o->s);
		abort();
	}
	sbuf_reset(s->conn->out);
	s->conn->outoff = 0;
}

/* run - one command with a copy of arg (the commands cut theirs). */
static void
run(struct smtpd_session *s, void (*fn)(struct smtpd_session *, char *),
    const char *verb, const char *arg)
{
	char	*copy = arg != NULL ? xstrdup(arg) : NULL;

	fn(s, copy);
	free(copy);
	if (s->state == SMTPD_S_COMMIT) {
		s->srv->todo = NULL;
		s->srv->todo_tail = &s->srv->todo;
		s->in_commit_list = false;
		etrn_done(s);
	}
	check_one(s, verb, arg != NULL ? arg : "");
	s->state = SMTPD_S_CMD;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_env	*env;
	struct smtpd_server	 srv;
	struct smtpd_session	*s;
	struct sockaddr_storage	 ss;
	struct fuzz_in		 in = { data, size };
	uint8_t			 flags;
	char			*arg;
	int			 ci, parts = 0;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	env = fuzz_env();
	flags = fuzz_take_byte(&in);
	ci = (flags >> 2) & 3;
	memset(&srv, 0, sizeof(srv));
	srv.conf = env->conf[ci];
	srv.q = env->q;
	srv.auth = env->auth;
	srv.etrn = env->etrn[ci];
	srv.etrn_rate = etrn_rate_new();
	srv.throttle = auth_throttle_new(8);
	srv.epfd = srv.sigfd = srv.evfd = srv.wakefd = -1;
	srv.atrn_epfd = srv.localfd = -1;
	srv.todo_tail = &srv.todo;
	memset(&ss, 0, sizeof(ss));
	if (flags & 0x10) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::7", &a6->sin6_addr);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

		a4->sin_family = AF_INET;
		inet_pton(AF_INET, "127.0.0.1", &a4->sin_addr);
	}
	s = smtpd_session_adopt(&srv, smtp_conn_new(-1), &ss);
	sbuf_reset(s->conn->out);
	strl_copy(s->helo, "client.example", sizeof(s->helo));
	s->esmtp = true;
	if (users[flags & 3] != NULL)
		s->auth_user = xstrdup(users[flags & 3]);
	while (in.n > 0 && parts++ < 16) {
		arg = fuzz_take_part(&in, NULL);
		arg[strcspn(arg, "\r\n")] = '\0';
		s->odmr = false;
		run(s, etrn_cmd, "ETRN", arg);
		s->odmr = true;
		run(s, atrn_cmd_atrn, "ATRN", arg[0] != '\0' ? arg : NULL);
		s->odmr = false;
		run(s, atrn_cmd_turn, "TURN", arg[0] != '\0' ? arg : NULL);
		free(arg);
	}
	smtpd_session_free(s);
	auth_throttle_free(srv.throttle);
	etrn_rate_free(srv.etrn_rate);
	return 0;
}

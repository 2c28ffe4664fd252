/*
 * fuzz_smtpd_session.c - the SMTP server session (etrn/smtpd_session.c,
 * with smtpd_param.c, smtpd_check.c, etrn.c and atrn.c behind it) fed a
 * whole client byte stream, in process: no socket, no loop, no thread.
 *
 * Input: two flag bytes, then the stream, cut into the segments the
 * client sent at once by FUZZ_SEG (seed.sh keeps each recv() of a real
 * client as one): each segment is appended to the connection's input and
 * the session steps, as the event loop would after a read, so pipelining
 * and its synchronisation rule are what a real client would meet.
 *
 * The commit thread is a stub: a message "is queued" with a counted id
 * (or fails, by a flag) and an ETRN or an ATRN's seen record is answered
 * as with nothing waiting. ATRN asks the queue (an empty one in the fuzz
 * directory, opened once) whether mail waits. A failed AUTH's delay is
 * over at once. STARTTLS meets no TLS context (502).
 *
 * The check beyond the sanitizers: every line the server writes is a
 * reply line ("ddd" then ' ' or '-', CRLF, no other CR or LF): an echo
 * of client bytes that broke a reply would be a reply injection.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "etrn_int.h"
#include "smtpd_int.h"

#define FUZZ_SEG	"\0\xff"	/* between two client writes */
#define FUZZ_SEG_LEN	2
#define FUZZ_STEPS	100000		/* rounds of one segment, at most */

/* Flags of the first byte. */
#define F_ODMR		0x01	/* accepted on odmr_listen */
#define F_MYNET		0x02	/* the client is in mynetworks */
#define F_TLS		0x04	/* as if STARTTLS was done */
#define F_FAIL		0x08	/* the commit fails (queue full) */
#define F_KNOWN		0x10	/* relay_recipients is set */
#define F_PULL		0x20	/* postern pull's reversed session */
#define F_CONF		0xc0	/* which of the four configurations */
/* Flags of the second byte. */
#define F2_V6		0x01	/* an IPv6 client */
#define F2_LOCAL	0x02	/* a local injection session */
#define F2_FAILX	0x04	/* the commit fails otherwise (451) */

static bool		 trace;		/* FUZZ_TRACE set: replies shown */
static char		*known[] = { "@open.relay.example", "known@relay.example",
			    "postmaster@relay.example" };

/* check_replies - every line of out a reply line; then out is dropped. */
static void
check_replies(struct smtp_conn *conn)
{
	const char	*p = conn->out->s, *end = p + conn->out->len, *lf;

	while (p < end) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    lf - p < 5 || lf[-1] != '\r' ||
		    p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-') ||
		    memchr(p, '\r', (size_t)(lf - p) - 1) != NULL ||
		    memchr(p, '\0', (size_t)(lf - p)) != NULL) {
			fprintf(stderr, "fuzz: bad reply line: \"%.*s\"\n",
			    (int)(end - p > 200 ? 200 : end - p), p);
			abort();
		}
		p = lf + 1;
	}
	if (trace)
		fprintf(stderr, "%.*s", (int)conn->out->len, conn->out->s);
	sbuf_reset(conn->out);
	conn->outoff = 0;
}

/* commit - what the commit thread and smtpd_server_committed do. */
static void
commit(struct smtpd_server *srv, struct smtpd_session *s, unsigned flags,
    uint64_t *ids)
{
	srv->todo = NULL;
	srv->todo_tail = &srv->todo;
	s->in_commit_list = false;
	if (s->etrn != NULL) {
		etrn_done(s);
		return;
	}
	if (flags & F_FAIL)
		s->qn.rc = QUEUE_E_FULL;
	else if (flags & (F2_FAILX << 8))
		s->qn.rc = QUEUE_E_SYS;
	else {
		s->qn.rc = 0;
		s->qn.msg.id = ++*ids;
	}
	smtpd_session_committed(s);
}

/* step - the loop's work for a session after a read; false: it ended. */
static bool
step(struct smtpd_server *srv, struct smtpd_session *s, unsigned flags,
    uint64_t *ids)
{
	int	i;

	for (i = 0; i < FUZZ_STEPS; i++) {
		if (!smtpd_session_input(s))
			return false;
		if (s->state == SMTPD_S_COMMIT)
			commit(srv, s, flags, ids);
		else if (s->state == SMTPD_S_AUTH_WAIT)
			smtpd_session_auth_resume(s);
		else if (smtpd_session_out_blocked(s))
			check_replies(s->conn);
		else
			break;
	}
	check_replies(s->conn);
	return s->state != SMTPD_S_CLOSE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_env	*env;
	struct smtpd_server	 srv;
	struct smtpd_pull_opts	 pull;
	struct smtpd_session	*s;
	struct sockaddr_storage	 ss;
	struct fuzz_in		 in = { data, size };
	const uint8_t		*seg;
	unsigned		 flags;
	uint64_t		 ids = 0;
	size_t			 n;
	int			 ci;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	env = fuzz_env();
	trace = getenv("FUZZ_TRACE") != NULL;
	flags = fuzz_take_byte(&in);
	flags |= (unsigned)fuzz_take_byte(&in) << 8;
	ci = (flags & F_CONF) >> 6;

	memset(&srv, 0, sizeof(srv));
	srv.conf = env->conf[ci];
	srv.q = env->q;
	srv.auth = env->auth;
	srv.throttle = auth_throttle_new(64);
	srv.etrn = env->etrn[ci];
	srv.etrn_rate = etrn_rate_new();
	srv.epfd = srv.sigfd = srv.evfd = srv.wakefd = -1;
	srv.atrn_epfd = srv.localfd = -1;
	srv.todo_tail = &srv.todo;
	strl_copy(srv.spool_dir, fuzz_dir(), sizeof(srv.spool_dir));
	if (flags & F_KNOWN) {
		srv.known_rcpts = known;
		srv.nknown = sizeof(known) / sizeof(known[0]);
	}
	if (flags & F_PULL) {
		memset(&pull, 0, sizeof(pull));
		srv.pull = &pull;
	}
	memset(&ss, 0, sizeof(ss));
	if (flags & (F2_V6 << 8)) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::7", &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		inet_pton(AF_INET, (flags & F_MYNET) ? "127.0.0.2" :
		    "127.0.0.1", &a->sin_addr);
	}
	s = smtpd_session_adopt(&srv, smtp_conn_new(-1), &ss);
	s->odmr = (flags & F_ODMR) != 0;
	s->tls = (flags & F_TLS) != 0;
	if (flags & (F2_LOCAL << 8)) {
		s->local = true;
		s->uid = 0;
	}
	check_replies(s->conn);
	while (in.n > 0) {
		seg = memmem(in.p, in.n, FUZZ_SEG, FUZZ_SEG_LEN);
		n = seg != NULL ? (size_t)(seg - in.p) : in.n;
		sbuf_catn(s->conn->in, in.p, n);
		in.p += n;
		in.n -= n;
		if (seg != NULL) {
			in.p += FUZZ_SEG_LEN;
			in.n -= FUZZ_SEG_LEN;
		}
		if (!step(&srv, s, flags, &ids))
			break;
	}
	/* The end of the connection: the session is dropped as it is. */
	smtpd_session_free(s);
	auth_throttle_free(srv.throttle);
	etrn_rate_free(srv.etrn_rate);
	return 0;
}

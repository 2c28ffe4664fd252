/*
 * fuzz_header_scan.c - the scan of a message as the server receives it
 * (etrn/smtpd_session.c, DATA): line ends, dot-stuffing, the end of the
 * header section and the count of Received: fields that stops mail loops
 * (max_received_headers), checked against an independent reading.
 *
 * Input: a flag byte (bit 0: the configuration with small limits, where
 * max_received_headers is 2), then the message as the client sends it
 * after the 354; the harness ends it with CRLF "." CRLF. The session
 * before it is HELO, MAIL, RCPT and DATA, one command a write.
 *
 * When the server stores the message (it commits), it must be what the
 * independent reading says: each CRLF line up to the first "." line,
 * one leading dot dropped, after the server's own Received: field; and
 * the server's count of Received: fields in the header section (up to
 * the first empty line) must be the reading's, and within the limit.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "etrn_int.h"
#include "smtpd_int.h"

/* expect - the independent reading of msg (n bytes, ending in CRLF "."
 * CRLF): the stored body into b, the Received: count returned. */
static int
expect(const char *msg, size_t n, struct sbuf *b)
{
	const char	*p = msg, *end = msg + n, *eol;
	bool		 hdr = true;
	int		 received = 0;
	size_t		 len;

	while (p < end) {
		if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
			break;
		len = (size_t)(eol - p);
		if (len == 1 && p[0] == '.')
			break;
		if (hdr && len == 0)
			hdr = false;
		else if (hdr && len >= 9 && strncasecmp(p, "Received:", 9) == 0)
			received++;
		if (len > 0 && p[0] == '.')
			sbuf_catn(b, p + 1, len + 1);
		else
			sbuf_catn(b, p, len + 2);
		p = eol + 2;
	}
	return received;
}

/* feed - give the session bytes as one read, and step it. */
static void
feed(struct smtpd_session *s, const char *p, size_t n)
{
	sbuf_catn(s->conn->in, p, n);
	(void)smtpd_session_input(s);
	sbuf_reset(s->conn->out);
	s->conn->outoff = 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_env	*env;
	struct smtpd_server	 srv;
	struct smtpd_session	*s;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*a4 = (struct sockaddr_in *)&ss;
	struct fuzz_in		 in = { data, size };
	struct sbuf		*msg, *want;
	uint8_t			 flags;
	int			 received;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	env = fuzz_env();
	flags = fuzz_take_byte(&in);
	memset(&srv, 0, sizeof(srv));
	srv.conf = env->conf[(flags & 1) ? 2 : 0];
	srv.q = env->q;
	srv.throttle = auth_throttle_new(8);
	srv.etrn = env->etrn[0];
	srv.etrn_rate = etrn_rate_new();
	srv.epfd = srv.sigfd = srv.evfd = srv.wakefd = -1;
	srv.atrn_epfd = srv.localfd = -1;
	srv.todo_tail = &srv.todo;
	strl_copy(srv.spool_dir, fuzz_dir(), sizeof(srv.spool_dir));
	memset(&ss, 0, sizeof(ss));
	a4->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a4->sin_addr);
	s = smtpd_session_adopt(&srv, smtp_conn_new(-1), &ss);
	sbuf_reset(s->conn->out);
	feed(s, "HELO client.example\r\n", 21);
	feed(s, "MAIL FROM:<a@client.example>\r\n", 30);
	feed(s, "RCPT TO:<b@relay.example>\r\n", 27);
	feed(s, "DATA\r\n", 6);
	if (s->state != SMTPD_S_DATA)
		abort();
	msg = sbuf_new();
	sbuf_catn(msg, in.p, in.n);
	sbuf_cat(msg, "\r\n.\r\n");
	sbuf_catn(s->conn->in, msg->s, msg->len);
	(void)smtpd_session_input(s);
	if (s->state == SMTPD_S_COMMIT) {
		want = sbuf_new();
		received = expect(msg->s, msg->len, want);
		if (s->received != received ||
		    received > srv.conf->max_received_headers) {
			fprintf(stderr, "fuzz: %d Received: fields counted, "
			    "%d read\n", s->received, received);
			abort();
		}
		if (s->spool_fd < 0 && (s->body->len - s->trace_len !=
		    want->len || memcmp(s->body->s + s->trace_len, want->s,
		    want->len) != 0)) {
			fprintf(stderr, "fuzz: stored body differs\n");
			abort();
		}
		sbuf_free(want);
		srv.todo = NULL;
		s->in_commit_list = false;
		s->qn.rc = 0;
		s->qn.msg.id = 1;
		smtpd_session_committed(s);
	}
	sbuf_free(msg);
	smtpd_session_free(s);
	auth_throttle_free(srv.throttle);
	etrn_rate_free(srv.etrn_rate);
	return 0;
}

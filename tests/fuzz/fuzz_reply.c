/*
 * fuzz_reply.c - what the delivery client reads from a server: the reply
 * reader (smtp/smtp_reply.c: multi-line, enhanced codes, over-long
 * lines), and the client itself (runner/smtpc*.c) over a canned server:
 * the greeting, the EHLO keywords (smtpc_ehlo_parse), AUTH's server
 * messages (CRAM-MD5's challenge, SCRAM-SHA-256's server-first and
 * server-final), a transaction's replies, a command's.
 *
 * Input: a flag byte, then the server's bytes.
 *	bit 0 clear: the reader alone, fed in pieces of 1..8 bytes (bits
 *	1-3) or all at once, reply after reply.
 *	bit 0 set: the client over a socketpair: greeting and EHLO
 *	(smtpc_attach), AUTH when offered (bit 1: as user "u"; bit 2: a long
 *	password), a message to two recipients with DSN (smtpc_send), ETRN
 *	(smtpc_request), QUIT. Bit 3 clear: the other end holds all the
 *	bytes at once and is shut for writing, so the client meets replies
 *	that came before their command (smtpc_in_step ends it there). Bit 3
 *	set: a canned server thread answers in step: one reply (through a
 *	line whose fourth byte is not '-') per command line the client sent,
 *	one for the message after a 354 (through its "."), and the next
 *	reply anyway when the client has been quiet for CANNED_IDLE_MS (a
 *	count it did not foresee), so the transaction and ETRN are reached.
 *
 * Checks beyond the sanitizers: the client writes only CRLF lines with
 * no NUL, whatever the server said; the reader takes no more than it was
 * given; a reply it returns has a code of three digits (100..599), a
 * status of its class or none, a text without control bytes, within
 * SMTP_REPLY_TEXT_MAX.
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "runner.h"
#include "smtpc_int.h"

#define F_CLIENT	0x01
#define F_LOCKSTEP	0x08
#define CANNED_IDLE_MS	20	/* quiet client: it waits for a reply */

static void
check_reply(const struct smtp_reply *r)
{
	char	st[16];
	size_t	i;

	if (r->code < 100 || r->code > 599 ||
	    (r->status[0] != '\0' && r->status[0] - '0' != r->code / 100)) {
		fprintf(stderr, "fuzz: reply %d \"%s\" \"%s\"\n", r->code,
		    r->status, r->text);
		abort();
	}
	for (i = 0; r->text[i] != '\0'; i++)
		if ((unsigned char)r->text[i] < ' ')
			abort();
	if (i > SMTP_REPLY_TEXT_MAX)
		abort();
	smtp_reply_status(r, st);
	if (st[0] != '\0' && (st[0] - '0') != r->code / 100 &&
	    r->code / 100 != 1 && r->code / 100 != 3) {
		fprintf(stderr, "fuzz: status %s of %d\n", st, r->code);
		abort();
	}
}

/* reader - the bytes as replies, piece by piece. */
static void
reader(const uint8_t *p, size_t n, size_t piece)
{
	struct smtp_reply_reader rd;
	struct smtp_reply	 r;
	struct sbuf		*buf = sbuf_new(), *lines = sbuf_new();
	size_t			 off = 0, used, give;
	int			 rc;

	smtp_reply_begin(&rd, &r);
	while (off < n || buf->len > 0) {
		give = piece == 0 || n - off < piece ? n - off : piece;
		sbuf_catn(buf, p + off, give);
		off += give;
		rc = smtp_reply_feed(&rd, &r, buf->s, buf->len, &used, lines);
		if (used > buf->len)
			abort();
		memmove(buf->s, buf->s + used, buf->len - used);
		buf->len -= used;
		buf->s[buf->len] = '\0';
		if (rc == 1)
			check_reply(&r);
		if (rc != 0) {
			sbuf_reset(lines);
			smtp_reply_begin(&rd, &r);
		} else if (give == 0)
			break;		/* the rest is an unended line */
	}
	sbuf_free(buf);
	sbuf_free(lines);
}

static int
body_fn(void *arg, const char **data, size_t *len)
{
	int	*done = arg;

	if (*done) {
		*len = 0;
		return 0;
	}
	*done = 1;
	*data = "Subject: x\r\n\r\n.dot\r\nbody\r\n";
	*len = strlen(*data);
	return 0;
}

/* check_sent - what the client wrote: CRLF lines only, no bare CR or LF,
 * no NUL (server text echoed into a command would be an injection). */
static void
check_sent(struct sbuf *b)
{
	const char	*p, *end, *lf;

	for (p = b->s, end = b->s + b->len; p < end; p = lf + 1) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    lf == p || lf[-1] != '\r' ||
		    memchr(p, '\r', (size_t)(lf - p) - 1) != NULL ||
		    memchr(p, '\0', (size_t)(lf - p)) != NULL) {
			fprintf(stderr, "fuzz: the client sent \"%.*s\"\n",
			    (int)(end - p > 200 ? 200 : end - p), p);
			abort();
		}
	}
}

/* drain - what is in fd now, into b. */
static void
drain(int fd, struct sbuf *b)
{
	char	buf[4096];
	ssize_t	n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		sbuf_catn(b, buf, (size_t)n);
}

/* The canned server in step with the client (F_LOCKSTEP). */
struct canned {
	int		 fd;
	const uint8_t	*p;
	size_t		 n, off;
	struct sbuf	*sent;		/* what the client wrote */
	bool		 data;		/* after a 354: lines up to "." */
	bool		 shut;
};

/* canned_write - the next reply: through its last line (a line whose
 * fourth byte is not '-'), or the rest. false when nothing is left. */
static bool
canned_write(struct canned *c)
{
	const uint8_t	*s = c->p + c->off, *end = c->p + c->n, *q, *lf;
	size_t		 len;
	ssize_t		 w;

	if (c->off >= c->n)
		return false;
	for (q = s;; q = lf + 1) {
		if ((lf = memchr(q, '\n', (size_t)(end - q))) == NULL) {
			lf = end - 1;
			break;
		}
		if (lf - q < 4 || q[3] != '-' || lf + 1 == end)
			break;
	}
	len = (size_t)(lf + 1 - s);
	c->data = lf + 1 - q >= 3 && memcmp(q, "354", 3) == 0;
	c->off += len;
	while (len > 0) {
		if ((w = send(c->fd, s, len, MSG_NOSIGNAL)) <= 0)
			return false;
		s += w;
		len -= (size_t)w;
	}
	return true;
}

/* canned_run - the thread: replies as the client's lines ask for them,
 * until the client closes its end. */
static void *
canned_run(void *arg)
{
	struct canned	*c = arg;
	struct pollfd	 pfd;
	size_t		 owe = 1, scan = 0, before;
	const char	*line, *lf;
	int		 rc;

	for (;;) {
		while (owe > 0 && canned_write(c))
			owe--;
		owe = 0;
		if (c->off >= c->n && !c->shut) {
			shutdown(c->fd, SHUT_WR);
			c->shut = true;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if ((rc = poll(&pfd, 1, CANNED_IDLE_MS)) == 0) {
			owe = 1;	/* quiet: it waits for something */
			continue;
		}
		if (rc < 0)
			break;
		before = c->sent->len;
		drain(c->fd, c->sent);
		if (c->sent->len == before)
			break;		/* closed */
		while ((lf = memchr(c->sent->s + scan, '\n',
		    c->sent->len - scan)) != NULL) {
			line = c->sent->s + scan;
			if (!c->data)
				owe++;
			else if (lf - line == 2 && line[0] == '.') {
				c->data = false;
				owe++;
			}
			scan = (size_t)(lf + 1 - c->sent->s);
		}
	}
	return NULL;
}

/* client - the client against the canned server bytes. */
static void
client(const uint8_t *p, size_t n, uint8_t flags)
{
	struct smtpc_opts	 o;
	struct smtpc_rcpt	 rc[2];
	struct smtpc_msg	 m;
	struct smtp_reply	 r;
	struct smtpc		*sc;
	struct smtp_conn	*conn;
	char			 status[16], why[512], pass[300];
	struct canned		 cs;
	struct sbuf		*sent;
	pthread_t		 th;
	int			 sv[2], done = 0;
	ssize_t			 w;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	sent = sbuf_new();
	if (flags & F_LOCKSTEP) {
		memset(&cs, 0, sizeof(cs));
		cs.fd = sv[1];
		cs.p = p;
		cs.n = n;
		cs.sent = sent;
		if (pthread_create(&th, NULL, canned_run, &cs) != 0)
			abort();
	} else {
		/* The kernel holds it all: the input is bounded well below
		 * a socket buffer. */
		while (n > 0) {
			if ((w = write(sv[1], p, n)) <= 0)
				abort();
			p += w;
			n -= (size_t)w;
		}
		shutdown(sv[1], SHUT_WR);
	}
	memset(&o, 0, sizeof(o));
	o.helo = "client.fuzz.example";
	o.tls = CONF_TLS_NONE;
	o.cmd_timeout = o.data_timeout = o.dot_timeout = 5;
	o.connect_timeout = 5;
	if (flags & 0x02) {
		o.auth_user = "u";
		memset(pass, 'p', sizeof(pass) - 1);
		pass[(flags & 0x04) ? sizeof(pass) - 1 : 6] = '\0';
		o.auth_pass = pass;
		o.auth_challenge_ok = true;
	}
	conn = smtp_conn_new(sv[0]);
	sc = smtpc_attach(conn, &o, status, why, sizeof(why));
	if (sc != NULL && smtpc_auth(sc, &o, status, why, sizeof(why)) == 0) {
		memset(rc, 0, sizeof(rc));
		rc[0].addr = "a@relay.example";
		rc[0].orcpt = "rfc822;a@relay.example";
		rc[0].notify = QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY;
		rc[1].addr = "b@relay.example";
		memset(&m, 0, sizeof(m));
		m.sender = "s@fuzz.example";
		m.envid = "env+2Bid";
		m.flags = QMSG_F_8BITMIME;
		m.size = 30;
		m.body = body_fn;
		m.body_arg = &done;
		m.rcpt = rc;
		m.nrcpt = 2;
		if (smtpc_send(sc, &m) == 0 &&
		    smtpc_request(sc, "ETRN fuzz.example", &r) == 0)
			check_reply(&r);
		(void)smtpc_offers(sc, "ETRN");
		(void)smtpc_has_dsn(sc);
	}
	smtpc_close(sc, true);
	smtp_conn_free(conn);		/* closes sv[0]: the thread ends */
	if (flags & F_LOCKSTEP)
		pthread_join(th, NULL);
	drain(sv[1], sent);
	check_sent(sent);
	sbuf_free(sent);
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in	in = { data, size };
	uint8_t		flags;

	if (size > 65536)
		return 0;
	fuzz_init();
	flags = fuzz_take_byte(&in);
	if (flags & F_CLIENT)
		client(in.p, in.n, flags);
	else
		reader(in.p, in.n, (flags >> 1) & 7);
	return 0;
}

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
 *	bit 0 set: the client over a socketpair whose other end holds the
 *	bytes and is then shut for writing (the client meets their end,
 *	never a wait): greeting and EHLO (smtpc_attach), AUTH when offered
 *	(bit 1: as user "u"; bit 2: a long password), a message to two
 *	recipients with DSN (smtpc_send), ETRN (smtpc_request), QUIT.
 *
 * Checks beyond the sanitizers: the client writes only CRLF lines with
 * no NUL, whatever the server said; the reader takes no more than it was
 * given; a reply it returns has a code of three digits (100..599), a
 * status of its class or none, a text without control bytes, within
 * SMTP_REPLY_TEXT_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "runner.h"
#include "smtpc_int.h"

#define F_CLIENT	0x01

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
check_sent(int fd)
{
	struct sbuf	*b = sbuf_new();
	char		 buf[4096];
	const char	*p, *end, *lf;
	ssize_t		 n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		sbuf_catn(b, buf, (size_t)n);
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
	sbuf_free(b);
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
	int			 sv[2], done = 0;
	ssize_t			 w;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	/* The kernel holds it all: the input is bounded well below a
	 * socket buffer. */
	while (n > 0) {
		if ((w = write(sv[1], p, n)) <= 0)
			abort();
		p += w;
		n -= (size_t)w;
	}
	shutdown(sv[1], SHUT_WR);
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
	smtp_conn_free(conn);
	check_sent(sv[1]);
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

/*
 * inject.c - `postern enqueue` and sendmail hand their message to the
 * running daemon, whose listener stores it with the other messages of its
 * next group commit (etrn/smtpd_local.c): one fsync shared by every
 * message that finishes at the same time, where storing it ourselves
 * costs an LMDB transaction and an fsync each.
 *
 * The socket is queue_dir/SMTPD_LOCAL_SOCKET and the protocol SMTP, so
 * the listener's session code applies its limits and DATA rules: greeting,
 * EHLO, then MAIL, the RCPTs and DATA pipelined (RFC 2920) in groups of
 * INJECT_PIPE_MAX commands, the message dot-stuffed, the final reply,
 * QUIT. The 250 comes only after the commit; it names the queue id.
 *
 * Anything but that 250 - no socket, a refused connection (another user,
 * max_connections), a 4xx or 5xx, a timeout - and the caller stores the
 * message itself, exactly as before, with today's checks, messages and
 * exit codes. Before the final dot nothing was stored, so that is safe;
 * after it, a connection lost or timed out without a reply leaves it
 * unknown whether the commit happened, and storing it again may give a
 * duplicate, which RFC 5321 §6.1 prefers to a loss.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "etrn.h"
#include "tools.h"

#define INJECT_CMD_MS		60000	/* each reply but the last */
#define INJECT_DOT_MS		600000	/* the final one: RFC 5321
					 * §4.5.3.2.6, 10 minutes */
#define INJECT_PIPE_MAX		100	/* commands written before their
					 * replies are read: the listener's
					 * unsent replies stay far below its
					 * SMTPD_OUT_MAX */
#define INJECT_QUIT_MS		1000	/* QUIT's reply, after the 250 */
#define INJECT_CHUNK		(64 * 1024)	/* message octets per write */
#define INJECT_IN_MAX		(64 * 1024)	/* unread reply octets */

/* inject_connect - the listener's socket, non-blocking; -1 when there is
 * none to talk to (no daemon, not allowed, a full backlog). */
static int
inject_connect(const struct conf *conf, char *why, size_t whysz)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!bsnprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s",
	    conf->queue_dir, SMTPD_LOCAL_SOCKET)) {
		bsnprintf(why, whysz, "socket path too long");
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		bsnprintf(why, whysz, "socket: %s", strerror(errno));
		return -1;
	}
	/* A unix-domain connect does not wait: it succeeds or fails now
	 * (EAGAIN with a full backlog). */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		bsnprintf(why, whysz, "connect %s: %s", sun.sun_path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* inject_flush - write all queued output; -1 on an error or timeout. */
static int
inject_flush(struct smtp_conn *c)
{
	int	rc;

	while ((rc = smtp_conn_flush(c)) == 0)
		if (smtp_conn_wait(c, false, INJECT_CMD_MS) != 1)
			return -1;
	return rc == 1 ? 0 : -1;
}

/* inject_reply - read one reply into r; -1 on EOF, an error, a timeout
 * or a malformed reply. */
static int
inject_reply(struct smtp_conn *c, struct smtp_reply *r, int timeout_ms)
{
	struct smtp_reply_reader	rr;
	size_t				used;
	int				rc;

	smtp_reply_begin(&rr, r);
	for (;;) {
		used = 0;
		rc = smtp_reply_feed(&rr, r, smtp_conn_data(c),
		    smtp_conn_avail(c), &used, NULL);
		smtp_conn_consume(c, used);
		if (rc != 0)
			return rc == 1 ? 0 : -1;
		if (smtp_conn_wait(c, true, timeout_ms) != 1)
			return -1;
		if (smtp_conn_fill(c, INJECT_IN_MAX) < 0)
			return -1;
	}
}

/* inject_expect - one reply of class `want` (2 or 3), else -1 with it in
 * why. */
static int
inject_expect(struct smtp_conn *c, int want, int timeout_ms, const char *what,
    char *why, size_t whysz)
{
	struct smtp_reply	r;

	if (inject_reply(c, &r, timeout_ms) != 0) {
		bsnprintf(why, whysz, "%s: no reply (connection lost or "
		    "timed out)", what);
		return -1;
	}
	if (r.code / 100 != want) {
		bsnprintf(why, whysz, "%s: %s", what, r.text);
		return -1;
	}
	return 0;
}

/* inject_envelope - MAIL, the RCPTs and DATA, pipelined in groups. */
static int
inject_envelope(struct smtp_conn *c, const struct inject_msg *m, char *why,
    size_t whysz)
{
	size_t	sent, got, total = m->nrcpt + 2;

	/* Command k: 0 MAIL, 1..nrcpt RCPT, nrcpt + 1 DATA. */
	for (got = 0; got < total;) {
		for (sent = got; sent < total && sent - got < INJECT_PIPE_MAX;
		    sent++) {
			if (sent == 0)
				sbuf_catf(c->out, "MAIL FROM:<%s>%s%s\r\n",
				    m->sender, m->eight ? " BODY=8BITMIME" :
				    "", m->utf8 ? " SMTPUTF8" : "");
			else if (sent <= m->nrcpt)
				sbuf_catf(c->out, "RCPT TO:<%s>\r\n",
				    m->rcpt[sent - 1].addr);
			else
				sbuf_cat(c->out, "DATA\r\n");
		}
		if (inject_flush(c) != 0) {
			bsnprintf(why, whysz, "write: connection lost");
			return -1;
		}
		for (; got < sent; got++)
			if (inject_expect(c, got == total - 1 ? 3 : 2,
			    INJECT_CMD_MS, got == 0 ? "MAIL" : got == total - 1 ?
			    "DATA" : "RCPT", why, whysz) != 0)
				return -1;
	}
	return 0;
}

/* inject_data - the message, dot-stuffed, a chunk at a time. */
static int
inject_data(struct smtp_conn *c, const struct inject_msg *m)
{
	struct smtp_dot	d;
	size_t		off, n;

	smtp_dot_begin(&d);
	for (off = 0; off < m->len; off += n) {
		n = m->len - off < INJECT_CHUNK ? m->len - off : INJECT_CHUNK;
		smtp_dot_stuff(&d, c->out, m->body + off, n);
		if (inject_flush(c) != 0)
			return -1;
	}
	smtp_dot_end(&d, c->out);
	return inject_flush(c);
}

/* inject_id - the queue id of "250 2.0.0 Ok: queued as ID". */
static void
inject_id(const struct smtp_reply *r, char id[QUEUE_ID_LEN + 1])
{
	const char	*p = strstr(r->text, "queued as ");
	uint64_t	 v;

	id[0] = '\0';
	if (p != NULL && queue_id_parse(p + strlen("queued as "), &v) == 0)
		queue_id_format(v, id);
}

int
inject_submit(const struct conf *conf, const struct inject_msg *m,
    char id[QUEUE_ID_LEN + 1], char *why, size_t whysz)
{
	struct smtp_conn	*c;
	struct smtp_reply	 r;
	int			 fd, rc = INJECT_NOT_TAKEN;

	id[0] = '\0';
	if ((fd = inject_connect(conf, why, whysz)) == -1)
		return INJECT_NOT_TAKEN;
	c = smtp_conn_new(fd);
	if (inject_expect(c, 2, INJECT_CMD_MS, "greeting", why, whysz) != 0)
		goto out;
	sbuf_catf(c->out, "EHLO %s\r\n", conf->myhostname);
	if (inject_flush(c) != 0 ||
	    inject_expect(c, 2, INJECT_CMD_MS, "EHLO", why, whysz) != 0)
		goto out;
	if (inject_envelope(c, m, why, whysz) != 0)
		goto out;
	if (inject_data(c, m) != 0) {
		bsnprintf(why, whysz, "DATA: connection lost");
		goto out;
	}
	if (inject_reply(c, &r, INJECT_DOT_MS) != 0) {
		bsnprintf(why, whysz, "no reply after the message: it may be "
		    "queued twice");
		goto out;
	}
	if (r.code / 100 != 2) {
		bsnprintf(why, whysz, "message: %s", r.text);
		goto out;
	}
	inject_id(&r, id);
	rc = INJECT_QUEUED;
	/* Politeness: the message is stored whatever QUIT gets. */
	sbuf_cat(c->out, "QUIT\r\n");
	if (inject_flush(c) == 0)
		(void)inject_reply(c, &r, INJECT_QUIT_MS);
out:
	smtp_conn_free(c);
	return rc;
}

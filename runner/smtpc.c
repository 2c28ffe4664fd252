/*
 * smtpc.c - the ESMTP client: one connection to a next hop, any number of
 * transactions over it (smtpc_send.c), one result a recipient.
 *
 * This file owns the connection: it connects, reads the greeting, says
 * EHLO (HELO when EHLO is refused), sends commands and reads their
 * replies (smtp_reply_feed), and ends with QUIT. smtpc_open() and
 * smtpc_attach() put a session together with STARTTLS (smtpc_tls.c) and
 * AUTH (smtpc_auth.c).
 *
 * The calls block, but never without a bound: the socket is non-blocking
 * (smtp_conn) and every wait is a poll with the stage's timeout (RFC 5321
 * §4.5.3.2: a timer per command, not one per transaction). While a
 * command group or the message is being written, replies that arrive are
 * read into the buffer as well, so a server that answers a long pipelined
 * group before it reads the rest cannot deadlock us (RFC 2920 §3.1).
 *
 * A server that answers before it is asked (a reply queued behind the
 * greeting, the reply to a message sent along with the 354) is out of
 * step: each of its replies would be taken for the next command's, and a
 * 250 for a message it never read would be taken for delivery. Before
 * each command group, and before the message, whatever has arrived
 * unasked ends the connection (smtpc_in_step, 4.5.0).
 *
 * smtpc_open is permanent only when every address refused both EHLO and
 * HELO with 5xx; its status is 5.x.x then and 4.x.x otherwise (a 5xx
 * greeting or AUTH refusal included).
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "smtpc_int.h"

/* A reply's text goes into the queue as it is. */
_Static_assert(SMTP_REPLY_TEXT_MAX == QUEUE_REPLY_MAX,
    "smtp_reply text and the queue's reply differ in size");

static int
smtpc_ms(int s, int def)
{
	if (s <= 0)
		s = def;
	if (s > 24 * 3600)
		s = 24 * 3600;
	return s * 1000;
}

/* smtpc_die - the connection cannot be used any more: remember why. */
void
smtpc_die(struct smtpc *sc, const char *fmt, ...)
{
	va_list	ap;

	sc->state = SMTPC_S_DEAD;
	va_start(ap, fmt);
	vsnprintf(sc->err, sizeof(sc->err), fmt, ap);
	va_end(ap);
	strl_copy(sc->err_status, "4.4.2", sizeof(sc->err_status));
}

int
smtpc_in_step(struct smtpc *sc, const char *before)
{
	struct smtp_conn	*c = sc->conn;

	if (sc->state == SMTPC_S_DEAD)
		return -1;
	/* What is in the socket now, without waiting: a byte or a TLS
	 * record that is no data (a session ticket) is not a reply. */
	if (smtp_conn_avail(c) == 0 && !c->eof)
		(void)smtp_conn_fill(c, 4);
	if (smtp_conn_avail(c) == 0)
		return 0;
	/* A server going away may say 421 at any time (RFC 5321 §3.8): it
	 * is read as the reply to what we send, as before. */
	if (smtp_conn_avail(c) >= 4 &&
	    memcmp(smtp_conn_data(c), "421", 3) == 0 &&
	    (smtp_conn_data(c)[3] == ' ' || smtp_conn_data(c)[3] == '-'))
		return 0;
	smtpc_die(sc, "unexpected reply from %s before %s was sent",
	    sc->peer, before);
	strl_copy(sc->err_status, "4.5.0", sizeof(sc->err_status));
	return -1;
}

/* ------------------------------------------------------------------ */
/* Commands and replies. */

/* smtpc_flush - write everything queued, within timeout_ms. While it
 * waits it reads what the server sends, so neither side can block the
 * other. -1: the connection died (sc->err says why). */
int
smtpc_flush(struct smtpc *sc, int timeout_ms, const char *stage)
{
	struct smtp_conn	*c = sc->conn;
	int64_t			 deadline = clock_mono_ms() + timeout_ms;
	int64_t			 left;
	bool			 rd;
	int			 rc;

	for (;;) {
		if ((rc = smtp_conn_flush(c)) == 1)
			return 0;
		if (rc < 0) {
			smtpc_die(sc, "lost connection with %s while sending "
			    "%s", sc->peer, stage);
			return -1;
		}
		if ((left = deadline - clock_mono_ms()) <= 0) {
			smtpc_die(sc, "conversation with %s timed out while "
			    "sending %s", sc->peer, stage);
			return -1;
		}
		rd = !c->eof && (smtp_conn_avail(c) < SMTPC_INPUT_MAX ||
		    (c->ssl != NULL && SSL_want_read(c->ssl)));
		rc = smtp_conn_wait(c, rd, (int)left);
		if (rc < 0) {
			smtpc_die(sc, "lost connection with %s while sending "
			    "%s", sc->peer, stage);
			return -1;
		}
		if (rc > 0 && rd)
			(void)smtp_conn_fill(c, smtp_conn_avail(c) + 16384);
	}
}

void
smtpc_cmd(struct smtpc *sc, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	sbuf_vcatf(sc->conn->out, fmt, ap);
	va_end(ap);
	sbuf_cat(sc->conn->out, "\r\n");
}

int
smtpc_read_reply(struct smtpc *sc, int timeout_ms, const char *stage,
    struct smtp_reply *r, struct sbuf *lines)
{
	struct smtp_conn		*c = sc->conn;
	struct smtp_reply_reader	 rd;
	int64_t				 deadline, left;
	char				 shown[96];
	size_t				 used;
	int				 rc;

	smtp_reply_begin(&rd, r);
	if (sc->state == SMTPC_S_DEAD)
		return -1;
	deadline = clock_mono_ms() + timeout_ms;
	for (;;) {
		rc = smtp_reply_feed(&rd, r, smtp_conn_data(c),
		    smtp_conn_avail(c), &used, lines);
		smtp_conn_consume(c, used);
		if (rc == 1)
			return 0;
		switch (rc) {
		case 0:
			break;
		case SMTP_REPLY_E_LONG:
			smtpc_die(sc, "bad reply from %s to %s: line too long",
			    sc->peer, stage);
			return -1;
		case SMTP_REPLY_E_LINES:
			smtpc_die(sc, "bad reply from %s to %s: more "
			    "than %d lines", sc->peer, stage,
			    SMTP_REPLY_LINES);
			return -1;
		default:
			strl_clean(shown, sizeof(shown), rd.line, 80);
			smtpc_die(sc, "bad reply from %s to %s: \"%s\"",
			    sc->peer, stage, shown);
			return -1;
		}
		/* Need more input. */
		if (c->eof) {
			smtpc_die(sc, "lost connection with %s while receiving "
			    "the reply to %s", sc->peer, stage);
			return -1;
		}
		if ((left = deadline - clock_mono_ms()) <= 0) {
			smtpc_die(sc, "conversation with %s timed out while "
			    "receiving the reply to %s", sc->peer, stage);
			return -1;
		}
		if ((rc = smtp_conn_wait(c, true, (int)left)) < 0) {
			smtpc_die(sc, "lost connection with %s while receiving "
			    "the reply to %s", sc->peer, stage);
			return -1;
		}
		if (rc > 0)
			(void)smtp_conn_fill(c, smtp_conn_avail(c) + 16384);
	}
}

int
smtpc_command(struct smtpc *sc, const char *stage, struct smtp_reply *r,
    struct sbuf *lines, const char *fmt, ...)
{
	va_list	ap;

	if (smtpc_in_step(sc, stage) != 0)
		return -1;
	va_start(ap, fmt);
	sbuf_vcatf(sc->conn->out, fmt, ap);
	va_end(ap);
	sbuf_cat(sc->conn->out, "\r\n");
	if (smtpc_flush(sc, sc->t_cmd, stage) != 0)
		return -1;
	return smtpc_read_reply(sc, sc->t_cmd, stage, r, lines);
}

/* ------------------------------------------------------------------ */
/* The session: connect, greeting, EHLO, then TLS and AUTH. */

static struct smtpc *
smtpc_new(const struct smtpc_opts *o)
{
	struct smtpc	*sc = xcalloc(1, sizeof(*sc));

	sc->helo = xstrdup(o->helo != NULL && o->helo[0] != '\0' ? o->helo :
	    "localhost");
	sc->t_cmd = smtpc_ms(o->cmd_timeout, SMTPC_T_CMD);
	sc->t_data = smtpc_ms(o->data_timeout, SMTPC_T_DATA);
	sc->t_dot = smtpc_ms(o->dot_timeout, SMTPC_T_DOT);
	sc->bdat_min = o->bdat_min_size;
	sc->state = SMTPC_S_OK;
	strl_copy(sc->err_status, "4.4.2", sizeof(sc->err_status));
	return sc;
}

static void
smtpc_free(struct smtpc *sc)
{
	if (sc == NULL)
		return;
	if (sc->own_conn)
		smtp_conn_free(sc->conn);
	free(sc->helo);
	free(sc);
}

/* smtpc_peer_format - "host[ip]:port" from an address. */
static void
smtpc_peer_format(struct smtpc *sc, const char *host,
    const struct sockaddr *sa, socklen_t salen)
{
	char	ip[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, salen, ip, sizeof(ip), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		strl_copy(ip, "unknown", sizeof(ip));
		strl_copy(port, "0", sizeof(port));
	}
	strl_clean(sc->host, sizeof(sc->host), host != NULL &&
	    host[0] != '\0' ? host : ip, sizeof(sc->host) - 1);
	bsnprintf(sc->peer, sizeof(sc->peer), "%s[%s]:%s", sc->host, ip, port);
}

/* smtpc_connect - a connected non-blocking socket, or -1 with errno. */
static int
smtpc_connect(const struct route_addr *a, int timeout_ms)
{
	struct pollfd	pfd;
	socklen_t	len;
	int64_t		deadline = clock_mono_ms() + timeout_ms, left;
	int		fd, err = 0, n;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->sslen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	for (;;) {
		if ((left = deadline - clock_mono_ms()) <= 0) {
			err = ETIMEDOUT;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if ((n = poll(&pfd, 1, (int)left)) == -1 && errno != EINTR) {
			err = errno;
			goto fail;
		}
		if (n > 0)
			break;
	}
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0)
		return fd;
fail:
	close(fd);
	errno = err;
	return -1;
}

/* smtpc_ehlo_parse - the keywords of an EHLO reply (first line: the
 * server's name, skipped). */
/* smtpc_kw_add - remember an EHLO keyword for smtpc_offers(): upper
 * case, printable, as many as fit (a keyword that does not is not
 * offered, as far as we know). */
static void
smtpc_kw_add(struct smtpc *sc, const char *kw)
{
	size_t	len = strlen(sc->kw), n = strlen(kw), i;

	if (n == 0 || n > 64 || len + n + 2 > sizeof(sc->kw))
		return;
	for (i = 0; i < n; i++) {
		if (kw[i] <= ' ' || kw[i] >= 0x7f)
			return;
		sc->kw[len + i] = (char)toupper((unsigned char)kw[i]);
	}
	sc->kw[len + n] = ' ';
	sc->kw[len + n + 1] = '\0';
}

static void
smtpc_ehlo_parse(struct smtpc *sc, char *lines)
{
	char		*line, *next, *kw, *arg, *ep;
	unsigned long long v;

	sc->ext = 0;
	sc->size_max = 0;
	strl_copy(sc->kw, " ", sizeof(sc->kw));
	if ((line = strchr(lines, '\n')) == NULL)
		return;
	for (line++; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		kw = line;
		while (*kw == ' ')
			kw++;
		arg = kw + strcspn(kw, " =");
		if (*arg != '\0')
			*arg++ = '\0';
		smtpc_kw_add(sc, kw);
		if (strcasecmp(kw, "PIPELINING") == 0)
			sc->ext |= SMTPC_X_PIPELINING;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			sc->ext |= SMTPC_X_8BITMIME;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			sc->ext |= SMTPC_X_SMTPUTF8;
		else if (strcasecmp(kw, "DSN") == 0)
			sc->ext |= SMTPC_X_DSN;
		else if (strcasecmp(kw, "CHUNKING") == 0)
			sc->ext |= SMTPC_X_CHUNKING;
		else if (strcasecmp(kw, "BINARYMIME") == 0)
			sc->ext |= SMTPC_X_BINARYMIME;
		else if (strcasecmp(kw, "STARTTLS") == 0)
			sc->ext |= SMTPC_X_STARTTLS;
		else if (strcasecmp(kw, "ENHANCEDSTATUSCODES") == 0)
			sc->ext |= SMTPC_X_ENHANCED;
		else if (strcasecmp(kw, "SIZE") == 0) {
			/* RFC 1870 §4: no number, or 0, is no limit. */
			sc->ext |= SMTPC_X_SIZE;
			errno = 0;
			v = strtoull(arg, &ep, 10);
			if (arg[0] >= '0' && arg[0] <= '9' && errno == 0 &&
			    (*ep == '\0' || *ep == ' '))
				sc->size_max = v;
		} else if (strcasecmp(kw, "AUTH") == 0) {
			/* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN". */
			char *m, *msave = NULL;

			sc->ext |= SMTPC_X_AUTH;
			for (m = strtok_r(arg, " =", &msave); m != NULL;
			    m = strtok_r(NULL, " =", &msave)) {
				if (strcasecmp(m, "PLAIN") == 0)
					sc->ext |= SMTPC_X_AUTH_PLAIN;
				else if (strcasecmp(m, "LOGIN") == 0)
					sc->ext |= SMTPC_X_AUTH_LOGIN;
				else if (strcasecmp(m, "CRAM-MD5") == 0)
					sc->ext |= SMTPC_X_AUTH_CRAM;
				else if (strcasecmp(m, "SCRAM-SHA-256") == 0)
					sc->ext |= SMTPC_X_AUTH_SCRAM;
			}
		}
	}
}

/*
 * smtpc_hello - EHLO, or HELO when EHLO is refused (RFC 5321 §3.2). 0;
 * -1 with status and why set and *perm when the server refused us with
 * 5xx both times.
 */
static int
smtpc_hello(struct smtpc *sc, char status[16], char *why, size_t whysz,
    bool *perm)
{
	struct smtp_reply	 r;
	struct sbuf		*lines = sbuf_new();
	int			 rc = -1;

	*perm = false;
	sc->ext = 0;
	sc->size_max = 0;
	if (smtpc_command(sc, "EHLO", &r, lines, "EHLO %s", sc->helo) != 0)
		goto dead;
	if (r.code / 100 == 2) {
		smtpc_ehlo_parse(sc, lines->s);
		rc = 0;
		goto done;
	}
	if (r.code / 100 == 5) {
		if (smtpc_command(sc, "HELO", &r, NULL, "HELO %s",
		    sc->helo) != 0)
			goto dead;
		if (r.code / 100 == 2) {
			rc = 0;
			goto done;
		}
	}
	smtp_reply_status(&r, status);
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	else if (r.code / 100 == 5)
		*perm = true;
	else if (status[0] != '4')
		status[0] = '4';
	bsnprintf(why, whysz, "host %s refused to talk to me: %s", sc->peer,
	    r.text);
	goto done;
dead:
	strl_copy(status, sc->err_status, 16);
	strl_copy(why, sc->err, whysz);
done:
	sbuf_free(lines);
	return rc;
}

/* smtpc_greet - read the greeting, then EHLO. 0, or -1 with status, why
 * and *perm. */
static int
smtpc_greet(struct smtpc *sc, char status[16], char *why, size_t whysz,
    bool *perm)
{
	struct smtp_reply	r;

	*perm = false;
	if (smtpc_read_reply(sc, sc->t_cmd, "the initial server greeting", &r,
	    NULL) != 0) {
		strl_copy(status, sc->err_status, 16);
		strl_copy(why, sc->err, whysz);
		return -1;
	}
	if (r.code / 100 != 2) {
		/* A 5xx greeting says nothing about the next address; as
		 * Postfix's smtp_skip_5xx_greeting, it is temporary. */
		smtp_reply_status(&r, status);
		status[0] = '4';
		if (r.code == 421)
			sc->state = SMTPC_S_DEAD;
		bsnprintf(why, whysz, "host %s refused to talk to me: %s",
		    sc->peer, r.text);
		return -1;
	}
	return smtpc_hello(sc, status, why, whysz, perm);
}

struct smtpc *
smtpc_open(const struct route_addr *addrs, size_t n,
    const struct smtpc_opts *o, char status[16], char *why, size_t whysz,
    bool *permanent)
{
	struct smtpc	*sc;
	size_t		 i;
	bool		 perm, all_perm = n > 0;
	int		 fd;

	strl_copy(status, "4.4.1", 16);
	bsnprintf(why, whysz, "no address to connect to");
	*permanent = false;
	for (i = 0; i < n; i++) {
		sc = smtpc_new(o);
		smtpc_peer_format(sc, addrs[i].host,
		    (const struct sockaddr *)&addrs[i].ss, addrs[i].sslen);
		fd = smtpc_connect(&addrs[i], smtpc_ms(o->connect_timeout,
		    SMTPC_T_CONNECT));
		counters_event(fd == -1 ? COUNTERS_CONN_OUT_FAILED :
		    COUNTERS_CONN_OUT);
		if (fd == -1) {
			strl_copy(status, "4.4.1", 16);
			bsnprintf(why, whysz, "connect to %s: %s", sc->peer,
			    errno == ETIMEDOUT ? "Connection timed out" :
			    strerror(errno));
			all_perm = false;
			smtpc_free(sc);
			continue;
		}
		sc->conn = smtp_conn_new(fd);
		sc->own_conn = true;
		perm = false;
		if (smtpc_greet(sc, status, why, whysz, &perm) == 0) {
			/* To the nanosecond: the worker subtracts this from
			 * its own reading of the same clock. */
			double	ts = clock_mono_secs();

			if (smtpc_tls_start(sc, o, status, why, whysz) == 0 &&
			    (sc->conn->ssl == NULL ||
			    smtpc_hello(sc, status, why, whysz, &perm) == 0)) {
				if (sc->conn->ssl != NULL)
					sc->tls_s = clock_mono_secs() - ts;
				if (smtpc_auth(sc, o, status, why, whysz) == 0)
					return sc;
			}
		}
		if (!perm)
			all_perm = false;
		smtpc_close(sc, true);
	}
	/* The class says it too: 5 only when every address refused us. */
	*permanent = all_perm;
	status[0] = all_perm ? '5' : '4';
	return NULL;
}

struct smtpc *
smtpc_attach(struct smtp_conn *conn, const struct smtpc_opts *o,
    char status[16], char *why, size_t whysz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	struct smtpc		*sc;
	bool			 perm;

	sc = smtpc_new(o);
	sc->conn = conn;
	sc->own_conn = false;
	memset(&ss, 0, sizeof(ss));
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) != 0)
		len = 0;
	smtpc_peer_format(sc, NULL, (struct sockaddr *)&ss, len);
	if (smtpc_greet(sc, status, why, whysz, &perm) == 0)
		return sc;
	status[0] = perm ? '5' : '4';
	smtpc_close(sc, true);
	return NULL;
}

const char *
smtpc_peer(const struct smtpc *sc)
{
	return sc != NULL ? sc->peer : "";
}

bool
smtpc_has_dsn(const struct smtpc *sc)
{
	return sc != NULL && (sc->ext & SMTPC_X_DSN) != 0;
}

const char *
smtpc_auth_mech(const struct smtpc *sc)
{
	return sc != NULL && sc->auth_mech != NULL ? sc->auth_mech : "";
}

bool
smtpc_alive(struct smtpc *sc)
{
	struct pollfd	pfd;

	if (sc == NULL || sc->state != SMTPC_S_OK || sc->conn == NULL ||
	    sc->conn->eof || smtp_conn_avail(sc->conn) > 0)
		return false;
	/*
	 * An idle server sends nothing unless it is going away (a 421, a
	 * TLS close_notify, the FIN): anything readable now, or a hang-up,
	 * means the connection cannot carry the next transaction.
	 */
	pfd.fd = sc->conn->fd;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) == -1)
		return false;
	if (pfd.revents != 0) {
		smtpc_die(sc, "connection closed by %s while idle", sc->peer);
		return false;
	}
	return true;
}

bool
smtpc_offers(const struct smtpc *sc, const char *keyword)
{
	char	want[80];
	size_t	i;

	if (sc == NULL || bsnprintf(want, sizeof(want), " %s ", keyword) == 0)
		return false;
	for (i = 1; want[i] != '\0'; i++)
		want[i] = (char)toupper((unsigned char)want[i]);
	return strstr(sc->kw, want) != NULL;
}

int
smtpc_request(struct smtpc *sc, const char *line, struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (sc == NULL || strpbrk(line, "\r\n") != NULL ||
	    strlen(line) > SMTPC_LINE_MAX)
		return -1;
	return smtpc_command(sc, line, r, NULL, "%s", line);
}

struct smtp_conn *
smtpc_detach(struct smtpc *sc)
{
	struct smtp_conn	*conn;

	if (sc == NULL)
		return NULL;
	conn = sc->state == SMTPC_S_DEAD ? NULL : sc->conn;
	if (conn == NULL && sc->own_conn)
		smtp_conn_free(sc->conn);
	sc->conn = NULL;
	sc->own_conn = false;
	smtpc_free(sc);
	return conn;
}

void
smtpc_close(struct smtpc *sc, bool polite)
{
	struct smtp_reply	r;
	int			t;

	if (sc == NULL)
		return;
	if (polite && sc->state != SMTPC_S_DEAD && sc->conn != NULL) {
		/* QUIT and its 221, within a short bound: nothing more
		 * depends on it. */
		t = sc->t_cmd < SMTPC_QUIT_MS ? sc->t_cmd : SMTPC_QUIT_MS;
		smtpc_cmd(sc, "QUIT");
		if (smtpc_flush(sc, t, "QUIT") == 0)
			(void)smtpc_read_reply(sc, t, "QUIT", &r, NULL);
	}
	smtpc_free(sc);
}

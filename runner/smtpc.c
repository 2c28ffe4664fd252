/*
 * smtpc.c - the ESMTP client: one connection to a next hop, any number of
 * transactions over it, one result a recipient.
 *
 * The calls block, but never without a bound: the socket is non-blocking
 * (smtp_conn) and every wait is a poll with the stage's timeout (RFC 5321
 * §4.5.3.2: a timer per command, not one per transaction). While a
 * command group or the message is being written, replies that arrive are
 * read into the buffer as well, so a server that answers a long pipelined
 * group before it reads the rest cannot deadlock us (RFC 2920 §3.1).
 *
 * What happens to a recipient follows protocols.md §4.7: a MAIL refusal
 * goes to every recipient, an RCPT reply to its own, the reply to the
 * final dot (or a refused DATA) to every accepted one; 421 or a lost
 * connection leaves whatever has no final answer temporary (RFC 5321
 * §3.8). Replies are matched to commands by count, never by code or text
 * (RFC 2920 §3.1). What the server cannot take is refused here without a
 * word on the wire: SMTPUTF8 (5.6.7), 8BITMIME (5.6.3), SIZE (5.3.4).
 *
 * Results: a recipient's code and status always have the same class. The
 * code is the server's (a 552 to RCPT is taken as 452, as Postfix does),
 * or for our own refusals the one a server would have used (550 5.6.7,
 * 554 5.6.3, 552 5.3.4, 553 5.1.x), or 0 when no usable reply came
 * (4.4.2: timeout, lost connection, garbage; 4.3.0: the queued message
 * could not be read). smtpc_open is permanent only when every address
 * refused both EHLO and HELO with 5xx; its status is 5.x.x then and 4.x.x
 * otherwise (a 5xx greeting or AUTH refusal included).
 *
 * Reuse: smtpc_send returns 0 when the connection is in step and idle
 * (after a complete transaction, a refusal before sending, or a failed
 * transaction closed with a RSET that got 250), -1 when it must not carry
 * more mail (421, drop, timeout, RSET refused, a reply out of step).
 *
 * TLS: STARTTLS per policy; the plaintext read before the handshake is
 * thrown away (RFC 3207 §6, CVE-2011-0411) and the extension list is
 * forgotten and asked for again (§4.2). AUTH PLAIN or LOGIN is sent only
 * inside TLS (RFC 4954 §4) with a certificate verified for the hop's name
 * (whatever the policy), and the credentials are wiped from our buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "runner.h"

#define SMTPC_BLOCK		65536	/* message bytes per write */
#define SMTPC_INPUT_MAX		262144	/* unread input while writing */
#define SMTPC_CMD_MAX		512	/* AUTH line before a split */
#define SMTPC_QUIT_MS		10000	/* at most this for QUIT's reply */

/* Defaults (s) when smtpc_opts says 0: RFC 5321 §4.5.3.2. */
#define SMTPC_T_CONNECT		30
#define SMTPC_T_CMD		300
#define SMTPC_T_DATA		180
#define SMTPC_T_DOT		600

/* What the server's EHLO reply offers. */
enum {
	SMTPC_X_PIPELINING	= 0x001,
	SMTPC_X_SIZE		= 0x002,
	SMTPC_X_8BITMIME	= 0x004,
	SMTPC_X_SMTPUTF8	= 0x008,
	SMTPC_X_DSN		= 0x010,
	SMTPC_X_STARTTLS	= 0x020,
	SMTPC_X_ENHANCED	= 0x040,
	SMTPC_X_AUTH		= 0x080,
	SMTPC_X_AUTH_PLAIN	= 0x100,
	SMTPC_X_AUTH_LOGIN	= 0x200,
};

/* The connection's state: usable, done (no more mail, QUIT is fine) or
 * dead (closed, timed out or out of step: no QUIT either). */
enum smtpc_state {
	SMTPC_S_OK,
	SMTPC_S_DONE,
	SMTPC_S_DEAD,
};

/* A reply's text goes into the queue as it is. */
_Static_assert(SMTP_REPLY_TEXT_MAX == QUEUE_REPLY_MAX,
    "smtp_reply text and the queue's reply differ in size");

struct smtpc {
	struct smtp_conn	*conn;
	bool			 own_conn;	/* false: smtpc_attach's */
	SSL_CTX			*ctx;
	char			*helo;
	int			 t_cmd;		/* ms */
	int			 t_data;
	int			 t_dot;
	uint32_t		 ext;		/* SMTPC_X_* */
	uint64_t		 size_max;	/* SIZE n; 0: no limit */
	enum smtpc_state	 state;
	char			 host[256];	/* SNI, certificate name */
	char			 peer[320];	/* "host[ip]:port" */
	char			 err[256];	/* why it died */
	bool			 tls_verified;	/* chain and name checked */
	long			 tls_vr;	/* the X509_V_* result */
	char			 tls_name[256];	/* the name checked */
	double			 tls_s;		/* STARTTLS to the EHLO after */
};

/* Per-recipient progress inside smtpc_send. */
enum {
	SMTPC_R_PENDING,	/* no answer yet */
	SMTPC_R_ACCEPTED,	/* RCPT 2xx: waits for the final dot */
	SMTPC_R_FINAL,		/* has its result */
};

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
static void
smtpc_die(struct smtpc *sc, const char *fmt, ...)
{
	va_list	ap;

	sc->state = SMTPC_S_DEAD;
	va_start(ap, fmt);
	vsnprintf(sc->err, sizeof(sc->err), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Replies and commands. */

/* smtpc_flush - write everything queued, within timeout_ms. While it
 * waits it reads what the server sends, so neither side can block the
 * other. -1: the connection died (sc->err says why). */
static int
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

/* smtpc_cmd - queue one command line (CRLF added). */
static void
smtpc_cmd(struct smtpc *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
smtpc_cmd(struct smtpc *sc, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	sbuf_vcatf(sc->conn->out, fmt, ap);
	va_end(ap);
	sbuf_cat(sc->conn->out, "\r\n");
}

/*
 * smtpc_read_reply - read one reply (multiline too) within timeout_ms,
 * through smtp_reply_feed() and its limits. With `lines`, each line's
 * text (after "250-") is appended there, one per line, for the EHLO
 * keywords. 0, or -1 when the connection died (timeout, EOF, garbage:
 * sc->err says which).
 */
static int
smtpc_read_reply(struct smtpc *sc, int timeout_ms, const char *stage,
    struct smtp_reply *r, struct sbuf *lines)
{
	struct smtp_conn		*c = sc->conn;
	struct smtp_reply_reader	 rd;
	int64_t				 deadline = clock_mono_ms() + timeout_ms;
	int64_t				 left;
	char				 shown[96];
	size_t				 used;
	int				 rc;

	smtp_reply_begin(&rd, r);
	if (sc->state == SMTPC_S_DEAD)
		return -1;
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

/* smtpc_command - send one command and read its reply (cmd timeout). */
static int
smtpc_command(struct smtpc *sc, const char *stage, struct smtp_reply *r,
    struct sbuf *lines, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
smtpc_command(struct smtpc *sc, const char *stage, struct smtp_reply *r,
    struct sbuf *lines, const char *fmt, ...)
{
	va_list	ap;

	if (sc->state == SMTPC_S_DEAD)
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
/* Session set-up: greeting, EHLO, STARTTLS, AUTH. */

static struct smtpc *
smtpc_new(const struct smtpc_opts *o)
{
	struct smtpc	*sc = xcalloc(1, sizeof(*sc));

	sc->helo = xstrdup(o->helo != NULL && o->helo[0] != '\0' ? o->helo :
	    "localhost");
	sc->t_cmd = smtpc_ms(o->cmd_timeout, SMTPC_T_CMD);
	sc->t_data = smtpc_ms(o->data_timeout, SMTPC_T_DATA);
	sc->t_dot = smtpc_ms(o->dot_timeout, SMTPC_T_DOT);
	sc->state = SMTPC_S_OK;
	return sc;
}

static void
smtpc_free(struct smtpc *sc)
{
	if (sc == NULL)
		return;
	if (sc->own_conn)
		smtp_conn_free(sc->conn);
	SSL_CTX_free(sc->ctx);
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
static void
smtpc_ehlo_parse(struct smtpc *sc, char *lines)
{
	char		*line, *next, *kw, *arg, *ep;
	unsigned long long v;

	sc->ext = 0;
	sc->size_max = 0;
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
		if (strcasecmp(kw, "PIPELINING") == 0)
			sc->ext |= SMTPC_X_PIPELINING;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			sc->ext |= SMTPC_X_8BITMIME;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			sc->ext |= SMTPC_X_SMTPUTF8;
		else if (strcasecmp(kw, "DSN") == 0)
			sc->ext |= SMTPC_X_DSN;
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
	strl_copy(status, "4.4.2", 16);
	strl_copy(why, sc->err, whysz);
done:
	sbuf_free(lines);
	return rc;
}

/* smtpc_is_ip - is h (brackets allowed) an IP address? The bare address
 * into ip. */
static bool
smtpc_is_ip(const char *h, char *ip, size_t ipsz)
{
	struct in6_addr	a6;
	size_t		n = strlen(h);

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
		if (n > 5 && strncasecmp(h, "IPv6:", 5) == 0) {
			h += 5;
			n -= 5;
		}
	}
	if (n >= ipsz)
		return false;
	memcpy(ip, h, n);
	ip[n] = '\0';
	return inet_pton(AF_INET, ip, &a6) == 1 ||
	    inet_pton(AF_INET6, ip, &a6) == 1;
}

/* smtpc_auth_wanted - are there credentials to send? */
static bool
smtpc_auth_wanted(const struct smtpc_opts *o)
{
	return o->auth_user != NULL && o->auth_user[0] != '\0';
}

/*
 * smtpc_starttls - STARTTLS per policy (RFC 3207). 0: TLS is on, or off
 * and that is allowed; -1 with status and why. Under "encrypt" the
 * handshake fails unless the certificate is verified; with credentials to
 * send it is verified under "may" as well, without failing the
 * handshake: smtpc_auth() looks at the result (sc->tls_verified).
 */
static int
smtpc_starttls(struct smtpc *sc, const struct smtpc_opts *o,
    char status[16], char *why, size_t whysz)
{
	struct smtp_reply	 r;
	char			 ip[64];
	const char		*ca, *e, *name;
	bool			 verify = o->tls >= CONF_TLS_ENCRYPT;
	bool			 check = verify || smtpc_auth_wanted(o);
	bool			 isip;
	int64_t			 deadline, left;
	size_t			 dropped;
	long			 vr;
	int			 rc;

	if (o->tls == CONF_TLS_NONE || sc->conn->ssl != NULL)
		return 0;
	if (!(sc->ext & SMTPC_X_STARTTLS)) {
		if (!verify)
			return 0;
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "TLS is required, but was not offered by "
		    "host %s", sc->peer);
		return -1;
	}
	if (smtpc_command(sc, "STARTTLS", &r, NULL, "STARTTLS") != 0)
		goto dead;
	if (r.code / 100 != 2) {
		if (r.code == 421) {
			sc->state = SMTPC_S_DEAD;
		} else if (!verify) {
			/* Opportunistic: carry on in the clear (§4). */
			log_info("%s: STARTTLS refused (%s): delivering "
			    "without TLS", sc->peer, r.text);
			return 0;
		}
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "TLS is required, but host %s refused "
		    "to start TLS: %s", sc->peer, r.text);
		return -1;
	}
	/* RFC 3207 §6: nothing read in the clear is used after this. */
	if ((dropped = smtp_conn_discard(sc->conn)) > 0)
		log_info("%s: STARTTLS: discarded %zu octets of plaintext "
		    "sent after the 220", sc->peer, dropped);

	if ((sc->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto local;
	(void)SSL_CTX_set_min_proto_version(sc->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(sc->ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(sc->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (check) {
		ca = o->tls_ca_file != NULL && o->tls_ca_file[0] != '\0' ?
		    o->tls_ca_file : NULL;
		if (ca != NULL ? SSL_CTX_load_verify_locations(sc->ctx, ca,
		    NULL) != 1 : SSL_CTX_set_default_verify_paths(sc->ctx) !=
		    1) {
			log_warnx("%s: cannot load the CA certificates from %s",
			    __func__, ca != NULL ? ca : "the default places");
			goto local;
		}
	}
	/* Under "may" with credentials the chain is still checked (the
	 * result is in SSL_get_verify_result), but a failure does not stop
	 * the handshake: only the AUTH. */
	SSL_CTX_set_verify(sc->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);

	/* The name we were given (the relayhost's), else the one we looked
	 * up; never one the server tells us. */
	name = o->tls_name != NULL && o->tls_name[0] != '\0' ? o->tls_name :
	    sc->host;
	strl_copy(sc->tls_name, name, sizeof(sc->tls_name));
	isip = smtpc_is_ip(sc->tls_name, ip, sizeof(ip));
	if (smtp_conn_tls_start(sc->conn, sc->ctx, false,
	    isip || sc->tls_name[0] == '\0' ? NULL : sc->tls_name) != 0)
		goto local;
	if (check && sc->tls_name[0] != '\0') {
		if (isip ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(sc->conn->ssl), ip) != 1 :
		    SSL_set1_host(sc->conn->ssl, sc->tls_name) != 1)
			goto local;
		SSL_set_hostflags(sc->conn->ssl,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	deadline = clock_mono_ms() + sc->t_cmd;
	while ((rc = smtp_conn_handshake(sc->conn)) == 0) {
		if ((left = deadline - clock_mono_ms()) <= 0 ||
		    smtp_conn_wait(sc->conn, true, (int)left) < 0) {
			sc->state = SMTPC_S_DEAD;
			strl_copy(status, "4.7.5", 16);
			bsnprintf(why, whysz, "TLS handshake with %s timed out",
			    sc->peer);
			return -1;
		}
	}
	if (rc < 0) {
		sc->state = SMTPC_S_DEAD;
		strl_copy(status, "4.7.5", 16);
		vr = SSL_get_verify_result(sc->conn->ssl);
		if (verify && vr != X509_V_OK)
			bsnprintf(why, whysz, "server certificate verification "
			    "failed for %s: %s", sc->peer,
			    X509_verify_cert_error_string(vr));
		else {
			e = ERR_reason_error_string(ERR_peek_last_error());
			bsnprintf(why, whysz, "TLS handshake with %s failed: "
			    "%s", sc->peer, e != NULL ? e : "connection lost");
		}
		ERR_clear_error();
		return -1;
	}
	sc->tls_vr = SSL_get_verify_result(sc->conn->ssl);
	sc->tls_verified = check && sc->tls_name[0] != '\0' &&
	    SSL_get0_peer_certificate(sc->conn->ssl) != NULL &&
	    sc->tls_vr == X509_V_OK;
	if (verify && !sc->tls_verified) {
		sc->state = SMTPC_S_DEAD;
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "server certificate verification failed "
		    "for %s", sc->peer);
		return -1;
	}
	return 0;
local:
	sc->state = SMTPC_S_DEAD;
	ERR_clear_error();
	strl_copy(status, "4.7.5", 16);
	bsnprintf(why, whysz, "cannot set up TLS toward %s (local problem)",
	    sc->peer);
	return -1;
dead:
	strl_copy(status, "4.4.2", 16);
	strl_copy(why, sc->err, whysz);
	return -1;
}

/* smtpc_auth_send - one line of the SASL exchange, then wipe it from the
 * output buffer. */
static int
smtpc_auth_send(struct smtpc *sc, struct smtp_reply *r, const char *a,
    const char *b)
{
	struct sbuf	*out = sc->conn->out;
	int		 rc = -1;

	sbuf_cat(out, a);
	sbuf_cat(out, b);
	sbuf_cat(out, "\r\n");
	if (smtpc_flush(sc, sc->t_cmd, "AUTH") == 0)
		rc = smtpc_read_reply(sc, sc->t_cmd, "AUTH", r, NULL);
	explicit_bzero(out->s, out->cap);
	return rc;
}

/* smtpc_reserve - room for n bytes in an empty b, so that a secret put
 * there later is never left behind by a realloc. */
static void
smtpc_reserve(struct sbuf *b, size_t n)
{
	if (b->len == 0 && b->cap <= n) {
		sbuf_catf(b, "%*s", (int)n, "");
		sbuf_reset(b);
	}
}

/* smtpc_b64 - base64 of s into b (reset first). */
static void
smtpc_b64(struct sbuf *b, const void *s, size_t n)
{
	if (b->len > 0)
		explicit_bzero(b->s, b->len);
	sbuf_reset(b);
	smtp_b64_encode(s, n, b);
}

/*
 * smtpc_auth - AUTH PLAIN (or LOGIN) with the configured credentials,
 * only under TLS (RFC 4954 §4) whose certificate was verified (against
 * tls_ca_file or the system's store) for the name we were given: under
 * "may" an active attacker, or a spoofed MX for a relayhost given without
 * brackets, would otherwise collect the password. Without that the mail
 * waits (4.7.5) and nothing is sent, whether or not AUTH is offered: the
 * hop is one we must authenticate to. A verified server that offers no
 * AUTH gets none. 0, or -1 with status and why; refusals stay temporary
 * (a credentials mistake must not bounce mail), as Postfix's
 * smtp_sasl_auth_soft_bounce.
 */
static int
smtpc_auth(struct smtpc *sc, const struct smtpc_opts *o, char status[16],
    char *why, size_t whysz)
{
	struct smtp_reply	 r;
	struct sbuf		*b = NULL, *raw = NULL;
	const char		*pass;
	size_t			 ul, pl;
	int			 rc = -1;

	if (o->auth_user == NULL || o->auth_user[0] == '\0')
		return 0;
	pass = o->auth_pass != NULL ? o->auth_pass : "";
	if (sc->conn->ssl == NULL) {
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "no TLS with host %s (%s); AUTH not sent",
		    sc->peer, o->tls == CONF_TLS_NONE ? "TLS is off for this "
		    "hop" : (sc->ext & SMTPC_X_STARTTLS) ? "STARTTLS was "
		    "refused" : "STARTTLS is not offered");
		return -1;
	}
	if (!sc->tls_verified) {
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "certificate of host %s not verified for "
		    "%s: %s; AUTH not sent", sc->peer, sc->tls_name,
		    sc->tls_vr != X509_V_OK ?
		    X509_verify_cert_error_string(sc->tls_vr) :
		    "no certificate");
		return -1;
	}
	if (!(sc->ext & SMTPC_X_AUTH)) {
		log_info("%s: AUTH is not offered: delivering without it",
		    sc->peer);
		return 0;
	}
	if (!(sc->ext & (SMTPC_X_AUTH_PLAIN | SMTPC_X_AUTH_LOGIN))) {
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "cannot authenticate to %s: neither "
		    "PLAIN nor LOGIN is offered", sc->peer);
		return -1;
	}
	ul = strlen(o->auth_user);
	pl = strlen(pass);
	b = sbuf_new();
	raw = sbuf_new();
	smtpc_reserve(raw, ul + pl + 3);
	smtpc_reserve(b, (ul + pl + 3) * 4 / 3 + 8);
	smtpc_reserve(sc->conn->out, (ul + pl + 3) * 4 / 3 + 32);
	if (sc->ext & SMTPC_X_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, o->auth_user, ul);
		sbuf_catc(raw, '\0');
		sbuf_catn(raw, pass, pl);
		smtpc_b64(b, raw->s, raw->len);
		if (b->len + 13 <= SMTPC_CMD_MAX) {
			if (smtpc_auth_send(sc, &r, "AUTH PLAIN ", b->s) != 0)
				goto dead;
		} else {
			/* Too long for one command line: after the 334. */
			if (smtpc_auth_send(sc, &r, "AUTH PLAIN", "") != 0)
				goto dead;
			if (r.code == 334 &&
			    smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
	} else {
		if (smtpc_auth_send(sc, &r, "AUTH LOGIN", "") != 0)
			goto dead;
		if (r.code == 334) {
			smtpc_b64(b, o->auth_user, ul);
			if (smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
		if (r.code == 334) {
			smtpc_b64(b, pass, pl);
			if (smtpc_auth_send(sc, &r, b->s, "") != 0)
				goto dead;
		}
	}
	if (r.code == 334) {
		/* More than the mechanism has: cancel (RFC 4954 §4). */
		if (smtpc_auth_send(sc, &r, "*", "") != 0)
			goto dead;
		r.code = 0;
	}
	if (r.code / 100 == 2) {
		rc = 0;
		goto done;
	}
	if (r.code == 0) {
		strl_copy(status, "4.7.0", 16);
		bsnprintf(why, whysz, "SASL authentication with %s failed: "
		    "unexpected challenge", sc->peer);
		sc->state = SMTPC_S_DEAD;
		goto done;
	}
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	smtp_reply_status(&r, status);
	status[0] = '4';
	bsnprintf(why, whysz, "SASL authentication failed; server %s said: %s",
	    sc->peer, r.text);
	goto done;
dead:
	strl_copy(status, "4.4.2", 16);
	strl_copy(why, sc->err, whysz);
done:
	explicit_bzero(b->s, b->cap);
	explicit_bzero(raw->s, raw->cap);
	sbuf_free(b);
	sbuf_free(raw);
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
		strl_copy(status, "4.4.2", 16);
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
			double	ts = clock_mono_secs();

			if (smtpc_starttls(sc, o, status, why, whysz) == 0 &&
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

/* ------------------------------------------------------------------ */
/* One transaction. */

/* smtpc_set - a recipient's result. */
static void
smtpc_set(struct smtpc_rcpt *rc, uint8_t *st, int code, const char *status,
    const char *text)
{
	rc->code = code;
	strl_copy(rc->status, status, sizeof(rc->status));
	strl_clean(rc->reply, sizeof(rc->reply), text, QUEUE_REPLY_MAX);
	*st = SMTPC_R_FINAL;
}

/* smtpc_set_all - the same result for every recipient in `which` state
 * (or every one not final, for which = -1). */
static void
smtpc_set_all(struct smtpc_msg *m, uint8_t *st, int which, int code,
    const char *status, const char *text)
{
	size_t	i;

	for (i = 0; i < m->nrcpt; i++)
		if (which < 0 ? st[i] != SMTPC_R_FINAL : st[i] == which)
			smtpc_set(&m->rcpt[i], &st[i], code, status, text);
}

/* smtpc_set_reply - a reply's result for every recipient in `which`. */
static void
smtpc_set_reply(struct smtpc_msg *m, uint8_t *st, int which,
    const struct smtp_reply *r)
{
	char	status[16];
	int	code = r->code;

	smtp_reply_status(r, status);
	if (code / 100 == 3) {
		code = 0;		/* not a result: retry */
		status[0] = '4';
	}
	smtpc_set_all(m, st, which, code, status, r->text);
}

/* smtpc_has_8bit - any octet >= 0x80 (a UTF-8 address)? */
static bool
smtpc_has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* smtpc_xtext_ok - an ENVID or ORCPT that can go on a command line as it
 * is: printable ASCII, no space (it was checked when received; this only
 * makes sure nothing else can ride along). */
static bool
smtpc_xtext_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

/* smtpc_addr_ok - no CR, LF or NUL can reach a command line. */
static bool
smtpc_addr_ok(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/*
 * smtpc_body - the message after 354, then CRLF.CRLF, written in blocks
 * of SMTPC_BLOCK with data_timeout each. 0; -1 when the connection died;
 * -2 when the message could not be read here (then nothing ends the data:
 * the connection must be dropped so that no partial message is taken).
 */
static int
smtpc_body(struct smtpc *sc, struct smtpc_msg *m)
{
	struct smtp_dot	 d;
	struct sbuf	*out = sc->conn->out;
	const char	*data;
	size_t		 len;

	smtp_dot_begin(&d);

	for (;;) {
		data = NULL;
		len = 0;
		if (m->body(m->body_arg, &data, &len) != 0)
			return -2;
		if (len == 0)
			break;
		smtp_dot_stuff(&d, out, data, len);
		if (out->len >= SMTPC_BLOCK &&
		    smtpc_flush(sc, sc->t_data, "message content") != 0)
			return -1;
	}
	smtp_dot_end(&d, out);
	return smtpc_flush(sc, sc->t_data, "end of data");
}

/* smtpc_rset - end a transaction that did not end with the dot. Anything
 * but 250 makes the connection unusable. */
static void
smtpc_rset(struct smtpc *sc)
{
	struct smtp_reply	r;

	if (sc->state != SMTPC_S_OK)
		return;
	if (smtpc_command(sc, "RSET", &r, NULL, "RSET") != 0)
		return;
	if (r.code / 100 != 2)
		sc->state = r.code == 421 ? SMTPC_S_DEAD : SMTPC_S_DONE;
}

/* smtpc_mail_line - MAIL FROM with the parameters this server takes. */
static void
smtpc_mail_line(struct smtpc *sc, const struct smtpc_msg *m, bool utf8)
{
	struct sbuf	*o = sc->conn->out;

	sbuf_catf(o, "MAIL FROM:<%s>", m->sender != NULL ? m->sender : "");
	if (sc->ext & SMTPC_X_SIZE)
		sbuf_catf(o, " SIZE=%llu", (unsigned long long)m->size);
	if ((m->flags & QMSG_F_8BITMIME) && (sc->ext & SMTPC_X_8BITMIME))
		sbuf_cat(o, " BODY=8BITMIME");
	if (utf8)
		sbuf_cat(o, " SMTPUTF8");
	/* RFC 3461 §5.2.1: passed on unchanged, only to a DSN server. */
	if (sc->ext & SMTPC_X_DSN) {
		if (m->flags & QMSG_F_RET_FULL)
			sbuf_cat(o, " RET=FULL");
		else if (m->flags & QMSG_F_RET_HDRS)
			sbuf_cat(o, " RET=HDRS");
		if (smtpc_xtext_ok(m->envid))
			sbuf_catf(o, " ENVID=%s", m->envid);
	}
	sbuf_cat(o, "\r\n");
}

static void
smtpc_rcpt_line(struct smtpc *sc, const struct smtpc_rcpt *rc)
{
	struct sbuf	*o = sc->conn->out;
	const char	*sep = "=";

	sbuf_catf(o, "RCPT TO:<%s>", rc->addr);
	if (sc->ext & SMTPC_X_DSN) {
		if (rc->notify & QRCPT_NOTIFY_NEVER)
			sbuf_cat(o, " NOTIFY=NEVER");
		else if (rc->notify != 0) {
			sbuf_cat(o, " NOTIFY");
			if (rc->notify & QRCPT_NOTIFY_SUCCESS) {
				sbuf_catf(o, "%sSUCCESS", sep);
				sep = ",";
			}
			if (rc->notify & QRCPT_NOTIFY_FAILURE) {
				sbuf_catf(o, "%sFAILURE", sep);
				sep = ",";
			}
			if (rc->notify & QRCPT_NOTIFY_DELAY)
				sbuf_catf(o, "%sDELAY", sep);
		}
		/* Byte for byte, case and xtext as received (§4.2). */
		if (smtpc_xtext_ok(rc->orcpt))
			sbuf_catf(o, " ORCPT=%s", rc->orcpt);
	}
	sbuf_cat(o, "\r\n");
}

/* smtpc_refuse - every recipient gets our own refusal, with the code a
 * server would have used; nothing is sent. */
static int
smtpc_refuse(struct smtpc_msg *m, uint8_t *st, int code, const char *status,
    const char *text)
{
	smtpc_set_all(m, st, -1, code, status, text);
	free(st);
	return 0;
}

int
smtpc_send(struct smtpc *sc, struct smtpc_msg *m)
{
	struct smtp_reply	 r;
	char			 text[QUEUE_REPLY_MAX + 1], status[16];
	uint8_t			*st, *sent;
	size_t			 i, nacc = 0, nsend = 0;
	bool			 pipe, utf8, mail_ok = false;
	int			 rc, code;

	st = xcalloc(m->nrcpt > 0 ? m->nrcpt : 1, 2);
	sent = st + (m->nrcpt > 0 ? m->nrcpt : 1);
	for (i = 0; i < m->nrcpt; i++) {
		m->rcpt[i].code = 0;
		m->rcpt[i].status[0] = '\0';
		m->rcpt[i].reply[0] = '\0';
	}
	if (sc == NULL || sc->state != SMTPC_S_OK) {
		smtpc_set_all(m, st, -1, 0, "4.4.2", sc != NULL &&
		    sc->err[0] != '\0' ? sc->err : "connection not usable");
		free(st);
		return -1;
	}
	if (m->nrcpt == 0) {
		free(st);
		return 0;
	}

	/* What this server cannot take is refused before a word is sent. */
	if (!smtpc_addr_ok(m->sender))
		return smtpc_refuse(m, st, 553, "5.1.7",
		    "bad sender address");
	utf8 = (m->flags & QMSG_F_SMTPUTF8) || smtpc_has_8bit(m->sender);
	for (i = 0; i < m->nrcpt; i++) {
		if (!smtpc_addr_ok(m->rcpt[i].addr))
			smtpc_set(&m->rcpt[i], &st[i], 553, "5.1.3",
			    "bad recipient address");
		else if (smtpc_has_8bit(m->rcpt[i].addr))
			utf8 = true;
	}
	if (utf8 && !(sc->ext & SMTPC_X_SMTPUTF8)) {
		/* RFC 6531 §3.2: no UTF-8 address to such a server. */
		bsnprintf(text, sizeof(text), "message requires SMTPUTF8, but "
		    "host %s does not support SMTPUTF8", sc->peer);
		return smtpc_refuse(m, st, 550, "5.6.7", text);
	}
	if ((m->flags & QMSG_F_8BITMIME) && !(sc->ext & SMTPC_X_8BITMIME)) {
		/* RFC 6152 §3: no 8-bit octets; we do not convert. */
		bsnprintf(text, sizeof(text), "message has 8-bit content, but "
		    "host %s does not support 8BITMIME: conversion required "
		    "but not supported", sc->peer);
		return smtpc_refuse(m, st, 554, "5.6.3", text);
	}
	if ((sc->ext & SMTPC_X_SIZE) && sc->size_max > 0 &&
	    m->size > sc->size_max) {
		/* RFC 1870 §7: compare before trying. */
		bsnprintf(text, sizeof(text), "message size %llu exceeds size "
		    "limit %llu of server %s", (unsigned long long)m->size,
		    (unsigned long long)sc->size_max, sc->peer);
		return smtpc_refuse(m, st, 552, "5.3.4", text);
	}
	for (i = 0; i < m->nrcpt; i++)
		if ((sent[i] = st[i] != SMTPC_R_FINAL))
			nsend++;
	if (nsend == 0) {
		free(st);
		return 0;
	}

	/*
	 * MAIL, RCPT... and DATA: one group with PIPELINING (DATA last,
	 * RFC 2920 §3.1), else one at a time. Replies are taken in order,
	 * by count.
	 */
	pipe = (sc->ext & SMTPC_X_PIPELINING) != 0;
	smtpc_mail_line(sc, m, utf8);
	if (pipe) {
		for (i = 0; i < m->nrcpt; i++)
			if (sent[i])
				smtpc_rcpt_line(sc, &m->rcpt[i]);
		smtpc_cmd(sc, "DATA");
	}
	if (smtpc_flush(sc, sc->t_cmd, "MAIL FROM") != 0 ||
	    smtpc_read_reply(sc, sc->t_cmd, "MAIL FROM", &r, NULL) != 0)
		goto dead;
	if (r.code / 100 == 2)
		mail_ok = true;
	else {
		/* Every recipient gets the MAIL refusal (never cached,
		 * RFC 5321 §4.5.4.1). */
		smtpc_set_reply(m, st, -1, &r);
		if (r.code / 100 == 3)
			smtpc_die(sc, "unexpected reply to MAIL FROM");
		if (r.code == 421)
			sc->state = SMTPC_S_DEAD;
		if (sc->state != SMTPC_S_OK)
			goto out;
		if (!pipe)
			goto rset;
	}
	for (i = 0; i < m->nrcpt; i++) {
		if (!sent[i])
			continue;
		if (!pipe) {
			smtpc_rcpt_line(sc, &m->rcpt[i]);
			if (smtpc_flush(sc, sc->t_cmd, "RCPT TO") != 0)
				goto dead;
		}
		if (smtpc_read_reply(sc, sc->t_cmd, "RCPT TO", &r, NULL) != 0)
			goto dead;
		if (r.code == 421) {
			smtpc_set_reply(m, st, -1, &r);
			sc->state = SMTPC_S_DEAD;
			goto out;
		}
		if (!mail_ok)
			continue;	/* 503s after a refused MAIL */
		if (r.code / 100 == 2) {
			st[i] = SMTPC_R_ACCEPTED;
			nacc++;
			continue;
		}
		smtp_reply_status(&r, status);
		code = r.code;
		if (code == 452 && r.status[0] == '\0')
			strl_copy(status, "4.5.3", sizeof(status));
		else if (code == 552) {
			/* RFC 5321 §4.5.3.1.10: 552 to RCPT is "too many
			 * recipients" more often than not: a 452, as
			 * Postfix takes it. */
			code = 452;
			status[0] = '4';
			if (r.status[0] == '\0')
				strl_copy(status, "4.5.3", sizeof(status));
		} else if (code / 100 == 3) {
			code = 0;		/* nonsense: retry */
			status[0] = '4';
		}
		smtpc_set(&m->rcpt[i], &st[i], code, status, r.text);
	}

	if (!pipe) {
		if (!mail_ok)
			goto rset;
		if (nacc == 0)
			goto rset;
		smtpc_cmd(sc, "DATA");
		if (smtpc_flush(sc, sc->t_cmd, "DATA") != 0)
			goto dead;
	}
	if (smtpc_read_reply(sc, sc->t_data, "DATA", &r, NULL) != 0)
		goto dead;
	if (r.code == 421) {
		smtpc_set_reply(m, st, -1, &r);
		sc->state = SMTPC_S_DEAD;
		goto out;
	}
	if (r.code == 354 && (!mail_ok || nacc == 0)) {
		/* RFC 2920 §3.1: nobody to send to, but DATA went through:
		 * a lone dot, and the reply is not anybody's result. */
		struct smtp_dot	d;

		smtp_dot_begin(&d);
		smtp_dot_end(&d, sc->conn->out);
		if (smtpc_flush(sc, sc->t_data, "end of data") != 0 ||
		    smtpc_read_reply(sc, sc->t_dot, "end of data", &r,
		    NULL) != 0)
			goto dead;
		if (r.code == 421) {
			sc->state = SMTPC_S_DEAD;
			goto out;
		}
		goto rset;
	}
	if (r.code != 354) {
		/* DATA refused: the accepted recipients get its reply. */
		if (r.code / 100 == 3 || r.code / 100 == 2) {
			/* out of step: nothing more on this connection */
			smtp_reply_status(&r, status);
			status[0] = '4';
			smtpc_set_all(m, st, SMTPC_R_ACCEPTED, 0, status,
			    r.text);
			sc->state = SMTPC_S_DEAD;
			strl_copy(sc->err, "unexpected reply to DATA",
			    sizeof(sc->err));
			goto out;
		}
		smtpc_set_reply(m, st, SMTPC_R_ACCEPTED, &r);
		goto rset;
	}
	if ((rc = smtpc_body(sc, m)) == -2) {
		smtpc_set_all(m, st, SMTPC_R_ACCEPTED, 0, "4.3.0",
		    "local error reading the queued message");
		smtpc_die(sc, "local error reading the queued message");
		goto out;
	}
	if (rc != 0 ||
	    smtpc_read_reply(sc, sc->t_dot, "end of data", &r, NULL) != 0)
		goto dead;
	/* The final dot's reply is every accepted recipient's. */
	smtp_reply_status(&r, status);
	code = r.code;
	if (code / 100 == 3) {
		code = 0;		/* a 3xx here is nonsense: retry */
		status[0] = '4';
	}
	smtpc_set_all(m, st, SMTPC_R_ACCEPTED, code, status, r.text);
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	goto out;
rset:
	smtpc_rset(sc);
	goto out;
dead:
	/* RFC 5321 §3.8: a lost connection is a 451 for whatever has no
	 * final answer yet. */
	smtpc_set_all(m, st, -1, 0, "4.4.2", sc->err);
out:
	/* Anything still without a result (cannot happen, but never leave
	 * a recipient "not tried" after a transaction). */
	smtpc_set_all(m, st, -1, 0, "4.4.2", sc->state == SMTPC_S_OK ?
	    "no reply" : sc->err[0] != '\0' ? sc->err : "connection closed");
	free(st);
	return sc->state == SMTPC_S_OK ? 0 : -1;
}

const char *
smtpc_peer(const struct smtpc *sc)
{
	return sc != NULL ? sc->peer : "";
}

double
smtpc_tls_time(const struct smtpc *sc)
{
	return sc != NULL && sc->tls_s > 0 ? sc->tls_s : 0;
}

const char *
smtpc_tls(const struct smtpc *sc)
{
	if (sc == NULL || sc->conn == NULL || sc->conn->ssl == NULL)
		return "";
	return sc->conn->tls_info;
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

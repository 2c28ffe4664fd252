/*
 * smtpd_session.c - one SMTP session: the command table, the state
 * machine, DATA, STARTTLS and AUTH. MAIL and RCPT parameters are parsed in
 * smtpd_param.c, the relay decision is smtpd_check.c's.
 *
 * Every reply carries an enhanced status code (RFC 2034) but the 220
 * greeting, the HELO and EHLO replies, 334 and 354. Replies are queued and
 * go out when the input in hand has been processed, so a pipelined group
 * gets its replies in one write (RFC 2920 §3.2). A client that pipelines
 * where it may not (before the greeting, after a synchronising command
 * such as EHLO or DATA, or at all without PIPELINING) is told "554 5.5.0
 * protocol synchronization" and dropped, as Postfix's
 * smtpd_forbid_unauth_pipelining does. STARTTLS is the exception: input
 * pipelined after it is discarded (RFC 3207 §6).
 *
 * DATA accepts only CRLF line ends: a bare LF or CR, a NUL, an over-long
 * line or too many Received: fields make the message refused, but only
 * after reading up to the real CRLF.CRLF, so nothing after a smuggled
 * "<LF>.<LF>" is ever taken as a command.
 *
 * BDAT (RFC 3030) takes the content in chunks of a stated size, with no
 * dot-stuffing and no end marker, through the same checks (bare CR or LF,
 * NUL, line length, Received: count, message_size_limit over all the
 * chunks), spool and commit as DATA: the 250 to the LAST chunk comes
 * after the commit, as the one after DATA's dot. A chunk that cannot be
 * taken (no transaction, a refused message, a bad LAST) still has its
 * octets read and thrown away (RFC 3030 §2), so they are never commands;
 * a size that cannot be read leaves nothing to go by, and the session
 * ends. BODY=BINARYMIME content is not lines: only its size is checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etrn_int.h"
#include "route_policy.h"
#include "smtpd_int.h"

#define SMTPD_SYNC_ERROR	"554 5.5.0 Error: SMTP protocol synchronization"
#define SMTPD_AUTH_LINE_MAX	12288	/* RFC 4954 §4 */
#define SMTPD_AUTH_FAILURES_MAX	3	/* RFC 4954 §9: at least 3 */
#define SMTPD_SPOOL_WRITE	(64 * 1024)
/* A BDAT size of at most this many digits is below 2^64: read without
 * overflow, and still far over any message_size_limit. */
#define SMTPD_BDAT_DIGITS	19
#define SMTPD_BDAT_SYNTAX	"501 5.5.4 Syntax: BDAT count [LAST]"

static void	smtpd_session_reset(struct smtpd_session *);

void
smtpd_session_reply(struct smtpd_session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	sbuf_vcatf(s->conn->out, fmt, ap);
	va_end(ap);
	sbuf_cat(s->conn->out, "\r\n");
	if (fmt[0] == '4' || fmt[0] == '5')
		s->errors++;
}

/*
 * smtpd_session_full - a message was refused for want of room. A pull
 * (postern pull: the site asked for its mail) ends there: 421 to the
 * provider's next command, so that it keeps the rest rather than send
 * each whole only to hear 452 again. A listener's client decides itself.
 */
static void
smtpd_session_full(struct smtpd_session *s)
{
	s->srv->nfull++;
	if (s->srv->pull != NULL)
		s->full_close = true;
}

static void
smtpd_session_close(struct smtpd_session *s, const char *why)
{
	if (why != NULL)
		log_info("client=%s, disconnect (%s)", s->client, why);
	s->state = SMTPD_S_CLOSE;
}

struct smtpd_session *
smtpd_session_new(struct smtpd_server *srv, int fd,
    const struct sockaddr_storage *ss)
{
	return smtpd_session_adopt(srv, smtp_conn_new(fd), ss);
}

struct smtpd_session *
smtpd_session_adopt(struct smtpd_server *srv, struct smtp_conn *conn,
    const struct sockaddr_storage *ss)
{
	struct smtpd_session	*s = xcalloc(1, sizeof(*s));
	const void		*a;
	char			 peek;
	int			 fd = conn->fd;

	s->srv = srv;
	s->conn = conn;
	s->tls = conn->ssl != NULL;
	s->spool_fd = -1;
	s->serial = ++srv->serial;
	if (ss->ss_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		inet_ntop(AF_INET6, a, s->addr, sizeof(s->addr));
	} else {
		a = &((const struct sockaddr_in *)ss)->sin_addr;
		inet_ntop(AF_INET, a, s->addr, sizeof(s->addr));
	}
	bsnprintf(s->client, sizeof(s->client), "unknown[%s]", s->addr);
	s->mynet = conf_net_match(srv->conf->mynetworks,
	    srv->conf->nmynetworks, (const struct sockaddr *)ss);
	s->state = SMTPD_S_CMD;
	smtpd_session_arm(s, srv->conf->command_timeout);
	/* A client that talks before the greeting is not waiting for
	 * replies: refuse it now (RFC 5321 §4.3.1: the greeting first). */
	if (smtp_conn_pending(conn) > 0 || (conn->ssl == NULL &&
	    recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0)) {
		smtpd_session_reply(s, SMTPD_SYNC_ERROR);
		smtpd_session_close(s, "command sent before the greeting");
		return s;
	}
	sbuf_catf(s->conn->out, "220 %s ESMTP postern\r\n",
	    srv->conf->myhostname);
	return s;
}

static void
smtpd_session_unspool(struct smtpd_session *s)
{
	if (s->spool_fd >= 0) {
		close(s->spool_fd);
		unlink(s->spool_path);
		s->spool_fd = -1;
	}
	sbuf_free(s->body);
	s->body = NULL;
}

/* smtpd_session_rcpt_clear - forget the transaction's recipients (the
 * array stays, for the next). */
static void
smtpd_session_rcpt_clear(struct smtpd_session *s)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpt[i].addr);
		free(s->rcpt[i].orcpt);
	}
	s->nrcpt = 0;
	free(s->qrcpt);
	s->qrcpt = NULL;
}

void
smtpd_session_free(struct smtpd_session *s)
{
	if (s == NULL)
		return;
	smtpd_session_unspool(s);
	atrn_free(s);
	smtp_conn_free(s->conn);
	auth_sasl_free(s->sasl);
	free(s->auth_user);
	smtpd_session_rcpt_clear(s);
	free(s->rcpt);
	etrn_job_free(s->etrn);
	free(s);
}

static void
smtpd_session_reset(struct smtpd_session *s)
{
	s->in_mail = false;
	s->sender[0] = '\0';
	s->mflags = 0;
	s->smtputf8 = false;
	s->envid[0] = '\0';
	smtpd_session_rcpt_clear(s);
	s->data_err = NULL;
	s->bdat = false;
	s->bdat_failed = false;
	smtpd_session_unspool(s);
}

/* ------------------------------------------------------------------ */
/* Commands. */

/* smtpd_cmd_hello - EHLO (esmtp) or HELO. */
static void
smtpd_cmd_hello(struct smtpd_session *s, char *arg, bool esmtp)
{
	const struct conf	*c = s->srv->conf;
	bool			 plain_ok;

	if (arg == NULL || *arg == '\0' || strchr(arg, ' ') != NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	smtpd_session_reset(s);
	strl_clean(s->helo, sizeof(s->helo), arg, sizeof(s->helo) - 1);
	if (!s->local)		/* "local[uid N]" is the kernel's word */
		bsnprintf(s->client, sizeof(s->client), "%s[%s]", s->helo,
		    s->addr);
	s->esmtp = esmtp;
	if (!esmtp) {
		smtpd_session_reply(s, "250 %s", c->myhostname);
		return;
	}
	{
		const char	*ext[16];
		char		 size[48], authl[80];
		size_t		 n = 0, i;

		bsnprintf(size, sizeof(size), "SIZE %llu",
		    (unsigned long long)c->message_size_limit);
		/* The ODMR port takes no mail (RFC 2645 §5.4). */
		if (!s->odmr) {
			ext[n++] = "PIPELINING";
			ext[n++] = size;
			ext[n++] = "8BITMIME";
			ext[n++] = "SMTPUTF8";
			ext[n++] = "CHUNKING";
			ext[n++] = "BINARYMIME";
		}
		ext[n++] = "ENHANCEDSTATUSCODES";
		if (!s->odmr)
			ext[n++] = "DSN";
		if (!s->odmr && s->srv->pull == NULL)
			ext[n++] = "ETRN";
		if (s->srv->tls != NULL && !s->tls)
			ext[n++] = "STARTTLS";
		if (s->srv->auth != NULL && s->auth_user == NULL) {
			/* PLAIN and LOGIN only under TLS (RFC 4954 §4). */
			plain_ok = s->tls || c->auth_plaintext;
			bsnprintf(authl, sizeof(authl), "AUTH %sCRAM-MD5 "
			    "SCRAM-SHA-256", plain_ok ? "PLAIN LOGIN " : "");
			ext[n++] = authl;
		}
		if (s->odmr)
			ext[n++] = "ATRN";
		sbuf_catf(s->conn->out, "250-%s\r\n", c->myhostname);
		for (i = 0; i < n; i++)
			sbuf_catf(s->conn->out, "250%c%s\r\n",
			    i + 1 == n ? ' ' : '-', ext[i]);
	}
}

static void
smtpd_cmd_mail(struct smtpd_session *s, char *arg)
{
	const struct conf	*c = s->srv->conf;
	struct smtpd_mail_param	 mp;
	struct smtp_addr	 a;
	const char		*end, *why;
	char			 idn[SMTP_DOMAIN_MAX + 1];
	int			 rc, flags;

	if (s->helo[0] == '\0') {
		smtpd_session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (arg == NULL || strncasecmp(arg, "FROM:", 5) != 0) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	arg += 5;
	while (*arg == ' ')
		arg++;
	/* Parameters first: SMTPUTF8 decides how the path is read. */
	flags = SMTP_ADDR_NULL_OK;
	if (smtpd_param_mail_utf8(arg))
		flags |= SMTP_ADDR_UTF8;
	rc = smtp_addr_parse(arg, strlen(arg), flags, &a, &end);
	if (rc != 0) {
		if (rc == SMTP_ADDR_E_UTF8)
			smtpd_session_reply(s, "550 5.6.7 Must use SMTPUTF8 "
			    "for a non-ASCII sender address");
		else if (rc == SMTP_ADDR_E_LONG)
			smtpd_session_reply(s, "501 5.1.7 Sender address "
			    "too long");
		else
			smtpd_session_reply(s, "501 5.1.7 Bad sender address "
			    "syntax (%s)", smtp_addr_strerror(rc));
		return;
	}
	if (*end != '\0' && *end != ' ') {
		smtpd_session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	/* A U-label domain that has no A-label form can receive no DSN
	 * and never go to a server without SMTPUTF8: refused now. */
	if (smtp_idn_has8(smtp_addr_domain(&a)) &&
	    smtp_idn_to_ascii(smtp_addr_domain(&a), idn, sizeof(idn),
	    &why) != 0) {
		log_info("client=%s, reject MAIL from=<%s>: not a valid "
		    "international domain name (%s)", s->client, a.addr, why);
		smtpd_session_reply(s, "553 5.1.8 <%s>: Sender address "
		    "rejected: domain is not a valid international domain "
		    "name (%s)", a.addr, why);
		return;
	}
	/* The parameters follow the path, in the same buffer. */
	if (smtpd_param_mail(s, arg + (end - arg), &mp) != 0)
		return;
	if (mp.has_size && mp.size > c->message_size_limit) {
		smtpd_session_reply(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
		return;
	}
	strl_copy(s->sender, a.addr, sizeof(s->sender));
	s->in_mail = true;
	s->bdat_failed = false;		/* a new transaction */
	smtpd_session_rcpt_clear(s);
	smtpd_session_reply(s, "250 2.1.0 Ok");
}

static void
smtpd_cmd_rcpt(struct smtpd_session *s, char *arg)
{
	const struct conf	*c = s->srv->conf;
	struct smtpd_rcpt_param	 rp;
	struct smtp_addr	 a;
	struct smtpd_rcpt	*r;
	const char		*end, *why;
	char			 idn[SMTP_DOMAIN_MAX + 1];
	size_t			 i;
	int			 rc, flags;

	if (!s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (arg == NULL || strncasecmp(arg, "TO:", 3) != 0) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	arg += 3;
	while (*arg == ' ')
		arg++;
	flags = SMTP_ADDR_POSTMASTER_OK | (s->smtputf8 ? SMTP_ADDR_UTF8 : 0);
	if ((rc = smtp_addr_parse(arg, strlen(arg), flags, &a, &end)) != 0) {
		if (rc == SMTP_ADDR_E_UTF8)
			smtpd_session_reply(s, "553 5.6.7 Must use SMTPUTF8 "
			    "for a non-ASCII recipient address");
		else
			smtpd_session_reply(s, "501 5.1.3 Bad recipient "
			    "address syntax (%s)", smtp_addr_strerror(rc));
		return;
	}
	if (*end != '\0' && *end != ' ') {
		smtpd_session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	/* A U-label domain libidn2 refuses has no A-labels: DNS could
	 * never find it, and no relay rule can name it. */
	if (smtp_idn_has8(smtp_addr_domain(&a)) &&
	    smtp_idn_to_ascii(smtp_addr_domain(&a), idn, sizeof(idn),
	    &why) != 0) {
		log_info("client=%s, reject RCPT from=<%s>, to=<%s>: not a "
		    "valid international domain name (%s)", s->client,
		    s->sender, a.addr, why);
		smtpd_session_reply(s, "553 5.1.2 <%s>: Recipient address "
		    "rejected: domain is not a valid international domain "
		    "name (%s)", a.addr, why);
		return;
	}
	if (smtpd_param_rcpt(s, arg + (end - arg), &rp) != 0)
		return;
	/* <Postmaster> is ours (RFC 5321 §4.1.1.3). */
	if (smtp_addr_domain(&a)[0] == '\0') {
		if (!bsnprintf(a.addr, sizeof(a.addr), "postmaster@%s",
		    c->myhostname)) {
			smtpd_session_reply(s, "501 5.1.3 Address too long");
			return;
		}
		a.local_len = strlen("postmaster");
	}
	switch (smtpd_check_rcpt(s, &a)) {
	case SMTPD_OK:
		break;
	case SMTPD_REJECT_UNLISTED:
		log_info("client=%s, reject RCPT <%s>: not in "
		    "relay_recipients", s->client, a.addr);
		smtpd_session_reply(s, "550 5.1.1 <%s>: Recipient address "
		    "rejected: User unknown in relay recipient table", a.addr);
		return;
	case SMTPD_REJECT_RELAY:
		log_info("client=%s, reject RCPT from=<%s>, to=<%s>: relay "
		    "access denied", s->client, s->sender, a.addr);
		smtpd_session_reply(s, "554 5.7.1 <%s>: Relay access denied",
		    a.addr);
		return;
	case SMTPD_REJECT_PULL:
		log_info("client=%s, reject RCPT from=<%s>, to=<%s>: not a "
		    "domain this pull takes", s->client, s->sender, a.addr);
		smtpd_session_reply(s, "450 4.7.1 <%s>: Recipient address "
		    "rejected: not a domain this site pulls", a.addr);
		return;
	}
	if ((int)s->nrcpt >= c->max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452, the client sends the rest in
		 * another transaction. */
		smtpd_session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	for (i = 0; i < s->nrcpt; i++)
		/* The same mailbox once: local part exact, domain any case.
		 * strncmp first: a shorter stored address ends (and differs)
		 * before its octet local_len is read. */
		if (strncmp(s->rcpt[i].addr, a.addr, a.local_len) == 0 &&
		    s->rcpt[i].addr[a.local_len] == '@' &&
		    strcasecmp(s->rcpt[i].addr + a.local_len,
		    a.addr + a.local_len) == 0) {
			smtpd_session_reply(s, "250 2.1.5 Ok");	/* once */
			return;
		}
	if (s->nrcpt == s->rcptcap) {
		s->rcptcap = s->rcptcap ? s->rcptcap * 2 : 8;
		s->rcpt = xreallocarray(s->rcpt, s->rcptcap, sizeof(*s->rcpt));
	}
	r = &s->rcpt[s->nrcpt++];
	r->addr = xstrdup(a.addr);
	r->orcpt = rp.orcpt[0] != '\0' ? xstrdup(rp.orcpt) : NULL;
	r->notify = rp.notify;
	smtpd_session_reply(s, "250 2.1.5 Ok");
}

static void
smtpd_data_begin(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	char			 date[64], helo[sizeof(s->helo)];
	char			 forp[QUEUE_ADDR_MAX + 1];
	time_t			 now = clock_now();
	struct tm		 tm;
	const char		*proto;
	size_t			 i;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* RFC 3848 / RFC 6531 §4.3 protocol names. */
	if (s->smtputf8)
		proto = s->tls ? (s->auth_user ? "UTF8SMTPSA" : "UTF8SMTPS") :
		    (s->auth_user ? "UTF8SMTPA" : "UTF8SMTP");
	else if (!s->esmtp)
		proto = "SMTP";
	else
		proto = s->tls ? (s->auth_user ? "ESMTPSA" : "ESMTPS") :
		    (s->auth_user ? "ESMTPA" : "ESMTP");
	s->body = sbuf_new();
	/* The EHLO name is the client's: control bytes are spaces already
	 * (smtpd_cmd_hello); an 8-bit byte becomes '?', as Postfix's
	 * printable() does, so our own header stays ASCII. */
	strl_copy(helo, s->helo, sizeof(helo));
	for (i = 0; helo[i] != '\0'; i++)
		if ((unsigned char)helo[i] > 0x7e)
			helo[i] = '?';
	if (s->local)
		smtpd_local_trace(s, date);	/* as direct enqueue's */
	else {
		sbuf_catf(s->body, "Received: from %s ([%s])\r\n", helo,
		    s->addr);
		if (s->tls)
			sbuf_catf(s->body, "\t(using %s)\r\n",
			    s->conn->tls_info);
		if (s->auth_user != NULL)
			sbuf_catf(s->body, "\t(Authenticated sender: %s)\r\n",
			    s->auth_user);
		sbuf_catf(s->body, "\tby %s (postern) with %s", c->myhostname,
		    proto);
		/* FOR with exactly one path, or none (RFC 5321 §4.4).
		 * With an ASCII local part its domain goes as A-labels:
		 * a message whose only 8-bit is in domains can then still
		 * go to a server without SMTPUTF8 (smtpc_send.c), which
		 * a UTF-8 header of ours would forbid. */
		if (s->nrcpt == 1)
			sbuf_catf(s->body, "\r\n\tfor <%s>",
			    smtp_idn_local_has8(s->rcpt[0].addr) ||
			    smtp_idn_addr_ascii(s->rcpt[0].addr, forp,
			    sizeof(forp), NULL) != 0 ? s->rcpt[0].addr : forp);
		sbuf_catf(s->body, "; %s\r\n", date);
	}
	s->body_len = s->body->len;
	s->trace_len = s->body->len;	/* ours: not the client's size */
	s->prev_crlf = true;
	s->in_headers = true;
	s->skipping = false;
	s->received = 0;
	s->data_err = NULL;
	s->state = SMTPD_S_DATA;
	/* data_timeout is the deadline of the whole message, from the 354
	 * to the dot, not a limit on silence: a client that sends a byte
	 * now and then cannot hold its connection for ever. */
	smtpd_session_arm(s, c->data_timeout);
}

static void
smtpd_cmd_data(struct smtpd_session *s, char *arg)
{
	if (arg != NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->bdat) {
		/* RFC 3030 §2: not both in one transaction. */
		smtpd_session_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (s->mflags & QMSG_F_BINARYMIME) {
		/* RFC 3030 §3: BINARYMIME content goes by BDAT only. */
		smtpd_session_reply(s, "503 5.5.1 Error: BODY=BINARYMIME "
		    "requires BDAT");
		return;
	}
	if (s->nrcpt == 0) {
		smtpd_session_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	smtpd_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_data_begin(s);
}

/* smtpd_spool_write - all of it, or -1 with errno set: a short write (the
 * disk filling up) leaves errno as it was, so write the rest to learn
 * why (ENOSPC: 452 4.3.1, not 451). */
static int
smtpd_spool_write(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* smtpd_data_store - append octets (DATA: a line with its CRLF; BDAT: a
 * run of a chunk) to the body, moving it to a spool file once it passes
 * the threshold. */
static void
smtpd_data_store(struct smtpd_session *s, const char *p, size_t n)
{
	struct smtpd_server	*srv = s->srv;

	sbuf_catn(s->body, p, n);
	s->body_len += n;
	if (s->spool_fd < 0 && s->body->len > SMTPD_SPOOL_THRESHOLD) {
		bsnprintf(s->spool_path, sizeof(s->spool_path), "%s/%ld.%llu",
		    srv->spool_dir, (long)getpid(),
		    (unsigned long long)++srv->spool_seq);
		s->spool_fd = open(s->spool_path, O_RDWR | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (s->spool_fd < 0) {
			log_warn("%s: open %s", __func__, s->spool_path);
			s->data_err = "451 4.3.0 Error: cannot spool the "
			    "message";
			return;
		}
	}
	if (s->spool_fd >= 0 && s->body->len >= SMTPD_SPOOL_WRITE) {
		if (smtpd_spool_write(s->spool_fd, s->body->s,
		    s->body->len) != 0) {
			log_warn("%s: write %s", __func__, s->spool_path);
			s->data_err = errno == ENOSPC ?
			    "452 4.3.1 Error: insufficient system storage" :
			    "451 4.3.0 Error: cannot spool the message";
		}
		sbuf_reset(s->body);
	}
}

static void
smtpd_data_end(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	struct qnew		*n = &s->qn;
	int64_t			 now = (int64_t)clock_now();
	size_t			 i;

	smtpd_session_arm(s, c->command_timeout);
	if (s->data_err == NULL && s->received > c->max_received_headers)
		s->data_err = "554 5.4.6 Error: too many hops (mail loop?)";
	if (s->data_err == NULL && s->spool_fd >= 0 && s->body->len > 0) {
		if (smtpd_spool_write(s->spool_fd, s->body->s,
		    s->body->len) != 0)
			s->data_err = errno == ENOSPC ?
			    "452 4.3.1 Error: insufficient system storage" :
			    "451 4.3.0 Error: cannot spool the message";
		sbuf_reset(s->body);
	}
	if (s->data_err != NULL) {
		log_info("client=%s, reject %s from=<%s>, nrcpt=%zu: %s",
		    s->client, s->bdat ? "BDAT" : "DATA", s->sender, s->nrcpt,
		    s->data_err);
		smtpd_session_reply(s, "%s", s->data_err);
		if (strncmp(s->data_err, "452 4.3.1", 9) == 0)
			smtpd_session_full(s);	/* the spool's disk */
		smtpd_session_reset(s);
		s->state = SMTPD_S_CMD;
		return;
	}
	memset(n, 0, sizeof(*n));
	strl_copy(n->msg.sender, s->sender, sizeof(n->msg.sender));
	strl_copy(n->msg.envid, s->envid, sizeof(n->msg.envid));
	strl_copy(n->msg.client, s->client, sizeof(n->msg.client));
	n->msg.flags = s->mflags;
	free(s->qrcpt);
	s->qrcpt = xcalloc(s->nrcpt, sizeof(*s->qrcpt));
	for (i = 0; i < s->nrcpt; i++) {
		struct qrcpt	*q = &s->qrcpt[i];

		strl_copy(q->addr, s->rcpt[i].addr, sizeof(q->addr));
		if (s->rcpt[i].orcpt != NULL)
			strl_copy(q->orcpt, s->rcpt[i].orcpt,
			    sizeof(q->orcpt));
		route_rcpt_init(c, q, now);
		q->notify = s->rcpt[i].notify;
	}
	n->rcpt = s->qrcpt;
	n->nrcpt = s->nrcpt;
	n->bodylen = (size_t)s->body_len;
	if (s->spool_fd >= 0) {
		n->body = NULL;
		n->body_fd = s->spool_fd;
	} else {
		n->body = s->body->s;
		n->body_fd = -1;
	}
	s->state = SMTPD_S_COMMIT;
	smtpd_commit_submit(s->srv, s);
}

void
smtpd_session_committed(struct smtpd_session *s)
{
	char	id[QUEUE_ID_LEN + 1];

	if (s->qn.rc == 0) {
		queue_id_format(s->qn.msg.id, id);
		log_info("%s: client=%s, from=<%s>, size=%llu, nrcpt=%zu, "
		    "tls=%s, auth=%s", id, s->client, s->sender,
		    (unsigned long long)s->body_len, s->nrcpt,
		    s->tls ? s->conn->tls_info : "none",
		    s->auth_user ? s->auth_user : "none");
		smtpd_session_reply(s, "250 2.0.0 Ok: queued as %s", id);
		s->junk = 0;	/* Postfix: reset after mail is taken */
	} else if (s->qn.rc == QUEUE_E_FULL) {
		log_warnx("client=%s, from=<%s>: queue full: %s", s->client,
		    s->sender, queue_errmsg(s->srv->q));
		smtpd_session_reply(s, "452 4.3.1 Error: insufficient system "
		    "storage");
		smtpd_session_full(s);
	} else {
		log_warnx("client=%s, from=<%s>: cannot queue: %s", s->client,
		    s->sender, queue_errmsg(s->srv->q));
		smtpd_session_reply(s, "451 4.3.0 Error: queue file write "
		    "error");
	}
	smtpd_session_reset(s);
	s->state = SMTPD_S_CMD;
}

/*
 * smtpd_session_data - consume message content up to the end of data.
 * Only whole lines are taken; a line longer than the limit is refused
 * and skipped to its end.
 */
static void
smtpd_session_data(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	size_t			 limit = (size_t)c->line_length_limit;

	while (s->state == SMTPD_S_DATA && smtp_conn_avail(s->conn) > 0) {
		const char	*p = smtp_conn_data(s->conn);
		size_t		 avail = smtp_conn_avail(s->conn), len, clen;
		const char	*lf = memchr(p, '\n', avail);
		bool		 crlf;

		if (lf == NULL) {
			if (avail > limit + 1) {
				if (!s->skipping && s->data_err == NULL)
					s->data_err = "500 5.5.2 Error: "
					    "message line too long (over "
					    "1000 octets)";
				s->skipping = true;
				/* Keep a trailing CR: it may pair with the
				 * next LF. */
				smtp_conn_consume(s->conn, avail - 1);
			}
			return;
		}
		len = (size_t)(lf - p) + 1;
		crlf = len >= 2 && p[len - 2] == '\r';
		clen = crlf ? len - 2 : len - 1;
		if (s->skipping) {
			s->skipping = false;
			s->prev_crlf = crlf;
			smtp_conn_consume(s->conn, len);
			continue;
		}
		/* The one end of data: CRLF "." CRLF (RFC 5321 §4.1.1.4). */
		if (s->prev_crlf && crlf && clen == 1 && p[0] == '.') {
			smtp_conn_consume(s->conn, len);
			smtpd_data_end(s);
			return;
		}
		if (s->data_err == NULL) {
			if (!crlf)
				s->data_err = "550 5.6.0 Error: bare LF in "
				    "message (line ends must be CRLF)";
			else if (memchr(p, '\r', clen) != NULL)
				s->data_err = "550 5.6.0 Error: bare CR in "
				    "message (line ends must be CRLF)";
			else if (memchr(p, '\0', clen) != NULL)
				s->data_err = "550 5.6.0 Error: NUL byte in "
				    "message";
			else if (len - (p[0] == '.') > limit)
				/* Not counting a stuffed dot (RFC 5321
				 * §4.5.3.1.6). */
				s->data_err = "500 5.5.2 Error: message line "
				    "too long (over 1000 octets)";
		}
		if (s->in_headers) {
			if (clen == 0)
				s->in_headers = false;
			else if (clen >= 9 && strncasecmp(p, "Received:",
			    9) == 0)
				s->received++;
		}
		if (s->data_err == NULL) {
			/* Transparency (RFC 5321 §4.5.2): drop one dot. */
			if (p[0] == '.')
				smtpd_data_store(s, p + 1, len - 1);
			else
				smtpd_data_store(s, p, len);
			if (s->body_len - s->trace_len > c->message_size_limit)
				s->data_err = "552 5.3.4 Error: message file "
				    "too big";
		}
		s->prev_crlf = crlf;
		smtp_conn_consume(s->conn, len);
	}
}

/* ------------------------------------------------------------------ */
/* BDAT (RFC 3030). */

/* smtpd_bdat_fail - the first error of the message is the one answered;
 * BINARYMIME content is not lines, and only its size is checked. */
static void
smtpd_bdat_fail(struct smtpd_session *s, const char *why)
{
	if (s->data_err == NULL && !(s->mflags & QMSG_F_BINARYMIME))
		s->data_err = why;
}

/*
 * smtpd_bdat_scan - DATA's checks over octets of a chunk: bare CR, bare
 * LF, NUL, line_length_limit (with the CRLF, as DATA counts), and the
 * Received: fields of the header section. A line may span chunks: where
 * it stands is kept in the session.
 */
static void
smtpd_bdat_scan(struct smtpd_session *s, const char *p, size_t n)
{
	static const char	 rcvd[] = "received:";
	uint64_t		 limit = (uint64_t)s->srv->conf->line_length_limit;
	size_t			 i;

	for (i = 0; i < n; i++) {
		unsigned char	ch = (unsigned char)p[i];

		if (s->bdat_cr) {
			s->bdat_cr = false;
			if (ch == '\n') {
				/* The header section ends at an empty line. */
				if (s->bdat_col == 0)
					s->in_headers = false;
				s->bdat_col = 0;
				s->bdat_hdr = 0;
				continue;
			}
			smtpd_bdat_fail(s, "550 5.6.0 Error: bare CR in message "
			    "(line ends must be CRLF)");
			s->bdat_col++;
			s->bdat_hdr = -1;
		}
		if (ch == '\r') {
			s->bdat_cr = true;
			continue;
		}
		if (ch == '\n') {
			smtpd_bdat_fail(s, "550 5.6.0 Error: bare LF in message "
			    "(line ends must be CRLF)");
			/* A line all the same, for the Received: count. */
			s->bdat_col = 0;
			s->bdat_hdr = 0;
			continue;
		}
		if (ch == '\0')
			smtpd_bdat_fail(s, "550 5.6.0 Error: NUL byte in "
			    "message");
		if (++s->bdat_col + 2 > limit)
			smtpd_bdat_fail(s, "500 5.5.2 Error: message line too "
			    "long (over 1000 octets)");
		if (s->in_headers && s->bdat_hdr >= 0) {
			if ((ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) !=
			    (unsigned char)rcvd[s->bdat_hdr])
				s->bdat_hdr = -1;
			else if (++s->bdat_hdr == (int)sizeof(rcvd) - 1) {
				s->received++;
				s->bdat_hdr = -1;
			}
		}
	}
}

/*
 * smtpd_bdat_chunk_end - all of a chunk's octets are in. A refused one
 * was answered already. An error ends the transaction now (its reply is
 * this chunk's), and the chunks pipelined after it are discarded; the
 * LAST chunk goes to DATA's end: the checks of the whole message, then
 * the commit, whose result is the reply.
 */
static void
smtpd_bdat_chunk_end(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	bool			 last = s->bdat_last;

	s->state = SMTPD_S_CMD;
	if (s->bdat_discard) {
		s->bdat_discard = false;
		return;
	}
	if (last && !(s->mflags & QMSG_F_BINARYMIME)) {
		if (s->bdat_cr)
			smtpd_bdat_fail(s, "550 5.6.0 Error: bare CR in "
			    "message (line ends must be CRLF)");
		else if (s->bdat_col > 0 && s->data_err == NULL)
			/* Stored as DATA stores it: every line ends in
			 * CRLF. */
			smtpd_data_store(s, "\r\n", 2);
	}
	if (last || s->data_err != NULL) {
		smtpd_data_end(s);
		if (!last && s->state == SMTPD_S_CMD)
			s->bdat_failed = true;
		return;
	}
	smtpd_session_reply(s, "250 2.0.0 Ok: %llu octets received",
	    (unsigned long long)(s->body_len - s->trace_len));
	/* Between chunks: a command's timeout, within the message's. */
	smtpd_session_arm(s, c->command_timeout);
	if (s->bdat_deadline < s->deadline)
		s->deadline = s->bdat_deadline;
}

/*
 * smtpd_bdat_read - take the chunk's octets: checked and stored, or
 * thrown away; never more than the chunk's size, so that what follows
 * is read as commands. The body stays within the spool bounds of DATA.
 */
static void
smtpd_bdat_read(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;

	while (s->state == SMTPD_S_BDAT) {
		const char	*p = smtp_conn_data(s->conn);
		size_t		 avail = smtp_conn_avail(s->conn), n;

		if (s->bdat_left == 0) {
			smtpd_bdat_chunk_end(s);
			return;
		}
		if (avail == 0)
			return;
		n = avail < s->bdat_left ? avail : (size_t)s->bdat_left;
		if (!s->bdat_discard && s->data_err == NULL) {
			smtpd_bdat_scan(s, p, n);
			if (s->data_err == NULL && s->body_len - s->trace_len +
			    n > c->message_size_limit)
				s->data_err = "552 5.3.4 Error: message file "
				    "too big";
			if (s->data_err == NULL)
				smtpd_data_store(s, p, n);
		}
		s->bdat_left -= n;
		smtp_conn_consume(s->conn, n);
	}
}

/*
 * smtpd_cmd_bdat - "BDAT size [LAST]" (RFC 3030 §2). The size is read
 * strictly: digits only, at most SMTPD_BDAT_DIGITS of them. Without a
 * size there is nothing to go by, and the octets after the command would
 * be read as commands: the session ends. Otherwise a refused chunk is
 * answered now and its octets discarded; a refusal inside a transaction
 * ends it, and later chunks are discarded (with a 503 that does not count
 * towards max_errors: the client pipelined them in good faith) until the
 * client's RSET.
 */
static void
smtpd_cmd_bdat(struct smtpd_session *s, char *arg)
{
	const struct conf	*c = s->srv->conf;
	const char		*p = arg != NULL ? arg : "", *why = NULL;
	uint64_t		 n = 0;
	size_t			 nd = 0;
	bool			 last = false, counts = true;

	for (; *p >= '0' && *p <= '9'; p++)
		if (++nd <= SMTPD_BDAT_DIGITS)
			n = n * 10 + (uint64_t)(*p - '0');
	if (nd == 0 || nd > SMTPD_BDAT_DIGITS || (*p != '\0' && *p != ' ')) {
		smtpd_session_reply(s, SMTPD_BDAT_SYNTAX);
		smtpd_session_reply(s, "421 4.5.0 %s Error: BDAT without a "
		    "size, closing", c->myhostname);
		smtpd_session_close(s, "BDAT without a readable size");
		return;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		if (strcasecmp(p, "LAST") == 0)
			last = true;
		else
			why = SMTPD_BDAT_SYNTAX;
	}
	if (why != NULL)
		;
	else if (s->bdat_failed) {
		why = "503 5.5.1 Error: BDAT after a refused chunk (send RSET)";
		counts = false;
	} else if (!s->esmtp)
		why = "503 5.5.1 Error: send EHLO first";
	else if (!s->in_mail)
		why = "503 5.5.1 Error: need MAIL command";
	else if (s->nrcpt == 0)
		why = "554 5.5.1 Error: no valid recipients";
	s->bdat_left = n;
	s->bdat_last = last;
	if (why != NULL) {
		smtpd_session_reply(s, "%s", why);
		if (counts)
			s->errors++;
		if (s->in_mail) {
			/* RFC 3030 §2: the transaction is over; the next
			 * chunks must not start a message in its middle. */
			log_info("client=%s, reject BDAT from=<%s>, nrcpt=%zu: "
			    "%s", s->client, s->sender, s->nrcpt, why);
			smtpd_session_reset(s);
			s->bdat_failed = true;
		}
		s->bdat_discard = true;
		s->state = SMTPD_S_BDAT;
		smtpd_session_arm(s, c->data_timeout);
		return;
	}
	if (!s->bdat) {
		smtpd_data_begin(s);	/* the Received: field; arms
					 * data_timeout for the message */
		s->bdat = true;
		s->bdat_cr = false;
		s->bdat_col = 0;
		s->bdat_hdr = 0;
		s->bdat_deadline = s->deadline;
	}
	s->bdat_discard = false;
	s->state = SMTPD_S_BDAT;
	s->deadline = s->bdat_deadline;
}

/* ------------------------------------------------------------------ */
/* STARTTLS and AUTH. */

/*
 * smtpd_session_forget - RFC 3207 §4.2: with TLS the server discards what
 * it learned from the client: its EHLO, an authentication (and a SASL
 * exchange under way), the transaction. The count of AUTH failures stays:
 * it is ours, not the client's word.
 */
static void
smtpd_session_forget(struct smtpd_session *s)
{
	s->helo[0] = '\0';
	s->esmtp = false;
	bsnprintf(s->client, sizeof(s->client), "unknown[%s]", s->addr);
	free(s->auth_user);
	s->auth_user = NULL;
	auth_sasl_free(s->sasl);
	s->sasl = NULL;
	smtpd_session_reset(s);
}

static void
smtpd_cmd_starttls(struct smtpd_session *s, char *arg)
{
	size_t	dropped;

	if (s->srv->tls == NULL) {
		smtpd_session_reply(s, "502 5.5.1 Error: command not "
		    "implemented");
		return;
	}
	if (s->tls) {
		smtpd_session_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (arg != NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	/* RFC 3207 §6, CVE-2011-0411: what came with or after STARTTLS
	 * was sent in the clear; it is thrown away, never executed. */
	if ((dropped = smtp_conn_discard(s->conn)) > 0)
		log_info("client=%s, STARTTLS: discarded %zu octets of "
		    "pipelined plaintext", s->client, dropped);
	/* Nothing said in the clear counts from here on. */
	smtpd_session_forget(s);
	smtpd_session_reply(s, "220 2.0.0 Ready to start TLS");
	/* TLS starts in smtpd_session_tls_step once the 220 is out: with
	 * the SSL attached, smtp_conn_flush would send it through TLS. */
	s->state = SMTPD_S_TLS;
}

/* smtpd_session_tls_step - drive the handshake; false: close. */
static bool
smtpd_session_tls_step(struct smtpd_session *s)
{
	int	rc;

	if (s->conn->outoff < s->conn->out->len)
		return true;	/* the 220 first */
	if (s->conn->ssl == NULL &&
	    smtp_conn_tls_start(s->conn, s->srv->tls, true, NULL) != 0) {
		log_info("client=%s, TLS setup failed", s->client);
		return false;
	}
	if ((rc = smtp_conn_handshake(s->conn)) == 0)
		return true;
	if (rc < 0) {
		log_info("client=%s, TLS handshake failed", s->client);
		return false;
	}
	/* RFC 3207 §4.2: forget everything learned before. */
	s->tls = true;
	smtpd_session_forget(s);
	s->state = SMTPD_S_CMD;
	return true;
}

/* smtpd_auth_ms - a duration of the configuration in ms, within reason
 * (30 days) so that nothing overflows. */
static uint64_t
smtpd_auth_ms(time_t secs)
{
	if (secs < 0)
		return 0;
	if (secs > 30 * 86400)
		secs = 30 * 86400;
	return (uint64_t)secs * 1000;
}

/*
 * smtpd_auth_refused - an address that failed auth_failure_limit times
 * within auth_failure_window may not try again before the window ends,
 * on any connection: 421 and close (RFC 5321 §3.8). Checked at AUTH and
 * at each SASL response, so that exchanges opened in parallel before the
 * limit was reached cannot go on guessing.
 */
static bool
smtpd_auth_refused(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	uint64_t		 left;

	left = auth_throttle_wait(s->srv->throttle, s->addr,
	    c->auth_failure_limit, smtpd_auth_ms(c->auth_failure_window),
	    (uint64_t)clock_mono_ms());
	if (left == 0)
		return false;
	log_info("client=%s, addr=%s: AUTH refused: too many authentication "
	    "failures from the address (%llu s left)", s->client, s->addr,
	    (unsigned long long)(left + 999) / 1000);
	smtpd_session_reply(s, "421 4.7.0 %s Error: too many authentication "
	    "failures from %s, try again later", c->myhostname, s->addr);
	auth_sasl_free(s->sasl);
	s->sasl = NULL;
	smtpd_session_close(s, NULL);
	return true;
}

/*
 * smtpd_auth_failed - count the failure for the address, and answer it
 * only after auth_failure_delay, so that online guessing is slow. The
 * loop does not wait: the session sleeps in SMTPD_S_AUTH_WAIT, reads
 * nothing, and the timers wake it (smtpd_session_auth_resume).
 */
static void
smtpd_auth_failed(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	uint64_t		 now = (uint64_t)clock_mono_ms(), left;

	left = auth_throttle_fail(s->srv->throttle, s->addr,
	    c->auth_failure_limit, smtpd_auth_ms(c->auth_failure_window), now);
	if (left > 0 && !s->auth_blocked) {
		s->auth_blocked = true;
		log_info("client=%s, addr=%s: too many authentication "
		    "failures: AUTH refused to the address for %llu s",
		    s->client, s->addr,
		    (unsigned long long)(left + 999) / 1000);
	}
	if (c->auth_failure_delay > 0) {
		s->state = SMTPD_S_AUTH_WAIT;
		s->deadline = now + smtpd_auth_ms(c->auth_failure_delay);
		return;
	}
	smtpd_session_auth_resume(s);
}

void
smtpd_session_auth_resume(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;

	s->state = SMTPD_S_CMD;
	smtpd_session_arm(s, c->command_timeout);
	smtpd_session_reply(s, "535 5.7.8 Error: authentication failed");
	if (s->auth_failures >= SMTPD_AUTH_FAILURES_MAX) {
		smtpd_session_reply(s, "421 4.7.0 %s Error: too many "
		    "authentication failures", c->myhostname);
		smtpd_session_close(s, "too many AUTH failures");
	} else if (s->auth_blocked) {
		smtpd_session_reply(s, "421 4.7.0 %s Error: too many "
		    "authentication failures from %s, try again later",
		    c->myhostname, s->addr);
		smtpd_session_close(s, "too many AUTH failures from the "
		    "address");
	}
}

static void
smtpd_auth_result(struct smtpd_session *s, int rc, struct sbuf *chal)
{
	const char	*user = auth_sasl_user(s->sasl);

	switch (rc) {
	case AUTH_CONTINUE:
		sbuf_cat(s->conn->out, "334 ");
		smtp_b64_encode(chal->s, chal->len, s->conn->out);
		sbuf_cat(s->conn->out, "\r\n");
		s->state = SMTPD_S_AUTH;
		return;
	case AUTH_OK:
		s->auth_user = xstrdup(user);
		log_info("client=%s, auth=%s: authenticated", s->client,
		    s->auth_user);
		smtpd_session_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAIL:
		s->auth_failures++;
		log_info("client=%s, addr=%s, user=%s: authentication failed",
		    s->client, s->addr, user && *user ? user : "-");
		smtpd_auth_failed(s);	/* the 535 comes after a delay */
		break;
	default:
		smtpd_session_reply(s, "501 5.5.2 Error: malformed "
		    "authentication response");
		break;
	}
	auth_sasl_free(s->sasl);
	s->sasl = NULL;
	if (s->state == SMTPD_S_AUTH)
		s->state = SMTPD_S_CMD;
}

static void
smtpd_cmd_auth(struct smtpd_session *s, char *arg)
{
	const struct conf	*c = s->srv->conf;
	struct sbuf		*in, *chal;
	char			*ir;
	int			 mech, rc;

	if (s->srv->auth == NULL || !s->esmtp) {
		smtpd_session_reply(s, "503 5.5.1 Error: authentication not "
		    "enabled");
		return;
	}
	if (s->auth_user != NULL) {
		smtpd_session_reply(s, "503 5.5.1 Error: already "
		    "authenticated");
		return;
	}
	if (s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
		return;
	}
	if (smtpd_auth_refused(s))
		return;
	if (arg == NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	if ((ir = strchr(arg, ' ')) != NULL)
		*ir++ = '\0';
	if ((mech = auth_mech_parse(arg)) < 0) {
		smtpd_session_reply(s, "504 5.5.4 Error: unsupported "
		    "authentication mechanism");
		return;
	}
	if ((mech == AUTH_MECH_PLAIN || mech == AUTH_MECH_LOGIN) && !s->tls &&
	    !c->auth_plaintext) {
		/* RFC 4954 §4: no password in the clear. */
		smtpd_session_reply(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (mech == AUTH_MECH_CRAM_MD5 && ir != NULL) {
		/* RFC 4954 §4: an initial response with a server-first
		 * mechanism is an error. */
		smtpd_session_reply(s, "501 5.7.0 Error: CRAM-MD5 does not "
		    "take an initial response");
		return;
	}
	in = sbuf_new();
	chal = sbuf_new();
	s->sasl = auth_sasl_new(s->srv->auth, (enum auth_mech)mech,
	    c->myhostname);
	if (ir != NULL && strcmp(ir, "=") != 0 &&
	    smtp_b64_decode(ir, strlen(ir), in) != 0) {
		smtpd_session_reply(s, "501 5.5.2 Error: invalid base64");
		auth_sasl_free(s->sasl);
		s->sasl = NULL;
	} else {
		rc = auth_sasl_step(s->sasl, in->s, in->len, ir != NULL, chal);
		smtpd_auth_result(s, rc, chal);
	}
	explicit_bzero(in->s, in->len);
	sbuf_free(in);
	sbuf_free(chal);
}

static void
smtpd_session_auth_line(struct smtpd_session *s, const char *line)
{
	struct sbuf	*in, *chal;
	int		 rc;

	if (strcmp(line, "*") == 0) {
		/* RFC 4954 §4: the client cancels. */
		smtpd_session_reply(s, "501 5.7.0 Authentication cancelled");
		auth_sasl_free(s->sasl);
		s->sasl = NULL;
		s->state = SMTPD_S_CMD;
		return;
	}
	if (smtpd_auth_refused(s))
		return;
	in = sbuf_new();
	chal = sbuf_new();
	if (smtp_b64_decode(line, strlen(line), in) != 0) {
		smtpd_session_reply(s, "501 5.5.2 Error: invalid base64");
		auth_sasl_free(s->sasl);
		s->sasl = NULL;
		s->state = SMTPD_S_CMD;
	} else {
		rc = auth_sasl_step(s->sasl, in->s, in->len, true, chal);
		smtpd_auth_result(s, rc, chal);
	}
	explicit_bzero(in->s, in->len);
	sbuf_free(in);
	sbuf_free(chal);
}

/* ------------------------------------------------------------------ */
/* The command loop. */

static void
smtpd_cmd_ehlo(struct smtpd_session *s, char *arg)
{
	smtpd_cmd_hello(s, arg, true);
}

static void
smtpd_cmd_helo(struct smtpd_session *s, char *arg)
{
	smtpd_cmd_hello(s, arg, false);
}

static void
smtpd_cmd_rset(struct smtpd_session *s, char *arg)
{
	if (arg != NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtpd_session_reset(s);
	smtpd_session_reply(s, "250 2.0.0 Ok");
}

static void
smtpd_cmd_noop(struct smtpd_session *s, char *arg)
{
	(void)arg;
	smtpd_session_reply(s, "250 2.0.0 Ok");
}

static void
smtpd_cmd_quit(struct smtpd_session *s, char *arg)
{
	(void)arg;
	smtpd_session_reply(s, "221 2.0.0 Bye");
	s->quit = true;
	smtpd_session_close(s, NULL);
}

static void
smtpd_cmd_vrfy(struct smtpd_session *s, char *arg)
{
	if (arg == NULL)
		smtpd_session_reply(s, "501 5.5.4 Syntax: VRFY address");
	else
		smtpd_session_reply(s, "252 2.0.0 Cannot VRFY user, but will "
		    "accept message and attempt delivery");
}

static void
smtpd_cmd_expn(struct smtpd_session *s, char *arg)
{
	(void)arg;
	smtpd_session_reply(s, "502 5.5.1 Error: EXPN not supported");
}

static void
smtpd_cmd_help(struct smtpd_session *s, char *arg)
{
	(void)arg;
	smtpd_session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA "
	    "BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH ETRN");
}

/* How a command may sit in a pipelined group (RFC 2920 §3.1). */
#define SMTPD_VERB_SYNC	0x01	/* must end its group */
#define SMTPD_VERB_FREE	0x02	/* never a synchronization error: STARTTLS
				 * discards what follows (RFC 3207 §6), QUIT
				 * ends the session */
#define SMTPD_VERB_IR	0x04	/* may be followed when it carries an
				 * initial response (AUTH, RFC 4954 §4) */
#define SMTPD_VERB_JUNK	0x08	/* moves no mail: past junk_command_limit
				 * each one is an error, so that a client
				 * cannot hold its slot with them forever
				 * (each resets the command timeout) */

struct smtpd_verb {
	const char	*name;
	unsigned	 flags;		/* SMTPD_VERB_* */
	void		(*fn)(struct smtpd_session *, char *arg);
};

static const struct smtpd_verb smtpd_verbs[] = {
	{ "EHLO",	SMTPD_VERB_SYNC,	smtpd_cmd_ehlo },
	{ "HELO",	SMTPD_VERB_SYNC,	smtpd_cmd_helo },
	{ "MAIL",	0,			smtpd_cmd_mail },
	{ "RCPT",	0,			smtpd_cmd_rcpt },
	{ "DATA",	SMTPD_VERB_SYNC,	smtpd_cmd_data },
	{ "RSET",	SMTPD_VERB_JUNK,	smtpd_cmd_rset },
	{ "NOOP",	SMTPD_VERB_SYNC | SMTPD_VERB_JUNK, smtpd_cmd_noop },
	{ "QUIT",	SMTPD_VERB_FREE,	smtpd_cmd_quit },
	{ "VRFY",	SMTPD_VERB_SYNC | SMTPD_VERB_JUNK, smtpd_cmd_vrfy },
	{ "EXPN",	SMTPD_VERB_SYNC,	smtpd_cmd_expn },
	{ "HELP",	SMTPD_VERB_SYNC,	smtpd_cmd_help },
	{ "STARTTLS",	SMTPD_VERB_FREE,	smtpd_cmd_starttls },
	{ "AUTH",	SMTPD_VERB_SYNC | SMTPD_VERB_IR, smtpd_cmd_auth },
	{ "ETRN",	SMTPD_VERB_SYNC | SMTPD_VERB_JUNK, etrn_cmd },
	{ "ATRN",	SMTPD_VERB_SYNC,	atrn_cmd_atrn },
	{ "TURN",	SMTPD_VERB_SYNC,	atrn_cmd_turn },
	{ "BDAT",	0,			smtpd_cmd_bdat },
};

static void
smtpd_session_command(struct smtpd_session *s, char *line, bool more)
{
	const struct smtpd_verb	*v = NULL;
	char			*arg;
	size_t			 i;

	if ((arg = strchr(line, ' ')) != NULL) {
		*arg++ = '\0';
		while (*arg == ' ')
			arg++;
		/* Trailing white space is tolerated (RFC 5321 §4.1.1). */
		for (char *e = arg + strlen(arg); e > arg && e[-1] == ' ';)
			*--e = '\0';
		if (*arg == '\0')
			arg = NULL;
	}
	for (i = 0; i < sizeof(smtpd_verbs) / sizeof(smtpd_verbs[0]); i++)
		if (strcasecmp(line, smtpd_verbs[i].name) == 0) {
			v = &smtpd_verbs[i];
			break;
		}
	/*
	 * Pipelining rules (RFC 2920 §3.1): a synchronising command ends its
	 * group; without PIPELINING every command does. AUTH with an initial
	 * response may be followed (RFC 4954 §4); STARTTLS discards instead.
	 */
	if (more && v != NULL && (v->flags & SMTPD_VERB_FREE) == 0 &&
	    ((v->flags & SMTPD_VERB_SYNC) != 0 || !s->esmtp) &&
	    !((v->flags & SMTPD_VERB_IR) != 0 && arg != NULL &&
	    strchr(arg, ' ') != NULL)) {
		smtpd_session_reply(s, SMTPD_SYNC_ERROR);
		smtpd_session_close(s, "improper command pipelining");
		return;
	}
	if (v == NULL) {
		smtpd_session_reply(s, "500 5.5.1 Error: command not "
		    "recognized");
		return;
	}
	if (s->srv->pull != NULL && !smtpd_pull_verb(v->name)) {
		smtpd_session_reply(s, "502 5.5.1 Error: command not "
		    "available on a reversed connection");
		return;
	}
	if (s->odmr && !atrn_odmr_verb(v->name)) {
		/* RFC 2645 §5.4: no relaying, nothing else, here. */
		smtpd_session_reply(s, "502 5.5.1 Error: command not "
		    "available on the ODMR port");
		return;
	}
	/* Still answered; the error shows at the next command (max_errors),
	 * as in Postfix. */
	if ((v->flags & SMTPD_VERB_JUNK) != 0 &&
	    s->srv->conf->junk_command_limit > 0) {
		if (s->junk >= s->srv->conf->junk_command_limit)
			s->errors++;
		else
			s->junk++;
	}
	v->fn(s, arg);
}

bool
smtpd_session_input(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;

	for (;;) {
		const char	*p, *lf;
		size_t		 avail, len, limit;
		char		 line[SMTPD_AUTH_LINE_MAX + 1];

		if (s->state == SMTPD_S_TLS)
			return smtpd_session_tls_step(s);
		if (s->state == SMTPD_S_DATA) {
			smtpd_session_data(s);
			if (s->state == SMTPD_S_DATA)
				break;
			continue;
		}
		if (s->state == SMTPD_S_BDAT) {
			smtpd_bdat_read(s);
			if (s->state == SMTPD_S_BDAT)
				break;
			continue;
		}
		if (s->state != SMTPD_S_CMD && s->state != SMTPD_S_AUTH)
			break;
		if (s->full_close) {
			smtpd_session_reply(s, "421 4.3.1 %s Error: local "
			    "queue full, closing", c->myhostname);
			smtpd_session_close(s, "queue full");
			break;
		}
		if (s->errors >= c->max_errors) {
			smtpd_session_reply(s, "421 4.7.0 %s Error: too many "
			    "errors", c->myhostname);
			smtpd_session_close(s, "too many errors");
			break;
		}
		if ((avail = smtp_conn_avail(s->conn)) == 0)
			break;
		/* The rest waits until the replies drain (smtpd.c). */
		if (smtpd_session_out_blocked(s))
			break;
		p = smtp_conn_data(s->conn);
		limit = s->state == SMTPD_S_AUTH ? SMTPD_AUTH_LINE_MAX :
		    (size_t)c->command_length_limit;
		/* `line` holds no more (command_length_limit may be set
		 * up to INT_MAX). */
		if (limit > SMTPD_AUTH_LINE_MAX)
			limit = SMTPD_AUTH_LINE_MAX;
		lf = memchr(p, '\n', avail);
		if (lf == NULL) {
			if (avail > limit && !s->skipping) {
				smtpd_session_reply(s,
				    s->state == SMTPD_S_AUTH ?
				    "500 5.5.6 Error: authentication line too "
				    "long" : "500 5.5.2 Error: line too long");
				s->skipping = true;
			}
			if (s->skipping)
				smtp_conn_consume(s->conn, avail);
			break;
		}
		len = (size_t)(lf - p) + 1;
		if (s->skipping || len > limit) {
			if (!s->skipping)	/* RFC 4954 §4: 5.5.6 */
				smtpd_session_reply(s,
				    s->state == SMTPD_S_AUTH ?
				    "500 5.5.6 Error: authentication line too "
				    "long" : "500 5.5.2 Error: line too long");
			s->skipping = false;
			smtp_conn_consume(s->conn, len);
			if (s->state == SMTPD_S_AUTH) {
				auth_sasl_free(s->sasl);
				s->sasl = NULL;
				s->state = SMTPD_S_CMD;
			}
			continue;
		}
		if (len < 2 || p[len - 2] != '\r') {
			smtp_conn_consume(s->conn, len);
			smtpd_session_reply(s, "500 5.5.2 Error: bare LF "
			    "received (commands end in CRLF)");
			continue;
		}
		if (memchr(p, '\r', len - 2) != NULL ||
		    memchr(p, '\0', len - 2) != NULL) {
			smtp_conn_consume(s->conn, len);
			smtpd_session_reply(s, "500 5.5.2 Error: bad character "
			    "in command");
			continue;
		}
		memcpy(line, p, len - 2);
		line[len - 2] = '\0';
		smtp_conn_consume(s->conn, len);
		smtpd_session_arm(s, c->command_timeout);
		if (s->state == SMTPD_S_AUTH)
			smtpd_session_auth_line(s, line);
		else
			smtpd_session_command(s, line,
			    smtp_conn_pending(s->conn) > 0);
		explicit_bzero(line, len);
	}
	return s->state != SMTPD_S_CLOSE || s->conn->outoff < s->conn->out->len;
}

void
smtpd_session_arm(struct smtpd_session *s, time_t secs)
{
	s->since = (uint64_t)clock_mono_ms();
	s->deadline = s->since + smtpd_secs_ms(secs);
}

void
smtpd_session_timeout(struct smtpd_session *s)
{
	smtpd_session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->srv->conf->myhostname);
	smtpd_session_close(s, s->state == SMTPD_S_DATA ? "timeout in DATA" :
	    smtpd_session_in_message(s) ? "timeout in BDAT" : "timeout");
}

void
smtpd_session_give_up(struct smtpd_session *s, const char *why)
{
	smtpd_session_reply(s, "421 4.4.2 %s Error: %s",
	    s->srv->conf->myhostname, why);
	smtpd_session_close(s, why);
}

void
smtpd_session_shutdown(struct smtpd_session *s)
{
	smtpd_session_reply(s, "421 4.3.2 %s Service shutting down",
	    s->srv->conf->myhostname);
	smtpd_session_close(s, NULL);
}

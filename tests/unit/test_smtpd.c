/*
 * test_smtpd.c - the parts of the SMTP server that need no socket: the
 * relay decision (smtpd_check_rcpt) and the ESMTP parameters of MAIL and
 * RCPT (smtpd_param.c). A session here is a struct with an unconnected
 * smtp_conn: the replies are read back from its output buffer.
 */
#include <string.h>

#include "smtpd_int.h"
#include "tharness.h"

/* test_list - a conf_list of the items (conf_free frees it). */
static void
test_list(struct conf_list *l, const char *const *items)
{
	size_t	n;

	for (n = 0; items[n] != NULL; n++)
		;
	l->v = xcalloc(n + 1, sizeof(*l->v));
	for (l->n = 0; l->n < n; l->n++)
		l->v[l->n] = xstrdup(items[l->n]);
}

/* test_conf - the defaults, with the domains of the cases below. */
static struct conf *
test_conf(struct t *t)
{
	static const char *const relay[] = { "relay.example", "open.example",
	    NULL };
	static const char *const hold[] = { "hold.example", NULL };
	static const char *const mine[] = { "alias.example", NULL };
	struct conf	*c;
	char		 err[256];

	if ((c = conf_load(NULL, err, sizeof(err))) == NULL) {
		t_errorf(t, "conf_load(NULL): %s", err);
		return NULL;
	}
	free(c->myhostname);
	c->myhostname = xstrdup("mx.test.example");
	test_list(&c->relay_domains, relay);
	test_list(&c->hold_domains, hold);
	test_list(&c->my_names, mine);
	return c;
}

static void
test_check_rcpt(struct t *t)
{
	/* relay_recipients, sorted as smtpd_server_load_known leaves it. */
	static char *known[] = { "@open.example", "known@relay.example" };
	static const struct {
		const char		*addr;
		bool			 mynet, auth, listed;
		enum smtpd_verdict	 want;
	} tab[] = {
		/* Ours: from anyone; with relay_recipients, if listed. */
		{ "<u@relay.example>", false, false, false, SMTPD_OK },
		{ "<u@hold.example>", false, false, false, SMTPD_OK },
		{ "<u@relay.example>", false, false, true,
		    SMTPD_REJECT_UNLISTED },
		{ "<u@relay.example>", true, true, true,
		    SMTPD_REJECT_UNLISTED },
		{ "<known@relay.example>", false, false, true, SMTPD_OK },
		{ "<known@RELAY.Example>", false, false, true, SMTPD_OK },
		{ "<KNOWN@relay.example>", false, false, true,
		    SMTPD_REJECT_UNLISTED },
		{ "<anyone@open.example>", false, false, true, SMTPD_OK },
		{ "<PostMaster@relay.example>", false, false, true, SMTPD_OK },
		{ "<abcdefghij@relay.example>", false, false, true,
		    SMTPD_REJECT_UNLISTED },
		/* Not ours: mynetworks, AUTH, or postmaster at our names. */
		{ "<u@other.example>", false, false, false,
		    SMTPD_REJECT_RELAY },
		{ "<u@other.example>", true, false, false, SMTPD_OK },
		{ "<u@other.example>", false, true, false, SMTPD_OK },
		{ "<u@sub.relay.example>", false, false, false,
		    SMTPD_REJECT_RELAY },
		{ "<postmaster@other.example>", false, false, false,
		    SMTPD_REJECT_RELAY },
		{ "<postmaster@mx.test.example>", false, false, false,
		    SMTPD_OK },
		{ "<POSTMASTER@alias.example>", false, false, false, SMTPD_OK },
		{ "<postmasters@mx.test.example>", false, false, false,
		    SMTPD_REJECT_RELAY },
		{ "<u@alias.example>", false, false, false,
		    SMTPD_REJECT_RELAY },
	};
	struct smtpd_server	srv;
	struct smtpd_session	s;
	struct smtp_addr	a;
	const char		*end;
	enum smtpd_verdict	got;
	size_t			i;

	memset(&srv, 0, sizeof(srv));
	if ((srv.conf = test_conf(t)) == NULL)
		return;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		memset(&s, 0, sizeof(s));
		s.srv = &srv;
		s.mynet = tab[i].mynet;
		s.auth_user = tab[i].auth ? "user" : NULL;
		srv.known_rcpts = tab[i].listed ? known : NULL;
		srv.nknown = tab[i].listed ? 2 : 0;
		if (smtp_addr_parse(tab[i].addr, strlen(tab[i].addr),
		    SMTP_ADDR_POSTMASTER_OK, &a, &end) != 0) {
			t_errorf(t, "smtp_addr_parse(%s) failed", tab[i].addr);
			continue;
		}
		if ((got = smtpd_check_rcpt(&s, &a)) != tab[i].want)
			t_errorf(t, "smtpd_check_rcpt(%s, mynet=%d, auth=%d, "
			    "listed=%d): got %d, want %d", tab[i].addr,
			    tab[i].mynet, tab[i].auth, tab[i].listed, got,
			    tab[i].want);
	}
	conf_free(srv.conf);
}

/* test_session - an EHLO'd (esmtp) or HELO'd session that keeps its
 * replies. */
static void
test_session(struct smtpd_session *s, struct smtpd_server *srv, bool esmtp)
{
	memset(s, 0, sizeof(*s));
	s->srv = srv;
	s->conn = smtp_conn_new(-1);
	s->esmtp = esmtp;
}

static void
test_param_mail(struct t *t)
{
	static const struct {
		const char	*params;
		bool		 esmtp;
		int		 rc;
		const char	*reply;		/* "" when none */
		uint32_t	 mflags;
		uint64_t	 size;
	} tab[] = {
		{ "", false, 0, "", 0, 0 },
		{ " SIZE=10 BODY=8bitmime", true, 0, "", QMSG_F_8BITMIME, 10 },
		{ " size=7 RET=HDRS ENVID=a+2Bb AUTH=<> SMTPUTF8", true, 0, "",
		    QMSG_F_RET_HDRS | QMSG_F_SMTPUTF8, 7 },
		{ " SIZE=10", false, -1, "555 5.5.4 Parameters need EHLO\r\n",
		    0, 0 },
		{ " FOO=1 SIZE=x", true, -1,
		    "555 5.5.4 Unsupported parameter \"FOO\"\r\n", 0, 0 },
		{ " SIZE=x FOO=1", true, -1, "501 5.5.4 Bad SIZE value\r\n",
		    0, 0 },
		{ " SIZE", true, -1, "501 5.5.4 Bad SIZE value\r\n", 0, 0 },
		{ " Body=7BIT BODY=7BIT", true, -1,
		    "501 5.5.4 Duplicate or bad BODY parameter\r\n", 0, 0 },
		{ " BODY", true, -1,
		    "501 5.5.4 Duplicate or bad BODY parameter\r\n", 0, 0 },
		{ " SMTPUTF8=yes", true, -1,
		    "501 5.5.4 Duplicate or bad SMTPUTF8 parameter\r\n", 0, 0 },
		{ " RET=NONE", true, -1, "501 5.5.4 Bad RET value\r\n", 0, 0 },
		{ " ENVID=a+0Ab", true, -1, "501 5.5.4 Bad ENVID value\r\n",
		    0, 0 },
		/* 34 characters, 102 octets of xtext: over the 100 the queue
		 * keeps (it was accepted, then cut in "+HH"). */
		{ " ENVID=" "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
		    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41", true,
		    -1, "501 5.5.4 Bad ENVID value\r\n", 0, 0 },
		{ " ENVID=" "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
		    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41a", true, 0,
		    "", 0, 0 },
		{ " AUTH=a+1Bb", true, -1, "501 5.5.4 Bad AUTH value\r\n",
		    0, 0 },
		{ " =x", true, -1, "501 5.5.4 Bad MAIL parameters\r\n", 0, 0 },
		/* A keyword that is not one (RFC 5321 esmtp-keyword: letters,
		 * digits, '-') is not echoed: the reply carries no control
		 * or 8-bit byte back to the client. */
		{ " F\033[2JO=1", true, -1,
		    "555 5.5.4 Unsupported parameter\r\n", 0, 0 },
		{ " X\xc3\xa9=1", true, -1,
		    "555 5.5.4 Unsupported parameter\r\n", 0, 0 },
		{ " X-OK-1=1", true, -1,
		    "555 5.5.4 Unsupported parameter \"X-OK-1\"\r\n", 0, 0 },
	};
	struct smtpd_server	srv;
	struct smtpd_session	s;
	struct smtpd_mail_param	mp;
	char			buf[256];
	size_t			i;
	int			rc;

	memset(&srv, 0, sizeof(srv));
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		test_session(&s, &srv, tab[i].esmtp);
		strl_copy(buf, tab[i].params, sizeof(buf));
		rc = smtpd_param_mail(&s, buf, &mp);
		if (rc != tab[i].rc ||
		    strcmp(sbuf_str(s.conn->out), tab[i].reply) != 0)
			t_errorf(t, "smtpd_param_mail(\"%s\"): got %d \"%s\", "
			    "want %d \"%s\"", tab[i].params, rc,
			    sbuf_str(s.conn->out), tab[i].rc, tab[i].reply);
		else if (rc == 0 && (s.mflags != tab[i].mflags ||
		    mp.size != tab[i].size))
			t_errorf(t, "smtpd_param_mail(\"%s\"): got flags %#x "
			    "size %llu, want %#x %llu", tab[i].params,
			    (unsigned)s.mflags, (unsigned long long)mp.size,
			    (unsigned)tab[i].mflags,
			    (unsigned long long)tab[i].size);
		/* Only literal replies count towards max_errors. */
		if (rc != 0 && s.errors != 1)
			t_errorf(t, "smtpd_param_mail(\"%s\"): errors %d, "
			    "want 1", tab[i].params, s.errors);
		smtp_conn_free(s.conn);
	}
}

static void
test_param_rcpt(struct t *t)
{
	static const struct {
		const char	*params;
		int		 rc;
		const char	*reply;
		uint8_t		 notify;
		const char	*orcpt;
	} tab[] = {
		{ "", 0, "", 0, "" },
		{ " NOTIFY=SUCCESS,delay ORCPT=rfc822;a@b", 0, "",
		    QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_DELAY, "rfc822;a@b" },
		{ " NOTIFY=NEVER", 0, "", QRCPT_NOTIFY_NEVER, "" },
		{ " NOTIFY=NEVER,FAILURE", -1, "501 5.5.4 Bad NOTIFY value\r\n",
		    0, "" },
		{ " NOTIFY=", -1, "501 5.5.4 Bad NOTIFY value\r\n", 0, "" },
		{ " NOTIFY=DELAY NOTIFY=DELAY", -1,
		    "501 5.5.4 Duplicate or bad NOTIFY parameter\r\n", 0, "" },
		{ " ORCPT=rfc822", -1, "501 5.5.4 Bad ORCPT value\r\n", 0, "" },
		{ " ORCPT=rfc822;a+0Db", -1, "501 5.5.4 Bad ORCPT value\r\n",
		    0, "" },
		{ " ORCPT", -1,
		    "501 5.5.4 Duplicate or bad ORCPT parameter\r\n", 0, "" },
		{ " SIZE=1", -1,
		    "555 5.5.4 Unsupported parameter \"SIZE\"\r\n", 0, "" },
		{ " A B C D E F G H I", -1,
		    "501 5.5.4 Syntax: RCPT TO:<address>\r\n", 0, "" },
	};
	struct smtpd_server	srv;
	struct smtpd_session	s;
	struct smtpd_rcpt_param	rp;
	char			buf[256];
	size_t			i;
	int			rc;

	memset(&srv, 0, sizeof(srv));
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		test_session(&s, &srv, true);
		strl_copy(buf, tab[i].params, sizeof(buf));
		rc = smtpd_param_rcpt(&s, buf, &rp);
		if (rc != tab[i].rc ||
		    strcmp(sbuf_str(s.conn->out), tab[i].reply) != 0)
			t_errorf(t, "smtpd_param_rcpt(\"%s\"): got %d \"%s\", "
			    "want %d \"%s\"", tab[i].params, rc,
			    sbuf_str(s.conn->out), tab[i].rc, tab[i].reply);
		else if (rc == 0 && (rp.notify != tab[i].notify ||
		    strcmp(rp.orcpt, tab[i].orcpt) != 0))
			t_errorf(t, "smtpd_param_rcpt(\"%s\"): got notify %#x "
			    "orcpt \"%s\", want %#x \"%s\"", tab[i].params,
			    rp.notify, rp.orcpt, tab[i].notify, tab[i].orcpt);
		if (rc != 0 && s.errors != 1)
			t_errorf(t, "smtpd_param_rcpt(\"%s\"): errors %d, "
			    "want 1", tab[i].params, s.errors);
		smtp_conn_free(s.conn);
	}
}

static void
test_param_mail_utf8(struct t *t)
{
	static const struct {
		const char	*arg;
		bool		 want;
	} tab[] = {
		{ "<a@b> SMTPUTF8", true },
		{ "<a@b> BODY=8BITMIME smtputf8", true },
		{ "<a@b> SMTPUTF8=x", false },
		{ "<a@b> XSMTPUTF8", false },
		{ "<a@b>", false },
		{ "<a@b>\tSMTPUTF8", false },
	};
	size_t	i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (smtpd_param_mail_utf8(tab[i].arg) != tab[i].want)
			t_errorf(t, "smtpd_param_mail_utf8(\"%s\"): got %d, "
			    "want %d", tab[i].arg, !tab[i].want, tab[i].want);
}

int
main(void)
{
	T_RUN(test_check_rcpt);
	T_RUN(test_param_mail);
	T_RUN(test_param_rcpt);
	T_RUN(test_param_mail_utf8);
	T_EXIT();
}

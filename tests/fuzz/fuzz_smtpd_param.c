/*
 * fuzz_smtpd_param.c - MAIL and RCPT parameters (etrn/smtpd_param.c):
 * SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH=, NOTIFY, ORCPT.
 *
 * Input: a flag byte (bit 0: MAIL, else RCPT; bit 1: after EHLO), then
 * the text after the path (" SIZE=10 BODY=8BITMIME"), up to a CR or LF
 * (a command line has none). MAIL's whole
 * argument is also given to smtpd_param_mail_utf8 as "<a@b>" + text.
 *
 * Checks beyond the sanitizers: a refusal replies exactly once, an
 * acceptance never replies; what is kept is within its field and is
 * what the DSN code reads back (ENVID and ORCPT's xtext decode, NOTIFY
 * bits are the known ones, NEVER alone).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "fuzz.h"
#include "smtpd_int.h"

#define F_MAIL	0x01
#define F_EHLO	0x02

/* replies - the lines in out. */
static size_t
replies(const struct sbuf *out)
{
	size_t	i, n = 0;

	for (i = 0; i < out->len; i++)
		if (out->s[i] == '\n')
			n++;
	return n;
}

static void
check_xtext(const char *what, const char *x)
{
	char	buf[QUEUE_ORCPT_MAX + 1];

	if (dsn_xtext_decode(x, buf, sizeof(buf)) < 0) {
		fprintf(stderr, "fuzz: %s \"%s\" kept, not xtext\n", what, x);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpd_server	 srv;
	struct smtpd_session	 s;
	struct smtpd_mail_param	 mp;
	struct smtpd_rcpt_param	 rp;
	struct fuzz_in		 in = { data, size };
	uint8_t			 flags;
	char			*text, *whole;
	size_t			 n;
	int			 rc;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	flags = fuzz_take_byte(&in);
	/* A command line has no CR or LF inside (the session cuts it). */
	text = fuzz_str(in.p, in.n);
	text[strcspn(text, "\r\n")] = '\0';
	n = strlen(text);
	memset(&srv, 0, sizeof(srv));
	memset(&s, 0, sizeof(s));
	s.srv = &srv;
	s.conn = smtp_conn_new(-1);
	s.esmtp = (flags & F_EHLO) != 0;
	if (flags & F_MAIL) {
		whole = xmalloc(n + 8);
		memcpy(whole, "<a@b>", 5);
		memcpy(whole + 5, text, n + 1);
		(void)smtpd_param_mail_utf8(whole);
		free(whole);
		rc = smtpd_param_mail(&s, text, &mp);
		if (rc == 0) {
			if (strlen(s.envid) > QUEUE_ENVID_MAX)
				abort();
			if (s.envid[0] != '\0')
				check_xtext("ENVID", s.envid);
			if ((s.mflags & QMSG_F_SMTPUTF8) && !s.smtputf8)
				abort();
		}
	} else {
		rc = smtpd_param_rcpt(&s, text, &rp);
		if (rc == 0) {
			if (rp.notify & ~(QRCPT_NOTIFY_NEVER |
			    QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE |
			    QRCPT_NOTIFY_DELAY))
				abort();
			if ((rp.notify & QRCPT_NOTIFY_NEVER) &&
			    rp.notify != QRCPT_NOTIFY_NEVER)
				abort();
			if (rp.orcpt[0] != '\0') {
				const char *semi = strchr(rp.orcpt, ';');

				if (semi == NULL)
					abort();
				check_xtext("ORCPT", semi + 1);
			}
		}
	}
	if ((rc == 0 && replies(s.conn->out) != 0) ||
	    (rc != 0 && replies(s.conn->out) != 1)) {
		fprintf(stderr, "fuzz: rc %d with replies \"%s\"\n", rc,
		    s.conn->out->s);
		abort();
	}
	smtp_conn_free(s.conn);
	free(text);
	return 0;
}

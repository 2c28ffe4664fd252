/*
 * smtpd_param.c - the ESMTP parameters of MAIL and RCPT.
 *
 * RFC 5321 §4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value], the
 * parameters separated by spaces. One tokenizer serves both commands:
 * it splits the keywords and values in place, then looks each keyword up
 * in the command's table, which says whether it takes a value and which
 * function checks and keeps it. Each keyword may come once. The replies
 * are the same for both commands:
 *
 *	555 5.5.4 Parameters need EHLO		any parameter after HELO
 *	555 5.5.4 Unsupported parameter "K"	a keyword not in the table
 *	501 5.5.4 Duplicate or bad K parameter	a second K, or a value
 *						where none goes (or none
 *						where one must)
 *	501 5.5.4 Bad K value			from the keyword's function
 *
 * Parameters are taken in the order sent and the first error is the one
 * answered. MAIL knows SIZE (RFC 1870), BODY (RFC 6152; BINARYMIME, RFC
 * 3030 §3), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461) and AUTH (RFC
 * 4954 §5); RCPT knows NOTIFY and ORCPT (RFC 3461).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd_int.h"

#define SMTPD_PARAM_MAX		16	/* per command */
#define SMTPD_PARAM_SYNTAX	1	/* smtpd_param_apply: no split */

/* Whether a keyword takes a value. */
enum smtpd_param_value {
	SMTPD_PARAM_VALUE,		/* K=V only */
	SMTPD_PARAM_NOVALUE,		/* K only */
	SMTPD_PARAM_EITHER,		/* its function decides */
};

struct smtpd_param_kw {
	const char		*name;
	enum smtpd_param_value	 value;
	/* Check and keep the value (NULL: no "="); -1 when it replied. */
	int			(*fn)(struct smtpd_session *, char *val,
				    void *out);
};

/* smtpd_param_hex - the value of an upper-case hex digit (RFC 3461 §4
 * hexchar), or -1. */
static int
smtpd_param_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * smtpd_param_xtext_valid - RFC 3461 §4: xtext, decoding to printable
 * ASCII. ENVID (§4.4) and ORCPT (§4.2) must decode to printable US-ASCII,
 * so a "+0A" or "+1B" is refused here rather than stored: nothing a client
 * encodes can come out of `postern show` or a DSN as a control byte.
 * max bounds the value as sent (its xtext octets, what is stored): counting
 * decoded characters let a 300-octet ENVID through, cut to its 100 in the
 * queue, maybe inside a "+HH" (found by fuzz_smtpd_param).
 */
static bool
smtpd_param_xtext_valid(const char *v, size_t max)
{
	size_t	i;
	int	hi, lo;

	for (i = 0; v[i] != '\0'; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '+') {
			if ((hi = smtpd_param_hex(v[i + 1])) < 0 ||
			    (lo = smtpd_param_hex(v[i + 2])) < 0)
				return false;
			if (hi * 16 + lo < 0x20 || hi * 16 + lo > 0x7e)
				return false;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=')
			return false;
	}
	return i > 0 && i <= max;
}

/* smtpd_param_atom_valid - RFC 5321 Atom, 1*atext: what ORCPT's addr-type
 * must be (RFC 3461 §4.2). Nothing else may reach the queue and `postern
 * show`: not an escape sequence, not an 8-bit byte. */
static bool
smtpd_param_atom_valid(const char *v, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' &&
		    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL)))
			return false;
	}
	return len > 0;
}

struct smtpd_param {
	char	*key;
	char	*val;		/* NULL: no "=" */
};

/* smtpd_param_split - split "K=V K2 ..." in place; -1 on an empty keyword
 * or more than `max` parameters. */
/* smtpd_param_keyword - whether K is an esmtp-keyword: ALPHA / DIGIT, then
 * ALPHA / DIGIT / "-" (RFC 5321 §4.1.2). */
static bool
smtpd_param_keyword(const char *k)
{
	const char	*p;

	if (!isalnum((unsigned char)*k))
		return false;
	for (p = k; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	return true;
}

static int
smtpd_param_split(char *p, struct smtpd_param *v, size_t max, size_t *n)
{
	*n = 0;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*n == max)
			return -1;
		v[*n].key = p;
		v[*n].val = NULL;
		while (*p != '\0' && *p != ' ') {
			if (*p == '=' && v[*n].val == NULL) {
				*p = '\0';
				v[*n].val = p + 1;
			}
			p++;
		}
		if (*p == ' ')
			*p++ = '\0';
		if (v[*n].key[0] == '\0')
			return -1;
		(*n)++;
	}
	return 0;
}

/*
 * smtpd_param_apply - the tokenizer (see the top): split `p`, at most
 * `max` parameters, and hand each to its keyword's function with `out`.
 * 0; -1 when it replied; SMTPD_PARAM_SYNTAX when `p` does not split, for
 * the caller to answer with its command's own 501 (a literal format, so
 * that smtpd_session_reply() counts the error).
 */
static int
smtpd_param_apply(struct smtpd_session *s, char *p,
    const struct smtpd_param_kw *kw, size_t nkw, size_t max, void *out)
{
	struct smtpd_param		 pv[SMTPD_PARAM_MAX];
	const struct smtpd_param_kw	*k;
	bool				 seen[SMTPD_PARAM_MAX];
	size_t				 np, i, j;

	if (max > SMTPD_PARAM_MAX)
		max = SMTPD_PARAM_MAX;
	if (smtpd_param_split(p, pv, max, &np) != 0)
		return SMTPD_PARAM_SYNTAX;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < np; i++) {
		if (!s->esmtp) {
			smtpd_session_reply(s, "555 5.5.4 Parameters need "
			    "EHLO");
			return -1;
		}
		for (j = 0, k = NULL; j < nkw && j < SMTPD_PARAM_MAX; j++)
			if (strcasecmp(pv[i].key, kw[j].name) == 0) {
				k = &kw[j];
				break;
			}
		if (k == NULL) {
			/* Echoed only when it is a keyword (RFC 5321
			 * esmtp-keyword): no control or 8-bit byte goes
			 * back to the client. */
			if (smtpd_param_keyword(pv[i].key))
				smtpd_session_reply(s, "555 5.5.4 Unsupported "
				    "parameter \"%.40s\"", pv[i].key);
			else
				smtpd_session_reply(s, "555 5.5.4 Unsupported "
				    "parameter");
			return -1;
		}
		if (seen[j] ||
		    (k->value == SMTPD_PARAM_VALUE && pv[i].val == NULL) ||
		    (k->value == SMTPD_PARAM_NOVALUE && pv[i].val != NULL)) {
			smtpd_session_reply(s, "501 5.5.4 Duplicate or bad %s "
			    "parameter", pv[i].key);
			return -1;
		}
		seen[j] = true;
		if (k->fn(s, pv[i].val, out) != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* MAIL. */

static int
smtpd_param_size(struct smtpd_session *s, char *v, void *out)
{
	struct smtpd_mail_param	*mp = out;
	char			*ep;

	mp->has_size = true;
	errno = 0;
	if (v == NULL || *v < '0' || *v > '9' || strlen(v) > 20 ||
	    (mp->size = strtoull(v, &ep, 10), *ep != '\0') || errno != 0) {
		smtpd_session_reply(s, "501 5.5.4 Bad SIZE value");
		return -1;
	}
	return 0;
}

static int
smtpd_param_body(struct smtpd_session *s, char *v, void *out)
{
	(void)out;
	if (strcasecmp(v, "8BITMIME") == 0)
		s->mflags |= QMSG_F_8BITMIME;
	else if (strcasecmp(v, "BINARYMIME") == 0)
		/* RFC 3030 §3: offered with CHUNKING; DATA refuses it. */
		s->mflags |= QMSG_F_BINARYMIME;
	else if (strcasecmp(v, "7BIT") != 0) {
		smtpd_session_reply(s, "501 5.5.4 Bad BODY value");
		return -1;
	}
	return 0;
}

static int
smtpd_param_smtputf8(struct smtpd_session *s, char *v, void *out)
{
	(void)v;
	(void)out;
	s->smtputf8 = true;
	s->mflags |= QMSG_F_SMTPUTF8;
	return 0;
}

static int
smtpd_param_ret(struct smtpd_session *s, char *v, void *out)
{
	(void)out;
	if (strcasecmp(v, "FULL") == 0)
		s->mflags |= QMSG_F_RET_FULL;
	else if (strcasecmp(v, "HDRS") == 0)
		s->mflags |= QMSG_F_RET_HDRS;
	else {
		smtpd_session_reply(s, "501 5.5.4 Bad RET value");
		return -1;
	}
	return 0;
}

static int
smtpd_param_envid(struct smtpd_session *s, char *v, void *out)
{
	(void)out;
	if (!smtpd_param_xtext_valid(v, QUEUE_ENVID_MAX)) {
		smtpd_session_reply(s, "501 5.5.4 Bad ENVID value");
		return -1;
	}
	strl_copy(s->envid, v, sizeof(s->envid));
	return 0;
}

/* smtpd_param_auth - RFC 4954 §5: accepted from anyone; we do not trust
 * it, so it is as if AUTH=<> (nothing to keep). */
static int
smtpd_param_auth(struct smtpd_session *s, char *v, void *out)
{
	(void)out;
	if (strcmp(v, "<>") != 0 && !smtpd_param_xtext_valid(v, 500)) {
		smtpd_session_reply(s, "501 5.5.4 Bad AUTH value");
		return -1;
	}
	return 0;
}

bool
smtpd_param_mail_utf8(const char *arg)
{
	const char	*p, *q;

	if ((p = strstr(arg, "> ")) == NULL)
		return false;
	for (q = p + 1; *q != '\0'; q++)
		if (strncasecmp(q, " SMTPUTF8", 9) == 0 &&
		    (q[9] == '\0' || q[9] == ' '))
			return true;
	return false;
}

static const struct smtpd_param_kw smtpd_param_mail_kw[] = {
	{ "SIZE",	SMTPD_PARAM_EITHER,	smtpd_param_size },
	{ "BODY",	SMTPD_PARAM_VALUE,	smtpd_param_body },
	{ "SMTPUTF8",	SMTPD_PARAM_NOVALUE,	smtpd_param_smtputf8 },
	{ "RET",	SMTPD_PARAM_VALUE,	smtpd_param_ret },
	{ "ENVID",	SMTPD_PARAM_VALUE,	smtpd_param_envid },
	{ "AUTH",	SMTPD_PARAM_VALUE,	smtpd_param_auth },
};

int
smtpd_param_mail(struct smtpd_session *s, char *p, struct smtpd_mail_param *mp)
{
	int	rc;

	memset(mp, 0, sizeof(*mp));
	s->mflags = 0;
	s->smtputf8 = false;
	s->envid[0] = '\0';
	rc = smtpd_param_apply(s, p, smtpd_param_mail_kw,
	    sizeof(smtpd_param_mail_kw) / sizeof(smtpd_param_mail_kw[0]), 16,
	    mp);
	if (rc == SMTPD_PARAM_SYNTAX) {
		smtpd_session_reply(s, "501 5.5.4 Bad MAIL parameters");
		return -1;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* RCPT. */

static int
smtpd_param_notify(struct smtpd_session *s, char *v, void *out)
{
	struct smtpd_rcpt_param	*rp = out;
	char			*tok, *save = NULL;
	uint8_t			 notify = 0;

	for (tok = strtok_r(v, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "NEVER") == 0)
			notify |= QRCPT_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			notify |= QRCPT_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			notify |= QRCPT_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			notify |= QRCPT_NOTIFY_DELAY;
		else
			notify = 0xff;
	}
	/* NEVER stands alone (RFC 3461 §4.1). */
	if (notify == 0 || notify == 0xff ||
	    ((notify & QRCPT_NOTIFY_NEVER) && notify != QRCPT_NOTIFY_NEVER)) {
		smtpd_session_reply(s, "501 5.5.4 Bad NOTIFY value");
		return -1;
	}
	rp->notify = notify;
	return 0;
}

static int
smtpd_param_orcpt(struct smtpd_session *s, char *v, void *out)
{
	struct smtpd_rcpt_param	*rp = out;
	char			*semi = strchr(v, ';');

	if (semi == NULL || !smtpd_param_atom_valid(v, (size_t)(semi - v)) ||
	    !smtpd_param_xtext_valid(semi + 1, QUEUE_ORCPT_MAX) ||
	    strlen(v) > QUEUE_ORCPT_MAX) {
		smtpd_session_reply(s, "501 5.5.4 Bad ORCPT value");
		return -1;
	}
	strl_copy(rp->orcpt, v, sizeof(rp->orcpt));
	return 0;
}

static const struct smtpd_param_kw smtpd_param_rcpt_kw[] = {
	{ "NOTIFY",	SMTPD_PARAM_VALUE,	smtpd_param_notify },
	{ "ORCPT",	SMTPD_PARAM_VALUE,	smtpd_param_orcpt },
};

int
smtpd_param_rcpt(struct smtpd_session *s, char *p, struct smtpd_rcpt_param *rp)
{
	int	rc;

	memset(rp, 0, sizeof(*rp));
	rc = smtpd_param_apply(s, p, smtpd_param_rcpt_kw,
	    sizeof(smtpd_param_rcpt_kw) / sizeof(smtpd_param_rcpt_kw[0]), 8,
	    rp);
	if (rc == SMTPD_PARAM_SYNTAX) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return -1;
	}
	return rc;
}

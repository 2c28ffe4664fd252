/*
 * bounce_compose.c - the DSN message: RFC 6522 multipart/report with
 * report-type=delivery-status, in three parts (RFC 3464 §2): plain words,
 * then message/delivery-status, then the returned message or its headers.
 *
 * Everything that comes from the envelope or a peer (addresses, ORCPT,
 * ENVID, replies, host names) is hostile: it goes through
 * bounce_compose_clean(), which makes CR, LF and every control a space,
 * so nothing can end a header field, start a new one or a MIME part. The
 * boundary is made from the caller's unique token and checked against
 * every part before it is used. Lines are CRLF and at most 998 octets
 * (RFC 5322 §2.1.1): our fields are folded at spaces, the returned header
 * section is hard-folded (CRLF SP keeps a long field one field), and a
 * returned body with an over-long line or a NUL is returned as headers.
 *
 * 8-bit: the text and delivery-status parts are 7-bit unless an address
 * is UTF-8 (an SMTPUTF8 original, RFC 6533: then text/plain is UTF-8,
 * the report is message/global-delivery-status with "utf-8" address
 * types, and the returned part message/global or message/global-headers).
 * A returned part with 8-bit bytes says Content-Transfer-Encoding: 8bit
 * and the caller is told (BOUNCE_OUT_8BITMIME) to send the DSN with
 * BODY=8BITMIME; we do not re-encode the original (RFC 6522 §3 allows
 * returning it as is to a path that carries 8 bits).
 *
 * ENVID and ORCPT are stored as received (xtext); RFC 3461 §6.3 (a), (d)
 * and RFC 3464 §2.2.1 (envelope-id = *text) want their values, so both
 * are written xtext-decoded (smtpd made sure they decode to printable
 * ASCII); one that does not decode is written as stored.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "smtp.h"

#define BOUNCE_COMPOSE_WIDTH	76	/* text part and folded fields */
#define BOUNCE_COMPOSE_TOKEN	40	/* token characters used */

/* The context of one composition. */
struct bounce_compose_ctx {
	const struct bounce_conf	*bc;
	const struct bounce_input	*in;
	char				 host[256];	/* myhostname, clean */
	bool				 utf8;	/* SMTPUTF8 original */
	bool				 global_ds; /* a UTF-8 address */
};

void
bounce_compose_date(time_t t, char *buf, size_t bufsz)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	/* Our own names, not the locale's (RFC 5322 §3.3). */
	if (!bsnprintf(buf, bufsz, "%s, %d %s %d %02d:%02d:%02d +0000",
	    wd[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec) && bufsz > 0)
		buf[0] = '\0';
}

/*
 * bounce_compose_clean - append src to dst with CR, LF, TAB and the other
 * controls (and DEL) made spaces; a byte >= 0x80 is kept only with utf8
 * and when it starts well-formed, printable UTF-8, else it becomes '?'.
 * At most max bytes of src are read. Returns whether 8-bit bytes were
 * written.
 */
static bool
bounce_compose_clean(struct sbuf *dst, const char *src, size_t max,
    bool utf8)
{
	const unsigned char	*p = (const unsigned char *)src;
	size_t			 n, k;
	uint32_t		 cp;
	bool			 eight = false;

	if (src == NULL)
		return false;
	n = strnlen(src, max);
	while (n > 0) {
		k = 1;
		if (*p < 0x20 || *p == 0x7f)
			sbuf_catc(dst, ' ');
		else if (*p < 0x80)
			sbuf_catc(dst, *p);
		else if (utf8 && (k = smtp_addr_utf8_len(p, n, &cp)) > 0 &&
		    strl_cp_shown(cp)) {
			sbuf_catn(dst, p, k);
			eight = true;
		} else {
			sbuf_catc(dst, '?');
			k = 1;
		}
		p += k;
		n -= k;
	}
	return eight;
}

static bool
bounce_compose_has8(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* bounce_compose_host_ok - is s a host name or address literal we can
 * write as "dns; s" (letters, digits, '.', '-', '_', ':', '[', ']')? A
 * Remote-MTA that is not is left out, not cleaned into something else. */
static bool
bounce_compose_host_ok(const char *s)
{
	return s[0] != '\0' && strlen(s) < DSN_MTA_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_:[]") == strlen(s);
}

/*
 * bounce_compose_fold - append the clean text `v` as a header field (name
 * NULL: as lines of text, each starting with `indent` spaces) wrapped at
 * spaces to BOUNCE_COMPOSE_WIDTH columns; runs of spaces become one. A
 * word too long for a line of 998 octets is cut (it cannot happen with
 * the queue's field limits). Ends with CRLF.
 */
static void
bounce_compose_fold(struct sbuf *b, const char *name, const char *v,
    size_t indent)
{
	size_t	col, w, i, cut;
	bool	need_sp = name != NULL, empty = true;

	if (name != NULL) {
		sbuf_catf(b, "%s:", name);
		col = strlen(name) + 1;
		cut = BOUNCE_LINE_MAX - 2 - col;
		indent = 1;	/* a continuation line starts with a space */
	} else {
		for (i = 0; i < indent; i++)
			sbuf_catc(b, ' ');
		col = indent;
		cut = BOUNCE_LINE_MAX - 2 - indent;
	}
	for (;;) {
		while (*v == ' ')
			v++;
		if (*v == '\0')
			break;
		for (w = 0; v[w] != '\0' && v[w] != ' '; w++)
			;
		if (w > cut)
			w = cut;
		if (!empty && col + 1 + w > BOUNCE_COMPOSE_WIDTH) {
			sbuf_cat(b, "\r\n");
			for (i = 0; i < indent; i++)
				sbuf_catc(b, ' ');
			col = indent;
			need_sp = false;
			empty = true;
		}
		if (need_sp) {
			sbuf_catc(b, ' ');
			col++;
		}
		sbuf_catn(b, v, w);
		col += w;
		v += w;
		need_sp = true;
		empty = false;
	}
	sbuf_cat(b, "\r\n");
}

/* bounce_compose_field - a header field from raw (hostile) text. */
static void
bounce_compose_field(struct sbuf *b, const char *name, const char *prefix,
    const char *raw, size_t max, bool utf8)
{
	struct sbuf	*v = sbuf_new();

	if (prefix != NULL)
		sbuf_cat(v, prefix);
	bounce_compose_clean(v, raw, max, utf8);
	bounce_compose_fold(b, name, sbuf_str(v), 0);
	sbuf_free(v);
}

/* bounce_compose_para - a paragraph of the text part, then a blank
 * line. */
static void
bounce_compose_para(struct sbuf *b, const char *text, size_t indent)
{
	bounce_compose_fold(b, NULL, text, indent);
	sbuf_cat(b, "\r\n");
}

static const char *
bounce_compose_domain(const char *addr)
{
	const char	*at = strrchr(addr, '@');

	return at != NULL ? at + 1 : addr;
}

/* bounce_compose_addrs - "<a>", "<a> and <b>", "<a>, <b> and <c>". */
static void
bounce_compose_addrs(struct bounce_compose_ctx *cx, struct sbuf *b)
{
	const struct bounce_input	*in = cx->in;
	size_t				 i, k = 0, total = 0;

	for (i = 0; i < in->nitems; i++)
		if (in->include == NULL || in->include[i])
			total++;
	for (i = 0; i < in->nitems; i++) {
		if (in->include != NULL && !in->include[i])
			continue;
		if (k > 0)
			sbuf_cat(b, k + 1 == total ? " and " : ", ");
		sbuf_catc(b, '<');
		bounce_compose_clean(b, in->items[i].rcpt->addr,
		    QUEUE_ADDR_MAX, cx->utf8);
		sbuf_catc(b, '>');
		k++;
	}
}

/* bounce_compose_days - "3 days", "5 hours", "20 minutes". */
static void
bounce_compose_age(struct sbuf *b, int64_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 2 * 86400)
		sbuf_catf(b, "%lld days", (long long)(secs / 86400));
	else if (secs >= 2 * 3600)
		sbuf_catf(b, "%lld hours", (long long)(secs / 3600));
	else
		sbuf_catf(b, "%lld minutes", (long long)(secs / 60));
}

/* bounce_compose_why - the paragraph on one recipient: what happened
 * and what the sender can do, in the words of its cause. */
static void
bounce_compose_why(struct bounce_compose_ctx *cx, struct sbuf *t,
    const struct bounce_item *it)
{
	const struct dsn	*d = &it->dsn;
	struct sbuf		*p = sbuf_new(), *dom = sbuf_new();
	struct sbuf		*mta = sbuf_new();
	char			 date[64];
	bool			 reply = d->reply[0] != '\0';

	/* The struct may have been filled past dsn_from_reply(). */
	if (bounce_compose_host_ok(d->rmta))
		sbuf_cat(mta, d->rmta);

	bounce_compose_clean(dom, bounce_compose_domain(it->rcpt->addr),
	    QUEUE_ADDR_MAX, cx->utf8);
	sbuf_catc(p, '<');
	bounce_compose_clean(p, it->rcpt->addr, QUEUE_ADDR_MAX, cx->utf8);
	sbuf_cat(p, ">: ");
	switch (d->cause) {
	case DSN_CAUSE_REPLY:
		if (sbuf_len(mta) > 0)
			sbuf_catf(p, "the receiving server %s refused it",
			    sbuf_str(mta));
		else
			sbuf_cat(p, "the receiving server refused it");
		sbuf_cat(p, reply ? " and said:" : ".");
		break;
	case DSN_CAUSE_EXPIRED:
		sbuf_cat(p, "it could not be delivered in ");
		bounce_compose_age(p, (int64_t)cx->in->now -
		    cx->in->msg->arrival);
		sbuf_cat(p, " of trying, and the mail system has given up.");
		if (reply)
			sbuf_cat(p, " The last attempt got this reply:");
		break;
	case DSN_CAUSE_HOLD_EXPIRED:
		sbuf_catf(p, "this server keeps the mail of %s until its site "
		    "connects to collect it, and the site for %s never "
		    "connected to collect it in ", sbuf_str(dom),
		    sbuf_str(dom));
		bounce_compose_age(p, (int64_t)cx->in->now -
		    cx->in->msg->arrival);
		sbuf_cat(p, ". The recipient's own mail server may be down "
		    "or gone; reach the recipient another way.");
		break;
	case DSN_CAUSE_NULLMX:
		sbuf_catf(p, "the domain %s says that it accepts no mail at "
		    "all (it publishes a null MX record, RFC 7505). Check "
		    "the address: it may be mistyped or out of use.",
		    sbuf_str(dom));
		break;
	case DSN_CAUSE_NXDOMAIN:
		sbuf_catf(p, "the domain %s does not exist. Check the "
		    "address for a typing mistake.", sbuf_str(dom));
		break;
	case DSN_CAUSE_LOOP:
		sbuf_catf(p, "the mail servers of %s point back to this "
		    "server (%s), so the message would go round in a loop. "
		    "This is a mistake in the recipient site's set-up; tell "
		    "its postmaster.", sbuf_str(dom), cx->host);
		break;
	case DSN_CAUSE_HOPS:
		sbuf_cat(p, "the message passed through too many mail "
		    "servers (too many Received: header fields), which "
		    "means it is going round in a forwarding loop. Check "
		    "the forwarding rules of this address.");
		break;
	case DSN_CAUSE_ADMIN:
		sbuf_catf(p, "the message was returned by the administrator "
		    "of %s before it could be delivered. Write to "
		    "postmaster@%s to ask why.", cx->host, cx->host);
		break;
	case DSN_CAUSE_DELAY:
		sbuf_cat(p, "not delivered yet.");
		if (reply)
			sbuf_cat(p, " The last attempt got this reply:");
		break;
	case DSN_CAUSE_SUCCESS:
		if (sbuf_len(mta) > 0)
			sbuf_catf(p, "relayed to %s", sbuf_str(mta));
		else
			sbuf_cat(p, "relayed to the next mail server");
		sbuf_cat(p, ", which does not send delivery notifications;"
		    " you will hear no more of this message from there.");
		break;
	}
	bounce_compose_para(t, sbuf_str(p), 0);
	if (reply && d->cause != DSN_CAUSE_SUCCESS) {
		sbuf_reset(p);
		bounce_compose_clean(p, d->reply, DSN_REPLY_MAX, false);
		bounce_compose_para(t, sbuf_str(p), 4);
	}
	if (d->cause == DSN_CAUSE_REPLY) {
		sbuf_reset(p);
		if (strncmp(d->status, "5.1.", 4) == 0)
			sbuf_cat(p, "The address is probably wrong: check it "
			    "for a typing mistake, or ask the recipient for "
			    "the right one.");
		else if (strncmp(d->status, "5.2.", 4) == 0)
			sbuf_cat(p, "The recipient's mailbox cannot take it "
			    "(full, too large or disabled): reach the "
			    "recipient another way, or send less.");
		else if (strncmp(d->status, "5.7.", 4) == 0)
			sbuf_cat(p, "The receiving server refused it by its "
			    "policy: ask the recipient or their postmaster "
			    "why.");
		else
			sbuf_cat(p, "If the address is right, reach the "
			    "recipient another way or ask their postmaster.");
		bounce_compose_para(t, sbuf_str(p), 0);
	} else if (d->cause == DSN_CAUSE_EXPIRED) {
		bounce_compose_para(t, "The recipient's mail server may be "
		    "down. You can send the message again later, or reach "
		    "the recipient another way.", 0);
	} else if (d->cause == DSN_CAUSE_DELAY) {
		sbuf_reset(p);
		sbuf_cat(p, "You do not need to do anything: the mail system "
		    "keeps trying");
		if (it->retry_until > 0) {
			bounce_compose_date((time_t)it->retry_until, date,
			    sizeof(date));
			sbuf_catf(p, " until %s, and tells you if it gives "
			    "up", date);
		}
		sbuf_cat(p, ". Do not send the message again.");
		bounce_compose_para(t, sbuf_str(p), 0);
	}
	sbuf_free(p);
	sbuf_free(dom);
	sbuf_free(mta);
}

/* bounce_compose_text - the first part: plain words. */
static void
bounce_compose_text(struct bounce_compose_ctx *cx, struct sbuf *t,
    bool hdrcut, bool eight, bool bodybad)
{
	const struct bounce_input	*in = cx->in;
	const struct bounce_plan	*pl = in->plan;
	struct sbuf			*p = sbuf_new();
	char				 date[64];
	size_t				 i;

	switch (pl->kind) {
	case DSN_KIND_FAILURE:
		if (pl->to == BOUNCE_TO_POSTMASTER) {
			sbuf_cat(p, "A message from the empty sender <> (a "
			    "delivery notification, or mail that wants no "
			    "reply) to ");
			bounce_compose_addrs(cx, p);
			sbuf_cat(p, " could not be delivered. It cannot be "
			    "returned to its sender, so this copy goes to "
			    "the postmaster instead.");
		} else {
			sbuf_cat(p, "Your message to ");
			bounce_compose_addrs(cx, p);
			sbuf_cat(p, " could not be delivered.");
		}
		break;
	case DSN_KIND_DELAY:
		sbuf_cat(p, "Your message to ");
		bounce_compose_addrs(cx, p);
		sbuf_cat(p, " has not been delivered yet: it has waited ");
		bounce_compose_age(p, (int64_t)in->now - in->msg->arrival);
		sbuf_cat(p, " and the mail system is still trying. This is "
		    "only a warning.");
		break;
	case DSN_KIND_SUCCESS:
		sbuf_cat(p, "Your message to ");
		bounce_compose_addrs(cx, p);
		sbuf_cat(p, " was passed on successfully.");
		break;
	}
	bounce_compose_para(t, sbuf_str(p), 0);
	sbuf_reset(p);
	bounce_compose_date((time_t)in->msg->arrival, date, sizeof(date));
	sbuf_catf(p, "This report comes from the mail system at %s, which "
	    "took the message in on %s.", cx->host, date);
	bounce_compose_para(t, sbuf_str(p), 0);
	for (i = 0; i < in->nitems; i++)
		if (in->include == NULL || in->include[i])
			bounce_compose_why(cx, t, &in->items[i]);
	sbuf_reset(p);
	if (pl->full)
		sbuf_cat(p, "Your message is attached below.");
	else if (bodybad)
		sbuf_cat(p, "Your message cannot be returned whole (it is "
		    "binary, a line is longer than mail allows, or it holds "
		    "NUL bytes), so only its headers are attached below.");
	else if (pl->capped)
		sbuf_catf(p, "Your message was larger than the limit of "
		    "%llu bytes for returned mail (its size: %llu bytes), "
		    "so only its headers are attached below.",
		    (unsigned long long)cx->bc->bounce_size_limit,
		    (unsigned long long)pl->size);
	else
		sbuf_cat(p, "The headers of your message are attached "
		    "below.");
	if (hdrcut)
		sbuf_cat(p, " They were too long to return whole, so they "
		    "are cut short.");
	if (eight)
		sbuf_cat(p, " The attached part contains 8-bit characters.");
	bounce_compose_para(t, sbuf_str(p), 0);
	sbuf_free(p);
}

/* bounce_compose_xtext - an ENVID or ORCPT value, decoded from xtext
 * when it decodes to printable ASCII, else as stored; cleaned. */
static void
bounce_compose_xtext(struct sbuf *b, const char *x, size_t max, bool utf8)
{
	char	dec[QUEUE_ORCPT_MAX + 1];
	int	n, i;

	n = dsn_xtext_decode(x, dec, sizeof(dec));
	for (i = 0; i < n; i++)
		if (dec[i] < 0x20 || dec[i] == 0x7f)
			n = -1;
	bounce_compose_clean(b, n >= 0 ? dec : x, max, utf8);
}

/* bounce_compose_addr_type - "rfc822" for an ASCII address; "utf-8"
 * (RFC 6533 §3) for a UTF-8 one, which makes the report
 * message/global-delivery-status. */
static const char *
bounce_compose_addr_type(struct bounce_compose_ctx *cx, const char *a)
{
	if (cx->utf8 && bounce_compose_has8(a, strlen(a))) {
		cx->global_ds = true;
		return "utf-8";
	}
	return "rfc822";
}

/* bounce_compose_is_reply - does text start with an SMTP reply code? */
static bool
bounce_compose_is_reply(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == '\0' || s[3] == ' ' || s[3] == '-');
}

/* bounce_compose_status - the second part: RFC 3464 §2 fields. */
static void
bounce_compose_status(struct bounce_compose_ctx *cx, struct sbuf *s)
{
	const struct bounce_input	*in = cx->in;
	const struct qmsg		*m = in->msg;
	struct sbuf			*v = sbuf_new();
	char				 date[64], name[QUEUE_CLIENT_MAX + 1];
	const char			*sq, *type;
	size_t				 i;

	sbuf_catf(s, "Reporting-MTA: dns; %s\r\n", cx->host);
	if (m->envid[0] != '\0') {
		/* MUST when ENVID was given, MUST NOT otherwise (§6.3). */
		bounce_compose_xtext(v, m->envid, QUEUE_ENVID_MAX, false);
		bounce_compose_fold(s, "Original-Envelope-Id", sbuf_str(v),
		    0);
	}
	/* client is "name[addr]": the name when it is a domain. */
	strl_copy(name, m->client, sizeof(name));
	if ((sq = strchr(name, '[')) != NULL)
		name[sq - name] = '\0';
	if (name[0] != '\0' && strcmp(name, "unknown") != 0 &&
	    strchr(name, '.') != NULL && smtp_domain_valid(name, 0))
		sbuf_catf(s, "Received-From-MTA: dns; %s\r\n", name);
	if (m->arrival > 0) {
		bounce_compose_date((time_t)m->arrival, date, sizeof(date));
		sbuf_catf(s, "Arrival-Date: %s\r\n", date);
	}
	for (i = 0; i < in->nitems; i++) {
		const struct bounce_item	*it = &in->items[i];
		const struct dsn		*d = &it->dsn;
		const char			*semi;

		if (in->include != NULL && !in->include[i])
			continue;
		sbuf_cat(s, "\r\n");
		if (it->rcpt->orcpt[0] != '\0') {
			sbuf_reset(v);
			semi = strchr(it->rcpt->orcpt, ';');
			if (semi != NULL && semi > it->rcpt->orcpt &&
			    semi - it->rcpt->orcpt < 32 &&
			    strspn(it->rcpt->orcpt, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
			    (size_t)(semi - it->rcpt->orcpt)) {
				sbuf_catn(v, it->rcpt->orcpt,
				    (size_t)(semi + 1 - it->rcpt->orcpt));
				bounce_compose_xtext(v, semi + 1,
				    QUEUE_ORCPT_MAX, cx->utf8);
			} else {
				sbuf_cat(v, "rfc822;");
				bounce_compose_xtext(v, it->rcpt->orcpt,
				    QUEUE_ORCPT_MAX, cx->utf8);
			}
			bounce_compose_fold(s, "Original-Recipient",
			    sbuf_str(v), 0);
		}
		type = bounce_compose_addr_type(cx, it->rcpt->addr);
		sbuf_reset(v);
		sbuf_catf(v, "%s; ", type);
		bounce_compose_clean(v, it->rcpt->addr, QUEUE_ADDR_MAX,
		    cx->utf8);
		bounce_compose_fold(s, "Final-Recipient", sbuf_str(v), 0);
		sbuf_catf(s, "Action: %s\r\n", dsn_action_name(d->action));
		sbuf_catf(s, "Status: %s\r\n", dsn_status_valid(d->status) ?
		    d->status : d->action == DSN_ACTION_DELAYED ? "4.0.0" :
		    d->action == DSN_ACTION_FAILED ? "5.0.0" : "2.0.0");
		if (bounce_compose_host_ok(d->rmta))
			sbuf_catf(s, "Remote-MTA: dns; %s\r\n", d->rmta);
		/* An SMTP reply is "smtp;"; a local cause's text (a DNS
		 * answer, an operator's reason) is ours (RFC 3464 §2.3.6:
		 * an X- diagnostic type). */
		if (d->reply[0] != '\0')
			bounce_compose_field(s, "Diagnostic-Code",
			    bounce_compose_is_reply(d->reply) ? "smtp; " :
			    "X-Postern; ", d->reply, DSN_REPLY_MAX, false);
		if (it->last_attempt > 0) {
			bounce_compose_date((time_t)it->last_attempt, date,
			    sizeof(date));
			sbuf_catf(s, "Last-Attempt-Date: %s\r\n", date);
		}
		if (d->action == DSN_ACTION_DELAYED && it->retry_until > 0) {
			bounce_compose_date((time_t)it->retry_until, date,
			    sizeof(date));
			sbuf_catf(s, "Will-Retry-Until: %s\r\n", date);
		}
	}
	sbuf_free(v);
}

/* bounce_compose_line - append one line of the original (without its
 * end), NUL made '?', then CRLF; a line over 998 octets is hard-folded
 * with CRLF SP (only header lines get here: a body with one is returned
 * as headers). */
static void
bounce_compose_line(struct sbuf *b, const char *s, size_t n)
{
	size_t	i, col = 0;

	for (i = 0; i < n; i++) {
		if (col >= BOUNCE_LINE_MAX - 1) {
			sbuf_cat(b, "\r\n ");
			col = 1;
		}
		sbuf_catc(b, s[i] == '\0' ? '?' : s[i]);
		col++;
	}
	sbuf_cat(b, "\r\n");
}

/* bounce_compose_next_line - the line at s[*off..n): its length without
 * the line end; *off moves past the end (CRLF, a bare LF or a bare CR,
 * each one end). */
static size_t
bounce_compose_next_line(const char *s, size_t n, size_t *off)
{
	size_t	i = *off, len;

	while (i < n && s[i] != '\r' && s[i] != '\n')
		i++;
	len = i - *off;
	if (i < n && s[i] == '\r')
		i++;
	if (i < n && s[i] == '\n' && (i == *off + len || s[i - 1] == '\r'))
		i++;
	*off = i;
	return len;
}

/*
 * bounce_compose_returned - the third part's content into r: the header
 * section (up to the first empty line, at most BOUNCE_HDRS_MAX), or with
 * *full the whole message, which falls back to the headers (*full made
 * false, *bodybad set) when a body line is over 998 octets or holds a
 * NUL. Line ends become CRLF. *eight: 8-bit bytes; *hdrcut: headers cut.
 */
static void
bounce_compose_returned(const char *body, size_t n, bool *full,
    bool *bodybad, bool *eight, bool *hdrcut, struct sbuf *r)
{
	size_t	off = 0, start, len, hend = n;
	bool	inhdr = true;

	*bodybad = *hdrcut = false;
	if (body == NULL)
		n = 0;
	/* Find the end of the header section. */
	while (off < n) {
		start = off;
		len = bounce_compose_next_line(body, n, &off);
		if (len == 0) {
			hend = start;
			break;
		}
	}
	if (*full) {
		off = hend;
		while (off < n) {
			start = off;
			len = bounce_compose_next_line(body, n, &off);
			if (len > BOUNCE_LINE_MAX ||
			    memchr(body + start, '\0', len) != NULL) {
				*full = false;
				*bodybad = true;
				break;
			}
		}
	}
	off = 0;
	while (off < n) {
		start = off;
		len = bounce_compose_next_line(body, n, &off);
		if (inhdr && start >= hend) {
			if (!*full)
				break;
			inhdr = false;
		}
		if (inhdr && sbuf_len(r) + len + 2 > BOUNCE_HDRS_MAX) {
			*hdrcut = true;
			if (!*full)
				break;
			/* A full return keeps it all (it is under the
			 * size limit, or the operator set none). */
		}
		bounce_compose_line(r, body + start, len);
	}
	*eight = bounce_compose_has8(sbuf_str(r), sbuf_len(r));
	if (*full)
		*hdrcut = false;
}

/* bounce_compose_token - the usable characters of the caller's token. */
static void
bounce_compose_token(const char *in, char out[BOUNCE_COMPOSE_TOKEN + 1])
{
	size_t	i, o = 0;

	for (i = 0; in != NULL && in[i] != '\0' &&
	    o < BOUNCE_COMPOSE_TOKEN; i++)
		if ((in[i] >= 'a' && in[i] <= 'z') ||
		    (in[i] >= 'A' && in[i] <= 'Z') ||
		    (in[i] >= '0' && in[i] <= '9') || in[i] == '.' ||
		    in[i] == '-' || in[i] == '_')
			out[o++] = in[i];
	if (o == 0)
		out[o++] = '0';
	out[o] = '\0';
}

static bool
bounce_compose_in(const struct sbuf *b, const char *needle)
{
	return memmem(sbuf_str(b), sbuf_len(b), needle, strlen(needle)) !=
	    NULL;
}

int
bounce_compose(const struct bounce_conf *bc, const struct bounce_input *in,
    struct sbuf *out, unsigned *outflags)
{
	struct bounce_compose_ctx	 cx;
	const struct bounce_plan	*pl = in->plan;
	struct sbuf			*text, *status, *ret, *v;
	char				 tok[BOUNCE_COMPOSE_TOKEN + 1];
	char				 date[64], bnd[128];
	const char			*subject, *rtype;
	struct tm			 tm;
	time_t				 now = in->now;
	size_t				 i, ninc = 0;
	unsigned			 k;
	bool				 full, bodybad, eight, hdrcut, ueight;
	bool				 binary;

	*outflags = 0;
	for (i = 0; i < in->nitems; i++)
		if (in->include == NULL || in->include[i])
			ninc++;
	if (pl == NULL || pl->to == BOUNCE_TO_NONE || ninc == 0)
		return -1;
	memset(&cx, 0, sizeof(cx));
	cx.bc = bc;
	cx.in = in;
	cx.utf8 = (in->msg->flags & QMSG_F_SMTPUTF8) != 0;
	/* Our own name: a config value, still kept to host characters. */
	for (i = 0, k = 0; bc->myhostname != NULL &&
	    bc->myhostname[i] != '\0' && k + 1 < sizeof(cx.host); i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
		    bc->myhostname[i]) != NULL)
			cx.host[k++] = bc->myhostname[i];
	cx.host[k] = '\0';
	if (cx.host[0] == '\0')
		strl_copy(cx.host, "localhost", sizeof(cx.host));
	bounce_compose_token(in->token, tok);

	text = sbuf_new();
	status = sbuf_new();
	ret = sbuf_new();
	v = sbuf_new();
	/* A BINARYMIME original (RFC 3030 §3) is not lines: made into
	 * CRLF lines it would come back damaged, and it could go on only
	 * by BDAT to a BINARYMIME server. Its headers come back. */
	binary = (in->msg->flags & QMSG_F_BINARYMIME) != 0;
	full = pl->full && !binary;
	bounce_compose_returned(in->body, in->bodylen, &full, &bodybad,
	    &eight, &hdrcut, ret);
	if (pl->full && binary)
		bodybad = true;
	{
		struct bounce_plan	 pl2 = *pl;
		struct bounce_input	 in2 = *in;

		/* A body that cannot be returned whole comes back as
		 * headers, and the text says why. */
		pl2.full = full;
		in2.plan = &pl2;
		cx.in = &in2;
		bounce_compose_text(&cx, text, hdrcut, eight, bodybad);
		bounce_compose_status(&cx, status);
		cx.in = in;
	}
	ueight = bounce_compose_has8(sbuf_str(text), sbuf_len(text)) ||
	    bounce_compose_has8(sbuf_str(status), sbuf_len(status));

	/* A boundary that occurs in no part (RFC 2046 §5.1.1). Each
	 * candidate that is refused occurs in the content, which holds
	 * finitely many: the loop ends. */
	memset(&tm, 0, sizeof(tm));
	gmtime_r(&now, &tm);
	for (k = 0;; k++) {
		bsnprintf(bnd, sizeof(bnd), "=_postern_%s_%u", tok, k);
		if (!bounce_compose_in(text, bnd) &&
		    !bounce_compose_in(status, bnd) &&
		    !bounce_compose_in(ret, bnd))
			break;
	}

	switch (pl->kind) {
	case DSN_KIND_DELAY:
		subject = "Delayed Mail (still being retried)";
		break;
	case DSN_KIND_SUCCESS:
		subject = "Successful Mail Delivery Report";
		break;
	default:
		subject = pl->to == BOUNCE_TO_POSTMASTER ?
		    "Postmaster Copy: Undelivered Mail" :
		    "Undelivered Mail Returned to Sender";
		break;
	}
	bounce_compose_date(now, date, sizeof(date));
	sbuf_catf(out, "Received: by %s (postern) id %s;\r\n\t%s\r\n",
	    cx.host, tok, date);
	sbuf_catf(out, "Date: %s\r\n", date);
	sbuf_catf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    cx.host);
	sbuf_reset(v);
	sbuf_catc(v, '<');
	/* '<' and '>' inside would end the angle-addr early: '?'. */
	{
		size_t	 start = sbuf_len(v), j;

		char	 a[QUEUE_ADDR_MAX + 1];

		/* An ASCII local part with an international domain is
		 * written with A-labels: the DSN then needs no SMTPUTF8
		 * for its header and reaches a server without it. */
		if (smtp_idn_local_has8(pl->rcpt) ||
		    smtp_idn_addr_ascii(pl->rcpt, a, sizeof(a), NULL) != 0)
			strl_copy(a, pl->rcpt, sizeof(a));
		if (bounce_compose_clean(v, a, QUEUE_ADDR_MAX,
		    cx.utf8))
			*outflags |= BOUNCE_OUT_SMTPUTF8;
		for (j = start; j < sbuf_len(v); j++)
			if (v->s[j] == '<' || v->s[j] == '>' ||
			    v->s[j] == ' ')
				v->s[j] = '?';
	}
	sbuf_catc(v, '>');
	bounce_compose_fold(out, "To", sbuf_str(v), 0);
	sbuf_catf(out, "Subject: %s\r\n", subject);
	sbuf_catf(out, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tok, cx.host);
	sbuf_cat(out, "Auto-Submitted: auto-replied\r\n");
	sbuf_cat(out, "MIME-Version: 1.0\r\n");
	sbuf_catf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", bnd);
	sbuf_catf(out, "Content-Transfer-Encoding: %s\r\n",
	    eight || ueight ? "8bit" : "7bit");
	sbuf_cat(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	sbuf_catf(out, "--%s\r\n", bnd);
	sbuf_cat(out, "Content-Description: Notification\r\n");
	if (bounce_compose_has8(sbuf_str(text), sbuf_len(text)))
		sbuf_cat(out, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n");
	else
		sbuf_cat(out, "Content-Type: text/plain; charset=us-ascii\r\n");
	sbuf_cat(out, "\r\n");
	sbuf_catn(out, sbuf_str(text), sbuf_len(text));

	sbuf_catf(out, "--%s\r\n", bnd);
	sbuf_cat(out, "Content-Description: Delivery report\r\n");
	if (cx.global_ds)
		sbuf_cat(out, "Content-Type: message/global-delivery-status\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n");
	else
		sbuf_cat(out, "Content-Type: message/delivery-status\r\n");
	sbuf_cat(out, "\r\n");
	sbuf_catn(out, sbuf_str(status), sbuf_len(status));
	sbuf_cat(out, "\r\n");

	sbuf_catf(out, "--%s\r\n", bnd);
	if (full) {
		rtype = cx.utf8 ? "message/global" : "message/rfc822";
		sbuf_catf(out, "Content-Description: %s Message\r\n",
		    pl->kind == DSN_KIND_DELAY ? "Delayed" : "Undelivered");
	} else {
		rtype = cx.utf8 ? "message/global-headers" :
		    "text/rfc822-headers";
		sbuf_catf(out, "Content-Description: %s Message Headers\r\n",
		    pl->kind == DSN_KIND_FAILURE ? "Undelivered" :
		    pl->kind == DSN_KIND_DELAY ? "Delayed" : "Delivered");
	}
	sbuf_catf(out, "Content-Type: %s\r\n", rtype);
	if (eight)
		sbuf_cat(out, "Content-Transfer-Encoding: 8bit\r\n");
	sbuf_cat(out, "\r\n");
	sbuf_catn(out, sbuf_str(ret), sbuf_len(ret));
	sbuf_catf(out, "\r\n--%s--\r\n", bnd);

	if (eight || ueight)
		*outflags |= BOUNCE_OUT_8BITMIME;
	sbuf_free(text);
	sbuf_free(status);
	sbuf_free(ret);
	sbuf_free(v);
	return 0;
}

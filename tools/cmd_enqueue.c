/*
 * cmd_enqueue.c - `postern enqueue` and the sendmail(1) interface.
 *
 * A message from standard input is stored canonically: every line ends in
 * CRLF (a local file's bare LF becomes CRLF, a stray CR becomes a space, as
 * Postfix's cleanup does), so what leaves later can never carry a bare CR
 * or LF that a receiver might read as an end of data. A line longer than
 * line_length_limit, a NUL byte, a message over message_size_limit or a
 * malformed address is refused with a message and exit 2; nothing is
 * queued then. Missing Date:, Message-ID: and From: headers are added, and
 * a Received: line records the local submission.
 *
 * When the daemon runs, the message goes to its listener (inject.c), which
 * stores it in its next group commit and writes the same Received: line
 * with the uid the kernel gives it; when not, or when it does not take
 * the message, we store it ourselves, one transaction and fsync each.
 */
#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "route_policy.h"
#include "tools.h"

struct enqueue_opts {
	const char	 *cmd;		/* for messages */
	const char	 *sender;	/* NULL: the user at myhostname */
	const char	 *fullname;
	bool		  from_headers;	/* -t */
	bool		  dot_ends;	/* no -i: a lone "." ends input */
	bool		  quiet;	/* sendmail mode prints nothing */
	char		**rcpt;
	int		  nrcpt;
};

struct enqueue_rcpts {
	struct qrcpt	*v;
	size_t		 n, cap;
};

static int
enqueue_add_rcpt(const struct enqueue_opts *o, const struct conf *conf,
    struct enqueue_rcpts *rs, const char *text)
{
	struct smtp_addr	 a;
	char			 buf[SMTP_PATH_MAX * 2];
	const char		*in = text, *why;
	size_t			 i;
	int			 rc;

	/* A bare local name is a user here, as sendmail has it. */
	if (strchr(text, '@') == NULL && text[0] != '<' && text[0] != '"') {
		if (!bsnprintf(buf, sizeof(buf), "%s@%s", text,
		    conf->myhostname))
			return tools_usage(o->cmd, "recipient too long: %s",
			    text);
		in = buf;
	}
	rc = smtp_addr_parse(in, strlen(in), SMTP_ADDR_BARE_OK | SMTP_ADDR_UTF8,
	    &a, NULL);
	if (rc != 0)
		return tools_usage(o->cmd, "bad recipient address \"%s\": %s",
		    text, smtp_addr_strerror(rc));
	if (a.addr[0] == '\0')
		return tools_usage(o->cmd, "empty recipient address");
	/* A U-label domain must have A-labels: DNS knows no other. */
	if (smtp_idn_addr_ascii(a.addr, buf, sizeof(buf), &why) != 0)
		return tools_usage(o->cmd, "bad recipient address \"%s\": "
		    "not a valid international domain name (%s)", text, why);
	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].addr, a.addr) == 0)
			return 0;	/* the same address once */
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->v = xreallocarray(rs->v, rs->cap, sizeof(*rs->v));
	}
	memset(&rs->v[rs->n], 0, sizeof(rs->v[0]));
	strl_copy(rs->v[rs->n].addr, a.addr, sizeof(rs->v[0].addr));
	rs->n++;
	return 0;
}

/*
 * enqueue_header_addrs - the addresses of an address-list header value
 * (RFC 5322 §3.4): split on commas outside quotes, comments and angle
 * brackets; take the <angle-addr> when there is one; drop group names.
 */
static int
enqueue_header_addrs(const struct enqueue_opts *o, const struct conf *conf,
    struct enqueue_rcpts *rs, const char *v)
{
	struct sbuf	*tok = sbuf_new();
	struct sbuf	*angle = sbuf_new();
	int		 depth = 0, rc = 0;
	bool		 quoted = false, inangle = false, hadangle = false;
	const char	*p;

	for (p = v;; p++) {
		char c = *p;

		if (c == '\0' || (c == ',' && !quoted && depth == 0 &&
		    !inangle) || (c == ';' && !quoted && depth == 0)) {
			const char *t = hadangle ? sbuf_str(angle) :
			    sbuf_str(tok);
			char *s = xstrdup(t), *e;

			while (*s && isspace((unsigned char)*s))
				memmove(s, s + 1, strlen(s));
			e = s + strlen(s);
			while (e > s && isspace((unsigned char)e[-1]))
				*--e = '\0';
			if (*s != '\0')
				rc = enqueue_add_rcpt(o, conf, rs, s);
			free(s);
			sbuf_reset(tok);
			sbuf_reset(angle);
			hadangle = false;
			if (c == '\0' || rc != 0)
				break;
			continue;
		}
		if (quoted) {
			if (c == '\\' && p[1] != '\0') {
				sbuf_catc(inangle ? angle : tok, c);
				c = *++p;
			} else if (c == '"')
				quoted = false;
			sbuf_catc(inangle ? angle : tok, c);
			continue;
		}
		if (depth > 0) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		switch (c) {
		case '(':
			depth++;
			break;
		case '"':
			quoted = true;
			sbuf_catc(inangle ? angle : tok, c);
			break;
		case '<':
			inangle = true;
			hadangle = true;
			sbuf_reset(angle);
			break;
		case '>':
			inangle = false;
			break;
		case ':':
			if (!inangle) {
				/* "group: a, b;" - the name is not an address */
				sbuf_reset(tok);
				break;
			}
			/* FALLTHROUGH */
		default:
			sbuf_catc(inangle ? angle : tok, c);
		}
	}
	sbuf_free(tok);
	sbuf_free(angle);
	return rc;
}

/* enqueue_read - standard input into canonical CRLF lines. */
static int
enqueue_read(const struct enqueue_opts *o, const struct conf *conf,
    struct sbuf *out)
{
	struct sbuf	*line = sbuf_new();
	size_t		 lineno = 0, maxline = (size_t)conf->line_length_limit - 2;
	int		 c, rc = 0;
	bool		 eof = false;

	while (!eof) {
		sbuf_reset(line);
		while ((c = getchar()) != EOF && c != '\n') {
			if (c == '\0') {
				rc = tools_usage(o->cmd, "line %zu: NUL byte "
				    "in message", lineno + 1);
				goto done;
			}
			sbuf_catc(line, c);
		}
		if (c == EOF) {
			eof = true;
			if (sbuf_len(line) == 0)
				break;
		}
		lineno++;
		if (sbuf_len(line) > 0 && line->s[line->len - 1] == '\r')
			line->s[--line->len] = '\0';
		if (o->dot_ends && strcmp(sbuf_str(line), ".") == 0)
			break;
		for (size_t i = 0; i < sbuf_len(line); i++)
			if (line->s[i] == '\r')
				line->s[i] = ' ';	/* a stray CR */
		if (sbuf_len(line) > maxline) {
			rc = tools_usage(o->cmd, "line %zu is %zu octets long; "
			    "the limit is %zu (line_length_limit)", lineno,
			    sbuf_len(line), maxline);
			goto done;
		}
		sbuf_catn(out, sbuf_str(line), sbuf_len(line));
		sbuf_cat(out, "\r\n");
		if (sbuf_len(out) > conf->message_size_limit) {
			rc = tools_usage(o->cmd, "message larger than "
			    "message_size_limit (%llu octets)",
			    (unsigned long long)conf->message_size_limit);
			goto done;
		}
	}
done:
	sbuf_free(line);
	return rc;
}

static bool
enqueue_hdr_is(const char *line, const char *name)
{
	size_t	n = strlen(name);

	return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/*
 * enqueue_headers - collect -t recipients, drop Bcc:, and add what is
 * missing. Returns the new message in *msg; its first *trace_len octets
 * are our Received: field (the daemon writes its own: inject.c).
 */
static int
enqueue_headers(const struct enqueue_opts *o, const struct conf *conf,
    const char *sender, struct sbuf *in, struct enqueue_rcpts *rs,
    struct sbuf *msg, size_t *trace_len)
{
	struct sbuf	*hdrs = sbuf_new(), *field = sbuf_new();
	char		 date[64];
	const char	*p = sbuf_str(in), *end = p + sbuf_len(in), *body;
	bool		 have_from = false, have_date = false, have_mid = false;
	bool		 drop = false, rcpt_field = false;
	time_t		 now = clock_now();
	struct tm	 tm;
	int		 rc = 0;

	/* The header section ends at the first empty line; a first line
	 * that is not a header field means there are no headers. */
	body = p;
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		size_t len = (size_t)(eol - p);
		const char *colon = memchr(p, ':', len);

		if (len == 0) {
			body = eol + 2;
			break;
		}
		if (*p == ' ' || *p == '\t') {
			if (p == sbuf_str(in)) {
				body = p;
				break;
			}
		} else {
			bool name_ok = colon != NULL && colon > p;

			for (const char *q = p; name_ok && q < colon; q++)
				if (*q <= ' ' || *q > '~')
					name_ok = false;
			if (!name_ok) {
				body = p;
				break;
			}
			/* A new field: finish the last one. */
			if (rcpt_field && o->from_headers)
				rc = enqueue_header_addrs(o, conf, rs,
				    strchr(sbuf_str(field), ':') + 1);
			if (rc != 0)
				goto done;
			sbuf_reset(field);
			rcpt_field = enqueue_hdr_is(p, "To") ||
			    enqueue_hdr_is(p, "Cc") || enqueue_hdr_is(p, "Bcc");
			drop = enqueue_hdr_is(p, "Bcc");
			have_from |= enqueue_hdr_is(p, "From");
			have_date |= enqueue_hdr_is(p, "Date");
			have_mid |= enqueue_hdr_is(p, "Message-ID");
		}
		sbuf_catn(field, p, len);
		if (!drop) {
			sbuf_catn(hdrs, p, len);
			sbuf_cat(hdrs, "\r\n");
		}
		p = eol + 2;
		body = p;
	}
	if (rcpt_field && o->from_headers && sbuf_len(field) > 0)
		rc = enqueue_header_addrs(o, conf, rs,
		    strchr(sbuf_str(field), ':') + 1);
	if (rc != 0)
		goto done;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	sbuf_catf(msg, "Received: by %s (postern, from userid %ld);\r\n\t%s\r\n",
	    conf->myhostname, (long)getuid(), date);
	*trace_len = sbuf_len(msg);
	sbuf_catn(msg, sbuf_str(hdrs), sbuf_len(hdrs));
	if (!have_from) {
		if (o->fullname != NULL)
			sbuf_catf(msg, "From: \"%s\" <%s>\r\n", o->fullname,
			    sender);
		else
			sbuf_catf(msg, "From: <%s>\r\n", sender);
	}
	if (!have_date)
		sbuf_catf(msg, "Date: %s\r\n", date);
	if (!have_mid) {
		unsigned long long r = ((unsigned long long)now << 20) ^
		    (unsigned long long)getpid() ^
		    ((unsigned long long)clock() << 32);

		sbuf_catf(msg, "Message-ID: <%llx.%ld@%s>\r\n", r,
		    (long)getpid(), conf->myhostname);
	}
	sbuf_cat(msg, "\r\n");
	sbuf_catn(msg, body, (size_t)(end - body));
done:
	sbuf_free(hdrs);
	sbuf_free(field);
	return rc;
}

/*
 * enqueue_daemon - hand the message to the running daemon (inject.c), so
 * that it shares the listener's group commit; 0 when it was queued there
 * (the id printed), -1 when we store it ourselves (no daemon, or it did
 * not take it: the reason is logged).
 */
static int
enqueue_daemon(const struct enqueue_opts *o, const struct conf *conf,
    const struct qnew *n, size_t trace_len, char id[QUEUE_ID_LEN + 1])
{
	struct inject_msg	m;
	char			why[512];

	memset(&m, 0, sizeof(m));
	m.sender = n->msg.sender;
	m.rcpt = n->rcpt;
	m.nrcpt = n->nrcpt;
	m.body = n->body + trace_len;
	m.len = n->bodylen - trace_len;
	m.eight = (n->msg.flags & QMSG_F_8BITMIME) != 0;
	m.utf8 = (n->msg.flags & QMSG_F_SMTPUTF8) != 0;
	if (inject_submit(conf, &m, id, why, sizeof(why)) != INJECT_QUEUED) {
		log_info("not handed to the daemon (%s): queueing it directly",
		    why);
		return -1;
	}
	log_info("%s: from=<%s>, size=%zu, nrcpt=%zu: queued by the daemon",
	    id, n->msg.sender, n->bodylen, n->nrcpt);
	if (!o->quiet)
		printf("%s\n", id);
	return 0;
}

static int
enqueue_run(struct tools_ctx *ctx, const struct enqueue_opts *o)
{
	struct conf		*conf = ctx->conf;
	struct enqueue_rcpts	 rs = { NULL, 0, 0 };
	struct sbuf		*in = sbuf_new(), *msg = sbuf_new();
	struct smtp_addr	 sa;
	struct qnew		 n;
	struct queue		*q = NULL;
	char			 sender[SMTP_PATH_MAX * 2], id[QUEUE_ID_LEN + 1];
	int64_t			 now = (int64_t)clock_now();
	size_t			 i, trace_len = 0;
	int			 rc;
	bool			 eight = false, utf8 = false;

	if (o->sender != NULL) {
		const char *s = o->sender;

		if (strchr(s, '@') == NULL && s[0] != '<' && s[0] != '\0') {
			if (!bsnprintf(sender, sizeof(sender), "%s@%s", s,
			    conf->myhostname)) {
				rc = tools_usage(o->cmd, "sender too long");
				goto out;
			}
			s = sender;
		}
		if ((rc = smtp_addr_parse(s, strlen(s), SMTP_ADDR_BARE_OK |
		    SMTP_ADDR_NULL_OK | SMTP_ADDR_UTF8, &sa, NULL)) != 0 &&
		    s[0] != '\0') {
			rc = tools_usage(o->cmd, "bad sender address \"%s\": %s",
			    o->sender, smtp_addr_strerror(rc));
			goto out;
		}
		if (s[0] == '\0')
			sa.addr[0] = '\0', sa.utf8 = false;
	} else {
		struct passwd *pw = getpwuid(getuid());

		bsnprintf(sender, sizeof(sender), "%s@%s",
		    pw ? pw->pw_name : "nobody", conf->myhostname);
		if ((rc = smtp_addr_parse(sender, strlen(sender),
		    SMTP_ADDR_BARE_OK | SMTP_ADDR_UTF8, &sa, NULL)) != 0) {
			rc = tools_usage(o->cmd, "cannot make a sender address "
			    "from \"%s\"", sender);
			goto out;
		}
	}
	utf8 = sa.utf8;
	for (i = 0; i < (size_t)o->nrcpt; i++)
		if ((rc = enqueue_add_rcpt(o, conf, &rs, o->rcpt[i])) != 0)
			goto out;
	if ((rc = enqueue_read(o, conf, in)) != 0)
		goto out;
	if ((rc = enqueue_headers(o, conf, sa.addr[0] ? sa.addr :
	    "MAILER-DAEMON", in, &rs, msg, &trace_len)) != 0)
		goto out;
	if (rs.n == 0) {
		rc = tools_usage(o->cmd, "no recipients");
		goto out;
	}
	if ((int)rs.n > conf->max_recipients) {
		rc = tools_usage(o->cmd, "%zu recipients; max_recipients is %d",
		    rs.n, conf->max_recipients);
		goto out;
	}
	for (i = 0; i < rs.n; i++) {
		utf8 |= smtp_addr_parse(rs.v[i].addr, strlen(rs.v[i].addr),
		    SMTP_ADDR_BARE_OK | SMTP_ADDR_UTF8, &sa, NULL) == 0 &&
		    sa.utf8;
		route_rcpt_init(conf, &rs.v[i], now);
	}
	for (i = 0; i < sbuf_len(msg); i++)
		if ((unsigned char)msg->s[i] >= 0x80) {
			eight = true;
			break;
		}

	memset(&n, 0, sizeof(n));
	strl_copy(n.msg.sender, o->sender != NULL && o->sender[0] == '\0' ?
	    "" : sa.addr, sizeof(n.msg.sender));
	/* sa was reused for recipients: take the sender again. */
	if (o->sender == NULL || o->sender[0] != '\0') {
		const char *s = o->sender ? o->sender : sender;

		if (o->sender != NULL && strchr(s, '@') == NULL &&
		    s[0] != '<')
			s = sender;
		smtp_addr_parse(s, strlen(s), SMTP_ADDR_BARE_OK |
		    SMTP_ADDR_NULL_OK | SMTP_ADDR_UTF8, &sa, NULL);
		strl_copy(n.msg.sender, sa.addr, sizeof(n.msg.sender));
	}
	bsnprintf(n.msg.client, sizeof(n.msg.client), "local[uid %ld]",
	    (long)getuid());
	n.msg.flags = (eight ? QMSG_F_8BITMIME : 0) |
	    (utf8 ? QMSG_F_SMTPUTF8 : 0);
	n.body = sbuf_str(msg);
	n.bodylen = sbuf_len(msg);
	n.rcpt = rs.v;
	n.nrcpt = rs.n;
	if (enqueue_daemon(o, conf, &n, trace_len, id) == 0) {
		rc = 0;
		goto out;
	}
	if ((q = tools_open_queue(ctx, QUEUE_CREATE)) == NULL) {
		rc = TOOLS_EXIT_FAIL;
		goto out;
	}
	if ((rc = queue_enqueue(q, &n)) != 0) {
		rc = tools_fail(o->cmd, "cannot queue the message: %s (%s)",
		    queue_strerror(rc), queue_errmsg(q));
		goto out;
	}
	queue_id_format(n.msg.id, id);
	log_info("%s: from=<%s>, size=%zu, nrcpt=%zu, client=%s", id,
	    n.msg.sender, n.bodylen, n.nrcpt, n.msg.client);
	if (!o->quiet)
		printf("%s\n", id);
	rc = 0;
out:
	queue_close(q);
	free(rs.v);
	sbuf_free(in);
	sbuf_free(msg);
	return rc;
}

int
cmd_enqueue(struct tools_ctx *ctx, int argc, char **argv)
{
	struct enqueue_opts	o;
	int			i;

	memset(&o, 0, sizeof(o));
	o.cmd = "enqueue";
	o.dot_ends = false;	/* our own command reads to EOF */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			o.sender = argv[++i];
		else if (strcmp(argv[i], "-F") == 0 && i + 1 < argc)
			o.fullname = argv[++i];
		else if (strcmp(argv[i], "-t") == 0)
			o.from_headers = true;
		else if (strcmp(argv[i], "-i") == 0)
			o.dot_ends = false;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			return tools_usage("enqueue", "unknown option \"%s\"",
			    argv[i]);
	}
	o.rcpt = argv + i;
	o.nrcpt = argc - i;
	return enqueue_run(ctx, &o);
}

/*
 * cmd_sendmail - the options mail programs pass: -f -F -t -i -oi, and
 * ignored ones (-odb -odq -oem -v -N ... -bm); anything else is refused.
 */
int
cmd_sendmail(struct tools_ctx *ctx, int argc, char **argv)
{
	struct enqueue_opts	o;
	int			i, rc;

	memset(&o, 0, sizeof(o));
	o.cmd = "sendmail";
	o.dot_ends = true;
	o.quiet = true;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-r", 2) == 0) {
			o.sender = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : "");
		} else if (strncmp(a, "-F", 2) == 0) {
			o.fullname = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] :
			    "");
		} else if (strcmp(a, "-t") == 0) {
			o.from_headers = true;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
			o.dot_ends = false;
		} else if (strcmp(a, "-C") == 0 && i + 1 < argc) {
			i++;		/* read by main() */
		} else if (strcmp(a, "-N") == 0 || strcmp(a, "-B") == 0 ||
		    strcmp(a, "-R") == 0 || strcmp(a, "-V") == 0 ||
		    strcmp(a, "-O") == 0 || strcmp(a, "-X") == 0) {
			if (i + 1 < argc)
				i++;	/* accepted and ignored, with a value */
		} else if (strncmp(a, "-o", 2) == 0 || strcmp(a, "-v") == 0 ||
		    strcmp(a, "-bm") == 0 || strncmp(a, "-N", 2) == 0 ||
		    strncmp(a, "-B", 2) == 0 || strncmp(a, "-R", 2) == 0 ||
		    strncmp(a, "-V", 2) == 0) {
			continue;	/* accepted and ignored */
		} else {
			fprintf(stderr, "sendmail: unsupported option %s\n", a);
			return 64;	/* EX_USAGE */
		}
	}
	o.rcpt = argv + i;
	o.nrcpt = argc - i;
	rc = enqueue_run(ctx, &o);
	/* sendmail speaks sysexits: bad input 65 (EX_DATAERR), a queue that
	 * cannot take it now 75 (EX_TEMPFAIL). */
	if (rc == TOOLS_EXIT_USAGE)
		return 65;
	return rc == 0 ? 0 : 75;
}

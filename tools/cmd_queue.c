/*
 * cmd_queue.c - looking at the queue: `queue` (like mailq, or JSON Lines),
 * `show` (one message: envelope, recipients with history, final status
 * and the DSN that reported them, headers, or --raw the stored message)
 * and `stats` (the queue's shape, like qshape, the DSNs that
 * bounce_rate_limit dropped, and each held site's backlog, oldest message
 * and when it was last seen: runner/site.c).
 *
 * All of them read in MDB_RDONLY transactions through queue_walk(), which
 * never holds a transaction while we print.
 *
 * Every stored field came from a peer or a user, so none is printed as
 * it is: text output escapes control bytes, backslash and bytes that are
 * not UTF-8 as the log does (strl_esc_unit; inside <> also ',' and '>'),
 * JSON output uses sbuf_json_str (always valid JSON), and `show` prints
 * headers with their control bytes escaped too (TAB kept, for folding).
 * Only `show --raw` writes the message as stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner.h"
#include "tools.h"

struct queue_list_ctx {
	bool		json;
	struct sbuf	*out;
	size_t		msgs, rcpts;
	int64_t		now;
};

static void
queue_json_msg(struct sbuf *b, const struct qmsg *m, const struct qrcpt *r,
    size_t n)
{
	char	id[QUEUE_ID_LEN + 1];
	size_t	i;

	queue_id_format(m->id, id);
	sbuf_cat(b, "{\"id\":");
	sbuf_json_str(b, id);
	sbuf_cat(b, ",\"sender\":");
	sbuf_json_str(b, m->sender);
	sbuf_catf(b, ",\"arrival\":%lld,\"size\":%llu,\"recipients\":[",
	    (long long)m->arrival, (unsigned long long)m->size);
	for (i = 0; i < n; i++) {
		sbuf_cat(b, i ? ",{\"address\":" : "{\"address\":");
		sbuf_json_str(b, r[i].addr);
		sbuf_cat(b, ",\"state\":");
		sbuf_json_str(b, queue_state_name(r[i].state));
		sbuf_catf(b, ",\"attempts\":%u,\"next_try\":%lld,"
		    "\"last_reply\":", r[i].attempts,
		    (long long)(r[i].state == QRCPT_HELD ? 0 : r[i].due));
		sbuf_json_str(b, r[i].reply);
		sbuf_cat(b, ",\"dsn\":");
		if (r[i].dsn_id != 0) {
			queue_id_format(r[i].dsn_id, id);
			sbuf_json_str(b, id);
		} else
			sbuf_cat(b, "null");
		sbuf_catc(b, '}');
	}
	sbuf_cat(b, "]}\n");
}

static const char *
queue_size_text(uint64_t size, char *buf, size_t bufsz)
{
	if (size < 10000)
		bsnprintf(buf, bufsz, "%llu", (unsigned long long)size);
	else if (size < 10000 * 1024)
		bsnprintf(buf, bufsz, "%lluK",
		    (unsigned long long)(size + 1023) / 1024);
	else
		bsnprintf(buf, bufsz, "%lluM",
		    (unsigned long long)(size + 1048575) / 1048576);
	return buf;
}

static int
queue_list1(void *arg, const struct qmsg *m, const struct qrcpt *r, size_t n)
{
	struct queue_list_ctx	*c = arg;
	char			 id[QUEUE_ID_LEN + 1], t[32], sz[16];
	size_t			 i;

	c->msgs++;
	sbuf_reset(c->out);
	if (c->json) {
		queue_json_msg(c->out, m, r, n);
	} else {
		queue_id_format(m->id, id);
		sbuf_catf(c->out, "%s %6s  %s  <", id,
		    queue_size_text(m->size, sz, sizeof(sz)),
		    tools_time(m->arrival, t, sizeof(t)));
		sbuf_esc_str(c->out, m->sender, STRL_ESC_ADDR);
		sbuf_cat(c->out, ">\n");
		for (i = 0; i < n; i++) {
			sbuf_catf(c->out, "    %-9s <", queue_state_name(
			    r[i].state));
			sbuf_esc_str(c->out, r[i].addr, STRL_ESC_ADDR);
			sbuf_catc(c->out, '>');
			if (r[i].attempts > 0)
				sbuf_catf(c->out, " attempts=%u", r[i].attempts);
			if ((r[i].state == QRCPT_DEFERRED ||
			    r[i].state == QRCPT_QUEUED) && r[i].due > c->now)
				sbuf_catf(c->out, " next=%s", tools_time(
				    r[i].due, t, sizeof(t)));
			if (r[i].reply[0] != '\0') {
				sbuf_cat(c->out, "\n              (");
				sbuf_esc_str(c->out, r[i].reply, 0);
				sbuf_catc(c->out, ')');
			}
			sbuf_catc(c->out, '\n');
		}
	}
	for (i = 0; i < n; i++)
		if (r[i].state != QRCPT_DELIVERED && r[i].state != QRCPT_FAILED)
			c->rcpts++;
	fwrite(sbuf_str(c->out), 1, sbuf_len(c->out), stdout);
	return ferror(stdout) ? 1 : 0;
}

int
cmd_queue(struct tools_ctx *ctx, int argc, char **argv)
{
	struct queue_list_ctx	 c;
	struct queue		*q;
	const char		*domain = NULL;
	int			 i, rc;

	memset(&c, 0, sizeof(c));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			domain = argv[++i];
			if (!smtp_domain_valid(domain, SMTP_ADDR_UTF8) &&
			    !smtp_addr_literal_valid(domain, strlen(domain)))
				return tools_usage("queue", "bad domain \"%s\"",
				    domain);
		} else
			return tools_usage("queue", "unknown argument \"%s\"",
			    argv[i]);
	}
	if ((q = tools_open_queue(ctx, QUEUE_RDONLY)) == NULL)
		return TOOLS_EXIT_FAIL;
	c.out = sbuf_new();
	c.now = (int64_t)clock_now();
	rc = queue_walk(q, domain, queue_list1, &c);
	if (rc == 1)
		rc = tools_fail("queue", "write error");
	else if (rc != 0)
		rc = tools_fail("queue", "%s", queue_errmsg(q));
	else if (!c.json) {
		if (c.msgs == 0)
			printf("Mail queue is empty\n");
		else
			printf("-- %zu message%s, %zu recipient%s\n", c.msgs,
			    c.msgs == 1 ? "" : "s", c.rcpts,
			    c.rcpts == 1 ? "" : "s");
	}
	sbuf_free(c.out);
	queue_close(q);
	return rc;
}

/* show_line - print one header line (its CR LF dropped) escaped, TAB
 * kept; a NUL in it is escaped like any control byte. */
static void
show_line(const struct sbuf *l)
{
	char	u[STRL_ESC_UNIT_MAX];
	size_t	n = sbuf_len(l), k, ulen;
	char	*s = sbuf_str(l);

	if (n > 0 && s[n - 1] == '\r')
		n--;
	while (n > 0) {
		k = strl_esc_unit(s, n, STRL_ESC_TAB, u, &ulen);
		fwrite(u, 1, ulen, stdout);
		s += k;
		n -= k;
	}
	putchar('\n');
}

/* show_body - write the stored message; with headers_only, up to the
 * first empty line, escaped, with local line ends. */
static int
show_body(struct queue *q, const struct qmsg *m, bool headers_only)
{
	char		*buf = xmalloc(QUEUE_CHUNK_SIZE);
	struct sbuf	*line = sbuf_new();
	size_t		 len, i;
	uint32_t	 c;
	int		 rc = 0;

	for (c = 0; c < m->nchunks && rc == 0; c++) {
		if ((rc = queue_body_chunk(q, m->id, c, buf, &len)) != 0)
			break;
		if (!headers_only) {
			fwrite(buf, 1, len, stdout);
			continue;
		}
		/* Line by line (a UTF-8 sequence may span two chunks), up
		 * to the empty line. */
		for (i = 0; i < len; i++) {
			if (buf[i] != '\n') {
				sbuf_catc(line, buf[i]);
				continue;
			}
			if (sbuf_len(line) == 0 || (sbuf_len(line) == 1 &&
			    sbuf_str(line)[0] == '\r'))
				goto done;
			show_line(line);
			sbuf_reset(line);
		}
	}
	if (headers_only && sbuf_len(line) > 0)
		show_line(line);
done:
	sbuf_free(line);
	free(buf);
	return rc;
}

/* show_dsn - a recipient's final status, and the DSN that reported it:
 * its id, "pending" while the report waits for the message's active
 * recipients, or "none (dropped)" when none was sent on purpose
 * (NOTIFY=NEVER, the rate limit, a double bounce's own failure). */
static void
show_dsn(const struct qrcpt *r)
{
	char	id[QUEUE_ID_LEN + 1];

	if (r->state == QRCPT_DELIVERED || r->state == QRCPT_FAILED) {
		printf(" status=");
		tools_put(stdout, r->status[0] != '\0' ? r->status : "-", 0);
	}
	/* Pending first: a recipient reported once (a delay warning) and
	 * failed since waits for its next report. */
	if (r->flags & QRCPT_F_REPORT)
		printf(" dsn=pending");
	else if (r->dsn_id != 0) {
		queue_id_format(r->dsn_id, id);
		printf(" dsn=%s", id);
	} else if (r->flags & QRCPT_F_NODSN)
		printf(" dsn=none (dropped)");
}

int
cmd_show(struct tools_ctx *ctx, int argc, char **argv)
{
	struct queue	*q;
	struct qmsg	 m;
	struct qrcpt	*r = NULL;
	uint64_t	 id = 0;
	size_t		 n, i;
	uint32_t	 h;
	char		 t[32], idbuf[QUEUE_ID_LEN + 1];
	bool		 raw = false, have = false;
	int		 a, rc;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--raw") == 0)
			raw = true;
		else if (!have && queue_id_parse(argv[a], &id) == 0)
			have = true;
		else
			return tools_usage("show", "bad argument \"%s\"",
			    argv[a]);
	}
	if (!have)
		return tools_usage("show", "give a queue ID");
	if ((q = tools_open_queue(ctx, QUEUE_RDONLY)) == NULL)
		return TOOLS_EXIT_FAIL;
	queue_id_format(id, idbuf);
	if ((rc = queue_get(q, id, &m, &r, &n)) != 0) {
		rc = rc == QUEUE_E_NOENT ?
		    tools_fail("show", "%s: no such message", idbuf) :
		    tools_fail("show", "%s: %s", idbuf, queue_errmsg(q));
		queue_close(q);
		return rc;
	}
	if (raw) {
		rc = show_body(q, &m, false);
		goto out;
	}
	printf("id: %s\nsender: <", idbuf);
	tools_put(stdout, m.sender, STRL_ESC_ADDR);
	printf(">\narrival: %s\nsize: %llu\nclient: ",
	    tools_time(m.arrival, t, sizeof(t)), (unsigned long long)m.size);
	tools_put(stdout, m.client, 0);
	putchar('\n');
	printf("flags:%s%s%s%s%s%s\n", m.flags & QMSG_F_8BITMIME ? " 8BITMIME" :
	    "", m.flags & QMSG_F_BINARYMIME ? " BINARYMIME" : "",
	    m.flags & QMSG_F_SMTPUTF8 ? " SMTPUTF8" : "",
	    m.flags & QMSG_F_RET_FULL ? " RET=FULL" : "",
	    m.flags & QMSG_F_RET_HDRS ? " RET=HDRS" : "",
	    m.flags & QMSG_F_DSN ? " DSN" : "");
	if (m.envid[0] != '\0') {
		printf("envid: ");
		tools_put(stdout, m.envid, 0);
		putchar('\n');
	}
	for (i = 0; i < n; i++) {
		printf("recipient: <");
		tools_put(stdout, r[i].addr, STRL_ESC_ADDR);
		printf("> state=%s attempts=%u", queue_state_name(r[i].state),
		    r[i].attempts);
		if (r[i].state != QRCPT_HELD && r[i].due != 0)
			printf(" next=%s", tools_time(r[i].due, t, sizeof(t)));
		if (r[i].flags & QRCPT_F_SITE)
			printf(" site-hold");
		if (r[i].flags & QRCPT_F_OPHOLD)
			printf(" operator-hold");
		if (r[i].notify != 0) {
			static const struct {
				uint8_t		 bit;
				const char	*name;
			} nb[] = {
				{ QRCPT_NOTIFY_NEVER, "NEVER" },
				{ QRCPT_NOTIFY_SUCCESS, "SUCCESS" },
				{ QRCPT_NOTIFY_FAILURE, "FAILURE" },
				{ QRCPT_NOTIFY_DELAY, "DELAY" },
			};
			const char	*sep = " notify=";

			for (size_t b = 0; b < sizeof(nb) / sizeof(nb[0]); b++)
				if (r[i].notify & nb[b].bit) {
					printf("%s%s", sep, nb[b].name);
					sep = ",";
				}
		}
		if (r[i].orcpt[0] != '\0') {
			printf(" orcpt=");
			tools_put(stdout, r[i].orcpt, 0);
		}
		show_dsn(&r[i]);
		putchar('\n');
		for (h = 0; h < r[i].nhist; h++) {
			printf("    %s ", tools_time(r[i].hist[h].when, t,
			    sizeof(t)));
			tools_put(stdout, r[i].hist[h].status, 0);
			putchar(' ');
			tools_put(stdout, r[i].hist[h].text, 0);
			putchar('\n');
		}
	}
	printf("\n");
	rc = show_body(q, &m, true);
out:
	if (rc != 0)
		rc = tools_fail("show", "%s: %s", idbuf, queue_errmsg(q));
	free(r);
	queue_close(q);
	return rc;
}

/* stats_sites - the held sites, with backlog and last seen; -1 when the
 * queue cannot be read (said). A routes_file that does not load leaves
 * its entries out, with a warning. */
static int
stats_sites(struct tools_ctx *ctx, struct queue *q, struct site **v,
    size_t *n)
{
	struct routes	*rs = NULL;
	char		 err[1024];

	if (ctx->conf->routes_file != NULL && (rs = routes_load(
	    ctx->conf->routes_file, err, sizeof(err))) == NULL)
		fprintf(stderr, "postern stats: routes_file: %s (its held "
		    "domains are left out)\n", err);
	if (site_list(ctx->conf, rs, v, n))
		fprintf(stderr, "postern stats: more than %d held domains: "
		    "only the first are shown\n", SITE_MAX);
	routes_free(rs);
	if (*n > 0 && site_fill(q, *v, *n) != 0) {
		tools_fail("stats", "%s", queue_errmsg(q));
		free(*v);
		*v = NULL;
		return -1;
	}
	return 0;
}

static void
stats_json_sites(struct sbuf *b, const struct site *v, size_t n, int64_t now)
{
	size_t	i;

	sbuf_cat(b, ",\"sites\":[");
	for (i = 0; i < n; i++) {
		sbuf_cat(b, i ? ",{\"domain\":" : "{\"domain\":");
		sbuf_json_str(b, v[i].domain);
		sbuf_catf(b, ",\"messages\":%llu,\"recipients\":%llu,"
		    "\"oldest\":%lld,\"oldest_age\":%lld,\"last_seen\":%lld}",
		    (unsigned long long)v[i].bl.msgs,
		    (unsigned long long)v[i].bl.rcpts,
		    (long long)v[i].bl.oldest, (long long)(v[i].bl.oldest > 0 &&
		    now > v[i].bl.oldest ? now - v[i].bl.oldest : 0),
		    (long long)v[i].seen);
	}
	sbuf_catc(b, ']');
}

static void
stats_text_sites(const struct site *v, size_t n, int64_t now)
{
	size_t	i;
	char	t[32], dom[33];

	if (n == 0)
		return;
	printf("held sites:\n%-32s %7s %7s %10s  %s\n", "", "msgs", "rcpts",
	    "oldest", "last seen");
	for (i = 0; i < n; i++) {
		strl_esc(dom, sizeof(dom), v[i].domain, strlen(v[i].domain), 0);
		printf("%32.32s %7llu %7llu", dom,
		    (unsigned long long)v[i].bl.msgs,
		    (unsigned long long)v[i].bl.rcpts);
		if (v[i].bl.oldest > 0)
			printf(" %6lld min", (long long)(now > v[i].bl.oldest ?
			    now - v[i].bl.oldest : 0) / 60);
		else
			printf(" %10s", "-");
		printf("  %s\n", v[i].seen > 0 ? tools_time(v[i].seen, t,
		    sizeof(t)) : "never");
	}
}

static void
stats_json(const struct qshape *s, const struct site *v, size_t nv,
    int64_t now)
{
	struct sbuf	*b = sbuf_new();
	size_t		 i;
	int		 k;

	sbuf_catf(b, "{\"time\":%lld,\"messages\":%llu,\"recipients\":%llu,"
	    "\"oldest\":%lld,\"buckets_min\":[", (long long)now,
	    (unsigned long long)s->msgs, (unsigned long long)s->rcpts,
	    (long long)s->oldest);
	for (k = 0; k < QUEUE_AGE_BUCKETS - 1; k++)
		sbuf_catf(b, "%s%d", k ? "," : "", queue_age_bucket_min[k]);
	sbuf_cat(b, "],\"total\":[");
	for (k = 0; k < QUEUE_AGE_BUCKETS; k++)
		sbuf_catf(b, "%s%llu", k ? "," : "",
		    (unsigned long long)s->bucket[k]);
	sbuf_cat(b, "],\"domains\":[");
	for (i = 0; i < s->ndom; i++) {
		sbuf_cat(b, i ? ",{\"domain\":" : "{\"domain\":");
		sbuf_json_str(b, s->dom[i].domain);
		sbuf_catf(b, ",\"total\":%llu,\"deferred\":%llu,\"held\":%llu,"
		    "\"buckets\":[", (unsigned long long)s->dom[i].total,
		    (unsigned long long)s->dom[i].deferred,
		    (unsigned long long)s->dom[i].held);
		for (k = 0; k < QUEUE_AGE_BUCKETS; k++)
			sbuf_catf(b, "%s%llu", k ? "," : "",
			    (unsigned long long)s->dom[i].bucket[k]);
		sbuf_cat(b, "]}");
	}
	sbuf_cat(b, "],\"deferral_reasons\":[");
	for (i = 0; i < s->nreason; i++) {
		sbuf_cat(b, i ? ",{\"reason\":" : "{\"reason\":");
		sbuf_json_str(b, s->reason[i].text);
		sbuf_catf(b, ",\"count\":%llu}",
		    (unsigned long long)s->reason[i].count);
	}
	sbuf_cat(b, "],\"flush_pending\":[");
	for (i = 0; i < s->nflush; i++) {
		if (i > 0)
			sbuf_catc(b, ',');
		sbuf_json_str(b, s->flush[i]);
	}
	sbuf_catf(b, "],\"bounce_dropped\":%llu",
	    (unsigned long long)s->bounce_dropped);
	stats_json_sites(b, v, nv, now);
	sbuf_cat(b, "}\n");
	fwrite(sbuf_str(b), 1, sbuf_len(b), stdout);
	sbuf_free(b);
}

static void
stats_text(const struct qshape *s, int64_t now)
{
	size_t	i;
	int	k;
	char	t[32], dom[33];

	printf("%-32s %7s", "", "T");
	for (k = 0; k < QUEUE_AGE_BUCKETS - 1; k++)
		printf(" %6d", queue_age_bucket_min[k]);
	printf(" %6d+\n", queue_age_bucket_min[QUEUE_AGE_BUCKETS - 2]);
	printf("%32s %7llu", "TOTAL", (unsigned long long)s->rcpts);
	for (k = 0; k < QUEUE_AGE_BUCKETS; k++)
		printf(" %6llu", (unsigned long long)s->bucket[k]);
	putchar('\n');
	for (i = 0; i < s->ndom; i++) {
		strl_esc(dom, sizeof(dom), s->dom[i].domain,
		    strlen(s->dom[i].domain), 0);
		printf("%32.32s %7llu", dom,
		    (unsigned long long)s->dom[i].total);
		for (k = 0; k < QUEUE_AGE_BUCKETS; k++)
			printf(" %6llu", (unsigned long long)s->dom[i].bucket[k]);
		putchar('\n');
	}
	printf("\nmessages: %llu, recipients: %llu, oldest: %s",
	    (unsigned long long)s->msgs, (unsigned long long)s->rcpts,
	    tools_time(s->oldest, t, sizeof(t)));
	if (s->oldest != 0)
		printf(" (%lld min ago)", (long long)(now - s->oldest) / 60);
	putchar('\n');
	printf("bounces dropped (rate limit): %llu\n",
	    (unsigned long long)s->bounce_dropped);
	for (i = 0; i < s->nflush; i++) {
		printf("flush pending: ");
		tools_put(stdout, s->flush[i], 0);
		putchar('\n');
	}
	if (s->nreason > 0) {
		printf("deferral reasons:\n");
		for (i = 0; i < s->nreason; i++) {
			printf("%8llu  ",
			    (unsigned long long)s->reason[i].count);
			tools_put(stdout, s->reason[i].text, 0);
			putchar('\n');
		}
	}
}

int
cmd_stats(struct tools_ctx *ctx, int argc, char **argv)
{
	struct queue	*q;
	struct qshape	 s;
	struct site	*v = NULL;
	size_t		 nv = 0;
	int64_t		 now = (int64_t)clock_now();
	bool		 json = false;
	int		 i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return tools_usage("stats", "unknown argument \"%s\"",
			    argv[i]);
	}
	if ((q = tools_open_queue(ctx, QUEUE_RDONLY)) == NULL)
		return TOOLS_EXIT_FAIL;
	if ((rc = queue_shape(q, now, &s)) != 0) {
		rc = tools_fail("stats", "%s", queue_errmsg(q));
		queue_close(q);
		return rc;
	}
	if (stats_sites(ctx, q, &v, &nv) != 0) {
		queue_shape_free(&s);
		queue_close(q);
		return TOOLS_EXIT_FAIL;
	}
	if (json)
		stats_json(&s, v, nv, now);
	else {
		stats_text(&s, now);
		stats_text_sites(v, nv, now);
	}
	free(v);
	queue_shape_free(&s);
	queue_close(q);
	return 0;
}

/*
 * metrics_prom.c - /metrics: the view in Prometheus text format 0.0.4.
 *
 * Every series is listed in README ("Metrics"). Per-domain series carry
 * only the domains the view shows (the top metrics_top_domains and every
 * held one), so their number is bounded by the configuration whatever
 * the queue holds; the rest is summed in postern_domain_other_recipients.
 * Label values are escaped (\\, \", \n), and a control or non-ASCII byte
 * becomes '?', so the output is valid UTF-8 whatever a domain holds.
 */
#include <string.h>

#include "metrics_int.h"

void
metrics_prom_label(struct sbuf *b, const char *s)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\')
			sbuf_cat(b, "\\\\");
		else if (*p == '"')
			sbuf_cat(b, "\\\"");
		else if (*p == '\n')
			sbuf_cat(b, "\\n");
		else if (*p < 0x20 || *p >= 0x7f)
			sbuf_catc(b, '?');
		else
			sbuf_catc(b, *p);
	}
}

static void
metrics_prom_head(struct sbuf *b, const char *name, const char *type,
    const char *help)
{
	sbuf_catf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_prom_u64(struct sbuf *b, const char *name, uint64_t v)
{
	sbuf_catf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* metrics_prom_dom - name{domain="d"} v */
static void
metrics_prom_dom(struct sbuf *b, const char *name, const char *domain,
    long long v)
{
	sbuf_catf(b, "%s{domain=\"", name);
	metrics_prom_label(b, domain);
	sbuf_catf(b, "\"} %lld\n", v);
}

static void
metrics_prom_queue(const struct metrics_view *v, struct sbuf *b)
{
	const struct qshape	*s = &v->shape;
	uint64_t		 deferred = 0, held = 0;
	size_t			 i;

	for (i = 0; i < s->ndom; i++) {
		deferred += s->dom[i].deferred;
		held += s->dom[i].held;
	}
	metrics_prom_head(b, "postern_queue_messages", "gauge",
	    "Messages in the queue.");
	metrics_prom_u64(b, "postern_queue_messages", s->msgs);
	metrics_prom_head(b, "postern_queue_recipients", "gauge",
	    "Live recipients by state (queued: due or being delivered).");
	sbuf_catf(b, "postern_queue_recipients{state=\"queued\"} %llu\n"
	    "postern_queue_recipients{state=\"deferred\"} %llu\n"
	    "postern_queue_recipients{state=\"held\"} %llu\n",
	    (unsigned long long)(s->rcpts - deferred - held),
	    (unsigned long long)deferred, (unsigned long long)held);
	metrics_prom_head(b, "postern_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest live recipient's message (0: empty).");
	sbuf_catf(b, "postern_queue_oldest_age_seconds %lld\n",
	    (long long)(s->oldest != 0 ? v->now - s->oldest : 0));

	metrics_prom_head(b, "postern_domain_recipients", "gauge",
	    "Live recipients per destination domain (the largest and every "
	    "held one).");
	for (i = 0; i < v->nshown; i++)
		metrics_prom_dom(b, "postern_domain_recipients",
		    s->dom[v->shown[i]].domain,
		    (long long)s->dom[v->shown[i]].total);
	/* A held domain with nothing waiting is worth a 0. */
	for (i = 0; i < v->nsite; i++)
		if (v->site[i].held && v->site[i].dom == NULL)
			metrics_prom_dom(b, "postern_domain_recipients",
			    v->site[i].domain, 0);
	metrics_prom_head(b, "postern_domain_oldest_age_seconds", "gauge",
	    "Age of the oldest live recipient per destination domain.");
	for (i = 0; i < v->nshown; i++)
		metrics_prom_dom(b, "postern_domain_oldest_age_seconds",
		    s->dom[v->shown[i]].domain,
		    (long long)(v->now - s->dom[v->shown[i]].oldest));
	metrics_prom_head(b, "postern_domain_other_recipients", "gauge",
	    "Live recipients of the domains not listed by domain.");
	metrics_prom_u64(b, "postern_domain_other_recipients", v->other_rcpts);

	metrics_prom_head(b, "postern_site_last_seen_timestamp_seconds",
	    "gauge", "When a held domain's site last asked for its mail "
	    "(ETRN, ATRN, TURN); 0: never.");
	for (i = 0; i < v->nsite; i++)
		metrics_prom_dom(b, "postern_site_last_seen_timestamp_seconds",
		    v->site[i].domain, (long long)v->site[i].seen);

	metrics_prom_head(b, "postern_dsn_sent_total", "counter",
	    "Delivery status notifications queued (failures, delays, "
	    "successes).");
	metrics_prom_u64(b, "postern_dsn_sent_total", v->bounce_sent);
	metrics_prom_head(b, "postern_dsn_dropped_total", "counter",
	    "DSNs not sent because of bounce_rate_limit.");
	metrics_prom_u64(b, "postern_dsn_dropped_total", s->bounce_dropped);
}

static void
metrics_prom_events(const struct counters_snap *c, struct sbuf *b)
{
	static const char *const st[COUNTERS_NSTATUS] = {
		"sent", "deferred", "bounced", "expired",
	};
	static const char *const cl[COUNTERS_NCLASS] = { "2", "4", "5" };
	static const char *const rq[COUNTERS_NREQ] = {
		"ETRN", "ATRN", "TURN",
	};
	static const char *const out[COUNTERS_NOUT] = {
		"ok", "empty", "refused", "error",
	};
	size_t	i, j;

	metrics_prom_head(b, "postern_deliveries_total", "counter",
	    "Delivery attempts by status and DSN class.");
	for (i = 0; i < COUNTERS_NSTATUS; i++)
		for (j = 0; j < COUNTERS_NCLASS; j++)
			sbuf_catf(b, "postern_deliveries_total{status=\"%s\","
			    "class=\"%s\"} %llu\n", st[i], cl[j],
			    (unsigned long long)c->deliv[i][j]);
	metrics_prom_head(b, "postern_requests_total", "counter",
	    "ETRN, ATRN and TURN requests by outcome.");
	for (i = 0; i < COUNTERS_NREQ; i++)
		for (j = 0; j < COUNTERS_NOUT; j++)
			sbuf_catf(b, "postern_requests_total{command=\"%s\","
			    "outcome=\"%s\"} %llu\n", rq[i], out[j],
			    (unsigned long long)c->req[i][j]);
	metrics_prom_head(b, "postern_connections_in_total", "counter",
	    "SMTP connections accepted by the listener.");
	metrics_prom_u64(b, "postern_connections_in_total",
	    c->conn[COUNTERS_CONN_IN]);
	metrics_prom_head(b, "postern_connections_out_total", "counter",
	    "Delivery connections by result.");
	sbuf_catf(b, "postern_connections_out_total{result=\"ok\"} %llu\n"
	    "postern_connections_out_total{result=\"failed\"} %llu\n",
	    (unsigned long long)c->conn[COUNTERS_CONN_OUT],
	    (unsigned long long)c->conn[COUNTERS_CONN_OUT_FAILED]);
	metrics_prom_head(b, "postern_reversed_sessions_total", "counter",
	    "ATRN/TURN sessions delivered over a site's connection.");
	metrics_prom_u64(b, "postern_reversed_sessions_total",
	    c->conn[COUNTERS_CONN_REVERSED]);
	metrics_prom_head(b, "postern_messages_received_total", "counter",
	    "Messages the listener committed to the queue.");
	metrics_prom_u64(b, "postern_messages_received_total",
	    c->conn[COUNTERS_MSG_RECEIVED]);
}

static void
metrics_prom_hist(const struct counters_snap *c, struct sbuf *b)
{
	uint64_t	cum = 0;
	size_t		i;

	metrics_prom_head(b, "postern_commit_batch_size", "histogram",
	    "Messages per group commit of the listener.");
	for (i = 0; i < COUNTERS_BATCH_BUCKETS; i++) {
		cum += c->batch[i];
		if (i < COUNTERS_BATCH_BUCKETS - 1)
			sbuf_catf(b, "postern_commit_batch_size_bucket"
			    "{le=\"%u\"} %llu\n", counters_batch_le[i],
			    (unsigned long long)cum);
		else
			sbuf_catf(b, "postern_commit_batch_size_bucket"
			    "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	sbuf_catf(b, "postern_commit_batch_size_sum %llu\n"
	    "postern_commit_batch_size_count %llu\n",
	    (unsigned long long)c->batch_sum,
	    (unsigned long long)c->batch_count);
	cum = 0;
	metrics_prom_head(b, "postern_commit_seconds", "histogram",
	    "Time of one group commit (one transaction, one fsync).");
	for (i = 0; i < COUNTERS_LAT_BUCKETS; i++) {
		cum += c->lat[i];
		if (i < COUNTERS_LAT_BUCKETS - 1)
			sbuf_catf(b, "postern_commit_seconds_bucket"
			    "{le=\"%g\"} %llu\n", counters_lat_le[i],
			    (unsigned long long)cum);
		else
			sbuf_catf(b, "postern_commit_seconds_bucket"
			    "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	sbuf_catf(b, "postern_commit_seconds_sum %.6f\n"
	    "postern_commit_seconds_count %llu\n",
	    (double)c->lat_sum_us / 1e6, (unsigned long long)c->lat_count);
}

void
metrics_prom(const struct metrics_view *v, struct sbuf *b)
{
	metrics_prom_queue(v, b);
	metrics_prom_events(&v->cnt, b);
	metrics_prom_hist(&v->cnt, b);
}

/*
 * metrics_int.h - the metrics process (posternd's "metrics" child), inside.
 *
 * metrics.c serves metrics_listen with libmicrohttpd: /metrics
 * (metrics_prom.c, Prometheus text) and / (metrics_page.c, the status
 * page), each behind its optional token. Both render one struct
 * metrics_view, gathered per request by metrics_view_load(): the queue's
 * shape (one read-only transaction, queue_shape), the queue's own
 * counters (bounce_sent, bounce_dropped), when each site was last seen
 * (queue_site_walk) and the shared event counters (smtp/counters.c). The
 * process never writes to the queue, so a scrape cannot slow delivery
 * beyond the CPU it takes.
 */
#ifndef METRICS_INT_H
#define METRICS_INT_H

#include "queue.h"
#include "smtp.h"

/* A held domain or a site that asked: bounded by the configuration
 * (hold_domains, the users who may ETRN/ATRN), and capped anyway. */
#define METRICS_SITES_MAX	1000

struct metrics_site {
	char			 domain[QUEUE_ADDR_MAX + 1];
	int64_t			 seen;	/* last ETRN/ATRN; 0: never */
	const struct qshape_dom	*dom;	/* its backlog; NULL: none */
	bool			 held;	/* in hold_domains */
};

struct metrics_view {
	int64_t			 now;
	struct qshape		 shape;
	uint64_t		 bounce_sent;
	struct counters_snap	 cnt;
	bool			 have_cnt;
	/* The domains shown: the top metrics_top_domains by recipients and
	 * every held one, as indexes into shape.dom, largest first. */
	size_t			*shown;
	size_t			 nshown;
	uint64_t		 other_rcpts;	/* of the domains not shown */
	size_t			 other_doms;
	struct metrics_site	*site;		/* by domain */
	size_t			 nsite;
};

/* metrics_view_load - gather it all; 0, or -1 with the queue's error
 * (queue_errmsg). Free with metrics_view_free() in either case. */
int	metrics_view_load(const struct conf *, struct queue *,
	    struct metrics_view *);
void	metrics_view_free(struct metrics_view *);

/* metrics_prom.c */
/* metrics_prom - the view in Prometheus text format (0.0.4). */
void	metrics_prom(const struct metrics_view *, struct sbuf *);
/* metrics_prom_label - s as a label value: \\, \" and \n escaped, any
 * other control byte or non-ASCII byte as '?'. */
void	metrics_prom_label(struct sbuf *, const char *s);

/* metrics_page.c */
/* metrics_page - the status page, HTML, every value escaped. */
void	metrics_page(const struct metrics_view *, const struct conf *,
	    struct sbuf *);
/* metrics_html - s escaped for HTML text and attribute values. */
void	metrics_html(struct sbuf *, const char *s);

#endif

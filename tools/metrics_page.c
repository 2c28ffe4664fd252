/*
 * metrics_page.c - /: the status page, server-rendered HTML.
 *
 * No script at all (the Content-Security-Policy forbids one): the page
 * reloads itself with a meta refresh, the plot is inline SVG, the CSS is
 * inline and fits a phone (the wide table scrolls inside its box). Every
 * value from the queue is escaped (metrics_html), domains and deferral
 * reasons above all: they are whatever a peer sent.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metrics_int.h"

#define METRICS_PAGE_REFRESH	30	/* seconds */
#define METRICS_PAGE_REASONS	20	/* deferral reasons shown */
#define METRICS_PLOT_W		600
#define METRICS_PLOT_H		150

void
metrics_html(struct sbuf *b, const char *s)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			sbuf_cat(b, "&amp;");
			break;
		case '<':
			sbuf_cat(b, "&lt;");
			break;
		case '>':
			sbuf_cat(b, "&gt;");
			break;
		case '"':
			sbuf_cat(b, "&quot;");
			break;
		case '\'':
			sbuf_cat(b, "&#39;");
			break;
		default:
			/* Control and non-ASCII bytes: never raw, never
			 * invalid UTF-8. */
			if (*p < 0x20 || *p >= 0x7f)
				sbuf_catc(b, '?');
			else
				sbuf_catc(b, *p);
		}
	}
}

/* metrics_page_age - "3d 4h", "12m", "45s" into buf. */
static const char *
metrics_page_age(int64_t secs, char *buf, size_t bufsz)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		(void)bsnprintf(buf, bufsz, "%lldd %lldh",
		    (long long)(secs / 86400), (long long)(secs % 86400 / 3600));
	else if (secs >= 3600)
		(void)bsnprintf(buf, bufsz, "%lldh %lldm",
		    (long long)(secs / 3600), (long long)(secs % 3600 / 60));
	else if (secs >= 60)
		(void)bsnprintf(buf, bufsz, "%lldm", (long long)(secs / 60));
	else
		(void)bsnprintf(buf, bufsz, "%llds", (long long)secs);
	return buf;
}

static const char *
metrics_page_time(int64_t when, char *buf, size_t bufsz)
{
	time_t		t = (time_t)when;
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		strl_copy(buf, "?", bufsz);
	return buf;
}

static const char metrics_page_css[] =
    "body{font-family:system-ui,sans-serif;margin:0 auto;padding:8px;"
    "max-width:1100px;color:#222;background:#fafafa}"
    "h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.1em;margin:1em 0 .3em}"
    ".box{overflow-x:auto;-webkit-overflow-scrolling:touch}"
    "table{border-collapse:collapse;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;"
    "white-space:nowrap}"
    "th:first-child,td:first-child{text-align:left;max-width:16em;"
    "overflow:hidden;text-overflow:ellipsis}"
    ".r{text-align:left}td.r{white-space:normal;word-break:break-word}"
    ".a0{background:#e6f4e6}.a1{background:#eef5d8}.a2{background:#f7f3cc}"
    ".a3{background:#fbe7bd}.a4{background:#fbd6ad}.a5{background:#f8c0a0}"
    ".a6{background:#f3a593}.a7{background:#e98585}"
    ".sum{display:flex;flex-wrap:wrap;gap:8px}"
    ".sum div{background:#fff;border:1px solid #ddd;padding:6px 10px}"
    ".sum b{display:block;font-size:1.3em}"
    "svg{width:100%;max-width:600px;height:auto;background:#fff;"
    "border:1px solid #ddd}"
    "@media (max-width:480px){body{padding:4px}table{font-size:.8em}}";

static void
metrics_page_summary(const struct metrics_view *v, struct sbuf *b)
{
	const struct qshape	*s = &v->shape;
	uint64_t		 hour = 0;
	char			 age[32];
	size_t			 i;

	for (i = 0; i < COUNTERS_MINUTES; i++)
		hour += v->cnt.minute[i];
	sbuf_catf(b, "<div class=\"sum\">"
	    "<div id=\"messages\">messages<b>%llu</b></div>"
	    "<div id=\"recipients\">recipients<b>%llu</b></div>"
	    "<div>oldest<b>%s</b></div>"
	    "<div>delivered, last hour<b>%llu</b></div>"
	    "<div>DSNs sent<b>%llu</b></div>"
	    "<div>DSNs dropped (rate limit)<b>%llu</b></div></div>\n",
	    (unsigned long long)s->msgs, (unsigned long long)s->rcpts,
	    s->oldest != 0 ? metrics_page_age(v->now - s->oldest, age,
	    sizeof(age)) : "-", (unsigned long long)hour,
	    (unsigned long long)v->bounce_sent,
	    (unsigned long long)s->bounce_dropped);
}

static void
metrics_page_cells(struct sbuf *b, const uint64_t *bucket)
{
	int	k;

	for (k = 0; k < QUEUE_AGE_BUCKETS; k++) {
		if (bucket[k] == 0)
			sbuf_cat(b, "<td>0</td>");
		else
			sbuf_catf(b, "<td class=\"a%d\">%llu</td>", k,
			    (unsigned long long)bucket[k]);
	}
}

/* metrics_page_shape - domains x age, like `postern stats`. */
static void
metrics_page_shape(const struct metrics_view *v, struct sbuf *b)
{
	const struct qshape	*s = &v->shape;
	size_t			 i;
	int			 k;

	sbuf_cat(b, "<h2>Queue shape (recipients by age, minutes)</h2>"
	    "<div class=\"box\"><table id=\"shape\"><tr><th>domain</th>"
	    "<th>total</th>");
	for (k = 0; k < QUEUE_AGE_BUCKETS - 1; k++)
		sbuf_catf(b, "<th>&lt;%d</th>", queue_age_bucket_min[k]);
	sbuf_catf(b, "<th>%d+</th></tr>\n",
	    queue_age_bucket_min[QUEUE_AGE_BUCKETS - 2]);
	sbuf_catf(b, "<tr><th>TOTAL</th><th>%llu</th>",
	    (unsigned long long)s->rcpts);
	metrics_page_cells(b, s->bucket);
	sbuf_cat(b, "</tr>\n");
	for (i = 0; i < v->nshown; i++) {
		const struct qshape_dom *d = &s->dom[v->shown[i]];

		sbuf_cat(b, "<tr><td>");
		metrics_html(b, d->domain);
		sbuf_catf(b, "</td><td>%llu</td>",
		    (unsigned long long)d->total);
		metrics_page_cells(b, d->bucket);
		sbuf_cat(b, "</tr>\n");
	}
	if (v->other_doms > 0)
		sbuf_catf(b, "<tr><td>(%zu more domains)</td><td>%llu</td>"
		    "<td colspan=\"%d\"></td></tr>\n", v->other_doms,
		    (unsigned long long)v->other_rcpts, QUEUE_AGE_BUCKETS);
	sbuf_cat(b, "</table></div>\n");
}

static void
metrics_page_sites(const struct metrics_view *v, struct sbuf *b)
{
	char	age[32], seen[32];
	size_t	i;

	sbuf_cat(b, "<h2>Held sites</h2>");
	if (v->nsite == 0) {
		sbuf_cat(b, "<p>None (hold_domains is empty and no site has "
		    "asked).</p>\n");
		return;
	}
	sbuf_cat(b, "<div class=\"box\"><table id=\"sites\"><tr>"
	    "<th>domain</th><th>waiting</th><th>oldest</th>"
	    "<th>last seen</th></tr>\n");
	for (i = 0; i < v->nsite; i++) {
		const struct metrics_site *st = &v->site[i];

		sbuf_cat(b, "<tr><td>");
		metrics_html(b, st->domain);
		sbuf_catf(b, "</td><td>%llu</td><td>%s</td><td>%s</td></tr>\n",
		    (unsigned long long)(st->dom != NULL ? st->dom->total : 0),
		    st->dom != NULL ? metrics_page_age(v->now - st->dom->oldest,
		    age, sizeof(age)) : "-",
		    st->seen != 0 ? metrics_page_age(v->now - st->seen, seen,
		    sizeof(seen)) : "never");
	}
	sbuf_cat(b, "</table></div>\n");
}

static void
metrics_page_reasons(const struct metrics_view *v, struct sbuf *b)
{
	const struct qshape	*s = &v->shape;
	size_t			 i;

	sbuf_cat(b, "<h2>Deferral reasons</h2>");
	if (s->nreason == 0) {
		sbuf_cat(b, "<p>None.</p>\n");
		return;
	}
	sbuf_cat(b, "<div class=\"box\"><table id=\"reasons\"><tr>"
	    "<th>recipients</th><th class=\"r\">reason</th></tr>\n");
	for (i = 0; i < s->nreason && i < METRICS_PAGE_REASONS; i++) {
		sbuf_catf(b, "<tr><td>%llu</td><td class=\"r\">",
		    (unsigned long long)s->reason[i].count);
		metrics_html(b, s->reason[i].text);
		sbuf_cat(b, "</td></tr>\n");
	}
	sbuf_cat(b, "</table></div>\n");
}

/* metrics_page_plot - deliveries per minute, the last hour, as bars. */
static void
metrics_page_plot(const struct metrics_view *v, struct sbuf *b)
{
	const int	 bw = METRICS_PLOT_W / COUNTERS_MINUTES, top = 20;
	const int	 h = METRICS_PLOT_H - top - 15;
	uint64_t	 max = 1;
	size_t		 i;
	int		 bh;

	for (i = 0; i < COUNTERS_MINUTES; i++)
		if (v->cnt.minute[i] > max)
			max = v->cnt.minute[i];
	sbuf_catf(b, "<h2>Deliveries per minute, last hour</h2>"
	    "<svg id=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"deliveries per "
	    "minute\"><text x=\"4\" y=\"14\" font-size=\"12\">max %llu/min"
	    "</text><line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#999\"/>", METRICS_PLOT_W, METRICS_PLOT_H,
	    (unsigned long long)max, top + h, METRICS_PLOT_W, top + h);
	for (i = 0; i < COUNTERS_MINUTES; i++) {
		bh = (int)((double)v->cnt.minute[i] * h / (double)max);
		if (v->cnt.minute[i] > 0 && bh == 0)
			bh = 1;
		sbuf_catf(b, "<rect x=\"%zu\" y=\"%d\" width=\"%d\" "
		    "height=\"%d\" fill=\"#4a7\"><title>%llu</title></rect>",
		    i * bw + 1, top + h - bh, bw - 2, bh,
		    (unsigned long long)v->cnt.minute[i]);
	}
	sbuf_catf(b, "<text x=\"2\" y=\"%d\" font-size=\"11\">-60 min</text>"
	    "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">"
	    "now</text></svg>\n", METRICS_PLOT_H - 2, METRICS_PLOT_W - 2,
	    METRICS_PLOT_H - 2);
}

void
metrics_page(const struct metrics_view *v, const struct conf *c,
    struct sbuf *b)
{
	char	t[32];

	sbuf_catf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">"
	    "<meta http-equiv=\"refresh\" content=\"%d\">"
	    "<title>postern: ", METRICS_PAGE_REFRESH);
	metrics_html(b, c->myhostname != NULL ? c->myhostname : "");
	sbuf_catf(b, "</title><style>%s</style></head><body>\n<h1>postern on ",
	    metrics_page_css);
	metrics_html(b, c->myhostname != NULL ? c->myhostname : "");
	sbuf_catf(b, "</h1><p>as of %s UTC, every %d s</p>\n",
	    metrics_page_time(v->now, t, sizeof(t)), METRICS_PAGE_REFRESH);
	metrics_page_summary(v, b);
	metrics_page_shape(v, b);
	metrics_page_sites(v, b);
	metrics_page_reasons(v, b);
	metrics_page_plot(v, b);
	sbuf_cat(b, "</body></html>\n");
}

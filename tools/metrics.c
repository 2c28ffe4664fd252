/*
 * metrics.c - posternd's "metrics" process: metrics_listen over HTTP.
 *
 * The master binds metrics_listen (as it binds listen) and forks us with
 * the sockets; libmicrohttpd serves each from its own thread, with every
 * limit named below (connections, per address, memory per connection,
 * which bounds a request's size, and an idle timeout): no HTTP parsing of
 * ours. GET (or HEAD) of /metrics (metrics_token, off by default) and /
 * (status_token) only; anything else is 404, another method 405.
 *
 * A token comes as "Authorization: Bearer TOKEN" or, for a browser, as
 * ?token=TOKEN; it is compared in constant time. Requests are served one
 * at a time (a mutex): each opens one read-only transaction on the queue
 * (metrics_view_load), so a burst of scrapes costs one reader at a time.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics_int.h"
#include "tools.h"

#define METRICS_CONN_MAX	32	/* connections at once */
#define METRICS_CONN_PER_IP	8
#define METRICS_CONN_TIMEOUT	10	/* seconds idle */
#define METRICS_CONN_MEMORY	(16 * 1024)	/* per connection: the
						 * request line and headers
						 * must fit */
#define METRICS_DAEMONS_MAX	8	/* metrics_listen addresses */

struct metrics_srv {
	const struct conf	*conf;
	struct queue		*q;
	pthread_mutex_t		 mu;
};

/* metrics_token_eq - does given equal want? Constant time in given's
 * length and want's content: no early exit on the first difference. */
static bool
metrics_token_eq(const char *given, const char *want)
{
	size_t		 gl = strlen(given), wl = strlen(want), i;
	unsigned char	 d = gl != wl;

	for (i = 0; i < gl; i++)
		d |= (unsigned char)given[i] ^
		    (unsigned char)want[wl > 0 ? i % wl : 0];
	return d == 0;
}

/* metrics_authorized - no token configured, or the request carries it. */
static bool
metrics_authorized(struct MHD_Connection *conn, const char *want)
{
	const char	*h, *arg;

	if (want == NULL || want[0] == '\0')
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (metrics_token_eq(h, want))
			return true;
	}
	arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
	return arg != NULL && metrics_token_eq(arg, want);
}

static enum MHD_Result
metrics_reply(struct MHD_Connection *conn, unsigned status,
    const char *type, const char *body, size_t len, bool page)
{
	struct MHD_Response	*r;
	enum MHD_Result		 rc;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (page) {
		/* No script, nothing from elsewhere; the token may be in
		 * the URL, so no Referer either. */
		(void)MHD_add_response_header(r, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; "
		    "img-src data:; frame-ancestors 'none'");
		(void)MHD_add_response_header(r, "Referrer-Policy",
		    "no-referrer");
	}
	if (status == MHD_HTTP_UNAUTHORIZED)
		(void)MHD_add_response_header(r,
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
metrics_text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	return metrics_reply(conn, status, "text/plain; charset=utf-8", msg,
	    strlen(msg), false);
}

/* metrics_render - /metrics or /, from one view of the queue. */
static enum MHD_Result
metrics_render(struct metrics_srv *srv, struct MHD_Connection *conn,
    bool page)
{
	struct metrics_view	 v;
	struct sbuf		*b = sbuf_new();
	enum MHD_Result		 rc;

	pthread_mutex_lock(&srv->mu);
	if (metrics_view_load(srv->conf, srv->q, &v) != 0) {
		log_warnx("queue: %s", queue_errmsg(srv->q));
		metrics_view_free(&v);
		pthread_mutex_unlock(&srv->mu);
		sbuf_free(b);
		return metrics_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "queue error\n");
	}
	if (page)
		metrics_page(&v, srv->conf, b);
	else
		metrics_prom(&v, b);
	metrics_view_free(&v);
	pthread_mutex_unlock(&srv->mu);
	rc = metrics_reply(conn, MHD_HTTP_OK, page ? "text/html; charset=utf-8" :
	    "text/plain; version=0.0.4; charset=utf-8", sbuf_str(b),
	    sbuf_len(b), page);
	sbuf_free(b);
	return rc;
}

static enum MHD_Result
metrics_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *uploadsz, void **state)
{
	struct metrics_srv	*srv = cls;
	bool			 page;

	(void)version;
	(void)upload;
	(void)uploadsz;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return metrics_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed\n");
	if (strcmp(url, "/metrics") == 0)
		page = false;
	else if (strcmp(url, "/") == 0)
		page = true;
	else
		return metrics_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (!metrics_authorized(conn, page ? srv->conf->status_token :
	    srv->conf->metrics_token))
		return metrics_text(conn, MHD_HTTP_UNAUTHORIZED,
		    "a token is needed\n");
	return metrics_render(srv, conn, page);
}

static void
metrics_mhd_log(void *arg, const char *fmt, va_list ap)
{
	struct sbuf	*b = sbuf_new();

	(void)arg;
	sbuf_vcatf(b, fmt, ap);
	while (sbuf_len(b) > 0 && b->s[b->len - 1] == '\n')
		b->s[--b->len] = '\0';
	log_warnx("http: %s", sbuf_str(b));
	sbuf_free(b);
}

int
metrics_serve(const struct conf *c, const int *fds, size_t nfds)
{
	struct metrics_srv	 srv;
	struct MHD_Daemon	*d[METRICS_DAEMONS_MAX];
	sigset_t		 mask;
	char			 err[1024];
	size_t			 i, n = 0;
	int			 sig;

	memset(&srv, 0, sizeof(srv));
	srv.conf = c;
	pthread_mutex_init(&srv.mu, NULL);
	if (queue_open(c->queue_dir, QUEUE_RDONLY, c->queue_map_size, &srv.q,
	    err, sizeof(err)) != 0)
		fatalx("queue: %s", err);
	/* The threads libmicrohttpd starts inherit this mask: signals come
	 * to sigwait below only. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nfds && n < METRICS_DAEMONS_MAX; i++) {
		d[n] = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		    MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, metrics_handle, &srv,
		    MHD_OPTION_EXTERNAL_LOGGER, metrics_mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fds[i],
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONN_MAX,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned)METRICS_CONN_PER_IP,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)METRICS_CONN_TIMEOUT,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)METRICS_CONN_MEMORY,
		    MHD_OPTION_END);
		if (d[n] == NULL)
			fatalx("cannot serve %s", c->metrics_listen[i].text);
		n++;
	}
	if (nfds > n)
		log_warnx("metrics_listen: only the first %d addresses are "
		    "served", METRICS_DAEMONS_MAX);
	log_info("serving metrics on %zu address%s", n, n == 1 ? "" : "es");
	for (;;) {
		if (sigwait(&mask, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		/* SIGHUP: the master stops and starts us on a reload. */
	}
	/* The sockets are the master's too, for the next of us: quiesced
	 * first, MHD_stop_daemon leaves them open (it would shut them down
	 * for every process), and we close only our copy. */
	for (i = 0; i < n; i++) {
		(void)MHD_quiesce_daemon(d[i]);
		MHD_stop_daemon(d[i]);
		close(fds[i]);
	}
	queue_close(srv.q);
	log_info("stopped");
	return 0;
}

/* ------------------------------------------------------------------ */
/* The view. */

static struct metrics_site *
metrics_site_find(struct metrics_view *v, const char *domain)
{
	size_t	i;

	for (i = 0; i < v->nsite; i++)
		if (strcasecmp(v->site[i].domain, domain) == 0)
			return &v->site[i];
	return NULL;
}

/* metrics_site_get - the site's entry, added if new; NULL past the cap. */
static struct metrics_site *
metrics_site_get(struct metrics_view *v, const char *domain)
{
	struct metrics_site	*s;
	char			*p;

	if ((s = metrics_site_find(v, domain)) != NULL)
		return s;
	if (v->nsite == METRICS_SITES_MAX || strlen(domain) > QUEUE_ADDR_MAX)
		return NULL;
	s = &v->site[v->nsite++];
	memset(s, 0, sizeof(*s));
	strl_copy(s->domain, domain, sizeof(s->domain));
	for (p = s->domain; *p != '\0'; p++)	/* as the queue keeps them */
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static int
metrics_site_seen(void *arg, const char *domain, int64_t when)
{
	struct metrics_site	*s;

	if ((s = metrics_site_get(arg, domain)) != NULL)
		s->seen = when;
	return 0;
}

static int
metrics_site_key(const void *key, const void *elt)
{
	return strcmp(key, ((const struct metrics_site *)elt)->domain);
}

static int
metrics_site_cmp(const void *a, const void *b)
{
	return strcmp(((const struct metrics_site *)a)->domain,
	    ((const struct metrics_site *)b)->domain);
}

int
metrics_view_load(const struct conf *c, struct queue *q,
    struct metrics_view *v)
{
	const struct conf_list	*hold = &c->hold_domains;
	struct metrics_site	*s;
	size_t			 i, nsorted;
	size_t			 top = (size_t)c->metrics_top_domains;
	bool			 held;
	int			 rc;

	memset(v, 0, sizeof(*v));
	v->now = (int64_t)clock_now();
	if ((rc = queue_shape(q, v->now, &v->shape)) != 0)
		return -1;
	if ((rc = queue_counter(q, "bounce_sent", &v->bounce_sent)) != 0)
		return -1;
	v->have_cnt = counters_read(&v->cnt, v->now);
	v->site = xcalloc(METRICS_SITES_MAX, sizeof(*v->site));
	v->shown = xcalloc(v->shape.ndom + 1, sizeof(*v->shown));
	for (i = 0; i < hold->n; i++)
		if (hold->v[i][0] != '.' &&
		    (s = metrics_site_get(v, hold->v[i])) != NULL)
			s->held = true;
	if (queue_site_walk(q, metrics_site_seen, v) != 0)
		return -1;
	/* Sorted, so that each domain of the queue is looked up in log
	 * time; held domains (bounded by hold_domains) may be added. */
	qsort(v->site, v->nsite, sizeof(*v->site), metrics_site_cmp);
	nsorted = v->nsite;
	/* shape.dom is largest first: the top ones, and every held one
	 * wherever it is, keep their order. */
	for (i = 0; i < v->shape.ndom; i++) {
		const struct qshape_dom	*d = &v->shape.dom[i];

		held = conf_domain_in(hold, d->domain);
		if (held && (s = metrics_site_get(v, d->domain)) != NULL) {
			s->held = true;
			s->dom = d;
		} else if ((s = bsearch(d->domain, v->site, nsorted,
		    sizeof(*v->site), metrics_site_key)) != NULL)
			s->dom = d;
		if (i < top || held)
			v->shown[v->nshown++] = i;
		else {
			v->other_rcpts += d->total;
			v->other_doms++;
		}
	}
	qsort(v->site, v->nsite, sizeof(*v->site), metrics_site_cmp);
	return 0;
}

void
metrics_view_free(struct metrics_view *v)
{
	queue_shape_free(&v->shape);
	free(v->shown);
	free(v->site);
	memset(v, 0, sizeof(*v));
}

/*
 * route_dns.c - the addresses of a next hop: MX, A and AAAA through c-ares.
 *
 * RFC 5321 §5.1 with RFC 7505 (protocols.md §4.9):
 *  - MX of the domain. NXDOMAIN is permanent (5.1.2); SERVFAIL, REFUSED,
 *    a timeout or a bad reply is temporary (4.4.3), never cached.
 *  - No MX (NODATA): the implicit MX, the domain's own A/AAAA with
 *    preference 0. When MX records exist the domain's own A/AAAA is never
 *    used.
 *  - Null MX: when every MX record names the root ("0 ." alone, as
 *    published) the domain takes no mail (5.1.10). A "." mixed with real
 *    MX records is dropped (the RFC forbids publishing that, and says
 *    nothing of senders: protocols.md §9).
 *  - Backup MX: when myhostname or a my_names entry is an MX host, that
 *    record and every record of equal or higher preference number go. If
 *    nothing is left the mail would come back to us: 5.4.6.
 *  - An MX record whose exchange is not a host name (an IP address such
 *    as "127.0.0.5" or "[127.0.0.5]", or bytes no name has) is skipped
 *    with a warning and never looked up; if that leaves nothing: 5.4.4.
 *    An MX host that is an alias (CNAME; RFC 2181 §10.3 forbids it) is
 *    followed, with a warning.
 *  - Equal preferences are shuffled; each host then gives its A then its
 *    AAAA addresses, ROUTE_ADDR_MAX in all, duplicates dropped. A host
 *    that does not resolve is skipped; when none resolves that is 4.4.3
 *    if any failed temporarily, else 5.4.4.
 *
 * A route_dns_resolve() toward a configured next hop (routes_file
 * "[host]"/"host", relayhost) never fails permanently: a name that does
 * not exist there is the operator's mistake, not the recipient's, so it
 * defers (4.4.3; 4.4.6 for a loop) as Postfix does for its relayhost.
 *
 * A truncated UDP answer (TC) is asked again over TCP by c-ares. Answers
 * c-ares cannot parse (bad compression pointers, cut records), under
 * another id (ignored: a timeout) or too short are temporary (4.4.3).
 *
 * Lookups are plain queries (ares_query: no search list, no /etc/hosts),
 * sent together (the MX hosts' A and AAAA all at once) and driven with
 * ARES_OPT_SOCK_STATE_CB, poll() and ares_process_fd() until they are all
 * answered or the caller's deadline passes, when the rest are cancelled.
 * Answers are cached per name and type for the smallest TTL in the answer,
 * at most an hour; NXDOMAIN and NODATA for a minute.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runner.h"
#include "route_ares.h"

#define ROUTE_DNS_T_A		1	/* RFC 1035 §3.2.2, RFC 3596 */
#define ROUTE_DNS_T_MX		15
#define ROUTE_DNS_T_AAAA	28
#define ROUTE_DNS_C_IN		1

#define ROUTE_DNS_TTL_MAX	3600	/* s: cap on a positive answer */
#define ROUTE_DNS_TTL_NEG	60	/* s: NXDOMAIN, NODATA */
#define ROUTE_DNS_CACHE_MAX	4096	/* entries; then expired go, or all */
#define ROUTE_DNS_BUCKETS	1024
#define ROUTE_DNS_MX_MAX	32	/* MX hosts kept (the most preferred) */
#define ROUTE_DNS_TRY_MS	1000	/* c-ares' first try; it doubles */
#define ROUTE_DNS_TRIES		3

enum route_dns_st {
	ROUTE_DNS_OK,		/* records */
	ROUTE_DNS_NODATA,	/* the name exists, no record of the type */
	ROUTE_DNS_NX,		/* NXDOMAIN */
	ROUTE_DNS_TEMP,		/* try again later; not cached */
};

struct route_dns_mx {
	int	 pref;
	char	 host[256];	/* lower case, no trailing dot; "" = root */
};

struct route_dns_ip {
	int		 family;
	unsigned char	 a[16];
};

/* One answer: MX records or addresses, by the query's type. */
struct route_dns_ans {
	enum route_dns_st	 st;
	size_t			 n;
	struct route_dns_mx	*mx;
	struct route_dns_ip	*ip;
	char			 why[96];	/* ROUTE_DNS_TEMP, NX */
	char			 canon[256];	/* A/AAAA reached through a
						 * CNAME: the name it gave */
};

struct route_dns_cent {
	struct route_dns_cent	*next;
	int			 type;
	char			 name[256];
	int64_t			 expire;	/* monotonic ms */
	struct route_dns_ans	 ans;
};

/* One query of a batch; lives until route_dns_run() returns. */
struct route_dns_q {
	struct route_dns	*d;
	int			 type;
	char			 name[256];
	bool			 done;
	struct route_dns_ans	 ans;
};

struct route_dns {
	struct route_ares	 ares;		/* our own channel */
	struct conf_list	 self;		/* myhostname, my_names */
	int			 smtp_port;
	struct route_dns_cent	*bucket[ROUTE_DNS_BUCKETS];
	size_t			 ncache;
};

/* The result being built by route_dns_resolve(). */
struct route_dns_out {
	struct route_addr	*v;
	size_t			 max;
	size_t			*n;
	int			 port;
	char			*status;
	char			*why;
	size_t			 whysz;
};

/* route_dns_norm - a name as a cache key: lower case, no trailing dot. */
static void
route_dns_norm(char *dst, size_t dstsz, const char *src)
{
	size_t	len;

	strl_copy(dst, src, dstsz);
	strl_lower(dst);
	len = strlen(dst);
	if (len > 0 && dst[len - 1] == '.')
		dst[len - 1] = '\0';
}

static void
route_dns_ans_clear(struct route_dns_ans *a)
{
	free(a->mx);
	free(a->ip);
	memset(a, 0, sizeof(*a));
}

static void
route_dns_ans_copy(struct route_dns_ans *dst, const struct route_dns_ans *src)
{
	*dst = *src;
	dst->mx = NULL;
	dst->ip = NULL;
	if (src->mx != NULL && src->n > 0) {
		dst->mx = xreallocarray(NULL, src->n, sizeof(*dst->mx));
		memcpy(dst->mx, src->mx, src->n * sizeof(*dst->mx));
	}
	if (src->ip != NULL && src->n > 0) {
		dst->ip = xreallocarray(NULL, src->n, sizeof(*dst->ip));
		memcpy(dst->ip, src->ip, src->n * sizeof(*dst->ip));
	}
}

/* ------------------------------------------------------------------ */
/* The cache. */

static unsigned
route_dns_hash(int type, const char *name)
{
	uint32_t	h = 2166136261u ^ (uint32_t)type;	/* FNV-1a */

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h % ROUTE_DNS_BUCKETS;
}

/* route_dns_cache_purge - drop expired entries, or every one (all). */
static void
route_dns_cache_purge(struct route_dns *d, bool all)
{
	struct route_dns_cent	**pp, *e;
	int64_t			  now = clock_mono_ms();
	size_t			  i;

	for (i = 0; i < ROUTE_DNS_BUCKETS; i++) {
		pp = &d->bucket[i];
		while ((e = *pp) != NULL) {
			if (all || e->expire <= now) {
				*pp = e->next;
				route_dns_ans_clear(&e->ans);
				free(e);
				d->ncache--;
			} else
				pp = &e->next;
		}
	}
}

static const struct route_dns_cent *
route_dns_cache_get(struct route_dns *d, int type, const char *name)
{
	struct route_dns_cent	*e;

	for (e = d->bucket[route_dns_hash(type, name)]; e != NULL;
	    e = e->next)
		if (e->type == type && strcmp(e->name, name) == 0)
			return e->expire > clock_mono_ms() ? e : NULL;
	return NULL;
}

static void
route_dns_cache_put(struct route_dns *d, const struct route_dns_q *q,
    uint32_t ttl)
{
	struct route_dns_cent	**pp, *e;
	unsigned		  h = route_dns_hash(q->type, q->name);

	if (ttl == 0)
		return;
	for (pp = &d->bucket[h]; (e = *pp) != NULL; pp = &e->next)
		if (e->type == q->type && strcmp(e->name, q->name) == 0) {
			*pp = e->next;
			route_dns_ans_clear(&e->ans);
			free(e);
			d->ncache--;
			break;
		}
	if (d->ncache >= ROUTE_DNS_CACHE_MAX)
		route_dns_cache_purge(d, false);
	if (d->ncache >= ROUTE_DNS_CACHE_MAX)
		route_dns_cache_purge(d, true);
	e = xcalloc(1, sizeof(*e));
	e->type = q->type;
	strl_copy(e->name, q->name, sizeof(e->name));
	e->expire = clock_mono_ms() + (int64_t)ttl * 1000;
	route_dns_ans_copy(&e->ans, &q->ans);
	e->next = d->bucket[h];
	d->bucket[h] = e;
	d->ncache++;
}

/* ------------------------------------------------------------------ */
/* Answers. */

/* route_dns_skip_name - past a (possibly compressed) name, or -1. */
static int
route_dns_skip_name(const unsigned char *b, int len, int pos)
{
	while (pos < len) {
		if (b[pos] == 0)
			return pos + 1;
		if ((b[pos] & 0xc0) == 0xc0)
			return pos + 2 <= len ? pos + 2 : -1;
		if ((b[pos] & 0xc0) != 0)
			return -1;
		pos += 1 + b[pos];
	}
	return -1;
}

/*
 * route_dns_ttl - the smallest TTL among the answer section's records
 * (an MX reply's TTL is not given by ares_parse_mx_reply; a CNAME on the
 * way counts too), capped at ROUTE_DNS_TTL_MAX. An answer we cannot walk
 * gets ROUTE_DNS_TTL_NEG.
 */
static uint32_t
route_dns_ttl(const unsigned char *b, int len)
{
	uint32_t	ttl, min = ROUTE_DNS_TTL_MAX;
	int		qd, an, pos = 12, rdlen;

	if (b == NULL || len < 12)
		return ROUTE_DNS_TTL_NEG;
	qd = b[4] << 8 | b[5];
	an = b[6] << 8 | b[7];
	while (qd-- > 0) {
		if ((pos = route_dns_skip_name(b, len, pos)) == -1 ||
		    (pos += 4) > len)
			return ROUTE_DNS_TTL_NEG;
	}
	while (an-- > 0) {
		if ((pos = route_dns_skip_name(b, len, pos)) == -1 ||
		    pos + 10 > len)
			return ROUTE_DNS_TTL_NEG;
		ttl = (uint32_t)b[pos + 4] << 24 | (uint32_t)b[pos + 5] << 16 |
		    (uint32_t)b[pos + 6] << 8 | (uint32_t)b[pos + 7];
		if (ttl > 0x7fffffff)	/* RFC 2181 §8: treat as zero */
			ttl = 0;
		if (ttl < min)
			min = ttl;
		rdlen = b[pos + 8] << 8 | b[pos + 9];
		pos += 10 + rdlen;
		if (pos > len)
			return ROUTE_DNS_TTL_NEG;
	}
	return min;
}

static int
route_dns_mx_cmp(const void *a, const void *b)
{
	const struct route_dns_mx	*x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

static void
route_dns_parse_mx(struct route_dns_q *q, const unsigned char *b, int len)
{
	struct ares_mx_reply	*mxs = NULL, *m;
	struct route_dns_ans	*a = &q->ans;
	size_t			 n = 0;
	int			 rc;

	if ((rc = ares_parse_mx_reply(b, len, &mxs)) != ARES_SUCCESS) {
		a->st = rc == ARES_ENODATA ? ROUTE_DNS_NODATA : ROUTE_DNS_TEMP;
		strl_copy(a->why, ares_strerror(rc), sizeof(a->why));
		return;
	}
	for (m = mxs; m != NULL; m = m->next)
		n++;
	a->mx = xcalloc(n > 0 ? n : 1, sizeof(*a->mx));
	for (m = mxs; m != NULL; m = m->next) {
		a->mx[a->n].pref = m->priority;
		route_dns_norm(a->mx[a->n].host, sizeof(a->mx[a->n].host),
		    m->host != NULL ? m->host : "");
		a->n++;
	}
	ares_free_data(mxs);
	a->st = a->n > 0 ? ROUTE_DNS_OK : ROUTE_DNS_NODATA;
	/* Keep the most preferred when there are too many. */
	qsort(a->mx, a->n, sizeof(*a->mx), route_dns_mx_cmp);
	if (a->n > ROUTE_DNS_MX_MAX)
		a->n = ROUTE_DNS_MX_MAX;
}

static void
route_dns_parse_addr(struct route_dns_q *q, const unsigned char *b, int len)
{
	struct ares_addrttl	 a4[ROUTE_ADDR_MAX];
	struct ares_addr6ttl	 a6[ROUTE_ADDR_MAX];
	struct hostent		*he = NULL;
	struct route_dns_ans	*a = &q->ans;
	int			 n = ROUTE_ADDR_MAX, rc, i;

	if (q->type == ROUTE_DNS_T_A)
		rc = ares_parse_a_reply(b, len, &he, a4, &n);
	else
		rc = ares_parse_aaaa_reply(b, len, &he, a6, &n);
	if (he != NULL) {
		/* The answer followed a CNAME: remember where to. */
		if (rc == ARES_SUCCESS && he->h_name != NULL) {
			route_dns_norm(a->canon, sizeof(a->canon), he->h_name);
			if (strcmp(a->canon, q->name) == 0)
				a->canon[0] = '\0';
		}
		ares_free_hostent(he);
	}
	if (rc != ARES_SUCCESS || n <= 0) {
		a->st = rc == ARES_SUCCESS || rc == ARES_ENODATA ?
		    ROUTE_DNS_NODATA : ROUTE_DNS_TEMP;
		strl_copy(a->why, ares_strerror(rc), sizeof(a->why));
		return;
	}
	a->ip = xcalloc((size_t)n, sizeof(*a->ip));
	for (i = 0; i < n; i++) {
		if (q->type == ROUTE_DNS_T_A) {
			a->ip[i].family = AF_INET;
			memcpy(a->ip[i].a, &a4[i].ipaddr, 4);
		} else {
			a->ip[i].family = AF_INET6;
			memcpy(a->ip[i].a, &a6[i].ip6addr, 16);
		}
	}
	a->n = (size_t)n;
	a->st = ROUTE_DNS_OK;
}

static void
route_dns_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct route_dns_q	*q = arg;
	uint32_t		 ttl = ROUTE_DNS_TTL_NEG;

	(void)timeouts;
	if (q->done)
		return;
	q->done = true;
	q->d->ares.pending--;
	switch (status) {
	case ARES_SUCCESS:
		if (q->type == ROUTE_DNS_T_MX)
			route_dns_parse_mx(q, abuf, alen);
		else
			route_dns_parse_addr(q, abuf, alen);
		if (q->ans.st == ROUTE_DNS_OK)
			ttl = route_dns_ttl(abuf, alen);
		break;
	case ARES_ENODATA:
		q->ans.st = ROUTE_DNS_NODATA;
		break;
	case ARES_ENOTFOUND:
		q->ans.st = ROUTE_DNS_NX;
		break;
	case ARES_EBADNAME:
		/* Not a name that can ever resolve. */
		q->ans.st = ROUTE_DNS_NX;
		strl_copy(q->ans.why, "bad name", sizeof(q->ans.why));
		return;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		q->ans.st = ROUTE_DNS_TEMP;
		strl_copy(q->ans.why, "DNS timeout", sizeof(q->ans.why));
		return;
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 says "Could not contact DNS servers" also when
		 * every server answered SERVFAIL or REFUSED. */
		q->ans.st = ROUTE_DNS_TEMP;
		strl_copy(q->ans.why, "no DNS server answered (SERVFAIL, "
		    "REFUSED or unreachable)", sizeof(q->ans.why));
		return;
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
		q->ans.st = ROUTE_DNS_TEMP;
		strl_copy(q->ans.why, status == ARES_ESERVFAIL ? "SERVFAIL" :
		    "REFUSED", sizeof(q->ans.why));
		return;
	case ARES_ETIMEOUT:
		q->ans.st = ROUTE_DNS_TEMP;
		strl_copy(q->ans.why, "DNS timeout", sizeof(q->ans.why));
		return;
	default:
		q->ans.st = ROUTE_DNS_TEMP;
		strl_copy(q->ans.why, ares_strerror(status),
		    sizeof(q->ans.why));
		return;
	}
	if (q->ans.st != ROUTE_DNS_TEMP)
		route_dns_cache_put(q->d, q, ttl);
}

/* route_dns_run - answer every query of the batch: from the cache, else
 * from DNS by the deadline. Afterwards each q->ans is filled in. */
static void
route_dns_run(struct route_dns *d, struct route_dns_q *qs, size_t nq,
    int64_t deadline)
{
	const struct route_dns_cent	*e;
	size_t				 i;

	for (i = 0; i < nq; i++) {
		qs[i].d = d;
		qs[i].done = false;
		memset(&qs[i].ans, 0, sizeof(qs[i].ans));
		if ((e = route_dns_cache_get(d, qs[i].type,
		    qs[i].name)) != NULL) {
			route_dns_ans_copy(&qs[i].ans, &e->ans);
			qs[i].done = true;
		}
	}
	for (i = 0; i < nq; i++) {
		if (qs[i].done)
			continue;
		if (clock_mono_ms() >= deadline) {
			/* No time to ask: a zero timeout is cache only. */
			qs[i].done = true;
			qs[i].ans.st = ROUTE_DNS_TEMP;
			strl_copy(qs[i].ans.why, "DNS timeout",
			    sizeof(qs[i].ans.why));
			continue;
		}
		d->ares.pending++;
		/* May call back at once (no servers, a bad name). */
		ares_query(d->ares.ch, qs[i].name, ROUTE_DNS_C_IN,
		    qs[i].type, route_dns_cb, &qs[i]);
	}
	route_ares_wait(&d->ares, deadline);
}

static void
route_dns_batch_free(struct route_dns_q *qs, size_t nq)
{
	size_t	i;

	for (i = 0; i < nq; i++)
		route_dns_ans_clear(&qs[i].ans);
	free(qs);
}

/* ------------------------------------------------------------------ */
/* Resolving a route. */

/* route_dns_is_self - is this host (normalised) one of our names? */
static bool
route_dns_is_self(const struct route_dns *d, const char *host)
{
	size_t	i;

	for (i = 0; i < d->self.n; i++)
		if (strcasecmp(d->self.v[i], host) == 0)
			return true;
	return false;
}

static int
route_dns_fail(struct route_dns_out *o, int rc, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
route_dns_fail(struct route_dns_out *o, int rc, const char *status,
    const char *fmt, ...)
{
	va_list	ap;

	strl_copy(o->status, status, 16);
	va_start(ap, fmt);
	(void)vsnprintf(o->why, o->whysz, fmt, ap);
	va_end(ap);
	*o->n = 0;
	return rc;
}

/* route_dns_add - one address; false when the list is full. Duplicates
 * (one host under two names) are dropped. */
static bool
route_dns_add(struct route_dns_out *o, int family, const void *a,
    const char *host, int pref)
{
	struct route_addr	 ra;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	size_t			 i;

	if (*o->n >= o->max)
		return false;
	memset(&ra, 0, sizeof(ra));
	if (family == AF_INET) {
		sin = (struct sockaddr_in *)&ra.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)o->port);
		memcpy(&sin->sin_addr, a, 4);
		ra.sslen = sizeof(*sin);
	} else {
		sin6 = (struct sockaddr_in6 *)&ra.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)o->port);
		memcpy(&sin6->sin6_addr, a, 16);
		ra.sslen = sizeof(*sin6);
	}
	strl_copy(ra.host, host, sizeof(ra.host));
	ra.pref = pref;
	for (i = 0; i < *o->n; i++)
		if (o->v[i].sslen == ra.sslen &&
		    memcmp(&o->v[i].ss, &ra.ss, ra.sslen) == 0)
			return true;
	o->v[(*o->n)++] = ra;
	return true;
}

/* route_dns_literal - "192.0.2.1", "::1", "IPv6:::1" (brackets already
 * off): the one address. -1 if it is not an IP. */
static int
route_dns_literal(struct route_dns_out *o, const char *s)
{
	unsigned char	a[16];
	char		text[INET6_ADDRSTRLEN];

	if (strncasecmp(s, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, s + 5, a) != 1)
			return -1;
		inet_ntop(AF_INET6, a, text, sizeof(text));
		route_dns_add(o, AF_INET6, a, text, 0);
	} else if (inet_pton(AF_INET, s, a) == 1) {
		route_dns_add(o, AF_INET, a, s, 0);
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		inet_ntop(AF_INET6, a, text, sizeof(text));
		route_dns_add(o, AF_INET6, a, text, 0);
	} else
		return -1;
	return 0;
}

/*
 * route_dns_alias_warn - an MX host that is an alias (a CNAME): RFC 2181
 * §10.3 says an MX must name the host itself, yet such MX records exist
 * and the mail is wanted there, so the CNAME is followed (c-ares does, as
 * Postfix does) and the publisher's mistake is logged.
 */
static void
route_dns_alias_warn(const char *mxof, const char *host,
    const struct route_dns_q *a4, const struct route_dns_q *a6)
{
	const char	*canon = NULL;

	if (mxof == NULL)
		return;
	if (a4->ans.st == ROUTE_DNS_OK && a4->ans.canon[0] != '\0')
		canon = a4->ans.canon;
	else if (a6->ans.st == ROUTE_DNS_OK && a6->ans.canon[0] != '\0')
		canon = a6->ans.canon;
	if (canon != NULL)
		log_warnx("MX host %s of %s is an alias (CNAME) of %s: "
		    "followed", host, mxof, canon);
}

/*
 * route_dns_hosts - the A then AAAA addresses of each host in turn (the
 * order given). Hosts that do not resolve are skipped. `what` names the
 * hosts in a failure ("the MX hosts of example.org").
 */
static int
route_dns_hosts(struct route_dns *d, struct route_dns_out *o,
    const struct route_dns_mx *hosts, size_t nh, int64_t deadline,
    const char *what, const char *mxof)
{
	struct route_dns_q	*qs, *a4, *a6;
	const char		*tempwhy = NULL;
	size_t			 i, j;
	bool			 nx = true;
	int			 rc;

	qs = xcalloc(nh * 2, sizeof(*qs));
	for (i = 0; i < nh; i++) {
		qs[2 * i].type = ROUTE_DNS_T_A;
		qs[2 * i + 1].type = ROUTE_DNS_T_AAAA;
		strl_copy(qs[2 * i].name, hosts[i].host, sizeof(qs->name));
		strl_copy(qs[2 * i + 1].name, hosts[i].host, sizeof(qs->name));
	}
	route_dns_run(d, qs, nh * 2, deadline);
	for (i = 0; i < nh; i++) {
		a4 = &qs[2 * i];
		a6 = &qs[2 * i + 1];
		route_dns_alias_warn(mxof, hosts[i].host, a4, a6);
		for (j = 0; a4->ans.st == ROUTE_DNS_OK && j < a4->ans.n; j++)
			route_dns_add(o, AF_INET, a4->ans.ip[j].a,
			    hosts[i].host, hosts[i].pref);
		for (j = 0; a6->ans.st == ROUTE_DNS_OK && j < a6->ans.n; j++)
			route_dns_add(o, AF_INET6, a6->ans.ip[j].a,
			    hosts[i].host, hosts[i].pref);
		if (a4->ans.st != ROUTE_DNS_OK && a6->ans.st != ROUTE_DNS_OK &&
		    tempwhy == NULL) {
			if (a4->ans.st == ROUTE_DNS_TEMP)
				tempwhy = a4->ans.why;
			else if (a6->ans.st == ROUTE_DNS_TEMP)
				tempwhy = a6->ans.why;
		}
		if (a4->ans.st != ROUTE_DNS_NX || a6->ans.st != ROUTE_DNS_NX)
			nx = false;
	}
	if (*o->n > 0)
		rc = ROUTE_OK;
	else if (tempwhy != NULL)
		rc = route_dns_fail(o, ROUTE_E_TEMP, "4.4.3", "address lookup "
		    "for %s failed: %s", what, tempwhy);
	else if (nx && nh == 1)
		rc = route_dns_fail(o, ROUTE_E_NXDOMAIN, "5.1.2", "host %s "
		    "not found", hosts[0].host);
	else
		rc = route_dns_fail(o, ROUTE_E_NOADDR, "5.4.4", "no address "
		    "for %s", what);
	route_dns_batch_free(qs, nh * 2);
	return rc;
}

/* route_dns_shuffle - Fisher-Yates within each run of equal preference
 * (RFC 5321 §5.1: equal preferences MUST be randomised). */
static void
route_dns_shuffle(struct route_dns_mx *v, size_t n)
{
	struct route_dns_mx	 t;
	size_t			 lo, hi, i, j;

	for (lo = 0; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && v[hi].pref == v[lo].pref; hi++)
			;
		for (i = hi - 1; i > lo; i--) {
			j = lo + arc4random_uniform((uint32_t)(i - lo + 1));
			t = v[i];
			v[i] = v[j];
			v[j] = t;
		}
	}
}

/*
 * route_dns_mx_usable - may an MX record's exchange be looked up? It must
 * be a host name (RFC 5321 §5.1, RFC 1035 §3.3.9): an IP address written
 * as a name ("127.0.0.5", "[127.0.0.5]", "::1") is a publisher's mistake,
 * and asking DNS for the A record of "127.0.0.5" only leaks a query, so
 * it is skipped with a warning, as Postfix does ("numeric domain name in
 * resource data of MX record"). So is a name with bytes no host name has
 * (c-ares gives them escaped). The other MX hosts still count.
 */
static bool
route_dns_mx_usable(const char *domain, const char *host)
{
	unsigned char	a[16];
	const char	*lit = host;
	char		 buf[INET6_ADDRSTRLEN + 8];
	size_t		 len = strlen(host);

	if (len > 2 && host[0] == '[' && host[len - 1] == ']' &&
	    len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		lit = strncasecmp(buf, "IPv6:", 5) == 0 ? buf + 5 : buf;
	}
	if (inet_pton(AF_INET, lit, a) == 1 ||
	    inet_pton(AF_INET6, lit, a) == 1) {
		log_warnx("%s: MX host %s is an address, not a name: skipped",
		    domain, host);
		return false;
	}
	/* Lenient as resolvers are: "_" passes (it is found in the
	 * wild), brackets, spaces and escaped bytes do not. */
	if (!smtp_domain_valid(host, 0) && strspn(host, "abcdefghijklmnopqrs"
	    "tuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != len) {
		log_warnx("%s: MX host \"%s\" is not a host name: skipped",
		    domain, host);
		return false;
	}
	return true;
}

/* route_dns_mx - the addresses of name's MX hosts (its own when it has
 * no MX), with every rule of RFC 5321 §5.1 and RFC 7505. */
static int
route_dns_mx(struct route_dns *d, struct route_dns_out *o, const char *name,
    int64_t deadline)
{
	struct route_dns_q	*q;
	struct route_dns_mx	*v;
	char			 what[320];
	size_t			 n = 0, i, k, skipped = 0;
	int			 self_pref = -1, rc;
	bool			 implicit = false;

	q = xcalloc(1, sizeof(*q));
	q->type = ROUTE_DNS_T_MX;
	strl_copy(q->name, name, sizeof(q->name));
	route_dns_run(d, q, 1, deadline);
	switch (q->ans.st) {
	case ROUTE_DNS_TEMP:
		rc = route_dns_fail(o, ROUTE_E_TEMP, "4.4.3", "MX lookup for "
		    "%s failed: %s", name, q->ans.why);
		route_dns_batch_free(q, 1);
		return rc;
	case ROUTE_DNS_NX:
		rc = route_dns_fail(o, ROUTE_E_NXDOMAIN, "5.1.2", "domain %s "
		    "not found%s%s", name, q->ans.why[0] != '\0' ? ": " : "",
		    q->ans.why);
		route_dns_batch_free(q, 1);
		return rc;
	case ROUTE_DNS_NODATA:
		/* The implicit MX: the name itself, preference 0. */
		v = xcalloc(1, sizeof(*v));
		strl_copy(v[0].host, name, sizeof(v[0].host));
		n = 1;
		implicit = true;
		break;
	case ROUTE_DNS_OK:
	default:
		/* Drop root exchanges ("0 ."), and a host named twice: its
		 * best preference counts (the list is sorted). */
		v = xcalloc(q->ans.n > 0 ? q->ans.n : 1, sizeof(*v));
		for (i = 0; i < q->ans.n; i++) {
			if (q->ans.mx[i].host[0] == '\0')
				continue;
			if (!route_dns_mx_usable(name, q->ans.mx[i].host)) {
				skipped++;
				continue;
			}
			for (k = 0; k < n; k++)
				if (strcmp(v[k].host, q->ans.mx[i].host) == 0)
					break;
			if (k == n)
				v[n++] = q->ans.mx[i];
		}
		if (n == 0 && skipped > 0) {
			free(v);
			route_dns_batch_free(q, 1);
			return route_dns_fail(o, ROUTE_E_NOADDR, "5.4.4",
			    "no usable MX host for %s (addresses or bad names "
			    "where host names belong)", name);
		}
		if (n == 0) {
			free(v);
			route_dns_batch_free(q, 1);
			return route_dns_fail(o, ROUTE_E_NULLMX, "5.1.10",
			    "domain %s accepts no mail (null MX)", name);
		}
		break;
	}
	route_dns_batch_free(q, 1);

	/* RFC 5321 §5.1: drop ourselves and every less preferred host. */
	for (i = 0; i < n; i++)
		if (route_dns_is_self(d, v[i].host) &&
		    (self_pref == -1 || v[i].pref < self_pref))
			self_pref = v[i].pref;
	if (self_pref != -1) {
		for (i = k = 0; i < n; i++)
			if (v[i].pref < self_pref)
				v[k++] = v[i];
		n = k;
	}
	if (n == 0) {
		free(v);
		return route_dns_fail(o, ROUTE_E_LOOP, "5.4.6", "mail for %s "
		    "loops back to myself", name);
	}
	route_dns_shuffle(v, n);
	if (implicit)
		(void)bsnprintf(what, sizeof(what), "%s (no MX)", name);
	else
		(void)bsnprintf(what, sizeof(what), "the MX hosts of %s",
		    name);
	rc = route_dns_hosts(d, o, v, n, deadline, what,
	    implicit ? NULL : name);
	if (rc == ROUTE_E_NXDOMAIN && !implicit) {
		/* An MX host that does not exist is not a missing domain. */
		rc = route_dns_fail(o, ROUTE_E_NOADDR, "5.4.4", "no address "
		    "for %s (%s not found)", what, v[0].host);
	}
	free(v);
	return rc;
}

/* route_dns_host - [host]: the literal, or the name's A/AAAA, no MX. */
static int
route_dns_host(struct route_dns *d, struct route_dns_out *o,
    const char *host, int64_t deadline)
{
	struct route_dns_mx	h;

	if (route_dns_literal(o, host) == 0)
		return ROUTE_OK;
	memset(&h, 0, sizeof(h));
	route_dns_norm(h.host, sizeof(h.host), host);
	return route_dns_hosts(d, o, &h, 1, deadline, h.host, NULL);
}

int
route_dns_resolve(struct route_dns *d, const struct route *r,
    const char *domain, struct route_addr *out, size_t max, size_t *n,
    char status[16], char *why, size_t whysz, int timeout_ms)
{
	struct route_dns_out	 o;
	char			 name[SMTP_DOMAIN_MAX + 2];
	char			 lit[SMTP_DOMAIN_MAX + 2];
	char			 aname[SMTP_DOMAIN_MAX + 1];
	const char		*target, *reason;
	size_t			 len;
	int64_t			 deadline;
	int			 rc;

	*n = 0;
	status[0] = '\0';
	if (whysz > 0)
		why[0] = '\0';
	memset(&o, 0, sizeof(o));
	o.v = out;
	o.max = max < ROUTE_ADDR_MAX ? max : ROUTE_ADDR_MAX;
	o.n = n;
	o.port = r->port > 0 ? r->port : d->smtp_port;
	o.status = status;
	o.why = why;
	o.whysz = whysz;
	deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	if (o.max == 0)
		return route_dns_fail(&o, ROUTE_E_TEMP, "4.3.0",
		    "no room for an address");
	switch (r->kind) {
	case ROUTE_HOLD:
	case ROUTE_CALLER:
		return route_dns_fail(&o, ROUTE_E_TEMP, "4.3.0", "route %s "
		    "waits for its site: nothing to resolve", r->key);
	case ROUTE_MX:
		target = domain != NULL ? domain : "";
		break;
	default:
		target = r->host;
		break;
	}
	route_dns_norm(name, sizeof(name), target);

	if (r->kind == ROUTE_MX && name[0] == '[') {
		/* An address literal (RFC 5321 §5.1): that address. */
		len = strlen(name);
		if (len < 3 || name[len - 1] != ']')
			return route_dns_fail(&o, ROUTE_E_NOADDR, "5.4.4",
			    "bad address literal %s", name);
		memcpy(lit, name + 1, len - 2);
		lit[len - 2] = '\0';
		if (route_dns_literal(&o, lit) == -1)
			return route_dns_fail(&o, ROUTE_E_NOADDR, "5.4.4",
			    "bad address literal %s", name);
		return ROUTE_OK;
	}
	if (r->kind == ROUTE_HOST && route_dns_literal(&o, name) == 0)
		return ROUTE_OK;
	/* DNS knows A-labels only (RFC 5891 §5): a name libidn2 refuses
	 * can never resolve. */
	if (name[0] == '\0' || !smtp_domain_valid(name, SMTP_ADDR_UTF8))
		rc = route_dns_fail(&o, ROUTE_E_NXDOMAIN, "5.1.2",
		    "bad domain name \"%.80s\"", target);
	else if (smtp_idn_to_ascii(name, aname, sizeof(aname), &reason) != 0)
		rc = route_dns_fail(&o, ROUTE_E_NXDOMAIN, "5.1.2",
		    "bad domain name \"%.80s\": not a valid international "
		    "domain name (%s)", target, reason);
	else if (r->kind == ROUTE_HOST)
		rc = route_dns_host(d, &o, aname, deadline);
	else
		rc = route_dns_mx(d, &o, aname, deadline);

	/* A configured next hop's trouble is ours to fix: defer. */
	if (r->kind != ROUTE_MX && rc != ROUTE_OK && rc != ROUTE_E_TEMP) {
		strl_copy(status, rc == ROUTE_E_LOOP ? "4.4.6" : "4.4.3", 16);
		rc = ROUTE_E_TEMP;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Set-up. */

/* route_dns_server - "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT" or a bare
 * IPv6 address into a c-ares server node. */
static int
route_dns_server(const char *s, struct ares_addr_port_node *nd)
{
	char		 host[INET6_ADDRSTRLEN + 8];
	const char	*h = s, *end, *port = NULL;
	size_t		 len;
	long		 v;
	char		*ep;

	memset(nd, 0, sizeof(*nd));
	if (*s == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL)
			return -1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else if ((end = strchr(s, ':')) != NULL &&
	    strchr(end + 1, ':') == NULL)
		port = end + 1;		/* IPv4:port */
	else
		end = s + strlen(s);	/* IPv4, or IPv6 without a port */
	len = (size_t)(end - h);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &nd->addr.addr4) == 1)
		nd->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &nd->addr.addr6) == 1)
		nd->family = AF_INET6;
	else
		return -1;
	v = 53;
	if (port != NULL) {
		errno = 0;
		v = strtol(port, &ep, 10);
		if (*port < '0' || *port > '9' || *ep != '\0' || errno != 0 ||
		    v < 1 || v > 65535)
			return -1;
	}
	nd->udp_port = nd->tcp_port = (int)v;
	return 0;
}

bool
route_dns_server_ok(const char *s)
{
	struct ares_addr_port_node	nd;

	return route_dns_server(s, &nd) == 0;
}

struct route_dns *
route_dns_new(const struct conf *c, char *err, size_t errsz)
{
	struct route_dns		*d;
	struct ares_addr_port_node	*nodes = NULL;
	size_t				 i;
	int				 rc;

	d = xcalloc(1, sizeof(*d));
	d->smtp_port = c->smtp_port > 0 ? c->smtp_port : 25;
	d->self.v = xcalloc(c->my_names.n + 1, sizeof(*d->self.v));
	if (c->myhostname != NULL && c->myhostname[0] != '\0') {
		d->self.v[d->self.n] = xstrdup(c->myhostname);
		route_dns_norm(d->self.v[d->self.n],
		    strlen(c->myhostname) + 1, c->myhostname);
		d->self.n++;
	}
	for (i = 0; i < c->my_names.n; i++) {
		d->self.v[d->self.n] = xstrdup(c->my_names.v[i]);
		route_dns_norm(d->self.v[d->self.n],
		    strlen(c->my_names.v[i]) + 1, c->my_names.v[i]);
		d->self.n++;
	}

	if (c->dns_servers.n > 0) {
		nodes = xcalloc(c->dns_servers.n, sizeof(*nodes));
		for (i = 0; i < c->dns_servers.n; i++) {
			if (route_dns_server(c->dns_servers.v[i],
			    &nodes[i]) == -1) {
				bsnprintf(err, errsz, "dns_servers: bad server "
				    "\"%.80s\" (want IP, IP:PORT or "
				    "[IPv6]:PORT)", c->dns_servers.v[i]);
				goto fail;
			}
			if (i > 0)
				nodes[i - 1].next = &nodes[i];
		}
	}

	if (route_ares_init(&d->ares, 0, ROUTE_DNS_TRY_MS, ROUTE_DNS_TRIES,
	    err, errsz) == -1)
		goto fail;
	if (nodes != NULL && (rc = ares_set_servers_ports(d->ares.ch,
	    nodes)) != ARES_SUCCESS) {
		bsnprintf(err, errsz, "dns_servers: %s", ares_strerror(rc));
		goto fail;
	}
	free(nodes);
	return d;
fail:
	free(nodes);
	route_dns_free(d);
	return NULL;
}

void
route_dns_free(struct route_dns *d)
{
	if (d == NULL)
		return;
	route_ares_free(&d->ares);
	route_dns_cache_purge(d, true);
	conf_list_free(&d->self);
	free(d);
}

/*
 * route_sts.c - MTA-STS policy discovery (RFC 8461 §3, §5).
 *
 * For a policy domain D, once a new connection to its hop is made:
 *
 *  1. TXT at _mta-sts.D through c-ares on dns_servers (the system's
 *     resolver without them), each record's strings concatenated (§3.1).
 *     Exactly one record starting "v=STSv1" with a valid id= makes a
 *     policy possible; none, several or an invalid one do not.
 *  2. The queue's cache (queue_sts_*, shared by every worker, kept across
 *     restarts): a policy fetched for that id, not expired (max_age) and
 *     fetched within ROUTE_STS_REFRESH, is used as it is.
 *  3. Else the policy is fetched (route_sts_fetch.c) from the addresses
 *     c-ares gives for mta-sts.D, parsed strictly (route_sts_parse.c) and
 *     stored with its id. A failed fetch is stored too, with its id and
 *     time: that id is not fetched again for ROUTE_STS_FAIL_WAIT (§3.3
 *     asks for five minutes or more), whichever worker asks.
 *
 * Whenever the TXT lookup or the fetch fails (or finds nothing), an
 * unexpired cached policy stays in force (§3.3: a policy cannot be taken
 * away by an attacker who blocks DNS or HTTPS); with none, D has no
 * policy. Nothing here defers mail: the worker does that, under enforce,
 * when no MX host qualifies (route_sts_filter) or none passes TLS.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route_ares.h"
#include "route_sts.h"

#define ROUTE_STS_T_TXT		16	/* RFC 1035 §3.3.14 */
#define ROUTE_STS_C_IN		1
#define ROUTE_STS_TRY_MS	1000	/* c-ares' first try; it doubles */
#define ROUTE_STS_TRIES		3
#define ROUTE_STS_PURGE_S	3600	/* s between purges of the cache */
#define ROUTE_STS_RECORDS_MAX	64	/* TXT records looked at */

struct route_sts {
	struct route_ares	 ares;		/* the TXT lookups' channel */
	struct route_dns	*dns;		/* mta-sts.D's addresses */
	struct queue		*q;
	char			*ca_file;	/* NULL: the system's store */
	int64_t			 purged;	/* monotonic ms, 0: never */
};

/* One TXT lookup and what it found. */
enum route_sts_txt_res {
	ROUTE_STS_TXT_ONE,	/* one valid STS record: id */
	ROUTE_STS_TXT_NONE,	/* no STS record (or no TXT at all) */
	ROUTE_STS_TXT_BAD,	/* several, or an invalid one */
	ROUTE_STS_TXT_FAIL,	/* the lookup failed */
};

struct route_sts_txt {
	struct route_sts	*s;
	bool			 done;
	enum route_sts_txt_res	 res;
	char			 id[ROUTE_STS_ID_MAX + 1];
	char			 why[96];
};

/* route_sts_txt_records - the STS record among a reply's TXT records. */
static void
route_sts_txt_records(struct route_sts_txt *t, struct ares_txt_ext *txt)
{
	struct ares_txt_ext	*e;
	char			 buf[ROUTE_STS_TXT_MAX + 1], id[ROUTE_STS_ID_MAX + 1];
	size_t			 len = 0, nrec = 0, nsts = 0, take;
	int			 r;
	bool			 valid = false;

	for (e = txt; e != NULL && nrec <= ROUTE_STS_RECORDS_MAX; ) {
		/* One record: its first chunk and those that follow. */
		len = 0;
		do {
			take = e->length;
			if (take > sizeof(buf) - len)
				take = sizeof(buf) - len;	/* long: the
						 * parser refuses an STS one */
			memcpy(buf + len, e->txt, take);
			len += take;
			e = e->next;
		} while (e != NULL && !e->record_start);
		nrec++;
		if ((r = route_sts_txt_parse(buf, len, id)) == 0)
			continue;	/* not an STS record */
		nsts++;
		if (r == 1 && nsts == 1) {
			valid = true;
			memcpy(t->id, id, sizeof(t->id));
		}
	}
	if (nsts == 0)
		t->res = ROUTE_STS_TXT_NONE;
	else if (nsts == 1 && valid)
		t->res = ROUTE_STS_TXT_ONE;
	else {
		t->res = ROUTE_STS_TXT_BAD;
		strl_copy(t->why, nsts > 1 ? "several STS records" :
		    "invalid STS record", sizeof(t->why));
	}
}

static void
route_sts_txt_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct route_sts_txt	*t = arg;
	struct ares_txt_ext	*txt = NULL;
	int			 rc;

	(void)timeouts;
	if (t->done)
		return;
	t->done = true;
	t->s->ares.pending--;
	switch (status) {
	case ARES_SUCCESS:
		if ((rc = ares_parse_txt_reply_ext(abuf, alen, &txt)) ==
		    ARES_SUCCESS) {
			route_sts_txt_records(t, txt);
			ares_free_data(txt);
		} else if (rc == ARES_ENODATA)
			t->res = ROUTE_STS_TXT_NONE;
		else {
			t->res = ROUTE_STS_TXT_FAIL;
			strl_copy(t->why, "malformed DNS reply",
			    sizeof(t->why));
		}
		return;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		t->res = ROUTE_STS_TXT_NONE;
		return;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
	case ARES_ETIMEOUT:
		t->res = ROUTE_STS_TXT_FAIL;
		strl_copy(t->why, "DNS timeout", sizeof(t->why));
		return;
	default:
		t->res = ROUTE_STS_TXT_FAIL;
		strl_copy(t->why, ares_strerror(status), sizeof(t->why));
		return;
	}
}

/* route_sts_txt - the TXT lookup at _mta-sts.domain. */
static void
route_sts_txt(struct route_sts *s, const char *domain, struct route_sts_txt *t,
    int timeout_ms)
{
	char	name[300];

	memset(t, 0, sizeof(*t));
	t->s = s;
	t->res = ROUTE_STS_TXT_FAIL;
	strl_copy(t->why, "DNS timeout", sizeof(t->why));
	if (!bsnprintf(name, sizeof(name), "_mta-sts.%s", domain)) {
		t->res = ROUTE_STS_TXT_NONE;
		return;
	}
	s->ares.pending++;
	/* May call back at once (a bad name). */
	ares_query(s->ares.ch, name, ROUTE_STS_C_IN, ROUTE_STS_T_TXT,
	    route_sts_txt_cb, t);
	route_ares_wait(&s->ares, clock_mono_ms() + (timeout_ms > 0 ?
	    timeout_ms : 0));
}

/* route_sts_cached - the cached record's policy into *p, if it has one
 * that has not expired and parses. */
static bool
route_sts_cached(const struct qsts *rec, int64_t now,
    struct route_sts_policy *p)
{
	char	why[128];

	if (rec->id[0] == '\0' || rec->expires <= now)
		return false;
	if (route_sts_policy_parse(rec->policy, rec->len, p, why,
	    sizeof(why)) != 0)
		return false;
	strl_copy(p->id, rec->id, sizeof(p->id));
	return true;
}

/* route_sts_fetch_policy - fetch and parse D's policy (0), or -1 with
 * why. */
static int
route_sts_fetch_policy(struct route_sts *s, const char *domain,
    struct route_sts_policy *p, char *why, size_t whysz)
{
	struct route_addr	 addrs[ROUTE_ADDR_MAX];
	struct route		 r;
	struct sbuf		*body;
	char			 status[16], dwhy[256];
	size_t			 n = 0;
	int			 rc;

	memset(&r, 0, sizeof(r));
	r.kind = ROUTE_HOST;
	r.port = 443;
	if (!bsnprintf(r.host, sizeof(r.host), "mta-sts.%s", domain)) {
		bsnprintf(why, whysz, "domain name too long");
		return -1;
	}
	if (route_dns_resolve(s->dns, &r, NULL, addrs, ROUTE_ADDR_MAX, &n,
	    status, dwhy, sizeof(dwhy), ROUTE_STS_FETCH_MS) != ROUTE_OK) {
		bsnprintf(why, whysz, "address of %s: %s", r.host, dwhy);
		return -1;
	}
	body = sbuf_new();
	rc = route_sts_fetch(domain, addrs, n, s->ca_file, body, why, whysz);
	if (rc == 0 && route_sts_policy_parse(sbuf_str(body), sbuf_len(body),
	    p, dwhy, sizeof(dwhy)) != 0) {
		bsnprintf(why, whysz, "https://%s/.well-known/mta-sts.txt: "
		    "bad policy: %s", r.host, dwhy);
		rc = -1;
	}
	sbuf_free(body);
	return rc;
}

/* route_sts_purge - now and then, the cache's dead records go. */
static void
route_sts_purge(struct route_sts *s, int64_t now)
{
	size_t	n;

	if (s->purged != 0 &&
	    clock_mono_ms() - s->purged < ROUTE_STS_PURGE_S * 1000)
		return;
	s->purged = clock_mono_ms();
	if (queue_sts_purge(s->q, now - ROUTE_STS_FAIL_WAIT, &n) != 0)
		log_warnx("MTA-STS cache: %s", queue_errmsg(s->q));
}

void
route_sts_policy(struct route_sts *s, const char *domain,
    struct route_sts_policy *p, int timeout_ms)
{
	struct route_sts_txt	 t;
	struct route_sts_policy	*fresh = NULL;
	struct qsts		*rec;
	struct sbuf		*text = NULL;
	char			 why[512];
	int64_t			 now = clock_now();
	bool			 have, cached;
	int			 rc;

	memset(p, 0, sizeof(*p));
	p->mode = ROUTE_STS_NONE;
	strl_copy(p->domain, domain, sizeof(p->domain));
	if (s == NULL || domain[0] == '\0')
		return;
	rec = xmalloc(sizeof(*rec));
	rc = queue_sts_get(s->q, domain, rec);
	if (rc != 0 && rc != QUEUE_E_NOENT)
		log_warnx("MTA-STS cache of %s: %s", domain,
		    queue_errmsg(s->q));
	have = rc == 0;
	if (!have)
		memset(rec, 0, offsetof(struct qsts, policy));
	if (!(cached = have && route_sts_cached(rec, now, p))) {
		memset(p, 0, sizeof(*p));	/* a failed parse's leftovers */
		p->mode = ROUTE_STS_NONE;
	}

	route_sts_txt(s, domain, &t, timeout_ms);
	if (t.res != ROUTE_STS_TXT_ONE) {
		/* §3.3: no (valid) record now does not end a policy held. */
		if (cached)
			log_info("MTA-STS: %s for _mta-sts.%s: using the "
			    "cached policy (id %s)", t.res ==
			    ROUTE_STS_TXT_NONE ? "no STS record" : t.why,
			    domain, p->id);
		goto out;
	}
	if (cached && strcmp(rec->id, t.id) == 0 &&
	    now - rec->fetched < ROUTE_STS_REFRESH)
		goto out;		/* the cache is current */
	if (have && strcmp(rec->fail_id, t.id) == 0 &&
	    now - rec->failed >= 0 && now - rec->failed < ROUTE_STS_FAIL_WAIT) {
		/* A fetch for this id failed a moment ago: not again yet. */
		goto out;
	}
	fresh = xmalloc(sizeof(*fresh));
	memset(fresh, 0, sizeof(*fresh));
	if (route_sts_fetch_policy(s, domain, fresh, why, sizeof(why)) != 0) {
		if (cached)
			log_info("MTA-STS policy fetch for %s (id %s) failed: "
			    "%s; using the cached policy (id %s)", domain,
			    t.id, why, p->id);
		else
			log_info("MTA-STS policy fetch for %s (id %s) failed: "
			    "%s; no policy", domain, t.id, why);
		strl_copy(rec->fail_id, t.id, sizeof(rec->fail_id));
		rec->failed = now;
	} else {
		strl_copy(fresh->id, t.id, sizeof(fresh->id));
		strl_copy(fresh->domain, domain, sizeof(fresh->domain));
		*p = *fresh;
		log_info("MTA-STS policy of %s: id %s, mode %s, max_age %u, "
		    "%zu mx pattern%s", domain, p->id,
		    route_sts_mode_name(p->mode), (unsigned)p->max_age,
		    p->nmx, p->nmx == 1 ? "" : "s");
		text = sbuf_new();
		route_sts_policy_format(p, text);
		strl_copy(rec->id, t.id, sizeof(rec->id));
		rec->fetched = now;
		rec->expires = now + (int64_t)p->max_age;
		rec->fail_id[0] = '\0';
		rec->failed = 0;
		rec->len = sbuf_len(text) <= QUEUE_STS_POLICY_MAX ?
		    sbuf_len(text) : 0;
		memcpy(rec->policy, sbuf_str(text), rec->len);
		rec->policy[rec->len] = '\0';
		text = sbuf_free(text);
	}
	if (queue_sts_put(s->q, domain, rec) != 0)
		log_warnx("MTA-STS cache of %s: %s", domain,
		    queue_errmsg(s->q));
	route_sts_purge(s, now);
out:
	strl_copy(p->domain, domain, sizeof(p->domain));
	free(fresh);
	free(rec);
}

int
route_sts_filter(const struct route_sts_policy *p, struct route_addr *addrs,
    size_t *n, char status[16], char *why, size_t whysz)
{
	size_t	i, k, j;
	bool	said;

	if (p->mode == ROUTE_STS_NONE)
		return 0;
	for (i = k = 0; i < *n; i++) {
		if (route_sts_policy_match(p, addrs[i].host)) {
			addrs[k++] = addrs[i];
			continue;
		}
		/* Once a host, however many addresses it has. */
		for (j = 0, said = false; j < i && !said; j++)
			said = strcasecmp(addrs[j].host, addrs[i].host) == 0;
		if (!said)
			log_info("MTA-STS policy of %s (%s): MX host %s matches "
			    "no mx pattern%s", p->domain,
			    route_sts_mode_name(p->mode), addrs[i].host,
			    p->mode == ROUTE_STS_ENFORCE ? ": not using it" :
			    ": would not be used");
		if (p->mode == ROUTE_STS_TESTING)
			addrs[k++] = addrs[i];
	}
	*n = k;
	if (k == 0) {
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "MTA-STS policy of %s (enforce): no MX "
		    "host matches its mx patterns", p->domain);
		return -1;
	}
	return 0;
}

static bool
route_sts_is_ip(const char *h)
{
	unsigned char	a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1 ||
	    h[0] == '[' || strncasecmp(h, "IPv6:", 5) == 0;
}

void
route_sts_domain(const struct conf *c, const struct route *r,
    const char *domain, char *out, size_t outsz)
{
	const char	*d = NULL;
	size_t		 len;

	out[0] = '\0';
	if (!c->smtp_mta_sts || r->no_sts || r->tls == CONF_TLS_NONE)
		return;
	if (r->kind == ROUTE_MX)
		d = domain;
	else if (r->kind == ROUTE_MXHOST)
		d = r->host;		/* §3.4: the smart host's domain */
	if (d == NULL || d[0] == '\0' || route_sts_is_ip(d))
		return;
	strl_copy(out, d, outsz);
	strl_lower(out);
	len = strlen(out);
	if (len > 0 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

struct route_sts *
route_sts_new(const struct conf *c, struct route_dns *dns, struct queue *q,
    char *err, size_t errsz)
{
	struct route_sts	*s;

	s = xcalloc(1, sizeof(*s));
	s->dns = dns;
	s->q = q;
	if (c->smtp_mta_sts_ca_file != NULL && c->smtp_mta_sts_ca_file[0])
		s->ca_file = xstrdup(c->smtp_mta_sts_ca_file);
	if (route_ares_init(&s->ares, 0, ROUTE_STS_TRY_MS, ROUTE_STS_TRIES,
	    err, errsz) == -1) {
		route_sts_free(s);
		return NULL;
	}
	if (c->dns_servers.n == 0)
		return s;		/* the system's resolver, as route_dns */
	/* The servers route_dns.c uses. */
	if (route_ares_servers(&s->ares, &c->dns_servers, err, errsz) == -1) {
		route_sts_free(s);
		return NULL;
	}
	return s;
}

void
route_sts_free(struct route_sts *s)
{
	if (s == NULL)
		return;
	route_ares_free(&s->ares);
	free(s->ca_file);
	free(s);
}

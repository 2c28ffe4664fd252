/*
 * route.c - where a recipient goes, and whether it waits for its site.
 *
 * route_rcpt_init() decides at enqueue time whether a recipient waits for
 * its site (hold_domains). route_lookup() picks the next hop when the
 * runner tries it, in this order:
 *
 *	1. hold_domains				ROUTE_HOLD
 *	2. routes_file: the exact domain, then the nearest ".parent" entry
 *	   (".example.org" covers a.example.org and a.b.example.org, not
 *	   example.org itself, as conf_domain_in() does)
 *	3. relayhost, except for relay_domains	relayhost = true
 *	4. the MX of the recipient's domain	ROUTE_MX
 *
 * route_release() is the route of held mail once released (flush, ETRN,
 * ATRN): steps 2 and 4 (a "hold" or "caller" entry counts as none), so a
 * site with a fixed address gets its mail there; never relayhost. Mail of
 * a "caller:PORT" domain flushed by its owner's authenticated ETRN goes
 * to the caller's address instead (route_to_caller; route_caller tells
 * the listener which domains need that owner).
 *
 * routes_file, one route a line, '#' comments and blank lines as in
 * every file postern reads (linefile.c), fields separated by blanks:
 *
 *	DOMAIN|.PARENT  TARGET  [tls=none|may|encrypt|dane] [mta-sts=yes|no]
 *
 * TARGET is "[host]:port" or "[host]" (that host's A/AAAA, or the literal
 * IP, no MX lookup: ROUTE_HOST), "host:port" or "host" (the MX of host,
 * its A/AAAA when it has none: ROUTE_MXHOST), "mx" (the recipient
 * domain's MX even when relayhost is set), "hold" (keep until the site
 * asks), or "caller:PORT" (keep; authenticated ETRN delivers to the
 * caller's address on PORT). relayhost takes the first four forms. A bare
 * IPv4 address ("192.0.2.1:25") is taken as "[192.0.2.1]:25": an IP has
 * no MX. IPv6 needs the brackets, "[IPv6:" is accepted too. tls=dane is
 * RFC 7672 DANE (route_tlsa.c); mta-sts=no turns MTA-STS (RFC 8461,
 * route_sts.c) off for the route.
 *
 * The key a route gets is what the scheduler groups recipients by: two
 * domains with the same next hop share connections and backoff.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runner.h"

#define ROUTE_TLS_DEFAULT	(-1)	/* no tls= option: conf->smtp_tls */

struct route_ent {
	char		*domain;	/* lower case; ".parent" has its dot */
	enum route_kind	 kind;
	char		 host[256];
	int		 port;		/* 0: smtp_port */
	int		 tls;		/* enum conf_tls or ROUTE_TLS_DEFAULT */
	bool		 no_sts;	/* mta-sts=no */
	int		 line;
};

struct routes {
	struct route_ent	*v;	/* sorted by domain */
	size_t			 n;
};

void
route_rcpt_init(const struct conf *conf, struct qrcpt *r, int64_t now)
{
	char	dom[QUEUE_ADDR_MAX + 1];

	queue_domain_of(r->addr, dom, sizeof(dom));
	r->flags = 0;
	r->due = 0;
	r->state = QRCPT_QUEUED;
	if (conf_domain_in(&conf->hold_domains, dom)) {
		/* Waits for its site (ETRN, ATRN) or an operator's flush;
		 * fails after hold_lifetime. */
		r->state = QRCPT_HELD;
		r->flags = QRCPT_F_SITE;
		r->due = now + conf->hold_lifetime;
	}
}

/* route_parse_port - 1..65535, digits only. */
static int
route_parse_port(const char *s, int *port)
{
	long	v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* route_is_ip - an IPv4 dotted quad or an IPv6 address. */
static bool
route_is_ip(const char *s)
{
	unsigned char	buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/*
 * route_parse_target - TARGET (or relayhost) into kind, host and port.
 * `special` allows "mx", "hold" and "caller:PORT", which relayhost does
 * not take. Host names are stored in lower case.
 */
static int
route_parse_target(const char *s, bool special, enum route_kind *kind,
    char *host, size_t hostsz, int *port, char *why, size_t whysz)
{
	const char	*end, *colon, *reason;
	char		 h[256];
	size_t		 len;

	*port = 0;
	host[0] = '\0';
	if (special && strcasecmp(s, "mx") == 0) {
		*kind = ROUTE_MX;
		return 0;
	}
	if (special && strcasecmp(s, "hold") == 0) {
		*kind = ROUTE_HOLD;
		return 0;
	}
	if (special && strncasecmp(s, "caller", 6) == 0 &&
	    (s[6] == '\0' || s[6] == ':')) {
		*kind = ROUTE_CALLER;
		if (s[6] != ':' || route_parse_port(s + 7, port) == -1) {
			bsnprintf(why, whysz, "bad target \"%.80s\" (want "
			    "caller:PORT)", s);
			return -1;
		}
		return 0;
	}

	if (s[0] == '[') {
		*kind = ROUTE_HOST;
		s++;
		if (strncasecmp(s, "IPv6:", 5) == 0)
			s += 5;
		if ((end = strchr(s, ']')) == NULL)
			goto bad;
		if (end[1] == ':') {
			if (route_parse_port(end + 2, port) == -1)
				goto badport;
		} else if (end[1] != '\0')
			goto bad;
	} else {
		*kind = ROUTE_MXHOST;
		if ((colon = strchr(s, ':')) != NULL) {
			if (strchr(colon + 1, ':') != NULL) {
				bsnprintf(why, whysz, "bad target \"%.80s\" "
				    "(an IPv6 address needs brackets)", s);
				return -1;
			}
			if (route_parse_port(colon + 1, port) == -1)
				goto badport;
			end = colon;
		} else
			end = s + strlen(s);
	}
	len = (size_t)(end - s);
	if (len == 0 || len >= sizeof(h) || len >= hostsz)
		goto bad;
	memcpy(h, s, len);
	h[len] = '\0';
	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';	/* an absolute name is the same name */
	if (route_is_ip(h)) {
		/* An IP has no MX: "192.0.2.1:25" means [192.0.2.1]:25. */
		*kind = ROUTE_HOST;
	} else if (!smtp_domain_valid(h, SMTP_ADDR_UTF8) ||
	    strchr(h, ':') != NULL)
		goto bad;
	else if (smtp_idn_to_ascii(h, host, hostsz, &reason) != 0) {
		/* A host name in U-labels is looked up as A-labels. */
		bsnprintf(why, whysz, "bad target \"%.80s\": not a valid "
		    "international domain name (%s)", s, reason);
		return -1;
	}
	if (*kind == ROUTE_HOST && route_is_ip(h))
		strl_copy(host, h, hostsz);
	strl_lower(host);
	return 0;
bad:
	bsnprintf(why, whysz, "bad target \"%.80s\" (want [host]:port, "
	    "[host], host:port, host, mx, hold or caller:PORT)", s);
	return -1;
badport:
	bsnprintf(why, whysz, "bad port in \"%.80s\"", s);
	return -1;
}

/* route_parse_tls - "tls=none|may|encrypt|dane". */
static int
route_parse_tls(const char *s, int *tls, char *why, size_t whysz)
{
	static const char *const names[] = {
		"none", "may", "encrypt", "dane"	/* enum conf_tls */
	};
	size_t	i;

	if (strncasecmp(s, "tls=", 4) == 0) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcasecmp(s + 4, names[i]) == 0) {
				*tls = (int)i;
				return 0;
			}
	}
	bsnprintf(why, whysz, "bad option \"%.80s\" (want "
	    "tls=none|may|encrypt|dane)", s);
	return -1;
}

/* route_parse_opt - "tls=..." or "mta-sts=yes|no", each at most once. */
static int
route_parse_opt(const char *s, struct route_ent *e, char *why, size_t whysz)
{
	if (strncasecmp(s, "mta-sts=", 8) == 0) {
		if (strcasecmp(s + 8, "no") == 0)
			e->no_sts = true;
		else if (strcasecmp(s + 8, "yes") != 0) {
			bsnprintf(why, whysz, "bad option \"%.80s\" (want "
			    "mta-sts=yes|no)", s);
			return -1;
		}
		return 0;
	}
	if (e->tls != ROUTE_TLS_DEFAULT && strncasecmp(s, "tls=", 4) == 0) {
		bsnprintf(why, whysz, "tls= given twice");
		return -1;
	}
	return route_parse_tls(s, &e->tls, why, whysz);
}

/* route_parse_line - one line with text (linefile.c has taken the
 * comment off). */
static int
route_parse_line(char *line, struct route_ent *e, char *why, size_t whysz)
{
	char		*f[5], *p, *dom, adom[SMTP_DOMAIN_MAX + 2];
	const char	*reason;
	size_t		 nf = 0, i;

	for (p = strtok(line, " \t\r\n\f\v"); p != NULL;
	    p = strtok(NULL, " \t\r\n\f\v")) {
		if (nf == sizeof(f) / sizeof(f[0])) {
			bsnprintf(why, whysz, "too many fields (want DOMAIN "
			    "TARGET [tls=...] [mta-sts=...])");
			return -1;
		}
		f[nf++] = p;
	}
	if (nf == 1) {
		bsnprintf(why, whysz, "\"%.80s\": no target", f[0]);
		return -1;
	}
	if (nf > 4) {
		bsnprintf(why, whysz, "too many fields (want DOMAIN TARGET "
		    "[tls=...] [mta-sts=...])");
		return -1;
	}

	memset(e, 0, sizeof(*e));
	dom = f[0];
	if (strlen(dom) > 1 && dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	if (!smtp_domain_valid(dom[0] == '.' ? dom + 1 : dom,
	    SMTP_ADDR_UTF8)) {
		bsnprintf(why, whysz, "bad domain \"%.80s\"", f[0]);
		return -1;
	}
	/* Keys are lookup forms (A-labels), as route_norm() makes the
	 * domains looked up: either form of a name matches the other. */
	adom[0] = '.';
	if (smtp_idn_to_ascii(dom + (dom[0] == '.'), adom + (dom[0] == '.'),
	    sizeof(adom) - 1, &reason) != 0) {
		bsnprintf(why, whysz, "bad domain \"%.80s\": not a valid "
		    "international domain name (%s)", f[0], reason);
		return -1;
	}
	if (route_parse_target(f[1], true, &e->kind, e->host,
	    sizeof(e->host), &e->port, why, whysz) == -1)
		return -1;
	e->tls = ROUTE_TLS_DEFAULT;
	for (i = 2; i < nf; i++)
		if (route_parse_opt(f[i], e, why, whysz) == -1)
			return -1;
	e->domain = strl_lower(xstrdup(adom));
	return 0;
}

/* route_load_line - a linefile_fn: one route into the set. */
static int
route_load_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct routes		*rs = arg;
	struct route_ent	 e;

	(void)len;
	if (route_parse_line(line, &e, why, whysz) == -1)
		return -1;
	e.line = lineno;
	rs->v = xreallocarray(rs->v, rs->n + 1, sizeof(*rs->v));
	rs->v[rs->n++] = e;
	return 0;
}

static int
route_ent_cmp(const void *a, const void *b)
{
	const struct route_ent	*x = a, *y = b;

	return strcmp(x->domain, y->domain);
}

struct routes *
routes_load(const char *file, char *err, size_t errsz)
{
	struct routes		*rs;
	const struct route_ent	*a, *b;
	size_t			 i;

	rs = xcalloc(1, sizeof(*rs));
	if (file == NULL || *file == '\0')
		return rs;
	if (linefile_read(file, route_load_line, rs, err, errsz) == -1)
		goto fail;
	if (rs->n > 0)
		qsort(rs->v, rs->n, sizeof(*rs->v), route_ent_cmp);
	for (i = 1; i < rs->n; i++) {
		a = &rs->v[i - 1];
		b = &rs->v[i];
		if (strcmp(a->domain, b->domain) != 0)
			continue;
		if (a->line > b->line) {	/* qsort is not stable */
			a = &rs->v[i];
			b = &rs->v[i - 1];
		}
		bsnprintf(err, errsz, "%s:%d: duplicate domain \"%s\" (first "
		    "on line %d)", file, b->line, b->domain, a->line);
		goto fail;
	}
	return rs;
fail:
	routes_free(rs);
	return NULL;
}

void
routes_free(struct routes *rs)
{
	size_t	i;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->n; i++)
		free(rs->v[i].domain);
	free(rs->v);
	free(rs);
}

void
routes_walk_held(const struct routes *rs, void (*fn)(void *, const char *),
    void *arg)
{
	size_t	i;

	for (i = 0; rs != NULL && i < rs->n; i++)
		if (rs->v[i].kind == ROUTE_HOLD || rs->v[i].kind == ROUTE_CALLER)
			fn(arg, rs->v[i].domain);
}

/* route_find - the entry for exactly this (lower-case) key, or NULL. */
static const struct route_ent *
route_find(const struct routes *rs, const char *key)
{
	struct route_ent	k;

	if (rs == NULL || rs->n == 0)
		return NULL;
	memset(&k, 0, sizeof(k));
	k.domain = (char *)(uintptr_t)key;	/* bsearch only reads it */
	return bsearch(&k, rs->v, rs->n, sizeof(*rs->v), route_ent_cmp);
}

/* route_set_key - the next-hop key of a filled-in route. */
static void
route_set_key(const struct conf *conf, struct route *r, const char *domain)
{
	int	port = r->port > 0 ? r->port : conf->smtp_port;

	switch (r->kind) {
	case ROUTE_MX:
		(void)bsnprintf(r->key, sizeof(r->key), "mx:%s", domain);
		break;
	case ROUTE_MXHOST:
		(void)bsnprintf(r->key, sizeof(r->key), "mxhost:%s:%d",
		    r->host, port);
		break;
	case ROUTE_HOST:
		(void)bsnprintf(r->key, sizeof(r->key), "host:[%s]:%d",
		    r->host, port);
		break;
	case ROUTE_HOLD:
		strl_copy(r->key, "hold", sizeof(r->key));
		break;
	case ROUTE_CALLER:
		(void)bsnprintf(r->key, sizeof(r->key), "caller:%d", r->port);
		break;
	}
	/*
	 * A connection is shared only by mail that wants the same TLS policy
	 * and AUTH: two domains routed to one host with different policies
	 * are two hops, or one could downgrade the other.
	 */
	if (r->kind != ROUTE_HOLD && r->kind != ROUTE_CALLER) {
		if (r->tls != conf->smtp_tls)
			(void)strl_cat(r->key, r->tls == CONF_TLS_NONE ?
			    " tls=none" : r->tls == CONF_TLS_MAY ? " tls=may" :
			    r->tls == CONF_TLS_ENCRYPT ? " tls=encrypt" :
			    " tls=dane", sizeof(r->key));
		if (r->relayhost)
			(void)strl_cat(r->key, " auth", sizeof(r->key));
		if (r->no_sts)
			(void)strl_cat(r->key, " mta-sts=no", sizeof(r->key));
	}
}

/*
 * route_find_entry - the routes_file entry for a (normalised) domain: the
 * exact name, then ".parent" from the nearest parent up. NULL: none.
 */
static const struct route_ent *
route_find_entry(const struct routes *rs, const char *dom)
{
	const struct route_ent	*e;
	const char		*p;

	if ((e = route_find(rs, dom)) == NULL) {
		for (p = strchr(dom, '.'); p != NULL && e == NULL;
		    p = strchr(p + 1, '.'))
			e = route_find(rs, p);
	}
	return e;
}

/* route_norm - the domain in lower case without a trailing dot, as
 * A-labels when it has U-labels (routes_file keys are; one that cannot
 * be converted stays as it is and matches no entry). */
static void
route_norm(char *dom, size_t domsz, const char *domain)
{
	char	a[SMTP_DOMAIN_MAX + 1];
	size_t	len;

	strl_copy(dom, domain != NULL ? domain : "", domsz);
	strl_lower(dom);
	len = strlen(dom);
	if (len > 1 && dom[len - 1] == '.')
		dom[len - 1] = '\0';
	if (smtp_idn_has8(dom) && smtp_idn_to_ascii(dom, a, sizeof(a),
	    NULL) == 0)
		strl_copy(dom, a, domsz);
}

/*
 * route_pick - the routes_file entry, else relayhost (not for relay or
 * held domains), else the MX. The hold_domains check is the caller's.
 */
static void
route_pick(const struct conf *conf, const struct routes *rs, const char *dom,
    struct route *r)
{
	const struct route_ent	*e;
	char			 why[160];

	if ((e = route_find_entry(rs, dom)) != NULL) {
		r->kind = e->kind;
		strl_copy(r->host, e->host, sizeof(r->host));
		r->port = e->port;
		if (e->tls != ROUTE_TLS_DEFAULT)
			r->tls = (enum conf_tls)e->tls;
		r->no_sts = e->no_sts;
		return;
	}
	/*
	 * relayhost is for mail to the rest of the world. A relay domain
	 * (we are its backup or its gateway) and a held domain (its site
	 * fetches it, or it is released to the site) go to their own MX,
	 * as Postfix keeps relay_domains off relayhost: else their mail
	 * would loop through, or sit at, the smart host.
	 */
	if (conf->relayhost == NULL || conf->relayhost[0] == '\0' ||
	    conf_domain_in(&conf->relay_domains, dom) ||
	    conf_domain_in(&conf->hold_domains, dom))
		return;
	r->relayhost = true;
	if (route_parse_target(conf->relayhost, false, &r->kind, r->host,
	    sizeof(r->host), &r->port, why, sizeof(why)) == -1) {
		/*
		 * conf.c keeps relayhost as text. A bad one must not send
		 * mail elsewhere: take it as a host that will not resolve,
		 * so route_dns_resolve() defers.
		 */
		r->kind = ROUTE_HOST;
		r->port = 0;
		strl_copy(r->host, conf->relayhost, sizeof(r->host));
	}
}

/* route_begin - r as the default (the domain's MX, smtp_tls), and the
 * domain as routes_file keys are written into dom. */
static void
route_begin(const struct conf *conf, const char *domain, struct route *r,
    char *dom, size_t domsz)
{
	memset(r, 0, sizeof(*r));
	r->kind = ROUTE_MX;
	r->tls = conf->smtp_tls;
	route_norm(dom, domsz, domain);
}

void
route_lookup(const struct conf *conf, const struct routes *rs,
    const char *domain, struct route *r)
{
	char	dom[SMTP_DOMAIN_MAX + 2];

	route_begin(conf, domain, r, dom, sizeof(dom));
	if (conf_domain_in(&conf->hold_domains, dom))
		r->kind = ROUTE_HOLD;
	else
		route_pick(conf, rs, dom, r);
	route_set_key(conf, r, dom);
}

void
route_release(const struct conf *conf, const struct routes *rs,
    const char *domain, struct route *r)
{
	char	dom[SMTP_DOMAIN_MAX + 2];

	route_begin(conf, domain, r, dom, sizeof(dom));
	route_pick(conf, rs, dom, r);
	if (r->kind == ROUTE_HOLD || r->kind == ROUTE_CALLER) {
		/* Released from a "hold" or "caller" entry: the MX. */
		r->kind = ROUTE_MX;
		r->host[0] = '\0';
		r->port = 0;
	}
	route_set_key(conf, r, dom);
}

bool
route_to_caller(const struct conf *conf, const struct routes *rs,
    const char *domain, const char *caller, struct route *r)
{
	const struct route_ent	*e;
	char			 dom[SMTP_DOMAIN_MAX + 2];
	struct route		 t;

	if (caller == NULL || !route_is_ip(caller))
		return false;
	route_begin(conf, domain, &t, dom, sizeof(dom));
	if ((e = route_find_entry(rs, dom)) == NULL ||
	    e->kind != ROUTE_CALLER)
		return false;
	t.kind = ROUTE_HOST;
	strl_copy(t.host, caller, sizeof(t.host));
	t.port = e->port;
	if (e->tls != ROUTE_TLS_DEFAULT)
		t.tls = (enum conf_tls)e->tls;
	route_set_key(conf, &t, dom);
	*r = t;
	return true;
}

bool
route_caller(const struct routes *rs, const char *domain, bool sub)
{
	const struct route_ent	*e;
	char			 dom[SMTP_DOMAIN_MAX + 2];

	route_norm(dom, sizeof(dom), domain);
	if (rs == NULL)
		return false;
	if ((e = route_find_entry(rs, dom)) != NULL && e->kind == ROUTE_CALLER)
		return true;
	return sub && route_caller_below(rs, domain);
}

bool
route_caller_below(const struct routes *rs, const char *domain)
{
	const struct route_ent	*e;
	char			 dom[SMTP_DOMAIN_MAX + 2];
	size_t			 i, dlen, elen;

	route_norm(dom, sizeof(dom), domain);
	if (rs == NULL)
		return false;
	/* ETRN @domain reaches every name below it: "x.domain" and
	 * ".domain" or ".x.domain" entries. */
	dlen = strlen(dom);
	for (i = 0; i < rs->n; i++) {
		e = &rs->v[i];
		elen = strlen(e->domain);
		if (e->kind == ROUTE_CALLER && elen > dlen &&
		    e->domain[elen - dlen - 1] == '.' &&
		    strcmp(e->domain + elen - dlen, dom) == 0)
			return true;
	}
	return false;
}

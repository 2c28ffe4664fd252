/*
 * test_route.c - unit tests for runner/route.c and the DNS-free parts of
 * runner/route_dns.c.
 *
 * routes_file parsing (every target form, comments, ".parent", tls=,
 * and the "file:line: why" errors), route_lookup()'s
 * order (hold_domains, exact beats ".parent", the nearest parent,
 * relayhost in its four forms but not for relay_domains, the MX default)
 * with the next-hop keys, route_release() for released held mail (its
 * routes_file entry, else the MX, never relayhost), and the
 * route_dns_resolve() answers that need no DNS: literal IPs, address
 * literals, hold routes, a zero timeout, bad dns_servers. MX rules against a real DNS server are in
 * tests/integ/cases/200-route-dns.sh. Files are written with mkstemp() in
 * /tmp and removed after loading.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tharness.h"
#include "tutil.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* load_routes - routes_load() of a file holding text; removed after. */
static struct routes *
load_routes(struct t *t, const char *text, char *path, size_t pathsz,
    char *err, size_t errsz)
{
	struct routes	*rs;

	if (write_tmp(text, path, pathsz) == -1) {
		t_errorf(t, "write_tmp: %s", strerror(errno));
		return NULL;
	}
	err[0] = '\0';
	rs = routes_load(path, err, errsz);
	unlink(path);
	return rs;
}

/* load_conf - a conf from "key = value" lines (myhostname and queue_dir
 * are added); the file is removed. */
static struct conf *
load_conf(struct t *t, const char *text)
{
	struct conf	*c;
	char		 path[64], err[512], all[2048];

	if (!bsnprintf(all, sizeof(all), "myhostname = mx.test.example\n"
	    "queue_dir = /nonexistent/queue\n%s", text))
		return NULL;
	if (write_tmp(all, path, sizeof(path)) == -1) {
		t_errorf(t, "write_tmp: %s", strerror(errno));
		return NULL;
	}
	if ((c = conf_load(path, err, sizeof(err))) == NULL)
		t_errorf(t, "conf_load: %s", err);
	unlink(path);
	return c;
}

static const char *
kind_name(enum route_kind k)
{
	switch (k) {
	case ROUTE_MX:
		return "mx";
	case ROUTE_MXHOST:
		return "mxhost";
	case ROUTE_HOST:
		return "host";
	case ROUTE_HOLD:
		return "hold";
	case ROUTE_CALLER:
		return "caller";
	}
	return "?";
}

/* One expected route_lookup() result. */
struct want {
	const char	*domain;
	enum route_kind	 kind;
	const char	*host;
	int		 port;
	int		 tls;		/* enum conf_tls */
	bool		 relayhost;
	const char	*key;
};

typedef void route_fn(const struct conf *, const struct routes *,
    const char *, struct route *);

static void	check_route(struct t *, const char *, const struct conf *,
		    const struct routes *, const struct want *, route_fn *,
		    const char *);

static void
check_lookup(struct t *t, const char *what, const struct conf *c,
    const struct routes *rs, const struct want *w)
{
	check_route(t, what, c, rs, w, route_lookup, "route_lookup");
}

/* check_route - fn(domain) gives the route w describes. */
static void
check_route(struct t *t, const char *what, const struct conf *c,
    const struct routes *rs, const struct want *w, route_fn *fn,
    const char *fname)
{
	static const char *const tlsname[] = { "none", "may", "encrypt",
	    "dane" };
	struct route	r;
	char		key[400];

	/* Hops that differ in TLS policy or AUTH are different hops: the
	 * key says so after the address. */
	strl_copy(key, w->key, sizeof(key));
	if (w->kind != ROUTE_HOLD && w->kind != ROUTE_CALLER) {
		if (w->tls != (int)c->smtp_tls) {
			strl_cat(key, " tls=", sizeof(key));
			strl_cat(key, tlsname[w->tls], sizeof(key));
		}
		if (w->relayhost)
			strl_cat(key, " auth", sizeof(key));
	}
	memset(&r, 0x5a, sizeof(r));
	fn(c, rs, w->domain, &r);
	if (r.kind != w->kind || strcmp(r.host, w->host) != 0 ||
	    r.port != w->port || (int)r.tls != w->tls ||
	    r.relayhost != w->relayhost || strcmp(r.key, key) != 0)
		t_errorf(t, "%s: %s(%s): got %s host=\"%s\" "
		    "port=%d tls=%d relayhost=%d key=\"%s\", want %s "
		    "host=\"%s\" port=%d tls=%d relayhost=%d key=\"%s\"", what,
		    fname, w->domain, kind_name(r.kind), r.host, r.port,
		    (int)r.tls, r.relayhost, r.key, kind_name(w->kind), w->host,
		    w->port, w->tls, w->relayhost, key);
}

/* Every target form, comments, blank lines, tls=, case and dots. */
static void
routes_parse_good(struct t *t)
{
	static const char text[] =
	    "# routes for the test\n"
	    "\n"
	    "   \t\n"
	    "relay.example      [smart.example.net]:2525\n"
	    "bracket.example    [Smart.Example.NET]\n"
	    "mxhost.example     mx.example.net:587   tls=encrypt # a comment\n"
	    "mxhost2.example    mx2.example.net\n"
	    "Mixed.Case.Example.  [192.0.2.1]\n"
	    "v6.example         [IPv6:2001:db8::1]:26\n"
	    "v6b.example        [::1]\n"
	    "bareip.example     192.0.2.5:2527\n"
	    "direct.example     mx tls=none\n"
	    "dane.example       mx TLS=Dane\n"
	    "site.example       hold\n"
	    "caller.example     CALLER:2526 tls=may\n"
	    ".sub.example       [sub-relay.example]:25 TLS=ENCRYPT\r\n"
	    "# the end";
	static const struct want wants[] = {
		{ "relay.example", ROUTE_HOST, "smart.example.net", 2525,
		    CONF_TLS_MAY, false, "host:[smart.example.net]:2525" },
		{ "bracket.example", ROUTE_HOST, "smart.example.net", 0,
		    CONF_TLS_MAY, false, "host:[smart.example.net]:25" },
		{ "mxhost.example", ROUTE_MXHOST, "mx.example.net", 587,
		    CONF_TLS_ENCRYPT, false, "mxhost:mx.example.net:587" },
		{ "mxhost2.example", ROUTE_MXHOST, "mx2.example.net", 0,
		    CONF_TLS_MAY, false, "mxhost:mx2.example.net:25" },
		{ "mixed.case.example", ROUTE_HOST, "192.0.2.1", 0,
		    CONF_TLS_MAY, false, "host:[192.0.2.1]:25" },
		{ "MIXED.case.example.", ROUTE_HOST, "192.0.2.1", 0,
		    CONF_TLS_MAY, false, "host:[192.0.2.1]:25" },
		{ "v6.example", ROUTE_HOST, "2001:db8::1", 26, CONF_TLS_MAY,
		    false, "host:[2001:db8::1]:26" },
		{ "v6b.example", ROUTE_HOST, "::1", 0, CONF_TLS_MAY, false,
		    "host:[::1]:25" },
		{ "bareip.example", ROUTE_HOST, "192.0.2.5", 2527,
		    CONF_TLS_MAY, false, "host:[192.0.2.5]:2527" },
		{ "direct.example", ROUTE_MX, "", 0, CONF_TLS_NONE, false,
		    "mx:direct.example" },
		{ "dane.example", ROUTE_MX, "", 0, CONF_TLS_DANE, false,
		    "mx:dane.example" },
		{ "site.example", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		{ "caller.example", ROUTE_CALLER, "", 2526, CONF_TLS_MAY,
		    false, "caller:2526" },
		{ "a.sub.example", ROUTE_HOST, "sub-relay.example", 25,
		    CONF_TLS_ENCRYPT, false, "host:[sub-relay.example]:25" },
		{ "a.b.sub.example", ROUTE_HOST, "sub-relay.example", 25,
		    CONF_TLS_ENCRYPT, false, "host:[sub-relay.example]:25" },
		{ "sub.example", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:sub.example" },
		{ "other.example", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:other.example" },
	};
	struct conf	*c;
	struct routes	*rs;
	char		 path[64], err[512];
	size_t		 i;

	if ((c = load_conf(t, "")) == NULL)
		return;
	rs = load_routes(t, text, path, sizeof(path), err, sizeof(err));
	if (rs == NULL) {
		conf_free(c);
		t_fatalf(t, "routes_load: %s", err);
	}
	for (i = 0; i < NELEM(wants); i++)
		check_lookup(t, "good", c, rs, &wants[i]);
	routes_free(rs);
	conf_free(c);
}

/* Each bad line is on line 3, after a comment and a good line. */
static void
routes_parse_bad(struct t *t)
{
	static const struct {
		const char	*line;
		const char	*why;	/* a part of the message */
	} bad[] = {
		{ "example.org", "no target" },
		{ "example.org [relay.example", "bad target" },
		{ "example.org []:25", "bad target" },
		{ "example.org [relay.example]x", "bad target" },
		{ "example.org relay.example:0", "bad port" },
		{ "example.org relay.example:65536", "bad port" },
		{ "example.org relay.example:2x", "bad port" },
		{ "example.org relay.example:", "bad port" },
		{ "example.org [relay.example]:", "bad port" },
		{ "example.org ::1", "needs brackets" },
		{ "example.org caller", "caller:PORT" },
		{ "example.org caller:", "caller:PORT" },
		{ "example.org caller:0", "caller:PORT" },
		{ "example.org relay_x.example", "bad target" },
		{ "example.org relay.example tls=maybe", "bad option" },
		{ "example.org relay.example tls=danish",
		    "want tls=none|may|encrypt|dane" },
		{ "example.org relay.example encrypt", "bad option" },
		{ "example.org relay.example tls=may extra", "bad option" },
		{ "example.org relay.example tls=may mta-sts=no x",
		    "too many" },
		{ "example.org relay.example mta-sts=maybe",
		    "want mta-sts=yes|no" },
		{ "example.org relay.example tls=may tls=none", "twice" },
		{ "bad!domain relay.example", "bad domain" },
		{ "..example.org relay.example", "bad domain" },
		{ ". relay.example", "bad domain" },
		{ "-x.example relay.example", "bad domain" },
	};
	struct routes	*rs;
	char		 path[64], err[512], text[512], want[128];
	size_t		 i;

	for (i = 0; i < NELEM(bad); i++) {
		(void)bsnprintf(text, sizeof(text), "# comment\n"
		    "good.example [relay.example]\n%s\n", bad[i].line);
		rs = load_routes(t, text, path, sizeof(path), err, sizeof(err));
		(void)bsnprintf(want, sizeof(want), "%s:3: ", path);
		if (rs != NULL) {
			t_errorf(t, "routes_load(\"%s\"): succeeded, want an "
			    "error", bad[i].line);
			routes_free(rs);
		} else if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, bad[i].why) == NULL)
			t_errorf(t, "routes_load(\"%s\"): got \"%s\", want "
			    "\"%s...%s...\"", bad[i].line, err, want,
			    bad[i].why);
	}

	/* A duplicate (any case, any trailing dot) names both lines. */
	rs = load_routes(t, "a.example [x.example]\n# c\nb.example mx\n"
	    "A.Example. hold\n", path, sizeof(path), err, sizeof(err));
	(void)bsnprintf(want, sizeof(want), "%s:4: duplicate domain "
	    "\"a.example\" (first on line 1)", path);
	if (rs != NULL || strcmp(err, want) != 0)
		t_errorf(t, "duplicate: got %s \"%s\", want \"%s\"",
		    rs != NULL ? "routes" : "NULL", err, want);
	routes_free(rs);

	/* A NUL byte. */
	{
		static const char nul[] = "a.example mx\nb.example\0 mx\n";

		if (write_tmpn(nul, sizeof(nul) - 1, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmpn: %s", strerror(errno));
		rs = routes_load(path, err, sizeof(err));
		unlink(path);
		(void)bsnprintf(want, sizeof(want), "%s:2: NUL byte", path);
		if (rs != NULL || strcmp(err, want) != 0)
			t_errorf(t, "NUL: got \"%s\", want \"%s\"", err, want);
		routes_free(rs);
	}

	/* A missing file names the file. */
	err[0] = '\0';
	rs = routes_load("/nonexistent/routes", err, sizeof(err));
	if (rs != NULL || strncmp(err, "/nonexistent/routes: ", 21) != 0)
		t_errorf(t, "missing file: got \"%s\"", err);
	routes_free(rs);

	/* No file at all: no routes, not an error. */
	if ((rs = routes_load(NULL, err, sizeof(err))) == NULL)
		t_errorf(t, "routes_load(NULL): %s", err);
	routes_free(rs);
	if ((rs = routes_load("", err, sizeof(err))) == NULL)
		t_errorf(t, "routes_load(\"\"): %s", err);
	routes_free(rs);
}

/* hold_domains, exact before .parent, the nearest parent, relayhost,
 * then MX. */
static void
route_lookup_order(struct t *t)
{
	static const char text[] =
	    "site.example [never.example]\n"	/* hold_domains wins */
	    ".example.org [parent.example]:2601\n"
	    "a.example.org [exact.example]:2602 tls=encrypt\n"
	    ".a.example.org [nearer.example]:2603\n"
	    ".b.a.example.org [nearest.example]:2604\n"
	    "direct.example mx\n"
	    "waits.example hold\n";
	static const struct want wants[] = {
		{ "site.example", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		{ "x.held.example", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		{ "a.example.org", ROUTE_HOST, "exact.example", 2602,
		    CONF_TLS_ENCRYPT, false, "host:[exact.example]:2602" },
		{ "x.example.org", ROUTE_HOST, "parent.example", 2601,
		    CONF_TLS_MAY, false, "host:[parent.example]:2601" },
		{ "x.y.example.org", ROUTE_HOST, "parent.example", 2601,
		    CONF_TLS_MAY, false, "host:[parent.example]:2601" },
		{ "x.a.example.org", ROUTE_HOST, "nearer.example", 2603,
		    CONF_TLS_MAY, false, "host:[nearer.example]:2603" },
		{ "x.b.a.example.org", ROUTE_HOST, "nearest.example", 2604,
		    CONF_TLS_MAY, false, "host:[nearest.example]:2604" },
		{ "X.Y.B.A.Example.ORG", ROUTE_HOST, "nearest.example", 2604,
		    CONF_TLS_MAY, false, "host:[nearest.example]:2604" },
		/* ".example.org" is not example.org itself */
		{ "example.org", ROUTE_HOST, "smart.example", 587,
		    CONF_TLS_MAY, true, "host:[smart.example]:587" },
		{ "direct.example", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:direct.example" },
		{ "waits.example", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		{ "elsewhere.example", ROUTE_HOST, "smart.example", 587,
		    CONF_TLS_MAY, true, "host:[smart.example]:587" },
	};
	static const struct {
		const char	*relayhost;
		struct want	 w;
	} relays[] = {
		{ "[Smart.Example]:587", { "r.example", ROUTE_HOST,
		    "smart.example", 587, CONF_TLS_MAY, true,
		    "host:[smart.example]:587" } },
		{ "[smart.example]", { "r.example", ROUTE_HOST,
		    "smart.example", 0, CONF_TLS_MAY, true,
		    "host:[smart.example]:2525" } },
		{ "smart.example:587", { "r.example", ROUTE_MXHOST,
		    "smart.example", 587, CONF_TLS_MAY, true,
		    "mxhost:smart.example:587" } },
		{ "smart.example", { "r.example", ROUTE_MXHOST,
		    "smart.example", 0, CONF_TLS_MAY, true,
		    "mxhost:smart.example:2525" } },
		{ "[192.0.2.9]:26", { "r.example", ROUTE_HOST, "192.0.2.9",
		    26, CONF_TLS_MAY, true, "host:[192.0.2.9]:26" } },
		{ "[IPv6:2001:db8::9]", { "r.example", ROUTE_HOST,
		    "2001:db8::9", 0, CONF_TLS_MAY, true,
		    "host:[2001:db8::9]:2525" } },
		/* Not a relayhost: kept as a host that will not resolve, so
		 * mail defers instead of leaving by MX. */
		{ "smart.example:x", { "r.example", ROUTE_HOST,
		    "smart.example:x", 0, CONF_TLS_MAY, true,
		    "host:[smart.example:x]:2525" } },
		/* routes_file "mx" overrides relayhost */
		{ "smart.example", { "direct.example", ROUTE_MX, "", 0,
		    CONF_TLS_MAY, false, "mx:direct.example" } },
		/* hold_domains too */
		{ "smart.example", { "site.example", ROUTE_HOLD, "", 0,
		    CONF_TLS_MAY, false, "hold" } },
	};
	struct conf	*c;
	struct routes	*rs;
	char		 path[64], err[512], ctext[256];
	size_t		 i;

	rs = load_routes(t, text, path, sizeof(path), err, sizeof(err));
	if (rs == NULL)
		t_fatalf(t, "routes_load: %s", err);
	c = load_conf(t, "hold_domains = site.example .held.example\n"
	    "relayhost = [smart.example]:587\n");
	if (c == NULL) {
		routes_free(rs);
		return;
	}
	for (i = 0; i < NELEM(wants); i++)
		check_lookup(t, "order", c, rs, &wants[i]);
	conf_free(c);

	for (i = 0; i < NELEM(relays); i++) {
		(void)bsnprintf(ctext, sizeof(ctext), "hold_domains = "
		    "site.example\nsmtp_port = 2525\nrelayhost = %s\n",
		    relays[i].relayhost);
		if ((c = load_conf(t, ctext)) == NULL)
			continue;
		check_lookup(t, relays[i].relayhost, c, rs, &relays[i].w);
		conf_free(c);
	}
	routes_free(rs);

	/* No routes_file, no relayhost: MX, with smtp_tls; lower case, no
	 * trailing dot in the key; an address literal is a domain too. */
	if ((c = load_conf(t, "smtp_tls = encrypt\n")) == NULL)
		return;
	{
		const struct want w[] = {
			{ "Example.NET.", ROUTE_MX, "", 0, CONF_TLS_ENCRYPT,
			    false, "mx:example.net" },
			{ "[192.0.2.1]", ROUTE_MX, "", 0, CONF_TLS_ENCRYPT,
			    false, "mx:[192.0.2.1]" },
		};

		for (i = 0; i < NELEM(w); i++)
			check_lookup(t, "default", c, NULL, &w[i]);
	}
	conf_free(c);
}

/* One route_dns_resolve() that needs no DNS server. */
struct resolve_case {
	const char	*name;
	struct route	 r;
	const char	*domain;
	int		 timeout_ms;
	int		 rc;
	const char	*status;
	const char	*addr;		/* the first address, "ip port" */
};

static void
route_resolve_nodns(struct t *t)
{
	static const struct resolve_case cases[] = {
		{ "host_ipv4", { ROUTE_HOST, "192.0.2.7", 2526, CONF_TLS_MAY,
		    false, false, "" }, "x.example", 1000, ROUTE_OK, "",
		    "192.0.2.7 2526" },
		{ "host_ipv6_default_port", { ROUTE_HOST, "2001:db8::7", 0,
		    CONF_TLS_MAY, false, false, "" }, "x.example", 1000, ROUTE_OK,
		    "", "2001:db8::7 2525" },
		{ "mx_literal_v4", { ROUTE_MX, "", 0, CONF_TLS_MAY, false, false,
		    "" }, "[192.0.2.8]", 1000, ROUTE_OK, "", "192.0.2.8 2525" },
		{ "mx_literal_v6", { ROUTE_MX, "", 0, CONF_TLS_MAY, false, false,
		    "" }, "[IPv6:2001:DB8::8]", 1000, ROUTE_OK, "",
		    "2001:db8::8 2525" },
		{ "mx_literal_bad", { ROUTE_MX, "", 0, CONF_TLS_MAY, false, false,
		    "" }, "[192.0.2]", 1000, ROUTE_E_NOADDR, "5.4.4", NULL },
		{ "hold", { ROUTE_HOLD, "", 0, CONF_TLS_MAY, false, false, "hold" },
		    "x.example", 1000, ROUTE_E_TEMP, "4.3.0", NULL },
		{ "caller", { ROUTE_CALLER, "", 2526, CONF_TLS_MAY, false, false,
		    "caller:2526" }, "x.example", 1000, ROUTE_E_TEMP, "4.3.0",
		    NULL },
		/* A zero timeout answers from the cache only. */
		{ "zero_timeout", { ROUTE_MX, "", 0, CONF_TLS_MAY, false, false,
		    "" }, "nocache.example", 0, ROUTE_E_TEMP, "4.4.3", NULL },
		/* A bad relayhost defers, it never bounces. */
		{ "bad_relayhost", { ROUTE_HOST, "smart.example:x", 0,
		    CONF_TLS_MAY, true, false, "" }, "x.example", 1000, ROUTE_E_TEMP,
		    "4.4.3", NULL },
		{ "bad_domain", { ROUTE_MX, "", 0, CONF_TLS_MAY, false, false, "" },
		    "bad..example", 1000, ROUTE_E_NXDOMAIN, "5.1.2", NULL },
	};
	struct route_dns	*d;
	struct route_addr	 a[ROUTE_ADDR_MAX];
	struct conf		*c;
	char			 err[256], status[16], why[256];
	char			 ip[64], got[96];
	size_t			 i, n;
	int			 rc, port;

	/* A server nobody answers on: nothing here may reach it. */
	if ((c = load_conf(t, "smtp_port = 2525\n"
	    "dns_servers = 127.0.0.1:9\n")) == NULL)
		return;
	if ((d = route_dns_new(c, err, sizeof(err))) == NULL) {
		conf_free(c);
		t_fatalf(t, "route_dns_new: %s", err);
	}
	for (i = 0; i < NELEM(cases); i++) {
		n = 99;
		rc = route_dns_resolve(d, &cases[i].r, cases[i].domain, a,
		    NELEM(a), &n, status, why, sizeof(why),
		    cases[i].timeout_ms);
		got[0] = '\0';
		if (rc == ROUTE_OK && n > 0) {
			if (a[0].ss.ss_family == AF_INET) {
				struct sockaddr_in *s = (void *)&a[0].ss;

				inet_ntop(AF_INET, &s->sin_addr, ip,
				    sizeof(ip));
				port = ntohs(s->sin_port);
			} else {
				struct sockaddr_in6 *s = (void *)&a[0].ss;

				inet_ntop(AF_INET6, &s->sin6_addr, ip,
				    sizeof(ip));
				port = ntohs(s->sin6_port);
			}
			(void)bsnprintf(got, sizeof(got), "%s %d", ip, port);
		}
		if (rc != cases[i].rc || (rc == ROUTE_OK && (n != 1 ||
		    strcmp(got, cases[i].addr) != 0)) || (rc != ROUTE_OK &&
		    (n != 0 || strcmp(status, cases[i].status) != 0 ||
		    why[0] == '\0')))
			t_errorf(t, "%s: route_dns_resolve: got %d n=%zu "
			    "\"%s\" %s (%s), want %d \"%s\" %s", cases[i].name, rc, n,
			    got, status, why, cases[i].rc, cases[i].addr ?
			    cases[i].addr : "", cases[i].status);
	}
	route_dns_free(d);
	conf_free(c);
}

/* dns_servers: every accepted form, and a bad one named in the error. */
static void
route_dns_servers(struct t *t)
{
	static const struct {
		const char	*servers;
		bool		 ok;
	} cases[] = {
		{ "127.0.0.1", true },
		{ "127.0.0.1:5353", true },
		{ "127.0.0.1:5353 [::1]:5353 ::1 [::1] 192.0.2.1", true },
		{ "localhost", false },
		{ "127.0.0.1:0", false },
		{ "127.0.0.1:65536", false },
		{ "127.0.0.1:x", false },
		{ "[::1", false },
		{ "[::1]x", false },
		{ "127.0.0.1 bogus:53", false },
	};
	struct route_dns	*d;
	struct conf		*c;
	char			 text[256], err[256];
	size_t			 i;

	for (i = 0; i < NELEM(cases); i++) {
		(void)bsnprintf(text, sizeof(text), "dns_servers = %s\n",
		    cases[i].servers);
		if ((c = load_conf(t, text)) == NULL)
			continue;
		err[0] = '\0';
		d = route_dns_new(c, err, sizeof(err));
		if ((d != NULL) != cases[i].ok ||
		    (d == NULL && strncmp(err, "dns_servers: ", 13) != 0))
			t_errorf(t, "route_dns_new(%s): got %s \"%s\", want %s",
			    cases[i].servers, d ? "ok" : "NULL", err,
			    cases[i].ok ? "ok" : "an error");
		route_dns_free(d);
		conf_free(c);
	}
	route_dns_free(NULL);
	routes_free(NULL);
}

/*
 * Held mail, once released (flush, ETRN, ATRN), goes by its routes_file
 * entry when it has one, else to its MX; relayhost is never the route of
 * a held or a relay domain (as Postfix keeps relay_domains off relayhost).
 * A held domain still waits under route_lookup().
 */
static void
route_release_order(struct t *t)
{
	static const char text[] =
	    "site.test [127.0.0.9]:2526\n"
	    ".held.test [sub-relay.example] tls=encrypt\n"
	    "waits.test hold\n"
	    "calls.test caller:2526\n"
	    "routed-relay.test [192.0.2.4]:2527\n";
	static const struct want lookups[] = {
		{ "site.test", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		{ "x.held.test", ROUTE_HOLD, "", 0, CONF_TLS_MAY, false,
		    "hold" },
		/* relay_domains: the MX, not relayhost */
		{ "relay.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:relay.test" },
		{ "a.relays.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:a.relays.test" },
		{ "Relay.Test.", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:relay.test" },
		{ "routed-relay.test", ROUTE_HOST, "192.0.2.4", 2527,
		    CONF_TLS_MAY, false, "host:[192.0.2.4]:2527" },
		/* anything else: relayhost */
		{ "far.test", ROUTE_HOST, "smart.example", 587, CONF_TLS_MAY,
		    true, "host:[smart.example]:587" },
		{ "relays.test", ROUTE_HOST, "smart.example", 587,
		    CONF_TLS_MAY, true, "host:[smart.example]:587" },
	};
	static const struct want releases[] = {
		{ "site.test", ROUTE_HOST, "127.0.0.9", 2526, CONF_TLS_MAY,
		    false, "host:[127.0.0.9]:2526" },
		{ "SITE.test.", ROUTE_HOST, "127.0.0.9", 2526, CONF_TLS_MAY,
		    false, "host:[127.0.0.9]:2526" },
		{ "x.held.test", ROUTE_HOST, "sub-relay.example", 0,
		    CONF_TLS_ENCRYPT, false, "host:[sub-relay.example]:25" },
		{ "other.held.test", ROUTE_HOST, "sub-relay.example", 0,
		    CONF_TLS_ENCRYPT, false, "host:[sub-relay.example]:25" },
		/* held, no entry: its MX, never relayhost */
		{ "nosite.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:nosite.test" },
		/* a "hold" or "caller" entry released: the MX */
		{ "waits.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:waits.test" },
		{ "calls.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:calls.test" },
		{ "relay.test", ROUTE_MX, "", 0, CONF_TLS_MAY, false,
		    "mx:relay.test" },
	};
	struct conf	*c;
	struct routes	*rs;
	char		 path[64], err[512];
	size_t		 i;

	rs = load_routes(t, text, path, sizeof(path), err, sizeof(err));
	if (rs == NULL)
		t_fatalf(t, "routes_load: %s", err);
	c = load_conf(t, "hold_domains = site.test .held.test nosite.test\n"
	    "relay_domains = relay.test .relays.test routed-relay.test\n"
	    "relayhost = [smart.example]:587\n");
	if (c == NULL) {
		routes_free(rs);
		return;
	}
	for (i = 0; i < NELEM(lookups); i++)
		check_lookup(t, "release", c, rs, &lookups[i]);
	for (i = 0; i < NELEM(releases); i++)
		check_route(t, "release", c, rs, &releases[i], route_release,
		    "route_release");
	conf_free(c);
	routes_free(rs);
}

/* route_dns_server_ok agrees with route_dns_new on each single entry. */
static void
route_dns_server_check(struct t *t)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} cases[] = {
		{ "127.0.0.1", true },
		{ "127.0.0.1:5353", true },
		{ "[::1]:5353", true },
		{ "::1", true },
		{ "300.1.2.3", false },
		{ "localhost", false },
		{ "127.0.0.1:0", false },
		{ "[::1]x", false },
		{ "", false },
	};
	size_t	i;

	for (i = 0; i < NELEM(cases); i++)
		if (route_dns_server_ok(cases[i].s) != cases[i].ok)
			t_errorf(t, "route_dns_server_ok(\"%s\"): got %d, want "
			    "%d", cases[i].s, !cases[i].ok, cases[i].ok);
}

/* relayhost_auth_file: the first USER:PASSWORD line is the credential;
 * every other line is a comment, blank or well formed, else an error that
 * names the line. */
static void
route_auth_parse(struct t *t)
{
	static const struct {
		const char	*text;
		const char	*user;		/* NULL: an error */
		const char	*pass;
		const char	*err;		/* after "file" */
	} cases[] = {
		{ "bob:secret\n", "bob", "secret", NULL },
		{ "# c\n\n  \nbob:se:cret\r\nann:x\n", "bob", "se:cret",
		    NULL },
		{ "bob:secret", "bob", "secret", NULL },
		{ "", NULL, NULL, ": no USER:PASSWORD line" },
		{ "# only\n\n", NULL, NULL, ": no USER:PASSWORD line" },
		{ "bob:secret\nnocolon\n", NULL, NULL,
		    ":2: want USER:PASSWORD" },
		{ ":secret\n", NULL, NULL, ":1: bad user name" },
		{ "bob:\n", NULL, NULL, ":1: bad password" },
		{ "bob:se\x01cret\n", NULL, NULL, ":1: bad password" },
		{ "b\tob:secret\n", NULL, NULL, ":1: bad user name" },
	};
	char	 path[64], err[256], want[128], *user, *pass;
	size_t	 i;
	int	 rc;

	for (i = 0; i < NELEM(cases); i++) {
		if (write_tmp(cases[i].text, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp: %s", strerror(errno));
		err[0] = '\0';
		rc = route_auth_load(path, &user, &pass, err, sizeof(err));
		if (cases[i].user != NULL) {
			if (rc != 0 || strcmp(user, cases[i].user) != 0 ||
			    strcmp(pass, cases[i].pass) != 0)
				t_errorf(t, "case %zu: got %d %s:%s (%s), want "
				    "%s:%s", i, rc, user ? user : "-",
				    pass ? pass : "-", err, cases[i].user,
				    cases[i].pass);
		} else {
			(void)bsnprintf(want, sizeof(want), "%s%s", path,
			    cases[i].err);
			if (rc == 0 || user != NULL || pass != NULL ||
			    strncmp(err, want, strlen(want)) != 0)
				t_errorf(t, "case %zu: got %d \"%s\", want "
				    "\"%s...\"", i, rc, err, want);
		}
		route_auth_free(&user, &pass);
		unlink(path);
	}
	/* A long password is refused, not cut. */
	{
		char	line[ROUTE_AUTH_PASS_MAX + 16];

		memset(line, 'p', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\0';
		memcpy(line, "bob:", 4);
		if (write_tmp(line, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp: %s", strerror(errno));
		if (route_auth_load(path, &user, &pass, err,
		    sizeof(err)) == 0)
			t_errorf(t, "a %zu-octet password was taken",
			    strlen(line) - 4);
		route_auth_free(&user, &pass);
		unlink(path);
	}
	if (route_auth_load("/nonexistent/relayauth", &user, &pass, err,
	    sizeof(err)) == 0 || strstr(err, "No such file") == NULL)
		t_errorf(t, "missing file: got \"%s\"", err);
}

/* The one comment rule (smtp.h, linefile.c) in relayhost_auth_file and
 * routes_file: '#' after white space starts a comment, so a password
 * holding '#' is kept whole; white space around a line is dropped. */
static void
route_comment_rule(struct t *t)
{
	static const struct {
		const char	*text;
		const char	*user, *pass;
	} cases[] = {
		{ "bob:pass#word\n", "bob", "pass#word" },
		{ "bob:#secret\n", "bob", "#secret" },
		{ "bob:secret # the relay's\n", "bob", "secret" },
		{ "  bob:secret\t\r\n", "bob", "secret" },
	};
	struct routes	*rs;
	char		 path[64], err[256], *user, *pass;
	size_t		 i;
	int		 rc;

	for (i = 0; i < NELEM(cases); i++) {
		if (write_tmp(cases[i].text, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp: %s", strerror(errno));
		err[0] = '\0';
		rc = route_auth_load(path, &user, &pass, err, sizeof(err));
		unlink(path);
		if (rc != 0 || strcmp(user, cases[i].user) != 0 ||
		    strcmp(pass, cases[i].pass) != 0)
			t_errorf(t, "relayhost_auth_file \"%s\": got %d "
			    "\"%s\":\"%s\" (%s), want \"%s\":\"%s\"",
			    cases[i].text, rc, user ? user : "-",
			    pass ? pass : "-", err, cases[i].user,
			    cases[i].pass);
		route_auth_free(&user, &pass);
	}

	/* In routes_file '#' inside a target is text, so a bad target. */
	rs = load_routes(t, "a.example mx # c\nb.example mx#c\n", path,
	    sizeof(path), err, sizeof(err));
	if (rs != NULL || strstr(err, ":2: ") == NULL)
		t_errorf(t, "\"mx#c\": got \"%s\", want an error on line 2",
		    err);
	routes_free(rs);
}

/* site_list: hold_domains then routes_file's hold and caller entries,
 * once each; site_fill: last seen by name, and for ".parent" the latest
 * of its subdomains' and the parent's own (ETRN @parent). */
static void
site_list_fill(struct t *t)
{
	static const struct {
		const char	*dom;
		int64_t		 seen;
	} want[] = {
		{ "a.example", 50 }, { ".b.example", 150 },
		{ ".d.example", 0 }, { "c.example", 0 },
	};
	struct conf	*c;
	struct routes	*rs;
	struct queue	*q = NULL;
	struct site	*v = NULL;
	char		 path[64], err[512], dir[] = "/tmp/test_site.XXXXXX";
	size_t		 n = 0, i;

	c = load_conf(t, "hold_domains = a.example, .b.example, "
	    "A.Example\n");
	rs = load_routes(t, "c.example hold\n.d.example caller:2525\n"
	    "a.example hold\ne.example mx\n", path, sizeof(path), err,
	    sizeof(err));
	if (c == NULL || rs == NULL) {
		t_errorf(t, "setup: %s", err);
		goto out;
	}
	if (site_list(c, rs, &v, &n) || n != NELEM(want)) {
		t_errorf(t, "site_list: %zu sites, want %zu", n, NELEM(want));
		goto out;
	}
	if (mkdtemp(dir) == NULL || queue_open(dir, QUEUE_CREATE, 1 << 20,
	    &q, err, sizeof(err)) != 0) {
		t_errorf(t, "queue_open: %s", err);
		goto out;
	}
	if (queue_site_seen(q, "a.example", 50) != 0 ||
	    queue_site_seen(q, "x.b.example", 100) != 0 ||
	    queue_site_seen(q, "b.example", 150) != 0 ||
	    queue_site_seen(q, "zz.example", 999) != 0 ||
	    site_fill(q, v, n) != 0) {
		t_errorf(t, "seen/site_fill: %s", queue_errmsg(q));
		goto out;
	}
	for (i = 0; i < n; i++)
		if (strcmp(v[i].domain, want[i].dom) != 0 ||
		    v[i].seen != want[i].seen || v[i].bl.msgs != 0)
			t_errorf(t, "site %zu: %s seen %lld, want %s %lld", i,
			    v[i].domain, (long long)v[i].seen, want[i].dom,
			    (long long)want[i].seen);
out:
	if (q != NULL) {
		queue_close(q);
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/lock.mdb", dir);
		unlink(path);
		rmdir(dir);
	}
	free(v);
	routes_free(rs);
	conf_free(c);
}

int
main(void)
{
	T_RUN(routes_parse_good);
	T_RUN(routes_parse_bad);
	T_RUN(route_lookup_order);
	T_RUN(route_release_order);
	T_RUN(route_resolve_nodns);
	T_RUN(route_dns_servers);
	T_RUN(route_dns_server_check);
	T_RUN(route_auth_parse);
	T_RUN(route_comment_rule);
	T_RUN(site_list_fill);
	T_EXIT();
}

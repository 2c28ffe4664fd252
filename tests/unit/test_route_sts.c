/*
 * test_route_sts.c - MTA-STS's parsers (runner/route_sts_parse.c) with
 * hostile input: the TXT record (RFC 8461 §3.1), the policy body (§3.2),
 * the mx patterns and their matching (§4.1); which hops have a policy
 * domain (route_sts_domain, §3.4); the filter of MX hosts; and the
 * queue's cache records (queue/queue_sts.c): round trip, expiry purge.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "route_sts.h"
#include "tharness.h"
#include "tqueue.h"		/* tq_rmrf, NELEM */
#include "tutil.h"

static void
sts_txt(struct t *t)
{
	static const struct {
		const char	*txt;
		int		 want;
		const char	*id;
	} c[] = {
		{ "v=STSv1; id=20160831085700Z;", 1, "20160831085700Z" },
		{ "v=STSv1;id=abc", 1, "abc" },
		{ "v=STSv1 ; id=abc ;", 1, "abc" },
		{ "v=STSv1; id=first; id=second", 1, "first" },
		{ "v=STSv1; ext_x=1; id=A1", 1, "A1" },
		{ "v=STSv1; id=12345678901234567890123456789012", 1,
		    "12345678901234567890123456789012" },
		{ "v=STSv1; id=123456789012345678901234567890123", -1, "" },
		{ "v=STSv1; id=", -1, "" },
		{ "v=STSv1; id=a-b", -1, "" },
		{ "v=STSv1; id=a b", -1, "" },
		{ "v=STSv1", -1, "" },
		{ "v=STSv1;", -1, "" },
		{ "v=STSv1; x=1", -1, "" },
		{ "v=STSv1; =1; id=a", -1, "" },
		{ "v=STSv1 id=a", -1, "" },
		{ "v=STSv2; id=a", 0, "" },
		{ "v=spf1 -all", 0, "" },
		{ "V=STSv1; id=a", 0, "" },
		{ "", 0, "" },
	};
	char	id[ROUTE_STS_ID_MAX + 1], big[2048];
	size_t	i;
	int	r;

	for (i = 0; i < NELEM(c); i++) {
		r = route_sts_txt_parse(c[i].txt, strlen(c[i].txt), id);
		if (r != c[i].want || strcmp(id, c[i].id) != 0)
			t_errorf(t, "route_sts_txt_parse(\"%s\"): got %d \"%s\", "
			    "want %d \"%s\"", c[i].txt, r, id, c[i].want,
			    c[i].id);
	}
	/* A NUL inside, and one record past the limit. */
	r = route_sts_txt_parse("v=STSv1; id=a\0b", 15, id);
	if (r != -1)
		t_errorf(t, "NUL in the id: got %d, want -1", r);
	memset(big, 'x', sizeof(big));
	memcpy(big, "v=STSv1; id=a; e=", 17);
	if ((r = route_sts_txt_parse(big, sizeof(big), id)) != -1)
		t_errorf(t, "2048-octet record: got %d, want -1", r);
}

static void
sts_policy(struct t *t)
{
	static const struct {
		const char		*body;
		int			 want;
		enum route_sts_mode	 mode;
		unsigned		 age;
		size_t			 nmx;
	} c[] = {
		{ "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
		    "mx: *.example.net\r\nmax_age: 604800\r\n", 0,
		    ROUTE_STS_ENFORCE, 604800, 2 },
		{ "version: STSv1\nmode: testing\nmx: a.example\n"
		    "max_age: 86400", 0, ROUTE_STS_TESTING, 86400, 1 },
		{ "version: STSv1\nmode: none\nmax_age: 0\n", 0,
		    ROUTE_STS_NONE, 0, 0 },
		/* First of duplicates; unknown keys ignored. */
		{ "version: STSv1\nmode: enforce\nmode: none\nmax_age: 5\n"
		    "max_age: 9\nmx: a.example\nfoo: bar baz\nx.y-z_: 1\n", 0,
		    ROUTE_STS_ENFORCE, 5, 1 },
		{ "version:STSv1\nmode:\tenforce  \nmax_age: 31557600\n"
		    "mx: A.EXAMPLE\n\n", 0, ROUTE_STS_ENFORCE, 31557600, 1 },
		{ "version: STSv1\nmode: enforce\nmax_age: 31557601\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 12345678901\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: -1\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1d\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: Enforce\nmax_age: 1\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv2\nmode: enforce\nmax_age: 1\n"
		    "mx: a.example\n", -1, 0, 0, 0 },
		{ "mode: enforce\nmax_age: 1\nmx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmax_age: 1\nmx: a.example\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.example\n", -1, 0, 0,
		    0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *\n", -1, 0,
		    0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.*.a.b\n",
		    -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a..b\n", -1,
		    0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a.b.\n", -1,
		    0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: -a.b\n", -1,
		    0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a b\n", -1,
		    0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a_b.c\n", -1,
		    0, 0, 0 },
		{ "<html>\nversion: STSv1\nmode: enforce\nmax_age: 1\n"
		    "mx: a.b\n", -1, 0, 0, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a.b\nmx:\n",
		    -1, 0, 0, 0 },
	};
	struct route_sts_policy	*p = calloc(1, sizeof(*p));
	struct sbuf		*s;
	char			 why[256], *big;
	size_t			 i, len;
	int			 r;

	if (p == NULL)
		t_fatalf(t, "calloc");
	for (i = 0; i < NELEM(c); i++) {
		r = route_sts_policy_parse(c[i].body, strlen(c[i].body), p,
		    why, sizeof(why));
		if (r != c[i].want)
			t_errorf(t, "policy %zu: got %d (%s), want %d", i, r,
			    r != 0 ? why : "", c[i].want);
		else if (r == 0 && (p->mode != c[i].mode ||
		    p->max_age != c[i].age || p->nmx != c[i].nmx))
			t_errorf(t, "policy %zu: got mode %d age %u nmx %zu, "
			    "want %d %u %zu", i, (int)p->mode, p->max_age,
			    p->nmx, (int)c[i].mode, c[i].age, c[i].nmx);
	}
	/* mx in lower case; the format parses back the same. */
	r = route_sts_policy_parse(c[4].body, strlen(c[4].body), p, why,
	    sizeof(why));
	if (r != 0 || strcmp(p->mx[0], "a.example") != 0)
		t_errorf(t, "mx not lowered: %s", p->mx[0]);
	s = sbuf_new();
	route_sts_policy_format(p, s);
	if (strcmp(sbuf_str(s), "version: STSv1\nmode: enforce\n"
	    "max_age: 31557600\nmx: a.example\n") != 0)
		t_errorf(t, "format: got \"%s\"", sbuf_str(s));
	sbuf_free(s);

	/* Bounds: 65 mx lines, a long line, a NUL, 64 KiB + 1. */
	big = malloc(70000);
	if (big == NULL)
		t_fatalf(t, "malloc");
	len = (size_t)sprintf(big, "version: STSv1\nmode: enforce\n"
	    "max_age: 1\n");
	for (i = 0; i < ROUTE_STS_MX_MAX + 1; i++)
		len += (size_t)sprintf(big + len, "mx: m%zu.example\n", i);
	if (route_sts_policy_parse(big, len, p, why, sizeof(why)) != -1 ||
	    strstr(why, "more than") == NULL)
		t_errorf(t, "65 mx: got \"%s\"", why);
	len = (size_t)sprintf(big, "version: STSv1\nmode: enforce\n"
	    "max_age: 1\nmx: a.example\nx: ");
	memset(big + len, 'a', 2000);
	len += 2000;
	if (route_sts_policy_parse(big, len, p, why, sizeof(why)) != -1 ||
	    strstr(why, "longer") == NULL)
		t_errorf(t, "long line: got \"%s\"", why);
	if (route_sts_policy_parse("version: STSv1\0", 15, p, why,
	    sizeof(why)) != -1)
		t_errorf(t, "NUL taken");
	memset(big, '\n', 65537);
	if (route_sts_policy_parse(big, 65537, p, why, sizeof(why)) != -1 ||
	    strstr(why, "larger") == NULL)
		t_errorf(t, "65537 octets: got \"%s\"", why);
	free(big);
	free(p);
}

static void
sts_match(struct t *t)
{
	static const struct {
		const char	*pat, *host;
		bool		 want;
	} c[] = {
		{ "mail.example.com", "mail.example.com", true },
		{ "mail.example.com", "MAIL.Example.COM.", true },
		{ "mail.example.com", "mail.example.co", false },
		{ "mail.example.com", "xmail.example.com", false },
		{ "*.example.com", "mx.example.com", true },
		{ "*.example.com", "MX.EXAMPLE.COM.", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false },
		{ "*.example.com", "mx.example.co", false },
		{ "*.example.com", "mxexample.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "", false },
	};
	size_t	i;

	for (i = 0; i < NELEM(c); i++)
		if (route_sts_mx_match(c[i].pat, c[i].host) != c[i].want)
			t_errorf(t, "route_sts_mx_match(\"%s\", \"%s\"): got "
			    "%d", c[i].pat, c[i].host, !c[i].want);
}

static void
sts_filter(struct t *t)
{
	struct route_sts_policy	*p = calloc(1, sizeof(*p));
	struct route_addr	 a[4];
	char			 st[16], why[256];
	size_t			 n;
	int			 r;

	if (p == NULL)
		t_fatalf(t, "calloc");
	memset(a, 0, sizeof(a));
	strcpy(a[0].host, "bad.example");
	strcpy(a[1].host, "mx1.good.example");
	strcpy(a[2].host, "bad.example");
	strcpy(a[3].host, "mx2.good.example");
	strcpy(p->domain, "good.example");
	strcpy(p->mx[0], "*.good.example");
	p->nmx = 1;
	p->mode = ROUTE_STS_ENFORCE;
	n = 4;
	r = route_sts_filter(p, a, &n, st, why, sizeof(why));
	if (r != 0 || n != 2 || strcmp(a[0].host, "mx1.good.example") != 0 ||
	    strcmp(a[1].host, "mx2.good.example") != 0)
		t_errorf(t, "enforce: got %d n=%zu %s", r, n, a[0].host);
	strcpy(p->mx[0], "other.example");
	r = route_sts_filter(p, a, &n, st, why, sizeof(why));
	if (r != -1 || n != 0 || strcmp(st, "4.7.5") != 0)
		t_errorf(t, "enforce, none left: got %d n=%zu %s", r, n, st);
	strcpy(a[0].host, "bad.example");
	n = 1;
	p->mode = ROUTE_STS_TESTING;
	if (route_sts_filter(p, a, &n, st, why, sizeof(why)) != 0 || n != 1)
		t_errorf(t, "testing: host dropped");
	free(p);
}

static void
sts_domain(struct t *t)
{
	static const struct {
		const char	*route;		/* routes_file line, or "" */
		const char	*dom, *want;
	} c[] = {
		{ "", "Rcpt.Example.", "rcpt.example" },
		{ "rcpt.example smart.example:2525", "rcpt.example",
		    "smart.example" },
		{ "rcpt.example [smart.example]:2525", "rcpt.example", "" },
		{ "rcpt.example 192.0.2.1", "rcpt.example", "" },
		{ "rcpt.example mx mta-sts=no", "rcpt.example", "" },
		{ "rcpt.example mx mta-sts=yes", "rcpt.example",
		    "rcpt.example" },
		{ "rcpt.example mx tls=none", "rcpt.example", "" },
		{ "rcpt.example mx tls=encrypt", "rcpt.example",
		    "rcpt.example" },
		{ "rcpt.example hold", "rcpt.example", "" },
	};
	struct conf	*cf;
	struct routes	*rs;
	struct route	 r;
	char		 path[64], err[512], out[256], text[256];
	size_t		 i;

	if (write_tmp("myhostname = me.example\n", path, sizeof(path)) == -1)
		t_fatalf(t, "write_tmp");
	cf = conf_load(path, err, sizeof(err));
	unlink(path);
	if (cf == NULL)
		t_fatalf(t, "conf_load: %s", err);
	for (i = 0; i < NELEM(c); i++) {
		(void)bsnprintf(text, sizeof(text), "%s\n", c[i].route);
		if (write_tmp(text, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp");
		rs = routes_load(path, err, sizeof(err));
		unlink(path);
		if (rs == NULL) {
			t_errorf(t, "routes_load(%s): %s", c[i].route, err);
			continue;
		}
		route_lookup(cf, rs, c[i].dom, &r);
		route_sts_domain(cf, &r, c[i].dom, out, sizeof(out));
		if (strcmp(out, c[i].want) != 0)
			t_errorf(t, "route \"%s\": policy domain \"%s\", want "
			    "\"%s\"", c[i].route, out, c[i].want);
		if (strstr(c[i].route, "mta-sts=no") != NULL &&
		    strstr(r.key, " mta-sts=no") == NULL)
			t_errorf(t, "route \"%s\": key \"%s\"", c[i].route,
			    r.key);
		routes_free(rs);
	}
	cf->smtp_mta_sts = false;
	route_lookup(cf, NULL, "rcpt.example", &r);
	route_sts_domain(cf, &r, "rcpt.example", out, sizeof(out));
	if (out[0] != '\0')
		t_errorf(t, "smtp_mta_sts = no: policy domain \"%s\"", out);
	conf_free(cf);
}

static void
sts_queue(struct t *t)
{
	struct queue	*q = NULL;
	struct qsts	*a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char		 dir[] = "/tmp/test_route_sts.XXXXXX", err[512];
	size_t		 n;
	int		 rc;

	if (a == NULL || b == NULL || mkdtemp(dir) == NULL)
		t_fatalf(t, "setup");
	if (queue_open(dir, QUEUE_CREATE, 1 << 22, &q, err, sizeof(err)) != 0)
		t_fatalf(t, "queue_open: %s", err);
	if ((rc = queue_sts_get(q, "a.example", b)) != QUEUE_E_NOENT)
		t_errorf(t, "get of nothing: %d", rc);
	strcpy(a->id, "id1");
	a->fetched = 1000;
	a->expires = 2000;
	strcpy(a->fail_id, "id2");
	a->failed = 1500;
	strcpy(a->policy, "version: STSv1\nmode: none\nmax_age: 1000\n");
	a->len = strlen(a->policy);
	if ((rc = queue_sts_put(q, "A.Example", a)) != 0)
		t_errorf(t, "put: %s", queue_errmsg(q));
	if ((rc = queue_sts_get(q, "a.EXAMPLE", b)) != 0 ||
	    strcmp(b->id, "id1") != 0 || b->fetched != 1000 ||
	    b->expires != 2000 || strcmp(b->fail_id, "id2") != 0 ||
	    b->failed != 1500 || b->len != a->len ||
	    strcmp(b->policy, a->policy) != 0)
		t_errorf(t, "round trip: rc %d id \"%s\" policy \"%s\"", rc,
		    b->id, b->policy);
	a->len = QUEUE_STS_POLICY_MAX + 1;
	if (queue_sts_put(q, "b.example", a) != QUEUE_E_INVAL)
		t_errorf(t, "oversized policy taken");
	a->len = 0;
	a->policy[0] = '\0';
	a->expires = 5000;
	a->failed = 0;
	(void)queue_sts_put(q, "c.example", a);
	/* Before 1600: nothing is older. Before 3000: a.example goes. */
	if (queue_sts_purge(q, 1600, &n) != 0 || n != 0)
		t_errorf(t, "purge 1600: %zu", n);
	if (queue_sts_purge(q, 3000, &n) != 0 || n != 1 ||
	    queue_sts_get(q, "a.example", b) != QUEUE_E_NOENT ||
	    queue_sts_get(q, "c.example", b) != 0)
		t_errorf(t, "purge 3000: %zu", n);
	queue_close(q);
	/* A read-only open keeps the cache readable. */
	if (queue_open(dir, QUEUE_RDONLY, 1 << 22, &q, err, sizeof(err)) != 0)
		t_errorf(t, "read-only open: %s", err);
	else {
		if (queue_sts_get(q, "c.example", b) != 0)
			t_errorf(t, "read-only get: %s", queue_errmsg(q));
		queue_close(q);
	}
	tq_rmrf(dir);
	free(a);
	free(b);
}

int
main(void)
{
	log_init("test", LOG_DEST_NONE);
	T_RUN(sts_txt);
	T_RUN(sts_policy);
	T_RUN(sts_match);
	T_RUN(sts_filter);
	T_RUN(sts_domain);
	T_RUN(sts_queue);
	T_EXIT();
}

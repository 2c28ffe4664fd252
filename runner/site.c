/*
 * site.c - the held sites, and what waits for each.
 *
 * A held site is a domain whose mail waits for its site to ask for it:
 * an entry of hold_domains, or a routes_file entry "hold" or
 * "caller:PORT". Both are configuration, so the list is bounded by what
 * the operator wrote (SITE_MAX guards against a generated file), and
 * what each holds comes from its own bydom range
 * (queue_domain_backlog), never from a scan of the whole queue. `postern
 * stats` shows them; the notify process (notify.c) watches them.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runner_int.h"

struct site_set {
	struct site	*v;
	size_t		 n, cap;
	bool		 cut;
};

static void
site_add(void *arg, const char *domain)
{
	struct site_set	*ss = arg;
	size_t		 i;

	if (domain[0] == '\0' || strlen(domain) > QUEUE_ADDR_MAX)
		return;
	for (i = 0; i < ss->n; i++)
		if (strcasecmp(ss->v[i].domain, domain) == 0)
			return;
	if (ss->n == SITE_MAX) {
		ss->cut = true;
		return;
	}
	if (ss->n == ss->cap) {
		ss->cap = ss->cap ? ss->cap * 2 : 16;
		ss->v = xreallocarray(ss->v, ss->cap, sizeof(*ss->v));
	}
	memset(&ss->v[ss->n], 0, sizeof(ss->v[ss->n]));
	strl_copy(ss->v[ss->n].domain, domain, sizeof(ss->v[ss->n].domain));
	strl_lower(ss->v[ss->n].domain);
	ss->n++;
}

bool
site_list(const struct conf *c, const struct routes *rs, struct site **out,
    size_t *n)
{
	struct site_set	ss;
	size_t		i;

	memset(&ss, 0, sizeof(ss));
	for (i = 0; i < c->hold_domains.n; i++)
		site_add(&ss, c->hold_domains.v[i]);
	routes_walk_held(rs, site_add, &ss);
	*out = ss.v;
	*n = ss.n;
	return ss.cut;
}

struct site_seen_ctx {
	struct site	*v;
	size_t		 n;
};

/* site_seen1 - one "seen" record: it counts for the site of that name,
 * and for a ".parent" site when it is below parent or is parent itself
 * (ETRN @parent asks for everything below). */
static int
site_seen1(void *arg, const char *domain, int64_t when)
{
	struct site_seen_ctx	*x = arg;
	size_t			 i, dl = strlen(domain), sl;

	for (i = 0; i < x->n; i++) {
		const char	*s = x->v[i].domain;
		bool		 hit;

		sl = strlen(s);
		if (s[0] == '.')
			hit = (dl > sl && strcmp(domain + dl - sl, s) == 0) ||
			    strcmp(domain, s + 1) == 0;
		else
			hit = strcmp(domain, s) == 0;
		if (hit && when > x->v[i].seen)
			x->v[i].seen = when;
	}
	return 0;
}

int
site_fill(struct queue *q, struct site *v, size_t n)
{
	struct site_seen_ctx	x = { v, n };
	size_t			i;
	int			rc;

	for (i = 0; i < n; i++) {
		v[i].seen = 0;
		if ((rc = queue_domain_backlog(q, v[i].domain, false,
		    &v[i].bl)) != 0)
			return rc;
	}
	return n > 0 ? queue_site_walk(q, site_seen1, &x) : 0;
}

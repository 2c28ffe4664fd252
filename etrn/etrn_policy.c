/*
 * etrn_policy.c - who may ETRN what (etrn_policy), and the named queues
 * of "ETRN #queue" (etrn_queues).
 *
 * etrn_policy is one of:
 *
 *	relay_domains	(the default) any client, for a domain in
 *			relay_domains or hold_domains: Postfix's
 *			fast_flush_domains default. ETRN can only make mail
 *			go where it would go anyway (RFC 1985 §3), so the
 *			domains we queue for are fair game.
 *	owners		only a client that authenticated (AUTH) as a user
 *			who owns the domain in users_file.
 *	FILE		a path (it has a '/': "./etrn.rules" or
 *			"/etc/postern/etrn"): per-domain rules.
 *
 * A rules file, one rule a line, '#' comments as in every file postern
 * reads (linefile.c), fields separated by blanks:
 *
 *	DOMAIN|.PARENT	WHO [WHO...]
 *
 * The rule of a domain is its exact line, else the nearest ".parent"
 * line (as in routes_file); no rule: refused. ETRN @domain and the
 * members of a #queue are judged by the rule of the name they give. A
 * client may ETRN when one WHO matches; a WHO is one or more conditions
 * joined by '+', all of which must hold:
 *
 *	any		every client
 *	CIDR		the client's address is in it (192.0.2.0/24, ::1/128)
 *	user=NAME	the client authenticated as NAME
 *	owner		the client authenticated as a user who owns the
 *			domain in users_file
 *
 * e.g. "dialup.example 192.0.2.0/24+user=site1 owner".
 *
 * Whatever the policy, a user who owns a domain may ETRN it, and a
 * domain routed "caller:PORT" may be ETRN'd only by its owner (the mail
 * goes to the caller's address: etrn.c).
 *
 * etrn_queues: items "NAME:MEMBER[:MEMBER...]", separated by commas or
 * blanks as every list key; a MEMBER is a domain, or "@domain" for it and
 * its subdomains. "ETRN #NAME" flushes every member; it is allowed only
 * when every member is.
 */
#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "etrn_int.h"

/* One condition set of a rule: every part that is set must hold. */
struct etrn_who {
	bool		 any;
	bool		 owner;
	bool		 has_net;
	struct conf_net	 net;
	char		*user;		/* NULL: any user, or none */
};

struct etrn_rule {
	char		*domain;	/* lower case; ".parent" keeps its dot */
	struct etrn_who	*who;
	size_t		 nwho;
	int		 line;
};

struct etrn_policy {
	enum etrn_mode		 mode;
	struct etrn_rule	*rules;	/* sorted by domain */
	size_t			 nrules, cap;
	struct etrn_queue	*queues;
	size_t			 nqueues;
};

enum etrn_mode
etrn_policy_mode(const struct etrn_policy *p)
{
	return p->mode;
}

static void
etrn_policy_rule_free(struct etrn_rule *r)
{
	size_t	i;

	for (i = 0; i < r->nwho; i++)
		free(r->who[i].user);
	free(r->who);
	free(r->domain);
}

void
etrn_policy_free(struct etrn_policy *p)
{
	size_t	i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++)
		etrn_policy_rule_free(&p->rules[i]);
	free(p->rules);
	free(p->queues);
	free(p);
}

/* etrn_policy_domain_ok - a domain as ETRN names it (RFC 5321 §4.1.2;
 * U-labels too: it is converted, etrn_policy_domain_key), at most
 * ETRN_DOMAIN_MAX octets. */
bool
etrn_policy_domain_ok(const char *d)
{
	return strlen(d) <= ETRN_DOMAIN_MAX &&
	    smtp_domain_valid(d, SMTP_ADDR_UTF8);
}

int
etrn_policy_domain_key(char *d, size_t dsz)
{
	char	a[SMTP_DOMAIN_MAX + 1];

	if (smtp_idn_to_ascii(d, a, sizeof(a), NULL) != 0 ||
	    strlen(a) > ETRN_DOMAIN_MAX)
		return -1;
	return strl_copy(d, a, dsz) ? 0 : -1;
}

/* etrn_policy_who - one WHO ("a+b+c") into *w: 0, or -1 with why. */
static int
etrn_policy_who(const char *s, struct etrn_who *w, char *why, size_t whysz)
{
	char	 buf[512], *part, *save = NULL;

	memset(w, 0, sizeof(*w));
	if (s[0] == '+' || s[strlen(s) - 1] == '+' || strstr(s, "++")) {
		(void)bsnprintf(why, whysz, "bad condition \"%.80s\" (an "
		    "empty part)", s);
		return -1;
	}
	if (!bsnprintf(buf, sizeof(buf), "%s", s)) {
		(void)bsnprintf(why, whysz, "condition too long");
		return -1;
	}
	for (part = strtok_r(buf, "+", &save); part != NULL;
	    part = strtok_r(NULL, "+", &save)) {
		if (strcasecmp(part, "any") == 0)
			w->any = true;
		else if (strcasecmp(part, "owner") == 0)
			w->owner = true;
		else if (strncasecmp(part, "user=", 5) == 0 &&
		    w->user == NULL &&
		    auth_user_name_ok(part + 5, strlen(part + 5)))
			w->user = xstrdup(part + 5);
		else if (!w->has_net && conf_parse_net(part, &w->net) == 0)
			w->has_net = true;
		else {
			(void)bsnprintf(why, whysz, "bad condition \"%.80s\" "
			    "(want any, owner, user=NAME or a CIDR network, "
			    "joined by '+')", part);
			free(w->user);
			w->user = NULL;
			return -1;
		}
	}
	if (!w->any && !w->owner && !w->has_net && w->user == NULL) {
		(void)bsnprintf(why, whysz, "empty condition");
		return -1;
	}
	return 0;
}

/* etrn_policy_line - a linefile_fn: one rule. */
static int
etrn_policy_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct etrn_policy	*p = arg;
	struct etrn_rule	 r;
	char			*tok, *save = NULL, adom[SMTP_DOMAIN_MAX + 2];
	const char		*d, *reason;

	(void)len;
	memset(&r, 0, sizeof(r));
	r.line = lineno;
	if ((tok = strtok_r(line, " \t", &save)) == NULL)
		return 0;
	d = tok[0] == '.' ? tok + 1 : tok;
	if (!etrn_policy_domain_ok(d) || (smtp_idn_has8(d) &&
	    smtp_idn_domain(tok, adom, sizeof(adom), &reason) != 0)) {
		(void)bsnprintf(why, whysz, "bad domain \"%.80s\"%s%s", tok,
		    smtp_idn_has8(tok) ? ": not a valid international domain "
		    "name: " : "", smtp_idn_has8(tok) ? reason : "");
		return -1;
	}
	if (p->nrules >= ETRN_RULES_MAX) {
		(void)bsnprintf(why, whysz, "more than %d rules",
		    ETRN_RULES_MAX);
		return -1;
	}
	/* Lower case, and A-labels for U-labels (libidn2 only then:
	 * a file of 100,000 ASCII rules loads as fast as before). */
	r.domain = smtp_idn_has8(d) ? xstrdup(adom) : strl_lower(xstrdup(tok));
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (r.nwho == ETRN_WHO_MAX) {
			(void)bsnprintf(why, whysz, "more than %d conditions",
			    ETRN_WHO_MAX);
			goto fail;
		}
		r.who = xreallocarray(r.who, r.nwho + 1, sizeof(*r.who));
		if (etrn_policy_who(tok, &r.who[r.nwho], why, whysz) != 0)
			goto fail;
		r.nwho++;
	}
	if (r.nwho == 0) {
		(void)bsnprintf(why, whysz, "%s: no condition (want any, "
		    "owner, user=NAME or a CIDR network)", r.domain);
		goto fail;
	}
	/* A second rule for a domain: etrn_policy_load, once sorted (one
	 * by one here would be quadratic in ETRN_RULES_MAX). */
	if (p->nrules == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->rules = xreallocarray(p->rules, p->cap, sizeof(*p->rules));
	}
	p->rules[p->nrules++] = r;
	return 0;
fail:
	etrn_policy_rule_free(&r);
	return -1;
}

static int
etrn_policy_rule_cmp(const void *a, const void *b)
{
	return strcmp(((const struct etrn_rule *)a)->domain,
	    ((const struct etrn_rule *)b)->domain);
}

/* etrn_policy_rule_sort - by domain, then line: a domain's rules in the
 * file's order, next to each other. */
static int
etrn_policy_rule_sort(const void *a, const void *b)
{
	const struct etrn_rule	*ra = a, *rb = b;
	int			 c;

	if ((c = strcmp(ra->domain, rb->domain)) != 0)
		return c;
	return (ra->line > rb->line) - (ra->line < rb->line);
}

/* etrn_policy_dup - after the sort: a domain with a second rule, named by
 * the line of the second (as a linefile error would); -1 if one. */
static int
etrn_policy_dup(const struct etrn_policy *p, const char *file, char *err,
    size_t errsz)
{
	size_t	i;

	for (i = 1; i < p->nrules; i++)
		if (strcmp(p->rules[i - 1].domain, p->rules[i].domain) == 0) {
			(void)bsnprintf(err, errsz, "%s:%d: %s: a second rule "
			    "(the first is on line %d)", file,
			    p->rules[i].line, p->rules[i].domain,
			    p->rules[i - 1].line);
			return -1;
		}
	return 0;
}

/* etrn_policy_name_ok - a queue name: 1..ETRN_QUEUE_NAME_MAX of letters,
 * digits, '.', '_' and '-'. */
bool
etrn_policy_name_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > ETRN_QUEUE_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* etrn_policy_queue - one etrn_queues item, "NAME:MEMBER[:MEMBER...]". */
static int
etrn_policy_queue(struct etrn_policy *p, const char *item, char *why,
    size_t whysz)
{
	struct etrn_queue	*q;
	const char		*s, *e;
	size_t			 i, len;

	if ((s = strchr(item, ':')) == NULL ||
	    !etrn_policy_name_ok(item, (size_t)(s - item))) {
		(void)bsnprintf(why, whysz, "bad queue \"%.80s\" (want "
		    "NAME:DOMAIN[:DOMAIN...], a name of letters, digits, "
		    "'.', '_' or '-')", item);
		return -1;
	}
	for (i = 0; i < p->nqueues; i++)
		if (strlen(p->queues[i].name) == (size_t)(s - item) &&
		    strncasecmp(p->queues[i].name, item, (size_t)(s - item))
		    == 0) {
			(void)bsnprintf(why, whysz, "queue \"%s\" twice",
			    p->queues[i].name);
			return -1;
		}
	if (p->nqueues >= ETRN_QUEUES_MAX) {
		(void)bsnprintf(why, whysz, "more than %d queues",
		    ETRN_QUEUES_MAX);
		return -1;
	}
	p->queues = xreallocarray(p->queues, p->nqueues + 1,
	    sizeof(*p->queues));
	q = &p->queues[p->nqueues];
	memset(q, 0, sizeof(*q));
	memcpy(q->name, item, (size_t)(s - item));
	for (s++; ; s = e + 1) {
		struct etrn_target	*t;

		if ((e = strchr(s, ':')) == NULL)
			e = s + strlen(s);
		len = (size_t)(e - s);
		if (q->n == ETRN_QUEUE_DOMAINS_MAX) {
			(void)bsnprintf(why, whysz, "queue \"%s\": more than "
			    "%d domains", q->name, ETRN_QUEUE_DOMAINS_MAX);
			return -1;
		}
		t = &q->t[q->n];
		t->sub = len > 0 && *s == '@';
		if (t->sub) {
			s++;
			len--;
		}
		if (len == 0 || len > ETRN_DOMAIN_MAX)
			goto bad;
		memcpy(t->domain, s, len);
		t->domain[len] = '\0';
		if (!etrn_policy_domain_ok(t->domain) ||
		    etrn_policy_domain_key(t->domain, sizeof(t->domain)) != 0)
			goto bad;
		q->n++;
		if (*e == '\0')
			break;
	}
	p->nqueues++;
	return 0;
bad:
	(void)bsnprintf(why, whysz, "queue \"%s\": bad domain in \"%.80s\"",
	    q->name, item);
	return -1;
}

struct etrn_policy *
etrn_policy_load(const struct conf *c, char *err, size_t errsz)
{
	struct etrn_policy	*p = xcalloc(1, sizeof(*p));
	const char		*v = c->etrn_policy;
	char			 why[512];
	size_t			 i;

	if (v == NULL || strcmp(v, "relay_domains") == 0)
		p->mode = ETRN_MODE_RELAY;
	else if (strcmp(v, "owners") == 0)
		p->mode = ETRN_MODE_OWNERS;
	else if (strchr(v, '/') != NULL) {
		p->mode = ETRN_MODE_FILE;
		if (linefile_read(v, etrn_policy_line, p, err, errsz) != 0)
			goto fail;
		/* An empty file leaves rules NULL: qsort and bsearch want a
		 * valid pointer even for no elements (C17 7.22.5). */
		if (p->nrules > 0)
			qsort(p->rules, p->nrules, sizeof(*p->rules),
			    etrn_policy_rule_sort);
		if (etrn_policy_dup(p, v, err, errsz) != 0)
			goto fail;
	} else {
		(void)bsnprintf(err, errsz, "bad value \"%.80s\" (want "
		    "relay_domains, owners or a file with a '/' in its "
		    "name)", v);
		goto fail;
	}
	for (i = 0; i < c->etrn_queues.n; i++)
		if (etrn_policy_queue(p, c->etrn_queues.v[i], why,
		    sizeof(why)) != 0) {
			(void)bsnprintf(err, errsz, "etrn_queues: %s", why);
			goto fail;
		}
	return p;
fail:
	etrn_policy_free(p);
	return NULL;
}

const struct etrn_queue *
etrn_policy_queue_find(const struct etrn_policy *p, const char *name)
{
	size_t	i;

	for (i = 0; i < p->nqueues; i++)
		if (strcasecmp(p->queues[i].name, name) == 0)
			return &p->queues[i];
	return NULL;
}

/* etrn_policy_rule - the rule of a domain: exact, then the nearest
 * ".parent". */
static const struct etrn_rule *
etrn_policy_rule(const struct etrn_policy *p, const char *dom)
{
	struct etrn_rule	 k;
	const struct etrn_rule	*r;
	const char		*s;

	if (p->nrules == 0)
		return NULL;
	memset(&k, 0, sizeof(k));
	for (s = dom; s != NULL; s = strchr(s + 1, '.')) {
		k.domain = (char *)(uintptr_t)s;	/* only read */
		if ((r = bsearch(&k, p->rules, p->nrules, sizeof(*p->rules),
		    etrn_policy_rule_cmp)) != NULL)
			return r;
	}
	return NULL;
}

static bool
etrn_policy_who_match(const struct etrn_who *w, const struct etrn_client *cl)
{
	if (w->owner && !cl->owner)
		return false;
	if (w->user != NULL && (cl->user == NULL ||
	    strcmp(w->user, cl->user) != 0))
		return false;
	if (w->has_net && (cl->sa == NULL ||
	    !conf_net_match(&w->net, 1, cl->sa)))
		return false;
	return true;
}

/* etrn_policy_listed - domain in the list, or (sub) ".domain" is. */
static bool
etrn_policy_listed(const struct conf_list *l, const char *dom, bool sub)
{
	size_t	i;

	if (conf_domain_in(l, dom))
		return true;
	for (i = 0; sub && i < l->n; i++)
		if (l->v[i][0] == '.' && strcasecmp(l->v[i] + 1, dom) == 0)
			return true;
	return false;
}

bool
etrn_policy_allows(const struct etrn_policy *p, const struct conf *c,
    const char *dom, bool sub, const struct etrn_client *cl)
{
	const struct etrn_rule	*r;
	char			 lower[ETRN_DOMAIN_MAX + 1];
	size_t			 i;

	if (cl->owner)
		return true;
	switch (p->mode) {
	case ETRN_MODE_RELAY:
		return etrn_policy_listed(&c->relay_domains, dom, sub) ||
		    etrn_policy_listed(&c->hold_domains, dom, sub);
	case ETRN_MODE_OWNERS:
		return false;
	case ETRN_MODE_FILE:
		strl_copy(lower, dom, sizeof(lower));
		strl_lower(lower);
		if ((r = etrn_policy_rule(p, lower)) == NULL)
			return false;
		for (i = 0; i < r->nwho; i++)
			if (etrn_policy_who_match(&r->who[i], cl))
				return true;
		return false;
	}
	return false;
}

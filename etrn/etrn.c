/*
 * etrn.c - ETRN on the SMTP port (RFC 1985): "ETRN domain", "ETRN
 * @domain" (and its subdomains) and "ETRN #queue" (etrn_queues).
 *
 * The loop decides what it can without the queue: syntax (501), state
 * (503 before HELO/EHLO and inside a mail transaction), the policy
 * (etrn_policy.c: 459, in the same words for a domain or queue we do not
 * know and one the client may not flush, and without a count, so a
 * refused client learns nothing), and a repeat within etrn_min_interval
 * (the same answer again, no second flush). The rest needs the queue, and
 * the loop never waits on it: the session hands an etrn_job to the commit
 * thread, which owns the queue's write side (smtpd.c), and waits in
 * SMTPD_S_COMMIT as a message does. The thread counts the messages
 * waiting (queue_domain_msgs: the domains' bydom ranges only, in a read
 * transaction) and records one flush request per domain (queue_flush,
 * held mail too); then the loop replies 253 with that count, or 251 when
 * nothing waits, and wakes the scheduler with "flush DOMAIN..." (the
 * flushed domains, etrn_job_wake), which claims them first and forgets
 * that a hop was down only for the hops their mail goes to (never every
 * hop: any client may ETRN a relay domain). The
 * delivery itself runs in the background toward each domain's route, as
 * RFC 1985 §5 asks: the reply never waits for it. The thread also records
 * that each domain's site was seen (queue_site_seen), whether mail waited
 * or not; a refused ETRN records nothing, and neither does a repeat within
 * etrn_min_interval (it never reaches the thread: the record is at most
 * that interval old). An ATRN or TURN with no mail waiting (453) comes
 * here too, only for that record (etrn_seen_submit): the site asked and
 * was allowed, though nothing turned; its reply waits for the record as
 * an ETRN's does.
 *
 * Authenticated ETRN to the caller. A domain routed "caller:PORT" in
 * routes_file has no fixed address: its mail goes to whoever asks for it,
 * so only its owner may ask. The client must have authenticated as a user
 * who owns the domain in users_file; then the flush request carries the
 * client's address (qsel.caller), its claims carry it on (qclaim.caller),
 * and the scheduler sends them to [address]:PORT (route_to_caller)
 * instead of the domain's MX. Anyone else gets 459 and nothing moves.
 * The caller goes only to the named domain's own mail (the claim gives it
 * to recipients of the request's exact domain, never a subdomain's), and
 * "@domain" with a caller-routed name below it is refused for everyone:
 * that name may be another owner's, and its mail must not go to this
 * caller nor be released to its MX by someone else's ETRN.
 *
 * Replies (RFC 1985 §5; enhanced codes ours, RFC 2034):
 *	251 2.0.0 OK, no messages waiting for node X
 *	253 2.0.0 OK, N pending messages for node X started
 *	458 4.3.0 Unable to queue messages for node X (4.3.1: queue full)
 *	459 4.7.0 Node X not allowed: unavailable
 *	501 5.5.4 Syntax: ETRN [@|#]node
 *	503 5.5.1 (before HELO/EHLO; in a mail transaction)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "etrn_int.h"
#include "runner.h"
#include "smtpd_int.h"

#define ETRN_ARG_MAX	(1 + ETRN_DOMAIN_MAX)	/* "@domain" */
#define ETRN_KEY_MAX	(ETRN_ARG_MAX + 1 + QUEUE_CALLER_MAX + 1)

/* The flush one ETRN asks for, and what the commit thread found. */
struct etrn_job {
	char			 arg[ETRN_ARG_MAX + 1];	/* node, lower case */
	char			 key[ETRN_KEY_MAX + 1];	/* rate table key */
	struct etrn_target	 t[ETRN_QUEUE_DOMAINS_MAX];
	struct qsel		 sel[ETRN_QUEUE_DOMAINS_MAX];
	size_t			 n;
	char			 caller[QUEUE_CALLER_MAX + 1];
	int64_t			 now;
	/* Out, from the commit thread. */
	int			 rc;
	size_t			 msgs;		/* waiting messages */
	size_t			 rcpts;		/* their recipients */
	char			 err[256];
	char			 seen_err[256];	/* last seen not recorded */
	bool			 seen_only;	/* an ATRN with no mail: 453 */
};

/* One answer etrn_min_interval repeats. */
struct etrn_rate_ent {
	char		 key[ETRN_KEY_MAX + 1];
	uint64_t	 when;		/* clock_mono_ms() of the flush */
	int		 code;		/* 253: a 251 flushed nothing, not kept */
	size_t		 msgs;
};

struct etrn_rate {
	struct etrn_rate_ent	 v[ETRN_RATE_MAX];
	size_t			 n;
};

struct etrn_rate *
etrn_rate_new(void)
{
	return xcalloc(1, sizeof(struct etrn_rate));
}

void
etrn_rate_free(struct etrn_rate *r)
{
	free(r);
}

void
etrn_job_free(struct etrn_job *j)
{
	free(j);
}

bool
etrn_job_flushed(const struct etrn_job *j)
{
	return j->rc == 0 && j->msgs > 0;
}

void
etrn_job_wake(const struct etrn_job *j, int fd, const char *queue_dir,
    char *buf, size_t *len)
{
	size_t	i, dl;

	for (i = 0; etrn_job_flushed(j) && i < j->n; i++) {
		dl = strlen(j->t[i].domain) + (j->t[i].sub ? 2 : 1);
		/* Full: this one goes, the rest in another. */
		if (*len > 0 && *len + dl >= SCHED_WAKE_MAX) {
			sched_wake(fd, queue_dir, buf);
			*len = 0;
		}
		if (*len == 0) {
			(void)strl_copy(buf, "flush", SCHED_WAKE_MAX);
			*len = 5;
		}
		if (bsnprintf(buf + *len, SCHED_WAKE_MAX - *len, " %s%s",
		    j->t[i].sub ? "@" : "", j->t[i].domain))
			*len += dl;
	}
}

/* etrn_rate_find - the answer given to key within the interval, or NULL. */
static struct etrn_rate_ent *
etrn_rate_find(struct etrn_rate *r, const char *key, uint64_t now,
    uint64_t ival)
{
	size_t	i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].key, key) == 0)
			return now - r->v[i].when < ival ? &r->v[i] : NULL;
	return NULL;
}

/* etrn_rate_put - remember an answer; a full table forgets the entry
 * flushed longest ago (expired ones are the oldest). */
static void
etrn_rate_put(struct etrn_rate *r, const char *key, uint64_t now, int code,
    size_t msgs)
{
	struct etrn_rate_ent	*e = NULL;
	size_t			 i;

	for (i = 0; i < r->n && e == NULL; i++)
		if (strcmp(r->v[i].key, key) == 0)
			e = &r->v[i];
	if (e == NULL && r->n < ETRN_RATE_MAX)
		e = &r->v[r->n++];
	if (e == NULL) {
		e = &r->v[0];
		for (i = 1; i < r->n; i++)
			if (r->v[i].when < e->when)
				e = &r->v[i];
	}
	strl_copy(e->key, key, sizeof(e->key));
	e->when = now;
	e->code = code;
	e->msgs = msgs;
}

/* etrn_client_addr - the client's address as a sockaddr (for networks),
 * and as the text a route takes (an IPv4 client on a dual-stack socket
 * is ::ffff:a.b.c.d: the caller is a.b.c.d). */
static bool
etrn_client_addr(const struct smtpd_session *s, struct sockaddr_storage *ss,
    char *ip, size_t ipsz)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	const char		*a = s->addr;

	memset(ss, 0, sizeof(*ss));
	if (strncasecmp(a, "::ffff:", 7) == 0 && strchr(a, '.') != NULL)
		a += 7;
	strl_copy(ip, a, ipsz);
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

static void
etrn_log(const struct smtpd_session *s, const struct etrn_job *j,
    const char *arg, int code, const char *outcome)
{
	char	doms[1024];
	size_t	i;

	doms[0] = '\0';
	for (i = 0; j != NULL && i < j->n; i++) {
		if (i > 0)
			(void)strl_cat(doms, " ", sizeof(doms));
		if (j->t[i].sub)
			(void)strl_cat(doms, "@", sizeof(doms));
		(void)strl_cat(doms, j->t[i].domain, sizeof(doms));
	}
	/* Every ETRN that got this far is logged here, and counted. */
	counters_request(COUNTERS_REQ_ETRN, code == 251 ? COUNTERS_OUT_EMPTY :
	    code < 300 ? COUNTERS_OUT_OK : code == 459 ? COUNTERS_OUT_REFUSED :
	    COUNTERS_OUT_ERROR);
	log_info("client=%s, user=%s, command=ETRN, arg=%s, domains=%s, "
	    "msgs=%zu, reply=%d (%s)", s->client,
	    s->auth_user != NULL ? s->auth_user : "none", arg,
	    doms[0] != '\0' ? doms : "-", j != NULL ? j->msgs : 0, code,
	    outcome);
}

/* etrn_refuse - 459, the same words whatever the reason. */
static void
etrn_refuse(struct smtpd_session *s, const struct etrn_job *j,
    const char *arg, const char *why)
{
	etrn_log(s, j, arg, 459, why);
	smtpd_session_reply(s, "459 4.7.0 Node %s not allowed: unavailable",
	    arg);
}

/* etrn_parse - the argument into j->arg and its targets; -1: 501; 1: an
 * unknown queue (459). The argument is checked before it is echoed. */
static int
etrn_parse(const struct smtpd_server *srv, char *arg, struct etrn_job *j)
{
	const struct etrn_queue	*q;
	size_t			 len;

	len = strlen(arg);
	if (len > ETRN_ARG_MAX || strchr(arg, ' ') != NULL)
		return -1;
	if (arg[0] == '#') {
		if (!etrn_policy_name_ok(arg + 1, len - 1))
			return -1;
		strl_copy(j->arg, arg, sizeof(j->arg));
		if ((q = etrn_policy_queue_find(srv->etrn->policy,
		    arg + 1)) == NULL)
			return 1;
		memcpy(j->t, q->t, q->n * sizeof(*q->t));
		j->n = q->n;
		return 0;
	}
	j->t[0].sub = arg[0] == '@';
	if (j->t[0].sub) {
		arg++;
		len--;
	}
	/* A trailing dot names the same domain. */
	if (len > 1 && arg[len - 1] == '.')
		arg[--len] = '\0';
	if (len == 0 || !etrn_policy_domain_ok(arg))
		return -1;
	/* U-labels are taken and become A-labels, the form the policy,
	 * the routes and the queue's index hold (RFC 1985 predates IDNs;
	 * a site may well name its domain as it writes it). */
	strl_copy(j->t[0].domain, arg, sizeof(j->t[0].domain));
	if (etrn_policy_domain_key(j->t[0].domain,
	    sizeof(j->t[0].domain)) != 0)
		return -1;
	j->n = 1;
	(void)bsnprintf(j->arg, sizeof(j->arg), "%s%s", j->t[0].sub ? "@" : "",
	    j->t[0].domain);
	return 0;
}

/*
 * etrn_allowed - may this client flush every target? A "caller:PORT"
 * domain only by its owner (and then its flush carries the caller's
 * address); others by the policy, or by their owner.
 */
static bool
etrn_allowed(struct smtpd_session *s, struct etrn_job *j, const char **why)
{
	struct smtpd_server	*srv = s->srv;
	const struct auth_user	*u = NULL;
	struct sockaddr_storage	 ss;
	struct etrn_client	 cl;
	char			 ip[INET6_ADDRSTRLEN];
	size_t			 i;
	bool			 caller, any_caller = false;

	memset(&cl, 0, sizeof(cl));
	cl.sa = etrn_client_addr(s, &ss, ip, sizeof(ip)) ?
	    (const struct sockaddr *)&ss : NULL;
	cl.user = s->auth_user;
	if (s->auth_user != NULL && srv->auth != NULL)
		u = auth_db_find(srv->auth, s->auth_user);
	for (i = 0; i < j->n; i++) {
		const struct etrn_target *t = &j->t[i];

		cl.owner = u != NULL && auth_user_owns(u, t->domain);
		/* A caller-routed name below "@domain" may be another
		 * owner's, and the flush's caller goes to the domain's own
		 * mail only (queue_claim_flush): each by its name. */
		if (t->sub && route_caller_below(srv->etrn->routes,
		    t->domain)) {
			*why = "refused: a caller route below it (ETRN it "
			    "by name)";
			return false;
		}
		caller = route_caller(srv->etrn->routes, t->domain, false);
		if (caller && !cl.owner) {
			*why = s->auth_user == NULL ? "refused: caller route, "
			    "no AUTH" : "refused: caller route, not the owner";
			return false;
		}
		if (!caller && !etrn_policy_allows(srv->etrn->policy,
		    srv->conf, t->domain, t->sub, &cl)) {
			*why = "refused: not allowed";
			return false;
		}
		memset(&j->sel[i], 0, sizeof(j->sel[i]));
		j->sel[i].domain = t->domain;
		j->sel[i].subdomains = t->sub;
		if (caller) {
			j->sel[i].caller = j->caller;
			any_caller = true;
		}
	}
	if (any_caller) {
		if (cl.sa == NULL || strlen(ip) > QUEUE_CALLER_MAX) {
			*why = "refused: caller address unusable";
			return false;
		}
		strl_copy(j->caller, ip, sizeof(j->caller));
	}
	/* One answer per argument, and per caller for a caller route. */
	(void)bsnprintf(j->key, sizeof(j->key), "%s%s%s", j->arg,
	    any_caller ? " " : "", any_caller ? j->caller : "");
	return true;
}

static void
etrn_reply(struct smtpd_session *s, const char *arg, int code, size_t msgs)
{
	if (code == 251)
		smtpd_session_reply(s, "251 2.0.0 OK, no messages waiting for "
		    "node %s", arg);
	else
		smtpd_session_reply(s, "253 2.0.0 OK, %zu pending message%s "
		    "for node %s started", msgs, msgs == 1 ? "" : "s", arg);
}

void
etrn_cmd(struct smtpd_session *s, char *arg)
{
	struct smtpd_server	*srv = s->srv;
	struct etrn_rate_ent	*e;
	struct etrn_job		*j;
	const char		*why = NULL;
	uint64_t		 now = (uint64_t)clock_mono_ms();
	int			 rc;

	if (s->helo[0] == '\0') {
		smtpd_session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	/* RFC 1985 §5: not inside a mail transaction. */
	if (s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
		return;
	}
	if (arg == NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: ETRN [@|#]node");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if ((rc = etrn_parse(srv, arg, j)) < 0) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: ETRN [@|#]node");
		etrn_job_free(j);
		return;
	}
	if (rc > 0) {
		j->n = 0;
		etrn_refuse(s, NULL, j->arg, "refused: unknown queue");
		etrn_job_free(j);
		return;
	}
	if (!etrn_allowed(s, j, &why)) {
		etrn_refuse(s, j, j->arg, why);
		etrn_job_free(j);
		return;
	}
	if ((e = etrn_rate_find(srv->etrn_rate, j->key, now,
	    smtpd_secs_ms(srv->conf->etrn_min_interval))) != NULL) {
		j->msgs = e->msgs;
		etrn_log(s, j, j->arg, e->code, "repeated within "
		    "etrn_min_interval: not flushed again");
		etrn_reply(s, j->arg, e->code, e->msgs);
		etrn_job_free(j);
		return;
	}
	j->now = (int64_t)clock_now();
	s->etrn = j;
	s->state = SMTPD_S_COMMIT;
	smtpd_commit_submit(srv, s);
}

void
etrn_job_run(struct queue *q, struct etrn_job *j)
{
	size_t	i, cnt;

	if (j->seen_only)
		goto seen;
	j->rc = queue_domain_msgs(q, j->sel, j->n, &j->msgs);
	/* Nothing waits: nothing to ask of the runners. */
	for (i = 0; j->rc == 0 && j->msgs > 0 && i < j->n; i++) {
		j->rc = queue_flush(q, &j->sel[i], true, j->now, &cnt);
		j->rcpts += cnt;
	}
	if (j->rc != 0) {
		strl_copy(j->err, queue_errmsg(q), sizeof(j->err));
		return;
	}
	/* The site asked and was allowed: it is alive, mail or none
	 * (queue_site_seen; stats, metrics and notices show it). A
	 * failure here costs the record, not the flush. */
seen:
	for (i = 0; i < j->n; i++)
		if (queue_site_seen(q, j->t[i].domain, j->now) != 0)
			strl_copy(j->seen_err, queue_errmsg(q),
			    sizeof(j->seen_err));
}

void
etrn_done(struct smtpd_session *s)
{
	struct smtpd_server	*srv = s->srv;
	struct etrn_job		*j = s->etrn;
	int			 code;

	s->etrn = NULL;
	s->state = SMTPD_S_CMD;
	if (j->seen_only) {
		if (j->seen_err[0] != '\0')
			log_warnx("client=%s, ATRN: last seen: %s", s->client,
			    j->seen_err);
		smtpd_session_reply(s, "453 4.0.0 You have no mail");
		etrn_job_free(j);
		return;
	}
	if (j->rc != 0) {
		log_warnx("client=%s, ETRN %s: %s", s->client, j->arg, j->err);
		etrn_log(s, j, j->arg, 458, "failed");
		/* RFC 3463: 4.3.1 is "mail system full". */
		smtpd_session_reply(s, "458 %s Unable to queue messages "
		    "for node %s", j->rc == QUEUE_E_FULL ? "4.3.1" : "4.3.0",
		    j->arg);
		etrn_job_free(j);
		return;
	}
	if (j->seen_err[0] != '\0')
		log_warnx("client=%s, ETRN %s: last seen: %s", s->client,
		    j->arg, j->seen_err);
	code = j->msgs > 0 ? 253 : 251;
	/* A 251 flushed nothing, and mail may come a moment later: only a
	 * flush is not done again within the interval. */
	if (code == 253 && srv->conf->etrn_min_interval > 0)
		etrn_rate_put(srv->etrn_rate, j->key, (uint64_t)clock_mono_ms(),
		    code, j->msgs);
	etrn_log(s, j, j->arg, code, code == 253 ? "started" :
	    "no messages waiting");
	etrn_reply(s, j->arg, code, j->msgs);
	etrn_job_free(j);
}

void
etrn_seen_submit(struct smtpd_session *s, const char (*dom)[256], size_t n)
{
	struct etrn_job	*j = xcalloc(1, sizeof(*j));
	size_t		 i;

	j->seen_only = true;
	for (i = 0; i < n && i < ETRN_QUEUE_DOMAINS_MAX; i++)
		strl_copy(j->t[i].domain, dom[i], sizeof(j->t[i].domain));
	j->n = i;
	j->now = (int64_t)clock_now();
	s->etrn = j;
	s->state = SMTPD_S_COMMIT;
	smtpd_commit_submit(s->srv, s);
}

struct etrn_conf *
etrn_conf_load(const struct conf *c)
{
	struct etrn_conf	*ec = xcalloc(1, sizeof(*ec));
	char			 err[1024];

	if ((ec->policy = etrn_policy_load(c, err, sizeof(err))) == NULL) {
		log_warnx("etrn_policy: %s", err);
		free(ec);
		return NULL;
	}
	if (c->routes_file != NULL &&
	    (ec->routes = routes_load(c->routes_file, err, sizeof(err))) ==
	    NULL) {
		log_warnx("routes_file: %s", err);
		etrn_conf_free(ec);
		return NULL;
	}
	return ec;
}

void
etrn_conf_free(struct etrn_conf *ec)
{
	if (ec == NULL)
		return;
	etrn_policy_free(ec->policy);
	routes_free(ec->routes);
	free(ec);
}

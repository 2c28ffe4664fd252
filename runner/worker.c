/*
 * worker.c - a delivery worker process.
 *
 * It takes one batch at a time from the scheduler over its socketpair: the
 * claims of one next hop, with the route. For each message it routes
 * (route_dns_resolve), connects (smtpc_open, reusing the open connection when
 * the batch is for the same hop), sends one transaction with all the
 * message's recipients of the batch and logs each recipient's result.
 * The results of the whole batch are recorded in the queue in one
 * transaction at its end (queue_claim_result, with the DSN hook: group
 * commit, one fsync a batch); then it reports to the scheduler. A hop none
 * of whose addresses answers is reported down, and the rest of the batch
 * waits for the same retry without a connection of its own. Between
 * batches an idle connection is kept connection_reuse_time, then closed
 * with QUIT.
 *
 * A worker that dies loses nothing: the scheduler hands its claims back.
 * Nor does it cost more than one duplicate: each message's results also
 * go to the slot's journal (struct wjournal, memory shared with the
 * scheduler) as soon as its final reply is in, before the next message
 * starts, and the scheduler records what the journal holds before it
 * hands back the rest. Delivery is at-least-once: a kill re-sends at most
 * the message whose final dot was out and whose reply was not yet
 * journaled (no client can do better: the server may take a message and
 * its reply be lost, RFC 5321 §6.1). A commit per message would do as
 * well, but at an fsync each, serialized with every other worker's on the
 * queue's write lock: a fifth of the throughput here (README, Delivery).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "route_sts.h"
#include "route_tlsa.h"
#include "runner_int.h"

struct worker {
	struct runner_bounce	*bounce;	/* the DSN hook on q */
	struct wjournal		*jnl;		/* shared with the scheduler */
	struct qresult		*res;		/* the batch's results */
	size_t			 nres, rescap;
	struct conf		*conf;
	struct queue		*q;
	struct route_dns	*dns;
	struct route_tlsa_dns	*tlsa;		/* DANE's lookups */
	struct route_sts	*sts;		/* MTA-STS's */
	struct route_sts_policy	*stsp;		/* the last connection's */
	struct smtpc		*conn;
	char			 conn_key[300];
	char			*auth_user, *auth_pass;
	char			*chunk;
	/* The last connection attempt's set-up, for the delays= of the
	 * first message that uses it (or that it failed for). */
	double			 setup_connect, setup_tls;
	bool			 setup_pending;
};

struct worker_body {
	struct worker	*w;
	const struct qmsg *m;
	uint32_t	 next;
};

static int
worker_body_next(void *arg, const char **data, size_t *len)
{
	struct worker_body	*b = arg;

	*len = 0;
	if (b->next >= b->m->nchunks)
		return 0;
	if (queue_body_chunk(b->w->q, b->m->id, b->next++, b->w->chunk,
	    len) != 0)
		return -1;
	*data = b->w->chunk;
	return 0;
}

/* worker_body_rewind - the message from its first chunk again. */
static int
worker_body_rewind(void *arg)
{
	struct worker_body	*b = arg;

	b->next = 0;
	return 0;
}

/* worker_auth - relayhost credentials from relayhost_auth_file, read by
 * the parser posternd's start-up check uses (route_auth.c). */
static void
worker_auth(struct worker *w)
{
	char	err[1024];

	if (w->conf->relayhost_auth_file == NULL)
		return;
	if (route_auth_load(w->conf->relayhost_auth_file, &w->auth_user,
	    &w->auth_pass, err, sizeof(err)) != 0)
		log_warnx("relayhost_auth_file: %s", err);
}

static void
worker_close(struct worker *w, bool polite)
{
	smtpc_close(w->conn, polite);
	w->conn = NULL;
	w->conn_key[0] = '\0';
}

/* worker_dane_protected - does DANE cover the hop: a host with secure
 * TLSA records (usable or not) or one whose TLSA lookup failed? Then
 * MTA-STS is not consulted (RFC 8461 §2). */
static bool
worker_dane_protected(const struct route_tlsa *t)
{
	size_t	i;

	for (i = 0; t != NULL && i < t->n; i++)
		if (t->h[i].level != ROUTE_TLSA_MAY)
			return true;
	return false;
}

/* worker_connect - route and connect for the batch's hop. 0 or the
 * failure (code 0 temporary / 5xx permanent) in status/why. */
static int
worker_connect(struct worker *w, const struct route *rt, const char *domain,
    int *code, char status[16], char *why, size_t whysz, bool *down)
{
	struct route_addr	 addrs[ROUTE_ADDR_MAX];
	struct smtpc_opts	 o;
	struct route_tlsa	*dane = NULL;
	size_t			 n = 0;
	bool			 perm = false;
	int			 rc;
	double			 t0 = clock_mono_secs();

	*down = false;
	w->setup_pending = true;
	w->setup_tls = 0;
	rc = route_dns_resolve(w->dns, rt, domain, addrs, ROUTE_ADDR_MAX, &n,
	    status, why, whysz, 30000);
	if (rc != ROUTE_OK) {
		*code = rc == ROUTE_E_TEMP ? 0 : 550;
		if (rc == ROUTE_E_LOOP)
			*code = 554;
		w->setup_connect = clock_mono_secs() - t0;
		return -1;
	}
	/* DANE (RFC 7672): each MX host's TLSA records, through the
	 * validating resolver; hosts whose lookup failed are dropped. */
	if (rt->tls == CONF_TLS_DANE && route_tlsa_policy(w->tlsa, rt, domain,
	    addrs, &n, &dane, status, why, whysz, 30000) != 0) {
		route_tlsa_free(dane);
		*code = 0;
		w->setup_connect = clock_mono_secs() - t0;
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.helo = w->conf->myhostname;
	o.tls = rt->tls;
	o.tls_ca_file = w->conf->tls_ca_file;
	o.connect_timeout = (int)w->conf->smtp_connect_timeout;
	o.cmd_timeout = (int)w->conf->smtp_command_timeout;
	o.data_timeout = (int)w->conf->smtp_data_timeout;
	o.dot_timeout = (int)w->conf->smtp_dot_timeout;
	o.bdat_min_size = w->conf->smtp_bdat_min_size;
	if (rt->relayhost) {
		/* AUTH only to a certificate for the relayhost's own name
		 * (or IP): for "relay.example" (no brackets) not for the
		 * name of an MX that DNS gave, which could be spoofed. */
		o.auth_user = w->auth_user;
		o.auth_pass = w->auth_pass;
		if (w->auth_user != NULL)
			o.tls_name = rt->host;
	}
	o.dane = dane;
	/* MTA-STS (RFC 8461) for a hop DANE does not protect (§2: a DANE
	 * host's verdict is never overridden; route_sts_domain says which
	 * hops have a policy domain at all). */
	w->stsp->mode = ROUTE_STS_NONE;
	if (!worker_dane_protected(dane)) {
		char	sd[256];

		route_sts_domain(w->conf, rt, domain, sd, sizeof(sd));
		if (sd[0] != '\0')
			route_sts_policy(w->sts, sd, w->stsp, 30000);
		if (route_sts_filter(w->stsp, addrs, &n, status, why,
		    whysz) != 0) {
			route_tlsa_free(dane);
			*code = 0;
			w->setup_connect = clock_mono_secs() - t0;
			return -1;
		}
		o.sts = w->stsp->mode;
		o.sts_domain = w->stsp->domain;
	}
	w->conn = smtpc_open(addrs, n, &o, status, why, whysz, &perm);
	route_tlsa_free(dane);		/* OpenSSL copied what it needs */
	w->setup_tls = smtpc_tls_time(w->conn);
	w->setup_connect = clock_mono_secs() - t0 - w->setup_tls;
	if (w->setup_connect < 0)
		w->setup_connect = 0;	/* the two clocks' rounding */
	if (w->conn == NULL) {
		*code = perm ? 550 : 0;
		/* No address connected or greeted: the hop is down. */
		*down = !perm && (strcmp(status, "4.4.1") == 0 ||
		    strcmp(status, "4.4.2") == 0);
		return -1;
	}
	strl_copy(w->conn_key, rt->key, sizeof(w->conn_key));
	/* What the connection's TLS established, once a connection, like
	 * Postfix's "Verified TLS connection established" line. */
	log_info("%s: tls=%s%s%s%s%s%s%s", smtpc_peer(w->conn),
	    smtpc_tls_trust(w->conn), smtpc_tls(w->conn)[0] != '\0' ?
	    ", cipher=" : "", smtpc_tls(w->conn),
	    smtpc_tls_dane(w->conn)[0] != '\0' ? ", tlsa=" : "",
	    smtpc_tls_dane(w->conn), o.sts != ROUTE_STS_NONE ?
	    ", mta-sts=" : "", o.sts != ROUTE_STS_NONE ?
	    route_sts_mode_name(o.sts) : "");
	return 0;
}

/*
 * worker_more_rcpts - recipients the server took none of for being too
 * many (452 4.5.3) go again in further transactions on the same
 * connection (RFC 5321 §4.5.3.1.10), a bounded number of times.
 */
static void
worker_more_rcpts(struct worker *w, struct smtpc_msg *sm)
{
	struct smtpc_rcpt	*all = sm->rcpt, *again;
	struct worker_body	*body = sm->body_arg;
	size_t			 nall = sm->nrcpt, n, i, k;
	int			 round;

	again = xcalloc(nall, sizeof(*again));
	for (round = 0; round < 20 && w->conn != NULL; round++) {
		for (i = 0, n = 0; i < nall; i++)
			if (all[i].code == 452 &&
			    strcmp(all[i].status, "4.5.3") == 0) {
				again[n] = all[i];
				again[n].code = 0;
				n++;
			}
		if (n == 0 || n == nall)
			break;		/* none left, or no progress possible */
		body->next = 0;
		sm->rcpt = again;
		sm->nrcpt = n;
		if (smtpc_send(w->conn, sm) != 0)
			worker_close(w, false);
		for (i = 0, k = 0; i < nall && k < n; i++)
			if (all[i].code == 452 &&
			    strcmp(all[i].status, "4.5.3") == 0)
				all[i] = again[k++];
		sm->rcpt = all;
		sm->nrcpt = nall;
	}
	free(again);
}

/* worker_journal - the results of one message, where the scheduler finds
 * them if we die before the batch's commit. Never more than the batch's
 * claims: one result each. */
static void
worker_journal(struct worker *w, const struct qresult *res, size_t k)
{
	struct wjournal	*j = w->jnl;
	uint32_t	 n;

	if (j == NULL)
		return;
	n = __atomic_load_n(&j->n, __ATOMIC_RELAXED);
	if (n > RUNNER_BATCH_MAX || k > RUNNER_BATCH_MAX - n)
		log_panic("%s: %u + %zu results in a batch", __func__, n, k);
	memcpy(&j->res[n], res, k * sizeof(*res));
	__atomic_store_n(&j->n, n + (uint32_t)k, __ATOMIC_RELEASE);
}

static int
worker_claimcmp(const void *a, const void *b)
{
	const struct qclaim *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * worker_message - deliver one message's claims (c[0..n)). If `fail` is
 * set, record that failure for all of them without trying.
 */
static void
worker_message(struct worker *w, const struct route *rt, struct qclaim *c,
    size_t n, struct wreport *rep, int fcode, const char *fstatus,
    const char *fwhy, bool fattempted, bool *down)
{
	struct qmsg		 m;
	struct qrcpt		*all = NULL, **mine;
	struct smtpc_rcpt	*sr;
	struct smtpc_msg	 sm;
	struct worker_body	 body;
	struct qresult		*res;
	char			 status[16], why[QUEUE_REPLY_MAX + 1];
	char			 relay[320];
	double			 t1, t2, delays[4];
	size_t			 nall, i, k, nmine = 0;
	int			 code = fcode;
	bool			 tried = false, hop_dsn = false;

	if (queue_get(w->q, c[0].id, &m, &all, &nall) != 0)
		return;			/* gone meanwhile */
	mine = xcalloc(n, sizeof(*mine));
	sr = xcalloc(n, sizeof(*sr));
	res = xcalloc(n, sizeof(*res));
	nmine = runner_claims_mine(c, n, all, nall, mine, sr);
	strl_copy(status, fstatus ? fstatus : "4.0.0", sizeof(status));
	strl_copy(why, fwhy ? fwhy : "", sizeof(why));
	strl_copy(relay, "none", sizeof(relay));
	if (nmine == 0)
		goto out;
	/* A cached connection the server closed while it sat idle (a
	 * restart within connection_reuse_time) would defer this message
	 * with "lost connection": take a new one instead. */
	if (fstatus == NULL && w->conn != NULL && !smtpc_alive(w->conn))
		worker_close(w, false);
	if (fstatus == NULL && w->conn == NULL &&
	    worker_connect(w, rt, c[0].domain, &code, status, why,
	    sizeof(why), down) != 0) {
		fstatus = status;
		fattempted = true;
	}
	t1 = clock_mono_secs();
	if (fstatus == NULL) {
		memset(&sm, 0, sizeof(sm));
		sm.sender = m.sender;
		sm.flags = m.flags;
		sm.envid = m.envid;
		sm.size = m.size;
		body.w = w;
		body.m = &m;
		body.next = 0;
		sm.body = worker_body_next;
		sm.rewind = worker_body_rewind;
		sm.body_arg = &body;
		sm.rcpt = sr;
		sm.nrcpt = nmine;
		strl_copy(relay, smtpc_peer(w->conn), sizeof(relay));
		tried = true;
		hop_dsn = smtpc_has_dsn(w->conn);
		if (smtpc_send(w->conn, &sm) != 0)
			worker_close(w, false);
		else
			worker_more_rcpts(w, &sm);
	}
	t2 = clock_mono_secs();
	/* queue (runner_result), connect (DNS, TCP, greeting, EHLO) and tls
	 * (STARTTLS to the EHLO after it) for the first message on a new
	 * connection or the first that a failed one was for, transfer. */
	delays[0] = 0;
	delays[1] = w->setup_pending ? w->setup_connect : 0;
	delays[2] = w->setup_pending ? w->setup_tls : 0;
	w->setup_pending = false;
	delays[3] = t2 - t1;
	for (i = 0, k = 0; i < nmine; i++) {
		int	 rcode = tried ? sr[i].code : code;
		const char *rst = tried ? sr[i].status : status;
		const char *rwhy = tried ? sr[i].reply : why;

		if (rst[0] == '\0')
			rst = rcode >= 500 ? "5.0.0" : rcode >= 200 &&
			    rcode < 300 ? "2.0.0" : "4.0.0";
		runner_result(w->conf, &m, mine[i], &c[i], rcode, rst, rwhy,
		    tried || fattempted, relay, delays, &res[k++]);
		res[k - 1].hop_dsn = tried && hop_dsn;
		switch (res[k - 1].kind) {
		case QRESULT_DELIVERED:
			rep->delivered++;
			break;
		case QRESULT_FAILED:
			rep->failed++;
			break;
		case QRESULT_HELD:
			rep->held++;
			break;
		default:
			rep->deferred++;
		}
	}
	worker_journal(w, res, k);
	/* Recorded with the rest of the batch: one commit, not one per
	 * message (a worker that dies meanwhile has its journal). */
	if (w->nres + k > w->rescap) {
		w->rescap = (w->nres + k) * 2;
		w->res = xreallocarray(w->res, w->rescap, sizeof(*w->res));
	}
	memcpy(w->res + w->nres, res, k * sizeof(*res));
	w->nres += k;
out:
	free(res);
	free(sr);
	free(mine);
	free(all);
}

static void
worker_batch(struct worker *w, struct wbatch *b, struct wreport *rep)
{
	size_t	i, j;
	bool	down = false;
	char	status[16], why[QUEUE_REPLY_MAX + 1];
	int	code = 0, rc;

	memset(rep, 0, sizeof(*rep));
	rep->magic = RUNNER_MAGIC;
	w->nres = 0;
	if (w->conn != NULL && strcmp(w->conn_key, b->route.key) != 0)
		worker_close(w, true);
	qsort(b->claim, b->n, sizeof(b->claim[0]), worker_claimcmp);
	for (i = 0; i < b->n; i = j) {
		for (j = i + 1; j < b->n && b->claim[j].id == b->claim[i].id;)
			j++;
		if (down) {
			/* The hop did not answer: the rest waits for the
			 * same retry, without a connection of its own. */
			worker_message(w, &b->route, &b->claim[i], j - i, rep,
			    code, status, why, false, &down);
			continue;
		}
		if (w->conn == NULL && worker_connect(w, &b->route,
		    b->claim[i].domain, &code, status, why, sizeof(why),
		    &down) != 0) {
			worker_message(w, &b->route, &b->claim[i], j - i, rep,
			    code, status, why, true, &down);
			if (down)
				rep->hop_down = 1;
			continue;
		}
		worker_message(w, &b->route, &b->claim[i], j - i, rep, 0, NULL,
		    NULL, false, &down);
		if (down)
			rep->hop_down = 1;
	}
	if (w->nres > 0) {
		rc = queue_claim_result(w->q, w->res, w->nres);
		if (rc != 0)
			log_warnx("%s: queue_claim_result: %s", __func__,
			    queue_errmsg(w->q));
		runner_bounce_done(w->bounce, rc == 0);
	}
	w->nres = 0;
	runner_mem_trim(w->q, RUNNER_MAP_KEEP_WORKER);
}

int
worker_main(struct conf *conf, int fd, struct wjournal *j)
{
	struct worker	 w;
	struct wbatch	*b = xmalloc(sizeof(*b));
	struct wreport	 rep;
	struct pollfd	 pfd;
	char		 err[1024];
	ssize_t		 n;
	int		 rc;

	memset(&w, 0, sizeof(w));
	w.conf = conf;
	w.jnl = j;
	w.chunk = xmalloc(QUEUE_CHUNK_SIZE);
	if (queue_open(conf->queue_dir, 0, conf->queue_map_size, &w.q, err,
	    sizeof(err)) != 0)
		fatalx("queue: %s", err);
	w.bounce = runner_bounce_new(conf);
	runner_bounce_attach(w.bounce, w.q);
	if ((w.dns = route_dns_new(conf, err, sizeof(err))) == NULL)
		fatalx("DNS: %s", err);
	if ((w.tlsa = route_tlsa_dns_new(conf, err, sizeof(err))) == NULL)
		fatalx("DNS (TLSA): %s", err);
	if ((w.sts = route_sts_new(conf, w.dns, w.q, err, sizeof(err))) ==
	    NULL)
		fatalx("DNS (MTA-STS): %s", err);
	w.stsp = xcalloc(1, sizeof(*w.stsp));
	worker_auth(&w);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, w.conn != NULL ?
		    (int)conf->connection_reuse_time * 1000 : -1);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == 0) {
			worker_close(&w, true);	/* idle too long */
			continue;
		}
		n = recv(fd, b, sizeof(*b), 0);
		if (n == 0 || (n == -1 && errno != EINTR))
			break;
		if (n < (ssize_t)offsetof(struct wbatch, claim) ||
		    b->magic != RUNNER_MAGIC || b->n > RUNNER_BATCH_MAX)
			fatalx("bad batch from the scheduler");
		worker_batch(&w, b, &rep);
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep))
			break;
	}
	worker_close(&w, true);
	route_dns_free(w.dns);
	route_tlsa_dns_free(w.tlsa);
	route_sts_free(w.sts);
	free(w.stsp);
	queue_close(w.q);
	runner_bounce_free(w.bounce);
	free(w.chunk);
	free(w.res);
	free(b);
	route_auth_free(&w.auth_user, &w.auth_pass);
	return 0;
}

/*
 * sched.c - the scheduler: when to try a recipient, and through which
 * worker.
 *
 * It claims due recipients (queue_claim_due: flushed domains first, then
 * the due index; never a scan), at most RUNNER_PENDING_MAX in hand, so a
 * flush of 100,000 recipients is fed in bounded rounds. Each claim is
 * routed without DNS (route_lookup) to its next-hop key; recipients wait
 * per hop, and a hop gets at most dest_concurrency workers at once. An
 * idle worker prefers the hop it last served, so its open connection is
 * reused. A hop whose addresses all refused or timed out is down until a
 * backoff (min_backoff doubling to max_backoff, with jitter): what waits
 * for it and what is claimed for it meanwhile is deferred to that time
 * without a connection of its own, so a dead destination costs one connect
 * per retry, not one per message.
 *
 * Workers are this process's children (fork, SOCK_SEQPACKET socketpair,
 * and a journal each in shared memory: struct wjournal). A worker that
 * dies is restarted; what its journal says it delivered (or had refused)
 * since its batch began is recorded (queue_claim_result), and the rest of
 * its claims are handed back at once (queue_claim_return, due now); the
 * lease (lease_time, renewed every third of
 * it while a live worker holds the claims) only covers the death of the
 * whole daemon. Timers held in memory (renewals, a hop's backoff, worker
 * restarts, the stop) run on the monotonic clock; what is stored (next
 * tries, lease ends) is wall-clock time, and a step of the wall clock is
 * noticed and made up for (sched_clock).
 *
 * `postern flush` wakes the scheduler through the datagram socket
 * wake.sock in the queue directory: "flush" resets every hop found down.
 * An ETRN's "flush DOMAIN..." resets only the hops the flushed domains'
 * claims reach (sched_hop_flushed): any client may ETRN a relay domain,
 * and must not cause a retry of every dead destination.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner_int.h"

#define SCHED_TICK_MS		1000
#define SCHED_STOP_SECONDS	30
#define SCHED_WAKE_SOCKET	"wake.sock"
#define SCHED_FLUSHED_MAX	256	/* ETRN-flushed domains remembered */
#define SCHED_STEP_MS		2000	/* wall against monotonic clock: a
					 * jump this big is a step */
#define SCHED_SHIFT_MAX		1000000	/* recipients re-timed after a
					 * backward step, at most */
#define SCHED_SHIFT_PASSES	2	/* again after a backward step, for
					 * results the old clock timed that
					 * were committed late */
#define SCHED_SHIFT_AGAIN	5	/* s between those passes */

/* A domain an ETRN flushed ("flush DOMAIN..."): the first flushed claim
 * of it routed to a hop newer than the hop's last reset resets that hop. */
struct sched_flushed {
	char		 domain[SMTP_DOMAIN_MAX + 1];
	bool		 sub;		/* "@domain": its subdomains too */
	uint64_t	 seq;
};

struct sched_hop {
	char			 key[300];
	struct route		 route;
	struct qclaim		*pending;
	size_t			 npending, cap;
	int			 active;
	int64_t			 down_until;	/* monotonic s */
	int64_t			 down_backoff;
	uint64_t		 flushes;	/* resets by a flush so far */
	uint64_t		 flush_seq;	/* the last flushed[] seq that
						 * reset it */
	struct sched_hop	*next;
};

struct sched_worker {
	pid_t		 pid;
	int		 fd;
	bool		 busy;
	struct sched_hop *hop;
	char		 lastkey[300];
	struct qclaim	 out[RUNNER_BATCH_MAX];
	size_t		 nout;
	struct wjournal	*jnl;		/* shared with the worker */
	int64_t		 restart_at;	/* monotonic s */
	int64_t		 started;	/* monotonic s */
	int		 backoff;
	uint64_t	 flushes;	/* its hop's flushes when it left */
};

struct sched {
	struct runner_bounce	*bounce;	/* the DSN hook on q */
	bool			 sliver;	/* a claim waits for room */
	struct sched_flushed	 flushed[SCHED_FLUSHED_MAX];	/* a ring */
	uint64_t		 flush_seq;	/* flushed[] entries so far */
	struct conf		*conf;
	const struct sched_opts	*opts;
	struct routes		*routes;
	struct queue		*q;
	struct sched_worker	*w;
	int			 nw;
	struct sched_hop	*hops;
	size_t			 npending;
	int			 wakefd, sigfd;
	bool			 stopping, more;
	int64_t			 stop_at, renew_at;	/* monotonic s */
	int64_t			 mono;		/* monotonic s, this round */
	int64_t			 clock_off;	/* wall - monotonic, ms */
	int64_t			 grace;		/* s: queue_claim_grace */
	int64_t			 grace_until;	/* monotonic s */
	int64_t			 shift_secs;	/* the last backward step */
	int64_t			 shift_at;	/* monotonic s: look again */
	int			 shift_left;	/* passes still to make */
	int64_t			 started;	/* SCHED_DOMAIN: take each once */
	size_t			 round;		/* the next claim's size */
	struct runner_stats	*stats;
	struct qresult		*res;		/* decided here, to record */
	size_t			 nres, rescap;
};

static struct sched_hop *
sched_hop_get(struct sched *s, const struct route *rt)
{
	struct sched_hop	*h;

	for (h = s->hops; h != NULL; h = h->next)
		if (strcmp(h->key, rt->key) == 0)
			return h;
	h = xcalloc(1, sizeof(*h));
	strl_copy(h->key, rt->key, sizeof(h->key));
	h->route = *rt;
	h->next = s->hops;
	s->hops = h;
	return h;
}

static void
sched_hop_push(struct sched *s, struct sched_hop *h, const struct qclaim *c)
{
	if (h->npending == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->pending = xreallocarray(h->pending, h->cap,
		    sizeof(*h->pending));
	}
	h->pending[h->npending++] = *c;
	s->npending++;
}

/* sched_return - hand claims back, due now (their runner died or we
 * stop); a failure they were holding up is reported then. */
static int
sched_return(struct sched *s, const struct qclaim *c, size_t n)
{
	int	rc;

	rc = queue_claim_return(s->q, c, n, (int64_t)clock_now());
	runner_bounce_done(s->bounce, rc == 0);
	return rc;
}

/* sched_results_flush - record what the scheduler decided itself (or
 * found in a dead worker's journal), in one transaction (a hop that is
 * down may defer thousands at once). Returns how many were recorded (not
 * stale). */
static size_t
sched_results_flush(struct sched *s)
{
	size_t	i, nrec = 0;
	int	rc;

	if (s->nres == 0)
		return 0;
	rc = queue_claim_result(s->q, s->res, s->nres);
	if (rc != 0)
		log_warnx("queue_claim_result: %s", queue_errmsg(s->q));
	runner_bounce_done(s->bounce, rc == 0);
	for (i = 0; i < s->nres; i++) {
		if (rc != 0 || s->res[i].rc != 0)
			continue;
		nrec++;
		switch (s->res[i].kind) {
		case QRESULT_DELIVERED:
			s->stats->delivered++;
			break;
		case QRESULT_FAILED:
			s->stats->failed++;
			break;
		case QRESULT_HELD:
			s->stats->held++;
			break;
		default:
			s->stats->deferred++;
		}
	}
	s->nres = 0;
	return nrec;
}

static struct qresult *
sched_result_slot(struct sched *s)
{
	if (s->nres == s->rescap) {
		s->rescap = s->rescap ? s->rescap * 2 : 256;
		s->res = xreallocarray(s->res, s->rescap, sizeof(*s->res));
	}
	return &s->res[s->nres++];
}

/* sched_record1 - a result decided here, without a worker: expired, or
 * deferred because its hop is down. Recorded by sched_results_flush. */
static void
sched_record1(struct sched *s, const struct qclaim *c, int code,
    const char *status, const char *why, bool attempted, int64_t not_before)
{
	struct qmsg	 m;
	struct qrcpt	*r = NULL;
	double		 delays[4] = { 0, 0, 0, 0 };
	size_t		 n;

	if (queue_get(s->q, c->id, &m, &r, &n) != 0 || c->idx >= n) {
		free(r);
		return;
	}
	if (r[c->idx].state == QRCPT_ACTIVE && r[c->idx].claim == c->token) {
		struct qresult *res = sched_result_slot(s);

		runner_result(s->conf, &m, &r[c->idx], c, code, status, why,
		    attempted, "none", delays, res);
		/* Waiting for a hop that is down: not before it is retried. */
		if (res->kind == QRESULT_DEFERRED && res->next_try < not_before)
			res->next_try = not_before;
	}
	free(r);
}

/* sched_hold - a held domain's recipient the timer found: back to
 * waiting for its site, no attempt, no delivery log line. */
static void
sched_hold(struct sched *s, const struct qclaim *c)
{
	struct qmsg	 m;
	struct qrcpt	*r = NULL;
	struct qresult	*res;
	size_t		 n;

	if (queue_get(s->q, c->id, &m, &r, &n) != 0 || c->idx >= n) {
		free(r);
		return;
	}
	res = sched_result_slot(s);
	memset(res, 0, sizeof(*res));
	res->id = c->id;
	res->idx = c->idx;
	res->token = c->token;
	res->kind = QRESULT_HELD;
	res->when = (int64_t)clock_now();
	res->next_try = m.arrival + s->conf->hold_lifetime;
	if (res->next_try <= res->when)
		res->next_try = res->when + 1;
	strl_copy(res->status, r[c->idx].status, sizeof(res->status));
	strl_copy(res->reply, r[c->idx].reply, sizeof(res->reply));
	free(r);
}

/* sched_flush_match - the newest ETRN flush (its seq) that domain is
 * in; 0: none. */
static uint64_t
sched_flush_match(const struct sched *s, const char *domain)
{
	const struct sched_flushed	*f;
	size_t				 i, n, dl, fl;
	uint64_t			 best = 0;

	n = s->flush_seq < SCHED_FLUSHED_MAX ? s->flush_seq :
	    SCHED_FLUSHED_MAX;
	dl = strlen(domain);
	for (i = 0; i < n; i++) {
		f = &s->flushed[i];
		fl = strlen(f->domain);
		if (f->seq > best && (strcasecmp(domain, f->domain) == 0 ||
		    (f->sub && dl > fl && domain[dl - fl - 1] == '.' &&
		    strcasecmp(domain + dl - fl, f->domain) == 0)))
			best = f->seq;
	}
	return best;
}

/* sched_hop_reset - a flush says the hop may be back: try it now, and
 * outdate the verdict of a batch out on it (sched_report). */
static void
sched_hop_reset(struct sched_hop *h)
{
	h->down_until = 0;
	h->flushes++;
}

/*
 * sched_hop_flushed - the first claim an ETRN flushed that comes to a hop
 * after the flush resets the hop: only the hops the flushed domains' mail
 * goes to (their routes, a caller's address included), not every hop
 * found down, since any client may ETRN a relay domain.
 */
static void
sched_hop_flushed(struct sched *s, struct sched_hop *h, const struct qclaim *c)
{
	uint64_t	seq;

	if (!c->flushed || s->flush_seq == 0 ||
	    (seq = sched_flush_match(s, c->domain)) <= h->flush_seq)
		return;
	h->flush_seq = seq;
	sched_hop_reset(h);
}

/* sched_wake_domains - "flush DOMAIN...": remember each, "@" for its
 * subdomains too; the oldest are forgotten first. */
static void
sched_wake_domains(struct sched *s, char *list)
{
	struct sched_flushed	*f;
	char			*tok, *save = NULL;
	bool			 sub;

	for (tok = strtok_r(list, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if ((sub = tok[0] == '@'))
			tok++;
		if (tok[0] == '\0' || strlen(tok) > SMTP_DOMAIN_MAX)
			continue;
		s->flush_seq++;
		f = &s->flushed[(s->flush_seq - 1) % SCHED_FLUSHED_MAX];
		strl_copy(f->domain, tok, sizeof(f->domain));
		f->sub = sub;
		f->seq = s->flush_seq;
	}
}

/* sched_take - route one claim: to a hop's waiting list, or decided. */
static void
sched_take(struct sched *s, const struct qclaim *c, int64_t now)
{
	struct route		 rt;
	struct sched_hop	*h;
	char			 why[128];

	if (c->kind == QCLAIM_EXPIRE) {
		sched_record1(s, c, 500, "4.4.7", "held for its site longer "
		    "than hold_lifetime", false, 0);
		return;
	}
	route_lookup(s->conf, s->routes, c->domain, &rt);
	if (rt.kind == ROUTE_HOLD || rt.kind == ROUTE_CALLER) {
		if (!c->flushed) {
			sched_hold(s, c);
			return;
		}
		/* Flushed (operator, ETRN): by its routes_file entry when
		 * it has one, else to its MX; never relayhost. An
		 * authenticated ETRN of a "caller:PORT" domain: to the
		 * caller's address (the flush carried it). */
		if (c->caller[0] == '\0' || !route_to_caller(s->conf,
		    s->routes, c->domain, c->caller, &rt))
			route_release(s->conf, s->routes, c->domain, &rt);
	}
	h = sched_hop_get(s, &rt);
	sched_hop_flushed(s, h, c);
	if (h->down_until > s->mono) {
		bsnprintf(why, sizeof(why), "%s is down: not tried until the "
		    "next retry", h->key);
		sched_record1(s, c, 0, "4.4.1", why, false,
		    now + (h->down_until - s->mono));
		return;
	}
	sched_hop_push(s, h, c);
}

static void
sched_claim(struct sched *s, int64_t now)
{
	struct qclaim	*c;
	size_t		 room, n = 0, i, idle = 0, want;
	int		 rc, k;
	bool		 starve;

	s->more = false;
	if (s->stopping || s->npending >= RUNNER_PENDING_MAX)
		return;
	for (k = 0; k < s->nw; k++)
		if (s->w[k].fd >= 0 && !s->w[k].busy)
			idle++;
	room = RUNNER_PENDING_MAX - s->npending;
	if (s->round < RUNNER_CLAIM_FIRST)
		s->round = RUNNER_CLAIM_FIRST;
	/* Workers waiting for work get it one batch a claim: each claim
	 * is short, and each batch leaves as soon as it is claimed. */
	starve = s->npending < idle * RUNNER_BATCH_MAX;
	want = starve ? RUNNER_CLAIM_FIRST : s->round;
	/* A sliver of room (less than a batch, less than we want) would
	 * make queue_claim_due take part of a message whose recipients
	 * alone fill it; the rest, claimed a moment later, would be another
	 * round and another DSN for that message. Wait for results to free
	 * room: the workers are busy with what is in hand. */
	if (room < want && room < RUNNER_BATCH_MAX) {
		s->sliver = true;	/* sched_report: claim again */
		return;
	}
	if (room > want)
		room = want;
	c = xcalloc(room, sizeof(*c));
	if (s->opts->mode == SCHED_DOMAIN)
		rc = queue_claim_domain(s->q, s->opts->domain, s->opts->sub,
		    true, s->started, now, s->conf->lease_time, c, room, &n);
	else
		rc = queue_claim_due(s->q, now, s->conf->lease_time, c, room,
		    &n);
	if (rc != 0)
		log_warnx("claim: %s", queue_errmsg(s->q));
	s->stats->taken += n;
	for (i = 0; i < n; i++)
		sched_take(s, &c[i], now);
	sched_results_flush(s);
	/* Anything taken: there may be more (a claim stops short of the
	 * limit rather than split a message); nothing: idle until a wake or
	 * the tick. */
	s->more = n > 0;
	/* Slow start: a flush or a backlog starts with one batch for each
	 * idle worker, so the first deliveries do not wait for a long claim
	 * (which also holds the queue's write lock against the workers'
	 * results); once all are busy, while claims take something the
	 * round doubles, to RUNNER_CLAIM_ROUND, to keep work in hand. */
	if (!s->more)
		s->round = RUNNER_CLAIM_FIRST;
	else if (!starve)
		s->round = s->round * 2 > RUNNER_CLAIM_ROUND ?
		    RUNNER_CLAIM_ROUND : s->round * 2;
	free(c);
	runner_mem_trim(s->q, RUNNER_MAP_KEEP);
}

static void
sched_worker_spawn(struct sched *s, struct sched_worker *w)
{
	int	sv[2], i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		w->restart_at = s->mono + 1;
		return;
	}
	if ((w->pid = fork()) == -1) {
		log_warn("fork worker");
		close(sv[0]);
		close(sv[1]);
		w->restart_at = s->mono + 1;
		return;
	}
	if (w->pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		close(sv[0]);
		for (i = 0; i < s->nw; i++)
			if (s->w[i].fd >= 0)
				close(s->w[i].fd);
		if (s->wakefd >= 0)
			close(s->wakefd);
		log_init("runner", s->conf->log);
		_exit(worker_main(s->conf, sv[1], w->jnl));
	}
	close(sv[1]);
	w->fd = sv[0];
	w->started = s->mono;
	w->busy = false;
	w->hop = NULL;
	w->nout = 0;
}

/* sched_dispatch - give idle workers work: the hop they last served
 * first (its connection is open), then any hop with room. */
static void
sched_dispatch(struct sched *s)
{
	struct sched_hop	*h, *pick;
	struct wbatch		*b;
	int			 i;
	size_t			 k, take;

	if (s->stopping)
		return;
	b = xcalloc(1, sizeof(*b));
	for (i = 0; i < s->nw; i++) {
		struct sched_worker *w = &s->w[i];

		if (w->busy || w->fd < 0)
			continue;
		pick = NULL;
		for (h = s->hops; h != NULL; h = h->next) {
			if (h->npending == 0 || h->down_until > s->mono ||
			    h->active >= s->conf->dest_concurrency)
				continue;
			if (strcmp(h->key, w->lastkey) == 0) {
				pick = h;
				break;
			}
			if (pick == NULL)
				pick = h;
		}
		if (pick == NULL)
			break;
		take = pick->npending < RUNNER_BATCH_MAX ? pick->npending :
		    RUNNER_BATCH_MAX;
		/* Cut at a message boundary: one transaction a message. */
		if (take < pick->npending) {
			size_t	cut = take;

			while (cut > 0 && pick->pending[cut].id ==
			    pick->pending[cut - 1].id)
				cut--;
			if (cut > 0)
				take = cut;
		}
		memset(b, 0, sizeof(*b));
		b->magic = RUNNER_MAGIC;
		b->n = (uint32_t)take;
		b->route = pick->route;
		memcpy(b->claim, pick->pending, take * sizeof(b->claim[0]));
		/* The worker waits for this batch: its journal is ours. */
		__atomic_store_n(&w->jnl->n, 0, __ATOMIC_RELAXED);
		if (send(w->fd, b, offsetof(struct wbatch, claim) +
		    take * sizeof(b->claim[0]), MSG_NOSIGNAL) == -1) {
			log_warn("send batch to worker %ld", (long)w->pid);
			continue;
		}
		memcpy(w->out, b->claim, take * sizeof(w->out[0]));
		w->nout = take;
		w->busy = true;
		w->flushes = pick->flushes;
		w->hop = pick;
		strl_copy(w->lastkey, pick->key, sizeof(w->lastkey));
		pick->active++;
		for (k = take; k < pick->npending; k++)
			pick->pending[k - take] = pick->pending[k];
		pick->npending -= take;
		s->npending -= take;
	}
	free(b);
}

/* sched_hop_down - no address answered: back the whole hop off. */
static void
sched_hop_down(struct sched *s, struct sched_hop *h, int64_t now)
{
	size_t	i;
	int64_t	wait;
	char	why[400];

	h->down_backoff = h->down_backoff == 0 ? s->conf->min_backoff :
	    h->down_backoff * 2;
	if (h->down_backoff > s->conf->max_backoff)
		h->down_backoff = s->conf->max_backoff;
	wait = runner_result_backoff(s->conf, 1, 0) * h->down_backoff /
	    (s->conf->min_backoff > 0 ? s->conf->min_backoff : 1);
	/* Down by the monotonic clock; the recipients' next try (stored)
	 * by the wall clock. */
	h->down_until = clock_mono_ms() / 1000 + wait;
	log_info("next hop %s does not answer: backed off %lld s, %zu "
	    "waiting", h->key, (long long)wait, h->npending);
	bsnprintf(why, sizeof(why), "%s is down: not tried until the next "
	    "retry", h->key);
	for (i = 0; i < h->npending; i++)
		sched_record1(s, &h->pending[i], 0, "4.4.1", why, false,
		    now + wait);
	sched_results_flush(s);
	s->npending -= h->npending;
	h->npending = 0;
}

static void
sched_report(struct sched *s, struct sched_worker *w, int64_t now)
{
	struct wreport	rep;
	ssize_t		n;

	n = recv(w->fd, &rep, sizeof(rep), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != sizeof(rep) || rep.magic != RUNNER_MAGIC) {
		/* EOF: the worker died; SIGCHLD does the rest. */
		close(w->fd);
		w->fd = -1;
		return;
	}
	s->stats->delivered += rep.delivered;
	s->stats->deferred += rep.deferred;
	s->stats->failed += rep.failed;
	s->stats->held += rep.held;
	w->busy = false;
	w->nout = 0;
	if (s->sliver) {
		/* A claim waited for room: a batch will leave now. */
		s->sliver = false;
		s->more = true;
	}
	if (w->hop != NULL) {
		w->hop->active--;
		/* A flush of this hop (an operator's, or an ETRN of a
		 * domain routed here: "it is back") that came while this
		 * batch was out outdates its verdict: the flushed mail is
		 * tried rather than deferred unseen. */
		if (rep.hop_down && w->flushes == w->hop->flushes)
			sched_hop_down(s, w->hop, now);
		else if (rep.delivered + rep.failed > 0)
			w->hop->down_backoff = 0;
	}
	w->hop = NULL;
}

/*
 * sched_worker_lost - a worker died (or was stopped) with a batch out:
 * record the results its journal holds for claims of that batch, then
 * hand the rest back now, not at lease end. Results its own commit
 * already recorded are stale and change nothing, and so are those claims
 * at the hand-back. Returns how many results were recorded here.
 */
static size_t
sched_worker_lost(struct sched *s, struct sched_worker *w)
{
	const struct wjournal	*j = w->jnl;
	struct qresult		*res;
	uint32_t		 n, i;
	size_t			 k, rec;

	sched_results_flush(s);		/* ours first: rec counts the journal's */
	n = __atomic_load_n(&j->n, __ATOMIC_ACQUIRE);
	if (n > RUNNER_BATCH_MAX)
		n = 0;			/* cannot be: trust none of it */
	for (i = 0; i < n; i++) {
		const struct qresult *r = &j->res[i];

		/* Only a result for a claim it held: the journal is the
		 * worker's memory, and a worker's word is checked. */
		for (k = 0; k < w->nout; k++)
			if (w->out[k].id == r->id && w->out[k].idx == r->idx &&
			    w->out[k].token == r->token)
				break;
		if (k == w->nout || r->kind > QRESULT_HELD)
			continue;
		res = sched_result_slot(s);
		*res = *r;
		res->status[sizeof(res->status) - 1] = '\0';
		res->reply[sizeof(res->reply) - 1] = '\0';
	}
	rec = sched_results_flush(s);
	if (sched_return(s, w->out, w->nout) != 0)
		log_warnx("unclaim: %s", queue_errmsg(s->q));
	return rec;
}

static void
sched_reap(struct sched *s)
{
	pid_t	pid;
	int	status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < s->nw; i++) {
			struct sched_worker *w = &s->w[i];

			if (w->pid != pid)
				continue;
			w->pid = 0;
			if (w->fd >= 0) {
				close(w->fd);
				w->fd = -1;
			}
			if (w->nout > 0) {
				size_t	rec = sched_worker_lost(s, w);

				if (rec > 0)
					log_warnx("worker %ld died (status "
					    "%d): %zu recipients handed back, "
					    "%zu results recorded from its "
					    "journal", (long)pid, status,
					    w->nout - rec, rec);
				else
					log_warnx("worker %ld died (status "
					    "%d): %zu recipients handed back",
					    (long)pid, status, w->nout);
				w->nout = 0;
			} else if (!s->stopping)
				log_warnx("worker %ld died (status %d)",
				    (long)pid, status);
			if (w->hop != NULL)
				w->hop->active--;
			w->hop = NULL;
			w->busy = false;
			if (clock_mono_ms() / 1000 - w->started > 60)
				w->backoff = 0;	/* it had been fine */
			w->restart_at = clock_mono_ms() / 1000 + w->backoff;
			if (w->backoff < 60)
				w->backoff = w->backoff ? w->backoff * 2 : 1;
			s->more = true;
		}
	}
}

/* sched_renew - push the leases of everything we hold: every third of a
 * lease by the monotonic clock, and at once after a step (renew_at 0). */
static void
sched_renew(struct sched *s, time_t now)
{
	struct sched_hop	*h;
	int			 i;
	int64_t			 until = (int64_t)now + s->conf->lease_time;

	if (s->mono < s->renew_at)
		return;
	s->renew_at = s->mono + (s->conf->lease_time / 3 > 0 ?
	    s->conf->lease_time / 3 : 1);
	for (i = 0; i < s->nw; i++)
		if (s->w[i].nout > 0)
			(void)queue_claim_renew(s->q, s->w[i].out, s->w[i].nout,
			    until);
	for (h = s->hops; h != NULL; h = h->next)
		if (h->npending > 0)
			(void)queue_claim_renew(s->q, h->pending, h->npending,
			    until);
}

/*
 * sched_clock - notice a step of the wall clock (date -s, NTP stepping):
 * the wall clock moved against the monotonic one since the last round.
 * Leases and next tries are stored by the wall clock (they must outlive
 * the process), so:
 *  - forward: every lease looks expired, though its holder (our workers,
 *    a reverse session) is alive and renews on a monotonic timer. Ours are
 *    renewed now, and for a lease_time the due walk honours leases that
 *    ended less than the step ago (queue_claim_grace): no recipient out on
 *    a live lease is taken again and delivered twice. What waited for a
 *    retry is due at once: each such recipient is tried once, not more.
 *  - back: leases look longer (harmless); whatever the old clock timed
 *    (queued mail, retries) would wait the step's length longer, so it is
 *    moved that much earlier (queue_claim_shift), now and twice more a few
 *    seconds later for results read from the old clock and committed
 *    after the first pass. Site holds may end as much later.
 * A slew (NTP's adjtime) moves far less than SCHED_STEP_MS a round.
 */
static size_t
sched_shift(struct sched *s, int64_t now, int64_t secs)
{
	size_t	n = 0;

	if (queue_claim_shift(s->q, now, secs, 2 * s->conf->max_backoff +
	    s->conf->lease_time, SCHED_SHIFT_MAX, &n) != 0)
		log_warnx("re-timing after a clock step: %s",
		    queue_errmsg(s->q));
	return n;
}

static void
sched_clock(struct sched *s, int64_t now)
{
	int64_t	off, d, secs;
	size_t	n = 0;

	off = clock_wall_ms() - clock_mono_ms();
	d = off - s->clock_off;
	s->clock_off = off;
	if (s->grace > 0 && s->mono >= s->grace_until) {
		s->grace = 0;
		queue_claim_grace(s->q, 0);
	}
	if (s->shift_left > 0 && s->mono >= s->shift_at) {
		/* A worker or the listener may have read the old clock just
		 * before the step and committed after the first pass. */
		s->shift_left--;
		s->shift_at = s->mono + SCHED_SHIFT_AGAIN;
		if ((n = sched_shift(s, now, s->shift_secs)) > 0) {
			log_warnx("wall clock stepped back: %zu more waiting "
			    "recipients moved %lld s earlier", n,
			    (long long)s->shift_secs);
			s->more = true;
		}
	}
	if (d > -SCHED_STEP_MS && d < SCHED_STEP_MS)
		return;
	secs = ((d > 0 ? d : -d) + 999) / 1000;
	if (d > 0) {
		s->grace += secs;
		s->grace_until = s->mono + (s->conf->lease_time > 0 ?
		    s->conf->lease_time : 1);
		queue_claim_grace(s->q, s->grace);
		log_warnx("wall clock stepped forward by %lld s: leases "
		    "renewed, and honoured %lld s past their end for %lld s",
		    (long long)secs, (long long)s->grace,
		    (long long)(s->grace_until - s->mono));
	} else {
		/* Leases renewed since a forward step are as far ahead as
		 * the clock came back: the grace shrinks by as much. */
		s->grace = s->grace > secs ? s->grace - secs : 0;
		queue_claim_grace(s->q, s->grace);
		n = sched_shift(s, now, secs);
		s->shift_secs = secs;
		s->shift_left = SCHED_SHIFT_PASSES;
		s->shift_at = s->mono + SCHED_SHIFT_AGAIN;
		log_warnx("wall clock stepped back by %lld s: %zu waiting "
		    "recipients moved %lld s earlier", (long long)secs, n,
		    (long long)secs);
	}
	s->renew_at = 0;
	s->more = true;
}

/* sched_wake_addr - the wake socket's address; false if it does not fit. */
static bool
sched_wake_addr(struct sockaddr_un *sun, const char *queue_dir)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return bsnprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s",
	    queue_dir, SCHED_WAKE_SOCKET);
}

void
sched_wake(int fd, const char *queue_dir, const char *what)
{
	struct sockaddr_un	sun;
	int			own = -1;

	if (!sched_wake_addr(&sun, queue_dir))
		return;
	if (fd < 0 && (fd = own = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC,
	    0)) == -1)
		return;
	(void)sendto(fd, what, strlen(what), MSG_DONTWAIT,
	    (struct sockaddr *)&sun, sizeof(sun));
	if (own >= 0)
		close(own);
}

static int
sched_wake_open(const struct conf *c)
{
	struct sockaddr_un	sun;
	int			fd;

	if (!sched_wake_addr(&sun, c->queue_dir))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	(void)unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("bind %s", sun.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

static bool
sched_busy(const struct sched *s)
{
	int	i;

	for (i = 0; i < s->nw; i++)
		if (s->w[i].busy)
			return true;
	return false;
}

int
sched_run(struct conf *conf, const struct sched_opts *opts,
    struct runner_stats *stats)
{
	struct sched		 s;
	struct sched_hop	*h, *hn;
	struct pollfd		*pfd;
	struct wjournal		*jnl;
	sigset_t		 mask;
	char			 err[1024];
	int			 i, n, timeout;
	bool			 claimed_any;

	memset(&s, 0, sizeof(s));
	memset(stats, 0, sizeof(*stats));
	s.conf = conf;
	s.opts = opts;
	s.stats = stats;
	s.wakefd = -1;
	s.clock_off = clock_wall_ms() - clock_mono_ms();
	s.mono = clock_mono_ms() / 1000;
	s.started = (int64_t)clock_now();
	if (opts->mode == SCHED_DOMAIN) {
		/* Each recipient once: what this run tries has last_try >=
		 * started, what was tried before has less. Start on a fresh
		 * second so the two cannot share one (at most a second). */
		struct timespec	ts = { 0, 10 * 1000 * 1000 };
		int		k;

		for (k = 0; k < 150 && (int64_t)clock_now() == s.started; k++)
			nanosleep(&ts, NULL);
		s.started = (int64_t)clock_now();
	}
	if (queue_open(conf->queue_dir, 0, conf->queue_map_size, &s.q, err,
	    sizeof(err)) != 0) {
		log_warnx("queue: %s", err);
		return 1;
	}
	if (conf->routes_file != NULL &&
	    (s.routes = routes_load(conf->routes_file, err, sizeof(err))) ==
	    NULL) {
		log_warnx("routes_file: %s", err);
		queue_close(s.q);
		return 1;
	}
	s.bounce = runner_bounce_new(conf);
	runner_bounce_attach(s.bounce, s.q);
	if (opts->mode == SCHED_DAEMON)
		s.wakefd = sched_wake_open(conf);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	s.nw = conf->workers;
	s.w = xcalloc((size_t)s.nw, sizeof(*s.w));
	/* The journals: shared, so a worker's writes outlive it. */
	jnl = mmap(NULL, (size_t)s.nw * sizeof(*jnl), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (jnl == MAP_FAILED)
		fatal("mmap worker journals");
	for (i = 0; i < s.nw; i++) {
		s.w[i].fd = -1;
		s.w[i].jnl = &jnl[i];
	}
	for (i = 0; i < s.nw; i++)
		sched_worker_spawn(&s, &s.w[i]);
	pfd = xcalloc((size_t)s.nw + 2, sizeof(*pfd));
	s.more = true;
	claimed_any = false;

	for (;;) {
		time_t	now = clock_now();

		s.mono = clock_mono_ms() / 1000;
		sched_clock(&s, (int64_t)now);
		/* Leases first: after a step they must be pushed before a
		 * claim could take them. */
		sched_renew(&s, now);
		sched_reap(&s);
		for (i = 0; i < s.nw; i++)
			if (s.w[i].pid == 0 && s.w[i].fd < 0 && !s.stopping &&
			    s.mono >= s.w[i].restart_at)
				sched_worker_spawn(&s, &s.w[i]);
		if (s.more || s.npending == 0)
			sched_claim(&s, (int64_t)now);
		claimed_any |= s.npending > 0;
		sched_dispatch(&s);
		if (s.stopping && !sched_busy(&s))
			break;
		if (s.stopping && s.mono >= s.stop_at)
			break;
		if (opts->mode != SCHED_DAEMON && !s.more &&
		    s.npending == 0 && !sched_busy(&s))
			break;
		n = 0;
		for (i = 0; i < s.nw; i++)
			if (s.w[i].fd >= 0) {
				pfd[n].fd = s.w[i].fd;
				pfd[n].events = POLLIN;
				n++;
			}
		pfd[n].fd = s.sigfd;
		pfd[n++].events = POLLIN;
		if (s.wakefd >= 0) {
			pfd[n].fd = s.wakefd;
			pfd[n++].events = POLLIN;
		}
		timeout = s.more ? 0 : opts->progress != NULL ?
		    SCHED_PROGRESS_MS : SCHED_TICK_MS;
		if (poll(pfd, (nfds_t)n, timeout) == -1 && errno != EINTR)
			fatal("poll");
		for (i = 0; i < n; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (pfd[i].fd == s.sigfd) {
				struct signalfd_siginfo si;

				while (read(s.sigfd, &si, sizeof(si)) ==
				    sizeof(si)) {
					if (si.ssi_signo == SIGTERM ||
					    si.ssi_signo == SIGINT) {
						s.stopping = true;
						s.stop_at = clock_mono_ms() /
						    1000 + SCHED_STOP_SECONDS;
					}
				}
				continue;
			}
			if (pfd[i].fd == s.wakefd) {
				char	buf[SCHED_WAKE_MAX + 1];
				ssize_t	len;

				while ((len = recv(s.wakefd, buf,
				    sizeof(buf) - 1, 0)) > 0) {
					buf[len] = '\0';
					/* An ETRN's: only the hops of the
					 * domains it flushed, when their
					 * claims come (sched_hop_flushed). */
					if (strncmp(buf, "flush ", 6) == 0) {
						sched_wake_domains(&s, buf + 6);
						continue;
					}
					/* An operator's flush: try every hop
					 * found down again now. */
					if (strcmp(buf, "flush") != 0)
						continue;
					for (h = s.hops; h != NULL;
					    h = h->next)
						sched_hop_reset(h);
				}
				s.more = true;
				continue;
			}
			for (int k = 0; k < s.nw; k++)
				if (s.w[k].fd == pfd[i].fd)
					sched_report(&s, &s.w[k], clock_now());
		}
		if (opts->progress != NULL)
			opts->progress(opts->progress_arg, stats);
	}
	(void)claimed_any;
	/* What is claimed and not out goes back now; workers stop. */
	for (h = s.hops; h != NULL; h = hn) {
		hn = h->next;
		if (h->npending > 0)
			(void)sched_return(&s, h->pending, h->npending);
		free(h->pending);
		free(h);
	}
	for (i = 0; i < s.nw; i++) {
		if (s.w[i].fd >= 0)
			close(s.w[i].fd);	/* EOF: the worker exits */
		if (s.w[i].pid > 0 && s.w[i].busy)
			kill(s.w[i].pid, SIGTERM);
	}
	for (i = 0; i < s.nw; i++)
		if (s.w[i].pid > 0) {
			(void)waitpid(s.w[i].pid, NULL, 0);
			if (s.w[i].nout > 0)
				(void)sched_worker_lost(&s, &s.w[i]);
		}
	if (s.wakefd >= 0) {
		struct sockaddr_un	sun;

		close(s.wakefd);
		if (sched_wake_addr(&sun, conf->queue_dir))
			(void)unlink(sun.sun_path);
	}
	close(s.sigfd);
	free(pfd);
	free(s.w);
	munmap(jnl, (size_t)s.nw * sizeof(*jnl));
	free(s.res);
	routes_free(s.routes);
	queue_close(s.q);
	runner_bounce_free(s.bounce);
	return 0;
}

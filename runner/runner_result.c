/*
 * runner_result.c - what a reply means for a recipient (RFC 5321 §4.2.5,
 * §4.5.4): 2xx delivered; 5xx failed; 4xx or no reply deferred, with
 * exponential backoff between min_backoff and max_backoff and jitter (so a
 * destination that comes back is not hit by everything in one second);
 * past max_queue_lifetime failed with the status of the last temporary
 * error, 4.4.7 when there was none (RFC 3463 prefers the real problem).
 * A recipient held for its site that is flushed and deferred goes back to
 * waiting for its site instead of a timer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "runner_int.h"

int64_t
runner_result_backoff(const struct conf *c, uint32_t attempts, uint64_t seed)
{
	int64_t		d = c->min_backoff > 0 ? c->min_backoff : 1;
	uint32_t	r, i;

	for (i = 1; i < attempts && d < c->max_backoff; i++)
		d *= 2;
	if (d > c->max_backoff)
		d = c->max_backoff;
	if (seed != 0) {
		/* The same message and try: the same jitter, so recipients
		 * deferred together come back together (one transaction). */
		uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (attempts + 1);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		r = (uint32_t)(z ^ (z >> 31));
	} else if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	/* +-20%, rounded: even a 2 s backoff keeps its size. */
	d = (int64_t)((double)d * (0.8 + 0.4 * ((double)r / UINT32_MAX)) +
	    0.5);
	return d < 1 ? 1 : d;
}

/* runner_arrival - when m arrived: to the microsecond from its id (a
 * microsecond stamp) when that agrees with its arrival second. */
static double
runner_arrival(const struct qmsg *m)
{
	double	us = (double)m->id / 1e6;

	if (us >= (double)m->arrival && us < (double)m->arrival + 2)
		return us;
	return (double)m->arrival;
}

void
runner_result(const struct conf *c, const struct qmsg *m,
    const struct qrcpt *r, const struct qclaim *cl, int code,
    const char *status, const char *reply, bool attempted, const char *relay,
    double delays[4], struct qresult *out)
{
	int64_t		 now = (int64_t)clock_now();
	uint32_t	 attempts = r->attempts + (attempted ? 1 : 0);
	const char	*st = "deferred";
	struct timespec	 ts;
	double		 delay, spent;

	memset(out, 0, sizeof(*out));
	out->id = cl->id;
	out->idx = cl->idx;
	out->token = cl->token;
	out->when = now;
	out->attempted = attempted;
	strl_copy(out->status, status, sizeof(out->status));
	strl_copy(out->reply, reply, sizeof(out->reply));
	/* A held domain whose MX is us waits for its site, never bounces
	 * for it (RFC 5321 §5.1 would make it a loop). */
	if ((r->flags & QRCPT_F_SITE) && strcmp(status, "5.4.6") == 0)
		code = 0;
	if (code >= 200 && code < 300) {
		out->kind = QRESULT_DELIVERED;
		st = "sent";
	} else if (code >= 500) {
		out->kind = QRESULT_FAILED;
		/* Failed with a temporary status: it ran out of time. */
		st = status[0] == '4' ? "expired" : "bounced";
	} else if (now >= m->arrival + c->max_queue_lifetime) {
		out->kind = QRESULT_FAILED;
		st = "expired";
		if (status[0] != '4')
			strl_copy(out->status, r->status[0] == '4' ?
			    r->status : "4.4.7", sizeof(out->status));
	} else if (r->flags & QRCPT_F_SITE) {
		out->kind = QRESULT_HELD;
		out->next_try = m->arrival + c->hold_lifetime;
		if (out->next_try <= now)
			out->next_try = now + 1;
		st = "deferred";
	} else {
		out->kind = QRESULT_DEFERRED;
		out->next_try = now + runner_result_backoff(c, attempts, m->id);
	}
	/* delay= from arrival; the queue part of delays= is what the other
	 * three (this attempt's) leave of it. */
	clock_gettime(CLOCK_REALTIME, &ts);
	delay = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 -
	    runner_arrival(m);
	if (delay < 0)
		delay = 0;
	spent = delays[1] + delays[2] + delays[3];
	delays[0] = delay > spent ? delay - spent : 0;
	dlog_attempt(m, r, relay, delay, delays, attempts, out->status, st,
	    reply);
}

size_t
runner_claims_mine(struct qclaim *c, size_t n, struct qrcpt *all,
    size_t nall, struct qrcpt **mine, struct smtpc_rcpt *sr)
{
	size_t	i, k = 0;

	for (i = 0; i < n; i++) {
		if (c[i].idx >= nall || all[c[i].idx].state != QRCPT_ACTIVE ||
		    all[c[i].idx].claim != c[i].token)
			continue;	/* stale: another runner has it */
		c[k] = c[i];
		mine[k] = &all[c[i].idx];
		sr[k].addr = mine[k]->addr;
		sr[k].orcpt = mine[k]->orcpt;
		sr[k].notify = mine[k]->notify;
		k++;
	}
	return k;
}

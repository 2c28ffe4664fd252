/*
 * runner_int.h - what the scheduler and the workers share: the batch and
 * report messages on their socketpair, and the result rules.
 */
#ifndef RUNNER_INT_H
#define RUNNER_INT_H

#include "runner.h"

#define RUNNER_BATCH_MAX	100	/* recipients a batch */
#define RUNNER_PENDING_MAX	4000	/* claimed, not yet at a worker */
#define RUNNER_CLAIM_ROUND	500	/* claimed per claim call, at most */
#define RUNNER_CLAIM_FIRST	RUNNER_BATCH_MAX /* ... after an idle spell */
#define RUNNER_MAP_KEEP		(32u << 20) /* queue file mapped: scheduler */
#define RUNNER_MAP_KEEP_WORKER	(256u << 20) /* ... a worker */
#define RUNNER_MAGIC		0x70737472u

/* sched -> worker: a header, then n claims. SOCK_SEQPACKET keeps each
 * message whole. */
struct wbatch {
	uint32_t	magic;
	uint32_t	n;
	struct route	route;
	struct qclaim	claim[RUNNER_BATCH_MAX];
};

/* worker -> sched: the batch is done. */
struct wreport {
	uint32_t	magic;
	uint32_t	delivered, deferred, failed, held;
	uint8_t		hop_down;	/* no address of the hop answered */
};

/*
 * A worker's journal: the results of its batch so far, in memory it
 * shares with the scheduler (one MAP_SHARED|MAP_ANONYMOUS page range per
 * worker slot, mapped before the fork). The worker commits a batch's
 * results in one transaction at its end (group commit), but writes each
 * message's results here as soon as its final reply is in, before it
 * starts the next message. A write to memory survives the writer's death:
 * when a worker dies, the scheduler records what its journal holds
 * (queue_claim_result: those a commit already recorded are stale and
 * change nothing) and hands back only the rest. So a killed worker re-
 * sends at most the message whose final dot was out and whose results
 * were not yet here. The scheduler empties it (n = 0) before it sends a
 * batch, while the worker waits; the worker only appends, during the
 * batch. n is read and written with __atomic builtins (release after the
 * results, acquire before reading them).
 */
struct wjournal {
	uint32_t	n;			/* res[0..n) are written */
	struct qresult	res[RUNNER_BATCH_MAX];	/* a batch has at most this
						 * many claims: one result
						 * each */
};

/* worker.c */
/* worker_main - serve batches from fd until it closes; j: the slot's
 * journal (shared with the scheduler). */
int	worker_main(struct conf *, int fd, struct wjournal *j);

/* runner_mem.c */
/* runner_mem_trim - if more than `keep` bytes of files are mapped into
 * this process, drop its map of the queue. Called between transactions
 * by the scheduler (RUNNER_MAP_KEEP) and the workers
 * (RUNNER_MAP_KEEP_WORKER). */
void	runner_mem_trim(struct queue *, size_t keep);

/* runner_result.c: the rules for a recipient's result. */
/* runner_claims_mine - of one message's claims c[0..n) (its recipients
 * all[0..nall) as read), keep those still ours (active, same token) at
 * the front of c, with their records in mine[] and the client's view in
 * sr[]; returns how many. A stale one went to another runner. */
size_t	runner_claims_mine(struct qclaim *c, size_t n, struct qrcpt *all,
	    size_t nall, struct qrcpt **mine, struct smtpc_rcpt *sr);
/* runner_result_backoff - seconds until the next try after `attempts` tries:
 * min_backoff doubled per try, at most max_backoff, +-20% jitter; the
 * jitter is random (seed 0) or fixed by seed (a message id), so the
 * recipients of one message deferred together are retried together. */
int64_t	runner_result_backoff(const struct conf *, uint32_t attempts,
	    uint64_t seed);
/*
 * runner_result - turn a reply (code 0: not tried, no reply) into a queue
 * result for a claimed recipient and log it. Past max_queue_lifetime a
 * temporary failure fails ("expired"); a site-held recipient's temporary
 * failure sends it back to waiting for its site.
 */
void	runner_result(const struct conf *, const struct qmsg *,
	    const struct qrcpt *, const struct qclaim *, int code,
	    const char *status, const char *reply, bool attempted,
	    const char *relay, double delays[4], struct qresult *out);
/* (delays[1..3] are the attempt's connect/tls/transfer seconds; it sets
 * delays[0], the queue time, to what they leave of the delay since
 * arrival.) */

/* dlog.c */
#define DLOG_DELAYS_MAX	80	/* "q/c/t/x", each at most 999999999.000 */
/* dlog_secs - a duration for the log: at least 0 (no "-0.000" either;
 * NaN is 0), at most 999999999. */
double	dlog_secs(double);
/* dlog_delays - "queue/connect/tls/transfer" to the millisecond, each
 * part through dlog_secs(). */
void	dlog_delays(char *buf, size_t bufsz, const double delays[4]);
void	dlog_attempt(const struct qmsg *, const struct qrcpt *,
	    const char *relay, double delay, const double delays[4],
	    uint32_t attempts, const char *dsn, const char *status,
	    const char *text);

#endif

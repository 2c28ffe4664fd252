/*
 * worker_commit.c - a delivery worker's committer: a thread that records
 * the results the worker hands it (queue_claim_result, with the DSN hook)
 * while the worker goes on with the next message.
 *
 * Why: a result not yet in the queue is a message that is delivered again
 * if the worker dies, so each message's results should be recorded as soon
 * as its final reply arrives; but a commit is an fsync, and a worker that
 * waited for each one would spend its time waiting. Here the worker hands
 * a message's results over and starts the next transaction (MAIL, RCPT,
 * DATA, the content) at once; the commit runs meanwhile. Before it sends
 * the final dot of that next message the worker waits for the commit
 * (worker_commit_wait_all): so when it is killed, at most one message on
 * its connection was accepted by the server and not recorded here: either
 * the previous one (its commit under way, the next dot not sent) or the
 * current one (its dot sent, its reply not yet recorded). What is handed
 * while a commit runs (failures without a connection, a hop that is down)
 * goes in the next commit, together: one transaction and one fsync.
 *
 * Only the committer thread calls queue_claim_result, so the report hook
 * (runner_bounce, not thread-safe) runs on it alone, and it alone calls
 * runner_bounce_done. The worker's own queue calls meanwhile are reads
 * (queue_get, queue_body_chunk) in read-only transactions of their own
 * (the environment is opened MDB_NOTLS). A failed commit is logged and
 * changes nothing; those claims come back when the scheduler hands them
 * back or their lease runs out, as before.
 *
 * Without a thread (pthread_create failed) each hand-off commits at once,
 * in the caller: slower, the same guarantees.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "runner_int.h"

struct worker_commit {
	struct queue		*q;
	struct runner_bounce	*bounce;
	pthread_t		 th;
	bool			 threaded;
	pthread_mutex_t		 mu;
	pthread_cond_t		 work;		/* committer: something to do */
	pthread_cond_t		 done_cv;	/* worker: a commit ended */
	/* Under mu: what was handed and not yet taken. */
	struct qresult		*pend;
	size_t			 npend, pendcap;
	uint64_t		 handed;	/* hand-offs so far */
	uint64_t		 done;		/* ... whose commit has ended */
	bool			 stop;
	/* The committer's own: the results of the commit under way. */
	struct qresult		*busy;
	size_t			 busycap;
};

/* worker_commit_run - record n results in one transaction, with their
 * DSNs; log a failure (the claims then come back by the scheduler or the
 * lease). */
static void
worker_commit_run(struct worker_commit *c, struct qresult *res, size_t n)
{
	int	rc;

	rc = queue_claim_result(c->q, res, n);
	if (rc != 0)
		log_warnx("%s: queue_claim_result: %s", __func__,
		    queue_errmsg(c->q));
	runner_bounce_done(c->bounce, rc == 0);
}

/* worker_commit_main - the committer: take everything handed since the
 * last commit, commit it, tell the worker; until stopped with nothing
 * left. */
static void *
worker_commit_main(void *arg)
{
	struct worker_commit	*c = arg;
	struct qresult		*t;
	size_t			 n, tcap;
	uint64_t		 upto;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->npend == 0 && !c->stop)
			pthread_cond_wait(&c->work, &c->mu);
		if (c->npend == 0)
			break;		/* stopped, and nothing left */
		/* Swap the buffers: the worker fills the other meanwhile. */
		t = c->busy;
		tcap = c->busycap;
		c->busy = c->pend;
		c->busycap = c->pendcap;
		c->pend = t;
		c->pendcap = tcap;
		n = c->npend;
		c->npend = 0;
		upto = c->handed;
		pthread_mutex_unlock(&c->mu);
		worker_commit_run(c, c->busy, n);
		pthread_mutex_lock(&c->mu);
		c->done = upto;
		pthread_cond_broadcast(&c->done_cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct worker_commit *
worker_commit_start(struct queue *q, struct runner_bounce *b)
{
	struct worker_commit	*c;
	sigset_t		 all, old;

	c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->bounce = b;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done_cv, NULL);
	/* Signals are the main thread's: the committer starts with all of
	 * them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	c->threaded = pthread_create(&c->th, NULL, worker_commit_main,
	    c) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!c->threaded)
		log_warnx("%s: no committer thread: each message's results "
		    "are committed in turn", __func__);
	return c;
}

void
worker_commit_hand(struct worker_commit *c, const struct qresult *res,
    size_t n)
{
	struct qresult	*copy;

	if (n == 0)
		return;
	if (!c->threaded) {
		copy = xreallocarray(NULL, n, sizeof(*copy));
		memcpy(copy, res, n * sizeof(*copy));
		worker_commit_run(c, copy, n);
		free(copy);
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (c->npend + n > c->pendcap) {
		c->pendcap = (c->npend + n) * 2;
		c->pend = xreallocarray(c->pend, c->pendcap, sizeof(*c->pend));
	}
	memcpy(c->pend + c->npend, res, n * sizeof(*res));
	c->npend += n;
	c->handed++;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->mu);
}

void
worker_commit_wait_all(struct worker_commit *c)
{
	if (!c->threaded)
		return;
	pthread_mutex_lock(&c->mu);
	while (c->done < c->handed)
		pthread_cond_wait(&c->done_cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void
worker_commit_stop(struct worker_commit *c)
{
	if (c == NULL)
		return;
	if (c->threaded) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->work);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->th, NULL);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->done_cv);
	free(c->pend);
	free(c->busy);
	free(c);
}

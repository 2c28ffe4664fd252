/*
 * bench_enqueue.c - durable enqueue throughput: group commit against one
 * fsync'd commit per message.
 *
 * Usage: bench_enqueue [-n msgs] [-r rounds] [-t seconds] [dir]
 *
 * Every run enqueues up to `msgs` messages (4 KiB body, 2 recipients) into
 * a fresh queue below dir and reports messages per second from the first
 * message to the last commit. The baseline is the disk's own rate: one
 * thread calling queue_enqueue(), one transaction and one fsync'd commit
 * per message. Against it, P = 1, 8 and 64 producer threads share one
 * queue handle through queue_gc_new()/queue_gc_enqueue(). (smtpd does not
 * use queue_gc: its commit thread, etrn/etrn_server.c, batches what its
 * sessions finished through queue_enqueue_batch(); bench_receive.sh
 * measures that.) Cases are interleaved round by round so that a drift of
 * the disk hits them all alike; each case's median is printed with its
 * commits per message (queue_commits(), the open's own commit left out)
 * and its ratio to the baseline. The target is producers=64 >= 5x.
 *
 * A run stops early at `seconds` (default 20) so a slow disk cannot make
 * the benchmark unbounded; its rate is then over what it did, and the line
 * says so. Rounds: 3, or 5 when the first round was quick (under 30 s);
 * -r fixes the number. After each run the recipients are counted through
 * the domain index, so a message that was not committed is a failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"
#include "queue.h"
#include "bench.h"

#define ENQ_BODY_SIZE	4096
#define ENQ_NRCPT	2
#define ENQ_MAPSIZE	((uint64_t)1 << 30)
#define ENQ_ROUNDS_MAX	5
#define ENQ_QUICK_ROUND	30.0	/* seconds: under this, 5 rounds */
#define ENQ_TARGET	5.0	/* producers=64 over the baseline */
#define ENQ_DOMAIN	"bench.example"

struct enq_case {
	const char	*label;
	int		 producers;	/* 0: baseline, queue_enqueue() */
	double		 rate[ENQ_ROUNDS_MAX];
	uint64_t	 msgs, commits;	/* over all rounds */
	bool		 capped;
};

struct enq_run {
	struct queue		*q;
	struct queue_gc		*gc;	/* NULL: queue_enqueue() */
	const char		*body;
	size_t			 total;
	size_t			 next;	/* tickets, atomic */
	size_t			 done;	/* committed, atomic */
	int			 failed;	/* first error, atomic */
	double			 deadline;
	pthread_barrier_t	 start;
	char			 err[512];
	pthread_mutex_t		 errmu;
};

static void
enq_usage(void)
{
	fprintf(stderr, "usage: bench_enqueue [-n msgs] [-r rounds] "
	    "[-t seconds] [dir]\n");
	exit(2);
}

/* enq_msg_fill - message number t: the same shape every time. The queue
 * writes into both structs, so they are filled afresh for each call. */
static void
enq_msg_fill(struct qnew *n, struct qrcpt *r, const char *body, size_t t)
{
	size_t	i;

	memset(n, 0, sizeof(*n));
	(void)strl_copy(n->msg.sender, "sender@client.example",
	    sizeof(n->msg.sender));
	(void)strl_copy(n->msg.client, "client.example[192.0.2.1]",
	    sizeof(n->msg.client));
	for (i = 0; i < ENQ_NRCPT; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		/* Two destination domains below ENQ_DOMAIN, so that the
		 * check after the run can count them in one range. */
		if (!bsnprintf(r[i].addr, sizeof(r[i].addr),
		    "user%zu@%c.%s", t, (int)('a' + i), ENQ_DOMAIN))
			fatalx("%s: address too long", __func__);
		r[i].state = QRCPT_QUEUED;
	}
	n->body = body;
	n->bodylen = ENQ_BODY_SIZE;
	n->rcpt = r;
	n->nrcpt = ENQ_NRCPT;
}

static void *
enq_producer(void *arg)
{
	struct enq_run	*run = arg;
	struct qnew	 n;
	struct qrcpt	*r;
	size_t		 t;
	int		 rc;

	/* struct qrcpt is large (its history): not on a thread's stack. */
	r = xcalloc(ENQ_NRCPT, sizeof(*r));
	pthread_barrier_wait(&run->start);
	for (;;) {
		t = __atomic_fetch_add(&run->next, 1, __ATOMIC_RELAXED);
		if (t >= run->total || bench_now() > run->deadline ||
		    __atomic_load_n(&run->failed, __ATOMIC_RELAXED) != 0)
			break;
		enq_msg_fill(&n, r, run->body, t);
		rc = run->gc != NULL ? queue_gc_enqueue(run->gc, &n) :
		    queue_enqueue(run->q, &n);
		if (rc != 0) {
			pthread_mutex_lock(&run->errmu);
			if (run->failed == 0) {
				(void)bsnprintf(run->err, sizeof(run->err),
				    "%s: %s", queue_strerror(rc),
				    queue_errmsg(run->q));
				__atomic_store_n(&run->failed, rc,
				    __ATOMIC_RELAXED);
			}
			pthread_mutex_unlock(&run->errmu);
			break;
		}
		__atomic_add_fetch(&run->done, 1, __ATOMIC_RELAXED);
	}
	free(r);
	return NULL;
}

/* enq_run_case - one run of one case in a fresh queue below base. */
static void
enq_run_case(struct enq_case *c, int round, const char *base,
    const char *body, size_t msgs, double cap)
{
	struct enq_run	 run;
	pthread_t	*tids;
	char		 dir[4096], err[512];
	uint64_t	 c0;
	size_t		 count;
	double		 t0, t1;
	int		 i, nthr, rc;

	if (!bsnprintf(dir, sizeof(dir), "%s/enq-p%d-r%d", base,
	    c->producers, round))
		fatalx("%s: directory name too long", __func__);
	bench_queue_remove(dir);	/* a leftover of a killed run */
	memset(&run, 0, sizeof(run));
	if ((rc = queue_open(dir, QUEUE_CREATE, ENQ_MAPSIZE, &run.q, err,
	    sizeof(err))) != 0)
		fatalx("queue_open %s: %s", dir, err);
	if (c->producers > 0 &&
	    (run.gc = queue_gc_new(run.q, 0)) == NULL)
		fatalx("queue_gc_new: out of memory");
	run.body = body;
	run.total = msgs;
	pthread_mutex_init(&run.errmu, NULL);
	nthr = c->producers > 0 ? c->producers : 1;
	pthread_barrier_init(&run.start, NULL, (unsigned)nthr + 1);
	tids = xcalloc((size_t)nthr, sizeof(*tids));
	for (i = 0; i < nthr; i++)
		if ((rc = pthread_create(&tids[i], NULL, enq_producer,
		    &run)) != 0)
			fatalx("pthread_create: %s", strerror(rc));
	/* Not counting the commit queue_open() made for the schema. */
	c0 = queue_commits(run.q);
	run.deadline = bench_now() + cap;
	pthread_barrier_wait(&run.start);
	t0 = bench_now();
	for (i = 0; i < nthr; i++)
		pthread_join(tids[i], NULL);
	t1 = bench_now();
	if (run.failed != 0)
		fatalx("%s run %d: enqueue failed: %s", c->label, round + 1,
		    run.err);
	if (run.done == 0)
		fatalx("%s run %d: nothing enqueued in %.0f s", c->label,
		    round + 1, cap);
	/* Every message the producers were told is on disk must be there. */
	if ((rc = queue_domain_count(run.q, ENQ_DOMAIN, true, &count)) != 0)
		fatalx("queue_domain_count: %s", queue_errmsg(run.q));
	if (count != run.done * ENQ_NRCPT)
		fatalx("%s run %d: %zu recipients in the queue, want %zu",
		    c->label, round + 1, count, run.done * ENQ_NRCPT);
	c->rate[round] = (double)run.done / (t1 - t0);
	c->msgs += run.done;
	c->commits += queue_commits(run.q) - c0;
	if (run.done < msgs)
		c->capped = true;
	queue_gc_free(run.gc);
	queue_close(run.q);
	bench_queue_remove(dir);
	pthread_barrier_destroy(&run.start);
	pthread_mutex_destroy(&run.errmu);
	free(tids);
}

static void
enq_print(const struct enq_case *c, int rounds, double base, double cap)
{
	double	v[ENQ_ROUNDS_MAX], med;
	char	runs[256], one[32], target[64];
	int	i;

	runs[0] = '\0';
	for (i = 0; i < rounds; i++) {
		v[i] = c->rate[i];
		(void)bsnprintf(one, sizeof(one), "%s%.0f", i ? " " : "",
		    c->rate[i]);
		(void)strl_cat(runs, one, sizeof(runs));
	}
	med = bench_median(v, (size_t)rounds);
	target[0] = '\0';
	if (c->producers == 64)
		(void)bsnprintf(target, sizeof(target),
		    "  (target >= %.0fx: %s)", ENQ_TARGET,
		    med / base >= ENQ_TARGET ? "PASS" : "FAIL");
	if (c->producers == 0)
		printf("enqueue  %-24s %7.0f msg/s  %-11s commits/msg %.2f"
		    "  [runs %s]", c->label, med, "", (double)c->commits /
		    (double)c->msgs, runs);
	else
		printf("enqueue  %-24s %7.0f msg/s  ratio %4.1fx  "
		    "commits/msg %.2f%s  [runs %s]", c->label, med, med / base,
		    (double)c->commits / (double)c->msgs, target, runs);
	if (c->capped)
		printf(" [a run stopped at %.0f s]", cap);
	printf("\n");
}

int
main(int argc, char *argv[])
{
	struct enq_case	 cases[] = {
		{ .label = "baseline(1 commit/msg)", .producers = 0 },
		{ .label = "producers=1", .producers = 1 },
		{ .label = "producers=8", .producers = 8 },
		{ .label = "producers=64", .producers = 64 },
	};
	const size_t	 ncases = sizeof(cases) / sizeof(cases[0]);
	char		 base[4096], fstype[32], *body, *end;
	size_t		 msgs = 3000, i;
	double		 cap = 20, t0, first, v[ENQ_ROUNDS_MAX], bmed;
	int		 ch, rounds = 0, r;

	log_init("bench", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "n:r:t:")) != -1) {
		switch (ch) {
		case 'n':
			msgs = strtoul(optarg, &end, 10);
			if (*end != '\0' || msgs == 0)
				enq_usage();
			break;
		case 'r':
			rounds = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || rounds < 1 ||
			    rounds > ENQ_ROUNDS_MAX)
				enq_usage();
			break;
		case 't':
			cap = strtod(optarg, &end);
			if (*end != '\0' || cap <= 0)
				enq_usage();
			break;
		default:
			enq_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		enq_usage();
	if (argc == 1) {
		if (!strl_copy(base, argv[0], sizeof(base)))
			fatalx("%s: name too long", argv[0]);
	} else
		bench_dir_default("postern-bench-enqueue", base, sizeof(base));
	bench_dir_check(base, fstype, sizeof(fstype));

	/* A body of text lines, as a message would be. */
	body = xmalloc(ENQ_BODY_SIZE);
	for (i = 0; i < ENQ_BODY_SIZE; i++)
		body[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' :
		    (char)('a' + i % 26);

	printf("enqueue  queue dir %s (%s); up to %zu msgs/run of %d bytes, "
	    "%d rcpts; a fresh queue per run\n", base, fstype, msgs,
	    ENQ_BODY_SIZE, ENQ_NRCPT);
	fflush(stdout);
	t0 = bench_now();
	for (i = 0; i < ncases; i++)
		enq_run_case(&cases[i], 0, base, body, msgs, cap);
	first = bench_now() - t0;
	if (rounds == 0)
		rounds = first < ENQ_QUICK_ROUND ? 5 : 3;
	for (r = 1; r < rounds; r++)
		for (i = 0; i < ncases; i++)
			enq_run_case(&cases[i], r, base, body, msgs, cap);
	printf("enqueue  %d runs per case (first round %.1f s), median "
	    "shown; ratio = case / baseline\n", rounds, first);

	for (r = 0; r < rounds; r++)
		v[r] = cases[0].rate[r];
	bmed = bench_median(v, (size_t)rounds);
	for (i = 0; i < ncases; i++)
		enq_print(&cases[i], rounds, bmed, cap);
	free(body);
	if (argc == 0)
		(void)rmdir(base);
	return 0;
}

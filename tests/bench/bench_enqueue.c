/*
 * bench_enqueue.c - durable enqueue throughput: group commit against one
 * fsync'd commit per message.
 *
 * Usage: bench_enqueue [-n msgs] [-r rounds] [-t seconds] [dir]
 *
 * Every run enqueues up to `msgs` messages (4 KiB body, 2 recipients) into
 * a fresh queue below dir and reports messages per second from the first
 * message to the last commit. The baseline is the disk's own rate:
 * queue_enqueue(), one transaction and one fsync'd commit per message.
 * Against it, one thread calls queue_enqueue_group() with batches of
 * k = 1, 8 and 64 messages: what the queue's group commit gives when a
 * committer hands it k messages at a time, with no thread hand-off
 * measured. (smtpd's commit thread is such a committer: it takes what its
 * sessions finished, so its batches are as large as the concurrency;
 * bench_receive.sh measures that end to end.) Cases are interleaved round
 * by round so that a drift of the disk hits them all alike; each case's
 * median is printed with its commits per message (queue_commits(), the
 * open's own commit left out) and its ratio to the baseline. The target
 * is batch=64 >= 5x.
 *
 * A run stops early at `seconds` (default 20) so a slow disk cannot make
 * the benchmark unbounded; its rate is then over what it did, and the line
 * says so. Rounds: 3, or 5 when the first round was quick (under 30 s);
 * -r fixes the number. After each run the recipients are counted through
 * the domain index, so a message that was not committed is a failure.
 */
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
#define ENQ_TARGET	5.0	/* batch=64 over the baseline */
#define ENQ_TARGET_K	64
#define ENQ_BATCH_MAX	64
#define ENQ_DOMAIN	"bench.example"

struct enq_case {
	const char	*label;
	size_t		 batch;	/* 0: baseline, queue_enqueue() */
	double		 rate[ENQ_ROUNDS_MAX];
	uint64_t	 msgs, commits;	/* over all rounds */
	bool		 capped;
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

/* enq_batches - messages 0..total-1 in batches of c->batch (or one by
 * one through queue_enqueue()) until done or past the deadline; the
 * number stored. A message that is not stored is fatal. */
static size_t
enq_batches(const struct enq_case *c, struct queue *q, const char *body,
    size_t total, double deadline)
{
	struct qnew	*n, *v[ENQ_BATCH_MAX];
	struct qrcpt	*r;
	size_t		 done = 0, k, i;
	int		 rc;

	n = xcalloc(ENQ_BATCH_MAX, sizeof(*n));
	r = xcalloc(ENQ_BATCH_MAX * ENQ_NRCPT, sizeof(*r));
	while (done < total && bench_now() <= deadline) {
		k = c->batch > 0 ? c->batch : 1;
		if (k > total - done)
			k = total - done;
		for (i = 0; i < k; i++) {
			enq_msg_fill(&n[i], &r[i * ENQ_NRCPT], body, done + i);
			v[i] = &n[i];
		}
		rc = c->batch > 0 ? queue_enqueue_group(q, v, k) :
		    queue_enqueue(q, &n[0]);
		if (rc != 0)
			fatalx("%s: enqueue failed: %s: %s", c->label,
			    queue_strerror(rc), queue_errmsg(q));
		done += k;
	}
	free(r);
	free(n);
	return done;
}

/* enq_run_case - one run of one case in a fresh queue below base. */
static void
enq_run_case(struct enq_case *c, int round, const char *base,
    const char *body, size_t msgs, double cap)
{
	struct queue	*q;
	char		 dir[4096], err[512];
	uint64_t	 c0;
	size_t		 count, done;
	double		 t0, t1;
	int		 rc;

	if (!bsnprintf(dir, sizeof(dir), "%s/enq-b%zu-r%d", base, c->batch,
	    round))
		fatalx("%s: directory name too long", __func__);
	bench_queue_remove(dir);	/* a leftover of a killed run */
	if ((rc = queue_open(dir, QUEUE_CREATE, ENQ_MAPSIZE, &q, err,
	    sizeof(err))) != 0)
		fatalx("queue_open %s: %s", dir, err);
	/* Not counting the commit queue_open() made for the schema. */
	c0 = queue_commits(q);
	t0 = bench_now();
	done = enq_batches(c, q, body, msgs, t0 + cap);
	t1 = bench_now();
	if (done == 0)
		fatalx("%s run %d: nothing enqueued in %.0f s", c->label,
		    round + 1, cap);
	/* Every message the queue said is on disk must be there. */
	if ((rc = queue_domain_count(q, ENQ_DOMAIN, true, &count)) != 0)
		fatalx("queue_domain_count: %s", queue_errmsg(q));
	if (count != done * ENQ_NRCPT)
		fatalx("%s run %d: %zu recipients in the queue, want %zu",
		    c->label, round + 1, count, done * ENQ_NRCPT);
	c->rate[round] = (double)done / (t1 - t0);
	c->msgs += done;
	c->commits += queue_commits(q) - c0;
	if (done < msgs)
		c->capped = true;
	queue_close(q);
	bench_queue_remove(dir);
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
	if (c->batch == ENQ_TARGET_K)
		(void)bsnprintf(target, sizeof(target),
		    "  (target >= %.0fx: %s)", ENQ_TARGET,
		    med / base >= ENQ_TARGET ? "PASS" : "FAIL");
	if (c->batch == 0)
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
		{ .label = "baseline(1 commit/msg)", .batch = 0 },
		{ .label = "batch=1", .batch = 1 },
		{ .label = "batch=8", .batch = 8 },
		{ .label = "batch=64", .batch = ENQ_TARGET_K },
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

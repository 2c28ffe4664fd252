/*
 * bench_flush.c - the cost of flushing one domain against the size of the
 * queue around it.
 *
 * Usage: bench_flush [-s small] [-M mid] [-l large] [-D drcpts]
 *	      [-d domains] [-m mapsize-GiB] [-p sets] [dir]
 *
 * Queues of `small` (10,000) and `large` (1,000,000) recipients of other
 * domains, spread round-robin over `domains` (2,000), plus the same
 * `drcpts` (1,000) recipients of one domain D in each; and between them,
 * to show the trend, one of `mid` (100,000; -M 0 leaves it out). D's
 * recipients are spread evenly over the messages, as mail for a site
 * arrives over time, so that in a large queue they are among the others,
 * not one block at its end. Messages have 10 recipients of other domains
 * (plus their share of D's) and 200-byte bodies; they are stored with
 * queue_enqueue_batch(), 500 messages per transaction, every recipient
 * queued with due = now + 3600 so none is due yet.
 *
 * Then, in each queue: queue_domain_count(D) (the ETRN reply path), 5
 * times, median; and queue_flush(domain = D, held, now), the call `postern
 * flush --domain D` makes, once: a flush makes D due, and a second flush
 * finds nothing to do. Before it, a flush of another domain with no mail
 * is the first write after the build, and is shown apart: that commit
 * also takes over the free pages the build's transactions left (LMDB
 * writes the rest of their list back: 12 pages at 1,000,000 against 1 at
 * 10,000 in one traced run), work of the build and not of any flush; a
 * queue in service never has it pending. The honest repeat is a fresh
 * set of queues, so the set is built again, up to `sets` (3) times in
 * all, while building the large queue takes under 60 s. Medians are
 * compared with the target: large within 1.5x of small, which is what
 * the domain index (bydom) promises for finding D. Each build's time and
 * data.mdb size is printed.
 *
 * As a second, labelled figure, D is deferred again through the API (its
 * recipients are the only ones due, so queue_claim_due() takes exactly
 * them and queue_claim_result() defers them an hour) and flushed again, 4
 * times. That flush is not the same work: D's due keys are then adjacent
 * in the due index instead of spread among the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtp.h"
#include "queue.h"
#include "bench.h"

#define FL_PER_MSG	10	/* other domains' recipients per message */
#define FL_BATCH	500	/* messages per transaction while building */
#define FL_BODY_SIZE	200
#define FL_DEFER	3600
#define FL_COUNT_REPS	5
#define FL_AGAIN_REPS	4
#define FL_SETS_MAX	3
#define FL_REPEAT_UNDER	60.0	/* s to build the large queue */
#define FL_TARGET	1.5
#define FL_DOMAIN	"target.example.net"

struct fl_opts {
	size_t		small, mid, large, nd, ndom;
	uint64_t	mapsize;
	int		sets;
};

/* What one queue gave, over the sets. */
struct fl_side {
	const char	*label;
	size_t		 nother;
	double		 flush[FL_SETS_MAX];
	double		 count[FL_SETS_MAX * FL_COUNT_REPS];
	double		 again[FL_SETS_MAX * FL_AGAIN_REPS];
	double		 serve[FL_SETS_MAX];
	double		 settle[FL_SETS_MAX];
	size_t		 nflush, ncount, nagain, nserve, nsettle;
	double		 build;		/* of the last set */
	uint64_t	 nmsgs, size, alloc;
};

static void
fl_usage(void)
{
	fprintf(stderr, "usage: bench_flush [-s small] [-M mid] [-l large] "
	    "[-D drcpts] [-d domains] [-m mapsize-GiB] [-p sets] [dir]\n");
	exit(2);
}

static size_t
fl_num(const char *s)
{
	char		*end;
	unsigned long	 v = strtoul(s, &end, 10);

	if (*end != '\0' || v == 0)
		fl_usage();
	return v;
}

/* fl_build - fill q: nother recipients of other domains in messages of
 * FL_PER_MSG, with nd recipients of FL_DOMAIN spread over them. Returns
 * the number of messages. */
static uint64_t
fl_build(struct queue *q, const struct fl_opts *o, size_t nother)
{
	struct qnew	 *msgs, **vec;
	struct qrcpt	 *rcpts;
	char		  body[FL_BODY_SIZE];
	size_t		  nmsg, per, i, j, b, nb, dq, no, k = 0, dn = 0;
	int64_t		  due = (int64_t)time(NULL) + FL_DEFER;
	int		  rc;

	nmsg = (nother + FL_PER_MSG - 1) / FL_PER_MSG;
	/* The most recipients a message gets. */
	per = FL_PER_MSG + (o->nd + nmsg - 1) / nmsg;
	msgs = xcalloc(FL_BATCH, sizeof(*msgs));
	vec = xcalloc(FL_BATCH, sizeof(*vec));
	rcpts = xcalloc(FL_BATCH * per, sizeof(*rcpts));
	memset(body, 'x', sizeof(body));
	for (b = 0; b < nmsg; b += nb) {
		nb = nmsg - b < FL_BATCH ? nmsg - b : FL_BATCH;
		for (i = 0; i < nb; i++) {
			struct qnew	*n = &msgs[i];
			struct qrcpt	*r = &rcpts[i * per];
			size_t		 m = b + i;

			memset(n, 0, sizeof(*n));
			(void)strl_copy(n->msg.sender, "sender@client.example",
			    sizeof(n->msg.sender));
			n->body = body;
			n->bodylen = sizeof(body);
			n->rcpt = r;
			/* Message m's share of D: the j-th D recipient
			 * goes to message j * nmsg / nd. */
			dq = (m + 1) * o->nd / nmsg - m * o->nd / nmsg;
			no = nother - k < FL_PER_MSG ? nother - k : FL_PER_MSG;
			for (j = 0; j < no + dq; j++) {
				bool	isd = j >= no;

				/* Only what the queue reads; the rest was
				 * zeroed once and the queue resets it. */
				r[j].state = QRCPT_QUEUED;
				r[j].flags = 0;
				r[j].due = due;
				if (!(isd ? bsnprintf(r[j].addr,
				    sizeof(r[j].addr), "t%zu@%s", dn++,
				    FL_DOMAIN) : bsnprintf(r[j].addr,
				    sizeof(r[j].addr), "u%zu@d%zu.example.com",
				    k, k % o->ndom)))
					fatalx("%s: address too long",
					    __func__);
				if (!isd)
					k++;
			}
			n->nrcpt = no + dq;
			vec[i] = n;
		}
		if ((rc = queue_enqueue_batch(q, vec, nb)) != 0)
			fatalx("queue_enqueue_batch: %s: %s",
			    queue_strerror(rc), queue_errmsg(q));
	}
	if (dn != o->nd || k != nother)
		fatalx("%s: built %zu+%zu recipients, want %zu+%zu", __func__,
		    k, dn, nother, o->nd);
	free(rcpts);
	free(vec);
	free(msgs);
	return nmsg;
}

/* fl_redefer - defer D's flushed recipients an hour again: after a flush
 * they are the only ones due at `now`. */
static void
fl_redefer(struct queue *q, const struct fl_opts *o, int64_t now,
    double *serve)
{
	struct qclaim	*cl;
	struct qresult	*res;
	size_t		 n, i, got;
	double		 t0;
	int		 rc;

	cl = xcalloc(o->nd + 1, sizeof(*cl));
	res = xcalloc(o->nd + 1, sizeof(*res));
	/* The runners' side of the flush: D handed out in batches. */
	t0 = bench_now();
	for (n = 0; n < o->nd + 1; n += got) {
		size_t want = o->nd + 1 - n < 64 ? o->nd + 1 - n : 64;

		if ((rc = queue_claim_due(q, now, 600, cl + n, want,
		    &got)) != 0)
			fatalx("queue_claim_due: %s", queue_errmsg(q));
		if (got == 0)
			break;
	}
	if (serve != NULL)
		*serve = bench_now() - t0;
	if (n != o->nd)
		fatalx("%s: claimed %zu, want D's %zu", __func__, n, o->nd);
	for (i = 0; i < n; i++) {
		if (strcmp(cl[i].domain, FL_DOMAIN) != 0)
			fatalx("%s: claimed a recipient of %s", __func__,
			    cl[i].domain);
		res[i].id = cl[i].id;
		res[i].idx = cl[i].idx;
		res[i].token = cl[i].token;
		res[i].kind = QRESULT_DEFERRED;
		res[i].when = now;
		res[i].next_try = now + FL_DEFER;
		res[i].attempted = false;
	}
	if ((rc = queue_claim_result(q, res, n)) != 0)
		fatalx("queue_claim_result: %s", queue_errmsg(q));
	for (i = 0; i < n; i++)
		if (res[i].rc != 0)
			fatalx("queue_claim_result: %s",
			    queue_strerror(res[i].rc));
	free(res);
	free(cl);
}

/* fl_flush1 - time one flush of D at `now`; it must change all of D. */
static double
fl_flush1(struct queue *q, const struct fl_opts *o, int64_t now)
{
	struct qsel	sel = { .domain = FL_DOMAIN };
	size_t		count;
	double		t0, t;
	int		rc;

	t0 = bench_now();
	rc = queue_flush(q, &sel, true, now, &count);
	t = bench_now() - t0;
	if (rc != 0)
		fatalx("queue_flush: %s: %s", queue_strerror(rc),
		    queue_errmsg(q));
	if (count != o->nd)
		fatalx("queue_flush: changed %zu recipients, want %zu", count,
		    o->nd);
	return t;
}

/* fl_side_run - build one queue below base, measure, remove it. */
static void
fl_side_run(struct fl_side *s, const struct fl_opts *o, const char *base)
{
	struct queue	*q;
	struct qsel	 settle = { .domain = "nomail.example.org" };
	char		 dir[4096], path[4200], err[512];
	size_t		 count;
	double		 t0;
	int64_t		 now;
	int		 i, rc;

	if (!bsnprintf(dir, sizeof(dir), "%s/flush-%s", base, s->label))
		fatalx("%s: directory name too long", __func__);
	bench_queue_remove(dir);	/* a leftover of a killed run */
	if ((rc = queue_open(dir, QUEUE_CREATE, o->mapsize, &q, err,
	    sizeof(err))) != 0)
		fatalx("queue_open %s: %s", dir, err);
	t0 = bench_now();
	s->nmsgs = fl_build(q, o, s->nother);
	s->build = bench_now() - t0;
	(void)bsnprintf(path, sizeof(path), "%s/data.mdb", dir);
	bench_file_size(path, &s->size, &s->alloc);

	for (i = 0; i < FL_COUNT_REPS; i++) {
		t0 = bench_now();
		rc = queue_domain_count(q, FL_DOMAIN, false, &count);
		s->count[s->ncount++] = bench_now() - t0;
		if (rc != 0)
			fatalx("queue_domain_count: %s", queue_errmsg(q));
		if (count != o->nd)
			fatalx("queue_domain_count: %zu, want %zu", count,
			    o->nd);
	}
	now = (int64_t)time(NULL);
	t0 = bench_now();
	if ((rc = queue_flush(q, &settle, true, now, &count)) != 0 ||
	    count != 0)
		fatalx("queue_flush(%s): %d, %zu recipients", settle.domain,
		    rc, count);
	s->settle[s->nsettle++] = bench_now() - t0;
	s->flush[s->nflush++] = fl_flush1(q, o, now);
	for (i = 0; i < FL_AGAIN_REPS; i++) {
		fl_redefer(q, o, now, i == 0 ? &s->serve[s->nserve++] : NULL);
		now = (int64_t)time(NULL);
		s->again[s->nagain++] = fl_flush1(q, o, now);
	}
	queue_close(q);
	bench_queue_remove(dir);
}

/* fl_fmt_runs - "1.234 1.300 ..." of v in milliseconds. */
static void
fl_fmt_runs(const double *v, size_t n, char *buf, size_t bufsz)
{
	char	one[32];
	size_t	i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		(void)bsnprintf(one, sizeof(one), "%s%.3f", i ? " " : "",
		    v[i] * 1e3);
		(void)strl_cat(buf, one, bufsz);
	}
}

enum fl_what { FL_FLUSH, FL_COUNT, FL_AGAIN, FL_SERVE, FL_SETTLE };

/* fl_samples - one side's samples of a measured call. */
static const double *
fl_samples(const struct fl_side *s, enum fl_what w, size_t *n)
{
	switch (w) {
	case FL_FLUSH:
		*n = s->nflush;
		return s->flush;
	case FL_COUNT:
		*n = s->ncount;
		return s->count;
	case FL_SERVE:
		*n = s->nserve;
		return s->serve;
	case FL_SETTLE:
		*n = s->nsettle;
		return s->settle;
	case FL_AGAIN:
		break;
	}
	*n = s->nagain;
	return s->again;
}

/* fl_print - one measured call: each queue's median and its ratio to the
 * first (small) queue's; the target goes on the last (large) queue's
 * line, the middle one is there to show the trend. */
static void
fl_print(const char *what, struct fl_side *const *sides, size_t nsides,
    enum fl_what w, bool target)
{
	double		 a[FL_SETS_MAX * FL_COUNT_REPS], med, med0 = 0;
	const double	*v;
	char		 runs[512], ratio[32], tgt[64];
	size_t		 i, n;

	for (i = 0; i < nsides; i++) {
		v = fl_samples(sides[i], w, &n);
		memcpy(a, v, n * sizeof(*a));
		med = bench_median(a, n);
		fl_fmt_runs(v, n, runs, sizeof(runs));
		ratio[0] = tgt[0] = '\0';
		if (i == 0)
			med0 = med;
		else
			(void)bsnprintf(ratio, sizeof(ratio), "ratio %5.2fx",
			    med / med0);
		if (target && i > 0 && i == nsides - 1)
			(void)bsnprintf(tgt, sizeof(tgt),
			    "  (target within %.1fx: %s)", FL_TARGET,
			    med / med0 <= FL_TARGET ? "PASS" : "FAIL");
		printf("flush  %-30s %-4s %9.3f ms  %-12s%s  [runs %s]\n",
		    what, sides[i]->label, med * 1e3, ratio, tgt, runs);
	}
}

static const char *
fl_label(size_t n, char *buf, size_t bufsz)
{
	if (n % 1000000 == 0)
		(void)bsnprintf(buf, bufsz, "%zuM", n / 1000000);
	else if (n % 1000 == 0)
		(void)bsnprintf(buf, bufsz, "%zuk", n / 1000);
	else
		(void)bsnprintf(buf, bufsz, "%zu", n);
	return buf;
}

int
main(int argc, char *argv[])
{
	struct fl_opts	 o = { 10000, 100000, 1000000, 1000, 2000,
			    (uint64_t)8 << 30, FL_SETS_MAX };
	struct fl_side	 side[3], *sides[3], *lg;
	char		 base[4096], fstype[32], labels[3][16];
	size_t		 sizes[3], nsides = 0, i;
	int		 ch, set;

	log_init("bench", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "s:M:l:D:d:m:p:")) != -1) {
		switch (ch) {
		case 's':
			o.small = fl_num(optarg);
			break;
		case 'M':
			/* 0: no middle queue */
			o.mid = strcmp(optarg, "0") == 0 ? 0 : fl_num(optarg);
			break;
		case 'l':
			o.large = fl_num(optarg);
			break;
		case 'D':
			o.nd = fl_num(optarg);
			break;
		case 'd':
			o.ndom = fl_num(optarg);
			break;
		case 'm':
			o.mapsize = (uint64_t)fl_num(optarg) << 30;
			break;
		case 'p':
			o.sets = (int)fl_num(optarg);
			if (o.sets > FL_SETS_MAX)
				fl_usage();
			break;
		default:
			fl_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		fl_usage();
	if (argc == 1) {
		if (!strl_copy(base, argv[0], sizeof(base)))
			fatalx("%s: name too long", argv[0]);
	} else
		bench_dir_default("postern-bench-flush", base, sizeof(base));
	bench_dir_check(base, fstype, sizeof(fstype));

	sizes[nsides++] = o.small;
	if (o.mid != 0)
		sizes[nsides++] = o.mid;
	sizes[nsides++] = o.large;
	memset(side, 0, sizeof(side));
	for (i = 0; i < nsides; i++) {
		side[i].label = fl_label(sizes[i], labels[i],
		    sizeof(labels[i]));
		side[i].nother = sizes[i];
		sides[i] = &side[i];
	}
	lg = sides[nsides - 1];
	printf("flush  queue dir %s (%s); D = %s with %zu recipients; "
	    "others over %zu domains; mapsize %llu GiB\n", base, fstype,
	    FL_DOMAIN, o.nd, o.ndom, (unsigned long long)(o.mapsize >> 30));
	fflush(stdout);
	for (set = 0; set < o.sets; set++) {
		for (i = 0; i < nsides; i++) {
			struct fl_side *s = sides[i];

			fl_side_run(s, &o, base);
			printf("flush  build %-4s (set %d): %llu msgs, %zu + "
			    "%zu rcpts in %.2f s (%.0f rcpts/s), data.mdb "
			    "%.1f MiB (%.1f MiB on disk)\n", s->label, set + 1,
			    (unsigned long long)s->nmsgs, s->nother, o.nd,
			    s->build, (double)(s->nother + o.nd) / s->build,
			    (double)s->size / (1 << 20),
			    (double)s->alloc / (1 << 20));
			fflush(stdout);
		}
		if (lg->build >= FL_REPEAT_UNDER)
			break;
	}
	printf("flush  %zu set(s) of fresh queues; median shown; ratio = "
	    "queue / %s; target on %s\n", lg->nflush, sides[0]->label,
	    lg->label);
	fl_print("first write: flush, no mail", sides, nsides, FL_SETTLE,
	    false);
	fl_print("queue_flush(D, held) first", sides, nsides, FL_FLUSH, true);
	fl_print("serve D: claim all, batches 64", sides, nsides, FL_SERVE,
	    false);
	fl_print("queue_domain_count(D)", sides, nsides, FL_COUNT, true);
	fl_print("queue_flush(D) re-deferred", sides, nsides, FL_AGAIN, false);
	if (argc == 0)
		(void)rmdir(base);
	return 0;
}

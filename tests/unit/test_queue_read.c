/*
 * test_queue_read.c - unit tests for queue/queue_read.c: walks and
 * queue_shape().
 *
 * Covered: walks by domain and in bounded batches, queue_shape(), and
 * reading what is not there (an empty shape, a domain without messages).
 */
#include <inttypes.h>

#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Walks and queue_shape(). */

#define TQ_WALK_MSGS	450	/* > 3 batches of QUEUE_WALK_BATCH (128) */

struct tq_walk {
	uint64_t	ids[TQ_WALK_MSGS + 16];
	size_t		n;
	size_t		stop;	/* return 42 at this call; 0: never */
	int		bad;	/* messages that do not hold together */
};

static int
tq_walk_fn(void *arg, const struct qmsg *m, const struct qrcpt *r, size_t n)
{
	struct tq_walk	*w = arg;
	size_t		 i;

	if (w->n < NELEM(w->ids))
		w->ids[w->n] = m->id;
	w->n++;
	if (n != m->nrcpt)
		w->bad++;
	for (i = 0; i < n; i++)
		if (r[i].id != m->id || r[i].idx != i)
			w->bad++;
	return (w->stop != 0 && w->n == w->stop) ? 42 : 0;
}

/* tq_walk_want - queue_walk(domain) calls back for exactly want[]. */
static void
tq_walk_want_at(struct t *t, int line, struct queue *q, const char *domain,
    struct tq_walk *w, const uint64_t *want, size_t nwant)
{
	size_t	i;
	int	rc;

	memset(w, 0, sizeof(*w));
	if ((rc = queue_walk(q, domain, tq_walk_fn, w)) != 0)
		t_errorl(t, line, "queue_walk(%s): got %d (%s), want 0",
		    domain ? domain : "NULL", rc, queue_errmsg(q));
	if (w->n != nwant) {
		t_errorl(t, line, "queue_walk(%s): %zu messages, want %zu",
		    domain ? domain : "NULL", w->n, nwant);
		return;
	}
	for (i = 0; i < nwant; i++)
		if (w->ids[i] != want[i]) {
			t_errorl(t, line, "queue_walk(%s): message %zu is %"
			    PRIu64 ", want %" PRIu64, domain ? domain : "NULL",
			    i, w->ids[i], want[i]);
			return;
		}
	if (w->bad != 0)
		t_errorl(t, line, "queue_walk(%s): %d bad recipient lists",
		    domain ? domain : "NULL", w->bad);
}
#define tq_walk_want(t, q, domain, w, want, nwant)			\
	tq_walk_want_at((t), __LINE__, (q), (domain), (w), (want), (nwant))

static void
test_walk(struct t *t)
{
	struct queue	*q = NULL;
	struct qnew	*nv = NULL, **pv = NULL;
	struct qrcpt	*rv = NULL;
	struct tq_walk	*w = NULL;
	uint64_t	 ids[TQ_WALK_MSGS], w1[TQ_WALK_MSGS];
	size_t		 i, nw1 = 0;
	char		 dir[64], addr[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	nv = calloc(TQ_WALK_MSGS, sizeof(*nv));
	pv = calloc(TQ_WALK_MSGS, sizeof(*pv));
	rv = calloc(TQ_WALK_MSGS * 2, sizeof(*rv));
	w = calloc(1, sizeof(*w));
	if (nv == NULL || pv == NULL || rv == NULL || w == NULL) {
		t_errorf(t, "calloc: %s", strerror(errno));
		goto out;
	}
	/* Message i goes to w(i % 3).example; every 10th has a second
	 * recipient in the same domain (listed once by a domain walk). */
	for (i = 0; i < TQ_WALK_MSGS; i++) {
		(void)bsnprintf(addr, sizeof(addr), "m%zu@w%zu.example", i,
		    i % 3);
		tq_rcpt(&rv[2 * i], addr);
		(void)bsnprintf(addr, sizeof(addr), "n%zu@W%zu.Example", i,
		    i % 3);
		tq_rcpt(&rv[2 * i + 1], addr);
		tq_new(&nv[i], &rv[2 * i], i % 10 == 0 ? 2 : 1, "w\r\n", 3);
		pv[i] = &nv[i];
	}
	if ((rc = queue_enqueue_batch(q, pv, TQ_WALK_MSGS)) != 0) {
		t_errorf(t, "queue_enqueue_batch(%d): got %d (%s), want 0",
		    TQ_WALK_MSGS, rc, queue_errmsg(q));
		goto out;
	}
	for (i = 0; i < TQ_WALK_MSGS; i++) {
		ids[i] = nv[i].msg.id;
		if (nv[i].rc != 0 || (i > 0 && ids[i] <= ids[i - 1]))
			t_errorf(t, "batch message %zu: rc %d id %" PRIu64
			    " (previous %" PRIu64 ")", i, nv[i].rc, ids[i],
			    i > 0 ? ids[i - 1] : 0);
		if (i % 3 == 1)
			w1[nw1++] = ids[i];
	}

	tq_walk_want(t, q, NULL, w, ids, TQ_WALK_MSGS);
	tq_walk_want(t, q, "w1.example", w, w1, nw1);
	tq_walk_want(t, q, "W1.EXAMPLE", w, w1, nw1);
	/* (A domain without messages: see test_read_empty.) */

	/* A non-zero return stops the walk and is returned, also across
	 * the walk's read batches. */
	memset(w, 0, sizeof(*w));
	w->stop = 5;
	if ((rc = queue_walk(q, NULL, tq_walk_fn, w)) != 42 || w->n != 5)
		t_errorf(t, "queue_walk(stop at 5): got %d after %zu calls, "
		    "want 42 after 5", rc, w->n);
	memset(w, 0, sizeof(*w));
	w->stop = 200;
	if ((rc = queue_walk(q, NULL, tq_walk_fn, w)) != 42 || w->n != 200)
		t_errorf(t, "queue_walk(stop at 200): got %d after %zu calls, "
		    "want 42 after 200", rc, w->n);
	memset(w, 0, sizeof(*w));
	w->stop = 140;
	if ((rc = queue_walk(q, "w1.example", tq_walk_fn, w)) != 42 ||
	    w->n != 140)
		t_errorf(t, "queue_walk(w1.example, stop at 140): got %d after"
		    " %zu calls, want 42 after 140", rc, w->n);
out:
	free(w);
	free(rv);
	free(pv);
	free(nv);
	queue_close(q);
	tq_rmrf(dir);
}

static void
test_shape(struct t *t)
{
	struct queue		*q = NULL;
	struct qrcpt		 r[2];
	struct qnew		 n;
	struct qclaim		 c[8];
	struct qresult		 res[3];
	struct qshape		 s;
	const struct qshape_dom	*d;
	int64_t			 now;
	uint64_t		 want[QUEUE_AGE_BUCKETS] = { 0 };
	size_t			 i;
	char			 dir[64];
	int			 rc;
	bool			 have = false;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	memset(&s, 0, sizeof(s));
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (queue_age_bucket_min[3] != 40)
		t_errorf(t, "queue_age_bucket_min[3]: got %d, want 40",
		    queue_age_bucket_min[3]);
	now = (int64_t)time(NULL);
	/* 30 minutes old: two recipients in s1 (bucket 3, "40"). */
	tq_rcpt(&r[0], "a@s1.example");
	tq_rcpt(&r[1], "b@s1.example");
	tq_new(&n, r, 2, "1\r\n", 3);
	n.msg.arrival = now - 30 * 60;
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(1): got %d, want 0", rc);
	/* New: one in s2 (bucket 0). */
	tq_rcpt(&r[0], "c@s2.example");
	tq_new(&n, r, 1, "2\r\n", 3);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(2): got %d, want 0", rc);
	/* 500 minutes old: one held in s1 (the last bucket). */
	tq_rcpt(&r[0], "d@s1.example");
	r[0].state = QRCPT_HELD;
	r[0].flags = QRCPT_F_SITE;
	r[0].due = now + 100000;
	tq_new(&n, r, 1, "3\r\n", 3);
	n.msg.arrival = now - 500 * 60;
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(3): got %d, want 0", rc);

	/* Defer a and b for one reason, c for another. */
	if (tq_claim(t, q, now, 300, c, NELEM(c), 3) != 3)
		goto out;
	for (i = 0; i < 3; i++) {
		bool s2 = strcmp(c[i].domain, "s2.example") == 0;

		tq_result(&res[i], &c[i], QRESULT_DEFERRED, now, now + 600,
		    s2 ? "4.2.0" : "4.4.1", s2 ? "mailbox busy" :
		    "connection refused");
	}
	if ((rc = queue_claim_result(q, res, 3)) != 0)
		t_errorf(t, "queue_claim_result: got %d, want 0", rc);

	if ((rc = queue_shape(q, now, &s)) != 0) {
		t_errorf(t, "queue_shape: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	have = true;
	if (s.msgs != 3 || s.rcpts != 4)
		t_errorf(t, "queue_shape: msgs %" PRIu64 " rcpts %" PRIu64
		    ", want 3 4", s.msgs, s.rcpts);
	if (s.oldest != now - 500 * 60)
		t_errorf(t, "queue_shape: oldest %lld, want %lld",
		    (long long)s.oldest, (long long)(now - 500 * 60));
	want[0] = 1;
	want[3] = 2;
	want[QUEUE_AGE_BUCKETS - 1] = 1;
	for (i = 0; i < QUEUE_AGE_BUCKETS; i++)
		if (s.bucket[i] != want[i])
			t_errorf(t, "queue_shape: bucket[%zu] (%d min) %" PRIu64
			    ", want %" PRIu64, i, queue_age_bucket_min[i],
			    s.bucket[i], want[i]);
	if (s.ndom != 2) {
		t_errorf(t, "queue_shape: ndom %zu, want 2", s.ndom);
		goto out;
	}
	d = &s.dom[0];
	if (strcmp(d->domain, "s1.example") != 0 || d->total != 3 ||
	    d->bucket[3] != 2 || d->bucket[QUEUE_AGE_BUCKETS - 1] != 1 ||
	    d->deferred != 2 || d->held != 1)
		t_errorf(t, "queue_shape: dom[0] %s total %" PRIu64 " b3 %"
		    PRIu64 " b7 %" PRIu64 " deferred %" PRIu64 " held %"
		    PRIu64 "; want s1.example 3 2 1 2 1", d->domain, d->total,
		    d->bucket[3], d->bucket[QUEUE_AGE_BUCKETS - 1],
		    d->deferred, d->held);
	d = &s.dom[1];
	if (strcmp(d->domain, "s2.example") != 0 || d->total != 1 ||
	    d->bucket[0] != 1 || d->deferred != 1 || d->held != 0)
		t_errorf(t, "queue_shape: dom[1] %s total %" PRIu64 " b0 %"
		    PRIu64 " deferred %" PRIu64 " held %" PRIu64 "; want "
		    "s2.example 1 1 1 0", d->domain, d->total, d->bucket[0],
		    d->deferred, d->held);
	if (s.nreason != 2)
		t_errorf(t, "queue_shape: nreason %zu, want 2", s.nreason);
	else if (strstr(s.reason[0].text, "4.4.1") == NULL ||
	    strstr(s.reason[0].text, "connection refused") == NULL ||
	    s.reason[0].count != 2 ||
	    strstr(s.reason[1].text, "4.2.0") == NULL ||
	    strstr(s.reason[1].text, "mailbox busy") == NULL ||
	    s.reason[1].count != 1)
		t_errorf(t, "queue_shape: reasons \"%s\" %" PRIu64 ", \"%s\" %"
		    PRIu64 "; want 4.4.1 connection refused 2, 4.2.0 mailbox "
		    "busy 1", s.reason[0].text, s.reason[0].count,
		    s.reason[1].text, s.reason[1].count);
out:
	if (have)
		queue_shape_free(&s);
	queue_close(q);
	tq_rmrf(dir);
}

/*
 * Reading what is not there: queue_shape() of a queue without live
 * recipients, and queue_walk() of a domain without messages. Both must
 * succeed with nothing; each runs in a child of its own, so that a
 * sanitizer abort fails this test and not the whole program.
 */
static int
tq_walk_count(void *arg, const struct qmsg *m, const struct qrcpt *r,
    size_t n)
{
	(void)m;
	(void)r;
	(void)n;
	(*(size_t *)arg)++;
	return 0;
}

static void
tq_read_empty_child(const char *dir, int which)
{
	struct queue	*q;
	struct qshape	 s;
	struct qnew	 n;
	struct qrcpt	 r;
	size_t		 calls = 0;
	char		 err[512];
	int		 rc;

	if (queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err)) != 0)
		_exit(20);
	if (which == 0) {
		if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0)
			_exit(21);
		rc = s.msgs == 0 && s.rcpts == 0 && s.ndom == 0 ? 0 : 22;
		queue_shape_free(&s);
	} else {
		tq_rcpt(&r, "a@there.example");
		tq_new(&n, &r, 1, "x", 1);
		if (queue_enqueue(q, &n) != 0)
			_exit(23);
		if ((rc = queue_walk(q, "nowhere.example", tq_walk_count,
		    &calls)) != 0)
			_exit(24);
		rc = calls == 0 ? 0 : 25;
	}
	queue_close(q);
	_exit(rc);
}

static void
test_read_empty(struct t *t)
{
	static const char *const what[] = {
		"queue_shape() of an empty queue",
		"queue_walk(\"nowhere.example\") of a queue without it",
	};
	struct queue	*q;
	pid_t		 pid;
	char		 dir[64];
	int		 which;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	for (which = 0; which < 2; which++) {
		fflush(stdout);
		fflush(stderr);
		if ((pid = fork()) == -1) {
			t_errorf(t, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0)
			tq_read_empty_child(dir, which);
		(void)tq_wait(t, pid, 0, what[which]);
	}
out:
	tq_rmrf(dir);
}

struct site_seen {
	char	dom[4][64];
	int64_t	when[4];
	size_t	n;
};

static int
site_cb(void *arg, const char *domain, int64_t when)
{
	struct site_seen *ss = arg;

	if (ss->n < NELEM(ss->dom)) {
		snprintf(ss->dom[ss->n], sizeof(ss->dom[0]), "%s", domain);
		ss->when[ss->n] = when;
	}
	ss->n++;
	return 0;
}

/* queue_site_*: last seen per site, case-folded, walked in order, beside
 * the bounce rate counts in meta without mixing with them. */
static void
test_site_seen(struct t *t)
{
	struct queue		*q = NULL;
	struct site_seen	 ss;
	int64_t			 when;
	char			 dir[64], big[QUEUE_ADDR_MAX + 8];
	int			 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if ((rc = queue_site_seen_get(q, "never.example", &when)) != 0 ||
	    when != 0)
		t_errorf(t, "never seen: rc %d when %lld", rc, (long long)when);
	if ((rc = queue_site_seen(q, "Dialup.EXAMPLE", 1000)) != 0 ||
	    (rc = queue_site_seen(q, "a.example", 2000)) != 0 ||
	    (rc = queue_site_seen(q, "dialup.example", 3000)) != 0)
		t_errorf(t, "queue_site_seen: rc %d", rc);
	if ((rc = queue_site_seen_get(q, "DIALUP.example", &when)) != 0 ||
	    when != 3000)
		t_errorf(t, "dialup: rc %d when %lld, want 3000", rc,
		    (long long)when);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	if (queue_site_seen(q, big, 1) != QUEUE_E_INVAL)
		t_errorf(t, "overlong domain accepted");
	memset(&ss, 0, sizeof(ss));
	if ((rc = queue_site_walk(q, site_cb, &ss)) != 0 || ss.n != 2 ||
	    strcmp(ss.dom[0], "a.example") != 0 || ss.when[0] != 2000 ||
	    strcmp(ss.dom[1], "dialup.example") != 0 || ss.when[1] != 3000)
		t_errorf(t, "walk: rc %d n %zu first %s", rc, ss.n, ss.dom[0]);
	queue_close(q);
	q = NULL;
	/* Another process (a reopen) sees them. */
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (queue_site_seen_get(q, "a.example", &when) != 0 || when != 2000)
		t_errorf(t, "after reopen: a.example %lld", (long long)when);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* queue_domain_backlog: one domain, with subdomains, ".parent" (the
 * subdomains only); queue_site_notice beside the seen records. */
static void
test_site_backlog(struct t *t)
{
	static const struct {
		const char	*dom;
		bool		 sub;
		uint64_t	 msgs, rcpts;
		int		 oldest;	/* message index, -1: none */
	} want[] = {
		{ "site.example", false, 2, 3, 0 },
		{ "SITE.example", true, 2, 5, 0 },
		{ ".site.example", false, 2, 2, 0 },
		{ "y.site.example", false, 1, 1, 1 },
		{ "other.example", false, 1, 1, 2 },
		{ "none.example", false, 0, 0, -1 },
	};
	struct queue	*q = NULL;
	struct qrcpt	 r[3];
	struct qnew	 n;
	struct qbacklog	 bl;
	struct site_seen ss;
	int64_t		 arr[3], when;
	char		 dir[64];
	size_t		 i;
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	arr[0] = (int64_t)time(NULL) - 3000;
	arr[1] = arr[0] + 1000;
	arr[2] = arr[0] + 2000;
	tq_rcpt(&r[0], "a@site.example");
	tq_rcpt(&r[1], "b@site.example");
	tq_rcpt(&r[2], "c@x.site.example");
	tq_new(&n, r, 3, "1\r\n", 3);
	n.msg.arrival = arr[0];
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(1): %d", rc);
	tq_rcpt(&r[0], "d@site.example");
	tq_rcpt(&r[1], "e@y.site.example");
	tq_new(&n, r, 2, "2\r\n", 3);
	n.msg.arrival = arr[1];
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(2): %d", rc);
	tq_rcpt(&r[0], "f@other.example");
	tq_new(&n, r, 1, "3\r\n", 3);
	n.msg.arrival = arr[2];
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(3): %d", rc);
	for (i = 0; i < NELEM(want); i++) {
		rc = queue_domain_backlog(q, want[i].dom, want[i].sub, &bl);
		if (rc != 0 || bl.msgs != want[i].msgs ||
		    bl.rcpts != want[i].rcpts || bl.oldest !=
		    (want[i].oldest < 0 ? 0 : arr[want[i].oldest]))
			t_errorf(t, "queue_domain_backlog(%s, %d): rc %d, "
			    "%llu msgs %llu rcpts oldest %lld; want %llu %llu "
			    "%lld", want[i].dom, want[i].sub, rc,
			    (unsigned long long)bl.msgs,
			    (unsigned long long)bl.rcpts,
			    (long long)bl.oldest,
			    (unsigned long long)want[i].msgs,
			    (unsigned long long)want[i].rcpts,
			    (long long)(want[i].oldest < 0 ? 0 :
			    arr[want[i].oldest]));
	}
	if ((rc = queue_site_notice_get(q, "site.example", &when)) != 0 ||
	    when != 0)
		t_errorf(t, "notice before: rc %d when %lld", rc,
		    (long long)when);
	if ((rc = queue_site_notice(q, "Site.Example", 4242)) != 0 ||
	    (rc = queue_site_notice_get(q, "site.EXAMPLE", &when)) != 0 ||
	    when != 4242)
		t_errorf(t, "notice: rc %d when %lld, want 4242", rc,
		    (long long)when);
	/* A notice is no sighting. */
	memset(&ss, 0, sizeof(ss));
	if ((rc = queue_site_walk(q, site_cb, &ss)) != 0 || ss.n != 0)
		t_errorf(t, "walk after a notice: rc %d, %zu seen", rc, ss.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

int
main(void)
{
	T_RUN(test_walk);
	T_RUN(test_shape);
	T_RUN(test_read_empty);
	T_RUN(test_site_seen);
	T_RUN(test_site_backlog);
	T_EXIT();
}

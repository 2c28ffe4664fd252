/*
 * test_queue_report.c - unit tests for the report hook (queue_report.c):
 * DSNs enqueued in the transaction that records what they report.
 *
 * Covered: record version 2 (qrcpt.dsn_id, qmsg.warnings) and version 1
 * records still read; one call per message per round (a batch, or the
 * last active recipient's result); a hook that fails leaves nothing
 * recorded; delay warnings (once per round, at most max, never for a site
 * hold); queue_bounce(); the rate counter; and crash atomicity (a
 * recording process killed at random points: every reported recipient has
 * exactly one DSN).
 */
#include <inttypes.h>
#include <signal.h>

#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Raw records. */

/* tq_raw_v1 - rewrite message id's envelope and recipient idx as version
 * 1 records (without the fields version 2 appended), with LMDB itself:
 * what a queue written before version 2 holds. */
static bool
tq_raw_v1(struct t *t, const char *dir, uint64_t id, uint32_t idx)
{
	MDB_env		*env = NULL;
	MDB_txn		*txn = NULL;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 kb[13], buf[8192];
	int		 mrc, i;
	bool		 ok = false;

	if ((mrc = mdb_env_create(&env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (mrc = mdb_env_open(env, dir, 0, 0600)) != 0 ||
	    (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "msg", 0, &dbi)) != 0) {
		t_errorf(t, "opening %s with LMDB: %s", dir, mdb_strerror(mrc));
		goto out;
	}
	for (i = 7; i >= 0; i--)
		kb[7 - i] = (uint8_t)(id >> (i * 8));
	kb[8] = 0x01;
	kb[9] = (uint8_t)(idx >> 24);
	kb[10] = (uint8_t)(idx >> 16);
	kb[11] = (uint8_t)(idx >> 8);
	kb[12] = (uint8_t)idx;
	/* The envelope: version 2 appended warnings (1 byte). */
	k.mv_data = kb;
	k.mv_size = 8;
	if ((mrc = mdb_get(txn, dbi, &k, &v)) != 0 || v.mv_size < 2 ||
	    v.mv_size > sizeof(buf) || ((uint8_t *)v.mv_data)[0] != 2) {
		t_errorf(t, "envelope: %s, size %zu, want a version 2 record",
		    mdb_strerror(mrc), mrc == 0 ? v.mv_size : 0);
		goto out;
	}
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = 1;
	v.mv_data = buf;
	v.mv_size--;
	if ((mrc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		t_errorf(t, "rewriting the envelope: %s", mdb_strerror(mrc));
		goto out;
	}
	/* The recipient: version 2 appended dsn_id (8 bytes). */
	k.mv_size = 13;
	if ((mrc = mdb_get(txn, dbi, &k, &v)) != 0 || v.mv_size < 9 ||
	    v.mv_size > sizeof(buf) || ((uint8_t *)v.mv_data)[0] != 2) {
		t_errorf(t, "recipient: %s, size %zu, want a version 2 record",
		    mdb_strerror(mrc), mrc == 0 ? v.mv_size : 0);
		goto out;
	}
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = 1;
	v.mv_data = buf;
	v.mv_size -= 8;
	if ((mrc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		t_errorf(t, "rewriting the recipient: %s", mdb_strerror(mrc));
		goto out;
	}
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc != 0)
		t_errorf(t, "commit: %s", mdb_strerror(mrc));
	else
		ok = true;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	return ok;
}

/* Version 1 records (before dsn_id and warnings) still read, with 0. */
static void
test_record_v1(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org" };
	struct queue	*q = NULL;
	struct qmsg	 m0, m1;
	struct qrcpt	*r0 = NULL, *r1 = NULL;
	size_t		 n0, n1;
	uint64_t	 id;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, addr, 2, &id))
		goto out;
	if ((rc = queue_get(q, id, &m0, &r0, &n0)) != 0) {
		t_errorf(t, "queue_get: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	queue_close(q);
	q = NULL;
	if (!tq_raw_v1(t, dir, id, 1))
		goto out;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if ((rc = queue_get(q, id, &m1, &r1, &n1)) != 0) {
		t_errorf(t, "queue_get(version 1 records): got %d (%s), want 0",
		    rc, queue_errmsg(q));
		goto out;
	}
	if (n1 != 2 || memcmp(&m0, &m1, sizeof(m0)) != 0 ||
	    memcmp(&r0[1], &r1[1], sizeof(r0[1])) != 0)
		t_errorf(t, "version 1 records read back differently (%zu "
		    "recipients; sender \"%s\" / \"%s\"; addr \"%s\" / \"%s\")",
		    n1, m0.sender, m1.sender, r0[1].addr, r1[1].addr);
	if (m1.warnings != 0 || r1[1].dsn_id != 0)
		t_errorf(t, "version 1: warnings %u dsn_id %" PRIu64 ", want 0",
		    m1.warnings, r1[1].dsn_id);
out:
	free(r0);
	free(r1);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* A hook that records its calls and sends a DSN listing what it reports. */

#define TQ_CALLS	64

struct tq_call {
	uint64_t	id;
	size_t		n;
	uint32_t	idx[8];
	uint8_t		why[8];
	uint8_t		warnings;
	size_t		bodylen;
	bool		truncated;
	int64_t		now;
};

struct tq_hook {
	struct tq_call	call[TQ_CALLS];
	size_t		ncalls;
	int		fail;		/* return this */
	bool		nosend;		/* send nothing */
	bool		hold;		/* DSNs held (never claimed) */
	uint32_t	rate;		/* queue_report_rate limit; 0: none */
	uint32_t	sleep_us;	/* at most this long inside the txn */
	uint64_t	rng;
	struct qnew	dsn;
	struct qrcpt	dsnr;
	char		body[4096];
};

/* The DSN's body: "DSN <id>" and a line "<id> <idx> <why>" per recipient,
 * so that a test can tell what each DSN reported. */
static int
tq_hook_fn(void *arg, struct queue_report *rep)
{
	struct tq_hook	*h = arg;
	struct tq_call	*c;
	size_t		 i, len;
	bool		 allowed = true;
	int		 rc;

	if (h->ncalls < TQ_CALLS) {
		c = &h->call[h->ncalls];
		memset(c, 0, sizeof(*c));
		c->id = rep->msg->id;
		c->n = rep->nrcpt;
		for (i = 0; i < rep->nrcpt && i < NELEM(c->idx); i++) {
			c->idx[i] = rep->rcpt[i].rcpt->idx;
			c->why[i] = rep->rcpt[i].why;
		}
		c->warnings = rep->msg->warnings;
		c->bodylen = rep->bodylen;
		c->truncated = rep->truncated;
		c->now = rep->now;
	}
	h->ncalls++;
	if (h->sleep_us > 0)
		tq_sleep_ns((tq_rng(&h->rng) % h->sleep_us) * 1000);
	if (h->fail != 0)
		return h->fail;
	if (h->nosend)
		return 0;
	if (h->rate > 0) {
		if ((rc = queue_report_rate(rep, rep->msg->sender, rep->now,
		    h->rate, &allowed)) != 0)
			return rc;
		if (!allowed) {
			rep->dropped = true;
			return queue_report_count(rep, "bounce_dropped");
		}
	}
	tq_rcpt(&h->dsnr, rep->msg->sender[0] ? rep->msg->sender :
	    "postmaster@example.net");
	len = (size_t)snprintf(h->body, sizeof(h->body), "DSN %" PRIu64 "\n",
	    rep->msg->id);
	for (i = 0; i < rep->nrcpt && len < sizeof(h->body); i++)
		len += (size_t)snprintf(h->body + len, sizeof(h->body) - len,
		    "%" PRIu64 " %u %u\n", rep->msg->id,
		    rep->rcpt[i].rcpt->idx, rep->rcpt[i].why);
	if (len >= sizeof(h->body))
		return QUEUE_E_INVAL;
	if (h->hold) {
		h->dsnr.state = QRCPT_HELD;
		h->dsnr.flags = QRCPT_F_OPHOLD;
	}
	tq_new(&h->dsn, &h->dsnr, 1, h->body, len);
	h->dsn.msg.sender[0] = '\0';
	rep->dsn = &h->dsn;
	return 0;
}

static void
tq_hook_set(struct queue *q, struct tq_hook *h, int64_t delay, uint32_t max)
{
	struct queue_report_conf	conf;

	memset(h, 0, sizeof(*h));
	memset(&conf, 0, sizeof(conf));
	conf.delay_warning = delay;
	conf.max_delay_warnings = max;
	conf.body_cap = 16;
	queue_set_report(q, tq_hook_fn, h, &conf);
}

/* tq_call_want - call number i was for message id with exactly these
 * recipient indexes, each for `why`. */
static bool
tq_call_want_at(struct t *t, int line, const struct tq_hook *h, size_t i,
    uint64_t id, const uint32_t *idx, size_t n, int why)
{
	const struct tq_call	*c;
	size_t			 j;

	if (i >= h->ncalls) {
		t_errorl(t, line, "hook: %zu calls, want call %zu", h->ncalls,
		    i + 1);
		return false;
	}
	c = &h->call[i];
	if (c->id != id || c->n != n) {
		t_errorl(t, line, "hook call %zu: message %" PRIu64 " with %zu "
		    "recipients, want %" PRIu64 " with %zu", i + 1, c->id,
		    c->n, id, n);
		return false;
	}
	for (j = 0; j < n; j++)
		if (c->idx[j] != idx[j] || c->why[j] != why) {
			t_errorl(t, line, "hook call %zu, recipient %zu: "
			    "idx %u why %u, want %u %d", i + 1, j, c->idx[j],
			    c->why[j], idx[j], why);
			return false;
		}
	return true;
}
#define tq_call_want(t, h, i, id, idx, n, why)				\
	tq_call_want_at((t), __LINE__, (h), (i), (id), (idx), (n), (why))

/* The DSNs in the queue (QMSG_F_DSN): their ids and, from their bodies,
 * what they reported. */
struct tq_dsns {
	uint64_t	id[2048];
	uint64_t	of[2048];	/* the message it reports */
	size_t		n;
	size_t		nlines;		/* "<id> <idx> <why>" lines */
	uint64_t	line_id[4096];
	uint32_t	line_idx[4096];
	uint64_t	line_dsn[4096];	/* the DSN it is in */
	int		bad;
	struct queue	*q;
};

static int
tq_dsns_fn(void *arg, const struct qmsg *m, const struct qrcpt *r, size_t n)
{
	struct tq_dsns	*d = arg;
	char		*buf, *p, *nl;
	size_t		 len;
	uint64_t	 lid;
	unsigned	 idx, why;

	(void)r;
	if (!(m->flags & QMSG_F_DSN))
		return 0;
	if (m->sender[0] != '\0' || n != 1 || d->n == NELEM(d->id) ||
	    (buf = malloc(QUEUE_CHUNK_SIZE + 1)) == NULL) {
		d->bad++;
		return 0;
	}
	if (queue_body_chunk(d->q, m->id, 0, buf, &len) != 0) {
		d->bad++;
		free(buf);
		return 0;
	}
	buf[len] = '\0';
	d->id[d->n] = m->id;
	if (sscanf(buf, "DSN %" SCNu64, &d->of[d->n]) != 1)
		d->bad++;
	d->n++;
	for (p = strchr(buf, '\n'); p != NULL && p[1] != '\0'; p = nl) {
		p++;
		nl = strchr(p, '\n');
		if (sscanf(p, "%" SCNu64 " %u %u", &lid, &idx, &why) != 3 ||
		    d->nlines == NELEM(d->line_id)) {
			d->bad++;
			break;
		}
		d->line_id[d->nlines] = lid;
		d->line_dsn[d->nlines] = m->id;
		d->line_idx[d->nlines++] = idx;
	}
	free(buf);
	return 0;
}

static bool
tq_dsns_read_at(struct t *t, int line, struct queue *q, struct tq_dsns *d)
{
	int	rc;

	memset(d, 0, sizeof(*d));
	d->q = q;
	if ((rc = queue_walk(q, NULL, tq_dsns_fn, d)) != 0) {
		t_errorl(t, line, "queue_walk: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		return false;
	}
	if (d->bad) {
		t_errorl(t, line, "%d DSNs in the queue are not what the hook "
		    "made", d->bad);
		return false;
	}
	return true;
}
#define tq_dsns_read(t, q, d)	tq_dsns_read_at((t), __LINE__, (q), (d))

static bool
tq_gone_at(struct t *t, int line, struct queue *q, uint64_t id)
{
	struct qmsg	 m;
	struct qrcpt	*r = NULL;
	size_t		 n;
	int		 rc;

	rc = queue_get(q, id, &m, &r, &n);
	free(r);
	if (rc != QUEUE_E_NOENT) {
		t_errorl(t, line, "queue_get(%" PRIu64 "): got %d, want %d "
		    "(the message is done)", id, rc, QUEUE_E_NOENT);
		return false;
	}
	return true;
}
#define tq_gone(t, q, id)	tq_gone_at((t), __LINE__, (q), (id))

/* ------------------------------------------------------------------ */
/* One report per message per round. */

/* Three recipients failing in one batch: one call with three, the DSN
 * enqueued in the transaction that records them, the message gone. */
static void
test_report_batch(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org",
	    "c@example.net" };
	static const uint32_t all[] = { 0, 1, 2 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qresult	 res[3];
	uint64_t	 id, commits;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	size_t		 i;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	if (!tq_enqueue(t, q, addr, 3, &id))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 3) != 3)
		goto out;
	for (i = 0; i < 3; i++)
		tq_result(&res[i], &c[i], QRESULT_FAILED, now, 0, "5.1.1",
		    "550 5.1.1 no such user");
	commits = queue_commits(q);
	if ((rc = queue_claim_result(q, res, 3)) != 0)
		t_fatalf(t, "queue_claim_result: got %d (%s), want 0", rc,
		    queue_errmsg(q));
	if (queue_commits(q) != commits + 1)
		t_errorf(t, "commits: got %" PRIu64 ", want %" PRIu64,
		    queue_commits(q) - commits, (uint64_t)1);
	if (h.ncalls != 1)
		t_errorf(t, "hook calls: got %zu, want 1", h.ncalls);
	(void)tq_call_want(t, &h, 0, id, all, 3, QREPORT_FAILED);
	if (h.ncalls >= 1 && (h.call[0].bodylen != 16 ||
	    !h.call[0].truncated || h.call[0].now != now))
		t_errorf(t, "hook body: %zu bytes, truncated %d, now %lld; "
		    "want 16, 1, %lld", h.call[0].bodylen, h.call[0].truncated,
		    (long long)h.call[0].now, (long long)now);
	(void)tq_gone(t, q, id);
	if (tq_dsns_read(t, q, &d) && (d.n != 1 || d.of[0] != id ||
	    d.nlines != 3))
		t_errorf(t, "DSNs: %zu, of %" PRIu64 " with %zu recipients; "
		    "want 1, of %" PRIu64 " with 3", d.n, d.n ? d.of[0] : 0,
		    d.nlines, id);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* Two recipients out at once, their results in two transactions: the
 * first failure waits for the other, then one call with both. */
static void
test_report_rounds(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org" };
	static const uint32_t both[] = { 0, 1 }, first[] = { 0 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qrcpt	 r;
	uint64_t	 id, id2;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	if (!tq_enqueue(t, q, addr, 2, &id))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	(void)tq_record1(t, q, &c[0], QRESULT_FAILED, now, 0, "5.1.1", "550");
	if (h.ncalls != 0)
		t_errorf(t, "hook called %zu times while recipient 1 is "
		    "active, want 0", h.ncalls);
	if (tq_get_rcpt(t, q, id, 0, &r) && (r.state != QRCPT_FAILED ||
	    !(r.flags & QRCPT_F_REPORT) || r.dsn_id != 0))
		t_errorf(t, "recipient 0 while 1 is active: %s flags 0x%x "
		    "dsn_id %" PRIu64 ", want failed, report pending, 0",
		    queue_state_name(r.state), r.flags, r.dsn_id);
	(void)tq_record1(t, q, &c[1], QRESULT_FAILED, now + 1, 0, "5.1.1",
	    "550");
	if (h.ncalls != 1)
		t_errorf(t, "hook calls: got %zu, want 1", h.ncalls);
	(void)tq_call_want(t, &h, 0, id, both, 2, QREPORT_FAILED);
	(void)tq_gone(t, q, id);

	/* The other one delivered (no NOTIFY=SUCCESS): a call for the
	 * failure alone. */
	if (!tq_enqueue(t, q, addr, 2, &id2))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	(void)tq_record1(t, q, &c[0], QRESULT_FAILED, now, 0, "5.1.1", "550");
	(void)tq_record1(t, q, &c[1], QRESULT_DELIVERED, now, 0, "2.0.0",
	    "250");
	if (h.ncalls != 2)
		t_errorf(t, "hook calls: got %zu, want 2", h.ncalls);
	(void)tq_call_want(t, &h, 1, id2, first, 1, QREPORT_FAILED);
	(void)tq_gone(t, q, id2);
	if (tq_dsns_read(t, q, &d) && d.n != 2)
		t_errorf(t, "DSNs: %zu, want 2", d.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* A failure while the other recipient waits (deferred, not active): its
 * own call at once; the record keeps the DSN's id. NOTIFY=SUCCESS: the
 * delivery is reported too. A failure later: a second call. */
static void
test_report_deferred(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org",
	    "c@example.org" };
	static const uint32_t i0[] = { 0 }, i1[] = { 1 }, i2[] = { 2 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qrcpt	 r[3];
	struct qnew	 n;
	uint64_t	 id;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	size_t		 nc;
	int		 k;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	for (k = 0; k < 3; k++)
		tq_rcpt(&r[k], addr[k]);
	r[2].notify = QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE;
	tq_new(&n, r, 3, "x", 1);
	if (queue_enqueue(q, &n) != 0)
		t_fatalf(t, "queue_enqueue: %s", queue_errmsg(q));
	id = n.msg.id;
	if ((nc = tq_claim(t, q, now, 300, c, NELEM(c), 3)) != 3)
		goto out;
	(void)tq_record1(t, q, &c[1], QRESULT_DEFERRED, now, now + 100000,
	    "4.4.1", "timeout");
	(void)tq_record1(t, q, &c[2], QRESULT_DEFERRED, now, now + 10,
	    "4.4.1", "timeout");
	if (h.ncalls != 0)
		t_errorf(t, "hook calls after deferrals: %zu, want 0",
		    h.ncalls);
	(void)tq_record1(t, q, &c[0], QRESULT_FAILED, now, 0, "5.1.1", "550");
	if (h.ncalls != 1)
		t_errorf(t, "hook calls: got %zu, want 1", h.ncalls);
	(void)tq_call_want(t, &h, 0, id, i0, 1, QREPORT_FAILED);
	if (!tq_dsns_read(t, q, &d) || d.n != 1)
		t_fatalf(t, "DSNs: %zu, want 1", d.n);
	if (tq_get_rcpt(t, q, id, 0, &r[0]) && (r[0].dsn_id != d.id[0] ||
	    (r[0].flags & (QRCPT_F_REPORT | QRCPT_F_NODSN))))
		t_errorf(t, "recipient 0: dsn_id %" PRIu64 " flags 0x%x, want %"
		    PRIu64 ", no report pending", r[0].dsn_id, r[0].flags,
		    d.id[0]);
	/* NOTIFY=SUCCESS: delivered is reported (the hook decides). The
	 * DSN is due too, and claimed with it. */
	if (queue_claim_due(q, now + 10, 300, c, NELEM(c), &nc) != 0 ||
	    (k = tq_claim_find(c, nc, id, 2)) < 0)
		t_fatalf(t, "claim at now + 10: recipient 2 not claimed");
	(void)tq_record1(t, q, &c[k], QRESULT_DELIVERED, now + 10, 0, "2.0.0",
	    "250");
	(void)tq_call_want(t, &h, 1, id, i2, 1, QREPORT_DELIVERED);
	/* Days later the last one fails: its own call, the message goes. */
	if (queue_claim_due(q, now + 100000, 300, c, NELEM(c), &nc) != 0 ||
	    (k = tq_claim_find(c, nc, id, 1)) < 0)
		t_fatalf(t, "claim at now + 100000: recipient 1 not claimed");
	(void)tq_record1(t, q, &c[k], QRESULT_FAILED, now + 100000, 0,
	    "4.4.7", "expired");
	(void)tq_call_want(t, &h, 2, id, i1, 1, QREPORT_FAILED);
	if (h.ncalls != 3)
		t_errorf(t, "hook calls: got %zu, want 3", h.ncalls);
	(void)tq_gone(t, q, id);
	if (tq_dsns_read(t, q, &d) && d.n != 3)
		t_errorf(t, "DSNs: %zu, want 3", d.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* A hook that fails: nothing of the call is recorded (still active, the
 * message whole, no DSN); the same results later report once. */
static void
test_report_hook_error(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org" };
	static const uint32_t both[] = { 0, 1 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qresult	 res[2];
	struct qrcpt	 r;
	uint64_t	 id;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	size_t		 i;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	h.fail = QUEUE_E_FULL;
	if (!tq_enqueue(t, q, addr, 2, &id))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	for (i = 0; i < 2; i++)
		tq_result(&res[i], &c[i], QRESULT_FAILED, now, 0, "5.1.1",
		    "550");
	if ((rc = queue_claim_result(q, res, 2)) != QUEUE_E_FULL)
		t_errorf(t, "queue_claim_result with a failing hook: got %d, "
		    "want %d", rc, QUEUE_E_FULL);
	for (i = 0; i < 2; i++)
		if (tq_get_rcpt(t, q, id, (uint32_t)i, &r) &&
		    (r.state != QRCPT_ACTIVE || r.claim != c[i].token ||
		    r.nhist != 0 || (r.flags & QRCPT_F_REPORT)))
			t_errorf(t, "recipient %zu after the hook failed: %s "
			    "claim %" PRIu64 " nhist %u flags 0x%x; want "
			    "active, its claim, 0, 0", i,
			    queue_state_name(r.state), r.claim, r.nhist,
			    r.flags);
	if (tq_dsns_read(t, q, &d) && d.n != 0)
		t_errorf(t, "DSNs after the hook failed: %zu, want 0", d.n);
	h.fail = 0;
	h.ncalls = 0;
	for (i = 0; i < 2; i++)
		tq_result(&res[i], &c[i], QRESULT_FAILED, now, 0, "5.1.1",
		    "550");
	if ((rc = queue_claim_result(q, res, 2)) != 0 || res[0].rc != 0 ||
	    res[1].rc != 0)
		t_errorf(t, "queue_claim_result again: got %d (%d %d), want 0",
		    rc, res[0].rc, res[1].rc);
	(void)tq_call_want(t, &h, 0, id, both, 2, QREPORT_FAILED);
	(void)tq_gone(t, q, id);
	if (tq_dsns_read(t, q, &d) && d.n != 1)
		t_errorf(t, "DSNs: %zu, want 1", d.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* Without a hook nothing is pending and a finished message goes at once,
 * as before; a hook removed stops reports. */
static void
test_report_none(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org" };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qrcpt	 r;
	uint64_t	 id;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	queue_set_report(q, NULL, NULL, NULL);
	if (!tq_enqueue(t, q, addr, 2, &id))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	(void)tq_record1(t, q, &c[0], QRESULT_FAILED, now, 0, "5.1.1", "550");
	if (tq_get_rcpt(t, q, id, 0, &r) && (r.flags & QRCPT_F_REPORT))
		t_errorf(t, "without a hook: flags 0x%x, want no report "
		    "pending", r.flags);
	(void)tq_record1(t, q, &c[1], QRESULT_FAILED, now, 0, "5.1.1", "550");
	(void)tq_gone(t, q, id);
	if (h.ncalls != 0)
		t_errorf(t, "a removed hook was called %zu times", h.ncalls);
	if (tq_dsns_read(t, q, &d) && d.n != 0)
		t_errorf(t, "DSNs without a hook: %zu, want 0", d.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* Delay warnings, queue_bounce(), the rate counter. */

/* tq_defer_all - claim at `when` and defer every claimed recipient of
 * message id to `when` (due again at once); how many. */
static size_t
tq_defer_all_at(struct t *t, int line, struct queue *q, uint64_t id,
    int64_t when)
{
	struct qclaim	c[16];
	struct qresult	res[16];
	size_t		n = 0, i, k = 0;
	int		rc;

	if ((rc = queue_claim_due(q, when, 60, c, NELEM(c), &n)) != 0) {
		t_errorl(t, line, "queue_claim_due: %d (%s)", rc,
		    queue_errmsg(q));
		return 0;
	}
	for (i = 0; i < n; i++)
		if (c[i].id == id)
			tq_result(&res[k++], &c[i], QRESULT_DEFERRED, when,
			    when, "4.4.1", "timeout");
	if ((rc = queue_claim_result(q, res, k)) != 0)
		t_errorl(t, line, "queue_claim_result: %d (%s)", rc,
		    queue_errmsg(q));
	return k;
}
#define tq_defer_all(t, q, id, when)					\
	tq_defer_all_at((t), __LINE__, (q), (id), (when))

/* Warnings at delay_warning, 2 * delay_warning, ... after arrival, one
 * call per round with the round's recipients, at most max per message;
 * never for a recipient held for its site. */
static void
test_report_delay(struct t *t)
{
	static const uint32_t both[] = { 0, 1 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	struct qrcpt	 r[2], rr;
	struct qnew	 n;
	struct qclaim	 c[16];
	struct qmsg	 m;
	struct qrcpt	*rp = NULL;
	struct qsel	 sel;
	uint64_t	 id, sid;
	int64_t		 arr = (int64_t)time(NULL) - 10;
	size_t		 nr, cnt;
	int		 k;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 100, 2);
	h.nosend = true;	/* so that no DSN is claimed with it */
	tq_rcpt(&r[0], "a@example.org");
	tq_rcpt(&r[1], "b@example.org");
	tq_new(&n, r, 2, "x", 1);
	n.msg.arrival = arr;
	if (queue_enqueue(q, &n) != 0)
		t_fatalf(t, "queue_enqueue: %s", queue_errmsg(q));
	id = n.msg.id;

	(void)tq_defer_all(t, q, id, arr + 50);
	if (h.ncalls != 0)
		t_errorf(t, "before delay_warning: %zu calls, want 0",
		    h.ncalls);
	if (tq_defer_all(t, q, id, arr + 150) != 2)
		t_errorf(t, "round 2: not both deferred");
	if (h.ncalls != 1)
		t_errorf(t, "after delay_warning: %zu calls, want 1", h.ncalls);
	(void)tq_call_want(t, &h, 0, id, both, 2, QREPORT_DELAYED);
	if (h.ncalls >= 1 && h.call[0].warnings != 1)
		t_errorf(t, "the hook sees warnings %u, want 1",
		    h.call[0].warnings);
	(void)tq_defer_all(t, q, id, arr + 160);
	if (h.ncalls != 1)
		t_errorf(t, "before 2 * delay_warning: %zu calls, want 1",
		    h.ncalls);
	(void)tq_defer_all(t, q, id, arr + 250);
	if (h.ncalls != 2)
		t_errorf(t, "after 2 * delay_warning: %zu calls, want 2",
		    h.ncalls);
	(void)tq_call_want(t, &h, 1, id, both, 2, QREPORT_DELAYED);
	(void)tq_defer_all(t, q, id, arr + 1000);
	(void)tq_defer_all(t, q, id, arr + 5000);
	if (h.ncalls != 2)
		t_errorf(t, "past max_delay_warnings: %zu calls, want 2",
		    h.ncalls);
	if (queue_get(q, id, &m, &rp, &nr) == 0) {
		if (m.warnings != 2)
			t_errorf(t, "warnings: %u, want 2", m.warnings);
		if (rp[0].flags & QRCPT_F_REPORT)
			t_errorf(t, "a report still pending: flags 0x%x",
			    rp[0].flags);
		free(rp);
	} else
		t_errorf(t, "queue_get: %s", queue_errmsg(q));

	/* A site hold, flushed by id and deferred long after: no warning. */
	h.ncalls = 0;
	tq_rcpt(&rr, "c@held.example");
	rr.state = QRCPT_HELD;
	rr.flags = QRCPT_F_SITE;
	rr.due = arr + 100000;
	tq_new(&n, &rr, 1, "x", 1);
	n.msg.arrival = arr;
	if (queue_enqueue(q, &n) != 0)
		t_fatalf(t, "queue_enqueue: %s", queue_errmsg(q));
	sid = n.msg.id;
	memset(&sel, 0, sizeof(sel));
	sel.ids = &sid;
	sel.nids = 1;
	if (queue_flush(q, &sel, true, arr + 5000, &cnt) != 0 || cnt != 1)
		t_errorf(t, "queue_flush(site hold): %s", queue_errmsg(q));
	if (queue_claim_due(q, arr + 5000, 60, c, NELEM(c), &nr) != 0 ||
	    (k = tq_claim_find(c, nr, sid, 0)) < 0)
		t_fatalf(t, "the flushed site hold was not claimed");
	(void)tq_record1(t, q, &c[k], QRESULT_DEFERRED, arr + 5000,
	    arr + 6000, "4.4.1", "timeout");
	if (h.ncalls != 0)
		t_errorf(t, "a site hold deferred: %zu calls, want 0",
		    h.ncalls);
	if (tq_get_rcpt(t, q, sid, 0, &rr) && (rr.flags & QRCPT_F_REPORT))
		t_errorf(t, "a site hold: report pending (flags 0x%x)",
		    rr.flags);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* queue_bounce: live recipients fail at once, one transaction and one
 * report per message; an active one is left to its runner, whose result
 * reports them all. */
static void
test_report_bounce(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org",
	    "c@example.org" };
	static const char *const addr2[] = { "d@example.net", "e@other.net" };
	static const uint32_t first2[] = { 0, 1 }, i0[] = { 0 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qclaim	 c[8];
	struct qrcpt	 r;
	struct qsel	 sel;
	uint64_t	 id, id2, none = 12345;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	size_t		 cnt;
	int		 rc;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	if (!tq_enqueue(t, q, addr, 3, &id) ||
	    !tq_enqueue(t, q, addr2, 2, &id2))
		goto out;
	if (tq_claim(t, q, now, 300, c, 3, 3) != 3)
		goto out;
	(void)tq_record1(t, q, &c[0], QRESULT_DEFERRED, now, now + 10000,
	    "4.4.1", "timeout");
	(void)tq_record1(t, q, &c[1], QRESULT_DEFERRED, now, now + 10000,
	    "4.4.1", "timeout");
	memset(&sel, 0, sizeof(sel));
	sel.ids = &id;
	sel.nids = 1;
	if ((rc = queue_bounce(q, &sel, NULL, NULL, now + 5, &cnt)) != 0 ||
	    cnt != 2)
		t_errorf(t, "queue_bounce: got %d (%s), %zu recipients; "
		    "want 0, 2", rc, queue_errmsg(q), cnt);
	if (h.ncalls != 0)
		t_errorf(t, "bounce while recipient 2 is active: %zu calls, "
		    "want 0", h.ncalls);
	if (tq_get_rcpt(t, q, id, 0, &r) && (r.state != QRCPT_FAILED ||
	    strcmp(r.status, "5.0.0") != 0 || r.nhist != 2 ||
	    strcmp(r.hist[1].text, "returned by the administrator") != 0))
		t_errorf(t, "bounced recipient: %s status %s nhist %u; want "
		    "failed 5.0.0 with the administrator's entry",
		    queue_state_name(r.state), r.status, r.nhist);
	(void)tq_want(t, q, id, 2, QRCPT_ACTIVE, -1);
	(void)tq_record1(t, q, &c[2], QRESULT_DELIVERED, now + 6, 0, "2.0.0",
	    "250");
	(void)tq_call_want(t, &h, 0, id, first2, 2, QREPORT_FAILED);
	(void)tq_gone(t, q, id);

	/* By domain: only that domain's recipient, reported at once. */
	memset(&sel, 0, sizeof(sel));
	sel.domain = "example.net";
	if ((rc = queue_bounce(q, &sel, "5.4.6", "loop", now + 7, &cnt)) != 0 ||
	    cnt != 1)
		t_errorf(t, "queue_bounce(--domain): got %d (%s), %zu; want 0, "
		    "1", rc, queue_errmsg(q), cnt);
	(void)tq_call_want(t, &h, 1, id2, i0, 1, QREPORT_FAILED);
	(void)tq_want(t, q, id2, 1, QRCPT_QUEUED, -1);
	if (tq_get_rcpt(t, q, id2, 0, &r) && (strcmp(r.status, "5.4.6") != 0 ||
	    r.dsn_id == 0))
		t_errorf(t, "bounced by domain: status %s dsn_id %" PRIu64
		    ", want 5.4.6 and a DSN", r.status, r.dsn_id);
	/* Again: nothing left to fail there, no transaction, no call. */
	if ((rc = queue_bounce(q, &sel, NULL, NULL, now + 8, &cnt)) != 0 ||
	    cnt != 0 || h.ncalls != 2)
		t_errorf(t, "queue_bounce again: got %d, %zu, %zu calls; want "
		    "0, 0, 2", rc, cnt, h.ncalls);
	/* No such message. */
	sel.domain = NULL;
	sel.ids = &none;
	sel.nids = 1;
	if ((rc = queue_bounce(q, &sel, NULL, NULL, now, &cnt)) !=
	    QUEUE_E_NOENT)
		t_errorf(t, "queue_bounce(no such id): got %d, want %d", rc,
		    QUEUE_E_NOENT);
	if (tq_dsns_read(t, q, &d) && d.n != 2)
		t_errorf(t, "DSNs: %zu, want 2", d.n);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* tq_fail_one - enqueue a one-recipient message from `sender`, claim and
 * fail it at `when`. */
static bool
tq_fail_one_at(struct t *t, int line, struct queue *q, const char *sender,
    int64_t when)
{
	struct qrcpt	r;
	struct qnew	n;
	struct qclaim	c[16];
	size_t		nc = 0;
	int		k;

	tq_rcpt(&r, "x@example.org");
	tq_new(&n, &r, 1, "x", 1);
	(void)strl_copy(n.msg.sender, sender, sizeof(n.msg.sender));
	if (queue_enqueue(q, &n) != 0 ||
	    queue_claim_due(q, when, 60, c, NELEM(c), &nc) != 0 ||
	    (k = tq_claim_find(c, nc, n.msg.id, 0)) < 0) {
		t_errorl(t, line, "enqueue and claim: %s", queue_errmsg(q));
		return false;
	}
	return tq_record1_at(t, line, q, &c[k], QRESULT_FAILED, when, 0,
	    "5.1.1", "550") == 0;
}
#define tq_fail_one(t, q, sender, when)					\
	tq_fail_one_at((t), __LINE__, (q), (sender), (when))

/* The rate counter: `limit` per key per hour, across handles; the old
 * hours' counts are deleted as new ones come. */
static void
test_report_rate(struct t *t)
{
	static const char *const meta[] = { "meta" };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	static struct tq_dsns d;
	struct qshape	 shape;
	uint64_t	 dropped;
	int64_t		 hour = ((int64_t)time(NULL) / 3600 + 10) * 3600;
	size_t		 before = 0, after = 0;
	int		 i;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	h.rate = 2;
	for (i = 0; i < 3; i++)
		(void)tq_fail_one(t, q, "a@example.com", hour + i);
	(void)tq_fail_one(t, q, "b@example.com", hour + 10);
	/* Another handle (a worker is another process): the same count. */
	queue_close(q);
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	h.rate = 2;
	(void)tq_fail_one(t, q, "a@example.com", hour + 3599);
	if (queue_counter(q, "bounce_dropped", &dropped) != 0 || dropped != 2)
		t_errorf(t, "bounce_dropped: %" PRIu64 ", want 2", dropped);
	if (queue_shape(q, hour, &shape) != 0 || shape.bounce_dropped != 2)
		t_errorf(t, "queue_shape: bounce_dropped %" PRIu64 ", want 2",
		    shape.bounce_dropped);
	queue_shape_free(&shape);
	if (tq_dsns_read(t, q, &d) && d.n != 3)
		t_errorf(t, "DSNs in the first hour: %zu, want 3", d.n);
	/* The next hour: allowed again. */
	(void)tq_fail_one(t, q, "a@example.com", hour + 3600);
	if (tq_dsns_read(t, q, &d) && d.n != 4)
		t_errorf(t, "DSNs in the next hour: %zu, want 4", d.n);
	queue_close(q);
	q = NULL;
	if (!tq_db_entries(t, dir, meta, 1, &before))
		goto out;
	/* Four hours on, the three counts of the first two hours go. */
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	h.rate = 2;
	(void)tq_fail_one(t, q, "c@example.com", hour + 4 * 3600);
	queue_close(q);
	q = NULL;
	if (tq_db_entries(t, dir, meta, 1, &after) && after != before - 2)
		t_errorf(t, "meta entries: %zu, then %zu; want the old hours' "
		    "3 counts gone and 1 new", before, after);
	/* Names a report may not count. */
	{
		struct queue_report	rep;

		if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
			goto out;
		memset(&rep, 0, sizeof(rep));
		rep.queue = q;
		if (queue_report_count(&rep, "msgs") != QUEUE_E_INVAL ||
		    queue_report_count(&rep, "Bad Name") != QUEUE_E_INVAL)
			t_errorf(t, "queue_report_count(\"msgs\") allowed");
	}
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* A failure waiting for a recipient whose runner died: reported when the
 * claim comes back. A report the hook drops: QRCPT_F_NODSN, no dsn_id. */
static void
test_report_return_drop(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org" };
	static const uint32_t i0[] = { 0 };
	struct queue	*q = NULL;
	struct tq_hook	 h;
	struct qclaim	 c[8];
	struct qrcpt	 r;
	uint64_t	 id, id2;
	int64_t		 now = (int64_t)time(NULL) + 5;	/* past enqueue */
	int64_t		 hour = (now / 3600 + 10) * 3600;
	size_t		 n = 0;
	int		 rc, k, k1;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_hook_set(q, &h, 0, 0);
	h.hold = true;
	if (!tq_enqueue(t, q, addr, 2, &id))
		goto out;
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	(void)tq_record1(t, q, &c[0], QRESULT_FAILED, now, 0, "5.1.1", "550");
	if (h.ncalls != 0)
		t_errorf(t, "hook called while recipient 1 is active");
	if ((rc = queue_claim_return(q, &c[1], 1, now + 5)) != 0)
		t_errorf(t, "queue_claim_return: %d (%s)", rc, queue_errmsg(q));
	if (h.ncalls != 1)
		t_errorf(t, "after the claim came back: %zu calls, want 1",
		    h.ncalls);
	(void)tq_call_want(t, &h, 0, id, i0, 1, QREPORT_FAILED);
	(void)tq_want(t, q, id, 1, QRCPT_QUEUED, now + 5);

	/* Dropped: the rate limit of the sender is used up this hour. */
	h.rate = 1;
	(void)tq_fail_one(t, q, "sender@example.com", hour);
	if (!tq_enqueue(t, q, addr, 2, &id2))
		goto out;
	if (queue_claim_due(q, hour + 1, 300, c, NELEM(c), &n) != 0 ||
	    (k = tq_claim_find(c, n, id2, 0)) < 0 ||
	    (k1 = tq_claim_find(c, n, id2, 1)) < 0)
		t_fatalf(t, "the second message was not claimed");
	(void)tq_record1(t, q, &c[k1], QRESULT_DEFERRED, hour + 1,
	    hour + 100000, "4.4.1", "timeout");
	(void)tq_record1(t, q, &c[k], QRESULT_FAILED, hour + 1, 0, "5.1.1",
	    "550");
	if (tq_get_rcpt(t, q, id2, 0, &r) && (r.state != QRCPT_FAILED ||
	    r.dsn_id != 0 || (r.flags & (QRCPT_F_NODSN | QRCPT_F_REPORT)) !=
	    QRCPT_F_NODSN))
		t_errorf(t, "dropped: %s dsn_id %" PRIu64 " flags 0x%x; want "
		    "failed, 0, NODSN", queue_state_name(r.state), r.dsn_id,
		    r.flags);
out:
	if (q != NULL)
		queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* Crash atomicity. */

#define TQ_CRASH_MSGS	60
#define TQ_CRASH_KILLS	20

/* tq_crash_child - record failures (and some deferrals) of every due
 * recipient at `now`, in batches split at random, with a hook that sleeps
 * inside the transaction; exit 0 when nothing is left to claim. */
static void
tq_crash_child(const char *dir, int64_t now, uint64_t seed)
{
	static struct tq_hook	h;
	struct queue		*q;
	struct qclaim		 c[6];
	struct qresult		 res[6];
	size_t			 n, i;
	char			 err[256];
	uint64_t		 rng = seed;

	if (queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err)) != 0)
		_exit(2);
	tq_hook_set(q, &h, 0, 0);
	h.hold = true;
	h.sleep_us = 3000;
	h.rng = seed;
	for (;;) {
		if (queue_claim_due(q, now, 100, c, NELEM(c), &n) != 0)
			_exit(3);
		if (n == 0)
			_exit(0);
		for (i = 0; i < n; i++)
			tq_result(&res[i], &c[i], tq_rng(&rng) % 4 == 0 ?
			    QRESULT_DEFERRED : QRESULT_FAILED, now, now,
			    "5.1.1", "550");
		if (tq_rng(&rng) % 2) {
			if (queue_claim_result(q, res, n) != 0)
				_exit(4);
		} else
			for (i = 0; i < n; i++)
				if (queue_claim_result(q, &res[i], 1) != 0)
					_exit(4);
	}
}

/* tq_crash_check - every recipient of ids that is failed and reported
 * (dsn_id set) is in exactly the DSN its dsn_id names; one pending or
 * live is in none; a message that is gone has each recipient in exactly
 * one DSN. No recipient is in two. *done: every message is gone. */
static void
tq_crash_check(struct t *t, struct queue *q, const uint64_t *ids, size_t nids,
    bool *done)
{
	static struct tq_dsns	 d;
	struct qmsg		 m;
	struct qrcpt		*r;
	size_t			 i, j, l, n, hits;
	uint64_t		 in;
	int			 rc, bad = 0;

	*done = true;
	if (!tq_dsns_read(t, q, &d))
		return;
	for (i = 0; i < nids && bad < 5; i++) {
		rc = queue_get(q, ids[i], &m, &r, &n);
		if (rc != 0 && rc != QUEUE_E_NOENT) {
			t_errorf(t, "queue_get: %s", queue_errmsg(q));
			return;
		}
		if (rc == 0)
			*done = false;
		for (j = 0; j < 3; j++) {
			for (hits = 0, in = 0, l = 0; l < d.nlines; l++)
				if (d.line_id[l] == ids[i] &&
				    d.line_idx[l] == j) {
					hits++;
					in = d.line_dsn[l];
				}
			if (rc != 0) {
				if (hits != 1) {
					t_errorf(t, "%" PRIu64 "/%zu (gone): "
					    "in %zu DSNs, want 1", ids[i], j,
					    hits);
					bad++;
				}
				continue;
			}
			if (r[j].state == QRCPT_FAILED &&
			    !(r[j].flags & QRCPT_F_REPORT)) {
				if (hits != 1 || r[j].dsn_id != in) {
					t_errorf(t, "%" PRIu64 "/%zu (failed, "
					    "dsn_id %" PRIu64 "): in %zu DSNs "
					    "(%" PRIu64 "), want in 1, that "
					    "one", ids[i], j, r[j].dsn_id,
					    hits, in);
					bad++;
				}
			} else if (hits != 0 || r[j].dsn_id != 0) {
				t_errorf(t, "%" PRIu64 "/%zu (%s, flags 0x%x, "
				    "dsn_id %" PRIu64 "): in %zu DSNs, want "
				    "0", ids[i], j,
				    queue_state_name(r[j].state), r[j].flags,
				    r[j].dsn_id, hits);
				bad++;
			}
		}
		if (rc == 0)
			free(r);
	}
	if (d.nlines > 3 * nids)
		t_errorf(t, "%zu recipients reported, of %zu", d.nlines,
		    3 * nids);
}

/* Processes recording failures are killed at random points (the hook
 * sleeps a few ms inside the transaction, so many kills land there): the
 * failures and their DSNs are recorded together or not at all. A recorder
 * that finishes before it is killed gets fresh messages for the next. */
static void
test_report_crash(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org",
	    "c@example.net" };
	struct queue	*q = NULL;
	uint64_t	 ids[TQ_CRASH_MSGS * 8], seed;
	int64_t		 base = (int64_t)time(NULL);
	size_t		 i, nids = 0;
	pid_t		 pid;
	int		 kills = 0, rounds = 0, st, fd;
	bool		 done = true;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	seed = (uint64_t)base ^ (uint64_t)getpid() << 20;
	printf("# test_report_crash: seed %" PRIu64 "\n", seed);
	while (rounds < 400 && !t->failed) {
		if (done) {
			if (kills >= TQ_CRASH_KILLS)
				break;
			if (nids + TQ_CRASH_MSGS > NELEM(ids)) {
				t_errorf(t, "%d kills in %d rounds, want %d",
				    kills, rounds, TQ_CRASH_KILLS);
				break;
			}
			if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
				break;
			for (i = 0; i < TQ_CRASH_MSGS; i++)
				if (!tq_enqueue(t, q, addr, 3, &ids[nids++]))
					break;
			queue_close(q);
			q = NULL;
			if (i < TQ_CRASH_MSGS)
				break;
		}
		rounds++;
		/* Each round later than the last one's leases. */
		if ((pid = tq_fork_pipe(t, &fd)) == -1)
			break;
		if (pid == 0)
			tq_crash_child(dir, base + rounds * 1000,
			    seed + (uint64_t)rounds);
		close(fd);
		if (kills < TQ_CRASH_KILLS) {
			tq_sleep_ns((1 + tq_rng(&seed) % 25) * 1000000);
			(void)kill(pid, SIGKILL);
		}
		while (waitpid(pid, &st, 0) == -1)
			if (errno != EINTR)
				t_fatalf(t, "waitpid: %s", strerror(errno));
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			kills++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			t_errorf(t, "recorder: status 0x%x, want exit 0 or "
			    "SIGKILL", (unsigned)st);
		if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
			break;
		tq_crash_check(t, q, ids, nids, &done);
		queue_close(q);
		q = NULL;
	}
	printf("# test_report_crash: %d kills in %d rounds, %zu messages\n",
	    kills, rounds, nids);
	if (kills < TQ_CRASH_KILLS)
		t_errorf(t, "%d kills, want %d", kills, TQ_CRASH_KILLS);
	if (!done)
		t_errorf(t, "messages left after %d rounds", rounds);
	tq_rmrf(dir);
}

int
main(void)
{
	T_RUN(test_record_v1);
	T_RUN(test_report_batch);
	T_RUN(test_report_rounds);
	T_RUN(test_report_deferred);
	T_RUN(test_report_hook_error);
	T_RUN(test_report_none);
	T_RUN(test_report_delay);
	T_RUN(test_report_bounce);
	T_RUN(test_report_rate);
	T_RUN(test_report_return_drop);
	T_RUN(test_report_crash);
	T_EXIT();
}

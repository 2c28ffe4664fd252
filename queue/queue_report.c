/*
 * queue_report.c - the report hook: DSNs enqueued in the transaction that
 * records what they report.
 *
 * A result marks its recipient "report pending" (QRCPT_F_REPORT) when it
 * is something to tell the sender: a failure, a delivery with
 * NOTIFY=SUCCESS, a deferral past a delay warning's time. At the end of
 * the transaction each message touched is looked at as a whole (its
 * records share a page): while a recipient is still out with a runner its
 * pending ones wait, so that recipients of one round go in one DSN; when
 * none is, the hook gets them all, and what it returns is enqueued before
 * the commit. A crash anywhere loses the transaction as a whole: the
 * claims come back by their leases, the results are recorded again, and
 * the DSN is made again, once. Only after the report may a finished
 * message go.
 *
 * The DSN's own text is the hook's (bounce/): queue/ knows no MIME and no
 * policy, and never logs.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* Old bounce rate counts deleted per queue_report_rate() call, at most. */
#define QUEUE_REPORT_RATE_GC	16
/* The meta key prefix of the rate counts: "brate" 0x00 hour(8) key. */
#define QUEUE_REPORT_RATE_PFX	"brate"
#define QUEUE_REPORT_RATE_PLEN	6

void
queue_set_report(struct queue *q, queue_report_fn *fn, void *arg,
    const struct queue_report_conf *conf)
{
	q->report = fn;
	q->report_arg = arg;
	memset(&q->report_conf, 0, sizeof(q->report_conf));
	if (conf != NULL)
		q->report_conf = *conf;
}

void
queue_report_mark(struct queue *q, const struct qmsg *m, struct qrcpt *r,
    int kind, int64_t when, bool hop_dsn)
{
	const struct queue_report_conf	*c = &q->report_conf;

	if (q->report == NULL)
		return;
	switch (kind) {
	case QRESULT_FAILED:
		r->flags |= QRCPT_F_REPORT;
		break;
	case QRESULT_DELIVERED:
		/* A delay warning still pending is moot now. A next hop
		 * that took the DSN extension got NOTIFY with the message:
		 * it reports, not we (RFC 3461 §5.2.2). */
		if ((r->notify & QRCPT_NOTIFY_SUCCESS) && !hop_dsn)
			r->flags |= QRCPT_F_REPORT;
		else
			r->flags &= ~QRCPT_F_REPORT;
		break;
	case QRESULT_DEFERRED:
		/* Already pending: it stays so. The warning times are
		 * delay_warning, 2 * delay_warning, ... after arrival. */
		if (c->delay_warning > 0 && !(r->flags & QRCPT_F_SITE) &&
		    m->warnings < c->max_delay_warnings &&
		    when - m->arrival >= c->delay_warning *
		    ((int64_t)m->warnings + 1))
			r->flags |= QRCPT_F_REPORT;
		break;
	case QRESULT_HELD:
		/* Waiting for its site is its normal state: no warning. */
		r->flags &= ~QRCPT_F_REPORT;
		break;
	}
}

/* queue_report_body - the first min(size, cap) bytes of message m's body,
 * malloc'd, from its chunks in txn. */
static int
queue_report_body(struct queue *q, MDB_txn *txn, const struct qmsg *m,
    size_t cap, uint8_t **body, size_t *len)
{
	uint8_t		 kb[QUEUE_KEY_MSUB];
	MDB_val		 k, v;
	size_t		 want, take;
	uint32_t	 chunk;
	int		 mrc;

	*body = NULL;
	*len = 0;
	want = m->size < (uint64_t)cap ? (size_t)m->size : cap;
	if ((*body = malloc(want ? want : 1)) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (chunk = 0; *len < want && chunk < m->nchunks; chunk++) {
		queue_key_msub(kb, m->id, QUEUE_MSUB_BODY, chunk);
		if ((mrc = mdb_get(txn, q->msg, &k, &v)) != 0) {
			free(*body);
			*body = NULL;
			*len = 0;
			return queue_lmdb(q, mrc, "read body");
		}
		take = v.mv_size < want - *len ? v.mv_size : want - *len;
		memcpy(*body + *len, v.mv_data, take);
		*len += take;
	}
	return 0;
}

static int
queue_report_u64cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* queue_report_call - call the hook for message m's pending recipients
 * (r[0..n), which it rewrites) and enqueue what it returns. */
static int
queue_report_call(struct queue *q, MDB_txn *txn, struct qmsg *m,
    struct qrcpt *r, size_t n, int64_t now)
{
	struct queue_report	 rep;
	struct qreport_rcpt	*rr = NULL;
	uint8_t			*body = NULL;
	uint64_t		 dsn_id = 0;
	size_t			 i, nr = 0;
	bool			 delayed = false;
	int			 rc;

	if ((rr = calloc(n ? n : 1, sizeof(*rr))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	for (i = 0; i < n; i++) {
		if (!(r[i].flags & QRCPT_F_REPORT))
			continue;
		r[i].flags &= ~(QRCPT_F_REPORT | QRCPT_F_NODSN);
		rr[nr].rcpt = &r[i];
		if (r[i].state == QRCPT_FAILED)
			rr[nr].why = QREPORT_FAILED;
		else if (r[i].state == QRCPT_DELIVERED)
			rr[nr].why = QREPORT_DELIVERED;
		else {
			rr[nr].why = QREPORT_DELAYED;
			delayed = true;
		}
		nr++;
	}
	/* A round of delay warnings counts whatever the hook sends. */
	if (delayed && m->warnings < UINT8_MAX)
		m->warnings++;
	memset(&rep, 0, sizeof(rep));
	if ((rc = queue_report_body(q, txn, m, q->report_conf.body_cap, &body,
	    &rep.bodylen)) != 0)
		goto out;
	rep.msg = m;
	rep.rcpt = rr;
	rep.nrcpt = nr;
	rep.body = body;
	rep.truncated = rep.bodylen < m->size;
	rep.now = now;
	rep.queue = q;
	rep.txn = txn;
	q->errmsg[0] = '\0';
	if ((rc = q->report(q->report_arg, &rep)) != 0) {
		if (rc > 0)
			rc = queue_fail(q, QUEUE_E_INVAL, "report hook "
			    "returned %d", rc);
		else if (q->errmsg[0] == '\0')
			(void)queue_fail(q, rc, "report hook: %s",
			    queue_strerror(rc));
		goto out;
	}
	if (rep.dsn != NULL) {
		rep.dsn->msg.flags |= QMSG_F_DSN;
		if ((rc = queue_txn_put(q, txn, rep.dsn, now)) != 0)
			goto out;
		dsn_id = rep.dsn->msg.id;
	}
	for (i = 0; i < nr; i++) {
		struct qrcpt	*p = &r[rr[i].rcpt - r];

		p->dsn_id = dsn_id;
		if (dsn_id == 0 && rep.dropped)
			p->flags |= QRCPT_F_NODSN;
		if ((rc = queue_rec_put_rcpt(q, txn, p, 0)) != 0)
			goto out;
	}
	if (delayed)
		rc = queue_rec_put_msg(q, txn, m, 0);
out:
	free(body);
	free(rr);
	return rc;
}

int
queue_report_touched(struct queue *q, MDB_txn *txn, uint64_t *ids, size_t n,
    int64_t now)
{
	struct qmsg	 m;
	struct qrcpt	*r = NULL;
	size_t		 i, cap = 0;
	uint32_t	 j;
	bool		 active, pending;
	int		 rc = 0;

	if (q->report == NULL || n == 0)
		return 0;
	qsort(ids, n, sizeof(*ids), queue_report_u64cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		if ((rc = queue_rec_get_msg(q, txn, ids[i], &m)) ==
		    QUEUE_E_NOENT) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		if (m.nrcpt > cap) {
			void	*nv = realloc(r, m.nrcpt * sizeof(*r));

			if (nv == NULL) {
				rc = queue_fail(q, QUEUE_E_SYS,
				    "out of memory");
				break;
			}
			r = nv;
			cap = m.nrcpt;
		}
		/* The first active recipient settles it: a message with
		 * many recipients is mostly out while its batches run. */
		active = pending = false;
		for (j = 0; j < m.nrcpt && !active; j++) {
			if ((rc = queue_rec_get_rcpt(q, txn, m.id, j,
			    &r[j])) != 0)
				break;
			if (r[j].state == QRCPT_ACTIVE)
				active = true;
			if (r[j].flags & QRCPT_F_REPORT)
				pending = true;
		}
		if (rc != 0)
			break;
		/* Out with a runner: its result will report them all. */
		if (active)
			continue;
		if (pending && (rc = queue_report_call(q, txn, &m, r, m.nrcpt,
		    now)) != 0)
			break;
		if (m.nlive == 0 && (rc = queue_rec_delete_msg(q, txn,
		    m.id)) != 0)
			break;
	}
	free(r);
	return rc;
}

int
queue_report_rate(struct queue_report *rep, const char *key, int64_t now,
    uint32_t limit, bool *allowed)
{
	struct queue	*q = rep->queue;
	MDB_txn		*txn = rep->txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_REPORT_RATE_PLEN + 8 + QUEUE_ADDR_MAX];
	uint8_t		 vb[4];
	uint64_t	 hour, h;
	uint32_t	 cnt = 0;
	size_t		 klen = strlen(key), gc;
	int		 mrc;

	*allowed = true;
	if (klen > QUEUE_ADDR_MAX)
		return queue_fail(q, QUEUE_E_INVAL, "rate key too long");
	if (limit == 0)
		return 0;
	hour = now > 0 ? (uint64_t)now / 3600 : 0;
	/* Counts sort by hour: the old ones are first. */
	memcpy(kb, QUEUE_REPORT_RATE_PFX, QUEUE_REPORT_RATE_PLEN);
	memset(kb + QUEUE_REPORT_RATE_PLEN, 0, 8);
	if ((mrc = mdb_cursor_open(txn, q->meta, &cur)) != 0)
		return queue_lmdb(q, mrc, "meta cursor");
	k.mv_data = kb;
	k.mv_size = QUEUE_REPORT_RATE_PLEN + 8;
	for (gc = 0, mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	    mrc == 0 && gc < QUEUE_REPORT_RATE_GC; gc++,
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < QUEUE_REPORT_RATE_PLEN + 8 ||
		    memcmp(k.mv_data, kb, QUEUE_REPORT_RATE_PLEN) != 0)
			break;
		h = queue_be64_get((uint8_t *)k.mv_data +
		    QUEUE_REPORT_RATE_PLEN);
		if (h + 1 >= hour)
			break;		/* this hour or the last one */
		if ((mrc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return queue_lmdb(q, mrc, "bounce rate counts");
	queue_be64_put(kb + QUEUE_REPORT_RATE_PLEN, hour);
	memcpy(kb + QUEUE_REPORT_RATE_PLEN + 8, key, klen);
	k.mv_data = kb;
	k.mv_size = QUEUE_REPORT_RATE_PLEN + 8 + klen;
	if ((mrc = mdb_get(txn, q->meta, &k, &v)) == 0) {
		if (v.mv_size != 4)
			return queue_fail(q, QUEUE_E_CORRUPT, "rate count");
		cnt = queue_be32_get(v.mv_data);
	} else if (mrc != MDB_NOTFOUND)
		return queue_lmdb(q, mrc, "read rate count");
	if (cnt >= limit) {
		*allowed = false;
		return 0;
	}
	queue_be32_put(vb, cnt + 1);
	v.mv_data = vb;
	v.mv_size = 4;
	if ((mrc = mdb_put(txn, q->meta, &k, &v, 0)) != 0)
		return queue_lmdb(q, mrc, "write rate count");
	return 0;
}

/* queue_report_name_ok - a counter a report may add to: not one of the
 * queue's own keys, and a plain name. */
static bool
queue_report_name_ok(const char *name)
{
	static const char *const own[] = { "version", "seq", "msgs", "rcpts" };
	size_t	i, len = strlen(name);

	if (len == 0 || len >= 32)
		return false;
	for (i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(name, own[i]) == 0)
			return false;
	return true;
}

int
queue_report_count(struct queue_report *rep, const char *name)
{
	if (!queue_report_name_ok(name))
		return queue_fail(rep->queue, QUEUE_E_INVAL,
		    "counter name \"%s\"", name);
	return queue_rec_counter(rep->queue, rep->txn, name, 1);
}

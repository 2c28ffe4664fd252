/*
 * queue_read.c - reading for `postern queue`, `show`, `stats`, ETRN counts,
 * ATRN's "mail waiting" (queue_domain_any) and delivery.
 *
 * Walks read in bounded read transactions and call back outside them: an
 * LMDB read transaction held across slow work (a terminal, the network)
 * keeps old pages from being reused and makes the file grow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* Messages read per read transaction in queue_walk(). */
#define QUEUE_WALK_BATCH	128
/* Domain index entries queue_domain_any() looks at, at most: it runs in
 * the smtpd event loop (ATRN), so its cost must not grow with the queue.
 * Past this many claimed or operator-held entries it answers "yes". */
#define QUEUE_ANY_SCAN_MAX	1024
/* Distinct deferral reasons kept by queue_shape(). */
#define QUEUE_SHAPE_REASONS	64

const int queue_age_bucket_min[QUEUE_AGE_BUCKETS] = {
	5, 10, 20, 40, 80, 160, 320, -1,
};

static int
queue_read_get(struct queue *q, MDB_txn *txn, uint64_t id, struct qmsg *m,
    struct qrcpt **rp, size_t *n)
{
	struct qrcpt	*r;
	uint32_t	 i;
	int		 rc;

	*rp = NULL;
	*n = 0;
	if ((rc = queue_rec_get_msg(q, txn, id, m)) != 0)
		return rc;
	if ((r = calloc(m->nrcpt ? m->nrcpt : 1, sizeof(*r))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	for (i = 0; i < m->nrcpt; i++)
		if ((rc = queue_rec_get_rcpt(q, txn, id, i, &r[i])) != 0) {
			free(r);
			return rc;
		}
	*rp = r;
	*n = m->nrcpt;
	return 0;
}

int
queue_get(struct queue *q, uint64_t id, struct qmsg *m, struct qrcpt **rp,
    size_t *n)
{
	MDB_txn	*txn;
	int	 rc;

	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = queue_read_get(q, txn, id, m, rp, n);
	mdb_txn_abort(txn);
	return rc;
}

int
queue_body_chunk(struct queue *q, uint64_t id, uint32_t chunk, void *buf,
    size_t *len)
{
	MDB_txn	*txn;
	MDB_val	 k, v;
	uint8_t	 kb[QUEUE_KEY_MSUB];
	int	 rc, mrc;

	*len = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	queue_key_msub(kb, id, QUEUE_MSUB_BODY, chunk);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	if ((mrc = mdb_get(txn, q->msg, &k, &v)) != 0)
		rc = queue_lmdb(q, mrc, "read body");
	else if (v.mv_size > QUEUE_CHUNK_SIZE)
		rc = queue_fail(q, QUEUE_E_CORRUPT, "body chunk size");
	else {
		memcpy(buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}

struct queue_read_ids {
	uint64_t	*v;
	size_t		 n, cap;
};

static int
queue_read_id_add(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	struct queue_read_ids	*ids = arg;

	(void)k;
	if (v->mv_size != QUEUE_KEY_RCPT)
		return queue_fail(q, QUEUE_E_CORRUPT, "domain index entry");
	if (ids->n == ids->cap) {
		size_t	 ncap = ids->cap ? ids->cap * 2 : 256;
		void	*nv = realloc(ids->v, ncap * sizeof(*ids->v));

		if (nv == NULL)
			return queue_fail(q, QUEUE_E_SYS, "out of memory");
		ids->v = nv;
		ids->cap = ncap;
	}
	ids->v[ids->n++] = queue_be64_get(v->mv_data);
	return 0;
}

static int
queue_read_u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* queue_read_walk_ids - ids of messages, in order, from start (inclusive);
 * with a domain, all of them at once from the index. */
static int
queue_read_walk_ids(struct queue *q, MDB_txn *txn, const char *domain,
    uint64_t start, struct queue_read_ids *ids)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 kb[8];
	size_t		 i, o;
	int		 rc, mrc;

	ids->n = 0;
	if (domain != NULL) {
		if ((rc = queue_ops_dom_walk(q, txn, domain, false,
		    queue_read_id_add, ids)) != 0)
			return rc;
		if (ids->n > 1)
			qsort(ids->v, ids->n, sizeof(*ids->v),
			    queue_read_u64cmp);
		for (i = 0, o = 0; i < ids->n; i++)
			if (o == 0 || ids->v[o - 1] != ids->v[i])
				ids->v[o++] = ids->v[i];
		ids->n = o;
		return 0;
	}
	if ((mrc = mdb_cursor_open(txn, q->msg, &cur)) != 0)
		return queue_lmdb(q, mrc, "message cursor");
	queue_be64_put(kb, start);
	k.mv_data = kb;
	k.mv_size = 8;
	rc = 0;
	/* Envelopes only: from each, jump over its recipients and body. */
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	    mrc == 0 && ids->n < QUEUE_WALK_BATCH && rc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) {
		MDB_val		fake = { QUEUE_KEY_RCPT, NULL };
		uint8_t		rk[QUEUE_KEY_RCPT];
		uint64_t	id;

		if (k.mv_size < 8) {
			rc = queue_fail(q, QUEUE_E_CORRUPT, "message key");
			break;
		}
		id = queue_be64_get(k.mv_data);
		if (k.mv_size == 8) {
			memcpy(rk, k.mv_data, 8);
			memset(rk + 8, 0, 4);
			fake.mv_data = rk;
			rc = queue_read_id_add(q, ids, &k, &fake);
		}
		if (id == UINT64_MAX)
			break;
		queue_be64_put(kb, id + 1);
		k.mv_data = kb;
		k.mv_size = 8;
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "message walk");
	return rc;
}

int
queue_walk(struct queue *q, const char *domain, queue_walk_fn *fn, void *arg)
{
	struct queue_read_ids	 ids = { NULL, 0, 0 };
	struct qmsg		 m;
	struct qrcpt		*r;
	MDB_txn			*txn;
	uint64_t		 next = 0;
	size_t			 i, n, pos = 0;
	int			 rc = 0;

	for (;;) {
		if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
			break;
		if (domain == NULL || ids.v == NULL) {
			if ((rc = queue_read_walk_ids(q, txn, domain, next,
			    &ids)) != 0) {
				mdb_txn_abort(txn);
				break;
			}
			if (domain != NULL && ids.v == NULL)
				ids.v = malloc(1);	/* mark "loaded" */
			pos = 0;
		}
		/* Read up to a batch of messages, then call back with none
		 * of the transaction held. */
		struct qmsg	 ms[QUEUE_WALK_BATCH];
		struct qrcpt	*rs[QUEUE_WALK_BATCH];
		size_t		 ns[QUEUE_WALK_BATCH], got = 0;

		for (i = pos; i < ids.n && got < QUEUE_WALK_BATCH; i++) {
			rc = queue_read_get(q, txn, ids.v[i], &m, &r, &n);
			if (rc == QUEUE_E_NOENT) {
				rc = 0;
				continue;
			}
			if (rc != 0)
				break;
			ms[got] = m;
			rs[got] = r;
			ns[got++] = n;
		}
		mdb_txn_abort(txn);
		pos = i;
		for (i = 0; i < got; i++) {
			if (rc == 0)
				rc = fn(arg, &ms[i], rs[i], ns[i]);
			free(rs[i]);
		}
		if (rc != 0)
			break;
		if (domain != NULL) {
			if (pos >= ids.n)
				break;
			continue;
		}
		if (ids.n < QUEUE_WALK_BATCH)
			break;
		next = ids.v[ids.n - 1] + 1;
	}
	free(ids.v);
	return rc;
}

struct queue_read_count {
	size_t	n;
};

static int
queue_read_count1(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	(void)q;
	(void)k;
	(void)v;
	((struct queue_read_count *)arg)->n++;
	return 0;
}

int
queue_domain_count(struct queue *q, const char *domain, bool sub,
    size_t *count)
{
	struct queue_read_count	 c = { 0 };
	MDB_txn			*txn;
	int			 rc;

	*count = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = queue_ops_dom_walk(q, txn, domain, sub, queue_read_count1, &c);
	mdb_txn_abort(txn);
	if (rc == 0)
		*count = c.n;
	return rc;
}

struct queue_read_any {
	MDB_txn	*txn;
	size_t	 scanned;
	bool	 yes;
};

/* queue_read_any1 - stop (1) at the first recipient a flush could take:
 * not claimed, not held by an operator (queue_claim_eligible with
 * QUEUE_FLUSH_HELD), or past QUEUE_ANY_SCAN_MAX entries. */
static int
queue_read_any1(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	struct queue_read_any	*a = arg;
	struct qrcpt		 r;
	int			 rc;

	(void)k;
	if (v->mv_size != QUEUE_KEY_RCPT)
		return queue_fail(q, QUEUE_E_CORRUPT, "domain index entry");
	if (++a->scanned > QUEUE_ANY_SCAN_MAX) {
		a->yes = true;
		return 1;
	}
	rc = queue_rec_get_rcpt(q, a->txn, queue_be64_get(v->mv_data),
	    queue_be32_get((const uint8_t *)v->mv_data + 8), &r);
	if (rc == QUEUE_E_NOENT)
		return 0;	/* stray: the claim walk drops it */
	if (rc != 0)
		return rc;
	if (r.flags & QRCPT_F_OPHOLD)
		return 0;
	if (r.state == QRCPT_QUEUED || r.state == QRCPT_DEFERRED ||
	    (r.state == QRCPT_HELD && (r.flags & QRCPT_F_SITE))) {
		a->yes = true;
		return 1;
	}
	return 0;
}

int
queue_domain_any(struct queue *q, const char *domain, bool *yes)
{
	struct queue_read_any	 a = { NULL, 0, false };
	int			 rc;

	*yes = false;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &a.txn)) != 0)
		return rc;
	rc = queue_ops_dom_walk(q, a.txn, domain, false, queue_read_any1, &a);
	mdb_txn_abort(a.txn);
	if (rc == 1)
		rc = 0;
	if (rc == 0)
		*yes = a.yes;
	return rc;
}

int
queue_domain_msgs(struct queue *q, const struct qsel *sels, size_t nsel,
    size_t *count)
{
	struct queue_read_ids	 ids = { NULL, 0, 0 };
	MDB_txn			*txn;
	size_t			 i, n;
	int			 rc = 0;

	*count = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	for (i = 0; i < nsel && rc == 0; i++)
		if (sels[i].domain != NULL)
			rc = queue_ops_dom_walk(q, txn, sels[i].domain,
			    sels[i].subdomains, queue_read_id_add, &ids);
	mdb_txn_abort(txn);
	if (rc == 0) {
		/* Subdomains and several selections may repeat an id. */
		if (ids.n > 1)
			qsort(ids.v, ids.n, sizeof(*ids.v),
			    queue_read_u64cmp);
		for (i = 0, n = 0; i < ids.n; i++)
			if (i == 0 || ids.v[i] != ids.v[i - 1])
				n++;
		*count = n;
	}
	free(ids.v);
	return rc;
}

struct queue_read_shape_ctx {
	struct qshape	*s;
	int64_t		 now;
	MDB_txn		*txn;
	uint64_t	 last_id;
	int64_t		 last_arrival;
	size_t		 domcap;
};

static int
queue_read_shape_bucket(int64_t age)
{
	int	i;

	for (i = 0; i < QUEUE_AGE_BUCKETS - 1; i++)
		if (age < (int64_t)queue_age_bucket_min[i] * 60)
			return i;
	return QUEUE_AGE_BUCKETS - 1;
}

static void
queue_read_shape_reason(struct qshape *s, const struct qrcpt *r)
{
	char	text[sizeof(s->reason[0].text)];
	size_t	i;

	if (snprintf(text, sizeof(text), "%s %.*s", r->status[0] ? r->status :
	    "-", 80, r->reply) < 0)
		return;
	for (i = 0; i < s->nreason; i++)
		if (strcmp(s->reason[i].text, text) == 0) {
			s->reason[i].count++;
			return;
		}
	if (s->nreason < QUEUE_SHAPE_REASONS) {
		memcpy(s->reason[s->nreason].text, text, sizeof(text));
		s->reason[s->nreason++].count = 1;
	}
}

static int
queue_read_shape1(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	struct queue_read_shape_ctx	*c = arg;
	struct qshape		*s = c->s;
	struct qshape_dom	*d;
	struct qrcpt		 r;
	struct qmsg		 m;
	uint64_t		 id;
	int			 rc, b;

	if (v->mv_size != QUEUE_KEY_RCPT)
		return queue_fail(q, QUEUE_E_CORRUPT, "domain index entry");
	id = queue_be64_get(v->mv_data);
	if ((rc = queue_rec_get_rcpt(q, c->txn, id,
	    queue_be32_get((uint8_t *)v->mv_data + 8), &r)) != 0)
		return rc == QUEUE_E_NOENT ? 0 : rc;
	if (id != c->last_id) {
		if ((rc = queue_rec_get_msg(q, c->txn, id, &m)) != 0)
			return rc == QUEUE_E_NOENT ? 0 : rc;
		c->last_id = id;
		c->last_arrival = m.arrival;
	}
	d = s->ndom > 0 ? &s->dom[s->ndom - 1] : NULL;
	{
		char	dom[QUEUE_ADDR_MAX + 1];

		queue_key_dom_decode(k->mv_data, k->mv_size, dom, sizeof(dom));
		if (d == NULL || strcmp(d->domain, dom) != 0) {
			if (s->ndom == c->domcap) {
				size_t	 ncap = c->domcap ? c->domcap * 2 : 64;
				void	*nv = realloc(s->dom,
				    ncap * sizeof(*s->dom));

				if (nv == NULL)
					return queue_fail(q, QUEUE_E_SYS,
					    "out of memory");
				s->dom = nv;
				c->domcap = ncap;
			}
			d = &s->dom[s->ndom++];
			memset(d, 0, sizeof(*d));
			memcpy(d->domain, dom, sizeof(dom));
		}
	}
	b = queue_read_shape_bucket(c->now - c->last_arrival);
	d->total++;
	d->bucket[b]++;
	s->rcpts++;
	s->bucket[b]++;
	if (r.state == QRCPT_DEFERRED) {
		d->deferred++;
		queue_read_shape_reason(s, &r);
	} else if (r.state == QRCPT_HELD)
		d->held++;
	if (d->oldest == 0 || c->last_arrival < d->oldest)
		d->oldest = c->last_arrival;
	if (s->oldest == 0 || c->last_arrival < s->oldest)
		s->oldest = c->last_arrival;
	return 0;
}

static int
queue_read_shape_domcmp(const void *a, const void *b)
{
	const struct qshape_dom *x = a, *y = b;

	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->domain, y->domain);
}

static int
queue_read_shape_reasoncmp(const void *a, const void *b)
{
	const struct qshape_reason *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->text, y->text);
}

/* queue_read_shape_flushes - the domain flushes still waiting for runners. */
static int
queue_read_shape_flushes(struct queue *q, MDB_txn *txn, struct qshape *s)
{
	struct queue_flushreq	 fr;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	size_t			 cap = 0;
	int			 mrc;

	if ((mrc = mdb_cursor_open(txn, q->flushq, &cur)) != 0)
		return queue_lmdb(q, mrc, "flush cursor");
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		bool	sub;

		(void)queue_rec_dec_flush(&v, &fr);
		sub = (fr.flags & QUEUE_FLUSH_SUB) != 0;

		if (s->nflush == cap) {
			void	*nv;

			cap = cap ? cap * 2 : 8;
			if ((nv = realloc(s->flush, cap *
			    sizeof(*s->flush))) == NULL) {
				mdb_cursor_close(cur);
				return queue_fail(q, QUEUE_E_SYS,
				    "out of memory");
			}
			s->flush = nv;
		}
		s->flush[s->nflush][0] = '@';
		queue_key_dom_decode(k.mv_data, k.mv_size,
		    s->flush[s->nflush] + (sub ? 1 : 0), QUEUE_ADDR_MAX + 1);
		s->nflush++;
	}
	mdb_cursor_close(cur);
	if (mrc != MDB_NOTFOUND)
		return queue_lmdb(q, mrc, "flush walk");
	return 0;
}

int
queue_shape(struct queue *q, int64_t now, struct qshape *s)
{
	struct queue_read_shape_ctx	 c;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	int			 rc, mrc;

	memset(s, 0, sizeof(*s));
	if ((s->reason = calloc(QUEUE_SHAPE_REASONS,
	    sizeof(*s->reason))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.now = now;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &c.txn)) != 0)
		goto fail;
	if ((rc = queue_rec_get_u64(q, c.txn, "msgs", &s->msgs)) != 0 ||
	    (rc = queue_rec_get_u64(q, c.txn, "bounce_dropped",
	    &s->bounce_dropped)) != 0)
		goto fail;
	if ((mrc = mdb_cursor_open(c.txn, q->bydom, &cur)) != 0) {
		rc = queue_lmdb(q, mrc, "domain cursor");
		goto fail;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		rc = queue_read_shape1(q, &c, &k, &v);
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "domain walk");
	if (rc != 0)
		goto fail;
	if ((rc = queue_read_shape_flushes(q, c.txn, s)) != 0)
		goto fail;
	mdb_txn_abort(c.txn);
	if (s->ndom > 1)
		qsort(s->dom, s->ndom, sizeof(*s->dom),
		    queue_read_shape_domcmp);
	if (s->nreason > 1)
		qsort(s->reason, s->nreason, sizeof(*s->reason),
		    queue_read_shape_reasoncmp);
	return 0;
fail:
	if (c.txn != NULL)
		mdb_txn_abort(c.txn);
	queue_shape_free(s);
	return rc;
}

void
queue_shape_free(struct qshape *s)
{
	free(s->dom);
	free(s->reason);
	free(s->flush);
	memset(s, 0, sizeof(*s));
}

int
queue_counter(struct queue *q, const char *name, uint64_t *val)
{
	MDB_txn	*txn;
	int	 rc;

	*val = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = queue_rec_get_u64(q, txn, name, val);
	mdb_txn_abort(txn);
	return rc;
}

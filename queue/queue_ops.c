/*
 * queue_ops.c - what operators do: hold, release, requeue, flush, delete.
 *
 * A selection (ids, a domain with or without its subdomains, or all) is
 * first resolved to (id, index) pairs in a read transaction, then changed
 * in write transactions of at most QUEUE_OPS_TXN_MAX recipients: a domain
 * comes from its bydom range (never a scan); "all" walks the recipients.
 * Each change is idempotent, so splitting a large one over transactions
 * is safe; a recipient that moved on meanwhile is simply skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

struct queue_ops_set {
	uint8_t	(*v)[QUEUE_KEY_RCPT];
	size_t	  n, cap;
	bool	  whole;	/* selected by message id */
};

static int
queue_ops_add(struct queue *q, struct queue_ops_set *s, const void *key)
{
	if (s->n == s->cap) {
		size_t	ncap = s->cap ? s->cap * 2 : 1024;
		void	*nv = realloc(s->v, ncap * sizeof(*s->v));

		if (nv == NULL)
			return queue_fail(q, QUEUE_E_SYS, "out of memory");
		s->v = nv;
		s->cap = ncap;
	}
	memcpy(s->v[s->n++], key, QUEUE_KEY_RCPT);
	return 0;
}

/* queue_ops_dom_walk - call fn for each bydom entry of domain (and, with
 * sub, every key below it). */
int
queue_ops_dom_walk(struct queue *q, MDB_txn *txn, const char *domain,
    bool sub, int (*fn)(struct queue *, void *, const MDB_val *,
    const MDB_val *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	char		 key[QUEUE_ADDR_MAX + 2];
	size_t		 klen;
	int		 mrc, rc = 0;

	if ((klen = queue_key_dom(domain, key, sizeof(key) - 1)) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "bad domain \"%s\"", domain);
	if ((mrc = mdb_cursor_open(txn, q->bydom, &cur)) != 0)
		return queue_lmdb(q, mrc, "domain cursor");
	k.mv_data = key;
	k.mv_size = klen;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		bool exact = k.mv_size == klen &&
		    memcmp(k.mv_data, key, klen) == 0;
		bool below = sub && k.mv_size > klen &&
		    memcmp(k.mv_data, key, klen) == 0 &&
		    ((char *)k.mv_data)[klen] == '.';

		if (!exact && !below) {
			/* Keys between "org.example" and "org.example." sort
			 * (e.g. "org.example-x"): skip them, stop past. */
			if (sub && k.mv_size > klen &&
			    memcmp(k.mv_data, key, klen) == 0)
				continue;
			break;
		}
		if ((rc = fn(q, arg, &k, &v)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "domain walk");
	return rc;
}

static int
queue_ops_dom_add(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	(void)k;
	if (v->mv_size != QUEUE_KEY_RCPT)
		return queue_fail(q, QUEUE_E_CORRUPT, "domain index entry");
	return queue_ops_add(q, arg, v->mv_data);
}

static int
queue_ops_select(struct queue *q, const struct qsel *sel,
    struct queue_ops_set *s)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct qmsg	 m;
	uint8_t		 kb[QUEUE_KEY_RCPT];
	size_t		 i;
	uint32_t	 j;
	int		 rc = 0, mrc;

	memset(s, 0, sizeof(*s));
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	if (sel->nids > 0) {
		s->whole = true;
		for (i = 0; i < sel->nids && rc == 0; i++) {
			char	idbuf[QUEUE_ID_LEN + 1];

			if ((rc = queue_rec_get_msg(q, txn, sel->ids[i],
			    &m)) != 0) {
				queue_id_format(sel->ids[i], idbuf);
				if (rc == QUEUE_E_NOENT)
					queue_fail(q, rc, "%s: no such message",
					    idbuf);
				break;
			}
			for (j = 0; j < m.nrcpt && rc == 0; j++) {
				queue_key_rcpt(kb, m.id, j);
				rc = queue_ops_add(q, s, kb);
			}
		}
	} else if (sel->domain != NULL) {
		rc = queue_ops_dom_walk(q, txn, sel->domain, sel->subdomains,
		    queue_ops_dom_add, s);
	} else if (sel->all) {
		/* Every message's recipients: the walk reads the keys
		 * (body chunks are in the same database, but their
		 * bytes are on overflow pages it does not touch). */
		if ((mrc = mdb_cursor_open(txn, q->msg, &cur)) != 0) {
			rc = queue_lmdb(q, mrc, "recipient cursor");
		} else {
			for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
			    mrc == 0 && rc == 0;
			    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
				const uint8_t *p = k.mv_data;

				if (k.mv_size != QUEUE_KEY_MSUB ||
				    p[8] != QUEUE_MSUB_RCPT)
					continue;
				queue_key_rcpt(kb, queue_be64_get(p),
				    queue_be32_get(p + 9));
				rc = queue_ops_add(q, s, kb);
			}
			mdb_cursor_close(cur);
		}
	} else
		rc = queue_fail(q, QUEUE_E_INVAL, "empty selection");
	mdb_txn_abort(txn);
	if (rc != 0) {
		free(s->v);
		s->v = NULL;
	}
	return rc;
}

/* An op changes one recipient; returns 1 if it changed it, 0 if not, or
 * a negative error. */
typedef int queue_ops_fn(struct queue *, MDB_txn *, struct qrcpt *,
    int64_t now, bool flag);

static int
queue_ops_apply1(struct queue *q, const struct qsel *sel, queue_ops_fn *fn,
    int64_t now, bool flag, size_t *count)
{
	struct queue_ops_set	 s;
	struct qrcpt		 r;
	MDB_txn			*txn = NULL;
	size_t			 i, intxn = 0;
	int			 rc;

	*count = 0;
	if ((rc = queue_ops_select(q, sel, &s)) != 0)
		return rc;
	for (i = 0; i < s.n; i++) {
		if (txn == NULL && (rc = queue_txn_begin(q, 0, &txn)) != 0)
			goto fail;
		rc = queue_rec_get_rcpt(q, txn, queue_be64_get(s.v[i]),
		    queue_be32_get(s.v[i] + 8), &r);
		if (rc == QUEUE_E_NOENT)
			continue;	/* its message went meanwhile */
		if (rc != 0)
			goto fail;
		if (r.state == QRCPT_DELIVERED || r.state == QRCPT_FAILED)
			continue;
		if ((rc = fn(q, txn, &r, now, flag)) < 0)
			goto fail;
		*count += (size_t)rc;
		if (++intxn == QUEUE_OPS_TXN_MAX) {
			rc = queue_txn_commit(q, txn);
			txn = NULL;
			intxn = 0;
			if (rc != 0)
				goto fail;
		}
	}
	rc = txn != NULL ? queue_txn_commit(q, txn) : 0;
	txn = NULL;
	if (rc != 0)
		goto fail;
	free(s.v);
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(s.v);
	return rc;
}

/* queue_ops_apply - once more after a nudge when the queue is full
 * (queue_txn.c): `postern delete` is how an operator makes room, and it
 * must not fail for want of the room it is about to free. An op done
 * twice changes nothing the second time. */
static int
queue_ops_apply(struct queue *q, const struct qsel *sel, queue_ops_fn *fn,
    int64_t now, bool flag, size_t *count)
{
	size_t	again = 0;
	int	rc;

	rc = queue_ops_apply1(q, sel, fn, now, flag, count);
	if (rc != QUEUE_E_FULL || queue_txn_nudge(q) != 0)
		return rc;
	rc = queue_ops_apply1(q, sel, fn, now, flag, &again);
	*count += again;
	return rc;
}

static int
queue_ops_put(struct queue *q, MDB_txn *txn, struct qrcpt *r, int64_t due)
{
	int	rc;

	if ((rc = queue_rec_due_set(q, txn, r, due)) != 0 ||
	    (rc = queue_rec_put_rcpt(q, txn, r, 0)) != 0)
		return rc;
	return 1;
}

static int
queue_ops_hold1(struct queue *q, MDB_txn *txn, struct qrcpt *r, int64_t now,
    bool flag)
{
	(void)now;
	(void)flag;
	if (r->flags & QRCPT_F_OPHOLD)
		return 0;
	r->flags |= QRCPT_F_OPHOLD;
	if (r->state == QRCPT_ACTIVE) {
		/* Out for delivery: its result will find it held. */
		return queue_ops_put(q, txn, r, r->due);
	}
	r->prev_state = r->state;
	r->saved_due = r->due;
	r->state = QRCPT_HELD;
	return queue_ops_put(q, txn, r, 0);
}

int
queue_hold(struct queue *q, const struct qsel *sel, size_t *count)
{
	return queue_ops_apply(q, sel, queue_ops_hold1, queue_now(), false,
	    count);
}

static int
queue_ops_release1(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t now, bool flag)
{
	(void)flag;
	if (!(r->flags & QRCPT_F_OPHOLD))
		return 0;
	r->flags &= ~QRCPT_F_OPHOLD;
	if (r->state == QRCPT_ACTIVE)
		return queue_ops_put(q, txn, r, r->due);
	r->state = r->prev_state;
	if (r->state == QRCPT_HELD && (r->flags & QRCPT_F_SITE))
		/* Back to waiting for its site, with its hold expiry. */
		return queue_ops_put(q, txn, r, r->saved_due);
	if (r->state != QRCPT_DEFERRED)
		r->state = QRCPT_QUEUED;
	return queue_ops_put(q, txn, r, now);
}

int
queue_release(struct queue *q, const struct qsel *sel, size_t *count)
{
	return queue_ops_apply(q, sel, queue_ops_release1, queue_now(), false,
	    count);
}

static int
queue_ops_requeue1(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t now, bool flag)
{
	(void)flag;
	if (r->state == QRCPT_ACTIVE)
		return 0;
	r->attempts = 0;
	r->flags &= ~QRCPT_F_OPHOLD;
	if (r->state == QRCPT_HELD && r->prev_state == QRCPT_HELD &&
	    (r->flags & QRCPT_F_SITE)) {
		r->state = QRCPT_HELD;
		return queue_ops_put(q, txn, r, r->saved_due);
	}
	if (r->state == QRCPT_HELD && (r->flags & QRCPT_F_SITE))
		return queue_ops_put(q, txn, r, r->due);
	r->state = QRCPT_QUEUED;
	return queue_ops_put(q, txn, r, now);
}

int
queue_requeue(struct queue *q, const struct qsel *sel, size_t *count)
{
	return queue_ops_apply(q, sel, queue_ops_requeue1, queue_now(), false,
	    count);
}

static int
queue_ops_flush1(struct queue *q, MDB_txn *txn, struct qrcpt *r, int64_t now,
    bool held)
{
	if (r->flags & QRCPT_F_OPHOLD)
		return 0;
	switch (r->state) {
	case QRCPT_QUEUED:
	case QRCPT_DEFERRED:
		if (r->due != 0 && r->due <= now)
			return 0;	/* already due */
		return queue_ops_put(q, txn, r, now);
	case QRCPT_HELD:
		if (!held)
			return 0;
		r->saved_due = r->due;	/* its hold expiry, for later */
		r->state = r->attempts > 0 ? QRCPT_DEFERRED : QRCPT_QUEUED;
		r->flags |= QRCPT_F_FLUSHED;	/* to its MX, like an ETRN */
		return queue_ops_put(q, txn, r, now);
	}
	return 0;			/* active: already on its way */
}

/*
 * A domain flush does not rewrite its recipients here: that would touch a
 * page per recipient wherever they lie in a large queue. It records one
 * flush request; queue_claim_due() then feeds the domain's recipients from
 * its bydom range to the runners, in bounded batches (paced, as a flush of
 * 100,000 must be). The cost of the command is the same in any queue.
 */
static int
queue_ops_flush_request(struct queue *q, const struct qsel *sel, bool held,
    int64_t now, size_t *count)
{
	struct queue_flushreq	 fr, old;
	MDB_txn			*txn = NULL;
	MDB_val			 k, v;
	char			 key[QUEUE_ADDR_MAX + 1];
	size_t			 klen;
	int			 rc;

	if ((rc = queue_domain_count(q, sel->domain, sel->subdomains,
	    count)) != 0)
		return rc;
	if ((klen = queue_key_dom(sel->domain, key, sizeof(key))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "bad domain");
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	k.mv_data = key;
	k.mv_size = klen;
	memset(&fr, 0, sizeof(fr));
	fr.flags = (sel->subdomains ? QUEUE_FLUSH_SUB : 0) |
	    (held ? QUEUE_FLUSH_HELD : 0);
	fr.when = now;
	if (sel->caller != NULL && sel->caller[0] != '\0') {
		if (strlen(sel->caller) > QUEUE_CALLER_MAX) {
			mdb_txn_abort(txn);
			return queue_fail(q, QUEUE_E_INVAL, "bad caller");
		}
		fr.flags |= QUEUE_FLUSH_CALLER;
		memcpy(fr.caller, sel->caller, strlen(sel->caller) + 1);
	}
	/* A flush already waiting widens to this one, and starts over; a
	 * caller's address it had stays unless this one brings a newer. A
	 * caller with subdomains (one request "@d", the other a caller's
	 * "d") is safe: the claim gives the caller only to d's own
	 * recipients (queue_claim_flush), never to a subdomain's. */
	if (mdb_get(txn, q->flushq, &k, &v) == 0) {
		(void)queue_rec_dec_flush(&v, &old);
		if ((old.flags & QUEUE_FLUSH_CALLER) &&
		    !(fr.flags & QUEUE_FLUSH_CALLER))
			memcpy(fr.caller, old.caller, sizeof(fr.caller));
		fr.flags |= old.flags;
	}
	if ((rc = queue_rec_put_flush(q, txn, &k, &fr)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return queue_txn_commit(q, txn);
}

int
queue_flush(struct queue *q, const struct qsel *sel, bool held, int64_t now,
    size_t *count)
{
	if (sel->nids == 0 && sel->domain != NULL)
		return queue_ops_flush_request(q, sel, held, now, count);
	return queue_ops_apply(q, sel, queue_ops_flush1, now, held, count);
}

static int
queue_ops_delete1(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t now, bool flag)
{
	int	rc;

	(void)flag;
	r->state = QRCPT_FAILED;
	r->claim = 0;
	queue_rec_hist_add(r, now, "5.0.0", "deleted by the operator");
	if ((rc = queue_rec_final(q, txn, r, false)) != 0)
		return rc;
	return 1;
}

int
queue_delete(struct queue *q, const struct qsel *sel, size_t *count)
{
	return queue_ops_apply(q, sel, queue_ops_delete1, queue_now(), false,
	    count);
}

static int
queue_ops_keycmp(const void *a, const void *b)
{
	return memcmp(a, b, QUEUE_KEY_RCPT);
}

/*
 * queue_bounce: one transaction per message, so that its failed
 * recipients and the DSN that reports them commit together (and a
 * message's recipients selected by domain go in one DSN). A recipient out
 * with a runner is skipped: failing it under the runner would race its
 * result, which comes soon and is reported then. Without a hook this is a
 * failure recorded in the history, like queue_delete.
 */
int
queue_bounce(struct queue *q, const struct qsel *sel, const char *status,
    const char *text, int64_t now, size_t *count)
{
	struct queue_ops_set	 s;
	struct qrcpt		 r;
	MDB_txn			*txn = NULL;
	uint64_t		 id;
	size_t			 i, j, changed;
	bool			 keep = q->report != NULL;
	int			 rc = 0;

	*count = 0;
	if (status == NULL)
		status = "5.0.0";
	if (text == NULL)
		text = "returned by the administrator";
	if ((rc = queue_ops_select(q, sel, &s)) != 0)
		return rc;
	if (s.n > 1)
		qsort(s.v, s.n, sizeof(*s.v), queue_ops_keycmp);
	for (i = 0; i < s.n; i = j) {
		id = queue_be64_get(s.v[i]);
		for (j = i + 1; j < s.n && queue_be64_get(s.v[j]) == id; j++)
			continue;
		if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
			goto fail;
		changed = 0;
		for (; i < j; i++) {
			if (i > 0 && memcmp(s.v[i], s.v[i - 1],
			    QUEUE_KEY_RCPT) == 0)
				continue;
			rc = queue_rec_get_rcpt(q, txn, id,
			    queue_be32_get(s.v[i] + 8), &r);
			if (rc == QUEUE_E_NOENT)
				break;		/* the message went */
			if (rc != 0)
				goto fail;
			if (r.state == QRCPT_DELIVERED ||
			    r.state == QRCPT_FAILED || r.state == QRCPT_ACTIVE)
				continue;
			r.state = QRCPT_FAILED;
			r.claim = 0;
			snprintf(r.status, sizeof(r.status), "%s", status);
			snprintf(r.reply, sizeof(r.reply), "%s", text);
			queue_rec_hist_add(&r, now, status, text);
			if (keep)
				r.flags |= QRCPT_F_REPORT;
			if ((rc = queue_rec_final(q, txn, &r, keep)) != 0)
				goto fail;
			changed++;
		}
		rc = 0;
		if (changed == 0) {
			mdb_txn_abort(txn);
			txn = NULL;
			continue;
		}
		if (keep && (rc = queue_report_touched(q, txn, &id, 1,
		    now)) != 0)
			goto fail;
		rc = queue_txn_commit(q, txn);
		txn = NULL;
		if (rc != 0)
			goto fail;
		*count += changed;
	}
	free(s.v);
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(s.v);
	return rc;
}

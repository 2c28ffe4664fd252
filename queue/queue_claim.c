/*
 * queue_claim.c - claims, leases and delivery results.
 *
 * A claim is the write transaction that turns due recipients "active":
 * each gets the claim's token and its due key moves to now + lease. Only a
 * result carrying the same token is recorded, so a runner that died (its
 * lease ran out, the recipient was claimed again) cannot overwrite the
 * newer runner's result, and no recipient is delivered by two runners at
 * once while a lease holds. The due walk is a range read from the start of
 * the index: finding work never scans the queue. Lease ends are wall-clock
 * times (a lease must outlive its holder); after a forward step of the
 * wall clock the scheduler sets a grace (queue_claim_grace) so that live
 * leases are not taken for expired, and after a backward step it moves
 * what the old clock timed (queue_claim_shift).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* How many due keys one claim looks at before giving up on this round
 * (stray or skipped entries must not make a claim unbounded). */
#define QUEUE_CLAIM_SCAN_MAX	65536

struct queue_claim_key {
	int64_t		t;
	uint64_t	id;
	uint32_t	idx;
	bool		exact;	/* a flush's: in the request's own domain */
};

/* How many flush requests one claim serves, at most. */
#define QUEUE_CLAIM_FLUSH_MAX	16

struct queue_claim_fkey {
	char			key[QUEUE_ADDR_MAX + 1];
	size_t			klen;
	struct queue_flushreq	req;	/* its flags; where the walk stopped */
	int64_t			since;	/* ad hoc: skip recipients tried
					 * since */
};

/* queue_claim_eligible - may a flush with these flags take r? Queued or
 * deferred at any due time; held for its site when the flush says so;
 * never active or operator-held. */
static bool
queue_claim_eligible(const struct qrcpt *r, uint8_t flags)
{
	if (r->flags & QRCPT_F_OPHOLD)
		return false;
	return r->state == QRCPT_QUEUED || r->state == QRCPT_DEFERRED ||
	    (r->state == QRCPT_HELD && (r->flags & QRCPT_F_SITE) &&
	    (flags & QUEUE_FLUSH_HELD));
}

/* queue_claim_take - claim one recipient for delivery. */
static int
queue_claim_take(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t now, int64_t lease, uint64_t token, const char *caller,
    struct qclaim *c)
{
	int	rc;

	c->id = r->id;
	/* The request's caller (an authenticated ETRN): the scheduler sends
	 * a "caller:PORT" domain's recipients there. */
	memcpy(c->caller, caller, strnlen(caller, QUEUE_CALLER_MAX));
	c->caller[strnlen(caller, QUEUE_CALLER_MAX)] = '\0';
	c->idx = r->idx;
	c->token = token;
	c->kind = QCLAIM_DELIVER;
	c->flushed = true;
	queue_domain_of(r->addr, c->domain, sizeof(c->domain));
	if (r->state == QRCPT_HELD) {
		/* Flushed for its site: out of the hold, its expiry kept. */
		r->saved_due = r->due;
		r->prev_state = r->attempts > 0 ? QRCPT_DEFERRED : QRCPT_QUEUED;
	} else
		r->prev_state = r->state;
	r->state = QRCPT_ACTIVE;
	r->claim = token;
	/* Not due before the lease ends: its old due entry, somewhere in a
	 * large index, is left for the due walk to drop (one scattered page
	 * less to write per recipient of a flush). */
	if (r->due > now + lease)
		rc = queue_rec_due_leave(q, txn, r, now + lease);
	else
		rc = queue_rec_due_set(q, txn, r, now + lease);
	if (rc != 0)
		return rc;
	return queue_rec_put_rcpt(q, txn, r, 0);
}

/*
 * queue_claim_flush - serve the flush requests: walk each requested
 * domain's bydom range from where the last claim stopped and claim what is
 * eligible (queued or deferred at any due time; held for its site when the
 * request says so; never active or operator-held ones). A request whose
 * range is done is removed.
 */
static int
queue_claim_flush(struct queue *q, MDB_txn *txn, int64_t now, int64_t lease,
    uint64_t token, struct qclaim *out, size_t max, size_t *n,
    size_t *nrequests, const struct queue_claim_fkey *adhoc)
{
	bool			 persist = adhoc == NULL;
	struct queue_claim_fkey	*fk;
	struct queue_claim_key	*cand = NULL;
	MDB_cursor		*cur = NULL;
	MDB_val			 k, v;
	struct qrcpt		 r;
	size_t			 nf = 0, f, nc, i, scanned;
	int			 rc = 0, mrc;
	bool			 done;

	if ((fk = calloc(QUEUE_CLAIM_FLUSH_MAX, sizeof(*fk))) == NULL ||
	    (cand = calloc(max, sizeof(*cand))) == NULL) {
		free(fk);
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	}
	if (adhoc != NULL) {
		fk[nf++] = *adhoc;
		goto serve;
	}
	if ((mrc = mdb_cursor_open(txn, q->flushq, &cur)) != 0) {
		rc = queue_lmdb(q, mrc, "flush cursor");
		goto out;
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	    mrc == 0 && nf < QUEUE_CLAIM_FLUSH_MAX;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > QUEUE_ADDR_MAX ||
		    queue_rec_dec_flush(&v, &fk[nf].req) != 0)
			continue;
		memcpy(fk[nf].key, k.mv_data, k.mv_size);
		fk[nf].klen = k.mv_size;
		nf++;
	}
	mdb_cursor_close(cur);
	cur = NULL;
serve:
	*nrequests = nf;

	for (f = 0; f < nf && *n < max; f++) {
		struct queue_claim_fkey *q1 = &fk[f];
		struct queue_flushreq *fr = &q1->req;
		bool sub = (fr->flags & QUEUE_FLUSH_SUB) != 0;

		if ((mrc = mdb_cursor_open(txn, q->bydom, &cur)) != 0) {
			rc = queue_lmdb(q, mrc, "domain cursor");
			goto out;
		}
		if (fr->rklen > 0) {
			k.mv_data = fr->rkey;
			k.mv_size = fr->rklen;
			v.mv_data = fr->rval;
			v.mv_size = QUEUE_KEY_RCPT;
			mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
			if (mrc == 0 && v.mv_size == QUEUE_KEY_RCPT &&
			    memcmp(v.mv_data, fr->rval, QUEUE_KEY_RCPT) == 0)
				mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			else if (mrc == MDB_NOTFOUND) {
				k.mv_data = fr->rkey;
				k.mv_size = fr->rklen;
				mrc = mdb_cursor_get(cur, &k, &v,
				    MDB_SET_RANGE);
				/* Past the stopped key: its entries went. */
				if (mrc == 0 && k.mv_size == fr->rklen &&
				    memcmp(k.mv_data, fr->rkey,
				    fr->rklen) == 0)
					mrc = mdb_cursor_get(cur, &k, &v,
					    MDB_NEXT_NODUP);
			}
		} else {
			k.mv_data = q1->key;
			k.mv_size = q1->klen;
			mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		}
		nc = 0;
		done = true;
		for (scanned = 0; mrc == 0; scanned++,
		    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			bool pre = k.mv_size >= q1->klen &&
			    memcmp(k.mv_data, q1->key, q1->klen) == 0;
			bool exact = pre && k.mv_size == q1->klen;
			bool below = sub && pre && k.mv_size > q1->klen &&
			    ((char *)k.mv_data)[q1->klen] == '.';

			if (!exact && !below) {
				if (sub && pre)
					continue;	/* "org.example-x" */
				break;
			}
			if (nc == max - *n || scanned >= QUEUE_CLAIM_SCAN_MAX) {
				done = false;
				break;
			}
			if (v.mv_size != QUEUE_KEY_RCPT)
				continue;
			/* Remember the position: the last one looked at. */
			if (k.mv_size <= QUEUE_ADDR_MAX) {
				memcpy(fr->rkey, k.mv_data, k.mv_size);
				fr->rklen = k.mv_size;
				memcpy(fr->rval, v.mv_data, QUEUE_KEY_RCPT);
			}
			cand[nc].id = queue_be64_get(v.mv_data);
			cand[nc].idx = queue_be32_get((uint8_t *)v.mv_data + 8);
			cand[nc].exact = exact;
			/* Only what can be taken counts toward the batch. */
			if (queue_rec_get_rcpt(q, txn, cand[nc].id,
			    cand[nc].idx, &r) != 0 ||
			    !queue_claim_eligible(&r, fr->flags) ||
			    (q1->since > 0 && r.last_try >= q1->since))
				continue;
			nc++;
		}
		if (mrc != 0 && mrc != MDB_NOTFOUND) {
			rc = queue_lmdb(q, mrc, "domain walk");
			goto out;
		}
		mdb_cursor_close(cur);
		cur = NULL;
		for (i = 0; i < nc; i++) {
			rc = queue_rec_get_rcpt(q, txn, cand[i].id, cand[i].idx,
			    &r);
			if (rc == QUEUE_E_NOENT)
				continue;
			if (rc != 0)
				goto out;
			rc = 0;
			if (queue_claim_eligible(&r, fr->flags) &&
			    !(q1->since > 0 && r.last_try >= q1->since)) {
				/* The caller only for the request's own
				 * domain: its owner asked for that one. A
				 * subdomain may be another owner's
				 * "caller:PORT" domain. */
				if ((rc = queue_claim_take(q, txn, &r, now,
				    lease, token, (fr->flags &
				    QUEUE_FLUSH_CALLER) && cand[i].exact ?
				    fr->caller : "", &out[*n])) != 0)
					goto out;
				(*n)++;
			}
		}
		k.mv_data = q1->key;
		k.mv_size = q1->klen;
		if (!persist)
			continue;
		if (done) {
			if ((mrc = mdb_del(txn, q->flushq, &k, NULL)) != 0 &&
			    mrc != MDB_NOTFOUND) {
				rc = queue_lmdb(q, mrc, "delete flush request");
				goto out;
			}
		} else {
			fr->when = now;
			if ((rc = queue_rec_put_flush(q, txn, &k, fr)) != 0)
				goto out;
		}
	}
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	free(fk);
	free(cand);
	return rc;
}

int
queue_claim_due(struct queue *q, int64_t now, int64_t lease,
    struct qclaim *out, size_t max, size_t *n)
{
	struct queue_claim_key	*keys = NULL;
	struct qrcpt		 r;
	MDB_txn			*txn = NULL;
	MDB_cursor		*cur = NULL;
	MDB_val			 k, v;
	uint64_t		 token;
	size_t			 nkeys = 0, i, scanned = 0, nreq = 0;
	int			 rc, mrc;

	*n = 0;
	if (max == 0)
		return 0;
	if (lease < 1)
		lease = 1;
	if ((keys = calloc(max, sizeof(*keys))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		goto fail;
	if ((rc = queue_txn_seq(q, txn, &token)) != 0)
		goto fail;
	/* Flushed domains first: an operator or a site is waiting. */
	if ((rc = queue_claim_flush(q, txn, now, lease, token, out, max,
	    n, &nreq, NULL)) != 0)
		goto fail;
	if ((mrc = mdb_cursor_open(txn, q->due, &cur)) != 0) {
		rc = queue_lmdb(q, mrc, "due cursor");
		goto fail;
	}
	/* First collect, then change: no cursor is live while we write. */
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	    mrc == 0 && nkeys < max - *n && scanned < QUEUE_CLAIM_SCAN_MAX;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), scanned++) {
		if (k.mv_size != QUEUE_KEY_DUE) {
			rc = queue_fail(q, QUEUE_E_CORRUPT, "due key size");
			goto fail;
		}
		keys[nkeys].t = (int64_t)queue_be64_get(k.mv_data);
		if (keys[nkeys].t > now)
			break;
		keys[nkeys].id = queue_be64_get((uint8_t *)k.mv_data + 8);
		keys[nkeys].idx = queue_be32_get((uint8_t *)k.mv_data + 16);
		nkeys++;
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = queue_lmdb(q, mrc, "due walk");
		goto fail;
	}
	/* Stopped by the limit inside a message: its recipients due with the
	 * last one stay for the next claim, so that they go out together in
	 * one transaction (unless the message alone fills the claim). */
	if (mrc == 0 && nkeys > 0 && nkeys == max - *n &&
	    k.mv_size == QUEUE_KEY_DUE &&
	    (int64_t)queue_be64_get(k.mv_data) == keys[nkeys - 1].t &&
	    queue_be64_get((uint8_t *)k.mv_data + 8) == keys[nkeys - 1].id) {
		i = nkeys;
		while (i > 0 && keys[i - 1].id == keys[nkeys - 1].id &&
		    keys[i - 1].t == keys[nkeys - 1].t)
			i--;
		if (i > 0)
			nkeys = i;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (nkeys == 0 && *n == 0) {
		free(keys);
		/* Nothing: but a finished flush request may have gone. An
		 * idle poll writes nothing (no fsync). */
		if (nreq > 0)
			return queue_txn_commit(q, txn);
		mdb_txn_abort(txn);
		return 0;
	}
	for (i = 0; i < nkeys; i++) {
		struct qclaim	*c;
		uint8_t		 kb[QUEUE_KEY_DUE];

		rc = queue_rec_get_rcpt(q, txn, keys[i].id, keys[i].idx, &r);
		if (rc == 0 && r.due == keys[i].t && r.state == QRCPT_ACTIVE &&
		    (r.flags & QRCPT_F_OPHOLD)) {
			/* Held while out, and its runner died: it is held
			 * now, as if it had come back (queue_claim_return). */
			r.state = QRCPT_HELD;
			r.claim = 0;
			r.saved_due = now;
			if ((rc = queue_rec_due_set(q, txn, &r, 0)) != 0 ||
			    (rc = queue_rec_put_rcpt(q, txn, &r, 0)) != 0)
				goto fail;
			continue;
		}
		if (rc != 0 || r.due != keys[i].t ||
		    r.state == QRCPT_DELIVERED || r.state == QRCPT_FAILED ||
		    (r.flags & QRCPT_F_OPHOLD)) {
			/* A stray key (its recipient moved on): drop it. */
			if (rc != 0 && rc != QUEUE_E_NOENT)
				goto fail;
			queue_key_due(kb, keys[i].t, keys[i].id, keys[i].idx);
			k.mv_data = kb;
			k.mv_size = sizeof(kb);
			(void)mdb_del(txn, q->due, &k, NULL);
			if (rc == 0 && r.due == keys[i].t) {
				r.due = 0;
				if ((rc = queue_rec_put_rcpt(q, txn, &r, 0)) != 0)
					goto fail;
			}
			rc = 0;
			continue;
		}
		if (r.state == QRCPT_ACTIVE && r.claim == token)
			continue;	/* a flush above took it just now */
		/* The clock jumped ahead: its holder is alive and renews. */
		if (r.state == QRCPT_ACTIVE && q->lease_grace > 0 &&
		    r.due > now - q->lease_grace)
			continue;
		c = &out[(*n)++];
		c->id = r.id;
		c->idx = r.idx;
		c->token = token;
		c->flushed = (r.flags & QRCPT_F_FLUSHED) != 0;
		c->caller[0] = '\0';
		/* A claim whose runner died keeps its kind. */
		c->kind = ((r.state == QRCPT_ACTIVE ? r.prev_state : r.state) ==
		    QRCPT_HELD) ? QCLAIM_EXPIRE : QCLAIM_DELIVER;
		queue_domain_of(r.addr, c->domain, sizeof(c->domain));
		if (r.state != QRCPT_ACTIVE)
			r.prev_state = r.state;
		r.state = QRCPT_ACTIVE;
		r.claim = token;
		if ((rc = queue_rec_due_set(q, txn, &r, now + lease)) != 0 ||
		    (rc = queue_rec_put_rcpt(q, txn, &r, 0)) != 0)
			goto fail;
	}
	free(keys);
	if ((rc = queue_txn_commit(q, txn)) != 0)
		*n = 0;
	return rc;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(keys);
	*n = 0;
	return rc;
}

int
queue_claim_domain(struct queue *q, const char *domain, bool sub, bool held,
    int64_t since, int64_t now, int64_t lease, struct qclaim *out, size_t max,
    size_t *n)
{
	struct queue_claim_fkey	 fk;
	MDB_txn			*txn = NULL;
	uint64_t		 token;
	size_t			 nreq;
	int			 rc;

	*n = 0;
	memset(&fk, 0, sizeof(fk));
	if ((fk.klen = queue_key_dom(domain, fk.key, sizeof(fk.key))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "bad domain \"%s\"",
		    domain);
	fk.req.flags = (sub ? QUEUE_FLUSH_SUB : 0) |
	    (held ? QUEUE_FLUSH_HELD : 0);
	fk.since = since;
	if (lease < 1)
		lease = 1;
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	if ((rc = queue_txn_seq(q, txn, &token)) != 0 ||
	    (rc = queue_claim_flush(q, txn, now, lease, token, out, max, n,
	    &nreq, &fk)) != 0) {
		mdb_txn_abort(txn);
		*n = 0;
		return rc;
	}
	if (*n == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	if ((rc = queue_txn_commit(q, txn)) != 0)
		*n = 0;
	return rc;
}

void
queue_claim_grace(struct queue *q, int64_t secs)
{
	q->lease_grace = secs > 0 ? secs : 0;
}

/* queue_claim_shift_keys - the due keys in (now, end], at most max. */
static int
queue_claim_shift_keys(struct queue *q, int64_t now, int64_t end,
    struct queue_claim_key *keys, size_t max, size_t *nkeys)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_KEY_DUE];
	int64_t		 t;
	int		 rc = 0, mrc;

	*nkeys = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, q->due, &cur)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "due cursor");
	}
	queue_key_due(kb, now + 1, 0, 0);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	    mrc == 0 && *nkeys < max; mrc = mdb_cursor_get(cur, &k, &v,
	    MDB_NEXT)) {
		if (k.mv_size != QUEUE_KEY_DUE) {
			rc = queue_fail(q, QUEUE_E_CORRUPT, "due key size");
			break;
		}
		if ((t = (int64_t)queue_be64_get(k.mv_data)) > end)
			break;
		keys[*nkeys].t = t;
		keys[*nkeys].id = queue_be64_get((uint8_t *)k.mv_data + 8);
		keys[*nkeys].idx = queue_be32_get((uint8_t *)k.mv_data + 16);
		(*nkeys)++;
	}
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "due walk");
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

/* queue_claim_shift1 - move keys[0..nk) secs earlier (not before now), in
 * one transaction; each only if its recipient is still where it was. */
static int
queue_claim_shift1(struct queue *q, int64_t now, int64_t secs,
    const struct queue_claim_key *keys, size_t nk, size_t *n)
{
	struct qrcpt	 r;
	MDB_txn		*txn;
	size_t		 i, moved = 0;
	int64_t		 t;
	int		 rc;

	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	for (i = 0; i < nk; i++) {
		rc = queue_rec_get_rcpt(q, txn, keys[i].id, keys[i].idx, &r);
		if (rc == QUEUE_E_NOENT)
			continue;
		if (rc != 0)
			goto fail;
		/* Only what the old clock timed, which the new one cannot
		 * have: queued mail due in the future, a retry after a try
		 * "in the future". Not what is out on a lease, final, moved
		 * on or held. Its last try moves too: a second pass leaves
		 * it. */
		if (r.due != keys[i].t || (r.flags & QRCPT_F_OPHOLD))
			continue;
		if (r.state == QRCPT_DEFERRED && r.last_try > now)
			r.last_try = r.last_try - secs < now ?
			    r.last_try - secs : now;
		else if (r.state != QRCPT_QUEUED)
			continue;
		t = r.due - secs > now ? r.due - secs : now;
		if ((rc = queue_rec_due_set(q, txn, &r, t)) != 0 ||
		    (rc = queue_rec_put_rcpt(q, txn, &r, 0)) != 0)
			goto fail;
		moved++;
	}
	if ((rc = queue_txn_commit(q, txn)) == 0)
		*n += moved;
	return rc;
fail:
	mdb_txn_abort(txn);
	return rc;
}

int
queue_claim_shift(struct queue *q, int64_t now, int64_t secs, int64_t within,
    size_t max, size_t *n)
{
	struct queue_claim_key	*keys;
	size_t			 nkeys, i, chunk;
	int			 rc;

	*n = 0;
	if (secs <= 0 || max == 0)
		return 0;
	if (within < 0)
		within = 0;
	/* Every key first, then the moves: a moved key lands earlier in
	 * the range and must not be seen (and moved) twice. */
	if ((keys = calloc(max, sizeof(*keys))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	rc = queue_claim_shift_keys(q, now, now + secs + within, keys, max,
	    &nkeys);
	for (i = 0; rc == 0 && i < nkeys; i += chunk) {
		chunk = nkeys - i < QUEUE_OPS_TXN_MAX ? nkeys - i :
		    QUEUE_OPS_TXN_MAX;
		rc = queue_claim_shift1(q, now, secs, keys + i, chunk, n);
	}
	free(keys);
	return rc;
}

int
queue_claim_next_due(struct queue *q, int64_t *when)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc, mrc;

	*when = 0;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, q->due, &cur)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "due cursor");
	}
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (mrc == 0 && k.mv_size == QUEUE_KEY_DUE)
		*when = (int64_t)queue_be64_get(k.mv_data);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return queue_lmdb(q, mrc, "due walk");
	return 0;
}

/* queue_claim_report - with a report hook, report the messages of the
 * claims or results in ids[0..n) (each recorded, rc 0) at `now`. */
static int
queue_claim_report(struct queue *q, MDB_txn *txn, uint64_t *ids, size_t n,
    int64_t now)
{
	if (q->report == NULL || n == 0)
		return 0;
	if (now == 0)
		now = queue_now();
	return queue_report_touched(q, txn, ids, n, now);
}

/* queue_claim_each - run fn on each recipient of claims whose token still
 * matches, in one write transaction; with `report`, then report their
 * messages (queue_claim_report, at `arg`). */
static int
queue_claim_each(struct queue *q, const struct qclaim *c, size_t n,
    int64_t arg, int (*fn)(struct queue *, MDB_txn *, struct qrcpt *,
    int64_t), bool report)
{
	struct qrcpt	 r;
	MDB_txn		*txn;
	uint64_t	*ids = NULL;
	size_t		 i, nids = 0;
	int		 rc;

	if (report && q->report != NULL && n > 0 &&
	    (ids = calloc(n, sizeof(*ids))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0) {
		free(ids);
		return rc;
	}
	for (i = 0; i < n; i++) {
		rc = queue_rec_get_rcpt(q, txn, c[i].id, c[i].idx, &r);
		if (rc == QUEUE_E_NOENT)
			continue;
		if (rc != 0)
			goto fail;
		if (r.state != QRCPT_ACTIVE || r.claim != c[i].token)
			continue;
		if ((rc = fn(q, txn, &r, arg)) != 0)
			goto fail;
		if (ids != NULL)
			ids[nids++] = r.id;
	}
	/* Reported recipients that waited for these go now. */
	if ((rc = queue_claim_report(q, txn, ids, nids, arg)) != 0)
		goto fail;
	free(ids);
	return queue_txn_commit(q, txn);
fail:
	mdb_txn_abort(txn);
	free(ids);
	return rc;
}

static int
queue_claim_renew1(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t until)
{
	int	rc;

	if ((rc = queue_rec_due_set(q, txn, r, until)) != 0)
		return rc;
	return queue_rec_put_rcpt(q, txn, r, 0);
}

int
queue_claim_renew(struct queue *q, const struct qclaim *c, size_t n,
    int64_t until)
{
	return queue_claim_each(q, c, n, until, queue_claim_renew1, false);
}

static int
queue_claim_return1(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t when)
{
	int	rc;

	r->state = r->prev_state;
	r->claim = 0;
	if (r->state == QRCPT_ACTIVE)
		r->state = r->attempts > 0 ? QRCPT_DEFERRED : QRCPT_QUEUED;
	if (r->flags & QRCPT_F_OPHOLD) {
		/* Held while it was out: it stays held now it is back. */
		r->saved_due = when;
		r->prev_state = r->state;
		r->state = QRCPT_HELD;
		when = 0;
	}
	/* An expiring site hold that came back still expires now. */
	if ((rc = queue_rec_due_set(q, txn, r, when)) != 0)
		return rc;
	return queue_rec_put_rcpt(q, txn, r, 0);
}

int
queue_claim_return(struct queue *q, const struct qclaim *c, size_t n,
    int64_t when)
{
	return queue_claim_each(q, c, n, when, queue_claim_return1, true);
}

static int
queue_claim_result1(struct queue *q, MDB_txn *txn, struct qresult *res)
{
	struct qrcpt	r;
	struct qmsg	m;
	bool		keep = q->report != NULL;
	int		rc;

	res->rc = 0;
	rc = queue_rec_get_rcpt(q, txn, res->id, res->idx, &r);
	if (rc == QUEUE_E_NOENT || (rc == 0 && (r.state != QRCPT_ACTIVE ||
	    r.claim != res->token))) {
		res->rc = QUEUE_E_STALE;
		return 0;
	}
	if (rc != 0)
		return rc;
	r.claim = 0;
	r.flags &= ~QRCPT_F_FLUSHED;
	r.last_try = res->when;
	if (res->attempted)
		r.attempts++;
	snprintf(r.status, sizeof(r.status), "%s", res->status);
	snprintf(r.reply, sizeof(r.reply), "%s", res->reply);
	if (res->attempted || res->kind == QRESULT_FAILED)
		queue_rec_hist_add(&r, res->when, res->status, res->reply);
	if (keep) {
		/* A delay warning needs the envelope (its page is the
		 * recipient's). */
		memset(&m, 0, sizeof(m));
		if (res->kind == QRESULT_DEFERRED &&
		    q->report_conf.delay_warning > 0 &&
		    (rc = queue_rec_get_msg(q, txn, r.id, &m)) != 0)
			return rc;
		queue_report_mark(q, &m, &r, res->kind, res->when,
		    res->hop_dsn);
	}
	switch (res->kind) {
	case QRESULT_DELIVERED:
		r.state = QRCPT_DELIVERED;
		return queue_rec_final(q, txn, &r, keep);
	case QRESULT_FAILED:
		r.state = QRCPT_FAILED;
		return queue_rec_final(q, txn, &r, keep);
	case QRESULT_DEFERRED:
		r.state = QRCPT_DEFERRED;
		if (res->next_try == 0)		/* never lose its timer */
			res->next_try = res->when;
		break;
	case QRESULT_HELD:
		r.state = QRCPT_HELD;
		r.flags |= QRCPT_F_SITE;
		break;
	default:
		return queue_fail(q, QUEUE_E_INVAL, "result kind %d", res->kind);
	}
	if (r.flags & QRCPT_F_OPHOLD) {
		/* An operator held it while it was out: hold it now. */
		r.prev_state = r.state;
		r.saved_due = res->next_try;
		r.state = QRCPT_HELD;
		rc = queue_rec_due_set(q, txn, &r, 0);
	} else
		rc = queue_rec_due_set(q, txn, &r, res->next_try);
	if (rc != 0)
		return rc;
	return queue_rec_put_rcpt(q, txn, &r, 0);
}

int
queue_claim_result(struct queue *q, struct qresult *res, size_t n)
{
	MDB_txn		*txn;
	uint64_t	*ids = NULL;
	int64_t		 now = 0;
	size_t		 i, nids = 0;
	int		 rc;

	if (q->report != NULL && n > 0 &&
	    (ids = calloc(n, sizeof(*ids))) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "out of memory");
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0) {
		free(ids);
		return rc;
	}
	for (i = 0; i < n; i++) {
		if ((rc = queue_claim_result1(q, txn, &res[i])) != 0)
			goto fail;
		if (ids != NULL && res[i].rc == 0) {
			ids[nids++] = res[i].id;
			if (res[i].when > now)
				now = res[i].when;
		}
	}
	/* Then each message as a whole: one report per message. */
	if ((rc = queue_claim_report(q, txn, ids, nids, now)) != 0)
		goto fail;
	free(ids);
	return queue_txn_commit(q, txn);
fail:
	mdb_txn_abort(txn);
	free(ids);
	return rc;
}

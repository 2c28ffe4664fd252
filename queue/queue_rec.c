/*
 * queue_rec.c - versioned records and the index entries that follow them.
 *
 * A record is a version byte and then fixed-order fields: integers
 * big-endian, strings as a 16-bit length and their bytes. Decoding checks
 * every length against the record and the field's limit, so a damaged
 * record is QUEUE_E_CORRUPT, never an overrun. A new field goes at the end
 * with a new version; old versions stay readable. A flush request (a
 * flushq value, struct queue_flushreq) has no version byte: it is flags,
 * a time, the caller's address when a flag says so (an authenticated
 * ETRN's), and an optional resume point, and every reader of flushq goes
 * through queue_rec_dec_flush().
 *
 * The index rules live here so that every path keeps them: a recipient has
 * a due entry exactly when r->due != 0, and a bydom entry exactly while it
 * is not final.
 */
#include <stdio.h>
#include <string.h>

#include "queue_int.h"

/* Record versions: 1 first; 2 adds qmsg.warnings (u8) and qrcpt.dsn_id
 * (u64) at the end. Version 1 records decode with both 0, so a queue of
 * schema 3 written before version 2 needs no migration. */
#define QUEUE_REC_VERSION	2
#define QUEUE_REC_VERSION_MIN	1

struct queue_rec_enc {
	uint8_t	buf[QUEUE_REC_MAX];
	size_t	len;
	bool	overflow;
};

struct queue_rec_dec {
	const uint8_t	*p;
	size_t		 len, off;
	bool		 bad;
};

static void
queue_rec_enc_bytes(struct queue_rec_enc *e, const void *p, size_t n)
{
	if (e->overflow || n > sizeof(e->buf) - e->len) {
		e->overflow = true;
		return;
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void
queue_rec_enc_u8(struct queue_rec_enc *e, uint8_t v)
{
	queue_rec_enc_bytes(e, &v, 1);
}

static void
queue_rec_enc_u32(struct queue_rec_enc *e, uint32_t v)
{
	uint8_t	b[4];

	queue_be32_put(b, v);
	queue_rec_enc_bytes(e, b, 4);
}

static void
queue_rec_enc_u64(struct queue_rec_enc *e, uint64_t v)
{
	uint8_t	b[8];

	queue_be64_put(b, v);
	queue_rec_enc_bytes(e, b, 8);
}

static void
queue_rec_enc_str(struct queue_rec_enc *e, const char *s, size_t max)
{
	size_t	n = strnlen(s, max);
	uint8_t	b[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	queue_rec_enc_bytes(e, b, 2);
	queue_rec_enc_bytes(e, s, n);
}

/* queue_rec_enc_out - copy the record built in e to buf: its length, or
 * 0 if it did not fit (in e's QUEUE_REC_MAX or in bufsz). */
static size_t
queue_rec_enc_out(const struct queue_rec_enc *e, uint8_t *buf, size_t bufsz)
{
	if (e->overflow || e->len > bufsz)
		return 0;
	memcpy(buf, e->buf, e->len);
	return e->len;
}

static const uint8_t *
queue_rec_dec_take(struct queue_rec_dec *d, size_t n)
{
	const uint8_t	*p;

	if (d->bad || n > d->len - d->off) {
		d->bad = true;
		return NULL;
	}
	p = d->p + d->off;
	d->off += n;
	return p;
}

static uint8_t
queue_rec_dec_u8(struct queue_rec_dec *d)
{
	const uint8_t	*p = queue_rec_dec_take(d, 1);

	return p ? p[0] : 0;
}

static uint32_t
queue_rec_dec_u32(struct queue_rec_dec *d)
{
	const uint8_t	*p = queue_rec_dec_take(d, 4);

	return p ? queue_be32_get(p) : 0;
}

static uint64_t
queue_rec_dec_u64(struct queue_rec_dec *d)
{
	const uint8_t	*p = queue_rec_dec_take(d, 8);

	return p ? queue_be64_get(p) : 0;
}

/* Strings longer than the field are a corrupt record, not a truncation. */
static void
queue_rec_dec_str(struct queue_rec_dec *d, char *dst, size_t dstsz)
{
	const uint8_t	*p = queue_rec_dec_take(d, 2);
	size_t		 n;

	dst[0] = '\0';
	if (p == NULL)
		return;
	n = (size_t)p[0] << 8 | p[1];
	if (n >= dstsz) {
		d->bad = true;
		return;
	}
	if ((p = queue_rec_dec_take(d, n)) == NULL)
		return;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

int
queue_rec_dec_msg(const MDB_val *v, struct qmsg *m, const char **why)
{
	struct queue_rec_dec	 d;
	uint8_t			 ver;

	memset(&d, 0, sizeof(d));
	d.p = v->mv_data;
	d.len = v->mv_size;
	ver = queue_rec_dec_u8(&d);
	if (ver < QUEUE_REC_VERSION_MIN || ver > QUEUE_REC_VERSION) {
		*why = "message record version";
		return QUEUE_E_CORRUPT;
	}
	m->arrival = (int64_t)queue_rec_dec_u64(&d);
	m->size = queue_rec_dec_u64(&d);
	m->nrcpt = queue_rec_dec_u32(&d);
	m->nlive = queue_rec_dec_u32(&d);
	m->nchunks = queue_rec_dec_u32(&d);
	m->flags = queue_rec_dec_u32(&d);
	queue_rec_dec_str(&d, m->sender, sizeof(m->sender));
	queue_rec_dec_str(&d, m->envid, sizeof(m->envid));
	queue_rec_dec_str(&d, m->client, sizeof(m->client));
	m->warnings = ver >= 2 ? queue_rec_dec_u8(&d) : 0;
	if (d.bad) {
		*why = "message record";
		return QUEUE_E_CORRUPT;
	}
	return 0;
}

int
queue_rec_get_msg(struct queue *q, MDB_txn *txn, uint64_t id,
    struct qmsg *m)
{
	MDB_val		 k, v;
	uint8_t		 kb[8];
	const char	*why;
	int		 rc;

	queue_be64_put(kb, id);
	k.mv_data = kb;
	k.mv_size = 8;
	if ((rc = mdb_get(txn, q->msg, &k, &v)) != 0)
		return queue_lmdb(q, rc, "read message");
	memset(m, 0, sizeof(*m));
	m->id = id;
	if (queue_rec_dec_msg(&v, m, &why) != 0)
		return queue_fail(q, QUEUE_E_CORRUPT, "%s", why);
	return 0;
}

size_t
queue_rec_enc_msg(const struct qmsg *m, uint8_t *buf, size_t bufsz)
{
	struct queue_rec_enc	 e;

	e.len = 0;
	e.overflow = false;
	queue_rec_enc_u8(&e, QUEUE_REC_VERSION);
	queue_rec_enc_u64(&e, (uint64_t)m->arrival);
	queue_rec_enc_u64(&e, m->size);
	queue_rec_enc_u32(&e, m->nrcpt);
	queue_rec_enc_u32(&e, m->nlive);
	queue_rec_enc_u32(&e, m->nchunks);
	queue_rec_enc_u32(&e, m->flags);
	queue_rec_enc_str(&e, m->sender, sizeof(m->sender));
	queue_rec_enc_str(&e, m->envid, sizeof(m->envid));
	queue_rec_enc_str(&e, m->client, sizeof(m->client));
	queue_rec_enc_u8(&e, m->warnings);
	return queue_rec_enc_out(&e, buf, bufsz);
}

int
queue_rec_put_msg(struct queue *q, MDB_txn *txn, const struct qmsg *m,
    unsigned putflags)
{
	uint8_t		 buf[QUEUE_REC_MAX];
	MDB_val		 k, v;
	uint8_t		 kb[8];
	int		 rc;

	if ((v.mv_size = queue_rec_enc_msg(m, buf, sizeof(buf))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "message record too large");
	queue_be64_put(kb, m->id);
	k.mv_data = kb;
	k.mv_size = 8;
	v.mv_data = buf;
	if ((rc = mdb_put(txn, q->msg, &k, &v, putflags)) != 0)
		return queue_lmdb(q, rc, "write message");
	return 0;
}

int
queue_rec_dec_rcpt(const MDB_val *v, struct qrcpt *r, const char **why)
{
	struct queue_rec_dec	 d;
	uint8_t			 ver;
	uint32_t		 i;

	memset(&d, 0, sizeof(d));
	d.p = v->mv_data;
	d.len = v->mv_size;
	r->dsn_id = 0;
	ver = queue_rec_dec_u8(&d);
	if (ver < QUEUE_REC_VERSION_MIN || ver > QUEUE_REC_VERSION) {
		*why = "recipient version";
		return QUEUE_E_CORRUPT;
	}
	r->state = queue_rec_dec_u8(&d);
	r->flags = queue_rec_dec_u8(&d);
	r->notify = queue_rec_dec_u8(&d);
	r->prev_state = queue_rec_dec_u8(&d);
	r->attempts = queue_rec_dec_u32(&d);
	r->due = (int64_t)queue_rec_dec_u64(&d);
	r->saved_due = (int64_t)queue_rec_dec_u64(&d);
	r->last_try = (int64_t)queue_rec_dec_u64(&d);
	r->claim = queue_rec_dec_u64(&d);
	queue_rec_dec_str(&d, r->addr, sizeof(r->addr));
	queue_rec_dec_str(&d, r->orcpt, sizeof(r->orcpt));
	queue_rec_dec_str(&d, r->status, sizeof(r->status));
	queue_rec_dec_str(&d, r->reply, sizeof(r->reply));
	r->nhist = queue_rec_dec_u8(&d);
	if (r->nhist > QUEUE_HIST_MAX)
		d.bad = true;
	for (i = 0; i < r->nhist && !d.bad; i++) {
		r->hist[i].when = (int64_t)queue_rec_dec_u64(&d);
		queue_rec_dec_str(&d, r->hist[i].status,
		    sizeof(r->hist[i].status));
		queue_rec_dec_str(&d, r->hist[i].text,
		    sizeof(r->hist[i].text));
	}
	if (ver >= 2)
		r->dsn_id = queue_rec_dec_u64(&d);
	if (d.bad) {
		*why = "recipient record";
		return QUEUE_E_CORRUPT;
	}
	return 0;
}

int
queue_rec_get_rcpt(struct queue *q, MDB_txn *txn, uint64_t id,
    uint32_t idx, struct qrcpt *r)
{
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_KEY_MSUB], ka[QUEUE_KEY_RCPT];
	const char	*why;
	int		 rc;

	/* Claimed: its record is in active, a small database whose pages
	 * stay mapped; else it is in msg, among its message's keys. */
	queue_key_rcpt(ka, id, idx);
	k.mv_data = ka;
	k.mv_size = sizeof(ka);
	if ((rc = mdb_get(txn, q->active, &k, &v)) == MDB_NOTFOUND) {
		queue_key_msub(kb, id, QUEUE_MSUB_RCPT, idx);
		k.mv_data = kb;
		k.mv_size = sizeof(kb);
		rc = mdb_get(txn, q->msg, &k, &v);
	}
	if (rc != 0)
		return queue_lmdb(q, rc, "read recipient");
	r->id = id;
	r->idx = idx;
	if (queue_rec_dec_rcpt(&v, r, &why) != 0)
		return queue_fail(q, QUEUE_E_CORRUPT, "%s", why);
	return 0;
}

size_t
queue_rec_enc_rcpt(const struct qrcpt *r, uint8_t *buf, size_t bufsz)
{
	struct queue_rec_enc	 e;
	uint32_t		 i;

	e.len = 0;
	e.overflow = false;
	queue_rec_enc_u8(&e, QUEUE_REC_VERSION);
	queue_rec_enc_u8(&e, r->state);
	queue_rec_enc_u8(&e, r->flags);
	queue_rec_enc_u8(&e, r->notify);
	queue_rec_enc_u8(&e, r->prev_state);
	queue_rec_enc_u32(&e, r->attempts);
	queue_rec_enc_u64(&e, (uint64_t)r->due);
	queue_rec_enc_u64(&e, (uint64_t)r->saved_due);
	queue_rec_enc_u64(&e, (uint64_t)r->last_try);
	queue_rec_enc_u64(&e, r->claim);
	queue_rec_enc_str(&e, r->addr, sizeof(r->addr));
	queue_rec_enc_str(&e, r->orcpt, sizeof(r->orcpt));
	queue_rec_enc_str(&e, r->status, sizeof(r->status));
	queue_rec_enc_str(&e, r->reply, sizeof(r->reply));
	queue_rec_enc_u8(&e, (uint8_t)(r->nhist > QUEUE_HIST_MAX ?
	    QUEUE_HIST_MAX : r->nhist));
	for (i = 0; i < r->nhist && i < QUEUE_HIST_MAX; i++) {
		queue_rec_enc_u64(&e, (uint64_t)r->hist[i].when);
		queue_rec_enc_str(&e, r->hist[i].status,
		    sizeof(r->hist[i].status));
		queue_rec_enc_str(&e, r->hist[i].text,
		    sizeof(r->hist[i].text));
	}
	queue_rec_enc_u64(&e, r->dsn_id);
	return queue_rec_enc_out(&e, buf, bufsz);
}

int
queue_rec_put_rcpt(struct queue *q, MDB_txn *txn, const struct qrcpt *r,
    unsigned putflags)
{
	uint8_t		 buf[QUEUE_REC_MAX];
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_KEY_MSUB], ka[QUEUE_KEY_RCPT];
	int		 rc;

	if ((v.mv_size = queue_rec_enc_rcpt(r, buf, sizeof(buf))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "recipient record too large");
	v.mv_data = buf;
	queue_key_rcpt(ka, r->id, r->idx);
	k.mv_data = ka;
	k.mv_size = sizeof(ka);
	if (r->state == QRCPT_ACTIVE) {
		/* Claimed: the record in msg is left as it was (no page of
		 * msg to rewrite), the claimed one goes in active. */
		if ((rc = mdb_put(txn, q->active, &k, &v, 0)) != 0)
			return queue_lmdb(q, rc, "write claimed recipient");
		return 0;
	}
	/* A new recipient (MDB_APPEND) was never claimed. */
	if (!(putflags & MDB_APPEND) &&
	    (rc = mdb_del(txn, q->active, &k, NULL)) != 0 &&
	    rc != MDB_NOTFOUND)
		return queue_lmdb(q, rc, "delete claimed recipient");
	queue_key_msub(kb, r->id, QUEUE_MSUB_RCPT, r->idx);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	if ((rc = mdb_put(txn, q->msg, &k, &v, putflags)) != 0)
		return queue_lmdb(q, rc, "write recipient");
	return 0;
}

/* queue_rec_due_set - move r's due entry to `due` (0: remove it). The
 * caller writes r afterwards. */
int
queue_rec_due_set(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t due)
{
	MDB_val	k, v;
	uint8_t	kb[QUEUE_KEY_DUE];
	int	rc;

	if (r->due == due)
		return 0;
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	if (r->due != 0) {
		queue_key_due(kb, r->due, r->id, r->idx);
		rc = mdb_del(txn, q->due, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return queue_lmdb(q, rc, "delete due entry");
	}
	r->due = due;
	if (due != 0) {
		queue_key_due(kb, due, r->id, r->idx);
		v.mv_data = NULL;
		v.mv_size = 0;
		if ((rc = mdb_put(txn, q->due, &k, &v, 0)) != 0)
			return queue_lmdb(q, rc, "write due entry");
	}
	return 0;
}

int
queue_rec_due_leave(struct queue *q, MDB_txn *txn, struct qrcpt *r,
    int64_t due)
{
	r->due = 0;
	return queue_rec_due_set(q, txn, r, due);
}

int
queue_rec_bydom(struct queue *q, MDB_txn *txn, const struct qrcpt *r,
    bool add)
{
	char	dom[QUEUE_ADDR_MAX + 1], key[QUEUE_ADDR_MAX + 1];
	uint8_t	vb[QUEUE_KEY_RCPT];
	MDB_val	k, v;
	size_t	klen;
	int	rc;

	queue_domain_of(r->addr, dom, sizeof(dom));
	if ((klen = queue_key_dom(dom, key, sizeof(key))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "recipient %s: no domain",
		    r->addr);
	queue_key_rcpt(vb, r->id, r->idx);
	k.mv_data = key;
	k.mv_size = klen;
	v.mv_data = vb;
	v.mv_size = sizeof(vb);
	if (add)
		rc = mdb_put(txn, q->bydom, &k, &v, MDB_NODUPDATA);
	else
		rc = mdb_del(txn, q->bydom, &k, &v);
	if (rc == MDB_KEYEXIST || (!add && rc == MDB_NOTFOUND))
		rc = 0;
	if (rc != 0)
		return queue_lmdb(q, rc, "domain index");
	return 0;
}

int
queue_rec_get_u64(struct queue *q, MDB_txn *txn, const char *name,
    uint64_t *val)
{
	MDB_val	k, v;
	char	kb[32];
	int	rc;

	k.mv_size = strlen(name);
	if (k.mv_size >= sizeof(kb))
		return queue_fail(q, QUEUE_E_INVAL, "counter name %s", name);
	memcpy(kb, name, k.mv_size);
	k.mv_data = kb;
	*val = 0;
	rc = mdb_get(txn, q->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return queue_lmdb(q, rc, "read counter");
	if (v.mv_size != 8)
		return queue_fail(q, QUEUE_E_CORRUPT, "counter %s", name);
	*val = queue_be64_get(v.mv_data);
	return 0;
}

int
queue_rec_counter(struct queue *q, MDB_txn *txn, const char *name,
    int64_t delta)
{
	MDB_val		k, v;
	uint64_t	cur;
	uint8_t		b[8];
	char		kb[32];
	int		rc;

	if ((rc = queue_rec_get_u64(q, txn, name, &cur)) != 0)
		return rc;
	cur = (delta < 0 && (uint64_t)-delta > cur) ? 0 : cur + (uint64_t)delta;
	queue_be64_put(b, cur);
	k.mv_size = strlen(name);	/* checked by queue_rec_get_u64 */
	memcpy(kb, name, k.mv_size);
	k.mv_data = kb;
	v.mv_data = b;
	v.mv_size = 8;
	if ((rc = mdb_put(txn, q->meta, &k, &v, 0)) != 0)
		return queue_lmdb(q, rc, "write counter");
	return 0;
}

void
queue_rec_hist_add(struct qrcpt *r, int64_t when, const char *status,
    const char *text)
{
	struct qhist	*h;

	if (r->nhist == QUEUE_HIST_MAX) {
		/* Keep the first attempt and the latest ones. */
		memmove(&r->hist[1], &r->hist[2],
		    (QUEUE_HIST_MAX - 2) * sizeof(r->hist[0]));
		r->nhist--;
	}
	h = &r->hist[r->nhist++];
	h->when = when;
	snprintf(h->status, sizeof(h->status), "%s", status);
	snprintf(h->text, sizeof(h->text), "%s", text);
}

int
queue_rec_delete_msg(struct queue *q, MDB_txn *txn, uint64_t id)
{
	struct qmsg	m;
	struct qrcpt	r;
	MDB_val		k;
	uint8_t		kb[QUEUE_KEY_MSUB];
	uint32_t	i;
	int		rc;

	if ((rc = queue_rec_get_msg(q, txn, id, &m)) != 0)
		return rc;
	k.mv_data = kb;
	k.mv_size = QUEUE_KEY_MSUB;
	for (i = 0; i < m.nrcpt; i++) {
		if ((rc = queue_rec_get_rcpt(q, txn, id, i, &r)) != 0)
			return rc;
		if (r.state != QRCPT_DELIVERED && r.state != QRCPT_FAILED) {
			if ((rc = queue_rec_due_set(q, txn, &r, 0)) != 0 ||
			    (rc = queue_rec_bydom(q, txn, &r, false)) != 0 ||
			    (rc = queue_rec_counter(q, txn, "rcpts", -1)) != 0)
				return rc;
		}
		if (r.state == QRCPT_ACTIVE) {
			queue_key_rcpt(kb, id, i);
			k.mv_size = QUEUE_KEY_RCPT;
			if ((rc = mdb_del(txn, q->active, &k, NULL)) != 0)
				return queue_lmdb(q, rc,
				    "delete claimed recipient");
			k.mv_size = QUEUE_KEY_MSUB;
		}
		queue_key_msub(kb, id, QUEUE_MSUB_RCPT, i);
		if ((rc = mdb_del(txn, q->msg, &k, NULL)) != 0)
			return queue_lmdb(q, rc, "delete recipient");
	}
	for (i = 0; i < m.nchunks; i++) {
		queue_key_msub(kb, id, QUEUE_MSUB_BODY, i);
		if ((rc = mdb_del(txn, q->msg, &k, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			return queue_lmdb(q, rc, "delete body");
	}
	queue_be64_put(kb, id);
	k.mv_size = 8;
	if ((rc = mdb_del(txn, q->msg, &k, NULL)) != 0)
		return queue_lmdb(q, rc, "delete message");
	return queue_rec_counter(q, txn, "msgs", -1);
}

int
queue_rec_final(struct queue *q, MDB_txn *txn, struct qrcpt *r, bool keep)
{
	struct qmsg	m;
	int		rc;

	if ((rc = queue_rec_due_set(q, txn, r, 0)) != 0 ||
	    (rc = queue_rec_bydom(q, txn, r, false)) != 0 ||
	    (rc = queue_rec_counter(q, txn, "rcpts", -1)) != 0 ||
	    (rc = queue_rec_get_msg(q, txn, r->id, &m)) != 0)
		return rc;
	if (m.nlive > 0)
		m.nlive--;
	if (m.nlive == 0 && !keep) {
		/* The message is done: nothing of it stays. */
		if ((rc = queue_rec_put_rcpt(q, txn, r, 0)) != 0)
			return rc;
		return queue_rec_delete_msg(q, txn, r->id);
	}
	if ((rc = queue_rec_put_msg(q, txn, &m, 0)) != 0)
		return rc;
	return queue_rec_put_rcpt(q, txn, r, 0);
}

int
queue_rec_dec_flush(const MDB_val *v, struct queue_flushreq *f)
{
	const uint8_t	*p = v->mv_data;
	size_t		 off = 9, tail, clen;

	memset(f, 0, sizeof(*f));
	if (v->mv_size >= 1)
		f->flags = p[0];
	if (v->mv_size < 9)
		return QUEUE_E_CORRUPT;
	f->when = (int64_t)queue_be64_get(p + 1);
	if (f->flags & QUEUE_FLUSH_CALLER) {
		if (v->mv_size < off + 1 ||
		    (clen = p[off]) > QUEUE_CALLER_MAX ||
		    v->mv_size < off + 1 + clen) {
			f->flags &= ~QUEUE_FLUSH_CALLER;
			return QUEUE_E_CORRUPT;
		}
		memcpy(f->caller, p + off + 1, clen);
		f->caller[clen] = '\0';
		off += 1 + clen;
	}
	tail = v->mv_size - off;
	if (tail > QUEUE_KEY_RCPT && tail - QUEUE_KEY_RCPT <= QUEUE_ADDR_MAX) {
		memcpy(f->rval, p + off, QUEUE_KEY_RCPT);
		f->rklen = tail - QUEUE_KEY_RCPT;
		memcpy(f->rkey, p + off + QUEUE_KEY_RCPT, f->rklen);
	}
	return 0;
}

int
queue_rec_put_flush(struct queue *q, MDB_txn *txn, const MDB_val *key,
    const struct queue_flushreq *f)
{
	uint8_t	val[9 + 1 + QUEUE_CALLER_MAX + QUEUE_KEY_RCPT + QUEUE_ADDR_MAX];
	MDB_val	k = *key, v;
	size_t	rklen = f->rklen > QUEUE_ADDR_MAX ? 0 : f->rklen, clen;
	int	rc;

	val[0] = f->flags;
	queue_be64_put(val + 1, (uint64_t)f->when);
	v.mv_size = 9;
	if (f->flags & QUEUE_FLUSH_CALLER) {
		clen = strnlen(f->caller, QUEUE_CALLER_MAX);
		val[v.mv_size] = (uint8_t)clen;
		memcpy(val + v.mv_size + 1, f->caller, clen);
		v.mv_size += 1 + clen;
	}
	if (rklen > 0) {
		memcpy(val + v.mv_size, f->rval, QUEUE_KEY_RCPT);
		memcpy(val + v.mv_size + QUEUE_KEY_RCPT, f->rkey, rklen);
		v.mv_size += QUEUE_KEY_RCPT + rklen;
	}
	v.mv_data = val;
	if ((rc = mdb_put(txn, q->flushq, &k, &v, 0)) != 0)
		return queue_lmdb(q, rc, "write flush request");
	return 0;
}

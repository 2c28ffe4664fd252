/*
 * queue_site.c - when each site was last seen: the time of its last
 * accepted ETRN or ATRN (TURN, `postern pull` at the provider), kept in
 * the meta database under "seen" 0x00 DOMAIN -> time(8), so that every
 * process (the listener, the odmr sessions, the metrics server, `postern
 * stats`) sees the same record and it survives restarts.
 *
 * Only a request the policy accepted records a time, so the records are
 * bounded by the configuration (the domains a client may ask for), not
 * by what clients send.
 *
 * Beside them, "notice" 0x00 DOMAIN -> time(8): when the "mail is
 * waiting" command last ran for a held domain (runner/notify.c), kept
 * here so that a restarted daemon does not notify again at once; and
 * queue_domain_backlog(), what such a notice (and `postern stats`) says
 * of a held domain, from its bydom range alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define QUEUE_SITE_PFX		"seen"
#define QUEUE_SITE_PLEN		5	/* with its NUL */
#define QUEUE_NOTICE_PFX	"notice"
#define QUEUE_NOTICE_PLEN	7	/* with its NUL */

/* queue_site_key_pfx - pfx (plen bytes, its NUL too) then the lower-case
 * domain; 0 if it does not fit. */
static size_t
queue_site_key_pfx(const char *pfx, size_t plen, const char *domain,
    uint8_t *kb, size_t kbsz)
{
	size_t	len = strlen(domain), i;

	if (len == 0 || len > QUEUE_ADDR_MAX || plen + len > kbsz)
		return 0;
	memcpy(kb, pfx, plen);
	for (i = 0; i < len; i++)
		kb[plen + i] = (uint8_t)(domain[i] >= 'A' &&
		    domain[i] <= 'Z' ? domain[i] - 'A' + 'a' : domain[i]);
	return plen + len;
}

static int	queue_site_time_set(struct queue *, const char *, size_t,
		    const char *, int64_t, const char *);
static int	queue_site_time_get(struct queue *, const char *, size_t,
		    const char *, int64_t *, const char *);

int
queue_site_seen(struct queue *q, const char *domain, int64_t when)
{
	return queue_site_time_set(q, QUEUE_SITE_PFX, QUEUE_SITE_PLEN, domain,
	    when, "write site seen");
}

int
queue_site_seen_get(struct queue *q, const char *domain, int64_t *when)
{
	return queue_site_time_get(q, QUEUE_SITE_PFX, QUEUE_SITE_PLEN, domain,
	    when, "site seen record");
}

int
queue_site_walk(struct queue *q, queue_site_fn *fn, void *arg)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	char		 dom[QUEUE_ADDR_MAX + 1];
	int64_t		*when = NULL;
	char		(*doms)[QUEUE_ADDR_MAX + 1] = NULL;
	size_t		 n = 0, cap = 0, i, dl;
	int		 rc, mrc;

	/* Collected first, called back outside the read transaction. */
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, q->meta, &cur)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "meta cursor");
	}
	k.mv_data = QUEUE_SITE_PFX;
	k.mv_size = QUEUE_SITE_PLEN;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= QUEUE_SITE_PLEN ||
		    memcmp(k.mv_data, QUEUE_SITE_PFX, QUEUE_SITE_PLEN) != 0)
			break;
		dl = k.mv_size - QUEUE_SITE_PLEN;
		if (dl > QUEUE_ADDR_MAX || v.mv_size != 8)
			continue;
		if (n == cap) {
			void	*nd, *nw;

			cap = cap ? cap * 2 : 16;
			nd = reallocarray(doms, cap, sizeof(*doms));
			if (nd != NULL)
				doms = nd;
			nw = reallocarray(when, cap, sizeof(*when));
			if (nw != NULL)
				when = nw;
			if (nd == NULL || nw == NULL) {
				rc = queue_fail(q, QUEUE_E_SYS, "site walk: out of memory");
				break;
			}
		}
		memcpy(doms[n], (uint8_t *)k.mv_data + QUEUE_SITE_PLEN, dl);
		doms[n][dl] = '\0';
		when[n++] = (int64_t)queue_be64_get(v.mv_data);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "site seen walk");
	for (i = 0; rc == 0 && i < n; i++) {
		memcpy(dom, doms[i], sizeof(dom));
		rc = fn(arg, dom, when[i]);
	}
	free(doms);
	free(when);
	return rc;
}

/* queue_site_time_put - key -> time(8) in meta, one write transaction. */
static int
queue_site_time_put(struct queue *q, const uint8_t *kb, size_t klen,
    int64_t when, const char *what)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 vb[8];
	int		 rc, mrc;

	k.mv_data = (void *)(uintptr_t)kb;
	k.mv_size = klen;
	queue_be64_put(vb, (uint64_t)(when > 0 ? when : 0));
	v.mv_data = vb;
	v.mv_size = sizeof(vb);
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	if ((mrc = mdb_put(txn, q->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, what);
	}
	return queue_txn_commit(q, txn);
}

/* queue_site_time_set - the time record pfx+domain := when. */
static int
queue_site_time_set(struct queue *q, const char *pfx, size_t plen,
    const char *domain, int64_t when, const char *what)
{
	uint8_t	kb[QUEUE_NOTICE_PLEN + QUEUE_ADDR_MAX];
	size_t	klen;

	if ((klen = queue_site_key_pfx(pfx, plen, domain, kb,
	    sizeof(kb))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "site domain too long");
	return queue_site_time_put(q, kb, klen, when, what);
}

/* queue_site_time_get - the time record pfx+domain, 0 when none. */
static int
queue_site_time_get(struct queue *q, const char *pfx, size_t plen,
    const char *domain, int64_t *when, const char *what)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_NOTICE_PLEN + QUEUE_ADDR_MAX];
	char		 why[64];
	int		 rc, mrc;

	*when = 0;
	if ((k.mv_size = queue_site_key_pfx(pfx, plen, domain, kb,
	    sizeof(kb))) == 0)
		return 0;		/* never recorded: no such site */
	k.mv_data = kb;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	mrc = mdb_get(txn, q->meta, &k, &v);
	if (mrc == 0 && v.mv_size == 8)
		*when = (int64_t)queue_be64_get(v.mv_data);
	else if (mrc == 0)
		rc = queue_fail(q, QUEUE_E_CORRUPT, "%s", what);
	else if (mrc != MDB_NOTFOUND) {
		(void)snprintf(why, sizeof(why), "read %s", what);
		rc = queue_lmdb(q, mrc, why);
	}
	mdb_txn_abort(txn);
	return rc;
}

int
queue_site_notice(struct queue *q, const char *domain, int64_t when)
{
	return queue_site_time_set(q, QUEUE_NOTICE_PFX, QUEUE_NOTICE_PLEN,
	    domain, when, "write site notice");
}

int
queue_site_notice_get(struct queue *q, const char *domain, int64_t *when)
{
	return queue_site_time_get(q, QUEUE_NOTICE_PFX, QUEUE_NOTICE_PLEN,
	    domain, when, "site notice record");
}

/* What the walk of one held domain's bydom range gathers. */
struct queue_site_bl {
	uint64_t	*ids;
	size_t		 n, cap;
	size_t		 klen;		/* the domain's own key length */
	bool		 below;		/* ".parent": its subdomains only */
};

static int
queue_site_bl1(struct queue *q, void *arg, const MDB_val *k,
    const MDB_val *v)
{
	struct queue_site_bl	*b = arg;

	if (v->mv_size != QUEUE_KEY_RCPT)
		return queue_fail(q, QUEUE_E_CORRUPT, "domain index entry");
	if (b->below && k->mv_size == b->klen)
		return 0;		/* the parent itself is not held */
	if (b->n == b->cap) {
		size_t	 ncap = b->cap ? b->cap * 2 : 256;
		void	*nv = reallocarray(b->ids, ncap, sizeof(*b->ids));

		if (nv == NULL)
			return queue_fail(q, QUEUE_E_SYS, "out of memory");
		b->ids = nv;
		b->cap = ncap;
	}
	b->ids[b->n++] = queue_be64_get(v->mv_data);
	return 0;
}

static int
queue_site_u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
queue_domain_backlog(struct queue *q, const char *domain, bool sub,
    struct qbacklog *bl)
{
	struct queue_site_bl	 b;
	struct qmsg		 m;
	MDB_txn			*txn;
	char			 kbuf[QUEUE_ADDR_MAX + 2];
	size_t			 i;
	int			 rc;

	memset(bl, 0, sizeof(*bl));
	memset(&b, 0, sizeof(b));
	if (domain[0] == '.') {
		domain++;
		b.below = sub = true;
	}
	if ((b.klen = queue_key_dom(domain, kbuf, sizeof(kbuf) - 1)) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "bad domain");
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = queue_ops_dom_walk(q, txn, domain, sub, queue_site_bl1, &b);
	if (rc == 0 && b.n > 0) {
		bl->rcpts = b.n;
		/* Subdomains, and a message's several recipients, repeat
		 * an id; ids are arrival stamps, so the first is the
		 * oldest, whose envelope says when it came. */
		qsort(b.ids, b.n, sizeof(*b.ids), queue_site_u64cmp);
		for (i = 0; i < b.n; i++)
			if (i == 0 || b.ids[i] != b.ids[i - 1])
				bl->msgs++;
		if ((rc = queue_rec_get_msg(q, txn, b.ids[0], &m)) == 0)
			bl->oldest = m.arrival;
		else if (rc == QUEUE_E_NOENT)
			rc = 0;
	}
	mdb_txn_abort(txn);
	free(b.ids);
	if (rc != 0)
		memset(bl, 0, sizeof(*bl));
	return rc;
}

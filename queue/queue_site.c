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
 */
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define QUEUE_SITE_PFX		"seen"
#define QUEUE_SITE_PLEN		5	/* with its NUL */

/* queue_site_key - "seen" 0x00 lower-case domain; 0 if it does not fit. */
static size_t
queue_site_key(const char *domain, uint8_t *kb, size_t kbsz)
{
	size_t	len = strlen(domain), i;

	if (len == 0 || len > QUEUE_ADDR_MAX ||
	    QUEUE_SITE_PLEN + len > kbsz)
		return 0;
	memcpy(kb, QUEUE_SITE_PFX, QUEUE_SITE_PLEN);
	for (i = 0; i < len; i++)
		kb[QUEUE_SITE_PLEN + i] = (uint8_t)(domain[i] >= 'A' &&
		    domain[i] <= 'Z' ? domain[i] - 'A' + 'a' : domain[i]);
	return QUEUE_SITE_PLEN + len;
}

int
queue_site_seen(struct queue *q, const char *domain, int64_t when)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_SITE_PLEN + QUEUE_ADDR_MAX], vb[8];
	int		 rc, mrc;

	if ((k.mv_size = queue_site_key(domain, kb, sizeof(kb))) == 0)
		return queue_fail(q, QUEUE_E_INVAL, "site domain too long");
	k.mv_data = kb;
	queue_be64_put(vb, (uint64_t)(when > 0 ? when : 0));
	v.mv_data = vb;
	v.mv_size = sizeof(vb);
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	if ((mrc = mdb_put(txn, q->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "write site seen");
	}
	return queue_txn_commit(q, txn);
}

int
queue_site_seen_get(struct queue *q, const char *domain, int64_t *when)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_SITE_PLEN + QUEUE_ADDR_MAX];
	int		 rc, mrc;

	*when = 0;
	if ((k.mv_size = queue_site_key(domain, kb, sizeof(kb))) == 0)
		return 0;		/* never seen: no such site */
	k.mv_data = kb;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	mrc = mdb_get(txn, q->meta, &k, &v);
	if (mrc == 0 && v.mv_size == 8)
		*when = (int64_t)queue_be64_get(v.mv_data);
	else if (mrc == 0)
		rc = queue_fail(q, QUEUE_E_CORRUPT, "site seen record");
	else if (mrc != MDB_NOTFOUND)
		rc = queue_lmdb(q, mrc, "read site seen");
	mdb_txn_abort(txn);
	return rc;
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

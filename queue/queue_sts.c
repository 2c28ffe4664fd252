/*
 * queue_sts.c - the MTA-STS policy cache (RFC 8461 §3.3): one record per
 * policy domain in the "sts" database, so that every worker process sees
 * the policy one of them fetched and a restarted daemon still holds it.
 *
 * Record (version 1), big-endian:
 *	ver(1) fetched(8) expires(8) failed(8) idlen(1) id
 *	failidlen(1) fail_id policylen(4) policy
 * Decoding checks every length against the value's end: a damaged record
 * is QUEUE_E_CORRUPT, never an overrun. The policy is opaque text here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define QUEUE_STS_VER		1
#define QUEUE_STS_FIXED		(1 + 8 + 8 + 8 + 1 + 1 + 4)
#define QUEUE_STS_REC_MAX	(QUEUE_STS_FIXED + 2 * QUEUE_STS_ID_MAX + \
				    QUEUE_STS_POLICY_MAX)

/* queue_sts_key - the lower-case domain; 0 if empty or too long. */
static size_t
queue_sts_key(const char *domain, uint8_t *kb, size_t kbsz)
{
	size_t	len = strlen(domain), i;

	if (len == 0 || len > QUEUE_ADDR_MAX || len > kbsz)
		return 0;
	for (i = 0; i < len; i++)
		kb[i] = (uint8_t)(domain[i] >= 'A' && domain[i] <= 'Z' ?
		    domain[i] - 'A' + 'a' : domain[i]);
	return len;
}

static int
queue_sts_dec(const MDB_val *v, struct qsts *s)
{
	const uint8_t	*p = v->mv_data;
	size_t		 len = v->mv_size, pos, n;

	memset(s, 0, offsetof(struct qsts, policy));
	s->policy[0] = '\0';
	if (len < QUEUE_STS_FIXED || p[0] != QUEUE_STS_VER)
		return QUEUE_E_CORRUPT;
	s->fetched = (int64_t)queue_be64_get(p + 1);
	s->expires = (int64_t)queue_be64_get(p + 9);
	s->failed = (int64_t)queue_be64_get(p + 17);
	pos = 25;
	n = p[pos++];
	if (n > QUEUE_STS_ID_MAX || n + 1 > len - pos)
		return QUEUE_E_CORRUPT;
	memcpy(s->id, p + pos, n);
	s->id[n] = '\0';
	pos += n;
	n = p[pos++];
	if (n > QUEUE_STS_ID_MAX || n + 4 > len - pos)
		return QUEUE_E_CORRUPT;
	memcpy(s->fail_id, p + pos, n);
	s->fail_id[n] = '\0';
	pos += n;
	n = queue_be32_get(p + pos);
	pos += 4;
	if (n > QUEUE_STS_POLICY_MAX || n != len - pos ||
	    memchr(p + pos, '\0', n) != NULL)
		return QUEUE_E_CORRUPT;
	memcpy(s->policy, p + pos, n);
	s->policy[n] = '\0';
	s->len = n;
	return 0;
}

int
queue_sts_get(struct queue *q, const char *domain, struct qsts *s)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_ADDR_MAX];
	int		 rc, mrc;

	memset(s, 0, offsetof(struct qsts, policy));
	s->policy[0] = '\0';
	if (!q->sts_ok ||
	    (k.mv_size = queue_sts_key(domain, kb, sizeof(kb))) == 0)
		return queue_fail(q, QUEUE_E_NOENT, "no MTA-STS record");
	k.mv_data = kb;
	if ((rc = queue_txn_begin(q, MDB_RDONLY, &txn)) != 0)
		return rc;
	mrc = mdb_get(txn, q->sts, &k, &v);
	if (mrc == 0) {
		if ((rc = queue_sts_dec(&v, s)) != 0)
			rc = queue_fail(q, rc, "MTA-STS record of %s: corrupt",
			    domain);
	} else if (mrc == MDB_NOTFOUND)
		rc = queue_fail(q, QUEUE_E_NOENT, "no MTA-STS record");
	else
		rc = queue_lmdb(q, mrc, "read MTA-STS record");
	mdb_txn_abort(txn);
	return rc;
}

int
queue_sts_put(struct queue *q, const char *domain, const struct qsts *s)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 kb[QUEUE_ADDR_MAX], *b;
	size_t		 il = strlen(s->id), fl = strlen(s->fail_id), pos;
	int		 rc, mrc;

	if (!q->sts_ok)
		return queue_fail(q, QUEUE_E_INVAL, "no sts database "
		    "(queue opened read-only)");
	if ((k.mv_size = queue_sts_key(domain, kb, sizeof(kb))) == 0 ||
	    il > QUEUE_STS_ID_MAX || fl > QUEUE_STS_ID_MAX ||
	    s->len > QUEUE_STS_POLICY_MAX)
		return queue_fail(q, QUEUE_E_INVAL, "MTA-STS record too long");
	k.mv_data = kb;
	if ((b = malloc(QUEUE_STS_REC_MAX)) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "MTA-STS record: out of "
		    "memory");
	b[0] = QUEUE_STS_VER;
	queue_be64_put(b + 1, (uint64_t)s->fetched);
	queue_be64_put(b + 9, (uint64_t)s->expires);
	queue_be64_put(b + 17, (uint64_t)s->failed);
	pos = 25;
	b[pos++] = (uint8_t)il;
	memcpy(b + pos, s->id, il);
	pos += il;
	b[pos++] = (uint8_t)fl;
	memcpy(b + pos, s->fail_id, fl);
	pos += fl;
	queue_be32_put(b + pos, (uint32_t)s->len);
	pos += 4;
	memcpy(b + pos, s->policy, s->len);
	pos += s->len;
	v.mv_data = b;
	v.mv_size = pos;
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		goto out;
	if ((mrc = mdb_put(txn, q->sts, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		rc = queue_lmdb(q, mrc, "write MTA-STS record");
		goto out;
	}
	rc = queue_txn_commit(q, txn);
out:
	free(b);
	return rc;
}

int
queue_sts_purge(struct queue *q, int64_t before, size_t *n)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	const uint8_t	*p;
	size_t		 gone = 0;
	int		 rc, mrc;

	if (n != NULL)
		*n = 0;
	if (!q->sts_ok)
		return 0;
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		return rc;
	if ((mrc = mdb_cursor_open(txn, q->sts, &cur)) != 0) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "sts cursor");
	}
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		p = v.mv_data;
		/* A record that cannot be read is of no use either. */
		if (v.mv_size >= QUEUE_STS_FIXED && p[0] == QUEUE_STS_VER &&
		    ((int64_t)queue_be64_get(p + 9) >= before ||
		    (int64_t)queue_be64_get(p + 17) >= before))
			continue;
		if ((mrc = mdb_cursor_del(cur, 0)) != 0)
			break;
		gone++;
	}
	mdb_cursor_close(cur);
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "purge MTA-STS records");
	}
	if (gone == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	if ((rc = queue_txn_commit(q, txn)) == 0 && n != NULL)
		*n = gone;
	return rc;
}

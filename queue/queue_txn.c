/*
 * queue_txn.c - transactions (begin, commit, the sequence counter),
 * enqueue, one message or a batch in one transaction, and group commit.
 *
 * The cost of a durable enqueue is the commit's fsync, not the writes, so
 * group commit is the whole game: messages that finish together share one
 * transaction and one fsync. Gathering them is the caller's (smtpd's
 * commit thread takes what its sessions finished); queue_enqueue_group()
 * stores what it is handed, and keeps one bad message from failing the
 * others.
 *
 * Full disk, full map: LMDB reuses the pages a transaction freed only
 * once a later transaction has committed (the reader of the last but one
 * snapshot may still see them). Failed transactions commit nothing, so
 * after a deletion that freed room (`postern delete`, a delivered
 * message) every write that needs that room would fail for ever: the
 * queue stays full although it is not. So a write that failed for space
 * marks the handle, and the next write transaction is preceded by a
 * nudge, a transaction that changes one small record of meta and needs
 * only a page or two of older free space; once it has committed, the
 * room freed before it can be used. Enqueueing also tries once more at
 * once after a nudge, so that the client who finds the room gets it.
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "queue_int.h"

/* Free space under which a failed commit means "disk full". */
#define QUEUE_LOW_SPACE	(1024 * 1024)
/* Room that new mail may not take, on the disk and in the map: what
 * delivery results, DSNs and `postern delete` need once the queue is
 * full. Each is a copy-on-write transaction that needs new pages before
 * it frees any, so a queue that took every last block could not even be
 * emptied. (Postfix keeps queue_minfree for the same reason.) A small
 * disk or map keeps a sixteenth of itself instead. */
#define QUEUE_RESERVE	(2 * 1024 * 1024)
#define QUEUE_RESERVE_OF(total) \
	((total) / 16 < QUEUE_RESERVE ? (total) / 16 : QUEUE_RESERVE)

/* queue_txn_nudge - commit a one-record transaction (see the top): 0 if
 * it did. Leaves errmsg alone: the caller's failure is the one to tell. */
int
queue_txn_nudge(struct queue *q)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	uint8_t		 b[8];
	int		 rc;

	__atomic_store_n(&q->full, 0, __ATOMIC_RELAXED);
	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0)
		return -1;
	queue_be64_put(b, (uint64_t)queue_now_us());
	k.mv_data = (void *)"nudge";
	k.mv_size = 5;
	v.mv_data = b;
	v.mv_size = 8;
	if ((rc = mdb_put(txn, q->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		__atomic_store_n(&q->full, 1, __ATOMIC_RELAXED);
		return -1;
	}
	if (mdb_txn_commit(txn) != 0) {
		__atomic_store_n(&q->full, 1, __ATOMIC_RELAXED);
		return -1;
	}
	return 0;
}

int
queue_txn_begin(struct queue *q, unsigned flags, MDB_txn **txn)
{
	int	rc;

	if (!(flags & MDB_RDONLY) && !(q->flags & QUEUE_RDONLY) &&
	    __atomic_load_n(&q->full, __ATOMIC_RELAXED))
		(void)queue_txn_nudge(q);
	if ((rc = mdb_txn_begin(q->env, NULL, flags, txn)) != 0) {
		*txn = NULL;
		return queue_lmdb(q, rc, "begin transaction");
	}
	return 0;
}

int
queue_txn_commit(struct queue *q, MDB_txn *txn)
{
	int	rc;

	/* mdb_txn_commit frees the transaction even when it fails. */
	if ((rc = mdb_txn_commit(txn)) != 0) {
		struct statvfs	sv;

		/* LMDB reports a short write on a full disk as EIO. */
		if (rc == EIO && statvfs(q->dir, &sv) == 0 &&
		    (uint64_t)sv.f_bavail * sv.f_frsize < QUEUE_LOW_SPACE)
			rc = ENOSPC;
		return queue_lmdb(q, rc, "commit");
	}
	__atomic_add_fetch(&q->ncommits, 1, __ATOMIC_RELAXED);
	return 0;
}

/* queue_txn_next_seq - the next id or token: unique across processes
 * because it is taken inside the write transaction. Ids are microsecond
 * stamps so they sort by arrival; the counter breaks ties. */
static int
queue_txn_next_seq(struct queue *q, MDB_txn *txn, uint64_t *seq)
{
	MDB_val		k, v;
	uint64_t	last, now;
	uint8_t		b[8];
	int		rc;

	if ((rc = queue_rec_get_u64(q, txn, "seq", &last)) != 0)
		return rc;
	now = (uint64_t)queue_now_us();
	*seq = now > last ? now : last + 1;
	queue_be64_put(b, *seq);
	k.mv_data = (void *)"seq";
	k.mv_size = 3;
	v.mv_data = b;
	v.mv_size = 8;
	if ((rc = mdb_put(txn, q->meta, &k, &v, 0)) != 0)
		return queue_lmdb(q, rc, "write sequence");
	return 0;
}

int
queue_txn_seq(struct queue *q, MDB_txn *txn, uint64_t *seq)
{
	return queue_txn_next_seq(q, txn, seq);
}

/* queue_txn_pread - fill a reserved body chunk from the spool file. */
static int
queue_txn_pread(struct queue *q, int fd, void *dst, size_t len, size_t off)
{
	ssize_t	n;
	size_t	got = 0;

	while (got < len) {
		n = pread(fd, (char *)dst + got, len - got, (off_t)(off + got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return queue_fail(q, QUEUE_E_SYS, "read spool file: %s",
			    n == 0 ? "short file" : strerror(errno));
		got += (size_t)n;
	}
	return 0;
}

int
queue_txn_put(struct queue *q, MDB_txn *txn, struct qnew *n, int64_t now)
{
	struct qmsg	*m = &n->msg;
	const uint8_t	*body = n->body;
	uint8_t		 kb[QUEUE_KEY_MSUB];
	MDB_val		 k, v;
	size_t		 off, i;
	uint32_t	 chunk;
	int		 rc;

	if (n->nrcpt == 0 || n->nrcpt > UINT32_MAX)
		return queue_fail(q, QUEUE_E_INVAL, "message without recipients");
	if ((rc = queue_txn_next_seq(q, txn, &m->id)) != 0)
		return rc;
	if (m->arrival == 0)
		m->arrival = now;
	m->size = n->bodylen;
	m->nrcpt = (uint32_t)n->nrcpt;
	m->nlive = m->nrcpt;
	m->nchunks = (uint32_t)((n->bodylen + QUEUE_CHUNK_SIZE - 1) /
	    QUEUE_CHUNK_SIZE);
	/* Ids only grow, so every key of this message sorts last: append,
	 * in key order (envelope, recipients, body). */
	if ((rc = queue_rec_put_msg(q, txn, m, MDB_APPEND)) != 0)
		return rc;
	for (i = 0; i < n->nrcpt; i++) {
		struct qrcpt	*r = &n->rcpt[i];
		int64_t		 due = r->due;

		r->id = m->id;
		r->idx = (uint32_t)i;
		r->due = 0;
		r->attempts = 0;
		r->claim = 0;
		r->nhist = 0;
		r->flags &= QRCPT_F_SITE | QRCPT_F_OPHOLD;	/* not FLUSHED */
		if (r->state != QRCPT_HELD)
			r->state = QRCPT_QUEUED;
		if (r->state == QRCPT_QUEUED && due == 0)
			due = now;
		if (r->flags & QRCPT_F_OPHOLD)
			due = 0;
		if ((rc = queue_rec_due_set(q, txn, r, due)) != 0 ||
		    (rc = queue_rec_bydom(q, txn, r, true)) != 0 ||
		    (rc = queue_rec_put_rcpt(q, txn, r, MDB_APPEND)) != 0)
			return rc;
	}
	/* After the recipients: their keys sort before the body's. */
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (off = 0, chunk = 0; off < n->bodylen; chunk++) {
		size_t len = n->bodylen - off;

		if (len > QUEUE_CHUNK_SIZE)
			len = QUEUE_CHUNK_SIZE;
		queue_key_msub(kb, m->id, QUEUE_MSUB_BODY, chunk);
		v.mv_size = len;
		if (body != NULL) {
			/* LMDB only reads it. */
			v.mv_data = (void *)(uintptr_t)(body + off);
			rc = mdb_put(txn, q->msg, &k, &v, MDB_APPEND);
		} else {
			rc = mdb_put(txn, q->msg, &k, &v,
			    MDB_APPEND | MDB_RESERVE);
			if (rc == 0 && (rc = queue_txn_pread(q, n->body_fd,
			    v.mv_data, len, off)) != 0)
				return rc;
		}
		if (rc != 0)
			return queue_lmdb(q, rc, "write body");
		off += len;
	}
	if ((rc = queue_rec_counter(q, txn, "msgs", 1)) != 0 ||
	    (rc = queue_rec_counter(q, txn, "rcpts", (int64_t)n->nrcpt)) != 0)
		return rc;
	return 0;
}

/* queue_txn_free_pages - pages on LMDB's free list (its database 0): each
 * record is a list of page numbers led by its length. Only walked when
 * the disk or the map is nearly full. */
static uint64_t
queue_txn_free_pages(struct queue *q)
{
	MDB_txn		*txn;
	MDB_cursor	*c;
	MDB_val		 k, v;
	MDB_cursor_op	 op = MDB_FIRST;
	uint64_t	 n = 0;
	size_t		 len;

	/* LMDB opens no cursor on it in a write transaction. */
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_cursor_open(txn, 0, &c) != 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	while (mdb_cursor_get(c, &k, &v, op) == 0) {
		op = MDB_NEXT;
		if (v.mv_size >= sizeof(len)) {
			memcpy(&len, v.mv_data, sizeof(len));
			n += len;
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return n;
}

/*
 * queue_txn_room - may new mail take more room? Not when what is left on
 * the disk or in the map (with the pages on LMDB's free list) is under
 * QUEUE_RESERVE: QUEUE_E_FULL, as if it were full.
 */
static int
queue_txn_room(struct queue *q, size_t bytes)
{
	struct statvfs	sv;
	MDB_envinfo	info;
	MDB_stat	st;
	uint64_t	disk = UINT64_MAX, dres = 0, map, mres, used, spare;

	if (mdb_env_info(q->env, &info) != 0 || mdb_env_stat(q->env, &st) != 0)
		return 0;
	if (statvfs(q->dir, &sv) == 0) {
		disk = (uint64_t)sv.f_bavail * sv.f_frsize;
		dres = QUEUE_RESERVE_OF((uint64_t)sv.f_blocks * sv.f_frsize);
	}
	used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	map = info.me_mapsize > used ? info.me_mapsize - used : 0;
	mres = QUEUE_RESERVE_OF((uint64_t)info.me_mapsize);
	if (disk >= dres + bytes && map >= mres + bytes)
		return 0;
	spare = queue_txn_free_pages(q) * st.ms_psize;
	if (map + spare < mres + bytes)
		return queue_env_map_full(q, "enqueue");
	if (disk != UINT64_MAX && disk + spare < dres + bytes)
		return queue_fail(q, QUEUE_E_FULL, "enqueue: disk full: %llu "
		    "KiB free for %s, and the last %llu KiB are kept for "
		    "deliveries, bounces and deletions",
		    (unsigned long long)((disk + spare) / 1024), q->dir,
		    (unsigned long long)(dres / 1024));
	return 0;
}

int
queue_enqueue_batch(struct queue *q, struct qnew **v, size_t n)
{
	MDB_txn	*txn = NULL;
	int64_t	 now = queue_now();
	size_t	 i, bytes;
	int	 rc, tries = 0;

	if (q->flags & QUEUE_RDONLY) {
		rc = queue_fail(q, QUEUE_E_INVAL, "queue opened read-only");
		goto done;
	}
	for (i = 0, bytes = 0; i < n; i++)
		bytes += v[i]->bodylen;
	if ((rc = queue_txn_room(q, bytes)) != 0)
		goto done;
again:
	if ((rc = queue_txn_begin(q, 0, &txn)) != 0)
		goto done;
	for (i = 0; i < n; i++)
		if ((rc = queue_txn_put(q, txn, v[i], now)) != 0) {
			mdb_txn_abort(txn);
			goto full;
		}
	rc = queue_txn_commit(q, txn);
full:
	/* Once more after a nudge (see the top): room freed by the last
	 * transaction becomes usable. */
	if (rc == QUEUE_E_FULL && tries++ == 0 && queue_txn_nudge(q) == 0)
		goto again;
done:
	for (i = 0; i < n; i++) {
		v[i]->rc = rc;
		if (rc != 0)
			v[i]->msg.id = 0;
	}
	return rc;
}

int
queue_enqueue(struct queue *q, struct qnew *n)
{
	return queue_enqueue_batch(q, &n, 1);
}

/* queue_enqueue_group - see queue.h for the rule on QUEUE_E_FULL. */
int
queue_enqueue_group(struct queue *q, struct qnew **v, size_t n)
{
	size_t	i;
	int	rc, first = 0;

	if (n == 0)
		return 0;
	if ((rc = queue_enqueue_batch(q, v, n)) == 0 || n == 1 ||
	    rc == QUEUE_E_FULL)
		return rc;
	/* One of them may be bad: each alone, so it fails alone. */
	for (i = 0; i < n; i++)
		if ((rc = queue_enqueue(q, v[i])) != 0 && first == 0)
			first = rc;
	return first;
}

/*
 * queue_int.h - what the files of queue/ share and nobody else sees.
 */
#ifndef QUEUE_INT_H
#define QUEUE_INT_H

#include <lmdb.h>
#include <stdarg.h>

#include "queue.h"

struct queue {
	MDB_env		*env;
	MDB_dbi		 meta, msg, active, due, bydom, flushq;
	MDB_dbi		 sts;		/* MTA-STS policies (queue_sts.c) */
	bool		 sts_ok;	/* sts is open (a read-only open of a
					 * queue that never had one: no) */
	int		 flags;
	uint64_t	 ncommits;	/* updated atomically */
	/* A write failed for space since the last nudge (queue_txn.c);
	 * atomic. */
	int		 full;
	queue_report_fn	*report;	/* NULL: no reports */
	void		*report_arg;
	struct queue_report_conf report_conf;
	uint64_t	 mapsize;	/* as opened (queue_map_size) */
	void		*map;		/* LMDB's map of data.mdb, once found */
	size_t		 maplen;
	int64_t		 lease_grace;	/* queue_claim_grace(): seconds */
	char		 dir[4096];
	char		 errmsg[512];	/* last failure; racy across threads */
};

/* Key sizes. */
#define QUEUE_KEY_RCPT	12	/* id(8) idx(4) */
#define QUEUE_KEY_MSUB	13	/* in msg: id(8) kind(1) n(4) */
#define QUEUE_MSUB_RCPT	0x01	/* ... kind: a recipient record */
#define QUEUE_MSUB_BODY	0x02	/* ... kind: a body chunk */
#define QUEUE_KEY_DUE	20	/* time(8) id(8) idx(4) */
/* Operator changes are applied in transactions of at most this many
 * recipients, so flushing a million stays inside LMDB's dirty-page limit. */
#define QUEUE_OPS_TXN_MAX	4096

/* Flush requests (flushq values): what a domain flush asked for. */
#define QUEUE_FLUSH_SUB		0x01	/* the domain's subdomains too */
#define QUEUE_FLUSH_HELD	0x02	/* recipients held for their site too */
#define QUEUE_FLUSH_CALLER	0x04	/* a caller's address follows the time */

/*
 * A flush request: the flushq value under a reversed domain, encoded by
 * queue_rec.c as flags(1) time(8) [len(1) caller] [bydom value(12) bydom
 * key]. The caller (an authenticated ETRN's address) is there only with
 * QUEUE_FLUSH_CALLER, so values written before it decode as they did. The
 * tail is the bydom entry where a claim's walk of the domain's range
 * stopped; without it the next walk starts at the domain.
 */
struct queue_flushreq {
	uint8_t		flags;		/* QUEUE_FLUSH_* */
	int64_t		when;		/* asked for, or last served */
	uint8_t		rval[QUEUE_KEY_RCPT];		/* resume: value */
	uint8_t		rkey[QUEUE_ADDR_MAX + 1];	/* resume: key */
	size_t		rklen;		/* 0: no resume point */
	char		caller[QUEUE_CALLER_MAX + 1];	/* QUEUE_FLUSH_CALLER */
};

/* queue_ops.c */
int	queue_ops_dom_walk(struct queue *, MDB_txn *, const char *domain,
	    bool sub, int (*fn)(struct queue *, void *, const MDB_val *,
	    const MDB_val *), void *arg);

/* queue_env.c */
int	queue_fail(struct queue *, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
int	queue_lmdb(struct queue *, int mdbrc, const char *what);
/* queue_env_map_full - QUEUE_E_FULL, saying "queue map full
 * (queue_map_size = N): raise queue_map_size". */
int	queue_env_map_full(struct queue *, const char *what);
int64_t	queue_now(void);
int64_t	queue_now_us(void);

/* queue_txn.c */
int	queue_txn_begin(struct queue *, unsigned flags, MDB_txn **);
/* queue_txn_put - enqueue one message inside txn (queue_enqueue's and a
 * report's DSN's). */
int	queue_txn_put(struct queue *, MDB_txn *, struct qnew *, int64_t now);
/* queue_txn_commit - commit (an fsync); a full disk is QUEUE_E_FULL. */
int	queue_txn_commit(struct queue *, MDB_txn *);
/* queue_txn_nudge - after a failure for space: commit a one-record
 * transaction so that the room the last one freed can be used; 0 if it
 * committed. */
int	queue_txn_nudge(struct queue *);
/* queue_txn_seq - next value of the "seq" counter (ids, claim tokens). */
int	queue_txn_seq(struct queue *, MDB_txn *, uint64_t *);

/* Big-endian integers, for keys and records: every file uses them. */
static inline void
queue_be64_put(uint8_t *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t
queue_be64_get(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void
queue_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t
queue_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* queue_key.c */
void	queue_key_rcpt(uint8_t k[QUEUE_KEY_RCPT], uint64_t id, uint32_t idx);
/* queue_key_msub - the key in msg of a message's recipient or body chunk
 * (kind QUEUE_MSUB_*): after the envelope's id(8), in index order. */
void	queue_key_msub(uint8_t k[QUEUE_KEY_MSUB], uint64_t id, uint8_t kind,
	    uint32_t n);
void	queue_key_due(uint8_t k[QUEUE_KEY_DUE], int64_t t, uint64_t id,
	    uint32_t idx);
/* queue_key_dom - reversed lower-case domain ("org.example"); returns its
 * length, or 0 when it does not fit. */
size_t	queue_key_dom(const char *domain, char *buf, size_t bufsz);
void	queue_key_dom_decode(const char *key, size_t len, char *buf,
	    size_t bufsz);

/* queue_rec.c: records and the index entries that follow them */
/* queue_rec_dec_msg, queue_rec_dec_rcpt - decode a stored record (any
 * bytes: a damaged one is QUEUE_E_CORRUPT with the reason in *why, never
 * an overrun) into the caller's struct, ids aside. queue_rec_enc_msg,
 * queue_rec_enc_rcpt - the record of the struct into buf: its length, or
 * 0 when it does not fit. The get and put functions below use them; the
 * fuzz target (tests/fuzz/fuzz_queue_rec.c) does too. */
#define QUEUE_REC_MAX		8192
int	queue_rec_dec_msg(const MDB_val *, struct qmsg *, const char **why);
int	queue_rec_dec_rcpt(const MDB_val *, struct qrcpt *, const char **why);
size_t	queue_rec_enc_msg(const struct qmsg *, uint8_t *buf, size_t bufsz);
size_t	queue_rec_enc_rcpt(const struct qrcpt *, uint8_t *buf, size_t bufsz);
int	queue_rec_get_msg(struct queue *, MDB_txn *, uint64_t id,
	    struct qmsg *);
int	queue_rec_put_msg(struct queue *, MDB_txn *, const struct qmsg *,
	    unsigned putflags);
int	queue_rec_get_rcpt(struct queue *, MDB_txn *, uint64_t id,
	    uint32_t idx, struct qrcpt *);
int	queue_rec_put_rcpt(struct queue *, MDB_txn *, const struct qrcpt *,
	    unsigned putflags);
/* queue_rec_due_leave - like queue_rec_due_set, but the old entry stays
 * behind as a stray key (the due walk drops it when it gets there, as it
 * drops any key that is not its recipient's rcpt.due). For a flush claim:
 * the old entry lies anywhere in a large index, the new one at its end. */
int	queue_rec_due_leave(struct queue *, MDB_txn *, struct qrcpt *,
	    int64_t due);
int	queue_rec_due_set(struct queue *, MDB_txn *, struct qrcpt *,
	    int64_t due);
int	queue_rec_bydom(struct queue *, MDB_txn *, const struct qrcpt *,
	    bool add);
int	queue_rec_counter(struct queue *, MDB_txn *, const char *name,
	    int64_t delta);
int	queue_rec_get_u64(struct queue *, MDB_txn *, const char *name,
	    uint64_t *);
/* queue_rec_final - the recipient reached a final state (already set in
 * r): drop its index entries and, when it was the message's last and not
 * `keep`, the whole message. With keep the message stays (nlive 0) for
 * queue_report_touched(), which reports it and then deletes it. */
int	queue_rec_final(struct queue *, MDB_txn *, struct qrcpt *, bool keep);
int	queue_rec_delete_msg(struct queue *, MDB_txn *, uint64_t id);
/* queue_rec_dec_flush - decode a flushq value into *f: 0, or
 * QUEUE_E_CORRUPT when it is too short to be one (f->flags still gets its
 * first byte, if there is one). A resume point that does not fit is left
 * out. Sets no error message: a walk skips what it cannot read. */
int	queue_rec_dec_flush(const MDB_val *, struct queue_flushreq *);
/* queue_rec_put_flush - write the request for a reversed domain key. */
int	queue_rec_put_flush(struct queue *, MDB_txn *, const MDB_val *key,
	    const struct queue_flushreq *);
void	queue_rec_hist_add(struct qrcpt *, int64_t when, const char *status,
	    const char *text);

/* queue_report.c */
/* queue_report_mark - with a hook, set or clear r's QRCPT_F_REPORT for a
 * result of `kind` (enum qresult_kind) at `when`, r's other fields already
 * set; m is its message's envelope (warnings, arrival). */
void	queue_report_mark(struct queue *, const struct qmsg *, struct qrcpt *,
	    int kind, int64_t when, bool hop_dsn);
/* queue_report_touched - for each message among ids (any order, repeats
 * allowed): when none of its recipients is active, call the hook with its
 * pending recipients and enqueue the DSN; then delete it if nothing of it
 * is live. A message that is gone is skipped. The hook's error is
 * returned (the caller aborts). */
int	queue_report_touched(struct queue *, MDB_txn *, uint64_t *ids,
	    size_t n, int64_t now);

#endif

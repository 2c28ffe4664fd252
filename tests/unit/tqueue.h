/*
 * tqueue.h - what the unit tests of queue/ share: a fresh queue per test,
 * messages and claims in a line, checks that report the caller's line.
 *
 * Every test makes its own queue in a fresh mkdtemp() directory under /tmp
 * and removes it at the end. A process never has the same environment
 * open twice at once (LMDB forbids it): the tests that need two writers
 * fork, and every child opens its own handle after fork() and leaves with
 * _exit(), so that it runs no atexit handler of the parent's.
 *
 * Bodies are generated from a seed with splitmix64, so any body can be
 * regenerated and compared byte for byte.
 *
 * Header-only like tharness.h (static inline: a test file uses what it
 * needs); a failure inside a helper is reported at the caller's file
 * (__BASE_FILE__) and line.
 */
#ifndef TQUEUE_H
#define TQUEUE_H

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"
#include "smtp.h"
#include "tharness.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define TQ_MAP		((uint64_t)1 << 30)	/* map of most tests */
#define TQ_FAR		((int64_t)1000000000)	/* ~30 years ahead */
#define TQ_NOBODY	65534			/* uid and gid of nobody */

/* t_errorl - t_errorf for helpers: reports the caller's file and line. */
#define t_errorl(t, line, ...) do {					\
	fprintf(stderr, "%s:%d: %s: ", __BASE_FILE__, (line), (t)->name); \
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	(t)->failed = 1;						\
} while (0)

/* tq_rng - splitmix64: one step of the deterministic stream. */
static inline uint64_t
tq_rng(uint64_t *s)
{
	uint64_t	z;

	z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* tq_fill - the body named by seed: len bytes of its stream. */
static inline void
tq_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t	s = seed, v;
	size_t		i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = tq_rng(&s);
		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		v = tq_rng(&s);
		memcpy(buf + i, &v, len - i);
	}
}

/* tq_tmpdir - a fresh directory under /tmp for one test. */
static inline bool
tq_tmpdir(struct t *t, char *dir, size_t dirsz)
{
	if (!strl_copy(dir, "/tmp/test_queue.XXXXXX", dirsz)) {
		t_errorf(t, "tq_tmpdir: buffer of %zu bytes too small", dirsz);
		return false;
	}
	if (mkdtemp(dir) == NULL) {
		t_errorf(t, "mkdtemp(%s): %s", dir, strerror(errno));
		return false;
	}
	return true;
}

static inline int
tq_rm1(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) == -1 && errno != ENOENT)
		fprintf(stderr, "test_queue: remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

/* tq_rmrf - rm -rf dir; never crosses into another file system. */
static inline void
tq_rmrf(const char *dir)
{
	(void)nftw(dir, tq_rm1, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static inline struct queue *
tq_open_at(struct t *t, int line, const char *dir, uint64_t mapsize)
{
	struct queue	*q;
	char		 err[512];
	int		 rc;

	if ((rc = queue_open(dir, QUEUE_CREATE, mapsize, &q, err,
	    sizeof(err))) != 0) {
		t_errorl(t, line, "queue_open(%s): got %d (%s), want 0", dir,
		    rc, err);
		return NULL;
	}
	return q;
}
#define tq_open(t, dir, mapsize)					\
	tq_open_at((t), __LINE__, (dir), (mapsize))

/* tq_rcpt - a recipient to enqueue: queued, due now. */
static inline void
tq_rcpt(struct qrcpt *r, const char *addr)
{
	memset(r, 0, sizeof(*r));
	(void)strl_copy(r->addr, addr, sizeof(r->addr));
	r->state = QRCPT_QUEUED;
}

static inline void
tq_new(struct qnew *n, struct qrcpt *r, size_t nrcpt, const void *body,
    size_t bodylen)
{
	memset(n, 0, sizeof(*n));
	(void)strl_copy(n->msg.sender, "sender@example.com",
	    sizeof(n->msg.sender));
	n->body = body;
	n->bodylen = bodylen;
	n->rcpt = r;
	n->nrcpt = nrcpt;
}

/* tq_enqueue - a small message to the queued recipients addrs. */
static inline bool
tq_enqueue_at(struct t *t, int line, struct queue *q,
    const char *const *addrs, size_t naddr, uint64_t *id)
{
	static const char	 body[] = "Subject: test\r\n\r\nhello\r\n";
	struct qrcpt		 r[8];
	struct qnew		 n;
	size_t			 i;
	int			 rc;

	*id = 0;
	if (naddr == 0 || naddr > NELEM(r)) {
		t_errorl(t, line, "tq_enqueue: %zu recipients", naddr);
		return false;
	}
	for (i = 0; i < naddr; i++)
		tq_rcpt(&r[i], addrs[i]);
	tq_new(&n, r, naddr, body, sizeof(body) - 1);
	if ((rc = queue_enqueue(q, &n)) != 0 || n.msg.id == 0) {
		t_errorl(t, line, "queue_enqueue(<%s>): got %d (%s), want 0",
		    addrs[0], rc, queue_errmsg(q));
		return false;
	}
	*id = n.msg.id;
	return true;
}
#define tq_enqueue(t, q, addrs, naddr, id)				\
	tq_enqueue_at((t), __LINE__, (q), (addrs), (naddr), (id))

/* tq_get_rcpt - recipient idx of message id into *out. */
static inline bool
tq_get_rcpt_at(struct t *t, int line, struct queue *q, uint64_t id,
    uint32_t idx, struct qrcpt *out)
{
	struct qmsg	 m;
	struct qrcpt	*r;
	size_t		 n;
	char		 ids[QUEUE_ID_LEN + 1];
	int		 rc;

	queue_id_format(id, ids);
	if ((rc = queue_get(q, id, &m, &r, &n)) != 0) {
		t_errorl(t, line, "queue_get(%s): got %d (%s), want 0", ids,
		    rc, queue_errmsg(q));
		return false;
	}
	if (idx >= n) {
		t_errorl(t, line, "queue_get(%s): %zu recipients, want > %u",
		    ids, n, idx);
		free(r);
		return false;
	}
	*out = r[idx];
	free(r);
	return true;
}
#define tq_get_rcpt(t, q, id, idx, out)					\
	tq_get_rcpt_at((t), __LINE__, (q), (id), (idx), (out))

/* tq_want - recipient (id, idx) has this state and due time (-1: any). */
static inline bool
tq_want_at(struct t *t, int line, struct queue *q, uint64_t id,
    uint32_t idx, int state, int64_t due)
{
	struct qrcpt	r;
	char		ids[QUEUE_ID_LEN + 1];
	bool		ok = true;

	if (!tq_get_rcpt_at(t, line, q, id, idx, &r))
		return false;
	queue_id_format(id, ids);
	if (r.state != state) {
		t_errorl(t, line, "recipient %s/%u: state %s, want %s", ids,
		    idx, queue_state_name(r.state), queue_state_name(state));
		ok = false;
	}
	if (due != -1 && r.due != due) {
		t_errorl(t, line, "recipient %s/%u: due %lld, want %lld", ids,
		    idx, (long long)r.due, (long long)due);
		ok = false;
	}
	return ok;
}
#define tq_want(t, q, id, idx, state, due)				\
	tq_want_at((t), __LINE__, (q), (id), (idx), (state), (due))

/* tq_claim - queue_claim_due() that must claim exactly `want`. */
static inline size_t
tq_claim_at(struct t *t, int line, struct queue *q, int64_t now,
    int64_t lease, struct qclaim *c, size_t max, size_t want)
{
	size_t	n = 0;
	int	rc;

	if ((rc = queue_claim_due(q, now, lease, c, max, &n)) != 0)
		t_errorl(t, line, "queue_claim_due(now=%lld): got rc %d (%s), "
		    "want 0", (long long)now, rc, queue_errmsg(q));
	else if (n != want)
		t_errorl(t, line, "queue_claim_due(now=%lld): got %zu, "
		    "want %zu", (long long)now, n, want);
	return n;
}
#define tq_claim(t, q, now, lease, c, max, want)			\
	tq_claim_at((t), __LINE__, (q), (now), (lease), (c), (max), (want))

/* tq_claim_find - index in c of the claim of (id, idx), or -1. */
static inline int
tq_claim_find(const struct qclaim *c, size_t n, uint64_t id, uint32_t idx)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (c[i].id == id && c[i].idx == idx)
			return (int)i;
	return -1;
}

static inline void
tq_result(struct qresult *res, const struct qclaim *c, int kind,
    int64_t when, int64_t next_try, const char *status, const char *reply)
{
	memset(res, 0, sizeof(*res));
	res->id = c->id;
	res->idx = c->idx;
	res->token = c->token;
	res->kind = (uint8_t)kind;
	res->when = when;
	res->next_try = next_try;
	res->attempted = kind != QRESULT_HELD;
	(void)strl_copy(res->status, status, sizeof(res->status));
	(void)strl_copy(res->reply, reply, sizeof(res->reply));
}

/* tq_record1 - record one result; the call's error, else res.rc. */
static inline int
tq_record1_at(struct t *t, int line, struct queue *q, const struct qclaim *c,
    int kind, int64_t when, int64_t next_try, const char *status,
    const char *reply)
{
	struct qresult	res;
	int		rc;

	tq_result(&res, c, kind, when, next_try, status, reply);
	if ((rc = queue_claim_result(q, &res, 1)) != 0) {
		t_errorl(t, line, "queue_claim_result: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		return rc;
	}
	return res.rc;
}
#define tq_record1(t, q, c, kind, when, next_try, status, reply)	\
	tq_record1_at((t), __LINE__, (q), (c), (kind), (when), (next_try), \
	    (status), (reply))

/* tq_body_check - message id's body is exactly want[0..len). */
static inline bool
tq_body_check_at(struct t *t, int line, struct queue *q, uint64_t id,
    const uint8_t *want, size_t len)
{
	uint8_t		*buf;
	size_t		 off = 0, got, wlen, i;
	uint32_t	 chunk;
	char		 ids[QUEUE_ID_LEN + 1];
	bool		 ok = true;
	int		 rc;

	queue_id_format(id, ids);
	if ((buf = malloc(QUEUE_CHUNK_SIZE)) == NULL) {
		t_errorl(t, line, "malloc: %s", strerror(errno));
		return false;
	}
	for (chunk = 0; off < len; chunk++) {
		wlen = len - off < QUEUE_CHUNK_SIZE ? len - off :
		    QUEUE_CHUNK_SIZE;
		if ((rc = queue_body_chunk(q, id, chunk, buf, &got)) != 0) {
			t_errorl(t, line, "queue_body_chunk(%s, %u): got %d "
			    "(%s), want 0", ids, chunk, rc, queue_errmsg(q));
			ok = false;
			break;
		}
		if (got != wlen) {
			t_errorl(t, line, "queue_body_chunk(%s, %u): got %zu "
			    "bytes, want %zu", ids, chunk, got, wlen);
			ok = false;
			break;
		}
		if (memcmp(buf, want + off, got) != 0) {
			for (i = 0; buf[i] == want[off + i]; i++)
				continue;
			t_errorl(t, line, "body of %s: byte %zu: got 0x%02x, "
			    "want 0x%02x", ids, off + i, buf[i],
			    want[off + i]);
			ok = false;
			break;
		}
		off += got;
	}
	if (ok && (rc = queue_body_chunk(q, id, chunk, buf, &got)) !=
	    QUEUE_E_NOENT) {
		t_errorl(t, line, "queue_body_chunk(%s, %u) past the end: "
		    "got %d, want %d", ids, chunk, rc, QUEUE_E_NOENT);
		ok = false;
	}
	free(buf);
	return ok;
}
#define tq_body_check(t, q, id, want, len)				\
	tq_body_check_at((t), __LINE__, (q), (id), (want), (len))

/* tq_body_seed - message id's body is the body of seed, len bytes. */
static inline bool
tq_body_seed_at(struct t *t, int line, struct queue *q, uint64_t id,
    uint64_t seed, size_t len)
{
	uint8_t	*want;
	bool	 ok;

	if ((want = malloc(len ? len : 1)) == NULL) {
		t_errorl(t, line, "malloc(%zu): %s", len, strerror(errno));
		return false;
	}
	tq_fill(want, len, seed);
	ok = tq_body_check_at(t, line, q, id, want, len);
	free(want);
	return ok;
}
#define tq_body_seed(t, q, id, seed, len)				\
	tq_body_seed_at((t), __LINE__, (q), (id), (seed), (len))

/* tq_enqueue_seed - a message of one recipient and a body of len bytes
 * from seed; its result code (id set on success). */
static inline int
tq_enqueue_seed(struct queue *q, const char *addr, uint64_t seed,
    uint8_t *body, size_t len, uint64_t *id)
{
	struct qrcpt	r;
	struct qnew	n;
	int		rc;

	tq_rcpt(&r, addr);
	tq_fill(body, len, seed);
	tq_new(&n, &r, 1, body, len);
	rc = queue_enqueue(q, &n);
	*id = n.msg.id;
	return rc;
}

static inline bool
tq_write(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* tq_read_all - read fd to its end into a malloc'd *buf. */
static inline bool
tq_read_all(int fd, uint8_t **buf, size_t *len)
{
	size_t	 cap = 65536;
	ssize_t	 n;
	void	*nb;

	*len = 0;
	if ((*buf = malloc(cap)) == NULL)
		return false;
	for (;;) {
		if (*len == cap) {
			if ((nb = realloc(*buf, cap * 2)) == NULL)
				return false;
			*buf = nb;
			cap *= 2;
		}
		if ((n = read(fd, *buf + *len, cap - *len)) == -1) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (n == 0)
			return true;
		*len += (size_t)n;
	}
}

static inline void
tq_sleep_ns(uint64_t ns)
{
	struct timespec	ts;

	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/*
 * tq_fork_pipe - fork a child that reports to its parent through a pipe.
 * In the child it returns 0 and *fd is the pipe's write end; in the parent
 * the child's pid, and *fd is the read end (the other ends are closed).
 * -1 when pipe() or fork() failed (reported).
 */
static inline pid_t
tq_fork_pipe(struct t *t, int *fd)
{
	pid_t	pid;
	int	fds[2];

	if (pipe(fds) == -1) {
		t_errorf(t, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		t_errorf(t, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	close(fds[pid == 0 ? 0 : 1]);
	*fd = fds[pid == 0 ? 1 : 0];
	return pid;
}

/* tq_wait - wait for pid; true when it exited with code `want`. */
static inline bool
tq_wait_at(struct t *t, int line, pid_t pid, int want, const char *what)
{
	int	st;

	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			t_errorl(t, line, "waitpid(%s): %s", what,
			    strerror(errno));
			return false;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == want)
		return true;
	if (WIFEXITED(st))
		t_errorl(t, line, "%s: exit code %d, want %d", what,
		    WEXITSTATUS(st), want);
	else
		t_errorl(t, line, "%s: killed by signal %d, want exit %d",
		    what, WIFSIGNALED(st) ? WTERMSIG(st) : -1, want);
	return false;
}
#define tq_wait(t, pid, want, what)					\
	tq_wait_at((t), __LINE__, (pid), (want), (what))

static inline int
tq_u64cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* tq_db_entries - the entries of each named database, counted by LMDB
 * itself: what a walk cannot see (a message record whose recipients are
 * missing is skipped by queue_walk()) shows up here. */
static inline bool
tq_db_entries(struct t *t, const char *dir, const char *const *names,
    size_t n, size_t *out)
{
	MDB_env		*env = NULL;
	MDB_txn		*txn = NULL;
	MDB_dbi		 dbi;
	MDB_stat	 st;
	size_t		 i;
	int		 mrc;

	if ((mrc = mdb_env_create(&env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (mrc = mdb_env_open(env, dir, MDB_RDONLY, 0600)) != 0 ||
	    (mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
		t_errorf(t, "opening %s with LMDB: %s", dir, mdb_strerror(mrc));
		if (env != NULL)
			mdb_env_close(env);
		return false;
	}
	for (i = 0; i < n; i++) {
		if ((mrc = mdb_dbi_open(txn, names[i], 0, &dbi)) != 0 ||
		    (mrc = mdb_stat(txn, dbi, &st)) != 0) {
			t_errorf(t, "database %s: %s", names[i],
			    mdb_strerror(mrc));
			break;
		}
		out[i] = st.ms_entries;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return i == n;
}

#endif

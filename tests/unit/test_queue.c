/*
 * test_queue.c - unit tests for queue/: the LMDB queue.
 *
 * Every test makes its own queue in a fresh mkdtemp() directory under /tmp
 * and removes it at the end. A process never has the same environment
 * open twice at once (LMDB forbids it): the tests that need two writers
 * fork, and every child opens its own handle after fork() and leaves with
 * _exit(), so that it runs no atexit handler of the parent's.
 *
 * Covered: the round trip of an envelope, its recipients and a body of
 * three chunks; queue ids; claims, leases, renew/unclaim and stale tokens;
 * results and the removal of a finished message; held domains and hold
 * expiry; operator hold/release/requeue/delete; the domain index with its
 * subdomain ranges; walks and queue_shape(); group commit from 32 threads;
 * two processes enqueueing and claiming at once; a writer killed with
 * SIGKILL at random moments (nothing half-written may be seen); open
 * errors; a full map and a full disk (a 2 MiB tmpfs, so the tests run as
 * root). The last tests pin down queue bugs found while writing these.
 *
 * Bodies are generated from a seed with splitmix64, so any body can be
 * regenerated and compared byte for byte. Only the crash test is random:
 * its kill delays and message seeds come from a clock-seeded stream whose
 * seed it prints. Two tests look under the API with LMDB itself, each
 * with the queue closed: one writes a queue of another schema version,
 * the crash test counts the entries of every database.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
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

/* t_errorl - t_errorf for helpers: reports the caller's line. */
#define t_errorl(t, line, ...) do {					\
	fprintf(stderr, "%s:%d: %s: ", __FILE__, (line), (t)->name);	\
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	(t)->failed = 1;						\
} while (0)

/* ------------------------------------------------------------------ */
/* Helpers. */

/* tq_rng - splitmix64: one step of the deterministic stream. */
static uint64_t
tq_rng(uint64_t *s)
{
	uint64_t	z;

	z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* tq_fill - the body named by seed: len bytes of its stream. */
static void
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
static bool
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

static int
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
static void
tq_rmrf(const char *dir)
{
	(void)nftw(dir, tq_rm1, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static struct queue *
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
static void
tq_rcpt(struct qrcpt *r, const char *addr)
{
	memset(r, 0, sizeof(*r));
	(void)strl_copy(r->addr, addr, sizeof(r->addr));
	r->state = QRCPT_QUEUED;
}

static void
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
static bool
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
static bool
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
static bool
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
static size_t
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
static int
tq_claim_find(const struct qclaim *c, size_t n, uint64_t id, uint32_t idx)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (c[i].id == id && c[i].idx == idx)
			return (int)i;
	return -1;
}

static void
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
static int
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
static bool
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
static bool
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
static int
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

static bool
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
static bool
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

static void
tq_sleep_ns(uint64_t ns)
{
	struct timespec	ts;

	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/* tq_wait - wait for pid; true when it exited with code `want`. */
static bool
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

static int
tq_u64cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* 1. Enqueue and read back. */

static void
test_enqueue_get(struct t *t)
{
	static const char *const bad[] = {
		"", "0123456789", "0123456789AB", "0123456789U",
		"01234 6789A", "0123456789*", "-0123456789",
	};
	struct queue	*q = NULL;
	struct qnew	 n, n2;
	struct qrcpt	 r[2], r2, *got = NULL;
	struct qmsg	 m;
	uint8_t		*body = NULL;
	const size_t	 blen = 700000;
	uint64_t	 id, id2, parsed = 0;
	int64_t		 before, after;
	size_t		 nr, i;
	char		 dir[64], s1[QUEUE_ID_LEN + 1], s2[QUEUE_ID_LEN + 1];
	char		 low[QUEUE_ID_LEN + 1];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if ((body = malloc(blen)) == NULL) {
		t_errorf(t, "malloc: %s", strerror(errno));
		goto out;
	}
	tq_fill(body, blen, 700);

	before = (int64_t)time(NULL);
	tq_rcpt(&r[0], "Bob@Example.ORG");
	(void)strl_copy(r[0].orcpt, "rfc822;Bob@Example.ORG",
	    sizeof(r[0].orcpt));
	r[0].notify = QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE;
	tq_rcpt(&r[1], "carol@site.example");
	r[1].notify = QRCPT_NOTIFY_NEVER;
	r[1].state = QRCPT_HELD;
	r[1].flags = QRCPT_F_SITE;
	r[1].due = before + 3600;
	tq_new(&n, r, 2, body, blen);
	(void)strl_copy(n.msg.sender, "alice@example.com",
	    sizeof(n.msg.sender));
	(void)strl_copy(n.msg.envid, "QQ314159+2B2B", sizeof(n.msg.envid));
	(void)strl_copy(n.msg.client, "mail.example.com[192.0.2.1]",
	    sizeof(n.msg.client));
	n.msg.flags = QMSG_F_8BITMIME | QMSG_F_RET_HDRS;
	n.msg.arrival = 1700000000;
	if ((rc = queue_enqueue(q, &n)) != 0 || n.rc != 0) {
		t_errorf(t, "queue_enqueue: got %d (rc %d, %s), want 0", rc,
		    n.rc, queue_errmsg(q));
		goto out;
	}
	after = (int64_t)time(NULL);
	id = n.msg.id;
	if (id == 0)
		t_errorf(t, "queue_enqueue: id 0");

	if ((rc = queue_get(q, id, &m, &got, &nr)) != 0) {
		t_errorf(t, "queue_get: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	if (m.id != id)
		t_errorf(t, "msg.id: got %" PRIu64 ", want %" PRIu64, m.id, id);
	if (strcmp(m.sender, "alice@example.com") != 0)
		t_errorf(t, "msg.sender: got \"%s\"", m.sender);
	if (strcmp(m.envid, "QQ314159+2B2B") != 0)
		t_errorf(t, "msg.envid: got \"%s\"", m.envid);
	if (strcmp(m.client, "mail.example.com[192.0.2.1]") != 0)
		t_errorf(t, "msg.client: got \"%s\"", m.client);
	if (m.flags != (QMSG_F_8BITMIME | QMSG_F_RET_HDRS))
		t_errorf(t, "msg.flags: got 0x%x, want 0x%x", m.flags,
		    QMSG_F_8BITMIME | QMSG_F_RET_HDRS);
	if (m.arrival != 1700000000)
		t_errorf(t, "msg.arrival: got %lld, want 1700000000",
		    (long long)m.arrival);
	if (m.size != blen)
		t_errorf(t, "msg.size: got %" PRIu64 ", want %zu", m.size,
		    blen);
	if (m.nrcpt != 2 || m.nlive != 2 || nr != 2)
		t_errorf(t, "msg.nrcpt %u, nlive %u, n %zu: want 2, 2, 2",
		    m.nrcpt, m.nlive, nr);
	if (m.nchunks != 3)
		t_errorf(t, "msg.nchunks: got %u, want 3", m.nchunks);
	for (i = 0; i < nr && i < 2; i++) {
		if (got[i].id != id || got[i].idx != i)
			t_errorf(t, "rcpt[%zu]: id/idx %" PRIu64 "/%u", i,
			    got[i].id, got[i].idx);
		if (strcmp(got[i].addr, r[i].addr) != 0)
			t_errorf(t, "rcpt[%zu].addr: got \"%s\", want \"%s\"",
			    i, got[i].addr, r[i].addr);
		if (strcmp(got[i].orcpt, r[i].orcpt) != 0)
			t_errorf(t, "rcpt[%zu].orcpt: got \"%s\", want "
			    "\"%s\"", i, got[i].orcpt, r[i].orcpt);
		if (got[i].notify != r[i].notify)
			t_errorf(t, "rcpt[%zu].notify: got 0x%x, want 0x%x",
			    i, got[i].notify, r[i].notify);
		if (got[i].attempts != 0 || got[i].claim != 0 ||
		    got[i].nhist != 0 || got[i].status[0] != '\0')
			t_errorf(t, "rcpt[%zu]: attempts %u, claim %" PRIu64
			    ", nhist %u, status \"%s\": want 0, 0, 0, \"\"",
			    i, got[i].attempts, got[i].claim, got[i].nhist,
			    got[i].status);
	}
	if (nr == 2) {
		if (got[0].state != QRCPT_QUEUED || got[0].flags != 0)
			t_errorf(t, "rcpt[0]: state %s flags 0x%x, want "
			    "queued 0", queue_state_name(got[0].state),
			    got[0].flags);
		if (got[0].due < before || got[0].due > after)
			t_errorf(t, "rcpt[0].due: got %lld, want now "
			    "[%lld, %lld]", (long long)got[0].due,
			    (long long)before, (long long)after);
		if (got[1].state != QRCPT_HELD || got[1].flags != QRCPT_F_SITE)
			t_errorf(t, "rcpt[1]: state %s flags 0x%x, want "
			    "held 0x%x", queue_state_name(got[1].state),
			    got[1].flags, QRCPT_F_SITE);
		if (got[1].due != before + 3600)
			t_errorf(t, "rcpt[1].due: got %lld, want %lld",
			    (long long)got[1].due, (long long)before + 3600);
	}
	free(got);
	got = NULL;
	/* 700000 = 262144 + 262144 + 175712: three chunks, then none. */
	(void)tq_body_check(t, q, id, body, blen);

	/* A later message has a larger id; arrival 0 means now. */
	tq_rcpt(&r2, "dave@example.net");
	tq_new(&n2, &r2, 1, "x", 1);
	if ((rc = queue_enqueue(q, &n2)) != 0) {
		t_errorf(t, "queue_enqueue(2nd): got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	id2 = n2.msg.id;
	if (id2 <= id)
		t_errorf(t, "ids: 2nd %" PRIu64 " <= 1st %" PRIu64, id2, id);
	if ((rc = queue_get(q, id2, &m, &got, &nr)) != 0)
		t_errorf(t, "queue_get(2nd): got %d, want 0", rc);
	else if (m.arrival < before || m.arrival > (int64_t)time(NULL))
		t_errorf(t, "arrival 0: stored %lld, want now",
		    (long long)m.arrival);
	free(got);
	got = NULL;
	(void)tq_body_check(t, q, id2, (const uint8_t *)"x", 1);

	/* Ids as text: 11 characters that sort like the numbers. */
	queue_id_format(id, s1);
	queue_id_format(id2, s2);
	if (strlen(s1) != QUEUE_ID_LEN)
		t_errorf(t, "queue_id_format: \"%s\": length %zu, want %d", s1,
		    strlen(s1), QUEUE_ID_LEN);
	if (strcmp(s1, s2) >= 0)
		t_errorf(t, "queue_id_format: \"%s\" >= \"%s\"", s1, s2);
	if ((rc = queue_id_parse(s1, &parsed)) != 0 || parsed != id)
		t_errorf(t, "queue_id_parse(\"%s\"): got %d, %" PRIu64
		    ", want 0, %" PRIu64, s1, rc, parsed, id);
	for (i = 0; i <= QUEUE_ID_LEN; i++)
		low[i] = (s2[i] >= 'A' && s2[i] <= 'Z') ?
		    (char)(s2[i] - 'A' + 'a') : s2[i];
	if ((rc = queue_id_parse(low, &parsed)) != 0 || parsed != id2)
		t_errorf(t, "queue_id_parse(\"%s\"): got %d, %" PRIu64
		    ", want 0, %" PRIu64, low, rc, parsed, id2);
	queue_id_format(0, s2);
	if (strcmp(s2, "00000000000") != 0)
		t_errorf(t, "queue_id_format(0): got \"%s\"", s2);
	/* 55 bits set: all "Z"; and letters in lower case read the same. */
	queue_id_format(((uint64_t)1 << 55) - 1, s2);
	if (strcmp(s2, "ZZZZZZZZZZZ") != 0)
		t_errorf(t, "queue_id_format(2^55-1): got \"%s\", want "
		    "\"ZZZZZZZZZZZ\"", s2);
	if ((rc = queue_id_parse("zzzzzzzzzzz", &parsed)) != 0 ||
	    parsed != ((uint64_t)1 << 55) - 1)
		t_errorf(t, "queue_id_parse(\"zzzzzzzzzzz\"): got %d, %"
		    PRIu64 ", want 0, 2^55-1", rc, parsed);
	if ((rc = queue_id_parse("0123456789abcdef", &parsed)) !=
	    QUEUE_E_INVAL)
		t_errorf(t, "queue_id_parse(16 characters): got %d, want %d",
		    rc, QUEUE_E_INVAL);
	if ((rc = queue_id_parse("0000000000a", &parsed)) != 0 ||
	    parsed != 10)
		t_errorf(t, "queue_id_parse(\"0000000000a\"): got %d, %"
		    PRIu64 ", want 0, 10", rc, parsed);
	for (i = 0; i < NELEM(bad); i++)
		if ((rc = queue_id_parse(bad[i], &parsed)) != QUEUE_E_INVAL)
			t_errorf(t, "queue_id_parse(\"%s\"): got %d, want %d",
			    bad[i], rc, QUEUE_E_INVAL);
out:
	free(got);
	free(body);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 2. Claims and leases. */

static void
test_claim_lease(struct t *t)
{
	static const char *const addr[] = { "Bob@Example.ORG" };
	struct queue	*q = NULL;
	struct qclaim	 c[4], c2, c3, stale;
	struct qrcpt	 r;
	uint64_t	 id;
	int64_t		 now, tt, next;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, addr, 1, &id))
		goto out;
	now = (int64_t)time(NULL);

	if (tq_claim(t, q, now, 300, c, NELEM(c), 1) != 1)
		goto out;
	if (c[0].id != id || c[0].idx != 0 || c[0].token == 0 ||
	    c[0].kind != QCLAIM_DELIVER)
		t_errorf(t, "claim: id %" PRIu64 " idx %u token %" PRIu64
		    " kind %u, want %" PRIu64 " 0 non-zero deliver", c[0].id,
		    c[0].idx, c[0].token, c[0].kind, id);
	if (strcmp(c[0].domain, "example.org") != 0)
		t_errorf(t, "claim domain: got \"%s\", want \"example.org\"",
		    c[0].domain);
	(void)tq_want(t, q, id, 0, QRCPT_ACTIVE, now + 300);
	if (tq_get_rcpt(t, q, id, 0, &r) && r.claim != c[0].token)
		t_errorf(t, "claim token: stored %" PRIu64 ", want %" PRIu64,
		    r.claim, c[0].token);

	/* The lease holds: nothing at the same time, nor just before it
	 * runs out; after it, the same recipient with a new token. */
	(void)tq_claim(t, q, now, 300, c, NELEM(c), 0);
	(void)tq_claim(t, q, now + 299, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, now + 301, 300, &c2, 1, 1) != 1)
		goto out;
	if (c2.id != id || c2.idx != 0 || c2.token == c[0].token ||
	    c2.kind != QCLAIM_DELIVER)
		t_errorf(t, "claim after the lease: id %" PRIu64 " token %"
		    PRIu64 " kind %u, want %" PRIu64 ", a new token, deliver",
		    c2.id, c2.token, c2.kind, id);
	(void)tq_want(t, q, id, 0, QRCPT_ACTIVE, now + 601);

	/* The first runner's result is stale and changes nothing. */
	if ((rc = tq_record1(t, q, &c[0], QRESULT_DEFERRED, now + 301,
	    now + 400, "4.4.1", "late")) != QUEUE_E_STALE)
		t_errorf(t, "queue_claim_result(old token): rc %d, want %d", rc,
		    QUEUE_E_STALE);
	if (tq_get_rcpt(t, q, id, 0, &r) && (r.state != QRCPT_ACTIVE ||
	    r.claim != c2.token || r.attempts != 0 || r.nhist != 0 ||
	    r.due != now + 601 || r.status[0] != '\0'))
		t_errorf(t, "after a stale result: state %s claim %" PRIu64
		    " attempts %u nhist %u due %lld status \"%s\"; want "
		    "active, the new token, 0, 0, %lld, \"\"",
		    queue_state_name(r.state), r.claim, r.attempts, r.nhist,
		    (long long)r.due, r.status, (long long)now + 601);

	/* The current runner defers it to tt. */
	tt = now + 5000;
	if ((rc = tq_record1(t, q, &c2, QRESULT_DEFERRED, now + 302, tt,
	    "4.4.1", "connect timed out")) != 0)
		t_errorf(t, "queue_claim_result(new token): rc %d, want 0", rc);
	if (tq_get_rcpt(t, q, id, 0, &r)) {
		if (r.state != QRCPT_DEFERRED || r.attempts != 1 ||
		    r.due != tt || r.claim != 0 || r.last_try != now + 302)
			t_errorf(t, "deferred: state %s attempts %u due %lld "
			    "claim %" PRIu64 " last_try %lld; want deferred, "
			    "1, %lld, 0, %lld", queue_state_name(r.state),
			    r.attempts, (long long)r.due, r.claim,
			    (long long)r.last_try, (long long)tt,
			    (long long)now + 302);
		if (strcmp(r.status, "4.4.1") != 0 ||
		    strcmp(r.reply, "connect timed out") != 0)
			t_errorf(t, "deferred: status \"%s\" reply \"%s\"",
			    r.status, r.reply);
		if (r.nhist != 1 || r.hist[0].when != now + 302 ||
		    strcmp(r.hist[0].status, "4.4.1") != 0 ||
		    strcmp(r.hist[0].text, "connect timed out") != 0)
			t_errorf(t, "history: nhist %u, [0] %lld \"%s\" "
			    "\"%s\"; want 1 entry, %lld 4.4.1", r.nhist,
			    (long long)r.hist[0].when, r.hist[0].status,
			    r.hist[0].text, (long long)now + 302);
	}
	if ((rc = tq_record1(t, q, &c2, QRESULT_DELIVERED, now + 303, 0,
	    "2.0.0", "twice")) != QUEUE_E_STALE)
		t_errorf(t, "queue_claim_result(used token): rc %d, want %d",
		    rc, QUEUE_E_STALE);
	/* Its old lease key went with the result. */
	(void)tq_claim(t, q, now + 601, 300, c, NELEM(c), 0);
	(void)tq_claim(t, q, tt - 1, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, tt, 300, &c3, 1, 1) != 1)
		goto out;
	if (c3.id != id || c3.kind != QCLAIM_DELIVER)
		t_errorf(t, "claim at the retry: id %" PRIu64 " kind %u",
		    c3.id, c3.kind);

	/* Renew pushes the lease; a stale renew or unclaim does nothing. */
	if ((rc = queue_claim_renew(q, &c3, 1, tt + 1000)) != 0)
		t_errorf(t, "queue_claim_renew: got %d (%s), want 0", rc,
		    queue_errmsg(q));
	(void)tq_want(t, q, id, 0, QRCPT_ACTIVE, tt + 1000);
	(void)tq_claim(t, q, tt + 999, 300, c, NELEM(c), 0);
	stale = c3;
	stale.token = c2.token;
	if ((rc = queue_claim_renew(q, &stale, 1, tt + 9000)) != 0)
		t_errorf(t, "queue_claim_renew(stale): got %d, want 0", rc);
	if ((rc = queue_claim_return(q, &stale, 1, tt + 10)) != 0)
		t_errorf(t, "queue_claim_return(stale): got %d, want 0", rc);
	(void)tq_want(t, q, id, 0, QRCPT_ACTIVE, tt + 1000);

	/* Unclaim: due at `when`, in its state before the claim. */
	if ((rc = queue_claim_return(q, &c3, 1, tt + 2000)) != 0)
		t_errorf(t, "queue_claim_return: got %d (%s), want 0", rc,
		    queue_errmsg(q));
	if (tq_get_rcpt(t, q, id, 0, &r) && (r.state != QRCPT_DEFERRED ||
	    r.due != tt + 2000 || r.claim != 0 || r.attempts != 1))
		t_errorf(t, "unclaimed: state %s due %lld claim %" PRIu64
		    " attempts %u; want deferred %lld 0 1",
		    queue_state_name(r.state), (long long)r.due, r.claim,
		    r.attempts, (long long)tt + 2000);
	if ((rc = queue_claim_next_due(q, &next)) != 0 || next != tt + 2000)
		t_errorf(t, "queue_claim_next_due: got %d, %lld; want 0, %lld",
		    rc, (long long)next, (long long)tt + 2000);
	(void)tq_claim(t, q, tt + 1999, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, tt + 2000, 300, c, NELEM(c), 1) == 1 &&
	    (c[0].id != id || c[0].kind != QCLAIM_DELIVER))
		t_errorf(t, "claim after unclaim: id %" PRIu64 " kind %u",
		    c[0].id, c[0].kind);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 3. Results: final recipients, and the message leaving with the last. */

static void
test_results(struct t *t)
{
	static const char *const dom[] = {
		"one.example", "two.example", "three.example",
	};
	struct queue	*q = NULL;
	struct qrcpt	 r[3], *got = NULL;
	struct qnew	 n;
	struct qclaim	 c[8];
	struct qresult	 res[2];
	struct qmsg	 m;
	uint8_t		*body = NULL;
	const size_t	 blen = 300000;
	uint64_t	 id;
	int64_t		 now, next;
	size_t		 nr, cnt, i;
	char		 dir[64], addr[64];
	int		 rc, k0, k1, k2;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if ((body = malloc(blen)) == NULL)
		goto out;
	tq_fill(body, blen, 3);
	for (i = 0; i < 3; i++) {
		(void)bsnprintf(addr, sizeof(addr), "u%zu@%s", i, dom[i]);
		tq_rcpt(&r[i], addr);
	}
	tq_new(&n, r, 3, body, blen);
	if ((rc = queue_enqueue(q, &n)) != 0) {
		t_errorf(t, "queue_enqueue: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	id = n.msg.id;
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 3) != 3)
		goto out;
	k0 = tq_claim_find(c, 3, id, 0);
	k1 = tq_claim_find(c, 3, id, 1);
	k2 = tq_claim_find(c, 3, id, 2);
	if (k0 < 0 || k1 < 0 || k2 < 0) {
		t_errorf(t, "claims: not (id, 0..2): %d %d %d", k0, k1, k2);
		goto out;
	}
	tq_result(&res[0], &c[k0], QRESULT_DELIVERED, now + 1, 0, "2.0.0",
	    "250 ok");
	tq_result(&res[1], &c[k1], QRESULT_FAILED, now + 1, 0, "5.1.1",
	    "550 user unknown");
	if ((rc = queue_claim_result(q, res, 2)) != 0 || res[0].rc != 0 ||
	    res[1].rc != 0)
		t_errorf(t, "queue_claim_result(delivered, failed): got %d "
		    "(%d, %d), want 0 (0, 0)", rc, res[0].rc, res[1].rc);
	if ((rc = queue_get(q, id, &m, &got, &nr)) != 0) {
		t_errorf(t, "queue_get after 2 of 3: got %d, want 0", rc);
		goto out;
	}
	if (m.nrcpt != 3 || m.nlive != 1 || nr != 3)
		t_errorf(t, "after 2 of 3: nrcpt %u nlive %u; want 3 1",
		    m.nrcpt, m.nlive);
	else {
		if (got[0].state != QRCPT_DELIVERED)
			t_errorf(t, "rcpt 0: state %s, want delivered",
			    queue_state_name(got[0].state));
		if (got[1].state != QRCPT_FAILED || got[1].nhist != 1 ||
		    strcmp(got[1].status, "5.1.1") != 0)
			t_errorf(t, "rcpt 1: state %s nhist %u status %s, "
			    "want failed 1 5.1.1",
			    queue_state_name(got[1].state), got[1].nhist,
			    got[1].status);
		if (got[2].state != QRCPT_ACTIVE)
			t_errorf(t, "rcpt 2: state %s, want active",
			    queue_state_name(got[2].state));
	}
	free(got);
	got = NULL;
	for (i = 0; i < 3; i++) {
		if ((rc = queue_domain_count(q, dom[i], false, &cnt)) != 0 ||
		    cnt != (i == 2))
			t_errorf(t, "queue_domain_count(%s): got %d, %zu; "
			    "want 0, %d", dom[i], rc, cnt, i == 2);
	}
	if ((rc = queue_body_chunk(q, id, 1, body, &cnt)) != 0 ||
	    cnt != blen - QUEUE_CHUNK_SIZE)
		t_errorf(t, "queue_body_chunk(1) with one live: got %d, %zu",
		    rc, cnt);

	/* The last result removes everything of the message. */
	if ((rc = tq_record1(t, q, &c[k2], QRESULT_DELIVERED, now + 2, 0,
	    "2.0.0", "250 ok")) != 0)
		t_errorf(t, "queue_claim_result(last): rc %d, want 0", rc);
	if ((rc = queue_get(q, id, &m, &got, &nr)) != QUEUE_E_NOENT)
		t_errorf(t, "queue_get after the last: got %d, want %d", rc,
		    QUEUE_E_NOENT);
	free(got);
	got = NULL;
	for (i = 0; i < 2; i++)
		if ((rc = queue_body_chunk(q, id, (uint32_t)i, body,
		    &cnt)) != QUEUE_E_NOENT)
			t_errorf(t, "queue_body_chunk(%zu) after the last: "
			    "got %d, want %d", i, rc, QUEUE_E_NOENT);
	for (i = 0; i < 3; i++)
		if ((rc = queue_domain_count(q, dom[i], false, &cnt)) != 0 ||
		    cnt != 0)
			t_errorf(t, "queue_domain_count(%s) after the last: "
			    "got %d, %zu; want 0, 0", dom[i], rc, cnt);
	if ((rc = queue_claim_next_due(q, &next)) != 0 || next != 0)
		t_errorf(t, "queue_claim_next_due on an empty queue: got %d, "
		    "%lld; want 0, 0", rc, (long long)next);
	/* (queue_shape() of the empty queue: see test_read_empty.) */
	(void)tq_claim(t, q, now + TQ_FAR, 300, c, NELEM(c), 0);
out:
	free(got);
	free(body);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 4. Held domains. */

/* tq_enqueue_held - one recipient held for its site until `due`. */
static bool
tq_enqueue_held(struct t *t, struct queue *q, const char *addr, int64_t due,
    uint64_t *id)
{
	struct qrcpt	r;
	struct qnew	n;
	int		rc;

	tq_rcpt(&r, addr);
	r.state = QRCPT_HELD;
	r.flags = QRCPT_F_SITE;
	r.due = due;
	tq_new(&n, &r, 1, "held\r\n", 6);
	if ((rc = queue_enqueue(q, &n)) != 0) {
		t_errorf(t, "queue_enqueue(held <%s>): got %d (%s), want 0",
		    addr, rc, queue_errmsg(q));
		return false;
	}
	*id = n.msg.id;
	return true;
}

static void
test_held(struct t *t)
{
	struct queue	*q = NULL;
	struct qclaim	 c[4];
	struct qrcpt	 r;
	struct qsel	 sel;
	uint64_t	 a, b, z;
	int64_t		 now;
	size_t		 cnt;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	now = (int64_t)time(NULL);
	if (!tq_enqueue_held(t, q, "u@held.example", now + 1000, &a) ||
	    !tq_enqueue_held(t, q, "nohold@forever.example", 0, &z))
		goto out;
	(void)tq_claim(t, q, now, 300, c, NELEM(c), 0);

	memset(&sel, 0, sizeof(sel));
	sel.domain = "held.example";
	/* A domain flush is a request (count: the domain's live
	 * recipients); the claim serves it. Without held it takes nothing
	 * held for its site. */
	if ((rc = queue_flush(q, &sel, false, now, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_flush(held.example, held=false): got %d, "
		    "%zu; want 0, 1", rc, cnt);
	(void)tq_want(t, q, a, 0, QRCPT_HELD, now + 1000);
	(void)tq_claim(t, q, now, 300, c, NELEM(c), 0);
	(void)tq_want(t, q, a, 0, QRCPT_HELD, now + 1000);

	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_flush(held.example, held=true): got %d, "
		    "%zu; want 0, 1", rc, cnt);
	(void)tq_want(t, q, a, 0, QRCPT_HELD, now + 1000);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 1) != 1)
		goto out;
	if (c[0].id != a || c[0].kind != QCLAIM_DELIVER)
		t_errorf(t, "claim after an ETRN flush: id %" PRIu64 " kind %u"
		    ", want %" PRIu64 " deliver", c[0].id, c[0].kind, a);
	if ((rc = tq_record1(t, q, &c[0], QRESULT_DELIVERED, now, 0,
	    "2.0.0", "250 ok")) != 0)
		t_errorf(t, "queue_claim_result(delivered): rc %d, want 0", rc);

	/* A site hold that runs out is claimed to be failed. */
	if (!tq_enqueue_held(t, q, "v@held.example", now + 1000, &b))
		goto out;
	(void)tq_claim(t, q, now + 999, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, now + 1000, 300, c, NELEM(c), 1) != 1)
		goto out;
	if (c[0].id != b || c[0].kind != QCLAIM_EXPIRE)
		t_errorf(t, "claim at hold expiry: id %" PRIu64 " kind %u, "
		    "want %" PRIu64 " expire (%d)", c[0].id, c[0].kind, b,
		    QCLAIM_EXPIRE);
	/* QRESULT_HELD: back to waiting for its site, until next_try. */
	if ((rc = tq_record1(t, q, &c[0], QRESULT_HELD, now + 1000,
	    now + 5000, "4.3.2", "held for the site")) != 0)
		t_errorf(t, "queue_claim_result(held): rc %d, want 0", rc);
	if (tq_get_rcpt(t, q, b, 0, &r) && (r.state != QRCPT_HELD ||
	    !(r.flags & QRCPT_F_SITE) || r.due != now + 5000 ||
	    r.claim != 0 || r.attempts != 0))
		t_errorf(t, "after QRESULT_HELD: state %s flags 0x%x due %lld "
		    "claim %" PRIu64 " attempts %u; want held, site, %lld, 0, "
		    "0", queue_state_name(r.state), r.flags, (long long)r.due,
		    r.claim, r.attempts, (long long)now + 5000);
	(void)tq_claim(t, q, now + 4999, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, now + 5000, 300, c, NELEM(c), 1) == 1 &&
	    (c[0].id != b || c[0].kind != QCLAIM_EXPIRE))
		t_errorf(t, "claim at the new expiry: id %" PRIu64 " kind %u",
		    c[0].id, c[0].kind);
	/* A hold without expiry is never claimed by time. */
	(void)tq_want(t, q, z, 0, QRCPT_HELD, 0);
	(void)tq_claim(t, q, now + TQ_FAR, 1, c, NELEM(c), 1);
	if (tq_claim_find(c, 1, z, 0) != -1)
		t_errorf(t, "a hold without expiry was claimed");
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 5. Operator changes. */

static void
test_operator(struct t *t)
{
	static const char *const a2[] = { "a@ops.example", "b@ops.example" };
	static const char *const a1[] = { "x@del.example" };
	static const char *const a3[] = { "p@keep.example", "q@gone.example" };
	static const char *const a4[] = { "r@gone.example" };
	struct queue	*q = NULL;
	struct qclaim	 c[8];
	struct qresult	 res[2];
	struct qrcpt	 r, *got = NULL;
	struct qmsg	 m;
	struct qsel	 sel;
	uint64_t	 m1, m2, m3, m4;
	int64_t		 now;
	size_t		 cnt, nr;
	char		 dir[64];
	uint32_t	 i;
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, a2, 2, &m1))
		goto out;
	memset(&sel, 0, sizeof(sel));
	sel.ids = &m1;
	sel.nids = 1;

	/* Hold by id: held, out of the due index. */
	if ((rc = queue_hold(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_hold(id): got %d, %zu; want 0, 2", rc, cnt);
	for (i = 0; i < 2; i++)
		if (tq_want(t, q, m1, i, QRCPT_HELD, 0) &&
		    tq_get_rcpt(t, q, m1, i, &r) && !(r.flags & QRCPT_F_OPHOLD))
			t_errorf(t, "held rcpt %u: flags 0x%x, no OPHOLD", i,
			    r.flags);
	now = (int64_t)time(NULL);
	(void)tq_claim(t, q, now + TQ_FAR, 300, c, NELEM(c), 0);
	if ((rc = queue_hold(q, &sel, &cnt)) != 0 || cnt != 0)
		t_errorf(t, "queue_hold(again): got %d, %zu; want 0, 0", rc,
		    cnt);

	/* Release: due now. */
	if ((rc = queue_release(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_release: got %d, %zu; want 0, 2", rc, cnt);
	for (i = 0; i < 2; i++)
		if (tq_get_rcpt(t, q, m1, i, &r) && (r.state != QRCPT_QUEUED ||
		    r.due < now || r.due > (int64_t)time(NULL) ||
		    (r.flags & QRCPT_F_OPHOLD)))
			t_errorf(t, "released rcpt %u: state %s due %lld flags "
			    "0x%x; want queued, now (%lld)", i,
			    queue_state_name(r.state), (long long)r.due,
			    r.flags, (long long)now);
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;

	/* Held while out for delivery: the result finds it held. */
	if ((rc = queue_hold(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_hold(active): got %d, %zu; want 0, 2", rc,
		    cnt);
	(void)tq_want(t, q, m1, 0, QRCPT_ACTIVE, now + 300);
	tq_result(&res[0], &c[0], QRESULT_DEFERRED, now, now + 100, "4.4.1",
	    "connect timed out");
	tq_result(&res[1], &c[1], QRESULT_DEFERRED, now, now + 100, "4.4.1",
	    "connect timed out");
	if ((rc = queue_claim_result(q, res, 2)) != 0 || res[0].rc != 0 ||
	    res[1].rc != 0)
		t_errorf(t, "queue_claim_result(deferred, held meanwhile): "
		    "got %d (%d, %d), want 0 (0, 0)", rc, res[0].rc, res[1].rc);
	for (i = 0; i < 2; i++)
		if (tq_get_rcpt(t, q, m1, i, &r) && (r.state != QRCPT_HELD ||
		    r.due != 0 || r.attempts != 1))
			t_errorf(t, "deferred while held, rcpt %u: state %s "
			    "due %lld attempts %u; want held 0 1", i,
			    queue_state_name(r.state), (long long)r.due,
			    r.attempts);
	(void)tq_claim(t, q, now + TQ_FAR, 300, c, NELEM(c), 0);
	if ((rc = queue_release(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_release(2nd): got %d, %zu; want 0, 2", rc,
		    cnt);
	(void)tq_want(t, q, m1, 0, QRCPT_DEFERRED, -1);

	/* Requeue: attempts back to 0, due now. */
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	tq_result(&res[0], &c[0], QRESULT_DEFERRED, now, now + 100000,
	    "4.4.1", "again");
	tq_result(&res[1], &c[1], QRESULT_DEFERRED, now, now + 100000,
	    "4.4.1", "again");
	if ((rc = queue_claim_result(q, res, 2)) != 0)
		t_errorf(t, "queue_claim_result: got %d, want 0", rc);
	(void)tq_claim(t, q, now + 1000, 300, c, NELEM(c), 0);
	if ((rc = queue_requeue(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_requeue: got %d, %zu; want 0, 2", rc, cnt);
	for (i = 0; i < 2; i++)
		if (tq_get_rcpt(t, q, m1, i, &r) && (r.attempts != 0 ||
		    r.state != QRCPT_QUEUED || r.due < now ||
		    r.due > (int64_t)time(NULL)))
			t_errorf(t, "requeued rcpt %u: attempts %u state %s "
			    "due %lld; want 0 queued now (%lld)", i,
			    r.attempts, queue_state_name(r.state),
			    (long long)r.due, (long long)now);
	(void)tq_claim(t, q, (int64_t)time(NULL), 300, c, NELEM(c), 2);

	/* Delete by id, active recipients included. */
	if ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_delete(id): got %d, %zu; want 0, 2", rc,
		    cnt);
	if ((rc = queue_get(q, m1, &m, &got, &nr)) != QUEUE_E_NOENT)
		t_errorf(t, "queue_get(deleted): got %d, want %d", rc,
		    QUEUE_E_NOENT);
	free(got);
	got = NULL;
	if (!tq_enqueue(t, q, a1, 1, &m2))
		goto out;
	sel.ids = &m2;
	if ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_delete(id 2): got %d, %zu; want 0, 1", rc,
		    cnt);
	if ((rc = queue_delete(q, &sel, &cnt)) != QUEUE_E_NOENT || cnt != 0)
		t_errorf(t, "queue_delete(gone id): got %d, %zu; want %d, 0",
		    rc, cnt, QUEUE_E_NOENT);

	/* Delete by domain: only that domain's recipients. */
	if (!tq_enqueue(t, q, a3, 2, &m3) || !tq_enqueue(t, q, a4, 1, &m4))
		goto out;
	memset(&sel, 0, sizeof(sel));
	sel.domain = "gone.example";
	if ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 2)
		t_errorf(t, "queue_delete(gone.example): got %d, %zu; want 0, "
		    "2", rc, cnt);
	if ((rc = queue_get(q, m4, &m, &got, &nr)) != QUEUE_E_NOENT)
		t_errorf(t, "queue_get(all in gone.example): got %d, want %d",
		    rc, QUEUE_E_NOENT);
	free(got);
	got = NULL;
	if ((rc = queue_get(q, m3, &m, &got, &nr)) != 0)
		t_errorf(t, "queue_get(half in gone.example): got %d, want 0",
		    rc);
	else if (m.nlive != 1 || nr != 2 || got[0].state != QRCPT_QUEUED ||
	    got[1].state != QRCPT_FAILED)
		t_errorf(t, "half deleted: nlive %u, states %s %s; want 1, "
		    "queued failed", m.nlive, queue_state_name(got[0].state),
		    nr > 1 ? queue_state_name(got[1].state) : "-");
	free(got);
	got = NULL;
	if ((rc = queue_domain_count(q, "gone.example", false, &cnt)) != 0 ||
	    cnt != 0)
		t_errorf(t, "queue_domain_count(gone.example): got %d, %zu; "
		    "want 0, 0", rc, cnt);
	if ((rc = queue_domain_count(q, "keep.example", false, &cnt)) != 0 ||
	    cnt != 1)
		t_errorf(t, "queue_domain_count(keep.example): got %d, %zu; "
		    "want 0, 1", rc, cnt);
	if ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 0)
		t_errorf(t, "queue_delete(gone.example, again): got %d, %zu; "
		    "want 0, 0", rc, cnt);
out:
	free(got);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 6. The domain index: subdomain ranges, case. */

static void
test_domains(struct t *t)
{
	static const char *const addr[] = {
		"u@example.org", "u@a.example.org", "u@b.a.example.org",
		"u@example-x.org", "u@other.net",
	};
	static const struct {
		const char	*domain;
		bool		 sub;
		size_t		 want;
	} cnt_case[] = {
		{ "example.org",	false,	1 },
		{ "example.org",	true,	3 },
		{ "EXAMPLE.org",	true,	3 },
		{ "Example.ORG",	false,	1 },
		{ "a.example.org",	true,	2 },
		{ "b.a.example.org",	true,	1 },
		{ "example-x.org",	false,	1 },
		{ "example-x.org",	true,	1 },
		{ "x.org",		true,	0 },
		{ "org",		true,	4 },
		{ "org",		false,	0 },
		{ "other.net",		true,	1 },
		{ "nowhere.example",	true,	0 },
	};
	struct queue	*q = NULL;
	struct qclaim	 c[8];
	struct qresult	 res[5];
	struct qsel	 sel;
	uint64_t	 id;
	int64_t		 now;
	size_t		 cnt, i, n;
	char		 dir[64];
	int		 rc;
	bool		 seen[5];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, addr, 5, &id))
		goto out;
	for (i = 0; i < NELEM(cnt_case); i++)
		if ((rc = queue_domain_count(q, cnt_case[i].domain,
		    cnt_case[i].sub, &cnt)) != 0 || cnt != cnt_case[i].want)
			t_errorf(t, "queue_domain_count(\"%s\", %s): got %d, "
			    "%zu; want 0, %zu", cnt_case[i].domain,
			    cnt_case[i].sub ? "true" : "false", rc, cnt,
			    cnt_case[i].want);
	if ((rc = queue_domain_count(q, "", true, &cnt)) != QUEUE_E_INVAL)
		t_errorf(t, "queue_domain_count(\"\"): got %d, want %d", rc,
		    QUEUE_E_INVAL);

	/* Defer all five far ahead, then flush example.org and below. */
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 5) != 5)
		goto out;
	for (i = 0; i < 5; i++)
		tq_result(&res[i], &c[i], QRESULT_DEFERRED, now, now + 100000,
		    "4.4.1", "no route");
	if ((rc = queue_claim_result(q, res, 5)) != 0)
		t_errorf(t, "queue_claim_result: got %d, want 0", rc);
	memset(&sel, 0, sizeof(sel));
	sel.domain = "EXAMPLE.org";
	sel.subdomains = true;
	if ((rc = queue_flush(q, &sel, false, now + 10, &cnt)) != 0 ||
	    cnt != 3)
		t_errorf(t, "queue_flush(EXAMPLE.org, subdomains): got %d, "
		    "%zu; want 0, 3", rc, cnt);
	n = tq_claim(t, q, now + 10, 300, c, NELEM(c), 3);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++)
		if (c[i].id == id && c[i].idx < 5)
			seen[c[i].idx] = true;
	if (!seen[0] || !seen[1] || !seen[2] || seen[3] || seen[4])
		t_errorf(t, "flushed with subdomains: got idx %d%d%d%d%d, want "
		    "11100", seen[0], seen[1], seen[2], seen[3], seen[4]);
	for (i = 0; i < n; i++)
		if (strcmp(c[i].domain, addr[c[i].idx] + 2) != 0)
			t_errorf(t, "claim domain: got %s, want %s",
			    c[i].domain, addr[c[i].idx] + 2);

	/* Without subdomains: just the one. */
	sel.domain = "Example-X.ORG";
	sel.subdomains = false;
	if ((rc = queue_flush(q, &sel, false, now + 20, &cnt)) != 0 ||
	    cnt != 1)
		t_errorf(t, "queue_flush(Example-X.ORG): got %d, %zu; want 0,"
		    " 1", rc, cnt);
	if (tq_claim(t, q, now + 20, 300, c, NELEM(c), 1) == 1 &&
	    (c[0].id != id || c[0].idx != 3))
		t_errorf(t, "flushed example-x.org: got idx %u, want 3",
		    c[0].idx);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 7. Walks and queue_shape(). */

#define TQ_WALK_MSGS	450	/* > 3 batches of QUEUE_WALK_BATCH (128) */

struct tq_walk {
	uint64_t	ids[TQ_WALK_MSGS + 16];
	size_t		n;
	size_t		stop;	/* return 42 at this call; 0: never */
	int		bad;	/* messages that do not hold together */
};

static int
tq_walk_fn(void *arg, const struct qmsg *m, const struct qrcpt *r, size_t n)
{
	struct tq_walk	*w = arg;
	size_t		 i;

	if (w->n < NELEM(w->ids))
		w->ids[w->n] = m->id;
	w->n++;
	if (n != m->nrcpt)
		w->bad++;
	for (i = 0; i < n; i++)
		if (r[i].id != m->id || r[i].idx != i)
			w->bad++;
	return (w->stop != 0 && w->n == w->stop) ? 42 : 0;
}

/* tq_walk_want - queue_walk(domain) calls back for exactly want[]. */
static void
tq_walk_want_at(struct t *t, int line, struct queue *q, const char *domain,
    struct tq_walk *w, const uint64_t *want, size_t nwant)
{
	size_t	i;
	int	rc;

	memset(w, 0, sizeof(*w));
	if ((rc = queue_walk(q, domain, tq_walk_fn, w)) != 0)
		t_errorl(t, line, "queue_walk(%s): got %d (%s), want 0",
		    domain ? domain : "NULL", rc, queue_errmsg(q));
	if (w->n != nwant) {
		t_errorl(t, line, "queue_walk(%s): %zu messages, want %zu",
		    domain ? domain : "NULL", w->n, nwant);
		return;
	}
	for (i = 0; i < nwant; i++)
		if (w->ids[i] != want[i]) {
			t_errorl(t, line, "queue_walk(%s): message %zu is %"
			    PRIu64 ", want %" PRIu64, domain ? domain : "NULL",
			    i, w->ids[i], want[i]);
			return;
		}
	if (w->bad != 0)
		t_errorl(t, line, "queue_walk(%s): %d bad recipient lists",
		    domain ? domain : "NULL", w->bad);
}
#define tq_walk_want(t, q, domain, w, want, nwant)			\
	tq_walk_want_at((t), __LINE__, (q), (domain), (w), (want), (nwant))

static void
test_walk(struct t *t)
{
	struct queue	*q = NULL;
	struct qnew	*nv = NULL, **pv = NULL;
	struct qrcpt	*rv = NULL;
	struct tq_walk	*w = NULL;
	uint64_t	 ids[TQ_WALK_MSGS], w1[TQ_WALK_MSGS];
	size_t		 i, nw1 = 0;
	char		 dir[64], addr[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	nv = calloc(TQ_WALK_MSGS, sizeof(*nv));
	pv = calloc(TQ_WALK_MSGS, sizeof(*pv));
	rv = calloc(TQ_WALK_MSGS * 2, sizeof(*rv));
	w = calloc(1, sizeof(*w));
	if (nv == NULL || pv == NULL || rv == NULL || w == NULL) {
		t_errorf(t, "calloc: %s", strerror(errno));
		goto out;
	}
	/* Message i goes to w(i % 3).example; every 10th has a second
	 * recipient in the same domain (listed once by a domain walk). */
	for (i = 0; i < TQ_WALK_MSGS; i++) {
		(void)bsnprintf(addr, sizeof(addr), "m%zu@w%zu.example", i,
		    i % 3);
		tq_rcpt(&rv[2 * i], addr);
		(void)bsnprintf(addr, sizeof(addr), "n%zu@W%zu.Example", i,
		    i % 3);
		tq_rcpt(&rv[2 * i + 1], addr);
		tq_new(&nv[i], &rv[2 * i], i % 10 == 0 ? 2 : 1, "w\r\n", 3);
		pv[i] = &nv[i];
	}
	if ((rc = queue_enqueue_batch(q, pv, TQ_WALK_MSGS)) != 0) {
		t_errorf(t, "queue_enqueue_batch(%d): got %d (%s), want 0",
		    TQ_WALK_MSGS, rc, queue_errmsg(q));
		goto out;
	}
	for (i = 0; i < TQ_WALK_MSGS; i++) {
		ids[i] = nv[i].msg.id;
		if (nv[i].rc != 0 || (i > 0 && ids[i] <= ids[i - 1]))
			t_errorf(t, "batch message %zu: rc %d id %" PRIu64
			    " (previous %" PRIu64 ")", i, nv[i].rc, ids[i],
			    i > 0 ? ids[i - 1] : 0);
		if (i % 3 == 1)
			w1[nw1++] = ids[i];
	}

	tq_walk_want(t, q, NULL, w, ids, TQ_WALK_MSGS);
	tq_walk_want(t, q, "w1.example", w, w1, nw1);
	tq_walk_want(t, q, "W1.EXAMPLE", w, w1, nw1);
	/* (A domain without messages: see test_read_empty.) */

	/* A non-zero return stops the walk and is returned, also across
	 * the walk's read batches. */
	memset(w, 0, sizeof(*w));
	w->stop = 5;
	if ((rc = queue_walk(q, NULL, tq_walk_fn, w)) != 42 || w->n != 5)
		t_errorf(t, "queue_walk(stop at 5): got %d after %zu calls, "
		    "want 42 after 5", rc, w->n);
	memset(w, 0, sizeof(*w));
	w->stop = 200;
	if ((rc = queue_walk(q, NULL, tq_walk_fn, w)) != 42 || w->n != 200)
		t_errorf(t, "queue_walk(stop at 200): got %d after %zu calls, "
		    "want 42 after 200", rc, w->n);
	memset(w, 0, sizeof(*w));
	w->stop = 140;
	if ((rc = queue_walk(q, "w1.example", tq_walk_fn, w)) != 42 ||
	    w->n != 140)
		t_errorf(t, "queue_walk(w1.example, stop at 140): got %d after"
		    " %zu calls, want 42 after 140", rc, w->n);
out:
	free(w);
	free(rv);
	free(pv);
	free(nv);
	queue_close(q);
	tq_rmrf(dir);
}

static void
test_shape(struct t *t)
{
	struct queue		*q = NULL;
	struct qrcpt		 r[2];
	struct qnew		 n;
	struct qclaim		 c[8];
	struct qresult		 res[3];
	struct qshape		 s;
	const struct qshape_dom	*d;
	int64_t			 now;
	uint64_t		 want[QUEUE_AGE_BUCKETS] = { 0 };
	size_t			 i;
	char			 dir[64];
	int			 rc;
	bool			 have = false;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	memset(&s, 0, sizeof(s));
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (queue_age_bucket_min[3] != 40)
		t_errorf(t, "queue_age_bucket_min[3]: got %d, want 40",
		    queue_age_bucket_min[3]);
	now = (int64_t)time(NULL);
	/* 30 minutes old: two recipients in s1 (bucket 3, "40"). */
	tq_rcpt(&r[0], "a@s1.example");
	tq_rcpt(&r[1], "b@s1.example");
	tq_new(&n, r, 2, "1\r\n", 3);
	n.msg.arrival = now - 30 * 60;
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(1): got %d, want 0", rc);
	/* New: one in s2 (bucket 0). */
	tq_rcpt(&r[0], "c@s2.example");
	tq_new(&n, r, 1, "2\r\n", 3);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(2): got %d, want 0", rc);
	/* 500 minutes old: one held in s1 (the last bucket). */
	tq_rcpt(&r[0], "d@s1.example");
	r[0].state = QRCPT_HELD;
	r[0].flags = QRCPT_F_SITE;
	r[0].due = now + 100000;
	tq_new(&n, r, 1, "3\r\n", 3);
	n.msg.arrival = now - 500 * 60;
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue(3): got %d, want 0", rc);

	/* Defer a and b for one reason, c for another. */
	if (tq_claim(t, q, now, 300, c, NELEM(c), 3) != 3)
		goto out;
	for (i = 0; i < 3; i++) {
		bool s2 = strcmp(c[i].domain, "s2.example") == 0;

		tq_result(&res[i], &c[i], QRESULT_DEFERRED, now, now + 600,
		    s2 ? "4.2.0" : "4.4.1", s2 ? "mailbox busy" :
		    "connection refused");
	}
	if ((rc = queue_claim_result(q, res, 3)) != 0)
		t_errorf(t, "queue_claim_result: got %d, want 0", rc);

	if ((rc = queue_shape(q, now, &s)) != 0) {
		t_errorf(t, "queue_shape: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		goto out;
	}
	have = true;
	if (s.msgs != 3 || s.rcpts != 4)
		t_errorf(t, "queue_shape: msgs %" PRIu64 " rcpts %" PRIu64
		    ", want 3 4", s.msgs, s.rcpts);
	if (s.oldest != now - 500 * 60)
		t_errorf(t, "queue_shape: oldest %lld, want %lld",
		    (long long)s.oldest, (long long)(now - 500 * 60));
	want[0] = 1;
	want[3] = 2;
	want[QUEUE_AGE_BUCKETS - 1] = 1;
	for (i = 0; i < QUEUE_AGE_BUCKETS; i++)
		if (s.bucket[i] != want[i])
			t_errorf(t, "queue_shape: bucket[%zu] (%d min) %" PRIu64
			    ", want %" PRIu64, i, queue_age_bucket_min[i],
			    s.bucket[i], want[i]);
	if (s.ndom != 2) {
		t_errorf(t, "queue_shape: ndom %zu, want 2", s.ndom);
		goto out;
	}
	d = &s.dom[0];
	if (strcmp(d->domain, "s1.example") != 0 || d->total != 3 ||
	    d->bucket[3] != 2 || d->bucket[QUEUE_AGE_BUCKETS - 1] != 1 ||
	    d->deferred != 2 || d->held != 1)
		t_errorf(t, "queue_shape: dom[0] %s total %" PRIu64 " b3 %"
		    PRIu64 " b7 %" PRIu64 " deferred %" PRIu64 " held %"
		    PRIu64 "; want s1.example 3 2 1 2 1", d->domain, d->total,
		    d->bucket[3], d->bucket[QUEUE_AGE_BUCKETS - 1],
		    d->deferred, d->held);
	d = &s.dom[1];
	if (strcmp(d->domain, "s2.example") != 0 || d->total != 1 ||
	    d->bucket[0] != 1 || d->deferred != 1 || d->held != 0)
		t_errorf(t, "queue_shape: dom[1] %s total %" PRIu64 " b0 %"
		    PRIu64 " deferred %" PRIu64 " held %" PRIu64 "; want "
		    "s2.example 1 1 1 0", d->domain, d->total, d->bucket[0],
		    d->deferred, d->held);
	if (s.nreason != 2)
		t_errorf(t, "queue_shape: nreason %zu, want 2", s.nreason);
	else if (strstr(s.reason[0].text, "4.4.1") == NULL ||
	    strstr(s.reason[0].text, "connection refused") == NULL ||
	    s.reason[0].count != 2 ||
	    strstr(s.reason[1].text, "4.2.0") == NULL ||
	    strstr(s.reason[1].text, "mailbox busy") == NULL ||
	    s.reason[1].count != 1)
		t_errorf(t, "queue_shape: reasons \"%s\" %" PRIu64 ", \"%s\" %"
		    PRIu64 "; want 4.4.1 connection refused 2, 4.2.0 mailbox "
		    "busy 1", s.reason[0].text, s.reason[0].count,
		    s.reason[1].text, s.reason[1].count);
out:
	if (have)
		queue_shape_free(&s);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 8. Group commit. */

#define TQ_GC_THREADS	32
#define TQ_GC_MSGS	40
#define TQ_GC_BODY	4096

struct tq_gc_arg {
	struct queue_gc	*gc;
	int		 thread;
	uint64_t	 id[TQ_GC_MSGS];
	int		 rc[TQ_GC_MSGS];
	int		 nrc[TQ_GC_MSGS];
};

static uint64_t
tq_gc_seed(int thread, int i)
{
	return (uint64_t)thread * 1000 + (uint64_t)i + 80000;
}

static void
tq_gc_addr(int thread, int i, int j, char *buf, size_t bufsz)
{
	(void)bsnprintf(buf, bufsz, "t%d.m%d.r%d@gc%d.example", thread, i, j,
	    thread % 4);
}

static void *
tq_gc_thread(void *arg)
{
	struct tq_gc_arg	*a = arg;
	struct qrcpt		 r[2];
	struct qnew		 n;
	uint8_t			 body[TQ_GC_BODY];
	char			 addr[64];
	int			 i, j;

	for (i = 0; i < TQ_GC_MSGS; i++) {
		for (j = 0; j < 2; j++) {
			tq_gc_addr(a->thread, i, j, addr, sizeof(addr));
			tq_rcpt(&r[j], addr);
		}
		tq_fill(body, sizeof(body), tq_gc_seed(a->thread, i));
		tq_new(&n, r, 2, body, sizeof(body));
		a->rc[i] = queue_gc_enqueue(a->gc, &n);
		a->nrc[i] = n.rc;
		a->id[i] = n.msg.id;
	}
	return NULL;
}

static void
test_group_commit(struct t *t)
{
	struct queue		*q = NULL;
	struct queue_gc		*gc = NULL;
	struct tq_gc_arg	*a = NULL;
	struct qrcpt		*got;
	struct qmsg		 m;
	pthread_t		 th[TQ_GC_THREADS];
	uint64_t		*all = NULL, c0, commits;
	size_t			 nall = 0, i, nr;
	char			 dir[64], addr[64];
	int			 k, j, rc, started = 0, bad = 0;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if ((gc = queue_gc_new(q, 256)) == NULL) {
		t_errorf(t, "queue_gc_new: NULL");
		goto out;
	}
	a = calloc(TQ_GC_THREADS, sizeof(*a));
	all = calloc(TQ_GC_THREADS * TQ_GC_MSGS, sizeof(*all));
	if (a == NULL || all == NULL)
		goto out;
	c0 = queue_commits(q);
	for (k = 0; k < TQ_GC_THREADS; k++) {
		a[k].gc = gc;
		a[k].thread = k;
		if ((rc = pthread_create(&th[k], NULL, tq_gc_thread,
		    &a[k])) != 0) {
			t_errorf(t, "pthread_create: %s", strerror(rc));
			break;
		}
		started++;
	}
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	commits = queue_commits(q) - c0;
	printf("# test_group_commit: %" PRIu64 " commits for %d messages\n",
	    commits, TQ_GC_THREADS * TQ_GC_MSGS);
	if (started != TQ_GC_THREADS)
		goto out;

	for (k = 0; k < TQ_GC_THREADS; k++)
		for (j = 0; j < TQ_GC_MSGS; j++) {
			if (a[k].rc[j] != 0 || a[k].nrc[j] != 0 ||
			    a[k].id[j] == 0) {
				if (bad++ < 10)
					t_errorf(t, "thread %d message %d: rc "
					    "%d, qnew.rc %d, id %" PRIu64
					    "; want 0, 0, non-zero", k, j,
					    a[k].rc[j], a[k].nrc[j],
					    a[k].id[j]);
				continue;
			}
			all[nall++] = a[k].id[j];
		}
	qsort(all, nall, sizeof(*all), tq_u64cmp);
	for (i = 1; i < nall; i++)
		if (all[i] == all[i - 1])
			t_errorf(t, "id %" PRIu64 " given twice", all[i]);
	if (nall != TQ_GC_THREADS * TQ_GC_MSGS)
		t_errorf(t, "%zu good enqueues, want %d", nall,
		    TQ_GC_THREADS * TQ_GC_MSGS);

	/* Each message is readable, with its own body. */
	for (k = 0; k < TQ_GC_THREADS && bad < 10; k++)
		for (j = 0; j < TQ_GC_MSGS && bad < 10; j++) {
			if (a[k].id[j] == 0)
				continue;
			if ((rc = queue_get(q, a[k].id[j], &m, &got,
			    &nr)) != 0) {
				t_errorf(t, "queue_get(thread %d msg %d): got "
				    "%d, want 0", k, j, rc);
				bad++;
				continue;
			}
			for (i = 0; i < nr && i < 2; i++) {
				tq_gc_addr(k, j, (int)i, addr, sizeof(addr));
				if (strcmp(got[i].addr, addr) != 0) {
					t_errorf(t, "thread %d msg %d rcpt %zu:"
					    " <%s>, want <%s>", k, j, i,
					    got[i].addr, addr);
					bad++;
				}
			}
			if (nr != 2 || m.size != TQ_GC_BODY) {
				t_errorf(t, "thread %d msg %d: %zu rcpts, size "
				    "%" PRIu64 "; want 2, %d", k, j, nr,
				    m.size, TQ_GC_BODY);
				bad++;
			}
			free(got);
			if (!tq_body_seed(t, q, a[k].id[j], tq_gc_seed(k, j),
			    TQ_GC_BODY))
				bad++;
		}
	if (commits >= TQ_GC_THREADS * TQ_GC_MSGS || commits == 0)
		t_errorf(t, "queue_commits: %" PRIu64 " for %d messages, want "
		    "fewer commits than messages", commits,
		    TQ_GC_THREADS * TQ_GC_MSGS);
out:
	free(all);
	free(a);
	queue_gc_free(gc);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 9. Two processes enqueue and claim at once. */

#define TQ_TWO_MSGS	200
#define TQ_TWO_IDLE	100	/* empty claims, 1 ms apart, before leaving */
#define TQ_TWO_SECS	30	/* a child that runs longer fails (exit 7) */

enum { TQ_REC_ENQ = 1, TQ_REC_CLAIM = 2 };

struct tq_rec {
	uint64_t	id;
	uint32_t	idx;
	uint32_t	kind;	/* TQ_REC_* */
};

static int
tq_rec_cmp(const void *a, const void *b)
{
	const struct tq_rec *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* tq_two_child - enqueue TQ_TWO_MSGS messages while claiming; report
 * each enqueue and each claim on fd. Never returns. A queue that hands
 * out more claims than there are recipients (6) or never runs dry (7)
 * ends the child, so that the test fails rather than hangs. */
static void
tq_two_child(const char *dir, int fd, int who)
{
	struct queue	*q;
	struct qclaim	 c[16];
	struct qrcpt	 r[2];
	struct qnew	 n;
	struct tq_rec	 rec;
	size_t		 nc, i;
	struct timespec	 start, now;
	char		 err[512], addr[64];
	size_t		 claimed = 0;
	int		 enq = 0, idle = 0, j;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err)) != 0)
		_exit(2);
	while (enq < TQ_TWO_MSGS || idle < TQ_TWO_IDLE) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > TQ_TWO_SECS)
			_exit(7);
		if (enq < TQ_TWO_MSGS) {
			for (j = 0; j < 2; j++) {
				(void)bsnprintf(addr, sizeof(addr),
				    "p%d.m%d.r%d@two%d.example", who, enq, j,
				    enq % 3);
				tq_rcpt(&r[j], addr);
			}
			tq_new(&n, r, 2, "two\r\n", 5);
			if (queue_enqueue(q, &n) != 0)
				_exit(3);
			memset(&rec, 0, sizeof(rec));
			rec.id = n.msg.id;
			rec.kind = TQ_REC_ENQ;
			if (!tq_write(fd, &rec, sizeof(rec)))
				_exit(4);
			enq++;
		}
		if (queue_claim_due(q, (int64_t)time(NULL), 3600, c, NELEM(c),
		    &nc) != 0)
			_exit(5);
		for (i = 0; i < nc; i++) {
			memset(&rec, 0, sizeof(rec));
			rec.id = c[i].id;
			rec.idx = c[i].idx;
			rec.kind = TQ_REC_CLAIM;
			if (!tq_write(fd, &rec, sizeof(rec)))
				_exit(4);
		}
		if ((claimed += nc) > 4 * 2 * TQ_TWO_MSGS)
			_exit(6);
		if (nc > 0)
			idle = 0;
		else if (enq == TQ_TWO_MSGS) {
			idle++;
			tq_sleep_ns(1000000);
		}
	}
	queue_close(q);
	_exit(0);
}

static void
test_two_processes(struct t *t)
{
	struct queue	*q = NULL;
	struct qclaim	 c[64];
	struct tq_rec	*recs = NULL, *cl = NULL;
	uint64_t	*enq = NULL, *hit;
	uint8_t		*buf = NULL;
	size_t		 len = 0, nrec, nenq = 0, ncl = 0, i, nc, dup = 0;
	pid_t		 pid[2] = { -1, -1 };
	char		 dir[64], what[64];
	int		 fds[2], w, rc, rounds = 0;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	/* Made before the children, so that neither has to create it. */
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	q = NULL;
	if (pipe(fds) == -1) {
		t_errorf(t, "pipe: %s", strerror(errno));
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	for (w = 0; w < 2; w++) {
		if ((pid[w] = fork()) == -1) {
			t_errorf(t, "fork: %s", strerror(errno));
			break;
		}
		if (pid[w] == 0) {
			close(fds[0]);
			tq_two_child(dir, fds[1], w);
		}
	}
	close(fds[1]);
	if (!tq_read_all(fds[0], &buf, &len))
		t_errorf(t, "reading the children's reports: %s",
		    strerror(errno));
	close(fds[0]);
	for (w = 0; w < 2; w++)
		if (pid[w] > 0) {
			(void)bsnprintf(what, sizeof(what), "child %d (4: "
			    "pipe, 6: too many claims, 7: no end)", w);
			(void)tq_wait(t, pid[w], 0, what);
		}
	if (t->failed)
		goto out;
	if (len % sizeof(struct tq_rec) != 0)
		t_errorf(t, "reports: %zu bytes, not whole records", len);

	/* What the children did, then what is left over. */
	nrec = len / sizeof(struct tq_rec);
	recs = (struct tq_rec *)(void *)buf;
	enq = calloc(nrec + 1, sizeof(*enq));
	cl = calloc(nrec + 4 * TQ_TWO_MSGS + 1, sizeof(*cl));
	if (enq == NULL || cl == NULL)
		goto out;
	for (i = 0; i < nrec; i++) {
		if (recs[i].kind == TQ_REC_ENQ)
			enq[nenq++] = recs[i].id;
		else
			cl[ncl++] = recs[i];
	}
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	do {
		if ((rc = queue_claim_due(q, (int64_t)time(NULL) + 1, 3600, c,
		    NELEM(c), &nc)) != 0) {
			t_errorf(t, "queue_claim_due(remainder): got %d (%s)",
			    rc, queue_errmsg(q));
			break;
		}
		for (i = 0; i < nc && ncl < nrec + 4 * TQ_TWO_MSGS; i++) {
			cl[ncl].id = c[i].id;
			cl[ncl].idx = c[i].idx;
			cl[ncl++].kind = TQ_REC_CLAIM;
		}
	} while (nc > 0 && ++rounds < 100);
	if (nc > 0)
		t_errorf(t, "queue_claim_due(remainder): still claiming after "
		    "%d rounds", rounds);

	qsort(enq, nenq, sizeof(*enq), tq_u64cmp);
	qsort(cl, ncl, sizeof(*cl), tq_rec_cmp);
	if (nenq != 2 * TQ_TWO_MSGS)
		t_errorf(t, "enqueued %zu messages, want %d", nenq,
		    2 * TQ_TWO_MSGS);
	for (i = 1; i < nenq; i++)
		if (enq[i] == enq[i - 1])
			t_errorf(t, "id %" PRIu64 " enqueued twice", enq[i]);
	for (i = 0; i < ncl; i++) {
		if (i > 0 && tq_rec_cmp(&cl[i], &cl[i - 1]) == 0 &&
		    dup++ < 10)
			t_errorf(t, "recipient %" PRIu64 "/%u claimed twice",
			    cl[i].id, cl[i].idx);
		hit = bsearch(&cl[i].id, enq, nenq, sizeof(*enq), tq_u64cmp);
		if (hit == NULL || cl[i].idx > 1)
			t_errorf(t, "claimed %" PRIu64 "/%u, never enqueued",
			    cl[i].id, cl[i].idx);
	}
	if (ncl != 4 * TQ_TWO_MSGS)
		t_errorf(t, "%zu claims in all, want %d (each recipient "
		    "once)", ncl, 4 * TQ_TWO_MSGS);
out:
	free(cl);
	free(enq);
	free(buf);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 10. A writer killed at random moments leaves only whole messages. */

#define TQ_CRASH_ROUNDS		24
#define TQ_CRASH_BODY_MAX	600000
#define TQ_CRASH_MAP		((uint64_t)16 << 30)

/* The message named by seed: its recipients and body length. */
static void
tq_crash_shape(uint64_t seed, size_t *nrcpt, size_t *bodylen)
{
	*nrcpt = 1 + (size_t)(seed % 3);
	*bodylen = 1 + (size_t)((seed >> 8) % TQ_CRASH_BODY_MAX);
}

static void
tq_crash_addr(uint64_t seed, size_t i, char *buf, size_t bufsz)
{
	(void)bsnprintf(buf, bufsz, "r%zu.%016" PRIx64 "@d%u.crash.example",
	    i, seed, (unsigned)((seed >> 40) % 7));
}

/* tq_crash_child - enqueue until killed; after each enqueue, report (id,
 * seed) on fd. Never returns. */
static void
tq_crash_child(const char *dir, int fd, uint64_t state)
{
	struct queue	*q;
	struct qrcpt	 r[3];
	struct qnew	 n;
	uint64_t	 seed, rep[2];
	uint8_t		*body;
	size_t		 nr, len, i;
	char		 err[512], addr[QUEUE_ADDR_MAX + 1];

	if (queue_open(dir, 0, TQ_CRASH_MAP, &q, err, sizeof(err)) != 0)
		_exit(2);
	if ((body = malloc(TQ_CRASH_BODY_MAX)) == NULL)
		_exit(3);
	for (;;) {
		seed = tq_rng(&state);
		tq_crash_shape(seed, &nr, &len);
		for (i = 0; i < nr; i++) {
			tq_crash_addr(seed, i, addr, sizeof(addr));
			tq_rcpt(&r[i], addr);
		}
		tq_fill(body, len, seed);
		tq_new(&n, r, nr, body, len);
		(void)bsnprintf(n.msg.envid, sizeof(n.msg.envid), "%" PRIu64,
		    seed);
		if (queue_enqueue(q, &n) != 0)
			_exit(4);
		rep[0] = n.msg.id;
		rep[1] = seed;
		if (!tq_write(fd, rep, sizeof(rep)))
			_exit(5);
	}
}

struct tq_crash_rep {
	uint64_t	id;
	uint64_t	seed;
	bool		seen;	/* whole in the walk */
};

struct tq_crash_walk {
	struct t		*t;
	struct queue		*q;
	struct tq_crash_rep	*rep;	/* sorted by id */
	size_t			 nrep;
	size_t			 nmsg, nrcpt, nchunks;
	int			 bad;
};

static int
tq_crash_repcmp(const void *a, const void *b)
{
	const struct tq_crash_rep *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* tq_crash_whole - m and r are the message its envid's seed names (and,
 * with body, so is its body). */
static bool
tq_crash_whole(struct t *t, struct queue *q, const struct qmsg *m,
    const struct qrcpt *r, size_t n, bool body, uint64_t *seedp)
{
	uint64_t	 seed;
	size_t		 nr, len, i;
	char		 ids[QUEUE_ID_LEN + 1], *end, addr[QUEUE_ADDR_MAX + 1];

	queue_id_format(m->id, ids);
	errno = 0;
	seed = strtoull(m->envid, &end, 10);
	if (m->envid[0] == '\0' || *end != '\0' || errno != 0) {
		t_errorf(t, "%s: envid \"%s\" is not a seed", ids, m->envid);
		return false;
	}
	*seedp = seed;
	tq_crash_shape(seed, &nr, &len);
	if (m->nrcpt != nr || n != nr || m->nlive != nr) {
		t_errorf(t, "%s (seed %" PRIu64 "): nrcpt %u, %zu read, nlive "
		    "%u; want %zu", ids, seed, m->nrcpt, n, m->nlive, nr);
		return false;
	}
	if (strcmp(m->sender, "sender@example.com") != 0) {
		t_errorf(t, "%s: sender <%s>", ids, m->sender);
		return false;
	}
	for (i = 0; i < nr; i++) {
		tq_crash_addr(seed, i, addr, sizeof(addr));
		if (strcmp(r[i].addr, addr) != 0 ||
		    r[i].state != QRCPT_QUEUED) {
			t_errorf(t, "%s rcpt %zu: <%s> %s, want <%s> queued",
			    ids, i, r[i].addr, queue_state_name(r[i].state),
			    addr);
			return false;
		}
	}
	if (m->size != len || m->nchunks != (len + QUEUE_CHUNK_SIZE - 1) /
	    QUEUE_CHUNK_SIZE) {
		t_errorf(t, "%s (seed %" PRIu64 "): size %" PRIu64 " in %u "
		    "chunks, want %zu", ids, seed, m->size, m->nchunks, len);
		return false;
	}
	return !body || tq_body_seed(t, q, m->id, seed, len);
}

static int
tq_crash_walk_fn(void *arg, const struct qmsg *m, const struct qrcpt *r,
    size_t n)
{
	struct tq_crash_walk	*cw = arg;
	struct tq_crash_rep	 key, *hit;
	uint64_t		 seed;

	cw->nmsg++;
	cw->nrcpt += n;
	cw->nchunks += m->nchunks;
	if (!tq_crash_whole(cw->t, cw->q, m, r, n, true, &seed))
		return ++cw->bad > 10;	/* enough said */
	key.id = m->id;
	if ((hit = bsearch(&key, cw->rep, cw->nrep, sizeof(*cw->rep),
	    tq_crash_repcmp)) != NULL) {
		if (hit->seed != seed) {
			t_errorf(cw->t, "%" PRIu64 ": seed %" PRIu64 ", child "
			    "reported %" PRIu64, m->id, seed, hit->seed);
			cw->bad++;
		} else
			hit->seen = true;
	}
	return 0;
}

/* tq_crash_round - fork a writer, kill it after delay ns, append what it
 * reported to *rep. False when the round could not run. */
static bool
tq_crash_round(struct t *t, const char *dir, uint64_t cseed, uint64_t delay,
    struct tq_crash_rep **rep, size_t *nrep, size_t *cap, int *kills)
{
	uint64_t	 pair[2];
	uint8_t		*buf = NULL;
	size_t		 len = 0, i;
	pid_t		 pid;
	void		*nv;
	int		 fds[2], st;
	bool		 ok = true;

	if (pipe(fds) == -1) {
		t_errorf(t, "pipe: %s", strerror(errno));
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		t_errorf(t, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		close(fds[0]);
		tq_crash_child(dir, fds[1], cseed);
	}
	close(fds[1]);
	tq_sleep_ns(delay);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			t_errorf(t, "waitpid: %s", strerror(errno));
			st = 0;
			break;
		}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		(*kills)++;
	else
		t_errorf(t, "writer (seed %" PRIu64 "): status 0x%x, want "
		    "killed by SIGKILL (exit 2: open, 4: enqueue failed)",
		    cseed, (unsigned)st);
	if (!tq_read_all(fds[0], &buf, &len)) {
		t_errorf(t, "reading the writer's reports: %s",
		    strerror(errno));
		ok = false;
	}
	close(fds[0]);
	if (ok && len % sizeof(pair) != 0)
		t_errorf(t, "writer (seed %" PRIu64 "): a partial report of "
		    "%zu bytes", cseed, len);
	for (i = 0; ok && i + sizeof(pair) <= len; i += sizeof(pair)) {
		if (*nrep == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			if ((nv = realloc(*rep, *cap * sizeof(**rep))) ==
			    NULL) {
				ok = false;
				break;
			}
			*rep = nv;
		}
		memcpy(pair, buf + i, sizeof(pair));
		(*rep)[*nrep].id = pair[0];
		(*rep)[*nrep].seed = pair[1];
		(*rep)[(*nrep)++].seen = false;
	}
	free(buf);
	return ok;
}

/* tq_db_entries - the entries of each named database, counted by LMDB
 * itself: what a walk cannot see (a message record whose recipients are
 * missing is skipped by queue_walk()) shows up here. */
static bool
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

static void
test_crash(struct t *t)
{
	struct queue		*q = NULL;
	struct tq_crash_rep	*rep = NULL;
	static const char *const dbs[] = {
		"msg", "due", "bydom", "active",
	};
	struct tq_crash_walk	 cw;
	struct qshape		 s;
	struct qmsg		 m;
	struct qrcpt		*got;
	uint64_t		 rs, seed0, seed;
	size_t			 nrep = 0, cap = 0, i, nr, bad = 0;
	size_t			 ent[NELEM(dbs)], want[NELEM(dbs)];
	char			 dir[64], ids[QUEUE_ID_LEN + 1];
	int			 round, kills = 0, rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	seed0 = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rs = seed0;
	/* Made before the writers, so that none is killed creating it. */
	if ((q = tq_open(t, dir, TQ_CRASH_MAP)) == NULL)
		goto out;
	queue_close(q);
	q = NULL;
	for (round = 0; round < TQ_CRASH_ROUNDS; round++) {
		uint64_t cseed = tq_rng(&rs);
		uint64_t delay = tq_rng(&rs) % 200000001;	/* 0..200 ms */

		if (!tq_crash_round(t, dir, cseed, delay, &rep, &nrep, &cap,
		    &kills))
			goto out;
	}
	if (kills < 20)
		t_errorf(t, "%d writers killed, want at least 20", kills);
	if (nrep == 0)
		t_errorf(t, "no writer reported an enqueue (seed %" PRIu64 ")",
		    seed0);

	if ((q = tq_open(t, dir, TQ_CRASH_MAP)) == NULL)
		goto out;
	qsort(rep, nrep, sizeof(*rep), tq_crash_repcmp);
	for (i = 1; i < nrep; i++)
		if (rep[i].id == rep[i - 1].id)
			t_errorf(t, "id %" PRIu64 " reported twice",
			    rep[i].id);
	/* Every reported message, envelope and recipients... */
	for (i = 0; i < nrep && bad < 10; i++) {
		queue_id_format(rep[i].id, ids);
		if ((rc = queue_get(q, rep[i].id, &m, &got, &nr)) != 0) {
			t_errorf(t, "reported %s (seed %" PRIu64 "): queue_get "
			    "got %d (%s), want 0", ids, rep[i].seed, rc,
			    queue_errmsg(q));
			bad++;
			continue;
		}
		if (!tq_crash_whole(t, q, &m, got, nr, false, &seed))
			bad++;
		else if (seed != rep[i].seed) {
			t_errorf(t, "reported %s: seed %" PRIu64 ", want %"
			    PRIu64, ids, seed, rep[i].seed);
			bad++;
		}
		free(got);
	}
	/* ... and every message at all, body included: nothing partial. */
	memset(&cw, 0, sizeof(cw));
	cw.t = t;
	cw.q = q;
	cw.rep = rep;
	cw.nrep = nrep;
	if ((rc = queue_walk(q, NULL, tq_crash_walk_fn, &cw)) != 0 &&
	    cw.bad == 0)
		t_errorf(t, "queue_walk: got %d (%s), want 0", rc,
		    queue_errmsg(q));
	for (i = 0; i < nrep && cw.bad == 0; i++)
		if (!rep[i].seen) {
			queue_id_format(rep[i].id, ids);
			t_errorf(t, "reported %s not whole in the walk", ids);
		}
	if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0)
		t_errorf(t, "queue_shape: got %d, want 0", rc);
	else {
		if (s.msgs != cw.nmsg || s.rcpts != cw.nrcpt)
			t_errorf(t, "counters: msgs %" PRIu64 " rcpts %" PRIu64
			    ", walked %zu and %zu", s.msgs, s.rcpts, cw.nmsg,
			    cw.nrcpt);
		queue_shape_free(&s);
	}
	/* Nothing stored outside the whole messages: no record of a
	 * message, recipient, chunk or index entry left half-written. */
	queue_close(q);
	q = NULL;
	if (tq_db_entries(t, dir, dbs, NELEM(dbs), ent)) {
		/* msg: an envelope, its recipients, its chunks each. */
		want[0] = cw.nmsg + cw.nrcpt + cw.nchunks;
		want[1] = cw.nrcpt;	/* all queued: one due entry each */
		want[2] = cw.nrcpt;
		want[3] = 0;		/* none claimed */
		for (i = 0; i < NELEM(dbs); i++)
			if (ent[i] != want[i])
				t_errorf(t, "database %s: %zu entries, the "
				    "whole messages account for %zu", dbs[i],
				    ent[i], want[i]);
	}
	printf("# test_crash: %d writers killed, %zu enqueues reported, "
	    "%zu messages whole (seed %" PRIu64 ")\n", kills, nrep, cw.nmsg,
	    seed0);
	if (t->failed)
		fprintf(stderr, "test_crash: seed %" PRIu64 "\n", seed0);
out:
	free(rep);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 11. Open errors. */

/* tq_open_as_nobody - queue_open(dir, 0) in a child that runs as nobody:
 * its result in *rc and its error text in err. */
static bool
tq_open_as_nobody(struct t *t, const char *dir, int *rc, char *err,
    size_t errsz)
{
	struct queue	*q;
	uint8_t		*buf = NULL;
	size_t		 len = 0;
	pid_t		 pid;
	char		 cerr[512];
	int		 fds[2], crc;
	bool		 ok;

	*rc = 0;
	err[0] = '\0';
	if (pipe(fds) == -1) {
		t_errorf(t, "pipe: %s", strerror(errno));
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		t_errorf(t, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		close(fds[0]);
		if (setgroups(0, NULL) == -1 || setgid(TQ_NOBODY) == -1 ||
		    setuid(TQ_NOBODY) == -1)
			_exit(10);
		cerr[0] = '\0';
		if ((crc = queue_open(dir, 0, TQ_MAP, &q, cerr,
		    sizeof(cerr))) == 0)
			queue_close(q);
		if (!tq_write(fds[1], &crc, sizeof(crc)) ||
		    !tq_write(fds[1], cerr, strlen(cerr) + 1))
			_exit(11);
		_exit(0);
	}
	close(fds[1]);
	ok = tq_read_all(fds[0], &buf, &len);
	close(fds[0]);
	if (!tq_wait(t, pid, 0, "queue_open as nobody (10: setuid)"))
		ok = false;
	else if (!ok || len < sizeof(int) + 1) {
		t_errorf(t, "queue_open as nobody: %zu bytes of report", len);
		ok = false;
	} else {
		memcpy(rc, buf, sizeof(int));
		buf[len - 1] = '\0';
		(void)strl_copy(err, (char *)buf + sizeof(int), errsz);
	}
	free(buf);
	return ok;
}

static void
test_errors(struct t *t)
{
	struct queue	*q = NULL;
	MDB_env		*env = NULL;
	MDB_txn		*txn = NULL;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 ver[4] = { 0, 0, 0, 99 };
	char		 dir[64], path[128], err[512];
	int		 rc, fd, mrc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;

	/* No such directory, and no QUEUE_CREATE. */
	(void)bsnprintf(path, sizeof(path), "%s/missing/q", dir);
	err[0] = '\0';
	rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_NOENT || q != NULL || strstr(err, path) == NULL)
		t_errorf(t, "queue_open(%s, 0): got %d \"%s\", want %d and the "
		    "path", path, rc, err, QUEUE_E_NOENT);
	queue_close(q);
	q = NULL;
	/* QUEUE_CREATE makes it; it opens again without. */
	if ((rc = queue_open(path, QUEUE_CREATE, TQ_MAP, &q, err,
	    sizeof(err))) != 0)
		t_errorf(t, "queue_open(%s, QUEUE_CREATE): got %d (%s), want "
		    "0", path, rc, err);
	queue_close(q);
	q = NULL;
	if ((rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err))) != 0)
		t_errorf(t, "queue_open(%s, 0) once made: got %d (%s), want 0",
		    path, rc, err);
	queue_close(q);
	q = NULL;

	/* A regular file where the directory should be. */
	(void)bsnprintf(path, sizeof(path), "%s/file", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1)
		t_errorf(t, "open(%s): %s", path, strerror(errno));
	else
		close(fd);
	err[0] = '\0';
	rc = queue_open(path, QUEUE_CREATE, TQ_MAP, &q, err, sizeof(err));
	if (rc >= 0 || q != NULL || strstr(err, path) == NULL)
		t_errorf(t, "queue_open(regular file %s): got %d \"%s\", want "
		    "an error that names it", path, rc, err);
	queue_close(q);
	q = NULL;

	/* Another schema version. */
	(void)bsnprintf(path, sizeof(path), "%s/v99", dir);
	if (mkdir(path, 0700) == -1)
		t_errorf(t, "mkdir(%s): %s", path, strerror(errno));
	k.mv_data = (void *)(uintptr_t)"version";
	k.mv_size = 7;
	v.mv_data = ver;
	v.mv_size = sizeof(ver);
	if ((mrc = mdb_env_create(&env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (mrc = mdb_env_open(env, path, 0, 0600)) != 0 ||
	    (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi)) != 0 ||
	    (mrc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		t_errorf(t, "writing a version 99 queue: %s",
		    mdb_strerror(mrc));
		if (txn != NULL)
			mdb_txn_abort(txn);
	} else if ((mrc = mdb_txn_commit(txn)) != 0)
		t_errorf(t, "mdb_txn_commit: %s", mdb_strerror(mrc));
	if (env != NULL)
		mdb_env_close(env);
	err[0] = '\0';
	rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_VERSION || strstr(err, "99") == NULL)
		t_errorf(t, "queue_open(version 99): got %d \"%s\", want %d "
		    "and the version", rc, err, QUEUE_E_VERSION);
	queue_close(q);
	q = NULL;

	/* A queue directory of root's, mode 0700, opened by nobody. */
	(void)bsnprintf(path, sizeof(path), "%s/perm", dir);
	if ((q = tq_open(t, path, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	q = NULL;
	if (chmod(path, 0700) == -1 || chmod(dir, 0755) == -1)
		t_errorf(t, "chmod: %s", strerror(errno));
	if (tq_open_as_nobody(t, path, &rc, err, sizeof(err)) &&
	    (rc != QUEUE_E_PERM || err[0] == '\0'))
		t_errorf(t, "queue_open(%s) as nobody: got %d \"%s\", want %d "
		    "(QUEUE_E_PERM) with a reason", path, rc, err,
		    QUEUE_E_PERM);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* 12, 13. A full map, a full disk. */

#define TQ_FULL_BODY	65536
#define TQ_FULL_MAX	256	/* 16 MiB: more than either limit */

/* tq_fill_up - enqueue 64 KiB messages until one fails; ids of those
 * that did not in ids. Returns the failure's code (0: none failed). */
static int
tq_fill_up(struct t *t, struct queue *q, uint64_t *ids, size_t *nids)
{
	uint8_t		*body;
	uint64_t	 id;
	size_t		 i;
	char		 addr[64];
	int		 rc = 0;

	*nids = 0;
	if ((body = malloc(TQ_FULL_BODY)) == NULL) {
		t_errorf(t, "malloc: %s", strerror(errno));
		return 0;
	}
	for (i = 0; i < TQ_FULL_MAX; i++) {
		(void)bsnprintf(addr, sizeof(addr), "m%zu@full.example", i);
		if ((rc = tq_enqueue_seed(q, addr, 5000 + i, body,
		    TQ_FULL_BODY, &id)) != 0) {
			if (id != 0)
				t_errorf(t, "failed enqueue %zu: id %" PRIu64
				    ", want 0", i, id);
			break;
		}
		ids[(*nids)++] = id;
	}
	free(body);
	return rc;
}

/* tq_full_check - the messages enqueued before the failure are whole,
 * and nothing else is there. */
static void
tq_full_check(struct t *t, struct queue *q, const uint64_t *ids,
    size_t nids)
{
	struct qshape	 s;
	struct qmsg	 m;
	struct qrcpt	*got;
	size_t		 i, nr;
	int		 rc;

	for (i = 0; i < nids; i++) {
		if ((rc = queue_get(q, ids[i], &m, &got, &nr)) != 0) {
			t_errorf(t, "message %zu: queue_get got %d, want 0", i,
			    rc);
			continue;
		}
		free(got);
		if (m.size != TQ_FULL_BODY || nr != 1)
			t_errorf(t, "message %zu: size %" PRIu64 ", %zu rcpts",
			    i, m.size, nr);
		(void)tq_body_seed(t, q, ids[i], 5000 + i, TQ_FULL_BODY);
	}
	if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0)
		t_errorf(t, "queue_shape: got %d, want 0", rc);
	else {
		if (s.msgs != nids || s.rcpts != nids)
			t_errorf(t, "after the failure: msgs %" PRIu64 " rcpts "
			    "%" PRIu64 ", want %zu and %zu", s.msgs, s.rcpts,
			    nids, nids);
		queue_shape_free(&s);
	}
}

static void
test_map_full(struct t *t)
{
	static const char *const small[] = { "small@after.example" };
	struct queue	*q = NULL;
	struct qsel	 sel;
	uint64_t	 ids[TQ_FULL_MAX], id;
	size_t		 nids, cnt;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, 1048576)) == NULL)
		goto out;
	rc = tq_fill_up(t, q, ids, &nids);
	printf("# test_map_full: %zu messages of 64 KiB, then %d (%s)\n",
	    nids, rc, rc ? queue_errmsg(q) : "no error");
	if (rc == 0)
		t_errorf(t, "no error after %zu messages of 64 KiB in a 1 MiB "
		    "map", nids);
	else if (rc != QUEUE_E_FULL)
		t_errorf(t, "queue_enqueue(message %zu): got %d (%s: %s), want "
		    "%d (QUEUE_E_FULL)", nids, rc, queue_strerror(rc),
		    queue_errmsg(q), QUEUE_E_FULL);
	if (nids == 0)
		t_errorf(t, "not one message of 64 KiB fit in 1 MiB");
	tq_full_check(t, q, ids, nids);

	/* Still usable: delete one, then a small message fits. */
	memset(&sel, 0, sizeof(sel));
	sel.ids = ids;
	sel.nids = 1;
	if (nids > 0 && ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 1))
		t_errorf(t, "queue_delete(one) when full: got %d (%s), %zu; "
		    "want 0, 1", rc, queue_errmsg(q), cnt);
	if (tq_enqueue(t, q, small, 1, &id))
		(void)tq_want(t, q, id, 0, QRCPT_QUEUED, -1);
out:
	queue_close(q);
	tq_rmrf(dir);
}

static void
test_disk_full(struct t *t)
{
	static const char *const small[] = { "small@after.example" };
	struct queue	*q = NULL;
	struct qsel	 sel;
	uint64_t	 ids[TQ_FULL_MAX], id;
	size_t		 nids, cnt;
	struct statvfs	 vfs;
	char		 dir[64], qdir[96];
	int		 rc;
	bool		 mounted = false;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") == -1) {
		t_errorf(t, "mount -t tmpfs -o size=2m tmpfs %s: %s", dir,
		    strerror(errno));
		goto out;
	}
	mounted = true;
	(void)bsnprintf(qdir, sizeof(qdir), "%s/q", dir);
	/* The map (64 MiB) is far larger than the disk (2 MiB). */
	if ((q = tq_open(t, qdir, (uint64_t)64 << 20)) == NULL)
		goto out;
	rc = tq_fill_up(t, q, ids, &nids);
	if (statvfs(dir, &vfs) == -1)
		memset(&vfs, 0, sizeof(vfs));
	printf("# test_disk_full: %zu messages of 64 KiB, then %d (%s), "
	    "%llu bytes free\n", nids, rc, rc ? queue_errmsg(q) : "no error",
	    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
	if (rc == 0)
		t_errorf(t, "no error after %zu messages of 64 KiB on a 2 MiB "
		    "disk", nids);
	else if (rc != QUEUE_E_FULL)
		t_errorf(t, "queue_enqueue(message %zu) on a full disk: got %d "
		    "(%s: %s), want %d (QUEUE_E_FULL)", nids, rc,
		    queue_strerror(rc), queue_errmsg(q), QUEUE_E_FULL);
	if (nids == 0)
		t_errorf(t, "not one message of 64 KiB fit on 2 MiB");
	tq_full_check(t, q, ids, nids);

	/* Deleting makes room again. */
	memset(&sel, 0, sizeof(sel));
	sel.ids = ids;
	sel.nids = nids < 4 ? nids : 4;
	if (sel.nids > 0 && ((rc = queue_delete(q, &sel, &cnt)) != 0 ||
	    cnt != sel.nids))
		t_errorf(t, "queue_delete(%zu) when the disk is full: got %d "
		    "(%s), %zu; want 0, %zu", sel.nids, rc, queue_errmsg(q),
		    cnt, sel.nids);
	if (tq_enqueue(t, q, small, 1, &id))
		(void)tq_want(t, q, id, 0, QRCPT_QUEUED, -1);
out:
	queue_close(q);
	if (mounted && umount2(dir, 0) == -1)
		t_errorf(t, "umount %s: %s", dir, strerror(errno));
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* Queue bugs found while writing the tests above: each test states the
 * contract it holds the code to. */

/*
 * An operator holds a recipient that is out for delivery, and its runner
 * dies. "A runner that died is forgotten when its lease runs out
 * (at-least-once, never lost)": once released, the recipient must be
 * delivered again.
 */
static void
test_hold_dead_runner(struct t *t)
{
	static const char *const addr[] = { "a@dead.example" };
	struct queue	*q = NULL;
	struct qclaim	 c[4];
	struct qrcpt	 r;
	struct qsel	 sel;
	uint64_t	 id;
	int64_t		 now, next;
	size_t		 cnt;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, addr, 1, &id))
		goto out;
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 1) != 1)
		goto out;
	memset(&sel, 0, sizeof(sel));
	sel.ids = &id;
	sel.nids = 1;
	if ((rc = queue_hold(q, &sel, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_hold(active): got %d, %zu; want 0, 1", rc,
		    cnt);
	/* The runner dies; its lease runs out while the hold stands. */
	(void)tq_claim(t, q, now + 301, 300, c, NELEM(c), 0);
	if ((rc = queue_release(q, &sel, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_release: got %d, %zu; want 0, 1", rc, cnt);
	if (tq_get_rcpt(t, q, id, 0, &r) && r.due == 0)
		t_errorf(t, "released after its runner died: state %s, due 0 "
		    "(no timer at all: it can never be claimed again)",
		    queue_state_name(r.state));
	if ((rc = queue_claim_next_due(q, &next)) != 0 || next == 0)
		t_errorf(t, "queue_claim_next_due: got %d, %lld; want a due "
		    "time", rc, (long long)next);
	(void)tq_claim(t, q, now + 100000, 300, c, NELEM(c), 1);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/*
 * A site hold ran out and was claimed to be failed (QCLAIM_EXPIRE); the
 * runner died. Claimed again when its lease ran out, it is still the
 * expiry of a site hold, not a delivery to the held site.
 */
static void
test_expire_reclaim(struct t *t)
{
	struct queue	*q = NULL;
	struct qclaim	 c[4];
	uint64_t	 id;
	int64_t		 now;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	now = (int64_t)time(NULL);
	if (!tq_enqueue_held(t, q, "w@held.example", now + 1000, &id))
		goto out;
	if (tq_claim(t, q, now + 1000, 300, c, NELEM(c), 1) != 1)
		goto out;
	if (c[0].kind != QCLAIM_EXPIRE)
		t_errorf(t, "claim at hold expiry: kind %u, want %d (expire)",
		    c[0].kind, QCLAIM_EXPIRE);
	/* The runner dies; the lease runs out. */
	if (tq_claim(t, q, now + 1301, 300, c, NELEM(c), 1) == 1 &&
	    c[0].kind != QCLAIM_EXPIRE)
		t_errorf(t, "claim after the expiring runner died: kind %u "
		    "(%s), want %d (expire)", c[0].kind,
		    c[0].kind == QCLAIM_DELIVER ? "deliver" : "?",
		    QCLAIM_EXPIRE);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/*
 * QUEUE_CREATE: "create the directory and schema if missing". Without
 * it, an existing directory that holds no queue is not a queue: it must
 * not be turned into one (a mistyped queue_dir would get data.mdb).
 */
static void
test_open_no_create(struct t *t)
{
	struct queue	*q = NULL;
	struct stat	 st;
	char		 dir[64], path[128], err[512];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	err[0] = '\0';
	rc = queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_NOENT)
		t_errorf(t, "queue_open(empty directory, 0): got %d \"%s\", "
		    "want %d (QUEUE_E_NOENT: not a queue)", rc, err,
		    QUEUE_E_NOENT);
	queue_close(q);
	(void)bsnprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) == 0)
		t_errorf(t, "queue_open(empty directory, 0) made %s (%lld "
		    "bytes)", path, (long long)st.st_size);
	tq_rmrf(dir);
}

/*
 * QUEUE_E_PERM is "queue directory not accessible": a queue below a
 * directory that the user may not search is not accessible either.
 */
static void
test_open_perm_parent(struct t *t)
{
	struct queue	*q;
	char		 dir[64], path[128], err[512];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	(void)bsnprintf(path, sizeof(path), "%s/q", dir);
	if ((q = tq_open(t, path, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	if (chmod(path, 0755) == -1 || chmod(dir, 0700) == -1)
		t_errorf(t, "chmod: %s", strerror(errno));
	if (tq_open_as_nobody(t, path, &rc, err, sizeof(err)) &&
	    rc != QUEUE_E_PERM)
		t_errorf(t, "queue_open(%s) as nobody, parent 0700: got %d "
		    "(%s) \"%s\", want %d (QUEUE_E_PERM)", path, rc,
		    queue_strerror(rc), err, QUEUE_E_PERM);
out:
	tq_rmrf(dir);
}

/*
 * Reading what is not there: queue_shape() of a queue without live
 * recipients, and queue_walk() of a domain without messages. Both must
 * succeed with nothing; each runs in a child of its own, so that a
 * sanitizer abort fails this test and not the whole program.
 */
static int
tq_walk_count(void *arg, const struct qmsg *m, const struct qrcpt *r,
    size_t n)
{
	(void)m;
	(void)r;
	(void)n;
	(*(size_t *)arg)++;
	return 0;
}

static void
tq_read_empty_child(const char *dir, int which)
{
	struct queue	*q;
	struct qshape	 s;
	struct qnew	 n;
	struct qrcpt	 r;
	size_t		 calls = 0;
	char		 err[512];
	int		 rc;

	if (queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err)) != 0)
		_exit(20);
	if (which == 0) {
		if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0)
			_exit(21);
		rc = s.msgs == 0 && s.rcpts == 0 && s.ndom == 0 ? 0 : 22;
		queue_shape_free(&s);
	} else {
		tq_rcpt(&r, "a@there.example");
		tq_new(&n, &r, 1, "x", 1);
		if (queue_enqueue(q, &n) != 0)
			_exit(23);
		if ((rc = queue_walk(q, "nowhere.example", tq_walk_count,
		    &calls)) != 0)
			_exit(24);
		rc = calls == 0 ? 0 : 25;
	}
	queue_close(q);
	_exit(rc);
}

static void
test_read_empty(struct t *t)
{
	static const char *const what[] = {
		"queue_shape() of an empty queue",
		"queue_walk(\"nowhere.example\") of a queue without it",
	};
	struct queue	*q;
	pid_t		 pid;
	char		 dir[64];
	int		 which;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	for (which = 0; which < 2; which++) {
		fflush(stdout);
		fflush(stderr);
		if ((pid = fork()) == -1) {
			t_errorf(t, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0)
			tq_read_empty_child(dir, which);
		(void)tq_wait(t, pid, 0, what[which]);
	}
out:
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* A domain flush is served in bounded batches, each recipient once, and
 * the request goes when its range is done; other domains wait. */

#define TQ_PACED	100

static void
test_flush_paced(struct t *t)
{
	struct queue	*q = NULL;
	struct qrcpt	*r = NULL;
	struct qnew	 n;
	struct qclaim	 c[16];
	struct qresult	 res[16];
	struct qsel	 sel;
	static const char body[] = "Subject: x\r\n\r\nx\r\n";
	bool		 seen[TQ_PACED];
	uint64_t	 id;
	int64_t		 now = (int64_t)time(NULL);
	size_t		 i, k, got, total = 0, rounds = 0, cnt;
	char		 dir[64], addr[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	r = calloc(TQ_PACED + 1, sizeof(*r));
	for (i = 0; i < TQ_PACED; i++) {
		snprintf(addr, sizeof(addr), "u%zu@paced.example", i);
		tq_rcpt(&r[i], addr);
		r[i].due = now + 5000;	/* deferred, not due */
	}
	tq_rcpt(&r[TQ_PACED], "other@elsewhere.example");
	r[TQ_PACED].due = now + 5000;
	tq_new(&n, r, TQ_PACED + 1, body, sizeof(body) - 1);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_fatalf(t, "queue_enqueue: %d", rc);
	id = n.msg.id;
	(void)tq_claim(t, q, now, 300, c, NELEM(c), 0);

	memset(&sel, 0, sizeof(sel));
	sel.domain = "paced.example";
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0 ||
	    cnt != TQ_PACED)
		t_errorf(t, "queue_flush(paced.example): got %d, %zu; want 0, "
		    "%d", rc, cnt, TQ_PACED);
	/* A delivery in between removes entries under the walk. */
	memset(seen, 0, sizeof(seen));
	while (rounds++ < 3 * TQ_PACED) {
		got = 0;
		if ((rc = queue_claim_due(q, now, 300, c, NELEM(c),
		    &got)) != 0) {
			t_errorf(t, "queue_claim_due: %d", rc);
			break;
		}
		if (got == 0)
			break;
		if (got > NELEM(c))
			t_errorf(t, "claimed %zu, more than asked", got);
		for (k = 0; k < got; k++) {
			if (c[k].id != id || c[k].idx >= TQ_PACED) {
				t_errorf(t, "claimed %u: not of the flushed "
				    "domain", c[k].idx);
				continue;
			}
			if (seen[c[k].idx])
				t_errorf(t, "recipient %u claimed twice",
				    c[k].idx);
			seen[c[k].idx] = true;
			total++;
			tq_result(&res[k], &c[k], QRESULT_DELIVERED, now, 0,
			    "2.0.0", "250 ok");
		}
		if ((rc = queue_claim_result(q, res, got)) != 0)
			t_errorf(t, "queue_claim_result: %d", rc);
	}
	if (total != TQ_PACED)
		t_errorf(t, "flush served %zu recipients, want %d", total,
		    TQ_PACED);
	if (rounds < TQ_PACED / NELEM(c))
		t_errorf(t, "flush served in %zu rounds: not paced", rounds);
	/* The request is gone: the other domain's recipient still waits. */
	(void)tq_claim(t, q, now, 300, c, NELEM(c), 0);
	(void)tq_want(t, q, id, TQ_PACED, QRCPT_QUEUED, now + 5000);
out:
	free(r);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* queue_map_drop() gives back the pages a reader mapped, and what is read
 * after it is the same. */

#define TQ_DROP_MSGS	400
#define TQ_DROP_BODY	(16 * 1024)

/* tq_file_rss - this process's file-backed resident bytes (statm). */
static size_t
tq_file_rss(void)
{
	FILE		*f;
	unsigned long	 a, b, shared = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	if (fscanf(f, "%lu %lu %lu", &a, &b, &shared) != 3)
		shared = 0;
	fclose(f);
	return (size_t)shared * (size_t)sysconf(_SC_PAGESIZE);
}

/* tq_read_bodies - read every body back and compare it. */
static bool
tq_read_bodies(struct t *t, struct queue *q, const uint64_t *ids,
    uint8_t *want, uint8_t *got)
{
	size_t	i, len;
	int	rc;

	for (i = 0; i < TQ_DROP_MSGS; i++) {
		tq_fill(want, TQ_DROP_BODY, i + 1);
		if ((rc = queue_body_chunk(q, ids[i], 0, got, &len)) != 0 ||
		    len != TQ_DROP_BODY || memcmp(want, got, len) != 0) {
			t_errorf(t, "body %zu: rc %d, %zu bytes, or not the "
			    "same", i, rc, len);
			return false;
		}
	}
	return true;
}

static void
test_map_drop(struct t *t)
{
	struct queue	*q = NULL;
	struct qrcpt	 r;
	struct qnew	 n;
	uint64_t	*ids = NULL;
	uint8_t		*want = NULL, *got = NULL;
	size_t		 i, before, read1, dropped;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	ids = calloc(TQ_DROP_MSGS, sizeof(*ids));
	want = malloc(TQ_DROP_BODY);
	got = malloc(QUEUE_CHUNK_SIZE);
	if (ids == NULL || want == NULL || got == NULL)
		t_fatalf(t, "out of memory");
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	for (i = 0; i < TQ_DROP_MSGS; i++) {
		tq_rcpt(&r, "drop@map.example");
		tq_fill(want, TQ_DROP_BODY, i + 1);
		tq_new(&n, &r, 1, want, TQ_DROP_BODY);
		if ((rc = queue_enqueue(q, &n)) != 0)
			t_fatalf(t, "queue_enqueue: %d", rc);
		ids[i] = n.msg.id;
	}
	/* Nothing read yet: drop, so the measure starts from the same. */
	if ((rc = queue_map_drop(q)) != 0)
		t_fatalf(t, "queue_map_drop: %d (%s)", rc, queue_errmsg(q));
	before = tq_file_rss();
	if (!tq_read_bodies(t, q, ids, want, got))
		goto out;
	read1 = tq_file_rss();
	/* 400 bodies of 16 KiB: at least 6 MiB newly mapped. */
	if (read1 < before + (size_t)TQ_DROP_MSGS * TQ_DROP_BODY *
	    6 / 10) {
		t_errorf(t, "reading mapped %zu bytes, want at least %zu",
		    read1 - before,
		    (size_t)TQ_DROP_MSGS * TQ_DROP_BODY * 6 / 10);
		goto out;
	}
	if ((rc = queue_map_drop(q)) != 0)
		t_fatalf(t, "queue_map_drop: %d (%s)", rc, queue_errmsg(q));
	dropped = tq_file_rss();
	if (dropped > before + (read1 - before) / 10)
		t_errorf(t, "after queue_map_drop %zu bytes mapped, want about "
		    "%zu (%zu after the reads)", dropped, before, read1);
	/* The same bytes again, and the queue still writes. */
	(void)tq_read_bodies(t, q, ids, want, got);
	tq_rcpt(&r, "after@map.example");
	tq_new(&n, &r, 1, "x\r\n", 3);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue after the drop: %d", rc);
out:
	free(ids);
	free(want);
	free(got);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* A flush claim of a recipient not due for a while leaves its old due
 * entry behind: the lease still runs out at its time, a result still
 * ends it, and the walk drops the stray entry when it gets there. */

static void
test_flush_stray_due(struct t *t)
{
	static const char *const dbs[] = { "active", "msg" };
	size_t		 ent[NELEM(dbs)];
	struct queue	*q = NULL;
	struct qrcpt	 r[2];
	struct qnew	 n;
	struct qclaim	 c[4];
	struct qresult	 res;
	struct qsel	 sel;
	int64_t		 now = (int64_t)time(NULL);
	uint64_t	 id;
	size_t		 cnt;
	char		 dir[64];
	int		 rc, k;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	tq_rcpt(&r[0], "a@stray.example");
	tq_rcpt(&r[1], "b@stray.example");
	r[0].due = r[1].due = now + 5000;
	tq_new(&n, r, 2, "x\r\n", 3);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_fatalf(t, "queue_enqueue: %d", rc);
	id = n.msg.id;
	memset(&sel, 0, sizeof(sel));
	sel.domain = "stray.example";
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0 || cnt != 2)
		t_fatalf(t, "queue_flush: got %d, %zu; want 0, 2", rc, cnt);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 2) != 2)
		goto out;
	/* The claimed records are in active, none rewritten in msg. */
	queue_close(q);
	q = NULL;
	if (tq_db_entries(t, dir, dbs, NELEM(dbs), ent) &&
	    (ent[0] != 2 || ent[1] != 1 + 2 + 1))
		t_errorf(t, "after the claim: active %zu, msg %zu entries; "
		    "want 2, 4", ent[0], ent[1]);
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	/* a is delivered; b's runner dies. */
	if ((k = tq_claim_find(c, 2, id, 0)) < 0) {
		t_errorf(t, "recipient 0 not claimed");
		goto out;
	}
	tq_result(&res, &c[k], QRESULT_DELIVERED, now, 0, "2.0.0", "250 ok");
	if ((rc = queue_claim_result(q, &res, 1)) != 0)
		t_errorf(t, "queue_claim_result: %d", rc);
	(void)tq_want(t, q, id, 1, QRCPT_ACTIVE, now + 300);
	/* Not before the lease ends; then b again, with the old kind. */
	(void)tq_claim(t, q, now + 299, 300, c, NELEM(c), 0);
	if (tq_claim(t, q, now + 301, 300, c, NELEM(c), 1) == 1 &&
	    (c[0].id != id || c[0].idx != 1 || c[0].kind != QCLAIM_DELIVER))
		t_errorf(t, "lease expiry gave %u kind %d, want 1 kind %d",
		    c[0].idx, c[0].kind, QCLAIM_DELIVER);
	tq_result(&res, &c[0], QRESULT_DELIVERED, now + 301, 0, "2.0.0",
	    "250 ok");
	if ((rc = queue_claim_result(q, &res, 1)) != 0)
		t_errorf(t, "queue_claim_result: %d", rc);
	queue_close(q);
	q = NULL;
	if (tq_db_entries(t, dir, dbs, NELEM(dbs), ent) &&
	    (ent[0] != 0 || ent[1] != 0))
		t_errorf(t, "after the results: active %zu, msg %zu entries; "
		    "want 0, 0", ent[0], ent[1]);
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	/* Past the old due time: the stray entries claim nothing. */
	(void)tq_claim(t, q, now + 6000, 300, c, NELEM(c), 0);
	(void)tq_claim(t, q, now + 6001, 300, c, NELEM(c), 0);
	{
		struct qmsg	 m;
		struct qrcpt	*all = NULL;
		size_t		 nall = 0;

		if ((rc = queue_get(q, id, &m, &all, &nall)) != QUEUE_E_NOENT)
			t_errorf(t, "the delivered message: queue_get got %d, "
			    "want %d", rc, QUEUE_E_NOENT);
		free(all);
	}
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* A claim does not split a message's recipients due together at its
 * limit, unless they alone would fill it. */

static void
test_claim_whole_messages(struct t *t)
{
	static const char *const four[] = {
		"a@w.example", "b@w.example", "c@w.example", "d@w.example",
	};
	static const char *const eight[] = {
		"a@b.example", "b@b.example", "c@b.example", "d@b.example",
		"e@b.example", "f@b.example", "g@b.example", "h@b.example",
	};
	static const size_t want[] = { 4, 4, 4, 6, 2, 0 };
	struct queue	*q = NULL;
	struct qclaim	 c[8];
	uint64_t	 ids[4];
	int64_t		 now = (int64_t)time(NULL) + 10;	/* all due */
	size_t		 i, k, got;
	char		 dir[64];

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	for (i = 0; i < 3; i++)
		if (!tq_enqueue(t, q, four, NELEM(four), &ids[i]))
			goto out;
	if (!tq_enqueue(t, q, eight, NELEM(eight), &ids[3]))
		goto out;
	for (i = 0; i < NELEM(want); i++) {
		got = tq_claim(t, q, now, 300, c, 6, want[i]);
		/* Each claim is one message's (the big one's in two). */
		for (k = 0; k < got; k++)
			if (c[k].id != ids[i < 3 ? i : 3])
				t_errorf(t, "claim %zu took a recipient of "
				    "another message", i);
	}
out:
	queue_close(q);
	tq_rmrf(dir);
}

int
main(void)
{
	T_RUN(test_enqueue_get);
	T_RUN(test_claim_lease);
	T_RUN(test_results);
	T_RUN(test_held);
	T_RUN(test_operator);
	T_RUN(test_domains);
	T_RUN(test_walk);
	T_RUN(test_shape);
	T_RUN(test_group_commit);
	T_RUN(test_two_processes);
	T_RUN(test_crash);
	T_RUN(test_errors);
	T_RUN(test_map_full);
	T_RUN(test_disk_full);
	T_RUN(test_hold_dead_runner);
	T_RUN(test_expire_reclaim);
	T_RUN(test_open_no_create);
	T_RUN(test_open_perm_parent);
	T_RUN(test_read_empty);
	T_RUN(test_flush_paced);
	T_RUN(test_map_drop);
	T_RUN(test_flush_stray_due);
	T_RUN(test_claim_whole_messages);
	T_EXIT();
}

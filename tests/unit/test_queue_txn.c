/*
 * test_queue_txn.c - unit tests for queue/queue_txn.c: enqueue and group
 * commit, and what survives a writer that dies.
 *
 * Covered: the round trip of an envelope, its recipients and a body of
 * three chunks; queue ids; group commit (queue_enqueue_group: a batch is
 * one commit, a bad message fails alone, a full batch fails whole); two
 * processes enqueueing and claiming at once; a writer killed with SIGKILL at random
 * moments (nothing half-written may be seen). Only the crash test is
 * random: its kill delays and message seeds come from a clock-seeded
 * stream whose seed it prints, and it counts the entries of every
 * database with LMDB itself, the queue closed.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>

#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Enqueue and read back. */

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
/* Group commit: queue_enqueue_group(). */

#define TQ_GRP_MAX	64
#define TQ_GRP_BODY	4096

/* The messages of one batch: message i goes to <m{i}@{dom}> with a body
 * of len bytes from seed base + i. */
struct tq_grp {
	struct qnew	 n[TQ_GRP_MAX];
	struct qnew	*v[TQ_GRP_MAX];
	struct qrcpt	 r[TQ_GRP_MAX];
	uint8_t		*body[TQ_GRP_MAX];
	size_t		 len[TQ_GRP_MAX];
	size_t		 cnt;
};

static bool
tq_grp_add(struct t *t, struct tq_grp *g, const char *dom, uint64_t seed,
    size_t len)
{
	size_t	i = g->cnt;
	char	addr[64];

	if (i >= TQ_GRP_MAX || (g->body[i] = malloc(len)) == NULL) {
		t_errorf(t, "tq_grp_add(%zu): no room", i);
		return false;
	}
	tq_fill(g->body[i], len, seed);
	(void)bsnprintf(addr, sizeof(addr), "m%zu@%s", i, dom);
	tq_rcpt(&g->r[i], addr);
	tq_new(&g->n[i], &g->r[i], 1, g->body[i], len);
	g->n[i].rc = 1;		/* not a result: the call must set it */
	g->len[i] = len;
	g->v[i] = &g->n[i];
	g->cnt++;
	return true;
}

static void
tq_grp_free(struct tq_grp *g)
{
	size_t	i;

	for (i = 0; i < g->cnt; i++)
		free(g->body[i]);
	free(g);
}

/* tq_grp_stored - message i is stored, whole, with its own recipient. */
static bool
tq_grp_stored(struct t *t, struct queue *q, struct tq_grp *g, size_t i,
    uint64_t seed)
{
	struct qrcpt	*got;
	struct qmsg	 m;
	size_t		 nr;
	int		 rc;
	bool		 ok = true;

	if (g->n[i].rc != 0 || g->n[i].msg.id == 0) {
		t_errorf(t, "message %zu: rc %d, id %" PRIu64 "; want 0, "
		    "non-zero", i, g->n[i].rc, g->n[i].msg.id);
		return false;
	}
	if ((rc = queue_get(q, g->n[i].msg.id, &m, &got, &nr)) != 0) {
		t_errorf(t, "queue_get(message %zu): got %d (%s), want 0", i,
		    rc, queue_errmsg(q));
		return false;
	}
	if (nr != 1 || strcmp(got[0].addr, g->r[i].addr) != 0) {
		t_errorf(t, "message %zu: %zu recipients, first <%s>; want 1, "
		    "<%s>", i, nr, nr > 0 ? got[0].addr : "", g->r[i].addr);
		ok = false;
	}
	free(got);
	return tq_body_seed(t, q, g->n[i].msg.id, seed, g->len[i]) && ok;
}

/* tq_grp_msgs - how many messages the queue holds. */
static uint64_t
tq_grp_msgs(struct t *t, struct queue *q)
{
	struct qshape	s;
	uint64_t	msgs;
	int		rc;

	if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0) {
		t_errorf(t, "queue_shape: got %d (%s), want 0", rc,
		    queue_errmsg(q));
		return UINT64_MAX;
	}
	msgs = s.msgs;
	queue_shape_free(&s);
	return msgs;
}

/* A batch of n is one commit: one transaction, one fsync. */
static void
test_group_one_commit(struct t *t)
{
	struct queue	*q = NULL;
	struct tq_grp	*g = NULL;
	uint64_t	 c0, commits;
	size_t		 i;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL ||
	    (g = calloc(1, sizeof(*g))) == NULL)
		goto out;
	for (i = 0; i < TQ_GRP_MAX; i++)
		if (!tq_grp_add(t, g, "one.example", 90000 + i, TQ_GRP_BODY))
			goto out;
	c0 = queue_commits(q);
	if ((rc = queue_enqueue_group(q, g->v, g->cnt)) != 0)
		t_errorf(t, "queue_enqueue_group(%zu): got %d (%s), want 0",
		    g->cnt, rc, queue_errmsg(q));
	commits = queue_commits(q) - c0;
	if (commits != 1)
		t_errorf(t, "%" PRIu64 " commits for a batch of %zu, want 1",
		    commits, g->cnt);
	for (i = 0; i < g->cnt; i++) {
		if (!tq_grp_stored(t, q, g, i, 90000 + i))
			break;
		if (i > 0 && g->n[i].msg.id <= g->n[i - 1].msg.id)
			t_errorf(t, "message %zu: id %" PRIu64 " not above the "
			    "one before (%" PRIu64 ")", i, g->n[i].msg.id,
			    g->n[i - 1].msg.id);
	}
	/* Nothing to store is nothing to commit. */
	c0 = queue_commits(q);
	if ((rc = queue_enqueue_group(q, g->v, 0)) != 0 ||
	    queue_commits(q) != c0)
		t_errorf(t, "queue_enqueue_group(0): got %d and %" PRIu64
		    " commits, want 0 and 0", rc, queue_commits(q) - c0);
out:
	if (g != NULL)
		tq_grp_free(g);
	queue_close(q);
	tq_rmrf(dir);
}

/* A bad message in a batch fails alone; the others are stored. Two kinds
 * of bad: no recipients, and a spool file shorter than the body. */
static void
test_group_bad_alone(struct t *t)
{
	struct queue	*q = NULL;
	struct tq_grp	*g = NULL;
	uint64_t	 c0, commits;
	size_t		 i;
	char		 dir[64], spool[96];
	int		 rc, fd = -1;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL ||
	    (g = calloc(1, sizeof(*g))) == NULL)
		goto out;
	(void)bsnprintf(spool, sizeof(spool), "%s/short-spool", dir);
	if ((fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, "short", 5) != 5) {
		t_errorf(t, "%s: %s", spool, strerror(errno));
		goto out;
	}
	for (i = 0; i < 8; i++)
		if (!tq_grp_add(t, g, "bad.example", 91000 + i, TQ_GRP_BODY))
			goto out;
	g->n[2].nrcpt = 0;		/* QUEUE_E_INVAL */
	g->n[5].body = NULL;		/* read 4096 bytes of a 5-byte file */
	g->n[5].body_fd = fd;
	c0 = queue_commits(q);
	rc = queue_enqueue_group(q, g->v, g->cnt);
	commits = queue_commits(q) - c0;
	printf("# test_group_bad_alone: got %d (%s), %" PRIu64 " commits\n",
	    rc, queue_errmsg(q), commits);
	if (rc != QUEUE_E_INVAL)
		t_errorf(t, "queue_enqueue_group: got %d, want %d (the first "
		    "bad message's)", rc, QUEUE_E_INVAL);
	if (g->n[2].rc != QUEUE_E_INVAL || g->n[2].msg.id != 0)
		t_errorf(t, "message 2 (no recipients): rc %d, id %" PRIu64
		    "; want %d, 0", g->n[2].rc, g->n[2].msg.id,
		    QUEUE_E_INVAL);
	if (g->n[5].rc != QUEUE_E_SYS || g->n[5].msg.id != 0)
		t_errorf(t, "message 5 (short spool file): rc %d, id %" PRIu64
		    "; want %d, 0", g->n[5].rc, g->n[5].msg.id, QUEUE_E_SYS);
	for (i = 0; i < g->cnt; i++)
		if (i != 2 && i != 5)
			(void)tq_grp_stored(t, q, g, i, 91000 + i);
	/* The batch aborted (no commit), then one commit per good one. */
	if (commits != g->cnt - 2)
		t_errorf(t, "%" PRIu64 " commits, want %zu", commits,
		    g->cnt - 2);
	if (tq_grp_msgs(t, q) != g->cnt - 2)
		t_errorf(t, "%" PRIu64 " messages in the queue, want %zu",
		    tq_grp_msgs(t, q), g->cnt - 2);
out:
	if (fd != -1)
		close(fd);
	if (g != NULL)
		tq_grp_free(g);
	queue_close(q);
	tq_rmrf(dir);
}

/* A batch that fails with QUEUE_E_FULL is not tried message by message
 * (queue.h says why): all of it gets QUEUE_E_FULL, nothing is stored,
 * even the small messages that would fit alone - as the last call shows. */
static void
test_group_full(struct t *t)
{
	struct queue	*q = NULL;
	struct tq_grp	*g = NULL;
	struct qnew	*one[1];
	uint64_t	 c0;
	size_t		 i, last;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, 1048576)) == NULL ||
	    (g = calloc(1, sizeof(*g))) == NULL)
		goto out;
	/* A small message, 24 of 64 KiB (1.5 MiB: more than the map),
	 * another small one. */
	if (!tq_grp_add(t, g, "full.example", 92000, 100))
		goto out;
	for (i = 1; i <= 24; i++)
		if (!tq_grp_add(t, g, "full.example", 92000 + i, 65536))
			goto out;
	last = g->cnt;
	if (!tq_grp_add(t, g, "full.example", 92000 + last, 100))
		goto out;
	c0 = queue_commits(q);
	rc = queue_enqueue_group(q, g->v, g->cnt);
	printf("# test_group_full: got %d (%s)\n", rc, queue_errmsg(q));
	if (rc != QUEUE_E_FULL)
		t_errorf(t, "queue_enqueue_group(%zu, 1.5 MiB into 1 MiB): got "
		    "%d, want %d (QUEUE_E_FULL)", g->cnt, rc, QUEUE_E_FULL);
	for (i = 0; i < g->cnt; i++)
		if (g->n[i].rc != QUEUE_E_FULL || g->n[i].msg.id != 0)
			t_errorf(t, "message %zu (%zu bytes): rc %d, id %"
			    PRIu64 "; want %d, 0", i, g->len[i], g->n[i].rc,
			    g->n[i].msg.id, QUEUE_E_FULL);
	if (queue_commits(q) != c0)
		t_errorf(t, "%" PRIu64 " commits after a full batch, want 0",
		    queue_commits(q) - c0);
	if (tq_grp_msgs(t, q) != 0)
		t_errorf(t, "%" PRIu64 " messages in the queue after a full "
		    "batch, want 0", tq_grp_msgs(t, q));
	/* The queue is usable, and the small one fits alone. */
	one[0] = &g->n[last];
	if ((rc = queue_enqueue_group(q, one, 1)) != 0)
		t_errorf(t, "queue_enqueue_group(the small one alone): got %d "
		    "(%s), want 0", rc, queue_errmsg(q));
	else
		(void)tq_grp_stored(t, q, g, last, 92000 + last);
out:
	if (g != NULL)
		tq_grp_free(g);
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* Two processes enqueue and claim at once. */

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
/* A writer killed at random moments leaves only whole messages. */

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
	int		 fd, st;
	bool		 ok = true;

	if ((pid = tq_fork_pipe(t, &fd)) == -1)
		return false;
	if (pid == 0)
		tq_crash_child(dir, fd, cseed);
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
	if (!tq_read_all(fd, &buf, &len)) {
		t_errorf(t, "reading the writer's reports: %s",
		    strerror(errno));
		ok = false;
	}
	close(fd);
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

int
main(void)
{
	T_RUN(test_enqueue_get);
	T_RUN(test_group_one_commit);
	T_RUN(test_group_bad_alone);
	T_RUN(test_group_full);
	T_RUN(test_two_processes);
	T_RUN(test_crash);
	T_EXIT();
}

/*
 * test_queue_claim.c - unit tests for queue/queue_claim.c: claims, leases
 * and results.
 *
 * Covered: claims, leases, renew/return and stale tokens; results and the
 * removal of a finished message; held domains and hold expiry; a domain
 * flush served in bounded batches; and the claim bugs found while writing
 * these (a held recipient whose runner died, a reclaimed expiry, a flush
 * claim's stray due entry, a message's recipients split at the limit);
 * the wall clock stepped (lease grace, queue_claim_shift).
 */
#include <inttypes.h>

#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Claims and leases. */

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
/* Results: final recipients, and the message leaving with the last. */

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
/* Held domains. */

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

/* ------------------------------------------------------------------ */
/* Wall-clock steps (runner/sched.c's sched_clock). */

/*
 * After a forward step a live lease looks expired: with a grace the due
 * walk leaves it until it ended more than the grace ago. After a backward
 * step, queue_claim_shift moves what waits on a timer (queued, deferred)
 * that much earlier, never before now, and never what is out on a lease.
 */
static void
test_clock_step(struct t *t)
{
	static const char *const addr[] = { "a@example.org", "b@example.org",
	    "c@example.org" };
	struct queue	*q = NULL;
	struct qclaim	 c[4], c2;
	struct qrcpt	 r;
	uint64_t	 id;
	int64_t		 now;
	size_t		 n;
	char		 dir[64];
	int		 i, rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, addr, 3, &id))
		goto out;
	now = (int64_t)time(NULL);
	if (tq_claim(t, q, now, 300, c, NELEM(c), 3) != 3)
		goto out;

	/* a and b deferred by the old clock: next try now + 600. */
	for (i = 0; i < 2; i++) {
		int k = tq_claim_find(c, 3, id, (uint32_t)i);

		if (k < 0 || tq_record1(t, q, &c[k], QRESULT_DEFERRED, now,
		    now + 600, "4.0.0", "451 later") != 0)
			goto out;
	}
	/* c stays out on its lease (ends now + 300). The clock jumps an
	 * hour ahead: with the grace nothing is taken but a and b. */
	queue_claim_grace(q, 3600);
	if (tq_claim(t, q, now + 3610, 300, c, NELEM(c), 2) != 2)
		goto out;
	if (tq_claim_find(c, 2, id, 2) != -1)
		t_errorf(t, "grace: the recipient on a live lease was taken");
	/* Ended more than the grace ago: its holder is gone, take it. */
	(void)tq_claim(t, q, now + 3600 + 299, 300, &c2, 1, 0);
	if (tq_claim(t, q, now + 3600 + 301, 300, &c2, 1, 1) != 1)
		goto out;
	if (c2.idx != 2)
		t_errorf(t, "after the grace: took idx %u, want 2", c2.idx);
	queue_claim_grace(q, 0);

	/* Now a and b are tried by the +1h clock 5 s before it comes back
	 * (next try +1h + 595 and +2h + 595), c is out again on a lease to
	 * +1h + 301 + 300. The clock comes back an hour (now is the real
	 * time again). */
	for (i = 0; i < 2; i++) {
		int k = tq_claim_find(c, 2, id, (uint32_t)i);

		if (k < 0 || tq_record1(t, q, &c[k], QRESULT_DEFERRED,
		    now - 5 + 3600, now + 3600 + 595 + i * 3600, "4.0.0",
		    "451 later") != 0)
			goto out;
	}
	if ((rc = queue_claim_shift(q, now, 3600, 1200, 100, &n)) != 0)
		t_errorf(t, "queue_claim_shift: %d (%s)", rc, queue_errmsg(q));
	/* a moved to now + 595, its last try to now - 5; b (+2h + 595) is
	 * beyond the window and stays; c, on a lease, stays. */
	if (n != 1)
		t_errorf(t, "queue_claim_shift moved %zu, want 1", n);
	(void)tq_want(t, q, id, 0, QRCPT_DEFERRED, now + 595);
	if (tq_get_rcpt(t, q, id, 0, &r) && r.last_try != now - 5)
		t_errorf(t, "last try: %" PRId64 ", want %" PRId64,
		    r.last_try, now - 5);
	(void)tq_want(t, q, id, 1, QRCPT_DEFERRED, now + 2 * 3600 + 595);
	(void)tq_want(t, q, id, 2, QRCPT_ACTIVE, now + 3600 + 301 + 300);
	/* A second, wider pass takes b only: a was tried before now by
	 * the clock as it is. */
	if ((rc = queue_claim_shift(q, now, 3600, 7200, 100, &n)) != 0 ||
	    n != 1)
		t_errorf(t, "second shift: rc %d moved %zu, want 0 1", rc, n);
	(void)tq_want(t, q, id, 0, QRCPT_DEFERRED, now + 595);
	(void)tq_want(t, q, id, 1, QRCPT_DEFERRED, now + 3600 + 595);
	(void)tq_want(t, q, id, 2, QRCPT_ACTIVE, now + 3600 + 301 + 300);
out:
	queue_close(q);
	tq_rmrf(dir);
}

int
main(void)
{
	T_RUN(test_claim_lease);
	T_RUN(test_results);
	T_RUN(test_held);
	T_RUN(test_hold_dead_runner);
	T_RUN(test_expire_reclaim);
	T_RUN(test_flush_paced);
	T_RUN(test_flush_stray_due);
	T_RUN(test_claim_whole_messages);
	T_RUN(test_clock_step);
	T_EXIT();
}

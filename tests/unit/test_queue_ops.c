/*
 * test_queue_ops.c - unit tests for queue/queue_ops.c: what operators do.
 *
 * Covered: operator hold/release/requeue/delete, and the domain index
 * with its subdomain ranges.
 */
#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Operator changes. */

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
/* The domain index: subdomain ranges, case. */

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
/* queue_domain_any: a recipient a flush could take (ATRN's "waiting"). */

static bool
t_any(struct t *t, struct queue *q, const char *domain)
{
	bool	yes = true;
	int	rc;

	if ((rc = queue_domain_any(q, domain, &yes)) != 0)
		t_errorf(t, "queue_domain_any(%s): got %d (%s), want 0",
		    domain, rc, queue_errmsg(q));
	return yes;
}

static void
test_any(struct t *t)
{
	static const char *const sub[] = { "u@sub.a.example" };
	static const char *const two[] = { "u@a.example", "v@a.example" };
	static const char *const many[] = {
		"1@c.example", "2@c.example", "3@c.example", "4@c.example",
		"5@c.example", "6@c.example", "7@c.example", "8@c.example",
	};
	static const char	 body[] = "Subject: t\r\n\r\nx\r\n";
	struct queue	*q = NULL;
	struct qclaim	 c[64];
	struct qresult	 res[1];
	struct qrcpt	 r[1];
	struct qnew	 nw;
	struct qsel	 sel;
	uint64_t	 id;
	int64_t		 now = (int64_t)time(NULL);
	size_t		 n, cnt, total, i;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (t_any(t, q, "a.example"))
		t_errorf(t, "empty queue: got yes, want no");
	/* Subdomains are not the domain's. */
	if (!tq_enqueue(t, q, sub, 1, &id) || !tq_enqueue(t, q, two, 2, &id))
		goto out;
	if (!t_any(t, q, "a.example") || !t_any(t, q, "A.Example"))
		t_errorf(t, "two queued: got no, want yes");
	/* Claimed by a delivery in progress: not waiting. */
	if ((rc = queue_claim_domain(q, "a.example", false, true, 0, now, 300,
	    c, NELEM(c), &n)) != 0 || n != 2) {
		t_errorf(t, "queue_claim_domain: got %d, %zu; want 0, 2", rc,
		    n);
		goto out;
	}
	if (t_any(t, q, "a.example"))
		t_errorf(t, "both active: got yes, want no");
	/* One deferred: waiting again. */
	tq_result(&res[0], &c[0], QRESULT_DEFERRED, now, now + 100000,
	    "4.4.1", "again");
	if ((rc = queue_claim_result(q, res, 1)) != 0)
		t_errorf(t, "queue_claim_result: got %d, want 0", rc);
	if (!t_any(t, q, "a.example"))
		t_errorf(t, "one deferred: got no, want yes");
	/* Held by an operator: not waiting. */
	memset(&sel, 0, sizeof(sel));
	sel.domain = "a.example";
	if ((rc = queue_hold(q, &sel, &cnt)) != 0)
		t_errorf(t, "queue_hold: got %d, want 0", rc);
	if (t_any(t, q, "a.example"))
		t_errorf(t, "operator-held and active: got yes, want no");
	/* Held for its site: waiting. */
	tq_rcpt(&r[0], "w@a.example");
	r[0].state = QRCPT_HELD;
	r[0].flags = QRCPT_F_SITE;
	r[0].due = now + 86400;
	tq_new(&nw, r, 1, body, sizeof(body) - 1);
	if ((rc = queue_enqueue(q, &nw)) != 0)
		t_errorf(t, "queue_enqueue(held): got %d, want 0", rc);
	if (!t_any(t, q, "a.example"))
		t_errorf(t, "held for its site: got no, want yes");
	if ((rc = queue_domain_any(q, "", &(bool){ false })) != QUEUE_E_INVAL)
		t_errorf(t, "queue_domain_any(\"\"): got %d, want %d", rc,
		    QUEUE_E_INVAL);

	/* Bounded: past 1024 claimed entries it stops and says yes. */
	for (i = 0; i < 1100 / NELEM(many) + 1; i++)
		if (!tq_enqueue(t, q, many, NELEM(many), &id))
			goto out;
	for (total = 0;; total += n)
		if (queue_claim_domain(q, "c.example", false, true, 0, now,
		    300, c, NELEM(c), &n) != 0 || n == 0)
			break;
	if (total < 1100)
		t_errorf(t, "claimed %zu of c.example, want all", total);
	if (!t_any(t, q, "c.example"))
		t_errorf(t, "1100 active: got no, want yes (the bound)");
out:
	queue_close(q);
	tq_rmrf(dir);
}

int
main(void)
{
	T_RUN(test_operator);
	T_RUN(test_domains);
	T_RUN(test_any);
	T_EXIT();
}

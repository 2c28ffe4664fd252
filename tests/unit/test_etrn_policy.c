/*
 * test_etrn_policy.c - unit tests for ETRN's policy and queue side:
 * etrn/etrn_policy.c (etrn_policy modes, the rules file, etrn_queues),
 * queue_domain_msgs() (the count in 253) and the flush request that
 * carries an authenticated ETRN's caller (queue_flush with qsel.caller,
 * the flushq codec with and without it, qclaim.caller).
 *
 * Configurations and rules files are written with write_tmp() in /tmp and
 * removed after loading.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>

#include "etrn_int.h"
#include "queue_int.h"
#include "tqueue.h"
#include "tutil.h"

/* conf_text - conf_load() of text; NULL with err. */
static struct conf *
conf_text(struct t *t, const char *text, char *err, size_t errsz)
{
	struct conf	*c;
	char		 path[64];

	if (write_tmp(text, path, sizeof(path)) == -1) {
		t_errorf(t, "write_tmp: %s", strerror(errno));
		return NULL;
	}
	c = conf_load(path, err, errsz);
	unlink(path);
	return c;
}

/* sa4 - an IPv4 sockaddr. */
static const struct sockaddr *
sa4(struct sockaddr_in *sin, const char *ip)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	(void)inet_pton(AF_INET, ip, &sin->sin_addr);
	return (const struct sockaddr *)sin;
}

/* The default policy: relay_domains and hold_domains, for anyone. */
static void
test_policy_relay(struct t *t)
{
	struct etrn_policy	*p;
	struct etrn_client	 cl;
	struct sockaddr_in	 sin;
	struct conf		*c;
	char			 err[512];
	static const struct {
		const char	*dom;
		bool		 sub, owner, want;
	} tab[] = {
		{ "relay.example", false, false, true },
		{ "RELAY.example", false, false, true },
		{ "held.example", true, false, true },
		{ "x.kids.example", false, false, true },
		{ "kids.example", false, false, false },  /* ".kids" only */
		{ "kids.example", true, false, true },	  /* @kids: below */
		{ "other.example", false, false, false },
		{ "other.example", false, true, true },	  /* its owner */
	};
	size_t			 i;

	if ((c = conf_text(t, "relay_domains = relay.example\n"
	    "hold_domains = held.example .kids.example\n", err,
	    sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if ((p = etrn_policy_load(c, err, sizeof(err))) == NULL)
		t_fatalf(t, "etrn_policy_load: %s", err);
	if (etrn_policy_mode(p) != ETRN_MODE_RELAY)
		t_errorf(t, "mode %d, want relay_domains", etrn_policy_mode(p));
	memset(&cl, 0, sizeof(cl));
	cl.sa = sa4(&sin, "198.51.100.1");
	for (i = 0; i < NELEM(tab); i++) {
		cl.owner = tab[i].owner;
		if (etrn_policy_allows(p, c, tab[i].dom, tab[i].sub, &cl) !=
		    tab[i].want)
			t_errorf(t, "allows(%s%s, owner=%d): got %d, want %d",
			    tab[i].sub ? "@" : "", tab[i].dom, tab[i].owner,
			    !tab[i].want, tab[i].want);
	}
	etrn_policy_free(p);
	conf_free(c);

	/* owners: nobody but the owner. */
	if ((c = conf_text(t, "relay_domains = relay.example\n"
	    "etrn_policy = owners\n", err, sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if ((p = etrn_policy_load(c, err, sizeof(err))) == NULL)
		t_fatalf(t, "etrn_policy_load(owners): %s", err);
	cl.owner = false;
	if (etrn_policy_allows(p, c, "relay.example", false, &cl))
		t_errorf(t, "owners: a stranger may ETRN relay.example");
	cl.owner = true;
	if (!etrn_policy_allows(p, c, "relay.example", false, &cl))
		t_errorf(t, "owners: the owner may not ETRN relay.example");
	etrn_policy_free(p);
	conf_free(c);

	/* Anything else is an error naming the value. */
	if ((c = conf_text(t, "etrn_policy = everybody\n", err,
	    sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if ((p = etrn_policy_load(c, err, sizeof(err))) != NULL)
		t_errorf(t, "etrn_policy = everybody: loaded");
	else if (strstr(err, "everybody") == NULL)
		t_errorf(t, "etrn_policy = everybody: \"%s\"", err);
	etrn_policy_free(p);
	conf_free(c);
}

/* A rules file: who per domain. */
static void
test_policy_file(struct t *t)
{
	static const char rules[] =
	    "# rules\n"
	    "site.example   192.0.2.0/24 user=site1\n"
	    "both.example   192.0.2.0/24+user=site1   # both at once\n"
	    ".parent.example any\n"
	    "own.example    owner\n"
	    "v6.example     2001:db8::/32\n";
	static const struct {
		const char	*dom;
		const char	*ip;
		const char	*user;
		bool		 owner, want;
	} tab[] = {
		{ "site.example", "192.0.2.9", NULL, false, true },
		{ "site.example", "198.51.100.1", NULL, false, false },
		{ "site.example", "198.51.100.1", "site1", false, true },
		{ "site.example", "198.51.100.1", "site2", false, false },
		{ "both.example", "192.0.2.9", NULL, false, false },
		{ "both.example", "198.51.100.1", "site1", false, false },
		{ "both.example", "192.0.2.9", "site1", false, true },
		{ "a.parent.example", "198.51.100.1", NULL, false, true },
		{ "a.b.parent.example", "198.51.100.1", NULL, false, true },
		{ "parent.example", "198.51.100.1", NULL, false, false },
		{ "own.example", "192.0.2.9", "bob", false, false },
		{ "own.example", "192.0.2.9", "bob", true, true },
		{ "v6.example", "192.0.2.9", NULL, false, false },
		{ "SITE.EXAMPLE", "192.0.2.9", NULL, false, true },
		{ "norule.example", "192.0.2.9", "site1", false, false },
	};
	struct etrn_policy	*p;
	struct etrn_client	 cl;
	struct sockaddr_in	 sin;
	struct conf		*c;
	char			 path[64], text[256], err[512];
	size_t			 i;

	if (write_tmp(rules, path, sizeof(path)) == -1)
		t_fatalf(t, "write_tmp: %s", strerror(errno));
	(void)bsnprintf(text, sizeof(text), "etrn_policy = %s\n", path);
	c = conf_text(t, text, err, sizeof(err));
	p = c != NULL ? etrn_policy_load(c, err, sizeof(err)) : NULL;
	unlink(path);
	if (p == NULL)
		t_fatalf(t, "load: %s", err);
	if (etrn_policy_mode(p) != ETRN_MODE_FILE)
		t_errorf(t, "mode %d, want file", etrn_policy_mode(p));
	for (i = 0; i < NELEM(tab); i++) {
		memset(&cl, 0, sizeof(cl));
		cl.sa = sa4(&sin, tab[i].ip);
		cl.user = tab[i].user;
		cl.owner = tab[i].owner;
		if (etrn_policy_allows(p, c, tab[i].dom, false, &cl) !=
		    tab[i].want)
			t_errorf(t, "allows(%s, %s, user %s, owner %d): got "
			    "%d, want %d", tab[i].dom, tab[i].ip,
			    tab[i].user ? tab[i].user : "-", tab[i].owner,
			    !tab[i].want, tab[i].want);
	}
	etrn_policy_free(p);
	conf_free(c);
}

/* A bad rules file: an error naming its line. */
static void
test_policy_file_bad(struct t *t)
{
	static const struct {
		const char	*text;
		const char	*want;	/* in the error */
	} tab[] = {
		{ "ok.example any\nbad..example any\n", ":2: bad domain" },
		{ "a.example\n", ":1: a.example: no condition" },
		{ "a.example sometimes\n", ":1: bad condition \"sometimes\"" },
		{ "a.example 10.0.0.1/8\n", "bad condition" },	/* host bits */
		{ "a.example user=\n", "bad condition" },
		{ "a.example any+\n", ":1:" },
		{ "a.example any\nA.example any\n", ":2: a.example: a second "
		    "rule (the first is on line 1)" },
	};
	struct etrn_policy	*p;
	struct conf		*c;
	char			 path[64], text[256], err[512];
	size_t			 i;

	for (i = 0; i < NELEM(tab); i++) {
		if (write_tmp(tab[i].text, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp: %s", strerror(errno));
		(void)bsnprintf(text, sizeof(text), "etrn_policy = %s\n", path);
		if ((c = conf_text(t, text, err, sizeof(err))) == NULL) {
			unlink(path);
			t_fatalf(t, "conf_load: %s", err);
		}
		err[0] = '\0';
		p = etrn_policy_load(c, err, sizeof(err));
		unlink(path);
		if (p != NULL)
			t_errorf(t, "rules \"%s\": loaded, want \"%s\"",
			    tab[i].text, tab[i].want);
		else if (strstr(err, tab[i].want) == NULL ||
		    strstr(err, path) == NULL)
			t_errorf(t, "rules \"%s\": got \"%s\", want \"%s\" "
			    "after the file's name", tab[i].text, err,
			    tab[i].want);
		etrn_policy_free(p);
		conf_free(c);
	}
	/* A missing file. */
	if ((c = conf_text(t, "etrn_policy = /nonexistent/etrn\n", err,
	    sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if ((p = etrn_policy_load(c, err, sizeof(err))) != NULL)
		t_errorf(t, "a missing rules file: loaded");
	etrn_policy_free(p);
	conf_free(c);
}

/*
 * A large rules file loads at once: the listener loads it on SIGHUP, and
 * a duplicate check comparing every rule with every other took seconds
 * for ETRN_RULES_MAX rules. A duplicate far from its first is still
 * found, naming both lines.
 */
static void
test_policy_file_large(struct t *t)
{
	struct etrn_policy	*p;
	struct conf		*c;
	char			 path[64], text[256], err[512];
	char			*rules;
	size_t			 i, len = 0, sz = (size_t)ETRN_RULES_MAX * 40;
	int64_t			 t0, ms;
	int			 pass;

	rules = xcalloc(1, sz);
	for (pass = 0; pass < 2; pass++) {
		len = 0;
		for (i = 0; i < (size_t)ETRN_RULES_MAX; i++)
			len += (size_t)snprintf(rules + len, sz - len,
			    "d%zu.example any\n", pass == 1 &&
			    i == ETRN_RULES_MAX - 1 ? (size_t)7 : i);
		if (write_tmp(rules, path, sizeof(path)) == -1)
			t_fatalf(t, "write_tmp: %s", strerror(errno));
		(void)bsnprintf(text, sizeof(text), "etrn_policy = %s\n",
		    path);
		if ((c = conf_text(t, text, err, sizeof(err))) == NULL) {
			unlink(path);
			t_fatalf(t, "conf_load: %s", err);
		}
		err[0] = '\0';
		t0 = clock_mono_ms();
		p = etrn_policy_load(c, err, sizeof(err));
		ms = clock_mono_ms() - t0;
		unlink(path);
		if (ms > 2000)
			t_errorf(t, "%d rules (pass %d): loaded in %lld ms, "
			    "want under 2000", ETRN_RULES_MAX, pass,
			    (long long)ms);
		if (pass == 0 && p == NULL)
			t_errorf(t, "%d distinct rules: %s", ETRN_RULES_MAX,
			    err);
		if (pass == 0 && p != NULL &&
		    !etrn_policy_allows(p, c, "d99999.example", false,
		    &(struct etrn_client){ 0 }))
			t_errorf(t, "d99999.example: not allowed");
		if (pass == 1 && p != NULL)
			t_errorf(t, "a duplicate on the last line: loaded");
		if (pass == 1 && p == NULL && strstr(err, ":100000: "
		    "d7.example: a second rule (the first is on line 8)") ==
		    NULL)
			t_errorf(t, "duplicate: got \"%s\"", err);
		etrn_policy_free(p);
		conf_free(c);
	}
	free(rules);
}

/* etrn_queues: NAME:MEMBER[:MEMBER...], "@" for subdomains. */
static void
test_queues(struct t *t)
{
	const struct etrn_queue	*q;
	struct etrn_policy	*p;
	struct conf		*c;
	char			 err[512];
	size_t			 i;
	static const struct {
		const char	*value;
		const char	*want;	/* NULL: loads */
	} bad[] = {
		{ "pair", "bad queue \"pair\"" },
		{ ":a.example", "bad queue" },
		{ "p q:a.example", "bad queue \"p\"" },
		{ "p:a.example:", "bad domain" },
		{ "p:bad..example", "bad domain" },
		{ "p:@", "bad domain" },
		{ "p:a.example P:b.example", "queue \"p\" twice" },
		{ "p/x:a.example", "bad queue" },
	};

	if ((c = conf_text(t, "etrn_queues = pair:Q1.example:@q2.example, "
	    "one:c.example\n", err, sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if ((p = etrn_policy_load(c, err, sizeof(err))) == NULL)
		t_fatalf(t, "etrn_policy_load: %s", err);
	if ((q = etrn_policy_queue_find(p, "PAIR")) == NULL)
		t_errorf(t, "queue pair: not found");
	else if (q->n != 2 || strcmp(q->t[0].domain, "q1.example") != 0 ||
	    q->t[0].sub || strcmp(q->t[1].domain, "q2.example") != 0 ||
	    !q->t[1].sub)
		t_errorf(t, "queue pair: %zu members, %s%s ...", q->n,
		    q->n > 0 && q->t[0].sub ? "@" : "",
		    q->n > 0 ? q->t[0].domain : "");
	if ((q = etrn_policy_queue_find(p, "one")) == NULL || q->n != 1)
		t_errorf(t, "queue one: not found");
	if (etrn_policy_queue_find(p, "three") != NULL)
		t_errorf(t, "queue three: found");
	etrn_policy_free(p);
	conf_free(c);

	for (i = 0; i < NELEM(bad); i++) {
		char	text[256];

		(void)bsnprintf(text, sizeof(text), "etrn_queues = %s\n",
		    bad[i].value);
		if ((c = conf_text(t, text, err, sizeof(err))) == NULL)
			t_fatalf(t, "conf_load(%s): %s", bad[i].value, err);
		p = etrn_policy_load(c, err, sizeof(err));
		if (p != NULL)
			t_errorf(t, "etrn_queues = %s: loaded", bad[i].value);
		else if (strstr(err, bad[i].want) == NULL ||
		    strncmp(err, "etrn_queues: ", 13) != 0)
			t_errorf(t, "etrn_queues = %s: got \"%s\", want "
			    "\"%s\"", bad[i].value, err, bad[i].want);
		etrn_policy_free(p);
		conf_free(c);
	}
}

/* queue_domain_msgs: distinct messages, not recipients. */
static void
test_domain_msgs(struct t *t)
{
	static const char *const m1[] = { "a@s.example", "b@s.example",
	    "c@x.s.example" };
	static const char *const m2[] = { "d@s.example" };
	static const char *const m3[] = { "e@y.s.example", "f@o.example" };
	static const char *const m4[] = { "g@s-x.example", "h@o.example" };
	static const struct {
		const char	*dom[2];
		bool		 sub[2];
		size_t		 n, want;
	} tab[] = {
		{ { "s.example" }, { false }, 1, 2 },		/* m1 m2 */
		{ { "s.example" }, { true }, 1, 3 },		/* m1 m2 m3 */
		{ { "x.s.example" }, { false }, 1, 1 },
		{ { "o.example" }, { false }, 1, 2 },		/* m3 m4 */
		{ { "s.example", "o.example" }, { true, false }, 2, 4 },
		{ { "S.Example" }, { false }, 1, 2 },
		{ { "none.example" }, { true }, 1, 0 },
		{ { "example" }, { true }, 1, 4 },
	};
	struct queue	*q = NULL;
	struct qsel	 sel[2];
	uint64_t	 id;
	size_t		 i, k, cnt;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, m1, NELEM(m1), &id) ||
	    !tq_enqueue(t, q, m2, NELEM(m2), &id) ||
	    !tq_enqueue(t, q, m3, NELEM(m3), &id) ||
	    !tq_enqueue(t, q, m4, NELEM(m4), &id))
		goto out;
	for (i = 0; i < NELEM(tab); i++) {
		memset(sel, 0, sizeof(sel));
		for (k = 0; k < tab[i].n; k++) {
			sel[k].domain = tab[i].dom[k];
			sel[k].subdomains = tab[i].sub[k];
		}
		if ((rc = queue_domain_msgs(q, sel, tab[i].n, &cnt)) != 0 ||
		    cnt != tab[i].want)
			t_errorf(t, "queue_domain_msgs(%s%s%s): got %d, %zu; "
			    "want 0, %zu", tab[i].sub[0] ? "@" : "",
			    tab[i].dom[0], tab[i].n > 1 ? " ..." : "", rc, cnt,
			    tab[i].want);
	}
	memset(sel, 0, sizeof(sel));
	sel[0].domain = "bad..example";
	if ((rc = queue_domain_msgs(q, sel, 1, &cnt)) != QUEUE_E_INVAL &&
	    rc != 0)
		t_errorf(t, "queue_domain_msgs(bad..example): got %d", rc);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* A flush with a caller: its claims carry it; one without does not; a
 * later flush without a caller keeps the one waiting. */
static void
test_flush_caller(struct t *t)
{
	static const char *const a1[] = { "u@cal.example" };
	static const char *const a2[] = { "v@plain.example" };
	struct queue	*q = NULL;
	struct qclaim	 c[4];
	struct qsel	 sel;
	uint64_t	 ida, idb;
	int64_t		 now = (int64_t)time(NULL);
	size_t		 cnt, n, i;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	if (!tq_enqueue(t, q, a1, 1, &ida) || !tq_enqueue(t, q, a2, 1, &idb))
		goto out;
	/* Not due before then: only the flushes take them. */
	n = tq_claim(t, q, now, TQ_FAR, c, NELEM(c), 2);
	for (i = 0; i < n; i++)
		(void)tq_record1(t, q, &c[i], QRESULT_DEFERRED, now,
		    now + 100000, "4.0.0", "451 later");

	memset(&sel, 0, sizeof(sel));
	sel.domain = "cal.example";
	sel.caller = "192.0.2.77";
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0 || cnt != 1)
		t_errorf(t, "queue_flush(caller): got %d, %zu", rc, cnt);
	/* An operator's flush of the same domain keeps the caller. */
	sel.caller = NULL;
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0)
		t_errorf(t, "queue_flush(again): got %d", rc);
	sel.domain = "plain.example";
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0)
		t_errorf(t, "queue_flush(plain): got %d", rc);
	n = tq_claim(t, q, now, 300, c, NELEM(c), 2);
	for (i = 0; i < n; i++) {
		const char *want = c[i].id == ida ? "192.0.2.77" : "";

		if (!c[i].flushed || strcmp(c[i].caller, want) != 0)
			t_errorf(t, "claim of %s: flushed %d, caller \"%s\", "
			    "want 1, \"%s\"", c[i].domain, c[i].flushed,
			    c[i].caller, want);
	}
	/* Too long a caller is refused. */
	sel.domain = "cal.example";
	sel.caller = "0123456789012345678901234567890123456789"
	    "012345678901234567890123456789";
	if ((rc = queue_flush(q, &sel, true, now, &cnt)) != QUEUE_E_INVAL)
		t_errorf(t, "queue_flush(long caller): got %d, want %d", rc,
		    QUEUE_E_INVAL);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/*
 * A caller's flush never reaches past its own domain: a pending flush of
 * par.example and its subdomains, then an authenticated ETRN's flush of
 * par.example with a caller, merge into one request; the caller goes only
 * to par.example's claims, never to sub.par.example's (another owner's
 * "caller:PORT" domain would go to this caller's address).
 */
static void
test_flush_caller_sub(struct t *t)
{
	static const char *const a1[] = { "u@par.example" };
	static const char *const a2[] = { "v@sub.par.example" };
	struct queue	*q = NULL;
	struct qclaim	 c[4];
	struct qsel	 sel;
	uint64_t	 ida, idb;
	int64_t		 now;
	size_t		 cnt, n, i;
	char		 dir[64];
	int		 rc, pass;

	for (pass = 0; pass < 2; pass++) {
		if (!tq_tmpdir(t, dir, sizeof(dir)))
			return;
		if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
			goto out;
		if (!tq_enqueue(t, q, a1, 1, &ida) ||
		    !tq_enqueue(t, q, a2, 1, &idb))
			goto out;
		/* After the enqueue, and a second on: both are due even
		 * when the clock ticked while they were written (a "now"
		 * read before them made this fail once in 40 runs). */
		now = (int64_t)time(NULL) + 1;
		n = tq_claim(t, q, now, TQ_FAR, c, NELEM(c), 2);
		for (i = 0; i < n; i++)
			(void)tq_record1(t, q, &c[i], QRESULT_DEFERRED, now,
			    now + 100000, "4.0.0", "451 later");
		memset(&sel, 0, sizeof(sel));
		sel.domain = "par.example";
		/* Pass 0: the subdomain flush first; pass 1: after. */
		sel.subdomains = pass == 0;
		sel.caller = pass == 0 ? NULL : "192.0.2.78";
		if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0)
			t_errorf(t, "queue_flush(1): got %d", rc);
		sel.subdomains = pass == 1;
		sel.caller = pass == 0 ? "192.0.2.78" : NULL;
		if ((rc = queue_flush(q, &sel, true, now, &cnt)) != 0)
			t_errorf(t, "queue_flush(2): got %d", rc);
		n = tq_claim(t, q, now, 300, c, NELEM(c), 2);
		if (n != 2)
			t_errorf(t, "pass %d: %zu claims, want 2", pass, n);
		for (i = 0; i < n; i++) {
			const char *want = c[i].id == ida ? "192.0.2.78" : "";

			if (strcmp(c[i].caller, want) != 0)
				t_errorf(t, "pass %d: claim of %s: caller "
				    "\"%s\", want \"%s\"", pass, c[i].domain,
				    c[i].caller, want);
		}
	out:
		queue_close(q);
		q = NULL;
		tq_rmrf(dir);
	}
}

/* The flushq codec: values written before the caller existed decode as
 * they did; a caller and a resume point come back. */
static void
test_flush_codec(struct t *t)
{
	struct queue_flushreq	 f;
	MDB_val			 v;
	uint8_t			 buf[128];
	int			 rc;

	/* Old: flags(1) time(8). */
	memset(buf, 0, sizeof(buf));
	buf[0] = QUEUE_FLUSH_SUB | QUEUE_FLUSH_HELD;
	queue_be64_put(buf + 1, 12345);
	v.mv_data = buf;
	v.mv_size = 9;
	if ((rc = queue_rec_dec_flush(&v, &f)) != 0 || f.when != 12345 ||
	    f.rklen != 0 || f.caller[0] != '\0' ||
	    f.flags != (QUEUE_FLUSH_SUB | QUEUE_FLUSH_HELD))
		t_errorf(t, "old value: rc %d, when %lld, rklen %zu", rc,
		    (long long)f.when, f.rklen);
	/* Old with a resume point: value(12) key. */
	memset(buf + 9, 7, QUEUE_KEY_RCPT);
	memcpy(buf + 9 + QUEUE_KEY_RCPT, "org.example", 11);
	v.mv_size = 9 + QUEUE_KEY_RCPT + 11;
	if ((rc = queue_rec_dec_flush(&v, &f)) != 0 || f.rklen != 11 ||
	    memcmp(f.rkey, "org.example", 11) != 0 || f.rval[0] != 7 ||
	    f.caller[0] != '\0')
		t_errorf(t, "old value with resume: rc %d, rklen %zu", rc,
		    f.rklen);
	/* New: flags time len caller [resume]. */
	buf[0] = QUEUE_FLUSH_HELD | QUEUE_FLUSH_CALLER;
	buf[9] = 8;
	memcpy(buf + 10, "10.1.2.3", 8);
	memset(buf + 18, 9, QUEUE_KEY_RCPT);
	memcpy(buf + 18 + QUEUE_KEY_RCPT, "net.example", 11);
	v.mv_size = 18 + QUEUE_KEY_RCPT + 11;
	if ((rc = queue_rec_dec_flush(&v, &f)) != 0 ||
	    strcmp(f.caller, "10.1.2.3") != 0 || f.rklen != 11 ||
	    memcmp(f.rkey, "net.example", 11) != 0 || f.rval[0] != 9)
		t_errorf(t, "new value: rc %d, caller \"%s\", rklen %zu", rc,
		    f.caller, f.rklen);
	/* A caller length past the value: corrupt, not an overrun. */
	buf[9] = 60;
	v.mv_size = 14;
	if ((rc = queue_rec_dec_flush(&v, &f)) != QUEUE_E_CORRUPT)
		t_errorf(t, "short caller: rc %d, want %d", rc,
		    QUEUE_E_CORRUPT);
	buf[9] = QUEUE_CALLER_MAX + 1;
	v.mv_size = sizeof(buf);
	if ((rc = queue_rec_dec_flush(&v, &f)) != QUEUE_E_CORRUPT)
		t_errorf(t, "long caller: rc %d, want %d", rc,
		    QUEUE_E_CORRUPT);
}

int
main(void)
{
	T_RUN(test_policy_relay);
	T_RUN(test_policy_file);
	T_RUN(test_policy_file_bad);
	T_RUN(test_policy_file_large);
	T_RUN(test_queues);
	T_RUN(test_domain_msgs);
	T_RUN(test_flush_caller);
	T_RUN(test_flush_caller_sub);
	T_RUN(test_flush_codec);
	T_EXIT();
}

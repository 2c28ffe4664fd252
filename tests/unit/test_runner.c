/*
 * test_runner.c - the scheduler's rules that need no peer: backoff with
 * jitter, and what a reply does to a recipient (runner_result).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "runner_int.h"
#include "tharness.h"

static struct conf *
tr_conf(void)
{
	char	err[256];

	return conf_load(NULL, err, sizeof(err));
}

/* Backoff doubles from min_backoff, stops at max_backoff, +-20% jitter,
 * and the jitter really varies (a recovered hop is not hit all at once). */
static void
test_backoff(struct t *t)
{
	struct conf	*c = tr_conf();
	int64_t		 want[] = { 300, 600, 1200, 2400, 3600, 3600, 3600 };
	int64_t		 v, lo, hi, first = 0;
	uint32_t	 a;
	int		 i, distinct = 0;

	if (c == NULL)
		t_fatalf(t, "conf_load(NULL) failed");
	for (a = 1; a <= 7; a++) {
		lo = want[a - 1] * 8 / 10;
		hi = want[a - 1] * 12 / 10;
		for (i = 0; i < 200; i++) {
			v = runner_result_backoff(c, a, i % 2 ? 0 :
			    (uint64_t)i + 1);
			if (v < lo || v > hi)
				t_errorf(t, "runner_result_backoff(attempts=%u): "
				    "got %lld, want %lld..%lld", a, (long long)v,
				    (long long)lo, (long long)hi);
			if (i == 0)
				first = v;
			else if (v != first)
				distinct++;
		}
	}
	if (distinct < 100)
		t_errorf(t, "runner_result_backoff: jitter gave %d values "
		    "unlike the first of their kind in 1400, want many", distinct);
	/* One message, one try: one jitter. */
	if (runner_result_backoff(c, 3, 12345) !=
	    runner_result_backoff(c, 3, 12345))
		t_errorf(t, "runner_result_backoff: a seeded jitter differs");
	conf_free(c);
}

static void
tr_msg(struct qmsg *m, struct qrcpt *r, struct qclaim *cl, int64_t age)
{
	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	memset(cl, 0, sizeof(*cl));
	m->id = 1;
	m->arrival = (int64_t)time(NULL) - age;
	strl_copy(r->addr, "bob@example.org", sizeof(r->addr));
	r->state = QRCPT_ACTIVE;
	r->attempts = 2;
	cl->id = 1;
	cl->token = 7;
}

static void
test_result(struct t *t)
{
	static const struct {
		const char	*name;
		int		 code;
		const char	*status;
		int64_t		 age;
		uint8_t		 flags;
		int		 kind;
		const char	*want_status;
	} cases[] = {
		{ "2xx delivered", 250, "2.0.0", 10, 0, QRESULT_DELIVERED,
		    "2.0.0" },
		{ "5xx failed", 550, "5.1.1", 10, 0, QRESULT_FAILED, "5.1.1" },
		{ "4xx deferred", 451, "4.3.0", 10, 0, QRESULT_DEFERRED,
		    "4.3.0" },
		{ "no reply deferred", 0, "4.4.1", 10, 0, QRESULT_DEFERRED,
		    "4.4.1" },
		{ "4xx past lifetime: failed, its status", 451, "4.4.2",
		    6 * 86400, 0, QRESULT_FAILED, "4.4.2" },
		{ "site hold deferred: held again", 451, "4.4.1", 10,
		    QRCPT_F_SITE, QRESULT_HELD, "4.4.1" },
		{ "site hold looping: held, not bounced", 554, "5.4.6", 10,
		    QRCPT_F_SITE, QRESULT_HELD, "5.4.6" },
		{ "relay domain looping: failed", 554, "5.4.6", 10, 0,
		    QRESULT_FAILED, "5.4.6" },
	};
	struct conf	*c = tr_conf();
	struct qmsg	 m;
	struct qrcpt	 r;
	struct qclaim	 cl;
	struct qresult	 res;
	double		 d[4] = { 0, 0, 0, 0 };
	size_t		 i;
	int64_t		 now = (int64_t)time(NULL);

	if (c == NULL)
		t_fatalf(t, "conf_load(NULL) failed");
	log_init("test", LOG_DEST_NONE);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tr_msg(&m, &r, &cl, cases[i].age);
		r.flags = cases[i].flags;
		runner_result(c, &m, &r, &cl, cases[i].code, cases[i].status,
		    "peer text", true, "none", d, &res);
		if (res.kind != cases[i].kind ||
		    strcmp(res.status, cases[i].want_status) != 0)
			t_errorf(t, "%s: got kind %d status %s, want %d %s",
			    cases[i].name, res.kind, res.status, cases[i].kind,
			    cases[i].want_status);
		if (res.token != 7 || !res.attempted)
			t_errorf(t, "%s: token %llu attempted %d", cases[i].name,
			    (unsigned long long)res.token, res.attempted);
		if (res.kind == QRESULT_DEFERRED && (res.next_try < now +
		    c->min_backoff || res.next_try > now + c->max_backoff *
		    12 / 10 + 1))
			t_errorf(t, "%s: next_try in %lld s", cases[i].name,
			    (long long)(res.next_try - now));
		if (res.kind == QRESULT_HELD &&
		    res.next_try != m.arrival + c->hold_lifetime)
			t_errorf(t, "%s: held until %lld, want arrival + "
			    "hold_lifetime", cases[i].name,
			    (long long)res.next_try);
	}
	conf_free(c);
}

/*
 * The delays= field and delay=: a duration is never printed negative.
 * A connection's set-up minus its TLS part measured on a coarser clock
 * gave "delays=0.007/-0.000/...": every part is clamped at zero (-0.0,
 * tiny negatives, NaN too), and a huge one is capped.
 */
static void
test_dlog_delays(struct t *t)
{
	static const struct {
		double		 d[4];
		const char	*want;
	} cases[] = {
		{ { 0.007, -0.0001, 0.052, 0.002 }, "0.007/0.000/0.052/0.002" },
		{ { 0.007, -0.0, 0, 0 }, "0.007/0.000/0.000/0.000" },
		{ { -1.5, -0.0004, -0.0005, -3 }, "0.000/0.000/0.000/0.000" },
		{ { 1.2344, 0.0005, 2, 10.25 }, "1.234/0.001/2.000/10.250" },
		{ { 0.0 / 0.0, 1e300, -1e300, 0 },
		    "0.000/999999999.000/0.000/0.000" },
	};
	static const struct {
		double		 v;
		const char	*want;
	} one[] = {
		{ -0.0, "0.0" }, { -0.04, "0.0" }, { -7, "0.0" },
		{ 3.21, "3.2" }, { 0.0 / 0.0, "0.0" },
	};
	char	buf[DLOG_DELAYS_MAX];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dlog_delays(buf, sizeof(buf), cases[i].d);
		if (strcmp(buf, cases[i].want) != 0)
			t_errorf(t, "dlog_delays(case %zu): got \"%s\", want "
			    "\"%s\"", i, buf, cases[i].want);
	}
	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		(void)bsnprintf(buf, sizeof(buf), "%.1f",
		    dlog_secs(one[i].v));
		if (strcmp(buf, one[i].want) != 0)
			t_errorf(t, "dlog_secs(case %zu): got \"%s\", want "
			    "\"%s\"", i, buf, one[i].want);
	}
}

/* The clock seam (smtp/clock.c): clock_advance() moves the wall clock and
 * the monotonic clock together, so a test can step time instead of
 * sleeping; without it both follow the system. */
static void
test_clock(struct t *t)
{
	time_t	 w0, w1;
	int64_t	 m0, m1;

	w0 = clock_now();
	m0 = clock_mono_ms();
	if (w0 < time(NULL) - 1 || w0 > time(NULL) + 1)
		t_errorf(t, "clock_now: %lld, time(): %lld", (long long)w0,
		    (long long)time(NULL));
	clock_advance((int64_t)3600 * 1000000000);
	w1 = clock_now();
	m1 = clock_mono_ms();
	if (w1 - w0 < 3600 || w1 - w0 > 3601)
		t_errorf(t, "clock_now after an hour: moved %lld s",
		    (long long)(w1 - w0));
	if (m1 - m0 < 3600 * 1000 || m1 - m0 > 3601 * 1000)
		t_errorf(t, "clock_mono_ms after an hour: moved %lld ms",
		    (long long)(m1 - m0));
	if (clock_mono_secs() * 1000 < (double)m1)
		t_errorf(t, "clock_mono_secs behind clock_mono_ms");
	clock_advance(-(int64_t)3600 * 1000000000);
	if (clock_now() - w0 > 1)
		t_errorf(t, "clock_advance back: %lld s off",
		    (long long)(clock_now() - w0));
}

int
main(void)
{
	T_RUN(test_backoff);
	T_RUN(test_result);
	T_RUN(test_dlog_delays);
	T_RUN(test_clock);
	T_EXIT();
}

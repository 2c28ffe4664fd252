/*
 * dlog.c - the one delivery log line per recipient and attempt, in the
 * form mail operators already grep (Postfix's):
 *
 *	postern/runner[4711]: 1K0VGTZKSX9: to=<bob@example.org>,
 *	relay=mx.example.org[192.0.2.7]:25, delay=3.2,
 *	delays=0.010/0.200/0.100/2.900, attempts=2, dsn=4.4.1,
 *	status=deferred (connect timed out)
 *
 * delays= is queue/connect/tls/transfer seconds of this attempt, to the
 * millisecond (a TLS handshake on a LAN takes a few), each part clamped
 * at zero: no duration is ever printed negative. The text in ( ) is the
 * peer's own, cleaned of control bytes and capped. Addresses are escaped
 * by log.c (control bytes, and ',' and '>' inside <>), so a quoted local
 * part cannot end its field.
 */
#include <string.h>

#include "runner_int.h"

/*
 * A part is a difference of clock readings (the connection's set-up less
 * its TLS part, the delay since arrival less the attempt): rounding can
 * make it a hair below zero, which printed as "-0.000". A duration is
 * never negative: clamp, and write +0 (!(v > 0) also catches -0.0 and
 * NaN). A bound keeps the field short whatever comes in.
 */
#define DLOG_SECS_MAX	999999999.0

double
dlog_secs(double v)
{
	if (!(v > 0))
		return 0;
	return v > DLOG_SECS_MAX ? DLOG_SECS_MAX : v;
}

void
dlog_delays(char *buf, size_t bufsz, const double d[4])
{
	(void)bsnprintf(buf, bufsz, "%.3f/%.3f/%.3f/%.3f", dlog_secs(d[0]),
	    dlog_secs(d[1]), dlog_secs(d[2]), dlog_secs(d[3]));
}

void
dlog_attempt(const struct qmsg *m, const struct qrcpt *r, const char *relay,
    double delay, const double delays[4], uint32_t attempts, const char *dsn,
    const char *status, const char *text)
{
	char	 id[QUEUE_ID_LEN + 1], clean[QUEUE_REPLY_MAX + 1];
	char	 d[DLOG_DELAYS_MAX];
	bool	 orig;

	queue_id_format(m->id, id);
	strl_clean(clean, sizeof(clean), text, QUEUE_REPLY_MAX);
	orig = r->orcpt[0] != '\0' &&
	    strncasecmp(r->orcpt, "rfc822;", 7) == 0 &&
	    strcasecmp(r->orcpt + 7, r->addr) != 0;
	dlog_delays(d, sizeof(d), delays);
	/* Every attempt's line is written here: count it here too. */
	counters_delivery(status, dsn, (int64_t)clock_now());
	/* orig_to's value comes right after its '<', so log.c escapes its
	 * ',' and '>' like to='s (they are a peer's: ORCPT is xtext). */
	log_info("%s: to=<%s>,%s%s%s relay=%s, delay=%.1f, delays=%s, "
	    "attempts=%u, dsn=%s, status=%s (%s)", id, r->addr,
	    orig ? " orig_to=<" : "", orig ? r->orcpt + 7 : "",
	    orig ? ">," : "", relay, dlog_secs(delay), d, attempts, dsn,
	    status, clean);
}

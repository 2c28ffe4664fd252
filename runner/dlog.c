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
 * millisecond (a TLS handshake on a LAN takes a few). The
 * text in ( ) is the peer's own, cleaned of control bytes and capped.
 * Addresses are escaped by log.c (control bytes, and ',' and '>' inside
 * <>), so a quoted local part cannot end its field.
 */
#include <string.h>

#include "runner_int.h"

void
dlog_attempt(const struct qmsg *m, const struct qrcpt *r, const char *relay,
    double delay, const double delays[4], uint32_t attempts, const char *dsn,
    const char *status, const char *text)
{
	char	 id[QUEUE_ID_LEN + 1], clean[QUEUE_REPLY_MAX + 1];
	bool	 orig;

	queue_id_format(m->id, id);
	strl_clean(clean, sizeof(clean), text, QUEUE_REPLY_MAX);
	orig = r->orcpt[0] != '\0' &&
	    strncasecmp(r->orcpt, "rfc822;", 7) == 0 &&
	    strcasecmp(r->orcpt + 7, r->addr) != 0;
	/* orig_to's value comes right after its '<', so log.c escapes its
	 * ',' and '>' like to='s (they are a peer's: ORCPT is xtext). */
	log_info("%s: to=<%s>,%s%s%s relay=%s, delay=%.1f, delays=%.3f/%.3f/"
	    "%.3f/%.3f, attempts=%u, dsn=%s, status=%s (%s)", id, r->addr,
	    orig ? " orig_to=<" : "", orig ? r->orcpt + 7 : "",
	    orig ? ">," : "", relay, delay, delays[0], delays[1], delays[2],
	    delays[3], attempts, dsn, status, clean);
}

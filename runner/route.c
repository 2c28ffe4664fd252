/*
 * route.c - where a recipient goes, and whether it waits for its site.
 *
 * For now: hold_domains. routes_file, relayhost and MX come with the
 * delivery issue.
 */
#include "runner.h"

void
route_rcpt_init(const struct conf *conf, struct qrcpt *r, int64_t now)
{
	char	dom[QUEUE_ADDR_MAX + 1];

	queue_domain_of(r->addr, dom, sizeof(dom));
	r->flags = 0;
	r->due = 0;
	r->state = QRCPT_QUEUED;
	if (conf_domain_in(&conf->hold_domains, dom)) {
		/* Waits for its site (ETRN, ATRN) or an operator's flush;
		 * fails after hold_lifetime. */
		r->state = QRCPT_HELD;
		r->flags = QRCPT_F_SITE;
		r->due = now + conf->hold_lifetime;
	}
}

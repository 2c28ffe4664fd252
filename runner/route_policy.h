/*
 * route_policy.h - the part of runner/'s routing that the receiving side
 * applies: how a new recipient starts. Every program that enqueues (smtpd
 * in etrn/, `postern enqueue` and sendmail in tools/) includes this and
 * not all of runner.h; the code is in route.c, next to the routes it
 * agrees with.
 */
#ifndef ROUTE_POLICY_H
#define ROUTE_POLICY_H

#include <stdint.h>

#include "queue.h"
#include "smtp.h"

/*
 * route_rcpt_init - set how a new recipient starts: held for its site
 * (state QRCPT_HELD, flag QRCPT_F_SITE, due = now + hold_lifetime) when
 * its domain is in hold_domains, else queued and due now. (A routes_file
 * "hold" or "caller" entry is applied by the runner at the first try: the
 * recipient goes back to waiting without an attempt.) Never fails.
 */
void	route_rcpt_init(const struct conf *, struct qrcpt *, int64_t now);

#endif

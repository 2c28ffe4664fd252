/*
 * runner.h - routing, the scheduler and the delivery workers.
 *
 * This folder decides where mail goes and when: routes_file, relayhost,
 * MX via c-ares, and which recipients wait for their site instead of being
 * tried on a timer. The SMTP server and the `postern` command ask it how a
 * new recipient starts (route_rcpt_init); the scheduler and workers (to
 * come) claim due recipients from queue/ and deliver them.
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <stdint.h>

#include "queue.h"
#include "smtp.h"

/*
 * route_rcpt_init - set how a new recipient starts: held for its site
 * (state QRCPT_HELD, flag QRCPT_F_SITE, due = now + hold_lifetime) when
 * its domain is in hold_domains, else queued and due now. Never fails.
 */
void	route_rcpt_init(const struct conf *, struct qrcpt *, int64_t now);

#endif

/*
 * route_ares.h - one c-ares channel driven with poll(2): route_dns.c's,
 * route_tlsa.c's and route_sts.c's (each has its own channel, with its own
 * options).
 */
#ifndef ROUTE_ARES_H
#define ROUTE_ARES_H

#include <ares.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_list;

struct route_ares {
	ares_channel	 ch;
	bool		 ch_ok;		/* ch is made (and the library on) */
	struct pollfd	*socks;		/* what c-ares waits for */
	size_t		 nsocks;
	int		 pending;	/* queries without an answer: the
					 * owner counts them up when it sends
					 * and down in its callbacks */
};

/* route_ares_init - make a->ch: DNS only (never /etc/hosts), no search
 * list, flags added to those; each try timeout_ms, tries of them. -1 with
 * err set on failure (a is then as before). */
int	route_ares_init(struct route_ares *a, int flags, int timeout_ms,
	    int tries, char *err, size_t errsz);
/* route_ares_servers - point a->ch at servers (dns_servers' entries:
 * "IP", "IP:PORT", "IPv6", "[IPv6]", "[IPv6]:PORT"), in their order. -1
 * with err set ("dns_servers: ...") when c-ares refuses them. */
int	route_ares_servers(struct route_ares *a,
	    const struct conf_list *servers, char *err, size_t errsz);
/* route_ares_wait - drive c-ares until nothing is pending or the
 * deadline (monotonic ms) has passed; then cancel what is left (its
 * callbacks run with ARES_ECANCELLED). */
void	route_ares_wait(struct route_ares *a, int64_t deadline);
/* route_ares_free - destroy the channel if made; a's own memory is the
 * caller's. */
void	route_ares_free(struct route_ares *a);

#endif

/*
 * route_tlsa.h - DANE for SMTP (RFC 7672, RFC 6698): which MX hosts of a
 * next hop publish TLSA records, looked up through a validating resolver,
 * and what that means for each host's TLS. route_tlsa.c looks them up;
 * smtpc_dane.c hands them to OpenSSL. runner/ only: the worker asks for a
 * policy after route_dns_resolve() and passes it to smtpc_open() in
 * smtpc_opts.dane.
 *
 * The AD bit is trusted only from the configured dns_servers (the
 * operator's validating resolver, as in Postfix): with no dns_servers
 * every answer counts as insecure and DANE never applies.
 */
#ifndef ROUTE_TLSA_H
#define ROUTE_TLSA_H

#include <stdbool.h>
#include <stdint.h>

#include "runner.h"

#define ROUTE_TLSA_RR_MAX	32	/* TLSA records kept a host */
#define ROUTE_TLSA_DATA_MAX	4096	/* octets of one record's data (a
					 * whole certificate, matching 0) */
#define ROUTE_TLSA_T_TLSA	52	/* RFC 6698 §7.1 */

/* What a host's DNS says its TLS must be (RFC 7672 §2.2). */
enum route_tlsa_level {
	ROUTE_TLSA_MAY,		/* insecure MX, address or TLSA RRset, or
				 * a secure denial of TLSA: opportunistic */
	ROUTE_TLSA_ENCRYPT,	/* secure TLSA records, none usable
				 * (§2.2: TLS, without authentication) */
	ROUTE_TLSA_DANE,	/* usable records: the certificate must
				 * match one of them */
	ROUTE_TLSA_SKIP,	/* the TLSA lookup failed: not this host */
};

struct route_tlsa_rr {
	uint8_t		 usage;		/* 2 DANE-TA, 3 DANE-EE */
	uint8_t		 selector;	/* 0 certificate, 1 SPKI */
	uint8_t		 mtype;		/* 0 full, 1 SHA2-256, 2 SHA2-512 */
	uint16_t	 len;
	unsigned char	*data;
};

struct route_tlsa_host {
	char			 host[256];	/* the TLSA base domain */
	int			 port;
	enum route_tlsa_level	 level;
	struct route_tlsa_rr	*rr;		/* usable records (DANE) */
	size_t			 nrr;
};

/* The policy for one connection attempt: a level for each host. */
struct route_tlsa {
	char			 domain[256];	/* the next-hop domain: a
						 * second name DANE-TA
						 * certificates may carry */
	struct route_tlsa_host	*h;
	size_t			 n;
};

struct route_tlsa_dns;

/* route_tlsa_dns_new - the lookups' c-ares channel, on dns_servers (none:
 * DANE never applies, and a warning says so at the first lookup). NULL
 * and a reason on error. */
struct route_tlsa_dns *route_tlsa_dns_new(const struct conf *, char *err,
	    size_t errsz);
void	 route_tlsa_dns_free(struct route_tlsa_dns *);

/*
 * route_tlsa_policy - for the addresses route_dns_resolve gave route r
 * toward domain: is the MX RRset secure (AD), and for each MX host, are
 * its address records secure, and what TLSA records does
 * _PORT._tcp.HOST have (PORT as in the address). Hosts whose TLSA
 * lookup failed (SERVFAIL, timeout) are taken out of addrs (compacted,
 * order kept; *n updated) and logged. Blocks up to timeout_ms.
 * Returns 0 with *out (free with route_tlsa_free), or -1 with status
 * and why when no address is left or the MX lookup failed.
 */
int	 route_tlsa_policy(struct route_tlsa_dns *, const struct route *r,
	    const char *domain, struct route_addr *addrs, size_t *n,
	    struct route_tlsa **out, char status[16], char *why,
	    size_t whysz, int timeout_ms);
void	 route_tlsa_free(struct route_tlsa *);
/* route_tlsa_find - the entry of host (case-insensitive), or NULL. */
const struct route_tlsa_host *route_tlsa_find(const struct route_tlsa *,
	    const char *host);

/*
 * route_tlsa_parse - the TLSA records of a DNS reply (len octets) into
 * rr[0..max), usable ones only (DANE-TA(2)/DANE-EE(3), selector 0/1,
 * matching 1/2 with the digest's length, or 0 with data OpenSSL reads
 * whole as a certificate/SubjectPublicKeyInfo, as SSL_dane_tlsa_add
 * will; RFC 7672 §3.1.3: PKIX-TA(0)
 * and PKIX-EE(1) are unusable); data malloc'd. *total counts every TLSA
 * record, usable or not; *rcode and *ad are the header's. -1 when the
 * reply is malformed (anything past its end, counts that do not add up).
 */
int	 route_tlsa_parse(const unsigned char *b, size_t len,
	    struct route_tlsa_rr *rr, size_t max, size_t *nrr, size_t *total,
	    int *rcode, bool *ad);
void	 route_tlsa_rr_free(struct route_tlsa_rr *rr, size_t n);

/* ------------------------------------------------------------------ */
/* smtpc_dane.c - the client's side: OpenSSL's DANE (smtpc_tls.c). */

struct smtpc;
struct ssl_st;

/* smtpc_dane_level - the level for the host connected to, under
 * smtp_tls = dane (MAY when the policy does not know it). */
enum route_tlsa_level smtpc_dane_level(const struct route_tlsa *,
	    const char *host, const struct route_tlsa_host **);
/* smtpc_dane_enable - turn on DANE verification of h's records on ssl
 * (its context too), reference names h->host and domain, no name checks
 * for DANE-EE (RFC 7672 §3.1.1). -1 on a local error. */
int	 smtpc_dane_enable(struct ssl_st *, const struct route_tlsa_host *h,
	    const char *domain);
/* smtpc_dane_matched - after the handshake: did a record match? The
 * record as "3 1 1 depth 0" into buf. */
bool	 smtpc_dane_matched(struct ssl_st *, char *buf, size_t bufsz);

#endif

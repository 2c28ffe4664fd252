/*
 * route_sts.h - MTA-STS (RFC 8461): whether a next hop's domain publishes
 * a policy that wants its MX hosts reached over authenticated TLS, and
 * which hosts those are. runner/ only.
 *
 *	route_sts_parse.c	the TXT record, the policy body and the mx
 *				patterns: pure functions of their bytes (unit
 *				tests, tests/fuzz/fuzz_sts.c)
 *	route_sts.c		discovery: the TXT record at _mta-sts.DOMAIN
 *				through c-ares on dns_servers, the policy from
 *				the queue's cache (queue_sts_*) or fetched
 *	route_sts_fetch.c	the HTTPS fetch with libcurl, pinned to the
 *				addresses c-ares gave for mta-sts.DOMAIN
 *
 * The worker asks route_sts_policy() after route_dns_resolve() (and, under
 * dane, after route_tlsa_policy(): a DANE-protected hop never consults
 * MTA-STS, RFC 8461 §2), filters the addresses with route_sts_filter()
 * and hands the mode to smtpc_open() in smtpc_opts.sts, which makes TLS
 * with a certificate verified for the MX host a condition of delivery
 * (enforce) or logs what would have failed (testing).
 */
#ifndef ROUTE_STS_H
#define ROUTE_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runner.h"

#define ROUTE_STS_ID_MAX	32	/* RFC 8461 §3.1: 1*32(ALPHA / DIGIT) */
#define ROUTE_STS_TXT_MAX	1024	/* octets of one TXT record kept;
					 * a longer "v=STSv1;" one is invalid */
#define ROUTE_STS_BODY_MAX	65536	/* §3.3: 64 KiB of policy */
#define ROUTE_STS_LINE_MAX	1024	/* octets of one policy line */
#define ROUTE_STS_MX_MAX	64	/* mx patterns; more: invalid */
#define ROUTE_STS_MAXAGE_MAX	31557600	/* §3.2: about a year */
#define ROUTE_STS_FAIL_WAIT	300	/* s: no fetch of the same id again
					 * within this after a failed one
					 * (§3.3: five minutes or longer) */
#define ROUTE_STS_REFRESH	86400	/* s: a policy older than this is
					 * fetched again on use (§3.3 asks
					 * for a proactive refresh; a
					 * failure keeps the one held) */
#define ROUTE_STS_FETCH_MS	10000	/* the whole HTTPS fetch */
#define ROUTE_STS_CONNECT_MS	5000	/* its TCP connect */

/* enum route_sts_mode is in runner.h (smtpc_opts carries it). */

struct route_sts_policy {
	enum route_sts_mode	 mode;
	uint32_t		 max_age;
	size_t			 nmx;
	char			 mx[ROUTE_STS_MX_MAX][256];	/* lower
					 * case; "*.suffix" or a name */
	char			 id[ROUTE_STS_ID_MAX + 1];	/* of the
					 * TXT record it was fetched for */
	char			 domain[256];	/* the policy domain */
};

/* ------------------------------------------------------------------ */
/* route_sts_parse.c */

/*
 * route_sts_txt_parse - one TXT record (its strings concatenated, len
 * octets) at _mta-sts.DOMAIN: 1 when it is an STS record ("v=STSv1"
 * first) with a valid id (the first "id=" field, 1-32 letters and
 * digits) copied into id; 0 when it is not an STS record at all (another
 * TXT: ignored); -1 when it is one but does not follow RFC 8461 §3.1's
 * grammar (then the domain has no policy).
 */
int	 route_sts_txt_parse(const char *txt, size_t len,
	    char id[ROUTE_STS_ID_MAX + 1]);
/*
 * route_sts_policy_parse - a policy body (len octets, CRLF or LF lines)
 * into *p (RFC 8461 §3.2): "version: STSv1", "mode: enforce|testing|
 * none", "max_age: 0-31557600" required; "mx: name" or "mx: *.suffix"
 * one or more (none is fine with mode none); unknown keys ignored; the
 * first of duplicated single keys wins. 0, or -1 with the reason in why
 * (a line too long, a NUL, a bad value, a missing key, too many mx).
 * p->id and p->domain are left as they were.
 */
int	 route_sts_policy_parse(const char *body, size_t len,
	    struct route_sts_policy *p, char *why, size_t whysz);
/* route_sts_policy_format - *p as the canonical body the parser reads
 * back, into out (reset first): what the queue's cache keeps. */
void	 route_sts_policy_format(const struct route_sts_policy *p,
	    struct sbuf *out);
/* route_sts_mx_ok - is pattern a valid mx value ("*." then a domain, or
 * a domain: LDH labels of 1-63, at most 253 octets, no trailing dot)? */
bool	 route_sts_mx_ok(const char *pattern, size_t len);
/* route_sts_mx_match - does host (a trailing dot allowed) match pattern?
 * Case-insensitive; "*.example.com" matches exactly one label more
 * (§4.1): "mx.example.com", not "example.com" nor "a.b.example.com". */
bool	 route_sts_mx_match(const char *pattern, const char *host);
/* route_sts_policy_match - does host match one of p's mx patterns? */
bool	 route_sts_policy_match(const struct route_sts_policy *p,
	    const char *host);
/* route_sts_mode_name - "none", "testing", "enforce". */
const char *route_sts_mode_name(enum route_sts_mode);

/* ------------------------------------------------------------------ */
/* route_sts.c */

struct route_sts;
struct route_dns;
struct queue;

/* route_sts_new - the TXT lookups' c-ares channel (dns_servers, else the
 * system's resolver); addresses of mta-sts.DOMAIN come from dns (the
 * worker's route_dns, the same resolver as delivery), the cache from q.
 * NULL and a reason on error. */
struct route_sts *route_sts_new(const struct conf *, struct route_dns *dns,
	    struct queue *q, char *err, size_t errsz);
void	 route_sts_free(struct route_sts *);

/*
 * route_sts_domain - the policy domain of route r toward domain (RFC
 * 8461 §3.4), into out: the recipient domain for its MX; the host of a
 * "host" route or relayhost (a smart host's own domain); "" (no MTA-STS)
 * for "[host]" routes, address literals, routes with mta-sts=no, TLS
 * policy none, or smtp_mta_sts = no.
 */
void	 route_sts_domain(const struct conf *, const struct route *r,
	    const char *domain, char *out, size_t outsz);
/*
 * route_sts_policy - the policy in force for domain, into *p (mode NONE
 * when there is none): the TXT record through c-ares; a cached policy
 * (the queue's sts database) when its id is the record's and it has not
 * expired; else a fetch (route_sts_fetch), recorded in the cache whether
 * it worked or not. DNS or HTTPS trouble keeps an unexpired cached
 * policy in force. Blocks up to timeout_ms for DNS and ROUTE_STS_FETCH_MS
 * for HTTPS. Never fails: trouble is logged, and a domain without a
 * usable policy is delivered to as without MTA-STS (§3.3).
 */
void	 route_sts_policy(struct route_sts *, const char *domain,
	    struct route_sts_policy *p, int timeout_ms);
/*
 * route_sts_filter - under enforce, drop the addresses of MX hosts that
 * match no mx pattern (compacted, order kept; each host logged once);
 * under testing, log them and keep them. -1 with status 4.7.5 and why
 * when none is left (the mail waits: never a bounce, §5.1).
 */
int	 route_sts_filter(const struct route_sts_policy *p,
	    struct route_addr *addrs, size_t *n, char status[16], char *why,
	    size_t whysz);

/* ------------------------------------------------------------------ */
/* route_sts_fetch.c */

/*
 * route_sts_fetch - GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt
 * from the addresses given (CURLOPT_RESOLVE: no other resolver is
 * asked), the certificate verified for mta-sts.DOMAIN against ca_file
 * (NULL or "": the system's store), TLS 1.2 or later, no redirects, no
 * proxy, no compression; only a 200 with Content-Type text/plain counts,
 * at most ROUTE_STS_BODY_MAX octets, ROUTE_STS_FETCH_MS in all. 0 with
 * the body in out (reset first), or -1 with the reason in why.
 */
int	 route_sts_fetch(const char *domain, const struct route_addr *addrs,
	    size_t n, const char *ca_file, struct sbuf *out, char *why,
	    size_t whysz);

#endif

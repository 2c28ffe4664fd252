/*
 * route_tlsa.c - DANE's DNS part (RFC 7672 §2.2): the security of a next
 * hop's MX RRset, of each MX host's address records, and its TLSA
 * records at _PORT._tcp.HOST.
 *
 * Every query goes with the AD bit set (RFC 6840 §5.7: a validating
 * resolver then says in AD whether the answer is secure; no DO, so no
 * signatures come back) and EDNS0, built with ares_create_query and sent
 * with ares_send on a channel of our own that knows only dns_servers:
 * c-ares takes an answer only from the server it asked, so AD is the
 * configured resolver's word. The answers are parsed here, with every
 * length checked against the reply's end (ares has no TLSA parser).
 *
 *  - MX RRset insecure (AD clear): DANE does not apply to the hop.
 *  - A host's A RRset insecure: DANE does not apply to that host (the
 *    address, and so the host, could be anyone's); its lookup failing
 *    skips the host, as the TLSA lookup's does.
 *  - TLSA: SERVFAIL or no answer -> the host is skipped (§2.2: a bogus
 *    or failed lookup may be an attack); NXDOMAIN/NODATA with AD, or any
 *    answer without AD -> opportunistic; records, none usable -> TLS
 *    without authentication; usable ones -> DANE.
 *
 * A [host] route (ROUTE_HOST) has no MX: the host's own records decide.
 * CNAMEs are followed by the resolver and not examined (the TLSA base
 * domain is always the MX host's name). Nothing is cached: the lookups are
 * made once per connection, and connections are reused.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "route_ares.h"
#include "route_tlsa.h"

#define ROUTE_TLSA_T_A		1
#define ROUTE_TLSA_T_MX		15
#define ROUTE_TLSA_C_IN		1
#define ROUTE_TLSA_EDNS		1232	/* octets: the DNS flag day's size */
#define ROUTE_TLSA_TRY_MS	1000	/* c-ares' first try; it doubles */
#define ROUTE_TLSA_TRIES	3
#define ROUTE_TLSA_RCODE_SERVFAIL 2
#define ROUTE_TLSA_RCODE_NX	3

/* One query and its answer. */
struct route_tlsa_q {
	struct route_tlsa_dns	*d;
	char			 name[300];
	int			 type;
	bool			 done;
	bool			 ok;		/* an answer came */
	int			 rcode;
	bool			 ad;
	size_t			 total;		/* TLSA records, all */
	struct route_tlsa_rr	 rr[ROUTE_TLSA_RR_MAX];
	size_t			 nrr;		/* usable ones */
	char			 why[96];	/* no answer: why */
};

struct route_tlsa_dns {
	struct route_ares	 ares;		/* our own channel */
	bool			 warned;	/* no dns_servers, said
						 * once */
};

/* ------------------------------------------------------------------ */
/* Replies. */

static int
route_tlsa_skip_name(const unsigned char *b, size_t len, size_t pos,
    size_t *out)
{
	while (pos < len) {
		if (b[pos] == 0) {
			*out = pos + 1;
			return 0;
		}
		if ((b[pos] & 0xc0) == 0xc0) {
			if (pos + 2 > len)
				return -1;
			*out = pos + 2;
			return 0;
		}
		if ((b[pos] & 0xc0) != 0)
			return -1;
		pos += 1 + (size_t)b[pos];
	}
	return -1;
}

/* route_tlsa_full_ok - is the data of a matching type 0 record what its
 * selector says, a whole DER certificate with a key (0) or a whole
 * SubjectPublicKeyInfo (1)? OpenSSL's SSL_dane_tlsa_add refuses any
 * other: kept, it would turn a secure RRset of unusable records into a
 * local error instead of TLS without authentication (RFC 7672 §2.2). */
static bool
route_tlsa_full_ok(uint8_t sel, const unsigned char *d, size_t dlen)
{
	const unsigned char	*p = d;
	X509			*x = NULL;
	EVP_PKEY		*k = NULL;
	bool			 ok;

	if (dlen == 0 || dlen > ROUTE_TLSA_DATA_MAX)
		return false;
	if (sel == 0) {
		ok = (x = d2i_X509(NULL, &p, (long)dlen)) != NULL &&
		    p == d + dlen && X509_get0_pubkey(x) != NULL;
		X509_free(x);
	} else {
		ok = (k = d2i_PUBKEY(NULL, &p, (long)dlen)) != NULL &&
		    p == d + dlen;
		EVP_PKEY_free(k);
	}
	ERR_clear_error();
	return ok;
}

/* route_tlsa_usable - RFC 7672 §3.1: DANE-TA(2) and DANE-EE(3) only, with
 * a selector and matching type OpenSSL knows and a digest of its size, or
 * whole data OpenSSL can read. */
static bool
route_tlsa_usable(uint8_t usage, uint8_t sel, uint8_t mt,
    const unsigned char *d, size_t dlen)
{
	if (usage != 2 && usage != 3)
		return false;
	if (sel > 1 || dlen == 0)
		return false;
	switch (mt) {
	case 0:
		return route_tlsa_full_ok(sel, d, dlen);
	case 1:
		return dlen == 32;
	case 2:
		return dlen == 64;
	default:
		return false;
	}
}

void
route_tlsa_rr_free(struct route_tlsa_rr *rr, size_t n)
{
	size_t	i;

	for (i = 0; rr != NULL && i < n; i++) {
		free(rr[i].data);
		rr[i].data = NULL;
	}
}

int
route_tlsa_parse(const unsigned char *b, size_t len,
    struct route_tlsa_rr *rr, size_t max, size_t *nrr, size_t *total,
    int *rcode, bool *ad)
{
	size_t		 pos = 12, rdlen, dlen;
	unsigned	 qd, an, type, class;

	*nrr = 0;
	*total = 0;
	if (b == NULL || len < 12)
		return -1;
	*rcode = b[3] & 0x0f;
	*ad = (b[3] & 0x20) != 0;
	qd = (unsigned)b[4] << 8 | b[5];
	an = (unsigned)b[6] << 8 | b[7];
	while (qd-- > 0) {
		if (route_tlsa_skip_name(b, len, pos, &pos) == -1 ||
		    pos + 4 > len)
			goto bad;
		pos += 4;
	}
	while (an-- > 0) {
		if (route_tlsa_skip_name(b, len, pos, &pos) == -1 ||
		    pos + 10 > len)
			goto bad;
		type = (unsigned)b[pos] << 8 | b[pos + 1];
		class = (unsigned)b[pos + 2] << 8 | b[pos + 3];
		rdlen = (size_t)b[pos + 8] << 8 | b[pos + 9];
		pos += 10;
		if (rdlen > len - pos)
			goto bad;
		if (type == ROUTE_TLSA_T_TLSA && class == ROUTE_TLSA_C_IN) {
			if (rdlen < 3)
				goto bad;
			(*total)++;
			dlen = rdlen - 3;
			if (*nrr < max && route_tlsa_usable(b[pos], b[pos + 1],
			    b[pos + 2], b + pos + 3, dlen)) {
				rr[*nrr].usage = b[pos];
				rr[*nrr].selector = b[pos + 1];
				rr[*nrr].mtype = b[pos + 2];
				rr[*nrr].len = (uint16_t)dlen;
				rr[*nrr].data = xmalloc(dlen);
				memcpy(rr[*nrr].data, b + pos + 3, dlen);
				(*nrr)++;
			}
		}
		pos += rdlen;
	}
	return 0;
bad:
	route_tlsa_rr_free(rr, *nrr);
	*nrr = 0;
	*total = 0;
	return -1;
}

static void
route_tlsa_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct route_tlsa_q	*q = arg;

	(void)timeouts;
	if (q->done)
		return;
	q->done = true;
	q->d->ares.pending--;
	if (status != ARES_SUCCESS || abuf == NULL || alen < 12) {
		/* c-ares retried timeouts already. */
		strl_copy(q->why, status == ARES_ECANCELLED ||
		    status == ARES_EDESTRUCTION ? "DNS timeout" :
		    ares_strerror(status), sizeof(q->why));
		return;
	}
	if (route_tlsa_parse(abuf, (size_t)alen, q->rr, ROUTE_TLSA_RR_MAX,
	    &q->nrr, &q->total, &q->rcode, &q->ad) == -1) {
		strl_copy(q->why, "malformed DNS reply", sizeof(q->why));
		return;
	}
	if (q->rcode != 0 && q->rcode != ROUTE_TLSA_RCODE_NX) {
		route_tlsa_rr_free(q->rr, q->nrr);
		q->nrr = 0;
		if (q->rcode == ROUTE_TLSA_RCODE_SERVFAIL)
			strl_copy(q->why, "SERVFAIL", sizeof(q->why));
		else
			(void)bsnprintf(q->why, sizeof(q->why), "DNS rcode "
			    "%d", q->rcode);
		return;
	}
	q->ok = true;
}

/* route_tlsa_send - one query with AD (and EDNS0) set. */
static void
route_tlsa_send(struct route_tlsa_dns *d, struct route_tlsa_q *q)
{
	unsigned char	*buf = NULL;
	int		 len = 0, rc;

	q->d = d;
	q->done = false;
	if ((rc = ares_create_query(q->name, ROUTE_TLSA_C_IN, q->type, 0, 1,
	    &buf, &len, ROUTE_TLSA_EDNS)) != ARES_SUCCESS || len < 12) {
		q->done = true;
		strl_copy(q->why, ares_strerror(rc), sizeof(q->why));
		if (buf != NULL)
			ares_free_string(buf);
		return;
	}
	buf[3] |= 0x20;		/* AD: RFC 6840 §5.7 */
	d->ares.pending++;
	ares_send(d->ares.ch, buf, len, route_tlsa_cb, q);	/* copies buf */
	ares_free_string(buf);
}

static void
route_tlsa_run(struct route_tlsa_dns *d, struct route_tlsa_q *qs, size_t nq,
    int64_t deadline)
{
	size_t	i;

	for (i = 0; i < nq; i++)
		route_tlsa_send(d, &qs[i]);
	route_ares_wait(&d->ares, deadline);
}

static void
route_tlsa_qs_free(struct route_tlsa_q *qs, size_t nq)
{
	size_t	i;

	for (i = 0; qs != NULL && i < nq; i++)
		route_tlsa_rr_free(qs[i].rr, qs[i].nrr);
	free(qs);
}

/* ------------------------------------------------------------------ */
/* The policy. */

static bool
route_tlsa_is_ip(const char *h)
{
	unsigned char	a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1 ||
	    h[0] == '[' || strncasecmp(h, "IPv6:", 5) == 0;
}

static int
route_tlsa_port(const struct route_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* route_tlsa_hosts - one entry a distinct (host, port) of addrs. */
static void
route_tlsa_hosts(struct route_tlsa *t, const struct route_addr *addrs,
    size_t n)
{
	size_t	i, k;
	int	port;

	t->h = xcalloc(n > 0 ? n : 1, sizeof(*t->h));
	for (i = 0; i < n; i++) {
		port = route_tlsa_port(&addrs[i]);
		for (k = 0; k < t->n; k++)
			if (strcasecmp(t->h[k].host, addrs[i].host) == 0 &&
			    t->h[k].port == port)
				break;
		if (k < t->n)
			continue;
		strl_copy(t->h[t->n].host, addrs[i].host,
		    sizeof(t->h[t->n].host));
		t->h[t->n].port = port;
		t->h[t->n].level = ROUTE_TLSA_MAY;
		t->n++;
	}
}

/* route_tlsa_mx_secure - is the hop's MX RRset (or its secure denial)
 * validated? 1 yes, 0 no, -1 the lookup failed (why). */
static int
route_tlsa_mx_secure(struct route_tlsa_dns *d, const char *name,
    int64_t deadline, char *why, size_t whysz)
{
	struct route_tlsa_q	*q = xcalloc(1, sizeof(*q));
	int			 rc;

	strl_copy(q->name, name, sizeof(q->name));
	q->type = ROUTE_TLSA_T_MX;
	route_tlsa_run(d, q, 1, deadline);
	if (!q->ok) {
		(void)bsnprintf(why, whysz, "%s", q->why);
		rc = -1;
	} else
		rc = q->ad ? 1 : 0;
	route_tlsa_qs_free(q, 1);
	return rc;
}

/* route_tlsa_lookup - each host's A (is it secure?) and TLSA, together. */
static void
route_tlsa_lookup(struct route_tlsa_dns *d, struct route_tlsa *t,
    int64_t deadline)
{
	struct route_tlsa_q	*qs, *qa, *qt;
	struct route_tlsa_host	*h;
	size_t			 i;

	qs = xcalloc(t->n * 2, sizeof(*qs));
	for (i = 0; i < t->n; i++) {
		qs[2 * i].type = ROUTE_TLSA_T_A;
		strl_copy(qs[2 * i].name, t->h[i].host, sizeof(qs->name));
		qs[2 * i + 1].type = ROUTE_TLSA_T_TLSA;
		(void)bsnprintf(qs[2 * i + 1].name, sizeof(qs->name),
		    "_%d._tcp.%s", t->h[i].port, t->h[i].host);
	}
	for (i = 0; i < t->n; i++)
		if (!route_tlsa_is_ip(t->h[i].host)) {
			route_tlsa_send(d, &qs[2 * i]);
			route_tlsa_send(d, &qs[2 * i + 1]);
		}
	route_ares_wait(&d->ares, deadline);
	for (i = 0; i < t->n; i++) {
		h = &t->h[i];
		qa = &qs[2 * i];
		qt = &qs[2 * i + 1];
		h->level = ROUTE_TLSA_MAY;
		if (route_tlsa_is_ip(h->host) || (qa->ok && !qa->ad))
			continue;	/* insecure address: no DANE */
		if (!qt->ok || !qa->ok) {
			/* A failed lookup may be an attack on either:
			 * never a reason to go without DANE (§2.2). */
			h->level = ROUTE_TLSA_SKIP;
			log_info("%s lookup for %s failed (%s): not using "
			    "MX host %s", !qt->ok ? "TLSA" : "address",
			    !qt->ok ? qt->name : qa->name,
			    !qt->ok ? qt->why : qa->why, h->host);
			continue;
		}
		if (!qt->ad || qt->total == 0)
			continue;	/* insecure, or securely none */
		if (qt->nrr == 0) {
			h->level = ROUTE_TLSA_ENCRYPT;
			continue;
		}
		h->level = ROUTE_TLSA_DANE;
		h->rr = xcalloc(qt->nrr, sizeof(*h->rr));
		memcpy(h->rr, qt->rr, qt->nrr * sizeof(*h->rr));
		h->nrr = qt->nrr;
		qt->nrr = 0;		/* the data is h's now */
	}
	route_tlsa_qs_free(qs, t->n * 2);
}

int
route_tlsa_policy(struct route_tlsa_dns *d, const struct route *r,
    const char *domain, struct route_addr *addrs, size_t *n,
    struct route_tlsa **out, char status[16], char *why, size_t whysz,
    int timeout_ms)
{
	struct route_tlsa		*t;
	const struct route_tlsa_host	*h;
	const char			*mxname = NULL;
	char				 first[128] = "";
	int64_t				 deadline;
	size_t				 i, k;
	int				 sec;

	deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	t = xcalloc(1, sizeof(*t));
	/* The A-labels: what DNS holds and a certificate names (the claim's
	 * domain is in that form already; a caller's may not be). */
	if (smtp_idn_to_ascii(domain != NULL ? domain : "", t->domain,
	    sizeof(t->domain), NULL) != 0)
		strl_copy(t->domain, domain != NULL ? domain : "",
		    sizeof(t->domain));
	domain = t->domain;
	route_tlsa_hosts(t, addrs, *n);
	*out = t;
	if (!d->ares.ch_ok) {
		if (!d->warned)
			log_warnx("TLS policy dane: dns_servers is empty, and "
			    "only a configured validating resolver is "
			    "trusted: delivering as with may");
		d->warned = true;
		return 0;
	}
	if (r->kind == ROUTE_MX)
		mxname = domain;
	else if (r->kind == ROUTE_MXHOST)
		mxname = r->host;
	if (mxname != NULL) {
		if (route_tlsa_is_ip(mxname))
			return 0;	/* an address literal: no DNS */
		/* RFC 7672 §2.2.1: an insecure MX RRset, no DANE. */
		sec = route_tlsa_mx_secure(d, mxname, deadline, first,
		    sizeof(first));
		if (sec == -1) {
			strl_copy(status, "4.4.3", 16);
			(void)bsnprintf(why, whysz, "MX lookup for %s through "
			    "the validating resolver failed: %s", mxname,
			    first);
			return -1;
		}
		if (sec == 0)
			return 0;
	}
	route_tlsa_lookup(d, t, deadline);
	for (i = k = 0; i < *n; i++) {
		h = route_tlsa_find(t, addrs[i].host);
		if (h != NULL && h->level == ROUTE_TLSA_SKIP) {
			if (first[0] == '\0')
				(void)bsnprintf(first, sizeof(first),
				    "_%d._tcp.%s", h->port, h->host);
			continue;
		}
		addrs[k++] = addrs[i];
	}
	*n = k;
	if (k == 0) {
		strl_copy(status, "4.4.3", 16);
		(void)bsnprintf(why, whysz, "TLSA lookup for %s failed: no "
		    "MX host left to try", first);
		return -1;
	}
	return 0;
}

const struct route_tlsa_host *
route_tlsa_find(const struct route_tlsa *t, const char *host)
{
	size_t	i;

	for (i = 0; t != NULL && i < t->n; i++)
		if (strcasecmp(t->h[i].host, host) == 0)
			return &t->h[i];
	return NULL;
}

void
route_tlsa_free(struct route_tlsa *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		route_tlsa_rr_free(t->h[i].rr, t->h[i].nrr);
		free(t->h[i].rr);
	}
	free(t->h);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Set-up. */

struct route_tlsa_dns *
route_tlsa_dns_new(const struct conf *c, char *err, size_t errsz)
{
	struct route_tlsa_dns	*d;

	d = xcalloc(1, sizeof(*d));
	if (c->dns_servers.n == 0)
		return d;		/* no resolver to trust */
	/* NOCHECKRESP: a SERVFAIL comes to us as it is (a validating
	 * resolver's word that the answer is bogus), not as "could not
	 * contact" after every server has said it. */
	if (route_ares_init(&d->ares, ARES_FLAG_NOCHECKRESP,
	    ROUTE_TLSA_TRY_MS, ROUTE_TLSA_TRIES, err, errsz) == -1) {
		free(d);
		return NULL;
	}
	/* The same servers route_dns.c uses, in the same order. */
	if (route_ares_servers(&d->ares, &c->dns_servers, err, errsz) == -1) {
		route_tlsa_dns_free(d);
		return NULL;
	}
	return d;
}

void
route_tlsa_dns_free(struct route_tlsa_dns *d)
{
	if (d == NULL)
		return;
	route_ares_free(&d->ares);
	free(d);
}

/*
 * fuzz_tlsa.c - DANE's bytes from the network: a DNS reply as the
 * validating resolver sends it, read by route_tlsa_parse (runner/
 * route_tlsa.c: the header's rcode and AD bit, which is all the MX and
 * address lookups use of it, and the TLSA records of the answer section),
 * and the usable records it keeps handed to OpenSSL's DANE as the client
 * does before a handshake (smtpc_dane_enable, runner/smtpc_dane.c:
 * SSL_dane_tlsa_add on an SSL of a context made once; no connection).
 *
 * Input: a flag byte, then the reply's bytes.
 *	bits 0-5: how many records to keep (0: ROUTE_TLSA_RR_MAX; else
 *	1..63, so the limit is met both below and above the real one).
 *	bit 6: no next-hop domain (else "dane.test", a second name).
 *
 * Checks beyond the sanitizers: rcode and AD are the header's; a
 * malformed reply keeps nothing; no more records kept than the limit,
 * than counted, than the answer section holds; each kept record is
 * DANE-TA(2) or DANE-EE(3), selector 0 or 1, a digest of its matching
 * type's size or a whole certificate/key within ROUTE_TLSA_DATA_MAX, and
 * its data is the reply's bytes; OpenSSL takes every record kept
 * (route_tlsa.c promises to pass no other: one it refuses would make a
 * secure but unusable RRset a local error instead of TLS without
 * authentication, RFC 7672 §2.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "fuzz.h"
#include "route_tlsa.h"

#define F_MAX		0x3f
#define F_NODOMAIN	0x40
#define RR_ROOM		64	/* above F_MAX: max is never too big */

static SSL_CTX	*ctx;

static void
bad(const char *what, size_t i)
{
	fprintf(stderr, "fuzz: tlsa: %s (record %zu)\n", what, i);
	abort();
}

/* check_rr - one kept record against RFC 7672 §3.1's rules. */
static void
check_rr(const struct route_tlsa_rr *r, size_t i, const uint8_t *p,
    size_t n)
{
	size_t	 want;

	if (r->usage != 2 && r->usage != 3)
		bad("usage", i);
	if (r->selector > 1)
		bad("selector", i);
	switch (r->mtype) {
	case 0:
		want = r->len;
		if (r->len == 0 || r->len > ROUTE_TLSA_DATA_MAX)
			bad("full data length", i);
		break;
	case 1:
		want = 32;
		break;
	case 2:
		want = 64;
		break;
	default:
		bad("matching type", i);
		return;
	}
	if (r->len != want || r->data == NULL || (size_t)r->len + 3 > n)
		bad("data length", i);
	/* The data was copied out of the reply: three octets of usage,
	 * selector and matching type before it. */
	if (memmem(p, n, r->data, r->len) == NULL)
		bad("data not from the reply", i);
}

/* dane - the kept records to OpenSSL, one by one and as the client does. */
static void
dane(struct route_tlsa_rr *rr, size_t nrr, bool domain)
{
	struct route_tlsa_host	 h;
	SSL			*ssl;
	size_t			 i;

	if (nrr == 0)
		return;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_dane_enable(ssl,
	    "mx.dane.test") <= 0)
		abort();
	for (i = 0; i < nrr; i++)
		if (SSL_dane_tlsa_add(ssl, rr[i].usage, rr[i].selector,
		    rr[i].mtype, rr[i].data, rr[i].len) <= 0)
			bad("OpenSSL refuses a kept record", i);
	SSL_free(ssl);
	memset(&h, 0, sizeof(h));
	strl_copy(h.host, "mx.dane.test", sizeof(h.host));
	h.port = 25;
	h.level = ROUTE_TLSA_DANE;
	h.rr = rr;
	h.nrr = nrr;
	if ((ssl = SSL_new(ctx)) == NULL)
		abort();
	if (smtpc_dane_enable(ssl, &h, domain ? "dane.test" : NULL) != 0)
		bad("smtpc_dane_enable failed", nrr);
	SSL_free(ssl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in		 in = { data, size };
	struct route_tlsa_rr	 rr[RR_ROOM];
	size_t			 max, nrr, total, i;
	unsigned		 an;
	uint8_t			 flags;
	int			 rcode, rc;
	bool			 ad;

	if (size > 65536)
		return 0;
	fuzz_init();
	if (ctx == NULL && ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_dane_enable(ctx) <= 0))
		abort();
	flags = fuzz_take_byte(&in);
	max = (flags & F_MAX) != 0 ? (size_t)(flags & F_MAX) :
	    ROUTE_TLSA_RR_MAX;
	memset(rr, 0, sizeof(rr));
	nrr = total = 99999;
	rcode = -1;
	ad = false;
	rc = route_tlsa_parse(in.p, in.n, rr, max, &nrr, &total, &rcode, &ad);
	if (rc != 0 && rc != -1)
		bad("return value", 0);
	if (in.n < 12) {
		if (rc != -1 || nrr != 0 || total != 0)
			bad("short reply taken", 0);
		return 0;
	}
	if (rcode != (in.p[3] & 0x0f) || ad != ((in.p[3] & 0x20) != 0))
		bad("rcode or AD not the header's", 0);
	if (rc == -1) {
		if (nrr != 0 || total != 0)
			bad("malformed reply kept records", 0);
		for (i = 0; i < RR_ROOM; i++)
			if (rr[i].data != NULL)
				bad("malformed reply left data", i);
		return 0;
	}
	an = (unsigned)in.p[6] << 8 | in.p[7];
	if (nrr > max || nrr > total || total > an)
		bad("counts", nrr);
	/* A TLSA record takes at least 1 + 10 + 3 octets. */
	if (total > (in.n - 12) / 14)
		bad("more records than octets", total);
	for (i = 0; i < nrr; i++)
		check_rr(&rr[i], i, in.p, in.n);
	for (i = nrr; i < RR_ROOM; i++)
		if (rr[i].data != NULL)
			bad("data past the count", i);
	dane(rr, nrr, (flags & F_NODOMAIN) == 0);
	route_tlsa_rr_free(rr, nrr);
	return 0;
}

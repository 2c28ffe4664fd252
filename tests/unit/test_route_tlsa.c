/*
 * test_route_tlsa.c - route_tlsa_parse(): TLSA records out of a DNS reply
 * (runner/route_tlsa.c), with hostile replies: every length past the
 * end, counts that lie, compression pointers, and which records RFC 7672
 * lets DANE use (a whole certificate or key only when OpenSSL can read
 * it, as SSL_dane_tlsa_add will).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "route_tlsa.h"
#include "tharness.h"

#define R_MAX	1024

/* A reply being built: header, one question, answers. */
struct reply {
	unsigned char	b[R_MAX];
	size_t		len;
};

static void
r_put(struct reply *r, const void *p, size_t n)
{
	if (r->len + n <= R_MAX) {
		memcpy(r->b + r->len, p, n);
		r->len += n;
	}
}

static void
r_u16(struct reply *r, unsigned v)
{
	unsigned char	x[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	r_put(r, x, 2);
}

/* r_begin - header (flags3: the 4th octet, AD 0x20, rcode), question
 * "_25._tcp.mx.example" TLSA IN. */
static void
r_begin(struct reply *r, unsigned flags3, unsigned an)
{
	static const unsigned char q[] =
	    "\003_25\004_tcp\002mx\007example";

	memset(r, 0, sizeof(*r));
	r_u16(r, 0x1234);
	r->b[r->len++] = 0x81;		/* QR, RD */
	r->b[r->len++] = (unsigned char)flags3;
	r_u16(r, 1);
	r_u16(r, an);
	r_u16(r, 0);
	r_u16(r, 0);
	r_put(r, q, sizeof(q));		/* with the root's 0 */
	r_u16(r, ROUTE_TLSA_T_TLSA);
	r_u16(r, 1);
}

/* r_tlsa - an answer: a pointer to the question's name, TLSA IN. */
static void
r_tlsa(struct reply *r, unsigned type, unsigned u, unsigned s, unsigned m,
    size_t dlen)
{
	unsigned char	d[300];

	memset(d, 0xab, sizeof(d));
	r_u16(r, 0xc00c);
	r_u16(r, type);
	r_u16(r, 1);
	r_u16(r, 0);
	r_u16(r, 300);		/* TTL */
	r_u16(r, (unsigned)(3 + dlen));
	r->b[r->len++] = (unsigned char)u;
	r->b[r->len++] = (unsigned char)s;
	r->b[r->len++] = (unsigned char)m;
	r_put(r, d, dlen < sizeof(d) ? dlen : sizeof(d));
}

static void
parse_table(struct t *t)
{
	static const struct {
		const char	*name;
		unsigned	 u, s, m;
		size_t		 dlen;
		size_t		 usable;
	} c[] = {
		{ "3 1 1", 3, 1, 1, 32, 1 },
		{ "3 0 1", 3, 0, 1, 32, 1 },
		{ "2 1 2", 2, 1, 2, 64, 1 },
		{ "2 0 0 (not a certificate)", 2, 0, 0, 200, 0 },
		{ "3 1 0 (not a key)", 3, 1, 0, 91, 0 },
		{ "1 1 1 (PKIX-EE)", 1, 1, 1, 32, 0 },
		{ "0 1 1 (PKIX-TA)", 0, 1, 1, 32, 0 },
		{ "4 1 1 (unknown usage)", 4, 1, 1, 32, 0 },
		{ "3 2 1 (unknown selector)", 3, 2, 1, 32, 0 },
		{ "3 1 3 (unknown matching)", 3, 1, 3, 32, 0 },
		{ "3 1 1 short digest", 3, 1, 1, 31, 0 },
		{ "3 1 2 SHA-256 length", 3, 1, 2, 32, 0 },
		{ "3 1 0 empty", 3, 1, 0, 0, 0 },
	};
	struct route_tlsa_rr	 rr[ROUTE_TLSA_RR_MAX];
	struct reply		 r;
	size_t			 i, n, total;
	int			 rcode;
	bool			 ad;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		r_begin(&r, 0x20, 1);
		r_tlsa(&r, ROUTE_TLSA_T_TLSA, c[i].u, c[i].s, c[i].m,
		    c[i].dlen);
		if (route_tlsa_parse(r.b, r.len, rr, ROUTE_TLSA_RR_MAX, &n,
		    &total, &rcode, &ad) != 0) {
			t_errorf(t, "%s: parse failed", c[i].name);
			continue;
		}
		if (n != c[i].usable || total != 1 || !ad || rcode != 0)
			t_errorf(t, "%s: got usable %zu total %zu ad %d rcode "
			    "%d, want %zu 1 1 0", c[i].name, n, total, ad,
			    rcode, c[i].usable);
		if (n == 1 && (rr[0].usage != c[i].u || rr[0].len !=
		    c[i].dlen || rr[0].data[0] != 0xab))
			t_errorf(t, "%s: record read wrong", c[i].name);
		route_tlsa_rr_free(rr, n);
	}
}

static void
parse_header(struct t *t)
{
	struct route_tlsa_rr	 rr[ROUTE_TLSA_RR_MAX];
	struct reply		 r;
	size_t			 n, total;
	int			 rcode;
	bool			 ad;

	/* No AD, NXDOMAIN, other types among the answers. */
	r_begin(&r, 0x03, 2);
	r_tlsa(&r, 5, 3, 1, 1, 32);		/* a CNAME-typed record */
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 3, 1, 1, 32);
	if (route_tlsa_parse(r.b, r.len, rr, ROUTE_TLSA_RR_MAX, &n, &total,
	    &rcode, &ad) != 0 || ad || rcode != 3 || n != 1 || total != 1)
		t_errorf(t, "no AD, NXDOMAIN: got ad %d rcode %d n %zu total "
		    "%zu", ad, rcode, n, total);
	route_tlsa_rr_free(rr, n);

	/* More records than room: the first max kept, all counted. */
	r_begin(&r, 0x20, 3);
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 3, 1, 1, 32);
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 2, 1, 1, 32);
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 3, 0, 1, 32);
	if (route_tlsa_parse(r.b, r.len, rr, 2, &n, &total, &rcode,
	    &ad) != 0 || n != 2 || total != 3)
		t_errorf(t, "max 2: got n %zu total %zu", n, total);
	route_tlsa_rr_free(rr, n);
}

static void
parse_hostile(struct t *t)
{
	struct route_tlsa_rr	 rr[ROUTE_TLSA_RR_MAX];
	struct reply		 r, cut;
	size_t			 n, total, k;
	int			 rcode;
	bool			 ad;

	/* Every truncation of a good reply fails or reads less, never
	 * past the end (ASan watches: the copy is exactly k long). */
	r_begin(&r, 0x20, 2);
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 3, 1, 1, 32);
	r_tlsa(&r, ROUTE_TLSA_T_TLSA, 2, 0, 0, 200);
	for (k = 0; k < r.len; k++) {
		unsigned char	*p = malloc(k > 0 ? k : 1);

		memcpy(p, r.b, k);
		if (route_tlsa_parse(p, k, rr, ROUTE_TLSA_RR_MAX, &n, &total,
		    &rcode, &ad) == 0)
			t_errorf(t, "cut at %zu of %zu: parsed", k, r.len);
		else if (n != 0)
			t_errorf(t, "cut at %zu: failed with %zu records", k,
			    n);
		free(p);
	}
	/* An answer count that claims more than there is. */
	cut = r;
	cut.b[7] = 3;
	if (route_tlsa_parse(cut.b, cut.len, rr, ROUTE_TLSA_RR_MAX, &n,
	    &total, &rcode, &ad) != -1 || n != 0)
		t_errorf(t, "ancount 3 of 2: parsed");
	/* A label with the reserved bits (0x40), an rdlength under 3. */
	cut = r;
	cut.b[12] = 0x40;
	if (route_tlsa_parse(cut.b, cut.len, rr, ROUTE_TLSA_RR_MAX, &n,
	    &total, &rcode, &ad) != -1)
		t_errorf(t, "label 0x40: parsed");
	r_begin(&cut, 0x20, 1);
	r_u16(&cut, 0xc00c);
	r_u16(&cut, ROUTE_TLSA_T_TLSA);
	r_u16(&cut, 1);
	r_u16(&cut, 0);
	r_u16(&cut, 300);
	r_u16(&cut, 2);
	r_u16(&cut, 0x0301);
	if (route_tlsa_parse(cut.b, cut.len, rr, ROUTE_TLSA_RR_MAX, &n,
	    &total, &rcode, &ad) != -1)
		t_errorf(t, "rdlength 2: parsed");
	if (route_tlsa_parse(NULL, 0, rr, ROUTE_TLSA_RR_MAX, &n, &total,
	    &rcode, &ad) != -1)
		t_errorf(t, "NULL: parsed");
}

/* r_full - an answer "U S 0" with data d (a certificate or key). */
static void
r_full(struct reply *r, unsigned u, unsigned s, const unsigned char *d,
    size_t dlen)
{
	r_u16(r, 0xc00c);
	r_u16(r, ROUTE_TLSA_T_TLSA);
	r_u16(r, 1);
	r_u16(r, 0);
	r_u16(r, 300);
	r_u16(r, (unsigned)(3 + dlen));
	r->b[r->len++] = (unsigned char)u;
	r->b[r->len++] = (unsigned char)s;
	r->b[r->len++] = 0;
	r_put(r, d, dlen);
}

static void
parse_full(struct t *t)
{
	struct route_tlsa_rr	 rr[ROUTE_TLSA_RR_MAX];
	struct reply		 r;
	EVP_PKEY		*k = EVP_EC_gen("P-256");
	X509			*x = X509_new();
	unsigned char		*spki = NULL, *cert = NULL, extra[400];
	int			 ns, nc;
	size_t			 n, total;
	int			 rcode;
	bool			 ad;

	if (k == NULL || x == NULL || X509_set_pubkey(x, k) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"mx.example", -1, -1,
	    0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_sign(x, k, EVP_sha256()) == 0 ||
	    (ns = i2d_PUBKEY(k, &spki)) <= 0 || (nc = i2d_X509(x, &cert)) <= 0 ||
	    (size_t)ns + 1 > sizeof(extra)) {
		t_errorf(t, "OpenSSL made no key or certificate");
		goto out;
	}
	/* Whole: kept. One octet short, one octet more: unusable. */
	memcpy(extra, spki, (size_t)ns);
	extra[ns] = 0;
	r_begin(&r, 0x20, 4);
	r_full(&r, 3, 1, spki, (size_t)ns);
	r_full(&r, 2, 0, cert, (size_t)nc);
	r_full(&r, 3, 1, spki, (size_t)ns - 1);
	r_full(&r, 3, 1, extra, (size_t)ns + 1);
	if (route_tlsa_parse(r.b, r.len, rr, ROUTE_TLSA_RR_MAX, &n, &total,
	    &rcode, &ad) != 0 || n != 2 || total != 4 ||
	    rr[0].len != (size_t)ns || rr[1].len != (size_t)nc)
		t_errorf(t, "full key and certificate: got n %zu total %zu",
		    n, total);
	route_tlsa_rr_free(rr, n);
	/* A certificate's bytes under selector 1, a key's under 0. */
	r_begin(&r, 0x20, 2);
	r_full(&r, 3, 1, cert, (size_t)nc);
	r_full(&r, 3, 0, spki, (size_t)ns);
	if (route_tlsa_parse(r.b, r.len, rr, ROUTE_TLSA_RR_MAX, &n, &total,
	    &rcode, &ad) != 0 || n != 0 || total != 2)
		t_errorf(t, "swapped selectors: got n %zu total %zu", n,
		    total);
	route_tlsa_rr_free(rr, n);
out:
	OPENSSL_free(spki);
	OPENSSL_free(cert);
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
	T_RUN(parse_table);
	T_RUN(parse_header);
	T_RUN(parse_hostile);
	T_RUN(parse_full);
	T_EXIT();
}

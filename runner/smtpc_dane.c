/*
 * smtpc_dane.c - DANE's TLS part for the ESMTP client (RFC 7672 §3, RFC
 * 6698): the TLSA records route_tlsa.c found for the host connected to
 * go to OpenSSL's DANE verifier (SSL_dane_enable, SSL_dane_tlsa_add),
 * which checks the server's chain against them during the handshake.
 *
 * DANE-EE(3): the server's own certificate or key must match; its names
 * and dates are not checked (§3.1.1, DANE_FLAG_NO_DANE_EE_NAMECHECKS).
 * DANE-TA(2): a certificate of the chain the server sends must match, and
 * the chain up to it must hold and name the TLSA base domain (the MX
 * host) or the next-hop domain (§3.2.2). The MX host is the SNI name.
 */
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "route_tlsa.h"

enum route_tlsa_level
smtpc_dane_level(const struct route_tlsa *t, const char *host,
    const struct route_tlsa_host **hp)
{
	const struct route_tlsa_host	*h = route_tlsa_find(t, host);

	*hp = h;
	return h != NULL ? h->level : ROUTE_TLSA_MAY;
}

int
smtpc_dane_enable(SSL *ssl, const struct route_tlsa_host *h,
    const char *domain)
{
	size_t	i, added = 0;

	/* Idempotent on the shared context: the digests once. */
	if (SSL_CTX_dane_enable(SSL_get_SSL_CTX(ssl)) <= 0)
		return -1;
	if (SSL_dane_enable(ssl, h->host) <= 0)
		return -1;
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (domain != NULL && domain[0] != '\0' &&
	    strcasecmp(domain, h->host) != 0 &&
	    SSL_add1_host(ssl, domain) != 1)
		return -1;
	for (i = 0; i < h->nrr; i++)
		if (SSL_dane_tlsa_add(ssl, h->rr[i].usage, h->rr[i].selector,
		    h->rr[i].mtype, h->rr[i].data, h->rr[i].len) > 0)
			added++;
	/* route_tlsa.c passes only records OpenSSL takes: none taken is a
	 * local problem, not a reason to verify nothing. */
	return added > 0 ? 0 : -1;
}

bool
smtpc_dane_matched(SSL *ssl, char *buf, size_t bufsz)
{
	uint8_t		 usage, sel, mt;
	const unsigned char *data;
	size_t		 dlen;
	int		 depth;

	if ((depth = SSL_get0_dane_authority(ssl, NULL, NULL)) < 0)
		return false;
	if (SSL_get0_dane_tlsa(ssl, &usage, &sel, &mt, &data, &dlen) < 0)
		return false;
	(void)bsnprintf(buf, bufsz, "%u %u %u depth %d", usage, sel, mt,
	    depth);
	return true;
}

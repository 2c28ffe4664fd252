/*
 * smtp_idn.c - international domain names (RFC 5890, RFC 5891) as the
 * DNS and every comparison want them: A-labels.
 *
 * A domain may reach us in UTF-8 (U-labels: an SMTPUTF8 address, a line
 * of routes_file, an ETRN argument) or in ASCII with A-labels
 * ("xn--bcher-kva.test"), in any case. DNS only knows the second form,
 * and "bücher.test" must match "XN--BCHER-KVA.test" wherever domains are
 * compared (relay_domains, hold_domains, routes_file, users_file, ETRN,
 * the queue's domain index). So each domain is turned into its lookup
 * form once, here, and compared in that form.
 *
 * The conversion is libidn2's idn2_lookup_u8() with IDN2_NONTRANSITIONAL:
 * IDNA2008 (RFC 5891 §5) after the UTS #46 mapping in its non-transitional
 * form, as browsers and Postfix's smtputf8 support (ICU's UTS #46 with
 * UIDNA_NONTRANSITIONAL_TO_ASCII) do: upper case and full-width forms are
 * mapped, NFC is applied, "ß" stays "ß" (xn--...) instead of becoming
 * "ss". queue/queue_key.c makes the queue's domain keys with the same
 * call and flags (the queue may not link smtp/); test_smtp_idn checks
 * that the two agree.
 *
 * An ASCII domain is only lower-cased: it is either already in lookup
 * form or is no IDN at all, and checking the A-labels of every ASCII
 * name would refuse mail that reaches us today for the sake of names
 * nobody can register.
 */
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

bool
smtp_idn_has8(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

int
smtp_idn_to_ascii(const char *domain, char *out, size_t outsz,
    const char **why)
{
	const unsigned char	*p;
	uint32_t		 cp;
	uint8_t			*a = NULL;
	size_t			 n, len, i;
	int			 rc;

	if (why != NULL)
		*why = "ok";
	if (outsz > 0)
		out[0] = '\0';
	if (domain == NULL) {
		if (why != NULL)
			*why = "no domain";
		return SMTP_IDN_E_IDNA;
	}
	len = strlen(domain);
	if (!smtp_idn_has8(domain)) {
		if (len > SMTP_DOMAIN_MAX || len >= outsz) {
			if (why != NULL)
				*why = "domain too long";
			return SMTP_IDN_E_LONG;
		}
		memcpy(out, domain, len + 1);
		strl_lower(out);
		return SMTP_IDN_OK;
	}
	/* libidn2 wants well-formed UTF-8 (RFC 3629); say so ourselves. */
	p = (const unsigned char *)domain;
	for (i = 0; i < len; i += n)
		if ((n = smtp_addr_utf8_len(p + i, len - i, &cp)) == 0) {
			if (why != NULL)
				*why = "not valid UTF-8";
			return SMTP_IDN_E_UTF8;
		}
	if (len > SMTP_IDN_IN_MAX) {
		if (why != NULL)
			*why = "domain too long";
		return SMTP_IDN_E_LONG;
	}
	rc = idn2_lookup_u8(p, &a, IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		if (why != NULL)
			*why = idn2_strerror(rc);
		return rc == IDN2_TOO_BIG_DOMAIN || rc == IDN2_TOO_BIG_LABEL ?
		    SMTP_IDN_E_LONG : SMTP_IDN_E_IDNA;
	}
	len = strlen((const char *)a);
	if (len > SMTP_DOMAIN_MAX || len >= outsz) {
		idn2_free(a);
		if (why != NULL)
			*why = "domain too long in A-label form";
		return SMTP_IDN_E_LONG;
	}
	memcpy(out, a, len + 1);
	idn2_free(a);
	strl_lower(out);
	return SMTP_IDN_OK;
}

int
smtp_idn_addr_ascii(const char *addr, char *out, size_t outsz,
    const char **why)
{
	char		 dom[SMTP_DOMAIN_MAX + 1];
	const char	*at;
	size_t		 nlocal;
	int		 rc;

	if (why != NULL)
		*why = "ok";
	if (outsz > 0)
		out[0] = '\0';
	if (addr == NULL || (at = strrchr(addr, '@')) == NULL ||
	    !smtp_idn_has8(at + 1)) {
		if (!strl_copy(out, addr != NULL ? addr : "", outsz)) {
			if (why != NULL)
				*why = "address too long";
			return SMTP_IDN_E_LONG;
		}
		return SMTP_IDN_OK;
	}
	if (at[1] == '[') {		/* an address literal is ASCII */
		if (why != NULL)
			*why = "8-bit address literal";
		return SMTP_IDN_E_IDNA;
	}
	if ((rc = smtp_idn_to_ascii(at + 1, dom, sizeof(dom), why)) != 0)
		return rc;
	nlocal = (size_t)(at - addr);
	if (nlocal + 1 + strlen(dom) >= outsz) {
		if (why != NULL)
			*why = "address too long";
		return SMTP_IDN_E_LONG;
	}
	memcpy(out, addr, nlocal);
	out[nlocal] = '@';
	memcpy(out + nlocal + 1, dom, strlen(dom) + 1);
	return SMTP_IDN_OK;
}

bool
smtp_idn_local_has8(const char *addr)
{
	const char	*at;
	size_t		 i, n;

	if (addr == NULL)
		return false;
	at = strrchr(addr, '@');
	n = at != NULL ? (size_t)(at - addr) : strlen(addr);
	for (i = 0; i < n; i++)
		if ((unsigned char)addr[i] >= 0x80)
			return true;
	return false;
}

bool
smtp_idn_eq(const char *a, const char *b)
{
	char	x[SMTP_DOMAIN_MAX + 1], y[SMTP_DOMAIN_MAX + 1];

	if (a == NULL || b == NULL)
		return false;
	if (smtp_idn_to_ascii(a, x, sizeof(x), NULL) != 0 ||
	    smtp_idn_to_ascii(b, y, sizeof(y), NULL) != 0)
		return false;
	return strcmp(x, y) == 0;
}

int
smtp_idn_domain(const char *in, char *out, size_t outsz, const char **why)
{
	size_t	dot;
	int	rc;

	if (why != NULL)
		*why = "ok";
	if (outsz > 0)
		out[0] = '\0';
	if (in == NULL || outsz < 2) {
		if (why != NULL)
			*why = "no room";
		return SMTP_IDN_E_LONG;
	}
	dot = in[0] == '.';
	if (!smtp_domain_valid(in + dot, SMTP_ADDR_UTF8)) {
		if (why != NULL)
			*why = "not a domain name";
		return SMTP_IDN_E_SYNTAX;
	}
	out[0] = '.';
	if ((rc = smtp_idn_to_ascii(in + dot, out + dot, outsz - dot,
	    why)) != 0)
		out[0] = '\0';
	return rc;
}

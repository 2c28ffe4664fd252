/*
 * queue_key.c - key encoding: big-endian integers, queue ids, domain keys.
 *
 * Big-endian keys make LMDB's byte order numeric order, so the due index
 * is in time order and ids in arrival order. Queue ids print as 11
 * characters of Crockford's base32 (no I, L, O, U), most significant first,
 * so the text sorts like the number.
 *
 * Domain keys are the lookup form of the domain: lower case and, for an
 * international domain, A-labels ("bücher.test" is "xn--bcher-kva.test"),
 * so that mail for either form is one key range and a flush (ETRN, ATRN,
 * `postern flush --domain`) given either form finds it all. The A-labels
 * come from libidn2's idn2_lookup_u8() with IDN2_NONTRANSITIONAL, the
 * call and flags of smtp/smtp_idn.c (which the queue may not link: it
 * knows nothing above it); test_smtp_idn checks that both agree. A domain
 * libidn2 refuses is keyed as it is, lower-cased: the programs refuse
 * such domains before they reach the queue, and a key must never fail.
 */
#include <idn2.h>
#include <stdbool.h>
#include <string.h>

#include "queue_int.h"

static const char queue_key_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void
queue_key_rcpt(uint8_t k[QUEUE_KEY_RCPT], uint64_t id, uint32_t idx)
{
	queue_be64_put(k, id);
	queue_be32_put(k + 8, idx);
}

void
queue_key_msub(uint8_t k[QUEUE_KEY_MSUB], uint64_t id, uint8_t kind,
    uint32_t n)
{
	queue_be64_put(k, id);
	k[8] = kind;
	queue_be32_put(k + 9, n);
}

void
queue_key_due(uint8_t k[QUEUE_KEY_DUE], int64_t t, uint64_t id,
    uint32_t idx)
{
	queue_be64_put(k, (uint64_t)(t < 0 ? 0 : t));
	queue_be64_put(k + 8, id);
	queue_be32_put(k + 16, idx);
}

void
queue_id_format(uint64_t id, char buf[QUEUE_ID_LEN + 1])
{
	int	i;

	for (i = QUEUE_ID_LEN - 1; i >= 0; i--) {
		buf[i] = queue_key_b32[id & 31];
		id >>= 5;
	}
	buf[QUEUE_ID_LEN] = '\0';
}

int
queue_id_parse(const char *s, uint64_t *id)
{
	uint64_t	v = 0;
	size_t		i;
	const char	*p;
	char		c;

	if (strlen(s) != QUEUE_ID_LEN)
		return QUEUE_E_INVAL;
	for (i = 0; i < QUEUE_ID_LEN; i++) {
		c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		/* Crockford: O reads as 0, I and L as 1. */
		if (c == 'O')
			c = '0';
		else if (c == 'I' || c == 'L')
			c = '1';
		if (c == '\0' || (p = strchr(queue_key_b32, c)) == NULL)
			return QUEUE_E_INVAL;
		v = v << 5 | (uint64_t)(p - queue_key_b32);
	}
	*id = v;
	return 0;
}

/* queue_key_copy - a bounded copy (the queue has no strl_copy). */
static bool
queue_key_copy(char *dst, const char *src, size_t dstsz)
{
	size_t	len = strlen(src);

	if (dstsz == 0)
		return false;
	if (len >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

/*
 * queue_key_idn - domain (".parent" too) as A-labels into buf when it
 * holds an 8-bit octet and libidn2 takes it; else domain itself.
 */
static const char *
queue_key_idn(const char *domain, char *buf, size_t bufsz)
{
	const char	*d = domain, *p;
	uint8_t		*a = NULL;
	size_t		 len, dot;

	for (p = domain; *p != '\0' && (unsigned char)*p < 0x80; p++)
		;
	if (*p == '\0')
		return domain;
	dot = *d == '.';
	d += dot;
	if (*d == '[' ||
	    idn2_lookup_u8((const uint8_t *)d, &a, IDN2_NONTRANSITIONAL) !=
	    IDN2_OK)
		return domain;
	len = strlen((const char *)a);
	if (dot + len + 1 > bufsz) {
		idn2_free(a);
		return domain;
	}
	buf[0] = '.';
	memcpy(buf + dot, a, len + 1);
	idn2_free(a);
	return buf;
}

void
queue_domain_of(const char *addr, char *buf, size_t bufsz)
{
	char		 a[QUEUE_ADDR_MAX + 2];
	const char	*k;

	const char	*at = strrchr(addr, '@');
	size_t		 i;

	if (bufsz == 0)
		return;
	buf[0] = '\0';
	if (at == NULL)
		return;
	for (i = 0; at[1 + i] != '\0' && i + 1 < bufsz; i++) {
		char c = at[1 + i];

		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	buf[i] = '\0';
	if ((k = queue_key_idn(buf, a, sizeof(a))) != buf)
		(void)queue_key_copy(buf, k, bufsz);
}

/*
 * "mail.Example.ORG" -> "org.example.mail". Address literals ("[1.2.3.4]")
 * are kept as they are: they have no parent domains.
 */
size_t
queue_key_dom(const char *domain, char *buf, size_t bufsz)
{
	char	a[QUEUE_ADDR_MAX + 2];
	size_t	len, o = 0, end, start, i;

	domain = queue_key_idn(domain, a, sizeof(a));
	len = strlen(domain);

	if (len == 0 || len + 1 > bufsz)
		return 0;
	if (domain[0] == '[') {
		memcpy(buf, domain, len + 1);
		return len;
	}
	end = len;
	while (end > 0) {
		start = end;
		while (start > 0 && domain[start - 1] != '.')
			start--;
		if (o > 0)
			buf[o++] = '.';
		for (i = start; i < end; i++) {
			char c = domain[i];

			buf[o++] = (c >= 'A' && c <= 'Z') ?
			    (char)(c - 'A' + 'a') : c;
		}
		if (start == 0)
			break;
		end = start - 1;
	}
	buf[o] = '\0';
	return o;
}

void
queue_key_dom_decode(const char *key, size_t len, char *buf, size_t bufsz)
{
	char	tmp[QUEUE_ADDR_MAX + 1];

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, key, len);
	tmp[len] = '\0';
	/* Reversing the labels is its own inverse. */
	if (queue_key_dom(tmp, buf, bufsz) == 0 && bufsz > 0)
		buf[0] = '\0';
}

const char *
queue_state_name(int state)
{
	switch (state) {
	case QRCPT_QUEUED:	return "queued";
	case QRCPT_ACTIVE:	return "active";
	case QRCPT_DEFERRED:	return "deferred";
	case QRCPT_HELD:	return "held";
	case QRCPT_DELIVERED:	return "delivered";
	case QRCPT_FAILED:	return "failed";
	}
	return "unknown";
}

/*
 * smtp_addr.c - RFC 5321 §4.1.2 mailbox, path and domain syntax.
 *
 * Everything a peer sends as an address comes through here before it
 * reaches the queue, so the parser is strict and never reads past `len`:
 *
 *	Path        = "<" [ A-d-l ":" ] Mailbox ">"
 *	A-d-l       = At-domain *( "," At-domain )	(accepted, dropped)
 *	Mailbox     = Local-part "@" ( Domain / address-literal )
 *	Local-part  = Dot-string / Quoted-string
 *	Domain      = sub-domain *( "." sub-domain )
 *	sub-domain  = Let-dig [ Ldh-str ]
 *
 * With SMTP_ADDR_UTF8 (RFC 6531 §3.3) atext and qtextSMTP also take
 * UTF8-non-ascii and a sub-domain may be a U-label; the UTF-8 must be
 * well formed (RFC 3629: no overlongs, surrogates or code points past
 * U+10FFFF). Without it any byte >= 0x80 is SMTP_ADDR_E_UTF8 (§2.4).
 *
 * Choices where the RFC leaves room:
 * - The §4.5.3.1.3 path limit counts the path as sent, source route and
 *   "<>" included; a bare path is counted as if it had its brackets.
 * - A label is at most 63 octets; a U-label's limit applies to its
 *   A-label ("xn--" + Punycode, RFC 3492), which is what reaches the DNS.
 *   A label over 63 is a bad domain, not a §4.5.3.1 "too long".
 * - Address literals: IPv4 dotted quads (Snum may have leading zeros, as
 *   the grammar allows) and "IPv6:" (any case) checked by inet_pton().
 *   General-address-literals name no tag anyone has standardised, so they
 *   are refused.
 * - An empty quoted local part ("") is valid per the grammar and kept.
 * - A bare path (SMTP_ADDR_BARE_OK) follows the same grammar as one in
 *   brackets, source route included.
 * - On failure *end is not written and out holds an empty address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp.h"

#define SMTP_ADDR_LABEL_MAX	63	/* RFC 1035 §2.3.4 */

/*
 * smtp_addr_utf8_len - length of the well-formed UTF-8 sequence at p (n
 * bytes available), storing its code point in *cp; 0 when ill-formed.
 * Also what strl_esc_unit() and sbuf_json_str() check output with.
 */
size_t
smtp_addr_utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t	 c, min;
	size_t		 need, i;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2)		/* continuation byte, or overlong C0/C1 */
		return 0;
	if (c < 0xe0) {
		need = 1;
		c &= 0x1f;
		min = 0x80;
	} else if (c < 0xf0) {
		need = 2;
		c &= 0x0f;
		min = 0x800;
	} else if (c < 0xf5) {
		need = 3;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < need + 1)
		return 0;
	for (i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need + 1;
}

/*
 * smtp_addr_8bit - check the byte >= 0x80 at p: SMTP_ADDR_E_UTF8 unless
 * SMTP_ADDR_UTF8 is set and a well-formed sequence starts there. On
 * success *n is its length.
 */
static int
smtp_addr_8bit(const char *p, const char *e, int flags, size_t *n)
{
	uint32_t	 cp;

	if ((flags & SMTP_ADDR_UTF8) == 0)
		return SMTP_ADDR_E_UTF8;
	*n = smtp_addr_utf8_len((const unsigned char *)p, (size_t)(e - p),
	    &cp);
	return *n == 0 ? SMTP_ADDR_E_UTF8 : SMTP_ADDR_OK;
}

static bool
smtp_addr_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* smtp_addr_is_atext - RFC 5322 §3.2.3 atext, ASCII part. */
static bool
smtp_addr_is_atext(int c)
{
	return smtp_addr_is_alnum(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* smtp_addr_caseeq - ASCII case-insensitive compare of n bytes. */
static bool
smtp_addr_caseeq(const char *a, const char *b, size_t n)
{
	size_t	 i;
	int	 ca, cb;

	for (i = 0; i < n; i++) {
		ca = (unsigned char)a[i];
		cb = (unsigned char)b[i];
		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
	}
	return true;
}

/* smtp_addr_puny_adapt - RFC 3492 §6.1 bias adaptation. */
static uint64_t
smtp_addr_puny_adapt(uint64_t delta, uint64_t npoints, bool first)
{
	uint64_t	 k;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / npoints;
	for (k = 0; delta > ((36 - 1) * 26) / 2; k += 36)
		delta /= 36 - 1;
	return k + (36 * delta) / (delta + 38);
}

/*
 * smtp_addr_alabel_len - length of the A-label for the U-label at s (n
 * octets, already checked to be UTF-8): "xn--" plus its RFC 3492 §6.3
 * encoding. Only the length is computed, not the text.
 */
static size_t
smtp_addr_alabel_len(const char *s, size_t n)
{
	uint32_t	 cps[SMTP_DOMAIN_MAX], c, m, cur;
	uint64_t	 delta, bias, q, k, t;
	size_t		 ncp = 0, b = 0, h, out, i, l;

	for (i = 0; i < n && ncp < SMTP_DOMAIN_MAX; i += l) {
		l = smtp_addr_utf8_len((const unsigned char *)s + i, n - i,
		    &c);
		if (l == 0)
			return SIZE_MAX;
		cps[ncp++] = c;
		if (c < 0x80)
			b++;
	}
	out = b + (b > 0);		/* basic code points and "-" */
	cur = 0x80;
	delta = 0;
	bias = 72;
	for (h = b; h < ncp; cur++, delta++) {
		m = UINT32_MAX;
		for (i = 0; i < ncp; i++)
			if (cps[i] >= cur && cps[i] < m)
				m = cps[i];
		delta += (uint64_t)(m - cur) * (h + 1);
		cur = m;
		for (i = 0; i < ncp; i++) {
			if (cps[i] < cur) {
				delta++;
				continue;
			}
			if (cps[i] != cur)
				continue;
			for (q = delta, k = 36;; k += 36) {
				t = k <= bias ? 1 : k >= bias + 26 ? 26 :
				    k - bias;
				if (q < t)
					break;
				out++;
				q = (q - t) / (36 - t);
			}
			out++;
			bias = smtp_addr_puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
	}
	return 4 + out;
}

/* smtp_addr_label_ok - one sub-domain, s to e: Let-dig [Ldh-str]. */
static bool
smtp_addr_label_ok(const char *s, const char *e, bool ulabel)
{
	size_t	 n = (size_t)(e - s);

	if (n == 0 || s[0] == '-' || e[-1] == '-')
		return false;
	if (n > SMTP_DOMAIN_MAX)
		return false;
	if (ulabel)
		return smtp_addr_alabel_len(s, n) <= SMTP_ADDR_LABEL_MAX;
	return n <= SMTP_ADDR_LABEL_MAX;
}

/*
 * smtp_addr_scan_domain - check the Domain starting at s, stopping at the
 * first byte that cannot be part of one (or at e); *stop is set there.
 * *utf8 is set when a U-label was seen.
 */
static int
smtp_addr_scan_domain(const char *s, const char *e, int flags,
    const char **stop, bool *utf8)
{
	const char	*p = s, *label = s;
	bool		 ulabel = false;
	size_t		 n;
	int		 rc, c;

	for (;;) {
		c = p < e ? (unsigned char)*p : -1;
		if (c >= 0 && (smtp_addr_is_alnum(c) || c == '-')) {
			p++;
			continue;
		}
		if (c >= 0x80) {
			if ((rc = smtp_addr_8bit(p, e, flags, &n)) != 0)
				return rc;
			p += n;
			ulabel = true;
			*utf8 = true;
			continue;
		}
		if (!smtp_addr_label_ok(label, p, ulabel))
			return SMTP_ADDR_E_DOMAIN;
		if (c != '.')
			break;
		label = ++p;
		ulabel = false;
	}
	if (p - s > SMTP_DOMAIN_MAX)
		return SMTP_ADDR_E_LONG;
	*stop = p;
	return SMTP_ADDR_OK;
}

/*
 * smtp_addr_scan_local - check the Local-part starting at s (p < e) and
 * set *stop just past it. Whatever follows is the caller's to judge.
 */
static int
smtp_addr_scan_local(const char *s, const char *e, int flags,
    const char **stop, bool *utf8)
{
	const char	*p = s, *atom = s;
	size_t		 n;
	int		 rc, c;

	if (*p == '"') {
		/* Quoted-string: qtextSMTP and quoted-pairSMTP. */
		for (p++;; p++) {
			if (p >= e)
				return SMTP_ADDR_E_LOCAL;	/* unclosed */
			c = (unsigned char)*p;
			if (c == '"')
				break;
			if (c == '\\') {
				if (++p >= e)
					return SMTP_ADDR_E_LOCAL;
				c = (unsigned char)*p;
				if (c >= 0x80 && (flags & SMTP_ADDR_UTF8) == 0)
					return SMTP_ADDR_E_UTF8;
				/* %d92 %d32-126: RFC 6531 adds no 8-bit here */
				if (c < 32 || c > 126)
					return SMTP_ADDR_E_LOCAL;
			} else if (c >= 0x80) {
				if ((rc = smtp_addr_8bit(p, e, flags, &n)) != 0)
					return rc;
				p += n - 1;
				*utf8 = true;
			} else if (c < 32 || c == 127)
				return SMTP_ADDR_E_LOCAL;
		}
		*stop = p + 1;
		return SMTP_ADDR_OK;
	}

	/* Dot-string: atoms of atext, single dots between them. */
	for (;;) {
		c = p < e ? (unsigned char)*p : -1;
		if (c >= 0x80) {
			if ((rc = smtp_addr_8bit(p, e, flags, &n)) != 0)
				return rc;
			p += n;
			*utf8 = true;
		} else if (c >= 0 && smtp_addr_is_atext(c))
			p++;
		else if (c == '.') {
			if (p == atom)		/* ".a", "a..b" */
				return SMTP_ADDR_E_LOCAL;
			atom = ++p;
		} else
			break;
	}
	if (p == atom)			/* empty, or "a." */
		return SMTP_ADDR_E_LOCAL;
	*stop = p;
	return SMTP_ADDR_OK;
}

/*
 * smtp_addr_scan_literal - an address-literal starting at the "[" at s:
 * find its "]" among dcontent bytes and check what it holds.
 */
static int
smtp_addr_scan_literal(const char *s, const char *e, int flags,
    const char **stop)
{
	const char	*p;
	int		 c;

	for (p = s + 1; p < e && *p != ']'; p++) {
		c = (unsigned char)*p;
		if (c >= 0x80)
			return (flags & SMTP_ADDR_UTF8) ? SMTP_ADDR_E_DOMAIN :
			    SMTP_ADDR_E_UTF8;
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return SMTP_ADDR_E_DOMAIN;
	}
	if (p >= e)
		return SMTP_ADDR_E_DOMAIN;
	p++;
	if (p - s > SMTP_DOMAIN_MAX)
		return SMTP_ADDR_E_LONG;
	if (!smtp_addr_literal_valid(s, (size_t)(p - s)))
		return SMTP_ADDR_E_DOMAIN;
	*stop = p;
	return SMTP_ADDR_OK;
}

/*
 * smtp_addr_scan_adl - the A-d-l of a source route, p at its first "@";
 * *stop is set past the ":" that ends it. Its domains are checked, then
 * forgotten (RFC 5321 §4.1.2, App. F.2).
 */
static int
smtp_addr_scan_adl(const char *p, const char *e, int flags, bool bracket,
    const char **stop)
{
	bool	 first = true, u8 = false;
	int	 rc;

	for (;;) {
		if ((rc = smtp_addr_scan_domain(p + 1, e, flags, &p, &u8)) != 0)
			return rc;
		if (p < e && *p == ':') {
			*stop = p + 1;
			return SMTP_ADDR_OK;
		}
		if (p < e && *p == ',' && p + 1 < e && p[1] == '@') {
			p++;
			first = false;
			continue;
		}
		/* "<@example.org>" is a mailbox with no local part. */
		if (first && (bracket ? (p < e && *p == '>') :
		    (p >= e || *p == ' ')))
			return SMTP_ADDR_E_LOCAL;
		return SMTP_ADDR_E_SYNTAX;
	}
}

int
smtp_addr_parse(const char *s, size_t len, int flags, struct smtp_addr *out,
    const char **end)
{
	const char	*p, *e, *local, *lend, *dom, *dend;
	bool		 bracket = false, route = false, u8 = false, term;
	size_t		 nlocal, ndom, npath;
	int		 rc;

	if (out == NULL)
		return SMTP_ADDR_E_SYNTAX;
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return SMTP_ADDR_E_SYNTAX;
	p = s;
	e = s + len;

	if (p < e && *p == '<') {
		bracket = true;
		p++;
	} else if ((flags & SMTP_ADDR_BARE_OK) == 0)
		return SMTP_ADDR_E_SYNTAX;

	if (bracket && p < e && *p == '>') {
		if ((flags & SMTP_ADDR_NULL_OK) == 0)
			return SMTP_ADDR_E_NULL;
		if (end != NULL)
			*end = p + 1;
		return SMTP_ADDR_OK;
	}
	if (p >= e || (!bracket && *p == ' '))
		return SMTP_ADDR_E_SYNTAX;

	if (*p == '@') {
		if ((rc = smtp_addr_scan_adl(p, e, flags, bracket, &p)) != 0)
			return rc;
		route = true;
		if (p >= e)
			return SMTP_ADDR_E_SYNTAX;
	}

	local = p;
	if ((rc = smtp_addr_scan_local(local, e, flags, &lend, &u8)) != 0)
		return rc;
	nlocal = (size_t)(lend - local);
	if (nlocal > SMTP_LOCAL_MAX)
		return SMTP_ADDR_E_LONG;
	p = lend;

	if (p < e && *p == '@') {
		dom = p + 1;
		if (dom < e && *dom == '[')
			rc = smtp_addr_scan_literal(dom, e, flags, &dend);
		else
			rc = smtp_addr_scan_domain(dom, e, flags, &dend, &u8);
		if (rc != 0)
			return rc;
		p = dend;
	} else {
		/* No domain: only "<Postmaster>" may do that (§4.1.1.3). */
		dom = dend = p;
		term = bracket ? (p < e && *p == '>') : (p >= e || *p == ' ');
		if (!term)
			return bracket && p >= e ? SMTP_ADDR_E_SYNTAX :
			    SMTP_ADDR_E_LOCAL;
		if ((flags & SMTP_ADDR_POSTMASTER_OK) == 0 || route ||
		    nlocal != 10 || !smtp_addr_caseeq(local, "Postmaster", 10))
			return SMTP_ADDR_E_DOMAIN;
	}

	if (bracket) {
		if (p >= e)
			return SMTP_ADDR_E_SYNTAX;
		if (*p != '>')
			return SMTP_ADDR_E_DOMAIN;
		p++;
		npath = (size_t)(p - s);
	} else {
		if (p < e && *p != ' ')
			return SMTP_ADDR_E_DOMAIN;
		npath = (size_t)(p - s) + 2;
	}
	if (npath > SMTP_PATH_MAX)
		return SMTP_ADDR_E_LONG;

	ndom = (size_t)(dend - dom);
	if (nlocal + 1 + ndom > SMTP_PATH_MAX)	/* cannot happen: npath */
		return SMTP_ADDR_E_LONG;
	memcpy(out->addr, local, nlocal);
	if (ndom > 0) {
		out->addr[nlocal] = '@';
		memcpy(out->addr + nlocal + 1, dom, ndom);
		out->addr[nlocal + 1 + ndom] = '\0';
	} else
		out->addr[nlocal] = '\0';
	out->local_len = nlocal;
	out->utf8 = u8;
	if (end != NULL)
		*end = p;
	return SMTP_ADDR_OK;
}

const char *
smtp_addr_strerror(int code)
{
	switch (code) {
	case SMTP_ADDR_OK:
		return "ok";
	case SMTP_ADDR_E_SYNTAX:
		return "syntax error in path";
	case SMTP_ADDR_E_LOCAL:
		return "bad local part";
	case SMTP_ADDR_E_DOMAIN:
		return "bad domain";
	case SMTP_ADDR_E_LONG:
		return "address too long";
	case SMTP_ADDR_E_UTF8:
		return "8-bit address without SMTPUTF8, or bad UTF-8";
	case SMTP_ADDR_E_NULL:
		return "null path not allowed";
	default:
		return "unknown address error";
	}
}

const char *
smtp_addr_domain(const struct smtp_addr *a)
{
	if (a == NULL || a->local_len >= sizeof(a->addr) ||
	    a->addr[a->local_len] != '@')
		return "";
	return a->addr + a->local_len + 1;
}

bool
smtp_domain_valid(const char *d, int flags)
{
	const char	*e, *stop;
	bool		 u8 = false;

	if (d == NULL)
		return false;
	e = d + strlen(d);
	return smtp_addr_scan_domain(d, e, flags, &stop, &u8) == 0 &&
	    stop == e;
}

/* smtp_addr_snum - one Snum of an IPv4 literal: 1*3DIGIT, 0..255. */
static bool
smtp_addr_snum(const char **pp, const char *e)
{
	const char	*p = *pp;
	int		 v = 0, n = 0;

	while (p < e && *p >= '0' && *p <= '9' && n < 3) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n == 0 || v > 255)
		return false;
	*pp = p;
	return true;
}

bool
smtp_addr_literal_valid(const char *lit, size_t len)
{
	struct in6_addr	 in6;
	char		 buf[INET6_ADDRSTRLEN];
	const char	*p, *e;
	size_t		 n;
	int		 i;

	if (lit == NULL || len < 3 || lit[0] != '[' || lit[len - 1] != ']')
		return false;
	p = lit + 1;
	e = lit + len - 1;
	n = (size_t)(e - p);

	if (n >= 5 && smtp_addr_caseeq(p, "IPv6:", 5)) {
		p += 5;
		n -= 5;
		if (n == 0 || n >= sizeof(buf) || memchr(p, '\0', n) != NULL)
			return false;
		memcpy(buf, p, n);
		buf[n] = '\0';
		return inet_pton(AF_INET6, buf, &in6) == 1;
	}

	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (p >= e || *p != '.')
				return false;
			p++;
		}
		if (!smtp_addr_snum(&p, e))
			return false;
	}
	return p == e;
}

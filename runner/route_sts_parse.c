/*
 * route_sts_parse.c - MTA-STS's texts (RFC 8461): the TXT record at
 * _mta-sts.DOMAIN (§3.1), the policy body (§3.2) and the mx patterns
 * (§4.1). Pure functions of their bytes: everything here comes from DNS
 * or a web server that may be hostile, so every length is checked before
 * it is used and nothing is copied without a bound.
 *
 * Strict where the RFC is: the fields it defines must have the values its
 * ABNF allows (%s: case-sensitive), or the whole record or policy is
 * refused, which leaves the domain without a policy (§3.3: delivery goes
 * on as before MTA-STS). Lenient where it says to be: unknown fields are
 * ignored, and of a duplicated single field the first counts (§3.2).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route_sts.h"

#define ROUTE_STS_NAME_MAX	32	/* §3.2: an ext name, 1 + *31 */
#define ROUTE_STS_DOMAIN_MAX	253	/* octets of a name, no root dot */

static bool
route_sts_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
route_sts_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* ------------------------------------------------------------------ */
/* The TXT record (§3.1). */

/*
 * sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field)
 *                   [field-delim]
 * sts-field       = sts-id / sts-extension
 * sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
 * sts-extension   = sts-ext-name "=" sts-ext-value
 * sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 * sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
 */
static int
route_sts_txt_fields(const char *txt, size_t len,
    char id[ROUTE_STS_ID_MAX + 1])
{
	static const char	 ver[] = "v=STSv1";
	size_t			 pos, start, nlen, vlen;
	bool			 have_id = false, fields = false;

	id[0] = '\0';
	if (len < sizeof(ver) - 1 || memcmp(txt, ver, sizeof(ver) - 1) != 0)
		return 0;		/* another TXT record: not ours */
	pos = sizeof(ver) - 1;
	/* "v=STSv1x" is not a version field followed by a delimiter. */
	if (pos < len && txt[pos] != ';' && !route_sts_wsp(txt[pos]))
		return 0;
	if (len > ROUTE_STS_TXT_MAX)
		return -1;
	for (;;) {
		while (pos < len && route_sts_wsp(txt[pos]))
			pos++;
		if (pos == len)
			break;
		if (txt[pos] != ';')
			return -1;
		pos++;
		while (pos < len && route_sts_wsp(txt[pos]))
			pos++;
		if (pos == len)
			break;		/* the optional last delimiter */
		/* A field: name "=" value. */
		start = pos;
		while (pos < len && (route_sts_alnum(txt[pos]) ||
		    (pos > start && (txt[pos] == '_' || txt[pos] == '-' ||
		    txt[pos] == '.'))))
			pos++;
		nlen = pos - start;
		if (nlen == 0 || nlen > ROUTE_STS_NAME_MAX || pos == len ||
		    txt[pos] != '=')
			return -1;
		pos++;
		vlen = 0;
		while (pos + vlen < len && txt[pos + vlen] >= 0x21 &&
		    txt[pos + vlen] <= 0x7e && txt[pos + vlen] != '=' &&
		    txt[pos + vlen] != ';')
			vlen++;
		if (vlen == 0)
			return -1;
		fields = true;
		if (nlen == 2 && memcmp(txt + start, "id", 2) == 0) {
			size_t	i;

			if (vlen > ROUTE_STS_ID_MAX)
				return -1;
			for (i = 0; i < vlen; i++)
				if (!route_sts_alnum(txt[pos + i]))
					return -1;
			if (!have_id) {		/* the first one counts */
				memcpy(id, txt + pos, vlen);
				id[vlen] = '\0';
				have_id = true;
			}
		}
		pos += vlen;
	}
	if (!fields || !have_id) {
		id[0] = '\0';
		return -1;
	}
	return 1;
}

int
route_sts_txt_parse(const char *txt, size_t len,
    char id[ROUTE_STS_ID_MAX + 1])
{
	int	r = route_sts_txt_fields(txt, len, id);

	if (r != 1)
		id[0] = '\0';		/* no half-read id for anyone */
	return r;
}

/* ------------------------------------------------------------------ */
/* mx patterns (§3.2, §4.1). */

bool
route_sts_mx_ok(const char *p, size_t len)
{
	size_t	i, lab = 0;

	if (len >= 2 && p[0] == '*' && p[1] == '.') {
		p += 2;
		len -= 2;
	}
	if (len == 0 || len > ROUTE_STS_DOMAIN_MAX)
		return false;
	/* sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2), dot-separated. */
	for (i = 0; i < len; i++) {
		if (p[i] == '.') {
			if (lab == 0 || p[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!route_sts_alnum(p[i]) && !(p[i] == '-' && lab > 0))
			return false;
		if (++lab > 63)
			return false;
	}
	return lab > 0 && p[len - 1] != '-';
}

bool
route_sts_mx_match(const char *pattern, const char *host)
{
	size_t		 hlen = strlen(host), plen = strlen(pattern);
	const char	*dot;

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;			/* a name from DNS may have its root */
	if (hlen == 0 || plen == 0)
		return false;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* Exactly one label more: "x" + "." + suffix. */
		if ((dot = memchr(host, '.', hlen)) == NULL || dot == host)
			return false;
		return (size_t)(host + hlen - (dot + 1)) == plen - 2 &&
		    strncasecmp(dot + 1, pattern + 2, plen - 2) == 0;
	}
	return hlen == plen && strncasecmp(host, pattern, plen) == 0;
}

bool
route_sts_policy_match(const struct route_sts_policy *p, const char *host)
{
	size_t	i;

	for (i = 0; i < p->nmx; i++)
		if (route_sts_mx_match(p->mx[i], host))
			return true;
	return false;
}

const char *
route_sts_mode_name(enum route_sts_mode m)
{
	switch (m) {
	case ROUTE_STS_TESTING:
		return "testing";
	case ROUTE_STS_ENFORCE:
		return "enforce";
	default:
		return "none";
	}
}

/* ------------------------------------------------------------------ */
/* The policy (§3.2). */

/* route_sts_line - one line's "name: value": 0 with the name and value
 * (trailing blanks off); -1 when it is not of that form. */
static int
route_sts_line(const char *l, size_t len, const char **name, size_t *nlen,
    const char **val, size_t *vlen)
{
	size_t	i = 0;

	while (i < len && (route_sts_alnum(l[i]) || (i > 0 && (l[i] == '_' ||
	    l[i] == '-' || l[i] == '.'))))
		i++;
	if (i == 0 || i > ROUTE_STS_NAME_MAX || i == len || l[i] != ':')
		return -1;
	*name = l;
	*nlen = i;
	for (i++; i < len && route_sts_wsp(l[i]); i++)
		;
	while (len > i && route_sts_wsp(l[len - 1]))
		len--;
	*val = l + i;
	*vlen = len - i;
	/* sts-policy-vchar *(*(SP / TAB) sts-policy-vchar): printable
	 * ASCII, or UTF-8 (%x80-FF) in an extension's value. */
	for (; i < len; i++)
		if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f)
			if (!route_sts_wsp(l[i]))
				return -1;
	return *vlen > 0 ? 0 : -1;
}

static bool
route_sts_is(const char *name, size_t nlen, const char *want)
{
	return nlen == strlen(want) && memcmp(name, want, nlen) == 0;
}

int
route_sts_policy_parse(const char *body, size_t len,
    struct route_sts_policy *p, char *why, size_t whysz)
{
	const char	*l, *end, *name, *val;
	size_t		 llen, nlen, vlen, i, lineno = 0;
	bool		 have_ver = false, have_mode = false, have_age = false;
	uint64_t	 age;

	p->mode = ROUTE_STS_NONE;
	p->max_age = 0;
	p->nmx = 0;
	if (len > ROUTE_STS_BODY_MAX) {
		bsnprintf(why, whysz, "policy larger than %d octets",
		    ROUTE_STS_BODY_MAX);
		return -1;
	}
	if (memchr(body, '\0', len) != NULL) {
		bsnprintf(why, whysz, "policy holds a NUL octet");
		return -1;
	}
	for (l = body; l < body + len; l = end + 1) {
		lineno++;
		if ((end = memchr(l, '\n', (size_t)(body + len - l))) == NULL)
			end = body + len;
		llen = (size_t)(end - l);
		if (llen > 0 && l[llen - 1] == '\r')
			llen--;
		if (llen > ROUTE_STS_LINE_MAX) {
			bsnprintf(why, whysz, "line %zu longer than %d octets",
			    lineno, ROUTE_STS_LINE_MAX);
			return -1;
		}
		for (i = 0; i < llen && route_sts_wsp(l[i]); i++)
			;
		if (i == llen)
			continue;	/* a blank line */
		if (route_sts_line(l, llen, &name, &nlen, &val, &vlen) == -1) {
			bsnprintf(why, whysz, "line %zu is not \"key: value\"",
			    lineno);
			return -1;
		}
		if (route_sts_is(name, nlen, "version")) {
			if (have_ver)
				continue;	/* the first one counts */
			if (vlen != 5 || memcmp(val, "STSv1", 5) != 0) {
				bsnprintf(why, whysz, "line %zu: version is "
				    "not STSv1", lineno);
				return -1;
			}
			have_ver = true;
		} else if (route_sts_is(name, nlen, "mode")) {
			if (have_mode)
				continue;
			if (route_sts_is(val, vlen, "enforce"))
				p->mode = ROUTE_STS_ENFORCE;
			else if (route_sts_is(val, vlen, "testing"))
				p->mode = ROUTE_STS_TESTING;
			else if (route_sts_is(val, vlen, "none"))
				p->mode = ROUTE_STS_NONE;
			else {
				bsnprintf(why, whysz, "line %zu: bad mode",
				    lineno);
				return -1;
			}
			have_mode = true;
		} else if (route_sts_is(name, nlen, "max_age")) {
			if (have_age)
				continue;
			/* 1*10(DIGIT), at most 31557600. */
			if (vlen > 10) {
				bsnprintf(why, whysz, "line %zu: bad max_age",
				    lineno);
				return -1;
			}
			for (i = 0, age = 0; i < vlen; i++) {
				if (val[i] < '0' || val[i] > '9') {
					bsnprintf(why, whysz, "line %zu: bad "
					    "max_age", lineno);
					return -1;
				}
				age = age * 10 + (uint64_t)(val[i] - '0');
			}
			if (age > ROUTE_STS_MAXAGE_MAX) {
				bsnprintf(why, whysz, "line %zu: max_age over "
				    "%d", lineno, ROUTE_STS_MAXAGE_MAX);
				return -1;
			}
			p->max_age = (uint32_t)age;
			have_age = true;
		} else if (route_sts_is(name, nlen, "mx")) {
			if (!route_sts_mx_ok(val, vlen)) {
				bsnprintf(why, whysz, "line %zu: bad mx "
				    "pattern", lineno);
				return -1;
			}
			if (p->nmx == ROUTE_STS_MX_MAX) {
				bsnprintf(why, whysz, "more than %d mx "
				    "patterns", ROUTE_STS_MX_MAX);
				return -1;
			}
			memcpy(p->mx[p->nmx], val, vlen);
			p->mx[p->nmx][vlen] = '\0';
			strl_lower(p->mx[p->nmx]);
			p->nmx++;
		}
		/* Any other key: an extension, ignored (§3.2). */
	}
	if (!have_ver || !have_mode || !have_age) {
		bsnprintf(why, whysz, "no %s", !have_ver ? "version" :
		    !have_mode ? "mode" : "max_age");
		return -1;
	}
	if (p->nmx == 0 && p->mode != ROUTE_STS_NONE) {
		bsnprintf(why, whysz, "no mx pattern");
		return -1;
	}
	return 0;
}

void
route_sts_policy_format(const struct route_sts_policy *p, struct sbuf *out)
{
	size_t	i;

	sbuf_reset(out);
	sbuf_catf(out, "version: STSv1\nmode: %s\nmax_age: %u\n",
	    route_sts_mode_name(p->mode), (unsigned)p->max_age);
	for (i = 0; i < p->nmx; i++)
		sbuf_catf(out, "mx: %s\n", p->mx[i]);
}

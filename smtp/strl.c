/*
 * strl.c - bounded string copies (glibc 2.36 has no strlcpy), and the
 * escaping that makes any bytes safe to print.
 *
 * Each copy returns false when the result had to be cut; the destination
 * is always NUL-terminated when its size is not zero.
 *
 * Escaping (strl_esc_unit) is what the log writer applies to every value
 * and what `postern show`/`queue` apply to every stored field: a peer's
 * bytes can neither end a log line nor reach a terminal as a control
 * sequence. It is reversible: \\, \n, \r, \t and \xHH are the only
 * escapes and a backslash is always escaped itself. Well-formed UTF-8 is
 * kept (SMTPUTF8 addresses stay readable); a byte that is not part of it
 * is written \xHH, and so is each byte of a C1 control (U+0080..U+009F,
 * e.g. U+009B, the one-character CSI), a line or paragraph separator or
 * a bidirectional override.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp.h"

bool
strl_copy(char *dst, const char *src, size_t dstsz)
{
	size_t	n = strlen(src);

	if (dstsz == 0)
		return false;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

bool
strl_cat(char *dst, const char *src, size_t dstsz)
{
	size_t	have = strnlen(dst, dstsz);

	if (have == dstsz)
		return false;
	return strl_copy(dst + have, src, dstsz - have);
}

bool
bsnprintf(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < dstsz;
}

char *
strl_lower(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

char *
strl_clean(char *dst, size_t dstsz, const char *src, size_t max)
{
	size_t	i;

	if (dstsz == 0)
		return dst;
	for (i = 0; src[i] != '\0' && i < max && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[i] = '\0';
	return dst;
}

bool
strl_cp_shown(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
		return false;
	if (cp >= 0x2028 && cp <= 0x202e)	/* separators, bidi */
		return false;
	if (cp >= 0x2066 && cp <= 0x2069)	/* bidi isolates */
		return false;
	return true;
}

/* strl_esc_hex - "\xHH" for byte c into out; returns 4. */
static size_t
strl_esc_hex(unsigned char c, char *out)
{
	static const char	hex[] = "0123456789abcdef";

	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 0xf];
	return 4;
}

size_t
strl_esc_unit(const char *s, size_t n, int flags, char *out, size_t *outlen)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 k, i;

	switch (p[0]) {
	case '\n':
	case '\r':
	case '\\':
		out[0] = '\\';
		out[1] = p[0] == '\n' ? 'n' : p[0] == '\r' ? 'r' : '\\';
		*outlen = 2;
		return 1;
	case '\t':
		if (flags & STRL_ESC_TAB)
			break;
		out[0] = '\\';
		out[1] = 't';
		*outlen = 2;
		return 1;
	case ',':
		if (flags & STRL_ESC_COMMA) {
			*outlen = strl_esc_hex(p[0], out);
			return 1;
		}
		break;
	case '>':
		if (flags & STRL_ESC_GT) {
			*outlen = strl_esc_hex(p[0], out);
			return 1;
		}
		break;
	default:
		if (p[0] < 0x20 || p[0] == 0x7f) {
			*outlen = strl_esc_hex(p[0], out);
			return 1;
		}
		break;
	}
	if (p[0] < 0x80) {
		out[0] = (char)p[0];
		*outlen = 1;
		return 1;
	}
	if ((k = smtp_addr_utf8_len(p, n, &cp)) == 0) {
		*outlen = strl_esc_hex(p[0], out);
		return 1;
	}
	if (strl_cp_shown(cp)) {
		memcpy(out, p, k);
		*outlen = k;
		return k;
	}
	/* At most 3 bytes here (U+0080..U+2069): 12 bytes of escapes. */
	for (*outlen = 0, i = 0; i < k; i++)
		*outlen += strl_esc_hex(p[i], out + *outlen);
	return k;
}

bool
strl_esc(char *dst, size_t dstsz, const char *src, size_t srclen, int flags)
{
	char	u[STRL_ESC_UNIT_MAX];
	size_t	len = 0, k, ulen;

	if (dstsz == 0)
		return srclen == 0;
	while (srclen > 0) {
		k = strl_esc_unit(src, srclen, flags, u, &ulen);
		if (ulen >= dstsz - len) {
			dst[len] = '\0';
			return false;
		}
		memcpy(dst + len, u, ulen);
		len += ulen;
		src += k;
		srclen -= k;
	}
	dst[len] = '\0';
	return true;
}

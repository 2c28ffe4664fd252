/*
 * sbuf.c - growable strings, like Postfix's VSTRING.
 *
 * The handle never moves; the bytes may. The buffer is always
 * NUL-terminated so sbuf_str() can be handed to C string functions, and it
 * may hold NUL bytes of its own (sbuf_catn) for message bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

struct sbuf *
sbuf_new(void)
{
	struct sbuf	*b;

	b = xcalloc(1, sizeof(*b));
	b->cap = 64;
	b->s = xmalloc(b->cap);
	b->s[0] = '\0';
	return b;
}

struct sbuf *
sbuf_free(struct sbuf *b)
{
	if (b != NULL) {
		free(b->s);
		free(b);
	}
	return NULL;
}

void
sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	b->s[0] = '\0';
}

static void
sbuf_grow(struct sbuf *b, size_t more)
{
	size_t	need;

	if (more > SIZE_MAX - b->len - 1)
		fatalx("sbuf_grow: %zu + %zu overflows", b->len, more);
	need = b->len + more + 1;
	if (need <= b->cap)
		return;
	while (b->cap < need)
		b->cap = b->cap < SIZE_MAX / 2 ? b->cap * 2 : need;
	b->s = xreallocarray(b->s, 1, b->cap);
}

void
sbuf_catn(struct sbuf *b, const void *p, size_t n)
{
	sbuf_grow(b, n);
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
sbuf_cat(struct sbuf *b, const char *s)
{
	sbuf_catn(b, s, strlen(s));
}

void
sbuf_catc(struct sbuf *b, int c)
{
	char	ch = (char)c;

	sbuf_catn(b, &ch, 1);
}

void
sbuf_vcatf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list	ap2;
	int	n;

	va_copy(ap2, ap);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		fatalx("sbuf_vcatf: bad format");
	if ((size_t)n >= b->cap - b->len) {
		sbuf_grow(b, (size_t)n);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void
sbuf_catf(struct sbuf *b, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	sbuf_vcatf(b, fmt, ap);
	va_end(ap);
}

void
sbuf_json_str(struct sbuf *b, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), k;
	uint32_t		 cp;

	sbuf_catc(b, '"');
	while (n > 0) {
		k = 1;
		switch (*p) {
		case '"':
			sbuf_cat(b, "\\\"");
			break;
		case '\\':
			sbuf_cat(b, "\\\\");
			break;
		case '\n':
			sbuf_cat(b, "\\n");
			break;
		case '\r':
			sbuf_cat(b, "\\r");
			break;
		case '\t':
			sbuf_cat(b, "\\t");
			break;
		default:
			if (*p < 0x80) {
				if (strl_cp_shown(*p))
					sbuf_catc(b, *p);
				else
					sbuf_catf(b, "\\u%04x", *p);
			} else if ((k = smtp_addr_utf8_len(p, n, &cp)) == 0) {
				/* Not UTF-8: JSON cannot carry the byte;
				 * the character Latin-1 has there. */
				sbuf_catf(b, "\\u%04x", *p);
				k = 1;
			} else if (!strl_cp_shown(cp)) {
				sbuf_catf(b, "\\u%04x", (unsigned)cp);
			} else
				sbuf_catn(b, p, k);
		}
		p += k;
		n -= k;
	}
	sbuf_catc(b, '"');
}

void
sbuf_esc_str(struct sbuf *b, const char *s, int flags)
{
	char	u[STRL_ESC_UNIT_MAX];
	size_t	n = strlen(s), k, ulen;

	while (n > 0) {
		k = strl_esc_unit(s, n, flags, u, &ulen);
		sbuf_catn(b, u, ulen);
		s += k;
		n -= k;
	}
}

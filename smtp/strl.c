/*
 * strl.c - bounded string copies (glibc 2.36 has no strlcpy).
 *
 * Each returns false when the result had to be cut; the destination is
 * always NUL-terminated when its size is not zero.
 */
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

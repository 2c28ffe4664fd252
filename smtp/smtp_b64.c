/*
 * smtp_b64.c - base64 (RFC 4648 §4), strict: RFC 4954 §4 wants a server
 * to refuse anything that is not exactly base64 (no white space, no stray
 * '=', length a multiple of four).
 */
#include <string.h>

#include "smtp.h"

static const char smtp_b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
smtp_b64_encode(const void *in, size_t len, struct sbuf *out)
{
	const unsigned char	*p = in;
	size_t			 i;
	char			 q[4];

	for (i = 0; i + 2 < len; i += 3) {
		q[0] = smtp_b64_alpha[p[i] >> 2];
		q[1] = smtp_b64_alpha[(p[i] & 3) << 4 | p[i + 1] >> 4];
		q[2] = smtp_b64_alpha[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		q[3] = smtp_b64_alpha[p[i + 2] & 63];
		sbuf_catn(out, q, 4);
	}
	if (len - i == 1) {
		q[0] = smtp_b64_alpha[p[i] >> 2];
		q[1] = smtp_b64_alpha[(p[i] & 3) << 4];
		q[2] = q[3] = '=';
		sbuf_catn(out, q, 4);
	} else if (len - i == 2) {
		q[0] = smtp_b64_alpha[p[i] >> 2];
		q[1] = smtp_b64_alpha[(p[i] & 3) << 4 | p[i + 1] >> 4];
		q[2] = smtp_b64_alpha[(p[i + 1] & 15) << 2];
		q[3] = '=';
		sbuf_catn(out, q, 4);
	}
}

static int
smtp_b64_val(char c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(smtp_b64_alpha, c)) == NULL)
		return -1;
	return (int)(p - smtp_b64_alpha);
}

int
smtp_b64_decode(const char *in, size_t len, struct sbuf *out)
{
	size_t	i, start = sbuf_len(out);
	int	v[4], pad, k;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			/* '=' only at the end; nothing after it. */
			if (pad > 0 || (v[k] = smtp_b64_val(in[i + k])) < 0)
				goto bad;
		}
		sbuf_catc(out, v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			sbuf_catc(out, (v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			sbuf_catc(out, (v[2] & 3) << 6 | v[3]);
		/* Non-canonical encodings (stray low bits) are refused. */
		if ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3)))
			goto bad;
	}
	return 0;
bad:
	out->len = start;
	out->s[start] = '\0';
	return -1;
}

/*
 * smtp_dot.c - the message after DATA's 354, as it goes on the wire: dot-
 * stuffed (RFC 5321 §4.5.2) and ended by CRLF.CRLF.
 *
 * The stored message is canonical CRLF; should a bare CR or LF still be
 * there, it goes out as a space, so nothing a lenient server might take
 * for the end of the data is ever sent (SMTP smuggling, protocols.md
 * §4.5). The message may come in pieces that split lines anywhere: the
 * state carries over from one piece to the next.
 */
#include "smtp.h"

void
smtp_dot_begin(struct smtp_dot *d)
{
	d->bol = true;
	d->cr = false;
}

void
smtp_dot_stuff(struct smtp_dot *d, struct sbuf *out, const char *p,
    size_t len)
{
	const char	*end = p + len, *run = p;

	while (p < end) {
		if (d->cr) {
			d->cr = false;
			if (*p == '\n') {
				sbuf_catn(out, "\r\n", 2);
				d->bol = true;
				run = ++p;
				continue;
			}
			sbuf_catc(out, ' ');
			d->bol = false;
		}
		if (*p == '\r' || *p == '\n') {
			sbuf_catn(out, run, (size_t)(p - run));
			if (*p == '\r')
				d->cr = true;
			else {
				sbuf_catc(out, ' ');
				d->bol = false;
			}
			run = ++p;
			continue;
		}
		if (d->bol && *p == '.') {
			sbuf_catn(out, run, (size_t)(p - run));
			sbuf_catc(out, '.');
			run = p;
		}
		d->bol = false;
		p++;
	}
	sbuf_catn(out, run, (size_t)(end - run));
}

void
smtp_dot_end(struct smtp_dot *d, struct sbuf *out)
{
	if (d->cr) {
		/* A CR at the very end, with no LF: a space, as above. */
		sbuf_catc(out, ' ');
		d->cr = false;
		d->bol = false;
	}
	if (!d->bol)
		sbuf_catn(out, "\r\n", 2);
	sbuf_catn(out, ".\r\n", 3);
	d->bol = true;
}

/*
 * smtp_dot.c - the message after DATA's 354, as it goes on the wire: dot-
 * stuffed (RFC 5321 §4.5.2) and ended by CRLF.CRLF; or as BDAT sends it
 * (RFC 3030), the same without stuffing and end marker.
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

/* smtp_dot_copy - a piece out, stray CR and LF as spaces; with stuff, a
 * dot at the start of a line doubled. */
static void
smtp_dot_copy(struct smtp_dot *d, struct sbuf *out, const char *p,
    size_t len, bool stuff)
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
		if (stuff && d->bol && *p == '.') {
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
smtp_dot_stuff(struct smtp_dot *d, struct sbuf *out, const char *p,
    size_t len)
{
	smtp_dot_copy(d, out, p, len, true);
}

void
smtp_dot_plain(struct smtp_dot *d, struct sbuf *out, const char *p,
    size_t len)
{
	smtp_dot_copy(d, out, p, len, false);
}

void
smtp_dot_close(struct smtp_dot *d, struct sbuf *out)
{
	if (d->cr) {
		/* A CR at the very end, with no LF: a space, as above. */
		sbuf_catc(out, ' ');
		d->cr = false;
		d->bol = false;
	}
	if (!d->bol)
		sbuf_catn(out, "\r\n", 2);
	d->bol = true;
}

void
smtp_dot_end(struct smtp_dot *d, struct sbuf *out)
{
	smtp_dot_close(d, out);
	sbuf_catn(out, ".\r\n", 3);
}

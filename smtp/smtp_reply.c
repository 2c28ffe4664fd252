/*
 * smtp_reply.c - reading an SMTP reply (RFC 5321 §4.2), for whichever
 * side is the client: the runner's, and ATRN's on an accepted connection.
 *
 * The reader takes bytes as they come and never waits itself: the caller
 * owns the socket and the timeouts. Every limit is the reader's: a line
 * is cut at SMTP_REPLY_LINE_MAX (RFC 5321 §4.5.3.1.5 says 512 with the
 * CRLF), and more than SMTP_REPLY_JUNK_MAX bytes cut from over-long lines
 * or more than SMTP_REPLY_LINES lines end the reply as an error, so a
 * server cannot make us buffer without bound. The enhanced status code
 * (RFC 2034, RFC 3463) is taken whether or not it was advertised
 * (protocols.md §5.7), but only when its class agrees with the code.
 */
#include <string.h>

#include "smtp.h"

size_t
smtp_reply_enhanced(const char *s, char out[16])
{
	size_t	i, part, n;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	i = 1;
	for (part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (n = 0; s[i] >= '0' && s[i] <= '9'; i++)
			n++;
		if (n < 1 || n > 3)
			return 0;
	}
	if (s[i] != '\0' && s[i] != ' ')
		return 0;
	memcpy(out, s, i);
	out[i] = '\0';
	return i;
}

void
smtp_reply_status(const struct smtp_reply *r, char status[16])
{
	if (r->status[0] != '\0')
		strl_copy(status, r->status, 16);
	else if (r->code == 421)
		strl_copy(status, "4.4.2", 16);
	else
		bsnprintf(status, 16, "%d.0.0", r->code / 100);
}

void
smtp_reply_begin(struct smtp_reply_reader *rd, struct smtp_reply *r)
{
	memset(rd, 0, sizeof(*rd));
	memset(r, 0, sizeof(*r));
}

/* smtp_reply_line - take one reply line (no CRLF, NUL-terminated, n
 * bytes) into r and the raw text. 1 when it was the last line, 0 when
 * more follow, -1 when it is no reply line at all. */
static int
smtp_reply_line(struct smtp_reply_reader *rd, struct smtp_reply *r,
    const char *line, size_t n)
{
	char	*text = rd->text;
	size_t	 textsz = sizeof(rd->text), k;
	char	 st[16];
	int	 code;
	bool	 last = n <= 3 || line[3] == ' ';

	if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (n > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->code == 0) {
		r->code = code;
		/* The enhanced code, when its class agrees (RFC 2034 §4). */
		if (n > 4 && smtp_reply_enhanced(line + 4, st) > 0 &&
		    st[0] == line[0])
			strl_copy(r->status, st, sizeof(r->status));
		strl_copy(text, line, textsz);
		if (n > 3 && textsz > 4)
			text[3] = ' ';	/* "250-first" -> "250 first" */
	} else if (n > 4) {
		/* Continuation: its text only, less a repeated x.y.z. */
		line += 4;
		n -= 4;
		if (r->status[0] != '\0' && (k = strlen(r->status)) < n &&
		    strncmp(line, r->status, k) == 0 && line[k] == ' ') {
			line += k + 1;
			n -= k + 1;
		}
		strl_cat(text, " ", textsz);
		strl_cat(text, line, textsz);
	}
	return last ? 1 : 0;
}

int
smtp_reply_feed(struct smtp_reply_reader *rd, struct smtp_reply *r,
    const char *p, size_t avail, size_t *used, struct sbuf *lines)
{
	const char	*nl;
	size_t		 n, off = 0;
	bool		 have;
	int		 rc;

	*used = 0;
	for (;;) {
		have = false;
		nl = avail > off ? memchr(p + off, '\n', avail - off) : NULL;
		if (rd->skipping) {
			/* The rest of an over-long line: dropped. */
			n = nl != NULL ? (size_t)(nl - (p + off)) + 1 :
			    avail - off;
			rd->junk += n;
			off += n;
			if (nl != NULL) {
				rd->skipping = false;
				have = true;
			}
		} else if (nl != NULL) {
			n = (size_t)(nl - (p + off));
			rd->llen = n > 0 && p[off + n - 1] == '\r' ? n - 1 : n;
			if (rd->llen > SMTP_REPLY_LINE_MAX)
				rd->llen = SMTP_REPLY_LINE_MAX;
			memcpy(rd->line, p + off, rd->llen);
			off += n + 1;
			have = true;
		} else if (avail - off >= SMTP_REPLY_LINE_MAX) {
			rd->llen = SMTP_REPLY_LINE_MAX;
			memcpy(rd->line, p + off, rd->llen);
			rd->junk += avail - off - rd->llen;
			off = avail;
			rd->skipping = true;
		}
		*used = off;
		if (rd->junk > SMTP_REPLY_JUNK_MAX)
			return SMTP_REPLY_E_LONG;
		if (!have)
			return 0;	/* all taken, or no whole line yet */
		rd->line[rd->llen] = '\0';
		if (memchr(rd->line, '\0', rd->llen) != NULL)
			rd->llen = strlen(rd->line);
		if ((rc = smtp_reply_line(rd, r, rd->line, rd->llen)) < 0)
			return SMTP_REPLY_E_SYNTAX;
		if (lines != NULL) {
			sbuf_catn(lines, rd->llen > 4 ? rd->line + 4 : "",
			    rd->llen > 4 ? rd->llen - 4 : 0);
			sbuf_catc(lines, '\n');
		}
		if (rc == 1) {
			strl_clean(r->text, sizeof(r->text), rd->text,
			    SMTP_REPLY_TEXT_MAX);
			return 1;
		}
		if (++rd->nlines >= SMTP_REPLY_LINES)
			return SMTP_REPLY_E_LINES;
	}
}

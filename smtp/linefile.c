/*
 * linefile.c - the one reader of line-oriented files: postern.conf,
 * routes_file, users_file, relayhost_auth_file and relay_recipients.
 *
 * Before, each of them had its own loop and its own idea of a comment:
 * '#' anywhere (which cut a relay password holding '#'), '#' only as the
 * first non-blank (so "key = value  # why" was an error there), or a
 * 1024-octet fgets() that split a long line in two and let a NUL byte
 * through. Here there is one rule, stated in smtp.h, and every error
 * names the file and the line.
 *
 * Lines are read with getc_unlocked() into a buffer of fixed size, so a
 * file with no line end at all costs LINEFILE_LINE_MAX octets, not its
 * size. That buffer and stdio's are wiped before they are freed: a
 * users_file or relayhost_auth_file line is a secret.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

#define LINEFILE_WS	" \t\r\v\f"	/* white space, for the rule */

/*
 * linefile_strip - apply the rule to one line of len octets (no LF) in
 * place: cut the comment, drop white space at both ends. Returns the
 * start of the text; *lenp gets its length (0: nothing left).
 */
static char *
linefile_strip(char *s, size_t *lenp)
{
	size_t	len = *lenp, i;

	for (i = 0; i < len; i++)
		if (s[i] == '#' && (i == 0 ||
		    strchr(LINEFILE_WS, s[i - 1]) != NULL)) {
			len = i;
			break;
		}
	while (len > 0 && strchr(LINEFILE_WS, s[len - 1]) != NULL)
		len--;
	s[len] = '\0';
	i = strspn(s, LINEFILE_WS);
	*lenp = len - i;
	return s + i;
}

int
linefile_read(const char *file, linefile_fn *fn, void *arg, char *err,
    size_t errsz)
{
	FILE	*fp;
	char	 iobuf[BUFSIZ], why[1024], *buf, *text;
	size_t	 len;
	int	 c, lineno = 0, rc = -1;

	if ((fp = fopen(file, "re")) == NULL) {
		bsnprintf(err, errsz, "%s: %s", file, strerror(errno));
		return -1;
	}
	(void)setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	/* +1 for a CR before the LF, +1 for the NUL. */
	buf = xmalloc(LINEFILE_LINE_MAX + 2);
	for (;;) {
		errno = 0;
		if ((c = getc_unlocked(fp)) == EOF)
			break;			/* the end, LF or not */
		if (lineno == INT_MAX) {
			bsnprintf(err, errsz, "%s: more than %d lines", file,
			    INT_MAX);
			goto done;
		}
		lineno++;
		for (len = 0; c != EOF && c != '\n'; c = getc_unlocked(fp)) {
			if (c == '\0') {
				bsnprintf(err, errsz, "%s:%d: NUL byte", file,
				    lineno);
				goto done;
			}
			if (len == LINEFILE_LINE_MAX + 1)
				goto toolong;
			buf[len++] = (char)c;
		}
		if (c == EOF && ferror(fp))
			break;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len > LINEFILE_LINE_MAX)
			goto toolong;
		buf[len] = '\0';
		text = linefile_strip(buf, &len);
		if (len == 0)
			continue;
		why[0] = '\0';
		if (fn(arg, text, len, lineno, why, sizeof(why)) != 0) {
			bsnprintf(err, errsz, "%s:%d: %s", file, lineno, why);
			goto done;
		}
	}
	if (ferror(fp)) {		/* a directory: EISDIR */
		bsnprintf(err, errsz, "%s: %s", file,
		    strerror(errno != 0 ? errno : EIO));
		goto done;
	}
	rc = 0;
	goto done;
toolong:
	bsnprintf(err, errsz, "%s:%d: line longer than %d octets", file,
	    lineno, LINEFILE_LINE_MAX);
done:
	explicit_bzero(buf, LINEFILE_LINE_MAX + 2);
	free(buf);
	fclose(fp);
	explicit_bzero(iobuf, sizeof(iobuf));
	explicit_bzero(why, sizeof(why));
	return rc;
}

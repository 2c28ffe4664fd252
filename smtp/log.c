/*
 * log.c - one line per event, in the form operators grep:
 *
 *	postern/runner[4711]: 01JD3KX7Q2: to=<bob@example.org>, ...
 *
 * To standard error the line carries the "postern/<role>[pid]: " prefix
 * itself; to syslog the ident is "postern/<role>" with LOG_PID, facility
 * mail, so the two look the same in the end. Callers format the rest.
 *
 * Whatever the caller passes, the line stays one line and its fields
 * parse back: the writer escapes what every conversion (%s, %c, ...)
 * produces with strl_esc_unit() - control bytes, backslash, bytes that
 * are not UTF-8 - so no caller can forget it (a SASL user name with a LF
 * once wrote a whole forged line). Two more rules make the fields
 * unambiguous: a value written right after '<' is an address, whose ','
 * and '>' are escaped too (\x2c, \x3e: a quoted local part may hold
 * both), and a value written right after '=' is a field, whose ',' is
 * escaped (\x2c), so every ", " and every closing '>' on a line is the
 * program's own. Only the text of a trailing "( )" is free.
 */
#include <sys/types.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "smtp.h"

static char		log_ident[64] = "postern";
static char		log_ident_as[64];	/* log_info_as's, while it runs */
static enum log_dest	log_to = LOG_DEST_STDERR;
static bool		log_tty;	/* log_tty_clear: erase a progress line */

void
log_init(const char *role, enum log_dest dest)
{
	bsnprintf(log_ident, sizeof(log_ident), "postern/%s", role);
	if (log_to == LOG_DEST_SYSLOG)
		closelog();
	log_to = dest;
	if (dest == LOG_DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_tty_clear(bool on)
{
	log_tty = on;
}

const char *
log_role(void)
{
	return log_ident + sizeof("postern/") - 1;
}

/* log_put - append n bytes of s to dst (len used of dstsz) escaped;
 * false when it is full: the text is cut between two escapes. */
static bool
log_put(char *dst, size_t dstsz, size_t *len, const char *s, size_t n,
    int flags)
{
	char	u[STRL_ESC_UNIT_MAX];
	size_t	k, ulen;

	while (n > 0) {
		k = strl_esc_unit(s, n, flags, u, &ulen);
		if (ulen >= dstsz - *len) {
			dst[*len] = '\0';
			return false;
		}
		memcpy(dst + *len, u, ulen);
		*len += ulen;
		s += k;
		n -= k;
	}
	dst[*len] = '\0';
	return true;
}

/* log_spec_int - append a decimal int to the conversion spec. */
static bool
log_spec_int(char *spec, size_t specsz, size_t *sl, int v)
{
	int	n;

	n = snprintf(spec + *sl, specsz - *sl, "%d", v);
	if (n < 0 || (size_t)n >= specsz - *sl)
		return false;
	*sl += (size_t)n;
	return true;
}

/*
 * The conversions are done one at a time by snprintf with a spec taken
 * from the caller's format, which the compiler has checked against the
 * arguments (the format attribute on log_info() and friends).
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

void
log_vformat(char *dst, size_t dstsz, const char *fmt, va_list ap)
{
	enum { L_NONE, L_HH, L_H, L_L, L_LL, L_J, L_Z, L_T, L_BIG } lm;
	char		 spec[64], val[LOG_LINE_MAX];
	const char	*f = fmt, *lit, *str;
	size_t		 len = 0, sl;
	int		 n, v, flags;
	bool		 simple;

	if (dstsz == 0)
		return;
	dst[0] = '\0';
	while (*f != '\0') {
		if (*f != '%') {
			for (lit = f; *f != '\0' && *f != '%'; f++)
				;
			if (!log_put(dst, dstsz, &len, lit, (size_t)(f - lit),
			    0))
				return;	/* full: the rest is cut */
			continue;
		}
		if (f[1] == '%') {
			if (!log_put(dst, dstsz, &len, "%", 1, 0))
				return;
			f += 2;
			continue;
		}
		/* %[flags][width][.precision][length]conversion */
		sl = 0;
		spec[sl++] = *f++;
		while (*f != '\0' && strchr("-+ #0", *f) != NULL &&
		    sl < 8)
			spec[sl++] = *f++;
		simple = true;
		if (*f == '*') {
			f++;
			simple = false;
			if (!log_spec_int(spec, sizeof(spec), &sl,
			    va_arg(ap, int)))
				goto bad;
		} else {
			while (*f >= '0' && *f <= '9' && sl < 32) {
				spec[sl++] = *f++;
				simple = false;
			}
		}
		if (*f == '.') {
			f++;
			simple = false;
			if (*f == '*') {
				f++;
				/* A negative precision is as if omitted. */
				if ((v = va_arg(ap, int)) >= 0) {
					spec[sl++] = '.';
					if (!log_spec_int(spec, sizeof(spec),
					    &sl, v))
						goto bad;
				}
			} else {
				spec[sl++] = '.';
				while (*f >= '0' && *f <= '9' && sl < 48)
					spec[sl++] = *f++;
			}
		}
		lm = L_NONE;
		if (f[0] == 'h' && f[1] == 'h')
			lm = L_HH;
		else if (f[0] == 'l' && f[1] == 'l')
			lm = L_LL;
		else if (*f == 'h')
			lm = L_H;
		else if (*f == 'l')
			lm = L_L;
		else if (*f == 'j')
			lm = L_J;
		else if (*f == 'z')
			lm = L_Z;
		else if (*f == 't')
			lm = L_T;
		else if (*f == 'L')
			lm = L_BIG;
		if (lm != L_NONE) {
			spec[sl++] = *f++;
			if (lm == L_HH || lm == L_LL)
				spec[sl++] = *f++;
		}
		if (*f == '\0' || sl + 2 > sizeof(spec))
			goto bad;
		spec[sl++] = *f;
		spec[sl] = '\0';
		n = 0;
		str = val;
		switch (*f++) {
		case 'd':
		case 'i':
			if (lm == L_L)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, long));
			else if (lm == L_LL)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, long long));
			else if (lm == L_J)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, intmax_t));
			else if (lm == L_Z)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, ssize_t));
			else if (lm == L_T)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, ptrdiff_t));
			else if (lm == L_BIG)
				goto bad;
			else
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, int));
			break;
		case 'o':
		case 'u':
		case 'x':
		case 'X':
			if (lm == L_L)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, unsigned long));
			else if (lm == L_LL)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, unsigned long long));
			else if (lm == L_J)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, uintmax_t));
			else if (lm == L_Z || lm == L_T)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, size_t));
			else if (lm == L_BIG)
				goto bad;
			else
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, unsigned));
			break;
		case 'e':
		case 'E':
		case 'f':
		case 'F':
		case 'g':
		case 'G':
		case 'a':
		case 'A':
			if (lm == L_BIG)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, long double));
			else if (lm == L_NONE || lm == L_L)
				n = snprintf(val, sizeof(val), spec,
				    va_arg(ap, double));
			else
				goto bad;
			break;
		case 'c':
			if (lm != L_NONE)
				goto bad;
			n = snprintf(val, sizeof(val), spec, va_arg(ap, int));
			break;
		case 's':
			if (lm != L_NONE)
				goto bad;
			if ((str = va_arg(ap, const char *)) == NULL)
				str = "(null)";
			if (simple) {
				/* No width or precision: escape it in place,
				 * however long. */
				n = (int)strnlen(str, dstsz);
				break;
			}
			n = snprintf(val, sizeof(val), spec, str);
			str = val;
			break;
		case 'p':
			if (lm != L_NONE)
				goto bad;
			n = snprintf(val, sizeof(val), spec,
			    va_arg(ap, void *));
			break;
		default:		/* %n, %m, wide characters: never */
			goto bad;
		}
		if (n < 0)
			goto bad;
		if (str == val && (size_t)n >= sizeof(val))
			n = (int)sizeof(val) - 1;
		flags = 0;
		if (len > 0 && dst[len - 1] == '<')
			flags = STRL_ESC_ADDR;
		else if (len > 0 && dst[len - 1] == '=')
			flags = STRL_ESC_COMMA;
		if (!log_put(dst, dstsz, &len, str, (size_t)n, flags))
			return;
	}
	return;
bad:
	/* The va_list cannot be trusted past a conversion we do not know. */
	(void)log_put(dst, dstsz, &len, "%?", 2, 0);
}

#pragma GCC diagnostic pop

static void
log_vline(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char	line[LOG_LINE_MAX];

	if (log_to == LOG_DEST_NONE && pri > LOG_ERR)
		return;
	log_vformat(line, sizeof(line), fmt, ap);
	if (log_to == LOG_DEST_SYSLOG) {
		if (log_ident_as[0] != '\0')
			openlog(log_ident_as, LOG_PID | LOG_NDELAY, LOG_MAIL);
		syslog(pri, "%s%s%s", line, suffix ? ": " : "",
		    suffix ? suffix : "");
		if (log_ident_as[0] != '\0')
			openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		return;
	}
	/* One write(2) per line, so lines of concurrent processes don't mix. */
	char	out[4400];
	int	n;

	n = snprintf(out, sizeof(out), "%s%s[%ld]: %s%s%s\n",
	    log_tty ? "\r\033[K" : "",
	    log_ident_as[0] != '\0' ? log_ident_as : log_ident, (long)getpid(), line, suffix ? ": " : "", suffix ? suffix : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, out, (size_t)n);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_info_as(const char *role, const char *fmt, ...)
{
	va_list	ap;

	if (!bsnprintf(log_ident_as, sizeof(log_ident_as), "postern/%s",
	    role))
		log_ident_as[0] = '\0';
	va_start(ap, fmt);
	log_vline(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
	log_ident_as[0] = '\0';
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vline(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_panic(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	abort();
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vline(LOG_ERR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline(LOG_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

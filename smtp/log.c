/*
 * log.c - one line per event, in the form operators grep:
 *
 *	postern/runner[4711]: 01JD3KX7Q2: to=<bob@example.org>, ...
 *
 * To standard error the line carries the "postern/<role>[pid]: " prefix
 * itself; to syslog the ident is "postern/<role>" with LOG_PID, facility
 * mail, so the two look the same in the end. Callers format the rest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "smtp.h"

static char		log_ident[64] = "postern";
static enum log_dest	log_to = LOG_DEST_STDERR;

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

const char *
log_role(void)
{
	return log_ident + sizeof("postern/") - 1;
}

static void
log_vline(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char	line[4096];

	if (log_to == LOG_DEST_NONE && pri > LOG_ERR)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to == LOG_DEST_SYSLOG) {
		syslog(pri, "%s%s%s", line, suffix ? ": " : "",
		    suffix ? suffix : "");
		return;
	}
	/* One write(2) per line, so lines of concurrent processes don't mix. */
	char	out[4400];
	int	n;

	n = snprintf(out, sizeof(out), "%s[%ld]: %s%s%s\n", log_ident,
	    (long)getpid(), line, suffix ? ": " : "", suffix ? suffix : "");
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

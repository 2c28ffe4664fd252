/*
 * route_auth.c - relayhost_auth_file: the relayhost's credentials.
 *
 * One parser for the workers that use the credentials and for `postern
 * check` and posternd's start-up check, so that a file the daemon would
 * misread is refused before anything runs on it. The file holds
 * comments, blank lines (the rule of linefile.c: '#' at the start or
 * after white space, so a password may hold '#' but not " #"; white space
 * around a line is dropped) and USER:PASSWORD lines; the first such line
 * is the credential (the password may itself hold ':'). Every other line
 * must be well formed as well: a typo is an error naming its line, never a
 * line silently skipped. The buffers that held a password are wiped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

/* route_auth_text_ok - 1..max octets, no control character. */
static bool
route_auth_text_ok(const char *s, size_t len, size_t max)
{
	size_t	i;

	if (len == 0 || len > max)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

/* What route_auth_line keeps: the first credential. */
struct route_auth_read {
	char	*user;
	char	*pass;
};

/* route_auth_line - a linefile_fn: one line with text (the comment and
 * the white space around it are gone), which must be USER:PASSWORD. */
static int
route_auth_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct route_auth_read	*r = arg;
	char			*colon;

	(void)lineno;
	if ((colon = memchr(line, ':', len)) == NULL) {
		bsnprintf(why, whysz, "want USER:PASSWORD");
		return -1;
	}
	*colon = '\0';
	if (!route_auth_text_ok(line, (size_t)(colon - line),
	    ROUTE_AUTH_USER_MAX)) {
		bsnprintf(why, whysz, "bad user name (1..%d octets, no "
		    "control characters)", ROUTE_AUTH_USER_MAX);
		return -1;
	}
	if (!route_auth_text_ok(colon + 1, len - (size_t)(colon + 1 - line),
	    ROUTE_AUTH_PASS_MAX)) {
		bsnprintf(why, whysz, "bad password (1..%d octets, no "
		    "control characters)", ROUTE_AUTH_PASS_MAX);
		return -1;
	}
	if (r->user == NULL) {
		r->user = xstrdup(line);
		r->pass = xstrdup(colon + 1);
	}
	return 0;
}

int
route_auth_load(const char *file, char **user, char **pass, char *err,
    size_t errsz)
{
	struct route_auth_read	r = { NULL, NULL };

	*user = *pass = NULL;
	if (linefile_read(file, route_auth_line, &r, err, errsz) == -1) {
		route_auth_free(&r.user, &r.pass);
		return -1;
	}
	if (r.user == NULL) {
		bsnprintf(err, errsz, "%s: no USER:PASSWORD line", file);
		return -1;
	}
	*user = r.user;
	*pass = r.pass;
	return 0;
}

void
route_auth_free(char **user, char **pass)
{
	if (*user != NULL)
		explicit_bzero(*user, strlen(*user));
	if (*pass != NULL)
		explicit_bzero(*pass, strlen(*pass));
	free(*user);
	free(*pass);
	*user = *pass = NULL;
}

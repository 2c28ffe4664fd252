/*
 * route_auth.c - relayhost_auth_file: the relayhost's credentials.
 *
 * One parser for the workers that use the credentials and for `postern
 * check` and posternd's start-up check, so that a file the daemon would
 * misread is refused before anything runs on it. The file holds '#'
 * comment lines, blank lines and USER:PASSWORD lines; the first such line
 * is the credential (the password may itself hold ':'). Every other line
 * must be well formed as well: a typo is an error naming its line, never a
 * line silently skipped. The buffers that held a password are wiped.
 */
#include <errno.h>
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

/* route_auth_line - one line without its line end; *found when it is a
 * USER:PASSWORD line (user and pass then point into line). */
static int
route_auth_line(char *line, size_t len, bool *found, char **user,
    char **pass, char *why, size_t whysz)
{
	char	*colon;
	size_t	 i;

	*found = false;
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len || line[i] == '#')
		return 0;
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
	*found = true;
	*user = line;
	*pass = colon + 1;
	return 0;
}

int
route_auth_load(const char *file, char **user, char **pass, char *err,
    size_t errsz)
{
	FILE	*fp;
	char	*line = NULL, *u, *p, why[128];
	size_t	 cap = 0, len;
	ssize_t	 n;
	int	 lineno = 0, rc = -1;
	bool	 found;

	*user = *pass = NULL;
	if ((fp = fopen(file, "re")) == NULL) {
		bsnprintf(err, errsz, "%s: %s", file, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		len = (size_t)n;
		if (memchr(line, '\0', len) != NULL) {
			bsnprintf(err, errsz, "%s:%d: NUL byte", file, lineno);
			goto done;
		}
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			line[--len] = '\0';
		if (route_auth_line(line, len, &found, &u, &p, why,
		    sizeof(why)) == -1) {
			bsnprintf(err, errsz, "%s:%d: %s", file, lineno, why);
			goto done;
		}
		if (found && *user == NULL) {
			*user = xstrdup(u);
			*pass = xstrdup(p);
		}
	}
	if (ferror(fp)) {
		bsnprintf(err, errsz, "%s: read error", file);
		goto done;
	}
	if (*user == NULL) {
		bsnprintf(err, errsz, "%s: no USER:PASSWORD line", file);
		goto done;
	}
	rc = 0;
done:
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(fp);
	if (rc != 0)
		route_auth_free(user, pass);
	return rc;
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

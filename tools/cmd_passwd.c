/*
 * cmd_passwd.c - `postern passwd USER [DOMAIN...]`: make a users_file line.
 *
 * The password is the first line of standard input, without its line end
 * (LF or CRLF), so that `printf '%s\n' "$pw" | postern passwd site1 ...`
 * works from scripts; at a terminal we prompt on standard error with echo
 * off. Standard output gets the users_file line (smtp_auth.c: {CRYPT}
 * SHA-512 crypt, {CRAM-MD5} HMAC states, {SCRAM-SHA-256} keys) and
 * nothing else; the password itself is never printed. A bad user name,
 * domain or password is refused with exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tools.h"

#define PASSWD_CMD	"passwd"

/* passwd_read - the first line of stdin into *pw (malloc'd), without its
 * line end. Returns its length, or -1 at end of input. */
static ssize_t
passwd_read(char **pw, size_t *cap)
{
	struct termios	 old, quiet;
	bool		 tty;
	ssize_t		 n;

	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fputs("Password: ", stderr);
		fflush(stderr);
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	n = getline(pw, cap, stdin);
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n > 0 && (*pw)[n - 1] == '\n')
		(*pw)[--n] = '\0';
	if (n > 0 && (*pw)[n - 1] == '\r')
		(*pw)[--n] = '\0';
	return n;
}

int
cmd_passwd(struct tools_ctx *ctx, int argc, char **argv)
{
	struct conf_list	 doms = { NULL, 0 };
	struct sbuf		*line = NULL;
	const char		*user, *d;
	char			*pw = NULL;
	size_t			 cap = 0, i;
	ssize_t			 n;
	int			 a = 1, rc = TOOLS_EXIT_USAGE;

	(void)ctx;
	if (a < argc && strcmp(argv[a], "--") == 0)
		a++;
	else if (a < argc && argv[a][0] == '-')
		return tools_usage(PASSWD_CMD, "unknown option \"%s\"",
		    argv[a]);
	if (a >= argc)
		return tools_usage(PASSWD_CMD, "usage: postern passwd USER "
		    "[DOMAIN...] (password on standard input)");
	user = argv[a++];
	if (!auth_user_name_ok(user, strlen(user)))
		return tools_usage(PASSWD_CMD, "bad user name \"%s\": want "
		    "1..%d printable characters, no space or ':', not "
		    "starting with '#'", user, AUTH_USER_MAX);
	for (; a < argc; a++) {
		/* ".example.org": every subdomain, as in users_file. */
		d = argv[a][0] == '.' ? argv[a] + 1 : argv[a];
		if (!smtp_domain_valid(d, 0)) {
			rc = tools_usage(PASSWD_CMD, "bad domain \"%s\"",
			    argv[a]);
			goto out;
		}
		doms.v = xreallocarray(doms.v, doms.n + 1, sizeof(*doms.v));
		doms.v[doms.n++] = strl_lower(xstrdup(argv[a]));
	}

	n = passwd_read(&pw, &cap);
	if (n <= 0) {
		rc = tools_usage(PASSWD_CMD, "empty password (give it as the "
		    "first line of standard input)");
		goto out;
	}
	if (memchr(pw, '\0', (size_t)n) != NULL) {
		rc = tools_usage(PASSWD_CMD, "password contains a NUL byte");
		goto out;
	}
	if (n > AUTH_PASS_MAX) {
		rc = tools_usage(PASSWD_CMD, "password longer than %d octets",
		    AUTH_PASS_MAX);
		goto out;
	}
	for (i = 0; i < (size_t)n; i++)
		if ((unsigned char)pw[i] >= 0x80)
			break;
	if (i < (size_t)n)
		fprintf(stderr, "postern %s: note: non-ASCII password; SCRAM "
		    "clients that apply SASLprep may not match it\n",
		    PASSWD_CMD);

	line = sbuf_new();
	if (auth_make_line(user, pw, &doms, line) != 0) {
		rc = tools_fail(PASSWD_CMD, "could not make the line "
		    "(crypt or random source failed)");
		goto out;
	}
	printf("%s\n", sbuf_str(line));
	rc = fflush(stdout) == 0 && !ferror(stdout) ? TOOLS_EXIT_OK :
	    tools_fail(PASSWD_CMD, "write error on standard output");
out:
	if (pw != NULL) {
		explicit_bzero(pw, cap);
		free(pw);
	}
	sbuf_free(line);
	conf_list_free(&doms);
	return rc;
}

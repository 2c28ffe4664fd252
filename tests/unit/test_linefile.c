/*
 * test_linefile.c - linefile_read(), the one reader of line-oriented
 * files, and its one rule: comments, CRLF, NUL bytes, long lines, a
 * missing final LF, and errors that name the line.
 *
 * The text is given to the reader through a memfd and /proc/self/fd/N,
 * so no test leaves a file behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "smtp.h"
#include "tharness.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* lf_text - a file holding the n octets of text: its fd, its name in
 * path. -1 on error. */
static int
lf_text(const char *text, size_t n, char *path, size_t pathsz)
{
	int	fd;

	if ((fd = memfd_create("test_linefile", MFD_CLOEXEC)) == -1)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	(void)bsnprintf(path, pathsz, "/proc/self/fd/%d", fd);
	return fd;
}

/* lf_collect - a linefile_fn that writes "LINENO:TEXT|" for each line
 * into the sbuf; a line "fail" is an error. */
static int
lf_collect(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct sbuf	*b = arg;

	if (len != strlen(line)) {
		(void)bsnprintf(why, whysz, "len %zu, strlen %zu", len,
		    strlen(line));
		return -1;
	}
	if (strcmp(line, "fail") == 0) {
		(void)bsnprintf(why, whysz, "told to fail");
		return -1;
	}
	sbuf_catf(b, "%d:%s|", lineno, line);
	return 0;
}

/* lf_run - read n octets of text; the lines seen in got, the error (with
 * the path replaced by "F") in err. Returns what linefile_read did. */
static int
lf_run(struct t *t, const char *text, size_t n, struct sbuf *got,
    char *err, size_t errsz)
{
	char	path[64], raw[512];
	size_t	plen;
	int	fd, rc;

	sbuf_reset(got);
	err[0] = '\0';
	if ((fd = lf_text(text, n, path, sizeof(path))) == -1) {
		t_errorf(t, "memfd: %s", strerror(errno));
		return -2;
	}
	raw[0] = '\0';
	rc = linefile_read(path, lf_collect, got, raw, sizeof(raw));
	close(fd);
	plen = strlen(path);
	if (strncmp(raw, path, plen) == 0)
		(void)bsnprintf(err, errsz, "F%s", raw + plen);
	else
		(void)strl_copy(err, raw, errsz);
	return rc;
}

/* The rule: what each kind of line gives the parser. */
static void
lines_table(struct t *t)
{
	static const struct {
		const char	*text;
		const char	*want;
	} v[] = {
		{ "", "" },
		{ "a\nb\n", "1:a|2:b|" },
		{ "a\r\nb\r\n", "1:a|2:b|" },			/* CRLF */
		{ "a\nb", "1:a|2:b|" },			/* no final LF */
		{ "a\r\nb\r", "1:a|2:b|" },
		{ "\n\n\nx", "4:x|" },
		{ "  lead and trail \t \n", "1:lead and trail|" },
		{ "# a comment\n   # indented\n\t#tab\n#\n", "" },
		{ "x # trailing\n", "1:x|" },
		{ "x\t#tab before\n", "1:x|" },
		{ "key = value#not a comment\n",
		    "1:key = value#not a comment|" },
		{ "bob:pass#word\n", "1:bob:pass#word|" },
		{ "bob:pass #word\n", "1:bob:pass|" },
		{ "a:$6$salt$h#sh:dom # c\n", "1:a:$6$salt$h#sh:dom|" },
		{ "a\rb\n", "1:a\rb|" },		/* CR inside: text */
		{ "\r\n \r\n", "" },
		{ "x ## y\n", "1:x|" },
		{ "x#\n", "1:x#|" },
	};
	struct sbuf	*got = sbuf_new();
	char		 err[256];
	size_t		 i;
	int		 rc;

	for (i = 0; i < NELEM(v); i++) {
		rc = lf_run(t, v[i].text, strlen(v[i].text), got, err,
		    sizeof(err));
		if (rc != 0 || strcmp(sbuf_str(got), v[i].want) != 0)
			t_errorf(t, "case %zu: got %d \"%s\" (%s), want \"%s\"",
			    i, rc, sbuf_str(got), err, v[i].want);
	}
	sbuf_free(got);
}

/* A NUL byte is an error naming its line, in a comment too; the lines
 * before it were seen, none after it. */
static void
nul_byte(struct t *t)
{
	static const struct {
		const char	*text;
		size_t		 n;
		const char	*seen;
		const char	*err;
	} v[] = {
		{ "a\nb\0c\nd\n", 8, "1:a|", "F:2: NUL byte" },
		{ "a\n# x\0\n", 7, "1:a|", "F:2: NUL byte" },
		{ "\0", 1, "", "F:1: NUL byte" },
		{ "a\n\n\0\n", 5, "1:a|", "F:3: NUL byte" },
	};
	struct sbuf	*got = sbuf_new();
	char		 err[256];
	size_t		 i;
	int		 rc;

	for (i = 0; i < NELEM(v); i++) {
		rc = lf_run(t, v[i].text, v[i].n, got, err, sizeof(err));
		if (rc != -1 || strcmp(err, v[i].err) != 0 ||
		    strcmp(sbuf_str(got), v[i].seen) != 0)
			t_errorf(t, "case %zu: got %d \"%s\" after \"%s\", "
			    "want -1 \"%s\" after \"%s\"", i, rc, err,
			    sbuf_str(got), v[i].err, v[i].seen);
	}
	sbuf_free(got);
}

/* LINEFILE_LINE_MAX octets is a line; one more is an error, not two
 * lines (fgets() once split it). The CR of a CRLF does not count. */
static void
long_lines(struct t *t)
{
	struct sbuf	*text = sbuf_new(), *got = sbuf_new();
	char		 err[256], want[128];
	size_t		 i;
	int		 rc;

	sbuf_cat(text, "first\n");
	for (i = 0; i < LINEFILE_LINE_MAX; i++)
		sbuf_catc(text, 'x');
	sbuf_cat(text, "\r\n");
	rc = lf_run(t, sbuf_str(text), sbuf_len(text), got, err, sizeof(err));
	if (rc != 0 || sbuf_len(got) != 8 + 2 + LINEFILE_LINE_MAX + 1)
		t_errorf(t, "%d octets and CRLF: got %d (%s), %zu octets seen",
		    LINEFILE_LINE_MAX, rc, err, sbuf_len(got));

	sbuf_reset(text);
	sbuf_cat(text, "first\n");
	for (i = 0; i < LINEFILE_LINE_MAX + 1; i++)
		sbuf_catc(text, 'x');
	sbuf_cat(text, "\nlast\n");
	rc = lf_run(t, sbuf_str(text), sbuf_len(text), got, err, sizeof(err));
	(void)bsnprintf(want, sizeof(want), "F:2: line longer than %d octets",
	    LINEFILE_LINE_MAX);
	if (rc != -1 || strcmp(err, want) != 0 ||
	    strcmp(sbuf_str(got), "1:first|") != 0)
		t_errorf(t, "%d octets: got %d \"%s\", want -1 \"%s\"",
		    LINEFILE_LINE_MAX + 1, rc, err, want);

	/* A long comment is a long line too: the limit bounds memory. */
	sbuf_reset(text);
	sbuf_catc(text, '#');
	for (i = 0; i < 2 * LINEFILE_LINE_MAX; i++)
		sbuf_catc(text, 'x');
	rc = lf_run(t, sbuf_str(text), sbuf_len(text), got, err, sizeof(err));
	(void)bsnprintf(want, sizeof(want), "F:1: line longer than %d octets",
	    LINEFILE_LINE_MAX);
	if (rc != -1 || strcmp(err, want) != 0)
		t_errorf(t, "long comment, no LF: got %d \"%s\", want -1 "
		    "\"%s\"", rc, err, want);
	sbuf_free(text);
	sbuf_free(got);
}

/* The parser's error gets "file:line: " in front; reading stops there. */
static void
errors(struct t *t)
{
	struct sbuf	*got = sbuf_new();
	char		 err[256], want[256], tiny[8];
	int		 rc;

	rc = lf_run(t, "a\n# c\n\nfail # here\nb\n", 21, got, err,
	    sizeof(err));
	if (rc != -1 || strcmp(err, "F:4: told to fail") != 0 ||
	    strcmp(sbuf_str(got), "1:a|") != 0)
		t_errorf(t, "parser error: got %d \"%s\" after \"%s\"", rc, err,
		    sbuf_str(got));

	/* A file that is not there, and one that cannot be read. */
	rc = linefile_read("/nonexistent/linefile", lf_collect, got, err,
	    sizeof(err));
	(void)bsnprintf(want, sizeof(want), "/nonexistent/linefile: %s",
	    strerror(ENOENT));
	if (rc != -1 || strcmp(err, want) != 0)
		t_errorf(t, "missing: got %d \"%s\", want \"%s\"", rc, err,
		    want);
	rc = linefile_read("/tmp", lf_collect, got, err, sizeof(err));
	(void)bsnprintf(want, sizeof(want), "/tmp: %s", strerror(EISDIR));
	if (rc != -1 || strcmp(err, want) != 0)
		t_errorf(t, "directory: got %d \"%s\", want \"%s\"", rc, err,
		    want);

	/* A small err is cut, not overrun; no err at all is fine. */
	rc = linefile_read("/nonexistent/linefile", lf_collect, got, tiny,
	    sizeof(tiny));
	if (rc != -1 || strcmp(tiny, "/nonexi") != 0)
		t_errorf(t, "tiny err: got %d \"%s\"", rc, tiny);
	if (linefile_read("/nonexistent/linefile", lf_collect, got, NULL,
	    0) != -1)
		t_errorf(t, "NULL err: want -1");
	sbuf_free(got);
}

int
main(void)
{
	T_RUN(lines_table);
	T_RUN(nul_byte);
	T_RUN(long_lines);
	T_RUN(errors);
	T_EXIT();
}

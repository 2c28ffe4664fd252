/*
 * test_log.c - unit tests for the escaping that keeps log lines one line
 * and terminals free of a peer's control bytes: log.c (log_vformat, the
 * line log_info writes), strl.c (strl_esc_unit, strl_esc) and sbuf.c
 * (sbuf_esc_str, sbuf_json_str).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"
#include "tharness.h"

static void	fmt(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
fmt(char *dst, size_t dstsz, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	log_vformat(dst, dstsz, f, ap);
	va_end(ap);
}

#define CHECK(t, got, want, what) do {					\
	if (strcmp((got), (want)) != 0)					\
		t_errorf(t, "%s: got \"%s\", want \"%s\"", (what),	\
		    (got), (want));					\
} while (0)

/* Each value escaped; the format's own text and the numbers as printf. */
static void
vformat_values(struct t *t)
{
	char		 b[256], w[256];
	const char	*volatile nul;

	fmt(b, sizeof(b), "user=%s: failed", "a\nb\rc\td\\e\x1b[31m\x7f");
	CHECK(t, b, "user=a\\nb\\rc\\td\\\\e\\x1b[31m\\x7f: failed",
	    "control bytes");
	fmt(b, sizeof(b), "x %s", "\xff\xfe caf\xc3\xa9 \xf0\x9f\x93\xa7");
	CHECK(t, b, "x \\xff\\xfe caf\xc3\xa9 \xf0\x9f\x93\xa7",
	    "not UTF-8, UTF-8");
	fmt(b, sizeof(b), "x %s", "\xc2\x9b" "1m \xc2\x85 \xe2\x80\xae "
	    "\xe2\x80\xa8 \xe2\x81\xa6 \xc2\xa0");
	CHECK(t, b, "x \\xc2\\x9b1m \\xc2\\x85 \\xe2\\x80\\xae \\xe2\\x80\\xa8 "
	    "\\xe2\\x81\\xa6 \xc2\xa0", "C1, separators, bidi");
	fmt(b, sizeof(b), "x %s", "\xe2\x82");
	CHECK(t, b, "x \\xe2\\x82", "cut UTF-8 sequence");
	fmt(b, sizeof(b), "x %s", "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80");
	CHECK(t, b, "x \\xc0\\xaf \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80",
	    "overlong, surrogate, past U+10FFFF");
	fmt(b, sizeof(b), "%c%c", '\n', 'a');
	CHECK(t, b, "\\na", "%c");
	fmt(b, sizeof(b), "line\none");
	CHECK(t, b, "line\\none", "the format's own LF");
	nul = NULL;
	fmt(b, sizeof(b), "%s", nul);
	CHECK(t, b, "(null)", "NULL");
	fmt(b, sizeof(b), "100%% %s%%", "x");
	CHECK(t, b, "100% x%", "%%");

	fmt(b, sizeof(b), "%d %i %u %ld %lld %zu %zd %jd %x %X %o %hhd %hu "
	    "%5.2f %-4d| %+d %#x %08.3f %e %g %Lf", -1, 2, 3u, -4L, 5LL,
	    (size_t)6, (ssize_t)-7, (intmax_t)8, 255u, 255u, 8u, 300, 65537,
	    3.14159, 7, 9, 16u, -2.5, 1e10, 0.5, (long double)1.25);
	snprintf(w, sizeof(w), "%d %i %u %ld %lld %zu %zd %jd %x %X %o %hhd "
	    "%hu %5.2f %-4d| %+d %#x %08.3f %e %g %Lf", -1, 2, 3u, -4L, 5LL,
	    (size_t)6, (ssize_t)-7, (intmax_t)8, 255u, 255u, 8u, 300, 65537,
	    3.14159, 7, 9, 16u, -2.5, 1e10, 0.5, (long double)1.25);
	CHECK(t, b, w, "numbers");
	fmt(b, sizeof(b), "[%-6s][%6s][%.2s][%*s][%-*d][%.*s][%.*s]", "ab",
	    "ab", "abc", 4, "x", 3, 1, 2, "abc", -1, "abc");
	CHECK(t, b, "[ab    ][    ab][ab][   x][1  ][ab][abc]",
	    "width and precision");
	fmt(b, sizeof(b), "[%.3s]", "\n\n\n\n");
	CHECK(t, b, "[\\n\\n\\n]", "precision counts bytes, then escaped");
	fmt(b, sizeof(b), "%p", (void *)b);
	snprintf(w, sizeof(w), "%p", (void *)b);
	CHECK(t, b, w, "%p");
}

/* The two field rules: after '<' an address, after '=' a value. */
static void
vformat_fields(struct t *t)
{
	char	b[256];

	fmt(b, sizeof(b), "from=<%s>, size=%d", "\"a>, to=<x\"@b", 3);
	CHECK(t, b, "from=<\"a\\x3e\\x2c to=<x\"@b>, size=3", "address");
	fmt(b, sizeof(b), "client=%s, user=%s: no", "h,x=y[1.2.3.4]",
	    "a, b>c");
	CHECK(t, b, "client=h\\x2cx=y[1.2.3.4], user=a\\x2c b>c: no",
	    "field values");
	fmt(b, sizeof(b), "status=%s (%s)", "sent", "250 ok, <queued>");
	CHECK(t, b, "status=sent (250 ok, <queued>)", "free text in ( )");
	/* The context is what was written last, conversions included:
	 * dlog writes " orig_to=<" as a value. */
	fmt(b, sizeof(b), "to=<%s>,%s%s%s relay=%s", "a", " orig_to=<",
	    "o>,p", ">,", "r");
	CHECK(t, b, "to=<a>, orig_to=<o\\x3e\\x2cp>, relay=r",
	    "a context written by a conversion");
	fmt(b, sizeof(b), "%s", "a, b>");
	CHECK(t, b, "a, b>", "no context");
}

/* A full buffer cuts between escapes and stops. */
static void
vformat_cut(struct t *t)
{
	char	b[7], big[LOG_LINE_MAX * 2], line[LOG_LINE_MAX];
	size_t	i;

	memset(b, 'Z', sizeof(b));
	fmt(b, sizeof(b), "%s", "\n\n\n\n");
	CHECK(t, b, "\\n\\n\\n", "cut at 7");
	fmt(b, sizeof(b), "ab%sxyz", "\xff");
	CHECK(t, b, "ab\\xff", "cut before the format's rest");
	fmt(b, sizeof(b), "abcd%s", "\xff");
	CHECK(t, b, "abcd", "escape that does not fit");
	fmt(b, 1, "%s", "x");
	CHECK(t, b, "", "size 1");
	for (i = 0; i < sizeof(big) - 1; i++)
		big[i] = i % 2 ? '\n' : 'a';
	big[sizeof(big) - 1] = '\0';
	fmt(line, sizeof(line), "x=%s end", big);
	if (strlen(line) >= sizeof(line) || strchr(line, '\n') != NULL ||
	    strstr(line, " end") != NULL)
		t_errorf(t, "long value: length %zu", strlen(line));
}

/* strl_esc and sbuf_esc_str: the same units, with the flags. */
static void
esc_table(struct t *t)
{
	static const struct {
		const char	*in;
		int		 flags;
		const char	*want;
	} c[] = {
		{ "plain", 0, "plain" },
		{ "a,b>c", 0, "a,b>c" },
		{ "a,b>c", STRL_ESC_ADDR, "a\\x2cb\\x3ec" },
		{ "a,b>c", STRL_ESC_COMMA, "a\\x2cb>c" },
		{ "a,b>c", STRL_ESC_GT, "a,b\\x3ec" },
		{ "a\tb", 0, "a\\tb" },
		{ "a\tb\x1b", STRL_ESC_TAB, "a\tb\\x1b" },
		{ "\\x41", 0, "\\\\x41" },
		{ "", 0, "" },
	};
	struct sbuf	*sb = sbuf_new();
	char		 b[64];
	size_t		 i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (!strl_esc(b, sizeof(b), c[i].in, strlen(c[i].in),
		    c[i].flags))
			t_errorf(t, "strl_esc(\"%s\", %d): cut", c[i].in,
			    c[i].flags);
		CHECK(t, b, c[i].want, "strl_esc");
		sbuf_reset(sb);
		sbuf_esc_str(sb, c[i].in, c[i].flags);
		CHECK(t, sbuf_str(sb), c[i].want, "sbuf_esc_str");
	}
	if (strl_esc(b, 4, "ab\n", 3, 0) || strcmp(b, "ab") != 0)
		t_errorf(t, "strl_esc cut: got \"%s\", want \"ab\" and false",
		    b);
	/* A NUL in the middle (a header line) is a control byte. */
	if (!strl_esc(b, sizeof(b), "a\0b", 3, 0) ||
	    strcmp(b, "a\\x00b") != 0)
		t_errorf(t, "strl_esc NUL: got \"%s\"", b);
	sbuf_free(sb);
}

/* sbuf_json_str: valid JSON (and UTF-8) whatever the bytes. */
static void
json_table(struct t *t)
{
	static const struct {
		const char	*in;
		const char	*want;
	} c[] = {
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\n\r\t\x01\x1b\x7f", "\"\\n\\r\\t\\u0001\\u001b\\u007f\"" },
		{ "caf\xc3\xa9 \xf0\x9f\x93\xa7",
		    "\"caf\xc3\xa9 \xf0\x9f\x93\xa7\"" },
		{ "\xff\xfe\x80", "\"\\u00ff\\u00fe\\u0080\"" },
		{ "\xc2\x9b" "1m", "\"\\u009b1m\"" },
		{ "\xe2\x80\xa8\xe2\x80\xae", "\"\\u2028\\u202e\"" },
		{ "\xe2\x82", "\"\\u00e2\\u0082\"" },
		{ "", "\"\"" },
	};
	struct sbuf	*sb = sbuf_new();
	size_t		 i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		sbuf_reset(sb);
		sbuf_json_str(sb, c[i].in);
		CHECK(t, sbuf_str(sb), c[i].want, "sbuf_json_str");
	}
	sbuf_free(sb);
}

/* What log_info writes to standard error: one line, whatever it is
 * given (a SASL user name with a LF once forged a whole line). */
static void
info_one_line(struct t *t)
{
	FILE	*tf = tmpfile();
	char	 got[1024], want[1024];
	ssize_t	 n;
	int	 saved;

	if (tf == NULL)
		t_fatalf(t, "tmpfile failed");
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(tf), STDERR_FILENO);
	log_init("test", LOG_DEST_STDERR);
	log_info("client=%s, user=%s: authentication failed", "h[1.2.3.4]",
	    "x\r\npostern/smtpd[1]: 1K0VFQ9AWNR: client=forged[6.6.6.6], "
	    "auth=admin");
	log_warnx("from=<%s>", "\"a>, b\"@c\x1b");
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fileno(tf), got, sizeof(got) - 1, 0);
	fclose(tf);
	if (n < 0)
		t_fatalf(t, "read back failed");
	got[n] = '\0';
	snprintf(want, sizeof(want), "postern/test[%ld]: client=h[1.2.3.4], "
	    "user=x\\r\\npostern/smtpd[1]: 1K0VFQ9AWNR: "
	    "client=forged[6.6.6.6]\\x2c auth=admin: authentication failed\n"
	    "postern/test[%ld]: from=<\"a\\x3e\\x2c b\"@c\\x1b>\n",
	    (long)getpid(), (long)getpid());
	CHECK(t, got, want, "log_info to stderr");
}

int
main(void)
{
	T_RUN(vformat_values);
	T_RUN(vformat_fields);
	T_RUN(vformat_cut);
	T_RUN(esc_table);
	T_RUN(json_table);
	T_RUN(info_one_line);
	T_EXIT();
}

/*
 * test_smtp_reply.c - unit tests for what an SMTP client reads and
 * writes: smtp_reply.c (replies, multi-line, enhanced status codes, the
 * reader's limits) and smtp_dot.c (dot-stuffing and the final CRLF.CRLF;
 * BDAT's plain copy).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "tharness.h"

/* feed - the whole of in to a fresh reader at once; the feed's result. */
static int
feed(const char *in, size_t len, struct smtp_reply_reader *rd,
    struct smtp_reply *r, size_t *used, struct sbuf *lines)
{
	smtp_reply_begin(rd, r);
	return smtp_reply_feed(rd, r, in, len, used, lines);
}

static void
reply_table(struct t *t)
{
	static const struct {
		const char	*name;
		const char	*in;
		int		 rc;
		int		 code;
		const char	*status;
		const char	*text;
		const char	*lines;
		size_t		 used;		/* 0: all of in */
	} cases[] = {
		{ "one line", "250 2.1.0 Ok\r\n", 1, 250, "2.1.0",
		    "250 2.1.0 Ok", "2.1.0 Ok\n", 0 },
		{ "bare code", "250\r\n", 1, 250, "", "250", "\n", 0 },
		{ "bare LF", "221 bye\n", 1, 221, "", "221 bye", "bye\n", 0 },
		{ "multi-line", "250-mx.example.org\r\n250-PIPELINING\r\n"
		    "250 SIZE 1000\r\n", 1, 250, "",
		    "250 mx.example.org PIPELINING SIZE 1000",
		    "mx.example.org\nPIPELINING\nSIZE 1000\n", 0 },
		{ "repeated x.y.z", "550-5.1.1 no such\r\n550 5.1.1 user\r\n",
		    1, 550, "5.1.1", "550 5.1.1 no such user",
		    "5.1.1 no such\n5.1.1 user\n", 0 },
		{ "class differs", "250 5.1.1 odd\r\n", 1, 250, "",
		    "250 5.1.1 odd", "5.1.1 odd\n", 0 },
		{ "no x.y.z", "451 4.7 later\r\n", 1, 451, "",
		    "451 4.7 later", "4.7 later\n", 0 },
		{ "control bytes", "550 a\tb\033c\r\n", 1, 550, "",
		    "550 a b c", "a\tb\033c\n", 0 },
		{ "NUL ends the line", "250 a\0b\r\n", 1, 250, "", "250 a",
		    "a\n", 9 },
		{ "what follows stays", "250 a\r\n220 b\r\n", 1, 250, "",
		    "250 a", "a\n", 7 },
		{ "no CRLF yet", "250 Ok", 0, 0, "", "", "", 0 },
		{ "half a reply", "250-a\r\n250 b", 0, 250, "", "", "a\n", 7 },
		{ "not a reply", "hello\r\n", SMTP_REPLY_E_SYNTAX, 0, "", "",
		    "", 0 },
		{ "short code", "25\r\n", SMTP_REPLY_E_SYNTAX, 0, "", "", "",
		    0 },
		{ "class 6", "600 x\r\n", SMTP_REPLY_E_SYNTAX, 0, "", "", "",
		    0 },
		{ "class 1", "150 x\r\n", SMTP_REPLY_E_SYNTAX, 0, "", "", "",
		    0 },
		{ "no separator", "250x\r\n", SMTP_REPLY_E_SYNTAX, 0, "", "",
		    "", 0 },
		{ "bad continuation", "250-a\r\nfoo\r\n", SMTP_REPLY_E_SYNTAX,
		    250, "", "", "a\n", 0 },
	};
	struct smtp_reply_reader	 rd;
	struct smtp_reply		 r;
	struct sbuf			*lines = sbuf_new();
	size_t				 i, used, len, want_used;
	int				 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sbuf_reset(lines);
		len = strlen(cases[i].in);
		if (strcmp(cases[i].name, "NUL ends the line") == 0)
			len = 9;
		want_used = cases[i].used != 0 ? cases[i].used : len;
		if (cases[i].rc == 0 && cases[i].used == 0)
			want_used = 0;
		rc = feed(cases[i].in, len, &rd, &r, &used, lines);
		if (rc != cases[i].rc || r.code != cases[i].code ||
		    used != want_used || strcmp(lines->s, cases[i].lines) != 0)
			t_errorf(t, "%s: smtp_reply_feed: got %d code %d used "
			    "%zu lines \"%s\", want %d code %d used %zu lines "
			    "\"%s\"", cases[i].name, rc, r.code, used,
			    lines->s, cases[i].rc, cases[i].code, want_used,
			    cases[i].lines);
		if (rc != 1)
			continue;
		if (strcmp(r.status, cases[i].status) != 0 ||
		    strcmp(r.text, cases[i].text) != 0)
			t_errorf(t, "%s: got status \"%s\" text \"%s\", want "
			    "\"%s\" \"%s\"", cases[i].name, r.status, r.text,
			    cases[i].status, cases[i].text);
	}
	/* The offending line is kept for the caller's message. */
	if (feed("hello\r\n", 7, &rd, &r, &used, NULL) !=
	    SMTP_REPLY_E_SYNTAX || strcmp(rd.line, "hello") != 0)
		t_errorf(t, "bad line: got \"%s\", want \"hello\"", rd.line);
	sbuf_free(lines);
}

/* A reply that arrives one byte at a time reads as one that came whole. */
static void
reply_bytewise(struct t *t)
{
	const char			*in = "250-mx.example.org\r\n"
	    "250-8BITMIME\r\n250 2.0.0 SIZE\r\n";
	struct smtp_reply_reader	 rd;
	struct smtp_reply		 r;
	struct sbuf			*lines = sbuf_new();
	size_t				 len = strlen(in), off = 0, used, pend;
	int				 rc = 0;

	smtp_reply_begin(&rd, &r);
	/* The bytes not yet taken are offered again with the next one. */
	for (pend = 1; off + pend <= len; pend++) {
		rc = smtp_reply_feed(&rd, &r, in + off, pend, &used, lines);
		off += used;
		pend -= used;
		if (rc != 0)
			break;
	}
	if (rc != 1 || off != len || r.code != 250 ||
	    strcmp(r.text, "250 mx.example.org 8BITMIME 2.0.0 SIZE") != 0 ||
	    strcmp(lines->s, "mx.example.org\n8BITMIME\n2.0.0 SIZE\n") != 0)
		t_errorf(t, "bytewise: got %d at %zu of %zu, code %d text "
		    "\"%s\" lines \"%s\"", rc, off, len, r.code, r.text,
		    lines->s);
	sbuf_free(lines);
}

/* Over-long lines are cut; too much of them, or too many lines, is an
 * error rather than a buffer that grows. */
static void
reply_limits(struct t *t)
{
	struct smtp_reply_reader	 rd;
	struct smtp_reply		 r;
	struct sbuf			*in = sbuf_new();
	size_t				 used, i;
	int				 rc;

	/* A 1000-byte line: cut at SMTP_REPLY_LINE_MAX, the text at
	 * SMTP_REPLY_TEXT_MAX. */
	sbuf_cat(in, "550 ");
	for (i = 0; i < 996; i++)
		sbuf_catc(in, 'x');
	sbuf_cat(in, "\r\n");
	rc = feed(in->s, in->len, &rd, &r, &used, NULL);
	if (rc != 1 || used != in->len || r.code != 550 ||
	    strlen(r.text) != SMTP_REPLY_TEXT_MAX ||
	    rd.llen != SMTP_REPLY_LINE_MAX)
		t_errorf(t, "long line: got %d used %zu of %zu code %d, text "
		    "%zu bytes, line %zu, want 1, all, 550, %d, %d", rc, used,
		    in->len, r.code, strlen(r.text), rd.llen,
		    SMTP_REPLY_TEXT_MAX, SMTP_REPLY_LINE_MAX);

	/* The same line in two pieces, the first without its end. */
	smtp_reply_begin(&rd, &r);
	rc = smtp_reply_feed(&rd, &r, in->s, 700, &used, NULL);
	if (rc != 0 || used != 700 || !rd.skipping)
		t_errorf(t, "long line, first part: got %d used %zu skipping "
		    "%d, want 0 700 1", rc, used, rd.skipping);
	rc = smtp_reply_feed(&rd, &r, in->s + 700, in->len - 700, &used,
	    NULL);
	if (rc != 1 || used != in->len - 700 || r.code != 550)
		t_errorf(t, "long line, second part: got %d used %zu code %d",
		    rc, used, r.code);

	/* More than SMTP_REPLY_JUNK_MAX bytes of one line. */
	sbuf_reset(in);
	sbuf_cat(in, "250 ");
	for (i = 0; i < SMTP_REPLY_JUNK_MAX + 1024; i++)
		sbuf_catc(in, 'y');
	rc = feed(in->s, in->len, &rd, &r, &used, NULL);
	if (rc != SMTP_REPLY_E_LONG)
		t_errorf(t, "junk: got %d, want SMTP_REPLY_E_LONG", rc);

	/* SMTP_REPLY_LINES lines and no end; one fewer and an end. */
	sbuf_reset(in);
	for (i = 0; i < SMTP_REPLY_LINES; i++)
		sbuf_cat(in, "250-x\r\n");
	sbuf_cat(in, "250 end\r\n");
	rc = feed(in->s, in->len, &rd, &r, &used, NULL);
	if (rc != SMTP_REPLY_E_LINES)
		t_errorf(t, "%d lines: got %d, want SMTP_REPLY_E_LINES",
		    SMTP_REPLY_LINES + 1, rc);
	sbuf_reset(in);
	for (i = 0; i < SMTP_REPLY_LINES - 1; i++)
		sbuf_cat(in, "250-x\r\n");
	sbuf_cat(in, "250 end\r\n");
	rc = feed(in->s, in->len, &rd, &r, &used, NULL);
	if (rc != 1 || used != in->len)
		t_errorf(t, "%d lines: got %d used %zu, want 1 %zu",
		    SMTP_REPLY_LINES, rc, used, in->len);
	sbuf_free(in);
}

static void
reply_enhanced_status(struct t *t)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*out;
	} ecases[] = {
		{ "2.0.0", 5, "2.0.0" },
		{ "5.1.10 x", 6, "5.1.10" },
		{ "4.7.123", 7, "4.7.123" },
		{ "4.7.1234", 0, "" },
		{ "5.1", 0, "" },
		{ "3.0.0", 0, "" },
		{ "2.0.0x", 0, "" },
		{ "2..0", 0, "" },
	};
	static const struct {
		int		 code;
		const char	*status;
		const char	*want;
	} scases[] = {
		{ 250, "", "2.0.0" },
		{ 550, "5.1.1", "5.1.1" },
		{ 421, "", "4.4.2" },
		{ 421, "4.3.2", "4.3.2" },
		{ 452, "", "4.0.0" },
	};
	struct smtp_reply	r;
	char			out[16], st[16];
	size_t			i, n;

	for (i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		out[0] = '\0';
		n = smtp_reply_enhanced(ecases[i].in, out);
		if (n != ecases[i].len || (n > 0 &&
		    strcmp(out, ecases[i].out) != 0))
			t_errorf(t, "smtp_reply_enhanced(\"%s\"): got %zu "
			    "\"%s\", want %zu \"%s\"", ecases[i].in, n,
			    n > 0 ? out : "", ecases[i].len, ecases[i].out);
	}
	for (i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.code = scases[i].code;
		strl_copy(r.status, scases[i].status, sizeof(r.status));
		smtp_reply_status(&r, st);
		if (strcmp(st, scases[i].want) != 0)
			t_errorf(t, "smtp_reply_status(%d \"%s\"): got \"%s\", "
			    "want \"%s\"", scases[i].code, scases[i].status, st,
			    scases[i].want);
	}
}

/* dot_case - pieces of a message (NULL after the last) and the octets
 * the copy must make of them. */
struct dot_case {
	const char	*name;
	const char	*in[3];		/* pieces */
	const char	*want;
};

/* dot_run - each case through smtp_dot_begin, copy for each piece and
 * end: DATA's copy (smtp_dot_stuff, smtp_dot_end) or BDAT's
 * (smtp_dot_plain, smtp_dot_close). */
static void
dot_run(struct t *t, const struct dot_case *cases, size_t n,
    void (*copy)(struct smtp_dot *, struct sbuf *, const char *, size_t),
    void (*end)(struct smtp_dot *, struct sbuf *))
{
	struct smtp_dot	 d;
	struct sbuf	*out = sbuf_new();
	size_t		 i, k;

	for (i = 0; i < n; i++) {
		sbuf_reset(out);
		smtp_dot_begin(&d);
		for (k = 0; k < 3 && cases[i].in[k] != NULL; k++)
			copy(&d, out, cases[i].in[k], strlen(cases[i].in[k]));
		end(&d, out);
		if (strcmp(sbuf_str(out), cases[i].want) != 0) {
			char	got[256], want[256];

			strl_esc(got, sizeof(got), out->s, out->len, 0);
			strl_esc(want, sizeof(want), cases[i].want,
			    strlen(cases[i].want), 0);
			t_errorf(t, "%s: got \"%s\", want \"%s\"",
			    cases[i].name, got, want);
		}
	}
	sbuf_free(out);
}

static void
dot_table(struct t *t)
{
	static const struct dot_case cases[] = {
		{ "empty", { NULL }, ".\r\n" },
		{ "one line", { "a\r\n" }, "a\r\n.\r\n" },
		{ "no final CRLF", { "a" }, "a\r\n.\r\n" },
		{ "leading dot", { ".x\r\n" }, "..x\r\n.\r\n" },
		{ "dots", { "a\r\n.b\r\n..c\r\n" },
		    "a\r\n..b\r\n...c\r\n.\r\n" },
		{ "a lone dot line", { "a\r\n.\r\nb\r\n" },
		    "a\r\n..\r\nb\r\n.\r\n" },
		{ "dot inside a line", { "a.b\r\n" }, "a.b\r\n.\r\n" },
		{ "split CRLF", { "a\r", "\n.b" }, "a\r\n..b\r\n.\r\n" },
		{ "split before the dot", { "a\r\n", ".b\r\n" },
		    "a\r\n..b\r\n.\r\n" },
		{ "bare LF", { "a\nb" }, "a b\r\n.\r\n" },
		{ "bare CR", { "a\rb" }, "a b\r\n.\r\n" },
		{ "CR at the end", { "a\r" }, "a \r\n.\r\n" },
		{ "LF dot LF", { "a\n.\nb\r\n" }, "a . b\r\n.\r\n" },
		{ "CR CR LF", { "a\r\r\n" }, "a \r\n.\r\n" },
	};
	dot_run(t, cases, sizeof(cases) / sizeof(cases[0]), smtp_dot_stuff,
	    smtp_dot_end);
}

/* plain_table - BDAT's copy (smtp_dot_plain, smtp_dot_close): no
 * stuffing, no end marker, stray CR and LF as spaces; the octets out
 * are as many as in, but for a CRLF that closes an open last line. */
static void
plain_table(struct t *t)
{
	static const struct dot_case cases[] = {
		{ "empty", { NULL }, "" },
		{ "one line", { "a\r\n" }, "a\r\n" },
		{ "no final CRLF", { "a" }, "a\r\n" },
		{ "dots stay", { ".x\r\n.\r\n..y\r\n" },
		    ".x\r\n.\r\n..y\r\n" },
		{ "split CRLF", { "a\r", "\n.b\r\n" }, "a\r\n.b\r\n" },
		{ "bare LF", { "a\nb\r\n" }, "a b\r\n" },
		{ "bare CR", { "a\rb\r\n" }, "a b\r\n" },
		{ "CR at the end", { "a\r" }, "a \r\n" },
		{ "LF dot LF", { "a\n.\nb\r\n" }, "a . b\r\n" },
		{ "CR CR LF", { "a\r\r\n" }, "a \r\n" },
		{ "CR then piece", { "a\r", "b\r\n" }, "a b\r\n" },
	};
	dot_run(t, cases, sizeof(cases) / sizeof(cases[0]), smtp_dot_plain,
	    smtp_dot_close);
}

int
main(void)
{
	T_RUN(reply_table);
	T_RUN(reply_bytewise);
	T_RUN(reply_limits);
	T_RUN(reply_enhanced_status);
	T_RUN(dot_table);
	T_RUN(plain_table);
	T_EXIT();
}

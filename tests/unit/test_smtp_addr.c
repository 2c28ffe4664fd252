/*
 * test_smtp_addr.c - unit tests for smtp_addr.c (RFC 5321 §4.1.2 paths).
 *
 * Each parse case is copied into a buffer of exactly its length, with no
 * NUL after it, so that AddressSanitizer catches any read past `len`.
 * Long inputs are built from string-literal macros so that the limits
 * (local 64, domain 255, path 256, label 63) are tested at the octet.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "tharness.h"

#define U	SMTP_ADDR_UTF8
#define N	SMTP_ADDR_NULL_OK
#define B	SMTP_ADDR_BARE_OK
#define P	SMTP_ADDR_POSTMASTER_OK

#define E_SYNTAX	SMTP_ADDR_E_SYNTAX
#define E_LOCAL		SMTP_ADDR_E_LOCAL
#define E_DOMAIN	SMTP_ADDR_E_DOMAIN
#define E_LONG		SMTP_ADDR_E_LONG
#define E_UTF8		SMTP_ADDR_E_UTF8
#define E_NULL		SMTP_ADDR_E_NULL

/* Runs of 'a', and labels and domains of exact lengths. */
#define A10	"aaaaaaaaaa"
#define A60	A10 A10 A10 A10 A10 A10
#define A62	A60 "aa"
#define A63	A60 "aaa"
#define A64	A60 "aaaa"
#define A65	A60 "aaaaa"
#define A100	A10 A10 A10 A10 A10 A10 A10 A10 A10 A10
#define A1000	A100 A100 A100 A100 A100 A100 A100 A100 A100 A100
#define A55	A10 A10 A10 A10 A10 "aaaaa"
#define D189	A63 "." A63 "." A60 "a"			/* 189 octets */
#define D190	A63 "." A63 "." A62			/* 190 octets */
#define D255	A63 "." A63 "." A63 "." A63		/* 255 octets */
#define D256	A63 "." A63 "." A63 "." A62 ".a"	/* 256 octets */
/* U-labels: A-label "xn--" + 55 a's + "-8yf" is 63; one more a is 64. */
#define UE	"\xc3\xbc"				/* U+00FC */
#define UL63	A55 UE
#define UL64	A55 "a" UE
#define CJK	"\xe4\xbe\x8b"				/* U+4F8B */
#define CJK22	CJK CJK CJK CJK CJK CJK CJK CJK CJK CJK CJK \
		CJK CJK CJK CJK CJK CJK CJK CJK CJK CJK CJK

struct addr_case {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 flags;
	int		 want;
	const char	*addr;		/* on success: out->addr */
	const char	*domain;	/* on success: smtp_addr_domain() */
	const char	*rest;		/* on success: the text at *end */
};

#define C_OK(in, fl, addr, dom, rest)	{ in, 0, fl, 0, addr, dom, rest }
#define C_OKN(in, len, fl, addr, dom, rest) \
					{ in, len, fl, 0, addr, dom, rest }
#define C_ERR(in, fl, code)		{ in, 0, fl, code, NULL, NULL, NULL }
#define C_ERRN(in, len, fl, code)	{ in, len, fl, code, NULL, NULL, NULL }

static const struct addr_case addr_cases[] = {
	/* Plain mailboxes; case and characters kept as sent. */
	C_OK("<user@example.org>", 0,
	    "user@example.org", "example.org", ""),
	C_OK("<User.Name+tag@Example.ORG>", 0,
	    "User.Name+tag@Example.ORG", "Example.ORG", ""),
	C_OK("<a@b> SIZE=10", 0, "a@b", "b", " SIZE=10"),
	C_OK("<a@b>x", 0, "a@b", "b", "x"),
	C_OK("<!#$%&'*+-/=?^_`{|}~@example.org>", 0,
	    "!#$%&'*+-/=?^_`{|}~@example.org", "example.org", ""),
	C_OK("<a.b.c@x-y.example>", 0, "a.b.c@x-y.example", "x-y.example", ""),
	C_OK("<1@2.3>", 0, "1@2.3", "2.3", ""),
	C_OK("<a@b-c--d.e>", 0, "a@b-c--d.e", "b-c--d.e", ""),
	C_OK("<a@xn--bcher-kva.example>", 0,
	    "a@xn--bcher-kva.example", "xn--bcher-kva.example", ""),
	C_OK("<a@b>", U | N | B | P, "a@b", "b", ""),

	/* Quoted local parts. */
	C_OK("<\"john smith\"@example.org>", 0,
	    "\"john smith\"@example.org", "example.org", ""),
	C_OK("<\"a\\\"b\"@x>", 0, "\"a\\\"b\"@x", "x", ""),
	C_OK("<\"a\\\\b\"@x>", 0, "\"a\\\\b\"@x", "x", ""),
	C_OK("<\"a\\ b\"@x>", 0, "\"a\\ b\"@x", "x", ""),
	C_OK("<\"a@b>c\"@x> BODY=8BITMIME", 0,
	    "\"a@b>c\"@x", "x", " BODY=8BITMIME"),
	C_OK("<\"\"@x>", 0, "\"\"@x", "x", ""),
	C_OK("<\"..\"@x>", 0, "\"..\"@x", "x", ""),
	C_ERR("<\"a\"b@x>", 0, E_LOCAL),
	C_ERR("<a\"b\"@x>", 0, E_LOCAL),
	C_ERR("<a.\"b\"@x>", 0, E_LOCAL),
	C_ERR("<\"abc@x>", 0, E_LOCAL),
	C_ERR("<\"a\tb\"@x>", 0, E_LOCAL),
	C_ERR("<\"a\\\x01\"@x>", 0, E_LOCAL),
	C_ERR("<\"a\x7f\"@x>", 0, E_LOCAL),
	C_ERR("<\"a\\", 0, E_LOCAL),
	C_ERRN("<\"a\0\"@x>", 8, 0, E_LOCAL),

	/* Dot-strings. */
	C_ERR("<a..b@x>", 0, E_LOCAL),
	C_ERR("<.a@x>", 0, E_LOCAL),
	C_ERR("<a.@x>", 0, E_LOCAL),
	C_ERR("<a b@x>", 0, E_LOCAL),
	C_ERR("< a@x>", 0, E_LOCAL),
	C_ERR("<a(b)@x>", 0, E_LOCAL),
	C_ERR("<a,b@x>", 0, E_LOCAL),
	C_ERR("<a\x01" "b@x>", 0, E_LOCAL),
	C_ERR("<a\x7f" "b@x>", 0, E_LOCAL),
	C_ERRN("<a\0b@x>", 7, 0, E_LOCAL),
	C_ERR("<<a@b>>", 0, E_LOCAL),

	/* Domains. */
	C_ERR("<a@>", 0, E_DOMAIN),
	C_ERR("<a@-b.example>", 0, E_DOMAIN),
	C_ERR("<a@b-.example>", 0, E_DOMAIN),
	C_ERR("<a@b.-c>", 0, E_DOMAIN),
	C_ERR("<a@b..c>", 0, E_DOMAIN),
	C_ERR("<a@.b>", 0, E_DOMAIN),
	C_ERR("<a@b.>", 0, E_DOMAIN),
	C_ERR("<a@b_c.example>", 0, E_DOMAIN),
	C_ERR("<a@b c>", 0, E_DOMAIN),
	C_ERR("<a@b >", 0, E_DOMAIN),
	C_ERR("<a@b\r\n>", 0, E_DOMAIN),
	C_ERR("<a@b\x7f>", 0, E_DOMAIN),
	C_ERRN("<a@b\0>", 6, 0, E_DOMAIN),
	C_ERR("<a@@b>", 0, E_DOMAIN),
	C_ERR("<a@b@c>", 0, E_DOMAIN),
	C_ERR("<user>", 0, E_DOMAIN),

	/* Address literals. */
	C_OK("<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", "[192.0.2.1]", ""),
	C_OK("<a@[0.0.0.0]>", 0, "a@[0.0.0.0]", "[0.0.0.0]", ""),
	C_OK("<a@[255.255.255.255]> X", 0,
	    "a@[255.255.255.255]", "[255.255.255.255]", " X"),
	C_OK("<a@[IPv6:2001:db8::1]>", 0,
	    "a@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", ""),
	C_OK("<a@[ipv6:::1]>", 0, "a@[ipv6:::1]", "[ipv6:::1]", ""),
	C_OK("<a@[IPv6:::ffff:192.0.2.1]>", 0,
	    "a@[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]", ""),
	C_ERR("<a@[256.0.0.1]>", 0, E_DOMAIN),
	C_ERR("<a@[1.2.3]>", 0, E_DOMAIN),
	C_ERR("<a@[1.2.3.4.5]>", 0, E_DOMAIN),
	C_ERR("<a@[1234.1.1.1]>", 0, E_DOMAIN),
	C_ERR("<a@[1..2.3]>", 0, E_DOMAIN),
	C_ERR("<a@[1.2.3.4>", 0, E_DOMAIN),
	C_ERR("<a@[1.2.3.4]x>", 0, E_DOMAIN),
	C_ERR("<a@[]>", 0, E_DOMAIN),
	C_ERR("<a@[ 1.2.3.4]>", 0, E_DOMAIN),
	C_ERR("<a@[IPv6:2001:db8::g]>", 0, E_DOMAIN),
	C_ERR("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, E_DOMAIN),
	C_ERR("<a@[IPv6:fe80::1%eth0]>", 0, E_DOMAIN),
	C_ERR("<a@[2001:db8::1]>", 0, E_DOMAIN),
	C_ERR("<a@[x400:c=us]>", 0, E_DOMAIN),
	C_ERR("<a@[1.2.3." UE "]>", 0, E_UTF8),
	C_ERR("<a@[1.2.3." UE "]>", U, E_DOMAIN),

	/* Source routes: checked, then dropped. */
	C_OK("<@a,@b:user@c>", 0, "user@c", "c", ""),
	C_OK("<@relay.example:user@example.org> SIZE=1", 0,
	    "user@example.org", "example.org", " SIZE=1"),
	C_OK("<@a" UE ".example:u@b>", U, "u@b", "b", ""),
	C_ERR("<@a" UE ".example:u@b>", 0, E_UTF8),
	C_ERR("<@a,b:user@c>", 0, E_SYNTAX),
	C_ERR("<@a;@b:user@c>", 0, E_SYNTAX),
	C_ERR("<@a,@b", 0, E_SYNTAX),
	C_ERR("<@-a:user@c>", 0, E_DOMAIN),
	C_ERR("<@:user@c>", 0, E_DOMAIN),
	C_ERR("<@[192.0.2.1]:user@c>", 0, E_DOMAIN),
	C_ERR("<@a:>", 0, E_LOCAL),
	C_ERR("<@example.org>", 0, E_LOCAL),
	C_ERR("<@a:Postmaster>", P, E_DOMAIN),

	/* <Postmaster>. */
	C_OK("<Postmaster>", P, "Postmaster", "", ""),
	C_OK("<postMASTER> NOTIFY=NEVER", P,
	    "postMASTER", "", " NOTIFY=NEVER"),
	C_OK("Postmaster", B | P, "Postmaster", "", ""),
	C_OK("<Postmaster@example.org>", 0,
	    "Postmaster@example.org", "example.org", ""),
	C_ERR("<Postmaster>", 0, E_DOMAIN),
	C_ERR("<Postmistress>", P, E_DOMAIN),
	C_ERR("<\"Postmaster\">", P, E_DOMAIN),
	C_ERR("<Postmaster", P, E_SYNTAX),

	/* The null path. */
	C_ERR("<>", 0, E_NULL),
	C_ERR("<>", B, E_NULL),
	C_OK("<>", N, "", "", ""),
	C_OK("<> SIZE=100", N, "", "", " SIZE=100"),
	C_ERR("< >", N, E_LOCAL),

	/* Brackets, bare paths, and the len bound. */
	C_ERR("user@example.org", 0, E_SYNTAX),
	C_OK("user@example.org", B, "user@example.org", "example.org", ""),
	C_OK("user@example.org SIZE=5", B,
	    "user@example.org", "example.org", " SIZE=5"),
	C_OK("<user@example.org>", B, "user@example.org", "example.org", ""),
	C_OK("\"a b\"@c d", B, "\"a b\"@c", "c", " d"),
	C_OK("@a:u@b", B, "u@b", "b", ""),
	C_ERR("<user@example.org", 0, E_SYNTAX),
	C_ERR("<user@example.org", B, E_SYNTAX),
	C_ERR("user@example.org>", B, E_DOMAIN),
	C_ERR("user", B, E_DOMAIN),
	C_ERR("", 0, E_SYNTAX),
	C_ERR("", B, E_SYNTAX),
	C_ERR(" <a@b>", 0, E_SYNTAX),
	C_ERR(" a@b", B, E_SYNTAX),
	C_ERR("<", 0, E_SYNTAX),
	C_ERRN("<a@b>", 4, 0, E_SYNTAX),
	C_OKN("a@bcd", 3, B, "a@b", "b", ""),
	C_OKN("<a@b>junk", 5, 0, "a@b", "b", ""),

	/* UTF-8 (SMTPUTF8). */
	C_OK("<j\xc3\xb6rg@example.org>", U,
	    "j\xc3\xb6rg@example.org", "example.org", ""),
	C_ERR("<j\xc3\xb6rg@example.org>", 0, E_UTF8),
	C_OK("<a@b" UE "cher.example>", U,
	    "a@b" UE "cher.example", "b" UE "cher.example", ""),
	C_ERR("<a@b" UE "cher.example>", 0, E_UTF8),
	C_OK("<\"\xc3\xa9 t\xc3\xa9\"@x>", U,
	    "\"\xc3\xa9 t\xc3\xa9\"@x", "x", ""),
	C_ERR("<\"\xc3\xa9\"@x>", 0, E_UTF8),
	C_ERR("<\"\\\xc3\xa9\"@x>", U, E_LOCAL),
	C_OK("<\xf0\x9f\x98\x80@" CJK ".example>", U,
	    "\xf0\x9f\x98\x80@" CJK ".example", CJK ".example", ""),
	C_OK("<a@" CJK22 ".example>", U,
	    "a@" CJK22 ".example", CJK22 ".example", ""),
	C_OK("<a@" UL63 ".example>", U,
	    "a@" UL63 ".example", UL63 ".example", ""),
	C_ERR("<a@" UL64 ".example>", U, E_DOMAIN),
	C_ERR("<a@-" UE ".example>", U, E_DOMAIN),
	C_ERR("<\xc3@x>", U, E_UTF8),
	C_ERRN("<a\xc3", 3, U, E_UTF8),
	C_ERR("<\xc0\xaf@x>", U, E_UTF8),
	C_ERR("<\xe0\x80\xaf@x>", U, E_UTF8),
	C_ERR("<\xed\xa0\x80@x>", U, E_UTF8),
	C_ERR("<\xf4\x90\x80\x80@x>", U, E_UTF8),
	C_ERR("<\xf5\x80\x80\x80@x>", U, E_UTF8),
	C_ERR("<\x80@x>", U, E_UTF8),
	C_ERR("<a@\xff.example>", U, E_UTF8),
	C_ERR("<a@b\xc3\xbc\xbc.example>", U, E_UTF8),

	/* §4.5.3.1 limits and the 63-octet label. */
	C_OK("<" A64 "@x>", 0, A64 "@x", "x", ""),
	C_ERR("<" A65 "@x>", 0, E_LONG),
	C_OK("<\"" A62 "\"@x>", 0, "\"" A62 "\"@x", "x", ""),
	C_ERR("<\"" A63 "\"@x>", 0, E_LONG),
	C_ERR("<" A1000 "@x>", 0, E_LONG),
	C_ERR("<a@" D255 ">", 0, E_LONG),	/* domain fits, path doesn't */
	C_ERR("<a@" D256 ">", 0, E_LONG),
	C_OK("<" A64 "@" D189 ">", 0, A64 "@" D189, D189, ""),
	C_ERR("<" A64 "@" D190 ">", 0, E_LONG),
	C_OK(A64 "@" D189, B, A64 "@" D189, D189, ""),
	C_ERR(A64 "@" D190, B, E_LONG),
	C_OK("<@a:" A60 "a@" D189 ">", 0, A60 "a@" D189, D189, ""),
	C_ERR("<@a:" A60 "aa@" D189 ">", 0, E_LONG),
	C_OK("<a@" A63 ".x>", 0, "a@" A63 ".x", A63 ".x", ""),
	C_ERR("<a@" A64 ".x>", 0, E_DOMAIN),
	C_OK("<a@x." A63 ">", 0, "a@x." A63, "x." A63, ""),
	C_ERR("<a@x." A64 ">", 0, E_DOMAIN),
	C_ERR("<a@" A1000 ">", 0, E_DOMAIN),
};

/* show - s (n bytes) as a quoted C string for a failure message. */
static const char *
show(char *buf, size_t bufsz, const char *s, size_t n)
{
	size_t	 i, o = 0;
	int	 c, w;

	buf[o++] = '"';
	for (i = 0; i < n && o + 8 < bufsz; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			w = snprintf(buf + o, bufsz - o, "\\%c", c);
		else if (c < 32 || c >= 127)
			w = snprintf(buf + o, bufsz - o, "\\x%02x", c);
		else
			w = snprintf(buf + o, bufsz - o, "%c", c);
		o += (size_t)w;
	}
	if (i < n)
		o += (size_t)snprintf(buf + o, bufsz - o, "...");
	snprintf(buf + o, bufsz - o, "\"");
	return buf;
}

static void
addr_table(struct t *t)
{
	static const char	 sentinel[] = "sentinel";
	const struct addr_case	*c;
	struct smtp_addr	 out;
	const char		*end, *dom, *rest;
	char			*in, shown[160], got[160], want[160];
	size_t			 i, len, restlen, wantlocal;
	bool			 want8;
	int			 rc;

	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		c = &addr_cases[i];
		len = c->len != 0 ? c->len : strlen(c->in);
		/* Exactly len bytes, unterminated: ASan sees any overread. */
		if ((in = malloc(len > 0 ? len : 1)) == NULL)
			t_fatalf(t, "malloc");
		memcpy(in, c->in, len);
		show(shown, sizeof(shown), c->in, len);

		end = sentinel;
		memset(&out, 'x', sizeof(out));
		rc = smtp_addr_parse(in, len, c->flags, &out, &end);
		if (rc != c->want) {
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): got %d "
			    "(%s), want %d (%s)", shown, (unsigned)c->flags,
			    rc, smtp_addr_strerror(rc), c->want,
			    smtp_addr_strerror(c->want));
			goto next;
		}
		if (rc != 0) {
			if (end != sentinel)
				t_errorf(t, "smtp_addr_parse(%s, flags=%#x): "
				    "*end written on failure", shown,
				    (unsigned)c->flags);
			if (out.addr[0] != '\0' || out.local_len != 0 ||
			    out.utf8)
				t_errorf(t, "smtp_addr_parse(%s, flags=%#x): "
				    "out not cleared on failure", shown,
				    (unsigned)c->flags);
			goto next;
		}

		if (strcmp(out.addr, c->addr) != 0)
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): addr %s, "
			    "want %s", shown, (unsigned)c->flags,
			    show(got, sizeof(got), out.addr, strlen(out.addr)),
			    show(want, sizeof(want), c->addr, strlen(c->addr)));
		dom = smtp_addr_domain(&out);
		if (strcmp(dom, c->domain) != 0)
			t_errorf(t, "smtp_addr_domain(%s): got \"%s\", "
			    "want \"%s\"", shown, dom, c->domain);
		wantlocal = strlen(c->addr) -
		    (c->domain[0] != '\0' ? strlen(c->domain) + 1 : 0);
		if (out.local_len != wantlocal)
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): "
			    "local_len %zu, want %zu", shown,
			    (unsigned)c->flags, out.local_len, wantlocal);
		want8 = false;
		for (rest = c->addr; *rest != '\0'; rest++)
			if ((unsigned char)*rest >= 0x80)
				want8 = true;
		if (out.utf8 != want8)
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): utf8 %d, "
			    "want %d", shown, (unsigned)c->flags, out.utf8,
			    want8);
		if (end == sentinel || end < in || end > in + len) {
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): *end "
			    "outside the input", shown, (unsigned)c->flags);
			goto next;
		}
		restlen = (size_t)(in + len - end);
		if (restlen != strlen(c->rest) ||
		    memcmp(end, c->rest, restlen) != 0)
			t_errorf(t, "smtp_addr_parse(%s, flags=%#x): rest %s, "
			    "want \"%s\"", shown, (unsigned)c->flags,
			    show(got, sizeof(got), end, restlen), c->rest);
next:
		free(in);
	}
}

static void
addr_args(struct t *t)
{
	struct smtp_addr	 out;
	int			 rc;

	/* NULL end is allowed; NULL input or output is a syntax error. */
	if ((rc = smtp_addr_parse("<a@b>", 5, 0, &out, NULL)) != 0)
		t_errorf(t, "smtp_addr_parse(\"<a@b>\", end=NULL): got %d, "
		    "want 0", rc);
	if ((rc = smtp_addr_parse(NULL, 0, B, &out, NULL)) != E_SYNTAX)
		t_errorf(t, "smtp_addr_parse(NULL): got %d, want %d", rc,
		    E_SYNTAX);
	if ((rc = smtp_addr_parse("<a@b>", 5, 0, NULL, NULL)) != E_SYNTAX)
		t_errorf(t, "smtp_addr_parse(out=NULL): got %d, want %d", rc,
		    E_SYNTAX);
	if (strcmp(smtp_addr_domain(NULL), "") != 0)
		t_errorf(t, "smtp_addr_domain(NULL): want \"\"");
}

struct domain_case {
	const char	*d;
	int		 flags;
	bool		 want;
};

static const struct domain_case domain_cases[] = {
	{ "example.org", 0, true },
	{ "EXAMPLE.Org", 0, true },
	{ "a", 0, true },
	{ "1.2.3.4", 0, true },
	{ "a-b--c.d", 0, true },
	{ "xn--bcher-kva.example", 0, true },
	{ A63 ".x", 0, true },
	{ A64 ".x", 0, false },
	{ D255, 0, true },
	{ D256, 0, false },
	{ "", 0, false },
	{ ".", 0, false },
	{ "example.org.", 0, false },
	{ ".example.org", 0, false },
	{ "a..b", 0, false },
	{ "-a.b", 0, false },
	{ "a-.b", 0, false },
	{ "a.b-", 0, false },
	{ "a_b.c", 0, false },
	{ "a b", 0, false },
	{ "a\tb", 0, false },
	{ "a@b", 0, false },
	{ "[192.0.2.1]", 0, false },
	{ "b" UE "cher.example", U, true },
	{ "b" UE "cher.example", 0, false },
	{ CJK22 ".example", U, true },
	{ UL63 ".example", U, true },
	{ UL64 ".example", U, false },
	{ UE "-.example", U, false },
	{ "\xc3\x28.example", U, false },
	{ "\xef\xbf\xbf.example", U, true },		/* U+FFFF */
	{ "\xf4\x8f\xbf\xbf.example", U, true },	/* U+10FFFF */
	{ "\xf4\x90\x80\x80.example", U, false },	/* U+110000 */
	{ NULL, 0, false },
};

static void
domain_table(struct t *t)
{
	const struct domain_case	*c;
	char				 shown[160];
	size_t				 i;
	bool				 got;

	for (i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
		c = &domain_cases[i];
		got = smtp_domain_valid(c->d, c->flags);
		if (got != c->want)
			t_errorf(t, "smtp_domain_valid(%s, flags=%#x): got %d, "
			    "want %d", c->d == NULL ? "NULL" :
			    show(shown, sizeof(shown), c->d, strlen(c->d)),
			    (unsigned)c->flags, got, c->want);
	}
}

struct literal_case {
	const char	*lit;
	size_t		 len;		/* 0: strlen(lit) */
	bool		 want;
};

static const struct literal_case literal_cases[] = {
	{ "[192.0.2.1]", 0, true },
	{ "[0.0.0.0]", 0, true },
	{ "[255.255.255.255]", 0, true },
	{ "[010.001.1.1]", 0, true },	/* Snum = 1*3DIGIT */
	{ "[IPv6:::1]", 0, true },
	{ "[ipv6:2001:DB8::1]", 0, true },
	{ "[IPV6:1:2:3:4:5:6:7:8]", 0, true },
	{ "[IPv6:::ffff:192.0.2.1]", 0, true },
	{ "[256.1.1.1]", 0, false },
	{ "[1.2.3.]", 0, false },
	{ "[.1.2.3]", 0, false },
	{ "[1.2.3.4.]", 0, false },
	{ "[-1.2.3.4]", 0, false },
	{ "192.0.2.1", 0, false },
	{ "[192.0.2.1", 0, false },
	{ "[192.0.2.1]", 10, false },
	{ "[]", 0, false },
	{ "[IPv6:]", 0, false },
	{ "[IPv6:1.2.3.4]", 0, false },
	{ "[IPv6:1:2:3:4:5:6:7:8:9]", 0, false },
	{ "[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000]", 0, false },
	{ "[x400:c=us]", 0, false },
	{ "[1.2.3.4 ]", 0, false },
	{ NULL, 0, false },
};

static void
literal_table(struct t *t)
{
	const struct literal_case	*c;
	char				 shown[160];
	size_t				 i, len;
	bool				 got;

	for (i = 0; i < sizeof(literal_cases) / sizeof(literal_cases[0]);
	    i++) {
		c = &literal_cases[i];
		len = c->lit == NULL ? 0 : c->len != 0 ? c->len :
		    strlen(c->lit);
		got = smtp_addr_literal_valid(c->lit, len);
		if (got != c->want)
			t_errorf(t, "smtp_addr_literal_valid(%s, %zu): got %d, "
			    "want %d", c->lit == NULL ? "NULL" :
			    show(shown, sizeof(shown), c->lit, len), len, got,
			    c->want);
	}
}

static void
strerror_table(struct t *t)
{
	static const int	 codes[] = { SMTP_ADDR_OK, E_SYNTAX, E_LOCAL,
	    E_DOMAIN, E_LONG, E_UTF8, E_NULL };
	const char		*s, *o;
	size_t			 i, j;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		s = smtp_addr_strerror(codes[i]);
		if (s == NULL || *s == '\0') {
			t_errorf(t, "smtp_addr_strerror(%d): empty", codes[i]);
			continue;
		}
		for (j = 0; j < i; j++) {
			o = smtp_addr_strerror(codes[j]);
			if (strcmp(s, o) == 0)
				t_errorf(t, "smtp_addr_strerror(%d) == "
				    "smtp_addr_strerror(%d): \"%s\"", codes[i],
				    codes[j], s);
		}
	}
	if (strcmp(smtp_addr_strerror(E_DOMAIN), "bad domain") != 0)
		t_errorf(t, "smtp_addr_strerror(%d): got \"%s\", want "
		    "\"bad domain\"", E_DOMAIN, smtp_addr_strerror(E_DOMAIN));
	s = smtp_addr_strerror(-99);
	if (s == NULL || *s == '\0')
		t_errorf(t, "smtp_addr_strerror(-99): empty");
}

int
main(void)
{
	T_RUN(addr_table);
	T_RUN(addr_args);
	T_RUN(domain_table);
	T_RUN(literal_table);
	T_RUN(strerror_table);
	T_EXIT();
}

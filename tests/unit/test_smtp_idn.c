/*
 * test_smtp_idn.c - smtp_idn.c: domains to A-labels, and that every
 * place domains are compared agrees: conf lists, the queue's domain
 * keys (queue_key.c converts with its own call), users_file owners.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "smtp.h"
#include "tharness.h"

struct idn_case {
	const char	*in;
	int		 rc;
	const char	*out;
};

static const struct idn_case idn_cases[] = {
	{ "example.org",		SMTP_IDN_OK,	"example.org" },
	{ "Example.ORG",		SMTP_IDN_OK,	"example.org" },
	{ "b\xc3\xbc" "cher.test",	SMTP_IDN_OK,	"xn--bcher-kva.test" },
	/* UTS #46 maps upper case: "BÜCHER.TEST". */
	{ "B\xc3\x9c" "CHER.TEST",	SMTP_IDN_OK,	"xn--bcher-kva.test" },
	/* An A-label stays as it is, lower-cased. */
	{ "XN--BCHER-KVA.test",		SMTP_IDN_OK,	"xn--bcher-kva.test" },
	/* Non-transitional: "ß" is kept, not made "ss". */
	{ "fa\xc3\x9f.test",		SMTP_IDN_OK,	"xn--fa-hia.test" },
	/* Greek, Cyrillic, CJK. */
	{ "\xcf\x80.test",		SMTP_IDN_OK,	"xn--1xa.test" },
	{ "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
	  SMTP_IDN_OK, "xn--e1afmkfd.xn--p1ai" },
	{ "\xe4\xbe\x8b\xe3\x81\x88.test", SMTP_IDN_OK,	"xn--r8jz45g.test" },
	/* NFD input is normalised (u + combining diaeresis). */
	{ "bu\xcc\x88" "cher.test",	SMTP_IDN_OK,	"xn--bcher-kva.test" },
	/* Bad UTF-8: a lone continuation byte, an overlong, a cut one. */
	{ "b\x80" "cher.test",		SMTP_IDN_E_UTF8, "" },
	{ "\xc0\xaf.test",		SMTP_IDN_E_UTF8, "" },
	{ "b\xc3",			SMTP_IDN_E_UTF8, "" },
	/* Disallowed in IDNA2008: a snowman (U+2603), a symbol. */
	{ "\xe2\x98\x83.test",		SMTP_IDN_E_IDNA, "" },
	{ NULL, 0, NULL },
};

static void
test_idn_table(struct t *t)
{
	const struct idn_case	*c;
	char			 out[SMTP_DOMAIN_MAX + 1];
	const char		*why;
	int			 rc;

	for (c = idn_cases; c->in != NULL; c++) {
		rc = smtp_idn_to_ascii(c->in, out, sizeof(out), &why);
		if (rc != c->rc || strcmp(out, c->out) != 0)
			t_errorf(t, "smtp_idn_to_ascii(\"%s\"): got %d \"%s\" "
			    "(%s), want %d \"%s\"", c->in, rc, out, why, c->rc,
			    c->out);
		if (rc != 0 && (why == NULL || *why == '\0'))
			t_errorf(t, "smtp_idn_to_ascii(\"%s\"): no reason",
			    c->in);
	}
}

static void
test_idn_bounds(struct t *t)
{
	char	in[1400], out[SMTP_DOMAIN_MAX + 1], small[8];
	size_t	i, o = 0;
	int	rc;

	/* 60 "a" and a "ü" make an A-label over 63 octets. */
	for (i = 0; i < 60; i++)
		in[o++] = 'a';
	in[o++] = (char)0xc3;
	in[o++] = (char)0xbc;
	memcpy(in + o, ".test", 6);
	rc = smtp_idn_to_ascii(in, out, sizeof(out), NULL);
	if (rc != SMTP_IDN_E_LONG && rc != SMTP_IDN_E_IDNA)
		t_errorf(t, "a 61-letter U-label: got %d \"%s\", want an error",
		    rc, out);
	if (out[0] != '\0')
		t_errorf(t, "a refused domain left \"%s\" in out", out);
	/* Input over SMTP_IDN_IN_MAX is refused before libidn2. */
	for (o = 0; o + 3 < sizeof(in); ) {
		in[o++] = (char)0xc3;
		in[o++] = (char)0xbc;
		in[o++] = '.';
	}
	in[o - 1] = '\0';
	if ((rc = smtp_idn_to_ascii(in, out, sizeof(out), NULL)) !=
	    SMTP_IDN_E_LONG)
		t_errorf(t, "a 1400-octet domain: got %d, want %d", rc,
		    SMTP_IDN_E_LONG);
	/* out too small: refused, never cut. */
	rc = smtp_idn_to_ascii("b\xc3\xbc" "cher.test", small, sizeof(small),
	    NULL);
	if (rc != SMTP_IDN_E_LONG || small[0] != '\0')
		t_errorf(t, "small out: got %d \"%s\", want %d \"\"", rc, small,
		    SMTP_IDN_E_LONG);
	rc = smtp_idn_to_ascii("example.org", small, sizeof(small), NULL);
	if (rc != SMTP_IDN_E_LONG || small[0] != '\0')
		t_errorf(t, "small out, ASCII: got %d \"%s\", want %d \"\"",
		    rc, small, SMTP_IDN_E_LONG);
	if (smtp_idn_to_ascii(NULL, out, sizeof(out), NULL) == 0)
		t_errorf(t, "NULL domain accepted");
}

static void
test_idn_addr(struct t *t)
{
	char		 out[SMTP_PATH_MAX + 1];
	const char	*why;
	int		 rc;

	rc = smtp_idn_addr_ascii("Anna@B\xc3\xbc" "cher.test", out,
	    sizeof(out), &why);
	if (rc != 0 || strcmp(out, "Anna@xn--bcher-kva.test") != 0)
		t_errorf(t, "addr: got %d \"%s\"", rc, out);
	/* The local part is never touched, 8-bit or not. */
	rc = smtp_idn_addr_ascii("j\xc3\xb8rn@b\xc3\xbc" "cher.test", out,
	    sizeof(out), &why);
	if (rc != 0 || strcmp(out, "j\xc3\xb8rn@xn--bcher-kva.test") != 0)
		t_errorf(t, "utf-8 local part: got %d \"%s\"", rc, out);
	rc = smtp_idn_addr_ascii("Anna@Example.ORG", out, sizeof(out), &why);
	if (rc != 0 || strcmp(out, "Anna@Example.ORG") != 0)
		t_errorf(t, "ASCII address changed: \"%s\"", out);
	rc = smtp_idn_addr_ascii("", out, sizeof(out), &why);
	if (rc != 0 || out[0] != '\0')
		t_errorf(t, "null sender: got %d \"%s\"", rc, out);
	rc = smtp_idn_addr_ascii("a@\xe2\x98\x83.test", out, sizeof(out),
	    &why);
	if (rc != SMTP_IDN_E_IDNA)
		t_errorf(t, "snowman domain: got %d, want %d", rc,
		    SMTP_IDN_E_IDNA);
	if (!smtp_idn_local_has8("j\xc3\xb8rn@x.test") ||
	    smtp_idn_local_has8("anna@b\xc3\xbc" "cher.test") ||
	    smtp_idn_local_has8(NULL))
		t_errorf(t, "smtp_idn_local_has8");
	if (!smtp_idn_eq("b\xc3\xbc" "cher.test", "XN--bcher-KVA.TEST") ||
	    smtp_idn_eq("b\xc3\xbc" "cher.test", "bucher.test") ||
	    smtp_idn_eq("\xe2\x98\x83.test", "\xe2\x98\x83.test"))
		t_errorf(t, "smtp_idn_eq");
}

/* The queue keys with its own libidn2 call: it must agree. */
static void
test_idn_queue_agrees(struct t *t)
{
	const struct idn_case	*c;
	char			 addr[600], q[QUEUE_ADDR_MAX + 1];

	for (c = idn_cases; c->in != NULL; c++) {
		if (c->rc != 0)
			continue;
		snprintf(addr, sizeof(addr), "u@%s", c->in);
		queue_domain_of(addr, q, sizeof(q));
		if (strcmp(q, c->out) != 0)
			t_errorf(t, "queue_domain_of(\"%s\"): got \"%s\", want "
			    "\"%s\"", addr, q, c->out);
	}
}

static void
test_idn_conf(struct t *t)
{
	struct conf	*c;
	char		 err[512], path[] = "/tmp/test_smtp_idn.XXXXXX";
	FILE		*f;
	int		 fd;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL)
		t_fatalf(t, "mkstemp");
	fprintf(f, "myhostname = mx.b\xc3\xbc" "cher.test\n"
	    "relay_domains = B\xc3\x9c" "CHER.test, xn--1xa.test, "
	    ".\xd1\x80\xd1\x84\n");
	fclose(f);
	c = conf_load(path, err, sizeof(err));
	if (c == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if (strcmp(c->myhostname, "mx.xn--bcher-kva.test") != 0)
		t_errorf(t, "myhostname: got \"%s\"", c->myhostname);
	if (!conf_domain_in(&c->relay_domains, "xn--bcher-kva.TEST") ||
	    !conf_domain_in(&c->relay_domains, "b\xc3\xbc" "cher.test") ||
	    !conf_domain_in(&c->relay_domains, "\xcf\x80.test") ||
	    !conf_domain_in(&c->relay_domains, "XN--1XA.test") ||
	    !conf_domain_in(&c->relay_domains, "a.xn--p1ai") ||
	    !conf_domain_in(&c->relay_domains, "\xd0\xb0.\xd1\x80\xd1\x84") ||
	    conf_domain_in(&c->relay_domains, "bucher.test") ||
	    conf_domain_in(&c->relay_domains, "b\x80.test"))
		t_errorf(t, "conf_domain_in: a form did not match");
	conf_free(c);

	/* An entry libidn2 refuses is an error naming it. */
	if ((f = fopen(path, "w")) == NULL)
		t_fatalf(t, "fopen");
	fprintf(f, "hold_domains = ok.test \xe2\x98\x83.test\n");
	fclose(f);
	c = conf_load(path, err, sizeof(err));
	if (c != NULL)
		t_errorf(t, "a snowman domain was taken");
	else if (strstr(err, ":1: hold_domains: bad domain") == NULL ||
	    strstr(err, "international domain name") == NULL)
		t_errorf(t, "error: %s", err);
	conf_free(c);
	if ((f = fopen(path, "w")) == NULL)
		t_fatalf(t, "fopen");
	fprintf(f, "myhostname = \xe2\x98\x83.test\n");
	fclose(f);
	c = conf_load(path, err, sizeof(err));
	if (c != NULL)
		t_errorf(t, "a snowman myhostname was taken");
	else if (strstr(err, ":1: myhostname: bad domain") == NULL)
		t_errorf(t, "error: %s", err);
	conf_free(c);
	unlink(path);
}

int
main(void)
{
	T_RUN(test_idn_table);
	T_RUN(test_idn_bounds);
	T_RUN(test_idn_addr);
	T_RUN(test_idn_queue_agrees);
	T_RUN(test_idn_conf);
	T_EXIT();
}

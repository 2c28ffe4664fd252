/*
 * fuzz_addr.c - addresses and domains: smtp_addr_parse (smtp/smtp_addr.c)
 * under every flag combination, smtp_domain_valid, the address literal
 * and UTF-8 checks, ETRN's domain rule, conf_domain_in, and what shows
 * such text in a log line (log_vformat, strl_esc, strl_clean).
 *
 * Input: a flag byte (its low 4 bits: SMTP_ADDR_* flags), then the path,
 * exactly as many bytes as given (no NUL after them: an overread is
 * caught).
 *
 * Checks beyond the sanitizers: a parsed address is within its limits,
 * "local@domain" with local_len where the '@' is, a domain that
 * smtp_domain_valid takes (or a valid literal), *end inside the input;
 * and it parses again, as "<addr>", to itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etrn_int.h"
#include "fuzz.h"

static void
fail(const char *what, const char *s, size_t n)
{
	fprintf(stderr, "fuzz: %s: \"%.*s\"\n", what, (int)n, s);
	abort();
}

/* check_parsed - the properties of an address smtp_addr_parse took. */
static void
check_parsed(const char *s, size_t n, int flags, const struct smtp_addr *a,
    const char *end)
{
	struct smtp_addr	 b;
	const char		*dom, *e2;
	char			 path[SMTP_PATH_MAX + 8];
	size_t			 len = strlen(a->addr);

	if (end < s || end > s + n)
		fail("end outside the input", s, n);
	if (len > SMTP_PATH_MAX - 2 || a->local_len > SMTP_LOCAL_MAX ||
	    a->local_len > len)
		fail("address over its limits", s, n);
	if (len == 0)
		return;				/* <> */
	dom = smtp_addr_domain(a);
	if (a->addr[a->local_len] == '@') {
		if (dom != a->addr + a->local_len + 1)
			fail("domain not after the '@'", s, n);
		if (dom[0] == '[' ? !smtp_addr_literal_valid(dom, strlen(dom)) :
		    !smtp_domain_valid(dom, flags & SMTP_ADDR_UTF8))
			fail("domain taken, not valid", s, n);
	} else if (a->addr[a->local_len] != '\0' || dom[0] != '\0')
		fail("local_len not at the '@'", s, n);
	/* The canonical form parses to itself. */
	path[0] = '<';
	memcpy(path + 1, a->addr, len);
	path[len + 1] = '>';
	if (smtp_addr_parse(path, len + 2, flags | SMTP_ADDR_POSTMASTER_OK,
	    &b, &e2) != 0 || strcmp(a->addr, b.addr) != 0 ||
	    a->local_len != b.local_len || e2 != path + len + 2)
		fail("the canonical form parses otherwise", s, n);
}

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

/* check_show - what the log and the replies do with peer text. */
static void
check_show(const char *str, size_t n)
{
	char	line[LOG_LINE_MAX], esc[512], clean[128];
	size_t	i;

	fmt(line, sizeof(line), "client=%s, from=<%s>, why=%s", str, str,
	    str);
	(void)strl_esc(esc, sizeof(esc), str, n, STRL_ESC_ADDR);
	(void)strl_clean(clean, sizeof(clean), str, n);
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r')
			fail("a line end in a log line", str, n);
	for (i = 0; clean[i] != '\0'; i++)
		if ((unsigned char)clean[i] < ' ')
			fail("a control byte left by strl_clean", str, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in		 in = { data, size };
	struct smtp_addr	 a;
	struct conf_list	 l;
	const char		*end;
	char			*str, *copy;
	char			*items[3] = { "example.org", ".kids.example",
				    NULL };
	int			 flags;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	flags = fuzz_take_byte(&in) & 0x0f;
	/* The exact bytes, in a buffer of their size. */
	copy = xmalloc(in.n > 0 ? in.n : 1);
	memcpy(copy, in.p, in.n);
	if (smtp_addr_parse(copy, in.n, flags, &a, &end) == 0)
		check_parsed(copy, in.n, flags, &a, end);
	(void)smtp_addr_literal_valid(copy, in.n);
	if (in.n > 0) {
		uint32_t cp;

		(void)smtp_addr_utf8_len((const unsigned char *)copy, in.n,
		    &cp);
	}
	free(copy);

	str = fuzz_str(in.p, in.n);
	(void)smtp_domain_valid(str, 0);
	(void)smtp_domain_valid(str, SMTP_ADDR_UTF8);
	(void)etrn_policy_domain_ok(str);
	(void)etrn_policy_name_ok(str, strlen(str));
	l.v = items;
	l.n = 2;
	(void)conf_domain_in(&l, str);
	check_show(str, strlen(str));
	free(str);
	return 0;
}

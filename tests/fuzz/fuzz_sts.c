/*
 * fuzz_sts.c - MTA-STS's texts from the network (runner/route_sts_parse.c):
 * a policy body as an HTTPS server sends it (route_sts_policy_parse), a
 * TXT record as DNS gives it (route_sts_txt_parse), and mx patterns
 * against host names (route_sts_mx_match).
 *
 * Input: a flag byte, then the bytes.
 *	bit 0: the bytes are a TXT record (else a policy body).
 *
 * Checks beyond the sanitizers: a policy that parses has a known mode, a
 * max_age within RFC 8461's limit, at most ROUTE_STS_MX_MAX valid
 * patterns (none only in mode none); formatted (what the queue's cache
 * keeps) it parses back to the same policy; each pattern matches a host
 * made from it (its own name, or "x." + the suffix of a wildcard) and a
 * wildcard never its bare suffix. A TXT id is 1-32 letters and digits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "route_sts.h"

static void
bad(const char *what)
{
	fprintf(stderr, "fuzz: sts: %s\n", what);
	abort();
}

static void
check_policy(const struct route_sts_policy *p)
{
	struct route_sts_policy	*q = calloc(1, sizeof(*q));
	struct sbuf		*s = sbuf_new();
	char			 why[256], host[300];
	size_t			 i;

	if (q == NULL)
		bad("out of memory");
	if (p->mode != ROUTE_STS_NONE && p->mode != ROUTE_STS_TESTING &&
	    p->mode != ROUTE_STS_ENFORCE)
		bad("mode");
	if (p->max_age > ROUTE_STS_MAXAGE_MAX)
		bad("max_age");
	if (p->nmx > ROUTE_STS_MX_MAX || (p->nmx == 0 &&
	    p->mode != ROUTE_STS_NONE))
		bad("mx count");
	for (i = 0; i < p->nmx; i++) {
		if (!route_sts_mx_ok(p->mx[i], strlen(p->mx[i])))
			bad("mx pattern kept that is not valid");
		if (strncmp(p->mx[i], "*.", 2) == 0) {
			snprintf(host, sizeof(host), "x.%s", p->mx[i] + 2);
			if (!route_sts_mx_match(p->mx[i], host))
				bad("wildcard does not match one label more");
			if (route_sts_mx_match(p->mx[i], p->mx[i] + 2))
				bad("wildcard matches its bare suffix");
		} else if (!route_sts_mx_match(p->mx[i], p->mx[i]))
			bad("name does not match itself");
	}
	route_sts_policy_format(p, s);
	if (route_sts_policy_parse(sbuf_str(s), sbuf_len(s), q, why,
	    sizeof(why)) != 0)
		bad("formatted policy does not parse back");
	if (q->mode != p->mode || q->max_age != p->max_age ||
	    q->nmx != p->nmx)
		bad("formatted policy differs");
	for (i = 0; i < p->nmx; i++)
		if (strcmp(q->mx[i], p->mx[i]) != 0)
			bad("formatted mx differs");
	sbuf_free(s);
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_sts_policy	*p;
	char			 id[ROUTE_STS_ID_MAX + 1], why[256];
	size_t			 i;
	int			 r;

	fuzz_init();
	if (size < 1 || size > FUZZ_INPUT_MAX)
		return 0;
	if (data[0] & 1) {
		r = route_sts_txt_parse((const char *)data + 1, size - 1, id);
		if (r == 1) {
			if (id[0] == '\0' || strlen(id) > ROUTE_STS_ID_MAX)
				bad("id length");
			for (i = 0; id[i] != '\0'; i++)
				if (!((id[i] >= 'a' && id[i] <= 'z') ||
				    (id[i] >= 'A' && id[i] <= 'Z') ||
				    (id[i] >= '0' && id[i] <= '9')))
					bad("id character");
		} else if (r != 0 && r != -1)
			bad("txt result");
		return 0;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		bad("out of memory");
	if (route_sts_policy_parse((const char *)data + 1, size - 1, p, why,
	    sizeof(why)) == 0)
		check_policy(p);
	free(p);
	return 0;
}

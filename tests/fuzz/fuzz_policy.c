/*
 * fuzz_policy.c - the etrn_policy rules file (etrn/etrn_policy.c):
 * etrn_policy_load of the input as the file, with etrn_queues, then the
 * decisions ETRN asks of what it took.
 *
 * Input: the file's bytes.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etrn_int.h"
#include "fuzz.h"

static struct conf	*pconf;

static void
init(void)
{
	struct sbuf	*t;
	const char	*f;
	char		 err[1024];

	if (pconf != NULL)
		return;
	fuzz_init();
	t = sbuf_new();
	sbuf_catf(t, "relay_domains = relay.example .kids.example\n"
	    "hold_domains = site.example\n"
	    "etrn_queues = pair:relay.example:@kids.example, one:site.example\n"
	    "etrn_policy = %s/policy-in\n", fuzz_dir());
	if ((f = fuzz_file("policy-conf", t->s, t->len)) == NULL ||
	    (pconf = conf_load(f, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	sbuf_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const doms[] = { "site.example", "relay.example",
	    "a.kids.example", "v6.example", "other.example" };
	struct etrn_policy	*p;
	struct etrn_client	 cl;
	struct sockaddr_in	 a4;
	struct sockaddr_in6	 a6;
	char			 err[1024];
	size_t			 i;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	init();
	if (fuzz_file("policy-in", data, size) == NULL ||
	    (p = etrn_policy_load(pconf, err, sizeof(err))) == NULL)
		return 0;
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr);
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", &a6.sin6_addr);
	(void)etrn_policy_mode(p);
	(void)etrn_policy_queue_find(p, "pair");
	for (i = 0; i < sizeof(doms) / sizeof(doms[0]) * 4; i++) {
		memset(&cl, 0, sizeof(cl));
		cl.sa = (i & 1) ? (const struct sockaddr *)&a6 :
		    (const struct sockaddr *)&a4;
		cl.user = (i & 2) ? "site1" : NULL;
		cl.owner = (i & 2) != 0;
		(void)etrn_policy_allows(p, pconf, doms[i / 4], i & 1, &cl);
	}
	etrn_policy_free(p);
	return 0;
}

/*
 * fuzz_routes.c - routes_file (runner/route.c): routes_load of the input
 * as a file, then the lookups the runner and ETRN make of what it took.
 *
 * Input: the file's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "runner.h"

static void
walk(void *arg, const char *domain)
{
	size_t	*n = arg;

	if (domain[0] == '\0')
		abort();
	(*n)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const doms[] = { "relay.example", "a.b.example",
	    "caller.example", "x.kids.example", "example", "[192.0.2.1]" };
	const struct fuzz_env	*env;
	struct routes		*rs;
	struct route		 r;
	const char		*f;
	char			 err[1024];
	size_t			 i, n = 0;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	env = fuzz_env();
	if ((f = fuzz_file("routes-in", data, size)) == NULL ||
	    (rs = routes_load(f, err, sizeof(err))) == NULL)
		return 0;
	routes_walk_held(rs, walk, &n);
	for (i = 0; i < sizeof(doms) / sizeof(doms[0]); i++) {
		route_lookup(env->conf[0], rs, doms[i], &r);
		route_release(env->conf[0], rs, doms[i], &r);
		(void)route_to_caller(env->conf[0], rs, doms[i], "192.0.2.9",
		    &r);
		(void)route_caller(rs, doms[i], i & 1);
		(void)route_caller_below(rs, doms[i]);
	}
	routes_free(rs);
	return 0;
}

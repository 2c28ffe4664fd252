/*
 * route_probe.c - route_lookup() and route_dns_resolve() from the command line,
 * for tests/integ/cases/200-route-dns.sh (built by that script against
 * build/asan's objects; not installed).
 *
 * usage: route_probe [-t TIMEOUT_MS] [-n COUNT] [-w FILE] CONF DOMAIN...
 *
 * For each domain, prints
 *	route KIND KEY
 *	result CODE STATUS WHY		CODE: ok temp nxdomain nullmx loop
 *					noaddr; STATUS "-" when ok
 *	addr PREF HOST IP PORT		one line per address, in order
 * With -n, resolves each domain COUNT times more on the same handle and
 * prints "first HOST" for each (equal-preference spread). With -w, after
 * the first round it waits (10 s at most) for FILE to exist, then does
 * the round again on the same handle (the cache).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

static const char *
probe_kind(enum route_kind k)
{
	switch (k) {
	case ROUTE_MX:
		return "mx";
	case ROUTE_MXHOST:
		return "mxhost";
	case ROUTE_HOST:
		return "host";
	case ROUTE_HOLD:
		return "hold";
	case ROUTE_CALLER:
		return "caller";
	}
	return "?";
}

static const char *
probe_code(int rc)
{
	switch (rc) {
	case ROUTE_OK:
		return "ok";
	case ROUTE_E_TEMP:
		return "temp";
	case ROUTE_E_NXDOMAIN:
		return "nxdomain";
	case ROUTE_E_NULLMX:
		return "nullmx";
	case ROUTE_E_LOOP:
		return "loop";
	case ROUTE_E_NOADDR:
		return "noaddr";
	}
	return "?";
}

static void
probe_addr(const struct route_addr *a, char *ip, size_t ipsz, int *port)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (a->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ipsz);
		*port = ntohs(sin->sin_port);
	} else {
		sin6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)ipsz);
		*port = ntohs(sin6->sin6_port);
	}
}

static void
probe_one(const struct conf *c, const struct routes *rs,
    struct route_dns *d, const char *domain, int timeout_ms, int count)
{
	struct route		 r;
	struct route_addr	 a[ROUTE_ADDR_MAX];
	char			 status[16], why[512], ip[64];
	size_t			 n, i;
	int			 rc, port, k;

	route_lookup(c, rs, domain, &r);
	printf("route %s %s\n", probe_kind(r.kind), r.key);
	rc = route_dns_resolve(d, &r, domain, a, ROUTE_ADDR_MAX, &n, status,
	    why, sizeof(why), timeout_ms);
	printf("result %s %s%s%s\n", probe_code(rc), rc == ROUTE_OK ? "-" :
	    status, why[0] != '\0' ? " " : "", why);
	for (i = 0; rc == ROUTE_OK && i < n; i++) {
		probe_addr(&a[i], ip, sizeof(ip), &port);
		printf("addr %d %s %s %d\n", a[i].pref, a[i].host, ip, port);
	}
	for (k = 0; k < count; k++) {
		rc = route_dns_resolve(d, &r, domain, a, ROUTE_ADDR_MAX, &n,
		    status, why, sizeof(why), timeout_ms);
		printf("first %s\n", rc == ROUTE_OK && n > 0 ? a[0].host :
		    probe_code(rc));
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct conf		*c;
	struct routes		*rs;
	struct route_dns	*d;
	struct timespec		 ts = { 0, 50 * 1000 * 1000 };
	const char		*wait_file = NULL;
	char			 err[1024];
	int			 ch, timeout_ms = 5000, count = 0, i, round;

	while ((ch = getopt(argc, argv, "n:t:w:")) != -1) {
		switch (ch) {
		case 'n':
			count = atoi(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'w':
			wait_file = optarg;
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		goto usage;
	log_init("route_probe", LOG_DEST_STDERR);
	if ((c = conf_load(argv[0], err, sizeof(err))) == NULL) {
		fprintf(stderr, "route_probe: %s\n", err);
		return 2;
	}
	if ((rs = routes_load(c->routes_file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "route_probe: routes_file: %s\n", err);
		conf_free(c);
		return 2;
	}
	if ((d = route_dns_new(c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "route_probe: %s\n", err);
		routes_free(rs);
		conf_free(c);
		return 2;
	}
	for (round = 0; round < (wait_file != NULL ? 2 : 1); round++) {
		if (round == 1) {
			for (i = 0; i < 200 && access(wait_file, F_OK) == -1;
			    i++)
				nanosleep(&ts, NULL);
			printf("round 2\n");
		}
		for (i = 1; i < argc; i++)
			probe_one(c, rs, d, argv[i], timeout_ms, count);
	}
	route_dns_free(d);
	routes_free(rs);
	conf_free(c);
	return 0;
usage:
	fprintf(stderr, "usage: route_probe [-t TIMEOUT_MS] [-n COUNT] "
	    "[-w FILE] CONF DOMAIN...\n");
	return 2;
}

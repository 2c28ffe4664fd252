/* route_dns.c - placeholder until the DNS module lands. */
#include "runner.h"

struct route_dns *
route_dns_new(const struct conf *c, char *err, size_t errsz)
{
	(void)c;
	bsnprintf(err, errsz, "DNS not built yet");
	return NULL;
}

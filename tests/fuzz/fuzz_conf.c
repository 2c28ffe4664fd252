/*
 * fuzz_conf.c - the configuration file (smtp/conf.c): conf_load of the
 * input as a file, conf_dump of what it took, and the value parsers
 * (durations, sizes, networks, addresses) of the input as one value.
 *
 * Input: the file's bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf		*c;
	struct conf_net		 net;
	struct conf_addr	 addr;
	struct sbuf		*b;
	const char		*f;
	char			 err[1024], *v;
	time_t			 t;
	uint64_t		 u;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	if ((f = fuzz_file("conf", data, size)) != NULL &&
	    (c = conf_load(f, err, sizeof(err))) != NULL) {
		b = sbuf_new();
		conf_dump(c, b);
		(void)conf_key_line(c, "myhostname");
		if (c->nlisten > 0)
			(void)conf_net_match(c->mynetworks, c->nmynetworks,
			    (const struct sockaddr *)&c->listen[0].ss);
		sbuf_free(b);
		conf_free(c);
	}
	v = fuzz_str(data, size);
	(void)conf_parse_duration(v, &t);
	(void)conf_parse_size(v, &u);
	if (conf_parse_net(v, &net) == 0) {
		struct sockaddr_in6	sa;

		memset(&sa, 0, sizeof(sa));
		sa.sin6_family = AF_INET6;
		memcpy(&sa.sin6_addr, net.addr, 16);
		if (!conf_net_match(&net, 1, (const struct sockaddr *)&sa))
			abort();	/* a network holds its own address */
	}
	(void)conf_parse_addr(v, 25, &addr);
	free(v);
	return 0;
}

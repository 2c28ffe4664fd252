/*
 * fuzz_known.c - the relay_recipients file (etrn/smtpd.c:
 * smtpd_server_load_known) and the look-up RCPT makes in what it took
 * (smtpd_rcpt_known).
 *
 * Input: the file's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtpd_int.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const addrs[] = { "known@relay.example",
	    "Known@RELAY.example", "x@open.example", "postmaster@a.example",
	    "@relay.example", "" };
	struct smtpd_server	srv;
	const char		*f;
	size_t			i;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	memset(&srv, 0, sizeof(srv));
	if ((f = fuzz_file("known-in", data, size)) == NULL ||
	    smtpd_server_load_known(&srv, f) != 0)
		return 0;
	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		(void)smtpd_rcpt_known(&srv, addrs[i]);
	for (i = 0; i < srv.nknown && i < 8; i++)
		if (strlen(srv.known_rcpts[i]) <= QUEUE_ADDR_MAX &&
		    !smtpd_rcpt_known(&srv, srv.known_rcpts[i]) &&
		    strchr(srv.known_rcpts[i], '@') != NULL &&
		    srv.known_rcpts[i][0] != '@')
			abort();	/* a listed address is known */
	smtpd_server_free_known(&srv);
	return 0;
}

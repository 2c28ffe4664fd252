/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz/ share (README:
 * "Fuzzing"). Each fuzz_<name>.c defines LLVMFuzzerTestOneInput; it is
 * linked with libFuzzer (make fuzz) or with replay_main.c (make asan:
 * every corpus file replayed by tests/integ/cases/850-fuzz-replay.sh).
 *
 * The rules every target keeps: free everything it made (LeakSanitizer
 * runs), keep no state from one input to the next but what init made
 * once per process (so a crash replays from its file alone), never
 * sleep, never wait on a timer, never touch the network.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"

#define FUZZ_INPUT_MAX	(256 * 1024)	/* larger inputs are ignored */

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* fuzz_init - once per process: quiet logs, SIGPIPE ignored, a private
 * temporary directory (removed at exit). Every target calls it first. */
void	 fuzz_init(void);
/* fuzz_dir - that directory. */
const char *fuzz_dir(void);
/* fuzz_file - write n bytes to fuzz_dir()/name (replaced); its path, in
 * a static buffer of the name's. NULL when the write failed. */
const char *fuzz_file(const char *name, const void *p, size_t n);
/* fuzz_str - a NUL-terminated copy (malloc'd) of n bytes. */
char	*fuzz_str(const uint8_t *p, size_t n);

/*
 * A reader over the input: fuzz_take_byte() and fuzz_take_part() split
 * it into a flag byte or two and NUL-separated parts, so one input can
 * carry several fields (an address, a reply text, a message...).
 */
struct fuzz_in {
	const uint8_t	*p;
	size_t		 n;
};
uint8_t	 fuzz_take_byte(struct fuzz_in *);
/* fuzz_take_part - the bytes up to the next FUZZ_SEP (or the end): a
 * malloc'd NUL-terminated string (NUL bytes inside are kept, so strlen
 * may be shorter than *len). */
#define FUZZ_SEP	"\n--\n"
char	*fuzz_take_part(struct fuzz_in *, size_t *len);

/*
 * fuzz_env - made once per process, shared by the targets that drive the
 * server: four configurations (F_CONF of fuzz_smtpd_session.c: 0 the
 * defaults, 1 plaintext AUTH, TURN, no AUTH delay and etrn_policy owners,
 * 2 small limits, 3 an etrn_policy file), users_file (users "site" with
 * every secret, "fast" with an MD5-crypt one, password "secret" both),
 * routes_file, their etrn_conf, and an empty queue in fuzz_dir().
 */
struct fuzz_env {
	struct conf		*conf[4];
	struct etrn_conf	*etrn[4];
	struct auth_db		*auth;
	struct queue		*q;
};
const struct fuzz_env *fuzz_env(void);

#endif

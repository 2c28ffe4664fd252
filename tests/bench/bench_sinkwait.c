/*
 * bench_sinkwait.c - time a command until a smtp-sink has counted N
 * transactions, for bench_deliver.sh.
 *
 * Usage: bench_sinkwait FILE N LIMIT command [arg...]
 *
 * FILE is the output of `smtp-sink -c` (its counters, "mesg=N", rewritten
 * in place with carriage returns). The clock starts, the command runs
 * (its output goes to /dev/null; it must exit 0), and FILE's tail is read
 * every millisecond until its last "mesg=" is at least N. Prints the
 * seconds from the start to the first read that saw N, with millisecond
 * resolution. Exits 1 when LIMIT seconds pass first (printing the count
 * it saw) or on a system error, 2 on bad usage or a failed command.
 *
 * A shell loop that forks tail, tr and sed every 0.1 s both measured in
 * steps of about 0.11 s (0.19 s against 0.33 s could be two polls against
 * three) and took CPU from the system it measured.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtp.h"
#include "bench.h"

#define SW_TAIL		256	/* bytes of FILE read each time */
#define SW_POLL_NS	1000000	/* 1 ms */

/* sw_count - the last "mesg=N" in FILE's tail, or -1 if none yet. */
static long
sw_count(int fd)
{
	char		 buf[SW_TAIL + 1];
	struct stat	 st;
	off_t		 off;
	ssize_t		 n;
	char		*p, *last = NULL;

	if (fstat(fd, &st) == -1)
		fatal("fstat");
	off = st.st_size > SW_TAIL ? st.st_size - SW_TAIL : 0;
	if ((n = pread(fd, buf, SW_TAIL, off)) <= 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, "mesg=")) != NULL; p += 5)
		last = p;
	if (last == NULL)
		return -1;
	return strtol(last + 5, NULL, 10);
}

int
main(int argc, char **argv)
{
	struct timespec	 nap = { 0, SW_POLL_NS };
	double		 t0, limit;
	long		 want, got = -1;
	pid_t		 pid;
	int		 fd, st, devnull;

	log_init("bench_sinkwait", LOG_DEST_STDERR);
	if (argc < 5) {
		fprintf(stderr, "usage: bench_sinkwait FILE N LIMIT command "
		    "[arg...]\n");
		return 2;
	}
	want = strtol(argv[2], NULL, 10);
	limit = strtod(argv[3], NULL);
	if (want < 0 || limit <= 0) {
		fprintf(stderr, "bench_sinkwait: bad N or LIMIT\n");
		return 2;
	}
	if ((fd = open(argv[1], O_RDONLY | O_CLOEXEC)) == -1)
		fatal("%s", argv[1]);
	t0 = bench_now();
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		if ((devnull = open("/dev/null", O_WRONLY)) != -1) {
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		execvp(argv[4], argv + 4);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_sinkwait: %s failed\n", argv[4]);
		return 2;
	}
	while (bench_now() - t0 < limit) {
		if ((got = sw_count(fd)) >= want) {
			printf("%.3f\n", bench_now() - t0);
			return 0;
		}
		nanosleep(&nap, NULL);
	}
	printf("gave up at %ld of %ld\n", got, want);
	return 1;
}

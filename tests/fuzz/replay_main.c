/*
 * replay_main.c - run a fuzz target over files, without libFuzzer: the
 * regression test of every corpus (make asan builds one replay_<target>
 * per target with gcc, ASan and UBSan; 850-fuzz-replay.sh runs them).
 *
 * Usage: replay_<target> FILE|DIR...   (a directory: each regular file
 * in it, in name order). Prints "replayed N files" and exits 0; a crash,
 * leak or sanitizer report ends the process with a failure instead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* replay_file - one input; -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	FILE	*f;
	uint8_t	*buf;
	size_t	 n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(FUZZ_INPUT_MAX + 1);
	n = fread(buf, 1, FUZZ_INPUT_MAX + 1, f);
	fclose(f);
	if (n > FUZZ_INPUT_MAX) {
		fprintf(stderr, "replay: %s: over %d octets\n", path,
		    FUZZ_INPUT_MAX);
		free(buf);
		return -1;
	}
	/* A copy of its exact size, so ASan sees an overread as libFuzzer
	 * would. */
	{
		uint8_t	*in = xmalloc(n > 0 ? n : 1);

		memcpy(in, buf, n);
		free(buf);
		(void)LLVMFuzzerTestOneInput(in, n);
		free(in);
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* replay_dir - each regular file of the directory, sorted; the count, or
 * -1. */
static long
replay_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	char		**v = NULL, path[4096];
	size_t		 n = 0, cap = 0, i;
	long		 done = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, v[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) != 0)
				done = -1;
			else if (done >= 0)
				done++;
		}
		free(v[i]);
	}
	free(v);
	return done;
}

int
main(int argc, char **argv)
{
	struct stat	st;
	long		n = 0, k;
	int		i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			k = replay_dir(argv[i]);
		else
			k = replay_file(argv[i]) == 0 ? 1 : -1;
		if (k < 0)
			return 1;
		n += k;
	}
	printf("replayed %ld files\n", n);
	return 0;
}

/*
 * tharness.h - the header-only harness for the unit tests.
 *
 * A test is a function void f(struct t *). T_RUN runs it and prints
 * "ok NAME" or "not ok NAME" on standard output; tests/run.sh counts those
 * lines. Failures are reported with t_errorf() and read as
 *	test_smtp_addr.c:42: addr_table: smtp_addr_parse("<a@b>"): got -3, want 0
 * A test binary exits 1 when any test failed.
 */
#ifndef THARNESS_H
#define THARNESS_H

#include <stdio.h>
#include <stdlib.h>

struct t {
	const char	*name;
	int		 failed;
};

#define t_errorf(t, ...) do {						\
	fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, (t)->name);	\
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	(t)->failed = 1;						\
} while (0)

/* t_fatalf - report and leave the test function at once. */
#define t_fatalf(t, ...) do {						\
	t_errorf(t, __VA_ARGS__);					\
	return;								\
} while (0)

static int t_nfailed;

#define T_RUN(fn) do {							\
	struct t t_ = { #fn, 0 };					\
	fn(&t_);							\
	printf("%s %s\n", t_.failed ? "not ok" : "ok", #fn);		\
	fflush(stdout);							\
	if (t_.failed)							\
		t_nfailed++;						\
} while (0)

#define T_EXIT() return (t_nfailed ? 1 : 0)

#endif

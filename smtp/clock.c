/*
 * clock.c - the one place postern reads the time.
 *
 * Wall-clock time (clock_now) is for what is stored and shown: arrival,
 * next try, expiry. The monotonic clock (clock_mono_*) is for timeouts and
 * durations, which must not jump when the wall clock is set. Both are
 * reached through clock_offset, so a unit test can move time forward
 * (clock_advance) instead of sleeping and hoping. clock_wall_ms, against
 * clock_mono_ms, lets a long-running process notice that the wall clock was
 * stepped (runner/sched.c: leases, timers timed by the old clock).
 */
#include <time.h>

#include "smtp.h"

static int64_t	clock_offset_ns;	/* added by clock_advance() (tests) */

time_t
clock_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + (time_t)(clock_offset_ns / 1000000000);
}

int64_t
clock_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
	    clock_offset_ns) / 1000000;
}

int64_t
clock_mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + clock_offset_ns;
}

int64_t
clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

double
clock_mono_secs(void)
{
	return (double)clock_mono_ns() / 1e9;
}

void
clock_advance(int64_t ns)
{
	clock_offset_ns += ns;
}

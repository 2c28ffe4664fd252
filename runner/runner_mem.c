/*
 * runner_mem.c - keep a runner's resident set bounded.
 *
 * Every record LMDB reads is a page of the queue file mapped into the
 * reader, and the kernel maps up to 15 cached neighbours with each fault.
 * A scheduler or worker that claims and delivers scattered recipients of a
 * large queue would, over hours, have the whole file mapped: harmless to
 * the machine (the pages are the shared page cache) but it is what `ps`
 * and the OOM killer count. When the process's file-backed resident set
 * passes RUNNER_MAP_KEEP, the map is dropped (queue_map_drop); the next
 * reads map again only what they touch.
 */
#include <stdio.h>
#include <unistd.h>

#include "runner_int.h"

/* runner_mapped - the process's file-backed resident bytes (statm's third
 * field: mostly the queue map), or 0 when unknown. */
static size_t
runner_mapped(void)
{
	FILE		*f;
	unsigned long	 size, res, shared;
	long		 psz = sysconf(_SC_PAGESIZE);
	int		 n;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	n = fscanf(f, "%lu %lu %lu", &size, &res, &shared);
	fclose(f);
	if (n != 3 || psz <= 0)
		return 0;
	return (size_t)shared * (size_t)psz;
}

void
runner_mem_trim(struct queue *q, size_t keep)
{
	if (runner_mapped() <= keep)
		return;
	if (queue_map_drop(q) != 0)
		log_warnx("drop queue map: %s", queue_errmsg(q));
}

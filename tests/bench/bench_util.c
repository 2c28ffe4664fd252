/*
 * bench_util.c - timing, medians and scratch directories for the queue
 * benchmarks.
 *
 * The scratch directory must be on a real disk: a durable enqueue is an
 * fsync, and on tmpfs an fsync returns at once, which would turn the
 * group-commit numbers into a measure of the CPU.
 */
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtp.h"
#include "bench.h"

double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_dblcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_dblcmp);
	if (n % 2 == 1)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* bench_fs_name - a name for statfs' f_type; NULL for memory file systems. */
static const char *
bench_fs_name(long type, bool *inmem)
{
	*inmem = false;
	switch ((unsigned long)type) {
	case TMPFS_MAGIC:
		*inmem = true;
		return "tmpfs";
	case RAMFS_MAGIC:
		*inmem = true;
		return "ramfs";
	case EXT4_SUPER_MAGIC:	/* also ext2 and ext3 */
		return "ext4";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlay";
	}
	return "other";
}

void
bench_dir_default(const char *name, char *buf, size_t bufsz)
{
	struct statfs	sf;
	bool		inmem = true;

	if (statfs("/tmp", &sf) == 0)
		(void)bench_fs_name(sf.f_type, &inmem);
	if (!bsnprintf(buf, bufsz, "%s/%s.%ld", inmem ? "build/benchtmp" :
	    "/tmp", name, (long)getpid()))
		fatalx("%s: directory name too long", __func__);
}

/* bench_mkdirs - mkdir -p. */
static void
bench_mkdirs(const char *dir)
{
	char	path[4096];
	char	*p;

	if (!strl_copy(path, dir, sizeof(path)))
		fatalx("%s: %s: name too long", __func__, dir);
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			fatal("%s: mkdir %s", __func__, path);
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fatal("%s: mkdir %s", __func__, path);
}

void
bench_dir_check(const char *dir, char *fstype, size_t fstypesz)
{
	struct statfs	 sf;
	const char	*name;
	bool		 inmem;

	bench_mkdirs(dir);
	if (statfs(dir, &sf) == -1)
		fatal("%s: statfs %s", __func__, dir);
	name = bench_fs_name(sf.f_type, &inmem);
	if (inmem)
		fatalx("%s: %s is on %s: fsync costs nothing there, so durable "
		    "numbers would be meaningless; give a directory on a disk",
		    __func__, dir, name);
	(void)strl_copy(fstype, name, fstypesz);
}

void
bench_queue_remove(const char *dir)
{
	static const char	*files[] = { "data.mdb", "lock.mdb" };
	char			 path[4096];
	size_t			 i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (!bsnprintf(path, sizeof(path), "%s/%s", dir, files[i]))
			fatalx("%s: %s: name too long", __func__, dir);
		if (unlink(path) == -1 && errno != ENOENT)
			fatal("%s: unlink %s", __func__, path);
	}
	if (rmdir(dir) == -1 && errno != ENOENT)
		fatal("%s: rmdir %s", __func__, dir);
}

void
bench_file_size(const char *path, uint64_t *size, uint64_t *alloc)
{
	struct stat	st;

	*size = *alloc = 0;
	if (stat(path, &st) == -1)
		return;
	*size = (uint64_t)st.st_size;
	*alloc = (uint64_t)st.st_blocks * 512;
}

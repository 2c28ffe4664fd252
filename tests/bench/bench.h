/*
 * bench.h - what the queue benchmarks share.
 *
 * The benchmarks in this folder are programs linked against the release
 * objects (build/rel/) and run by tests/bench/run.sh. Each one takes a
 * directory on a real disk, makes fresh queues below it, prints one line
 * per result ("<area>  <case>  <value> ... (target ...: PASS)") and
 * removes its queues. Durable numbers on tmpfs would measure nothing, so
 * bench_dir_check() refuses it. Errors end the program with fatalx().
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/* bench_now - monotonic seconds, for timing. */
double	bench_now(void);
/* bench_median - median of v[0..n-1] (v is reordered); 0 when n is 0. */
double	bench_median(double *v, size_t n);
/* bench_dir_default - a directory for queues: name below /tmp when /tmp
 * is a real disk, else below build/benchtmp (relative to the checkout).
 * Writes into buf; fatal when it does not fit. */
void	bench_dir_default(const char *name, char *buf, size_t bufsz);
/* bench_dir_check - create dir (mkdir -p) and refuse tmpfs/ramfs; fills
 * fstype with a short name of the file system ("ext4", "xfs", ...). */
void	bench_dir_check(const char *dir, char *fstype, size_t fstypesz);
/* bench_queue_remove - remove a queue directory made by queue_open()
 * (data.mdb, lock.mdb, the directory). Missing files are fine. */
void	bench_queue_remove(const char *dir);
/* bench_file_size - st_size and allocated bytes of a file (0 if none). */
void	bench_file_size(const char *path, uint64_t *size, uint64_t *alloc);

#endif

/*
 * tutil.h - small helpers the unit tests share, header-only like
 * tharness.h (static inline: a test file uses what it needs).
 */
#ifndef TUTIL_H
#define TUTIL_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * write_tmpn - put len bytes in a new file /tmp/test_unit.XXXXXX (made
 * by mkstemp); path, of pathsz bytes, gets its name. Returns 0, or -1
 * with errno set and no file left behind. The caller unlinks the file.
 */
static inline int
write_tmpn(const char *text, size_t len, char *path, size_t pathsz)
{
	static const char	tmpl[] = "/tmp/test_unit.XXXXXX";
	size_t			off = 0;
	ssize_t			n;
	int			fd;

	if (pathsz < sizeof(tmpl)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, tmpl, sizeof(tmpl));
	if ((fd = mkstemp(path)) == -1)
		return -1;
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == 0)
				errno = EIO;
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) == -1) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* write_tmp - write_tmpn() of a string. */
static inline int
write_tmp(const char *text, char *path, size_t pathsz)
{
	return write_tmpn(text, strlen(text), path, pathsz);
}

#endif

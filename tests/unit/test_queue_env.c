/*
 * test_queue_env.c - unit tests for queue/queue_env.c: opening the queue,
 * its limits, and its map.
 *
 * Covered: open errors (a queue of another schema version, written with
 * LMDB itself while the queue is closed; permissions); opening without
 * QUEUE_CREATE; a full map and a full disk (a 2 MiB tmpfs, so the tests
 * run as root); queue_map_drop(); data.mdb or lock.mdb planted as a link
 * is refused (test_open_links).
 */
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>

#include "tqueue.h"

/* ------------------------------------------------------------------ */
/* Open errors. */

/* tq_open_as_nobody - queue_open(dir, 0) in a child that runs as nobody:
 * its result in *rc and its error text in err. */
static bool
tq_open_as_nobody(struct t *t, const char *dir, int *rc, char *err,
    size_t errsz)
{
	struct queue	*q;
	uint8_t		*buf = NULL;
	size_t		 len = 0;
	pid_t		 pid;
	char		 cerr[512];
	int		 fd, crc;
	bool		 ok;

	*rc = 0;
	err[0] = '\0';
	if ((pid = tq_fork_pipe(t, &fd)) == -1)
		return false;
	if (pid == 0) {
		if (setgroups(0, NULL) == -1 || setgid(TQ_NOBODY) == -1 ||
		    setuid(TQ_NOBODY) == -1)
			_exit(10);
		cerr[0] = '\0';
		if ((crc = queue_open(dir, 0, TQ_MAP, &q, cerr,
		    sizeof(cerr))) == 0)
			queue_close(q);
		if (!tq_write(fd, &crc, sizeof(crc)) ||
		    !tq_write(fd, cerr, strlen(cerr) + 1))
			_exit(11);
		_exit(0);
	}
	ok = tq_read_all(fd, &buf, &len);
	close(fd);
	if (!tq_wait(t, pid, 0, "queue_open as nobody (10: setuid)"))
		ok = false;
	else if (!ok || len < sizeof(int) + 1) {
		t_errorf(t, "queue_open as nobody: %zu bytes of report", len);
		ok = false;
	} else {
		memcpy(rc, buf, sizeof(int));
		buf[len - 1] = '\0';
		(void)strl_copy(err, (char *)buf + sizeof(int), errsz);
	}
	free(buf);
	return ok;
}

static void
test_errors(struct t *t)
{
	struct queue	*q = NULL;
	MDB_env		*env = NULL;
	MDB_txn		*txn = NULL;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 ver[4] = { 0, 0, 0, 99 };
	char		 dir[64], path[128], err[512];
	int		 rc, fd, mrc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;

	/* No such directory, and no QUEUE_CREATE. */
	(void)bsnprintf(path, sizeof(path), "%s/missing/q", dir);
	err[0] = '\0';
	rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_NOENT || q != NULL || strstr(err, path) == NULL)
		t_errorf(t, "queue_open(%s, 0): got %d \"%s\", want %d and the "
		    "path", path, rc, err, QUEUE_E_NOENT);
	queue_close(q);
	q = NULL;
	/* QUEUE_CREATE makes it; it opens again without. */
	if ((rc = queue_open(path, QUEUE_CREATE, TQ_MAP, &q, err,
	    sizeof(err))) != 0)
		t_errorf(t, "queue_open(%s, QUEUE_CREATE): got %d (%s), want "
		    "0", path, rc, err);
	queue_close(q);
	q = NULL;
	if ((rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err))) != 0)
		t_errorf(t, "queue_open(%s, 0) once made: got %d (%s), want 0",
		    path, rc, err);
	queue_close(q);
	q = NULL;

	/* A regular file where the directory should be. */
	(void)bsnprintf(path, sizeof(path), "%s/file", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1)
		t_errorf(t, "open(%s): %s", path, strerror(errno));
	else
		close(fd);
	err[0] = '\0';
	rc = queue_open(path, QUEUE_CREATE, TQ_MAP, &q, err, sizeof(err));
	if (rc >= 0 || q != NULL || strstr(err, path) == NULL)
		t_errorf(t, "queue_open(regular file %s): got %d \"%s\", want "
		    "an error that names it", path, rc, err);
	queue_close(q);
	q = NULL;

	/* Another schema version. */
	(void)bsnprintf(path, sizeof(path), "%s/v99", dir);
	if (mkdir(path, 0700) == -1)
		t_errorf(t, "mkdir(%s): %s", path, strerror(errno));
	k.mv_data = (void *)(uintptr_t)"version";
	k.mv_size = 7;
	v.mv_data = ver;
	v.mv_size = sizeof(ver);
	if ((mrc = mdb_env_create(&env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (mrc = mdb_env_open(env, path, 0, 0600)) != 0 ||
	    (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi)) != 0 ||
	    (mrc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		t_errorf(t, "writing a version 99 queue: %s",
		    mdb_strerror(mrc));
		if (txn != NULL)
			mdb_txn_abort(txn);
	} else if ((mrc = mdb_txn_commit(txn)) != 0)
		t_errorf(t, "mdb_txn_commit: %s", mdb_strerror(mrc));
	if (env != NULL)
		mdb_env_close(env);
	err[0] = '\0';
	rc = queue_open(path, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_VERSION || strstr(err, "99") == NULL)
		t_errorf(t, "queue_open(version 99): got %d \"%s\", want %d "
		    "and the version", rc, err, QUEUE_E_VERSION);
	queue_close(q);
	q = NULL;

	/* A queue directory of root's, mode 0700, opened by nobody. */
	(void)bsnprintf(path, sizeof(path), "%s/perm", dir);
	if ((q = tq_open(t, path, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	q = NULL;
	if (chmod(path, 0700) == -1 || chmod(dir, 0755) == -1)
		t_errorf(t, "chmod: %s", strerror(errno));
	if (tq_open_as_nobody(t, path, &rc, err, sizeof(err)) &&
	    (rc != QUEUE_E_PERM || err[0] == '\0'))
		t_errorf(t, "queue_open(%s) as nobody: got %d \"%s\", want %d "
		    "(QUEUE_E_PERM) with a reason", path, rc, err,
		    QUEUE_E_PERM);
out:
	queue_close(q);
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* A full map, a full disk. */

#define TQ_FULL_BODY	65536
#define TQ_FULL_MAX	256	/* 16 MiB: more than either limit */

/* tq_fill_up - enqueue 64 KiB messages until one fails; ids of those
 * that did not in ids. Returns the failure's code (0: none failed). */
static int
tq_fill_up(struct t *t, struct queue *q, uint64_t *ids, size_t *nids)
{
	uint8_t		*body;
	uint64_t	 id;
	size_t		 i;
	char		 addr[64];
	int		 rc = 0;

	*nids = 0;
	if ((body = malloc(TQ_FULL_BODY)) == NULL) {
		t_errorf(t, "malloc: %s", strerror(errno));
		return 0;
	}
	for (i = 0; i < TQ_FULL_MAX; i++) {
		(void)bsnprintf(addr, sizeof(addr), "m%zu@full.example", i);
		if ((rc = tq_enqueue_seed(q, addr, 5000 + i, body,
		    TQ_FULL_BODY, &id)) != 0) {
			if (id != 0)
				t_errorf(t, "failed enqueue %zu: id %" PRIu64
				    ", want 0", i, id);
			break;
		}
		ids[(*nids)++] = id;
	}
	free(body);
	return rc;
}

/* tq_full_check - the messages enqueued before the failure are whole,
 * and nothing else is there. */
static void
tq_full_check(struct t *t, struct queue *q, const uint64_t *ids,
    size_t nids)
{
	struct qshape	 s;
	struct qmsg	 m;
	struct qrcpt	*got;
	size_t		 i, nr;
	int		 rc;

	for (i = 0; i < nids; i++) {
		if ((rc = queue_get(q, ids[i], &m, &got, &nr)) != 0) {
			t_errorf(t, "message %zu: queue_get got %d, want 0", i,
			    rc);
			continue;
		}
		free(got);
		if (m.size != TQ_FULL_BODY || nr != 1)
			t_errorf(t, "message %zu: size %" PRIu64 ", %zu rcpts",
			    i, m.size, nr);
		(void)tq_body_seed(t, q, ids[i], 5000 + i, TQ_FULL_BODY);
	}
	if ((rc = queue_shape(q, (int64_t)time(NULL), &s)) != 0)
		t_errorf(t, "queue_shape: got %d, want 0", rc);
	else {
		if (s.msgs != nids || s.rcpts != nids)
			t_errorf(t, "after the failure: msgs %" PRIu64 " rcpts "
			    "%" PRIu64 ", want %zu and %zu", s.msgs, s.rcpts,
			    nids, nids);
		queue_shape_free(&s);
	}
}

static void
test_map_full(struct t *t)
{
	static const char *const small[] = { "small@after.example" };
	struct queue	*q = NULL;
	struct qsel	 sel;
	uint64_t	 ids[TQ_FULL_MAX], id;
	size_t		 nids, cnt;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if ((q = tq_open(t, dir, 1048576)) == NULL)
		goto out;
	rc = tq_fill_up(t, q, ids, &nids);
	printf("# test_map_full: %zu messages of 64 KiB, then %d (%s)\n",
	    nids, rc, rc ? queue_errmsg(q) : "no error");
	if (rc == 0)
		t_errorf(t, "no error after %zu messages of 64 KiB in a 1 MiB "
		    "map", nids);
	else if (rc != QUEUE_E_FULL)
		t_errorf(t, "queue_enqueue(message %zu): got %d (%s: %s), want "
		    "%d (QUEUE_E_FULL)", nids, rc, queue_strerror(rc),
		    queue_errmsg(q), QUEUE_E_FULL);
	if (nids == 0)
		t_errorf(t, "not one message of 64 KiB fit in 1 MiB");
	tq_full_check(t, q, ids, nids);

	/* Still usable: delete one, then a small message fits. */
	memset(&sel, 0, sizeof(sel));
	sel.ids = ids;
	sel.nids = 1;
	if (nids > 0 && ((rc = queue_delete(q, &sel, &cnt)) != 0 || cnt != 1))
		t_errorf(t, "queue_delete(one) when full: got %d (%s), %zu; "
		    "want 0, 1", rc, queue_errmsg(q), cnt);
	if (tq_enqueue(t, q, small, 1, &id))
		(void)tq_want(t, q, id, 0, QRCPT_QUEUED, -1);
out:
	queue_close(q);
	tq_rmrf(dir);
}

static void
test_disk_full(struct t *t)
{
	static const char *const small[] = { "small@after.example" };
	struct queue	*q = NULL;
	struct qsel	 sel;
	uint64_t	 ids[TQ_FULL_MAX], id;
	size_t		 nids, cnt;
	struct statvfs	 vfs;
	char		 dir[64], qdir[96];
	int		 rc;
	bool		 mounted = false;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") == -1) {
		t_errorf(t, "mount -t tmpfs -o size=2m tmpfs %s: %s", dir,
		    strerror(errno));
		goto out;
	}
	mounted = true;
	(void)bsnprintf(qdir, sizeof(qdir), "%s/q", dir);
	/* The map (64 MiB) is far larger than the disk (2 MiB). */
	if ((q = tq_open(t, qdir, (uint64_t)64 << 20)) == NULL)
		goto out;
	rc = tq_fill_up(t, q, ids, &nids);
	if (statvfs(dir, &vfs) == -1)
		memset(&vfs, 0, sizeof(vfs));
	printf("# test_disk_full: %zu messages of 64 KiB, then %d (%s), "
	    "%llu bytes free\n", nids, rc, rc ? queue_errmsg(q) : "no error",
	    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
	if (rc == 0)
		t_errorf(t, "no error after %zu messages of 64 KiB on a 2 MiB "
		    "disk", nids);
	else if (rc != QUEUE_E_FULL)
		t_errorf(t, "queue_enqueue(message %zu) on a full disk: got %d "
		    "(%s: %s), want %d (QUEUE_E_FULL)", nids, rc,
		    queue_strerror(rc), queue_errmsg(q), QUEUE_E_FULL);
	if (nids == 0)
		t_errorf(t, "not one message of 64 KiB fit on 2 MiB");
	tq_full_check(t, q, ids, nids);

	/* Deleting makes room again. */
	memset(&sel, 0, sizeof(sel));
	sel.ids = ids;
	sel.nids = nids < 4 ? nids : 4;
	if (sel.nids > 0 && ((rc = queue_delete(q, &sel, &cnt)) != 0 ||
	    cnt != sel.nids))
		t_errorf(t, "queue_delete(%zu) when the disk is full: got %d "
		    "(%s), %zu; want 0, %zu", sel.nids, rc, queue_errmsg(q),
		    cnt, sel.nids);
	if (tq_enqueue(t, q, small, 1, &id))
		(void)tq_want(t, q, id, 0, QRCPT_QUEUED, -1);
out:
	queue_close(q);
	if (mounted && umount2(dir, 0) == -1)
		t_errorf(t, "umount %s: %s", dir, strerror(errno));
	tq_rmrf(dir);
}

/*
 * QUEUE_CREATE: "create the directory and schema if missing". Without
 * it, an existing directory that holds no queue is not a queue: it must
 * not be turned into one (a mistyped queue_dir would get data.mdb).
 */
static void
test_open_no_create(struct t *t)
{
	struct queue	*q = NULL;
	struct stat	 st;
	char		 dir[64], path[128], err[512];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	err[0] = '\0';
	rc = queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err));
	if (rc != QUEUE_E_NOENT)
		t_errorf(t, "queue_open(empty directory, 0): got %d \"%s\", "
		    "want %d (QUEUE_E_NOENT: not a queue)", rc, err,
		    QUEUE_E_NOENT);
	queue_close(q);
	(void)bsnprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) == 0)
		t_errorf(t, "queue_open(empty directory, 0) made %s (%lld "
		    "bytes)", path, (long long)st.st_size);
	tq_rmrf(dir);
}

/*
 * QUEUE_E_PERM is "queue directory not accessible": a queue below a
 * directory that the user may not search is not accessible either.
 */
static void
test_open_perm_parent(struct t *t)
{
	struct queue	*q;
	char		 dir[64], path[128], err[512];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	(void)bsnprintf(path, sizeof(path), "%s/q", dir);
	if ((q = tq_open(t, path, TQ_MAP)) == NULL)
		goto out;
	queue_close(q);
	if (chmod(path, 0755) == -1 || chmod(dir, 0700) == -1)
		t_errorf(t, "chmod: %s", strerror(errno));
	if (tq_open_as_nobody(t, path, &rc, err, sizeof(err)) &&
	    rc != QUEUE_E_PERM)
		t_errorf(t, "queue_open(%s) as nobody, parent 0700: got %d "
		    "(%s) \"%s\", want %d (QUEUE_E_PERM)", path, rc,
		    queue_strerror(rc), err, QUEUE_E_PERM);
out:
	tq_rmrf(dir);
}

/* ------------------------------------------------------------------ */
/* queue_map_drop() gives back the pages a reader mapped, and what is read
 * after it is the same. */

#define TQ_DROP_MSGS	400
#define TQ_DROP_BODY	(16 * 1024)

/* tq_file_rss - this process's file-backed resident bytes (statm). */
static size_t
tq_file_rss(void)
{
	FILE		*f;
	unsigned long	 a, b, shared = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	if (fscanf(f, "%lu %lu %lu", &a, &b, &shared) != 3)
		shared = 0;
	fclose(f);
	return (size_t)shared * (size_t)sysconf(_SC_PAGESIZE);
}

/* tq_read_bodies - read every body back and compare it. */
static bool
tq_read_bodies(struct t *t, struct queue *q, const uint64_t *ids,
    uint8_t *want, uint8_t *got)
{
	size_t	i, len;
	int	rc;

	for (i = 0; i < TQ_DROP_MSGS; i++) {
		tq_fill(want, TQ_DROP_BODY, i + 1);
		if ((rc = queue_body_chunk(q, ids[i], 0, got, &len)) != 0 ||
		    len != TQ_DROP_BODY || memcmp(want, got, len) != 0) {
			t_errorf(t, "body %zu: rc %d, %zu bytes, or not the "
			    "same", i, rc, len);
			return false;
		}
	}
	return true;
}

static void
test_map_drop(struct t *t)
{
	struct queue	*q = NULL;
	struct qrcpt	 r;
	struct qnew	 n;
	uint64_t	*ids = NULL;
	uint8_t		*want = NULL, *got = NULL;
	size_t		 i, before, read1, dropped;
	char		 dir[64];
	int		 rc;

	if (!tq_tmpdir(t, dir, sizeof(dir)))
		return;
	ids = calloc(TQ_DROP_MSGS, sizeof(*ids));
	want = malloc(TQ_DROP_BODY);
	got = malloc(QUEUE_CHUNK_SIZE);
	if (ids == NULL || want == NULL || got == NULL)
		t_fatalf(t, "out of memory");
	if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
		goto out;
	for (i = 0; i < TQ_DROP_MSGS; i++) {
		tq_rcpt(&r, "drop@map.example");
		tq_fill(want, TQ_DROP_BODY, i + 1);
		tq_new(&n, &r, 1, want, TQ_DROP_BODY);
		if ((rc = queue_enqueue(q, &n)) != 0)
			t_fatalf(t, "queue_enqueue: %d", rc);
		ids[i] = n.msg.id;
	}
	/* Nothing read yet: drop, so the measure starts from the same. */
	if ((rc = queue_map_drop(q)) != 0)
		t_fatalf(t, "queue_map_drop: %d (%s)", rc, queue_errmsg(q));
	before = tq_file_rss();
	if (!tq_read_bodies(t, q, ids, want, got))
		goto out;
	read1 = tq_file_rss();
	/* 400 bodies of 16 KiB: at least 6 MiB newly mapped. */
	if (read1 < before + (size_t)TQ_DROP_MSGS * TQ_DROP_BODY *
	    6 / 10) {
		t_errorf(t, "reading mapped %zu bytes, want at least %zu",
		    read1 - before,
		    (size_t)TQ_DROP_MSGS * TQ_DROP_BODY * 6 / 10);
		goto out;
	}
	if ((rc = queue_map_drop(q)) != 0)
		t_fatalf(t, "queue_map_drop: %d (%s)", rc, queue_errmsg(q));
	dropped = tq_file_rss();
	if (dropped > before + (read1 - before) / 10)
		t_errorf(t, "after queue_map_drop %zu bytes mapped, want about "
		    "%zu (%zu after the reads)", dropped, before, read1);
	/* The same bytes again, and the queue still writes. */
	(void)tq_read_bodies(t, q, ids, want, got);
	tq_rcpt(&r, "after@map.example");
	tq_new(&n, &r, 1, "x\r\n", 3);
	if ((rc = queue_enqueue(q, &n)) != 0)
		t_errorf(t, "queue_enqueue after the drop: %d", rc);
out:
	free(ids);
	free(want);
	free(got);
	queue_close(q);
	tq_rmrf(dir);
}

/*
 * test_open_links - data.mdb or lock.mdb planted as a symbolic or hard link
 * (by whoever owns the queue directory, for root to follow) is refused
 * before LMDB opens it, and the file it points to is left as it was.
 */
static void
test_open_links(struct t *t)
{
	static const char *const names[] = { "data.mdb", "lock.mdb" };
	static const char	 text[] = "victim\n";
	struct queue		*q;
	struct stat		 st;
	char			 dir[64], path[128], victim[128], buf[32];
	char			 err[512];
	size_t			 i;
	int			 k, rc, fd;
	ssize_t			 n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (k = 0; k < 2; k++) {
			if (!tq_tmpdir(t, dir, sizeof(dir)))
				return;
			if ((q = tq_open(t, dir, TQ_MAP)) == NULL)
				goto next;
			queue_close(q);
			(void)bsnprintf(victim, sizeof(victim), "%s/victim",
			    dir);
			(void)bsnprintf(path, sizeof(path), "%s/%s", dir,
			    names[i]);
			if ((fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC,
			    0600)) == -1 || write(fd, text, sizeof(text) - 1) !=
			    (ssize_t)(sizeof(text) - 1)) {
				t_errorf(t, "write %s: %s", victim,
				    strerror(errno));
				if (fd != -1)
					close(fd);
				goto next;
			}
			close(fd);
			if (unlink(path) == -1 || (k == 0 ?
			    symlink(victim, path) : link(victim, path)) == -1) {
				t_errorf(t, "plant %s: %s", path,
				    strerror(errno));
				goto next;
			}
			rc = queue_open(dir, 0, TQ_MAP, &q, err, sizeof(err));
			if (rc != QUEUE_E_INVAL || strstr(err, path) == NULL)
				t_errorf(t, "queue_open with %s a %s link: got "
				    "%d (%s), want %d naming it", names[i],
				    k == 0 ? "symbolic" : "hard", rc, err,
				    QUEUE_E_INVAL);
			if (rc == 0)
				queue_close(q);
			rc = queue_open(dir, QUEUE_CREATE | QUEUE_RDONLY,
			    TQ_MAP, &q, err, sizeof(err));
			if (rc != QUEUE_E_INVAL)
				t_errorf(t, "queue_open(RDONLY) with %s a "
				    "link: got %d (%s)", names[i], rc, err);
			if (rc == 0)
				queue_close(q);
			if ((fd = open(victim, O_RDONLY)) == -1 ||
			    (n = read(fd, buf, sizeof(buf))) !=
			    (ssize_t)(sizeof(text) - 1) ||
			    memcmp(buf, text, sizeof(text) - 1) != 0 ||
			    fstat(fd, &st) == -1 || st.st_size !=
			    (off_t)(sizeof(text) - 1))
				t_errorf(t, "the victim of %s changed",
				    names[i]);
			if (fd != -1)
				close(fd);
next:
			tq_rmrf(dir);
		}
	}
}

int
main(void)
{
	T_RUN(test_errors);
	T_RUN(test_map_full);
	T_RUN(test_disk_full);
	T_RUN(test_open_no_create);
	T_RUN(test_open_perm_parent);
	T_RUN(test_map_drop);
	T_RUN(test_open_links);
	T_EXIT();
}

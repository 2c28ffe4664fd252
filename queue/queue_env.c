/*
 * queue_env.c - open the LMDB environment, check its schema, map errors.
 *
 * The map size is the queue's size limit: LMDB reserves address space and
 * the file grows only as pages are written, so a large map costs nothing
 * until used. MDB_MAP_FULL and ENOSPC both become QUEUE_E_FULL, a
 * temporary error: the failed transaction is aborted and nothing committed
 * before it is touched. Each also marks the handle (q->full) so that its
 * next write transaction is preceded by a nudge (queue_txn.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "queue_int.h"

static const char *queue_env_dbnames[] = {
	"meta", "msg", "active", "due", "bydom", "flushq",
};

int
queue_fail(struct queue *q, int code, const char *fmt, ...)
{
	va_list	ap;

	if (q != NULL) {
		va_start(ap, fmt);
		vsnprintf(q->errmsg, sizeof(q->errmsg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * queue_env_map_full - the map is the queue's size limit, and only the
 * operator can raise it: say which setting and what it is now. (The one
 * place queue/ names a configuration key: every program logs
 * queue_errmsg(), and this line is the one an operator must act on.)
 */
int
queue_env_map_full(struct queue *q, const char *what)
{
	MDB_envinfo	 info;
	uint64_t	 sz = q->mapsize;
	const char	*unit = "";

	if (q->env != NULL && mdb_env_info(q->env, &info) == 0)
		sz = info.me_mapsize;
	if (sz != 0 && sz % (1ULL << 30) == 0) {
		sz >>= 30;
		unit = "g";
	} else if (sz != 0 && sz % (1ULL << 20) == 0) {
		sz >>= 20;
		unit = "m";
	} else if (sz != 0 && sz % 1024 == 0) {
		sz >>= 10;
		unit = "k";
	}
	return queue_fail(q, QUEUE_E_FULL, "%s: queue map full "
	    "(queue_map_size = %llu%s): raise queue_map_size", what,
	    (unsigned long long)sz, unit);
}

int
queue_lmdb(struct queue *q, int rc, const char *what)
{
	int	code;

	switch (rc) {
	case MDB_MAP_FULL:
		if (q == NULL)
			return QUEUE_E_FULL;
		__atomic_store_n(&q->full, 1, __ATOMIC_RELAXED);
		return queue_env_map_full(q, what);
	case MDB_TXN_FULL:
	case ENOSPC:
	case EDQUOT:
		if (q != NULL)
			__atomic_store_n(&q->full, 1, __ATOMIC_RELAXED);
		code = QUEUE_E_FULL;
		break;
	case MDB_NOTFOUND:
	case ENOENT:
		code = QUEUE_E_NOENT;
		break;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		code = QUEUE_E_VERSION;
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		code = QUEUE_E_PERM;
		break;
	default:
		code = rc > 0 ? QUEUE_E_SYS : QUEUE_E_LMDB;
	}
	return queue_fail(q, code, "%s: %s", what, mdb_strerror(rc));
}

int64_t
queue_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
queue_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* queue_env_mkdirs - mkdir -p, for QUEUE_CREATE. */
static int
queue_env_mkdirs(const char *dir)
{
	char	path[4096];
	char	*p;

	if (strlen(dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, strlen(dir) + 1);
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * queue_env_files - LMDB opens data.mdb and lock.mdb by name, following
 * symbolic links, and initialises a lock file it is the first to open.
 * Whoever owns the queue directory can plant either as a link to a file of
 * a more privileged user who runs a command here (root): refuse anything
 * but a regular file with one link. (posternd itself opens the queue only
 * after dropping its privileges; see posternd.c.)
 */
static int
queue_env_files(struct queue *q, const char *dir)
{
	static const char *const names[] = { "data.mdb", "lock.mdb" };
	struct stat	 st;
	char		 path[4200];
	size_t		 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]) >= sizeof(path))
			return queue_fail(q, QUEUE_E_INVAL, "%s: path too long",
			    dir);
		if (lstat(path, &st) == -1) {
			if (errno == ENOENT)
				continue;
			return queue_fail(q, errno == EACCES ? QUEUE_E_PERM :
			    QUEUE_E_SYS, "%s: %s", path, strerror(errno));
		}
		if (S_ISLNK(st.st_mode))
			return queue_fail(q, QUEUE_E_INVAL, "%s is a symbolic "
			    "link: refusing to open it", path);
		if (!S_ISREG(st.st_mode))
			return queue_fail(q, QUEUE_E_INVAL, "%s is not a "
			    "regular file: refusing to open it", path);
		if (st.st_nlink != 1)
			return queue_fail(q, QUEUE_E_INVAL, "%s has %ju hard "
			    "links: refusing to open it", path,
			    (uintmax_t)st.st_nlink);
	}
	return 0;
}

static int
queue_env_schema(struct queue *q)
{
	MDB_txn		*txn = NULL;
	MDB_dbi		*dbis[] = { &q->meta, &q->msg, &q->active, &q->due,
			    &q->bydom, &q->flushq };
	MDB_val		 k, v;
	unsigned	 i, dflags;
	uint8_t		 ver[4];
	int		 rc, mrc;
	bool		 rdonly = (q->flags & QUEUE_RDONLY) != 0;
	bool		 create = (q->flags & QUEUE_CREATE) != 0;

	if ((rc = queue_txn_begin(q, rdonly ? MDB_RDONLY : 0, &txn)) != 0)
		return rc;
	/* The version first: a queue of another version may lack the rest. */
	for (i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		dflags = create ? MDB_CREATE : 0;
		if (dbis[i] == &q->bydom)
			dflags |= MDB_DUPSORT | MDB_DUPFIXED;
		if ((mrc = mdb_dbi_open(txn, queue_env_dbnames[i], dflags,
		    dbis[i])) != 0) {
			mdb_txn_abort(txn);
			if (mrc == MDB_NOTFOUND)
				return queue_fail(q, QUEUE_E_NOENT,
				    "%s: not a postern queue (no %s database)",
				    q->dir, queue_env_dbnames[i]);
			return queue_lmdb(q, mrc, "open database");
		}
		if (i > 0)
			continue;
		k.mv_data = (void *)"version";
		k.mv_size = 7;
		mrc = mdb_get(txn, q->meta, &k, &v);
		if (mrc == MDB_NOTFOUND && create && !rdonly) {
			queue_be32_put(ver, QUEUE_SCHEMA_VERSION);
			v.mv_data = ver;
			v.mv_size = 4;
			if ((mrc = mdb_put(txn, q->meta, &k, &v, 0)) != 0) {
				mdb_txn_abort(txn);
				return queue_lmdb(q, mrc, "write schema version");
			}
			continue;
		}
		if (mrc != 0) {
			mdb_txn_abort(txn);
			if (mrc == MDB_NOTFOUND)
				return queue_fail(q, QUEUE_E_NOENT,
				    "%s: not a postern queue (no schema "
				    "version)", q->dir);
			return queue_lmdb(q, mrc, "read schema version");
		}
		if (v.mv_size != 4 ||
		    queue_be32_get(v.mv_data) != QUEUE_SCHEMA_VERSION) {
			uint32_t have = v.mv_size == 4 ?
			    queue_be32_get(v.mv_data) : 0;

			mdb_txn_abort(txn);
			return queue_fail(q, QUEUE_E_VERSION,
			    "%s: queue schema version %u, this program needs "
			    "%u", q->dir, have, QUEUE_SCHEMA_VERSION);
		}
	}
	/*
	 * The MTA-STS cache (queue_sts.c) came after schema version 3 and
	 * holds nothing a queue cannot do without: any writable open makes
	 * it, and a read-only open of a queue that never had one goes on
	 * without it (queue_sts_get then finds nothing).
	 */
	mrc = mdb_dbi_open(txn, "sts", rdonly ? 0 : MDB_CREATE, &q->sts);
	if (mrc == 0)
		q->sts_ok = true;
	else if (mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return queue_lmdb(q, mrc, "open database sts");
	}
	/* Even read-only: dbi handles opened in a transaction that is
	 * aborted are closed with it. */
	return queue_txn_commit(q, txn);
}

int
queue_open(const char *dir, int flags, uint64_t mapsize, struct queue **qp,
    char *err, size_t errsz)
{
	struct queue	*q;
	struct stat	 st;
	unsigned	 eflags = MDB_NOTLS;
	int		 rc, mrc, dead;

	*qp = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errsz, "queue_open: out of memory");
		return QUEUE_E_SYS;
	}
	q->flags = flags;
	q->mapsize = mapsize;
	if ((size_t)snprintf(q->dir, sizeof(q->dir), "%s", dir) >=
	    sizeof(q->dir)) {
		rc = queue_fail(q, QUEUE_E_INVAL, "%s: path too long", dir);
		goto fail;
	}
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || !(flags & QUEUE_CREATE)) {
			rc = queue_fail(q, errno == ENOENT ? QUEUE_E_NOENT :
			    errno == EACCES ? QUEUE_E_PERM : QUEUE_E_SYS,
			    "queue directory %s: %s", dir, strerror(errno));
			goto fail;
		}
		if (queue_env_mkdirs(dir) == -1) {
			rc = queue_fail(q, errno == EACCES ? QUEUE_E_PERM :
			    QUEUE_E_SYS, "create queue directory %s: %s", dir,
			    strerror(errno));
			goto fail;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		rc = queue_fail(q, QUEUE_E_INVAL,
		    "queue directory %s: not a directory", dir);
		goto fail;
	}
	if (access(dir, (flags & QUEUE_RDONLY) ? R_OK | X_OK :
	    R_OK | W_OK | X_OK) == -1) {
		rc = queue_fail(q, QUEUE_E_PERM, "queue directory %s: %s",
		    dir, strerror(errno));
		goto fail;
	}
	if ((rc = queue_env_files(q, dir)) != 0)
		goto fail;
	if ((mrc = mdb_env_create(&q->env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(q->env, 8)) != 0 ||
	    (mrc = mdb_env_set_maxreaders(q->env, 1024)) != 0 ||
	    (mrc = mdb_env_set_mapsize(q->env, (size_t)mapsize)) != 0) {
		rc = queue_lmdb(q, mrc, "create environment");
		goto fail;
	}
	if (flags & QUEUE_RDONLY)
		eflags |= MDB_RDONLY;
	if (!(flags & QUEUE_CREATE)) {
		char	data[4200];

		/* Only QUEUE_CREATE makes a queue where there is none. */
		snprintf(data, sizeof(data), "%s/data.mdb", dir);
		if (access(data, F_OK) == -1) {
			rc = queue_fail(q, QUEUE_E_NOENT, "%s: not a postern "
			    "queue (no data.mdb)", dir);
			goto fail;
		}
	}
	if ((mrc = mdb_env_open(q->env, dir, eflags, 0600)) != 0) {
		rc = queue_lmdb(q, mrc, dir);
		if (mrc == ENOENT)
			queue_fail(q, rc, "%s: not a postern queue (no data.mdb)",
			    dir);
		goto fail;
	}
	(void)mdb_reader_check(q->env, &dead);
	if ((rc = queue_env_schema(q)) != 0)
		goto fail;
	*qp = q;
	return 0;
fail:
	snprintf(err, errsz, "%s", q->errmsg);
	queue_close(q);
	return rc;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->env != NULL)
		mdb_env_close(q->env);
	free(q);
}

const char *
queue_errmsg(const struct queue *q)
{
	return q->errmsg;
}

uint64_t
queue_commits(const struct queue *q)
{
	return __atomic_load_n(&q->ncommits, __ATOMIC_RELAXED);
}

/* queue_env_map_find - where LMDB mapped data.mdb in this process: the line
 * of /proc/self/maps with its device and inode at offset 0 (LMDB reports
 * the address only for MDB_FIXEDMAP environments). */
static int
queue_env_map_find(struct queue *q)
{
	char		 path[4200], line[4400];
	struct stat	 st;
	FILE		*f;
	unsigned long	 start, end, off, ino, maj, min;

	(void)snprintf(path, sizeof(path), "%s/data.mdb", q->dir);
	if (stat(path, &st) == -1)
		return queue_fail(q, QUEUE_E_SYS, "%s: %s", path,
		    strerror(errno));
	if ((f = fopen("/proc/self/maps", "r")) == NULL)
		return queue_fail(q, QUEUE_E_SYS, "/proc/self/maps: %s",
		    strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx %*s %lx %lx:%lx %lu", &start, &end,
		    &off, &maj, &min, &ino) != 6)
			continue;
		if (ino == (unsigned long)st.st_ino && off == 0 &&
		    makedev(maj, min) == st.st_dev) {
			q->map = (void *)(uintptr_t)start;
			q->maplen = end - start;
			break;
		}
	}
	fclose(f);
	if (q->map == NULL)
		return queue_fail(q, QUEUE_E_SYS, "%s: not mapped", path);
	return 0;
}

int
queue_map_drop(struct queue *q)
{
	MDB_envinfo	info;
	MDB_stat	st;
	size_t		len;
	int		rc, mrc;

	if (q->map == NULL && (rc = queue_env_map_find(q)) != 0)
		return rc;
	if ((mrc = mdb_env_info(q->env, &info)) != 0 ||
	    (mrc = mdb_env_stat(q->env, &st)) != 0)
		return queue_lmdb(q, mrc, "map info");
	/* Only the pages in use: the rest of the map was never touched. */
	len = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	if (len > q->maplen)
		len = q->maplen;
	if (madvise(q->map, len, MADV_DONTNEED) == -1)
		return queue_fail(q, QUEUE_E_SYS, "madvise: %s",
		    strerror(errno));
	return 0;
}

const char *
queue_dir(const struct queue *q)
{
	return q->dir;
}

int
queue_reader_check(struct queue *q, int *cleared)
{
	int	mrc, dead = 0;

	if ((mrc = mdb_reader_check(q->env, &dead)) != 0)
		return queue_lmdb(q, mrc, "reader check");
	if (cleared != NULL)
		*cleared = dead;
	return 0;
}

const char *
queue_strerror(int code)
{
	switch (code) {
	case QUEUE_OK:		return "ok";
	case QUEUE_E_SYS:	return "system error";
	case QUEUE_E_NOENT:	return "not found";
	case QUEUE_E_VERSION:	return "wrong queue schema version";
	case QUEUE_E_FULL:	return "queue or disk full";
	case QUEUE_E_STALE:	return "claim no longer held";
	case QUEUE_E_INVAL:	return "invalid argument";
	case QUEUE_E_LMDB:	return "database error";
	case QUEUE_E_CORRUPT:	return "corrupt record";
	case QUEUE_E_PERM:	return "permission denied";
	}
	return "unknown queue error";
}

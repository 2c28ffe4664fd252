/*
 * posternd.c - the daemon's master process.
 *
 * The master binds the listeners, creates the queue, drops privileges when
 * started as root, and supervises its children. A child that
 * dies is logged and restarted with backoff (1 s doubling to 60 s; reset
 * once a child has lived a minute); before the restart the master clears
 * the dead child's LMDB reader slots. The children: the SMTP listener
 * (etrn/, "smtpd", on listen and odmr_listen), the scheduler (runner/,
 * "sched"), which forks the delivery workers ("runner") itself, and the
 * odmr process (runner/reverse.c, "odmr"), which forks one process per
 * reversed ATRN/TURN session the listener hands it, the notify process
 * (runner/notify.c, "notify"), which runs site_notify_command for held
 * sites whose mail piles up, and with metrics_listen the metrics process
 * (tools/metrics.c, "metrics") on the sockets the master bound for it.
 * Before forking, the master maps the shared event counters
 * (queue_dir/counters, smtp/counters.c): every child inherits the
 * mapping, so counts outlive a child's restart. SIGTERM or SIGINT: the
 * children stop (the listener lets sessions in DATA finish) and the
 * master exits 0. SIGHUP: the configuration is read again; a bad one is
 * logged and the old one kept; with a good one the listener reloads in
 * place (SIGHUP) and the scheduler, the odmr, notify and metrics
 * processes finish and start again on it (reversed sessions under way
 * finish on the old one).
 *
 * The master itself never opens the queue for long: LMDB environments do
 * not survive fork, so it opens, checks and closes.
 *
 * Started as root, the master trusts nothing the unprivileged user could
 * have put in or around queue_dir: as root it touches only the directory
 * itself (created, or checked: not a symbolic link, in a path that user
 * cannot change, owned by it or a fresh root-owned one given to it, mode
 * 0700) and, through O_NOFOLLOW descriptors, the queue's own files that
 * root made (`postern enqueue` run as root before the first start);
 * everything else in it - LMDB's data.mdb and lock.mdb, spool/, wake.sock,
 * inject.sock - is opened and created only after the privileges are
 * dropped. Then it
 * checks the configuration with the parsers `postern check` uses
 * (tools_check_conf), and refuses to start on an error, before it forks.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "etrn.h"
#include "runner.h"
#include "queue.h"
#include "smtp.h"
#include "tools.h"

#define POSTERND_BACKOFF_MAX	60
#define POSTERND_STOP_GRACE	(SMTPD_DRAIN_SECONDS + 5)

struct posternd_child {
	const char	*role;
	pid_t		 pid;
	time_t		 started;	/* posternd_mono() */
	time_t		 restart_at;	/* posternd_mono() */
	int		 backoff;
	bool		 reloading;	/* told to stop for a reload */
};

/* posternd_mono - monotonic seconds: a restart's backoff and the stop's
 * grace must not stretch or vanish when the wall clock is stepped. */
static time_t
posternd_mono(void)
{
	return (time_t)(clock_mono_ms() / 1000);
}

static struct conf	*posternd_conf;
static const char	*posternd_conf_file;
static int		*posternd_lfds;
static size_t		 posternd_nlfds;
static size_t		 posternd_nodmr;	/* the last ones of lfds */
static int		*posternd_mfds;		/* metrics_listen */
static size_t		 posternd_nmfds;

static void
posternd_usage(void)
{
	fprintf(stderr, "usage: posternd [-c FILE] [-f]\n");
	exit(2);
}

/* The listen queue: a burst of connections waits in it for the listener
 * (which answers a refused one with 421 at once) instead of in the
 * clients' SYN retries, 1, 3, 7, 15, 31 s apart; the kernel caps it at
 * net.core.somaxconn (4096 on Debian 12). */
#define POSTERND_BACKLOG	4096

static int
posternd_bind(const struct conf_addr *a)
{
	int	fd, on = 1;

	if ((fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		fatal("socket %s", a->text);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->sslen) == -1)
		fatal("bind %s", a->text);
	if (listen(fd, POSTERND_BACKLOG) == -1)
		fatal("listen %s", a->text);
	return fd;
}

/* posternd_can_write - may the user (uid, groups) write to st? */
static bool
posternd_can_write(const struct stat *st, const struct passwd *pw,
    const gid_t *groups, int ngroups)
{
	int	i;

	if (st->st_uid == pw->pw_uid)
		return (st->st_mode & S_IWUSR) != 0;
	for (i = 0; i < ngroups; i++)
		if (st->st_gid == groups[i])
			return (st->st_mode & S_IWGRP) != 0;
	return (st->st_mode & S_IWOTH) != 0;
}

/*
 * posternd_queue_path - no directory on the way to queue_dir (abs, with no
 * symbolic link in it) may be changed by the daemon's user: one it owns or
 * may write could have an entry swapped for a link to anywhere before the
 * next start as root. In a sticky directory (/tmp) it can still move only
 * its own entries.
 */
static void
posternd_queue_path(const char *abs, const struct passwd *pw)
{
	char		 dir[PATH_MAX], *slash;
	struct stat	 dst, cst;
	gid_t		 groups[256];
	int		 ngroups = 256;

	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) == -1)
		fatalx("user %s is in more than %zu groups", pw->pw_name,
		    sizeof(groups) / sizeof(groups[0]));
	strl_copy(dir, abs, sizeof(dir));
	while ((slash = strrchr(dir, '/')) != NULL && slash[1] != '\0') {
		if (lstat(dir, &cst) == -1)
			fatal("lstat %s", dir);
		if (slash == dir)
			slash[1] = '\0';	/* the root directory */
		else
			*slash = '\0';
		if (lstat(dir, &dst) == -1)
			fatal("lstat %s", dir);
		if (dst.st_uid == pw->pw_uid ||
		    (posternd_can_write(&dst, pw, groups, ngroups) &&
		    (!(dst.st_mode & S_ISVTX) || cst.st_uid == pw->pw_uid)))
			fatalx("queue_dir %s: %s is owned or writable by %s, "
			    "who could replace what is in it: refusing to "
			    "start as root (move the queue, or chown/chmod "
			    "%s)", abs, dir, pw->pw_name, dir);
	}
}

/*
 * posternd_queue_entry - what root may do to an entry of the queue
 * directory (dirfd): nothing if it is missing or the daemon user's already;
 * give it to that user if root made it (an earlier `postern` command run
 * as root), through a descriptor opened with O_NOFOLLOW that is checked to
 * be the entry that was looked at. A symbolic link, a hard link, another
 * type or another owner: refuse to start, naming it.
 */
static void
posternd_queue_entry(int dirfd, const char *dir, const char *name,
    mode_t type, const struct passwd *pw)
{
	struct stat	 st, fst;
	int		 fd, flags;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return;
		fatal("%s/%s", dir, name);
	}
	if (S_ISLNK(st.st_mode))
		fatalx("%s/%s is a symbolic link: refusing to start as root "
		    "(remove it; posternd makes what it needs)", dir, name);
	if ((st.st_mode & S_IFMT) != type)
		fatalx("%s/%s is not a %s: refusing to start as root", dir,
		    name, type == S_IFDIR ? "directory" : "regular file");
	if (type == S_IFREG && st.st_nlink != 1)
		fatalx("%s/%s has %ju hard links: refusing to start as root "
		    "(remove it)", dir, name, (uintmax_t)st.st_nlink);
	if (st.st_uid == pw->pw_uid)
		return;
	if (st.st_uid != 0)
		fatalx("%s/%s is owned by uid %ju, not by %s or root: refusing "
		    "to start", dir, name, (uintmax_t)st.st_uid, pw->pw_name);
	flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (type == S_IFDIR)
		flags |= O_DIRECTORY;
	if ((fd = openat(dirfd, name, flags)) == -1)
		fatal("open %s/%s", dir, name);
	if (fstat(fd, &fst) == -1)
		fatal("fstat %s/%s", dir, name);
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino ||
	    (fst.st_mode & S_IFMT) != type ||
	    (type == S_IFREG && fst.st_nlink != 1))
		fatalx("%s/%s changed while it was checked: refusing to start",
		    dir, name);
	if (fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s/%s", dir, name);
	close(fd);
}

/*
 * posternd_queue_fresh - may a root-owned queue_dir be given away? Only
 * when it holds nothing but what postern itself puts there (empty, or a
 * queue made by `postern` as root): never a directory of the system's
 * named by mistake.
 */
static void
posternd_queue_fresh(int dirfd, const char *dir, const struct passwd *pw)
{
	static const char *const ours[] = {
		"data.mdb", "lock.mdb", "spool", "wake.sock", "odmr.sock",
		COUNTERS_FILE
	};
	DIR		*d;
	struct dirent	*de;
	size_t		 i;
	int		 fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL)
		fatal("opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			if (strcmp(de->d_name, ours[i]) == 0)
				break;
		if (i == sizeof(ours) / sizeof(ours[0]))
			fatalx("queue_dir %s is owned by root and holds other "
			    "files (%.80s): not giving it to %s; chown it to "
			    "%s or name an empty directory", dir, de->d_name,
			    pw->pw_name, pw->pw_name);
	}
	closedir(d);
}

/*
 * posternd_queue_root - started as root: make or check queue_dir as
 * described at the top, and leave c->queue_dir absolute.
 */
static void
posternd_queue_root(struct conf *c, const struct passwd *pw)
{
	struct stat	 st, fst;
	char		 abs[PATH_MAX], tmp[PATH_MAX], *slash;
	int		 fd;

	if (lstat(c->queue_dir, &st) == -1) {
		if (errno != ENOENT)
			fatal("queue_dir %s", c->queue_dir);
		strl_copy(tmp, c->queue_dir, sizeof(tmp));
		for (slash = tmp + 1; (slash = strchr(slash, '/')) != NULL;
		    slash++) {
			*slash = '\0';
			(void)mkdir(tmp, 0755);
			*slash = '/';
		}
		if (mkdir(c->queue_dir, 0700) == -1 && errno != EEXIST)
			fatal("mkdir %s", c->queue_dir);
		if (lstat(c->queue_dir, &st) == -1)
			fatal("queue_dir %s", c->queue_dir);
	}
	if (S_ISLNK(st.st_mode))
		fatalx("queue_dir %s is a symbolic link: refusing to start as "
		    "root (set queue_dir to the directory itself)",
		    c->queue_dir);
	if (!S_ISDIR(st.st_mode))
		fatalx("queue_dir %s is not a directory", c->queue_dir);
	if (realpath(c->queue_dir, abs) == NULL)
		fatal("queue_dir %s", c->queue_dir);
	free(c->queue_dir);
	c->queue_dir = xstrdup(abs);
	posternd_queue_path(abs, pw);

	if ((fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		fatal("open %s", abs);
	if (fstat(fd, &fst) == -1)
		fatal("fstat %s", abs);
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
		fatalx("queue_dir %s changed while it was checked: refusing "
		    "to start", abs);
	if (fst.st_uid != pw->pw_uid && fst.st_uid != 0)
		fatalx("queue_dir %s is owned by uid %ju, not by %s: refusing "
		    "to start", abs, (uintmax_t)fst.st_uid, pw->pw_name);
	if (fst.st_uid == 0)
		posternd_queue_fresh(fd, abs, pw);
	/* Root's own files first; the directory last, while the daemon
	 * user cannot yet change anything in it. */
	posternd_queue_entry(fd, abs, "data.mdb", S_IFREG, pw);
	posternd_queue_entry(fd, abs, "lock.mdb", S_IFREG, pw);
	posternd_queue_entry(fd, abs, "spool", S_IFDIR, pw);
	if (fst.st_uid == 0 && fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s", abs);
	if ((fst.st_mode & 07777) != 0700) {
		if (fchmod(fd, 0700) == -1)
			fatal("chmod %s", abs);
		log_info("queue_dir %s: mode %04o changed to 0700", abs,
		    (unsigned)(fst.st_mode & 07777));
	}
	close(fd);
}

/* posternd_queue_user - not root: make queue_dir if missing; absolute. */
static void
posternd_queue_user(struct conf *c)
{
	char	 abs[PATH_MAX], tmp[PATH_MAX], *slash;

	if (mkdir(c->queue_dir, 0700) == -1 && errno != EEXIST) {
		strl_copy(tmp, c->queue_dir, sizeof(tmp));
		for (slash = tmp + 1; (slash = strchr(slash, '/')) != NULL;
		    slash++) {
			*slash = '\0';
			(void)mkdir(tmp, 0755);
			*slash = '/';
		}
	}
	if (realpath(c->queue_dir, abs) != NULL) {
		free(c->queue_dir);
		c->queue_dir = xstrdup(abs);
	}
}

static void
posternd_drop(const struct conf *c, const struct passwd *pw)
{
	if (pw == NULL)
		return;
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", c->user);
	if (setuid(0) != -1)
		fatalx("still root after dropping privileges");
	log_info("running as %s", c->user);
}

/* posternd_check_say - a finding of tools_check_conf, in `postern check`'s
 * words. */
static void
posternd_check_say(void *arg, bool error, const char *msg)
{
	(void)arg;
	if (error)
		log_warnx("%s", msg);
	else
		log_warnx("warning: %s", msg);
}

static void
posternd_prepare_queue(const struct conf *c)
{
	struct queue	*q;
	char		 err[1024], spool[PATH_MAX];
	int		 cleared = 0;

	if (queue_open(c->queue_dir, QUEUE_CREATE, c->queue_map_size, &q, err,
	    sizeof(err)) != 0)
		fatalx("queue: %s", err);
	(void)queue_reader_check(q, &cleared);
	queue_close(q);
	if (bsnprintf(spool, sizeof(spool), "%s/spool", c->queue_dir) &&
	    mkdir(spool, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", spool);
}

/* posternd_close_metrics - a child other than "metrics" holds none of its
 * sockets. */
static void
posternd_close_metrics(void)
{
	size_t	i;

	for (i = 0; i < posternd_nmfds; i++)
		close(posternd_mfds[i]);
}

static pid_t
posternd_spawn(struct posternd_child *ch)
{
	sigset_t	all;
	pid_t		pid;

	if ((pid = fork()) == -1) {
		log_warn("fork %s", ch->role);
		return -1;
	}
	if (pid > 0) {
		ch->pid = pid;
		ch->started = posternd_mono();
		log_info("started %s, pid %ld", ch->role, (long)pid);
		return pid;
	}
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	log_init(ch->role, posternd_conf->log);
	if (strcmp(ch->role, "metrics") == 0) {
		size_t	i;

		for (i = 0; i < posternd_nlfds; i++)
			close(posternd_lfds[i]);
		_exit(metrics_serve(posternd_conf, posternd_mfds,
		    posternd_nmfds));
	}
	posternd_close_metrics();
	if (strcmp(ch->role, "smtpd") == 0)
		_exit(smtpd_server_run(posternd_conf, posternd_conf_file,
		    posternd_lfds, posternd_nlfds, posternd_nodmr));
	if (strcmp(ch->role, "odmr") == 0) {
		size_t	i;

		for (i = 0; i < posternd_nlfds; i++)
			close(posternd_lfds[i]);
		_exit(reverse_serve(posternd_conf));
	}
	if (strcmp(ch->role, "notify") == 0) {
		size_t	i;

		for (i = 0; i < posternd_nlfds; i++)
			close(posternd_lfds[i]);
		_exit(notify_serve(posternd_conf));
	}
	if (strcmp(ch->role, "sched") == 0) {
		struct sched_opts	o;
		struct runner_stats	st;
		size_t			i;

		for (i = 0; i < posternd_nlfds; i++)
			close(posternd_lfds[i]);
		memset(&o, 0, sizeof(o));
		o.mode = SCHED_DAEMON;
		_exit(sched_run(posternd_conf, &o, &st));
	}
	_exit(1);
}

int
main(int argc, char **argv)
{
	struct posternd_child	 kids[] = {
		{ "smtpd", 0, 0, 0, 1, false },
		{ "sched", 0, 0, 0, 1, false },
		{ "odmr", 0, 0, 0, 1, false },
		{ "notify", 0, 0, 0, 1, false },
		{ "metrics", 0, 0, 0, 1, false },	/* the last one */
	};
	size_t			 nkids = sizeof(kids) / sizeof(kids[0]);
	sigset_t		 mask;
	siginfo_t		 si;
	struct timespec		 tick = { 1, 0 };
	const char		*given = NULL;
	char			 err[1024], abs[PATH_MAX];
	struct passwd		*pw = NULL;
	bool			 foreground = false, stopping = false;
	time_t			 stop_at = 0;
	size_t			 i, k;
	int			 ch, status, sig, nerr;
	pid_t			 pid;

	while ((ch = getopt(argc, argv, "c:f")) != -1) {
		switch (ch) {
		case 'c':
			given = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		default:
			posternd_usage();
		}
	}
	if (optind != argc)
		posternd_usage();
	if (given == NULL && access(CONF_DEFAULT_FILE, F_OK) == 0)
		given = CONF_DEFAULT_FILE;
	if (given != NULL && realpath(given, abs) != NULL)
		given = xstrdup(abs);
	posternd_conf_file = given;
	log_init("master", LOG_DEST_STDERR);
	if ((posternd_conf = conf_load(given, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (foreground)
		posternd_conf->log = LOG_DEST_STDERR;
	log_init("master", posternd_conf->log);
	/* Children and reloads must find the queue wherever we are. */
	if (geteuid() == 0) {
		if ((pw = getpwnam(posternd_conf->user)) == NULL)
			fatalx("user \"%s\" does not exist: create it (make "
			    "install and make run do) or set `user`",
			    posternd_conf->user);
		if (pw->pw_uid == 0)
			fatalx("user \"%s\" is root: set `user` to an "
			    "unprivileged one", posternd_conf->user);
		posternd_queue_root(posternd_conf, pw);
	} else
		posternd_queue_user(posternd_conf);

	/* listen's sockets, then odmr_listen's: the listener tells them
	 * apart by position. */
	posternd_nodmr = posternd_conf->nodmr_listen;
	posternd_nlfds = posternd_conf->nlisten + posternd_nodmr;
	posternd_lfds = xcalloc(posternd_nlfds + 1, sizeof(int));
	for (i = 0; i < posternd_conf->nlisten; i++)
		posternd_lfds[i] = posternd_bind(&posternd_conf->listen[i]);
	for (i = 0; i < posternd_nodmr; i++)
		posternd_lfds[posternd_conf->nlisten + i] =
		    posternd_bind(&posternd_conf->odmr_listen[i]);
	/* metrics_listen's, for the "metrics" process (none: no process). */
	posternd_nmfds = posternd_conf->nmetrics_listen;
	posternd_mfds = xcalloc(posternd_nmfds + 1, sizeof(int));
	for (i = 0; i < posternd_nmfds; i++)
		posternd_mfds[i] = posternd_bind(&posternd_conf->metrics_listen[i]);
	if (posternd_nmfds == 0)
		nkids--;
	posternd_drop(posternd_conf, pw);
	/* As the daemon user, who reads these files from now on. */
	if ((nerr = tools_check_conf(posternd_conf, posternd_check_say,
	    NULL)) > 0)
		fatalx("%d configuration error%s: not starting", nerr,
		    nerr == 1 ? "" : "s");
	posternd_prepare_queue(posternd_conf);
	/* Mapped once, here: every child inherits the mapping, and one
	 * that is restarted carries on from the same counts. */
	if (counters_open(posternd_conf->queue_dir, err, sizeof(err)) != 0)
		fatalx("counters: %s", err);
	if (!foreground && daemon(1, 0) == -1)
		fatal("daemon");

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (k = 0; k < nkids; k++)
		posternd_spawn(&kids[k]);
	log_info("postern started, pid %ld", (long)getpid());

	for (;;) {
		sig = sigtimedwait(&mask, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				log_info("stopping");
				stopping = true;
				stop_at = posternd_mono() + POSTERND_STOP_GRACE;
				for (k = 0; k < nkids; k++)
					if (kids[k].pid > 0)
						kill(kids[k].pid, SIGTERM);
			}
		} else if (sig == SIGHUP) {
			struct conf *nc = conf_load(posternd_conf_file, err,
			    sizeof(err));

			if (nc == NULL) {
				log_warnx("reload: %s (keeping the old "
				    "configuration)", err);
			} else if ((nerr = tools_check_conf(nc,
			    posternd_check_say, NULL)) > 0) {
				log_warnx("reload: %d configuration error%s "
				    "(keeping the old configuration)", nerr,
				    nerr == 1 ? "" : "s");
				conf_free(nc);
			} else {
				log_info("reloading the configuration");
				/* Listeners and the queue stay as they are. */
				free(nc->queue_dir);
				nc->queue_dir = xstrdup(posternd_conf->queue_dir);
				conf_free(posternd_conf);
				posternd_conf = nc;
				/* The listener reloads in place; the
				 * scheduler finishes its batches and is
				 * started again on the new configuration. */
				for (k = 0; k < nkids; k++) {
					if (kids[k].pid <= 0)
						continue;
					if (strcmp(kids[k].role, "sched") == 0 ||
					    strcmp(kids[k].role, "odmr") == 0 ||
					    strcmp(kids[k].role, "notify") == 0 ||
					    strcmp(kids[k].role, "metrics") == 0) {
						kids[k].reloading = true;
						kill(kids[k].pid, SIGTERM);
					} else
						kill(kids[k].pid, SIGHUP);
				}
			}
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (k = 0; k < nkids; k++) {
				if (kids[k].pid != pid)
					continue;
				kids[k].pid = 0;
				if (stopping)
					break;
				if (kids[k].reloading) {
					kids[k].reloading = false;
					kids[k].restart_at = 0;
					break;
				}
				if (WIFSIGNALED(status))
					log_warnx("%s pid %ld killed by signal "
					    "%d", kids[k].role, (long)pid,
					    WTERMSIG(status));
				else
					log_warnx("%s pid %ld exited with "
					    "status %d", kids[k].role,
					    (long)pid, WEXITSTATUS(status));
				if (posternd_mono() - kids[k].started > 60)
					kids[k].backoff = 1;
				kids[k].restart_at = posternd_mono() +
				    kids[k].backoff;
				log_info("restarting %s in %d s", kids[k].role,
				    kids[k].backoff);
				if (kids[k].backoff < POSTERND_BACKOFF_MAX)
					kids[k].backoff *= 2;
				posternd_prepare_queue(posternd_conf);
			}
		}
		if (stopping) {
			bool alive = false;

			for (k = 0; k < nkids; k++)
				alive |= kids[k].pid > 0;
			if (!alive)
				break;
			if (posternd_mono() >= stop_at)
				for (k = 0; k < nkids; k++)
					if (kids[k].pid > 0)
						kill(kids[k].pid, SIGKILL);
			continue;
		}
		for (k = 0; k < nkids; k++)
			if (kids[k].pid == 0 &&
			    posternd_mono() >= kids[k].restart_at)
				posternd_spawn(&kids[k]);
	}
	log_info("postern stopped");
	conf_free(posternd_conf);
	free(posternd_lfds);
	free(posternd_mfds);
	return 0;
}

/*
 * posternd.c - the daemon's master process.
 *
 * The master binds the listeners, creates the queue, drops privileges when
 * started as root, and supervises its children. A child that
 * dies is logged and restarted with backoff (1 s doubling to 60 s; reset
 * once a child has lived a minute); before the restart the master clears
 * the dead child's LMDB reader slots. The children: the SMTP listener
 * (etrn/, "smtpd") and the scheduler (runner/, "sched"), which forks the
 * delivery workers ("runner") itself. SIGTERM or SIGINT: the children
 * stop (the listener lets sessions in DATA finish) and the master exits 0.
 * SIGHUP: the configuration is read again; a bad one is logged and the old
 * one kept; with a good one the listener reloads in place (SIGHUP) and the
 * scheduler finishes its batches and starts again on it.
 *
 * The master itself never opens the queue for long: LMDB environments do
 * not survive fork, so it opens, checks and closes.
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

#include "etrn.h"
#include "runner_int.h"
#include "queue.h"
#include "smtp.h"

#define POSTERND_BACKOFF_MAX	60
#define POSTERND_STOP_GRACE	(ETRN_DRAIN_SECONDS + 5)

struct posternd_child {
	const char	*role;
	pid_t		 pid;
	time_t		 started;
	time_t		 restart_at;
	int		 backoff;
	bool		 reloading;	/* told to stop for a reload */
};

static struct conf	*posternd_conf;
static const char	*posternd_conf_file;
static int		*posternd_lfds;
static size_t		 posternd_nlfds;

static void
posternd_usage(void)
{
	fprintf(stderr, "usage: posternd [-c FILE] [-f]\n");
	exit(2);
}

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
	if (listen(fd, 511) == -1)
		fatal("listen %s", a->text);
	return fd;
}

/* posternd_chown - give the queue to the unprivileged user. */
static void
posternd_chown(const char *path, uid_t uid, gid_t gid)
{
	char	sub[PATH_MAX];
	const char *names[] = { "", "/data.mdb", "/lock.mdb", "/spool" };
	size_t	i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bsnprintf(sub, sizeof(sub), "%s%s", path, names[i]) &&
		    chown(sub, uid, gid) == -1 && errno != ENOENT)
			fatal("chown %s", sub);
}

static void
posternd_drop(const struct conf *c)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(c->user)) == NULL)
		fatalx("user \"%s\" does not exist: create it (make install "
		    "and make run do) or set `user`", c->user);
	posternd_chown(c->queue_dir, pw->pw_uid, pw->pw_gid);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", c->user);
	if (setuid(0) != -1)
		fatalx("still root after dropping privileges");
	log_info("running as %s", c->user);
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
		ch->started = time(NULL);
		log_info("started %s, pid %ld", ch->role, (long)pid);
		return pid;
	}
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	log_init(ch->role, posternd_conf->log);
	if (strcmp(ch->role, "smtpd") == 0)
		_exit(etrn_server_run(posternd_conf, posternd_conf_file,
		    posternd_lfds, posternd_nlfds));
	if (strcmp(ch->role, "sched") == 0) {
		struct sched_opts	o;
		struct runner_stats	st;
		size_t			i;

		for (i = 0; i < posternd_nlfds; i++)
			close(posternd_lfds[i]);
		memset(&o, 0, sizeof(o));
		o.mode = SCHED_DAEMON;
		o.conf_file = posternd_conf_file;
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
	};
	size_t			 nkids = sizeof(kids) / sizeof(kids[0]);
	sigset_t		 mask;
	siginfo_t		 si;
	struct timespec		 tick = { 1, 0 };
	const char		*given = NULL;
	char			 err[1024], abs[PATH_MAX];
	bool			 foreground = false, stopping = false;
	time_t			 stop_at = 0;
	size_t			 i, k;
	int			 ch, status, sig;
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
	if (mkdir(posternd_conf->queue_dir, 0700) == -1 && errno != EEXIST) {
		char	 tmp[PATH_MAX], *slash;

		strl_copy(tmp, posternd_conf->queue_dir, sizeof(tmp));
		for (slash = tmp + 1; (slash = strchr(slash, '/')) != NULL;
		    slash++) {
			*slash = '\0';
			(void)mkdir(tmp, 0755);
			*slash = '/';
		}
	}
	if (realpath(posternd_conf->queue_dir, abs) != NULL) {
		free(posternd_conf->queue_dir);
		posternd_conf->queue_dir = xstrdup(abs);
	}
	posternd_prepare_queue(posternd_conf);

	posternd_nlfds = posternd_conf->nlisten;
	posternd_lfds = xcalloc(posternd_nlfds + 1, sizeof(int));
	for (i = 0; i < posternd_nlfds; i++)
		posternd_lfds[i] = posternd_bind(&posternd_conf->listen[i]);
	posternd_drop(posternd_conf);
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
				stop_at = time(NULL) + POSTERND_STOP_GRACE;
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
					if (strcmp(kids[k].role, "sched") == 0) {
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
				if (time(NULL) - kids[k].started > 60)
					kids[k].backoff = 1;
				kids[k].restart_at = time(NULL) +
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
			if (time(NULL) >= stop_at)
				for (k = 0; k < nkids; k++)
					if (kids[k].pid > 0)
						kill(kids[k].pid, SIGKILL);
			continue;
		}
		for (k = 0; k < nkids; k++)
			if (kids[k].pid == 0 && time(NULL) >= kids[k].restart_at)
				posternd_spawn(&kids[k]);
	}
	log_info("postern stopped");
	conf_free(posternd_conf);
	free(posternd_lfds);
	return 0;
}

/*
 * notify.c - "mail is waiting" notices for held sites: the "notify"
 * process posternd runs (notify_serve).
 *
 * A provider holds mail for sites that connect now and then. When a held
 * site's backlog reaches site_notify_threshold messages, or its oldest
 * message is site_notify_age old, the operator (or the site) may want to
 * hear of it: site_notify_command runs, with the domain, the messages
 * waiting, the oldest one's age in seconds and when the site was last
 * seen (Unix time, 0: never) as its last four arguments, at most once per
 * site_notify_interval per domain, whatever the cause.
 *
 * Why a process of its own: a command can hang or take its time, and
 * nothing time-critical may wait for it. The scheduler's loop paces
 * deliveries and reaps its workers with waitpid(-1), the listener's loop
 * must never block; this process does nothing else, so a hung command
 * delays nothing but the next notice. Each command runs in its own
 * process group, without a shell (site_notify_command is split on blanks:
 * the program, an absolute path, then fixed arguments; a value with
 * blanks in it needs a wrapper script), with standard input, output and
 * error on /dev/null and no other descriptor; after site_notify_timeout
 * the whole group gets SIGKILL. At most NOTIFY_RUNNING_MAX commands run at
 * once and one per domain: the others wait for the next check.
 *
 * The checks: every half site_notify_interval or half site_notify_age,
 * whichever is shorter, at most once a second and at least every
 * NOTIFY_TICK_MAX seconds. Each reads the held domains'
 * bydom ranges (site.c: configured domains only, never the whole queue)
 * in read transactions. When a notice is due, the time is written to the
 * queue (queue_site_notice, meta "notice" records) before the command
 * starts, so a restart of this process or of the daemon does not notify
 * again within the interval, and a crash at worst loses one notice: at
 * most once per interval, not at least.
 *
 * Logged: each notice (site=, msgs=, rcpts=, oldest_age=, last_seen=,
 * why=, pid=), each command that exits non-zero or dies of a signal, and
 * each one killed at its timeout; the log escapes every value.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner_int.h"

#define NOTIFY_TICK_MAX		60	/* s between checks, at most */
#define NOTIFY_RUNNING_MAX	8	/* commands at once */
#define NOTIFY_ARG_LEN		32	/* room for a number as text */

struct notify_run {
	pid_t		 pid;		/* 0: a free slot */
	int64_t		 deadline;	/* clock_mono_ms() */
	bool		 killed;	/* at its timeout */
	char		 domain[QUEUE_ADDR_MAX + 2];
};

struct notify {
	struct conf		*conf;
	struct queue		*q;
	struct routes		*routes;
	char			*words;		/* the command, split */
	char			*argv[NOTIFY_ARGV_MAX + 5];
	size_t			 nargs;
	struct notify_run	 run[NOTIFY_RUNNING_MAX];
	bool			 cut_said;
};

/* notify_split - site_notify_command into n->argv[0..nargs-1]; -1 when it
 * has too many words or does not start with an absolute path. */
static int
notify_split(struct notify *n, const char *cmd)
{
	char	*p;

	n->words = xstrdup(cmd);
	n->nargs = 0;
	for (p = strtok(n->words, " \t"); p != NULL; p = strtok(NULL, " \t")) {
		if (n->nargs == NOTIFY_ARGV_MAX)
			return -1;
		n->argv[n->nargs++] = p;
	}
	return n->nargs > 0 && n->argv[0][0] == '/' ? 0 : -1;
}

/* notify_exec - the child: its own process group, nothing inherited but
 * the environment; never returns. */
static void
notify_exec(char **argv)
{
	sigset_t	none;
	int		fd;

	(void)setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
	}
	closefrom(STDERR_FILENO + 1);
	execv(argv[0], argv);
	_exit(127);
}

static struct notify_run *
notify_running(struct notify *n, const char *domain)
{
	size_t	i;

	for (i = 0; i < NOTIFY_RUNNING_MAX; i++)
		if (n->run[i].pid > 0 && (domain == NULL ||
		    strcmp(n->run[i].domain, domain) == 0))
			return &n->run[i];
	return NULL;
}

static struct notify_run *
notify_slot(struct notify *n)
{
	size_t	i;

	for (i = 0; i < NOTIFY_RUNNING_MAX; i++)
		if (n->run[i].pid == 0)
			return &n->run[i];
	return NULL;
}

/* notify_start - record the notice, then run the command for s. */
static void
notify_start(struct notify *n, struct notify_run *r, const struct site *s,
    int64_t now, const char *why)
{
	char	msgs[NOTIFY_ARG_LEN], age[NOTIFY_ARG_LEN], seen[NOTIFY_ARG_LEN];
	char	dom[sizeof(s->domain)];
	int64_t	oldest_age = s->bl.oldest > 0 && now > s->bl.oldest ?
		    now - s->bl.oldest : 0;
	pid_t	pid;

	if (queue_site_notice(n->q, s->domain, now) != 0) {
		log_warnx("site=%s: cannot record the notice: %s", s->domain,
		    queue_errmsg(n->q));
		return;
	}
	strl_copy(dom, s->domain, sizeof(dom));
	(void)bsnprintf(msgs, sizeof(msgs), "%llu",
	    (unsigned long long)s->bl.msgs);
	(void)bsnprintf(age, sizeof(age), "%lld", (long long)oldest_age);
	(void)bsnprintf(seen, sizeof(seen), "%lld", (long long)s->seen);
	n->argv[n->nargs] = dom;
	n->argv[n->nargs + 1] = msgs;
	n->argv[n->nargs + 2] = age;
	n->argv[n->nargs + 3] = seen;
	n->argv[n->nargs + 4] = NULL;
	if ((pid = fork()) == -1) {
		log_warn("site=%s: fork the notice command", s->domain);
		return;
	}
	if (pid == 0)
		notify_exec(n->argv);
	(void)setpgid(pid, pid);	/* before any kill: no race */
	r->pid = pid;
	r->killed = false;
	r->deadline = clock_mono_ms() + (int64_t)n->conf->site_notify_timeout *
	    1000;
	strl_copy(r->domain, s->domain, sizeof(r->domain));
	log_info("site=%s, msgs=%llu, rcpts=%llu, oldest_age=%lld, "
	    "last_seen=%lld, why=%s, pid=%ld: notice command started",
	    s->domain, (unsigned long long)s->bl.msgs,
	    (unsigned long long)s->bl.rcpts, (long long)oldest_age,
	    (long long)s->seen, why, (long)pid);
}

/* notify_due - why s deserves a notice now, or NULL. */
static const char *
notify_due(const struct conf *c, const struct site *s, int64_t now)
{
	if (c->site_notify_threshold > 0 &&
	    s->bl.msgs >= (uint64_t)c->site_notify_threshold)
		return "threshold";
	if (c->site_notify_age > 0 && s->bl.oldest > 0 &&
	    now - s->bl.oldest >= (int64_t)c->site_notify_age)
		return "age";
	return NULL;
}

/* notify_check - one look at every held site. */
static void
notify_check(struct notify *n)
{
	struct site		*v = NULL;
	struct notify_run	*r;
	const char		*why;
	int64_t			 now = (int64_t)clock_now(), last;
	size_t			 i, nv;

	if (site_list(n->conf, n->routes, &v, &nv) && !n->cut_said) {
		log_warnx("more than %d held domains: only the first are "
		    "watched", SITE_MAX);
		n->cut_said = true;
	}
	if (nv > 0 && site_fill(n->q, v, nv) != 0) {
		log_warnx("held sites: %s", queue_errmsg(n->q));
		free(v);
		return;
	}
	for (i = 0; i < nv; i++) {
		if ((why = notify_due(n->conf, &v[i], now)) == NULL ||
		    notify_running(n, v[i].domain) != NULL)
			continue;
		if (queue_site_notice_get(n->q, v[i].domain, &last) != 0) {
			log_warnx("site=%s: %s", v[i].domain,
			    queue_errmsg(n->q));
			continue;
		}
		if (last > 0 && now - last < (int64_t)n->conf->
		    site_notify_interval && now >= last)
			continue;
		if ((r = notify_slot(n)) == NULL)
			break;		/* the next check */
		notify_start(n, r, &v[i], now, why);
	}
	free(v);
}

/* notify_reap - collect finished commands and log the failures. */
static void
notify_reap(struct notify *n)
{
	pid_t	pid;
	int	status;
	size_t	i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < NOTIFY_RUNNING_MAX; i++) {
			struct notify_run *r = &n->run[i];

			if (r->pid != pid)
				continue;
			r->pid = 0;
			if (r->killed)
				break;		/* said at the kill */
			if (WIFSIGNALED(status))
				log_warnx("site=%s, pid=%ld: notice command "
				    "killed by signal %d", r->domain,
				    (long)pid, WTERMSIG(status));
			else if (WEXITSTATUS(status) != 0)
				log_warnx("site=%s, pid=%ld: notice command "
				    "exited with status %d%s", r->domain,
				    (long)pid, WEXITSTATUS(status),
				    WEXITSTATUS(status) == 127 ? " (not "
				    "found or not executable?)" : "");
		}
	}
}

/* notify_timeouts - kill the groups of commands past their deadline;
 * returns the ms until the next deadline (-1: none). */
static int64_t
notify_timeouts(struct notify *n)
{
	int64_t	now = clock_mono_ms(), next = -1;
	size_t	i;

	for (i = 0; i < NOTIFY_RUNNING_MAX; i++) {
		struct notify_run *r = &n->run[i];

		if (r->pid == 0 || r->killed)
			continue;
		if (now >= r->deadline) {
			(void)kill(-r->pid, SIGKILL);
			r->killed = true;
			log_warnx("site=%s, pid=%ld: notice command timed out "
			    "after %lld s: killed", r->domain, (long)r->pid,
			    (long long)n->conf->site_notify_timeout);
		} else if (next < 0 || r->deadline - now < next)
			next = r->deadline - now;
	}
	return next;
}

/* notify_tick - ms between checks: half the interval or half
 * site_notify_age, whichever is shorter, 1 s to NOTIFY_TICK_MAX. */
static int64_t
notify_tick(const struct conf *c)
{
	int64_t	t = (int64_t)c->site_notify_interval / 2;

	if (c->site_notify_age > 0 && (int64_t)c->site_notify_age / 2 < t)
		t = (int64_t)c->site_notify_age / 2;

	if (t < 1)
		t = 1;
	if (t > NOTIFY_TICK_MAX)
		t = NOTIFY_TICK_MAX;
	return t * 1000;
}

/* notify_idle - no command configured: wait for the signal to stop. */
static int
notify_idle(int sigfd)
{
	struct pollfd		 p = { sigfd, POLLIN, 0 };
	struct signalfd_siginfo	 si;

	for (;;) {
		if (poll(&p, 1, -1) == -1 && errno != EINTR)
			return 1;
		while (read(sigfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				return 0;
	}
}

static void
notify_stop(struct notify *n)
{
	size_t	i;

	for (i = 0; i < NOTIFY_RUNNING_MAX; i++)
		if (n->run[i].pid > 0) {
			(void)kill(-n->run[i].pid, SIGKILL);
			(void)waitpid(n->run[i].pid, NULL, 0);
		}
}

int
notify_serve(struct conf *c)
{
	struct notify		 n;
	struct signalfd_siginfo	 si;
	struct pollfd		 p;
	sigset_t		 mask;
	char			 err[1024];
	int64_t			 next_check = 0, now, wait, dl;
	int			 sigfd, rc = 0;
	bool			 stop = false;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	if (c->site_notify_command == NULL)
		return notify_idle(sigfd);
	memset(&n, 0, sizeof(n));
	n.conf = c;
	if (notify_split(&n, c->site_notify_command) != 0) {
		log_warnx("site_notify_command: want an absolute path and at "
		    "most %d words: no notices", NOTIFY_ARGV_MAX);
		free(n.words);
		return notify_idle(sigfd);
	}
	if (queue_open(c->queue_dir, 0, c->queue_map_size, &n.q, err,
	    sizeof(err)) != 0) {
		log_warnx("queue: %s", err);
		free(n.words);
		return 1;
	}
	if (c->routes_file != NULL && (n.routes = routes_load(c->routes_file,
	    err, sizeof(err))) == NULL) {
		log_warnx("routes_file: %s", err);
		queue_close(n.q);
		free(n.words);
		return 1;
	}
	while (!stop) {
		notify_reap(&n);
		dl = notify_timeouts(&n);
		now = clock_mono_ms();
		if (now >= next_check) {
			notify_check(&n);
			runner_mem_trim(n.q, RUNNER_MAP_KEEP);
			next_check = now + notify_tick(c);
			dl = notify_timeouts(&n);	/* new deadlines */
		}
		wait = next_check - now;
		if (dl >= 0 && dl < wait)
			wait = dl;
		p.fd = sigfd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, (int)(wait > 0 ? wait : 0)) == -1 &&
		    errno != EINTR) {
			log_warn("poll");
			rc = 1;
			break;
		}
		while (read(sigfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				stop = true;
	}
	notify_stop(&n);
	close(sigfd);
	routes_free(n.routes);
	queue_close(n.q);
	free(n.words);
	return rc;
}

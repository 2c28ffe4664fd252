/*
 * smtpd_pull.c - postern pull's receiving end (see etrn.h): the
 * listener's session and commit thread over one connection the site
 * opened itself, after ATRN reversed it (RFC 2645 §5.3).
 *
 * Why not a second SMTP server: the session code already has every rule
 * a receiving end needs (CRLF only in DATA, bare LF refused, line and size
 * limits, MAIL and RCPT parameters with DSN pass-through, the Received:
 * field, spool files for big messages) and the commit thread is the one
 * place that makes a 250 mean "on disk". So this file is only a loop of
 * one session: the listener's loop without listening sockets, signals or
 * reloads, built from smtpd.c's pieces (smtpd_server_step, _committed,
 * _timers, _reap), with srv->pull set so that smtpd_check_rcpt takes the
 * pulled domains only.
 *
 * The loop ends when the session is gone and the commit thread has given
 * it back, so a message whose commit was under way when the provider
 * left is stored (and logged as such) before we return. The scheduler of
 * the site's daemon is woken after each commit (smtpd_server_committed).
 * A spool file of a pull that was killed is removed by the next pull (its
 * process is gone) or by the daemon's next start.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpd_int.h"

#define SMTPD_PULL_TICK_MS	200	/* progress and timers */

bool
smtpd_pull_takes(const struct smtpd_pull_opts *o, const struct conf *c,
    const char *dom)
{
	size_t	i;

	if (o->domains == NULL || o->domains->n == 0)
		return conf_domain_in(&c->relay_domains, dom) ||
		    conf_domain_in(&c->hold_domains, dom);
	for (i = 0; i < o->domains->n; i++)
		if (smtp_idn_eq(o->domains->v[i], dom))
			return true;
	return false;
}

/* smtpd_pull_sweep - spool files ("PID.SEQ") of processes that are gone:
 * a pull killed in DATA. The daemon's listener's own files are its
 * process's and stay. */
/* What smtpd_pull_idle() watches. */
struct smtpd_pull_idle {
	uint64_t	since;		/* last progress, clock_mono_ms() */
	uint64_t	stored;		/* messages stored then */
};

static void
smtpd_pull_sweep(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[8300], *ep;
	long		 pid;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		errno = 0;
		pid = strtol(de->d_name, &ep, 10);
		if (de->d_name[0] == '.' || errno != 0 || *ep != '.' ||
		    pid <= 0 || pid > INT32_MAX)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (bsnprintf(path, sizeof(path), "%s/%s", dir, de->d_name))
			(void)unlink(path);
	}
	closedir(d);
}

/* smtpd_pull_bytes - bytes received so far: stored, and the message
 * under way. */
static uint64_t
smtpd_pull_bytes(const struct smtpd_server *srv,
    const struct smtpd_session *s)
{
	uint64_t	b = srv->nstored_bytes;

	if (s != NULL && !s->dead && smtpd_session_in_message(s))
		b += s->body_len - s->trace_len;
	return b;
}

/* smtpd_pull_ended - the session left the loop: how. */
static void
smtpd_pull_ended(const struct smtpd_session *s, bool was_data,
    struct smtpd_pull_result *res)
{
	res->quit = s->quit;
	if (s->quit)
		return;
	if (s->srv->nfull > 0)
		bsnprintf(res->why, sizeof(res->why), "the local queue is "
		    "full: %llu message%s refused (452 4.3.1)",
		    (unsigned long long)s->srv->nfull,
		    s->srv->nfull == 1 ? "" : "s");
	else if (was_data)
		strl_copy(res->why, "connection lost in the middle of a "
		    "message (it stays at the provider)", sizeof(res->why));
	else if (s->conn->eof)
		strl_copy(res->why, "the provider closed the connection "
		    "without QUIT", sizeof(res->why));
	else
		strl_copy(res->why, "the session ended without QUIT (an "
		    "error or a timeout)", sizeof(res->why));
}

/*
 * smtpd_pull_idle - a provider that keeps the session open with NOOP or
 * RSET and sends no mail would keep a pull from cron running for ever
 * (each command resets only the command timeout): outside a mail
 * transaction, command_timeout since the start or the last message
 * stored is the limit, then 421.
 */
static void
smtpd_pull_idle(struct smtpd_server *srv, struct smtpd_session *s,
    uint64_t now, struct smtpd_pull_idle *idle)
{
	if (srv->nstored != idle->stored || s->in_mail ||
	    s->state != SMTPD_S_CMD) {
		idle->stored = srv->nstored;
		idle->since = now;
		return;
	}
	if (now - idle->since < smtpd_secs_ms(srv->conf->command_timeout))
		return;
	smtpd_session_give_up(s, "no mail for command_timeout: the session "
	    "is over");
	s->deadline = now + SMTPD_CLOSE_MS;
	idle->since = now;	/* once */
	if (!smtpd_server_step(srv, s, false))
		smtpd_server_drop(srv, s);
}

bool
smtpd_pull_verb(const char *verb)
{
	/*
	 * The provider delivers mail here and nothing else: the pull has no
	 * ETRN policy, users or TLS of its own (an ETRN reached code that
	 * needs the listener's, and crashed the pull), and a queue release
	 * or a second turn on this connection makes no sense.
	 */
	static const char *const ok[] = {
		"EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP",
		"QUIT", "HELP", "VRFY",
	};
	size_t	i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcasecmp(verb, ok[i]) == 0)
			return true;
	return false;
}

int
smtpd_pull_run(struct conf *conf, struct smtp_conn *conn,
    const struct smtpd_pull_opts *o, struct smtpd_pull_result *res)
{
	struct smtpd_server	 srv;
	struct smtpd_session	*s;
	struct sockaddr_storage	 ss;
	struct epoll_event	 ev, evs[8];
	socklen_t		 sl = sizeof(ss);
	uint64_t		 last_tick, last_prog = 0, last_msgs = 0, now;
	char			 err[1024];
	bool			 was_data = false;
	int			 n, k, rc = -1;
	struct smtpd_pull_idle	 idle;

	memset(res, 0, sizeof(*res));
	memset(&srv, 0, sizeof(srv));
	srv.spare_fd = -1;	/* no listener here (smtpd_server_nofd) */
	srv.conf = conf;
	srv.pull = o;
	srv.todo_tail = &srv.todo;
	srv.epfd = srv.evfd = srv.sigfd = srv.wakefd = -1;
	srv.atrn_epfd = -1;	/* no ATRN here: no AUTH (srv.auth NULL) */
	if (queue_open(conf->queue_dir, 0, conf->queue_map_size, &srv.q, err,
	    sizeof(err)) != 0) {
		bsnprintf(res->why, sizeof(res->why), "queue: %s", err);
		sbuf_cat(conn->out, "421 4.3.0 Error: local queue not "
		    "available\r\n");
		(void)smtp_conn_flush(conn);
		smtp_conn_free(conn);
		return -1;
	}
	if (smtpd_server_load_known(&srv, conf->relay_recipients) != 0) {
		/* As the listener, which would not start. */
		strl_copy(res->why, "cannot read relay_recipients",
		    sizeof(res->why));
		sbuf_cat(conn->out, "421 4.3.0 Error: local configuration "
		    "error\r\n");
		(void)smtp_conn_flush(conn);
		smtp_conn_free(conn);
		queue_close(srv.q);
		return -1;
	}
	bsnprintf(srv.spool_dir, sizeof(srv.spool_dir), "%s/spool",
	    conf->queue_dir);
	if (mkdir(srv.spool_dir, 0700) == -1 && errno != EEXIST)
		log_warn("mkdir %s", srv.spool_dir);
	smtpd_pull_sweep(srv.spool_dir);
	srv.wakefd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if ((srv.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (srv.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("pull set-up");
	pthread_mutex_init(&srv.mu, NULL);
	pthread_cond_init(&srv.cv, NULL);
	if (pthread_create(&srv.thread, NULL, smtpd_commit_main, &srv) != 0)
		fatalx("cannot start the commit thread");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &srv.evfd;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.evfd, &ev) == -1)
		fatal("epoll_ctl eventfd");

	memset(&ss, 0, sizeof(ss));
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_INET;
	s = smtpd_session_adopt(&srv, conn, &ss);
	s->mynet = false;	/* the provider relays nothing through us */
	srv.sessions = s;
	srv.nsessions = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP;
	s->evmask = ev.events;
	ev.data.ptr = s;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, conn->fd, &ev) == -1)
		fatal("epoll_ctl");
	log_info("client=%s, reversed connection: serving the provider",
	    s->client);
	/* The 220 goes out; input after ATRN's 250 that came with it is
	 * seen at once (smtpd_session_adopt refused it). */
	if (!smtpd_server_step(&srv, s, true))
		smtpd_server_drop(&srv, s);

	last_tick = (uint64_t)clock_mono_ms();
	idle.since = last_tick;
	idle.stored = 0;
	while (srv.sessions != NULL || srv.dropped != NULL) {
		n = epoll_wait(srv.epfd, evs, 8, SMTPD_PULL_TICK_MS);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (k = 0; k < n; k++) {
			if (evs[k].data.ptr == &srv.evfd) {
				smtpd_server_committed(&srv);
				continue;
			}
			if (s == NULL || s->dead)
				continue;
			if (s->state == SMTPD_S_COMMIT &&
			    (evs[k].events & (EPOLLERR | EPOLLHUP)) != 0) {
				smtpd_server_drop(&srv, s);
				continue;
			}
			if (!smtpd_server_step(&srv, s, (evs[k].events &
			    (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0))
				smtpd_server_drop(&srv, s);
		}
		now = (uint64_t)clock_mono_ms();
		if (now - last_tick >= 1000) {
			last_tick = now;
			smtpd_server_timers(&srv);
		}
		if (s != NULL && !s->dead)
			was_data = smtpd_session_in_message(s) ||
			    s->state == SMTPD_S_COMMIT;
		if (s != NULL && !s->dead)
			smtpd_pull_idle(&srv, s, now, &idle);
		if (o->progress != NULL && (srv.nstored != last_msgs ||
		    now - last_prog >= SMTPD_PULL_TICK_MS)) {
			last_msgs = srv.nstored;
			last_prog = now;
			o->progress(o->progress_arg, srv.nstored,
			    smtpd_pull_bytes(&srv, s));
		}
		if (s != NULL && s->dead) {
			/* A message whose commit was under way is stored
			 * all the same (smtpd_server_committed logs it). */
			smtpd_pull_ended(s, was_data && !s->in_commit_list,
			    res);
			s = NULL;
		}
		smtpd_server_reap(&srv);
	}
	rc = 0;

	pthread_mutex_lock(&srv.mu);
	srv.thread_stop = true;
	pthread_cond_signal(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
	pthread_join(srv.thread, NULL);
	res->messages = srv.nstored;
	res->refused_full = srv.nfull;
	res->bytes = srv.nstored_bytes;
	queue_close(srv.q);
	smtpd_server_free_known(&srv);
	close(srv.epfd);
	close(srv.evfd);
	if (srv.wakefd >= 0)
		close(srv.wakefd);
	return rc;
}

/*
 * smtpd.c - the listener process: the epoll loop, connection limits
 * (max_connections, per address, and the open files: smtpd_server_nofd),
 * timers, signals, and the commit thread (see etrn.h for why).
 *
 * A session's life in the loop. Whatever ends it (its own QUIT or an
 * error, a timeout, the commit's reply, SIGTERM, the end of file) ends it
 * through smtpd_server_drop(), which takes it out of epoll and of the list
 * and puts it on srv->dropped; smtpd_server_reap() frees it after the
 * epoll batch, because a later event of the same batch may still point at
 * it, and not before the commit thread has given it back. Events of a
 * dropped session are ignored. A session waiting for its commit is not
 * read from (no EPOLLIN, no EPOLLRDHUP), so a client that half-closes
 * meanwhile is not reported on every pass; a reset (EPOLLERR/EPOLLHUP,
 * which epoll reports whatever we ask) drops it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "etrn_int.h"
#include "smtpd_int.h"
#include "runner.h"

#define SMTPD_EVENTS_MAX	64
#define SMTPD_TICK_MS	1000	/* timer resolution */
#define SMTPD_THROTTLE_MAX 4096	/* client addresses whose AUTH failures
				 * are counted (least recently used go) */
#define SMTPD_FD_RESERVE	64	/* open files besides the sessions' */
#define SMTPD_FD_PER_SESSION	2	/* its socket and a spool file */
#define SMTPD_NOFD_REFUSE_MAX	64	/* refused per pass, out of files */
#define SMTPD_NOFD_PAUSE_MS	1000	/* no accept() when even that fails */
#define SMTPD_NOFD_LOG_MS	10000	/* one line about it per this */

/* ------------------------------------------------------------------ */
/* The commit thread. */

void
smtpd_commit_submit(struct smtpd_server *srv, struct smtpd_session *s)
{
	pthread_mutex_lock(&srv->mu);
	s->cnext = NULL;
	s->in_commit_list = true;
	*srv->todo_tail = s;
	srv->todo_tail = &s->cnext;
	pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

/* smtpd_commit_group - store a batch, and count its size and time
 * (counters.c: the commit histograms). */
static void
smtpd_commit_group(struct queue *q, struct qnew **v, size_t n)
{
	double	t0 = clock_mono_secs();
	size_t	i, ok = 0;

	(void)queue_enqueue_group(q, v, n);
	counters_commit(n, clock_mono_secs() - t0);
	for (i = 0; i < n; i++)
		if (v[i]->rc == 0)
			ok++;
	while (ok-- > 0)
		counters_event(COUNTERS_MSG_RECEIVED);
}

void *
smtpd_commit_main(void *arg)
{
	struct smtpd_server	*srv = arg;
	struct smtpd_session	*batch, *s, *rest, **tailp;
	struct qnew		*v[SMTPD_BATCH_MAX];
	uint64_t		 one = 1, bytes;
	size_t			 n, taken;

	pthread_mutex_lock(&srv->mu);
	for (;;) {
		while (srv->todo == NULL && !srv->thread_stop)
			pthread_cond_wait(&srv->cv, &srv->mu);
		if (srv->todo == NULL && srv->thread_stop)
			break;
		/* Take what waits, up to the count and byte caps. */
		batch = srv->todo;
		n = 0;
		bytes = 0;
		tailp = &batch;
		for (s = batch, taken = 0; s != NULL &&
		    taken < SMTPD_BATCH_MAX && (n == 0 || s->etrn != NULL ||
		    bytes + s->qn.bodylen <= SMTPD_BATCH_BYTES);
		    s = s->cnext) {
			taken++;
			if (s->etrn == NULL) {	/* else an ETRN's flush */
				v[n++] = &s->qn;
				bytes += s->qn.bodylen;
			}
			tailp = &s->cnext;
		}
		rest = *tailp;
		*tailp = NULL;
		srv->todo = rest;
		if (rest == NULL)
			srv->todo_tail = &srv->todo;
		pthread_mutex_unlock(&srv->mu);

		/* One transaction, one fsync; each session reads its own
		 * qn.rc (queue.h: a bad message fails alone). */
		if (n > 0)
			smtpd_commit_group(srv->q, v, n);
		for (s = batch; s != NULL; s = s->cnext)
			if (s->etrn != NULL)
				etrn_job_run(srv->q, s->etrn);

		pthread_mutex_lock(&srv->mu);
		for (s = batch; s->cnext != NULL; s = s->cnext)
			;
		s->cnext = srv->done;
		srv->done = batch;
		if (write(srv->evfd, &one, sizeof(one)) != sizeof(one))
			log_warn("%s: eventfd", __func__);
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Sessions in the loop. */

/* smtpd_server_reading - whether we read from the session now: not while
 * it waits for its commit, its close or a failed AUTH's delay (a level-
 * triggered half-close would be reported on every pass), nor while its
 * replies are over SMTPD_OUT_MAX. */
static bool
smtpd_server_reading(const struct smtpd_session *s)
{
	if (s->state == SMTPD_S_ATRN_WAIT || s->state == SMTPD_S_PROXY)
		return atrn_reading(s);
	return s->state != SMTPD_S_COMMIT && s->state != SMTPD_S_CLOSE &&
	    s->state != SMTPD_S_AUTH_WAIT && !smtpd_session_out_blocked(s);
}

static void
smtpd_server_interest(struct smtpd_server *srv, struct smtpd_session *s)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.ptr = s;
	if (smtpd_server_reading(s))
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (s->conn->outoff < s->conn->out->len || s->conn->want_write)
		ev.events |= EPOLLOUT;
	/* Most steps change nothing: spare the system call. */
	if (ev.events == s->evmask)
		return;
	s->evmask = ev.events;
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, s->conn->fd, &ev);
}

/* smtpd_server_drop - the session leaves the loop (see the top): freed
 * later by smtpd_server_reap(). Dropping twice is harmless. */
void
smtpd_server_drop(struct smtpd_server *srv, struct smtpd_session *s)
{
	if (s->dead)
		return;
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, s->conn->fd, NULL);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->nsessions--;
	s->dead = true;
	s->fnext = srv->dropped;
	srv->dropped = s;
}

/* smtpd_server_reap - free the dropped sessions the commit thread is not
 * holding; only between epoll batches. */
void
smtpd_server_reap(struct smtpd_server *srv)
{
	struct smtpd_session	**sp = &srv->dropped, *s;

	while ((s = *sp) != NULL) {
		if (s->in_commit_list) {
			sp = &s->fnext;	/* the thread reads its message */
			continue;
		}
		*sp = s->fnext;
		smtpd_session_free(s);
	}
}

/* smtpd_server_step - process input and flush output; false: close. */
bool
smtpd_server_step(struct smtpd_server *srv, struct smtpd_session *s,
    bool readable)
{
	size_t	room;
	bool	blocked;

	if (s->state == SMTPD_S_ATRN_WAIT || s->state == SMTPD_S_PROXY) {
		/* Waiting for the odmr process the client is not read: an
		 * event from it is a hang-up or an error, which epoll would
		 * report on every pass. */
		if (readable && s->state == SMTPD_S_ATRN_WAIT) {
			log_info("client=%s, disconnect (waiting for the ATRN "
			    "reply)", s->client);
			return false;
		}
		/* Reversed (atrn.c): bytes, not commands. */
		if (!atrn_step(s))
			return false;
		smtpd_server_interest(srv, s);
		return true;
	}
	if (readable && smtpd_server_reading(s) && s->state != SMTPD_S_TLS) {
		/* In DATA, room for a whole line of line_length_limit (or
		 * a line that is not taken would stop all reading). A
		 * failed read sets conn->eof, handled below. */
		room = s->state == SMTPD_S_DATA ||
		    s->state == SMTPD_S_BDAT ? 65536 +
		    (size_t)srv->conf->line_length_limit :
		    (size_t)srv->conf->command_length_limit * 4 + 16384;
		(void)smtp_conn_fill(s->conn, room);
	}
	for (;;) {
		if (!smtpd_session_input(s))
			return false;
		blocked = smtpd_session_out_blocked(s);
		if (smtp_conn_flush(s->conn) < 0)
			return false;
		/* Commands left unparsed while the replies were over their
		 * bound are parsed once they went out: the client may send
		 * nothing more until it has those replies. */
		if (!blocked || smtpd_session_out_blocked(s) ||
		    smtp_conn_avail(s->conn) == 0)
			break;
	}
	if (s->state == SMTPD_S_CLOSE && s->conn->outoff >= s->conn->out->len)
		return false;
	/* The TLS handshake may continue now that the 220 is out. */
	if (s->state == SMTPD_S_TLS && !smtpd_session_input(s))
		return false;
	/* Read only on a hang-up or an error (no read interest): the
	 * client is gone and will not see the delayed reply. */
	if (s->conn->eof && s->state == SMTPD_S_AUTH_WAIT)
		return false;
	/*
	 * The end of file ends the session. smtpd_session_input() stops only
	 * at a partial line or on the output bound, so when the output is
	 * not blocked every complete command has been answered; those
	 * replies still go out, a partial line or an unfinished message is
	 * dropped. Waiting for more would have epoll report the end of
	 * file on every pass.
	 */
	if (s->conn->eof && (s->state == SMTPD_S_CMD ||
	    s->state == SMTPD_S_AUTH || s->state == SMTPD_S_DATA ||
	    s->state == SMTPD_S_BDAT) && !smtpd_session_out_blocked(s)) {
		if (s->state == SMTPD_S_DATA)
			log_info("client=%s, disconnect (end of file in DATA)",
			    s->client);
		else if (smtpd_session_in_message(s))
			log_info("client=%s, disconnect (end of file in BDAT)",
			    s->client);
		else if (smtp_conn_avail(s->conn) > 0)
			log_info("client=%s, disconnect (end of file after a "
			    "partial command)", s->client);
		s->state = SMTPD_S_CLOSE;
		s->deadline = (uint64_t)clock_mono_ms() + SMTPD_CLOSE_MS;
		if (s->conn->outoff >= s->conn->out->len)
			return false;
	}
	smtpd_server_interest(srv, s);
	return true;
}

static bool
smtpd_server_ip_count_ok(struct smtpd_server *srv, const char *addr)
{
	struct smtpd_session	*s;
	int			 n = 0;

	for (s = srv->sessions; s != NULL; s = s->next)
		if (strcmp(s->addr, addr) == 0)
			n++;
	return n < srv->conf->max_connections_per_ip;
}

/* smtpd_server_listening - the listeners (and the local socket) in epoll,
 * or out of it. */
static void
smtpd_server_listening(struct smtpd_server *srv, bool on)
{
	struct epoll_event	ev;
	size_t			i;

	memset(&ev, 0, sizeof(ev));
	ev.events = on ? EPOLLIN : 0;
	for (i = 0; i < srv->nlfds; i++) {
		ev.data.ptr = (void *)(uintptr_t)&srv->lfds[i];
		(void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfds[i], &ev);
	}
	if (srv->localfd >= 0) {
		ev.data.ptr = &srv->localfd;
		(void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->localfd, &ev);
	}
}

/*
 * smtpd_server_nofd - accept() failed for want of a file descriptor (or
 * of kernel memory). The listen socket stays readable: left as it is,
 * epoll would report it on every pass, each failure a log line, and the
 * clients would wait unanswered in the listen queue. So, as max_connections
 * does, they are told 421 and closed: the spare descriptor is given up to
 * accept each (a few a pass), then taken again. When even that fails, the
 * listeners leave epoll for SMTPD_NOFD_PAUSE_MS (smtpd_server_timers puts
 * them back). One log line per SMTPD_NOFD_LOG_MS, with the count.
 */
void
smtpd_server_nofd(struct smtpd_server *srv, int lfd)
{
	char		 msg[512];
	uint64_t	 now = (uint64_t)clock_mono_ms();
	size_t		 len;
	int		 why = errno, e = errno, fd = -1, n;

	if (!bsnprintf(msg, sizeof(msg), "421 4.7.0 %s Error: too many "
	    "connections\r\n", srv->conf->myhostname))
		strl_copy(msg, "421 4.7.0 Error: too many connections\r\n",
		    sizeof(msg));
	len = strlen(msg);
	for (n = 0; n < SMTPD_NOFD_REFUSE_MAX && srv->spare_fd >= 0; n++) {
		close(srv->spare_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			/* Into an empty socket buffer: it goes, or the
			 * client is gone already. */
			(void)send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			srv->nofd_refused++;
		} else
			e = errno;
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd == -1)
			break;
	}
	if (fd == -1 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR &&
	    e != ECONNABORTED) {
		/* Not even with the spare one: wait. */
		smtpd_server_listening(srv, false);
		srv->accept_resume = now + SMTPD_NOFD_PAUSE_MS;
	}
	if (srv->nofd_logged == 0 || now - srv->nofd_logged >=
	    SMTPD_NOFD_LOG_MS) {
		log_warnx("out of open files: %llu connection%s refused "
		    "with 421 (%zu sessions; accept: %s)",
		    (unsigned long long)srv->nofd_refused,
		    srv->nofd_refused == 1 ? "" : "s", srv->nsessions,
		    strerror(why));
		srv->nofd_refused = 0;
		srv->nofd_logged = now;
	}
}

/*
 * smtpd_server_nofile - every session may take two descriptors (its
 * socket and a spool file): raise the soft limit on open files to what
 * max_connections needs, as far as the hard limit allows, and say so
 * when that is not enough (the clients beyond get 421, smtpd_server_nofd).
 */
static void
smtpd_server_nofile(const struct conf *c)
{
	struct rlimit	rl;
	rlim_t		want;

	want = (rlim_t)c->max_connections * SMTPD_FD_PER_SESSION +
	    SMTPD_FD_RESERVE;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY &&
		    rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warnx("open files limit %llu is less than max_connections "
		    "%d needs (%llu): clients beyond it get 421",
		    (unsigned long long)rl.rlim_cur, c->max_connections,
		    (unsigned long long)want);
}

static void
smtpd_server_accept(struct smtpd_server *srv, int lfd, bool odmr)
{
	struct sockaddr_storage	 ss;
	struct smtpd_session	*s;
	socklen_t		 sl;
	int			 fd, i;

	for (i = 0; i < 64; i++) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				smtpd_server_nofd(srv, lfd);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		s = smtpd_session_new(srv, fd, &ss);
		s->odmr = odmr;
		counters_event(COUNTERS_CONN_IN);
		/* Limits (RFC 5321 §3.8: 421, then close). mynetworks are
		 * exempt from the per-address limit, as in Postfix. */
		if (s->state != SMTPD_S_CLOSE &&
		    (int)srv->nsessions >= srv->conf->max_connections) {
			sbuf_reset(s->conn->out);
			smtpd_session_reply(s, "421 4.7.0 %s Error: too many "
			    "connections", srv->conf->myhostname);
			s->state = SMTPD_S_CLOSE;
			log_info("client=%s, refused: max_connections",
			    s->client);
		} else if (s->state != SMTPD_S_CLOSE && !s->mynet &&
		    !smtpd_server_ip_count_ok(srv, s->addr)) {
			sbuf_reset(s->conn->out);
			smtpd_session_reply(s, "421 4.7.0 %s Error: too many "
			    "connections from %s", srv->conf->myhostname,
			    s->addr);
			s->state = SMTPD_S_CLOSE;
			log_info("client=%s, refused: max_connections_per_ip",
			    s->client);
		}
		smtpd_server_enter(srv, s);
	}
}

void
smtpd_server_enter(struct smtpd_server *srv, struct smtpd_session *s)
{
	struct epoll_event	ev;

	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP;
	s->evmask = ev.events;
	ev.data.ptr = s;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, s->conn->fd, &ev) == -1) {
		log_warn("epoll_ctl");
		smtpd_server_drop(srv, s);
		return;
	}
	if (!smtpd_server_step(srv, s, false))
		smtpd_server_drop(srv, s);
}

/* smtpd_server_wake - new mail: tell the scheduler now rather than at its
 * next tick (a datagram to queue_dir/wake.sock; nobody there is fine). */
static void
smtpd_server_wake(struct smtpd_server *srv)
{
	if (srv->wakefd >= 0)
		sched_wake(srv->wakefd, srv->conf->queue_dir, "new");
}

void
smtpd_server_committed(struct smtpd_server *srv)
{
	struct smtpd_session	*done, *s, *next;
	uint64_t		 cnt;
	char			 wake[SCHED_WAKE_MAX];
	size_t			 wlen = 0;
	bool			 flushed = false;

	if (read(srv->evfd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return;
	pthread_mutex_lock(&srv->mu);
	done = srv->done;
	srv->done = NULL;
	pthread_mutex_unlock(&srv->mu);
	/* An ETRN's flush: "flush DOMAIN..." (the flushed domains only: any
	 * client may ETRN a relay domain, and must not make every hop found
	 * down be tried again); the scheduler forgets those domains' hops
	 * found down and claims at once (it also says "new"). Only the
	 * flush wake: a "new" read alone first would have it claim the
	 * flushed domains while it still takes their hops for down. */
	for (s = done; s != NULL; s = s->cnext)
		if (s->etrn != NULL && etrn_job_flushed(s->etrn)) {
			flushed = true;
			etrn_job_wake(s->etrn, srv->wakefd,
			    srv->conf->queue_dir, wake, &wlen);
		}
	if (wlen > 0)
		sched_wake(srv->wakefd, srv->conf->queue_dir, wake);
	if (!flushed)
		smtpd_server_wake(srv);
	for (s = done; s != NULL; s = next) {
		next = s->cnext;
		s->in_commit_list = false;
		if (s->etrn != NULL) {
			if (s->dead)	/* freed with the session */
				continue;
			etrn_done(s);
			if (!smtpd_server_step(srv, s, false))
				smtpd_server_drop(srv, s);
			continue;
		}
		if (s->qn.rc == 0) {	/* for postern pull's summary */
			srv->nstored++;
			srv->nstored_bytes += s->body_len - s->trace_len;
		}
		if (s->dead) {
			/* Queued all the same: the client will likely send
			 * it again (RFC 5321 §6.1 prefers a duplicate). It
			 * is freed with the other dropped sessions. */
			if (s->qn.rc == 0) {
				char id[QUEUE_ID_LEN + 1];

				queue_id_format(s->qn.msg.id, id);
				log_info("%s: client=%s, from=<%s>, nrcpt=%zu: "
				    "queued, but the client left before the "
				    "reply", id, s->client, s->sender,
				    s->nrcpt);
			}
			continue;
		}
		smtpd_session_committed(s);
		/* Pipelined commands after the dot wait in the buffer. */
		if (!smtpd_server_step(srv, s, false))
			smtpd_server_drop(srv, s);
	}
}

/* ------------------------------------------------------------------ */
/* Configuration and set-up. */

static int
smtpd_server_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
smtpd_rcpt_known(const struct smtpd_server *srv, const char *addr)
{
	char	 key[QUEUE_ADDR_MAX + 2], *k = key;
	const char *at = strrchr(addr, '@');

	if (srv->nknown == 0)
		return false;
	/* Keys: the address with its domain lower-cased (A-labels for an
	 * international one), or "@domain". */
	if (smtp_idn_addr_ascii(addr, key, sizeof(key), NULL) != 0)
		return false;
	at = strrchr(key, '@');
	if (at != NULL)
		strl_lower(key + (at - key));
	addr = key;
	if (bsearch(&k, srv->known_rcpts, srv->nknown, sizeof(char *),
	    smtpd_server_strcmp) != NULL)
		return true;
	if (at == NULL)
		return false;
	k = key + (at - addr);
	return bsearch(&k, srv->known_rcpts, srv->nknown, sizeof(char *),
	    smtpd_server_strcmp) != NULL;
}

/* What smtpd_server_known_line fills. */
struct smtpd_server_known {
	struct conf_list	 l;
	size_t			 cap;
};

/* smtpd_server_known_line - a linefile_fn: one address or "@domain". */
static int
smtpd_server_known_line(void *arg, char *line, size_t len, int lineno,
    char *why, size_t whysz)
{
	struct smtpd_server_known	*k = arg;
	char				*at;

	char				 a[SMTP_DOMAIN_MAX + 1];
	char				 key[QUEUE_ADDR_MAX + 2];
	const char			*reason;

	(void)len;
	(void)lineno;
	if ((at = strrchr(line, '@')) != NULL)
		strl_lower(at);
	/* Keys hold their domain as A-labels, as smtpd_rcpt_known looks
	 * them up: either form of a domain matches the other. */
	if (at != NULL && smtp_idn_has8(at + 1)) {
		if (smtp_idn_to_ascii(at + 1, a, sizeof(a), &reason) != 0) {
			(void)bsnprintf(why, whysz, "bad domain \"%.80s\": not "
			    "a valid international domain name (%s)", at + 1,
			    reason);
			return -1;
		}
		*at = '\0';
		if (!bsnprintf(key, sizeof(key), "%s@%s", line, a)) {
			(void)bsnprintf(why, whysz, "address too long");
			return -1;
		}
		line = key;
	}
	if (k->l.n == k->cap) {
		k->cap = k->cap != 0 ? k->cap * 2 : 64;
		k->l.v = xreallocarray(k->l.v, k->cap, sizeof(*k->l.v));
	}
	k->l.v[k->l.n++] = xstrdup(line);
	return 0;
}

/* smtpd_server_load_known - relay_recipients: an address or "@domain" a
 * line, comments as in every file we read (linefile.c). -1 on an error
 * (logged, naming the file and the line), with the list empty. */
int
smtpd_server_load_known(struct smtpd_server *srv, const char *file)
{
	struct smtpd_server_known	 k = { { NULL, 0 }, 0 };
	char				 err[1024];

	srv->known_rcpts = NULL;
	srv->nknown = 0;
	if (file == NULL)
		return 0;
	if (linefile_read(file, smtpd_server_known_line, &k, err,
	    sizeof(err)) == -1) {
		log_warnx("relay_recipients: %s", err);
		conf_list_free(&k.l);
		return -1;
	}
	/* An empty file leaves the array NULL: qsort and bsearch want a
	 * valid pointer even for no elements (C17 7.22.5). */
	if (k.l.n > 0)
		qsort(k.l.v, k.l.n, sizeof(*k.l.v), smtpd_server_strcmp);
	srv->known_rcpts = k.l.v;
	srv->nknown = k.l.n;
	return 0;
}

void
smtpd_server_free_known(struct smtpd_server *srv)
{
	size_t	i;

	for (i = 0; i < srv->nknown; i++)
		free(srv->known_rcpts[i]);
	free(srv->known_rcpts);
	srv->known_rcpts = NULL;
	srv->nknown = 0;
}

/* smtpd_server_setup - what comes from the configuration: the TLS context
 * and the users (relay_recipients: smtpd_server_load_known). -1 on an
 * error (logged). */
static int
smtpd_server_setup(struct smtpd_server *srv, struct conf *conf, SSL_CTX **tls,
    struct auth_db **auth, struct etrn_conf **etrn)
{
	char	err[1024];

	*tls = NULL;
	*auth = NULL;
	*etrn = NULL;
	if (conf->tls_cert_file != NULL &&
	    (*tls = smtp_tls_server_ctx(conf, err, sizeof(err))) == NULL) {
		log_warnx("TLS: %s", err);
		return -1;
	}
	if (conf->users_file != NULL &&
	    (*auth = auth_db_load(conf->users_file, err, sizeof(err))) ==
	    NULL) {
		log_warnx("users_file: %s", err);
		SSL_CTX_free(*tls);
		*tls = NULL;
		return -1;
	}
	if ((*etrn = etrn_conf_load(conf)) == NULL) {
		auth_db_free(*auth);
		*auth = NULL;
		SSL_CTX_free(*tls);
		*tls = NULL;
		return -1;
	}
	(void)srv;
	return 0;
}

static void
smtpd_server_reload(struct smtpd_server *srv)
{
	struct conf	*nc;
	struct auth_db	*auth;
	struct etrn_conf *etrn;
	SSL_CTX		*tls;
	char		 err[1024];

	if ((nc = conf_load(srv->conf_file, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	if (smtpd_server_setup(srv, nc, &tls, &auth, &etrn) != 0) {
		log_warnx("reload failed: keeping the old configuration");
		conf_free(nc);
		return;
	}
	/* Sessions may point into the old configuration: keep it. */
	srv->old_confs = xreallocarray(srv->old_confs, srv->nold + 1,
	    sizeof(*srv->old_confs));
	srv->old_confs[srv->nold++] = srv->conf;
	srv->conf = nc;
	SSL_CTX_free(srv->tls);
	srv->tls = tls;
	/* Only our reference: SASL exchanges under way hold theirs, and
	 * the old users go when the last of them ends. */
	auth_db_free(srv->auth);
	srv->auth = auth;
	etrn_conf_free(srv->etrn);
	srv->etrn = etrn;
	smtpd_server_free_known(srv);
	(void)smtpd_server_load_known(srv, nc->relay_recipients);
	smtpd_server_nofile(nc);
	log_info("configuration reloaded");
}

/* smtpd_server_sweep - spool files of a listener that died were never
 * acknowledged: remove them. */
static void
smtpd_server_sweep(struct smtpd_server *srv)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[8300];
	int		 n = 0;

	if (mkdir(srv->spool_dir, 0700) == -1 && errno != EEXIST)
		log_warn("mkdir %s", srv->spool_dir);
	if ((d = opendir(srv->spool_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (bsnprintf(path, sizeof(path), "%s/%s", srv->spool_dir,
		    de->d_name) && unlink(path) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		log_info("removed %d spool file%s of an earlier listener", n,
		    n == 1 ? "" : "s");
}

/*
 * smtpd_server_stress - near max_connections (SMTPD_STRESS_PCT of it) the
 * command and data timeouts drop to stress_timeout, as in Postfix's
 * stress mode: idle and slow clients give their slots to others.
 */
static void
smtpd_server_stress(struct smtpd_server *srv)
{
	const struct conf	*c = srv->conf;
	bool			 stress;

	stress = c->max_connections > 0 && c->stress_timeout > 0 &&
	    (uint64_t)srv->nsessions * 100 >=
	    (uint64_t)c->max_connections * SMTPD_STRESS_PCT;
	if (stress == srv->stress)
		return;
	srv->stress = stress;
	if (stress)
		log_info("stress: %zu of %d sessions, timeouts now %llds",
		    srv->nsessions, c->max_connections,
		    (long long)c->stress_timeout);
	else
		log_info("stress over: %zu of %d sessions", srv->nsessions,
		    c->max_connections);
}

void
smtpd_server_timers(struct smtpd_server *srv)
{
	struct smtpd_session	*s, *next;
	uint64_t		 now = (uint64_t)clock_mono_ms(), limit, st;

	smtpd_server_stress(srv);
	if (srv->accept_resume != 0 && now >= srv->accept_resume &&
	    !srv->stopping) {
		srv->accept_resume = 0;
		smtpd_server_listening(srv, true);
	}
	/* The last of a shortage (smtpd_server_nofd logs at most so often). */
	if (srv->nofd_refused > 0 && now - srv->nofd_logged >=
	    SMTPD_NOFD_LOG_MS) {
		log_warnx("out of open files: %llu connection%s refused "
		    "with 421 (%zu sessions)",
		    (unsigned long long)srv->nofd_refused,
		    srv->nofd_refused == 1 ? "" : "s", srv->nsessions);
		srv->nofd_refused = 0;
		srv->nofd_logged = now;
	}
	st = smtpd_secs_ms(srv->conf->stress_timeout);
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state == SMTPD_S_COMMIT)
			continue;
		limit = s->deadline;
		if (srv->stress && s->state != SMTPD_S_CLOSE &&
		    s->atrn == NULL &&
		    s->since + st < limit)
			limit = s->since + st;
		if (now < limit)
			continue;
		if (s->state == SMTPD_S_CLOSE) {
			smtpd_server_drop(srv, s);
			continue;
		}
		if (s->state == SMTPD_S_AUTH_WAIT) {
			/* A failed AUTH's delay is over: its reply. */
			smtpd_session_auth_resume(s);
		} else if (s->atrn != NULL) {
			if (!atrn_timeout(s)) {
				smtpd_server_drop(srv, s);
				continue;
			}
		} else {
			smtpd_session_timeout(s);
			/* For the 421 to go out. */
			s->deadline = now + SMTPD_CLOSE_MS;
		}
		if (!smtpd_server_step(srv, s, false))
			smtpd_server_drop(srv, s);
	}
}

static void
smtpd_server_stop(struct smtpd_server *srv)
{
	struct smtpd_session	*s, *next;
	size_t			 i;

	srv->stopping = true;
	srv->stop_deadline = (uint64_t)clock_mono_ms() +
	    SMTPD_DRAIN_SECONDS * 1000;
	for (i = 0; i < srv->nlfds; i++) {
		(void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->lfds[i], NULL);
		close(srv->lfds[i]);
	}
	smtpd_local_close(srv);
	/* Sessions not in the middle of a message go now (RFC 5321 §3.8:
	 * 421 before closing); those in DATA or BDAT may finish. */
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (smtpd_session_in_message(s) ||
		    s->state == SMTPD_S_COMMIT || s->state == SMTPD_S_PROXY)
			continue;	/* a reversed session may finish too */
		if (s->state == SMTPD_S_ATRN_WAIT)
			atrn_fail(s, "shutting down");
		smtpd_session_shutdown(s);
		if (!smtpd_server_step(srv, s, false))
			smtpd_server_drop(srv, s);
	}
	log_info("stopping: %zu session%s finishing", srv->nsessions,
	    srv->nsessions == 1 ? "" : "s");
}

/* smtpd_server_atrn - events of the proxies' socketpair ends (atrn.c),
 * each pointing at its session. */
static void
smtpd_server_atrn(struct smtpd_server *srv)
{
	struct epoll_event	 evs[SMTPD_EVENTS_MAX];
	struct smtpd_session	*s;
	int			 n, k;

	n = epoll_wait(srv->atrn_epfd, evs, SMTPD_EVENTS_MAX, 0);
	for (k = 0; k < n; k++) {
		s = evs[k].data.ptr;
		if (s->dead)	/* dropped earlier in the batch */
			continue;
		/* A hang-up, which no interest mask stops. */
		atrn_event(s, evs[k].events);
		/* Not "readable": that is the client's socket. */
		if (!smtpd_server_step(srv, s, false))
			smtpd_server_drop(srv, s);
	}
}

int
smtpd_server_run(struct conf *conf, const char *conf_file, const int *lfds,
    size_t nlfds, size_t nodmr)
{
	struct smtpd_server	 srv;
	struct epoll_event	 ev, evs[SMTPD_EVENTS_MAX];
	struct smtpd_session	*s, *next;
	sigset_t		 mask;
	char			 err[1024];
	uint64_t		 last_tick = (uint64_t)clock_mono_ms();
	size_t			 i;
	int			 n, k;

	memset(&srv, 0, sizeof(srv));
	srv.conf = conf;
	srv.conf_file = conf_file;
	srv.lfds = lfds;
	srv.nlfds = nlfds;
	srv.nodmr = nodmr <= nlfds ? nodmr : nlfds;
	srv.todo_tail = &srv.todo;
	smtpd_server_nofile(conf);
	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (queue_open(conf->queue_dir, 0, conf->queue_map_size, &srv.q, err,
	    sizeof(err)) != 0)
		fatalx("queue: %s", err);
	if (smtpd_server_setup(&srv, conf, &srv.tls, &srv.auth,
	    &srv.etrn) != 0)
		fatalx("cannot start the SMTP server");
	/* Kept across reloads, as the AUTH failures are. */
	srv.etrn_rate = etrn_rate_new();
	/* Kept across reloads: a reload must not forgive a guesser. */
	srv.throttle = auth_throttle_new(SMTPD_THROTTLE_MAX);
	if (smtpd_server_load_known(&srv, conf->relay_recipients) != 0)
		fatalx("cannot read relay_recipients");
	bsnprintf(srv.spool_dir, sizeof(srv.spool_dir), "%s/spool",
	    conf->queue_dir);
	smtpd_server_sweep(&srv);
	/* Before the commit thread: the socket's umask is the process's. */
	srv.localfd = smtpd_local_open(&srv);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	srv.wakefd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if ((srv.sigfd = signalfd(-1, &mask,
	    SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    (srv.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (srv.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (srv.atrn_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("listener set-up");
	pthread_mutex_init(&srv.mu, NULL);
	pthread_cond_init(&srv.cv, NULL);
	if (pthread_create(&srv.thread, NULL, smtpd_commit_main, &srv) != 0)
		fatalx("cannot start the commit thread");

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	for (i = 0; i < nlfds; i++) {
		ev.data.ptr = (void *)(uintptr_t)&lfds[i];
		if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, lfds[i], &ev) == -1)
			fatal("epoll_ctl listen");
	}
	ev.data.ptr = &srv.localfd;
	if (srv.localfd >= 0 &&
	    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.localfd, &ev) == -1)
		fatal("epoll_ctl %s", SMTPD_LOCAL_SOCKET);
	ev.data.ptr = &srv.sigfd;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.sigfd, &ev) == -1)
		fatal("epoll_ctl signalfd");
	ev.data.ptr = &srv.evfd;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.evfd, &ev) == -1)
		fatal("epoll_ctl eventfd");
	ev.data.ptr = &srv.atrn_epfd;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.atrn_epfd, &ev) == -1)
		fatal("epoll_ctl atrn");
	log_info("listening on %zu socket%s (%zu ODMR)", nlfds,
	    nlfds == 1 ? "" : "s", srv.nodmr);

	for (;;) {
		if (srv.stopping && (srv.nsessions == 0 ||
		    (uint64_t)clock_mono_ms() >= srv.stop_deadline))
			break;
		n = epoll_wait(srv.epfd, evs, SMTPD_EVENTS_MAX, SMTPD_TICK_MS);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (k = 0; k < n; k++) {
			void *p = evs[k].data.ptr;

			if (p == &srv.sigfd) {
				struct signalfd_siginfo si;

				while (read(srv.sigfd, &si, sizeof(si)) ==
				    sizeof(si)) {
					if (si.ssi_signo == SIGHUP)
						smtpd_server_reload(&srv);
					else if (!srv.stopping)
						smtpd_server_stop(&srv);
				}
				continue;
			}
			if (p == &srv.evfd) {
				smtpd_server_committed(&srv);
				continue;
			}
			if (p == &srv.atrn_epfd) {
				smtpd_server_atrn(&srv);
				continue;
			}
			if (p == &srv.localfd) {
				if (!srv.stopping)
					smtpd_local_accept(&srv);
				continue;
			}
			if ((const int *)p >= lfds &&
			    (const int *)p < lfds + nlfds) {
				if (!srv.stopping)
					smtpd_server_accept(&srv,
					    *(const int *)p, (const int *)p >=
					    lfds + nlfds - srv.nodmr);
				continue;
			}
			s = p;
			if (s->dead)	/* dropped earlier in the batch */
				continue;
			if (s->state == SMTPD_S_COMMIT &&
			    (evs[k].events & (EPOLLERR | EPOLLHUP)) != 0) {
				/* Reset: the reply can no longer go out. */
				smtpd_server_drop(&srv, s);
				continue;
			}
			if (!smtpd_server_step(&srv, s, (evs[k].events &
			    (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0))
				smtpd_server_drop(&srv, s);
		}
		if ((uint64_t)clock_mono_ms() - last_tick >= SMTPD_TICK_MS) {
			last_tick = (uint64_t)clock_mono_ms();
			smtpd_server_timers(&srv);
		}
		smtpd_server_reap(&srv);
	}
	for (s = srv.sessions; s != NULL; s = next) {
		next = s->next;
		smtpd_server_drop(&srv, s);
	}
	pthread_mutex_lock(&srv.mu);
	srv.thread_stop = true;
	pthread_cond_signal(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
	pthread_join(srv.thread, NULL);
	/* What finished while we stopped was dropped above. */
	for (s = srv.done; s != NULL; s = s->cnext)
		s->in_commit_list = false;
	srv.done = NULL;
	smtpd_server_reap(&srv);
	smtpd_local_close(&srv);
	queue_close(srv.q);
	SSL_CTX_free(srv.tls);
	auth_db_free(srv.auth);
	auth_throttle_free(srv.throttle);
	etrn_conf_free(srv.etrn);
	etrn_rate_free(srv.etrn_rate);
	smtpd_server_free_known(&srv);
	for (i = 0; i < srv.nold; i++)
		conf_free(srv.old_confs[i]);
	free(srv.old_confs);
	conf_free(srv.conf);
	close(srv.epfd);
	close(srv.atrn_epfd);
	close(srv.evfd);
	if (srv.wakefd >= 0)
		close(srv.wakefd);
	close(srv.sigfd);
	if (srv.spare_fd >= 0)
		close(srv.spare_fd);
	log_info("stopped");
	return 0;
}

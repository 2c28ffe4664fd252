/*
 * reverse.c - delivery over a reversed connection: ATRN on odmr_listen
 * (RFC 2645) and TURN on the SMTP port (RFC 821, after AUTH).
 *
 * The listener (etrn/atrn.c) keeps the customer's connection, TLS and
 * all, and becomes a bounded byte proxy between it and one end of a
 * socketpair; the other end comes here, with a struct reverse_req, as a
 * datagram with SCM_RIGHTS on queue_dir/odmr.sock. Why a process of its
 * own rather than a delivery worker or the listener: the listener's loop
 * must never block and cannot fork safely (it has a thread), and a worker
 * serves the scheduler's batches one at a time, where a reversed session
 * lasts as long as the customer's mail takes. The odmr process (posternd's
 * child "odmr", supervised like "sched") forks one process per session:
 * each may block in the client code (smtpc), bounded by its timeouts.
 *
 * A session process first records that the domains' sites were seen
 * (queue_site_seen: `postern stats`, the metrics and the notices show
 * it), then claims the domains' recipients, held ones too
 * (queue_claim_domain, REVERSE_ROUND at a time, only those not tried since
 * the session began), delivers each message with the runner's client
 * (pipelining, DSN pass-through), records each message's results at once
 * (queue_claim_result: what was delivered is never delivered again), with
 * the DSN hook, and logs each recipient like any delivery (dlog). When the
 * connection drops, every recipient not yet accepted gets a temporary
 * result: a held domain's goes back to waiting for its site (runner_result:
 * QRESULT_HELD), ready for the next ATRN.
 *
 * A session process that is killed loses nothing: its claims carry a lease
 * of lease_time, which a thread of its own renews every third of it while
 * the main thread may be blocked in the client (a message can take longer
 * than a lease: smtp_dot_timeout alone is 10 minutes), and when it runs
 * out the scheduler takes them and puts a held domain's back on hold.
 * Until then a new ATRN finds them claimed and delivers the rest. (The
 * odmr process could hand them back at once, but it would have to learn
 * every claim of every session; the lease already covers a session
 * process that dies, whatever kills it.)
 *
 * Two sessions never turn the same domain: the listener refuses an
 * overlapping ATRN while its proxy runs (451), and so does this process
 * while a session process of those domains lives. A session process that
 * recorded a temporary result waits for the clock's next second before it
 * exits, so the next session (which skips recipients tried since the
 * second it began) finds them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner_int.h"

#define REVERSE_REQ_MIN		offsetof(struct reverse_req, dom)

/* One session process. */
struct reverse {
	struct conf		*conf;
	const struct reverse_req *req;
	struct queue		*q;
	struct runner_bounce	*bounce;
	struct smtpc		*sc;
	char			*chunk;
	char			 relay[440];	/* "odmr:helo[addr]" */
	int64_t			 lease;
	/* The renewal thread, and the claims it renews (those of the round
	 * not yet recorded). */
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	bool			 th_stop;
	const struct qclaim	*cur;
	size_t			 ncur;
	bool			 dead;		/* the connection is gone */
	bool			 temp;		/* a temporary result recorded */
	uint64_t		 delivered, deferred, failed, held;
};

struct reverse_body {
	struct reverse		*r;
	const struct qmsg	*m;
	uint32_t		 next;
};

static bool
reverse_addr(struct sockaddr_un *sun, const char *queue_dir)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return bsnprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s",
	    queue_dir, REVERSE_SOCKET);
}

int
reverse_handoff(int sfd, const char *queue_dir, const struct reverse_req *req,
    int fd)
{
	struct sockaddr_un	 sun;
	struct reverse_req	 copy;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}			 cbuf;

	if (req->ndom == 0 || req->ndom > REVERSE_DOMAINS_MAX ||
	    !reverse_addr(&sun, queue_dir)) {
		errno = EINVAL;
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	memset(&cbuf, 0, sizeof(cbuf));
	/* sendmsg's iovec is not const. */
	memcpy(&copy, req, sizeof(copy));
	iov.iov_base = &copy;
	iov.iov_len = REVERSE_REQ_MIN + req->ndom * sizeof(req->dom[0]);
	mh.msg_name = &sun;
	mh.msg_namelen = sizeof(sun);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One session. */

static int
reverse_body_next(void *arg, const char **data, size_t *len)
{
	struct reverse_body	*b = arg;

	*len = 0;
	if (b->next >= b->m->nchunks)
		return 0;
	if (queue_body_chunk(b->r->q, b->m->id, b->next++, b->r->chunk,
	    len) != 0)
		return -1;
	*data = b->r->chunk;
	return 0;
}

/* reverse_body_rewind - the message from its first chunk again. */
static int
reverse_body_rewind(void *arg)
{
	struct reverse_body	*b = arg;

	b->next = 0;
	return 0;
}

static void
reverse_count(struct reverse *r, const struct qresult *res)
{
	switch (res->kind) {
	case QRESULT_DELIVERED:
		r->delivered++;
		break;
	case QRESULT_FAILED:
		r->failed++;
		break;
	case QRESULT_HELD:
		r->held++;
		r->temp = true;
		break;
	default:
		r->deferred++;
		r->temp = true;
	}
}

/* reverse_record - the results of one message, in one transaction with
 * its DSN (if any). */
static void
reverse_record(struct reverse *r, struct qresult *res, size_t n)
{
	int	rc;

	if (n == 0)
		return;
	rc = queue_claim_result(r->q, res, n);
	if (rc != 0)
		log_warnx("%s: queue_claim_result: %s", __func__,
		    queue_errmsg(r->q));
	runner_bounce_done(r->bounce, rc == 0);
}

/*
 * reverse_message - deliver one message's claims c[0..n) over the
 * reversed connection, or, when it is gone, give them a temporary result
 * without trying (a held domain's go back to waiting for the next ATRN).
 */
static void
reverse_message(struct reverse *r, struct qclaim *c, size_t n)
{
	struct qmsg		 m;
	struct qrcpt		*all = NULL, **mine;
	struct smtpc_rcpt	*sr;
	struct smtpc_msg	 sm;
	struct reverse_body	 body;
	struct qresult		*res;
	double			 t1, delays[4];
	size_t			 nall, i, nmine = 0;
	bool			 tried = false, hop_dsn = false;

	if (queue_get(r->q, c[0].id, &m, &all, &nall) != 0)
		return;			/* gone meanwhile */
	mine = xcalloc(n, sizeof(*mine));
	sr = xcalloc(n, sizeof(*sr));
	res = xcalloc(n, sizeof(*res));
	nmine = runner_claims_mine(c, n, all, nall, mine, sr);
	if (nmine == 0)
		goto out;
	t1 = clock_mono_secs();
	if (!r->dead) {
		memset(&sm, 0, sizeof(sm));
		sm.sender = m.sender;
		sm.flags = m.flags;
		sm.envid = m.envid;
		sm.size = m.size;
		body.r = r;
		body.m = &m;
		body.next = 0;
		sm.body = reverse_body_next;
		sm.rewind = reverse_body_rewind;
		sm.body_arg = &body;
		sm.rcpt = sr;
		sm.nrcpt = nmine;
		tried = true;
		hop_dsn = smtpc_has_dsn(r->sc);
		if (smtpc_send(r->sc, &sm) != 0)
			r->dead = true;
	}
	delays[0] = delays[1] = delays[2] = 0;
	delays[3] = clock_mono_secs() - t1;
	for (i = 0; i < nmine; i++) {
		int		 code = tried ? sr[i].code : 0;
		const char	*st = tried ? sr[i].status : "4.4.2";
		const char	*why = tried ? sr[i].reply :
		    "the reversed connection was lost: kept for the next ATRN";

		if (st[0] == '\0')
			st = code >= 500 ? "5.0.0" : code >= 200 &&
			    code < 300 ? "2.0.0" : "4.0.0";
		runner_result(r->conf, &m, mine[i], &c[i], code, st, why,
		    tried, r->relay, delays, &res[i]);
		res[i].hop_dsn = tried && hop_dsn;
		reverse_count(r, &res[i]);
	}
	/* At once: a session that dies later does not send these again. */
	reverse_record(r, res, nmine);
out:
	free(res);
	free(sr);
	free(mine);
	free(all);
}

static int
reverse_claimcmp(const void *a, const void *b)
{
	const struct qclaim *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* reverse_renew_main - the renewal thread: every third of the lease,
 * push the leases of the claims not yet recorded. */
static void *
reverse_renew_main(void *arg)
{
	struct reverse	*r = arg;
	struct timespec	 ts;
	int64_t		 period = r->lease / 3 > 0 ? r->lease / 3 : 1;

	pthread_mutex_lock(&r->mu);
	while (!r->th_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)period;
		while (!r->th_stop &&
		    pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
			;
		if (r->th_stop)
			break;
		if (r->ncur > 0 && queue_claim_renew(r->q, r->cur, r->ncur,
		    (int64_t)clock_now() + r->lease) != 0)
			log_warnx("lease renewal: %s", queue_errmsg(r->q));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* reverse_owe - the claims the renewal thread must keep alive. */
static void
reverse_owe(struct reverse *r, const struct qclaim *c, size_t n)
{
	pthread_mutex_lock(&r->mu);
	r->cur = c;
	r->ncur = n;
	pthread_mutex_unlock(&r->mu);
}

/* reverse_round - deliver one round of claims, message by message. */
static void
reverse_round(struct reverse *r, struct qclaim *c, size_t n)
{
	size_t	i, j;

	qsort(c, n, sizeof(*c), reverse_claimcmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && c[j].id == c[i].id;)
			j++;
		reverse_owe(r, c + i, n - i);
		reverse_message(r, c + i, j - i);
	}
	reverse_owe(r, NULL, 0);
}

/* reverse_wait_second - the next session skips what was tried since the
 * second it began: let this one's results be of an earlier second. */
static void
reverse_wait_second(void)
{
	struct timespec	now, ts;

	clock_gettime(CLOCK_REALTIME, &now);
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000L - now.tv_nsec + 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
reverse_session(struct conf *c, int fd, const struct reverse_req *req)
{
	struct reverse		 r;
	struct smtpc_opts	 o;
	struct smtp_conn	*conn;
	struct qclaim		*claims;
	char			 err[1024], status[16];
	char			 why[QUEUE_REPLY_MAX + 1], doms[1024];
	int64_t			 since;
	size_t			 i, n;
	bool			 done[REVERSE_DOMAINS_MAX];
	char			 ack = REVERSE_ACK_OK;

	memset(&r, 0, sizeof(r));
	r.conf = c;
	r.req = req;
	memset(done, 0, sizeof(done));
	doms[0] = '\0';
	for (i = 0; i < req->ndom; i++) {
		if (i > 0)
			strl_cat(doms, " ", sizeof(doms));
		strl_cat(doms, req->dom[i], sizeof(doms));
	}
	if (queue_open(c->queue_dir, 0, c->queue_map_size, &r.q, err,
	    sizeof(err)) != 0) {
		log_warnx("client=%s, user=%s: queue: %s", req->client,
		    req->user, err);
		return 1;	/* no acknowledgement: the listener says 451 */
	}
	/* The listener accepted the request (AUTH, the domains the user
	 * owns, mail waiting): the site is alive. */
	for (i = 0; i < req->ndom; i++)
		if (queue_site_seen(r.q, req->dom[i], (int64_t)clock_now()) != 0)
			log_warnx("%s: last seen: %s", req->dom[i],
			    queue_errmsg(r.q));
	r.bounce = runner_bounce_new(c);
	runner_bounce_attach(r.bounce, r.q);
	r.chunk = xmalloc(QUEUE_CHUNK_SIZE);
	r.lease = c->lease_time > 0 ? c->lease_time : 1;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (pthread_create(&r.th, NULL, reverse_renew_main, &r) != 0) {
		log_warnx("client=%s: cannot start the renewal thread",
		    req->client);
		queue_close(r.q);
		runner_bounce_free(r.bounce);
		free(r.chunk);
		return 1;
	}
	bsnprintf(r.relay, sizeof(r.relay), "odmr:%s", req->client);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (send(fd, &ack, 1, MSG_NOSIGNAL) != 1) {
		log_warnx("client=%s, user=%s: the listener went away",
		    req->client, req->user);
		close(fd);
		goto done;
	}
	conn = smtp_conn_new(fd);
	memset(&o, 0, sizeof(o));
	o.helo = c->myhostname;
	o.tls = CONF_TLS_NONE;	/* TLS, if any, is the listener's */
	o.connect_timeout = (int)c->smtp_connect_timeout;
	o.cmd_timeout = (int)c->smtp_command_timeout;
	o.data_timeout = (int)c->smtp_data_timeout;
	o.dot_timeout = (int)c->smtp_dot_timeout;
	o.bdat_min_size = c->smtp_bdat_min_size;
	log_info("client=%s, user=%s, domains=%s, tls=%s: reversed session "
	    "(serial %llu)", req->client, req->user, doms,
	    req->tls[0] ? req->tls : "none",
	    (unsigned long long)req->serial);
	counters_event(COUNTERS_CONN_REVERSED);
	since = (int64_t)clock_now();
	if ((r.sc = smtpc_attach(conn, &o, status, why, sizeof(why))) ==
	    NULL) {
		log_info("client=%s, user=%s: no session with the site: %s",
		    req->client, req->user, why);
		smtp_conn_free(conn);
		goto done;
	}
	claims = xcalloc(REVERSE_ROUND, sizeof(*claims));
	/* Rounds over every domain at once: a message with recipients in
	 * two of them goes once, with both. */
	while (!r.dead) {
		int64_t	now = (int64_t)clock_now();
		size_t	got = 0;

		for (i = 0; i < req->ndom && got < REVERSE_ROUND; i++) {
			if (done[i])
				continue;
			if (queue_claim_domain(r.q, req->dom[i], false, true,
			    since, now, r.lease, claims + got,
			    REVERSE_ROUND - got, &n) != 0) {
				log_warnx("%s: claim: %s", req->dom[i],
				    queue_errmsg(r.q));
				n = 0;
			}
			if (n == 0)
				done[i] = true;
			got += n;
		}
		if (got == 0)
			break;
		reverse_round(&r, claims, got);
		runner_mem_trim(r.q, RUNNER_MAP_KEEP_WORKER);
	}
	free(claims);
	smtpc_close(r.sc, !r.dead);
	smtp_conn_free(conn);
	log_info("client=%s, user=%s, domains=%s: session over: delivered=%llu,"
	    " deferred=%llu, failed=%llu, held=%llu%s", req->client, req->user,
	    doms, (unsigned long long)r.delivered,
	    (unsigned long long)r.deferred, (unsigned long long)r.failed,
	    (unsigned long long)r.held, r.dead ? " (connection lost)" : "");
done:
	pthread_mutex_lock(&r.mu);
	r.th_stop = true;
	pthread_cond_signal(&r.cv);
	pthread_mutex_unlock(&r.mu);
	pthread_join(r.th, NULL);
	if (r.temp)
		reverse_wait_second();
	queue_close(r.q);
	runner_bounce_free(r.bounce);
	free(r.chunk);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The odmr process. */

struct reverse_kid {
	pid_t			 pid;
	struct reverse_req	 req;
};

/* reverse_overlap - does a running session turn one of req's domains? */
static bool
reverse_overlap(const struct reverse_kid *kids, const struct reverse_req *req)
{
	size_t	k, i, j;

	for (k = 0; k < REVERSE_SESSIONS_MAX; k++) {
		if (kids[k].pid <= 0)
			continue;
		for (i = 0; i < kids[k].req.ndom; i++)
			for (j = 0; j < req->ndom; j++)
				if (strcasecmp(kids[k].req.dom[i],
				    req->dom[j]) == 0)
					return true;
	}
	return false;
}

/* reverse_recv - one handed-over session: 0 with the request and fd, or
 * -1 (nothing there, or garbage: logged and dropped). */
static int
reverse_recv(int sfd, struct reverse_req *req, int *fd)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	}		 cbuf;
	ssize_t		 n;
	size_t		 i;

	*fd = -1;
	memset(&mh, 0, sizeof(mh));
	memset(req, 0, sizeof(*req));
	iov.iov_base = req;
	iov.iov_len = sizeof(*req);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	if ((n = recvmsg(sfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int);

			for (i = 0; i < nfd; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int),
				    sizeof(int));
				if (*fd < 0)
					*fd = f;
				else
					close(f);
			}
		}
	if (*fd < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    (size_t)n < REVERSE_REQ_MIN || req->magic != REVERSE_MAGIC ||
	    req->ndom == 0 || req->ndom > REVERSE_DOMAINS_MAX ||
	    (size_t)n != REVERSE_REQ_MIN + req->ndom * sizeof(req->dom[0])) {
		log_warnx("odmr.sock: a malformed hand-over (%zd octets): "
		    "dropped", n);
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	req->user[sizeof(req->user) - 1] = '\0';
	req->client[sizeof(req->client) - 1] = '\0';
	req->tls[sizeof(req->tls) - 1] = '\0';
	for (i = 0; i < req->ndom; i++)
		req->dom[i][sizeof(req->dom[i]) - 1] = '\0';
	return 0;
}

static int
reverse_open(const struct conf *c)
{
	struct sockaddr_un	sun;
	int			fd;

	if (!reverse_addr(&sun, c->queue_dir)) {
		log_warnx("queue_dir too long for %s", REVERSE_SOCKET);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("socket");
		return -1;
	}
	(void)unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("bind %s", sun.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

/* reverse_start - fork the session process for req and fd. */
static void
reverse_start(struct conf *c, struct reverse_kid *kids, size_t *nkids,
    int sfd, int sigfd, const struct reverse_req *req, int fd)
{
	sigset_t	none;
	size_t		k;
	pid_t		pid;

	if (*nkids >= REVERSE_SESSIONS_MAX) {
		log_warnx("client=%s, user=%s: %d reversed sessions already: "
		    "refused", req->client, req->user, REVERSE_SESSIONS_MAX);
		close(fd);
		return;
	}
	if (reverse_overlap(kids, req)) {
		log_info("client=%s, user=%s: another session turns these "
		    "domains: refused", req->client, req->user);
		close(fd);
		return;
	}
	for (k = 0; k < REVERSE_SESSIONS_MAX && kids[k].pid > 0; k++)
		;
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(fd);
		return;
	}
	if (pid == 0) {
		close(sfd);
		close(sigfd);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		_exit(reverse_session(c, fd, req));
	}
	close(fd);
	kids[k].pid = pid;
	kids[k].req = *req;
	(*nkids)++;
}

static void
reverse_reap(struct reverse_kid *kids, size_t *nkids)
{
	size_t	k;
	pid_t	pid;
	int	status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (k = 0; k < REVERSE_SESSIONS_MAX; k++)
			if (kids[k].pid == pid)
				break;
		if (k == REVERSE_SESSIONS_MAX)
			continue;
		if (WIFSIGNALED(status))
			log_warnx("session of %s (pid %ld) killed by signal "
			    "%d: its claims come back when their lease ends",
			    kids[k].req.user, (long)pid, WTERMSIG(status));
		kids[k].pid = 0;
		(*nkids)--;
	}
}

int
reverse_serve(struct conf *c)
{
	struct reverse_kid	*kids;
	struct reverse_req	 req;
	struct pollfd		 pfd[2];
	sigset_t		 mask;
	size_t			 nkids = 0;
	int			 sfd, sigfd, fd;
	bool			 stop = false;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		return 1;
	}
	if ((sfd = reverse_open(c)) == -1) {
		close(sigfd);
		return 1;
	}
	kids = xcalloc(REVERSE_SESSIONS_MAX, sizeof(*kids));
	log_info("taking reversed sessions (at most %d at once)",
	    REVERSE_SESSIONS_MAX);
	while (!stop) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sigfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			break;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sigfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo != SIGCHLD)
					stop = true;
			reverse_reap(kids, &nkids);
		}
		if (!stop && (pfd[0].revents & POLLIN))
			while (reverse_recv(sfd, &req, &fd) == 0)
				reverse_start(c, kids, &nkids, sfd, sigfd,
				    &req, fd);
	}
	/* Sessions under way finish on their own (their timeouts bound
	 * them); the next odmr process counts only its own. */
	close(sfd);
	close(sigfd);
	free(kids);
	log_info("stopped (%zu session%s still finishing)", nkids,
	    nkids == 1 ? "" : "s");
	return 0;
}

/*
 * atrn.c - ATRN on the odmr_listen sockets (RFC 2645) and TURN on the SMTP
 * port (RFC 821, only with turn_enable and after AUTH): the checks, the
 * hand-over to the odmr process (runner/reverse.c), and the byte proxy
 * the session becomes once the roles reverse (see etrn.h for why).
 *
 * The ODMR port is a restricted profile (RFC 2645 §4): EHLO, HELO, AUTH,
 * STARTTLS, ATRN, NOOP, RSET and QUIT; every other known command gets 502
 * (§5.4: no relaying here). ATRN needs AUTH (530), names only domains
 * the user owns in users_file (450 otherwise, the whole command, and
 * nothing about the queue is said), and turns the connection only when
 * mail waits (453 otherwise) and no other session is turning one of those
 * domains (451, RFC 2645 §7).
 *
 * The reversal. ATRN ends its pipelined group (the command table marks it
 * synchronising), so nothing of the customer's waits unread when it is
 * answered. The session hands one end of a socketpair to the odmr process
 * and waits (SMTPD_S_ATRN_WAIT, at most ATRN_ACK_MS) for the session
 * process's first byte, REVERSE_ACK_OK: only then does the customer get
 * 250, and from then on (SMTPD_S_PROXY) the listener copies bytes: what
 * the customer sends, decrypted, to the socketpair, and what the session
 * process writes, encrypted when TLS is on, to the customer. The TLS
 * session never leaves this process. Each direction holds at most
 * ATRN_BUF unsent octets: past that the side that fills it is not read
 * (epoll interest off) until the other drains, so a fast writer and a slow
 * reader cost a bounded amount of memory. No acknowledgement in time, or
 * a closed socketpair: 451, and the session stays authenticated.
 *
 * The socketpair end is watched on the listener's second epoll set
 * (srv->atrn_epfd, itself watched by the main one), with the session as
 * its pointer: the session owns it, and it is closed when the session is
 * freed (after the batch, smtpd.c), so no event can name a freed session.
 * Either side closing ends the proxy: the customer's end of file closes the
 * socketpair (the session process records what was not accepted as
 * waiting for the next ATRN); the session process's end (after QUIT) lets
 * what is buffered reach the customer, then closes. Silence both ways for
 * smtp_dot_timeout plus ATRN_IDLE_EXTRA ends it too: the session process
 * has its own, shorter timeouts for every stage, so this only catches
 * what they cannot.
 *
 * A hang-up of the socketpair (the session process exited) is noted from
 * the event itself (atrn_event), not from a read: with ATRN_BUF unsent to
 * a site that stopped reading, the end is not read, and epoll reports the
 * hang-up whatever the interest, on every pass (the listener spun at full
 * CPU until the idle deadline). From then on the end leaves the epoll set,
 * the domains are free for another ATRN, and what the session process
 * left is passed on while the site reads, SMTPD_CLOSE_MS at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etrn_int.h"
#include "runner.h"
#include "smtpd_int.h"

#define ATRN_ACK_MS		30000	/* for the session process to start */
#define ATRN_IDLE_EXTRA		120	/* s past smtp_dot_timeout */
#define ATRN_PASSES		16	/* copy rounds per event */

struct atrn_proxy {
	int			 fd;		/* our end of the socketpair */
	uint32_t		 evmask;
	bool			 peer_eof;
	bool			 hup;		/* the session process is gone:
						 * the end is out of the epoll
						 * set, drained as the site
						 * reads */
	uint64_t		 up, down;	/* octets to the site, to us */
	size_t			 ndom;
	char			 dom[REVERSE_DOMAINS_MAX][256];
	enum counters_req	 req;		/* ATRN or TURN, for counters */
};

/* The commands of the ODMR profile (RFC 2645 §5). */
bool
atrn_odmr_verb(const char *verb)
{
	static const char *const ok[] = {
		"EHLO", "HELO", "AUTH", "STARTTLS", "ATRN", "NOOP", "RSET",
		"QUIT",
	};
	size_t	i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcasecmp(verb, ok[i]) == 0)
			return true;
	return false;
}

/* atrn_end - close the proxy's side (the session process sees the end of
 * file); the session itself goes on or is dropped by the caller. */
static void
atrn_end(struct smtpd_session *s)
{
	struct atrn_proxy	*a = s->atrn;

	if (a == NULL)
		return;
	(void)epoll_ctl(s->srv->atrn_epfd, EPOLL_CTL_DEL, a->fd, NULL);
	close(a->fd);
	free(a);
	s->atrn = NULL;
}

void
atrn_free(struct smtpd_session *s)
{
	atrn_end(s);
}

/* atrn_busy - is another session turning one of these domains? */
static bool
atrn_busy(const struct smtpd_session *s, const struct reverse_req *req)
{
	const struct smtpd_session	*o;
	size_t				 i, j;

	for (o = s->srv->sessions; o != NULL; o = o->next) {
		if (o == s || o->atrn == NULL)
			continue;
		for (i = 0; i < o->atrn->ndom; i++)
			for (j = 0; j < req->ndom; j++)
				if (strcmp(o->atrn->dom[i], req->dom[j]) == 0)
					return true;
	}
	return false;
}

/* atrn_add - a domain for the request, once; false when it is full. */
static bool
atrn_add(struct reverse_req *req, const char *d)
{
	uint32_t	i;

	for (i = 0; i < req->ndom; i++)
		if (strcasecmp(req->dom[i], d) == 0)
			return true;
	if (req->ndom == REVERSE_DOMAINS_MAX)
		return false;
	strl_copy(req->dom[req->ndom], d, sizeof(req->dom[0]));
	strl_lower(req->dom[req->ndom]);
	req->ndom++;
	return true;
}

/*
 * atrn_domains - the domains of the request: arg's comma list (RFC 2645
 * §5.2.1: no spaces), every one the user's, or with no argument every
 * domain the user owns (its ".parent" entries name subdomains: ATRN takes
 * them one by one). 0, or -1 having replied.
 */
static int
atrn_domains(struct smtpd_session *s, const struct auth_user *u, char *arg,
    struct reverse_req *req, const char *verb)
{
	const struct conf_list	*l;
	char			*d, *next, adom[SMTP_DOMAIN_MAX + 2];
	size_t			 i;

	if (arg == NULL) {
		l = u != NULL ? auth_user_domains(u) : NULL;
		for (i = 0; l != NULL && i < l->n; i++)
			if (l->v[i][0] != '.' && !atrn_add(req, l->v[i])) {
				log_warnx("user=%s: more than %d domains: %s "
				    "takes the first %d", s->auth_user,
				    REVERSE_DOMAINS_MAX, verb,
				    REVERSE_DOMAINS_MAX);
				break;
			}
		if (req->ndom == 0) {
			log_info("client=%s, user=%s: %s refused: the user "
			    "owns no domain", s->client, s->auth_user, verb);
			smtpd_session_reply(s, "450 4.7.0 ATRN request "
			    "refused");
			return -1;
		}
		return 0;
	}
	for (d = arg; d != NULL; d = next) {
		if ((next = strchr(d, ',')) != NULL)
			*next++ = '\0';
		/* U-labels are taken as their A-labels, the form of
		 * users_file's domains and the queue's index. */
		if (*d == '.' || smtp_idn_domain(d, adom, sizeof(adom),
		    NULL) != 0) {
			smtpd_session_reply(s, "501 5.5.4 Syntax: ATRN "
			    "[domain[,domain]...]");
			return -1;
		}
		d = adom;
		if (!auth_user_owns(u, d)) {
			log_info("client=%s, user=%s, domain=%s: ATRN refused: "
			    "not the user's", s->client, s->auth_user, d);
			smtpd_session_reply(s, "450 4.7.0 ATRN request "
			    "refused");
			return -1;
		}
		if (!atrn_add(req, d)) {
			smtpd_session_reply(s, "501 5.5.4 Error: at most %d "
			    "domains", REVERSE_DOMAINS_MAX);
			return -1;
		}
	}
	return 0;
}

/*
 * atrn_waiting - 1 if a recipient of the request's domains can be
 * delivered now, 0 if none, -1 on error. Not a count: this runs in the
 * event loop, and counting walks every index entry of up to
 * REVERSE_DOMAINS_MAX domains; queue_domain_any stops at the first, at a
 * bounded cost. Nor does it take what a delivery in progress has claimed
 * (active, until its result or its lease): the session process could not
 * take it either, and the site would get 250 and an empty session where
 * RFC 2645 says 453.
 */
static int
atrn_waiting(struct smtpd_session *s, const struct reverse_req *req)
{
	uint32_t	i;
	bool		yes;

	for (i = 0; i < req->ndom; i++) {
		if (queue_domain_any(s->srv->q, req->dom[i], &yes) != 0)
			return -1;
		if (yes)
			return 1;
	}
	return 0;
}

/* atrn_handoff - give the session to the odmr process; 0, or -1 having
 * logged why. */
static int
atrn_handoff(struct smtpd_session *s, const struct reverse_req *req)
{
	struct smtpd_server	*srv = s->srv;
	struct atrn_proxy	*a;
	struct epoll_event	 ev;
	int			 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("client=%s: socketpair", s->client);
		return -1;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1 || srv->wakefd < 0 ||
	    reverse_handoff(srv->wakefd, srv->conf->queue_dir, req,
	    sv[1]) == -1) {
		log_warn("client=%s, user=%s: cannot reach the odmr process",
		    s->client, s->auth_user);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	a = xcalloc(1, sizeof(*a));
	a->fd = sv[0];
	a->ndom = req->ndom;
	memcpy(a->dom, req->dom, sizeof(a->dom));
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = s;
	if (epoll_ctl(srv->atrn_epfd, EPOLL_CTL_ADD, a->fd, &ev) == -1) {
		log_warn("client=%s: epoll_ctl", s->client);
		close(a->fd);
		free(a);
		return -1;
	}
	a->evmask = ev.events;
	s->atrn = a;
	return 0;
}

/* atrn_names - the request's domains, space-separated, for the log. */
static void
atrn_names(const struct reverse_req *req, char *buf, size_t bufsz)
{
	uint32_t	i;

	buf[0] = '\0';
	for (i = 0; i < req->ndom; i++) {
		if (i > 0)
			strl_cat(buf, " ", bufsz);
		strl_cat(buf, req->dom[i], bufsz);
	}
}

static void	atrn_turn_counted(struct smtpd_session *, char *, const char *);

/* atrn_turn - ATRN (arg: its domains) or TURN (none). */
static void
atrn_turn(struct smtpd_session *s, char *arg, const char *verb)
{
	struct reverse_req	 req;
	const struct auth_user	*u;
	int			 n;
	char			 names[1024];

	if (s->auth_user == NULL) {
		smtpd_session_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->in_mail) {
		smtpd_session_reply(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.magic = REVERSE_MAGIC;
	req.serial = s->serial;
	strl_copy(req.user, s->auth_user, sizeof(req.user));
	strl_copy(req.client, s->client, sizeof(req.client));
	if (s->tls)
		strl_copy(req.tls, s->conn->tls_info, sizeof(req.tls));
	u = s->srv->auth != NULL ? auth_db_find(s->srv->auth, s->auth_user) :
	    NULL;
	if (atrn_domains(s, u, arg, &req, verb) != 0)
		return;
	atrn_names(&req, names, sizeof(names));
	if (atrn_busy(s, &req)) {
		log_info("client=%s, user=%s, domains=%s: %s refused: another "
		    "session turns these domains", s->client, s->auth_user,
		    names, verb);
		smtpd_session_reply(s, "451 4.3.0 Unable to process ATRN "
		    "request now");
		return;
	}
	if ((n = atrn_waiting(s, &req)) < 0) {
		log_warnx("client=%s: %s: queue: %s", s->client, verb,
		    queue_errmsg(s->srv->q));
		smtpd_session_reply(s, "451 4.3.0 Unable to process ATRN "
		    "request now");
		return;
	}
	if (n == 0) {
		log_info("client=%s, user=%s, domains=%s: %s: no mail waiting",
		    s->client, s->auth_user, names, verb);
		/* Allowed, so the site was seen: the record first, then
		 * 453 (etrn_done). */
		etrn_seen_submit(s, (const char (*)[256])req.dom, req.ndom);
		return;
	}
	if (atrn_handoff(s, &req) != 0) {
		smtpd_session_reply(s, "451 4.3.0 Unable to process ATRN "
		    "request now");
		return;
	}
	log_info("client=%s, user=%s, domains=%s: %s: mail waiting, handed "
	    "to the odmr process", s->client, s->auth_user, names, verb);
	s->state = SMTPD_S_ATRN_WAIT;
	s->since = (uint64_t)clock_mono_ms();
	s->deadline = s->since + ATRN_ACK_MS;
}

/*
 * atrn_turn_counted - atrn_turn, and count its outcome by the reply it
 * gave (counters.c). One handed to the odmr process is counted when that
 * answers: atrn_ack (turned) or atrn_fail.
 */
static void
atrn_turn_counted(struct smtpd_session *s, char *arg, const char *verb)
{
	enum counters_req	 req = verb[0] == 'T' ? COUNTERS_REQ_TURN :
	    COUNTERS_REQ_ATRN;
	size_t			 off = s->conn->out->len;
	const char		*r;

	atrn_turn(s, arg, verb);
	if (s->state == SMTPD_S_ATRN_WAIT && s->atrn != NULL) {
		s->atrn->req = req;
		return;
	}
	if (s->conn->out->len < off + 3)
		return;
	r = s->conn->out->s + off;
	if (strncmp(r, "453", 3) == 0)
		counters_request(req, COUNTERS_OUT_EMPTY);
	else if (strncmp(r, "450", 3) == 0 || strncmp(r, "530", 3) == 0)
		counters_request(req, COUNTERS_OUT_REFUSED);
	else
		counters_request(req, COUNTERS_OUT_ERROR);
}

void
atrn_cmd_atrn(struct smtpd_session *s, char *arg)
{
	if (!s->odmr) {
		/* The SMTP port relays: ATRN only where it is the profile's
		 * (odmr_listen). */
		smtpd_session_reply(s, "502 5.5.1 Error: command not "
		    "implemented");
		return;
	}
	atrn_turn_counted(s, arg, "ATRN");
}

void
atrn_cmd_turn(struct smtpd_session *s, char *arg)
{
	if (s->odmr || !s->srv->conf->turn_enable) {
		smtpd_session_reply(s, "502 5.5.1 Error: TURN not supported; "
		    "use ATRN");
		return;
	}
	if (arg != NULL) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: TURN");
		return;
	}
	atrn_turn_counted(s, NULL, "TURN");
}

/* ------------------------------------------------------------------ */
/* The proxy. */

bool
atrn_reading(const struct smtpd_session *s)
{
	return s->state == SMTPD_S_PROXY && s->atrn != NULL &&
	    !s->conn->eof && smtp_conn_avail(s->conn) < ATRN_BUF;
}

static void
atrn_interest(struct smtpd_session *s)
{
	struct atrn_proxy	*a = s->atrn;
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.ptr = s;
	if (s->state == SMTPD_S_ATRN_WAIT ||
	    (!a->peer_eof && s->conn->out->len - s->conn->outoff < ATRN_BUF))
		ev.events |= EPOLLIN;
	if (s->state == SMTPD_S_PROXY && smtp_conn_avail(s->conn) > 0)
		ev.events |= EPOLLOUT;
	if (a->hup || ev.events == a->evmask)
		return;
	a->evmask = ev.events;
	(void)epoll_ctl(s->srv->atrn_epfd, EPOLL_CTL_MOD, a->fd, &ev);
}

/* atrn_event - the socketpair end's events: a hang-up or an error is the
 * session process's end even when nothing is read from it (see the top);
 * once taken the end leaves the epoll set, which cannot mask HUP. */
void
atrn_event(struct smtpd_session *s, uint32_t events)
{
	struct atrn_proxy	*a = s->atrn;

	if (a == NULL || s->state != SMTPD_S_PROXY || a->hup ||
	    !(events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		return;
	a->hup = true;
	a->ndom = 0;		/* no longer turned: atrn_busy */
	(void)epoll_ctl(s->srv->atrn_epfd, EPOLL_CTL_DEL, a->fd, NULL);
	s->deadline = (uint64_t)clock_mono_ms() + SMTPD_CLOSE_MS;
}

/* atrn_ack - the session process's first byte: 250 and reverse, or 451
 * and stay. */
static bool
atrn_ack(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	ssize_t			 n;
	char			 b;

	n = recv(s->atrn->fd, &b, 1, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		atrn_interest(s);
		return smtp_conn_flush(s->conn) >= 0;
	}
	if (n == 1 && b == REVERSE_ACK_OK) {
		smtpd_session_reply(s, "250 2.0.0 OK now reversing the "
		    "connection");
		log_info("client=%s, user=%s: reversing the connection",
		    s->client, s->auth_user);
		counters_request(s->atrn->req, COUNTERS_OUT_OK);
		s->state = SMTPD_S_PROXY;
		smtpd_session_arm(s, c->smtp_dot_timeout + ATRN_IDLE_EXTRA);
		atrn_interest(s);
		return smtp_conn_flush(s->conn) >= 0;
	}
	atrn_fail(s, "the odmr process refused the session");
	return smtp_conn_flush(s->conn) >= 0;
}

void
atrn_fail(struct smtpd_session *s, const char *why)
{
	log_info("client=%s, user=%s: ATRN not turned: %s", s->client,
	    s->auth_user != NULL ? s->auth_user : "-", why);
	if (s->atrn != NULL)
		counters_request(s->atrn->req, COUNTERS_OUT_ERROR);
	atrn_end(s);
	smtpd_session_reply(s, "451 4.3.0 Unable to process ATRN request now");
	s->state = SMTPD_S_CMD;
	smtpd_session_arm(s, s->srv->conf->command_timeout);
}

/* atrn_pass - one round of copying both ways; true if anything moved. */
static bool
atrn_pass(struct smtpd_session *s)
{
	struct atrn_proxy	*a = s->atrn;
	struct smtp_conn	*conn = s->conn;
	char			 buf[16384];
	size_t			 room, pend;
	ssize_t			 n;
	bool			 moved = false;

	/* The customer to the session process. */
	if (!conn->eof && smtp_conn_avail(conn) < ATRN_BUF &&
	    smtp_conn_fill(conn, ATRN_BUF) > 0)
		moved = true;
	while (!a->peer_eof && smtp_conn_avail(conn) > 0) {
		n = send(a->fd, smtp_conn_data(conn), smtp_conn_avail(conn),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			smtp_conn_consume(conn, (size_t)n);
			a->up += (uint64_t)n;
			moved = true;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		a->peer_eof = true;
	}
	/* The session process to the customer. */
	pend = conn->out->len - conn->outoff;
	while (!a->peer_eof && pend < ATRN_BUF) {
		room = ATRN_BUF - pend;
		n = recv(a->fd, buf, room < sizeof(buf) ? room : sizeof(buf),
		    MSG_DONTWAIT);
		if (n > 0) {
			sbuf_catn(conn->out, buf, (size_t)n);
			a->down += (uint64_t)n;
			pend += (size_t)n;
			moved = true;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		a->peer_eof = true;	/* 0: the session process is done */
	}
	if (smtp_conn_flush(conn) < 0)
		conn->eof = true;
	return moved;
}

bool
atrn_step(struct smtpd_session *s)
{
	const struct conf	*c = s->srv->conf;
	struct atrn_proxy	*a = s->atrn;
	int			 i;
	bool			 moved = false;

	if (s->state == SMTPD_S_ATRN_WAIT)
		return atrn_ack(s);
	for (i = 0; i < ATRN_PASSES && atrn_pass(s); i++)
		moved = true;
	if (moved && a->hup)
		s->deadline = (uint64_t)clock_mono_ms() + SMTPD_CLOSE_MS;
	else if (moved)
		smtpd_session_arm(s, c->smtp_dot_timeout + ATRN_IDLE_EXTRA);
	if (s->conn->eof) {
		log_info("client=%s, user=%s: reversed session ended by the "
		    "site (%llu octets to it, %llu from it)", s->client,
		    s->auth_user, (unsigned long long)a->down,
		    (unsigned long long)a->up);
		atrn_end(s);
		return false;
	}
	if (a->peer_eof) {
		log_info("client=%s, user=%s: reversed session done (%llu "
		    "octets to the site, %llu from it)", s->client,
		    s->auth_user, (unsigned long long)a->down,
		    (unsigned long long)a->up);
		atrn_end(s);
		/* What is buffered still goes out (smtpd.c: CLOSE). */
		s->state = SMTPD_S_CLOSE;
		s->deadline = (uint64_t)clock_mono_ms() + SMTPD_CLOSE_MS;
		return s->conn->outoff < s->conn->out->len;
	}
	atrn_interest(s);
	return true;
}

/* atrn_timeout - the session's deadline passed: no acknowledgement (451,
 * stay), or a silent proxy (false: drop it). */
bool
atrn_timeout(struct smtpd_session *s)
{
	if (s->state == SMTPD_S_ATRN_WAIT) {
		atrn_fail(s, "no answer from the odmr process");
		return true;
	}
	if (s->atrn != NULL && s->atrn->hup)
		log_info("client=%s, user=%s: reversed session over, but the "
		    "site does not read its end (%llu octets to it)",
		    s->client, s->auth_user,
		    (unsigned long long)s->atrn->down);
	else
		log_info("client=%s, user=%s: reversed session timed out",
		    s->client, s->auth_user);
	atrn_end(s);
	return false;
}

/*
 * smtpd_local.c - local injection: `postern enqueue` and sendmail hand
 * their message to the listener over a unix-domain socket in queue_dir,
 * SMTPD_LOCAL_SOCKET, so that it joins the commit thread's group commit
 * (one fsync for all the messages that finish together) instead of
 * paying an LMDB transaction and an fsync of its own. The client's side
 * is tools/inject.c; when the socket is not there or refuses, it stores
 * the message itself as it always did.
 *
 * The socket is one more listener: the client speaks SMTP and the
 * session code serves it with its limits, timeouts, DATA rules and
 * commit. A local session (s->local) differs in three things:
 *
 * - It is trusted as `postern enqueue` is: every recipient is taken (no
 *   relay check, no relay_recipients: smtpd_check_rcpt), because whoever
 *   may connect can write the queue directly anyway.
 * - Its client is "local[uid N]", N from SO_PEERCRED (the kernel's word,
 *   not the client's): in the log and the stored envelope, as direct
 *   enqueue writes it, and the EHLO name does not replace it.
 * - Its trace field is the one direct enqueue writes (smtpd_local_trace),
 *   "Received: by HOST (postern, from userid N)", so that a message is
 *   stored the same either way, but for its date and Message-ID.
 *
 * Who may inject: who may today, and no one else - root and the daemon's
 * user, the only ones who can write queue_dir (0700). The listener makes
 * the socket after the master dropped privileges, so the daemon's user
 * owns it, with mode 0600 inside that 0700 directory; and a peer whose
 * uid is neither (the modes changed by hand, say) is refused at accept
 * and logged. Postfix lets any local user submit (a world-writable
 * maildrop, with the submitter's name in the trace); here that would give
 * every local user unauthenticated relaying to anywhere, which they do not
 * have now: such a user still gets what `postern enqueue` gives them
 * today, a queue they cannot open (EX_TEMPFAIL).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtpd_int.h"

#define SMTPD_LOCAL_BACKLOG	128	/* waiting local clients */
#define SMTPD_LOCAL_ACCEPT_MAX	64	/* accepted per readable event */

/* smtpd_local_path - the socket's path into sun; false if it does not
 * fit (the clients cannot reach it either: they enqueue directly). */
static bool
smtpd_local_path(struct sockaddr_un *sun, const char *queue_dir)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return bsnprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s",
	    queue_dir, SMTPD_LOCAL_SOCKET);
}

int
smtpd_local_open(struct smtpd_server *srv)
{
	struct sockaddr_un	sun;
	mode_t			old;
	int			fd;

	if (!smtpd_local_path(&sun, srv->conf->queue_dir)) {
		log_warnx("%s/%s: path too long: local injection goes "
		    "directly to the queue", srv->conf->queue_dir,
		    SMTPD_LOCAL_SOCKET);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("local socket");
		return -1;
	}
	/* A socket left by a listener that died. */
	(void)unlink(sun.sun_path);
	/* Born 0600: no moment where another user could connect. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("bind %s", sun.sun_path);
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, SMTPD_LOCAL_BACKLOG) == -1) {
		log_warn("listen %s", sun.sun_path);
		(void)unlink(sun.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

void
smtpd_local_close(struct smtpd_server *srv)
{
	struct sockaddr_un	sun;

	if (srv->localfd < 0)
		return;
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->localfd, NULL);
	/* Gone first: a client from now on enqueues directly rather than
	 * being refused. */
	if (smtpd_local_path(&sun, srv->conf->queue_dir))
		(void)unlink(sun.sun_path);
	close(srv->localfd);
	srv->localfd = -1;
}

/* smtpd_local_allowed - root or the daemon's user (see the top). */
static bool
smtpd_local_allowed(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

void
smtpd_local_accept(struct smtpd_server *srv)
{
	struct sockaddr_storage	 ss;
	struct smtpd_session	*s;
	struct ucred		 cr;
	socklen_t		 crl;
	int			 fd, i;

	for (i = 0; i < SMTPD_LOCAL_ACCEPT_MAX; i++) {
		fd = accept4(srv->localfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				smtpd_server_nofd(srv, srv->localfd);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept %s", SMTPD_LOCAL_SOCKET);
			return;
		}
		crl = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == -1) {
			log_warn("SO_PEERCRED");
			close(fd);
			continue;
		}
		/* Refused without a word: the client enqueues directly,
		 * with the rights it has there. */
		if (!smtpd_local_allowed(cr.uid)) {
			log_info("local client uid %ld, pid %ld: refused: "
			    "only root and the daemon's user inject here",
			    (long)cr.uid, (long)cr.pid);
			close(fd);
			continue;
		}
		if ((int)srv->nsessions >= srv->conf->max_connections) {
			log_info("local client uid %ld, pid %ld: refused: "
			    "max_connections", (long)cr.uid, (long)cr.pid);
			close(fd);
			continue;
		}
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = AF_UNIX;
		s = smtpd_session_new(srv, fd, &ss);
		s->local = true;
		s->uid = (long)cr.uid;
		s->mynet = true;	/* not counted per address */
		strl_copy(s->addr, "local", sizeof(s->addr));
		bsnprintf(s->client, sizeof(s->client), "local[uid %ld]",
		    s->uid);
		smtpd_server_enter(srv, s);
	}
}

void
smtpd_local_trace(struct smtpd_session *s, const char *date)
{
	sbuf_catf(s->body, "Received: by %s (postern, from userid %ld);\r\n"
	    "\t%s\r\n", s->srv->conf->myhostname, s->uid, date);
}

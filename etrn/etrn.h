/*
 * etrn.h - the SMTP server: receiving mail (backup MX, authenticated
 * submission, mynetworks), ETRN (RFC 1985), ATRN on odmr_listen (RFC
 * 2645) and TURN.
 *
 * Process model. One listener process runs an epoll event loop over every
 * session, and one commit thread inside it owns the queue's write side.
 * A session that reaches the final dot hands its message to the commit
 * thread and waits; the thread takes every message handed in since its
 * last commit (bounded in count and bytes), stores them in one LMDB
 * transaction with one fsync (group commit), then wakes the loop through an
 * eventfd, and only then do those sessions get their 250. While a commit
 * runs the loop goes on reading and parsing other sessions, so the next
 * batch forms during the fsync: under load the batches grow by themselves
 * and the cost of a commit is shared by every message in it.
 *
 * Why not a process per session (Postfix's smtpd) or a thread per
 * session: group commit needs the sessions that finish together to meet at
 * one writer. With processes that means an IPC hop per message to a
 * committer; with threads, a thread stack and a lock handoff per session.
 * The event loop gives the meeting point for free, uses one stack, and
 * keeps every limit (connections, per-IP counts, timeouts) in one place.
 * The price is that nothing in the loop may block for long: reads and
 * writes to clients are non-blocking (smtp_conn), TLS handshakes are
 * stepped, and the commit with its fsync is the thread's. The loop's own
 * disk work is short: appending to spool files (64 KiB at a time) and
 * reading the files a SIGHUP reload names.
 *
 * Memory. A message body is kept in memory up to SMTPD_SPOOL_THRESHOLD;
 * past that it goes to a spool file in queue_dir/spool, and the commit
 * thread reads it straight into the database pages (qnew.body_fd). A
 * batch is capped at SMTPD_BATCH_BYTES of body, so 100 sessions sending
 * 10 MiB each never need 1 GiB. Spool files of a listener that died are
 * swept when the next one starts: they were never acknowledged.
 *
 * ATRN and TURN: who delivers over the reversed connection. After the 250
 * the listener must become an SMTP client on the same connection, which
 * blocks for as long as the site takes, and the TLS session started there
 * cannot leave the process (OpenSSL cannot hand a live SSL to another
 * process). So the listener keeps the connection, TLS and all, and becomes
 * a byte proxy (atrn.c) between it and one end of a socketpair, bounded
 * to ATRN_BUF octets each way (a side is not read while its buffer is
 * full) and watched by a second epoll set inside the loop; the other end
 * goes with SCM_RIGHTS to posternd's "odmr" child (runner/reverse.c),
 * which forks one process per reversed session (REVERSE_SESSIONS_MAX) to
 * claim the domains' mail and deliver it with the runner's client. Not a
 * delivery worker: they serve the scheduler's short batches one at a
 * time, where a reversed session lasts as long as the site's mail. Not a
 * fork of the listener: it has a thread, and its queue handle must not
 * cross a fork. The cost is one copy of every byte through the listener,
 * which is cheap next to TLS and the site's link. The listener answers
 * only after the session process has acknowledged (451 otherwise), and
 * counts the waiting mail (453) with one read transaction on the bydom
 * index before handing over; the domains being turned are known to the
 * listener (its proxies) and to the odmr process (its children), and
 * either refuses an overlapping ATRN with 451.
 *
 * Files and prefixes. The receive server is smtpd, as in Postfix:
 *
 *	etrn.h		this header: what the rest of postern calls
 *	smtpd_int.h	what the files of etrn/ share (struct smtpd_server,
 *			struct smtpd_session, SMTPD_S_* states)
 *	smtpd.c		the listener process: epoll loop, limits, timers,
 *			signals, reload, and the commit thread
 *	smtpd_session.c	one session: the command table, the state machine,
 *			DATA, STARTTLS, AUTH
 *	smtpd_param.c	the ESMTP parameters of MAIL and RCPT: one
 *			tokenizer, a keyword table per command
 *	smtpd_check.c	the relay decision at RCPT (smtpd_check_rcpt)
 *	smtpd_local.c	local injection: the SMTPD_LOCAL_SOCKET listener,
 *			who may use it, a local session's trace field
 *	etrn_int.h	what the ETRN files share with smtpd
 *	etrn.c		ETRN (RFC 1985): the command, the flush job the
 *			commit thread runs (a session hands it in as it
 *			would a message), the etrn_min_interval table,
 *			authenticated ETRN to the caller
 *	etrn_policy.c	who may ETRN what (etrn_policy and its rules
 *			file), the named queues (etrn_queues)
 *	smtpd_pull.c	postern pull's receiving end: the same session code
 *			and commit thread over the one reversed connection
 *			an ODMR provider delivers on (smtpd_pull_run)
 *	atrn.c		the ODMR profile, ATRN, TURN, the hand-over and the
 *			reversed session's proxy (atrn_, ATRN_)
 *
 * Everything in the smtpd files is smtpd_ or SMTPD_, in the ETRN files
 * etrn_ or ETRN_, in atrn.c atrn_ or ATRN_.
 *
 * What etrn/ takes from below: queue/ (the commit thread's
 * queue_enqueue_group, and ETRN's queue_domain_msgs and queue_flush) and
 * smtp/ (connections, AUTH, configuration, clock); from runner/:
 * route_rcpt_init() (route_policy.h: how a new recipient starts, the same
 * policy `postern enqueue` applies), sched_wake() (runner.h: the
 * scheduler hears of new mail after each commit, and of an ETRN's flush),
 * for ETRN alone, routes_load() and route_caller() (which domains are
 * routed "caller:PORT"), and for ATRN and TURN reverse_handoff() with
 * struct reverse_req (runner.h, in atrn.c: a reversed session to the odmr
 * process).
 */
#ifndef ETRN_H
#define ETRN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"

#define SMTPD_SPOOL_THRESHOLD	(256 * 1024)
#define SMTPD_BATCH_MAX		256		/* messages per commit */
#define SMTPD_BATCH_BYTES	(32 * 1024 * 1024) /* body bytes per commit */
#define SMTPD_DRAIN_SECONDS	30	/* SIGTERM: how long DATA may finish */
/* Local injection: the listener's unix-domain socket in queue_dir, where
 * `postern enqueue` and sendmail hand it their messages (smtpd_local.c,
 * tools/inject.c). */
#define SMTPD_LOCAL_SOCKET	"inject.sock"

/*
 * smtpd_server_run - the listener process: serve the listening sockets
 * (non-blocking, already bound; the last nodmr of them are odmr_listen's,
 * where only the ODMR profile is served) until SIGTERM, then stop
 * accepting, let sessions in DATA and reversed ones finish (at most
 * SMTPD_DRAIN_SECONDS) and return the exit status. SIGHUP reloads the configuration from conf_file (a bad file is
 * logged and the old configuration kept). Takes ownership of conf.
 */
int	smtpd_server_run(struct conf *conf, const char *conf_file,
	    const int *lfds, size_t nlfds, size_t nodmr);

/*
 * etrn_policy_load - etrn_policy (and its rules file) and etrn_queues of
 * c, as the listener reads them at start and on SIGHUP (etrn_policy.c);
 * `postern check` calls it too. NULL with "why", "file:line: why" or
 * "etrn_queues: why" in err. Reads a local file; never logs.
 */
struct etrn_policy;
struct etrn_policy *etrn_policy_load(const struct conf *c, char *err,
	    size_t errsz);
void	 etrn_policy_free(struct etrn_policy *);

/*
 * postern pull: after ATRN's 250 the site is the SMTP server on the
 * connection it opened (RFC 2645 §5.3). smtpd_pull_run() serves that one
 * connection with the listener's own session code (DATA rules, limits,
 * parameters, Received:, spool files) and commit thread (each message
 * stored with fsync before its 250), and wakes the site's scheduler after
 * each commit so that the mail goes on by the site's routes.
 *
 * Who may send what: the provider authenticated nothing about itself to
 * us (SCRAM aside), and whoever holds the connection could try to use the
 * site as a relay. So recipients are taken only for the pulled domains:
 * the --domain list exactly, or without one the site's relay_domains and
 * hold_domains, which the site's SMTP listener takes from anybody anyway.
 * Any other recipient gets 450 4.7.1: it stays queued at the provider (a
 * 5xx would bounce mail the site merely forgot to list).
 */
struct smtp_conn;

struct smtpd_pull_opts {
	const struct conf_list	*domains;	/* NULL or empty: relay_domains
						 * and hold_domains */
	/* Called about 5 times a second and at each commit: messages
	 * stored, and bytes received (stored ones and the one under way). */
	void			(*progress)(void *arg, uint64_t msgs,
				    uint64_t bytes);
	void			*progress_arg;
};

struct smtpd_pull_result {
	uint64_t	messages;	/* stored (with fsync) */
	uint64_t	bytes;		/* of those, as received */
	bool		quit;		/* the provider said QUIT: clean */
	uint64_t	refused_full;	/* refused with 452 4.3.1: the
					 * local queue was full */
	char		why[256];	/* how it ended otherwise */
};

/*
 * smtpd_pull_run - serve conn (taken over: freed here) as the SMTP server
 * until the provider's QUIT, the end of file, an error or a timeout;
 * every message the provider got a 250 for is in the queue. Blocks.
 * Returns 0, or -1 when the queue cannot be opened (why says it; nothing
 * was said on conn but a 421).
 */
int	smtpd_pull_run(struct conf *conf, struct smtp_conn *conn,
	    const struct smtpd_pull_opts *, struct smtpd_pull_result *);

#endif

/*
 * etrn.h - the SMTP server: receiving mail (backup MX, authenticated
 * submission, mynetworks), ETRN, and later TURN and ATRN.
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
 *	etrn_int.h	what the ETRN files share with smtpd
 *	etrn.c		ETRN (RFC 1985): the command, the flush job the
 *			commit thread runs (a session hands it in as it
 *			would a message), the etrn_min_interval table,
 *			authenticated ETRN to the caller
 *	etrn_policy.c	who may ETRN what (etrn_policy and its rules
 *			file), the named queues (etrn_queues)
 *
 * Everything in the smtpd files is smtpd_ or SMTPD_, in the ETRN files
 * etrn_ or ETRN_. The atrn_ prefix is kept for TURN and ATRN.
 *
 * What etrn/ takes from below: queue/ (the commit thread's
 * queue_enqueue_group, and ETRN's queue_domain_msgs and queue_flush) and
 * smtp/ (connections, AUTH, configuration, clock); from runner/:
 * route_rcpt_init() (route_policy.h: how a new recipient starts, the same
 * policy `postern enqueue` applies), sched_wake() (runner.h: the
 * scheduler hears of new mail after each commit, and of an ETRN's flush),
 * and, for ETRN alone, routes_load() and route_caller() (which domains
 * are routed "caller:PORT").
 */
#ifndef ETRN_H
#define ETRN_H

#include <stddef.h>

#include "smtp.h"

#define SMTPD_SPOOL_THRESHOLD	(256 * 1024)
#define SMTPD_BATCH_MAX		256		/* messages per commit */
#define SMTPD_BATCH_BYTES	(32 * 1024 * 1024) /* body bytes per commit */
#define SMTPD_DRAIN_SECONDS	30	/* SIGTERM: how long DATA may finish */

/*
 * smtpd_server_run - the listener process: serve the listening sockets
 * (non-blocking, already bound) until SIGTERM, then stop accepting, let
 * sessions in DATA finish (at most SMTPD_DRAIN_SECONDS) and return the exit
 * status. SIGHUP reloads the configuration from conf_file (a bad file is
 * logged and the old configuration kept). Takes ownership of conf.
 */
int	smtpd_server_run(struct conf *conf, const char *conf_file,
	    const int *lfds, size_t nlfds);

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

#endif

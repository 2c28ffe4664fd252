/*
 * smtpd_int.h - what the smtpd files of etrn/ share (see etrn.h).
 */
#ifndef SMTPD_INT_H
#define SMTPD_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "etrn.h"
#include "queue.h"

enum smtpd_state {
	SMTPD_S_CMD,		/* reading commands */
	SMTPD_S_DATA,		/* reading message content */
	SMTPD_S_BDAT,		/* reading (or discarding) a BDAT chunk's
				 * octets (RFC 3030) */
	SMTPD_S_TLS,		/* TLS handshake in progress */
	SMTPD_S_AUTH,		/* reading SASL responses */
	SMTPD_S_AUTH_WAIT,	/* a failed AUTH: its 535 waits (deadline) */
	SMTPD_S_COMMIT,		/* message handed to the commit thread */
	SMTPD_S_CLOSE,		/* flush the output, then close */
	SMTPD_S_ATRN_WAIT,	/* ATRN/TURN handed over: waiting for the
				 * odmr session process (atrn.c) */
	SMTPD_S_PROXY,		/* reversed: copying bytes both ways */
};

/*
 * Replies that wait unsent past this bound stop the reading of a session
 * until they drain: a client that pipelines without reading cannot make us
 * hold its replies (RSET is 6 octets in, 14 out). The command timeout
 * keeps running meanwhile, so a client that never reads is dropped.
 */
#define SMTPD_OUT_MAX		(64 * 1024)
#define smtpd_session_out_blocked(s)					\
	((s)->conn->out->len - (s)->conn->outoff >= SMTPD_OUT_MAX)
#define SMTPD_CLOSE_MS		10000	/* for a last reply to go out */
#define SMTPD_STRESS_PCT		80	/* of max_connections: stress */
/* Milliseconds of a configured duration, clamped (no overflow). */
#define SMTPD_SECS_MAX		((time_t)10 * 366 * 86400)
#define smtpd_secs_ms(t)						\
	((uint64_t)((t) < SMTPD_SECS_MAX ? (t) : SMTPD_SECS_MAX) * 1000)

/* A recipient of the transaction under way. */
struct smtpd_rcpt {
	char		*addr;		/* owned */
	char		*orcpt;		/* owned, or NULL: none */
	uint8_t		 notify;	/* QRCPT_NOTIFY_* */
};

struct smtpd_server;
struct etrn_job;
struct etrn_conf;
struct etrn_rate;

struct smtpd_session {
	struct smtpd_server	*srv;
	struct smtp_conn	*conn;
	struct smtpd_session	*next, *prev;
	enum smtpd_state		 state;
	uint32_t		 evmask;	/* epoll events registered */
	uint64_t		 deadline;	/* clock_mono_ms() */
	uint64_t		 since;		/* when that timeout began */
	uint64_t		 serial;	/* for logs before a queue id */
	char			 addr[INET6_ADDRSTRLEN];
	char			 client[400];	/* "helo[addr]" */
	bool			 mynet;
	bool			 greeted_early;	/* pre-greeting input */
	char			 helo[256];
	bool			 quit;		/* the client said QUIT */
	/* pull: the queue was full; 421 to the next command. */
	bool			 full_close;
	bool			 esmtp;
	bool			 tls;
	char			*auth_user;
	int			 auth_failures;
	bool			 auth_blocked;	/* the address is, after it */
	struct auth_sasl	*sasl;
	int			 errors;
	int			 junk;		/* junk commands since the last
						 * message (junk_command_limit) */
	bool			 in_commit_list;	/* the thread has it */
	bool			 dead;		/* dropped: on srv->dropped */
	struct smtpd_session	*fnext;		/* on srv->dropped */
	/* The transaction. */
	bool			 in_mail;
	char			 sender[QUEUE_ADDR_MAX + 1];
	uint32_t		 mflags;	/* QMSG_F_* */
	bool			 smtputf8;
	char			 envid[QUEUE_ENVID_MAX + 1];
	/* The recipients as given (a struct qrcpt is 2.8 KB: max_recipients
	 * of them in each of max_connections sessions would be 280 MB);
	 * made into qrcpt only for the commit (smtpd_session_rcpt_clear). */
	struct smtpd_rcpt	*rcpt;
	size_t			 nrcpt, rcptcap;
	struct qrcpt		*qrcpt;		/* qn.rcpt, while committed */
	/* DATA. */
	struct sbuf		*body;		/* in memory, or to spool */
	int			 spool_fd;
	char			 spool_path[4200];
	uint64_t		 body_len;	/* bytes stored so far */
	uint64_t		 trace_len;	/* of which our Received: */
	bool			 prev_crlf;	/* last line ended in CRLF */
	bool			 in_headers;
	bool			 skipping;	/* inside an over-long line */
	int			 received;	/* Received: fields seen */
	const char		*data_err;	/* the reply after the dot */
	/* BDAT (RFC 3030): the content of the transaction comes in chunks,
	 * through the same checks, store and commit as DATA's. */
	bool			 bdat;		/* its content began by BDAT */
	bool			 bdat_last;	/* the chunk read is LAST */
	bool			 bdat_discard;	/* its octets are thrown away
						 * (refused; answered) */
	bool			 bdat_failed;	/* a chunk was refused: the
						 * chunks pipelined after it
						 * are discarded too, until
						 * RSET, MAIL or EHLO */
	bool			 bdat_cr;	/* the last octet was a CR */
	uint64_t		 bdat_left;	/* octets of the chunk to come */
	uint64_t		 bdat_col;	/* octets of the line so far */
	int			 bdat_hdr;	/* "Received:" octets matched
						 * at the line's start, or -1 */
	uint64_t		 bdat_deadline;	/* the message's: data_timeout
						 * from the first BDAT */
	/* The commit. */
	struct qnew		 qn;
	struct etrn_job		*etrn;		/* or an ETRN's flush */
	struct smtpd_session	*cnext;
	/* ODMR (atrn.c). */
	bool			 odmr;		/* accepted on odmr_listen */
	struct atrn_proxy	*atrn;		/* handed over or reversed */
	/* Local injection (smtpd_local.c). */
	bool			 local;		/* on SMTPD_LOCAL_SOCKET */
	long			 uid;		/* its peer's, SO_PEERCRED */
};

struct smtpd_server {
	struct conf		*conf;
	const char		*conf_file;
	struct conf		**old_confs;	/* kept until exit: sessions */
	size_t			 nold;
	struct queue		*q;
	struct auth_db		*auth;
	struct auth_throttle	*throttle;	/* AUTH failures by address */
	SSL_CTX			*tls;
	struct etrn_conf	*etrn;		/* etrn_policy, routes_file */
	struct etrn_rate	*etrn_rate;	/* etrn_min_interval */
	char			**known_rcpts;	/* relay_recipients, sorted */
	size_t			 nknown;
	int			 epfd, sigfd, evfd;
	int			 wakefd;	/* sends to sched's wake.sock */
	const int		*lfds;
	size_t			 nlfds;
	size_t			 nodmr;		/* the last nodmr of lfds:
						 * odmr_listen */
	int			 atrn_epfd;	/* the proxies' socketpair
						 * ends (atrn.c) */
	int			 localfd;	/* SMTPD_LOCAL_SOCKET, or -1 */
	bool			 stopping;
	uint64_t		 stop_deadline;
	struct smtpd_session	*sessions;
	size_t			 nsessions;
	/* Dropped sessions, freed after the epoll batch (its later events
	 * may name them) and once the commit thread is done with them. */
	struct smtpd_session	*dropped;
	bool			 stress;	/* near max_connections */
	/* Out of file descriptors (smtpd.c): the spare one (/dev/null, or
	 * -1) is given up to accept a client and refuse it; when even that
	 * fails the listeners are left out of epoll until accept_resume. */
	int			 spare_fd;
	uint64_t		 accept_resume;	/* clock_mono_ms(); 0: on */
	uint64_t		 nofd_refused;	/* since the last log line */
	uint64_t		 nofd_logged;	/* when that was */
	uint64_t		 serial;
	uint64_t		 spool_seq;
	char			 spool_dir[4100];
	/* Commit thread. */
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct smtpd_session	*todo, **todo_tail;
	struct smtpd_session	*done;
	bool			 thread_stop;
	/* postern pull (smtpd_pull.c): the one session is the provider's
	 * reversed one; NULL in the daemon. Counted for both. */
	const struct smtpd_pull_opts *pull;
	uint64_t		 nstored, nstored_bytes;
	uint64_t		 nfull;		/* 452: queue full */
};

/* smtpd.c */
void	 smtpd_commit_submit(struct smtpd_server *, struct smtpd_session *);
bool	 smtpd_rcpt_known(const struct smtpd_server *, const char *addr);
/* The loop's pieces, shared with smtpd_pull.c's loop of one session:
 * the commit thread's main, a session's step (false: drop it), its drop
 * and the reaping of dropped ones, the commit thread's results (the
 * eventfd fired), the timers (each second), relay_recipients. */
void	*smtpd_commit_main(void *srv);
bool	 smtpd_server_step(struct smtpd_server *, struct smtpd_session *,
	    bool readable);
void	 smtpd_server_drop(struct smtpd_server *, struct smtpd_session *);
/* smtpd_server_enter - a new session joins the loop (the list, epoll)
 * and takes its first step; dropped at once if that fails. */
void	 smtpd_server_enter(struct smtpd_server *, struct smtpd_session *);
void	 smtpd_server_reap(struct smtpd_server *);
/* smtpd_server_nofd - accept() on lfd failed with EMFILE, ENFILE, ENOBUFS
 * or ENOMEM: refuse the waiting clients with 421 through the spare
 * descriptor, or stop accepting for a moment; logged at most once per
 * SMTPD_NOFD_LOG_MS. */
void	 smtpd_server_nofd(struct smtpd_server *, int lfd);
void	 smtpd_server_committed(struct smtpd_server *);
void	 smtpd_server_timers(struct smtpd_server *);
int	 smtpd_server_load_known(struct smtpd_server *, const char *file);
void	 smtpd_server_free_known(struct smtpd_server *);

/* smtpd_pull.c */
/* smtpd_pull_takes - does this pull take mail for dom: one of its
 * --domain list (exactly), or without one, relay_domains/hold_domains? */
bool	 smtpd_pull_takes(const struct smtpd_pull_opts *,
	    const struct conf *, const char *dom);
/* smtpd_pull_verb - may the provider use this command on the reversed
 * connection? Mail only: not ETRN, ATRN, TURN, AUTH, STARTTLS... */
bool	 smtpd_pull_verb(const char *verb);

/* smtpd_local.c - local injection over SMTPD_LOCAL_SOCKET. */
/* smtpd_local_open - make the socket in queue_dir (mode 0600, as the
 * daemon's user); its listening fd, or -1 (logged: clients then enqueue
 * directly). */
int	 smtpd_local_open(struct smtpd_server *);
/* smtpd_local_close - out of epoll, unlinked, closed; twice is fine. */
void	 smtpd_local_close(struct smtpd_server *);
/* smtpd_local_accept - the waiting clients: root and the daemon's user
 * become local sessions, others are refused (logged). */
void	 smtpd_local_accept(struct smtpd_server *);
/* smtpd_local_trace - a local session's Received: field, as direct
 * enqueue writes it, into s->body. */
void	 smtpd_local_trace(struct smtpd_session *, const char *date);

/* smtpd_check.c */
enum smtpd_verdict {
	SMTPD_OK,
	SMTPD_REJECT_UNLISTED,	/* ours, not in relay_recipients: 550 5.1.1 */
	SMTPD_REJECT_RELAY,	/* not ours, and the client may not relay:
				 * 554 5.7.1 */
	SMTPD_REJECT_PULL,	/* postern pull: not a domain pulled here:
				 * 450 4.7.1 (stays at the provider) */
};
/* smtpd_check_rcpt - may the session's client send to `a` (a mailbox with
 * a domain)? Never fails; the caller logs and replies. */
enum smtpd_verdict smtpd_check_rcpt(const struct smtpd_session *,
	    const struct smtp_addr *a);

/* smtpd_param.c - ESMTP parameters; each function replies to an error
 * itself and returns -1, else 0. */
struct smtpd_mail_param {
	bool		has_size;
	uint64_t	size;		/* SIZE=, when has_size */
};
struct smtpd_rcpt_param {
	uint8_t		notify;		/* QRCPT_NOTIFY_*, 0: none */
	char		orcpt[QUEUE_ORCPT_MAX + 1];	/* "type;xtext" or "" */
};
/* smtpd_param_mail_utf8 - whether the parameters after MAIL's path (arg
 * starts at the path) include SMTPUTF8: it decides how the path is read. */
bool	 smtpd_param_mail_utf8(const char *arg);
/* smtpd_param_mail - MAIL's parameters (split in place): sets the
 * session's mflags, smtputf8 and envid, returns SIZE in *mp. */
int	 smtpd_param_mail(struct smtpd_session *, char *params,
	    struct smtpd_mail_param *mp);
/* smtpd_param_rcpt - RCPT's parameters (split in place) into *rp. */
int	 smtpd_param_rcpt(struct smtpd_session *, char *params,
	    struct smtpd_rcpt_param *rp);

/* atrn.c - ATRN, TURN and the proxy of a reversed session. */
#define ATRN_BUF	(64 * 1024)	/* unsent octets each way, at most */
/* atrn_odmr_verb - is the command part of the ODMR profile? */
bool	 atrn_odmr_verb(const char *verb);
void	 atrn_cmd_atrn(struct smtpd_session *, char *arg);
void	 atrn_cmd_turn(struct smtpd_session *, char *arg);
/* atrn_reading - in SMTPD_S_PROXY: is there room to read the customer? */
bool	 atrn_reading(const struct smtpd_session *);
/* atrn_step - move what can move in SMTPD_S_ATRN_WAIT or SMTPD_S_PROXY;
 * false: drop the session now. */
bool	 atrn_step(struct smtpd_session *);
/* atrn_event - an event of the proxy's socketpair end (its epoll mask). */
void	 atrn_event(struct smtpd_session *, uint32_t events);
/* atrn_fail - the hand-over failed: 451, and the session goes on. */
void	 atrn_fail(struct smtpd_session *, const char *why);
/* atrn_timeout - the deadline passed; false: drop the session. */
bool	 atrn_timeout(struct smtpd_session *);
/* atrn_free - close the proxy's socketpair end, if any. */
void	 atrn_free(struct smtpd_session *);

/* smtpd_session.c */
struct smtpd_session *smtpd_session_new(struct smtpd_server *, int fd,
	    const struct sockaddr_storage *);
/* smtpd_session_adopt - a session over an established connection (TLS
 * and all: postern pull's reversed one), greeted like a new one; input
 * already waiting is a client that talked before the greeting. */
struct smtpd_session *smtpd_session_adopt(struct smtpd_server *,
	    struct smtp_conn *, const struct sockaddr_storage *);
/* smtpd_session_input - process what was read; false when the session
 * must be closed now. */
bool	 smtpd_session_input(struct smtpd_session *);
void	 smtpd_session_committed(struct smtpd_session *);
/* smtpd_session_in_message - reading a message's content: in DATA, in a
 * BDAT chunk, or between the chunks of a BDAT transaction. */
#define smtpd_session_in_message(s)					\
	((s)->state == SMTPD_S_DATA || (s)->state == SMTPD_S_BDAT ||	\
	(((s)->state == SMTPD_S_CMD) && (s)->bdat))
/* smtpd_session_arm - a timeout of `secs` from now (command or DATA). */
void	 smtpd_session_arm(struct smtpd_session *, time_t secs);
void	 smtpd_session_timeout(struct smtpd_session *);
/* smtpd_session_auth_resume - the delay after a failed AUTH is over: send
 * its reply and read commands again. */
void	 smtpd_session_auth_resume(struct smtpd_session *);
void	 smtpd_session_shutdown(struct smtpd_session *);
/* smtpd_session_give_up - 421 4.4.2 with why, then close (and log why). */
void	 smtpd_session_give_up(struct smtpd_session *, const char *why);
/* smtpd_session_reply - queue a reply line. A format that starts with 4
 * or 5 counts towards max_errors: give error replies as literal formats
 * ("%s" with a 5xx argument does not count). */
void	 smtpd_session_reply(struct smtpd_session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	 smtpd_session_free(struct smtpd_session *);

#endif

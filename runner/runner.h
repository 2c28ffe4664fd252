/*
 * runner.h - routing, the scheduler and the delivery workers.
 *
 * This folder decides where mail goes and when, and takes it there.
 *
 *	route.c		routes_file, relayhost, and which recipients wait for
 *			their site (hold) instead of a timer
 *	route_auth.c	relayhost_auth_file, the relayhost's credentials
 *	route_dns.c	MX, A and AAAA through c-ares (RFC 5321 §5.1, RFC
 *			7505 null MX, backup-MX self-exclusion), cached for
 *			the records' TTL
 *	route_sts.c	MTA-STS (RFC 8461): the TXT record, the policy
 *			from the queue's cache or fetched over HTTPS
 *			(route_sts_fetch.c, libcurl), parsed by
 *			route_sts_parse.c (route_sts.h)
 *	route_tlsa.c	DANE's DNS (RFC 7672 §2.2): MX, A and TLSA with
 *			the AD bit through the validating resolver in
 *			dns_servers, a TLS level for each MX host
 *			(route_tlsa.h, with smtpc_dane.c)
	route_ares.c	the c-ares channel driven with poll(2) until its
			queries are answered or a deadline: route_dns.c's
			and route_tlsa.c's (route_ares.h)
 *	smtpc.c		the ESMTP client's connection: connect, greeting,
 *			EHLO/HELO, commands and replies (smtp/smtp_reply.c)
 *	smtpc_tls.c	its STARTTLS, on one client SSL_CTX per process
 *	smtpc_dane.c	its DANE: the TLSA records to OpenSSL's verifier
 *	smtpc_auth.c	its AUTH: SCRAM-SHA-256 > CRAM-MD5 > PLAIN/LOGIN
 *			(these only inside verified TLS)
 *	smtpc_send.c	one transaction: MAIL, RCPT..., DATA (PIPELINING,
 *			SIZE, 8BITMIME, SMTPUTF8, DSN), the message
 *			dot-stuffed (smtp/smtp_dot.c), one result a recipient
 *			(smtpc_int.h is what the four share)
 *	sched.c		the scheduler: claims due recipients from queue/,
 *			groups them by next hop, paces them to the workers,
 *			backs off whole destinations, renews leases; the
 *			wake socket
 *	worker.c	a delivery worker process: one batch at a time over a
 *			socketpair, connection reuse per next hop, one commit
 *			a batch, each message's results journaled at once in
 *			memory shared with sched (struct wjournal)
 *	runner_result.c	the rules for a recipient's result and backoff
 *	runner_mem.c	keeps a runner's mapped queue file bounded
 *	dlog.c		the one delivery log line per recipient and attempt
 *			(runner_int.h is what sched, the workers and these
 *			share)
 *	runner_bounce.c	the queue's report hook: each round's failures
 *			(delays, success notices) become one DSN (bounce/)
 *			enqueued in the transaction that records them
 *	site.c		the held sites (hold_domains, routes_file hold and
 *			caller entries) with their backlog and last seen
 *	notify.c	the "notify" process posternd runs: runs
 *			site_notify_command when a held site's mail piles up
 *	reverse.c	ODMR/ATRN and TURN delivery over a reversed
 *			connection: the "odmr" process posternd runs, which
 *			takes sessions from the listener (reverse_handoff)
 *			and forks one process per session that claims the
 *			domains' mail and sends it with smtpc_attach and
 *			smtpc_send (reverse_serve)
 *
 * Data flow: sched claims (queue_claim_due) -> batch per next hop ->
 * worker routes, connects, delivers, journals each message's results ->
 * worker records the batch's results (queue_claim_result; the report hook
 * adds their DSNs to that transaction) and reports to sched -> sched frees
 * the hop's slot and learns whether the hop is down. A worker that dies
 * first: sched records its journal and hands back the rest. posternd runs sched as a child; `postern
 * run` runs the same code in the foreground.
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "queue.h"
#include "route_policy.h"
#include "smtp.h"

/* ------------------------------------------------------------------ */
/* route.c */

/* route_rcpt_init (how a new recipient starts): route_policy.h. */

enum route_kind {
	ROUTE_MX,		/* MX of the recipient's domain */
	ROUTE_MXHOST,		/* MX (or A) of a given name */
	ROUTE_HOST,		/* [host]:port, no MX lookup */
	ROUTE_HOLD,		/* keep until the site asks */
	ROUTE_CALLER,		/* keep; authenticated ETRN delivers to the
				 * caller's address on `port` */
};

struct route {
	enum route_kind	 kind;
	char		 host[256];	/* ROUTE_MXHOST/HOST: name or IP */
	int		 port;		/* 0: smtp_port */
	enum conf_tls	 tls;		/* the TLS policy for this hop */
	bool		 relayhost;	/* via relayhost: AUTH if configured */
	bool		 no_sts;	/* routes_file mta-sts=no: no MTA-STS
					 * for this hop (route_sts.h) */
	char		 key[300];	/* next-hop key, for grouping */
};

struct routes;

/* routes_load - parse routes_file (NULL: none). Lines: DOMAIN (or .PARENT
 * for its subdomains) then [host]:port, [host], host[:port] (its MX),
 * "mx", "hold" or "caller:PORT", then optional
 * "tls=none|may|encrypt|dane" and "mta-sts=yes|no", in any order. NULL
 * and "file:line: why" in err on an error. */
struct routes *routes_load(const char *file, char *err, size_t errsz);
void	 routes_free(struct routes *);
/* route_lookup - the route for a domain: routes_file (exact, then the
 * nearest .parent), else relayhost (not for relay_domains), else MX;
 * hold_domains are ROUTE_HOLD. Never blocks. */
void	 route_lookup(const struct conf *, const struct routes *,
	    const char *domain, struct route *);
/* route_release - the route of a held recipient once released (flush,
 * ETRN, ATRN): its routes_file entry when there is one ("hold" and
 * "caller" entries aside), else its MX; never relayhost. Never blocks. */
void	 route_release(const struct conf *, const struct routes *,
	    const char *domain, struct route *);
/* route_to_caller - for a domain whose routes_file entry is "caller:PORT"
 * and a caller's IP address (an authenticated ETRN's client): r becomes
 * [caller]:PORT (ROUTE_HOST, its own next-hop key) and true; false (r
 * untouched) for any other entry or a caller that is not an IP. */
bool	 route_to_caller(const struct conf *, const struct routes *,
	    const char *domain, const char *caller, struct route *);
/* route_caller - is domain routed "caller:PORT" (its entry, the exact
 * name or the nearest .parent)? With sub, an entry of any name below it
 * counts too (ETRN @domain). NULL routes: false. */
bool	 route_caller(const struct routes *, const char *domain, bool sub);
/* route_caller_below - is a name strictly below domain routed
 * "caller:PORT" (an "x.domain", ".domain" or ".x.domain" entry)? */
bool	 route_caller_below(const struct routes *, const char *domain);
/* routes_walk_held - fn for each "hold" and "caller" entry's domain (lower
 * case; ".parent" with its dot), in domain order. NULL routes: none. */
void	 routes_walk_held(const struct routes *,
	    void (*fn)(void *arg, const char *domain), void *arg);

/* ------------------------------------------------------------------ */
/* site.c - the held sites: which domains wait for their site, and what
 * waits for each (`postern stats`, the notices). */

#define SITE_MAX	10000	/* held domains looked at; more are left
				 * out (and said so) */

struct site {
	char		 domain[QUEUE_ADDR_MAX + 2];	/* ".parent": below */
	struct qbacklog	 bl;
	int64_t		 seen;		/* last ETRN/ATRN; 0: never */
};

/* site_list - the held domains: hold_domains, then routes_file's "hold"
 * and "caller" entries not listed already, lower case, at most SITE_MAX;
 * *out is malloc'd (free it), *n its entries. Returns true when some
 * were left out. Never blocks. */
bool	 site_list(const struct conf *, const struct routes *,
	    struct site **out, size_t *n);
/* site_fill - each site's backlog (queue_domain_backlog) and when it was
 * last seen (queue_site_walk: the latest of the domain's own record and,
 * for ".parent", its subdomains' and an ETRN @parent's). Read
 * transactions only; 0 or a QUEUE_E_* code (queue_errmsg). */
int	 site_fill(struct queue *, struct site *, size_t n);

/* ------------------------------------------------------------------ */
/* notify.c - "mail is waiting" notices (site_notify_command). */

#define NOTIFY_ARGV_MAX		32	/* words of site_notify_command */

/*
 * notify_serve - the notify process: check the held sites every half
 * site_notify_interval or site_notify_age (1 s to 60 s) and run site_notify_command for each
 * that is due a notice, each run killed (its process group) after
 * site_notify_timeout. Without a command it only waits. Runs until SIGTERM;
 * returns the exit status. Blocks only in poll and short read
 * transactions; never waits for a command.
 */
int	 notify_serve(struct conf *);

/* ------------------------------------------------------------------ */
/* route_auth.c */

#define ROUTE_AUTH_USER_MAX	255
#define ROUTE_AUTH_PASS_MAX	512

/*
 * route_auth_load - read relayhost_auth_file: '#' comments, blank lines
 * and USER:PASSWORD lines, the first of which is the credential; every
 * line must be one of these. Returns 0 with *user and *pass malloc'd (give
 * them back with route_auth_free, which wipes them), or -1 with "file:line:
 * why" or "file: why" in err. Reads a local file; never logs.
 */
int	 route_auth_load(const char *file, char **user, char **pass,
	    char *err, size_t errsz);
void	 route_auth_free(char **user, char **pass);

/* ------------------------------------------------------------------ */
/* route_dns.c */

#define ROUTE_ADDR_MAX	16

struct route_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 host[256];	/* the MX name, or the IP */
	int			 pref;
};

enum {
	ROUTE_OK	= 0,
	ROUTE_E_TEMP	= -1,	/* SERVFAIL, timeout: defer, 4.4.3 */
	ROUTE_E_NXDOMAIN = -2,	/* the domain does not exist: 5.1.2 */
	ROUTE_E_NULLMX	= -3,	/* RFC 7505 null MX: 5.1.10 */
	ROUTE_E_LOOP	= -4,	/* we are its best MX: 5.4.6 */
	ROUTE_E_NOADDR	= -5,	/* no usable address: 5.4.4 */
};

struct route_dns;

/* route_dns_new - a c-ares channel (dns_servers, if set, else the system
 * resolver) with an answer cache. NULL and a reason on error. */
struct route_dns *route_dns_new(const struct conf *, char *err, size_t errsz);
void	 route_dns_free(struct route_dns *);
/* route_dns_server_ok - is s a dns_servers entry route_dns_new takes? */
bool	 route_dns_server_ok(const char *s);
/*
 * route_dns_resolve - the addresses to try for route r toward domain, in
 * order: MX by preference, random among equals, each MX's A/AAAA; the
 * domain's own A/AAAA only when it has no MX; when myhostname or a
 * my_names entry is among the MX hosts, only strictly more preferred ones
 * are kept. Blocks up to timeout_ms driving c-ares. Returns ROUTE_OK with
 * *n > 0 addresses, or a ROUTE_E_* code with an x.y.z status and a short
 * reason for the log and the DSN.
 */
int	 route_dns_resolve(struct route_dns *, const struct route *,
	    const char *domain, struct route_addr *out, size_t max, size_t *n,
	    char status[16], char *why, size_t whysz, int timeout_ms);

/* ------------------------------------------------------------------ */
/* smtpc.c, smtpc_tls.c, smtpc_auth.c, smtpc_send.c - the ESMTP client. */

struct smtpc;
struct route_tlsa;

/* An MTA-STS policy's mode (RFC 8461 §5; route_sts.h). */
enum route_sts_mode {
	ROUTE_STS_NONE,		/* no policy, or "mode: none" */
	ROUTE_STS_TESTING,	/* deliver as ever, log what would fail */
	ROUTE_STS_ENFORCE,	/* matching MX, STARTTLS, verified cert */
};

struct smtpc_opts {
	const char	*helo;		/* our EHLO name (myhostname) */
	enum conf_tls	 tls;		/* none, may, encrypt, dane */
	const struct route_tlsa *dane;	/* dane: each host's TLSA records
					 * (route_tlsa.h); NULL: every
					 * host as with may */
	const char	*tls_ca_file;	/* verify against it (NULL: the
					 * system's store) */
	enum route_sts_mode sts;	/* MTA-STS: enforce makes STARTTLS
					 * and a certificate verified for
					 * the MX host (TLS 1.2+) a
					 * condition; testing logs what
					 * would fail (not with tls none) */
	const char	*sts_domain;	/* its policy domain, for the log */
	const char	*tls_name;	/* the certificate must name this
					 * host (or IP); NULL: the host
					 * connected to */
	const char	*auth_user;	/* AUTH: SCRAM-SHA-256, else
					 * CRAM-MD5, else PLAIN/LOGIN,
					 * the first the server offers;
					 * only over TLS with a verified
					 * certificate (4.7.5 otherwise)
					 * unless auth_challenge_ok */
	const char	*auth_pass;
	bool		 auth_challenge_ok;	/* SCRAM-SHA-256 and CRAM-MD5
					 * may go without verified TLS:
					 * they send no password (the
					 * site's commands; never the
					 * delivery path) */
	int		 connect_timeout;	/* s */
	int		 cmd_timeout;		/* s: greeting, EHLO, MAIL, RCPT */
	int		 data_timeout;		/* s: DATA 354, each block */
	int		 dot_timeout;		/* s: the final dot, >= 600 */
	uint64_t	 bdat_min_size;		/* BDAT (RFC 3030) for messages
					 * of this size or more, to a
					 * server with CHUNKING; 0: DATA
					 * always (a BINARYMIME message
					 * goes by BDAT all the same) */
};

/* One recipient in a transaction, and its result. */
struct smtpc_rcpt {
	const char	*addr;
	const char	*orcpt;		/* "" or NULL: none */
	uint8_t		 notify;	/* QRCPT_NOTIFY_* */
	int		 code;		/* out: reply code, 0 = not tried */
	char		 status[16];	/* out: x.y.z */
	char		 reply[QUEUE_REPLY_MAX + 1];	/* out: cleaned */
};

/* smtpc_body_fn - the next piece of the stored message (CRLF lines);
 * *len 0 at the end; -1 on a local error. */
typedef int smtpc_body_fn(void *arg, const char **data, size_t *len);
/* smtpc_rewind_fn - start the message again from its first piece; 0, or
 * -1 when it cannot. */
typedef int smtpc_rewind_fn(void *arg);

struct smtpc_msg {
	const char		*sender;	/* "" for <> */
	uint32_t		 flags;		/* QMSG_F_* */
	const char		*envid;
	uint64_t		 size;
	smtpc_body_fn		*body;
	smtpc_rewind_fn		*rewind;	/* to read the header before
						 * DATA (a server without
						 * SMTPUTF8); NULL: cannot,
						 * and an SMTPUTF8 message
						 * is not sent there */
	void			*body_arg;
	struct smtpc_rcpt	*rcpt;
	size_t			 nrcpt;
};

/*
 * smtpc_open - connect to the first address that answers, read the
 * greeting, EHLO (HELO fallback), STARTTLS per policy, AUTH when asked.
 * On failure returns NULL with the status ("4.4.1" connect, "4.7.5" TLS
 * required but failed, or credentials to send and no verified TLS,
 * "4.7.8" AUTH refused...), the last reply or reason
 * in why, and *permanent set when retrying elsewhere cannot help.
 */
struct smtpc *smtpc_open(const struct route_addr *, size_t n,
	    const struct smtpc_opts *, char status[16], char *why,
	    size_t whysz, bool *permanent);
/* smtpc_attach - run the client over an established connection (ATRN's
 * reversed session): read the greeting, then EHLO; TLS stays as it is. */
struct smtpc *smtpc_attach(struct smtp_conn *, const struct smtpc_opts *,
	    char status[16], char *why, size_t whysz);
/*
 * smtpc_send - one transaction: MAIL, RCPT..., DATA (pipelined when
 * offered), per-recipient results in m->rcpt. Returns 0 when the
 * connection can carry another message, -1 when it is gone (421, drop,
 * timeout: recipients without a final reply get 4.4.2).
 */
int	 smtpc_send(struct smtpc *, struct smtpc_msg *);
/* smtpc_peer - "mx.example.org[192.0.2.7]:25". */
const char *smtpc_peer(const struct smtpc *);
/* smtpc_has_dsn - did the server offer DSN (RFC 3461)? Then NOTIFY, ORCPT,
 * ENVID and RET went on with the message, and it reports. */
bool	smtpc_has_dsn(const struct smtpc *);
/* smtpc_tls_time - seconds smtpc_open spent on STARTTLS, the handshake
 * and the EHLO after it; 0 without TLS. */
double	 smtpc_tls_time(const struct smtpc *);
/* smtpc_tls - "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
const char *smtpc_tls(const struct smtpc *);
/* smtpc_tls_trust - "dane-verified", "verified", "trusted", "untrusted",
 * "anonymous" or "none": what the connection's TLS established
 * (smtpc_tls.c says which is which). */
const char *smtpc_tls_trust(const struct smtpc *);
/* smtpc_tls_dane - the TLSA record that matched, "3 1 1 depth 0", or "". */
const char *smtpc_tls_dane(const struct smtpc *);
/* smtpc_auth_mech - "SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN": the
 * mechanism AUTH succeeded with, or "" (none). */
const char *smtpc_auth_mech(const struct smtpc *);
/* smtpc_alive - may a cached connection carry another transaction? False
 * when it died, or the server closed it or said something (a 421) while
 * it sat idle: then it is marked dead (close it, not politely). */
bool	 smtpc_alive(struct smtpc *);
/* smtpc_offers - did the last EHLO reply list this keyword ("ETRN",
 * "ATRN", "STARTTLS"...)? Case-insensitive. */
bool	 smtpc_offers(const struct smtpc *, const char *keyword);
/* smtpc_request - send one command line (no CR or LF in it, at most
 * 510 octets, RFC 5321 §4.5.3.1.4) and read its reply within the command
 * timeout: ETRN, ATRN for `postern etrn` and `postern pull`. 0, or -1
 * when the line is refused or the connection died. */
int	 smtpc_request(struct smtpc *, const char *line, struct smtp_reply *);
/* smtpc_detach - free the client but keep its connection (TLS and all)
 * and return it, or NULL when it died: after ATRN the site turns into
 * the server on the same connection. */
struct smtp_conn *smtpc_detach(struct smtpc *);
/* smtpc_close - QUIT (when polite) and free; NULL is fine. */
void	 smtpc_close(struct smtpc *, bool polite);

/* ------------------------------------------------------------------ */
/* sched.c - the scheduler's entry point, and its wake socket. */

/* What a run did, for `postern run`'s summary. */
struct runner_stats {
	uint64_t	delivered, deferred, failed, held;
	uint64_t	taken;		/* recipients claimed (a claim handed
					 * back and taken again counts
					 * twice) */
};

/* Modes of sched_run(). */
enum sched_mode {
	SCHED_DAEMON,		/* until SIGTERM */
	SCHED_ONCE,		/* until nothing due is left */
	SCHED_DOMAIN,		/* until the domain has nothing to take */
};

struct sched_opts {
	enum sched_mode	 mode;
	const char	*domain;	/* SCHED_DOMAIN */
	bool		 sub;		/* SCHED_DOMAIN: subdomains too */
	/* progress: called from the loop, at least every SCHED_PROGRESS_MS
	 * while it runs (`postern run` on a terminal); NULL: none. */
	void		(*progress)(void *arg, const struct runner_stats *);
	void		*progress_arg;
};
#define SCHED_PROGRESS_MS	200

/*
 * sched_run - claim due recipients and deliver them through conf->workers
 * worker processes (forked here) until the mode says stop; SIGTERM or
 * SIGINT stops it early (batches under way finish, at most
 * 30 s). It never rereads the configuration: posternd starts
 * it again on a new one. Blocks; returns 0, or 1 when the queue or the
 * routes_file cannot be opened (logged). *stats says what was done.
 */
int	 sched_run(struct conf *, const struct sched_opts *,
	    struct runner_stats *);

/* The longest wake datagram: "flush" and the flushed domains. */
#define SCHED_WAKE_MAX	2048

/* sched_wake - send `what` ("new": mail arrived; "flush": an operator
 * flushed, forget every hop found down; "flush [@]DOMAIN...": an ETRN
 * flushed those domains (@: with their subdomains), forget only the hops
 * their flushed mail goes to; at most SCHED_WAKE_MAX octets, several
 * datagrams for more) to the scheduler of the daemon
 * whose queue is queue_dir. fd: a datagram socket to send from, or -1
 * for a socket of our own. Never blocks; nobody listening is fine. */
void	 sched_wake(int fd, const char *queue_dir, const char *what);

/* ------------------------------------------------------------------ */
/* runner_bounce.c - DSNs: the queue's report hook (bounce/ composes). */

/* What queue_bounce() records when given no text: the hook reads it as
 * the administrator's cause (5.0.0). */
#define RUNNER_BOUNCE_ADMIN_TEXT	"returned by the administrator"

struct runner_bounce;

/* runner_bounce_new - the hook's state for a program whose queue records
 * results; c must outlive it. Never fails. */
struct runner_bounce *runner_bounce_new(const struct conf *c);
/* runner_bounce_attach - register the hook on q (queue_set_report). */
void	runner_bounce_attach(struct runner_bounce *, struct queue *q);
/* runner_bounce_done - after every queue call that may report
 * (queue_claim_result, queue_claim_return, queue_bounce): log the DSNs it
 * enqueued when it committed, forget them when it did not. */
void	runner_bounce_done(struct runner_bounce *, bool committed);
void	runner_bounce_free(struct runner_bounce *);
/* runner_bounce_hook - the queue_report_fn itself (for tests). */
int	runner_bounce_hook(void *arg, struct queue_report *rep);

/* ------------------------------------------------------------------ */
/* reverse.c - delivery over a reversed connection (ATRN, TURN). */

#define REVERSE_SOCKET		"odmr.sock"	/* in queue_dir */
#define REVERSE_MAGIC		0x6f646d72u
#define REVERSE_DOMAINS_MAX	32	/* domains in one ATRN */
#define REVERSE_SESSIONS_MAX	16	/* reversed sessions at once; more
					 * get 451 */
#define REVERSE_ROUND		100	/* recipients claimed at a time */
#define REVERSE_ACK_OK		'+'	/* first byte on the socketpair: the
					 * session process took over */

/* What the listener hands over with the socketpair end (SCM_RIGHTS). */
struct reverse_req {
	uint32_t	magic;
	uint32_t	ndom;
	uint64_t	serial;		/* the listener's session number */
	char		user[65];	/* the AUTH identity (AUTH_USER_MAX) */
	char		client[400];	/* "helo[addr]", for the logs */
	char		tls[96];	/* the customer's TLS, or "" */
	char		dom[REVERSE_DOMAINS_MAX][256];	/* lower case */
};

/*
 * reverse_handoff - send req and fd (one end of a socketpair whose other
 * end the listener keeps as a byte proxy to the customer) to the odmr
 * process of the queue in queue_dir, from the datagram socket sfd. Never
 * blocks: -1 (errno) when nobody listens or its queue is full. The fd is
 * the caller's to close either way.
 */
int	reverse_handoff(int sfd, const char *queue_dir,
	    const struct reverse_req *req, int fd);
/*
 * reverse_serve - the odmr process: take handed-over sessions from
 * queue_dir/odmr.sock and fork one process per session (at most
 * REVERSE_SESSIONS_MAX; more are closed at once, which the listener
 * answers with 451). Each session process opens the queue, acknowledges
 * (REVERSE_ACK_OK), reads the customer's greeting, EHLOs, and delivers
 * every waiting recipient of the domains (held ones too) in rounds of
 * REVERSE_ROUND claims; then QUIT. Runs until SIGTERM; returns the exit
 * status.
 */
int	reverse_serve(struct conf *);

#endif

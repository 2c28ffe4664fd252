/*
 * queue.h - the transactional LMDB queue.
 *
 * This folder owns everything stored: messages, their bodies, their
 * recipients with state and history, and the two indexes that keep every
 * lookup away from a full scan. It knows nothing of SMTP or configuration:
 * callers decide policy (which recipients start held, when to retry) and
 * the queue records it, atomically. Like LMDB it never logs and never
 * exits; every call returns 0 or a negative QUEUE_E_* code, and the text of
 * the last failure is in queue_errmsg().
 *
 * One LMDB environment in the queue directory, with named databases and
 * big-endian integer keys so that byte order is time order:
 *
 *	meta	"version" -> u32; "seq" -> u64 (last id or claim token);
 *		"msgs", "rcpts" -> u64 live counts; other names -> u64
 *		counters (queue_report_count: "bounce_dropped");
 *		"brate" 0x00 hour(8) key -> u32: DSNs per return path
 *		per hour (queue_report_rate)
 *	msg	everything of a message, under its id, so that its records
 *		share a page (one page to read, one to rewrite, when the
 *		queue is large and a message's neighbours are strangers):
 *		id(8) -> envelope record (sender, arrival, size, flags,
 *		    ENVID, client, counts);
 *		id(8) 0x01 index(4) -> recipient record (address, ORCPT,
 *		    NOTIFY, state, attempts, due time, claim token, last
 *		    reply, history);
 *		id(8) 0x02 chunk#(4) -> up to QUEUE_CHUNK_SIZE body bytes.
 *		Elsewhere a recipient is named by id(8) index(4).
 *	active	id(8) index(4) -> the record of a claimed recipient, while
 *		it is claimed; its record in msg is the one from before
 *		the claim and is rewritten by the result. A claim rewrites
 *		no page of msg (in a large queue each claimed recipient's
 *		is a page of its own), only this small database's, which
 *		holds no more than the runners have out.
 *	due	time(8) id(8) index(4) -> empty: the one timer index. A
 *		recipient's entry is the one at rcpt.due; what it means
 *		follows from the state: queued/deferred -> try delivery;
 *		active -> the lease has run out; held for its site -> the
 *		hold has expired. Any other key is stray and the walk drops
 *		it when it gets there: a flush claim leaves the old entry of
 *		a recipient not due within its lease in place (in a large
 *		queue it lies on a page of its own; the walk will pass it
 *		in order anyway).
 *	bydom	reversed domain ("org.example"; lower case, A-labels for an
 *		international domain, queue_key.c) -> id(8) index(4), dupsort:
 *		every recipient not yet final, by destination. Reversed so
 *		that a domain and its subdomains ("org.example.*") are one
 *		key range (ETRN @domain).
 *	sts	lower-case domain -> the MTA-STS policy cached for it
 *		(queue_sts.c; made at the first writable open of a queue
 *		that lacks it, so no schema version of its own)
 *	flushq	reversed domain -> flags(1) time(8) [len(1) caller, with
 *		flag 0x04: an authenticated ETRN's address] [resume point:
 *		the bydom value(12) and key where the last walk stopped]:
 *		a domain flush (operator, ETRN, ATRN) waiting for the
 *		runners; the claim walks the domain's bydom range from
 *		where it stopped, and hands the caller on (qclaim.caller).
 *
 * Queue ids are microsecond arrival stamps made unique by the "seq"
 * counter (taken in the write transaction, so unique across processes),
 * printed as 11 characters of Crockford base32: they sort by arrival.
 *
 * Durability: every change is one write transaction, committed with
 * LMDB's default fsync. Group commit shares one transaction and one fsync
 * among the messages that finish together: the caller gathers them (in
 * the daemon, smtpd's commit thread takes what its sessions finished) and
 * queue_enqueue_group() stores them, falling back to one transaction per
 * message when the batch fails as a whole. There is no other batching
 * mechanism: a thread that wants its message batched with others hands it
 * to such a committer.
 *
 * Reports: a program that sends DSNs registers a hook (queue_report.c);
 * the queue calls it in the transaction that records the failures (or
 * delays, or NOTIFY=SUCCESS deliveries) it reports, once per message when
 * none of its recipients is still out with a runner, and enqueues the DSN
 * it returns in that same transaction.
 *
 * Claims: queue_claim_due() moves due recipients to "active" with a lease
 * (their due entry is now + lease) and a claim token; a result is
 * recorded only while the token still matches, so two runners never
 * deliver the same recipient at once and a runner that died is forgotten
 * when its lease runs out (at-least-once, never lost). Lease ends and
 * next tries are wall-clock times: after the clock is stepped the caller
 * sets a grace on leases (forward) or moves what the old clock timed
 * (back): queue_claim_grace, queue_claim_shift.
 *
 * Processes: open the queue after fork(); an LMDB environment must not be
 * used across fork. Within a process, one struct queue may be shared by
 * threads (MDB_NOTLS); write transactions are serialised by LMDB.
 *
 * Names: the calls below are grouped by the file that holds them. The
 * calls on the queue as a whole are queue_<verb> (queue_open, queue_enqueue,
 * queue_hold, queue_get); a file that owns a concept names its calls after
 * itself (queue_claim_*). Inside the folder (queue_int.h) every function
 * carries its file's name: queue_rec_*, queue_key_*, queue_txn_*,
 * queue_ops_*, and the handle's own helpers in queue_env.c are queue_*.
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue;

#define QUEUE_SCHEMA_VERSION	3	/* 2: msg, rcpt, body in one database;
					 * 3: active. Records carry their own
					 * version (queue_rec.c): record
					 * version 2 added qmsg.warnings and
					 * qrcpt.dsn_id, and version 1 records
					 * still decode (with both 0), so it
					 * needed no schema bump */
#define QUEUE_CHUNK_SIZE	(256 * 1024)
#define QUEUE_ID_LEN		11
#define QUEUE_ADDR_MAX		256	/* RFC 5321 §4.5.3.1.3 */
#define QUEUE_ENVID_MAX		100	/* RFC 3461 §4.4 */
#define QUEUE_ORCPT_MAX		500	/* RFC 3461 §4.2 */
#define QUEUE_CLIENT_MAX	300
#define QUEUE_STATUS_MAX	15	/* "x.yyy.zzz" */
#define QUEUE_REPLY_MAX		400	/* cleaned peer text, as logged */
#define QUEUE_HIST_MAX		8	/* attempts kept per recipient */
#define QUEUE_HIST_TEXT_MAX	160
#define QUEUE_CALLER_MAX	63	/* a flush's caller: an IP address as
					 * text (INET6_ADDRSTRLEN is 46) */

enum {
	QUEUE_OK	= 0,
	QUEUE_E_SYS	= -1,	/* a system call failed; see queue_errmsg() */
	QUEUE_E_NOENT	= -2,	/* no such queue, message or recipient */
	QUEUE_E_VERSION	= -3,	/* the queue has another schema version */
	QUEUE_E_FULL	= -4,	/* map full or disk full: try again later */
	QUEUE_E_STALE	= -5,	/* the claim is no longer ours */
	QUEUE_E_INVAL	= -6,	/* bad argument */
	QUEUE_E_LMDB	= -7,	/* any other LMDB failure */
	QUEUE_E_CORRUPT	= -8,	/* a record failed to decode */
	QUEUE_E_PERM	= -9,	/* queue directory not accessible */
};

/* Open flags. */
enum {
	QUEUE_CREATE	= 0x01,	/* create the directory and schema if missing */
	QUEUE_RDONLY	= 0x02,	/* tools that only look */
};

/* Message flags. */
enum {
	QMSG_F_8BITMIME	= 0x01,
	QMSG_F_SMTPUTF8	= 0x02,
	QMSG_F_RET_FULL	= 0x04,
	QMSG_F_RET_HDRS	= 0x08,
	QMSG_F_DSN	= 0x10,	/* this message is a bounce we made */
	QMSG_F_BINARYMIME = 0x20, /* BODY=BINARYMIME (RFC 3030 §3): goes on
				 * only by BDAT, to a BINARYMIME server */
};

/* Recipient states, as `postern queue --json` prints them. */
enum qrcpt_state {
	QRCPT_QUEUED	= 0,	/* due, never tried */
	QRCPT_ACTIVE	= 1,	/* claimed by a runner */
	QRCPT_DEFERRED	= 2,	/* tried, waiting for its next try */
	QRCPT_HELD	= 3,	/* held by an operator or for its site */
	QRCPT_DELIVERED	= 4,	/* final */
	QRCPT_FAILED	= 5,	/* final */
};

/* Recipient flags. */
enum {
	QRCPT_F_SITE	= 0x01,	/* a held domain's: waits for its site */
	QRCPT_F_OPHOLD	= 0x02,	/* held by an operator until released */
	QRCPT_F_FLUSHED	= 0x04,	/* a site hold flushed by id: its next
				 * claim says flushed, its result clears it */
	QRCPT_F_REPORT	= 0x08,	/* report pending: failed, delivered with
				 * NOTIFY=SUCCESS, or due a delay warning,
				 * and waiting for the message's active
				 * recipients (queue_report.c) */
	QRCPT_F_NODSN	= 0x10,	/* reported, and the hook sent nothing on
				 * purpose (NOTIFY=NEVER, rate limit):
				 * show says "dropped" */
};

/* NOTIFY bits (RFC 3461 §4.1); 0 means NOTIFY was absent. */
enum {
	QRCPT_NOTIFY_NEVER	= 0x01,
	QRCPT_NOTIFY_SUCCESS	= 0x02,
	QRCPT_NOTIFY_FAILURE	= 0x04,
	QRCPT_NOTIFY_DELAY	= 0x08,
};

struct qmsg {
	uint64_t	id;
	int64_t		arrival;	/* Unix seconds */
	uint64_t	size;		/* body bytes, as stored */
	uint32_t	nrcpt;		/* recipients, final ones included */
	uint32_t	nlive;		/* recipients not yet final */
	uint32_t	nchunks;
	uint32_t	flags;		/* QMSG_F_* */
	char		sender[QUEUE_ADDR_MAX + 1];	/* "" for <> */
	char		envid[QUEUE_ENVID_MAX + 1];	/* as received (xtext) */
	char		client[QUEUE_CLIENT_MAX + 1];	/* "name[addr]" */
	uint8_t		warnings;	/* delay warning rounds reported */
};

struct qhist {
	int64_t	when;
	char	status[QUEUE_STATUS_MAX + 1];
	char	text[QUEUE_HIST_TEXT_MAX + 1];
};

struct qrcpt {
	uint64_t	id;
	uint32_t	idx;
	uint8_t		state;		/* enum qrcpt_state */
	uint8_t		flags;		/* QRCPT_F_* */
	uint8_t		notify;		/* QRCPT_NOTIFY_* */
	uint32_t	attempts;
	int64_t		due;		/* its due key's time; 0 = none */
	int64_t		last_try;
	uint64_t	claim;		/* token while active */
	uint8_t		prev_state;	/* before a claim or an operator hold */
	int64_t		saved_due;	/* due before an operator hold */
	char		addr[QUEUE_ADDR_MAX + 1];
	char		orcpt[QUEUE_ORCPT_MAX + 1];	/* "type;xtext" or "" */
	char		status[QUEUE_STATUS_MAX + 1];	/* last x.y.z, or "" */
	char		reply[QUEUE_REPLY_MAX + 1];	/* last reply, cleaned */
	uint32_t	nhist;
	struct qhist	hist[QUEUE_HIST_MAX];		/* oldest first */
	uint64_t	dsn_id;		/* the DSN that last reported it; 0:
					 * none (QRCPT_F_NODSN: none sent) */
};

/*
 * A message to enqueue. The caller fills msg.sender, msg.envid,
 * msg.client, msg.flags and msg.arrival (0 = now), body/bodylen, and for
 * each recipient addr, orcpt, notify, state (QRCPT_QUEUED or QRCPT_HELD)
 * with flags, and due (0 = now for queued; for held, when the hold
 * expires, or 0 for none). The queue fills msg.id and the counts. A large
 * body can come from a file (body_fd) so that it is never whole in
 * memory.
 */
struct qnew {
	struct qmsg	 msg;
	const void	*body;		/* the message, or NULL and body_fd */
	size_t		 bodylen;
	int		 body_fd;	/* body == NULL: read bodylen bytes
					 * from offset 0 of this file (a
					 * spool file), straight into the
					 * database pages */
	struct qrcpt	*rcpt;
	size_t		 nrcpt;
	int		 rc;		/* out: this message's result */
};

/* What a claimed item is for. */
enum qclaim_kind {
	QCLAIM_DELIVER	= 0,	/* try to deliver it */
	QCLAIM_EXPIRE	= 1,	/* held for its site past its hold: fail it */
};

struct qclaim {
	uint64_t	id;
	uint32_t	idx;
	uint64_t	token;
	uint8_t		kind;	/* enum qclaim_kind */
	bool		flushed;	/* by a domain flush (operator, ETRN):
					 * a held domain goes to its MX */
	char		domain[QUEUE_ADDR_MAX + 1];	/* lower case,
						 * A-labels */
	char		caller[QUEUE_CALLER_MAX + 1];	/* flushed by an
					 * authenticated ETRN: the caller's
					 * IP, for a "caller:PORT" route;
					 * "" otherwise */
};

enum qresult_kind {
	QRESULT_DELIVERED,
	QRESULT_DEFERRED,
	QRESULT_FAILED,
	QRESULT_HELD,		/* back to waiting for its site (held domain) */
};

struct qresult {
	uint64_t	id;
	uint32_t	idx;
	uint64_t	token;
	uint8_t		kind;		/* enum qresult_kind */
	int64_t		when;		/* time of the attempt */
	int64_t		next_try;	/* deferred: when; held: hold expiry */
	bool		attempted;	/* counts as an attempt (attempts++) */
	bool		hop_dsn;	/* delivered to a hop that took the DSN
					 * extension: it owes NOTIFY=SUCCESS */
	char		status[QUEUE_STATUS_MAX + 1];
	char		reply[QUEUE_REPLY_MAX + 1];
	int		rc;		/* out: 0 or QUEUE_E_STALE */
};

/* Which recipients an operator command touches. */
struct qsel {
	const uint64_t	*ids;		/* these messages, or */
	size_t		 nids;
	const char	*domain;	/* recipients for this domain, or */
	bool		 subdomains;	/* ... and its subdomains, or */
	bool		 all;		/* every recipient */
	const char	*caller;	/* a domain flush by an authenticated
					 * ETRN: the caller's IP (at most
					 * QUEUE_CALLER_MAX), handed to the
					 * claims it makes (qclaim.caller);
					 * NULL: none */
};

/* ------------------------------------------------------------------ */
/* queue_env.c */

/*
 * queue_open - open (QUEUE_CREATE: create) the queue in dir, with a map
 * of at most mapsize bytes (the queue's size limit; the file grows as
 * needed). Runs mdb_reader_check(). On failure returns a negative code and
 * writes the reason into err. Blocks only on disk I/O.
 */
int	queue_open(const char *dir, int flags, uint64_t mapsize,
	    struct queue **, char *err, size_t errsz);
void	queue_close(struct queue *);
const char *queue_strerror(int);
/* queue_errmsg - the detail of the last failure in this queue handle. */
const char *queue_errmsg(const struct queue *);
/* queue_reader_check - clear reader slots of dead processes. */
int	queue_reader_check(struct queue *, int *cleared);
const char *queue_dir(const struct queue *);
/* queue_map_drop - unmap from this process every page of the queue file
 * it has mapped by reading (madvise MADV_DONTNEED on LMDB's read-only
 * map). The pages stay in the OS page cache and the next read maps them
 * again, so it is safe at any time, inside a read transaction too; it
 * costs the re-faults of the pages read next. A long-lived process that
 * reads scattered records (the scheduler, the workers) calls it when its
 * resident set grows, or every record it ever read stays mapped and its
 * RSS grows toward the size of the queue file (each fault also maps up to
 * 15 cached neighbours, the kernel's fault-around). */
int	queue_map_drop(struct queue *);
/* queue_commits - write transactions this handle committed (each one an
 * fsync): for tests and benchmarks of group commit. */
uint64_t queue_commits(const struct queue *);

/* ------------------------------------------------------------------ */
/* queue_key.c */

/* queue_id_format - 11 characters and a NUL into buf. */
void	queue_id_format(uint64_t, char buf[QUEUE_ID_LEN + 1]);
/* queue_id_parse - 0, or QUEUE_E_INVAL. Case-insensitive. */
int	queue_id_parse(const char *, uint64_t *);
/* queue_domain_of - the domain of addr into buf ("" if none) in the form
 * domain keys use: lower case, and A-labels for an international domain
 * (queue_key.c). */
void	queue_domain_of(const char *addr, char *buf, size_t bufsz);
const char *queue_state_name(int state);

/* ------------------------------------------------------------------ */
/* queue_txn.c: enqueue and group commit */

/* queue_enqueue - store one message, its recipients and index entries in
 * one transaction; on return 0 the message is on disk (fsync'd). */
int	queue_enqueue(struct queue *, struct qnew *);
/* queue_enqueue_batch - the same for n messages in one transaction. All
 * are stored or none; each qnew's rc says so. */
int	queue_enqueue_batch(struct queue *, struct qnew **, size_t n);

/*
 * queue_enqueue_group - group commit: store n messages that finished
 * together in one transaction (one fsync). If that transaction fails,
 * each message is tried alone, so that one bad message (no recipients, a
 * spool file that cannot be read) fails alone and the others are stored
 * - except when the batch failed with QUEUE_E_FULL: then every message
 * gets QUEUE_E_FULL (452 on the wire, the client tries again later) and
 * none is tried alone. A full map or disk is the queue's state, not a
 * message's; retrying each alone would cost up to n more failing
 * transactions (on a full disk each one failing at its commit) while the
 * committer's other messages wait, and what it could squeeze in would
 * take the last free pages the runners need to record results and
 * remove delivered mail, which is what makes room again. For the same
 * reason new mail is refused with QUEUE_E_FULL when it would leave less
 * than the reserve of the disk or the map (queue_txn.c). Each qnew's rc
 * says what became of it; returns 0 when all are stored, else the first
 * failure's code.
 */
int	queue_enqueue_group(struct queue *, struct qnew **, size_t n);

/* ------------------------------------------------------------------ */
/* queue_claim.c */

/*
 * queue_claim_due - in one write transaction claim up to max recipients
 * whose due time is <= now, in due order: each becomes active with a new
 * token and its due key moves to now + lease (lease >= 1).
 * *n gets the number claimed. A recipient whose lease ran out is
 * claimed again (its runner died). A message's recipients due together
 * are not split at the limit: the claim stops before them (fewer than
 * max, so a caller loops while *n > 0, not while *n == max) unless they
 * alone would fill it. Domain flush requests (queue_flush) are served
 * first, from the bydom index.
 */
int	queue_claim_due(struct queue *, int64_t now, int64_t lease,
	    struct qclaim *out, size_t max, size_t *n);
/* queue_claim_domain - claim like a flush of domain (and, with sub, its
 * subdomains; with held, recipients held for their site too) would, but
 * at once and only these: `postern run --domain`. Recipients tried at or
 * after `since` are left alone (a run takes each recipient once). Up to
 * max, in one transaction; call again until *n is 0. */
int	queue_claim_domain(struct queue *, const char *domain, bool sub,
	    bool held, int64_t since, int64_t now, int64_t lease,
	    struct qclaim *out, size_t max, size_t *n);
/*
 * queue_claim_grace - the wall clock stepped forward: for now a lease that
 * ended less than secs ago still holds (its holder is alive and renews it
 * on its next round; a monotonic timer told it nothing), so that
 * queue_claim_due takes an active recipient only once due + secs <= now.
 * 0 ends the grace. For this handle only.
 */
void	queue_claim_grace(struct queue *, int64_t secs);
/*
 * queue_claim_shift - the wall clock stepped back by secs: what the old
 * clock timed and the new one could not have - a queued recipient due
 * after now, a deferred one last tried after now - due in (now, now +
 * secs + within] moves secs earlier (not before now), its last try too,
 * so it keeps the delay it was given and a second pass (for results
 * committed late) leaves it alone. Never one out on a lease, held or
 * final. In transactions of QUEUE_OPS_TXN_MAX; at most max moved, *n of
 * them.
 */
int	queue_claim_shift(struct queue *, int64_t now, int64_t secs,
	    int64_t within, size_t max, size_t *n);
/* queue_claim_next_due - the earliest due time (0 when nothing is timed). */
int	queue_claim_next_due(struct queue *, int64_t *when);
/* queue_claim_renew - push the leases of still-held claims to `until`. */
int	queue_claim_renew(struct queue *, const struct qclaim *, size_t n,
	    int64_t until);
/* queue_claim_return - hand claims back (their runner died): due at
 * `when`, state as before the claim. Stale claims are skipped. With a
 * report hook, recipients reported pending that waited for these are
 * reported (at `when`). */
int	queue_claim_return(struct queue *, const struct qclaim *, size_t n,
	    int64_t when);
/* queue_claim_result - record the results of claims in one transaction; a
 * result whose token no longer matches gets rc QUEUE_E_STALE and changes
 * nothing. A recipient that becomes final leaves both indexes; the last
 * one of a message removes the message. With a report hook, each message
 * touched is reported in the same transaction (queue_report.c) before it
 * can be removed; a hook's error fails the call and records nothing. */
int	queue_claim_result(struct queue *, struct qresult *, size_t n);

/* ------------------------------------------------------------------ */
/* queue_report.c: the report hook (DSNs) */

/*
 * A program that sends DSNs registers a report hook on its open queue
 * (queue/ composes nothing: it knows no MIME and no policy). The queue
 * calls it inside the write transaction that records what it reports
 * (queue_claim_result, queue_claim_return, queue_bounce), once per message
 * that has something to report, and enqueues the DSN it returns in that
 * same transaction: a crash records both or neither, so no failure goes
 * unreported and none is reported twice.
 *
 * When: a recipient that fails, that is delivered with NOTIFY=SUCCESS, or
 * that is deferred past a delay warning's time becomes "report pending"
 * (QRCPT_F_REPORT; a final one leaves the indexes and nlive at once). A
 * message is reported when none of its recipients is active (claimed by a
 * runner): then the hook gets all its pending recipients, from this call
 * and earlier ones: one DSN per message per round. Only then may a
 * finished message be deleted.
 *
 * Delay warnings: a deferral at `when` with conf.delay_warning > 0, when -
 * arrival >= delay_warning * (warnings + 1) and the message's warnings <
 * max_delay_warnings, of a recipient not held for its site
 * (QRCPT_F_SITE). A report that carries delayed recipients counts one on
 * qmsg.warnings, whatever the hook sends (it decides NOTIFY=DELAY).
 *
 * Without a hook nothing is pending and nothing changes: results are
 * recorded and finished messages deleted in the same call, as before.
 */
struct queue_report_conf {
	int64_t		delay_warning;		/* seconds; 0: none */
	uint32_t	max_delay_warnings;	/* per message */
	size_t		body_cap;		/* body bytes for the hook */
};

enum qreport_why {
	QREPORT_FAILED		= 1,	/* final: failed */
	QREPORT_DELAYED		= 2,	/* still waiting: a delay warning */
	QREPORT_DELIVERED	= 3,	/* final: delivered, NOTIFY=SUCCESS */
};

struct qreport_rcpt {
	const struct qrcpt	*rcpt;	/* as it will be written (its
					 * dsn_id is set after the call) */
	uint8_t			 why;	/* enum qreport_why */
};

struct queue_report {
	const struct qmsg		*msg;	/* warnings already counted */
	const struct qreport_rcpt	*rcpt;
	size_t				 nrcpt;
	const uint8_t			*body;	/* the first bodylen bytes */
	size_t				 bodylen; /* min(size, body_cap) */
	bool				 truncated;	/* bodylen < size */
	int64_t				 now;
	/* Out. dsn: NULL to send nothing, or a message the hook owns and
	 * keeps valid until it is called again or the queue is closed:
	 * enqueued when the hook returns 0, with QMSG_F_DSN. dropped:
	 * nothing sent on purpose (the recipients get QRCPT_F_NODSN). */
	struct qnew			*dsn;
	bool				 dropped;
	/* The queue's own: the open transaction. */
	struct queue			*queue;
	void				*txn;
};

/*
 * queue_report_fn - 0 (rep->dsn: what to enqueue, or NULL), or a negative
 * QUEUE_E_* code: then the whole transaction is aborted and nothing of
 * the call is recorded (the claims come back by their leases, and are
 * reported again then). So an error is for a temporary failure only (out
 * of memory, QUEUE_E_FULL): a message the hook can never report it drops
 * (rep->dropped), or its results would come back for ever. It runs
 * inside a write transaction: no network, nothing slow; it may call
 * queue_report_rate() and queue_report_count().
 */
typedef int queue_report_fn(void *arg, struct queue_report *rep);

/* queue_set_report - register (fn NULL: remove) the hook of this handle;
 * conf is copied. Set it before the handle is shared by threads. */
void	queue_set_report(struct queue *, queue_report_fn *fn, void *arg,
	    const struct queue_report_conf *conf);

/*
 * queue_report_rate - count one against `key` (a return path) for the hour
 * of `now`, in the hook's transaction: *allowed is false when this hour
 * already counted limit_per_hour (nothing is counted then); limit 0 is no
 * limit (nothing stored). The counts live in the meta database and every
 * call deletes up to 16 counts of hours before the last one, so they do
 * not pile up. The key is at most QUEUE_ADDR_MAX bytes (QUEUE_E_INVAL).
 */
int	queue_report_rate(struct queue_report *, const char *key, int64_t now,
	    uint32_t limit_per_hour, bool *allowed);
/* queue_report_count - add one to the named counter ("bounce_dropped"),
 * in the hook's transaction; queue_counter() reads it. Names are lower
 * case letters, digits and '_', under 32 bytes, not the queue's own. */
int	queue_report_count(struct queue_report *, const char *name);

/* ------------------------------------------------------------------ */
/* queue_ops.c: operator changes; *count gets the recipients changed. */

int	queue_hold(struct queue *, const struct qsel *, size_t *count);
int	queue_release(struct queue *, const struct qsel *, size_t *count);
/* queue_requeue - due now, attempts and backoff reset. */
int	queue_requeue(struct queue *, const struct qsel *, size_t *count);
/* queue_flush - due now; with `held`, recipients held for their site too
 * (an operator's flush or an ETRN); never those an operator held. By ids
 * or all: the recipients are made due at once. By domain: one flush
 * request is recorded (its cost does not grow with the queue) and
 * queue_claim_due() hands out the domain's recipients from the bydom
 * index, in bounded batches, before other due work; *count is the
 * domain's live recipients. */
int	queue_flush(struct queue *, const struct qsel *, bool held,
	    int64_t now, size_t *count);
/* queue_delete - remove recipients (by ids: whole messages). */
int	queue_delete(struct queue *, const struct qsel *, size_t *count);
/*
 * queue_bounce - fail the selected live recipients now with status (NULL:
 * "5.0.0") and text (NULL: "returned by the administrator"), one write
 * transaction per message, and report them (queue_report.c: the hook runs
 * in that transaction, so the DSN is enqueued with the failure). A
 * recipient that is active (a runner has it) is left alone: its result
 * decides, and it is not counted. *count gets the recipients failed.
 */
int	queue_bounce(struct queue *, const struct qsel *, const char *status,
	    const char *text, int64_t now, size_t *count);

/* ------------------------------------------------------------------ */
/* queue_read.c: reading, for listing, show, delivery and stats. */

/* queue_get - the envelope and every recipient; *rcpt is malloc'd (free
 * it) with *n entries. QUEUE_E_NOENT when there is no such message. */
int	queue_get(struct queue *, uint64_t id, struct qmsg *,
	    struct qrcpt **rcpt, size_t *n);
/* queue_body_chunk - copy chunk `chunk` of message id into buf (at least
 * QUEUE_CHUNK_SIZE bytes); *len gets its length. */
int	queue_body_chunk(struct queue *, uint64_t id, uint32_t chunk,
	    void *buf, size_t *len);

/* queue_counter - the named meta counter (queue_report_count), 0 if none. */
int	queue_counter(struct queue *, const char *name, uint64_t *val);

/* queue_walk - call fn for each message in id (= arrival) order, or only
 * for those with a recipient in `domain` (NULL: all). fn returns 0 to go
 * on, anything else to stop (that value is returned). Messages are read
 * in bounded read transactions, so a long walk does not pin old pages. */
typedef int queue_walk_fn(void *arg, const struct qmsg *,
	    const struct qrcpt *, size_t n);
int	queue_walk(struct queue *, const char *domain, queue_walk_fn *,
	    void *arg);

/* queue_domain_count - live recipients for domain (and its subdomains). */
int	queue_domain_count(struct queue *, const char *domain,
	    bool subdomains, size_t *count);
/* queue_domain_any - *yes if domain (not its subdomains) has a recipient
 * a flush could take now: queued, deferred or held for its site; not one
 * claimed by a delivery in progress (active, until its result or its
 * lease), nor one an operator held. ATRN's "mail waiting" (RFC 2645: 453
 * otherwise). Stops at the first; its cost is bounded (past a bound of
 * entries that cannot be taken it answers yes), for the smtpd loop. */
int	queue_domain_any(struct queue *, const char *domain, bool *yes);
/* queue_domain_msgs - the messages (distinct ids) with a live recipient
 * in any of the n selections' domains (each with its subdomains when
 * sel.subdomains; ids and all are ignored): ETRN's 253 count. One read
 * transaction that walks only those domains' bydom ranges. */
int	queue_domain_msgs(struct queue *, const struct qsel *sels, size_t n,
	    size_t *count);

/* Queue shape, like Postfix's qshape: live recipients by destination
 * domain and age. Bucket upper bounds in minutes: 5 10 20 40 80 160 320,
 * and a last bucket for older. */
#define QUEUE_AGE_BUCKETS	8
struct qshape_dom {
	char		domain[QUEUE_ADDR_MAX + 1];
	uint64_t	total;
	uint64_t	bucket[QUEUE_AGE_BUCKETS];
	uint64_t	deferred;
	uint64_t	held;
	int64_t		oldest;		/* the oldest one's arrival */
};
struct qshape_reason {
	char		text[QUEUE_STATUS_MAX + 1 + 80];
	uint64_t	count;
};
struct qshape {
	struct qshape_dom	*dom;	/* sorted by total, largest first */
	size_t			 ndom;
	uint64_t		 msgs;
	uint64_t		 rcpts;
	uint64_t		 bucket[QUEUE_AGE_BUCKETS];
	int64_t			 oldest;	/* arrival; 0 if empty */
	struct qshape_reason	*reason;	/* deferral reasons, by count */
	size_t			 nreason;
	char			(*flush)[QUEUE_ADDR_MAX + 2];
	size_t			 nflush;	/* domain flushes not yet served
						 * ("@d": with subdomains) */
	uint64_t		 bounce_dropped;	/* DSNs not sent
						 * (queue_report_count) */
};
extern const int queue_age_bucket_min[QUEUE_AGE_BUCKETS];
int	queue_shape(struct queue *, int64_t now, struct qshape *);
void	queue_shape_free(struct qshape *);

/* ------------------------------------------------------------------ */
/* queue_site.c: when each site was last seen (its accepted ETRN, ATRN). */

/* queue_site_seen - record that domain's site asked at `when` (its own
 * write transaction). */
int	queue_site_seen(struct queue *, const char *domain, int64_t when);
/* queue_site_seen_get - when it last asked; 0: never. */
int	queue_site_seen_get(struct queue *, const char *domain, int64_t *when);
/* queue_site_walk - fn for each site ever seen, in domain order, outside
 * any transaction; fn returns 0 to go on (else that value is returned). */
typedef int queue_site_fn(void *arg, const char *domain, int64_t when);
int	queue_site_walk(struct queue *, queue_site_fn *, void *arg);
/* queue_site_notice - record that the "mail is waiting" command ran for
 * domain at `when` (meta "notice" records; its own write transaction). */
int	queue_site_notice(struct queue *, const char *domain, int64_t when);
/* queue_site_notice_get - when it last ran; 0: never. */
int	queue_site_notice_get(struct queue *, const char *domain,
	    int64_t *when);

/* ------------------------------------------------------------------ */
/* queue_sts.c: the MTA-STS policy cache (RFC 8461 §3.3), database "sts":
 * lower-case domain -> the policy held for it and the last failed fetch,
 * shared by every worker and kept across restarts. The policy is text the
 * runner wrote (runner/route_sts_parse.c reads it back); the queue only
 * keeps it. */

#define QUEUE_STS_ID_MAX	32	/* RFC 8461 §3.1 */
#define QUEUE_STS_POLICY_MAX	32768	/* octets of a stored policy */

struct qsts {
	char	 id[QUEUE_STS_ID_MAX + 1];	/* the policy's id; "": none
						 * held */
	int64_t	 fetched;	/* when it was fetched (wall clock) */
	int64_t	 expires;	/* fetched + its max_age */
	char	 fail_id[QUEUE_STS_ID_MAX + 1];	/* the id a fetch last
						 * failed for */
	int64_t	 failed;	/* when; 0: none */
	size_t	 len;		/* of policy */
	char	 policy[QUEUE_STS_POLICY_MAX + 1];	/* NUL-terminated */
};

/* queue_sts_get - domain's record into *s (about 33 KiB: not on a small
 * stack). QUEUE_E_NOENT when there is none; QUEUE_E_CORRUPT for a record
 * that does not decode (the caller may overwrite it). */
int	queue_sts_get(struct queue *, const char *domain, struct qsts *s);
/* queue_sts_put - domain's record := *s, one write transaction.
 * QUEUE_E_INVAL for a domain or policy too long. */
int	queue_sts_put(struct queue *, const char *domain, const struct qsts *s);
/* queue_sts_purge - delete every record whose policy expired before
 * `before` and whose failed fetch (if any) is older too; *n (may be NULL)
 * says how many went. One write transaction. */
int	queue_sts_purge(struct queue *, int64_t before, size_t *n);

/* A held domain's backlog: what waits for its site. */
struct qbacklog {
	uint64_t	msgs;		/* messages with a live recipient */
	uint64_t	rcpts;		/* live recipients */
	int64_t		oldest;		/* the arrival of the one queued
					 * first (ids are arrival stamps, and
					 * the programs leave qmsg.arrival to
					 * the queue); 0: none */
};
/* queue_domain_backlog - the live recipients of domain (with sub, its
 * subdomains too; a domain written ".parent", as hold_domains and
 * routes_file take it, is the subdomains of parent only): one read
 * transaction over the domain's bydom range and one envelope, never a
 * scan of the queue. Memory: 8 bytes per recipient, for a moment. */
int	queue_domain_backlog(struct queue *, const char *domain, bool sub,
	    struct qbacklog *);

#endif

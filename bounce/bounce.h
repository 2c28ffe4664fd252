/*
 * bounce.h - delivery status notifications: what to tell a sender, and the
 * message that tells it.
 *
 * This folder owns the pure part of bounces: the status of a result
 * (dsn.c: a reply or a local cause becomes a struct dsn with an RFC 3463
 * x.y.z), the decisions (bounce_policy.c: which recipients are reported,
 * to whom, what is returned, whether a delay warning is due), and the
 * message itself (bounce_compose.c: an RFC 6522 multipart/report with an
 * RFC 3464 message/delivery-status part). It does no queue or network I/O,
 * never logs and never exits; every function is given the time and the
 * configuration it needs, so the tests can pin both.
 *
 * Data flow: the runner records a round of results for one message
 * (queue_record) -> it turns each final or delayed recipient into a
 * struct bounce_item (dsn_from_reply, or dsn_for_cause for a local cause)
 * -> bounce_policy_plan() says whether a notice goes out, to whom and
 * what it returns -> bounce_compose() builds the message text -> the
 * caller enqueues it with sender <> in the same LMDB transaction as the
 * results it reports, so a crash leaves both or neither (that part
 * belongs to runner/ and queue/).
 *
 * Memory: nothing here keeps a pointer to its arguments after it returns;
 * output goes into the caller's struct sbuf or fixed buffers.
 */
#ifndef BOUNCE_H
#define BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue.h"

struct sbuf;

/* ------------------------------------------------------------------ */
/* dsn.c */

#define DSN_STATUS_MAX		16	/* "x.yyy.zzz" and a NUL, with room */
#define DSN_MTA_MAX		256	/* a host name (RFC 1035) */
#define DSN_REPLY_MAX		QUEUE_REPLY_MAX

/* RFC 3464 §2.3.3 */
enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
};

/* Which notice: a failure DSN (a "bounce"), a delay warning, or a success
 * notice (RFC 3461 §5.2). */
enum dsn_kind {
	DSN_KIND_FAILURE,
	DSN_KIND_DELAY,
	DSN_KIND_SUCCESS,
};

/* Why a recipient is reported: each has its own status and wording. */
enum dsn_cause {
	DSN_CAUSE_REPLY,	/* the remote server's reply (5xx) */
	DSN_CAUSE_EXPIRED,	/* max_queue_lifetime ran out */
	DSN_CAUSE_HOLD_EXPIRED,	/* held for its site, never collected */
	DSN_CAUSE_NULLMX,	/* the domain publishes null MX (5.1.10) */
	DSN_CAUSE_NXDOMAIN,	/* the domain does not exist (5.1.2) */
	DSN_CAUSE_LOOP,		/* the MX is this host (5.4.6) */
	DSN_CAUSE_HOPS,		/* too many Received: fields (5.4.6) */
	DSN_CAUSE_ADMIN,	/* `postern bounce` (5.0.0) */
	DSN_CAUSE_DELAY,	/* still trying: a delay warning */
	DSN_CAUSE_SUCCESS,	/* delivered or relayed (success notice) */
};

struct dsn {
	enum dsn_action	action;
	enum dsn_cause	cause;
	char		status[DSN_STATUS_MAX];	/* x.y.z, canonical */
	char		rmta[DSN_MTA_MAX];	/* Remote-MTA host, or "" */
	char		reply[DSN_REPLY_MAX + 1]; /* Diagnostic-Code, or "" */
};

/*
 * dsn_status_parse - read an RFC 3463 code at the start of s: class 2, 4
 * or 5, subject and detail of 1-3 digits each (0..999), followed by the
 * end, a space or a tab. Writes it without leading zeros into out
 * ("5.01.001" -> "5.1.1", RFC 3464 §2.3.4). Returns the length read, or 0
 * when s does not start with a code (out is then "").
 */
size_t	dsn_status_parse(const char *s, char out[DSN_STATUS_MAX]);
/* dsn_status_valid - is s exactly one canonical code (no leading zeros,
 * nothing after it)? */
bool	dsn_status_valid(const char *s);
/* dsn_status_class - 2, 4 or 5 for a valid code; 0 otherwise. */
int	dsn_status_class(const char *s);

/*
 * dsn_from_reply - the dsn of an SMTP reply such as
 * "550 5.1.1 <bob@example.org>: user unknown": the reply's enhanced code
 * when it has one of the reply's class (RFC 2034 §4), else X.0.0 of the
 * reply's class (RFC 3463 §3.1); action failed (5xx), delayed (4xx) or
 * relayed (2xx: we are a relay, RFC 3461 §5.2.2); cause
 * DSN_CAUSE_REPLY (DSN_CAUSE_DELAY for 4xx, DSN_CAUSE_SUCCESS for 2xx);
 * the reply, CR, LF and controls made spaces, as the Diagnostic-Code;
 * rmta kept when it is a host name (NULL: none). Returns 0, or
 * -1 when reply starts with no 2xx/4xx/5xx code (out is then a failed
 * 5.0.0 with the text, for a caller that still has to report it).
 */
int	dsn_from_reply(const char *reply, const char *rmta, struct dsn *out);

/*
 * dsn_for_cause - a failed (delayed for DSN_CAUSE_DELAY) dsn for a local
 * cause, with its status (status NULL or "" or invalid: the cause's
 * default: 5.1.10 null MX, 5.1.2 NXDOMAIN, 5.4.6 loop and hops, 5.0.0
 * administrator, 4.4.7 expiry and hold expiry, 4.0.0 delay, 2.0.0
 * success). For expiry, pass the last temporary status seen: RFC 3463
 * prefers the real problem to 4.4.7. reply and rmta may be NULL.
 */
void	dsn_for_cause(enum dsn_cause, const char *status, const char *rmta,
	    const char *reply, struct dsn *out);

const char *dsn_action_name(enum dsn_action);	/* "failed", ... */
const char *dsn_cause_name(enum dsn_cause);	/* "reply", "expired", ... */

/*
 * dsn_xtext_decode - decode RFC 3461 §4 xtext ("+2B" -> "+") into out.
 * Returns the decoded length, or -1 when in is not xtext (a bad "+HH",
 * a character outside '!'..'~', a literal '=') or out is too small.
 */
int	dsn_xtext_decode(const char *in, char *out, size_t outsz);

/* ------------------------------------------------------------------ */
/* bounce_policy.c */

enum bounce_return {
	BOUNCE_RETURN_HEADERS,	/* default: a backup MX should not mail spam
				 * bodies back to forged senders */
	BOUNCE_RETURN_FULL,
};

/* The configuration keys of bounces; the caller fills it from struct
 * conf (bounce_conf_init gives the documented defaults). */
struct bounce_conf {
	const char		*myhostname;
	enum bounce_return	 bounce_return;		/* headers */
	uint64_t		 bounce_size_limit;	/* 50 KiB; 0 = none */
	const char		*double_bounce_recipient; /* "" = none */
	int64_t			 delay_warning;		/* 4h; 0 = off */
	unsigned		 max_delay_warnings;	/* 1 */
	unsigned		 bounce_rate_limit;	/* 20/h, the caller's */
};

/* bounce_conf_init - the defaults; double_bounce_recipient points into
 * buf ("postmaster@" myhostname), which must outlive the struct. */
void	bounce_conf_init(struct bounce_conf *, const char *myhostname,
	    char *buf, size_t bufsz);

/* One recipient of a round, as the runner saw it. */
struct bounce_item {
	const struct qrcpt	*rcpt;		/* addr, orcpt, notify, flags */
	struct dsn		 dsn;
	int64_t			 last_attempt;	/* 0: unknown or none */
	int64_t			 retry_until;	/* delays: give-up time; 0 */
};

enum bounce_to {
	BOUNCE_TO_NONE,		/* nothing is sent; see reason */
	BOUNCE_TO_SENDER,	/* the message's return path */
	BOUNCE_TO_POSTMASTER,	/* a double bounce: the sender was <> */
};

enum bounce_why {
	BOUNCE_WHY_SEND,	/* a notice goes out */
	BOUNCE_WHY_NOTIFY,	/* no recipient's NOTIFY asks for it */
	BOUNCE_WHY_NO_POSTMASTER, /* sender <> and double_bounce_recipient
				 * is empty: log and drop */
	BOUNCE_WHY_DOUBLE_FAILED, /* a double bounce failed: log and drop,
				 * never a third message */
	BOUNCE_WHY_NO_SUCCESS_FROM_NULL, /* success/delay of a <> message */
};

struct bounce_plan {
	enum bounce_to	 to;
	enum bounce_why	 why;
	enum dsn_kind	 kind;
	char		 rcpt[QUEUE_ADDR_MAX + 1]; /* the DSN's RCPT TO */
	bool		 full;		/* return the whole message */
	bool		 capped;	/* full was wanted, over the size limit:
					 * headers, and the text says so */
	uint64_t	 size;		/* the original's size, for the note */
	size_t		 nitems;	/* items included (their flags set) */
};

/*
 * bounce_policy_wants - does a recipient with these NOTIFY bits get a
 * notice of this kind (RFC 3461 §5.2)? NEVER: none. Absent NOTIFY (0) is
 * read as FAILURE only (RFC 3461 §4.1 allows it; no unasked delay
 * warnings). A success notice also needs that the next hop did not take
 * the DSN extension (hop_dsn false): when it did, NOTIFY went on with the
 * message and that hop reports (§5.2.2).
 */
bool	bounce_policy_wants(uint8_t notify, enum dsn_kind, bool hop_dsn);

/*
 * bounce_policy_plan - one notice of `kind` for the items of one message's
 * round. include[i] is set for each item the notice covers (NOTIFY asks
 * for it; items not of the kind's action are skipped). Null sender: a
 * failure goes to double_bounce_recipient instead (at most one notice;
 * none when it is empty); a message from <> that is itself a double
 * bounce (flag QMSG_F_DSN and a recipient that is the
 * double_bounce_recipient, or one with NOTIFY=NEVER) gets nothing; delay
 * and success notices are never sent for <> mail. What is returned:
 * bounce_policy_return(). Never fails; plan->to says whether to send.
 */
void	bounce_policy_plan(const struct bounce_conf *, const struct qmsg *,
	    const struct bounce_item *, size_t n, enum dsn_kind, bool hop_dsn,
	    bool *include, struct bounce_plan *);

/*
 * bounce_policy_return - full return or headers: delay and success
 * notices return headers (RFC 3461 §4.3); failures RET=FULL or RET=HDRS
 * as asked (QMSG_F_RET_*), else bounce_return; a full return larger than
 * bounce_size_limit (non-zero) becomes headers with *capped set.
 */
bool	bounce_policy_return(const struct bounce_conf *, const struct qmsg *,
	    enum dsn_kind, bool *capped);

/*
 * bounce_policy_delay_due - is a delay warning due for this recipient
 * now? Only with delay_warning > 0, a non-null sender, NOTIFY with DELAY
 * (and not NEVER), a recipient not final and not held (for its site or by
 * an operator: waiting is then its normal state), fewer than
 * max_delay_warnings sent for the message (warnings_sent, kept by the
 * caller), and the message at least (warnings_sent + 1) * delay_warning
 * old: one warning per interval.
 */
bool	bounce_policy_delay_due(const struct bounce_conf *,
	    const struct qmsg *, const struct qrcpt *, unsigned warnings_sent,
	    int64_t now);

/* bounce_policy_log_text - the log line's words for a plan:
 * "sender non-delivery notification", "delay notification", "delivery
 * notification", "double bounce to postmaster", or for BOUNCE_TO_NONE
 * why nothing was sent. */
const char *bounce_policy_log_text(const struct bounce_plan *);

/* ------------------------------------------------------------------ */
/* bounce_compose.c */

/* Output flags: what the DSN's own envelope needs. */
enum {
	BOUNCE_OUT_8BITMIME	= 0x01,	/* send with BODY=8BITMIME */
	BOUNCE_OUT_SMTPUTF8	= 0x02,	/* UTF-8 in addresses or headers */
};

#define BOUNCE_HDRS_MAX		(64 * 1024)	/* returned header section */
#define BOUNCE_LINE_MAX		998		/* RFC 5322 §2.1.1 */

struct bounce_input {
	const struct qmsg		*msg;	/* the original envelope */
	const struct bounce_item	*items;
	const bool			*include; /* NULL: every item */
	size_t				 nitems;
	const struct bounce_plan	*plan;
	/* The original message as stored: whole when plan->full, else at
	 * least its header section (the first chunk is enough). */
	const char			*body;
	size_t				 bodylen;
	time_t				 now;	/* Date:, the Received: line */
	/* Unique per DSN (the caller's random or queue-id text): makes the
	 * Message-ID and the MIME boundary. Letters, digits, '.', '-' and
	 * '_' are kept, anything else dropped. */
	const char			*token;
};

/*
 * bounce_compose - the whole DSN (headers and body, CRLF line ends, no
 * line over 998 octets) appended to out: a multipart/report;
 * report-type=delivery-status of three parts (text/plain, then
 * message/delivery-status, then message/rfc822 or text/rfc822-headers;
 * for an SMTPUTF8 original message/global, message/global-headers and,
 * when an address is UTF-8, message/global-delivery-status, RFC 6533).
 * Every value taken from the envelope or a peer has CR, LF and controls
 * made spaces; the boundary is checked against every part. *outflags
 * gets BOUNCE_OUT_*. Returns 0, or -1 when the plan sends nothing or no
 * item is included (out unchanged).
 */
int	bounce_compose(const struct bounce_conf *, const struct bounce_input *,
	    struct sbuf *out, unsigned *outflags);

/* bounce_compose_date - an RFC 5322 date ("Thu, 3 Dec 2026 07:27:52
 * +0000", UTC) into buf (at least 40 bytes). */
void	bounce_compose_date(time_t, char *buf, size_t bufsz);

#endif

/*
 * runner_bounce.c - the queue's report hook: DSNs for what a round of
 * results reports, enqueued in the transaction that records them.
 *
 * queue/ calls runner_bounce_hook() inside the write transaction of
 * queue_claim_result (a worker's batch), queue_claim_return (the
 * scheduler handing a dead worker's claims back) and queue_bounce
 * (`postern bounce`), once per message whose round is over (no recipient
 * of it still with a runner). Here each reported recipient becomes a
 * struct bounce_item (its cause read from the status and reply the runner
 * recorded), bounce_policy_plan() says who is told, bounce_compose() writes
 * the message, and it goes back to the queue as a struct qnew with sender
 * <>: a crash records the failures and their DSN together or neither.
 *
 * One DSN a round: a round with failures reports the failures (recipients
 * delayed or delivered in the same round are marked reported with it, and
 * not told apart: rare, and a second notice to the same sender for the
 * same message within a second helps nobody); else delays; else success
 * notices.
 *
 * The log line ("postern/bounce[pid]: ID: sender non-delivery
 * notification: DSNID") is written only after the transaction commits
 * (runner_bounce_done): a report whose transaction was aborted never
 * happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "route_policy.h"
#include "runner_int.h"

#define RUNNER_BOUNCE_LOG_MAX	256	/* lines held until the commit */

struct runner_bounce_log {
	uint64_t	 orig;		/* the reported message */
	uint64_t	 dsn;		/* 0: nothing was sent */
	const char	*what;		/* bounce_policy_log_text() */
	char		 to[QUEUE_ADDR_MAX + 1];
};

struct runner_bounce {
	const struct conf		*conf;
	struct bounce_conf		 bc;
	char				 dbr[QUEUE_ADDR_MAX + 1];
	struct sbuf			*out;		/* the last DSN's text */
	struct qnew			 qn;
	struct qrcpt			 qr;
	struct bounce_item		*items;
	bool				*include;
	size_t				 cap;
	uint64_t			 seq;		/* for tokens */
	bool				 pending;	/* qn was handed out */
	uint64_t			 pending_orig;
	const char			*pending_what;
	struct runner_bounce_log	 log[RUNNER_BOUNCE_LOG_MAX];
	size_t				 nlog;
};

/* runner_bounce_cause - the dsn of a reported recipient, from what the
 * runner recorded: a reply from a server, or a local cause's status. */
static void
runner_bounce_cause(const struct qrcpt *r, uint8_t why, struct dsn *d)
{
	const char	*st = r->status, *re = r->reply;
	bool		 remote;

	remote = re[0] >= '2' && re[0] <= '5' && re[1] >= '0' &&
	    re[1] <= '9' && re[2] >= '0' && re[2] <= '9' &&
	    (re[3] == ' ' || re[3] == '-' || re[3] == '\0');
	if (why == QREPORT_DELIVERED) {
		if (!remote || dsn_from_reply(re, NULL, d) != 0)
			dsn_for_cause(DSN_CAUSE_SUCCESS, "2.0.0", NULL, re, d);
		return;
	}
	if (why == QREPORT_DELAYED) {
		dsn_for_cause(DSN_CAUSE_DELAY, st, NULL, re, d);
		return;
	}
	if (st[0] == '4') {
		/* Failed with a temporary status: it ran out of time. */
		dsn_for_cause((r->flags & QRCPT_F_SITE) ?
		    DSN_CAUSE_HOLD_EXPIRED : DSN_CAUSE_EXPIRED, st, NULL, re, d);
		return;
	}
	if (remote && dsn_from_reply(re, NULL, d) == 0 &&
	    d->action == DSN_ACTION_FAILED)
		return;
	if (strcmp(st, "5.1.10") == 0)
		dsn_for_cause(DSN_CAUSE_NULLMX, st, NULL, re, d);
	else if (strcmp(st, "5.1.2") == 0)
		dsn_for_cause(DSN_CAUSE_NXDOMAIN, st, NULL, re, d);
	else if (strcmp(st, "5.4.6") == 0)
		dsn_for_cause(strstr(re, "Received") != NULL ?
		    DSN_CAUSE_HOPS : DSN_CAUSE_LOOP, st, NULL, re, d);
	else if (strcmp(re, RUNNER_BOUNCE_ADMIN_TEXT) == 0)
		dsn_for_cause(DSN_CAUSE_ADMIN, st, NULL, re, d);
	else
		dsn_for_cause(DSN_CAUSE_REPLY, st, NULL, re, d);
}

/* runner_bounce_note - remember a line for runner_bounce_done(). */
static void
runner_bounce_note(struct runner_bounce *b, uint64_t orig, uint64_t dsn,
    const char *what, const char *to)
{
	struct runner_bounce_log	*l;

	if (b->nlog == RUNNER_BOUNCE_LOG_MAX)
		return;		/* a huge batch: the DSNs still go */
	l = &b->log[b->nlog++];
	l->orig = orig;
	l->dsn = dsn;
	l->what = what;
	strl_copy(l->to, to, sizeof(l->to));
}

/* runner_bounce_settle - the DSN handed out at the last call has its
 * queue id now (the queue enqueued it after that call returned). */
static void
runner_bounce_settle(struct runner_bounce *b)
{
	if (!b->pending)
		return;
	runner_bounce_note(b, b->pending_orig, b->qn.msg.id, b->pending_what,
	    b->qr.addr);
	b->pending = false;
}

int
runner_bounce_hook(void *arg, struct queue_report *rep)
{
	struct runner_bounce	*b = arg;
	const struct qmsg	*m = rep->msg;
	struct bounce_plan	 plan;
	struct bounce_input	 in;
	enum dsn_kind		 kind = DSN_KIND_SUCCESS;
	char			 token[80], id[QUEUE_ID_LEN + 1];
	unsigned		 outflags = 0;
	bool			 allowed = true;
	size_t			 i;
	int			 rc;

	runner_bounce_settle(b);
	rep->dsn = NULL;
	rep->dropped = false;
	if (rep->nrcpt == 0)
		return 0;
	if (rep->nrcpt > b->cap) {
		b->cap = rep->nrcpt;
		b->items = xreallocarray(b->items, b->cap, sizeof(*b->items));
		b->include = xreallocarray(b->include, b->cap,
		    sizeof(*b->include));
	}
	for (i = 0; i < rep->nrcpt; i++) {
		const struct qrcpt	*r = rep->rcpt[i].rcpt;

		memset(&b->items[i], 0, sizeof(b->items[i]));
		b->items[i].rcpt = r;
		runner_bounce_cause(r, rep->rcpt[i].why, &b->items[i].dsn);
		b->items[i].last_attempt = r->last_try;
		if (rep->rcpt[i].why == QREPORT_DELAYED)
			b->items[i].retry_until = m->arrival +
			    (int64_t)b->conf->max_queue_lifetime;
		if (rep->rcpt[i].why == QREPORT_FAILED)
			kind = DSN_KIND_FAILURE;
		else if (rep->rcpt[i].why == QREPORT_DELAYED &&
		    kind != DSN_KIND_FAILURE)
			kind = DSN_KIND_DELAY;
	}
	queue_id_format(m->id, id);
	bounce_policy_plan(&b->bc, m, b->items, rep->nrcpt, kind, false,
	    b->include, &plan);
	if (plan.to == BOUNCE_TO_NONE) {
		rep->dropped = true;
		/* A failure nobody is told of is worth a line; an unasked
		 * delay or success notice is not. */
		if (kind == DSN_KIND_FAILURE)
			runner_bounce_note(b, m->id, 0,
			    bounce_policy_log_text(&plan), "");
		return 0;
	}
	if (plan.to == BOUNCE_TO_SENDER && b->conf->bounce_rate_limit > 0) {
		if ((rc = queue_report_rate(rep, m->sender, rep->now,
		    (uint32_t)b->conf->bounce_rate_limit, &allowed)) != 0)
			return rc;
		if (!allowed) {
			rep->dropped = true;
			if ((rc = queue_report_count(rep, "bounce_dropped")) != 0)
				return rc;
			runner_bounce_note(b, m->id, 0, "dropped (rate limit)",
			    m->sender);
			return 0;
		}
	}
	if (!bsnprintf(token, sizeof(token), "%s.%ld.%llu", id, (long)getpid(),
	    (unsigned long long)++b->seq))
		token[0] = '\0';
	memset(&in, 0, sizeof(in));
	in.msg = m;
	in.items = b->items;
	in.include = b->include;
	in.nitems = rep->nrcpt;
	in.plan = &plan;
	in.body = (const char *)rep->body;
	in.bodylen = rep->bodylen;
	in.now = (time_t)rep->now;
	in.token = token;
	sbuf_reset(b->out);
	if (bounce_compose(&b->bc, &in, b->out, &outflags) != 0) {
		rep->dropped = true;
		return 0;
	}
	memset(&b->qn, 0, sizeof(b->qn));
	memset(&b->qr, 0, sizeof(b->qr));
	b->qn.msg.flags = QMSG_F_DSN;
	if (outflags & BOUNCE_OUT_8BITMIME)
		b->qn.msg.flags |= QMSG_F_8BITMIME;
	if (outflags & BOUNCE_OUT_SMTPUTF8)
		b->qn.msg.flags |= QMSG_F_SMTPUTF8;
	b->qn.msg.arrival = rep->now;
	strl_copy(b->qn.msg.client, "bounce", sizeof(b->qn.msg.client));
	strl_copy(b->qr.addr, plan.rcpt, sizeof(b->qr.addr));
	/* A DSN's own failure is a double bounce (NOTIFY absent); a double
	 * bounce's is dropped (NEVER): never a third message. */
	b->qr.notify = plan.to == BOUNCE_TO_POSTMASTER ? QRCPT_NOTIFY_NEVER : 0;
	route_rcpt_init(b->conf, &b->qr, rep->now);
	b->qn.body = sbuf_str(b->out);
	b->qn.bodylen = sbuf_len(b->out);
	b->qn.body_fd = -1;
	b->qn.rcpt = &b->qr;
	b->qn.nrcpt = 1;
	/* Counted in the queue, in this transaction, like bounce_dropped:
	 * exact whatever process sends it, and kept across restarts. */
	if ((rc = queue_report_count(rep, "bounce_sent")) != 0)
		return rc;
	rep->dsn = &b->qn;
	b->pending = true;
	b->pending_orig = m->id;
	b->pending_what = bounce_policy_log_text(&plan);
	return 0;
}

struct runner_bounce *
runner_bounce_new(const struct conf *c)
{
	struct runner_bounce	*b;

	b = xcalloc(1, sizeof(*b));
	b->conf = c;
	bounce_conf_init(&b->bc, c->myhostname, NULL, 0);
	b->bc.bounce_return = c->bounce_return == CONF_BOUNCE_FULL ?
	    BOUNCE_RETURN_FULL : BOUNCE_RETURN_HEADERS;
	b->bc.bounce_size_limit = c->bounce_size_limit;
	b->bc.delay_warning = (int64_t)c->delay_warning;
	b->bc.max_delay_warnings = (unsigned)c->max_delay_warnings;
	b->bc.bounce_rate_limit = (unsigned)c->bounce_rate_limit;
	/* A bare name is that user here, as `postern enqueue` reads one. */
	if (c->double_bounce_recipient == NULL)
		b->dbr[0] = '\0';
	else if (strchr(c->double_bounce_recipient, '@') != NULL)
		strl_copy(b->dbr, c->double_bounce_recipient, sizeof(b->dbr));
	else if (!bsnprintf(b->dbr, sizeof(b->dbr), "%s@%s",
	    c->double_bounce_recipient, c->myhostname))
		b->dbr[0] = '\0';
	b->bc.double_bounce_recipient = b->dbr;
	b->out = sbuf_new();
	return b;
}

void
runner_bounce_attach(struct runner_bounce *b, struct queue *q)
{
	struct queue_report_conf	rc;

	memset(&rc, 0, sizeof(rc));
	rc.delay_warning = (int64_t)b->conf->delay_warning;
	rc.max_delay_warnings = (uint32_t)b->conf->max_delay_warnings;
	/* Enough for the header section, or for a full return up to the
	 * cap (no cap: up to the largest message we take). */
	rc.body_cap = b->conf->bounce_size_limit > 0 ?
	    (size_t)b->conf->bounce_size_limit + 1 :
	    (size_t)b->conf->message_size_limit + 1;
	if (rc.body_cap < BOUNCE_HDRS_MAX)
		rc.body_cap = BOUNCE_HDRS_MAX;
	queue_set_report(q, runner_bounce_hook, b, &rc);
}

void
runner_bounce_done(struct runner_bounce *b, bool committed)
{
	char	 oid[QUEUE_ID_LEN + 1], did[QUEUE_ID_LEN + 1];
	size_t	 i;

	if (b == NULL)
		return;
	runner_bounce_settle(b);
	for (i = 0; committed && i < b->nlog; i++) {
		queue_id_format(b->log[i].orig, oid);
		if (b->log[i].dsn != 0) {
			queue_id_format(b->log[i].dsn, did);
			log_info_as("bounce", "%s: %s: %s", oid,
			    b->log[i].what, did);
		} else if (b->log[i].to[0] != '\0')
			log_info_as("bounce", "%s: from=<%s>, %s", oid,
			    b->log[i].to, b->log[i].what);
		else
			log_info_as("bounce", "%s: %s", oid, b->log[i].what);
	}
	b->nlog = 0;
}

void
runner_bounce_free(struct runner_bounce *b)
{
	if (b == NULL)
		return;
	sbuf_free(b->out);
	free(b->items);
	free(b->include);
	free(b);
}

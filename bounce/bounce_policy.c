/*
 * bounce_policy.c - who is told what, and what is returned.
 *
 * The rules are RFC 3461 §5.2 and RFC 5321 §6.1: NOTIFY=NEVER gets
 * nothing; FAILURE (or no NOTIFY) gets a failure DSN; DELAY a warning;
 * SUCCESS a "relayed" notice when the next hop did not take DSN (when it
 * did, NOTIFY went on and that hop reports). A message from <> is never
 * answered: its failure is one notice to double_bounce_recipient, and
 * when that notice fails too it is dropped (never a third message).
 * One notice covers every recipient of the message in the round that is
 * due one (RFC 5321 §4.4, RFC 3461 §5.2.8).
 */
#include <string.h>
#include <strings.h>

#include "bounce.h"
#include "smtp.h"

void
bounce_conf_init(struct bounce_conf *bc, const char *myhostname, char *buf,
    size_t bufsz)
{
	memset(bc, 0, sizeof(*bc));
	bc->myhostname = myhostname;
	bc->bounce_return = BOUNCE_RETURN_HEADERS;
	bc->bounce_size_limit = 50 * 1024;
	if (buf != NULL && bufsz > 0 &&
	    !bsnprintf(buf, bufsz, "postmaster@%s", myhostname))
		buf[0] = '\0';
	bc->double_bounce_recipient = buf != NULL ? buf : "";
	bc->delay_warning = 4 * 3600;
	bc->max_delay_warnings = 1;
	bc->bounce_rate_limit = 20;
}

bool
bounce_policy_wants(uint8_t notify, enum dsn_kind kind, bool hop_dsn)
{
	if (notify & QRCPT_NOTIFY_NEVER)
		return false;
	switch (kind) {
	case DSN_KIND_FAILURE:
		/* §5.2.6: MUST when FAILURE or no NOTIFY, else MUST NOT. */
		return notify == 0 || (notify & QRCPT_NOTIFY_FAILURE);
	case DSN_KIND_DELAY:
		/* §5.2.5: never when NOTIFY is present without DELAY; for an
		 * absent NOTIFY we choose FAILURE only (§4.1 allows it). */
		return (notify & QRCPT_NOTIFY_DELAY) != 0;
	case DSN_KIND_SUCCESS:
		return (notify & QRCPT_NOTIFY_SUCCESS) && !hop_dsn;
	}
	return false;
}

bool
bounce_policy_return(const struct bounce_conf *bc, const struct qmsg *m,
    enum dsn_kind kind, bool *capped)
{
	bool	full;

	*capped = false;
	if (kind != DSN_KIND_FAILURE)
		return false;	/* RFC 3461 §4.3; protocols.md §6.5 */
	if (m->flags & QMSG_F_RET_FULL)
		full = true;
	else if (m->flags & QMSG_F_RET_HDRS)
		full = false;
	else
		full = bc->bounce_return == BOUNCE_RETURN_FULL;
	if (full && bc->bounce_size_limit > 0 &&
	    m->size > bc->bounce_size_limit) {
		*capped = true;
		full = false;
	}
	return full;
}

/* bounce_policy_kind_action - the actions a notice of this kind
 * reports. */
static bool
bounce_policy_kind_action(enum dsn_kind kind, enum dsn_action a)
{
	switch (kind) {
	case DSN_KIND_FAILURE:
		return a == DSN_ACTION_FAILED;
	case DSN_KIND_DELAY:
		return a == DSN_ACTION_DELAYED;
	case DSN_KIND_SUCCESS:
		return a == DSN_ACTION_DELIVERED || a == DSN_ACTION_RELAYED ||
		    a == DSN_ACTION_EXPANDED;
	}
	return false;
}

/* bounce_policy_is_double - is this <> message a double bounce we made
 * (so that its failure must go nowhere)? We enqueue double bounces with
 * QMSG_F_DSN to double_bounce_recipient and NOTIFY=NEVER (RFC 3461
 * §6.1 allows it on a DSN's RCPT); either sign is enough. */
static bool
bounce_policy_is_double(const struct bounce_conf *bc, const struct qmsg *m,
    const struct qrcpt *r)
{
	if (!(m->flags & QMSG_F_DSN))
		return false;
	if (r->notify & QRCPT_NOTIFY_NEVER)
		return true;
	return bc->double_bounce_recipient != NULL &&
	    bc->double_bounce_recipient[0] != '\0' &&
	    strcasecmp(r->addr, bc->double_bounce_recipient) == 0;
}

void
bounce_policy_plan(const struct bounce_conf *bc, const struct qmsg *m,
    const struct bounce_item *it, size_t n, enum dsn_kind kind,
    bool hop_dsn, bool *include, struct bounce_plan *p)
{
	bool	null_sender = m->sender[0] == '\0', any_double = false;
	size_t	i;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->to = BOUNCE_TO_NONE;
	p->why = BOUNCE_WHY_NOTIFY;
	p->size = m->size;
	for (i = 0; i < n; i++) {
		include[i] = false;
		if (!bounce_policy_kind_action(kind, it[i].dsn.action))
			continue;
		if (null_sender && kind == DSN_KIND_FAILURE &&
		    bounce_policy_is_double(bc, m, it[i].rcpt)) {
			any_double = true;
			continue;
		}
		/* A <> message's failure is told to postmaster whatever its
		 * NOTIFY (RFC 3461 §5.2: "by a means that cannot loop"),
		 * but NEVER still means never. */
		if (null_sender && kind == DSN_KIND_FAILURE) {
			if (it[i].rcpt->notify & QRCPT_NOTIFY_NEVER)
				continue;
		} else if (!bounce_policy_wants(it[i].rcpt->notify, kind,
		    hop_dsn))
			continue;
		include[i] = true;
		p->nitems++;
	}
	if (p->nitems == 0) {
		if (any_double)
			p->why = BOUNCE_WHY_DOUBLE_FAILED;
		return;
	}
	if (null_sender) {
		if (kind != DSN_KIND_FAILURE) {
			p->why = BOUNCE_WHY_NO_SUCCESS_FROM_NULL;
			goto none;
		}
		if (bc->double_bounce_recipient == NULL ||
		    bc->double_bounce_recipient[0] == '\0' ||
		    !strl_copy(p->rcpt, bc->double_bounce_recipient,
		    sizeof(p->rcpt))) {
			p->why = BOUNCE_WHY_NO_POSTMASTER;
			goto none;
		}
		p->to = BOUNCE_TO_POSTMASTER;
	} else {
		strl_copy(p->rcpt, m->sender, sizeof(p->rcpt));
		p->to = BOUNCE_TO_SENDER;
	}
	p->why = BOUNCE_WHY_SEND;
	p->full = bounce_policy_return(bc, m, kind, &p->capped);
	return;
none:
	for (i = 0; i < n; i++)
		include[i] = false;
	p->nitems = 0;
	p->to = BOUNCE_TO_NONE;
}

bool
bounce_policy_delay_due(const struct bounce_conf *bc, const struct qmsg *m,
    const struct qrcpt *r, unsigned warnings_sent, int64_t now)
{
	if (bc->delay_warning <= 0 || m->sender[0] == '\0')
		return false;
	if (!bounce_policy_wants(r->notify, DSN_KIND_DELAY, false))
		return false;
	if (r->state == QRCPT_DELIVERED || r->state == QRCPT_FAILED ||
	    r->state == QRCPT_HELD ||
	    (r->flags & (QRCPT_F_SITE | QRCPT_F_OPHOLD)))
		return false;
	if (warnings_sent >= bc->max_delay_warnings)
		return false;
	if ((int64_t)warnings_sent + 1 > INT64_MAX / bc->delay_warning)
		return false;
	return now - m->arrival >=
	    ((int64_t)warnings_sent + 1) * bc->delay_warning;
}

const char *
bounce_policy_log_text(const struct bounce_plan *p)
{
	if (p->to == BOUNCE_TO_POSTMASTER)
		return "double bounce to postmaster";
	if (p->to == BOUNCE_TO_SENDER) {
		switch (p->kind) {
		case DSN_KIND_FAILURE:
			return "sender non-delivery notification";
		case DSN_KIND_DELAY:
			return "delay notification";
		case DSN_KIND_SUCCESS:
			return "delivery notification";
		}
	}
	switch (p->why) {
	case BOUNCE_WHY_NO_POSTMASTER:
		return "double bounce dropped (no double_bounce_recipient)";
	case BOUNCE_WHY_DOUBLE_FAILED:
		return "undeliverable double bounce dropped";
	case BOUNCE_WHY_NO_SUCCESS_FROM_NULL:
		return "no notification for a null sender";
	default:
		return "no notification requested";
	}
}

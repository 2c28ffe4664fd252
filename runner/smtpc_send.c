/*
 * smtpc_send.c - one transaction of the ESMTP client: MAIL, RCPT...,
 * DATA, the message, one result a recipient.
 *
 * What happens to a recipient follows protocols.md §4.7: a MAIL refusal
 * goes to every recipient, an RCPT reply to its own, the reply to the
 * final dot (or a refused DATA) to every accepted one; 421 or a lost
 * connection leaves whatever has no final answer temporary (RFC 5321
 * §3.8). Replies are matched to commands by count, never by code or text
 * (RFC 2920 §3.1). What the server cannot take is refused here without a
 * word on the wire: SMTPUTF8 (5.6.7), 8BITMIME (5.6.3), BINARYMIME
 * (5.6.3), SIZE (5.3.4).
 *
 * BDAT (RFC 3030) carries the message instead of DATA when the server
 * offers CHUNKING and the message is at least bdat_min_size octets, and
 * always for a BINARYMIME message: chunks of SMTPC_BDAT_CHUNK octets, not
 * stuffed, the last one "BDAT n LAST", all written without waiting for
 * the replies under PIPELINING (a refusal seen meanwhile stops the rest,
 * RFC 3030 §2). Text goes with CRLF line ends and stray CR or LF as
 * spaces, as DATA sends it; BINARYMIME content goes as stored. The reply
 * to LAST is the final one; a refused chunk's reply is the accepted
 * recipients' result, and the transaction ends with RSET (§2).
 *
 * SMTPUTF8 (RFC 6531 §3.2). A server that offers it gets the addresses as
 * they were given, U-labels and all, with MAIL's SMTPUTF8 parameter when
 * the message was received with it or an address is 8-bit. To one that
 * does not, a message that needs it is refused (550 5.6.7): one with a
 * UTF-8 local part (sender or a recipient of this transaction) or UTF-8
 * in its header section (scanned: RFC 6532 headers need SMTPUTF8 too),
 * as Postfix does. A message whose only 8-bit is in domains is not such
 * a message: its domains go as A-labels (RFC 5891), without SMTPUTF8, as
 * Postfix's client converts them. The recipient logged and reported
 * stays the one given.
 *
 * Results: a recipient's code and status always have the same class. The
 * code is the server's (a 552 to RCPT is taken as 452, as Postfix does),
 * or for our own refusals the one a server would have used (550 5.6.7,
 * 554 5.6.3, 552 5.3.4, 553 5.1.x), or 0 when no usable reply came
 * (4.4.2: timeout, lost connection, garbage; 4.5.0: a server out of step,
 * smtpc_in_step; 4.3.0: the queued message could not be read).
 *
 * Reuse: smtpc_send returns 0 when the connection is in step and idle
 * (after a complete transaction, a refusal before sending, or a failed
 * transaction closed with a RSET that got 250), -1 when it must not carry
 * more mail (421, drop, timeout, RSET refused, a reply out of step).
 *
 * smtpc_send() runs the steps in order; each returns what comes next.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpc_int.h"

/* Per-recipient progress inside smtpc_send. */
enum {
	SMTPC_R_PENDING,	/* no answer yet */
	SMTPC_R_ACCEPTED,	/* RCPT 2xx: waits for the final dot */
	SMTPC_R_FINAL,		/* has its result */
};

/* What a step of the transaction leaves to do. */
enum smtpc_send_next {
	SMTPC_SEND_NEXT,	/* the next step */
	SMTPC_SEND_RSET,	/* end the transaction with RSET */
	SMTPC_SEND_LOST,	/* the connection died: its status (4.4.2,
				 * 4.5.0) for the rest */
	SMTPC_SEND_DONE,	/* nothing more to send */
};

/* One transaction under way. */
struct smtpc_send_x {
	struct smtpc		*sc;
	struct smtpc_msg	*m;
	uint8_t			*st;	/* SMTPC_R_* per recipient */
	uint8_t			*sent;	/* its RCPT goes out */
	size_t			 nacc;	/* RCPTs accepted */
	bool			 pipe;	/* PIPELINING */
	bool			 utf8;	/* SMTPUTF8 needed */
	bool			 ascii;	/* domains as A-labels (a server
					 * without SMTPUTF8) */
	char			*sender; /* the sender as sent */
	char			(*addr)[QUEUE_ADDR_MAX + 1]; /* each
					 * recipient as sent, with ascii */
	bool			 mail_ok; /* MAIL got 2xx */
	bool			 bdat;	/* the message goes by BDAT */
	bool			 binary;	/* BODY=BINARYMIME */
};

/* smtpc_send_set - a recipient's result. */
static void
smtpc_send_set(struct smtpc_rcpt *rc, uint8_t *st, int code, const char *status,
    const char *text)
{
	rc->code = code;
	strl_copy(rc->status, status, sizeof(rc->status));
	strl_clean(rc->reply, sizeof(rc->reply), text, QUEUE_REPLY_MAX);
	*st = SMTPC_R_FINAL;
}

/* smtpc_send_set_all - the same result for every recipient in `which` state
 * (or every one not final, for which = -1). */
static void
smtpc_send_set_all(struct smtpc_msg *m, uint8_t *st, int which, int code,
    const char *status, const char *text)
{
	size_t	i;

	for (i = 0; i < m->nrcpt; i++)
		if (which < 0 ? st[i] != SMTPC_R_FINAL : st[i] == which)
			smtpc_send_set(&m->rcpt[i], &st[i], code, status, text);
}

/* smtpc_send_set_reply - a reply's result for every recipient in `which`. */
static void
smtpc_send_set_reply(struct smtpc_msg *m, uint8_t *st, int which,
    const struct smtp_reply *r)
{
	char	status[16];
	int	code = r->code;

	smtp_reply_status(r, status);
	if (code / 100 == 3) {
		code = 0;		/* not a result: retry */
		status[0] = '4';
	}
	smtpc_send_set_all(m, st, which, code, status, r->text);
}

/* smtpc_send_has_8bit - any octet >= 0x80 (a UTF-8 address)? */
static bool
smtpc_send_has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* smtpc_send_xtext_ok - an ENVID or ORCPT that can go on a command line as it
 * is: printable ASCII, no space (it was checked when received; this only
 * makes sure nothing else can ride along). */
static bool
smtpc_send_xtext_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

/* smtpc_send_addr_ok - no CR, LF or NUL can reach a command line. */
static bool
smtpc_send_addr_ok(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/*
 * smtpc_send_body - the message after 354, then CRLF.CRLF, written in
 * blocks of SMTPC_BLOCK with data_timeout each. 0; -1 when the connection
 * died; -2 when the message could not be read here (then nothing ends the
 * data: the connection must be dropped so that no partial message is
 * taken).
 */
static int
smtpc_send_body(struct smtpc *sc, struct smtpc_msg *m)
{
	struct smtp_dot	 d;
	struct sbuf	*out = sc->conn->out;
	const char	*data;
	size_t		 len;

	smtp_dot_begin(&d);
	for (;;) {
		data = NULL;
		len = 0;
		if (m->body(m->body_arg, &data, &len) != 0)
			return -2;
		if (len == 0)
			break;
		smtp_dot_stuff(&d, out, data, len);
		if (out->len >= SMTPC_BLOCK &&
		    smtpc_flush(sc, sc->t_data, "message content") != 0)
			return -1;
	}
	smtp_dot_end(&d, out);
	return smtpc_flush(sc, sc->t_data, "end of data");
}

/* smtpc_send_rset - end a transaction that did not end with the dot.
 * Anything but 250 makes the connection unusable. */
static void
smtpc_send_rset(struct smtpc *sc)
{
	struct smtp_reply	r;

	if (sc->state != SMTPC_S_OK)
		return;
	if (smtpc_command(sc, "RSET", &r, NULL, "RSET") != 0)
		return;
	if (r.code / 100 != 2)
		sc->state = r.code == 421 ? SMTPC_S_DEAD : SMTPC_S_DONE;
}

/* smtpc_send_mail_line - MAIL FROM with the parameters this server takes. */
static void
smtpc_send_mail_line(struct smtpc *sc, const struct smtpc_msg *m,
    const char *sender, bool utf8)
{
	struct sbuf	*o = sc->conn->out;

	sbuf_catf(o, "MAIL FROM:<%s>", sender);
	if (sc->ext & SMTPC_X_SIZE)
		sbuf_catf(o, " SIZE=%llu", (unsigned long long)m->size);
	if (m->flags & QMSG_F_BINARYMIME)
		sbuf_cat(o, " BODY=BINARYMIME");	/* checked: offered */
	else if ((m->flags & QMSG_F_8BITMIME) && (sc->ext & SMTPC_X_8BITMIME))
		sbuf_cat(o, " BODY=8BITMIME");
	if (utf8)
		sbuf_cat(o, " SMTPUTF8");
	/* RFC 3461 §5.2.1: passed on unchanged, only to a DSN server. */
	if (sc->ext & SMTPC_X_DSN) {
		if (m->flags & QMSG_F_RET_FULL)
			sbuf_cat(o, " RET=FULL");
		else if (m->flags & QMSG_F_RET_HDRS)
			sbuf_cat(o, " RET=HDRS");
		if (smtpc_send_xtext_ok(m->envid))
			sbuf_catf(o, " ENVID=%s", m->envid);
	}
	sbuf_cat(o, "\r\n");
}

/* smtpc_send_rcpt_line - RCPT TO with the DSN parameters, to a DSN
 * server. */
static void
smtpc_send_rcpt_line(struct smtpc *sc, const struct smtpc_rcpt *rc,
    const char *addr)
{
	struct sbuf	*o = sc->conn->out;
	const char	*sep = "=";

	sbuf_catf(o, "RCPT TO:<%s>", addr);
	if (sc->ext & SMTPC_X_DSN) {
		if (rc->notify & QRCPT_NOTIFY_NEVER)
			sbuf_cat(o, " NOTIFY=NEVER");
		else if (rc->notify != 0) {
			sbuf_cat(o, " NOTIFY");
			if (rc->notify & QRCPT_NOTIFY_SUCCESS) {
				sbuf_catf(o, "%sSUCCESS", sep);
				sep = ",";
			}
			if (rc->notify & QRCPT_NOTIFY_FAILURE) {
				sbuf_catf(o, "%sFAILURE", sep);
				sep = ",";
			}
			if (rc->notify & QRCPT_NOTIFY_DELAY)
				sbuf_catf(o, "%sDELAY", sep);
		}
		/* Byte for byte, case and xtext as received (§4.2). */
		if (smtpc_send_xtext_ok(rc->orcpt))
			sbuf_catf(o, " ORCPT=%s", rc->orcpt);
	}
	sbuf_cat(o, "\r\n");
}

/* smtpc_send_rcpt_addr - recipient i as it goes on the wire. */
static const char *
smtpc_send_rcpt_addr(const struct smtpc_send_x *x, size_t i)
{
	return x->ascii ? x->addr[i] : x->m->rcpt[i].addr;
}

/*
 * smtpc_send_hdr8 - does the message's header section (up to the first
 * empty line, or the whole message when it has none) hold an octet >=
 * 0x80? 1 yes, 0 no, -1 when it cannot be told (no rewind, a read
 * error). The body is rewound for DATA either way.
 */
static int
smtpc_send_hdr8(struct smtpc_msg *m)
{
	const unsigned char	*p;
	const char		*data;
	size_t			 len, i;
	int			 st = 0, rc = -1;	/* 0 line start, 1 in a
							 * line, 2 CR at start */

	if (m->rewind == NULL || m->rewind(m->body_arg) != 0)
		return -1;
	for (;;) {
		data = NULL;
		len = 0;
		if (m->body(m->body_arg, &data, &len) != 0)
			goto out;
		if (len == 0)
			break;
		p = (const unsigned char *)data;
		for (i = 0; i < len; i++) {
			if (p[i] >= 0x80) {
				rc = 1;
				goto out;
			}
			if (p[i] == '\n') {
				if (st != 1) {
					rc = 0;		/* the empty line */
					goto out;
				}
				st = 0;
			} else if (st == 0)
				st = p[i] == '\r' ? 2 : 1;
			else if (st == 2)
				st = 1;
		}
	}
	rc = 0;
out:
	if (m->rewind(m->body_arg) != 0)
		rc = -1;
	return rc;
}

/*
 * smtpc_send_downgrade - a message with 8-bit in its envelope for a
 * server without SMTPUTF8 (RFC 6531 §3.2): refused (550 5.6.7 for all)
 * when it needs SMTPUTF8 (local8: a UTF-8 local part; else UTF-8 in its
 * header section), else set to go with its domains as A-labels. A
 * recipient whose domain has none fails alone (553 5.1.2); a sender's
 * fails all (550 5.6.7). false when nothing is left to send.
 */
static bool
smtpc_send_downgrade(struct smtpc_send_x *x, bool local8)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	char			 text[QUEUE_REPLY_MAX + 1];
	char			 a[QUEUE_ADDR_MAX + 1];
	const char		*why, *need = NULL;
	size_t			 i;
	int			 h;

	if (local8)
		need = "";
	else if ((h = smtpc_send_hdr8(m)) != 0)
		need = h > 0 ? " (UTF-8 in its header)" :
		    " (its header could not be checked)";
	if (need != NULL) {
		/* RFC 6531 §3.2: no UTF-8 address or header to such a
		 * server. */
		bsnprintf(text, sizeof(text), "message requires SMTPUTF8%s, "
		    "but host %s does not support SMTPUTF8", need, sc->peer);
		smtpc_send_set_all(m, x->st, -1, 550, "5.6.7", text);
		return false;
	}
	if (smtp_idn_addr_ascii(x->sender, a, sizeof(a), &why) != 0) {
		bsnprintf(text, sizeof(text), "message requires SMTPUTF8: the "
		    "sender's domain has no A-label form (%s), and host %s "
		    "does not support SMTPUTF8", why, sc->peer);
		smtpc_send_set_all(m, x->st, -1, 550, "5.6.7", text);
		return false;
	}
	free(x->sender);
	x->sender = xstrdup(a);
	x->addr = xcalloc(m->nrcpt, sizeof(*x->addr));
	for (i = 0; i < m->nrcpt; i++) {
		if (x->st[i] == SMTPC_R_FINAL)
			continue;
		if (smtp_idn_addr_ascii(m->rcpt[i].addr, x->addr[i],
		    sizeof(x->addr[i]), &why) != 0) {
			bsnprintf(text, sizeof(text), "recipient domain has "
			    "no A-label form (%s), and host %s does not "
			    "support SMTPUTF8", why, sc->peer);
			smtpc_send_set(&m->rcpt[i], &x->st[i], 553, "5.1.2",
			    text);
		}
	}
	x->ascii = true;
	x->utf8 = false;
	return true;
}

/*
 * smtpc_send_check - refuse, before a word is sent, what this server
 * cannot take: bad addresses, SMTPUTF8, 8BITMIME, SIZE. Sets x->utf8 and
 * which recipients go out. false when nothing is left to send.
 */
static bool
smtpc_send_check(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	char			 text[QUEUE_REPLY_MAX + 1];
	size_t			 i, nsend = 0;
	bool			 local8;

	if (!smtpc_send_addr_ok(m->sender)) {
		smtpc_send_set_all(m, x->st, -1, 553, "5.1.7",
		    "bad sender address");
		return false;
	}
	x->sender = xstrdup(m->sender != NULL ? m->sender : "");
	x->utf8 = (m->flags & QMSG_F_SMTPUTF8) ||
	    smtpc_send_has_8bit(m->sender);
	local8 = smtp_idn_local_has8(m->sender);
	for (i = 0; i < m->nrcpt; i++) {
		if (!smtpc_send_addr_ok(m->rcpt[i].addr))
			smtpc_send_set(&m->rcpt[i], &x->st[i], 553, "5.1.3",
			    "bad recipient address");
		else if (smtpc_send_has_8bit(m->rcpt[i].addr)) {
			x->utf8 = true;
			local8 = local8 ||
			    smtp_idn_local_has8(m->rcpt[i].addr);
		}
	}
	if (x->utf8 && !(sc->ext & SMTPC_X_SMTPUTF8) &&
	    !smtpc_send_downgrade(x, local8))
		return false;
	x->binary = (m->flags & QMSG_F_BINARYMIME) != 0;
	if (x->binary && (sc->ext & (SMTPC_X_CHUNKING | SMTPC_X_BINARYMIME)) !=
	    (SMTPC_X_CHUNKING | SMTPC_X_BINARYMIME)) {
		/* RFC 3030 §3: binary content only by BDAT, to a server
		 * that offers both; we do not convert. */
		bsnprintf(text, sizeof(text), "message is binary (BODY="
		    "BINARYMIME), but host %s does not support BINARYMIME and "
		    "CHUNKING: conversion required but not supported",
		    sc->peer);
		smtpc_send_set_all(m, x->st, -1, 554, "5.6.3", text);
		return false;
	}
	x->bdat = x->binary || ((sc->ext & SMTPC_X_CHUNKING) &&
	    sc->bdat_min > 0 && m->size >= sc->bdat_min);
	if (!x->binary && (m->flags & QMSG_F_8BITMIME) &&
	    !(sc->ext & SMTPC_X_8BITMIME)) {
		/* RFC 6152 §3: no 8-bit octets; we do not convert. */
		bsnprintf(text, sizeof(text), "message has 8-bit content, but "
		    "host %s does not support 8BITMIME: conversion required "
		    "but not supported", sc->peer);
		smtpc_send_set_all(m, x->st, -1, 554, "5.6.3", text);
		return false;
	}
	if ((sc->ext & SMTPC_X_SIZE) && sc->size_max > 0 &&
	    m->size > sc->size_max) {
		/* RFC 1870 §7: compare before trying. */
		bsnprintf(text, sizeof(text), "message size %llu exceeds size "
		    "limit %llu of server %s", (unsigned long long)m->size,
		    (unsigned long long)sc->size_max, sc->peer);
		smtpc_send_set_all(m, x->st, -1, 552, "5.3.4", text);
		return false;
	}
	for (i = 0; i < m->nrcpt; i++)
		if ((x->sent[i] = x->st[i] != SMTPC_R_FINAL))
			nsend++;
	return nsend > 0;
}

/*
 * smtpc_send_mail - MAIL FROM, and with PIPELINING the RCPTs and DATA in
 * the same group (DATA last, RFC 2920 §3.1; BDAT goes once the RCPT
 * replies are in: only when somebody was accepted); then MAIL's reply. A
 * refusal
 * is every recipient's (never cached, RFC 5321 §4.5.4.1); with the group
 * already sent the RCPT replies must still be read.
 */
static enum smtpc_send_next
smtpc_send_mail(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtp_reply	 r;
	size_t			 i;

	x->pipe = (sc->ext & SMTPC_X_PIPELINING) != 0;
	smtpc_send_mail_line(sc, m, x->sender, x->utf8);
	if (x->pipe) {
		for (i = 0; i < m->nrcpt; i++)
			if (x->sent[i])
				smtpc_send_rcpt_line(sc, &m->rcpt[i],
				    smtpc_send_rcpt_addr(x, i));
		if (!x->bdat)
			smtpc_cmd(sc, "DATA");
	}
	if (smtpc_in_step(sc, "MAIL FROM") != 0 ||
	    smtpc_flush(sc, sc->t_cmd, "MAIL FROM") != 0 ||
	    smtpc_read_reply(sc, sc->t_cmd, "MAIL FROM", &r, NULL) != 0)
		return SMTPC_SEND_LOST;
	if (r.code / 100 == 2) {
		x->mail_ok = true;
		return SMTPC_SEND_NEXT;
	}
	smtpc_send_set_reply(m, x->st, -1, &r);
	if (r.code / 100 == 3)
		smtpc_die(sc, "unexpected reply to MAIL FROM");
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	if (sc->state != SMTPC_S_OK)
		return SMTPC_SEND_DONE;
	return x->pipe ? SMTPC_SEND_NEXT : SMTPC_SEND_RSET;
}

/*
 * smtpc_send_rcpts - each RCPT's reply (sending each first without
 * PIPELINING) is its recipient's result, or makes it wait for the final
 * dot. After a refused MAIL the replies (503s) are read and ignored.
 */
static enum smtpc_send_next
smtpc_send_rcpts(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtp_reply	 r;
	char			 status[16];
	size_t			 i;
	int			 code;

	for (i = 0; i < m->nrcpt; i++) {
		if (!x->sent[i])
			continue;
		if (!x->pipe) {
			smtpc_send_rcpt_line(sc, &m->rcpt[i],
			    smtpc_send_rcpt_addr(x, i));
			if (smtpc_in_step(sc, "RCPT TO") != 0 ||
			    smtpc_flush(sc, sc->t_cmd, "RCPT TO") != 0)
				return SMTPC_SEND_LOST;
		}
		if (smtpc_read_reply(sc, sc->t_cmd, "RCPT TO", &r, NULL) != 0)
			return SMTPC_SEND_LOST;
		if (r.code == 421) {
			smtpc_send_set_reply(m, x->st, -1, &r);
			sc->state = SMTPC_S_DEAD;
			return SMTPC_SEND_DONE;
		}
		if (!x->mail_ok)
			continue;	/* 503s after a refused MAIL */
		if (r.code / 100 == 2) {
			x->st[i] = SMTPC_R_ACCEPTED;
			x->nacc++;
			continue;
		}
		smtp_reply_status(&r, status);
		code = r.code;
		if (code == 452 && r.status[0] == '\0')
			strl_copy(status, "4.5.3", sizeof(status));
		else if (code == 552) {
			/* RFC 5321 §4.5.3.1.10: 552 to RCPT is "too many
			 * recipients" more often than not: a 452, as
			 * Postfix takes it. */
			code = 452;
			status[0] = '4';
			if (r.status[0] == '\0')
				strl_copy(status, "4.5.3", sizeof(status));
		} else if (code / 100 == 3) {
			code = 0;		/* nonsense: retry */
			status[0] = '4';
		}
		smtpc_send_set(&m->rcpt[i], &x->st[i], code, status, r.text);
	}
	return SMTPC_SEND_NEXT;
}

/*
 * smtpc_send_data - DATA (sent now without PIPELINING, and only when
 * somebody was accepted) and its reply. A refusal is the accepted
 * recipients' result; a 354 with nobody to send to (pipelined, RFC 2920
 * §3.1) gets a lone dot, and its reply is nobody's result.
 */
static enum smtpc_send_next
smtpc_send_data(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtp_reply	 r;
	struct smtp_dot		 d;

	if (x->bdat)		/* no DATA: the chunks go now, or nothing */
		return x->mail_ok && x->nacc > 0 ? SMTPC_SEND_NEXT :
		    SMTPC_SEND_RSET;
	if (!x->pipe) {
		if (!x->mail_ok || x->nacc == 0)
			return SMTPC_SEND_RSET;
		smtpc_cmd(sc, "DATA");
		if (smtpc_in_step(sc, "DATA") != 0 ||
		    smtpc_flush(sc, sc->t_cmd, "DATA") != 0)
			return SMTPC_SEND_LOST;
	}
	if (smtpc_read_reply(sc, sc->t_data, "DATA", &r, NULL) != 0)
		return SMTPC_SEND_LOST;
	if (r.code == 421) {
		smtpc_send_set_reply(m, x->st, -1, &r);
		sc->state = SMTPC_S_DEAD;
		return SMTPC_SEND_DONE;
	}
	if (r.code == 354 && (!x->mail_ok || x->nacc == 0)) {
		smtp_dot_begin(&d);
		smtp_dot_end(&d, sc->conn->out);
		if (smtpc_flush(sc, sc->t_data, "end of data") != 0 ||
		    smtpc_read_reply(sc, sc->t_dot, "end of data", &r,
		    NULL) != 0)
			return SMTPC_SEND_LOST;
		if (r.code == 421) {
			sc->state = SMTPC_S_DEAD;
			return SMTPC_SEND_DONE;
		}
		return SMTPC_SEND_RSET;
	}
	if (r.code == 354)
		return SMTPC_SEND_NEXT;
	if (r.code / 100 == 3 || r.code / 100 == 2) {
		/* Out of step: nothing more on this connection. */
		smtpc_die(sc, "unexpected reply from %s to DATA: %s",
		    sc->peer, r.text);
		smtpc_send_set_all(m, x->st, SMTPC_R_ACCEPTED, 0, "4.5.0",
		    sc->err);
		return SMTPC_SEND_DONE;
	}
	smtpc_send_set_reply(m, x->st, SMTPC_R_ACCEPTED, &r);
	return SMTPC_SEND_RSET;
}

/* The chunks of one message under way (smtpc_send_bdat). */
struct smtpc_bdat {
	size_t	nsent;		/* chunks sent */
	size_t	nread;		/* their replies read */
	bool	last_sent;	/* the LAST one is among them */
	bool	done;		/* the result is set: the replies still to
				 * come are read and ignored */
	bool	refused;	/* by a chunk's reply: RSET (RFC 3030 §2) */
};

/*
 * smtpc_bdat_reply - the next chunk's reply. The one to LAST is the
 * accepted recipients' result; a refusal of any chunk is too, and
 * nothing more is sent. -1: the connection is lost (no reply read).
 */
static int
smtpc_bdat_reply(struct smtpc_send_x *x, struct smtpc_bdat *b)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtp_reply	 r;
	bool			 last = b->last_sent && b->nread + 1 == b->nsent;

	if (smtpc_read_reply(sc, last ? sc->t_dot : sc->t_data,
	    last ? "BDAT LAST" : "BDAT", &r, NULL) != 0)
		return -1;
	b->nread++;
	if (r.code == 421) {
		if (!b->done)
			smtpc_send_set_reply(m, x->st, SMTPC_R_ACCEPTED, &r);
		sc->state = SMTPC_S_DEAD;
		b->done = true;
		return 0;
	}
	if (b->done)
		return 0;
	if (r.code / 100 == 3) {
		/* Nothing in BDAT asks for more: out of step. */
		smtpc_die(sc, "unexpected reply from %s to BDAT: %s",
		    sc->peer, r.text);
		strl_copy(sc->err_status, "4.5.0", sizeof(sc->err_status));
		smtpc_send_set_all(m, x->st, SMTPC_R_ACCEPTED, 0, "4.5.0",
		    sc->err);
		b->done = true;
		return 0;
	}
	if (r.code / 100 == 2) {
		if (last) {
			smtpc_send_set_reply(m, x->st, SMTPC_R_ACCEPTED, &r);
			b->done = true;
		}
		return 0;
	}
	smtpc_send_set_reply(m, x->st, SMTPC_R_ACCEPTED, &r);
	b->done = true;
	b->refused = true;
	return 0;
}

/*
 * smtpc_send_bdat - the message in BDAT chunks (RFC 3030 §2) and their
 * replies. A chunk is made whole before its command, so its size is
 * exact; a message that cannot be read here ends the connection, as in
 * DATA, so that no part of it is taken for the whole.
 */
static enum smtpc_send_next
smtpc_send_bdat(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtpc_bdat	 b;
	struct smtp_dot		 d;
	struct sbuf		*ck;
	const char		*data = NULL;
	size_t			 len = 0, take;
	bool			 eof = false;
	enum smtpc_send_next	 next = SMTPC_SEND_DONE;

	/* A reply already there answers a message not yet sent. */
	if (smtpc_in_step(sc, "the message content") != 0)
		return SMTPC_SEND_LOST;
	memset(&b, 0, sizeof(b));
	smtp_dot_begin(&d);
	ck = sbuf_new();
	while (!eof && !b.done) {
		while (sbuf_len(ck) < SMTPC_BDAT_CHUNK) {
			if (len == 0) {
				if (m->body(m->body_arg, &data, &len) != 0) {
					smtpc_send_set_all(m, x->st,
					    SMTPC_R_ACCEPTED, 0, "4.3.0",
					    "local error reading the queued "
					    "message");
					smtpc_die(sc, "local error reading the "
					    "queued message");
					sbuf_free(ck);
					return SMTPC_SEND_DONE;
				}
				if (len == 0) {
					eof = true;
					break;
				}
			}
			take = SMTPC_BDAT_CHUNK - sbuf_len(ck);
			if (take > len)
				take = len;
			if (x->binary)
				sbuf_catn(ck, data, take);
			else
				smtp_dot_plain(&d, ck, data, take);
			data += take;
			len -= take;
		}
		if (eof && !x->binary)
			smtp_dot_close(&d, ck);
		smtpc_cmd(sc, "BDAT %zu%s", sbuf_len(ck), eof ? " LAST" : "");
		sbuf_catn(sc->conn->out, sbuf_str(ck), sbuf_len(ck));
		sbuf_reset(ck);
		b.nsent++;
		b.last_sent = eof;
		if (smtpc_flush(sc, sc->t_data, "message content") != 0) {
			next = SMTPC_SEND_LOST;
			goto out;
		}
		/* Without PIPELINING each reply before the next chunk; with
		 * it, those that came meanwhile (a refusal stops us). */
		while (b.nread < b.nsent && (!x->pipe || eof ||
		    smtp_conn_avail(sc->conn) > 0))
			if (smtpc_bdat_reply(x, &b) != 0) {
				next = SMTPC_SEND_LOST;
				goto out;
			}
	}
	/* After a refusal, the replies to the chunks already sent. */
	while (b.nread < b.nsent && sc->state == SMTPC_S_OK)
		if (smtpc_bdat_reply(x, &b) != 0) {
			next = SMTPC_SEND_LOST;
			goto out;
		}
	if (b.refused && sc->state == SMTPC_S_OK)
		next = SMTPC_SEND_RSET;
out:
	sbuf_free(ck);
	return next;
}

/* smtpc_send_content - the message and the final dot; its reply is every
 * accepted recipient's. */
static enum smtpc_send_next
smtpc_send_content(struct smtpc_send_x *x)
{
	struct smtpc		*sc = x->sc;
	struct smtpc_msg	*m = x->m;
	struct smtp_reply	 r;
	char			 status[16];
	int			 rc, code;

	/* A reply already there answers a message not yet sent. */
	if (smtpc_in_step(sc, "the message content") != 0)
		return SMTPC_SEND_LOST;
	if ((rc = smtpc_send_body(sc, m)) == -2) {
		smtpc_send_set_all(m, x->st, SMTPC_R_ACCEPTED, 0, "4.3.0",
		    "local error reading the queued message");
		smtpc_die(sc, "local error reading the queued message");
		return SMTPC_SEND_DONE;
	}
	if (rc != 0 ||
	    smtpc_read_reply(sc, sc->t_dot, "end of data", &r, NULL) != 0)
		return SMTPC_SEND_LOST;
	smtp_reply_status(&r, status);
	code = r.code;
	if (code / 100 == 3) {
		code = 0;		/* a 3xx here is nonsense: retry */
		status[0] = '4';
	}
	smtpc_send_set_all(m, x->st, SMTPC_R_ACCEPTED, code, status, r.text);
	if (r.code == 421)
		sc->state = SMTPC_S_DEAD;
	return SMTPC_SEND_DONE;
}

int
smtpc_send(struct smtpc *sc, struct smtpc_msg *m)
{
	struct smtpc_send_x	 x;
	enum smtpc_send_next	 next;
	size_t			 i, n = m->nrcpt > 0 ? m->nrcpt : 1;

	memset(&x, 0, sizeof(x));
	x.sc = sc;
	x.m = m;
	x.st = xcalloc(n, 2);
	x.sent = x.st + n;
	for (i = 0; i < m->nrcpt; i++) {
		m->rcpt[i].code = 0;
		m->rcpt[i].status[0] = '\0';
		m->rcpt[i].reply[0] = '\0';
	}
	if (sc == NULL || sc->state != SMTPC_S_OK) {
		smtpc_send_set_all(m, x.st, -1, 0, "4.4.2", sc != NULL &&
		    sc->err[0] != '\0' ? sc->err : "connection not usable");
		free(x.st);
		return -1;
	}
	if (m->nrcpt == 0 || !smtpc_send_check(&x)) {
		free(x.st);
		free(x.sender);
		free(x.addr);
		return 0;
	}

	next = smtpc_send_mail(&x);
	if (next == SMTPC_SEND_NEXT)
		next = smtpc_send_rcpts(&x);
	if (next == SMTPC_SEND_NEXT)
		next = smtpc_send_data(&x);
	if (next == SMTPC_SEND_NEXT)
		next = x.bdat ? smtpc_send_bdat(&x) : smtpc_send_content(&x);
	if (next == SMTPC_SEND_RSET)
		smtpc_send_rset(sc);
	else if (next == SMTPC_SEND_LOST)
		/* RFC 5321 §3.8: a lost connection is a 451 for whatever
		 * has no final answer yet. */
		smtpc_send_set_all(m, x.st, -1, 0, sc->err_status, sc->err);
	/* Anything still without a result (cannot happen, but never leave
	 * a recipient "not tried" after a transaction). */
	smtpc_send_set_all(m, x.st, -1, 0, "4.4.2", sc->state == SMTPC_S_OK ?
	    "no reply" : sc->err[0] != '\0' ? sc->err : "connection closed");
	free(x.st);
	free(x.sender);
	free(x.addr);
	return sc->state == SMTPC_S_OK ? 0 : -1;
}

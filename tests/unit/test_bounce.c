/*
 * test_bounce.c - bounce/: status codes, the policy of who is told what,
 * and the composed DSN.
 *
 * With `--emit DIR` it writes instead a set of composed DSNs (every cause,
 * RET full and headers, the size cap, ENVID/ORCPT, three recipients, an
 * 8-bit original, hostile replies, ...) as DIR/NAME.eml, for
 * tests/integ/cases/400-bounce-format.sh to check with dsn_check.py. The
 * hostname, clock and token are pinned, so each file is the same on
 * every run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bounce.h"
#include "smtp.h"
#include "tharness.h"

#define TB_NOW		((time_t)1764750000)	/* 2025-12-03 08:20:00 UTC */
#define TB_HOST		"mx2.example.net"

/* ------------------------------------------------------------------ */
/* dsn.c */

static void
test_from_reply(struct t *t)
{
	static const struct {
		const char	*reply;
		int		 rc;
		enum dsn_action	 action;
		const char	*status;
		const char	*clean;	/* the reply as kept, or NULL: same */
	} tab[] = {
		{ "550 5.1.1 <bob@example.org>: user unknown", 0,
		    DSN_ACTION_FAILED, "5.1.1", NULL },
		{ "550 user unknown", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "554", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "450 4.2.2 mailbox full", 0, DSN_ACTION_DELAYED, "4.2.2",
		    NULL },
		{ "451 5.1.1 class disagrees", 0, DSN_ACTION_DELAYED, "4.0.0",
		    NULL },
		{ "550 4.1.1 class disagrees", 0, DSN_ACTION_FAILED, "5.0.0",
		    NULL },
		{ "250 2.0.0 Ok: queued as X", 0, DSN_ACTION_RELAYED,
		    "2.0.0", NULL },
		{ "550 5.01.001 zeros", 0, DSN_ACTION_FAILED, "5.1.1", NULL },
		{ "550 5.1.10 null MX", 0, DSN_ACTION_FAILED, "5.1.10", NULL },
		{ "550 5.999.999 top", 0, DSN_ACTION_FAILED, "5.999.999",
		    NULL },
		{ "550 5.1.1000 four digits", 0, DSN_ACTION_FAILED, "5.0.0",
		    NULL },
		{ "550 5.1234.1 four digits", 0, DSN_ACTION_FAILED, "5.0.0",
		    NULL },
		{ "550 5..1 empty", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "550 5.1. cut", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "550 5.1.1x glued", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "550 3.1.1 class 3", 0, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "550-5.7.1 first line", 0, DSN_ACTION_FAILED, "5.7.1", NULL },
		{ "550 5.7.1\tpolicy", 0, DSN_ACTION_FAILED, "5.7.1",
		    "550 5.7.1 policy" },
		{ "550 5.1.1 a\r\nBcc: x@evil\r\n", 0, DSN_ACTION_FAILED,
		    "5.1.1", "550 5.1.1 a  Bcc: x@evil  " },
		{ "550 5.1.1 caf\xc3\xa9\x7f", 0, DSN_ACTION_FAILED, "5.1.1",
		    "550 5.1.1 caf?? " },
		{ "", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "hello", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "650 bad class", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "55", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "5x0 x", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
		{ "550x", -1, DSN_ACTION_FAILED, "5.0.0", NULL },
	};
	struct dsn	d;
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		rc = dsn_from_reply(tab[i].reply, "mx.example.org", &d);
		if (rc != tab[i].rc || d.action != tab[i].action ||
		    strcmp(d.status, tab[i].status) != 0)
			t_errorf(t, "dsn_from_reply(\"%s\"): got %d %s %s, "
			    "want %d %s %s", tab[i].reply, rc,
			    dsn_action_name(d.action), d.status, tab[i].rc,
			    dsn_action_name(tab[i].action), tab[i].status);
		if (strcmp(d.reply, tab[i].clean != NULL ? tab[i].clean :
		    tab[i].reply) != 0)
			t_errorf(t, "dsn_from_reply(\"%s\"): reply \"%s\"",
			    tab[i].reply, d.reply);
		if (strcmp(d.rmta, "mx.example.org") != 0)
			t_errorf(t, "dsn_from_reply: rmta \"%s\"", d.rmta);
	}
	/* A hostile remote MTA name is dropped, not written. */
	dsn_from_reply("550 x", "mx\r\nBcc: a", &d);
	if (d.rmta[0] != '\0')
		t_errorf(t, "dsn_from_reply: hostile rmta kept: \"%s\"",
		    d.rmta);
	dsn_from_reply("550 x", NULL, &d);
	if (d.rmta[0] != '\0')
		t_errorf(t, "dsn_from_reply(rmta NULL): \"%s\"", d.rmta);
}

static void
test_status(struct t *t)
{
	static const struct {
		const char	*s;
		bool		 valid;
		int		 cls;
		const char	*parsed;	/* dsn_status_parse, "" none */
	} tab[] = {
		{ "5.1.1", true, 5, "5.1.1" },
		{ "2.0.0", true, 2, "2.0.0" },
		{ "4.4.7", true, 4, "4.4.7" },
		{ "5.1.10", true, 5, "5.1.10" },
		{ "5.999.999", true, 5, "5.999.999" },
		{ "5.01.1", false, 0, "5.1.1" },
		{ "5.1.001", false, 0, "5.1.1" },
		{ "5.1000.1", false, 0, "" },
		{ "6.0.0", false, 0, "" },
		{ "3.0.0", false, 0, "" },
		{ "5.1", false, 0, "" },
		{ "5.1.1 ", false, 0, "5.1.1" },
		{ "5.1.1.1", false, 0, "" },
		{ "", false, 0, "" },
		{ "x.1.1", false, 0, "" },
		{ "5.-1.1", false, 0, "" },
	};
	char	out[DSN_STATUS_MAX];
	size_t	i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (dsn_status_valid(tab[i].s) != tab[i].valid)
			t_errorf(t, "dsn_status_valid(\"%s\"): got %d, want "
			    "%d", tab[i].s, !tab[i].valid, tab[i].valid);
		if (dsn_status_class(tab[i].s) != tab[i].cls)
			t_errorf(t, "dsn_status_class(\"%s\"): got %d, want "
			    "%d", tab[i].s, dsn_status_class(tab[i].s),
			    tab[i].cls);
		dsn_status_parse(tab[i].s, out);
		if (strcmp(out, tab[i].parsed) != 0)
			t_errorf(t, "dsn_status_parse(\"%s\"): got \"%s\", "
			    "want \"%s\"", tab[i].s, out, tab[i].parsed);
	}
}

static void
test_for_cause(struct t *t)
{
	static const struct {
		enum dsn_cause	 cause;
		const char	*given;
		enum dsn_action	 action;
		const char	*status;
	} tab[] = {
		{ DSN_CAUSE_NULLMX, NULL, DSN_ACTION_FAILED, "5.1.10" },
		{ DSN_CAUSE_NXDOMAIN, NULL, DSN_ACTION_FAILED, "5.1.2" },
		{ DSN_CAUSE_LOOP, NULL, DSN_ACTION_FAILED, "5.4.6" },
		{ DSN_CAUSE_HOPS, "", DSN_ACTION_FAILED, "5.4.6" },
		{ DSN_CAUSE_ADMIN, NULL, DSN_ACTION_FAILED, "5.0.0" },
		{ DSN_CAUSE_EXPIRED, NULL, DSN_ACTION_FAILED, "4.4.7" },
		{ DSN_CAUSE_EXPIRED, "4.4.1", DSN_ACTION_FAILED, "4.4.1" },
		{ DSN_CAUSE_EXPIRED, "4.04.01", DSN_ACTION_FAILED, "4.4.1" },
		{ DSN_CAUSE_EXPIRED, "2.0.0", DSN_ACTION_FAILED, "4.4.7" },
		{ DSN_CAUSE_EXPIRED, "junk", DSN_ACTION_FAILED, "4.4.7" },
		{ DSN_CAUSE_HOLD_EXPIRED, NULL, DSN_ACTION_FAILED, "4.4.7" },
		{ DSN_CAUSE_DELAY, "4.4.1", DSN_ACTION_DELAYED, "4.4.1" },
		{ DSN_CAUSE_DELAY, "5.1.1", DSN_ACTION_DELAYED, "4.0.0" },
		{ DSN_CAUSE_SUCCESS, NULL, DSN_ACTION_RELAYED, "2.0.0" },
		{ DSN_CAUSE_SUCCESS, "2.6.0", DSN_ACTION_RELAYED, "2.6.0" },
		{ DSN_CAUSE_REPLY, "5.7.1", DSN_ACTION_FAILED, "5.7.1" },
	};
	struct dsn	d;
	size_t		i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		dsn_for_cause(tab[i].cause, tab[i].given, NULL, NULL, &d);
		if (d.action != tab[i].action || d.cause != tab[i].cause ||
		    strcmp(d.status, tab[i].status) != 0)
			t_errorf(t, "dsn_for_cause(%s, %s): got %s %s, want "
			    "%s %s", dsn_cause_name(tab[i].cause),
			    tab[i].given ? tab[i].given : "NULL",
			    dsn_action_name(d.action), d.status,
			    dsn_action_name(tab[i].action), tab[i].status);
	}
}

static void
test_xtext(struct t *t)
{
	static const struct {
		const char	*in;
		int		 rc;
		const char	*out;
	} tab[] = {
		{ "QQ+2B314159", 9, "QQ+314159" },
		{ "+41+42", 2, "AB" },
		{ "", 0, "" },
		{ "rfc822", 6, "rfc822" },
		{ "a+2", -1, NULL },
		{ "a+2b", -1, NULL },	/* xtext hex is upper case */
		{ "a+", -1, NULL },
		{ "a=b", -1, NULL },
		{ "a b", -1, NULL },
		{ "a\x7f", -1, NULL },
		{ "0123456789", -1, NULL },	/* over the 10-byte buffer */
	};
	char	out[10];
	size_t	i;
	int	rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		rc = dsn_xtext_decode(tab[i].in, out, sizeof(out));
		if (rc != tab[i].rc || (rc >= 0 && strcmp(out, tab[i].out)))
			t_errorf(t, "dsn_xtext_decode(\"%s\"): got %d \"%s\", "
			    "want %d \"%s\"", tab[i].in, rc, rc >= 0 ? out :
			    "", tab[i].rc, tab[i].out ? tab[i].out : "");
	}
}

/* ------------------------------------------------------------------ */
/* bounce_policy.c */

#define N_	QRCPT_NOTIFY_NEVER
#define S_	QRCPT_NOTIFY_SUCCESS
#define F_	QRCPT_NOTIFY_FAILURE
#define D_	QRCPT_NOTIFY_DELAY

static void
test_wants(struct t *t)
{
	/* Each NOTIFY combination: failure, delay, success (hop without
	 * DSN), success (hop with DSN). */
	static const struct {
		uint8_t	notify;
		bool	fail, delay, succ, succ_dsn;
	} tab[] = {
		{ 0, true, false, false, false },
		{ N_, false, false, false, false },
		{ F_, true, false, false, false },
		{ D_, false, true, false, false },
		{ S_, false, false, true, false },
		{ F_ | D_, true, true, false, false },
		{ F_ | S_, true, false, true, false },
		{ D_ | S_, false, true, true, false },
		{ F_ | D_ | S_, true, true, true, false },
		/* NEVER with others cannot pass smtpd; it still wins. */
		{ N_ | F_ | D_ | S_, false, false, false, false },
	};
	size_t	i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (bounce_policy_wants(tab[i].notify, DSN_KIND_FAILURE,
		    false) != tab[i].fail ||
		    bounce_policy_wants(tab[i].notify, DSN_KIND_DELAY,
		    false) != tab[i].delay ||
		    bounce_policy_wants(tab[i].notify, DSN_KIND_SUCCESS,
		    false) != tab[i].succ ||
		    bounce_policy_wants(tab[i].notify, DSN_KIND_SUCCESS,
		    true) != tab[i].succ_dsn)
			t_errorf(t, "bounce_policy_wants(notify=0x%x): got "
			    "%d%d%d%d, want %d%d%d%d", tab[i].notify,
			    bounce_policy_wants(tab[i].notify,
			    DSN_KIND_FAILURE, false),
			    bounce_policy_wants(tab[i].notify,
			    DSN_KIND_DELAY, false),
			    bounce_policy_wants(tab[i].notify,
			    DSN_KIND_SUCCESS, false),
			    bounce_policy_wants(tab[i].notify,
			    DSN_KIND_SUCCESS, true), tab[i].fail,
			    tab[i].delay, tab[i].succ, tab[i].succ_dsn);
	}
}

/* A message and its recipients for the policy and composer tests. */
struct tb_fix {
	struct qmsg		msg;
	struct qrcpt		rcpt[4];
	struct bounce_item	item[4];
	size_t			n;
	struct bounce_conf	bc;
	char			dbr[300];
};

static void
tb_fix_init(struct tb_fix *f, const char *sender, size_t n)
{
	size_t	i;

	memset(f, 0, sizeof(*f));
	bounce_conf_init(&f->bc, TB_HOST, f->dbr, sizeof(f->dbr));
	f->msg.id = 1;
	f->msg.arrival = TB_NOW - 3 * 3600;
	f->msg.size = 1000;
	strl_copy(f->msg.sender, sender, sizeof(f->msg.sender));
	strl_copy(f->msg.client, "mail.example.com[192.0.2.10]",
	    sizeof(f->msg.client));
	f->n = n;
	for (i = 0; i < n && i < 4; i++) {
		f->rcpt[i].idx = (uint32_t)i;
		f->rcpt[i].state = QRCPT_FAILED;
		bsnprintf(f->rcpt[i].addr, sizeof(f->rcpt[i].addr),
		    "user%zu@example.org", i + 1);
		f->item[i].rcpt = &f->rcpt[i];
		dsn_from_reply("550 5.1.1 user unknown", "mx.example.org",
		    &f->item[i].dsn);
		f->item[i].last_attempt = TB_NOW - 5;
	}
}

static void
test_plan(struct t *t)
{
	static const struct {
		const char	*name;
		const char	*sender;
		uint32_t	 mflags;
		uint8_t		 notify[3];
		enum dsn_kind	 kind;
		bool		 hop_dsn;
		bool		 dbr_empty;
		bool		 rcpt1_is_dbr;	/* rcpt 1 is postmaster@ */
		enum bounce_to	 to;
		enum bounce_why	 why;
		bool		 inc[3];
	} tab[] = {
		{ "3 failed, no NOTIFY", "alice@example.com", 0, { 0, 0, 0 },
		    DSN_KIND_FAILURE, false, false, false, BOUNCE_TO_SENDER,
		    BOUNCE_WHY_SEND, { true, true, true } },
		{ "NEVER, FAILURE, SUCCESS", "alice@example.com", 0,
		    { N_, F_, S_ }, DSN_KIND_FAILURE, false, false, false,
		    BOUNCE_TO_SENDER, BOUNCE_WHY_SEND,
		    { false, true, false } },
		{ "all NEVER", "alice@example.com", 0, { N_, N_, N_ },
		    DSN_KIND_FAILURE, false, false, false, BOUNCE_TO_NONE,
		    BOUNCE_WHY_NOTIFY, { false, false, false } },
		{ "DELAY only, failure", "alice@example.com", 0,
		    { D_, D_ | S_, D_ }, DSN_KIND_FAILURE, false, false,
		    false, BOUNCE_TO_NONE, BOUNCE_WHY_NOTIFY,
		    { false, false, false } },
		{ "null sender: double bounce", "", 0, { 0, F_, 0 },
		    DSN_KIND_FAILURE, false, false, false,
		    BOUNCE_TO_POSTMASTER, BOUNCE_WHY_SEND,
		    { true, true, true } },
		{ "null sender, NEVER", "", 0, { N_, 0, 0 },
		    DSN_KIND_FAILURE, false, false, false,
		    BOUNCE_TO_POSTMASTER, BOUNCE_WHY_SEND,
		    { false, true, true } },
		{ "null sender, no double_bounce_recipient", "", 0,
		    { 0, 0, 0 }, DSN_KIND_FAILURE, false, true, false,
		    BOUNCE_TO_NONE, BOUNCE_WHY_NO_POSTMASTER,
		    { false, false, false } },
		{ "our DSN failed: double bounce", "", QMSG_F_DSN,
		    { 0, 0, 0 }, DSN_KIND_FAILURE, false, false, false,
		    BOUNCE_TO_POSTMASTER, BOUNCE_WHY_SEND,
		    { true, true, true } },
		{ "our double bounce failed (NEVER)", "", QMSG_F_DSN,
		    { N_, N_, N_ }, DSN_KIND_FAILURE, false, false, false,
		    BOUNCE_TO_NONE, BOUNCE_WHY_DOUBLE_FAILED,
		    { false, false, false } },
		{ "our double bounce failed (to postmaster)", "", QMSG_F_DSN,
		    { 0, 0, 0 }, DSN_KIND_FAILURE, false, false, true,
		    BOUNCE_TO_POSTMASTER, BOUNCE_WHY_SEND,
		    { true, false, true } },
		{ "null sender: no delay warning", "", 0, { D_, D_, D_ },
		    DSN_KIND_DELAY, false, false, false, BOUNCE_TO_NONE,
		    BOUNCE_WHY_NO_SUCCESS_FROM_NULL,
		    { false, false, false } },
		{ "delay: DELAY only", "alice@example.com", 0,
		    { D_, F_, 0 }, DSN_KIND_DELAY, false, false, false,
		    BOUNCE_TO_SENDER, BOUNCE_WHY_SEND,
		    { true, false, false } },
		{ "success via non-DSN hop", "alice@example.com", 0,
		    { S_, F_, S_ | F_ }, DSN_KIND_SUCCESS, false, false,
		    false, BOUNCE_TO_SENDER, BOUNCE_WHY_SEND,
		    { true, false, true } },
		{ "success via DSN hop: theirs", "alice@example.com", 0,
		    { S_, S_, S_ }, DSN_KIND_SUCCESS, true, false, false,
		    BOUNCE_TO_NONE, BOUNCE_WHY_NOTIFY,
		    { false, false, false } },
	};
	struct tb_fix		f;
	struct bounce_plan	p;
	bool			inc[3];
	size_t			i, j;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		tb_fix_init(&f, tab[i].sender, 3);
		f.msg.flags = tab[i].mflags;
		if (tab[i].dbr_empty)
			f.bc.double_bounce_recipient = "";
		if (tab[i].rcpt1_is_dbr)
			strl_copy(f.rcpt[1].addr, "PostMaster@" TB_HOST,
			    sizeof(f.rcpt[1].addr));
		for (j = 0; j < 3; j++) {
			f.rcpt[j].notify = tab[i].notify[j];
			if (tab[i].kind == DSN_KIND_DELAY)
				dsn_from_reply("451 4.4.1 later", NULL,
				    &f.item[j].dsn);
			else if (tab[i].kind == DSN_KIND_SUCCESS)
				dsn_for_cause(DSN_CAUSE_SUCCESS, NULL,
				    "mx.example.org", "250 ok",
				    &f.item[j].dsn);
		}
		bounce_policy_plan(&f.bc, &f.msg, f.item, 3, tab[i].kind,
		    tab[i].hop_dsn, inc, &p);
		if (p.to != tab[i].to || p.why != tab[i].why)
			t_errorf(t, "plan(%s): got to=%d why=%d (%s), want "
			    "to=%d why=%d", tab[i].name, p.to, p.why,
			    bounce_policy_log_text(&p), tab[i].to,
			    tab[i].why);
		for (j = 0; j < 3; j++)
			if (inc[j] != tab[i].inc[j])
				t_errorf(t, "plan(%s): recipient %zu included "
				    "%d, want %d", tab[i].name, j, inc[j],
				    tab[i].inc[j]);
		if (p.to == BOUNCE_TO_SENDER &&
		    strcmp(p.rcpt, tab[i].sender) != 0)
			t_errorf(t, "plan(%s): rcpt %s", tab[i].name, p.rcpt);
		if (p.to == BOUNCE_TO_POSTMASTER &&
		    strcmp(p.rcpt, "postmaster@" TB_HOST) != 0)
			t_errorf(t, "plan(%s): rcpt %s", tab[i].name, p.rcpt);
		if (p.to == BOUNCE_TO_NONE && p.nitems != 0)
			t_errorf(t, "plan(%s): nothing sent but %zu items",
			    tab[i].name, p.nitems);
	}
	/* Items of another action are not in a failure notice. */
	tb_fix_init(&f, "alice@example.com", 3);
	dsn_from_reply("451 4.4.1 later", NULL, &f.item[1].dsn);
	bounce_policy_plan(&f.bc, &f.msg, f.item, 3, DSN_KIND_FAILURE, false,
	    inc, &p);
	if (p.nitems != 2 || inc[1])
		t_errorf(t, "plan(mixed actions): %zu items, delayed one "
		    "included %d", p.nitems, inc[1]);
	if (strcmp(bounce_policy_log_text(&p),
	    "sender non-delivery notification") != 0)
		t_errorf(t, "log text: %s", bounce_policy_log_text(&p));
}

static void
test_return(struct t *t)
{
	static const struct {
		uint32_t		flags;
		enum bounce_return	dflt;
		uint64_t		size;
		enum dsn_kind		kind;
		bool			full, capped;
	} tab[] = {
		{ 0, BOUNCE_RETURN_HEADERS, 1000, DSN_KIND_FAILURE, false,
		    false },
		{ 0, BOUNCE_RETURN_FULL, 1000, DSN_KIND_FAILURE, true, false },
		{ 0, BOUNCE_RETURN_FULL, 60000, DSN_KIND_FAILURE, false,
		    true },
		{ QMSG_F_RET_FULL, BOUNCE_RETURN_HEADERS, 1000,
		    DSN_KIND_FAILURE, true, false },
		{ QMSG_F_RET_FULL, BOUNCE_RETURN_HEADERS, 51200,
		    DSN_KIND_FAILURE, true, false },
		{ QMSG_F_RET_FULL, BOUNCE_RETURN_HEADERS, 51201,
		    DSN_KIND_FAILURE, false, true },
		{ QMSG_F_RET_HDRS, BOUNCE_RETURN_FULL, 1000,
		    DSN_KIND_FAILURE, false, false },
		{ QMSG_F_RET_FULL, BOUNCE_RETURN_FULL, 1000, DSN_KIND_DELAY,
		    false, false },
		{ QMSG_F_RET_FULL, BOUNCE_RETURN_FULL, 1000,
		    DSN_KIND_SUCCESS, false, false },
	};
	struct tb_fix	f;
	size_t		i;
	bool		full, capped;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		tb_fix_init(&f, "alice@example.com", 1);
		f.msg.flags = tab[i].flags;
		f.msg.size = tab[i].size;
		f.bc.bounce_return = tab[i].dflt;
		full = bounce_policy_return(&f.bc, &f.msg, tab[i].kind,
		    &capped);
		if (full != tab[i].full || capped != tab[i].capped)
			t_errorf(t, "bounce_policy_return(row %zu): got "
			    "full=%d capped=%d, want %d %d", i, full, capped,
			    tab[i].full, tab[i].capped);
	}
	/* bounce_size_limit 0: no cap. */
	tb_fix_init(&f, "alice@example.com", 1);
	f.msg.flags = QMSG_F_RET_FULL;
	f.msg.size = 1 << 30;
	f.bc.bounce_size_limit = 0;
	if (!bounce_policy_return(&f.bc, &f.msg, DSN_KIND_FAILURE, &capped) ||
	    capped)
		t_errorf(t, "bounce_policy_return(limit 0): capped");
}

static void
test_delay_due(struct t *t)
{
	static const struct {
		const char	*name;
		const char	*sender;
		uint8_t		 notify, state, rflags;
		int64_t		 dw;
		unsigned	 max, sent;
		int64_t		 age;
		bool		 due;
	} tab[] = {
		{ "not yet", "a@b.example", D_, QRCPT_DEFERRED, 0, 14400, 1,
		    0, 14399, false },
		{ "due", "a@b.example", D_, QRCPT_DEFERRED, 0, 14400, 1, 0,
		    14400, true },
		{ "active is due too", "a@b.example", D_ | F_, QRCPT_ACTIVE,
		    0, 14400, 1, 0, 20000, true },
		{ "one sent, max 1", "a@b.example", D_, QRCPT_DEFERRED, 0,
		    14400, 1, 1, 90000, false },
		{ "one sent, max 2, early", "a@b.example", D_,
		    QRCPT_DEFERRED, 0, 14400, 2, 1, 28799, false },
		{ "one sent, max 2, due", "a@b.example", D_, QRCPT_DEFERRED,
		    0, 14400, 2, 1, 28800, true },
		{ "no NOTIFY", "a@b.example", 0, QRCPT_DEFERRED, 0, 14400,
		    1, 0, 90000, false },
		{ "NOTIFY FAILURE", "a@b.example", F_, QRCPT_DEFERRED, 0,
		    14400, 1, 0, 90000, false },
		{ "NEVER", "a@b.example", N_, QRCPT_DEFERRED, 0, 14400, 1,
		    0, 90000, false },
		{ "held for its site", "a@b.example", D_, QRCPT_HELD,
		    QRCPT_F_SITE, 14400, 1, 0, 90000, false },
		{ "site flag, flushed and active", "a@b.example", D_,
		    QRCPT_ACTIVE, QRCPT_F_SITE, 14400, 1, 0, 90000, false },
		{ "operator hold", "a@b.example", D_, QRCPT_HELD,
		    QRCPT_F_OPHOLD, 14400, 1, 0, 90000, false },
		{ "null sender", "", D_, QRCPT_DEFERRED, 0, 14400, 1, 0,
		    90000, false },
		{ "off", "a@b.example", D_, QRCPT_DEFERRED, 0, 0, 1, 0,
		    90000, false },
		{ "final", "a@b.example", D_, QRCPT_FAILED, 0, 14400, 1, 0,
		    90000, false },
		{ "max 0", "a@b.example", D_, QRCPT_DEFERRED, 0, 14400, 0, 0,
		    90000, false },
	};
	struct tb_fix	f;
	size_t		i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		tb_fix_init(&f, tab[i].sender, 1);
		f.rcpt[0].notify = tab[i].notify;
		f.rcpt[0].state = tab[i].state;
		f.rcpt[0].flags = tab[i].rflags;
		f.bc.delay_warning = tab[i].dw;
		f.bc.max_delay_warnings = tab[i].max;
		f.msg.arrival = TB_NOW - tab[i].age;
		if (bounce_policy_delay_due(&f.bc, &f.msg, &f.rcpt[0],
		    tab[i].sent, TB_NOW) != tab[i].due)
			t_errorf(t, "bounce_policy_delay_due(%s): got %d, want "
			    "%d", tab[i].name, !tab[i].due, tab[i].due);
	}
}

/* ------------------------------------------------------------------ */
/* bounce_compose.c */

/* A named composition: the emitted set, and the unit checks' input. */
struct tb_case {
	const char	*name;
	void		(*setup)(struct tb_fix *, struct sbuf *body);
	enum dsn_kind	 kind;
};

static void
tb_body_plain(struct sbuf *b)
{
	sbuf_cat(b, "Received: from client.example.com (client.example.com "
	    "[192.0.2.10])\r\n\tby " TB_HOST " with ESMTP id 1ABC;\r\n"
	    "\tWed, 3 Dec 2025 05:19:00 +0000\r\n"
	    "From: Alice <alice@example.com>\r\n"
	    "To: Bob <user1@example.org>\r\n"
	    "Subject: quarterly numbers\r\n"
	    "Message-ID: <orig.1@example.com>\r\n"
	    "\r\n"
	    "BODY-MARKER-7f3a: the secret body line\r\n"
	    "second line\r\n");
}

static void
tb_fix_body(struct tb_fix *f, struct sbuf *b)
{
	f->msg.size = sbuf_len(b);
}

static void
su_reply(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "alice@example.com", 1);
	tb_body_plain(b);
	tb_fix_body(f, b);
}

static void
su_three(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "alice@example.com", 3);
	dsn_from_reply("552 5.2.2 mailbox full", "mx2.example.org",
	    &f->item[1].dsn);
	dsn_from_reply("550 5.7.1 refused by policy: see "
	    "https://example.org/policy/a-rather-long-url-that-goes-on-and-"
	    "on-to-make-this-reply-longer-than-one-folded-line",
	    "mx3.example.org", &f->item[2].dsn);
	tb_body_plain(b);
	tb_fix_body(f, b);
}

static void
su_cause(struct tb_fix *f, struct sbuf *b, enum dsn_cause c,
    const char *st, const char *rmta, const char *reply)
{
	tb_fix_init(f, "alice@example.com", 1);
	dsn_for_cause(c, st, rmta, reply, &f->item[0].dsn);
	if (rmta == NULL && reply == NULL)
		f->item[0].last_attempt = 0;
	tb_body_plain(b);
	tb_fix_body(f, b);
}

static void
su_expired(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_EXPIRED, "4.4.1", "mx.example.org",
	    "421 4.4.1 connection timed out");
	f->msg.arrival = TB_NOW - 5 * 86400;
}

static void
su_expired_nostatus(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_EXPIRED, NULL, NULL, NULL);
	f->msg.arrival = TB_NOW - 5 * 86400;
}

static void
su_hold(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_HOLD_EXPIRED, NULL, NULL, NULL);
	f->msg.arrival = TB_NOW - 7 * 86400;
	f->rcpt[0].flags = QRCPT_F_SITE;
}

static void
su_nullmx(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_NULLMX, NULL, NULL, NULL);
}

static void
su_nxdomain(struct tb_fix *f, struct sbuf *b)
{
	/* A local cause with our own text: an X- diagnostic, not smtp. */
	su_cause(f, b, DSN_CAUSE_NXDOMAIN, NULL, NULL,
	    "Host or domain name not found (NXDOMAIN)");
}

static void
su_loop(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_LOOP, NULL, NULL, NULL);
}

static void
su_hops(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_HOPS, NULL, NULL, NULL);
}

static void
su_admin(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_ADMIN, NULL, NULL, NULL);
}

static void
su_delay(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_DELAY, "4.4.1", "mx.example.org",
	    "451 4.4.1 try again later");
	f->rcpt[0].state = QRCPT_DEFERRED;
	f->rcpt[0].notify = QRCPT_NOTIFY_DELAY | QRCPT_NOTIFY_FAILURE;
	f->msg.flags = QMSG_F_RET_FULL;		/* still headers only */
	f->item[0].retry_until = TB_NOW + 4 * 86400;
}

static void
su_success(struct tb_fix *f, struct sbuf *b)
{
	su_cause(f, b, DSN_CAUSE_SUCCESS, "2.0.0", "mx.example.org",
	    "250 2.0.0 Ok: queued as 4XyZ");
	f->rcpt[0].state = QRCPT_DELIVERED;
	f->rcpt[0].notify = QRCPT_NOTIFY_SUCCESS;
}

static void
su_ret_full(struct tb_fix *f, struct sbuf *b)
{
	su_reply(f, b);
	f->msg.flags = QMSG_F_RET_FULL;
}

static void
su_ret_hdrs(struct tb_fix *f, struct sbuf *b)
{
	su_reply(f, b);
	f->msg.flags = QMSG_F_RET_HDRS;
	f->bc.bounce_return = BOUNCE_RETURN_FULL;
}

static void
su_return_full(struct tb_fix *f, struct sbuf *b)
{
	su_reply(f, b);
	f->bc.bounce_return = BOUNCE_RETURN_FULL;
}

static void
su_capped(struct tb_fix *f, struct sbuf *b)
{
	size_t	i;

	su_reply(f, b);
	for (i = 0; i < 1200; i++)
		sbuf_catf(b, "filler line %zu of a large message body, "
		    "BODY-MARKER-7f3a\r\n", i);
	tb_fix_body(f, b);
	f->msg.flags = QMSG_F_RET_FULL;
}

static void
su_envid(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "alice@example.com", 2);
	strl_copy(f->msg.envid, "QQ+2B314159", sizeof(f->msg.envid));
	strl_copy(f->rcpt[0].orcpt, "rfc822;User1+2Bx@Example.ORG",
	    sizeof(f->rcpt[0].orcpt));
	tb_body_plain(b);
	tb_fix_body(f, b);
}

static void
su_eightbit(struct tb_fix *f, struct sbuf *b)
{
	su_reply(f, b);
	sbuf_reset(b);
	sbuf_cat(b, "From: Ren\xc3\xa9 <alice@example.com>\r\n"
	    "Subject: caf\xc3\xa9\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "BODY-MARKER-7f3a na\xc3\xafve\r\n");
	tb_fix_body(f, b);
	f->msg.flags = QMSG_F_RET_FULL | QMSG_F_8BITMIME;
}

static void
su_hostile(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "alice@example.com\r\nBcc: victim@example.net", 2);
	dsn_from_reply("550 5.1.1 no\r\nInjected: yes\r\n\r\n"
	    "--=_postern_tok-hostile_0--\r\n", "mx.example.org\r\nX: y",
	    &f->item[0].dsn);
	/* Straight into the struct, past dsn_from_reply's cleaning: the
	 * composer must clean again. */
	strl_copy(f->item[1].dsn.reply, "550 5.1.1 x\rInjected: yes\n"
	    "Injected: too\x1b[31m", sizeof(f->item[1].dsn.reply));
	strl_copy(f->item[1].dsn.rmta, "mx\nInjected: host",
	    sizeof(f->item[1].dsn.rmta));
	strl_copy(f->rcpt[1].addr, "\"odd\r\nInjected: rcpt\"@example.org",
	    sizeof(f->rcpt[1].addr));
	strl_copy(f->rcpt[1].orcpt, "rfc822;x\r\nInjected: orcpt",
	    sizeof(f->rcpt[1].orcpt));
	strl_copy(f->msg.envid, "E+0D+0AInjected:+20envid",
	    sizeof(f->msg.envid));
	strl_copy(f->msg.client, "evil\r\nInjected: client[1.2.3.4]",
	    sizeof(f->msg.client));
	tb_body_plain(b);
	sbuf_cat(b, "--=_postern_tok-hostile_0\r\n");
	tb_fix_body(f, b);
	f->msg.flags = QMSG_F_RET_FULL;
}

static void
su_double(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "", 1);
	f->msg.flags = QMSG_F_DSN;
	strl_copy(f->rcpt[0].addr, "alice@example.com",
	    sizeof(f->rcpt[0].addr));
	tb_body_plain(b);
	tb_fix_body(f, b);
}

static void
su_utf8(struct tb_fix *f, struct sbuf *b)
{
	tb_fix_init(f, "ren\xc3\xa9@example.com", 2);
	strl_copy(f->rcpt[0].addr, "j\xc3\xb6rg@example.org",
	    sizeof(f->rcpt[0].addr));
	f->msg.flags = QMSG_F_SMTPUTF8 | QMSG_F_8BITMIME;
	sbuf_cat(b, "From: ren\xc3\xa9@example.com\r\n"
	    "To: j\xc3\xb6rg@example.org\r\nSubject: gr\xc3\xbc\xc3\x9f"
	    "e\r\n\r\nBODY-MARKER-7f3a\r\n");
	tb_fix_body(f, b);
}

static void
su_longline(struct tb_fix *f, struct sbuf *b)
{
	size_t	i;

	su_reply(f, b);
	sbuf_reset(b);
	sbuf_cat(b, "Subject: long header ");
	for (i = 0; i < 1500; i++)
		sbuf_catc(b, 'h');
	sbuf_cat(b, "\r\nX-Bare-LF: a\nX-Bare-CR: b\r\n\r\nBODY-MARKER-7f3a ");
	for (i = 0; i < 1500; i++)
		sbuf_catc(b, 'b');
	sbuf_cat(b, "\r\n");
	tb_fix_body(f, b);
	f->msg.flags = QMSG_F_RET_FULL;
}

static const struct tb_case tb_cases[] = {
	{ "reply-5xx", su_reply, DSN_KIND_FAILURE },
	{ "three-rcpts", su_three, DSN_KIND_FAILURE },
	{ "expired", su_expired, DSN_KIND_FAILURE },
	{ "expired-nostatus", su_expired_nostatus, DSN_KIND_FAILURE },
	{ "hold-expired", su_hold, DSN_KIND_FAILURE },
	{ "nullmx", su_nullmx, DSN_KIND_FAILURE },
	{ "nxdomain", su_nxdomain, DSN_KIND_FAILURE },
	{ "loop", su_loop, DSN_KIND_FAILURE },
	{ "hops", su_hops, DSN_KIND_FAILURE },
	{ "admin", su_admin, DSN_KIND_FAILURE },
	{ "delay", su_delay, DSN_KIND_DELAY },
	{ "success", su_success, DSN_KIND_SUCCESS },
	{ "ret-full", su_ret_full, DSN_KIND_FAILURE },
	{ "ret-hdrs", su_ret_hdrs, DSN_KIND_FAILURE },
	{ "return-full", su_return_full, DSN_KIND_FAILURE },
	{ "capped", su_capped, DSN_KIND_FAILURE },
	{ "envid-orcpt", su_envid, DSN_KIND_FAILURE },
	{ "eightbit", su_eightbit, DSN_KIND_FAILURE },
	{ "hostile", su_hostile, DSN_KIND_FAILURE },
	{ "double", su_double, DSN_KIND_FAILURE },
	{ "smtputf8", su_utf8, DSN_KIND_FAILURE },
	{ "longline", su_longline, DSN_KIND_FAILURE },
};

/* tb_compose - plan and compose case c into out; 0 or -1. */
static int
tb_compose(const struct tb_case *c, struct sbuf *out, unsigned *flags,
    struct bounce_plan *p)
{
	struct tb_fix		f;
	struct bounce_input	in;
	struct sbuf		*body = sbuf_new();
	bool			inc[4];
	char			tok[64];
	int			rc;

	c->setup(&f, body);
	bounce_policy_plan(&f.bc, &f.msg, f.item, f.n, c->kind, false, inc,
	    p);
	memset(&in, 0, sizeof(in));
	in.msg = &f.msg;
	in.items = f.item;
	in.include = inc;
	in.nitems = f.n;
	in.plan = p;
	in.body = sbuf_str(body);
	in.bodylen = sbuf_len(body);
	in.now = TB_NOW;
	bsnprintf(tok, sizeof(tok), "tok-%s", c->name);
	in.token = tok;
	rc = bounce_compose(&f.bc, &in, out, flags);
	sbuf_free(body);
	return rc;
}

/* tb_lines_ok - CRLF only, no line over 998 octets, no NUL. NULL or why. */
static const char *
tb_lines_ok(const struct sbuf *b)
{
	size_t	i, col = 0;

	for (i = 0; i < sbuf_len(b); i++) {
		if (b->s[i] == '\0')
			return "a NUL";
		if (b->s[i] == '\r') {
			if (i + 1 >= sbuf_len(b) || b->s[i + 1] != '\n')
				return "a bare CR";
			i++;
			col = 0;
			continue;
		}
		if (b->s[i] == '\n')
			return "a bare LF";
		if (++col > BOUNCE_LINE_MAX)
			return "a line over 998 octets";
	}
	return col == 0 ? NULL : "no CRLF at the end";
}

/* tb_line_starts - does a line of b start with s? */
static bool
tb_line_starts(const struct sbuf *b, const char *s)
{
	const char	*p = sbuf_str(b);
	size_t		 n = strlen(s);

	if (strncmp(p, s, n) == 0)
		return true;
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncmp(p, s, n) == 0)
			return true;
	}
	return false;
}

static void
test_compose(struct t *t)
{
	struct sbuf		*out = sbuf_new(), *again = sbuf_new();
	struct bounce_plan	 p;
	unsigned		 flags, f2;
	size_t			 i;
	const char		*why;

	for (i = 0; i < sizeof(tb_cases) / sizeof(tb_cases[0]); i++) {
		const struct tb_case	*c = &tb_cases[i];

		sbuf_reset(out);
		sbuf_reset(again);
		if (tb_compose(c, out, &flags, &p) != 0) {
			t_errorf(t, "compose(%s): failed (plan to=%d: %s)",
			    c->name, p.to, bounce_policy_log_text(&p));
			continue;
		}
		if ((why = tb_lines_ok(out)) != NULL)
			t_errorf(t, "compose(%s): %s", c->name, why);
		if (!tb_line_starts(out, "Content-Type: multipart/report; "
		    "report-type=delivery-status;") ||
		    !tb_line_starts(out, "Auto-Submitted: auto-replied") ||
		    !tb_line_starts(out, "From: Mail Delivery System "
		    "<MAILER-DAEMON@" TB_HOST ">") ||
		    !tb_line_starts(out, "Reporting-MTA: dns; " TB_HOST))
			t_errorf(t, "compose(%s): a required line is missing",
			    c->name);
		if (tb_line_starts(out, "Injected") ||
		    tb_line_starts(out, "Bcc") || tb_line_starts(out, "X: y"))
			t_errorf(t, "compose(%s): a field was injected",
			    c->name);
		/* Pinned inputs: the same bytes again. */
		tb_compose(c, again, &f2, &p);
		if (sbuf_len(out) != sbuf_len(again) ||
		    memcmp(sbuf_str(out), sbuf_str(again), sbuf_len(out)) != 0
		    || flags != f2)
			t_errorf(t, "compose(%s): not the same twice",
			    c->name);
		if (strcmp(c->name, "eightbit") == 0 ||
		    strcmp(c->name, "smtputf8") == 0) {
			if (!(flags & BOUNCE_OUT_8BITMIME))
				t_errorf(t, "compose(%s): no 8BITMIME flag",
				    c->name);
		} else if (flags != 0)
			t_errorf(t, "compose(%s): flags 0x%x, want 0",
			    c->name, flags);
		if (strcmp(c->name, "smtputf8") == 0 &&
		    !(flags & BOUNCE_OUT_SMTPUTF8))
			t_errorf(t, "compose(smtputf8): no SMTPUTF8 flag");
		if (strcmp(c->name, "hostile") == 0 &&
		    strstr(sbuf_str(out),
		    "boundary=\"=_postern_tok-hostile_0\"") != NULL)
			t_errorf(t, "compose(hostile): a boundary that is in "
			    "the content");
		if (strcmp(c->name, "reply-5xx") == 0 &&
		    strstr(sbuf_str(out), "BODY-MARKER-7f3a") != NULL)
			t_errorf(t, "compose(reply-5xx): headers only, but "
			    "the body is there");
		if (strcmp(c->name, "ret-full") == 0 &&
		    strstr(sbuf_str(out), "BODY-MARKER-7f3a") == NULL)
			t_errorf(t, "compose(ret-full): the body is missing");
	}
	/* Nothing to send: -1 and nothing written. */
	{
		struct tb_fix		f;
		struct bounce_input	in;
		bool			inc[1];

		tb_fix_init(&f, "a@b.example", 1);
		f.rcpt[0].notify = QRCPT_NOTIFY_NEVER;
		bounce_policy_plan(&f.bc, &f.msg, f.item, 1, DSN_KIND_FAILURE,
		    false, inc, &p);
		memset(&in, 0, sizeof(in));
		in.msg = &f.msg;
		in.items = f.item;
		in.include = inc;
		in.nitems = 1;
		in.plan = &p;
		in.now = TB_NOW;
		sbuf_reset(out);
		if (bounce_compose(&f.bc, &in, out, &flags) != -1 ||
		    sbuf_len(out) != 0)
			t_errorf(t, "compose(NEVER): did not refuse");
	}
	sbuf_free(out);
	sbuf_free(again);
}

/* The pinned DSNs, byte for byte, against tests/data/dsn-*.ref (under
 * $POSTERN_TOP, else the current directory): a change of wording or
 * layout is then a reviewed change of the reference. */
static void
test_compose_ref(struct t *t)
{
	static const char *const names[] = { "three-rcpts", "envid-orcpt" };
	struct sbuf		*out = sbuf_new(), *ref = sbuf_new();
	struct bounce_plan	 p;
	const char		*top = getenv("POSTERN_TOP");
	char			 path[4096], buf[4096];
	unsigned		 flags;
	size_t			 i, j, n, at;
	FILE			*fp;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (j = 0; j < sizeof(tb_cases) / sizeof(tb_cases[0]); j++)
			if (strcmp(tb_cases[j].name, names[i]) == 0)
				break;
		sbuf_reset(out);
		sbuf_reset(ref);
		if (j == sizeof(tb_cases) / sizeof(tb_cases[0]) ||
		    tb_compose(&tb_cases[j], out, &flags, &p) != 0) {
			t_errorf(t, "ref(%s): not composed", names[i]);
			continue;
		}
		bsnprintf(path, sizeof(path), "%s/tests/data/dsn-%s.ref",
		    top != NULL ? top : ".", names[i]);
		if ((fp = fopen(path, "rb")) == NULL) {
			t_errorf(t, "ref(%s): %s: %s", names[i], path,
			    strerror(errno));
			continue;
		}
		while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
			sbuf_catn(ref, buf, n);
		fclose(fp);
		if (sbuf_len(out) == sbuf_len(ref) &&
		    memcmp(sbuf_str(out), sbuf_str(ref), sbuf_len(out)) == 0)
			continue;
		for (at = 0; at < sbuf_len(out) && at < sbuf_len(ref) &&
		    out->s[at] == ref->s[at]; at++)
			;
		t_errorf(t, "ref(%s): differs from %s at byte %zu: got "
		    "\"%.40s\", want \"%.40s\"", names[i], path, at,
		    out->s + at, ref->s + at);
	}
	sbuf_free(out);
	sbuf_free(ref);
}

static void
test_date(struct t *t)
{
	char	buf[64];

	bounce_compose_date(TB_NOW, buf, sizeof(buf));
	if (strcmp(buf, "Wed, 3 Dec 2025 08:20:00 +0000") != 0)
		t_errorf(t, "bounce_compose_date: got \"%s\"", buf);
	bounce_compose_date(0, buf, sizeof(buf));
	if (strcmp(buf, "Thu, 1 Jan 1970 00:00:00 +0000") != 0)
		t_errorf(t, "bounce_compose_date(0): got \"%s\"", buf);
}

/* ------------------------------------------------------------------ */

static int
tb_emit(const char *dir)
{
	struct sbuf		*out = sbuf_new();
	struct bounce_plan	 p;
	unsigned		 flags;
	char			 path[4096];
	FILE			*fp;
	size_t			 i;
	int			 rc = 0;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	for (i = 0; i < sizeof(tb_cases) / sizeof(tb_cases[0]); i++) {
		sbuf_reset(out);
		if (tb_compose(&tb_cases[i], out, &flags, &p) != 0) {
			fprintf(stderr, "%s: not composed\n",
			    tb_cases[i].name);
			rc = 1;
			continue;
		}
		if (!bsnprintf(path, sizeof(path), "%s/%s.eml", dir,
		    tb_cases[i].name) || (fp = fopen(path, "wb")) == NULL) {
			perror(path);
			rc = 1;
			continue;
		}
		if (fwrite(sbuf_str(out), 1, sbuf_len(out), fp) !=
		    sbuf_len(out) || fclose(fp) != 0) {
			perror(path);
			rc = 1;
		}
	}
	sbuf_free(out);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--emit") == 0)
		return tb_emit(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: test_bounce [--emit DIR]\n");
		return 2;
	}
	T_RUN(test_from_reply);
	T_RUN(test_status);
	T_RUN(test_for_cause);
	T_RUN(test_xtext);
	T_RUN(test_wants);
	T_RUN(test_plan);
	T_RUN(test_return);
	T_RUN(test_delay_due);
	T_RUN(test_date);
	T_RUN(test_compose);
	T_RUN(test_compose_ref);
	T_EXIT();
}

/*
 * fuzz_dsn.c - the DSN builder (bounce/): a status from a peer's reply
 * (dsn_from_reply) or a local cause, the plan (bounce_policy_plan) and
 * the message (bounce_compose), for an arbitrary original message and
 * arbitrary envelope text.
 *
 * Input: two flag bytes, then parts separated by FUZZ_SEP: the first
 * recipient's reply, the second's, the sender, the first recipient's
 * address, its ORCPT, the ENVID, the Remote-MTA, the client, and last the
 * original message (the rest of the input).
 *	byte 0: bits 0-1 the kind (failure, delay, success), bit 2 RET=FULL,
 *	bit 3 RET=HDRS, bit 4 SMTPUTF8, bit 5 a DSN itself, bit 6 the
 *	next hop took DSN, bit 7 bounce_return full;
 *	byte 1: NOTIFY of the recipients (low 4 bits), bit 4 a small
 *	bounce_size_limit, bits 5-7 the local cause of the second recipient.
 *
 * Checks beyond the sanitizers: the DSN has only CRLF line ends, no NUL,
 * no line over 998 octets; 8-bit bytes only when the output flags say
 * 8BITMIME or SMTPUTF8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "fuzz.h"

#define NPARTS	8

static void
check(const struct sbuf *out, unsigned oflags)
{
	const char	*p = out->s, *end = out->s + out->len, *lf;
	size_t		 i;

	while (p < end) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    lf == p || lf[-1] != '\r' ||
		    memchr(p, '\r', (size_t)(lf - p) - 1) != NULL ||
		    memchr(p, '\0', (size_t)(lf - p)) != NULL ||
		    (size_t)(lf - p) - 1 > BOUNCE_LINE_MAX) {
			fprintf(stderr, "fuzz: bad DSN line: \"%.*s\"\n",
			    (int)(lf != NULL && lf - p < 1200 ? lf - p : 200),
			    p);
			abort();
		}
		p = lf + 1;
	}
	if (!(oflags & (BOUNCE_OUT_8BITMIME | BOUNCE_OUT_SMTPUTF8)))
		for (i = 0; i < out->len; i++)
			if ((unsigned char)out->s[i] >= 0x80) {
				fprintf(stderr, "fuzz: 8-bit DSN, flags %#x\n",
				    oflags);
				abort();
			}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in		 in = { data, size };
	struct bounce_conf	 bc;
	struct bounce_item	 item[2];
	struct bounce_plan	 plan;
	struct bounce_input	 bi;
	struct qmsg		*m = xcalloc(1, sizeof(*m));
	struct qrcpt		*r = xcalloc(2, sizeof(*r));
	struct sbuf		*out = sbuf_new();
	char			*part[NPARTS], *body, buf[300], st[DSN_STATUS_MAX];
	char			 x[QUEUE_ORCPT_MAX + 1];
	bool			 include[2];
	unsigned		 oflags = 0;
	uint8_t			 f0, f1;
	size_t			 i, blen;

	if (size > FUZZ_INPUT_MAX)
		goto done;
	fuzz_init();
	f0 = fuzz_take_byte(&in);
	f1 = fuzz_take_byte(&in);
	for (i = 0; i < NPARTS; i++)
		part[i] = fuzz_take_part(&in, NULL);
	body = fuzz_str(in.p, in.n);
	blen = in.n;

	bounce_conf_init(&bc, "mx.fuzz.example", buf, sizeof(buf));
	if (f0 & 0x80)
		bc.bounce_return = BOUNCE_RETURN_FULL;
	if (f1 & 0x10)
		bc.bounce_size_limit = 100;
	m->id = 7;
	m->arrival = 1700000000;
	m->size = blen;
	m->nrcpt = m->nlive = 2;
	m->flags = (f0 & 0x04 ? QMSG_F_RET_FULL : 0) |
	    (f0 & 0x08 ? QMSG_F_RET_HDRS : 0) |
	    (f0 & 0x10 ? QMSG_F_SMTPUTF8 : 0) | (f0 & 0x20 ? QMSG_F_DSN : 0);
	strl_copy(m->sender, part[2], sizeof(m->sender));
	strl_copy(m->envid, part[5], sizeof(m->envid));
	strl_copy(m->client, part[7], sizeof(m->client));
	strl_copy(r[0].addr, part[3], sizeof(r[0].addr));
	strl_copy(r[0].orcpt, part[4], sizeof(r[0].orcpt));
	strl_copy(r[1].addr, "second@relay.example", sizeof(r[1].addr));
	r[0].notify = r[1].notify = f1 & 0x0f;
	r[1].idx = 1;
	memset(item, 0, sizeof(item));
	item[0].rcpt = &r[0];
	item[1].rcpt = &r[1];
	item[0].last_attempt = 1700000100;
	item[1].retry_until = 1700400000;
	(void)dsn_from_reply(part[0], part[6], &item[0].dsn);
	if ((f1 >> 5) == 0)
		(void)dsn_from_reply(part[1], NULL, &item[1].dsn);
	else {
		(void)dsn_status_parse(part[1], st);
		dsn_for_cause((enum dsn_cause)((f1 >> 5) + 1), st, part[6],
		    part[1], &item[1].dsn);
	}
	if ((f0 & 3) == 1)
		item[0].dsn.action = item[1].dsn.action = DSN_ACTION_DELAYED;
	(void)dsn_status_valid(part[1]);
	(void)dsn_status_class(part[1]);
	(void)dsn_xtext_decode(part[4], x, sizeof(x));

	bounce_policy_plan(&bc, m, item, 2, (enum dsn_kind)((f0 & 3) % 3),
	    (f0 & 0x40) != 0, include, &plan);
	(void)bounce_policy_log_text(&plan);
	(void)bounce_policy_delay_due(&bc, m, &r[0], 0, 1700100000);
	memset(&bi, 0, sizeof(bi));
	bi.msg = m;
	bi.items = item;
	bi.include = include;
	bi.nitems = 2;
	bi.plan = &plan;
	bi.body = body;
	bi.bodylen = blen;
	bi.now = 1700200000;
	bi.token = "fuzz.token-1";
	if (bounce_compose(&bc, &bi, out, &oflags) == 0)
		check(out, oflags);
	for (i = 0; i < NPARTS; i++)
		free(part[i]);
	free(body);
done:
	sbuf_free(out);
	free(m);
	free(r);
	return 0;
}

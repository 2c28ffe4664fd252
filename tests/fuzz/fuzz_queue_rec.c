/*
 * fuzz_queue_rec.c - stored queue records decoded from arbitrary bytes
 * (queue/queue_rec.c, queue_key.c): what a damaged or crafted queue file
 * could hand the readers.
 *
 * Input: a type byte (its value modulo 5), then the record:
 *	0 a message record, 1 a recipient record (queue_rec_dec_*): decoded,
 *	  and when it decodes, encoded and decoded again to the same fields;
 *	2 a flush request (queue_rec_dec_flush);
 *	3 a bydom key (queue_key_dom_decode) and a domain (queue_key_dom);
 *	4 a queue id (queue_id_parse, queue_id_format back and forth).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "queue_int.h"

static void
differ(const char *what)
{
	fprintf(stderr, "fuzz: %s differs after a round trip\n", what);
	abort();
}

static void
msg(const uint8_t *p, size_t n)
{
	struct qmsg	a, b;
	MDB_val		v = { n, (void *)(uintptr_t)p };
	uint8_t		buf[QUEUE_REC_MAX];
	const char	*why;

	memset(&a, 0, sizeof(a));
	if (queue_rec_dec_msg(&v, &a, &why) != 0)
		return;
	if ((v.mv_size = queue_rec_enc_msg(&a, buf, sizeof(buf))) == 0)
		differ("message (no encoding)");
	v.mv_data = buf;
	memset(&b, 0, sizeof(b));
	if (queue_rec_dec_msg(&v, &b, &why) != 0)
		differ("message (no decoding)");
	if (a.arrival != b.arrival || a.size != b.size ||
	    a.nrcpt != b.nrcpt || a.nlive != b.nlive ||
	    a.nchunks != b.nchunks || a.flags != b.flags ||
	    a.warnings != b.warnings || strcmp(a.sender, b.sender) != 0 ||
	    strcmp(a.envid, b.envid) != 0 || strcmp(a.client, b.client) != 0)
		differ("message");
}

static void
rcpt(const uint8_t *p, size_t n)
{
	struct qrcpt	*a = xcalloc(2, sizeof(*a)), *b = a + 1;
	MDB_val		 v = { n, (void *)(uintptr_t)p };
	uint8_t		 buf[QUEUE_REC_MAX];
	const char	*why;
	uint32_t	 i;

	if (queue_rec_dec_rcpt(&v, a, &why) != 0)
		goto done;
	if (a->nhist > QUEUE_HIST_MAX)
		differ("recipient (history over its bound)");
	if ((v.mv_size = queue_rec_enc_rcpt(a, buf, sizeof(buf))) == 0)
		differ("recipient (no encoding)");
	v.mv_data = buf;
	if (queue_rec_dec_rcpt(&v, b, &why) != 0)
		differ("recipient (no decoding)");
	if (a->state != b->state || a->flags != b->flags ||
	    a->notify != b->notify || a->prev_state != b->prev_state ||
	    a->attempts != b->attempts || a->due != b->due ||
	    a->saved_due != b->saved_due || a->last_try != b->last_try ||
	    a->claim != b->claim || a->nhist != b->nhist ||
	    a->dsn_id != b->dsn_id || strcmp(a->addr, b->addr) != 0 ||
	    strcmp(a->orcpt, b->orcpt) != 0 ||
	    strcmp(a->status, b->status) != 0 ||
	    strcmp(a->reply, b->reply) != 0)
		differ("recipient");
	for (i = 0; i < a->nhist; i++)
		if (a->hist[i].when != b->hist[i].when ||
		    strcmp(a->hist[i].status, b->hist[i].status) != 0 ||
		    strcmp(a->hist[i].text, b->hist[i].text) != 0)
			differ("recipient history");
done:
	free(a);
}

static void
flush(const uint8_t *p, size_t n)
{
	struct queue_flushreq	f;
	MDB_val			v = { n, (void *)(uintptr_t)p };

	if (queue_rec_dec_flush(&v, &f) != 0)
		return;
	if (f.rklen > QUEUE_ADDR_MAX ||
	    strnlen(f.caller, sizeof(f.caller)) > QUEUE_CALLER_MAX)
		abort();
}

static void
key(const uint8_t *p, size_t n)
{
	char	buf[QUEUE_ADDR_MAX + 1], *s = fuzz_str(p, n);
	size_t	len;

	queue_key_dom_decode((const char *)p, n, buf, sizeof(buf));
	if (strlen(buf) >= sizeof(buf))
		abort();
	len = queue_key_dom(s, buf, sizeof(buf));
	(void)len;
	free(s);
}

static void
id(const uint8_t *p, size_t n)
{
	char		*s = fuzz_str(p, n), out[QUEUE_ID_LEN + 1];
	uint64_t	 a, b;

	if (queue_id_parse(s, &a) == 0) {
		queue_id_format(a, out);
		if (queue_id_parse(out, &b) != 0 || a != b)
			differ("queue id");
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in	 in = { data, size };
	uint8_t		*copy;
	int		 type;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	fuzz_init();
	type = fuzz_take_byte(&in) % 5;
	/* The record alone in its buffer: an overread is caught. */
	copy = xmalloc(in.n > 0 ? in.n : 1);
	memcpy(copy, in.p, in.n);
	switch (type) {
	case 0: msg(copy, in.n); break;
	case 1: rcpt(copy, in.n); break;
	case 2: flush(copy, in.n); break;
	case 3: key(copy, in.n); break;
	default: id(copy, in.n); break;
	}
	free(copy);
	return 0;
}

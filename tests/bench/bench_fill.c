/*
 * bench_fill.c - build a large queue fast for bench_deliver.sh: recipients
 * of many other domains that are not due for an hour, and among them the
 * messages of a few domains to be flushed.
 *
 * Usage: bench_fill [-o others] [-n per-domain] [-d domains] [-m GiB] dir
 *	      D...
 *
 * `others` (1,000,000) recipients of other domains, 10 to a message with
 * 200-byte bodies, spread round-robin over `domains` (2,000) domains
 * u<k>@d<k % domains>.example.com; and for each domain D given, `per-domain`
 * (1,000) messages of one recipient t<j>@D with a 4 KiB body. D's messages
 * are spread evenly among the others in arrival (= id) order, as mail for
 * a site arrives over time, so in a large queue they lie among the others
 * and not in one block. Every recipient is queued with due = now + 3600:
 * none is due for an hour (the queue stores a new recipient as "queued";
 * for the due index that is the same as deferred). Stored with
 * queue_enqueue_batch(), 500 messages per transaction. Prints one line:
 * the counts, the time and the size of data.mdb. The directory must not
 * hold a queue yet; it is left in place for posternd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtp.h"
#include "queue.h"
#include "bench.h"

#define BF_PER_MSG	10	/* other domains' recipients per message */
#define BF_BATCH	500	/* messages per transaction */
#define BF_BODY_SMALL	200
#define BF_BODY_D	4096
#define BF_DEFER	3600

static void
bf_usage(void)
{
	fprintf(stderr, "usage: bench_fill [-o others] [-n per-domain] "
	    "[-d domains] [-m GiB] dir D...\n");
	exit(2);
}

static size_t
bf_num(const char *s, bool zero)
{
	char		*end;
	unsigned long	 v = strtoul(s, &end, 10);

	if (*end != '\0' || (v == 0 && !zero))
		bf_usage();
	return v;
}

/* bf_body - a message of about size bytes: headers, then 76-character
 * lines, CRLF. */
static char *
bf_body(size_t size, size_t *len)
{
	static const char hdr[] = "From: <sender@client.example>\r\n"
	    "To: <rcpt@dest.example>\r\nSubject: bench\r\n"
	    "Message-ID: <bench@client.example>\r\n\r\n";
	char	*b = xmalloc(size + 100);
	size_t	 n;

	memcpy(b, hdr, sizeof(hdr) - 1);
	n = sizeof(hdr) - 1;
	while (n + 78 <= size) {
		memset(b + n, 'x', 76);
		b[n + 76] = '\r';
		b[n + 77] = '\n';
		n += 78;
	}
	*len = n;
	return b;
}

int
main(int argc, char *argv[])
{
	struct queue	 *q;
	struct qnew	 *msgs, **vec;
	struct qrcpt	 *rcpts;
	char		  err[512], fstype[32], path[4200], *small, *big;
	const char	 *dir;
	char		**dom;
	size_t		  others = 1000000, per = 1000, ndomains = 2000;
	size_t		  ndom, nother_msgs, nd_msgs, total, m, b, nb, i, j;
	size_t		  k = 0, dn = 0, smalllen, biglen, *dsent;
	uint64_t	  mapsize = (uint64_t)8 << 30, size, alloc;
	int64_t		  due;
	double		  t0, t;
	int		  ch, rc;

	log_init("bench", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "o:n:d:m:")) != -1) {
		switch (ch) {
		case 'o':
			others = bf_num(optarg, true);
			break;
		case 'n':
			per = bf_num(optarg, false);
			break;
		case 'd':
			ndomains = bf_num(optarg, false);
			break;
		case 'm':
			mapsize = (uint64_t)bf_num(optarg, false) << 30;
			break;
		default:
			bf_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		bf_usage();
	dir = argv[0];
	dom = argv + 1;
	ndom = (size_t)argc - 1;
	bench_dir_check(dir, fstype, sizeof(fstype));
	if ((rc = queue_open(dir, QUEUE_CREATE, mapsize, &q, err,
	    sizeof(err))) != 0)
		fatalx("queue_open %s: %s", dir, err);

	nother_msgs = (others + BF_PER_MSG - 1) / BF_PER_MSG;
	nd_msgs = ndom * per;
	total = nother_msgs + nd_msgs;
	small = bf_body(BF_BODY_SMALL, &smalllen);
	big = bf_body(BF_BODY_D, &biglen);
	msgs = xcalloc(BF_BATCH, sizeof(*msgs));
	vec = xcalloc(BF_BATCH, sizeof(*vec));
	rcpts = xcalloc(BF_BATCH * BF_PER_MSG, sizeof(*rcpts));
	dsent = xcalloc(ndom, sizeof(*dsent));
	due = (int64_t)time(NULL) + BF_DEFER;
	t0 = bench_now();
	for (b = 0; b < total; b += nb) {
		nb = total - b < BF_BATCH ? total - b : BF_BATCH;
		for (i = 0; i < nb; i++) {
			struct qnew	*n = &msgs[i];
			struct qrcpt	*r = &rcpts[i * BF_PER_MSG];
			size_t		 no;

			m = b + i;
			memset(n, 0, sizeof(*n));
			(void)strl_copy(n->msg.sender, "sender@client.example",
			    sizeof(n->msg.sender));
			n->rcpt = r;
			vec[i] = n;
			/* Message m is one of D's when the D count due by
			 * now (evenly over all messages) grew. */
			if ((m + 1) * nd_msgs / total > m * nd_msgs / total) {
				size_t d = dn++ % ndom;

				r[0].state = QRCPT_QUEUED;
				r[0].flags = 0;
				r[0].due = due;
				if (!bsnprintf(r[0].addr, sizeof(r[0].addr),
				    "t%zu@%s", dsent[d]++, dom[d]))
					fatalx("address too long");
				n->nrcpt = 1;
				n->body = big;
				n->bodylen = biglen;
				continue;
			}
			no = others - k < BF_PER_MSG ? others - k : BF_PER_MSG;
			for (j = 0; j < no; j++, k++) {
				r[j].state = QRCPT_QUEUED;
				r[j].flags = 0;
				r[j].due = due;
				if (!bsnprintf(r[j].addr, sizeof(r[j].addr),
				    "u%zu@d%zu.example.com", k, k % ndomains))
					fatalx("address too long");
			}
			n->nrcpt = no;
			n->body = small;
			n->bodylen = smalllen;
		}
		if ((rc = queue_enqueue_batch(q, vec, nb)) != 0)
			fatalx("queue_enqueue_batch: %s: %s",
			    queue_strerror(rc), queue_errmsg(q));
	}
	t = bench_now() - t0;
	for (i = 0; i < ndom; i++)
		if (dsent[i] != per)
			fatalx("%s: %zu messages, want %zu", dom[i], dsent[i],
			    per);
	if (k != others)
		fatalx("%zu other recipients, want %zu", k, others);
	queue_close(q);
	(void)bsnprintf(path, sizeof(path), "%s/data.mdb", dir);
	bench_file_size(path, &size, &alloc);
	printf("filled %s (%s): %zu other recipients in %zu messages + "
	    "%zu x %zu messages of D, %.1f s, data.mdb %.1f MiB\n", dir,
	    fstype, others, nother_msgs, ndom, per, t,
	    (double)size / (1 << 20));
	free(dsent);
	free(rcpts);
	free(vec);
	free(msgs);
	free(small);
	free(big);
	return 0;
}

/*
 * counters.c - event counters in a file every daemon process maps.
 *
 * The master maps queue_dir/counters MAP_SHARED once, after dropping its
 * privileges and before it forks; a mapping is inherited across fork, so
 * the listener, the scheduler, its workers and the odmr sessions all add
 * to the same page, and a child that dies and is started again finds its
 * counts where it left them (so does the daemon after a restart: the
 * file stays). Increments are relaxed atomic adds on 8-byte words, which
 * are address-free on every platform we build on, so processes need no
 * lock and an event costs one locked instruction: nothing that slows
 * delivery.
 *
 * Layout (little-endian host words; the file never leaves the machine):
 *	0	magic "POSTCNT\0"
 *	8	u32 version (COUNTERS_VERSION), u32 number of words
 *	16..63	reserved
 *	64	struct counters_words (u64 each)
 * A file whose magic, version or size differs is truncated and started
 * afresh: these are Prometheus counters, which take a reset.
 *
 * Deliveries per minute: a ring of 60 words, each minute(40) count(24)
 * packed, updated with compare-and-swap so that the first event of a new
 * minute resets its slot without a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp.h"

#define COUNTERS_MAGIC		"POSTCNT"
#define COUNTERS_HDR		64
#define COUNTERS_RING_SHIFT	24
#define COUNTERS_RING_MAX	((UINT64_C(1) << COUNTERS_RING_SHIFT) - 1)

struct counters_words {
	uint64_t	deliv[COUNTERS_NSTATUS][COUNTERS_NCLASS];
	uint64_t	req[COUNTERS_NREQ][COUNTERS_NOUT];
	uint64_t	conn[COUNTERS_NCONN];
	uint64_t	batch[COUNTERS_BATCH_BUCKETS];
	uint64_t	batch_sum, batch_count;
	uint64_t	lat[COUNTERS_LAT_BUCKETS];
	uint64_t	lat_sum_us, lat_count;
	uint64_t	ring[COUNTERS_MINUTES];
};

#define COUNTERS_NWORDS	(sizeof(struct counters_words) / sizeof(uint64_t))
#define COUNTERS_SIZE	(COUNTERS_HDR + sizeof(struct counters_words))

const double counters_lat_le[COUNTERS_LAT_BUCKETS - 1] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};
const unsigned counters_batch_le[COUNTERS_BATCH_BUCKETS - 1] = {
	1, 2, 4, 8, 16, 32, 64, 128,
};

static struct counters_words	*counters_w;

static void
counters_inc(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static uint64_t
counters_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* counters_valid - is the open file (fd) ours, of this version? */
static bool
counters_valid(int fd)
{
	struct stat	st;
	uint8_t		hdr[16];
	uint32_t	v[2];

	if (fstat(fd, &st) == -1 || (size_t)st.st_size != COUNTERS_SIZE)
		return false;
	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return false;
	memcpy(v, hdr + 8, sizeof(v));
	return memcmp(hdr, COUNTERS_MAGIC, sizeof(COUNTERS_MAGIC)) == 0 &&
	    v[0] == COUNTERS_VERSION && v[1] == COUNTERS_NWORDS;
}

/* counters_init - start the file afresh: zeroes, then the header. */
static int
counters_init(int fd)
{
	uint8_t		hdr[COUNTERS_HDR];
	uint32_t	v[2] = { COUNTERS_VERSION, COUNTERS_NWORDS };

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, COUNTERS_MAGIC, sizeof(COUNTERS_MAGIC));
	memcpy(hdr + 8, v, sizeof(v));
	if (ftruncate(fd, 0) == -1 || ftruncate(fd, COUNTERS_SIZE) == -1)
		return -1;
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return -1;
	return 0;
}

int
counters_open(const char *dir, char *err, size_t errsz)
{
	char	 path[4096];
	void	*p;
	int	 fd;

	if (!bsnprintf(path, sizeof(path), "%s/%s", dir, COUNTERS_FILE)) {
		(void)bsnprintf(err, errsz, "%s: path too long", dir);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1)
		goto fail;
	if (!counters_valid(fd) && counters_init(fd) == -1)
		goto fail;
	p = mmap(NULL, COUNTERS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0);
	if (p == MAP_FAILED)
		goto fail;
	close(fd);
	counters_w = (struct counters_words *)((char *)p + COUNTERS_HDR);
	return 0;
fail:
	(void)bsnprintf(err, errsz, "%s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* counters_minute - one more delivery in the minute of `now`. */
static void
counters_minute(int64_t now)
{
	uint64_t	 m = (uint64_t)(now / 60), old, new;
	uint64_t	*slot = &counters_w->ring[m % COUNTERS_MINUTES];

	old = __atomic_load_n(slot, __ATOMIC_RELAXED);
	do {
		if (old >> COUNTERS_RING_SHIFT != m)
			new = (m << COUNTERS_RING_SHIFT) | 1;
		else if ((old & COUNTERS_RING_MAX) == COUNTERS_RING_MAX)
			return;		/* saturated */
		else
			new = old + 1;
	} while (!__atomic_compare_exchange_n(slot, &old, new, true,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void
counters_delivery(const char *status, const char *dsn, int64_t now)
{
	static const char *const names[COUNTERS_NSTATUS] = {
		"sent", "deferred", "bounced", "expired",
	};
	int	st, cl;

	if (counters_w == NULL)
		return;
	for (st = 0; st < COUNTERS_NSTATUS; st++)
		if (strcmp(status, names[st]) == 0)
			break;
	if (st == COUNTERS_NSTATUS)
		return;
	/* The class from the x.y.z; without one, from the status. */
	if (dsn[0] == '2')
		cl = COUNTERS_CL_2;
	else if (dsn[0] == '5')
		cl = COUNTERS_CL_5;
	else if (dsn[0] == '4')
		cl = COUNTERS_CL_4;
	else
		cl = st == COUNTERS_ST_SENT ? COUNTERS_CL_2 :
		    st == COUNTERS_ST_BOUNCED ? COUNTERS_CL_5 : COUNTERS_CL_4;
	counters_inc(&counters_w->deliv[st][cl], 1);
	if (st == COUNTERS_ST_SENT)
		counters_minute(now);
}

void
counters_request(enum counters_req r, enum counters_outcome o)
{
	if (counters_w == NULL || r >= COUNTERS_NREQ || o >= COUNTERS_NOUT)
		return;
	counters_inc(&counters_w->req[r][o], 1);
}

void
counters_event(enum counters_conn e)
{
	if (counters_w == NULL || e >= COUNTERS_NCONN)
		return;
	counters_inc(&counters_w->conn[e], 1);
}

void
counters_commit(size_t n, double secs)
{
	size_t	b;
	double	us;

	if (counters_w == NULL)
		return;
	for (b = 0; b < COUNTERS_BATCH_BUCKETS - 1; b++)
		if (n <= counters_batch_le[b])
			break;
	counters_inc(&counters_w->batch[b], 1);
	counters_inc(&counters_w->batch_sum, n);
	counters_inc(&counters_w->batch_count, 1);
	if (!(secs > 0))
		secs = 0;
	for (b = 0; b < COUNTERS_LAT_BUCKETS - 1; b++)
		if (secs <= counters_lat_le[b])
			break;
	counters_inc(&counters_w->lat[b], 1);
	us = secs * 1e6;
	counters_inc(&counters_w->lat_sum_us, us < 1e15 ? (uint64_t)us : 0);
	counters_inc(&counters_w->lat_count, 1);
}

bool
counters_read(struct counters_snap *s, int64_t now)
{
	const struct counters_words	*w = counters_w;
	uint64_t			 m, v;
	size_t				 i, j;

	memset(s, 0, sizeof(*s));
	if (w == NULL)
		return false;
	for (i = 0; i < COUNTERS_NSTATUS; i++)
		for (j = 0; j < COUNTERS_NCLASS; j++)
			s->deliv[i][j] = counters_get(&w->deliv[i][j]);
	for (i = 0; i < COUNTERS_NREQ; i++)
		for (j = 0; j < COUNTERS_NOUT; j++)
			s->req[i][j] = counters_get(&w->req[i][j]);
	for (i = 0; i < COUNTERS_NCONN; i++)
		s->conn[i] = counters_get(&w->conn[i]);
	for (i = 0; i < COUNTERS_BATCH_BUCKETS; i++)
		s->batch[i] = counters_get(&w->batch[i]);
	for (i = 0; i < COUNTERS_LAT_BUCKETS; i++)
		s->lat[i] = counters_get(&w->lat[i]);
	s->batch_sum = counters_get(&w->batch_sum);
	s->batch_count = counters_get(&w->batch_count);
	s->lat_sum_us = counters_get(&w->lat_sum_us);
	s->lat_count = counters_get(&w->lat_count);
	/* Slot i of the result is minute now-59+i; a slot that holds
	 * another minute had no delivery in this one. */
	for (i = 0; i < COUNTERS_MINUTES; i++) {
		m = (uint64_t)(now / 60) - (COUNTERS_MINUTES - 1) + i;
		v = counters_get(&w->ring[m % COUNTERS_MINUTES]);
		s->minute[i] = v >> COUNTERS_RING_SHIFT == m ?
		    v & COUNTERS_RING_MAX : 0;
	}
	return true;
}

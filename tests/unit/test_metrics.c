/*
 * test_metrics.c - unit tests for the shared counters (smtp/counters.c:
 * the file, its layout check, the per-minute ring, the buckets) and the
 * escaping of the metrics process (tools/metrics_prom.c label values,
 * tools/metrics_page.c HTML).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics_int.h"
#include "tharness.h"

static char	tdir[] = "/tmp/test_metrics.XXXXXX";

/* Before counters_open every call is a no-op, and read says so. */
static void
counters_closed(struct t *t)
{
	struct counters_snap	s;

	counters_event(COUNTERS_CONN_IN);
	counters_delivery("sent", "2.0.0", 600);
	if (counters_read(&s, 600))
		t_errorf(t, "counters_read before counters_open: true");
	if (s.conn[COUNTERS_CONN_IN] != 0)
		t_errorf(t, "counters_read before open: not zeroed");
}

/* Counts made in a child process are seen by the parent: one mapping. */
static void
counters_shared(struct t *t)
{
	struct counters_snap	s;
	char			err[256];
	int64_t			now = 1000 * 60 + 5;	/* minute 1000 */
	pid_t			pid;
	int			st, i;

	if (counters_open(tdir, err, sizeof(err)) != 0)
		t_fatalf(t, "counters_open: %s", err);
	if ((pid = fork()) == 0) {
		for (i = 0; i < 3; i++)
			counters_delivery("sent", "2.0.0", now);
		counters_delivery("sent", "2.0.0", now - 60);
		counters_delivery("deferred", "4.4.1", now);
		counters_delivery("bounced", "", now);
		counters_delivery("expired", "4.4.7", now);
		counters_delivery("nonsense", "2.0.0", now);
		counters_request(COUNTERS_REQ_ATRN, COUNTERS_OUT_EMPTY);
		counters_event(COUNTERS_CONN_IN);
		counters_commit(3, 0.004);
		counters_commit(200, 5.0);
		_exit(0);
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid || st != 0)
		t_fatalf(t, "child failed");
	if (!counters_read(&s, now))
		t_fatalf(t, "counters_read: false");
	if (s.deliv[COUNTERS_ST_SENT][COUNTERS_CL_2] != 4 ||
	    s.deliv[COUNTERS_ST_DEFERRED][COUNTERS_CL_4] != 1 ||
	    s.deliv[COUNTERS_ST_BOUNCED][COUNTERS_CL_5] != 1 ||
	    s.deliv[COUNTERS_ST_EXPIRED][COUNTERS_CL_4] != 1)
		t_errorf(t, "deliveries: sent/2 %llu deferred/4 %llu "
		    "bounced/5 %llu expired/4 %llu",
		    (unsigned long long)s.deliv[0][0],
		    (unsigned long long)s.deliv[1][1],
		    (unsigned long long)s.deliv[2][2],
		    (unsigned long long)s.deliv[3][1]);
	if (s.req[COUNTERS_REQ_ATRN][COUNTERS_OUT_EMPTY] != 1 ||
	    s.conn[COUNTERS_CONN_IN] != 1)
		t_errorf(t, "request or connection not counted");
	/* The ring: this minute last, the one before next to it. */
	if (s.minute[COUNTERS_MINUTES - 1] != 3 ||
	    s.minute[COUNTERS_MINUTES - 2] != 1)
		t_errorf(t, "minutes: got %llu %llu, want 1 3",
		    (unsigned long long)s.minute[COUNTERS_MINUTES - 2],
		    (unsigned long long)s.minute[COUNTERS_MINUTES - 1]);
	/* An hour later the same slots hold other minutes: zero. */
	(void)counters_read(&s, now + 3600);
	for (i = 0; i < COUNTERS_MINUTES; i++)
		if (s.minute[i] != 0)
			t_errorf(t, "an hour later, minute %d: %llu", i,
			    (unsigned long long)s.minute[i]);
	/* Buckets: 3 in le=4 (index 2), 200 in +Inf; 0.004 s in le=0.005
	 * (index 2), 5 s in +Inf. */
	if (s.batch[2] != 1 || s.batch[COUNTERS_BATCH_BUCKETS - 1] != 1 ||
	    s.batch_sum != 203 || s.batch_count != 2)
		t_errorf(t, "batch histogram");
	if (s.lat[2] != 1 || s.lat[COUNTERS_LAT_BUCKETS - 1] != 1 ||
	    s.lat_count != 2 || s.lat_sum_us < 5003000 ||
	    s.lat_sum_us > 5005000)
		t_errorf(t, "latency histogram: sum %llu us",
		    (unsigned long long)s.lat_sum_us);
}

/* A file of another layout is started afresh; ours is kept. */
static void
counters_layout(struct t *t)
{
	char	path[256], err[256];
	struct stat st;
	int	fd;

	snprintf(path, sizeof(path), "%s/%s", tdir, COUNTERS_FILE);
	if ((fd = open(path, O_WRONLY | O_TRUNC)) == -1 ||
	    write(fd, "garbage", 7) != 7)
		t_fatalf(t, "cannot spoil %s", path);
	close(fd);
	if (counters_open(tdir, err, sizeof(err)) != 0)
		t_fatalf(t, "counters_open on a bad file: %s", err);
	if (stat(path, &st) == -1 || st.st_size < 64)
		t_errorf(t, "bad file not started afresh");
	counters_event(COUNTERS_CONN_IN);
	if (counters_open(tdir, err, sizeof(err)) != 0)
		t_fatalf(t, "counters_open again: %s", err);
	{
		struct counters_snap	s;

		(void)counters_read(&s, 0);
		if (s.conn[COUNTERS_CONN_IN] != 1)
			t_errorf(t, "reopened: %llu connections, want 1",
			    (unsigned long long)s.conn[COUNTERS_CONN_IN]);
	}
}

static void
escapes(struct t *t)
{
	static const struct {
		const char	*in, *prom, *html;
	} tab[] = {
		{ "example.org", "example.org", "example.org" },
		{ "a\\b\"c\nd", "a\\\\b\\\"c\\nd", "a\\b&quot;c?d" },
		{ "<b id='x'>&", "<b id='x'>&", "&lt;b id=&#39;x&#39;&gt;&amp;" },
		{ "\x01\x7f\xc3\xa9", "????", "????" },
	};
	struct sbuf	*b = sbuf_new();
	size_t		 i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		sbuf_reset(b);
		metrics_prom_label(b, tab[i].in);
		if (strcmp(sbuf_str(b), tab[i].prom) != 0)
			t_errorf(t, "metrics_prom_label(%zu): got \"%s\", want "
			    "\"%s\"", i, sbuf_str(b), tab[i].prom);
		sbuf_reset(b);
		metrics_html(b, tab[i].in);
		if (strcmp(sbuf_str(b), tab[i].html) != 0)
			t_errorf(t, "metrics_html(%zu): got \"%s\", want "
			    "\"%s\"", i, sbuf_str(b), tab[i].html);
	}
	sbuf_free(b);
}

int
main(void)
{
	char	cmd[64];

	if (mkdtemp(tdir) == NULL)
		return 1;
	T_RUN(counters_closed);
	T_RUN(counters_shared);
	T_RUN(counters_layout);
	T_RUN(escapes);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	(void)system(cmd);
	T_EXIT();
}

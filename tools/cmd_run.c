/*
 * cmd_run.c - `postern run`: a batch queue run in the foreground, with the
 * daemon's own scheduler and workers (runner/).
 *
 *	postern run			deliver what is due now
 *	postern run --all		make everything due (not site holds),
 *					then deliver it
 *	postern run --domain D		deliver D's mail, held for its site
 *					too (like an ETRN); @D: and below
 *
 * It exits when nothing it was asked to deliver is left to take, prints a
 * summary, and exits 1 when any recipient was deferred or failed. It can
 * run beside the daemon: claims keep the two from delivering a recipient
 * twice.
 *
 * On a terminal (standard error is one) it keeps one progress line at the
 * bottom, "N of M recipients done, R/s" (done: delivered, deferred,
 * failed or held again; M: those taken so far), redrawn at most every
 * RUN_PROGRESS_MS; the delivery log lines scroll above it (log_tty_clear).
 * Off a terminal there is no progress line: the log lines and the
 * summary, as before.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "tools.h"

#define RUN_PROGRESS_MS	200	/* at most 5 redraws a second */

struct run_progress {
	int64_t		start;		/* clock_mono_ms() */
	int64_t		last;		/* the last redraw */
	bool		drawn;
};

static uint64_t
run_done(const struct runner_stats *st)
{
	return st->delivered + st->deferred + st->failed + st->held;
}

/* run_progress - the scheduler's progress hook: redraw the line. */
static void
run_progress(void *arg, const struct runner_stats *st)
{
	struct run_progress	*p = arg;
	int64_t			 now = clock_mono_ms();
	double			 secs;

	if (p->drawn && now - p->last < RUN_PROGRESS_MS)
		return;
	secs = (double)(now - p->start) / 1000.0;
	fprintf(stderr, "\r\033[Kpostern run: %llu of %llu recipients done, "
	    "%.1f/s", (unsigned long long)run_done(st),
	    (unsigned long long)st->taken,
	    secs > 0 ? (double)run_done(st) / secs : 0.0);
	fflush(stderr);
	p->last = now;
	p->drawn = true;
}

int
cmd_run(struct tools_ctx *ctx, int argc, char **argv)
{
	struct sched_opts	 o;
	struct runner_stats	 st;
	struct queue		*q;
	struct qsel		 sel;
	struct run_progress	 prog;
	size_t			 count;
	int			 i, rc;
	bool			 all = false;

	memset(&o, 0, sizeof(o));
	o.mode = SCHED_ONCE;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") == 0)
			all = true;
		else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			const char *d = argv[++i];

			o.sub = d[0] == '@';
			if (o.sub)
				d++;
			if (!smtp_domain_valid(d, SMTP_ADDR_UTF8))
				return tools_usage("run", "bad domain \"%s\"",
				    argv[i]);
			o.mode = SCHED_DOMAIN;
			o.domain = d;
		} else
			return tools_usage("run", "unknown argument \"%s\"",
			    argv[i]);
	}
	if (all && o.mode == SCHED_DOMAIN)
		return tools_usage("run", "--all or --domain, not both");
	if (all) {
		if ((q = tools_open_queue(ctx, 0)) == NULL)
			return TOOLS_EXIT_FAIL;
		memset(&sel, 0, sizeof(sel));
		sel.all = true;
		rc = queue_flush(q, &sel, false, (int64_t)clock_now(), &count);
		if (rc != 0)
			rc = tools_fail("run", "%s", queue_errmsg(q));
		queue_close(q);
		if (rc != 0)
			return rc;
	}
	/* Delivery lines go to the log like the daemon's. */
	log_init("runner", ctx->conf->log == LOG_DEST_SYSLOG ?
	    LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	memset(&prog, 0, sizeof(prog));
	if (isatty(STDERR_FILENO)) {
		prog.start = clock_mono_ms();
		o.progress = run_progress;
		o.progress_arg = &prog;
		log_tty_clear(true);
	}
	rc = sched_run(ctx->conf, &o, &st);
	if (prog.drawn) {
		/* The last count stays on screen, ended by a newline. */
		prog.last = 0;
		prog.drawn = false;
		run_progress(&prog, &st);
		fputc('\n', stderr);
		log_tty_clear(false);
	}
	if (rc != 0)
		return tools_fail("run", "the queue run failed");
	printf("postern run: %llu delivered, %llu deferred, %llu failed, "
	    "%llu held\n", (unsigned long long)st.delivered,
	    (unsigned long long)st.deferred, (unsigned long long)st.failed,
	    (unsigned long long)st.held);
	return st.deferred + st.failed > 0 ? TOOLS_EXIT_FAIL : 0;
}

/*
 * cmd_admin.c - operator changes (`hold`, `release`, `delete`, `requeue`,
 * `flush`, `bounce`); `check` is in cmd_check.c.
 *
 * Each change is one short write (split in bounded transactions for huge
 * selections by queue/), then a wake-up for the daemon's scheduler over
 * the datagram socket in the queue directory, so a flush starts at once;
 * without a daemon the wake-up simply finds nobody.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "tools.h"


/* admin_wake - tell a running daemon to look at the due index now;
 * "flush" also makes it forget which next hops it had found down (an
 * operator flushes when a destination is back). */
static void
admin_wake(const struct conf *conf, const char *what)
{
	sched_wake(-1, conf->queue_dir, what);
}

typedef int admin_fn(struct queue *, const struct qsel *, size_t *);

static int
admin_run(struct tools_ctx *ctx, int argc, char **argv, const char *cmd,
    admin_fn *fn, bool allow_all, const char *verb)
{
	struct queue	*q;
	struct qsel	 sel;
	size_t		 count = 0;
	int		 rc;

	if ((rc = tools_sel_parse(cmd, argc, argv, &sel, allow_all,
	    NULL)) != 0)
		return rc;
	if ((q = tools_open_queue(ctx, 0)) == NULL) {
		tools_sel_free(&sel);
		return TOOLS_EXIT_FAIL;
	}
	rc = fn(q, &sel, &count);
	if (rc != 0)
		rc = tools_fail(cmd, "%s", queue_errmsg(q));
	else {
		printf("postern %s: %s %zu recipient%s\n", cmd, verb, count,
		    count == 1 ? "" : "s");
		log_info("operator %s: %zu recipients", cmd, count);
		admin_wake(ctx->conf, "wake");
	}
	queue_close(q);
	tools_sel_free(&sel);
	return rc;
}

int
cmd_hold(struct tools_ctx *ctx, int argc, char **argv)
{
	return admin_run(ctx, argc, argv, "hold", queue_hold, true, "held");
}

int
cmd_release(struct tools_ctx *ctx, int argc, char **argv)
{
	return admin_run(ctx, argc, argv, "release", queue_release, true,
	    "released");
}

int
cmd_delete(struct tools_ctx *ctx, int argc, char **argv)
{
	return admin_run(ctx, argc, argv, "delete", queue_delete, false,
	    "deleted");
}

int
cmd_requeue(struct tools_ctx *ctx, int argc, char **argv)
{
	return admin_run(ctx, argc, argv, "requeue", queue_requeue, true,
	    "requeued");
}

/*
 * bounce: fail the selected live recipients now (5.0.0, "returned by the
 * administrator") and tell their senders. queue_bounce() runs the DSN hook
 * (runner_bounce.c, as the runners do) in each message's own transaction,
 * so a message's failures and the DSN that reports them commit together.
 * The selection is read whole before anything changes: an unknown id
 * changes nothing (exit 2). Then the daemon is woken so that the DSNs
 * leave at once. A recipient a runner has out is left to its result.
 */
int
cmd_bounce(struct tools_ctx *ctx, int argc, char **argv)
{
	struct runner_bounce	*b;
	struct queue		*q;
	struct qsel		 sel;
	size_t			 count = 0;
	int			 rc;

	if ((rc = tools_sel_parse("bounce", argc, argv, &sel, false,
	    NULL)) != 0)
		return rc;
	if ((q = tools_open_queue(ctx, 0)) == NULL) {
		tools_sel_free(&sel);
		return TOOLS_EXIT_FAIL;
	}
	b = runner_bounce_new(ctx->conf);
	runner_bounce_attach(b, q);
	rc = queue_bounce(q, &sel, NULL, NULL, (int64_t)clock_now(), &count);
	/* The bounce log lines, of the DSNs that were committed. A failure
	 * past the first message leaves the earlier ones bounced (each
	 * message is its own transaction) but unlogged. */
	runner_bounce_done(b, rc == 0);
	if (rc == QUEUE_E_NOENT)
		rc = tools_usage("bounce", "%s", queue_errmsg(q));
	else if (rc != 0)
		rc = tools_fail("bounce", "%s", queue_errmsg(q));
	else {
		printf("postern bounce: bounced %zu recipient%s\n", count,
		    count == 1 ? "" : "s");
		log_info("operator bounce: %zu recipients", count);
		if (count > 0)
			admin_wake(ctx->conf, "new");
	}
	queue_set_report(q, NULL, NULL, NULL);
	queue_close(q);
	runner_bounce_free(b);
	tools_sel_free(&sel);
	return rc;
}

/*
 * flush: IDs and --domain make held-for-site recipients due as well (an
 * operator's flush is like an ETRN); --all (or no argument, like
 * `postqueue -f`) makes every queued and deferred recipient due but
 * leaves the sites' held mail waiting for its sites.
 */
struct flush_dry {
	const struct conf	*conf;
	const struct qsel	*sel;
	struct routes		*routes;
	struct route_dns	*dns;
	size_t			 count;
};

static bool
flush_dry_selected(const struct flush_dry *d, const struct qmsg *m,
    const struct qrcpt *r)
{
	char	dom[QUEUE_ADDR_MAX + 1], want[QUEUE_ADDR_MAX + 1];
	size_t	i, dl, wl;

	if (r->state == QRCPT_DELIVERED || r->state == QRCPT_FAILED ||
	    r->state == QRCPT_ACTIVE || (r->flags & QRCPT_F_OPHOLD))
		return false;
	if (d->sel->nids > 0) {
		for (i = 0; i < d->sel->nids; i++)
			if (d->sel->ids[i] == m->id)
				return true;
		return false;
	}
	if (d->sel->all)
		return r->state != QRCPT_HELD;
	queue_domain_of(r->addr, dom, sizeof(dom));
	strl_copy(want, d->sel->domain, sizeof(want));
	strl_lower(want);
	if (strcmp(dom, want) == 0)
		return true;
	dl = strlen(dom);
	wl = strlen(want);
	return d->sel->subdomains && dl > wl + 1 &&
	    strcmp(dom + dl - wl, want) == 0 && dom[dl - wl - 1] == '.';
}

/* flush_dry1 - one message: where each selected recipient would go. */
static int
flush_dry1(void *arg, const struct qmsg *m, const struct qrcpt *r, size_t n)
{
	struct flush_dry	*d = arg;
	struct route		 rt;
	struct route_addr	 a[ROUTE_ADDR_MAX];
	char			 id[QUEUE_ID_LEN + 1], dom[QUEUE_ADDR_MAX + 1];
	char			 status[16], why[256], ip[64];
	size_t			 i, na, k;
	int			 rc;

	queue_id_format(m->id, id);
	for (i = 0; i < n; i++) {
		if (!flush_dry_selected(d, m, &r[i]))
			continue;
		d->count++;
		queue_domain_of(r[i].addr, dom, sizeof(dom));
		route_lookup(d->conf, d->routes, dom, &rt);
		if (rt.kind == ROUTE_HOLD || rt.kind == ROUTE_CALLER) {
			/* Where a flush sends held mail, as the runner. */
			route_release(d->conf, d->routes, dom, &rt);
		}
		printf("%s <", id);
		tools_put(stdout, r[i].addr, STRL_ESC_ADDR);
		printf("> %s via %s", queue_state_name(r[i].state), rt.key);
		rc = d->dns == NULL ? ROUTE_E_TEMP : route_dns_resolve(d->dns,
		    &rt, dom, a, ROUTE_ADDR_MAX, &na, status, why,
		    sizeof(why), 5000);
		if (d->dns == NULL)
			printf(" (no DNS)\n");
		else if (rc != ROUTE_OK)
			printf(" -> %s %s\n", status, why);
		else {
			printf(" ->");
			for (k = 0; k < na; k++) {
				const struct sockaddr *sa =
				    (const struct sockaddr *)&a[k].ss;

				if (getnameinfo(sa, a[k].sslen, ip, sizeof(ip),
				    NULL, 0, NI_NUMERICHOST) != 0)
					strl_copy(ip, "?", sizeof(ip));
				putchar(' ');
				tools_put(stdout, a[k].host, 0);
				printf("[%s]", ip);
			}
			putchar('\n');
		}
	}
	return 0;
}

/* flush_dry_run - print what a flush would send where; change nothing. */
static int
flush_dry_run(struct tools_ctx *ctx, struct queue *q, const struct qsel *sel)
{
	struct flush_dry	d;
	char			err[1024];
	int			rc;

	memset(&d, 0, sizeof(d));
	d.conf = ctx->conf;
	d.sel = sel;
	if (ctx->conf->routes_file != NULL && (d.routes = routes_load(
	    ctx->conf->routes_file, err, sizeof(err))) == NULL)
		return tools_fail("flush", "routes_file: %s", err);
	d.dns = route_dns_new(ctx->conf, err, sizeof(err));
	rc = queue_walk(q, sel->domain != NULL && !sel->subdomains ?
	    sel->domain : NULL, flush_dry1, &d);
	printf("postern flush --dry-run: %zu recipient%s would be made due\n",
	    d.count, d.count == 1 ? "" : "s");
	route_dns_free(d.dns);
	routes_free(d.routes);
	return rc != 0 ? tools_fail("flush", "%s", queue_errmsg(q)) : 0;
}

int
cmd_flush(struct tools_ctx *ctx, int argc, char **argv)
{
	struct queue	*q;
	struct qsel	 sel;
	char		*all[] = { argv[0], (char *)"--all", NULL, NULL };
	size_t		 count = 0;
	bool		 dry;
	int		 rc;

	if (argc == 1 || (argc == 2 && strcmp(argv[1], "--dry-run") == 0)) {
		all[2] = argc == 2 ? argv[1] : NULL;
		argc++;
		argv = all;
	}
	if ((rc = tools_sel_parse("flush", argc, argv, &sel, true,
	    &dry)) != 0)
		return rc;
	if ((q = tools_open_queue(ctx, dry ? QUEUE_RDONLY : 0)) == NULL) {
		tools_sel_free(&sel);
		return TOOLS_EXIT_FAIL;
	}
	if (dry) {
		rc = flush_dry_run(ctx, q, &sel);
		queue_close(q);
		tools_sel_free(&sel);
		return rc;
	}
	rc = queue_flush(q, &sel, !sel.all, (int64_t)clock_now(), &count);
	if (rc != 0)
		rc = tools_fail("flush", "%s", queue_errmsg(q));
	else {
		printf("postern flush: %zu recipient%s made due\n", count,
		    count == 1 ? "" : "s");
		log_info("operator flush: %zu recipients", count);
		admin_wake(ctx->conf, "flush");
	}
	queue_close(q);
	tools_sel_free(&sel);
	return rc;
}

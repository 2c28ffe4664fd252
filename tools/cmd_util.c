/*
 * cmd_util.c - what the commands share: opening the queue, parsing a
 * selection (IDs, --domain, --all), printing times and errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools.h"

struct queue *
tools_open_queue(struct tools_ctx *ctx, int flags)
{
	struct queue	*q;
	char		 err[1024];
	int		 rc;

	rc = queue_open(ctx->conf->queue_dir, flags, ctx->conf->queue_map_size,
	    &q, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "postern: %s\n", err);
		return NULL;
	}
	return q;
}

/* tools_vmsg - "postern CMD: msg" on standard error. The message often
 * quotes what was given (a sender address from a script, say): it is
 * escaped like a log line, so no control byte reaches the terminal. */
static int
tools_vmsg(int code, const char *cmd, const char *fmt, va_list ap)
{
	char	msg[LOG_LINE_MAX];

	log_vformat(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "postern %s: %s\n", cmd, msg);
	return code;
}

int
tools_usage(const char *cmd, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = tools_vmsg(TOOLS_EXIT_USAGE, cmd, fmt, ap);
	va_end(ap);
	return rc;
}

int
tools_fail(const char *cmd, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = tools_vmsg(TOOLS_EXIT_FAIL, cmd, fmt, ap);
	va_end(ap);
	return rc;
}

int
tools_sel_parse(const char *cmd, int argc, char **argv, struct qsel *sel,
    bool allow_all, bool *dry_run)
{
	uint64_t	*ids;
	size_t		 nids = 0;
	int		 i;

	memset(sel, 0, sizeof(*sel));
	if (dry_run != NULL)
		*dry_run = false;
	ids = xcalloc((size_t)argc + 1, sizeof(*ids));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			const char *d = argv[++i];

			if (sel->domain != NULL)
				goto usage_one;
			sel->subdomains = d[0] == '@';
			if (d[0] == '@')
				d++;
			if (!smtp_domain_valid(d, SMTP_ADDR_UTF8) &&
			    !smtp_addr_literal_valid(d, strlen(d))) {
				free(ids);
				return tools_usage(cmd, "bad domain \"%s\"",
				    argv[i]);
			}
			sel->domain = d;
		} else if (strcmp(argv[i], "--all") == 0 && allow_all) {
			sel->all = true;
		} else if (strcmp(argv[i], "--dry-run") == 0 &&
		    dry_run != NULL) {
			*dry_run = true;
		} else if (argv[i][0] == '-') {
			free(ids);
			return tools_usage(cmd, "unknown option \"%s\"",
			    argv[i]);
		} else if (queue_id_parse(argv[i], &ids[nids]) == 0) {
			nids++;
		} else {
			free(ids);
			return tools_usage(cmd, "bad queue id \"%s\"", argv[i]);
		}
	}
	if ((nids > 0) + (sel->domain != NULL) + sel->all != 1)
		goto usage_one;
	sel->ids = ids;
	sel->nids = nids;
	return 0;
usage_one:
	free(ids);
	return tools_usage(cmd, "give queue IDs, or --domain D%s (one of them)",
	    allow_all ? ", or --all" : "");
}

void
tools_sel_free(struct qsel *sel)
{
	free((void *)(uintptr_t)sel->ids);	/* ours: tools_sel_parse made it */
	sel->ids = NULL;
}

const char *
tools_time(int64_t t, char *buf, size_t bufsz)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (t == 0 || localtime_r(&tt, &tm) == NULL) {
		strl_copy(buf, "-", bufsz);
		return buf;
	}
	if (strftime(buf, bufsz, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		strl_copy(buf, "-", bufsz);
	return buf;
}

void
tools_put(FILE *fp, const char *s, int flags)
{
	char	u[STRL_ESC_UNIT_MAX];
	size_t	n = strlen(s), k, ulen;

	while (n > 0) {
		k = strl_esc_unit(s, n, flags, u, &ulen);
		fwrite(u, 1, ulen, fp);
		s += k;
		n -= k;
	}
}

/*
 * tools.h - the `postern` command: one binary for operators and sites.
 *
 * postern.c holds main() and the command table; each cmd_*.c implements a
 * family of commands as `int cmd_NAME(struct tools_ctx *, int argc,
 * char **argv)` returning the process exit status: 0 done, 1 a runtime
 * failure (queue, network), 2 bad input (an option, an address, a queue
 * id), and nothing queued in that case. Commands that change the queue do
 * one short write and never hold a transaction while they print.
 *
 * Beside the code, tools/ holds what make uses: install-deps.sh and
 * install-user.sh, and the templates `make install` fills in with the
 * installed paths (postern.conf.sample.in, posternd.service.in).
 *
 * inject.c is no command: `enqueue` and sendmail hand their message to the
 * running daemon with it (and store it themselves when that fails).
 */
#ifndef TOOLS_H
#define TOOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "queue.h"
#include "smtp.h"

#define TOOLS_EXIT_OK		0
#define TOOLS_EXIT_FAIL		1
#define TOOLS_EXIT_USAGE	2

struct tools_ctx {
	struct conf	*conf;
	const char	*conf_file;	/* as given with -c, or NULL */
	const char	*progname;
};

/* cmd_util.c */
/* tools_open_queue - open conf's queue or print why and return NULL. */
struct queue *tools_open_queue(struct tools_ctx *, int flags);
/* tools_usage - print "postern CMD: msg" and return 2. */
int	tools_usage(const char *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	tools_fail(const char *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* tools_sel_parse - IDs, --domain D (@D: and its subdomains), --all.
 * The ids array is malloc'd into sel->ids. Returns 0 or 2 (printed). */
int	tools_sel_parse(const char *cmd, int argc, char **argv,
	    struct qsel *, bool allow_all, bool *dry_run);
void	tools_sel_free(struct qsel *);
/* tools_time - "2026-11-22 11:30:50" local time into buf. */
const char *tools_time(int64_t t, char *buf, size_t bufsz);
/* tools_put - write s to fp escaped as log lines are (strl_esc_unit with
 * flags): a stored field is a peer's text and never reaches a terminal
 * as it is. */
void	tools_put(FILE *fp, const char *s, int flags);

/* cmd_enqueue.c */
int	cmd_enqueue(struct tools_ctx *, int, char **);
int	cmd_sendmail(struct tools_ctx *, int, char **);

/* inject.c - hand a message to the running daemon's listener over
 * queue_dir's socket (etrn/smtpd_local.c): it joins the group commit. */
struct inject_msg {
	const char		*sender;	/* "" for <> */
	const struct qrcpt	*rcpt;		/* only .addr is read */
	size_t			 nrcpt;
	const char		*body;		/* CRLF lines, no trace field:
						 * the listener adds it */
	size_t			 len;
	bool			 eight;		/* BODY=8BITMIME */
	bool			 utf8;		/* SMTPUTF8 */
};
#define INJECT_QUEUED		0	/* stored; id filled in */
#define INJECT_NOT_TAKEN	1	/* not stored (or not known to be):
					 * store it directly; why says why */
/* inject_submit - INJECT_QUEUED once the listener has committed the
 * message, else INJECT_NOT_TAKEN. Blocks: up to a minute a step, ten
 * minutes for the commit. */
int	inject_submit(const struct conf *, const struct inject_msg *,
	    char id[QUEUE_ID_LEN + 1], char *why, size_t whysz);

/* cmd_queue.c */
int	cmd_queue(struct tools_ctx *, int, char **);
int	cmd_show(struct tools_ctx *, int, char **);
int	cmd_stats(struct tools_ctx *, int, char **);

/* cmd_admin.c */
int	cmd_hold(struct tools_ctx *, int, char **);
int	cmd_release(struct tools_ctx *, int, char **);
int	cmd_delete(struct tools_ctx *, int, char **);
int	cmd_requeue(struct tools_ctx *, int, char **);
int	cmd_flush(struct tools_ctx *, int, char **);
int	cmd_bounce(struct tools_ctx *, int, char **);

/* cmd_check.c */
/* tools_check_fn - one finding: an error (posternd would not start) or a
 * warning; msg is one line, "FILE:LINE: KEY: why", without a prefix. */
typedef void tools_check_fn(void *arg, bool error, const char *msg);
/* tools_check_conf - read everything conf names with the daemon's own
 * parsers (routes_file, users_file, relayhost_auth_file, relay_recipients,
 * TLS material, dns_servers) and report each finding to fn; returns the
 * number of errors. Blocks only on reading those files. */
int	tools_check_conf(const struct conf *, tools_check_fn *fn, void *arg);
int	cmd_check(struct tools_ctx *, int, char **);

/* metrics.c */
/* metrics_serve - posternd's "metrics" process: serve /metrics and / on
 * the bound sockets (metrics_listen) until SIGTERM; returns the exit
 * status. */
int	metrics_serve(const struct conf *, const int *fds, size_t nfds);

/* cmd_run.c */
int	cmd_run(struct tools_ctx *, int, char **);

/* cmd_pull.c */
int	cmd_pull(struct tools_ctx *, int, char **);

/* cmd_passwd.c */
int	cmd_passwd(struct tools_ctx *, int, char **);

/* cmd_etrn.c - the site's ETRN (RFC 1985) to its provider. */
int	cmd_etrn(struct tools_ctx *, int, char **);

#endif

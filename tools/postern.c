/*
 * postern.c - main() of the `postern` command, and its command table.
 *
 * Called as "sendmail" (any name ending in "sendmail") it is the
 * sendmail-compatible injector; otherwise the first argument names the
 * command. The configuration is read before any command runs, so every
 * command sees the same queue_dir and limits as the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

struct postern_cmd {
	const char	*name;
	int		(*fn)(struct tools_ctx *, int, char **);
	const char	*usage;
};

static const struct postern_cmd postern_cmds[] = {
	{ "enqueue", cmd_enqueue, "enqueue [-f SENDER] [-t] [-i] [-F NAME] [RCPT...]" },
	{ "queue", cmd_queue, "queue [--json] [--domain D]" },
	{ "show", cmd_show, "show [--raw] ID" },
	{ "stats", cmd_stats, "stats [--json]" },
	{ "hold", cmd_hold, "hold ID... | --domain D" },
	{ "release", cmd_release, "release ID... | --domain D | --all" },
	{ "delete", cmd_delete, "delete ID... | --domain D" },
	{ "bounce", cmd_bounce, "bounce ID... | --domain D" },
	{ "requeue", cmd_requeue, "requeue ID... | --domain D | --all" },
	{ "flush", cmd_flush, "flush [ID...] [--domain D] [--all] [--dry-run]" },
	{ "run", cmd_run, "run [--domain D] [--all]" },
	{ "pull", cmd_pull, "pull HOST[:PORT] --user U --password-file F [--domain D]... [--starttls] [--ca-file FILE] [-v]" },
	{ "check", cmd_check, "check [--keys]" },
	{ "passwd", cmd_passwd, "passwd USER [DOMAIN...]  (password on stdin)" },
	{ "etrn", cmd_etrn, "etrn [-v] [--user U --password-file F] [--ca-file F] [--tls none|may|encrypt] [--force] HOST[:PORT] DOMAIN|@DOMAIN|#QUEUE..." },
};

static int
postern_usage(void)
{
	size_t	i;

	fprintf(stderr, "usage: postern [-c FILE] COMMAND ...\ncommands:\n");
	for (i = 0; i < sizeof(postern_cmds) / sizeof(postern_cmds[0]); i++)
		fprintf(stderr, "  postern %s\n", postern_cmds[i].usage);
	return TOOLS_EXIT_USAGE;
}

/* postern_conf_file - -c FILE, else $POSTERN_CONF, else the default file
 * when it exists, else none (embedded defaults). */
static const char *
postern_conf_file(const char *given)
{
	const char	*env;

	if (given != NULL)
		return given;
	if ((env = getenv("POSTERN_CONF")) != NULL && *env != '\0')
		return env;
	if (access(CONF_DEFAULT_FILE, F_OK) == 0)
		return CONF_DEFAULT_FILE;
	return NULL;
}

int
main(int argc, char **argv)
{
	struct tools_ctx	 ctx;
	const char		*base, *given = NULL;
	char			 err[1024];
	size_t			 i;
	int			 rc;

	memset(&ctx, 0, sizeof(ctx));
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	ctx.progname = base;
	log_init("postern", LOG_DEST_NONE);

	if (strlen(base) >= 8 && strcmp(base + strlen(base) - 8,
	    "sendmail") == 0) {
		/* sendmail(1) mode: options are sendmail's; -C names the
		 * configuration like sendmail's own -C does. */
		for (i = 1; i < (size_t)argc; i++)
			if (strcmp(argv[i], "-C") == 0 && i + 1 < (size_t)argc)
				given = argv[i + 1];
		ctx.conf_file = postern_conf_file(given);
		if ((ctx.conf = conf_load(ctx.conf_file, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "sendmail: %s\n", err);
			return 75;	/* EX_TEMPFAIL: try again */
		}
		rc = cmd_sendmail(&ctx, argc, argv);
		conf_free(ctx.conf);
		return rc;
	}

	argc--;
	argv++;
	while (argc > 0 && argv[0][0] == '-') {
		if (strcmp(argv[0], "-c") == 0 && argc > 1) {
			given = argv[1];
			argc -= 2;
			argv += 2;
		} else if (strcmp(argv[0], "-h") == 0 ||
		    strcmp(argv[0], "--help") == 0) {
			postern_usage();
			return 0;
		} else {
			fprintf(stderr, "postern: unknown option %s\n", argv[0]);
			return postern_usage();
		}
	}
	if (argc == 0)
		return postern_usage();
	for (i = 0; i < sizeof(postern_cmds) / sizeof(postern_cmds[0]); i++)
		if (strcmp(argv[0], postern_cmds[i].name) == 0)
			break;
	if (i == sizeof(postern_cmds) / sizeof(postern_cmds[0])) {
		fprintf(stderr, "postern: unknown command \"%s\"\n", argv[0]);
		return postern_usage();
	}
	ctx.conf_file = postern_conf_file(given);
	if ((ctx.conf = conf_load(ctx.conf_file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		return strcmp(argv[0], "check") == 0 ? TOOLS_EXIT_FAIL :
		    TOOLS_EXIT_USAGE;
	}
	if (ctx.conf->log == LOG_DEST_SYSLOG)
		log_init("postern", LOG_DEST_SYSLOG);
	rc = postern_cmds[i].fn(&ctx, argc, argv);
	conf_free(ctx.conf);
	return rc;
}

/*
 * cmd_check.c - `postern check`, and the same checks at posternd's start;
 * `postern check --keys` lists the configuration keys (for the docs test).
 *
 * tools_check_conf() reads everything the configuration names with the
 * daemon's own parsers: routes_file (route.c), users_file (smtp_auth.c),
 * etrn_policy and etrn_queues (etrn_policy.c),
 * relayhost_auth_file (route_auth.c), relay_recipients (linefile.c, the
 * reader smtpd uses), the server's TLS context (smtp_conn.c) and
 * tls_ca_file, dns_servers (route_dns.c). A file that
 * would stop the scheduler or the listener at start-up is thus found by
 * `postern check`, and posternd refuses to start on it, with the same
 * words, before it forks anything. Each message starts where the value
 * came from ("postern.conf:7: routes_file: ") and goes on with the
 * parser's own "file:line: why".
 *
 * users_file holds password-equivalent secrets (CRAM-MD5 and SCRAM keys)
 * and relayhost_auth_file a password in the clear: when group or others
 * have any access to them that is a warning, not an error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "etrn.h"
#include "runner.h"
#include "tools.h"

struct check {
	const struct conf	*conf;
	tools_check_fn		*fn;
	void			*arg;
	int			 errors;
};

static void	check_say(struct check *, bool, const char *, const char *,
		    ...) __attribute__((format(printf, 4, 5)));

/* check_say - one finding about key: "FILE:LINE: KEY: " and the text. */
static void
check_say(struct check *ck, bool error, const char *key, const char *fmt,
    ...)
{
	struct sbuf	*b;
	va_list		 ap;
	const char	*file;
	int		 line;

	file = ck->conf->file != NULL ? ck->conf->file : "(defaults)";
	line = key != NULL ? conf_key_line(ck->conf, key) : 0;
	b = sbuf_new();
	if (line > 0)
		sbuf_catf(b, "%s:%d: ", file, line);
	else
		sbuf_catf(b, "%s: ", file);
	if (key != NULL)
		sbuf_catf(b, "%s: ", key);
	va_start(ap, fmt);
	sbuf_vcatf(b, fmt, ap);
	va_end(ap);
	ck->fn(ck->arg, error, sbuf_str(b));
	if (error)
		ck->errors++;
	sbuf_free(b);
}

/* check_private - a warning when group or others may open a secret. */
static void
check_private(struct check *ck, const char *key, const char *path)
{
	struct stat	st;

	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		check_say(ck, false, key, "%s: group or others have access "
		    "(mode %04o), and it holds secrets: chmod 600 it, owned "
		    "by the user posternd runs as", path,
		    (unsigned)(st.st_mode & 07777));
}

/* check_notify - site_notify_command: an absolute path to a program the
 * daemon's user may run, then at most NOTIFY_ARGV_MAX words in all; a
 * command with both triggers off never runs (a warning). */
static void
check_notify(struct check *ck)
{
	const struct conf	*c = ck->conf;
	char			*w, *p;
	size_t			 n = 0;

	if (c->site_notify_command == NULL)
		return;
	w = xstrdup(c->site_notify_command);
	for (p = strtok(w, " \t"); p != NULL; p = strtok(NULL, " \t"))
		if (n++ == 0 && (p[0] != '/' || access(p, X_OK) == -1))
			check_say(ck, true, "site_notify_command", "%s: %s", p,
			    p[0] != '/' ? "want an absolute path (it runs "
			    "without a shell)" : strerror(errno));
	if (n > NOTIFY_ARGV_MAX)
		check_say(ck, true, "site_notify_command", "more than %d "
		    "words", NOTIFY_ARGV_MAX);
	free(w);
	if (c->site_notify_threshold == 0 && c->site_notify_age == 0)
		check_say(ck, false, "site_notify_command", "site_notify_"
		    "threshold and site_notify_age are both 0: it never runs");
}

static void
check_routes(struct check *ck)
{
	struct routes	*rs;
	char		 err[1024];

	if (ck->conf->routes_file == NULL)
		return;
	if ((rs = routes_load(ck->conf->routes_file, err, sizeof(err))) ==
	    NULL)
		check_say(ck, true, "routes_file", "%s", err);
	routes_free(rs);
}

static void
check_users(struct check *ck)
{
	struct auth_db	*db;
	char		 err[1024];

	if (ck->conf->users_file == NULL)
		return;
	if ((db = auth_db_load(ck->conf->users_file, err, sizeof(err))) ==
	    NULL) {
		check_say(ck, true, "users_file", "%s", err);
		return;
	}
	auth_db_free(db);
	check_private(ck, "users_file", ck->conf->users_file);
}

/* check_etrn - etrn_policy (its rules file) and etrn_queues, with the
 * listener's parser (etrn_policy.c). */
static void
check_etrn(struct check *ck)
{
	struct etrn_policy	*p;
	char			 err[1024];

	if ((p = etrn_policy_load(ck->conf, err, sizeof(err))) == NULL)
		check_say(ck, true, strncmp(err, "etrn_queues: ", 13) == 0 ?
		    "etrn_queues" : "etrn_policy", "%s",
		    strncmp(err, "etrn_queues: ", 13) == 0 ? err + 13 : err);
	etrn_policy_free(p);
}

static void
check_relayauth(struct check *ck)
{
	char	*user, *pass, err[1024];

	if (ck->conf->relayhost_auth_file == NULL)
		return;
	if (route_auth_load(ck->conf->relayhost_auth_file, &user, &pass, err,
	    sizeof(err)) != 0) {
		check_say(ck, true, "relayhost_auth_file", "%s", err);
		return;
	}
	route_auth_free(&user, &pass);
	check_private(ck, "relayhost_auth_file",
	    ck->conf->relayhost_auth_file);
}

/* check_known_line - relay_recipients: smtpd takes any line as an
 * address or "@domain"; what can be wrong is the file (linefile.c). */
static int
check_known_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	(void)arg;
	(void)line;
	(void)len;
	(void)lineno;
	(void)why;
	(void)whysz;
	return 0;
}

static void
check_known(struct check *ck)
{
	char	err[1024];

	if (ck->conf->relay_recipients == NULL)
		return;
	if (linefile_read(ck->conf->relay_recipients, check_known_line, NULL,
	    err, sizeof(err)) == -1)
		check_say(ck, true, "relay_recipients", "%s", err);
}

static void
check_tls(struct check *ck)
{
	const struct conf	*c = ck->conf;
	SSL_CTX			*ssl;
	char			 err[1024];

	if (c->tls_cert_file != NULL || c->tls_key_file != NULL) {
		if (c->tls_cert_file == NULL || c->tls_key_file == NULL)
			check_say(ck, true, c->tls_cert_file != NULL ?
			    "tls_cert_file" : "tls_key_file", "tls_cert_file "
			    "and tls_key_file go together");
		else if ((ssl = smtp_tls_server_ctx(c, err, sizeof(err))) ==
		    NULL)
			check_say(ck, true, "tls_cert_file", "%s", err);
		else
			SSL_CTX_free(ssl);
		ERR_clear_error();
	}
	/* MTA-STS's HTTPS (libcurl) reads the same PEM format: a file
	 * OpenSSL cannot load would fail every policy fetch. */
	if (c->smtp_mta_sts_ca_file != NULL) {
		if ((ssl = smtp_tls_client_ctx(c->smtp_mta_sts_ca_file, err,
		    sizeof(err))) == NULL)
			check_say(ck, true, "smtp_mta_sts_ca_file", "%s", err);
		SSL_CTX_free(ssl);
		ERR_clear_error();
	}
	if (c->tls_ca_file == NULL)
		return;
	/* The delivery client's own context (smtp_conn.c). */
	if ((ssl = smtp_tls_client_ctx(c->tls_ca_file, err, sizeof(err))) ==
	    NULL)
		check_say(ck, true, "tls_ca_file", "%s", err);
	SSL_CTX_free(ssl);
}

static void
check_dns(struct check *ck)
{
	const struct conf_list	*l = &ck->conf->dns_servers;
	struct route_dns	*d;
	char			 err[1024];
	size_t			 i;
	int			 bad = 0;

	for (i = 0; i < l->n; i++)
		if (!route_dns_server_ok(l->v[i])) {
			/* route_dns_new's words. */
			check_say(ck, true, "dns_servers", "bad server "
			    "\"%.80s\" (want IP, IP:PORT or [IPv6]:PORT)",
			    l->v[i]);
			bad++;
		}
	if (bad > 0)
		return;
	if ((d = route_dns_new(ck->conf, err, sizeof(err))) == NULL)
		check_say(ck, true, NULL, "%s", err);
	route_dns_free(d);
}

int
tools_check_conf(const struct conf *c, tools_check_fn *fn, void *arg)
{
	struct check	ck;

	memset(&ck, 0, sizeof(ck));
	ck.conf = c;
	ck.fn = fn;
	ck.arg = arg;
	check_routes(&ck);
	check_users(&ck);
	check_etrn(&ck);
	check_relayauth(&ck);
	check_known(&ck);
	check_tls(&ck);
	check_dns(&ck);
	check_notify(&ck);
	return ck.errors;
}

/* check_print - `postern check`'s report: errors to standard error,
 * warnings to standard output. */
static void
check_print(void *arg, bool error, const char *msg)
{
	(void)arg;
	if (error)
		fprintf(stderr, "postern check: error: %s\n", msg);
	else
		printf("postern check: warning: %s\n", msg);
}

/* check_dir_empty - 1 empty, 0 not, -1 unreadable (errno). */
static int
check_dir_empty(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 empty = 1;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* check_queue - the queue directory: missing or empty is fine (posternd
 * makes the queue); otherwise it must open as a queue. */
static int
check_queue(const struct conf *c)
{
	struct queue	*q;
	struct stat	 st;
	char		 err[1024];
	int		 empty;

	if (lstat(c->queue_dir, &st) == -1) {
		if (errno == ENOENT) {
			printf("postern check: queue_dir %s does not exist yet;"
			    " posternd creates it\n", c->queue_dir);
			return 0;
		}
		fprintf(stderr, "postern check: error: queue_dir %s: %s\n",
		    c->queue_dir, strerror(errno));
		return 1;
	}
	if (S_ISLNK(st.st_mode)) {
		/* posternd started as root refuses it (posternd.c). */
		printf("postern check: warning: queue_dir %s is a symbolic "
		    "link: posternd started as root refuses it\n",
		    c->queue_dir);
	}
	if ((empty = check_dir_empty(c->queue_dir)) == 1) {
		printf("postern check: queue_dir %s is empty; posternd "
		    "creates the queue in it\n", c->queue_dir);
		return 0;
	}
	if (empty == -1 && errno != ENOTDIR) {
		fprintf(stderr, "postern check: error: queue_dir %s: %s\n",
		    c->queue_dir, strerror(errno));
		return 1;
	}
	if (queue_open(c->queue_dir, 0, c->queue_map_size, &q, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "postern check: error: %s\n", err);
		return 1;
	}
	queue_close(q);
	return 0;
}

/* check_keys - `check --keys`: every key the configuration accepts, one a
 * line, from conf.c's own table, so that the documentation can be checked
 * against the code (tests/integ/cases/700-docs.sh) without a copied list. */
static int
check_keys(void)
{
	const char *const	*k;

	for (k = conf_keys(); *k != NULL; k++)
		printf("%s\n", *k);
	return fflush(stdout) == 0 ? 0 : TOOLS_EXIT_FAIL;
}

int
cmd_check(struct tools_ctx *ctx, int argc, char **argv)
{
	const struct conf	*c = ctx->conf;
	int			 errors;

	if (argc == 2 && strcmp(argv[1], "--keys") == 0)
		return check_keys();
	if (argc > 1)
		return tools_usage("check", "takes no arguments but --keys");
	errors = check_queue(c);
	errors += tools_check_conf(c, check_print, NULL);
	if (strchr(c->myhostname, '.') == NULL)
		printf("postern check: warning: myhostname \"%s\" is not a "
		    "fully qualified name\n", c->myhostname);
	if (c->smtp_tls == CONF_TLS_ENCRYPT && c->tls_ca_file == NULL)
		printf("postern check: warning: smtp_tls = encrypt without "
		    "tls_ca_file uses the system's CA store\n");
	if (c->smtp_tls == CONF_TLS_DANE && c->dns_servers.n == 0)
		printf("postern check: warning: smtp_tls = dane without "
		    "dns_servers acts as may: only a configured validating "
		    "resolver is trusted\n");
	if (errors > 0) {
		fprintf(stderr, "postern check: %d error%s\n", errors,
		    errors == 1 ? "" : "s");
		return TOOLS_EXIT_FAIL;
	}
	printf("postern check: %s: ok\n", ctx->conf_file ? ctx->conf_file :
	    "(embedded defaults)");
	return 0;
}

/*
 * cmd_pull.c - `postern pull`: the site's side of ODMR (RFC 2645).
 *
 *	postern pull HOST[:PORT] --user U --password-file F [--domain D]...
 *	    [--starttls] [--ca-file FILE] [-v]
 *
 * Connect to the provider's ODMR port (366 by default), read the
 * greeting, EHLO, STARTTLS when offered (required with --starttls, and
 * then the certificate must verify for HOST against --ca-file, else
 * tls_ca_file, else the system's store), AUTH (SCRAM-SHA-256, else
 * CRAM-MD5, else PLAIN/LOGIN only inside verified TLS: smtpc_auth.c), then
 * "ATRN" or "ATRN d1,d2". 453: no mail, exit 0. 250: the connection is
 * reversed and we are its SMTP server (etrn/smtpd_pull.c, with the
 * listener's own session code and group commit): each message is in the
 * local queue, with fsync, before its 250, and the site's daemon is woken
 * to send it on by its routes. Recipients are taken for the --domain list
 * only, or without one for relay_domains and hold_domains (etrn.h says
 * why).
 *
 * Output: on a terminal one progress line on standard error (messages and
 * bytes received), always a summary on standard output. Exit 0 when the
 * provider ended the session with QUIT, or had no mail (453); 1 on any
 * failure (connect, TLS, AUTH, ATRN refused, connection lost: what was
 * stored stays stored, the rest waits at the provider); 2 on bad usage.
 * The password file's first line is the password; a file others may read
 * draws a warning.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etrn.h"
#include "runner.h"
#include "tools.h"

#define PULL_CMD		"pull"
#define PULL_PORT		"366"		/* RFC 2645 §4, IANA odmr */
#define PULL_ADDRS_MAX		ROUTE_ADDR_MAX
#define PULL_PASS_MAX		1024
#define PULL_ATRN_MAX		510		/* RFC 5321 §4.5.3.1.4 */

struct pull_args {
	char			 host[256];	/* no brackets */
	char			 port[16];
	const char		*user;
	const char		*pass_file;
	const char		*ca_file;
	struct conf_list	 domains;
	bool			 starttls;
	bool			 verbose;
};

/* What the progress line shows. */
struct pull_progress {
	bool		tty;
	bool		shown;
	uint64_t	msgs, bytes;
};

/* pull_hostport - HOST, HOST:PORT, [IPV6]:PORT, [IPV6] or a bare IPv6
 * address into a; -1 when malformed. */
static int
pull_hostport(const char *s, struct pull_args *a)
{
	const char	*e, *port = NULL;
	size_t		 n;

	if (s[0] == '[') {
		if ((e = strchr(s, ']')) == NULL)
			return -1;
		n = (size_t)(e - s - 1);
		if (e[1] == ':')
			port = e + 2;
		else if (e[1] != '\0')
			return -1;
		s++;
	} else if ((e = strchr(s, ':')) != NULL && strchr(e + 1, ':') ==
	    NULL) {
		n = (size_t)(e - s);
		port = e + 1;
	} else
		n = strlen(s);
	if (n == 0 || n >= sizeof(a->host))
		return -1;
	memcpy(a->host, s, n);
	a->host[n] = '\0';
	if (port != NULL) {
		char		*ep;
		unsigned long	 p = strtoul(port, &ep, 10);

		if (port[0] < '0' || port[0] > '9' || *ep != '\0' || p == 0 ||
		    p > 65535)
			return -1;
		bsnprintf(a->port, sizeof(a->port), "%lu", p);
	} else
		strl_copy(a->port, PULL_PORT, sizeof(a->port));
	return 0;
}

/* pull_domain_add - one --domain argument (a comma list is fine). */
static int
pull_domain_add(struct pull_args *a, const char *arg)
{
	char	*copy = xstrdup(arg), *d, *save = NULL;
	char	 adom[SMTP_DOMAIN_MAX + 2];
	int	 rc = 0;

	for (d = strtok_r(copy, ", ", &save); d != NULL;
	    d = strtok_r(NULL, ", ", &save)) {
		/* U-labels are taken as their A-labels (ATRN and the
		 * check of what the provider sends compare those). */
		if (*d == '.' || smtp_idn_domain(d, adom, sizeof(adom),
		    NULL) != 0) {
			rc = tools_usage(PULL_CMD, "bad domain \"%s\"", d);
			break;
		}
		a->domains.v = xreallocarray(a->domains.v, a->domains.n + 1,
		    sizeof(*a->domains.v));
		a->domains.v[a->domains.n++] = xstrdup(adom);
	}
	free(copy);
	return rc;
}

static int
pull_parse(int argc, char **argv, struct pull_args *a)
{
	const char	*hp = NULL;
	int		 i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			a->user = argv[++i];
		else if (strcmp(argv[i], "--password-file") == 0 &&
		    i + 1 < argc)
			a->pass_file = argv[++i];
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			a->ca_file = argv[++i];
		else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			if ((rc = pull_domain_add(a, argv[++i])) != 0)
				return rc;
		} else if (strcmp(argv[i], "--starttls") == 0)
			a->starttls = true;
		else if (strcmp(argv[i], "-v") == 0 ||
		    strcmp(argv[i], "--verbose") == 0)
			a->verbose = true;
		else if (argv[i][0] == '-' || hp != NULL)
			return tools_usage(PULL_CMD, "unknown argument \"%s\"",
			    argv[i]);
		else
			hp = argv[i];
	}
	if (hp == NULL || a->user == NULL || a->pass_file == NULL)
		return tools_usage(PULL_CMD, "usage: postern pull HOST[:PORT] "
		    "--user U --password-file F [--domain D]... [--starttls] "
		    "[--ca-file FILE] [-v]");
	if (pull_hostport(hp, a) != 0)
		return tools_usage(PULL_CMD, "bad HOST[:PORT] \"%s\"", hp);
	if (!auth_user_name_ok(a->user, strlen(a->user)))
		return tools_usage(PULL_CMD, "bad user name \"%s\"", a->user);
	return 0;
}

/* pull_password - the first line of the file, without its line end, into
 * a malloc'd string (wipe and free it); NULL with a message printed. */
static char *
pull_password(const char *file)
{
	struct stat	 st;
	FILE		*fp;
	char		*line = NULL;
	size_t		 cap = 0;
	ssize_t		 n;

	if ((fp = fopen(file, "re")) == NULL) {
		tools_fail(PULL_CMD, "%s: %s", file, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr, "postern pull: warning: %s may be read by "
		    "others (mode %03o)\n", file, (unsigned)st.st_mode & 0777);
	n = getline(&line, &cap, fp);
	fclose(fp);
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n <= 0 || n > PULL_PASS_MAX || strlen(line) != (size_t)n) {
		tools_fail(PULL_CMD, "%s: want the password on the first line "
		    "(1..%d octets, no NUL)", file, PULL_PASS_MAX);
		if (line != NULL)
			explicit_bzero(line, cap);
		free(line);
		return NULL;
	}
	return line;
}

/* pull_resolve - HOST's addresses (getaddrinfo: a name or an IP). */
static int
pull_resolve(const struct pull_args *a, struct route_addr *out, size_t max,
    size_t *n)
{
	struct addrinfo	 hints, *res, *ai;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(a->host, a->port, &hints, &res)) != 0)
		return tools_fail(PULL_CMD, "%s: %s", a->host,
		    gai_strerror(rc));
	*n = 0;
	for (ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[*n].ss))
			continue;
		memset(&out[*n], 0, sizeof(out[*n]));
		memcpy(&out[*n].ss, ai->ai_addr, ai->ai_addrlen);
		out[*n].sslen = ai->ai_addrlen;
		strl_copy(out[*n].host, a->host, sizeof(out[*n].host));
		(*n)++;
	}
	freeaddrinfo(res);
	if (*n == 0)
		return tools_fail(PULL_CMD, "%s: no address", a->host);
	return 0;
}

/* pull_atrn_line - "ATRN" or "ATRN d1,d2" (RFC 2645 §5.2.1: commas, no
 * spaces); -1 when too long for one command line. */
static int
pull_atrn_line(const struct conf_list *d, char *buf, size_t bufsz)
{
	size_t	i;

	strl_copy(buf, "ATRN", bufsz);
	for (i = 0; i < d->n; i++)
		if (!strl_cat(buf, i == 0 ? " " : ",", bufsz) ||
		    !strl_cat(buf, d->v[i], bufsz))
			return -1;
	return strlen(buf) <= PULL_ATRN_MAX ? 0 : -1;
}

/* pull_size - "12.3 MB" and friends. */
static const char *
pull_size(uint64_t b, char *buf, size_t bufsz)
{
	if (b < 10000)
		bsnprintf(buf, bufsz, "%llu bytes", (unsigned long long)b);
	else if (b < 10000000)
		bsnprintf(buf, bufsz, "%.1f kB", (double)b / 1e3);
	else
		bsnprintf(buf, bufsz, "%.1f MB", (double)b / 1e6);
	return buf;
}

/* pull_show - the progress line, redrawn in place (terminal only). */
static void
pull_show(void *arg, uint64_t msgs, uint64_t bytes)
{
	struct pull_progress	*p = arg;
	char			 sz[32];

	if (!p->tty || (p->shown && msgs == p->msgs && bytes == p->bytes))
		return;
	p->msgs = msgs;
	p->bytes = bytes;
	p->shown = true;
	fprintf(stderr, "\rpostern pull: %llu message%s, %s received\033[K",
	    (unsigned long long)msgs, msgs == 1 ? "" : "s",
	    pull_size(bytes, sz, sizeof(sz)));
	fflush(stderr);
}

static void
pull_clear(struct pull_progress *p)
{
	if (p->tty && p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = false;
	}
}

static void
pull_summary(const char *host, uint64_t msgs, uint64_t bytes, double secs)
{
	printf("postern pull: %s: %llu message%s, %llu bytes in %.1f s\n",
	    host, (unsigned long long)msgs, msgs == 1 ? "" : "s",
	    (unsigned long long)bytes, secs);
	fflush(stdout);
}

/* pull_reversed - ATRN said 250: be the server on the same connection. */
static int
pull_reversed(struct tools_ctx *ctx, struct pull_args *a,
    struct smtpc *sc, double t0)
{
	struct smtpd_pull_opts	 po;
	struct smtpd_pull_result res;
	struct pull_progress	 pp;
	struct smtp_conn	*conn;

	if ((conn = smtpc_detach(sc)) == NULL)
		return tools_fail(PULL_CMD, "%s: connection lost after ATRN",
		    a->host);
	memset(&pp, 0, sizeof(pp));
	pp.tty = isatty(STDERR_FILENO) == 1;
	memset(&po, 0, sizeof(po));
	po.domains = &a->domains;
	po.progress = pull_show;
	po.progress_arg = &pp;
	pull_show(&pp, 0, 0);
	if (smtpd_pull_run(ctx->conf, conn, &po, &res) != 0) {
		pull_clear(&pp);
		return tools_fail(PULL_CMD, "%s", res.why);
	}
	pull_clear(&pp);
	pull_summary(a->host, res.messages, res.bytes,
	    clock_mono_secs() - t0);
	if (res.quit && res.refused_full > 0)
		return tools_fail(PULL_CMD, "%s: the local queue is full: "
		    "%llu message%s refused (452 4.3.1) wait%s at the "
		    "provider for the next pull", a->host,
		    (unsigned long long)res.refused_full,
		    res.refused_full == 1 ? "" : "s",
		    res.refused_full == 1 ? "s" : "");
	if (!res.quit)
		return tools_fail(PULL_CMD, "%s: %s; the %llu message%s "
		    "received are stored, the rest waits for the next pull",
		    a->host, res.why, (unsigned long long)res.messages,
		    res.messages == 1 ? "" : "s");
	return TOOLS_EXIT_OK;
}

int
cmd_pull(struct tools_ctx *ctx, int argc, char **argv)
{
	struct pull_args	 a;
	struct route_addr	 addrs[PULL_ADDRS_MAX];
	struct smtpc_opts	 o;
	struct smtp_reply	 r;
	struct smtpc		*sc = NULL;
	struct queue		*q;
	const struct conf	*c = ctx->conf;
	char			 status[16], why[512], atrn[600];
	char			*pass = NULL;
	double			 t0 = clock_mono_secs();
	size_t			 naddr = 0;
	bool			 perm;
	int			 rc;

	memset(&a, 0, sizeof(a));
	if ((rc = pull_parse(argc, argv, &a)) != 0)
		goto out;
	if (pull_atrn_line(&a.domains, atrn, sizeof(atrn)) != 0) {
		rc = tools_usage(PULL_CMD, "too many domains for one ATRN "
		    "line (%d octets): pull them in several runs",
		    PULL_ATRN_MAX);
		goto out;
	}
	if (a.domains.n == 0 && c->relay_domains.n == 0 &&
	    c->hold_domains.n == 0) {
		rc = tools_usage(PULL_CMD, "no domain to take mail for: give "
		    "--domain, or set relay_domains");
		goto out;
	}
	log_init("pull", a.verbose ? LOG_DEST_STDERR : c->log ==
	    LOG_DEST_SYSLOG ? LOG_DEST_SYSLOG : LOG_DEST_NONE);
	signal(SIGPIPE, SIG_IGN);
	/* The queue first (made if missing, as by `postern enqueue`):
	 * after ATRN's 250 it is too late to find it unusable (the
	 * provider would only hear 421). */
	if ((q = tools_open_queue(ctx, QUEUE_CREATE)) == NULL) {
		rc = TOOLS_EXIT_FAIL;
		goto out;
	}
	queue_close(q);
	rc = TOOLS_EXIT_FAIL;
	if ((pass = pull_password(a.pass_file)) == NULL)
		goto out;
	if (pull_resolve(&a, addrs, PULL_ADDRS_MAX, &naddr) != 0)
		goto out;

	memset(&o, 0, sizeof(o));
	o.helo = c->myhostname;
	o.tls = a.starttls ? CONF_TLS_ENCRYPT : CONF_TLS_MAY;
	o.tls_ca_file = a.ca_file != NULL ? a.ca_file : c->tls_ca_file;
	o.tls_name = a.host;
	o.auth_user = a.user;
	o.auth_pass = pass;
	o.auth_challenge_ok = true;
	o.connect_timeout = (int)c->smtp_connect_timeout;
	o.cmd_timeout = (int)c->smtp_command_timeout;
	o.data_timeout = (int)c->smtp_data_timeout;
	o.dot_timeout = (int)c->smtp_dot_timeout;
	sc = smtpc_open(addrs, naddr, &o, status, why, sizeof(why), &perm);
	explicit_bzero(pass, strlen(pass));
	if (sc == NULL) {
		tools_fail(PULL_CMD, "%s", why);
		goto out;
	}
	if (!smtpc_offers(sc, "AUTH") || smtpc_auth_mech(sc)[0] == '\0') {
		tools_fail(PULL_CMD, "%s does not offer AUTH: ODMR needs it "
		    "(RFC 2645 §5.1.2)", smtpc_peer(sc));
		goto out;
	}
	if (!smtpc_offers(sc, "ATRN")) {
		tools_fail(PULL_CMD, "%s does not offer ATRN (not an ODMR "
		    "port?)", smtpc_peer(sc));
		goto out;
	}
	if (a.verbose)
		fprintf(stderr, "postern pull: %s: authenticated as %s with "
		    "%s%s%s\n", smtpc_peer(sc), a.user, smtpc_auth_mech(sc),
		    smtpc_tls(sc)[0] != '\0' ? ", TLS " : ", no TLS",
		    smtpc_tls(sc));
	if (smtpc_request(sc, atrn, &r) != 0) {
		tools_fail(PULL_CMD, "%s: connection lost waiting for the "
		    "reply to ATRN", smtpc_peer(sc));
		goto out;
	}
	switch (r.code) {
	case 250:
		rc = pull_reversed(ctx, &a, sc, t0);
		sc = NULL;	/* detached */
		goto out;
	case 453:
		/* RFC 2645 §7: no mail; no reversal. */
		/* The provider's words are escaped, as every reply is. */
		printf("postern pull: %s: no mail waiting (", a.host);
		tools_put(stdout, r.text, 0);
		printf(")\n");
		pull_summary(a.host, 0, 0, clock_mono_secs() - t0);
		rc = TOOLS_EXIT_OK;
		break;
	default:
		/* 450 refused, 451 busy (another pull runs), 530, 502. */
		tools_fail(PULL_CMD, "%s refused ATRN: %s", smtpc_peer(sc),
		    r.text);
		break;
	}
out:
	smtpc_close(sc, true);
	if (pass != NULL) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	conf_list_free(&a.domains);
	return rc;
}

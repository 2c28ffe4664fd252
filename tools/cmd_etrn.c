/*
 * cmd_etrn.c - `postern etrn`: the site's side of ETRN (RFC 1985).
 *
 *	postern etrn [-v] [--user U --password-file F] [--ca-file F]
 *	    [--tls none|may|encrypt] [--force] HOST[:PORT] DOMAIN...
 *
 * Connect to HOST (a name, an IPv4 address or [IPv6]; PORT 25 unless
 * given), read the greeting, EHLO, STARTTLS when offered (smtp_tls "may"
 * unless --tls says otherwise), AUTH with --user (only as runner/'s
 * client allows it: inside TLS whose certificate was verified for HOST,
 * against --ca-file, else tls_ca_file, else the system's store), then
 * one `ETRN x` for each DOMAIN (`domain`, `@domain` for it and its
 * subdomains, `#queue` for a queue the server names), then QUIT.
 *
 * Every reply is printed on standard output, one line per argument,
 * "DOMAIN: REPLY": the reply is the server's text, so it is escaped as
 * log lines are (tools_put) before it reaches a terminal.
 *
 * Exit status: 0 when every ETRN got 250, 251, 252 or 253 (RFC 1985 §5:
 * all four are success, 251 meaning nothing was waiting); 1 when one got
 * anything else (458 try later, 459 not allowed, 5xx) or the session
 * failed (no connection, TLS or AUTH refused, the connection lost); 2 on
 * bad arguments, and then nothing is sent: a DOMAIN with a space, a
 * control byte or that is no domain is refused here, so it can never
 * smuggle a second command onto the line.
 *
 * A server whose EHLO reply does not list ETRN is not asked (RFC 1985 §2:
 * a client looks for the keyword first, as fetchmail and msmtp do): exit
 * 1 with a message saying so, unless --force, which sends the ETRNs
 * anyway (for an old server that takes ETRN without announcing it).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "runner.h"
#include "tools.h"

#define ETRNC_PORT		25	/* RFC 1985 talks to the SMTP port */
#define ETRNC_QUEUE_MAX		255	/* a #queue name, in octets */
#define ETRNC_HOST_MAX		255	/* a host name or an address */

struct etrnc_opts {
	bool		 verbose;
	bool		 force;
	const char	*user;
	const char	*pass_file;
	const char	*ca_file;
	enum conf_tls	 tls;
	const char	*target;	/* HOST[:PORT] */
	char		 host[ETRNC_HOST_MAX + 1];	/* no brackets */
	char		 port[8];
	char		**args;		/* DOMAIN... */
	int		 nargs;
};

/* etrnc_arg_ok - is a DOMAIN argument one we may put on the ETRN line?
 * `domain` or `@domain`: a domain (RFC 5321 §4.1.2) or an address
 * literal; `#queue`: printable ASCII without spaces (what it means is
 * the server's business, RFC 1985 §5). */
static bool
etrnc_arg_ok(const char *a)
{
	size_t	i, n;

	if (a[0] == '#') {
		n = strlen(a + 1);
		if (n == 0 || n > ETRNC_QUEUE_MAX)
			return false;
		for (i = 1; a[i] != '\0'; i++)
			if (a[i] <= ' ' || a[i] >= 0x7f)
				return false;
		return true;
	}
	if (a[0] == '@')
		a++;
	return smtp_domain_valid(a, SMTP_ADDR_UTF8) ||
	    smtp_addr_literal_valid(a, strlen(a));
}

/* etrnc_target - split HOST[:PORT] ("[v6]:port", "[v6]", "v6" too) into
 * o->host and o->port. 0, or -1 when it is malformed. */
static int
etrnc_target(struct etrnc_opts *o, const char *t)
{
	const char	*colon, *end, *p;
	size_t		 hl;
	long		 port = ETRNC_PORT;
	char		*ep;

	if (t[0] == '[') {
		if ((end = strchr(t, ']')) == NULL)
			return -1;
		p = t + 1;
		hl = (size_t)(end - p);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		p = t;
		colon = strchr(t, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL;		/* a bare IPv6 address */
		hl = colon != NULL ? (size_t)(colon - t) : strlen(t);
	}
	if (hl == 0 || hl > ETRNC_HOST_MAX)
		return -1;
	memcpy(o->host, p, hl);
	o->host[hl] = '\0';
	if (colon != NULL) {
		port = strtol(colon + 1, &ep, 10);
		if (colon[1] < '0' || colon[1] > '9' || *ep != '\0' ||
		    port < 1 || port > 65535)
			return -1;
	}
	bsnprintf(o->port, sizeof(o->port), "%ld", port);
	/* A name must be a domain; anything else must be an address. */
	if (strchr(o->host, ':') == NULL &&
	    !smtp_domain_valid(o->host, 0))
		return -1;
	return 0;
}

/* etrnc_resolve - the addresses of o->host (getaddrinfo: a literal, or
 * the system's resolver for a name: a site names its provider's host,
 * not a mail domain, so no MX lookup), at most ROUTE_ADDR_MAX. */
static int
etrnc_resolve(const struct etrnc_opts *o, struct route_addr *out,
    size_t *n)
{
	struct addrinfo	 hints, *res, *ai;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	if ((rc = getaddrinfo(o->host, o->port, &hints, &res)) != 0 &&
	    rc == EAI_ADDRFAMILY) {
		hints.ai_flags &= ~AI_ADDRCONFIG;
		rc = getaddrinfo(o->host, o->port, &hints, &res);
	}
	if (rc != 0) {
		tools_fail("etrn", "%s: %s", o->host, gai_strerror(rc));
		return -1;
	}
	*n = 0;
	for (ai = res; ai != NULL && *n < ROUTE_ADDR_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[*n].ss))
			continue;
		memset(&out[*n], 0, sizeof(out[*n]));
		memcpy(&out[*n].ss, ai->ai_addr, ai->ai_addrlen);
		out[*n].sslen = ai->ai_addrlen;
		/* The name the certificate must carry, and the peer's. */
		strl_copy(out[*n].host, o->host, sizeof(out[*n].host));
		(*n)++;
	}
	freeaddrinfo(res);
	if (*n == 0) {
		tools_fail("etrn", "%s: no usable address", o->host);
		return -1;
	}
	return 0;
}

/* etrnc_password - the first line of file (the newline dropped), into
 * pass; wiped by the caller. 0, or -1 (printed). */
static int
etrnc_password(const char *file, char *pass, size_t passsz)
{
	FILE	*fp;
	size_t	 n;
	int	 c;

	if ((fp = fopen(file, "r")) == NULL)
		return tools_fail("etrn", "%s: %s", file, strerror(errno)), -1;
	if (fgets(pass, (int)passsz, fp) == NULL) {
		fclose(fp);
		return tools_fail("etrn", "%s: empty", file), -1;
	}
	n = strlen(pass);
	if (n > 0 && pass[n - 1] == '\n')
		pass[--n] = '\0';
	else if ((c = fgetc(fp)) != EOF) {
		/* The line did not fit: refuse rather than send part. */
		fclose(fp);
		explicit_bzero(pass, passsz);
		return tools_fail("etrn", "%s: password longer than %zu "
		    "octets", file, passsz - 2), -1;
	}
	if (n > 0 && pass[n - 1] == '\r')
		pass[--n] = '\0';
	fclose(fp);
	if (n == 0)
		return tools_fail("etrn", "%s: empty password", file), -1;
	return 0;
}

static int
etrnc_parse(struct etrnc_opts *o, int argc, char **argv)
{
	int	i;

	memset(o, 0, sizeof(*o));
	o->tls = CONF_TLS_MAY;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "-v") == 0)
			o->verbose = true;
		else if (strcmp(argv[i], "--force") == 0)
			o->force = true;
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			o->user = argv[++i];
		else if (strcmp(argv[i], "--password-file") == 0 &&
		    i + 1 < argc)
			o->pass_file = argv[++i];
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			o->ca_file = argv[++i];
		else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "none") == 0)
				o->tls = CONF_TLS_NONE;
			else if (strcmp(argv[i], "may") == 0)
				o->tls = CONF_TLS_MAY;
			else if (strcmp(argv[i], "encrypt") == 0)
				o->tls = CONF_TLS_ENCRYPT;
			else
				return tools_usage("etrn", "--tls: none, may "
				    "or encrypt, not \"%s\"", argv[i]);
		} else
			return tools_usage("etrn", "unknown option \"%s\"",
			    argv[i]);
	}
	if ((o->user == NULL) != (o->pass_file == NULL))
		return tools_usage("etrn", "--user and --password-file go "
		    "together");
	if (o->user != NULL && (o->user[0] == '\0' ||
	    strlen(o->user) > ROUTE_AUTH_USER_MAX ||
	    strpbrk(o->user, "\r\n") != NULL))
		return tools_usage("etrn", "bad user name \"%s\"", o->user);
	if (argc - i < 2)
		return tools_usage("etrn", "usage: postern etrn [-v] "
		    "[--user U --password-file F] [--ca-file F] "
		    "[--tls none|may|encrypt] [--force] HOST[:PORT] "
		    "DOMAIN...");
	o->target = argv[i];
	if (etrnc_target(o, argv[i]) != 0)
		return tools_usage("etrn", "bad HOST[:PORT] \"%s\"", argv[i]);
	o->args = argv + i + 1;
	o->nargs = argc - i - 1;
	for (i = 0; i < o->nargs; i++)
		if (!etrnc_arg_ok(o->args[i]))
			return tools_usage("etrn", "bad domain \"%s\" (give "
			    "domain, @domain or #queue)", o->args[i]);
	return 0;
}

/* etrnc_ask - ETRN for each argument, each reply printed. The number of
 * replies that were not a success, or -1 when the connection died. */
static int
etrnc_ask(struct smtpc *sc, const struct etrnc_opts *o)
{
	struct smtp_reply	r;
	char			line[SMTP_REPLY_LINE_MAX];
	char			a[SMTP_DOMAIN_MAX + 1];
	const char		*arg, *why;
	int			i, bad = 0;
	bool			at;

	for (i = 0; i < o->nargs; i++) {
		/* Checked by etrnc_arg_ok: no CR, LF or space; short. A
		 * domain in U-labels goes as its A-labels: ETRN is ASCII
		 * (RFC 1985), and the server's DNS names are A-labels. */
		arg = o->args[i];
		at = arg[0] == '@';
		if (arg[0] != '#' && smtp_idn_has8(arg)) {
			if (smtp_idn_to_ascii(arg + at, a, sizeof(a),
			    &why) != 0) {
				tools_put(stdout, arg, 0);
				printf(": not a valid international domain "
				    "name (%s): not sent\n", why);
				bad++;
				continue;
			}
			arg = a;
		}
		if (!bsnprintf(line, sizeof(line), "ETRN %s%s",
		    at && arg == a ? "@" : "", arg) ||
		    smtpc_request(sc, line, &r) != 0) {
			tools_put(stdout, o->args[i], 0);
			printf(": no reply\n");
			return -1;
		}
		tools_put(stdout, o->args[i], 0);
		fputs(": ", stdout);
		tools_put(stdout, r.text, 0);
		fputc('\n', stdout);
		if (r.code < 250 || r.code > 253)
			bad++;
		if (r.code == 421)
			return -1;	/* the server is closing */
	}
	return bad;
}

int
cmd_etrn(struct tools_ctx *ctx, int argc, char **argv)
{
	struct route_addr	 addrs[ROUTE_ADDR_MAX];
	struct smtpc_opts	 so;
	struct etrnc_opts	 o;
	struct smtpc		*sc;
	char			 pass[ROUTE_AUTH_PASS_MAX + 2];
	char			 status[16], why[1024];
	size_t			 n;
	bool			 perm;
	int			 rc;

	if ((rc = etrnc_parse(&o, argc, argv)) != 0)
		return rc;
	memset(pass, 0, sizeof(pass));
	if (o.pass_file != NULL && etrnc_password(o.pass_file, pass,
	    sizeof(pass)) != 0)
		return TOOLS_EXIT_USAGE;
	if (etrnc_resolve(&o, addrs, &n) != 0) {
		explicit_bzero(pass, sizeof(pass));
		return TOOLS_EXIT_FAIL;
	}
	memset(&so, 0, sizeof(so));
	so.helo = ctx->conf->myhostname;
	so.tls = o.tls;
	so.tls_ca_file = o.ca_file != NULL ? o.ca_file :
	    ctx->conf->tls_ca_file;
	so.tls_name = o.host;
	so.auth_user = o.user;
	so.auth_pass = o.user != NULL ? pass : NULL;
	/* SCRAM-SHA-256 and CRAM-MD5 send no password: they may go
	 * without verified TLS, as postern pull's do (a provider's SMTP
	 * port offers them in the clear); PLAIN and LOGIN only inside TLS
	 * verified for HOST (smtpc_auth). */
	so.auth_challenge_ok = true;
	so.connect_timeout = (int)ctx->conf->smtp_connect_timeout;
	so.cmd_timeout = (int)ctx->conf->smtp_command_timeout;
	sc = smtpc_open(addrs, n, &so, status, why, sizeof(why), &perm);
	explicit_bzero(pass, sizeof(pass));
	if (sc == NULL)
		return tools_fail("etrn", "%s (%s)", why, status);
	if (o.verbose) {
		fprintf(stderr, "postern etrn: connected to ");
		tools_put(stderr, smtpc_peer(sc), 0);
		fprintf(stderr, "%s%s%s\n", smtpc_tls(sc)[0] != '\0' ?
		    " (" : "", smtpc_tls(sc), smtpc_tls(sc)[0] != '\0' ?
		    ")" : " (no TLS)");
	}
	if (!o.force && !smtpc_offers(sc, "ETRN")) {
		rc = tools_fail("etrn", "%s does not offer ETRN (--force "
		    "asks anyway)", smtpc_peer(sc));
		smtpc_close(sc, true);
		return rc;
	}
	rc = etrnc_ask(sc, &o);
	if (rc < 0) {
		fflush(stdout);
		tools_fail("etrn", "%s: connection lost", smtpc_peer(sc));
		smtpc_close(sc, false);
		return TOOLS_EXIT_FAIL;
	}
	smtpc_close(sc, true);
	if (fflush(stdout) != 0 || ferror(stdout))
		return tools_fail("etrn", "standard output: write error");
	return rc == 0 ? TOOLS_EXIT_OK : TOOLS_EXIT_FAIL;
}

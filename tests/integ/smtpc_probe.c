/*
 * smtpc_probe.c - drive runner/smtpc*.c against a real server, for
 * tests/integ/cases/210-smtpc.sh.
 *
 * usage: smtpc_probe [options] rcpt[|NOTIFY[|ORCPT]]...
 *	-A ip:port	an address to try (repeatable, in order; [v6]:port)
 *	-p port		shorthand for -A 127.0.0.1:port
 *	-H name		route_addr.host (the MX name; default the IP)
 *	-t policy	none, may or encrypt
 *	-P p1,p2,...	message k on a connection of its own, with policy pk
 *			(the client's TLS context is shared between them)
 *	-C file		tls_ca_file
 *	-u user -w pass	AUTH credentials
 *	-n count	messages to send, one transaction each (default 1)
 *	-f sender	the envelope sender ("" for <>)
 *	-b file		the body (stored form: CRLF lines)
 *	-k bytes	size of the pieces the body is handed over in
 *	-S size		the size to declare (default the file's)
 *	-8 -U		QMSG_F_8BITMIME, QMSG_F_SMTPUTF8
 *	-R FULL|HDRS	RET;  -E envid
 *	-c -T -D -O s	connect, command, data and dot timeouts
 *	-h name		our EHLO name
 *	-F		the body callback fails after its first piece
 *	-X		connect ourselves and use smtpc_attach
 *	-q		close without QUIT
 *
 * Output, one line each: "open ok peer=P tls=T", "open fail status=S
 * permanent=0|1 why=W", "msg N rc=R conn=K reused=yes|no", "rcpt N.I
 * ADDR code=C status=S reply=R", and at the end "connections=K".
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

#define PROBE_ADDR_MAX	8
#define PROBE_POL_MAX	16

struct probe_body {
	const char	*buf;
	size_t		 len;
	size_t		 off;
	size_t		 chunk;
	bool		 fail;
};

static enum conf_tls
probe_tls(const char *s)
{
	return strcmp(s, "encrypt") == 0 ? CONF_TLS_ENCRYPT :
	    strcmp(s, "may") == 0 ? CONF_TLS_MAY : CONF_TLS_NONE;
}

static int
probe_body_next(void *arg, const char **data, size_t *len)
{
	struct probe_body	*b = arg;
	size_t			 n = b->len - b->off;

	if (b->fail && b->off > 0)
		return -1;
	if (n > b->chunk)
		n = b->chunk;
	*data = b->buf + b->off;
	*len = n;
	b->off += n;
	return 0;
}

static int
probe_body_rewind(void *arg)
{
	struct probe_body	*b = arg;

	b->off = 0;
	return 0;
}

static void
probe_usage(void)
{
	fprintf(stderr, "usage: smtpc_probe [-8FqUX] [-A ip:port] [-b file] "
	    "[-C ca] [-c s] [-D s] [-E envid] [-f sender] [-H host] [-h helo] "
	    "[-k bytes] [-n count] [-O s] [-P policies] [-p port] "
	    "[-R FULL|HDRS] [-S size] [-T s] [-t policy] [-u user] [-w pass] "
	    "rcpt...\n");
	exit(2);
}

static void
probe_addr(const char *arg, struct route_addr *a)
{
	struct addrinfo	 hints, *res;
	char		 host[128], *port;

	if (!strl_copy(host, arg, sizeof(host)) ||
	    (port = strrchr(host, ':')) == NULL)
		probe_usage();
	*port++ = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if (getaddrinfo(host, port, &hints, &res) != 0)
		probe_usage();
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->sslen = res->ai_addrlen;
	strl_copy(a->host, host, sizeof(a->host));
	freeaddrinfo(res);
}

static char *
probe_slurp(const char *file, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	int		 fd;

	if ((fd = open(file, O_RDONLY)) == -1 || fstat(fd, &sb) == -1)
		fatal("%s", file);
	buf = xmalloc((size_t)sb.st_size + 1);
	if (read(fd, buf, (size_t)sb.st_size) != sb.st_size)
		fatal("read %s", file);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static uint8_t
probe_notify(const char *s)
{
	uint8_t	 n = 0;

	if (strstr(s, "NEVER") != NULL)
		n |= QRCPT_NOTIFY_NEVER;
	if (strstr(s, "SUCCESS") != NULL)
		n |= QRCPT_NOTIFY_SUCCESS;
	if (strstr(s, "FAILURE") != NULL)
		n |= QRCPT_NOTIFY_FAILURE;
	if (strstr(s, "DELAY") != NULL)
		n |= QRCPT_NOTIFY_DELAY;
	return n;
}

/* probe_attach - connect to a ourselves, then smtpc_attach. */
static struct smtpc *
probe_attach(const struct route_addr *a, const struct smtpc_opts *o,
    struct smtp_conn **connp, char status[16], char *why, size_t whysz)
{
	struct smtp_conn	*conn;
	struct smtpc		*sc;
	int			 fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, (const struct sockaddr *)&a->ss,
	    a->sslen) == -1) {
		strl_copy(status, "4.4.1", 16);
		bsnprintf(why, whysz, "connect: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	conn = smtp_conn_new(fd);
	if ((sc = smtpc_attach(conn, o, status, why, whysz)) == NULL) {
		smtp_conn_free(conn);
		return NULL;
	}
	*connp = conn;
	return sc;
}

int
main(int argc, char *argv[])
{
	struct route_addr	 addrs[PROBE_ADDR_MAX];
	struct smtpc_opts	 o;
	struct smtpc_msg	 m;
	struct smtpc_rcpt	*rc;
	struct probe_body	 body;
	struct smtpc		*sc = NULL;
	struct smtp_conn	*aconn = NULL;
	const char		*sender = "probe@client.test.example";
	const char		*envid = NULL;
	char			 status[16], why[512], *bodyfile = NULL;
	char			 a[64], *pol[PROBE_POL_MAX], *save = NULL;
	size_t			 naddr = 0, i, len = 0, chunk = 65536;
	long long		 size = -1;
	uint32_t		 flags = 0;
	int			 ch, nmsg = 1, k, conns = 0, rv, npol = 0;
	bool			 perm, polite = true, attach = false;
	bool			 fail = false, reused;

	signal(SIGPIPE, SIG_IGN);
	log_init("probe", LOG_DEST_STDERR);
	memset(&o, 0, sizeof(o));
	o.helo = "probe.test.example";
	while ((ch = getopt(argc, argv,
	    "8A:b:C:c:D:E:Ff:H:h:k:n:O:P:p:qR:S:T:t:Uu:w:X")) != -1) {
		switch (ch) {
		case '8':
			flags |= QMSG_F_8BITMIME;
			break;
		case 'A':
			if (naddr == PROBE_ADDR_MAX)
				probe_usage();
			probe_addr(optarg, &addrs[naddr++]);
			break;
		case 'b':
			bodyfile = optarg;
			break;
		case 'C':
			o.tls_ca_file = optarg;
			break;
		case 'c':
			o.connect_timeout = atoi(optarg);
			break;
		case 'D':
			o.data_timeout = atoi(optarg);
			break;
		case 'E':
			envid = optarg;
			break;
		case 'F':
			fail = true;
			break;
		case 'f':
			sender = optarg;
			break;
		case 'H':
			for (i = 0; i < naddr; i++)
				strl_copy(addrs[i].host, optarg,
				    sizeof(addrs[i].host));
			break;
		case 'h':
			o.helo = optarg;
			break;
		case 'k':
			chunk = (size_t)atol(optarg);
			break;
		case 'n':
			nmsg = atoi(optarg);
			break;
		case 'O':
			o.dot_timeout = atoi(optarg);
			break;
		case 'P':
			for (pol[npol] = strtok_r(optarg, ",", &save);
			    pol[npol] != NULL && ++npol < PROBE_POL_MAX;
			    pol[npol] = strtok_r(NULL, ",", &save))
				;
			break;
		case 'p':
			if (naddr == PROBE_ADDR_MAX)
				probe_usage();
			bsnprintf(a, sizeof(a), "127.0.0.1:%s", optarg);
			probe_addr(a, &addrs[naddr++]);
			break;
		case 'q':
			polite = false;
			break;
		case 'R':
			flags |= strcmp(optarg, "FULL") == 0 ? QMSG_F_RET_FULL :
			    QMSG_F_RET_HDRS;
			break;
		case 'S':
			size = atoll(optarg);
			break;
		case 'T':
			o.cmd_timeout = atoi(optarg);
			break;
		case 't':
			o.tls = probe_tls(optarg);
			break;
		case 'U':
			flags |= QMSG_F_SMTPUTF8;
			break;
		case 'u':
			o.auth_user = optarg;
			break;
		case 'w':
			o.auth_pass = optarg;
			break;
		case 'X':
			attach = true;
			break;
		default:
			probe_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (naddr == 0 || argc == 0 || chunk == 0)
		probe_usage();

	memset(&body, 0, sizeof(body));
	if (bodyfile != NULL)
		body.buf = probe_slurp(bodyfile, &len);
	else {
		body.buf = xstrdup("Subject: probe\r\n\r\nhello\r\n");
		len = strlen(body.buf);
	}
	body.len = len;
	body.chunk = chunk;
	body.fail = fail;

	rc = xcalloc((size_t)argc, sizeof(*rc));
	for (k = 0; k < argc; k++) {
		char *n1 = strchr(argv[k], '|'), *n2 = NULL;

		if (n1 != NULL) {
			*n1++ = '\0';
			if ((n2 = strchr(n1, '|')) != NULL)
				*n2++ = '\0';
			rc[k].notify = probe_notify(n1);
		}
		rc[k].addr = argv[k];
		rc[k].orcpt = n2;
	}

	for (k = 1; k <= nmsg; k++) {
		reused = sc != NULL;
		if (sc == NULL) {
			perm = false;
			if (k <= npol)
				o.tls = probe_tls(pol[k - 1]);
			sc = attach ? probe_attach(&addrs[0], &o, &aconn,
			    status, why, sizeof(why)) :
			    smtpc_open(addrs, naddr, &o, status, why,
			    sizeof(why), &perm);
			if (sc == NULL) {
				printf("open fail status=%s permanent=%d "
				    "why=%s\n", status, perm ? 1 : 0, why);
				continue;
			}
			conns++;
			printf("open ok peer=%s tls=%s\n", smtpc_peer(sc),
			    smtpc_tls(sc));
		}
		memset(&m, 0, sizeof(m));
		m.sender = sender;
		m.flags = flags;
		m.envid = envid;
		m.size = size >= 0 ? (uint64_t)size : len;
		body.off = 0;
		m.body = probe_body_next;
		m.rewind = probe_body_rewind;
		m.body_arg = &body;
		m.rcpt = rc;
		m.nrcpt = (size_t)argc;
		rv = smtpc_send(sc, &m);
		printf("msg %d rc=%d conn=%d reused=%s\n", k, rv, conns,
		    reused ? "yes" : "no");
		for (i = 0; i < m.nrcpt; i++)
			printf("rcpt %d.%zu %s code=%d status=%s reply=%s\n",
			    k, i + 1, rc[i].addr, rc[i].code, rc[i].status,
			    rc[i].reply);
		if (rv == 0 && npol > 0) {
			smtpc_close(sc, polite);
			sc = NULL;
		} else if (rv != 0) {
			smtpc_close(sc, false);
			sc = NULL;
			smtp_conn_free(aconn);
			aconn = NULL;
		}
		fflush(stdout);
	}
	smtpc_close(sc, polite);
	smtp_conn_free(aconn);
	printf("connections=%d\n", conns);
	free(rc);
	free((void *)(uintptr_t)body.buf);
	return 0;
}

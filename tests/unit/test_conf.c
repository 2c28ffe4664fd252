/*
 * test_conf.c - unit tests for smtp/conf.c.
 *
 * The defaults, a file that sets every key, the value parsers (durations,
 * sizes, networks, addresses), network matching for v4, v6 and v4-mapped
 * peers, domain lists with ".parent" entries, and the error messages,
 * which must name the file, the line and the key. Files are written with
 * mkstemp() in /tmp and removed right after conf_load() has read them.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"
#include "tharness.h"
#include "tutil.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* load_text - conf_load() of a file holding text; the file is removed. */
static struct conf *
load_text(struct t *t, const char *text, char *path, size_t pathsz,
    char *err, size_t errsz)
{
	struct conf	*c;

	if (write_tmp(text, path, pathsz) == -1) {
		t_errorf(t, "write_tmp: %s", strerror(errno));
		return NULL;
	}
	c = conf_load(path, err, errsz);
	unlink(path);
	return c;
}

static void
test_defaults(struct t *t)
{
	struct conf		*c;
	struct sbuf		*b;
	struct sockaddr_in	 sin;
	char			 err[256];
	static const char *const want[] = {
		"queue_dir = var/queue\n",
		"queue_map_size = 8589934592\n",
		"listen = 127.0.0.1:2525\n",
		"odmr_listen = 127.0.0.1:3366\n",
		"relay_domains = \n",
		"mynetworks = 127.0.0.0/8 ::1/128\n",
		"smtp_port = 25\n",
		"smtp_tls = may\n",
		"auth_plaintext = no\n",
		"auth_failure_delay = 1s\n",
		"auth_failure_limit = 10\n",
		"auth_failure_window = 600s\n",
		"min_backoff = 300s\n",
		"max_queue_lifetime = 432000s\n",
		"connection_reuse_time = 5s\n",
		"message_size_limit = 52428800\n",
		"etrn_policy = relay_domains\n",
		"metrics_listen = \n",
		"log = stderr\n",
		"user = postern\n",
	};
	size_t			 i;

	if ((c = conf_load(NULL, err, sizeof(err))) == NULL)
		t_fatalf(t, "conf_load(NULL): %s", err);
	if (c->file != NULL)
		t_errorf(t, "file: got %s, want NULL", c->file);
	if (c->myhostname == NULL || c->myhostname[0] == '\0')
		t_errorf(t, "myhostname: not filled from gethostname()");
	if (c->my_names.n != 0 || c->relay_domains.n != 0 ||
	    c->hold_domains.n != 0 || c->dns_servers.n != 0)
		t_errorf(t, "a list that should be empty is not");
	if (c->queue_dir == NULL || strcmp(c->queue_dir, "var/queue") != 0)
		t_errorf(t, "queue_dir: got %s", c->queue_dir);
	if (c->queue_map_size != (uint64_t)8 << 30)
		t_errorf(t, "queue_map_size: got %llu",
		    (unsigned long long)c->queue_map_size);
	if (c->nlisten != 1 || strcmp(c->listen[0].text,
	    "127.0.0.1:2525") != 0)
		t_errorf(t, "listen: got %zu", c->nlisten);
	else {
		memcpy(&sin, &c->listen[0].ss, sizeof(sin));
		if (sin.sin_family != AF_INET || ntohs(sin.sin_port) != 2525 ||
		    ntohl(sin.sin_addr.s_addr) != 0x7f000001 ||
		    c->listen[0].sslen != sizeof(sin))
			t_errorf(t, "listen: bad sockaddr");
	}
	if (c->nodmr_listen != 1 || strcmp(c->odmr_listen[0].text,
	    "127.0.0.1:3366") != 0)
		t_errorf(t, "odmr_listen: got %zu", c->nodmr_listen);
	if (c->nmynetworks != 2 || c->mynetworks[0].prefix != 104 ||
	    c->mynetworks[1].prefix != 128)
		t_errorf(t, "mynetworks: got %zu", c->nmynetworks);
	if (c->users_file != NULL || c->routes_file != NULL ||
	    c->relay_recipients != NULL || c->relayhost != NULL ||
	    c->relayhost_auth_file != NULL || c->tls_cert_file != NULL ||
	    c->tls_key_file != NULL || c->tls_ca_file != NULL)
		t_errorf(t, "a string that should be unset is set");
	if (c->smtp_port != 25 || c->smtp_tls != CONF_TLS_MAY ||
	    c->auth_plaintext || c->turn_enable)
		t_errorf(t, "smtp_port, smtp_tls, auth_plaintext, turn_enable");
	if (c->auth_failure_delay != 1 || c->auth_failure_limit != 10 ||
	    c->auth_failure_window != 600)
		t_errorf(t, "auth_failure_delay %lld, auth_failure_limit %d, "
		    "auth_failure_window %lld", (long long)c->auth_failure_delay,
		    c->auth_failure_limit, (long long)c->auth_failure_window);
	if (c->workers != 4 || c->dest_concurrency != 10)
		t_errorf(t, "workers %d, dest_concurrency %d", c->workers,
		    c->dest_concurrency);
	if (c->min_backoff != 300 || c->max_backoff != 3600 ||
	    c->max_queue_lifetime != 5 * 86400 ||
	    c->hold_lifetime != 7 * 86400 || c->delay_warning != 4 * 3600 ||
	    c->lease_time != 300 || c->connection_reuse_time != 5 ||
	    c->command_timeout != 300 || c->data_timeout != 600)
		t_errorf(t, "a duration is wrong");
	if (c->message_size_limit != (uint64_t)50 << 20)
		t_errorf(t, "message_size_limit: got %llu",
		    (unsigned long long)c->message_size_limit);
	if (c->max_recipients != 1000 || c->max_connections != 100 ||
	    c->max_connections_per_ip != 20 || c->max_errors != 10 ||
	    c->max_received_headers != 100 || c->line_length_limit != 1000 ||
	    c->command_length_limit != 2048)
		t_errorf(t, "a limit is wrong");
	if (c->etrn_policy == NULL ||
	    strcmp(c->etrn_policy, "relay_domains") != 0)
		t_errorf(t, "etrn_policy: got %s", c->etrn_policy);
	if (c->nmetrics_listen != 0 || c->metrics_listen != NULL)
		t_errorf(t, "metrics_listen: got %zu", c->nmetrics_listen);
	if (c->log != LOG_DEST_STDERR)
		t_errorf(t, "log: got %d", (int)c->log);
	if (c->user == NULL || strcmp(c->user, "postern") != 0)
		t_errorf(t, "user: got %s", c->user);

	b = sbuf_new();
	conf_dump(c, b);
	for (i = 0; i < NELEM(want); i++)
		if (strstr(sbuf_str(b), want[i]) == NULL)
			t_errorf(t, "conf_dump: no \"%.*s\" in:\n%s",
			    (int)strlen(want[i]) - 1, want[i], sbuf_str(b));
	sbuf_free(b);
	conf_free(c);
	conf_free(NULL);
}

/* test_keys - conf_keys() and conf_dump() agree, in table order. */
static void
test_keys(struct t *t)
{
	const char *const	*k = conf_keys();
	struct conf		*c;
	struct sbuf		*b;
	const char		*p;
	char			 err[256];
	size_t			 n, i, len;

	for (n = 0; k[n] != NULL; n++)
		for (i = 0; i < n; i++)
			if (strcmp(k[i], k[n]) == 0)
				t_errorf(t, "conf_keys: %s twice", k[n]);
	if (n != 72)
		t_errorf(t, "conf_keys: got %zu keys, want 72", n);
	if (n == 0 || strcmp(k[0], "myhostname") != 0 ||
	    strcmp(k[n - 1], "user") != 0)
		t_errorf(t, "conf_keys: wrong order");
	if (conf_keys() != k)
		t_errorf(t, "conf_keys: not the same array twice");

	if ((c = conf_load(NULL, err, sizeof(err))) == NULL)
		t_fatalf(t, "conf_load(NULL): %s", err);
	b = sbuf_new();
	conf_dump(c, b);
	p = sbuf_str(b);
	for (i = 0; i < n; i++) {
		len = strlen(k[i]);
		if (strncmp(p, k[i], len) != 0 || strncmp(p + len, " = ", 3))
			t_fatalf(t, "conf_dump line %zu: want key %s", i + 1,
			    k[i]);
		if ((p = strchr(p, '\n')) == NULL)
			t_fatalf(t, "conf_dump: short after %s", k[i]);
		p++;
	}
	if (*p != '\0')
		t_errorf(t, "conf_dump: more lines than keys: %s", p);
	sbuf_free(b);
	conf_free(c);
}

static const char conf_all[] =
    "# every key, with comments, tabs and odd spacing\n"
    "\n"
    "myhostname = mx1.example.net   # trailing comment\n"
    "my_names = MX1.Example.NET, mail.example.net\n"
    "queue_dir=/var/spool/postern\n"
    "queue_map_size = 2g\n"
    "listen = 127.0.0.1:25, [::1]:25\n"
    "odmr_listen = 0.0.0.0:366\n"
    "   relay_domains = example.org .Example.COM\n"
    "hold_domains = dialup.example,dialup2.example\n"
    "mynetworks = 10.0.0.0/8, 192.168.1.0/24 2001:db8::/32 192.0.2.7\n"
    "users_file = /etc/postern/users\n"
    "routes_file = /etc/postern/routes\n"
    "relay_recipients = /etc/postern/recipients\n"
    "relayhost = [192.0.2.1]:587\n"
    "relayhost_auth_file = /etc/postern/auth\n"
    "dns_servers = 127.0.0.1:5353 [::1]:53\n"
    "smtp_port = 2525\n"
    "tls_cert_file = /etc/ssl/cert.pem\n"
    "tls_key_file = /etc/ssl/key.pem\n"
    "tls_ca_file = /etc/ssl/ca.pem\n"
    "smtp_tls = encrypt\n"
    "auth_plaintext = yes\n"
    "auth_failure_delay = 0\n"
    "auth_failure_limit = 0\n"
    "auth_failure_window = 1h\n"
    "workers = 16\n"
    "dest_concurrency = 20\n"
    "min_backoff = 90\n"
    "max_backoff = 2h\n"
    "max_queue_lifetime = 3d\n"
    "hold_lifetime = 10d\n"
    "delay_warning = 0\n"
    "lease_time = 10m\n"
    "connection_reuse_time = 30s\n"
    "message_size_limit = 10240k\n"
    "max_recipients = 500\n"
    "max_connections = 0\n"
    "max_connections_per_ip = 5\n"
    "max_errors = 3\n"
    "max_received_headers = 50\n"
    "\tline_length_limit\t=\t2000\r\n"
    "command_length_limit = 512\n"
    "command_timeout = 1m\n"
    "data_timeout = 1h\n"
    "etrn_policy = users\n"
    "turn_enable = on\n"
    "metrics_listen = 127.0.0.1:9100\n"
    "log = syslog\n"
    "user = mail";			/* no newline at the end */

static void
test_file_all(struct t *t)
{
	struct conf	*c;
	char		 path[64], err[256];

	if ((c = load_text(t, conf_all, path, sizeof(path), err,
	    sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if (c->file == NULL || strcmp(c->file, path) != 0)
		t_errorf(t, "file: got %s, want %s", c->file, path);
	if (strcmp(c->myhostname, "mx1.example.net") != 0)
		t_errorf(t, "myhostname: got \"%s\"", c->myhostname);
	if (c->my_names.n != 2 ||
	    strcmp(c->my_names.v[0], "mx1.example.net") != 0 ||
	    strcmp(c->my_names.v[1], "mail.example.net") != 0)
		t_errorf(t, "my_names: not lower-cased or split");
	if (strcmp(c->queue_dir, "/var/spool/postern") != 0)
		t_errorf(t, "queue_dir: got %s", c->queue_dir);
	if (c->queue_map_size != (uint64_t)2 << 30)
		t_errorf(t, "queue_map_size: got %llu",
		    (unsigned long long)c->queue_map_size);
	if (c->nlisten != 2 || strcmp(c->listen[0].text, "127.0.0.1:25") ||
	    strcmp(c->listen[1].text, "[::1]:25") ||
	    c->listen[1].ss.ss_family != AF_INET6)
		t_errorf(t, "listen: got %zu", c->nlisten);
	if (c->nodmr_listen != 1 ||
	    strcmp(c->odmr_listen[0].text, "0.0.0.0:366") != 0)
		t_errorf(t, "odmr_listen");
	if (c->relay_domains.n != 2 ||
	    strcmp(c->relay_domains.v[0], "example.org") != 0 ||
	    strcmp(c->relay_domains.v[1], ".example.com") != 0)
		t_errorf(t, "relay_domains");
	if (c->hold_domains.n != 2 ||
	    strcmp(c->hold_domains.v[1], "dialup2.example") != 0)
		t_errorf(t, "hold_domains");
	if (c->nmynetworks != 4 || c->mynetworks[0].prefix != 104 ||
	    c->mynetworks[1].prefix != 120 || c->mynetworks[2].prefix != 32 ||
	    c->mynetworks[3].prefix != 128)
		t_errorf(t, "mynetworks: got %zu", c->nmynetworks);
	if (strcmp(c->users_file, "/etc/postern/users") != 0 ||
	    strcmp(c->routes_file, "/etc/postern/routes") != 0 ||
	    strcmp(c->relay_recipients, "/etc/postern/recipients") != 0 ||
	    strcmp(c->relayhost, "[192.0.2.1]:587") != 0 ||
	    strcmp(c->relayhost_auth_file, "/etc/postern/auth") != 0 ||
	    strcmp(c->tls_cert_file, "/etc/ssl/cert.pem") != 0 ||
	    strcmp(c->tls_key_file, "/etc/ssl/key.pem") != 0 ||
	    strcmp(c->tls_ca_file, "/etc/ssl/ca.pem") != 0 ||
	    strcmp(c->etrn_policy, "users") != 0 ||
	    strcmp(c->user, "mail") != 0)
		t_errorf(t, "a string key is wrong");
	if (c->dns_servers.n != 2 ||
	    strcmp(c->dns_servers.v[0], "127.0.0.1:5353") != 0 ||
	    strcmp(c->dns_servers.v[1], "[::1]:53") != 0)
		t_errorf(t, "dns_servers");
	if (c->smtp_port != 2525 || c->smtp_tls != CONF_TLS_ENCRYPT ||
	    !c->auth_plaintext || !c->turn_enable || c->log != LOG_DEST_SYSLOG)
		t_errorf(t, "smtp_port, smtp_tls, bools or log");
	if (c->auth_failure_delay != 0 || c->auth_failure_limit != 0 ||
	    c->auth_failure_window != 3600)
		t_errorf(t, "auth_failure_delay, _limit or _window");
	if (c->workers != 16 || c->dest_concurrency != 20 ||
	    c->max_recipients != 500 || c->max_connections != 0 ||
	    c->max_connections_per_ip != 5 || c->max_errors != 3 ||
	    c->max_received_headers != 50 || c->line_length_limit != 2000 ||
	    c->command_length_limit != 512)
		t_errorf(t, "an integer key is wrong");
	if (c->min_backoff != 90 || c->max_backoff != 7200 ||
	    c->max_queue_lifetime != 3 * 86400 ||
	    c->hold_lifetime != 10 * 86400 || c->delay_warning != 0 ||
	    c->lease_time != 600 || c->connection_reuse_time != 30 ||
	    c->command_timeout != 60 || c->data_timeout != 3600)
		t_errorf(t, "a duration key is wrong");
	if (c->message_size_limit != (uint64_t)10240 * 1024)
		t_errorf(t, "message_size_limit");
	if (c->nmetrics_listen != 1 ||
	    strcmp(c->metrics_listen[0].text, "127.0.0.1:9100") != 0)
		t_errorf(t, "metrics_listen");
	conf_free(c);
}

/* test_roundtrip - what conf_dump() prints loads back to the same dump. */
static void
test_roundtrip(struct t *t)
{
	struct conf	*c1, *c2;
	struct sbuf	*b1, *b2;
	char		 path[64], err[256];

	if ((c1 = load_text(t, conf_all, path, sizeof(path), err,
	    sizeof(err))) == NULL)
		t_fatalf(t, "conf_load: %s", err);
	b1 = sbuf_new();
	conf_dump(c1, b1);
	c2 = load_text(t, sbuf_str(b1), path, sizeof(path), err, sizeof(err));
	if (c2 == NULL)
		t_errorf(t, "conf_load of the dump: %s", err);
	else {
		b2 = sbuf_new();
		conf_dump(c2, b2);
		if (strcmp(sbuf_str(b1), sbuf_str(b2)) != 0)
			t_errorf(t, "dumps differ:\n%s\n---\n%s",
			    sbuf_str(b1), sbuf_str(b2));
		sbuf_free(b2);
	}
	sbuf_free(b1);
	conf_free(c1);
	conf_free(c2);
}

/* test_empty_values - an empty value unsets a string and empties a list. */
static void
test_empty_values(struct t *t)
{
	struct conf	*c;
	char		 path[64], err[256];

	c = load_text(t, "etrn_policy =\nuser = # nobody\nlisten =\n"
	    "mynetworks=\nodmr_listen = ,\nmetrics_listen =\n", path,
	    sizeof(path), err, sizeof(err));
	if (c == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if (c->etrn_policy != NULL || c->user != NULL)
		t_errorf(t, "empty string value: want NULL");
	if (c->nlisten != 0 || c->nmynetworks != 0 || c->nodmr_listen != 0 ||
	    c->nmetrics_listen != 0)
		t_errorf(t, "empty list value: want no entries");
	conf_free(c);
}

static void
test_durations(struct t *t)
{
	static const struct {
		const char	*in;
		int		 rc;
		long long	 want;
	} tab[] = {
		{ "90", 0, 90 },
		{ "0", 0, 0 },
		{ "30s", 0, 30 },
		{ "5m", 0, 300 },
		{ "2h", 0, 7200 },
		{ "1d", 0, 86400 },
		{ "10M", 0, 600 },
		{ "9223372036854775807", 0, 9223372036854775807LL },
		{ "", -1, 0 },
		{ "5x", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ "m", -1, 0 },
		{ "5mm", -1, 0 },
		{ "5 m", -1, 0 },
		{ " 5", -1, 0 },
		{ "1.5h", -1, 0 },
		{ "9223372036854775808", -1, 0 },
		{ "99999999999999999999", -1, 0 },
		{ "106751991167301d", -1, 0 },
		{ "153722867280912931m", -1, 0 },
	};
	time_t	v;
	size_t	i;
	int	rc;

	for (i = 0; i < NELEM(tab); i++) {
		v = -7;
		rc = conf_parse_duration(tab[i].in, &v);
		if (rc != tab[i].rc)
			t_errorf(t, "conf_parse_duration(\"%s\"): got %d, "
			    "want %d", tab[i].in, rc, tab[i].rc);
		else if (rc == 0 && (long long)v != tab[i].want)
			t_errorf(t, "conf_parse_duration(\"%s\"): got %lld, "
			    "want %lld", tab[i].in, (long long)v,
			    tab[i].want);
		else if (rc == -1 && v != -7)
			t_errorf(t, "conf_parse_duration(\"%s\"): failed "
			    "but wrote %lld", tab[i].in, (long long)v);
	}
}

static void
test_sizes(struct t *t)
{
	static const struct {
		const char		*in;
		int			 rc;
		unsigned long long	 want;
	} tab[] = {
		{ "1000", 0, 1000 },
		{ "0", 0, 0 },
		{ "10k", 0, 10240 },
		{ "50m", 0, 52428800 },
		{ "1g", 0, 1073741824 },
		{ "8G", 0, 8589934592ULL },
		{ "18446744073709551615", 0, 18446744073709551615ULL },
		{ "17179869183g", 0, 17179869183ULL << 30 },
		{ "", -1, 0 },
		{ "5x", -1, 0 },
		{ "-1", -1, 0 },
		{ "m", -1, 0 },
		{ "1t", -1, 0 },
		{ "10kb", -1, 0 },
		{ "18446744073709551616", -1, 0 },
		{ "17179869184g", -1, 0 },
		{ "18014398509481984k", -1, 0 },
	};
	uint64_t	v;
	size_t		i;
	int		rc;

	for (i = 0; i < NELEM(tab); i++) {
		v = 7;
		rc = conf_parse_size(tab[i].in, &v);
		if (rc != tab[i].rc)
			t_errorf(t, "conf_parse_size(\"%s\"): got %d, want %d",
			    tab[i].in, rc, tab[i].rc);
		else if (rc == 0 && v != tab[i].want)
			t_errorf(t, "conf_parse_size(\"%s\"): got %llu, "
			    "want %llu", tab[i].in, (unsigned long long)v,
			    tab[i].want);
	}
}

/* test_values - bool, int ranges and enums, through whole files. */
static void
test_values(struct t *t)
{
	static const struct {
		const char	*text;
		bool		 ok;
	} tab[] = {
		{ "auth_plaintext = yes", true },
		{ "auth_plaintext = No", true },
		{ "auth_plaintext = true", true },
		{ "auth_plaintext = FALSE", true },
		{ "auth_plaintext = on", true },
		{ "auth_plaintext = off", true },
		{ "auth_plaintext = 1", true },
		{ "auth_plaintext = 0", true },
		{ "auth_plaintext = maybe", false },
		{ "auth_plaintext =", false },
		{ "workers = 1", true },
		{ "workers = 256", true },
		{ "workers = 0", false },
		{ "workers = 257", false },
		{ "workers = -1", false },
		{ "workers = 4x", false },
		{ "workers = 99999999999999999999", false },
		{ "smtp_port = 65535", true },
		{ "smtp_port = 65536", false },
		{ "dest_concurrency = 1001", false },
		{ "max_recipients = 100000", true },
		{ "max_recipients = 100001", false },
		{ "max_errors = 2147483647", true },
		{ "max_errors = 2147483648", false },
		{ "line_length_limit = 999", false },
		{ "line_length_limit = 1000", true },
		{ "command_length_limit = 511", false },
		{ "command_length_limit = 512", true },
		{ "smtp_tls = none", true },
		{ "smtp_tls = encrypt", true },
		{ "smtp_tls = Encrypt", true },
		{ "smtp_tls = DANE", true },
		{ "smtp_tls = danish", false },
		{ "smtp_tls = must", false },
		{ "log = syslog", true },
		{ "log = file", false },
		{ "relay_domains = a..example", false },
		{ "relay_domains = foo_bar.example", false },
		{ "relay_domains = example.org.", false },
		{ "relay_domains = .", false },
		{ "hold_domains = xn--bcher-kva.example, .d.example", true },
		{ "listen = 127.0.0.1", false },
		{ "listen = localhost:25", false },
		{ "mynetworks = 10.1.2.3/8", false },
		{ "mynetworks = 10.0.0.0/8 bogus", false },
		{ "dns_servers = anything,goes", true },
		{ "min_backoff = 1h\nmax_backoff = 1h", true },
		{ "queue_dir = a = b", true },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;

	for (i = 0; i < NELEM(tab); i++) {
		c = load_text(t, tab[i].text, path, sizeof(path), err,
		    sizeof(err));
		if (tab[i].ok && c == NULL)
			t_errorf(t, "\"%s\": want ok, got %s", tab[i].text,
			    err);
		else if (!tab[i].ok && c != NULL)
			t_errorf(t, "\"%s\": want an error", tab[i].text);
		conf_free(c);
	}

	c = load_text(t, "auth_plaintext = off\nsmtp_tls = encrypt\n"
	    "queue_dir = a = b\n", path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		t_fatalf(t, "conf_load: %s", err);
	if (c->auth_plaintext || c->smtp_tls != CONF_TLS_ENCRYPT ||
	    strcmp(c->queue_dir, "a = b") != 0)
		t_errorf(t, "auth_plaintext, smtp_tls or queue_dir");
	conf_free(c);
}

static void
test_nets(struct t *t)
{
	static const struct {
		const char	*in;
		int		 rc;
		int		 prefix;
		const char	*dump;	/* as conf_dump() shows it */
	} tab[] = {
		{ "127.0.0.0/8", 0, 104, "127.0.0.0/8" },
		{ "10.1.2.3", 0, 128, "10.1.2.3/32" },
		{ "0.0.0.0/0", 0, 96, "0.0.0.0/0" },
		{ "::1/128", 0, 128, "::1/128" },
		{ "::1", 0, 128, "::1/128" },
		{ "2001:DB8::/32", 0, 32, "2001:db8::/32" },
		{ "::/0", 0, 0, "::/0" },
		{ "::ffff:10.0.0.0/104", 0, 104, "10.0.0.0/8" },
		{ "192.168.128.0/17", 0, 113, "192.168.128.0/17" },
		{ "", -1, 0, NULL },
		{ "/8", -1, 0, NULL },
		{ "127.0.0.0/", -1, 0, NULL },
		{ "127.0.0.0/33", -1, 0, NULL },
		{ "127.0.0.0/-1", -1, 0, NULL },
		{ "127.0.0.0/8x", -1, 0, NULL },
		{ "::/129", -1, 0, NULL },
		{ "127.0.0.1/8", -1, 0, NULL },
		{ "2001:db8::1/32", -1, 0, NULL },
		{ "1.2.3/8", -1, 0, NULL },
		{ "127.1", -1, 0, NULL },
		{ "localhost", -1, 0, NULL },
		{ "[::1]/128", -1, 0, NULL },
	};
	struct conf_net	 n;
	struct conf	*c;
	struct sbuf	*b;
	char		 path[64], err[256], want[128];
	size_t		 i;
	int		 rc;

	for (i = 0; i < NELEM(tab); i++) {
		memset(&n, 0, sizeof(n));
		rc = conf_parse_net(tab[i].in, &n);
		if (rc != tab[i].rc) {
			t_errorf(t, "conf_parse_net(\"%s\"): got %d, want %d",
			    tab[i].in, rc, tab[i].rc);
			continue;
		}
		if (rc != 0)
			continue;
		if (n.prefix != tab[i].prefix)
			t_errorf(t, "conf_parse_net(\"%s\"): prefix %d, "
			    "want %d", tab[i].in, n.prefix, tab[i].prefix);
		/* The dump form goes through conf_dump(). */
		bsnprintf(want, sizeof(want), "mynetworks = %s", tab[i].in);
		c = load_text(t, want, path, sizeof(path), err, sizeof(err));
		if (c == NULL) {
			t_errorf(t, "load \"%s\": %s", want, err);
			continue;
		}
		b = sbuf_new();
		conf_dump(c, b);
		bsnprintf(want, sizeof(want), "\nmynetworks = %s\n",
		    tab[i].dump);
		if (strstr(sbuf_str(b), want) == NULL)
			t_errorf(t, "dump of \"%s\": want \"%s\"", tab[i].in,
			    tab[i].dump);
		sbuf_free(b);
		conf_free(c);
	}
}

/* sa4, sa6 - build peers as accept(2) would hand them over. */
static const struct sockaddr *
sa4(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in	sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		abort();
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
	return (const struct sockaddr *)ss;
}

static const struct sockaddr *
sa6(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in6	sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(40000);
	if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) != 1)
		abort();
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin6, sizeof(sin6));
	return (const struct sockaddr *)ss;
}

static void
test_net_match(struct t *t)
{
	static const char *const nets[] = {
		"127.0.0.0/8", "192.168.128.0/17", "10.1.2.3",
		"2001:db8::/32", "fe80::/10",
	};
	static const struct {
		int		 v6;
		const char	*ip;
		bool		 want;
	} tab[] = {
		{ 0, "127.0.0.1", true },
		{ 0, "127.255.255.255", true },
		{ 0, "128.0.0.1", false },
		{ 0, "192.168.200.1", true },
		{ 0, "192.168.100.1", false },
		{ 0, "10.1.2.3", true },
		{ 0, "10.1.2.4", false },
		{ 1, "2001:db8::1", true },
		{ 1, "2001:db8:ffff::1", true },
		{ 1, "2001:db9::1", false },
		{ 1, "fe80::1", true },
		{ 1, "febf::1", true },
		{ 1, "fec0::1", false },
		{ 1, "::1", false },
		{ 1, "::ffff:127.0.0.1", true },	/* v4-mapped peer */
		{ 1, "::ffff:192.168.255.255", true },
		{ 1, "::ffff:128.0.0.1", false },
		{ 1, "::127.0.0.1", false },	/* v4-compatible: no */
	};
	struct conf_net		 n[NELEM(nets)], any4, any6;
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sun;
	const struct sockaddr	*sa;
	size_t			 i;
	bool			 got;

	for (i = 0; i < NELEM(nets); i++)
		if (conf_parse_net(nets[i], &n[i]) != 0)
			t_fatalf(t, "conf_parse_net(\"%s\") failed", nets[i]);
	for (i = 0; i < NELEM(tab); i++) {
		sa = tab[i].v6 ? sa6(&ss, tab[i].ip) : sa4(&ss, tab[i].ip);
		got = conf_net_match(n, NELEM(n), sa);
		if (got != tab[i].want)
			t_errorf(t, "conf_net_match(%s): got %d, want %d",
			    tab[i].ip, got, tab[i].want);
	}

	/* 0.0.0.0/0 is every IPv4 peer and no native IPv6 one; ::/0 is all. */
	if (conf_parse_net("0.0.0.0/0", &any4) != 0 ||
	    conf_parse_net("::/0", &any6) != 0)
		t_fatalf(t, "conf_parse_net of /0 failed");
	if (!conf_net_match(&any4, 1, sa4(&ss, "203.0.113.9")) ||
	    !conf_net_match(&any4, 1, sa6(&ss, "::ffff:203.0.113.9")) ||
	    conf_net_match(&any4, 1, sa6(&ss, "2001:db8::1")))
		t_errorf(t, "0.0.0.0/0");
	if (!conf_net_match(&any6, 1, sa4(&ss, "203.0.113.9")) ||
	    !conf_net_match(&any6, 1, sa6(&ss, "2001:db8::1")))
		t_errorf(t, "::/0");

	if (conf_net_match(n, 0, sa4(&ss, "127.0.0.1")))
		t_errorf(t, "an empty list matched");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (conf_net_match(&any6, 1, (const struct sockaddr *)&sun))
		t_errorf(t, "an AF_UNIX peer matched");
	if (conf_net_match(&any6, 1, NULL))
		t_errorf(t, "a NULL peer matched");
}

static void
test_addrs(struct t *t)
{
	static const struct {
		const char	*in;
		int		 defport;
		int		 rc;
		const char	*text;
		int		 family;
		int		 port;
	} tab[] = {
		{ "127.0.0.1:2525", 0, 0, "127.0.0.1:2525", AF_INET, 2525 },
		{ "0.0.0.0:25", 0, 0, "0.0.0.0:25", AF_INET, 25 },
		{ "[::1]:2525", 0, 0, "[::1]:2525", AF_INET6, 2525 },
		{ "[0:0::1]:25", 0, 0, "[::1]:25", AF_INET6, 25 },
		{ "[2001:DB8::7]:587", 0, 0, "[2001:db8::7]:587", AF_INET6,
		    587 },
		{ "[::ffff:192.0.2.1]:25", 0, 0, "[::ffff:192.0.2.1]:25",
		    AF_INET6, 25 },
		{ "127.0.0.1", 25, 0, "127.0.0.1:25", AF_INET, 25 },
		{ "[::1]", 53, 0, "[::1]:53", AF_INET6, 53 },
		{ "192.0.2.1:0025", 0, 0, "192.0.2.1:25", AF_INET, 25 },
		{ "192.0.2.1:65535", 0, 0, "192.0.2.1:65535", AF_INET, 65535 },
		{ "192.0.2.1:1", 25, 0, "192.0.2.1:1", AF_INET, 1 },
		{ "127.0.0.1", 0, -1, NULL, 0, 0 },	/* port required */
		{ "[::1]", 0, -1, NULL, 0, 0 },
		{ "127.0.0.1", 70000, -1, NULL, 0, 0 },
		{ "127.0.0.1:0", 0, -1, NULL, 0, 0 },
		{ "127.0.0.1:70000", 0, -1, NULL, 0, 0 },
		{ "[::1]:0", 25, -1, NULL, 0, 0 },
		{ "[::1]:65536", 0, -1, NULL, 0, 0 },
		{ "127.0.0.1:", 25, -1, NULL, 0, 0 },
		{ "127.0.0.1:25x", 0, -1, NULL, 0, 0 },
		{ "127.0.0.1:-25", 0, -1, NULL, 0, 0 },
		{ "127.0.0.1:smtp", 0, -1, NULL, 0, 0 },
		{ ":25", 0, -1, NULL, 0, 0 },
		{ "", 25, -1, NULL, 0, 0 },
		{ "localhost:25", 0, -1, NULL, 0, 0 },
		{ "mx.example.org:25", 0, -1, NULL, 0, 0 },
		{ "[localhost]:25", 0, -1, NULL, 0, 0 },
		{ "::1:25", 0, -1, NULL, 0, 0 },	/* v6 needs [] */
		{ "::1", 25, -1, NULL, 0, 0 },
		{ "[::1]25", 0, -1, NULL, 0, 0 },
		{ "[::1", 25, -1, NULL, 0, 0 },
		{ "[]:25", 0, -1, NULL, 0, 0 },
		{ "[127.0.0.1]:25", 0, -1, NULL, 0, 0 },
		{ "127.1:25", 0, -1, NULL, 0, 0 },
		{ "256.0.0.1:25", 0, -1, NULL, 0, 0 },
	};
	struct conf_addr	a;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	size_t			i;
	int			rc, port;

	for (i = 0; i < NELEM(tab); i++) {
		memset(&a, 0, sizeof(a));
		rc = conf_parse_addr(tab[i].in, tab[i].defport, &a);
		if (rc != tab[i].rc) {
			t_errorf(t, "conf_parse_addr(\"%s\", %d): got %d, "
			    "want %d", tab[i].in, tab[i].defport, rc,
			    tab[i].rc);
			continue;
		}
		if (rc != 0)
			continue;
		if (strcmp(a.text, tab[i].text) != 0)
			t_errorf(t, "conf_parse_addr(\"%s\"): text \"%s\", "
			    "want \"%s\"", tab[i].in, a.text, tab[i].text);
		if (a.ss.ss_family != tab[i].family) {
			t_errorf(t, "conf_parse_addr(\"%s\"): family %d",
			    tab[i].in, a.ss.ss_family);
			continue;
		}
		if (tab[i].family == AF_INET) {
			memcpy(&sin, &a.ss, sizeof(sin));
			port = ntohs(sin.sin_port);
			if (a.sslen != sizeof(sin))
				t_errorf(t, "%s: sslen %u", tab[i].in,
				    (unsigned)a.sslen);
		} else {
			memcpy(&sin6, &a.ss, sizeof(sin6));
			port = ntohs(sin6.sin6_port);
			if (a.sslen != sizeof(sin6))
				t_errorf(t, "%s: sslen %u", tab[i].in,
				    (unsigned)a.sslen);
		}
		if (port != tab[i].port)
			t_errorf(t, "conf_parse_addr(\"%s\"): port %d, "
			    "want %d", tab[i].in, port, tab[i].port);
	}
}

static void
test_domain_in(struct t *t)
{
	static const struct {
		const char	*domain;
		bool		 want;
	} tab[] = {
		{ "example.com", true },
		{ "EXAMPLE.Com", true },
		{ "a.example.com", false },	/* plain: itself only */
		{ "badexample.com", false },
		{ "example.org", false },	/* dot entry: not itself */
		{ "a.example.org", true },
		{ "x.y.Example.ORG", true },
		{ ".example.org", false },	/* not a domain */
		{ "badexample.org", false },
		{ "org", false },
		{ "", false },
		{ "example.co", false },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;
	bool		 got;

	c = load_text(t, "relay_domains = Example.COM, .example.ORG\n",
	    path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		t_fatalf(t, "conf_load: %s", err);
	for (i = 0; i < NELEM(tab); i++) {
		got = conf_domain_in(&c->relay_domains, tab[i].domain);
		if (got != tab[i].want)
			t_errorf(t, "conf_domain_in(\"%s\"): got %d, want %d",
			    tab[i].domain, got, tab[i].want);
	}
	if (conf_domain_in(&c->hold_domains, "example.com"))
		t_errorf(t, "an empty list matched");
	if (conf_domain_in(NULL, "example.com") ||
	    conf_domain_in(&c->relay_domains, NULL))
		t_errorf(t, "NULL matched");
	conf_free(c);
}

/* test_errors - each error names the file, the line and the key. */
static void
test_errors(struct t *t)
{
	static const struct {
		const char	*text;
		const char	*line;		/* ":N:" */
		const char	*key;
		const char	*why;
	} tab[] = {
		{ "workers = 4\nbogus_key = 1\n", ":2:", "bogus_key",
		    "unknown key" },
		{ "# c\n\nworkers = many\n", ":3:", "workers", "bad value" },
		{ "workers = 4\nmax_errors 10\n", ":2:", "max_errors",
		    "missing '='" },
		{ "workers = 4\nlog = syslog\nworkers = 5\n", ":3:", "workers",
		    "duplicate key" },
		{ "mynetworks = 10.0.0.0/8, 300.0.0.0/8\n", ":1:",
		    "mynetworks", "300.0.0.0/8" },
		{ "listen = 127.0.0.1:25 [::1]:0\n", ":1:", "listen",
		    "[::1]:0" },
		{ "relay_domains = ok.example bad..example\n", ":1:",
		    "relay_domains", "bad..example" },
		{ "smtp_tls = must\n", ":1:", "smtp_tls",
		    "none, may, encrypt or dane" },
		{ "workers = 4\nsmtp_tls = danish\n", ":2:", "smtp_tls",
		    "bad value \"danish\"" },
		{ "message_size_limit = 5x\n", ":1:", "message_size_limit",
		    "bad value" },
		{ "min_backoff = 5m\n\nmax_backoff = 1m\n", ":3:",
		    "max_backoff", "less than min_backoff" },
		{ "min_backoff = 2h\n", ":1:", "max_backoff",
		    "less than min_backoff" },
		{ "line_length_limit = 512\n", ":1:", "line_length_limit",
		    "1000" },
	};
	struct conf	*c;
	char		 path[64], err[512];
	size_t		 i;

	for (i = 0; i < NELEM(tab); i++) {
		memset(err, 'x', sizeof(err));
		c = load_text(t, tab[i].text, path, sizeof(path), err,
		    sizeof(err));
		if (c != NULL) {
			t_errorf(t, "\"%s\": want NULL", tab[i].text);
			conf_free(c);
			continue;
		}
		if (strnlen(err, sizeof(err)) == sizeof(err))
			t_fatalf(t, "\"%s\": err not terminated", tab[i].text);
		if (strncmp(err, path, strlen(path)) != 0 ||
		    strncmp(err + strlen(path), tab[i].line,
		    strlen(tab[i].line)) != 0)
			t_errorf(t, "\"%s\": err \"%s\" does not start with "
			    "%s%s", tab[i].text, err, path, tab[i].line);
		if (strstr(err, tab[i].key) == NULL)
			t_errorf(t, "\"%s\": err \"%s\" lacks key %s",
			    tab[i].text, err, tab[i].key);
		if (strstr(err, tab[i].why) == NULL)
			t_errorf(t, "\"%s\": err \"%s\" lacks \"%s\"",
			    tab[i].text, err, tab[i].why);
	}
}

static void
test_unreadable(struct t *t)
{
	struct conf	*c;
	char		 path[64], err[256], want[128], tiny[8];
	int		 fd;

	/* A name that existed a moment ago and does not now. */
	if (!strl_copy(path, "/tmp/test_conf.XXXXXX", sizeof(path)) ||
	    (fd = mkstemp(path)) == -1)
		t_fatalf(t, "mkstemp: %s", strerror(errno));
	close(fd);
	unlink(path);
	if ((c = conf_load(path, err, sizeof(err))) != NULL) {
		conf_free(c);
		t_fatalf(t, "conf_load(%s): want NULL", path);
	}
	bsnprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	if (strcmp(err, want) != 0)
		t_errorf(t, "err: got \"%s\", want \"%s\"", err, want);

	/* A directory opens, then fails on the first read. */
	if ((c = conf_load("/tmp", err, sizeof(err))) != NULL) {
		conf_free(c);
		t_fatalf(t, "conf_load(/tmp): want NULL");
	}
	bsnprintf(want, sizeof(want), "/tmp: %s", strerror(EISDIR));
	if (strcmp(err, want) != 0)
		t_errorf(t, "err: got \"%s\", want \"%s\"", err, want);

	/* A small err buffer is cut, not overrun; NULL err is fine. */
	if ((c = conf_load(path, tiny, sizeof(tiny))) != NULL)
		conf_free(c);
	if (strlen(tiny) != sizeof(tiny) - 1 ||
	    strncmp(tiny, path, sizeof(tiny) - 1) != 0)
		t_errorf(t, "tiny err: got \"%s\"", tiny);
	if ((c = conf_load(path, NULL, 0)) != NULL) {
		conf_free(c);
		t_errorf(t, "conf_load(NULL err): want NULL");
	}
}

/* test_syntax - lines that are not key = value, and what is ignored. */
static void
test_syntax(struct t *t)
{
	static const struct {
		const char	*text;
		bool		 ok;
	} tab[] = {
		{ "", true },
		{ "\n\n   \n\t\n", true },
		{ "# only a comment\n   # indented\n", true },
		{ "workers = 8 # eight\n", true },
		{ "workers=8 #eight", true },
		{ "workers = 8\t#eight\r\n", true },
		/* '#' inside a word is text (linefile.c), so "8#eight". */
		{ "workers=8#eight", false },
		{ "\r\nworkers = 8\r\n", true },
		{ "= 8\n", false },
		{ "workers\n", false },
		{ "Workers = 8\n", false },	/* keys are case-sensitive */
		{ "workers = 8 9\n", false },
		{ "work ers = 8\n", false },
		{ "workers = #8\n", false },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;

	for (i = 0; i < NELEM(tab); i++) {
		c = load_text(t, tab[i].text, path, sizeof(path), err,
		    sizeof(err));
		if (tab[i].ok && c == NULL)
			t_errorf(t, "\"%s\": want ok, got %s", tab[i].text,
			    err);
		else if (!tab[i].ok && c != NULL)
			t_errorf(t, "\"%s\": want an error", tab[i].text);
		else if (c != NULL && strstr(tab[i].text, "workers") != NULL &&
		    c->workers != 8)
			t_errorf(t, "\"%s\": workers %d", tab[i].text,
			    c->workers);
		conf_free(c);
	}
}

/* test_key_line - the line that set each key, for messages that point
 * at it (postern check, posternd); 0 for a default or an unknown key. */
static void
test_key_line(struct t *t)
{
	static const struct {
		const char	*key;
		int		 line;
	} tab[] = {
		{ "workers", 2 },
		{ "dns_servers", 4 },
		{ "queue_dir", 0 },
		{ "no_such_key", 0 },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;

	c = load_text(t, "# lines\nworkers = 3\n\ndns_servers = 127.0.0.1\n",
	    path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		t_fatalf(t, "conf_load: %s", err);
	for (i = 0; i < NELEM(tab); i++)
		if (conf_key_line(c, tab[i].key) != tab[i].line)
			t_errorf(t, "conf_key_line(%s): got %d, want %d",
			    tab[i].key, conf_key_line(c, tab[i].key),
			    tab[i].line);
	conf_free(c);
	if ((c = conf_load(NULL, err, sizeof(err))) == NULL)
		t_fatalf(t, "conf_load(NULL): %s", err);
	if (conf_key_line(c, "workers") != 0)
		t_errorf(t, "conf_key_line(defaults): got %d, want 0",
		    conf_key_line(c, "workers"));
	conf_free(c);
}

/* stress_timeout: 10s by default, a duration, 0 (stress mode off) too. */
static void
test_stress_timeout(struct t *t)
{
	static const struct {
		const char	*text;
		long long	 want;	/* -1: an error */
	} tab[] = {
		{ "", 10 },
		{ "stress_timeout = 30s\n", 30 },
		{ "stress_timeout = 2m\n", 120 },
		{ "stress_timeout = 0\n", 0 },
		{ "stress_timeout = -1\n", -1 },
		{ "stress_timeout = soon\n", -1 },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;

	for (i = 0; i < NELEM(tab); i++) {
		c = load_text(t, tab[i].text, path, sizeof(path), err,
		    sizeof(err));
		if (tab[i].want < 0) {
			if (c != NULL)
				t_errorf(t, "\"%s\": want an error", tab[i].text);
			else if (strstr(err, "stress_timeout") == NULL)
				t_errorf(t, "\"%s\": error %s names no key",
				    tab[i].text, err);
		} else if (c == NULL)
			t_errorf(t, "\"%s\": %s", tab[i].text, err);
		else if ((long long)c->stress_timeout != tab[i].want)
			t_errorf(t, "\"%s\": stress_timeout %lld, want %lld",
			    tab[i].text, (long long)c->stress_timeout,
			    tab[i].want);
		conf_free(c);
	}
}

/* The bounce keys: defaults, values, and what each refuses. */
static void
test_bounce_keys(struct t *t)
{
	static const struct {
		const char	*text;
		bool		 ok;
		int		 warnings, rate;
		int		 ret;		/* enum conf_bounce_return */
		uint64_t	 cap;
		const char	*dbr;
	} tab[] = {
		{ "", true, 1, 20, CONF_BOUNCE_HEADERS, 50 * 1024,
		    "postmaster" },
		{ "bounce_return = full\nbounce_size_limit = 1m\n"
		    "max_delay_warnings = 3\nbounce_rate_limit = 0\n"
		    "double_bounce_recipient = ops@example.org\n", true, 3, 0,
		    CONF_BOUNCE_FULL, 1024 * 1024, "ops@example.org" },
		{ "double_bounce_recipient =\n", true, 1, 20,
		    CONF_BOUNCE_HEADERS, 50 * 1024, NULL },	/* none */
		{ "bounce_size_limit = 0\n", true, 1, 20, CONF_BOUNCE_HEADERS,
		    0, "postmaster" },
		{ "bounce_return = body\n", false, 0, 0, 0, 0, NULL },
		{ "max_delay_warnings = 101\n", false, 0, 0, 0, 0, NULL },
		{ "bounce_rate_limit = -1\n", false, 0, 0, 0, 0, NULL },
		{ "bounce_size_limit = big\n", false, 0, 0, 0, 0, NULL },
	};
	struct conf	*c;
	char		 path[64], err[256];
	size_t		 i;

	for (i = 0; i < NELEM(tab); i++) {
		c = load_text(t, tab[i].text, path, sizeof(path), err,
		    sizeof(err));
		if (!tab[i].ok) {
			if (c != NULL)
				t_errorf(t, "\"%s\": want an error", tab[i].text);
			conf_free(c);
			continue;
		}
		if (c == NULL) {
			t_errorf(t, "\"%s\": %s", tab[i].text, err);
			continue;
		}
		if (c->max_delay_warnings != tab[i].warnings ||
		    c->bounce_rate_limit != tab[i].rate ||
		    (int)c->bounce_return != tab[i].ret ||
		    c->bounce_size_limit != tab[i].cap ||
		    (tab[i].dbr == NULL ? c->double_bounce_recipient != NULL :
		    c->double_bounce_recipient == NULL ||
		    strcmp(c->double_bounce_recipient, tab[i].dbr) != 0))
			t_errorf(t, "\"%s\": got %d %d %d %llu \"%s\"",
			    tab[i].text, c->max_delay_warnings,
			    c->bounce_rate_limit, (int)c->bounce_return,
			    (unsigned long long)c->bounce_size_limit,
			    c->double_bounce_recipient != NULL ?
			    c->double_bounce_recipient : "(none)");
		conf_free(c);
	}
}

int
main(void)
{
	T_RUN(test_defaults);
	T_RUN(test_keys);
	T_RUN(test_file_all);
	T_RUN(test_roundtrip);
	T_RUN(test_empty_values);
	T_RUN(test_durations);
	T_RUN(test_sizes);
	T_RUN(test_values);
	T_RUN(test_nets);
	T_RUN(test_net_match);
	T_RUN(test_addrs);
	T_RUN(test_domain_in);
	T_RUN(test_errors);
	T_RUN(test_unreadable);
	T_RUN(test_syntax);
	T_RUN(test_key_line);
	T_RUN(test_stress_timeout);
	T_RUN(test_bounce_keys);
	T_EXIT();
}

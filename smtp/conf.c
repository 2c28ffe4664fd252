/*
 * conf.c - the configuration file: "key = value" lines, '#' comments
 * (the rule of linefile.c, as in every file postern reads).
 *
 * One table, conf_table[], describes every key: its name, its type, where
 * it lives in struct conf, and its default written as an operator would
 * write it in the file. Defaults are applied by parsing those strings
 * through the same setters as the file, so what conf_dump() prints for an
 * empty file is exactly what the table says, and a default that does not
 * parse is a bug that the unit test catches (conf_load() panics on it).
 *
 * A value from the file replaces the default. A key given twice is an
 * error rather than "the last one wins": two listen lines that silently
 * override each other are a trap. Unknown keys are errors too (design.md),
 * so a typo never turns into a default.
 *
 * Errors read "FILE:LINE: KEY: why" so that `postern check` and posternd's
 * fatalx() can print them as they are.
 *
 * Networks are kept as 16 bytes with IPv4 as v4-mapped IPv6
 * (::ffff:a.b.c.d, prefix + 96), so one comparison serves both families
 * and a v4 client that reaches a dual-stack socket as ::ffff:a.b.c.d
 * matches the same entries as one that arrives over AF_INET.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtp.h"

enum conf_type {
	CONF_T_STR,		/* char *; empty value: NULL */
	CONF_T_BOOL,		/* bool */
	CONF_T_INT,		/* int, in [min, max] */
	CONF_T_DURATION,	/* time_t seconds; s m h d */
	CONF_T_SIZE,		/* uint64_t bytes; k m g (1024) */
	CONF_T_DOMAINS,		/* struct conf_list, lower-cased */
	CONF_T_STRINGS,		/* struct conf_list, as written */
	CONF_T_ADDRS,		/* struct conf_addr * + size_t count */
	CONF_T_NETS,		/* struct conf_net * + size_t count */
	CONF_T_ENUM,		/* int-sized enum; names[] in value order */
};

struct conf_key {
	const char		*name;
	enum conf_type		 type;
	size_t			 off;	/* field in struct conf */
	size_t			 noff;	/* its count: ADDRS, NETS */
	const char		*def;	/* the default, as in a file */
	const char *const	*names;	/* ENUM: allowed values */
	int			 min;	/* INT: inclusive range */
	int			 max;
};

/* The enum setters store an int; make sure that is what the enums are. */
_Static_assert(sizeof(enum conf_tls) == sizeof(int), "enum conf_tls size");
_Static_assert(sizeof(enum log_dest) == sizeof(int), "enum log_dest size");
_Static_assert(sizeof(enum conf_bounce_return) == sizeof(int),
    "enum conf_bounce_return size");

/* "dane": RFC 7672 through the runner's route_tlsa.c and smtpc_dane.c. */
static const char *const conf_tls_names[] = {
	"none", "may", "encrypt", "dane", NULL	/* enum conf_tls */
};
static const char *const conf_log_names[] = {
	"stderr", "syslog", NULL			/* enum log_dest */
};
static const char *const conf_bounce_return_names[] = {
	"headers", "full", NULL			/* enum conf_bounce_return */
};

/* #f makes the key name and the field name one and the same. */
#define CONF_K(f, t, d)							\
	{ #f, t, offsetof(struct conf, f), 0, d, NULL, 0, 0 }
#define CONF_K_STR(f, d)	CONF_K(f, CONF_T_STR, d)
#define CONF_K_BOOL(f, d)	CONF_K(f, CONF_T_BOOL, d)
#define CONF_K_DUR(f, d)	CONF_K(f, CONF_T_DURATION, d)
#define CONF_K_SIZE(f, d)	CONF_K(f, CONF_T_SIZE, d)
#define CONF_K_DOMAINS(f, d)	CONF_K(f, CONF_T_DOMAINS, d)
#define CONF_K_STRINGS(f, d)	CONF_K(f, CONF_T_STRINGS, d)
#define CONF_K_INT(f, d, lo, hi)					\
	{ #f, CONF_T_INT, offsetof(struct conf, f), 0, d, NULL, lo, hi }
#define CONF_K_ENUM(f, d, v)						\
	{ #f, CONF_T_ENUM, offsetof(struct conf, f), 0, d, v, 0, 0 }
/* The count of list field x is always nx (listen/nlisten, ...). */
#define CONF_K_ADDRS(f, d)						\
	{ #f, CONF_T_ADDRS, offsetof(struct conf, f),			\
	    offsetof(struct conf, n##f), d, NULL, 0, 0 }
#define CONF_K_NETS(f, d)						\
	{ #f, CONF_T_NETS, offsetof(struct conf, f),			\
	    offsetof(struct conf, n##f), d, NULL, 0, 0 }

static const struct conf_key conf_table[] = {
	CONF_K_STR(myhostname, ""),	/* empty: gethostname() */
	CONF_K_DOMAINS(my_names, ""),
	CONF_K_STR(queue_dir, "var/queue"),
	CONF_K_SIZE(queue_map_size, "8g"),
	CONF_K_ADDRS(listen, "127.0.0.1:2525"),
	CONF_K_ADDRS(odmr_listen, "127.0.0.1:3366"),
	CONF_K_DOMAINS(relay_domains, ""),
	CONF_K_DOMAINS(hold_domains, ""),
	CONF_K_NETS(mynetworks, "127.0.0.0/8 ::1/128"),
	CONF_K_STR(users_file, ""),
	CONF_K_STR(routes_file, ""),
	CONF_K_STR(relay_recipients, ""),
	CONF_K_STR(relayhost, ""),
	CONF_K_STR(relayhost_auth_file, ""),
	CONF_K_STRINGS(dns_servers, ""),	/* c-ares takes them as text */
	CONF_K_INT(smtp_port, "25", 1, 65535),
	CONF_K_STR(tls_cert_file, ""),
	CONF_K_STR(tls_key_file, ""),
	CONF_K_STR(tls_ca_file, ""),
	CONF_K_ENUM(smtp_tls, "may", conf_tls_names),
	/* MTA-STS (RFC 8461): policies fetched over HTTPS, verified against
	 * this CA file ("": the system's store). */
	CONF_K_BOOL(smtp_mta_sts, "yes"),
	CONF_K_STR(smtp_mta_sts_ca_file, ""),
	CONF_K_BOOL(auth_plaintext, "no"),
	/* Password guessing: a delay per failure, a count per address. */
	CONF_K_DUR(auth_failure_delay, "1s"),		/* 0: none */
	CONF_K_INT(auth_failure_limit, "10", 0, INT_MAX),	/* 0: off */
	CONF_K_DUR(auth_failure_window, "10m"),
	CONF_K_INT(workers, "4", 1, 256),
	CONF_K_INT(dest_concurrency, "10", 1, 1000),
	CONF_K_DUR(min_backoff, "5m"),
	CONF_K_DUR(max_backoff, "1h"),
	CONF_K_DUR(max_queue_lifetime, "5d"),
	CONF_K_DUR(hold_lifetime, "7d"),
	/* "Mail is waiting" notices for held sites (runner/notify.c). */
	CONF_K_STR(site_notify_command, ""),		/* empty: off */
	CONF_K_INT(site_notify_threshold, "100", 0, INT_MAX),	/* 0: off */
	CONF_K_DUR(site_notify_age, "1d"),		/* 0: off */
	CONF_K_DUR(site_notify_interval, "1h"),
	CONF_K_DUR(site_notify_timeout, "30s"),
	CONF_K_DUR(delay_warning, "4h"),	/* 0: off */
	/* Bounces (bounce/): what a DSN returns and how many go out. */
	CONF_K_INT(max_delay_warnings, "1", 0, 100),
	CONF_K_ENUM(bounce_return, "headers", conf_bounce_return_names),
	CONF_K_SIZE(bounce_size_limit, "50k"),		/* 0: no cap */
	CONF_K_STR(double_bounce_recipient, "postmaster"), /* "": none */
	CONF_K_INT(bounce_rate_limit, "20", 0, INT_MAX),	/* 0: off */
	CONF_K_DUR(lease_time, "5m"),
	CONF_K_DUR(connection_reuse_time, "5s"),
	/* Client timeouts, RFC 5321 §4.5.3.2 (the dot's >= 10 minutes). */
	CONF_K_DUR(smtp_connect_timeout, "30s"),
	CONF_K_DUR(smtp_command_timeout, "5m"),
	CONF_K_DUR(smtp_data_timeout, "3m"),
	CONF_K_DUR(smtp_dot_timeout, "10m"),
	/* BDAT (RFC 3030) for messages this big, when the next hop offers
	 * CHUNKING; smaller ones by DATA. 0: DATA always (BINARYMIME
	 * messages go by BDAT all the same: they must). */
	CONF_K_SIZE(smtp_bdat_min_size, "64k"),
	CONF_K_SIZE(message_size_limit, "50m"),
	CONF_K_INT(max_recipients, "1000", 1, 100000),
	CONF_K_INT(max_connections, "100", 0, INT_MAX),
	CONF_K_INT(max_connections_per_ip, "20", 0, INT_MAX),
	CONF_K_INT(max_errors, "10", 0, INT_MAX),
	/* NOOP, RSET, VRFY, ETRN past it count as errors (Postfix's
	 * smtpd_junk_command_limit): each resets the command timeout. */
	CONF_K_INT(junk_command_limit, "100", 0, INT_MAX),	/* 0: off */
	CONF_K_INT(max_received_headers, "100", 0, INT_MAX),
	/* RFC 5321 §4.5.3.1.6 and §4.5.3.1.4 give minimums, not maximums. */
	CONF_K_INT(line_length_limit, "1000", 1000, INT_MAX),
	CONF_K_INT(command_length_limit, "2048", 512, INT_MAX),
	CONF_K_DUR(command_timeout, "5m"),
	/* The whole message, 354 to the dot: not reset by each read. */
	CONF_K_DUR(data_timeout, "10m"),
	/* Both of the above while the listener has 80% of max_connections
	 * (Postfix's stress mode). */
	CONF_K_DUR(stress_timeout, "10s"),
	CONF_K_STR(etrn_policy, "relay_domains"),
	/* ETRN #NAME: "NAME:DOMAIN[:@DOMAIN...]" items (etrn_policy.c). */
	CONF_K_STRINGS(etrn_queues, ""),
	CONF_K_DUR(etrn_min_interval, "10s"),	/* 0: no rate limit */
	CONF_K_BOOL(turn_enable, "no"),
	CONF_K_ADDRS(metrics_listen, ""),	/* empty: off */
	/* Per-domain series: the largest N, and every held domain. */
	CONF_K_INT(metrics_top_domains, "20", 0, 1000),
	CONF_K_STR(metrics_token, ""),		/* "": /metrics is open */
	CONF_K_STR(status_token, ""),		/* "": / is open */
	CONF_K_ENUM(log, "stderr", conf_log_names),
	CONF_K_STR(user, "postern"),
};

#define CONF_NKEYS	(sizeof(conf_table) / sizeof(conf_table[0]))
#define CONF_LIST_SEP	", \t\r\n\v\f"
#define CONF_WS		" \t\r\n\v\f"
#define CONF_WHY	256		/* room for the "why" of an error */

/* The largest time_t, without assuming its width. */
#define CONF_TIME_MAX							\
	((uint64_t)(((uintmax_t)1 << (sizeof(time_t) * CHAR_BIT - 1)) - 1))

static const uint8_t conf_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static void	conf_err(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* conf_err - format into the caller's err buffer (which may be NULL). */
static void
conf_err(char *err, size_t errsz, const char *fmt, ...)
{
	struct sbuf	*b;
	va_list		 ap;

	if (err == NULL || errsz == 0)
		return;
	b = sbuf_new();
	va_start(ap, fmt);
	sbuf_vcatf(b, fmt, ap);
	va_end(ap);
	(void)strl_copy(err, sbuf_str(b), errsz);	/* cut is fine */
	sbuf_free(b);
}

/* conf_trim - strip leading and trailing white space in place. */
static char *
conf_trim(char *s)
{
	size_t	n;

	s += strspn(s, CONF_WS);
	n = strlen(s);
	while (n > 0 && strchr(CONF_WS, s[n - 1]) != NULL)
		n--;
	s[n] = '\0';
	return s;
}

static bool
conf_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static int
conf_tolower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/*
 * conf_parse_scaled - digits, then at most one suffix letter (any case)
 * from `suffixes` that multiplies by the matching `scale`. No sign, no
 * space, no empty number; anything above `max` (or any overflow) fails.
 */
static int
conf_parse_scaled(const char *s, const char *suffixes, const uint64_t *scale,
    uint64_t max, uint64_t *out)
{
	const char	*p, *sfx;
	uint64_t	 v = 0, mul = 1, d;

	if (!conf_isdigit((unsigned char)*s))
		return -1;
	for (p = s; conf_isdigit((unsigned char)*p); p++) {
		d = (uint64_t)(*p - '0');
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		sfx = strchr(suffixes, conf_tolower((unsigned char)*p));
		if (sfx == NULL || p[1] != '\0')
			return -1;
		mul = scale[sfx - suffixes];
	}
	if (v > max / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
conf_parse_duration(const char *s, time_t *out)
{
	static const uint64_t	scale[] = { 1, 60, 3600, 86400 };
	uint64_t		v;

	if (conf_parse_scaled(s, "smhd", scale, CONF_TIME_MAX, &v) == -1)
		return -1;
	*out = (time_t)v;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t	scale[] = {
		1024, (uint64_t)1024 * 1024, (uint64_t)1024 * 1024 * 1024
	};

	return conf_parse_scaled(s, "kmg", scale, UINT64_MAX, out);
}

static int
conf_parse_int(const char *s, int min, int max, int *out)
{
	uint64_t	v;

	if (conf_parse_scaled(s, "", NULL, (uint64_t)max, &v) == -1 ||
	    v < (uint64_t)(min < 0 ? 0 : min))
		return -1;
	*out = (int)v;
	return 0;
}

static int
conf_parse_bool(const char *s, bool *out)
{
	static const char *const	yes[] = { "yes", "true", "on", "1" };
	static const char *const	no[] = { "no", "false", "off", "0" };
	size_t				i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/*
 * conf_domain_ok - a domain for relay_domains and friends: LDH labels (or
 * UTF-8 bytes, for U-labels) of 1..63 bytes joined by single dots, at most
 * 255 bytes, optionally after one leading dot ("every subdomain of").
 * Hyphen placement is left to smtp_domain_valid(); this catches typos.
 */
static bool
conf_domain_ok(const char *d)
{
	const unsigned char	*p = (const unsigned char *)d;
	size_t			 label = 0;

	if (*p == '.')
		p++;
	if (*p == '\0' || strlen((const char *)p) > SMTP_DOMAIN_MAX)
		return false;
	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    conf_isdigit(*p) || *p == '-' || *p >= 0x80))
			return false;
		if (++label > 63)
			return false;
	}
	return label != 0;
}

/*
 * conf_domain_ascii - a domain list item (".parent" too) in its lookup
 * form, in place: lower case, A-labels for a U-label (smtp_idn.c), so
 * that conf_domain_in() compares like with like. -1 with why when
 * libidn2 refuses it: an entry that can never match is a mistake.
 */
static int
conf_domain_ascii(char **item, char *why, size_t whysz)
{
	char		 a[SMTP_DOMAIN_MAX + 2];
	const char	*d = *item, *reason;
	size_t		 dot = d[0] == '.';

	a[0] = '.';
	if (smtp_idn_to_ascii(d + dot, a + dot, sizeof(a) - dot,
	    &reason) != 0) {
		(void)bsnprintf(why, whysz, "bad domain \"%.80s\": not a valid "
		    "international domain name (%s)", d, reason);
		return -1;
	}
	free(*item);
	*item = xstrdup(a);
	return 0;
}

/* conf_net_hostbits - does the network have bits set past its prefix? */
static bool
conf_net_hostbits(const struct conf_net *n)
{
	int	i = n->prefix / 8;

	if (n->prefix % 8 != 0) {
		if ((n->addr[i] & (0xff >> (n->prefix % 8))) != 0)
			return true;
		i++;
	}
	for (; i < 16; i++)
		if (n->addr[i] != 0)
			return true;
	return false;
}

/*
 * conf_parse_net - "a.b.c.d/len", "v6/len", or a bare address (/32, /128).
 * Host bits past the prefix are an error ("10.1.2.3/8"): such an entry is
 * almost always a typo for a host or for a different network.
 */
int
conf_parse_net(const char *s, struct conf_net *out)
{
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash;
	struct conf_net	 n;
	size_t		 hlen;
	uint64_t	 v;
	int		 max;

	memset(&n, 0, sizeof(n));
	slash = strchr(s, '/');
	hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, n.addr + 12) == 1) {
		memcpy(n.addr, conf_v4mapped, sizeof(conf_v4mapped));
		max = 32;
	} else if (inet_pton(AF_INET6, host, n.addr) == 1)
		max = 128;
	else
		return -1;
	if (slash == NULL)
		v = (uint64_t)max;
	else if (conf_parse_scaled(slash + 1, "", NULL, (uint64_t)max,
	    &v) == -1)
		return -1;
	n.prefix = (int)v + (max == 32 ? 96 : 0);
	if (conf_net_hostbits(&n))
		return -1;
	*out = n;
	return 0;
}

/* conf_net_fmt - "127.0.0.0/8" for v4-mapped networks, "::1/128" else. */
static void
conf_net_fmt(const struct conf_net *n, char *buf, size_t bufsz)
{
	char	a[INET6_ADDRSTRLEN];

	if (n->prefix >= 96 &&
	    memcmp(n->addr, conf_v4mapped, sizeof(conf_v4mapped)) == 0) {
		inet_ntop(AF_INET, n->addr + 12, a, sizeof(a));
		(void)bsnprintf(buf, bufsz, "%s/%d", a, n->prefix - 96);
	} else {
		inet_ntop(AF_INET6, n->addr, a, sizeof(a));
		(void)bsnprintf(buf, bufsz, "%s/%d", a, n->prefix);
	}
}

static bool
conf_net_contains(const struct conf_net *n, const uint8_t a[16])
{
	int	bytes = n->prefix / 8, bits = n->prefix % 8;
	uint8_t	mask;

	if (memcmp(n->addr, a, (size_t)bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - bits));
	return (n->addr[bytes] & mask) == (a[bytes] & mask);
}

bool
conf_net_match(const struct conf_net *nets, size_t n,
    const struct sockaddr *sa)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	uint8_t			 a[16];
	size_t			 i;

	if (sa == NULL)
		return false;
	/* Copy out: the caller's sockaddr need not be aligned for these. */
	switch (sa->sa_family) {
	case AF_INET:
		memcpy(&sin, sa, sizeof(sin));
		memcpy(a, conf_v4mapped, sizeof(conf_v4mapped));
		memcpy(a + 12, &sin.sin_addr, 4);
		break;
	case AF_INET6:
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(a, &sin6.sin6_addr, 16);
		break;
	default:
		return false;
	}
	for (i = 0; i < n; i++)
		if (conf_net_contains(&nets[i], a))
			return true;
	return false;
}

/*
 * conf_parse_addr - "a.b.c.d[:port]" or "[v6][:port]". The host must be a
 * numeric address: a listener that resolved names at start-up would
 * depend on DNS to boot. IPv6 must be bracketed, since "::1:25" is itself
 * a valid address. IPv4 must be a plain dotted quad (inet_pton), not the
 * inet_aton forms "127.1" or "0x7f.1" that getaddrinfo also takes.
 */
int
conf_parse_addr(const char *s, int defport, struct conf_addr *out)
{
	struct addrinfo	 hints, *res = NULL;
	struct conf_addr a;
	struct in_addr	 a4;
	char		 host[NI_MAXHOST];
	char		 num[NI_MAXHOST], serv[8];
	const char	*h, *port, *end;
	size_t		 hlen;
	uint64_t	 v;
	int		 family;

	memset(&a, 0, sizeof(a));
	if (s[0] == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL)
			return -1;
		if (end[1] == '\0')
			port = NULL;
		else if (end[1] == ':')
			port = end + 2;
		else
			return -1;
		family = AF_INET6;
	} else {
		h = s;
		if ((end = strchr(h, ':')) != NULL) {
			if (strchr(end + 1, ':') != NULL)
				return -1;	/* IPv6 without brackets */
			port = end + 1;
		} else {
			end = h + strlen(h);
			port = NULL;
		}
		family = AF_INET;
	}
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (family == AF_INET && inet_pton(AF_INET, host, &a4) != 1)
		return -1;

	if (port != NULL) {
		if (conf_parse_scaled(port, "", NULL, 65535, &v) == -1 ||
		    v == 0)
			return -1;
	} else if (defport > 0 && defport <= 65535)
		v = (uint64_t)defport;
	else
		return -1;		/* a port is required */
	(void)bsnprintf(serv, sizeof(serv), "%u", (unsigned)v);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, serv, &hints, &res) != 0 || res == NULL)
		return -1;
	if (res->ai_addrlen > sizeof(a.ss)) {
		freeaddrinfo(res);
		return -1;
	}
	memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
	a.sslen = res->ai_addrlen;
	freeaddrinfo(res);

	/* Normalise the text: "[0:0::1]:25" becomes "[::1]:25". */
	if (getnameinfo((struct sockaddr *)&a.ss, a.sslen, num, sizeof(num),
	    NULL, 0, NI_NUMERICHOST) != 0)
		return -1;
	if (!bsnprintf(a.text, sizeof(a.text),
	    family == AF_INET6 ? "[%s]:%s" : "%s:%s", num, serv))
		return -1;
	*out = a;
	return 0;
}

bool
conf_domain_in(const struct conf_list *l, const char *domain)
{
	char	a[SMTP_DOMAIN_MAX + 1];
	size_t	i, dlen, elen;

	if (l == NULL || domain == NULL)
		return false;
	/* The list holds lookup forms (conf_domain_ascii): so must the
	 * domain, whichever form it came in. One that has none matches
	 * nothing. */
	if (smtp_idn_has8(domain)) {
		if (smtp_idn_to_ascii(domain, a, sizeof(a), NULL) != 0)
			return false;
		domain = a;
	}
	dlen = strlen(domain);
	for (i = 0; i < l->n; i++) {
		elen = strlen(l->v[i]);
		if (l->v[i][0] == '.') {
			/* The entry's own dot makes this a label boundary. */
			if (dlen > elen &&
			    strcasecmp(domain + dlen - elen, l->v[i]) == 0)
				return true;
		} else if (strcasecmp(domain, l->v[i]) == 0)
			return true;
	}
	return false;
}

void
conf_list_free(struct conf_list *l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* conf_split - split at commas and white space; empty items are skipped. */
static void
conf_split(const char *s, struct conf_list *out)
{
	size_t	n;

	out->v = NULL;
	out->n = 0;
	for (;;) {
		s += strspn(s, CONF_LIST_SEP);
		if (*s == '\0')
			break;
		n = strcspn(s, CONF_LIST_SEP);
		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		out->v[out->n++] = xstrndup(s, n);
		s += n;
	}
}

static void *
conf_field(struct conf *c, size_t off)
{
	return (char *)c + off;
}

static const void *
conf_cfield(const struct conf *c, size_t off)
{
	return (const char *)c + off;
}

/* conf_unset - free a key's value and leave the field empty. */
static void
conf_unset(struct conf *c, const struct conf_key *k)
{
	void	*p = conf_field(c, k->off);

	switch (k->type) {
	case CONF_T_STR:
		free(*(char **)p);
		*(char **)p = NULL;
		break;
	case CONF_T_DOMAINS:
	case CONF_T_STRINGS:
		conf_list_free(p);
		break;
	case CONF_T_ADDRS:
	case CONF_T_NETS:
		free(*(void **)p);
		*(void **)p = NULL;
		*(size_t *)conf_field(c, k->noff) = 0;
		break;
	default:
		break;
	}
}

/* conf_set_list - the list types: all items parse, or nothing changes. */
static int
conf_set_list(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysz)
{
	struct conf_list	 l;
	struct conf_addr	*addrs = NULL;
	struct conf_net		*nets = NULL;
	size_t			 i;

	conf_split(v, &l);
	for (i = 0; i < l.n; i++) {
		switch (k->type) {
		case CONF_T_DOMAINS:
			if (!conf_domain_ok(l.v[i])) {
				(void)bsnprintf(why, whysz,
				    "bad domain \"%.80s\"", l.v[i]);
				goto fail;
			}
			if (conf_domain_ascii(&l.v[i], why, whysz) == -1)
				goto fail;
			break;
		case CONF_T_ADDRS:
			if (addrs == NULL)
				addrs = xcalloc(l.n, sizeof(*addrs));
			/* A port is required: no key has an obvious one. */
			if (conf_parse_addr(l.v[i], 0, &addrs[i]) == -1) {
				(void)bsnprintf(why, whysz, "bad address "
				    "\"%.80s\" (want ip:port or [ipv6]:port)",
				    l.v[i]);
				goto fail;
			}
			break;
		case CONF_T_NETS:
			if (nets == NULL)
				nets = xcalloc(l.n, sizeof(*nets));
			if (conf_parse_net(l.v[i], &nets[i]) == -1) {
				(void)bsnprintf(why, whysz, "bad network "
				    "\"%.80s\" (want CIDR such as 127.0.0.0/8 "
				    "or ::1/128, no host bits)", l.v[i]);
				goto fail;
			}
			break;
		default:
			break;
		}
	}

	conf_unset(c, k);
	switch (k->type) {
	case CONF_T_DOMAINS:
	case CONF_T_STRINGS:
		*(struct conf_list *)conf_field(c, k->off) = l;
		return 0;
	case CONF_T_ADDRS:
		*(struct conf_addr **)conf_field(c, k->off) = addrs;
		break;
	default:
		*(struct conf_net **)conf_field(c, k->off) = nets;
		break;
	}
	*(size_t *)conf_field(c, k->noff) = l.n;
	conf_list_free(&l);
	return 0;
fail:
	free(addrs);
	free(nets);
	conf_list_free(&l);
	return -1;
}

/* conf_enum_want - "none, may or encrypt", for messages. */
static void
conf_enum_want(const struct conf_key *k, char *buf, size_t bufsz)
{
	size_t	i;

	buf[0] = '\0';
	for (i = 0; k->names[i] != NULL; i++) {
		if (i > 0)
			(void)strl_cat(buf, k->names[i + 1] != NULL ? ", " :
			    " or ", bufsz);
		(void)strl_cat(buf, k->names[i], bufsz);
	}
}

/* conf_set - parse v as the value of key k; on error, why says why. */
static int
conf_set(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysz)
{
	void	*p = conf_field(c, k->off);
	char	 want[128];
	size_t	 i;

	switch (k->type) {
	case CONF_T_STR:
		conf_unset(c, k);
		if (*v != '\0')
			*(char **)p = xstrdup(v);
		return 0;
	case CONF_T_BOOL:
		if (conf_parse_bool(v, p) == 0)
			return 0;
		(void)bsnprintf(why, whysz, "bad value \"%.80s\" (want yes, "
		    "no, true, false, on, off, 1 or 0)", v);
		return -1;
	case CONF_T_INT:
		if (conf_parse_int(v, k->min, k->max, p) == 0)
			return 0;
		(void)bsnprintf(why, whysz, "bad value \"%.80s\" (want an "
		    "integer from %d to %d)", v, k->min, k->max);
		return -1;
	case CONF_T_DURATION:
		if (conf_parse_duration(v, p) == 0)
			return 0;
		(void)bsnprintf(why, whysz, "bad value \"%.80s\" (want a "
		    "duration such as 90, 30s, 5m, 2h or 1d)", v);
		return -1;
	case CONF_T_SIZE:
		if (conf_parse_size(v, p) == 0)
			return 0;
		(void)bsnprintf(why, whysz, "bad value \"%.80s\" (want a "
		    "size such as 1000, 10k, 50m or 1g)", v);
		return -1;
	case CONF_T_ENUM:
		for (i = 0; k->names[i] != NULL; i++) {
			if (strcasecmp(v, k->names[i]) == 0) {
				*(int *)p = (int)i;
				return 0;
			}
		}
		conf_enum_want(k, want, sizeof(want));
		(void)bsnprintf(why, whysz, "bad value \"%.80s\" (want %s)", v,
		    want);
		return -1;
	default:
		return conf_set_list(c, k, v, why, whysz);
	}
}

static const struct conf_key *
conf_find(const char *name)
{
	size_t	i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_table[i].name, name) == 0)
			return &conf_table[i];
	return NULL;
}

/* conf_defaults - a conf holding every default, parsed from the table. */
static struct conf *
conf_defaults(void)
{
	struct conf	*c;
	char		 why[CONF_WHY];
	size_t		 i;

	c = xcalloc(1, sizeof(*c));
	for (i = 0; i < CONF_NKEYS; i++)
		if (conf_set(c, &conf_table[i], conf_table[i].def, why,
		    sizeof(why)) == -1)
			log_panic("%s: default for %s: %s", __func__,
			    conf_table[i].name, why);
	return c;
}

/* What conf_line needs besides the line. */
struct conf_read {
	struct conf	*c;
	int		*seen;
};

/*
 * conf_line - one line of the file (a linefile_fn: the comment and the
 * white space around it are gone). seen[] holds, per key, the line that
 * set it (0: still the default), for the duplicate check and messages.
 */
static int
conf_line(void *arg, char *line, size_t len, int lineno, char *why,
    size_t whysz)
{
	struct conf_read	*r = arg;
	const struct conf_key	*k;
	char			*eq, *key, *val;
	char			 vwhy[CONF_WHY];
	size_t			 idx;

	(void)len;
	if ((eq = strchr(line, '=')) == NULL) {
		conf_err(why, whysz, "%.*s: missing '=' (want key = value)",
		    (int)strcspn(line, CONF_WS), line);
		return -1;
	}
	*eq = '\0';
	key = conf_trim(line);
	val = conf_trim(eq + 1);
	if (*key == '\0') {
		conf_err(why, whysz, "missing key before '='");
		return -1;
	}
	if ((k = conf_find(key)) == NULL) {
		conf_err(why, whysz, "%s: unknown key", key);
		return -1;
	}
	idx = (size_t)(k - conf_table);
	if (r->seen[idx] != 0) {
		conf_err(why, whysz, "%s: duplicate key (first set on line "
		    "%d)", key, r->seen[idx]);
		return -1;
	}
	r->seen[idx] = lineno;
	if (conf_set(r->c, k, val, vwhy, sizeof(vwhy)) == -1) {
		conf_err(why, whysz, "%s: %s", key, vwhy);
		return -1;
	}
	return 0;
}

static int
conf_read(struct conf *c, const char *file, int *seen, char *err,
    size_t errsz)
{
	struct conf_read	r = { c, seen };

	return linefile_read(file, conf_line, &r, err, errsz);
}

/* conf_check - rules that tie keys together, after the whole file. */
static int
conf_check(const struct conf *c, const int *seen, char *err, size_t errsz)
{
	const struct conf_key	*kmin, *kmax;
	int			 line;

	if (c->min_backoff <= c->max_backoff)
		return 0;
	kmin = conf_find("min_backoff");
	kmax = conf_find("max_backoff");
	line = seen[kmax - conf_table];
	if (seen[kmin - conf_table] > line)
		line = seen[kmin - conf_table];
	conf_err(err, errsz, "%s:%d: max_backoff: %llds is less than "
	    "min_backoff (%llds)", c->file != NULL ? c->file : "(defaults)",
	    line, (long long)c->max_backoff, (long long)c->min_backoff);
	return -1;
}

/*
 * conf_hostname - fill myhostname from gethostname() when unset. A name
 * without a dot is kept anyway: refusing to start over it helps nobody,
 * and `postern check` can warn.
 */
static int
conf_hostname(struct conf *c, char *err, size_t errsz)
{
	char	name[256];

	if (c->myhostname != NULL)
		return 0;
	if (gethostname(name, sizeof(name)) == -1) {
		conf_err(err, errsz, "%s: myhostname: gethostname: %s",
		    c->file != NULL ? c->file : "(defaults)", strerror(errno));
		return -1;
	}
	/* POSIX lets gethostname() cut the name without a NUL. */
	name[sizeof(name) - 1] = '\0';
	if (name[0] == '\0') {
		conf_err(err, errsz, "%s: myhostname: the system has no "
		    "host name; set myhostname",
		    c->file != NULL ? c->file : "(defaults)");
		return -1;
	}
	c->myhostname = xstrdup(name);
	return 0;
}

/*
 * conf_hostname_ascii - myhostname in A-labels. It names us in the
 * greeting, EHLO (which stays ASCII, RFC 6531 §3.7.1), Received, DSNs
 * and MX self-exclusion (MX hosts are A-labels in the DNS): a UTF-8
 * name is turned into A-labels once, here, and used so everywhere.
 */
static int
conf_hostname_ascii(struct conf *c, char *err, size_t errsz)
{
	char		 a[SMTP_DOMAIN_MAX + 1];
	const char	*why;

	if (!smtp_idn_has8(c->myhostname))
		return 0;
	if (smtp_idn_to_ascii(c->myhostname, a, sizeof(a), &why) != 0) {
		conf_err(err, errsz, "%s:%d: myhostname: bad domain \"%.80s\": "
		    "not a valid international domain name (%s)",
		    c->file != NULL ? c->file : "(defaults)",
		    c->lines != NULL ? c->lines[conf_find("myhostname") -
		    conf_table] : 0, c->myhostname, why);
		return -1;
	}
	free(c->myhostname);
	c->myhostname = xstrdup(a);
	return 0;
}

struct conf *
conf_load(const char *file, char *err, size_t errsz)
{
	struct conf	*c;
	int		 seen[CONF_NKEYS];

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	memset(seen, 0, sizeof(seen));
	c = conf_defaults();
	if (file != NULL) {
		c->file = xstrdup(file);
		if (conf_read(c, file, seen, err, errsz) == -1)
			goto fail;
	}
	if (conf_check(c, seen, err, errsz) == -1 ||
	    conf_hostname(c, err, errsz) == -1)
		goto fail;
	c->lines = xcalloc(CONF_NKEYS, sizeof(*c->lines));
	memcpy(c->lines, seen, sizeof(seen));
	if (conf_hostname_ascii(c, err, errsz) == -1)
		goto fail;
	return c;
fail:
	conf_free(c);
	return NULL;
}

void
conf_free(struct conf *c)
{
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < CONF_NKEYS; i++)
		conf_unset(c, &conf_table[i]);
	free(c->lines);
	free(c->file);
	free(c);
}

int
conf_key_line(const struct conf *c, const char *key)
{
	const struct conf_key	*k;

	if (c == NULL || c->lines == NULL || (k = conf_find(key)) == NULL)
		return 0;
	return c->lines[k - conf_table];
}

/*
 * conf_keys - filled from the table on the first call; every call writes
 * the same constant pointers, so there is nothing to go stale.
 */
const char *const *
conf_keys(void)
{
	static const char	*keys[CONF_NKEYS + 1];
	size_t			 i;

	if (keys[0] == NULL)
		for (i = 0; i < CONF_NKEYS; i++)
			keys[i] = conf_table[i].name;
	return keys;
}

static void
conf_dump_value(const struct conf *c, const struct conf_key *k,
    struct sbuf *out)
{
	const void		*p = conf_cfield(c, k->off);
	const struct conf_list	*l;
	const struct conf_addr	*a;
	const struct conf_net	*nets;
	char			 buf[INET6_ADDRSTRLEN + 8];
	size_t			 i, n;

	switch (k->type) {
	case CONF_T_STR:
		/* A token is a secret: say only that it is set. */
		if (*(char *const *)p != NULL && **(char *const *)p != '\0' &&
		    strstr(k->name, "_token") != NULL)
			sbuf_cat(out, "(set)");
		else if (*(char *const *)p != NULL)
			sbuf_cat(out, *(char *const *)p);
		break;
	case CONF_T_BOOL:
		sbuf_cat(out, *(const bool *)p ? "yes" : "no");
		break;
	case CONF_T_INT:
		sbuf_catf(out, "%d", *(const int *)p);
		break;
	case CONF_T_DURATION:
		sbuf_catf(out, "%llds", (long long)*(const time_t *)p);
		break;
	case CONF_T_SIZE:
		sbuf_catf(out, "%llu",
		    (unsigned long long)*(const uint64_t *)p);
		break;
	case CONF_T_ENUM:
		sbuf_cat(out, k->names[*(const int *)p]);
		break;
	case CONF_T_DOMAINS:
	case CONF_T_STRINGS:
		l = p;
		for (i = 0; i < l->n; i++)
			sbuf_catf(out, "%s%s", i > 0 ? " " : "", l->v[i]);
		break;
	case CONF_T_ADDRS:
		a = *(struct conf_addr *const *)p;
		n = *(const size_t *)conf_cfield(c, k->noff);
		for (i = 0; i < n; i++)
			sbuf_catf(out, "%s%s", i > 0 ? " " : "", a[i].text);
		break;
	case CONF_T_NETS:
		nets = *(struct conf_net *const *)p;
		n = *(const size_t *)conf_cfield(c, k->noff);
		for (i = 0; i < n; i++) {
			conf_net_fmt(&nets[i], buf, sizeof(buf));
			sbuf_catf(out, "%s%s", i > 0 ? " " : "", buf);
		}
		break;
	}
}

void
conf_dump(const struct conf *c, struct sbuf *out)
{
	size_t	i;

	for (i = 0; i < CONF_NKEYS; i++) {
		sbuf_catf(out, "%s = ", conf_table[i].name);
		conf_dump_value(c, &conf_table[i], out);
		sbuf_catc(out, '\n');
	}
}

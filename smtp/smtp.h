/*
 * smtp.h - what both ends of SMTP share, and the program-side basics.
 *
 * This folder owns the pieces every program links and the queue never
 * does: allocation that is fatal on OOM (xalloc.c), growable strings
 * (sbuf.c), bounded copies (strl.c), logging in the one line format
 * operators grep (log.c), the configuration file (conf.c), the one
 * reader of line-oriented files and its comment rule (linefile.c), the
 * clock (clock.c), the syntax of addresses and domains (smtp_addr.c), the
 * A-label form of international domains (smtp_idn.c) and
 * the event counters every daemon process shares (counters.c);
 * and what both SMTP ends use: the buffered connection over TCP/TLS
 * (smtp_conn.c), reply parsing (smtp_reply.c), dot-stuffing (smtp_dot.c),
 * base64 (smtp_b64.c) and users_file with server-side SASL (smtp_auth.c).
 *
 * Data flow: a program calls conf_load() once (and again on SIGHUP), then
 * log_init() with its role; everything it reads from a peer goes through
 * smtp_addr_parse() and friends before it reaches the queue.
 *
 * Errors: functions return 0 or a negative code; programs decide what to
 * do with it. Only fatal(), xmalloc() and friends end the process.
 */
#ifndef SMTP_H
#define SMTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* xalloc.c - allocation that ends the process on OOM. */

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

/* ------------------------------------------------------------------ */
/* sbuf.c - growable byte strings; always NUL-terminated. */

struct sbuf {
	char	*s;
	size_t	 len;
	size_t	 cap;
};

struct sbuf *sbuf_new(void);
/* sbuf_free - free and return NULL, so that p = sbuf_free(p). NULL is fine. */
struct sbuf *sbuf_free(struct sbuf *);
void	 sbuf_reset(struct sbuf *);
void	 sbuf_catn(struct sbuf *, const void *, size_t);
void	 sbuf_cat(struct sbuf *, const char *);
void	 sbuf_catc(struct sbuf *, int);
void	 sbuf_catf(struct sbuf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 sbuf_vcatf(struct sbuf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* sbuf_json_str - append s as a JSON string literal, quotes included:
 * always valid JSON. What strl_cp_shown() refuses is written \uXXXX, and
 * a byte that is not part of well-formed UTF-8 as \u00XX (the character
 * Latin-1 has there). */
void	 sbuf_json_str(struct sbuf *, const char *);
/* sbuf_esc_str - append s escaped by strl_esc_unit() with these flags. */
void	 sbuf_esc_str(struct sbuf *, const char *, int flags);
#define sbuf_str(b)	((b)->s)
#define sbuf_len(b)	((b)->len)

/* ------------------------------------------------------------------ */
/* strl.c - bounded copies; they return false when the result was cut. */

bool	strl_copy(char *, const char *, size_t);
bool	strl_cat(char *, const char *, size_t);
bool	bsnprintf(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
/* strl_lower - lower-case ASCII letters in place; returns its argument. */
char	*strl_lower(char *);
/* strl_clean - copy peer text for a log line: CR, LF and control bytes
 * become spaces, at most `max` bytes are kept. Returns dst. */
char	*strl_clean(char *dst, size_t dstsz, const char *src, size_t max);

/*
 * strl_esc_unit - the escaped form of the character at s (n > 0 bytes)
 * for a log line or a terminal: LF, CR, TAB and backslash become \n \r
 * \t \\; other bytes below 0x20, DEL, each byte that is not part of
 * well-formed UTF-8, and each byte of a code point strl_cp_shown() refuses
 * become \xHH (lower-case hex). Well-formed UTF-8 is kept. Flags:
 * STRL_ESC_COMMA also escapes ',' (a key=value field), STRL_ESC_GT '>'
 * (STRL_ESC_ADDR both: an address written inside <>), STRL_ESC_TAB keeps
 * TAB. Writes at most STRL_ESC_UNIT_MAX bytes to out (no NUL), their
 * number to *outlen; returns how many bytes of s they stand for.
 */
#define STRL_ESC_COMMA		0x01
#define STRL_ESC_GT		0x02
#define STRL_ESC_ADDR		(STRL_ESC_COMMA | STRL_ESC_GT)
#define STRL_ESC_TAB		0x04
#define STRL_ESC_UNIT_MAX	16
size_t	strl_esc_unit(const char *s, size_t n, int flags, char *out,
	    size_t *outlen);
/* strl_esc - escape src (srclen bytes) into dst. Returns false when dst
 * was too small; the text is then cut between two escapes, never inside
 * one. dst is NUL-terminated when dstsz > 0. */
bool	strl_esc(char *dst, size_t dstsz, const char *src, size_t srclen,
	    int flags);
/* strl_cp_shown - may code point cp be printed as it is? Not the C0 and
 * C1 controls, DEL, the line and paragraph separators (U+2028, U+2029) or
 * the bidirectional overrides and isolates (U+202A..E, U+2066..9). */
bool	strl_cp_shown(uint32_t cp);

/* ------------------------------------------------------------------ */
/* clock.c - the time. Never fails, never blocks. */

/* clock_now - wall-clock seconds, for stored and shown times. */
time_t	 clock_now(void);
/* clock_wall_ms - wall-clock milliseconds: compared with clock_mono_ms it
 * shows the wall clock being stepped (date -s, NTP), which timers must
 * survive. */
int64_t	 clock_wall_ms(void);
/* clock_mono_ns, _ms, _secs - the monotonic clock, for timeouts and
 * durations. */
int64_t	 clock_mono_ns(void);
int64_t	 clock_mono_ms(void);
double	 clock_mono_secs(void);
/* clock_advance - move both clocks forward by ns: a seam for unit tests,
 * never called by the programs. */
void	 clock_advance(int64_t ns);

/* ------------------------------------------------------------------ */
/*
 * linefile.c - the one reader of line-oriented files: postern.conf,
 * routes_file, users_file, relayhost_auth_file, relay_recipients. One
 * rule for all of them:
 *
 *	- A line ends at LF; a CR before the LF is dropped, and the last
 *	  line may lack its LF.
 *	- '#' at the start of a line or after white space (space, tab, CR,
 *	  VT, FF) starts a comment that runs to the end of the line. A '#'
 *	  inside a word is text, so a password or hash holding '#'
 *	  survives ("pass#word" is kept, "pass #word" is "pass").
 *	- White space at both ends of a line is dropped; a line left empty
 *	  (blank, or only a comment) is skipped.
 *	- A NUL byte, or a line of more than LINEFILE_LINE_MAX octets
 *	  (without its line end), is an error "file:line: why": never cut,
 *	  never skipped.
 */
#define LINEFILE_LINE_MAX	65536

/* linefile_fn - one line that has text: NUL-terminated, len > 0 octets,
 * the caller may change it, valid only during the call. Returns 0, or -1
 * with the reason in why ("file:line: " goes in front of it). */
typedef int linefile_fn(void *arg, char *line, size_t len, int lineno,
    char *why, size_t whysz);
/* linefile_read - call fn for each line of file that has text, in order.
 * 0, or -1 with "file: why" (cannot open or read) or "file:line: why" (a
 * NUL byte, a line too long, or fn's error) in err (NULL is fine). The
 * buffers that held the text are wiped: it may be a password. */
int	 linefile_read(const char *file, linefile_fn *fn, void *arg,
	    char *err, size_t errsz);

/* ------------------------------------------------------------------ */
/* log.c - one line per event: "postern/<role>[pid]: <qid>: k=v, ...". */

enum log_dest {
	LOG_DEST_STDERR,
	LOG_DEST_SYSLOG,
	LOG_DEST_NONE,		/* tools run from a terminal: quiet */
};

/* log_init - name the process ("queue", "smtpd", "runner", ...) and choose
 * where lines go. May be called again (after fork, or on reload). */
void	log_init(const char *role, enum log_dest);
/* log_vformat - vsnprintf into dst, with what each conversion writes
 * escaped (strl_esc_unit; STRL_ESC_ADDR right after '<', STRL_ESC_COMMA
 * right after '='): what log lines are made of, for messages that
 * carry peer or user text elsewhere too. Cut between escapes at dstsz. */
#define LOG_LINE_MAX	4096
void	log_vformat(char *dst, size_t dstsz, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));
const char *log_role(void);
/* log_tty_clear - with on, each line to standard error first erases the
 * terminal line it starts on ("\r" ESC "[K"): a progress line drawn there
 * (`postern run` on a terminal) gives way, and is drawn again below.
 * Inherited across fork (the workers' lines do it too). */
void	log_tty_clear(bool on);
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_info_as - one line under another role's name ("bounce": a DSN
 * logged by the runner that sent it, as Postfix's bounce daemon would). */
void	log_info_as(const char *role, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* log_warn - appends ": strerror(errno)". */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_panic(const char *, ...) __attribute__((format(printf, 1, 2),
	    noreturn));
/* fatal - for start-up and configuration errors only: logs, exits 1. */
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2),
	    noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2),
	    noreturn));

/* ------------------------------------------------------------------ */
/* conf.c - the configuration file: "key = value", '#' comments. */

/* Relative in a build tree (make run finds etc/postern.conf); `make
 * install` compiles the two mains with the installed path instead. */
#ifndef CONF_DEFAULT_FILE
#define CONF_DEFAULT_FILE	"etc/postern.conf"
#endif

/* A network in CIDR form, IPv4 or IPv6 (v4 stored as v4-mapped v6). */
struct conf_net {
	uint8_t	 addr[16];
	int	 prefix;		/* 0..128, in the v6 sense */
};

/* A listening or connecting address: 127.0.0.1:2525, [::1]:2525. */
struct conf_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 text[64];	/* as written, normalised */
};

/* A list of strings, each and the array malloc'd: conf_list_free(). */
struct conf_list {
	char	**v;
	size_t	  n;
};

/* bounce_return: what a DSN returns when the sender gave no RET. */
enum conf_bounce_return {
	CONF_BOUNCE_HEADERS,
	CONF_BOUNCE_FULL,
};

enum conf_tls {
	CONF_TLS_NONE,
	CONF_TLS_MAY,
	CONF_TLS_ENCRYPT,
	CONF_TLS_DANE,
};

struct conf {
	char			*file;		/* NULL: embedded defaults only */
	int			*lines;		/* per key: the line that set it */
	char			*myhostname;
	struct conf_list	 my_names;
	char			*queue_dir;
	uint64_t		 queue_map_size;
	struct conf_addr	*listen;
	size_t			 nlisten;
	struct conf_addr	*odmr_listen;
	size_t			 nodmr_listen;
	struct conf_list	 relay_domains;
	struct conf_list	 hold_domains;
	struct conf_net		*mynetworks;
	size_t			 nmynetworks;
	char			*users_file;
	char			*routes_file;
	char			*relay_recipients;
	char			*relayhost;
	char			*relayhost_auth_file;
	struct conf_list	 dns_servers;
	int			 smtp_port;
	char			*tls_cert_file;
	char			*tls_key_file;
	char			*tls_ca_file;
	enum conf_tls		 smtp_tls;
	bool			 smtp_mta_sts;	/* RFC 8461 (route_sts.c) */
	char			*smtp_mta_sts_ca_file;	/* its HTTPS; NULL:
						 * the system's store */
	bool			 auth_plaintext;
	time_t			 auth_failure_delay;
	int			 auth_failure_limit;
	time_t			 auth_failure_window;
	int			 workers;
	int			 dest_concurrency;
	time_t			 min_backoff;
	time_t			 max_backoff;
	time_t			 max_queue_lifetime;
	time_t			 hold_lifetime;
	char			*site_notify_command;	/* NULL: off */
	int			 site_notify_threshold;	/* messages; 0: off */
	time_t			 site_notify_age;	/* 0: off */
	time_t			 site_notify_interval;
	time_t			 site_notify_timeout;
	time_t			 delay_warning;
	int			 max_delay_warnings;
	enum conf_bounce_return	 bounce_return;	/* when RET is absent */
	uint64_t		 bounce_size_limit;
	char			*double_bounce_recipient; /* NULL: none;
							   * bare: @myhostname */
	int			 bounce_rate_limit; /* per return path, hour */
	time_t			 lease_time;
	time_t			 connection_reuse_time;
	time_t			 smtp_connect_timeout;
	time_t			 smtp_command_timeout;
	time_t			 smtp_data_timeout;
	time_t			 smtp_dot_timeout;
	uint64_t		 smtp_bdat_min_size;
	uint64_t		 message_size_limit;
	int			 max_recipients;
	int			 max_connections;
	int			 max_connections_per_ip;
	int			 max_errors;
	int			 junk_command_limit;
	int			 max_received_headers;
	int			 line_length_limit;
	int			 command_length_limit;
	time_t			 command_timeout;
	time_t			 data_timeout;	/* the whole DATA */
	time_t			 stress_timeout; /* near max_connections */
	char			*etrn_policy;
	struct conf_list	 etrn_queues;	/* "NAME:DOMAIN[:DOMAIN...]" */
	time_t			 etrn_min_interval;
	bool			 turn_enable;
	struct conf_addr	*metrics_listen;
	size_t			 nmetrics_listen;
	int			 metrics_top_domains;
	char			*metrics_token;
	char			*status_token;
	enum log_dest		 log;
	char			*user;
};

/* conf_load - read `file` (NULL: embedded defaults only) into a new conf.
 * On error returns NULL and writes "file:line: key: why" into err. */
struct conf *conf_load(const char *file, char *err, size_t errsz);
void	 conf_free(struct conf *);
/* conf_key_line - the line of the file that set key, 0 if it kept its
 * default (or is no key); for messages that name where a value came
 * from, as conf_load's own do. */
int	 conf_key_line(const struct conf *, const char *key);
/* conf_keys - the names of every key, NULL-terminated (for docs, tests). */
const char *const *conf_keys(void);
/* conf_dump - print every key and its value as "key = value" lines. */
void	 conf_dump(const struct conf *, struct sbuf *);

/* Value parsers, shared with the command line; 0 or -1. */
int	conf_parse_duration(const char *, time_t *);
int	conf_parse_size(const char *, uint64_t *);
int	conf_parse_net(const char *, struct conf_net *);
int	conf_parse_addr(const char *, int defport, struct conf_addr *);
/* conf_net_match - is the address (sockaddr v4 or v6) inside one of the
 * networks? */
bool	conf_net_match(const struct conf_net *, size_t,
	    const struct sockaddr *);
/* conf_list_free - free each string and the array; the list is then
 * empty ({ NULL, 0 }) and may be filled again. NULL is fine. */
void	conf_list_free(struct conf_list *);
/* conf_domain_in - is domain (any case) in the list? A list entry
 * ".example.org" matches every subdomain of example.org. */
bool	conf_domain_in(const struct conf_list *, const char *domain);

/* ------------------------------------------------------------------ */
/* smtp_addr.c - RFC 5321 §4.1.2 mailbox and domain syntax. */

#define SMTP_LOCAL_MAX		64	/* RFC 5321 §4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* §4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* §4.5.3.1.3, with the < > */

enum {
	SMTP_ADDR_UTF8		= 0x01,	/* SMTPUTF8: UTF-8 local part, U-labels */
	SMTP_ADDR_NULL_OK	= 0x02,	/* "<>" is accepted (reverse-path) */
	SMTP_ADDR_BARE_OK	= 0x04,	/* angle brackets optional (tools) */
	SMTP_ADDR_POSTMASTER_OK	= 0x08,	/* "<Postmaster>" with no domain */
};

enum {
	SMTP_ADDR_OK		= 0,
	SMTP_ADDR_E_SYNTAX	= -1,	/* not a path at all */
	SMTP_ADDR_E_LOCAL	= -2,	/* bad local part */
	SMTP_ADDR_E_DOMAIN	= -3,	/* bad domain or address literal */
	SMTP_ADDR_E_LONG	= -4,	/* over a §4.5.3.1 limit */
	SMTP_ADDR_E_UTF8	= -5,	/* 8-bit without SMTP_ADDR_UTF8, or bad UTF-8 */
	SMTP_ADDR_E_NULL	= -6,	/* "<>" where it is not allowed */
};

struct smtp_addr {
	char	addr[SMTP_PATH_MAX + 1];	/* local@domain; "" for <> */
	size_t	local_len;		/* bytes of the local part in addr */
	bool	utf8;			/* has bytes >= 0x80 */
};

/*
 * smtp_addr_parse - parse a path at s (len bytes, not NUL-terminated
 * necessarily): "<" [A-d-l ":"] Mailbox ">" (source route accepted and
 * dropped, RFC 5321 §4.1.2, App. F.2), "<>" with SMTP_ADDR_NULL_OK, or a
 * bare mailbox with SMTP_ADDR_BARE_OK. The local part is kept exactly as
 * sent (case and quoting preserved). On success *end (if not NULL) points
 * just past the path, so the caller can parse ESMTP parameters after it.
 * Returns SMTP_ADDR_OK or a negative SMTP_ADDR_E_* code.
 */
int	smtp_addr_parse(const char *s, size_t len, int flags,
	    struct smtp_addr *out, const char **end);
const char *smtp_addr_strerror(int);
/* smtp_addr_domain - the domain part of a parsed address ("" for <>). */
const char *smtp_addr_domain(const struct smtp_addr *);
/*
 * smtp_domain_valid - is d (NUL-terminated) a domain per RFC 5321 §4.1.2
 * (LDH labels, no leading/trailing hyphen, label <= 63, total <= 255), or,
 * with SMTP_ADDR_UTF8, a domain whose labels may also be UTF-8 (U-labels,
 * valid UTF-8 only)? Address literals are not domains here.
 */
bool	smtp_domain_valid(const char *d, int flags);
/* smtp_addr_literal_valid - "[192.0.2.1]" or "[IPv6:...]". */
bool	smtp_addr_literal_valid(const char *lit, size_t len);
/* smtp_addr_utf8_len - the length of the well-formed UTF-8 sequence at p
 * (n bytes available; RFC 3629: no overlongs, surrogates or code points
 * past U+10FFFF), its code point in *cp; 0 when ill-formed or n is 0. */
size_t	smtp_addr_utf8_len(const unsigned char *p, size_t n,
	    uint32_t *cp);

/* ------------------------------------------------------------------ */
/*
 * smtp_idn.c - international domain names (RFC 5890, RFC 5891): the form
 * DNS and every comparison of domains use. A domain in UTF-8 (U-labels)
 * becomes its A-labels ("bücher.test" -> "xn--bcher-kva.test") by
 * libidn2's IDNA2008 lookup with the UTS #46 non-transitional mapping
 * (as Postfix's smtputf8 support maps); an ASCII domain is only
 * lower-cased. Two domains are the same when these forms are equal.
 * Nothing here allocates for the caller, logs or blocks.
 */
#define SMTP_IDN_IN_MAX		1024	/* octets of UTF-8 taken */

enum {
	SMTP_IDN_OK		= 0,
	SMTP_IDN_E_UTF8		= -1,	/* not well-formed UTF-8 */
	SMTP_IDN_E_IDNA		= -2,	/* libidn2 refused it (a disallowed
					 * code point, a bad label...) */
	SMTP_IDN_E_LONG		= -3,	/* over SMTP_DOMAIN_MAX octets as
					 * A-labels, a label over 63, or
					 * more than outsz */
	SMTP_IDN_E_SYNTAX	= -4,	/* no domain (smtp_idn_domain) */
};

/* smtp_idn_has8 - does s hold an octet >= 0x80? NULL: false. */
bool	smtp_idn_has8(const char *s);
/*
 * smtp_idn_to_ascii - domain (NUL-terminated, no address literal, no
 * leading dot) into out as lower-case A-labels, at most SMTP_DOMAIN_MAX
 * octets; out needs SMTP_DOMAIN_MAX + 1 to hold any. Returns SMTP_IDN_OK,
 * or a negative SMTP_IDN_E_* code with out "" and *why (when why is not
 * NULL) a static reason fit for a reply or a log ("not valid UTF-8",
 * libidn2's own words...).
 */
int	smtp_idn_to_ascii(const char *domain, char *out, size_t outsz,
	    const char **why);
/* smtp_idn_addr_ascii - addr (local@domain, or a bare name) with its
 * domain as smtp_idn_to_ascii() makes it and the local part untouched;
 * an address without 8-bit in its domain is copied as it is. Codes as
 * smtp_idn_to_ascii(). */
int	smtp_idn_addr_ascii(const char *addr, char *out, size_t outsz,
	    const char **why);
/* smtp_idn_local_has8 - does addr's local part (before its last '@')
 * hold an octet >= 0x80, i.e. need SMTPUTF8 whatever its domain? */
bool	smtp_idn_local_has8(const char *addr);
/* smtp_idn_domain - a domain as a list or a command names it (an
 * optional leading dot for "its subdomains", then RFC 5321 §4.1.2 syntax
 * with U-labels allowed) into out in smtp_idn_to_ascii()'s form, the dot
 * kept: what users_file, the ETRN policy and queues, ETRN and ATRN
 * arguments are stored and compared as. Codes as smtp_idn_to_ascii(),
 * or SMTP_IDN_E_SYNTAX. */
int	smtp_idn_domain(const char *in, char *out, size_t outsz,
	    const char **why);
/* smtp_idn_eq - do two domains, in either form and any case, name the
 * same? A domain that cannot be converted equals nothing. */
bool	smtp_idn_eq(const char *a, const char *b);

/* ------------------------------------------------------------------ */
/* smtp_conn.c - a buffered, non-blocking connection, plain or TLS.
 *
 * Input is read into `in` (unread bytes from in->s + inoff); output is
 * queued in `out` and written by smtp_conn_flush(). With TLS the same
 * calls go through OpenSSL; `want_write` says a read or handshake needs
 * the socket to be writable (for the event loop's interest set). Nothing
 * here blocks; smtp_conn_wait() is for callers that want to.
 */

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

struct smtp_conn {
	int		 fd;
	SSL		*ssl;
	struct sbuf	*in;
	size_t		 inoff;
	struct sbuf	*out;
	size_t		 outoff;
	bool		 eof;		/* peer closed, or a fatal error */
	bool		 want_write;	/* TLS wants the socket writable */
	char		 tls_info[96];	/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
};

struct smtp_conn *smtp_conn_new(int fd);
/* smtp_conn_free - close the socket (after a TLS close_notify attempt). */
void	 smtp_conn_free(struct smtp_conn *);
/* smtp_conn_fill - read what is there, up to `room` unread bytes in all.
 * Returns bytes read (> 0), 0 when nothing is there now, -1 on EOF or
 * error (conn->eof is set). */
ssize_t	 smtp_conn_fill(struct smtp_conn *, size_t room);
/* smtp_conn_flush - write queued output: 1 all written, 0 some left (wait
 * for writable), -1 error. */
int	 smtp_conn_flush(struct smtp_conn *);
#define smtp_conn_avail(c)	((c)->in->len - (c)->inoff)
#define smtp_conn_data(c)	((c)->in->s + (c)->inoff)
void	 smtp_conn_consume(struct smtp_conn *, size_t);
/* smtp_conn_discard - drop every unread byte (plaintext before TLS). */
size_t	 smtp_conn_discard(struct smtp_conn *);
/* smtp_conn_pending - unread bytes, ours and OpenSSL's. */
size_t	 smtp_conn_pending(const struct smtp_conn *);
/* smtp_conn_tls_start - begin TLS on the connection; then call
 * smtp_conn_handshake until it returns 1 (done), 0 (again when the
 * socket is ready) or -1 (failed; the reason was logged at debug). */
int	 smtp_conn_tls_start(struct smtp_conn *, SSL_CTX *, bool server,
	    const char *sni);
int	 smtp_conn_handshake(struct smtp_conn *);
/* smtp_conn_wait - poll for readable (and writable when output or TLS
 * wants it) up to timeout_ms; 1 ready, 0 timeout, -1 error. */
int	 smtp_conn_wait(struct smtp_conn *, bool rd, int timeout_ms);
/* smtp_tls_server_ctx - the server context from tls_cert_file and
 * tls_key_file; NULL with a reason in err. */
SSL_CTX	*smtp_tls_server_ctx(const struct conf *, char *err, size_t errsz);
/* smtp_tls_client_ctx - a client context (TLS 1.2 or later, no
 * renegotiation) with the CA certificates of ca_file ("": the system's
 * store; NULL: none, for a context that checks nobody) loaded for
 * checking servers; the caller sets the verify mode. NULL with a reason in err ("FILE: why"). For the delivery client
 * and for `postern check`, so that both load tls_ca_file the same way. */
SSL_CTX	*smtp_tls_client_ctx(const char *ca_file, char *err,
	    size_t errsz);

/* ------------------------------------------------------------------ */
/* smtp_reply.c - reading an SMTP reply (RFC 5321 §4.2), client side.
 *
 * The reader is fed what has arrived and never waits: the caller owns
 * the connection and the timeouts. A reply is its code, the enhanced
 * status code of the same class when the first line has one (RFC 2034),
 * and the text of all its lines joined by spaces, code first, with CR, LF
 * and control bytes made spaces and cut at SMTP_REPLY_TEXT_MAX: fit for a
 * log line and a DSN. Nothing here allocates.
 */

#define SMTP_REPLY_LINE_MAX	512	/* a line is cut here (§4.5.3.1.5) */
#define SMTP_REPLY_LINES	100	/* lines in one reply, at most */
#define SMTP_REPLY_JUNK_MAX	65536	/* bytes cut from long lines */
#define SMTP_REPLY_TEXT_MAX	400	/* = QUEUE_REPLY_MAX */

enum {
	SMTP_REPLY_E_SYNTAX	= -1,	/* a line that is no reply line */
	SMTP_REPLY_E_LONG	= -2,	/* over SMTP_REPLY_JUNK_MAX cut */
	SMTP_REPLY_E_LINES	= -3,	/* SMTP_REPLY_LINES lines, no end */
};

struct smtp_reply {
	int	code;			/* 200..599 */
	char	status[16];		/* "x.y.z", or "" */
	char	text[SMTP_REPLY_TEXT_MAX + 1];	/* cleaned, code first */
};

/* The reader's state for one reply; the caller's, on its stack. */
struct smtp_reply_reader {
	char	line[SMTP_REPLY_LINE_MAX + 1];	/* the last line taken */
	size_t	llen;
	char	text[SMTP_REPLY_TEXT_MAX + 64];	/* raw, joined */
	size_t	nlines;
	size_t	junk;
	bool	skipping;		/* inside an over-long line */
};

/* smtp_reply_begin - start reading a new reply into r. */
void	 smtp_reply_begin(struct smtp_reply_reader *, struct smtp_reply *);
/*
 * smtp_reply_feed - take reply lines from the avail bytes at p; *used
 * says how many were taken (the caller drops them from its buffer).
 * Returns 1 when the reply is complete (r is filled), 0 when it needs
 * more input, or a negative SMTP_REPLY_E_* code; after SMTP_REPLY_E_SYNTAX
 * the reader's `line` is the offending line (raw peer bytes, to be
 * cleaned before it is shown). With `lines`, each line's text after
 * "250-" is appended there with a '\n', for the EHLO keywords.
 */
int	 smtp_reply_feed(struct smtp_reply_reader *, struct smtp_reply *,
	    const char *p, size_t avail, size_t *used, struct sbuf *lines);
/* smtp_reply_enhanced - "x.y.z" at the start of s (class 2, 4 or 5, each
 * part 1-3 digits, then a space or the end) into out; its length, or 0. */
size_t	 smtp_reply_enhanced(const char *s, char out[16]);
/* smtp_reply_status - the x.y.z for a reply: its own when it has one,
 * else one by class (RFC 3463 §3.1: X.0.0); 421 without one is 4.4.2,
 * the connection is going away. */
void	 smtp_reply_status(const struct smtp_reply *, char status[16]);

/* ------------------------------------------------------------------ */
/* smtp_dot.c - the message as DATA sends it (RFC 5321 §4.5.2), or BDAT.
 *
 * smtp_dot_stuff() appends a piece of the stored message (CRLF lines;
 * pieces may split lines anywhere) with a '.' doubled at the start of a
 * line, and a bare CR or LF sent as a space, so that nothing in the
 * message can end the data early (SMTP smuggling). smtp_dot_end() ends
 * the last line if it is open and appends the final ".\r\n": together
 * CRLF.CRLF. With nothing stuffed, smtp_dot_end() writes a lone ".\r\n".
 */

struct smtp_dot {
	bool	bol;			/* at the start of a line */
	bool	cr;			/* a CR seen and not written yet */
};

void	 smtp_dot_begin(struct smtp_dot *);
void	 smtp_dot_stuff(struct smtp_dot *, struct sbuf *out, const char *p,
	    size_t len);
void	 smtp_dot_end(struct smtp_dot *, struct sbuf *out);
/* The same for BDAT (RFC 3030), which has no stuffing and no end marker:
 * smtp_dot_plain() appends a piece with a bare CR or LF as a space (the
 * length stays that of the piece, but for a CR held back at its end
 * until the next octet shows whether an LF follows), smtp_dot_close()
 * ends the last line with CRLF if it is open (a held CR: a space). */
void	 smtp_dot_plain(struct smtp_dot *, struct sbuf *out, const char *p,
	    size_t len);
void	 smtp_dot_close(struct smtp_dot *, struct sbuf *out);

/* ------------------------------------------------------------------ */
/* smtp_b64.c - base64 (RFC 4648), strict as RFC 4954 §4 wants. */

/* smtp_b64_decode - append the decoded bytes to out; -1 (out unchanged in
 * length) on any character outside the alphabet, bad padding or length. */
int	smtp_b64_decode(const char *in, size_t len, struct sbuf *out);
void	smtp_b64_encode(const void *in, size_t len, struct sbuf *out);

/* ------------------------------------------------------------------ */
/* smtp_auth.c - users_file and the server side of SASL (RFC 4954).
 *
 * users_file lines are USER:SECRETS:DOMAINS; comments and blank lines
 * as linefile.c says. SECRETS is either a bare crypt(3) hash (PLAIN/LOGIN
 * only) or ';'-separated tagged secrets: {CRYPT}hash (PLAIN, LOGIN), {CRAM-MD5}
 * 64 hex digits (the HMAC-MD5 inner and outer MD5 states after the key
 * block, as Dovecot stores them: no plaintext password), and
 * {SCRAM-SHA-256}base64(salt),iterations,base64(StoredKey),
 * base64(ServerKey) (RFC 5802 §3). DOMAINS is a comma list of the domains
 * the user may pull (ETRN to caller, ATRN, TURN). No password is stored in
 * the clear; secrets in memory are wiped when freed.
 */

struct auth_db;
struct auth_user;

#define AUTH_USER_MAX	64	/* octets in a users_file user name */
#define AUTH_PASS_MAX	256	/* PLAIN/LOGIN: sha512crypt's cost grows
				   with it */

/* auth_user_name_ok - the users_file rule for a user name (len octets):
 * 1..AUTH_USER_MAX octets 0x21..0x7e other than ':', not starting with
 * '#' (that line would be a comment). For auth_db_load() and `postern
 * passwd` alike. */
bool	 auth_user_name_ok(const char *s, size_t len);

enum auth_mech {
	AUTH_MECH_PLAIN,
	AUTH_MECH_LOGIN,
	AUTH_MECH_CRAM_MD5,
	AUTH_MECH_SCRAM_SHA256,
};

enum {
	AUTH_CONTINUE	= 1,	/* send the challenge, feed the next line */
	AUTH_OK		= 0,	/* authenticated: auth_sasl_user() */
	AUTH_FAIL	= -1,	/* bad credentials (535 5.7.8) */
	AUTH_BADPROTO	= -2,	/* malformed exchange (501 5.5.2) */
};

/*
 * auth_db_load - read users_file; NULL and "file:line: why" in err. The
 * db is reference-counted (one thread only): the caller holds the first
 * reference, every auth_sasl_new() takes one more and auth_sasl_free()
 * drops it, so a db dropped on reload while exchanges are under way lives
 * until the last of them ends.
 */
struct auth_db *auth_db_load(const char *file, char *err, size_t errsz);
/* auth_db_free - drop a reference; the last one frees (secrets wiped). */
void	 auth_db_free(struct auth_db *);
const struct auth_user *auth_db_find(const struct auth_db *, const char *);
const char *auth_user_name(const struct auth_user *);
/* auth_user_domains - the domains the user may pull. */
const struct conf_list *auth_user_domains(const struct auth_user *);
bool	 auth_user_owns(const struct auth_user *, const char *domain);
/* auth_user_has - can this user authenticate with this mechanism? */
bool	 auth_user_has(const struct auth_user *, enum auth_mech);

/* auth_mech_parse - "PLAIN" (any case) etc. to enum auth_mech, or -1. */
int	 auth_mech_parse(const char *);
const char *auth_mech_name(enum auth_mech);

/*
 * One SASL exchange, server side. auth_sasl_step() takes the client's
 * decoded response (have_in false for "no initial response") and returns
 * AUTH_CONTINUE with the raw challenge in `challenge` (the caller base64s
 * it), AUTH_OK, AUTH_FAIL or AUTH_BADPROTO. `hostname` goes into the
 * CRAM-MD5 challenge. The exchange never blocks.
 */
struct auth_sasl;
/* auth_sasl_new - holds a reference on the db (NULL: every user unknown)
 * until auth_sasl_free(). */
struct auth_sasl *auth_sasl_new(struct auth_db *, enum auth_mech,
	    const char *hostname);
int	 auth_sasl_step(struct auth_sasl *, const void *in, size_t inlen,
	    bool have_in, struct sbuf *challenge);
/* auth_sasl_user - the authenticated (or attempted) user name. */
const char *auth_sasl_user(const struct auth_sasl *);
void	 auth_sasl_free(struct auth_sasl *);
/* auth_sasl_test_nonce - tests only: fix the next server nonce/challenge. */
void	 auth_sasl_test_nonce(const char *);

/*
 * Password guessing (issue 8): failed AUTH attempts counted per client
 * address across connections, in a table of at most `max` addresses; the
 * least recently used address makes room for a new one. IPv6 addresses
 * count per /64 (one client usually holds a whole /64). An address with
 * `limit` failures within `window_ms` of its first one may not try again
 * until that window ends. limit 0 turns the count off. Times are
 * monotonic milliseconds, passed in so that tests can choose them. The
 * table never blocks and allocates only in auth_throttle_new().
 */
struct auth_throttle;
struct auth_throttle *auth_throttle_new(size_t max);
void	 auth_throttle_free(struct auth_throttle *);
/* auth_throttle_wait - ms until addr may try AUTH again; 0: it may now. */
uint64_t auth_throttle_wait(struct auth_throttle *, const char *addr,
	    int limit, uint64_t window_ms, uint64_t now_ms);
/* auth_throttle_fail - count one failure of addr; returns what
 * auth_throttle_wait() returns after it. */
uint64_t auth_throttle_fail(struct auth_throttle *, const char *addr,
	    int limit, uint64_t window_ms, uint64_t now_ms);

/* auth_make_line - the users_file line for USER with this password and
 * domains: {CRYPT} (SHA-512 crypt), {CRAM-MD5} and {SCRAM-SHA-256}. */
int	 auth_make_line(const char *user, const char *password,
	    const struct conf_list *domains, struct sbuf *out);

/* ------------------------------------------------------------------ */
/* counters.c - event counters shared by every daemon process.
 *
 * One small file in queue_dir ("counters"), mapped MAP_SHARED by the
 * master before it forks, so every child (and every worker they fork)
 * adds to the same numbers with atomic increments and a restarted child
 * carries on from them; the metrics process reads them. Fixed layout with
 * a magic and a version: a file of another version is started afresh
 * (Prometheus takes a counter reset). Without counters_open() every call
 * below does nothing, so tools and unit tests need not care. Never blocks.
 */
#define COUNTERS_FILE		"counters"
#define COUNTERS_VERSION	1
#define COUNTERS_MINUTES	60	/* deliveries per minute, the last hour */

enum counters_status {		/* dlog's status= */
	COUNTERS_ST_SENT, COUNTERS_ST_DEFERRED, COUNTERS_ST_BOUNCED,
	COUNTERS_ST_EXPIRED, COUNTERS_NSTATUS
};
enum counters_class {		/* the DSN's class: 2.x.x, 4.x.x, 5.x.x */
	COUNTERS_CL_2, COUNTERS_CL_4, COUNTERS_CL_5, COUNTERS_NCLASS
};
enum counters_req {
	COUNTERS_REQ_ETRN, COUNTERS_REQ_ATRN, COUNTERS_REQ_TURN,
	COUNTERS_NREQ
};
enum counters_outcome {
	COUNTERS_OUT_OK,	/* accepted: queuing started, turned */
	COUNTERS_OUT_EMPTY,	/* nothing waiting (ETRN 251, ATRN 453) */
	COUNTERS_OUT_REFUSED,	/* by policy (ETRN 458/459, ATRN 450, 530) */
	COUNTERS_OUT_ERROR,	/* syntax, or a temporary failure (451) */
	COUNTERS_NOUT
};
enum counters_conn {
	COUNTERS_CONN_IN,	/* accepted by the listener */
	COUNTERS_CONN_OUT,	/* a delivery connection made */
	COUNTERS_CONN_OUT_FAILED, /* a delivery connection that failed */
	COUNTERS_CONN_REVERSED,	/* an ATRN/TURN session run by the odmr
				 * process over the site's connection */
	COUNTERS_MSG_RECEIVED,	/* messages committed by the listener */
	COUNTERS_NCONN
};
/* Histogram upper bounds (the last bucket is +Inf). */
#define COUNTERS_BATCH_BUCKETS	9	/* 1 2 4 ... 128, +Inf */
#define COUNTERS_LAT_BUCKETS	12	/* seconds, below; +Inf */
extern const double counters_lat_le[COUNTERS_LAT_BUCKETS - 1];
extern const unsigned counters_batch_le[COUNTERS_BATCH_BUCKETS - 1];

/* A copy of every counter (counters_read). */
struct counters_snap {
	uint64_t	deliv[COUNTERS_NSTATUS][COUNTERS_NCLASS];
	uint64_t	req[COUNTERS_NREQ][COUNTERS_NOUT];
	uint64_t	conn[COUNTERS_NCONN];
	uint64_t	batch[COUNTERS_BATCH_BUCKETS];	/* not cumulative */
	uint64_t	batch_sum, batch_count;
	uint64_t	lat[COUNTERS_LAT_BUCKETS];	/* not cumulative */
	uint64_t	lat_sum_us, lat_count;
	uint64_t	minute[COUNTERS_MINUTES];	/* oldest first, the
							 * current one last */
};

/* counters_open - map dir/counters (created mode 0600, or started afresh
 * when its layout is another's) for this process and its children. 0, or
 * -1 with err. Call once, before fork. */
int	counters_open(const char *dir, char *err, size_t errsz);
void	counters_delivery(const char *status, const char *dsn, int64_t now);
void	counters_request(enum counters_req, enum counters_outcome);
void	counters_event(enum counters_conn);
/* counters_commit - one group commit of n messages that took secs. */
void	counters_commit(size_t n, double secs);
/* counters_read - every counter, as of now (no lock: each one atomic);
 * false without counters_open(). */
bool	counters_read(struct counters_snap *, int64_t now);

#endif

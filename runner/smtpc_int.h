/*
 * smtpc_int.h - what the four files of the ESMTP client share (runner/
 * only; the client's API is in runner.h).
 *
 *	smtpc.c		the connection: connect, greeting, EHLO/HELO,
 *			commands and their replies, QUIT; smtpc_open and
 *			smtpc_attach put a session together
 *	smtpc_tls.c	STARTTLS, on one client SSL_CTX per process
 *	smtpc_auth.c	AUTH: SCRAM-SHA-256, CRAM-MD5, then PLAIN and
 *			LOGIN (only inside verified TLS)
 *	smtpc_send.c	one transaction: MAIL, RCPT..., DATA, the message,
 *			one result a recipient
 *
 * Every call that waits is bounded by the stage's timeout and marks the
 * connection dead (sc->err says why) when the peer fails it.
 */
#ifndef SMTPC_INT_H
#define SMTPC_INT_H

#include "runner.h"

#define SMTPC_BLOCK		65536	/* message bytes per write */
#define SMTPC_INPUT_MAX		262144	/* unread input while writing */
#define SMTPC_CMD_MAX		512	/* AUTH line before a split */
#define SMTPC_QUIT_MS		10000	/* at most this for QUIT's reply */
#define SMTPC_KW_MAX		1024	/* EHLO keywords kept (smtpc_offers) */
#define SMTPC_LINE_MAX		510	/* a command without CRLF (§4.5.3.1.4) */
/* A BDAT chunk's octets at most (RFC 3030 sets no bound): big enough that
 * the command costs nothing, small enough that a refusal stops us early
 * (with PIPELINING, the next chunk goes before this one's reply). */
#define SMTPC_BDAT_CHUNK	(256 * 1024)

/* Defaults (s) when smtpc_opts says 0: RFC 5321 §4.5.3.2. */
#define SMTPC_T_CONNECT		30
#define SMTPC_T_CMD		300
#define SMTPC_T_DATA		180
#define SMTPC_T_DOT		600

/* What the server's EHLO reply offers. */
enum {
	SMTPC_X_PIPELINING	= 0x001,
	SMTPC_X_SIZE		= 0x002,
	SMTPC_X_8BITMIME	= 0x004,
	SMTPC_X_SMTPUTF8	= 0x008,
	SMTPC_X_DSN		= 0x010,
	SMTPC_X_STARTTLS	= 0x020,
	SMTPC_X_ENHANCED	= 0x040,
	SMTPC_X_AUTH		= 0x080,
	SMTPC_X_AUTH_PLAIN	= 0x100,
	SMTPC_X_AUTH_LOGIN	= 0x200,
	SMTPC_X_AUTH_CRAM	= 0x400,	/* CRAM-MD5 */
	SMTPC_X_AUTH_SCRAM	= 0x800,	/* SCRAM-SHA-256 */
	SMTPC_X_CHUNKING	= 0x1000,	/* BDAT (RFC 3030) */
	SMTPC_X_BINARYMIME	= 0x2000,
};

/* The connection's state: usable, done (no more mail, QUIT is fine) or
 * dead (closed, timed out or out of step: no QUIT either). */
enum smtpc_state {
	SMTPC_S_OK,
	SMTPC_S_DONE,
	SMTPC_S_DEAD,
};

struct smtpc {
	struct smtp_conn	*conn;
	bool			 own_conn;	/* false: smtpc_attach's */
	char			*helo;
	int			 t_cmd;		/* ms */
	int			 t_data;
	int			 t_dot;
	uint32_t		 ext;		/* SMTPC_X_* */
	uint64_t		 size_max;	/* SIZE n; 0: no limit */
	uint64_t		 bdat_min;	/* smtpc_opts' bdat_min_size */
	enum smtpc_state	 state;
	char			 host[256];	/* SNI, certificate name */
	char			 peer[320];	/* "host[ip]:port" */
	char			 err[256];	/* why it died */
	char			 err_status[16];	/* and its x.y.z */
	bool			 tls_verified;	/* chain and name checked */
	long			 tls_vr;	/* the X509_V_* result */
	char			 tls_name[256];	/* the name checked */
	double			 tls_s;		/* STARTTLS to the EHLO after */
	const char		*auth_mech;	/* the one AUTH succeeded with */
	bool			 tls_checked;	/* a CA store checked the chain */
	bool			 tls_dane;	/* a TLSA record matched */
	char			 tls_dane_rr[48];	/* "3 1 1 depth 0" */
	char			 kw[SMTPC_KW_MAX];	/* " KW KW ... " */
};

/* ------------------------------------------------------------------ */
/* smtpc.c - commands and replies. */

/* smtpc_die - the connection cannot be used any more: remember why
 * (err), with 4.4.2 as its status (err_status). */
void	 smtpc_die(struct smtpc *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * smtpc_in_step - call before a command group (or the message after 354)
 * goes out, when every reply asked for has been read: 0 when nothing
 * else has come either; -1 (the connection dead, 4.5.0) when the server
 * has sent something nobody asked for yet, which would be taken for the
 * reply to what we send next. A 421 (the server going away) is let
 * through, to be read as that reply.
 */
int	 smtpc_in_step(struct smtpc *, const char *before);
/* smtpc_flush - write everything queued, within timeout_ms. While it
 * waits it reads what the server sends, so neither side can block the
 * other. -1: the connection died (sc->err says why). */
int	 smtpc_flush(struct smtpc *, int timeout_ms, const char *stage);
/* smtpc_cmd - queue one command line (CRLF added); nothing is sent. */
void	 smtpc_cmd(struct smtpc *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * smtpc_read_reply - read one reply (multiline too) within timeout_ms,
 * through smtp_reply_feed() and its limits. With `lines`, each line's
 * text (after "250-") is appended there, one per line, for the EHLO
 * keywords. 0, or -1 when the connection died (timeout, EOF, garbage:
 * sc->err says which).
 */
int	 smtpc_read_reply(struct smtpc *, int timeout_ms, const char *stage,
	    struct smtp_reply *, struct sbuf *lines);
/* smtpc_command - send one command and read its reply (cmd timeout). */
int	 smtpc_command(struct smtpc *, const char *stage, struct smtp_reply *,
	    struct sbuf *lines, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------------ */
/* smtpc_tls.c */

/*
 * smtpc_tls_start - STARTTLS per policy (RFC 3207). 0: TLS is on, or off
 * and that is allowed; -1 with status and why. Under "encrypt" the
 * handshake fails unless the certificate is verified; with credentials to
 * send it is verified under "may" as well, without failing the
 * handshake: smtpc_auth() looks at the result (sc->tls_verified).
 */
int	 smtpc_tls_start(struct smtpc *, const struct smtpc_opts *,
	    char status[16], char *why, size_t whysz);

/* ------------------------------------------------------------------ */
/* smtpc_auth.c */

/* The client halves of the challenge-response mechanisms, apart from the
 * connection so that the unit tests can run them against smtp_auth.c. */

#define SMTPC_SCRAM_KEY		32	/* SHA-256 */
#define SMTPC_SCRAM_ITER_MIN	4096	/* RFC 7677 §4: fewer is a downgrade */
#define SMTPC_SCRAM_ITER_MAX	1000000	/* a server cannot make us spin: about
					 * 0.3 s of PBKDF2 at most; OWASP asks
					 * 600,000 of stored hashes */
#define SMTPC_SCRAM_NONCE	24	/* random octets, base64 on the wire */

/* smtpc_cram_response - RFC 2195 §2: "user SP" and the lower-case hex of
 * HMAC-MD5(password, challenge), into out (reset first). -1 on a local
 * error (OpenSSL). */
int	 smtpc_cram_response(const char *user, const char *pass,
	    const void *chal, size_t chlen, struct sbuf *out);

/* One SCRAM-SHA-256 exchange, client side (RFC 5802, RFC 7677), without
 * channel binding ("n,,"). */
struct smtpc_scram {
	struct sbuf	*authmsg;	/* client-first-bare, ... */
	char		 cnonce[SMTPC_SCRAM_NONCE * 2];
	unsigned char	 server_key[SMTPC_SCRAM_KEY];
	bool		 have_key;
};

/* smtpc_scram_first - the client-first message for user into out (reset
 * first); nonce NULL: a random one (tests give their own). */
void	 smtpc_scram_first(struct smtpc_scram *, const char *user,
	    const char *nonce, struct sbuf *out);
/* smtpc_scram_final - from the server-first message (len octets), the
 * client-final message with its proof into out (reset first). -1 when
 * the server's message is malformed, its nonce does not extend ours, or
 * its iteration count is outside [SMTPC_SCRAM_ITER_MIN,
 * SMTPC_SCRAM_ITER_MAX]. */
int	 smtpc_scram_final(struct smtpc_scram *, const char *pass,
	    const char *sfirst, size_t len, struct sbuf *out);
/* smtpc_scram_verify - the server-final message: 0 when its "v=" is the
 * server signature (the server knows the password's keys), -1 else (an
 * "e=" error, a wrong signature, garbage). */
int	 smtpc_scram_verify(struct smtpc_scram *, const char *sfinal,
	    size_t len);
/* smtpc_scram_free - wipe and free what the exchange holds. */
void	 smtpc_scram_free(struct smtpc_scram *);

/* smtpc_auth_wanted - are there credentials to send? */
bool	 smtpc_auth_wanted(const struct smtpc_opts *);
/* smtpc_auth - AUTH with the configured credentials, or nothing when
 * there are none; 0, or -1 with status and why (always 4.x.x). */
int	 smtpc_auth(struct smtpc *, const struct smtpc_opts *,
	    char status[16], char *why, size_t whysz);

#endif

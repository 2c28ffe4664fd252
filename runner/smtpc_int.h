/*
 * smtpc_int.h - what the four files of the ESMTP client share (runner/
 * only; the client's API is in runner.h).
 *
 *	smtpc.c		the connection: connect, greeting, EHLO/HELO,
 *			commands and their replies, QUIT; smtpc_open and
 *			smtpc_attach put a session together
 *	smtpc_tls.c	STARTTLS, on one client SSL_CTX per process
 *	smtpc_auth.c	AUTH PLAIN and LOGIN, only inside verified TLS
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
	enum smtpc_state	 state;
	char			 host[256];	/* SNI, certificate name */
	char			 peer[320];	/* "host[ip]:port" */
	char			 err[256];	/* why it died */
	bool			 tls_verified;	/* chain and name checked */
	long			 tls_vr;	/* the X509_V_* result */
	char			 tls_name[256];	/* the name checked */
	double			 tls_s;		/* STARTTLS to the EHLO after */
	char			 kw[SMTPC_KW_MAX];	/* " KW KW ... " */
};

/* ------------------------------------------------------------------ */
/* smtpc.c - commands and replies. */

/* smtpc_die - the connection cannot be used any more: remember why. */
void	 smtpc_die(struct smtpc *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
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

/* smtpc_auth_wanted - are there credentials to send? */
bool	 smtpc_auth_wanted(const struct smtpc_opts *);
/* smtpc_auth - AUTH with the configured credentials, or nothing when
 * there are none; 0, or -1 with status and why (always 4.x.x). */
int	 smtpc_auth(struct smtpc *, const struct smtpc_opts *,
	    char status[16], char *why, size_t whysz);

#endif

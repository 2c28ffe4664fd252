/*
 * smtp_conn.c - buffered non-blocking I/O over TCP or TLS.
 *
 * The server's event loop and the delivery client share it. All reads go
 * into one growable buffer; a reader consumes from the front (inoff) and
 * the buffer is compacted lazily, so line parsing never copies. Output is
 * queued and written when the socket takes it, so replies to a pipelined
 * group go out in one write (RFC 2920 §3.2 wants them batched).
 *
 * TLS: after STARTTLS the same buffers are used through OpenSSL. Unread
 * plaintext must be gone before the handshake starts (RFC 3207 §6,
 * CVE-2011-0411): smtp_conn_tls_start() refuses to start with unread
 * input, so the caller must decide (discard it) first.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smtp.h"

/* Read at most this much per call. */
#define SMTP_CONN_READ	16384

struct smtp_conn *
smtp_conn_new(int fd)
{
	struct smtp_conn	*c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->in = sbuf_new();
	c->out = sbuf_new();
	return c;
}

void
smtp_conn_free(struct smtp_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);	/* best effort, non-blocking */
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	sbuf_free(c->in);
	sbuf_free(c->out);
	free(c);
}

static void
smtp_conn_compact(struct smtp_conn *c)
{
	if (c->inoff == 0)
		return;
	if (c->inoff == c->in->len) {
		sbuf_reset(c->in);
	} else if (c->inoff > 65536 || c->inoff > c->in->len / 2) {
		memmove(c->in->s, c->in->s + c->inoff, c->in->len - c->inoff);
		c->in->len -= c->inoff;
		c->in->s[c->in->len] = '\0';
	} else
		return;
	c->inoff = 0;
}

void
smtp_conn_consume(struct smtp_conn *c, size_t n)
{
	if (n > smtp_conn_avail(c))
		n = smtp_conn_avail(c);
	c->inoff += n;
	if (c->inoff == c->in->len) {
		sbuf_reset(c->in);
		c->inoff = 0;
	}
}

size_t
smtp_conn_discard(struct smtp_conn *c)
{
	size_t	n = smtp_conn_avail(c);

	sbuf_reset(c->in);
	c->inoff = 0;
	return n;
}

size_t
smtp_conn_pending(const struct smtp_conn *c)
{
	return smtp_conn_avail(c) + (c->ssl ? (size_t)SSL_pending(c->ssl) : 0);
}

ssize_t
smtp_conn_fill(struct smtp_conn *c, size_t room)
{
	char	buf[SMTP_CONN_READ];
	ssize_t	total = 0;
	int	n, e;

	smtp_conn_compact(c);
	c->want_write = false;
	/*
	 * With TLS, plaintext OpenSSL has already decrypted is taken even
	 * past `room` (at most the rest of one record): the socket no
	 * longer says it is there, so an event loop would never come back
	 * for it.
	 */
	while ((smtp_conn_avail(c) < room ||
	    (c->ssl != NULL && SSL_pending(c->ssl) > 0)) && !c->eof) {
		size_t want = smtp_conn_avail(c) < room ?
		    room - smtp_conn_avail(c) : (size_t)SSL_pending(c->ssl);

		if (want > sizeof(buf))
			want = sizeof(buf);
		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(c->ssl, buf, (int)want);
			if (n <= 0) {
				e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->want_write = true;
					break;
				}
				c->eof = true;
				break;
			}
		} else {
			ssize_t r = recv(c->fd, buf, want, 0);

			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK))
				break;
			if (r <= 0) {
				c->eof = true;
				break;
			}
			n = (int)r;
		}
		sbuf_catn(c->in, buf, (size_t)n);
		total += n;
	}
	if (total == 0 && c->eof)
		return -1;
	return total;
}

/*
 * smtp_conn_compact_out - drop what was written from the front of `out`.
 * Without it a reader that always leaves a little unread would make `out`
 * hold everything ever sent to it. (With TLS a retried write may move:
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, and it starts with the same bytes.)
 */
static void
smtp_conn_compact_out(struct smtp_conn *c)
{
	if (c->outoff < 65536 || c->outoff < c->out->len / 2)
		return;
	memmove(c->out->s, c->out->s + c->outoff, c->out->len - c->outoff);
	c->out->len -= c->outoff;
	c->out->s[c->out->len] = '\0';
	c->outoff = 0;
}

int
smtp_conn_flush(struct smtp_conn *c)
{
	int	n, e;

	c->want_write = false;
	while (c->outoff < c->out->len) {
		size_t	len = c->out->len - c->outoff;

		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(c->ssl, c->out->s + c->outoff,
			    len > INT32_MAX ? INT32_MAX : (int)len);
			if (n <= 0) {
				e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ) {
					smtp_conn_compact_out(c);
					return 0;
				}
				c->eof = true;
				return -1;
			}
		} else {
			ssize_t r = send(c->fd, c->out->s + c->outoff, len,
			    MSG_NOSIGNAL);

			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK)) {
				smtp_conn_compact_out(c);
				return 0;
			}
			if (r <= 0) {
				c->eof = true;
				return -1;
			}
			n = (int)r;
		}
		c->outoff += (size_t)n;
	}
	sbuf_reset(c->out);
	c->outoff = 0;
	return 1;
}

int
smtp_conn_tls_start(struct smtp_conn *c, SSL_CTX *ctx, bool server,
    const char *sni)
{
	if (smtp_conn_avail(c) != 0 || c->ssl != NULL)
		return -1;
	if ((c->ssl = SSL_new(ctx)) == NULL)
		return -1;
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (server)
		SSL_set_accept_state(c->ssl);
	else {
		if (sni != NULL)
			(void)SSL_set_tlsext_host_name(c->ssl, sni);
		SSL_set_connect_state(c->ssl);
	}
	return 0;
}

int
smtp_conn_handshake(struct smtp_conn *c)
{
	int	n, e;

	c->want_write = false;
	ERR_clear_error();
	if ((n = SSL_do_handshake(c->ssl)) == 1) {
		snprintf(c->tls_info, sizeof(c->tls_info), "%s %s",
		    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
		return 1;
	}
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		c->want_write = true;
		return 0;
	}
	return -1;
}

int
smtp_conn_wait(struct smtp_conn *c, bool rd, int timeout_ms)
{
	struct pollfd	pfd;
	int		n;

	if (rd && c->ssl != NULL && SSL_pending(c->ssl) > 0)
		return 1;
	pfd.fd = c->fd;
	pfd.events = (rd ? POLLIN : 0) |
	    ((c->out->len > c->outoff || c->want_write) ? POLLOUT : 0);
	pfd.revents = 0;
	do
		n = poll(&pfd, 1, timeout_ms);
	while (n == -1 && errno == EINTR);
	return n;
}

/* smtp_tls_why - OpenSSL's first reason, and an empty error queue. */
static const char *
smtp_tls_why(void)
{
	const char	*why;

	why = ERR_reason_error_string(ERR_get_error());
	ERR_clear_error();
	return why != NULL ? why : "unknown OpenSSL error";
}

SSL_CTX *
smtp_tls_server_ctx(const struct conf *conf, char *err, size_t errsz)
{
	SSL_CTX	*ctx;

	if (conf->tls_cert_file == NULL || conf->tls_key_file == NULL) {
		bsnprintf(err, errsz, "no tls_cert_file/tls_key_file");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		bsnprintf(err, errsz, "SSL_CTX_new failed");
		return NULL;
	}
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key_file,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		bsnprintf(err, errsz, "%s / %s: %s", conf->tls_cert_file,
		    conf->tls_key_file, smtp_tls_why());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
smtp_tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		bsnprintf(err, errsz, "OpenSSL: %s", smtp_tls_why());
		return NULL;
	}
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_file == NULL)
		return ctx;		/* no store: it checks nobody */
	if (ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			bsnprintf(err, errsz, "%s: %s", ca_file,
			    smtp_tls_why());
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		bsnprintf(err, errsz, "the system's CA store: %s",
		    smtp_tls_why());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

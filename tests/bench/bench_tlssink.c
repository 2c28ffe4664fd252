/*
 * bench_tlssink.c - an SMTP sink that offers STARTTLS, for bench_tls.sh.
 *
 * Usage: bench_tlssink ADDR:PORT CERT KEY COUNTFILE
 *
 * Postfix's smtp-sink speaks no TLS, and a Postfix smtpd with a discard
 * transport would queue every message (cleanup, a queue file, an fsync):
 * it would be slower than the senders it is to measure. This one takes
 * every message and keeps nothing: EHLO (PIPELINING, SIZE, 8BITMIME,
 * ENHANCEDSTATUSCODES, DSN, and STARTTLS until TLS is on), HELO, MAIL,
 * RCPT, DATA (the content is read to the final dot and thrown away),
 * RSET, NOOP, STARTTLS, QUIT; anything else gets 502. Replies to a
 * pipelined group go out in one write, when no complete command is left
 * unread (as Postfix's smtpd does), so the sink adds no round trips.
 *
 * One thread per connection, blocking I/O: the senders open a handful of
 * connections (4 workers, 20 Postfix smtp processes) and reuse them, so
 * threads cost nothing here and keep the code short. A thread ends at
 * QUIT, EOF, an I/O error, a failed handshake, or 120 s of silence.
 *
 * COUNTFILE holds one line, rewritten in place every 2 ms while it
 * changes: "msgs rcpts tls_msgs conns handshakes" (messages taken at the
 * final dot, their accepted recipients, messages taken over TLS,
 * connections accepted, TLS handshakes completed). The benchmark polls
 * it; the process runs until it is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SINK_IN_MAX	65536	/* unread input; a longer line is cut */
#define SINK_OUT_MAX	8192	/* replies queued before a write */
#define SINK_IDLE_S	120	/* silence that ends a connection */
#define SINK_TICK_NS	2000000	/* the count file's refresh */

static SSL_CTX		*sink_ctx;
static atomic_ullong	 sink_msgs, sink_rcpts, sink_tls_msgs, sink_conns,
			 sink_handshakes;

struct sink_conn {
	int	 fd;
	SSL	*ssl;
	char	 in[SINK_IN_MAX];
	size_t	 ilen;		/* bytes in `in` */
	char	 out[SINK_OUT_MAX];
	size_t	 olen;
	bool	 data;		/* reading message content */
	bool	 cut;		/* the line being read was cut: skip to LF */
	unsigned txn_rcpts;	/* RCPTs accepted in this transaction */
};

/* sink_flush - write the queued replies. 0, or -1 when the peer is gone. */
static int
sink_flush(struct sink_conn *c)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < c->olen) {
		if (c->ssl != NULL) {
			n = SSL_write(c->ssl, c->out + off, (int)(c->olen - off));
			if (n <= 0)
				return -1;
		} else {
			n = send(c->fd, c->out + off, c->olen - off,
			    MSG_NOSIGNAL);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
		}
		off += (size_t)n;
	}
	c->olen = 0;
	return 0;
}

/* sink_reply - queue a reply line (text without CRLF). 0, or -1. */
static int
sink_reply(struct sink_conn *c, const char *text)
{
	size_t	n = strlen(text);

	if (c->olen + n + 2 > sizeof(c->out) && sink_flush(c) != 0)
		return -1;
	memcpy(c->out + c->olen, text, n);
	memcpy(c->out + c->olen + n, "\r\n", 2);
	c->olen += n + 2;
	return 0;
}

/* sink_read - more input after what is there. > 0 bytes, 0 EOF/error. */
static size_t
sink_read(struct sink_conn *c)
{
	size_t	room = sizeof(c->in) - c->ilen;
	ssize_t	n;

	for (;;) {
		if (c->ssl != NULL)
			n = SSL_read(c->ssl, c->in + c->ilen, (int)room);
		else
			n = recv(c->fd, c->in + c->ilen, room, 0);
		if (n == -1 && c->ssl == NULL && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		c->ilen += (size_t)n;
		return (size_t)n;
	}
}

/* sink_starttls - the handshake, on the connection's blocking socket. */
static int
sink_starttls(struct sink_conn *c)
{
	if ((c->ssl = SSL_new(sink_ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	atomic_fetch_add(&sink_handshakes, 1);
	return 0;
}

/*
 * sink_command - one command line (CRLF cut off). 0 go on, 1 quit (the
 * 221 is queued), 2 STARTTLS (the 220 is queued), -1 the peer is gone.
 */
static int
sink_command(struct sink_conn *c, const char *l, size_t len)
{
	if (len < 4)
		return sink_reply(c, "502 5.5.2 Error: command not recognized");
	if (strncasecmp(l, "EHLO", 4) == 0) {
		if (sink_reply(c, "250-sink.example") != 0 ||
		    sink_reply(c, "250-PIPELINING") != 0 ||
		    sink_reply(c, "250-SIZE 104857600") != 0 ||
		    (c->ssl == NULL && sink_reply(c, "250-STARTTLS") != 0) ||
		    sink_reply(c, "250-ENHANCEDSTATUSCODES") != 0 ||
		    sink_reply(c, "250-DSN") != 0)
			return -1;
		return sink_reply(c, "250 8BITMIME");
	}
	if (strncasecmp(l, "HELO", 4) == 0)
		return sink_reply(c, "250 sink.example");
	if (strncasecmp(l, "MAIL", 4) == 0) {
		c->txn_rcpts = 0;
		return sink_reply(c, "250 2.1.0 Ok");
	}
	if (strncasecmp(l, "RCPT", 4) == 0) {
		c->txn_rcpts++;
		return sink_reply(c, "250 2.1.5 Ok");
	}
	if (strncasecmp(l, "DATA", 4) == 0) {
		c->data = true;
		return sink_reply(c, "354 End data with <CR><LF>.<CR><LF>");
	}
	if (strncasecmp(l, "RSET", 4) == 0) {
		c->txn_rcpts = 0;
		return sink_reply(c, "250 2.0.0 Ok");
	}
	if (strncasecmp(l, "NOOP", 4) == 0)
		return sink_reply(c, "250 2.0.0 Ok");
	if (strncasecmp(l, "QUIT", 4) == 0)
		return sink_reply(c, "221 2.0.0 Bye") != 0 ? -1 : 1;
	if (len == 8 && strncasecmp(l, "STARTTLS", 8) == 0) {
		if (c->ssl != NULL)
			return sink_reply(c, "503 5.5.1 Error: TLS already "
			    "active");
		return sink_reply(c, "220 2.0.0 Ready to start TLS") != 0 ?
		    -1 : 2;
	}
	return sink_reply(c, "502 5.5.2 Error: command not recognized");
}

/* sink_end_of_data - the final dot: count the message. */
static int
sink_end_of_data(struct sink_conn *c)
{
	c->data = false;
	atomic_fetch_add(&sink_msgs, 1);
	atomic_fetch_add(&sink_rcpts, c->txn_rcpts);
	if (c->ssl != NULL)
		atomic_fetch_add(&sink_tls_msgs, 1);
	c->txn_rcpts = 0;
	return sink_reply(c, "250 2.0.0 Ok: queued");
}

/* sink_session - one connection, to its end. */
static void *
sink_session(void *arg)
{
	struct sink_conn	*c = arg;
	struct timeval		 tv = { SINK_IDLE_S, 0 };
	char			*p, *lf;
	size_t			 len;
	int			 rc, one = 1;

	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sink_reply(c, "220 sink.example ESMTP") != 0 || sink_flush(c) != 0)
		goto done;
	for (;;) {
		if (sink_read(c) == 0)
			goto done;
		p = c->in;
		while ((lf = memchr(p, '\n', c->ilen - (size_t)(p - c->in)))
		    != NULL) {
			len = (size_t)(lf - p);
			if (len > 0 && p[len - 1] == '\r')
				len--;
			if (c->cut) {
				/* The rest of a line too long to keep. */
				c->cut = false;
				rc = 0;
			} else if (c->data) {
				rc = len == 1 && p[0] == '.' ?
				    sink_end_of_data(c) : 0;
			} else
				rc = sink_command(c, p, len);
			p = lf + 1;
			if (rc < 0)
				goto done;
			if (rc == 1) {
				(void)sink_flush(c);
				goto done;
			}
			if (rc == 2) {
				/* RFC 3207 §6: what came with STARTTLS is
				 * dropped. */
				if (sink_flush(c) != 0 || sink_starttls(c) != 0)
					goto done;
				c->ilen = 0;
				p = c->in;
				break;
			}
		}
		len = c->ilen - (size_t)(p - c->in);
		if (len == sizeof(c->in)) {
			c->cut = true;	/* a line longer than the buffer */
			len = 0;
		}
		memmove(c->in, p, len);
		c->ilen = len;
		/* More already decrypted: read it before replying, so a
		 * pipelined group is answered in one write. */
		if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
			continue;
		if (c->olen > 0 && sink_flush(c) != 0)
			goto done;
	}
done:
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	free(c);
	ERR_clear_error();
	return NULL;
}

/* sink_tick - rewrite COUNTFILE while the counts change. */
static void *
sink_tick(void *arg)
{
	const char		*path = arg;
	struct timespec		 ts = { 0, SINK_TICK_NS };
	unsigned long long	 last = ~0ULL, m, sum;
	char			 line[128];
	int			 fd, n;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1) {
		perror(path);
		exit(1);
	}
	for (;;) {
		m = atomic_load(&sink_msgs);
		sum = m + atomic_load(&sink_conns) +
		    atomic_load(&sink_handshakes);
		if (sum != last) {
			last = sum;
			/* Fixed width: a shorter line never leaves a tail. */
			n = snprintf(line, sizeof(line),
			    "%12llu %12llu %12llu %12llu %12llu\n", m,
			    (unsigned long long)atomic_load(&sink_rcpts),
			    (unsigned long long)atomic_load(&sink_tls_msgs),
			    (unsigned long long)atomic_load(&sink_conns),
			    (unsigned long long)atomic_load(&sink_handshakes));
			if (n > 0 && pwrite(fd, line, (size_t)n, 0) != n) {
				perror(path);
				exit(1);
			}
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct sink_conn	*c;
	pthread_attr_t		 attr;
	pthread_t		 t;
	char			*colon;
	int			 s, fd, one = 1;

	if (argc != 5 || (colon = strrchr(argv[1], ':')) == NULL) {
		fprintf(stderr, "usage: bench_tlssink ADDR:PORT CERT KEY "
		    "COUNTFILE\n");
		return 2;
	}
	*colon = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
		fprintf(stderr, "bench_tlssink: bad address %s\n", argv[1]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	if ((sink_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(sink_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(sink_ctx, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sink_ctx, argv[3],
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(sink_ctx) != 1) {
		fprintf(stderr, "bench_tlssink: TLS set-up failed:\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_options(sink_ctx, SSL_OP_NO_RENEGOTIATION);

	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(s, 256) != 0) {
		perror("bench_tlssink: listen");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, sink_tick, argv[4]) != 0) {
		fprintf(stderr, "bench_tlssink: pthread_create failed\n");
		return 1;
	}
	for (;;) {
		if ((fd = accept(s, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000);	/* until a session ends */
				continue;
			}
			perror("bench_tlssink: accept");
			return 1;
		}
		atomic_fetch_add(&sink_conns, 1);
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (pthread_create(&t, &attr, sink_session, c) != 0) {
			free(c);
			close(fd);
		}
	}
}

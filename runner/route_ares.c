/*
 * route_ares.c - one c-ares channel driven with poll(2) in the calling
 * thread, until its queries are answered or a deadline has passed; shared
 * by route_dns.c (MX, A, AAAA), route_tlsa.c (DANE's lookups) and
 * route_sts.c (MTA-STS' TXT lookups).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "runner.h"
#include "route_ares.h"

/* route_ares_sock_cb - c-ares says which sockets it waits on and for
 * what; a->socks mirrors that for poll(). */
static void
route_ares_sock_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct route_ares	*a = data;
	size_t			 i;

	for (i = 0; i < a->nsocks; i++)
		if (a->socks[i].fd == fd)
			break;
	if (!readable && !writable) {
		if (i < a->nsocks)
			a->socks[i] = a->socks[--a->nsocks];
		return;
	}
	if (i == a->nsocks) {
		a->socks = xreallocarray(a->socks, a->nsocks + 1,
		    sizeof(*a->socks));
		a->nsocks++;
	}
	a->socks[i].fd = fd;
	a->socks[i].events = (short)((readable ? POLLIN : 0) |
	    (writable ? POLLOUT : 0));
	a->socks[i].revents = 0;
}

int
route_ares_init(struct route_ares *a, int flags, int timeout_ms, int tries,
    char *err, size_t errsz)
{
	struct ares_options	 opts;
	char			 lookups[] = "b";
	int			 rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		bsnprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | flags;
	opts.timeout = timeout_ms;
	opts.tries = tries;
	opts.lookups = lookups;		/* DNS only, never /etc/hosts */
	opts.sock_state_cb = route_ares_sock_cb;
	opts.sock_state_cb_data = a;
	if ((rc = ares_init_options(&a->ch, &opts, ARES_OPT_FLAGS |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
	    ARES_OPT_SOCK_STATE_CB)) != ARES_SUCCESS) {
		ares_library_cleanup();
		bsnprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	a->ch_ok = true;
	return 0;
}

int
route_ares_servers(struct route_ares *a, const struct conf_list *servers,
    char *err, size_t errsz)
{
	struct sbuf	*csv;
	const char	*v;
	size_t		 i, len;
	int		 rc;

	/* c-ares' list syntax: "IP", "IP:PORT", "IPv6", "[IPv6]:PORT"; it
	 * refuses "[IPv6]" without a port, which dns_servers takes. */
	csv = sbuf_new();
	for (i = 0; i < servers->n; i++) {
		v = servers->v[i];
		len = strlen(v);
		sbuf_catf(csv, "%s%s%s", i > 0 ? "," : "", v,
		    len > 0 && v[0] == '[' && v[len - 1] == ']' ? ":53" : "");
	}
	rc = ares_set_servers_ports_csv(a->ch, sbuf_str(csv));
	csv = sbuf_free(csv);
	if (rc != ARES_SUCCESS) {
		bsnprintf(err, errsz, "dns_servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

void
route_ares_wait(struct route_ares *a, int64_t deadline)
{
	struct pollfd	*pfd = NULL;
	struct timeval	 maxtv, tv, *tvp;
	int64_t		 left, ms;
	size_t		 i, n;
	int		 rc;

	while (a->pending > 0) {
		if ((left = deadline - clock_mono_ms()) <= 0)
			break;
		maxtv.tv_sec = (time_t)(left / 1000);
		maxtv.tv_usec = (suseconds_t)(left % 1000 * 1000);
		if ((tvp = ares_timeout(a->ch, &maxtv, &tv)) == NULL)
			tvp = &maxtv;
		ms = (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000;
		/* ares_process_fd() may change a->socks: poll a copy. */
		n = a->nsocks;
		pfd = xreallocarray(pfd, n > 0 ? n : 1, sizeof(*pfd));
		if (n > 0)
			memcpy(pfd, a->socks, n * sizeof(*pfd));
		rc = poll(pfd, (nfds_t)n, (int)ms);
		if (rc == -1 && errno != EINTR)
			break;
		for (i = 0; rc > 0 && i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(a->ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & (POLLOUT | POLLERR) ?
			    pfd[i].fd : ARES_SOCKET_BAD);
		}
		/* Timeouts and retries. */
		ares_process_fd(a->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	free(pfd);
	if (a->pending > 0)
		ares_cancel(a->ch);	/* their callbacks run now */
}

void
route_ares_free(struct route_ares *a)
{
	if (a->ch_ok) {
		ares_destroy(a->ch);
		ares_library_cleanup();
		a->ch_ok = false;
	}
	free(a->socks);
	a->socks = NULL;
	a->nsocks = 0;
}

/*
 * route_sts_fetch.c - the HTTPS GET of an MTA-STS policy (RFC 8461 §3.3)
 * with libcurl.
 *
 * The name mta-sts.DOMAIN is never resolved by libcurl: the caller gives
 * the addresses c-ares found on dns_servers (the resolver delivery uses)
 * and CURLOPT_RESOLVE pins them, so a test's DNS and production's are
 * the same code. The certificate must be valid for mta-sts.DOMAIN (SNI
 * and the name check are libcurl's, from the URL); TLS 1.2 or later; no
 * redirect is followed (§3.3: "MUST NOT follow"), no proxy from the
 * environment is used, no compression is asked for (the size limit is
 * then the body's), no HTTP cache; only "200" with a text/plain body
 * counts (§3.2), and the body may not pass ROUTE_STS_BODY_MAX: the write
 * callback stops the transfer as soon as it would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>

#include <curl/curl.h>

#include "route_sts.h"

struct route_sts_body {
	struct sbuf	*out;
	bool		 toolong;
};

static size_t
route_sts_fetch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct route_sts_body	*b = arg;
	size_t			 n = size * nmemb;

	if (n > ROUTE_STS_BODY_MAX - sbuf_len(b->out)) {
		b->toolong = true;
		return 0;		/* CURLE_WRITE_ERROR: stop now */
	}
	sbuf_catn(b->out, data, n);
	return n;
}

/* route_sts_fetch_init - curl_global_init once a process (each worker
 * after its fork). */
static bool
route_sts_fetch_init(void)
{
	static int	done;		/* 1 ok, -1 failed */

	if (done == 0)
		done = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ?
		    1 : -1;
	return done == 1;
}

int
route_sts_fetch(const char *domain, const struct route_addr *addrs,
    size_t n, const char *ca_file, struct sbuf *out, char *why,
    size_t whysz)
{
	struct route_sts_body	 b;
	struct curl_slist	*resolve = NULL;
	struct sbuf		*pin = NULL;
	char			 url[400], host[300], ip[NI_MAXHOST];
	char			 cerr[CURL_ERROR_SIZE];
	const char		*ctype = NULL;
	CURL			*c = NULL;
	CURLcode		 cc;
	long			 code = 0;
	size_t			 i, k = 0;
	int			 rc = -1;

	sbuf_reset(out);
	if (!route_sts_fetch_init()) {
		bsnprintf(why, whysz, "libcurl could not start");
		return -1;
	}
	if (!bsnprintf(host, sizeof(host), "mta-sts.%s", domain) ||
	    !bsnprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt",
	    host)) {
		bsnprintf(why, whysz, "domain name too long");
		return -1;
	}
	/* "HOST:443:ADDR[,ADDR...]", IPv6 in brackets (libcurl 7.59). */
	pin = sbuf_new();
	sbuf_catf(pin, "%s:443:", host);
	for (i = 0; i < n; i++) {
		if (getnameinfo((const struct sockaddr *)&addrs[i].ss,
		    addrs[i].sslen, ip, sizeof(ip), NULL, 0,
		    NI_NUMERICHOST) != 0)
			continue;
		sbuf_catf(pin, addrs[i].ss.ss_family == AF_INET6 ?
		    "%s[%s]" : "%s%s", k++ > 0 ? "," : "", ip);
	}
	if (k == 0) {
		bsnprintf(why, whysz, "no address for %s", host);
		goto out;
	}
	if ((resolve = curl_slist_append(NULL, sbuf_str(pin))) == NULL ||
	    (c = curl_easy_init()) == NULL) {
		bsnprintf(why, whysz, "libcurl: out of memory");
		goto out;
	}
	cerr[0] = '\0';
	b.out = out;
	b.toolong = false;
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    (long)ROUTE_STS_FETCH_MS) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)ROUTE_STS_CONNECT_MS) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)ROUTE_STS_BODY_MAX) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "postern") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
	    route_sts_fetch_write) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr) != CURLE_OK ||
	    (ca_file != NULL && ca_file[0] != '\0' &&
	    curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) != CURLE_OK)) {
		bsnprintf(why, whysz, "libcurl: cannot set an option");
		goto out;
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		if (b.toolong || cc == CURLE_FILESIZE_EXCEEDED)
			bsnprintf(why, whysz, "%s: policy larger than %d "
			    "octets", url, ROUTE_STS_BODY_MAX);
		else {
			char	shown[200];

			/* libcurl's text may quote the server's names. */
			strl_clean(shown, sizeof(shown), cerr[0] != '\0' ?
			    cerr : curl_easy_strerror(cc), 160);
			bsnprintf(why, whysz, "%s: %s", url, shown);
		}
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		/* A 3xx too: redirects are not followed (§3.3). */
		bsnprintf(why, whysz, "%s: HTTP status %ld, not 200", url,
		    code);
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
	if (ctype == NULL || strncasecmp(ctype, "text/plain", 10) != 0 ||
	    (ctype[10] != '\0' && ctype[10] != ';' && ctype[10] != ' ')) {
		char	shown[64];

		strl_clean(shown, sizeof(shown), ctype != NULL ? ctype : "",
		    40);
		bsnprintf(why, whysz, "%s: Content-Type \"%s\", not text/plain",
		    url, shown);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		sbuf_reset(out);
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	sbuf_free(pin);
	return rc;
}

/*
 * smtpc_tls.c - STARTTLS for the ESMTP client (RFC 3207).
 *
 * STARTTLS per the hop's policy: "may" goes on in the clear when it is
 * not offered or refused, "encrypt" needs it and a certificate verified
 * for the hop's name. The plaintext read before the handshake is thrown
 * away (RFC 3207 §6, CVE-2011-0411) and the extension list is forgotten
 * and asked for again (§4.2). The name checked is the one we were given
 * (the relayhost's) or the one we looked up, never one the server tells
 * us; an IP address is checked as one.
 *
 * One client SSL_CTX serves every connection of the process: loading the
 * CA store is the costly part, and it is the same for every hop. What
 * differs per connection (verification on or off, the name to check, SNI)
 * is set on the connection's SSL object, never on the shared context.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "route_tlsa.h"
#include "smtpc_int.h"

/* The process's client context, and the CA store loaded into it: NULL
 * none yet, "" the system's default places, else tls_ca_file. */
static SSL_CTX	*smtpc_tls_client;
static char	*smtpc_tls_client_ca;

/*
 * smtpc_tls_ctx - the process's client context, built at the first
 * STARTTLS. The CA store is loaded the first time a connection checks a
 * certificate (`check`), from ca (NULL: the system's default places); a
 * different ca later (a new configuration) builds a new context, and the
 * connections on the old one keep it until they end (SSL_new took a
 * reference). NULL on a local error (logged); the next call tries again.
 */
static SSL_CTX *
smtpc_tls_ctx(bool check, const char *ca)
{
	const char	*want = ca != NULL ? ca : "";
	char		 err[512];

	if (check && smtpc_tls_client_ca != NULL &&
	    strcmp(smtpc_tls_client_ca, want) != 0) {
		SSL_CTX_free(smtpc_tls_client);
		smtpc_tls_client = NULL;
		free(smtpc_tls_client_ca);
		smtpc_tls_client_ca = NULL;
	}
	if (check && smtpc_tls_client_ca == NULL) {
		/* The first check: a context with the store, in place of one
		 * without (its connections keep it until they end). */
		SSL_CTX_free(smtpc_tls_client);
		smtpc_tls_client = NULL;
	}
	if (smtpc_tls_client == NULL) {
		/* smtp_conn.c builds every client context the same way. */
		if ((smtpc_tls_client = smtp_tls_client_ctx(check ? want :
		    NULL, err, sizeof(err))) == NULL) {
			log_warnx("%s: %s", __func__, err);
			return NULL;
		}
		SSL_CTX_set_verify(smtpc_tls_client, SSL_VERIFY_NONE, NULL);
		if (check)
			smtpc_tls_client_ca = xstrdup(want);
	}
	return smtpc_tls_client;
}

/* smtpc_tls_is_ip - is h (brackets allowed) an IP address? The bare address
 * into ip. */
static bool
smtpc_tls_is_ip(const char *h, char *ip, size_t ipsz)
{
	struct in6_addr	a6;
	size_t		n = strlen(h);

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
		if (n > 5 && strncasecmp(h, "IPv6:", 5) == 0) {
			h += 5;
			n -= 5;
		}
	}
	if (n >= ipsz)
		return false;
	memcpy(ip, h, n);
	ip[n] = '\0';
	return inet_pton(AF_INET, ip, &a6) == 1 ||
	    inet_pton(AF_INET6, ip, &a6) == 1;
}

/* smtpc_tls_sts_testing - under an MTA-STS policy in testing mode, say
 * what enforce would have refused (RFC 8461 §5: deliver anyway). */
static void
smtpc_tls_sts_testing(const struct smtpc *sc, const struct smtpc_opts *o,
    const char *what)
{
	log_info("MTA-STS policy of %s (testing): %s: %s; would not deliver "
	    "under enforce", o->sts_domain != NULL ? o->sts_domain : "",
	    sc->peer, what);
}

/* smtpc_tls_sts_fail - under enforce: the host fails the policy; why and
 * the log say so (the next MX may take the mail: RFC 8461 §5.1 treats
 * it as unreachable). Returns -1. */
static int
smtpc_tls_sts_fail(const struct smtpc *sc, const struct smtpc_opts *o,
    char status[16], char *why, size_t whysz, const char *what)
{
	strl_copy(status, "4.7.5", 16);
	bsnprintf(why, whysz, "MTA-STS policy of %s (enforce): %s: %s",
	    o->sts_domain != NULL ? o->sts_domain : "", sc->peer, what);
	log_info("%s", why);
	return -1;
}

int
smtpc_tls_start(struct smtpc *sc, const struct smtpc_opts *o,
    char status[16], char *why, size_t whysz)
{
	struct smtp_reply	 r;
	SSL_CTX			*ctx;
	char			 ip[64];
	const char		*ca, *e, *name;
	const struct route_tlsa_host *dh = NULL;
	enum route_tlsa_level	 dane = ROUTE_TLSA_MAY;
	bool			 verify = o->tls >= CONF_TLS_ENCRYPT;
	bool			 required = verify;
	bool			 check, isip;
	bool			 enforce = o->sts == ROUTE_STS_ENFORCE;
	bool			 testing = o->sts == ROUTE_STS_TESTING;
	char			 what[200];
	int64_t			 deadline, left;
	size_t			 dropped;
	long			 vr;
	int			 rc;

	if (o->tls == CONF_TLS_NONE || sc->conn->ssl != NULL)
		return 0;
	if (o->tls == CONF_TLS_DANE) {
		/* What this host's DNS says (smtpc_dane.c, route_tlsa.c):
		 * opportunistic, TLS without authentication, or DANE. */
		dane = smtpc_dane_level(o->dane, sc->host, &dh);
		verify = dane == ROUTE_TLSA_DANE;
		required = dane != ROUTE_TLSA_MAY;
	}
	if (enforce && dane != ROUTE_TLSA_DANE) {
		/* RFC 8461 §4.2: STARTTLS and a PKIX-valid certificate for
		 * the MX host (the worker never asks this of a host DANE
		 * covers: §2, DANE wins). */
		verify = true;
		required = true;
	}
	check = (verify && dane != ROUTE_TLSA_DANE) || smtpc_auth_wanted(o) ||
	    testing;
	if (!(sc->ext & SMTPC_X_STARTTLS)) {
		if (enforce)
			return smtpc_tls_sts_fail(sc, o, status, why, whysz,
			    "STARTTLS is not offered");
		if (testing)
			smtpc_tls_sts_testing(sc, o, "STARTTLS is not offered");
		if (!required)
			return 0;
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "TLS is required, but was not offered by "
		    "host %s", sc->peer);
		return -1;
	}
	if (smtpc_command(sc, "STARTTLS", &r, NULL, "STARTTLS") != 0)
		goto dead;
	if (r.code / 100 != 2) {
		if (r.code == 421) {
			sc->state = SMTPC_S_DEAD;
		} else if (!required) {
			if (testing)
				smtpc_tls_sts_testing(sc, o, "STARTTLS is "
				    "refused");
			/* Opportunistic: carry on in the clear (§4). */
			log_info("%s: STARTTLS refused (%s): delivering "
			    "without TLS", sc->peer, r.text);
			return 0;
		}
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "TLS is required, but host %s refused "
		    "to start TLS: %s", sc->peer, r.text);
		return -1;
	}
	/* RFC 3207 §6: nothing read in the clear is used after this. */
	if ((dropped = smtp_conn_discard(sc->conn)) > 0)
		log_info("%s: STARTTLS: discarded %zu octets of plaintext "
		    "sent after the 220", sc->peer, dropped);

	ca = o->tls_ca_file != NULL && o->tls_ca_file[0] != '\0' ?
	    o->tls_ca_file : NULL;
	if ((ctx = smtpc_tls_ctx(check, ca)) == NULL)
		goto local;
	sc->tls_checked = smtpc_tls_client_ca != NULL;	/* a CA store */

	/* The name we were given (the relayhost's), else the one we looked
	 * up; never one the server tells us. */
	name = o->tls_name != NULL && o->tls_name[0] != '\0' ? o->tls_name :
	    sc->host;
	strl_copy(sc->tls_name, name, sizeof(sc->tls_name));
	isip = smtpc_tls_is_ip(sc->tls_name, ip, sizeof(ip));
	if (smtp_conn_tls_start(sc->conn, ctx, false,
	    isip || sc->tls_name[0] == '\0' ? NULL : sc->tls_name) != 0)
		goto local;
	/* Under "may" with credentials the chain is still checked (the
	 * result is in SSL_get_verify_result), but a failure does not stop
	 * the handshake: only the AUTH. Per connection, like the name: the
	 * context is shared. */
	SSL_set_verify(sc->conn->ssl, verify ? SSL_VERIFY_PEER :
	    SSL_VERIFY_NONE, NULL);
	/* RFC 8461 §4.2: TLS 1.2 or later (the context says so too; this
	 * keeps it true whatever the context becomes). */
	if ((enforce || testing) && SSL_set_min_proto_version(sc->conn->ssl,
	    TLS1_2_VERSION) != 1)
		goto local;
	if (dane == ROUTE_TLSA_DANE) {
		/* The records, and the names: the MX host's and the
		 * next hop's (never one from the server). */
		if (smtpc_dane_enable(sc->conn->ssl, dh,
		    o->dane != NULL ? o->dane->domain : NULL) != 0)
			goto local;
	} else if (check && sc->tls_name[0] != '\0') {
		if (isip ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(sc->conn->ssl), ip) != 1 :
		    SSL_set1_host(sc->conn->ssl, sc->tls_name) != 1)
			goto local;
		SSL_set_hostflags(sc->conn->ssl,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	deadline = clock_mono_ms() + sc->t_cmd;
	while ((rc = smtp_conn_handshake(sc->conn)) == 0) {
		if ((left = deadline - clock_mono_ms()) <= 0 ||
		    smtp_conn_wait(sc->conn, true, (int)left) < 0) {
			sc->state = SMTPC_S_DEAD;
			strl_copy(status, "4.7.5", 16);
			bsnprintf(why, whysz, "TLS handshake with %s timed out",
			    sc->peer);
			return -1;
		}
	}
	if (rc < 0) {
		sc->state = SMTPC_S_DEAD;
		strl_copy(status, "4.7.5", 16);
		vr = SSL_get_verify_result(sc->conn->ssl);
		if (enforce && dane != ROUTE_TLSA_DANE && vr != X509_V_OK) {
			bsnprintf(what, sizeof(what), "certificate not "
			    "verified for %s: %s", sc->tls_name,
			    X509_verify_cert_error_string(vr));
			ERR_clear_error();
			return smtpc_tls_sts_fail(sc, o, status, why, whysz,
			    what);
		}
		if (verify && vr != X509_V_OK) {
			bsnprintf(why, whysz, "%s verification failed for %s: "
			    "%s", dane == ROUTE_TLSA_DANE ? "DANE TLSA" :
			    "server certificate", sc->peer,
			    X509_verify_cert_error_string(vr));
			/* The next MX may take the mail: say why this one
			 * could not (RFC 7672 §2.2 wants it seen). */
			if (dane == ROUTE_TLSA_DANE)
				log_info("%s", why);
		} else {
			e = ERR_reason_error_string(ERR_peek_last_error());
			bsnprintf(why, whysz, "TLS handshake with %s failed: "
			    "%s", sc->peer, e != NULL ? e : "connection lost");
		}
		ERR_clear_error();
		return -1;
	}
	sc->tls_vr = SSL_get_verify_result(sc->conn->ssl);
	sc->tls_verified = check && sc->tls_name[0] != '\0' &&
	    SSL_get0_peer_certificate(sc->conn->ssl) != NULL &&
	    sc->tls_vr == X509_V_OK;
	if (dane == ROUTE_TLSA_DANE) {
		sc->tls_dane = sc->tls_vr == X509_V_OK &&
		    smtpc_dane_matched(sc->conn->ssl, sc->tls_dane_rr,
		    sizeof(sc->tls_dane_rr));
		sc->tls_verified = sc->tls_dane;
	}
	if (testing && !sc->tls_verified) {
		bsnprintf(what, sizeof(what), "certificate not verified for "
		    "%s: %s", sc->tls_name,
		    SSL_get0_peer_certificate(sc->conn->ssl) == NULL ?
		    "no certificate" : X509_verify_cert_error_string(
		    sc->tls_vr));
		smtpc_tls_sts_testing(sc, o, what);
	}
	if (enforce && !sc->tls_verified) {
		sc->state = SMTPC_S_DEAD;
		return smtpc_tls_sts_fail(sc, o, status, why, whysz,
		    "certificate not verified");
	}
	if (verify && !sc->tls_verified) {
		sc->state = SMTPC_S_DEAD;
		strl_copy(status, "4.7.5", 16);
		bsnprintf(why, whysz, "server certificate verification failed "
		    "for %s", sc->peer);
		return -1;
	}
	return 0;
local:
	sc->state = SMTPC_S_DEAD;
	ERR_clear_error();
	strl_copy(status, "4.7.5", 16);
	bsnprintf(why, whysz, "cannot set up TLS toward %s (local problem)",
	    sc->peer);
	return -1;
dead:
	strl_copy(status, sc->err_status, 16);
	strl_copy(why, sc->err, whysz);
	return -1;
}

double
smtpc_tls_time(const struct smtpc *sc)
{
	return sc != NULL && sc->tls_s > 0 ? sc->tls_s : 0;
}

const char *
smtpc_tls(const struct smtpc *sc)
{
	if (sc == NULL || sc->conn == NULL || sc->conn->ssl == NULL)
		return "";
	return sc->conn->tls_info;
}

/*
 * smtpc_tls_trust - what the connection's TLS established, in Postfix's
 * terms: "dane-verified" (a TLSA record matched), "verified" (a chain to
 * a trusted CA that names the host: encrypt, or a check for AUTH),
 * "trusted" (the chain was checked and holds, the name was not),
 * "untrusted" (not checked, or it does not hold: under may no CA store
 * is loaded, so nothing is checked), "anonymous" (no certificate), or
 * "none" (no TLS).
 */
const char *
smtpc_tls_trust(const struct smtpc *sc)
{
	if (sc == NULL || sc->conn == NULL || sc->conn->ssl == NULL)
		return "none";
	if (SSL_get0_peer_certificate(sc->conn->ssl) == NULL)
		return "anonymous";
	if (sc->tls_dane)
		return "dane-verified";
	if (sc->tls_verified)
		return "verified";
	if (sc->tls_checked && sc->tls_vr == X509_V_OK)
		return "trusted";
	return "untrusted";
}

/* smtpc_tls_dane - the TLSA record that matched ("3 1 1 depth 0"), or
 * "". */
const char *
smtpc_tls_dane(const struct smtpc *sc)
{
	return sc != NULL && sc->tls_dane ? sc->tls_dane_rr : "";
}

/*
 * smtpd_check.c - who may send mail where: the relay decision at RCPT,
 * like Postfix's smtpd_check_rcpt() with its default restrictions
 * (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination,
 * reject_unlisted_recipient).
 *
 * Mail for relay_domains and hold_domains is taken from anyone (the
 * backup-MX role); with relay_recipients, only for the addresses and
 * "@domain" entries it lists, and postmaster (RFC 5321 §4.5.1). Mail for
 * anything else is taken from mynetworks and after AUTH, and postmaster
 * at our own names (myhostname, my_names) from anyone. The verdict says
 * which rule refused; the session logs and replies. Under postern pull
 * the pulled domains come first (smtpd_pull_takes): nothing else is taken
 * from the provider, not even from mynetworks. A local session (root or
 * the daemon's user on queue_dir's socket) sends anywhere.
 */
#include <string.h>
#include <strings.h>

#include "smtpd_int.h"

/* smtpd_check_ours - a domain we take mail for from anyone. */
static bool
smtpd_check_ours(const struct conf *c, const char *dom)
{
	return conf_domain_in(&c->relay_domains, dom) ||
	    conf_domain_in(&c->hold_domains, dom);
}

/* smtpd_check_is_me - one of our own names (myhostname is A-labels,
 * conf.c; dom may be in either form). */
static bool
smtpd_check_is_me(const struct conf *c, const char *dom)
{
	return smtp_idn_eq(dom, c->myhostname) ||
	    conf_domain_in(&c->my_names, dom);
}

/* smtpd_check_postmaster - the local part is postmaster, in any case. */
static bool
smtpd_check_postmaster(const struct smtp_addr *a)
{
	return a->local_len == 10 &&
	    strncasecmp(a->addr, "postmaster", 10) == 0;
}

enum smtpd_verdict
smtpd_check_rcpt(const struct smtpd_session *s, const struct smtp_addr *a)
{
	const struct conf	*c = s->srv->conf;
	const char		*dom = smtp_addr_domain(a);
	char			 lc[QUEUE_ADDR_MAX + 1];

	/* Local injection: trusted as `postern enqueue` is (smtpd_local.c). */
	if (s->local)
		return SMTPD_OK;
	/* postern pull: only the pulled domains (smtpd_pull.c), whoever
	 * the provider is. */
	if (s->srv->pull != NULL) {
		if (!smtpd_pull_takes(s->srv->pull, c, dom))
			return SMTPD_REJECT_PULL;
		if (!smtpd_check_ours(c, dom))
			return SMTPD_OK;	/* a --domain of its own */
	}
	if (smtpd_check_ours(c, dom)) {
		strl_copy(lc, a->addr, sizeof(lc));
		if (s->srv->nknown > 0 && !smtpd_rcpt_known(s->srv, lc) &&
		    !smtpd_check_postmaster(a))
			return SMTPD_REJECT_UNLISTED;
		return SMTPD_OK;
	}
	if (s->mynet || s->auth_user != NULL)
		return SMTPD_OK;
	if (smtpd_check_is_me(c, dom) && smtpd_check_postmaster(a))
		return SMTPD_OK;
	return SMTPD_REJECT_RELAY;
}

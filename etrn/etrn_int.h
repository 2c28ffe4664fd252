/*
 * etrn_int.h - what the ETRN files of etrn/ share with smtpd (see
 * etrn.h): the policy (etrn_policy.c) and the command with its flush job
 * (etrn.c).
 */
#ifndef ETRN_INT_H
#define ETRN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etrn.h"
#include "queue.h"

#define ETRN_DOMAIN_MAX		SMTP_DOMAIN_MAX
#define ETRN_QUEUE_NAME_MAX	64	/* "#NAME" */
#define ETRN_QUEUE_DOMAINS_MAX	32	/* members of one #queue */
#define ETRN_QUEUES_MAX		256	/* etrn_queues items */
#define ETRN_RULES_MAX		100000	/* lines of an etrn_policy file */
#define ETRN_WHO_MAX		32	/* conditions of one rule */
#define ETRN_RATE_MAX		1024	/* arguments etrn_min_interval
					 * remembers (the least recently
					 * flushed go first) */

/* ------------------------------------------------------------------ */
/* etrn_policy.c */

enum etrn_mode {
	ETRN_MODE_RELAY,	/* relay_domains and hold_domains, anyone */
	ETRN_MODE_OWNERS,	/* only the domain's AUTH owner */
	ETRN_MODE_FILE,		/* per-domain rules */
};

/* One domain to flush: the domain, and with sub its subdomains. */
struct etrn_target {
	char	domain[ETRN_DOMAIN_MAX + 1];	/* lower case, A-labels */
	bool	sub;
};

/* A named queue of etrn_queues: ETRN #name. */
struct etrn_queue {
	char			name[ETRN_QUEUE_NAME_MAX + 1];
	struct etrn_target	t[ETRN_QUEUE_DOMAINS_MAX];
	size_t			n;
};

/* Who asks. */
struct etrn_client {
	const struct sockaddr	*sa;	/* its address */
	const char		*user;	/* AUTH user, or NULL */
	bool			 owner;	/* user owns the domain asked for */
};

/* etrn_policy_load, etrn_policy_free: etrn.h. */
enum etrn_mode etrn_policy_mode(const struct etrn_policy *);
/* etrn_policy_allows - may the client ETRN dom (sub: @dom)? The owner
 * always may. Never fails. */
bool	 etrn_policy_allows(const struct etrn_policy *, const struct conf *,
	    const char *dom, bool sub, const struct etrn_client *);
/* etrn_policy_queue_find - the queue of that name (any case), or NULL. */
const struct etrn_queue *etrn_policy_queue_find(const struct etrn_policy *,
	    const char *name);
/* The syntax of what ETRN names: a domain (ASCII), a queue name. */
bool	 etrn_policy_domain_ok(const char *);
/* etrn_policy_domain_key - d (checked by etrn_policy_domain_ok) in
 * place as the lookup form every domain of the policy, the queues and
 * the index is in: lower case, A-labels (smtp_idn.c). 0, or -1 when it
 * has none. */
int	 etrn_policy_domain_key(char *d, size_t dsz);
bool	 etrn_policy_name_ok(const char *, size_t len);

/* ------------------------------------------------------------------ */
/* etrn.c */

struct smtpd_session;
struct etrn_job;
struct etrn_rate;
struct routes;

/* What ETRN takes from the configuration; replaced whole on SIGHUP. */
struct etrn_conf {
	struct etrn_policy	*policy;
	struct routes		*routes;	/* routes_file: "caller" */
};

/* etrn_conf_load - NULL on an error (logged). */
struct etrn_conf *etrn_conf_load(const struct conf *);
void	 etrn_conf_free(struct etrn_conf *);

/* etrn_cmd - the ETRN command (smtpd_session.c's table). Replies at once
 * to what it can decide, else hands the flush to the commit thread
 * (state SMTPD_S_COMMIT) and replies in etrn_done(). */
void	 etrn_cmd(struct smtpd_session *, char *arg);
/* etrn_job_run - in the commit thread: count the waiting messages and
 * record the flush requests. Never blocks on the network. */
void	 etrn_job_run(struct queue *, struct etrn_job *);
/* etrn_done - back in the loop: the reply, the log line, the rate table. */
void	 etrn_done(struct smtpd_session *);
void	 etrn_job_free(struct etrn_job *);
/* etrn_job_flushed - did the job record a flush (mail was waiting)? Only
 * then is the scheduler told to forget its down hops: an ETRN of an empty
 * domain, which etrn_min_interval does not hold back, must not make it
 * retry every dead destination. */
bool	 etrn_job_flushed(const struct etrn_job *);
/* etrn_seen_submit - an ATRN or TURN allowed but answered 453 (no mail):
 * record that its domains' sites were seen, in the commit thread (the
 * loop never writes the queue), then reply 453 from etrn_done(). */
void	 etrn_seen_submit(struct smtpd_session *, const char (*dom)[256],
	    size_t n);
/* etrn_job_wake - append the job's flushed domains ("@" for subdomains)
 * to the "flush DOMAIN..." wake in buf (len so far in *len, at most
 * SCHED_WAKE_MAX), sending a full datagram through fd to the scheduler
 * of queue_dir and starting another. */
void	 etrn_job_wake(const struct etrn_job *, int fd, const char *queue_dir,
	    char *buf, size_t *len);
struct etrn_rate *etrn_rate_new(void);
void	 etrn_rate_free(struct etrn_rate *);

#endif

/*
 * fuzz_util.c - fuzz.h: the per-process set-up and the input helpers of
 * the fuzz targets. Linked into every target and replay driver.
 */
#include <crypt.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etrn_int.h"
#include "fuzz.h"

static char	fuzz_tmp[PATH_MAX];

/* fuzz_rm - remove path: a file, or a directory and what is in it (the
 * queue's directory is one level deep). */
static void
fuzz_rm(const char *path, int depth)
{
	DIR		*d;
	struct dirent	*e;
	char		 p[PATH_MAX + 256];

	if (depth > 2 || (d = opendir(path)) == NULL) {
		(void)unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		fuzz_rm(p, depth + 1);
	}
	closedir(d);
	(void)rmdir(path);
}

static void
fuzz_cleanup(void)
{
	if (fuzz_tmp[0] != '\0')
		fuzz_rm(fuzz_tmp, 0);
}

void
fuzz_init(void)
{
	const char	*t;

	if (fuzz_tmp[0] != '\0')
		return;
	log_init("fuzz", LOG_DEST_NONE);
	signal(SIGPIPE, SIG_IGN);
	/* FUZZ_TMP (run.sh's, removed after the run: a crash or libFuzzer's
	 * own exit skips atexit), else a tmpfs when there is one. */
	if ((t = getenv("FUZZ_TMP")) == NULL || *t == '\0')
		t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	else
		(void)mkdir(t, 0700);		/* made here if missing */
	snprintf(fuzz_tmp, sizeof(fuzz_tmp), "%s/postern-fuzz.XXXXXX", t);
	if (mkdtemp(fuzz_tmp) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(fuzz_cleanup);
}

const char *
fuzz_dir(void)
{
	return fuzz_tmp;
}

const char *
fuzz_file(const char *name, const void *p, size_t n)
{
	static char	path[PATH_MAX + 256];
	int		fd;
	ssize_t		w;

	snprintf(path, sizeof(path), "%s/%s", fuzz_tmp, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return NULL;
	while (n > 0) {
		if ((w = write(fd, p, n)) <= 0) {
			close(fd);
			return NULL;
		}
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	close(fd);
	return path;
}

char *
fuzz_str(const uint8_t *p, size_t n)
{
	char	*s = xmalloc(n + 1);

	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

uint8_t
fuzz_take_byte(struct fuzz_in *in)
{
	uint8_t	b;

	if (in->n == 0)
		return 0;
	b = in->p[0];
	in->p++;
	in->n--;
	return b;
}

char *
fuzz_take_part(struct fuzz_in *in, size_t *len)
{
	const uint8_t	*sep;
	size_t		 n, skip = 0;
	char		*s;

	sep = memmem(in->p, in->n, FUZZ_SEP, strlen(FUZZ_SEP));
	if (sep != NULL) {
		n = (size_t)(sep - in->p);
		skip = strlen(FUZZ_SEP);
	} else
		n = in->n;
	s = fuzz_str(in->p, n);
	in->p += n + skip;
	in->n -= n + skip;
	if (len != NULL)
		*len = n;
	return s;
}

/* ------------------------------------------------------------------ */
/* The server's world (fuzz_env). */

static const char conf_text[] =
    "myhostname = mx.fuzz.example\n"
    "my_names = alias.fuzz.example\n"
    "relay_domains = relay.example open.relay.example caller.example "
    ".kids.example\n"
    "hold_domains = hold.example site.example\n"
    "mynetworks = 127.0.0.2/32 2001:db8::/32\n"
    "etrn_queues = pair:relay.example:@kids.example\n";

/* What the four configurations add (F_CONF). */
static const char *const conf_more[4] = {
	"",
	"auth_plaintext = yes\nturn_enable = yes\nauth_failure_delay = 0\n"
	    "etrn_policy = owners\n",
	"max_errors = 3\nmax_recipients = 3\nmessage_size_limit = 2000\n"
	    "max_received_headers = 2\ncommand_length_limit = 512\n"
	    "etrn_min_interval = 0\nauth_failure_limit = 1\n",
	"auth_plaintext = yes\nmax_errors = 1000\n",	/* + etrn_policy */
};

static const char routes_text[] =
    "relay.example [smart.example.net]:2525\n"
    "caller.example caller:2526\n"
    "sub.kids.example caller:2527\n"
    "site.example hold\n";

static const char policy_text[] =
    "relay.example any\n"
    "site.example 127.0.0.0/8 user=site\n"
    ".kids.example owner\n"
    "hold.example user=site+127.0.0.1/32\n";

/* init_users - the users: "site" with every secret (auth_make_line), and
 * "fast" with a cheap MD5-crypt one, so that PLAIN and LOGIN cost the
 * fuzzer little. */
static void
init_users(char *path, size_t pathsz)
{
	struct conf_list	 doms = { NULL, 0 };
	struct sbuf		*b = sbuf_new();
	struct crypt_data	 cd;
	const char		*h, *f;

	doms.v = xcalloc(4, sizeof(*doms.v));
	doms.v[doms.n++] = xstrdup("site.example");
	doms.v[doms.n++] = xstrdup("caller.example");
	doms.v[doms.n++] = xstrdup(".kids.example");
	if (auth_make_line("site", "secret", &doms, b) != 0)
		abort();
	sbuf_catc(b, '\n');
	memset(&cd, 0, sizeof(cd));
	if ((h = crypt_r("secret", "$1$fuzzsalt$", &cd)) == NULL)
		abort();
	sbuf_catf(b, "fast:%s:hold.example,relay.example\n", h);
	sbuf_cat(b, "none:{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a3"
	    "54b21152711fb604ca3e035e7015116b:\n");
	if ((f = fuzz_file("users", b->s, b->len)) == NULL)
		abort();
	strl_copy(path, f, pathsz);
	sbuf_free(b);
	conf_list_free(&doms);
}

const struct fuzz_env *
fuzz_env(void)
{
	static struct fuzz_env	 env;
	char		 users[4096], routes[4096], policy[4096];
	char		 err[1024];
	struct sbuf	*t;
	const char	*f;
	int		 i;

	if (env.auth != NULL)
		return &env;
	fuzz_init();
	auth_sasl_test_nonce("fuzzfuzzfuzznonce");
	init_users(users, sizeof(users));
	if ((env.auth = auth_db_load(users, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz: users: %s\n", err);
		abort();
	}
	if ((f = fuzz_file("routes", routes_text, strlen(routes_text))) == NULL)
		abort();
	strl_copy(routes, f, sizeof(routes));
	if ((f = fuzz_file("policy", policy_text, strlen(policy_text))) ==
	    NULL)
		abort();
	strl_copy(policy, f, sizeof(policy));
	for (i = 0; i < 4; i++) {
		t = sbuf_new();
		sbuf_cat(t, conf_text);
		sbuf_catf(t, "queue_dir = %s/queue\nusers_file = %s\n"
		    "routes_file = %s\n", fuzz_dir(), users, routes);
		sbuf_cat(t, conf_more[i]);
		if (i == 3)
			sbuf_catf(t, "etrn_policy = %s\n", policy);
		if ((f = fuzz_file("conf", t->s, t->len)) == NULL ||
		    (env.conf[i] = conf_load(f, err, sizeof(err))) == NULL) {
			fprintf(stderr, "fuzz: conf %d: %s\n", i, err);
			abort();
		}
		sbuf_free(t);
		if ((env.etrn[i] = etrn_conf_load(env.conf[i])) == NULL)
			abort();
	}
	if (queue_open(env.conf[0]->queue_dir, QUEUE_CREATE, 1 << 20, &env.q,
	    err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz: queue: %s\n", err);
		abort();
	}
	return &env;
}

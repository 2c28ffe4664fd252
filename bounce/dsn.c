/*
 * dsn.c - struct dsn: RFC 3463 status codes, and the status of a reply or
 * of a local cause.
 *
 * A status is class.subject.detail: class 2, 4 or 5, subject and detail
 * 1-3 digits (RFC 3463 §2). RFC 3464 §2.3.4 wants the Status field
 * without leading zeros, so codes are kept canonical ("5.01.001" is
 * "5.1.1"). A reply's enhanced code counts only when its class agrees
 * with the reply's (RFC 2034 §4: a 450 reply with 5.1.1 is broken), else
 * the reply gets X.0.0 of its own class (RFC 3461 §6.3, RFC 3463 §3.1).
 */
#include <string.h>

#include "bounce.h"
#include "smtp.h"

size_t
dsn_status_parse(const char *s, char out[DSN_STATUS_MAX])
{
	unsigned	v[3];
	size_t		i = 0, n;
	int		part;

	out[0] = '\0';
	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	v[0] = (unsigned)(s[0] - '0');
	i = 1;
	for (part = 1; part < 3; part++) {
		if (s[i++] != '.')
			return 0;
		v[part] = 0;
		for (n = 0; s[i] >= '0' && s[i] <= '9'; i++, n++)
			if (n < 3)
				v[part] = v[part] * 10 + (unsigned)(s[i] - '0');
		if (n < 1 || n > 3)
			return 0;
	}
	if (s[i] != '\0' && s[i] != ' ' && s[i] != '\t')
		return 0;
	if (!bsnprintf(out, DSN_STATUS_MAX, "%u.%u.%u", v[0], v[1], v[2])) {
		out[0] = '\0';
		return 0;
	}
	return i;
}

bool
dsn_status_valid(const char *s)
{
	char	c[DSN_STATUS_MAX];
	size_t	n;

	n = dsn_status_parse(s, c);
	return n > 0 && s[n] == '\0' && strcmp(s, c) == 0;
}

int
dsn_status_class(const char *s)
{
	return dsn_status_valid(s) ? s[0] - '0' : 0;
}

/* dsn_clean - copy peer text: CR, LF, TAB and other controls (and DEL)
 * become spaces, bytes >= 0x80 become '?' (a reply is ASCII, RFC 5321
 * §2.4; the Diagnostic-Code must be 7-bit, RFC 3464 §2.1.1), at most
 * dstsz - 1 bytes. */
static void
dsn_clean(char *dst, size_t dstsz, const char *src)
{
	size_t		i;
	unsigned char	c;

	if (dstsz == 0)
		return;
	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < dstsz; i++) {
		c = (unsigned char)src[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		else if (c >= 0x80)
			c = '?';
		dst[i] = (char)c;
	}
	dst[i] = '\0';
}

/* dsn_clean_host - a Remote-MTA name: letters, digits, '.', '-', ':',
 * '[' and ']' (address literals) only, or "". */
static void
dsn_clean_host(char *dst, size_t dstsz, const char *src)
{
	size_t	i;

	dst[0] = '\0';
	if (src == NULL)
		return;
	for (i = 0; src[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_", src[i]) ==
		    NULL || i + 1 >= dstsz)
			return;
	strl_copy(dst, src, dstsz);
}

int
dsn_from_reply(const char *reply, const char *rmta, struct dsn *out)
{
	char	st[DSN_STATUS_MAX];
	size_t	k;
	int	cls;

	memset(out, 0, sizeof(*out));
	dsn_clean(out->reply, sizeof(out->reply), reply);
	dsn_clean_host(out->rmta, sizeof(out->rmta), rmta);
	if (reply == NULL || strlen(reply) < 3 ||
	    (reply[0] != '2' && reply[0] != '4' && reply[0] != '5') ||
	    reply[1] < '0' || reply[1] > '9' || reply[2] < '0' ||
	    reply[2] > '9' || (reply[3] != '\0' && reply[3] != ' ' &&
	    reply[3] != '-')) {
		out->action = DSN_ACTION_FAILED;
		out->cause = DSN_CAUSE_REPLY;
		strl_copy(out->status, "5.0.0", sizeof(out->status));
		return -1;
	}
	cls = reply[0] - '0';
	switch (cls) {
	case 2:
		/* We relay: a 2xx passed the message on, and a hop without
		 * DSN will send no notice of its own (RFC 3461 §5.2.2). */
		out->action = DSN_ACTION_RELAYED;
		out->cause = DSN_CAUSE_SUCCESS;
		break;
	case 4:
		out->action = DSN_ACTION_DELAYED;
		out->cause = DSN_CAUSE_DELAY;
		break;
	default:
		out->action = DSN_ACTION_FAILED;
		out->cause = DSN_CAUSE_REPLY;
		break;
	}
	k = reply[3] != '\0' ? dsn_status_parse(reply + 4, st) : 0;
	if (k > 0 && st[0] == reply[0])
		strl_copy(out->status, st, sizeof(out->status));
	else
		bsnprintf(out->status, sizeof(out->status), "%d.0.0", cls);
	return 0;
}

void
dsn_for_cause(enum dsn_cause cause, const char *status, const char *rmta,
    const char *reply, struct dsn *out)
{
	const char	*def;
	char		 st[DSN_STATUS_MAX];
	size_t		 k;

	memset(out, 0, sizeof(*out));
	out->cause = cause;
	out->action = DSN_ACTION_FAILED;
	switch (cause) {
	case DSN_CAUSE_NULLMX:
		def = "5.1.10";		/* RFC 7505 §4.1 */
		break;
	case DSN_CAUSE_NXDOMAIN:
		def = "5.1.2";
		break;
	case DSN_CAUSE_LOOP:
	case DSN_CAUSE_HOPS:
		def = "5.4.6";		/* RFC 5321 §6.3 */
		break;
	case DSN_CAUSE_ADMIN:
		def = "5.0.0";
		break;
	case DSN_CAUSE_EXPIRED:
	case DSN_CAUSE_HOLD_EXPIRED:
		def = "4.4.7";
		break;
	case DSN_CAUSE_DELAY:
		def = "4.0.0";
		out->action = DSN_ACTION_DELAYED;
		break;
	case DSN_CAUSE_SUCCESS:
		def = "2.0.0";
		out->action = DSN_ACTION_RELAYED;
		break;
	case DSN_CAUSE_REPLY:
	default:
		def = "5.0.0";
		break;
	}
	k = status != NULL ? dsn_status_parse(status, st) : 0;
	/* A given status must fit the action: failed takes 4.x.x or 5.x.x
	 * (a 4.x.x failure is one we gave up on, RFC 3464 §2.3.3),
	 * delayed 4.x.x, success 2.x.x. */
	if (k == 0 || (out->action == DSN_ACTION_FAILED && st[0] == '2') ||
	    (out->action == DSN_ACTION_DELAYED && st[0] != '4') ||
	    (out->action == DSN_ACTION_RELAYED && st[0] != '2'))
		strl_copy(out->status, def, sizeof(out->status));
	else
		strl_copy(out->status, st, sizeof(out->status));
	dsn_clean(out->reply, sizeof(out->reply), reply);
	dsn_clean_host(out->rmta, sizeof(out->rmta), rmta);
}

const char *
dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	case DSN_ACTION_EXPANDED:
		return "expanded";
	}
	return "failed";
}

const char *
dsn_cause_name(enum dsn_cause c)
{
	switch (c) {
	case DSN_CAUSE_REPLY:
		return "reply";
	case DSN_CAUSE_EXPIRED:
		return "expired";
	case DSN_CAUSE_HOLD_EXPIRED:
		return "hold-expired";
	case DSN_CAUSE_NULLMX:
		return "null-mx";
	case DSN_CAUSE_NXDOMAIN:
		return "nxdomain";
	case DSN_CAUSE_LOOP:
		return "loop";
	case DSN_CAUSE_HOPS:
		return "hops";
	case DSN_CAUSE_ADMIN:
		return "admin";
	case DSN_CAUSE_DELAY:
		return "delay";
	case DSN_CAUSE_SUCCESS:
		return "success";
	}
	return "reply";
}

static int
dsn_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;		/* xtext hex is upper case (RFC 3461 §4) */
}

int
dsn_xtext_decode(const char *in, char *out, size_t outsz)
{
	size_t		i, o = 0;
	int		hi, lo;
	unsigned char	c;

	for (i = 0; in[i] != '\0'; i++) {
		c = (unsigned char)in[i];
		if (c == '+') {
			if ((hi = dsn_hex(in[i + 1])) < 0 ||
			    (lo = dsn_hex(in[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (c < '!' || c > '~' || c == '=')
			return -1;
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	if (outsz == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

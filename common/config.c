/*
 * config: load the INI configuration file into one immutable object.
 *
 * Owns the struct config it returns and every string in it (free with
 * config_free()).  The file is parsed by inih's ini_parse_stream() through
 * our own reader, which
 *   - reads whole lines with bounded memory and counts them, so the
 *     handler (inih r55 passes it no line number) knows the current line:
 *     inih calls the handler for a line, continuation lines included,
 *     before it asks for the next one;
 *   - refuses lines over CONFIG_LINE_MAX - 1 octets and NUL bytes, which
 *     inih would silently split or cut;
 *   - parses section headers itself and hands inih a short "[N]" token
 *     instead, so that names longer than inih's 50-octet section buffer
 *     are not silently cut, empty sections are seen, and junk after ']'
 *     is an error;
 *   - reports lines without '=' itself, so every syntax error is printed,
 *     not only the first one inih returns.
 * Every key is described once in the table keys[] (section, name, type,
 * range, field).  Each problem is printed as
 *   FILE:LINE: [SECTION] KEY: message
 * and counted; on any problem nothing is returned.
 * config_free() and config_key_line() take only objects config_load() made.
 * Limits: lines of at most CONFIG_LINE_MAX - 1 octets without the line
 * end; key names of at most 49 octets (inih's MAX_NAME); CONFIG_MAX_SECTIONS
 * sections; CONFIG_MAX_ADDRESSES addresses per listener.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/tls1.h>

#include "config.h"
#include "config_lines.h"
#include "log.h"
#include "num.h"

#define CONFIG_MAX_SECTIONS	4096
#define CONFIG_MAX_DKIM		8	/* dkim = lines per domain */
#define CONFIG_NAME_MAX		32	/* the NAME in [listen NAME] */
#define CONFIG_KEYS_MAX		64	/* entries in keys[] */

#define KB	((uint64_t)1024)
#define MIN	((uint64_t)60)
#define HOUR	((uint64_t)3600)
#define DAY	((uint64_t)86400)

enum sec_kind {
	SEC_BAD = 0,		/* reported already; its keys are ignored */
	SEC_RELAYD,
	SEC_LISTEN,
	SEC_TLS,
	SEC_USERS,
	SEC_DOMAIN,
	SEC_LIMITS,
	SEC_DELIVERY,
	SEC_SMARTHOST,
	SEC_QUEUE,
	SEC_DNS,
	SEC_POLICY,
};

static const struct {
	const char	*word;
	enum sec_kind	 kind;
	int		 named;		/* [WORD NAME], repeatable */
} sec_words[] = {
	{ "relayd", SEC_RELAYD, 0 },
	{ "listen", SEC_LISTEN, 1 },
	{ "tls", SEC_TLS, 0 },
	{ "users", SEC_USERS, 0 },
	{ "domain", SEC_DOMAIN, 1 },
	{ "limits", SEC_LIMITS, 0 },
	{ "delivery", SEC_DELIVERY, 0 },
	{ "smarthost", SEC_SMARTHOST, 0 },
	{ "queue", SEC_QUEUE, 0 },
	{ "dns", SEC_DNS, 0 },
	{ "policy", SEC_POLICY, 0 },
};

enum key_type {
	T_STR,		/* any text, may be empty */
	T_PATH,		/* non-empty text */
	T_HOSTNAME,	/* a host name, lower-cased */
	T_DOMAIN,	/* a host name with at least one dot, lower-cased */
	T_HOST,		/* a host name or a numeric IP address */
	T_UINT,		/* unsigned, min..max */
	T_SIZE,		/* uint64_t bytes, k/m/g suffixes */
	T_DUR,		/* uint64_t seconds, s/m/h/d suffixes */
	T_DUR0,		/* as T_DUR, but 0 is also allowed */
	T_BOOL,		/* int */
	T_ENUM,		/* int, one of names[] */
	T_ADDRESS,	/* listener address, repeatable */
	T_DKIM,		/* SELECTOR:KEYFILE, repeatable */
	T_CANON,	/* HEADER/BODY canonicalization */
	T_SERVERS,	/* IP[:PORT], comma-separated, or empty */
};

struct enum_name {
	const char	*name;
	int		 value;
};

static const struct enum_name tls_modes[] = {
	{ "starttls", TLS_MODE_STARTTLS }, { "implicit", TLS_MODE_IMPLICIT },
	{ "none", TLS_MODE_NONE }, { NULL, 0 } };
static const struct enum_name smarthost_tls_modes[] = {
	{ "starttls", TLS_MODE_STARTTLS }, { "implicit", TLS_MODE_IMPLICIT },
	{ NULL, 0 } };
static const struct enum_name roles[] = {
	{ "submission", LISTEN_ROLE_SUBMISSION },
	{ "bounce", LISTEN_ROLE_BOUNCE }, { NULL, 0 } };
static const struct enum_name delivery_modes[] = {
	{ "mx", DELIVERY_MODE_MX }, { "smarthost", DELIVERY_MODE_SMARTHOST },
	{ "capture", DELIVERY_MODE_CAPTURE }, { NULL, 0 } };
static const struct enum_name delivery_tlss[] = {
	{ "opportunistic", DELIVERY_TLS_OPPORTUNISTIC },
	{ "required", DELIVERY_TLS_REQUIRED },
	{ "verify", DELIVERY_TLS_VERIFY }, { NULL, 0 } };
static const struct enum_name bare_newlines[] = {
	{ "reject", 0 }, { "normalize", 1 }, { NULL, 0 } };
static const struct enum_name log_levels[] = {
	{ "error", LOG_LEVEL_ERROR }, { "warn", LOG_LEVEL_WARN },
	{ "info", LOG_LEVEL_INFO }, { "debug", LOG_LEVEL_DEBUG },
	{ NULL, 0 } };
static const struct enum_name display_name_modes[] = {
	{ "reject", 0 }, { "allow", 1 }, { NULL, 0 } };
static const struct enum_name received_client_modes[] = {
	{ "hide", 0 }, { "show", 1 }, { NULL, 0 } };
static const struct enum_name tls_versions[] = {
	{ "1.2", TLS1_2_VERSION }, { "1.3", TLS1_3_VERSION }, { NULL, 0 } };

struct key_def {
	enum sec_kind		 sec;
	const char		*name;
	enum key_type		 type;
	size_t			 off;
	uint64_t		 min, max;
	const struct enum_name	*names;
};

#define C(f)	offsetof(struct config, f)
#define L(f)	offsetof(struct config_listen, f)
#define D(f)	offsetof(struct config_domain, f)

/* Every key: docs/configuration.md and etc/relayd.conf.example follow it. */
static const struct key_def keys[] = {
	{ SEC_RELAYD, "hostname", T_HOSTNAME, C(hostname), 0, 0, NULL },
	{ SEC_RELAYD, "spool", T_PATH, C(spool), 0, 0, NULL },
	{ SEC_RELAYD, "user", T_STR, C(user), 0, 0, NULL },
	{ SEC_RELAYD, "secret_file", T_PATH, C(secret_file), 0, 0, NULL },
	{ SEC_RELAYD, "control_socket", T_PATH, C(control_socket), 0, 0,
	    NULL },
	{ SEC_RELAYD, "workers", T_UINT, C(workers), 0, 64, NULL },
	{ SEC_RELAYD, "log_level", T_ENUM, C(log_level), 0, 0, log_levels },

	{ SEC_LISTEN, "address", T_ADDRESS, 0, 0, 0, NULL },
	{ SEC_LISTEN, "tls", T_ENUM, L(tls), 0, 0, tls_modes },
	{ SEC_LISTEN, "role", T_ENUM, L(role), 0, 0, roles },
	{ SEC_LISTEN, "insecure_auth", T_BOOL, L(insecure_auth), 0, 0, NULL },
	{ SEC_LISTEN, "proxy_protocol", T_BOOL, L(proxy_protocol), 0, 0,
	    NULL },
	{ SEC_LISTEN, "max_connections", T_UINT, L(max_connections), 1,
	    1000000, NULL },

	{ SEC_TLS, "certificate", T_PATH, C(tls_certificate), 0, 0, NULL },
	{ SEC_TLS, "key", T_PATH, C(tls_key), 0, 0, NULL },
	{ SEC_TLS, "min_version", T_ENUM, C(tls_min_version), 0, 0,
	    tls_versions },

	{ SEC_USERS, "file", T_PATH, C(users_file), 0, 0, NULL },

	{ SEC_DOMAIN, "dkim", T_DKIM, 0, 0, 0, NULL },
	{ SEC_DOMAIN, "bounce_domain", T_DOMAIN, D(bounce_domain), 0, 0,
	    NULL },
	{ SEC_DOMAIN, "canonicalization", T_CANON, 0, 0, 0, NULL },
	{ SEC_DOMAIN, "signature_lifetime", T_DUR0, D(signature_lifetime),
	    HOUR, 366 * DAY, NULL },
	{ SEC_DOMAIN, "allow_weak_key", T_BOOL, D(allow_weak_key), 0, 0,
	    NULL },

	{ SEC_LIMITS, "message_size", T_SIZE, C(message_size), KB,
	    2 * KB * KB * KB, NULL },
	{ SEC_LIMITS, "recipients", T_UINT, C(recipients), 1, 100000, NULL },
	{ SEC_LIMITS, "connections_per_ip", T_UINT, C(connections_per_ip), 1,
	    100000, NULL },
	/* RFC 5322 2.1.1: 998 octets at most, 78 recommended. */
	{ SEC_LIMITS, "line_length", T_UINT, C(line_length), 78, 998, NULL },
	{ SEC_LIMITS, "bare_newlines", T_ENUM, C(bare_newlines_normalize), 0,
	    0, bare_newlines },
	{ SEC_LIMITS, "header_size", T_SIZE, C(header_size), KB,
	    64 * KB * KB, NULL },
	{ SEC_LIMITS, "max_received", T_UINT, C(max_received), 1, 1000,
	    NULL },
	{ SEC_LIMITS, "command_timeout", T_DUR, C(command_timeout), 1, DAY,
	    NULL },
	{ SEC_LIMITS, "data_timeout", T_DUR, C(data_timeout), 1, DAY, NULL },
	{ SEC_LIMITS, "session_timeout", T_DUR, C(session_timeout), 1, DAY,
	    NULL },
	{ SEC_LIMITS, "soft_error_limit", T_UINT, C(soft_error_limit), 1,
	    1000, NULL },
	{ SEC_LIMITS, "hard_error_limit", T_UINT, C(hard_error_limit), 1,
	    1000, NULL },
	{ SEC_LIMITS, "error_delay", T_DUR, C(error_delay), 0, MIN, NULL },
	{ SEC_LIMITS, "auth_delay_max", T_DUR, C(auth_delay_max), 0, 5 * MIN,
	    NULL },

	{ SEC_DELIVERY, "mode", T_ENUM, C(delivery_mode), 0, 0,
	    delivery_modes },
	{ SEC_DELIVERY, "tls", T_ENUM, C(delivery_tls), 0, 0, delivery_tlss },
	{ SEC_DELIVERY, "mx_port", T_UINT, C(mx_port), 1, 65535, NULL },
	{ SEC_DELIVERY, "capture_dir", T_STR, C(capture_dir), 0, 0, NULL },
	{ SEC_DELIVERY, "ca_file", T_STR, C(delivery_ca_file), 0, 0, NULL },
	{ SEC_DELIVERY, "max_connections", T_UINT, C(max_connections), 1,
	    10000, NULL },
	{ SEC_DELIVERY, "max_connections_per_host", T_UINT,
	    C(max_connections_per_host), 1, 1000, NULL },
	{ SEC_DELIVERY, "max_messages_per_connection", T_UINT,
	    C(max_messages_per_connection), 1, 100000, NULL },

	{ SEC_SMARTHOST, "host", T_HOST, C(smarthost_host), 0, 0, NULL },
	{ SEC_SMARTHOST, "port", T_UINT, C(smarthost_port), 1, 65535, NULL },
	{ SEC_SMARTHOST, "tls", T_ENUM, C(smarthost_tls), 0, 0,
	    smarthost_tls_modes },
	{ SEC_SMARTHOST, "verify", T_BOOL, C(smarthost_verify), 0, 0, NULL },
	{ SEC_SMARTHOST, "username", T_STR, C(smarthost_username), 0, 0,
	    NULL },
	{ SEC_SMARTHOST, "password_file", T_STR, C(smarthost_password_file),
	    0, 0, NULL },
	{ SEC_SMARTHOST, "ca_file", T_STR, C(smarthost_ca_file), 0, 0, NULL },

	{ SEC_QUEUE, "retry_min", T_DUR, C(retry_min), 1, DAY, NULL },
	{ SEC_QUEUE, "retry_max", T_DUR, C(retry_max), 1, 7 * DAY, NULL },
	{ SEC_QUEUE, "max_age", T_DUR, C(max_age), MIN, 30 * DAY, NULL },
	{ SEC_QUEUE, "delay_warning", T_DUR0, C(delay_warning), 1, 30 * DAY,
	    NULL },
	{ SEC_QUEUE, "hold", T_BOOL, C(hold), 0, 0, NULL },

	{ SEC_DNS, "servers", T_SERVERS, C(dns_servers), 0, 0, NULL },

	{ SEC_POLICY, "display_name_address", T_ENUM,
	    C(display_name_address_allow), 0, 0, display_name_modes },
	{ SEC_POLICY, "received_client", T_ENUM, C(received_show_client), 0, 0,
	    received_client_modes },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

_Static_assert(NKEYS <= CONFIG_KEYS_MAX, "CONFIG_KEYS_MAX too small");

struct section {
	enum sec_kind	 kind;
	char		*name;		/* header text, normalized */
	int		 line;
	size_t		 index;		/* into listens or domains */
	/* Line where keys[i] was first set in this section; 0: not set. */
	int		 keyline[CONFIG_KEYS_MAX];
};

/* What config_load() returns: the public part first. */
struct config_priv {
	struct config	 pub;
	struct section	*secs;
	size_t		 nsecs;
};

struct ctx {
	struct config_priv	*cp;
	struct config		*cfg;
	const char		*path;
	FILE			*err;
	FILE			*f;
	int			 nerr;
	int			 line;		/* reader's current line */
	int			 cont;		/* it continues a value */
	int			 prev_key;	/* a value may continue */
	int			 read_error;
	size_t			 cap_listens, cap_domains;
};

static void	 cfg_error(struct ctx *, int, const struct section *,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));

static void
cfg_error(struct ctx *c, int line, const struct section *s, const char *key,
    const char *fmt, ...)
{
	va_list	 ap;

	c->nerr++;
	if (c->err == NULL)
		return;
	if (line > 0)
		fprintf(c->err, "%s:%d: ", c->path, line);
	else
		fprintf(c->err, "%s: ", c->path);
	if (s != NULL && key != NULL)
		fprintf(c->err, "[%s] %s: ", s->name, key);
	else if (s != NULL)
		fprintf(c->err, "[%s] ", s->name);
	else if (key != NULL)
		fprintf(c->err, "%s: ", key);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
}

/* ---------------------------------------------------------------------
 * Value syntax.
 */

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* No control characters (the line reader already refused NUL). */
static int
text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/*
 * Normalize a host name in place (lower case, one trailing dot removed)
 * and check it (RFC 1035 2.3.1, RFC 1123 2.1): labels of 1..63 letters,
 * digits and hyphens, no hyphen first or last, 253 octets at most; with
 * need_dot, at least two labels (a mail domain).
 */
static int
hostname_norm(char *s, int need_dot)
{
	size_t	 len = strlen(s), lab = 0, i;
	int	 dots = 0;

	if (len > 1 && s[len - 1] == '.')
		s[--len] = '\0';
	if (len == 0 || len > 253)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c >= 'A' && c <= 'Z')
			s[i] = c = c - 'A' + 'a';
		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return -1;
			lab = 0;
			dots++;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return -1;
		if (c == '-' && lab == 0)
			return -1;
		if (++lab > 63)
			return -1;
	}
	if (lab == 0 || s[len - 1] == '-' || (need_dot && dots == 0))
		return -1;
	return 0;
}

/* A numeric IP address (no brackets); returns its family or -1. */
static int
numeric_host(const char *host)
{
	struct addrinfo	 hints, *res;
	int		 fam;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -1;
	fam = res->ai_family;
	freeaddrinfo(res);
	return fam;
}

/*
 * Split "HOST:PORT" or "[V6]:PORT" (port optional when portopt) into a
 * numeric host and port, and write a canonical "host|port" into canon.
 * Returns 0, or -1 with *why set.
 */
static int
hostport_parse(const char *s, int portopt, char *canon, size_t canonlen,
    const char **why)
{
	struct addrinfo	 hints, *res;
	char		 host[INET6_ADDRSTRLEN + 1], hbuf[NI_MAXHOST];
	char		 sbuf[NI_MAXSERV];
	const char	*port = NULL, *end;
	uint64_t	 p;
	size_t		 hl;
	int		 v6 = 0;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			*why = "missing ']'";
			return -1;
		}
		hl = end - (s + 1);
		if (hl == 0 || hl >= sizeof(host)) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		v6 = 1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0') {
			*why = "expected ':' after ']'";
			return -1;
		}
	} else {
		end = strrchr(s, ':');
		if (end != NULL && strchr(s, ':') != end) {
			if (!portopt) {
				*why = "IPv6 addresses need brackets: "
				    "[ADDRESS]:PORT";
				return -1;
			}
			end = NULL;	/* a bare IPv6 address, no port */
			v6 = 1;
		}
		hl = end != NULL ? (size_t)(end - s) : strlen(s);
		if (hl == 0 || hl >= sizeof(host)) {
			*why = "bad host (must be a numeric IP address)";
			return -1;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (end != NULL)
			port = end + 1;
	}
	if (port == NULL && !portopt) {
		*why = "missing :PORT";
		return -1;
	}
	if (port != NULL && num_parse_u64(port, 1, 65535, &p) == -1) {
		*why = "port must be a number 1..65535";
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		*why = v6 ? "bad IPv6 address" :
		    "bad host (must be a numeric IP address)";
		return -1;
	}
	if (getnameinfo(res->ai_addr, res->ai_addrlen, hbuf, sizeof(hbuf),
	    sbuf, sizeof(sbuf), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		freeaddrinfo(res);
		*why = "bad address";
		return -1;
	}
	freeaddrinfo(res);
	if (canon != NULL)
		snprintf(canon, canonlen, "%s|%s", hbuf, port ? sbuf : "");
	return 0;
}

/* RFC 6376 3.1: selector = sub-domain *( "." sub-domain ). */
static int
selector_ok(const char *s, size_t len)
{
	size_t	 i, lab = 0;

	if (len == 0 || len > 63)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c == '-' && lab > 0))
			lab++;
		else
			return 0;
	}
	return lab > 0 && s[len - 1] != '-';
}

static int
name_ok(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > CONFIG_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.'))
			return 0;
	}
	return 1;
}

static int
set_str(char **field, const char *v)
{
	char	*n;

	if ((n = strdup(v)) == NULL)
		return -1;
	free(*field);
	*field = n;
	return 0;
}

/* ---------------------------------------------------------------------
 * Sections.
 */

static struct section *
section_add(struct ctx *c, enum sec_kind kind, const char *name, int line)
{
	struct config_priv	*cp = c->cp;
	struct section		*ns;

	if (cp->nsecs >= CONFIG_MAX_SECTIONS)
		return NULL;
	ns = reallocarray(cp->secs, cp->nsecs + 1, sizeof(*ns));
	if (ns == NULL)
		return NULL;
	cp->secs = ns;
	ns = &cp->secs[cp->nsecs];
	memset(ns, 0, sizeof(*ns));
	if ((ns->name = strdup(name)) == NULL)
		return NULL;
	ns->kind = kind;
	ns->line = line;
	cp->nsecs++;
	return ns;
}

static struct section *
section_find(const struct config_priv *cp, const char *name)
{
	size_t	 i;

	for (i = 0; i < cp->nsecs; i++)
		if (cp->secs[i].kind != SEC_BAD &&
		    strcmp(cp->secs[i].name, name) == 0)
			return &cp->secs[i];
	return NULL;
}

static int
listen_new(struct ctx *c, struct section *s, const char *name)
{
	struct config		*cfg = c->cfg;
	struct config_listen	*l;

	if (cfg->nlistens == c->cap_listens) {
		size_t n = c->cap_listens ? c->cap_listens * 2 : 4;

		l = reallocarray(cfg->listens, n, sizeof(*l));
		if (l == NULL)
			return -1;
		cfg->listens = l;
		c->cap_listens = n;
	}
	l = &cfg->listens[cfg->nlistens];
	memset(l, 0, sizeof(*l));
	if ((l->name = strdup(name)) == NULL)
		return -1;
	l->tls = TLS_MODE_STARTTLS;
	l->role = LISTEN_ROLE_SUBMISSION;
	l->max_connections = 1000;
	l->line = s->line;
	s->index = cfg->nlistens++;
	return 0;
}

static int
domain_new(struct ctx *c, struct section *s, const char *name)
{
	struct config		*cfg = c->cfg;
	struct config_domain	*d;

	if (cfg->ndomains == c->cap_domains) {
		size_t n = c->cap_domains ? c->cap_domains * 2 : 4;

		d = reallocarray(cfg->domains, n, sizeof(*d));
		if (d == NULL)
			return -1;
		cfg->domains = d;
		c->cap_domains = n;
	}
	d = &cfg->domains[cfg->ndomains];
	memset(d, 0, sizeof(*d));
	if ((d->name = strdup(name)) == NULL)
		return -1;
	d->canon_header = DKIM_CANON_RELAXED;
	d->canon_body = DKIM_CANON_RELAXED;
	d->line = s->line;
	s->index = cfg->ndomains++;
	return 0;
}

/*
 * A section header line "[WORD]" or "[WORD NAME]" (already stripped, '['
 * first).  Returns the index of the new section, or -1 after reporting.
 */
static int
section_header(struct ctx *c, char *start)
{
	struct section	*s, *old;
	char		*end, *after, *word, *arg, *p;
	char		 full[CONFIG_LINE_MAX + 16];
	size_t		 i;
	int		 named = 0;
	enum sec_kind	 kind = SEC_BAD;

	if ((end = strchr(start + 1, ']')) == NULL) {
		cfg_error(c, c->line, NULL, NULL, "section header without ']'");
		return -1;
	}
	*end = '\0';
	for (after = end + 1; is_space((unsigned char)*after); after++)
		;
	if (*after != '\0' && *after != ';') {
		cfg_error(c, c->line, NULL, NULL,
		    "text after the section header [%s]", start + 1);
		return -1;
	}
	/* Split into a word and an optional argument. */
	for (word = start + 1; is_space((unsigned char)*word); word++)
		;
	for (p = word; *p != '\0' && !is_space((unsigned char)*p); p++)
		;
	arg = p;
	if (*p != '\0') {
		*p = '\0';
		for (arg = p + 1; is_space((unsigned char)*arg); arg++)
			;
		for (p = arg; *p != '\0' && !is_space((unsigned char)*p); p++)
			;
		if (*p != '\0') {
			*p++ = '\0';
			while (is_space((unsigned char)*p))
				p++;
			if (*p != '\0') {
				cfg_error(c, c->line, NULL, NULL,
				    "[%s %s ...]: too many words",
				    word, arg);
				return -1;
			}
		}
	}
	for (i = 0; i < sizeof(sec_words) / sizeof(sec_words[0]); i++)
		if (strcmp(word, sec_words[i].word) == 0) {
			kind = sec_words[i].kind;
			named = sec_words[i].named;
		}
	if (kind == SEC_BAD) {
		if (!text_ok(word))
			cfg_error(c, c->line, NULL, NULL, "unknown section");
		else
			cfg_error(c, c->line, NULL, NULL,
			    "[%s]: unknown section", word);
		return -1;
	}
	if (named && *arg == '\0') {
		cfg_error(c, c->line, NULL, NULL, "[%s]: needs a name: "
		    "[%s NAME]", word, word);
		return -1;
	}
	if (!named && *arg != '\0') {
		cfg_error(c, c->line, NULL, NULL, "[%s %s]: [%s] takes no name",
		    word, text_ok(arg) ? arg : "?", word);
		return -1;
	}
	if (kind == SEC_LISTEN && !name_ok(arg)) {
		cfg_error(c, c->line, NULL, NULL, "[listen %s]: bad listener "
		    "name (1..%d letters, digits, '-', '_', '.')",
		    text_ok(arg) ? arg : "?", CONFIG_NAME_MAX);
		return -1;
	}
	if (kind == SEC_DOMAIN && hostname_norm(arg, 1) == -1) {
		cfg_error(c, c->line, NULL, NULL, "[domain %s]: not a valid "
		    "domain name", text_ok(arg) ? arg : "?");
		return -1;
	}
	if (named)
		snprintf(full, sizeof(full), "%s %s", word, arg);
	else
		snprintf(full, sizeof(full), "%s", word);
	if ((old = section_find(c->cp, full)) != NULL) {
		cfg_error(c, c->line, NULL, NULL, "[%s]: section repeated "
		    "(first on line %d)", full, old->line);
		return -1;
	}
	if ((s = section_add(c, kind, full, c->line)) == NULL ||
	    (kind == SEC_LISTEN && listen_new(c, s, arg) == -1) ||
	    (kind == SEC_DOMAIN && domain_new(c, s, arg) == -1)) {
		cfg_error(c, c->line, NULL, NULL, "out of memory or too many "
		    "sections (at most %d)", CONFIG_MAX_SECTIONS);
		if (s != NULL)
			s->kind = SEC_BAD;
		return -1;
	}
	return (int)(s - c->cp->secs);
}

/* ---------------------------------------------------------------------
 * The reader inih calls for each line.
 */

static char *
reader(char *str, int num, void *stream)
{
	struct ctx	*c = stream;
	char		 buf[CONFIG_LINE_MAX + 2], *start, *e;
	size_t		 len = 0, max;
	int		 ch, toolong = 0, nul = 0, idx;

	if (num < 2)
		return NULL;
	/* What inih can hold with its NUL: at most CONFIG_LINE_MAX - 1. */
	max = (size_t)num - 1;
	if (max > CONFIG_LINE_MAX - 1)
		max = CONFIG_LINE_MAX - 1;
	while ((ch = getc(c->f)) != EOF && ch != '\n') {
		if (ch == '\0')
			nul = 1;
		if (len < sizeof(buf) - 1)
			buf[len++] = ch;
		else
			toolong = 1;
	}
	if (ch == EOF && ferror(c->f))
		c->read_error = errno ? errno : EIO;
	if (ch == EOF && len == 0)
		return NULL;
	buf[len] = '\0';
	c->line++;
	c->cont = 0;
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	/* inih skips a UTF-8 byte order mark; so do we (and drop it). */
	if (c->line == 1 && len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		memmove(buf, buf + 3, len - 2);
		len -= 3;
	}
	str[0] = '\0';
	if (toolong || len > max) {
		cfg_error(c, c->line, NULL, NULL, "line longer than %zu octets",
		    max);
		return str;
	}
	if (nul) {
		cfg_error(c, c->line, NULL, NULL, "NUL byte in line");
		return str;
	}
	for (start = buf; is_space((unsigned char)*start); start++)
		;
	for (e = buf + len; e > start && is_space((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	if (*start == '\0' || *start == ';' || *start == '#') {
		/* Blank or comment: inih skips it, so do we. */
		return str;
	}
	if (c->prev_key && start > buf) {
		/* inih's multi-line value: the handler gets this line. */
		c->cont = 1;
		memcpy(str, buf, len + 1);
		return str;
	}
	if (*start == '[') {
		c->prev_key = 0;
		if ((idx = section_header(c, start)) == -1)
			snprintf(str, num, "[!]");
		else
			snprintf(str, num, "[%d]", idx);
		return str;
	}
	/* KEY = VALUE (inih also takes ':', as Python's configparser). */
	e = start + strcspn(start, "=:;");
	if (*e != '=' && *e != ':') {
		cfg_error(c, c->line, NULL, NULL, "expected KEY = VALUE");
		return str;
	}
	c->prev_key = 1;
	memcpy(str, buf, len + 1);
	return str;
}

/* ---------------------------------------------------------------------
 * The handler inih calls for each value.
 */

static const struct key_def *
key_find(enum sec_kind kind, const char *name, size_t *idx)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].sec == kind && strcmp(keys[i].name, name) == 0) {
			*idx = i;
			return &keys[i];
		}
	return NULL;
}

/* The value as text fit for a message ("..." when not printable). */
static const char *
shown(const char *v)
{
	return text_ok(v) ? v : "(control characters)";
}

static void
enum_expect(char *buf, size_t len, const struct enum_name *n)
{
	size_t	 off = 0;
	int	 r;

	buf[0] = '\0';
	for (; n->name != NULL && off < len; n++) {
		r = snprintf(buf + off, len - off, "%s%s", off ? " | " : "",
		    n->name);
		if (r < 0)
			break;
		off += (size_t)r;
	}
}

/* A duration as its largest whole unit: "90s", "5m", "1d". */
static const char *
fmt_dur(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % DAY == 0)
		snprintf(buf, len, "%jud", (uintmax_t)(v / DAY));
	else if (v != 0 && v % HOUR == 0)
		snprintf(buf, len, "%juh", (uintmax_t)(v / HOUR));
	else if (v != 0 && v % MIN == 0)
		snprintf(buf, len, "%jum", (uintmax_t)(v / MIN));
	else
		snprintf(buf, len, "%jus", (uintmax_t)v);
	return buf;
}

/* A size as its largest whole unit: "512", "1k", "2g". */
static const char *
fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % (KB * KB * KB) == 0)
		snprintf(buf, len, "%jug", (uintmax_t)(v / (KB * KB * KB)));
	else if (v != 0 && v % (KB * KB) == 0)
		snprintf(buf, len, "%jum", (uintmax_t)(v / (KB * KB)));
	else if (v != 0 && v % KB == 0)
		snprintf(buf, len, "%juk", (uintmax_t)(v / KB));
	else
		snprintf(buf, len, "%ju", (uintmax_t)v);
	return buf;
}

static void
value_set(struct ctx *c, struct section *s, const struct key_def *k,
    const char *v)
{
	struct config		*cfg = c->cfg;
	struct config_listen	*l = NULL;
	struct config_domain	*d = NULL;
	char			*base, *p, tmp[CONFIG_LINE_MAX + 1];
	char			 canon[NI_MAXHOST + NI_MAXSERV + 2];
	char			 canon2[sizeof(canon)], expect[128];
	char			 lo[32], hi[32];
	const char		*why, *colon;
	const struct enum_name	*n;
	uint64_t		 u;
	size_t			 i, j;
	int			 b;

	if (s->kind == SEC_LISTEN) {
		l = &cfg->listens[s->index];
		base = (char *)l;
	} else if (s->kind == SEC_DOMAIN) {
		d = &cfg->domains[s->index];
		base = (char *)d;
	} else
		base = (char *)cfg;
	p = base + k->off;

	switch (k->type) {
	case T_STR:
	case T_PATH:
		if (!text_ok(v)) {
			cfg_error(c, c->line, s, k->name,
			    "control characters in value");
			return;
		}
		if (k->type == T_PATH && *v == '\0') {
			cfg_error(c, c->line, s, k->name, "must not be empty");
			return;
		}
		if (set_str((char **)p, v) == -1)
			goto nomem;
		return;
	case T_HOSTNAME:
	case T_DOMAIN:
	case T_HOST:
		if (strlen(v) >= sizeof(tmp)) {
			cfg_error(c, c->line, s, k->name, "too long");
			return;
		}
		memcpy(tmp, v, strlen(v) + 1);
		if (k->type == T_HOST && *v != '\0' &&
		    numeric_host(tmp) != -1) {
			/* A numeric IP address is fine as is. */
		} else if (k->type == T_HOST && *v == '\0') {
			/* Empty: no smarthost. */
		} else if (hostname_norm(tmp, k->type == T_DOMAIN) == -1) {
			cfg_error(c, c->line, s, k->name, "\"%s\": not a valid "
			    "%s", shown(v), k->type == T_DOMAIN ?
			    "domain name (labels of letters, digits and '-', "
			    "at least two)" :
			    "host name (labels of letters, digits and '-')");
			return;
		}
		if (set_str((char **)p, tmp) == -1)
			goto nomem;
		return;
	case T_UINT:
		if (num_parse_u64(v, k->min, k->max, &u) == -1) {
			cfg_error(c, c->line, s, k->name, "\"%s\": expected a "
			    "whole number %ju..%ju", shown(v),
			    (uintmax_t)k->min, (uintmax_t)k->max);
			return;
		}
		*(unsigned *)(void *)p = (unsigned)u;
		return;
	case T_SIZE:
		if (num_parse_size(v, k->min, k->max, &u) == -1) {
			cfg_error(c, c->line, s, k->name, "\"%s\": expected a "
			    "size %s..%s (suffix k, m or g)", shown(v),
			    fmt_size(k->min, lo, sizeof(lo)),
			    fmt_size(k->max, hi, sizeof(hi)));
			return;
		}
		*(uint64_t *)(void *)p = u;
		return;
	case T_DUR:
	case T_DUR0:
		if (k->type == T_DUR0 && strcmp(v, "0") == 0)
			u = 0;
		else if (num_parse_duration(v, k->min, k->max, &u) == -1) {
			cfg_error(c, c->line, s, k->name, "\"%s\": expected a "
			    "duration %s%s..%s (suffix s, m, h or d)",
			    shown(v), k->type == T_DUR0 ? "0 or " : "",
			    fmt_dur(k->min, lo, sizeof(lo)),
			    fmt_dur(k->max, hi, sizeof(hi)));
			return;
		}
		*(uint64_t *)(void *)p = u;
		return;
	case T_BOOL:
		if (num_parse_bool(v, &b) == -1) {
			cfg_error(c, c->line, s, k->name,
			    "\"%s\": expected yes or no", shown(v));
			return;
		}
		*(int *)(void *)p = b;
		return;
	case T_ENUM:
		for (n = k->names; n->name != NULL; n++)
			if (strcmp(n->name, v) == 0) {
				*(int *)(void *)p = n->value;
				return;
			}
		enum_expect(expect, sizeof(expect), k->names);
		cfg_error(c, c->line, s, k->name, "\"%s\": expected %s",
		    shown(v), expect);
		return;
	case T_CANON:
		for (i = 0; i < 2; i++)
			for (j = 0; j < 2; j++) {
				static const char *cn[] = { "relaxed",
				    "simple" };

				snprintf(tmp, sizeof(tmp), "%s/%s", cn[i],
				    cn[j]);
				if (strcmp(tmp, v) == 0) {
					d->canon_header = i ?
					    DKIM_CANON_SIMPLE :
					    DKIM_CANON_RELAXED;
					d->canon_body = j ?
					    DKIM_CANON_SIMPLE :
					    DKIM_CANON_RELAXED;
					return;
				}
			}
		cfg_error(c, c->line, s, k->name, "\"%s\": expected "
		    "relaxed/relaxed | simple/simple | relaxed/simple | "
		    "simple/relaxed", shown(v));
		return;
	case T_ADDRESS:
		if (hostport_parse(v, 0, canon, sizeof(canon), &why) == -1) {
			cfg_error(c, c->line, s, k->name, "\"%s\": %s "
			    "(expected HOST:PORT or [V6]:PORT)", shown(v), why);
			return;
		}
		if (l->naddresses >= CONFIG_MAX_ADDRESSES) {
			cfg_error(c, c->line, s, k->name, "more than %d "
			    "addresses", CONFIG_MAX_ADDRESSES);
			return;
		}
		/* The same address twice, here or in another listener. */
		for (i = 0; i < cfg->nlistens; i++)
			for (j = 0; j < cfg->listens[i].naddresses; j++) {
				hostport_parse(cfg->listens[i].addresses[j], 0,
				    canon2, sizeof(canon2), &why);
				if (strcmp(canon, canon2) == 0) {
					cfg_error(c, c->line, s, k->name,
					    "\"%s\": already used by "
					    "[listen %s]", v,
					    cfg->listens[i].name);
					return;
				}
			}
		if ((l->addresses[l->naddresses] = strdup(v)) == NULL)
			goto nomem;
		l->naddresses++;
		return;
	case T_DKIM:
		if ((colon = strchr(v, ':')) == NULL ||
		    !selector_ok(v, colon - v) || colon[1] == '\0' ||
		    !text_ok(colon + 1)) {
			cfg_error(c, c->line, s, k->name, "\"%s\": expected "
			    "SELECTOR:KEYFILE (selector: letters, digits, "
			    "'-' and '.')", shown(v));
			return;
		}
		if (d->ndkim >= CONFIG_MAX_DKIM) {
			cfg_error(c, c->line, s, k->name, "more than %d "
			    "signatures", CONFIG_MAX_DKIM);
			return;
		}
		for (i = 0; i < d->ndkim; i++)
			if (strlen(d->dkim[i].selector) ==
			    (size_t)(colon - v) && strncasecmp(
			    d->dkim[i].selector, v, colon - v) == 0) {
				cfg_error(c, c->line, s, k->name, "selector "
				    "repeated (first on line %d)",
				    d->dkim[i].line);
				return;
			}
		{
			struct config_dkim *nd;

			nd = reallocarray(d->dkim, d->ndkim + 1, sizeof(*nd));
			if (nd == NULL)
				goto nomem;
			d->dkim = nd;
			nd = &d->dkim[d->ndkim];
			memset(nd, 0, sizeof(*nd));
			nd->selector = strndup(v, colon - v);
			nd->keyfile = strdup(colon + 1);
			nd->line = c->line;
			d->ndkim++;
			if (nd->selector == NULL || nd->keyfile == NULL)
				goto nomem;
		}
		return;
	case T_SERVERS:
		if (strlen(v) >= sizeof(tmp)) {
			cfg_error(c, c->line, s, k->name, "too long");
			return;
		}
		memcpy(tmp, v, strlen(v) + 1);
		for (p = tmp; *v != '\0' && p != NULL; ) {
			char	*one = p, *end;

			if ((p = strchr(p, ',')) != NULL)
				*p++ = '\0';
			while (is_space((unsigned char)*one))
				one++;
			for (end = one + strlen(one); end > one &&
			    is_space((unsigned char)end[-1]); end--)
				;
			*end = '\0';
			if (hostport_parse(one, 1, NULL, 0, &why) == -1) {
				cfg_error(c, c->line, s, k->name, "\"%s\": %s "
				    "(expected IP[:PORT] or [V6]:PORT, "
				    "comma-separated)", shown(one), why);
				return;
			}
		}
		if (set_str(&cfg->dns_servers, v) == -1)
			goto nomem;
		return;
	}
	return;
nomem:
	cfg_error(c, c->line, s, k->name, "out of memory");
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct ctx		*c = user;
	struct section		*s;
	const struct key_def	*k;
	char			*end;
	unsigned long		 idx;
	size_t			 ki;

	if (*section == '\0') {
		cfg_error(c, c->line, NULL, name, "outside of any section");
		return 1;
	}
	if (strcmp(section, "!") == 0)
		return 1;	/* The bad header was reported. */
	errno = 0;
	idx = strtoul(section, &end, 10);
	if (*end != '\0' || idx >= c->cp->nsecs) {
		cfg_error(c, c->line, NULL, name, "internal error: section "
		    "token %s", section);
		return 1;
	}
	s = &c->cp->secs[idx];
	if (s->kind == SEC_BAD)
		return 1;
	if ((k = key_find(s->kind, name, &ki)) == NULL) {
		cfg_error(c, c->line, s, text_ok(name) ? name : "?",
		    "unknown key");
		return 1;
	}
	if (s->keyline[ki] != 0 && k->type != T_ADDRESS &&
	    k->type != T_DKIM) {
		if (c->cont)
			cfg_error(c, c->line, s, k->name, "continuation line "
			    "(value from line %d continued) not allowed for "
			    "this key", s->keyline[ki]);
		else
			cfg_error(c, c->line, s, k->name, "repeated (first on "
			    "line %d); only address and dkim may repeat",
			    s->keyline[ki]);
		return 1;
	}
	if (s->keyline[ki] == 0)
		s->keyline[ki] = c->line;
	value_set(c, s, k, value);
	return 1;
}

/* ---------------------------------------------------------------------
 * Defaults, cross-checks, the object.
 */

static int
defaults(struct config *cfg)
{
	char	 host[256];

	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	if ((cfg->hostname = strdup(host)) == NULL ||
	    (cfg->spool = strdup("/var/spool/relayd")) == NULL ||
	    (cfg->user = strdup("")) == NULL ||
	    (cfg->secret_file = strdup("/etc/relayd/secret")) == NULL ||
	    (cfg->control_socket = strdup("/run/relayd/control.sock")) ==
	    NULL ||
	    (cfg->tls_certificate = strdup("/etc/relayd/tls/fullchain.pem")) ==
	    NULL ||
	    (cfg->tls_key = strdup("/etc/relayd/tls/privkey.pem")) == NULL ||
	    (cfg->users_file = strdup("/etc/relayd/users")) == NULL ||
	    (cfg->capture_dir = strdup("/var/spool/relayd/captured")) ==
	    NULL ||
	    (cfg->smarthost_host = strdup("")) == NULL ||
	    (cfg->smarthost_username = strdup("")) == NULL ||
	    (cfg->smarthost_password_file = strdup("")) == NULL ||
	    (cfg->smarthost_ca_file = strdup("")) == NULL ||
	    (cfg->delivery_ca_file = strdup("")) == NULL ||
	    (cfg->dns_servers = strdup("")) == NULL)
		return -1;
	cfg->workers = 0;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->tls_min_version = TLS1_2_VERSION;
	cfg->message_size = 25 * KB * KB;
	cfg->recipients = 100;
	cfg->connections_per_ip = 50;
	cfg->line_length = 998;
	cfg->bare_newlines_normalize = 0;
	cfg->header_size = 256 * KB;
	cfg->max_received = 50;
	cfg->command_timeout = 5 * MIN;
	cfg->data_timeout = 3 * MIN;
	cfg->session_timeout = HOUR;
	cfg->soft_error_limit = 10;
	cfg->hard_error_limit = 20;
	cfg->error_delay = 1;
	cfg->auth_delay_max = 15;
	cfg->delivery_mode = DELIVERY_MODE_MX;
	cfg->delivery_tls = DELIVERY_TLS_OPPORTUNISTIC;
	cfg->mx_port = 25;
	cfg->max_connections = 100;
	cfg->max_connections_per_host = 10;
	cfg->max_messages_per_connection = 100;
	cfg->smarthost_port = 587;
	cfg->smarthost_tls = TLS_MODE_STARTTLS;
	cfg->smarthost_verify = 1;
	cfg->retry_min = 5 * MIN;
	cfg->retry_max = HOUR;
	cfg->max_age = 5 * DAY;
	return 0;
}

/* The section of a singular kind, or NULL when it is not in the file. */
static struct section *
section_of(struct config_priv *cp, enum sec_kind kind)
{
	size_t	 i;

	for (i = 0; i < cp->nsecs; i++)
		if (cp->secs[i].kind == kind)
			return &cp->secs[i];
	return NULL;
}

/* Line of key in s, else of s, else fallback. */
static int
line_of(const struct section *s, const char *key, int fallback)
{
	size_t	 ki;

	if (s == NULL)
		return fallback;
	if (key != NULL && key_find(s->kind, key, &ki) != NULL &&
	    s->keyline[ki] != 0)
		return s->keyline[ki];
	return s->line;
}

static void
cross_check(struct ctx *c)
{
	struct config_priv	*cp = c->cp;
	struct config		*cfg = c->cfg;
	struct section		*s;
	size_t			 i;
	char			 buf[300];

	if (cfg->nlistens == 0)
		cfg_error(c, c->line > 0 ? c->line : 1, NULL, NULL,
		    "[listen]: no listener; at least one [listen NAME] "
		    "section with an address is required");
	for (i = 0; i < cp->nsecs; i++) {
		s = &cp->secs[i];
		if (s->kind == SEC_LISTEN &&
		    cfg->listens[s->index].naddresses == 0)
			cfg_error(c, s->line, s, "address", "missing; each "
			    "listener needs at least one");
	}
	for (i = 0; i < cfg->ndomains; i++) {
		struct config_domain *d = &cfg->domains[i];

		if (d->ndkim == 0) {
			/* Issue 4: never a silent unsigned send. */
			snprintf(buf, sizeof(buf), "domain %s", d->name);
			cfg_error(c, d->line, section_find(cp, buf), "dkim",
			    "missing; every sending domain needs at least one "
			    "SELECTOR:KEYFILE (relayctl keygen makes one)");
		}
		if (d->bounce_domain == NULL) {
			snprintf(buf, sizeof(buf), "bounces.%s", d->name);
			if (strlen(buf) > 253) {
				snprintf(buf, sizeof(buf), "domain %s",
				    d->name);
				cfg_error(c, d->line, section_find(cp, buf),
				    "bounce_domain", "the default bounces.%s "
				    "is too long; set one", d->name);
			} else if ((d->bounce_domain = strdup(buf)) == NULL)
				cfg_error(c, d->line, NULL, NULL,
				    "out of memory");
		}
	}
	s = section_of(cp, SEC_DELIVERY);
	if (cfg->delivery_mode == DELIVERY_MODE_CAPTURE &&
	    cfg->capture_dir[0] == '\0')
		cfg_error(c, line_of(s, "capture_dir", c->line), s,
		    "capture_dir", "must be set for mode = capture");
	if (cfg->delivery_mode == DELIVERY_MODE_SMARTHOST &&
	    cfg->smarthost_host[0] == '\0')
		cfg_error(c, line_of(s, "mode", c->line), s, "mode",
		    "smarthost needs [smarthost] host");
	s = section_of(cp, SEC_SMARTHOST);
	if ((cfg->smarthost_username[0] == '\0') !=
	    (cfg->smarthost_password_file[0] == '\0'))
		cfg_error(c, line_of(s, "username", c->line), s, "username",
		    "username and password_file go together");
	s = section_of(cp, SEC_QUEUE);
	if (cfg->retry_min > cfg->retry_max)
		cfg_error(c, line_of(s, "retry_min", c->line), s, "retry_min",
		    "greater than retry_max");
	s = section_of(cp, SEC_LIMITS);
	if (cfg->soft_error_limit > cfg->hard_error_limit)
		cfg_error(c, line_of(s, "soft_error_limit", c->line), s,
		    "soft_error_limit", "greater than hard_error_limit");
	if (cfg->header_size > cfg->message_size)
		cfg_error(c, line_of(s, "header_size", c->line), s,
		    "header_size", "greater than message_size");
}

static void
config_free_parts(struct config_priv *cp)
{
	struct config	*cfg = &cp->pub;
	size_t		 i, j;

	free(cfg->path);
	free(cfg->hostname);
	free(cfg->spool);
	free(cfg->user);
	free(cfg->secret_file);
	free(cfg->control_socket);
	for (i = 0; i < cfg->nlistens; i++) {
		free(cfg->listens[i].name);
		for (j = 0; j < cfg->listens[i].naddresses; j++)
			free(cfg->listens[i].addresses[j]);
	}
	free(cfg->listens);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	free(cfg->users_file);
	for (i = 0; i < cfg->ndomains; i++) {
		struct config_domain *d = &cfg->domains[i];

		free(d->name);
		for (j = 0; j < d->ndkim; j++) {
			free(d->dkim[j].selector);
			free(d->dkim[j].keyfile);
		}
		free(d->dkim);
		free(d->bounce_domain);
	}
	free(cfg->domains);
	free(cfg->capture_dir);
	free(cfg->smarthost_host);
	free(cfg->smarthost_username);
	free(cfg->smarthost_password_file);
	free(cfg->smarthost_ca_file);
	free(cfg->delivery_ca_file);
	free(cfg->dns_servers);
	for (i = 0; i < cp->nsecs; i++)
		free(cp->secs[i].name);
	free(cp->secs);
}

void
config_free(struct config *cfg)
{
	struct config_priv	*cp = (struct config_priv *)cfg;

	if (cfg == NULL)
		return;
	config_free_parts(cp);
	free(cp);
}

int
config_load(const char *path, FILE *err, struct config **out)
{
	struct ctx		 c;
	struct config_priv	*cp;
	int			 rc;

	memset(&c, 0, sizeof(c));
	c.path = path;
	c.err = err;
	if ((cp = calloc(1, sizeof(*cp))) == NULL) {
		cfg_error(&c, 0, NULL, NULL, "out of memory");
		return c.nerr;
	}
	c.cp = cp;
	c.cfg = &cp->pub;
	if (defaults(c.cfg) == -1 || (c.cfg->path = strdup(path)) == NULL) {
		cfg_error(&c, 0, NULL, NULL, "out of memory");
		goto done;
	}
	if ((c.f = fopen(path, "r")) == NULL) {
		cfg_error(&c, 0, NULL, NULL, "cannot open: %s",
		    strerror(errno));
		goto done;
	}
	rc = ini_parse_stream(reader, &c, handler, &c);
	if (c.read_error != 0)
		cfg_error(&c, 0, NULL, NULL, "read error: %s",
		    strerror(c.read_error));
	/* Any non-zero return is fatal; say so if we reported nothing. */
	if (rc > 0 && c.nerr == 0)
		cfg_error(&c, rc, NULL, NULL, "syntax error");
	else if (rc < 0)
		cfg_error(&c, 0, NULL, NULL, "inih failed (%d)", rc);
	fclose(c.f);
	if (c.nerr == 0)
		cross_check(&c);
done:
	if (c.nerr != 0) {
		config_free_parts(cp);
		free(cp);
		return c.nerr;
	}
	*out = c.cfg;
	return 0;
}

const struct config_domain *
config_domain_find(const struct config *cfg, const char *domain)
{
	size_t	 i, len;

	if (cfg == NULL || domain == NULL)
		return NULL;
	len = strlen(domain);
	if (len > 1 && domain[len - 1] == '.')
		len--;
	for (i = 0; i < cfg->ndomains; i++)
		if (strncasecmp(cfg->domains[i].name, domain, len) == 0 &&
		    cfg->domains[i].name[len] == '\0')
			return &cfg->domains[i];
	return NULL;
}

int
config_key_line(const struct config *cfg, const char *section,
    const char *key)
{
	const struct config_priv	*cp = (const struct config_priv *)cfg;
	const struct section		*s;

	if (cfg == NULL || section == NULL)
		return 0;
	if ((s = section_find(cp, section)) == NULL)
		return 0;
	return line_of(s, key, s->line);
}

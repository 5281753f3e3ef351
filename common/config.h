/*
 * config: the configuration file (INI, read with inih) as one immutable
 * object.
 *
 * config_load() reads the whole file, checks every key's syntax and range,
 * and returns a complete object or nothing: a configuration that fails to
 * load is never half-applied.  Each problem is printed to the error stream
 * as "FILE:LINE: [SECTION] KEY: what is wrong".  A line longer than
 * CONFIG_LINE_MAX is an error, never a silent truncation.  Unknown
 * sections and keys are errors.  Every key has a default (INTERFACE.md,
 * etc/relayd.conf.example).
 *
 * config_load() checks syntax only; config_check_files() (relayd/check.c)
 * checks what the file names (certificates, keys, users file, secret).
 */
#ifndef RELAYD_CONFIG_H
#define RELAYD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_LINE_MAX		200	/* inih's INI_MAX_LINE in Debian 12 */
#define CONFIG_MAX_ADDRESSES	16	/* address = lines per listener */

enum tls_mode { TLS_MODE_NONE = 0, TLS_MODE_STARTTLS, TLS_MODE_IMPLICIT };
enum listen_role { LISTEN_ROLE_SUBMISSION = 0, LISTEN_ROLE_BOUNCE };
enum delivery_mode {
	DELIVERY_MODE_MX = 0,
	DELIVERY_MODE_SMARTHOST,
	DELIVERY_MODE_CAPTURE,
};
enum delivery_tls {
	DELIVERY_TLS_OPPORTUNISTIC = 0,
	DELIVERY_TLS_REQUIRED,
	DELIVERY_TLS_VERIFY,
};
enum dkim_canon { DKIM_CANON_RELAXED = 0, DKIM_CANON_SIMPLE };

struct config_listen {
	char		*name;		/* from [listen NAME] */
	char		*addresses[CONFIG_MAX_ADDRESSES];  /* "HOST:PORT" */
	size_t		 naddresses;
	enum tls_mode	 tls;		/* default starttls */
	enum listen_role role;		/* default submission */
	int		 insecure_auth;	/* default no */
	int		 proxy_protocol;	/* default no */
	unsigned	 max_connections;	/* default 1000 */
	int		 line;		/* line of the section header */
};

struct config_dkim {
	char		*selector;
	char		*keyfile;
	int		 line;
};

struct config_domain {
	char			*name;		/* lower case, no trailing dot */
	struct config_dkim	*dkim;		/* dkim = SELECTOR:KEYFILE */
	size_t			 ndkim;
	char			*bounce_domain;	/* default bounces.NAME */
	enum dkim_canon		 canon_header;	/* canonicalization = H/B */
	enum dkim_canon		 canon_body;
	uint64_t		 signature_lifetime;	/* seconds; 0: no x= */
	int			 allow_weak_key;	/* RSA 1024..2047 bits */
	int			 line;
};

struct config {
	char		*path;

	/* [relayd] */
	char		*hostname;		/* default: gethostname() */
	char		*spool;			/* /var/spool/relayd */
	char		*user;			/* "" */
	char		*secret_file;		/* /etc/relayd/secret */
	char		*control_socket;	/* /run/relayd/control.sock */
	unsigned	 workers;		/* 0: one per core */
	int		 log_level;		/* enum log_level; info */

	struct config_listen	*listens;
	size_t			 nlistens;

	/* [tls] */
	char		*tls_certificate;	/* /etc/relayd/tls/fullchain.pem */
	char		*tls_key;		/* /etc/relayd/tls/privkey.pem */
	int		 tls_min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */

	/* [users] */
	char		*users_file;		/* /etc/relayd/users */

	struct config_domain	*domains;
	size_t			 ndomains;

	/* [limits] */
	uint64_t	 message_size;		/* 25m */
	unsigned	 recipients;		/* 100 */
	unsigned	 connections_per_ip;	/* 50 */
	unsigned	 line_length;		/* 998 */
	int		 bare_newlines_normalize;	/* reject (0) */
	uint64_t	 header_size;		/* 256k */
	unsigned	 max_received;		/* 50 */
	uint64_t	 command_timeout;	/* 5m, RFC 5321 4.5.3.2.7 */
	uint64_t	 data_timeout;		/* 3m per read, 4.5.3.2.5 */
	uint64_t	 session_timeout;	/* 1h total per connection */
	unsigned	 soft_error_limit;	/* 10: replies delayed after */
	unsigned	 hard_error_limit;	/* 20: 421 and close */
	uint64_t	 error_delay;		/* 1s per reply past soft limit */
	uint64_t	 auth_delay_max;	/* 15s */

	/* [delivery] */
	enum delivery_mode	 delivery_mode;	/* mx */
	enum delivery_tls	 delivery_tls;	/* opportunistic */
	unsigned		 mx_port;	/* 25 */
	char			*capture_dir;	/* /var/spool/relayd/captured */
	char			*delivery_ca_file;	/* "": system store */
	unsigned		 max_connections;	/* 100 in all */
	unsigned		 max_connections_per_host;	/* 10 */
	unsigned		 max_messages_per_connection;	/* 100 */

	/* [smarthost] */
	char		*smarthost_host;	/* "" */
	unsigned	 smarthost_port;	/* 587 */
	enum tls_mode	 smarthost_tls;		/* starttls (implicit ok) */
	int		 smarthost_verify;	/* yes */
	char		*smarthost_username;	/* "" */
	char		*smarthost_password_file;	/* "" */
	char		*smarthost_ca_file;	/* "": system store */

	/* [queue] */
	uint64_t	 retry_min;		/* 5m */
	uint64_t	 retry_max;		/* 1h */
	uint64_t	 max_age;		/* 5d */
	uint64_t	 delay_warning;		/* 0: no delay reports */
	int		 hold;			/* no: deliver; yes: keep all queued */

	/* [dns] */
	char		*dns_servers;		/* "": system resolver */

	/* [policy] */
	int		 display_name_address_allow;	/* reject (0) | allow */
	int		 received_show_client;	/* hide (0) | show */
};

/*
 * Load and check the syntax of path.  Returns 0 and a new object in *out
 * (free with config_free()), or the number of problems found (each printed
 * to err) and *out untouched.
 */
int	config_load(const char *path, FILE *err, struct config **out);
void	config_free(struct config *);
const struct config_domain *config_domain_find(const struct config *,
	    const char *domain);

#endif

/*
 * test_config: config_load() on files written to a temporary directory.
 * A table of (file text, expected outcome, expected message) and then a
 * few checks of the object a good file makes.
 */
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "config.h"
#include "config_lines.h"
#include "log.h"
#include "tap.h"

static char dir[] = "/tmp/test_config.XXXXXX";
static char path[64];

#define BASE	"[listen s]\naddress = 127.0.0.1:2525\n"	/* lines 1-2 */

struct tcase {
	const char	*name;
	const char	*text;
	int		 good;		/* 1: loads; 0: refused */
	const char	*msg;		/* expected in the error text */
};

static const struct tcase cases[] = {
	{ "minimal", BASE, 1, NULL },
	{ "empty file", "", 0, ":1: [listen]: no listener" },
	{ "comments only", "; x\n# y\n\n", 0, ":3: [listen]: no listener" },
	{ "listener without address", "[listen a]\ntls = none\n", 0,
	    ":1: [listen a] address: missing" },
	{ "empty listener section", BASE "[listen b]\n", 0,
	    ":3: [listen b] address: missing" },
	{ "unknown section", BASE "[bogus]\nx = 1\n", 0,
	    ":3: [bogus]: unknown section" },
	{ "unknown key", BASE "[limits]\nrecipient = 5\n", 0,
	    ":4: [limits] recipient: unknown key" },
	{ "unknown key in listen", BASE "port = 25\n", 0,
	    ":3: [listen s] port: unknown key" },
	{ "key outside section", "workers = 2\n" BASE, 0,
	    ":1: workers: outside of any section" },
	{ "line without =", BASE "[relayd]\nworkers\n", 0,
	    ":4: expected KEY = VALUE" },
	{ "header without ]", BASE "[relayd\n", 0,
	    ":3: section header without ']'" },
	{ "junk after header", BASE "[relayd] x\n", 0,
	    ":3: text after the section header" },
	{ "comment after header", BASE "[relayd] ; fine\nworkers = 2\n", 1,
	    NULL },
	{ "singular section repeated", BASE "[tls]\n[tls]\n", 0,
	    ":4: [tls]: section repeated (first on line 3)" },
	{ "listen name repeated", BASE "[listen s]\n", 0,
	    ":3: [listen s]: section repeated (first on line 1)" },
	{ "listen without name", BASE "[listen]\n", 0,
	    ":3: [listen]: needs a name" },
	{ "bad listen name", BASE "[listen a/b]\n", 0,
	    ":3: [listen a/b]: bad listener name" },
	{ "tls with a name", BASE "[tls x]\n", 0,
	    ":3: [tls x]: [tls] takes no name" },
	{ "key repeated", BASE "[relayd]\nworkers = 1\nworkers = 2\n", 0,
	    ":5: [relayd] workers: repeated (first on line 4)" },
	{ "address repeats", BASE "address = 127.0.0.1:2526\n", 1, NULL },
	{ "address v6", "[listen s]\naddress = [::1]:2525\n", 1, NULL },
	{ "address v6 unbracketed", "[listen s]\naddress = ::1:2525\n", 0,
	    ":2: [listen s] address: \"::1:2525\": IPv6 addresses need "
	    "brackets" },
	{ "address without port", "[listen s]\naddress = 127.0.0.1\n", 0,
	    ":2: [listen s] address: \"127.0.0.1\": missing :PORT" },
	{ "address port 0", "[listen s]\naddress = 127.0.0.1:0\n", 0,
	    ":2: [listen s] address: \"127.0.0.1:0\": port must be" },
	{ "address port 65536", "[listen s]\naddress = 127.0.0.1:65536\n", 0,
	    "port must be a number 1..65535" },
	{ "address port 65535", "[listen s]\naddress = 127.0.0.1:65535\n", 1,
	    NULL },
	{ "address host name", "[listen s]\naddress = localhost:25\n", 0,
	    ":2: [listen s] address: \"localhost:25\": bad host" },
	{ "address bad v4", "[listen s]\naddress = 127.0.0.256:25\n", 0,
	    "bad host" },
	{ "address used twice", BASE "[listen t]\naddress = 127.0.0.1:2525\n",
	    0, ":4: [listen t] address: \"127.0.0.1:2525\": already used by "
	    "[listen s]" },
	{ "address count limit", "[listen s]\n"
	    "address = 127.0.0.1:1\naddress = 127.0.0.1:2\n"
	    "address = 127.0.0.1:3\naddress = 127.0.0.1:4\n"
	    "address = 127.0.0.1:5\naddress = 127.0.0.1:6\n"
	    "address = 127.0.0.1:7\naddress = 127.0.0.1:8\n"
	    "address = 127.0.0.1:9\naddress = 127.0.0.1:10\n"
	    "address = 127.0.0.1:11\naddress = 127.0.0.1:12\n"
	    "address = 127.0.0.1:13\naddress = 127.0.0.1:14\n"
	    "address = 127.0.0.1:15\naddress = 127.0.0.1:16\n"
	    "address = 127.0.0.1:17\n", 0,
	    ":18: [listen s] address: more than 16 addresses" },
	{ "tls modes", BASE "tls = implicit\n[listen t]\naddress = "
	    "127.0.0.1:1\ntls = none\n[listen u]\naddress = 127.0.0.1:2\n"
	    "tls = starttls\n", 1, NULL },
	{ "tls bad", BASE "tls = yes\n", 0,
	    ":3: [listen s] tls: \"yes\": expected starttls | implicit | none" },
	{ "role bounce", BASE "role = bounce\n", 1, NULL },
	{ "role bad", BASE "role = relay\n", 0,
	    ":3: [listen s] role: \"relay\": expected submission | bounce" },
	{ "insecure_auth yes", BASE "insecure_auth = yes\n", 1, NULL },
	{ "insecure_auth bad", BASE "insecure_auth = maybe\n", 0,
	    ":3: [listen s] insecure_auth: \"maybe\": expected yes or no" },
	{ "proxy_protocol bad", BASE "proxy_protocol = 2\n", 0,
	    "[listen s] proxy_protocol: \"2\": expected yes or no" },
	{ "max_connections 0", BASE "max_connections = 0\n", 0,
	    ":3: [listen s] max_connections: \"0\": expected a whole number "
	    "1..1000000" },
	{ "max_connections 1000000", BASE "max_connections = 1000000\n", 1,
	    NULL },
	{ "max_connections 1000001", BASE "max_connections = 1000001\n", 0,
	    "1..1000000" },
	{ "hostname good", BASE "[relayd]\nhostname = Relay.Example.COM.\n",
	    1, NULL },
	{ "hostname single label", BASE "[relayd]\nhostname = localhost\n", 1,
	    NULL },
	{ "hostname empty", BASE "[relayd]\nhostname =\n", 0,
	    ":4: [relayd] hostname: \"\": not a valid host name" },
	{ "hostname dot only", BASE "[relayd]\nhostname = .\n", 0,
	    "not a valid host name" },
	{ "smarthost localhost", BASE "[smarthost]\nhost = localhost\n", 1,
	    NULL },
	{ "hostname underscore", BASE "[relayd]\nhostname = a_b.example\n",
	    0, "not a valid host name" },
	{ "hostname leading hyphen", BASE "[relayd]\nhostname = -a.example\n",
	    0, "not a valid host name" },
	{ "spool empty", BASE "[relayd]\nspool =\n", 0,
	    ":4: [relayd] spool: must not be empty" },
	{ "user empty ok", BASE "[relayd]\nuser =\n", 1, NULL },
	{ "user with inline comment", BASE "[relayd]\nuser =   ; stay\n", 1,
	    NULL },
	{ "workers 64", BASE "[relayd]\nworkers = 64\n", 1, NULL },
	{ "workers 65", BASE "[relayd]\nworkers = 65\n", 0,
	    ":4: [relayd] workers: \"65\": expected a whole number 0..64" },
	{ "workers -1", BASE "[relayd]\nworkers = -1\n", 0, "0..64" },
	{ "log_level debug", BASE "[relayd]\nlog_level = debug\n", 1, NULL },
	{ "log_level bad", BASE "[relayd]\nlog_level = verbose\n", 0,
	    ":4: [relayd] log_level: \"verbose\": expected error | warn | "
	    "info | debug" },
	{ "min_version 1.3", BASE "[tls]\nmin_version = 1.3\n", 1, NULL },
	{ "min_version 1.1", BASE "[tls]\nmin_version = 1.1\n", 0,
	    ":4: [tls] min_version: \"1.1\": expected 1.2 | 1.3" },
	{ "certificate empty", BASE "[tls]\ncertificate =\n", 0,
	    ":4: [tls] certificate: must not be empty" },
	{ "tls key empty", BASE "[tls]\nkey =\n", 0,
	    ":4: [tls] key: must not be empty" },
	{ "session_timeout 1s", BASE "[limits]\nsession_timeout = 1s\n", 1,
	    NULL },
	{ "session_timeout 25h", BASE "[limits]\nsession_timeout = 25h\n", 0,
	    ":4: [limits] session_timeout: \"25h\": expected a duration" },
	{ "auth_delay_max 6m", BASE "[limits]\nauth_delay_max = 6m\n", 0,
	    ":4: [limits] auth_delay_max: \"6m\": expected a duration 0s..5m" },
	{ "header_size 65m", BASE "[limits]\nheader_size = 65m\n", 0,
	    ":4: [limits] header_size: \"65m\": expected a size 1k..64m" },
	{ "retry_max 8d", BASE "[queue]\nretry_max = 8d\n", 0,
	    ":4: [queue] retry_max: \"8d\": expected a duration 1s..7d" },
	{ "smarthost port 70000", BASE "[smarthost]\nport = 70000\n", 0,
	    ":4: [smarthost] port: \"70000\": expected a whole number "
	    "1..65535" },
	{ "smarthost verify bad", BASE "[smarthost]\nverify = sure\n", 0,
	    ":4: [smarthost] verify: \"sure\": expected yes or no" },
	{ "delivery mode bad", BASE "[delivery]\nmode = lmtp\n", 0,
	    ":4: [delivery] mode: \"lmtp\": expected mx | smarthost | capture" },
	{ "empty value for a number", BASE "[limits]\nrecipients =\n", 0,
	    ":4: [limits] recipients: \"\": expected a whole number" },
	{ "users file empty", BASE "[users]\nfile =\n", 0,
	    ":4: [users] file: must not be empty" },
	{ "message_size 2g", BASE "[limits]\nmessage_size = 2g\n", 1, NULL },
	{ "message_size 3g", BASE "[limits]\nmessage_size = 3g\n", 0,
	    ":4: [limits] message_size: \"3g\": expected a size 1k..2g" },
	{ "message_size 512", BASE "[limits]\nmessage_size = 512\n", 0,
	    "expected a size" },
	{ "message_size junk", BASE "[limits]\nmessage_size = 10x\n", 0,
	    "\"10x\": expected a size" },
	{ "recipients 0", BASE "[limits]\nrecipients = 0\n", 0,
	    ":4: [limits] recipients: \"0\": expected a whole number "
	    "1..100000" },
	{ "recipients 100000", BASE "[limits]\nrecipients = 100000\n", 1,
	    NULL },
	{ "connections_per_ip 0", BASE "[limits]\nconnections_per_ip = 0\n",
	    0, "1..100000" },
	{ "line_length 77", BASE "[limits]\nline_length = 77\n", 0,
	    ":4: [limits] line_length: \"77\": expected a whole number "
	    "78..998" },
	{ "line_length 999", BASE "[limits]\nline_length = 999\n", 0,
	    "78..998" },
	{ "line_length 78", BASE "[limits]\nline_length = 78\n", 1, NULL },
	{ "bare_newlines normalize", BASE "[limits]\nbare_newlines = "
	    "normalize\n", 1, NULL },
	{ "bare_newlines bad", BASE "[limits]\nbare_newlines = fix\n", 0,
	    "expected reject | normalize" },
	{ "header_size over message_size", BASE "[limits]\nmessage_size = "
	    "100k\nheader_size = 200k\n", 0,
	    ":5: [limits] header_size: greater than message_size" },
	{ "command_timeout 0", BASE "[limits]\ncommand_timeout = 0\n", 0,
	    ":4: [limits] command_timeout: \"0\": expected a duration "
	    "1s..1d" },
	{ "command_timeout 2d", BASE "[limits]\ncommand_timeout = 2d\n", 0,
	    "expected a duration" },
	{ "data_timeout 1d", BASE "[limits]\ndata_timeout = 1d\n", 1, NULL },
	{ "error_delay 0", BASE "[limits]\nerror_delay = 0\n", 1, NULL },
	{ "soft over hard", BASE "[limits]\nsoft_error_limit = 30\n", 0,
	    ":4: [limits] soft_error_limit: greater than hard_error_limit" },
	{ "max_received 0", BASE "[limits]\nmax_received = 0\n", 0,
	    "1..1000" },
	{ "delivery capture", BASE "[delivery]\nmode = capture\n"
	    "capture_dir = /tmp/x\n", 1, NULL },
	{ "capture without dir", BASE "[delivery]\nmode = capture\n"
	    "capture_dir =\n", 0,
	    ":5: [delivery] capture_dir: must be set for mode = capture" },
	{ "smarthost without host", BASE "[delivery]\nmode = smarthost\n", 0,
	    ":4: [delivery] mode: smarthost needs [smarthost] host" },
	{ "smarthost good", BASE "[delivery]\nmode = smarthost\n[smarthost]\n"
	    "host = smtp.upstream.example\nport = 465\ntls = implicit\n"
	    "username = u\npassword_file = /p\n", 1, NULL },
	{ "smarthost ip", BASE "[smarthost]\nhost = 192.0.2.1\n", 1, NULL },
	{ "smarthost tls none", BASE "[smarthost]\ntls = none\n", 0,
	    ":4: [smarthost] tls: \"none\": expected starttls | implicit" },
	{ "smarthost username alone", BASE "[smarthost]\nusername = u\n", 0,
	    ":4: [smarthost] username: username and password_file go "
	    "together" },
	{ "delivery tls bad", BASE "[delivery]\ntls = dane\n", 0,
	    "expected opportunistic | required | verify" },
	{ "mx_port 0", BASE "[delivery]\nmx_port = 0\n", 0, "1..65535" },
	{ "retry_min over retry_max", BASE "[queue]\nretry_min = 2h\n", 0,
	    ":4: [queue] retry_min: greater than retry_max" },
	{ "hold yes", BASE "[queue]\nhold = yes\n", 1, NULL },
	{ "hold maybe", BASE "[queue]\nhold = maybe\n", 0,
	    "[queue] hold: " },
	{ "max_age 31d", BASE "[queue]\nmax_age = 31d\n", 0,
	    "[queue] max_age: \"31d\": expected a duration" },
	{ "dns servers", BASE "[dns]\nservers = 127.0.0.1:5353, [::1]:53, "
	    "192.0.2.1, ::1\n", 1, NULL },
	{ "dns server name", BASE "[dns]\nservers = ns.example\n", 0,
	    ":4: [dns] servers: \"ns.example\": bad host" },
	{ "dns server port", BASE "[dns]\nservers = 127.0.0.1:0\n", 0,
	    "port must be" },
	{ "domain good", BASE "[domain Example.COM.]\ndkim = s1:/k1.pem\n"
	    "dkim = s2:/k2.pem\ncanonicalization = simple/relaxed\n"
	    "signature_lifetime = 7d\nallow_weak_key = yes\n", 1, NULL },
	{ "domain bad name", BASE "[domain exa mple.com]\n", 0,
	    ":3: [domain exa ...]: too many words" },
	{ "domain invalid", BASE "[domain ex_ample.com]\n", 0,
	    ":3: [domain ex_ample.com]: not a valid domain name" },
	{ "domain repeated after folding", BASE "[domain example.com]\n"
	    "[domain EXAMPLE.com.]\n", 0,
	    ":4: [domain example.com]: section repeated (first on line 3)" },
	{ "dkim without keyfile", BASE "[domain example.com]\ndkim = s1\n", 0,
	    ":4: [domain example.com] dkim: \"s1\": expected SELECTOR:KEYFILE" },
	{ "dkim bad selector", BASE "[domain example.com]\ndkim = s_1:/k\n",
	    0, "expected SELECTOR:KEYFILE" },
	{ "dkim selector repeated", BASE "[domain example.com]\n"
	    "dkim = s1:/a\ndkim = s1:/b\n", 0,
	    ":5: [domain example.com] dkim: selector repeated (first on "
	    "line 4)" },
	{ "canonicalization bad", BASE "[domain example.com]\n"
	    "canonicalization = relaxed\n", 0,
	    ":4: [domain example.com] canonicalization: \"relaxed\": expected" },
	{ "signature_lifetime 0", BASE "[domain example.com]\n"
	    "dkim = s:/k.pem\nsignature_lifetime = 0\n", 1, NULL },
	{ "domain without dkim", BASE "[domain example.com]\n"
	    "bounce_domain = b.example.com\n", 0,
	    ":3: [domain example.com] dkim: missing; every sending domain" },
	{ "signature_lifetime 10m", BASE "[domain example.com]\n"
	    "signature_lifetime = 10m\n", 0, "expected a duration 0 or" },
	{ "bounce_domain bad", BASE "[domain example.com]\n"
	    "bounce_domain = bounces\n", 0,
	    ":4: [domain example.com] bounce_domain: \"bounces\": not a valid "
	    "domain name" },
	{ "domain single label", BASE "[domain localhost]\n", 0,
	    ":3: [domain localhost]: not a valid domain name" },
	{ "line of 199 octets", BASE "[relayd]\nspool = /"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 1, NULL },
	{ "line of 200 octets", BASE "[relayd]\nspool = /"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 0,
	    ":4: line longer than 199 octets" },
	{ "long line then more errors", BASE "[relayd]\nspool = /"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "\nworkers = 99\n", 0, ":5: [relayd] workers: \"99\"" },
	{ "CRLF line ends", "[listen s]\r\naddress = 127.0.0.1:2525\r\n"
	    "[relayd]\r\nworkers = 3\r\n", 1, NULL },
	{ "byte order mark", "\xef\xbb\xbf[listen s]\naddress = "
	    "127.0.0.1:2525\n", 1, NULL },
	{ "continuation of address", BASE "  127.0.0.1:2526\n"
	    "\t127.0.0.1:bad\n", 0,
	    ":4: [listen s] address: \"127.0.0.1:bad\": port must be" },
	{ "continuation of workers", BASE "[relayd]\nworkers = 1\n  2\n", 0,
	    ":5: [relayd] workers: continuation line (value from line 4 "
	    "continued) not allowed" },
	{ "continuation after comment", BASE "; c\n  127.0.0.1:2527\n", 1,
	    NULL },
	{ "colon separator", "[listen s]\naddress: 127.0.0.1:2525\n", 1,
	    NULL },
	{ "control character", BASE "[relayd]\nuser = a\x01" "b\n", 0,
	    ":4: [relayd] user: control characters in value" },
	{ "several errors counted", BASE "[relayd]\nworkers = x\n"
	    "log_level = y\nbogus = 1\n", 0, ":6: [relayd] bogus: unknown key" },
	{ "long section name", BASE "[domain "
	    "a-rather-long-domain-name-that-inih-would-cut.example.com]\n"
	    "bounce_domain = b.a-rather-long-domain-name-that-inih-would-cut."
	    "example.com\ndkim = s:/k.pem\n", 1, NULL },
};

static int
write_file(const char *text, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fwrite(text, 1, len, f);
	return fclose(f);
}

/* Messages on one TAP line. */
static void
oneline(char *s)
{
	size_t	 len = strlen(s);

	while (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	for (; *s != '\0'; s++)
		if (*s == '\n')
			*s = '|';
}

static int
load(const char *text, size_t len, struct config **cfg, char **msg)
{
	size_t	 msglen;
	FILE	*err;
	int	 n;

	*cfg = NULL;
	write_file(text, len);
	err = open_memstream(msg, &msglen);
	n = config_load(path, err, cfg);
	fclose(err);
	oneline(*msg);
	return n;
}

static void
table(void)
{
	struct config	*cfg;
	char		*msg;
	size_t		 i;
	int		 n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];

		n = load(t->text, strlen(t->text), &cfg, &msg);
		if (t->good)
			ok(n == 0 && cfg != NULL && msg[0] == '\0',
			    "%s: loads (n=%d: %s)", t->name, n, msg);
		else
			ok(n > 0 && cfg == NULL && strstr(msg, t->msg) != NULL,
			    "%s: refused with \"%s\" (n=%d: %s)", t->name,
			    t->msg, n, msg);
		config_free(cfg);
		free(msg);
	}
}

static void
defaults(void)
{
	struct config	*cfg;
	char		*msg, host[256];
	int		 n;

	n = load(BASE, strlen(BASE), &cfg, &msg);
	ok(n == 0 && cfg != NULL, "defaults: loads");
	free(msg);
	if (cfg == NULL)
		return;
	memset(host, 0, sizeof(host));
	gethostname(host, sizeof(host) - 1);
	ok(strcmp(cfg->hostname, host) == 0, "default hostname %s",
	    cfg->hostname);
	ok(strcmp(cfg->spool, "/var/spool/relayd") == 0 &&
	    strcmp(cfg->user, "") == 0 &&
	    strcmp(cfg->secret_file, "/etc/relayd/secret") == 0 &&
	    strcmp(cfg->control_socket, "/run/relayd/control.sock") == 0 &&
	    cfg->workers == 0 && cfg->log_level == LOG_LEVEL_INFO,
	    "[relayd] defaults");
	ok(cfg->nlistens == 1 && strcmp(cfg->listens[0].name, "s") == 0 &&
	    cfg->listens[0].naddresses == 1 &&
	    strcmp(cfg->listens[0].addresses[0], "127.0.0.1:2525") == 0 &&
	    cfg->listens[0].tls == TLS_MODE_STARTTLS &&
	    cfg->listens[0].role == LISTEN_ROLE_SUBMISSION &&
	    cfg->listens[0].insecure_auth == 0 &&
	    cfg->listens[0].proxy_protocol == 0 &&
	    cfg->listens[0].max_connections == 1000 &&
	    cfg->listens[0].line == 1, "[listen] defaults");
	ok(strcmp(cfg->tls_certificate, "/etc/relayd/tls/fullchain.pem") == 0
	    && strcmp(cfg->tls_key, "/etc/relayd/tls/privkey.pem") == 0 &&
	    cfg->tls_min_version == TLS1_2_VERSION &&
	    strcmp(cfg->users_file, "/etc/relayd/users") == 0,
	    "[tls] and [users] defaults");
	ok(cfg->message_size == 25 * 1024 * 1024 && cfg->recipients == 100 &&
	    cfg->connections_per_ip == 50 && cfg->line_length == 998 &&
	    cfg->bare_newlines_normalize == 0 &&
	    cfg->header_size == 256 * 1024 && cfg->max_received == 50 &&
	    cfg->command_timeout == 300 && cfg->data_timeout == 180 &&
	    cfg->session_timeout == 3600 && cfg->soft_error_limit == 10 &&
	    cfg->hard_error_limit == 20 && cfg->error_delay == 1 &&
	    cfg->auth_delay_max == 15, "[limits] defaults");
	ok(cfg->delivery_mode == DELIVERY_MODE_MX &&
	    cfg->delivery_tls == DELIVERY_TLS_OPPORTUNISTIC &&
	    cfg->mx_port == 25 &&
	    strcmp(cfg->capture_dir, "/var/spool/relayd/captured") == 0,
	    "[delivery] defaults");
	ok(strcmp(cfg->smarthost_host, "") == 0 &&
	    cfg->smarthost_port == 587 &&
	    cfg->smarthost_tls == TLS_MODE_STARTTLS &&
	    cfg->smarthost_verify == 1 &&
	    strcmp(cfg->smarthost_username, "") == 0 &&
	    strcmp(cfg->smarthost_password_file, "") == 0,
	    "[smarthost] defaults");
	ok(cfg->retry_min == 300 && cfg->retry_max == 3600 &&
	    cfg->max_age == 5 * 86400 && strcmp(cfg->dns_servers, "") == 0,
	    "[queue] and [dns] defaults");
	ok(cfg->ndomains == 0 && config_domain_find(cfg, "x.com") == NULL,
	    "no domains");
	config_free(cfg);
}

static void
values(void)
{
	static const char text[] =
	    "[relayd]\n"			/* 1 */
	    "hostname = Relay.Example.COM.\n"	/* 2 */
	    "workers = 4 ; inline comment\n"	/* 3 */
	    "[listen submission]\n"		/* 4 */
	    "address = 0.0.0.0:587\n"		/* 5 */
	    "address = [::]:587\n"		/* 6 */
	    "tls = starttls\n"			/* 7 */
	    "[listen submissions]\n"		/* 8 */
	    "address = 127.0.0.1:465\n"		/* 9 */
	    "tls = implicit\n"			/* 10 */
	    "role = bounce\n"			/* 11 */
	    "insecure_auth = yes\n"		/* 12 */
	    "proxy_protocol = on\n"		/* 13 */
	    "max_connections = 7\n"		/* 14 */
	    "[domain Example.COM.]\n"		/* 15 */
	    "dkim = s2026r:/k/r.pem\n"		/* 16 */
	    "dkim = s2026e:/k/e.pem\n"		/* 17 */
	    "canonicalization = simple/relaxed\n"	/* 18 */
	    "signature_lifetime = 7d\n"		/* 19 */
	    "[domain other.org]\n"		/* 20 */
	    "bounce_domain = BOUNCE.other.org\n"	/* 21 */
	    "dkim = o:/k/o.pem\n"		/* 22 */
	    "[limits]\n"			/* 23 */
	    "message_size = 10m\n"		/* 24 */
	    "bare_newlines = normalize\n"	/* 25 */
	    "command_timeout = 2m\n"		/* 26 */
	    "[tls]\n"				/* 27 */
	    "min_version = 1.3\n"		/* 28 */
	    "[delivery]\n"			/* 29 */
	    "mode = capture\n"			/* 30 */
	    "tls = verify\n"			/* 31 */
	    "mx_port = 2525\n"			/* 32 */
	    "capture_dir = /tmp/cap\n"		/* 33 */
	    "[queue]\n"				/* 34 */
	    "retry_min = 1s\n"			/* 35 */
	    "retry_max = 5s\n";			/* 36 */
	const struct config_domain	*d;
	struct config			*cfg;
	char				*msg;
	int				 n;

	n = load(text, sizeof(text) - 1, &cfg, &msg);
	ok(n == 0 && cfg != NULL, "values: loads (%s)", msg);
	free(msg);
	if (cfg == NULL)
		return;
	ok(strcmp(cfg->hostname, "relay.example.com") == 0,
	    "hostname folded: %s", cfg->hostname);
	ok(cfg->workers == 4, "inline comment stripped: workers %u",
	    cfg->workers);
	ok(cfg->nlistens == 2 && cfg->listens[0].naddresses == 2 &&
	    strcmp(cfg->listens[0].addresses[1], "[::]:587") == 0 &&
	    cfg->listens[0].line == 4 && cfg->listens[1].line == 8,
	    "two listeners, v4 and v6 addresses, header lines");
	ok(cfg->listens[1].tls == TLS_MODE_IMPLICIT &&
	    cfg->listens[1].role == LISTEN_ROLE_BOUNCE &&
	    cfg->listens[1].insecure_auth == 1 &&
	    cfg->listens[1].proxy_protocol == 1 &&
	    cfg->listens[1].max_connections == 7, "listener values");
	d = config_domain_find(cfg, "EXAMPLE.com.");
	ok(d != NULL && strcmp(d->name, "example.com") == 0 &&
	    d->line == 15, "domain found case-insensitively, trailing dot");
	ok(d != NULL && d->ndkim == 2 &&
	    strcmp(d->dkim[0].selector, "s2026r") == 0 &&
	    strcmp(d->dkim[0].keyfile, "/k/r.pem") == 0 &&
	    d->dkim[0].line == 16 && d->dkim[1].line == 17,
	    "dkim lines with their line numbers");
	ok(d != NULL && d->canon_header == DKIM_CANON_SIMPLE &&
	    d->canon_body == DKIM_CANON_RELAXED &&
	    d->signature_lifetime == 7 * 86400 && d->allow_weak_key == 0,
	    "canonicalization and signature_lifetime");
	ok(d != NULL && strcmp(d->bounce_domain, "bounces.example.com") == 0,
	    "default bounce_domain");
	d = config_domain_find(cfg, "other.org");
	ok(d != NULL && strcmp(d->bounce_domain, "bounce.other.org") == 0 &&
	    d->canon_header == DKIM_CANON_RELAXED &&
	    d->canon_body == DKIM_CANON_RELAXED,
	    "bounce_domain folded, default canonicalization");
	ok(config_domain_find(cfg, "example.co") == NULL &&
	    config_domain_find(cfg, "sub.example.com") == NULL,
	    "no prefix or subdomain match");
	ok(cfg->message_size == 10 * 1024 * 1024 &&
	    cfg->bare_newlines_normalize == 1 && cfg->command_timeout == 120,
	    "limits values");
	ok(cfg->tls_min_version == TLS1_3_VERSION, "min_version 1.3");
	ok(cfg->delivery_mode == DELIVERY_MODE_CAPTURE &&
	    cfg->delivery_tls == DELIVERY_TLS_VERIFY && cfg->mx_port == 2525 &&
	    strcmp(cfg->capture_dir, "/tmp/cap") == 0, "delivery values");
	ok(cfg->retry_min == 1 && cfg->retry_max == 5, "queue values");
	ok(config_key_line(cfg, "tls", "min_version") == 28 &&
	    config_key_line(cfg, "tls", "certificate") == 27 &&
	    config_key_line(cfg, "domain other.org", "bounce_domain") == 21 &&
	    config_key_line(cfg, "users", "file") == 0,
	    "config_key_line");
	config_free(cfg);
}

static void
misc(void)
{
	struct config	*cfg = (struct config *)1;
	char		*msg;
	size_t		 msglen;
	FILE		*err;
	int		 n;

	err = open_memstream(&msg, &msglen);
	n = config_load("/nonexistent/relayd.conf", err, &cfg);
	fclose(err);
	oneline(msg);
	ok(n == 1 && cfg == (struct config *)1 &&
	    strstr(msg, "/nonexistent/relayd.conf: cannot open") != NULL,
	    "missing file: one problem, *out untouched (%s)", msg);
	free(msg);

	/* A NUL byte. */
	n = load(BASE "[relayd]\nuser = a\0b\n", sizeof(BASE) - 1 + 20, &cfg,
	    &msg);
	ok(n > 0 && strstr(msg, ":4: NUL byte in line") != NULL,
	    "NUL byte refused (%s)", msg);
	free(msg);

	/* Count: three bad values, three problems. */
	n = load(BASE "[limits]\nrecipients = 0\nline_length = 2\n"
	    "message_size = x\n", strlen(BASE) + 57, &cfg, &msg);
	ok(n == 3, "each problem counted (n=%d)", n);
	free(msg);
	config_free(NULL);
	ok(1, "config_free(NULL)");
}

/* etc/relayd.conf.example loads, and its values are the defaults. */
static void
example(void)
{
	struct config	*ex = NULL, *def = NULL;
	char		*msg;
	size_t		 msglen;
	FILE		*err;
	const char	*p = "etc/relayd.conf.example";
	int		 n;

	if (access(p, R_OK) == -1)
		p = "../etc/relayd.conf.example";
	err = open_memstream(&msg, &msglen);
	n = config_load(p, err, &ex);
	fclose(err);
	oneline(msg);
	ok(n == 0 && ex != NULL, "relayd.conf.example loads (%s)", msg);
	free(msg);
	load(BASE, strlen(BASE), &def, &msg);
	free(msg);
	if (ex == NULL || def == NULL)
		goto out;
	ok(strcmp(ex->spool, def->spool) == 0 &&
	    strcmp(ex->user, def->user) == 0 &&
	    strcmp(ex->secret_file, def->secret_file) == 0 &&
	    strcmp(ex->control_socket, def->control_socket) == 0 &&
	    ex->workers == def->workers && ex->log_level == def->log_level &&
	    strcmp(ex->tls_certificate, def->tls_certificate) == 0 &&
	    strcmp(ex->tls_key, def->tls_key) == 0 &&
	    ex->tls_min_version == def->tls_min_version &&
	    strcmp(ex->users_file, def->users_file) == 0,
	    "example: [relayd] [tls] [users] values are the defaults");
	ok(ex->message_size == def->message_size &&
	    ex->recipients == def->recipients &&
	    ex->connections_per_ip == def->connections_per_ip &&
	    ex->line_length == def->line_length &&
	    ex->bare_newlines_normalize == def->bare_newlines_normalize &&
	    ex->header_size == def->header_size &&
	    ex->max_received == def->max_received &&
	    ex->command_timeout == def->command_timeout &&
	    ex->data_timeout == def->data_timeout &&
	    ex->session_timeout == def->session_timeout &&
	    ex->soft_error_limit == def->soft_error_limit &&
	    ex->hard_error_limit == def->hard_error_limit &&
	    ex->error_delay == def->error_delay &&
	    ex->auth_delay_max == def->auth_delay_max,
	    "example: [limits] values are the defaults");
	ok(ex->delivery_mode == def->delivery_mode &&
	    ex->delivery_tls == def->delivery_tls &&
	    ex->mx_port == def->mx_port &&
	    strcmp(ex->capture_dir, def->capture_dir) == 0 &&
	    strcmp(ex->smarthost_host, def->smarthost_host) == 0 &&
	    ex->smarthost_port == def->smarthost_port &&
	    ex->smarthost_tls == def->smarthost_tls &&
	    ex->smarthost_verify == def->smarthost_verify &&
	    strcmp(ex->smarthost_username, def->smarthost_username) == 0 &&
	    strcmp(ex->smarthost_password_file,
	    def->smarthost_password_file) == 0 &&
	    ex->retry_min == def->retry_min &&
	    ex->retry_max == def->retry_max && ex->max_age == def->max_age &&
	    ex->hold == def->hold && def->hold == 0 &&
	    strcmp(ex->dns_servers, def->dns_servers) == 0,
	    "example: [delivery] [smarthost] [queue] [dns] are the defaults");
	ok(ex->nlistens == 2 && ex->listens[0].tls == TLS_MODE_STARTTLS &&
	    ex->listens[1].tls == TLS_MODE_IMPLICIT &&
	    ex->listens[0].max_connections == 1000 && ex->ndomains == 1 &&
	    ex->domains[0].ndkim == 2 &&
	    strcmp(ex->domains[0].bounce_domain, "bounces.example.com") == 0 &&
	    ex->domains[0].canon_header == DKIM_CANON_RELAXED &&
	    ex->domains[0].canon_body == DKIM_CANON_RELAXED &&
	    ex->domains[0].signature_lifetime == 0 &&
	    ex->domains[0].allow_weak_key == 0,
	    "example: listeners and domain as documented");
out:
	config_free(ex);
	config_free(def);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/relayd.conf", dir);
	table();
	defaults();
	values();
	misc();
	example();
	unlink(path);
	rmdir(dir);
	return tap_done();
}

/*
 * check: what `relayd -t` (and a reload) checks beyond config_load()'s
 * syntax: the files the configuration names and what they hold.
 *
 *   - the TLS certificate chain and key load and match (when a listener
 *     uses TLS), through tls_server_ctx_new();
 *   - the users file loads (users_load() prints its own FILE:LINE errors);
 *   - the secret file is readable and holds at least CHECK_SECRET_MIN bytes;
 *   - each DKIM key file is readable and holds a PEM private key, RSA
 *     (2048 bits or more, 1024..2047 only with allow_weak_key) or Ed25519;
 *   - each bounce_domain has the same organizational domain (registrable
 *     domain, libpsl) as its [domain], so SPF aligns for DMARC
 *     (RFC 7489 3.1.2);
 *   - the spool's parent directory exists (the spool itself is created at
 *     start), and so does capture_dir's in capture mode;
 *   - [relayd] user exists when set, [smarthost] password_file is readable.
 * Key files readable by group or others get a warning, not an error.
 * Owns nothing after return.  Each problem is printed as
 * "CONFFILE:LINE: [SECTION] KEY: message" and counted; warnings say
 * "warning:" after the key and are not counted.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "check.h"
#include "config.h"
#include "orgdomain.h"
#include "config_lines.h"
#include "tls.h"
#include "users.h"

#define CHECK_SECRET_MIN	32	/* bytes of the VERP secret */
#define CHECK_RSA_MIN		2048	/* bits; RFC 8301 3.2 */
#define CHECK_RSA_WEAK_MIN	1024	/* bits, with allow_weak_key */

struct check {
	const struct config	*cfg;
	FILE			*err;
	int			 nerr;
};

static void	 problem(struct check *, int, const char *, const char *,
		    int, const char *, ...)
		    __attribute__((format(printf, 6, 7)));

/* Print "FILE:LINE: [SECTION] KEY: message"; count unless a warning. */
static void
problem(struct check *k, int warn, const char *section, const char *key,
    int line, const char *fmt, ...)
{
	va_list	 ap;

	if (!warn)
		k->nerr++;
	if (k->err == NULL)
		return;
	if (line <= 0)
		line = config_key_line(k->cfg, section, key);
	if (line > 0)
		fprintf(k->err, "%s:%d: ", k->cfg->path, line);
	else
		fprintf(k->err, "%s: ", k->cfg->path);
	fprintf(k->err, "[%s] %s: %s", section, key, warn ? "warning: " : "");
	va_start(ap, fmt);
	vfprintf(k->err, fmt, ap);
	va_end(ap);
	fputc('\n', k->err);
}

/* Warn when a secret file is readable by group or others. */
static void
check_mode(struct check *k, const char *section, const char *key, int line,
    const char *path)
{
	struct stat	 st;

	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		problem(k, 1, section, key, line, "%s is readable by group or "
		    "others (mode %04o); chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
}

/* A path's parent directory must exist. */
static void
check_parent(struct check *k, const char *section, const char *key,
    const char *path)
{
	struct stat	 st;
	char		*dup, *dir;

	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			problem(k, 0, section, key, 0, "%s is not a directory",
			    path);
		return;
	}
	if ((dup = strdup(path)) == NULL) {
		problem(k, 0, section, key, 0, "out of memory");
		return;
	}
	dir = dirname(dup);
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode))
		problem(k, 0, section, key, 0, "parent directory %s of %s does "
		    "not exist", dir, path);
	free(dup);
}

static void
check_tls(struct check *k)
{
	const struct config	*cfg = k->cfg;
	SSL_CTX			*ctx;
	char			*msg = NULL;
	size_t			 msglen = 0, i;
	FILE			*mem;
	int			 need = 0;

	for (i = 0; i < cfg->nlistens; i++)
		if (cfg->listens[i].tls != TLS_MODE_NONE)
			need = 1;
	if (!need)
		return;
	if ((mem = open_memstream(&msg, &msglen)) == NULL) {
		problem(k, 0, "tls", "certificate", 0, "out of memory");
		return;
	}
	ctx = tls_server_ctx_new(cfg->tls_certificate, cfg->tls_key,
	    cfg->tls_min_version, mem);
	fclose(mem);
	if (ctx == NULL) {
		/* Strip the trailing newline of OpenSSL's text. */
		if (msglen > 0 && msg[msglen - 1] == '\n')
			msg[msglen - 1] = '\0';
		if (msg != NULL && strstr(msg, "private key") != NULL)
			problem(k, 0, "tls", "key", 0, "%s", msg);
		else
			problem(k, 0, "tls", "certificate", 0, "%s",
			    msg != NULL ? msg : "cannot load");
	} else
		SSL_CTX_free(ctx);
	free(msg);
	if (access(cfg->tls_key, R_OK) == 0)
		check_mode(k, "tls", "key", 0, cfg->tls_key);
}

static void
check_users(struct check *k)
{
	struct users	*us = NULL;
	int		 n;

	n = users_load(k->cfg->users_file, k->err, &us);
	if (n != 0) {
		/* users_load() printed and counted each; this names it. */
		k->nerr += n - 1;
		problem(k, 0, "users", "file", 0, "%s: %d problem%s",
		    k->cfg->users_file, n, n == 1 ? "" : "s");
		return;
	}
	users_free(us);
}

static void
check_secret(struct check *k)
{
	const char	*path = k->cfg->secret_file;
	unsigned char	 buf[CHECK_SECRET_MIN];
	size_t		 got = 0;
	ssize_t		 r;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		problem(k, 0, "relayd", "secret_file", 0, "%s: %s", path,
		    strerror(errno));
		return;
	}
	while (got < sizeof(buf)) {
		r = read(fd, buf + got, sizeof(buf) - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	explicit_bzero(buf, sizeof(buf));
	if (got < CHECK_SECRET_MIN)
		problem(k, 0, "relayd", "secret_file", 0, "%s holds %zu bytes; "
		    "at least %d random bytes needed (head -c 32 "
		    "/dev/urandom > %s)", path, got, CHECK_SECRET_MIN, path);
	else
		check_mode(k, "relayd", "secret_file", 0, path);
}

static void
check_dkim(struct check *k, const struct config_domain *d, char *sec)
{
	const struct config_dkim	*dk;
	EVP_PKEY			*pk;
	FILE				*f;
	size_t				 i;
	int				 bits;

	for (i = 0; i < d->ndkim; i++) {
		dk = &d->dkim[i];
		if ((f = fopen(dk->keyfile, "r")) == NULL) {
			problem(k, 0, sec, "dkim", dk->line, "%s: %s",
			    dk->keyfile, strerror(errno));
			continue;
		}
		pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (pk == NULL) {
			problem(k, 0, sec, "dkim", dk->line, "%s: not a PEM "
			    "private key", dk->keyfile);
			continue;
		}
		if (EVP_PKEY_base_id(pk) == EVP_PKEY_RSA) {
			bits = EVP_PKEY_get_bits(pk);
			if (bits < CHECK_RSA_WEAK_MIN ||
			    (bits < CHECK_RSA_MIN && !d->allow_weak_key))
				problem(k, 0, sec, "dkim", dk->line, "%s: RSA "
				    "key of %d bits; at least %d needed%s",
				    dk->keyfile, bits, CHECK_RSA_MIN,
				    bits >= CHECK_RSA_WEAK_MIN ?
				    " (or allow_weak_key = yes)" : "");
		} else if (EVP_PKEY_base_id(pk) != EVP_PKEY_ED25519)
			problem(k, 0, sec, "dkim", dk->line, "%s: neither an "
			    "RSA nor an Ed25519 key", dk->keyfile);
		EVP_PKEY_free(pk);
		check_mode(k, sec, "dkim", dk->line, dk->keyfile);
	}
}

/*
 * RFC 7489 3.1.2: relaxed SPF alignment needs one organizational domain.
 * The one place that knows organizational domains is orgdomain.c.
 */
static void
check_alignment(struct check *k, const struct config_domain *d, char *sec)
{
	char	 od[ORGDOMAIN_MAX + 1], ob[ORGDOMAIN_MAX + 1];
	int	 line;

	line = config_key_line(k->cfg, sec, "bounce_domain");
	if (orgdomain_of(d->name, od, sizeof(od)) == -1)
		problem(k, 0, sec, "bounce_domain", line, "%s is a public "
		    "suffix, not a registrable domain", d->name);
	else if (orgdomain_of(d->bounce_domain, ob, sizeof(ob)) == -1 ||
	    strcmp(od, ob) != 0)
		problem(k, 0, sec, "bounce_domain", line, "%s does not share "
		    "the organizational domain %s of %s (SPF would not align "
		    "for DMARC)", d->bounce_domain, od, d->name);
}

int
config_check_alignment(const struct config *cfg, FILE *err)
{
	struct check	 k = { cfg, err, 0 };
	char		 sec[300];
	size_t		 i;

	for (i = 0; i < cfg->ndomains; i++) {
		snprintf(sec, sizeof(sec), "domain %s", cfg->domains[i].name);
		check_alignment(&k, &cfg->domains[i], sec);
	}
	return k.nerr;
}

int
config_check_files(const struct config *cfg, FILE *err)
{
	struct check	 k = { cfg, err, 0 };
	char		 sec[300];
	size_t		 i;

	check_tls(&k);
	check_users(&k);
	check_secret(&k);
	for (i = 0; i < cfg->ndomains; i++) {
		snprintf(sec, sizeof(sec), "domain %s", cfg->domains[i].name);
		check_dkim(&k, &cfg->domains[i], sec);
		check_alignment(&k, &cfg->domains[i], sec);
	}
	check_parent(&k, "relayd", "spool", cfg->spool);
	if (cfg->delivery_mode == DELIVERY_MODE_CAPTURE)
		check_parent(&k, "delivery", "capture_dir", cfg->capture_dir);
	if (cfg->user[0] != '\0' && getpwnam(cfg->user) == NULL)
		problem(&k, 0, "relayd", "user", 0, "no such user %s",
		    cfg->user);
	if (cfg->smarthost_password_file[0] != '\0' &&
	    access(cfg->smarthost_password_file, R_OK) == -1)
		problem(&k, 0, "smarthost", "password_file", 0, "%s: %s",
		    cfg->smarthost_password_file, strerror(errno));
	return k.nerr;
}

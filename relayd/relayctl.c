/*
 * relayctl: the operator's command (INTERFACE.md).
 *
 *   relayctl [-c FILE] COMMAND [ARGS]
 *   relayctl -V
 *
 * Built so far: passwd (read one password line from standard input,
 * print its yescrypt hash for the users file), keygen (a DKIM key and the
 * TXT record to publish), explain (what the sender policy does for an
 * account and a From address) and -V.  The other commands answer "not
 * implemented yet" with exit status 2.  Exit status: 0
 * success, 1 failure, 2 usage error.  Messages go to standard error, data
 * to standard output.  Owns no state beyond one call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "crypt_util.h"
#include "dkim_key.h"
#include "dkim_keys.h"
#include "envelope.h"
#include "num.h"
#include "rewrite.h"
#include "sender_policy.h"
#include "users.h"

#define PASSWD_MAX	1024	/* octets of a password, without the LF */
#define HASH_MAX	256

#define DEFAULT_CONFIG	"/etc/relayd/relayd.conf"

static const char *const later[] = {
	"queue", "flush", "hold", "release", "delete",
	"reload", "stats", "dns", NULL,
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: relayctl -V\n"
	    "       relayctl passwd < password\n"
	    "       relayctl keygen DOMAIN SELECTOR [--algorithm rsa|ed25519] "
	    "[--bits N] [--out FILE]\n"
	    "       relayctl -c FILE explain USER ADDRESS\n"
	    "       relayctl -c FILE queue [--json]\n"
	    "       relayctl -c FILE flush [ID] | hold ID | release ID | "
	    "delete ID | reload | stats\n"
	    "       relayctl -c FILE dns DOMAIN [--check]\n");
}

/*
 * Read one line from standard input, without echo on a terminal.
 * Returns 0, 1 (empty or unusable, message printed) or -1 (read error).
 */
static int
read_password(char *pw, size_t len)
{
	struct termios	 old, noecho;
	size_t		 n;
	int		 tty, ch, toolong = 0, nul = 0;

	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "Password: ");
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	n = 0;
	while ((ch = getchar()) != EOF && ch != '\n') {
		if (ch == '\0')
			nul = 1;
		if (n < len - 1)
			pw[n++] = (char)ch;
		else
			toolong = 1;
	}
	pw[n] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ferror(stdin)) {
		fprintf(stderr, "relayctl: passwd: read error: %s\n",
		    strerror(errno));
		return -1;
	}
	/* A CRLF line end loses its CR too: AUTH cannot carry one. */
	if (n > 0 && pw[n - 1] == '\r')
		pw[--n] = '\0';
	if (toolong) {
		fprintf(stderr, "relayctl: passwd: password longer than %d "
		    "octets\n", PASSWD_MAX);
		return 1;
	}
	if (nul || memchr(pw, '\r', n) != NULL) {
		fprintf(stderr, "relayctl: passwd: NUL or CR in password\n");
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "relayctl: passwd: empty password refused\n");
		return 1;
	}
	return 0;
}

static int
cmd_passwd(int argc, char **argv)
{
	char	 pw[PASSWD_MAX + 2], hash[HASH_MAX];
	int	 r;

	(void)argv;
	if (argc != 1) {
		usage();
		return 2;
	}
	if ((r = read_password(pw, sizeof(pw))) != 0) {
		explicit_bzero(pw, sizeof(pw));
		return 1;
	}
	r = crypt_hash_new(pw, hash, sizeof(hash));
	explicit_bzero(pw, sizeof(pw));
	if (r == -1) {
		fprintf(stderr, "relayctl: passwd: cannot hash the password\n");
		return 1;
	}
	printf("%s\n", hash);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "relayctl: passwd: write error\n");
		return 1;
	}
	return 0;
}

/*
 * keygen DOMAIN SELECTOR [--algorithm rsa|ed25519] [--bits N] [--out FILE]:
 * write a new private key (mode 0600, never over an existing file) and
 * print the zone-file line to publish.
 */
static int
cmd_keygen(int argc, char **argv)
{
	const char	*domain, *selector, *out = NULL;
	char		 path[4096], err[DKIM_ERR_LEN];
	enum dkim_alg	 alg = DKIM_ALG_RSA_SHA256;
	uint64_t	 bits = DKIM_RSA_GOOD_BITS;
	EVP_PKEY	*key = NULL;
	struct buf	 rec;
	int		 i, bits_set = 0;

	if (argc < 3) {
		usage();
		return 2;
	}
	domain = argv[1];
	selector = argv[2];
	for (i = 3; i < argc; i++) {
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--algorithm") == 0) {
			if (strcmp(argv[i + 1], "rsa") == 0)
				alg = DKIM_ALG_RSA_SHA256;
			else if (strcmp(argv[i + 1], "ed25519") == 0)
				alg = DKIM_ALG_ED25519_SHA256;
			else {
				fprintf(stderr, "relayctl: keygen: --algorithm "
				    "is rsa or ed25519\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--bits") == 0) {
			if (num_parse_u64(argv[i + 1], DKIM_RSA_GOOD_BITS,
			    DKIM_RSA_MAX_BITS, &bits) == -1) {
				fprintf(stderr, "relayctl: keygen: --bits is "
				    "%d..%d\n", DKIM_RSA_GOOD_BITS,
				    DKIM_RSA_MAX_BITS);
				return 2;
			}
			bits_set = 1;
		} else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (bits_set && alg != DKIM_ALG_RSA_SHA256) {
		fprintf(stderr, "relayctl: keygen: --bits is for RSA keys\n");
		return 2;
	}
	if (!dkim_valid_dns_name(domain) || !dkim_valid_dns_name(selector)) {
		fprintf(stderr, "relayctl: keygen: bad domain or selector\n");
		return 2;
	}
	if (out == NULL) {
		snprintf(path, sizeof(path), "%s.%s.pem", domain, selector);
		out = path;
	}
	if (dkim_keygen(alg, (int)bits, out, &key, err, sizeof(err)) == -1) {
		fprintf(stderr, "relayctl: keygen: %s\n", err);
		return 1;
	}
	buf_init(&rec, 64 * 1024);
	if (dkim_dns_record(domain, selector, key, &rec) == -1) {
		fprintf(stderr, "relayctl: keygen: cannot format the record\n");
		EVP_PKEY_free(key);
		buf_clear(&rec);
		return 1;
	}
	fprintf(stderr, "relayctl: wrote %s key to %s (mode 0600); add to "
	    "[domain %s]: dkim = %s:%s\n", dkim_alg_name(alg), out, domain,
	    selector, out);
	fwrite(rec.data, 1, rec.len, stdout);
	if (rec.len > 0 && rec.data[rec.len - 1] != '\n')
		putchar('\n');
	EVP_PKEY_free(key);
	buf_clear(&rec);
	return 0;
}

/*
 * explain USER ADDRESS: may USER use ADDRESS (an address or a whole From
 * value) as From?  Runs the daemon's own policy code on "From: ADDRESS".
 * Exit 0 when allowed, 1 when not.
 */
static int
cmd_explain(const char *conf, int argc, char **argv)
{
	struct config			*cf = NULL;
	struct users			*users = NULL;
	struct dkim_keys		*keys = NULL;
	const struct user		*u;
	const struct config_domain	*d;
	struct sender_headers		*sh = NULL;
	struct policy_verdict		 v, mv;
	struct envelope			 env;
	struct buf			 hdr;
	uint8_t				 vkey[VERP_KEY_LEN];
	char				 sender[512];
	const char			*rcpt = "someone@example.net";
	size_t				 i;
	int				 rc = 1;

	if (argc != 3) {
		usage();
		return 2;
	}
	if (config_load(conf, stderr, &cf) != 0)
		return 1;
	if (users_load(cf->users_file, stderr, &users) != 0)
		goto out;
	if ((u = users_find(users, argv[1])) == NULL) {
		printf("%s: no such user in %s\n", argv[1], cf->users_file);
		goto out;
	}
	buf_init(&hdr, 8192);
	if (buf_appendf(&hdr, "From: %s\r\n\r\n", argv[2]) == -1 ||
	    (sh = malloc(sizeof(*sh))) == NULL) {
		fprintf(stderr, "relayctl: explain: address too long\n");
		buf_clear(&hdr);
		goto out;
	}
	i = sender_policy_headers(cf, u, hdr.data, hdr.len, 1, sh, &d, &v);
	buf_clear(&hdr);
	if ((int)i == -1) {
		printf("refused: user %s may not use From %s\n", u->name,
		    argv[2]);
		printf("  reply: %d %s %s\n", v.code, v.status, v.text);
		printf("  grants: ");
		for (i = 0; i < u->ngrants; i++)
			printf("%s%s", i ? ", " : "", u->grants[i]);
		printf("%s\n", u->ngrants ? "" : "(none)");
		goto out;
	}
	printf("allowed: user %s may use From %s\n", u->name, argv[2]);
	printf("  from address: %.*s@%s\n", (int)sh->f[MAILBOX_FROM].mb.local_len,
	    sh->f[MAILBOX_FROM].mb.local, sh->f[MAILBOX_FROM].mb.domain);
	printf("  grant: %s\n", u->grants[v.grant]);
	{
		char	 mf[600];

		snprintf(mf, sizeof(mf), "%.*s@%s",
		    (int)sh->f[MAILBOX_FROM].mb.local_len,
		    sh->f[MAILBOX_FROM].mb.local,
		    sh->f[MAILBOX_FROM].mb.domain);
		sender_policy_mail_from(u, mf, 1, &mv);
		printf("  MAIL FROM:<%s>: %s\n", mf, mv.code == 250 ?
		    "allowed" : "refused");
	}
	printf("  signing domain: d=%s ([domain %s])\n", d->name, d->name);
	if ((keys = dkim_keys_load(cf, stderr)) == NULL)
		printf("  DKIM keys: not loadable (see above)\n");
	for (i = 0; i < d->ndkim; i++) {
		EVP_PKEY *const *k = keys ? dkim_keys_of(keys, cf, d) : NULL;
		struct dkim_key_info info;
		char e[DKIM_ERR_LEN];

		if (k != NULL && dkim_key_check(k[i], d->allow_weak_key, &info,
		    e, sizeof(e)) == 0)
			printf("  DKIM signature: s=%s a=%s (%d bits) key %s\n",
			    d->dkim[i].selector, dkim_alg_name(info.alg),
			    info.bits, d->dkim[i].keyfile);
		else
			printf("  DKIM signature: s=%s key %s\n",
			    d->dkim[i].selector, d->dkim[i].keyfile);
	}
	printf("  bounce domain: %s\n", d->bounce_domain);
	memset(&env, 0, sizeof(env));
	memcpy(env.id, "0123456789abcdef", 17);
	env.mail_from = (char *)"x";
	env.bounce_domain = (char *)d->bounce_domain;
	if (rewrite_key_load(cf->secret_file, vkey, stderr) == 0 &&
	    rewrite_sender(vkey, &env, 0, sender, sizeof(sender)) == 0)
		printf("  envelope sender (example, queue ID 0123456789abcdef, "
		    "first recipient %s): %s\n", rcpt, sender);
	else
		printf("  envelope sender: b.TOKEN@%s (secret_file not "
		    "readable)\n", d->bounce_domain);
	rc = 0;
out:
	free(sh);
	dkim_keys_free(keys);
	users_free(users);
	config_free(cf);
	return rc;
}

int
main(int argc, char **argv)
{
	const char	*conf = NULL;
	size_t		 i;
	int		 ch, version = 0;

	while ((ch = getopt(argc, argv, "+c:hV")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'V':
			version = 1;
			break;
		default:
			usage();
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (conf == NULL)
		conf = DEFAULT_CONFIG;
	if (version) {
		if (argc != 0) {
			usage();
			return 2;
		}
		printf("relayctl %s\n", RELAYD_VERSION);
		return 0;
	}
	if (argc == 0) {
		usage();
		return 2;
	}
	if (strcmp(argv[0], "passwd") == 0)
		return cmd_passwd(argc, argv);
	if (strcmp(argv[0], "keygen") == 0)
		return cmd_keygen(argc, argv);
	if (strcmp(argv[0], "explain") == 0)
		return cmd_explain(conf, argc, argv);
	for (i = 0; later[i] != NULL; i++)
		if (strcmp(argv[0], later[i]) == 0) {
			fprintf(stderr, "relayctl: %s: not implemented yet\n",
			    argv[0]);
			return 2;
		}
	fprintf(stderr, "relayctl: %s: unknown command\n", argv[0]);
	usage();
	return 2;
}

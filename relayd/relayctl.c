/*
 * relayctl: the operator's command (INTERFACE.md).
 *
 *   relayctl [-c FILE] COMMAND [ARGS]
 *   relayctl -V
 *
 * Built so far: passwd (read one password line from standard input,
 * print its yescrypt hash for the users file) and -V.  The other commands
 * answer "not implemented yet" with exit status 2.  Exit status: 0
 * success, 1 failure, 2 usage error.  Messages go to standard error, data
 * to standard output.  Owns no state beyond one call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crypt_util.h"

#define PASSWD_MAX	1024	/* octets of a password, without the LF */
#define HASH_MAX	256

static const char *const later[] = {
	"keygen", "explain", "queue", "flush", "hold", "release", "delete",
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
	(void)conf;
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

/*
 * crypt_util: password hashes with the system's libcrypt (crypt_rn(3)).
 *
 * Owns nothing beyond each call: every crypt_rn() gets its own
 * heap-allocated struct crypt_data (32 KiB, too large for a worker's
 * stack), so the functions are thread-safe.  Accepted kinds are yescrypt
 * ($y$), bcrypt ($2b$) and SHA-512 crypt ($6$); their syntax is checked
 * here so that a plain-text password or an unsupported kind in the users
 * file is refused at load time rather than failing every login.
 * Limits: a hash longer than CRYPT_OUTPUT_SIZE is never supported.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypt_util.h"

/*
 * A yescrypt hash of a fixed password nobody uses, made with libcrypt's
 * default cost ($y$j9T$, as crypt_gensalt_rn("$y$", 0, ...) chooses), so
 * that checking it costs the same as checking a real account.
 */
static const char dummy_hash[] =
    "$y$j9T$0s8o1Fb3EXHpx9TKogP0m.$Q.VOCi3lcrp2kii7Q1/1ENh1SnzSP1dgrPM17kfdeq7";

/* The crypt(3) base-64 alphabet. */
static int
is_crypt64(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '.' || c == '/';
}

/* Length of the run of crypt64 characters at s. */
static size_t
span64(const char *s)
{
	size_t	 n = 0;

	while (is_crypt64((unsigned char)s[n]))
		n++;
	return n;
}

/* $y$PARAMS$SALT$HASH, HASH being 43 characters (256 bits). */
static int
yescrypt_ok(const char *h)
{
	size_t	 n;

	h += 3;
	if ((n = span64(h)) == 0 || h[n] != '$')
		return 0;
	h += n + 1;
	if ((n = span64(h)) == 0 || h[n] != '$')
		return 0;
	h += n + 1;
	return span64(h) == 43 && h[43] == '\0';
}

/* $2b$CC$ + 22 characters of salt and 31 of hash; CC is 04..31. */
static int
bcrypt_ok(const char *h)
{
	int	 cost;

	h += 4;
	if (h[0] < '0' || h[0] > '9' || h[1] < '0' || h[1] > '9' ||
	    h[2] != '$')
		return 0;
	cost = (h[0] - '0') * 10 + (h[1] - '0');
	if (cost < 4 || cost > 31)
		return 0;
	h += 3;
	return span64(h) == 53 && h[53] == '\0';
}

/* $6$[rounds=N$]SALT$HASH, SALT 1..16 characters, HASH 86. */
static int
sha512_ok(const char *h)
{
	size_t	 n;

	h += 3;
	if (strncmp(h, "rounds=", 7) == 0) {
		h += 7;
		for (n = 0; h[n] >= '0' && h[n] <= '9'; n++)
			;
		if (n == 0 || n > 10 || h[n] != '$')
			return 0;
		h += n + 1;
	}
	if ((n = span64(h)) == 0 || n > 16 || h[n] != '$')
		return 0;
	h += n + 1;
	return span64(h) == 86 && h[86] == '\0';
}

int
crypt_hash_supported(const char *hash)
{
	if (hash == NULL || strlen(hash) >= CRYPT_OUTPUT_SIZE)
		return 0;
	if (strncmp(hash, "$y$", 3) == 0)
		return yescrypt_ok(hash);
	if (strncmp(hash, "$2b$", 4) == 0)
		return bcrypt_ok(hash);
	if (strncmp(hash, "$6$", 3) == 0)
		return sha512_ok(hash);
	return 0;
}

int
crypt_check(const char *password, const char *hash)
{
	struct crypt_data	*cd;
	const char		*r;
	size_t			 hl, rl;
	int			 match = 0;

	if (password == NULL || hash == NULL)
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	r = crypt_rn(password, hash, cd, sizeof(*cd));
	/* Failures return NULL or a string starting with '*'. */
	if (r != NULL && r[0] != '*') {
		hl = strlen(hash);
		rl = strlen(r);
		if (hl == rl && CRYPTO_memcmp(r, hash, hl) == 0)
			match = 1;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return match;
}

const char *
crypt_dummy_hash(void)
{
	return dummy_hash;
}

int
crypt_hash_new(const char *password, char *out, size_t outlen)
{
	struct crypt_data	*cd;
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*r;
	size_t			 len;
	int			 rc = -1;

	if (password == NULL || out == NULL || outlen == 0)
		return -1;
	/* Default cost; libcrypt reads /dev/urandom for the salt itself. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	r = crypt_rn(password, salt, cd, sizeof(*cd));
	if (r != NULL && r[0] != '*' && crypt_hash_supported(r) &&
	    (len = strlen(r)) < outlen) {
		memcpy(out, r, len + 1);
		rc = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

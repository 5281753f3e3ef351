/*
 * crypt_util: password hashes with the system's libcrypt (crypt_rn(3)).
 * Thread-safe; these are slow on purpose, so call them on worker threads.
 */
#ifndef RELAYD_CRYPT_UTIL_H
#define RELAYD_CRYPT_UTIL_H

#include <stddef.h>

/* A hash kind relayd accepts in the users file: $y$, $2b$ or $6$. */
int	crypt_hash_supported(const char *hash);
/* 1 when password matches hash, 0 otherwise (also on any error).  The
 * comparison of the result is constant-time. */
int	crypt_check(const char *password, const char *hash);
/* A fixed valid yescrypt hash to check against when the account does not
 * exist, so timing does not tell which accounts exist. */
const char *crypt_dummy_hash(void);
/* Write a new yescrypt hash of password into out.  Returns 0 or -1. */
int	crypt_hash_new(const char *password, char *out, size_t outlen);

#endif

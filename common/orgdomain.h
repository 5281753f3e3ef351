/*
 * orgdomain: organizational domains (RFC 7489 section 3.2) from the Public
 * Suffix List built into libpsl (psl_builtin()), for the bounce-domain
 * alignment check of issue 3.  No I/O of its own; libpsl's builtin list
 * is static, read-only data, so these are safe from any thread.
 */
#ifndef RELAYD_ORGDOMAIN_H
#define RELAYD_ORGDOMAIN_H

#include <stddef.h>

#define ORGDOMAIN_MAX	253	/* a domain without its trailing dot */

/*
 * Write the organizational (registrable) domain of domain, lower-cased and
 * without a trailing dot, into out.  Returns 0, or -1 when domain is empty,
 * too long, not ASCII, a public suffix itself (it has no organizational
 * domain), when the builtin list is missing, or cap is too small.
 */
int	orgdomain_of(const char *domain, char *out, size_t cap);

/*
 * 1 when a and b are in relaxed alignment (RFC 7489 section 3.1.2): equal
 * (case-insensitively, trailing dot ignored), or both have the same
 * organizational domain.  0 otherwise, also when either is malformed.
 */
int	orgdomain_aligned(const char *a, const char *b);

#endif

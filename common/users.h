/*
 * users: the users file (INTERFACE.md), one account a line:
 *
 *   NAME:HASH:GRANTS        # comments and blank lines allowed
 *
 * NAME is 1..64 bytes of letters, digits and . _ - + @; HASH a crypt(3)
 * string of a supported kind ($y$ yescrypt, $2b$ bcrypt, $6$ SHA-512);
 * GRANTS a comma-separated list of DOMAIN, *.DOMAIN or LOCAL@DOMAIN.
 * Anything else, plain text passwords and duplicate names included, makes
 * the file invalid.  The object is immutable once loaded.
 */
#ifndef RELAYD_USERS_H
#define RELAYD_USERS_H

#include <stddef.h>
#include <stdio.h>

#define USERS_NAME_MAX	64
#define USERS_LINE_MAX	4096

struct user {
	char	 *name;
	char	 *hash;
	char	**grants;	/* as written, domains lower-cased */
	size_t	  ngrants;
};

struct users {
	struct user	*v;	/* sorted by name */
	size_t		 n;
};

/* Returns 0 and *out, or the number of problems (printed to err as
 * "FILE:LINE: ..."). */
int	users_load(const char *path, FILE *err, struct users **out);
void	users_free(struct users *);
/* Exact, case-sensitive lookup; NULL when absent.  Valid while the users
 * object lives. */
const struct user *users_find(const struct users *, const char *name);

#endif

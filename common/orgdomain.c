/*
 * orgdomain: a thin wrapper around libpsl's builtin Public Suffix List.
 * Owns nothing; normalizes its input (ASCII lower case, one trailing dot
 * removed) into a stack buffer before asking libpsl.  Limits: ASCII
 * (A-label) domains of at most ORGDOMAIN_MAX bytes.
 */
#include <stddef.h>
#include <string.h>

#include <libpsl.h>

#include "orgdomain.h"

static int
normalize(const char *in, char out[ORGDOMAIN_MAX + 1])
{
	size_t		 n, i;
	unsigned char	 c;

	if (in == NULL)
		return -1;
	n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > ORGDOMAIN_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_'))
			return -1;
		out[i] = (char)c;
	}
	out[n] = '\0';
	if (out[0] == '.' || strstr(out, "..") != NULL)
		return -1;
	return 0;
}

int
orgdomain_of(const char *domain, char *out, size_t cap)
{
	const psl_ctx_t	*psl;
	const char	*reg;
	char		 d[ORGDOMAIN_MAX + 1];
	size_t		 n;

	if (normalize(domain, d) == -1 || (psl = psl_builtin()) == NULL)
		return -1;
	/* RFC 7489 3.2: the public suffix plus one label. */
	if ((reg = psl_registrable_domain(psl, d)) == NULL)
		return -1;
	n = strlen(reg);
	if (n + 1 > cap)
		return -1;
	memcpy(out, reg, n + 1);
	return 0;
}

int
orgdomain_aligned(const char *a, const char *b)
{
	char	 na[ORGDOMAIN_MAX + 1], nb[ORGDOMAIN_MAX + 1];
	char	 oa[ORGDOMAIN_MAX + 1], ob[ORGDOMAIN_MAX + 1];

	if (normalize(a, na) == -1 || normalize(b, nb) == -1)
		return 0;
	if (strcmp(na, nb) == 0)
		return 1;
	if (orgdomain_of(na, oa, sizeof(oa)) == -1 ||
	    orgdomain_of(nb, ob, sizeof(ob)) == -1)
		return 0;
	return strcmp(oa, ob) == 0;
}

/*
 * fuzz_grant: libFuzzer target for grant_match(), grant_find(),
 * grant_owns_domain() and display_name_foreign_address().  The input is
 * "GRANT\nLOCAL\nDOMAIN\nDISPLAY" (missing parts are empty).  Aborts when
 * a match breaks the rules of grant.h, checked here by an independent
 * reference, or when the found address overruns its buffer or is not in
 * the display text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Lower-cased copy without one trailing dot. */
static size_t
norm(const char *s, char *out, size_t cap)
{
	size_t	 n = strlen(s), i;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
	out[n] = '\0';
	return n;
}

static int
ref_match(const char *g, const char *local, size_t llen, const char *dom)
{
	char		 a[600], b[600];
	const char	*at = strrchr(g, '@');
	size_t		 an, bn;

	bn = norm(dom, b, sizeof(b));
	if (bn == 0 || bn > 255)
		return 0;
	if (at != NULL) {
		if ((size_t)(at - g) != llen || llen == 0 ||
		    memcmp(g, local, llen) != 0)
			return 0;
		an = norm(at + 1, a, sizeof(a));
		return an == bn && strcmp(a, b) == 0;
	}
	if (g[0] == '*' && g[1] == '.' && g[2] != '\0') {
		an = norm(g + 2, a, sizeof(a));
		if (an == 0 || a[0] == '.' || b[0] == '.' || bn <= an + 1)
			return 0;
		return b[bn - an - 1] == '.' && strcmp(b + bn - an, a) == 0;
	}
	an = norm(g, a, sizeof(a));
	return an == bn && strcmp(a, b) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*buf, *parts[4] = { "", "", "", "" }, *nl, *grants[2];
	char	 found[24], big[1024];
	size_t	 i, dlen;
	int	 m, r;

	if (size > 4096)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	dlen = size;
	parts[0] = buf;
	for (i = 1; i < 4; i++) {
		if ((nl = memchr(parts[i - 1], '\n', size - (size_t)(parts[i - 1] -
		    buf))) == NULL)
			break;
		*nl = '\0';
		parts[i] = nl + 1;
	}
	if (i == 4)
		dlen = size - (size_t)(parts[3] - buf);
	else
		dlen = 0;

	/* Strings end at their first NUL, as they would in C callers. */
	m = grant_match(parts[0], parts[1], strlen(parts[1]), parts[2]);
	if (m != ref_match(parts[0], parts[1], strlen(parts[1]), parts[2]))
		abort();
	grants[0] = parts[0];
	grants[1] = "example.com";
	r = grant_find(grants, 2, parts[1], strlen(parts[1]), parts[2]);
	if ((m && r != 0) || (r == 0 && !m) || r < -1 || r > 1)
		abort();
	/* A matching grant always owns the domain. */
	if (m && !grant_owns_domain(parts[0], parts[2], strlen(parts[2])))
		abort();

	r = display_name_foreign_address(grants, 2, parts[3], dlen, found,
	    sizeof(found));
	if (r != 0 && r != 1)
		abort();
	if (r == 1 && strlen(found) >= sizeof(found))
		abort();
	r = display_name_foreign_address(grants, 2, parts[3], dlen, big,
	    sizeof(big));
	if (r == 1 && (memmem(parts[3], dlen, big, strlen(big)) == NULL ||
	    (strchr(big, '@') == NULL && strstr(big, "\xef\xbc\xa0") == NULL &&
	    strstr(big, "\xef\xb9\xab") == NULL)))
		abort();
	free(buf);
	return 0;
}

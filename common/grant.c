/*
 * grant: match addresses against an account's grants, and look for
 * foreign addresses in display names (see grant.h for the rules).
 * Owns nothing; pure functions over caller strings.  Limits: domains over
 * GRANT_DOMAIN_MAX bytes never match.
 */
#include <stddef.h>
#include <string.h>

#include "grant.h"

#define GRANT_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */

static unsigned char
lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Length without one trailing dot. */
static size_t
dom_len(const char *d, size_t n)
{
	if (n > 0 && d[n - 1] == '.')
		n--;
	return n;
}

static int
dom_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	 i;

	alen = dom_len(a, alen);
	blen = dom_len(b, blen);
	if (alen == 0 || alen != blen || alen > GRANT_DOMAIN_MAX)
		return 0;
	for (i = 0; i < alen; i++)
		if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
			return 0;
	return 1;
}

/* 1 when d is a proper subdomain of base: it ends with "." base. */
static int
dom_under(const char *d, size_t dlen, const char *base, size_t blen)
{
	dlen = dom_len(d, dlen);
	blen = dom_len(base, blen);
	if (blen == 0 || dlen <= blen + 1 || dlen > GRANT_DOMAIN_MAX ||
	    base[0] == '.')
		return 0;
	if (d[dlen - blen - 1] != '.' || d[0] == '.')
		return 0;
	return dom_eq(d + dlen - blen, blen, base, blen);
}

int
grant_match(const char *grant, const char *local, size_t llen,
    const char *domain)
{
	const char	*at;
	size_t		 glen, dlen;

	if (grant == NULL || domain == NULL || local == NULL)
		return 0;
	glen = strlen(grant);
	dlen = strlen(domain);
	if ((at = strrchr(grant, '@')) != NULL) {
		/* LOCAL@DOMAIN: the local part exactly, case included. */
		if ((size_t)(at - grant) != llen || llen == 0 ||
		    memcmp(grant, local, llen) != 0)
			return 0;
		return dom_eq(at + 1, glen - (at - grant) - 1, domain, dlen);
	}
	if (glen > 2 && grant[0] == '*' && grant[1] == '.')
		return dom_under(domain, dlen, grant + 2, glen - 2);
	return dom_eq(grant, glen, domain, dlen);
}

int
grant_find(char *const *grants, size_t n, const char *local, size_t llen,
    const char *domain)
{
	size_t	 i;

	for (i = 0; i < n && i < (size_t)0x7fffffff; i++)
		if (grant_match(grants[i], local, llen, domain))
			return (int)i;
	return -1;
}

int
grant_owns_domain(const char *grant, const char *domain, size_t dlen)
{
	const char	*at;
	size_t		 glen;

	if (grant == NULL || domain == NULL)
		return 0;
	glen = strlen(grant);
	if ((at = strrchr(grant, '@')) != NULL)
		return dom_eq(at + 1, glen - (at - grant) - 1, domain, dlen);
	if (glen > 2 && grant[0] == '*' && grant[1] == '.')
		return dom_under(domain, dlen, grant + 2, glen - 2);
	return dom_eq(grant, glen, domain, dlen);
}

/* RFC 5322 3.2.3 atext. */
static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* Length of an at sign or look-alike at p (0 if none). */
static size_t
at_sign(const unsigned char *p, size_t left)
{
	if (left >= 1 && p[0] == '@')
		return 1;
	if (left >= 3 && p[0] == 0xef && ((p[1] == 0xbc && p[2] == 0xa0) ||
	    (p[1] == 0xb9 && p[2] == 0xab)))
		return 3;	/* U+FF20 FULLWIDTH, U+FE6B SMALL COMMERCIAL AT */
	return 0;
}

/* Length of a dot or look-alike at p (0 if none). */
static size_t
dot_sign(const unsigned char *p, size_t left)
{
	if (left >= 1 && p[0] == '.')
		return 1;
	if (left >= 3 && ((p[0] == 0xef && p[1] == 0xbc && p[2] == 0x8e) ||
	    (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x82) ||
	    (p[0] == 0xef && p[1] == 0xbd && p[2] == 0xa1)))
		return 3;	/* U+FF0E, U+3002, U+FF61 */
	return 0;
}

static int
is_domain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c >= 0x80;
}

int
display_name_foreign_address(char *const *grants, size_t n,
    const char *display, size_t len, char *found, size_t cap)
{
	const unsigned char	*p = (const unsigned char *)display;
	char			 dom[GRANT_DOMAIN_MAX + 2];
	size_t			 i, j, k, start, atl, dl, dotl, dn, lab;
	int			 dots, owned, toolong;

	if (display == NULL)
		return 0;
	for (i = 0; i < len; i++) {
		if ((atl = at_sign(p + i, len - i)) == 0)
			continue;
		start = i;
		/* At most 64 octets of local part are reported (RFC 5321
		 * 4.5.3.1.1); the domain decides. */
		while (start > 0 && i - start < 64 &&
		    (is_atext(p[start - 1]) || p[start - 1] >= 0x80))
			start--;
		/*
		 * A quoted local part ("ceo"@evil.example) reads as one; a
		 * quoted string holds no control bytes but HTAB (RFC 5322
		 * 3.2.4, FWS).
		 */
		if (start == i && i >= 2 && p[i - 1] == '"') {
			for (start = i - 1; start > 0 && i - start < 66 &&
			    p[start - 1] != '"' && (p[start - 1] >= 0x20 ||
			    p[start - 1] == '\t') && p[start - 1] != 0x7f;
			    start--)
				;
			if (start == 0 || p[start - 1] != '"')
				continue;
			start--;
		}
		if (start == i)
			continue;
		/* Collect the domain with look-alike dots made plain. */
		dn = 0;
		dots = 0;
		lab = 0;
		toolong = 0;
		j = i + atl;
		while (j < len) {
			if ((dotl = dot_sign(p + j, len - j)) > 0) {
				if (lab > 0 && j + dotl < len &&
				    dot_sign(p + j + dotl, len - j - dotl) == 0 &&
				    is_domain_byte(p[j + dotl]))
					dots++;
				lab = 0;
				if (dn < sizeof(dom) - 1)
					dom[dn++] = '.';
				else
					toolong = 1;
				j += dotl;
				continue;
			}
			if (!is_domain_byte(p[j]) || at_sign(p + j, len - j))
				break;
			if (dn < sizeof(dom) - 1)
				dom[dn++] = (char)p[j];
			else
				toolong = 1;
			lab++;
			j++;
		}
		if (dots == 0)
			continue;
		while (dn > 0 && dom[dn - 1] == '.')
			dn--;
		dom[dn] = '\0';
		dl = dn;
		owned = 0;
		for (k = 0; !toolong && k < n; k++)
			if (grant_owns_domain(grants[k], dom, dl)) {
				owned = 1;
				break;
			}
		if (owned)
			continue;
		if (found != NULL && cap > 0) {
			k = j - start;
			if (k > cap - 1)
				k = cap - 1;
			memcpy(found, display + start, k);
			found[k] = '\0';
		}
		return 1;
	}
	return 0;
}

/*
 * users: load the users file (INTERFACE.md) into an immutable, sorted
 * table.
 *
 *   NAME:HASH:GRANTS
 *
 * Owns the struct users it returns and every string in it.  The file is
 * read strictly: each line is a comment ('#' first, after optional
 * blanks), blank, or exactly three ':'-separated fields.  CR, NUL, lines
 * over USERS_LINE_MAX octets, bad names, unsupported or plain-text hashes
 * (crypt_hash_supported()), empty or malformed grants and duplicate names
 * are all errors; every one is printed as "FILE:LINE: message" and the
 * whole file is refused.  A hash is never echoed in a message (it might be
 * a plain-text password).  Domains in grants are lower-cased and lose a
 * trailing dot; local parts are kept as written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt_util.h"
#include "users.h"

#define USERS_GRANTS_MAX	1024	/* grants per account */

struct users_ctx {
	const char	*path;
	FILE		*err;
	int		 nerr;
	int		 line;
};

static void users_error(struct users_ctx *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
users_error(struct users_ctx *c, const char *fmt, ...)
{
	va_list	 ap;

	c->nerr++;
	if (c->err == NULL)
		return;
	if (c->line > 0)
		fprintf(c->err, "%s:%d: ", c->path, c->line);
	else
		fprintf(c->err, "%s: ", c->path);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
}

static int
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	    c == '+' || c == '@';
}

/*
 * A host name (RFC 1035 2.3.1, RFC 1123 2.1): labels of 1..63 letters,
 * digits and hyphens, not starting or ending with a hyphen, 253 octets at
 * most, at least two labels, lower case (the caller folds it first).
 */
static int
hostname_ok(const char *s)
{
	size_t	 len = strlen(s), lab = 0, i;
	int	 dots = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			dots++;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return 0;
		if (c == '-' && lab == 0)
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab > 0 && s[len - 1] != '-' && dots > 0;
}

/* RFC 5322 3.2.3 atext, as used in an RFC 5321 4.1.2 Dot-string. */
static int
atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A Dot-string local part of 1..64 octets (RFC 5321 4.1.2, 4.5.3.1.1). */
static int
local_ok(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* Lower-case a domain in place and drop one trailing dot. */
static void
domain_fold(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = *s - 'A' + 'a';
}

static void
domain_trim(char *s)
{
	size_t	 len = strlen(s);

	if (len > 1 && s[len - 1] == '.')
		s[len - 1] = '\0';
}

/*
 * Check and normalize one grant in place: DOMAIN, *.DOMAIN or
 * LOCAL@DOMAIN.  Returns 0 or -1 with *why set.
 */
static int
grant_parse(char *g, const char **why)
{
	char	*at, *dom;

	if (*g == '\0') {
		*why = "empty grant";
		return -1;
	}
	if ((at = strrchr(g, '@')) != NULL) {
		if (!local_ok(g, at - g)) {
			*why = "bad local part";
			return -1;
		}
		dom = at + 1;
	} else if (strncmp(g, "*.", 2) == 0)
		dom = g + 2;
	else
		dom = g;
	domain_trim(dom);
	domain_fold(dom);
	if (!hostname_ok(dom)) {
		*why = "bad domain";
		return -1;
	}
	return 0;
}

static void
user_clear(struct user *u)
{
	size_t	 i;

	free(u->name);
	if (u->hash != NULL) {
		explicit_bzero(u->hash, strlen(u->hash));
		free(u->hash);
	}
	for (i = 0; i < u->ngrants; i++)
		free(u->grants[i]);
	free(u->grants);
	memset(u, 0, sizeof(*u));
}

void
users_free(struct users *us)
{
	size_t	 i;

	if (us == NULL)
		return;
	for (i = 0; i < us->n; i++)
		user_clear(&us->v[i]);
	free(us->v);
	free(us);
}

/* Parse one non-comment line (already checked for CR and NUL) into u. */
static int
line_parse(struct users_ctx *c, char *line, struct user *u)
{
	char		*name, *hash, *grants, *p, *g, *end;
	const char	*why;
	size_t		 i, n;

	name = line;
	if ((hash = strchr(name, ':')) == NULL ||
	    (grants = strchr(hash + 1, ':')) == NULL) {
		users_error(c, "expected NAME:HASH:GRANTS");
		return -1;
	}
	*hash++ = '\0';
	*grants++ = '\0';
	if (strchr(grants, ':') != NULL) {
		users_error(c, "expected NAME:HASH:GRANTS (too many ':')");
		return -1;
	}
	n = strlen(name);
	if (n == 0 || n > USERS_NAME_MAX) {
		users_error(c, "user name must be 1..%d octets",
		    USERS_NAME_MAX);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!name_char((unsigned char)name[i])) {
			users_error(c, "user name: bad character at offset %zu "
			    "(letters, digits and . _ - + @ only)", i);
			return -1;
		}
	if (!crypt_hash_supported(hash)) {
		users_error(c, "%s: password hash missing, plain text or of an "
		    "unsupported kind (use $y$, $2b$ or $6$; make one with "
		    "relayctl passwd)", name);
		return -1;
	}
	if (*grants == '\0') {
		users_error(c, "%s: no grants (need DOMAIN, *.DOMAIN or "
		    "LOCAL@DOMAIN)", name);
		return -1;
	}
	if ((u->name = strdup(name)) == NULL ||
	    (u->hash = strdup(hash)) == NULL)
		goto nomem;
	for (p = grants; p != NULL; p = end) {
		if ((end = strchr(p, ',')) != NULL)
			*end++ = '\0';
		if (u->ngrants >= USERS_GRANTS_MAX) {
			users_error(c, "%s: more than %d grants", name,
			    USERS_GRANTS_MAX);
			return -1;
		}
		if (grant_parse(p, &why) == -1) {
			users_error(c, "%s: grant %zu: %s (need DOMAIN, "
			    "*.DOMAIN or LOCAL@DOMAIN)", name, u->ngrants + 1,
			    why);
			return -1;
		}
		if ((g = strdup(p)) == NULL)
			goto nomem;
		if (u->ngrants % 8 == 0) {
			char **ng = reallocarray(u->grants, u->ngrants + 8,
			    sizeof(*ng));

			if (ng == NULL) {
				free(g);
				goto nomem;
			}
			u->grants = ng;
		}
		u->grants[u->ngrants++] = g;
	}
	return 0;
nomem:
	users_error(c, "out of memory");
	return -1;
}

static int
user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name,
	    ((const struct user *)b)->name);
}

struct name_line {
	const char	*name;
	int		 line;
};

/* By name, then by line, so the first occurrence comes first. */
static int
name_line_cmp(const void *a, const void *b)
{
	const struct name_line	*x = a, *y = b;
	int			 r;

	if ((r = strcmp(x->name, y->name)) != 0)
		return r;
	return (x->line > y->line) - (x->line < y->line);
}

int
users_load(const char *path, FILE *err, struct users **out)
{
	struct users_ctx	 c = { path, err, 0, 0 };
	struct users		*us = NULL;
	struct user		 u;
	int			*lines = NULL;
	char			*buf = NULL, *s, *e;
	size_t			 cap = 0, len, i, ucap = 0;
	int			 ch, toolong, hasnul;
	FILE			*f;

	if ((f = fopen(path, "r")) == NULL) {
		users_error(&c, "cannot open: %s", strerror(errno));
		return c.nerr;
	}
	if ((us = calloc(1, sizeof(*us))) == NULL ||
	    (buf = malloc(USERS_LINE_MAX + 2)) == NULL) {
		users_error(&c, "out of memory");
		goto done;
	}
	cap = USERS_LINE_MAX + 2;
	for (;;) {
		/* Read one line, bounded: the rest of a long one is skipped. */
		len = 0;
		toolong = hasnul = 0;
		while ((ch = getc(f)) != EOF && ch != '\n') {
			if (ch == '\0')
				hasnul = 1;
			if (len < cap - 1)
				buf[len++] = ch;
			else
				toolong = 1;
		}
		if (ch == EOF && len == 0 && !toolong)
			break;
		buf[len] = '\0';
		c.line++;
		if (toolong || len > USERS_LINE_MAX) {
			users_error(&c, "line longer than %d octets",
			    USERS_LINE_MAX);
			continue;
		}
		if (hasnul) {
			users_error(&c, "NUL byte in line");
			continue;
		}
		if (memchr(buf, '\r', len) != NULL) {
			users_error(&c, "CR in line (the file must use LF line "
			    "ends)");
			continue;
		}
		/* Blank lines and comments; surrounding blanks ignored. */
		for (s = buf; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '\0' || *s == '#')
			continue;
		for (e = s + strlen(s); e > s && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		memset(&u, 0, sizeof(u));
		if (line_parse(&c, s, &u) == -1) {
			user_clear(&u);
			continue;
		}
		if (us->n == ucap) {
			struct user	*nv;
			int		*nl;

			ucap = ucap ? ucap * 2 : 16;
			nv = reallocarray(us->v, ucap, sizeof(*nv));
			if (nv != NULL)
				us->v = nv;
			nl = reallocarray(lines, ucap, sizeof(*nl));
			if (nl != NULL)
				lines = nl;
			if (nv == NULL || nl == NULL) {
				user_clear(&u);
				users_error(&c, "out of memory");
				goto done;
			}
		}
		lines[us->n] = c.line;
		us->v[us->n++] = u;
	}
	if (ferror(f)) {
		c.line = 0;
		users_error(&c, "read error: %s", strerror(errno));
	}
	/* Duplicates: sort (name, line) pairs and compare neighbours. */
	if (us->n > 1) {
		struct name_line	*nl;

		if ((nl = calloc(us->n, sizeof(*nl))) == NULL) {
			users_error(&c, "out of memory");
			goto done;
		}
		for (i = 0; i < us->n; i++) {
			nl[i].name = us->v[i].name;
			nl[i].line = lines[i];
		}
		qsort(nl, us->n, sizeof(*nl), name_line_cmp);
		for (i = 1; i < us->n; i++)
			if (strcmp(nl[i].name, nl[i - 1].name) == 0) {
				c.line = nl[i].line;
				users_error(&c, "%s: duplicate user (first on "
				    "line %d)", nl[i].name, nl[i - 1].line);
			}
		free(nl);
	}
	if (c.nerr == 0) {
		if (us->n > 0)
			qsort(us->v, us->n, sizeof(*us->v), user_cmp);
		*out = us;
		us = NULL;
	}
done:
	fclose(f);
	free(buf);
	free(lines);
	users_free(us);
	return c.nerr;
}

const struct user *
users_find(const struct users *us, const char *name)
{
	struct user	 key;

	if (us == NULL || us->n == 0 || name == NULL)
		return NULL;
	key.name = (char *)name;
	return bsearch(&key, us->v, us->n, sizeof(*us->v), user_cmp);
}

/*
 * smtp_cmd: split an SMTP command line into verb and arguments, and parse
 * the path and parameters of MAIL and RCPT (RFC 5321 section 4.1.2).
 *
 * Pure functions of bytes: no I/O, no allocation, no globals.  Owns
 * nothing; results point into the caller's line or are copied into the
 * caller's struct smtp_path.  Limits: RFC 5321 4.5.3.1 (local part 64,
 * domain 255, path 256 octets with the brackets).
 *
 * Choices beyond the grammar: one space after "FROM:" / "TO:" and trailing
 * spaces after the path or parameters are tolerated (common clients send
 * them); the AUTH= parameter of RFC 4954 section 5 is accepted for MAIL
 * (a server offering AUTH must accept it) and ignored.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "num.h"
#include "smtp_cmd.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
	{ "BDAT", SMTP_VERB_BDAT },
	/* HTTP request lines: the session closes on them. */
	{ "GET", SMTP_VERB_HTTP },
	{ "POST", SMTP_VERB_HTTP },
	{ "HEAD", SMTP_VERB_HTTP },
	{ "PUT", SMTP_VERB_HTTP },
	{ "CONNECT", SMTP_VERB_HTTP },
	{ "OPTIONS", SMTP_VERB_HTTP },
};

static const char *const smtp_verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_HTTP] = "HTTP",
};

static int
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive compare of n bytes of p with the ASCII string s. */
static int
eq_nocase(const char *p, size_t n, const char *s)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\0' ||
		    lower((unsigned char)p[i]) != lower((unsigned char)s[i]))
			return 0;
	}
	return s[n] == '\0';
}

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

int
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	size_t	 i, vlen;

	/* RFC 5321 2.3.8: no bare CR, LF or NUL; other controls refused. */
	for (i = 0; i < len; i++) {
		if (is_ctl((unsigned char)line[i]) && line[i] != '\t')
			return -1;
	}
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	out->verb = SMTP_VERB_UNKNOWN;
	out->args = line;
	out->argslen = len;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (eq_nocase(line, vlen, smtp_verbs[i].name)) {
			out->verb = smtp_verbs[i].verb;
			if (vlen < len) {
				out->args = line + vlen + 1;
				out->argslen = len - vlen - 1;
			} else {
				out->args = line + len;
				out->argslen = 0;
			}
			break;
		}
	}
	return 0;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((int)v < 0 || v >= SMTP_VERB_COUNT)
		return "UNKNOWN";
	return smtp_verb_names[v];
}

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes), or 0:
 * RFC 3629 section 4, so no overlong forms, no surrogates, nothing above
 * U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char	 c = p[0];
	size_t		 len, i;
	unsigned char	 lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Parse state shared by the path helpers. */
struct pctx {
	const unsigned char	*p;
	size_t			 n;
	size_t			 i;
	int			 saw8;
};

/*
 * A non-ASCII sequence at the cursor: consume it and return 1, or return
 * an error (negative enum) for invalid UTF-8.
 */
static int
take_utf8(struct pctx *c)
{
	size_t	 l;

	l = utf8_len(c->p + c->i, c->n - c->i);
	if (l == 0)
		return -1;
	c->i += l;
	c->saw8 = 1;
	return 0;
}

/* RFC 5321 4.1.2 atext (RFC 5322 3.2.3). */
static int
is_atext(unsigned char ch)
{
	return is_alpha(ch) || is_digit(ch) || (ch != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/*
 * Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2; RFC 6531 3.3
 * adds UTF-8 to atext and qtextSMTP).
 */
static enum smtp_parse
parse_local(struct pctx *c)
{
	unsigned char	 ch;
	size_t		 start = c->i;
	int		 atom_len = 0;

	if (c->i < c->n && c->p[c->i] == '"') {
		c->i++;
		for (;;) {
			if (c->i >= c->n)
				return SMTP_PARSE_SYNTAX;
			ch = c->p[c->i];
			if (ch == '"') {
				c->i++;
				break;
			}
			if (is_ctl(ch))
				return SMTP_PARSE_BAD_ADDRESS;
			if (ch == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (c->i + 1 >= c->n)
					return SMTP_PARSE_SYNTAX;
				ch = c->p[c->i + 1];
				if (ch < 32 || ch > 126)
					return SMTP_PARSE_BAD_ADDRESS;
				c->i += 2;
			} else if (ch >= 0x80) {
				if (take_utf8(c) == -1)
					return SMTP_PARSE_BAD_ADDRESS;
			} else
				c->i++;
		}
	} else {
		for (;;) {
			if (c->i >= c->n)
				break;
			ch = c->p[c->i];
			if (ch == '.') {
				if (atom_len == 0)
					return SMTP_PARSE_BAD_ADDRESS;
				atom_len = 0;
				c->i++;
			} else if (ch >= 0x80) {
				if (take_utf8(c) == -1)
					return SMTP_PARSE_BAD_ADDRESS;
				atom_len++;
			} else if (is_atext(ch)) {
				atom_len++;
				c->i++;
			} else
				break;
		}
		if (atom_len == 0)
			return SMTP_PARSE_BAD_ADDRESS;
	}
	if (c->i - start > SMTP_LOCAL_MAX)
		return SMTP_PARSE_TOO_LONG;
	return SMTP_PARSE_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2); with SMTPUTF8 a sub-domain may be a U-label (RFC 6531
 * 3.3), taken here as valid UTF-8 in place of letters.  Labels are at most
 * 63 octets (RFC 1035 2.3.4).
 */
static enum smtp_parse
parse_domain(struct pctx *c)
{
	size_t		 start = c->i, label;
	unsigned char	 ch, last;

	for (;;) {
		label = 0;
		last = 0;
		while (c->i < c->n) {
			ch = c->p[c->i];
			if (ch >= 0x80) {
				if (take_utf8(c) == -1)
					return SMTP_PARSE_BAD_ADDRESS;
				label++;
				last = 'a';
				continue;
			}
			if (!is_alpha(ch) && !is_digit(ch) && ch != '-')
				break;
			if (ch == '-' && label == 0)
				return SMTP_PARSE_BAD_ADDRESS;
			label++;
			last = ch;
			c->i++;
		}
		if (label == 0 || last == '-')
			return SMTP_PARSE_BAD_ADDRESS;
		if (label > 63)
			return SMTP_PARSE_BAD_ADDRESS;
		if (c->i < c->n && c->p[c->i] == '.') {
			c->i++;
			continue;
		}
		break;
	}
	if (c->i - start > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_TOO_LONG;
	return SMTP_PARSE_OK;
}

/* Snum = 1*3DIGIT representing a decimal integer value in the range 0-255 */
static int
parse_ipv4(const unsigned char *p, size_t n)
{
	size_t	 i = 0, digits;
	int	 part, v;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return -1;
			i++;
		}
		v = 0;
		for (digits = 0; i < n && is_digit(p[i]) && digits < 3;
		    digits++, i++)
			v = v * 10 + (p[i] - '0');
		if (digits == 0 || v > 255)
			return -1;
	}
	return i == n ? 0 : -1;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]" (RFC 5321 4.1.3).
 */
static enum smtp_parse
parse_literal(struct pctx *c)
{
	const unsigned char	*b;
	size_t			 start = c->i, end, len, k, tag;
	char			 tmp[64];
	unsigned char		 a6[16];

	c->i++;		/* '[' */
	for (end = c->i; end < c->n && c->p[end] != ']'; end++) {
		if (is_ctl(c->p[end]) || c->p[end] >= 0x80)
			return SMTP_PARSE_BAD_ADDRESS;
		if (c->p[end] == '[' || c->p[end] == '\\')
			return SMTP_PARSE_BAD_ADDRESS;
	}
	if (end >= c->n)
		return SMTP_PARSE_SYNTAX;
	b = c->p + c->i;
	len = end - c->i;
	if (len > 0 && is_digit(b[0])) {
		if (parse_ipv4(b, len) == -1)
			return SMTP_PARSE_BAD_ADDRESS;
	} else if (len > 5 && eq_nocase((const char *)b, 5, "IPv6:")) {
		if (len - 5 >= sizeof(tmp))
			return SMTP_PARSE_BAD_ADDRESS;
		memcpy(tmp, b + 5, len - 5);
		tmp[len - 5] = '\0';
		if (inet_pton(AF_INET6, tmp, a6) != 1)
			return SMTP_PARSE_BAD_ADDRESS;
	} else {
		/*
		 * General-address-literal: Standardized-tag ":" 1*dcontent,
		 * dcontent = %d33-90 / %d94-126.
		 */
		for (tag = 0; tag < len && (is_alpha(b[tag]) ||
		    is_digit(b[tag]) || b[tag] == '-'); tag++)
			;
		if (tag == 0 || b[tag - 1] == '-' || b[0] == '-' ||
		    tag >= len || b[tag] != ':' || tag + 1 == len)
			return SMTP_PARSE_BAD_ADDRESS;
		for (k = tag + 1; k < len; k++)
			if (b[k] < 33 || b[k] > 126)
				return SMTP_PARSE_BAD_ADDRESS;
	}
	c->i = end + 1;
	if (c->i - start > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_TOO_LONG;
	return SMTP_PARSE_OK;
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 4.1.2), the cursor on
 * '<'.  The mailbox is copied into path; the source route is dropped
 * (RFC 5321 appendix C).  allow_null: "<>" (MAIL); allow_pm: "<Postmaster>"
 * (RCPT, 4.5.1).
 */
static enum smtp_parse
parse_path(struct pctx *c, struct smtp_path *path, int allow_null,
    int allow_pm)
{
	enum smtp_parse	 r;
	size_t		 open = c->i, mbox, at, k;

	memset(path, 0, sizeof(*path));
	if (c->i >= c->n || c->p[c->i] != '<')
		return SMTP_PARSE_SYNTAX;
	c->i++;
	/* Any control byte up to the closing bracket is an error. */
	for (k = c->i; k < c->n && c->p[k] != '>'; k++)
		if (is_ctl(c->p[k]))
			return SMTP_PARSE_BAD_ADDRESS;
	if (c->i < c->n && c->p[c->i] == '>') {
		if (!allow_null)
			return SMTP_PARSE_BAD_ADDRESS;
		c->i++;
		path->null = 1;
		return SMTP_PARSE_OK;
	}
	if (c->i < c->n && c->p[c->i] == '@') {
		/* A-d-l = At-domain *( "," At-domain ) */
		for (;;) {
			c->i++;		/* '@' */
			if ((r = parse_domain(c)) != SMTP_PARSE_OK)
				return r == SMTP_PARSE_TOO_LONG ?
				    r : SMTP_PARSE_BAD_ADDRESS;
			if (c->i < c->n && c->p[c->i] == ',' &&
			    c->i + 1 < c->n && c->p[c->i + 1] == '@') {
				c->i++;
				continue;
			}
			if (c->i < c->n && c->p[c->i] == ':') {
				c->i++;
				break;
			}
			return SMTP_PARSE_BAD_ADDRESS;
		}
	}
	mbox = c->i;
	if (allow_pm && c->n - c->i >= 11 &&
	    eq_nocase((const char *)c->p + c->i, 10, "postmaster") &&
	    c->p[c->i + 10] == '>' && mbox == open + 1) {
		c->i += 10;
		at = c->i;
	} else {
		if ((r = parse_local(c)) != SMTP_PARSE_OK)
			return r;
		if (c->i >= c->n || c->p[c->i] != '@')
			return c->i >= c->n ? SMTP_PARSE_SYNTAX :
			    SMTP_PARSE_BAD_ADDRESS;
		at = c->i;
		c->i++;
		if (c->i < c->n && c->p[c->i] == '[')
			r = parse_literal(c);
		else
			r = parse_domain(c);
		if (r != SMTP_PARSE_OK)
			return r;
	}
	if (c->i >= c->n)
		return SMTP_PARSE_SYNTAX;
	if (c->p[c->i] != '>')
		return SMTP_PARSE_BAD_ADDRESS;
	c->i++;
	if (c->i - open > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	path->len = c->i - 1 - mbox;
	memcpy(path->addr, c->p + mbox, path->len);
	path->addr[path->len] = '\0';
	path->at = at - mbox;
	return SMTP_PARSE_OK;
}

/* "FROM:" / "TO:" and the one tolerated space. */
static enum smtp_parse
parse_keyword(struct pctx *c, const char *kw)
{
	size_t	 kl = strlen(kw);

	if (c->n < kl || !eq_nocase((const char *)c->p, kl, kw))
		return SMTP_PARSE_SYNTAX;
	c->i = kl;
	if (c->i < c->n && c->p[c->i] == ' ')
		c->i++;
	return SMTP_PARSE_OK;
}

static int
is_hexupper(unsigned char ch)
{
	return is_digit(ch) || (ch >= 'A' && ch <= 'F');
}

/* xtext (RFC 3461 4): "+" 2HEXCHAR or %d33-42 / %d44-60 / %d62-126. */
static int
is_xtext(const unsigned char *v, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (v[i] == '+') {
			if (n - i < 3 || !is_hexupper(v[i + 1]) ||
			    !is_hexupper(v[i + 2]))
				return 0;
			i += 2;
		} else if (v[i] < 33 || v[i] > 126 || v[i] == '=')
			return 0;
	}
	return 1;
}

/*
 * esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2),
 * separated by single spaces; trailing spaces tolerated.
 */
static enum smtp_parse
parse_mail_params(struct pctx *c, struct smtp_mail_params *mp)
{
	const unsigned char	*kw, *val;
	size_t			 kl, vl, k;
	int			 seen_auth = 0;
	uint64_t		 v;
	char			 num[24];

	for (;;) {
		while (c->i < c->n && c->p[c->i] == ' ')
			c->i++;
		if (c->i >= c->n)
			return SMTP_PARSE_OK;
		kw = c->p + c->i;
		for (kl = 0; c->i < c->n && c->p[c->i] != ' ' &&
		    c->p[c->i] != '='; kl++, c->i++)
			;
		val = NULL;
		vl = 0;
		if (c->i < c->n && c->p[c->i] == '=') {
			c->i++;
			val = c->p + c->i;
			for (; c->i < c->n && c->p[c->i] != ' '; vl++, c->i++)
				;
		}
		if (kl == 0)
			return SMTP_PARSE_BAD_PARAM;
		for (k = 0; k < kl; k++)
			if (!is_alpha(kw[k]) && !is_digit(kw[k]) &&
			    (kw[k] != '-' || k == 0))
				return SMTP_PARSE_BAD_PARAM;
		if (eq_nocase((const char *)kw, kl, "SIZE")) {
			/* RFC 1870 6: size-value = 1*20DIGIT */
			if (mp->has_size || val == NULL || vl == 0 ||
			    vl >= sizeof(num))
				return SMTP_PARSE_BAD_PARAM;
			memcpy(num, val, vl);
			num[vl] = '\0';
			if (num_parse_u64(num, 0, INT64_MAX, &v) == -1)
				return SMTP_PARSE_BAD_PARAM;
			mp->size = v;
			mp->has_size = 1;
		} else if (eq_nocase((const char *)kw, kl, "BODY")) {
			/* RFC 6152 2 */
			if (mp->body != SMTP_BODY_UNSPEC || val == NULL)
				return SMTP_PARSE_BAD_PARAM;
			if (eq_nocase((const char *)val, vl, "7BIT"))
				mp->body = SMTP_BODY_7BIT;
			else if (eq_nocase((const char *)val, vl, "8BITMIME"))
				mp->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PARSE_BAD_PARAM;
		} else if (eq_nocase((const char *)kw, kl, "SMTPUTF8")) {
			/* RFC 6531 3.4: no value. */
			if (mp->smtputf8 || val != NULL)
				return SMTP_PARSE_BAD_PARAM;
			mp->smtputf8 = 1;
		} else if (eq_nocase((const char *)kw, kl, "AUTH")) {
			/* RFC 4954 5: AUTH=<> or AUTH=xtext; ignored. */
			if (seen_auth || val == NULL)
				return SMTP_PARSE_BAD_PARAM;
			if (!(vl == 2 && val[0] == '<' && val[1] == '>') &&
			    !is_xtext(val, vl))
				return SMTP_PARSE_BAD_PARAM;
			seen_auth = 1;
		} else
			return SMTP_PARSE_BAD_PARAM;
	}
}

enum smtp_parse
smtp_parse_mail(const char *args, size_t len, struct smtp_path *path,
    struct smtp_mail_params *mp)
{
	struct pctx	 c = { (const unsigned char *)args, len, 0, 0 };
	enum smtp_parse	 r;

	memset(mp, 0, sizeof(*mp));
	if ((r = parse_keyword(&c, "FROM:")) != SMTP_PARSE_OK) {
		memset(path, 0, sizeof(*path));
		return r;
	}
	/* The path is parsed first with UTF-8 allowed; SMTPUTF8 decides. */
	if ((r = parse_path(&c, path, 1, 0)) != SMTP_PARSE_OK)
		return r;
	if (c.i < c.n && c.p[c.i] != ' ')
		return SMTP_PARSE_SYNTAX;
	if ((r = parse_mail_params(&c, mp)) != SMTP_PARSE_OK)
		return r;
	/* RFC 6531 3.4: a non-ASCII path needs the SMTPUTF8 parameter. */
	if (c.saw8 && !mp->smtputf8)
		return SMTP_PARSE_NEED_UTF8;
	return SMTP_PARSE_OK;
}

enum smtp_parse
smtp_parse_rcpt(const char *args, size_t len, int utf8_ok,
    struct smtp_path *path)
{
	struct pctx	 c = { (const unsigned char *)args, len, 0, 0 };
	enum smtp_parse	 r;

	if ((r = parse_keyword(&c, "TO:")) != SMTP_PARSE_OK) {
		memset(path, 0, sizeof(*path));
		return r;
	}
	if ((r = parse_path(&c, path, 0, 1)) != SMTP_PARSE_OK)
		return r;
	if (c.i < c.n && c.p[c.i] != ' ')
		return SMTP_PARSE_SYNTAX;
	while (c.i < c.n && c.p[c.i] == ' ')
		c.i++;
	if (c.i < c.n)
		return SMTP_PARSE_BAD_PARAM;
	if (c.saw8 && !utf8_ok)
		return SMTP_PARSE_NEED_UTF8;
	return SMTP_PARSE_OK;
}

/*
 * mailbox: the strict parser of From, Sender, Resent-From and
 * Resent-Sender (RFC 5322 3.4, 3.6.2, 3.6.6), with RFC 2047 decoding of
 * the display text and Punycode (RFC 3492) for non-ASCII domain labels.
 * See mailbox.h for what is refused and why.  Owns nothing: writes into
 * the caller's structures.  Limits: MAILBOX_VALUE_MAX octets per unfolded
 * value, MAILBOX_COMMENT_DEPTH levels of comments, RFC 5321 lengths for
 * the address.
 */
#include <errno.h>
#include <iconv.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailbox.h"

struct parser {
	const unsigned char	*p;
	const unsigned char	*end;
	int			 utf8_ok;
	char			*reason;
	size_t			 rcap;
	char			 disp[MAILBOX_DISPLAY_MAX + 1];	/* raw text */
	size_t			 dlen;
	int			 overflow;
};

static const char *const field_names[MAILBOX_NFIELDS] = {
	"From", "Sender", "Resent-From", "Resent-Sender"
};

const char *
mailbox_field_name(enum mailbox_field f)
{
	if ((unsigned)f >= MAILBOX_NFIELDS)
		return "?";
	return field_names[f];
}

static int
fail(struct parser *ps, const char *msg)
{
	if (ps->reason != NULL && ps->rcap > 0)
		snprintf(ps->reason, ps->rcap, "%s", msg);
	return -1;
}

/* RFC 5322 3.2.3 atext; 8-bit bytes are UTF-8 atext (RFC 6532 3.2). */
static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80)
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static void
disp_add(struct parser *ps, const void *s, size_t n)
{
	if (ps->dlen + n > MAILBOX_DISPLAY_MAX) {
		ps->overflow = 1;
		return;
	}
	memcpy(ps->disp + ps->dlen, s, n);
	ps->dlen += n;
}

static void
disp_sep(struct parser *ps)
{
	if (ps->dlen > 0 && ps->disp[ps->dlen - 1] != ' ')
		disp_add(ps, " ", 1);
}

/*
 * A comment (RFC 5322 3.2.2) starting at '('; its text (quoted-pairs
 * resolved, nested parentheses kept) goes to the display text.
 */
static int
comment(struct parser *ps)
{
	int	 depth = 0;

	disp_sep(ps);
	while (ps->p < ps->end) {
		unsigned char c = *ps->p++;

		if (c == '(') {
			if (++depth > MAILBOX_COMMENT_DEPTH)
				return fail(ps, "comments are nested too deeply");
			if (depth > 1)
				disp_add(ps, "(", 1);
		} else if (c == ')') {
			if (--depth == 0) {
				disp_sep(ps);
				return 0;
			}
			disp_add(ps, ")", 1);
		} else if (c == '\\') {
			if (ps->p >= ps->end)
				break;
			disp_add(ps, ps->p, 1);
			ps->p++;
		} else
			disp_add(ps, &c, 1);
	}
	return fail(ps, "unbalanced parentheses: a comment is not closed");
}

/* Skip CFWS (RFC 5322 3.2.2); comments go to the display text. */
static int
cfws(struct parser *ps)
{
	while (ps->p < ps->end) {
		if (is_wsp(*ps->p))
			ps->p++;
		else if (*ps->p == '(') {
			if (comment(ps) == -1)
				return -1;
		} else
			break;
	}
	return 0;
}

/*
 * A quoted-string (RFC 5322 3.2.4) starting at '"'.  The unquoted content
 * goes to out (when not NULL, at most cap - 1 bytes, *olen set) and, when
 * to_disp, to the display text.
 */
static int
quoted(struct parser *ps, char *out, size_t cap, size_t *olen, int to_disp)
{
	size_t	 n = 0;

	ps->p++;
	while (ps->p < ps->end) {
		unsigned char c = *ps->p++;

		if (c == '"') {
			if (olen != NULL)
				*olen = n;
			return 0;
		}
		if (c == '\\') {
			if (ps->p >= ps->end)
				break;
			c = *ps->p++;
		}
		if (out != NULL) {
			if (n + 1 >= cap)
				return fail(ps, "the local part is longer "
				    "than 64 octets");
			out[n++] = (char)c;
			out[n] = '\0';
		}
		if (to_disp)
			disp_add(ps, &c, 1);
	}
	return fail(ps, "unbalanced quotes: a quoted string is not closed");
}

/* RFC 3492 6.1. */
static uint32_t
adapt(uint32_t delta, uint32_t numpoints, int first)
{
	uint32_t	 k = 0;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / numpoints;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

static int
puny_put(char *out, size_t cap, size_t *o, uint32_t d)
{
	if (*o + 1 >= cap)
		return -1;
	out[(*o)++] = (char)(d < 26 ? 'a' + d : '0' + d - 26);
	return 0;
}

/* Decode one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t
utf8_dec(const unsigned char *s, size_t left, uint32_t *cp)
{
	uint32_t	 c;
	size_t		 n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * The A-label of one label of n bytes (UTF-8 with at least one non-ASCII
 * code point), RFC 3492 6.3 with ASCII lower-cased.  Returns its length
 * or -1.
 */
static int
punycode(const unsigned char *s, size_t n, char *out, size_t cap)
{
	uint32_t	 cps[MAILBOX_LABEL_MAX * 4];
	uint32_t	 cpn = 0, i, h, b, m, q, t, k, delta, bias, c;
	uint32_t	 cn = 0x80;
	size_t		 o = 0, pos = 0, l;

	while (pos < n) {
		if ((l = utf8_dec(s + pos, n - pos, &c)) == 0 ||
		    cpn >= sizeof(cps) / sizeof(cps[0]))
			return -1;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		cps[cpn++] = c;
		pos += l;
	}
	if (cap < 5)
		return -1;
	memcpy(out, "xn--", 4);
	o = 4;
	for (i = 0; i < cpn; i++)
		if (cps[i] < 0x80) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)cps[i];
		}
	h = b = (uint32_t)(o - 4);
	if (b > 0) {
		if (o + 1 >= cap)
			return -1;
		out[o++] = '-';
	}
	delta = 0;
	bias = 72;
	while (h < cpn) {
		m = 0xffffffff;
		for (i = 0; i < cpn; i++)
			if (cps[i] >= cn && cps[i] < m)
				m = cps[i];
		/* Code points are at most 0x10ffff and cpn small: no
		 * overflow is possible here. */
		delta += (m - cn) * (h + 1);
		cn = m;
		for (i = 0; i < cpn; i++) {
			if (cps[i] < cn)
				delta++;
			if (cps[i] != cn)
				continue;
			q = delta;
			for (k = 36;; k += 36) {
				t = k <= bias ? 1 : k >= bias + 26 ? 26 :
				    k - bias;
				if (q < t)
					break;
				if (puny_put(out, cap, &o,
				    t + (q - t) % (36 - t)) == -1)
					return -1;
				q = (q - t) / (36 - t);
			}
			if (puny_put(out, cap, &o, q) == -1)
				return -1;
			bias = adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		cn++;
	}
	out[o] = '\0';
	return (int)o;
}

/* Domain look-alike dots that IDNA maps to '.'. */
static int
fancy_dot(const unsigned char *s, size_t left)
{
	return left >= 3 && ((s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x82) ||
	    (s[0] == 0xef && s[1] == 0xbc && s[2] == 0x8e) ||
	    (s[0] == 0xef && s[1] == 0xbd && s[2] == 0xa1));
}

/* The domain of an addr-spec: dot-separated LDH or UTF-8 labels. */
static int
domain(struct parser *ps, struct mailbox *mb)
{
	const unsigned char	*s = ps->p, *lab;
	size_t			 n, ln, o = 0, i;
	int			 ascii, r;
	char			 alabel[MAILBOX_LABEL_MAX + 2];

	if (ps->p < ps->end && *ps->p == '[')
		return fail(ps, "an address literal is not accepted as the "
		    "domain; use a domain name");
	while (ps->p < ps->end && ((*ps->p >= 'a' && *ps->p <= 'z') ||
	    (*ps->p >= 'A' && *ps->p <= 'Z') || (*ps->p >= '0' &&
	    *ps->p <= '9') || *ps->p == '-' || *ps->p == '.' ||
	    *ps->p >= 0x80)) {
		if (fancy_dot(ps->p, ps->end - ps->p))
			return fail(ps, "the domain contains a full-width or "
			    "ideographic dot");
		ps->p++;
	}
	n = ps->p - s;
	if (n == 0)
		return fail(ps, "the domain is missing after '@'");
	if (s[n - 1] == '.')
		return fail(ps, "the domain ends with a dot");
	if (n > MAILBOX_DOMAIN_MAX)
		return fail(ps, "the domain is longer than 253 octets");
	memcpy(mb->domain_raw, s, n);
	mb->domain_raw[n] = '\0';
	lab = s;
	while (lab <= s + n) {
		const unsigned char *e = memchr(lab, '.', s + n - lab);

		if (e == NULL)
			e = s + n;
		ln = e - lab;
		if (ln == 0)
			return fail(ps, "the domain has an empty label "
			    "(two dots, or a leading dot)");
		if (lab[0] == '-' || lab[ln - 1] == '-')
			return fail(ps, "a domain label starts or ends with "
			    "'-'");
		ascii = 1;
		for (i = 0; i < ln; i++)
			if (lab[i] >= 0x80)
				ascii = 0;
		if (ascii) {
			if (ln > MAILBOX_LABEL_MAX)
				return fail(ps, "a domain label is longer "
				    "than 63 octets");
			if (o + ln + 1 > MAILBOX_DOMAIN_MAX + 1)
				return fail(ps, "the domain is longer than "
				    "253 octets");
			for (i = 0; i < ln; i++) {
				unsigned char c = lab[i];

				if (c >= 'A' && c <= 'Z')
					c += 'a' - 'A';
				mb->domain[o++] = (char)c;
			}
		} else {
			mb->utf8 = 1;
			r = punycode(lab, ln, alabel, sizeof(alabel));
			if (r == -1 || r > MAILBOX_LABEL_MAX)
				return fail(ps, "a non-ASCII domain label has "
				    "no A-label of at most 63 octets");
			if (o + (size_t)r + 1 > MAILBOX_DOMAIN_MAX + 1)
				return fail(ps, "the domain is longer than "
				    "253 octets");
			memcpy(mb->domain + o, alabel, r);
			o += r;
		}
		if (e == s + n)
			break;
		mb->domain[o++] = '.';
		lab = e + 1;
	}
	mb->domain[o] = '\0';
	return 0;
}

/*
 * addr-spec (RFC 5322 3.4.1) with no CFWS inside: dot-atom or
 * quoted-string, '@', domain.
 */
static int
addr_spec(struct parser *ps, struct mailbox *mb)
{
	const unsigned char	*s = ps->p;
	size_t			 n, i;

	if (ps->p < ps->end && *ps->p == '"') {
		if (quoted(ps, mb->local, sizeof(mb->local), &mb->local_len,
		    0) == -1)
			return -1;
	} else {
		while (ps->p < ps->end && (is_atext(*ps->p) || *ps->p == '.'))
			ps->p++;
		n = ps->p - s;
		if (n == 0) {
			if (ps->p < ps->end && *ps->p == '@')
				return fail(ps, "the local part is empty");
			return fail(ps, "no address found");
		}
		if (s[0] == '.' || s[n - 1] == '.' ||
		    memmem(s, n, "..", 2) != NULL)
			return fail(ps, "the local part has a misplaced dot");
		if (n > MAILBOX_LOCAL_MAX)
			return fail(ps, "the local part is longer than 64 "
			    "octets");
		memcpy(mb->local, s, n);
		mb->local[n] = '\0';
		mb->local_len = n;
	}
	n = ps->p - s;
	if (n > MAILBOX_LOCAL_MAX)
		return fail(ps, "the local part is longer than 64 octets");
	memcpy(mb->local_raw, s, n);
	mb->local_raw[n] = '\0';
	if (memmem(s, n, "=?", 2) != NULL)
		return fail(ps, "an encoded-word (=?...?=) is not allowed in "
		    "the address");
	if (memchr(mb->local, '\0', mb->local_len) != NULL)
		return fail(ps, "the local part contains a NUL");
	if (mb->local_len == 0)
		return fail(ps, "the local part is empty");
	for (i = 0; i < n; i++)
		if (s[i] >= 0x80)
			mb->utf8 = 1;
	if (ps->p >= ps->end)
		return fail(ps, "the address has no '@' and domain");
	if (*ps->p != '@') {
		if (is_wsp(*ps->p) || *ps->p == '(')
			return fail(ps, "white space or a comment is not "
			    "allowed inside the address");
		if (*ps->p == '"' || *ps->p == '\\' || *ps->p == '.' ||
		    is_atext(*ps->p))
			return fail(ps, "the local part mixes quoted and "
			    "unquoted text");
		return fail(ps, "unexpected character in the local part");
	}
	ps->p++;
	if (ps->p < ps->end && (is_wsp(*ps->p) || *ps->p == '('))
		return fail(ps, "white space or a comment is not allowed "
		    "inside the address");
	if (domain(ps, mb) == -1)
		return -1;
	if (ps->end - ps->p >= 2 && ps->p[0] == '=' && ps->p[1] == '?')
		return fail(ps, "an encoded-word (=?...?=) is not allowed in "
		    "the address");
	return 0;
}

/* Check the bytes of a value: 8-bit only with utf8_ok, valid UTF-8. */
static int
check_bytes(struct parser *ps)
{
	const unsigned char	*s;
	uint32_t		 cp;
	size_t			 l;

	for (s = ps->p; s < ps->end; s += l) {
		l = 1;
		if (*s == '\0')
			return fail(ps, "the field contains a NUL byte");
		if (*s == '\r' || *s == '\n')
			return fail(ps, "the field contains a bare CR or LF");
		if ((*s < 0x20 && *s != '\t') || *s == 0x7f)
			return fail(ps, "the field contains a control "
			    "character");
		if (*s < 0x80)
			continue;
		if (!ps->utf8_ok)
			return fail(ps, "8-bit bytes need SMTPUTF8 (RFC 6531); "
			    "use RFC 2047 encoded-words in the display name "
			    "or an ASCII address");
		if ((l = utf8_dec(s, ps->end - s, &cp)) == 0)
			return fail(ps, "the field is not valid UTF-8");
		if (cp < 0xa0)
			return fail(ps, "the field contains a C1 control "
			    "character");
	}
	return 0;
}

/*
 * Structure of the value at the top level: counts of angle brackets and
 * the specials that make a list or a group.  Quotes and comments are
 * skipped (their balance is checked later).
 */
static int
structure(struct parser *ps, int *nangle)
{
	const unsigned char	*s;
	int			 inq = 0, depth = 0, ina = 0, nlt = 0;

	for (s = ps->p; s < ps->end; s++) {
		if (inq) {
			if (*s == '\\' && s + 1 < ps->end)
				s++;
			else if (*s == '"')
				inq = 0;
			continue;
		}
		if (depth > 0) {
			if (*s == '\\' && s + 1 < ps->end)
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			continue;
		}
		switch (*s) {
		case '"':
			inq = 1;
			break;
		case '(':
			depth = 1;
			break;
		case ')':
			return fail(ps, "unbalanced parentheses: ')' without "
			    "'('");
		case '<':
			if (ina)
				return fail(ps, "unbalanced angle brackets");
			ina = 1;
			nlt++;
			break;
		case '>':
			if (!ina)
				return fail(ps, "unbalanced angle brackets: "
				    "'>' without '<'");
			ina = 0;
			break;
		case ',':
			if (!ina)
				return fail(ps, "the field holds a list of "
				    "mailboxes; exactly one is allowed");
			break;
		case ':':
		case ';':
			if (!ina)
				return fail(ps, "the field holds a group "
				    "(\"name: ...;\"); exactly one mailbox is "
				    "allowed");
			break;
		}
	}
	if (inq)
		return fail(ps, "unbalanced quotes: a quoted string is not "
		    "closed");
	if (depth > 0)
		return fail(ps, "unbalanced parentheses: a comment is not "
		    "closed");
	if (ina)
		return fail(ps, "unbalanced angle brackets: '<' without '>'");
	if (nlt > 1)
		return fail(ps, "the field holds several angle addresses; "
		    "exactly one is allowed");
	*nangle = nlt;
	return 0;
}

/*
 * display-name = phrase (RFC 5322 3.2.5, with obs-phrase's '.').  The
 * display text keeps words apart where the value had white space or a
 * comment, and together where it had none.
 */
static int
phrase(struct parser *ps)
{
	const unsigned char	*before, *s;
	int			 words = 0;

	for (;;) {
		before = ps->p;
		if (cfws(ps) == -1)
			return -1;
		if (ps->p != before)
			disp_sep(ps);
		if (ps->p >= ps->end || *ps->p == '<')
			return 0;
		if (*ps->p == '"') {
			if (quoted(ps, NULL, 0, NULL, 1) == -1)
				return -1;
			words++;
		} else if (*ps->p == '.') {
			if (words == 0)
				return fail(ps, "the display name starts with "
				    "a dot; quote it");
			disp_add(ps, ".", 1);
			ps->p++;
		} else if (is_atext(*ps->p)) {
			s = ps->p;
			while (ps->p < ps->end && is_atext(*ps->p))
				ps->p++;
			disp_add(ps, s, ps->p - s);
			words++;
		} else if (*ps->p == '@')
			return fail(ps, "the display name contains an unquoted "
			    "'@' (an address outside the angle brackets)");
		else
			return fail(ps, "the display name contains an unquoted "
			    "special character; quote it");
	}
}

enum mailbox_verdict
mailbox_parse_value(const char *value, size_t len, int utf8_ok,
    struct mailbox *mb, char *reason, size_t cap)
{
	struct parser	 ps;
	int		 nangle, r;

	memset(mb, 0, sizeof(*mb));
	memset(&ps, 0, offsetof(struct parser, disp));
	ps.dlen = 0;
	ps.overflow = 0;
	ps.p = (const unsigned char *)value;
	ps.end = ps.p + len;
	ps.utf8_ok = utf8_ok;
	ps.reason = reason;
	ps.rcap = cap;
	if (reason != NULL && cap > 0)
		reason[0] = '\0';

	if (len > MAILBOX_VALUE_MAX) {
		fail(&ps, "the field is too long");
		goto bad;
	}
	if (check_bytes(&ps) == -1 || structure(&ps, &nangle) == -1)
		goto bad;
	if (cfws(&ps) == -1)
		goto bad;
	if (ps.p >= ps.end) {
		fail(&ps, "the field is empty; it must hold one address");
		goto bad;
	}
	if (nangle == 0) {
		/* addr-spec alone, comments around it. */
		if (addr_spec(&ps, mb) == -1)
			goto bad;
	} else {
		if (phrase(&ps) == -1)
			goto bad;
		if (ps.p >= ps.end || *ps.p != '<') {
			fail(&ps, "the angle address could not be found");
			goto bad;
		}
		ps.p++;		/* '<' */
		if (ps.p < ps.end && *ps.p == '>') {
			fail(&ps, "the address <> is empty");
			goto bad;
		}
		if (ps.p < ps.end && *ps.p == '@') {
			fail(&ps, "a source route (<@host:...>) is not "
			    "allowed");
			goto bad;
		}
		if (ps.p < ps.end && (is_wsp(*ps.p) || *ps.p == '(')) {
			fail(&ps, "white space or a comment is not allowed "
			    "inside the angle brackets");
			goto bad;
		}
		if (addr_spec(&ps, mb) == -1)
			goto bad;
		if (ps.p >= ps.end || *ps.p != '>') {
			if (ps.p < ps.end && (is_wsp(*ps.p) || *ps.p == '('))
				fail(&ps, "white space or a comment is not "
				    "allowed inside the angle brackets");
			else
				fail(&ps, "unexpected text after the address "
				    "inside the angle brackets");
			goto bad;
		}
		ps.p++;
	}
	if (cfws(&ps) == -1)
		goto bad;
	if (ps.p < ps.end) {
		fail(&ps, "unexpected text after the address; the field must "
		    "hold exactly one mailbox");
		goto bad;
	}
	if (ps.overflow) {
		fail(&ps, "the display name is too long");
		goto bad;
	}
	while (ps.dlen > 0 && ps.disp[ps.dlen - 1] == ' ')
		ps.dlen--;
	r = mailbox_decode_2047(ps.disp, ps.dlen, mb->display,
	    sizeof(mb->display));
	if (r == -2) {
		fail(&ps, "the display name has an encoded-word in a charset "
		    "that cannot be read");
		goto bad;
	}
	if (r < 0) {
		fail(&ps, "the display name is too long");
		goto bad;
	}
	mb->display_len = (size_t)r;
	return MAILBOX_OK;
bad:
	memset(mb, 0, sizeof(*mb));
	return MAILBOX_PERMFAIL;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int
hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
utf8_valid(const unsigned char *s, size_t n)
{
	uint32_t	 cp;
	size_t		 i = 0, k;

	while (i < n) {
		if ((k = utf8_dec(s + i, n - i, &cp)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/*
 * Text in a charset to UTF-8, so that what is checked is what a reader
 * shows: UTF-16 or UTF-7 could otherwise hide an "@" from a byte scan.
 * us-ascii, utf-8 and iso-8859-1 are done here; anything else goes
 * through glibc's iconv.  Returns 0, -1 when dst is too small, -2 for a
 * charset that cannot be read or text that is not valid in it.
 */
static int
charset_to_utf8(const char *cs, const unsigned char *in, size_t n, char *dst,
    size_t cap, size_t *outn)
{
	iconv_t	 cd;
	char	*ip = (char *)in, *op = dst;
	size_t	 il = n, ol = cap, i, o = 0, r;

	if (strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "utf-8") == 0) {
		if (strcasecmp(cs, "us-ascii") == 0) {
			for (i = 0; i < n; i++)
				if (in[i] >= 0x80)
					return -2;
		} else if (!utf8_valid(in, n))
			return -2;
		if (n > cap)
			return -1;
		memcpy(dst, in, n);
		*outn = n;
		return 0;
	}
	if (strcasecmp(cs, "iso-8859-1") == 0 || strcasecmp(cs, "latin1") == 0) {
		for (i = 0; i < n; i++) {
			if (o + 2 > cap)
				return -1;
			if (in[i] < 0x80)
				dst[o++] = (char)in[i];
			else {
				dst[o++] = (char)(0xc0 | in[i] >> 6);
				dst[o++] = (char)(0x80 | (in[i] & 0x3f));
			}
		}
		*outn = o;
		return 0;
	}
	if ((cd = iconv_open("UTF-8", cs)) == (iconv_t)-1)
		return -2;
	r = iconv(cd, &ip, &il, &op, &ol);
	if (r != (size_t)-1)
		r = iconv(cd, NULL, NULL, &op, &ol);
	iconv_close(cd);
	if (r == (size_t)-1)
		return errno == E2BIG ? -1 : -2;
	*outn = cap - ol;
	return 0;
}

/*
 * One encoded-word (RFC 2047 2.) at s; on success appends the decoded
 * text, as UTF-8, to dst and returns the length consumed, else 0 (not an
 * encoded-word: copied as it is), setting *bad when it is one but in a
 * charset that cannot be read.
 */
static size_t
encoded_word(const unsigned char *s, size_t left, char *dst, size_t cap,
    size_t *o, int *bad)
{
	const unsigned char	*p = s + 2, *end = s + left, *t;
	unsigned char		 enc, raw[MAILBOX_DISPLAY_MAX];
	char			 cs[64];
	unsigned int		 acc = 0, bits = 0;
	size_t			 oo = 0, csl, outn;
	int			 v, w, rc;

	if (left < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	/* charset ["*" language]: a token of printable non-specials. */
	while (p < end && *p > ' ' && *p < 0x7f && *p != '?')
		p++;
	if (p == s + 2 || p + 3 > end || *p != '?')
		return 0;
	/* The charset, without an RFC 2231 language suffix. */
	for (csl = 0; s + 2 + csl < p && s[2 + csl] != '*'; csl++)
		;
	if (csl >= sizeof(cs)) {
		*bad = 1;
		return 0;
	}
	memcpy(cs, s + 2, csl);
	cs[csl] = '\0';
	enc = p[1];
	if (p[2] != '?' || (enc != 'B' && enc != 'b' && enc != 'Q' &&
	    enc != 'q'))
		return 0;
	p += 3;
	for (t = p; t < end && *t != '?' && *t > ' ' && *t < 0x7f; t++)
		;
	if (t + 1 >= end || t[0] != '?' || t[1] != '=')
		return 0;
	for (; p < t; p++) {
		if (enc == 'B' || enc == 'b') {
			if (*p == '=')
				continue;
			if ((v = b64val(*p)) < 0)
				return 0;
			acc = (acc << 6 | (unsigned int)v) & 0xffff;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (oo + 1 >= sizeof(raw))
					return 0;
				raw[oo++] = (unsigned char)(acc >> bits);
			}
			continue;
		}
		if (*p == '_')
			w = ' ';
		else if (*p == '=') {
			if (t - p < 3 || (v = hexv(p[1])) < 0 ||
			    hexv(p[2]) < 0)
				return 0;
			w = v << 4 | hexv(p[2]);
			p += 2;
		} else
			w = *p;
		if (oo + 1 >= sizeof(raw))
			return 0;
		raw[oo++] = (unsigned char)w;
	}
	if (*o + 1 >= cap)
		return 0;
	rc = charset_to_utf8(cs, raw, oo, dst + *o, cap - *o - 1, &outn);
	if (rc == -2) {
		*bad = 1;
		return 0;
	}
	if (rc == -1)
		return 0;
	*o += outn;
	return (size_t)(t + 2 - s);
}

int
mailbox_decode_2047(const char *src, size_t len, char *dst, size_t cap)
{
	const unsigned char	*s = (const unsigned char *)src;
	size_t			 i = 0, o = 0, used, ws, j;
	int			 last_ew = 0, bad = 0;

	if (cap == 0)
		return -1;
	while (i < len) {
		if (s[i] == '=' && i + 1 < len && s[i + 1] == '?' &&
		    (used = encoded_word(s + i, len - i, dst, cap, &o,
		    &bad)) > 0) {
			i += used;
			last_ew = 1;
			continue;
		}
		if (bad)
			return -2;
		if (is_wsp(s[i]) && last_ew) {
			/* White space between two encoded-words is dropped
			 * (RFC 2047 6.2). */
			for (j = i; j < len && is_wsp(s[j]); j++)
				;
			ws = j - i;
			if (j + 1 < len && s[j] == '=' && s[j + 1] == '?') {
				size_t oo = o;

				if (encoded_word(s + j, len - j, dst, cap,
				    &oo, &bad) > 0) {
					i = j;
					continue;
				}
			}
			if (o + ws >= cap)
				return -1;
			memcpy(dst + o, s + i, ws);
			o += ws;
			i = j;
			last_ew = 0;
			continue;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = (char)s[i++];
		last_ew = 0;
	}
	dst[o] = '\0';
	return (int)o;
}

/* Case-insensitive compare of an ASCII name with a field name. */
static int
name_is(const unsigned char *n, size_t len, const char *want)
{
	size_t	 i;

	if (strlen(want) != len)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = n[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != (unsigned char)want[i])
			return 0;
	}
	return 1;
}

static enum mailbox_verdict
hdr_fail(struct sender_headers *out, enum mailbox_field f, const char *msg)
{
	out->verdict = MAILBOX_PERMFAIL;
	out->bad = f;
	snprintf(out->status, sizeof(out->status), "5.6.0");
	snprintf(out->reason, sizeof(out->reason), "%s", msg);
	return MAILBOX_PERMFAIL;
}

enum mailbox_verdict
mailbox_parse_headers(const char *hdr, size_t len, int utf8_ok,
    struct sender_headers *out)
{
	static const char *const lower[MAILBOX_NFIELDS] = {
		"from", "sender", "resent-from", "resent-sender"
	};
	const unsigned char	*s = (const unsigned char *)hdr, *e;
	unsigned char		 name[64];
	char			 value[MAILBOX_VALUE_MAX + 1];
	char			 why[MAILBOX_REASON_MAX];
	char			 errs[MAILBOX_NFIELDS][MAILBOX_REASON_MAX];
	int			 bad[MAILBOX_NFIELDS];
	size_t			 pos = 0, i, nl, vl, fend;
	int			 f, k, ws, toolong, named;

	memset(out, 0, sizeof(*out));
	memset(bad, 0, sizeof(bad));
	out->header_len = len;
	snprintf(out->status, sizeof(out->status), "2.0.0");
	if (hdr == NULL)
		len = 0;

	/* The header section ends after the first empty line (RFC 5322
	 * 2.1); then, within it: no NUL, CR only before LF, LF only after
	 * CR.  memchr and memmem keep this fast on long sections. */
	if (len >= 2 && s[0] == '\r' && s[1] == '\n')
		len = 2;	/* no fields at all */
	else if ((e = memmem(s, len, "\r\n\r\n", 4)) != NULL)
		len = (size_t)(e - s) + 4;
	out->header_len = len;
	if (len > 0 && memchr(s, '\0', len) != NULL)
		return hdr_fail(out, MAILBOX_FROM, "the header section "
		    "contains a NUL byte");
	for (i = 0; i < len && (e = memchr(s + i, '\r', len - i)) != NULL;
	    i = (size_t)(e - s) + 1)
		if ((size_t)(e - s) + 1 >= len || e[1] != '\n')
			return hdr_fail(out, MAILBOX_FROM, "the header section "
			    "contains a bare CR");
	for (i = 0; i < len && (e = memchr(s + i, '\n', len - i)) != NULL;
	    i = (size_t)(e - s) + 1)
		if (e == s || e[-1] != '\r')
			return hdr_fail(out, MAILBOX_FROM, "the header section "
			    "contains a bare LF");

	while (pos < len) {
		if (len - pos >= 2 && s[pos] == '\r' && s[pos + 1] == '\n')
			break;	/* the empty line */
		if (is_wsp(s[pos]))
			return hdr_fail(out, MAILBOX_FROM, "the header section "
			    "starts with a folded line");
		/*
		 * The field runs to a CRLF not followed by WSP.  A folded
		 * line of white space only (obs-FWS) is the end of the
		 * header section to readers that trim lines: refuse it.
		 */
		fend = pos;
		for (;;) {
			e = memchr(s + fend, '\n', len - fend);
			if (e == NULL) {
				fend = len;
				break;
			}
			fend = (size_t)(e - s) + 1;
			if (fend >= len || !is_wsp(s[fend]))
				break;
			for (i = fend; i < len && is_wsp(s[i]); i++)
				;
			if (i >= len || s[i] == '\r')
				return hdr_fail(out, MAILBOX_FROM, "a folded "
				    "header line holds only white space");
		}

		/* Name, unfolded: ftext, then optional WSP, then ':'. */
		nl = 0;
		ws = 0;
		toolong = 0;
		for (i = pos; i < fend; i++) {
			if (s[i] == '\r' || s[i] == '\n')
				continue;
			if (s[i] == ':')
				break;
			if (is_wsp(s[i])) {
				ws = 1;
				continue;
			}
			if (s[i] < 33 || s[i] > 126 || ws)
				return hdr_fail(out, MAILBOX_FROM, "a header "
				    "line is not a valid field (\"Name: "
				    "value\")");
			if (nl < sizeof(name))
				name[nl++] = s[i];
			else
				toolong = 1;
		}
		if (i >= fend || nl == 0)
			return hdr_fail(out, MAILBOX_FROM, "a header line is "
			    "not a valid field (\"Name: value\")");
		/*
		 * White space before the colon (obs-optional, RFC 5322
		 * 4.5.8): some readers take "From :" for From, others (DKIM
		 * verifiers among them) do not parse it at all.  Two readings:
		 * refuse (DESIGN.md invariant 2).
		 */
		if (ws)
			return hdr_fail(out, MAILBOX_FROM, "a header field "
			    "name is followed by white space before its colon "
			    "(obsolete syntax that readers take differently)");
		f = -1;
		for (k = 0; !toolong && k < MAILBOX_NFIELDS; k++)
			if (name_is(name, nl, lower[k]))
				f = k;
		named = f >= 0;
		if (named && ++out->f[f].count == 1) {
			/* Unfold the value: drop each CRLF (RFC 5322 2.2.3). */
			vl = 0;
			toolong = 0;
			for (i++; i < fend; i++) {
				if (s[i] == '\r' || s[i] == '\n')
					continue;
				if (vl >= MAILBOX_VALUE_MAX) {
					toolong = 1;
					break;
				}
				value[vl++] = (char)s[i];
			}
			if (toolong) {
				bad[f] = 1;
				snprintf(errs[f], sizeof(errs[f]), "the field "
				    "is longer than %d octets",
				    MAILBOX_VALUE_MAX);
			} else if (mailbox_parse_value(value, vl, utf8_ok,
			    &out->f[f].mb, why, sizeof(why)) != MAILBOX_OK) {
				bad[f] = 1;
				snprintf(errs[f], sizeof(errs[f]), "%s", why);
			}
		}
		pos = fend;
	}

	if (out->f[MAILBOX_FROM].count == 0)
		return hdr_fail(out, MAILBOX_FROM, "the message has no From "
		    "header");
	for (k = 0; k < MAILBOX_NFIELDS; k++) {
		if (out->f[k].count > 1) {
			snprintf(why, sizeof(why), "%s header occurs %u times; "
			    "exactly one is allowed", field_names[k],
			    out->f[k].count);
			return hdr_fail(out, k, why);
		}
		if (bad[k]) {
			out->verdict = MAILBOX_PERMFAIL;
			out->bad = k;
			snprintf(out->status, sizeof(out->status), "5.6.0");
			snprintf(out->reason, sizeof(out->reason), "%s header: "
			    "%s", field_names[k], errs[k]);
			memset(&out->f[k].mb, 0, sizeof(out->f[k].mb));
			return MAILBOX_PERMFAIL;
		}
	}
	for (k = 0; k < MAILBOX_NFIELDS; k++)
		out->f[k].present = out->f[k].count == 1;
	out->verdict = MAILBOX_OK;
	return MAILBOX_OK;
}

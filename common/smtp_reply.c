/*
 * smtp_reply: incremental parser for SMTP replies (RFC 5321 section 4.2)
 * with enhanced status codes (RFC 2034, RFC 3463), and the escaping of
 * reply text.
 *
 * Owns: the partial line and the reply being assembled, both in bounded
 * struct bufs.  Limits: SMTP_REPLY_LINE_MAX octets per line and
 * SMTP_REPLY_LINES_MAX lines per reply; anything past them, and any
 * malformed line, ends the stream with a synthetic 451 4.5.0 (a malformed
 * reply is a temporary failure: the next attempt may meet a sane server).
 */
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

#define SMTP_REPLY_TEXT_MAX	(SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX)

const char *
smtp_status_name(enum smtp_status s)
{
	switch (s) {
	case SMTP_STATUS_OK:
		return "ok";
	case SMTP_STATUS_TEMPFAIL:
		return "tempfail";
	case SMTP_STATUS_PERMFAIL:
		return "permfail";
	}
	return "?";
}

void
smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	r->nlines = 0;
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX);
}

void
smtp_reply_clear(struct smtp_reply *r)
{
	if (r == NULL)
		return;
	buf_clear(&r->text);
	r->code = 0;
	r->enhanced[0] = '\0';
	r->nlines = 0;
}

int
smtp_reply_copy(struct smtp_reply *r, const struct smtp_reply *src)
{
	smtp_reply_clear(r);
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX);
	if (buf_append(&r->text, src->text.len ? src->text.data : "",
	    src->text.len) == -1)
		return -1;
	r->code = src->code;
	memcpy(r->enhanced, src->enhanced, sizeof(r->enhanced));
	r->nlines = src->nlines;
	return 0;
}

enum smtp_status
smtp_reply_status(int code)
{
	if (code >= 200 && code < 400)
		return SMTP_STATUS_OK;
	if (code >= 500 && code < 600)
		return SMTP_STATUS_PERMFAIL;
	return SMTP_STATUS_TEMPFAIL;
}

int
smtp_reply_line(const struct smtp_reply *r, unsigned i, const char **line,
    size_t *len)
{
	const char	*p, *end, *nl;
	unsigned	 n;

	if (i >= r->nlines)
		return -1;
	p = r->text.len ? r->text.data : "";
	end = p + r->text.len;
	for (n = 0; n < i; n++) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			return -1;
		p = nl + 1;
	}
	nl = memchr(p, '\n', end - p);
	*line = p;
	*len = (nl ? nl : end) - p;
	return 0;
}

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	buf_init(&p->line, SMTP_REPLY_LINE_MAX);
	smtp_reply_init(&p->cur);
	p->failed = 0;
}

void
smtp_reply_parser_clear(struct smtp_reply_parser *p)
{
	if (p == NULL)
		return;
	buf_clear(&p->line);
	smtp_reply_clear(&p->cur);
}

/*
 * An enhanced status code at the start of s (RFC 3463 section 2:
 * class "." subject "." detail, subject and detail of 1 to 3 digits),
 * whose class matches the reply code's first digit (RFC 2034 section 4),
 * followed by SP or the end.  Returns its length or 0.
 */
static size_t
enhanced_len(const char *s, size_t len, int code)
{
	size_t	 i = 0, d;
	int	 part;

	if (len < 5 || s[0] != '0' + code / 100 || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (d = 0; i < len && d < 4 && s[i] >= '0' && s[i] <= '9';
		    i++, d++)
			;
		if (d < 1 || d > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

static enum smtp_reply_rc
parser_fail(struct smtp_reply_parser *p, struct smtp_reply *out,
    const char *why)
{
	p->failed = 1;
	buf_reset(&p->line);
	smtp_reply_clear(&p->cur);
	smtp_reply_init(&p->cur);
	smtp_reply_clear(out);
	smtp_reply_init(out);
	out->code = 451;
	memcpy(out->enhanced, "4.5.0", 6);
	out->nlines = 1;
	if (buf_appendf(&out->text, "malformed reply from server: %s",
	    why) == -1)
		out->nlines = 0;
	return SMTP_REPLY_ERROR;
}

/*
 * One complete line (without its LF) in p->line.  Returns MORE when the
 * reply continues, DONE when it ended (moved to out), ERROR.
 */
static enum smtp_reply_rc
parse_line(struct smtp_reply_parser *p, struct smtp_reply *out)
{
	const char	*s = p->line.data;
	size_t		 len = p->line.len, elen, tlen;
	const char	*text;
	int		 code, last;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (memchr(s, '\r', len) != NULL)
		return parser_fail(p, out, "CR inside a line");
	if (memchr(s, '\0', len) != NULL)
		return parser_fail(p, out, "NUL in a line");
	/* RFC 5321 section 4.2: Reply-code [ SP / "-" textstring ] CRLF. */
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9')
		return parser_fail(p, out, "no reply code");
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (len > 3 && s[3] != ' ' && s[3] != '-')
		return parser_fail(p, out, "bad separator after the code");
	last = len == 3 || s[3] == ' ';
	/* Section 4.2.1: every line of a multiline reply has the same code. */
	if (p->cur.nlines > 0 && code != p->cur.code)
		return parser_fail(p, out, "code changed inside a multiline "
		    "reply");
	if (p->cur.nlines >= SMTP_REPLY_LINES_MAX)
		return parser_fail(p, out, "too many lines");
	text = len > 4 ? s + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (p->cur.nlines == 0) {
		p->cur.code = code;
		if ((elen = enhanced_len(text, tlen, code)) > 0 &&
		    elen < SMTP_ENHANCED_MAX) {
			memcpy(p->cur.enhanced, text, elen);
			p->cur.enhanced[elen] = '\0';
		}
	}
	/* Strip the enhanced code where a line repeats it. */
	if ((elen = strlen(p->cur.enhanced)) > 0 && tlen >= elen &&
	    memcmp(text, p->cur.enhanced, elen) == 0 &&
	    (tlen == elen || text[elen] == ' ')) {
		text += elen;
		tlen -= elen;
		if (tlen > 0) {
			text++;
			tlen--;
		}
	}
	if ((p->cur.nlines > 0 && buf_append(&p->cur.text, "\n", 1) == -1) ||
	    buf_append(&p->cur.text, text, tlen) == -1)
		return parser_fail(p, out, "out of memory");
	p->cur.nlines++;
	buf_reset(&p->line);
	if (!last)
		return SMTP_REPLY_MORE;
	smtp_reply_clear(out);
	*out = p->cur;
	smtp_reply_init(&p->cur);
	return SMTP_REPLY_DONE;
}

enum smtp_reply_rc
smtp_reply_parse(struct smtp_reply_parser *p, const void *data, size_t len,
    size_t *used, struct smtp_reply *out)
{
	const char		*s = data, *nl;
	size_t			 off = 0, take;
	enum smtp_reply_rc	 rc;

	*used = 0;
	if (p->failed)
		return parser_fail(p, out, "earlier error");
	while (off < len) {
		nl = memchr(s + off, '\n', len - off);
		take = nl ? (size_t)(nl - (s + off)) : len - off;
		/* The line with its LF must fit in SMTP_REPLY_LINE_MAX. */
		if (p->line.len + take + 1 > SMTP_REPLY_LINE_MAX) {
			*used = off;
			return parser_fail(p, out, "line too long");
		}
		if (buf_append(&p->line, s + off, take) == -1) {
			*used = off;
			return parser_fail(p, out, "out of memory");
		}
		off += take;
		if (nl == NULL)
			break;
		off++;		/* the LF */
		rc = parse_line(p, out);
		if (rc != SMTP_REPLY_MORE) {
			*used = off;
			return rc;
		}
	}
	*used = off;
	return SMTP_REPLY_MORE;
}

char *
smtp_reply_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*s = src;
	size_t			 i, o = 0, need;
	char			 tmp[4];
	int			 fits;

	if (dstlen == 0)
		return dst;
	/* Does the whole of it fit?  Then no room for "..." is kept. */
	for (i = 0, need = 0; i < len; i++)
		need += s[i] == '\\' ? 2 : (s[i] >= 0x20 && s[i] < 0x7f) ?
		    1 : 4;
	fits = need + 1 <= dstlen;
	for (i = 0; i < len; i++) {
		if (s[i] == '\\') {
			tmp[0] = tmp[1] = '\\';
			need = 2;
		} else if (s[i] >= 0x20 && s[i] < 0x7f) {
			tmp[0] = (char)s[i];
			need = 1;
		} else {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[s[i] >> 4];
			tmp[3] = hex[s[i] & 0xf];
			need = 4;
		}
		/* Keep room for "..." and the NUL unless this is the end. */
		if (!fits && o + need + 3 + 1 > dstlen) {
			while (o > 0 && o + 3 + 1 > dstlen)
				o--;
			if (o + 3 + 1 <= dstlen) {
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(dst + o, tmp, need);
		o += need;
	}
	dst[o] = '\0';
	return dst;
}

char *
smtp_reply_format(const struct smtp_reply *r, char *dst, size_t dstlen)
{
	struct buf	 b;
	const char	*t = r->text.len ? r->text.data : "";
	size_t		 i;
	int		 n;

	if (dstlen == 0)
		return dst;
	n = snprintf(dst, dstlen, "%03d%s%s%s", r->code,
	    r->enhanced[0] ? " " : "", r->enhanced, r->text.len ? " " : "");
	if (n < 0 || (size_t)n >= dstlen)
		return dst;
	/* Lines joined by " / ", then escaped as a whole. */
	buf_init(&b, SMTP_REPLY_TEXT_MAX * 2);
	for (i = 0; i < r->text.len; i++) {
		if (t[i] == '\n') {
			if (buf_append(&b, " / ", 3) == -1)
				break;
		} else if (buf_append(&b, t + i, 1) == -1)
			break;
	}
	smtp_reply_escape(dst + n, dstlen - n, b.len ? b.data : "", b.len);
	buf_clear(&b);
	return dst;
}

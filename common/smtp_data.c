/*
 * smtp_data: the DATA framer (RFC 5321 4.1.1.4 and 4.5.2).
 *
 * Two layers in one pass.  The framing layer is a byte-at-a-time state
 * machine that only knows CR, LF and the dot at the start of a line; it
 * alone decides where the data ends and it never looks at errors, so an
 * error in the middle of a chunk cannot lose track of the CRLF state.  The
 * content layer (emit_*) writes the unstuffed message into the output
 * buffer and checks the limits; after the first error it writes nothing.
 *
 * Rules (see smtp_data.h): only CRLF "." CRLF ends the data (or "." CRLF
 * as the very first line).  A "." at the start of a line that follows a
 * real CRLF (or the start) is removed unless it begins the terminator
 * (RFC 5321 4.5.2), whatever follows it.  A bare LF, or a CR not followed
 * by LF, is an error, or with normalize becomes CRLF in the output; the
 * next line then starts "soft": a "." there is ordinary content, neither
 * removed nor a terminator (SMTP smuggling, CVE-2023-51764).
 *
 * Owns nothing; the caller owns the output buffer.  The fast path scans
 * runs of ordinary bytes a machine word at a time for CR, LF and NUL.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "smtp_data.h"

enum {
	F_BOL = 0,	/* after a real CRLF, or at the start */
	F_DOT,		/* F_BOL then "." */
	F_DOT_CR,	/* F_BOL then ".", CR */
	F_TEXT,		/* inside a line, or after a bare CR/LF */
	F_CR,		/* CR seen inside a line */
	F_DONE,
};

/* name_len value once the field name of this line is decided. */
#define NAME_DONE	((size_t)-1)

static void
set_error(struct smtp_data *d, enum smtp_data_error e)
{
	if (d->error == SMTP_DATA_OK)
		d->error = e;
}

void
smtp_data_init(struct smtp_data *d, const struct smtp_data_limits *lim,
    struct buf *out)
{
	memset(d, 0, sizeof(*d));
	d->lim = *lim;
	d->out = out;
	d->state = F_BOL;
	d->in_header = 1;
	d->name_len = 0;
	d->error = SMTP_DATA_OK;
}

/* Append output bytes, checking the message size. */
static int
out_put(struct smtp_data *d, const char *p, size_t n)
{
	struct buf	*b = d->out;

	if (b->len + n > d->lim.message_size || b->len + n < b->len) {
		set_error(d, SMTP_DATA_ERR_TOO_BIG);
		return -1;
	}
	if (b->len + n < b->cap) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	if (buf_append(b, p, n) == -1) {
		set_error(d, SMTP_DATA_ERR_NOMEM);
		return -1;
	}
	return 0;
}

/* Header accounting for n bytes of the header section. */
static int
header_add(struct smtp_data *d, size_t n)
{
	if (!d->in_header)
		return 0;
	d->header_len += n;
	if (d->header_len > d->lim.header_size) {
		set_error(d, SMTP_DATA_ERR_HEADER_TOO_BIG);
		return -1;
	}
	return 0;
}

static int
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/*
 * Track the field name of a header line: the text before ':' at the start
 * of a line that is not a continuation (RFC 5322 2.2, 3.6.7); count
 * Received fields (RFC 5321 6.3).  Trailing blanks before the colon are
 * tolerated (RFC 5322 4.5 obs-optional).
 */
static int
header_name(struct smtp_data *d, unsigned char c)
{
	static const char	 rcv[] = "received";
	size_t			 n, i;

	if (!d->in_header || d->name_len == NAME_DONE)
		return 0;
	if (d->line_len == 0 && (c == ' ' || c == '\t')) {
		d->name_len = NAME_DONE;
		return 0;
	}
	if (c != ':') {
		if (d->name_len < sizeof(d->name))
			d->name[d->name_len++] = (char)c;
		else
			d->name_len = NAME_DONE;
		return 0;
	}
	n = d->name_len;
	d->name_len = NAME_DONE;
	while (n > 0 && (d->name[n - 1] == ' ' || d->name[n - 1] == '\t'))
		n--;
	if (n != sizeof(rcv) - 1)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)d->name[i]) != rcv[i])
			return 0;
	d->received++;
	if (d->received > d->lim.max_received) {
		set_error(d, SMTP_DATA_ERR_LOOP);
		return -1;
	}
	return 0;
}

/* One content byte of the current line. */
static void
emit_byte(struct smtp_data *d, unsigned char c)
{
	char	 ch = (char)c;

	if (c >= 0x80)
		d->eightbit = 1;
	if (d->error != SMTP_DATA_OK)
		return;
	if (c == '\0') {
		set_error(d, SMTP_DATA_ERR_NUL);
		return;
	}
	/* RFC 5322 2.1.1: line length without the CRLF. */
	if (d->line_len + 1 > d->lim.line_length) {
		set_error(d, SMTP_DATA_ERR_LINE_TOO_LONG);
		return;
	}
	if (header_name(d, c) == -1)
		return;
	d->line_len++;
	if (header_add(d, 1) == -1)
		return;
	(void)out_put(d, &ch, 1);
}

/* The end of a line: a real CRLF, or a normalized bare CR or LF. */
static void
emit_eol(struct smtp_data *d)
{
	if (d->error == SMTP_DATA_OK) {
		if (d->in_header && d->line_len == 0)
			d->in_header = 0;	/* RFC 5322 2.1: empty line */
		else if (header_add(d, 2) == -1)
			goto out;
		(void)out_put(d, "\r\n", 2);
	}
out:
	d->line_len = 0;
	d->name_len = 0;
}

/* A bare CR or LF: RFC 5321 2.3.8 forbids it. */
static void
bare_nl(struct smtp_data *d)
{
	if (d->lim.normalize)
		emit_eol(d);
	else {
		set_error(d, SMTP_DATA_ERR_BARE_NL);
		d->line_len = 0;
		d->name_len = 0;
	}
}

/*
 * Length of the run of bytes at p other than CR, LF and NUL, at most n;
 * sets *hi when the run holds a byte >= 0x80.  Eight bytes at a time.
 */
static size_t
scan_plain(const unsigned char *p, size_t n, int *hi)
{
	const uint64_t	 ones = 0x0101010101010101ULL;
	const uint64_t	 highs = 0x8080808080808080ULL;
	const uint64_t	 crs = ones * '\r', lfs = ones * '\n';
	uint64_t	 w, a, b, acc = 0;
	size_t		 i = 0;

	while (n - i >= 8) {
		memcpy(&w, p + i, 8);
		a = w ^ crs;
		b = w ^ lfs;
		/* Exact "has a zero byte" tests (no false negatives). */
		if (((w - ones) & ~w & highs) || ((a - ones) & ~a & highs) ||
		    ((b - ones) & ~b & highs))
			break;
		acc |= w;
		i += 8;
	}
	if (acc & highs)
		*hi = 1;
	for (; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			break;
		if (p[i] >= 0x80)
			*hi = 1;
	}
	return i;
}

/*
 * The fast path: a run of ordinary bytes inside a line (F_TEXT).  Returns
 * the number of bytes taken, 0 when the byte-at-a-time path must decide
 * (a limit would be reached, or the field name is still being read).
 */
static size_t
fast_run(struct smtp_data *d, const unsigned char *p, size_t n)
{
	size_t	 r, room;
	int	 hi = 0;

	if (d->error == SMTP_DATA_OK && d->in_header &&
	    d->name_len != NAME_DONE)
		return 0;
	r = scan_plain(p, n, &hi);
	if (r == 0)
		return 0;
	if (hi)
		d->eightbit = 1;
	if (d->error != SMTP_DATA_OK)
		return r;
	/*
	 * Take only what fits under every limit; the byte that would break
	 * one goes through emit_byte(), which reports it.  While no error is
	 * set, line_len, out->len and header_len are within their limits.
	 */
	room = d->lim.line_length - d->line_len;
	if (d->lim.message_size - d->out->len < room)
		room = d->lim.message_size - d->out->len;
	if (d->in_header && d->lim.header_size - d->header_len < room)
		room = d->lim.header_size - d->header_len;
	if (r > room)
		r = room;
	if (r == 0)
		return 0;
	if (out_put(d, (const char *)p, r) == -1)
		return r;
	d->line_len += r;
	if (d->in_header)
		d->header_len += r;
	return r;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *buf, size_t n, int *done)
{
	const unsigned char	*p = (const unsigned char *)buf;
	size_t			 i = 0, r;
	unsigned char		 c;

	if (d->state == F_DONE) {
		*done = 1;
		return 0;
	}
	*done = 0;
	while (i < n) {
		if (d->state == F_TEXT && (r = fast_run(d, p + i, n - i)) > 0) {
			i += r;
			continue;
		}
		c = p[i++];
		switch (d->state) {
		case F_BOL:
			if (c == '.')
				d->state = F_DOT;
			else if (c == '\r')
				d->state = F_CR;
			else if (c == '\n') {
				bare_nl(d);
				d->state = F_TEXT;
			} else {
				emit_byte(d, c);
				d->state = F_TEXT;
			}
			break;
		case F_DOT:
			/* RFC 5321 4.5.2: the leading dot is removed. */
			if (c == '\r')
				d->state = F_DOT_CR;
			else if (c == '\n') {
				bare_nl(d);
				d->state = F_TEXT;
			} else {
				emit_byte(d, c);
				d->state = F_TEXT;
			}
			break;
		case F_DOT_CR:
			if (c == '\n') {
				d->state = F_DONE;
				d->total_in += i;
				*done = 1;
				return i;
			}
			bare_nl(d);
			d->state = F_TEXT;
			i--;	/* this byte starts a soft line */
			break;
		case F_TEXT:
			if (c == '\r')
				d->state = F_CR;
			else if (c == '\n')
				bare_nl(d);
			else
				emit_byte(d, c);
			break;
		case F_CR:
			if (c == '\n') {
				emit_eol(d);
				d->state = F_BOL;
			} else {
				bare_nl(d);
				d->state = F_TEXT;
				i--;
			}
			break;
		}
	}
	d->total_in += i;
	return i;
}

const char *
smtp_data_error_name(enum smtp_data_error e)
{
	switch (e) {
	case SMTP_DATA_OK:
		return "ok";
	case SMTP_DATA_ERR_BARE_NL:
		return "bare-newline";
	case SMTP_DATA_ERR_NUL:
		return "nul";
	case SMTP_DATA_ERR_LINE_TOO_LONG:
		return "line-too-long";
	case SMTP_DATA_ERR_TOO_BIG:
		return "too-big";
	case SMTP_DATA_ERR_HEADER_TOO_BIG:
		return "header-too-big";
	case SMTP_DATA_ERR_LOOP:
		return "loop";
	case SMTP_DATA_ERR_NOMEM:
		return "nomem";
	}
	return "unknown";
}

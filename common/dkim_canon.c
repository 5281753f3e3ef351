/*
 * dkim_canon: DKIM canonicalization (RFC 6376 section 3.4) of header fields
 * and, as a stream, of the body.  See dkim_canon.h for the contract.
 *
 * Owns nothing: header output goes to the caller's buffer, body output to
 * the caller's digest context.  The body canonicalizer keeps "verbatim
 * spans" of input that need no change and hands them to the digest
 * directly; only where bytes are dropped or replaced (white space runs,
 * held empty lines, held CR) is the span cut.  The relaxed fast path skips
 * sixteen bytes at a time with SSE2 where there is nothing to change.
 *
 * Limits: none beyond the optional copy buffer's maximum.
 */
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dkim_canon.h"

#define DKIM_STAGE_DIRECT	1024	/* spans this long skip the stage */

static const char crlfs[] =
    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
#define CRLFS_N		((sizeof(crlfs) - 1) / 2)

/*
 * Byte classes for the relaxed body: 0 content, 1 SP, 2 a control
 * character (HTAB, CR, LF; the others are content but take the slow path,
 * as in the SSE2 scan).
 */
static const unsigned char rclass[256] = {
	['\t'] = 2, ['\r'] = 2, ['\n'] = 2, [' '] = 1,
	[0x00] = 2, [0x01] = 2, [0x02] = 2, [0x03] = 2, [0x04] = 2, [0x05] = 2,
	[0x06] = 2, [0x07] = 2, [0x08] = 2, [0x0b] = 2, [0x0c] = 2, [0x0e] = 2,
	[0x0f] = 2, [0x10] = 2, [0x11] = 2, [0x12] = 2, [0x13] = 2, [0x14] = 2,
	[0x15] = 2, [0x16] = 2, [0x17] = 2, [0x18] = 2, [0x19] = 2, [0x1a] = 2,
	[0x1b] = 2, [0x1c] = 2, [0x1d] = 2, [0x1e] = 2, [0x1f] = 2,
};

const char *
dkim_canon_name(enum dkim_canon c)
{
	return c == DKIM_CANON_SIMPLE ? "simple" : "relaxed";
}

static int
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

int
dkim_canon_field_name(const char *field, size_t len, const char **name,
    size_t *namelen)
{
	const char	*colon;
	size_t		 n;

	if ((colon = memchr(field, ':', len)) == NULL)
		return -1;
	n = colon - field;
	while (n > 0 && is_wsp((unsigned char)field[n - 1]))
		n--;
	if (n == 0)
		return -1;
	*name = field;
	*namelen = n;
	return 0;
}

/*
 * RFC 6376 3.4.2: lower-case the name, unfold, reduce each run of WSP to
 * one SP, drop WSP at the end of the value and around the colon.
 */
static int
canon_header_relaxed(const char *field, size_t len, struct buf *out)
{
	const char	*name, *v, *end;
	size_t		 namelen, i, save = out->len;
	int		 crlf = 0, pend = 0;
	char		 c;

	if (dkim_canon_field_name(field, len, &name, &namelen) == -1)
		return -1;
	if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n') {
		crlf = 1;
		len -= 2;
	}
	if (buf_reserve(out, len + 2) == -1)
		return -1;
	for (i = 0; i < namelen; i++) {
		c = field[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		out->data[out->len++] = c;
	}
	out->data[out->len++] = ':';
	v = (const char *)memchr(field, ':', len) + 1;
	end = field + len;
	/* Leading WSP and folding before the first value byte go. */
	for (; v < end; v++) {
		if (*v == '\r' && v + 1 < end && v[1] == '\n')
			v++;
		else if (!is_wsp((unsigned char)*v))
			break;
	}
	for (; v < end; v++) {
		if (*v == '\r' && v + 1 < end && v[1] == '\n') {
			v++;	/* unfold: the CRLF goes, the WSP stays */
			continue;
		}
		if (is_wsp((unsigned char)*v)) {
			pend = 1;
			continue;
		}
		if (pend) {
			out->data[out->len++] = ' ';
			pend = 0;
		}
		out->data[out->len++] = *v;
	}
	if (crlf) {
		out->data[out->len++] = '\r';
		out->data[out->len++] = '\n';
	}
	out->data[out->len] = '\0';
	if (out->len > save + len + 2) {
		/* Cannot happen: the output never grows beyond the input. */
		out->len = save;
		return -1;
	}
	return 0;
}

int
dkim_canon_header(enum dkim_canon mode, const char *field, size_t len,
    struct buf *out)
{
	const char	*name;
	size_t		 namelen;

	if (mode == DKIM_CANON_RELAXED)
		return canon_header_relaxed(field, len, out);
	/* RFC 6376 3.4.1: simple changes nothing. */
	if (dkim_canon_field_name(field, len, &name, &namelen) == -1)
		return -1;
	return buf_append(out, field, len);
}

/* Body: output side. */

static void
stage_flush(struct dkim_body *b)
{
	if (b->stage_len == 0)
		return;
	if (EVP_DigestUpdate(b->md, b->stage, b->stage_len) != 1)
		b->error = 1;
	b->stage_len = 0;
}

static void
emit(struct dkim_body *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	b->out_len += n;
	if (b->copy != NULL && buf_append(b->copy, p, n) == -1)
		b->error = 1;
	if (n >= DKIM_STAGE_DIRECT) {
		stage_flush(b);
		if (EVP_DigestUpdate(b->md, p, n) != 1)
			b->error = 1;
		return;
	}
	if (n > sizeof(b->stage) - b->stage_len)
		stage_flush(b);
	memcpy(b->stage + b->stage_len, p, n);
	b->stage_len += n;
}

/* Emit the held empty lines (they were followed by content after all). */
static void
emit_blanks(struct dkim_body *b)
{
	size_t	 k;

	while (b->nblank > 0) {
		k = b->nblank < CRLFS_N ? b->nblank : CRLFS_N;
		emit(b, crlfs, 2 * k);
		b->nblank -= k;
	}
}

/* Content follows: what was held becomes real. */
static void
materialize(struct dkim_body *b)
{
	emit_blanks(b);
	if (b->wsp) {
		/* RFC 6376 3.4.4: a run of WSP is one SP. */
		emit(b, " ", 1);
		b->wsp = 0;
	}
	b->nonempty = 1;
}

void
dkim_body_init(struct dkim_body *b, enum dkim_canon mode, EVP_MD_CTX *md,
    struct buf *copy)
{
	b->mode = mode;
	b->md = md;
	b->copy = copy;
	b->nblank = 0;
	b->out_len = 0;
	b->cr = 0;
	b->wsp = 0;
	b->nonempty = 0;
	b->error = 0;
	b->done = 0;
	b->stage_len = 0;
}

/*
 * Simple (RFC 6376 3.4.3): bytes pass unchanged except that empty lines are
 * held until content follows them, so those at the end of the body vanish.
 */
static void
simple_update(struct dkim_body *b, const unsigned char *p,
    const unsigned char *end)
{
	const unsigned char	*vs = p, *q;

	while (p < end) {
		if (b->cr) {
			b->cr = 0;
			if (*p == '\n') {
				if (b->nonempty) {
					emit(b, "\r\n", 2);
					b->nonempty = 0;
				} else
					b->nblank++;
				vs = ++p;
				continue;
			}
			materialize(b);	/* a bare CR is content */
			emit(b, "\r", 1);
			vs = p;
		}
		if (b->nblank > 0) {
			if (*p == '\r') {
				b->cr = 1;
				vs = ++p;
				continue;
			}
			materialize(b);
			vs = p;
		}
		/* Nothing held: the span from vs runs on. */
		if ((q = memchr(p, '\r', end - p)) == NULL) {
			b->nonempty = 1;
			p = end;
			break;
		}
		if (q > p)
			b->nonempty = 1;
		p = q;
		if (p + 1 == end) {
			emit(b, vs, p - vs);
			b->cr = 1;
			vs = ++p;
			break;
		}
		if (p[1] != '\n') {
			b->nonempty = 1;	/* bare CR */
			p++;
			continue;
		}
		if (b->nonempty) {
			b->nonempty = 0;
			p += 2;
			continue;
		}
		emit(b, vs, p - vs);
		b->nblank++;
		p += 2;
		vs = p;
	}
	emit(b, vs, p - vs);
}

/*
 * Relaxed fast path: starting with nothing held, skip bytes that pass
 * unchanged: content, a single SP followed by content, and the CRLF of a
 * line that has content.  Stops at the first byte needing a decision.
 */
static const unsigned char *
relaxed_scan(struct dkim_body *b, const unsigned char *p,
    const unsigned char *end)
{
	int	 ne = b->nonempty;

	for (;;) {
#ifdef __SSE2__
		/*
		 * A byte needs a decision if it is a control character
		 * (HTAB, CR, LF and the rare others, taken as content by
		 * the slow path) or a SP followed by a byte <= SP.  Bytes
		 * >= 0x80 pass.
		 */
		const __m128i	 sp = _mm_set1_epi8(' ');

		while (end - p >= 17) {
			__m128i	 v, w, lev, lew, spv, m;
			unsigned mask;

			v = _mm_loadu_si128((const __m128i *)p);
			w = _mm_loadu_si128((const __m128i *)(p + 1));
			lev = _mm_cmpeq_epi8(_mm_min_epu8(v, sp), v);
			lew = _mm_cmpeq_epi8(_mm_min_epu8(w, sp), w);
			spv = _mm_cmpeq_epi8(v, sp);
			/* lev and not (spv and not lew) */
			m = _mm_andnot_si128(_mm_andnot_si128(lew, spv), lev);
			mask = (unsigned)_mm_movemask_epi8(m);
			if (mask != 0) {
				unsigned k = (unsigned)__builtin_ctz(mask);

				if (k > 0)
					ne = 1;
				p += k;
				goto found;
			}
			ne = 1;
			p += 16;
		}
#endif
		while (p < end) {
			unsigned char c = *p;

			if (rclass[c] == 0 || (rclass[c] == 1 &&
			    p + 1 < end && rclass[p[1]] == 0)) {
				ne = 1;
				p++;
				continue;
			}
			break;
		}
		if (p == end)
			break;
#ifdef __SSE2__
found:
#endif
		if (ne && *p == '\r' && p + 1 < end && p[1] == '\n') {
			ne = 0;
			p += 2;
			continue;
		}
		break;
	}
	b->nonempty = ne;
	return p;
}

/*
 * Relaxed (RFC 6376 3.4.4): WSP runs become one SP, WSP at the end of a
 * line goes, empty lines are held until content follows them.
 */
static void
relaxed_update(struct dkim_body *b, const unsigned char *p,
    const unsigned char *end)
{
	const unsigned char	*vs = p;
	unsigned char		 c;

	while (p < end) {
		if (!b->cr && !b->wsp && b->nblank == 0) {
			p = relaxed_scan(b, p, end);
			if (p == end)
				break;
		}
		c = *p;
		if (b->cr) {
			b->cr = 0;
			if (c == '\n') {
				b->wsp = 0;	/* WSP at the end of a line */
				if (b->nonempty) {
					emit(b, "\r\n", 2);
					b->nonempty = 0;
				} else
					b->nblank++;
				vs = ++p;
				continue;
			}
			materialize(b);	/* a bare CR is content */
			emit(b, "\r", 1);
			vs = p;
		}
		switch (c) {
		case ' ':
		case '\t':
			emit(b, vs, p - vs);
			b->wsp = 1;
			vs = ++p;
			break;
		case '\r':
			emit(b, vs, p - vs);
			b->cr = 1;
			vs = ++p;
			break;
		default:
			/* Content, a bare LF included. */
			if (b->wsp || b->nblank > 0) {
				emit(b, vs, p - vs);
				materialize(b);
				vs = p;
			}
			b->nonempty = 1;
			p++;
			break;
		}
	}
	emit(b, vs, p - vs);
}

int
dkim_body_update(struct dkim_body *b, const void *data, size_t n)
{
	const unsigned char	*p = data;

	if (b->done)
		return -1;
	if (n > 0) {
		if (b->mode == DKIM_CANON_SIMPLE)
			simple_update(b, p, p + n);
		else
			relaxed_update(b, p, p + n);
	}
	return b->error ? -1 : 0;
}

int
dkim_body_final(struct dkim_body *b)
{
	if (b->done)
		return -1;
	b->done = 1;
	if (b->cr) {
		/* A CR at the very end is a bare CR: content. */
		b->cr = 0;
		materialize(b);
		emit(b, "\r", 1);
	}
	b->wsp = 0;		/* relaxed: trailing WSP of the last line */
	b->nblank = 0;		/* empty lines at the end of the body */
	if (b->nonempty) {
		/* RFC 6376 3.4.3/3.4.4: an unterminated last line gets CRLF. */
		emit(b, "\r\n", 2);
		b->nonempty = 0;
	}
	if (b->mode == DKIM_CANON_SIMPLE && b->out_len == 0)
		emit(b, "\r\n", 2);	/* 3.4.3: an empty body is CRLF */
	stage_flush(b);
	return b->error ? -1 : 0;
}

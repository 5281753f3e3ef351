/*
 * fuzz_smtp_data: libFuzzer target for the DATA framer.
 *
 * Input: 4 bytes of settings (mode and small limits, so that every limit is
 * reached often), then the data stream.  The stream is framed in one chunk,
 * in chunks of sizes drawn from a generator seeded by the input, and one
 * byte at a time; all three must agree exactly (consumed, done, error,
 * received, output).  Invariants checked:
 *   - done exactly after the first CRLF "." CRLF of the raw input (or a
 *     leading "." CRLF), never earlier and never missed: no smuggling;
 *   - output never exceeds message_size, no output line exceeds
 *     line_length, the output holds no NUL and no bare CR or LF;
 *   - a clean message, dot-stuffed again and framed again, comes back
 *     byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct res {
	size_t			 consumed;
	int			 done;
	enum smtp_data_error	 error;
	unsigned		 received;
	int			 eightbit;
	struct buf		 out;
};

static uint32_t
next(uint32_t *s)
{
	/* xorshift32 */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* mode 0: whole, 1: random chunks, 2: one byte at a time. */
static void
frame(const char *p, size_t n, const struct smtp_data_limits *lim,
    int mode, uint32_t seed, struct res *r)
{
	struct smtp_data	 d;
	size_t			 off = 0, len, c;
	int			 done = 0;

	buf_init(&r->out, lim->message_size + 64);
	smtp_data_init(&d, lim, &r->out);
	while (off < n && !done) {
		if (mode == 0)
			len = n - off;
		else if (mode == 2)
			len = 1;
		else
			len = 1 + next(&seed) % ((next(&seed) & 1) ? 7 : 300);
		if (len > n - off)
			len = n - off;
		c = smtp_data_feed(&d, p + off, len, &done);
		if (c > len || (!done && c != len))
			abort();
		off += c;
	}
	if (d.total_in != off)
		abort();
	r->consumed = off;
	r->done = done;
	r->error = d.error;
	r->received = d.received;
	r->eightbit = d.eightbit;
}

static void
same(const struct res *a, const struct res *b)
{
	if (a->consumed != b->consumed || a->done != b->done ||
	    a->error != b->error || a->received != b->received ||
	    a->eightbit != b->eightbit || a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.data, b->out.data, a->out.len)))
		abort();
}

/* Where the data must end: after the first raw CRLF "." CRLF. */
static size_t
true_end(const char *p, size_t n)
{
	size_t	 i;

	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= n; i++)
		if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

static void
check_output(const struct res *r, const struct smtp_data_limits *lim)
{
	const char	*o = r->out.data;
	size_t		 i, line = 0;

	if (r->out.len > lim->message_size)
		abort();
	for (i = 0; i < r->out.len; i++) {
		if (o[i] == '\0')
			abort();
		if (o[i] == '\n')
			abort();	/* LF only as part of CRLF, below */
		if (o[i] == '\r') {
			/* CRLF is appended whole, even when cut by an error. */
			if (i + 1 >= r->out.len || o[i + 1] != '\n')
				abort();
			i++;
			line = 0;
			continue;
		}
		if (++line > lim->line_length)
			abort();
	}
	if (r->done && r->error == SMTP_DATA_OK && r->out.len > 0 &&
	    (r->out.len < 2 || o[r->out.len - 2] != '\r' ||
	    o[r->out.len - 1] != '\n'))
		abort();
}

/* Stuff a clean message again and frame it: it must come back. */
static void
roundtrip(const struct res *r)
{
	struct smtp_data_limits	 big = { r->out.len + 16, SIZE_MAX / 2,
	    SIZE_MAX / 2, UINT32_MAX, 0 };
	struct buf		 s;
	struct res		 r2;
	size_t			 i;
	int			 bol = 1;

	buf_init(&s, 2 * r->out.len + 16);
	for (i = 0; i < r->out.len; i++) {
		if (bol && r->out.data[i] == '.' && buf_append(&s, ".", 1))
			abort();
		if (buf_append(&s, r->out.data + i, 1))
			abort();
		bol = r->out.data[i] == '\n';
	}
	if (buf_append(&s, ".\r\n", 3))
		abort();
	frame(s.data, s.len, &big, 0, 1, &r2);
	if (!r2.done || r2.consumed != s.len || r2.error != SMTP_DATA_OK ||
	    r2.out.len != r->out.len ||
	    (r->out.len && memcmp(r2.out.data, r->out.data, r->out.len)))
		abort();
	buf_clear(&r2.out);
	buf_clear(&s);
}


/*
 * A reference model written line by line rather than as a state machine:
 * cut the raw input at the true end, split it into lines at CRLF (real)
 * and lone CR or LF (bare), drop a dot that starts a line after a real
 * CRLF, then apply the limits in the documented order.  The framer must
 * agree with it exactly.
 */
struct model {
	struct buf		 out;
	enum smtp_data_error	 error;
	size_t			 line_len, header_len;
	int			 in_header, name_done;
	char			 name[64];
	size_t			 name_len;
	unsigned		 received;
	const struct smtp_data_limits *lim;
};

static void
m_err(struct model *m, enum smtp_data_error e)
{
	if (m->error == SMTP_DATA_OK)
		m->error = e;
}

static void
m_byte(struct model *m, unsigned char c)
{
	size_t	 n;

	if (m->error)
		return;
	if (c == 0) {
		m_err(m, SMTP_DATA_ERR_NUL);
		return;
	}
	if (m->line_len + 1 > m->lim->line_length) {
		m_err(m, SMTP_DATA_ERR_LINE_TOO_LONG);
		return;
	}
	if (m->in_header && !m->name_done) {
		if (m->line_len == 0 && (c == ' ' || c == '\t'))
			m->name_done = 1;
		else if (c == ':') {
			m->name_done = 1;
			n = m->name_len;
			while (n > 0 && (m->name[n - 1] == ' ' ||
			    m->name[n - 1] == '\t'))
				n--;
			if (n <= 16 && n == 8 &&
			    strncasecmp(m->name, "received", 8) == 0 &&
			    ++m->received > m->lim->max_received) {
				m_err(m, SMTP_DATA_ERR_LOOP);
				return;
			}
		} else if (m->name_len < 16)
			m->name[m->name_len++] = (char)c;
		else
			m->name_done = 1;
	}
	m->line_len++;
	if (m->in_header && ++m->header_len > m->lim->header_size) {
		m_err(m, SMTP_DATA_ERR_HEADER_TOO_BIG);
		return;
	}
	if (m->out.len + 1 > m->lim->message_size) {
		m_err(m, SMTP_DATA_ERR_TOO_BIG);
		return;
	}
	if (buf_append(&m->out, &c, 1) == -1)
		abort();
}

static void
m_eol(struct model *m)
{
	if (m->error == SMTP_DATA_OK) {
		if (m->in_header && m->line_len == 0)
			m->in_header = 0;
		else if (m->in_header &&
		    (m->header_len += 2) > m->lim->header_size)
			m_err(m, SMTP_DATA_ERR_HEADER_TOO_BIG);
		if (m->error == SMTP_DATA_OK) {
			if (m->out.len + 2 > m->lim->message_size)
				m_err(m, SMTP_DATA_ERR_TOO_BIG);
			else if (buf_append(&m->out, "\r\n", 2) == -1)
				abort();
		}
	}
	m->line_len = 0;
	m->name_len = 0;
	m->name_done = 0;
}

static void
model_run(const char *p, size_t n, const struct smtp_data_limits *lim,
    size_t end, struct model *m)
{
	size_t	 len, i;
	int	 real_bol = 1;

	memset(m, 0, sizeof(*m));
	m->lim = lim;
	m->in_header = 1;
	buf_init(&m->out, lim->message_size + 64);
	/* The message proper: before the final "." CRLF. */
	len = end ? end - 3 : n;
	/* Without an end, a CR at the very end is still undecided. */
	if (!end && len > 0 && p[len - 1] == '\r')
		len--;
	i = 0;
	while (i < len) {
		if (real_bol && p[i] == '.') {
			i++;
			real_bol = 0;
			continue;
		}
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			m_eol(m);
			i += 2;
			real_bol = 1;
		} else if (p[i] == '\r' || p[i] == '\n') {
			/* A CR before the cut CRLF "." CRLF is bare too. */
			if (lim->normalize)
				m_eol(m);
			else {
				m_err(m, SMTP_DATA_ERR_BARE_NL);
				m->line_len = 0;
				m->name_len = 0;
				m->name_done = 0;
			}
			i++;
			real_bol = 0;
		} else {
			m_byte(m, (unsigned char)p[i]);
			i++;
			real_bol = 0;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data_limits	 lim;
	struct res		 a, b, c;
	struct model		 m;
	int			 hi = 0;
	const char		*p;
	size_t			 n, end, i;
	uint32_t		 seed = 2166136261u;

	if (size < 4)
		return 0;
	lim.normalize = data[0] & 1;
	lim.max_received = (data[0] >> 1) & 7;
	lim.line_length = (data[0] & 0x10) ? 998 : 1 + data[1] % 64;
	lim.message_size = (data[0] & 0x20) ? 1 << 20 : (size_t)data[2] * 4;
	lim.header_size = (data[0] & 0x40) ? 1 << 20 : (size_t)data[3] * 2;
	p = (const char *)data + 4;
	n = size - 4;
	for (i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	if (seed == 0)
		seed = 1;

	frame(p, n, &lim, 0, seed, &a);
	frame(p, n, &lim, 1, seed, &b);
	frame(p, n, &lim, 2, seed, &c);
	same(&a, &b);
	same(&a, &c);

	end = true_end(p, n);
	if (a.done != (end != 0) || (a.done && a.consumed != end) ||
	    (!a.done && a.consumed != n))
		abort();
	check_output(&a, &lim);
	model_run(p, n, &lim, end, &m);
	for (i = 0; i < a.consumed; i++)
		if ((unsigned char)p[i] >= 0x80)
			hi = 1;
	if (m.error != a.error || m.received != a.received ||
	    hi != a.eightbit || m.out.len != a.out.len ||
	    (m.out.len && memcmp(m.out.data, a.out.data, m.out.len)))
		abort();
	buf_clear(&m.out);
	if (a.received > lim.max_received + 1)
		abort();
	if (a.done && a.error == SMTP_DATA_OK)
		roundtrip(&a);
	buf_clear(&a.out);
	buf_clear(&b.out);
	buf_clear(&c.out);
	return 0;
}

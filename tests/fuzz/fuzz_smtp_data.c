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
	const char	*e;

	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return 3;
	e = memmem(p, n, "\r\n.\r\n", 5);
	return e == NULL ? 0 : (size_t)(e - p) + 5;
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data_limits	 lim;
	struct res		 a, b, c;
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
	if (a.received > lim.max_received + 1)
		abort();
	if (a.done && a.error == SMTP_DATA_OK)
		roundtrip(&a);
	buf_clear(&a.out);
	buf_clear(&b.out);
	buf_clear(&c.out);
	return 0;
}

/*
 * test_smtp_data: the DATA framer.  Table-driven: every case runs in both
 * modes where it says so, fed whole, in every chunk size 1..N and split in
 * two at every position; all feeds must agree exactly.  Ends with a
 * throughput figure printed as a TAP comment.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "smtp_data.h"
#include "tap.h"

#define S(x)	x, sizeof(x) - 1

struct result {
	size_t			 consumed;
	int			 done;
	enum smtp_data_error	 error;
	struct buf		 out;
	unsigned		 received;
	int			 eightbit;
};

static const struct smtp_data_limits deflim = {
	.message_size = 1024 * 1024,
	.line_length = 998,
	.header_size = 64 * 1024,
	.max_received = 50,
	.normalize = 0,
};

/*
 * Feed in, in chunks of chunk bytes (0: all at once), or in two parts
 * split at split when split != 0.  Stops at done like a session would.
 */
static void
run(const char *in, size_t n, const struct smtp_data_limits *lim,
    size_t chunk, size_t split, struct result *r)
{
	struct smtp_data	 d;
	size_t			 off = 0, len, c;
	int			 done = 0;

	buf_init(&r->out, lim->message_size + 16);
	smtp_data_init(&d, lim, &r->out);
	while (off < n && !done) {
		if (split)
			len = off < split ? split - off : n - off;
		else if (chunk)
			len = n - off < chunk ? n - off : chunk;
		else
			len = n - off;
		c = smtp_data_feed(&d, in + off, len, &done);
		if (c > len)
			abort();
		/* A feed that does not finish must take everything. */
		if (!done && c != len)
			abort();
		off += c;
	}
	r->consumed = off;
	r->done = done;
	r->error = d.error;
	r->received = d.received;
	r->eightbit = d.eightbit;
	if (d.total_in != off)
		abort();
}

static int
same(const struct result *a, const struct result *b)
{
	return a->consumed == b->consumed && a->done == b->done &&
	    a->error == b->error && a->received == b->received &&
	    a->eightbit == b->eightbit && a->out.len == b->out.len &&
	    (a->out.len == 0 || memcmp(a->out.data, b->out.data,
	    a->out.len) == 0);
}

/* Run whole, then every chunk size and every two-part split; compare. */
static int
run_all(const char *in, size_t n, const struct smtp_data_limits *lim,
    struct result *whole)
{
	struct result	 r;
	size_t		 k;
	int		 good = 1;

	run(in, n, lim, 0, 0, whole);
	for (k = 1; k <= n && good; k++) {
		run(in, n, lim, k, 0, &r);
		if (!same(whole, &r)) {
			printf("# chunk size %zu differs\n", k);
			good = 0;
		}
		buf_clear(&r.out);
	}
	for (k = 1; k < n && good; k++) {
		run(in, n, lim, 0, k, &r);
		if (!same(whole, &r)) {
			printf("# split at %zu differs\n", k);
			good = 0;
		}
		buf_clear(&r.out);
	}
	return good;
}

#define M_REJECT	1
#define M_NORMALIZE	2
#define M_BOTH		3

struct dcase {
	const char		*name;
	const char		*in;
	size_t			 inlen;
	int			 modes;
	int			 done;
	size_t			 consumed;	/* ALL: all of in */
	enum smtp_data_error	 err;
	const char		*out;		/* NULL: not checked */
	size_t			 outlen;
};

#define ALL	((size_t)-1)
#define E_OK	SMTP_DATA_OK
#define E_NL	SMTP_DATA_ERR_BARE_NL

static const struct dcase cases[] = {
	/* Basic framing and dot-unstuffing (RFC 5321 4.5.2). */
	{ "simple", S("Subject: a\r\n\r\nbody\r\n.\r\n"), M_BOTH, 1, ALL,
	    E_OK, S("Subject: a\r\n\r\nbody\r\n") },
	{ "empty message", S(".\r\n"), M_BOTH, 1, ALL, E_OK, S("") },
	{ "one empty line", S("\r\n.\r\n"), M_BOTH, 1, ALL, E_OK, S("\r\n") },
	{ "unstuff", S("a\r\n..\r\n..b\r\n.c\r\n.\r\n"), M_BOTH, 1, ALL,
	    E_OK, S("a\r\n.\r\n.b\r\nc\r\n") },
	{ "unstuff first line", S("..x\r\n.\r\n"), M_BOTH, 1, ALL, E_OK,
	    S(".x\r\n") },
	{ "dot inside line", S("a.b\r\n .\r\n.\r\n"), M_BOTH, 1, ALL, E_OK,
	    S("a.b\r\n .\r\n") },
	{ "bytes after end left", S("a\r\n.\r\nMAIL FROM:<>\r\n"), M_BOTH, 1,
	    6, E_OK, S("a\r\n") },
	{ "no end yet", S("a\r\n.\r"), M_BOTH, 0, ALL, E_OK, S("a\r\n") },
	{ "no end: dot only", S("a\r\n."), M_BOTH, 0, ALL, E_OK, S("a\r\n") },
	{ "eof without CRLF", S("abc"), M_BOTH, 0, ALL, E_OK, S("abc") },

	/* Smuggling (CVE-2023-51764): none of these ends the data. */
	{ "LF.LF", S("a\n.\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "LF.LF norm", S("a\n.\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n.\r\nb\r\n") },
	{ "LF.CRLF", S("a\n.\r\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "LF.CRLF norm", S("a\n.\r\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n.\r\nb\r\n") },
	{ "CR.CR", S("a\r.\rb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "CR.CR norm", S("a\r.\rb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n.\r\nb\r\n") },
	{ "CRLF.LF", S("a\r\n.\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "CRLF.LF norm", S("a\r\n.\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n\r\nb\r\n") },
	{ "CR.LF", S("a\r.\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "CR.LF norm", S("a\r.\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n.\r\nb\r\n") },
	{ "CRLF.CR", S("a\r\n.\rb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "CRLF.CR norm", S("a\r\n.\rb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n\r\nb\r\n") },
	{ "LF.CR", S("a\n.\rb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ "LF.CR norm", S("a\n.\rb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("a\r\n.\r\nb\r\n") },
	{ ".LF at start", S(".\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ ".LF at start norm", S(".\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("\r\nb\r\n") },
	{ ".CR at start", S(".\rb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL, NULL, 0 },
	{ ".CR at start norm", S(".\rb\r\n.\r\n"), M_NORMALIZE, 1, ALL, E_OK,
	    S("\r\nb\r\n") },
	{ "CRLF.LFCRLF", S("a\r\n.\n\r\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    NULL, 0 },
	{ "CRLF.LFCRLF norm", S("a\r\n.\n\r\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL,
	    E_OK, S("a\r\n\r\n\r\nb\r\n") },
	{ "LF.CRLF at start", S("\n.\r\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    NULL, 0 },
	{ "LF.CRLF at start norm", S("\n.\r\nb\r\n.\r\n"), M_NORMALIZE, 1,
	    ALL, E_OK, S("\r\n.\r\nb\r\n") },
	{ "CRLF.CRCRLF", S("a\r\n.\r\r\nb\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    NULL, 0 },
	{ "CRLF.CRCRLF norm", S("a\r\n.\r\r\nb\r\n.\r\n"), M_NORMALIZE, 1, ALL,
	    E_OK, S("a\r\n\r\n\r\nb\r\n") },
	{ "LF.LF then MAIL never ends", S("a\n.\nMAIL FROM:<x@y>\n"),
	    M_REJECT, 0, ALL, E_NL, NULL, 0 },
	{ "LF.LF then MAIL never ends norm", S("a\n.\nMAIL FROM:<x@y>\n"),
	    M_NORMALIZE, 0, ALL, E_OK, S("a\r\n.\r\nMAIL FROM:<x@y>\r\n") },
	{ "CR.CR then MAIL never ends", S("a\r.\rMAIL FROM:<x@y>\r"),
	    M_REJECT, 0, ALL, E_NL, NULL, 0 },
	{ "LF.CRLF then MAIL never ends", S("a\n.\r\nMAIL FROM:<x@y>\r\n"),
	    M_REJECT, 0, ALL, E_NL, NULL, 0 },
	{ "dot after soft break not unstuffed", S("a\n..\r\n.\r\n"),
	    M_NORMALIZE, 1, ALL, E_OK, S("a\r\n..\r\n") },
	{ "bare CR before real end", S("a\r\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    NULL, 0 },
	{ "bare CR before real end norm", S("a\r\r\n.\r\n"), M_NORMALIZE, 1,
	    ALL, E_OK, S("a\r\n\r\n") },
	{ "bare LF before real end", S("a\n\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    NULL, 0 },
	{ "bare LF before real end norm", S("a\n\r\n.\r\n"), M_NORMALIZE, 1,
	    ALL, E_OK, S("a\r\n\r\n") },
	{ "after error real end, rest left", S("a\nb\r\n.\r\nQUIT\r\n"),
	    M_REJECT, 1, 8, E_NL, NULL, 0 },
	{ "error output stops", S("ab\ncd\r\n.\r\n"), M_REJECT, 1, ALL, E_NL,
	    S("ab") },

	/* NUL (both modes). */
	{ "NUL", S("a\0b\r\n.\r\n"), M_BOTH, 1, ALL, SMTP_DATA_ERR_NUL,
	    S("a") },
	{ "NUL at start", S("\0\r\n.\r\n"), M_BOTH, 1, ALL, SMTP_DATA_ERR_NUL,
	    S("") },
	{ "NUL then smuggle", S("\0\n.\nx\r\n.\r\nrest"), M_BOTH, 1, 10,
	    SMTP_DATA_ERR_NUL, S("") },
	{ "8bit", S("\xc3\xa9t\xc3\xa9\r\n.\r\n"), M_BOTH, 1, ALL, E_OK,
	    S("\xc3\xa9t\xc3\xa9\r\n") },
};

static char *
repeat(const char *prefix, char c, size_t n, const char *suffix, size_t *len)
{
	size_t	 pl = strlen(prefix), sl = strlen(suffix);
	char	*p = malloc(pl + n + sl + 1);

	if (p == NULL)
		abort();
	memcpy(p, prefix, pl);
	memset(p + pl, c, n);
	memcpy(p + pl + n, suffix, sl + 1);
	*len = pl + n + sl;
	return p;
}

static void
table(void)
{
	const struct dcase	*c;
	struct smtp_data_limits	 lim;
	struct result		 r;
	size_t			 i, want;
	int			 m, good;
	const char		*mode;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		for (m = 1; m <= 2; m++) {
			if (!(c->modes & m))
				continue;
			lim = deflim;
			lim.normalize = m == M_NORMALIZE;
			mode = m == M_REJECT ? "reject" : "normalize";
			good = run_all(c->in, c->inlen, &lim, &r);
			want = c->consumed == ALL ? c->inlen : c->consumed;
			ok(good, "%s [%s]: same result for every chunking",
			    c->name, mode);
			ok(r.done == c->done, "%s [%s]: done %d", c->name, mode,
			    r.done);
			ok(r.consumed == want, "%s [%s]: consumed %zu of %zu",
			    c->name, mode, r.consumed, c->inlen);
			ok(r.error == c->err, "%s [%s]: error %s", c->name,
			    mode, smtp_data_error_name(r.error));
			if (c->out != NULL)
				ok(r.out.len == c->outlen && (c->outlen == 0 ||
				    memcmp(r.out.data, c->out, c->outlen) == 0),
				    "%s [%s]: output", c->name, mode);
			buf_clear(&r.out);
		}
	}
}

/* Generated inputs: line lengths, size, Received, header cap. */
struct gcase {
	const char		*name;
	char			*in;
	size_t			 inlen;
	struct smtp_data_limits	 lim;
	enum smtp_data_error	 err;
	size_t			 outlen;	/* -1: not checked */
	unsigned		 received;
};

static void
check_gen(struct gcase *g, int chunked)
{
	struct result	 r;
	int		 good = 1;

	if (chunked)
		good = run_all(g->in, g->inlen, &g->lim, &r);
	else
		run(g->in, g->inlen, &g->lim, 0, 0, &r);
	ok(good && r.done && r.consumed == g->inlen && r.error == g->err &&
	    (g->outlen == (size_t)-1 || r.out.len == g->outlen) &&
	    r.received == g->received,
	    "%s: done %d consumed %zu/%zu error %s out %zu received %u",
	    g->name, r.done, r.consumed, g->inlen,
	    smtp_data_error_name(r.error), r.out.len, r.received);
	buf_clear(&r.out);
	free(g->in);
}

static char *
received_msg(unsigned n, size_t *len)
{
	struct buf	 b;
	unsigned	 i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < n; i++)
		buf_appendf(&b, "%s: from h%u\r\n", i % 3 == 0 ?
		    "Received" : (i % 3 == 1 ? "RECEIVED" : "received "), i);
	buf_append_str(&b, "X-Received: no\r\n Received: continuation\r\n"
	    "Subject: x\r\n\r\nReceived: in body\r\n.\r\n");
	*len = b.len;
	return b.data;
}

static void
generated(void)
{
	struct gcase	 g;
	size_t		 len;
	int		 norm;

	for (norm = 0; norm <= 1; norm++) {
		/* RFC 5322 2.1.1: 998 octets fit, 999 do not. */
		g.lim = deflim;
		g.lim.normalize = norm;
		g.in = repeat("", 'x', 998, "\r\n.\r\n", &g.inlen);
		g.name = norm ? "998 octets [normalize]" : "998 octets";
		g.err = SMTP_DATA_OK;
		g.outlen = 1000;
		g.received = 0;
		check_gen(&g, 1);
		g.in = repeat("", 'x', 999, "\r\n.\r\n", &g.inlen);
		g.name = norm ? "999 octets [normalize]" : "999 octets";
		g.err = SMTP_DATA_ERR_LINE_TOO_LONG;
		g.outlen = 998;
		check_gen(&g, 1);
		g.in = repeat(".", 'x', 998, "\r\n.\r\n", &g.inlen);
		g.name = norm ? "998 octets after a stuffed dot [normalize]" :
		    "998 octets after a stuffed dot";
		g.err = SMTP_DATA_OK;
		g.outlen = 1000;
		check_gen(&g, 0);
		g.in = repeat("", 'x', 5000, "\r\n.\r\n", &g.inlen);
		g.name = norm ? "5000 octets [normalize]" : "5000 octets";
		g.err = SMTP_DATA_ERR_LINE_TOO_LONG;
		g.outlen = 998;
		check_gen(&g, 0);
	}

	/* In normalize mode a bare LF ends a line for counting. */
	g.lim = deflim;
	g.lim.normalize = 1;
	g.in = repeat("", 'x', 600, "\n", &len);
	g.in = realloc(g.in, len + 700);
	memset(g.in + len, 'y', 600);
	memcpy(g.in + len + 600, "\r\n.\r\n", 5);
	g.inlen = len + 605;
	g.name = "600 + LF + 600 [normalize]";
	g.err = SMTP_DATA_OK;
	g.outlen = 1204;
	g.received = 0;
	check_gen(&g, 0);

	/* message_size: output bytes, CRLF included, terminator not. */
	g.lim = deflim;
	g.lim.message_size = 10;
	g.in = repeat("", 'x', 8, "\r\n.\r\n", &g.inlen);
	g.name = "size exactly at the limit";
	g.err = SMTP_DATA_OK;
	g.outlen = 10;
	check_gen(&g, 1);
	g.in = repeat("", 'x', 9, "\r\n.\r\n", &g.inlen);
	g.name = "size one over the limit";
	g.err = SMTP_DATA_ERR_TOO_BIG;
	g.outlen = (size_t)-1;
	check_gen(&g, 1);
	g.in = repeat("", 'x', 10, "\r\n.\r\n", &g.inlen);
	g.name = "size over on a content byte";
	g.err = SMTP_DATA_ERR_TOO_BIG;
	g.outlen = 10;
	check_gen(&g, 1);
	g.lim.message_size = 1000;
	g.in = repeat("", 'x', 100000, "\r\n.\r\n", &g.inlen);
	g.name = "size far over, one line";
	g.lim.line_length = 1000000;
	g.outlen = 1000;
	check_gen(&g, 0);

	/* RFC 5321 6.3: 50 Received fields pass, 51 is a loop. */
	g.lim = deflim;
	g.in = received_msg(50, &g.inlen);
	g.name = "50 Received";
	g.err = SMTP_DATA_OK;
	g.outlen = (size_t)-1;
	g.received = 50;
	check_gen(&g, 0);
	g.in = received_msg(51, &g.inlen);
	g.name = "51 Received";
	g.err = SMTP_DATA_ERR_LOOP;
	g.received = 51;
	check_gen(&g, 0);
	g.lim.max_received = 2;
	g.in = received_msg(3, &g.inlen);
	g.name = "3 Received, max 2, every chunking";
	g.received = 3;
	check_gen(&g, 1);

	/* Header section cap: bytes before the empty line. */
	g.lim = deflim;
	g.lim.header_size = 20;
	g.in = repeat("Subject: ", '0', 9, "\r\n\r\nbody body body body body"
	    " body\r\n.\r\n", &g.inlen);
	g.name = "header exactly at the cap";
	g.err = SMTP_DATA_OK;
	g.outlen = (size_t)-1;
	g.received = 0;
	check_gen(&g, 1);
	g.in = repeat("Subject: ", '0', 10, "\r\n\r\nbody\r\n.\r\n",
	    &g.inlen);
	g.name = "header one over the cap";
	g.err = SMTP_DATA_ERR_HEADER_TOO_BIG;
	check_gen(&g, 1);
	g.in = repeat("Subject: ", '0', 5000, "\r\n\r\nbody\r\n.\r\n",
	    &g.inlen);
	g.name = "header far over the cap";
	check_gen(&g, 0);
	g.in = repeat("", 'x', 100, "\r\n.\r\n", &g.inlen);
	g.name = "no empty line: all header";
	check_gen(&g, 0);
}

/* Bytes after an error: done at the true end, then nothing more. */
static void
after_done(void)
{
	struct smtp_data	 d;
	struct buf		 out;
	int			 done;
	size_t			 c;

	buf_init(&out, 1 << 20);
	smtp_data_init(&d, &deflim, &out);
	c = smtp_data_feed(&d, S("a\r\n.\r\nb"), &done);
	ok(c == 6 && done == 1, "done after 6 bytes");
	c = smtp_data_feed(&d, S("more"), &done);
	ok(c == 0 && done == 1, "feed after done takes nothing");
	ok(d.eightbit == 0, "no 8bit seen");
	buf_clear(&out);
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Throughput on plain text: reported, not asserted. */
static void
speed(void)
{
	static const char	 line[] = "The quick brown fox jumps over the "
	    "lazy dog, then does it again and again and again.\r\n";
	struct smtp_data_limits	 lim = deflim;
	struct smtp_data	 d;
	struct buf		 out;
	const size_t		 total = 32u << 20, chunk = 64 << 10;
	size_t			 n = 0, off, len, ll = sizeof(line) - 1;
	char			*in;
	double			 t0, t, best = 1e9;
	int			 done = 0, rep;

	in = malloc(total + 16);
	if (in == NULL)
		abort();
	n = (size_t)snprintf(in, 64, "Subject: speed\r\n\r\n");
	while (n + ll <= total) {
		memcpy(in + n, line, ll);
		n += ll;
	}
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	lim.message_size = total;
	buf_init(&out, total + 16);
	for (rep = 0; rep < 5; rep++) {
		buf_reset(&out);
		smtp_data_init(&d, &lim, &out);
		t0 = now();
		for (off = 0, done = 0; off < n && !done; off += len) {
			len = n - off < chunk ? n - off : chunk;
			len = smtp_data_feed(&d, in + off, len, &done);
		}
		t = now() - t0;
		if (t < best)
			best = t;
	}
	ok(done && d.error == SMTP_DATA_OK && out.len == n - 3,
	    "speed run framed %zu bytes", n);
	printf("# framer throughput: %.0f MB/s (%zu bytes, best of 5)\n",
	    n / best / 1e6, n);
	buf_clear(&out);
	free(in);
}

int
main(void)
{
	table();
	generated();
	after_done();
	speed();
	return tap_done();
}

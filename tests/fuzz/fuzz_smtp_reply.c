/*
 * fuzz_smtp_reply: libFuzzer target for smtp_reply_parse() and
 * smtp_reply_format().  The input is fed twice: whole, and in pieces whose
 * sizes come from the input's own bytes; both runs must give the same
 * replies.  Aborts when a reply breaks the header's promises (code range,
 * line count, no CR, LF count, NUL) or the two runs disagree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_REPLIES	64

struct run {
	int		 codes[MAX_REPLIES];
	unsigned	 n;
	int		 error;
};

static void
check(const struct smtp_reply *r)
{
	char	 out[300];
	size_t	 i, nl = 0;

	if (r->code < 200 || r->code > 599 || r->nlines < 1 ||
	    r->nlines > SMTP_REPLY_LINES_MAX)
		abort();
	for (i = 0; i < r->text.len; i++) {
		if (r->text.data[i] == '\r' || r->text.data[i] == '\0')
			abort();
		if (r->text.data[i] == '\n')
			nl++;
	}
	if (nl + 1 != r->nlines)
		abort();
	smtp_reply_format(r, out, sizeof(out));
	if (strlen(out) >= sizeof(out))
		abort();
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 ||
		    (unsigned char)out[i] > 0x7e)
			abort();
}

static void
feed(const uint8_t *data, size_t size, int pieces, struct run *run)
{
	struct smtp_reply_parser p;
	struct smtp_reply	 r;
	size_t			 off = 0, end, used, step;
	enum smtp_reply_rc	 rc;

	memset(run, 0, sizeof(*run));
	smtp_reply_parser_init(&p);
	smtp_reply_init(&r);
	while (off < size && run->n < MAX_REPLIES && !run->error) {
		step = pieces ? 1 + data[off] % 7 : size;
		end = off + step > size ? size : off + step;
		while (off < end && run->n < MAX_REPLIES) {
			rc = smtp_reply_parse(&p, data + off, end - off, &used,
			    &r);
			if (used > end - off)
				abort();
			off += used;
			if (rc == SMTP_REPLY_MORE) {
				if (off != end)
					abort();
				break;
			}
			if (rc == SMTP_REPLY_ERROR) {
				if (r.code != 451)
					abort();
				run->error = 1;
				break;
			}
			check(&r);
			run->codes[run->n++] = r.code;
		}
	}
	smtp_reply_clear(&r);
	smtp_reply_parser_clear(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 a, b;

	feed(data, size, 0, &a);
	feed(data, size, 1, &b);
	if (a.n != b.n || a.error != b.error ||
	    memcmp(a.codes, b.codes, sizeof(a.codes[0]) * a.n) != 0)
		abort();
	return 0;
}

/*
 * fuzz_envelope: libFuzzer target for envelope_parse().  Whatever parses
 * must point its body inside the input, and serializing the parsed
 * envelope and parsing it again must give the same envelope and body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "envelope.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope	 e, e2;
	const char	*body, *body2;
	size_t		 bodylen, bodylen2, i;
	struct buf	 out;

	memset(&e, 0, sizeof(e));
	if (envelope_parse(data, size, &e, &body, &bodylen) == -1) {
		envelope_clear(&e);
		return 0;
	}
	if (body < (const char *)data || bodylen > size ||
	    body + bodylen > (const char *)data + size)
		abort();
	buf_init(&out, 2 * size + 4096);
	if (envelope_serialize(&e, body, bodylen, &out) == -1)
		abort();
	memset(&e2, 0, sizeof(e2));
	if (envelope_parse(out.data, out.len, &e2, &body2, &bodylen2) == -1)
		abort();
	if (strcmp(e.id, e2.id) != 0 || e.time != e2.time ||
	    !streq(e.user, e2.user) || !streq(e.client, e2.client) ||
	    !streq(e.helo, e2.helo) || !streq(e.mail_from, e2.mail_from) ||
	    e.flags != e2.flags || e.nrcpts != e2.nrcpts ||
	    bodylen != bodylen2 || memcmp(body, body2, bodylen) != 0)
		abort();
	for (i = 0; i < e.nrcpts; i++)
		if (!streq(e.rcpts[i], e2.rcpts[i]))
			abort();
	envelope_clear(&e2);
	envelope_clear(&e);
	buf_clear(&out);
	return 0;
}

/*
 * test_base64: RFC 4648 test vectors and strict decoding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "tap.h"

#define S(x)	x, sizeof(x) - 1

/* RFC 4648 section 10. */
static const struct {
	const char	*plain, *enc;
} vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static const struct {
	const char	*enc;
	size_t		 len;
	int		 rc;
} bad[] = {
	{ S("Zg="), -1 },		/* length not a multiple of 4 */
	{ S("Zg"), -1 },
	{ S("Z"), -1 },
	{ S("Zh=="), -1 },		/* non-zero pad bits */
	{ S("Zm9="), -1 },
	{ S("Zm8"), -1 },
	{ S("Zm 9v"), -1 },		/* white space */
	{ S("Zm9v\r\n"), -1 },
	{ S(" Zm9v"), -1 },
	{ S("Zm9v\n"), -1 },
	{ S("Z==="), -1 },		/* too much padding */
	{ S("===="), -1 },
	{ S("Zg==Zg=="), -1 },		/* padding in the middle */
	{ S("Z=g="), -1 },
	{ S("Zm9-"), -1 },		/* base64url alphabet */
	{ S("Zm9_"), -1 },
	{ S("Zm9\0"), -1 },
	{ S("Zm9\xff"), -1 },
	{ S("AGFsaWNlAHNlY3JldA=="), 0 },
};

static void
known(void)
{
	char	 enc[64], dec[64];
	size_t	 i, n, outlen;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		n = base64_encode(vectors[i].plain, strlen(vectors[i].plain),
		    enc);
		ok(n == strlen(vectors[i].enc) &&
		    strcmp(enc, vectors[i].enc) == 0,
		    "encode \"%s\" -> \"%s\"", vectors[i].plain, enc);
		outlen = 99;
		ok(base64_decode(vectors[i].enc, strlen(vectors[i].enc), dec,
		    sizeof(dec), &outlen) == 0 &&
		    outlen == strlen(vectors[i].plain) &&
		    memcmp(dec, vectors[i].plain, outlen) == 0,
		    "decode \"%s\"", vectors[i].enc);
	}
}

static void
strict(void)
{
	char	 dec[64];
	size_t	 i, outlen;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(base64_decode(bad[i].enc, bad[i].len, dec, sizeof(dec),
		    &outlen) == bad[i].rc, "decode case %zu rc %d", i,
		    bad[i].rc);
	/* dstcap exactly enough, and one short. */
	ok(base64_decode(S("Zm9vYmFy"), dec, 6, &outlen) == 0 && outlen == 6,
	    "dstcap exact");
	ok(base64_decode(S("Zm9vYmFy"), dec, 5, &outlen) == -1,
	    "dstcap one short");
	ok(base64_decode(S("Zm9vYg=="), dec, 4, &outlen) == 0 && outlen == 4,
	    "dstcap exact with padding");
	ok(base64_decode(S("Zm9vYg=="), dec, 3, &outlen) == -1,
	    "dstcap one short with padding");
	ok(base64_decode("", 0, NULL, 0, &outlen) == 0 && outlen == 0,
	    "empty input");
}

/* Every byte value and length round-trips. */
static void
roundtrip(void)
{
	unsigned char	 src[300], dec[300];
	char		 enc[BASE64_ENCODED_LEN(300) + 1];
	size_t		 n, i, e, outlen;
	int		 good = 1;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 7 + 3);
	for (n = 0; n <= sizeof(src) && good; n++) {
		e = base64_encode(src, n, enc);
		good = e == BASE64_ENCODED_LEN(n) && enc[e] == '\0' &&
		    base64_decode(enc, e, dec, sizeof(dec), &outlen) == 0 &&
		    outlen == n && memcmp(src, dec, n) == 0;
	}
	ok(good, "round trip of lengths 0..300 (stopped at %zu)", n - 1);
}

int
main(void)
{
	known();
	strict();
	roundtrip();
	return tap_done();
}

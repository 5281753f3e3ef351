/*
 * test_verp: the VERP token codec.  Round trips over many queue IDs and
 * recipient indexes, every single-character alteration of a token
 * refused, a wrong key refused, length and alphabet, case-insensitive
 * decoding, malformed inputs.
 */
#include <stdio.h>
#include <string.h>

#include "verp.h"
#include "tap.h"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static void
make_qid(unsigned n, char qid[VERP_QID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t	 x = (uint64_t)n * 0x9e3779b97f4a7c15ULL + n;
	int		 i;

	for (i = 0; i < VERP_QID_LEN; i++) {
		qid[i] = hex[x & 15];
		x = x >> 4 | x << 60;
	}
	qid[VERP_QID_LEN] = '\0';
}

int
main(void)
{
	uint8_t		 key[VERP_KEY_LEN], key2[VERP_KEY_LEN];
	char		 qid[VERP_QID_LEN + 1], out[VERP_QID_LEN + 1];
	char		 local[VERP_LOCAL_LEN + 1], alt[VERP_LOCAL_LEN + 1];
	char		 big[VERP_LOCAL_LEN + 2];
	uint32_t	 idx, idxs[] = { 0, 1, 2, 99, 100, 65535, 65536,
	    0x7fffffff, 0xffffffff };
	unsigned	 n, j, bad_rt = 0, bad_len = 0, bad_alpha = 0;
	unsigned	 accepted = 0, tried = 0, wrongcode = 0, upper_bad = 0;
	size_t		 i, k;
	int		 r;

	for (i = 0; i < sizeof(key); i++) {
		key[i] = (uint8_t)(i * 7 + 1);
		key2[i] = key[i];
	}
	key2[31] ^= 1;

	/* Round trips. */
	for (n = 0; n < 500; n++) {
		make_qid(n, qid);
		for (j = 0; j < sizeof(idxs) / sizeof(idxs[0]); j++) {
			if (verp_encode(key, qid, idxs[j], local,
			    sizeof(local)) != 0) {
				bad_rt++;
				continue;
			}
			if (strlen(local) != VERP_LOCAL_LEN ||
			    strlen(local) > 64)
				bad_len++;
			if (strncmp(local, "b.", 2) != 0 ||
			    strspn(local + 2, b32) != VERP_TOKEN_LEN)
				bad_alpha++;
			r = verp_decode(key, local, strlen(local), out, &idx);
			if (r != 0 || strcmp(out, qid) != 0 || idx != idxs[j])
				bad_rt++;
			/* Upper-cased by an MTA: still decodes. */
			for (k = 0; local[k] != '\0'; k++)
				alt[k] = (local[k] >= 'a' && local[k] <= 'z') ?
				    (char)(local[k] - 32) : local[k];
			alt[k] = '\0';
			r = verp_decode(key, alt, k, out, &idx);
			if (r != 0 || strcmp(out, qid) != 0 || idx != idxs[j])
				upper_bad++;
		}
	}
	ok(bad_rt == 0, "4500 round trips (%u failures)", bad_rt);
	ok(bad_len == 0, "local part is %d octets, <= 64", VERP_LOCAL_LEN);
	ok(bad_alpha == 0, "only b. and lower-case base32 characters");
	ok(upper_bad == 0, "upper-cased tokens still decode");

	/* Every single-character alteration of a few tokens is refused. */
	for (n = 0; n < 20; n++) {
		make_qid(n * 31 + 7, qid);
		verp_encode(key, qid, n, local, sizeof(local));
		for (k = 0; k < VERP_LOCAL_LEN; k++) {
			const char *alphabet = "abcdefghijklmnopqrstuvwxyz"
			    "234567ABCDEFGHIJKLMNOPQRSTUVWXYZ01890.-_+=";

			for (j = 0; alphabet[j] != '\0'; j++) {
				char c = alphabet[j];

				if (c == local[k] || (c ^ 32) == local[k])
					continue;	/* same letter */
				memcpy(alt, local, sizeof(alt));
				alt[k] = c;
				tried++;
				r = verp_decode(key, alt, VERP_LOCAL_LEN, out,
				    &idx);
				if (r == 0)
					accepted++;
				else if (r != -1 && r != -2)
					wrongcode++;
			}
		}
	}
	ok(accepted == 0 && wrongcode == 0 && tried > 20000,
	    "%u single-character alterations all refused (%u accepted)",
	    tried, accepted);

	make_qid(1234, qid);
	verp_encode(key, qid, 5, local, sizeof(local));
	ok(verp_decode(key2, local, VERP_LOCAL_LEN, out, &idx) == -2,
	    "wrong key: -2");
	memcpy(alt, local, sizeof(alt));
	alt[VERP_LOCAL_LEN - 1] = alt[VERP_LOCAL_LEN - 1] == 'a' ? 'b' : 'a';
	r = verp_decode(key, alt, VERP_LOCAL_LEN, out, &idx);
	ok(r == -1 || r == -2, "altered last character refused (%d)", r);

	/* Malformed. */
	ok(verp_decode(key, local, VERP_LOCAL_LEN - 1, out, &idx) == -1,
	    "short token: -1");
	snprintf(big, sizeof(big), "%sa", local);
	ok(verp_decode(key, big, strlen(big), out, &idx) == -1,
	    "long token: -1");
	memcpy(alt, local, sizeof(alt));
	alt[0] = 'c';
	ok(verp_decode(key, alt, VERP_LOCAL_LEN, out, &idx) == -1,
	    "wrong prefix: -1");
	memcpy(alt, local, sizeof(alt));
	alt[1] = '-';
	ok(verp_decode(key, alt, VERP_LOCAL_LEN, out, &idx) == -1,
	    "wrong separator: -1");
	alt[0] = 'B';
	alt[1] = '.';
	ok(verp_decode(key, alt, VERP_LOCAL_LEN, out, &idx) == 0,
	    "upper-case prefix B. decodes");
	memcpy(alt, local, sizeof(alt));
	alt[10] = '1';
	ok(verp_decode(key, alt, VERP_LOCAL_LEN, out, &idx) == -1,
	    "character outside base32: -1");
	ok(verp_decode(key, "", 0, out, &idx) == -1, "empty: -1");
	ok(verp_decode(key, "alice", 5, out, &idx) == -1, "ordinary local "
	    "part: -1");

	ok(verp_encode(key, "0123456789abcdeg", 0, local, sizeof(local)) ==
	    -1, "encode: non-hex queue ID refused");
	ok(verp_encode(key, "0123456789abcde", 0, local, sizeof(local)) == -1,
	    "encode: short queue ID refused");
	ok(verp_encode(key, "0123456789abcdef0", 0, local, sizeof(local)) ==
	    -1, "encode: long queue ID refused");
	ok(verp_encode(key, "0123456789abcdef", 0, local, VERP_LOCAL_LEN) ==
	    -1, "encode: small buffer refused");
	ok(verp_encode(key, "0123456789ABCDEF", 3, local, sizeof(local)) == 0 &&
	    verp_decode(key, local, strlen(local), out, &idx) == 0 &&
	    strcmp(out, "0123456789abcdef") == 0 && idx == 3,
	    "upper-case queue ID decodes to lower case");
	/* Known answer, computed independently with Python's hmac and
	 * base64.b32encode, so a format change is noticed. */
	verp_encode(key, "0123456789abcdef", 7, local, sizeof(local));
	printf("# known token: %s\n", local);
	ok(strcmp(local, "b.aerukz4jvpg66aaaaad7klzqvsqybtezvarq") == 0,
	    "known answer for a fixed key, queue ID and index");
	return tap_done();
}

/*
 * fuzz_verp: libFuzzer target for verp_decode() and verp_encode().  The
 * input is decoded as a local part under a fixed key; a token that
 * decodes must re-encode to itself (ignoring case).  The first 12 bytes
 * also make a queue ID and index that must round-trip, and a one-byte
 * change of that token chosen by the input must be refused unless it only
 * changes a letter's case.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "verp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	uint8_t			 key[VERP_KEY_LEN];
	char			 qid[VERP_QID_LEN + 1], q2[VERP_QID_LEN + 1];
	char			 local[VERP_LOCAL_LEN + 1], alt[VERP_LOCAL_LEN + 1];
	uint32_t		 idx, i2;
	size_t			 i, pos;
	int			 r;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 13 + 5);

	r = verp_decode(key, (const char *)data, size, qid, &idx);
	if (r != 0 && r != -1 && r != -2)
		abort();
	if (r == 0) {
		if (size != VERP_LOCAL_LEN || strlen(qid) != VERP_QID_LEN ||
		    verp_encode(key, qid, idx, local, sizeof(local)) != 0 ||
		    strncasecmp(local, (const char *)data, size) != 0)
			abort();
	}

	if (size < 14)
		return 0;
	for (i = 0; i < 8; i++) {
		qid[2 * i] = hex[data[i] >> 4];
		qid[2 * i + 1] = hex[data[i] & 15];
	}
	qid[VERP_QID_LEN] = '\0';
	idx = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 |
	    (uint32_t)data[10] << 8 | data[11];
	if (verp_encode(key, qid, idx, local, sizeof(local)) != 0 ||
	    strlen(local) != VERP_LOCAL_LEN ||
	    verp_decode(key, local, VERP_LOCAL_LEN, q2, &i2) != 0 ||
	    strcmp(q2, qid) != 0 || i2 != idx)
		abort();
	for (i = 0; i < VERP_LOCAL_LEN; i++)
		if (!((local[i] >= 'a' && local[i] <= 'z') ||
		    (local[i] >= '2' && local[i] <= '7') ||
		    (i == 1 && local[i] == '.')))
			abort();
	pos = data[12] % VERP_LOCAL_LEN;
	memcpy(alt, local, sizeof(alt));
	alt[pos] = (char)data[13];
	if (alt[pos] != local[pos] && (alt[pos] ^ 32) != local[pos] &&
	    verp_decode(key, alt, VERP_LOCAL_LEN, q2, &i2) == 0)
		abort();
	return 0;
}

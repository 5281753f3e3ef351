/*
 * verp: encode and decode the VERP envelope sender token (see verp.h for
 * the format).  Owns nothing: pure functions over caller buffers, with
 * OpenSSL's one-shot HMAC and CRYPTO_memcmp for the constant-time compare.
 * Limits: fixed-size tokens only; anything else is malformed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "verp.h"

#define VERP_DATA_LEN	12	/* queue ID bytes + index */
#define VERP_RAW_LEN	(VERP_DATA_LEN + VERP_MAC_LEN)
#define VERP_CONTEXT	"relayd-verp-1"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
b32val(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

static int
verp_mac(const uint8_t key[VERP_KEY_LEN], const uint8_t data[VERP_DATA_LEN],
    uint8_t mac[VERP_MAC_LEN])
{
	uint8_t		 msg[sizeof(VERP_CONTEXT) - 1 + VERP_DATA_LEN];
	uint8_t		 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;

	memcpy(msg, VERP_CONTEXT, sizeof(VERP_CONTEXT) - 1);
	memcpy(msg + sizeof(VERP_CONTEXT) - 1, data, VERP_DATA_LEN);
	if (HMAC(EVP_sha256(), key, VERP_KEY_LEN, msg, sizeof(msg), md,
	    &mdlen) == NULL || mdlen < VERP_MAC_LEN)
		return -1;
	memcpy(mac, md, VERP_MAC_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

int
verp_encode(const uint8_t key[VERP_KEY_LEN], const char *queue_id,
    uint32_t rcpt_index, char *local, size_t cap)
{
	uint8_t		 raw[VERP_RAW_LEN];
	size_t		 i, o;
	unsigned int	 acc, bits;
	int		 hi, lo;

	if (cap < VERP_LOCAL_LEN + 1 || queue_id == NULL)
		return -1;
	for (i = 0; i < VERP_QID_LEN / 2; i++) {
		hi = hexval((unsigned char)queue_id[2 * i]);
		if (hi < 0)
			return -1;
		lo = hexval((unsigned char)queue_id[2 * i + 1]);
		if (lo < 0)
			return -1;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	if (queue_id[VERP_QID_LEN] != '\0')
		return -1;
	raw[8] = (uint8_t)(rcpt_index >> 24);
	raw[9] = (uint8_t)(rcpt_index >> 16);
	raw[10] = (uint8_t)(rcpt_index >> 8);
	raw[11] = (uint8_t)rcpt_index;
	if (verp_mac(key, raw, raw + VERP_DATA_LEN) == -1)
		return -1;

	/* RFC 4648 section 6, lower case, no padding. */
	local[0] = 'b';
	local[1] = '.';
	o = 2;
	acc = 0;
	bits = 0;
	for (i = 0; i < VERP_RAW_LEN; i++) {
		acc = (acc << 8 | raw[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			local[o++] = b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		local[o++] = b32[(acc << (5 - bits)) & 31];
	local[o] = '\0';
	return 0;
}

int
verp_decode(const uint8_t key[VERP_KEY_LEN], const char *local, size_t len,
    char qid[VERP_QID_LEN + 1], uint32_t *rcpt_index)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t		 raw[VERP_RAW_LEN], mac[VERP_MAC_LEN];
	size_t		 i, o;
	unsigned int	 acc, bits;
	int		 v;

	if (local == NULL || len != VERP_LOCAL_LEN ||
	    (local[0] != 'b' && local[0] != 'B') || local[1] != '.')
		return -1;
	acc = 0;
	bits = 0;
	o = 0;
	for (i = 2; i < len; i++) {
		v = b32val((unsigned char)local[i]);
		if (v < 0)
			return -1;
		acc = (acc << 5 | (unsigned int)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= VERP_RAW_LEN)
				return -1;
			raw[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The unused low bits of the last character must be zero, so each
	 * token has exactly one spelling (up to case). */
	if (o != VERP_RAW_LEN || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	if (verp_mac(key, raw, mac) == -1)
		return -1;
	if (CRYPTO_memcmp(mac, raw + VERP_DATA_LEN, VERP_MAC_LEN) != 0)
		return -2;
	for (i = 0; i < VERP_QID_LEN / 2; i++) {
		qid[2 * i] = hex[raw[i] >> 4];
		qid[2 * i + 1] = hex[raw[i] & 15];
	}
	qid[VERP_QID_LEN] = '\0';
	*rcpt_index = (uint32_t)raw[8] << 24 | (uint32_t)raw[9] << 16 |
	    (uint32_t)raw[10] << 8 | raw[11];
	return 0;
}

/*
 * verp: the envelope sender token of issue 3.  For each recipient the
 * envelope sender becomes "b.TOKEN@BOUNCE_DOMAIN", where TOKEN names one
 * queued message and one of its recipients and carries a truncated
 * HMAC-SHA256 under the relay's secret, so a bounce can be traced to
 * exactly one message and recipient and a forged or altered token is
 * recognised.
 *
 * TOKEN is RFC 4648 base32 in lower case without padding (letters a-z and
 * digits 2-7 only: every MTA accepts them, and MTAs that change the case
 * of local parts do no harm because decoding ignores case) of 22 bytes:
 *
 *   8 bytes   the queue ID (SPOOL_ID_LEN = 16 hex characters)
 *   4 bytes   the recipient index, big-endian
 *   10 bytes  HMAC-SHA256(key, "relayd-verp-1" || the 12 bytes above),
 *             truncated to 80 bits
 *
 * The local part is therefore always "b." plus 36 characters, 38 octets,
 * well within RFC 5321's 64.  Pure functions: no I/O, no globals.
 */
#ifndef RELAYD_VERP_H
#define RELAYD_VERP_H

#include <stddef.h>
#include <stdint.h>

#define VERP_KEY_LEN	32	/* bytes of key; callers derive it from secret_file */
#define VERP_QID_LEN	16	/* hex characters, = SPOOL_ID_LEN */
#define VERP_MAC_LEN	10	/* truncated HMAC, bytes (80 bits) */
#define VERP_TOKEN_LEN	36	/* base32 characters of 22 bytes */
#define VERP_LOCAL_LEN	(2 + VERP_TOKEN_LEN)	/* "b." TOKEN */

/*
 * Write the local part "b.TOKEN" (NUL-terminated) into local; the caller
 * appends "@" and the bounce domain.  queue_id must be exactly
 * VERP_QID_LEN hexadecimal characters (either case; decoding returns lower
 * case).  Returns 0, or -1 when queue_id is malformed, cap is below
 * VERP_LOCAL_LEN + 1 or the HMAC fails.
 */
int	verp_encode(const uint8_t key[VERP_KEY_LEN], const char *queue_id,
	    uint32_t rcpt_index, char *local, size_t cap);

/*
 * Decode a local part (len bytes, not NUL-terminated; the "@domain" must
 * not be included).  The prefix and the token compare case-insensitively.
 * Returns 0 with qid (lower-case hex, NUL-terminated) and *rcpt_index set;
 * -1 when the local part is not a well-formed token (wrong prefix, length,
 * alphabet, or non-zero padding bits); -2 when the MAC does not match
 * (compared in constant time).  qid and *rcpt_index are written only on 0.
 */
int	verp_decode(const uint8_t key[VERP_KEY_LEN], const char *local,
	    size_t len, char qid[VERP_QID_LEN + 1], uint32_t *rcpt_index);

#endif

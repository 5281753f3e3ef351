/*
 * rewrite: the envelope sender relayd sends with.  Each recipient gets its
 * own VERP address b.TOKEN@BOUNCE_DOMAIN (common/verp.h), whose token names
 * the queue ID and the recipient's index under an HMAC keyed from
 * secret_file, on a bounce domain that shares the From domain's
 * organizational domain, so SPF aligns for DMARC (RFC 7489 3.1.2) and a
 * bounce names exactly one message and recipient.  The null sender stays
 * null.
 */
#ifndef RELAYD_REWRITE_H
#define RELAYD_REWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "verp.h"

struct envelope;

/* The VERP key: SHA-256 over a label and the secret file's bytes (at least
 * 32 of them).  Returns 0, or -1 after printing the problem to err. */
int	rewrite_key_load(const char *secret_file, uint8_t key[VERP_KEY_LEN],
	    FILE *err);
/*
 * The envelope sender for recipient i of env into out: "" for the null
 * sender, the original MAIL FROM when env has no bounce domain, else the
 * VERP address.  Returns 0 or -1 (out too small, bad queue ID).
 */
int	rewrite_sender(const uint8_t key[VERP_KEY_LEN],
	    const struct envelope *, size_t i, char *out, size_t cap);

#endif

/*
 * base64: RFC 4648 section 4 encoding, strict decoding.
 */
#ifndef RELAYD_BASE64_H
#define RELAYD_BASE64_H

#include <stddef.h>

#define BASE64_ENCODED_LEN(n)	((((n) + 2) / 3) * 4)

/* Encode n bytes; dst needs BASE64_ENCODED_LEN(n) + 1.  Returns the length
 * written (dst is NUL-terminated). */
size_t	base64_encode(const void *src, size_t n, char *dst);
/*
 * Decode exactly n characters of src: the alphabet and '=' padding only,
 * length a multiple of 4, no white space, padding only at the end and with
 * zero bits in the unused positions.  Returns 0 and sets *outlen, or -1 on
 * invalid input or when dstcap is too small.  An empty input decodes to
 * zero bytes.
 */
int	base64_decode(const char *src, size_t n, void *dst, size_t dstcap,
	    size_t *outlen);

#endif

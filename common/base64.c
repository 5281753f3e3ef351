/*
 * base64: RFC 4648 section 4 encoding and strict decoding.  No state, no
 * allocation: the caller provides the output space.
 */
#include <stddef.h>
#include <stdint.h>

#include "base64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encode(const void *src, size_t n, char *dst)
{
	const unsigned char	*s = src;
	size_t			 i, o = 0;
	uint32_t		 v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		dst[o++] = b64_alphabet[v >> 18];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)s[i] << 16;
		dst[o++] = b64_alphabet[v >> 18];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (n - i == 2) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		dst[o++] = b64_alphabet[v >> 18];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = '=';
	}
	dst[o] = '\0';
	return o;
}

/* The value of one alphabet character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *src, size_t n, void *dst, size_t dstcap,
    size_t *outlen)
{
	const unsigned char	*s = (const unsigned char *)src;
	unsigned char		*d = dst;
	size_t			 i, o = 0, need;
	int			 a, b, c, e, pad;

	/* RFC 4648 section 3.3: no characters outside the alphabet. */
	if (n % 4 != 0)
		return -1;
	pad = 0;
	if (n > 0 && s[n - 1] == '=')
		pad = (n > 1 && s[n - 2] == '=') ? 2 : 1;
	need = n / 4 * 3 - (size_t)pad;
	if (need > dstcap)
		return -1;
	for (i = 0; i < n; i += 4) {
		a = b64_value(s[i]);
		b = b64_value(s[i + 1]);
		if (a < 0 || b < 0)
			return -1;
		if (i + 4 == n && pad == 2) {
			/* RFC 4648 section 3.5: pad bits must be zero. */
			if (b & 0x0f)
				return -1;
			d[o++] = (unsigned char)(a << 2 | b >> 4);
			break;
		}
		c = b64_value(s[i + 2]);
		if (c < 0)
			return -1;
		if (i + 4 == n && pad == 1) {
			if (c & 0x03)
				return -1;
			d[o++] = (unsigned char)(a << 2 | b >> 4);
			d[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
			break;
		}
		e = b64_value(s[i + 3]);
		if (e < 0)
			return -1;
		d[o++] = (unsigned char)(a << 2 | b >> 4);
		d[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
		d[o++] = (unsigned char)((c & 0x03) << 6 | e);
	}
	*outlen = o;
	return 0;
}

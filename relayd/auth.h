/*
 * auth: SMTP AUTH (RFC 4954) mechanisms PLAIN (RFC 4616) and LOGIN, the
 * password check on a worker thread, and the per-address failure delay.
 */
#ifndef RELAYD_AUTH_H
#define RELAYD_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* RFC 4954 section 4: 12288 octets for a response line. */
#define AUTH_RESPONSE_MAX	12288

/*
 * Decode an AUTH PLAIN response ("authzid NUL authcid NUL passwd", base64
 * encoded).  Pure.  Returns 0 and fills user/pass (NUL-terminated), or:
 * -1 not base64 (501 5.5.2), -2 malformed or CR/LF/NUL inside a field,
 * or an authorization identity other than empty or the user (535 5.7.8).
 */
int	auth_plain_decode(const char *b64, size_t len, char *user,
	    size_t usercap, char *pass, size_t passcap);

struct auth_throttle;
struct auth_throttle *auth_throttle_new(void);
void	auth_throttle_free(struct auth_throttle *);
/* Delay in milliseconds to apply before answering a failure from this
 * address, doubling per failure up to max_ms; call after each failure. */
uint64_t auth_throttle_fail(struct auth_throttle *, const char *addr,
	    uint64_t max_ms, uint64_t now_ms);
void	auth_throttle_success(struct auth_throttle *, const char *addr);
/* Number of addresses remembered (tests). */
size_t	auth_throttle_count(const struct auth_throttle *);

#endif

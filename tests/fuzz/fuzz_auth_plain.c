/*
 * fuzz_auth_plain: libFuzzer target for auth_plain_decode().  A success
 * must give a non-empty user and a password that fit their buffers and hold
 * no CR, LF or NUL; the result may not depend on the output capacity
 * beyond "fits or not".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_field(const char *s, size_t cap, int nonempty)
{
	size_t	 n = strnlen(s, cap);

	if (n >= cap || (nonempty && n == 0) || strpbrk(s, "\r\n") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 user[256], pass[256], *bu, *bp;
	int	 rc, rc2;

	rc = auth_plain_decode((const char *)data, size, user, sizeof(user),
	    pass, sizeof(pass));
	if (rc != 0 && rc != -1 && rc != -2)
		abort();
	if (rc == 0) {
		check_field(user, sizeof(user), 1);
		check_field(pass, sizeof(pass), 0);
	}
	/* Large buffers: a success above must still succeed, same fields. */
	bu = malloc(AUTH_RESPONSE_MAX);
	bp = malloc(AUTH_RESPONSE_MAX);
	if (bu == NULL || bp == NULL)
		abort();
	rc2 = auth_plain_decode((const char *)data, size, bu,
	    AUTH_RESPONSE_MAX, bp, AUTH_RESPONSE_MAX);
	if (rc == 0 && (rc2 != 0 || strcmp(user, bu) != 0 ||
	    strcmp(pass, bp) != 0))
		abort();
	if (rc == -1 && rc2 != -1)
		abort();
	if (rc2 == 0) {
		check_field(bu, AUTH_RESPONSE_MAX, 1);
		check_field(bp, AUTH_RESPONSE_MAX, 0);
	}
	free(bu);
	free(bp);
	return 0;
}

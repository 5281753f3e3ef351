/*
 * test_auth: auth_plain_decode (RFC 4616) and the per-address failure
 * throttle, table-driven.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base64.h"
#include "tap.h"

struct plain_case {
	const char	*name;
	const char	*raw;		/* decoded bytes (NULs allowed) */
	size_t		 rawlen;
	const char	*b64;		/* used instead of raw when set */
	int		 want;
	const char	*user;
	const char	*pass;
};

#define RAW(s)	s, sizeof(s) - 1

static const struct plain_case plain_cases[] = {
	{ "no authzid", RAW("\0alice\0secret"), NULL, 0, "alice", "secret" },
	{ "authzid = user", RAW("alice\0alice\0secret"), NULL, 0, "alice",
	    "secret" },
	{ "authzid other", RAW("bob\0alice\0secret"), NULL, -2, NULL, NULL },
	{ "authzid prefix of user", RAW("alic\0alice\0pw"), NULL, -2, NULL,
	    NULL },
	{ "empty password", RAW("\0alice\0"), NULL, 0, "alice", "" },
	{ "password with spaces", RAW("\0alice\0a b c"), NULL, 0, "alice",
	    "a b c" },
	{ "8-bit password", RAW("\0alice\0p\xc3\xa4ss"), NULL, 0, "alice",
	    "p\xc3\xa4ss" },
	{ "empty user", RAW("\0\0secret"), NULL, -2, NULL, NULL },
	{ "one NUL", RAW("alice\0secret"), NULL, -2, NULL, NULL },
	{ "no NUL", RAW("alicesecret"), NULL, -2, NULL, NULL },
	{ "three NULs", RAW("\0alice\0sec\0ret"), NULL, -2, NULL, NULL },
	{ "trailing NUL", RAW("\0alice\0secret\0"), NULL, -2, NULL, NULL },
	{ "CR in user", RAW("\0al\rice\0secret"), NULL, -2, NULL, NULL },
	{ "LF in user", RAW("\0al\nice\0secret"), NULL, -2, NULL, NULL },
	{ "CR in password", RAW("\0alice\0sec\rret"), NULL, -2, NULL, NULL },
	{ "LF in password", RAW("\0alice\0secret\n"), NULL, -2, NULL, NULL },
	{ "CRLF in authzid", RAW("al\r\nice\0alice\0pw"), NULL, -2, NULL,
	    NULL },
	{ "empty", RAW(""), NULL, -2, NULL, NULL },
	{ "bad base64 chars", NULL, 0, "AGFsaWNl*HNlY3JldA==", -1, NULL,
	    NULL },
	{ "bad base64 length", NULL, 0, "AGFsaWNlAHNlY3JldA=", -1, NULL,
	    NULL },
	{ "base64 with space", NULL, 0, "AGFsaWNl AHNlY3JldA==", -1, NULL,
	    NULL },
	{ "base64 padding inside", NULL, 0, "AG==aWNlAHNlY3JldA==", -1, NULL,
	    NULL },
	{ "good literal", NULL, 0, "AGFsaWNlAHNlY3JldA==", 0, "alice",
	    "secret" },
};

static void
test_plain(void)
{
	char	 b64[AUTH_RESPONSE_MAX + 8], user[65], pass[256];
	size_t	 i;
	int	 rc;

	for (i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const struct plain_case *c = &plain_cases[i];

		if (c->b64 != NULL)
			snprintf(b64, sizeof(b64), "%s", c->b64);
		else
			base64_encode(c->raw, c->rawlen, b64);
		memset(user, 'X', sizeof(user));
		memset(pass, 'X', sizeof(pass));
		rc = auth_plain_decode(b64, strlen(b64), user, sizeof(user),
		    pass, sizeof(pass));
		ok(rc == c->want, "plain %s: rc %d want %d", c->name, rc,
		    c->want);
		if (c->want == 0 && rc == 0) {
			ok(strcmp(user, c->user) == 0, "plain %s: user",
			    c->name);
			ok(strcmp(pass, c->pass) == 0, "plain %s: password",
			    c->name);
		}
	}
}

static void
test_plain_limits(void)
{
	char	 raw[10000], b64[16000], user[65], pass[10000];
	size_t	 n;
	int	 rc;

	/* A user name longer than the buffer is refused, not cut. */
	memset(raw, 0, sizeof(raw));
	memset(raw + 1, 'u', 100);
	memcpy(raw + 102, "pw", 2);
	base64_encode(raw, 104, b64);
	rc = auth_plain_decode(b64, strlen(b64), user, sizeof(user), pass,
	    sizeof(pass));
	ok(rc == -2, "user longer than its buffer: rc %d", rc);

	/* The largest response (12288 characters) decodes. */
	n = AUTH_RESPONSE_MAX / 4 * 3;
	memset(raw, 'p', n);
	raw[0] = '\0';
	memcpy(raw + 1, "alice", 5);
	raw[6] = '\0';
	base64_encode(raw, n, b64);
	ok(strlen(b64) == AUTH_RESPONSE_MAX, "max response is %d chars",
	    AUTH_RESPONSE_MAX);
	rc = auth_plain_decode(b64, strlen(b64), user, sizeof(user), pass,
	    sizeof(pass));
	ok(rc == 0 && strlen(pass) == n - 7, "max response decodes: rc %d",
	    rc);

	/* One more quantum is refused. */
	memcpy(b64 + AUTH_RESPONSE_MAX, "cGFz", 5);
	rc = auth_plain_decode(b64, strlen(b64), user, sizeof(user), pass,
	    sizeof(pass));
	ok(rc == -1, "response over AUTH_RESPONSE_MAX: rc %d", rc);
}

struct throttle_step {
	const char	*addr;
	int		 success;	/* 1: success instead of a failure */
	uint64_t	 at_ms;
	uint64_t	 want_ms;
};

static const struct throttle_step throttle_steps[] = {
	{ "192.0.2.1", 0, 0, 1000 },
	{ "192.0.2.1", 0, 100, 2000 },
	{ "192.0.2.1", 0, 200, 4000 },
	{ "192.0.2.1", 0, 300, 8000 },
	{ "192.0.2.1", 0, 400, 15000 },	/* capped */
	{ "192.0.2.1", 0, 500, 15000 },
	{ "2001:db8::1", 0, 600, 1000 },	/* other address: own count */
	{ "192.0.2.1", 1, 700, 0 },		/* success resets */
	{ "192.0.2.1", 0, 800, 1000 },
	{ "2001:db8::1", 0, 900, 2000 },
	/* Idle for more than 4 * max: forgotten. */
	{ "2001:db8::1", 0, 900 + 60001, 1000 },
};

static void
test_throttle(void)
{
	struct auth_throttle	*t;
	uint64_t		 d;
	size_t			 i;
	char			 addr[64];

	ok((t = auth_throttle_new()) != NULL, "throttle_new");
	for (i = 0; i < sizeof(throttle_steps) / sizeof(throttle_steps[0]);
	    i++) {
		const struct throttle_step *st = &throttle_steps[i];

		if (st->success) {
			auth_throttle_success(t, st->addr);
			ok(1, "step %zu: success %s", i, st->addr);
			continue;
		}
		d = auth_throttle_fail(t, st->addr, 15000, st->at_ms);
		ok(d == st->want_ms, "step %zu: %s delay %llu want %llu", i,
		    st->addr, (unsigned long long)d,
		    (unsigned long long)st->want_ms);
	}
	ok(auth_throttle_count(t) == 2, "two addresses remembered: %zu",
	    auth_throttle_count(t));
	auth_throttle_free(t);

	/* A cap below the first step. */
	t = auth_throttle_new();
	d = auth_throttle_fail(t, "198.51.100.7", 500, 0);
	ok(d == 500, "cap below first delay: %llu", (unsigned long long)d);
	auth_throttle_free(t);

	/* Bounded: many addresses never take the table past its maximum. */
	t = auth_throttle_new();
	for (i = 0; i < 70000; i++) {
		snprintf(addr, sizeof(addr), "10.%zu.%zu.%zu", i >> 16,
		    (i >> 8) & 255, i & 255);
		auth_throttle_fail(t, addr, 15000, 1000 + i);
	}
	ok(auth_throttle_count(t) <= 65536, "table bounded: %zu",
	    auth_throttle_count(t));
	/* The newest address is still there (its delay doubles). */
	d = auth_throttle_fail(t, addr, 15000, 1000 + i);
	ok(d == 2000, "newest address kept: %llu", (unsigned long long)d);
	auth_throttle_free(t);
	auth_throttle_free(NULL);
	ok(1, "throttle_free(NULL)");
}

int
main(void)
{
	test_plain();
	test_plain_limits();
	test_throttle();
	return tap_done();
}

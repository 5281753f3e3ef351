/*
 * auth: the pure part of SMTP AUTH PLAIN (RFC 4616) decoding and the
 * per-address failure delay table.
 *
 * The throttle table is a chained hash keyed by the client address string.
 * It owns its entries.  An entry is forgotten on success, after
 * 4 * max_ms without a failure, or when the table is full (at most
 * THROTTLE_MAX entries; expired entries are swept first, then the oldest
 * entry of a bucket is evicted).  Memory is bounded by THROTTLE_MAX.
 * Loop thread only: no locks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base64.h"

#define THROTTLE_BUCKETS	4096
#define THROTTLE_MAX		65536
#define THROTTLE_ADDR_MAX	64
#define THROTTLE_FIRST_MS	1000	/* 1 s, 2 s, 4 s, 8 s, then the cap */

/* Decoded PLAIN response: 12288 base64 characters hold 9216 octets. */
#define AUTH_DECODED_MAX	(AUTH_RESPONSE_MAX / 4 * 3)

static int
auth_field_ok(const char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return 0;
	return 1;
}

int
auth_plain_decode(const char *b64, size_t len, char *user, size_t usercap,
    char *pass, size_t passcap)
{
	char		*d;
	const char	*z, *c, *pw, *end, *nul1, *nul2;
	size_t		 n, zlen, clen, plen;
	int		 rc = -2;

	if (len > AUTH_RESPONSE_MAX)
		return -1;
	if ((d = malloc(AUTH_DECODED_MAX + 1)) == NULL)
		return -2;
	if (base64_decode(b64, len, d, AUTH_DECODED_MAX, &n) == -1) {
		rc = -1;
		goto out;
	}
	/* RFC 4616 section 2: [authzid] NUL authcid NUL passwd. */
	end = d + n;
	if ((nul1 = memchr(d, '\0', n)) == NULL)
		goto out;
	if ((nul2 = memchr(nul1 + 1, '\0', end - nul1 - 1)) == NULL)
		goto out;
	if (memchr(nul2 + 1, '\0', end - nul2 - 1) != NULL)
		goto out;		/* a third NUL */
	z = d;
	zlen = nul1 - d;
	c = nul1 + 1;
	clen = nul2 - c;
	pw = nul2 + 1;
	plen = end - pw;
	if (clen == 0 || !auth_field_ok(z, zlen) || !auth_field_ok(c, clen) ||
	    !auth_field_ok(pw, plen))
		goto out;
	/* An authorization identity other than empty or the user. */
	if (zlen != 0 && (zlen != clen || memcmp(z, c, clen) != 0))
		goto out;
	if (clen >= usercap || plen >= passcap)
		goto out;
	memcpy(user, c, clen);
	user[clen] = '\0';
	memcpy(pass, pw, plen);
	pass[plen] = '\0';
	rc = 0;
out:
	explicit_bzero(d, AUTH_DECODED_MAX + 1);
	free(d);
	return rc;
}

struct throttle_entry {
	struct throttle_entry	*next;
	uint64_t		 last_ms;	/* time of the last failure */
	uint64_t		 delay_ms;	/* last delay given */
	uint64_t		 expire_ms;	/* idle time after which forgotten */
	char			 addr[THROTTLE_ADDR_MAX];
};

struct auth_throttle {
	struct throttle_entry	*b[THROTTLE_BUCKETS];
	size_t			 n;
};

static unsigned
throttle_hash(const char *s)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % THROTTLE_BUCKETS;
}

struct auth_throttle *
auth_throttle_new(void)
{
	return calloc(1, sizeof(struct auth_throttle));
}

void
auth_throttle_free(struct auth_throttle *t)
{
	struct throttle_entry	*e, *next;
	size_t			 i;

	if (t == NULL)
		return;
	for (i = 0; i < THROTTLE_BUCKETS; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(t);
}

static void
throttle_sweep(struct auth_throttle *t, uint64_t now_ms)
{
	struct throttle_entry	**pp, *e;
	size_t			 i;

	for (i = 0; i < THROTTLE_BUCKETS; i++) {
		pp = &t->b[i];
		while ((e = *pp) != NULL) {
			if (now_ms - e->last_ms > e->expire_ms) {
				*pp = e->next;
				free(e);
				t->n--;
			} else
				pp = &e->next;
		}
	}
}

static void
throttle_evict(struct auth_throttle *t, unsigned h)
{
	struct throttle_entry	**pp, **oldest = NULL, *e;
	size_t			 i;

	/* The oldest entry of this bucket, or else of the first non-empty. */
	for (i = 0; i < THROTTLE_BUCKETS && oldest == NULL; i++) {
		for (pp = &t->b[(h + i) % THROTTLE_BUCKETS]; *pp != NULL;
		    pp = &(*pp)->next)
			if (oldest == NULL || (*pp)->last_ms < (*oldest)->last_ms)
				oldest = pp;
	}
	if (oldest == NULL)
		return;
	e = *oldest;
	*oldest = e->next;
	free(e);
	t->n--;
}

uint64_t
auth_throttle_fail(struct auth_throttle *t, const char *addr,
    uint64_t max_ms, uint64_t now_ms)
{
	struct throttle_entry	*e;
	unsigned		 h;
	size_t			 len;

	if (t == NULL || addr == NULL)
		return max_ms < THROTTLE_FIRST_MS ? max_ms : THROTTLE_FIRST_MS;
	len = strnlen(addr, THROTTLE_ADDR_MAX);
	h = throttle_hash(addr);
	for (e = t->b[h]; e != NULL; e = e->next)
		if (strncmp(e->addr, addr, THROTTLE_ADDR_MAX - 1) == 0)
			break;
	if (e != NULL && now_ms - e->last_ms > e->expire_ms)
		e->delay_ms = 0;	/* idle long enough: start over */
	if (e == NULL) {
		if (t->n >= THROTTLE_MAX) {
			throttle_sweep(t, now_ms);
			if (t->n >= THROTTLE_MAX)
				throttle_evict(t, h);
		}
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return max_ms;	/* be strict when short of memory */
		if (len >= THROTTLE_ADDR_MAX)
			len = THROTTLE_ADDR_MAX - 1;
		memcpy(e->addr, addr, len);
		e->addr[len] = '\0';
		e->next = t->b[h];
		t->b[h] = e;
		t->n++;
	}
	if (e->delay_ms == 0)
		e->delay_ms = THROTTLE_FIRST_MS;
	else if (e->delay_ms > UINT64_MAX / 2)
		e->delay_ms = UINT64_MAX;
	else
		e->delay_ms *= 2;
	if (e->delay_ms > max_ms)
		e->delay_ms = max_ms;
	e->last_ms = now_ms;
	e->expire_ms = max_ms > UINT64_MAX / 4 ? UINT64_MAX : max_ms * 4;
	if (e->expire_ms < 4 * THROTTLE_FIRST_MS)
		e->expire_ms = 4 * THROTTLE_FIRST_MS;
	return e->delay_ms;
}

void
auth_throttle_success(struct auth_throttle *t, const char *addr)
{
	struct throttle_entry	**pp, *e;

	if (t == NULL || addr == NULL)
		return;
	for (pp = &t->b[throttle_hash(addr)]; (e = *pp) != NULL;
	    pp = &e->next)
		if (strncmp(e->addr, addr, THROTTLE_ADDR_MAX - 1) == 0) {
			*pp = e->next;
			free(e);
			t->n--;
			return;
		}
}

/* Number of addresses remembered (tests). */
size_t
auth_throttle_count(const struct auth_throttle *t)
{
	return t == NULL ? 0 : t->n;
}

/*
 * test_envelope: the spool record format.  Round trips (also with CR, LF
 * and NUL inside values), every truncation of a valid file, and a table of
 * hand-made files that must or must not parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "tap.h"

#define M	ENVELOPE_MAGIC

static void
env_fill(struct envelope *e, const char *id, const char *from,
    const char *const *rcpts, size_t n)
{
	size_t	 i;

	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->time = 1795000000;
	e->user = strdup("alice");
	e->client = strdup("127.0.0.1");
	e->helo = strdup("client.test");
	e->mail_from = strdup(from);
	e->flags = ENVELOPE_FLAG_8BIT;
	for (i = 0; i < n; i++)
		envelope_add_rcpt(e, rcpts[i]);
}

static int
env_equal(const struct envelope *a, const struct envelope *b)
{
	size_t	 i;

	if (strcmp(a->id, b->id) != 0 || a->time != b->time ||
	    strcmp(a->user, b->user) != 0 ||
	    strcmp(a->client, b->client) != 0 ||
	    strcmp(a->helo, b->helo) != 0 ||
	    strcmp(a->mail_from, b->mail_from) != 0 ||
	    a->flags != b->flags || a->nrcpts != b->nrcpts)
		return 0;
	if ((a->bounce_domain == NULL) != (b->bounce_domain == NULL) ||
	    (a->bounce_domain != NULL &&
	    strcmp(a->bounce_domain, b->bounce_domain) != 0))
		return 0;
	for (i = 0; i < a->nrcpts; i++)
		if (strcmp(a->rcpts[i], b->rcpts[i]) != 0)
			return 0;
	return 1;
}

static int
parses(const void *p, size_t n)
{
	struct envelope	 e;
	const char	*body;
	size_t		 blen;

	if (envelope_parse(p, n, &e, &body, &blen) == -1)
		return 0;
	envelope_clear(&e);
	return 1;
}

/* Round trips: values that would break a line-based format. */
struct rt_case {
	const char	*name;
	const char	*from;
	const char	*rcpts[3];
	size_t		 nrcpts;
	const char	*helo;
	const char	*body;
	size_t		 bodylen;
};

static const struct rt_case rt_cases[] = {
	{ "plain", "alice@own-domain.com", { "bob@example.org" }, 1,
	    "client.test", "Subject: x\r\n\r\nhi\r\n", 19 },
	{ "null sender, empty body", "", { "a@b.c", "d@e.f" }, 2,
	    "h", "", 0 },
	{ "LF in values injects nothing", "a@b.c\nrcpt 5\nevil@x",
	    { "x@y\nend 0\n", "z@w" }, 2, "helo\nbody 3\n", "a\nb", 3 },
	{ "CR LF in values", "a\r\nb", { "\r\n.\r\n" }, 1, "\r",
	    "line\r\n.\r\nmore\r\n", 0 },
	{ "NUL in body", "a@b.c", { "r@s.t" }, 1, "h",
	    "a\0b\nend 3\n\0", 11 },
	{ "body that looks like records", "a@b.c", { "r@s.t" }, 1, "h",
	    "\nend 10\n" M "id 1\nX\n", 0 },
};

static void
test_round_trips(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
		const struct rt_case	*c = &rt_cases[i];
		struct envelope		 a, b;
		struct buf		 out, parts;
		const char		*body;
		size_t			 blen, bl = c->bodylen;

		if (bl == 0)
			bl = strlen(c->body);
		env_fill(&a, "0123456789abcdef", c->from, c->rcpts, c->nrcpts);
		free(a.helo);
		a.helo = strdup(c->helo);
		if (i % 2 == 1)
			a.bounce_domain = strdup("bounces.own-domain.com");
		buf_init(&out, 1 << 20);
		ok(envelope_serialize(&a, c->body, bl, &out) == 0,
		    "%s: serialize", c->name);
		ok(envelope_parse(out.data, out.len, &b, &body, &blen) == 0,
		    "%s: parse", c->name);
		ok(env_equal(&a, &b) && blen == bl &&
		    memcmp(body, c->body, bl) == 0, "%s: same values back",
		    c->name);
		envelope_clear(&b);

		/* Head + body + tail written apart give the same bytes. */
		buf_init(&parts, 1 << 20);
		envelope_write_head(&a, bl, &parts);
		buf_append(&parts, c->body, bl);
		envelope_write_tail(parts.len, &parts);
		ok(parts.len == out.len &&
		    memcmp(parts.data, out.data, out.len) == 0,
		    "%s: head/body/tail equals serialize", c->name);

		/* Every truncation point fails. */
		{
			size_t	 k, bad = 0;

			for (k = 0; k < out.len; k++)
				if (parses(out.data, k))
					bad++;
			ok(bad == 0, "%s: all %zu truncations refused",
			    c->name, out.len);
		}
		/* Flipping the end offset or adding a byte fails. */
		buf_append(&out, "\n", 1);
		ok(!parses(out.data, out.len), "%s: trailing byte refused",
		    c->name);
		buf_clear(&out);
		buf_clear(&parts);
		envelope_clear(&a);
	}
}

/* Hand-made files. */
struct raw_case {
	const char	*name;
	const char	*text;
	int		 good;
};

#define ENV_HEAD	M "id 4\nABCD\ntime 1\n7\nuser 0\n\nclient 1\nc\n" \
			"helo 1\nh\nfrom 0\n\nflags 1\n0\n"

static const struct raw_case raw_cases[] = {
	/* ENV_HEAD is 80 bytes; "rcpt 1\nr\nbody 2\nhi\n" is 19 more. */
	{ "minimal valid", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nend 2\n99\n", 1 },
	{ "unknown tag skipped", M "xtra 3\nabc\n"
	    "id 4\nABCD\ntime 1\n7\nuser 0\n\nclient 1\nc\n"
	    "helo 1\nh\nfrom 0\n\nflags 1\n0\nnew 0\n\n"
	    "rcpt 1\nr\nbody 2\nhi\nend 3\n117\n", 1 },
	{ "bounce after rcpt", ENV_HEAD "rcpt 1\nr\nbounce 5\nb.c.d\n"
	    "body 2\nhi\nend 3\n114\n", 1 },
	{ "bounce before rcpt", ENV_HEAD "bounce 5\nb.c.d\nrcpt 1\nr\n"
	    "body 2\nhi\nend 3\n114\n", 0 },
	{ "rcpt after bounce", ENV_HEAD "rcpt 1\nr\nbounce 5\nb.c.d\n"
	    "rcpt 1\nr\nbody 2\nhi\nend 3\n123\n", 0 },
	{ "bounce twice", ENV_HEAD "rcpt 1\nr\nbounce 1\nb\nbounce 1\nb\n"
	    "body 2\nhi\nend 3\n119\n", 0 },
	{ "bad magic", "RELAYD-SPOOL 2\nid 4\nABCD\n", 0 },
	{ "empty file", "", 0 },
	{ "magic only", M, 0 },
	{ "leading zero length", M "id 04\nABCD\n", 0 },
	{ "leading zero end", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nend 4\n0099\n",
	    0 },
	{ "huge length", M "id 99999999999999999999\nABCD\n", 0 },
	{ "21 digit length", M "id 100000000000000000000\nABCD\n", 0 },
	{ "overflowing length", ENV_HEAD "rcpt 18446744073709551615\nr\n", 0 },
	{ "length past end", ENV_HEAD "rcpt 9\nr\n", 0 },
	{ "missing value newline", ENV_HEAD "rcpt 1\nrXbody 2\nhi\n"
	    "end 2\n99\n", 0 },
	{ "missing end", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\n", 0 },
	{ "wrong end offset", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nend 2\n98\n",
	    0 },
	{ "trailing junk", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nend 2\n99\nx", 0 },
	{ "no recipient", ENV_HEAD "body 2\nhi\nend 2\n90\n", 0 },
	{ "empty recipient", ENV_HEAD "rcpt 0\n\nbody 2\nhi\nend 2\n98\n", 0 },
	{ "out of order", M "time 1\n7\nid 4\nABCD\n", 0 },
	{ "id twice", M "id 4\nABCD\nid 4\nABCD\n", 0 },
	{ "body twice", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nbody 0\n\n"
	    "end 3\n107\n", 0 },
	{ "unknown tag after body", ENV_HEAD "rcpt 1\nr\nbody 2\nhi\nx 0\n\n"
	    "end 3\n104\n", 0 },
	{ "upper-case tag", M "ID 4\nABCD\n", 0 },
	{ "no space", M "id4\nABCD\n", 0 },
	{ "sign in length", M "id +4\nABCD\n", 0 },
	{ "empty length", M "id \nABCD\n", 0 },
	{ "bad id chars", M "id 4\nAB/D\ntime 1\n7\n", 0 },
	{ "NUL in from", M "id 4\nABCD\ntime 1\n7\nuser 0\n\nclient 1\nc\n"
	    "helo 1\nh\nfrom 1\n\0\nflags 1\n0\nrcpt 1\nr\nbody 2\nhi\n"
	    "end 3\n100\n", 0 },
	{ "time not a number", M "id 4\nABCD\ntime 1\nx\n", 0 },
};

static void
test_raw(void)
{
	size_t	 i, n;

	for (i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *c = &raw_cases[i];

		/* The NUL case needs its true length. */
		n = strlen(c->text);
		if (strcmp(c->name, "NUL in from") == 0)
			n = sizeof(M "id 4\nABCD\ntime 1\n7\nuser 0\n\nclient 1\nc\n"
			    "helo 1\nh\nfrom 1\n\0\nflags 1\n0\nrcpt 1\nr\n"
			    "body 2\nhi\nend 3\n100\n") - 1;
		ok(parses(c->text, n) == c->good, "raw: %s", c->name);
	}
}

/* Serializing into a buffer too small fails and leaves it intact. */
static void
test_limits(void)
{
	struct envelope	 a;
	struct buf	 out;
	const char	*r[] = { "x@y" };

	env_fill(&a, "ABC", "a@b", r, 1);
	buf_init(&out, 40);
	buf_append(&out, "keep", 4);
	ok(envelope_serialize(&a, "body", 4, &out) == -1 && out.len == 4 &&
	    memcmp(out.data, "keep", 4) == 0, "serialize over max leaves buf");
	ok(envelope_write_head(&a, 4, &out) == -1 && out.len == 4,
	    "write_head over max leaves buf");
	buf_clear(&out);
	envelope_clear(&a);
	envelope_clear(NULL);
	ok(1, "envelope_clear(NULL) is a no-op");
}

int
main(void)
{
	test_round_trips();
	test_raw();
	test_limits();
	return tap_done();
}

/*
 * envelope: the spool file format (see envelope.h), a pure serializer and
 * a strict parser.  No I/O, no globals; the parser only reads the bytes it
 * is given and allocates the strings of the envelope it fills.
 *
 * Limits: a length is at most ENVELOPE_LEN_DIGITS decimal digits without
 * leading zeros and never larger than the bytes that remain; string values
 * (everything but the body) may not contain NUL, since they become C
 * strings; the queue ID is 1..ENVELOPE_ID_MAX letters and digits, so it is
 * always a safe file name.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "num.h"

#define ENVELOPE_LEN_DIGITS	20	/* UINT64_MAX has 20 digits */
#define ENVELOPE_TAG_MAX	32

void
envelope_clear(struct envelope *env)
{
	size_t	 i;

	if (env == NULL)
		return;
	free(env->user);
	free(env->client);
	free(env->helo);
	free(env->mail_from);
	for (i = 0; i < env->nrcpts; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	free(env->bounce_domain);
	env->bounce_domain = NULL;
	env->user = env->client = env->helo = env->mail_from = NULL;
	env->rcpts = NULL;
	env->nrcpts = 0;
}

int
envelope_add_rcpt(struct envelope *env, const char *rcpt)
{
	char	**n;
	char	 *s;

	if (env->nrcpts >= SIZE_MAX / sizeof(*n) - 1)
		return -1;
	if ((s = strdup(rcpt)) == NULL)
		return -1;
	if ((n = realloc(env->rcpts, (env->nrcpts + 1) * sizeof(*n))) == NULL) {
		free(s);
		return -1;
	}
	n[env->nrcpts++] = s;
	env->rcpts = n;
	return 0;
}

/* Append one record: TAG ' ' LENGTH '\n' BYTES '\n'. */
static int
envelope_record(struct buf *out, const char *tag, const void *p, size_t n)
{
	if (buf_appendf(out, "%s %zu\n", tag, n) == -1 ||
	    buf_append(out, p, n) == -1 ||
	    buf_append(out, "\n", 1) == -1)
		return -1;
	return 0;
}

static int
envelope_record_str(struct buf *out, const char *tag, const char *s)
{
	if (s == NULL)
		s = "";
	return envelope_record(out, tag, s, strlen(s));
}

int
envelope_write_head(const struct envelope *env, size_t bodylen,
    struct buf *out)
{
	struct buf	 save = *out;
	char		 num[32];
	size_t		 i;
	int		 n;

	if (buf_append(out, ENVELOPE_MAGIC, sizeof(ENVELOPE_MAGIC) - 1) == -1)
		goto fail;
	if (envelope_record_str(out, "id", env->id) == -1)
		goto fail;
	n = snprintf(num, sizeof(num), "%lld", (long long)env->time);
	if (n < 0 || (size_t)n >= sizeof(num) ||
	    envelope_record(out, "time", num, (size_t)n) == -1)
		goto fail;
	if (envelope_record_str(out, "user", env->user) == -1 ||
	    envelope_record_str(out, "client", env->client) == -1 ||
	    envelope_record_str(out, "helo", env->helo) == -1 ||
	    envelope_record_str(out, "from", env->mail_from) == -1)
		goto fail;
	n = snprintf(num, sizeof(num), "%u", env->flags);
	if (n < 0 || (size_t)n >= sizeof(num) ||
	    envelope_record(out, "flags", num, (size_t)n) == -1)
		goto fail;
	for (i = 0; i < env->nrcpts; i++)
		if (envelope_record_str(out, "rcpt", env->rcpts[i]) == -1)
			goto fail;
	if (env->bounce_domain != NULL &&
	    envelope_record_str(out, "bounce", env->bounce_domain) == -1)
		goto fail;
	if (buf_appendf(out, "body %zu\n", bodylen) == -1)
		goto fail;
	return 0;
fail:
	/* Leave the buffer as it was (its memory may have grown). */
	out->len = save.len;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return -1;
}

int
envelope_write_tail(size_t head_and_body_len, struct buf *out)
{
	size_t	 save = out->len;
	char	 num[32];
	int	 n;

	/* The end record starts after the '\n' that closes the body. */
	if (head_and_body_len == SIZE_MAX)
		return -1;
	n = snprintf(num, sizeof(num), "%zu", head_and_body_len + 1);
	if (n < 0 || (size_t)n >= sizeof(num))
		return -1;
	if (buf_append(out, "\n", 1) == -1 ||
	    envelope_record(out, "end", num, (size_t)n) == -1) {
		out->len = save;
		if (out->data != NULL)
			out->data[save] = '\0';
		return -1;
	}
	return 0;
}

int
envelope_serialize(const struct envelope *env, const void *body,
    size_t bodylen, struct buf *out)
{
	size_t	 save = out->len;

	if (envelope_write_head(env, bodylen, out) == -1)
		return -1;
	if (buf_append(out, body, bodylen) == -1 ||
	    envelope_write_tail(out->len - save, out) == -1) {
		out->len = save;
		if (out->data != NULL)
			out->data[save] = '\0';
		return -1;
	}
	return 0;
}

/*
 * Parsing.  A cursor over the whole file; each step reads one record and
 * checks its framing against the bytes that remain.
 */
struct rec {
	char		 tag[ENVELOPE_TAG_MAX + 1];
	const char	*val;
	size_t		 len;
	size_t		 start;		/* offset of the record's first byte */
};

/* Decimal without leading zeros, at most ENVELOPE_LEN_DIGITS digits. */
static int
envelope_decimal(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > ENVELOPE_LEN_DIGITS || (n > 1 && s[0] == '0'))
		return -1;
	return num_digits(s, n, out);
}

/* Read the record at *off; advance *off past it.  Returns 0 or -1. */
static int
envelope_next(const char *p, size_t n, size_t *off, struct rec *r)
{
	size_t		 i = *off, t = 0, d;
	uint64_t	 len;

	r->start = i;
	while (i < n && p[i] >= 'a' && p[i] <= 'z') {
		if (t == ENVELOPE_TAG_MAX)
			return -1;
		r->tag[t++] = p[i++];
	}
	r->tag[t] = '\0';
	if (t == 0 || i >= n || p[i] != ' ')
		return -1;
	i++;
	for (d = i; i < n && i - d <= ENVELOPE_LEN_DIGITS && p[i] != '\n'; i++)
		;
	if (i >= n || p[i] != '\n' || envelope_decimal(p + d, i - d, &len) == -1)
		return -1;
	i++;
	/* The value and its closing '\n' must fit in what remains. */
	if (len > n - i || n - i - len < 1)
		return -1;
	r->val = p + i;
	r->len = (size_t)len;
	i += (size_t)len;
	if (p[i] != '\n')
		return -1;
	*off = i + 1;
	return 0;
}

/* A copy of a string value; NUL inside is refused. */
static int
envelope_str(const struct rec *r, char **out)
{
	char	*s;

	if (memchr(r->val, '\0', r->len) != NULL)
		return -1;
	if ((s = malloc(r->len + 1)) == NULL)
		return -1;
	memcpy(s, r->val, r->len);
	s[r->len] = '\0';
	free(*out);
	*out = s;
	return 0;
}

/* The known tags, in file order. */
enum env_field {
	F_ID = 0, F_TIME, F_USER, F_CLIENT, F_HELO, F_FROM, F_FLAGS, F_RCPT,
	F_BODY, F_END, F_BOUNCE, F_UNKNOWN,
};

static const char *const env_tags[] = {
	"id", "time", "user", "client", "helo", "from", "flags", "rcpt",
	"body", "end", "bounce",
};

static enum env_field
envelope_field(const char *tag)
{
	size_t	 i;

	for (i = 0; i < sizeof(env_tags) / sizeof(env_tags[0]); i++)
		if (strcmp(tag, env_tags[i]) == 0)
			return (enum env_field)i;
	return F_UNKNOWN;
}

int
envelope_parse(const void *vp, size_t n, struct envelope *env,
    const char **body, size_t *bodylen)
{
	const char	*p = vp;
	struct envelope	 e;
	struct rec	 r;
	enum env_field	 f, want = F_ID;
	const char	*b = NULL;
	size_t		 off, blen = 0, i;
	uint64_t	 v;

	memset(&e, 0, sizeof(e));
	if (n < sizeof(ENVELOPE_MAGIC) - 1 ||
	    memcmp(p, ENVELOPE_MAGIC, sizeof(ENVELOPE_MAGIC) - 1) != 0)
		return -1;
	off = sizeof(ENVELOPE_MAGIC) - 1;
	for (;;) {
		if (off >= n || envelope_next(p, n, &off, &r) == -1)
			goto fail;
		f = envelope_field(r.tag);
		if (f == F_UNKNOWN) {
			/* Newer versions may add tags before the body. */
			if (want > F_BODY)
				goto fail;
			continue;
		}
		/* rcpt repeats; every other tag comes once, in order; the
		 * optional bounce comes once between the rcpts and the body. */
		if (f == F_BOUNCE) {
			if (want != F_BODY || e.nrcpts == 0 ||
			    e.bounce_domain != NULL ||
			    envelope_str(&r, &e.bounce_domain) == -1)
				goto fail;
			continue;
		}
		if (f == F_RCPT && want == F_BODY && e.nrcpts > 0 &&
		    e.bounce_domain == NULL)
			want = F_RCPT;
		if (f != want)
			goto fail;
		switch (f) {
		case F_ID:
			if (r.len == 0 || r.len > ENVELOPE_ID_MAX)
				goto fail;
			for (i = 0; i < r.len; i++) {
				unsigned char c = (unsigned char)r.val[i];

				if (!((c >= '0' && c <= '9') ||
				    (c >= 'a' && c <= 'z') ||
				    (c >= 'A' && c <= 'Z')))
					goto fail;
			}
			memcpy(e.id, r.val, r.len);
			e.id[r.len] = '\0';
			break;
		case F_TIME:
			if (envelope_decimal(r.val, r.len, &v) == -1 ||
			    v > INT64_MAX)
				goto fail;
			e.time = (int64_t)v;
			break;
		case F_USER:
			if (envelope_str(&r, &e.user) == -1)
				goto fail;
			break;
		case F_CLIENT:
			if (envelope_str(&r, &e.client) == -1)
				goto fail;
			break;
		case F_HELO:
			if (envelope_str(&r, &e.helo) == -1)
				goto fail;
			break;
		case F_FROM:
			if (envelope_str(&r, &e.mail_from) == -1)
				goto fail;
			break;
		case F_FLAGS:
			if (envelope_decimal(r.val, r.len, &v) == -1 ||
			    v > UINT_MAX)
				goto fail;
			e.flags = (unsigned)v;
			break;
		case F_RCPT: {
			char	*s = NULL;

			if (r.len == 0 || envelope_str(&r, &s) == -1)
				goto fail;
			if (envelope_add_rcpt(&e, s) == -1) {
				free(s);
				goto fail;
			}
			free(s);
			break;
		}
		case F_BODY:
			b = r.val;
			blen = r.len;
			break;
		case F_END:
			/* Its value is its own offset; nothing may follow. */
			if (envelope_decimal(r.val, r.len, &v) == -1 ||
			    v != r.start || off != n)
				goto fail;
			*env = e;
			*body = b;
			*bodylen = blen;
			return 0;
		default:
			goto fail;
		}
		if (f != F_RCPT)
			want = f + 1;
		else
			want = F_BODY;	/* or another rcpt, see above */
	}
fail:
	envelope_clear(&e);
	return -1;
}

/*
 * dkim_sign: the streaming DKIM signer (RFC 6376, RFC 8463).  See
 * dkim_sign.h for the call order, the tags, h= and the folding.
 *
 * Owns: a copy of the header section (bounded by DKIM_SIGN_HEADER_MAX), one
 * body canonicalizer and SHA-256 context per distinct body
 * canonicalization, a reference to each key, and the finished fields.  The
 * body itself is never stored.  Header hashing and the private-key
 * operation happen in dkim_sign_end_body(), which is the expensive call
 * (about one private-key operation per signature).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "dkim_canon.h"
#include "dkim_sign.h"

#define NO_FIELD	((size_t)-1)
#define HLIST_MAX	4096		/* bytes of one h= value */
#define SIG_MAX		1024		/* signature bytes (RSA 8192) */
#define IDENTITY_MAX	300		/* i= octets (64 + @ + 253, rounded) */

/* RFC 6376 5.4.1 plus the fields relayd oversigns (see dkim_sign.h). */
static const char *const oversigned[] = {
	"from", "sender", "reply-to", "subject", "date", "message-id", "to",
	"cc", "mime-version", "content-type", "content-transfer-encoding",
	"in-reply-to", "references", "list-id", "list-help",
	"list-unsubscribe", "list-subscribe", "list-post", "list-owner",
	"list-archive", "list-unsubscribe-post",
};
static const char *const signed_once[] = {
	"resent-date", "resent-from", "resent-to", "resent-cc",
};
/* Never signed (RFC 6376 5.4: fields that change in transit). */
static const char *const never_signed[] = {
	"return-path", "received", "dkim-signature",
};

struct dkim_field {
	size_t		 off;		/* into hdr */
	size_t		 len;
	size_t		 namelen;	/* name at off */
};

struct dkim_sig {
	char		*domain;
	char		*selector;
	char		*identity;	/* NULL: no i= */
	char		*hlist;		/* override, spaces normalized */
	EVP_PKEY	*key;
	enum dkim_alg	 alg;
	enum dkim_canon	 ch, cb;
	time_t		 t;
	int		 t_now;		/* t= is the time of each message */
	uint64_t	 lifetime;
	int		 qtag;
	unsigned	 width;
	int		 body;		/* index into bodies[] */
	struct buf	 field;		/* the finished field */
};

struct dkim_bodyhash {
	enum dkim_canon	 mode;
	EVP_MD_CTX	*md;
	struct dkim_body canon;
	unsigned char	 hash[32];
	char		 b64[48];
};

struct dkim_sign {
	enum dkim_sign_state	 state;
	const char		*err;
	EVP_MD_CTX		*hmd;		/* header hash, reused */
	struct dkim_sig		 sigs[DKIM_SIGN_MAX_SIGS];
	size_t			 nsigs;
	struct dkim_bodyhash	*bodies[2];
	size_t			 nbodies;
	/* The header section. */
	struct buf		 hdr;
	struct dkim_field	*fields;
	size_t			 nfields, capfields;
	/* dkim_sign_feed() splitting state. */
	int			 fed;
	size_t			 fstart;	/* current field, NO_FIELD */
	size_t			 linestart;	/* current line in hdr */
};

/*
 * SHA-256, fetched once per process (dkim_sign_new()): a fetch takes the
 * provider store's lock and looks the name up, a few microseconds per
 * message on the loop thread.  Kept until the process ends.
 */
static EVP_MD		*sha256_md;
static pthread_once_t	 sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* One piece of the DKIM-Signature value, for folding. */
struct tok {
	const char	*p;
	size_t		 len;
	int		 glue;		/* no space before it on a line */
	int		 split;		/* base64: may be cut anywhere */
};
#define TOKS_FIXED	16		/* tags other than h= names */

const char *
dkim_sign_state_name(enum dkim_sign_state st)
{
	switch (st) {
	case DKIM_SIGN_HEADERS:
		return "headers";
	case DKIM_SIGN_BODY:
		return "body";
	case DKIM_SIGN_DONE:
		return "done";
	case DKIM_SIGN_FAILED:
		return "failed";
	}
	return "?";
}

enum dkim_sign_state
dkim_sign_state(const struct dkim_sign *s)
{
	return s->state;
}

const char *
dkim_sign_error(const struct dkim_sign *s)
{
	return s->err != NULL ? s->err : "";
}

static int
misuse(struct dkim_sign *s, const char *why)
{
	s->err = why;
	return -1;
}

static int
fail(struct dkim_sign *s, const char *why)
{
	s->err = why;
	s->state = DKIM_SIGN_FAILED;
	ERR_clear_error();
	return -1;
}

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
sig_clear(struct dkim_sig *g)
{
	free(g->domain);
	free(g->selector);
	free(g->identity);
	free(g->hlist);
	EVP_PKEY_free(g->key);
	buf_clear(&g->field);
	memset(g, 0, sizeof(*g));
}

void
dkim_sign_free(struct dkim_sign *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nsigs; i++)
		sig_clear(&s->sigs[i]);
	for (i = 0; i < s->nbodies; i++) {
		EVP_MD_CTX_free(s->bodies[i]->md);
		free(s->bodies[i]);
	}
	buf_clear(&s->hdr);
	free(s->fields);
	EVP_MD_CTX_free(s->hmd);
	free(s);
}

/* i= (RFC 6376 3.5): [local-part] "@" domain, the domain d= or below it.
 * Only plain printable characters, so no quoted-printable is needed. */
static int
valid_identity(const char *i, const char *d)
{
	const char	*at, *p;
	size_t		 dl, il;

	if (strlen(i) > IDENTITY_MAX || (at = strrchr(i, '@')) == NULL)
		return 0;
	for (p = i; p < at; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == ';' || *p == '=' || *p == '@')
			return 0;
	at++;
	if (!dkim_valid_dns_name(at))
		return 0;
	dl = strlen(d);
	il = strlen(at);
	if (il == dl)
		return strcasecmp(at, d) == 0;
	return il > dl && at[il - dl - 1] == '.' &&
	    strcasecmp(at + il - dl, d) == 0;
}

static int
name_char(unsigned char c)
{
	/* RFC 5322 2.2 ftext, minus ';' which would end the tag. */
	return c >= 33 && c <= 126 && c != ':' && c != ';';
}

static int
is_never_signed(const char *n, size_t len)
{
	size_t	 i;

	for (i = 0; i < sizeof(never_signed) / sizeof(never_signed[0]); i++)
		if (strlen(never_signed[i]) == len &&
		    strncasecmp(never_signed[i], n, len) == 0)
			return 1;
	return 0;
}

/*
 * Check an h= override ("from : to:subject") and normalize its white space
 * to single spaces.  Must name from, never a field in never_signed[].
 */
static char *
normalize_hlist(const char *h)
{
	const char	*p, *q;
	char		*out;
	size_t		 n = 0, len = strlen(h);
	int		 from = 0, expect_name = 1, pend = 0;

	if (len == 0 || len > HLIST_MAX || (out = malloc(len + 1)) == NULL)
		return NULL;
	for (p = h; *p != '\0';) {
		if (*p == ' ' || *p == '\t') {
			pend = n > 0;
			p++;
			continue;
		}
		if (pend)
			out[n++] = ' ';
		pend = 0;
		if (*p == ':') {
			if (expect_name)
				goto bad;
			out[n++] = ':';
			expect_name = 1;
			p++;
			continue;
		}
		if (!expect_name)
			goto bad;
		for (q = p; name_char((unsigned char)*q); q++)
			;
		if (q == p || is_never_signed(p, q - p))
			goto bad;
		if (q - p == 4 && strncasecmp(p, "from", 4) == 0)
			from = 1;
		memcpy(out + n, p, q - p);
		n += q - p;
		p = q;
		expect_name = 0;
	}
	if (expect_name || !from)
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static int
add_body(struct dkim_sign *s, enum dkim_canon mode)
{
	struct dkim_bodyhash	*bh;
	size_t			 i;

	for (i = 0; i < s->nbodies; i++)
		if (s->bodies[i]->mode == mode)
			return (int)i;
	if ((bh = calloc(1, sizeof(*bh))) == NULL)
		return -1;
	if ((bh->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(bh->md, sha256_md, NULL) != 1) {
		EVP_MD_CTX_free(bh->md);
		free(bh);
		return -1;
	}
	bh->mode = mode;
	dkim_body_init(&bh->canon, mode, bh->md, NULL);
	s->bodies[s->nbodies] = bh;
	return (int)s->nbodies++;
}

static int
sig_init(struct dkim_sign *s, struct dkim_sig *g,
    const struct dkim_sign_params *p, char *err, size_t errlen)
{
	int	 id;

	buf_init(&g->field, DKIM_SIGN_HEADER_MAX);
	if (p->domain == NULL || !dkim_valid_dns_name(p->domain)) {
		seterr(err, errlen, "bad signing domain (d=)");
		return -1;
	}
	if (p->selector == NULL || !dkim_valid_dns_name(p->selector)) {
		seterr(err, errlen, "bad selector (s=)");
		return -1;
	}
	if (p->identity != NULL && !valid_identity(p->identity, p->domain)) {
		seterr(err, errlen, "bad identity (i=): not [local]@d= or a "
		    "subdomain of d=");
		return -1;
	}
	if (p->key == NULL) {
		seterr(err, errlen, "no key");
		return -1;
	}
	id = EVP_PKEY_get_base_id(p->key);
	if (id == EVP_PKEY_RSA)
		g->alg = DKIM_ALG_RSA_SHA256;
	else if (id == EVP_PKEY_ED25519)
		g->alg = DKIM_ALG_ED25519_SHA256;
	else {
		seterr(err, errlen, "key is neither RSA nor Ed25519");
		return -1;
	}
	if (EVP_PKEY_get_size(p->key) <= 0 ||
	    EVP_PKEY_get_size(p->key) > SIG_MAX) {
		seterr(err, errlen, "unsupported key size");
		return -1;
	}
	g->width = p->fold_width == 0 ? DKIM_FOLD_WIDTH : p->fold_width;
	if (g->width < DKIM_FOLD_WIDTH_MIN || g->width > DKIM_FOLD_WIDTH_MAX) {
		seterr(err, errlen, "fold width out of range");
		return -1;
	}
	if (p->canon_header != DKIM_CANON_RELAXED &&
	    p->canon_header != DKIM_CANON_SIMPLE) {
		seterr(err, errlen, "bad header canonicalization");
		return -1;
	}
	if (p->canon_body != DKIM_CANON_RELAXED &&
	    p->canon_body != DKIM_CANON_SIMPLE) {
		seterr(err, errlen, "bad body canonicalization");
		return -1;
	}
	g->ch = p->canon_header;
	g->cb = p->canon_body;
	g->t_now = p->timestamp == 0;
	g->t = p->timestamp != 0 ? p->timestamp : time(NULL);
	g->lifetime = p->lifetime;
	g->qtag = p->query_tag;
	if (p->header_list != NULL &&
	    (g->hlist = normalize_hlist(p->header_list)) == NULL) {
		seterr(err, errlen, "bad h= list (names separated by ':', "
		    "from included, no Received, Return-Path or "
		    "DKIM-Signature)");
		return -1;
	}
	if ((g->domain = strdup(p->domain)) == NULL ||
	    (g->selector = strdup(p->selector)) == NULL ||
	    (p->identity != NULL &&
	    (g->identity = strdup(p->identity)) == NULL)) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if ((g->body = add_body(s, g->cb)) == -1) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if (EVP_PKEY_up_ref(p->key) != 1) {
		seterr(err, errlen, "cannot reference the key");
		return -1;
	}
	g->key = p->key;
	return 0;
}

struct dkim_sign *
dkim_sign_new(const struct dkim_sign_params *params, size_t n, char *err,
    size_t errlen)
{
	struct dkim_sign	*s;
	size_t			 i;

	if (n == 0 || n > DKIM_SIGN_MAX_SIGS) {
		seterr(err, errlen, "between 1 and %d signatures per message",
		    DKIM_SIGN_MAX_SIGS);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	s->state = DKIM_SIGN_HEADERS;
	s->fstart = NO_FIELD;
	buf_init(&s->hdr, DKIM_SIGN_HEADER_MAX);
	if (pthread_once(&sha256_once, sha256_fetch) != 0 ||
	    sha256_md == NULL ||
	    (s->hmd = EVP_MD_CTX_new()) == NULL) {
		seterr(err, errlen, "cannot set up SHA-256");
		ERR_clear_error();
		dkim_sign_free(s);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		s->nsigs = i + 1;
		if (sig_init(s, &s->sigs[i], &params[i], err, errlen) == -1) {
			ERR_clear_error();
			dkim_sign_free(s);
			return NULL;
		}
	}
	return s;
}

/* Record hdr[off, off + len) as a field. */
static int
add_field(struct dkim_sign *s, size_t off, size_t len)
{
	struct dkim_field	*nf;
	const char		*name;
	size_t			 namelen, ncap;

	if (dkim_canon_field_name(s->hdr.data + off, len, &name,
	    &namelen) == -1)
		return fail(s, "header line without a colon");
	if (s->nfields == s->capfields) {
		if (s->nfields >= DKIM_SIGN_FIELDS_MAX)
			return fail(s, "too many header fields");
		ncap = s->capfields ? s->capfields * 2 : 32;
		if ((nf = reallocarray(s->fields, ncap, sizeof(*nf))) == NULL)
			return fail(s, "out of memory");
		s->fields = nf;
		s->capfields = ncap;
	}
	s->fields[s->nfields].off = off;
	s->fields[s->nfields].len = len;
	s->fields[s->nfields].namelen = namelen;
	s->nfields++;
	return 0;
}

static int
feed_pending(const struct dkim_sign *s)
{
	return s->fstart != NO_FIELD || s->linestart != s->hdr.len;
}

int
dkim_sign_header(struct dkim_sign *s, const char *field, size_t len)
{
	size_t	 off = s->hdr.len;

	if (s->state != DKIM_SIGN_HEADERS)
		return misuse(s, "header field after the end of headers");
	if (feed_pending(s))
		return misuse(s, "header field while a fed field is open");
	if (len == 0 || field[0] == ' ' || field[0] == '\t')
		return fail(s, "header field without a name");
	if (len < 2 || field[len - 2] != '\r' || field[len - 1] != '\n')
		return fail(s, "header field not ending in CRLF");
	if (buf_append(&s->hdr, field, len) == -1)
		return fail(s, "header section too large");
	s->linestart = s->hdr.len;
	return add_field(s, off, len);
}

/* Close whatever dkim_sign_feed() has open (a field, a partial line). */
static int
feed_close(struct dkim_sign *s)
{
	if (s->linestart != s->hdr.len) {
		/* An unterminated last line. */
		if (s->hdr.data[s->linestart] == ' ' ||
		    s->hdr.data[s->linestart] == '\t') {
			if (s->fstart == NO_FIELD)
				return fail(s, "continuation line without a "
				    "field");
		} else {
			if (s->fstart != NO_FIELD &&
			    add_field(s, s->fstart, s->linestart -
			    s->fstart) == -1)
				return -1;
			s->fstart = s->linestart;
		}
		s->linestart = s->hdr.len;
	}
	if (s->fstart != NO_FIELD) {
		if (add_field(s, s->fstart, s->hdr.len - s->fstart) == -1)
			return -1;
		s->fstart = NO_FIELD;
	}
	return 0;
}

int
dkim_sign_end_headers(struct dkim_sign *s)
{
	if (s->state != DKIM_SIGN_HEADERS)
		return misuse(s, "end of headers twice or too late");
	if (feed_close(s) == -1)
		return -1;
	s->state = DKIM_SIGN_BODY;
	return 0;
}

int
dkim_sign_body(struct dkim_sign *s, const void *p, size_t n)
{
	size_t	 i;

	if (s->state != DKIM_SIGN_BODY)
		return misuse(s, "body data outside the body");
	for (i = 0; i < s->nbodies; i++)
		if (dkim_body_update(&s->bodies[i]->canon, p, n) == -1)
			return fail(s, "body hash failed");
	return 0;
}

/*
 * Header bytes from dkim_sign_feed(): split lines, then fields.  Returns
 * the number of bytes consumed (the rest is body), or -1.
 */
static ssize_t
feed_headers(struct dkim_sign *s, const char *p, size_t n)
{
	const char	*q, *end = p + n, *start = p;
	size_t		 len;
	char		*line;

	while (p < end) {
		if ((q = memchr(p, '\n', end - p)) == NULL) {
			if (buf_append(&s->hdr, p, end - p) == -1)
				return fail(s, "header section too large");
			return (ssize_t)n;
		}
		if (buf_append(&s->hdr, p, q + 1 - p) == -1)
			return fail(s, "header section too large");
		p = q + 1;
		len = s->hdr.len - s->linestart;
		line = s->hdr.data + s->linestart;
		if (len < 2 || line[len - 2] != '\r')
			continue;	/* a bare LF does not end a line */
		if (len == 2) {
			/* The empty line: end of the header section. */
			s->hdr.len = s->linestart;
			s->hdr.data[s->hdr.len] = '\0';
			if (dkim_sign_end_headers(s) == -1)
				return -1;
			return p - start;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (s->fstart == NO_FIELD)
				return fail(s, "continuation line without a "
				    "field");
		} else {
			/* The name and colon are on the field's first line. */
			if (memchr(line, ':', len) == NULL)
				return fail(s, "header line without a colon");
			if (s->fstart != NO_FIELD && add_field(s, s->fstart,
			    s->linestart - s->fstart) == -1)
				return -1;
			s->fstart = s->linestart;
		}
		s->linestart = s->hdr.len;
	}
	return (ssize_t)n;
}

int
dkim_sign_feed(struct dkim_sign *s, const void *data, size_t n)
{
	const char	*p = data;
	ssize_t		 used;

	if (s->state == DKIM_SIGN_HEADERS) {
		s->fed = 1;
		if ((used = feed_headers(s, p, n)) == -1)
			return -1;
		p += used;
		n -= used;
		if (n == 0)
			return 0;
	}
	return dkim_sign_body(s, p, n);
}

/* Does field f have the name n (case-insensitive)? */
static int
field_is(const struct dkim_sign *s, const struct dkim_field *f,
    const char *n, size_t nlen)
{
	return f->namelen == nlen &&
	    strncasecmp(s->hdr.data + f->off, n, nlen) == 0;
}

static size_t
count_fields(const struct dkim_sign *s, const char *n, size_t nlen)
{
	size_t	 i, c = 0;

	for (i = 0; i < s->nfields; i++)
		if (field_is(s, &s->fields[i], n, nlen))
			c++;
	return c;
}

static int
append_names(struct buf *h, const char *n, size_t nlen, size_t times)
{
	size_t	 i;

	for (i = 0; i < times; i++) {
		if (h->len > 0 && buf_append(h, ":", 1) == -1)
			return -1;
		if (buf_append(h, n, nlen) == -1)
			return -1;
	}
	return 0;
}

/* The automatic h= value, names separated by ':' (see dkim_sign.h). */
static int
auto_hlist(const struct dkim_sign *s, struct buf *h)
{
	const struct dkim_field	*f;
	const char		*n;
	size_t			 i, j, c, nlen;
	int			 known;
	char			 low[128];

	for (i = 0; i < sizeof(oversigned) / sizeof(oversigned[0]); i++) {
		c = count_fields(s, oversigned[i], strlen(oversigned[i]));
		if (append_names(h, oversigned[i], strlen(oversigned[i]),
		    c + 1) == -1)
			return -1;
	}
	for (i = 0; i < sizeof(signed_once) / sizeof(signed_once[0]); i++) {
		c = count_fields(s, signed_once[i], strlen(signed_once[i]));
		if (append_names(h, signed_once[i], strlen(signed_once[i]),
		    c) == -1)
			return -1;
	}
	/* Other List-* fields, by first appearance, once more than present. */
	for (i = 0; i < s->nfields; i++) {
		f = &s->fields[i];
		n = s->hdr.data + f->off;
		nlen = f->namelen;
		if (nlen <= 5 || strncasecmp(n, "list-", 5) != 0 ||
		    nlen >= sizeof(low))
			continue;
		known = 0;
		for (j = 0; j < sizeof(oversigned) / sizeof(oversigned[0]);
		    j++)
			if (field_is(s, f, oversigned[j],
			    strlen(oversigned[j])))
				known = 1;
		for (j = 0; j < i && !known; j++)
			if (field_is(s, &s->fields[j], n, nlen))
				known = 1;
		if (known)
			continue;
		for (j = 0; j < nlen; j++) {
			low[j] = n[j];
			if (low[j] >= 'A' && low[j] <= 'Z')
				low[j] += 'a' - 'A';
			if (!name_char((unsigned char)low[j]))
				break;
		}
		if (j < nlen)
			continue;	/* a name h= cannot hold (';') */
		if (append_names(h, low, nlen, count_fields(s, n, nlen) +
		    1) == -1)
			return -1;
	}
	return 0;
}

/*
 * Fold the tokens into out after "DKIM-Signature:".  *boff gets the offset
 * just past "b=" (the last token).  See dkim_sign.h for the rule.
 */
static int
fold(struct buf *out, const struct tok *t, size_t nt, size_t width,
    size_t *boff)
{
	size_t	 i, col, sep, k, off;

	if (buf_append_str(out, "DKIM-Signature:") == -1)
		return -1;
	col = strlen("DKIM-Signature:");
	for (i = 0; i < nt; i++) {
		sep = t[i].glue ? 0 : 1;
		if (col + sep + t[i].len < width) {
			if (sep && buf_append(out, " ", 1) == -1)
				return -1;
			if (buf_append(out, t[i].p, t[i].len) == -1)
				return -1;
			col += sep + t[i].len;
			if (i == nt - 1)
				*boff = out->len - t[i].len + 2;
			continue;
		}
		if (buf_append(out, "\r\n ", 3) == -1)
			return -1;
		col = 1;
		if (i == nt - 1)
			*boff = out->len + 2;
		if (!t[i].split || col + t[i].len <= width) {
			if (buf_append(out, t[i].p, t[i].len) == -1)
				return -1;
			col += t[i].len;
			continue;
		}
		/* Base64 fills lines up to the width. */
		for (off = 0; off < t[i].len; off += k) {
			if (off > 0) {
				if (buf_append(out, "\r\n ", 3) == -1)
					return -1;
				col = 1;
			}
			k = width - col;
			if (k > t[i].len - off)
				k = t[i].len - off;
			if (buf_append(out, t[i].p + off, k) == -1)
				return -1;
			col += k;
		}
	}
	return buf_append(out, "\r\n", 2);
}

/*
 * Lay out the DKIM-Signature field of g with the given b= value into out;
 * *boff is the offset just past "b=".
 */
static int
layout(const struct dkim_sign *s, const struct dkim_sig *g,
    const char *hval, int hauto, const char *bval, struct buf *out,
    size_t *boff)
{
	struct tok	*t;
	char		 v[10][320], bh[64];
	char		*b = NULL, *p, *q;
	size_t		 nt = 0, nv = 0, blen, ntmax;
	int		 rc = -1;

	/* One token per h= name at most, plus the fixed tags. */
	ntmax = TOKS_FIXED + 2;
	for (p = (char *)hval; *p != '\0'; p++)
		if (*p == ':')
			ntmax += 2;
	if ((t = calloc(ntmax, sizeof(*t))) == NULL)
		return -1;

#define TAG(...) do {							\
	snprintf(v[nv], sizeof(v[nv]), __VA_ARGS__);			\
	t[nt].p = v[nv]; t[nt].len = strlen(v[nv]);			\
	t[nt].glue = 0; t[nt].split = 0; nt++; nv++;			\
} while (0)

	TAG("v=1;");
	TAG("a=%s;", dkim_alg_name(g->alg));
	TAG("c=%s/%s;", dkim_canon_name(g->ch), dkim_canon_name(g->cb));
	TAG("d=%s;", g->domain);
	if (g->identity != NULL)
		TAG("i=%s;", g->identity);
	if (g->qtag)
		TAG("q=dns/txt;");
	TAG("s=%s;", g->selector);
	TAG("t=%lld;", (long long)g->t);
	if (g->lifetime > 0)
		TAG("x=%llu;", (unsigned long long)((uint64_t)g->t +
		    g->lifetime));
#undef TAG
	/*
	 * h=: cut between names (automatic, "a:b") or at the spaces of an
	 * override ("a : b"); the last piece carries the ';'.
	 */
	blen = strlen(hval);
	if ((b = malloc(blen + 4)) == NULL)
		goto done;
	memcpy(b, "h=", 2);
	memcpy(b + 2, hval, blen);
	memcpy(b + 2 + blen, ";", 2);
	for (p = b; *p != '\0'; p = *q == ' ' ? q + 1 : q) {
		if (nt >= ntmax - 2)
			goto done;
		if (hauto) {
			q = strchr(p, ':');
			q = q != NULL ? q + 1 : p + strlen(p);
		} else
			for (q = p; *q != '\0' && *q != ' '; q++)
				;
		t[nt].p = p;
		t[nt].len = q - p;
		t[nt].glue = hauto && p != b;
		t[nt].split = 0;
		nt++;
	}
	snprintf(bh, sizeof(bh), "bh=%s;", s->bodies[g->body]->b64);
	t[nt].p = bh;
	t[nt].len = strlen(bh);
	t[nt].glue = 0;
	t[nt].split = 1;
	nt++;
	/* b= last, so that everything after "b=" is its value. */
	{
		size_t	 vlen = strlen(bval);
		char	*bt;

		if ((bt = malloc(vlen + 3)) == NULL)
			goto done;
		memcpy(bt, "b=", 2);
		memcpy(bt + 2, bval, vlen + 1);
		t[nt].p = bt;
		t[nt].len = vlen + 2;
		t[nt].glue = 0;
		t[nt].split = 1;
		nt++;
		rc = fold(out, t, nt, g->width, boff);
		free(bt);
	}
done:
	free(b);
	free(t);
	return rc;
}

/* Canonicalize field f with mode into scratch and hash it. */
static int
hash_field(EVP_MD_CTX *md, enum dkim_canon mode, const char *p, size_t len,
    struct buf *scratch)
{
	buf_reset(scratch);
	if (dkim_canon_header(mode, p, len, scratch) == -1)
		return -1;
	return EVP_DigestUpdate(md, scratch->data, scratch->len) == 1 ? 0 : -1;
}

/*
 * Key contexts, per thread and per key (a few keys; the oldest slot goes
 * first).  Making one fetches the signature algorithm, a few microseconds
 * per message when every message has a signer of its own, as in relayd,
 * where signers run on a few worker threads.  An entry's context holds a
 * reference to its key, so the key pointer it is found by cannot belong
 * to another key while the entry is there.  A thread's entries are freed
 * when it ends (pthread key destructor), the main thread's with the
 * process.
 */
#define KEYCTX_MAX	4

struct keyctx {
	EVP_PKEY	*key;		/* NULL: empty */
	EVP_PKEY_CTX	*pctx;		/* RSA */
	EVP_MD_CTX	*mctx;		/* Ed25519 */
};

struct keyctx_cache {
	struct keyctx	 e[KEYCTX_MAX];
	unsigned	 next;		/* the slot to empty next */
};

static pthread_key_t	 keyctx_tls;
static int		 keyctx_ok;
static pthread_once_t	 keyctx_once = PTHREAD_ONCE_INIT;

static void
keyctx_clear(struct keyctx *k)
{
	EVP_PKEY_CTX_free(k->pctx);
	EVP_MD_CTX_free(k->mctx);
	memset(k, 0, sizeof(*k));
}

static void
keyctx_cache_free(void *p)
{
	struct keyctx_cache	*c = p;
	unsigned		 i;

	for (i = 0; i < KEYCTX_MAX; i++)
		keyctx_clear(&c->e[i]);
	free(c);
}

static void
keyctx_init(void)
{
	keyctx_ok = pthread_key_create(&keyctx_tls, keyctx_cache_free) == 0;
}

/* This thread's entry for key: the one it has, or an emptied slot given
 * to it; NULL without memory. */
static struct keyctx *
keyctx_for(EVP_PKEY *key)
{
	struct keyctx_cache	*c;
	struct keyctx		*k;
	unsigned		 i;

	if (pthread_once(&keyctx_once, keyctx_init) != 0 || !keyctx_ok)
		return NULL;
	if ((c = pthread_getspecific(keyctx_tls)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return NULL;
		if (pthread_setspecific(keyctx_tls, c) != 0) {
			free(c);
			return NULL;
		}
	}
	for (i = 0; i < KEYCTX_MAX; i++)
		if (c->e[i].key == key)
			return &c->e[i];
	k = &c->e[c->next];
	c->next = (c->next + 1) % KEYCTX_MAX;
	keyctx_clear(k);
	k->key = key;
	return k;
}

/*
 * The private-key operation on the header digest, with this thread's
 * context for the key (keyctx_for()), made on first use.
 */
static int
sign_digest(struct dkim_sig *g, const unsigned char *dg, unsigned char *sig,
    size_t *siglen)
{
	struct keyctx	*k;

	if ((k = keyctx_for(g->key)) == NULL)
		return -1;
	if (g->alg == DKIM_ALG_RSA_SHA256) {
		/* RFC 6376 3.3.1: RSASSA-PKCS1-v1_5 with SHA-256. */
		if (k->pctx == NULL &&
		    ((k->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, g->key,
		    NULL)) == NULL || EVP_PKEY_sign_init(k->pctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(k->pctx,
		    RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(k->pctx, EVP_sha256()) != 1))
			goto fail;
		return EVP_PKEY_sign(k->pctx, sig, siglen, dg, 32) == 1 ?
		    0 : -1;
	}
	/* RFC 8463 3: PureEdDSA over the SHA-256 digest. */
	if (k->mctx == NULL &&
	    ((k->mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(k->mctx, NULL, NULL, NULL, NULL, g->key,
	    NULL) != 1))
		goto fail;
	return EVP_DigestSign(k->mctx, sig, siglen, dg, 32) == 1 ? 0 : -1;
fail:
	/* Nothing half made stays: the slot is empty again. */
	keyctx_clear(k);
	return -1;
}

static int
sign_one(struct dkim_sign *s, struct dkim_sig *g, unsigned char *used,
    struct buf *scratch)
{
	struct buf	 hl;
	EVP_MD_CTX	*md = s->hmd;
	unsigned char	 dg[32], sig[SIG_MAX];
	char		*bval = NULL, *w;
	const char	*hval, *p, *q;
	size_t		 siglen, blen, boff = 0, i, j, k, nlen;
	unsigned	 dglen;
	int		 rc = -1;

	buf_init(&hl, DKIM_SIGN_HEADER_MAX);
	if (g->hlist != NULL)
		hval = g->hlist;
	else {
		if (auto_hlist(s, &hl) == -1 || hl.len == 0) {
			s->err = "h= list too long";
			goto done;
		}
		hval = hl.data;
	}
	siglen = (size_t)EVP_PKEY_get_size(g->key);
	blen = (siglen + 2) / 3 * 4;
	if ((bval = malloc(blen + 1)) == NULL) {
		s->err = "out of memory";
		goto done;
	}
	/*
	 * Lay the field out with a placeholder b= of the final length (the
	 * folding depends only on lengths), hash it up to "b=", then write
	 * the signature over the placeholder: the signed bytes are the
	 * emitted bytes by construction.
	 */
	memset(bval, 'A', blen);
	bval[blen] = '\0';
	buf_reset(&g->field);
	if (layout(s, g, hval, g->hlist == NULL, bval, &g->field,
	    &boff) == -1) {
		s->err = "cannot lay out the signature field";
		goto done;
	}
	/* RFC 6376 5.4.2: each listed name takes the next instance from the
	 * bottom; a name with no instance left adds nothing. */
	if (EVP_DigestInit_ex(md, sha256_md, NULL) != 1) {
		s->err = "digest failed";
		goto done;
	}
	memset(used, 0, s->nfields);
	for (p = hval; *p != '\0'; p = *q == ':' ? q + 1 : q) {
		while (*p == ' ')
			p++;
		for (q = p; *q != '\0' && *q != ':' && *q != ' '; q++)
			;
		nlen = q - p;
		while (*q == ' ')
			q++;
		for (i = s->nfields; i-- > 0;) {
			if (used[i] || !field_is(s, &s->fields[i], p, nlen))
				continue;
			used[i] = 1;
			if (hash_field(md, g->ch, s->hdr.data +
			    s->fields[i].off, s->fields[i].len,
			    scratch) == -1) {
				s->err = "header hash failed";
				goto done;
			}
			break;
		}
	}
	/* RFC 6376 3.7: the signature field itself, b= empty, no CRLF. */
	if (hash_field(md, g->ch, g->field.data, boff, scratch) == -1 ||
	    EVP_DigestFinal_ex(md, dg, &dglen) != 1) {
		s->err = "header hash failed";
		goto done;
	}
	if (sign_digest(g, dg, sig, &siglen) == -1) {
		s->err = "signing failed";
		goto done;
	}
	k = (size_t)EVP_EncodeBlock((unsigned char *)bval, sig, (int)siglen);
	if (k != blen) {
		s->err = "unexpected signature length";
		goto done;
	}
	/* Over the placeholder, skipping the folding (CRLF SP). */
	for (j = 0, w = g->field.data + boff; j < blen &&
	    w < g->field.data + g->field.len; w++)
		if (*w != '\r' && *w != '\n' && *w != ' ')
			*w = bval[j++];
	if (j != blen) {
		s->err = "signature field layout";
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(dg, sizeof(dg));
	free(bval);
	buf_clear(&hl);
	return rc;
}

int
dkim_sign_end_body(struct dkim_sign *s)
{
	struct dkim_bodyhash	*bh;
	struct buf		 scratch;
	unsigned char		*used;
	unsigned		 len;
	size_t			 i;
	int			 rc = 0;

	if (s->state == DKIM_SIGN_HEADERS && s->fed) {
		if (dkim_sign_end_headers(s) == -1)
			return -1;
	}
	if (s->state != DKIM_SIGN_BODY)
		return misuse(s, "end of body before the end of headers");
	if (count_fields(s, "from", 4) == 0)
		return fail(s, "no From field (RFC 6376 5.4)");
	for (i = 0; i < s->nbodies; i++) {
		bh = s->bodies[i];
		if (dkim_body_final(&bh->canon) == -1 ||
		    EVP_DigestFinal_ex(bh->md, bh->hash, &len) != 1 ||
		    len != 32)
			return fail(s, "body hash failed");
		EVP_EncodeBlock((unsigned char *)bh->b64, bh->hash, 32);
	}
	if ((used = malloc(s->nfields + 1)) == NULL)
		return fail(s, "out of memory");
	buf_init(&scratch, DKIM_SIGN_HEADER_MAX + 2);
	for (i = 0; i < s->nsigs && rc == 0; i++)
		rc = sign_one(s, &s->sigs[i], used, &scratch);
	buf_clear(&scratch);
	free(used);
	if (rc == -1)
		return fail(s, s->err);
	s->state = DKIM_SIGN_DONE;
	return 0;
}

int
dkim_sign_result(struct dkim_sign *s, struct buf *out)
{
	size_t	 i, save = out->len;

	if (s->state != DKIM_SIGN_DONE)
		return misuse(s, "no signatures yet");
	for (i = 0; i < s->nsigs; i++) {
		if (buf_append(out, s->sigs[i].field.data,
		    s->sigs[i].field.len) == -1) {
			out->len = save;
			if (out->data != NULL)
				out->data[save] = '\0';
			return misuse(s, "output buffer full");
		}
	}
	return 0;
}

int
dkim_sign_body_hash(const struct dkim_sign *s, size_t i, char *b64,
    size_t cap)
{
	const char	*v;

	if (s->state != DKIM_SIGN_DONE || i >= s->nsigs)
		return -1;
	v = s->bodies[s->sigs[i].body]->b64;
	if (strlen(v) >= cap)
		return -1;
	memcpy(b64, v, strlen(v) + 1);
	return 0;
}

int
dkim_sign_reset(struct dkim_sign *s)
{
	size_t	 i;

	for (i = 0; i < s->nbodies; i++) {
		if (EVP_DigestInit_ex(s->bodies[i]->md, sha256_md,
		    NULL) != 1)
			return fail(s, "digest failed");
		dkim_body_init(&s->bodies[i]->canon, s->bodies[i]->mode,
		    s->bodies[i]->md, NULL);
	}
	for (i = 0; i < s->nsigs; i++) {
		buf_reset(&s->sigs[i].field);
		if (s->sigs[i].t_now)
			s->sigs[i].t = time(NULL);
	}
	buf_reset(&s->hdr);
	s->nfields = 0;
	s->fed = 0;
	s->fstart = NO_FIELD;
	s->linestart = 0;
	s->err = NULL;
	s->state = DKIM_SIGN_HEADERS;
	return 0;
}

int
dkim_sign_message(const struct dkim_sign_params *params, size_t n,
    const void *msg, size_t len, struct buf *out, char *err, size_t errlen)
{
	struct dkim_sign	*s;
	int			 rc = -1;

	if ((s = dkim_sign_new(params, n, err, errlen)) == NULL)
		return -1;
	if (dkim_sign_feed(s, msg, len) == 0 && dkim_sign_end_body(s) == 0 &&
	    dkim_sign_result(s, out) == 0)
		rc = 0;
	else
		seterr(err, errlen, "%s", dkim_sign_error(s));
	dkim_sign_free(s);
	return rc;
}

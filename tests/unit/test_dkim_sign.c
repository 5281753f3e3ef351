/*
 * test_dkim_sign: the DKIM signer and the key module.
 *
 * - RFC 8463 Appendix A known answers: with the keys, tags, timestamp, h=
 *   and folding of ../shared/testdata/dkim/rfc8463, both DKIM-Signature
 *   fields equal those of signed.eml byte for byte (bh= and both b=), fed
 *   whole, in every chunk size, and through the field-by-field API.
 * - Call order, parameter checks, key loading policy, key generation and
 *   the DNS record.
 * - A verifier written here (OpenSSL, independent of the signer's layout
 *   code) checks every signature made.
 * - Debian's python3-dkim (dkimpy) verifies a set of messages signed with
 *   fresh RSA-2048 and Ed25519 keys, its DNS answers taken from the
 *   records dkim_dns_record() printed; tampered copies must fail.
 * - Timings as TAP comments: signing cost per message next to `openssl
 *   speed`, and the body hash rate of a 20 MiB body through the signer.
 *
 * Runs with the project root as working directory (meson's workdir).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "dkim_canon.h"
#include "dkim_key.h"
#include "dkim_sign.h"
#include "tap.h"

#define TESTDATA	"../shared/testdata/dkim/rfc8463/"
#define KAT_H		"from : to : subject : date : message-id : from : " \
			"subject : date"
#define KAT_T		1528637909

static char	 tmpdir[256];

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*b;
	size_t	 cap = 1 << 20;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	b = malloc(cap + 1);
	*len = fread(b, 1, cap, f);
	b[*len] = '\0';
	fclose(f);
	return b;
}

static int
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int	 fd;
	ssize_t	 w;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)) == -1)
		return -1;
	fchmod(fd, mode);
	w = write(fd, p, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- A small verifier, independent of the signer's layout code. ---- */

struct msgparts {
	const char	*f[1024];
	size_t		 flen[1024];
	size_t		 nf;
	const char	*body;
	size_t		 blen;
};

static int
split_msg(const char *m, size_t len, struct msgparts *mp)
{
	const char	*p = m, *end = m + len, *q;

	mp->nf = 0;
	mp->body = end;
	mp->blen = 0;
	while (p < end) {
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			mp->body = p + 2;
			mp->blen = end - (p + 2);
			return 0;
		}
		if (mp->nf == 1024)
			return -1;
		q = p;
		/* A field runs to the CRLF not followed by WSP. */
		for (;;) {
			const char *e = memmem(q, end - q, "\r\n", 2);

			if (e == NULL) {
				q = end;
				break;
			}
			q = e + 2;
			if (q < end && (*q == ' ' || *q == '\t'))
				continue;
			break;
		}
		mp->f[mp->nf] = p;
		mp->flen[mp->nf] = q - p;
		mp->nf++;
		p = q;
	}
	return 0;
}

static int
name_is(const char *f, size_t len, const char *n, size_t nlen)
{
	const char	*name;
	size_t		 l;

	return dkim_canon_field_name(f, len, &name, &l) == 0 && l == nlen &&
	    strncasecmp(name, n, nlen) == 0;
}

/* Tag value of tag in an unfolded, WSP-stripped tag list. */
static int
get_tag(const char *list, const char *tag, char *out, size_t cap)
{
	const char	*p = list, *e, *eq;
	size_t		 tl = strlen(tag), n;

	while (*p != '\0') {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		eq = memchr(p, '=', e - p);
		if (eq != NULL && (size_t)(eq - p) == tl &&
		    memcmp(p, tag, tl) == 0) {
			n = e - eq - 1;
			if (n >= cap)
				return -1;
			memcpy(out, eq + 1, n);
			out[n] = '\0';
			return 0;
		}
		p = *e ? e + 1 : e;
	}
	return -1;
}

/*
 * Verify DKIM-Signature number idx (from the top) of msg with pub.
 * Returns 1 on success, 0 on failure.  If digest is not NULL, the header
 * digest is stored there.
 */
static int
verify(const char *msg, size_t len, size_t idx, EVP_PKEY *pub,
    unsigned char *digest)
{
	struct msgparts	*mp;
	struct buf	 can, sigf;
	struct dkim_body *bd;
	EVP_MD_CTX	*md;
	EVP_PKEY_CTX	*pc;
	char		 tags[4096], c[64], h[2048], bh[64], b[1024];
	char		 bhcalc[64];
	unsigned char	 dg[32], sig[1024], used[1024];
	unsigned	 dl;
	size_t		 i, k, n, si = (size_t)-1, seen = 0;
	enum dkim_canon	 ch, cb;
	const char	*f, *p, *q;
	int		 siglen, good = 0;

	mp = malloc(sizeof(*mp));
	bd = malloc(sizeof(*bd));
	buf_init(&can, 1 << 22);
	buf_init(&sigf, 1 << 16);
	md = EVP_MD_CTX_new();
	if (split_msg(msg, len, mp) == -1)
		goto done;
	for (i = 0; i < mp->nf; i++)
		if (name_is(mp->f[i], mp->flen[i], "dkim-signature", 14) &&
		    seen++ == idx)
			si = i;
	if (si == (size_t)-1)
		goto done;
	/* Unfolded tag list without any WSP (good enough for our tags). */
	f = (const char *)memchr(mp->f[si], ':', mp->flen[si]) + 1;
	for (n = 0, p = f; p < mp->f[si] + mp->flen[si]; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
		    n < sizeof(tags) - 1)
			tags[n++] = *p;
	tags[n] = '\0';
	if (get_tag(tags, "c", c, sizeof(c)) == -1 ||
	    get_tag(tags, "h", h, sizeof(h)) == -1 ||
	    get_tag(tags, "bh", bh, sizeof(bh)) == -1 ||
	    get_tag(tags, "b", b, sizeof(b)) == -1)
		goto done;
	ch = strncmp(c, "simple", 6) == 0 ? DKIM_CANON_SIMPLE :
	    DKIM_CANON_RELAXED;
	cb = strchr(c, '/') && strcmp(strchr(c, '/') + 1, "simple") == 0 ?
	    DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
	/* Body. */
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	dkim_body_init(bd, cb, md, NULL);
	dkim_body_update(bd, mp->body, mp->blen);
	dkim_body_final(bd);
	EVP_DigestFinal_ex(md, dg, &dl);
	EVP_EncodeBlock((unsigned char *)bhcalc, dg, 32);
	if (strcmp(bhcalc, bh) != 0)
		goto done;
	/* Headers named in h=, from the bottom. */
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	memset(used, 0, sizeof(used));
	for (p = h; *p != '\0'; p = *q ? q + 1 : q) {
		q = strchr(p, ':');
		if (q == NULL)
			q = p + strlen(p);
		for (i = mp->nf; i-- > 0;) {
			if (used[i] ||
			    !name_is(mp->f[i], mp->flen[i], p, q - p))
				continue;
			used[i] = 1;
			buf_reset(&can);
			dkim_canon_header(ch, mp->f[i], mp->flen[i], &can);
			EVP_DigestUpdate(md, can.data, can.len);
			break;
		}
	}
	/* The signature field with the b= value taken out (RFC 6376 3.7). */
	f = mp->f[si];
	n = mp->flen[si] - 2;	/* without the final CRLF */
	p = (const char *)memchr(f, ':', n) + 1;
	for (;;) {
		const char *t = p, *e;

		while (t < f + n && (*t == ' ' || *t == '\t' || *t == '\r' ||
		    *t == '\n'))
			t++;
		e = memchr(t, ';', f + n - t);
		if (e == NULL)
			e = f + n;
		if (t + 1 < f + n && t[0] == 'b' && (t[1] == '=' ||
		    t[1] == ' ')) {
			const char *eq = memchr(t, '=', e - t);

			buf_append(&sigf, f, eq + 1 - f);
			buf_append(&sigf, e, f + n - e);
			break;
		}
		if (e == f + n)
			goto done;
		p = e + 1;
	}
	buf_reset(&can);
	dkim_canon_header(ch, sigf.data, sigf.len, &can);
	EVP_DigestUpdate(md, can.data, can.len);
	EVP_DigestFinal_ex(md, dg, &dl);
	if (digest != NULL)
		memcpy(digest, dg, 32);
	siglen = EVP_DecodeBlock(sig, (unsigned char *)b, strlen(b));
	if (siglen <= 0)
		goto done;
	for (k = strlen(b); k > 0 && b[k - 1] == '='; k--)
		siglen--;
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
		pc = EVP_PKEY_CTX_new(pub, NULL);
		good = EVP_PKEY_verify_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_verify(pc, sig, siglen, dg, 32) == 1;
		EVP_PKEY_CTX_free(pc);
	} else {
		EVP_MD_CTX *vc = EVP_MD_CTX_new();

		good = EVP_DigestVerifyInit(vc, NULL, NULL, NULL, pub) == 1 &&
		    EVP_DigestVerify(vc, sig, siglen, dg, 32) == 1;
		EVP_MD_CTX_free(vc);
	}
done:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	buf_clear(&can);
	buf_clear(&sigf);
	free(mp);
	free(bd);
	return good;
}

/* ---- RFC 8463 Appendix A. ---- */

static EVP_PKEY	*kat_ed, *kat_rsa;

static void
kat_params(struct dkim_sign_params p[2])
{
	size_t	 i;

	memset(p, 0, 2 * sizeof(*p));
	for (i = 0; i < 2; i++) {
		p[i].domain = "football.example.com";
		p[i].identity = "@football.example.com";
		p[i].query_tag = 1;
		p[i].timestamp = KAT_T;
		p[i].header_list = KAT_H;
		p[i].fold_width = 59;
		p[i].canon_header = DKIM_CANON_RELAXED;
		p[i].canon_body = DKIM_CANON_RELAXED;
	}
	p[0].selector = "brisbane";
	p[0].key = kat_ed;
	p[1].selector = "test";
	p[1].key = kat_rsa;
}

static void
extract(const char *field, const char *tag, char *out, size_t cap)
{
	char	 tags[4096];
	size_t	 n = 0;
	const char *p;

	/* Up to the end of this field: a CRLF not followed by WSP. */
	for (p = strchr(field, ':') + 1; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] != ' ' &&
		    p[2] != '\t')
			break;
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
		    n < sizeof(tags) - 1)
			tags[n++] = *p;
	}
	tags[n] = '\0';
	if (get_tag(tags, tag, out, cap) == -1)
		out[0] = '\0';
}

/*
 * The RFC 8463 message and its signed form; *sigend: the length of the
 * signed form's DKIM-Signature fields.  0, or -1 (reported, nothing kept).
 */
static int
kat_files(char **msg, size_t *mlen, char **sgn, size_t *slen,
    size_t *sigend)
{
	const char	*hdrend;

	*msg = slurp(TESTDATA "message.eml", mlen);
	*sgn = slurp(TESTDATA "signed.eml", slen);
	if (*msg == NULL || *sgn == NULL) {
		ok(0, "test data readable (run from the project root)");
		free(*msg);
		free(*sgn);
		return -1;
	}
	hdrend = strstr(*sgn, "\r\nFrom: Joe");
	*sigend = hdrend != NULL ? (size_t)(hdrend + 2 - *sgn) : 0;
	return 0;
}

static void
test_kat(void)
{
	struct dkim_sign_params	 p[2];
	struct dkim_key_info	 ki;
	struct dkim_sign	*s;
	struct buf		 out;
	char			 err[DKIM_ERR_LEN], v[512], *msg, *sgn;
	char			 hex[65];
	unsigned char		 dg[32];
	size_t			 mlen, slen, k, off, n, bad, i, sigend;

	ok(dkim_key_load(TESTDATA "test.rsa.pem", 0, &kat_rsa, &ki, err,
	    sizeof(err)) == -1 && strstr(err, "1024") != NULL,
	    "RFC 8463 RSA key (1024 bits) refused without allow_weak: %s",
	    err);
	ok(dkim_key_load(TESTDATA "test.rsa.pem", 1, &kat_rsa, &ki, err,
	    sizeof(err)) == 0 && ki.alg == DKIM_ALG_RSA_SHA256 &&
	    ki.bits == 1024, "RFC 8463 RSA key loads with allow_weak "
	    "(PKCS#1), 1024 bits");
	ok(dkim_key_load(TESTDATA "brisbane.ed25519.pem", 0, &kat_ed, &ki,
	    err, sizeof(err)) == 0 && ki.alg == DKIM_ALG_ED25519_SHA256 &&
	    ki.bits == 256, "RFC 8463 Ed25519 key loads (PKCS#8)");
	if (kat_rsa == NULL || kat_ed == NULL)
		return;
	if (kat_files(&msg, &mlen, &sgn, &slen, &sigend) == -1)
		return;
	kat_params(p);
	buf_init(&out, 1 << 20);
	ok(dkim_sign_message(p, 2, msg, mlen, &out, err, sizeof(err)) == 0,
	    "sign the RFC 8463 message with both keys");
	ok(out.len == sigend && memcmp(out.data, sgn, sigend) == 0,
	    "both DKIM-Signature fields equal signed.eml byte for byte "
	    "(folding included)");
	if (out.len > 0) {
		char *second = strstr(out.data + 1, "DKIM-Signature:");

		extract(out.data, "bh", v, sizeof(v));
		ok(strcmp(v, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=") ==
		    0, "bh= relaxed is the known answer");
		extract(out.data, "b", v, sizeof(v));
		ok(strncmp(v, "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwh"
		    "EIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==", 88) == 0 &&
		    strlen(v) == 88, "ed25519-sha256 b= is the known answer");
		if (second != NULL)
			extract(second, "b", v, sizeof(v));
		ok(second != NULL && strcmp(v, "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRy"
		    "hDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tF"
		    "OeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIq"
		    "XP7OdEFE4LjFYNcUxZQ4FADY+8=") == 0,
		    "rsa-sha256 b= is the known answer");
	}
	/* The verifier here agrees, and sees the README's header digest. */
	ok(verify(sgn, slen, 0, kat_ed, dg) == 1, "own verifier: ed25519 "
	    "signature of signed.eml valid");
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dg[i]);
	ok(strcmp(hex, "48ce9a2c710ece1710ff156996b836a7f45470e43efe5643074d6e"
	    "1690ed62e7") == 0, "header digest is the README's (%s)", hex);
	ok(verify(sgn, slen, 1, kat_rsa, NULL) == 1, "own verifier: rsa "
	    "signature of signed.eml valid");
	/* Every chunk size through dkim_sign_feed(). */
	bad = 0;
	for (k = 1; k <= mlen; k++) {
		s = dkim_sign_new(p, 2, err, sizeof(err));
		for (off = 0; off < mlen; off += n) {
			n = mlen - off < k ? mlen - off : k;
			if (dkim_sign_feed(s, msg + off, n) == -1)
				break;
		}
		buf_reset(&out);
		if (dkim_sign_end_body(s) == -1 ||
		    dkim_sign_result(s, &out) == -1 || out.len != sigend ||
		    memcmp(out.data, sgn, sigend) != 0)
			bad++;
		dkim_sign_free(s);
	}
	ok(bad == 0, "known answer in every feed chunk size 1..%zu (%zu bad)",
	    mlen, bad);
	/* Field by field. */
	{
		struct msgparts *mp = malloc(sizeof(*mp));

		split_msg(msg, mlen, mp);
		s = dkim_sign_new(p, 2, err, sizeof(err));
		for (i = 0; i < mp->nf; i++)
			dkim_sign_header(s, mp->f[i], mp->flen[i]);
		dkim_sign_end_headers(s);
		for (off = 0; off < mp->blen; off += 3)
			dkim_sign_body(s, mp->body + off,
			    mp->blen - off < 3 ? mp->blen - off : 3);
		buf_reset(&out);
		ok(dkim_sign_end_body(s) == 0 && dkim_sign_result(s, &out) ==
		    0 && out.len == sigend && memcmp(out.data, sgn, sigend) ==
		    0, "known answer through dkim_sign_header/_body");
		dkim_sign_free(s);
		free(mp);
	}
	/* A reused signer gives the same answer, also after a failure. */
	s = dkim_sign_new(p, 2, err, sizeof(err));
	dkim_sign_feed(s, "no colon\r\n", 10);
	bad = dkim_sign_state(s) == DKIM_SIGN_FAILED ? 0 : 1;
	for (i = 0; i < 3; i++) {
		buf_reset(&out);
		if (dkim_sign_reset(s) == -1 ||
		    dkim_sign_feed(s, msg, mlen) == -1 ||
		    dkim_sign_end_body(s) == -1 ||
		    dkim_sign_result(s, &out) == -1 || out.len != sigend ||
		    memcmp(out.data, sgn, sigend) != 0)
			bad++;
	}
	ok(bad == 0, "known answer three times from one signer reset after "
	    "a failure (kept key contexts)");
	dkim_sign_free(s);
	/* Simple body hash of the same body (README). */
	p[0].canon_body = DKIM_CANON_SIMPLE;
	s = dkim_sign_new(p, 1, err, sizeof(err));
	dkim_sign_feed(s, msg, mlen);
	dkim_sign_end_body(s);
	ok(dkim_sign_body_hash(s, 0, v, sizeof(v)) == 0 && strcmp(v,
	    "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=") == 0,
	    "bh= simple of the A.3 body is the README's");
	dkim_sign_free(s);
	buf_clear(&out);
	free(msg);
	free(sgn);
}

/* ---- Call order and parameters. ---- */

/*
 * The signing contexts kept per thread and key (dkim_sign.c keyctx_for(),
 * four slots): more keys than slots, in turn, so entries are emptied and
 * given to other keys; every signature must verify with its own key, from
 * this thread and from two threads at once, and the RFC 8463 known answer
 * must come out the same after.
 */
#define KC_KEYS		8	/* the two KAT keys and six more */
#define KC_ROUNDS	3

static EVP_PKEY	*kc_keys[KC_KEYS];
static char	*kc_msg;
static size_t	 kc_mlen;

/* Sign kc_msg with one key and verify it: 1 when good. */
static int
kc_sign_verify(EVP_PKEY *key)
{
	struct dkim_sign_params	 p;
	struct buf		 out;
	char			 err[DKIM_ERR_LEN];
	int			 good = 0;

	memset(&p, 0, sizeof(p));
	p.domain = "football.example.com";
	p.selector = "kc";
	p.key = key;
	p.canon_header = DKIM_CANON_RELAXED;
	p.canon_body = DKIM_CANON_RELAXED;
	buf_init(&out, 1 << 20);
	if (dkim_sign_message(&p, 1, kc_msg, kc_mlen, &out, err,
	    sizeof(err)) == 0 && buf_append(&out, kc_msg, kc_mlen) == 0)
		good = verify(out.data, out.len, 0, key, NULL);
	buf_clear(&out);
	return good;
}

/* A thread's rounds over the keys, forwards or backwards: how many bad. */
static void *
kc_rounds(void *arg)
{
	int		 backwards = arg != NULL;
	size_t		 r, i, bad = 0;

	for (r = 0; r < KC_ROUNDS; r++)
		for (i = 0; i < KC_KEYS; i++)
			if (!kc_sign_verify(kc_keys[backwards ?
			    KC_KEYS - 1 - i : i]))
				bad++;
	return (void *)(uintptr_t)bad;
}

static void
test_keyctx(void)
{
	struct dkim_sign_params	 p[2];
	struct buf		 out;
	pthread_t		 th[2];
	void			*rv[2] = { NULL, NULL };
	char			 err[DKIM_ERR_LEN], *sgn;
	size_t			 slen, sigend, i, bad;
	int			 made = 1;

	if (kat_rsa == NULL || kat_ed == NULL)
		return;
	if (kat_files(&kc_msg, &kc_mlen, &sgn, &slen, &sigend) == -1)
		return;
	kc_keys[0] = kat_ed;
	kc_keys[1] = kat_rsa;
	for (i = 2; i < KC_KEYS; i++)
		if ((kc_keys[i] = EVP_PKEY_Q_keygen(NULL, NULL,
		    "ED25519")) == NULL)
			made = 0;
	ok(made, "six more Ed25519 keys");
	if (made) {
		bad = (size_t)(uintptr_t)kc_rounds(NULL);
		ok(bad == 0, "%d keys in turn, %d rounds, one thread: every "
		    "signature verifies (%zu bad)", KC_KEYS, KC_ROUNDS, bad);
		ok(pthread_create(&th[0], NULL, kc_rounds, NULL) == 0 &&
		    pthread_create(&th[1], NULL, kc_rounds, &made) == 0,
		    "two signing threads");
		pthread_join(th[0], &rv[0]);
		pthread_join(th[1], &rv[1]);
		ok(rv[0] == NULL && rv[1] == NULL, "two threads at once, "
		    "forwards and backwards: every signature verifies "
		    "(%zu and %zu bad)", (size_t)(uintptr_t)rv[0],
		    (size_t)(uintptr_t)rv[1]);
		kat_params(p);
		buf_init(&out, 1 << 20);
		ok(dkim_sign_message(p, 2, kc_msg, kc_mlen, &out, err,
		    sizeof(err)) == 0 && out.len == sigend &&
		    memcmp(out.data, sgn, sigend) == 0, "RFC 8463 known "
		    "answer after the contexts went round");
		buf_clear(&out);
	}
	for (i = 2; i < KC_KEYS; i++)
		EVP_PKEY_free(kc_keys[i]);
	free(kc_msg);
	free(sgn);
}

static void
test_order(void)
{
	struct dkim_sign_params	 p[2];
	struct dkim_sign	*s;
	struct buf		 out;
	char			 err[DKIM_ERR_LEN];
	static const char	 from[] = "From: a@football.example.com\r\n";
	int			 rc;

	if (kat_ed == NULL)
		return;
	kat_params(p);
	buf_init(&out, 1 << 16);
	s = dkim_sign_new(p, 1, err, sizeof(err));
	ok(s != NULL && dkim_sign_state(s) == DKIM_SIGN_HEADERS &&
	    strcmp(dkim_sign_state_name(dkim_sign_state(s)), "headers") == 0,
	    "new signer is in state headers");
	ok(dkim_sign_body(s, "x", 1) == -1, "body before end of headers: -1");
	ok(dkim_sign_end_body(s) == -1, "end of body before end of headers: "
	    "-1");
	ok(dkim_sign_result(s, &out) == -1 && out.len == 0,
	    "result before the end: -1");
	ok(dkim_sign_state(s) == DKIM_SIGN_HEADERS, "misuse changes no "
	    "state");
	ok(dkim_sign_header(s, from, strlen(from)) == 0, "a header field");
	ok(dkim_sign_end_headers(s) == 0 && dkim_sign_state(s) ==
	    DKIM_SIGN_BODY, "end of headers: state body");
	ok(dkim_sign_header(s, from, strlen(from)) == -1, "header after end "
	    "of headers: -1");
	ok(dkim_sign_end_headers(s) == -1, "end of headers twice: -1");
	ok(dkim_sign_body(s, "Hi\r\n", 4) == 0, "body chunk");
	ok(dkim_sign_end_body(s) == 0 && dkim_sign_state(s) ==
	    DKIM_SIGN_DONE, "end of body: state done");
	ok(dkim_sign_body(s, "x", 1) == -1 && dkim_sign_end_body(s) == -1,
	    "body or end after done: -1");
	ok(dkim_sign_result(s, &out) == 0 && out.len > 0, "result");
	dkim_sign_free(s);
	dkim_sign_free(NULL);

	/* Failures that fail the signer. */
	s = dkim_sign_new(p, 1, err, sizeof(err));
	rc = dkim_sign_header(s, "no colon here\r\n", 15) == -1;
	ok(rc && dkim_sign_state(s) == DKIM_SIGN_FAILED, "field without "
	    "colon fails the signer (%s)", dkim_sign_error(s));
	dkim_sign_free(s);
	s = dkim_sign_new(p, 1, err, sizeof(err));
	rc = dkim_sign_feed(s, "Subject: x\r\n\r\nbody\r\n", 20) == 0 &&
	    dkim_sign_end_body(s) == -1;
	ok(rc && strstr(dkim_sign_error(s), "From") != NULL, "no From "
	    "field: refused (%s)", dkim_sign_error(s));
	dkim_sign_free(s);
	s = dkim_sign_new(p, 1, err, sizeof(err));
	ok(dkim_sign_feed(s, " folded first\r\n\r\n", 17) == -1,
	    "continuation line without a field: -1");
	dkim_sign_free(s);
	s = dkim_sign_new(p, 1, err, sizeof(err));
	ok(dkim_sign_header(s, "From: a@b", 9) == -1 &&
	    dkim_sign_state(s) == DKIM_SIGN_FAILED, "a field not ending in "
	    "CRLF is refused");
	dkim_sign_free(s);
	/* Headers only (no empty line) through feed: an empty body. */
	s = dkim_sign_new(p, 1, err, sizeof(err));
	buf_reset(&out);
	ok(dkim_sign_feed(s, from, strlen(from)) == 0 &&
	    dkim_sign_end_body(s) == 0 && dkim_sign_result(s, &out) == 0,
	    "message without an empty line signs (empty body)");
	dkim_sign_free(s);

	/* Parameters. */
#define BADP(field, value, what) do {					\
	kat_params(p);							\
	p[0].field = value;						\
	s = dkim_sign_new(p, 1, err, sizeof(err));			\
	ok(s == NULL, "refused: %s (%s)", what, err);			\
	dkim_sign_free(s);						\
} while (0)
	BADP(domain, "bad domain", "d= with a space");
	BADP(domain, NULL, "no d=");
	BADP(selector, "s;x", "s= with ';'");
	BADP(identity, "@example.net", "i= outside d=");
	BADP(identity, "@notfootball.example.com", "i= a lookalike of d=");
	BADP(header_list, "to : subject", "h= without from");
	BADP(header_list, "from : received", "h= with received");
	BADP(header_list, "from :: to", "h= with an empty name");
	BADP(fold_width, 10, "fold width 10");
	BADP(key, NULL, "no key");
	BADP(identity, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@football.example.com", "i= over 300 octets");
	BADP(identity, "a b@football.example.com", "i= with a space");
#undef BADP
	kat_params(p);
	p[0].identity = "user@sub.football.example.com";
	s = dkim_sign_new(p, 1, err, sizeof(err));
	ok(s != NULL, "i= in a subdomain of d= accepted");
	dkim_sign_free(s);
	ok(dkim_sign_new(p, 0, err, sizeof(err)) == NULL, "zero signatures "
	    "refused");
	buf_clear(&out);
}

/* ---- Keys. ---- */

static void
tmppath(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int
write_key(EVP_PKEY *pk, const char *name, int pkcs1, const char *pass,
    mode_t mode)
{
	char	 path[512];
	BIO	*bio = BIO_new(BIO_s_mem());
	char	*data;
	long	 n;
	int	 rc;

	if (pkcs1)
		PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0,
		    NULL, NULL);
	else if (pass != NULL)
		PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_128_cbc(),
		    NULL, 0, NULL, (void *)pass);
	else
		PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL,
		    NULL);
	n = BIO_get_mem_data(bio, &data);
	tmppath(path, sizeof(path), name);
	rc = write_file(path, data, n, mode);
	BIO_free(bio);
	return rc;
}

static int
load(const char *name, int allow_weak, struct dkim_key_info *ki, char *err,
    size_t errlen)
{
	char		 path[512];
	EVP_PKEY	*pk = NULL;
	int		 rc;

	tmppath(path, sizeof(path), name);
	rc = dkim_key_load(path, allow_weak, &pk, ki, err, errlen);
	if (rc == 0 && pk == NULL)
		rc = -2;
	EVP_PKEY_free(pk);
	return rc;
}

static EVP_PKEY	*rsa2048, *ed;

static void
test_keys(void)
{
	struct dkim_key_info	 ki;
	struct buf		 rec, txt;
	char			 err[DKIM_ERR_LEN], path[512], *data;
	EVP_PKEY		*r512, *r1024, *ec, *pss, *pk;
	struct stat		 st;
	size_t			 len;
	int			 rc;

	r512 = EVP_RSA_gen(512);
	r1024 = EVP_RSA_gen(1024);
	ec = EVP_EC_gen("P-256");
	pss = EVP_PKEY_Q_keygen(NULL, NULL, "RSA-PSS", (size_t)2048);
	write_key(r512, "rsa512.pem", 0, NULL, 0600);
	write_key(r1024, "rsa1024.pem", 1, NULL, 0600);
	write_key(ec, "ec.pem", 0, NULL, 0600);
	write_key(pss, "pss.pem", 0, NULL, 0600);
	tmppath(path, sizeof(path), "garbage.pem");
	write_file(path,
	    "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
	    "-----END PRIVATE KEY-----\n", 70, 0600);
	tmppath(path, sizeof(path), "empty.pem");
	write_file(path, "", 0, 0600);

	tmppath(path, sizeof(path), "rsa2048.pem");
	ok(dkim_keygen(DKIM_ALG_RSA_SHA256, 2048, path, &rsa2048, err,
	    sizeof(err)) == 0 && rsa2048 != NULL, "keygen RSA 2048");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	    "keygen writes mode 0600 (%o)", st.st_mode & 07777);
	data = slurp(path, &len);
	ok(data != NULL && strncmp(data, "-----BEGIN PRIVATE KEY-----\n", 28) ==
	    0, "keygen writes PKCS#8 PEM");
	free(data);
	ok(dkim_keygen(DKIM_ALG_RSA_SHA256, 2048, path, NULL, err,
	    sizeof(err)) == -1 && strstr(err, "exists") != NULL,
	    "keygen refuses to overwrite (%s)", err);
	ok(stat(path, &st) == 0 && st.st_size == (off_t)len,
	    "the existing key is untouched");
	tmppath(path, sizeof(path), "ed.pem");
	ok(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0, path, &ed, err,
	    sizeof(err)) == 0 && ed != NULL, "keygen Ed25519");
	tmppath(path, sizeof(path), "weak.pem");
	ok(dkim_keygen(DKIM_ALG_RSA_SHA256, 1024, path, NULL, err,
	    sizeof(err)) == -1 && access(path, F_OK) == -1,
	    "keygen refuses RSA 1024, leaves no file");
	tmppath(path, sizeof(path), "nodir/x.pem");
	ok(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0, path, NULL, err,
	    sizeof(err)) == -1, "keygen into a missing directory: -1 (%s)",
	    err);

	ok(load("rsa512.pem", 1, &ki, err, sizeof(err)) == -1 &&
	    strcmp(err, "RSA key of 512 bits; at least 2048 needed") ==
	    0,
	    "RSA 512 refused even with allow_weak (%s)", err);
	ok(load("rsa1024.pem", 0, &ki, err, sizeof(err)) == -1 &&
	    strcmp(err, "RSA key of 1024 bits; at least 2048 needed "
	    "(or allow_weak_key = yes)") == 0,
	    "RSA 1024 refused without allow_weak (%s)", err);
	ok(load("rsa1024.pem", 1, &ki, err, sizeof(err)) == 0 &&
	    ki.bits == 1024, "RSA 1024 (PKCS#1) accepted with allow_weak");
	ok(load("rsa2048.pem", 0, &ki, err, sizeof(err)) == 0 && ki.bits ==
	    2048 && ki.alg == DKIM_ALG_RSA_SHA256 && ki.loose_mode == 0,
	    "RSA 2048 (PKCS#8) accepted, mode 0600 not loose");
	write_key(rsa2048, "rsa2048-pkcs1.pem", 1, NULL, 0640);
	ok(load("rsa2048-pkcs1.pem", 0, &ki, err, sizeof(err)) == 0 &&
	    ki.bits == 2048 && ki.loose_mode == 1,
	    "RSA 2048 PKCS#1 accepted; mode 0640 flagged loose");
	write_key(ed, "ed-0604.pem", 0, NULL, 0604);
	ok(load("ed-0604.pem", 0, &ki, err, sizeof(err)) == 0 &&
	    ki.alg == DKIM_ALG_ED25519_SHA256 && ki.bits == 256 &&
	    ki.loose_mode == 1, "Ed25519 accepted; mode 0604 flagged loose");
	ok(load("ed.pem", 0, &ki, err, sizeof(err)) == 0 && ki.loose_mode ==
	    0, "generated Ed25519 loads");
	ok(load("ec.pem", 1, &ki, err, sizeof(err)) == -1 && strstr(err,
	    "neither an RSA nor an Ed25519 key (EC)") == err,
	    "EC P-256 refused (%s)", err);
	ok(load("pss.pem", 1, &ki, err, sizeof(err)) == -1,
	    "RSA-PSS refused (%s)", err);
	ok(load("garbage.pem", 1, &ki, err, sizeof(err)) == -1 &&
	    strstr(err, "not a PEM private key") == err,
	    "garbage refused (%s)", err);
	ok(load("empty.pem", 1, &ki, err, sizeof(err)) == -1,
	    "empty file refused");
	ok(load("missing.pem", 1, &ki, err, sizeof(err)) == -1 &&
	    strstr(err, "No such file or directory") == err,
	    "missing file refused (%s)", err);
	write_key(rsa2048, "enc.pem", 0, "secret", 0600);
	ok(load("enc.pem", 1, &ki, err, sizeof(err)) == -1 && strstr(err,
	    "encrypted") != NULL, "encrypted key refused (%s)", err);
	ok(load("", 1, &ki, err, sizeof(err)) == -1, "a directory refused");
	{
		BIO *bio = BIO_new(BIO_s_mem());

		PEM_write_bio_PUBKEY(bio, rsa2048);
		len = BIO_get_mem_data(bio, &data);
		tmppath(path, sizeof(path), "pub.pem");
		write_file(path, data, len, 0600);
		BIO_free(bio);
		ok(load("pub.pem", 1, &ki, err, sizeof(err)) == -1,
		    "a public key is not a private key");
	}

	/* DNS records. */
	buf_init(&rec, 1 << 16);
	buf_init(&txt, 1 << 16);
	ok(dkim_dns_record("football.example.com", "brisbane", kat_ed,
	    &rec) == 0 && strcmp(rec.data, "brisbane._domainkey."
	    "football.example.com. IN TXT ( \"v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\" )") == 0,
	    "Ed25519 record of RFC 8463 A.2: bare 32-byte key, 44 chars");
	buf_reset(&rec);
	ok(dkim_dns_record("football.example.com.", "test", kat_rsa,
	    &rec) == 0 && strcmp(rec.data, "test._domainkey."
	    "football.example.com. IN TXT ( \"v=DKIM1; k=rsa; p=MIGfMA0GCSqG"
	    "SIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhd"
	    "R6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBs"
	    "CR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2k"
	    "ryOTIKT+l/K4w3QIDAQAB\" )") == 0, "RSA record of RFC 8463 A.2 "
	    "(SubjectPublicKeyInfo)");
	buf_reset(&rec);
	dkim_dns_txt(rsa2048, &txt);
	rc = dkim_dns_record("example.org", "r2026", rsa2048, &rec);
	{
		/* Strings of at most 255 octets, joined they are the TXT. */
		struct buf	 joined;
		const char	*p = strchr(rec.data, '"'), *q;
		size_t		 maxs = 0, ns = 0;

		buf_init(&joined, 1 << 16);
		while (p != NULL && (q = strchr(p + 1, '"')) != NULL) {
			buf_append(&joined, p + 1, q - p - 1);
			if ((size_t)(q - p - 1) > maxs)
				maxs = q - p - 1;
			ns++;
			p = strchr(q + 1, '"');
		}
		ok(rc == 0 && ns == 2 && maxs == 255 && joined.len == txt.len &&
		    memcmp(joined.data, txt.data, txt.len) == 0 &&
		    strncmp(rec.data, "r2026._domainkey.example.org. IN TXT ( "
		    "\"v=DKIM1; k=rsa; p=", 57) == 0,
		    "RSA 2048 record: %zu strings, longest %zu octets, joined "
		    "equals the TXT value", ns, maxs);
		buf_clear(&joined);
	}
	buf_reset(&rec);
	ok(dkim_dns_record("bad domain", "s", ed, &rec) == -1 &&
	    dkim_dns_record("example.org", "", ed, &rec) == -1 &&
	    dkim_dns_record("example.org", "s", ec, &rec) == -1 &&
	    rec.len == 0, "record: bad names and EC keys refused");
	tmppath(path, sizeof(path), "rsa2048.pem");
	pk = NULL;
	dkim_key_load(path, 0, &pk, &ki, err, sizeof(err));
	buf_reset(&rec);
	buf_reset(&txt);
	dkim_dns_txt(pk, &rec);
	dkim_dns_txt(rsa2048, &txt);
	ok(pk != NULL && rec.len == txt.len && memcmp(rec.data, txt.data,
	    txt.len) == 0, "the written key is the returned key");
	EVP_PKEY_free(pk);
	buf_clear(&rec);
	buf_clear(&txt);
	EVP_PKEY_free(r512);
	EVP_PKEY_free(r1024);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(pss);
}

/* ---- Messages for the verifiers. ---- */

struct testmsg {
	const char	*name;
	char		*data;
	size_t		 len;
};

static char *
xstrdup_printf(size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
xstrdup_printf(size_t *len, const char *fmt, ...)
{
	struct buf	 b;
	va_list		 ap;
	char		 small[8];
	int		 n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	buf_init(&b, (size_t)n + 1);
	buf_reserve(&b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b.data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len = (size_t)n;
	return b.data;
}

#define HDRS	"From: Alice <alice@example.org>\r\n" \
		"To: Bob <bob@example.net>\r\n" \
		"Subject: test\r\n" \
		"Date: Sun, 22 Nov 2026 16:00:00 +0000\r\n" \
		"Message-ID: <1@example.org>\r\n"

static size_t
make_messages(struct testmsg *m)
{
	struct buf	 b;
	size_t		 n = 0, i;

#define ADD(nm, ...) do {						\
	m[n].name = nm;							\
	m[n].data = xstrdup_printf(&m[n].len, __VA_ARGS__);		\
	n++;								\
} while (0)
	ADD("plain", HDRS "\r\nHello Bob,\r\n\r\nthis is a plain message.\r\n"
	    "\r\n-- \r\nAlice\r\n");
	ADD("empty-body", HDRS "\r\n");
	ADD("no-final-crlf", HDRS "\r\nHello\r\nno final CRLF here");
	ADD("trailing-ws", HDRS "\r\nline with spaces   \r\ntab\t\r\n \t \r\n"
	    "  leading and  inner\t\tspace \r\n\r\n\r\n");
	ADD("dot-lines", HDRS "\r\n.\r\n..\r\n.hidden line\r\n. \r\n");
	ADD("folded", "From: Alice\r\n <alice@example.org>\r\n"
	    "To: Bob <bob@example.net>,\r\n\tCarol <carol@example.net>,\r\n"
	    "   Dave <dave@example.net>\r\n"
	    "Subject: a subject that is folded\r\n\tover three\r\n lines\r\n"
	    "Date: Sun, 22 Nov 2026 16:00:00 +0000\r\n"
	    "References: <a@x>\r\n <b@x>\r\n\r\nbody\r\n");
	ADD("unusual-case", "fROM: Alice <alice@example.org>\r\n"
	    "tO: Bob <bob@example.net>\r\nSUBJECT: Shouting\r\n"
	    "message-ID: <2@example.org>\r\nMiMe-VeRsIoN: 1.0\r\n"
	    "CONTENT-TYPE: text/plain\r\nX-Mixed-CASE: yes\r\n\r\nquiet\r\n");
	ADD("utf8-8bit", HDRS "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Gr\xc3\xbc\xc3\x9f" "e, na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 "
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n\xc2\xa0\r\n");
	ADD("multipart", HDRS "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
	    "--b1\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss\r\n"
	    "LS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZ\r\n"
	    "--b1--\r\n");
	/* 998-octet lines: letters, and one with runs of white space. */
	buf_init(&b, 1 << 20);
	buf_append_str(&b, HDRS "\r\n");
	for (i = 0; i < 998; i++)
		buf_append(&b, "x", 1);
	buf_append(&b, "\r\n", 2);
	for (i = 0; i < 998; i++)
		buf_append(&b, i % 7 < 3 ? " " : "y", 1);
	buf_append(&b, "\r\n", 2);
	m[n].name = "998-octets";
	m[n].data = b.data;
	m[n].len = b.len;
	n++;
	/* Many To and Cc fields. */
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "From: Alice <alice@example.org>\r\n");
	for (i = 0; i < 40; i++)
		buf_appendf(&b, "To: r%zu@example.net, s%zu@example.net\r\n"
		    "Cc: c%zu@example.net\r\n", i, i, i);
	buf_append_str(&b, "Subject: many\r\n\r\nto all of you\r\n");
	m[n].name = "many-to-cc";
	m[n].data = b.data;
	m[n].len = b.len;
	n++;
	/* 2 MiB of text, to cross many chunks. */
	buf_init(&b, 4 << 20);
	buf_append_str(&b, HDRS "\r\n");
	for (i = 0; b.len < (2u << 20); i++)
		buf_appendf(&b, "line %zu of a longer message, with  double "
		    "spaces and a tab\there %s\r\n", i, i % 13 == 0 ? "\r\n" :
		    "");
	m[n].name = "2mib";
	m[n].data = b.data;
	m[n].len = b.len;
	n++;
#undef ADD
	return n;
}

/* The signature set: dual RSA + Ed25519 relaxed, plus simple variants. */
static size_t
dual_params(struct dkim_sign_params *p)
{
	memset(p, 0, 4 * sizeof(*p));
	p[0].domain = p[1].domain = p[2].domain = p[3].domain = "example.org";
	p[0].selector = "r2026";
	p[0].key = rsa2048;
	p[1].selector = "e2026";
	p[1].key = ed;
	p[2].selector = "rsimple";
	p[2].key = rsa2048;
	p[2].canon_header = DKIM_CANON_SIMPLE;
	p[2].canon_body = DKIM_CANON_SIMPLE;
	p[2].lifetime = 7 * 86400;
	p[3].selector = "esimple";
	p[3].key = ed;
	p[3].canon_header = DKIM_CANON_RELAXED;
	p[3].canon_body = DKIM_CANON_SIMPLE;
	p[3].identity = "alice@example.org";
	return 4;
}

static int
sign_chunked(const struct dkim_sign_params *p, size_t np, const char *m,
    size_t len, size_t chunk, struct buf *out)
{
	struct dkim_sign	*s;
	char			 err[DKIM_ERR_LEN];
	size_t			 off, n;
	int			 rc = -1;

	if ((s = dkim_sign_new(p, np, err, sizeof(err))) == NULL)
		return -1;
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (dkim_sign_feed(s, m + off, n) == -1)
			goto done;
	}
	if (dkim_sign_end_body(s) == 0 && dkim_sign_result(s, out) == 0)
		rc = 0;
done:
	dkim_sign_free(s);
	return rc;
}

/* Longest line of a field block, without CRLF. */
static size_t
longest_line(const char *p, size_t n)
{
	size_t	 i, col = 0, max = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			col = 0;
			continue;
		}
		if (++col > max)
			max = col;
	}
	return max;
}

static const char dkimpy_script[] =
"import os, re, sys\n"
"import dkim\n"
"d = sys.argv[1]\n"
"recs = {}\n"
"for line in open(os.path.join(d, 'zone.txt')):\n"
"    m = re.match(r'(\\S+) IN TXT \\( (.*) \\)$', line.strip())\n"
"    recs[m.group(1).lower()] = ''.join(re.findall(r'\"([^\"]*)\"',\n"
"        m.group(2))).encode()\n"
"def dnsfunc(name, timeout=5):\n"
"    return recs.get(name.decode().lower())\n"
"for line in open(os.path.join(d, 'manifest.txt')):\n"
"    f, n = line.split()\n"
"    msg = open(os.path.join(d, f), 'rb').read()\n"
"    res = []\n"
"    for i in range(int(n)):\n"
"        try:\n"
"            good = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)\n"
"        except Exception as e:\n"
"            good = False\n"
"        res.append('pass' if good else 'fail')\n"
"    print(f, ' '.join(res))\n"
"sys.stdout.flush()\n";

struct vcase {
	char	 file[64];
	size_t	 nsig;
	int	 expect_pass;
	char	 what[96];
};

/*
 * OpenDKIM (opendkim -t in test mode, public keys from TestPublicKeys)
 * reports only the first signature of a message, so each signature is
 * written to a file of its own: that signature, then prefix (a tampering,
 * may be empty) and the message.  The others are not in any h=, so leaving
 * them out changes nothing.
 */
struct odcase {
	char	 file[96];
	int	 expect_pass;
	char	 what[128];
};

static size_t
od_write(struct odcase *oc, size_t noc, size_t max, const char *name,
    const char *prefix, const struct buf *sigs, const char *msg, size_t len,
    int expect_pass, FILE *man)
{
	struct buf	 b;
	char		 path[512];
	const char	*p = sigs->data, *q, *end = sigs->data + sigs->len;
	size_t		 k = 0;

	while (p < end && noc < max) {
		q = memmem(p + 1, end - p - 1, "\r\nDKIM-Signature:", 17);
		q = q != NULL ? q + 2 : end;
		buf_init(&b, 8 << 20);
		buf_append(&b, p, q - p);
		buf_append_str(&b, prefix);
		buf_append(&b, msg, len);
		snprintf(oc[noc].file, sizeof(oc[noc].file), "od-%s-%zu.eml",
		    name, k);
		snprintf(oc[noc].what, sizeof(oc[noc].what), "%s, signature "
		    "%zu", name, k);
		oc[noc].expect_pass = expect_pass;
		tmppath(path, sizeof(path), oc[noc].file);
		write_file(path, b.data, b.len, 0600);
		fprintf(man, "%s\n", oc[noc].file);
		buf_clear(&b);
		noc++;
		k++;
		p = q;
	}
	return noc;
}

static void
od_run(const struct odcase *oc, size_t noc)
{
	char	 cmd[1024], line[1024], *f, *e;
	FILE	*pf;
	size_t	 i;
	int	 seen = 0, good;

	snprintf(cmd, sizeof(cmd), "cd '%s' && for f in $(cat od-manifest.txt);"
	    " do opendkim -x od.conf -t $f 2>&1 </dev/null; done", tmpdir);
	if ((pf = popen(cmd, "r")) == NULL) {
		ok(0, "run opendkim");
		return;
	}
	while (fgets(line, sizeof(line), pf) != NULL) {
		/* "opendkim: FILE: verification (...) succeeded" */
		if (strncmp(line, "opendkim: ", 10) != 0)
			continue;
		f = line + 10;
		if ((e = strstr(f, ": ")) == NULL)
			continue;
		*e = '\0';
		good = strstr(e + 2, "verification (") == e + 2 &&
		    strstr(e + 2, ") succeeded") != NULL;
		for (i = 0; i < noc; i++) {
			if (strcmp(oc[i].file, f) != 0)
				continue;
			seen++;
			ok(good == oc[i].expect_pass, "opendkim: %s: %s (want "
			    "%s)", oc[i].what, good ? "pass" : "fail",
			    oc[i].expect_pass ? "pass" : "fail");
		}
	}
	ok(pclose(pf) == 0 && seen == (int)noc, "opendkim ran and reported %d "
	    "of %zu files", seen, noc);
}

static void
test_verifiers(void)
{
	struct testmsg		 m[32];
	struct dkim_sign_params	 p[4];
	struct vcase		 vc[128];
	struct odcase		 oc[256];
	FILE			*odman;
	size_t			 noc = 0;
	struct buf		 out, full, zone;
	char			 path[512], line[1024], cmd[1024];
	size_t			 nm, np, i, j, nvc = 0, chunk, widest;
	FILE			*f, *man;
	int			 own_ok, seen, pass_ok;

	if (rsa2048 == NULL || ed == NULL)
		return;
	nm = make_messages(m);
	np = dual_params(p);
	buf_init(&out, 1 << 20);
	buf_init(&full, 8 << 20);
	buf_init(&zone, 1 << 16);
	/* The zone the verifier's DNS answers come from. */
	for (i = 0; i < np; i++) {
		dkim_dns_record(p[i].domain, p[i].selector, p[i].key, &zone);
		buf_append(&zone, "\n", 1);
	}
	tmppath(path, sizeof(path), "zone.txt");
	write_file(path, zone.data, zone.len, 0600);
	tmppath(path, sizeof(path), "manifest.txt");
	man = fopen(path, "w");
	tmppath(path, sizeof(path), "od-manifest.txt");
	odman = fopen(path, "w");
	/* OpenDKIM's keys: "NAME TXT-VALUE" lines. */
	{
		struct buf keys, txt;

		buf_init(&keys, 1 << 16);
		buf_init(&txt, 1 << 16);
		for (i = 0; i < np; i++) {
			buf_reset(&txt);
			dkim_dns_txt(p[i].key, &txt);
			buf_appendf(&keys, "%s._domainkey.%s %s\n",
			    p[i].selector, p[i].domain, txt.data);
		}
		tmppath(path, sizeof(path), "od-keys.txt");
		write_file(path, keys.data, keys.len, 0600);
		buf_reset(&keys);
		buf_appendf(&keys, "Mode v\nSyslog no\nTestPublicKeys "
		    "%s/od-keys.txt\n", tmpdir);
		tmppath(path, sizeof(path), "od.conf");
		write_file(path, keys.data, keys.len, 0600);
		buf_clear(&keys);
		buf_clear(&txt);
	}
	for (i = 0; i < nm; i++) {
		chunk = 1 + (i * 7919) % 4096;
		buf_reset(&out);
		if (sign_chunked(p, np, m[i].data, m[i].len, chunk,
		    &out) == -1) {
			ok(0, "sign %s", m[i].name);
			continue;
		}
		widest = longest_line(out.data, out.len);
		buf_reset(&full);
		buf_append(&full, out.data, out.len);
		buf_append(&full, m[i].data, m[i].len);
		own_ok = 1;
		for (j = 0; j < np; j++)
			if (!verify(full.data, full.len, j, p[j].key, NULL))
				own_ok = 0;
		ok(own_ok && widest <= 78, "%s: 4 signatures (chunks of %zu), "
		    "own verifier accepts all, longest line %zu <= 78",
		    m[i].name, chunk, widest);
		snprintf(vc[nvc].file, sizeof(vc[nvc].file), "%s.eml",
		    m[i].name);
		vc[nvc].nsig = np;
		vc[nvc].expect_pass = 1;
		snprintf(vc[nvc].what, sizeof(vc[nvc].what), "%s", m[i].name);
		tmppath(path, sizeof(path), vc[nvc].file);
		write_file(path, full.data, full.len, 0600);
		fprintf(man, "%s %zu\n", vc[nvc].file, np);
		nvc++;
		/*
		 * XXX OpenDKIM's test mode says "message not signed" for a
		 * relaxed body without a final CRLF, which SMTP cannot carry
		 * anyway (dkimpy and the verifier here accept it); that
		 * message is left out of the OpenDKIM set.
		 */
		if (strcmp(m[i].name, "no-final-crlf") != 0)
			noc = od_write(oc, noc, 256, m[i].name, "", &out,
			    m[i].data, m[i].len, 1, odman);
		if (strcmp(m[i].name, "plain") != 0 &&
		    strcmp(m[i].name, "folded") != 0)
			continue;
		/* Tampered copies of this message. */
		{
			static const struct {
				const char	*tag;
				const char	*prepend;
				int		 pass;
			} tam[] = {
				{ "second-from", "From: Mallory "
				    "<m@evil.test>\r\n", 0 },
				{ "second-subject", "Subject: pay now\r\n", 0 },
				{ "second-to",
				    "To: victim@example.net\r\n", 0 },
				{ "added-reply-to", "Reply-To: "
				    "m@evil.test\r\n", 0 },
				{ "body-byte", NULL, 0 },
				{ "added-received", "Received: from x by y; "
				    "Sun, 22 Nov 2026 16:00:01 +0000\r\n", 1 },
				{ "added-x-header", "X-Scanned: yes\r\n", 1 },
			};
			size_t	 t;

			for (t = 0; t < sizeof(tam) / sizeof(tam[0]); t++) {
				struct buf tb;

				buf_init(&tb, 8 << 20);
				if (tam[t].prepend != NULL) {
					buf_append_str(&tb, tam[t].prepend);
					buf_append(&tb, full.data, full.len);
				} else {
					buf_append(&tb, full.data, full.len);
					/* The 'B' of "Bob" in the body. */
					char *bp = strstr(tb.data + out.len,
					    "\r\n\r\n");
					if (bp != NULL && bp[4] != '\0')
						bp[4] ^= 0x01;
				}
				snprintf(vc[nvc].file, sizeof(vc[nvc].file),
				    "%s-%s.eml", m[i].name, tam[t].tag);
				vc[nvc].nsig = np;
				vc[nvc].expect_pass = tam[t].pass;
				snprintf(vc[nvc].what, sizeof(vc[nvc].what),
				    "%s %s", m[i].name, tam[t].tag);
				tmppath(path, sizeof(path), vc[nvc].file);
				write_file(path, tb.data, tb.len, 0600);
				{
					char odn[96];

					snprintf(odn, sizeof(odn), "%s-%s",
					    m[i].name, tam[t].tag);
					if (tam[t].prepend != NULL)
						noc = od_write(oc, noc, 256,
						    odn, tam[t].prepend, &out,
						    m[i].data, m[i].len,
						    tam[t].pass, odman);
					else
						noc = od_write(oc, noc, 256,
						    odn, "", &out, tb.data +
						    out.len, tb.len - out.len,
						    tam[t].pass, odman);
				}
				fprintf(man, "%s %zu\n", vc[nvc].file, np);
				own_ok = 0;
				for (j = 0; j < np; j++)
					own_ok += verify(tb.data, tb.len, j,
					    p[j].key, NULL);
				ok(tam[t].pass ? own_ok == (int)np :
				    own_ok == 0, "%s %s: own verifier %s",
				    m[i].name, tam[t].tag, tam[t].pass ?
				    "accepts all" : "rejects all");
				nvc++;
				buf_clear(&tb);
			}
		}
	}
	fclose(man);
	fclose(odman);
	od_run(oc, noc);
	tmppath(path, sizeof(path), "verify.py");
	write_file(path, dkimpy_script, strlen(dkimpy_script), 0600);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/verify.py %s",
	    tmpdir, tmpdir);
	if ((f = popen(cmd, "r")) == NULL) {
		ok(0, "run dkimpy");
		goto done;
	}
	seen = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char	*sp = strchr(line, ' ');
		size_t	 npass = 0, nfail = 0;
		char	*r;

		if (sp == NULL)
			continue;
		*sp = '\0';
		for (r = strtok(sp + 1, " \n"); r != NULL;
		    r = strtok(NULL, " \n")) {
			if (strcmp(r, "pass") == 0)
				npass++;
			else
				nfail++;
		}
		for (i = 0; i < nvc; i++) {
			if (strcmp(vc[i].file, line) != 0)
				continue;
			seen++;
			pass_ok = vc[i].expect_pass ?
			    npass == vc[i].nsig && nfail == 0 :
			    npass == 0 && nfail == vc[i].nsig;
			ok(pass_ok, "dkimpy: %s: %zu pass, %zu fail (want "
			    "all %s)", vc[i].what, npass, nfail,
			    vc[i].expect_pass ? "pass" : "fail");
		}
	}
	ok(pclose(f) == 0 && seen == (int)nvc, "dkimpy ran and reported %d "
	    "of %zu messages", seen, nvc);
done:
	for (i = 0; i < nm; i++)
		free(m[i].data);
	buf_clear(&out);
	buf_clear(&full);
	buf_clear(&zone);
}

/* The automatic h= list: what is and is not signed. */
static void
test_hlist(void)
{
	struct dkim_sign_params	 p[4];
	struct buf		 out;
	char			 h[2048];
	static const char	 m[] =
	    "Return-Path: <x@example.org>\r\n"
	    "Received: from a by b\r\n"
	    "DKIM-Signature: v=1; d=old.example; b=\r\n"
	    "From: a@example.org\r\n"
	    "To: b@example.net\r\n"
	    "To: c@example.net\r\n"
	    "Resent-From: r@example.org\r\n"
	    "List-Unsubscribe: <mailto:u@example.org>\r\n"
	    "List-Foo: bar\r\n"
	    "X-Other: 1\r\n"
	    "\r\nbody\r\n";

	if (ed == NULL)
		return;
	dual_params(p);
	buf_init(&out, 1 << 16);
	ok(sign_chunked(&p[1], 1, m, strlen(m), 5, &out) == 0,
	    "sign a message with trace fields");
	extract(out.data, "h", h, sizeof(h));
	ok(strcmp(h, "from:from:sender:reply-to:subject:date:message-id:to:to:"
	    "to:cc:mime-version:content-type:content-transfer-encoding:"
	    "in-reply-to:references:list-id:list-help:list-unsubscribe:"
	    "list-unsubscribe:list-subscribe:list-post:list-owner:"
	    "list-archive:list-unsubscribe-post:resent-from:list-foo:"
	    "list-foo") == 0, "automatic h=: present ones and oversigning, "
	    "never Return-Path, Received, DKIM-Signature (%s)", h);
	ok(strstr(out.data, "l=") == NULL && strstr(out.data, "i=") ==
	    NULL && strstr(out.data, "x=") == NULL && strstr(out.data,
	    " t=") != NULL, "no l=, no i= or x= unless asked, t= always");

	/* Every optional tag at once, in order, and verifiable. */
	{
		struct dkim_sign_params q = p[1];
		struct buf full;
		char t[32], x[32];

		q.identity = "someone.with.a.long.local.part@mail.example.org";
		q.query_tag = 1;
		q.lifetime = 3600;
		q.timestamp = 2000000000;
		buf_reset(&out);
		buf_init(&full, 1 << 20);
		ok(sign_chunked(&q, 1, m, strlen(m), 64, &out) == 0,
		    "sign with i=, q=, x=");
		extract(out.data, "t", t, sizeof(t));
		extract(out.data, "x", x, sizeof(x));
		buf_append(&full, out.data, out.len);
		buf_append(&full, m, strlen(m));
		/* Unfold: each CRLF goes, the space after it stays. */
		{
			char *r, *w;

			for (r = w = out.data; *r != '\0'; r++)
				if (*r != '\r' && *r != '\n')
					*w++ = *r;
			*w = '\0';
		}
		ok(strcmp(t, "2000000000") == 0 && strcmp(x, "2000003600") ==
		    0 && verify(full.data, full.len, 0, ed, NULL) &&
		    strstr(out.data, "DKIM-Signature: v=1; a=ed25519-sha256; "
		    "c=relaxed/relaxed; d=example.org; i=someone.with.a.long."
		    "local.part@mail.example.org; q=dns/txt; s=e2026; "
		    "t=2000000000; x=2000003600; h=from:from:sender:") ==
		    out.data && strstr(out.data, "; bh=") != NULL &&
		    strstr(out.data, "; b=") != NULL,
		    "t= and x= = t + lifetime; tag order v a c d i q s t x h "
		    "bh b; verifies");
		buf_clear(&full);
	}
	/* Hundreds of To fields: h= of hundreds of names, folded. */
	{
		struct buf big, full;
		size_t i;

		buf_init(&big, 1 << 20);
		buf_init(&full, 1 << 20);
		buf_append_str(&big, "From: a@example.org\r\n");
		for (i = 0; i < 600; i++)
			buf_appendf(&big, "To: r%zu@example.net\r\n", i);
		buf_append_str(&big, "\r\nbody\r\n");
		buf_reset(&out);
		ok(sign_chunked(&p[0], 2, big.data, big.len, 1000, &out) ==
		    0, "sign a message with 600 To fields");
		buf_append(&full, out.data, out.len);
		buf_append(&full, big.data, big.len);
		ok(verify(full.data, full.len, 0, rsa2048, NULL) &&
		    verify(full.data, full.len, 1, ed, NULL) &&
		    longest_line(out.data, out.len) <= 78,
		    "600 To fields: both signatures verify, lines <= 78");
		buf_clear(&big);
		buf_clear(&full);
	}
	buf_clear(&out);
}

/* ---- Timings. ---- */

static double
openssl_speed(const char *alg, const char *match)
{
	char	 cmd[256], line[512];
	FILE	*f;
	double	 sec = 0;

	snprintf(cmd, sizeof(cmd), "openssl speed -seconds 1 %s 2>/dev/null",
	    alg);
	if ((f = popen(cmd, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, match);

		if (p != NULL) {
			/* "NAME  0.0003s  0.0000s  3748.7  55280.0": the
			 * seconds columns are rounded, sign/s is not. */
			double	 persec;
			char	*e;

			p += strlen(match);
			strtod(p, &e);			/* sign s */
			if (*e == 's')
				e++;
			strtod(e, &e);			/* verify s */
			if (*e == 's')
				e++;
			persec = strtod(e, NULL);	/* sign/s */
			if (persec > 0)
				sec = 1 / persec;
		}
	}
	pclose(f);
	return sec;
}

/*
 * Per-operation cost of the raw private-key operation with a context made
 * once (as `openssl speed` does) and of signing a whole message, measured
 * in alternating bursts; the best burst of each counts, because the
 * machine is shared and the load comes and goes.
 */
struct costs {
	double	 raw;
	double	 msg;
	double	 reuse;
};

static void
sign_costs(EVP_PKEY *pk, const char *m, size_t len, int burst, int rounds,
    struct costs *c)
{
	struct dkim_sign_params	 p;
	struct buf		 out;
	unsigned char		 dg[32] = { 1 }, sig[1024];
	char			 err[DKIM_ERR_LEN];
	size_t			 siglen;
	EVP_PKEY_CTX		*pc = NULL;
	EVP_MD_CTX		*mc = NULL;
	struct dkim_sign	*s;
	double			 t0, t;
	int			 r, i;

	memset(&p, 0, sizeof(p));
	p.domain = "example.org";
	p.selector = "sel";
	p.key = pk;
	buf_init(&out, 1 << 16);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		pc = EVP_PKEY_CTX_new(pk, NULL);
		EVP_PKEY_sign_init(pc);
		EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING);
		EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256());
	} else {
		mc = EVP_MD_CTX_new();
		EVP_DigestSignInit(mc, NULL, NULL, NULL, pk);
	}
	c->raw = c->msg = c->reuse = 1e9;
	s = dkim_sign_new(&p, 1, err, sizeof(err));
	for (r = 0; r < rounds; r++) {
		t0 = now();
		for (i = 0; i < burst; i++) {
			siglen = sizeof(sig);
			if (pc != NULL)
				EVP_PKEY_sign(pc, sig, &siglen, dg, 32);
			else
				EVP_DigestSign(mc, sig, &siglen, dg, 32);
		}
		if ((t = (now() - t0) / burst) < c->raw)
			c->raw = t;
		t0 = now();
		for (i = 0; i < burst; i++) {
			buf_reset(&out);
			dkim_sign_message(&p, 1, m, len, &out, err,
			    sizeof(err));
		}
		if ((t = (now() - t0) / burst) < c->msg)
			c->msg = t;
		t0 = now();
		for (i = 0; i < burst; i++) {
			buf_reset(&out);
			dkim_sign_reset(s);
			dkim_sign_feed(s, m, len);
			dkim_sign_end_body(s);
			dkim_sign_result(s, &out);
		}
		if ((t = (now() - t0) / burst) < c->reuse)
			c->reuse = t;
	}
	dkim_sign_free(s);
	EVP_PKEY_CTX_free(pc);
	EVP_MD_CTX_free(mc);
	buf_clear(&out);
}

static void
test_timing(void)
{
	struct dkim_sign_params	 p[4];
	struct dkim_sign	*s;
	struct testmsg		 m[32];
	struct buf		 out;
	char			 err[DKIM_ERR_LEN], *body;
	const size_t		 total = 20u << 20, chunk = 64 * 1024;
	struct costs		 rc, ec;
	double			 rsa_msg, ed_msg, os_rsa, os_ed;
	double			 t0, t1 = 0, t, best = 1e9, mib = 1e9;
	size_t			 nm, i, off, col;
	int			 rep;

	if (rsa2048 == NULL || ed == NULL)
		return;
	nm = make_messages(m);
	sign_costs(rsa2048, m[0].data, m[0].len, 5, 60, &rc);
	sign_costs(ed, m[0].data, m[0].len, 50, 100, &ec);
	os_rsa = openssl_speed("rsa2048", "rsa 2048 bits ");
	os_ed = openssl_speed("ed25519", "EdDSA (Ed25519) ");
	printf("# signing cost per message (%zu-byte message, one signature, "
	    "best of 60 or 100 short bursts):\n", m[0].len);
	printf("#   rsa-sha256 2048: new signer %.4f ms (x%.2f), reused "
	    "signer %.4f ms (x%.2f) of raw EVP_PKEY_sign %.4f ms; openssl "
	    "speed rsa2048 sign %.4f ms (new x%.2f, reused x%.2f)\n",
	    rc.msg * 1e3, rc.msg / rc.raw, rc.reuse * 1e3, rc.reuse / rc.raw,
	    rc.raw * 1e3, os_rsa * 1e3, os_rsa > 0 ? rc.msg / os_rsa : 0,
	    os_rsa > 0 ? rc.reuse / os_rsa : 0);
	printf("#   ed25519-sha256: new signer %.4f ms (x%.2f), reused "
	    "signer %.4f ms (x%.2f) of raw EVP_DigestSign %.4f ms; openssl "
	    "speed ed25519 sign %.4f ms (new x%.2f, reused x%.2f)\n",
	    ec.msg * 1e3, ec.msg / ec.raw, ec.reuse * 1e3, ec.reuse / ec.raw,
	    ec.raw * 1e3, os_ed * 1e3, os_ed > 0 ? ec.msg / os_ed : 0,
	    os_ed > 0 ? ec.reuse / os_ed : 0);
	rsa_msg = rc.msg;
	ed_msg = ec.msg;
	ok(rsa_msg > 0 && ed_msg > 0, "timings measured");
	for (i = 0; i < nm; i++)
		free(m[i].data);

	/* 20 MiB body through a dual signer (one relaxed body pass). */
	body = malloc(total);
	for (i = 0, col = 0; i < total; i++, col++) {
		if (col == 72 && i + 1 < total) {
			body[i++] = '\r';
			body[i] = '\n';
			col = 0;
			continue;
		}
		body[i] = "lorem ipsum dolor sit amet "[col % 27];
	}
	dual_params(p);
	buf_init(&out, 1 << 16);
	for (rep = 0; rep < 3; rep++) {
		s = dkim_sign_new(p, 2, err, sizeof(err));
		dkim_sign_feed(s, HDRS "\r\n", strlen(HDRS) + 2);
		t0 = now();
		for (off = 0; off < total; off += chunk) {
			if (off % (1u << 20) == 0)
				t1 = now();
			dkim_sign_body(s, body + off, chunk);
			if ((off + chunk) % (1u << 20) == 0 &&
			    now() - t1 < mib)
				mib = now() - t1;
		}
		dkim_sign_end_body(s);
		t = now() - t0;
		if (t < best)
			best = t;
		buf_reset(&out);
		dkim_sign_result(s, &out);
		dkim_sign_free(s);
	}
	printf("# body hash through the signer, 20 MiB plain text, relaxed, "
	    "RSA + Ed25519 sharing one pass: %.0f MB/s whole pass (%.1f ms "
	    "incl. both signatures), best single MiB %.0f MB/s\n",
	    total / best / 1e6, best * 1e3, 1048576 / mib / 1e6);
	ok(total / best > 100e6, "20 MiB body signed at over 100 MB/s");
	free(body);
	buf_clear(&out);
}

int
main(void)
{
	char	 cmd[600];

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_dkim_sign.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	test_kat();
	test_keyctx();
	test_order();
	test_keys();
	test_hlist();
	test_verifiers();
	test_timing();
	EVP_PKEY_free(kat_ed);
	EVP_PKEY_free(kat_rsa);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(ed);
	if (getenv("KEEP_TMP") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpdir);
	} else
		printf("# kept %s\n", tmpdir);
	return tap_done();
}

/*
 * dkim_key: load DKIM private keys under the key policy, generate new ones
 * (PKCS#8 PEM, mode 0600, never over an existing file) and print the DNS
 * TXT record for the public half.  See dkim_key.h.
 *
 * Owns: the file descriptors and the key bytes it reads or writes, which it
 * wipes (OPENSSL_cleanse) before freeing.  Returns EVP_PKEY objects that the
 * caller owns.  Limits: a key file is at most DKIM_KEY_FILE_MAX bytes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim_key.h"

#define DNS_TXT_STRING_MAX	255	/* RFC 1035 3.3.14 character-string */

const char *
dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *
dkim_alg_keytype(enum dkim_alg alg)
{
	return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
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

int
dkim_valid_dns_name(const char *s)
{
	size_t	 len, label = 0;
	unsigned char c;

	if (s == NULL || (len = strlen(s)) == 0 || len > 253)
		return 0;
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

int
dkim_key_check(EVP_PKEY *pk, int allow_weak, struct dkim_key_info *info,
    char *err, size_t errlen)
{
	EVP_PKEY_CTX	*ctx;
	const char	*tn;
	int		 id, bits, good;

	id = EVP_PKEY_get_base_id(pk);
	bits = EVP_PKEY_get_bits(pk);
	if (id == EVP_PKEY_ED25519) {
		info->alg = DKIM_ALG_ED25519_SHA256;
	} else if (id == EVP_PKEY_RSA) {
		info->alg = DKIM_ALG_RSA_SHA256;
		/* RFC 8301 3.2: under 1024 bits never; 2048 recommended. */
		/* The texts are those of relayd -t (relayd/check.c). */
		if (bits < DKIM_RSA_MIN_BITS ||
		    (bits < DKIM_RSA_GOOD_BITS && !allow_weak)) {
			seterr(err, errlen, "RSA key of %d bits; at least %d "
			    "needed%s", bits, DKIM_RSA_GOOD_BITS,
			    bits >= DKIM_RSA_MIN_BITS ?
			    " (or allow_weak_key = yes)" : "");
			return -1;
		}
		if (bits > DKIM_RSA_MAX_BITS) {
			seterr(err, errlen, "RSA key of %d bits; at most %d "
			    "(what verifiers must take, RFC 8301)", bits,
			    DKIM_RSA_MAX_BITS);
			return -1;
		}
	} else {
		tn = EVP_PKEY_get0_type_name(pk);
		seterr(err, errlen, "neither an RSA nor an Ed25519 key (%s)",
		    tn != NULL ? tn : "?");
		return -1;
	}
	/* The public half must match the private half. */
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	good = EVP_PKEY_pairwise_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!good) {
		seterr(err, errlen, "inconsistent private key");
		return -1;
	}
	info->bits = bits;
	info->loose_mode = 0;
	return 0;
}

/* No passphrase: encrypted keys fail to load. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

int
dkim_key_load(const char *path, int allow_weak, EVP_PKEY **keyp,
    struct dkim_key_info *info, char *err, size_t errlen)
{
	struct stat	 st;
	unsigned char	*data = NULL;
	EVP_PKEY	*pk = NULL;
	BIO		*bio = NULL;
	size_t		 len = 0;
	ssize_t		 r;
	int		 fd, loose, rc = -1;

	*keyp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		seterr(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		seterr(err, errlen, "not a regular file");
		goto done;
	}
	if (st.st_size > DKIM_KEY_FILE_MAX) {
		seterr(err, errlen, "too large for a key file");
		goto done;
	}
	loose = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	if ((data = malloc(DKIM_KEY_FILE_MAX + 1)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	for (;;) {
		r = read(fd, data + len, DKIM_KEY_FILE_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			seterr(err, errlen, "read: %s", strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		len += r;
		if (len > DKIM_KEY_FILE_MAX) {
			seterr(err, errlen, "too large for a key file");
			goto done;
		}
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ERR_clear_error();
	if (pk == NULL) {
		if (memmem(data, len, "ENCRYPTED", 9) != NULL)
			seterr(err, errlen, "not a PEM private key "
			    "(encrypted keys are not supported)");
		else
			seterr(err, errlen, "not a PEM private key");
		goto done;
	}
	if (dkim_key_check(pk, allow_weak, info, err, errlen) == -1)
		goto done;
	info->loose_mode = loose;
	*keyp = pk;
	pk = NULL;
	rc = 0;
done:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	if (data != NULL) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	close(fd);
	return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 r;

	while (n > 0) {
		r = write(fd, p, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= r;
	}
	return 0;
}

int
dkim_keygen(enum dkim_alg alg, int bits, const char *path, EVP_PKEY **keyp,
    char *err, size_t errlen)
{
	EVP_PKEY	*pk = NULL;
	BIO		*bio = NULL;
	char		*pem;
	long		 pemlen;
	int		 fd = -1, rc = -1, created = 0;

	if (keyp != NULL)
		*keyp = NULL;
	if (alg == DKIM_ALG_RSA_SHA256) {
		if (bits < DKIM_RSA_GOOD_BITS || bits > DKIM_RSA_MAX_BITS) {
			seterr(err, errlen, "RSA key size must be %d to %d "
			    "bits", DKIM_RSA_GOOD_BITS, DKIM_RSA_MAX_BITS);
			return -1;
		}
		pk = EVP_RSA_gen((unsigned)bits);
	} else if (alg == DKIM_ALG_ED25519_SHA256) {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		seterr(err, errlen, "unknown algorithm");
		return -1;
	}
	if (pk == NULL) {
		ERR_clear_error();
		seterr(err, errlen, "key generation failed");
		return -1;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL,
	    NULL) != 1 || (pemlen = BIO_get_mem_data(bio, &pem)) <= 0) {
		ERR_clear_error();
		seterr(err, errlen, "cannot encode the key");
		goto done;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		seterr(err, errlen, "%s: %s", path, errno == EEXIST ?
		    "exists; refusing to overwrite" : strerror(errno));
		goto done;
	}
	created = 1;
	/* The umask may only have narrowed 0600; make it exactly 0600. */
	if (fchmod(fd, 0600) == -1 || write_all(fd, pem, pemlen) == -1 ||
	    fsync(fd) == -1) {
		seterr(err, errlen, "%s: write: %s", path, strerror(errno));
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		seterr(err, errlen, "%s: close: %s", path, strerror(errno));
		goto done;
	}
	fd = -1;
	if (keyp != NULL) {
		*keyp = pk;
		pk = NULL;
	}
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	if (rc == -1 && created)
		unlink(path);
	if (bio != NULL) {
		if (BIO_get_mem_data(bio, &pem) > 0)
			OPENSSL_cleanse(pem, BIO_get_mem_data(bio, &pem));
		BIO_free(bio);
	}
	EVP_PKEY_free(pk);
	return rc;
}

int
dkim_dns_txt(EVP_PKEY *pk, struct buf *out)
{
	unsigned char	 raw[32], *der = NULL;
	char		*b64 = NULL;
	const char	*kt;
	size_t		 rawlen = sizeof(raw), save = out->len;
	int		 id, n, rc = -1;

	id = EVP_PKEY_get_base_id(pk);
	if (id == EVP_PKEY_ED25519) {
		/* RFC 8463 4.2: the bare public key, not the SPKI. */
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 ||
		    rawlen != 32)
			goto done;
		if ((b64 = malloc(45)) == NULL)
			goto done;
		EVP_EncodeBlock((unsigned char *)b64, raw, 32);
		kt = "ed25519";
	} else if (id == EVP_PKEY_RSA) {
		/* RFC 6376 3.6.1: p= is the SubjectPublicKeyInfo. */
		if ((n = i2d_PUBKEY(pk, &der)) <= 0)
			goto done;
		if ((b64 = malloc(((size_t)n + 2) / 3 * 4 + 1)) == NULL)
			goto done;
		EVP_EncodeBlock((unsigned char *)b64, der, n);
		kt = "rsa";
	} else
		goto done;
	if (buf_appendf(out, "v=DKIM1; k=%s; p=%s", kt, b64) == -1)
		goto done;
	rc = 0;
done:
	ERR_clear_error();
	OPENSSL_free(der);
	free(b64);
	if (rc == -1 && out->data != NULL) {
		out->len = save;
		out->data[save] = '\0';
	}
	return rc;
}

int
dkim_dns_record(const char *domain, const char *selector, EVP_PKEY *pk,
    struct buf *out)
{
	struct buf	 txt;
	char		 dom[254];
	size_t		 save = out->len, off, k, dlen;
	int		 rc = -1;

	/* One trailing dot on the domain is tolerated. */
	dlen = domain != NULL ? strlen(domain) : 0;
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (dlen == 0 || dlen >= sizeof(dom))
		return -1;
	memcpy(dom, domain, dlen);
	dom[dlen] = '\0';
	if (!dkim_valid_dns_name(dom) || !dkim_valid_dns_name(selector))
		return -1;
	buf_init(&txt, 8192);
	if (dkim_dns_txt(pk, &txt) == -1)
		goto done;
	if (buf_appendf(out, "%s._domainkey.%s. IN TXT (", selector, dom) == -1)
		goto done;
	for (off = 0; off < txt.len; off += k) {
		k = txt.len - off;
		if (k > DNS_TXT_STRING_MAX)
			k = DNS_TXT_STRING_MAX;
		if (buf_append(out, " \"", 2) == -1 ||
		    buf_append(out, txt.data + off, k) == -1 ||
		    buf_append(out, "\"", 1) == -1)
			goto done;
	}
	if (buf_append(out, " )", 2) == -1)
		goto done;
	rc = 0;
done:
	buf_clear(&txt);
	if (rc == -1 && out->len >= save) {
		out->len = save;
		if (out->data != NULL)
			out->data[save] = '\0';
	}
	return rc;
}

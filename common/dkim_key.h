/*
 * dkim_key: DKIM private keys: loading with the key policy, generation, and
 * the DNS TXT record that publishes the public half.
 *
 * Policy (RFC 8301 section 3.2, RFC 8463): RSA keys of 1024 bits or more
 * and at most DKIM_RSA_MAX_BITS, refused under 2048 bits unless allow_weak
 * is set; Ed25519 keys.  Every other key type (EC, RSA-PSS, DSA, X25519...)
 * is refused.  Keys are PEM: RSA as PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
 * ("PRIVATE KEY"), Ed25519 as PKCS#8.  Encrypted keys are refused (the
 * daemon has nobody to ask for a passphrase).
 *
 * No globals; error text goes into a caller's buffer and never contains
 * key material.
 */
#ifndef RELAYD_DKIM_KEY_H
#define RELAYD_DKIM_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

#include "buf.h"

#define DKIM_RSA_MIN_BITS	1024	/* RFC 8301 3.2: never below */
#define DKIM_RSA_GOOD_BITS	2048	/* below this only with allow_weak */
#define DKIM_RSA_MAX_BITS	4096	/* RFC 8301 3.2: verifiers must take */
#define DKIM_KEY_FILE_MAX	(64 * 1024)	/* a PEM key file is small */
#define DKIM_ERR_LEN		256	/* a good size for error buffers */

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0,	/* RFC 6376 3.3.1 */
	DKIM_ALG_ED25519_SHA256,	/* RFC 8463 3 */
};

struct dkim_key_info {
	enum dkim_alg	 alg;
	int		 bits;		/* RSA modulus bits; 256 for Ed25519 */
	int		 loose_mode;	/* file readable by group or others */
};

/* "rsa-sha256" or "ed25519-sha256" (the a= value). */
const char	*dkim_alg_name(enum dkim_alg);
/* "rsa" or "ed25519" (the k= value of the DNS record). */
const char	*dkim_alg_keytype(enum dkim_alg);

/*
 * Apply the key policy to a loaded key.  Returns 0 and fills info (its
 * loose_mode is set to 0), or -1 with a reason in err.
 */
int	dkim_key_check(EVP_PKEY *, int allow_weak, struct dkim_key_info *info,
	    char *err, size_t errlen);

/*
 * Load the PEM private key in path and apply the policy.  Returns 0 and
 * sets *keyp (the caller owns it: EVP_PKEY_free) and info, or -1 with a
 * reason in err, without the path (the caller prefixes "PATH: " with its
 * own context), worded as relayd -t words it: "No such file or
 * directory", "not a PEM private key", "RSA key of 1024 bits; at least
 * 2048 needed (or allow_weak_key = yes)", "neither an RSA nor an Ed25519
 * key (EC)".  info->loose_mode tells that the file is
 * readable by group or others: the caller warns, the key is still loaded.
 */
int	dkim_key_load(const char *path, int allow_weak, EVP_PKEY **keyp,
	    struct dkim_key_info *info, char *err, size_t errlen);

/*
 * Generate a key (RSA of bits 2048..4096, or Ed25519: bits ignored) and
 * write it to path as unencrypted PKCS#8 PEM with mode 0600.  The file must
 * not exist (O_CREAT|O_EXCL, no symlink followed); on any failure nothing
 * is left behind.  Returns 0 and, if keyp is not NULL, the key in *keyp
 * (caller frees); or -1 with a reason in err.
 */
int	dkim_keygen(enum dkim_alg, int bits, const char *path, EVP_PKEY **keyp,
	    char *err, size_t errlen);

/*
 * Append the zone-file line publishing the public key of pkey (RFC 6376
 * 3.6.1, 3.6.2.2):
 *
 *   SELECTOR._domainkey.DOMAIN. IN TXT ( "v=DKIM1; k=rsa; p=..." "..." )
 *
 * without a final newline.  Each quoted string holds at most 255 octets
 * (RFC 1035 3.3.14).  RSA p= is the SubjectPublicKeyInfo in base64;
 * Ed25519 p= is the bare 32-byte public key in base64, 44 characters
 * (RFC 8463 4.2).  Returns 0, or -1 (bad names, unsupported key, out
 * full).
 */
int	dkim_dns_record(const char *domain, const char *selector, EVP_PKEY *,
	    struct buf *out);

/*
 * Append only the TXT value, unsplit: "v=DKIM1; k=...; p=..." (what a
 * resolver returns once the strings are joined).  Returns 0 or -1.
 */
int	dkim_dns_txt(EVP_PKEY *, struct buf *out);

/* A DNS name usable as d= or s=: LDH labels, underscores allowed, dots
 * between labels, no trailing dot, 1..253 octets.  Returns 1 or 0. */
int	dkim_valid_dns_name(const char *);

#endif

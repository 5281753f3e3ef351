/*
 * rewrite: VERP envelope senders on the aligned bounce domain.  See
 * rewrite.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "envelope.h"
#include "rewrite.h"

#define REWRITE_SECRET_MIN	32
#define REWRITE_SECRET_MAX	4096

int
rewrite_key_load(const char *path, uint8_t key[VERP_KEY_LEN], FILE *err)
{
	static const char	 label[] = "relayd verp key 1";
	unsigned char		 sec[REWRITE_SECRET_MAX];
	EVP_MD_CTX		*md = NULL;
	unsigned int		 mdlen = 0;
	ssize_t			 n;
	size_t			 len = 0;
	int			 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while (len < sizeof(sec) &&
	    (n = read(fd, sec + len, sizeof(sec) - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len < REWRITE_SECRET_MIN) {
		fprintf(err, "%s: secret_file holds %zu bytes; at least %d are "
		    "needed\n", path, len, REWRITE_SECRET_MIN);
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(md, label, sizeof(label)) &&
	    EVP_DigestUpdate(md, sec, len) &&
	    EVP_DigestFinal_ex(md, key, &mdlen) && mdlen == VERP_KEY_LEN)
		rc = 0;
	EVP_MD_CTX_free(md);
	if (rc == -1)
		fprintf(err, "%s: cannot derive the VERP key\n", path);
out:
	OPENSSL_cleanse(sec, sizeof(sec));
	return rc;
}

int
rewrite_sender(const uint8_t key[VERP_KEY_LEN], const struct envelope *env,
    size_t i, char *out, size_t cap)
{
	char	 local[VERP_LOCAL_LEN + 1];
	int	 n;

	if (env->mail_from == NULL || env->mail_from[0] == '\0') {
		if (cap == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	if (env->bounce_domain == NULL) {
		n = snprintf(out, cap, "%s", env->mail_from);
		return (n < 0 || (size_t)n >= cap) ? -1 : 0;
	}
	if (i > UINT32_MAX || verp_encode(key, env->id, (uint32_t)i, local,
	    sizeof(local)) == -1)
		return -1;
	n = snprintf(out, cap, "%s@%s", local, env->bounce_domain);
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

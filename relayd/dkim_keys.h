/*
 * dkim_keys: the private keys of every [domain] section, loaded once per
 * configuration generation (start and reload; a bad key makes the whole
 * reload fail, so the running keys stay).  Read-only once loaded: signers
 * on worker threads take their own references to the EVP_PKEYs.
 */
#ifndef RELAYD_DKIM_KEYS_H
#define RELAYD_DKIM_KEYS_H

#include <stddef.h>
#include <stdio.h>
#include <openssl/evp.h>

struct config;
struct config_domain;
struct dkim_keys;

/* Returns NULL after printing each problem as "FILE:LINE: [domain D] dkim:
 * ..." to err.  Group- or world-readable key files get a warning line. */
struct dkim_keys *dkim_keys_load(const struct config *, FILE *err);
void	dkim_keys_free(struct dkim_keys *);
/* The keys of section d of cf (in dkim = order; d->ndkim of them). */
EVP_PKEY *const *dkim_keys_of(const struct dkim_keys *,
	    const struct config *cf, const struct config_domain *d);

#endif

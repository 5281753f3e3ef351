/*
 * dkim_keys: load the DKIM keys a configuration names.  See dkim_keys.h.
 * Owns one EVP_PKEY reference per dkim = line; freed with the generation.
 */
#include <stdlib.h>

#include "config.h"
#include "dkim_key.h"
#include "dkim_keys.h"

struct dkim_keys {
	size_t		  ndomains;
	EVP_PKEY	***keys;	/* [domain][dkim line] */
};

struct dkim_keys *
dkim_keys_load(const struct config *cf, FILE *err)
{
	struct dkim_keys	*k;
	struct dkim_key_info	 info;
	char			 e[DKIM_ERR_LEN];
	size_t			 i, j;
	int			 bad = 0;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->ndomains = cf->ndomains;
	if (cf->ndomains > 0 &&
	    (k->keys = calloc(cf->ndomains, sizeof(*k->keys))) == NULL)
		goto fail;
	for (i = 0; i < cf->ndomains; i++) {
		const struct config_domain *d = &cf->domains[i];

		if ((k->keys[i] = calloc(d->ndkim + 1, sizeof(EVP_PKEY *))) ==
		    NULL)
			goto fail;
		for (j = 0; j < d->ndkim; j++) {
			if (dkim_key_load(d->dkim[j].keyfile,
			    d->allow_weak_key, &k->keys[i][j], &info, e,
			    sizeof(e)) == -1) {
				fprintf(err, "%s:%d: [domain %s] dkim: %s: %s\n",
				    cf->path, d->dkim[j].line, d->name,
				    d->dkim[j].keyfile, e);
				bad++;
				continue;
			}
			if (info.loose_mode)
				fprintf(err, "%s:%d: [domain %s] dkim: "
				    "warning: %s is readable by group or "
				    "others\n", cf->path, d->dkim[j].line,
				    d->name, d->dkim[j].keyfile);
		}
	}
	if (bad == 0)
		return k;
fail:
	dkim_keys_free(k);
	return NULL;
}

void
dkim_keys_free(struct dkim_keys *k)
{
	size_t	 i, j;

	if (k == NULL)
		return;
	for (i = 0; i < k->ndomains && k->keys != NULL; i++) {
		for (j = 0; k->keys[i] != NULL && k->keys[i][j] != NULL; j++)
			EVP_PKEY_free(k->keys[i][j]);
		free(k->keys[i]);
	}
	free(k->keys);
	free(k);
}

EVP_PKEY *const *
dkim_keys_of(const struct dkim_keys *k, const struct config *cf,
    const struct config_domain *d)
{
	size_t	 i = (size_t)(d - cf->domains);

	if (k == NULL || i >= k->ndomains)
		return NULL;
	return k->keys[i];
}

/*
 * tls: OpenSSL contexts for the listeners and, later, for delivery.
 *
 * Owns nothing after return: each function hands a new SSL_CTX to the
 * caller (free with SSL_CTX_free()).  Server contexts never request a
 * client certificate, so one presented anyway (Gmail does on 465) is
 * accepted unverified; renegotiation is off; the session cache and
 * tickets are on.  Every failure prints OpenSSL's error queue to err.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"

/* Print what, then each error on OpenSSL's queue (and clear it). */
static void
tls_error(FILE *err, const char *what, const char *file)
{
	unsigned long	 e;
	char		 buf[256];
	int		 any = 0;

	if (err == NULL) {
		ERR_clear_error();
		return;
	}
	if (file != NULL)
		fprintf(err, "tls: %s %s", what, file);
	else
		fprintf(err, "tls: %s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(err, "%s %s", any ? ";" : ":", buf);
		any = 1;
	}
	fputc('\n', err);
}

SSL_CTX *
tls_server_ctx_new(const char *cert, const char *key, int min_version,
    FILE *err)
{
	static const unsigned char	 sid[] = "relayd";
	SSL_CTX				*ctx;

	ERR_clear_error();
	if (min_version != TLS1_2_VERSION && min_version != TLS1_3_VERSION) {
		if (err != NULL)
			fprintf(err, "tls: unsupported minimum version %#x\n",
			    min_version);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(err, "cannot create server context", NULL);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min_version)) {
		tls_error(err, "cannot set minimum version", NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle connections give their buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Client certificates are never requested (and never refused). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_error(err, "cannot load certificate chain", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, "cannot load private key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, "private key does not match certificate", key);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx_new(int verify, FILE *err)
{
	SSL_CTX	*ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_error(err, "cannot create client context", NULL);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		tls_error(err, "cannot set minimum version", NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_error(err, "cannot load the system CA store", NULL);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

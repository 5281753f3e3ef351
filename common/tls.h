/*
 * tls: OpenSSL contexts.
 */
#ifndef RELAYD_TLS_H
#define RELAYD_TLS_H

#include <stdio.h>
#include <openssl/ssl.h>

/*
 * A server context: certificate chain and key from files, minimum protocol
 * version (TLS1_2_VERSION or TLS1_3_VERSION), no client certificate
 * requested (and one presented anyway is accepted unverified), session
 * tickets on.  Returns NULL after printing the problem to err.
 */
SSL_CTX	*tls_server_ctx_new(const char *cert, const char *key,
	    int min_version, FILE *err);

#endif

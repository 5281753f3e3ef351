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

/*
 * A client context for outbound delivery: TLS 1.2 minimum, the system's
 * CA store loaded.  With verify non-zero the peer's certificate chain is
 * verified (SSL_VERIFY_PEER); the caller still sets the expected name per
 * connection (SSL_set1_host()).  With verify zero nothing is verified
 * (opportunistic TLS).  Returns NULL after printing the problem to err.
 */
SSL_CTX	*tls_client_ctx_new(int verify, FILE *err);

#endif

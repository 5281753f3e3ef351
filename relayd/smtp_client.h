/*
 * smtp_client: one outbound SMTP connection to one address, event-driven
 * on libevent bufferevents (OpenSSL bufferevents for TLS).
 *
 * The process must ignore SIGPIPE (relayd's main() does): writes to a
 * connection the server closed go through writev(), by libevent and by
 * the client's direct writes, and would otherwise kill it.
 *
 * Life of a client (all calls and callbacks on the loop thread):
 *
 *	c = smtp_client_connect(base, &params, sa, salen, &cbs, arg, err, n);
 *	  ... banner, EHLO, STARTTLS + EHLO, AUTH as params say ...
 *	cbs.ready(c, arg)		greeted; may send a transaction now
 *	smtp_client_send(c, &txn)	MAIL, RCPT..., DATA, message, "."
 *	cbs.done(c, &txn_result, arg)	one result per recipient
 *	smtp_client_send(c, &txn2)	again on the same connection (RSET is
 *					sent first when the last one failed)
 *	smtp_client_quit(c)		QUIT, then
 *	cbs.closed(c, &result, arg)	always the last callback
 *	smtp_client_free(c)		(may be called inside any callback)
 *
 * closed() is called exactly once unless the caller frees the client
 * first: after QUIT (status OK), or when the connection fails, times out or
 * is closed by the server at any point.  If that happens during a
 * transaction, done() comes first with every unsettled recipient failed
 * and conn_lost set, then closed().  smtp_client_free() at any time (in a
 * callback too) closes the connection at once and no callback follows.
 *
 * Outcomes (RFC 5321 sections 4.2.1 and 4.5.3.2; issue 5):
 *  - before the transaction (connect, banner, EHLO, STARTTLS, TLS
 *    handshake, AUTH): always TEMPFAIL, whatever the reply class, since the
 *    caller should try the next MX or retry later; code and text kept;
 *  - MAIL: 4xx TEMPFAIL / 5xx PERMFAIL for every recipient;
 *  - RCPT: per recipient;
 *  - DATA and the reply after the final dot: for every recipient whose
 *    RCPT was accepted; 2xx after the dot means delivered;
 *  - connection loss and timeouts: TEMPFAIL (4.4.2); the timeout after the
 *    final dot also logs that the message may be delivered twice.
 *
 * Local decisions (no command sent):
 *  - the message is 8-bit and the server lacks 8BITMIME: PERMFAIL 5.6.3
 *    (converting to 7 bits would break the DKIM signatures, and RFC 6152
 *    forbids sending 8-bit data without it);
 *  - SMTPUTF8 needed and not offered: PERMFAIL 5.6.7 (RFC 6531 3.7);
 *  - message larger than the server's SIZE: PERMFAIL 5.3.4 (RFC 1870);
 *  - TLS required (or AUTH configured) and STARTTLS not offered: TEMPFAIL
 *    4.7.4, before any MAIL or AUTH is sent: nothing leaves in clear;
 *  - AUTH configured but not offered by the server: TEMPFAIL 4.7.4;
 *    AUTH rejected: TEMPFAIL with the server's reply (as Postfix's
 *    smtp_sasl_auth_soft_bounce).
 */
#ifndef RELAYD_SMTP_CLIENT_H
#define RELAYD_SMTP_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "smtp_reply.h"

struct event_base;
struct smtp_client;

enum smtp_client_state {
	SMTP_CLIENT_CONNECTING = 0,
	SMTP_CLIENT_TLS_HANDSHAKE,	/* after STARTTLS's 220, or implicit */
	SMTP_CLIENT_BANNER,
	SMTP_CLIENT_EHLO,
	SMTP_CLIENT_HELO,		/* EHLO refused: RFC 5321 3.2 */
	SMTP_CLIENT_STARTTLS,
	SMTP_CLIENT_EHLO_TLS,		/* EHLO again inside TLS */
	SMTP_CLIENT_AUTH,
	SMTP_CLIENT_READY,		/* idle, between transactions */
	SMTP_CLIENT_RSET,
	SMTP_CLIENT_MAIL,
	SMTP_CLIENT_RCPT,
	SMTP_CLIENT_DATA,
	SMTP_CLIENT_BODY,		/* sending the message */
	SMTP_CLIENT_DOT,		/* waiting for the final reply */
	SMTP_CLIENT_QUIT,
	SMTP_CLIENT_CLOSED,
	SMTP_CLIENT_STATE_COUNT
};

const char *smtp_client_state_name(enum smtp_client_state);

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE = 0,	/* never STARTTLS */
	SMTP_CLIENT_TLS_OPPORTUNISTIC,	/* STARTTLS when offered, else clear;
					 * a failed handshake is TEMPFAIL */
	SMTP_CLIENT_TLS_REQUIRED,	/* STARTTLS or TEMPFAIL 4.7.4 */
	SMTP_CLIENT_TLS_IMPLICIT,	/* TLS from the first byte (port 465) */
};

/* Timeouts in seconds; 0 takes the default (RFC 5321 section 4.5.3.2). */
struct smtp_client_timeouts {
	unsigned	 connect;	/* 30 */
	unsigned	 banner;	/* 300: initial 220 */
	unsigned	 ehlo;		/* 300: EHLO, HELO, STARTTLS, AUTH */
	unsigned	 mail;		/* 300 */
	unsigned	 rcpt;		/* 300 */
	unsigned	 data;		/* 120: DATA's 354 */
	unsigned	 block;		/* 180: progress sending the body */
	unsigned	 dot;		/* 600: reply after the final dot */
	unsigned	 rset;		/* 300: RSET, QUIT */
};

struct smtp_client_params {
	const char	*id;		/* log ID (queue or connection ID) */
	const char	*helo;		/* our name in EHLO / HELO */
	enum smtp_client_tls tls;
	int		 verify;	/* verify the certificate against
					 * tls_name (SSL_set1_host) */
	const char	*tls_name;	/* SNI and name to verify: the MX host
					 * or smarthost name; NULL: no SNI */
	SSL_CTX		*ssl_ctx;	/* tls_client_ctx_new(verify); the
					 * caller's, must outlive the client */
	const char	*auth_user;	/* NULL or "": no AUTH */
	const char	*auth_pass;
	struct smtp_client_timeouts timeouts;
};

/* One outcome: a whole connection, a transaction or one recipient. */
#define SMTP_RESULT_TEXT_MAX	512
struct smtp_result {
	enum smtp_status	 status;
	int			 code;		/* the server's code, or 0 */
	char			 enhanced[SMTP_ENHANCED_MAX];
	/* Printable and escaped (smtp_reply_format()): "550 5.1.1 text"
	 * for a server reply, else our sentence.  Safe for logs, the spool
	 * and DSNs. */
	char			 text[SMTP_RESULT_TEXT_MAX];
	enum smtp_client_state	 state;		/* where it happened */
};

/*
 * A transaction.  Strings are copied by smtp_client_send(); msg is not:
 * it must stay valid and unchanged until done() (or smtp_client_free()).
 */
struct smtp_txn {
	const char	*mail_from;	/* "" for the null sender <> */
	const char	**rcpts;
	size_t		 nrcpts;	/* >= 1 */
	const void	*msg;		/* CRLF lines, not dot-stuffed */
	size_t		 len;
	int		 eightbit;	/* has 8-bit bytes: BODY=8BITMIME */
	int		 smtputf8;	/* needs SMTPUTF8 (RFC 6531) */
};

struct smtp_txn_result {
	struct smtp_result	 txn;	/* the transaction as a whole: OK when
					 * the final dot got 2xx */
	size_t			 nrcpts;
	struct smtp_result	*rcpts;	/* in the order of smtp_txn.rcpts */
	size_t			 delivered;	/* recipients with OK */
	int			 conn_lost;	/* closed() follows */
};

/* Server capabilities from EHLO, for callers and logs. */
struct smtp_client_caps {
	int		 esmtp;		/* EHLO worked (not HELO) */
	int		 pipelining;
	int		 starttls;
	int		 eightbitmime;
	int		 smtputf8;
	int		 size;		/* SIZE advertised */
	unsigned long long size_max;	/* 0: no limit given */
	int		 auth_plain;
	int		 auth_login;
	int		 tls;		/* the session is encrypted now */
	int		 tls_verified;	/* and the name was verified */
	int		 authenticated;
};

struct smtp_client_cbs {
	void	(*ready)(struct smtp_client *, void *arg);
	void	(*done)(struct smtp_client *, const struct smtp_txn_result *,
		    void *arg);
	void	(*closed)(struct smtp_client *, const struct smtp_result *,
		    void *arg);
};

/*
 * Start connecting to sa (the port is in sa).  params and cbs are copied.
 * Returns NULL with a message in err for unusable parameters (AUTH with
 * tls NONE, verify without tls_name, TLS without ssl_ctx) or when out of
 * memory; a failure to connect is reported through closed().
 */
struct smtp_client *smtp_client_connect(struct event_base *base,
	    const struct smtp_client_params *params, const struct sockaddr *sa,
	    socklen_t salen, const struct smtp_client_cbs *cbs, void *arg,
	    char *err, size_t errlen);

/*
 * Send a transaction.  Only in READY (after ready() or done() without
 * conn_lost).  Returns 0, or -1 when the client is not ready or the
 * transaction is unusable (no recipients, CR/LF/NUL or more than 512
 * octets in an address): nothing is sent and no callback follows.
 */
int	smtp_client_send(struct smtp_client *, const struct smtp_txn *);

/* Say QUIT politely (only in READY; else the same as free). */
void	smtp_client_quit(struct smtp_client *);

/* Close at once; no callback follows.  NULL is a no-op. */
void	smtp_client_free(struct smtp_client *);

enum smtp_client_state smtp_client_state(const struct smtp_client *);
const struct smtp_client_caps *smtp_client_caps(const struct smtp_client *);

#endif

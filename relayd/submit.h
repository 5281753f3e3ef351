/*
 * submit: what happens to a submitted message between the end of its
 * header section and the spool (DESIGN.md, the message path):
 *
 *   1. sender policy on the header section, as soon as it is complete
 *      (sender_policy.h): one parse of From drives ownership, the signing
 *      [domain] and the bounce domain;
 *   2. the fields a submission server owes (RFC 6409 section 8): Date and
 *      Message-ID when missing, and relayd's own Received field (RFC 5321
 *      4.4), which names the client only with [policy] received_client;
 *   3. DKIM: the body hash runs while DATA streams in (one SHA-256 pass,
 *      no second read of the body); at the final dot a worker thread
 *      finishes the hashes and signs with every key of the domain;
 *   4. the spool commit of DKIM-Signature + Received + added fields +
 *      the message as received, without copying the body, started by
 *      that same worker thread (no trip back to the loop in between).
 *
 * The DKIM-Signature fields are computed over exactly the bytes stored
 * and sent (invariant 4); Received is never signed.
 *
 * Lifetime: the session owns its submit and frees it at the end of the
 * transaction or when it goes away; a pending signature job or spool commit
 * is then detached (worker.h rule) and the callback is never called.
 */
#ifndef RELAYD_SUBMIT_H
#define RELAYD_SUBMIT_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "envelope.h"

struct config;
struct user;
struct dkim_keys;
struct worker_pool;
struct spool;
struct submit;

struct submit_params {
	const struct config	*cf;
	const struct user	*user;
	const struct dkim_keys	*keys;
	struct worker_pool	*workers;
	struct spool		*spool;
	const char		*id;		/* queue ID (spool_id_new) */
	int			 utf8;		/* SMTPUTF8 transaction */
	const char		*helo;		/* as sent; sanitized here */
	const char		*client;	/* client address */
	const char		*proto;		/* "ESMTPSA", RFC 3848 */
	time_t			 now;
};

/* The final reply for the message. */
typedef void (*submit_cb)(void *arg, int code, const char *status,
	    const char *text);

/* Returns NULL when out of memory. */
struct submit *submit_new(const struct submit_params *);
/*
 * Call after each framer step with the message so far (len grows;
 * earlier bytes never change); header_done once the header section has
 * ended.  Returns 0, or -1 once the message is refused: keep reading to
 * the end of the data, then answer with submit_finish(), which reports
 * the refusal.
 */
int	submit_data(struct submit *, const char *msg, size_t len,
	    int header_done);
/*
 * The data ended without framing errors.  env (with its ID, recipients and
 * so on) and body are taken.  cb is called once, from the loop, maybe
 * before submit_finish() returns.
 */
void	submit_finish(struct submit *, struct envelope *env, struct buf *body,
	    submit_cb cb, void *arg);
void	submit_free(struct submit *);	/* NULL is ok */
/* The envelope taken by submit_finish() (for the caller's log line). */
const struct envelope *submit_envelope(const struct submit *);

#endif

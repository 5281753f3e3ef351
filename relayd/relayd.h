/*
 * relayd: the daemon's context.  One per process, created by main(),
 * owned by the loop thread.  The configuration is immutable and is swapped
 * whole on reload, between events.
 *
 * Reload and lifetimes: the configuration, the users and the TLS context
 * loaded together form one generation (struct relayd_gen).  A session takes
 * a reference to the generation current when it was accepted and uses that
 * one until it ends, so a session never sees half of two configurations.
 * A generation is freed when it is no longer current and its last session
 * is gone.  r->cf, r->users and r->tls always point into r->gen.
 */
#ifndef RELAYD_RELAYD_H
#define RELAYD_RELAYD_H

#include <stdint.h>
#include <openssl/ssl.h>

struct event_base;
struct config;
struct users;
struct worker_pool;
struct spool;
struct queue;
struct listener;
struct auth_throttle;
struct conn_table;
struct smtp_session;
struct dkim_keys;

struct relayd_gen {
	struct config		*cf;
	struct users		*users;
	SSL_CTX			*tls;		/* NULL when no listener uses TLS */
	struct dkim_keys	*keys;		/* every [domain]'s DKIM keys */
	uint8_t			 verp_key[32];	/* rewrite.h, from secret_file */
	unsigned		 refs;		/* sessions using it */
};

/* Threads that flush the spool and capture files (see main.c): the
 * spool's committer (spool.c, one step at a time) and queue reads and
 * writes. */
#define RELAYD_IO_THREADS	3

struct relayd {
	struct event_base	*base;
	const struct config	*cf;
	const struct users	*users;
	SSL_CTX			*tls;
	struct worker_pool	*workers;	/* CPU work: crypt, DKIM signing */
	struct worker_pool	*io;		/* disk flushes: spool, capture */
	struct spool		*spool;
	struct queue		*queue;
	struct listener		*listeners;	/* list */
	struct auth_throttle	*throttle;	/* per-address AUTH delays */
	struct conn_table	*conns;		/* per-address connection counts */
	uint64_t		 next_session_id;
	unsigned		 nsessions;
	int			 draining;	/* SIGTERM: no new sessions */

	struct relayd_gen	*gen;		/* current generation */
	struct smtp_session	*sessions;	/* list of live sessions */
	const char		*config_path;
};

/*
 * Generations (listener.c).  relayd_gen_free() frees the objects it holds
 * (NULL is a no-op); relayd_gen_set() makes gen current, freeing the old
 * one when no session holds it; unref frees a non-current generation when
 * its count drops to zero.
 */
void	relayd_gen_free(struct relayd_gen *);
void	relayd_gen_set(struct relayd *, struct relayd_gen *);
struct relayd_gen *relayd_gen_ref(struct relayd *);
void	relayd_gen_unref(struct relayd *, struct relayd_gen *);

#endif

/*
 * relayd: the daemon's context.  One per process, created by main(),
 * owned by the loop thread.  The configuration is immutable and is swapped
 * whole on reload, between events.
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

struct relayd {
	struct event_base	*base;
	const struct config	*cf;
	const struct users	*users;
	SSL_CTX			*tls;
	struct worker_pool	*workers;
	struct spool		*spool;
	struct queue		*queue;
	struct listener		*listeners;	/* list */
	struct auth_throttle	*throttle;	/* per-address AUTH delays */
	struct conn_table	*conns;		/* per-address connection counts */
	uint64_t		 next_session_id;
	unsigned		 nsessions;
	int			 draining;	/* SIGTERM: no new sessions */
};

#endif

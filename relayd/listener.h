/*
 * listener: the listening sockets of [listen NAME] sections, accepting
 * connections and enforcing max_connections and connections_per_ip
 * (421 4.7.0 beyond either, then close).
 */
#ifndef RELAYD_LISTENER_H
#define RELAYD_LISTENER_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

struct relayd;
struct config;
struct config_listen;

/* Bind every address of every [listen] section.  0, or -1 after printing
 * to err. */
int	listeners_open(struct relayd *, FILE *err);
/* Stop accepting (close the listening sockets); the listener objects stay
 * until listeners_free() so that live sessions can still report to them. */
void	listeners_close(struct relayd *);
void	listeners_free(struct relayd *);
/* A session on a listener ended: release its connection slots. */
struct listener;
void	listener_session_gone(struct listener *, const void *sa, int salen);
/* The listener's index in cf->listens and its name. */
size_t	listener_index(const struct listener *);
const char *listener_name(const struct listener *);

/*
 * Can a running daemon switch from its configuration to next without
 * rebinding?  (Same [listen] names, addresses and order.)  0 yes, -1 no
 * after printing why to err.
 */
int	listeners_compatible(const struct config *, const struct config *next,
	    FILE *err);

/* Split "HOST:PORT" or "[V6]:PORT" (HOST may be empty or "*": any). */
int	listener_parse_address(const char *, char *host, size_t hostlen,
	    char *port, size_t portlen);
/* The numeric address of sa (without port) into out. */
void	listener_addr_str(const struct sockaddr *, char *out, size_t outlen);

/* Per-address connection counts. */
struct conn_table;
struct conn_table *conn_table_new(void);
void	conn_table_free(struct conn_table *);
/* Count one more for sa unless it already has limit (limit 0: none).
 * Returns 0 when counted, -1 when at the limit or out of memory. */
int	conn_table_add(struct conn_table *, const struct sockaddr *,
	    unsigned limit);
void	conn_table_del(struct conn_table *, const struct sockaddr *);

#endif

/*
 * listener: the listening sockets of [listen NAME] sections, accepting
 * connections and enforcing max_connections and connections_per_ip
 * (421 4.7.0 beyond either, then close).
 */
#ifndef RELAYD_LISTENER_H
#define RELAYD_LISTENER_H

#include <stdio.h>

struct relayd;
struct config_listen;

/* Bind every address of every [listen] section.  0, or -1 after printing
 * to err. */
int	listeners_open(struct relayd *, FILE *err);
void	listeners_close(struct relayd *);
/* A session on a listener ended: release its connection slots. */
struct listener;
void	listener_session_gone(struct listener *, const void *sa, int salen);

#endif

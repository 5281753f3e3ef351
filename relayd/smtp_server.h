/*
 * smtp_server: one SMTP submission session (RFC 5321, 6409) on a
 * bufferevent: banner, EHLO, STARTTLS, AUTH, the transaction, DATA.
 */
#ifndef RELAYD_SMTP_SERVER_H
#define RELAYD_SMTP_SERVER_H

#include <sys/socket.h>

struct relayd;
struct listener;
struct config_listen;
struct smtp_session;

/* Take over an accepted socket.  Returns NULL (and closes fd) on failure. */
struct smtp_session *smtp_session_new(struct relayd *, struct listener *,
	    const struct config_listen *, int fd, const struct sockaddr *,
	    socklen_t);

#endif

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

/*
 * SIGTERM: every session finishes what it is waiting for (a spool commit,
 * a password check) and sends that reply, idle ones get
 * "421 4.3.2 HOSTNAME Service shutting down", then each closes.  When the
 * last session is gone the loop is told to exit.
 */
void	smtp_sessions_drain(struct relayd *);
/* Free every remaining session at once (exit path; commits detached). */
void	smtp_sessions_free_all(struct relayd *);

enum smtp_state {
	SMTP_STATE_INIT = 0,	/* banner sent, no HELO/EHLO yet */
	SMTP_STATE_HELO,	/* greeted, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted */
	SMTP_STATE_RCPT,	/* at least one RCPT accepted */
	SMTP_STATE_DATA,	/* reading the message after 354 */
	SMTP_STATE_COMMIT,	/* waiting for the spool */
	SMTP_STATE_AUTH_INPUT,	/* 334 sent, waiting for a response line */
	SMTP_STATE_AUTH_CHECK,	/* password check on a worker */
	SMTP_STATE_STARTTLS,	/* 220 sent, switching to TLS */
	SMTP_STATE_CLOSING,	/* last reply queued; close when flushed */
	SMTP_STATE_COUNT
};
const char *smtp_state_name(enum smtp_state);

#endif

/*
 * smtp_session: the session object shared by smtp_server.c (the dialogue,
 * DATA and the spool commit) and smtp_auth.c (the AUTH exchange).  Private
 * to those two files.
 */
#ifndef RELAYD_SMTP_SESSION_H
#define RELAYD_SMTP_SESSION_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "envelope.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "users.h"

#define SMTP_REPLY_MAX		1024
#define SMTP_HELO_MAX		255
#define SMTP_ID_LEN		12

struct bufferevent;
struct evbuffer;
struct event;
struct relayd;
struct relayd_gen;
struct config;
struct config_listen;
struct listener;
struct spool_commit;
struct submit;

enum auth_mech { AUTH_MECH_NONE = 0, AUTH_MECH_PLAIN, AUTH_MECH_LOGIN };

struct auth_job;

struct smtp_session {
	struct smtp_session	*next, *prev;	/* r->sessions */
	struct relayd		*r;
	struct relayd_gen	*gen;
	const struct config	*cf;
	const struct config_listen *lc;
	struct listener		*l;
	char			 id[SMTP_ID_LEN + 1];
	int			 fd;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 addr[INET6_ADDRSTRLEN];

	struct bufferevent	*bev;
	int			 tls_bev;	/* bev owns fd and SSL */
	int			 tls;		/* TLS established */
	enum smtp_state		 state;

	struct event		*resume_ev;	/* deferred processing */
	struct event		*hold_ev;	/* delayed replies */
	struct event		*life_ev;	/* session_timeout */
	struct evbuffer		*held;		/* replies held back */
	struct evbuffer		*out;		/* replies to write directly */
	struct event		*flush_ev;	/* writes out, once per wakeup */
	int			 flush_pending;
	int			 holding;
	int			 wpaused;	/* output above high mark */
	int			 discarding;	/* in an over-long line */
	int			 discard_auth;
	int			 abort;		/* close without flushing */
	int			 expired;	/* session_timeout passed */
	int			 draining;	/* SIGTERM */
	int			 peer_eof;	/* client half-closed */
	const char		*close_reason;

	char			 helo[SMTP_HELO_MAX + 1];
	int			 esmtp;
	int			 authed;
	char			 user[USERS_NAME_MAX + 1];

	/* AUTH exchange in progress. */
	enum auth_mech		 mech;
	int			 auth_step;
	char			 login_user[USERS_NAME_MAX + 1];
	int			 login_bad;
	struct auth_job		*auth_job;

	/* The transaction. */
	struct envelope		 env;
	int			 has_mail;
	struct buf		 body;
	struct smtp_data	 data;
	struct spool_commit	*commit;
	struct submit		*sub;		/* policy, signing, commit */
	int			 in_submit_call;
	int			 submit_code;	/* result while in the call */
	char			 submit_text[SMTP_REPLY_MAX];
	int			 in_spool_call;
	int			 sync_status;	/* commit done inside call */
	size_t			 msg_size;

	/* Counters for the disconnect line. */
	unsigned		 ncmds, nmsgs, errors, nrejected;
	time_t			 start;
};

/* Shared by smtp_server.c and smtp_auth.c (loop thread only). */
void	smtp_reply(struct smtp_session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtp_set_state(struct smtp_session *, enum smtp_state);
/* Hold back replies for ms milliseconds (reading stops meanwhile). */
void	smtp_hold(struct smtp_session *, uint64_t ms);
/* A wait (commit, password check) ended: go to st, or close if asked. */
void	smtp_after_wait(struct smtp_session *, enum smtp_state st);
/* Free the session if it is closing and flushed; 1 when freed. */
int	smtp_maybe_free(struct smtp_session *);
uint64_t smtp_now_ms(void);

/* smtp_auth.c: the AUTH command (RFC 4954), a response line to a 334,
 * and detaching a pending password check from a session being freed. */
void	smtp_auth(struct smtp_session *, const char *, size_t);
void	smtp_auth_input(struct smtp_session *, const char *, size_t);
void	smtp_auth_detach(struct auth_job *);

#endif

/*
 * smtp_server: the SMTP submission session (RFC 5321, RFC 6409) on a
 * libevent bufferevent, with PIPELINING (RFC 2920), SIZE (RFC 1870),
 * 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034,
 * RFC 3463: every reply but the banner and EHLO carries one), STARTTLS
 * (RFC 3207) and AUTH PLAIN / LOGIN (RFC 4954, RFC 4616).
 *
 * Owns: the session struct (smtp_session.h), its bufferevent and socket,
 * its timers, the current transaction (envelope and body), and a pending
 * spool commit; smtp_auth.c runs the AUTH exchange and its password check
 * (a worker job) on the same struct.  Freeing the session cancels
 * timers and detaches the job and the commit (worker.h, spool.h).
 *
 * Flow: the read callback runs smtp_process(), which handles at most
 * SMTP_BATCH command lines per wakeup and reschedules itself for the rest.
 * Replies go to the bufferevent's output and are sent together when the
 * callback returns (RFC 2920 batching).  While a session waits (spool
 * commit, password check, delayed reply, STARTTLS switch, output above
 * SMTP_OUT_HIGH) it does not read; pipelined commands wait in the input.
 *
 * Limits: command lines SMTP_CMD_LINE_MAX (512, RFC 5321 4.5.3.1.4), AUTH
 * lines SMTP_AUTH_LINE_MAX, input read ahead SMTP_IN_HIGH.  Longer lines
 * are discarded as they arrive, so memory stays bounded without a CRLF.
 * XXX The DATA body is held in memory (a struct buf capped at
 * message_size); spilling large messages to a file is future work.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "base64.h"
#include "buf.h"
#include "config.h"
#include "crypt_util.h"
#include "envelope.h"
#include "listener.h"
#include "log.h"
#include "relayd.h"
#include "sender_policy.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "spool.h"
#include "submit.h"
#include "users.h"
#include "worker.h"

#define SMTP_BATCH		64	/* command lines per wakeup */
#define SMTP_OUT_HIGH		(64 * 1024)	/* stop reading above */
#define SMTP_IN_HIGH		(64 * 1024)	/* read-ahead cap */
/* An AUTH command with an initial response (RFC 4954 section 4). */
#define SMTP_AUTH_LINE_MAX	(AUTH_RESPONSE_MAX + 32)

typedef void (*smtp_handler)(struct smtp_session *, const char *, size_t);

#define F_HELO		0x01	/* needs HELO/EHLO */
#define F_TLS		0x02	/* needs TLS where AUTH requires it */
#define F_AUTH		0x04	/* needs AUTH on a submission listener */
#define F_INTX		0x08	/* allowed inside a transaction */
#define F_OUTTX		0x10	/* allowed outside a transaction */

struct smtp_command {
	enum smtp_verb	 verb;
	smtp_handler	 handler;
	int		 flags;
	const char	*intx_reply;	/* when refused inside a transaction */
	const char	*outtx_reply;	/* when refused outside */
};

static void	smtp_helo(struct smtp_session *, const char *, size_t);
static void	smtp_ehlo(struct smtp_session *, const char *, size_t);
static void	smtp_mail(struct smtp_session *, const char *, size_t);
static void	smtp_rcpt(struct smtp_session *, const char *, size_t);
static void	smtp_data_cmd(struct smtp_session *, const char *, size_t);
static void	smtp_rset(struct smtp_session *, const char *, size_t);
static void	smtp_noop(struct smtp_session *, const char *, size_t);
static void	smtp_quit(struct smtp_session *, const char *, size_t);
static void	smtp_vrfy(struct smtp_session *, const char *, size_t);
static void	smtp_expn(struct smtp_session *, const char *, size_t);
static void	smtp_help(struct smtp_session *, const char *, size_t);
static void	smtp_starttls(struct smtp_session *, const char *, size_t);
static void	smtp_bdat(struct smtp_session *, const char *, size_t);

static const struct smtp_command smtp_commands[] = {
	{ SMTP_VERB_HELO, smtp_helo, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_EHLO, smtp_ehlo, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_MAIL, smtp_mail, F_HELO | F_AUTH | F_OUTTX,
	    "503 5.5.1 Error: nested MAIL command", NULL },
	{ SMTP_VERB_RCPT, smtp_rcpt, F_HELO | F_AUTH | F_INTX,
	    NULL, "503 5.5.1 Error: need MAIL command" },
	{ SMTP_VERB_DATA, smtp_data_cmd, F_HELO | F_AUTH | F_INTX,
	    NULL, "503 5.5.1 Error: need RCPT command" },
	{ SMTP_VERB_RSET, smtp_rset, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_NOOP, smtp_noop, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_QUIT, smtp_quit, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_VRFY, smtp_vrfy, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_EXPN, smtp_expn, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_HELP, smtp_help, F_INTX | F_OUTTX, NULL, NULL },
	{ SMTP_VERB_STARTTLS, smtp_starttls, F_OUTTX,
	    "503 5.5.1 Error: STARTTLS not permitted during a mail transaction",
	    NULL },
	{ SMTP_VERB_AUTH, smtp_auth, F_HELO | F_TLS | F_OUTTX,
	    "503 5.5.1 AUTH not permitted during a mail transaction", NULL },
	{ SMTP_VERB_BDAT, smtp_bdat, F_INTX | F_OUTTX, NULL, NULL },
};

static const char *smtp_state_names[SMTP_STATE_COUNT] = {
	"init", "helo", "mail", "rcpt", "data", "commit", "auth_input",
	"auth_check", "starttls", "closing",
};

static void	smtp_process(struct smtp_session *);
static void	smtp_resume(struct smtp_session *);
static void	smtp_session_free(struct smtp_session *);
static void	smtp_readcb(struct bufferevent *, void *);
static void	smtp_writecb(struct bufferevent *, void *);
static void	smtp_eventcb(struct bufferevent *, short, void *);
static void	smtp_close(struct smtp_session *, const char *reason);
static void	smtp_out_to_bev(struct smtp_session *);

const char *
smtp_state_name(enum smtp_state st)
{
	if ((unsigned)st >= SMTP_STATE_COUNT)
		return "invalid";
	return smtp_state_names[st];
}

uint64_t
smtp_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
smtp_tv(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static void
smtp_set_timeouts(struct smtp_session *s)
{
	struct timeval	 rtv, wtv;
	uint64_t	 rsec;

	rsec = s->state == SMTP_STATE_DATA ? s->cf->data_timeout :
	    s->cf->command_timeout;
	smtp_tv(&rtv, rsec * 1000);
	smtp_tv(&wtv, s->cf->command_timeout * 1000);
	bufferevent_set_timeouts(s->bev, rsec ? &rtv : NULL,
	    s->cf->command_timeout ? &wtv : NULL);
}

void
smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	enum smtp_state	 old = s->state;

	if ((unsigned)st >= SMTP_STATE_COUNT) {
		log_error(s->id, "bad_state state=%d", (int)st);
		st = SMTP_STATE_CLOSING;
	}
	if (old == st)
		return;
	log_debug(s->id, "state %s -> %s", smtp_state_name(old),
	    smtp_state_name(st));
	s->state = st;
	/* From here on the bufferevent's own write path (its write
	 * callback drives the TLS switch and the final flush). */
	if (st == SMTP_STATE_STARTTLS || st == SMTP_STATE_CLOSING)
		smtp_out_to_bev(s);
	if (old == SMTP_STATE_DATA || st == SMTP_STATE_DATA)
		smtp_set_timeouts(s);
}

static int
smtp_in_tx(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT;
}

static int
smtp_can_process(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_STATE_COMMIT:
	case SMTP_STATE_AUTH_CHECK:
	case SMTP_STATE_STARTTLS:
	case SMTP_STATE_CLOSING:
		return 0;
	default:
		return !s->holding && !s->wpaused;
	}
}

/*
 * Reading stays on while a commit or a password check runs: what the
 * client pipelines meanwhile waits in the input buffer (at most
 * SMTP_IN_HIGH, the read watermark) and is processed afterwards.  Not
 * switching reading off and on again for every message saves two
 * epoll_ctl calls per message.
 */
static void
smtp_update_read(struct smtp_session *s)
{
	int	 on;

	switch (s->state) {
	case SMTP_STATE_COMMIT:
	case SMTP_STATE_AUTH_CHECK:
		on = !s->holding && !s->wpaused;
		break;
	default:
		on = smtp_can_process(s);
	}
	if (on && !s->peer_eof)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

/* Replies. */

void
smtp_hold(struct smtp_session *s, uint64_t ms)
{
	struct timeval	 tv;

	if (ms == 0 || s->holding)
		return;
	s->holding = 1;
	smtp_tv(&tv, ms);
	evtimer_add(s->hold_ev, &tv);
	bufferevent_disable(s->bev, EV_READ);
}

/*
 * Replies of a plaintext session in a plain state go to s->out and are
 * written once per loop wakeup straight to the socket (smtp_flush_cb):
 * when the socket takes them all, as it nearly always does, no write
 * event is added and deleted again (two epoll_ctl calls and one more
 * wakeup per reply burst).  What the socket does not take, and every
 * reply under TLS, during STARTTLS or while closing, goes through the
 * bufferevent, in order.
 */
static int
smtp_direct_ok(const struct smtp_session *s)
{
	return s->out != NULL && !s->tls_bev &&
	    s->state != SMTP_STATE_STARTTLS && s->state != SMTP_STATE_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0;
}

static void
smtp_out_to_bev(struct smtp_session *s)
{
	if (s->out != NULL && s->bev != NULL &&
	    evbuffer_get_length(s->out) > 0)
		bufferevent_write_buffer(s->bev, s->out);
}

static void
smtp_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session	*s = arg;

	(void)fd;
	(void)what;
	s->flush_pending = 0;
	if (evbuffer_get_length(s->out) == 0)
		return;
	if (smtp_direct_ok(s))
		(void)evbuffer_write(s->out, s->fd);	/* EAGAIN: below */
	/* The rest, or an error for the bufferevent to report. */
	smtp_out_to_bev(s);
}

static void
smtp_send(struct smtp_session *s, const char *p, size_t n)
{
	if (s->holding)
		evbuffer_add(s->held, p, n);
	else if (smtp_direct_ok(s)) {
		evbuffer_add(s->out, p, n);
		if (!s->flush_pending) {
			s->flush_pending = 1;
			event_active(s->flush_ev, EV_TIMEOUT, 1);
		}
	} else {
		smtp_out_to_bev(s);
		bufferevent_write(s->bev, p, n);
	}
}

/*
 * Send one reply line (CRLF added).  Every 4xx and 5xx reply counts as an
 * error: past soft_error_limit each is held back error_delay, at
 * hard_error_limit the session ends with 421 (Postfix smtpd's limits).
 */
void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char	 line[SMTP_REPLY_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	line[n] = '\0';
	if (line[0] == '4' || line[0] == '5') {
		s->errors++;
		if (s->errors > s->cf->soft_error_limit &&
		    s->state != SMTP_STATE_CLOSING)
			smtp_hold(s, s->cf->error_delay * 1000);
	}
	smtp_send(s, line, n);
	if ((line[0] == '4' || line[0] == '5') &&
	    s->cf->hard_error_limit != 0 &&
	    s->errors >= s->cf->hard_error_limit &&
	    s->state != SMTP_STATE_CLOSING && strncmp(line, "421", 3) != 0) {
		log_warn(s->id, "too_many_errors client=%s errors=%u",
		    s->addr, s->errors);
		n = snprintf(line, sizeof(line),
		    "421 4.7.0 %s Error: too many errors\r\n", s->cf->hostname);
		if (n > 0 && (size_t)n < sizeof(line))
			smtp_send(s, line, n);
		smtp_close(s, "too_many_errors");
	}
}

/* Stop reading; the session is freed once its output is flushed. */
static void
smtp_close(struct smtp_session *s, const char *reason)
{
	if (s->close_reason == NULL)
		s->close_reason = reason;
	smtp_set_state(s, SMTP_STATE_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
}

static void
smtp_timeout_close(struct smtp_session *s)
{
	log_info(s->id, "timeout client=%s state=%s", s->addr,
	    smtp_state_name(s->state));
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->cf->hostname);
	smtp_close(s, "timeout");
}

/* Transactions. */

static void
smtp_tx_reset(struct smtp_session *s)
{
	submit_free(s->sub);
	s->sub = NULL;
	envelope_clear(&s->env);
	memset(&s->env, 0, sizeof(s->env));
	s->has_mail = 0;
	buf_clear(&s->body);
	s->msg_size = 0;
}

/* After a reply that ends a wait (commit, auth): close if asked to. */
void
smtp_after_wait(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	smtp_set_state(s, st);
	if (s->draining) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down",
		    s->cf->hostname);
		smtp_close(s, "shutdown");
	} else if (s->expired)
		smtp_timeout_close(s);
	smtp_resume(s);
}

/* Command handlers.  Each checks syntax and state, then replies. */

static int
smtp_set_helo(struct smtp_session *s, const char *args, size_t n,
    const char *verb)
{
	if (n == 0 || memchr(args, ' ', n) != NULL) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
		return -1;
	}
	if (n > SMTP_HELO_MAX)
		n = SMTP_HELO_MAX;
	memcpy(s->helo, args, n);
	s->helo[n] = '\0';
	/* RFC 5321 4.1.4: EHLO/HELO also resets the transaction. */
	smtp_tx_reset(s);
	smtp_set_state(s, SMTP_STATE_HELO);
	return 0;
}

static void
smtp_helo(struct smtp_session *s, const char *args, size_t n)
{
	if (smtp_set_helo(s, args, n, "HELO") == -1)
		return;
	s->esmtp = 0;
	smtp_reply(s, "250 %s", s->cf->hostname);
}

static int
smtp_auth_offered(const struct smtp_session *s)
{
	return s->lc->role == LISTEN_ROLE_SUBMISSION &&
	    (s->tls || s->lc->insecure_auth);
}

static int
smtp_auth_needs_tls(const struct smtp_session *s)
{
	return s->lc->role == LISTEN_ROLE_SUBMISSION && !s->tls &&
	    !s->lc->insecure_auth;
}

static void
smtp_ehlo(struct smtp_session *s, const char *args, size_t n)
{
	struct buf	 b;

	if (smtp_set_helo(s, args, n, "EHLO") == -1)
		return;
	s->esmtp = 1;
	/* RFC 5321 4.1.1.1; no enhanced code on EHLO lines (RFC 2034). */
	buf_init(&b, 4096);
	buf_appendf(&b, "250-%s\r\n", s->cf->hostname);
	buf_appendf(&b, "250-PIPELINING\r\n");
	buf_appendf(&b, "250-SIZE %llu\r\n",
	    (unsigned long long)s->cf->message_size);
	buf_appendf(&b, "250-8BITMIME\r\n");
	buf_appendf(&b, "250-ENHANCEDSTATUSCODES\r\n");
	if (s->lc->tls == TLS_MODE_STARTTLS && !s->tls && s->gen->tls != NULL)
		buf_appendf(&b, "250-STARTTLS\r\n");
	if (smtp_auth_offered(s) && !s->authed)
		buf_appendf(&b, "250-AUTH PLAIN LOGIN\r\n");
	buf_appendf(&b, "250 SMTPUTF8\r\n");
	if (b.data != NULL)
		smtp_send(s, b.data, b.len);
	buf_clear(&b);
}

static int
smtp_room(struct smtp_session *s)
{
	uint64_t	 need;

	need = s->cf->message_size + s->cf->message_size / 2;
	return s->r->spool == NULL || spool_has_room(s->r->spool, need);
}

static int	smtp_mail_owned(struct smtp_session *, const char *, int);
static int	smtp_submit_start(struct smtp_session *);
static void	smtp_submit_done(void *, int, const char *, const char *);
static void	smtp_submit_result(struct smtp_session *, int, const char *);

static void
smtp_mail(struct smtp_session *s, const char *args, size_t n)
{
	struct smtp_path	 path;
	struct smtp_mail_params	 par;

	memset(&par, 0, sizeof(par));
	switch (smtp_parse_mail(args, n, &path, &par)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_SYNTAX:
		smtp_reply(s, "501 5.5.2 Syntax: MAIL FROM:<address>");
		return;
	case SMTP_PARSE_BAD_ADDRESS:
		smtp_reply(s, "501 5.1.7 Bad sender address syntax");
		return;
	case SMTP_PARSE_TOO_LONG:
		smtp_reply(s, "501 5.5.4 Sender address too long");
		return;
	case SMTP_PARSE_NEED_UTF8:
		smtp_reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	case SMTP_PARSE_BAD_PARAM:
	default:
		smtp_reply(s, "555 5.5.4 Unsupported MAIL parameter");
		return;
	}
	/* RFC 1870 section 6.1: refuse a declared size over the limit. */
	if (par.has_size && par.size > s->cf->message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (!smtp_room(s)) {
		log_warn(s->id, "spool_full client=%s", s->addr);
		smtp_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	/* Issue 3: the account must own MAIL FROM (<> is always fine). */
	if (s->authed && smtp_mail_owned(s, path.null ? "" : path.addr,
	    par.smtputf8) == -1)
		return;
	smtp_tx_reset(s);
	if ((s->env.mail_from = strdup(path.null ? "" : path.addr)) == NULL) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	if (par.body == SMTP_BODY_8BITMIME)
		s->env.flags |= ENVELOPE_FLAG_8BIT;
	if (par.smtputf8)
		s->env.flags |= ENVELOPE_FLAG_SMTPUTF8;
	s->has_mail = 1;
	smtp_set_state(s, SMTP_STATE_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

static void
smtp_rcpt(struct smtp_session *s, const char *args, size_t n)
{
	struct smtp_path	 path;

	if (s->env.nrcpts >= s->cf->recipients) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	switch (smtp_parse_rcpt(args, n,
	    (s->env.flags & ENVELOPE_FLAG_SMTPUTF8) != 0, &path)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_SYNTAX:
	case SMTP_PARSE_BAD_ADDRESS:
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	case SMTP_PARSE_TOO_LONG:
		smtp_reply(s, "501 5.5.4 Recipient address too long");
		return;
	case SMTP_PARSE_NEED_UTF8:
		smtp_reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	case SMTP_PARSE_BAD_PARAM:
	default:
		smtp_reply(s, "555 5.5.4 Unsupported RCPT parameter");
		return;
	}
	if (envelope_add_rcpt(&s->env, path.addr) == -1) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	smtp_set_state(s, SMTP_STATE_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
}

static void
smtp_data_cmd(struct smtp_session *s, const char *args, size_t n)
{
	struct smtp_data_limits	 lim;

	if (s->env.nrcpts == 0) {
		smtp_reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (n != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	memset(&lim, 0, sizeof(lim));
	lim.message_size = s->cf->message_size;
	lim.line_length = s->cf->line_length;
	lim.header_size = s->cf->header_size;
	lim.max_received = s->cf->max_received;
	lim.normalize = s->cf->bare_newlines_normalize;
	/* XXX in memory; see the comment at the top. */
	buf_clear(&s->body);
	buf_init(&s->body, s->cf->message_size + 1024);
	smtp_data_init(&s->data, &lim, &s->body);
	if (s->authed && smtp_submit_start(s) == -1) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
		return;
	}
	smtp_set_state(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtp_rset(struct smtp_session *s, const char *args, size_t n)
{
	if (n != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_tx_reset(s);
	if (s->state != SMTP_STATE_INIT)
		smtp_set_state(s, SMTP_STATE_HELO);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_noop(struct smtp_session *s, const char *args, size_t n)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_quit(struct smtp_session *s, const char *args, size_t n)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close(s, "quit");
}

static void
smtp_vrfy(struct smtp_session *s, const char *args, size_t n)
{
	if (n == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3. */
	smtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_expn(struct smtp_session *s, const char *args, size_t n)
{
	smtp_reply(s, "502 5.5.1 EXPN not supported");
}

static void
smtp_help(struct smtp_session *s, const char *args, size_t n)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP STARTTLS AUTH");
}

static void
smtp_bdat(struct smtp_session *s, const char *args, size_t n)
{
	/* CHUNKING (RFC 3030) is not offered. */
	smtp_reply(s, "502 5.5.1 BDAT not supported");
}

/* STARTTLS (RFC 3207). */

static void
smtp_starttls(struct smtp_session *s, const char *args, size_t n)
{
	if (s->tls) {
		smtp_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (s->lc->tls != TLS_MODE_STARTTLS || s->gen->tls == NULL) {
		smtp_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (n != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* Nothing after the command is processed: see smtp_tls_switch(). */
	smtp_set_state(s, SMTP_STATE_STARTTLS);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
}

static void
smtp_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, smtp_readcb, smtp_writecb, smtp_eventcb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_IN_HIGH);
	smtp_set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static struct bufferevent *
smtp_tls_bev(struct smtp_session *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(s->gen->tls)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(s->r->base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* Clients that close without close_notify are common. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/*
 * The 220 is flushed: throw away whatever plaintext the client sent after
 * STARTTLS (CVE-2011-0411), move the socket to a TLS bufferevent, and
 * forget HELO, AUTH and the transaction (RFC 3207 section 4.2).
 */
static void
smtp_tls_switch(struct smtp_session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct bufferevent	*bev;
	size_t			 junk;

	junk = evbuffer_get_length(in);
	evbuffer_drain(in, junk);
	if (junk > 0)
		log_warn(s->id, "starttls_pipelined client=%s discarded=%zu",
		    s->addr, junk);
	if ((bev = smtp_tls_bev(s)) == NULL) {
		log_error(s->id, "tls_setup_failed client=%s", s->addr);
		s->abort = 1;
		smtp_close(s, "tls_setup_failed");
		return;
	}
	bufferevent_free(s->bev);	/* no CLOSE_ON_FREE: fd stays */
	s->bev = bev;
	s->tls_bev = 1;
	s->helo[0] = '\0';
	s->esmtp = 0;
	s->authed = 0;
	s->user[0] = '\0';
	smtp_tx_reset(s);
	smtp_set_state(s, SMTP_STATE_INIT);
	smtp_setup_bev(s);
}

/* DATA end and the spool commit. */

static void
smtp_log_queued(struct smtp_session *s, const struct envelope *env)
{
	char		 esc[LOG_ESCAPE_SIZE], uesc[LOG_ESCAPE_SIZE];
	const char	*id = env->id;
	const char	*from = env->mail_from ? env->mail_from : "";
	size_t		 i, n = strlen(from);
	int		 plain = 1;

	for (i = 0; i < n; i++)
		if ((unsigned char)from[i] <= ' ' || from[i] == '"' ||
		    from[i] == '\\' || (unsigned char)from[i] >= 0x7f)
			plain = 0;
	if (!plain)
		log_escape(esc, sizeof(esc), from, n);
	log_escape(uesc, sizeof(uesc), s->user, strlen(s->user));
	log_info(id, "queued session=%s from=%s%s%s nrcpt=%zu size=%zu "
	    "user=%s", s->id, plain ? "<" : "", plain ? from : esc,
	    plain ? ">" : "", env->nrcpts, s->msg_size, uesc);
}

static void
smtp_commit_result(struct smtp_session *s, int status, const char *id)
{
	if (status == 0) {
		s->nmsgs++;
		smtp_log_queued(s, &s->env);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", id);
	} else {
		log_error(s->id, "queue_write_error client=%s id=%s", s->addr,
		    id);
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	}
	smtp_tx_reset(s);
}

/* The authenticated account's record in the session's generation. */
static const struct user *
smtp_user(struct smtp_session *s)
{
	return users_find(s->gen->users, s->user);
}

/* MAIL FROM ownership; replies and returns -1 when not owned. */
static int
smtp_mail_owned(struct smtp_session *s, const char *addr, int utf8)
{
	struct policy_verdict	 v;
	const struct user	*u = smtp_user(s);
	char			 esc[LOG_ESCAPE_SIZE];

	if (u == NULL) {
		/* The account left the users file on a reload. */
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return -1;
	}
	if (sender_policy_mail_from(u, addr, utf8, &v) == 0)
		return 0;
	log_escape(esc, sizeof(esc), addr, strlen(addr));
	log_info(s->id, "sender_refused client=%s user=%s from=%s", s->addr,
	    u->name, esc);
	smtp_reply(s, "%d %s %s", v.code, v.status, v.text);
	return -1;
}

/* At DATA: the queue ID now (Received, Message-ID), and the submit. */
static int
smtp_submit_start(struct smtp_session *s)
{
	struct submit_params	 p;
	const struct user	*u = smtp_user(s);
	char			 proto[16];

	if (u == NULL || s->r->spool == NULL)
		return -1;
	spool_id_new(s->r->spool, s->env.id);
	/* RFC 3848 protocol names. */
	snprintf(proto, sizeof(proto), "%s%s%s", s->esmtp ? "ESMTP" : "SMTP",
	    s->tls ? "S" : "", s->authed ? "A" : "");
	memset(&p, 0, sizeof(p));
	p.cf = s->cf;
	p.user = u;
	p.keys = s->gen->keys;
	p.workers = s->r->workers;
	p.spool = s->r->spool;
	p.id = s->env.id;
	p.utf8 = (s->env.flags & ENVELOPE_FLAG_SMTPUTF8) != 0;
	p.helo = s->helo;
	p.client = s->addr;
	p.proto = proto;
	p.now = time(NULL);
	if ((s->sub = submit_new(&p)) == NULL)
		return -1;
	return 0;
}

static void
smtp_submit_result(struct smtp_session *s, int code, const char *text)
{
	if (code == 250) {
		s->nmsgs++;
		smtp_log_queued(s, submit_envelope(s->sub));
	} else if (code >= 500)
		s->nrejected++;
	smtp_reply(s, "%s", text);
	smtp_tx_reset(s);
}

static void
smtp_submit_done(void *arg, int code, const char *status, const char *text)
{
	struct smtp_session	*s = arg;

	snprintf(s->submit_text, sizeof(s->submit_text), "%d %s %s", code,
	    status, text);
	if (s->in_submit_call) {
		/* Called from inside submit_finish(): finish there. */
		s->submit_code = code;
		s->in_submit_call = 2;
		return;
	}
	smtp_submit_result(s, code, s->submit_text);
	smtp_after_wait(s, SMTP_STATE_HELO);
	smtp_maybe_free(s);
}

static void
smtp_commit_done(int status, const char *id, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->in_spool_call) {
		/* Called from inside spool_commit(): finish there. */
		s->sync_status = status;
		s->in_spool_call = 2;
		return;
	}
	s->commit = NULL;
	smtp_commit_result(s, status, id);
	smtp_after_wait(s, SMTP_STATE_HELO);
	smtp_maybe_free(s);
}

static void
smtp_data_end(struct smtp_session *s)
{
	struct spool_commit	*c;
	char			 id[SPOOL_ID_LEN + 1];

	s->msg_size = s->body.len;
	switch (s->data.error) {
	case SMTP_DATA_OK:
		break;
	case SMTP_DATA_ERR_BARE_NL:
		smtp_reply(s, "550 5.5.2 Message contains bare CR or LF "
		    "characters");
		goto rejected;
	case SMTP_DATA_ERR_NUL:
		smtp_reply(s, "550 5.6.0 Message contains NUL characters");
		goto rejected;
	case SMTP_DATA_ERR_LINE_TOO_LONG:
		smtp_reply(s, "550 5.6.0 Message line longer than %u octets",
		    s->cf->line_length);
		goto rejected;
	case SMTP_DATA_ERR_TOO_BIG:
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		goto rejected;
	case SMTP_DATA_ERR_HEADER_TOO_BIG:
		smtp_reply(s, "552 5.3.4 Message header section too large");
		goto rejected;
	case SMTP_DATA_ERR_LOOP:
		smtp_reply(s, "554 5.4.6 Too many Received header fields: "
		    "mail loop");
		goto rejected;
	case SMTP_DATA_ERR_NOMEM:
	default:
		smtp_reply(s, "451 4.3.0 Error: out of memory");
		goto rejected;
	}
	if (s->r->spool == NULL) {
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		goto reset;
	}
	if (s->env.id[0] == '\0')
		spool_id_new(s->r->spool, s->env.id);
	memcpy(id, s->env.id, sizeof(id));
	s->env.time = time(NULL);
	/* 8-bit content is 8-bit whether or not the client said BODY=8BITMIME:
	 * delivery must not send it to a server without 8BITMIME. */
	if (s->data.eightbit)
		s->env.flags |= ENVELOPE_FLAG_8BIT;
	free(s->env.user);
	free(s->env.client);
	free(s->env.helo);
	s->env.user = strdup(s->user);
	s->env.client = strdup(s->addr);
	s->env.helo = strdup(s->helo);
	if (s->env.user == NULL || s->env.client == NULL ||
	    s->env.helo == NULL) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
		goto reset;
	}
	smtp_set_state(s, SMTP_STATE_COMMIT);
	if (s->sub != NULL) {
		/* Policy verdict, signature, then the spool (submit.h). */
		s->in_submit_call = 1;
		submit_finish(s->sub, &s->env, &s->body, smtp_submit_done, s);
		if (s->in_submit_call == 2) {
			s->in_submit_call = 0;
			smtp_submit_result(s, s->submit_code, s->submit_text);
			smtp_after_wait(s, SMTP_STATE_HELO);
			return;
		}
		s->in_submit_call = 0;
		return;
	}
	s->in_spool_call = 1;
	c = spool_commit(s->r->spool, &s->env, &s->body, smtp_commit_done, s);
	if (s->in_spool_call == 2) {
		s->in_spool_call = 0;
		smtp_commit_result(s, s->sync_status, id);
		smtp_after_wait(s, SMTP_STATE_HELO);
		return;
	}
	s->in_spool_call = 0;
	if (c == NULL) {
		smtp_commit_result(s, -1, id);
		smtp_after_wait(s, SMTP_STATE_HELO);
		return;
	}
	s->commit = c;
	return;
rejected:
	s->nrejected++;
	log_info(s->id, "data_rejected client=%s reason=%s size=%zu", s->addr,
	    smtp_data_error_name(s->data.error), s->data.total_in);
reset:
	smtp_tx_reset(s);
	smtp_set_state(s, SMTP_STATE_HELO);
}

/* Input. */

/* Feed DATA bytes to the framer.  1 when the data ended, else 0. */
static int
smtp_data_input(struct smtp_session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec	 v[8];
	int			 i, nv, done = 0;
	size_t			 used, total;

	while (!done && evbuffer_get_length(in) > 0) {
		nv = evbuffer_peek(in, -1, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		total = 0;
		for (i = 0; i < nv && !done; i++) {
			used = smtp_data_feed(&s->data, v[i].iov_base,
			    v[i].iov_len, &done);
			total += used;
			if (used < v[i].iov_len && !done)
				break;	/* should not happen */
		}
		evbuffer_drain(in, total);
		if (total == 0)
			break;
	}
	/* Policy once the header section is in, body hash as it streams. */
	if (s->sub != NULL && s->data.error == SMTP_DATA_OK)
		submit_data(s->sub, s->body.data ? s->body.data : "",
		    s->body.len, !s->data.in_header);
	if (done)
		smtp_data_end(s);
	return done;
}

static int
smtp_is_auth_line(struct evbuffer *in)
{
	char	 p[5];

	if (evbuffer_copyout(in, p, 5) != 5)
		return 0;
	return strncasecmp(p, "AUTH ", 5) == 0;
}

static void
smtp_too_long(struct smtp_session *s, int auth)
{
	if (auth) {
		if (s->state == SMTP_STATE_AUTH_INPUT) {
			s->mech = AUTH_MECH_NONE;
			smtp_set_state(s, SMTP_STATE_HELO);
		}
		smtp_reply(s, "500 5.5.6 Authentication exchange line is too "
		    "long");
	} else
		smtp_reply(s, "500 5.5.6 Line too long");
}

static void
smtp_command(struct smtp_session *s, const char *line, size_t n)
{
	const struct smtp_command	*c = NULL;
	struct smtp_cmd			 cmd;
	size_t				 i;

	s->ncmds++;
	if (s->state == SMTP_STATE_AUTH_INPUT) {
		smtp_auth_input(s, line, n);
		return;
	}
	if (smtp_cmd_parse(line, n, &cmd) == -1) {
		smtp_reply(s, "500 5.5.2 Error: bad character in command");
		return;
	}
	if (cmd.verb == SMTP_VERB_HTTP) {
		log_warn(s->id, "http_request client=%s", s->addr);
		s->abort = 1;
		smtp_close(s, "http");
		return;
	}
	for (i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (smtp_commands[i].verb == cmd.verb) {
			c = &smtp_commands[i];
			break;
		}
	if (c == NULL) {
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if ((c->flags & F_HELO) && s->state == SMTP_STATE_INIT) {
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (smtp_in_tx(s) && !(c->flags & F_INTX)) {
		smtp_reply(s, "%s", c->intx_reply ? c->intx_reply :
		    "503 5.5.1 Error: command not permitted now");
		return;
	}
	if (!smtp_in_tx(s) && !(c->flags & F_OUTTX)) {
		smtp_reply(s, "%s", c->outtx_reply ? c->outtx_reply :
		    "503 5.5.1 Error: command not permitted now");
		return;
	}
	if ((c->flags & F_TLS) && smtp_auth_needs_tls(s)) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if ((c->flags & F_AUTH) && s->lc->role == LISTEN_ROLE_SUBMISSION &&
	    !s->authed) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	c->handler(s, cmd.args, cmd.argslen);
}

/*
 * Take one command line from the input.  Returns 1 when a line was
 * handled, 0 when more input is needed.  RFC 5321 4.5.3.1.4: 512 octets
 * including CRLF; a longer line is discarded as it arrives (bounded
 * memory) and answered once its LF comes.
 */
static int
smtp_line_input(struct smtp_session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr	 p;
	char			 line[SMTP_AUTH_LINE_MAX + 1];
	size_t			 len, eol, limit;
	int			 auth;

	len = evbuffer_get_length(in);
	if (len == 0)
		return 0;
	auth = s->state == SMTP_STATE_AUTH_INPUT || (!s->discarding &&
	    smtp_is_auth_line(in));
	limit = auth ? SMTP_AUTH_LINE_MAX : SMTP_CMD_LINE_MAX;
	if (s->state == SMTP_STATE_AUTH_INPUT)
		limit = AUTH_RESPONSE_MAX + 2;
	p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		if (s->discarding || len >= limit) {
			if (!s->discarding)
				s->discard_auth = auth;
			s->discarding = 1;
			evbuffer_drain(in, len);
		}
		return 0;
	}
	if (s->discarding) {
		evbuffer_drain(in, p.pos + 1);
		s->discarding = 0;
		s->ncmds++;
		smtp_too_long(s, s->discard_auth);
		return 1;
	}
	if ((size_t)p.pos + 1 > limit) {
		evbuffer_drain(in, p.pos + 1);
		s->ncmds++;
		smtp_too_long(s, auth);
		return 1;
	}
	len = p.pos + 1;
	if (evbuffer_remove(in, line, len) != (int)len)
		return 0;
	len--;			/* the LF */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	smtp_command(s, line, len);
	explicit_bzero(line, len);	/* may hold an AUTH response */
	return 1;
}

static void
smtp_process(struct smtp_session *s)
{
	struct evbuffer	*out;
	int		 n, starved = 0;

	for (n = 0; n < SMTP_BATCH; n++) {
		if (!smtp_can_process(s))
			break;
		if (s->state == SMTP_STATE_DATA) {
			if (!smtp_data_input(s)) {
				starved = 1;
				break;
			}
		} else if (!smtp_line_input(s)) {
			starved = 1;
			break;
		}
		out = bufferevent_get_output(s->bev);
		if (evbuffer_get_length(out) + evbuffer_get_length(s->out) >
		    SMTP_OUT_HIGH) {
			/* The bufferevent's write callback ends the pause. */
			smtp_out_to_bev(s);
			s->wpaused = 1;
		}
	}
	if (n == SMTP_BATCH && smtp_can_process(s) &&
	    evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
	/* The client half-closed and everything it sent is answered. */
	if (starved && s->peer_eof && smtp_can_process(s))
		smtp_close(s, "eof");
	if (s->state != SMTP_STATE_CLOSING)
		smtp_update_read(s);
}

/* Continue later from the loop (never recursively). */
static void
smtp_resume(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	smtp_update_read(s);
	if (smtp_can_process(s) && (s->peer_eof ||
	    evbuffer_get_length(bufferevent_get_input(s->bev)) > 0))
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

/* Callbacks.  Each may free the session, as its last action. */

static void
smtp_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_process(s);
	smtp_maybe_free(s);
}

static void
smtp_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session	*s = arg;

	s->holding = 0;
	if (evbuffer_get_length(s->held) > 0) {
		smtp_out_to_bev(s);
		bufferevent_write_buffer(s->bev, s->held);
	}
	smtp_resume(s);
	smtp_maybe_free(s);
}

static void
smtp_life_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session	*s = arg;

	switch (s->state) {
	case SMTP_STATE_COMMIT:
	case SMTP_STATE_AUTH_CHECK:
		s->expired = 1;	/* after that reply */
		return;
	case SMTP_STATE_CLOSING:
		return;
	default:
		smtp_timeout_close(s);
		smtp_maybe_free(s);
	}
}

static void
smtp_readcb(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_process(s);
	smtp_maybe_free(s);
}

static void
smtp_writecb(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->state == SMTP_STATE_STARTTLS && !s->holding) {
		smtp_tls_switch(s);
	} else if (s->wpaused) {
		s->wpaused = 0;
		smtp_resume(s);
	}
	smtp_maybe_free(s);
}

static void
smtp_tls_log(struct smtp_session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = 1;
	if (ssl != NULL)
		log_info(s->id, "tls client=%s version=%s cipher=%s", s->addr,
		    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static void
smtp_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session	*s = arg;
	unsigned long		 e;
	char			 ebuf[256];

	if (what & BEV_EVENT_CONNECTED) {
		smtp_tls_log(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_READING) &&
		    s->state != SMTP_STATE_CLOSING) {
			smtp_timeout_close(s);
			smtp_maybe_free(s);
			return;
		}
		s->close_reason = s->close_reason ? s->close_reason :
		    "write_timeout";
		s->abort = 1;
		smtp_close(s, "write_timeout");
		smtp_maybe_free(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		e = s->tls_bev ? bufferevent_get_openssl_error(bev) : 0;
		if (e != 0) {
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
			log_info(s->id, "tls_error client=%s error=\"%s\"",
			    s->addr, ebuf);
			s->close_reason = "tls_error";
		} else if (s->close_reason == NULL)
			s->close_reason = "error";
	} else if (!s->peer_eof && s->state != SMTP_STATE_CLOSING &&
	    s->state != SMTP_STATE_STARTTLS) {
		/*
		 * EOF: the client may have half-closed after pipelining its
		 * last commands; answer what is buffered (and a pending
		 * commit) before closing.
		 */
		s->peer_eof = 1;
		bufferevent_disable(bev, EV_READ);
		smtp_resume(s);
		smtp_maybe_free(s);
		return;
	} else if (s->close_reason == NULL)
		s->close_reason = "eof";
	s->abort = 1;
	smtp_close(s, s->close_reason);
	smtp_maybe_free(s);
}

/* Life cycle. */

int
smtp_maybe_free(struct smtp_session *s)
{
	if (s->state != SMTP_STATE_CLOSING)
		return 0;
	if (!s->abort && (s->holding ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0))
		return 0;
	smtp_session_free(s);
	return 1;
}

static void
smtp_session_free(struct smtp_session *s)
{
	struct relayd	*r = s->r;
	char		 uesc[LOG_ESCAPE_SIZE];

	log_escape(uesc, sizeof(uesc), s->user, strlen(s->user));
	log_info(s->id, "disconnect client=%s reason=%s commands=%u "
	    "messages=%u rejected=%u errors=%u user=%s duration=%lld",
	    s->addr, s->close_reason ? s->close_reason : "-", s->ncmds,
	    s->nmsgs, s->nrejected, s->errors, uesc,
	    (long long)(time(NULL) - s->start));
	if (s->commit != NULL)
		spool_commit_detach(s->commit);
	smtp_auth_detach(s->auth_job);
	if (s->resume_ev)
		event_free(s->resume_ev);
	if (s->hold_ev)
		event_free(s->hold_ev);
	if (s->life_ev)
		event_free(s->life_ev);
	if (s->held)
		evbuffer_free(s->held);
	if (s->flush_ev)
		event_free(s->flush_ev);
	if (s->out)
		evbuffer_free(s->out);
	/* A clean close under TLS sends close_notify (best effort, no
	 * waiting for the peer's). */
	if (s->bev && s->tls && !s->abort) {
		SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);

		if (ssl != NULL && SSL_is_init_finished(ssl))
			(void)SSL_shutdown(ssl);
	}
	if (s->bev)
		bufferevent_free(s->bev);
	if (!s->tls_bev && s->fd != -1)
		close(s->fd);
	smtp_tx_reset(s);
	listener_session_gone(s->l, &s->ss, s->sslen);
	if (s->prev)
		s->prev->next = s->next;
	else
		r->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->nsessions--;
	relayd_gen_unref(r, s->gen);
	free(s);
	if (r->draining && r->nsessions == 0)
		event_base_loopexit(r->base, NULL);
}

struct smtp_session *
smtp_session_new(struct relayd *r, struct listener *l,
    const struct config_listen *lc, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct smtp_session	*s;
	struct timeval		 tv;
	uint64_t		 sid;
	char			 line[SMTP_REPLY_MAX];
	int			 n, one = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		return NULL;
	}
	s->r = r;
	s->fd = fd;
	s->l = l;
	s->gen = relayd_gen_ref(r);
	s->cf = s->gen->cf;
	s->lc = &s->cf->listens[listener_index(l)];
	s->state = SMTP_STATE_INIT;
	s->start = time(NULL);
	if (salen > sizeof(s->ss))
		salen = sizeof(s->ss);
	memcpy(&s->ss, sa, salen);
	s->sslen = salen;
	listener_addr_str(sa, s->addr, sizeof(s->addr));
	sid = r->next_session_id++;
	snprintf(s->id, sizeof(s->id), "%012llx",
	    (unsigned long long)(sid & 0xffffffffffffULL));
	buf_init(&s->body, 0);
	s->next = r->sessions;
	if (s->next)
		s->next->prev = s;
	r->sessions = s;
	r->nsessions++;

	s->resume_ev = event_new(r->base, -1, 0, smtp_resume_cb, s);
	s->hold_ev = evtimer_new(r->base, smtp_hold_cb, s);
	s->life_ev = evtimer_new(r->base, smtp_life_cb, s);
	s->held = evbuffer_new();
	s->out = evbuffer_new();
	s->flush_ev = event_new(r->base, -1, 0, smtp_flush_cb, s);
	if (s->resume_ev == NULL || s->hold_ev == NULL || s->life_ev == NULL ||
	    s->held == NULL || s->out == NULL || s->flush_ev == NULL)
		goto fail;
	evutil_make_socket_nonblocking(fd);
	/* Replies are already batched per wakeup; do not let Nagle hold a
	 * 250 back waiting for the client's delayed ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->lc->tls == TLS_MODE_IMPLICIT) {
		if (s->gen->tls == NULL || (s->bev = smtp_tls_bev(s)) == NULL)
			goto fail;
		s->tls_bev = 1;
	} else if ((s->bev = bufferevent_socket_new(r->base, fd, 0)) == NULL)
		goto fail;
	smtp_setup_bev(s);
	if (s->cf->session_timeout) {
		smtp_tv(&tv, s->cf->session_timeout * 1000);
		evtimer_add(s->life_ev, &tv);
	}
	log_info(s->id, "connect client=%s listener=%s tls=%s", s->addr,
	    s->lc->name, s->lc->tls == TLS_MODE_IMPLICIT ? "implicit" :
	    s->lc->tls == TLS_MODE_STARTTLS ? "starttls" : "none");
	/* RFC 5321 4.2: the banner has no enhanced status code. */
	n = snprintf(line, sizeof(line), "220 %s ESMTP relayd\r\n",
	    s->cf->hostname);
	if (n > 0 && (size_t)n < sizeof(line))
		smtp_send(s, line, n);
	return s;
fail:
	log_error("-", "session_setup_failed client=%s", s->addr);
	/* The caller releases the connection slots on NULL. */
	s->l = NULL;
	s->abort = 1;
	s->state = SMTP_STATE_CLOSING;
	smtp_session_free(s);
	return NULL;
}

void
smtp_sessions_drain(struct relayd *r)
{
	struct smtp_session	*s, *next;

	for (s = r->sessions; s != NULL; s = next) {
		next = s->next;
		s->draining = 1;
		switch (s->state) {
		case SMTP_STATE_COMMIT:
		case SMTP_STATE_AUTH_CHECK:
		case SMTP_STATE_CLOSING:
			break;
		case SMTP_STATE_STARTTLS:
			s->abort = 1;
			smtp_close(s, "shutdown");
			smtp_maybe_free(s);
			break;
		default:
			smtp_reply(s, "421 4.3.2 %s Service shutting down",
			    s->cf->hostname);
			smtp_close(s, "shutdown");
			smtp_maybe_free(s);
			break;
		}
	}
}

void
smtp_sessions_free_all(struct relayd *r)
{
	while (r->sessions != NULL) {
		r->sessions->close_reason = "shutdown";
		smtp_session_free(r->sessions);
	}
}

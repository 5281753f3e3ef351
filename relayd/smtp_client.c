/*
 * smtp_client: one outbound SMTP connection (RFC 5321) to one address, on
 * a libevent bufferevent: banner, EHLO (HELO fallback), STARTTLS (RFC
 * 3207) or implicit TLS, AUTH PLAIN or LOGIN (RFC 4954), then any number
 * of transactions with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
 * (RFC 6152) and SMTPUTF8 (RFC 6531), dot-stuffing the message on the
 * way out, then QUIT.
 *
 * Owns: the socket, its bufferevent (plain, then OpenSSL after STARTTLS),
 * the reply parser, copies of the parameters' strings and of the current
 * transaction's envelope, and the results handed to the callbacks (valid
 * during the callback only).  It does not own the message bytes nor the
 * SSL_CTX.
 *
 * Limits: replies as smtp_reply.h bounds them; at most
 * SMTP_CLIENT_OUT_HIGH bytes of the message queued for output at a time;
 * timeouts per state (RFC 5321 section 4.5.3.2).  Per-recipient policy
 * (retries, next MX, DSNs) is the caller's.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "log.h"
#include "smtp_client.h"

#define SMTP_CLIENT_OUT_HIGH	(256 * 1024)	/* body bytes queued */
#define SMTP_CLIENT_OUT_LOW	(64 * 1024)	/* refill below this */
#define SMTP_CLIENT_CHUNK	(64 * 1024)
#define SMTP_CLIENT_IN_HIGH	(64 * 1024)	/* read watermark */
#define SMTP_CLIENT_PATH_MAX	512		/* octets in an address */
#define SMTP_CLIENT_CRED_MAX	255		/* user or password */

static const char *state_names[SMTP_CLIENT_STATE_COUNT] = {
	"connecting", "tls-handshake", "banner", "ehlo", "helo", "starttls",
	"ehlo-tls", "auth", "ready", "rset", "mail", "rcpt", "data", "body",
	"dot", "quit", "closed",
};

struct smtp_client {
	struct event_base	*base;
	char			 id[64];
	char			 addr[INET6_ADDRSTRLEN + 8];
	char			*helo;
	char			*tls_name;
	char			*auth_user;
	char			*auth_pass;
	enum smtp_client_tls	 tls;
	int			 verify;
	SSL_CTX			*ssl_ctx;
	struct smtp_client_timeouts to;
	struct smtp_client_cbs	 cbs;
	void			*arg;

	evutil_socket_t		 fd;		/* ours until TLS takes it */
	struct bufferevent	*bev;
	enum smtp_client_state	 state;
	struct smtp_reply_parser parser;
	struct smtp_reply	 reply;
	struct smtp_client_caps	 caps;
	int			 tls_refused;	/* 4xx/5xx to STARTTLS */
	int			 auth_step;	/* LOGIN: 0 user, 1 pass */
	int			 ready_sent;

	int			 busy;		/* inside our callbacks */
	int			 freed;		/* free when busy drops to 0 */
	struct event		*defer_ev;
	struct event		*flush_ev;	/* direct writes (out_kick()) */
	int			 direct;	/* plaintext, connected */
	int			 flush_pending;
	int			 defer_done;	/* local txn failure to tell */
	int			 defer_closed;	/* closed() to report */
	struct smtp_result	 close_result;

	/* The transaction. */
	int			 in_txn;
	int			 need_rset;
	int			 pipelined;
	int			 mail_failed;
	int			 dot_ignore;
	char			*mail_from;
	char			**rcpts;
	size_t			 nrcpts;
	const char		*msg;
	size_t			 len;
	int			 eightbit;
	int			 smtputf8;
	size_t			 rcpt_next;	/* next RCPT reply expected */
	size_t			 rcpt_sent;
	size_t			 accepted;
	unsigned char		*settled;
	unsigned char		*rcpt_ok;
	struct smtp_txn_result	 res;
	size_t			 pos;		/* body bytes queued so far */
	int			 bol;		/* pos is at a line start */
	int			 body_done;
};

static void	client_readcb(struct bufferevent *, void *);
static void	client_flush_cb(evutil_socket_t, short, void *);
static void	client_writecb(struct bufferevent *, void *);
static void	client_eventcb(struct bufferevent *, short, void *);
static void	fail_conn(struct smtp_client *, enum smtp_status, int,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));

const char *
smtp_client_state_name(enum smtp_client_state st)
{
	if ((unsigned)st >= SMTP_CLIENT_STATE_COUNT)
		return "?";
	return state_names[st];
}

enum smtp_client_state
smtp_client_state(const struct smtp_client *c)
{
	return c->state;
}

const struct smtp_client_caps *
smtp_client_caps(const struct smtp_client *c)
{
	return &c->caps;
}

static unsigned
tmo(unsigned v, unsigned def)
{
	return v ? v : def;
}

static void
set_timeouts(struct smtp_client *c)
{
	struct timeval	 rtv = { 0, 0 }, wtv = { 0, 0 };
	unsigned	 r = 0, w = 0;

	switch (c->state) {
	case SMTP_CLIENT_CONNECTING:
		r = w = tmo(c->to.connect, 30);
		break;
	case SMTP_CLIENT_BANNER:
		r = w = tmo(c->to.banner, 300);
		break;
	case SMTP_CLIENT_TLS_HANDSHAKE:
	case SMTP_CLIENT_EHLO:
	case SMTP_CLIENT_HELO:
	case SMTP_CLIENT_STARTTLS:
	case SMTP_CLIENT_EHLO_TLS:
	case SMTP_CLIENT_AUTH:
		r = w = tmo(c->to.ehlo, 300);
		break;
	case SMTP_CLIENT_RSET:
	case SMTP_CLIENT_QUIT:
		r = w = tmo(c->to.rset, 300);
		break;
	case SMTP_CLIENT_MAIL:
		/* RFC 5321 4.5.3.2.2 */
		r = w = tmo(c->to.mail, 300);
		break;
	case SMTP_CLIENT_RCPT:
		/* 4.5.3.2.3 */
		r = w = tmo(c->to.rcpt, 300);
		break;
	case SMTP_CLIENT_DATA:
		/* 4.5.3.2.4 */
		r = w = tmo(c->to.data, 120);
		break;
	case SMTP_CLIENT_BODY:
		/* 4.5.3.2.5: each data block; the server is silent. */
		w = tmo(c->to.block, 180);
		break;
	case SMTP_CLIENT_DOT:
		/* 4.5.3.2.6 */
		r = tmo(c->to.dot, 600);
		w = tmo(c->to.block, 180);
		break;
	case SMTP_CLIENT_READY:
	case SMTP_CLIENT_CLOSED:
	case SMTP_CLIENT_STATE_COUNT:
		break;
	}
	if (c->bev == NULL)
		return;
	rtv.tv_sec = r;
	wtv.tv_sec = w;
	bufferevent_set_timeouts(c->bev, r ? &rtv : NULL, w ? &wtv : NULL);
}

static void
set_state(struct smtp_client *c, enum smtp_client_state st)
{
	enum smtp_client_state	 old = c->state;

	if ((unsigned)st >= SMTP_CLIENT_STATE_COUNT) {
		log_error(c->id, "smtp_client bad_state state=%d", (int)st);
		st = SMTP_CLIENT_CLOSED;
	}
	if (old == st)
		return;
	log_debug(c->id, "smtp_client state %s -> %s",
	    smtp_client_state_name(old), smtp_client_state_name(st));
	c->state = st;
	set_timeouts(c);
}

static void
result_set(struct smtp_result *r, enum smtp_status st, int code,
    const char *enh, const char *text, enum smtp_client_state where)
{
	r->status = st;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enh ? enh : "");
	snprintf(r->text, sizeof(r->text), "%s", text ? text : "");
	r->state = where;
}

/* A result from the last reply, with status st (or its class if -1). */
static void
result_from_reply(struct smtp_client *c, struct smtp_result *r, int st)
{
	char	 text[SMTP_RESULT_TEXT_MAX];

	smtp_reply_format(&c->reply, text, sizeof(text));
	result_set(r, st == -1 ? smtp_reply_status(c->reply.code) :
	    (enum smtp_status)st, c->reply.code, c->reply.enhanced, text,
	    c->state);
}

/*
 * A plaintext connection, once connected, writes what the state machine
 * queued in the bufferevent's output straight to the socket, once per
 * loop wakeup (client_flush_cb()), with the bufferevent's write side off:
 * no write event added and deleted for each command batch and each body
 * (two epoll_ctl calls and a wakeup each; smtp_server.c does the same for
 * replies).  What the socket does not take, the bufferevent writes, its
 * write side on until the output is empty again; the output buffer is
 * the same, so the order holds.  TLS always goes through the bufferevent.
 */
static void
out_kick(struct smtp_client *c)
{
	if (c->direct && !c->flush_pending) {
		c->flush_pending = 1;
		event_active(c->flush_ev, EV_TIMEOUT, 1);
	}
}

static int
send_line(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
send_line(struct smtp_client *c, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	if (c->bev == NULL)
		return -1;
	va_start(ap, fmt);
	rc = evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	out_kick(c);
	return rc < 0 ? -1 : 0;
}

static void
log_cmd(struct smtp_client *c, const char *cmd)
{
	char	 esc[LOG_ESCAPE_SIZE];

	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	log_debug(c->id, "smtp_client send cmd=%s", log_escape(esc,
	    sizeof(esc), cmd, strlen(cmd)));
}

/* Tear the connection down; no callback. */
static void
teardown(struct smtp_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->defer_ev != NULL)
		event_del(c->defer_ev);
	if (c->flush_ev != NULL)
		event_del(c->flush_ev);
	c->direct = 0;
	c->flush_pending = 0;
}

static void
txn_reset(struct smtp_client *c)
{
	size_t	 i;

	for (i = 0; i < c->nrcpts; i++)
		free(c->rcpts[i]);
	free(c->rcpts);
	free(c->mail_from);
	free(c->settled);
	free(c->rcpt_ok);
	free(c->res.rcpts);
	c->rcpts = NULL;
	c->mail_from = NULL;
	c->settled = NULL;
	c->rcpt_ok = NULL;
	c->res.rcpts = NULL;
	c->nrcpts = 0;
	c->in_txn = 0;
	c->msg = NULL;
	c->len = 0;
}

static void
client_destroy(struct smtp_client *c)
{
	teardown(c);
	txn_reset(c);
	if (c->defer_ev != NULL)
		event_free(c->defer_ev);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	smtp_reply_parser_clear(&c->parser);
	smtp_reply_clear(&c->reply);
	free(c->helo);
	free(c->tls_name);
	free(c->auth_user);
	if (c->auth_pass != NULL) {
		explicit_bzero(c->auth_pass, strlen(c->auth_pass));
		free(c->auth_pass);
	}
	free(c);
}

void
smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	teardown(c);
	c->state = SMTP_CLIENT_CLOSED;
	if (c->busy > 0) {
		c->freed = 1;
		return;
	}
	client_destroy(c);
}

static void
enter(struct smtp_client *c)
{
	c->busy++;
}

static void
leave(struct smtp_client *c)
{
	if (--c->busy == 0 && c->freed)
		client_destroy(c);
}

/* Settle every recipient not settled yet with r. */
static void
settle_rest(struct smtp_client *c, const struct smtp_result *r, int all)
{
	size_t	 i;

	for (i = 0; i < c->nrcpts; i++) {
		if (c->settled[i])
			continue;
		if (!all && !c->rcpt_ok[i])
			continue;
		c->res.rcpts[i] = *r;
		c->settled[i] = 1;
	}
}

/*
 * Report the transaction.  The results array goes with the callback (the
 * callback may start the next transaction).  Called with busy held, so
 * c stays allocated even if the callback frees it.
 */
static void
txn_finish(struct smtp_client *c)
{
	struct smtp_txn_result	 res;
	char			 esc[LOG_ESCAPE_SIZE];
	size_t			 i;

	c->res.delivered = 0;
	for (i = 0; i < c->nrcpts; i++) {
		if (!c->settled[i])
			result_set(&c->res.rcpts[i], SMTP_STATUS_TEMPFAIL, 0,
			    "4.4.2", "transaction ended without a reply for "
			    "this recipient", c->state);
		if (c->res.rcpts[i].status == SMTP_STATUS_OK)
			c->res.delivered++;
		log_info(c->id, "smtp_client rcpt addr=%s rcpt=%s status=%s "
		    "reply=%s", c->addr, log_escape(esc, sizeof(esc),
		    c->rcpts[i], strlen(c->rcpts[i])),
		    smtp_status_name(c->res.rcpts[i].status),
		    c->res.rcpts[i].text);
	}
	res = c->res;
	c->res.rcpts = NULL;
	c->in_txn = 0;
	enter(c);
	if (c->cbs.done != NULL)
		c->cbs.done(c, &res, c->arg);
	free(res.rcpts);
	leave(c);
}

static void
call_closed(struct smtp_client *c, const struct smtp_result *r)
{
	log_info(c->id, "smtp_client closed addr=%s status=%s state=%s "
	    "reason=%s", c->addr, smtp_status_name(r->status),
	    smtp_client_state_name(r->state), r->text);
	if (c->cbs.closed != NULL)
		c->cbs.closed(c, r, c->arg);
}

/*
 * The connection is over: settle the transaction (done() with conn_lost)
 * and call closed().  The caller must not touch c after this returns
 * unless it holds busy (all entry points do).
 */
static void
fail_conn(struct smtp_client *c, enum smtp_status st, int code,
    const char *enh, const char *fmt, ...)
{
	struct smtp_result	 r;
	char			 text[SMTP_RESULT_TEXT_MAX];
	va_list			 ap;
	enum smtp_client_state	 where = c->state;

	if (c->state == SMTP_CLIENT_CLOSED || c->freed)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	result_set(&r, st, code, enh, text, where);
	teardown(c);
	c->state = SMTP_CLIENT_CLOSED;
	if (c->in_txn) {
		settle_rest(c, &r, 1);
		c->res.conn_lost = 1;
		if (c->res.txn.status == SMTP_STATUS_OK)
			c->res.txn = r;
		txn_finish(c);
		if (c->freed)
			return;
	}
	enter(c);
	call_closed(c, &r);
	leave(c);
}

/* Failure with the last reply, before or outside a transaction. */
static void
fail_reply(struct smtp_client *c, enum smtp_status st, const char *what)
{
	char	 text[SMTP_RESULT_TEXT_MAX];

	smtp_reply_format(&c->reply, text, sizeof(text));
	fail_conn(c, st, c->reply.code, c->reply.enhanced, "%s%s", what, text);
}

/* Forget the extensions; keep what the session itself achieved. */
static void
caps_reset(struct smtp_client *c)
{
	struct smtp_client_caps	 k = c->caps;

	memset(&c->caps, 0, sizeof(c->caps));
	c->caps.tls = k.tls;
	c->caps.tls_verified = k.tls_verified;
	c->caps.authenticated = k.authenticated;
}

static void
parse_caps(struct smtp_client *c)
{
	const char	*l;
	size_t		 len, k, i;
	unsigned	 n;
	char		 kw[32], rest[256];

	caps_reset(c);
	c->caps.esmtp = 1;
	for (n = 1; smtp_reply_line(&c->reply, n, &l, &len) == 0; n++) {
		for (k = 0; k < len && k < sizeof(kw) - 1 && l[k] != ' ' &&
		    l[k] != '='; k++)
			kw[k] = l[k];
		kw[k] = '\0';
		i = k < len ? k + 1 : len;
		snprintf(rest, sizeof(rest), "%.*s", (int)(len - i), l + i);
		if (strcasecmp(kw, "PIPELINING") == 0)
			c->caps.pipelining = 1;
		else if (strcasecmp(kw, "STARTTLS") == 0)
			c->caps.starttls = 1;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			c->caps.eightbitmime = 1;
		else if (strcasecmp(kw, "SMTPUTF8") == 0)
			c->caps.smtputf8 = 1;
		else if (strcasecmp(kw, "SIZE") == 0) {
			c->caps.size = 1;
			c->caps.size_max = strtoull(rest, NULL, 10);
		} else if (strcasecmp(kw, "AUTH") == 0) {
			char	*tok, *save = NULL;

			for (tok = strtok_r(rest, " ", &save); tok != NULL;
			    tok = strtok_r(NULL, " ", &save)) {
				if (strcasecmp(tok, "PLAIN") == 0)
					c->caps.auth_plain = 1;
				else if (strcasecmp(tok, "LOGIN") == 0)
					c->caps.auth_login = 1;
			}
		}
	}
}

static void
go_ready(struct smtp_client *c)
{
	set_state(c, SMTP_CLIENT_READY);
	if (c->ready_sent)
		return;
	c->ready_sent = 1;
	log_info(c->id, "smtp_client ready addr=%s esmtp=%d tls=%d "
	    "verified=%d auth=%d pipelining=%d 8bitmime=%d smtputf8=%d",
	    c->addr, c->caps.esmtp, c->caps.tls, c->caps.tls_verified,
	    c->caps.authenticated, c->caps.pipelining, c->caps.eightbitmime,
	    c->caps.smtputf8);
	if (c->cbs.ready != NULL)
		c->cbs.ready(c, c->arg);
}

static void
send_auth(struct smtp_client *c)
{
	char	 raw[2 * SMTP_CLIENT_CRED_MAX + 2];
	char	 b64[BASE64_ENCODED_LEN(sizeof(raw)) + 1];
	size_t	 ul = strlen(c->auth_user), pl = strlen(c->auth_pass);

	set_state(c, SMTP_CLIENT_AUTH);
	c->auth_step = 0;
	if (c->caps.auth_plain) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		raw[0] = '\0';
		memcpy(raw + 1, c->auth_user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, c->auth_pass, pl);
		base64_encode(raw, 2 + ul + pl, b64);
		log_debug(c->id, "smtp_client send cmd=\"AUTH PLAIN ...\"");
		send_line(c, "AUTH PLAIN %s\r\n", b64);
		c->auth_step = 2;
	} else {
		log_cmd(c, "AUTH LOGIN");
		send_line(c, "AUTH LOGIN\r\n");
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
}

static void
auth_reply(struct smtp_client *c)
{
	char		 b64[BASE64_ENCODED_LEN(SMTP_CLIENT_CRED_MAX) + 1];
	const char	*s;

	if (c->reply.code == 235) {
		c->caps.authenticated = 1;
		log_info(c->id, "smtp_client auth addr=%s mechanism=%s "
		    "result=ok", c->addr, c->caps.auth_plain ? "PLAIN" :
		    "LOGIN");
		go_ready(c);
		return;
	}
	if (c->reply.code == 334 && c->auth_step < 2) {
		/* RFC 4954 section 4; LOGIN: user name, then password. */
		s = c->auth_step == 0 ? c->auth_user : c->auth_pass;
		base64_encode(s, strlen(s), b64);
		send_line(c, "%s\r\n", b64);
		explicit_bzero(b64, sizeof(b64));
		c->auth_step++;
		return;
	}
	/* Soft bounce: bad credentials are the operator's to fix. */
	fail_reply(c, SMTP_STATUS_TEMPFAIL, "authentication failed: ");
}

static void
after_ehlo(struct smtp_client *c)
{
	if (!c->caps.tls && c->caps.starttls && !c->tls_refused &&
	    (c->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC ||
	    c->tls == SMTP_CLIENT_TLS_REQUIRED)) {
		set_state(c, SMTP_CLIENT_STARTTLS);
		log_cmd(c, "STARTTLS");
		send_line(c, "STARTTLS\r\n");
		return;
	}
	if (!c->caps.tls && c->tls == SMTP_CLIENT_TLS_REQUIRED) {
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4", "TLS is "
		    "required but the server %s", c->tls_refused ?
		    "refused STARTTLS" : "does not offer STARTTLS");
		return;
	}
	if (c->auth_user != NULL) {
		if (!c->caps.tls) {
			fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4",
			    "AUTH is configured but the connection is not "
			    "encrypted; credentials are never sent in clear");
			return;
		}
		if (!c->caps.auth_plain && !c->caps.auth_login) {
			fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4",
			    "AUTH is configured but the server offers neither "
			    "PLAIN nor LOGIN");
			return;
		}
		send_auth(c);
		return;
	}
	go_ready(c);
}

static void
start_tls(struct smtp_client *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	SSL		*ssl;
	size_t		 n;
	struct in6_addr	 a6;
	struct in_addr	 a4;

	/*
	 * RFC 3207 section 4.2 and STYLE.md: whatever the server sent after
	 * its 220 arrived in clear text and is discarded (response
	 * injection, CVE-2011-0411 style).
	 */
	if ((n = evbuffer_get_length(in)) > 0)
		log_warn(c->id, "smtp_client starttls_discard addr=%s "
		    "bytes=%zu", c->addr, n);
	smtp_reply_parser_clear(&c->parser);
	smtp_reply_parser_init(&c->parser);
	c->direct = 0;			/* TLS: through the bufferevent */
	bufferevent_free(c->bev);	/* no CLOSE_ON_FREE: fd stays */
	c->bev = NULL;
	if ((ssl = SSL_new(c->ssl_ctx)) == NULL) {
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5", "TLS: cannot "
		    "create a session");
		return;
	}
	if (c->tls_name != NULL) {
		/* RFC 6066 section 3: SNI carries host names, not IPs. */
		if (inet_pton(AF_INET, c->tls_name, &a4) != 1 &&
		    inet_pton(AF_INET6, c->tls_name, &a6) != 1)
			SSL_set_tlsext_host_name(ssl, c->tls_name);
		if (c->verify) {
			SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, c->tls_name) != 1) {
				SSL_free(ssl);
				fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5",
				    "TLS: cannot set the name to verify");
				return;
			}
		}
	}
	c->bev = bufferevent_openssl_socket_new(c->base, c->fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5", "TLS: cannot "
		    "create a TLS stream");
		return;
	}
	c->fd = -1;		/* the TLS bufferevent closes it now */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, client_readcb, client_writecb,
	    client_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SMTP_CLIENT_IN_HIGH);
	c->state = SMTP_CLIENT_CLOSED;	/* force the timeouts below */
	set_state(c, SMTP_CLIENT_TLS_HANDSHAKE);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
tls_done(struct smtp_client *c)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(c->bev);

	c->caps.tls = 1;
	c->caps.tls_verified = c->verify &&
	    SSL_get_verify_result(ssl) == X509_V_OK;
	log_info(c->id, "smtp_client tls addr=%s version=%s cipher=%s "
	    "verified=%d", c->addr, SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), c->caps.tls_verified);
	if (c->verify && !c->caps.tls_verified) {
		/* SSL_VERIFY_PEER already stops the handshake; be sure. */
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5", "TLS: "
		    "certificate verification failed: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		return;
	}
	if (c->tls == SMTP_CLIENT_TLS_IMPLICIT) {
		set_state(c, SMTP_CLIENT_BANNER);
		return;
	}
	/* RFC 3207 section 4.2: forget everything, EHLO again. */
	set_state(c, SMTP_CLIENT_EHLO_TLS);
	send_line(c, "EHLO %s\r\n", c->helo);
	log_cmd(c, "EHLO");
}

static void
send_rcpt(struct smtp_client *c)
{
	send_line(c, "RCPT TO:<%s>\r\n", c->rcpts[c->rcpt_sent]);
	log_cmd(c, "RCPT");
	c->rcpt_sent++;
}

static void
start_mail(struct smtp_client *c)
{
	char	 size[40];

	/* RFC 1870 SIZE=, RFC 6152 BODY=8BITMIME, RFC 6531 SMTPUTF8. */
	size[0] = '\0';
	if (c->caps.size)
		snprintf(size, sizeof(size), " SIZE=%zu", c->len);
	set_state(c, SMTP_CLIENT_MAIL);
	c->pipelined = c->caps.pipelining;
	send_line(c, "MAIL FROM:<%s>%s%s%s\r\n", c->mail_from, size,
	    c->eightbit ? " BODY=8BITMIME" : "",
	    c->smtputf8 ? " SMTPUTF8" : "");
	log_cmd(c, "MAIL");
	if (!c->pipelined)
		return;
	/* RFC 2920 section 3.1: MAIL, every RCPT and DATA in one go. */
	while (c->rcpt_sent < c->nrcpts)
		send_rcpt(c);
	send_line(c, "DATA\r\n");
	log_cmd(c, "DATA");
}

/* Queue more of the message, dot-stuffed (RFC 5321 section 4.5.2). */
static void
fill_body(struct smtp_client *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	const char	*p, *end, *hit;
	size_t		 n;

	while (!c->body_done && evbuffer_get_length(out) <
	    SMTP_CLIENT_OUT_HIGH) {
		n = c->len - c->pos;
		if (n > SMTP_CLIENT_CHUNK)
			n = SMTP_CLIENT_CHUNK;
		p = c->msg != NULL ? c->msg + c->pos : "";
		end = p + n;
		if (n > 0 && c->bol && *p == '.')
			evbuffer_add(out, ".", 1);
		while (p < end) {
			hit = memmem(p, end - p, "\n.", 2);
			if (hit == NULL) {
				evbuffer_add(out, p, end - p);
				break;
			}
			evbuffer_add(out, p, hit + 1 - p);
			evbuffer_add(out, ".", 1);
			p = hit + 1;
		}
		c->pos += n;
		if (n > 0)
			c->bol = c->msg[c->pos - 1] == '\n';
		if (c->pos < c->len)
			continue;
		/* The message should end with CRLF; make sure it does. */
		if (c->len == 0 || !c->bol)
			evbuffer_add(out, "\r\n", 2);
		evbuffer_add(out, ".\r\n", 3);
		c->body_done = 1;
		/* DOT once the output has drained (client_writecb). */
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	}
}

static void
start_body(struct smtp_client *c)
{
	set_state(c, SMTP_CLIENT_BODY);
	c->pos = 0;
	c->bol = 1;
	c->body_done = 0;
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_OUT_LOW, 0);
	fill_body(c);
	out_kick(c);
}

/* The transaction is over (all replies in). */
static void
txn_end(struct smtp_client *c, int dirty)
{
	c->need_rset = dirty;
	set_state(c, SMTP_CLIENT_READY);
	txn_finish(c);
}

static void
mail_reply(struct smtp_client *c)
{
	struct smtp_result	 r;

	if (smtp_reply_status(c->reply.code) != SMTP_STATUS_OK) {
		result_from_reply(c, &r, -1);
		c->res.txn = r;
		settle_rest(c, &r, 1);
		c->mail_failed = 1;
		if (!c->pipelined) {
			txn_end(c, 1);
			return;
		}
	}
	set_state(c, SMTP_CLIENT_RCPT);
	if (!c->pipelined)
		send_rcpt(c);
}

static void
rcpt_reply(struct smtp_client *c)
{
	size_t	 i = c->rcpt_next++;

	if (!c->mail_failed) {
		if (smtp_reply_status(c->reply.code) == SMTP_STATUS_OK) {
			c->rcpt_ok[i] = 1;
			c->accepted++;
		} else {
			result_from_reply(c, &c->res.rcpts[i], -1);
			c->settled[i] = 1;
		}
	}
	if (c->rcpt_next < c->nrcpts) {
		if (!c->pipelined)
			send_rcpt(c);
		return;
	}
	if (c->pipelined) {
		set_state(c, SMTP_CLIENT_DATA);
		return;
	}
	if (c->accepted == 0) {
		/* Every recipient refused: no DATA. */
		c->res.txn = c->res.rcpts[0];
		txn_end(c, 1);
		return;
	}
	set_state(c, SMTP_CLIENT_DATA);
	send_line(c, "DATA\r\n");
	log_cmd(c, "DATA");
}

static void
data_reply(struct smtp_client *c)
{
	struct smtp_result	 r;

	if (c->mail_failed || c->accepted == 0) {
		/*
		 * Pipelined DATA after a refused MAIL or every RCPT refused;
		 * RFC 2920 section 3.1: if it got 354 anyway, end the
		 * message at once.
		 */
		if (c->reply.code == 354) {
			c->dot_ignore = 1;
			set_state(c, SMTP_CLIENT_DOT);
			send_line(c, ".\r\n");
			return;
		}
		if (c->accepted == 0 && !c->mail_failed)
			c->res.txn = c->res.rcpts[0];
		txn_end(c, 1);
		return;
	}
	if (c->reply.code == 354) {
		start_body(c);
		return;
	}
	result_from_reply(c, &r, -1);
	if (r.status == SMTP_STATUS_OK) {
		/* A 2xx to DATA is not "go ahead": a protocol error. */
		r.status = SMTP_STATUS_TEMPFAIL;
	}
	c->res.txn = r;
	settle_rest(c, &r, 0);
	txn_end(c, 1);
}

static void
dot_reply(struct smtp_client *c)
{
	struct smtp_result	 r;

	if (c->dot_ignore) {
		txn_end(c, 1);
		return;
	}
	result_from_reply(c, &r, -1);
	if (c->reply.code >= 300 && c->reply.code < 400)
		r.status = SMTP_STATUS_TEMPFAIL;
	c->res.txn = r;
	settle_rest(c, &r, 0);
	txn_end(c, 0);
}

static void
handle_reply(struct smtp_client *c)
{
	enum smtp_status	 st = smtp_reply_status(c->reply.code);
	char			 text[SMTP_RESULT_TEXT_MAX];

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		smtp_reply_format(&c->reply, text, sizeof(text));
		log_debug(c->id, "smtp_client reply state=%s reply=%s",
		    smtp_client_state_name(c->state), text);
	}
	switch (c->state) {
	case SMTP_CLIENT_BANNER:
		if (c->reply.code != 220) {
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "banner: ");
			return;
		}
		set_state(c, SMTP_CLIENT_EHLO);
		send_line(c, "EHLO %s\r\n", c->helo);
		log_cmd(c, "EHLO");
		return;
	case SMTP_CLIENT_EHLO:
		if (st == SMTP_STATUS_PERMFAIL) {
			/* RFC 5321 section 3.2: fall back to HELO. */
			set_state(c, SMTP_CLIENT_HELO);
			send_line(c, "HELO %s\r\n", c->helo);
			log_cmd(c, "HELO");
			return;
		}
		/* FALLTHROUGH */
	case SMTP_CLIENT_EHLO_TLS:
		if (c->reply.code != 250) {
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "EHLO: ");
			return;
		}
		parse_caps(c);
		after_ehlo(c);
		return;
	case SMTP_CLIENT_HELO:
		if (c->reply.code != 250) {
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "HELO: ");
			return;
		}
		caps_reset(c);
		c->caps.esmtp = 0;
		after_ehlo(c);
		return;
	case SMTP_CLIENT_STARTTLS:
		if (c->reply.code == 220) {
			start_tls(c);
			return;
		}
		/* RFC 3207 section 4: may go on in clear unless required. */
		c->tls_refused = 1;
		if (c->tls == SMTP_CLIENT_TLS_REQUIRED) {
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "TLS is required "
			    "but STARTTLS failed: ");
			return;
		}
		after_ehlo(c);
		return;
	case SMTP_CLIENT_AUTH:
		auth_reply(c);
		return;
	case SMTP_CLIENT_RSET:
		if (st != SMTP_STATUS_OK) {
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "RSET: ");
			return;
		}
		c->need_rset = 0;
		start_mail(c);
		return;
	case SMTP_CLIENT_MAIL:
		mail_reply(c);
		return;
	case SMTP_CLIENT_RCPT:
		rcpt_reply(c);
		return;
	case SMTP_CLIENT_DATA:
		data_reply(c);
		return;
	case SMTP_CLIENT_BODY:
		if (c->body_done) {
			/* The dot went out before our write callback ran. */
			set_state(c, SMTP_CLIENT_DOT);
			dot_reply(c);
			return;
		}
		/* A reply in the middle of the message: take it as final. */
		fail_reply(c, st == SMTP_STATUS_OK ? SMTP_STATUS_TEMPFAIL : st,
		    "reply before the end of the message: ");
		return;
	case SMTP_CLIENT_DOT:
		dot_reply(c);
		return;
	case SMTP_CLIENT_QUIT:
		teardown(c);
		set_state(c, SMTP_CLIENT_CLOSED);
		{
			struct smtp_result r;

			result_from_reply(c, &r, SMTP_STATUS_OK);
			r.state = SMTP_CLIENT_QUIT;
			call_closed(c, &r);
		}
		return;
	case SMTP_CLIENT_READY:
		/* Unexpected: most likely 421 before closing. */
		fail_reply(c, SMTP_STATUS_TEMPFAIL, "unexpected reply: ");
		return;
	case SMTP_CLIENT_CONNECTING:
	case SMTP_CLIENT_TLS_HANDSHAKE:
	case SMTP_CLIENT_CLOSED:
	case SMTP_CLIENT_STATE_COUNT:
		return;
	}
}

static void
client_readcb(struct bufferevent *bev, void *arg)
{
	struct smtp_client	*c = arg;
	struct evbuffer		*in;
	struct evbuffer_iovec	 v;
	enum smtp_reply_rc	 rc;
	size_t			 used;

	enter(c);
	while (!c->freed && c->bev == bev && c->state != SMTP_CLIENT_CLOSED &&
	    c->state != SMTP_CLIENT_TLS_HANDSHAKE) {
		in = bufferevent_get_input(bev);
		if (evbuffer_get_length(in) == 0 ||
		    evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		rc = smtp_reply_parse(&c->parser, v.iov_base, v.iov_len,
		    &used, &c->reply);
		evbuffer_drain(in, used);
		if (rc == SMTP_REPLY_MORE)
			continue;
		if (rc == SMTP_REPLY_ERROR) {
			/* Malformed: temporary (smtp_reply.h). */
			fail_reply(c, SMTP_STATUS_TEMPFAIL, "");
			break;
		}
		handle_reply(c);
	}
	leave(c);
}

static void
client_writecb(struct bufferevent *bev, void *arg)
{
	struct smtp_client	*c = arg;

	enter(c);
	if (c->state == SMTP_CLIENT_BODY && c->bev == bev) {
		if (!c->body_done)
			fill_body(c);
		else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			/* RFC 5321 4.5.3.2.6: the final dot is out. */
			set_state(c, SMTP_CLIENT_DOT);
	}
	/* The rest is out: direct writes again (out_kick()). */
	if (c->direct && c->bev == bev &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
	leave(c);
}

/* Loop: write the queued output straight to the socket (out_kick()). */
static void
client_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client	*c = arg;
	struct evbuffer		*out;

	(void)fd;
	(void)what;
	c->flush_pending = 0;
	if (c->bev == NULL || !c->direct ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;		/* the bufferevent has the rest in hand */
	enter(c);
	out = bufferevent_get_output(c->bev);
	while (c->bev != NULL && c->direct) {
		if (evbuffer_get_length(out) > 0)
			(void)evbuffer_write(out, c->fd); /* EAGAIN: below */
		if (evbuffer_get_length(out) > 0) {
			/* The socket is full, or an error for the
			 * bufferevent to report: it writes the rest. */
			bufferevent_enable(c->bev, EV_WRITE);
			break;
		}
		if (c->state != SMTP_CLIENT_BODY)
			break;
		if (!c->body_done) {
			fill_body(c);
			continue;
		}
		/* RFC 5321 4.5.3.2.6: the final dot is out. */
		set_state(c, SMTP_CLIENT_DOT);
		break;
	}
	leave(c);
}

static void
ssl_errors(struct smtp_client *c, char *dst, size_t len)
{
	unsigned long	 e;
	size_t		 o = 0;
	char		 one[160];

	dst[0] = '\0';
	while (c->bev != NULL &&
	    (e = bufferevent_get_openssl_error(c->bev)) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (o < len)
			o += snprintf(dst + o, len - o, "%s%s", o ? "; " : "",
			    one);
	}
}

static void
client_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client	*c = arg;
	char			 why[300];
	SSL			*ssl;
	long			 vr;
	int			 err = EVUTIL_SOCKET_ERROR();

	enter(c);
	if (c->bev != bev)
		goto out;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == SMTP_CLIENT_CONNECTING) {
			log_info(c->id, "smtp_client connected addr=%s",
			    c->addr);
			if (c->tls == SMTP_CLIENT_TLS_IMPLICIT)
				start_tls(c);
			else {
				c->direct = 1;
				bufferevent_disable(c->bev, EV_WRITE);
				set_state(c, SMTP_CLIENT_BANNER);
			}
		} else if (c->state == SMTP_CLIENT_TLS_HANDSHAKE)
			tls_done(c);
		goto out;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->state == SMTP_CLIENT_DOT)
			/* RFC 5321 4.5.3.2.6, RFC 1047. */
			log_warn(c->id, "smtp_client dot_timeout addr=%s: the "
			    "message may have been delivered and may be "
			    "delivered twice", c->addr);
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, c->state ==
		    SMTP_CLIENT_CONNECTING ? "4.4.1" : "4.4.2",
		    "timeout in state %s%s", smtp_client_state_name(c->state),
		    c->state == SMTP_CLIENT_DOT ? " (after the final dot: the "
		    "message may be delivered twice)" : "");
		goto out;
	}
	if (c->state == SMTP_CLIENT_TLS_HANDSHAKE) {
		ssl = bufferevent_openssl_get_ssl(bev);
		vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
		ssl_errors(c, why, sizeof(why));
		if (c->verify && vr != X509_V_OK)
			fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5", "TLS "
			    "handshake failed: certificate verification "
			    "failed: %s", X509_verify_cert_error_string(vr));
		else
			fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5", "TLS "
			    "handshake failed: %s", why[0] ? why :
			    (what & BEV_EVENT_EOF) ? "connection closed" :
			    strerror(err));
		goto out;
	}
	if (c->state == SMTP_CLIENT_CONNECTING) {
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.1", "connect to %s "
		    "failed: %s", c->addr, strerror(err ? err : ECONNREFUSED));
		goto out;
	}
	if (c->state == SMTP_CLIENT_QUIT) {
		struct smtp_result r;

		teardown(c);
		set_state(c, SMTP_CLIENT_CLOSED);
		result_set(&r, SMTP_STATUS_OK, 0, "", "closed after QUIT",
		    SMTP_CLIENT_QUIT);
		call_closed(c, &r);
		goto out;
	}
	if (what & BEV_EVENT_EOF)
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.2", "connection "
		    "closed by the server in state %s",
		    smtp_client_state_name(c->state));
	else {
		ssl_errors(c, why, sizeof(why));
		fail_conn(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.2", "connection "
		    "error in state %s: %s", smtp_client_state_name(c->state),
		    why[0] ? why : strerror(err));
	}
out:
	leave(c);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client	*c = arg;

	enter(c);
	if (c->defer_done) {
		c->defer_done = 0;
		txn_finish(c);
	}
	if (!c->freed && c->defer_closed) {
		c->defer_closed = 0;
		teardown(c);
		c->state = SMTP_CLIENT_CLOSED;
		call_closed(c, &c->close_result);
	}
	leave(c);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

struct smtp_client *
smtp_client_connect(struct event_base *base,
    const struct smtp_client_params *p, const struct sockaddr *sa,
    socklen_t salen, const struct smtp_client_cbs *cbs, void *arg,
    char *err, size_t errlen)
{
	struct smtp_client	*c;
	char			 host[INET6_ADDRSTRLEN];
	unsigned		 port = 0;
	int			 one = 1;

	if (p->auth_user != NULL && p->auth_user[0] != '\0' &&
	    p->tls == SMTP_CLIENT_TLS_NONE) {
		snprintf(err, errlen, "AUTH needs TLS: credentials are never "
		    "sent in clear");
		return NULL;
	}
	if (p->auth_user != NULL && p->auth_user[0] != '\0' &&
	    (p->auth_pass == NULL || strlen(p->auth_user) >
	    SMTP_CLIENT_CRED_MAX || strlen(p->auth_pass) >
	    SMTP_CLIENT_CRED_MAX)) {
		snprintf(err, errlen, "AUTH user or password missing or over "
		    "%d octets", SMTP_CLIENT_CRED_MAX);
		return NULL;
	}
	if (p->tls != SMTP_CLIENT_TLS_NONE && p->ssl_ctx == NULL) {
		snprintf(err, errlen, "TLS needs an SSL_CTX");
		return NULL;
	}
	if (p->verify && (p->tls_name == NULL || p->tls_name[0] == '\0' ||
	    p->tls == SMTP_CLIENT_TLS_NONE)) {
		snprintf(err, errlen, "certificate verification needs TLS "
		    "and a name to verify");
		return NULL;
	}
	if (p->helo == NULL || p->helo[0] == '\0' ||
	    strpbrk(p->helo, " \r\n") != NULL) {
		snprintf(err, errlen, "bad HELO name");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->base = base;
	c->state = SMTP_CLIENT_CLOSED;
	snprintf(c->id, sizeof(c->id), "%s", p->id ? p->id : "-");
	smtp_reply_parser_init(&c->parser);
	smtp_reply_init(&c->reply);
	c->tls = p->tls;
	c->verify = p->verify;
	/* Verification without STARTTLS makes no sense: require TLS. */
	if (c->verify && c->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC)
		c->tls = SMTP_CLIENT_TLS_REQUIRED;
	c->ssl_ctx = p->ssl_ctx;
	c->to = p->timeouts;
	c->cbs = *cbs;
	c->arg = arg;
	c->helo = strdup(p->helo);
	c->tls_name = dup_or_null(p->tls_name);
	c->auth_user = dup_or_null(p->auth_user);
	if (c->auth_user != NULL)
		c->auth_pass = strdup(p->auth_pass);
	if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(c->addr, sizeof(c->addr), "[%s]:%u", host, port);
	} else if (sa->sa_family == AF_INET &&
	    salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(c->addr, sizeof(c->addr), "%s:%u", host, port);
	} else {
		snprintf(err, errlen, "unsupported address family");
		client_destroy(c);
		return NULL;
	}
	if (c->helo == NULL || (p->tls_name && p->tls_name[0] &&
	    c->tls_name == NULL) || (c->auth_user && c->auth_pass == NULL) ||
	    (c->defer_ev = event_new(base, -1, 0, defer_cb, c)) == NULL ||
	    (c->flush_ev = event_new(base, -1, 0, client_flush_cb, c)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		client_destroy(c);
		return NULL;
	}
	if ((c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    (c->bev = bufferevent_socket_new(base, c->fd, 0)) == NULL) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		client_destroy(c);
		return NULL;
	}
	/* Commands are written in whole batches already. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(c->bev, client_readcb, client_writecb,
	    client_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SMTP_CLIENT_IN_HIGH);
	set_state(c, SMTP_CLIENT_CONNECTING);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug(c->id, "smtp_client connect addr=%s", c->addr);
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) == -1) {
		result_set(&c->close_result, SMTP_STATUS_TEMPFAIL, 0, "4.4.1",
		    "connect failed", SMTP_CLIENT_CONNECTING);
		snprintf(c->close_result.text, sizeof(c->close_result.text),
		    "connect to %s failed: %s", c->addr, strerror(errno));
		c->defer_closed = 1;
		event_active(c->defer_ev, EV_TIMEOUT, 0);
	}
	return c;
}

static int
bad_path(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n > SMTP_CLIENT_PATH_MAX)
		return 1;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    s[i] == '<' || s[i] == '>')
			return 1;
	return 0;
}

int
smtp_client_send(struct smtp_client *c, const struct smtp_txn *t)
{
	struct smtp_result	 r;
	size_t			 i;

	if (c->state != SMTP_CLIENT_READY || c->in_txn || c->freed ||
	    t->nrcpts == 0 || t->mail_from == NULL ||
	    bad_path(t->mail_from) || (t->msg == NULL && t->len > 0))
		return -1;
	for (i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i] == NULL || t->rcpts[i][0] == '\0' ||
		    bad_path(t->rcpts[i]))
			return -1;
	txn_reset(c);
	memset(&c->res, 0, sizeof(c->res));
	if ((c->mail_from = strdup(t->mail_from)) == NULL ||
	    (c->rcpts = calloc(t->nrcpts, sizeof(*c->rcpts))) == NULL ||
	    (c->settled = calloc(t->nrcpts, 1)) == NULL ||
	    (c->rcpt_ok = calloc(t->nrcpts, 1)) == NULL ||
	    (c->res.rcpts = calloc(t->nrcpts, sizeof(*c->res.rcpts))) ==
	    NULL) {
		txn_reset(c);
		return -1;
	}
	for (i = 0; i < t->nrcpts; i++) {
		if ((c->rcpts[i] = strdup(t->rcpts[i])) == NULL) {
			c->nrcpts = i;
			txn_reset(c);
			return -1;
		}
		c->nrcpts = i + 1;
	}
	c->res.nrcpts = c->nrcpts;
	c->msg = t->msg;
	c->len = t->len;
	c->eightbit = t->eightbit;
	c->smtputf8 = t->smtputf8;
	c->in_txn = 1;
	c->mail_failed = 0;
	c->dot_ignore = 0;
	c->rcpt_next = c->rcpt_sent = c->accepted = 0;
	result_set(&c->res.txn, SMTP_STATUS_OK, 0, "", "", c->state);

	/* Decisions that need no command (see smtp_client.h). */
	r.code = 0;
	if (c->caps.size && c->caps.size_max > 0 && c->len >
	    c->caps.size_max) {
		/* RFC 1870 section 6.1. */
		result_set(&r, SMTP_STATUS_PERMFAIL, 0, "5.3.4", "", c->state);
		snprintf(r.text, sizeof(r.text), "message size %zu exceeds "
		    "the server's limit of %llu", c->len, c->caps.size_max);
	} else if (c->eightbit && !c->caps.eightbitmime)
		result_set(&r, SMTP_STATUS_PERMFAIL, 0, "5.6.3", "message is "
		    "8-bit and the server does not offer 8BITMIME; converting "
		    "it would break the DKIM signatures", c->state);
	else if (c->smtputf8 && !c->caps.smtputf8)
		result_set(&r, SMTP_STATUS_PERMFAIL, 0, "5.6.7", "message "
		    "needs SMTPUTF8 and the server does not offer it",
		    c->state);
	else
		r.status = SMTP_STATUS_OK;
	if (r.status != SMTP_STATUS_OK) {
		c->res.txn = r;
		settle_rest(c, &r, 1);
		c->defer_done = 1;
		event_active(c->defer_ev, EV_TIMEOUT, 0);
		return 0;
	}
	if (c->need_rset) {
		/* RFC 5321 section 4.1.1.5 after a failed transaction. */
		set_state(c, SMTP_CLIENT_RSET);
		send_line(c, "RSET\r\n");
		log_cmd(c, "RSET");
		return 0;
	}
	start_mail(c);
	return 0;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->state != SMTP_CLIENT_READY || c->in_txn || c->freed) {
		smtp_client_free(c);
		return;
	}
	set_state(c, SMTP_CLIENT_QUIT);
	send_line(c, "QUIT\r\n");
	log_cmd(c, "QUIT");
}

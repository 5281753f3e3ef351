/*
 * smtp_auth: the AUTH exchange of an SMTP session (RFC 4954) with the
 * PLAIN (RFC 4616) and LOGIN mechanisms.
 *
 * Owns the password check job: the crypt(3) comparison runs on the worker
 * pool, never on the loop, against a copy of the account's hash (or of
 * crypt_dummy_hash() for unknown names, so timing does not tell which
 * accounts exist).  A session freed while its check runs detaches the job
 * (smtp_auth_detach); done() then only frees it.  Failures are delayed per
 * client address (auth.c's throttle), counted as session errors and logged
 * as one "auth_failed client=ADDR user=NAME" line for fail2ban.  Neither
 * responses nor passwords are logged; password copies are wiped.
 *
 * Limits: a response line is at most AUTH_RESPONSE_MAX octets (checked by
 * the line reader in smtp_server.c and again here for initial responses);
 * a decoded user name over USERS_NAME_MAX never matches an account.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "base64.h"
#include "config.h"
#include "crypt_util.h"
#include "log.h"
#include "relayd.h"
#include "smtp_session.h"
#include "users.h"
#include "worker.h"

#define AUTH_PASS_MAX		(AUTH_RESPONSE_MAX / 4 * 3 + 1)

struct auth_job {
	struct worker_job	 job;
	struct smtp_session	*s;		/* NULL once the session left */
	enum auth_mech		 mech;
	int			 known;
	int			 ok;
	char			*hash;
	char			 user[USERS_NAME_MAX + 1];
	char			 pass[AUTH_PASS_MAX];
};

static void
auth_work(struct worker_job *j)
{
	struct auth_job	*a = (struct auth_job *)j;

	a->ok = crypt_check(a->pass, a->hash) && a->known;
	explicit_bzero(a->pass, sizeof(a->pass));
}

static void
auth_job_free(struct auth_job *a)
{
	if (a == NULL)
		return;
	explicit_bzero(a->pass, sizeof(a->pass));
	free(a->hash);
	free(a);
}

static const char *
auth_mech_name(enum auth_mech m)
{
	return m == AUTH_MECH_LOGIN ? "LOGIN" : "PLAIN";
}

/* A failed attempt: log it, slow the address down, answer 535. */
static void
smtp_auth_fail(struct smtp_session *s, const char *user, enum auth_mech m)
{
	char		 esc[LOG_ESCAPE_SIZE];
	uint64_t	 delay;

	delay = auth_throttle_fail(s->r->throttle, s->addr,
	    s->cf->auth_delay_max * 1000, smtp_now_ms());
	log_escape(esc, sizeof(esc), user, strlen(user));
	/* fail2ban: "auth_failed client=<HOST>". */
	log_warn(s->id, "auth_failed client=%s user=%s mechanism=%s", s->addr,
	    esc, auth_mech_name(m));
	s->mech = AUTH_MECH_NONE;
	smtp_set_state(s, SMTP_STATE_HELO);
	smtp_hold(s, delay);
	smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
}

static void
auth_done(struct worker_job *j)
{
	struct auth_job		*a = (struct auth_job *)j;
	struct smtp_session	*s = a->s;
	char			 esc[LOG_ESCAPE_SIZE];

	if (s == NULL) {
		auth_job_free(a);
		return;
	}
	s->auth_job = NULL;
	if (a->ok) {
		auth_throttle_success(s->r->throttle, s->addr);
		memcpy(s->user, a->user, sizeof(s->user));
		s->authed = 1;
		s->mech = AUTH_MECH_NONE;
		log_escape(esc, sizeof(esc), a->user, strlen(a->user));
		log_info(s->id, "auth client=%s user=%s mechanism=%s", s->addr,
		    esc, auth_mech_name(a->mech));
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "235 2.7.0 Authentication successful");
	} else
		smtp_auth_fail(s, a->user, a->mech);
	auth_job_free(a);
	smtp_after_wait(s, SMTP_STATE_HELO);
	smtp_maybe_free(s);
}

/* Start the password check on the worker pool; takes a. */
static void
smtp_auth_check(struct smtp_session *s, struct auth_job *a)
{
	const struct user	*u = NULL;

	if (strlen(a->user) <= USERS_NAME_MAX)
		u = users_find(s->gen->users, a->user);
	a->known = u != NULL;
	/* Unknown names cost the same work (crypt_dummy_hash). */
	a->hash = strdup(u != NULL ? u->hash : crypt_dummy_hash());
	if (a->hash == NULL) {
		auth_job_free(a);
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	a->s = s;
	a->mech = s->mech;
	a->job.work = auth_work;
	a->job.done = auth_done;
	s->auth_job = a;
	smtp_set_state(s, SMTP_STATE_AUTH_CHECK);
	worker_submit(s->r->workers, &a->job);
}

static int
auth_text_ok(const char *p, size_t n)
{
	return memchr(p, '\0', n) == NULL && memchr(p, '\r', n) == NULL &&
	    memchr(p, '\n', n) == NULL;
}

/* The authcid of a PLAIN response that failed to decode strictly, for the
 * log line only; "" when there is none. */
static void
auth_plain_name(const char *resp, size_t n, char *out, size_t cap)
{
	char	*d, *nul1, *nul2;
	size_t	 len;

	out[0] = '\0';
	if ((d = malloc(AUTH_PASS_MAX)) == NULL)
		return;
	if (base64_decode(resp, n, d, AUTH_PASS_MAX, &len) == 0 &&
	    (nul1 = memchr(d, '\0', len)) != NULL &&
	    (nul2 = memchr(nul1 + 1, '\0', len - (nul1 + 1 - d))) != NULL) {
		len = nul2 - (nul1 + 1);
		if (len >= cap)
			len = cap - 1;
		memcpy(out, nul1 + 1, len);
		out[len] = '\0';
	}
	explicit_bzero(d, AUTH_PASS_MAX);
	free(d);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *resp, size_t n)
{
	struct auth_job	*a;
	int		 rc;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	if (n == 1 && resp[0] == '=')
		n = 0;		/* RFC 4954 section 4: empty response */
	rc = auth_plain_decode(resp, n, a->user, sizeof(a->user), a->pass,
	    sizeof(a->pass));
	if (rc == -1) {
		auth_job_free(a);
		s->mech = AUTH_MECH_NONE;
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (rc != 0) {
		/* Malformed: log the authentication identity if there is one
		 * (escaped by smtp_auth_fail), never the password. */
		auth_plain_name(resp, n, a->user, sizeof(a->user));
		smtp_auth_fail(s, a->user, AUTH_MECH_PLAIN);
		auth_job_free(a);
		return;
	}
	smtp_auth_check(s, a);
}

/* LOGIN: step 0 takes the user name, step 1 the password. */
static void
smtp_auth_login(struct smtp_session *s, const char *resp, size_t n)
{
	char		 tmp[AUTH_PASS_MAX];
	struct auth_job	*a;
	size_t		 len;

	if (n == 1 && resp[0] == '=')
		n = 0;
	if (base64_decode(resp, n, tmp, sizeof(tmp) - 1, &len) == -1) {
		explicit_bzero(tmp, sizeof(tmp));
		s->mech = AUTH_MECH_NONE;
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	tmp[len] = '\0';
	if (s->auth_step == 0) {
		s->login_bad = !auth_text_ok(tmp, len) || len == 0 ||
		    len > USERS_NAME_MAX;
		if (len > USERS_NAME_MAX)
			len = USERS_NAME_MAX;
		memcpy(s->login_user, tmp, len);
		s->login_user[len] = '\0';
		s->auth_step = 1;
		smtp_set_state(s, SMTP_STATE_AUTH_INPUT);
		smtp_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	if (s->login_bad || !auth_text_ok(tmp, len) ||
	    (a = calloc(1, sizeof(*a))) == NULL) {
		explicit_bzero(tmp, sizeof(tmp));
		smtp_auth_fail(s, s->login_user, AUTH_MECH_LOGIN);
		return;
	}
	memcpy(a->user, s->login_user, sizeof(a->user));
	memcpy(a->pass, tmp, len + 1);
	explicit_bzero(tmp, sizeof(tmp));
	smtp_auth_check(s, a);
}

void
smtp_auth_input(struct smtp_session *s, const char *line, size_t n)
{
	if (n == 1 && line[0] == '*') {
		s->mech = AUTH_MECH_NONE;
		smtp_set_state(s, SMTP_STATE_HELO);
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (s->mech == AUTH_MECH_PLAIN)
		smtp_auth_plain(s, line, n);
	else
		smtp_auth_login(s, line, n);
}

void
smtp_auth(struct smtp_session *s, const char *args, size_t n)
{
	const char	*sp, *ir = NULL;
	size_t		 mlen, irlen = 0;

	if (s->lc->role != LISTEN_ROLE_SUBMISSION) {
		smtp_reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->authed) {
		smtp_reply(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (n == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	if ((sp = memchr(args, ' ', n)) != NULL) {
		mlen = sp - args;
		ir = sp + 1;
		irlen = n - mlen - 1;
		if (irlen == 0 || memchr(ir, ' ', irlen) != NULL) {
			smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
			    "[initial-response]");
			return;
		}
	} else
		mlen = n;
	if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0)
		s->mech = AUTH_MECH_PLAIN;
	else if (mlen == 5 && strncasecmp(args, "LOGIN", 5) == 0)
		s->mech = AUTH_MECH_LOGIN;
	else {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	if (irlen > AUTH_RESPONSE_MAX) {
		s->mech = AUTH_MECH_NONE;
		smtp_reply(s, "500 5.5.6 Authentication exchange line is too "
		    "long");
		return;
	}
	s->auth_step = 0;
	s->login_bad = 0;
	s->login_user[0] = '\0';
	if (ir != NULL) {
		smtp_set_state(s, SMTP_STATE_AUTH_INPUT);
		smtp_auth_input(s, ir, irlen);
		return;
	}
	smtp_set_state(s, SMTP_STATE_AUTH_INPUT);
	if (s->mech == AUTH_MECH_PLAIN)
		smtp_reply(s, "334 ");
	else
		smtp_reply(s, "334 VXNlcm5hbWU6");
}

void
smtp_auth_detach(struct auth_job *a)
{
	if (a != NULL)
		a->s = NULL;
}

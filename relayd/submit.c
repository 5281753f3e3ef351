/*
 * submit: sender policy, added header fields, streaming DKIM signing and
 * the spool commit of one submitted message.  See submit.h.
 *
 * Owns: the signer (until handed to the signing job), the prefix of added
 * fields, and its pending job, which it detaches when freed.  The job
 * signs and starts the spool commit itself, on the worker thread: one
 * hand-off fewer per message than coming back to the loop in between.
 * Limits: the header section as the framer bounds it ([limits]
 * header_size); at most DKIM_SIGN_MAX_SIGS signatures.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "config.h"
#include "dkim_keys.h"
#include "dkim_sign.h"
#include "log.h"
#include "sender_policy.h"
#include "spool.h"
#include "submit.h"
#include "users.h"
#include "worker.h"

#define SUBMIT_HELO_MAX	64	/* HELO name as shown in Received */

/*
 * The signing job owns, while it runs, everything the commit needs: the
 * envelope, the body and the fields that follow the signatures.  Its work()
 * signs and hands all of it to spool_commit_prefixed(); the commit's
 * callback gives the envelope back to the submit (for the log line) and
 * answers.  done() and that callback both run on the loop, in either
 * order; the job is freed after the last of them (refs).
 */
struct sign_job {
	struct worker_job	 job;
	struct submit		*sub;		/* NULL: owner gone (loop) */
	atomic_int		 cancelled;	/* owner gone: do not commit */
	struct dkim_sign	*signer;
	struct spool		*spool;
	struct envelope		 env;
	struct buf		 body;
	struct buf		 tail;		/* Received, added fields */
	struct buf		 sigs;
	int			 rc;		/* 0: commit started */
	int			 refs;		/* done(), commit callback */
	char			 err[DKIM_ERR_LEN];
};

struct submit {
	struct submit_params		 p;
	char				 id[ENVELOPE_ID_MAX + 1];
	char				 helo[SUBMIT_HELO_MAX + 1];
	char				 client[64];
	char				 proto[16];
	int				 header_seen;
	int				 refused;
	struct policy_verdict		 v;
	const struct config_domain	*dom;
	struct dkim_sign		*signer;
	size_t				 fed;		/* message bytes signed */
	struct buf			 added;		/* Message-ID, Date */
	struct sign_job			*job;
	struct envelope			 env;
	struct buf			 body;
	submit_cb			 cb;
	void				*arg;
};

static void	sign_commit_done(int, const char *, void *);

struct submit *
submit_new(const struct submit_params *p)
{
	struct submit	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->p = *p;
	snprintf(s->id, sizeof(s->id), "%s", p->id);
	snprintf(s->client, sizeof(s->client), "%s", p->client);
	snprintf(s->proto, sizeof(s->proto), "%s", p->proto);
	/* The HELO name is peer text: letters, digits and .-:[] only. */
	{
		size_t	 i, j = 0;

		for (i = 0; p->helo[i] != '\0' && j < SUBMIT_HELO_MAX; i++) {
			unsigned char c = (unsigned char)p->helo[i];

			if (isalnum(c) || strchr(".-:[]", c) != NULL)
				s->helo[j++] = (char)c;
			else
				s->helo[j++] = '?';
		}
		s->helo[j] = '\0';
		if (j == 0)
			snprintf(s->helo, sizeof(s->helo), "unknown");
	}
	buf_init(&s->added, 4096);
	buf_init(&s->body, 0);
	s->v.grant = -1;
	return s;
}

/* Loop thread: done() or the commit's callback is over with the job. */
static void
sign_job_release(struct sign_job *j)
{
	if (--j->refs > 0)
		return;
	dkim_sign_free(j->signer);
	envelope_clear(&j->env);
	buf_clear(&j->body);
	buf_clear(&j->tail);
	buf_clear(&j->sigs);
	free(j);
}

void
submit_free(struct submit *s)
{
	if (s == NULL)
		return;
	if (s->job != NULL) {
		/* Its done() and commit callback free it. */
		s->job->sub = NULL;
		atomic_store(&s->job->cancelled, 1);
	}
	dkim_sign_free(s->signer);
	buf_clear(&s->added);
	buf_clear(&s->body);
	envelope_clear(&s->env);
	free(s);
}

/* Does the header section hold a field of this name (any case, white
 * space before the colon allowed)? */
static int
header_has(const char *h, size_t len, const char *name)
{
	size_t	 nlen = strlen(name), i = 0, k;

	while (i < len) {
		if (h[i] == '\r')	/* the empty line */
			return 0;
		if (h[i] != ' ' && h[i] != '\t' && len - i > nlen &&
		    strncasecmp(h + i, name, nlen) == 0) {
			k = i + nlen;
			while (k < len && (h[k] == ' ' || h[k] == '\t'))
				k++;
			if (k < len && h[k] == ':')
				return 1;
		}
		while (i < len && h[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

static void
rfc5322_date(time_t t, char *out, size_t cap)
{
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static void
submit_refuse(struct submit *s, int code, const char *status,
    const char *text)
{
	s->refused = 1;
	s->v.code = code;
	snprintf(s->v.status, sizeof(s->v.status), "%s", status);
	snprintf(s->v.text, sizeof(s->v.text), "%s", text);
	dkim_sign_free(s->signer);
	s->signer = NULL;
}

/* The header section is complete: policy, added fields, the signer. */
static int
submit_headers(struct submit *s, const char *msg, size_t len)
{
	struct sender_headers		*sh;
	struct dkim_sign_params		 sp[DKIM_SIGN_MAX_SIGS];
	EVP_PKEY *const			*keys;
	const struct config_domain	*d;
	char				 date[64], err[DKIM_ERR_LEN];
	unsigned char			 rnd[6];
	size_t				 i, n;
	int				 rc;

	s->header_seen = 1;
	if ((sh = malloc(sizeof(*sh))) == NULL) {
		submit_refuse(s, 451, "4.3.0", "Error: out of memory");
		return -1;
	}
	rc = sender_policy_headers(s->p.cf, s->p.user, msg, len, s->p.utf8,
	    sh, &d, &s->v);
	if (rc == -1) {
		char	 esc[LOG_ESCAPE_SIZE];

		log_escape(esc, sizeof(esc), s->v.text, strlen(s->v.text));
		log_info(s->id, "policy_refused user=%s code=%d status=%s "
		    "reason=%s", s->p.user->name, s->v.code, s->v.status, esc);
		s->refused = 1;
		free(sh);
		return -1;
	}
	s->dom = d;
	if (!header_has(msg, len, "Message-ID")) {
		/* Unique by the queue ID already; the random part only
		 * makes it unguessable. */
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			memset(rnd, 0, sizeof(rnd));
		buf_appendf(&s->added, "Message-ID: <%s.%02x%02x%02x%02x%02x"
		    "%02x@%s>\r\n", s->id, rnd[0], rnd[1], rnd[2], rnd[3],
		    rnd[4], rnd[5], sh->f[MAILBOX_FROM].mb.domain);
	}
	if (!header_has(msg, len, "Date")) {
		rfc5322_date(s->p.now, date, sizeof(date));
		buf_appendf(&s->added, "Date: %s\r\n", date);
	}
	free(sh);

	keys = dkim_keys_of(s->p.keys, s->p.cf, d);
	n = d->ndkim < DKIM_SIGN_MAX_SIGS ? d->ndkim : DKIM_SIGN_MAX_SIGS;
	if (keys == NULL || n == 0) {
		submit_refuse(s, 451, "4.3.5", "Error: no signing key loaded");
		return -1;
	}
	memset(sp, 0, sizeof(sp));
	for (i = 0; i < n; i++) {
		sp[i].domain = d->name;
		sp[i].selector = d->dkim[i].selector;
		sp[i].key = keys[i];
		sp[i].canon_header = d->canon_header;
		sp[i].canon_body = d->canon_body;
		sp[i].timestamp = s->p.now;
		sp[i].lifetime = d->signature_lifetime;
		sp[i].query_tag = 0;
	}
	if ((s->signer = dkim_sign_new(sp, n, err, sizeof(err))) == NULL ||
	    dkim_sign_feed(s->signer, s->added.data, s->added.len) == -1) {
		log_error(s->id, "dkim_setup_failed domain=%s error=\"%s\"",
		    d->name, s->signer ? dkim_sign_error(s->signer) : err);
		submit_refuse(s, 451, "4.3.0", "Error: cannot sign the "
		    "message");
		return -1;
	}
	return 0;
}

int
submit_data(struct submit *s, const char *msg, size_t len, int header_done)
{
	if (s->refused)
		return -1;
	if (!s->header_seen) {
		if (!header_done)
			return 0;
		if (submit_headers(s, msg, len) == -1)
			return -1;
	}
	if (len > s->fed) {
		if (dkim_sign_feed(s->signer, msg + s->fed, len - s->fed) ==
		    -1) {
			log_error(s->id, "dkim_feed_failed error=\"%s\"",
			    dkim_sign_error(s->signer));
			submit_refuse(s, 451, "4.3.0", "Error: cannot sign the "
			    "message");
			return -1;
		}
		s->fed = len;
	}
	return 0;
}

static void
submit_reply(struct submit *s, int code, const char *status,
    const char *text)
{
	submit_cb	 cb = s->cb;

	s->cb = NULL;
	if (cb != NULL)
		cb(s->arg, code, status, text);
}

/*
 * Worker thread: sign, then start the spool commit of DKIM-Signature
 * fields + j->tail + the body.  Touches only the job and the spool (whose
 * spool_commit_prefixed() is thread-safe).  Once the commit is started its
 * callback may run on the loop at any moment, so every field of the job
 * is set before that call, and none is touched after it.
 */
static void
sign_work(struct worker_job *wj)
{
	struct sign_job	*j = (struct sign_job *)wj;
	struct buf	 prefix;

	j->rc = -1;
	if (dkim_sign_end_body(j->signer) == -1 ||
	    dkim_sign_result(j->signer, &j->sigs) == -1) {
		snprintf(j->err, sizeof(j->err), "%s",
		    dkim_sign_error(j->signer));
		return;
	}
	/* The client went away: nobody is told of it, so no commit. */
	if (atomic_load(&j->cancelled))
		return;
	buf_init(&prefix, SIZE_MAX);
	if (buf_append(&prefix, j->sigs.data, j->sigs.len) == -1 ||
	    buf_append(&prefix, j->tail.data, j->tail.len) == -1) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		buf_clear(&prefix);
		return;
	}
	j->rc = 0;
	j->refs = 2;
	if (spool_commit_prefixed(j->spool, &j->env, &prefix, &j->body,
	    sign_commit_done, j) == NULL) {
		/* Not started: no callback will come. */
		j->rc = -2;
		j->refs = 1;
		snprintf(j->err, sizeof(j->err), "queue file write error");
	}
	buf_clear(&prefix);
}

/* Received: RFC 5321 4.4, with the protocol names of RFC 3848. */
static int
submit_received(struct submit *s, struct buf *out)
{
	char	 date[64];

	rfc5322_date(s->p.now, date, sizeof(date));
	if (s->p.cf->received_show_client)
		return buf_appendf(out, "Received: from %s (%s [%s])\r\n"
		    "\tby %s (relayd) with %s id %s;\r\n\t%s\r\n", s->helo,
		    s->helo, s->client, s->p.cf->hostname, s->proto, s->id,
		    date);
	return buf_appendf(out, "Received: by %s (relayd) with %s id %s;\r\n"
	    "\t%s\r\n", s->p.cf->hostname, s->proto, s->id, date);
}

/* Loop thread: the job hands the submit its envelope back and ends. */
static struct submit *
sign_job_detach(struct sign_job *j)
{
	struct submit	*s = j->sub;

	if (s == NULL)
		return NULL;
	j->sub = NULL;
	s->job = NULL;
	envelope_clear(&s->env);
	s->env = j->env;
	memset(&j->env, 0, sizeof(j->env));
	return s;
}

/* Loop thread: the signature job is over; its commit may still run. */
static void
sign_done(struct worker_job *wj)
{
	struct sign_job	*j = (struct sign_job *)wj;
	struct submit	*s;

	if (j->rc == 0 || (s = sign_job_detach(j)) == NULL) {
		sign_job_release(j);
		return;
	}
	if (j->rc == -1) {
		log_error(s->id, "dkim_sign_failed domain=%s error=\"%s\"",
		    s->dom->name, j->err);
		sign_job_release(j);
		submit_reply(s, 451, "4.3.0", "Error: cannot sign the message");
		return;
	}
	sign_job_release(j);
	submit_reply(s, 451, "4.3.0", "Error: queue file write error");
}

/* Loop thread: the spool commit the job started is over. */
static void
sign_commit_done(int status, const char *id, void *arg)
{
	struct sign_job	*j = arg;
	struct submit	*s = sign_job_detach(j);
	char		 text[64];

	snprintf(text, sizeof(text), "Ok: queued as %s", id);
	sign_job_release(j);
	if (s == NULL)
		return;
	if (status != 0)
		submit_reply(s, 451, "4.3.0", "Error: queue file write error");
	else
		submit_reply(s, 250, "2.0.0", text);
}

const struct envelope *
submit_envelope(const struct submit *s)
{
	return &s->env;
}

void
submit_finish(struct submit *s, struct envelope *env, struct buf *body,
    submit_cb cb, void *arg)
{
	struct sign_job	*j;

	s->cb = cb;
	s->arg = arg;
	s->env = *env;
	memset(env, 0, sizeof(*env));
	buf_move(&s->body, body);
	/* Whatever the framer gave since the last call; a message without
	 * an empty line is all header section. */
	submit_data(s, s->body.data ? s->body.data : "", s->body.len, 1);
	if (s->refused) {
		submit_reply(s, s->v.code, s->v.status, s->v.text);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		submit_reply(s, 451, "4.3.0", "Error: out of memory");
		return;
	}
	j->job.work = sign_work;
	j->job.done = sign_done;
	j->sub = s;
	j->refs = 1;
	atomic_init(&j->cancelled, 0);
	j->spool = s->p.spool;
	buf_init(&j->sigs, 64 * 1024);
	buf_init(&j->body, 0);
	buf_init(&j->tail, SIZE_MAX);
	if ((s->env.bounce_domain = strdup(s->dom->bounce_domain)) == NULL ||
	    submit_received(s, &j->tail) == -1 ||
	    buf_append(&j->tail, s->added.data, s->added.len) == -1) {
		sign_job_release(j);
		submit_reply(s, 451, "4.3.0", "Error: out of memory");
		return;
	}
	j->signer = s->signer;
	s->signer = NULL;
	/* The job owns the envelope and the body until it ends. */
	j->env = s->env;
	memset(&s->env, 0, sizeof(s->env));
	buf_move(&j->body, &s->body);
	s->job = j;
	worker_submit(s->p.workers, &j->job);
}

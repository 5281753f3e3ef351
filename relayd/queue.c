/*
 * queue: the scheduler between the spool and the delivery modes.
 *
 * Owns a FIFO of queue IDs ready for delivery, a retry list for captures
 * that failed, a hold list ([queue] hold), and for mx and smarthost
 * delivery every message's per-recipient state, the destinations being
 * delivered to, their SMTP connections, the DNS resolver and the client
 * TLS contexts.
 *
 * Capture: the dispatcher hands batches of up to QUEUE_BATCH_MAX IDs to
 * worker jobs, one job per two I/O threads in flight.  A capture job reads
 * each spool file, writes the capture files, shares one data flush and one
 * directory fsync across its batch, and only then removes the spool files
 * (one fsync of queue/), so a crash may capture a message twice but never
 * loses it.
 *
 * mx and smarthost (docs/operations.md, "Delivery state"):
 *  - each message has state/ID beside queue/ID (spool.h), a text file with
 *    one line per recipient: pending, delivered or failed, attempts, next
 *    attempt, whether its failure was reported, and the last error
 *    (escaped).  Every change is written (tmp, flush, rename, fsync of
 *    state/; writes of many messages share one flush: group commit) before
 *    anything is done because of it: before a DSN is queued, before the
 *    message leaves the spool, before the next attempt is scheduled.  A
 *    crash loses at most the record of a 250: that recipient is sent again;
 *  - a round: every pending recipient due now becomes a task, one SMTP
 *    transaction of its own (its own VERP envelope sender, rewrite.h), on
 *    the destination of its domain (mx) or the one smarthost;
 *  - a destination looks its domain up once (dns.h: MX in order, then
 *    each address), keeps a cursor on the address in use, and runs up to
 *    max_connections_per_host connections (max_connections in all), each
 *    taking tasks one after the other (RSET between, smtp_client.h) up to
 *    max_messages_per_connection;
 *  - queue_outcome() is the one place that decides what a result means
 *    for a recipient (STYLE.md): delivered, failed (5xx, DNS permanent
 *    errors, expiry after max_age), or deferred with exponential backoff
 *    and jitter between retry_min and retry_max;
 *  - failed recipients not yet reported get one DSN per message and event
 *    (RFC 3464), committed to the spool like any message and delivered by
 *    the same machinery; never to the null sender.
 *
 * Limits: a connection failure before the greeting moves the destination
 * to the next address or MX host; a 4xx to a transaction defers the
 * recipient to a later round (it does not try the next MX at once).  The
 * spool file is read on the loop thread when a round starts (page cache;
 * see the report).  [dns] servers are read at start only.  Smarthost
 * names are resolved through the MX lookup's implicit-MX path (a name with
 * MX records of its own would go to those).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "capture.h"
#include "config.h"
#include "dns.h"
#include "envelope.h"
#include "log.h"
#include "queue.h"
#include "rewrite.h"
#include "relayd.h"
#include "smtp_client.h"
#include "smtp_reply.h"
#include "spool.h"
#include "tls.h"
#include "worker.h"

#define QUEUE_BATCH_MAX		64
/* An envelope sender: RFC 5321 4.5.3.1.3 path limit. */
#define QUEUE_SENDER_MAX	257
/*
 * Capture jobs in flight: one per two worker threads, at least one.  A
 * capture job spends its time waiting on flushes; more of them would
 * take every worker and make the spool's committer (whose flush the
 * clients wait for) queue behind them.  Batches absorb the load instead.
 */
#define QUEUE_WORKERS_PER_JOB	2

struct qnode {
	struct qnode	*next;
	char		 id[ENVELOPE_ID_MAX + 1];
	time_t		 due;		/* retry list only */
};

struct qlist {
	struct qnode	*head, *tail;
	unsigned	 n;
};

enum qitem_status {
	QITEM_OK = 0,		/* captured and removed from the spool */
	QITEM_GONE,		/* no such spool file: nothing to do */
	QITEM_BAD,		/* unparsable: quarantined */
	QITEM_RETRY,		/* failed; stays in the spool */
};

struct qitem {
	char			 id[ENVELOPE_ID_MAX + 1];
	enum qitem_status	 status;
};

struct qjob {
	struct worker_job	 job;
	struct queue		*q;		/* NULL: the queue is gone */
	struct qjob		*prev, *next;	/* jobs in flight */
	struct spool		*sp;
	char			*dir;		/* capture_dir */
	uint8_t			 verp_key[VERP_KEY_LEN];
	size_t			 n;
	struct qitem		 items[QUEUE_BATCH_MAX];
};

struct msg;
struct dest;
struct wjob;

struct queue {
	struct relayd	*r;
	struct qlist	 ready;
	struct qlist	 retry;
	struct qlist	 held;
	struct qjob	*jobs;
	unsigned	 njobs;
	unsigned	 inflight;	/* messages in jobs */
	struct event	*retry_ev;
	struct event	*kick_ev;	/* dispatch from the loop */

	/* mx and smarthost delivery. */
	struct msg	*msgs;		/* every message loaded */
	unsigned	 nmsgs;
	struct dest	*dests;
	unsigned	 nconns;	/* connections open, all destinations */
	struct msg	*wq_head, *wq_tail;	/* state writes waiting */
	struct wjob	*wjob;		/* the state writer in flight */
	struct msg	*rm_head;	/* messages to remove from the spool */
	struct wjob	*rmjob;		/* the remover in flight */
	struct dns	*dns;
	SSL_CTX		*ctx_mx;	/* [delivery] tls, ca_file */
	SSL_CTX		*ctx_smarthost;	/* [smarthost] verify, ca_file */
	char		*smarthost_pass;	/* password_file's first line */
};

static void	queue_dispatch(struct queue *);

static void
qlist_push(struct qlist *l, struct qnode *n)
{
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->n++;
}

static struct qnode *
qlist_pop(struct qlist *l)
{
	struct qnode	*n = l->head;

	if (n == NULL)
		return NULL;
	l->head = n->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->n--;
	n->next = NULL;
	return n;
}

static void
qlist_clear(struct qlist *l)
{
	struct qnode	*n;

	while ((n = qlist_pop(l)) != NULL)
		free(n);
}

static void
queue_retry_arm(struct queue *q)
{
	struct timeval	 tv;
	time_t		 now = time(NULL);

	if (q->retry.head == NULL || evtimer_pending(q->retry_ev, NULL))
		return;
	tv.tv_sec = q->retry.head->due > now ? q->retry.head->due - now : 0;
	tv.tv_usec = 0;
	evtimer_add(q->retry_ev, &tv);
}

static void
queue_retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct queue	*q = arg;
	time_t		 now = time(NULL);

	/* The retry list is in due order: every entry waits retry_min. */
	while (q->retry.head != NULL && q->retry.head->due <= now)
		qlist_push(&q->ready, qlist_pop(&q->retry));
	queue_retry_arm(q);
	queue_dispatch(q);
}

static void
queue_kick(evutil_socket_t fd, short what, void *arg)
{
	queue_dispatch(arg);
}

struct queue *
queue_new(struct relayd *r)
{
	struct queue	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->r = r;
	q->retry_ev = evtimer_new(r->base, queue_retry_fire, q);
	q->kick_ev = evtimer_new(r->base, queue_kick, q);
	if (q->retry_ev == NULL || q->kick_ev == NULL) {
		if (q->retry_ev)
			event_free(q->retry_ev);
		if (q->kick_ev)
			event_free(q->kick_ev);
		free(q);
		return NULL;
	}
	return q;
}

void
queue_free(struct queue *q)
{
	struct qjob	*j;

	if (q == NULL)
		return;
	/* Jobs still running finish on their own and free themselves. */
	for (j = q->jobs; j != NULL; j = j->next)
		j->q = NULL;
	qlist_clear(&q->ready);
	qlist_clear(&q->retry);
	qlist_clear(&q->held);
	event_free(q->retry_ev);
	event_free(q->kick_ev);
	free(q);
}

void
queue_reload(struct queue *q)
{
	queue_dispatch(q);
}

unsigned
queue_length(const struct queue *q)
{
	return q->ready.n + q->retry.n + q->held.n + q->inflight;
}

void
queue_add(struct queue *q, const char *id)
{
	struct qnode	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		/* It stays in the spool; the next start picks it up. */
		log_error(id, "queue_add_failed error=\"out of memory\"");
		return;
	}
	snprintf(n->id, sizeof(n->id), "%s", id);
	qlist_push(&q->ready, n);
	queue_dispatch(q);
}

/*
 * Worker thread: read, check and stage one message.  The spool file is
 * held in memory only here, so a job holds one message body at a time.
 */
static void
queue_capture_one(struct qjob *j, struct qitem *it, int fd,
    struct envelope *env, size_t *size)
{
	const char	*body;
	char		*file = NULL, **senders;
	size_t		 len, blen, i;

	it->status = QITEM_RETRY;
	if (spool_read_file(j->sp, it->id, &file, &len) == -1) {
		if (errno == ENOENT) {
			it->status = QITEM_GONE;
			log_warn(it->id, "capture_skipped reason=no-spool-file");
		} else
			log_error(it->id, "capture_failed step=read "
			    "error=\"%s\"", strerror(errno));
		return;
	}
	if (envelope_parse(file, len, env, &body, &blen) == -1 ||
	    strcmp(env->id, it->id) != 0) {
		envelope_clear(env);
		if (spool_quarantine(j->sp, it->id, "unparsable") == 0)
			it->status = QITEM_BAD;
		free(file);
		return;
	}
	*size = blen;
	/* Each recipient's own envelope sender (rewrite.h). */
	if ((senders = calloc(env->nrcpts, sizeof(*senders))) == NULL) {
		free(file);
		return;
	}
	for (i = 0; i < env->nrcpts; i++) {
		if ((senders[i] = malloc(QUEUE_SENDER_MAX)) == NULL ||
		    rewrite_sender(j->verp_key, env, i, senders[i],
		    QUEUE_SENDER_MAX) == -1) {
			log_error(it->id, "capture_failed step=sender");
			goto out;
		}
	}
	if (capture_stage(fd, env, (const char *const *)senders, body, blen,
	    0) == -1)
		log_error(it->id, "capture_failed step=write error=\"%s\"",
		    strerror(errno));
	else
		it->status = QITEM_OK;
out:
	for (i = 0; i < env->nrcpts; i++)
		free(senders[i]);
	free(senders);
	free(file);
}

/*
 * Worker thread: capture a batch.  Touches only the job, the spool (whose
 * calls used here are thread-safe) and the file system.
 */
static void
queue_capture_work(struct worker_job *wj)
{
	struct qjob		*j = (struct qjob *)wj;
	struct envelope		 envs[QUEUE_BATCH_MAX];
	const char		*ids[QUEUE_BATCH_MAX];
	size_t			 sizes[QUEUE_BATCH_MAX];
	size_t			 i, nstaged = 0, nok = 0;
	int			 fd, e;

	memset(envs, 0, sizeof(envs));
	memset(sizes, 0, sizeof(sizes));
	fd = capture_open_dir(j->dir);
	e = errno;
	for (i = 0; i < j->n; i++) {
		if (fd == -1) {
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=open_dir "
			    "error=\"%s\"", strerror(e));
			continue;
		}
		queue_capture_one(j, &j->items[i], fd, &envs[i], &sizes[i]);
		if (j->items[i].status == QITEM_OK)
			nstaged++;
	}
	/* One flush for the batch's data, one fsync for the names. */
	if (nstaged > 0 && syncfs(fd) == -1) {
		e = errno;
		for (i = 0; i < j->n; i++) {
			if (j->items[i].status != QITEM_OK)
				continue;
			capture_unstage(fd, j->items[i].id);
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=syncfs "
			    "error=\"%s\"", strerror(e));
		}
		nstaged = 0;
	}
	for (i = 0; nstaged > 0 && i < j->n; i++) {
		if (j->items[i].status != QITEM_OK)
			continue;
		if (capture_publish(fd, j->items[i].id) == -1) {
			log_error(j->items[i].id, "capture_failed step=rename "
			    "error=\"%s\"", strerror(errno));
			capture_unstage(fd, j->items[i].id);
			j->items[i].status = QITEM_RETRY;
		}
	}
	if (nstaged > 0 && fsync(fd) == -1) {
		e = errno;
		for (i = 0; i < j->n; i++) {
			if (j->items[i].status != QITEM_OK)
				continue;
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=fsync "
			    "error=\"%s\"", strerror(e));
		}
	}
	/* Captured and durable: now, and only now, leave the spool. */
	for (i = 0; i < j->n; i++)
		if (j->items[i].status == QITEM_OK)
			ids[nok++] = j->items[i].id;
	if (nok > 0)
		spool_remove_many(j->sp, ids, nok);
	for (i = 0; i < j->n; i++) {
		if (j->items[i].status == QITEM_OK)
			log_info(j->items[i].id, "captured nrcpt=%zu size=%zu",
			    envs[i].nrcpts, sizes[i]);
		envelope_clear(&envs[i]);
	}
	if (fd != -1)
		close(fd);
}

/* Loop thread: account for the batch and retry what failed. */
static void
queue_capture_done(struct worker_job *wj)
{
	struct qjob	*j = (struct qjob *)wj;
	struct queue	*q = j->q;
	struct qnode	*n;
	size_t		 i;

	if (q != NULL) {
		if (j->prev)
			j->prev->next = j->next;
		else
			q->jobs = j->next;
		if (j->next)
			j->next->prev = j->prev;
		q->njobs--;
		q->inflight -= (unsigned)j->n;
		for (i = 0; i < j->n; i++) {
			if (j->items[i].status != QITEM_RETRY)
				continue;
			if ((n = calloc(1, sizeof(*n))) == NULL) {
				log_error(j->items[i].id, "queue_retry_failed "
				    "error=\"out of memory\"");
				continue;
			}
			memcpy(n->id, j->items[i].id, sizeof(n->id));
			n->due = time(NULL) + (time_t)q->r->cf->retry_min;
			log_warn(n->id, "deferred reason=\"capture failed\" "
			    "retry_in=%llus",
			    (unsigned long long)q->r->cf->retry_min);
			qlist_push(&q->retry, n);
		}
		queue_retry_arm(q);
	}
	free(j->dir);
	free(j);
	if (q != NULL)
		queue_dispatch(q);
}

static void
queue_dispatch(struct queue *q)
{
	const struct config	*cf = q->r->cf;
	struct qnode		*n;
	struct qjob		*j;
	unsigned		 maxjobs, free_slots, per;
	struct timeval		 now = { 0, 0 };

	/* Called from spool_open()'s found(): r->spool is not set yet, so
	 * come back from the loop. */
	if (q->r->spool == NULL || q->r->io == NULL) {
		if (!evtimer_pending(q->kick_ev, NULL))
			evtimer_add(q->kick_ev, &now);
		return;
	}
	/* Shutting down: the pool may no longer run new jobs; what waits
	 * stays in the spool for the next start. */
	if (q->r->draining)
		return;
	if (cf->hold || cf->delivery_mode != DELIVERY_MODE_CAPTURE) {
		/* [queue] hold keeps everything in the spool until a reload
		 * turns it off.  XXX mx and smarthost come with the delivery
		 * issue; relayd refuses to start with them until then. */
		while ((n = qlist_pop(&q->ready)) != NULL) {
			log_info(n->id, "held reason=\"%s\"", cf->hold ?
			    "queue hold" : "delivery mode not implemented yet");
			qlist_push(&q->held, n);
		}
		return;
	}
	/* A reload switched to capture: what was held is ready now. */
	while ((n = qlist_pop(&q->held)) != NULL)
		qlist_push(&q->ready, n);
	maxjobs = worker_pool_size(q->r->io) / QUEUE_WORKERS_PER_JOB;
	if (maxjobs == 0)
		maxjobs = 1;
	while (q->ready.n > 0 && q->njobs < maxjobs) {
		/* Spread what waits over the free slots, in batches. */
		free_slots = maxjobs - q->njobs;
		per = (q->ready.n + free_slots - 1) / free_slots;
		if (per > QUEUE_BATCH_MAX)
			per = QUEUE_BATCH_MAX;
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (j->dir = strdup(cf->capture_dir)) == NULL) {
			free(j);
			log_error("-", "queue_dispatch_failed "
			    "error=\"out of memory\"");
			return;
		}
		j->job.work = queue_capture_work;
		j->job.done = queue_capture_done;
		j->q = q;
		j->sp = q->r->spool;
		memcpy(j->verp_key, q->r->gen->verp_key, sizeof(j->verp_key));
		while (j->n < per && (n = qlist_pop(&q->ready)) != NULL) {
			memcpy(j->items[j->n].id, n->id, sizeof(n->id));
			j->n++;
			free(n);
		}
		j->next = q->jobs;
		if (q->jobs)
			q->jobs->prev = j;
		q->jobs = j;
		q->njobs++;
		q->inflight += (unsigned)j->n;
		worker_submit(q->r->io, &j->job);
	}
}

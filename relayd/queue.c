/*
 * queue: the scheduler between the spool and the delivery modes.
 *
 * Owns a FIFO of queue IDs ready for delivery, a retry list for captures
 * that failed, a hold list ([queue] hold), and for mx and smarthost
 * delivery every message's per-recipient state, the destinations being
 * delivered to, their SMTP connections, the DNS resolver and the client
 * TLS contexts.
 *
 * Capture: the dispatcher hands batches of up to QUEUE_BATCH_MAX IDs, at
 * most QUEUE_CAPTURE_JOBS at a time, to the spool as riders (spool.h): a
 * batch writes its capture files before one step's flush of the spool's
 * committer, names them in the next step, and once that step's flush has
 * made the names durable takes the messages out of the spool, so a crash may
 * capture a message twice but never loses it.  The bytes come with the
 * message from the commit (queue_add_file()), or are read from the spool.
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
 * Files are read (load_start(); a new message's bytes come from the
 * commit) and written (state_flush()) on the I/O pool, and removed by
 * spool riders (rm_flush()); the loop never waits for the disk.  Idle connections
 * stay open QUEUE_CONN_IDLE_SEC for more work.
 *
 * Next MX: a connection failure, or a 4xx before the transaction (banner,
 * EHLO, STARTTLS), moves the destination's cursor to the next address or
 * MX host; a 4xx or a lost connection during the transaction sends that
 * recipient to a fallback destination holding the MX hosts after the one
 * that answered (dest_fallback()), except a timeout after the final dot,
 * which waits for a later round.
 *
 * Limits: one transaction per recipient (each has its own VERP sender).  [dns] servers are read at
 * start only.  Smarthost names are resolved through the MX lookup's
 * implicit-MX path (a name with MX records of its own would go to those).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
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
 * Capture batches in flight: they ride on the spool committer's steps
 * (spool.h), two steps each, so one can be named while the next one's
 * files are written.
 */
#define QUEUE_CAPTURE_JOBS	2
/* Messages waiting in the ready list with their bytes in memory. */
#define QUEUE_READY_MEM_MAX	1024

struct qnode {
	struct qnode	*next;
	char		 id[ENVELOPE_ID_MAX + 1];
	time_t		 due;		/* retry list only */
	char		*file;		/* the spool file's bytes, or NULL */
	size_t		 len;
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
	char			*file;		/* spool file bytes, or NULL */
	size_t			 len;
	struct envelope		 env;
	size_t			 size;
	struct capture_staged	 st;
};

/* A capture batch: a rider on the spool committer's steps (spool.h). */
struct qjob {
	struct spool_rider	 rider;
	struct queue		*q;		/* NULL: the queue is gone */
	struct qjob		*prev, *next;	/* jobs in flight */
	struct spool		*sp;
	char			*dir;		/* capture_dir */
	int			 fd;		/* capture_dir, or -1 */
	uint8_t			 verp_key[VERP_KEY_LEN];
	size_t			 n;
	struct qitem		 items[QUEUE_BATCH_MAX];
};

struct msg;
struct ljob;
struct dest;
struct conn;
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
	struct msg	**mtab;		/* the same by ID: chained buckets */
	size_t		 mtabsz;	/* a power of two, or 0 */
	struct dest	*dests;
	struct conn	*conns;
	unsigned	 nconns;	/* connections open, all destinations */
	struct msg	*wq_head, *wq_tail;	/* state writes waiting */
	struct wjob	*wjob;		/* the state writer in flight */
	struct msg	*rm_head;	/* messages to remove from the spool */
	struct wjob	*rmjob;		/* the remover in flight */
	struct ljob	*ljobs;		/* reads in flight */
	struct dns	*dns;
	SSL_CTX		*ctx_mx;	/* [delivery] tls, ca_file */
	SSL_CTX		*ctx_smarthost;	/* [smarthost] verify, ca_file */
	char		*smarthost_pass;	/* password_file's first line */
};

static void	queue_dispatch(struct queue *);

/*
 * Delivery: mx and smarthost.
 */

#define STATE_MAGIC		"RELAYD-STATE 1\n"
#define STATE_FILE_MAX		(64u * 1024 * 1024)
#define QUEUE_WRITE_MAX		256	/* state files per group commit */
#define QUEUE_DSN_MAX		(16u * 1024 * 1024)
#define QUEUE_PASS_MAX		512
/* An idle connection waits this long for more work before QUIT, as
 * Postfix's smtp_connection_cache_time_limit. */
#define QUEUE_CONN_IDLE_SEC	2

enum rcpt_state { RS_PENDING = 0, RS_DELIVERED, RS_FAILED };

static const char *const rcpt_state_names[] = {
	"pending", "delivered", "failed"
};

struct rcpt {
	enum rcpt_state	 st;
	unsigned	 attempts;
	int64_t		 next;		/* next attempt, epoch seconds */
	int		 reported;	/* failed: in a DSN (or none due) */
	int		 code;		/* last error: server's code, or 0 */
	char		 status[SMTP_ENHANCED_MAX];	/* "" or X.Y.Z */
	char		 remote[DNS_NAME_MAX + 1];	/* "" or the host */
	char		 error[SMTP_RESULT_TEXT_MAX];	/* escaped */
	/* Memory only. */
	int		 busy;		/* a task is out */
	int		 in_dsn;	/* in the DSN being committed */
};

struct msg {
	struct msg		*prev, *next;	/* q->msgs */
	struct msg		*hnext;		/* q->mtab bucket */
	struct msg		*wnext;		/* write or remove list */
	struct queue		*q;
	char			 id[ENVELOPE_ID_MAX + 1];
	struct envelope		 env;
	struct rcpt		*r;
	char			*file;		/* while tasks are out */
	const char		*body;
	size_t			 bodylen;
	unsigned		 inflight;	/* tasks out */
	int			 dirty;		/* state changed, not written */
	int			 wq;		/* in the write list */
	int			 writing;	/* in the writer's batch */
	int			 removing;
	struct ljob		*ljob;		/* body being read */
	int			 warned;	/* the delay report is queued */
	int			 dsn_delay;	/* the DSN in flight is one */
	struct spool_commit	*dsn;		/* DSN commit in flight */
	struct event		*timer;
};

struct task {
	struct task	*next;
	struct msg	*m;
	size_t		 ri;
	char		 sender[QUEUE_SENDER_MAX];
	/* A server's temporary error that sent it on to the next MX. */
	int		 has_err;
	struct smtp_result err;
	char		 err_host[DNS_NAME_MAX + 1];
};

struct dest {
	struct dest		*prev, *next;
	struct queue		*q;
	char			 name[DNS_NAME_MAX + 1];
	int			 smarthost;
	size_t			 first;	/* > 0: the MX hosts from this one
					 * on, for tasks a 4xx sent on */
	struct dns_query	*query;
	struct dns_mx_result	*mx;	/* NULL until resolved */
	size_t			 hi, ai;	/* the address in use */
	struct task		*head, *tail;
	unsigned		 ntasks;	/* waiting for a connection */
	unsigned		 nconns;
	unsigned		 nidle;	/* connecting, or greeted and idle */
	struct smtp_result	 last;	/* the last connection failure */
	enum smtp_client_state	 last_state;	/* where: CONNECTING or later */
	char			 last_host[DNS_NAME_MAX + 1];
};

struct conn {
	struct conn		*prev, *next;	/* q->conns */
	struct dest		*d;
	struct smtp_client	*c;
	struct task		*cur;
	unsigned		 ntx;
	size_t			 hi, ai;
	int			 greeted;
	int			 idle;	/* counted in d->nidle */
	int			 quitting;
	struct event		*idle_ev;	/* QUIT when idle too long */
	SSL_CTX			*ctx;	/* a reference */
	char			 host[DNS_NAME_MAX + 1];
	char			 addr[INET6_ADDRSTRLEN + 8];
	const char		*rcpts[1];
};

/* A worker job writing state files, or a spool rider (spool.h) removing
 * delivered messages. */
struct wjob {
	struct worker_job	 job;
	struct spool_rider	 rider;
	struct queue		*q;
	struct spool		*sp;
	size_t			 n;
	struct msg		*ms[QUEUE_WRITE_MAX];
	char			 ids[QUEUE_WRITE_MAX][ENVELOPE_ID_MAX + 1];
	struct buf		 data[QUEUE_WRITE_MAX];
	int			 ok[QUEUE_WRITE_MAX];
};

/* A read of queue/ID (and state/ID) on the I/O pool: load_start(). */
struct ljob {
	struct worker_job	 job;
	struct ljob		*prev, *next;	/* q->ljobs */
	struct queue		*q;		/* NULL: the queue is gone */
	struct msg		*m;		/* whose body; NULL: gone */
	int			 body;
	struct spool		*sp;
	char			 id[ENVELOPE_ID_MAX + 1];
	char			*file, *st;
	size_t			 len, stlen;
	int			 err, sterr;
};

static void	msg_schedule(struct msg *);
static void	msg_free(struct msg *);
static void	dest_run(struct dest *);
static void	queue_run_dests(struct queue *);
static void	state_flush(struct queue *);
static void	msg_arm(struct msg *, time_t);

/*
 * The loop has ended (shutdown): the worker pools are being freed and run
 * the last done() callbacks, which must not start new jobs (they would
 * never run).  What was not recorded is sent again after the restart.
 */
static int
queue_stopped(const struct queue *q)
{
	return q->r->io == NULL || q->r->spool == NULL ||
	    event_base_got_exit(q->r->base) || event_base_got_break(q->r->base);
}

/* --- the state file ------------------------------------------------- */

/*
 * state/ID:
 *
 *   RELAYD-STATE 1
 *   warned 1            (only once the delay report was queued)
 *   rcpt INDEX STATE ATTEMPTS NEXT REPORTED CODE STATUS REMOTE ERROR
 *   ...one line per recipient, in the spool file's order...
 *   end COUNT
 *
 * STATE is pending, delivered or failed; NEXT the next attempt in seconds
 * since the epoch; REPORTED 1 when the failure went into a DSN; CODE the
 * server's reply code of the last error or 0; STATUS its enhanced code or
 * "-"; REMOTE the host that gave it or "-"; ERROR the rest of the line,
 * printable ASCII (smtp_reply_escape()).  A file that does not parse is
 * ignored with a log line: every recipient is then pending (sent again
 * rather than lost).
 */
static int
state_serialize(const struct msg *m, struct buf *out)
{
	const struct rcpt	*rc;
	size_t			 i;

	if (buf_append_str(out, STATE_MAGIC) == -1 ||
	    (m->warned && buf_append_str(out, "warned 1\n") == -1))
		return -1;
	for (i = 0; i < m->env.nrcpts; i++) {
		rc = &m->r[i];
		if (buf_appendf(out, "rcpt %zu %s %u %" PRId64 " %d %d %s %s "
		    "%s\n", i, rcpt_state_names[rc->st], rc->attempts,
		    rc->next, rc->reported, rc->code,
		    rc->status[0] ? rc->status : "-",
		    rc->remote[0] ? rc->remote : "-", rc->error) == -1)
			return -1;
	}
	return buf_appendf(out, "end %zu\n", m->env.nrcpts);
}

static int
state_word(const char **p, const char *end, char *w, size_t wlen)
{
	size_t	 n = 0;

	while (*p < end && **p != ' ' && **p != '\n') {
		if (n + 1 >= wlen)
			return -1;
		w[n++] = *(*p)++;
	}
	w[n] = '\0';
	if (*p < end && **p == ' ')
		(*p)++;
	return n > 0 ? 0 : -1;
}

/* Parse into r[0..n-1]; 0 or -1 (then r is untouched). */
static int
state_parse(const char *p, size_t len, struct rcpt *r, size_t n,
    int *warned)
{
	const char	*end = p + len, *eol;
	struct rcpt	*tmp;
	char		 w[DNS_NAME_MAX + 2], *ep;
	size_t		 i, k, elen;
	int		 j;

	if (len < sizeof(STATE_MAGIC) - 1 ||
	    memcmp(p, STATE_MAGIC, sizeof(STATE_MAGIC) - 1) != 0)
		return -1;
	p += sizeof(STATE_MAGIC) - 1;
	*warned = 0;
	if ((size_t)(end - p) >= 9 && memcmp(p, "warned 1\n", 9) == 0) {
		*warned = 1;
		p += 9;
	}
	if ((tmp = calloc(n ? n : 1, sizeof(*tmp))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    state_word(&p, eol, w, sizeof(w)) == -1 ||
		    strcmp(w, "rcpt") != 0 ||
		    state_word(&p, eol, w, sizeof(w)) == -1 ||
		    strtoull(w, &ep, 10) != i || *ep != '\0' ||
		    state_word(&p, eol, w, sizeof(w)) == -1)
			goto bad;
		for (j = 0; j < 3; j++)
			if (strcmp(w, rcpt_state_names[j]) == 0)
				break;
		if (j == 3)
			goto bad;
		tmp[i].st = (enum rcpt_state)j;
		if (state_word(&p, eol, w, sizeof(w)) == -1)
			goto bad;
		tmp[i].attempts = (unsigned)strtoul(w, &ep, 10);
		if (*ep != '\0' || state_word(&p, eol, w, sizeof(w)) == -1)
			goto bad;
		tmp[i].next = strtoll(w, &ep, 10);
		if (*ep != '\0' || state_word(&p, eol, w, sizeof(w)) == -1)
			goto bad;
		tmp[i].reported = w[0] == '1';
		if (state_word(&p, eol, w, sizeof(w)) == -1)
			goto bad;
		tmp[i].code = (int)strtol(w, &ep, 10);
		if (*ep != '\0' || state_word(&p, eol, w, sizeof(w)) == -1 ||
		    strlen(w) >= sizeof(tmp[i].status))
			goto bad;
		if (strcmp(w, "-") != 0)
			memcpy(tmp[i].status, w, strlen(w) + 1);
		if (state_word(&p, eol, w, sizeof(w)) == -1 ||
		    strlen(w) >= sizeof(tmp[i].remote))
			goto bad;
		if (strcmp(w, "-") != 0)
			memcpy(tmp[i].remote, w, strlen(w) + 1);
		elen = (size_t)(eol - p);
		if (elen >= sizeof(tmp[i].error))
			elen = sizeof(tmp[i].error) - 1;
		for (k = 0; k < elen; k++)
			if (!isprint((unsigned char)p[k]))
				goto bad;
		memcpy(tmp[i].error, p, elen);
		tmp[i].error[elen] = '\0';
		p = eol + 1;
	}
	if ((size_t)(end - p) < 5 || memcmp(p, "end ", 4) != 0 ||
	    strtoull(p + 4, &ep, 10) != n || ep >= end || *ep != '\n' ||
	    ep + 1 != end)
		goto bad;
	memcpy(r, tmp, n * sizeof(*r));
	free(tmp);
	return 0;
bad:
	free(tmp);
	return -1;
}

/* --- group commit of state files --------------------------------------- */

static void
state_enqueue(struct msg *m)
{
	struct queue	*q = m->q;

	m->dirty = 1;
	if (m->wq || m->writing)
		return;	/* written again after the batch in flight */
	m->wq = 1;
	m->wnext = NULL;
	if (q->wq_tail)
		q->wq_tail->wnext = m;
	else
		q->wq_head = m;
	q->wq_tail = m;
	state_flush(q);
}

static void
state_work(struct worker_job *wj)
{
	struct wjob		*j = (struct wjob *)wj;
	const char		*ids[QUEUE_WRITE_MAX];
	const struct buf	*data[QUEUE_WRITE_MAX];
	size_t			 i;

	for (i = 0; i < j->n; i++) {
		ids[i] = j->ids[i];
		data[i] = &j->data[i];
	}
	spool_state_write_many(j->sp, ids, data, j->ok, j->n);
}

static void
state_done(struct worker_job *wj)
{
	struct wjob	*j = (struct wjob *)wj;
	struct queue	*q = j->q;
	struct msg	*m;
	size_t		 i;

	for (i = 0; i < j->n; i++)
		buf_clear(&j->data[i]);
	if (q == NULL) {
		free(j);
		return;
	}
	q->wjob = NULL;
	for (i = 0; i < j->n; i++) {
		m = j->ms[i];
		m->writing = 0;
		if (!j->ok[i]) {
			/* Not recorded: act on nothing, try again later. */
			m->dirty = 1;
			log_error(m->id, "state_not_written retry_in=%llus",
			    (unsigned long long)q->r->cf->retry_min);
			msg_arm(m, (time_t)q->r->cf->retry_min);
			continue;
		}
		/* Recorded: now act on it. */
		if (m->dirty)
			state_enqueue(m);
		else
			msg_schedule(m);
	}
	free(j);
	state_flush(q);
}

static void
state_flush(struct queue *q)
{
	struct wjob	*j;
	struct msg	*m;

	if (q->wjob != NULL || q->wq_head == NULL || queue_stopped(q))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_error("-", "state_flush_failed error=\"out of memory\"");
		return;
	}
	j->q = q;
	j->sp = q->r->spool;
	j->job.work = state_work;
	j->job.done = state_done;
	while (j->n < QUEUE_WRITE_MAX && (m = q->wq_head) != NULL) {
		q->wq_head = m->wnext;
		if (q->wq_head == NULL)
			q->wq_tail = NULL;
		m->wq = 0;
		buf_init(&j->data[j->n], STATE_FILE_MAX);
		if (state_serialize(m, &j->data[j->n]) == -1) {
			/* Still dirty: the timer comes back to write it. */
			buf_clear(&j->data[j->n]);
			log_error(m->id, "state_serialize_failed");
			msg_arm(m, (time_t)q->r->cf->retry_min);
			continue;
		}
		memcpy(j->ids[j->n], m->id, sizeof(m->id));
		m->dirty = 0;
		m->writing = 1;
		j->ms[j->n++] = m;
	}
	q->wjob = j;
	worker_submit(q->r->io, &j->job);
}
/* --- the delivery-failure policy ---------------------------------------- */

/*
 * The delay before attempt number attempts + 1: retry_min doubled per
 * attempt made, at most retry_max, less up to a quarter at random so
 * messages deferred together spread out, never below retry_min.
 */
static time_t
queue_backoff(const struct config *cf, unsigned attempts)
{
	uint64_t	 d = cf->retry_min;
	unsigned	 i;

	for (i = 1; i < attempts && d < cf->retry_max; i++)
		d *= 2;
	if (d > cf->retry_max)
		d = cf->retry_max;
	if (d / 4 > 0)
		d -= arc4random_uniform((uint32_t)(d / 4 > UINT32_MAX ?
		    UINT32_MAX : d / 4) + 1);
	if (d < cf->retry_min)
		d = cf->retry_min;
	return (time_t)d;
}

static int
queue_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/*
 * The one place that decides what a result means for a recipient
 * (RFC 5321 section 4.2.1 and 4.5.4.1, RFC 3463): 2xx delivered; 5xx and
 * permanent local decisions failed; everything else deferred with backoff,
 * or failed once the message is older than max_age.  The change is
 * recorded (state_enqueue) before anything is done because of it.
 */
static void
queue_outcome(struct msg *m, size_t ri, enum smtp_status st, int code,
    const char *enhanced, const char *text, const char *remote)
{
	const struct config	*cf = m->q->r->cf;
	struct rcpt		*rc = &m->r[ri];
	time_t			 now = time(NULL);

	rc->attempts++;
	if (st != SMTP_STATUS_OK) {
		rc->code = code;
		snprintf(rc->status, sizeof(rc->status), "%s",
		    enhanced ? enhanced : "");
		snprintf(rc->remote, sizeof(rc->remote), "%s",
		    remote ? remote : "");
		/* smtp_client's and dns's texts are escaped already (the
		 * escape of "\\" would double); anything else is escaped
		 * here, so the state file and a DSN get one printable line. */
		if (queue_printable(text))
			snprintf(rc->error, sizeof(rc->error), "%s", text);
		else
			smtp_reply_escape(rc->error, sizeof(rc->error), text,
			    strlen(text));
	}
	switch (st) {
	case SMTP_STATUS_OK:
		rc->st = RS_DELIVERED;
		log_info(m->id, "delivered rcpt=<%s> relay=%s attempts=%u",
		    m->env.rcpts[ri], remote ? remote : "-", rc->attempts);
		break;
	case SMTP_STATUS_PERMFAIL:
		rc->st = RS_FAILED;
		rc->reported = 0;
		log_warn(m->id, "failed rcpt=<%s> relay=%s status=%s "
		    "reply=\"%s\"", m->env.rcpts[ri], remote ? remote : "-",
		    rc->status[0] ? rc->status : "-", rc->error);
		break;
	case SMTP_STATUS_TEMPFAIL:
	default:
		if ((uint64_t)(now - (time_t)m->env.time) >= cf->max_age) {
			rc->st = RS_FAILED;
			rc->reported = 0;
			if (rc->status[0] == '\0')
				snprintf(rc->status, sizeof(rc->status),
				    "4.4.7");
			log_warn(m->id, "expired rcpt=<%s> relay=%s "
			    "status=%s reply=\"%s\"", m->env.rcpts[ri],
			    remote ? remote : "-", rc->status, rc->error);
			break;
		}
		rc->next = (int64_t)(now + queue_backoff(cf, rc->attempts));
		log_info(m->id, "deferred rcpt=<%s> relay=%s attempts=%u "
		    "retry_in=%llds reply=\"%s\"", m->env.rcpts[ri],
		    remote ? remote : "-", rc->attempts,
		    (long long)(rc->next - now), rc->error);
		break;
	}
}

static int
msg_all_delivered(const struct msg *m)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpts; i++)
		if (m->r[i].st != RS_DELIVERED)
			return 0;
	return 1;
}

static void	msg_remove(struct msg *);

/* A task ended: record the result; the message acts once it is written
 * and its last task is back. */
static void
task_finish(struct task *t, enum smtp_status st, int code,
    const char *enhanced, const char *text, const char *remote)
{
	struct msg	*m = t->m;

	queue_outcome(m, t->ri, st, code, enhanced, text, remote);
	m->r[t->ri].busy = 0;
	m->inflight--;
	if (m->inflight == 0) {
		free(m->file);
		m->file = NULL;
		m->body = NULL;
	}
	free(t);
	/*
	 * Every recipient delivered and nothing else to record: the removal
	 * from the spool is the record (a crash before it sends the message
	 * again, as a lost state write would).  Saves a flush per message.
	 */
	if (m->inflight == 0 && !m->wq && !m->writing && m->dsn == NULL &&
	    msg_all_delivered(m)) {
		m->dirty = 0;
		msg_remove(m);
		return;
	}
	state_enqueue(m);
}

/* --- messages ------------------------------------------------------------ */

static void
msg_timer(evutil_socket_t fd, short what, void *arg)
{
	struct msg	*m = arg;

	if (m->dirty)
		state_enqueue(m);
	else
		msg_schedule(m);
}

static void
msg_arm(struct msg *m, time_t secs)
{
	struct timeval	 tv;

	tv.tv_sec = secs > 0 ? secs : 0;
	tv.tv_usec = 0;
	evtimer_del(m->timer);
	evtimer_add(m->timer, &tv);
}

/* --- the loaded messages by ID ------------------------------------------ */

static size_t
msg_hash(const char *id)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)h;
}

static struct msg *
msg_find(const struct queue *q, const char *id)
{
	struct msg	*m;

	if (q->mtab == NULL) {
		/* No table (out of memory when it had to grow): walk. */
		for (m = q->msgs; m != NULL; m = m->next)
			if (strcmp(m->id, id) == 0)
				return m;
		return NULL;
	}
	for (m = q->mtab[msg_hash(id) & (q->mtabsz - 1)]; m != NULL;
	    m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* m is on q->msgs already: put it in the table, which grows to keep
 * about one message per bucket. */
static void
msg_index(struct queue *q, struct msg *m)
{
	struct msg	**nt, *o;
	size_t		 nsz, b;

	if (q->mtab == NULL || q->nmsgs > q->mtabsz) {
		nsz = q->mtabsz ? q->mtabsz * 2 : 1024;
		if ((nt = calloc(nsz, sizeof(*nt))) == NULL) {
			free(q->mtab);	/* msg_find() walks the list */
			q->mtab = NULL;
			q->mtabsz = 0;
			return;
		}
		free(q->mtab);
		q->mtab = nt;
		q->mtabsz = nsz;
		for (o = q->msgs; o != NULL; o = o->next) {
			b = msg_hash(o->id) & (nsz - 1);
			o->hnext = nt[b];
			nt[b] = o;
		}
		return;		/* m was on the list: it is in */
	}
	b = msg_hash(m->id) & (q->mtabsz - 1);
	m->hnext = q->mtab[b];
	q->mtab[b] = m;
}

static void
msg_unindex(struct queue *q, struct msg *m)
{
	struct msg	**pp;

	if (q->mtab == NULL)
		return;
	for (pp = &q->mtab[msg_hash(m->id) & (q->mtabsz - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
}

static void
msg_free(struct msg *m)
{
	struct queue	*q;

	if (m == NULL)
		return;
	q = m->q;
	msg_unindex(q, m);
	if (m->prev)
		m->prev->next = m->next;
	else if (q->msgs == m)
		q->msgs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	q->nmsgs--;
	if (m->dsn != NULL)
		spool_commit_detach(m->dsn);
	if (m->ljob != NULL)
		m->ljob->m = NULL;
	if (m->timer)
		event_free(m->timer);
	envelope_clear(&m->env);
	free(m->r);
	free(m->file);
	free(m);
}

/*
 * Reading spool and state files happens on the I/O pool, never on the
 * loop: a load job reads queue/ID (and for a new message state/ID).
 */
static void
load_work(struct worker_job *wj)
{
	struct ljob	*j = (struct ljob *)wj;

	if (spool_read_file(j->sp, j->id, &j->file, &j->len) == -1) {
		j->err = errno;
		j->file = NULL;
		return;
	}
	if (!j->body && spool_state_read(j->sp, j->id, &j->st,
	    &j->stlen) == -1) {
		j->sterr = errno;
		j->st = NULL;
	}
}

/* A new message read: parse it and its state; it enters the rounds. */
static void
msg_loaded(struct queue *q, struct ljob *j)
{
	struct msg	*m;

	/* A message read from the spool may be known already (a reload, a
	 * second notice). */
	if (msg_find(q, j->id) != NULL)
		return;	/* already here */
	if (j->file == NULL) {
		if (j->err != ENOENT)
			log_error(j->id, "queue_load_failed error=\"%s\"",
			    strerror(j->err));
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_error(j->id, "queue_load_failed error=\"out of memory\"");
		return;
	}
	m->q = q;
	snprintf(m->id, sizeof(m->id), "%s", j->id);
	if (envelope_parse(j->file, j->len, &m->env, &m->body,
	    &m->bodylen) == -1 || strcmp(m->env.id, j->id) != 0 ||
	    m->env.nrcpts == 0) {
		envelope_clear(&m->env);
		free(m);
		spool_quarantine(q->r->spool, j->id, "unparsable");
		return;
	}
	if ((m->r = calloc(m->env.nrcpts, sizeof(*m->r))) == NULL ||
	    (m->timer = evtimer_new(q->r->base, msg_timer, m)) == NULL) {
		envelope_clear(&m->env);
		free(m->r);
		free(m);
		log_error(j->id, "queue_load_failed error=\"out of memory\"");
		return;
	}
	/* The first round uses the bytes just read. */
	m->file = j->file;
	j->file = NULL;
	if (j->st != NULL) {
		if (state_parse(j->st, j->stlen, m->r, m->env.nrcpts,
		    &m->warned) == -1)
			log_warn(m->id, "state_unparsable action=\"every "
			    "recipient pending\"");
	} else if (j->sterr != ENOENT)
		log_warn(m->id, "state_unreadable error=\"%s\"",
		    strerror(j->sterr));
	m->next = q->msgs;
	if (q->msgs)
		q->msgs->prev = m;
	q->msgs = m;
	q->nmsgs++;
	msg_index(q, m);
	msg_schedule(m);
}

/* The body of a known message read again for a round or a DSN. */
static void
msg_body_loaded(struct msg *m, struct ljob *j)
{
	struct envelope	 tmp;

	m->ljob = NULL;
	memset(&tmp, 0, sizeof(tmp));
	if (j->file == NULL || envelope_parse(j->file, j->len, &tmp,
	    &m->body, &m->bodylen) == -1) {
		envelope_clear(&tmp);
		log_error(m->id, "queue_read_failed error=\"%s\" "
		    "retry_in=%llus", j->file ? "unparsable" :
		    strerror(j->err),
		    (unsigned long long)m->q->r->cf->retry_min);
		m->body = NULL;
		m->bodylen = 0;
		msg_arm(m, (time_t)m->q->r->cf->retry_min);
		return;
	}
	envelope_clear(&tmp);
	m->file = j->file;
	j->file = NULL;
	msg_schedule(m);
}

static void
load_done(struct worker_job *wj)
{
	struct ljob	*j = (struct ljob *)wj;
	struct queue	*q = j->q;

	if (q != NULL) {
		if (j->prev)
			j->prev->next = j->next;
		else
			q->ljobs = j->next;
		if (j->next)
			j->next->prev = j->prev;
		if (!j->body)
			msg_loaded(q, j);
		else if (j->m != NULL)
			msg_body_loaded(j->m, j);
	}
	free(j->file);
	free(j->st);
	free(j);
}

/* Start reading: a new message (m NULL) or m's body.  0 or -1. */
static int
load_start(struct queue *q, const char *id, struct msg *m)
{
	struct ljob	*j;

	if (queue_stopped(q) || (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->job.work = load_work;
	j->job.done = load_done;
	j->q = q;
	j->m = m;
	j->body = m != NULL;
	j->sp = q->r->spool;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->next = q->ljobs;
	if (q->ljobs)
		q->ljobs->prev = j;
	q->ljobs = j;
	if (m != NULL)
		m->ljob = j;
	worker_submit(q->r->io, &j->job);
	return 0;
}

/* A committed message whose bytes came with it (queue_add_file()):
 * straight into the rounds, as if just read.  Takes file. */
static void
msg_given(struct queue *q, const char *id, char *file, size_t len)
{
	struct ljob	 j;

	memset(&j, 0, sizeof(j));
	j.q = q;
	j.sp = q->r->spool;
	snprintf(j.id, sizeof(j.id), "%s", id);
	j.file = file;
	j.len = len;
	j.sterr = ENOENT;	/* a new message has no state yet */
	msg_loaded(q, &j);
	free(j.file);
}

/* A committed message enters the delivery rounds once read. */
static void
msg_load(struct queue *q, const char *id)
{
	if (load_start(q, id, NULL) == -1)
		log_error(id, "queue_load_failed error=\"not now\" "
		    "action=\"read at the next start\"");
}

/* --- delivery status notifications (RFC 3464) --------------------------- */

static void
dsn_date(time_t t, char *out, size_t len)
{
	/* RFC 5322 section 3.3, in English whatever the locale. */
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	 tm;

	gmtime_r(&t, &tm);
	snprintf(out, len, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The Status field: the enhanced code, else one from the reply class
 * (RFC 3463 section 3.1). */
static void
dsn_status(const struct rcpt *rc, char *out, size_t len)
{
	if (rc->status[0] != '\0')
		snprintf(out, len, "%s", rc->status);
	else if (rc->code >= 400 && rc->code < 500)
		snprintf(out, len, "4.0.0");
	else
		snprintf(out, len, "5.0.0");
}

/*
 * The report: multipart/report (RFC 6522) with a human part, the
 * message/delivery-status part (RFC 3464 section 2) for every recipient
 * marked in_dsn, and the original header (text/rfc822-headers).
 */
static int
dsn_build(struct msg *m, int delay, const char *dsn_id, const char *hdr,
    size_t hdrlen, struct buf *out)
{
	const struct config	*cf = m->q->r->cf;
	const struct rcpt	*rc;
	char			 date[64], arrival[64], until[64];
	char			 status[SMTP_ENHANCED_MAX];
	char			 boundary[ENVELOPE_ID_MAX * 2 + 32];
	size_t			 i;
	int			 e = 0;

	dsn_date(time(NULL), date, sizeof(date));
	dsn_date((time_t)m->env.time, arrival, sizeof(arrival));
	dsn_date((time_t)m->env.time + (time_t)cf->max_age, until,
	    sizeof(until));
	snprintf(boundary, sizeof(boundary), "%s/%s.report", m->id, dsn_id);
	e |= buf_appendf(out, "From: Mail Delivery System "
	    "<MAILER-DAEMON@%s>\r\n", cf->hostname);
	e |= buf_appendf(out, "To: <%s>\r\n", m->env.mail_from);
	e |= buf_appendf(out, "Subject: %s\r\n", delay ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	e |= buf_appendf(out, "Date: %s\r\n", date);
	e |= buf_appendf(out, "Message-ID: <%s.dsn@%s>\r\n", dsn_id,
	    cf->hostname);
	/* RFC 3834 section 5: no automatic answers to this one. */
	e |= buf_appendf(out, "Auto-Submitted: auto-replied\r\n");
	e |= buf_appendf(out, "MIME-Version: 1.0\r\n");
	e |= buf_appendf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n",
	    boundary);
	e |= buf_appendf(out, "This is a MIME-encapsulated message.\r\n\r\n");
	e |= buf_appendf(out, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	e |= buf_appendf(out, "This is the mail system at host %s.\r\n\r\n",
	    cf->hostname);
	if (delay)
		e |= buf_appendf(out, "Your message (queue ID %s) could not "
		    "be delivered yet to one or\r\nmore recipients.  It "
		    "will be tried again until %s;\r\nyou need not send it "
		    "again.  Its header is attached below.\r\n\r\n", m->id,
		    until);
	else
		e |= buf_appendf(out, "Your message (queue ID %s) could not "
		    "be delivered to one or more\r\nrecipients.  Its header "
		    "is attached below.\r\n\r\n", m->id);
	for (i = 0; i < m->env.nrcpts; i++) {
		rc = &m->r[i];
		if (!rc->in_dsn)
			continue;
		e |= buf_appendf(out, "<%s>: %s%s%s\r\n", m->env.rcpts[i],
		    rc->remote[0] ? "host " : "", rc->remote[0] ? rc->remote :
		    "", rc->remote[0] ? " said: " : "");
		e |= buf_appendf(out, "    %s\r\n\r\n", rc->error);
	}
	e |= buf_appendf(out, "--%s\r\nContent-Description: Delivery report"
	    "\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	e |= buf_appendf(out, "Reporting-MTA: dns; %s\r\n", cf->hostname);
	e |= buf_appendf(out, "X-Relayd-Queue-ID: %s\r\n", m->id);
	e |= buf_appendf(out, "Arrival-Date: %s\r\n", arrival);
	for (i = 0; i < m->env.nrcpts; i++) {
		rc = &m->r[i];
		if (!rc->in_dsn)
			continue;
		dsn_status(rc, status, sizeof(status));
		if (delay && status[0] != '4')
			snprintf(status, sizeof(status), "4.0.0");
		e |= buf_appendf(out, "\r\nFinal-Recipient: rfc822; %s\r\n",
		    m->env.rcpts[i]);
		e |= buf_appendf(out, "Action: %s\r\nStatus: %s\r\n",
		    delay ? "delayed" : "failed", status);
		if (rc->remote[0] != '\0')
			e |= buf_appendf(out, "Remote-MTA: dns; %s\r\n",
			    rc->remote);
		if (rc->code != 0)
			e |= buf_appendf(out, "Diagnostic-Code: smtp; %s\r\n",
			    rc->error);
		/* RFC 3464 section 2.3.9. */
		if (delay)
			e |= buf_appendf(out, "Will-Retry-Until: %s\r\n",
			    until);
	}
	e |= buf_appendf(out, "\r\n--%s\r\nContent-Description: Undelivered "
	    "Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n",
	    boundary);
	e |= buf_append(out, hdr, hdrlen);
	e |= buf_appendf(out, "\r\n--%s--\r\n", boundary);
	return e ? -1 : 0;
}

static void
dsn_committed(int status, const char *id, void *arg)
{
	struct msg	*m = arg;
	size_t		 i, n = 0;

	m->dsn = NULL;
	for (i = 0; i < m->env.nrcpts; i++) {
		if (!m->r[i].in_dsn)
			continue;
		m->r[i].in_dsn = 0;
		if (status == 0) {
			if (!m->dsn_delay)
				m->r[i].reported = 1;
			n++;
		}
	}
	if (status == 0 && m->dsn_delay)
		m->warned = 1;
	if (status != 0) {
		log_error(m->id, "dsn_failed retry_in=%llus",
		    (unsigned long long)m->q->r->cf->retry_min);
		msg_arm(m, (time_t)m->q->r->cf->retry_min);
		return;
	}
	log_info(m->id, "dsn_queued dsn=%s action=%s to=<%s> nrcpt=%zu", id,
	    m->dsn_delay ? "delayed" : "failed", m->env.mail_from, n);
	state_enqueue(m);
}

/*
 * Report the failed recipients not reported yet (delay 0), or the ones
 * still pending (delay 1, once per message): one DSN.
 */
static void
msg_dsn(struct msg *m, int delay)
{
	struct queue	*q = m->q;
	struct envelope	 denv;
	struct buf	 body;
	char		 dsn_id[SPOOL_ID_LEN + 1];
	const char	*mb = NULL, *p;
	size_t		 i, blen = 0, hlen;

	if (m->env.mail_from[0] == '\0') {
		/* RFC 5321 section 4.5.5: never to the null sender. */
		if (delay)
			m->warned = 1;
		for (i = 0; !delay && i < m->env.nrcpts; i++)
			if (m->r[i].st == RS_FAILED && !m->r[i].reported) {
				m->r[i].reported = 1;
				log_info(m->id, "dsn_skipped rcpt=<%s> "
				    "reason=\"null sender\"",
				    m->env.rcpts[i]);
			}
		state_enqueue(m);
		return;
	}
	/* msg_schedule() had the bytes read. */
	mb = m->body;
	blen = m->body ? m->bodylen : 0;
	/* The header block, its blank line excluded. */
	hlen = blen;
	for (p = mb; p != NULL && p + 4 <= mb + blen; p++)
		if (memcmp(p, "\r\n\r\n", 4) == 0) {
			hlen = (size_t)(p - mb) + 2;
			break;
		}
	memset(&denv, 0, sizeof(denv));
	spool_id_new(q->r->spool, dsn_id);
	snprintf(denv.id, sizeof(denv.id), "%s", dsn_id);
	denv.time = (int64_t)time(NULL);
	denv.user = strdup("");
	denv.client = strdup("");
	denv.helo = strdup(q->r->cf->hostname);
	denv.mail_from = strdup("");
	buf_init(&body, QUEUE_DSN_MAX);
	for (i = 0; i < m->env.nrcpts; i++)
		m->r[i].in_dsn = delay ? m->r[i].st == RS_PENDING :
		    m->r[i].st == RS_FAILED && !m->r[i].reported;
	m->dsn_delay = delay;
	for (i = 0; i < hlen; i++)
		if ((unsigned char)mb[i] >= 0x80)
			denv.flags |= ENVELOPE_FLAG_8BIT;
	if (denv.user == NULL || denv.client == NULL || denv.helo == NULL ||
	    denv.mail_from == NULL ||
	    envelope_add_rcpt(&denv, m->env.mail_from) == -1 ||
	    dsn_build(m, delay, dsn_id, mb ? mb : "", hlen, &body) == -1 ||
	    (m->dsn = spool_commit(q->r->spool, &denv, &body, dsn_committed,
	    m)) == NULL) {
		for (i = 0; i < m->env.nrcpts; i++)
			m->r[i].in_dsn = 0;
		log_error(m->id, "dsn_failed step=build retry_in=%llus",
		    (unsigned long long)q->r->cf->retry_min);
		msg_arm(m, (time_t)q->r->cf->retry_min);
	}
	buf_clear(&body);
	envelope_clear(&denv);
}

/* --- removal of finished messages ------------------------------------- */

static void	rm_flush(struct queue *);

/* A worker, in a job of its own (spool_ride()): the removals become
 * durable with the spool committer's next flush of queue/. */
static size_t
rm_settle(struct spool_rider *rd, int durable)
{
	struct wjob	*j = (struct wjob *)((char *)rd -
	    offsetof(struct wjob, rider));
	const char	*ids[QUEUE_WRITE_MAX];
	size_t		 i;

	(void)durable;
	for (i = 0; i < j->n; i++)
		ids[i] = j->ids[i];
	return spool_unqueue(j->sp, ids, j->n);
}

static void
rm_done(struct spool_rider *rd, int ran)
{
	struct wjob	*j = (struct wjob *)((char *)rd -
	    offsetof(struct wjob, rider));
	struct queue	*q = j->q;
	size_t		 i;

	(void)ran;
	if (q != NULL) {
		q->rmjob = NULL;
		for (i = 0; i < j->n; i++) {
			log_info(j->ids[i], "removed");
			msg_free(j->ms[i]);
		}
		rm_flush(q);
	}
	free(j);
}

static void
rm_flush(struct queue *q)
{
	struct wjob	*j;
	struct msg	*m;

	if (q->rmjob != NULL || q->rm_head == NULL || queue_stopped(q))
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_error("-", "remove_failed error=\"out of memory\"");
		return;
	}
	j->q = q;
	j->sp = q->r->spool;
	j->rider.settle = rm_settle;
	j->rider.done = rm_done;
	while (j->n < QUEUE_WRITE_MAX && (m = q->rm_head) != NULL) {
		q->rm_head = m->wnext;
		memcpy(j->ids[j->n], m->id, sizeof(m->id));
		j->ms[j->n++] = m;
	}
	if (spool_ride(q->r->spool, &j->rider) == -1) {
		/* Out of memory: put them back for the next try. */
		while (j->n > 0) {
			m = j->ms[--j->n];
			m->wnext = q->rm_head;
			q->rm_head = m;
		}
		free(j);
		log_error("-", "remove_failed error=\"out of memory\"");
		return;
	}
	q->rmjob = j;
}

static void
msg_remove(struct msg *m)
{
	struct queue	*q = m->q;

	m->removing = 1;
	m->wnext = q->rm_head;
	q->rm_head = m;
	rm_flush(q);
}

/* --- destinations and connections ---------------------------------------- */

static void
dest_free(struct dest *d)
{
	struct queue	*q = d->q;

	if (d->prev)
		d->prev->next = d->next;
	else
		q->dests = d->next;
	if (d->next)
		d->next->prev = d->prev;
	if (d->query != NULL)
		dns_cancel(d->query);
	dns_mx_result_free(d->mx);
	free(d);
}

static struct dest *
dest_get(struct queue *q, const char *name, int smarthost)
{
	struct dest	*d;

	for (d = q->dests; d != NULL; d = d->next)
		if (d->smarthost == smarthost && d->first == 0 &&
		    strcmp(d->name, name) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->q = q;
	d->smarthost = smarthost;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->next = q->dests;
	if (q->dests)
		q->dests->prev = d;
	q->dests = d;
	return d;
}

static struct dns_mx_result *
mx_copy(const struct dns_mx_result *src)
{
	struct dns_mx_result	*r;
	size_t			 i, n;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	memcpy(r, src, sizeof(*r));
	r->nhosts = 0;
	if ((r->hosts = calloc(src->nhosts, sizeof(*r->hosts))) == NULL) {
		free(r);
		return NULL;
	}
	for (i = 0; i < src->nhosts; i++) {
		r->hosts[i] = src->hosts[i];
		n = src->hosts[i].naddrs;
		if ((r->hosts[i].addrs = calloc(n ? n : 1,
		    sizeof(*r->hosts[i].addrs))) == NULL) {
			dns_mx_result_free(r);
			return NULL;
		}
		memcpy(r->hosts[i].addrs, src->hosts[i].addrs,
		    n * sizeof(*r->hosts[i].addrs));
		r->nhosts++;
	}
	return r;
}

/*
 * The destination for tasks that got a temporary error at MX host
 * first - 1: the same hosts from first on (RFC 5321 section 5.1: try the
 * next MX).  NULL when out of memory (the caller defers instead).
 */
static struct dest *
dest_fallback(struct dest *d, size_t first)
{
	struct queue	*q = d->q;
	struct dest	*f;

	for (f = q->dests; f != NULL; f = f->next)
		if (!f->smarthost && f->first == first &&
		    strcmp(f->name, d->name) == 0)
			return f;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if ((f->mx = mx_copy(d->mx)) == NULL) {
		free(f);
		return NULL;
	}
	f->q = q;
	f->first = first;
	f->hi = first;
	snprintf(f->name, sizeof(f->name), "%s", d->name);
	f->next = q->dests;
	if (q->dests)
		q->dests->prev = f;
	q->dests = f;
	return f;
}

static void
dest_push(struct dest *d, struct task *t)
{
	t->next = NULL;
	if (d->tail)
		d->tail->next = t;
	else
		d->head = t;
	d->tail = t;
	d->ntasks++;
}

static struct task *
dest_pop(struct dest *d)
{
	struct task	*t = d->head;

	if (t == NULL)
		return NULL;
	d->head = t->next;
	if (d->head == NULL)
		d->tail = NULL;
	d->ntasks--;
	return t;
}

static void
dest_fail_all(struct dest *d, enum smtp_status st, int code,
    const char *enhanced, const char *text, const char *remote)
{
	struct task	*t;

	while ((t = dest_pop(d)) != NULL)
		task_finish(t, st, code, enhanced, text, remote);
}

static void
dest_advance(struct dest *d, size_t hi, size_t ai)
{
	if (d->mx == NULL || d->hi != hi || d->ai != ai)
		return;
	if (++d->ai >= d->mx->hosts[d->hi].naddrs) {
		d->hi++;
		d->ai = 0;
	}
}

static void
dest_mx_cb(struct dns_mx_result *res, void *arg)
{
	struct dest	*d = arg;

	d->query = NULL;
	if (res->status != DNS_OK) {
		char text[DNS_REASON_MAX + 16];

		smtp_reply_escape(text, sizeof(text), res->reason,
		    strlen(res->reason));
		dest_fail_all(d, res->status == DNS_PERMFAIL ?
		    SMTP_STATUS_PERMFAIL : SMTP_STATUS_TEMPFAIL, 0,
		    res->enhanced, text, NULL);
		dns_mx_result_free(res);
		dest_run(d);
		return;
	}
	d->mx = res;
	d->hi = d->ai = 0;
	dest_run(d);
}

/* The smarthost given as an address literal: no lookup. */
static struct dns_mx_result *
dest_literal(const char *host, uint16_t port)
{
	struct dns_mx_result	*res;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
	} else
		return NULL;
	if ((res = calloc(1, sizeof(*res))) == NULL ||
	    (res->hosts = calloc(1, sizeof(*res->hosts))) == NULL ||
	    (res->hosts[0].addrs = calloc(1,
	    sizeof(*res->hosts[0].addrs))) == NULL) {
		if (res)
			free(res->hosts);
		free(res);
		return NULL;
	}
	res->nhosts = 1;
	res->hosts[0].naddrs = 1;
	snprintf(res->hosts[0].name, sizeof(res->hosts[0].name), "%s", host);
	if (sin.sin_family == AF_INET)
		memcpy(&res->hosts[0].addrs[0], &sin, sizeof(sin));
	else
		memcpy(&res->hosts[0].addrs[0], &sin6, sizeof(sin6));
	return res;
}

static void	conn_idle(evutil_socket_t, short, void *);
static void	conn_ready(struct smtp_client *, void *);
static void	conn_done(struct smtp_client *, const struct smtp_txn_result *,
		    void *);
static void	conn_closed(struct smtp_client *, const struct smtp_result *,
		    void *);

/* Open a connection to the destination's current address. */
static int
conn_open(struct dest *d)
{
	struct queue			*q = d->q;
	const struct config		*cf = q->r->cf;
	const struct dns_host		*h = &d->mx->hosts[d->hi];
	const struct sockaddr_storage	*ss = &h->addrs[d->ai];
	struct smtp_client_params	 p;
	struct smtp_client_cbs		 cbs = { conn_ready, conn_done,
	    conn_closed };
	struct conn			*c;
	char				 err[256];
	uint16_t			 port = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((c->idle_ev = evtimer_new(q->r->base, conn_idle, c)) == NULL) {
		free(c);
		return -1;
	}
	c->d = d;
	c->hi = d->hi;
	c->ai = d->ai;
	snprintf(c->host, sizeof(c->host), "%s", h->name);
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		snprintf(c->addr, sizeof(c->addr), "[%s]:%u", a, port);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		snprintf(c->addr, sizeof(c->addr), "%s:%u", a, port);
	}
	memset(&p, 0, sizeof(p));
	p.id = d->head ? d->head->m->id : "-";
	p.helo = cf->hostname;
	p.tls_name = h->name;
	if (d->smarthost) {
		p.tls = cf->smarthost_tls == TLS_MODE_IMPLICIT ?
		    SMTP_CLIENT_TLS_IMPLICIT : SMTP_CLIENT_TLS_REQUIRED;
		p.verify = cf->smarthost_verify;
		c->ctx = q->ctx_smarthost;
		if (cf->smarthost_username[0] != '\0') {
			p.auth_user = cf->smarthost_username;
			p.auth_pass = q->smarthost_pass ? q->smarthost_pass :
			    "";
		}
	} else {
		p.tls = cf->delivery_tls == DELIVERY_TLS_OPPORTUNISTIC ?
		    SMTP_CLIENT_TLS_OPPORTUNISTIC : SMTP_CLIENT_TLS_REQUIRED;
		p.verify = cf->delivery_tls == DELIVERY_TLS_VERIFY;
		c->ctx = q->ctx_mx;
	}
	p.ssl_ctx = c->ctx;
	if (c->ctx != NULL)
		SSL_CTX_up_ref(c->ctx);
	c->c = smtp_client_connect(q->r->base, &p, (const struct sockaddr *)ss,
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in), &cbs, c, err, sizeof(err));
	if (c->c == NULL) {
		log_error(p.id, "connect_failed host=%s addr=%s error=\"%s\"",
		    c->host, c->addr, err);
		memset(&d->last, 0, sizeof(d->last));
		d->last.status = SMTP_STATUS_TEMPFAIL;
		snprintf(d->last.enhanced, sizeof(d->last.enhanced), "4.3.0");
		smtp_reply_escape(d->last.text, sizeof(d->last.text), err,
		    strlen(err));
		snprintf(d->last_host, sizeof(d->last_host), "%s", c->host);
		dest_advance(d, c->hi, c->ai);
		SSL_CTX_free(c->ctx);
		event_free(c->idle_ev);
		free(c);
		return -1;
	}
	log_debug(p.id, "connecting host=%s addr=%s", c->host, c->addr);
	c->next = q->conns;
	if (q->conns)
		q->conns->prev = c;
	q->conns = c;
	c->idle = 1;
	d->nidle++;
	d->nconns++;
	q->nconns++;
	return 0;
}

/* Every connection slot is taken and another destination waits for one:
 * an idle connection to d should make room rather than linger. */
static int
queue_others_wait(const struct dest *d)
{
	const struct queue	*q = d->q;
	const struct dest	*o;

	if (q->nconns < q->r->cf->max_connections)
		return 0;
	for (o = q->dests; o != NULL; o = o->next)
		if (o != d && o->mx != NULL && o->ntasks > o->nidle &&
		    o->nconns < q->r->cf->max_connections_per_host)
			return 1;
	return 0;
}

static void
conn_quit(struct conn *c)
{
	if (c->idle) {
		c->idle = 0;
		c->d->nidle--;
	}
	c->quitting = 1;
	evtimer_del(c->idle_ev);
	smtp_client_quit(c->c);
}

static void
conn_idle(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (c->cur == NULL && !c->quitting)
		conn_quit(c);
}

static void
conn_next(struct conn *c)
{
	struct dest		*d = c->d;
	const struct config	*cf = d->q->r->cf;
	struct smtp_txn		 txn;
	struct task		*t;
	struct msg		*m;

	for (;;) {
		if (c->ntx < cf->max_messages_per_connection &&
		    d->head == NULL && !c->quitting &&
		    !queue_others_wait(d)) {
			/* Idle: kept a moment for more work (dest_run()). */
			struct timeval tv = { QUEUE_CONN_IDLE_SEC, 0 };

			if (!c->idle) {
				c->idle = 1;
				d->nidle++;
			}
			evtimer_add(c->idle_ev, &tv);
			return;
		}
		if (c->ntx >= cf->max_messages_per_connection ||
		    d->head == NULL) {
			/* Quitting: not available for new tasks. */
			conn_quit(c);
			return;
		}
		evtimer_del(c->idle_ev);
		t = dest_pop(d);
		if (c->idle) {
			c->idle = 0;
			d->nidle--;
		}
		m = t->m;
		memset(&txn, 0, sizeof(txn));
		txn.mail_from = t->sender;
		c->rcpts[0] = m->env.rcpts[t->ri];
		txn.rcpts = c->rcpts;
		txn.nrcpts = 1;
		txn.msg = m->body;
		txn.len = m->bodylen;
		txn.eightbit = (m->env.flags & ENVELOPE_FLAG_8BIT) != 0;
		txn.smtputf8 = (m->env.flags & ENVELOPE_FLAG_SMTPUTF8) != 0;
		c->cur = t;
		if (smtp_client_send(c->c, &txn) == 0) {
			c->ntx++;
			return;
		}
		c->cur = NULL;
		task_finish(t, SMTP_STATUS_PERMFAIL, 0, "5.1.3",
		    "the address cannot be sent in an SMTP command", NULL);
	}
}

static void
conn_ready(struct smtp_client *sc, void *arg)
{
	struct conn	*c = arg;

	c->greeted = 1;
	conn_next(c);
}

static void
conn_done(struct smtp_client *sc, const struct smtp_txn_result *res,
    void *arg)
{
	struct conn		*c = arg;
	struct dest		*d = c->d, *f;
	struct task		*t = c->cur;
	const struct smtp_result *rr;

	c->cur = NULL;
	if (t != NULL) {
		rr = res->nrcpts > 0 ? &res->rcpts[0] : &res->txn;
		/*
		 * A temporary failure goes on to the next MX host at once,
		 * except a timeout after the final dot (the message may
		 * have arrived; only a later retry).
		 */
		if (rr->status == SMTP_STATUS_TEMPFAIL && !d->smarthost &&
		    c->hi + 1 < d->mx->nhosts &&
		    !(rr->code == 0 && rr->state == SMTP_CLIENT_DOT) &&
		    (f = dest_fallback(d, c->hi + 1)) != NULL) {
			t->has_err = 1;
			t->err = *rr;
			snprintf(t->err_host, sizeof(t->err_host), "%s",
			    c->host);
			log_info(t->m->id, "next_mx rcpt=<%s> relay=%s "
			    "reply=\"%s\"", t->m->env.rcpts[t->ri], c->host,
			    rr->text);
			dest_push(f, t);
			dest_run(f);
		} else
			task_finish(t, rr->status, rr->code, rr->enhanced,
			    rr->text, c->host);
	}
	if (!res->conn_lost)
		conn_next(c);
}

static void
conn_closed(struct smtp_client *sc, const struct smtp_result *res, void *arg)
{
	struct conn	*c = arg;
	struct dest	*d = c->d;
	struct queue	*q = d->q;

	if (!c->greeted) {
		/* This address failed before a transaction: the next.  The
		 * error kept for the recipients is the last one from a server
		 * that answered, else the last connection failure. */
		if (res->state != SMTP_CLIENT_CONNECTING ||
		    d->last_state == SMTP_CLIENT_CONNECTING) {
			d->last = *res;
			d->last_state = res->state;
			snprintf(d->last_host, sizeof(d->last_host), "%s",
			    c->host);
		}
		log_info(d->head ? d->head->m->id : "-", "connect_failed "
		    "host=%s addr=%s state=%s reply=\"%s\"", c->host, c->addr,
		    smtp_client_state_name(res->state), res->text);
		dest_advance(d, c->hi, c->ai);
	}
	if (c->cur != NULL) {
		task_finish(c->cur, SMTP_STATUS_TEMPFAIL, res->code,
		    res->enhanced, res->text, c->host);
		c->cur = NULL;
	}
	if (c->idle)
		d->nidle--;
	d->nconns--;
	q->nconns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		q->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	smtp_client_free(sc);
	SSL_CTX_free(c->ctx);
	event_free(c->idle_ev);
	free(c);
	dest_run(d);
	queue_run_dests(q);
}

/* Look the destination up, open connections as the limits allow, give up
 * on it when every address failed, free it when it has nothing to do. */
static void
dest_run(struct dest *d)
{
	struct queue		*q = d->q;
	const struct config	*cf = q->r->cf;
	struct conn		*c, *cnext;
	struct task		*t;
	uint16_t		 port;

	if (d->query != NULL)
		return;
	if (d->ntasks == 0 && d->nconns == 0) {
		dest_free(d);
		return;
	}
	if (d->mx == NULL) {
		port = d->smarthost ? (uint16_t)cf->smarthost_port :
		    (uint16_t)cf->mx_port;
		if (d->smarthost && (d->mx = dest_literal(d->name,
		    port)) != NULL) {
			/* An address: go on below. */
		} else if (q->dns == NULL || (d->query = dns_mx_lookup(q->dns,
		    d->name, port, dest_mx_cb, d)) == NULL) {
			dest_fail_all(d, SMTP_STATUS_TEMPFAIL, 0, "4.4.3",
			    "the name cannot be looked up", NULL);
			dest_free(d);
			return;
		} else
			return;
	}
	/* Idle connections take waiting tasks first. */
	for (c = q->conns; c != NULL && d->head != NULL; c = cnext) {
		cnext = c->next;
		if (c->d == d && c->greeted && c->idle && c->cur == NULL &&
		    !c->quitting)
			conn_next(c);
	}
	/* Every slot taken: an idle connection elsewhere makes room. */
	if (d->ntasks > d->nidle && d->nconns < cf->max_connections_per_host &&
	    q->nconns >= cf->max_connections) {
		for (c = q->conns; c != NULL; c = c->next)
			if (c->d != d && c->greeted && c->idle &&
			    c->cur == NULL && !c->quitting) {
				conn_quit(c);
				break;
			}
	}
	while (d->ntasks > d->nidle &&
	    d->nconns < cf->max_connections_per_host &&
	    q->nconns < cf->max_connections && d->hi < d->mx->nhosts)
		(void)conn_open(d);
	if (d->ntasks > 0 && d->nconns == 0 && d->hi >= d->mx->nhosts) {
		/*
		 * Every address failed: later, with the last error, or the
		 * reply that sent a task here when these hosts only refused
		 * connections.
		 */
		while ((t = dest_pop(d)) != NULL) {
			if (t->has_err &&
			    d->last_state == SMTP_CLIENT_CONNECTING)
				task_finish(t, SMTP_STATUS_TEMPFAIL,
				    t->err.code, t->err.enhanced, t->err.text,
				    t->err_host);
			else
				task_finish(t, SMTP_STATUS_TEMPFAIL,
				    d->last.code, d->last.enhanced[0] ?
				    d->last.enhanced : "4.4.1",
				    d->last.text[0] ? d->last.text :
				    "no address could be reached",
				    d->last_host[0] ? d->last_host : NULL);
		}
	}
	if (d->ntasks == 0 && d->nconns == 0)
		dest_free(d);
}

static void
queue_run_dests(struct queue *q)
{
	struct dest	*d, *next;

	for (d = q->dests; d != NULL; d = next) {
		next = d->next;
		if (d->ntasks > 0)
			dest_run(d);
	}
}

/* --- rounds ------------------------------------------------------------- */

/* The destination of recipient i: its domain, or the smarthost. */
static struct dest *
msg_dest(struct msg *m, size_t i)
{
	const struct config	*cf = m->q->r->cf;
	const char		*at;
	char			 dom[DNS_NAME_MAX + 1];
	size_t			 k;

	if (cf->delivery_mode == DELIVERY_MODE_SMARTHOST)
		return dest_get(m->q, cf->smarthost_host, 1);
	if ((at = strrchr(m->env.rcpts[i], '@')) == NULL ||
	    strlen(at + 1) == 0 || strlen(at + 1) > DNS_NAME_MAX)
		return NULL;
	for (k = 0; at[1 + k] != '\0'; k++)
		dom[k] = (char)tolower((unsigned char)at[1 + k]);
	dom[k] = '\0';
	return dest_get(m->q, dom, 0);
}

static void
msg_schedule(struct msg *m)
{
	struct queue		*q = m->q;
	const struct config	*cf = q->r->cf;
	struct rcpt		*rc;
	struct task		*t;
	struct dest		*d;
	time_t			 now = time(NULL), wait = 0;
	size_t			 i;
	int			 npend = 0, nfail = 0, changed = 0, started = 0;
	int			 ndue = 0, warn;

	if (m->removing || m->inflight > 0 || m->wq || m->writing ||
	    m->dirty || m->dsn != NULL || m->ljob != NULL ||
	    queue_stopped(q))
		return;
	for (i = 0; i < m->env.nrcpts; i++) {
		rc = &m->r[i];
		if (rc->st == RS_PENDING &&
		    (uint64_t)(now - (time_t)m->env.time) >= cf->max_age) {
			char	 st[SMTP_ENHANCED_MAX];
			char	 txt[SMTP_RESULT_TEXT_MAX];
			char	 rem[DNS_NAME_MAX + 1];

			memcpy(st, rc->status, sizeof(st));
			memcpy(txt, rc->error, sizeof(txt));
			memcpy(rem, rc->remote, sizeof(rem));
			rc->attempts--;
			queue_outcome(m, i, SMTP_STATUS_TEMPFAIL, rc->code, st,
			    txt[0] ? txt : "delivery time expired", rem);
			changed = 1;
		}
		if (rc->st == RS_PENDING) {
			npend++;
			if (!rc->busy && rc->next <= (int64_t)now)
				ndue++;
		} else if (rc->st == RS_FAILED && !rc->reported)
			nfail++;
	}
	if (changed) {
		state_enqueue(m);
		return;
	}
	warn = npend > 0 && !m->warned && cf->delay_warning > 0 &&
	    (uint64_t)(now - (time_t)m->env.time) >= cf->delay_warning;
	if (!(cf->hold || cf->delivery_mode == DELIVERY_MODE_CAPTURE ||
	    q->r->draining) || nfail > 0 || warn) {
		/* A round or a report needs the message's bytes. */
		if (m->file == NULL && (ndue > 0 || nfail > 0 || warn)) {
			if (load_start(q, m->id, m) == -1)
				msg_arm(m, (time_t)cf->retry_min);
			return;
		}
	}
	if (nfail > 0) {
		msg_dsn(m, 0);
		return;
	}
	if (warn) {
		msg_dsn(m, 1);
		return;
	}
	if (npend == 0) {
		msg_remove(m);
		return;
	}
	if (cf->hold || cf->delivery_mode == DELIVERY_MODE_CAPTURE ||
	    q->r->draining) {
		/* queue_reload() comes back; the bytes wait on disk. */
		free(m->file);
		m->file = NULL;
		m->body = NULL;
		return;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		rc = &m->r[i];
		if (rc->st != RS_PENDING || rc->busy)
			continue;
		if (rc->next > (int64_t)now) {
			if (wait == 0 || rc->next - (int64_t)now < wait)
				wait = (time_t)(rc->next - (int64_t)now);
			continue;
		}
		if ((t = calloc(1, sizeof(*t))) == NULL) {
			wait = (time_t)cf->retry_min;
			break;
		}
		t->m = m;
		t->ri = i;
		if (rewrite_sender(q->r->gen->verp_key, &m->env, i, t->sender,
		    sizeof(t->sender)) == -1) {
			free(t);
			log_error(m->id, "queue_sender_failed rcpt=<%s>",
			    m->env.rcpts[i]);
			wait = (time_t)cf->retry_min;
			continue;
		}
		rc->busy = 1;
		m->inflight++;
		started++;
		if ((d = msg_dest(m, i)) == NULL) {
			task_finish(t, SMTP_STATUS_PERMFAIL, 0, "5.1.3",
			    "the recipient has no usable domain", NULL);
			continue;
		}
		dest_push(d, t);
	}
	if (started > 0)
		queue_run_dests(q);
	else if (m->inflight == 0 && !m->dirty) {
		free(m->file);
		m->file = NULL;
		m->body = NULL;
	}
	/* Come back for the delay report too. */
	if (!m->warned && cf->delay_warning > 0) {
		time_t w = (time_t)m->env.time + (time_t)cf->delay_warning -
		    now;

		if (w > 0 && (wait == 0 || w < wait))
			wait = w;
	}
	if (m->inflight == 0 && !m->dirty && !m->wq && !m->writing)
		msg_arm(m, wait > 0 ? wait : (time_t)cf->retry_min);
}

/* --- setup ------------------------------------------------------------- */

static SSL_CTX *
queue_ctx(const char *ca_file)
{
	SSL_CTX	*ctx;

	if ((ctx = tls_client_ctx_new(0, stderr)) == NULL)
		return NULL;
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		log_error("-", "ca_file_unusable file=%s", ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The smarthost password: password_file's first line. */
static char *
queue_password(const char *path)
{
	char	 line[QUEUE_PASS_MAX];
	FILE	*f;
	size_t	 n;

	if (path == NULL || path[0] == '\0')
		return NULL;
	if ((f = fopen(path, "re")) == NULL) {
		log_error("-", "password_file_unreadable file=%s error=\"%s\"",
		    path, strerror(errno));
		return NULL;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	return strdup(line);
}

/* (Re)build what delivery needs from the current configuration. */
static int
queue_setup(struct queue *q)
{
	const struct config	*cf = q->r->cf;
	SSL_CTX			*mx, *sh;
	char			 err[256];

	if (cf->delivery_mode == DELIVERY_MODE_CAPTURE)
		return 0;
	if (q->dns == NULL && (q->dns = dns_new(q->r->base, cf->dns_servers,
	    0, 0, err, sizeof(err))) == NULL) {
		log_error("-", "dns_failed error=\"%s\"", err);
		fprintf(stderr, "relayd: DNS resolver: %s\n", err);
		return -1;
	}
	if ((mx = queue_ctx(cf->delivery_ca_file)) == NULL)
		return -1;
	if ((sh = queue_ctx(cf->smarthost_ca_file)) == NULL) {
		SSL_CTX_free(mx);
		return -1;
	}
	/* Connections hold references to the old ones. */
	SSL_CTX_free(q->ctx_mx);
	SSL_CTX_free(q->ctx_smarthost);
	q->ctx_mx = mx;
	q->ctx_smarthost = sh;
	if (q->smarthost_pass != NULL) {
		explicit_bzero(q->smarthost_pass, strlen(q->smarthost_pass));
		free(q->smarthost_pass);
	}
	q->smarthost_pass = queue_password(cf->smarthost_password_file);
	return 0;
}

/* Free every delivery object (shutdown): connections close at once. */
static void
queue_delivery_free(struct queue *q)
{
	struct dest	*d;
	struct task	*t;
	struct msg	*m;
	struct conn	*c;
	struct ljob	*lj;

	/* Unfinished transactions are sent again after the restart. */
	while ((c = q->conns) != NULL) {
		q->conns = c->next;
		smtp_client_free(c->c);
		free(c->cur);
		SSL_CTX_free(c->ctx);
		event_free(c->idle_ev);
		free(c);
	}
	while ((d = q->dests) != NULL) {
		while ((t = dest_pop(d)) != NULL)
			free(t);
		dest_free(d);
	}
	while ((m = q->msgs) != NULL)
		msg_free(m);
	free(q->mtab);
	q->mtab = NULL;
	q->mtabsz = 0;
	for (lj = q->ljobs; lj != NULL; lj = lj->next) {
		lj->q = NULL;
		lj->m = NULL;
	}
	if (q->wjob)
		q->wjob->q = NULL;
	if (q->rmjob)
		q->rmjob->q = NULL;
	dns_free(q->dns);
	SSL_CTX_free(q->ctx_mx);
	SSL_CTX_free(q->ctx_smarthost);
	if (q->smarthost_pass != NULL) {
		explicit_bzero(q->smarthost_pass, strlen(q->smarthost_pass));
		free(q->smarthost_pass);
	}
}

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

	while ((n = qlist_pop(l)) != NULL) {
		free(n->file);
		free(n);
	}
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
	if (queue_setup(q) == -1) {
		queue_free(q);
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
	queue_delivery_free(q);
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
	struct msg	*m, *next;

	if (queue_setup(q) == -1)
		log_error("-", "queue_reload_failed action=\"delivery keeps "
		    "the previous TLS and DNS settings\"");
	for (m = q->msgs; m != NULL; m = next) {
		next = m->next;
		msg_schedule(m);
	}
	queue_dispatch(q);
}

unsigned
queue_length(const struct queue *q)
{
	return q->ready.n + q->retry.n + q->held.n + q->inflight + q->nmsgs;
}

void
queue_add(struct queue *q, const char *id)
{
	queue_add_file(q, id, NULL, 0);
}

void
queue_add_file(struct queue *q, const char *id, char *file, size_t len)
{
	struct qnode	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		/* It stays in the spool; the next start picks it up. */
		free(file);
		log_error(id, "queue_add_failed error=\"out of memory\"");
		return;
	}
	snprintf(n->id, sizeof(n->id), "%s", id);
	/* Bytes are kept for a bounded backlog only; beyond, read again. */
	if (q->ready.n < QUEUE_READY_MEM_MAX) {
		n->file = file;
		n->len = len;
	} else
		free(file);
	qlist_push(&q->ready, n);
	queue_dispatch(q);
}

/*
 * Worker thread: read, check and stage one message.  The spool file is
 * held in memory only here, so a job holds one message body at a time.
 */
static void
queue_capture_one(struct qjob *j, struct qitem *it)
{
	struct envelope	*env = &it->env;
	const char	*body;
	char		*file = NULL, **senders;
	size_t		 len, blen, i;

	it->status = QITEM_RETRY;
	if (it->file != NULL) {
		/* The bytes the spool wrote, handed over in memory. */
		file = it->file;
		len = it->len;
		it->file = NULL;
	} else if (spool_read_file(j->sp, it->id, &file, &len) == -1) {
		if (errno == ENOENT) {
			it->status = QITEM_GONE;
			log_warn(it->id, "capture_skipped "
			    "reason=no-spool-file");
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
	it->size = blen;
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
	if (capture_stage(j->fd, env, (const char *const *)senders, body,
	    blen, 0, &it->st) == -1)
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
 * Worker thread, in a spool committer step before its flush: stage the
 * batch's files.  Touches only the job, the spool (whose calls used here
 * are thread-safe) and the file system.  A capture_dir on another file
 * system than the spool's is flushed here.
 */
static size_t
queue_capture_stage(struct spool_rider *rd)
{
	struct qjob	*j = (struct qjob *)rd;
	size_t		 i, nstaged = 0;
	int		 e;

	j->fd = capture_open_dir(j->dir);
	e = errno;
	for (i = 0; i < j->n; i++) {
		j->items[i].st.eml = j->items[i].st.json = -1;
		if (j->fd == -1) {
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed "
			    "step=open_dir error=\"%s\"", strerror(e));
			continue;
		}
		queue_capture_one(j, &j->items[i]);
		if (j->items[i].status == QITEM_OK)
			nstaged++;
	}
	if (nstaged > 0 && !spool_same_fs(j->sp, j->fd) &&
	    syncfs(j->fd) == -1) {
		e = errno;
		for (i = 0; i < j->n; i++) {
			if (j->items[i].status != QITEM_OK)
				continue;
			capture_unstage(j->fd, j->items[i].id,
			    &j->items[i].st);
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=syncfs "
			    "error=\"%s\"", strerror(e));
		}
		nstaged = 0;
	}
	return nstaged;
}

/*
 * Worker thread, in the next step, its data flushed: name the files.  On
 * another file system than the spool's, fsync capture_dir here; on the
 * same, that step's syncfs covers the names.
 */
static void
queue_capture_publish(struct spool_rider *rd, int flushed)
{
	struct qjob	*j = (struct qjob *)rd;
	size_t		 i, nok = 0;
	int		 e;

	for (i = 0; i < j->n; i++) {
		if (j->items[i].status != QITEM_OK)
			continue;
		if (!flushed) {
			capture_unstage(j->fd, j->items[i].id,
			    &j->items[i].st);
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=syncfs");
			continue;
		}
		if (capture_publish(j->fd, j->items[i].id,
		    &j->items[i].st) == -1) {
			log_error(j->items[i].id, "capture_failed step=rename "
			    "error=\"%s\"", strerror(errno));
			capture_unstage(j->fd, j->items[i].id,
			    &j->items[i].st);
			j->items[i].status = QITEM_RETRY;
			continue;
		}
		nok++;
	}
	if (nok > 0 && !spool_same_fs(j->sp, j->fd) && fsync(j->fd) == -1) {
		e = errno;
		for (i = 0; i < j->n; i++) {
			if (j->items[i].status != QITEM_OK)
				continue;
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=fsync "
			    "error=\"%s\"", strerror(e));
		}
	}
}

/*
 * Worker thread, after that step's flush: the captures are durable;
 * now, and only now, take the messages out of the spool.  A crash before
 * that removal is durable captures a message twice, never loses it.
 */
static size_t
queue_capture_settle(struct spool_rider *rd, int durable)
{
	struct qjob	*j = (struct qjob *)rd;
	const char	*ids[QUEUE_BATCH_MAX];
	size_t		 i, nok = 0;

	for (i = 0; i < j->n; i++) {
		if (j->items[i].status != QITEM_OK)
			continue;
		if (!durable) {
			j->items[i].status = QITEM_RETRY;
			log_error(j->items[i].id, "capture_failed step=fsync");
			continue;
		}
		ids[nok++] = j->items[i].id;
	}
	if (nok > 0)
		nok = spool_unqueue(j->sp, ids, nok);
	for (i = 0; i < j->n; i++)
		if (j->items[i].status == QITEM_OK)
			log_info(j->items[i].id, "captured nrcpt=%zu size=%zu",
			    j->items[i].env.nrcpts, j->items[i].size);
	return nok;
}

/* Loop thread: account for the batch and retry what failed. */
static void
queue_capture_done(struct spool_rider *rd, int ran)
{
	struct qjob	*j = (struct qjob *)rd;
	struct queue	*q = j->q;
	struct qnode	*n;
	size_t		 i;

	for (i = 0; i < j->n; i++) {
		if (!ran)
			j->items[i].status = QITEM_RETRY;
		envelope_clear(&j->items[i].env);
		free(j->items[i].file);
	}
	if (j->fd != -1)
		close(j->fd);
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
	if (cf->hold) {
		/* [queue] hold keeps everything in the spool until a reload
		 * turns it off. */
		while ((n = qlist_pop(&q->ready)) != NULL) {
			log_info(n->id, "held reason=\"queue hold\"");
			free(n->file);	/* read again when released */
			n->file = NULL;
			qlist_push(&q->held, n);
		}
		return;
	}
	/* A reload released the hold: what was held is ready now. */
	while ((n = qlist_pop(&q->held)) != NULL)
		qlist_push(&q->ready, n);
	if (cf->delivery_mode != DELIVERY_MODE_CAPTURE) {
		if (q->dns == NULL && queue_setup(q) == -1)
			return;
		while ((n = qlist_pop(&q->ready)) != NULL) {
			if (n->file != NULL)
				msg_given(q, n->id, n->file, n->len);
			else
				msg_load(q, n->id);
			free(n);
		}
		return;
	}
	maxjobs = QUEUE_CAPTURE_JOBS;
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
		j->rider.stage = queue_capture_stage;
		j->rider.publish = queue_capture_publish;
		j->rider.settle = queue_capture_settle;
		j->rider.done = queue_capture_done;
		j->q = q;
		j->sp = q->r->spool;
		j->fd = -1;
		memcpy(j->verp_key, q->r->gen->verp_key, sizeof(j->verp_key));
		while (j->n < per && (n = qlist_pop(&q->ready)) != NULL) {
			memcpy(j->items[j->n].id, n->id, sizeof(n->id));
			j->items[j->n].file = n->file;
			j->items[j->n].len = n->len;
			j->n++;
			free(n);
		}
		if (spool_ride(q->r->spool, &j->rider) == -1) {
			/* Out of memory: back to the ready list, later. */
			for (; j->n > 0; j->n--) {
				free(j->items[j->n - 1].file);
				if ((n = calloc(1, sizeof(*n))) == NULL)
					break;
				memcpy(n->id, j->items[j->n - 1].id,
				    sizeof(n->id));
				qlist_push(&q->ready, n);
			}
			free(j->dir);
			free(j);
			log_error("-", "queue_dispatch_failed "
			    "error=\"out of memory\"");
			return;
		}
		j->next = q->jobs;
		if (q->jobs)
			q->jobs->prev = j;
		q->jobs = j;
		q->njobs++;
		q->inflight += (unsigned)j->n;
	}
}

/*
 * test_spool: the spool's committer (relayd/spool.c) driven by a real
 * event loop and worker pool in a temporary directory.  Every commit is
 * answered once; when its callback runs, queue/ID holds exactly its bytes
 * (the same the queue is handed) and tmp/ holds no unfinished file;
 * riders are called in order (stage, then publish with its bytes flushed,
 * then settle, then done on the loop), the commits of a step and the
 * riders' steps interleave in any order, and a rider that only settles
 * skips stage and publish.  Crash safety is the integration tests' job
 * (test_spool.py: kill -9).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "envelope.h"
#include "spool.h"
#include "tap.h"
#include "worker.h"

#define NCOMMITS	300
#define NRIDERS		40

static char	 dir[] = "/tmp/relayd-test-spool.XXXXXX";
static char	 spooldir[256];

struct want {
	char	 id[SPOOL_ID_LEN + 1];
	char	 body[64];
	int	 answered;
	int	 status;
	int	 file_ok;	/* queue/ID held the bytes at the callback */
	int	 queued;	/* spool_set_notify() saw it */
	int	 image_ok;	/* with the same bytes */
};

static struct want	 wants[NCOMMITS];
static int		 nanswered, nqueued;

/* Calls in order, numbered by one counter (riders run on workers). */
static atomic_int	 seq;

struct trider {
	struct spool_rider	 rider;	/* first */
	int			 settle_only;
	int			 stage_at, publish_at, settle_at, done_at;
	int			 flushed, durable, ran;
};

static struct trider	 riders[NRIDERS];
static int		 ndone;

static int
read_all(const char *path, char **out, size_t *len)
{
	FILE	*f;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc((size_t)n + 1);
	*len = fread(*out, 1, (size_t)n, f);
	fclose(f);
	return *len == (size_t)n ? 0 : -1;
}

/* Does the file hold a spool record of w, body and all? */
static int
bytes_ok(const struct want *w, const char *p, size_t n)
{
	struct envelope	 env;
	const char	*body;
	size_t		 blen;
	int		 good;

	if (envelope_parse(p, n, &env, &body, &blen) == -1)
		return 0;
	good = strcmp(env.id, w->id) == 0 && blen == strlen(w->body) &&
	    memcmp(body, w->body, blen) == 0 && env.nrcpts == 1 &&
	    strcmp(env.rcpts[0], "rcpt@rcpt-domain.org") == 0;
	envelope_clear(&env);
	return good;
}

/* tmp/'s names other than recycled files (r.N). */
static int
tmp_unfinished(void)
{
	char		 path[300];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(path, sizeof(path), "%s/tmp", spooldir);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strncmp(de->d_name, "r.", 2) != 0)
			n++;
	closedir(d);
	return n;
}

static void
commit_cb(int status, const char *id, void *arg)
{
	struct want	*w = arg;
	char		 path[300], *p;
	size_t		 n;

	w->answered++;
	w->status = status;
	nanswered++;
	snprintf(path, sizeof(path), "%s/queue/%s", spooldir, id);
	if (strcmp(id, w->id) == 0 && read_all(path, &p, &n) == 0) {
		w->file_ok = bytes_ok(w, p, n);
		free(p);
	}
}

static void
queued_cb(const char *id, char *file, size_t len, void *arg)
{
	int	 i;

	(void)arg;
	for (i = 0; i < NCOMMITS; i++)
		if (strcmp(wants[i].id, id) == 0) {
			wants[i].queued++;
			wants[i].image_ok = file != NULL &&
			    bytes_ok(&wants[i], file, len);
		}
	nqueued++;
	free(file);
}

static size_t
r_stage(struct spool_rider *rd)
{
	struct trider	*t = (struct trider *)rd;

	t->stage_at = ++seq;
	return 1;
}

static void
r_publish(struct spool_rider *rd, int flushed)
{
	struct trider	*t = (struct trider *)rd;

	t->publish_at = ++seq;
	t->flushed = flushed;
}

static size_t
r_settle(struct spool_rider *rd, int durable)
{
	struct trider	*t = (struct trider *)rd;

	t->settle_at = ++seq;
	t->durable = durable;
	return 0;
}

static void
r_done(struct spool_rider *rd, int ran)
{
	struct trider	*t = (struct trider *)rd;

	t->done_at = ++seq;
	t->ran = ran;
	ndone++;
}

/* Hand riders[r] to the spool: 0, or -1. */
static int
ride_one(struct spool *sp, int r, int settle_only)
{
	struct trider	*t = &riders[r];

	t->settle_only = settle_only;
	if (!settle_only) {
		t->rider.stage = r_stage;
		t->rider.publish = r_publish;
	}
	t->rider.settle = r_settle;
	t->rider.done = r_done;
	return spool_ride(sp, &t->rider);
}

static int
commit_one(struct spool *sp, int i)
{
	struct envelope	 env;
	struct buf	 body;
	struct want	*w = &wants[i];
	int		 rc;

	memset(&env, 0, sizeof(env));
	spool_id_new(sp, env.id);
	memcpy(w->id, env.id, sizeof(w->id));
	snprintf(w->body, sizeof(w->body), "Subject: %d\r\n\r\nbody %d\r\n",
	    i, i);
	env.time = time(NULL);
	env.user = strdup("alice");
	env.client = strdup("127.0.0.1");
	env.helo = strdup("client.test");
	env.mail_from = strdup("alice@own-domain.com");
	envelope_add_rcpt(&env, "rcpt@rcpt-domain.org");
	buf_init(&body, SIZE_MAX);
	if (buf_append(&body, w->body, strlen(w->body)) == -1) {
		envelope_clear(&env);
		return -1;
	}
	rc = spool_commit(sp, &env, &body, commit_cb, w) != NULL ? 0 : -1;
	buf_clear(&body);
	envelope_clear(&env);
	return rc;
}

/* Run the loop until pred() or 20 s. */
static int
run_until(struct event_base *base, int (*pred)(void))
{
	time_t	 end = time(NULL) + 20;

	while (!pred() && time(NULL) < end) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(200);
	}
	return pred();
}

static int	 target;
static int	 answered_enough(void) { return nanswered >= target; }
static int	 riders_done(void) { return ndone >= NRIDERS; }

int
main(void)
{
	struct event_base	*base;
	struct worker_pool	*wp;
	struct spool		*sp;
	int			 i, all, lone_ok, order_ok, flushed_ok, skip_ok;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(spooldir, sizeof(spooldir), "%s/spool", dir);
	base = event_base_new();
	wp = worker_pool_new(base, 3);
	sp = spool_open(spooldir, base, wp, stderr, NULL, NULL);
	ok(base != NULL && wp != NULL && sp != NULL, "spool opened");
	if (sp == NULL)
		return tap_done();
	spool_set_notify(sp, queued_cb, NULL);

	/* A lone message. */
	ok(commit_one(sp, 0) == 0, "lone commit started");
	target = 1;
	ok(run_until(base, answered_enough), "lone commit answered");
	lone_ok = wants[0].answered == 1 && wants[0].status == 0 &&
	    wants[0].file_ok;
	ok(lone_ok, "lone commit: status 0, queue/ID holds its bytes");

	/* Bursts of commits with riders in between: 1, 7, 64, 100, 127. */
	{
		static const int bursts[] = { 1, 7, 64, 100, 127 };
		int	 b, next = 1, r = 0;

		for (b = 0; b < 5; b++) {
			for (i = 0; i < bursts[b]; i++) {
				if (commit_one(sp, next++) == -1)
					break;
				if (i % 8 == 0 && r < NRIDERS &&
				    ride_one(sp, r, r % 4 == 3) == 0)
					r++;
			}
			target = next;
			run_until(base, answered_enough);
		}
		while (r < NRIDERS && ride_one(sp, r, 0) == 0)
			r++;
		ok(next == NCOMMITS, "%d commits started", next);
	}
	target = NCOMMITS;
	i = run_until(base, answered_enough);
	ok(i, "every commit answered (%d)", nanswered);
	i = run_until(base, riders_done);
	ok(i, "every rider done (%d)", ndone);
	all = 1;
	for (i = 0; i < NCOMMITS; i++)
		if (wants[i].answered != 1 || wants[i].status != 0 ||
		    !wants[i].file_ok)
			all = 0;
	ok(all, "each commit answered once, status 0, its bytes in queue/");
	all = 1;
	for (i = 0; i < NCOMMITS; i++)
		if (wants[i].queued != 1 || !wants[i].image_ok)
			all = 0;
	ok(all && nqueued == NCOMMITS,
	    "the queue was handed each message once, with its bytes");
	ok(tmp_unfinished() == 0, "no unfinished file in tmp/");

	order_ok = flushed_ok = skip_ok = 1;
	for (i = 0; i < NRIDERS; i++) {
		struct trider *t = &riders[i];

		if (t->settle_only) {
			if (t->stage_at != 0 || t->publish_at != 0 ||
			    t->settle_at == 0 || t->done_at <= t->settle_at)
				skip_ok = 0;
			continue;
		}
		if (!(t->stage_at > 0 && t->publish_at > t->stage_at &&
		    t->settle_at > t->publish_at &&
		    t->done_at > t->settle_at && t->ran == 1))
			order_ok = 0;
		if (!t->flushed || !t->durable)
			flushed_ok = 0;
	}
	ok(order_ok, "riders: stage, publish, settle, done, in that order");
	ok(flushed_ok, "riders: published flushed, settled durable");
	ok(skip_ok, "settle-only riders: no stage or publish, settle then done");

	worker_pool_free(wp);
	spool_free(sp);
	event_base_free(base);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (getenv("RELAYD_KEEP") == NULL && system(cmd) != 0)
			ok(0, "cleanup");
	}
	return tap_done();
}

/*
 * bench_spool: spool commit rate for 2 KiB messages, submitted in groups
 * of 1, 8 and 32 that finish together, with each flush strategy.
 *
 *   bench_spool [DIR] [SECONDS_PER_CASE]
 *
 * DIR (default: a new directory under /var/tmp) must be on the disk to
 * measure.  Prints messages per second per case.  Built by meson as
 * BUILD/tests/bench/bench_spool; not run by CI (docs/testing.md).
 */
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "clock.h"
#include "envelope.h"
#include "spool.h"
#include "worker.h"

struct bench {
	struct event_base	*base;
	struct spool		*sp;
	unsigned		 pending, failed, done;
	char			(*ids)[SPOOL_ID_LEN + 1];
};

static void
bench_cb(int status, const char *id, void *arg)
{
	struct bench	*b = arg;

	if (status != 0)
		b->failed++;
	b->done++;
	if (--b->pending == 0)
		event_base_loopbreak(b->base);
}

static double
bench_case(struct bench *b, enum spool_flush f, unsigned group, double secs)
{
	struct envelope	 env;
	char		 body[2048];
	double		 t0, t;
	unsigned	 i, n = 0;

	memset(body, 'x', sizeof(body));
	memcpy(body + sizeof(body) - 2, "\r\n", 2);
	memset(&env, 0, sizeof(env));
	env.user = "alice";
	env.client = "127.0.0.1";
	env.helo = "bench";
	env.mail_from = "alice@own-domain.com";
	envelope_add_rcpt(&env, "rcpt@rcpt-domain.org");
	spool_set_flush(b->sp, f);
	b->ids = realloc(b->ids, group * sizeof(*b->ids));
	t0 = now();
	do {
		for (i = 0; i < group; i++) {
			struct buf bb;

			buf_init(&bb, 1 << 20);
			buf_append(&bb, body, sizeof(body));
			spool_id_new(b->sp, env.id);
			memcpy(b->ids[i], env.id, sizeof(b->ids[i]));
			b->pending++;
			if (spool_commit(b->sp, &env, &bb, bench_cb, b) == NULL)
				abort();
		}
		event_base_dispatch(b->base);
		n += group;
		t = now() - t0;
		/* Keep queue/ small; not part of the measured work. */
		{
			double t1 = now();
			for (i = 0; i < group; i++) {
				const char *id = b->ids[i];
				spool_remove_many(b->sp, &id, 1);
			}
			t0 += now() - t1;
		}
	} while (t < secs);
	free(env.rcpts[0]);
	free(env.rcpts);
	return n / t;
}

int
main(int argc, char **argv)
{
	struct bench		 b;
	struct worker_pool	*wp;
	char			 tmpl[] = "/var/tmp/bench-spool-XXXXXX";
	const char		*dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
	double			 secs = argc > 2 ? atof(argv[2]) : 2.0;
	unsigned		 groups[] = { 1, 8, 32 };
	unsigned		 g;

	memset(&b, 0, sizeof(b));
	evthread_use_pthreads();
	b.base = event_base_new();
	wp = worker_pool_new(b.base, 2);
	b.sp = spool_open(dir, b.base, wp, stderr, NULL, NULL);
	if (b.sp == NULL)
		return 1;
	for (g = 0; g < 3; g++) {
		double a, s;

		a = bench_case(&b, SPOOL_FLUSH_FDATASYNC, groups[g], secs);
		s = bench_case(&b, SPOOL_FLUSH_SYNCFS, groups[g], secs);
		printf("group %2u: fdatasync %8.0f msg/s   "
		    "syncfs %8.0f msg/s\n", groups[g], a, s);
	}
	printf("failed commits: %u of %u\n", b.failed, b.done);
	worker_pool_free(wp);
	spool_free(b.sp);
	event_base_free(b.base);
	if (argc <= 1) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}

/*
 * worker: a pool of threads with one job queue and one completion queue.
 *
 * Threads take jobs from a FIFO protected by a mutex and run work(); the
 * finished job goes onto the completion list, and an eventfd wakes the
 * loop, which runs done() for everything on the list.  One eventfd write
 * covers a whole batch of completions.  No lock is held across work().
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "worker.h"

#define WORKER_MAX_THREADS	64

struct worker_pool {
	struct event_base	*base;
	struct event		*ev;
	int			 efd;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct worker_job	*head, *tail;	/* waiting jobs */
	struct worker_job	*done_head, *done_tail;
	int			 stopping;
	unsigned		 nthreads;
	pthread_t		 threads[WORKER_MAX_THREADS];
};

static void
worker_run_done(struct worker_pool *wp)
{
	struct worker_job	*j, *next;

	pthread_mutex_lock(&wp->mtx);
	j = wp->done_head;
	wp->done_head = wp->done_tail = NULL;
	pthread_mutex_unlock(&wp->mtx);
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		j->done(j);
	}
}

static void
worker_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool	*wp = arg;
	uint64_t		 v;

	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_error("-", "worker_read error=%d", errno);
	worker_run_done(wp);
}

static void *
worker_main(void *arg)
{
	struct worker_pool	*wp = arg;
	struct worker_job	*j;
	uint64_t		 one = 1;
	int			 wake;

	for (;;) {
		pthread_mutex_lock(&wp->mtx);
		while (wp->head == NULL && !wp->stopping)
			pthread_cond_wait(&wp->cond, &wp->mtx);
		if (wp->head == NULL) {
			pthread_mutex_unlock(&wp->mtx);
			return NULL;
		}
		j = wp->head;
		wp->head = j->next;
		if (wp->head == NULL)
			wp->tail = NULL;
		pthread_mutex_unlock(&wp->mtx);

		j->next = NULL;
		j->work(j);

		pthread_mutex_lock(&wp->mtx);
		wake = wp->done_head == NULL;
		if (wp->done_tail)
			wp->done_tail->next = j;
		else
			wp->done_head = j;
		wp->done_tail = j;
		pthread_mutex_unlock(&wp->mtx);
		if (wake && write(wp->efd, &one, sizeof(one)) == -1)
			log_error("-", "worker_write error=%d", errno);
	}
}

struct worker_pool *
worker_pool_new(struct event_base *base, unsigned nthreads)
{
	struct worker_pool	*wp;
	long			 ncpu;
	unsigned		 i;

	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	if (nthreads > WORKER_MAX_THREADS)
		nthreads = WORKER_MAX_THREADS;
	if ((wp = calloc(1, sizeof(*wp))) == NULL)
		return NULL;
	wp->base = base;
	wp->efd = -1;
	pthread_mutex_init(&wp->mtx, NULL);
	pthread_cond_init(&wp->cond, NULL);
	if ((wp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	wp->ev = event_new(base, wp->efd, EV_READ | EV_PERSIST, worker_wakeup,
	    wp);
	if (wp->ev == NULL || event_add(wp->ev, NULL) == -1)
		goto fail;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&wp->threads[i], NULL, worker_main, wp) != 0)
			goto fail;
		wp->nthreads++;
	}
	return wp;
fail:
	worker_pool_free(wp);
	return NULL;
}

void
worker_submit(struct worker_pool *wp, struct worker_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&wp->mtx);
	if (wp->tail)
		wp->tail->next = j;
	else
		wp->head = j;
	wp->tail = j;
	pthread_cond_signal(&wp->cond);
	pthread_mutex_unlock(&wp->mtx);
}

void
worker_pool_set_name(struct worker_pool *wp, const char *name)
{
	char	 n[16];
	unsigned i;

	/* Linux: at most 15 characters; ps -L and perf show them. */
	snprintf(n, sizeof(n), "%s", name);
	for (i = 0; i < wp->nthreads; i++)
		pthread_setname_np(wp->threads[i], n);
}

unsigned
worker_pool_size(const struct worker_pool *wp)
{
	return wp->nthreads;
}

void
worker_pool_free(struct worker_pool *wp)
{
	unsigned	 i;

	if (wp == NULL)
		return;
	pthread_mutex_lock(&wp->mtx);
	wp->stopping = 1;
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->mtx);
	for (i = 0; i < wp->nthreads; i++)
		pthread_join(wp->threads[i], NULL);
	worker_run_done(wp);
	if (wp->ev)
		event_free(wp->ev);
	if (wp->efd != -1)
		close(wp->efd);
	pthread_mutex_destroy(&wp->mtx);
	pthread_cond_destroy(&wp->cond);
	free(wp);
}

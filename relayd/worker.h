/*
 * worker: a small pool of threads for work that would stall the event loop
 * (password hashing, DKIM signing, fsync).
 *
 * A job is a struct embedded at the start of a caller-allocated object.
 * work() runs on a pool thread and must touch only the job's own data;
 * done() runs later on the loop thread and usually frees the object.
 * The pool never frees a job.
 *
 * Ownership rule (no dangling pointers): an object that starts a job keeps
 * a pointer to it and, when freed before done() ran, clears the job's
 * back-pointer to itself; done() then sees NULL and only frees the job.
 * Everything runs on the loop thread except work(), so this needs no lock.
 */
#ifndef RELAYD_WORKER_H
#define RELAYD_WORKER_H

struct event_base;
struct worker_pool;

struct worker_job {
	void			(*work)(struct worker_job *);
	void			(*done)(struct worker_job *);
	struct worker_job	*next;		/* private */
};

/* nthreads 0: one per online core.  Returns NULL on failure. */
struct worker_pool *worker_pool_new(struct event_base *, unsigned nthreads);
/* Name the pool's threads (15 characters at most are kept). */
void	worker_pool_set_name(struct worker_pool *, const char *);
/* Queue a job; may be called from the loop thread or from a work(). */
void	worker_submit(struct worker_pool *, struct worker_job *);
unsigned worker_pool_size(const struct worker_pool *);
/* Finish queued jobs, run their done(), join the threads.  NULL is ok. */
void	worker_pool_free(struct worker_pool *);

#endif

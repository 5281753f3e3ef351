/*
 * queue: the scheduler that takes committed messages from the spool and
 * hands them to the delivery mode.  Today: capture.  Later: mx and
 * smarthost with per-recipient state and retries.
 */
#ifndef RELAYD_QUEUE_H
#define RELAYD_QUEUE_H

struct relayd;
struct queue;

struct queue *queue_new(struct relayd *);
void	queue_free(struct queue *);
/*
 * A message is durable in the spool and ready to deliver.  May be called
 * from spool_open()'s found() before r->spool is set (create the queue
 * first): dispatch then starts from the event loop.  The worker pool must
 * be freed before the spool and the queue (running jobs use the spool).
 */
void	queue_add(struct queue *, const char *id);
/* The same for a message just committed, with the bytes of its spool
 * file (malloc'd; taken, NULL allowed), which spare a read. */
void	queue_add_file(struct queue *, const char *id, char *file,
	    size_t len);
/* The configuration was swapped (SIGHUP): apply a new delivery mode to
 * the messages waiting.  Loop thread. */
void	queue_reload(struct queue *);
/* Messages waiting or in delivery. */
unsigned queue_length(const struct queue *);

#endif

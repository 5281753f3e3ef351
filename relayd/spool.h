/*
 * spool: the durable queue directory.
 *
 *   SPOOL/tmp/         files being written (deleted at start), and
 *                      recycled files (r.N, kept for reuse)
 *   SPOOL/queue/ID     committed messages (envelope.h format)
 *   SPOOL/quarantine/  unreadable or truncated files moved aside at start
 *   SPOOL/state/ID     per-recipient delivery state of queue/ID (the
 *                      queue's format, queue.h); removed with the message,
 *                      orphans deleted at start
 *
 * A commit writes the file under tmp/, makes its data durable, renames it
 * into queue/ and fsyncs queue/; only then is the callback told success,
 * and only then may the client get its 250.  Commits that arrive together
 * share their flushes (group commit) on a worker thread; the loop never
 * blocks on the disk.
 *
 * Files are recycled: a removed message's file (up to SPOOL_POOL_FILE_MAX
 * bytes) is renamed to tmp/r.N instead of unlinked, and the next commit
 * overwrites it (truncating what is left) instead of creating a new one.
 * Creating and freeing an inode per message is most of the file system's
 * cost per message (ext4 without a journal also scans past every inode
 * freed in the last minute on each allocation).  At most SPOOL_POOL_MAX
 * files are kept; at start, the r.N files found are adopted, anything
 * else in tmp/ is deleted.
 */
#ifndef RELAYD_SPOOL_H
#define RELAYD_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "envelope.h"

#define SPOOL_POOL_MAX		4096		/* recycled files kept */
#define SPOOL_POOL_FILE_MAX	(256 * 1024)	/* larger ones are deleted */

struct event_base;
struct worker_pool;
struct spool;
struct spool_commit;

#define SPOOL_ID_LEN	16	/* hex characters */

/*
 * Open (creating directories as needed), delete tmp/ leftovers, and check
 * every file in queue/: those that do not parse are moved to quarantine/
 * with a log line.  For each good one, found(id, arg) is called (sorted by
 * ID, so by age).  Returns NULL after printing the problem to err.
 */
struct spool *spool_open(const char *dir, struct event_base *,
	    struct worker_pool *, FILE *err,
	    void (*found)(const char *id, void *arg), void *arg);
void	spool_free(struct spool *);

/* A new unique queue ID (SPOOL_ID_LEN hex characters and a NUL). */
void	spool_id_new(struct spool *, char id[SPOOL_ID_LEN + 1]);

/*
 * Is there room for a message of this many bytes?  Uses a free-space
 * figure refreshed at most once a second.  The caller answers 452 4.3.1
 * when not.
 */
int	spool_has_room(struct spool *, uint64_t bytes);

/*
 * How a batch's file data is made durable before the renames: fdatasync
 * of each file, or one syncfs() of the spool's file system per batch.
 * The default is the one measured faster (docs/operations.md).
 */
enum spool_flush {
	SPOOL_FLUSH_FDATASYNC = 0,
	SPOOL_FLUSH_SYNCFS,
};
#define SPOOL_FLUSH_DEFAULT	SPOOL_FLUSH_SYNCFS
void	spool_set_flush(struct spool *, enum spool_flush);

/*
 * Commit a message: env->id must be set (spool_id_new).  The body buffer's
 * contents are taken (body is left empty).  cb runs on the loop thread
 * with status 0 (durable in queue/) or -1 (nothing left behind; answer
 * 451 4.3.0).  The returned handle lets the owner detach before cb runs;
 * it is freed right after cb would run.  NULL: nothing was queued (out of
 * memory or a bad ID), body is left with the caller, answer 451 4.3.0.
 */
typedef void (*spool_commit_cb)(int status, const char *id, void *arg);
struct spool_commit *spool_commit(struct spool *, const struct envelope *env,
	    struct buf *body, spool_commit_cb cb, void *arg);
/*
 * The same, with header fields to put before the body (the DKIM-Signature,
 * Received and added fields): the message stored is prefix then body, and
 * neither is copied.  Both buffers' contents are taken.
 */
struct spool_commit *spool_commit_prefixed(struct spool *,
	    const struct envelope *, struct buf *prefix, struct buf *body,
	    spool_commit_cb cb, void *arg);
/* The owner is going away: cb will not be called; the commit still ends
 * (and the message is queued if it succeeds). */
void	spool_commit_detach(struct spool_commit *);

/*
 * Tell who to notify about newly committed messages (the queue): queued()
 * runs on the loop thread with the bytes of queue/ID as written (file,
 * malloc'd, the callee's to free; NULL when they could not be kept), so
 * the queue need not read back what it was just given.
 */
void	spool_set_notify(struct spool *, void (*queued)(const char *id,
	    char *file, size_t len, void *arg), void *arg);

/* Paths for a queue ID, for readers (the queue, relayctl). */
int	spool_path(const struct spool *, const char *id, char *out,
	    size_t outlen);
/*
 * Riders: file work that shares the committer's flushes (spool.c: a
 * conveyor of steps, one flush each).  The committer takes every waiting
 * rider with its next step (a step starts for a rider alone if none runs)
 * and calls, on its worker thread:
 *   stage()      in that step, before its flush: write files; returns how
 *                many it wrote (0: nothing to flush for it);
 *   publish()    in the next step (flushed: 1 if the step before made
 *                the staged files durable), before that step's flush:
 *                name the files (a rider whose files are on another file
 *                system than the spool's fsyncs their directory itself,
 *                spool_same_fs());
 *   settle()     after that flush (durable: 1 if it worked; on the
 *                spool's file system it is a syncfs, which covers the
 *                riders' names too): take the messages finished out of
 *                queue/ with spool_unqueue().  Those removals become
 *                durable with the next step's flush (or a flush of
 *                queue/ when no step follows): a crash before may do a
 *                message's work twice, never lose it.  A rider with
 *                neither stage() nor publish() (removals) settles at
 *                once, in a job of its own beside the committer's steps,
 *                so that no commit waits behind it;
 * then, on the loop thread, done() (ran 0: spool_free() found the rider
 * waiting; nothing was called).  stage, publish and settle may be NULL
 * (a rider that only removes has nothing to stage or publish).
 */
struct spool_rider {
	struct spool_rider	*next;
	size_t		(*stage)(struct spool_rider *);
	void		(*publish)(struct spool_rider *, int flushed);
	size_t		(*settle)(struct spool_rider *, int durable);
	void		(*done)(struct spool_rider *, int ran);
};
/* 0, or -1 (out of memory: the rider will not run). */
int	spool_ride(struct spool *, struct spool_rider *);
/* Is the directory fd on the spool's file system? */
int	spool_same_fs(const struct spool *, int fd);
/* From settle(): take messages out of queue/ (recycled or unlinked, with
 * their state/ files) without a flush.  Returns how many went. */
size_t	spool_unqueue(struct spool *, const char *const *ids, size_t n);

/* Remove a delivered message (and its state/ file): recycle or unlink it,
 * and fsync queue/ (worker thread). */
int	spool_remove(struct spool *, const char *id);
/* The same for several messages with one fsync of queue/ (thread-safe). */
int	spool_remove_many(struct spool *, const char *const *ids, size_t n);
/* Read queue/ID whole into a malloc'd buffer (any thread).  0 or -1 with
 * errno set (ENOENT: no such message). */
int	spool_read_file(const struct spool *, const char *id, char **out,
	    size_t *outlen);
/*
 * Delivery state files (state/ID): read whole (any thread; ENOENT: none
 * yet), and write several atomically (worker thread): each to state/ID.tmp,
 * one data flush, renames, one fsync of state/.  ok[i] says which are
 * durable; returns 0 when all are, else -1.
 */
int	spool_state_read(const struct spool *, const char *id, char **out,
	    size_t *outlen);
int	spool_state_write_many(struct spool *, const char *const *ids,
	    const struct buf *const *data, int *ok, size_t n);
/* Move a file aside into quarantine/ with a log line. */
int	spool_quarantine(struct spool *, const char *id, const char *why);
const char *spool_dir(const struct spool *);

#endif

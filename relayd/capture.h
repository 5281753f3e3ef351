/*
 * capture: the delivery mode that writes each message to capture_dir as
 * ID.eml and ID.json (INTERFACE.md) instead of sending it.  Runs on a
 * worker thread; durable like the spool (files fsynced, renamed into place,
 * directory fsynced) before the queue removes the spool file.
 */
#ifndef RELAYD_CAPTURE_H
#define RELAYD_CAPTURE_H

#include <stddef.h>

#include "buf.h"
#include "envelope.h"

/*
 * Write ID.eml (body) and ID.json (recipients with their envelope
 * senders) into dir.  Returns 0, or -1 with errno set.
 */
int	capture_write(const char *dir, const struct envelope *,
	    const char *body, size_t bodylen);

/*
 * The same with a per-recipient envelope sender: senders[i] is the MAIL
 * FROM used for env->rcpts[i] (a VERP address, later); senders NULL, or
 * an entry NULL, means env->mail_from.
 */
int	capture_write_senders(const char *dir, const struct envelope *,
	    const char *const *senders, const char *body, size_t bodylen);

/*
 * The steps of capture_write, for callers that share flushes across a
 * batch (the queue):
 *   fd = capture_open_dir(dir)      creates dir (0700) if missing
 *   capture_stage(fd, ..., &st)     writes both files unnamed (O_TMPFILE,
 *                                   st holds their descriptors) or, where
 *                                   that fails, as ID.eml.tmp and
 *                                   ID.json.tmp; fdatasyncs them when
 *                                   sync_each
 *   (the caller makes the data durable: syncfs once per batch)
 *   capture_publish(fd, id, &st)    names ID.eml, then ID.json
 *   fsync(fd)                       once per batch
 * capture_unstage() drops what is staged after a failure.  Each returns
 * 0 or -1 with errno set; capture_open_dir() returns a descriptor or -1.
 */
struct capture_staged {
	int	 eml, json;	/* unnamed files, or -1 (named .tmp) */
};
int	capture_open_dir(const char *dir);
int	capture_stage(int dirfd, const struct envelope *,
	    const char *const *senders, const char *body, size_t bodylen,
	    int sync_each, struct capture_staged *);
int	capture_publish(int dirfd, const char *id, struct capture_staged *);
void	capture_unstage(int dirfd, const char *id, struct capture_staged *);
/* ID.json's text: {"id": "...", "recipients": [{"rcpt": "...",
 * "mail_from": "..."}, ...]}, appended to out.  0 or -1. */
int	capture_json(const struct envelope *, const char *const *senders,
	    struct buf *out);

#endif

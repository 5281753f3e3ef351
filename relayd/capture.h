/*
 * capture: the delivery mode that writes each message to capture_dir as
 * ID.eml and ID.json (INTERFACE.md) instead of sending it.  Runs on a
 * worker thread; durable like the spool (files fsynced, renamed into place,
 * directory fsynced) before the queue removes the spool file.
 */
#ifndef RELAYD_CAPTURE_H
#define RELAYD_CAPTURE_H

#include <stddef.h>

#include "envelope.h"

/*
 * Write ID.eml (body) and ID.json (recipients with their envelope
 * senders) into dir.  Returns 0, or -1 with errno set.
 */
int	capture_write(const char *dir, const struct envelope *,
	    const char *body, size_t bodylen);

#endif

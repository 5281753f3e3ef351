/*
 * buf: the one growable byte buffer, with a hard maximum.
 *
 * An append that would take the buffer past its maximum (or that cannot
 * allocate) fails with -1 and leaves the buffer exactly as it was.  The
 * buffer owns its memory; buf_clear() releases it.  data is always
 * NUL-terminated after a successful append (the NUL is not counted in len),
 * so text can be used as a C string when it holds no NUL.
 */
#ifndef RELAYD_BUF_H
#define RELAYD_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	buf_init(struct buf *, size_t max);
int	buf_reserve(struct buf *, size_t extra);
int	buf_append(struct buf *, const void *, size_t);
int	buf_append_str(struct buf *, const char *);
int	buf_appendf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_reset(struct buf *);	/* len = 0, memory kept */
void	buf_clear(struct buf *);	/* memory released */
/* Move the contents of src into dst (dst cleared first); src is left empty. */
void	buf_move(struct buf *dst, struct buf *src);

#endif

/*
 * log: one line per event on standard error.
 *
 *   2026-11-22T16:40:00.123Z info ID event key=value ...
 *
 * The ID (session or queue ID, or "-") comes first, then the event name and
 * key=value pairs.  Peer-supplied text must go through log_escape() first.
 * Lines are written with a single write(2), so threads may log.  AUTH
 * payloads and key material are never passed here.
 */
#ifndef RELAYD_LOG_H
#define RELAYD_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#define LOG_LINE_MAX	2048	/* longer lines are cut */
#define LOG_PEER_MAX	200	/* peer text is cut to this many input bytes */

/* Set once at startup (and on reload, between events). */
void	log_set_level(enum log_level);
int	log_level_parse(const char *, enum log_level *);
const char *log_level_name(enum log_level);
int	log_enabled(enum log_level);

void	log_event(enum log_level, const char *id, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
#define log_error(id, ...)	log_event(LOG_LEVEL_ERROR, id, __VA_ARGS__)
#define log_warn(id, ...)	log_event(LOG_LEVEL_WARN, id, __VA_ARGS__)
#define log_info(id, ...)	log_event(LOG_LEVEL_INFO, id, __VA_ARGS__)
#define log_debug(id, ...)	\
	do { if (log_enabled(LOG_LEVEL_DEBUG)) \
		log_event(LOG_LEVEL_DEBUG, id, __VA_ARGS__); } while (0)

/*
 * Escape at most LOG_PEER_MAX bytes of src for a log line, as a quoted
 * string: printable ASCII as is, '"' and '\\' backslashed, everything else
 * as \xNN; "..." is appended when src was cut.  dst always ends in NUL.
 * Returns dst.  A dst of 4 * LOG_PEER_MAX + 8 bytes is always enough.
 */
#define LOG_ESCAPE_SIZE	(4 * LOG_PEER_MAX + 8)
char	*log_escape(char *dst, size_t dstlen, const void *src, size_t srclen);

#endif

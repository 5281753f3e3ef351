/*
 * log: one line per event on standard error (fd 2).
 *
 * Owns nothing but the level, which is set at startup and on reload between
 * events; everything else lives on the caller's stack, so threads may log.
 * Each line is formatted into a LOG_LINE_MAX buffer (longer lines are cut
 * and still end in a newline) and written with a single write(2).
 * Timestamps are UTC, ISO 8601 with milliseconds.  Control characters in
 * the formatted text become '?', so one event is always one line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The one shared variable: atomic so a reload never races a reader. */
static int log_level = LOG_LEVEL_INFO;

static const char *const log_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_set_level(enum log_level lv)
{
	if ((int)lv < LOG_LEVEL_ERROR || lv > LOG_LEVEL_DEBUG)
		lv = LOG_LEVEL_DEBUG;
	__atomic_store_n(&log_level, (int)lv, __ATOMIC_RELAXED);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level lv)
{
	if ((int)lv < LOG_LEVEL_ERROR || lv > LOG_LEVEL_DEBUG)
		return "unknown";
	return log_names[lv];
}

int
log_enabled(enum log_level lv)
{
	return (int)lv <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_event(enum log_level lv, const char *id, const char *fmt, ...)
{
	char		 line[LOG_LINE_MAX];
	struct timespec	 ts;
	struct tm	 tm;
	va_list		 ap;
	size_t		 len, i;
	int		 n;
	ssize_t		 w;

	if (!log_enabled(lv))
		return;
	if (id == NULL || *id == '\0')
		id = "-";
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1) {
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	/* Room for the newline is kept back: size - 1. */
	n = snprintf(line, sizeof(line) - 1,
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000),
	    log_level_name(lv), id);
	if (n < 0)
		return;
	len = (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - 1 - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n;
	/* vsnprintf left at most sizeof(line) - 2 characters: cut there. */
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/*
	 * One event, one line: a control character that slipped past
	 * log_escape() (a caller's bug) cannot start a forged line.
	 */
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	line[len++] = '\n';
	/*
	 * One write per line, so lines from threads never interleave: a
	 * write of at most PIPE_BUF (4096 on Linux >= LOG_LINE_MAX) to a
	 * pipe is atomic.  A failed write is dropped: there is nowhere else
	 * to report it.
	 */
	do {
		w = write(2, line, len);
	} while (w == -1 && errno == EINTR);
}

char *
log_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*s = src;
	size_t			 i, o, take, need;
	int			 cut;
	char			 tmp[4];

	if (dstlen == 0)
		return dst;
	/* Reserve the closing quote, "..." and the NUL. */
	if (dstlen < 1 + 1 + 3 + 1) {
		dst[0] = '\0';
		return dst;
	}
	take = srclen < LOG_PEER_MAX ? srclen : LOG_PEER_MAX;
	cut = take < srclen;
	o = 0;
	dst[o++] = '"';
	for (i = 0; i < take; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)s[i];
			need = 2;
		} else if (s[i] >= 0x20 && s[i] < 0x7f) {
			tmp[0] = (char)s[i];
			need = 1;
		} else {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[s[i] >> 4];
			tmp[3] = hex[s[i] & 0xf];
			need = 4;
		}
		if (o + need + 1 + 3 + 1 > dstlen) {
			/* dst too small: cut here and mark it. */
			cut = 1;
			break;
		}
		memcpy(dst + o, tmp, need);
		o += need;
	}
	dst[o++] = '"';
	if (cut) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

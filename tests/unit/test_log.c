/*
 * test_log: log_escape() (peer text in log lines), level parsing, and the
 * shape of a log line: one line, ID first, control bytes neutralized, cut
 * at LOG_LINE_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

struct esc_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*want;
};

static const struct esc_case esc_cases[] = {
	{ "plain", "alice@example.com", 17, "\"alice@example.com\"" },
	{ "empty", "", 0, "\"\"" },
	{ "quote and backslash", "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
	{ "CR LF", "a\r\nb", 4, "\"a\\x0d\\x0ab\"" },
	{ "NUL", "a\0b", 3, "\"a\\x00b\"" },
	{ "8-bit", "\xc3\xa9", 2, "\"\\xc3\\xa9\"" },
	{ "DEL and tab", "\x7f\t", 2, "\"\\x7f\\x09\"" },
	{ "space kept", "a b", 3, "\"a b\"" },
};

/* Run log_event with stderr sent to a pipe; return what was written. */
static char *
capture(enum log_level lv, const char *id, const char *msg)
{
	static char	 out[LOG_LINE_MAX * 2];
	int		 p[2], saved;
	ssize_t		 n;

	if (pipe(p) == -1)
		return NULL;
	fflush(stderr);
	saved = dup(2);
	dup2(p[1], 2);
	log_event(lv, id, "%s", msg);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	n = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

int
main(void)
{
	char		 dst[LOG_ESCAPE_SIZE], *big, *line;
	enum log_level	 lv;
	size_t		 i;

	for (i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		const struct esc_case *c = &esc_cases[i];

		log_escape(dst, sizeof(dst), c->in, c->inlen);
		ok(strcmp(dst, c->want) == 0, "escape %s: %s", c->name, dst);
	}
	/* Cut at LOG_PEER_MAX input bytes, with "..." after the quote. */
	big = malloc(LOG_PEER_MAX * 3);
	memset(big, 'x', LOG_PEER_MAX * 3);
	log_escape(dst, sizeof(dst), big, LOG_PEER_MAX * 3);
	ok(strlen(dst) == LOG_PEER_MAX + 2 + 3 &&
	    strcmp(dst + LOG_PEER_MAX + 2, "...") == 0,
	    "long peer text cut to %d bytes and marked", LOG_PEER_MAX);
	/* The worst case fits LOG_ESCAPE_SIZE. */
	memset(big, '\x01', LOG_PEER_MAX * 3);
	log_escape(dst, sizeof(dst), big, LOG_PEER_MAX * 3);
	ok(strlen(dst) < LOG_ESCAPE_SIZE && strncmp(dst, "\"\\x01", 5) == 0,
	    "all-control peer text fits LOG_ESCAPE_SIZE");
	/* A small destination still ends in NUL. */
	log_escape(dst, 8, "abcdefghijkl", 12);
	ok(strlen(dst) < 8, "small destination: NUL-terminated (%s)", dst);

	ok(log_level_parse("debug", &lv) == 0 && lv == LOG_LEVEL_DEBUG &&
	    log_level_parse("warn", &lv) == 0 && lv == LOG_LEVEL_WARN &&
	    log_level_parse("verbose", &lv) == -1, "level names");
	ok(strcmp(log_level_name(LOG_LEVEL_ERROR), "error") == 0,
	    "level name of error");

	log_set_level(LOG_LEVEL_INFO);
	ok(!log_enabled(LOG_LEVEL_DEBUG) && log_enabled(LOG_LEVEL_WARN),
	    "info level: debug off, warn on");
	line = capture(LOG_LEVEL_DEBUG, "abc", "hidden");
	ok(line != NULL && line[0] == '\0', "debug line suppressed at info");
	line = capture(LOG_LEVEL_INFO, "0123456789ab", "queued from=<a@b>");
	ok(line != NULL && strstr(line, " info 0123456789ab queued "
	    "from=<a@b>\n") != NULL && strchr(line, '\n') ==
	    line + strlen(line) - 1, "one line, level then ID first: %.*s",
	    line ? (int)strcspn(line, "\n") : 0, line ? line : "");
	line = capture(LOG_LEVEL_WARN, "-", "evil\nfake line\r");
	ok(line != NULL && strchr(line, '\n') == line + strlen(line) - 1 &&
	    strstr(line, "evil?fake line?") != NULL,
	    "control characters in a message cannot start a new line");
	{
		char *huge = malloc(LOG_LINE_MAX * 3);

		memset(huge, 'z', LOG_LINE_MAX * 3 - 1);
		huge[LOG_LINE_MAX * 3 - 1] = '\0';
		line = capture(LOG_LEVEL_ERROR, "-", huge);
		ok(line != NULL && strlen(line) <= LOG_LINE_MAX &&
		    line[strlen(line) - 1] == '\n',
		    "a long line is cut to %d bytes and still ends in LF "
		    "(%zu)", LOG_LINE_MAX, line ? strlen(line) : 0);
		free(huge);
	}
	free(big);
	return tap_done();
}

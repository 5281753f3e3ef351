/*
 * smtp_reply: the incremental parser for SMTP server replies (the client
 * side of RFC 5321 section 4.2), and the escaping of reply text for logs,
 * the spool and delivery reports.
 *
 * Pure: bytes in, replies out; no I/O, no libevent.  The parser is fed
 * whatever arrived and stops after each complete reply, so a caller can
 * act on one reply before looking at the next (pipelining, and the
 * STARTTLS rule that bytes buffered after the 220 are discarded).
 *
 *	struct smtp_reply_parser p;
 *	struct smtp_reply r;
 *	smtp_reply_parser_init(&p);
 *	smtp_reply_init(&r);
 *	switch (smtp_reply_parse(&p, data, len, &used, &r)) {
 *	case SMTP_REPLY_MORE:	all of data consumed, feed more
 *	case SMTP_REPLY_DONE:	r holds a reply; data[used..] is not consumed
 *	case SMTP_REPLY_ERROR:	r holds a synthetic 451 4.5.0 with the reason;
 *				the stream cannot be trusted: close it
 *	}
 *	smtp_reply_clear(&r);
 *	smtp_reply_parser_clear(&p);
 */
#ifndef RELAYD_SMTP_REPLY_H
#define RELAYD_SMTP_REPLY_H

#include <stddef.h>

#include "buf.h"

/*
 * RFC 5321 section 4.5.3.1.5 limits a reply line to 512 octets with the
 * CRLF; real servers exceed it, so accept four times that, and bound the
 * lines of one multiline reply (EHLO answers have about 15).
 */
#define SMTP_REPLY_LINE_MAX	2048	/* octets, CRLF included */
#define SMTP_REPLY_LINES_MAX	100	/* lines per reply */
#define SMTP_ENHANCED_MAX	16	/* "5.123.123" and the NUL fit */

/* The three outcomes of anything that talks to a peer (STYLE.md). */
enum smtp_status {
	SMTP_STATUS_OK = 0,
	SMTP_STATUS_TEMPFAIL,
	SMTP_STATUS_PERMFAIL,
};

const char *smtp_status_name(enum smtp_status);

/*
 * One complete reply.  text holds the lines' text without the code, the
 * separator and, where every line carries it, the enhanced status code;
 * lines are joined by '\n' (a line never holds '\n', CR or NUL).  text.data
 * is a NUL-terminated string owned by the reply.
 */
struct smtp_reply {
	int		 code;			/* 200..599 */
	char		 enhanced[SMTP_ENHANCED_MAX];	/* "5.1.1" or "" */
	unsigned	 nlines;
	struct buf	 text;
};

void	smtp_reply_init(struct smtp_reply *);
void	smtp_reply_clear(struct smtp_reply *);
/* Make r a copy of src (r initialised).  0 or -1 (memory). */
int	smtp_reply_copy(struct smtp_reply *r, const struct smtp_reply *src);
/* 2xx and 3xx OK, 4xx TEMPFAIL, 5xx PERMFAIL, anything else TEMPFAIL. */
enum smtp_status smtp_reply_status(int code);
/* Line i (0-based) of r's text: pointer and length; -1 if i is too big. */
int	smtp_reply_line(const struct smtp_reply *r, unsigned i,
	    const char **line, size_t *len);

enum smtp_reply_rc {
	SMTP_REPLY_MORE = 0,	/* all input consumed; no complete reply yet */
	SMTP_REPLY_DONE,	/* a reply is in *out */
	SMTP_REPLY_ERROR,	/* malformed: *out is a synthetic 451 4.5.0 */
};

struct smtp_reply_parser {
	struct buf	 line;		/* the current, incomplete line */
	struct smtp_reply cur;		/* the reply being assembled */
	int		 failed;	/* an ERROR was returned: sticky */
};

void	smtp_reply_parser_init(struct smtp_reply_parser *);
void	smtp_reply_parser_clear(struct smtp_reply_parser *);

/*
 * Feed len bytes.  Consumes input up to the end of the first complete
 * reply and sets *used to the bytes consumed.  On DONE, *out (initialised
 * by the caller; previous contents released) receives the reply.  A line
 * ends with CRLF; a bare LF is accepted as a line end too (lenient, as
 * Postfix is), a CR elsewhere is malformed.  Malformed: a line shorter than
 * 3 digits, a code outside 200..599, a fourth character other than SP, '-'
 * or end of line, a NUL byte, a line over SMTP_REPLY_LINE_MAX, more than
 * SMTP_REPLY_LINES_MAX lines, or a continuation line whose code differs
 * from the first line's.  After ERROR every later call returns ERROR.
 */
enum smtp_reply_rc smtp_reply_parse(struct smtp_reply_parser *,
	    const void *data, size_t len, size_t *used, struct smtp_reply *out);

/*
 * Write the reply as one printable line for a log, the spool or a DSN:
 * "550 5.1.1 first line / second line", bytes outside printable ASCII
 * and '\\' as \xNN / "\\\\", cut with "..." to fit dstlen (the NUL
 * included).  Returns dst.  dstlen >= 16 always gives a useful answer.
 */
char	*smtp_reply_format(const struct smtp_reply *, char *dst, size_t dstlen);

/*
 * Escape len bytes of arbitrary text the same way (no code prefix, no
 * quotes), cut with "..." to fit dstlen.  Returns dst.
 */
char	*smtp_reply_escape(char *dst, size_t dstlen, const void *src,
	    size_t len);

#endif

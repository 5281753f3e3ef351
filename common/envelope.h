/*
 * envelope: the spool file format, a pure serializer and parser.
 *
 * A spool file is:
 *
 *   "RELAYD-SPOOL 1\n"
 *   records, each  TAG ' ' LENGTH '\n' BYTES '\n'
 *   the last record is "end" whose value is the decimal byte offset at which
 *   the "end" record starts (so a torn or truncated file never parses).
 *
 * TAG is lower-case letters; LENGTH is decimal without leading zeros (or
 * "0").  Values are length-prefixed, so CR, LF or NUL inside a value can
 * never inject a record.  Known tags, in this order:
 *
 *   id      queue ID (once)
 *   time    arrival, seconds since the epoch (once)
 *   user    authenticated account (once; may be empty)
 *   client  client address (once)
 *   helo    HELO/EHLO name (once)
 *   from    envelope sender as received, "" for <> (once)
 *   flags   decimal bit set: 1 = 8BITMIME, 2 = SMTPUTF8 (once)
 *   rcpt    a recipient (one or more, in order)
 *   bounce  the bounce domain of the VERP envelope senders (optional, once;
 *           absent: deliver with the original MAIL FROM)
 *   body    the message, CRLF line ends, not dot-stuffed (once)
 *   end
 *
 * Unknown tags before "body" are skipped (newer versions may add some).
 */
#ifndef RELAYD_ENVELOPE_H
#define RELAYD_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define ENVELOPE_MAGIC		"RELAYD-SPOOL 1\n"
#define ENVELOPE_ID_MAX		32
#define ENVELOPE_FLAG_8BIT	1
#define ENVELOPE_FLAG_SMTPUTF8	2

struct envelope {
	char	 id[ENVELOPE_ID_MAX + 1];
	int64_t	 time;
	char	*user;
	char	*client;
	char	*helo;
	char	*mail_from;	/* "" for the null sender */
	unsigned flags;
	char	**rcpts;
	size_t	 nrcpts;
	char	*bounce_domain;	/* NULL: no VERP rewriting */
};

/* Frees the strings and the rcpts array; the struct itself is the
 * caller's. */
void	envelope_clear(struct envelope *);
/* Add a copy of a recipient.  Returns 0 or -1 (out of memory). */
int	envelope_add_rcpt(struct envelope *, const char *);

/*
 * The file is written in three parts so the body need not be copied:
 * envelope_write_head() appends the magic, the envelope records and the
 * "body LENGTH\n" line; then come the bodylen body bytes; then
 * envelope_write_tail() appends the "\n" closing the body record and the
 * end record, given the number of bytes before it (head + body).
 * envelope_serialize() does all three into one buffer (tests, small files).
 * Each returns 0, or -1 when out's maximum would be exceeded.
 */
int	envelope_write_head(const struct envelope *, size_t bodylen,
	    struct buf *out);
int	envelope_write_tail(size_t head_and_body_len, struct buf *out);
int	envelope_serialize(const struct envelope *, const void *body,
	    size_t bodylen, struct buf *out);
/*
 * Parse a whole file.  Strict: the magic, every length, the record order
 * and the end record are checked against n.  On success fills env (the
 * caller clears it) and points *body into p.  Returns 0 or -1.
 */
int	envelope_parse(const void *p, size_t n, struct envelope *env,
	    const char **body, size_t *bodylen);

#endif

/*
 * smtp_data: the DATA framer (RFC 5321 section 4.1.1.4 and 4.5.2).
 *
 * A streaming state machine: feed it the bytes that follow the 354 reply in
 * chunks of any size; it writes the message (dot-unstuffed, CRLF line ends)
 * into an output buffer and says when the terminating CRLF "." CRLF was
 * seen.  Pure: no I/O, no allocation besides the output buffer.
 *
 * Only CRLF "." CRLF ends the data (the first line may be "." CRLF at once,
 * meaning an empty message).  A bare LF, or a CR not followed by LF, is
 * either an error (SMTP_DATA_ERR_BARE_NL) or, with normalize, turned into
 * CRLF in the output; in both modes it never ends the data and a "." after
 * it is ordinary content (neither end of data nor unstuffed), so no
 * sequence like LF.LF, LF.CRLF, CR.CR or CRLF.LF can end the data (SMTP
 * smuggling, CVE-2023-51764).
 *
 * The first error is kept; after an error the framer stops writing output
 * but keeps scanning to the real end of data, so the session stays in sync.
 * Limits: NUL bytes, line length (unstuffed, without CRLF), message size
 * (output bytes), header section size, and the number of Received fields
 * in the header section (loop detection, RFC 5321 6.3).
 */
#ifndef RELAYD_SMTP_DATA_H
#define RELAYD_SMTP_DATA_H

#include <stddef.h>

#include "buf.h"

enum smtp_data_error {
	SMTP_DATA_OK = 0,
	SMTP_DATA_ERR_BARE_NL,		/* 550 5.5.2 */
	SMTP_DATA_ERR_NUL,		/* 550 5.6.0 */
	SMTP_DATA_ERR_LINE_TOO_LONG,	/* 550 5.6.0 */
	SMTP_DATA_ERR_TOO_BIG,		/* 552 5.3.4 */
	SMTP_DATA_ERR_HEADER_TOO_BIG,	/* 552 5.3.4 */
	SMTP_DATA_ERR_LOOP,		/* 554 5.4.6 too many Received */
	SMTP_DATA_ERR_NOMEM,		/* 451 4.3.0 */
};

struct smtp_data_limits {
	size_t		 message_size;	/* max output bytes */
	size_t		 line_length;	/* max octets per line, CRLF excluded */
	size_t		 header_size;	/* max bytes of the header section */
	unsigned	 max_received;	/* more Received fields is a loop */
	int		 normalize;	/* bare CR/LF become CRLF, not an error */
};

struct smtp_data {
	struct smtp_data_limits	 lim;
	struct buf		*out;
	int			 state;		/* private */
	size_t			 line_len;	/* private */
	size_t			 header_len;	/* private */
	int			 in_header;	/* private */
	unsigned		 received;	/* Received fields seen */
	char			 name[16];	/* private: field name so far */
	size_t			 name_len;	/* private */
	size_t			 total_in;	/* raw bytes consumed */
	int			 eightbit;	/* saw a byte >= 0x80 */
	enum smtp_data_error	 error;
};

/* out must be empty; its max should be at least lim->message_size. */
void	smtp_data_init(struct smtp_data *, const struct smtp_data_limits *,
	    struct buf *out);
/*
 * Consume up to n bytes.  Returns how many were consumed; sets *done to 1
 * when the terminating CRLF "." CRLF has been consumed (bytes after it are
 * left for the command parser).  Check ->error after done.
 */
size_t	smtp_data_feed(struct smtp_data *, const char *p, size_t n, int *done);
const char *smtp_data_error_name(enum smtp_data_error);

#endif

/*
 * mailbox: the one strict RFC 5322 parser of the sender fields of a
 * header section (DESIGN.md invariant 2).  Its single result drives the
 * ownership check, the DKIM d= and the bounce domain; no other code
 * re-parses From, Sender, Resent-From or Resent-Sender.
 *
 * Anything two reasonable parsers could read differently is refused with
 * 550 5.6.0 and a reason a human can act on, never guessed:
 *
 *   - the header section: a NUL anywhere, a bare CR or LF, a line that is
 *     not a field ("NAME:" with NAME of printable ASCII other than ':'),
 *     a folded line with no field before it, or a folded line of white
 *     space only (readers that trim lines take it for the end of the
 *     header section, and would not see the fields after it);
 *   - field names compare case-insensitively; white space between the
 *     name and the colon (RFC 5322 4.5.8 obs-optional, also after a fold)
 *     makes the section invalid: "From :" is From to some readers and not
 *     a field at all to others (DKIM verifiers);
 *   - From must occur exactly once; Sender, Resent-From and Resent-Sender
 *     at most once each (a message with several Resent blocks is refused);
 *   - each value must be exactly one mailbox (RFC 5322 3.4), either a bare
 *     addr-spec with optional comments around it or an optional display
 *     name and "<addr-spec>" with optional comments after it.  Refused: an
 *     empty value, a list (','), a group (':' or ';', even with one
 *     member), "<>", a route ("<@a,@b:x@y>"), white space or comments
 *     inside the angle brackets or around '@', several angle addresses,
 *     text after the address, an encoded-word ("=?") anywhere in the
 *     addr-spec, an address literal domain ("[192.0.2.1]"), dots that do
 *     not separate atoms (".a", "a..b", "a."), a trailing dot on the
 *     domain, a display name with an unquoted special ('@', '[', ']', '\',
 *     or a '.' before its first word), unbalanced quotes, comments or
 *     brackets, comments nested deeper than MAILBOX_COMMENT_DEPTH, a local
 *     part over 64 octets, a domain label over 63 or a domain over 253,
 *     a value over MAILBOX_VALUE_MAX octets after unfolding;
 *   - ASCII control characters other than tab are refused in sender
 *     fields (obs-qtext and obs-ctext are not accepted);
 *   - 8-bit bytes anywhere in a sender field need utf8_ok (the message
 *     came with SMTPUTF8, RFC 6532) and must then be valid UTF-8 without
 *     C1 controls.  A non-ASCII domain label is converted to its A-label
 *     ("xn--" + Punycode, RFC 3492) from its code points as written: no
 *     IDNA mapping or normalization is applied, so a domain not written
 *     in the canonical form gives an A-label no grant names and is refused
 *     as not owned (fails closed).  The ideographic and full-width dots
 *     (U+3002, U+FF0E, U+FF61), which IDNA readers take for '.', are
 *     refused in domains.
 *
 * Comments are never the address: "(me@mine) them@theirs" is
 * them@theirs.  The display text returned for the display-name check is
 * the display name followed by the text of every comment (some readers
 * show a comment as the name), RFC 2047 encoded-words (B and Q) decoded
 * wherever they appear and converted from their charset to UTF-8, so that
 * what is checked is what a reader shows (UTF-16 or UTF-7 could hide an
 * "@" from a byte scan).  An encoded-word in a charset that cannot be read
 * (unknown to glibc's iconv, or invalid text in it) is refused (5.6.0).
 *
 * Pure functions: no I/O, no globals; charsets other than us-ascii,
 * utf-8 and iso-8859-1 go through iconv(3), which allocates.
 */
#ifndef RELAYD_MAILBOX_H
#define RELAYD_MAILBOX_H

#include <stddef.h>

#define MAILBOX_VALUE_MAX	2048	/* octets of one sender value, unfolded */
#define MAILBOX_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1, as written */
#define MAILBOX_DOMAIN_MAX	253	/* RFC 1035 2.3.4, no trailing dot */
#define MAILBOX_LABEL_MAX	63
#define MAILBOX_COMMENT_DEPTH	8
#define MAILBOX_DISPLAY_MAX	MAILBOX_VALUE_MAX
#define MAILBOX_REASON_MAX	160

enum mailbox_field {
	MAILBOX_FROM = 0,
	MAILBOX_SENDER,
	MAILBOX_RESENT_FROM,
	MAILBOX_RESENT_SENDER,
	MAILBOX_NFIELDS
};

enum mailbox_verdict {
	MAILBOX_OK = 0,
	MAILBOX_PERMFAIL	/* 550 5.6.0 with reason */
};

struct mailbox {
	/* The local part without quotes and quoted-pairs ("a@b"@c.com gives
	 * a@b), the one grants compare; no NUL inside. */
	char	 local[MAILBOX_LOCAL_MAX + 1];
	size_t	 local_len;
	/* The local part as written (quotes included). */
	char	 local_raw[MAILBOX_LOCAL_MAX + 1];
	/* The domain as A-labels, ASCII lower case, no trailing dot: the one
	 * to use for grants, DKIM d= and the bounce domain. */
	char	 domain[MAILBOX_DOMAIN_MAX + 1];
	/* The domain as written (UTF-8 when utf8 is set). */
	char	 domain_raw[MAILBOX_DOMAIN_MAX + 1];
	int	 utf8;		/* 8-bit bytes in the address */
	/* Decoded display name and comment text (see above); may hold any
	 * byte, NUL included: use display_len and escape before logging. */
	char	 display[MAILBOX_DISPLAY_MAX + 1];
	size_t	 display_len;
};

struct sender_field {
	unsigned	 count;		/* fields with this name */
	int		 present;	/* count == 1 and mb is valid */
	struct mailbox	 mb;
};

struct sender_headers {
	enum mailbox_verdict	 verdict;
	enum mailbox_field	 bad;		/* field at fault (PERMFAIL) */
	char			 status[8];	/* "5.6.0" or "2.0.0" */
	char			 reason[MAILBOX_REASON_MAX];
	size_t			 header_len;	/* through the empty line */
	struct sender_field	 f[MAILBOX_NFIELDS];
};

/*
 * Scan a header section: hdr holds len bytes starting at the first field
 * (the whole message may be passed; scanning stops after the empty line,
 * or at len when there is none).  Fills out and returns out->verdict:
 * MAILBOX_OK when there is exactly one From field and every sender field
 * present holds exactly one well-formed mailbox (f[MAILBOX_FROM].mb is
 * then the From mailbox), else MAILBOX_PERMFAIL with out->status "5.6.0",
 * out->bad and out->reason (a sentence without the code, e.g. "From
 * header has 2 fields; exactly one is allowed").  Ownership is not
 * checked here (grant.h).
 */
enum mailbox_verdict mailbox_parse_headers(const char *hdr, size_t len,
		    int utf8_ok, struct sender_headers *out);

/*
 * Parse one unfolded field value (len bytes, no CR or LF).  Returns
 * MAILBOX_OK and fills mb, or MAILBOX_PERMFAIL with a reason (without the
 * field name) in reason.
 */
enum mailbox_verdict mailbox_parse_value(const char *value, size_t len,
		    int utf8_ok, struct mailbox *mb, char *reason, size_t cap);

/* "From", "Sender", "Resent-From", "Resent-Sender". */
const char	*mailbox_field_name(enum mailbox_field);

/*
 * Decode RFC 2047 encoded-words (B and Q, converted to UTF-8) found
 * anywhere in src, dropping white space between adjacent encoded-words;
 * malformed ones are copied as they are.  Writes at most cap - 1 bytes
 * and a NUL.  Returns the length, -1 when cap is too small, or -2 for an
 * encoded-word in a charset that cannot be read.
 */
int	mailbox_decode_2047(const char *src, size_t len, char *dst,
	    size_t cap);

#endif

/*
 * smtp_cmd: parse one SMTP command line (RFC 5321 section 4.1) and the
 * paths and parameters of MAIL and RCPT.  Pure functions of bytes: no I/O,
 * no allocation, no globals.
 *
 * The caller strips the CRLF and enforces SMTP_CMD_LINE_MAX before calling.
 */
#ifndef RELAYD_SMTP_CMD_H
#define RELAYD_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.4: 512 octets including the CRLF. */
#define SMTP_CMD_LINE_MAX	512
/* RFC 5321 4.5.3.1.1 and 4.5.3.1.2. */
#define SMTP_LOCAL_MAX		64
#define SMTP_DOMAIN_MAX		255
/* RFC 5321 4.5.3.1.3: 256 octets including the angle brackets. */
#define SMTP_PATH_MAX		256

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_HTTP,		/* GET, POST, HEAD, PUT, CONNECT, OPTIONS */
	SMTP_VERB_COUNT
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*args;	/* after the verb and one space; may be "" */
	size_t		 argslen;
};

/*
 * Split a line into verb and arguments.  The verb is matched
 * case-insensitively and must be followed by end of line or a single
 * space (anything else is SMTP_VERB_UNKNOWN).  Returns 0, or -1 when the
 * line contains a NUL, CR, LF or other control byte other than tab
 * (the caller answers 500 5.5.2).
 */
int	smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);
const char *smtp_verb_name(enum smtp_verb);

enum smtp_parse {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX,	/* 501 5.5.2 (MAIL) / 501 5.1.3 (bad address) */
	SMTP_PARSE_BAD_ADDRESS,	/* 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
	SMTP_PARSE_TOO_LONG,	/* 501 5.5.4 path, local part or domain too long */
	SMTP_PARSE_NEED_UTF8,	/* 553 5.6.7 non-ASCII address without SMTPUTF8 */
	SMTP_PARSE_BAD_PARAM,	/* 555 5.5.4 unknown or malformed parameter */
};

struct smtp_path {
	char	 addr[SMTP_PATH_MAX + 1];	/* without <>, NUL-terminated */
	size_t	 len;
	size_t	 at;		/* index of the '@' splitting local and domain */
	int	 null;		/* the null path <> (MAIL only) */
};

enum smtp_body { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_params {
	uint64_t	 size;		/* SIZE=, RFC 1870; 0 when absent */
	int		 has_size;
	enum smtp_body	 body;		/* BODY=, RFC 6152 */
	int		 smtputf8;	/* SMTPUTF8, RFC 6531 */
};

/*
 * Parse the arguments of MAIL ("FROM:<path> [params]") or RCPT
 * ("TO:<path> [params]").  The keyword compares case-insensitively; one
 * optional space after the colon is tolerated (many clients send it).
 * The path must be in angle brackets; source routes (RFC 5321 C.) are
 * accepted and dropped for RCPT and MAIL.  The local part is a dot-string
 * or a quoted string, the domain a hostname of letters, digits and hyphens
 * or an address literal.  Non-ASCII bytes are accepted only when
 * utf8_ok (RFC 6531; MAIL sets it with the SMTPUTF8 parameter itself) and
 * then must be valid UTF-8.  RCPT accepts no parameters
 * (SMTP_PARSE_BAD_PARAM).  "<>" is accepted for MAIL only.  RCPT also
 * accepts the special "<Postmaster>" without a domain.
 */
enum smtp_parse	smtp_parse_mail(const char *args, size_t len,
		    struct smtp_path *, struct smtp_mail_params *);
enum smtp_parse	smtp_parse_rcpt(const char *args, size_t len, int utf8_ok,
		    struct smtp_path *);

#endif

/*
 * fuzz_smtp_cmd: libFuzzer target for smtp_cmd_parse(), smtp_parse_mail()
 * and smtp_parse_rcpt().  The whole input is one command line (cut to
 * SMTP_CMD_LINE_MAX as the session does); MAIL and RCPT arguments are
 * parsed too, and the raw input is also parsed as MAIL and RCPT arguments
 * directly.  Aborts when a parsed path breaks the header's promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_path(const struct smtp_path *p, int mail, int utf8)
{
	size_t	 i;

	if (p->null) {
		if (!mail || p->len != 0 || p->addr[0] != '\0')
			abort();
		return;
	}
	if (p->len == 0 || p->len > SMTP_PATH_MAX - 2 ||
	    strlen(p->addr) != p->len || p->at > p->len)
		abort();
	if (p->at < p->len) {
		if (p->addr[p->at] != '@' || p->at == 0 ||
		    p->at > SMTP_LOCAL_MAX || p->len - p->at - 1 == 0 ||
		    p->len - p->at - 1 > SMTP_DOMAIN_MAX)
			abort();
	} else if (mail || strcasecmp(p->addr, "postmaster") != 0)
		abort();
	for (i = 0; i < p->len; i++) {
		unsigned char c = (unsigned char)p->addr[i];

		if (c < 0x20 || c == 0x7f)
			abort();
		if (c >= 0x80 && !utf8)
			abort();
	}
}

/* An accepted address, put back in brackets, parses to itself. */
static void
reparse(const struct smtp_path *p, int mail, int utf8)
{
	char			 args[SMTP_PATH_MAX + 32];
	struct smtp_path	 q;
	struct smtp_mail_params	 mp;
	int			 n;
	enum smtp_parse		 r;

	n = snprintf(args, sizeof(args), "%s<%s>%s", mail ? "FROM:" : "TO:",
	    p->addr, mail && utf8 ? " SMTPUTF8" : "");
	if (n < 0 || (size_t)n >= sizeof(args))
		abort();
	if (mail)
		r = smtp_parse_mail(args, (size_t)n, &q, &mp);
	else
		r = smtp_parse_rcpt(args, (size_t)n, utf8, &q);
	if (r != SMTP_PARSE_OK || q.len != p->len || q.at != p->at ||
	    q.null != p->null || strcmp(q.addr, p->addr) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*line = (const char *)data;
	struct smtp_cmd		 cmd;
	struct smtp_path	 path;
	struct smtp_mail_params	 mp;
	size_t			 len = size;
	int			 utf8 = size > 0 && (data[0] & 1);

	if (len > SMTP_CMD_LINE_MAX - 2)
		len = SMTP_CMD_LINE_MAX - 2;
	if (smtp_cmd_parse(line, len, &cmd) == 0) {
		if (cmd.verb >= SMTP_VERB_COUNT ||
		    cmd.args < line || cmd.args + cmd.argslen > line + len)
			abort();
		(void)smtp_verb_name(cmd.verb);
		if (cmd.verb == SMTP_VERB_MAIL &&
		    smtp_parse_mail(cmd.args, cmd.argslen, &path, &mp) ==
		    SMTP_PARSE_OK)
			check_path(&path, 1, mp.smtputf8);
		if (cmd.verb == SMTP_VERB_RCPT &&
		    smtp_parse_rcpt(cmd.args, cmd.argslen, utf8, &path) ==
		    SMTP_PARSE_OK)
			check_path(&path, 0, utf8);
	}
	/* The raw bytes as arguments, any length. */
	if (smtp_parse_mail(line, size, &path, &mp) == SMTP_PARSE_OK) {
		check_path(&path, 1, mp.smtputf8);
		reparse(&path, 1, mp.smtputf8);
		if (mp.has_size && mp.size > INT64_MAX)
			abort();
	}
	if (smtp_parse_rcpt(line, size, utf8, &path) == SMTP_PARSE_OK) {
		check_path(&path, 0, utf8);
		reparse(&path, 0, utf8);
	}
	return 0;
}

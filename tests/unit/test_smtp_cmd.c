/*
 * test_smtp_cmd: the command line splitter and the MAIL / RCPT path and
 * parameter parser, table-driven.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp_cmd.h"
#include "tap.h"

#define S(x)	x, sizeof(x) - 1

static const struct {
	const char	*line;
	size_t		 len;
	int		 rc;
	enum smtp_verb	 verb;
	const char	*args;
} lines[] = {
	{ S("EHLO client.example"), 0, SMTP_VERB_EHLO, "client.example" },
	{ S("ehlo client.example"), 0, SMTP_VERB_EHLO, "client.example" },
	{ S("HeLo x"), 0, SMTP_VERB_HELO, "x" },
	{ S("MAIL FROM:<a@b.example>"), 0, SMTP_VERB_MAIL,
	    "FROM:<a@b.example>" },
	{ S("rcpt TO:<a@b>"), 0, SMTP_VERB_RCPT, "TO:<a@b>" },
	{ S("DATA"), 0, SMTP_VERB_DATA, "" },
	{ S("data "), 0, SMTP_VERB_DATA, "" },
	{ S("RSET"), 0, SMTP_VERB_RSET, "" },
	{ S("NOOP hello"), 0, SMTP_VERB_NOOP, "hello" },
	{ S("QUIT"), 0, SMTP_VERB_QUIT, "" },
	{ S("VRFY x"), 0, SMTP_VERB_VRFY, "x" },
	{ S("EXPN x"), 0, SMTP_VERB_EXPN, "x" },
	{ S("HELP"), 0, SMTP_VERB_HELP, "" },
	{ S("StartTLS"), 0, SMTP_VERB_STARTTLS, "" },
	{ S("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 0, SMTP_VERB_AUTH,
	    "PLAIN AGFsaWNlAHNlY3JldA==" },
	{ S("BDAT 100 LAST"), 0, SMTP_VERB_BDAT, "100 LAST" },
	{ S("GET / HTTP/1.1"), 0, SMTP_VERB_HTTP, "/ HTTP/1.1" },
	{ S("POST /x HTTP/1.0"), 0, SMTP_VERB_HTTP, "/x HTTP/1.0" },
	{ S("CONNECT host:25 HTTP/1.1"), 0, SMTP_VERB_HTTP,
	    "host:25 HTTP/1.1" },
	{ S("HEAD /"), 0, SMTP_VERB_HTTP, "/" },
	{ S("PUT /"), 0, SMTP_VERB_HTTP, "/" },
	{ S("OPTIONS *"), 0, SMTP_VERB_HTTP, "*" },
	{ S("MAILX FROM:<a@b>"), 0, SMTP_VERB_UNKNOWN, NULL },
	{ S("MAIL\tFROM:<a@b>"), 0, SMTP_VERB_UNKNOWN, NULL },
	{ S("XYZZY"), 0, SMTP_VERB_UNKNOWN, NULL },
	{ S(""), 0, SMTP_VERB_UNKNOWN, NULL },
	{ S(" MAIL"), 0, SMTP_VERB_UNKNOWN, NULL },
	{ S("MAIL  FROM:<a@b>"), 0, SMTP_VERB_MAIL, " FROM:<a@b>" },
	{ S("NOOP a\tb"), 0, SMTP_VERB_NOOP, "a\tb" },
	{ S("NOOP \xc3\xa9"), 0, SMTP_VERB_NOOP, "\xc3\xa9" },
	{ S("NOOP a\0b"), -1, 0, NULL },
	{ S("NOOP a\rb"), -1, 0, NULL },
	{ S("NOOP a\nb"), -1, 0, NULL },
	{ S("NOOP \x1b[0m"), -1, 0, NULL },
	{ S("NOOP \x7f"), -1, 0, NULL },
	{ S("QUIT\r"), -1, 0, NULL },
};

#define R_OK	SMTP_PARSE_OK
#define R_SYN	SMTP_PARSE_SYNTAX
#define R_ADDR	SMTP_PARSE_BAD_ADDRESS
#define R_LONG	SMTP_PARSE_TOO_LONG
#define R_UTF8	SMTP_PARSE_NEED_UTF8
#define R_PARAM	SMTP_PARSE_BAD_PARAM

struct pcase {
	int		 rcpt;		/* 0 MAIL, 1 RCPT */
	int		 utf8_ok;	/* RCPT only */
	const char	*args;
	enum smtp_parse	 want;
	const char	*addr;		/* when OK: expected address */
	size_t		 at;
	int		 null;
	int		 has_size;
	uint64_t	 size;
	enum smtp_body	 body;
	int		 smtputf8;
};

static const struct pcase pcases[] = {
	/* Good MAIL. */
	{ 0, 0, "FROM:<alice@example.com>", R_OK, "alice@example.com", 5 },
	{ 0, 0, "from:<alice@example.com>", R_OK, "alice@example.com", 5 },
	{ 0, 0, "FROM: <alice@example.com>", R_OK, "alice@example.com", 5 },
	{ 0, 0, "FROM:<>", R_OK, "", 0, 1 },
	{ 0, 0, "FROM:<> SIZE=100", R_OK, "", 0, 1, 1, 100 },
	{ 0, 0, "FROM:<a@b.example> SIZE=0", R_OK, "a@b.example", 1, 0, 1, 0 },
	{ 0, 0, "FROM:<a@b.example> SIZE=9223372036854775807", R_OK,
	    "a@b.example", 1, 0, 1, INT64_MAX },
	{ 0, 0, "FROM:<a@b.example> BODY=8BITMIME", R_OK, "a@b.example", 1,
	    0, 0, 0, SMTP_BODY_8BITMIME },
	{ 0, 0, "FROM:<a@b.example> body=7bit size=5", R_OK, "a@b.example", 1,
	    0, 1, 5, SMTP_BODY_7BIT },
	{ 0, 0, "FROM:<a@b.example> SMTPUTF8", R_OK, "a@b.example", 1,
	    0, 0, 0, 0, 1 },
	{ 0, 0, "FROM:<a@b.example> SIZE=1 BODY=8BITMIME SMTPUTF8", R_OK,
	    "a@b.example", 1, 0, 1, 1, SMTP_BODY_8BITMIME, 1 },
	{ 0, 0, "FROM:<a@b.example> AUTH=<>", R_OK, "a@b.example", 1 },
	{ 0, 0, "FROM:<a@b.example> AUTH=a+2Bb@c", R_OK, "a@b.example", 1 },
	{ 0, 0, "FROM:<a@b.example> ", R_OK, "a@b.example", 1 },
	{ 0, 0, "FROM:<a@b.example>   ", R_OK, "a@b.example", 1 },
	{ 0, 0, "FROM:<a@b.example> SIZE=10  ", R_OK, "a@b.example", 1, 0, 1,
	    10 },
	{ 0, 0, "FROM:<first.last+tag@sub.example.co.uk>", R_OK,
	    "first.last+tag@sub.example.co.uk", 14 },
	{ 0, 0, "FROM:<!#$%&'*+-/=?^_`{|}~@x.y>", R_OK,
	    "!#$%&'*+-/=?^_`{|}~@x.y", 19 },
	{ 0, 0, "FROM:<\"john doe\"@example.com>", R_OK,
	    "\"john doe\"@example.com", 10 },
	{ 0, 0, "FROM:<\"a\\\"b@c\"@example.com>", R_OK,
	    "\"a\\\"b@c\"@example.com", 8 },
	{ 0, 0, "FROM:<\"\"@example.com>", R_OK, "\"\"@example.com", 2 },
	{ 0, 0, "FROM:<\"a>b\"@example.com>", R_OK, "\"a>b\"@example.com", 5 },
	{ 0, 0, "FROM:<a@[192.0.2.1]>", R_OK, "a@[192.0.2.1]", 1 },
	{ 0, 0, "FROM:<a@[IPv6:2001:db8::1]>", R_OK, "a@[IPv6:2001:db8::1]",
	    1 },
	{ 0, 0, "FROM:<a@[x-tag:abc]>", R_OK, "a@[x-tag:abc]", 1 },
	{ 0, 0, "FROM:<@relay.example:a@b.example>", R_OK, "a@b.example", 1 },
	{ 0, 0, "FROM:<@r1.example,@r2.example:a@b.example>", R_OK,
	    "a@b.example", 1 },
	{ 0, 0, "FROM:<a@xn--bcher-kva.example>", R_OK,
	    "a@xn--bcher-kva.example", 1 },
	{ 0, 0, "FROM:<a@1-2.3com>", R_OK, "a@1-2.3com", 1 },
	{ 0, 0, "FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8", R_OK,
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example", 5, 0, 0, 0, 0, 1 },
	{ 0, 0, "FROM:<\"\xe2\x82\xac\"@x.example> SMTPUTF8", R_OK,
	    "\"\xe2\x82\xac\"@x.example", 5, 0, 0, 0, 0, 1 },
	{ 0, 0, "FROM:<\xf0\x9f\x98\x80@x.example> SMTPUTF8", R_OK,
	    "\xf0\x9f\x98\x80@x.example", 4, 0, 0, 0, 0, 1 },

	/* Bad MAIL: structure. */
	{ 0, 0, "FROM:alice@example.com", R_SYN },
	{ 0, 0, "FROM:<alice@example.com", R_SYN },
	{ 0, 0, "FROM:", R_SYN },
	{ 0, 0, "FROM", R_SYN },
	{ 0, 0, "TO:<a@b>", R_SYN },
	{ 0, 0, "FROM :<a@b>", R_SYN },
	{ 0, 0, "FROM:  <a@b>", R_SYN },
	{ 0, 0, "", R_SYN },
	{ 0, 0, "FROM:<a@b.example>x", R_SYN },
	{ 0, 0, "FROM:<a@b.example>SIZE=1", R_SYN },
	{ 0, 0, "FROM:<a@b.example>>", R_SYN },
	{ 0, 0, "FROM:<\"abc@b.example>", R_SYN },

	/* Bad MAIL: addresses. */
	{ 0, 0, "FROM:<alice>", R_ADDR },
	{ 0, 0, "FROM:<Postmaster>", R_ADDR },
	{ 0, 0, "FROM:<@example.com>", R_ADDR },
	{ 0, 0, "FROM:<a@>", R_ADDR },
	{ 0, 0, "FROM:<a@@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a b@c.example>", R_ADDR },
	{ 0, 0, "FROM:<.a@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a.@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a..b@c.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b..example>", R_ADDR },
	{ 0, 0, "FROM:<a@.b.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b.example.>", R_ADDR },
	{ 0, 0, "FROM:<a@-b.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b-.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b_c.example>", R_ADDR },
	{ 0, 0, "FROM:<a(c)@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b.example,c@d.example>", R_ADDR },
	{ 0, 0, "FROM:<a@[192.0.2.256]>", R_ADDR },
	{ 0, 0, "FROM:<a@[192.0.2]>", R_ADDR },
	{ 0, 0, "FROM:<a@[1.2.3.4.5]>", R_ADDR },
	{ 0, 0, "FROM:<a@[IPv6:2001:db8::g]>", R_ADDR },
	{ 0, 0, "FROM:<a@[]>", R_ADDR },
	{ 0, 0, "FROM:<a@[:x]>", R_ADDR },
	{ 0, 0, "FROM:<a@[192.0.2.1>", R_SYN },
	{ 0, 0, "FROM:<@relay.example a@b.example>", R_ADDR },
	{ 0, 0, "FROM:<@relay..example:a@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a\x01@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b\x7f.example>", R_ADDR },
	{ 0, 0, "FROM:<\"a\tb\"@b.example>", R_ADDR },
	{ 0, 0, "FROM:<\"a\\\x01\"@b.example>", R_ADDR },
	{ 0, 0, "FROM:<a@b.example\r>", R_ADDR },
	{ 0, 0, "FROM:<a@b\0.example>", R_ADDR },

	/* Lengths (RFC 5321 4.5.3.1): 64, 255, 256. */
	{ 0, 0, "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@b.example>", R_OK,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@b.example", 64 },
	{ 0, 0, "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@b.example>", R_LONG },
	{ 0, 0, "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb>",
	    R_LONG },

	/* UTF-8 (RFC 6531). */
	{ 0, 0, "FROM:<j\xc3\xb6rg@example.com>", R_UTF8 },
	{ 0, 0, "FROM:<a@b\xc3\xbc" "cher.example>", R_UTF8 },
	{ 0, 0, "FROM:<\xc0\xaf@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<\xe0\x80\xaf@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<\xed\xa0\x80@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<\xf4\x90\x80\x80@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<\xc3@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<\xff@x.example> SMTPUTF8", R_ADDR },
	{ 0, 0, "FROM:<a@[192.0.2.\xc3\xa9]> SMTPUTF8", R_ADDR },

	/* Parameters. */
	{ 0, 0, "FROM:<a@b.example> SIZE=", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE=-1", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE=1k", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE=9223372036854775808", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE=99999999999999999999999", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SIZE=1 SIZE=1", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> BODY=BINARYMIME", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> BODY=", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> BODY=7BIT BODY=7BIT", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SMTPUTF8=yes", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> SMTPUTF8 SMTPUTF8", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> RET=FULL", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> X-UNKNOWN", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> =x", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> AUTH=", R_PARAM },
	{ 0, 0, "FROM:<a@b.example> AUTH=a+zz", R_PARAM },

	/* RCPT. */
	{ 1, 0, "TO:<bob@example.net>", R_OK, "bob@example.net", 3 },
	{ 1, 0, "to: <bob@example.net>", R_OK, "bob@example.net", 3 },
	{ 1, 0, "TO:<bob@example.net>  ", R_OK, "bob@example.net", 3 },
	{ 1, 0, "TO:<Postmaster>", R_OK, "Postmaster", 10 },
	{ 1, 0, "TO:<POSTMASTER>", R_OK, "POSTMASTER", 10 },
	{ 1, 0, "TO:<postmaster@example.net>", R_OK, "postmaster@example.net",
	    10 },
	{ 1, 0, "TO:<@hop.example:bob@example.net>", R_OK, "bob@example.net",
	    3 },
	{ 1, 0, "TO:<>", R_ADDR },
	{ 1, 0, "TO:<bob>", R_ADDR },
	{ 1, 0, "TO:<Postmasters>", R_ADDR },
	{ 1, 0, "TO:bob@example.net", R_SYN },
	{ 1, 0, "FROM:<bob@example.net>", R_SYN },
	{ 1, 0, "TO:<bob@example.net> NOTIFY=NEVER", R_PARAM },
	{ 1, 0, "TO:<bob@example.net> SIZE=1", R_PARAM },
	{ 1, 0, "TO:<b\xc3\xb6" "b@example.net>", R_UTF8 },
	{ 1, 1, "TO:<b\xc3\xb6" "b@example.net>", R_OK,
	    "b\xc3\xb6" "b@example.net",
	    4 },
	{ 1, 1, "TO:<b\xc3" "b@example.net>", R_ADDR },
	{ 1, 0, "TO:<bob@example.net\x01>", R_ADDR },
};

static void
cmd_lines(void)
{
	struct smtp_cmd	 c;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		memset(&c, 0, sizeof(c));
		rc = smtp_cmd_parse(lines[i].line, lines[i].len, &c);
		if (lines[i].rc == -1) {
			ok(rc == -1, "line %zu refused (control byte)", i);
			continue;
		}
		ok(rc == 0 && c.verb == lines[i].verb &&
		    (lines[i].args == NULL ||
		    (c.argslen == strlen(lines[i].args) &&
		    memcmp(c.args, lines[i].args, c.argslen) == 0)),
		    "line %zu \"%.*s\": verb %s args \"%.*s\"", i,
		    (int)lines[i].len, lines[i].line, smtp_verb_name(c.verb),
		    (int)c.argslen, c.args);
	}
	ok(strcmp(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS") == 0 &&
	    strcmp(smtp_verb_name(SMTP_VERB_HTTP), "HTTP") == 0 &&
	    strcmp(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN") == 0,
	    "verb names");
}

static void
paths(void)
{
	const struct pcase	*p;
	struct smtp_path	 path;
	struct smtp_mail_params	 mp;
	enum smtp_parse		 r;
	size_t			 i, len;
	int			 good;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		p = &pcases[i];
		/* The table uses C strings; NUL cases measure past it. */
		len = strlen(p->args);
		if (strcmp(p->args, "FROM:<a@b") == 0)
			len = sizeof("FROM:<a@b\0.example>") - 1;
		memset(&mp, 0xa5, sizeof(mp));
		if (p->rcpt)
			r = smtp_parse_rcpt(p->args, len, p->utf8_ok, &path);
		else
			r = smtp_parse_mail(p->args, len, &path, &mp);
		good = r == p->want;
		if (good && r == SMTP_PARSE_OK) {
			good = path.null == p->null &&
			    strcmp(path.addr, p->addr) == 0 &&
			    path.len == strlen(p->addr) && path.at == p->at;
			if (!p->rcpt)
				good = good && mp.has_size == p->has_size &&
				    mp.size == p->size && mp.body == p->body &&
				    mp.smtputf8 == p->smtputf8;
		}
		ok(good, "%s %zu \"%s\": result %d want %d addr \"%s\" at %zu",
		    p->rcpt ? "RCPT" : "MAIL", i, p->args, r, p->want,
		    r == SMTP_PARSE_OK ? path.addr : "", path.at);
	}
}

/* Path limit: 256 octets with the brackets, generated. */
static void
path_limit(void)
{
	char			 args[600], exp[300];
	struct smtp_path	 path;
	struct smtp_mail_params	 mp;
	size_t			 n, dom;
	enum smtp_parse		 r;

	/* local part 64 + '@' + domain: brackets make it 256 / 257. */
	for (dom = 189; dom <= 190; dom++) {
		n = (size_t)snprintf(args, sizeof(args), "FROM:<");
		memset(args + n, 'l', 64);
		n += 64;
		args[n++] = '@';
		/* Labels of 63, dots between. */
		memset(args + n, 'd', dom);
		args[n + 63] = '.';
		args[n + 127] = '.';
		n += dom;
		args[n++] = '>';
		args[n] = '\0';
		r = smtp_parse_mail(args, n, &path, &mp);
		if (dom == 189) {
			memcpy(exp, args + 6, n - 7);
			exp[n - 7] = '\0';
			ok(r == SMTP_PARSE_OK && path.len == 254 &&
			    strcmp(path.addr, exp) == 0,
			    "path of 256 octets accepted (%d)", r);
		} else
			ok(r == SMTP_PARSE_TOO_LONG,
			    "path of 257 octets too long (%d)", r);
	}
}

/* Domain and label limits, generated. */
static void
domain_limits(void)
{
	char			 args[700];
	struct smtp_path	 path;
	struct smtp_mail_params	 mp;
	size_t			 n, k;
	enum smtp_parse		 r;

	/* A 63-octet label is fine, 64 is not (RFC 1035 2.3.4). */
	for (k = 63; k <= 64; k++) {
		n = (size_t)snprintf(args, sizeof(args), "FROM:<a@");
		memset(args + n, 'x', k);
		n += k;
		n += (size_t)snprintf(args + n, sizeof(args) - n, ".example>");
		r = smtp_parse_mail(args, n, &path, &mp);
		ok(r == (k == 63 ? SMTP_PARSE_OK : SMTP_PARSE_BAD_ADDRESS),
		    "label of %zu octets: %d", k, r);
	}
	/* A source-route domain of 255 octets parses; 256 is too long. */
	for (k = 255; k <= 256; k++) {
		n = (size_t)snprintf(args, sizeof(args), "TO:<@");
		memset(args + n, 'r', k);
		args[n + 63] = args[n + 127] = args[n + 191] = '.';
		args[n + 250] = '.';
		n += k;
		n += (size_t)snprintf(args + n, sizeof(args) - n, ":a@b>");
		r = smtp_parse_rcpt(args, n, 0, &path);
		/* 255 still makes a path over 256 octets. */
		ok(r == SMTP_PARSE_TOO_LONG, "route domain of %zu: %d", k, r);
	}
	n = (size_t)snprintf(args, sizeof(args), "TO:<@");
	memset(args + n, 'r', 240);
	args[n + 63] = args[n + 127] = args[n + 191] = '.';
	n += 240;
	n += (size_t)snprintf(args + n, sizeof(args) - n, ":a@b>");
	r = smtp_parse_rcpt(args, n, 0, &path);
	ok(r == SMTP_PARSE_OK && strcmp(path.addr, "a@b") == 0,
	    "route domain of 240 in a 250-octet path: %d", r);
}

int
main(void)
{
	cmd_lines();
	paths();
	path_limit();
	domain_limits();
	return tap_done();
}

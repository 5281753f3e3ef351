/*
 * test_smtp_reply: the SMTP reply parser (whole input, byte by byte and
 * pipelined), status classes, and the escaping of reply text.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"
#include "tap.h"

#define DONE	SMTP_REPLY_DONE
#define MORE	SMTP_REPLY_MORE
#define ERR	SMTP_REPLY_ERROR

static const struct {
	const char	*name;
	const char	*in;
	int		 rc;
	int		 code;
	const char	*enh;
	unsigned	 nlines;
	const char	*text;
	size_t		 used;	/* bytes consumed by the first reply */
} cases[] = {
	{ "banner", "220 mx.test ESMTP\r\n", DONE, 220, "", 1,
	    "mx.test ESMTP", 19 },
	{ "enhanced", "250 2.1.0 Ok\r\n", DONE, 250, "2.1.0", 1, "Ok", 14 },
	{ "enhanced 3 digits", "550 5.123.456 no\r\n", DONE, 550,
	    "5.123.456", 1, "no", 18 },
	{ "enhanced wrong class kept as text", "550 4.1.1 x\r\n", DONE, 550,
	    "", 1, "4.1.1 x", 13 },
	{ "enhanced 4 digits kept as text", "550 5.1234.1 x\r\n", DONE, 550,
	    "", 1, "5.1234.1 x", 16 },
	{ "enhanced glued kept as text", "550 5.1.1x\r\n", DONE, 550, "", 1,
	    "5.1.1x", 12 },
	{ "enhanced alone", "250 2.0.0\r\n", DONE, 250, "2.0.0", 1, "", 11 },
	{ "bare code", "250\r\n", DONE, 250, "", 1, "", 5 },
	{ "code and space", "250 \r\n", DONE, 250, "", 1, "", 6 },
	{ "bare LF", "250 ok\n", DONE, 250, "", 1, "ok", 7 },
	{ "multiline EHLO",
	    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	    "250 8BITMIME\r\n",
	    DONE, 250, "", 4, "mx.test\nPIPELINING\nSIZE 1000\n8BITMIME", 58 },
	{ "multiline enhanced on every line",
	    "550-5.1.1 no such\r\n550 5.1.1 user\r\n", DONE, 550, "5.1.1", 2,
	    "no such\nuser", 35 },
	{ "multiline enhanced on the first line only",
	    "550-5.1.1 no such\r\n550 user\r\n", DONE, 550, "5.1.1", 2,
	    "no such\nuser", 29 },
	{ "pipelined: first reply only", "250 2.1.0 a\r\n250 2.1.5 b\r\n",
	    DONE, 250, "2.1.0", 1, "a", 13 },
	{ "incomplete line", "250 ok", MORE, 0, "", 0, "", 6 },
	{ "incomplete multiline", "250-a\r\n250-b\r\n", MORE, 0, "", 0, "",
	    14 },
	{ "empty input", "", MORE, 0, "", 0, "", 0 },
	{ "tab in text", "250 a\tb\r\n", DONE, 250, "", 1, "a\tb", 9 },
	{ "8-bit text", "250 caf\xc3\xa9\r\n", DONE, 250, "", 1,
	    "caf\xc3\xa9", 11 },
	{ "code 599", "599 x\r\n", DONE, 599, "", 1, "x", 7 },
	{ "code 199", "199 x\r\n", ERR, 451, "4.5.0", 1, NULL, 7 },
	{ "code 600", "600 x\r\n", ERR, 451, "4.5.0", 1, NULL, 7 },
	{ "code 099", "099 x\r\n", ERR, 451, "4.5.0", 1, NULL, 7 },
	{ "two digits", "25\r\n", ERR, 451, "4.5.0", 1, NULL, 4 },
	{ "letters", "abc def\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
	{ "bad separator", "250x ok\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
	{ "four digits", "2500 ok\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
	{ "empty line", "\r\n", ERR, 451, "4.5.0", 1, NULL, 2 },
	{ "code changes", "250-a\r\n251 b\r\n", ERR, 451, "4.5.0", 1, NULL,
	    14 },
	{ "class changes", "250-a\r\n550 b\r\n", ERR, 451, "4.5.0", 1, NULL,
	    14 },
	{ "CR inside", "250 a\rb\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
	{ "NUL inside", "250 a\0b\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
	{ "space before code", " 250 ok\r\n", ERR, 451, "4.5.0", 1, NULL, 9 },
};

static size_t
case_len(const char *s, size_t hint)
{
	/* The NUL case: the table string holds a NUL, so use the hint. */
	return strlen(s) < hint ? hint : strlen(s);
}

static void
check(int i, const char *how, int rc, const struct smtp_reply *r,
    size_t used)
{
	ok(rc == cases[i].rc, "%s %s: rc %d", cases[i].name, how, rc);
	ok(used == cases[i].used, "%s %s: used %zu", cases[i].name, how, used);
	if (rc == MORE)
		return;
	ok(r->code == cases[i].code && strcmp(r->enhanced, cases[i].enh) == 0 &&
	    r->nlines == cases[i].nlines, "%s %s: %d %s %u", cases[i].name,
	    how, r->code, r->enhanced, r->nlines);
	if (cases[i].text != NULL)
		ok(strcmp(r->text.len ? r->text.data : "", cases[i].text) == 0,
		    "%s %s: text", cases[i].name, how);
	else
		ok(strncmp(r->text.data, "malformed reply from server: ",
		    29) == 0, "%s %s: error text %s", cases[i].name, how,
		    r->text.data);
}

static void
test_table(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply	 r;
	size_t			 i, len, used, off, u;
	int			 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = case_len(cases[i].in, cases[i].used);
		/* All at once. */
		smtp_reply_parser_init(&p);
		smtp_reply_init(&r);
		rc = smtp_reply_parse(&p, cases[i].in, len, &used, &r);
		check(i, "whole", rc, &r, used);
		smtp_reply_clear(&r);
		smtp_reply_parser_clear(&p);
		/* One byte at a time, up to the end of the first reply. */
		smtp_reply_parser_init(&p);
		smtp_reply_init(&r);
		rc = MORE;
		for (off = 0; off < len && rc == MORE; off++) {
			rc = smtp_reply_parse(&p, cases[i].in + off, 1, &u,
			    &r);
			if (u != 1)
				break;
		}
		check(i, "bytewise", rc, &r, rc == MORE ? off : off + u - 1);
		smtp_reply_clear(&r);
		smtp_reply_parser_clear(&p);
	}
}

static void
test_stream(void)
{
	static const char	 in[] = "220 hi\r\n250-x\r\n250 2.0.0 y\r\n"
	    "354 go\r\n250 2.0.0 Ok: queued\r\n";
	static const int	 codes[] = { 220, 250, 354, 250 };
	struct smtp_reply_parser p;
	struct smtp_reply	 r;
	size_t			 off = 0, used;
	int			 n = 0, rc;

	smtp_reply_parser_init(&p);
	smtp_reply_init(&r);
	while (off < sizeof(in) - 1 && n < 10) {
		rc = smtp_reply_parse(&p, in + off, sizeof(in) - 1 - off,
		    &used, &r);
		off += used;
		if (rc != DONE)
			break;
		ok(r.code == codes[n], "stream reply %d: %d", n, r.code);
		n++;
	}
	ok(n == 4 && off == sizeof(in) - 1, "stream: 4 replies, all bytes");
	/* Sticky error. */
	rc = smtp_reply_parse(&p, "xx\r\n", 4, &used, &r);
	ok(rc == ERR, "error on garbage");
	rc = smtp_reply_parse(&p, "250 ok\r\n", 8, &used, &r);
	ok(rc == ERR && used == 0, "error is sticky");
	smtp_reply_clear(&r);
	smtp_reply_parser_clear(&p);
}

static void
test_limits(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply	 r;
	char			*big;
	size_t			 used, i, n;
	int			 rc;

	/* A line of exactly SMTP_REPLY_LINE_MAX octets with CRLF. */
	big = malloc(SMTP_REPLY_LINE_MAX * (SMTP_REPLY_LINES_MAX + 2));
	if (big == NULL) {
		ok(0, "malloc");
		return;
	}
	memcpy(big, "250 ", 4);
	memset(big + 4, 'a', SMTP_REPLY_LINE_MAX - 6);
	memcpy(big + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
	smtp_reply_parser_init(&p);
	smtp_reply_init(&r);
	rc = smtp_reply_parse(&p, big, SMTP_REPLY_LINE_MAX, &used, &r);
	ok(rc == DONE && r.text.len == SMTP_REPLY_LINE_MAX - 6,
	    "line of the maximum length");
	smtp_reply_parser_clear(&p);
	/* One more octet. */
	memcpy(big, "250 ", 4);
	memset(big + 4, 'a', SMTP_REPLY_LINE_MAX - 5);
	memcpy(big + SMTP_REPLY_LINE_MAX - 1, "\r\n", 2);
	smtp_reply_parser_init(&p);
	rc = smtp_reply_parse(&p, big, SMTP_REPLY_LINE_MAX + 1, &used, &r);
	ok(rc == ERR && r.code == 451 && strcmp(r.enhanced, "4.5.0") == 0 &&
	    strstr(r.text.data, "line too long") != NULL,
	    "line over the maximum: 451 4.5.0 line too long");
	smtp_reply_parser_clear(&p);
	/* Too long without any newline yet, fed in pieces. */
	smtp_reply_parser_init(&p);
	memset(big, 'a', SMTP_REPLY_LINE_MAX + 10);
	memcpy(big, "250 ", 4);
	rc = MORE;
	for (i = 0; i < SMTP_REPLY_LINE_MAX + 10 && rc == MORE; i += 100)
		rc = smtp_reply_parse(&p, big + i, 100, &used, &r);
	ok(rc == ERR, "unterminated long line caught on partial input");
	smtp_reply_parser_clear(&p);
	/* SMTP_REPLY_LINES_MAX lines pass, one more fails. */
	for (n = SMTP_REPLY_LINES_MAX; n <= SMTP_REPLY_LINES_MAX + 1; n++) {
		for (i = 0; i < n; i++)
			memcpy(big + i * 7, i + 1 < n ? "250-ab\n" : "250 ab\n",
			    7);
		smtp_reply_parser_init(&p);
		rc = smtp_reply_parse(&p, big, n * 7, &used, &r);
		if (n == SMTP_REPLY_LINES_MAX)
			ok(rc == DONE && r.nlines == n, "%zu lines pass", n);
		else
			ok(rc == ERR && strstr(r.text.data, "too many lines"),
			    "%zu lines fail", n);
		smtp_reply_parser_clear(&p);
	}
	smtp_reply_clear(&r);
	free(big);
}

static void
test_status_and_lines(void)
{
	static const struct {
		int		 code;
		enum smtp_status s;
	} st[] = {
		{ 250, SMTP_STATUS_OK }, { 354, SMTP_STATUS_OK },
		{ 421, SMTP_STATUS_TEMPFAIL }, { 452, SMTP_STATUS_TEMPFAIL },
		{ 550, SMTP_STATUS_PERMFAIL }, { 0, SMTP_STATUS_TEMPFAIL },
		{ 199, SMTP_STATUS_TEMPFAIL },
	};
	struct smtp_reply_parser p;
	struct smtp_reply	 r, c;
	const char		*l;
	size_t			 i, len, used;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		ok(smtp_reply_status(st[i].code) == st[i].s, "status of %d",
		    st[i].code);
	smtp_reply_parser_init(&p);
	smtp_reply_init(&r);
	smtp_reply_init(&c);
	smtp_reply_parse(&p, "250-a\r\n250-\r\n250 ccc\r\n", 22, &used, &r);
	ok(smtp_reply_line(&r, 0, &l, &len) == 0 && len == 1 && *l == 'a',
	    "line 0");
	ok(smtp_reply_line(&r, 1, &l, &len) == 0 && len == 0, "line 1 empty");
	ok(smtp_reply_line(&r, 2, &l, &len) == 0 && len == 3 &&
	    memcmp(l, "ccc", 3) == 0, "line 2");
	ok(smtp_reply_line(&r, 3, &l, &len) == -1, "line 3 absent");
	ok(smtp_reply_copy(&c, &r) == 0 && c.code == 250 && c.nlines == 3 &&
	    strcmp(c.text.data, "a\n\nccc") == 0, "copy");
	smtp_reply_clear(&c);
	smtp_reply_clear(&r);
	smtp_reply_parser_clear(&p);
}

static void
test_format(void)
{
	static const struct {
		const char	*in;
		size_t		 dstlen;
		const char	*want;
	} fc[] = {
		{ "550-5.1.1 no such\r\n550 5.1.1 user\r\n", 100,
		    "550 5.1.1 no such / user" },
		{ "250 ok\r\n", 100, "250 ok" },
		{ "250\r\n", 100, "250" },
		{ "451 4.7.1 caf\xc3\xa9 \\ \"q\"\r\n", 100,
		    "451 4.7.1 caf\\xc3\\xa9 \\\\ \"q\"" },
		{ "451 4.7.1 \x1b[31mred\r\n", 100, "451 4.7.1 \\x1b[31mred" },
		{ "550 5.0.0 abcdefghijkl\r\n", 20, "550 5.0.0 abcdef..." },
		{ "550 5.0.0 abcdefgh\r\n", 19, "550 5.0.0 abcdefgh" },
	};
	struct smtp_reply_parser p;
	struct smtp_reply	 r;
	char			 dst[100];
	size_t			 i, used;

	for (i = 0; i < sizeof(fc) / sizeof(fc[0]); i++) {
		smtp_reply_parser_init(&p);
		smtp_reply_init(&r);
		smtp_reply_parse(&p, fc[i].in, strlen(fc[i].in), &used, &r);
		smtp_reply_format(&r, dst, fc[i].dstlen);
		ok(strcmp(dst, fc[i].want) == 0, "format %zu: %s", i, dst);
		smtp_reply_clear(&r);
		smtp_reply_parser_clear(&p);
	}
	ok(strcmp(smtp_reply_escape(dst, 9, "\x01\x02", 2), "\\x01\\x02") ==
	    0, "escape exact fit");
	ok(strcmp(smtp_reply_escape(dst, 8, "\x01\x02x", 3), "\\x01...") ==
	    0, "escape cut");
	ok(strcmp(smtp_reply_escape(dst, 3, "abcdef", 6), "ab") == 0 ||
	    strcmp(dst, "") == 0 || strlen(dst) < 3, "escape tiny buffer");
}

int
main(void)
{
	test_table();
	test_stream();
	test_limits();
	test_status_and_lines();
	test_format();
	return tap_done();
}

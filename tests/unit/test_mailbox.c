/*
 * test_mailbox: the strict sender-field parser, as a table of header
 * sections with the expected verdict, enhanced status code, field at fault
 * or parsed mailbox, plus a timing loop (printed as a TAP comment).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mailbox.h"
#include "grant.h"
#include "verp.h"
#include "tap.h"

#define H(s)	s, sizeof(s) - 1
#define OK	MAILBOX_OK
#define FAIL	MAILBOX_PERMFAIL
#define F	MAILBOX_FROM
#define S	MAILBOX_SENDER
#define RF	MAILBOX_RESENT_FROM
#define RS	MAILBOX_RESENT_SENDER

struct tcase {
	const char		*name;
	const char		*hdr;
	size_t			 len;
	int			 utf8;
	enum mailbox_verdict	 verdict;
	enum mailbox_field	 field;	/* at fault, or the one to check */
	const char		*expect;	/* reason fragment, or local */
	const char		*domain;	/* expected A-label domain */
	const char		*display;	/* fragment of the display text */
};

static const struct tcase cases[] = {
	/* Accepted forms. */
	{ "bare addr-spec", H("From: alice@example.com\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", NULL },
	{ "display name and angle address",
	    H("From: Alice <alice@example.com>\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", "Alice" },
	{ "field name in lower case", H("from: alice@example.com\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", NULL },
	{ "no space after colon", H("FROM:alice@example.com\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", NULL },
	{ "quoted display name",
	    H("From: \"Alice Smith\" <alice@example.com>\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", "Alice Smith" },
	{ "comment before address is not the address",
	    H("From: (me@mine.example) them@theirs.example\r\n\r\n"), 0,
	    OK, F, "them", "theirs.example", "me@mine.example" },
	{ "comment after address is not the address",
	    H("From: them@theirs.example (me@mine.example)\r\n\r\n"), 0,
	    OK, F, "them", "theirs.example", "me@mine.example" },
	{ "folded value",
	    H("From: Alice\r\n <alice@example.com>\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", "Alice" },
	{ "quoted local part containing @",
	    H("From: \"a@b\"@example.com\r\n\r\n"), 0,
	    OK, F, "a@b", "example.com", NULL },
	{ "quoted-pair in quoted local part",
	    H("From: \"a\\\"b\"@example.com\r\n\r\n"), 0,
	    OK, F, "a\"b", "example.com", NULL },
	{ "comma inside quoted display name",
	    H("From: \"Smith, John\" <js@example.com>\r\n\r\n"), 0,
	    OK, F, "js", "example.com", "Smith, John" },
	{ "B encoded-word in display name is decoded",
	    H("From: =?utf-8?B?Q0VPIDxjZW9AYmFuay5jb20+?= <a@example.com>\r\n"
	    "\r\n"), 0, OK, F, "a", "example.com", "CEO <ceo@bank.com>" },
	{ "Q encoded-word in display name, decoded to UTF-8",
	    H("From: =?iso-8859-1?Q?Andr=E9?= <andre@example.com>\r\n\r\n"),
	    0, OK, F, "andre", "example.com", "Andr\xc3\xa9" },
	{ "UTF-16 encoded-word decoded (an @ cannot hide in it)",
	    H("From: =?utf-16be?b?AGMAZQBvAEAAZQB2AGkAbAAuAGMAbwBt?= "
	    "<a@example.com>\r\n\r\n"), 0, OK, F, "a", "example.com",
	    "ceo@evil.com" },
	{ "UTF-7 encoded-word decoded",
	    H("From: =?utf-7?q?ceo+AEA-evil.com?= <a@example.com>\r\n\r\n"),
	    0, OK, F, "a", "example.com", "ceo@evil.com" },
	{ "KOI8-R encoded-word decoded",
	    H("From: =?koi8-r?b?8NLJ18XU?= <a@example.com>\r\n\r\n"),
	    0, OK, F, "a", "example.com",
	    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
	{ "unknown charset refused",
	    H("From: =?x-unheard-of?q?boss?= <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "charset that cannot be read", NULL, NULL },
	{ "invalid UTF-8 in a utf-8 encoded-word refused",
	    H("From: =?utf-8?q?a=FFb?= <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "charset that cannot be read", NULL, NULL },
	{ "8-bit byte in a us-ascii encoded-word refused",
	    H("From: =?us-ascii?q?a=E9?= <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "charset that cannot be read", NULL, NULL },
	{ "adjacent encoded-words are joined",
	    H("From: =?utf-8?q?a?= =?utf-8?q?b?= <x@example.com>\r\n\r\n"), 0,
	    OK, F, "x", "example.com", "ab" },
	{ "encoded @ in display name is decoded",
	    H("From: =?utf-8?q?me=40evil.example?= <a@example.com>\r\n\r\n"),
	    0, OK, F, "a", "example.com", "me@evil.example" },
	{ "domain case folded, local part case kept",
	    H("From: Alice <Alice@EXAMPLE.COM>\r\n\r\n"), 0,
	    OK, F, "Alice", "example.com", NULL },
	{ "obs-phrase with a dot",
	    H("From: J. Public <jp@example.com>\r\n\r\n"), 0,
	    OK, F, "jp", "example.com", "J. Public" },
	{ "From and Sender",
	    H("From: a@example.com\r\nSender: b@example.com\r\n\r\n"), 0,
	    OK, S, "b", "example.com", NULL },
	{ "Resent-From and Resent-Sender",
	    H("From: a@example.com\r\nResent-From: r@example.com\r\n"
	    "Resent-Sender: rs@example.org\r\n\r\n"), 0,
	    OK, RS, "rs", "example.org", NULL },
	{ "SMTPUTF8 local part and IDN domain",
	    H("From: Jos\xc3\xa9 <jos\xc3\xa9@b\xc3\xbc" "cher.example>\r\n\r\n"),
	    1, OK, F, "jos\xc3\xa9", "xn--bcher-kva.example", "Jos\xc3\xa9" },
	{ "look-alike Cyrillic domain with SMTPUTF8 is a different domain",
	    H("From: a@ex\xd0\xb0mple.com\r\n\r\n"), 1,
	    OK, F, "a", "xn--exmple-4nf.com", NULL },
	{ "body is not scanned",
	    H("Subject: x\r\nFrom: a@example.com\r\nTo: b@x.example\r\n\r\n"
	    "From: evil@x.example\r\n"), 0, OK, F, "a", "example.com", NULL },
	{ "X-From is another field",
	    H("X-From: evil@x.example\r\nFrom: a@example.com\r\n\r\n"), 0,
	    OK, F, "a", "example.com", NULL },
	{ "header section without body",
	    H("From: a@example.com\r\n"), 0,
	    OK, F, "a", "example.com", NULL },
	{ "nested comment",
	    H("From: a@example.com (x (y) z)\r\n\r\n"), 0,
	    OK, F, "a", "example.com", "x (y) z" },
	{ "comment after angle address",
	    H("From: \"Alice\" <alice@example.com> (work)\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", "Alice work" },
	{ "plus tag", H("From: a+tag@example.com\r\n\r\n"), 0,
	    OK, F, "a+tag", "example.com", NULL },
	{ "angle address alone", H("From: <a@example.com>\r\n\r\n"), 0,
	    OK, F, "a", "example.com", NULL },
	{ "quoted local part with space",
	    H("From: \"john smith\"@example.com\r\n\r\n"), 0,
	    OK, F, "john smith", "example.com", NULL },

	{ "value folded right after the colon",
	    H("From:\r\n alice@example.com\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", NULL },
	{ "quoted display name folded inside the quotes",
	    H("From: \"Alice\r\n Smith\" <alice@example.com>\r\n\r\n"), 0,
	    OK, F, "alice", "example.com", "Alice Smith" },
	{ "Resent-From with SMTPUTF8 domain",
	    H("From: a@example.com\r\nResent-From: r@\xd0\xbf\xd1\x80\xd0\xb8"
	    "\xd0\xbc\xd0\xb5\xd1\x80.example\r\n\r\n"), 1,
	    OK, RF, "r", "xn--e1afmkfd.example", NULL },

	/* Field counting. */
	{ "no From", H("Subject: x\r\n\r\n"), 0,
	    FAIL, F, "no From header", NULL, NULL },
	{ "two From fields",
	    H("From: a@example.com\r\nFrom: b@evil.example\r\n\r\n"), 0,
	    FAIL, F, "occurs 2 times", NULL, NULL },
	{ "From with space before colon refused",
	    H("From: a@example.com\r\nFrom : evil@y.example\r\n\r\n"), 0,
	    FAIL, F, "white space before its colon", NULL, NULL },
	{ "lower-case from with tab before colon refused",
	    H("From: a@example.com\r\nfrom\t: b@y.example\r\n\r\n"), 0,
	    FAIL, F, "white space before its colon", NULL, NULL },
	{ "folded field name refused",
	    H("From: a@example.com\r\nFrom\r\n : evil@y.example\r\n\r\n"), 0,
	    FAIL, F, "white space before its colon", NULL, NULL },
	{ "a lone From with space before colon is refused too",
	    H("From : a@example.com\r\n\r\n"), 0,
	    FAIL, F, "white space before its colon", NULL, NULL },
	{ "any field with space before colon is refused",
	    H("From: a@example.com\r\nSubject : hi\r\n\r\n"), 0,
	    FAIL, F, "white space before its colon", NULL, NULL },
	{ "field name with inner space",
	    H("Fr om: evil@y.example\r\nFrom: a@example.com\r\n\r\n"), 0,
	    FAIL, F, "not a valid field", NULL, NULL },
	{ "line without colon",
	    H("Hello world\r\nFrom: a@example.com\r\n\r\n"), 0,
	    FAIL, F, "not a valid field", NULL, NULL },
	{ "starts with a folded line",
	    H(" From: a@example.com\r\n\r\n"), 0,
	    FAIL, F, "folded line", NULL, NULL },
	{ "two Sender fields",
	    H("From: a@example.com\r\nSender: a@example.com\r\n"
	    "Sender: b@y.example\r\n\r\n"), 0,
	    FAIL, S, "Sender header occurs 2", NULL, NULL },
	{ "two Resent-From fields",
	    H("From: a@example.com\r\nResent-From: a@example.com\r\n"
	    "Resent-From: b@y.example\r\n\r\n"), 0,
	    FAIL, RF, "Resent-From header occurs 2", NULL, NULL },

	{ "white-space-only folded line hides a From from trimming readers",
	    H("Subject: x\r\n \r\nFrom: evil@y.example\r\n\r\n"), 0,
	    FAIL, F, "only white space", NULL, NULL },
	{ "tab-only folded line",
	    H("From: a@example.com\r\nX-A: b\r\n\t\t\r\n\r\n"), 0,
	    FAIL, F, "only white space", NULL, NULL },

	/* One mailbox. */
	{ "empty value", H("From:\r\n\r\n"), 0,
	    FAIL, F, "empty", NULL, NULL },
	{ "white space value", H("From:   \r\n\r\n"), 0,
	    FAIL, F, "empty", NULL, NULL },
	{ "comment-only value", H("From: (nobody)\r\n\r\n"), 0,
	    FAIL, F, "empty", NULL, NULL },
	{ "list of addr-specs",
	    H("From: a@example.com, b@y.example\r\n\r\n"), 0,
	    FAIL, F, "list", NULL, NULL },
	{ "list of name-addrs",
	    H("From: A <a@example.com>, B <b@y.example>\r\n\r\n"), 0,
	    FAIL, F, "list", NULL, NULL },
	{ "group with one member",
	    H("From: Team: a@example.com;\r\n\r\n"), 0,
	    FAIL, F, "group", NULL, NULL },
	{ "empty group", H("From: undisclosed-recipients:;\r\n\r\n"), 0,
	    FAIL, F, "group", NULL, NULL },
	{ "null address", H("From: <>\r\n\r\n"), 0,
	    FAIL, F, "<> is empty", NULL, NULL },
	{ "route address",
	    H("From: <@a.example,@b.example:x@y.example>\r\n\r\n"), 0,
	    FAIL, F, "source route", NULL, NULL },
	{ "single-hop route",
	    H("From: <@a.example:x@y.example>\r\n\r\n"), 0,
	    FAIL, F, "source route", NULL, NULL },
	{ "encoded-word as local part",
	    H("From: =?utf-8?q?evil?=@example.com\r\n\r\n"), 0,
	    FAIL, F, "encoded-word", NULL, NULL },
	{ "encoded-word in angle address",
	    H("From: Alice <=?utf-8?q?a?=@example.com>\r\n\r\n"), 0,
	    FAIL, F, "encoded-word", NULL, NULL },
	{ "encoded-word in quoted local part",
	    H("From: \"=?utf-8?q?a?=\"@example.com\r\n\r\n"), 0,
	    FAIL, F, "encoded-word", NULL, NULL },
	{ "encoded-word after domain",
	    H("From: <a@example.com=?utf-8?q?x?=>\r\n\r\n"), 0,
	    FAIL, F, "encoded-word", NULL, NULL },
	{ "trailing address after angle address",
	    H("From: <a@example.com> evil@y.example\r\n\r\n"), 0,
	    FAIL, F, "after the address", NULL, NULL },
	{ "two bare addresses",
	    H("From: a@example.com b@y.example\r\n\r\n"), 0,
	    FAIL, F, "after the address", NULL, NULL },
	{ "two angle addresses",
	    H("From: A <a@example.com> <b@y.example>\r\n\r\n"), 0,
	    FAIL, F, "several angle", NULL, NULL },
	{ "phrase then bare address",
	    H("From: Name a@example.com\r\n\r\n"), 0,
	    FAIL, F, "inside the address", NULL, NULL },
	{ "NUL in From value",
	    H("From: a@example.com\0evil@y.example\r\n\r\n"), 0,
	    FAIL, F, "NUL", NULL, NULL },
	{ "NUL in another field",
	    H("Subject: a\0b\r\nFrom: a@example.com\r\n\r\n"), 0,
	    FAIL, F, "NUL", NULL, NULL },
	{ "8-bit display name without SMTPUTF8",
	    H("From: Jos\xc3\xa9 <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "SMTPUTF8", NULL, NULL },
	{ "look-alike Cyrillic domain without SMTPUTF8",
	    H("From: a@ex\xd0\xb0mple.com\r\n\r\n"), 0,
	    FAIL, F, "SMTPUTF8", NULL, NULL },
	{ "invalid UTF-8 with SMTPUTF8",
	    H("From: a@x\xff.example\r\n\r\n"), 1,
	    FAIL, F, "UTF-8", NULL, NULL },
	{ "ideographic dot in domain",
	    H("From: a@example\xe3\x80\x82" "com\r\n\r\n"), 1,
	    FAIL, F, "dot", NULL, NULL },
	{ "unbalanced quote",
	    H("From: \"Alice <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "quotes", NULL, NULL },
	{ "unbalanced comment",
	    H("From: a@example.com (oops\r\n\r\n"), 0,
	    FAIL, F, "parentheses", NULL, NULL },
	{ "stray closing parenthesis",
	    H("From: a@example.com oops)\r\n\r\n"), 0,
	    FAIL, F, "parentheses", NULL, NULL },
	{ "unclosed angle bracket",
	    H("From: Alice <a@example.com\r\n\r\n"), 0,
	    FAIL, F, "angle", NULL, NULL },
	{ "closing angle without opening",
	    H("From: a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "angle", NULL, NULL },
	{ "unquoted @ in display name",
	    H("From: a@b.example <c@example.com>\r\n\r\n"), 0,
	    FAIL, F, "unquoted '@'", NULL, NULL },
	{ "display name starting with a dot",
	    H("From: .Alice <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "dot", NULL, NULL },
	{ "special in display name",
	    H("From: Al[ice] <a@example.com>\r\n\r\n"), 0,
	    FAIL, F, "special", NULL, NULL },
	{ "space inside angle brackets",
	    H("From: < a@example.com >\r\n\r\n"), 0,
	    FAIL, F, "inside the angle", NULL, NULL },
	{ "space before @", H("From: a @example.com\r\n\r\n"), 0,
	    FAIL, F, "inside the address", NULL, NULL },
	{ "comment inside address", H("From: a(c)@example.com\r\n\r\n"), 0,
	    FAIL, F, "inside the address", NULL, NULL },
	{ "comment after @", H("From: a@(c)example.com\r\n\r\n"), 0,
	    FAIL, F, "inside the address", NULL, NULL },
	{ "trailing dot on domain", H("From: a@example.com.\r\n\r\n"), 0,
	    FAIL, F, "ends with a dot", NULL, NULL },
	{ "empty domain label", H("From: a@example..com\r\n\r\n"), 0,
	    FAIL, F, "empty label", NULL, NULL },
	{ "hyphen at label start", H("From: a@-example.com\r\n\r\n"), 0,
	    FAIL, F, "'-'", NULL, NULL },
	{ "leading dot in local part", H("From: .a@example.com\r\n\r\n"), 0,
	    FAIL, F, "misplaced dot", NULL, NULL },
	{ "trailing dot in local part", H("From: a.@example.com\r\n\r\n"), 0,
	    FAIL, F, "misplaced dot", NULL, NULL },
	{ "address literal", H("From: a@[192.0.2.1]\r\n\r\n"), 0,
	    FAIL, F, "address literal", NULL, NULL },
	{ "comments nested too deeply",
	    H("From: a@example.com (((((((((x)))))))))\r\n\r\n"), 0,
	    FAIL, F, "nested", NULL, NULL },
	{ "local part over 64 octets",
	    H("From: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa@example.com\r\n\r\n"), 0,
	    FAIL, F, "64 octets", NULL, NULL },
	{ "missing domain", H("From: a@\r\n\r\n"), 0,
	    FAIL, F, "domain is missing", NULL, NULL },
	{ "no @ at all", H("From: alice\r\n\r\n"), 0,
	    FAIL, F, "no '@'", NULL, NULL },
	{ "quoted and unquoted local part",
	    H("From: \"a\"b@example.com\r\n\r\n"), 0,
	    FAIL, F, "mixes quoted", NULL, NULL },
	{ "control character", H("From: a\x01" "b@example.com\r\n\r\n"), 0,
	    FAIL, F, "control", NULL, NULL },
	{ "bare LF in header section",
	    H("From: a@example.com\nSubject: x\r\n\r\n"), 0,
	    FAIL, F, "bare LF", NULL, NULL },
	{ "bare CR in header section",
	    H("From: a@example.com\rSubject: x\r\n\r\n"), 0,
	    FAIL, F, "bare CR", NULL, NULL },

	/* Sender and Resent-* follow the same rules. */
	{ "Sender with a list",
	    H("From: a@example.com\r\nSender: a@example.com, b@y.example\r\n"
	    "\r\n"), 0, FAIL, S, "Sender header: the field holds a list",
	    NULL, NULL },
	{ "Resent-From with a group",
	    H("From: a@example.com\r\nResent-From: g: a@example.com;\r\n\r\n"),
	    0, FAIL, RF, "Resent-From header: the field holds a group",
	    NULL, NULL },
	{ "Resent-Sender empty",
	    H("From: a@example.com\r\nResent-Sender:\r\n\r\n"), 0,
	    FAIL, RS, "Resent-Sender header: the field is empty", NULL, NULL },
	{ "malformed Sender, From fine",
	    H("From: a@example.com\r\nSender: <@x.example:b@y.example>\r\n"
	    "\r\n"), 0, FAIL, S, "source route", NULL, NULL },
	{ "From case variants are one name",
	    H("FROM: a@example.com\r\nfRoM: b@y.example\r\n\r\n"), 0,
	    FAIL, F, "occurs 2 times", NULL, NULL },
};

static void
run_cases(void)
{
	struct sender_headers	 sh;
	const struct tcase	*t;
	const struct mailbox	*mb;
	size_t			 i;
	int			 good;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = &cases[i];
		mailbox_parse_headers(t->hdr, t->len, t->utf8, &sh);
		if (t->verdict == MAILBOX_PERMFAIL) {
			good = sh.verdict == MAILBOX_PERMFAIL &&
			    strcmp(sh.status, "5.6.0") == 0 &&
			    sh.bad == t->field &&
			    strstr(sh.reason, t->expect) != NULL;
			ok(good, "%s: 550 5.6.0 (%s)", t->name, sh.reason);
			continue;
		}
		mb = &sh.f[t->field].mb;
		good = sh.verdict == MAILBOX_OK &&
		    strcmp(sh.status, "2.0.0") == 0 &&
		    sh.f[t->field].present &&
		    strcmp(mb->local, t->expect) == 0 &&
		    mb->local_len == strlen(t->expect) &&
		    strcmp(mb->domain, t->domain) == 0 &&
		    (t->display == NULL ||
		    memmem(mb->display, mb->display_len, t->display,
		    strlen(t->display)) != NULL);
		ok(good, "%s: ok %s@%s [%.*s] %s", t->name, mb->local,
		    mb->domain, (int)mb->display_len, mb->display, sh.reason);
	}
}

static void
run_details(void)
{
	struct sender_headers	 sh;
	struct mailbox		 mb;
	char			 why[MAILBOX_REASON_MAX], long_hdr[3000];
	static const char	 msg[] = "Subject: x\r\nFrom: a@example.com\r\n"
	    "\r\nbody\r\n";
	size_t			 n;
	int			 r;

	mailbox_parse_headers(H("From: \"a@b\"@Example.com\r\n\r\n"), 0, &sh);
	ok(strcmp(sh.f[MAILBOX_FROM].mb.local_raw, "\"a@b\"") == 0 &&
	    strcmp(sh.f[MAILBOX_FROM].mb.domain_raw, "Example.com") == 0,
	    "raw forms kept: %s@%s", sh.f[MAILBOX_FROM].mb.local_raw,
	    sh.f[MAILBOX_FROM].mb.domain_raw);

	mailbox_parse_headers(msg, sizeof(msg) - 1, 0, &sh);
	ok(sh.verdict == MAILBOX_OK && sh.header_len == sizeof(msg) - 1 - 6,
	    "header_len stops after the empty line (%zu)", sh.header_len);
	ok(!sh.f[MAILBOX_SENDER].present && sh.f[MAILBOX_SENDER].count == 0,
	    "absent Sender is not present");

	r = mailbox_parse_value("x@y.example", 11, 0, &mb, why, sizeof(why));
	ok(r == MAILBOX_OK && strcmp(mb.domain, "y.example") == 0,
	    "mailbox_parse_value alone");

	/* An RFC 5321 path from MAIL FROM, parsed the same way (what the
	 * session should do before grant_find). */
	r = mailbox_parse_value("\"a b\"@Example.COM", 17, 0, &mb, why,
	    sizeof(why));
	ok(r == MAILBOX_OK && strcmp(mb.local, "a b") == 0 &&
	    strcmp(mb.domain, "example.com") == 0,
	    "MAIL FROM path: quoted local part unquoted, domain folded");
	r = mailbox_parse_value("a@[192.0.2.1]", 13, 0, &mb, why,
	    sizeof(why));
	ok(r == MAILBOX_PERMFAIL && strstr(why, "literal") != NULL,
	    "MAIL FROM path: address literal refused (%s)", why);

	/* A value over MAILBOX_VALUE_MAX after unfolding. */
	n = (size_t)snprintf(long_hdr, sizeof(long_hdr), "From: a@example.com ");
	while (n < sizeof(long_hdr) - 10) {
		long_hdr[n++] = '(';
		long_hdr[n++] = ')';
	}
	memcpy(long_hdr + n, "\r\n\r\n", 4);
	n += 4;
	mailbox_parse_headers(long_hdr, n, 0, &sh);
	ok(sh.verdict == MAILBOX_PERMFAIL && strstr(sh.reason, "longer") != NULL,
	    "over-long value refused: %s", sh.reason);

	/* The foreign-address check on a decoded display name. */
	{
		char *grants[] = { "example.com", "*.example.org" };
		char found[64];

		mailbox_parse_headers(H("From: =?utf-8?B?Q0VPIDxjZW9AYmFuay5jb20"
		    "+?= <a@example.com>\r\n\r\n"), 0, &sh);
		mb = sh.f[MAILBOX_FROM].mb;
		ok(display_name_foreign_address(grants, 2, mb.display,
		    mb.display_len, found, sizeof(found)) == 1 &&
		    strcmp(found, "ceo@bank.com") == 0,
		    "encoded foreign address in display name found");
		mailbox_parse_headers(H("From: (me@mine.example) "
		    "a@example.com\r\n\r\n"), 0, &sh);
		mb = sh.f[MAILBOX_FROM].mb;
		ok(display_name_foreign_address(grants, 2, mb.display,
		    mb.display_len, NULL, 0) == 1,
		    "foreign address in comment found");
		/* A quoted local part that reads as a foreign address:
		 * the session checks mb.local the same way. */
		mailbox_parse_headers(H("From: \"ceo@bank.com\"@example.com"
		    "\r\n\r\n"), 0, &sh);
		mb = sh.f[MAILBOX_FROM].mb;
		ok(sh.verdict == MAILBOX_OK &&
		    strcmp(mb.local, "ceo@bank.com") == 0 &&
		    display_name_foreign_address(grants, 2, mb.local,
		    mb.local_len, NULL, 0) == 1,
		    "foreign address in a quoted local part found");
		mailbox_parse_headers(H("From: \"billing@example.com\" "
		    "<a@example.com>\r\n\r\n"), 0, &sh);
		mb = sh.f[MAILBOX_FROM].mb;
		ok(display_name_foreign_address(grants, 2, mb.display,
		    mb.display_len, NULL, 0) == 0,
		    "own address in display name allowed");
	}
}

static double
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
run_timing(void)
{
	static const char hdr[] =
	    "Received: from client.example.net (client.example.net "
	    "[192.0.2.10])\r\n\tby mail.example.com with ESMTPSA id 4Xk2; "
	    "Sun, 22 Nov 2026 16:00:00 +0000\r\n"
	    "Received: from localhost (localhost [127.0.0.1])\r\n"
	    "\tby client.example.net with ESMTP id 19a; Sun, 22 Nov 2026 "
	    "15:59:59 +0000\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Date: Sun, 22 Nov 2026 16:00:00 +0000\r\n"
	    "Message-ID: <CAF3x9q2Lk8h3nN4p0@mail.example.com>\r\n"
	    "Subject: =?UTF-8?Q?Your_invoice_for_November_is_ready?=\r\n"
	    "From: \"Example Billing (no reply)\" <billing@example.com>\r\n"
	    "Sender: Billing System <billing-system@example.com>\r\n"
	    "To: Customer One <customer.one@example.net>, Customer Two "
	    "<customer.two@example.net>\r\n"
	    "Cc: accounts@example.net\r\n"
	    "Reply-To: support@example.com\r\n"
	    "List-Unsubscribe: <mailto:unsubscribe@example.com?subject="
	    "unsubscribe>,\r\n <https://example.com/unsubscribe/abcdef0123"
	    "456789>\r\n"
	    "Content-Type: multipart/alternative; boundary=\"000000000000"
	    "1a2b3c4d5e6f\"\r\n"
	    "X-Mailer: Example Mailer 4.2\r\n"
	    "X-Campaign: november-invoices-2026\r\n"
	    "Thread-Topic: Your invoice for November\r\n"
	    "Thread-Index: AQHZxYz1234567890abcdefABCDEF==\r\n"
	    "Content-Language: en-US\r\n"
	    "X-Entity-Ref-ID: 0123456789abcdef0123456789abcdef\r\n"
	    "\r\n";
	struct sender_headers	 sh;
	char			*grants[] = { "example.org", "*.example.net",
	    "alice@example.info", "example.com" };
	uint8_t			 key[VERP_KEY_LEN];
	char			 local[VERP_LOCAL_LEN + 1];
	double			 t0, t1;
	int			 i, iters = 20000, found = 0;

	memset(key, 7, sizeof(key));
	t0 = now_us();
	for (i = 0; i < iters; i++)
		mailbox_parse_headers(hdr, sizeof(hdr) - 1, 0, &sh);
	t1 = now_us();
	ok(sh.verdict == MAILBOX_OK, "timing header section parses");
	printf("# mailbox_parse_headers: %.2f us per call on a %zu-byte "
	    "header section\n", (t1 - t0) / iters, sizeof(hdr) - 1);
	t0 = now_us();
	for (i = 0; i < iters; i++) {
		found += grant_find(grants, 4, "billing", 7, "example.com");
		verp_encode(key, "0123456789abcdef", (uint32_t)i, local,
		    sizeof(local));
	}
	t1 = now_us();
	ok(found == 3 * iters, "timing grant_find finds");
	printf("# grant_find + verp_encode: %.2f us per call\n",
	    (t1 - t0) / iters);
}

int
main(void)
{
	ok(sizeof(cases) / sizeof(cases[0]) >= 60, "%zu header sections",
	    sizeof(cases) / sizeof(cases[0]));
	run_cases();
	run_details();
	run_timing();
	return tap_done();
}

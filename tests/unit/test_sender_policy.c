/*
 * test_sender_policy: who may send as whom (relayd/sender_policy.c),
 * table-driven.  MAIL FROM ownership (null sender, case, IDNA A-labels,
 * look-alikes, trailing dot, quoted local parts, wildcard and address
 * grants) with the exact 553 reply; the header verdicts (550 5.6.0 for a
 * malformed section, 550 5.7.1 for a mailbox not owned, a foreign address
 * in a display name, or no signing domain) with their exact text and the
 * grant that allowed From; and the [domain] section chosen for a From
 * domain (exact, else the nearest parent, else none).  The configuration
 * and the accounts are built in memory: no files.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "mailbox.h"
#include "sender_policy.h"
#include "tap.h"
#include "users.h"

static char *g_alice[] = { "example.com", "alice@example.org" };
static char *g_wild[] = { "*.example.com" };
static char *g_idn[] = { "xn--bcher-kva.example" };
static char *g_multi[] = { "other.com", "*.example.com", "example.com" };
static char *g_nosec[] = { "unsigned.example", "*.orphan.example" };
static char *g_single[] = { "news@example.com" };
static char *g_none[] = { NULL };

#define NG(a)	(sizeof(a) / sizeof(a[0]))
static const struct user alice = { "alice", "", g_alice, NG(g_alice) };
static const struct user wild = { "wild", "", g_wild, NG(g_wild) };
static const struct user idn = { "idn", "", g_idn, NG(g_idn) };
static const struct user multi = { "multi", "", g_multi, NG(g_multi) };
static const struct user nosec = { "nosec", "", g_nosec, NG(g_nosec) };
static const struct user single = { "single", "", g_single, NG(g_single) };
static const struct user nobody = { "nobody", "", g_none, 0 };

/* The [domain] sections of the relay. */
static const char *const sections[] = {
	"example.com", "mail.example.com", "example.org",
	"xn--bcher-kva.example", "other.com",
};
#define NSECTIONS	(sizeof(sections) / sizeof(sections[0]))

#define NOT_OWNED	": Sender address rejected: not owned by user "

struct mfcase {
	const struct user	*u;
	const char		*addr;
	int			 utf8;
	int			 rc;
	int			 grant;
	const char		*reply;		/* "CODE STATUS TEXT" */
};

static const struct mfcase mfcases[] = {
	/* The null sender is always accepted (RFC 6409 read receipts). */
	{ &alice, "", 0, 0, -1, "250 2.1.0 Ok" },
	{ &nobody, "", 0, 0, -1, "250 2.1.0 Ok" },
	{ &wild, "", 1, 0, -1, "250 2.1.0 Ok" },
	/* DOMAIN grants; domains compare case-insensitively. */
	{ &alice, "alice@example.com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &alice, "x@EXAMPLE.COM", 0, 0, 0, "250 2.1.0 Ok" },
	{ &alice, "X@Example.Com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &alice, "\"a b\"@example.com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &alice, "x@sub.example.com", 0, -1, -1,
	  "553 5.7.1 <x@sub.example.com>" NOT_OWNED "alice" },
	{ &alice, "x@example.com.evil.org", 0, -1, -1,
	  "553 5.7.1 <x@example.com.evil.org>" NOT_OWNED "alice" },
	{ &alice, "x@evil-example.com", 0, -1, -1,
	  "553 5.7.1 <x@evil-example.com>" NOT_OWNED "alice" },
	{ &alice, "x@example.co", 0, -1, -1,
	  "553 5.7.1 <x@example.co>" NOT_OWNED "alice" },
	/*
	 * A trailing dot: RFC 5321 4.1.2 has none, and smtp_cmd refuses it
	 * with 501 5.1.7 before the policy is asked.  Given one anyway, the
	 * policy parses the address as the From check does (mailbox.h
	 * refuses a trailing dot) and fails closed.
	 */
	{ &alice, "x@example.com.", 0, -1, -1,
	  "553 5.7.1 <x@example.com.>" NOT_OWNED "alice" },
	/* LOCAL@DOMAIN grants: the local part compares exactly. */
	{ &alice, "alice@example.org", 0, 0, 1, "250 2.1.0 Ok" },
	{ &alice, "alice@EXAMPLE.ORG", 0, 0, 1, "250 2.1.0 Ok" },
	{ &alice, "Alice@example.org", 0, -1, -1,
	  "553 5.7.1 <Alice@example.org>" NOT_OWNED "alice" },
	{ &alice, "bob@example.org", 0, -1, -1,
	  "553 5.7.1 <bob@example.org>" NOT_OWNED "alice" },
	{ &single, "news@example.com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &single, "\"news\"@example.com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &single, "News@example.com", 0, -1, -1,
	  "553 5.7.1 <News@example.com>" NOT_OWNED "single" },
	{ &single, "news@sub.example.com", 0, -1, -1,
	  "553 5.7.1 <news@sub.example.com>" NOT_OWNED "single" },
	/* *.DOMAIN grants: subdomains at any depth, not the domain. */
	{ &wild, "x@a.example.com", 0, 0, 0, "250 2.1.0 Ok" },
	{ &wild, "x@A.B.Example.COM", 0, 0, 0, "250 2.1.0 Ok" },
	{ &wild, "x@example.com", 0, -1, -1,
	  "553 5.7.1 <x@example.com>" NOT_OWNED "wild" },
	{ &wild, "x@aexample.com", 0, -1, -1,
	  "553 5.7.1 <x@aexample.com>" NOT_OWNED "wild" },
	/* IDNA: a U-label compares as its A-label (SMTPUTF8 only). */
	{ &idn, "a@b\xc3\xbc" "cher.example", 1, 0, 0, "250 2.1.0 Ok" },
	{ &idn, "a@xn--bcher-kva.example", 0, 0, 0, "250 2.1.0 Ok" },
	{ &idn, "a@XN--BCHER-KVA.Example", 0, 0, 0, "250 2.1.0 Ok" },
	{ &idn, "a@b\xc3\xbc" "cher.example", 0, -1, -1,
	  "553 5.7.1 <a@b??cher.example>" NOT_OWNED "idn" },
	/* Look-alikes: Cyrillic es for c; u + combining diaeresis (not
	 * normalized, so not the grant's A-label: fails closed). */
	{ &idn, "a@b\xc3\xbc\xd1\x81her.example", 1, -1, -1,
	  "553 5.7.1 <a@b????her.example>" NOT_OWNED "idn" },
	{ &idn, "a@xn--bher-0ra631c.example", 0, -1, -1,
	  "553 5.7.1 <a@xn--bher-0ra631c.example>" NOT_OWNED "idn" },
	{ &idn, "a@bu\xcc\x88" "cher.example", 1, -1, -1,
	  "553 5.7.1 <a@bu??cher.example>" NOT_OWNED "idn" },
	{ &idn, "a@bucher.example", 0, -1, -1,
	  "553 5.7.1 <a@bucher.example>" NOT_OWNED "idn" },
	/* An account without grants owns nothing. */
	{ &nobody, "a@example.com", 0, -1, -1,
	  "553 5.7.1 <a@example.com>" NOT_OWNED "nobody" },
};

#define NO_KEY(d)	"No DKIM key for the From domain " d " on this " \
			"relay; ask the operator to add a [domain] section"
#define WS_COLON	"a header field name is followed by white space " \
			"before its colon (obsolete syntax that readers " \
			"take differently)"

struct hcase {
	const char		*name;
	const struct user	*u;
	const char		*hdr;
	size_t			 len;		/* 0: strlen(hdr) */
	int			 utf8;
	int			 allow_display;
	int			 rc;
	const char		*reply;		/* "CODE STATUS TEXT" */
	const char		*section;	/* [domain] chosen, or NULL */
	int			 grant;
};

static const struct hcase hcases[] = {
	{ "plain", &alice, "From: a@example.com\r\n\r\nbody\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	{ "address grant", &alice, "From: Alice <alice@example.org>\r\n"
	  "To: x@y.example\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.org", 1 },
	{ "upper case", &alice, "FROM: A@EXAMPLE.COM\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	{ "no empty line", &alice, "From: a@example.com\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	{ "owned Sender and Resent-*", &alice, "From: a@example.com\r\n"
	  "Sender: s@example.com\r\nResent-From: alice@example.org\r\n"
	  "Resent-Sender: r@example.com\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	{ "own address in display name", &alice,
	  "From: \"alice@example.org\" <a@example.com>\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	/* Malformed: 5.6.0 with mailbox.c's reason. */
	{ "two From", &alice, "From: a@example.com\r\nfrom: a@evil.com\r\n"
	  "\r\n", 0, 0, 0, -1,
	  "550 5.6.0 From header occurs 2 times; exactly one is allowed",
	  NULL, -1 },
	{ "space before colon", &alice, "From : a@example.com\r\n\r\n", 0,
	  0, 0, -1, "550 5.6.0 " WS_COLON, NULL, -1 },
	{ "Sender space before colon", &alice, "From: a@example.com\r\n"
	  "Sender\t: a@example.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.6.0 " WS_COLON, NULL, -1 },
	{ "list", &alice, "From: a@example.com, b@example.com\r\n\r\n", 0,
	  0, 0, -1, "550 5.6.0 From header: the field holds a list of "
	  "mailboxes; exactly one is allowed", NULL, -1 },
	{ "null address", &alice, "From: <>\r\n\r\n", 0, 0, 0, -1,
	  "550 5.6.0 From header: the address <> is empty", NULL, -1 },
	{ "trailing dot", &alice, "From: a@example.com.\r\n\r\n", 0, 0, 0,
	  -1, "550 5.6.0 From header: the domain ends with a dot", NULL,
	  -1 },
	{ "route", &alice, "From: <@evil.com:a@example.com>\r\n\r\n", 0, 0,
	  0, -1, "550 5.6.0 From header: a source route (<@host:...>) is "
	  "not allowed", NULL, -1 },
	{ "8-bit without SMTPUTF8", &idn, "From: a@b\xc3\xbc" "cher.example"
	  "\r\n\r\n", 0, 0, 0, -1, "550 5.6.0 From header: 8-bit bytes need "
	  "SMTPUTF8 (RFC 6531); use RFC 2047 encoded-words in the display "
	  "name or an ASCII address", NULL, -1 },
	{ "Sender list", &alice, "From: a@example.com\r\nSender: "
	  "a@example.com, b@example.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.6.0 Sender header: the field holds a list of mailboxes; "
	  "exactly one is allowed", NULL, -1 },
	/* Not owned: 5.7.1. */
	{ "foreign From", &alice, "From: a@evil.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From address <a@evil.com> is not owned by user alice",
	  NULL, -1 },
	{ "comment is not the address", &alice,
	  "From: (a@example.com) a@evil.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From address <a@evil.com> is not owned by user alice",
	  NULL, -1 },
	{ "foreign Sender", &alice, "From: a@example.com\r\n"
	  "Sender: s@evil.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 Sender address <s@evil.com> is not owned by user alice",
	  NULL, -1 },
	{ "foreign Resent-From", &alice, "From: a@example.com\r\n"
	  "Resent-From: s@evil.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 Resent-From address <s@evil.com> is not owned by user "
	  "alice", NULL, -1 },
	{ "foreign Resent-Sender", &alice, "From: a@example.com\r\n"
	  "Resent-Sender: s@evil.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 Resent-Sender address <s@evil.com> is not owned by "
	  "user alice", NULL, -1 },
	{ "address grant, other local part", &alice,
	  "From: bob@example.org\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From address <bob@example.org> is not owned by user "
	  "alice", NULL, -1 },
	{ "single: other local part", &single,
	  "From: other@example.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From address <other@example.com> is not owned by user "
	  "single", NULL, -1 },
	{ "look-alike with SMTPUTF8", &idn,
	  "From: a@b\xc3\xbc\xd1\x81her.example\r\n\r\n", 0, 1, 0, -1,
	  "550 5.7.1 From address <a@xn--bher-0ra631c.example> is not owned "
	  "by user idn", NULL, -1 },
	/* Display names (and comments, and quoted local parts). */
	{ "display name address", &alice,
	  "From: \"x@evil.com\" <a@example.com>\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From display name shows the address x@evil.com, which "
	  "user alice does not own", NULL, -1 },
	{ "display name address allowed", &alice,
	  "From: \"x@evil.com\" <a@example.com>\r\n\r\n", 0, 0, 1,
	  0, "250 2.0.0 Ok", "example.com", 0 },
	{ "encoded display name address", &alice,
	  "From: =?utf-8?q?x=40evil.com?= <a@example.com>\r\n\r\n", 0, 0, 0,
	  -1, "550 5.7.1 From display name shows the address x@evil.com, "
	  "which user alice does not own", NULL, -1 },
	{ "comment address", &alice,
	  "From: a@example.com (x@evil.com)\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From display name shows the address x@evil.com, which "
	  "user alice does not own", NULL, -1 },
	{ "quoted local part with @", &alice,
	  "From: \"x@evil.com\"@example.com\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 From display name shows the address x@evil.com, which "
	  "user alice does not own", NULL, -1 },
	{ "Sender display name address", &alice, "From: a@example.com\r\n"
	  "Sender: \"x@evil.com\" <s@example.com>\r\n\r\n", 0, 0, 0, -1,
	  "550 5.7.1 Sender display name shows the address x@evil.com, which "
	  "user alice does not own", NULL, -1 },
	{ "allowed display name, foreign From", &alice,
	  "From: \"a@example.com\" <x@evil.com>\r\n\r\n", 0, 0, 1, -1,
	  "550 5.7.1 From address <x@evil.com> is not owned by user alice",
	  NULL, -1 },
	/* The [domain] section that signs. */
	{ "wildcard: exact section", &wild, "From: a@mail.example.com\r\n\r\n",
	  0, 0, 0, 0, "250 2.0.0 Ok", "mail.example.com", 0 },
	{ "wildcard: nearest parent", &wild,
	  "From: a@x.mail.example.com\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "mail.example.com", 0 },
	{ "wildcard: parent", &wild, "From: a@news.example.com\r\n\r\n", 0,
	  0, 0, 0, "250 2.0.0 Ok", "example.com", 0 },
	{ "wildcard: deep", &wild, "From: a@a.b.c.example.com\r\n\r\n", 0, 0,
	  0, 0, "250 2.0.0 Ok", "example.com", 0 },
	{ "wildcard: not the domain", &wild, "From: a@example.com\r\n\r\n",
	  0, 0, 0, -1, "550 5.7.1 From address <a@example.com> is not owned "
	  "by user wild", NULL, -1 },
	{ "first grant that allows", &multi, "From: a@example.com\r\n\r\n",
	  0, 0, 0, 0, "250 2.0.0 Ok", "example.com", 2 },
	{ "first grant that allows, wildcard", &multi,
	  "From: a@x.example.com\r\n\r\n", 0, 0, 0,
	  0, "250 2.0.0 Ok", "example.com", 1 },
	{ "IDN", &idn, "From: a@b\xc3\xbc" "cher.example\r\n\r\n", 0, 1, 0,
	  0, "250 2.0.0 Ok", "xn--bcher-kva.example", 0 },
	{ "no section", &nosec, "From: a@unsigned.example\r\n\r\n", 0, 0, 0,
	  -1, "550 5.7.1 " NO_KEY("unsigned.example"), NULL, -1 },
	{ "no parent section", &nosec, "From: a@x.orphan.example\r\n\r\n", 0,
	  0, 0, -1, "550 5.7.1 " NO_KEY("x.orphan.example"), NULL, -1 },
};

struct dcase {
	const char	*domain;
	const char	*section;	/* NULL: none */
};

static const struct dcase dcases[] = {
	{ "example.com", "example.com" },
	{ "EXAMPLE.COM", "example.com" },
	{ "example.com.", "example.com" },
	{ "mail.example.com", "mail.example.com" },
	{ "x.mail.example.com", "mail.example.com" },
	{ "a.b.x.mail.example.com", "mail.example.com" },
	{ "mail2.example.com", "example.com" },
	{ "a.b.c.example.com", "example.com" },
	{ "sub.example.org", "example.org" },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
	{ "www.xn--bcher-kva.example", "xn--bcher-kva.example" },
	{ "evil-example.com", NULL },
	{ "notexample.com", NULL },
	{ "example.com.evil.org", NULL },
	{ "example.co", NULL },
	{ "com", NULL },
	{ "example", NULL },
	{ "", NULL },
};

static void
format_reply(char *out, size_t cap, const struct policy_verdict *v)
{
	snprintf(out, cap, "%d %s %s", v->code, v->status, v->text);
}

int
main(void)
{
	static struct config_domain	 doms[NSECTIONS], sentinel;
	static struct sender_headers	 sh;
	struct config			 cf;
	struct policy_verdict		 v;
	const struct config_domain	*d;
	char				 got[POLICY_TEXT_MAX + 32];
	size_t				 i;
	int				 rc;

	memset(&cf, 0, sizeof(cf));
	for (i = 0; i < NSECTIONS; i++)
		doms[i].name = (char *)sections[i];
	sentinel.name = (char *)"sentinel";
	cf.domains = doms;
	cf.ndomains = NSECTIONS;

	for (i = 0; i < sizeof(mfcases) / sizeof(mfcases[0]); i++) {
		const struct mfcase *t = &mfcases[i];

		memset(&v, 0x55, sizeof(v));
		rc = sender_policy_mail_from(t->u, t->addr, t->utf8, &v);
		format_reply(got, sizeof(got), &v);
		ok(rc == t->rc && strcmp(got, t->reply) == 0 &&
		    v.grant == t->grant, "MAIL FROM:<%s>%s as %s: %s (got %d "
		    "\"%s\" grant %d)", t->addr, t->utf8 ? " SMTPUTF8" : "",
		    t->u->name, t->reply, rc, got, v.grant);
	}

	for (i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		const struct hcase *t = &hcases[i];
		size_t len = t->len ? t->len : strlen(t->hdr);

		cf.display_name_address_allow = t->allow_display;
		memset(&v, 0x55, sizeof(v));
		d = &sentinel;		/* must be reset on refusal */
		rc = sender_policy_headers(&cf, t->u, t->hdr, len, t->utf8,
		    &sh, &d, &v);
		format_reply(got, sizeof(got), &v);
		ok(rc == t->rc && strcmp(got, t->reply) == 0,
		    "headers %s: %s (got %d \"%s\")", t->name, t->reply, rc,
		    got);
		if (t->section == NULL)
			ok(d == NULL, "headers %s: no section", t->name);
		else
			ok(d != NULL && strcmp(d->name, t->section) == 0,
			    "headers %s: [domain %s] (got %s)", t->name,
			    t->section, d != NULL ? d->name : "none");
		/* The grant is part of the verdict on success only. */
		if (t->rc == 0)
			ok(v.grant == t->grant, "headers %s: grant %d (got %d)",
			    t->name, t->grant, v.grant);
	}
	cf.display_name_address_allow = 0;

	/* NUL inside the header section: refused, never truncated. */
	{
		static const char nul[] = "From: a@example.com\0x@evil.com\r\n"
		    "\r\n";

		rc = sender_policy_headers(&cf, &alice, nul, sizeof(nul) - 1,
		    0, &sh, &d, &v);
		ok(rc == -1 && v.code == 550 && strcmp(v.status, "5.6.0") == 0
		    && d == NULL, "headers NUL: 550 5.6.0 (got %d %s %s)",
		    v.code, v.status, v.text);
	}
	/* No From field at all. */
	{
		static const char nofrom[] = "Subject: x\r\n\r\n";

		rc = sender_policy_headers(&cf, &alice, nofrom,
		    sizeof(nofrom) - 1, 0, &sh, &d, &v);
		ok(rc == -1 && v.code == 550 && strcmp(v.status, "5.6.0") == 0
		    && strstr(v.text, "From") != NULL && d == NULL,
		    "headers without From: 550 5.6.0 (got %d %s %s)", v.code,
		    v.status, v.text);
	}
	/* The parse is returned: the From mailbox drives d= and bounces. */
	{
		static const char hn[] = "From: \"N\" <n@x.mail.example.com>"
		    "\r\n\r\n";

		rc = sender_policy_headers(&cf, &wild, hn, sizeof(hn) - 1, 0,
		    &sh, &d, &v);
	}
	ok(rc == 0 && sh.f[MAILBOX_FROM].present &&
	    strcmp(sh.f[MAILBOX_FROM].mb.domain, "x.mail.example.com") == 0 &&
	    sh.f[MAILBOX_FROM].mb.local_len == 1 &&
	    sh.f[MAILBOX_FROM].mb.local[0] == 'n',
	    "headers: the From mailbox is returned (got %d %s)", rc,
	    sh.f[MAILBOX_FROM].mb.domain);

	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *t = &dcases[i];

		d = sender_policy_domain(&cf, t->domain);
		if (t->section == NULL)
			ok(d == NULL, "section for \"%s\": none (got %s)",
			    t->domain, d ? d->name : "none");
		else
			ok(d != NULL && strcmp(d->name, t->section) == 0,
			    "section for \"%s\": %s (got %s)", t->domain,
			    t->section, d ? d->name : "none");
	}
	/* No sections at all. */
	cf.ndomains = 0;
	ok(sender_policy_domain(&cf, "example.com") == NULL,
	    "no sections: none");
	return tap_done();
}

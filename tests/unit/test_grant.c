/*
 * test_grant: the grant matcher (domain, *.domain, local@domain), domain
 * ownership for display names, the display-name foreign-address check and
 * the organizational-domain alignment of bounce domains (libpsl).
 */
#include <stdio.h>
#include <string.h>

#include "grant.h"
#include "orgdomain.h"
#include "tap.h"

struct mcase {
	const char	*grant;
	const char	*local;
	const char	*domain;
	int		 want;
};

static const struct mcase mcases[] = {
	/* DOMAIN */
	{ "example.com", "alice", "example.com", 1 },
	{ "example.com", "Alice", "EXAMPLE.COM", 1 },
	{ "example.com", "alice", "example.com.", 1 },
	{ "example.com.", "alice", "example.com", 1 },
	{ "EXAMPLE.com", "alice", "example.COM", 1 },
	{ "example.com", "alice", "sub.example.com", 0 },
	{ "example.com", "alice", "evil-example.com", 0 },
	{ "example.com", "alice", "example.com.evil.org", 0 },
	{ "example.com", "alice", "notexample.com", 0 },
	{ "example.com", "alice", "example.co", 0 },
	{ "example.com", "alice", "example.comm", 0 },
	{ "example.com", "alice", "", 0 },
	{ "example.com", "alice", ".", 0 },
	{ "example.com", "alice", "example.com..", 0 },
	{ "example.com", "alice", "xn--exmple-4nf.com", 0 },
	/* *.DOMAIN */
	{ "*.example.com", "a", "mail.example.com", 1 },
	{ "*.example.com", "a", "a.b.example.com", 1 },
	{ "*.example.com", "a", "MAIL.Example.Com.", 1 },
	{ "*.example.com", "a", "example.com", 0 },
	{ "*.example.com", "a", "evil-example.com", 0 },
	{ "*.example.com", "a", "xexample.com", 0 },
	{ "*.example.com", "a", ".example.com", 0 },
	{ "*.example.com", "a", "mail.example.com.evil.org", 0 },
	{ "*.example.com", "a", "example.org", 0 },
	{ "*.", "a", "example.com", 0 },
	{ "*", "a", "example.com", 0 },
	/* LOCAL@DOMAIN */
	{ "billing@example.com", "billing", "example.com", 1 },
	{ "billing@example.com", "billing", "Example.COM.", 1 },
	{ "billing@example.com", "Billing", "example.com", 0 },
	{ "billing@example.com", "billing2", "example.com", 0 },
	{ "billing@example.com", "bill", "example.com", 0 },
	{ "billing@example.com", "billing", "sub.example.com", 0 },
	{ "billing@example.com", "billing", "evil-example.com", 0 },
	{ "billing@example.com", "other", "example.com", 0 },
	{ "a@b@example.com", "a@b", "example.com", 1 },
	{ "@example.com", "", "example.com", 0 },
	/* 8-bit domains compare byte-wise only. */
	{ "b\xc3\xbc" "cher.example", "a", "b\xc3\xbc" "cher.example", 1 },
	{ "b\xc3\xbc" "cher.example", "a", "B\xc3\x9c" "CHER.example", 0 },
	{ "xn--bcher-kva.example", "a", "xn--bcher-kva.example", 1 },
};

struct ocase {
	const char	*grant;
	const char	*domain;
	int		 want;
};

static const struct ocase ocases[] = {
	{ "example.com", "example.com", 1 },
	{ "example.com", "Example.Com.", 1 },
	{ "example.com", "sub.example.com", 0 },
	{ "*.example.com", "sub.example.com", 1 },
	{ "*.example.com", "example.com", 0 },
	{ "alice@example.com", "example.com", 1 },
	{ "alice@example.com", "example.org", 0 },
};

struct dcase {
	const char	*display;
	int		 want;
	const char	*found;
};

/* Grants: example.com, *.example.org, alice@example.net. */
static const struct dcase dcases[] = {
	{ "Alice Smith", 0, NULL },
	{ "alice@example.com", 0, NULL },
	{ "Support (support@EXAMPLE.COM)", 0, NULL },
	{ "ops@mail.example.org", 0, NULL },
	{ "bob@example.net", 0, NULL },
	{ "ceo@bank.com", 1, "ceo@bank.com" },
	{ "\"ceo\"@bank.com", 1, "\"ceo\"@bank.com" },
	{ "\"the ceo\"@bank.com", 1, "\"the ceo\"@bank.com" },
	{ "say \"hi\" @bank", 0, NULL },
	{ "\"a\tb\"@bank.com", 1, "\"a\tb\"@bank.com" },
	{ "\"a\001b\"@bank.com", 0, NULL },	/* no control byte in qtext */
	{ "CEO <ceo@bank.com>", 1, "ceo@bank.com" },
	{ "alice@example.com via ceo@bank.com", 1, "ceo@bank.com" },
	{ "x@example.org", 1, "x@example.org" },
	{ "x@example.com.evil.org", 1, "x@example.com.evil.org" },
	{ "x@evil-example.com", 1, "x@evil-example.com" },
	{ "ceo\xef\xbc\xa0" "bank.com", 1, "ceo\xef\xbc\xa0" "bank.com" },
	{ "ceo@bank\xe3\x80\x82" "com", 1, "ceo@bank\xe3\x80\x82" "com" },
	{ "ceo@p\xd0\xb0ypal.com", 1, "ceo@p\xd0\xb0ypal.com" },
	{ "Team @ Work", 0, NULL },
	{ "me@home", 0, NULL },
	{ "@handle", 0, NULL },
	{ "trailing@", 0, NULL },
	{ "a@b.", 0, NULL },
	{ "a@.com", 0, NULL },
};

struct acase {
	const char	*a;
	const char	*b;
	int		 want;
};

static const struct acase acases[] = {
	{ "example.com", "bounces.example.com", 1 },
	{ "Example.COM.", "bounces.example.com", 1 },
	{ "mail.example.com", "bounces.example.com", 1 },
	{ "example.co.uk", "bounces.example.co.uk", 1 },
	{ "example.com", "bounces.example.org", 0 },
	{ "example.co.uk", "other.co.uk", 0 },
	{ "example.com", "example.com.evil.org", 0 },
	{ "alice.github.io", "bob.github.io", 0 },
	{ "alice.github.io", "b.alice.github.io", 1 },
	{ "com", "example.com", 0 },
	{ "co.uk", "co.uk", 1 },
	{ "", "example.com", 0 },
	{ "exa mple.com", "example.com", 0 },
};

int
main(void)
{
	char	*grants[] = { "example.com", "*.example.org",
	    "alice@example.net" };
	char	 found[128], org[ORGDOMAIN_MAX + 1];
	size_t	 i;
	int	 r;

	for (i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		const struct mcase *t = &mcases[i];

		r = grant_match(t->grant, t->local, strlen(t->local),
		    t->domain);
		ok(r == t->want, "grant %s %s %s@%s", t->grant,
		    t->want ? "allows" : "refuses", t->local, t->domain);
	}
	for (i = 0; i < sizeof(ocases) / sizeof(ocases[0]); i++) {
		const struct ocase *t = &ocases[i];

		r = grant_owns_domain(t->grant, t->domain, strlen(t->domain));
		ok(r == t->want, "grant %s %s domain %s", t->grant,
		    t->want ? "owns" : "does not own", t->domain);
	}

	ok(grant_find(grants, 3, "x", 1, "example.com") == 0,
	    "grant_find: domain grant index 0");
	ok(grant_find(grants, 3, "x", 1, "a.example.org") == 1,
	    "grant_find: wildcard grant index 1");
	ok(grant_find(grants, 3, "alice", 5, "example.net") == 2,
	    "grant_find: address grant index 2");
	ok(grant_find(grants, 3, "bob", 3, "example.net") == -1,
	    "grant_find: other local part at an address grant's domain");
	ok(grant_find(grants, 3, "x", 1, "example.org") == -1,
	    "grant_find: wildcard does not cover its own domain");
	ok(grant_find(grants, 0, "x", 1, "example.com") == -1,
	    "grant_find: no grants, nothing owned");
	ok(grant_find(grants, 3, "alice\0x", 7, "example.net") == -1,
	    "grant_find: length counts, embedded NUL does not match");

	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *t = &dcases[i];

		found[0] = '\0';
		r = display_name_foreign_address(grants, 3, t->display,
		    strlen(t->display), found, sizeof(found));
		ok(r == t->want && (t->found == NULL ||
		    strcmp(found, t->found) == 0),
		    "display \"%s\": %s%s", t->display,
		    t->want ? "foreign " : "no foreign address", found);
	}
	r = display_name_foreign_address(grants, 3, "x@bank.com", 10, found,
	    4);
	ok(r == 1 && strcmp(found, "x@b") == 0, "found is cut to its cap");

	for (i = 0; i < sizeof(acases) / sizeof(acases[0]); i++) {
		const struct acase *t = &acases[i];

		r = orgdomain_aligned(t->a, t->b);
		ok(r == t->want, "%s and %s %s", t->a, t->b,
		    t->want ? "align" : "do not align");
	}
	ok(orgdomain_of("Mail.Example.CO.UK.", org, sizeof(org)) == 0 &&
	    strcmp(org, "example.co.uk") == 0, "orgdomain_of: %s", org);
	ok(orgdomain_of("co.uk", org, sizeof(org)) == -1,
	    "orgdomain_of: a public suffix has none");
	ok(orgdomain_of("example.com", org, 5) == -1,
	    "orgdomain_of: cap too small");
	return tap_done();
}

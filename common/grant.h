/*
 * grant: what an account's grants (users file, INTERFACE.md) allow it to
 * use as MAIL FROM and as From, Sender and Resent-* mailbox.
 *
 * A grant is one of:
 *   DOMAIN        any local part at DOMAIN itself (not at its subdomains);
 *   *.DOMAIN      any local part at any subdomain of DOMAIN, at any depth,
 *                 but not at DOMAIN itself (grant both to allow both, as
 *                 with Postfix's ".domain" and TLS wildcards);
 *   LOCAL@DOMAIN  exactly that address.
 * Domains compare case-insensitively (ASCII), with one trailing dot
 * ignored on either side, as A-labels: the caller passes the A-label form
 * (mailbox.h gives it for header mailboxes); a domain with 8-bit bytes is
 * compared byte-wise and so matches only a grant spelled with the same
 * bytes.  Local parts compare exactly, case-sensitively, in their unquoted
 * form ("a b"@x has the local part  a b ).  Label boundaries are
 * respected: "evil-example.com" and "example.com.evil.org" are not
 * "example.com".  Pure functions: no I/O, no allocation, no globals.
 */
#ifndef RELAYD_GRANT_H
#define RELAYD_GRANT_H

#include <stddef.h>

/* 1 when grant allows local@domain, else 0 (also for malformed grants). */
int	grant_match(const char *grant, const char *local, size_t llen,
	    const char *domain);
/* Index of the first grant that allows local@domain, or -1. */
int	grant_find(char *const *grants, size_t n, const char *local,
	    size_t llen, const char *domain);
/*
 * 1 when some grant covers the domain itself: a DOMAIN grant equal to it,
 * a *.DOMAIN grant above it, or an address grant at it.  Used for
 * addresses seen in display names, where only the domain matters.
 */
int	grant_owns_domain(const char *grant, const char *domain, size_t dlen);

/*
 * The display-name check of issue 3: scan a decoded display name (any
 * bytes, len given) for text that looks like an address, LOCAL@DOMAIN
 * where LOCAL is one or more atext or 8-bit bytes and DOMAIN has at least
 * two non-empty labels of letters, digits, '-', '_' or 8-bit bytes.  The
 * at sign may also be U+FF20 or U+FE6B and a dot U+FF0E, U+3002 or U+FF61
 * (look-alikes a reader shows as such).  Returns 1 when one such address
 * has a domain that no grant owns (grant_owns_domain), copying it (with
 * at most the last 64 octets of its local part), NUL-terminated and cut
 * to cap - 1 bytes, into found when found is not NULL; 0 when none does.
 */
int	display_name_foreign_address(char *const *grants, size_t n,
	    const char *display, size_t len, char *found, size_t cap);

#endif

/*
 * sender_policy: who may send as whom.
 *
 * An authenticated account may use, as MAIL FROM and in the From, Sender,
 * Resent-From and Resent-Sender fields, only addresses its grants cover
 * (users file: DOMAIN, *.DOMAIN, LOCAL@DOMAIN).  The header fields are
 * parsed once, by mailbox_parse_headers() (common/mailbox.h); its From
 * result drives the ownership check, the [domain] section that signs (DKIM
 * d=) and the bounce domain of the VERP envelope senders.
 *
 * The [domain] section for a From domain is the section of that name, or
 * failing that the nearest parent domain's section (a *.DOMAIN grant):
 * d= is then the section's domain, which aligns with the From domain under
 * DMARC's relaxed alignment (RFC 7489 3.1.1).  No section: refused, since
 * relayd never sends unsigned.
 */
#ifndef RELAYD_SENDER_POLICY_H
#define RELAYD_SENDER_POLICY_H

#include <stddef.h>

#include "mailbox.h"

struct config;
struct config_domain;
struct user;

#define POLICY_TEXT_MAX	400

struct policy_verdict {
	int		 code;		/* 250, 550 or 553 */
	char		 status[8];	/* "2.1.0", "5.7.1", "5.6.0" */
	char		 text[POLICY_TEXT_MAX];	/* reply text after the codes */
	int		 grant;		/* grant that allowed From, or -1 */
};

/*
 * MAIL FROM (addr without <>; "" for the null sender, which is always
 * accepted: RFC 6409 needs it for read receipts).  Returns 0 and a 250
 * verdict when the account owns the address, else -1 and
 * "553 5.7.1 <ADDR>: Sender address rejected: not owned by user NAME".
 */
int	sender_policy_mail_from(const struct user *, const char *addr,
	    int utf8, struct policy_verdict *);

/*
 * The header section (hdr: the message from its first byte; scanning stops
 * at the empty line).  sh receives the parse.  On success returns 0, sets
 * *domp to the [domain] section that signs, and the verdict's grant; else
 * -1 with a 550 5.6.0 (malformed) or 550 5.7.1 (not owned, foreign address
 * in a display name, no signing domain) verdict.
 */
int	sender_policy_headers(const struct config *, const struct user *,
	    const char *hdr, size_t len, int utf8, struct sender_headers *sh,
	    const struct config_domain **domp, struct policy_verdict *);

/* The [domain] section that signs for a From domain, or NULL. */
const struct config_domain *sender_policy_domain(const struct config *,
	    const char *from_domain);

#endif

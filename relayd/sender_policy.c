/*
 * sender_policy: ownership of MAIL FROM and of the sender header fields
 * for an authenticated account.  See sender_policy.h.  Pure decisions over
 * the parse of mailbox.c and the grants of users.c: no I/O, no state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "grant.h"
#include "log.h"
#include "mailbox.h"
#include "sender_policy.h"
#include "users.h"

static void
verdict_set(struct policy_verdict *v, int code, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
verdict_set(struct policy_verdict *v, int code, const char *status,
    const char *fmt, ...)
{
	va_list	 ap;

	v->code = code;
	snprintf(v->status, sizeof(v->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

/* Printable ASCII for a reply: anything else becomes '?'. */
static void
reply_safe(char *dst, size_t cap, const char *src, size_t n)
{
	size_t	 i, j = 0;

	for (i = 0; i < n && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[j] = '\0';
}

int
sender_policy_mail_from(const struct user *u, const char *addr, int utf8,
    struct policy_verdict *v)
{
	struct mailbox	 mb;
	char		 reason[MAILBOX_REASON_MAX], safe[300];

	v->grant = -1;
	if (addr[0] == '\0') {
		verdict_set(v, 250, "2.1.0", "Ok");
		return 0;
	}
	/* The same unquoting and A-label form as the From check. */
	if (mailbox_parse_value(addr, strlen(addr), utf8, &mb, reason,
	    sizeof(reason)) == MAILBOX_OK &&
	    (v->grant = grant_find(u->grants, u->ngrants, mb.local,
	    mb.local_len, mb.domain)) >= 0) {
		verdict_set(v, 250, "2.1.0", "Ok");
		return 0;
	}
	reply_safe(safe, sizeof(safe), addr, strlen(addr));
	verdict_set(v, 553, "5.7.1", "<%s>: Sender address rejected: not "
	    "owned by user %s", safe, u->name);
	return -1;
}

const struct config_domain *
sender_policy_domain(const struct config *cf, const char *domain)
{
	const struct config_domain	*d;
	const char			*p = domain;

	while (p != NULL && *p != '\0') {
		if ((d = config_domain_find(cf, p)) != NULL)
			return d;
		if ((p = strchr(p, '.')) != NULL)
			p++;
	}
	return NULL;
}

/* One present sender field: owned, and no foreign address shown. */
static int
policy_field(const struct config *cf, const struct user *u,
    enum mailbox_field f, const struct mailbox *mb, struct policy_verdict *v)
{
	char	 found[300], safe[300], local[MAILBOX_LOCAL_MAX * 4 + 8];
	int	 g;

	g = grant_find(u->grants, u->ngrants, mb->local, mb->local_len,
	    mb->domain);
	if (g < 0) {
		reply_safe(local, sizeof(local), mb->local, mb->local_len);
		verdict_set(v, 550, "5.7.1", "%s address <%s@%s> is not owned "
		    "by user %s", mailbox_field_name(f), local, mb->domain,
		    u->name);
		return -1;
	}
	if (f == MAILBOX_FROM)
		v->grant = g;
	if (cf->display_name_address_allow)
		return 0;
	/* Readers show the display name (and comments); a quoted local
	 * part like "ceo@bank.example"@mine.example reads as one too. */
	if (display_name_foreign_address(u->grants, u->ngrants, mb->display,
	    mb->display_len, found, sizeof(found)) ||
	    display_name_foreign_address(u->grants, u->ngrants, mb->local,
	    mb->local_len, found, sizeof(found))) {
		reply_safe(safe, sizeof(safe), found, strlen(found));
		verdict_set(v, 550, "5.7.1", "%s display name shows the "
		    "address %s, which user %s does not own",
		    mailbox_field_name(f), safe, u->name);
		return -1;
	}
	return 0;
}

int
sender_policy_headers(const struct config *cf, const struct user *u,
    const char *hdr, size_t len, int utf8, struct sender_headers *sh,
    const struct config_domain **domp, struct policy_verdict *v)
{
	const struct config_domain	*d;
	enum mailbox_field		 f;

	*domp = NULL;
	v->grant = -1;
	if (mailbox_parse_headers(hdr, len, utf8, sh) != MAILBOX_OK) {
		verdict_set(v, 550, "5.6.0", "%s", sh->reason);
		return -1;
	}
	for (f = 0; f < MAILBOX_NFIELDS; f++) {
		if (!sh->f[f].present)
			continue;
		if (policy_field(cf, u, f, &sh->f[f].mb, v) == -1)
			return -1;
	}
	d = sender_policy_domain(cf, sh->f[MAILBOX_FROM].mb.domain);
	if (d == NULL) {
		verdict_set(v, 550, "5.7.1", "No DKIM key for the From domain "
		    "%s on this relay; ask the operator to add a [domain] "
		    "section", sh->f[MAILBOX_FROM].mb.domain);
		return -1;
	}
	*domp = d;
	verdict_set(v, 250, "2.0.0", "Ok");
	return 0;
}

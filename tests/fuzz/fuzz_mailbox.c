/*
 * fuzz_mailbox: libFuzzer target for mailbox_parse_headers(),
 * mailbox_parse_value() and mailbox_decode_2047().  The first byte's low
 * bit is utf8_ok; the rest is a header section (also parsed as one field
 * value, and decoded as RFC 2047 text into a small buffer).  Aborts when
 * a result breaks mailbox.h's promises, and when an accepted mailbox,
 * written back canonically as "From: <local@domain>", does not parse to
 * the same local part and domain.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_mailbox(const struct mailbox *mb, int utf8)
{
	size_t	 i, n, lab;

	if (mb->local_len == 0 || mb->local_len > MAILBOX_LOCAL_MAX ||
	    strlen(mb->local) != mb->local_len ||
	    strlen(mb->local_raw) < mb->local_len ||
	    strlen(mb->local_raw) > MAILBOX_LOCAL_MAX ||
	    mb->display_len > MAILBOX_DISPLAY_MAX ||
	    strstr(mb->local_raw, "=?") != NULL)
		abort();
	n = strlen(mb->domain);
	if (n == 0 || n > MAILBOX_DOMAIN_MAX || mb->domain[0] == '.' ||
	    mb->domain[n - 1] == '.' || strlen(mb->domain_raw) == 0)
		abort();
	lab = 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)mb->domain[i];

		if (c == '.') {
			if (lab == 0)
				abort();
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-') || ++lab > MAILBOX_LABEL_MAX)
			abort();
	}
	if (!utf8) {
		if (mb->utf8)
			abort();
		for (i = 0; mb->local_raw[i] != '\0'; i++)
			if ((unsigned char)mb->local_raw[i] >= 0x80)
				abort();
		for (i = 0; mb->domain_raw[i] != '\0'; i++)
			if ((unsigned char)mb->domain_raw[i] >= 0x80)
				abort();
	}
}

static void
check_reparse(const struct mailbox *mb, int utf8)
{
	static struct sender_headers	 sh2;
	char				 h[MAILBOX_LOCAL_MAX +
					    MAILBOX_DOMAIN_MAX + 32];
	int				 n;

	n = snprintf(h, sizeof(h), "From: <%s@%s>\r\n\r\n", mb->local_raw,
	    mb->domain_raw);
	if (n < 0 || (size_t)n >= sizeof(h))
		abort();
	if (mailbox_parse_headers(h, (size_t)n, utf8, &sh2) != MAILBOX_OK ||
	    strcmp(sh2.f[MAILBOX_FROM].mb.local, mb->local) != 0 ||
	    strcmp(sh2.f[MAILBOX_FROM].mb.domain, mb->domain) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sender_headers	 sh;
	static struct mailbox		 mb;
	char				 why[MAILBOX_REASON_MAX], small[16];
	const char			*p;
	int				 utf8, k, r;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	p = (const char *)data + 1;
	size--;

	r = mailbox_parse_headers(p, size, utf8, &sh);
	if (r != (int)sh.verdict || sh.header_len > size)
		abort();
	if (r == MAILBOX_OK) {
		if (strcmp(sh.status, "2.0.0") != 0 ||
		    sh.f[MAILBOX_FROM].count != 1 ||
		    !sh.f[MAILBOX_FROM].present)
			abort();
		for (k = 0; k < MAILBOX_NFIELDS; k++) {
			if (sh.f[k].count > 1 ||
			    sh.f[k].present != (sh.f[k].count == 1))
				abort();
			if (sh.f[k].present) {
				check_mailbox(&sh.f[k].mb, utf8);
				check_reparse(&sh.f[k].mb, utf8);
			}
		}
		if (memchr(p, '\0', sh.header_len) != NULL)
			abort();
	} else if (r == MAILBOX_PERMFAIL) {
		if (strcmp(sh.status, "5.6.0") != 0 || sh.reason[0] == '\0' ||
		    (unsigned)sh.bad >= MAILBOX_NFIELDS)
			abort();
		(void)mailbox_field_name(sh.bad);
	} else
		abort();

	if (mailbox_parse_value(p, size, utf8, &mb, why, sizeof(why)) ==
	    MAILBOX_OK) {
		check_mailbox(&mb, utf8);
		if (memchr(p, ',', size) != NULL && memchr(p, '"', size) ==
		    NULL && memchr(p, '(', size) == NULL)
			abort();	/* a bare list can never be one mailbox */
	} else if (why[0] == '\0')
		abort();

	r = mailbox_decode_2047(p, size, small, sizeof(small));
	if (r >= (int)sizeof(small) || (r >= 0 && small[r] != '\0'))
		abort();
	return 0;
}

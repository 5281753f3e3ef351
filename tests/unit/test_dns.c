/*
 * test_dns: the pure parts of the resolver: c-ares status mapping and the
 * RFC 5321 section 5.1 / RFC 7505 ordering of MX answers.  The resolver
 * itself is tested against dnsmasq by tests/integration/test_dns.py.
 */
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "tap.h"

static void
test_status(void)
{
	static const struct {
		int		 st;
		enum dns_status	 want;
		const char	*enh;
		const char	*reason;
	} t[] = {
		{ ARES_SUCCESS, DNS_OK, "", "" },
		{ ARES_ENODATA, DNS_OK, "", "" },
		{ ARES_ENOTFOUND, DNS_PERMFAIL, "5.1.2",
		    "MX lookup for x.test: domain does not exist (NXDOMAIN)" },
		{ ARES_EBADNAME, DNS_PERMFAIL, "5.1.2",
		    "MX lookup for x.test: not a valid domain name" },
		{ ARES_ESERVFAIL, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: server failure (SERVFAIL)" },
		{ ARES_EREFUSED, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: query refused (REFUSED)" },
		{ ARES_ETIMEOUT, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: timed out" },
		{ ARES_ECONNREFUSED, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: no usable answer from the DNS "
		    "servers (SERVFAIL, REFUSED or unreachable)" },
		{ ARES_EBADRESP, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: malformed answer" },
		{ ARES_EDESTRUCTION, DNS_TEMPFAIL, "4.4.3",
		    "MX lookup for x.test: lookup cancelled" },
		{ ARES_ENOMEM, DNS_TEMPFAIL, "4.4.3", NULL },
	};
	char		 enh[16], reason[DNS_REASON_MAX];
	size_t		 i;
	enum dns_status	 s;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		s = dns_status_from_ares(t[i].st, "x.test", "MX", enh, reason,
		    sizeof(reason));
		ok(s == t[i].want && strcmp(enh, t[i].enh) == 0 &&
		    (t[i].reason == NULL || strcmp(reason, t[i].reason) == 0),
		    "status %d -> %s %s \"%s\"", t[i].st, dns_status_name(s),
		    enh, reason);
	}
}

/* Deterministic "random" choices for the shuffle. */
static uint32_t
pick_zero(uint32_t bound)
{
	return 0;
}

static uint32_t
pick_last(uint32_t bound)
{
	return bound - 1;
}

#define MAXRR	24

static const struct {
	const char	*name;
	const char	*in;		/* "pref host pref host ..." */
	uint32_t	(*uniform)(uint32_t);
	enum dns_status	 want;
	const char	*out;		/* hosts in order, space-separated */
	const char	*enh;
} order_cases[] = {
	{ "empty", "", pick_zero, DNS_OK, "", "" },
	{ "one", "10 mx.a.test", pick_zero, DNS_OK, "mx.a.test", "" },
	{ "sorted", "20 b 10 a 30 c", pick_zero, DNS_OK, "a b c", "" },
	{ "sorted, stable for distinct", "5 z 0 y 65535 x", pick_zero, DNS_OK,
	    "y z x", "" },
	{ "equal shuffled (pick 0)", "10 a 10 b 10 c", pick_zero, DNS_OK,
	    "b c a", "" },
	{ "equal shuffled (pick last: identity)", "10 a 10 b 10 c",
	    pick_last, DNS_OK, "a b c", "" },
	{ "groups shuffled separately", "20 c 10 a 20 d 10 b", pick_zero,
	    DNS_OK, "b a d c", "" },
	{ "final dot stripped", "10 mx.a.test.", pick_zero, DNS_OK,
	    "mx.a.test", "" },
	{ "duplicate kept at best preference", "20 a 10 b 30 A", pick_zero,
	    DNS_OK, "b a", "" },
	{ "null MX (empty host)", "0 -", pick_zero, DNS_PERMFAIL, "",
	    "5.1.10" },
	{ "null MX (dot)", "0 .", pick_zero, DNS_PERMFAIL, "", "5.1.10" },
	{ "null MX with nonzero preference", "10 .", pick_zero, DNS_PERMFAIL,
	    "", "5.1.10" },
	{ "two null MX", "0 . 0 -", pick_zero, DNS_PERMFAIL, "", "5.1.10" },
	{ "null MX among others is ignored", "0 . 10 a", pick_zero, DNS_OK,
	    "a", "" },
	{ "capped at DNS_MX_HOSTS_MAX",
	    "1 a 2 b 3 c 4 d 5 e 6 f 7 g 8 h 9 i 10 j 11 k 12 l 13 m 14 n "
	    "15 o 16 p 17 q 18 r", pick_last, DNS_OK,
	    "a b c d e f g h i j k l m n o p", "" },
};

static size_t
parse_rr(const char *in, struct dns_mx_rr *rr)
{
	char	 copy[512], *p, *save = NULL, *pref;
	size_t	 n = 0;

	snprintf(copy, sizeof(copy), "%s", in);
	for (pref = strtok_r(copy, " ", &save); pref != NULL && n < MAXRR;
	    pref = strtok_r(NULL, " ", &save)) {
		if ((p = strtok_r(NULL, " ", &save)) == NULL)
			break;
		rr[n].preference = (unsigned)atoi(pref);
		/* "-" stands for c-ares' empty root name. */
		snprintf(rr[n].host, sizeof(rr[n].host), "%s",
		    strcmp(p, "-") == 0 ? "" : p);
		n++;
	}
	return n;
}

static void
test_order(void)
{
	struct dns_mx_rr rr[MAXRR];
	char		 got[512], enh[16], reason[DNS_REASON_MAX];
	size_t		 i, j, n, nout, o;
	enum dns_status	 s;

	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++) {
		n = parse_rr(order_cases[i].in, rr);
		nout = 99;
		s = dns_mx_order(rr, n, &nout, order_cases[i].uniform,
		    "a.test", enh, reason, sizeof(reason));
		got[0] = '\0';
		for (j = 0, o = 0; s == DNS_OK && j < nout; j++)
			o += snprintf(got + o, sizeof(got) - o, "%s%s",
			    j ? " " : "", rr[j].host);
		ok(s == order_cases[i].want &&
		    strcmp(got, order_cases[i].out) == 0 &&
		    strcmp(enh, order_cases[i].enh) == 0,
		    "order %s: %s [%s] %s", order_cases[i].name,
		    dns_status_name(s), got, enh);
		if (s == DNS_PERMFAIL)
			ok(strcmp(reason, "a.test does not accept mail (null "
			    "MX, RFC 7505)") == 0 && nout == 0,
			    "order %s: reason \"%s\"", order_cases[i].name,
			    reason);
	}
}

/* With the real random source, every order of three equal hosts shows. */
static void
test_shuffle_random(void)
{
	struct dns_mx_rr rr[4];
	char		 enh[16], reason[DNS_REASON_MAX];
	int		 seen[3][3], firstpref = 1, i, j, k;
	size_t		 nout;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 600; i++) {
		parse_rr("10 a 10 b 10 c 5 first", rr);
		dns_mx_order(rr, 4, &nout, NULL, "a.test", enh, reason,
		    sizeof(reason));
		if (strcmp(rr[0].host, "first") != 0)
			firstpref = 0;
		for (j = 1; j < 4; j++) {
			k = rr[j].host[0] - 'a';
			if (k >= 0 && k < 3)
				seen[j - 1][k]++;
		}
	}
	ok(firstpref, "random: the lower preference always first");
	for (j = 0; j < 3; j++)
		for (k = 0; k < 3; k++)
			ok(seen[j][k] > 100, "random: host %c at position %d "
			    "%d times of 600", 'a' + k, j + 1, seen[j][k]);
}

int
main(void)
{
	test_status();
	test_order();
	test_shuffle_random();
	return tap_done();
}

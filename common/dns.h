/*
 * dns: asynchronous MX, address and TXT lookups with c-ares, driven by the
 * libevent loop (no blocking resolver call anywhere), and the pure
 * answer-processing of RFC 5321 section 5.1 and RFC 7505.
 *
 * Usage (loop thread only):
 *
 *	struct dns *d = dns_new(base, cfg->dns_servers, 0, 0, err, errlen);
 *	struct dns_query *q = dns_mx_lookup(d, "example.org", 25, cb, arg);
 *	...
 *	cb(struct dns_mx_result *res, void *arg)   -- res is the callee's:
 *	    for each res->hosts[i] in order, each res->hosts[i].addrs[j]:
 *	        try a connection; on 4xx/failure go on to the next address
 *	    dns_mx_result_free(res);
 *
 * A query handle is valid until its callback has been called (the handle
 * must not be used inside or after the callback) or until dns_cancel().
 * Callbacks always run from an event of their own, never from inside
 * dns_mx_lookup() or from inside c-ares, so a callback may start new
 * queries, cancel other queries, or dns_free() the resolver.
 */
#ifndef RELAYD_DNS_H
#define RELAYD_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;

enum dns_status {
	DNS_OK = 0,
	DNS_TEMPFAIL,
	DNS_PERMFAIL,
};

const char *dns_status_name(enum dns_status);

#define DNS_NAME_MAX		255	/* RFC 1035 section 2.3.4 */
#define DNS_MX_HOSTS_MAX	16	/* MX hosts kept (the best ones) */
#define DNS_ADDRS_MAX		16	/* addresses kept per host */
#define DNS_TXT_MAX		64	/* TXT records kept per name */
#define DNS_REASON_MAX		256

/* One MX host, with its addresses (IPv6 first, then IPv4, port set). */
struct dns_host {
	char			 name[DNS_NAME_MAX + 1]; /* no final dot */
	unsigned		 preference;
	size_t			 naddrs;
	struct sockaddr_storage	*addrs;
};

/*
 * The result of an MX lookup.  status OK: nhosts >= 1 and every host has
 * at least one address, in the order to try (RFC 5321 section 5.1).
 * TEMPFAIL or PERMFAIL: nhosts is 0, enhanced holds "4.4.3", "5.1.2" or
 * "5.1.10" and reason a sentence for a DSN or a log.  implicit is 1 when
 * the domain had no MX records and is its own host.
 */
struct dns_mx_result {
	enum dns_status		 status;
	char			 enhanced[16];
	char			 reason[DNS_REASON_MAX];
	int			 implicit;
	size_t			 nhosts;
	struct dns_host		*hosts;
};

/* Releases res and everything it holds.  NULL is a no-op. */
void	dns_mx_result_free(struct dns_mx_result *res);

/*
 * The result of a TXT lookup: one string per record, its character
 * strings concatenated (RFC 7208 section 3.3 and RFC 6376 section 3.6.2.2
 * both join them so).  A name without TXT records is OK with ntxt 0;
 * NXDOMAIN is PERMFAIL 5.1.2.
 */
struct dns_txt_result {
	enum dns_status		 status;
	char			 enhanced[16];
	char			 reason[DNS_REASON_MAX];
	size_t			 ntxt;
	char			**txt;	/* NUL-terminated; may hold NULs */
	size_t			*txtlen;
};

void	dns_txt_result_free(struct dns_txt_result *res);

/* The callback owns the result and frees it with the matching _free(). */
typedef void (*dns_mx_cb)(struct dns_mx_result *, void *arg);
typedef void (*dns_txt_cb)(struct dns_txt_result *, void *arg);

/*
 * A resolver on base.  servers: "" or NULL for the system resolver
 * (/etc/resolv.conf), else "IP[:PORT],IP[:PORT]" ([V6]:PORT for IPv6), as
 * [dns] servers in the configuration.  timeout_ms (0: 5000) is c-ares'
 * first per-try timeout, tries (0: 3) its attempts per server.  /etc/hosts
 * is never read.  Returns NULL with a message in err on failure.
 */
struct dns *dns_new(struct event_base *base, const char *servers,
	    unsigned timeout_ms, unsigned tries, char *err, size_t errlen);
/* Cancels every query (no callback runs afterwards) and frees d. */
void	dns_free(struct dns *d);

/*
 * Look up domain's MX hosts and their addresses; port is stored in every
 * address.  RFC 5321 section 5.1: MX records by preference, equal ones
 * shuffled; no MX records: the domain itself (implicit MX); a null MX
 * (RFC 7505): PERMFAIL 5.1.10; NXDOMAIN: PERMFAIL 5.1.2; SERVFAIL,
 * REFUSED, timeouts and other errors: TEMPFAIL 4.4.3; hosts without
 * addresses are skipped, and none left is TEMPFAIL 4.4.3.  Returns the
 * handle, or NULL for an empty or over-long name or when out of memory
 * (no callback then).
 */
struct dns_query *dns_mx_lookup(struct dns *d, const char *domain,
	    uint16_t port, dns_mx_cb cb, void *arg);
struct dns_query *dns_txt_lookup(struct dns *d, const char *name,
	    dns_txt_cb cb, void *arg);
/*
 * The query's callback will never be called; q is invalid afterwards.
 * Must not be called for a query whose callback already ran.
 */
void	dns_cancel(struct dns_query *q);
/* Queries still pending on d (for tests and stats). */
size_t	dns_pending(const struct dns *d);

/*
 * Pure answer processing, exposed for the unit tests.
 */

/* One MX record as c-ares gives it: host "" is the root (null MX). */
struct dns_mx_rr {
	char		 host[DNS_NAME_MAX + 1];
	unsigned	 preference;
};

/*
 * Map a c-ares status (ARES_SUCCESS, ARES_ENOTFOUND, ...) of a query for
 * name (used in the reason) to a status, enhanced code and reason.
 * ARES_ENODATA maps to OK: "no records of this type" is an answer.
 */
enum dns_status dns_status_from_ares(int ares_status, const char *name,
	    const char *type, char enhanced[16], char *reason,
	    size_t reasonlen);

/*
 * Order rr[0..n-1] in place for delivery: by preference, records of
 * equal preference shuffled with uniform(bound) (returns 0..bound-1;
 * NULL: arc4random_uniform).  Detects a null MX: a record whose host is
 * "" or ".".  RFC 7505 section 3 says a null MX is the domain's only
 * record; one among others is ignored (the others are usable).  Removes
 * duplicates and final dots, keeps at most DNS_MX_HOSTS_MAX.  Returns
 * DNS_OK with the new count in *nout, or DNS_PERMFAIL (5.1.10, null MX)
 * with the reason set.  n == 0 is OK with *nout 0: the caller applies
 * the implicit MX.
 */
enum dns_status dns_mx_order(struct dns_mx_rr *rr, size_t n, size_t *nout,
	    uint32_t (*uniform)(uint32_t), const char *domain,
	    char enhanced[16], char *reason, size_t reasonlen);

#endif

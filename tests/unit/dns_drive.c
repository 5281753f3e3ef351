/*
 * dns_drive: a small command-line driver of common/dns.c for
 * tests/integration/test_dns.py (not a unit test).
 *
 *   dns_drive SERVERS mx|txt NAME [TIMEOUT_MS] [normal|cancel|free]
 *
 * Prints the result: "status S enhanced E implicit I", "reason R", then
 * one "host NAME PREF ADDR..." line per MX host or "txt TEXT" per record.
 * cancel: the query is cancelled at once, a second one (same name) runs
 * to the end; free: the resolver is freed right after two queries were
 * sent; freelater: the same after 50 ms of the loop (for a server that
 * never answers).  A
 * callback of a cancelled query prints "BUG callback after cancel".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dns.h"

static struct event_base *base;
static int	 remaining;

static void
print_addr(const struct sockaddr_storage *ss)
{
	char	 a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		printf(" [%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		printf(" %s:%u", a, ntohs(s4->sin_port));
	}
}

static void
mx_done(struct dns_mx_result *r, void *arg)
{
	size_t	 i, j;

	if (arg != NULL) {
		printf("BUG callback after cancel\n");
		dns_mx_result_free(r);
		return;
	}
	printf("status %s enhanced %s implicit %d\n",
	    dns_status_name(r->status), r->enhanced[0] ? r->enhanced : "-",
	    r->implicit);
	printf("reason %s\n", r->reason);
	for (i = 0; i < r->nhosts; i++) {
		printf("host %s %u", r->hosts[i].name, r->hosts[i].preference);
		for (j = 0; j < r->hosts[i].naddrs; j++)
			print_addr(&r->hosts[i].addrs[j]);
		printf("\n");
	}
	dns_mx_result_free(r);
	if (--remaining == 0)
		event_base_loopexit(base, NULL);
}

static void
txt_done(struct dns_txt_result *r, void *arg)
{
	size_t	 i;

	if (arg != NULL) {
		printf("BUG callback after cancel\n");
		dns_txt_result_free(r);
		return;
	}
	printf("status %s enhanced %s implicit 0\n", dns_status_name(r->status),
	    r->enhanced[0] ? r->enhanced : "-");
	printf("reason %s\n", r->reason);
	for (i = 0; i < r->ntxt; i++)
		printf("txt %s\n", r->txt[i]);
	dns_txt_result_free(r);
	if (--remaining == 0)
		event_base_loopexit(base, NULL);
}

static struct dns_query *
start(struct dns *d, const char *type, const char *name, void *arg)
{
	if (strcmp(type, "mx") == 0)
		return dns_mx_lookup(d, name, 25, mx_done, arg);
	return dns_txt_lookup(d, name, txt_done, arg);
}

int
main(int argc, char **argv)
{
	struct dns		*d;
	struct dns_query	*q;
	struct timeval		 tv = { 20, 0 }, tv2 = { 0, 50000 };
	char			 err[256];
	const char		*mode;
	unsigned		 tmo;

	if (argc < 4) {
		fprintf(stderr, "usage: dns_drive SERVERS mx|txt NAME "
		    "[TIMEOUT_MS] [normal|cancel|free]\n");
		return 2;
	}
	tmo = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
	mode = argc > 5 ? argv[5] : "normal";
	base = event_base_new();
	if ((d = dns_new(base, argv[1], tmo, tmo ? 1 : 0, err,
	    sizeof(err))) == NULL) {
		printf("dns_new failed: %s\n", err);
		return 1;
	}
	if (strcmp(mode, "cancel") == 0) {
		q = start(d, argv[2], argv[3], (void *)1);
		dns_cancel(q);
		remaining = 1;
		start(d, argv[2], argv[3], NULL);
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		printf("pending %zu\n", dns_pending(d));
	} else if (strcmp(mode, "free") == 0) {
		start(d, argv[2], argv[3], (void *)1);
		start(d, argv[2], argv[3], (void *)1);
		printf("pending %zu\n", dns_pending(d));
		dns_free(d);
		d = NULL;
		event_base_loopexit(base, &tv2);
		event_base_dispatch(base);
		printf("freed\n");
	} else if (strcmp(mode, "freelater") == 0) {
		/* For a server that never answers: free after 50 ms. */
		start(d, argv[2], argv[3], (void *)1);
		start(d, argv[2], argv[3], (void *)1);
		event_base_loopexit(base, &tv2);
		event_base_dispatch(base);
		printf("pending %zu\n", dns_pending(d));
		dns_free(d);
		d = NULL;
		event_base_loopexit(base, &tv2);
		event_base_dispatch(base);
		printf("freed\n");
	} else {
		remaining = 1;
		start(d, argv[2], argv[3], NULL);
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	dns_free(d);
	event_base_free(base);
	return 0;
}

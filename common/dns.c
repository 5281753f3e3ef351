/*
 * dns: c-ares on the libevent loop.  MX lookups with the RFC 5321 section
 * 5.1 rules (and RFC 7505 null MX), the address lookups of the MX hosts,
 * and TXT lookups; plus the pure functions that order MX answers and map
 * c-ares status codes to OK / TEMPFAIL / PERMFAIL.
 *
 * Owns: one c-ares channel per struct dns, one libevent event per socket
 * c-ares opens (ARES_OPT_SOCK_STATE_CB), a timer set from ares_timeout(),
 * and every pending query.  A query lives until all of its c-ares
 * callbacks have come back; a cancelled query just stops reporting.
 * Results reach the caller from a per-query event, never from inside
 * c-ares, so callers may free anything from their callback.
 *
 * Limits: DNS_MX_RR_MAX MX records read per answer, DNS_MX_HOSTS_MAX
 * hosts kept, DNS_ADDRS_MAX addresses per host, DNS_TXT_MAX TXT records.
 * /etc/hosts is not consulted (ARES_OPT_LOOKUPS "b").
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>
#include <event2/event.h>

#include "dns.h"

#define DNS_MX_RR_MAX		64	/* MX records read from one answer */

struct dns_fd {
	LIST_ENTRY(dns_fd)	 entry;
	struct dns		*d;
	ares_socket_t		 fd;
	struct event		*ev;
};

struct dns {
	struct event_base	*base;
	ares_channel		 channel;
	struct event		*timer;
	LIST_HEAD(, dns_fd)	 fds;
	TAILQ_HEAD(, dns_query)	 queries;
	size_t			 npending;
	int			 lib_init;
};

enum dns_kind { DNS_KIND_MX, DNS_KIND_TXT };

/* One address lookup of an MX host; points back to its query. */
struct dns_sub {
	struct dns_query	*q;
	size_t			 idx;
	size_t			 naddrs;
	struct sockaddr_storage	 addrs[DNS_ADDRS_MAX];
	int			 status;	/* c-ares status */
};

struct dns_query {
	TAILQ_ENTRY(dns_query)	 entry;
	struct dns		*d;
	enum dns_kind		 kind;
	int			 cancelled;
	int			 starting;	/* inside the start loop */
	unsigned		 outstanding;	/* c-ares callbacks to come */
	struct event		*done_ev;
	char			 name[DNS_NAME_MAX + 1];
	uint16_t		 port;
	dns_mx_cb		 mxcb;
	dns_txt_cb		 txtcb;
	void			*arg;
	struct dns_mx_result	*mx;
	struct dns_txt_result	*txt;
	struct dns_mx_rr	 rr[DNS_MX_HOSTS_MAX];
	size_t			 nrr;
	struct dns_sub		 subs[DNS_MX_HOSTS_MAX];
};

static void	dns_rearm(struct dns *);

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_PERMFAIL:
		return "permfail";
	}
	return "?";
}

/*
 * Pure parts.
 */

enum dns_status
dns_status_from_ares(int st, const char *name, const char *type,
    char enhanced[16], char *reason, size_t reasonlen)
{
	const char	*what;

	switch (st) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
		enhanced[0] = '\0';
		if (reasonlen > 0)
			reason[0] = '\0';
		return DNS_OK;
	case ARES_ENOTFOUND:
		/* RFC 3463: 5.1.2 bad destination system address. */
		memcpy(enhanced, "5.1.2", 6);
		snprintf(reason, reasonlen, "%s lookup for %s: domain does "
		    "not exist (NXDOMAIN)", type, name);
		return DNS_PERMFAIL;
	case ARES_EBADNAME:
		memcpy(enhanced, "5.1.2", 6);
		snprintf(reason, reasonlen, "%s lookup for %s: not a valid "
		    "domain name", type, name);
		return DNS_PERMFAIL;
	case ARES_ESERVFAIL:
		what = "server failure (SERVFAIL)";
		break;
	case ARES_EREFUSED:
		what = "query refused (REFUSED)";
		break;
	case ARES_ETIMEOUT:
		what = "timed out";
		break;
	case ARES_ECONNREFUSED:
		/*
		 * c-ares 1.18 reports a SERVFAIL or REFUSED from every server
		 * (after trying the next one) as ECONNREFUSED too.
		 */
		what = "no usable answer from the DNS servers (SERVFAIL, "
		    "REFUSED or unreachable)";
		break;
	case ARES_EFORMERR:
	case ARES_EBADRESP:
		what = "malformed answer";
		break;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		what = "lookup cancelled";
		break;
	default:
		what = ares_strerror(st);
		break;
	}
	/* RFC 3463: 4.4.3 directory server failure. */
	memcpy(enhanced, "4.4.3", 6);
	snprintf(reason, reasonlen, "%s lookup for %s: %s", type, name, what);
	return DNS_TEMPFAIL;
}

static uint32_t
default_uniform(uint32_t bound)
{
	return arc4random_uniform(bound);
}

static void
strip_dot(char *s)
{
	size_t	 n = strlen(s);

	if (n > 0 && s[n - 1] == '.')
		s[n - 1] = '\0';
}

enum dns_status
dns_mx_order(struct dns_mx_rr *rr, size_t n, size_t *nout,
    uint32_t (*uniform)(uint32_t), const char *domain, char enhanced[16],
    char *reason, size_t reasonlen)
{
	struct dns_mx_rr	 tmp;
	size_t			 i, j, k, start, m, nnull = 0;

	if (uniform == NULL)
		uniform = default_uniform;
	enhanced[0] = '\0';
	if (reasonlen > 0)
		reason[0] = '\0';
	/* Null MX records: the root as exchange, "" from c-ares, or ".". */
	for (i = 0, m = 0; i < n; i++) {
		if (rr[i].host[0] == '\0' || strcmp(rr[i].host, ".") == 0) {
			nnull++;
			continue;
		}
		strip_dot(rr[i].host);
		if (m != i)
			rr[m] = rr[i];
		m++;
	}
	if (nnull > 0 && m == 0) {
		/* RFC 7505 section 4.1 and RFC 3463 (as updated): 5.1.10. */
		memcpy(enhanced, "5.1.10", 7);
		snprintf(reason, reasonlen, "%s does not accept mail (null MX, "
		    "RFC 7505)", domain);
		*nout = 0;
		return DNS_PERMFAIL;
	}
	n = m;
	/* Stable insertion sort by preference (n is small and bounded). */
	for (i = 1; i < n; i++) {
		tmp = rr[i];
		for (j = i; j > 0 && rr[j - 1].preference > tmp.preference;
		    j--)
			rr[j] = rr[j - 1];
		rr[j] = tmp;
	}
	/* RFC 5321 section 5.1: equal preferences in random order. */
	for (start = 0; start < n; start = i) {
		for (i = start + 1; i < n &&
		    rr[i].preference == rr[start].preference; i++)
			;
		for (k = i - start; k > 1; k--) {
			j = uniform((uint32_t)k);
			tmp = rr[start + k - 1];
			rr[start + k - 1] = rr[start + j];
			rr[start + j] = tmp;
		}
	}
	/* A host listed twice is tried once, at its best preference. */
	for (i = 0, m = 0; i < n; i++) {
		for (j = 0; j < m; j++)
			if (strcasecmp(rr[j].host, rr[i].host) == 0)
				break;
		if (j < m)
			continue;
		if (m != i)
			rr[m] = rr[i];
		m++;
	}
	*nout = m < DNS_MX_HOSTS_MAX ? m : DNS_MX_HOSTS_MAX;
	return DNS_OK;
}

/*
 * Results.
 */

void
dns_mx_result_free(struct dns_mx_result *res)
{
	size_t	 i;

	if (res == NULL)
		return;
	for (i = 0; i < res->nhosts; i++)
		free(res->hosts[i].addrs);
	free(res->hosts);
	free(res);
}

void
dns_txt_result_free(struct dns_txt_result *res)
{
	size_t	 i;

	if (res == NULL)
		return;
	for (i = 0; i < res->ntxt; i++)
		free(res->txt[i]);
	free(res->txt);
	free(res->txtlen);
	free(res);
}

/*
 * Sockets and timer.
 */

static void
dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_fd	*f = arg;
	struct dns	*d = f->d;	/* f may be freed inside c-ares */

	ares_process_fd(d->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_rearm(d);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns	*d = arg;

	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(d);
}

static void
dns_rearm(struct dns *d)
{
	struct timeval	 tv, *tvp;

	if (d->channel == NULL)
		return;
	if ((tvp = ares_timeout(d->channel, NULL, &tv)) != NULL)
		evtimer_add(d->timer, tvp);
	else
		evtimer_del(d->timer);
}

static void
dns_sock_state_cb(void *arg, ares_socket_t fd, int readable, int writable)
{
	struct dns	*d = arg;
	struct dns_fd	*f;
	short		 ev;

	LIST_FOREACH(f, &d->fds, entry)
		if (f->fd == fd)
			break;
	if (f != NULL) {
		event_free(f->ev);
		f->ev = NULL;
		if (!readable && !writable) {
			LIST_REMOVE(f, entry);
			free(f);
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		if ((f = calloc(1, sizeof(*f))) == NULL)
			return;	/* c-ares times the query out */
		f->d = d;
		f->fd = fd;
		LIST_INSERT_HEAD(&d->fds, f, entry);
	}
	ev = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	if ((f->ev = event_new(d->base, fd, ev, dns_fd_cb, f)) == NULL ||
	    event_add(f->ev, NULL) == -1) {
		/* XXX The query will time out: nothing better to do. */
		event_free(f->ev);
		f->ev = NULL;
	}
}

/*
 * Queries.
 */

static void
query_free(struct dns_query *q)
{
	TAILQ_REMOVE(&q->d->queries, q, entry);
	q->d->npending--;
	if (q->done_ev != NULL)
		event_free(q->done_ev);
	dns_mx_result_free(q->mx);
	dns_txt_result_free(q->txt);
	free(q);
}

static void
query_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query	*q = arg;
	struct dns_mx_result	*mx = q->mx;
	struct dns_txt_result	*txt = q->txt;
	dns_mx_cb		 mxcb = q->mxcb;
	dns_txt_cb		 txtcb = q->txtcb;
	void			*cbarg = q->arg;
	enum dns_kind		 kind = q->kind;

	q->mx = NULL;
	q->txt = NULL;
	query_free(q);
	if (kind == DNS_KIND_MX)
		mxcb(mx, cbarg);
	else
		txtcb(txt, cbarg);
}

/* All c-ares callbacks are in: report from an event of the query's own. */
static void
query_finish(struct dns_query *q)
{
	if (q->cancelled) {
		query_free(q);
		return;
	}
	event_active(q->done_ev, EV_TIMEOUT, 0);
}

static void
mx_build(struct dns_query *q)
{
	struct dns_mx_result	*res = q->mx;
	struct dns_sub		*s;
	size_t			 i;
	const char		*last = NULL;
	int			 last_st = ARES_SUCCESS;
	char			 enh[16], why[DNS_REASON_MAX];

	if (res->status != DNS_OK)
		return;
	if ((res->hosts = calloc(q->nrr ? q->nrr : 1,
	    sizeof(*res->hosts))) == NULL)
		goto nomem;
	for (i = 0; i < q->nrr; i++) {
		s = &q->subs[i];
		if (s->naddrs == 0) {
			last = q->rr[i].host;
			last_st = s->status;
			continue;
		}
		if ((res->hosts[res->nhosts].addrs = calloc(s->naddrs,
		    sizeof(*s->addrs))) == NULL)
			goto nomem;
		memcpy(res->hosts[res->nhosts].addrs, s->addrs,
		    s->naddrs * sizeof(*s->addrs));
		res->hosts[res->nhosts].naddrs = s->naddrs;
		memcpy(res->hosts[res->nhosts].name, q->rr[i].host,
		    sizeof(q->rr[i].host));
		res->hosts[res->nhosts].preference = q->rr[i].preference;
		res->nhosts++;
	}
	if (res->nhosts > 0)
		return;
	/* No host has an address: temporary (RFC 5321 section 5.1). */
	if (last != NULL && last_st != ARES_SUCCESS &&
	    last_st != ARES_ENODATA && dns_status_from_ares(last_st, last,
	    "address", enh, why, sizeof(why)) != DNS_OK)
		snprintf(res->reason, sizeof(res->reason), "no address for "
		    "any MX host of %.100s (%.120s)", q->name, why);
	else
		snprintf(res->reason, sizeof(res->reason), "no address for "
		    "any MX host of %.200s", q->name);
	res->status = DNS_TEMPFAIL;
	memcpy(res->enhanced, "4.4.3", 6);
	free(res->hosts);
	res->hosts = NULL;
	return;
nomem:
	for (i = 0; i < res->nhosts; i++)
		free(res->hosts[i].addrs);
	free(res->hosts);
	res->hosts = NULL;
	res->nhosts = 0;
	res->status = DNS_TEMPFAIL;
	memcpy(res->enhanced, "4.3.0", 6);
	snprintf(res->reason, sizeof(res->reason), "out of memory");
}

static void
addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_sub		*s = arg;
	struct dns_query	*q = s->q;
	struct ares_addrinfo_node *n;
	struct sockaddr_in6	*sin6;
	struct sockaddr_in	*sin;
	int			 fam, pass;

	s->status = status;
	if (!q->cancelled && status == ARES_SUCCESS && ai != NULL) {
		/* IPv6 first, then IPv4 (issue 5: "IPv6 and IPv4"). */
		for (pass = 0; pass < 2; pass++) {
			fam = pass == 0 ? AF_INET6 : AF_INET;
			for (n = ai->nodes; n != NULL &&
			    s->naddrs < DNS_ADDRS_MAX; n = n->ai_next) {
				if (n->ai_family != fam)
					continue;
				if (fam == AF_INET6 && n->ai_addrlen ==
				    sizeof(*sin6)) {
					sin6 = (struct sockaddr_in6 *)
					    &s->addrs[s->naddrs];
					memcpy(sin6, n->ai_addr, sizeof(*sin6));
					sin6->sin6_port = htons(q->port);
				} else if (fam == AF_INET && n->ai_addrlen ==
				    sizeof(*sin)) {
					sin = (struct sockaddr_in *)
					    &s->addrs[s->naddrs];
					memcpy(sin, n->ai_addr, sizeof(*sin));
					sin->sin_port = htons(q->port);
				} else
					continue;
				s->naddrs++;
			}
		}
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	if (--q->outstanding == 0 && !q->starting) {
		if (!q->cancelled)
			mx_build(q);
		query_finish(q);
	}
}

static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query	*q = arg;
	struct dns_mx_result	*res = q->mx;
	struct ares_mx_reply	*mx = NULL, *m;
	struct ares_addrinfo_hints hints;
	struct dns_mx_rr	 all[DNS_MX_RR_MAX];
	size_t			 n = 0, i;

	q->outstanding--;
	if (q->cancelled) {
		if (q->outstanding == 0)
			query_free(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	res->status = dns_status_from_ares(status, q->name, "MX",
	    res->enhanced, res->reason, sizeof(res->reason));
	if (res->status != DNS_OK)
		goto out;
	for (m = mx; m != NULL && n < DNS_MX_RR_MAX; m = m->next) {
		if (strlen(m->host) > DNS_NAME_MAX)
			continue;
		memcpy(all[n].host, m->host, strlen(m->host) + 1);
		all[n].preference = m->priority;
		n++;
	}
	if (mx != NULL)
		ares_free_data(mx);
	if (n == 0) {
		/* RFC 5321 section 5.1: no MX, the domain is its own host. */
		memcpy(all[0].host, q->name, sizeof(all[0].host));
		all[0].preference = 0;
		n = 1;
		res->implicit = 1;
	}
	res->status = dns_mx_order(all, n, &q->nrr, NULL, q->name,
	    res->enhanced, res->reason, sizeof(res->reason));
	if (res->status != DNS_OK)
		goto out;
	memcpy(q->rr, all, q->nrr * sizeof(all[0]));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = ARES_AI_NOSORT;
	q->starting = 1;
	for (i = 0; i < q->nrr; i++) {
		q->subs[i].q = q;
		q->subs[i].idx = i;
		q->outstanding++;
		ares_getaddrinfo(q->d->channel, q->rr[i].host, NULL, &hints,
		    addr_cb, &q->subs[i]);
	}
	q->starting = 0;
	if (q->outstanding > 0)
		return;
	mx_build(q);
out:
	query_finish(q);
}

static void
txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query	*q = arg;
	struct dns_txt_result	*res = q->txt;
	struct ares_txt_ext	*txt = NULL, *t;
	size_t			 n = 0, i, len;
	char			*p;

	q->outstanding--;
	if (q->cancelled) {
		if (q->outstanding == 0)
			query_free(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = ares_parse_txt_reply_ext(abuf, alen, &txt);
	res->status = dns_status_from_ares(status, q->name, "TXT",
	    res->enhanced, res->reason, sizeof(res->reason));
	if (res->status != DNS_OK)
		goto out;
	for (t = txt; t != NULL; t = t->next)
		if (t->record_start)
			n++;
	if (n > DNS_TXT_MAX)
		n = DNS_TXT_MAX;
	if (n > 0 && ((res->txt = calloc(n, sizeof(*res->txt))) == NULL ||
	    (res->txtlen = calloc(n, sizeof(*res->txtlen))) == NULL))
		goto nomem;
	/* RFC 7208 section 3.3: a record's strings are concatenated. */
	i = 0;
	for (t = txt; t != NULL; t = t->next) {
		if (t->record_start) {
			if (res->ntxt == n)
				break;
			i = res->ntxt++;
		}
		if (res->ntxt == 0)
			continue;	/* the first has record_start */
		len = res->txtlen[i];
		if ((p = realloc(res->txt[i], len + t->length + 1)) == NULL)
			goto nomem;
		memcpy(p + len, t->txt, t->length);
		p[len + t->length] = '\0';
		res->txt[i] = p;
		res->txtlen[i] = len + t->length;
	}
	for (i = 0; i < res->ntxt; i++)
		if (res->txt[i] == NULL &&
		    (res->txt[i] = calloc(1, 1)) == NULL)
			goto nomem;
	goto out;
nomem:
	for (i = 0; i < n; i++)
		if (res->txt != NULL)
			free(res->txt[i]);
	free(res->txt);
	free(res->txtlen);
	res->txt = NULL;
	res->txtlen = NULL;
	res->ntxt = 0;
	res->status = DNS_TEMPFAIL;
	memcpy(res->enhanced, "4.3.0", 6);
	snprintf(res->reason, sizeof(res->reason), "out of memory");
out:
	if (txt != NULL)
		ares_free_data(txt);
	query_finish(q);
}

static struct dns_query *
query_new(struct dns *d, enum dns_kind kind, const char *name)
{
	struct dns_query	*q;
	size_t			 len = strlen(name);

	if (len == 0 || len > DNS_NAME_MAX ||
	    (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	memcpy(q->name, name, len + 1);
	strip_dot(q->name);
	q->d = d;
	q->kind = kind;
	if ((q->done_ev = event_new(d->base, -1, 0, query_done_cb, q)) ==
	    NULL) {
		free(q);
		return NULL;
	}
	if (kind == DNS_KIND_MX)
		q->mx = calloc(1, sizeof(*q->mx));
	else
		q->txt = calloc(1, sizeof(*q->txt));
	if (q->mx == NULL && q->txt == NULL) {
		event_free(q->done_ev);
		free(q);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&d->queries, q, entry);
	d->npending++;
	return q;
}

struct dns_query *
dns_mx_lookup(struct dns *d, const char *domain, uint16_t port, dns_mx_cb cb,
    void *arg)
{
	struct dns_query	*q;

	if ((q = query_new(d, DNS_KIND_MX, domain)) == NULL)
		return NULL;
	q->port = port;
	q->mxcb = cb;
	q->arg = arg;
	q->outstanding = 1;
	ares_query(d->channel, q->name, ns_c_in, ns_t_mx, mx_cb, q);
	dns_rearm(d);
	return q;
}

struct dns_query *
dns_txt_lookup(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	struct dns_query	*q;

	if ((q = query_new(d, DNS_KIND_TXT, name)) == NULL)
		return NULL;
	q->txtcb = cb;
	q->arg = arg;
	q->outstanding = 1;
	ares_query(d->channel, q->name, ns_c_in, ns_t_txt, txt_cb, q);
	dns_rearm(d);
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL || q->cancelled)
		return;
	q->cancelled = 1;
	event_del(q->done_ev);
	/* Freed now if c-ares is done with it, else by its last callback. */
	if (q->outstanding == 0)
		query_free(q);
}

size_t
dns_pending(const struct dns *d)
{
	return d->npending;
}

struct dns *
dns_new(struct event_base *base, const char *servers, unsigned timeout_ms,
    unsigned tries, char *err, size_t errlen)
{
	struct dns		*d;
	struct ares_options	 opt;
	int			 rc, mask;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->base = base;
	LIST_INIT(&d->fds);
	TAILQ_INIT(&d->queries);
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	d->lib_init = 1;
	if ((d->timer = evtimer_new(base, dns_timer_cb, d)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(&opt, 0, sizeof(opt));
	opt.sock_state_cb = dns_sock_state_cb;
	opt.sock_state_cb_data = d;
	opt.timeout = timeout_ms ? (int)timeout_ms : 5000;
	opt.tries = tries ? (int)tries : 3;
	opt.lookups = (char *)"b";	/* DNS only, never /etc/hosts */
	opt.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_LOOKUPS | ARES_OPT_FLAGS;
	if ((rc = ares_init_options(&d->channel, &opt, mask)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		d->channel = NULL;
		goto fail;
	}
	if (servers != NULL && servers[0] != '\0' &&
	    (rc = ares_set_servers_ports_csv(d->channel, servers)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "[dns] servers \"%s\": %s", servers,
		    ares_strerror(rc));
		goto fail;
	}
	return d;
fail:
	dns_free(d);
	return NULL;
}

void
dns_free(struct dns *d)
{
	struct dns_query	*q;
	struct dns_fd		*f;

	if (d == NULL)
		return;
	/* No callback runs from here on; c-ares reports EDESTRUCTION. */
	TAILQ_FOREACH(q, &d->queries, entry) {
		q->cancelled = 1;
		event_del(q->done_ev);
	}
	if (d->channel != NULL) {
		ares_destroy(d->channel);
		d->channel = NULL;
	}
	while ((q = TAILQ_FIRST(&d->queries)) != NULL)
		query_free(q);
	while ((f = LIST_FIRST(&d->fds)) != NULL) {
		LIST_REMOVE(f, entry);
		if (f->ev != NULL)
			event_free(f->ev);
		free(f);
	}
	if (d->timer != NULL)
		event_free(d->timer);
	if (d->lib_init)
		ares_library_cleanup();
	free(d);
}

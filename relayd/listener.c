/*
 * listener: one evconnlistener per address of each [listen NAME] section
 * (SO_REUSEADDR, backlog 1024, IPV6_V6ONLY on IPv6 sockets), the
 * connection limits (max_connections per listener, connections_per_ip per
 * client address across all listeners), and the configuration generations
 * that sessions hold (see relayd.h).
 *
 * Owns the listening sockets and struct listener objects (freed by
 * listeners_free after every session ended) and the connection table.
 * Beyond a limit the client gets one 421 4.7.0 line, written without
 * blocking (lost if the socket buffer is full), and the socket is closed.
 * The PROXY protocol is not implemented: main refuses proxy_protocol = yes.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/crypto.h>

#include "config.h"
#include "dkim_keys.h"
#include "log.h"
#include "users.h"
#include "listener.h"
#include "relayd.h"
#include "smtp_server.h"

#define LISTEN_BACKLOG		1024
#define ACCEPT_RETRY_MS		100	/* after EMFILE and the like */

struct listener {
	struct listener		*next;
	struct relayd		*r;
	char			*name;
	size_t			 idx;		/* in cf->listens */
	unsigned		 nconns;
	struct evconnlistener	*evl[CONFIG_MAX_ADDRESSES];
	size_t			 nevl;
	struct event		*retry;
};

/* Generations. */

void
relayd_gen_free(struct relayd_gen *g)
{
	if (g == NULL)
		return;
	config_free(g->cf);
	users_free(g->users);
	SSL_CTX_free(g->tls);
	dkim_keys_free(g->keys);
	OPENSSL_cleanse(g->verp_key, sizeof(g->verp_key));
	free(g);
}

void
relayd_gen_set(struct relayd *r, struct relayd_gen *g)
{
	struct relayd_gen	*old = r->gen;

	r->gen = g;
	r->cf = g ? g->cf : NULL;
	r->users = g ? g->users : NULL;
	r->tls = g ? g->tls : NULL;
	if (old != NULL && old != g && old->refs == 0)
		relayd_gen_free(old);
}

struct relayd_gen *
relayd_gen_ref(struct relayd *r)
{
	r->gen->refs++;
	return r->gen;
}

void
relayd_gen_unref(struct relayd *r, struct relayd_gen *g)
{
	if (g == NULL)
		return;
	if (--g->refs == 0 && g != r->gen)
		relayd_gen_free(g);
}

/* Addresses. */

int
listener_parse_address(const char *s, char *host, size_t hostlen,
    char *port, size_t portlen)
{
	const char	*colon, *h, *hend;
	size_t		 n;

	if (s[0] == '[') {
		if ((hend = strchr(s, ']')) == NULL || hend[1] != ':')
			return -1;
		h = s + 1;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		if (memchr(s, ':', colon - s) != NULL)
			return -1;	/* bare IPv6 needs brackets */
		h = s;
		hend = colon;
	}
	n = hend - h;
	if (n >= hostlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	n = strlen(colon + 1);
	if (n == 0 || n >= portlen || strspn(colon + 1, "0123456789") != n)
		return -1;
	memcpy(port, colon + 1, n + 1);
	return 0;
}

void
listener_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void	*a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		/* Show IPv4-mapped addresses as IPv4, as everybody does. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
			    outlen) == NULL)
				snprintf(out, outlen, "?");
			return;
		}
		a = &s6->sin6_addr;
	} else if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else {
		snprintf(out, outlen, "unknown");
		return;
	}
	if (inet_ntop(sa->sa_family, a, out, outlen) == NULL)
		snprintf(out, outlen, "?");
}

/* Per-address connection table: chained hash on the address bytes. */

#define CONN_BUCKETS	4096

struct conn_entry {
	struct conn_entry	*next;
	unsigned char		 key[17];	/* family byte + address */
	unsigned		 count;
};

struct conn_table {
	struct conn_entry	*b[CONN_BUCKETS];
};

static void
conn_key(const struct sockaddr *sa, unsigned char key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, &s6->sin6_addr, 16);
		}
	} else if (sa->sa_family == AF_INET) {
		key[0] = 4;
		const struct sockaddr_in *s4 = (const void *)sa;

		memcpy(key + 1, &s4->sin_addr, 4);
	}
}

static unsigned
conn_hash(const unsigned char key[17])
{
	uint32_t	 h = 2166136261u;
	size_t		 i;

	for (i = 0; i < 17; i++) {
		h ^= key[i];
		h *= 16777619u;
	}
	return h % CONN_BUCKETS;
}

struct conn_table *
conn_table_new(void)
{
	return calloc(1, sizeof(struct conn_table));
}

void
conn_table_free(struct conn_table *t)
{
	struct conn_entry	*e, *next;
	size_t			 i;

	if (t == NULL)
		return;
	for (i = 0; i < CONN_BUCKETS; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(t);
}

int
conn_table_add(struct conn_table *t, const struct sockaddr *sa,
    unsigned limit)
{
	unsigned char		 key[17];
	struct conn_entry	*e;
	unsigned		 h;

	conn_key(sa, key);
	h = conn_hash(key);
	for (e = t->b[h]; e != NULL; e = e->next)
		if (memcmp(e->key, key, sizeof(key)) == 0)
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		memcpy(e->key, key, sizeof(key));
		e->next = t->b[h];
		t->b[h] = e;
	}
	if (limit != 0 && e->count >= limit)
		return -1;
	e->count++;
	return 0;
}

void
conn_table_del(struct conn_table *t, const struct sockaddr *sa)
{
	unsigned char		 key[17];
	struct conn_entry	*e, **pp;

	conn_key(sa, key);
	for (pp = &t->b[conn_hash(key)]; (e = *pp) != NULL; pp = &e->next)
		if (memcmp(e->key, key, sizeof(key)) == 0) {
			if (e->count > 0)
				e->count--;
			if (e->count == 0) {
				*pp = e->next;
				free(e);
			}
			return;
		}
}

/* Accepting. */

static void
listener_refuse(int fd, const char *hostname, const char *why)
{
	char	 line[512];
	int	 n;

	n = snprintf(line, sizeof(line),
	    "421 4.7.0 %s Too many connections%s, try again later\r\n",
	    hostname, why);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener			*l = arg;
	struct relayd			*r = l->r;
	const struct config_listen	*lc;
	char				 addr[INET6_ADDRSTRLEN];

	if (r->draining) {
		close(fd);
		return;
	}
	lc = &r->cf->listens[l->idx];
	listener_addr_str(sa, addr, sizeof(addr));
	if (lc->max_connections != 0 && l->nconns >= lc->max_connections) {
		log_warn("-", "refused client=%s listener=%s "
		    "reason=max_connections limit=%u", addr, l->name,
		    lc->max_connections);
		listener_refuse(fd, r->cf->hostname, "");
		return;
	}
	if (conn_table_add(r->conns, sa, r->cf->connections_per_ip) == -1) {
		log_warn("-", "refused client=%s listener=%s "
		    "reason=connections_per_ip limit=%u", addr, l->name,
		    r->cf->connections_per_ip);
		listener_refuse(fd, r->cf->hostname, " from your address");
		return;
	}
	l->nconns++;
	if (smtp_session_new(r, l, lc, fd, sa, salen) == NULL) {
		/* smtp_session_new closed fd. */
		l->nconns--;
		conn_table_del(r->conns, sa);
	}
}

static void
listener_retry(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;
	size_t		 i;

	if (l->r->draining)
		return;
	for (i = 0; i < l->nevl; i++)
		if (l->evl[i] != NULL)
			evconnlistener_enable(l->evl[i]);
}

static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct listener	*l = arg;
	struct timeval	 tv = { 0, ACCEPT_RETRY_MS * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();
	size_t		 i;

	/* EMFILE, ENFILE, ENOBUFS: pause accepting instead of spinning. */
	log_error("-", "accept_error listener=%s error=\"%s\"", l->name,
	    evutil_socket_error_to_string(err));
	for (i = 0; i < l->nevl; i++)
		if (l->evl[i] != NULL)
			evconnlistener_disable(l->evl[i]);
	evtimer_add(l->retry, &tv);
}

static int
listener_bind(struct relayd *r, struct listener *l, const char *address,
    FILE *err)
{
	char			 host[256], port[16];
	struct addrinfo		 hints, *res = NULL, *ai;
	struct evconnlistener	*evl;
	int			 fd = -1, one = 1, rc;

	if (listener_parse_address(address, host, sizeof(host), port,
	    sizeof(port)) == -1) {
		fprintf(err, "%s: [listen %s] address: cannot parse \"%s\"\n",
		    r->cf->path, l->name, address);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		fprintf(err, "%s: [listen %s] address %s: %s\n", r->cf->path,
		    l->name, address, gai_strerror(rc));
		return -1;
	}
	/* Bind the first address it resolves to. */
	ai = res;
	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		goto fail;
	evl = evconnlistener_new(r->base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG, fd);
	if (evl == NULL)
		goto fail;
	evconnlistener_set_error_cb(evl, listener_error);
	l->evl[l->nevl++] = evl;
	freeaddrinfo(res);
	log_info("-", "listening listener=%s address=%s", l->name, address);
	return 0;
fail:
	fprintf(err, "%s: [listen %s] address %s: %s\n", r->cf->path, l->name,
	    address, strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int
listeners_open(struct relayd *r, FILE *err)
{
	const struct config	*cf = r->cf;
	struct listener		*l, **tail = &r->listeners;
	size_t			 i, j;

	for (i = 0; i < cf->nlistens; i++) {
		if ((l = calloc(1, sizeof(*l))) == NULL ||
		    (l->name = strdup(cf->listens[i].name)) == NULL) {
			free(l);
			fprintf(err, "out of memory\n");
			return -1;
		}
		l->r = r;
		l->idx = i;
		*tail = l;
		tail = &l->next;
		if ((l->retry = evtimer_new(r->base, listener_retry, l)) ==
		    NULL) {
			fprintf(err, "out of memory\n");
			return -1;
		}
		for (j = 0; j < cf->listens[i].naddresses; j++)
			if (listener_bind(r, l, cf->listens[i].addresses[j],
			    err) == -1)
				return -1;
	}
	return 0;
}

void
listeners_close(struct relayd *r)
{
	struct listener	*l;
	size_t		 i;

	for (l = r->listeners; l != NULL; l = l->next) {
		for (i = 0; i < l->nevl; i++) {
			if (l->evl[i] != NULL)
				evconnlistener_free(l->evl[i]);
			l->evl[i] = NULL;
		}
		if (l->retry != NULL)
			evtimer_del(l->retry);
	}
}

void
listeners_free(struct relayd *r)
{
	struct listener	*l, *next;

	listeners_close(r);
	for (l = r->listeners; l != NULL; l = next) {
		next = l->next;
		if (l->retry != NULL)
			event_free(l->retry);
		free(l->name);
		free(l);
	}
	r->listeners = NULL;
}

void
listener_session_gone(struct listener *l, const void *sa, int salen)
{
	if (l == NULL)
		return;
	if (l->nconns > 0)
		l->nconns--;
	if (sa != NULL && salen > 0 && l->r->conns != NULL)
		conn_table_del(l->r->conns, sa);
}

size_t
listener_index(const struct listener *l)
{
	return l->idx;
}

const char *
listener_name(const struct listener *l)
{
	return l->name;
}

int
listeners_compatible(const struct config *a, const struct config *b,
    FILE *err)
{
	size_t	 i, j;

	if (a->nlistens != b->nlistens)
		goto differ;
	for (i = 0; i < a->nlistens; i++) {
		if (strcmp(a->listens[i].name, b->listens[i].name) != 0 ||
		    a->listens[i].naddresses != b->listens[i].naddresses)
			goto differ;
		for (j = 0; j < a->listens[i].naddresses; j++)
			if (strcmp(a->listens[i].addresses[j],
			    b->listens[i].addresses[j]) != 0)
				goto differ;
	}
	return 0;
differ:
	fprintf(err, "%s: [listen] sections or addresses changed; "
	    "a restart is needed to rebind\n", b->path);
	return -1;
}

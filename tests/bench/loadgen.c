/*
 * loadgen: a small SMTP submission load client for relayd benchmarks.
 *
 * N sessions.  Each is opened by a thread of its own with a blocking
 * socket: connect, EHLO, optionally STARTTLS (OpenSSL) and EHLO again,
 * AUTH PLAIN.  Then one thread drives every session with epoll, as
 * Postfix's smtp-source does (a thread per session cost the two-core
 * machine a context switch per reply, on the cores relayd needs): a loop
 * of pipelined MAIL/RCPT/DATA (RFC 2920) and a message of S octets, its
 * last part and the final dot in one write, until a total count of
 * messages or a duration is reached.  For each message it measures the
 * time from that write to reading the 250 reply.  The clock starts once
 * every session has connected and authenticated, so the (deliberately
 * slow) password hashing is not counted.
 * At the end it prints messages per second, the p50/p99/max latency and,
 * given --pid, the CPU time relayd spent per message (utime + stime from
 * /proc/PID/stat, before and after) and relayd's VmRSS.  --at-start CMD
 * runs a shell command once every session is ready, before the clock
 * starts (e2e.sh samples CPU counters there).
 *
 * It owns nothing but its sockets and threads; limits: at most 4096
 * sessions, replies up to 64 KiB, loopback or any reachable host.
 * Not a test: it exits 0 when it could run, 1 when any message failed.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "clock.h"

#define MAX_SESSIONS	4096
#define REPLY_MAX	65536

struct opts {
	const char	*host;
	const char	*port;
	unsigned	 sessions;
	unsigned long	 count;		/* 0: no count limit */
	double		 duration;	/* seconds; 0: no time limit */
	size_t		 size;
	const char	*user;
	const char	*pass;
	const char	*from;
	const char	*rcpt;
	int		 starttls;
	int		 implicit;
	long		 pid;
	const char	*at_start;	/* shell command before the clock */
	int		 duration_set;
};

static struct opts	 o = {
	.host = "127.0.0.1", .port = "2525", .sessions = 20, .count = 0,
	.duration = 10, .size = 2048, .user = "alice", .pass = "alice-pw",
	.from = "alice@own-domain.com", .rcpt = "rcpt@rcpt-domain.org",
	.pid = 0,
};

static atomic_ulong	 started;	/* messages begun */
static atomic_ulong	 ok_count;
static atomic_ulong	 fail_count;
static atomic_uint	 sessions_failed;
static double		 deadline;
static SSL_CTX		*ssl_ctx;
static char		*msg;		/* the dot-terminated message */
static size_t		 msglen;

struct conn {
	int		 fd;
	SSL		*ssl;
	char		 buf[REPLY_MAX];
	size_t		 len;
};

/* A session's state in the loop. */
enum sstate { S_ENV, S_DOT, S_QUIT, S_DONE };

struct worker {
	pthread_t	 th;
	unsigned	 n;
	struct conn	*c;		/* NULL: could not open */
	enum sstate	 st;
	int		 nrep;		/* replies to the envelope so far */
	double		 t0;		/* the message's last write */
	double		*lat;		/* seconds per message */
	size_t		 nlat, caplat;
	char		 err[256];
};

static void	conn_free(struct conn *);

static void
werr(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
}

static int
c_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r;

		if (c->ssl != NULL) {
			int k = SSL_write(c->ssl, p,
			    n > INT32_MAX ? INT32_MAX : (int)n);

			if (k <= 0) {
				/* The loop's sockets do not block: wait. */
				struct pollfd pf = { .fd = c->fd };
				int e = SSL_get_error(c->ssl, k);

				if (e == SSL_ERROR_WANT_WRITE)
					pf.events = POLLOUT;
				else if (e == SSL_ERROR_WANT_READ)
					pf.events = POLLIN;
				else
					return -1;
				if (poll(&pf, 1, 10000) != 1)
					return -1;
				continue;
			}
			r = k;
		} else {
			r = send(c->fd, p, n, MSG_NOSIGNAL);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

/*
 * Take one complete reply out of c->buf (RFC 5321 4.2: the last line has
 * a space after the code).  Returns the code, 0 when none is complete
 * yet, -1 when the buffer is full without one.  text (if not NULL) gets
 * the last line.
 */
static int
take_reply(struct conn *c, char *text, size_t textcap)
{
	size_t start = 0, i;

	for (i = 0; i + 1 < c->len; i++) {
		if (c->buf[i] != '\r' || c->buf[i + 1] != '\n')
			continue;
		if (i - start >= 4 && c->buf[start + 3] == ' ') {
			int code = (c->buf[start] - '0') * 100 +
			    (c->buf[start + 1] - '0') * 10 +
			    (c->buf[start + 2] - '0');

			if (text != NULL && textcap > 0) {
				size_t l = i - start;

				if (l >= textcap)
					l = textcap - 1;
				memcpy(text, c->buf + start, l);
				text[l] = '\0';
			}
			memmove(c->buf, c->buf + i + 2, c->len - i - 2);
			c->len -= i + 2;
			return code;
		}
		start = i + 2;
	}
	return c->len == sizeof(c->buf) ? -1 : 0;
}

/*
 * The loop's read: whatever is there, without waiting.  Returns the
 * octets read, 0 when nothing is there yet, -1 on EOF or error.
 */
static ssize_t
c_read_nb(struct conn *c)
{
	char	*p = c->buf + c->len;
	size_t	 n = sizeof(c->buf) - c->len;

	if (n == 0)
		return -1;
	if (c->ssl != NULL) {
		int k = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (k > 0)
			return k;
		k = SSL_get_error(c->ssl, k);
		return k == SSL_ERROR_WANT_READ || k == SSL_ERROR_WANT_WRITE ?
		    0 : -1;
	}
	for (;;) {
		ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return r <= 0 ? -1 : r;
	}
}

/*
 * Read one complete reply, waiting for it (session setup).  Returns the
 * code, or -1 on EOF, error, an overlong reply or 60 s of silence.  text
 * (if not NULL) gets the last line.
 */
static int
read_reply(struct conn *c, char *text, size_t textcap)
{
	struct pollfd	 pf = { .fd = c->fd, .events = POLLIN };
	ssize_t		 r;
	int		 code;

	for (;;) {
		if ((code = take_reply(c, text, textcap)) != 0)
			return code;
		if ((r = c_read_nb(c)) == -1)
			return -1;
		c->len += (size_t)r;
		if (r == 0 && (c->ssl == NULL || SSL_pending(c->ssl) == 0) &&
		    poll(&pf, 1, 60000) != 1)
			return -1;
	}
}

static int
cmd(struct conn *c, const char *line, int want, struct worker *w)
{
	char text[512];
	int code;

	if (c_write(c, line, strlen(line)) == -1) {
		werr(w, "write failed at %.40s", line);
		return -1;
	}
	code = read_reply(c, text, sizeof(text));
	if (code != want) {
		werr(w, "%.40s -> %s", line, code == -1 ? "EOF" : text);
		return -1;
	}
	return 0;
}

static int
tls_start(struct conn *c, struct worker *w)
{
	c->ssl = SSL_new(ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_connect(c->ssl) != 1) {
		werr(w, "TLS handshake failed");
		return -1;
	}
	return 0;
}

static int
session_open(struct conn *c, struct worker *w)
{
	struct addrinfo hints, *res = NULL;
	char line[1024], plain[512];
	unsigned char b64[1024];
	int one = 1, n;
	size_t ul, pl;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(o.host, o.port, &hints, &res) != 0 || res == NULL) {
		werr(w, "cannot resolve %s", o.host);
		return -1;
	}
	c->fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (c->fd == -1 ||
	    connect(c->fd, res->ai_addr, res->ai_addrlen) == -1) {
		werr(w, "connect: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o.implicit && tls_start(c, w) == -1)
		return -1;
	if (read_reply(c, line, sizeof(line)) != 220) {
		werr(w, "banner: %s", line);
		return -1;
	}
	if (cmd(c, "EHLO loadgen.test\r\n", 250, w) == -1)
		return -1;
	if (o.starttls) {
		if (cmd(c, "STARTTLS\r\n", 220, w) == -1 ||
		    tls_start(c, w) == -1 ||
		    cmd(c, "EHLO loadgen.test\r\n", 250, w) == -1)
			return -1;
	}
	/* RFC 4616: authzid NUL authcid NUL passwd. */
	ul = strlen(o.user);
	pl = strlen(o.pass);
	if (ul + pl + 2 > sizeof(plain)) {
		werr(w, "credentials too long");
		return -1;
	}
	plain[0] = '\0';
	memcpy(plain + 1, o.user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, o.pass, pl);
	n = EVP_EncodeBlock(b64, (unsigned char *)plain, (int)(ul + pl + 2));
	snprintf(line, sizeof(line), "AUTH PLAIN %.*s\r\n", n, b64);
	return cmd(c, line, 235, w);
}

static int
more(void)
{
	if (deadline > 0 && now() >= deadline)
		return 0;
	if (o.count > 0 && atomic_fetch_add(&started, 1) >= o.count)
		return 0;
	return 1;
}

/* A session's thread: open it (connect, EHLO, TLS, AUTH) and return. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		werr(w, "out of memory");
		atomic_fetch_add(&sessions_failed, 1);
		return NULL;
	}
	c->fd = -1;
	if (session_open(c, w) == -1) {
		atomic_fetch_add(&sessions_failed, 1);
		conn_free(c);
		return NULL;
	}
	w->c = c;
	return NULL;
}

static void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

static char	 envelope[1024];	/* MAIL, RCPT and DATA */

/* The loop: begin the session's next message, or QUIT. */
static void
next_message(struct worker *w)
{
	if (!more()) {
		w->st = S_QUIT;
		if (c_write(w->c, "QUIT\r\n", 6) == -1)
			w->st = S_DONE;
		return;
	}
	/* RFC 2920: MAIL, RCPT and DATA in one write. */
	w->st = S_ENV;
	w->nrep = 0;
	if (c_write(w->c, envelope, strlen(envelope)) == -1) {
		werr(w, "write failed at MAIL");
		atomic_fetch_add(&fail_count, 1);
		w->st = S_DONE;
	}
}

/* The loop: one reply for the session. */
static void
on_reply(struct worker *w, int code, const char *text)
{
	static const int want[] = { 250, 250, 354 };

	switch (w->st) {
	case S_ENV:
		if (code != want[w->nrep]) {
			werr(w, "envelope: %s", text);
			atomic_fetch_add(&fail_count, 1);
			w->st = S_DONE;
			return;
		}
		if (++w->nrep < 3)
			return;
		w->st = S_DOT;
		w->t0 = now();
		if (c_write(w->c, msg, msglen) == -1) {
			werr(w, "write failed in DATA");
			atomic_fetch_add(&fail_count, 1);
			w->st = S_DONE;
		}
		return;
	case S_DOT:
		if (code != 250) {
			werr(w, "end of data: %s", text);
			atomic_fetch_add(&fail_count, 1);
			w->st = S_DONE;
			return;
		}
		if (w->nlat == w->caplat) {
			size_t cap = w->caplat ? w->caplat * 2 : 4096;
			double *nl = realloc(w->lat, cap * sizeof(*nl));

			if (nl == NULL) {
				werr(w, "out of memory");
				w->st = S_DONE;
				return;
			}
			w->lat = nl;
			w->caplat = cap;
		}
		w->lat[w->nlat++] = now() - w->t0;
		atomic_fetch_add(&ok_count, 1);
		next_message(w);
		return;
	case S_QUIT:
	case S_DONE:
		w->st = S_DONE;
		return;
	}
}

/* The loop: read what the session has and act on each whole reply. */
static void
on_readable(struct worker *w)
{
	char text[512];
	ssize_t r;
	int code;

	do {
		if ((r = c_read_nb(w->c)) == -1) {
			if (w->st != S_QUIT && w->st != S_DONE) {
				werr(w, "connection lost");
				atomic_fetch_add(&fail_count, 1);
			}
			w->st = S_DONE;
			return;
		}
		w->c->len += (size_t)r;
		while (w->st != S_DONE &&
		    (code = take_reply(w->c, text, sizeof(text))) != 0) {
			if (code == -1) {
				werr(w, "reply too long");
				atomic_fetch_add(&fail_count, 1);
				w->st = S_DONE;
				return;
			}
			on_reply(w, code, text);
		}
		/* Level-triggered: what the socket still holds wakes the
		 * loop again; what TLS holds already read does not. */
	} while (w->st != S_DONE && w->c->ssl != NULL &&
	    SSL_pending(w->c->ssl) > 0);
}

/*
 * Drive every open session until each has sent QUIT (or failed).  Bounded:
 * with no reply for LOOP_IDLE_MAX seconds, the sessions still waiting
 * fail with "no reply".
 */
#define LOOP_IDLE_MAX	60
static void
run_loop(struct worker *ws, unsigned n)
{
	struct epoll_event ev, evs[64];
	unsigned i, active = 0;
	double last = now();
	int ep, k, j, fl;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("loadgen: epoll_create1");
		exit(1);
	}
	snprintf(envelope, sizeof(envelope),
	    "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", o.from, o.rcpt);
	for (i = 0; i < n; i++) {
		struct worker *w = &ws[i];

		if (w->c == NULL)
			continue;
		/* TLS reads must not block once epoll said "readable":
		 * a record may be incomplete. */
		if (w->c->ssl != NULL &&
		    (fl = fcntl(w->c->fd, F_GETFL)) != -1)
			fcntl(w->c->fd, F_SETFL, fl | O_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.ptr = w;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->c->fd, &ev) == -1) {
			werr(w, "epoll_ctl: %s", strerror(errno));
			atomic_fetch_add(&sessions_failed, 1);
			continue;
		}
		next_message(w);
		if (w->st != S_DONE)
			active++;
	}
	while (active > 0) {
		k = epoll_wait(ep, evs, 64, 1000);
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1) {
			perror("loadgen: epoll_wait");
			break;
		}
		if (k == 0) {
			if (now() - last < LOOP_IDLE_MAX)
				continue;
			for (i = 0; i < n; i++)
				if (ws[i].c != NULL && ws[i].st != S_DONE) {
					werr(&ws[i], "no reply in %d s",
					    LOOP_IDLE_MAX);
					atomic_fetch_add(&fail_count, 1);
					ws[i].st = S_DONE;
				}
			break;
		}
		last = now();
		for (j = 0; j < k; j++) {
			struct worker *w = evs[j].data.ptr;

			if (w->st == S_DONE)
				continue;
			on_readable(w);
			if (w->st == S_DONE) {
				epoll_ctl(ep, EPOLL_CTL_DEL, w->c->fd, NULL);
				active--;
			}
		}
	}
	close(ep);
}

/* utime + stime of pid in clock ticks (proc(5) fields 14 and 15). */
static long long
proc_cpu(long pid)
{
	char path[64], line[4096], *p;
	unsigned long long ut, st;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* The command name may contain spaces: count from the last ')'. */
	if ((p = strrchr(line, ')')) == NULL)
		return -1;
	p++;
	for (field = 3; field < 14 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static long
proc_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
build_message(void)
{
	char hdr[1024];
	size_t hl, i;
	int n;

	n = snprintf(hdr, sizeof(hdr),
	    "From: Load <%s>\r\nTo: <%s>\r\nSubject: loadgen\r\n"
	    "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
	    "Message-ID: <loadgen@loadgen.test>\r\n\r\n", o.from, o.rcpt);
	hl = n < 0 ? 0 : (size_t)n;
	if (o.size < hl + 2)
		o.size = hl + 2;
	msglen = o.size + 3;
	if ((msg = malloc(msglen + 1)) == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(msg, hdr, hl);
	/* Body lines of 76 letters and CRLF, the last one shorter. */
	for (i = hl; i < o.size; i++) {
		size_t col = (i - hl) % 78;

		msg[i] = col == 76 ? '\r' : col == 77 ? '\n' : 'a' + col % 26;
	}
	if (msg[o.size - 2] != '\r' || msg[o.size - 1] != '\n') {
		msg[o.size - 2] = '\r';
		msg[o.size - 1] = '\n';
		if (o.size >= 3 && msg[o.size - 3] == '\r')
			msg[o.size - 3] = 'z';
	}
	memcpy(msg + o.size, ".\r\n", 3);
	msg[msglen] = '\0';
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [--host H] [--port P] [--sessions N] [--count M]\n"
	    "           [--duration S] [--size BYTES] [--user U] [--pass P]\n"
	    "           [--from ADDR] [--rcpt ADDR] [--starttls | --implicit]\n"
	    "           [--pid RELAYD_PID] [--at-start SHELL_COMMAND]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "pass", required_argument, NULL, 'P' },
		{ "from", required_argument, NULL, 'f' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "starttls", no_argument, NULL, 'S' },
		{ "implicit", no_argument, NULL, 'I' },
		{ "pid", required_argument, NULL, 'i' },
		{ "at-start", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker *ws;
	double t0, el, setup, *all;
	long long cpu0 = -1, cpu1 = -1;
	size_t nall = 0, i;
	unsigned long okn;
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = optarg; break;
		case 'n': o.sessions = strtoul(optarg, NULL, 10); break;
		case 'c': o.count = strtoul(optarg, NULL, 10); break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			o.duration_set = 1;
			break;
		case 's': o.size = strtoul(optarg, NULL, 10); break;
		case 'u': o.user = optarg; break;
		case 'P': o.pass = optarg; break;
		case 'f': o.from = optarg; break;
		case 'r': o.rcpt = optarg; break;
		case 'S': o.starttls = 1; break;
		case 'I': o.implicit = 1; break;
		case 'i': o.pid = strtol(optarg, NULL, 10); break;
		case 'A': o.at_start = optarg; break;
		default: usage();
		}
	}
	if (o.sessions == 0 || o.sessions > MAX_SESSIONS ||
	    (o.count == 0 && o.duration_set && o.duration <= 0) ||
	    o.size > 64 * 1024 * 1024)
		usage();
	if (o.count > 0 && !o.duration_set)
		o.duration = 0;	/* a count alone: no time limit */
	signal(SIGPIPE, SIG_IGN);
	if (o.starttls || o.implicit) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (ssl_ctx == NULL)
			return 1;
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	build_message();
	if ((ws = calloc(o.sessions, sizeof(*ws))) == NULL)
		return 1;
	t0 = now();
	for (i = 0; i < o.sessions; i++) {
		ws[i].n = i;
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < o.sessions; i++)
		pthread_join(ws[i].th, NULL);
	setup = now() - t0;
	/* Not timed: e.g. e2e.sh samples the CPU of a process tree here, so
	 * that the authentication of the sessions is not counted. */
	if (o.at_start != NULL && system(o.at_start) != 0)
		fprintf(stderr, "loadgen: --at-start command failed\n");
	if (o.pid > 0)
		cpu0 = proc_cpu(o.pid);
	t0 = now();
	deadline = o.duration > 0 ? t0 + o.duration : 0;
	run_loop(ws, o.sessions);
	el = now() - t0;
	if (o.pid > 0)
		cpu1 = proc_cpu(o.pid);

	okn = atomic_load(&ok_count);
	for (i = 0; i < o.sessions; i++)
		nall += ws[i].nlat;
	all = calloc(nall ? nall : 1, sizeof(*all));
	if (all == NULL)
		return 1;
	nall = 0;
	for (i = 0; i < o.sessions; i++) {
		memcpy(all + nall, ws[i].lat, ws[i].nlat * sizeof(*all));
		nall += ws[i].nlat;
		if (ws[i].err[0] != '\0')
			fprintf(stderr, "loadgen: session %zu: %s\n", i,
			    ws[i].err);
	}
	qsort(all, nall, sizeof(*all), cmp_double);

	printf("sessions %u, message size %zu, %s\n", o.sessions, o.size,
	    o.starttls ? "STARTTLS" : o.implicit ? "implicit TLS" : "plain");
	printf("sessions connected and authenticated in %.2f s (not counted)\n",
	    setup);
	printf("messages ok %lu, failed %lu, sessions failed %u, in %.2f s\n",
	    okn, atomic_load(&fail_count), atomic_load(&sessions_failed), el);
	printf("throughput %.0f messages/s\n", el > 0 ? okn / el : 0.0);
	if (nall > 0)
		printf("dot-to-250 latency p50 %.3f ms, p99 %.3f ms, "
		    "max %.3f ms\n",
		    all[nall / 2] * 1e3, all[(nall * 99) / 100] * 1e3,
		    all[nall - 1] * 1e3);
	if (o.pid > 0 && cpu0 >= 0 && cpu1 >= 0 && okn > 0) {
		double s = (double)(cpu1 - cpu0) / sysconf(_SC_CLK_TCK);

		printf("relayd CPU %.2f s, %.1f us per message, "
		    "%.0f%% of one core\n",
		    s, s * 1e6 / okn, el > 0 ? 100.0 * s / el : 0.0);
	}
	if (o.pid > 0)
		printf("relayd VmRSS %ld KiB\n", proc_rss_kb(o.pid));
	for (i = 0; i < o.sessions; i++) {
		conn_free(ws[i].c);
		free(ws[i].lat);
	}
	free(ws);
	free(all);
	free(msg);
	if (ssl_ctx != NULL)
		SSL_CTX_free(ssl_ctx);
	return (atomic_load(&fail_count) > 0 ||
	    atomic_load(&sessions_failed) > 0) ? 1 : 0;
}

/*
 * main: relayd's entry point.  Parses the command line, loads the
 * configuration, users and TLS context (one generation, relayd.h), starts
 * the worker pool, spool, queue and listeners, optionally drops to the
 * configured user, and runs the event loop.
 *
 *   relayd [-c FILE]      run in the foreground, logging to stderr
 *   relayd [-c FILE] -t   check the configuration and what it names
 *   relayd -V             print the version
 *
 * Signals (handled on the loop): SIGHUP reloads configuration, users and
 * TLS context into a new generation and swaps it only when all of it
 * loaded (never half-applied); sessions keep the generation they started
 * with.  Listener addresses, the spool and the worker count need a
 * restart.  SIGTERM/SIGINT stop accepting, let every session finish the
 * reply it owes (spool commits included), then free everything and exit 0.
 */
#include <sys/types.h>
#include <sys/resource.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth.h"
#include "check.h"
#include "config.h"
#include "dkim_keys.h"
#include "listener.h"
#include "log.h"
#include "queue.h"
#include "relayd.h"
#include "rewrite.h"
#include "smtp_server.h"
#include "spool.h"
#include "tls.h"
#include "users.h"
#include "worker.h"

#define DEFAULT_CONFIG		"/etc/relayd/relayd.conf"
#define DRAIN_MAX_SEC		60	/* then detach and exit anyway */

struct found_list {
	char	**ids;
	size_t	  n, cap;
	int	  nomem;
};

static void
usage(void)
{
	fprintf(stderr, "usage: relayd [-c FILE] [-t] | -V\n");
	exit(2);
}

/* Problems with a configuration that only the daemon knows about. */
static int
main_check_support(const struct config *cf, FILE *err)
{
	size_t	 i;
	int	 problems = 0;

	for (i = 0; i < cf->nlistens; i++)
		if (cf->listens[i].proxy_protocol) {
			/* XXX PROXY protocol v1/v2 is not implemented yet. */
			fprintf(err, "%s:%d: [listen %s] proxy_protocol: not "
			    "supported by this version of relayd\n", cf->path,
			    cf->listens[i].line, cf->listens[i].name);
			problems++;
		}
	return problems;
}

static int
main_needs_tls(const struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->nlistens; i++)
		if (cf->listens[i].tls != TLS_MODE_NONE)
			return 1;
	return 0;
}

/* Load one generation.  NULL after printing the problems to err. */
static struct relayd_gen *
main_load(const char *path, FILE *err)
{
	struct relayd_gen	*g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		fprintf(err, "out of memory\n");
		return NULL;
	}
	if (config_load(path, err, &g->cf) != 0) {
		g->cf = NULL;
		goto fail;
	}
	if (main_check_support(g->cf, err) != 0)
		goto fail;
	/* Issue 3: a bounce domain that would not align is refused. */
	if (config_check_alignment(g->cf, err) != 0)
		goto fail;
	if (users_load(g->cf->users_file, err, &g->users) != 0) {
		g->users = NULL;
		goto fail;
	}
	if (main_needs_tls(g->cf) && (g->tls = tls_server_ctx_new(
	    g->cf->tls_certificate, g->cf->tls_key, g->cf->tls_min_version,
	    err)) == NULL)
		goto fail;
	/* Issue 4: keys load at start and on reload; a bad one fails the
	 * whole generation, so a reload keeps the running keys. */
	if ((g->keys = dkim_keys_load(g->cf, err)) == NULL)
		goto fail;
	if (rewrite_key_load(g->cf->secret_file, g->verp_key, err) == -1)
		goto fail;
	return g;
fail:
	relayd_gen_free(g);
	return NULL;
}

static void
main_found(const char *id, void *arg)
{
	struct found_list	*f = arg;
	char			**v;

	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		if ((v = reallocarray(f->ids, f->cap, sizeof(*v))) == NULL) {
			f->nomem = 1;
			return;
		}
		f->ids = v;
	}
	if ((f->ids[f->n] = strdup(id)) == NULL) {
		f->nomem = 1;
		return;
	}
	f->n++;
}

/*
 * The loop.  With epoll, changes to the events of a descriptor are
 * collected and applied once per loop iteration (the "changelist"):
 * a bufferevent turning EV_WRITE on and off around each reply costs one
 * epoll_ctl, not two (measured: about 4 % more messages per second in
 * capture mode).  libevent's caveat for it, dup()ed descriptors closed
 * while the other copy stays registered, does not arise here: relayd
 * never duplicates a socket.
 */
static struct event_base *
main_base_new(void)
{
	struct event_config	*cfg;
	struct event_base	*base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static void
main_queued(const char *id, char *file, size_t len, void *arg)
{
	struct relayd	*r = arg;

	if (r->queue != NULL)
		queue_add_file(r->queue, id, file, len);
	else
		free(file);
}

static void
main_reload(struct relayd *r)
{
	struct relayd_gen	*g;

	log_info("-", "reload config=%s", r->config_path);
	if ((g = main_load(r->config_path, stderr)) == NULL) {
		log_error("-", "reload_failed reason=\"configuration not "
		    "loaded\" action=\"keeping the running one\"");
		return;
	}
	if (listeners_compatible(r->cf, g->cf, stderr) == -1) {
		log_error("-", "reload_failed reason=\"listeners changed\" "
		    "action=\"keeping the running one\"");
		relayd_gen_free(g);
		return;
	}
	if (strcmp(r->cf->spool, g->cf->spool) != 0 ||
	    r->cf->workers != g->cf->workers)
		log_warn("-", "reload_partial reason=\"spool and workers "
		    "change only at restart\"");
	relayd_gen_set(r, g);
	log_set_level(r->cf->log_level);
	log_info("-", "reloaded sessions=%u", r->nsessions);
}

static void
main_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct relayd	*r = arg;

	log_warn("-", "drain_timeout sessions=%u", r->nsessions);
	event_base_loopexit(r->base, NULL);
}

static void
main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct relayd	*r = arg;
	static struct event *t;
	struct timeval	 tv = { DRAIN_MAX_SEC, 0 };

	if (sig == SIGHUP) {
		main_reload(r);
		return;
	}
	if (r->draining)
		return;
	log_info("-", "stopping signal=%s sessions=%u",
	    sig == SIGTERM ? "TERM" : "INT", r->nsessions);
	r->draining = 1;
	listeners_close(r);
	smtp_sessions_drain(r);
	if (r->nsessions == 0) {
		event_base_loopexit(r->base, NULL);
		return;
	}
	if (t == NULL && (t = evtimer_new(r->base, main_drain_timeout, r)) !=
	    NULL)
		evtimer_add(t, &tv);
}

static int
main_drop_privileges(const char *user)
{
	struct passwd	*pw;

	if (user == NULL || user[0] == '\0')
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "relayd: user %s: not found\n", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1) {
		fprintf(stderr, "relayd: cannot become %s: %s\n", user,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
main_rlimit(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("-", "setrlimit_failed error=\"%s\"",
			    strerror(errno));
	}
}

static int
main_test(const char *path)
{
	struct config	*cf = NULL;
	int		 problems;

	if (config_load(path, stderr, &cf) != 0)
		return 1;
	problems = config_check_files(cf, stderr);
	problems += main_check_support(cf, stderr);
	config_free(cf);
	if (problems != 0)
		return 1;
	fprintf(stderr, "configuration ok\n");
	return 0;
}

int
main(int argc, char *argv[])
{
	struct relayd		 r;
	struct relayd_gen	*g;
	struct found_list	 found;
	struct event		*sig_hup = NULL, *sig_term = NULL;
	struct event		*sig_int = NULL;
	const char		*path = DEFAULT_CONFIG;
	int			 ch, test = 0, rc = 1;
	size_t			 i;

	while ((ch = getopt(argc, argv, "c:tV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("relayd %s\n", RELAYD_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (test)
		return main_test(path);

	memset(&r, 0, sizeof(r));
	memset(&found, 0, sizeof(found));
	r.config_path = path;
	main_rlimit();
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() == -1) {
		fprintf(stderr, "relayd: evthread_use_pthreads failed\n");
		return 1;
	}
	if ((g = main_load(path, stderr)) == NULL)
		return 1;
	g->refs = 0;
	relayd_gen_set(&r, g);
	log_set_level(r.cf->log_level);
	r.next_session_id = (uint64_t)time(NULL) << 16;
	if ((r.base = main_base_new()) == NULL ||
	    (r.throttle = auth_throttle_new()) == NULL ||
	    (r.conns = conn_table_new()) == NULL) {
		fprintf(stderr, "relayd: out of memory\n");
		goto out;
	}
	/*
	 * Signals first: from the moment the listeners accept, whoever sees
	 * the port open may send SIGHUP or SIGTERM, and until these are
	 * added their default action would kill relayd.  They are handled
	 * once the loop runs, after everything below is set up.
	 */
	sig_hup = evsignal_new(r.base, SIGHUP, main_signal, &r);
	sig_term = evsignal_new(r.base, SIGTERM, main_signal, &r);
	sig_int = evsignal_new(r.base, SIGINT, main_signal, &r);
	if (sig_hup == NULL || sig_term == NULL || sig_int == NULL ||
	    evsignal_add(sig_hup, NULL) == -1 ||
	    evsignal_add(sig_term, NULL) == -1 ||
	    evsignal_add(sig_int, NULL) == -1) {
		fprintf(stderr, "relayd: cannot set up signals\n");
		goto out;
	}
	/*
	 * Bind first, then drop privileges, so that the spool is created
	 * and written by the user relayd runs as.  Nothing is accepted
	 * before the loop runs.  XXX A reload after dropping privileges
	 * needs the users file, certificate and key readable by that user.
	 */
	if (listeners_open(&r, stderr) == -1)
		goto out;
	if (main_drop_privileges(r.cf->user) == -1)
		goto out;
	/*
	 * Two pools: CPU work (password hashes, signatures) must never wait
	 * behind a thread that sleeps in fsync, so flushes get their own.
	 */
	if ((r.workers = worker_pool_new(r.base, r.cf->workers)) == NULL ||
	    (r.io = worker_pool_new(r.base, RELAYD_IO_THREADS)) == NULL) {
		fprintf(stderr, "relayd: cannot start worker threads\n");
		goto out;
	}
	worker_pool_set_name(r.workers, "relayd-cpu");
	worker_pool_set_name(r.io, "relayd-io");
	if ((r.spool = spool_open(r.cf->spool, r.base, r.io, stderr,
	    main_found, &found)) == NULL)
		goto out;
	if (found.nomem) {
		fprintf(stderr, "relayd: out of memory reading the spool\n");
		goto out;
	}
	if ((r.queue = queue_new(&r)) == NULL) {
		fprintf(stderr, "relayd: cannot create the queue\n");
		goto out;
	}
	for (i = 0; i < found.n; i++)
		queue_add(r.queue, found.ids[i]);
	spool_set_notify(r.spool, main_queued, &r);
	log_info("-", "start version=%s config=%s listeners=%zu workers=%u "
	    "queued=%zu", RELAYD_VERSION, path, r.cf->nlistens,
	    worker_pool_size(r.workers), found.n);
	event_base_dispatch(r.base);
	rc = 0;
	log_info("-", "stop sessions=%u", r.nsessions);
out:
	smtp_sessions_free_all(&r);
	listeners_free(&r);
	/*
	 * Finish in-flight jobs while spool and queue live: signatures first
	 * (their done() may start spool commits), then the flushes.
	 */
	worker_pool_free(r.workers);
	r.workers = NULL;
	worker_pool_free(r.io);
	r.io = NULL;
	queue_free(r.queue);
	r.queue = NULL;
	spool_free(r.spool);
	r.spool = NULL;
	if (sig_hup)
		event_free(sig_hup);
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	auth_throttle_free(r.throttle);
	conn_table_free(r.conns);
	relayd_gen_set(&r, NULL);
	if (r.base)
		event_base_free(r.base);
	for (i = 0; i < found.n; i++)
		free(found.ids[i]);
	free(found.ids);
	return rc;
}

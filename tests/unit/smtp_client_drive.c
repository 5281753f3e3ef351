/*
 * smtp_client_drive: a command-line driver of relayd/smtp_client.c for
 * tests/integration/test_smtp_client.py (not a unit test).
 *
 *   smtp_client_drive HOST PORT [options] [--txn FROM RCPTS FILE]...
 *     --tls none|opportunistic|required|implicit   (default none)
 *     --verify NAME     verify the certificate against NAME (also SNI)
 *     --sni NAME        SNI without verification
 *     --cafile FILE     trust anchors for --verify
 *     --auth USER PASS
 *     --timeout SEC     every timeout (default: the RFC values)
 *     --helo NAME       (default client.test)
 *     --flags 8bit,utf8 for the next --txn
 *     --free-in-done    free the client inside the first done()
 *     --repeat N        send the last --txn N more times, printing only a
 *                       summary ("repeat delivered D of N in S s")
 *
 * RCPTS is comma-separated; FROM "-" is the null sender.  Transactions are
 * sent one after the other on the one connection, then QUIT.  Prints one
 * line per callback: "ready ...", "done ...", "rcpt ...", "closed ...".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "log.h"
#include "smtp_client.h"
#include "tls.h"

#define MAXTXN	16
#define MAXRCPT	64

struct drive_txn {
	char		*from;
	const char	*rcpts[MAXRCPT];
	size_t		 nrcpts;
	char		*msg;
	size_t		 len;
	int		 eightbit, smtputf8;
};

static struct event_base *base;
static struct drive_txn	 txns[MAXTXN];
static int		 ntxn, next_txn, free_in_done;
static long		 repeat, repeated, rep_ok;
static struct timespec	 rep_t0;

static void
send_next(struct smtp_client *c)
{
	struct smtp_txn	 t;

	if (next_txn >= ntxn && repeated < repeat) {
		if (repeated++ == 0)
			clock_gettime(CLOCK_MONOTONIC, &rep_t0);
		next_txn--;
	} else if (next_txn >= ntxn) {
		smtp_client_quit(c);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.mail_from = txns[next_txn].from;
	t.rcpts = txns[next_txn].rcpts;
	t.nrcpts = txns[next_txn].nrcpts;
	t.msg = txns[next_txn].msg;
	t.len = txns[next_txn].len;
	t.eightbit = txns[next_txn].eightbit;
	t.smtputf8 = txns[next_txn].smtputf8;
	next_txn++;
	if (smtp_client_send(c, &t) == -1) {
		printf("send refused\n");
		fflush(stdout);
		smtp_client_free(c);
		event_base_loopexit(base, NULL);
	}
}

static void
on_ready(struct smtp_client *c, void *arg)
{
	const struct smtp_client_caps *k = smtp_client_caps(c);

	printf("ready esmtp=%d tls=%d verified=%d auth=%d pipelining=%d "
	    "8bitmime=%d smtputf8=%d size=%llu\n", k->esmtp, k->tls,
	    k->tls_verified, k->authenticated, k->pipelining, k->eightbitmime,
	    k->smtputf8, k->size_max);
	fflush(stdout);
	send_next(c);
}

static void
print_result(const char *what, int txn, int i, const struct smtp_result *r)
{
	printf("%s txn=%d", what, txn);
	if (i >= 0)
		printf(" i=%d", i);
	printf(" status=%s code=%d enh=%s state=%s text=%s\n",
	    smtp_status_name(r->status), r->code,
	    r->enhanced[0] ? r->enhanced : "-",
	    smtp_client_state_name(r->state), r->text);
}

static void
on_done(struct smtp_client *c, const struct smtp_txn_result *r, void *arg)
{
	struct timespec	 t1;
	size_t		 i;

	if (repeated > 0) {
		rep_ok += r->delivered == r->nrcpts;
		if (repeated == repeat) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			printf("repeat delivered %ld of %ld in %.3f s\n", rep_ok,
			    repeat, (double)(t1.tv_sec - rep_t0.tv_sec) +
			    (t1.tv_nsec - rep_t0.tv_nsec) / 1e9);
		}
		if (!r->conn_lost)
			send_next(c);
		return;
	}
	print_result("done", next_txn - 1, -1, &r->txn);
	for (i = 0; i < r->nrcpts; i++)
		print_result("rcpt", next_txn - 1, (int)i, &r->rcpts[i]);
	printf("delivered txn=%d %zu/%zu conn_lost=%d\n", next_txn - 1,
	    r->delivered, r->nrcpts, r->conn_lost);
	fflush(stdout);
	if (free_in_done) {
		smtp_client_free(c);
		printf("freed in done\n");
		fflush(stdout);
		event_base_loopexit(base, NULL);
		return;
	}
	if (!r->conn_lost)
		send_next(c);
}

static void
on_closed(struct smtp_client *c, const struct smtp_result *r, void *arg)
{
	print_result("closed", -1, -1, r);
	fflush(stdout);
	smtp_client_free(c);
	event_base_loopexit(base, NULL);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE	*f;
	char	*p = NULL;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc(n + 1)) != NULL &&
	    fread(p, 1, n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

int
main(int argc, char **argv)
{
	struct smtp_client_params p;
	struct smtp_client_cbs	 cbs = { on_ready, on_done, on_closed };
	struct smtp_client	*c;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen;
	const char		*cafile = NULL;
	char			 err[256], *r, *save;
	int			 i, flags8 = 0, flagsu = 0, rc = 0;
	unsigned		 t;

	/* As relayd: a server that closes mid-write is an error to report,
	 * not a signal (smtp_client.h). */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 3) {
		fprintf(stderr, "usage: smtp_client_drive HOST PORT ...\n");
		return 2;
	}
	log_set_level(getenv("DRIVE_DEBUG") ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_INFO);
	memset(&p, 0, sizeof(p));
	p.id = "drive";
	p.helo = "client.test";
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[1], &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)atoi(argv[2]));
		sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, argv[1], &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)atoi(argv[2]));
		sslen = sizeof(*s6);
	} else {
		fprintf(stderr, "bad address\n");
		return 2;
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "opportunistic") == 0)
				p.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
			else if (strcmp(argv[i], "required") == 0)
				p.tls = SMTP_CLIENT_TLS_REQUIRED;
			else if (strcmp(argv[i], "implicit") == 0)
				p.tls = SMTP_CLIENT_TLS_IMPLICIT;
			else
				p.tls = SMTP_CLIENT_TLS_NONE;
		} else if (strcmp(argv[i], "--verify") == 0 && i + 1 < argc) {
			p.verify = 1;
			p.tls_name = argv[++i];
		} else if (strcmp(argv[i], "--sni") == 0 && i + 1 < argc)
			p.tls_name = argv[++i];
		else if (strcmp(argv[i], "--cafile") == 0 && i + 1 < argc)
			cafile = argv[++i];
		else if (strcmp(argv[i], "--auth") == 0 && i + 2 < argc) {
			p.auth_user = argv[++i];
			p.auth_pass = argv[++i];
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			t = (unsigned)atoi(argv[++i]);
			p.timeouts.connect = p.timeouts.banner = t;
			p.timeouts.ehlo = p.timeouts.mail = p.timeouts.rcpt = t;
			p.timeouts.data = p.timeouts.block = t;
			p.timeouts.dot = p.timeouts.rset = t;
		} else if (strcmp(argv[i], "--helo") == 0 && i + 1 < argc)
			p.helo = argv[++i];
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = atol(argv[++i]);
		else if (strcmp(argv[i], "--free-in-done") == 0)
			free_in_done = 1;
		else if (strcmp(argv[i], "--flags") == 0 && i + 1 < argc) {
			i++;
			flags8 = strstr(argv[i], "8bit") != NULL;
			flagsu = strstr(argv[i], "utf8") != NULL;
		} else if (strcmp(argv[i], "--txn") == 0 && i + 3 < argc &&
		    ntxn < MAXTXN) {
			struct drive_txn *d = &txns[ntxn++];

			d->from = strcmp(argv[i + 1], "-") == 0 ? "" :
			    argv[i + 1];
			for (r = strtok_r(argv[i + 2], ",", &save); r != NULL &&
			    d->nrcpts < MAXRCPT; r = strtok_r(NULL, ",", &save))
				d->rcpts[d->nrcpts++] = r;
			if ((d->msg = read_file(argv[i + 3], &d->len)) ==
			    NULL) {
				fprintf(stderr, "cannot read %s\n",
				    argv[i + 3]);
				return 2;
			}
			d->eightbit = flags8;
			d->smtputf8 = flagsu;
			flags8 = flagsu = 0;
			i += 3;
		} else {
			fprintf(stderr, "bad argument %s\n", argv[i]);
			return 2;
		}
	}
	base = event_base_new();
	if (p.tls != SMTP_CLIENT_TLS_NONE) {
		if ((p.ssl_ctx = tls_client_ctx_new(p.verify, stderr)) == NULL)
			return 1;
		if (cafile != NULL && SSL_CTX_load_verify_locations(p.ssl_ctx,
		    cafile, NULL) != 1) {
			fprintf(stderr, "cannot load %s\n", cafile);
			return 1;
		}
	}
	if ((c = smtp_client_connect(base, &p, (struct sockaddr *)&ss, sslen,
	    &cbs, NULL, err, sizeof(err))) == NULL) {
		printf("connect refused: %s\n", err);
		rc = 1;
	} else
		event_base_dispatch(base);
	for (i = 0; i < ntxn; i++)
		free(txns[i].msg);
	SSL_CTX_free(p.ssl_ctx);
	event_base_free(base);
	return rc;
}

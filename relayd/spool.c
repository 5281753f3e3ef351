/*
 * spool: the durable queue directory (see spool.h) and its group commit.
 *
 * Owns the directories under the spool dir and their descriptors, the
 * list of pending commits and riders, the pool of recycled files and the
 * committer that drains the lists.  The loop thread queues commits and
 * riders; the committer is a conveyor of steps (worker jobs, one at a
 * time), each with one flush.  A step takes up to SPOOL_BATCH_MAX commits
 * and every waiting rider, writes each commit to a recycled tmp/r.N or a
 * new tmp/ID while the riders write their files, renames the previous
 * step's commits (whose bytes the previous flush made durable) into
 * queue/ and lets the previous step's riders name their files; then one
 * flush makes this step's bytes and the previous step's names durable.
 * The previous step's commits are then acknowledged (the step's done()
 * runs their callbacks on the loop) and its riders take what they
 * finished out of queue/.  So a commit is written in one step and named
 * in the next, a name never reaches the disk before its bytes, and each
 * flush serves two batches: one flush per batch, where a round of its
 * own cost two.  A step passes the turn to a fresh job while anything is
 * left, so batches grow with the load.
 *
 * Limits: a spool file read at start is at most SPOOL_FILE_MAX bytes; the
 * free-space figure is at most a second old.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "log.h"
#include "spool.h"
#include "worker.h"

#define SPOOL_BATCH_MAX		64
/* Removals no step flushed are flushed this long after the last step:
 * at one message at a time, the next commit's flush usually comes first
 * and covers them for nothing. */
#define SPOOL_REMOVAL_FLUSH_MS	20
#define SPOOL_HEAD_MAX		(1024 * 1024)	/* envelope records */
#define SPOOL_FILE_MAX		((size_t)2 << 30)
/* IDs: milliseconds since 2024-01-01 in the top 42 bits (139 years), a
 * per-process counter with a random start in the low 22. */
#define SPOOL_ID_EPOCH_MS	1704067200000ULL
#define SPOOL_ID_CTR_BITS	22

struct spool_commit {
	struct spool		*sp;
	struct spool_commit	*next;
	char			 id[ENVELOPE_ID_MAX + 1];
	char			 tmp[ENVELOPE_ID_MAX + 1];	/* tmp/ name */
	struct buf		 head;
	struct buf		 prefix;	/* header fields added */
	struct buf		 body;
	spool_commit_cb		 cb;
	void			*arg;
	int			 status;
	int			 written;	/* tmp/ID exists */
	char			*image;		/* the file's bytes, for queued() */
	size_t			 imagelen;
};

struct spool_batch {
	struct worker_job	 job;
	struct spool		*sp;
	struct spool_commit	*list;		/* written in this step */
	struct spool_rider	*riders;	/* staged in this step */
	struct spool_commit	*prev;		/* named in this step */
	struct spool_rider	*prev_riders;	/* published in this step */
	int			 prev_flushed;	/* their bytes are durable */
	struct spool_commit	*report;	/* done(): their callbacks */
	struct spool_rider	*finished;	/* done(): their done() */
	int			 flush;		/* flush queue/'s removals */
};

struct spool {
	char			*dir;
	int			 dirfd, tmpfd, queuefd, quarfd, statefd;
	struct event_base	*base;
	struct worker_pool	*wp;
	enum spool_flush	 flush;

	pthread_mutex_t		 mtx;		/* guards the three below */
	struct spool_commit	*head, *tail;	/* waiting commits */
	struct spool_rider	*riders, *rtail;	/* waiting riders */
	size_t			 unflushed;	/* removals since a flush */
	struct event		*flush_ev;	/* loop thread: flush them */
	int			 running;	/* committer jobs that exist */
	dev_t			 dev;		/* the spool's file system */

	pthread_mutex_t		 pool_mtx;	/* guards the three below */
	uint32_t		*pool;		/* tmp/r.N, N for each */
	size_t			 npool;
	uint32_t		 pool_next;	/* the next N to use */

	uint64_t		 id_ctr;	/* atomic */
	uint64_t		 id_last;	/* atomic */

	time_t			 room_checked;	/* loop thread only */
	uint64_t		 room_free;

	void			(*queued)(const char *, char *, size_t,
				    void *);
	void			*queued_arg;
};

static void	spool_batch_work(struct worker_job *);
static void	spool_batch_done(struct worker_job *);
static void	spool_flush_timer(evutil_socket_t, short, void *);

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

void
spool_set_flush(struct spool *sp, enum spool_flush f)
{
	sp->flush = f;
}

int
spool_path(const struct spool *sp, const char *id, char *out, size_t outlen)
{
	int	 n;

	n = snprintf(out, outlen, "%s/queue/%s", sp->dir, id);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

static int
spool_id_ok(const char *id)
{
	size_t	 i;

	for (i = 0; id[i] != '\0'; i++) {
		unsigned char c = (unsigned char)id[i];

		if (i >= ENVELOPE_ID_MAX || !((c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return 0;
	}
	return i > 0;
}

/* --- recycled files (spool.h) ------------------------------------------ */

static void
spool_pool_name(char *out, size_t outlen, uint32_t n)
{
	snprintf(out, outlen, "r.%" PRIx32, n);
}

/* Take a recycled file's number: 0, or -1 when there is none. */
static int
spool_pool_take(struct spool *sp, uint32_t *n)
{
	int	 rc = -1;

	pthread_mutex_lock(&sp->pool_mtx);
	if (sp->npool > 0) {
		*n = sp->pool[--sp->npool];
		rc = 0;
	}
	pthread_mutex_unlock(&sp->pool_mtx);
	return rc;
}

/* A number for a file about to join the pool: 0, or -1 when it is full. */
static int
spool_pool_reserve(struct spool *sp, uint32_t *n)
{
	int	 rc = -1;

	pthread_mutex_lock(&sp->pool_mtx);
	if (sp->pool != NULL && sp->npool < SPOOL_POOL_MAX) {
		*n = sp->pool_next++;
		rc = 0;
	}
	pthread_mutex_unlock(&sp->pool_mtx);
	return rc;
}

/* 0, or -1 when the pool filled up since spool_pool_reserve(). */
static int
spool_pool_put(struct spool *sp, uint32_t n)
{
	int	 rc = -1;

	pthread_mutex_lock(&sp->pool_mtx);
	if (sp->npool < SPOOL_POOL_MAX) {
		sp->pool[sp->npool++] = n;
		rc = 0;
	}
	pthread_mutex_unlock(&sp->pool_mtx);
	return rc;
}

/* "r.N" with N in lower-case hex and nothing else: 0 and N, or -1. */
static int
spool_pool_parse(const char *name, uint32_t *n)
{
	char			*ep;
	unsigned long		 v;

	if (name[0] != 'r' || name[1] != '.' || name[2] == '\0' ||
	    strspn(name + 2, "0123456789abcdef") != strlen(name + 2) ||
	    strlen(name + 2) > 8)
		return -1;
	errno = 0;
	v = strtoul(name + 2, &ep, 16);
	if (errno != 0 || *ep != '\0' || v > UINT32_MAX)
		return -1;
	*n = (uint32_t)v;
	return 0;
}

void
spool_id_new(struct spool *sp, char id[SPOOL_ID_LEN + 1])
{
	struct timeval	 tv;
	uint64_t	 ms, v, last, ctr;

	gettimeofday(&tv, NULL);
	ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	ms = ms > SPOOL_ID_EPOCH_MS ? ms - SPOOL_ID_EPOCH_MS : 0;
	ctr = __atomic_fetch_add(&sp->id_ctr, 1, __ATOMIC_RELAXED);
	v = (ms << SPOOL_ID_CTR_BITS) |
	    (ctr & ((1ULL << SPOOL_ID_CTR_BITS) - 1));
	/* Strictly increasing within the process, whatever the clock does. */
	last = __atomic_load_n(&sp->id_last, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t want = v > last ? v : last + 1;

		if (__atomic_compare_exchange_n(&sp->id_last, &last, want, 0,
		    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			v = want;
			break;
		}
	}
	snprintf(id, SPOOL_ID_LEN + 1, "%016llx", (unsigned long long)v);
}

static int
spool_mkdir(int dfd, const char *name, FILE *err, const char *dir)
{
	if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST) {
		fprintf(err, "%s/%s: cannot create: %s\n", dir, name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
spool_opendir(int dfd, const char *name, FILE *err, const char *dir)
{
	int	 fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		fprintf(err, "%s/%s: cannot open: %s\n", dir, name,
		    strerror(errno));
	return fd;
}

/* Read a whole file relative to dfd into a malloc'd buffer. */
static int
spool_read(int dfd, const char *name, char **out, size_t *outlen)
{
	struct stat	 st;
	char		*p = NULL;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd, e;

	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size >= SPOOL_FILE_MAX) {
		errno = EINVAL;
		goto fail;
	}
	if ((p = malloc((size_t)st.st_size + 1)) == NULL)
		goto fail;
	/* Read one byte more than the size to notice a growing file. */
	while (n < (size_t)st.st_size + 1) {
		r = read(fd, p + n, (size_t)st.st_size + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n != (size_t)st.st_size) {
		errno = EIO;
		goto fail;
	}
	close(fd);
	*out = p;
	*outlen = n;
	return 0;
fail:
	e = errno;
	free(p);
	close(fd);
	errno = e;
	return -1;
}

int
spool_read_file(const struct spool *sp, const char *id, char **out,
    size_t *outlen)
{
	if (!spool_id_ok(id)) {
		errno = EINVAL;
		return -1;
	}
	return spool_read(sp->queuefd, id, out, outlen);
}

int
spool_quarantine(struct spool *sp, const char *id, const char *why)
{
	char	 name[ENVELOPE_ID_MAX + 16];
	char	 esc[LOG_ESCAPE_SIZE];
	int	 i;

	log_escape(esc, sizeof(esc), id, strlen(id));
	for (i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s", id);
		else
			snprintf(name, sizeof(name), "%.*s.%d",
			    ENVELOPE_ID_MAX, id, i);
		if (renameat2(sp->queuefd, id, sp->quarfd, name,
		    RENAME_NOREPLACE) == 0)
			break;
		if (errno == EINVAL && renameat(sp->queuefd, id, sp->quarfd,
		    name) == 0)
			break;
		if (errno != EEXIST) {
			log_error(spool_id_ok(id) ? id : "-",
			    "quarantine_failed file=%s error=\"%s\"", esc,
			    strerror(errno));
			return -1;
		}
	}
	if (i == 100)
		return -1;
	if (fsync(sp->quarfd) == -1 || fsync(sp->queuefd) == -1)
		log_error("-", "spool_fsync_failed error=\"%s\"",
		    strerror(errno));
	/* Its delivery state means nothing without it. */
	if (spool_id_ok(id))
		unlinkat(sp->statefd, id, 0);
	log_warn(spool_id_ok(id) ? id : "-", "quarantined reason=%s file=%s",
	    why, esc);
	return 0;
}

static int
spool_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Delete tmp/ leftovers, commits that never finished; adopt recycled
 * files (r.N) into the pool, up to SPOOL_POOL_MAX.  Their contents are
 * never read: the next commit overwrites them.
 */
static int
spool_clean_tmp(struct spool *sp, FILE *err)
{
	DIR		*d;
	struct dirent	*de;
	uint32_t	 n;
	int		 fd;

	if ((fd = dup(sp->tmpfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		fprintf(err, "%s/tmp: %s\n", sp->dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char esc[LOG_ESCAPE_SIZE];

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_REG && spool_pool_parse(de->d_name,
		    &n) == 0 && sp->npool < SPOOL_POOL_MAX) {
			sp->pool[sp->npool++] = n;
			if (n >= sp->pool_next)
				sp->pool_next = n + 1;
			continue;
		}
		log_escape(esc, sizeof(esc), de->d_name, strlen(de->d_name));
		if (unlinkat(sp->tmpfd, de->d_name, 0) == -1) {
			fprintf(err, "%s/tmp/%s: cannot delete: %s\n", sp->dir,
			    de->d_name, strerror(errno));
			closedir(d);
			return -1;
		}
		if (spool_pool_parse(de->d_name, &n) == -1)
			log_info(spool_id_ok(de->d_name) ? de->d_name : "-",
			    "tmp_deleted file=%s", esc);
	}
	closedir(d);
	fsync(sp->tmpfd);
	return 0;
}

/* Check queue/ and report the good files, oldest first. */
static int
spool_recover(struct spool *sp, FILE *err,
    void (*found)(const char *, void *), void *arg)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL, **nn;
	size_t		 n = 0, cap = 0, i;
	int		 fd, rc = -1;

	if ((fd = dup(sp->queuefd)) == -1 || (d = fdopendir(fd)) == NULL) {
		fprintf(err, "%s/queue: %s\n", sp->dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = realloc(names, cap * sizeof(*nn))) == NULL)
				goto out;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto out;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), spool_cmp);
	for (i = 0; i < n; i++) {
		struct envelope	 env;
		const char	*body, *why = NULL;
		char		*p = NULL;
		size_t		 plen, blen;
		int		 oom = 0;

		if (!spool_id_ok(names[i]))
			why = "bad-name";
		else if (spool_read(sp->queuefd, names[i], &p, &plen) == -1) {
			if (errno == ENOMEM)
				oom = 1;
			else
				why = "unreadable";
		} else if (envelope_parse(p, plen, &env, &body, &blen) == -1)
			why = "unparsable";
		else {
			if (strcmp(env.id, names[i]) != 0)
				why = "id-mismatch";
			envelope_clear(&env);
		}
		free(p);
		if (oom) {
			fprintf(err, "%s/queue/%s: out of memory\n", sp->dir,
			    names[i]);
			goto out;
		}
		if (why != NULL) {
			if (spool_quarantine(sp, names[i], why) == -1) {
				fprintf(err, "%s/queue/%s: cannot quarantine\n",
				    sp->dir, names[i]);
				goto out;
			}
			continue;
		}
		if (found != NULL)
			found(names[i], arg);
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/*
 * Delete state/ files without a message in queue/ (delivered or
 * quarantined before their state was removed) and unfinished state/
 * writes (NAME.tmp).  Runs after spool_recover(), so every state file
 * left belongs to a message the queue was told about.
 */
static int
spool_clean_state(struct spool *sp, FILE *err)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	int		 fd, orphan;

	if ((fd = dup(sp->statefd)) == -1 || (d = fdopendir(fd)) == NULL) {
		fprintf(err, "%s/state: %s\n", sp->dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char esc[LOG_ESCAPE_SIZE];

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		orphan = !spool_id_ok(de->d_name) ||
		    fstatat(sp->queuefd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1;
		if (!orphan)
			continue;
		log_escape(esc, sizeof(esc), de->d_name, strlen(de->d_name));
		if (unlinkat(sp->statefd, de->d_name, 0) == -1) {
			fprintf(err, "%s/state/%s: cannot delete: %s\n",
			    sp->dir, de->d_name, strerror(errno));
			closedir(d);
			return -1;
		}
		log_info("-", "state_orphan_deleted file=%s", esc);
	}
	closedir(d);
	fsync(sp->statefd);
	return 0;
}

struct spool *
spool_open(const char *dir, struct event_base *base, struct worker_pool *wp,
    FILE *err, void (*found)(const char *, void *), void *arg)
{
	struct spool	*sp;
	uint64_t	 rnd = 0;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		fprintf(err, "%s: out of memory\n", dir);
		return NULL;
	}
	sp->dirfd = sp->tmpfd = sp->queuefd = sp->quarfd = sp->statefd = -1;
	sp->base = base;
	sp->wp = wp;
	sp->flush = SPOOL_FLUSH_DEFAULT;
	pthread_mutex_init(&sp->mtx, NULL);
	pthread_mutex_init(&sp->pool_mtx, NULL);
	if ((sp->dir = strdup(dir)) == NULL ||
	    (sp->pool = calloc(SPOOL_POOL_MAX, sizeof(*sp->pool))) == NULL) {
		fprintf(err, "%s: out of memory\n", dir);
		goto fail;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(err, "%s: cannot create the spool: %s\n", dir,
		    strerror(errno));
		goto fail;
	}
	if ((sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(err, "%s: cannot open the spool: %s\n", dir,
		    strerror(errno));
		goto fail;
	}
	{
		struct stat	 st;

		if (fstat(sp->dirfd, &st) == 0)
			sp->dev = st.st_dev;
	}
	if (spool_mkdir(sp->dirfd, "tmp", err, dir) == -1 ||
	    spool_mkdir(sp->dirfd, "queue", err, dir) == -1 ||
	    spool_mkdir(sp->dirfd, "quarantine", err, dir) == -1 ||
	    spool_mkdir(sp->dirfd, "state", err, dir) == -1)
		goto fail;
	if ((sp->tmpfd = spool_opendir(sp->dirfd, "tmp", err, dir)) == -1 ||
	    (sp->queuefd = spool_opendir(sp->dirfd, "queue", err, dir)) == -1 ||
	    (sp->quarfd = spool_opendir(sp->dirfd, "quarantine", err,
	    dir)) == -1 ||
	    (sp->statefd = spool_opendir(sp->dirfd, "state", err, dir)) == -1)
		goto fail;
	fsync(sp->dirfd);
	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		rnd = (uint64_t)getpid() * 2654435761u;
	sp->id_ctr = rnd;
	if (base != NULL &&
	    (sp->flush_ev = evtimer_new(base, spool_flush_timer, sp)) == NULL) {
		fprintf(err, "%s: out of memory\n", dir);
		goto fail;
	}
	if (spool_clean_tmp(sp, err) == -1 ||
	    spool_recover(sp, err, found, arg) == -1 ||
	    spool_clean_state(sp, err) == -1)
		goto fail;
	return sp;
fail:
	spool_free(sp);
	return NULL;
}

void
spool_free(struct spool *sp)
{
	struct spool_commit	*c, *next;

	if (sp == NULL)
		return;
	/* The worker pool is freed first, so no committer is running. */
	for (c = sp->head; c != NULL; c = next) {
		next = c->next;
		buf_clear(&c->head);
		buf_clear(&c->prefix);
		buf_clear(&c->body);
		free(c);
	}
	while (sp->riders != NULL) {
		struct spool_rider *rd = sp->riders;

		sp->riders = rd->next;
		rd->done(rd, 0);
	}
	/* Removals not flushed yet: now. */
	if (sp->unflushed > 0 && sp->queuefd != -1)
		fsync(sp->queuefd);
	if (sp->flush_ev != NULL)
		event_free(sp->flush_ev);
	if (sp->dirfd != -1)
		close(sp->dirfd);
	if (sp->tmpfd != -1)
		close(sp->tmpfd);
	if (sp->queuefd != -1)
		close(sp->queuefd);
	if (sp->quarfd != -1)
		close(sp->quarfd);
	if (sp->statefd != -1)
		close(sp->statefd);
	pthread_mutex_destroy(&sp->mtx);
	pthread_mutex_destroy(&sp->pool_mtx);
	free(sp->pool);
	free(sp->dir);
	free(sp);
}

void
spool_set_notify(struct spool *sp, void (*queued)(const char *, char *,
    size_t, void *), void *arg)
{
	sp->queued = queued;
	sp->queued_arg = arg;
}

int
spool_has_room(struct spool *sp, uint64_t bytes)
{
	struct statvfs	 vfs;
	time_t		 now = time(NULL);

	if (sp->room_checked != now) {
		if (fstatvfs(sp->dirfd, &vfs) == 0) {
			sp->room_free = (uint64_t)vfs.f_bavail *
			    (uint64_t)vfs.f_frsize;
			sp->room_checked = now;
		} else
			log_error("-", "spool_statvfs_failed error=\"%s\"",
			    strerror(errno));
	}
	return sp->room_free >= bytes;
}

/* A new step job, not yet submitted: NULL without memory. */
static struct spool_batch *
spool_batch_new(struct spool *sp)
{
	struct spool_batch	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->job.work = spool_batch_work;
	b->job.done = spool_batch_done;
	b->sp = sp;
	return b;
}

/* Start the committer if it does not run.  Called with sp->mtx held. */
static int
spool_start_locked(struct spool *sp)
{
	struct spool_batch	*b;

	if (sp->running > 0)
		return 0;
	if ((b = spool_batch_new(sp)) == NULL)
		return -1;
	sp->running++;
	worker_submit(sp->wp, &b->job);
	return 0;
}

/* Loop thread: removals still unflushed and no step running. */
static void
spool_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct spool		*sp = arg;
	struct spool_batch	*b;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&sp->mtx);
	if (sp->unflushed > 0 && sp->running == 0 &&
	    (b = spool_batch_new(sp)) != NULL) {
		b->flush = 1;
		sp->running++;
		worker_submit(sp->wp, &b->job);
	}
	pthread_mutex_unlock(&sp->mtx);
}

struct spool_commit *
spool_commit(struct spool *sp, const struct envelope *env, struct buf *body,
    spool_commit_cb cb, void *arg)
{
	return spool_commit_prefixed(sp, env, NULL, body, cb, arg);
}

struct spool_commit *
spool_commit_prefixed(struct spool *sp, const struct envelope *env,
    struct buf *prefix, struct buf *body, spool_commit_cb cb, void *arg)
{
	struct spool_commit	*c;
	size_t			 plen = prefix != NULL ? prefix->len : 0;

	if (!spool_id_ok(env->id) || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->sp = sp;
	memcpy(c->id, env->id, sizeof(c->id));
	c->cb = cb;
	c->arg = arg;
	c->status = -1;
	buf_init(&c->head, SPOOL_HEAD_MAX);
	buf_init(&c->prefix, 0);
	buf_init(&c->body, 0);
	if (envelope_write_head(env, plen + body->len, &c->head) == -1) {
		buf_clear(&c->head);
		free(c);
		return NULL;
	}
	if (prefix != NULL)
		buf_move(&c->prefix, prefix);
	buf_move(&c->body, body);
	pthread_mutex_lock(&sp->mtx);
	if (sp->tail)
		sp->tail->next = c;
	else
		sp->head = c;
	sp->tail = c;
	if (spool_start_locked(sp) == -1) {
		/* Out of memory: take it back; the caller answers 451. */
		struct spool_commit **pp = &sp->head, *prev = NULL;

		while (*pp != c) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = NULL;
		sp->tail = prev;
		pthread_mutex_unlock(&sp->mtx);
		buf_move(body, &c->body);
		if (prefix != NULL)
			buf_move(prefix, &c->prefix);
		buf_clear(&c->head);
		free(c);
		return NULL;
	}
	pthread_mutex_unlock(&sp->mtx);
	return c;
}

void
spool_commit_detach(struct spool_commit *c)
{
	if (c != NULL) {
		c->cb = NULL;
		c->arg = NULL;
	}
}

/* writev everything, across partial writes. */
static int
spool_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	ssize_t	 r;

	while (iovcnt > 0) {
		r = writev(fd, iov, iovcnt);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		while (iovcnt > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/*
 * Open the file a commit writes: a recycled tmp/r.N when there is one
 * (its old bytes are overwritten and cut off after the write), else a new
 * tmp/ID.  Sets c->tmp; returns the descriptor and, in *old, the size of
 * what is in the file already; -1 with errno set.
 */
static int
spool_open_tmp(struct spool *sp, struct spool_commit *c, off_t *old)
{
	struct stat	 st;
	uint32_t	 n;
	int		 fd;

	while (spool_pool_take(sp, &n) == 0) {
		spool_pool_name(c->tmp, sizeof(c->tmp), n);
		fd = openat(sp->tmpfd, c->tmp, O_WRONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (fd == -1)
			continue;	/* gone: try the next one */
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			close(fd);
			unlinkat(sp->tmpfd, c->tmp, 0);
			continue;
		}
		*old = st.st_size;
		return fd;
	}
	snprintf(c->tmp, sizeof(c->tmp), "%s", c->id);
	*old = 0;
	return openat(sp->tmpfd, c->tmp, O_CREAT | O_EXCL | O_WRONLY |
	    O_CLOEXEC, 0600);
}

/*
 * Write the commit's file under tmp/; with per-file flushing, also
 * fdatasync it.  The file's bytes are put together in c->image first
 * (head, prefix, body, tail), written with one write, and kept for the
 * queue; the parts are freed.
 */
static int
spool_write_one(struct spool *sp, struct spool_commit *c, int per_file)
{
	struct iovec	 iov[1];
	struct buf	 tail;
	off_t		 old, len;
	char		*p;
	int		 fd, rc = -1, e;

	buf_init(&tail, 128);
	len = (off_t)(c->head.len + c->prefix.len + c->body.len);
	if (envelope_write_tail((size_t)len, &tail) == -1 ||
	    (c->image = malloc((size_t)len + tail.len)) == NULL) {
		buf_clear(&tail);
		errno = ENOMEM;
		return -1;
	}
	p = c->image;
	memcpy(p, c->head.data, c->head.len);
	p += c->head.len;
	if (c->prefix.len > 0)
		memcpy(p, c->prefix.data, c->prefix.len);
	p += c->prefix.len;
	if (c->body.len > 0)
		memcpy(p, c->body.data, c->body.len);
	p += c->body.len;
	memcpy(p, tail.data, tail.len);
	c->imagelen = (size_t)len + tail.len;
	len = (off_t)c->imagelen;
	buf_clear(&tail);
	buf_clear(&c->body);
	buf_clear(&c->prefix);
	buf_clear(&c->head);
	if ((fd = spool_open_tmp(sp, c, &old)) == -1)
		return -1;
	c->written = 1;
	iov[0].iov_base = c->image;
	iov[0].iov_len = c->imagelen;
	if (spool_writev_all(fd, iov, 1) == -1)
		goto out;
	/* A recycled file longer than this message: cut off the rest. */
	if (old > len && ftruncate(fd, len) == -1)
		goto out;
	if (per_file && fdatasync(fd) == -1)
		goto out;
	rc = 0;
out:
	e = errno;
	if (close(fd) == -1 && rc == 0) {
		e = errno;
		rc = -1;
	}
	errno = e;
	return rc;
}

static void
spool_fail(struct spool *sp, struct spool_commit *c, const char *what, int e)
{
	if (c->written && unlinkat(sp->tmpfd, c->tmp, 0) == -1 &&
	    errno != ENOENT)
		log_error(c->id, "spool_unlink_failed error=\"%s\"",
		    strerror(errno));
	c->written = 0;
	c->status = -1;
	free(c->image);
	c->image = NULL;
	log_error(c->id, "spool_write_failed step=%s error=\"%s\"", what,
	    strerror(e));
}

/* The end of a list of commits (its last next pointer). */
static struct spool_commit **
spool_commits_end(struct spool_commit **pp)
{
	while (*pp != NULL)
		pp = &(*pp)->next;
	return pp;
}

/* Arm the removal flush timer if removals wait and no step runs.
 * Loop thread, sp->mtx held. */
static void
spool_arm_flush_locked(struct spool *sp)
{
	struct timeval	 tv = { 0, SPOOL_REMOVAL_FLUSH_MS * 1000 };

	if (sp->unflushed > 0 && sp->running == 0 && sp->flush_ev != NULL &&
	    !evtimer_pending(sp->flush_ev, NULL))
		evtimer_add(sp->flush_ev, &tv);
}

/*
 * Runs on a worker: one step of the conveyor (see the top of this file).
 * Its commits and staging riders go on to the next step, which names them;
 * the commits named here, and the commits and riders that ended here, go
 * back to the loop with this step's done().  Steps run one at a time
 * (sp->running); with no memory for the next step's job, this one goes on
 * with it itself.
 */
static void
spool_batch_work(struct worker_job *j)
{
	struct spool_batch	*b = (struct spool_batch *)j;
	struct spool		*sp = b->sp;
	struct spool_commit	*c, *cnext, **pp, **ct, **rt, *carry;
	struct spool_rider	*rd, *rcarry;
	struct spool_batch	*nb;
	size_t			 staged, settled;
	int			 n, ok, toname, named, published, per_file, e, rc;
	int			 flushed, more;

again:
	staged = settled = 0;
	ok = toname = named = published = 0;
	/* Take up to SPOOL_BATCH_MAX waiting commits, and every rider. */
	pthread_mutex_lock(&sp->mtx);
	b->list = sp->head;
	for (pp = &sp->head, n = 0; *pp != NULL && n < SPOOL_BATCH_MAX; n++)
		pp = &(*pp)->next;
	sp->head = *pp;
	*pp = NULL;
	if (sp->head == NULL)
		sp->tail = NULL;
	b->riders = sp->riders;
	sp->riders = sp->rtail = NULL;
	if (b->flush) {
		settled = sp->unflushed;
		sp->unflushed = 0;
		b->flush = 0;
	}
	pthread_mutex_unlock(&sp->mtx);
	if (settled > 0 && fsync(sp->queuefd) == -1)
		log_error("-", "spool_fsync_failed error=\"%s\"",
		    strerror(errno));
	settled = 0;

	/* This step's bytes: the riders' files, then the commits'. */
	for (rd = b->riders; rd != NULL; rd = rd->next)
		if (rd->stage != NULL)
			staged += rd->stage(rd);
	for (rd = b->prev_riders; rd != NULL; rd = rd->next)
		if (rd->publish != NULL)
			published = 1;
	for (c = b->prev; c != NULL; c = c->next)
		if (c->status == 0)
			toname++;
	/*
	 * A lone message with nothing else to make durable is flushed with
	 * fdatasync, which costs less than a syncfs of the whole file system;
	 * anything more shares one syncfs (with SPOOL_FLUSH_FDATASYNC, files
	 * are always flushed one by one and queue/ with fsync).
	 */
	per_file = staged == 0 && !published &&
	    (sp->flush == SPOOL_FLUSH_FDATASYNC || (n <= 1 && toname == 0));
	for (c = b->list; c != NULL; c = c->next) {
		if (spool_write_one(sp, c, per_file) == -1)
			spool_fail(sp, c, "write", errno);
		else {
			c->status = 0;
			ok++;
		}
		/* The bytes are in the file (or lost): free them now. */
		buf_clear(&c->body);
		buf_clear(&c->prefix);
		buf_clear(&c->head);
	}

	/* The previous step's names, its bytes being durable. */
	for (c = b->prev; c != NULL; c = c->next) {
		if (c->status != 0)
			continue;
		if (!b->prev_flushed) {
			spool_fail(sp, c, "syncfs", EIO);
			continue;
		}
		if (renameat2(sp->tmpfd, c->tmp, sp->queuefd, c->id,
		    RENAME_NOREPLACE) == -1 && (errno != EINVAL ||
		    renameat(sp->tmpfd, c->tmp, sp->queuefd, c->id) == -1)) {
			spool_fail(sp, c, "rename", errno);
			continue;
		}
		c->written = 0;
		named++;
	}
	for (rd = b->prev_riders; rd != NULL; rd = rd->next)
		if (rd->publish != NULL)
			rd->publish(rd, b->prev_flushed);

	/*
	 * One flush: this step's bytes and the previous step's names (a
	 * syncfs also covers the riders' directories on this file system,
	 * and every removal made before it).
	 */
	rc = 0;
	if (staged > 0 || published || (ok > 0 && !per_file) || named > 0) {
		pthread_mutex_lock(&sp->mtx);
		sp->unflushed = 0;
		pthread_mutex_unlock(&sp->mtx);
		if (staged > 0 || published || (ok > 0 && !per_file))
			rc = syncfs(sp->tmpfd);
		else
			rc = fsync(sp->queuefd);
	}
	e = errno;
	flushed = rc == 0;
	if (!flushed) {
		if (!per_file)
			for (c = b->list; c != NULL; c = c->next)
				if (c->status == 0)
					spool_fail(sp, c, "syncfs", e);
		/* Nothing named here is acknowledged: take it back out. */
		for (c = b->prev; c != NULL; c = c->next) {
			if (c->status != 0)
				continue;
			unlinkat(sp->queuefd, c->id, 0);
			c->status = -1;
			log_error(c->id, "spool_write_failed step=fsync "
			    "error=\"%s\"", strerror(e));
		}
		if (named == 0 && ok == 0)
			log_error("-", "spool_fsync_failed error=\"%s\"",
			    strerror(e));
		fsync(sp->queuefd);
	}
	/* The previous step's riders are done; this step's go on (riders
	 * that only settle never come here: spool_ride()). */
	for (rd = b->prev_riders; rd != NULL; rd = rd->next)
		if (rd->settle != NULL)
			settled += rd->settle(rd, flushed);
	{
		struct spool_rider **fp = &b->finished;

		while (*fp != NULL)
			fp = &(*fp)->next;
		*fp = b->prev_riders;
	}
	b->prev_riders = NULL;
	rcarry = b->riders;
	b->riders = NULL;
	/* Named (or failed) commits go back; this step's written ones on. */
	rt = spool_commits_end(&b->report);
	*rt = b->prev;
	rt = spool_commits_end(rt);
	b->prev = NULL;
	carry = NULL;
	ct = &carry;
	for (c = b->list; c != NULL; c = cnext) {
		cnext = c->next;
		c->next = NULL;
		if (c->status == 0) {
			*ct = c;
			ct = &c->next;
		} else {
			*rt = c;
			rt = &c->next;
		}
	}
	b->list = NULL;

	/*
	 * Pass the turn to the next step if anything is left.  When this step
	 * named no commit and nothing new is waiting (a lone message: its
	 * bytes flushed, its name not yet), it takes the next step itself: no
	 * hand-off to another thread, and no client waits on its done() (a
	 * rider's done() may wait one step).
	 */
	pthread_mutex_lock(&sp->mtx);
	sp->unflushed += settled;
	more = carry != NULL || rcarry != NULL || sp->head != NULL ||
	    sp->riders != NULL;
	nb = NULL;
	if (more && b->report == NULL && sp->head == NULL &&
	    sp->riders == NULL) {
		/* Below: this job goes on. */
	} else if (more && (nb = spool_batch_new(sp)) != NULL) {
		nb->prev = carry;
		nb->prev_riders = rcarry;
		nb->prev_flushed = flushed;
		worker_submit(sp->wp, &nb->job);
	} else if (!more)
		sp->running--;
	pthread_mutex_unlock(&sp->mtx);
	if (more && nb == NULL) {
		/* This job takes the next step (also with no memory for one). */
		b->prev = carry;
		b->prev_riders = rcarry;
		b->prev_flushed = flushed;
		goto again;
	}
	/* Removals left unflushed when no step follows: spool_batch_done()
	 * arms a timer for them. */
}

/* Loop thread: tell every owner and rider, then the queue. */
static void
spool_batch_done(struct worker_job *j)
{
	struct spool_batch	*b = (struct spool_batch *)j;
	struct spool		*sp = b->sp;
	struct spool_commit	*c, *next;
	struct spool_rider	*rd, *rnext;

	for (c = b->report; c != NULL; c = next) {
		next = c->next;
		if (c->cb != NULL)
			c->cb(c->status, c->id, c->arg);
		if (c->status == 0 && sp->queued != NULL) {
			sp->queued(c->id, c->image, c->imagelen,
			    sp->queued_arg);
			c->image = NULL;
		}
		free(c->image);
		free(c);
	}
	for (rd = b->finished; rd != NULL; rd = rnext) {
		rnext = rd->next;
		rd->done(rd, 1);
	}
	free(b);
	pthread_mutex_lock(&sp->mtx);
	spool_arm_flush_locked(sp);
	pthread_mutex_unlock(&sp->mtx);
}

/*
 * A rider with only settle() (removals) needs no flush of its own and no
 * place in the committer's steps: a job of its own runs it beside them,
 * so a commit never waits behind it.  The removals become durable with
 * the committer's next flush, or the flush timer's.
 */
struct spool_settle_job {
	struct worker_job	 job;
	struct spool		*sp;
	struct spool_rider	*rd;
};

static void
spool_settle_work(struct worker_job *wj)
{
	struct spool_settle_job	*j = (struct spool_settle_job *)wj;
	size_t			 settled = 0;

	if (j->rd->settle != NULL)
		settled = j->rd->settle(j->rd, 1);
	pthread_mutex_lock(&j->sp->mtx);
	j->sp->unflushed += settled;
	pthread_mutex_unlock(&j->sp->mtx);
}

static void
spool_settle_done(struct worker_job *wj)
{
	struct spool_settle_job	*j = (struct spool_settle_job *)wj;
	struct spool		*sp = j->sp;

	j->rd->done(j->rd, 1);
	free(j);
	pthread_mutex_lock(&sp->mtx);
	spool_arm_flush_locked(sp);
	pthread_mutex_unlock(&sp->mtx);
}

int
spool_ride(struct spool *sp, struct spool_rider *rd)
{
	rd->next = NULL;
	if (rd->stage == NULL && rd->publish == NULL) {
		struct spool_settle_job *j;

		if ((j = calloc(1, sizeof(*j))) == NULL)
			return -1;
		j->job.work = spool_settle_work;
		j->job.done = spool_settle_done;
		j->sp = sp;
		j->rd = rd;
		worker_submit(sp->wp, &j->job);
		return 0;
	}
	pthread_mutex_lock(&sp->mtx);
	if (spool_start_locked(sp) == -1) {
		pthread_mutex_unlock(&sp->mtx);
		return -1;
	}
	if (sp->rtail)
		sp->rtail->next = rd;
	else
		sp->riders = rd;
	sp->rtail = rd;
	pthread_mutex_unlock(&sp->mtx);
	return 0;
}

int
spool_same_fs(const struct spool *sp, int fd)
{
	struct stat	 st;

	return fstat(fd, &st) == 0 && st.st_dev == sp->dev;
}

/*
 * Take queue/ID out: into the pool of recycled files (tmp/r.N) when it is
 * small and the pool has room, else unlink it.  0, or -1 with errno set
 * (ENOENT: not there).
 */
static int
spool_retire(struct spool *sp, const char *id)
{
	char		 name[ENVELOPE_ID_MAX + 1];
	struct stat	 st;
	uint32_t	 n;

	if (fstatat(sp->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size <= SPOOL_POOL_FILE_MAX &&
	    spool_pool_reserve(sp, &n) == 0) {
		spool_pool_name(name, sizeof(name), n);
		if (renameat2(sp->queuefd, id, sp->tmpfd, name,
		    RENAME_NOREPLACE) == 0 || (errno == EINVAL &&
		    renameat(sp->queuefd, id, sp->tmpfd, name) == 0)) {
			if (spool_pool_put(sp, n) == -1)
				unlinkat(sp->tmpfd, name, 0);
			return 0;
		}
		if (errno == ENOENT)
			return -1;
	}
	return unlinkat(sp->queuefd, id, 0);
}

size_t
spool_unqueue(struct spool *sp, const char *const *ids, size_t n)
{
	size_t	 i, done = 0;

	for (i = 0; i < n; i++) {
		if (!spool_id_ok(ids[i]))
			continue;
		if (spool_retire(sp, ids[i]) == -1) {
			if (errno != ENOENT)
				log_error(ids[i], "spool_remove_failed "
				    "error=\"%s\"", strerror(errno));
			continue;
		}
		done++;
		/* The delivery state goes after the message: a crash
		 * between the two leaves an orphan that spool_open()
		 * deletes, never a message without its state. */
		if (unlinkat(sp->statefd, ids[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn(ids[i], "state_remove_failed error=\"%s\"",
			    strerror(errno));
	}
	return done;
}

int
spool_remove_many(struct spool *sp, const char *const *ids, size_t n)
{
	/* fsync on a shared descriptor is safe from several threads. */
	if (spool_unqueue(sp, ids, n) > 0 && fsync(sp->queuefd) == -1) {
		log_error("-", "spool_fsync_failed error=\"%s\"",
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
spool_remove(struct spool *sp, const char *id)
{
	return spool_remove_many(sp, &id, 1);
}

int
spool_state_read(const struct spool *sp, const char *id, char **out,
    size_t *outlen)
{
	if (!spool_id_ok(id)) {
		errno = EINVAL;
		return -1;
	}
	return spool_read(sp->statefd, id, out, outlen);
}

static int
spool_state_write_one(struct spool *sp, const char *id, const void *data,
    size_t len)
{
	char		 tmp[ENVELOPE_ID_MAX + 8];
	const char	*p = data;
	ssize_t		 w;
	int		 fd, e;

	snprintf(tmp, sizeof(tmp), "%s.tmp", id);
	fd = openat(sp->statefd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return -1;
	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (sp->flush == SPOOL_FLUSH_FDATASYNC && fdatasync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	unlinkat(sp->statefd, tmp, 0);
	errno = e;
	return -1;
}

int
spool_state_write_many(struct spool *sp, const char *const *ids,
    const struct buf *const *data, int *ok, size_t n)
{
	char	 tmp[ENVELOPE_ID_MAX + 8];
	size_t	 i, nw = 0;
	int	 rc = 0;

	for (i = 0; i < n; i++) {
		ok[i] = 0;
		if (!spool_id_ok(ids[i]) || spool_state_write_one(sp, ids[i],
		    data[i]->data, data[i]->len) == -1) {
			log_error(spool_id_ok(ids[i]) ? ids[i] : "-",
			    "state_write_failed error=\"%s\"",
			    strerror(errno));
			rc = -1;
			continue;
		}
		ok[i] = 1;
		nw++;
	}
	/* One flush for the batch's data (see spool_set_flush()). */
	if (nw > 0 && sp->flush == SPOOL_FLUSH_SYNCFS &&
	    syncfs(sp->statefd) == -1) {
		log_error("-", "state_syncfs_failed error=\"%s\"",
		    strerror(errno));
		for (i = 0; i < n; i++)
			ok[i] = 0;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		snprintf(tmp, sizeof(tmp), "%s.tmp", ids[i]);
		if (renameat(sp->statefd, tmp, sp->statefd, ids[i]) == -1) {
			log_error(ids[i], "state_rename_failed "
			    "error=\"%s\"", strerror(errno));
			unlinkat(sp->statefd, tmp, 0);
			ok[i] = 0;
			rc = -1;
		}
	}
	if (nw > 0 && fsync(sp->statefd) == -1) {
		log_error("-", "state_fsync_failed error=\"%s\"",
		    strerror(errno));
		for (i = 0; i < n; i++)
			ok[i] = 0;
		return -1;
	}
	return rc;
}

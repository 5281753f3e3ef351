/*
 * capture_fs: the file-system work that capture mode's contract takes per
 * message, alone: no SMTP, no signing, no relayd.  Per message, as the
 * spool and capture do (docs/architecture.md): write a recycled spool file
 * (tmp/r.N, 2,500 bytes), rename it into queue/, write ID.eml (2,300
 * bytes) and ID.json (150) unnamed (O_TMPFILE), link them into the capture
 * directory, rename the spool file back out into the pool.  Steps run as
 * relayd's committer does, one syncfs per step: a step writes its batch's
 * files, names the previous batch's, flushes, and retires the batch
 * named.  So this is the most the disk allows for that contract, with
 * nothing else on the machine.
 *
 *   capture_fs [DIR] [SECONDS]
 *
 * DIR (default: a new directory under /var/tmp) must be on the disk to
 * measure.  Runs one thread with batches of 6 and 12, then two threads
 * (each with its own directories) with batches of 6, and prints messages
 * per second, the process's CPU per message, the whole machine's busy CPU
 * per message (/proc/stat) and the bytes written per message
 * (/proc/diskstats).  Built by meson as BUILD/tests/bench/capture_fs; not
 * run by CI (docs/testing.md).  Leaves its files in DIR.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#define BATCH_MAX	64
#define SPOOL_LEN	2500
#define EML_LEN		2300
#define JSON_LEN	150

struct stream {
	pthread_t	 t;
	int		 tmp, queue, cap, root;
	unsigned	 batch;
	double		 secs;
	unsigned long	 done;
	uint32_t	 pool[BATCH_MAX * 2], npool, next;
	unsigned long	 id;
};

static char	 bytes[SPOOL_LEN];

static void
die(const char *what)
{
	fprintf(stderr, "capture_fs: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
write_all(int fd, size_t n)
{
	ssize_t	 w;
	size_t	 off = 0;

	while (off < n) {
		if ((w = write(fd, bytes + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* One batch in flight: its spool files' names and capture descriptors. */
struct batch {
	unsigned	 n;
	unsigned long	 id[BATCH_MAX];
	uint32_t	 r[BATCH_MAX];
	int		 eml[BATCH_MAX], json[BATCH_MAX];
};

static void
stage(struct stream *s, struct batch *b)
{
	char	 name[32];
	unsigned i;
	int	 fd;

	b->n = s->batch;
	for (i = 0; i < b->n; i++) {
		b->id[i] = s->id++;
		b->r[i] = s->pool[--s->npool];
		snprintf(name, sizeof(name), "r.%x", b->r[i]);
		if ((fd = openat(s->tmp, name, O_WRONLY | O_CLOEXEC)) == -1 ||
		    write_all(fd, SPOOL_LEN) == -1 || close(fd) == -1)
			die("spool file");
		if ((b->eml[i] = openat(s->cap, ".", O_TMPFILE | O_WRONLY |
		    O_CLOEXEC, 0600)) == -1 || write_all(b->eml[i], EML_LEN) ||
		    (b->json[i] = openat(s->cap, ".", O_TMPFILE | O_WRONLY |
		    O_CLOEXEC, 0600)) == -1 || write_all(b->json[i], JSON_LEN))
			die("capture file");
	}
}

static void
name(struct stream *s, struct batch *b)
{
	char	 from[32], to[40];
	unsigned i;

	for (i = 0; i < b->n; i++) {
		snprintf(from, sizeof(from), "r.%x", b->r[i]);
		snprintf(to, sizeof(to), "%016lx", b->id[i]);
		if (renameat2(s->tmp, from, s->queue, to, RENAME_NOREPLACE))
			die("rename into queue/");
		snprintf(to, sizeof(to), "%016lx.eml", b->id[i]);
		if (linkat(b->eml[i], "", s->cap, to, AT_EMPTY_PATH) == -1)
			die("link eml");
		snprintf(to, sizeof(to), "%016lx.json", b->id[i]);
		if (linkat(b->json[i], "", s->cap, to, AT_EMPTY_PATH) == -1)
			die("link json");
		close(b->eml[i]);
		close(b->json[i]);
	}
}

static void
retire(struct stream *s, struct batch *b)
{
	char		 from[32], to[32];
	struct stat	 st;
	unsigned	 i;
	uint32_t	 r;

	for (i = 0; i < b->n; i++) {
		snprintf(from, sizeof(from), "%016lx", b->id[i]);
		r = s->next++;
		snprintf(to, sizeof(to), "r.%x", r);
		if (fstatat(s->queue, from, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    renameat2(s->queue, from, s->tmp, to, RENAME_NOREPLACE))
			die("rename out of queue/");
		s->pool[s->npool++] = r;
	}
	b->n = 0;
}

static void *
run(void *arg)
{
	struct stream	*s = arg;
	struct batch	 b[2];
	double		 end = now() + s->secs;
	int		 k = 0;

	memset(b, 0, sizeof(b));
	while (now() < end) {
		/* b[k]: written in this step; b[!k]: named in it. */
		stage(s, &b[k]);
		if (b[!k].n > 0)
			name(s, &b[!k]);
		if (syncfs(s->root) == -1)
			die("syncfs");
		if (b[!k].n > 0) {
			s->done += b[!k].n;
			retire(s, &b[!k]);
		}
		k = !k;
	}
	return NULL;
}

static void
setup(struct stream *s, const char *top, int nr, unsigned batch,
    double secs)
{
	char	 dir[4096], name[32];
	uint32_t i;
	int	 fd;

	memset(s, 0, sizeof(*s));
	s->batch = batch;
	s->secs = secs;
	snprintf(dir, sizeof(dir), "%s/s%d", top, nr);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		die(dir);
	if ((s->root = open(dir, O_DIRECTORY | O_CLOEXEC)) == -1)
		die(dir);
	mkdirat(s->root, "tmp", 0700);
	mkdirat(s->root, "queue", 0700);
	mkdirat(s->root, "captured", 0700);
	if ((s->tmp = openat(s->root, "tmp", O_DIRECTORY)) == -1 ||
	    (s->queue = openat(s->root, "queue", O_DIRECTORY)) == -1 ||
	    (s->cap = openat(s->root, "captured", O_DIRECTORY)) == -1)
		die("directories");
	for (i = 0; i < BATCH_MAX * 2; i++) {
		snprintf(name, sizeof(name), "r.%x", s->next);
		if ((fd = openat(s->tmp, name, O_CREAT | O_WRONLY | O_TRUNC |
		    O_CLOEXEC, 0600)) == -1 || write_all(fd, SPOOL_LEN) == -1)
			die("pool");
		close(fd);
		s->pool[s->npool++] = s->next++;
	}
	if (syncfs(s->root) == -1)
		die("syncfs");
}

/* Busy and total jiffies of the machine. */
static void
cpu_jiffies(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long	 v[10] = { 0 };
	FILE			*f;
	int			 i;

	*busy = *total = 0;
	if ((f = fopen("/proc/stat", "r")) == NULL)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4];	/* idle, iowait */
	}
	fclose(f);
}

/* Sectors written on whole disks (vdX, sdX, nvmeXnY). */
static unsigned long long
sectors_written(void)
{
	char			 line[512], dev[64];
	unsigned long long	 w, sum = 0;
	unsigned		 maj, mnr;
	FILE			*f;

	if ((f = fopen("/proc/diskstats", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%u %u %63s %*u %*u %*u %*u %*u %*u %llu",
		    &maj, &mnr, dev, &w) != 4)
			continue;
		if ((strncmp(dev, "vd", 2) == 0 || strncmp(dev, "sd", 2) == 0) &&
		    strlen(dev) == 3)
			sum += w;
		else if (strncmp(dev, "nvme", 4) == 0 && strchr(dev, 'p') ==
		    NULL)
			sum += w;
	}
	fclose(f);
	return sum;
}

static void
bench(const char *top, int nstreams, unsigned batch, double secs, int *nr)
{
	struct stream		 s[2];
	unsigned long long	 b0, t0, b1, t1, w0, w1;
	unsigned long		 done = 0;
	double			 start, el, cpu;
	long			 hz = sysconf(_SC_CLK_TCK);
	int			 i;

	for (i = 0; i < nstreams; i++)
		setup(&s[i], top, (*nr)++, batch, secs);
	cpu = cpu_now();
	cpu_jiffies(&b0, &t0);
	w0 = sectors_written();
	start = now();
	for (i = 0; i < nstreams; i++)
		if (pthread_create(&s[i].t, NULL, run, &s[i]) != 0)
			die("pthread_create");
	for (i = 0; i < nstreams; i++) {
		pthread_join(s[i].t, NULL);
		done += s[i].done;
	}
	el = now() - start;
	/* The last step's writes are on the disk (syncfs) before this. */
	w1 = sectors_written();
	cpu_jiffies(&b1, &t1);
	cpu = cpu_now() - cpu;
	if (done == 0) {
		printf("%d thread(s), batches of %u: nothing done\n", nstreams,
		    batch);
		return;
	}
	printf("%d thread(s), batches of %2u: %6.0f msg/s; per message: "
	    "%5.1f us CPU in this process, %5.1f us busy CPU on the machine, "
	    "%4.1f KiB written\n", nstreams, batch, done / el,
	    cpu / done * 1e6, (double)(b1 - b0) / hz / done * 1e6,
	    (double)(w1 - w0) * 512 / 1024 / done);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	char	 tmpl[] = "/var/tmp/capture-fs.XXXXXX";
	const char *top = argc > 1 && argv[1][0] != '\0' ? argv[1] : NULL;
	double	 secs = argc > 2 ? atof(argv[2]) : 8;
	int	 nr = 0;

	if (secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: capture_fs [DIR] [SECONDS 1..600]\n");
		return 2;
	}
	if (top == NULL && (top = mkdtemp(tmpl)) == NULL)
		die("mkdtemp");
	memset(bytes, 'x', sizeof(bytes));
	printf("capture_fs: %s, %.0f s per case, %ld CPUs\n", top, secs,
	    sysconf(_SC_NPROCESSORS_ONLN));
	bench(top, 1, 6, secs, &nr);
	bench(top, 1, 12, secs, &nr);
	bench(top, 2, 6, secs, &nr);
	return 0;
}

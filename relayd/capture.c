/*
 * capture: the delivery mode that writes each message to capture_dir as
 * ID.eml (the body, byte for byte) and ID.json (the recipients with their
 * envelope senders), see INTERFACE.md "Capture delivery".
 *
 * Files are written unnamed (O_TMPFILE; where the file system cannot, as
 * ID.eml.tmp and ID.json.tmp), made durable, then linked in (renamed):
 * ID.eml first and ID.json last, so a reader that sees ID.json always
 * finds a complete ID.eml; then the directory is fsynced.  The
 * steps are separate functions so the queue can share one flush and one
 * directory fsync across a batch.  Runs on worker threads; no globals.
 * Capturing a message again (after a crash between capture and spool
 * removal) replaces both files with the same bytes.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "capture.h"

#define CAPTURE_JSON_MAX	(64 * 1024 * 1024)

/* A JSON string (RFC 8259 section 7): control bytes as \u00XX; other bytes,
 * UTF-8 included, as they are. */
static int
capture_json_str(struct buf *b, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, start = 0;

	if (buf_append(b, "\"", 1) == -1)
		return -1;
	for (i = 0; p[i] != '\0'; i++) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' &&
		    p[i] != 0x7f)
			continue;
		if (buf_append(b, s + start, i - start) == -1)
			return -1;
		if (p[i] == '"' || p[i] == '\\') {
			if (buf_appendf(b, "\\%c", p[i]) == -1)
				return -1;
		} else if (buf_appendf(b, "\\u%04x", p[i]) == -1)
			return -1;
		start = i + 1;
	}
	if (buf_append(b, s + start, i - start) == -1 ||
	    buf_append(b, "\"", 1) == -1)
		return -1;
	return 0;
}

int
capture_json(const struct envelope *env, const char *const *senders,
    struct buf *out)
{
	size_t	 i;

	if (buf_append_str(out, "{\"id\": ") == -1 ||
	    capture_json_str(out, env->id) == -1 ||
	    buf_append_str(out, ", \"recipients\": [") == -1)
		return -1;
	for (i = 0; i < env->nrcpts; i++) {
		const char *from = senders != NULL && senders[i] != NULL ?
		    senders[i] : env->mail_from;

		if ((i > 0 && buf_append_str(out, ", ") == -1) ||
		    buf_append_str(out, "{\"rcpt\": ") == -1 ||
		    capture_json_str(out, env->rcpts[i]) == -1 ||
		    buf_append_str(out, ", \"mail_from\": ") == -1 ||
		    capture_json_str(out, from != NULL ? from : "") == -1 ||
		    buf_append_str(out, "}") == -1)
			return -1;
	}
	return buf_append_str(out, "]}");
}

int
capture_open_dir(const char *dir)
{
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int
capture_name(char *out, size_t outlen, const char *id, const char *suffix)
{
	int	 n;

	n = snprintf(out, outlen, "%s%s", id, suffix);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* write() all of p, across partial writes. */
static int
capture_write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 r;

	while (n > 0) {
		r = write(fd, c, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Write one staged file: an unnamed file in dirfd (O_TMPFILE), whose
 * descriptor is returned in *fdp, or where the file system cannot do that
 * (or descriptors run short), the named file ID.SUFFIX.tmp, and *fdp is
 * -1.  fdatasync it when asked.  0 or -1 with errno set.
 */
static int
capture_file(int dirfd, const char *id, const char *suffix, const void *p,
    size_t n, int sync_each, int *fdp)
{
	char	 name[ENVELOPE_ID_MAX + 16];
	int	 fd, named = 0, e;

	*fdp = -1;
	fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (capture_name(name, sizeof(name), id, suffix) == -1)
			return -1;
		named = 1;
		fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_WRONLY |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd == -1)
			return -1;
	}
	if (capture_write_all(fd, p, n) == -1 ||
	    (sync_each && fdatasync(fd) == -1))
		goto fail;
	if (!named) {
		*fdp = fd;
		return 0;
	}
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	if (named)
		unlinkat(dirfd, name, 0);
	errno = e;
	return -1;
}

void
capture_unstage(int dirfd, const char *id, struct capture_staged *st)
{
	char	 name[ENVELOPE_ID_MAX + 16];

	if (st->eml != -1)
		close(st->eml);
	else if (capture_name(name, sizeof(name), id, ".eml.tmp") == 0)
		unlinkat(dirfd, name, 0);
	if (st->json != -1)
		close(st->json);
	else if (capture_name(name, sizeof(name), id, ".json.tmp") == 0)
		unlinkat(dirfd, name, 0);
	st->eml = st->json = -1;
}

int
capture_stage(int dirfd, const struct envelope *env,
    const char *const *senders, const char *body, size_t bodylen,
    int sync_each, struct capture_staged *st)
{
	struct buf	 json;
	int		 e;

	st->eml = st->json = -1;
	buf_init(&json, CAPTURE_JSON_MAX);
	if (capture_json(env, senders, &json) == -1) {
		buf_clear(&json);
		errno = ENOMEM;
		return -1;
	}
	if (capture_file(dirfd, env->id, ".eml.tmp", body, bodylen,
	    sync_each, &st->eml) == -1 ||
	    capture_file(dirfd, env->id, ".json.tmp", json.data, json.len,
	    sync_each, &st->json) == -1) {
		e = errno;
		capture_unstage(dirfd, env->id, st);
		buf_clear(&json);
		errno = e;
		return -1;
	}
	buf_clear(&json);
	return 0;
}

/*
 * Link the unnamed file fd in as dirfd/name.  linkat(AT_EMPTY_PATH) is
 * the cheap way, allowed to the file's opener since Linux 6.10 (before,
 * only with CAP_DAC_READ_SEARCH: ENOENT otherwise); the path through
 * /proc/self/fd needs no privilege but costs a path walk.  Which one
 * works is learnt once.
 */
static int	capture_empty_path = 1;	/* atomic */

static int
capture_link(int fd, int dirfd, const char *name)
{
	char	 proc[64];

	if (__atomic_load_n(&capture_empty_path, __ATOMIC_RELAXED)) {
		if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != ENOENT && errno != EPERM && errno != EINVAL)
			return -1;
		__atomic_store_n(&capture_empty_path, 0, __ATOMIC_RELAXED);
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

/*
 * Give a staged file its name: link the unnamed file in, or rename the
 * named one.  A name already there (the message captured again after a
 * crash) is replaced, through a link to ID.SUFFIX.tmp and a rename.
 */
static int
capture_name_file(int dirfd, const char *id, const char *suffix,
    const char *tmpsuffix, int *fdp)
{
	char	 tmp[ENVELOPE_ID_MAX + 16], to[ENVELOPE_ID_MAX + 16];
	int	 rc;

	if (capture_name(tmp, sizeof(tmp), id, tmpsuffix) == -1 ||
	    capture_name(to, sizeof(to), id, suffix) == -1)
		return -1;
	if (*fdp == -1)
		return renameat(dirfd, tmp, dirfd, to);
	rc = capture_link(*fdp, dirfd, to);
	if (rc == -1 && errno == EEXIST) {
		unlinkat(dirfd, tmp, 0);
		rc = capture_link(*fdp, dirfd, tmp);
		if (rc == 0 && (rc = renameat(dirfd, tmp, dirfd, to)) == -1)
			unlinkat(dirfd, tmp, 0);
	}
	if (rc == 0) {
		close(*fdp);
		*fdp = -1;
	}
	return rc;
}

int
capture_publish(int dirfd, const char *id, struct capture_staged *st)
{
	/* ID.eml first: whoever sees ID.json finds a whole ID.eml. */
	if (capture_name_file(dirfd, id, ".eml", ".eml.tmp", &st->eml) == -1)
		return -1;
	return capture_name_file(dirfd, id, ".json", ".json.tmp", &st->json);
}

int
capture_write_senders(const char *dir, const struct envelope *env,
    const char *const *senders, const char *body, size_t bodylen)
{
	struct capture_staged	 st;
	int			 fd, e;

	if ((fd = capture_open_dir(dir)) == -1)
		return -1;
	if (capture_stage(fd, env, senders, body, bodylen, 1, &st) == -1)
		goto fail;
	if (capture_publish(fd, env->id, &st) == -1) {
		e = errno;
		capture_unstage(fd, env->id, &st);
		errno = e;
		goto fail;
	}
	if (fsync(fd) == -1)
		goto fail;
	close(fd);
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
capture_write(const char *dir, const struct envelope *env, const char *body,
    size_t bodylen)
{
	return capture_write_senders(dir, env, NULL, body, bodylen);
}

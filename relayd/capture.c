/*
 * capture: the delivery mode that writes each message to capture_dir as
 * ID.eml (the body, byte for byte) and ID.json (the recipients with their
 * envelope senders), see INTERFACE.md "Capture delivery".
 *
 * Files are written as ID.eml.tmp and ID.json.tmp, made durable, then
 * renamed: ID.eml first and ID.json last, so a reader that sees ID.json
 * always finds a complete ID.eml; then the directory is fsynced.  The
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

/* Write one file under dirfd, whole; fdatasync it when asked. */
static int
capture_file(int dirfd, const char *name, const void *p, size_t n,
    int sync_each)
{
	const char	*c = p;
	ssize_t		 r;
	int		 fd, e;

	fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	while (n > 0) {
		r = write(fd, c, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		c += r;
		n -= (size_t)r;
	}
	if (sync_each && fdatasync(fd) == -1)
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
	unlinkat(dirfd, name, 0);
	errno = e;
	return -1;
}

void
capture_unstage(int dirfd, const char *id)
{
	char	 name[ENVELOPE_ID_MAX + 16];

	if (capture_name(name, sizeof(name), id, ".eml.tmp") == 0)
		unlinkat(dirfd, name, 0);
	if (capture_name(name, sizeof(name), id, ".json.tmp") == 0)
		unlinkat(dirfd, name, 0);
}

int
capture_stage(int dirfd, const struct envelope *env,
    const char *const *senders, const char *body, size_t bodylen,
    int sync_each)
{
	char		 name[ENVELOPE_ID_MAX + 16];
	struct buf	 json;
	int		 e;

	buf_init(&json, CAPTURE_JSON_MAX);
	if (capture_json(env, senders, &json) == -1) {
		buf_clear(&json);
		errno = ENOMEM;
		return -1;
	}
	if (capture_name(name, sizeof(name), env->id, ".eml.tmp") == -1 ||
	    capture_file(dirfd, name, body, bodylen, sync_each) == -1 ||
	    capture_name(name, sizeof(name), env->id, ".json.tmp") == -1 ||
	    capture_file(dirfd, name, json.data, json.len, sync_each) == -1) {
		e = errno;
		capture_unstage(dirfd, env->id);
		buf_clear(&json);
		errno = e;
		return -1;
	}
	buf_clear(&json);
	return 0;
}

int
capture_publish(int dirfd, const char *id)
{
	char	 from[ENVELOPE_ID_MAX + 16], to[ENVELOPE_ID_MAX + 16];

	/* ID.eml first: whoever sees ID.json finds a whole ID.eml. */
	if (capture_name(from, sizeof(from), id, ".eml.tmp") == -1 ||
	    capture_name(to, sizeof(to), id, ".eml") == -1 ||
	    renameat(dirfd, from, dirfd, to) == -1)
		return -1;
	if (capture_name(from, sizeof(from), id, ".json.tmp") == -1 ||
	    capture_name(to, sizeof(to), id, ".json") == -1 ||
	    renameat(dirfd, from, dirfd, to) == -1)
		return -1;
	return 0;
}

int
capture_write_senders(const char *dir, const struct envelope *env,
    const char *const *senders, const char *body, size_t bodylen)
{
	int	 fd, e;

	if ((fd = capture_open_dir(dir)) == -1)
		return -1;
	if (capture_stage(fd, env, senders, body, bodylen, 1) == -1)
		goto fail;
	if (capture_publish(fd, env->id) == -1) {
		e = errno;
		capture_unstage(fd, env->id);
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

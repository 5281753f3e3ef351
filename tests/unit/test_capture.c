/*
 * test_capture: capture files (relayd/capture.h) in a temporary
 * directory.  Written whole and named only when published; staged files
 * are invisible and leave nothing behind when dropped; a message captured
 * again (after a crash between capture and spool removal) replaces both
 * files; no .tmp file is ever left.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "tap.h"

static char	dir[] = "/tmp/relayd-test-capture.XXXXXX";

static void
env_fill(struct envelope *e, const char *id)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->time = 1795000000;
	e->user = strdup("alice");
	e->client = strdup("127.0.0.1");
	e->helo = strdup("client.test");
	e->mail_from = strdup("alice@own-domain.com");
	envelope_add_rcpt(e, "one@rcpt-domain.org");
	envelope_add_rcpt(e, "t\"wo@rcpt-domain.org");
}

/* The directory's names, sorted and joined with spaces. */
static void
listing(char *out, size_t outlen)
{
	struct dirent	**de;
	int		  n, i;

	out[0] = '\0';
	if ((n = scandir(dir, &de, NULL, alphasort)) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (strcmp(de[i]->d_name, ".") != 0 &&
		    strcmp(de[i]->d_name, "..") != 0) {
			if (out[0] != '\0')
				strncat(out, " ", outlen - strlen(out) - 1);
			strncat(out, de[i]->d_name, outlen - strlen(out) - 1);
		}
		free(de[i]);
	}
	free(de);
}

/* Does dir/name hold exactly want? */
static int
holds(const char *name, const char *want)
{
	char	 path[512], got[4096];
	ssize_t	 n;
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;
	n = read(fd, got, sizeof(got));
	close(fd);
	return n == (ssize_t)strlen(want) && memcmp(got, want, (size_t)n) == 0;
}

int
main(void)
{
	const char	*senders[] = { "b.x@bounces.own-domain.com", NULL };
	const char	*json1 = "{\"id\": \"0000000000000a01\", \"recipients\": "
	    "[{\"rcpt\": \"one@rcpt-domain.org\", \"mail_from\": "
	    "\"b.x@bounces.own-domain.com\"}, {\"rcpt\": "
	    "\"t\\\"wo@rcpt-domain.org\", \"mail_from\": "
	    "\"alice@own-domain.com\"}]}";
	const char	*body1 = "Subject: one\r\n\r\nfirst body\r\n";
	const char	*body2 = "Subject: two\r\n\r\nsecond, longer body\r\n";
	struct envelope	 env;
	struct capture_staged st;
	char		 ls[1024];
	int		 fd;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	env_fill(&env, "0000000000000a01");

	/* Written whole, both names, nothing else. */
	ok(capture_write_senders(dir, &env, senders, body1,
	    strlen(body1)) == 0, "capture_write_senders");
	listing(ls, sizeof(ls));
	ok(strcmp(ls, "0000000000000a01.eml 0000000000000a01.json") == 0,
	    "only ID.eml and ID.json: %s", ls);
	ok(holds("0000000000000a01.eml", body1), "ID.eml is the body");
	ok(holds("0000000000000a01.json", json1), "ID.json: %s", json1);

	/* Captured again: both replaced, no .tmp left. */
	ok(capture_write(dir, &env, body2, strlen(body2)) == 0,
	    "capture the same ID again");
	listing(ls, sizeof(ls));
	ok(strcmp(ls, "0000000000000a01.eml 0000000000000a01.json") == 0,
	    "still only ID.eml and ID.json: %s", ls);
	ok(holds("0000000000000a01.eml", body2), "ID.eml replaced");
	ok(!holds("0000000000000a01.json", json1), "ID.json replaced");

	/* Staged: nothing visible under the final names; dropped: nothing
	 * left at all. */
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	ok(fd != -1, "open the directory");
	envelope_clear(&env);
	env_fill(&env, "0000000000000b02");
	ok(capture_stage(fd, &env, NULL, body1, strlen(body1), 0, &st) == 0,
	    "stage");
	listing(ls, sizeof(ls));
	ok(strstr(ls, "0000000000000b02.eml ") == NULL &&
	    strstr(ls, "0000000000000b02.json") == NULL,
	    "a staged message has no final name: %s", ls);
	capture_unstage(fd, env.id, &st);
	ok(st.eml == -1 && st.json == -1, "unstage drops the descriptors");
	listing(ls, sizeof(ls));
	ok(strcmp(ls, "0000000000000a01.eml 0000000000000a01.json") == 0,
	    "nothing left of the dropped message: %s", ls);

	/* Staged and published: both names, then the fsync the caller owes. */
	ok(capture_stage(fd, &env, NULL, body2, strlen(body2), 0, &st) == 0,
	    "stage again");
	ok(capture_publish(fd, env.id, &st) == 0, "publish");
	ok(st.eml == -1 && st.json == -1, "publish closes the descriptors");
	ok(fsync(fd) == 0, "fsync the directory");
	listing(ls, sizeof(ls));
	ok(strcmp(ls, "0000000000000a01.eml 0000000000000a01.json "
	    "0000000000000b02.eml 0000000000000b02.json") == 0,
	    "both messages, nothing else: %s", ls);
	ok(holds("0000000000000b02.eml", body2), "the published body");
	close(fd);
	envelope_clear(&env);

	/* Clean up. */
	{
		const char *names[] = { "0000000000000a01.eml",
		    "0000000000000a01.json", "0000000000000b02.eml",
		    "0000000000000b02.json" };
		char	 path[512];
		size_t	 i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			unlink(path);
		}
		ok(rmdir(dir) == 0, "the directory was left empty");
	}
	return tap_done();
}

/*
 * test_buf: the growable buffer and its hard maximum.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "tap.h"

static void
appends(void)
{
	struct buf	 b;
	char		 big[1000];
	int		 i;

	buf_init(&b, 10);
	ok(b.data == NULL && b.len == 0 && b.max == 10, "init");
	ok(buf_append(&b, "", 0) == 0 && b.len == 0 && b.data != NULL &&
	    b.data[0] == '\0', "empty append gives a NUL-terminated buffer");
	ok(buf_append(&b, "hello", 5) == 0 && b.len == 5 &&
	    strcmp(b.data, "hello") == 0, "append");
	ok(buf_append(&b, "world", 5) == 0 && b.len == 10 &&
	    strcmp(b.data, "helloworld") == 0, "append up to max exactly");
	ok(buf_append(&b, "!", 1) == -1 && b.len == 10 &&
	    strcmp(b.data, "helloworld") == 0, "append past max fails, intact");
	ok(buf_append_str(&b, "") == 0 && b.len == 10, "empty append at max");
	buf_reset(&b);
	ok(b.len == 0 && b.data[0] == '\0' && b.cap > 0, "reset keeps memory");
	ok(buf_appendf(&b, "%d-%s", 42, "x") == 0 &&
	    strcmp(b.data, "42-x") == 0, "appendf");
	ok(buf_appendf(&b, "%s", "1234567") == -1 &&
	    strcmp(b.data, "42-x") == 0 && b.len == 4,
	    "appendf past max fails, intact");
	ok(buf_appendf(&b, "%s", "123456") == 0 && b.len == 10,
	    "appendf to max exactly");
	buf_clear(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "clear");
	buf_clear(&b);
	ok(b.data == NULL, "clear twice is harmless");

	/* Large formatted appends take the second vsnprintf path. */
	buf_init(&b, 100000);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 50; i++)
		if (buf_appendf(&b, "%s", big) == -1)
			break;
	ok(i == 50 && b.len == 50 * 999 && b.data[b.len] == '\0' &&
	    b.data[b.len - 1] == 'z', "50 appendf of 999 bytes");
	ok(strspn(b.data, "z") == b.len, "content intact after growth");
	buf_clear(&b);

	/* Overflowing sizes never wrap. */
	buf_init(&b, SIZE_MAX);
	ok(buf_append(&b, "ab", 2) == 0, "append with SIZE_MAX max");
	ok(buf_reserve(&b, SIZE_MAX) == -1 && b.len == 2, "reserve SIZE_MAX");
	ok(buf_reserve(&b, SIZE_MAX - 1) == -1 && b.len == 2,
	    "reserve SIZE_MAX - 1");
	ok(strcmp(b.data, "ab") == 0, "still intact");
	buf_clear(&b);

	/* max 0: only empty appends. */
	buf_init(&b, 0);
	ok(buf_append(&b, "a", 1) == -1 && b.len == 0, "max 0 refuses a byte");
	ok(buf_append(&b, "", 0) == 0 && b.data != NULL && b.data[0] == '\0',
	    "max 0 allows empty");
	buf_clear(&b);
}

static void
moves(void)
{
	struct buf	 a, b;

	buf_init(&a, 100);
	buf_init(&b, 100);
	buf_append_str(&a, "source");
	buf_append_str(&b, "old");
	buf_move(&b, &a);
	ok(strcmp(b.data, "source") == 0 && b.len == 6, "move: dst has data");
	ok(a.data == NULL && a.len == 0 && a.cap == 0, "move: src empty");
	ok(buf_append_str(&a, "again") == 0 && strcmp(a.data, "again") == 0,
	    "src usable after move");
	buf_clear(&a);
	buf_clear(&b);
}

static void
growth(void)
{
	struct buf	 b;
	size_t		 i;
	int		 good = 1;

	/* Byte by byte up to a max that is not a power of two. */
	buf_init(&b, 3000);
	for (i = 0; i < 3000 && good; i++)
		good = buf_append(&b, "x", 1) == 0;
	ok(good && b.len == 3000 && b.cap >= 3001, "3000 single appends");
	ok(buf_append(&b, "x", 1) == -1 && b.len == 3000, "3001st refused");
	ok(b.cap <= 4096, "capacity bounded near max (%zu)", b.cap);
	buf_clear(&b);
}

int
main(void)
{
	appends();
	moves();
	growth();
	return tap_done();
}

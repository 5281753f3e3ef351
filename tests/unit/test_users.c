/*
 * test_users: users_load() and users_find() on files written to a
 * temporary directory, and the crypt_util helpers they rely on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypt_util.h"
#include "tap.h"
#include "users.h"

static char dir[] = "/tmp/test_users.XXXXXX";
static char path[64];

/* Real hashes of "pw" of each supported kind. */
#define Y	"$y$j9T$0s8o1Fb3EXHpx9TKogP0m.$bF7igeRBd0/esYPJGvhpKUvHirUwemZkZRZWvDd.VF1"
#define B	"$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q"
#define S	"$6$rounds=5000$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/"

struct tcase {
	const char	*name;
	const char	*text;
	int		 good;
	const char	*msg;		/* expected in the errors */
};

static const struct tcase cases[] = {
	{ "one yescrypt user", "alice:" Y ":example.com\n", 1, NULL },
	{ "bcrypt", "app:" B ":billing@example.com\n", 1, NULL },
	{ "sha512", "ops:" S ":*.example.com\n", 1, NULL },
	{ "comments and blanks", "# users\n\n   # indented\nalice:" Y
	    ":example.com\n\n", 1, NULL },
	{ "empty file", "", 1, NULL },
	{ "no final newline", "alice:" Y ":example.com", 1, NULL },
	{ "name characters", "a.b_c-d+e@f:" Y ":example.com\n", 1, NULL },
	{ "several grants", "alice:" Y ":example.com,alice@example.org,"
	    "*.example.net\n", 1, NULL },
	{ "plain text password", "alice:secret:example.com\n", 0,
	    ":1: alice: password hash missing, plain text or of an "
	    "unsupported kind" },
	{ "md5 hash", "alice:$1$saltsalt$abcdefghijklmnopqrstuv:example.com\n",
	    0, ":1: alice: password hash" },
	{ "sha256 hash", "alice:$5$saltsalt$abcdefghijklmnopqrstuvwxyz0123456"
	    "789ABCDEFG:example.com\n", 0, ":1: alice: password hash" },
	{ "DES hash", "alice:abJnggxhB/yWI:example.com\n", 0,
	    ":1: alice: password hash" },
	{ "truncated yescrypt", "alice:$y$j9T$0s8o1Fb3EXHpx9TKogP0m.$Q.VOC"
	    ":example.com\n", 0, "password hash" },
	{ "bcrypt bad cost", "app:$2b$99$abcdefghijklmnopqrstuu5s2v8.iXieOjg"
	    "/.AySBTTZIIVFJeBui:example.com\n", 0, "password hash" },
	{ "empty hash", "alice::example.com\n", 0, "password hash" },
	{ "bad name character", "al ice:" Y ":example.com\n", 0,
	    ":1: user name: bad character at offset 2" },
	{ "empty name", ":" Y ":example.com\n", 0,
	    ":1: user name must be 1..64 octets" },
	{ "name of 65 octets", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaa:" Y ":example.com\n", 0,
	    "user name must be 1..64 octets" },
	{ "empty grants", "alice:" Y ":\n", 0, ":1: alice: no grants" },
	{ "empty grant in list", "alice:" Y ":example.com,,example.org\n", 0,
	    ":1: alice: grant 2: empty grant" },
	{ "grant bad domain", "alice:" Y ":exa_mple.com\n", 0,
	    ":1: alice: grant 1: bad domain" },
	{ "grant single label", "alice:" Y ":localhost\n", 0, "bad domain" },
	{ "grant bad wildcard", "alice:" Y ":*example.com\n", 0,
	    "bad domain" },
	{ "grant bad local part", "alice:" Y ":a..b@example.com\n", 0,
	    ":1: alice: grant 1: bad local part" },
	{ "grant empty local part", "alice:" Y ":@example.com\n", 0,
	    "bad local part" },
	{ "grant local part with space", "alice:" Y ":a b@example.com\n", 0,
	    "bad local part" },
	{ "grant bad domain after @", "alice:" Y ":a@-x.com\n", 0,
	    "bad domain" },
	{ "missing field", "alice:" Y "\n", 0,
	    ":1: expected NAME:HASH:GRANTS" },
	{ "extra field", "alice:" Y ":example.com:x\n", 0, "too many ':'" },
	{ "CR line end", "alice:" Y ":example.com\r\n", 0, ":1: CR in line" },
	{ "duplicate", "alice:" Y ":example.com\nbob:" Y ":b.com\nalice:" S
	    ":example.com\n", 0, ":3: alice: duplicate user (first on line 1)" },
	{ "errors on several lines", "x:y:z\n\nalice:" Y ":\n", 0,
	    ":3: alice: no grants" },
};

static int
write_file(const char *text, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fwrite(text, 1, len, f);
	return fclose(f);
}

static void
oneline(char *s)
{
	size_t	 len = strlen(s);

	while (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	for (; *s != '\0'; s++)
		if (*s == '\n')
			*s = '|';
}

static int
load(const char *text, size_t len, struct users **us, char **msg)
{
	size_t	 msglen;
	FILE	*err;
	int	 n;

	*us = NULL;
	write_file(text, len);
	err = open_memstream(msg, &msglen);
	n = users_load(path, err, us);
	fclose(err);
	oneline(*msg);
	return n;
}

static void
table(void)
{
	struct users	*us;
	char		*msg;
	size_t		 i;
	int		 n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];

		n = load(t->text, strlen(t->text), &us, &msg);
		if (t->good)
			ok(n == 0 && us != NULL && msg[0] == '\0',
			    "%s: loads (n=%d: %s)", t->name, n, msg);
		else
			ok(n > 0 && us == NULL && strstr(msg, t->msg) != NULL,
			    "%s: refused with \"%s\" (n=%d: %s)", t->name,
			    t->msg, n, msg);
		users_free(us);
		free(msg);
	}
}

static void
lookups(void)
{
	static const char text[] =
	    "zed:" Y ":Z.Example.COM.\n"
	    "alice:" Y ":Example.com,Alice.Smith@Example.ORG,*.Sub.Example.NET\n"
	    "bob:" B ":b.com\n"
	    "Alice:" S ":x.org\n";
	const struct user	*u;
	struct users		*us;
	char			*msg, *big;
	int			 n;

	n = load(text, sizeof(text) - 1, &us, &msg);
	ok(n == 0 && us != NULL && us->n == 4, "lookups: four users (%s)",
	    msg);
	free(msg);
	if (us == NULL)
		return;
	ok(strcmp(us->v[0].name, "Alice") == 0 &&
	    strcmp(us->v[1].name, "alice") == 0 &&
	    strcmp(us->v[2].name, "bob") == 0 &&
	    strcmp(us->v[3].name, "zed") == 0, "sorted by name");
	u = users_find(us, "alice");
	ok(u != NULL && strcmp(u->hash, Y) == 0 && u->ngrants == 3 &&
	    strcmp(u->grants[0], "example.com") == 0 &&
	    strcmp(u->grants[1], "Alice.Smith@example.org") == 0 &&
	    strcmp(u->grants[2], "*.sub.example.net") == 0,
	    "grants: domains folded, local part kept");
	u = users_find(us, "zed");
	ok(u != NULL && u->ngrants == 1 &&
	    strcmp(u->grants[0], "z.example.com") == 0,
	    "trailing dot removed");
	ok(users_find(us, "Alice") != NULL &&
	    users_find(us, "Alice") != users_find(us, "alice"),
	    "lookup is case-sensitive");
	ok(users_find(us, "carol") == NULL && users_find(us, "") == NULL &&
	    users_find(NULL, "alice") == NULL, "absent names");
	users_free(us);
	users_free(NULL);
	ok(1, "users_free(NULL)");

	/* A line over USERS_LINE_MAX, then a good one: still refused. */
	big = malloc(USERS_LINE_MAX + 200);
	memset(big, 'a', USERS_LINE_MAX + 100);
	memcpy(big + USERS_LINE_MAX + 100, "\nbob:" B ":b.com\n",
	    sizeof("\nbob:" B ":b.com\n"));
	n = load(big, strlen(big), &us, &msg);
	ok(n == 1 && us == NULL &&
	    strstr(msg, ":1: line longer than 4096 octets") != NULL,
	    "over-long line refused (%s)", msg);
	free(msg);
	free(big);

	n = load("alice:" Y ":exa\0mple.com\n", 6 + sizeof(Y) + 13, &us, &msg);
	ok(n == 1 && strstr(msg, ":1: NUL byte in line") != NULL,
	    "NUL refused (%s)", msg);
	free(msg);

	n = load("", 0, &us, &msg);
	ok(n == 0 && us != NULL && us->n == 0, "empty file: no users");
	users_free(us);
	free(msg);
	unlink(path);
	n = users_load(path, NULL, &us);
	ok(n == 1, "missing file is one problem");
}

static void
crypt_checks(void)
{
	char	 h[256];

	ok(crypt_hash_supported(Y) && crypt_hash_supported(B) &&
	    crypt_hash_supported(S), "supported kinds");
	ok(!crypt_hash_supported("pw") && !crypt_hash_supported("") &&
	    !crypt_hash_supported("$1$abc$def") &&
	    !crypt_hash_supported(NULL), "unsupported kinds");
	ok(crypt_hash_supported(crypt_dummy_hash()) &&
	    strncmp(crypt_dummy_hash(), "$y$j9T$", 7) == 0,
	    "dummy hash is yescrypt at default cost");
	ok(crypt_hash_new("correct horse", h, sizeof(h)) == 0 &&
	    strncmp(h, "$y$", 3) == 0, "new hash: %s", h);
	ok(crypt_check("correct horse", h) == 1, "right password matches");
	ok(crypt_check("correct horsE", h) == 0, "wrong password fails");
	ok(crypt_check("pw", S) == 1 && crypt_check("pw", B) == 1 &&
	    crypt_check("pw", Y) == 1, "sha512, bcrypt, yescrypt of pw match");
	ok(crypt_check("pw", crypt_dummy_hash()) == 0,
	    "dummy hash does not match pw");
	ok(crypt_check("pw", "garbage") == 0 && crypt_check(NULL, S) == 0,
	    "bad hash fails");
	ok(crypt_hash_new("x", h, 10) == -1, "short output buffer refused");
}

/* etc/users.example loads. */
static void
example(void)
{
	struct users	*us = NULL;
	const char	*p = "etc/users.example";
	int		 n;

	if (access(p, R_OK) == -1)
		p = "../etc/users.example";
	n = users_load(p, stdout, &us);
	ok(n == 0 && us != NULL && us->n == 3 &&
	    users_find(us, "billing-app") != NULL, "users.example loads");
	users_free(us);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/users", dir);
	table();
	lookups();
	example();
	crypt_checks();
	unlink(path);
	rmdir(dir);
	return tap_done();
}

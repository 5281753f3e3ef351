/*
 * num: the one number parser.  Whole-string, unsigned decimal, with
 * overflow and range checks; sizes and durations take one suffix letter.
 * No state, no allocation.  *out is written only on success.
 */
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include "num.h"

/* Parse the decimal digits in s[0..n) (n >= 1, digits only). */
int
num_digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t	 v = 0;
	size_t		 i;
	unsigned	 d;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static size_t
num_len(const char *s)
{
	size_t	 n = 0;

	while (s[n] != '\0')
		n++;
	return n;
}

int
num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t	 v;

	if (s == NULL || num_digits(s, num_len(s), &v) == -1)
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A number with an optional one-letter suffix from the table. */
static int
num_parse_suffixed(const char *s, const char *letters,
    const uint64_t *mults, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t	 v, mult = 1;
	size_t		 n, i;
	char		 c;

	if (s == NULL)
		return -1;
	n = num_len(s);
	if (n == 0)
		return -1;
	c = s[n - 1];
	if (c < '0' || c > '9') {
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		for (i = 0; letters[i] != '\0'; i++)
			if (letters[i] == c)
				break;
		if (letters[i] == '\0')
			return -1;
		mult = mults[i];
		n--;
	}
	if (num_digits(s, n, &v) == -1)
		return -1;
	if (v != 0 && v > UINT64_MAX / mult)
		return -1;
	v *= mult;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
num_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const uint64_t	 m[] = { 1024ULL, 1024ULL * 1024,
	    1024ULL * 1024 * 1024 };

	return num_parse_suffixed(s, "kmg", m, min, max, out);
}

int
num_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const uint64_t	 m[] = { 1, 60, 3600, 86400 };

	return num_parse_suffixed(s, "smhd", m, min, max, out);
}

int
num_parse_bool(const char *s, int *out)
{
	static const struct {
		const char	*name;
		int		 val;
	} t[] = {
		{ "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
		{ "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 },
	};
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcasecmp(s, t[i].name) == 0) {
			*out = t[i].val;
			return 0;
		}
	}
	return -1;
}

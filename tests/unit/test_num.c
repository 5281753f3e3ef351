/*
 * test_num: whole-string number parsing with ranges and suffixes.
 */
#include <stdint.h>
#include <string.h>

#include "num.h"
#include "tap.h"

enum kind { U64, SIZE, DUR };

static const struct {
	enum kind	 kind;
	const char	*s;
	uint64_t	 min, max;
	int		 rc;
	uint64_t	 want;
} cases[] = {
	{ U64, "0", 0, 10, 0, 0 },
	{ U64, "10", 0, 10, 0, 10 },
	{ U64, "11", 0, 10, -1, 0 },
	{ U64, "4", 5, 10, -1, 0 },
	{ U64, "007", 0, 10, 0, 7 },
	{ U64, "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ U64, "18446744073709551616", 0, UINT64_MAX, -1, 0 },
	{ U64, "99999999999999999999", 0, UINT64_MAX, -1, 0 },
	{ U64, "", 0, 10, -1, 0 },
	{ U64, "-1", 0, UINT64_MAX, -1, 0 },
	{ U64, "+1", 0, UINT64_MAX, -1, 0 },
	{ U64, " 1", 0, UINT64_MAX, -1, 0 },
	{ U64, "1 ", 0, UINT64_MAX, -1, 0 },
	{ U64, "1x", 0, UINT64_MAX, -1, 0 },
	{ U64, "0x10", 0, UINT64_MAX, -1, 0 },
	{ U64, "1k", 0, UINT64_MAX, -1, 0 },
	{ U64, "1.5", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "25m", 0, UINT64_MAX, 0, 25ULL << 20 },
	{ SIZE, "25M", 0, UINT64_MAX, 0, 25ULL << 20 },
	{ SIZE, "1k", 0, UINT64_MAX, 0, 1024 },
	{ SIZE, "2G", 0, UINT64_MAX, 0, 2ULL << 30 },
	{ SIZE, "512", 0, UINT64_MAX, 0, 512 },
	{ SIZE, "0k", 0, UINT64_MAX, 0, 0 },
	{ SIZE, "k", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "1t", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "1kb", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "1 k", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "17179869183g", 0, UINT64_MAX, 0, 17179869183ULL << 30 },
	{ SIZE, "17179869184g", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "18014398509481984k", 0, UINT64_MAX, -1, 0 },
	{ SIZE, "2m", 0, 1 << 20, -1, 0 },
	{ SIZE, "1m", 0, 1 << 20, 0, 1 << 20 },
	{ DUR, "30", 0, UINT64_MAX, 0, 30 },
	{ DUR, "30s", 0, UINT64_MAX, 0, 30 },
	{ DUR, "5m", 0, UINT64_MAX, 0, 300 },
	{ DUR, "1h", 0, UINT64_MAX, 0, 3600 },
	{ DUR, "5d", 0, UINT64_MAX, 0, 432000 },
	{ DUR, "5D", 0, UINT64_MAX, 0, 432000 },
	{ DUR, "1w", 0, UINT64_MAX, -1, 0 },
	{ DUR, "1hm", 0, UINT64_MAX, -1, 0 },
	{ DUR, "", 0, UINT64_MAX, -1, 0 },
	{ DUR, "213503982334601d", 0, UINT64_MAX, 0,
	    213503982334601ULL * 86400 },
	{ DUR, "213503982334602d", 0, UINT64_MAX, -1, 0 },
	{ DUR, "0s", 1, 10, -1, 0 },
};

static void
numbers(void)
{
	uint64_t	 v;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		switch (cases[i].kind) {
		case U64:
			rc = num_parse_u64(cases[i].s, cases[i].min,
			    cases[i].max, &v);
			break;
		case SIZE:
			rc = num_parse_size(cases[i].s, cases[i].min,
			    cases[i].max, &v);
			break;
		default:
			rc = num_parse_duration(cases[i].s, cases[i].min,
			    cases[i].max, &v);
			break;
		}
		ok(rc == cases[i].rc && v == (rc == 0 ? cases[i].want : 12345),
		    "%d \"%s\": rc %d value %llu", cases[i].kind, cases[i].s,
		    rc, (unsigned long long)v);
	}
	v = 7;
	ok(num_parse_u64(NULL, 0, 1, &v) == -1 && v == 7, "NULL refused");
}

static void
bools(void)
{
	static const struct {
		const char	*s;
		int		 rc, want;
	} b[] = {
		{ "yes", 0, 1 }, { "YES", 0, 1 }, { "true", 0, 1 },
		{ "On", 0, 1 }, { "1", 0, 1 }, { "no", 0, 0 },
		{ "False", 0, 0 }, { "off", 0, 0 }, { "0", 0, 0 },
		{ "", -1, 0 }, { "y", -1, 0 }, { "yes ", -1, 0 },
		{ "2", -1, 0 }, { "enable", -1, 0 },
	};
	size_t	 i;
	int	 v, rc;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		v = 42;
		rc = num_parse_bool(b[i].s, &v);
		ok(rc == b[i].rc && v == (rc == 0 ? b[i].want : 42),
		    "bool \"%s\": rc %d value %d", b[i].s, rc, v);
	}
}

int
main(void)
{
	numbers();
	bools();
	return tap_done();
}

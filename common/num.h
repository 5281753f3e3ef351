/*
 * num: the one number parser, with range checks.
 *
 * Every function parses the whole string (no leading or trailing junk, no
 * sign, no white space), checks min <= value <= max and returns 0, or -1
 * without touching *out.
 */
#ifndef RELAYD_NUM_H
#define RELAYD_NUM_H

#include <stdint.h>

int	num_parse_u64(const char *, uint64_t min, uint64_t max, uint64_t *out);
/* Bytes, with optional k, m, g suffix (powers of 1024), either case. */
int	num_parse_size(const char *, uint64_t min, uint64_t max, uint64_t *out);
/* Seconds, with optional s, m, h, d suffix; a bare number is seconds. */
int	num_parse_duration(const char *, uint64_t min, uint64_t max,
	    uint64_t *out);
/* Exactly the n bytes at s as decimal digits (not NUL-terminated input;
 * no sign, no suffix, n >= 1), with overflow checks. */
int	num_digits(const char *s, size_t n, uint64_t *out);
/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int	num_parse_bool(const char *, int *out);

#endif

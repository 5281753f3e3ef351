/*
 * check: what `relayd -t` checks beyond the syntax config_load() checks:
 * the TLS certificate and key load and match, the users file is valid,
 * the secret file is readable and holds at least 32 bytes, each DKIM key
 * file is readable, each bounce_domain shares its domain's organizational
 * domain (libpsl), listener addresses parse, the spool's parent exists.
 */
#ifndef RELAYD_CHECK_H
#define RELAYD_CHECK_H

#include <stdio.h>

struct config;

/* Returns the number of problems, each printed to err with file and line. */
int	config_check_files(const struct config *, FILE *err);
/* Only the bounce-domain alignment (the daemon checks it at every load). */
int	config_check_alignment(const struct config *, FILE *err);

#endif

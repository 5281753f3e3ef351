/*
 * config_lines: where in the configuration file a key was set, for
 * diagnostics after config_load() (relayd/check.c uses it to name the line
 * of a file that fails to load).  Private to config.c and check.c.
 */
#ifndef RELAYD_CONFIG_LINES_H
#define RELAYD_CONFIG_LINES_H

struct config;

/*
 * The line where KEY was first set in the section whose header reads
 * SECTION ("tls", "listen submission", "domain example.com" as
 * normalized); the line of the section header when the key was not set
 * there; 0 when the section does not appear in the file.
 */
int	config_key_line(const struct config *, const char *section,
	    const char *key);

#endif

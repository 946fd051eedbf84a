/*
 * Config plumbing shared by the daemons: an INI file read with libinih into
 * one setter (the same setter takes the command-line flags), and typed
 * setters whose errors quote the bad value.
 */
#ifndef COMMON_CFG_H
#define COMMON_CFG_H

#include <stddef.h>
#include <stdint.h>

/* Sets section.name = value; -1 with a message in err (errlen bytes). */
typedef int (*cfg_setter)(void *ctx, const char *section, const char *name,
    const char *value, char *err, size_t errlen);

/* Reads path; errors read "PATH line N: message". */
int	cfg_load(const char *path, cfg_setter set, void *ctx, char *err, size_t errlen);

int	cfg_str(char **dst, const char *v);
int	cfg_uint(unsigned *dst, const char *name, const char *v, unsigned min,
	    unsigned max, char *err, size_t errlen);
int	cfg_addr(char *host, size_t hostcap, uint16_t *port, const char *name,
	    const char *v, char *err, size_t errlen);
/* "a, b c" -> up to max valid SAE IDs (strdup'd; old entries freed). */
int	cfg_id_list(char **list, size_t *n, size_t max, const char *name,
	    const char *v, char *err, size_t errlen);

#endif

/*
 * Config plumbing shared by the daemons: an INI file read with libinih into
 * one setter (the same setter takes the command-line flags), and typed
 * setters whose errors quote the bad value.
 */
#ifndef COMMON_CFG_H
#define COMMON_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/etsiapi.h"

/* Sets section.name = value; -1 with a message in err (errlen bytes). */
typedef int (*cfg_setter)(void *ctx, const char *section, const char *name,
    const char *value, char *err, size_t errlen);

/* Reads path; errors read "PATH line N: message". */
int	cfg_load(const char *path, cfg_setter set, void *ctx, char *err, size_t errlen);
/* The same from an open stream (fmemopen in the fuzz targets); name is for errors. */
int	cfg_load_file(FILE *f, const char *name, cfg_setter set, void *ctx,
	    char *err, size_t errlen);

int	cfg_str(char **dst, const char *v);
int	cfg_uint(unsigned *dst, const char *name, const char *v, unsigned min,
	    unsigned max, char *err, size_t errlen);
int	cfg_addr(char *host, size_t hostcap, uint16_t *port, const char *name,
	    const char *v, char *err, size_t errlen);
/* "a, b c" -> up to max valid SAE IDs (strdup'd; old entries freed). */
int	cfg_id_list(char **list, size_t *n, size_t max, const char *name,
	    const char *v, char *err, size_t errlen);

/* "[sae_map] CN = SAE_ID": one more certificate CN that stands for an SAE. */
int	cfg_map_add(struct etsiapi_map *map, size_t *n, size_t max, const char *cn,
	    const char *sae, char *err, size_t errlen);

/*
 * Command-line flags: each sets one config entry, on top of the file.
 * --config FILE, --check-config FILE and -h/--help are handled here too.
 */
struct cfg_flag {
	const char	*flag;		/* without the leading -- */
	const char	*section;
	const char	*name;
	const char	*help;
};

struct cfg_args {
	const char	*file;		/* --config or --check-config */
	int		 check_only;
	int		 help;
};

/* First pass: the config file and the mode; -1 (message printed) on bad usage. */
int	cfg_args_scan(const char *prog, int argc, char **argv,
	    const struct cfg_flag *fl, size_t n, struct cfg_args *out);
/* Second pass, after the file: every flag through set. */
int	cfg_args_apply(int argc, char **argv, const struct cfg_flag *fl, size_t n,
	    cfg_setter set, void *ctx, char *err, size_t errlen);
void	cfg_flags_usage(FILE *f, const struct cfg_flag *fl, size_t n);

#endif

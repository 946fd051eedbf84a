/* INI loading and typed setters for the daemons' configs (see cfg.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"

struct cfg_ini {
	cfg_setter set;
	void	  *ctx;
	char	   msg[256];
};

static int
cfg_line(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_ini *ci = user;

	/* inih reads on after an error and reports the first line: keep the
	 * first message too. */
	if (ci->msg[0] != '\0')
		return 1;
	return ci->set(ci->ctx, section, name, value, ci->msg,
		   sizeof(ci->msg)) == 0;
}

int
cfg_load(const char *path, cfg_setter set, void *ctx, char *err, size_t errlen)
{
	FILE *f;
	int   rc;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open config file \"%s\"", path);
		return -1;
	}
	rc = cfg_load_file(f, path, set, ctx, err, errlen);
	fclose(f);
	return rc;
}

int
cfg_load_file(FILE *f, const char *name, cfg_setter set, void *ctx, char *err,
    size_t errlen)
{
	struct cfg_ini ci;
	int	       line;

	memset(&ci, 0, sizeof(ci));
	ci.set = set;
	ci.ctx = ctx;
	line = ini_parse_file(f, cfg_line, &ci);
	if (line != 0) {
		snprintf(err, errlen, "%s line %d: %s", name, line,
		    ci.msg[0] ? ci.msg : "syntax error");
		return -1;
	}
	return 0;
}

int
cfg_str(char **dst, const char *v)
{
	char *n;

	if ((n = strdup(v)) == NULL)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

int
cfg_uint(unsigned *dst, const char *name, const char *v, unsigned min,
    unsigned max, char *err, size_t errlen)
{
	if (num_uint(v, min, max, dst) == -1) {
		snprintf(err, errlen,
		    "%s \"%s\" is not a whole number in [%u, %u]", name, v, min,
		    max);
		return -1;
	}
	return 0;
}

int
cfg_addr(char *host, size_t hostcap, uint16_t *port, const char *name,
    const char *v, char *err, size_t errlen)
{
	if (num_hostport(v, host, hostcap, port, 1) == -1) {
		snprintf(err, errlen, "%s \"%s\" is not IPV4:PORT", name, v);
		return -1;
	}
	return 0;
}

int
cfg_id_list(char **list, size_t *n, size_t max, const char *name, const char *v,
    char *err, size_t errlen)
{
	char *copy, *tok, *save = NULL;
	int   rc = -1;

	for (size_t i = 0; i < *n; i++)
		free(list[i]);
	*n = 0;
	if ((copy = strdup(v)) == NULL)
		return -1;
	for (tok = strtok_r(copy, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (!etsi_id_valid(tok) || *n == max) {
			snprintf(err, errlen,
			    "%s: \"%s\" is not a valid SAE ID "
			    "(or more than %zu)",
			    name, tok, max);
			goto done;
		}
		if ((list[(*n)++] = strdup(tok)) == NULL)
			goto done;
	}
	rc = 0;
done:
	free(copy);
	return rc;
}

int
cfg_map_add(struct etsiapi_map *map, size_t *n, size_t max, const char *cn,
    const char *sae, char *err, size_t errlen)
{
	if (*n == max || !etsi_id_valid(sae)) {
		snprintf(err, errlen,
		    "sae_map: \"%s\" is not a valid SAE ID (or "
		    "more than %zu entries)",
		    sae, max);
		return -1;
	}
	if ((map[*n].cn = strdup(cn)) == NULL ||
	    (map[*n].sae = strdup(sae)) == NULL) {
		free(map[*n].cn);
		map[*n].cn = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

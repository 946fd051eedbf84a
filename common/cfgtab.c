/* The table-driven config layer: setting, defaults, file, flags (cfg.h). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"

static void *
field(void *base, size_t off)
{
	return (char *)base + off;
}

/* Appends to the message in err (never past errlen). */
static void
err_cat(char *err, size_t errlen, const char *fmt, ...)
{
	size_t	n = strlen(err);
	va_list ap;

	if (n + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

bool
cfg_opt_applies(const struct cfg_table *t, const struct cfg_opt *o)
{
	return o->roles == 0 || t->role == 0 || (o->roles & t->role) != 0;
}

/* KEY "V" is not a, b or c */
static int
bad_name(const struct cfg_opt *o, const char *v, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s \"%s\" is not ", o->key, v);
	for (size_t i = 0; o->names[i].name; i++)
		err_cat(err, errlen, "%s%s",
		    i == 0		     ? "" :
			o->names[i + 1].name ? ", " :
					       " or ",
		    o->names[i].name);
	return -1;
}

static const struct cfg_name *
find_name(const struct cfg_opt *o, const char *v)
{
	for (size_t i = 0; o->names[i].name; i++)
		if (strcmp(v, o->names[i].name) == 0)
			return &o->names[i];
	return NULL;
}

static int
set_uint(const struct cfg_opt *o, void *dst, const char *v, char *err,
    size_t errlen)
{
	uint64_t u;

	if (num_u64(v, o->min, o->max, &u) == -1) {
		snprintf(err, errlen,
		    "%s \"%s\" is not a whole number in "
		    "[%llu, %llu]",
		    o->key, v, (unsigned long long)o->min,
		    (unsigned long long)o->max);
		return -1;
	}
	if (o->size == sizeof(uint16_t))
		*(uint16_t *)dst = (uint16_t)u;
	else if (o->size == sizeof(uint64_t))
		*(uint64_t *)dst = u;
	else
		*(unsigned *)dst = (unsigned)u;
	return 0;
}

static int
set_bool(const struct cfg_opt *o, int *dst, const char *v, char *err,
    size_t errlen)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0)
		*dst = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0)
		*dst = 0;
	else {
		snprintf(err, errlen, "%s \"%s\" is not yes or no", o->key, v);
		return -1;
	}
	return 0;
}

static int
set_ip(const struct cfg_opt *o, char *dst, const char *v, char *err,
    size_t errlen)
{
	struct in_addr a;

	if (strlen(v) >= o->size || inet_pton(AF_INET, v, &a) != 1) {
		snprintf(err, errlen, "%s \"%s\" is not an IPv4 address",
		    o->key, v);
		return -1;
	}
	snprintf(dst, o->size, "%s", v);
	return 0;
}

/* The string kinds: checked, then copied. */
static int
set_string(const struct cfg_opt *o, char **dst, const char *v, char *err,
    size_t errlen)
{
	if (*v == '\0') {
		snprintf(err, errlen, "%s is empty", o->key);
		return -1;
	}
	if (o->names && find_name(o, v) == NULL)
		return bad_name(o, v, err, errlen);
	if (o->type == CFG_ID && !etsi_id_valid(v)) {
		snprintf(err, errlen,
		    "%s \"%s\" is not a valid ID (ETSI 014: "
		    "printable, no spaces or slashes)",
		    o->key, v);
		return -1;
	}
	if (o->type == CFG_URL && strncmp(v, "https://", 8) != 0) {
		snprintf(err, errlen, "%s \"%s\" is not an https:// URL",
		    o->key, v);
		return -1;
	}
	return cfg_str(dst, v);
}

/* One value into base (the config, or a section's instance); a user's
 * (not a default) marks the option seen. */
static int
set_value(const struct cfg_opt *o, void *base, const char *key, const char *v,
    bool user, char *err, size_t errlen)
{
	const struct cfg_name *nm;
	void		      *dst = field(base, o->off);
	int		       rc = -1;

	switch (o->type) {
	case CFG_STR:
	case CFG_PATH:
	case CFG_ID:
	case CFG_URL: rc = set_string(o, dst, v, err, errlen); break;
	case CFG_UINT: rc = set_uint(o, dst, v, err, errlen); break;
	case CFG_BOOL: rc = set_bool(o, dst, v, err, errlen); break;
	case CFG_ENUM:
		if ((nm = find_name(o, v)) == NULL)
			return bad_name(o, v, err, errlen);
		*(int *)dst = nm->value;
		rc = 0;
		break;
	case CFG_ADDR:
		rc = cfg_addr(dst, o->size, field(base, o->off2), o->key, v,
		    err, errlen);
		break;
	case CFG_IP: rc = set_ip(o, dst, v, err, errlen); break;
	case CFG_IDLIST:
		rc = cfg_id_list(dst, field(base, o->off2), o->max, o->key, v,
		    err, errlen);
		break;
	case CFG_MAP:
		rc = cfg_map_add(dst, field(base, o->off2), o->max, key, v, err,
		    errlen);
		break;
	case CFG_CUSTOM: rc = o->set(base, o, key, v, err, errlen); break;
	}
	if (rc == 0 && o->seen && user)
		*(int *)field(base, o->seen - 1) = 1;
	return rc;
}

static bool
sect_is_instance(const char *sect)
{
	size_t n = strlen(sect);

	return n > 2 && strcmp(sect + n - 2, " *") == 0;
}

/* Does the opt's section ("pool", "sae *") name this one? *arg: after "sae ". */
static bool
sect_match(const char *pat, const char *section, const char **arg)
{
	size_t n = strlen(pat);

	*arg = NULL;
	if (sect_is_instance(pat)) {
		if (strncmp(section, pat, n - 1) != 0 || section[n - 1] == '\0')
			return false;
		*arg = section + n - 1;
		return true;
	}
	return strcmp(pat, section) == 0;
}

static int defaults(const struct cfg_table *t, const char *sect, void *base,
    char *err, size_t errlen);

int
cfg_set(const struct cfg_table *t, void *cfg, const char *section,
    const char *key, const char *value, char *err, size_t errlen)
{
	const struct cfg_opt *o = NULL;
	const char	     *arg = NULL;
	void		     *base = cfg;
	bool		      known = false, fresh = false;
	int		      rc;

	err[0] = '\0';
	/* The key's entry of this role; else of another one (ignored). */
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *x = &t->opts[i];
		const char	     *xarg;

		if (!sect_match(x->sect, section, &xarg))
			continue;
		known = true;
		if (strcmp(x->key, "*") != 0 && strcmp(x->key, key) != 0)
			continue;
		if (o == NULL || !cfg_opt_applies(t, o)) {
			o = x;
			arg = xarg;
		}
	}
	if (!known) {
		snprintf(err, errlen, "unknown section [%s]", section);
		return -1;
	}
	if (o == NULL) {
		snprintf(err, errlen, "unknown setting \"%s\" in [%s]", key,
		    section);
		return -1;
	}
	if (!cfg_opt_applies(t, o))
		return 0;
	if (arg != NULL) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(arg - section - 1),
		    section);
		if ((base = t->instance(cfg, name, arg, &fresh, err, errlen)) ==
			NULL ||
		    (fresh && defaults(t, o->sect, base, err, errlen) == -1))
			rc = -1;
		else
			rc = set_value(o, base, key, value, true, err, errlen);
	} else
		rc = set_value(o, base, key, value, true, err, errlen);
	if (rc == -1 && err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	return rc;
}

/*
 * The defaults of the opts of section sect into base: the config's own
 * sections (sect NULL) or one [NAME ARG] instance (sect "NAME *", when it
 * is made). Through the setters: a default outside its range is an error.
 */
static int
defaults(const struct cfg_table *t, const char *sect, void *base, char *err,
    size_t errlen)
{
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (o->def == NULL || !cfg_opt_applies(t, o) ||
		    (sect == NULL ? sect_is_instance(o->sect) :
				    strcmp(o->sect, sect) != 0))
			continue;
		err[0] = '\0';
		if (set_value(o, base, o->key, o->def, false, err, errlen) ==
		    -1) {
			if (err[0] == '\0')
				snprintf(err, errlen, "out of memory");
			err_cat(err, errlen, " (the default of [%s] %s)",
			    o->sect, o->key);
			return -1;
		}
	}
	return 0;
}

int
cfg_defaults(const struct cfg_table *t, void *cfg, char *err, size_t errlen)
{
	if (t->init)
		t->init(cfg);
	return defaults(t, NULL, cfg, err, errlen);
}

static void
wipe_free(char **p)
{
	if (*p != NULL)
		explicit_bzero(*p, strlen(*p));
	free(*p);
	*p = NULL;
}

void
cfg_release(const struct cfg_table *t, void *base, bool instance)
{
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];
		struct etsiapi_map   *map = field(base, o->off);
		char		    **list = field(base, o->off);
		size_t		     *n = field(base, o->off2);

		if (sect_is_instance(o->sect) != instance)
			continue;
		switch (o->type) {
		case CFG_STR:
		case CFG_PATH:
		case CFG_ID:
		case CFG_URL: wipe_free(field(base, o->off)); break;
		case CFG_IDLIST:
			for (size_t j = 0; j < *n; j++)
				wipe_free(&list[j]);
			*n = 0;
			break;
		case CFG_MAP:
			for (size_t j = 0; j < *n; j++) {
				wipe_free(&map[j].cn);
				wipe_free(&map[j].sae);
			}
			*n = 0;
			break;
		default: break;
		}
	}
}

struct tab_ctx {
	const struct cfg_table *t;
	void		       *cfg;
};

static int
tab_setter(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	struct tab_ctx *tc = ctx;

	return cfg_set(tc->t, tc->cfg, section, name, value, err, errlen);
}

int
cfg_tab_load(const struct cfg_table *t, void *cfg, const char *path, char *err,
    size_t errlen)
{
	struct tab_ctx tc = { t, cfg };

	return cfg_load(path, tab_setter, &tc, err, errlen);
}

int
cfg_tab_load_file(const struct cfg_table *t, void *cfg, FILE *f,
    const char *name, char *err, size_t errlen)
{
	struct tab_ctx tc = { t, cfg };

	return cfg_load_file(f, name, tab_setter, &tc, err, errlen);
}

/* ------------------------------------------------------ the command line */

enum { OPT_CONFIG = 1, OPT_CHECK, OPT_HELP, OPT_MAN };

/* getopt_long's table: the flags of t's program (*map: their opts), then
 * config, check-config, help and help-man. */
static struct option *
cmd_options(const struct cfg_table *t, const struct cfg_opt ***map)
{
	struct option *o;
	size_t	       n = 0;

	o = calloc(t->nopts + 5, sizeof(*o));
	*map = calloc(t->nopts + 1, sizeof(**map));
	if (o == NULL || *map == NULL) {
		free(o);
		free(*map);
		return NULL;
	}
	for (size_t i = 0; i < t->nopts; i++)
		if (t->opts[i].flag && cfg_opt_applies(t, &t->opts[i])) {
			(*map)[n] = &t->opts[i];
			o[n++] = (struct option){ t->opts[i].flag,
				required_argument, NULL, 0 };
		}
	o[n++] =
	    (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	o[n++] = (struct option){ "check-config", required_argument, NULL,
		OPT_CHECK };
	o[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	o[n] = (struct option){ "help-man", no_argument, NULL, OPT_MAN };
	return o;
}

int
cfg_cmdline(const struct cfg_table *t, int argc, char **argv,
    struct cfg_cmd *cmd)
{
	const struct cfg_opt **map;
	struct option	      *o;
	int		       ch, idx, rc = 0;

	memset(cmd, 0, sizeof(*cmd));
	cmd->argc = argc;
	cmd->argv = argv;
	if ((o = cmd_options(t, &map)) == NULL)
		return -1;
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "h", o, &idx)) != -1) {
		if (ch == 'h' || ch == OPT_HELP)
			cmd->help = true;
		else if (ch == OPT_MAN)
			cmd->help_man = true;
		else if (ch == OPT_CONFIG || ch == OPT_CHECK) {
			cmd->file = optarg;
			cmd->check_only = ch == OPT_CHECK;
		} else if (ch != 0)
			rc = -1; /* getopt said which */
	}
	if (rc == 0 && optind != argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", t->prog,
		    argv[optind]);
		rc = -1;
	}
	if (rc == -1)
		fprintf(stderr, "usage: %s\n(%s --help lists the options)\n",
		    t->usage, t->prog);
	free(o);
	free(map);
	return rc;
}

/* Second pass: every flag, in order, over the file. */
static int
cmd_apply(const struct cfg_table *t, void *cfg, const struct cfg_cmd *cmd,
    char *err, size_t errlen)
{
	const struct cfg_opt **map, *f;
	struct option	      *o;
	int		       ch, idx, rc = 0;

	if ((o = cmd_options(t, &map)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	optind = 1;
	opterr = 0; /* cfg_cmdline reported bad usage */
	while (rc == 0 &&
	    (ch = getopt_long(cmd->argc, cmd->argv, "h", o, &idx)) != -1) {
		if (ch != 0)
			continue;
		f = map[idx];
		err[0] = '\0';
		if (set_value(f, cfg, f->key, optarg, true, err, errlen) == 0)
			continue;
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		err_cat(err, errlen, " (flag --%s)", f->flag);
		rc = -1;
	}
	opterr = 1;
	free(o);
	free(map);
	return rc;
}

int
cfg_build(const struct cfg_table *t, void *cfg, const char *file,
    const struct cfg_cmd *cmd, char *err, size_t errlen)
{
	if (cfg_defaults(t, cfg, err, errlen) == -1)
		return -1;
	if (file && cfg_tab_load(t, cfg, file, err, errlen) == -1)
		return -1;
	if (cmd && cmd_apply(t, cfg, cmd, err, errlen) == -1)
		return -1;
	return t->finish ? t->finish(cfg, err, errlen) : 0;
}

int
cfg_main(const struct cfg_table *t, void *cfg, int argc, char **argv,
    struct cfg_cmd *cmd)
{
	char err[512];

	if (t->init)
		t->init(cfg);
	if (cfg_cmdline(t, argc, argv, cmd) == -1)
		return -1;
	if (cmd->help || cmd->help_man) {
		if (cmd->help)
			cfg_help(t, stdout);
		else
			cfg_man(t, stdout);
		return 1;
	}
	if (cfg_build(t, cfg, cmd->file, cmd, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: config: %s\n", t->prog, err);
		return -1;
	}
	if (cmd->check_only) {
		printf("%s: config is valid\n", t->prog);
		return 1;
	}
	return 0;
}

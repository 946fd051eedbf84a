/*
 * The daemons' configuration, written once: each daemon (kmsd, qkd-sim,
 * ike-n3iwf, ike-ue) declares ONE table of its options, and this layer
 * does the rest from it.
 *
 *   struct cfg_opt	one setting: [section] key, its type (string, path,
 *			whole number with a range, yes/no, one of named
 *			values, IPV4:PORT, IPv4 address, ETSI ID, list of SAE
 *			IDs, https:// URL, [sae_map] CN = SAE_ID, or a custom
 *			setter for the rare special one), where it
 *			goes (offsetof into the daemon's config struct), its
 *			default (as text, fed through the same setter), one
 *			line of help, and the long option that mirrors it on
 *			the command line, if any.
 *   struct cfg_table	the program: its name, its options, the hooks that
 *			zero/finish (cross-field checks)/free the config, and
 *			[NAME ARG] sections (kmsd's [sae ID]) through one
 *			instance() hook.
 *
 * What the layer gives (cfgtab.c, cfgdoc.c):
 *   cfg_main()		a daemon's whole config start: --help, --help-man,
 *			--check-config FILE, --config FILE, defaults, the
 *			file, then the flags on top, then finish().
 *   cfg_build()	the same without the command line handling (kmsd's
 *			SIGHUP reload, its embedded simulator's file, tests).
 *   cfg_help()		the --help text: every key of the table.
 *   cfg_man()		the OPTIONS and CONFIGURATION sections of the man
 *			page in roff (`make man`: build/man/PROG.8).
 *
 * Errors name the file, the line and the bad value:
 *   kmsd-a.conf line 12: low "12x" is not a whole number in [0, 10000000]
 * and a flag's error ends in " (flag --pool-low)". Setup paths: no logging,
 * one message in err, the caller prints it.
 *
 * The lower layer (cfg.c): INI reading with libinih into any setter, and
 * the typed setters the table uses (also used alone: httpd_limits_set).
 */
#ifndef COMMON_CFG_H
#define COMMON_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/etsiapi.h"

/* ---------------------------------------------------------- INI plumbing */

/* Sets section.name = value; -1 with a message in err (errlen bytes). */
typedef int (*cfg_setter)(void *ctx, const char *section, const char *name,
    const char *value, char *err, size_t errlen);

/* Reads path; errors read "PATH line N: message". */
int
cfg_load(const char *path, cfg_setter set, void *ctx, char *err, size_t errlen);
/* The same from an open stream (fmemopen in the fuzz targets); name is for errors. */
int cfg_load_file(FILE *f, const char *name, cfg_setter set, void *ctx,
    char *err, size_t errlen);

/* ------------------------------------------------------- typed setters */

int cfg_str(char **dst, const char *v);
int cfg_uint(unsigned *dst, const char *name, const char *v, unsigned min,
    unsigned max, char *err, size_t errlen);
int cfg_addr(char *host, size_t hostcap, uint16_t *port, const char *name,
    const char *v, char *err, size_t errlen);
/* "a, b c" -> up to max valid SAE IDs (strdup'd; old entries freed). */
int cfg_id_list(char **list, size_t *n, size_t max, const char *name,
    const char *v, char *err, size_t errlen);

/* "[sae_map] CN = SAE_ID": one more certificate CN that stands for an SAE. */
int cfg_map_add(struct etsiapi_map *map, size_t *n, size_t max, const char *cn,
    const char *sae, char *err, size_t errlen);

/* ------------------------------------------------------------ the table */

enum cfg_type {
	CFG_STR = 1, /* char *, not empty; with names: one of them */
	CFG_PATH,    /* char *, a file name (not empty) */
	CFG_UINT,    /* unsigned, uint16_t or uint64_t (size) in [min, max] */
	CFG_BOOL,    /* int: yes/no, true/false, 1/0 */
	CFG_ENUM,    /* int (or an enum, or unsigned): the value of a name */
	CFG_ADDR,    /* char host[size] + uint16_t port at off2: IPV4:PORT */
	CFG_IP,	     /* char[size]: an IPv4 address */
	CFG_ID,	     /* char *: an ETSI 014 ID (SAE, KME, certificate CN) */
	CFG_IDLIST,  /* char *[max] + size_t count at off2: SAE IDs */
	CFG_URL,     /* char *: an https:// URL */
	CFG_MAP,     /* struct etsiapi_map[max] + size_t count at off2:
			 * [sae_map] CN = SAE_ID, key "*" */
	CFG_CUSTOM,  /* set() does it */
};

struct cfg_name {
	const char *name;
	int	    value;
};

struct cfg_opt;
/* A custom setter: base is the config (or the section's instance). */
typedef int (*cfg_custom)(void *base, const struct cfg_opt *o, const char *key,
    const char *value, char *err, size_t errlen);

struct cfg_opt {
	const char   *sect; /* "pool"; "sae *" is every [sae ARG] */
	const char   *key;  /* "*": any key of the section (CFG_CUSTOM) */
	enum cfg_type type;
	size_t	      off;  /* of the field in the config or instance */
	size_t	      size; /* of the field (sizeof) */
	const char   *def;  /* default, as it would be written in the file */
	const char   *flag; /* long option that mirrors the key, or NULL */
	const char   *help; /* one line, no default in it (def says it) */
	uint64_t      min, max; /* CFG_UINT; CFG_IDLIST, CFG_MAP: max entries */
	const struct cfg_name *names; /* CFG_ENUM, CFG_STR: NULL-ended */
	size_t
	    off2; /* CFG_ADDR: the uint16_t port; CFG_IDLIST, CFG_MAP: count */
	size_t	    seen;  /* CFG_SEEN(): an int set to 1 when set, or 0 */
	cfg_custom  set;   /* CFG_CUSTOM */
	const char *arg;   /* the value's name in help (default from type) */
	unsigned    roles; /* 0: every program of the table; else a mask */
};

/* Field helpers for table entries: .off and .size of a member. */
#define CFG_AT(type, m)	  offsetof(type, m), sizeof(((type *)0)->m)
#define CFG_SEEN(type, m) (offsetof(type, m) + 1)

#define CFG_XSTR(x)  CFG_XSTR2(x)
#define CFG_XSTR2(x) #x

/* The connection limits of common/httpd (a struct httpd_limits member m;
 * include common/httpd.h): max_conns, max_conns_per_ip, handshake_timeout_s,
 * idle_timeout_s. */
#define CFG_HTTPD_LIMITS(sect, type, m)                                           \
	{ sect, "max_conns", CFG_UINT, CFG_AT(type, m.max_conns),                 \
		CFG_XSTR(HTTPD_MAX_CONNS_DEFAULT), NULL,                          \
		.help = "API connections at once", .min = 1, .max = 100000 },     \
	    { sect, "max_conns_per_ip", CFG_UINT,                                 \
		    CFG_AT(type, m.max_conns_per_ip),                             \
		    CFG_XSTR(HTTPD_MAX_CONNS_PER_IP_DEFAULT), NULL,               \
		    .help = "API connections from one address at once",           \
		    .min = 1, .max = 100000 },                                    \
	    { sect, "handshake_timeout_s", CFG_UINT,                              \
		    CFG_AT(type, m.handshake_s),                                  \
		    CFG_XSTR(HTTPD_HANDSHAKE_S_DEFAULT), NULL,                    \
		    .help =                                                       \
			"TLS handshake and first request headers, seconds",       \
		    .min = 1, .max = 60 },                                        \
	{                                                                         \
		sect, "idle_timeout_s", CFG_UINT, CFG_AT(type, m.idle_s),         \
		    CFG_XSTR(HTTPD_IDLE_S_DEFAULT), NULL,                         \
		    .help =                                                       \
			"a request body, and the wait between requests, seconds", \
		    .min = 1, .max = 86400                                        \
	}

struct cfg_table {
	const char *prog;  /* "kmsd": usage, errors, man page */
	const char *usage; /* the lines after "usage: " */
	const char *about; /* what it is, a few lines */
	const char *tail;  /* after the options: signals, exit status */
	const struct cfg_opt *opts;
	size_t		      nopts;
	unsigned	      role; /* which opts apply (their roles mask) */
	void (*init)(void *cfg);    /* zero it (before the defaults) */
	int (*finish)(void *cfg, char *err, size_t errlen);
	void (*free)(void *cfg);
	/* [NAME ARG] sections: the struct the "NAME *" opts write into;
	 * *fresh when it is made now (the layer then sets its defaults). */
	void *(*instance)(void *cfg, const char *name, const char *arg,
	    bool *fresh, char *err, size_t errlen);
};

/* init, then every default of the config's own sections (an instance's
 * are set when it is made); a default is not a setting: it marks nothing
 * seen. */
int
cfg_defaults(const struct cfg_table *t, void *cfg, char *err, size_t errlen);
/* One "[section] key = value", as from the file. Keys of other roles in
 * t->role's table are accepted and ignored (one file serves every role). */
int cfg_set(const struct cfg_table *t, void *cfg, const char *section,
    const char *key, const char *value, char *err, size_t errlen);
/* The file (or stream) through cfg_set. */
int cfg_tab_load(const struct cfg_table *t, void *cfg, const char *path,
    char *err, size_t errlen);
int cfg_tab_load_file(const struct cfg_table *t, void *cfg, FILE *f,
    const char *name, char *err, size_t errlen);

/* Frees (and wipes) what the opts of base's kind point to: the config's
 * own sections, or with instance set, one [NAME ARG] section's struct. */
void cfg_release(const struct cfg_table *t, void *base, bool instance);

/* What the command line asks for, besides the settings. */
struct cfg_cmd {
	const char *file;	/* --config or --check-config */
	bool	    check_only; /* --check-config */
	bool	    help;	/* -h, --help */
	bool	    help_man;	/* --help-man */
	int	    argc;	/* the flags, applied by cfg_build */
	char	  **argv;
};

/* First pass over argv; -1 (getopt or this printed why) on bad usage. */
int cfg_cmdline(const struct cfg_table *t, int argc, char **argv,
    struct cfg_cmd *cmd);
/* Defaults, the file (cmd->file or none), the flags in cmd, finish(). The
 * config is left to t->free() by the caller, also on error. cmd may be NULL:
 * only defaults, file and finish. */
int cfg_build(const struct cfg_table *t, void *cfg, const char *file,
    const struct cfg_cmd *cmd, char *err, size_t errlen);

/*
 * A daemon's start: command line, then cfg_build. --help and --help-man
 * print and answer 1, --check-config prints "PROG: config is valid" and
 * answers 1 (exit 0), errors print "PROG: config: MESSAGE" and answer -1;
 * 0: run. cfg is to be freed with t->free() in every case.
 */
int cfg_main(const struct cfg_table *t, void *cfg, int argc, char **argv,
    struct cfg_cmd *cmd);

/* The --help text, from the table: usage, about, options, every key. */
void cfg_help(const struct cfg_table *t, FILE *f);
/* The OPTIONS and CONFIGURATION sections of the man page, in roff. */
void cfg_man(const struct cfg_table *t, FILE *f);

/* Shared by the writers: the name of o's value ("N", "IPV4:PORT", ...). */
const char *cfg_opt_arg(const struct cfg_opt *o);
/* Does o belong to t's program? */
bool	    cfg_opt_applies(const struct cfg_table *t, const struct cfg_opt *o);

#endif

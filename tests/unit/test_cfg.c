/* Unit tests for common/cfg (INI loading, typed setters, the table layer:
 * types, defaults, errors, flags, --help and man text, the daemons' tables)
 * and the routing part of common/etsiapi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cfg.h"
#include "common/etsiapi.h"
#include "ike/ikecfg.h"
#include "kmsd/config.h"
#include "simulator/config.h"

/* A toy config: [a] n = uint 1..10, [a] s = string, [b] anything fails. */
struct toy {
	unsigned n;
	char	*s;
	int	 calls;
};

static int
toy_set(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	struct toy *t = ctx;

	t->calls++;
	err[0] = '\0';
	if (strcmp(section, "a") != 0) {
		snprintf(err, errlen, "unknown section [%s]", section);
		return -1;
	}
	if (strcmp(name, "n") == 0)
		return cfg_uint(&t->n, name, value, 1, 10, err, errlen);
	if (strcmp(name, "s") == 0)
		return cfg_str(&t->s, value);
	snprintf(err, errlen, "unknown setting \"%s\"", name);
	return -1;
}

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE	   *f;

	snprintf(path, sizeof(path), "/tmp/test_cfg.%d.ini", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_load_ok(void **state)
{
	struct toy t = { 0, NULL, 0 };
	char	   err[256] = "";
	char	  *p = write_tmp("; comment\n[a]\nn = 7\ns = hello world\n");

	assert_int_equal(cfg_load(p, toy_set, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 7);
	assert_string_equal(t.s, "hello world");
	free(t.s);
	unlink(p);
}

/* inih reads on after an error: the first message must survive. */
static void
test_load_first_error_kept(void **state)
{
	struct toy t = { 0, NULL, 0 };
	char	   err[256] = "";
	char	  *p = write_tmp("[a]\nn = 12x\ns = later\nn = 3\n");

	assert_int_equal(cfg_load(p, toy_set, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "\"12x\""));
	assert_non_null(strstr(err, p));
	free(t.s);
	unlink(p);
}

static void
test_load_errors(void **state)
{
	struct toy t = { 0, NULL, 0 };
	char	   err[256] = "";
	char	  *p;

	assert_int_equal(cfg_load("/nonexistent/x.ini", toy_set, &t, err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot open"));
	p = write_tmp("[a]\nn = 5\n[b]\nx = 1\n");
	assert_int_equal(cfg_load(p, toy_set, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 4"));
	assert_non_null(strstr(err, "[b]"));
	p = write_tmp("[a]\nthis line has no equals sign\n");
	assert_int_equal(cfg_load(p, toy_set, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2"));
	free(t.s);
	unlink(p);
}

/* The stream form (what the fuzz targets use): same lines, same errors. */
static void
test_load_file(void **state)
{
	static char text[] = "[a]\nn = 4\ns = x y\nn = 0\n";
	struct toy  t = { 0, NULL, 0 };
	char	    err[256] = "";
	FILE	   *f;

	assert_non_null(f = fmemopen(text, strlen(text), "r"));
	assert_int_equal(cfg_load_file(f, "mem.ini", toy_set, &t, err,
			     sizeof(err)),
	    -1);
	fclose(f);
	assert_int_equal(t.n, 4);
	assert_string_equal(t.s, "x y");
	assert_non_null(strstr(err, "mem.ini line 4"));
	assert_non_null(strstr(err, "\"0\""));
	free(t.s);
}

static void
test_setters(void **state)
{
	unsigned	   u = 0;
	char		   host[16], err[128], *list[4] = { NULL };
	size_t		   n = 0;
	uint16_t	   port;
	struct etsiapi_map map[2];
	size_t		   nmap = 0;

	assert_int_equal(cfg_uint(&u, "k", "10", 1, 10, err, sizeof(err)), 0);
	assert_int_equal(u, 10);
	assert_int_equal(cfg_uint(&u, "k", "11", 1, 10, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "k \"11\""));
	assert_int_equal(cfg_addr(host, sizeof(host), &port, "listen",
			     "127.0.0.1:0", err, sizeof(err)),
	    0);
	assert_int_equal(port, 0);
	assert_int_equal(cfg_addr(host, sizeof(host), &port, "listen",
			     "nohost:1", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "\"nohost:1\""));
	assert_int_equal(cfg_id_list(list, &n, 4, "saes", "a, b\tc", err,
			     sizeof(err)),
	    0);
	assert_int_equal(n, 3);
	assert_string_equal(list[2], "c");
	assert_int_equal(cfg_id_list(list, &n, 2, "saes", "a,b,c", err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "\"c\""));
	assert_int_equal(cfg_id_list(list, &n, 4, "saes", "ok,bad/id", err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "bad/id"));
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn1", "sae-1", err,
			     sizeof(err)),
	    0);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn2", "sae 2?", err,
			     sizeof(err)),
	    -1);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn2", "sae-2", err,
			     sizeof(err)),
	    0);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn3", "sae-3", err,
			     sizeof(err)),
	    -1);
	assert_string_equal(etsiapi_identity(map, nmap, "cn2"), "sae-2");
	assert_string_equal(etsiapi_identity(map, nmap, "other"), "other");
	for (size_t i = 0; i < nmap; i++) {
		free(map[i].cn);
		free(map[i].sae);
	}
}

/* --- the table layer: one toy table with every type ---------------- */

struct tinst {
	char *v;
};

struct tcfg {
	char		  *s, *path, *lvl, *id, *url, *ids[3], *cust;
	size_t		   nids, nmap, ninst;
	unsigned	   n;
	uint16_t	   p16;
	uint64_t	   big;
	int		   b, e, seen, finished;
	char		   host[16], ip[16];
	uint16_t	   port;
	struct etsiapi_map map[2];
	struct tinst	   inst[2];
	char		  *inames[2];
};

static const struct cfg_name t_names[] = { { "one", 1 }, { "two", 2 },
	{ "three", 3 }, { NULL, 0 } };
static const struct cfg_name t_levels[] = { { "low", 0 }, { "high", 0 },
	{ NULL, 0 } };

static int
t_custom(void *base, const struct cfg_opt *o, const char *key, const char *v,
    char *err, size_t errlen)
{
	if (strcmp(v, "ok") != 0) {
		snprintf(err, errlen, "%s \"%s\" is not ok", o->key, v);
		return -1;
	}
	return cfg_str((char **)(void *)((char *)base + o->off), v);
}

#define T(m) CFG_AT(struct tcfg, m)
static const struct cfg_opt t_opts[] = {
	{ "a", "s", CFG_STR, T(s), "dflt", "s", .help = "a string" },
	{ "a", "path", CFG_PATH, T(path), NULL, "path", .help = "a file" },
	{ "a", "lvl", CFG_STR, T(lvl), NULL, NULL, .help = "a level",
	    .names = t_levels },
	{ "a", "n", CFG_UINT, T(n), "5", "n", .help = "a number", .min = 1,
	    .max = 10 },
	{ "a", "p16", CFG_UINT, T(p16), "80", NULL, .help = "a port", .min = 0,
	    .max = 65535 },
	{ "a", "big", CFG_UINT, T(big), "100000000000", NULL, .help = "big",
	    .min = 1, .max = 100000000000ull },
	{ "a", "b", CFG_BOOL, T(b), "yes", "b", .help = "a bool" },
	{ "a", "e", CFG_ENUM, T(e), "two", "e", .help = "an enum",
	    .names = t_names },
	{ "b", "addr", CFG_ADDR, T(host), NULL, "addr", .help = "an address",
	    .off2 = offsetof(struct tcfg, port),
	    .seen = CFG_SEEN(struct tcfg, seen) },
	{ "b", "ip", CFG_IP, T(ip), "10.0.0.1", NULL, .help = "an IPv4" },
	{ "b", "id", CFG_ID, T(id), NULL, NULL, .help = "an ID" },
	{ "b", "ids", CFG_IDLIST, T(ids), NULL, NULL, .help = "IDs", .max = 3,
	    .off2 = offsetof(struct tcfg, nids) },
	{ "b", "url", CFG_URL, T(url), NULL, NULL, .help = "a URL" },
	{ "b", "cust", CFG_CUSTOM, T(cust), NULL, NULL, .help = "custom",
	    .set = t_custom },
	{ "b", "ue_only", CFG_UINT, T(n), NULL, "ue-only", .help = "role 1",
	    .min = 0, .max = 99, .roles = 1 },
	{ "map", "*", CFG_MAP, T(map), NULL, NULL, .help = "CN = ID", .max = 2,
	    .off2 = offsetof(struct tcfg, nmap) },
	{ "inst *", "v", CFG_STR, CFG_AT(struct tinst, v), NULL, NULL,
	    .help = "per instance" },
};

static void
t_init(void *cfg)
{
	memset(cfg, 0, sizeof(struct tcfg));
}

static int
t_finish(void *cfg, char *err, size_t errlen)
{
	struct tcfg *c = cfg;

	if (c->n == 7) {
		snprintf(err, errlen, "n 7 is unlucky");
		return -1;
	}
	c->finished = 1;
	return 0;
}

static void *
t_instance(void *cfg, const char *name, const char *arg, bool *fresh, char *err,
    size_t errlen)
{
	struct tcfg *c = cfg;

	*fresh = false;
	assert_string_equal(name, "inst");
	for (size_t i = 0; i < c->ninst; i++)
		if (strcmp(c->inames[i], arg) == 0)
			return &c->inst[i];
	if (c->ninst == 2) {
		snprintf(err, errlen, "[inst %s]: too many", arg);
		return NULL;
	}
	c->inames[c->ninst] = strdup(arg);
	*fresh = true;
	return &c->inst[c->ninst++];
}

static void t_free(void *cfg);

static const struct cfg_table t_tab = {
	.prog = "toy",
	.usage = "toy [options]",
	.about = "A toy.",
	.tail = "the end",
	.opts = t_opts,
	.nopts = sizeof(t_opts) / sizeof(t_opts[0]),
	.role = 2,
	.init = t_init,
	.finish = t_finish,
	.free = t_free,
	.instance = t_instance,
};

static void
t_free(void *cfg)
{
	struct tcfg *c = cfg;

	for (size_t i = 0; i < c->ninst; i++) {
		cfg_release(&t_tab, &c->inst[i], true);
		free(c->inames[i]);
	}
	cfg_release(&t_tab, c, false);
	free(c->cust); /* custom: the release is the custom setter's */
	c->cust = NULL;
}

/* cfg_set's message for "[sect] key = v" (or "" when it succeeded). */
static const char *
t_set(struct tcfg *c, const char *sect, const char *key, const char *v)
{
	static char err[256];

	err[0] = '\0';
	if (cfg_set(&t_tab, c, sect, key, v, err, sizeof(err)) == 0)
		return "";
	assert_true(err[0] != '\0');
	return err;
}

static void
test_tab_defaults(void **state)
{
	struct tcfg c;
	char	    err[256];

	assert_int_equal(cfg_defaults(&t_tab, &c, err, sizeof(err)), 0);
	assert_string_equal(c.s, "dflt");
	assert_null(c.path);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.p16, 80);
	assert_true(c.big == 100000000000ull);
	assert_int_equal(c.b, 1);
	assert_int_equal(c.e, 2);
	assert_string_equal(c.ip, "10.0.0.1");
	assert_int_equal(c.seen, 0);
	assert_int_equal(c.finished, 0);
	t_free(&c);
}

static void
test_tab_types(void **state)
{
	struct tcfg c;
	char	    err[256];

	assert_int_equal(cfg_defaults(&t_tab, &c, err, sizeof(err)), 0);
	assert_string_equal(t_set(&c, "a", "s", "x y"), "");
	assert_string_equal(c.s, "x y");
	assert_string_equal(t_set(&c, "a", "s", ""), "s is empty");
	assert_string_equal(t_set(&c, "a", "lvl", "high"), "");
	assert_string_equal(t_set(&c, "a", "lvl", "mid"),
	    "lvl \"mid\" is not low or high");
	assert_string_equal(t_set(&c, "a", "n", "10"), "");
	assert_int_equal(c.n, 10);
	assert_string_equal(t_set(&c, "a", "n", "11"),
	    "n \"11\" is not a whole number in [1, 10]");
	assert_string_equal(t_set(&c, "a", "n", "-1"),
	    "n \"-1\" is not a whole number in [1, 10]");
	assert_string_equal(t_set(&c, "a", "p16", "65535"), "");
	assert_int_equal(c.p16, 65535);
	assert_string_equal(t_set(&c, "a", "p16", "65536"),
	    "p16 \"65536\" is not a whole number in [0, 65535]");
	assert_string_equal(t_set(&c, "a", "big", "99999999999"), "");
	assert_true(c.big == 99999999999ull);
	assert_string_equal(t_set(&c, "a", "b", "No"), "");
	assert_int_equal(c.b, 0);
	assert_string_equal(t_set(&c, "a", "b", "true"), "");
	assert_int_equal(c.b, 1);
	assert_string_equal(t_set(&c, "a", "b", "maybe"),
	    "b \"maybe\" is not yes or no");
	assert_string_equal(t_set(&c, "a", "e", "three"), "");
	assert_int_equal(c.e, 3);
	assert_string_equal(t_set(&c, "a", "e", "four"),
	    "e \"four\" is not one, two or three");
	assert_string_equal(t_set(&c, "b", "addr", "127.0.0.1:99"), "");
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 99);
	assert_int_equal(c.seen, 1);
	assert_non_null(strstr(t_set(&c, "b", "addr", "x:1"), "\"x:1\""));
	assert_string_equal(t_set(&c, "b", "ip", "1.2.3.4"), "");
	assert_string_equal(t_set(&c, "b", "ip", "1.2.3"),
	    "ip \"1.2.3\" is not an IPv4 address");
	assert_string_equal(t_set(&c, "b", "id", "sae-1"), "");
	assert_non_null(strstr(t_set(&c, "b", "id", "a/b"), "id \"a/b\""));
	assert_string_equal(t_set(&c, "b", "ids", "x, y z"), "");
	assert_int_equal(c.nids, 3);
	assert_non_null(strstr(t_set(&c, "b", "ids", "a,b,c,d"), "\"d\""));
	assert_string_equal(t_set(&c, "b", "url", "https://h:1"), "");
	assert_string_equal(t_set(&c, "b", "url", "http://h:1"),
	    "url \"http://h:1\" is not an https:// URL");
	assert_string_equal(t_set(&c, "b", "cust", "ok"), "");
	assert_string_equal(c.cust, "ok");
	assert_string_equal(t_set(&c, "b", "cust", "ko"),
	    "cust \"ko\" is not ok");
	assert_string_equal(t_set(&c, "map", "cn1", "sae-1"), "");
	assert_string_equal(t_set(&c, "map", "cn2", "sae-2"), "");
	assert_non_null(strstr(t_set(&c, "map", "cn3", "sae-3"), "sae-3"));
	assert_int_equal(c.nmap, 2);
	assert_string_equal(c.map[1].cn, "cn2");
	t_free(&c);
}

static void
test_tab_sections(void **state)
{
	struct tcfg c;
	char	    err[256];

	assert_int_equal(cfg_defaults(&t_tab, &c, err, sizeof(err)), 0);
	assert_string_equal(t_set(&c, "zz", "s", "x"), "unknown section [zz]");
	assert_string_equal(t_set(&c, "a", "frob", "x"),
	    "unknown setting \"frob\" in [a]");
	assert_string_equal(t_set(&c, "inst p", "v", "1"), "");
	assert_string_equal(t_set(&c, "inst q", "v", "2"), "");
	assert_string_equal(t_set(&c, "inst p", "v", "3"), "");
	assert_string_equal(t_set(&c, "inst r", "v", "4"),
	    "[inst r]: too many");
	assert_string_equal(t_set(&c, "inst p", "w", "4"),
	    "unknown setting \"w\" in [inst p]");
	assert_string_equal(t_set(&c, "inst", "v", "4"),
	    "unknown section [inst]");
	assert_int_equal(c.ninst, 2);
	assert_string_equal(c.inst[0].v, "3");
	assert_string_equal(c.inst[1].v, "2");
	/* A key of another role (the table is role 2's): accepted, ignored. */
	c.n = 4;
	assert_string_equal(t_set(&c, "b", "ue_only", "50"), "");
	assert_int_equal(c.n, 4);
	t_free(&c);
}

/* A file's error names the file, the line and the bad value. */
static void
test_tab_file(void **state)
{
	struct tcfg c;
	char	    err[256] = "";
	char	   *p = write_tmp("[a]\ns = from file\nn = 3\n[b]\n"
					"ip = 300.1.1.1\n");

	assert_int_equal(cfg_build(&t_tab, &c, p, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "line 5"));
	assert_non_null(strstr(err, "\"300.1.1.1\""));
	t_free(&c);
	p = write_tmp("[a]\nn = 7\n");
	assert_int_equal(cfg_build(&t_tab, &c, p, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "n 7 is unlucky");
	t_free(&c);
	p = write_tmp("[a]\ns = from file\nn = 3\n");
	assert_int_equal(cfg_build(&t_tab, &c, p, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.s, "from file");
	assert_int_equal(c.n, 3);
	assert_int_equal(c.e, 2); /* default */
	assert_int_equal(c.finished, 1);
	t_free(&c);
	unlink(p);
}

/* Flags override the file, in order; errors name the flag. */
static void
test_tab_flags(void **state)
{
	char *p = write_tmp("[a]\ns = file\nn = 3\ne = one\n");
	char *argv1[] = { "toy", "--config", p, "--n", "4", "--e", "three",
		"--n", "6", NULL };
	char *argv2[] = { "toy", "--n", "40", NULL };
	char *argv3[] = { "toy", "extra", NULL };
	char *argv4[] = { "toy", "--check-config", p, "-h", NULL };
	char *argv5[] = { "toy", "--ue-only", "1", NULL };
	char *argv6[] = { "toy", "--help-man", NULL };
	struct cfg_cmd cmd;
	struct tcfg    c;
	char	       err[256] = "";

	assert_int_equal(cfg_cmdline(&t_tab, 9, argv1, &cmd), 0);
	assert_string_equal(cmd.file, p);
	assert_false(cmd.check_only);
	assert_int_equal(cfg_build(&t_tab, &c, cmd.file, &cmd, err,
			     sizeof(err)),
	    0);
	assert_int_equal(c.n, 6);
	assert_int_equal(c.e, 3);
	assert_string_equal(c.s, "file");
	t_free(&c);
	assert_int_equal(cfg_cmdline(&t_tab, 3, argv2, &cmd), 0);
	assert_int_equal(cfg_build(&t_tab, &c, cmd.file, &cmd, err,
			     sizeof(err)),
	    -1);
	assert_string_equal(err,
	    "n \"40\" is not a whole number in [1, 10] "
	    "(flag --n)");
	t_free(&c);
	assert_int_equal(cfg_cmdline(&t_tab, 2, argv3, &cmd), -1);
	assert_int_equal(cfg_cmdline(&t_tab, 4, argv4, &cmd), 0);
	assert_true(cmd.check_only);
	assert_true(cmd.help);
	/* role 1's flag is not one of role 2's program */
	assert_int_equal(cfg_cmdline(&t_tab, 3, argv5, &cmd), -1);
	assert_int_equal(cfg_cmdline(&t_tab, 2, argv6, &cmd), 0);
	assert_true(cmd.help_man);
	unlink(p);
}

/* cfg_main: 1 for a valid --check-config, -1 for a bad one. */
static void
test_tab_main(void **state)
{
	char *p = write_tmp("[a]\nn = 3\n");
	char *argv1[] = { "toy", "--check-config", p, NULL };
	char *argv2[] = { "toy", "--check-config", p, "--n", "x", NULL };
	char *argv3[] = { "toy", "--n", "2", NULL };
	struct cfg_cmd cmd;
	struct tcfg    c;

	assert_int_equal(cfg_main(&t_tab, &c, 3, argv1, &cmd), 1);
	t_free(&c);
	assert_int_equal(cfg_main(&t_tab, &c, 5, argv2, &cmd), -1);
	t_free(&c);
	assert_int_equal(cfg_main(&t_tab, &c, 3, argv3, &cmd), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.finished, 1);
	t_free(&c);
	unlink(p);
}

/* Text of --help or of the man page sections. */
static char *
doc(const struct cfg_table *t, bool man)
{
	char  *text = NULL;
	size_t n = 0;
	FILE  *f = open_memstream(&text, &n);

	assert_non_null(f);
	if (man)
		cfg_man(t, f);
	else
		cfg_help(t, f);
	fclose(f);
	return text;
}

/* "a-b" as roff writes it: "a\-b". */
static void
roff_name(char *out, size_t cap, const char *pre, const char *s)
{
	size_t n = strlen(pre);

	snprintf(out, cap, "%s", pre);
	for (; *s && n + 3 < cap; s++) {
		if (*s == '-')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

static bool
flag_applies(const struct cfg_table *t, const char *flag)
{
	for (size_t i = 0; i < t->nopts; i++)
		if (t->opts[i].flag && strcmp(t->opts[i].flag, flag) == 0 &&
		    cfg_opt_applies(t, &t->opts[i]))
			return true;
	return false;
}

/* Every key and every flag of a table is in --help and in the man page;
 * the flags of another role are not. */
static void
check_doc(const struct cfg_table *t)
{
	char *help = doc(t, false), *man = doc(t, true), want[128];

	assert_non_null(strstr(help, "--check-config"));
	assert_non_null(strstr(man, ".SH OPTIONS"));
	assert_non_null(strstr(man, ".SH CONFIGURATION"));
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];
		const char *key = strcmp(o->key, "*") ? o->key : "KEY";

		if (!cfg_opt_applies(t, o)) {
			if (o->flag && !flag_applies(t, o->flag)) {
				snprintf(want, sizeof(want), "--%s ", o->flag);
				assert_null(strstr(help, want));
			}
			continue;
		}
		snprintf(want, sizeof(want), "  %s = ", key);
		if (strstr(help, want) == NULL)
			fail_msg("%s --help lacks %s", t->prog, want);
		roff_name(want, sizeof(want), "\\fB", key);
		if (strstr(man, want) == NULL)
			fail_msg("%s man page lacks %s", t->prog, want);
		if (o->flag == NULL)
			continue;
		snprintf(want, sizeof(want), "--%s ", o->flag);
		if (strstr(help, want) == NULL)
			fail_msg("%s --help lacks %s", t->prog, want);
		roff_name(want, sizeof(want), "\\fB\\-\\-", o->flag);
		if (strstr(man, want) == NULL)
			fail_msg("%s man page lacks %s", t->prog, want);
	}
	free(help);
	free(man);
}

static void
test_doc(void **state)
{
	char *help = doc(&t_tab, false);

	assert_non_null(strstr(help, "usage: toy [options]\n\nA toy."));
	assert_non_null(strstr(help,
	    "  n = N, --n N\n        a number (1 to 10, "
	    "default 5)\n"));
	assert_non_null(
	    strstr(help, "  e = one|two|three, --e one|two|three\n"));
	assert_non_null(strstr(help, "[inst NAME]\n"));
	assert_non_null(strstr(help, "\nthe end\n"));
	free(help);
	check_doc(&t_tab);
	check_doc(&kmsd_cfg_table);
	check_doc(&sim_cfg_table);
	check_doc(&ikecfg_ue_table);
	check_doc(&ikecfg_n3iwf_table);
}

/* The daemons' tables: defaults, and errors the tests and users rely on. */
static void
test_daemon_tables(void **state)
{
	struct kmsd_config k;
	struct sim_config  s;
	struct ikecfg	   u;
	char		   err[256];

	assert_int_equal(cfg_defaults(&kmsd_cfg_table, &k, err, sizeof(err)),
	    0);
	assert_string_equal(k.listen_host, "127.0.0.1");
	assert_int_equal(k.listen_port, 7443);
	assert_int_equal(k.pool_low, 256);
	assert_int_equal(k.http.max_conns, 256);
	assert_string_equal(k.id, "kmsd");
	assert_int_equal(cfg_set(&kmsd_cfg_table, &k, "pool", "low", "12x", err,
			     sizeof(err)),
	    -1);
	assert_string_equal(err,
	    "low \"12x\" is not a whole number in "
	    "[0, 10000000]");
	assert_int_equal(cfg_set(&kmsd_cfg_table, &k, "upstream", "mode",
			     "quantum", err, sizeof(err)),
	    -1);
	assert_string_equal(err,
	    "mode \"quantum\" is not hardware or simulator");
	assert_int_equal(cfg_set(&kmsd_cfg_table, &k, "sae sae-a", "peers",
			     "sae-b", err, sizeof(err)),
	    0);
	assert_int_equal(k.nsaes, 1);
	assert_string_equal(k.saes[0].peers[0], "sae-b");
	kmsd_config_free(&k);

	assert_int_equal(cfg_defaults(&sim_cfg_table, &s, err, sizeof(err)), 0);
	assert_int_equal(s.listen_port, 8443);
	assert_true(s.key_rate == 1000000);
	assert_int_equal(s.transmitter, 0);
	assert_int_equal(cfg_set(&sim_cfg_table, &s, "link", "role",
			     "transmitter", err, sizeof(err)),
	    0);
	assert_int_equal(s.transmitter, 1);
	sim_config_free(&s);

	assert_int_equal(cfg_defaults(&ikecfg_ue_table, &u, err, sizeof(err)),
	    0);
	assert_int_equal(u.role, IKE_ROLE_UE);
	assert_int_equal(u.mode, IKE_MODE_QKD);
	assert_int_equal(u.dh_group, 14);
	assert_int_equal(u.port, 500);
	assert_string_equal(u.id, "ue.test");
	assert_int_equal(cfg_set(&ikecfg_ue_table, &u, "ike", "mode", "dh", err,
			     sizeof(err)),
	    -1);
	assert_string_equal(err, "mode \"dh\" is not psk, cert, qkd or qkd+dh");
	/* listen is the N3IWF's: ignored by the UE, port untouched */
	assert_int_equal(cfg_set(&ikecfg_ue_table, &u, "ike", "listen",
			     "127.0.0.1:9", err, sizeof(err)),
	    0);
	assert_int_equal(u.port, 500);
	ikecfg_free(&u);
	assert_int_equal(cfg_defaults(&ikecfg_n3iwf_table, &u, err,
			     sizeof(err)),
	    0);
	assert_string_equal(u.id, "n3iwf.test");
	assert_true(u.budget_src.burst == 65 && u.budget_src.rate == 1.3);
	assert_true(u.budget_all.burst == 1300 && u.budget_all.rate == 16);
	assert_int_equal(u.role, IKE_ROLE_N3IWF);
	ikecfg_free(&u);
}

static void
test_route(void **state)
{
	struct httpd_req  req;
	struct httpd_resp resp;
	char		  sae[ETSI_ID_MAX + 1];
	enum etsiapi_op	  op;
	static const struct {
		const char *m, *p;
		int	    ok, status;
	} v[] = {
		{ "GET", "/api/v1/keys/sae-b/status", 1, 0 },
		{ "POST", "/api/v1/keys/sae-b/enc_keys", 1, 0 },
		{ "GET", "/api/v1/keys/sae-b/dec_keys", 1, 0 },
		{ "POST", "/api/v1/keys/sae-b/status", 0, 405 },
		{ "DELETE", "/api/v1/keys/sae-b/enc_keys", 0, 405 },
		{ "GET", "/api/v1/keys//status", 0, 404 },
		{ "GET", "/api/v1/keys/sae-b/status/x", 0, 404 },
		{ "GET", "/api/v2/keys/sae-b/status", 0, 404 },
		{ "GET", "/api/v1/keys/sae-b", 0, 404 },
		{ "GET", "/", 0, 404 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&req, 0, sizeof(req));
		memset(&resp, 0, sizeof(resp));
		req.method = v[i].m;
		req.path = v[i].p;
		assert_int_equal(etsiapi_route(&req, sae, &op, &resp),
		    v[i].ok ? 0 : -1);
		if (v[i].ok)
			assert_string_equal(sae, "sae-b");
		else {
			assert_int_equal(resp.status, v[i].status);
			assert_non_null(strstr(resp.body, "\"message\""));
			free(resp.body);
		}
	}
}

/* ------------------------------------------------ defaults, once each */

struct dinst {
	unsigned w, v;
};

struct dcfg {
	char	     host[16];
	uint16_t     port;
	int	     seen;
	unsigned     n;
	struct dinst inst[2];
	char	    *names[2];
	size_t	     ninst;
};

#define D(m) CFG_AT(struct dcfg, m)
static void *
d_instance(void *cfg, const char *name, const char *arg, bool *fresh, char *err,
    size_t errlen)
{
	struct dcfg *c = cfg;

	*fresh = false;
	for (size_t i = 0; i < c->ninst; i++)
		if (strcmp(c->names[i], arg) == 0)
			return &c->inst[i];
	if (c->ninst == 2) {
		snprintf(err, errlen, "[d %s]: too many", arg);
		return NULL;
	}
	c->names[c->ninst] = strdup(arg);
	*fresh = true;
	return &c->inst[c->ninst++];
}

static void
d_init(void *cfg)
{
	memset(cfg, 0, sizeof(struct dcfg));
}

static void
d_free(struct dcfg *c)
{
	for (size_t i = 0; i < c->ninst; i++)
		free(c->names[i]);
}

/* A default for a seen-tracked key and one for an instance's key. */
static const struct cfg_opt d_opts[] = {
	{ "a", "addr", CFG_ADDR, D(host), "127.0.0.1:1", "addr",
	    .help = "an address", .off2 = offsetof(struct dcfg, port),
	    .seen = CFG_SEEN(struct dcfg, seen) },
	{ "d *", "w", CFG_UINT, CFG_AT(struct dinst, w), "7", NULL, .help = "w",
	    .min = 1, .max = 9 },
	{ "d *", "v", CFG_UINT, CFG_AT(struct dinst, v), NULL, NULL,
	    .help = "v", .min = 0, .max = 9 },
};
static const struct cfg_table d_tab = { .prog = "d",
	.usage = "d",
	.opts = d_opts,
	.nopts = sizeof(d_opts) / sizeof(d_opts[0]),
	.init = d_init,
	.instance = d_instance };

/* A default outside its own range. */
static const struct cfg_opt bad_opts[] = {
	{ "a", "n", CFG_UINT, D(n), "50", NULL, .help = "n", .min = 1,
	    .max = 10 },
};
static const struct cfg_table bad_tab = { .prog = "bad",
	.usage = "bad",
	.opts = bad_opts,
	.nopts = 1,
	.init = d_init };

/*
 * A default is not a setting: it marks nothing seen (only the file or a
 * flag does, and the flag wins over the file). An instance gets its
 * defaults once, when it is made, before its first setting (they never
 * land in the config struct). A default outside its range is refused.
 */
static void
test_tab_defaults_once(void **state)
{
	char *p = write_tmp("[a]\naddr = 10.0.0.1:5\n[d x]\nv = 3\n"
			    "[d y]\nw = 2\n");
	char *argv[] = { "d", "--config", p, "--addr", "10.0.0.2:6", NULL };
	struct cfg_cmd cmd;
	struct dcfg    c;
	char	       err[256];

	assert_int_equal(cfg_defaults(&d_tab, &c, err, sizeof(err)), 0);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 1);
	assert_int_equal(c.seen, 0);
	assert_int_equal(c.ninst, 0);
	d_free(&c);

	assert_int_equal(cfg_build(&d_tab, &c, p, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.host, "10.0.0.1");
	assert_int_equal(c.seen, 1);
	assert_int_equal(c.ninst, 2);
	assert_int_equal(c.inst[0].w, 7); /* its default */
	assert_int_equal(c.inst[0].v, 3);
	assert_int_equal(c.inst[1].w, 2); /* the file's, over the default */
	assert_int_equal(c.inst[1].v, 0);
	d_free(&c);

	assert_int_equal(cfg_cmdline(&d_tab, 5, argv, &cmd), 0);
	assert_int_equal(cfg_build(&d_tab, &c, cmd.file, &cmd, err,
			     sizeof(err)),
	    0);
	assert_string_equal(c.host, "10.0.0.2");
	assert_int_equal(c.port, 6);
	assert_int_equal(c.seen, 1);
	d_free(&c);

	assert_int_equal(cfg_defaults(&bad_tab, &c, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "n \"50\" is not a whole number in [1, 10] "
	    "(the default of [a] n)");
	unlink(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_first_error_kept),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_tab_defaults),
		cmocka_unit_test(test_tab_types),
		cmocka_unit_test(test_tab_sections),
		cmocka_unit_test(test_tab_file),
		cmocka_unit_test(test_tab_flags),
		cmocka_unit_test(test_tab_main),
		cmocka_unit_test(test_tab_defaults_once),
		cmocka_unit_test(test_doc),
		cmocka_unit_test(test_daemon_tables),
		cmocka_unit_test(test_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

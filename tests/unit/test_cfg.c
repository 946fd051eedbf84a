/* Unit tests for common/cfg (INI loading, typed setters, flags) and the
 * routing part of common/etsiapi. */
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

/* A toy config: [a] n = uint 1..10, [a] s = string, [b] anything fails. */
struct toy {
	unsigned	 n;
	char		*s;
	int		 calls;
};

static int
toy_set(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	struct toy	*t = ctx;

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
	static char	path[64];
	FILE		*f;

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
	struct toy	t = { 0, NULL, 0 };
	char		err[256] = "";
	char		*p = write_tmp("; comment\n[a]\nn = 7\ns = hello world\n");

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
	struct toy	t = { 0, NULL, 0 };
	char		err[256] = "";
	char		*p = write_tmp("[a]\nn = 12x\ns = later\nn = 3\n");

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
	struct toy	t = { 0, NULL, 0 };
	char		err[256] = "";
	char		*p;

	assert_int_equal(cfg_load("/nonexistent/x.ini", toy_set, &t, err,
	    sizeof(err)), -1);
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
	static char	 text[] = "[a]\nn = 4\ns = x y\nn = 0\n";
	struct toy	 t = { 0, NULL, 0 };
	char		 err[256] = "";
	FILE		*f;

	assert_non_null(f = fmemopen(text, strlen(text), "r"));
	assert_int_equal(cfg_load_file(f, "mem.ini", toy_set, &t, err,
	    sizeof(err)), -1);
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
	unsigned	u = 0;
	char		host[16], err[128], *list[4] = { NULL };
	size_t		n = 0;
	uint16_t	port;
	struct etsiapi_map map[2];
	size_t		nmap = 0;

	assert_int_equal(cfg_uint(&u, "k", "10", 1, 10, err, sizeof(err)), 0);
	assert_int_equal(u, 10);
	assert_int_equal(cfg_uint(&u, "k", "11", 1, 10, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "k \"11\""));
	assert_int_equal(cfg_addr(host, sizeof(host), &port, "listen",
	    "127.0.0.1:0", err, sizeof(err)), 0);
	assert_int_equal(port, 0);
	assert_int_equal(cfg_addr(host, sizeof(host), &port, "listen",
	    "nohost:1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"nohost:1\""));
	assert_int_equal(cfg_id_list(list, &n, 4, "saes", "a, b\tc", err,
	    sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[2], "c");
	assert_int_equal(cfg_id_list(list, &n, 2, "saes", "a,b,c", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "\"c\""));
	assert_int_equal(cfg_id_list(list, &n, 4, "saes", "ok,bad/id", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "bad/id"));
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn1", "sae-1", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn2", "sae 2?", err,
	    sizeof(err)), -1);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn2", "sae-2", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg_map_add(map, &nmap, 2, "cn3", "sae-3", err,
	    sizeof(err)), -1);
	assert_string_equal(etsiapi_identity(map, nmap, "cn2"), "sae-2");
	assert_string_equal(etsiapi_identity(map, nmap, "other"), "other");
	for (size_t i = 0; i < nmap; i++) {
		free(map[i].cn);
		free(map[i].sae);
	}
}

static const struct cfg_flag toy_flags[] = {
	{ "n", "a", "n", "a number" },
	{ "s", "a", "s", "a string" },
};

static void
test_flags(void **state)
{
	char		*argv1[] = { "prog", "--config", "f.ini", "--n", "4", NULL };
	char		*argv2[] = { "prog", "--n", "40", NULL };
	char		*argv3[] = { "prog", "extra", NULL };
	struct cfg_args	a;
	struct toy	t = { 0, NULL, 0 };
	char		err[256] = "";

	assert_int_equal(cfg_args_scan("prog", 5, argv1, toy_flags, 2, &a), 0);
	assert_string_equal(a.file, "f.ini");
	assert_int_equal(a.check_only, 0);
	assert_int_equal(cfg_args_apply(5, argv1, toy_flags, 2, toy_set, &t,
	    err, sizeof(err)), 0);
	assert_int_equal(t.n, 4);
	assert_int_equal(cfg_args_apply(3, argv2, toy_flags, 2, toy_set, &t,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "(flag --n)"));
	assert_int_equal(cfg_args_scan("prog", 2, argv3, toy_flags, 2, &a), -1);
}

static void
test_route(void **state)
{
	struct httpd_req	req;
	struct httpd_resp	resp;
	char			sae[ETSI_ID_MAX + 1];
	enum etsiapi_op		op;
	static const struct { const char *m, *p; int ok, status; } v[] = {
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_first_error_kept),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

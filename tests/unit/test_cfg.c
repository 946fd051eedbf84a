/* Unit tests for common/cfg (INI loading, typed setters, the daemons'
 * tables; the table layer itself is test_cfg_tab.c) and the routing part
 * of common/etsiapi. */
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
#include "tests/unit/testutil.h"

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

/* A config file with text, in /tmp (the caller unlinks it). */
static char *
write_tmp(const char *text)
{
	return testutil_write_tmp("test_cfg", text);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_first_error_kept),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_daemon_tables),
		cmocka_unit_test(test_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

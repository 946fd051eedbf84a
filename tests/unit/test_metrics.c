/*
 * kmsd/metrics.c: exact values after known increments, cumulative histogram
 * buckets, label escaping, the output bound, and well-formed exposition
 * text. Counters are process-wide, so tests compare before and after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "kmsd/metrics.h"

static const char *const le[] = { "0.0005", "0.001", "0.0025", "0.005", "0.01",
	"0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf" };
#define NLE  (sizeof(le) / sizeof(le[0]))
#define HIST "kmsd_upstream_request_duration_seconds"

/* The whole exposition as a NUL-terminated string (free()). */
static char *
render(const struct metrics_pool_gauge *g, size_t ng, int up)
{
	struct buf b;
	char	  *s;

	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b, g, ng, up), 0);
	assert_int_equal(buf_add(&b, "", 1), 0);
	s = strdup((char *)b.data);
	assert_non_null(s);
	buf_free(&b);
	return s;
}

/* Value of one series (name with labels, as rendered); -1 if absent. */
static double
val(const char *text, const char *series)
{
	size_t	    n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static double
now_val(const char *series)
{
	char  *s = render(NULL, 0, 0);
	double v = val(s, series);

	free(s);
	return v;
}

static void
test_requests(void **state)
{
	const char *enc200 =
	    "kmsd_requests_total{endpoint=\"enc_keys\",code=\"200\"}";
	const char *dec_other =
	    "kmsd_requests_total{endpoint=\"dec_keys\",code=\"other\"}";
	const char *st401 =
	    "kmsd_requests_total{endpoint=\"status\",code=\"401\"}";
	const char *keys = "kmsd_keys_served_total{endpoint=\"enc_keys\"}";
	double a = now_val(enc200), b = now_val(dec_other), c = now_val(st401);
	double k = now_val(keys);

	(void)state;
	assert_true(a >= 0 && b >= 0 && c >= 0 && k >= 0);
	metrics_request(M_ENC, 200);
	metrics_request(M_ENC, 200);
	metrics_request(M_ENC, 200);
	metrics_request(M_DEC, 418);
	metrics_request(M_STATUS, 401);
	metrics_keys_served(M_ENC, 13);
	metrics_keys_served(M_ENC, 13);
	assert_true(now_val(enc200) == a + 3);
	assert_true(now_val(dec_other) == b + 1);
	assert_true(now_val(st401) == c + 1);
	assert_true(now_val(keys) == k + 26);
}

static void
test_fresh_exact(void **state)
{
	char *s;

	(void)state;
	/* Nothing in this binary touches the "other" endpoint's counters. */
	metrics_request(M_OTHER, 404);
	metrics_request(M_OTHER, 404);
	metrics_upstream_error(M_OTHER);
	s = render(NULL, 0, 1);
	assert_non_null(strstr(s,
	    "\nkmsd_requests_total{endpoint=\"other\",code=\"404\"} 2\n"));
	assert_non_null(strstr(s,
	    "\nkmsd_requests_total{endpoint=\"other\",code=\"405\"} 0\n"));
	assert_non_null(
	    strstr(s, "\nkmsd_upstream_errors_total{endpoint=\"other\"} 1\n"));
	assert_non_null(strstr(s, "\nkmsd_upstream_up 1\n"));
	free(s);
	s = render(NULL, 0, 0);
	assert_non_null(strstr(s, "\nkmsd_upstream_up 0\n"));
	free(s);
}

static void
test_pool(void **state)
{
	struct metrics_pool_gauge g[2] = {
		{ "sae-a", "sae-b", 42, 100, 1000 },
		{ "sae-a", "sae-x", 0, 10, 20 },
	};
	const char *hit = "kmsd_pool_requests_total{result=\"hit\"}";
	const char *miss = "kmsd_pool_requests_total{result=\"miss\"}";
	double	    h = now_val(hit), m = now_val(miss);
	char	   *s;

	(void)state;
	metrics_pool_hit(1);
	metrics_pool_hit(1);
	metrics_pool_hit(0);
	s = render(g, 2, 1);
	assert_true(val(s, hit) == h + 2);
	assert_true(val(s, miss) == m + 1);
	assert_non_null(strstr(s,
	    "\nkmsd_pool_keys{master=\"sae-a\",slave=\"sae-b\"} 42\n"));
	assert_non_null(strstr(s,
	    "\nkmsd_pool_keys{master=\"sae-a\",slave=\"sae-x\"} 0\n"));
	assert_non_null(strstr(s,
	    "\nkmsd_pool_low_watermark{master=\"sae-a\",slave=\"sae-b\"} 100\n"));
	assert_non_null(strstr(s,
	    "\nkmsd_pool_high_watermark{master=\"sae-a\",slave=\"sae-x\"} 20\n"));
	free(s);
}

static void
hist_now(double *b, double *sum, double *count)
{
	char *s = render(NULL, 0, 0), name[128];

	for (size_t i = 0; i < NLE; i++) {
		snprintf(name, sizeof(name), HIST "_bucket{le=\"%s\"}", le[i]);
		b[i] = val(s, name);
		assert_true(b[i] >= 0);
		assert_true(i == 0 || b[i] >= b[i - 1]); /* cumulative */
	}
	*sum = val(s, HIST "_sum");
	*count = val(s, HIST "_count");
	assert_true(*count == b[NLE - 1]);
	free(s);
}

static void
test_histogram(void **state)
{
	/* 0.0003 -> le 0.0005; 0.003 -> 0.005; 0.7 -> 1; 0.5 on the bound
	 * -> 0.5; 10 -> +Inf. */
	static const int want[NLE] = { 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 4, 4, 4,
		5 };
	const char	*ok =
	    "kmsd_upstream_requests_total{endpoint=\"enc_keys\",result=\"ok\"}";
	const char *bad =
	    "kmsd_upstream_requests_total{endpoint=\"dec_keys\",result=\"error\"}";
	double b0[NLE], b1[NLE], s0, s1, c0, c1, ok0, bad0;

	(void)state;
	hist_now(b0, &s0, &c0);
	ok0 = now_val(ok);
	bad0 = now_val(bad);
	metrics_upstream(M_ENC, 1, 0.0003);
	metrics_upstream(M_ENC, 1, 0.003);
	metrics_upstream(M_DEC, 0, 0.7);
	metrics_upstream(M_DEC, 0, 0.5);
	metrics_upstream(M_STATUS, 1, 10);
	hist_now(b1, &s1, &c1);
	for (size_t i = 0; i < NLE; i++)
		assert_true(b1[i] - b0[i] == want[i]);
	assert_true(c1 - c0 == 5);
	assert_true(s1 - s0 > 11.2032 && s1 - s0 < 11.2034);
	assert_true(now_val(ok) == ok0 + 2);
	assert_true(now_val(bad) == bad0 + 2);
}

static void
test_escape(void **state)
{
	struct metrics_pool_gauge g = { "a\\b\"c\nd", "plain", 7, 1, 2 };
	char			 *s;

	(void)state;
	s = render(&g, 1, 1);
	assert_non_null(strstr(s,
	    "\nkmsd_pool_keys{master=\"a\\\\b\\\"c\\nd\",slave=\"plain\"} 7\n"));
	free(s);
}

/* Every sample belongs to a family announced by # HELP and # TYPE. */
static void
test_format(void **state)
{
	struct metrics_pool_gauge g = { "sae-a", "sae-b", 1, 2, 3 };
	char *s, *line, *save = NULL, fam[128] = "", type[128], *e;

	(void)state;
	s = render(&g, 1, 1);
	assert_true(strlen(s) > 0 && s[strlen(s) - 1] == '\n');
	for (line = strtok_r(s, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %127s %127s", fam, type) == 2) {
			assert_true(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0);
			continue;
		}
		assert_true(line[0] != '#');
		assert_int_equal(strncmp(line, fam, strlen(fam)), 0);
		e = strrchr(line, ' ');
		assert_non_null(e);
		strtod(e + 1, &e);
		assert_true(*e == '\0');
	}
	free(s);
}

static void
test_bound(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 200);
	assert_int_equal(buf_add(&b, "x", 1), 0);
	assert_int_equal(metrics_render(&b, NULL, 0, 1), -1);
	assert_int_equal(b.len, 1); /* nothing half-written */
	buf_free(&b);
}

static void *
bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		metrics_request(M_STATUS, 503);
		metrics_upstream(M_OTHER, 1, 0.0001);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	const char *r = "kmsd_requests_total{endpoint=\"status\",code=\"503\"}";
	const char *u =
	    "kmsd_upstream_requests_total{endpoint=\"other\",result=\"ok\"}";
	double	  r0 = now_val(r), u0 = now_val(u);
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(now_val(r) == r0 + 400000);
	assert_true(now_val(u) == u0 + 400000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_exact),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

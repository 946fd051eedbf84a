/*
 * ike/ratelimit: the token bucket (burst, refill, all-or-nothing takes,
 * clock steps back, unlimited), "BURST:RATE" parsing, the keyed table
 * (keys apart, eviction never beyond a fresh bucket, bounded probing) and
 * the log limiter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ike/ratelimit.h"

#define S 1000000000ull /* one second in ns */

static void
test_bucket(void **state)
{
	struct ike_tb_cfg c = { 39, 13 }; /* 3 connections, 1 per second */
	struct ike_tb	  b;
	uint64_t	  t = 5 * S;

	(void)state;
	ike_tb_init(&b, &c, t);
	assert_int_equal(ike_tb_take(&b, &c, 13, t), 1);
	assert_int_equal(ike_tb_take(&b, &c, 13, t), 1);
	assert_int_equal(ike_tb_take(&b, &c, 13, t), 1);
	assert_int_equal(ike_tb_take(&b, &c, 13, t), 0); /* burst spent */
	assert_int_equal(ike_tb_take(&b, &c, 1, t), 0);
	/* 0.5 s: 6.5 tokens, not 13: still refused, nothing taken. */
	assert_int_equal(ike_tb_take(&b, &c, 13, t + S / 2), 0);
	assert_true(ike_tb_level(&b, &c, t + S / 2) > 6.4);
	assert_int_equal(ike_tb_take(&b, &c, 13, t + S), 1);
	assert_int_equal(ike_tb_take(&b, &c, 13, t + S), 0);
	/* A long pause refills to the burst, never beyond it. */
	assert_true(ike_tb_level(&b, &c, t + 1000 * S) == 39);
	assert_int_equal(ike_tb_take(&b, &c, 40, t + 1000 * S), 0);
	assert_int_equal(ike_tb_take(&b, &c, 39, t + 1000 * S), 1);
	/* A clock that steps back adds nothing. */
	assert_int_equal(ike_tb_take(&b, &c, 1, t), 0);
	assert_int_equal(ike_tb_take(&b, &c, 1, t + 1000 * S), 0);
}

static void
test_rate_zero_and_unlimited(void **state)
{
	struct ike_tb_cfg once = { 13, 0 }, off = { 0, 0 };
	struct ike_tb	  b;

	(void)state;
	ike_tb_init(&b, &once, 0);
	assert_int_equal(ike_tb_take(&b, &once, 13, 0), 1);
	assert_int_equal(ike_tb_take(&b, &once, 1, 3600 * S),
	    0); /* never refills */
	ike_tb_init(&b, &off, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ike_tb_take(&b, &off, 13, 0), 1);
}

static void
test_parse(void **state)
{
	struct ike_tb_cfg c;
	char		  err[256];

	(void)state;
	assert_int_equal(ike_tb_parse("b", "65:1.3", &c, err, sizeof(err)), 0);
	assert_true(c.burst == 65 && c.rate > 1.29 && c.rate < 1.31);
	assert_int_equal(ike_tb_parse("b", "13:0", &c, err, sizeof(err)), 0);
	assert_int_equal(ike_tb_parse("b", "off", &c, err, sizeof(err)), 0);
	assert_true(ike_tb_unlimited(&c));
	static const char *bad[] = { "", "65", "65:", ":1", "0:1", "-1:1",
		"65:-1", "65:1x", "x:1", "65;1", "1e10:1", "nan:1", "65:nan" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(ike_tb_parse("qkd_budget_src", bad[i], &c, err,
				     sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "qkd_budget_src"));
		if (bad[i][0] != '\0') { /* the whole value is quoted */
			char q[32];

			snprintf(q, sizeof(q), "\"%s\"", bad[i]);
			assert_non_null(strstr(err, q));
		}
	}
}

static void
test_table(void **state)
{
	struct ike_tb_cfg c = { 26, 0 }; /* 2 draws per key, no refill */
	struct ike_rl	  rl;
	char		  k[32];

	(void)state;
	assert_int_equal(ike_rl_init(&rl, &c, 100), 0);
	assert_int_equal(rl.cap, 128);
	assert_int_equal(ike_rl_take(&rl, "10.0.0.1", 13, 0), 1);
	assert_int_equal(ike_rl_take(&rl, "10.0.0.1", 13, 0), 1);
	assert_int_equal(ike_rl_take(&rl, "10.0.0.1", 13, 0), 0);
	assert_true(ike_rl_level(&rl, "10.0.0.1", 0) < 1);
	/* Another key has its own bucket. */
	assert_true(ike_rl_level(&rl, "10.0.0.2", 0) == 26);
	assert_int_equal(ike_rl_take(&rl, "10.0.0.2", 13, 0), 1);
	/*
	 * 10,000 other keys through a 128-slot table: the table never grows;
	 * a key pushed out by the churn comes back with a fresh bucket, never
	 * more (which is why the per-source and global buckets exist), and
	 * every key gets its first bucket.
	 */
	unsigned long taken = 0;

	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 10000; i++) {
			snprintf(k, sizeof(k), "sae-%d", i);
			taken += 13 * (unsigned long)ike_rl_take(&rl, k, 13, 0);
		}
	assert_true(taken <= 10000ul * 26 * 3);
	assert_true(taken >= 10000ul * 26);
	assert_int_equal(rl.cap, 128);
	/* A key longer than the slot: compared on its kept prefix, no overflow. */
	char longk[300];

	memset(longk, 'a', sizeof(longk) - 1);
	longk[sizeof(longk) - 1] = '\0';
	assert_int_equal(ike_rl_take(&rl, longk, 13, 0), 1);
	ike_rl_free(&rl);
	ike_rl_free(&rl); /* twice is fine */
}

static void
test_table_refill(void **state)
{
	struct ike_tb_cfg c = { 13, 13 };
	struct ike_rl	  rl;

	(void)state;
	assert_int_equal(ike_rl_init(&rl, &c, 16), 0);
	assert_int_equal(ike_rl_take(&rl, "x", 13, 0), 1);
	assert_int_equal(ike_rl_take(&rl, "x", 13, S / 2), 0);
	assert_int_equal(ike_rl_take(&rl, "x", 13, S), 1);
	ike_rl_free(&rl);
}

static void
test_loglim(void **state)
{
	struct ike_loglim l = { S, 0, 0 };
	unsigned long	  held = 99;

	(void)state;
	assert_int_equal(ike_loglim_ok(&l, 10 * S, &held), 1);
	assert_int_equal(held, 0);
	for (int i = 0; i < 500; i++)
		assert_int_equal(ike_loglim_ok(&l, 10 * S + (uint64_t)i * 1000,
				     &held),
		    0);
	assert_int_equal(ike_loglim_ok(&l, 11 * S, &held), 1);
	assert_int_equal(held, 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_rate_zero_and_unlimited),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_refill),
		cmocka_unit_test(test_loglim),
	};

	log_init("test_ike_ratelimit", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * common/idset: hashing (keyed, stable, never 0, every length), the
 * multiset (repeats counted, one removed at a time), growth past the
 * first table, and removal against a reference model (random adds and
 * removes, with colliding home slots forced through a tiny table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idset.h"

static void
test_hash(void **state)
{
	static const char *const strs[] = {
		"",
		"a",
		"key-0001",
		"key-00012",
		"1234567",
		"12345678",
		"123456789",
		"0123456789abcdef",
		"0123456789abcdef0",
	};
	struct idset a, b;
	size_t	     i, j, same = 0;

	(void)state;
	assert_int_equal(idset_init(&a), 0);
	assert_int_equal(idset_init(&b), 0);
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		uint64_t h = idset_hash(&a, strs[i]);

		assert_true(h != 0);
		assert_true(h == idset_hash(&a, strs[i])); /* stable */
		same += h == idset_hash(&b, strs[i]);	   /* keyed */
		for (j = 0; j < i; j++)
			assert_true(h != idset_hash(&a, strs[j]));
	}
	assert_true(same == 0);
	/* A string ends at its NUL. */
	assert_true(idset_hash(&a, "abc") == idset_hash(&a, "abc\0def"));
	idset_free(&a);
	idset_free(&b);
	idset_free(&a); /* zeroed: fine */
}

static void
test_multiset(void **state)
{
	struct idset s;
	uint64_t     h, g;

	(void)state;
	assert_int_equal(idset_init(&s), 0);
	h = idset_hash(&s, "key-1");
	g = idset_hash(&s, "key-2");
	assert_false(idset_has(&s, h));
	assert_int_equal(idset_add(&s, h), 0);
	assert_int_equal(idset_add(&s, h), 0);
	assert_int_equal(idset_add(&s, g), 0);
	assert_int_equal(s.n, 3);
	assert_true(idset_has(&s, h));
	idset_del(&s, h);
	assert_true(idset_has(&s, h)); /* one instance left */
	idset_del(&s, h);
	assert_false(idset_has(&s, h));
	idset_del(&s, h); /* absent: no change */
	assert_int_equal(s.n, 1);
	assert_true(idset_has(&s, g));
	idset_free(&s);
}

static void
test_growth(void **state)
{
	struct idset s;
	char	     id[32];
	size_t	     i, n = 20000;

	(void)state;
	assert_int_equal(idset_init(&s), 0);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%zu", i);
		assert_int_equal(idset_add(&s, idset_hash(&s, id)), 0);
		assert_true(2 * s.n <= s.cap);
	}
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%zu", i);
		assert_true(idset_has(&s, idset_hash(&s, id)));
	}
	for (i = 0; i < n; i += 2) {
		snprintf(id, sizeof(id), "id-%zu", i);
		idset_del(&s, idset_hash(&s, id));
	}
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%zu", i);
		assert_true(idset_has(&s, idset_hash(&s, id)) == (i % 2 == 1));
	}
	assert_int_equal(s.n, n / 2);
	idset_free(&s);
}

/* Random adds and removes of hashes crowded into few home slots (low bits
 * drawn from a small range), checked against counts after every step:
 * backward-shift deletion must never lose a member. */
static void
test_model(void **state)
{
	enum { NV = 64 };
	uint64_t     vals[NV], x = 7;
	int	     count[NV] = { 0 };
	struct idset s;

	(void)state;
	assert_int_equal(idset_init(&s), 0);
	for (size_t i = 0; i < NV; i++)
		vals[i] = ((i + 1) << 20) | (i % 5); /* homes 0..4 */
	for (int step = 0; step < 20000; step++) {
		size_t v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = (size_t)(x % NV);
		if ((x >> 32) % 3 != 0) {
			assert_int_equal(idset_add(&s, vals[v]), 0);
			count[v]++;
		} else {
			idset_del(&s, vals[v]);
			if (count[v] > 0)
				count[v]--;
		}
		for (size_t k = 0; k < NV; k++)
			assert_true(idset_has(&s, vals[k]) == (count[k] > 0));
	}
	idset_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_multiset),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

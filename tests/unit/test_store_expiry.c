/*
 * Key store: time to live of assigned keys and the cap per (master, slave)
 * pair, on both backends.
 */
#include "common/log.h"
#include "common/timeutil.h"
#include "tests/unit/test_store_fx.h"

/*
 * Time to live and the cap per (master, slave): a key is served before its
 * TTL, refused after it and wiped by store_expire (counted); a pair at its
 * cap gets no new assignment (nothing taken from the chunks) until its
 * slave fetches or its keys expire. Same on both backends; the file backend
 * also counts the pair again after a restart and holds no expired row.
 */
static void
test_expiry_cap(void **state)
{
	struct fx	   *f = *state;
	struct store	   *s = fx_open(f);
	const char	   *sl[] = { "sae-b" }, *sl2[] = { "sae-x" };
	uint8_t		    ids[16 * 16], keys[16 * KB], missing[16][16];
	uint64_t	    ords[16];
	struct store_assign a;
	struct store_stats  st;
	struct etsi_keys    out;
	size_t		    n;

	mk_chunks(16, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 16, ids, keys), 0);
	cur_ids = ids, cur_n = 16, cur_seq = 1;
	store_set_limits(s, 1, 5);
	assign(s, ids, ids, 3, 1, KB, sl, 1, STORE_OK);
	/* 3 waiting + 3 > 5: refused, and no chunk used. */
	memset(&a, 0, sizeof(a));
	ords_of(ids + 3 * 16, 3, ords);
	a = (struct store_assign){ .nkeys = 3,
		.ids = ids + 3 * 16,
		.size_bytes = KB,
		.per = 1,
		.chunks = ids + 3 * 16,
		.ords = ords,
		.master = "sae-a",
		.slaves = sl,
		.nslaves = 1,
		.missing = missing };
	assert_int_equal(store_assign(s, &a, 1), 0);
	assert_int_equal(a.result, STORE_FULL);
	assert_int_equal(a.waiting, 3);
	assert_int_equal(a.full_slave, 0);
	assert_int_equal(store_count(s), 13);
	/* Another pair is not held back by this one. */
	assign(s, ids + 3 * 16, ids + 3 * 16, 3, 1, KB, sl2, 1, STORE_OK);
	assign(s, ids + 6 * 16, ids + 6 * 16, 2, 1, KB, sl, 1,
	    STORE_OK); /* 5 */
	assign(s, ids + 8 * 16, ids + 8 * 16, 1, 1, KB, sl, 1, STORE_FULL);
	/* A fetch makes room. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids, 1, &out), STORE_OK);
	etsi_keys_free(&out);
	assign(s, ids + 8 * 16, ids + 8 * 16, 1, 1, KB, sl, 1, STORE_OK);
	assert_int_equal(store_assigned_count(s), 8);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_full, 2);
	assert_int_equal(st.expired, 0);

	if (f->file) {
		/* After a restart the pair still counts 5. */
		store_close(s);
		s = fx_open(f);
		store_set_limits(s, 1, 5);
		assign(s, ids + 9 * 16, ids + 9 * 16, 1, 1, KB, sl, 1,
		    STORE_FULL);
	}
	/* Before the TTL: served. Nothing to wipe yet. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16, 1, &out),
	    STORE_OK);
	assert_memory_equal(out.v[0].key, keys + KB, KB);
	etsi_keys_free(&out);
	assert_int_equal(store_expire(s, time_real_ms(), &n), 0);
	assert_int_equal(n, 0);

	time_sleep_ns(1100000000ull);
	/* After it: refused even before the sweep, then wiped and counted. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 2 * 16, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-x", "sae-a", ids + 3 * 16, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(store_expire(s, time_real_ms(), &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(store_assigned_count(s), 0);
	store_get_stats(s, &st);
	assert_int_equal(st.expired, 7);
	if (f->file)
		assert_int_equal(db_int(f->db, "SELECT count(*) FROM akeys"),
		    0);
	/* The pair is empty again: 5 fit. */
	assign(s, ids + 9 * 16, ids + 9 * 16, 5, 1, KB, sl, 1, STORE_OK);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expiry_cap, setup_mem,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_cap, setup_file,
		    teardown),
	};

	log_init("test_store_expiry",
	    getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

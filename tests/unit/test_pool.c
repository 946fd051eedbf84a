/*
 * kmsd/pool, the basics: round trip, all or nothing, pairs, TTL, add
 * errors, restarts, the key ID set, the refusals at open, and the timings
 * the design depends on. Leases, crashes and threads: test_pool_lease.c;
 * restored databases: test_pool_rollback.c; sealing: test_pool_seal.c.
 */
#include "tests/unit/pool_fx.h"
#include "kmsd/pool_int.h"

#include <sqlite3.h>

static void
test_round_trip(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 40, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 40);
	take_expect(p, "sae-a", "sae-b", 13, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 27);
	take_expect(p, "sae-a", "sae-b", 13, 13);
	take_expect(p, "sae-a", "sae-b", 13, 26);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 1);
	/* All or nothing: the last key stays. */
	take_short(p, "sae-a", "sae-b", 13);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 1);
	take_expect(p, "sae-a", "sae-b", 1, 39);
	take_short(p, "sae-a", "sae-b", 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	/* Requests larger than a lease. */
	add(p, "sae-a", "sae-b", 100, 50, now, 0);
	take_expect(p, "sae-a", "sae-b", 45, 100);
	take_short(p, "sae-a", "sae-b", 6);
	take_expect(p, "sae-a", "sae-b", 5, 145);
	pool_close(p);
	pool_close(NULL);
}

static void
test_all_or_nothing(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 5, now, 0);
	take_short(p, "sae-a", "sae-b", 6);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 5);
	/* More keys arrive: the short lease is still served first. */
	add(p, "sae-a", "sae-b", 5, 30, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 35);
	take_expect(p, "sae-a", "sae-b", 6, 0);
	take_expect(p, "sae-a", "sae-b", 29, 6);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	pool_close(p);
}

static void
test_pairs(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 20, now, 0);
	add(p, "sae-a", "sae-c", 20, 20, now, 0);
	add(p, "sae-x", "sae-b", 40, 20, now, 0);
	take_expect(p, "sae-a", "sae-c", 3, 20);
	take_expect(p, "sae-x", "sae-b", 3, 40);
	take_expect(p, "sae-a", "sae-b", 3, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 17);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 17);
	assert_int_equal(pool_count(p, "sae-x", "sae-b"), 17);
	/* Reversed roles and unknown pairs get nothing. */
	assert_int_equal(pool_count(p, "sae-b", "sae-a"), 0);
	take_short(p, "sae-b", "sae-a", 1);
	take_short(p, "sae-q", "sae-r", 1);
	take_expect(p, "sae-a", "sae-c", 17, 23);
	take_short(p, "sae-a", "sae-c", 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 17);
	pool_close(p);
}

static void
test_ttl(void **state)
{
	struct fx   *f = *state;
	struct pool *p;
	uint64_t     now = time_real_ms();

	f->cfg.ttl_s = 60;
	p = fx_open(f);
	/* Expired on disk: never counted, never served. */
	add(p, "sae-a", "sae-b", 0, 5, now - 120000, 0);
	add(p, "sae-a", "sae-b", 5, 5, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 5);
	take_short(p, "sae-a", "sae-b", 6);
	take_expect(p, "sae-a", "sae-b", 5, 5);
	/* Expired rows dropped at lease time. */
	add(p, "sae-a", "sae-b", 10, 5, now - 120000, 0);
	add(p, "sae-a", "sae-b", 15, 5, now, 0);
	take_expect(p, "sae-a", "sae-b", 5, 15);
	/* pool_expire counts disk and lease. */
	add(p, "sae-a", "sae-c", 20, 3, now - 120000, 0);
	add(p, "sae-a", "sae-c", 23, 30, now, 0);
	take_expect(p, "sae-a", "sae-c", 1, 23); /* 15 leased, 14 on disk */
	assert_int_equal(pool_expire(p, now), 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 29);
	assert_int_equal(pool_expire(p, now + 61000), 29);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 0);
	take_short(p, "sae-a", "sae-c", 1);
	pool_close(p);

	/* A leased key that expires while in memory is not served. */
	f->cfg.ttl_s = 1;
	p = fx_open(f);
	add(p, "sae-a", "sae-d", 100, 4, time_real_ms() - 700, 0);
	take_expect(p, "sae-a", "sae-d", 1, 100);
	assert_int_equal(pool_count(p, "sae-a", "sae-d"), 3);
	time_sleep_ns(500 * 1000000ull);
	assert_int_equal(pool_count(p, "sae-a", "sae-d"), 0);
	take_short(p, "sae-a", "sae-d", 1);
	pool_close(p);
}

static void
test_add_errors(void **state)
{
	struct fx	*f = *state;
	struct pool	*p = fx_open(f);
	uint64_t	 now = time_real_ms();
	struct etsi_keys k;

	add(p, "sae-a", "sae-b", 0, 20, now, 0);
	/* Wrong size: the whole batch is refused. */
	mk_keys(&k, 100, 3);
	k.v[1].len = 16;
	assert_int_equal(pool_add(p, "sae-a", "sae-b", &k, now), -1);
	k.v[1].len = KB;
	/* Repeated in the batch. */
	snprintf(k.v[2].id, sizeof(k.v[2].id), "%s", k.v[0].id);
	assert_int_equal(pool_add(p, "sae-a", "sae-b", &k, now), -1);
	etsi_keys_free(&k);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 20);
	/* Already on disk (even for another pair), and already leased. */
	add(p, "sae-a", "sae-c", 19, 2, now, -1);
	take_expect(p, "sae-a", "sae-b", 1, 0); /* 1..15 leased */
	add(p, "sae-a", "sae-b", 5, 1, now, -1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 19);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 0);
	/* Bad SAE IDs. */
	add(p, "", "sae-b", 200, 1, now, -1);
	add(p, "sae-a", "sae/b", 200, 1, now, -1);
	/* Nothing of the refused batches is there. */
	take_expect(p, "sae-a", "sae-b", 19, 1);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
}

static void
test_reopen(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();

	add_rows(p, "sae-a", "sae-b", 0, 50, now, 1);
	add_rows(p, "sae-a", "sae-c", 50, 10, now, 1);
	take_expect(p, "sae-a", "sae-b", 5, 0); /* leases 0..15 */
	pool_close(p);
	/* A graceful close puts the unserved rest of the lease back on disk,
	 * after the rows already there; nothing served comes back. */
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 45);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 10);
	take_expect(p, "sae-a", "sae-b", 34, 16);
	take_expect(p, "sae-a", "sae-b", 11, 5);
	take_short(p, "sae-a", "sae-b", 1);
	take_expect(p, "sae-a", "sae-c", 10, 50);
	pool_close(p);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	pool_close(p);
}

/* The ID set across growth, retirement and reopen: every ID still in the
 * pool (on disk, prefetched, or in the current lease) is refused again. */
static void
test_id_set(void **state)
{
	struct fx   *f = *state;
	static int   served[NKEYS];
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();
	size_t	     i, left;

	memset(served, 0, sizeof(served));
	for (i = 0; i < 3000; i += 500)
		add_rows(p, "sae-a", "sae-b", i, 500, now, 1);
	for (left = 1700; left > 0; left -= 17) {
		take_ids(p, 17, served);
		assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	}
	for (i = 0; i < 3000; i++)
		add(p, "sae-a", "sae-b", i, 1, now, i < 1700 ? 0 : -1);
	/* The served IDs came back as new keys (a KME may reuse them once
	 * they left the pool); the others were refused. */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3000);
	pool_close(p);
	/* After a restart: every key, also the leases in memory that the
	 * close put back, is still refused again. */
	p = fx_open(f);
	for (i = 0; i < 3000; i += 97)
		add(p, "sae-a", "sae-b", i, 1, now, -1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3000);
	pool_close(p);
}

/* ------------------------------------------------------------ ids codec */

struct ids_got {
	char   id[4][ETSI_KEY_ID_MAX + 1];
	size_t n;
};

static void
ids_got_one(void *arg, size_t i, const char *id)
{
	struct ids_got *g = arg;

	assert_true(i == g->n && i < 4);
	snprintf(g->id[i], sizeof(g->id[i]), "%s", id);
	g->n++;
}

/* The ids column: Jansson reads what the hand encoder of schema 3 wrote
 * (its escapes too), and refuses anything but 1..1024 strings of 1..64
 * bytes, or another count than the row's. */
static void
test_ids_codec(void **state)
{
	static const struct {
		const char *text;
		size_t	    n; /* the row's count; 0: any */
		int	    rc;
		const char *first; /* the first ID if rc == 0 */
	} c[] = {
		{ "[\"key-0000\"]", 1, 0, "key-0000" },
		{ "[\"a\\\"b\",\"c\\\\d\",\"e\\u0001f\"]", 3, 0, "a\"b" },
		{ "[\"x\",\"y\"]", 0, 0, "x" },
		{ "[\"x\",\"y\"]", 1, -1, NULL },		  /* count */
		{ "[]", 0, -1, NULL }, { "[\"\"]", 0, -1, NULL }, /* empty ID */
		{ "[\"a\\u0000b\"]", 0, -1, NULL },		  /* NUL */
		{ "[1]", 0, -1, NULL }, { "{\"a\":\"b\"}", 0, -1, NULL },
		{ "[\"x\"] x", 0, -1, NULL }, /* trailing */
		{ "[\"x\"", 0, -1, NULL },    /* truncated */
		{ "[\"0123456789012345678901234567890123456789012345678901234"
		  "567890123\"]",
		    0, 0, NULL }, /* 64 bytes */
		{ "[\"0123456789012345678901234567890123456789012345678901234"
		  "5678901234\"]",
		    0, -1, NULL }, /* 65 bytes */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct ids_got g = { .n = 0 };

		assert_int_equal(pool_ids_decode(c[i].text, strlen(c[i].text),
				     c[i].n, ids_got_one, &g),
		    c[i].rc);
		if (c[i].rc == -1)
			assert_int_equal(g.n, 0);
		if (c[i].first != NULL)
			assert_string_equal(g.id[0], c[i].first);
	}
	{
		const char    *t = "[\"a\\\"b\",\"c\\\\d\",\"e\\u0001f\"]";
		struct ids_got g = { .n = 0 };

		assert_int_equal(pool_ids_decode(t, strlen(t), 3, ids_got_one,
				     &g),
		    0);
		assert_string_equal(g.id[1], "c\\d");
		assert_string_equal(g.id[2], "e\001f");
	}
}

/* -------------------------------------------------------------- refusals */

/* Another key size than the database's, and bad config values. */
static void
test_refuse_config(void **state)
{
	static const struct {
		unsigned key_bytes, lease_size, ttl_s;
	} bad[] = {
		{ KB, LEASE, 0 },   /* no lifetime */
		{ KB, 0, 3600 },    /* no lease */
		{ 0, LEASE, 3600 }, /* no key size */
	};
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	char	     err[256];

	add(p, "sae-a", "sae-b", 0, 5, time_real_ms(), 0);
	pool_close(p);
	/* Another key size. */
	f->cfg.key_bytes = 16;
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, f->db));
	assert_non_null(strstr(err, "32-byte"));
	assert_non_null(strstr(err, "16"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pool_cfg c = f->cfg;

		c.key_bytes = bad[i].key_bytes;
		c.lease_size = bad[i].lease_size;
		c.ttl_s = bad[i].ttl_s;
		assert_null(pool_open(&c, err, sizeof(err)));
	}
}

/* A database of an older layout: refused, telling the operator to delete
 * it. */
static void
test_refuse_layout(void **state)
{
	static const char *const old[] = {
		/* Schema 1: one row per key, in a table keys. */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB); INSERT INTO meta "
		"VALUES('key_bytes', 32); CREATE TABLE keys(id INTEGER PRIMARY "
		"KEY, master TEXT, slave TEXT, key_id TEXT, fetched_ms INTEGER, "
		"blob BLOB);",
		/* Schema 3: rows sealed with random nonces under the KEK. */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB); INSERT INTO meta "
		"VALUES('key_bytes', 32), ('schema', 3), ('next_seq', 1); "
		"CREATE TABLE batches(id INTEGER PRIMARY KEY, master TEXT NOT "
		"NULL, slave TEXT NOT NULL, fetched_ms INTEGER NOT NULL, n "
		"INTEGER NOT NULL, ids TEXT NOT NULL, blob BLOB NOT NULL);",
		/* No schema version. */
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB); INSERT INTO meta "
		"VALUES('key_bytes', 32);",
	};
	struct fx *f = *state;
	char	   err[256];

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		struct pool_cfg c = f->cfg;
		char		path[160];
		sqlite3	       *db;

		snprintf(path, sizeof(path), "%s/old%zu.db", f->dir, i);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, old[i], NULL, NULL, NULL),
		    SQLITE_OK);
		sqlite3_close(db);
		c.db_path = path;
		assert_null(pool_open(&c, err, sizeof(err)));
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "delete"));
		assert_non_null(strstr(err, "schema 4"));
	}
}

/* ------------------------------------------------------------- timings */

/* Not a pass/fail test: prints the costs the design depends on. */
static void
test_timing(void **state)
{
	struct fx	*f = *state;
	struct etsi_keys out;
	struct pool	*p;
	uint64_t	 t0, t_lease = 0, t_refill = 0;
	size_t		 n_lease = 0, n_refill = 0, i, left = 0;

	f->cfg.lease_size = 256;
	p = fx_open(f);
	for (size_t b = 0; b < NKEYS; b += 1000)
		add(p, "sae-a", "sae-b", b, 1000, time_real_ms(), 0);
	for (i = 0; i < NKEYS / 13; i++) {
		/* Mirrors the pool: a take refills when the lease is short. */
		int refill = left < 13;

		if (refill)
			left += 256;
		left -= 13;

		t0 = time_mono_ns();
		assert_int_equal(pool_take(p, "sae-a", "sae-b", 13, &out), 0);
		t0 = time_mono_ns() - t0;
		assert_int_equal(out.n, 13);
		if (refill) {
			t_refill += t0;
			n_refill++;
		} else {
			t_lease += t0;
			n_lease++;
		}
		etsi_keys_free(&out);
	}
	print_message("# pool_take(13) from the lease: %.2f us avg over %zu; "
		      "with a 256-key refill: %.1f us avg over %zu\n",
	    (double)t_lease / (double)n_lease / 1e3, n_lease,
	    (double)t_refill / (double)n_refill / 1e3, n_refill);
	pool_close(p);

	/* With the leases taken by pool_prefetch, as kmsd's refill thread
	 * (a new database: the close put the first one's leases back). */
	snprintf(f->db, sizeof(f->db), "%s/pool2.db", f->dir);
	p = fx_open(f);
	for (size_t b = 0; b < NKEYS; b += 1000)
		add(p, "sae-a", "sae-c", b, 1000, time_real_ms(), 0);
	t_lease = t_refill = 0;
	n_lease = n_refill = 0;
	for (i = 0; i < NKEYS / 13 - 60; i++) {
		t0 = time_mono_ns();
		assert_int_equal(pool_prefetch(p, "sae-a", "sae-c"), 0);
		t_refill += time_mono_ns() - t0;
		t0 = time_mono_ns();
		assert_int_equal(pool_take(p, "sae-a", "sae-c", 13, &out), 0);
		t_lease += time_mono_ns() - t0;
		assert_int_equal(out.n, 13);
		etsi_keys_free(&out);
	}
	print_message("# pool_take(13) with background leases: %.2f us avg; "
		      "pool_prefetch: %.1f us avg per take\n",
	    (double)t_lease / (double)i / 1e3,
	    (double)t_refill / (double)i / 1e3);
	pool_close(p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_round_trip),
		FX_TEST(test_all_or_nothing),
		FX_TEST(test_pairs),
		FX_TEST(test_ttl),
		FX_TEST(test_add_errors),
		FX_TEST(test_reopen),
		FX_TEST(test_id_set),
		cmocka_unit_test(test_ids_codec),
		FX_TEST(test_refuse_config),
		FX_TEST(test_refuse_layout),
		FX_TEST(test_timing),
	};

	if (fx_init(argc, argv))
		return crash_child_main(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

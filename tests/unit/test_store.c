/*
 * Key store: the same operations against the in-memory backend and the
 * SQLite backend, plus what only the file backend promises (sealed on disk,
 * survives a restart, refuses a readable or another KEK, an old layout).
 * Sealing and tampering: test_store_seal.c; expiry and caps:
 * test_store_expiry.c.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/test_store_fx.h"

static void
test_chunks(void **state)
{
	struct fx	 *f = *state;
	struct store	 *s = fx_open(f);
	uint8_t		  ids[10 * 16], keys[10 * KB], drop[3] = { 0, 1, 0 };
	struct store_resv r;
	size_t		  avail, d;

	mk_chunks(10, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 10, ids, keys), 0);
	/* A duplicate ID is skipped. */
	assert_int_equal(store_add_chunks(s, 1, 1, ids, keys), 0);
	assert_int_equal(store_count(s), 10);
	assert_int_equal(store_last_seq(s), 1);

	assert_int_equal(store_reserve(s, 3, 0, &r, &avail), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(store_count(s), 7);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(r.ids[i], ids + 16 * i, 16);
		assert_memory_equal(r.keys + i * KB, keys + i * KB, KB);
	}
	assert_int_equal(store_putback(s, &r, drop), 0);
	store_resv_free(&r);
	assert_int_equal(store_count(s), 9);

	/* Oldest end again: chunk 0 then 2 (1 was dropped), then 3. */
	assert_int_equal(store_reserve(s, 3, 0, &r, &avail), 0);
	assert_memory_equal(r.ids[0], ids, 16);
	assert_memory_equal(r.ids[1], ids + 32, 16);
	assert_memory_equal(r.ids[2], ids + 48, 16);
	assert_int_equal(store_putback(s, &r, NULL), 0);
	store_resv_free(&r);

	/* Newest end. */
	assert_int_equal(store_reserve(s, 2, 1, &r, &avail), 0);
	assert_memory_equal(r.ids[0], ids + 9 * 16, 16);
	assert_memory_equal(r.ids[1], ids + 8 * 16, 16);
	store_resv_free(&r);
	assert_int_equal(store_count(s), 7);

	/* Not enough: nothing taken. */
	assert_int_equal(store_reserve(s, 8, 0, &r, &avail), 0);
	assert_int_equal(avail, 7);
	assert_int_equal(r.n, 0);
	assert_int_equal(store_count(s), 7);

	/* Later batches dropped on reconnect; a new peer store drops all. */
	mk_chunks(4, ids, keys);
	assert_int_equal(store_add_chunks(s, 2, 4, ids, keys), 0);
	assert_int_equal(store_count(s), 11);
	assert_int_equal(store_drop_after(s, 1, &d), 0);
	assert_int_equal(d, 4);
	assert_int_equal(store_count(s), 7);
	{
		uint8_t g[16];

		memset(g, 7, sizeof(g));
		assert_int_equal(store_peer_gen(s, g, &d), 0);
		assert_int_equal(d, 7);
		assert_int_equal(store_peer_gen(s, g, &d), 0);
		assert_int_equal(d, 0);
	}
	assert_int_equal(store_count(s), 0);
	store_close(s);
}

static void
test_assign_take(void **state)
{
	struct fx	*f = *state;
	struct store	*s = fx_open(f);
	const char	*sl[] = { "sae-b", "sae-x" };
	uint8_t		 ids[8 * 16], keys[8 * KB], kid[2 * 16], bad[2 * 16];
	struct etsi_keys out;

	mk_chunks(8, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 8, ids, keys), 0);
	cur_ids = ids, cur_n = 8, cur_seq = 1;
	assert_int_equal(RAND_bytes(kid, sizeof(kid)), 1);

	/* A missing chunk: nothing changes. */
	memcpy(bad, ids, 16);
	memset(bad + 16, 0xee, 16);
	assign(s, bad, kid, 1, 2, 40, sl, 1, STORE_MISSING);
	assert_int_equal(store_count(s), 8);
	/* The same chunk twice is missing too. */
	memcpy(bad + 16, ids, 16);
	assign(s, bad, kid, 1, 2, 40, sl, 1, STORE_MISSING);
	assert_int_equal(store_count(s), 8);

	/* Two keys of 40 bytes from chunks 0,1 and 2,3, for two slaves. */
	assign(s, ids, kid, 2, 2, 40, sl, 2, STORE_OK);
	assert_int_equal(store_count(s), 4);
	assert_int_equal(store_assigned_count(s), 2);
	/* Chunks are gone: a second assignment of them fails. */
	assign(s, ids, kid, 1, 2, 40, sl, 1, STORE_MISSING);

	assert_int_equal(take(s, "sae-z", "sae-a", kid, 2, &out), STORE_UNAUTH);
	assert_int_equal(take(s, "sae-b", "sae-q", kid, 2, &out),
	    STORE_NOTFOUND);
	/* All or nothing: one unknown ID -> nothing delivered. */
	memcpy(bad, kid, 16);
	memset(bad + 16, 0x55, 16);
	assert_int_equal(take(s, "sae-b", "sae-a", bad, 2, &out),
	    STORE_NOTFOUND);
	/* A repeated ID is not delivered twice. */
	memcpy(bad + 16, kid, 16);
	assert_int_equal(take(s, "sae-b", "sae-a", bad, 2, &out),
	    STORE_NOTFOUND);

	assert_int_equal(take(s, "sae-b", "sae-a", kid, 2, &out), STORE_OK);
	assert_int_equal(out.v[0].len, 40);
	assert_memory_equal(out.v[0].key, keys, 40);
	assert_memory_equal(out.v[1].key, keys + 2 * KB, 40);
	etsi_keys_free(&out);
	assert_int_equal(take(s, "sae-b", "sae-a", kid, 2, &out),
	    STORE_NOTFOUND);
	assert_int_equal(store_assigned_count(s), 2);
	assert_int_equal(take(s, "sae-x", "sae-a", kid, 1, &out), STORE_OK);
	assert_memory_equal(out.v[0].key, keys, 40);
	etsi_keys_free(&out);
	assert_int_equal(store_assigned_count(s), 1);
	assert_int_equal(take(s, "sae-x", "sae-a", kid, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-x", "sae-a", kid + 16, 1, &out),
	    STORE_OK);
	etsi_keys_free(&out);
	assert_int_equal(store_assigned_count(s), 0);

	/* key_size keys under their chunk ID, a key ID already in use refused. */
	assign(s, ids + 4 * 16, ids + 4 * 16, 1, 1, KB, sl, 1, STORE_OK);
	assign(s, ids + 5 * 16, ids + 4 * 16, 1, 1, KB, sl, 1, STORE_DUPID);
	assert_int_equal(store_count(s), 3);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 4 * 16, 1, &out),
	    STORE_OK);
	assert_memory_equal(out.v[0].key, keys + 4 * KB, KB);
	etsi_keys_free(&out);
	store_close(s);
}

/* Many threads race for the same keys: each is delivered exactly once. */
struct racer {
	struct store  *s;
	const uint8_t *ids;
	int	       got;
};

static void *
racer_main(void *arg)
{
	struct racer	*r = arg;
	struct etsi_keys out;
	uint8_t		 valid[1] = { 1 };

	for (int i = 0; i < 50; i++) {
		etsi_keys_alloc(&out, 1);
		if (store_take(r->s, "sae-b", "sae-a", r->ids + 16 * i, valid,
			1, &out) == STORE_OK)
			r->got++;
		etsi_keys_free(&out);
	}
	return NULL;
}

static void
test_race(void **state)
{
	struct fx    *f = *state;
	struct store *s = fx_open(f);
	const char   *sl[] = { "sae-b" };
	uint8_t	      ids[50 * 16], keys[50 * KB];
	struct racer  r[4];
	pthread_t     th[4];
	int	      total = 0;

	mk_chunks(50, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 50, ids, keys), 0);
	cur_ids = ids, cur_n = 50, cur_seq = 1;
	assign(s, ids, ids, 50, 1, KB, sl, 1, STORE_OK);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ .s = s, .ids = ids };
		pthread_create(&th[i], NULL, racer_main, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += r[i].got;
	}
	assert_int_equal(total, 50);
	store_close(s);
}

static int
file_has(const char *path, const uint8_t *needle, size_t n)
{
	FILE	*fp = fopen(path, "rb");
	uint8_t *data;
	long	 len;
	int	 found;

	if (fp == NULL)
		return 0;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	data = malloc((size_t)len + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	found = memmem(data, (size_t)len, needle, n) != NULL;
	free(data);
	return found;
}

static void
test_file_sealed_and_durable(void **state)
{
	struct fx	*f = *state;
	struct store	*s = fx_open(f);
	const char	*sl[] = { "sae-b" };
	uint8_t		 ids[20 * 16], keys[20 * KB];
	char		 wal[160];
	struct etsi_keys out;
	struct stat	 st;

	assert_int_equal(stat(f->kek, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	mk_chunks(20, ids, keys);
	assert_int_equal(store_add_chunks(s, 5, 20, ids, keys), 0);
	cur_ids = ids, cur_n = 20, cur_seq = 5;
	assign(s, ids, ids, 4, 1, KB, sl, 1, STORE_OK);
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	for (size_t i = 0; i < 20; i++) {
		assert_false(file_has(f->db, keys + i * KB, 12));
		assert_false(file_has(wal, keys + i * KB, 12));
	}
	assert_true(file_has(f->db, ids, 16) || file_has(wal, ids, 16));
	/* Key 0 delivered before the restart. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids, 1, &out), STORE_OK);
	etsi_keys_free(&out);
	store_close(s);

	s = fx_open(f);
	assert_int_equal(store_count(s), 16);
	assert_int_equal(store_assigned_count(s), 3);
	assert_int_equal(store_last_seq(s), 5);
	assert_int_equal(take(s, "sae-b", "sae-a", ids, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16, 3, &out),
	    STORE_OK);
	assert_memory_equal(out.v[2].key, keys + 3 * KB, KB);
	etsi_keys_free(&out);
	store_close(s);
	for (size_t i = 0; i < 20; i++) {
		assert_false(file_has(f->db, keys + i * KB, 12));
		assert_false(file_has(wal, keys + i * KB, 12));
	}
}

static void
test_file_refusals(void **state)
{
	struct fx    *f = *state;
	struct store *s = fx_open(f);
	char	      err[256];
	int	      fd;

	store_close(s);
	/* Another chunk size. */
	assert_null(store_open(f->db, f->kek, 64, err, sizeof(err)));
	assert_non_null(strstr(err, "256 bits"));
	/* A KEK others can read. */
	assert_int_equal(chmod(f->kek, 0640), 0);
	assert_null(store_open(f->db, f->kek, KB, err, sizeof(err)));
	assert_non_null(strstr(err, "expected 0600"));
	assert_int_equal(chmod(f->kek, 0600), 0);
	/* Another KEK. */
	unlink(f->kek);
	fd = open(f->kek, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	assert_null(store_open(f->db, f->kek, KB, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	/* A short KEK. */
	fd = open(f->kek, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "short", 5), 5);
	close(fd);
	assert_null(store_open(f->db, f->kek, KB, err, sizeof(err)));
	assert_non_null(strstr(err, "32 bytes"));
	/* No KEK at all with a database. */
	assert_null(store_open(f->db, NULL, KB, err, sizeof(err)));
}

/* A database of the layout whose nonce counter lived in the file: refused. */
static void
test_file_old_layout(void **state)
{
	struct fx *f = *state;
	char	   err[512];
	int	   fd = open(f->db, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	close(fd);
	db_sql(f->db, "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB)");
	db_sql(f->db, "INSERT INTO meta(k, v) VALUES('nonce_hwm', 1048577)");
	assert_null(store_open(f->db, f->kek, KB, err, sizeof(err)));
	assert_non_null(strstr(err, "layout 1"));
	assert_non_null(strstr(err, "move the file away"));
	/* Nothing was changed in it. */
	assert_int_equal(
	    db_int(f->db,
		"SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
	    1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chunks, setup_mem,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chunks, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_assign_take, setup_mem,
		    teardown),
		cmocka_unit_test_setup_teardown(test_assign_take, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_race, setup_mem, teardown),
		cmocka_unit_test_setup_teardown(test_race, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_sealed_and_durable,
		    setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_refusals, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_old_layout,
		    setup_file, teardown),
	};

	log_init("test_store", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

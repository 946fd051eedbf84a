/*
 * kmsd/pool, sealing: nothing of a key in clear on disk, private files,
 * rows edited on disk refused, and the KEK refusals at open.
 */
#include "tests/unit/pool_fx.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/rand.h>
#include <sqlite3.h>

static int
file_contains(const char *path, const uint8_t *needle, size_t n)
{
	FILE	*in = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t	 len = 0, cap = 0, r;
	int	 found = 0;

	if (in == NULL)
		return 0; /* no -wal file: nothing in it */
	do {
		if (len + 65536 > cap) {
			cap = (len + 65536) * 2;
			uint8_t *grown = realloc(data, cap);

			if (grown == NULL)
				free(data);
			assert_non_null(grown);
			data = grown;
		}
		r = fread(data + len, 1, 65536, in);
		len += r;
	} while (r > 0);
	fclose(in);
	found = len >= n && memmem(data, len, needle, n) != NULL;
	free(data);
	return found;
}

static void
check_no_clear(struct fx *f, size_t nkeys)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char			 path[160];

	for (size_t s = 0; s < 3; s++) {
		snprintf(path, sizeof(path), "%s%s", f->db, suffix[s]);
		for (size_t i = 0; i < nkeys; i++)
			assert_false(file_contains(path, key_bytes[i], KB));
		/* Also no 8-byte prefix of any key (partial leaks). */
		for (size_t i = 0; i < nkeys; i++)
			assert_false(file_contains(path, key_bytes[i], 8));
	}
}

static void
test_no_clear_bytes(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	struct stat  st;

	add(p, "sae-a", "sae-b", 0, 200, time_real_ms(), 0);
	take_expect(p, "sae-a", "sae-b", 20, 0);
	check_no_clear(f, 200); /* WAL live */
	pool_close(p);
	check_no_clear(f, 200); /* checkpointed */
	/* Files are private. */
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
}

static int
count_cb(void *arg, int ncol, char **v, char **names)
{
	(void)ncol;
	(void)names;
	*(long *)arg = strtol(v[0], NULL, 10);
	return 0;
}

/* A row edited on disk (moved to another pair, made younger, its blob, key
 * IDs or key count changed) is dropped whole, never served. */
static void
test_tampered_row(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();
	sqlite3	    *db;
	long	     n = -1;

	add_rows(p, "sae-a", "sae-b", 0, 5, now - 5000, 1);
	add(p, "sae-a", "sae-b", 5, 3, now - 5000, 0); /* one row: 5..7 */
	add(p, "sae-a", "sae-b", 8, 3, now - 4000, 0); /* one row: 8..10 */
	pool_close(p);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	/* The view lists every key ID. */
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM keys", count_cb,
			     &n, NULL),
	    SQLITE_OK);
	assert_int_equal(n, 11);
	assert_int_equal(
	    sqlite3_exec(db,
		"UPDATE batches SET slave = 'sae-evil' "
		"WHERE ids = '[\"key-0000\"]';"
		"UPDATE batches SET fetched_ms = fetched_ms + 1000 "
		"WHERE ids = '[\"key-0001\"]';"
		"UPDATE batches SET blob = x'00' WHERE ids = '[\"key-0002\"]';"
		"UPDATE batches SET ids = '[\"key-0009\"]' "
		"WHERE ids = '[\"key-0003\"]';"
		"UPDATE batches SET n = 2, ids = '[\"key-0005\",\"key-0006\"]' "
		"WHERE n = 3 AND ids LIKE '%key-0005%';",
		NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	p = fx_open(f);
	take_short(p, "sae-a", "sae-evil", 1);
	take_short(p, "sae-a", "sae-b", 5);
	take_expect(p, "sae-a", "sae-b", 1, 4);
	take_expect(p, "sae-a", "sae-b", 3, 8);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
}

/* A KEK readable by others, and another KEK than the database's. */
static void
test_refuse_kek(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint8_t	     other[32];
	char	     err[256];
	int	     fd;

	add(p, "sae-a", "sae-b", 0, 5, time_real_ms(), 0);
	pool_close(p);
	/* A KEK readable by others. */
	assert_int_equal(chmod(f->kek, 0644), 0);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, f->kek));
	assert_non_null(strstr(err, "0644"));
	assert_int_equal(chmod(f->kek, 0600), 0);
	/* Another KEK. */
	assert_int_equal(unlink(f->kek), 0);
	assert_int_equal(RAND_bytes(other, sizeof(other)), 1);
	fd = open(f->kek, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, other, sizeof(other)),
	    (ssize_t)sizeof(other));
	close(fd);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
}

/* Two processes (here: two pool objects) sharing one database: each seals
 * in its own epoch, and every row opens for either and after a restart. */
static void
test_shared(void **state)
{
	struct fx   *f = *state;
	struct pool *p1 = fx_open(f), *p2 = fx_open(f), *p3;

	add(p1, "sae-a", "sae-b", 0, 10, time_real_ms(), 0);
	add(p2, "sae-a", "sae-b", 10, 10, time_real_ms(), 0);
	p3 = fx_open(f);
	add(p3, "sae-a", "sae-b", 20, 10, time_real_ms(), 0);
	take_expect(p1, "sae-a", "sae-b", 30, 0);
	pool_close(p3);
	pool_close(p2);
	pool_close(p1);
	p1 = fx_open(f);
	add(p1, "sae-a", "sae-b", 30, 10, time_real_ms(), 0);
	pool_close(p1);
	p1 = fx_open(f);
	take_expect(p1, "sae-a", "sae-b", 10, 30);
	pool_close(p1);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_no_clear_bytes),
		FX_TEST(test_tampered_row),
		FX_TEST(test_refuse_kek),
		FX_TEST(test_shared),
	};

	if (fx_init(argc, argv))
		return crash_child_main(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

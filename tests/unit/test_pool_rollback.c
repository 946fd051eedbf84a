/*
 * kmsd/pool against restored databases: an older copy of the database
 * restored over the pool: the rows leased since are refused (wiped,
 * counted), the others served once; a lost, unprivate or edited mark file;
 * a row whose sequence number was edited. One test in steps: each step
 * starts from the state the one before left.
 */
#include "tests/unit/pool_fx.h"

#include <sys/stat.h>

#include <sqlite3.h>

struct rb {
	struct fx *f;
	char	   copy[160], hwm[160], wal[160];
};

static int served[NKEYS];

static void
copy_file(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp -p %s %s", from, to);
	assert_int_equal(system(cmd), 0);
}

static struct pool_stats
stats_of(struct pool *p)
{
	struct pool_stats st;

	pool_stats(p, &st);
	return st;
}

/* The copy back over the database (no -wal), then opened. */
static struct pool *
restore_open(struct rb *r)
{
	copy_file(r->copy, r->f->db);
	unlink(r->wal);
	return fx_open(r->f);
}

/* Keys 0..49 in single rows; the copy taken after a checkpoint. */
static void
step_copy(struct rb *r)
{
	struct pool *p = fx_open(r->f);
	struct stat  st;

	add_rows(p, "sae-a", "sae-b", 0, 50, time_real_ms(), 1);
	pool_close(p); /* checkpointed: one file */
	copy_file(r->f->db, r->copy);
	/* The mark file is private. */
	assert_int_equal(stat(r->hwm, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
}

static void
step_restore(struct rb *r)
{
	struct pool *p = fx_open(r->f);

	/* Serve 0..19 (one lease of 20 rows), then lease 20..35 and serve
	 * 20..21; the close puts 22..35 back as new rows. */
	take_ids(p, 20, served);
	take_ids(p, 2, served);
	pool_close(p);
	/* Restore the old copy: 0..35 are back, below the mark. */
	p = restore_open(r);
	assert_int_equal(stats_of(p).rolled_back_keys, 36);
	assert_int_equal(stats_of(p).rolled_back_rows, 36);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 14);
	take_ids(p, 14, served);
	take_short(p, "sae-a", "sae-b", 1);
	/* New keys after the restore get sequences above the mark: they
	 * survive a restart. */
	add_rows(p, "sae-a", "sae-b", 100, 5, time_real_ms(), 1);
	pool_close(p);
	p = fx_open(r->f);
	assert_int_equal(stats_of(p).rolled_back_keys, 0);
	take_expect(p, "sae-a", "sae-b", 5, 100);
	pool_close(p);
	for (size_t i = 0; i < 50; i++)
		assert_true(served[i] <= 1);
}

/* The same copy again, once more: nothing comes back; then the mark file
 * lost: every row of the database is refused. */
static void
step_again_and_lost(struct rb *r)
{
	struct pool *p = restore_open(r);

	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	assert_int_equal(stats_of(p).rolled_back_keys, 50);
	pool_close(p);
	copy_file(r->copy, r->f->db);
	unlink(r->wal);
	assert_int_equal(unlink(r->hwm), 0);
	p = fx_open(r->f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	assert_int_equal(stats_of(p).rolled_back_keys, 50);
	add_rows(p, "sae-a", "sae-b", 200, 3, time_real_ms(), 1);
	pool_close(p);
}

/* A process that served keys and was killed (SIGKILL), then the copy
 * restored: its keys are refused, as its mark was durable before it
 * served them. */
static void
step_killed(struct rb *r)
{
	static const size_t never[][2] = { { 300 + 5, 300 + LEASE - 1 } };
	struct etsi_keys    out;
	struct pool	   *p;

	memset(served, 0, sizeof(served));
	p = fx_open(r->f);
	take_expect(p, "sae-a", "sae-b", 3, 200); /* empty it */
	add_rows(p, "sae-a", "sae-b", 300, 40, time_real_ms(), 1);
	pool_close(p);
	copy_file(r->f->db, r->copy);
	crash_kill(r->f, 5, "kill", served);
	p = restore_open(r);
	assert_int_equal(stats_of(p).rolled_back_keys, LEASE);
	assert_int_equal(pool_take(p, "sae-a", "sae-b", 40 - LEASE, &out), 0);
	assert_int_equal(out.n, 40 - LEASE);
	for (size_t i = 0; i < out.n; i++)
		served[key_num(out.v[i].id)]++;
	etsi_keys_free(&out);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
	served_check(served, 300, 340, never, 1);
}

/* Flips one byte of the mark file. */
static void
flip_byte(const char *path, long off)
{
	FILE   *fp = fopen(path, "r+b");
	uint8_t b;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	assert_int_equal(fread(&b, 1, 1, fp), 1);
	b ^= 1;
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	assert_int_equal(fwrite(&b, 1, 1, fp), 1);
	fclose(fp);
}

/* A mark file readable by others, or edited: refused, naming it. */
static void
step_mark_file(struct rb *r)
{
	struct pool *p;
	char	     err[256];

	assert_int_equal(chmod(r->hwm, 0644), 0);
	assert_null(pool_open(&r->f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, r->hwm));
	assert_non_null(strstr(err, "0644"));
	assert_int_equal(chmod(r->hwm, 0600), 0);
	p = fx_open(r->f);
	add_rows(p, "sae-a", "sae-b", 200, 3, time_real_ms(), 1);
	pool_close(p);
	flip_byte(r->hwm, 20);
	assert_null(pool_open(&r->f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, r->hwm));
	assert_non_null(strstr(err, "authenticate"));
	flip_byte(r->hwm, 20);
}

/* A row's sequence moved above the mark: does not authenticate. */
static void
step_seq_edited(struct rb *r)
{
	struct pool *p;
	sqlite3	    *db;

	assert_int_equal(sqlite3_open(r->f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
			     "UPDATE batches SET id = id + 1000 "
			     "WHERE ids = '[\"key-0200\"]'",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	p = fx_open(r->f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3);
	take_expect(p, "sae-a", "sae-b", 2, 201);
	take_short(p, "sae-a", "sae-b", 1);
	assert_int_equal(stats_of(p).corrupt_keys, 1);
	pool_close(p);
}

static void
test_rollback(void **state)
{
	struct rb r = { .f = *state };

	memset(served, 0, sizeof(served));
	snprintf(r.copy, sizeof(r.copy), "%s/copy.db", r.f->dir);
	snprintf(r.hwm, sizeof(r.hwm), "%s.hwm", r.f->db);
	snprintf(r.wal, sizeof(r.wal), "%s-wal", r.f->db);
	step_copy(&r);
	step_restore(&r);
	step_again_and_lost(&r);
	step_killed(&r);
	step_mark_file(&r);
	step_seq_edited(&r);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_rollback),
	};

	if (fx_init(argc, argv))
		return crash_child_main(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

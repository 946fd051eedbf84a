/*
 * common/sealep: sealing epochs over SQLite. Round trip; a wrong AAD, epoch
 * or KEK refused; counter nonces unique within an epoch and keys fresh
 * across epochs (a reopened or copied database never reuses a key).
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
#include "common/seal.h"
#include "common/sealep.h"
#include "common/sqldb.h"

static const char *const users[] = { "recs" };

static const struct sealep_conf conf = {
	.table = "epochs",
	.info = "test sealep record key",
	.check_info = "test sealep kek check",
	.users = users,
	.nusers = 1,
	.aad_max = 256,
};

struct fx {
	char	       dir[64];
	char	       path[128];
	uint8_t	       kek[SEAL_KEK_LEN];
	struct sqldb   d;
	struct sealep *e;
};

/* Opens the database at path in d and a context (fresh: records the KEK
 * check); NULL if the KEK check fails. */
static struct sealep *
db_open(struct sqldb *d, const char *path, const uint8_t kek[SEAL_KEK_LEN],
    int fresh)
{
	char	       err[256];
	struct sealep *e;

	assert_int_equal(sqldb_open(d, path, "test", err, sizeof(err)), 0);
	assert_int_equal(
	    sqldb_exec(d,
		SQLDB_META_SCHEMA
		"CREATE TABLE IF NOT EXISTS recs(ep INTEGER, ct BLOB);"),
	    0);
	assert_int_equal(sqldb_meta_init(d, err, sizeof(err)), 0);
	e = sealep_new(d, &conf, kek, err, sizeof(err));
	assert_non_null(e);
	if (fresh)
		assert_int_equal(sealep_kek_set(e), 0);
	else if (!sealep_kek_ok(e)) {
		sealep_free(e);
		return NULL;
	}
	assert_int_equal(sealep_start(e, err, sizeof(err)), 0);
	return e;
}

static struct sealep *
fx_open(struct fx *f, const uint8_t kek[SEAL_KEK_LEN], int fresh)
{
	return db_open(&f->d, f->path, kek, fresh);
}

static void
fx_close(struct fx *f)
{
	sealep_free(f->e);
	f->e = NULL;
	sqldb_close(&f->d);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_sealep.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	memset(f->kek, 0x5a, sizeof(f->kek));
	f->e = fx_open(f, f->kek, 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char	   cmd[128];

	fx_close(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
aad(struct sealep *e, uint64_t id, const char *owner)
{
	sealep_aad_begin(e, "test rec v1\n");
	sealep_aad_u64(e, id);
	sealep_aad_u32(e, 7);
	sealep_aad_u16(e, 3);
	sealep_aad_str(e, owner);
	sealep_aad_bytes(e, "xyz", 3);
}

static void
test_round_trip(void **state)
{
	struct fx *f = *state;
	uint8_t	   pt[32], ct[32 + SEAL_OVERHEAD], out[32];

	memset(pt, 0xa5, sizeof(pt));
	assert_int_equal(sealep_epoch(f->e), 1);
	assert_true(sealep_room(f->e, 1));
	aad(f->e, 42, "sae-a");
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), ct), 0);
	aad(f->e, 42, "sae-a");
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), 0);
	assert_memory_equal(pt, out, sizeof(pt));
	/* Short blob, unknown epoch, any flipped byte: refused. */
	assert_int_equal(sealep_open(f->e, 1, ct, SEAL_OVERHEAD - 1, out), -1);
	assert_int_equal(sealep_open(f->e, 2, ct, sizeof(ct), out), -1);
	ct[SEAL_NONCE_LEN] ^= 1;
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), -1);
}

static void
test_wrong_aad(void **state)
{
	struct fx	    *f = *state;
	static const uint8_t big[300];
	uint8_t		     pt[16] = { 1 }, ct[16 + SEAL_OVERHEAD], out[16];

	aad(f->e, 42, "sae-a");
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), ct), 0);
	aad(f->e, 43, "sae-a"); /* another record */
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), -1);
	aad(f->e, 42, "sae-b"); /* another owner */
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), -1);
	sealep_aad_begin(f->e, "test rec v2\n"); /* another label */
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), -1);
	/* An AAD past aad_max makes both sides fail, never truncates. */
	aad(f->e, 42, "sae-a");
	sealep_aad_bytes(f->e, big, sizeof(big));
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), ct), -1);
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), out), -1);
}

/* Stores a sealed record so that the epoch survives the next start. */
static void
keep(struct fx *f, int64_t ep, const uint8_t *ct, size_t n)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(f->d.db,
			     "INSERT INTO recs(ep, ct) "
			     "VALUES(?, ?)",
			     -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, ep);
	sqlite3_bind_blob(st, 2, ct, (int)n, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static void
test_nonces_and_epochs(void **state)
{
	struct fx *f = *state;
	uint8_t	   pt[16] = { 0 }, a[16 + SEAL_OVERHEAD], b[sizeof(a)],
		c[sizeof(a)], d[sizeof(a)], out[16];

	/* One epoch: the counter gives each seal its own nonce. */
	aad(f->e, 1, "o");
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), a), 0);
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), b), 0);
	assert_memory_not_equal(a, b, SEAL_NONCE_LEN);
	assert_memory_not_equal(a, b, sizeof(a));
	keep(f, sealep_epoch(f->e), a, sizeof(a));
	/* A new epoch restarts the counter under a new key. */
	assert_int_equal(sealep_next(f->e), 0);
	assert_int_equal(sealep_epoch(f->e), 2);
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), c), 0);
	assert_memory_equal(a, c, SEAL_NONCE_LEN);
	assert_memory_not_equal(a + SEAL_NONCE_LEN, c + SEAL_NONCE_LEN,
	    sizeof(a) - SEAL_NONCE_LEN);
	assert_int_equal(sealep_open(f->e, 1, c, sizeof(c), out), -1);
	assert_int_equal(sealep_open(f->e, 2, c, sizeof(c), out), 0);
	assert_int_equal(sealep_open(f->e, 1, a, sizeof(a), out), 0);
	/* Reopened: epoch 1 (used by a record) loads, epoch 2 is dropped. */
	fx_close(f);
	f->e = fx_open(f, f->kek, 0);
	assert_non_null(f->e);
	assert_int_equal(sealep_epoch(f->e), 2);
	aad(f->e, 1, "o");
	assert_int_equal(sealep_open(f->e, 1, a, sizeof(a), out), 0);
	assert_memory_equal(out, pt, sizeof(pt));
	/* Its epoch 2 has a fresh salt: same nonce, another key again. */
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), d), 0);
	assert_memory_equal(c, d, SEAL_NONCE_LEN);
	assert_memory_not_equal(c, d, sizeof(c));
}

static void
test_wrong_kek(void **state)
{
	struct fx *f = *state;
	uint8_t	   other[SEAL_KEK_LEN], pt[16] = { 3 }, ct[16 + SEAL_OVERHEAD];
	sqlite3_stmt *st;

	aad(f->e, 9, "o");
	assert_int_equal(sealep_seal(f->e, pt, sizeof(pt), ct), 0);
	keep(f, sealep_epoch(f->e), ct, sizeof(ct));
	fx_close(f);
	memset(other, 0x5b, sizeof(other));
	assert_null(fx_open(f, other, 0));
	/* Even past the check, a record does not open under another KEK. */
	assert_int_equal(sqlite3_prepare_v2(f->d.db, "DELETE FROM meta", -1,
			     &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqldb_close(&f->d);
	f->e = fx_open(f, other, 1);
	aad(f->e, 9, "o");
	assert_int_equal(sealep_open(f->e, 1, ct, sizeof(ct), pt), -1);
	fx_close(f);
	f->e = fx_open(f, f->kek, 0);
	assert_null(f->e); /* the check is now the other KEK's */
}

/* ------------------------------------------- two handles on one file */

/* One opener of the shared file: its connection and context. */
struct h {
	struct sqldb  *d;
	struct sealep *e;
};

/* Seals pt (16 bytes, AAD of id) and stores it, in one write transaction
 * as an owner does; the record's rowid. */
static int64_t
h_write(struct h *h, uint64_t id, const uint8_t pt[16])
{
	uint8_t	      ct[16 + SEAL_OVERHEAD];
	sqlite3_stmt *st;
	int64_t	      row;

	assert_int_equal(sqldb_begin(h->d), 0);
	aad(h->e, id, "o");
	assert_int_equal(sealep_seal(h->e, pt, 16, ct), 0);
	assert_int_equal(sqlite3_prepare_v2(h->d->db,
			     "INSERT INTO recs(ep, ct) VALUES(?, ?)", -1, &st,
			     NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, sealep_epoch(h->e));
	sqlite3_bind_blob(st, 2, ct, sizeof(ct), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	row = sqlite3_last_insert_rowid(h->d->db);
	assert_int_equal(sqldb_commit(h->d), 0);
	return row;
}

/* Record row, read back through h: its bytes are want (AAD of id). */
static void
h_read(struct h *h, int64_t row, uint64_t id, const uint8_t want[16])
{
	uint8_t	      ct[16 + SEAL_OVERHEAD], out[16];
	sqlite3_stmt *st;
	int64_t	      ep;

	assert_int_equal(sqlite3_prepare_v2(h->d->db,
			     "SELECT ep, ct FROM recs WHERE rowid = ?", -1, &st,
			     NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, row);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 1), sizeof(ct));
	ep = sqlite3_column_int64(st, 0);
	memcpy(ct, sqlite3_column_blob(st, 1), sizeof(ct));
	sqlite3_finalize(st);
	aad(h->e, id, "o");
	assert_int_equal(sealep_open(h->e, ep, ct, sizeof(ct), out), 0);
	assert_memory_equal(out, want, 16);
}

static void
h_close(struct h *h)
{
	sealep_free(h->e);
	sqldb_close(h->d);
}

/*
 * Two openers of one file (here: two connections, as two kmsd would have):
 * the second one's start drops the first one's epoch (no record used it
 * yet) and numbers its own inside its transaction; the first one's next
 * seal sees its number taken and moves to a fresh one. Each reads the
 * other's records (an epoch it had not seen, loaded from the table), and a
 * third opener reads both.
 */
static void
test_two_handles(void **state)
{
	static struct sqldb db_b, db_c;
	struct fx	   *f = *state;
	struct h a = { &f->d, f->e }, b = { &db_b, NULL }, c = { &db_c, NULL };
	uint8_t	 pa[16], pb[16], pa2[16];
	int64_t	 ra, rb, ra2;

	memset(pa, 0xa1, sizeof(pa));
	memset(pb, 0xb2, sizeof(pb));
	memset(pa2, 0xa3, sizeof(pa2));
	assert_int_equal(sealep_epoch(a.e), 1);
	b.e = db_open(b.d, f->path, f->kek, 0);
	assert_non_null(b.e);
	assert_int_equal(sealep_epoch(b.e), 1); /* a's, unused, was dropped */

	rb = h_write(&b, 1, pb);
	assert_int_equal(sealep_epoch(b.e), 1);
	ra = h_write(&a, 2, pa);
	assert_int_equal(sealep_epoch(a.e), 2); /* 1 is b's now */
	h_read(&a, rb, 1, pb);
	h_read(&b, ra, 2, pa);
	h_read(&a, ra, 2, pa);
	h_read(&b, rb, 1, pb);

	/* An opener's start drops an epoch no record uses: a's goes (as if
	 * its records were taken); a's next seal puts it back, same number. */
	assert_int_equal(sqldb_exec(b.d, "DELETE FROM recs WHERE ep = 2"), 0);
	assert_int_equal(sqldb_exec(b.d, "DELETE FROM epochs WHERE ep = 2"), 0);
	ra2 = h_write(&a, 3, pa2);
	assert_int_equal(sealep_epoch(a.e), 2);
	h_read(&b, ra2, 3, pa2);

	/* A third opener, after both: every record opens. */
	c.e = db_open(c.d, f->path, f->kek, 0);
	assert_non_null(c.e);
	assert_int_equal(sealep_epoch(c.e), 3);
	h_read(&c, rb, 1, pb);
	h_read(&c, ra2, 3, pa2);
	h_close(&c);
	h_close(&b); /* a is the fixture's: teardown closes it */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_aad, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nonces_and_epochs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_kek, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup,
		    teardown),
	};

	log_init("test_sealep", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

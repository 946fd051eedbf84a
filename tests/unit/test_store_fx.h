/*
 * The key store tests' fixture and helpers, shared by test_store.c (the
 * operations on both backends), test_store_seal.c (sealing, nonces,
 * tampering) and test_store_expiry.c (time to live and the cap per pair).
 * Everything is static inline: each test file uses what it needs.
 */
#ifndef TEST_STORE_FX_H
#define TEST_STORE_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/etsi.h"
#include "simulator/store.h"

#define KB 32

struct fx {
	int  file;
	char dir[64];
	char db[128];
	char kek[128];
};

static inline int
fx_setup(void **state, int file)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->file = file;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/keys.db", f->dir);
	snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
	*state = f;
	return 0;
}

static inline int
setup_mem(void **state)
{
	return fx_setup(state, 0);
}
static inline int
setup_file(void **state)
{
	return fx_setup(state, 1);
}

static inline int
teardown(void **state)
{
	struct fx *f = *state;
	char	   cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static inline struct store *
fx_open(struct fx *f)
{
	char	      err[256];
	struct store *s;

	s = store_open(f->file ? f->db : NULL, f->file ? f->kek : NULL, KB, err,
	    sizeof(err));
	if (s == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	assert_non_null(s);
	return s;
}

/* n chunks with random IDs and bytes. */
static inline void
mk_chunks(size_t n, uint8_t *ids, uint8_t *keys)
{
	assert_int_equal(RAND_bytes(ids, (int)(n * 16)), 1);
	assert_int_equal(RAND_bytes(keys, (int)(n * KB)), 1);
}

/* The chunks added last (batch `cur_seq`, IDs cur_ids): their positions. */
static const uint8_t *cur_ids;
static size_t	      cur_n;
static uint64_t	      cur_seq;

static inline void
ords_of(const uint8_t *chunks, size_t n, uint64_t *ords)
{
	for (size_t i = 0; i < n; i++) {
		ords[i] = STORE_ORD(cur_seq, 0xfffff); /* unknown chunk */
		for (size_t j = 0; j < cur_n; j++)
			if (memcmp(chunks + 16 * i, cur_ids + 16 * j, 16) == 0)
				ords[i] = STORE_ORD(cur_seq, j);
	}
}

/* Assigns nkeys keys of size_bytes from `per` chunks each, from ids. */
static inline void
assign(struct store *s, const uint8_t *chunk_ids, const uint8_t *key_ids,
    size_t nkeys, unsigned per, unsigned size_bytes, const char *const *slaves,
    size_t nslaves, enum store_rc expect)
{
	uint8_t		    missing[64][16];
	uint64_t	    ords[64];
	struct store_assign a = {
		.nkeys = nkeys,
		.ids = key_ids,
		.size_bytes = size_bytes,
		.per = per,
		.chunks = chunk_ids,
		.ords = ords,
		.master = "sae-a",
		.slaves = slaves,
		.nslaves = nslaves,
		.missing = missing,
	};

	ords_of(chunk_ids, nkeys * per, ords);
	assert_int_equal(store_assign(s, &a, 1), 0);
	assert_int_equal(a.result, expect);
}

static inline enum store_rc
take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, size_t n, struct etsi_keys *out)
{
	uint8_t	      valid[16];
	enum store_rc rc;

	memset(valid, 1, sizeof(valid));
	assert_int_equal(etsi_keys_alloc(out, n), 0);
	rc = store_take(s, caller, master, ids, valid, n, out);
	if (rc != STORE_OK)
		etsi_keys_free(out);
	return rc;
}

/* ------------------------------------------------------------------
 * What the SQLite file holds, read with the SQLite C API on its own: the
 * store under test is closed (or at least not asked).
 */

static inline sqlite3 *
db_raw(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
			     NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static inline void
db_sql(const char *path, const char *sql)
{
	sqlite3 *db = db_raw(path);
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	assert_true(sqlite3_changes(db) > 0 || strncmp(sql, "CREATE", 6) == 0 ||
	    strncmp(sql, "INSERT", 6) == 0);
	sqlite3_close(db);
}

static inline long long
db_int(const char *path, const char *sql)
{
	sqlite3	     *db = db_raw(path);
	sqlite3_stmt *st;
	long long     v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

#endif

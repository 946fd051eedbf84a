/*
 * Key store: the same checks against the in-memory backend and the SQLite
 * backend, plus what only the file backend promises (sealed on disk, survives
 * a restart, refuses a readable KEK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/timeutil.h"
#include "simulator/store.h"

#define KB 32

struct fx {
	int	file;
	char	dir[64];
	char	db[128];
	char	kek[128];
};

static int
fx_setup(void **state, int file)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->file = file;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/keys.db", f->dir);
	snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
	*state = f;
	return 0;
}

static int setup_mem(void **state) { return fx_setup(state, 0); }
static int setup_file(void **state) { return fx_setup(state, 1); }

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct store *
fx_open(struct fx *f)
{
	char err[256];
	struct store *s;

	s = store_open(f->file ? f->db : NULL, f->file ? f->kek : NULL, KB, err,
	    sizeof(err));
	if (s == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	assert_non_null(s);
	return s;
}

/* n chunks with random IDs and bytes. */
static void
mk_chunks(size_t n, uint8_t *ids, uint8_t *keys)
{
	assert_int_equal(RAND_bytes(ids, (int)(n * 16)), 1);
	assert_int_equal(RAND_bytes(keys, (int)(n * KB)), 1);
}

static void
test_chunks(void **state)
{
	struct fx *f = *state;
	struct store *s = fx_open(f);
	uint8_t ids[10 * 16], keys[10 * KB], drop[3] = { 0, 1, 0 };
	struct store_resv r;
	size_t avail, d;

	mk_chunks(10, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 10, ids, keys), 0);
	/* A duplicate ID is skipped. */
	assert_int_equal(store_add_chunks(s, 1, 1, ids, keys), 0);
	assert_int_equal(store_count(s), 10);
	assert_int_equal(store_last_seq(s), 1);

	assert_int_equal(store_reserve(s, 3, 0, &r, &avail), 0);
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
	assert_int_equal(store_reserve(s, 8, 0, &r, &avail), 1);
	assert_int_equal(avail, 7);
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

/* The chunks added last (batch `cur_seq`, IDs cur_ids): their positions. */
static const uint8_t *cur_ids;
static size_t cur_n;
static uint64_t cur_seq;

static void
ords_of(const uint8_t *chunks, size_t n, uint64_t *ords)
{
	for (size_t i = 0; i < n; i++) {
		ords[i] = STORE_ORD(cur_seq, 0xfffff);	/* unknown chunk */
		for (size_t j = 0; j < cur_n; j++)
			if (memcmp(chunks + 16 * i, cur_ids + 16 * j, 16) == 0)
				ords[i] = STORE_ORD(cur_seq, j);
	}
}

/* Assigns nkeys keys of size_bytes from `per` chunks each, from ids. */
static void
assign(struct store *s, const uint8_t *chunk_ids, const uint8_t *key_ids,
    size_t nkeys, unsigned per, unsigned size_bytes, const char *const *slaves,
    size_t nslaves, int expect)
{
	uint8_t missing[64][16];
	uint64_t ords[64];
	struct store_assign a = {
		.nkeys = nkeys, .ids = key_ids, .size_bytes = size_bytes,
		.per = per, .chunks = chunk_ids, .ords = ords, .master = "sae-a",
		.slaves = slaves, .nslaves = nslaves, .missing = missing,
	};

	ords_of(chunk_ids, nkeys * per, ords);
	assert_int_equal(store_assign(s, &a, 1), 0);
	assert_int_equal(a.result, expect);
}

static enum store_rc
take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, size_t n, struct etsi_keys *out)
{
	uint8_t valid[16];
	enum store_rc rc;

	memset(valid, 1, sizeof(valid));
	assert_int_equal(etsi_keys_alloc(out, n), 0);
	rc = store_take(s, caller, master, ids, valid, n, out);
	if (rc != STORE_OK)
		etsi_keys_free(out);
	return rc;
}

static void
test_assign_take(void **state)
{
	struct fx *f = *state;
	struct store *s = fx_open(f);
	const char *sl[] = { "sae-b", "sae-x" };
	uint8_t ids[8 * 16], keys[8 * KB], kid[2 * 16], bad[2 * 16];
	struct etsi_keys out;

	mk_chunks(8, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 8, ids, keys), 0);
	cur_ids = ids, cur_n = 8, cur_seq = 1;
	assert_int_equal(RAND_bytes(kid, sizeof(kid)), 1);

	/* A missing chunk: nothing changes. */
	memcpy(bad, ids, 16);
	memset(bad + 16, 0xee, 16);
	assign(s, bad, kid, 1, 2, 40, sl, 1, 1);
	assert_int_equal(store_count(s), 8);
	/* The same chunk twice is missing too. */
	memcpy(bad + 16, ids, 16);
	assign(s, bad, kid, 1, 2, 40, sl, 1, 1);
	assert_int_equal(store_count(s), 8);

	/* Two keys of 40 bytes from chunks 0,1 and 2,3, for two slaves. */
	assign(s, ids, kid, 2, 2, 40, sl, 2, 0);
	assert_int_equal(store_count(s), 4);
	assert_int_equal(store_assigned_count(s), 2);
	/* Chunks are gone: a second assignment of them fails. */
	assign(s, ids, kid, 1, 2, 40, sl, 1, 1);

	assert_int_equal(take(s, "sae-z", "sae-a", kid, 2, &out), STORE_UNAUTH);
	assert_int_equal(take(s, "sae-b", "sae-q", kid, 2, &out), STORE_NOTFOUND);
	/* All or nothing: one unknown ID -> nothing delivered. */
	memcpy(bad, kid, 16);
	memset(bad + 16, 0x55, 16);
	assert_int_equal(take(s, "sae-b", "sae-a", bad, 2, &out), STORE_NOTFOUND);
	/* A repeated ID is not delivered twice. */
	memcpy(bad + 16, kid, 16);
	assert_int_equal(take(s, "sae-b", "sae-a", bad, 2, &out), STORE_NOTFOUND);

	assert_int_equal(take(s, "sae-b", "sae-a", kid, 2, &out), STORE_OK);
	assert_int_equal(out.v[0].len, 40);
	assert_memory_equal(out.v[0].key, keys, 40);
	assert_memory_equal(out.v[1].key, keys + 2 * KB, 40);
	etsi_keys_free(&out);
	assert_int_equal(take(s, "sae-b", "sae-a", kid, 2, &out), STORE_NOTFOUND);
	assert_int_equal(store_assigned_count(s), 2);
	assert_int_equal(take(s, "sae-x", "sae-a", kid, 1, &out), STORE_OK);
	assert_memory_equal(out.v[0].key, keys, 40);
	etsi_keys_free(&out);
	assert_int_equal(store_assigned_count(s), 1);
	assert_int_equal(take(s, "sae-x", "sae-a", kid, 1, &out), STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-x", "sae-a", kid + 16, 1, &out), STORE_OK);
	etsi_keys_free(&out);
	assert_int_equal(store_assigned_count(s), 0);

	/* key_size keys under their chunk ID, a key ID already in use refused. */
	assign(s, ids + 4 * 16, ids + 4 * 16, 1, 1, KB, sl, 1, 0);
	assign(s, ids + 5 * 16, ids + 4 * 16, 1, 1, KB, sl, 1, 2);
	assert_int_equal(store_count(s), 3);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 4 * 16, 1, &out),
	    STORE_OK);
	assert_memory_equal(out.v[0].key, keys + 4 * KB, KB);
	etsi_keys_free(&out);
	store_close(s);
}

/* Many threads race for the same keys: each is delivered exactly once. */
struct racer {
	struct store	*s;
	const uint8_t	*ids;
	int		 got;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	struct etsi_keys out;
	uint8_t valid[1] = { 1 };

	for (int i = 0; i < 50; i++) {
		etsi_keys_alloc(&out, 1);
		if (store_take(r->s, "sae-b", "sae-a", r->ids + 16 * i, valid, 1,
		    &out) == STORE_OK)
			r->got++;
		etsi_keys_free(&out);
	}
	return NULL;
}

static void
test_race(void **state)
{
	struct fx *f = *state;
	struct store *s = fx_open(f);
	const char *sl[] = { "sae-b" };
	uint8_t ids[50 * 16], keys[50 * KB];
	struct racer r[4];
	pthread_t th[4];
	int total = 0;

	mk_chunks(50, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 50, ids, keys), 0);
	cur_ids = ids, cur_n = 50, cur_seq = 1;
	assign(s, ids, ids, 50, 1, KB, sl, 1, 0);
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
	FILE *fp = fopen(path, "rb");
	uint8_t *data;
	long len;
	int found;

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
	struct fx *f = *state;
	struct store *s = fx_open(f);
	const char *sl[] = { "sae-b" };
	uint8_t ids[20 * 16], keys[20 * KB];
	char wal[160];
	struct etsi_keys out;
	struct stat st;

	assert_int_equal(stat(f->kek, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	mk_chunks(20, ids, keys);
	assert_int_equal(store_add_chunks(s, 5, 20, ids, keys), 0);
	cur_ids = ids, cur_n = 20, cur_seq = 5;
	assign(s, ids, ids, 4, 1, KB, sl, 1, 0);
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
	assert_int_equal(take(s, "sae-b", "sae-a", ids, 1, &out), STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16, 3, &out), STORE_OK);
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
	struct fx *f = *state;
	struct store *s = fx_open(f);
	char err[256];
	int fd;

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

/* ------------------------------------------------------------------
 * What the SQLite file holds, read with the SQLite C API on its own: the
 * store under test is closed (or at least not asked).
 */

static sqlite3 *
db_raw(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
db_sql(const char *path, const char *sql)
{
	sqlite3 *db = db_raw(path);
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	assert_true(sqlite3_changes(db) > 0 || strncmp(sql, "CREATE", 6) == 0 ||
	    strncmp(sql, "INSERT", 6) == 0);
	sqlite3_close(db);
}

static long long
db_int(const char *path, const char *sql)
{
	sqlite3 *db = db_raw(path);
	sqlite3_stmt *st;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Every seal seen in any database: (epoch salt, nonce) -> the sealed blob. */
#define SEEN_MAX 4096
static struct seen {
	uint8_t	salt[32];
	uint8_t	nonce[12];
	uint8_t	ct[256];
	size_t	ctlen;
	long long ord;
} seen[SEEN_MAX];
static size_t nseen;

/*
 * Adds the seals of a database file to `seen`; fails on a (salt, nonce)
 * pair seen before with another blob: the same (key, nonce) used twice.
 * Returns how many seals the file holds.
 */
static size_t
snap(const char *path)
{
	static const char *const q[] = {
		"SELECT e.salt, c.ct, c.ord FROM chunks c JOIN epochs e"
		    " ON c.ep = e.ep",
		"SELECT e.salt, k.ct, -1 FROM akeys k JOIN epochs e"
		    " ON k.ep = e.ep",
	};
	sqlite3 *db = db_raw(path);
	sqlite3_stmt *st;
	size_t n = 0, i, j;
	struct seen e;

	for (i = 0; i < 2; i++) {
		assert_int_equal(sqlite3_prepare_v2(db, q[i], -1, &st, NULL),
		    SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			memset(&e, 0, sizeof(e));
			assert_int_equal(sqlite3_column_bytes(st, 0), 32);
			memcpy(e.salt, sqlite3_column_blob(st, 0), 32);
			e.ctlen = (size_t)sqlite3_column_bytes(st, 1);
			assert_true(e.ctlen > 12 && e.ctlen <= sizeof(e.ct));
			memcpy(e.ct, sqlite3_column_blob(st, 1), e.ctlen);
			memcpy(e.nonce, e.ct, 12);
			e.ord = sqlite3_column_int64(st, 2);
			n++;
			for (j = 0; j < nseen; j++) {
				if (memcmp(seen[j].salt, e.salt, 32) != 0 ||
				    memcmp(seen[j].nonce, e.nonce, 12) != 0)
					continue;
				/* The same record carried over by a copy is fine. */
				if (seen[j].ctlen != e.ctlen ||
				    memcmp(seen[j].ct, e.ct, e.ctlen) != 0)
					fail_msg("%s: a (key, nonce) pair sealed "
					    "two different records", path);
				break;
			}
			if (j == nseen) {
				assert_true(nseen < SEEN_MAX);
				seen[nseen++] = e;
			}
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

/* The sealed blob of chunk ord as stored in `seen` from a given snap. */
static const struct seen *
seen_ord(size_t from, size_t to, long long ord)
{
	for (size_t j = from; j < to; j++)
		if (seen[j].ord == ord)
			return &seen[j];
	return NULL;
}

static void
cp(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
	assert_int_equal(system(cmd), 0);
}

/*
 * The same KEK across database loss, restore and copy: no (key, nonce) pair
 * ever seals two records, and the same chunk stored again after a restore
 * or a recreation is sealed differently (under the old layout, whose nonce
 * counter lived in the database, it came out byte for byte the same).
 */
static void
test_file_no_nonce_reuse(void **state)
{
	struct fx *f = *state;
	struct store *s;
	const char *sl[] = { "sae-b" };
	uint8_t ids1[10 * 16], keys1[10 * KB], ids2[10 * 16], keys2[10 * KB];
	char bak[160], cpy[160];
	size_t m1, m2, m3, m4;
	const struct seen *a, *b;

	snprintf(bak, sizeof(bak), "%s/backup.db", f->dir);
	snprintf(cpy, sizeof(cpy), "%s/copy.db", f->dir);
	nseen = 0;
	mk_chunks(10, ids1, keys1);
	mk_chunks(10, ids2, keys2);

	s = fx_open(f);
	assert_int_equal(store_add_chunks(s, 1, 10, ids1, keys1), 0);
	store_close(s);
	assert_int_equal(snap(f->db), 10);
	cp(f->db, bak);				/* the backup */

	s = fx_open(f);
	assert_int_equal(store_add_chunks(s, 2, 10, ids2, keys2), 0);
	cur_ids = ids2, cur_n = 10, cur_seq = 2;
	assign(s, ids2, ids2, 3, 1, KB, sl, 1, 0);
	store_close(s);
	m1 = nseen;
	assert_int_equal(snap(f->db), 20);	/* 10 + 7 chunks + 3 keys */
	m2 = nseen;
	assert_int_equal(m2 - m1, 10);

	/* Restore the backup; batch 2 arrives again, bytes and all. */
	cp(bak, f->db);
	s = fx_open(f);
	assert_int_equal(store_count(s), 10);
	assert_int_equal(store_add_chunks(s, 2, 10, ids2, keys2), 0);
	assign(s, ids2, ids2, 3, 1, KB, sl, 1, 0);
	store_close(s);
	assert_int_equal(snap(f->db), 20);
	m3 = nseen;
	assert_int_equal(m3 - m2, 10);		/* 7 chunks + 3 keys, all new */
	a = seen_ord(m1, m2, (long long)STORE_ORD(2, 5));
	b = seen_ord(m2, m3, (long long)STORE_ORD(2, 5));
	assert_non_null(a);
	assert_non_null(b);
	assert_memory_not_equal(a->salt, b->salt, 32);
	assert_memory_not_equal(a->ct + 12, b->ct + 12, KB + 16);

	/* Recreate: the database is lost, the KEK stays. */
	unlink(f->db);
	s = fx_open(f);
	assert_int_equal(store_count(s), 0);
	assert_int_equal(store_add_chunks(s, 1, 10, ids1, keys1), 0);
	store_close(s);
	assert_int_equal(snap(f->db), 10);
	m4 = nseen;
	assert_int_equal(m4 - m3, 10);
	a = seen_ord(0, 10, (long long)STORE_ORD(1, 0));
	b = seen_ord(m3, m4, (long long)STORE_ORD(1, 0));
	assert_non_null(a);
	assert_non_null(b);
	assert_memory_not_equal(a->ct, b->ct, KB + SEAL_OVERHEAD);

	/* Copy: both files used at once with the same KEK. */
	cp(f->db, cpy);
	{
		struct store *s2;
		char err[256];

		s = fx_open(f);
		s2 = store_open(cpy, f->kek, KB, err, sizeof(err));
		assert_non_null(s2);
		assert_int_equal(store_add_chunks(s, 2, 10, ids2, keys2), 0);
		assert_int_equal(store_add_chunks(s2, 2, 10, ids2, keys2), 0);
		store_close(s2);
		store_close(s);
	}
	assert_int_equal(snap(f->db), 20);
	assert_int_equal(snap(cpy), 20);
	assert_int_equal(nseen - m4, 20);	/* each copy sealed its own */
	/* Epochs no record uses are gone: one per opening would pile up. */
	assert_true(db_int(f->db, "SELECT count(*) FROM epochs") <= 3);
}

/* Key IDs for the tamper test: one per column, and a control. */
enum { TK_OK, TK_MASTER, TK_SLAVES, TK_TAKEN, TK_SIZE, TK_T, TK_EP, TK_ID,
	TK_CT, TK_SWAP, TK__N };

static void
hexid(const uint8_t id[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* Edits one column of one assigned key's row with sqlite3, like an intruder. */
static void
tamper(const char *db, const char *set, const uint8_t id[16])
{
	char sql[512], h[33];

	hexid(id, h);
	snprintf(sql, sizeof(sql), "UPDATE akeys SET %s WHERE id = x'%s'", set, h);
	db_sql(db, sql);
}

/*
 * Every column that decides who gets a key, edited with sqlite3: the key is
 * refused (to the SAE the edit names too), counted as tampered, while an
 * untouched key is served.
 */
static void
test_file_tamper(void **state)
{
	struct fx *f = *state;
	struct store *s;
	const char *sl[] = { "sae-b", "sae-x" };
	uint8_t ids[TK__N * 16], keys[TK__N * KB], nid[16];
	uint8_t cids[3 * 16], ckeys[3 * KB];
	char set[256], h[33];
	struct store_stats st;
	struct etsi_keys out;
	size_t avail;
	struct store_resv r;

	mk_chunks(TK__N, ids, keys);
	mk_chunks(3, cids, ckeys);
	s = fx_open(f);
	assert_int_equal(store_add_chunks(s, 1, TK__N, ids, keys), 0);
	assert_int_equal(store_add_chunks(s, 2, 3, cids, ckeys), 0);
	cur_ids = ids, cur_n = TK__N, cur_seq = 1;
	/* TK__N keys of key_size under their chunk IDs, for sae-b and sae-x. */
	assign(s, ids, ids, TK__N, 1, KB, sl, 2, 0);
	/* sae-b takes the TAKEN key now: its flag is set in the row. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_TAKEN, 1, &out),
	    STORE_OK);
	etsi_keys_free(&out);
	store_close(s);
	/* A new opening: a second epoch exists for the EP edit to point at. */
	s = fx_open(f);
	store_close(s);

	tamper(f->db, "master = 'sae-q'", ids + 16 * TK_MASTER);
	tamper(f->db, "slaves = 'sae-z' || char(10) || 'sae-x'", ids + 16 * TK_SLAVES);
	tamper(f->db, "taken = x'0000'", ids + 16 * TK_TAKEN);
	tamper(f->db, "size = size + 8", ids + 16 * TK_SIZE);
	tamper(f->db, "t = t + 86400000", ids + 16 * TK_T);
	tamper(f->db, "ep = (SELECT max(ep) FROM epochs)", ids + 16 * TK_EP);
	memset(nid, 0x42, sizeof(nid));
	hexid(nid, h);
	snprintf(set, sizeof(set), "id = x'%s'", h);
	tamper(f->db, set, ids + 16 * TK_ID);
	tamper(f->db, "ct = substr(ct, 1, 20) || x'ff' || substr(ct, 22)",
	    ids + 16 * TK_CT);
	hexid(ids + 16 * TK_OK, h);
	snprintf(set, sizeof(set), "ct = (SELECT ct FROM akeys WHERE id = x'%s')", h);
	tamper(f->db, set, ids + 16 * TK_SWAP);
	/* A chunk renamed: its record no longer matches its ID. */
	db_sql(f->db, "UPDATE chunks SET id = x'00112233445566778899aabbccddeeff'"
	    " WHERE ord = (SELECT min(ord) FROM chunks)");

	s = fx_open(f);
	/* The control: an untouched key is served, with its bytes. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_OK, 1, &out),
	    STORE_OK);
	assert_memory_equal(out.v[0].key, keys + TK_OK * KB, KB);
	etsi_keys_free(&out);
	/* Each edited key: refused, whoever asks, even whom the edit names. */
	assert_int_equal(take(s, "sae-b", "sae-q", ids + 16 * TK_MASTER, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_MASTER, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-z", "sae-a", ids + 16 * TK_SLAVES, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-x", "sae-a", ids + 16 * TK_SLAVES, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_TAKEN, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_SIZE, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_T, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_EP, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", nid, 1, &out), STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_CT, 1, &out),
	    STORE_NOTFOUND);
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16 * TK_SWAP, 1, &out),
	    STORE_NOTFOUND);
	store_get_stats(s, &st);
	/* The MASTER ask naming the real master finds no row: not counted. */
	assert_int_equal(st.tampered, 10);
	/* Not served later either, and not in a batch with a good key. */
	{
		uint8_t two[32], v2[2] = { 1, 1 };

		memcpy(two, ids + 16 * TK_OK, 16);	/* sae-x's share */
		memcpy(two + 16, ids + 16 * TK_CT, 16);
		assert_int_equal(etsi_keys_alloc(&out, 2), 0);
		assert_int_equal(store_take(s, "sae-x", "sae-a", two, v2, 2, &out),
		    STORE_NOTFOUND);
		etsi_keys_free(&out);
	}
	/* The renamed chunk: the reservation fails once, drops it, then works. */
	assert_int_equal(store_count(s), 3);
	assert_int_equal(store_reserve(s, 1, 0, &r, &avail), -1);
	assert_int_equal(store_count(s), 2);
	assert_int_equal(store_reserve(s, 1, 0, &r, &avail), 0);
	assert_memory_equal(r.ids[0], cids + 16, 16);
	assert_memory_equal(r.keys, ckeys + KB, KB);
	store_resv_free(&r);
	store_get_stats(s, &st);
	assert_int_equal(st.tampered, 12);	/* + the batch, + the chunk */
	store_close(s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM chunks"), 1);
}

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
	struct fx *f = *state;
	struct store *s = fx_open(f);
	const char *sl[] = { "sae-b" }, *sl2[] = { "sae-x" };
	uint8_t ids[16 * 16], keys[16 * KB], missing[16][16];
	uint64_t ords[16];
	struct store_assign a;
	struct store_stats st;
	struct etsi_keys out;
	size_t n;

	mk_chunks(16, ids, keys);
	assert_int_equal(store_add_chunks(s, 1, 16, ids, keys), 0);
	cur_ids = ids, cur_n = 16, cur_seq = 1;
	store_set_limits(s, 1, 5);
	assign(s, ids, ids, 3, 1, KB, sl, 1, 0);
	/* 3 waiting + 3 > 5: refused, and no chunk used. */
	memset(&a, 0, sizeof(a));
	ords_of(ids + 3 * 16, 3, ords);
	a = (struct store_assign){ .nkeys = 3, .ids = ids + 3 * 16,
	    .size_bytes = KB, .per = 1, .chunks = ids + 3 * 16, .ords = ords,
	    .master = "sae-a", .slaves = sl, .nslaves = 1, .missing = missing };
	assert_int_equal(store_assign(s, &a, 1), 0);
	assert_int_equal(a.result, 3);
	assert_int_equal(a.waiting, 3);
	assert_int_equal(a.full_slave, 0);
	assert_int_equal(store_count(s), 13);
	/* Another pair is not held back by this one. */
	assign(s, ids + 3 * 16, ids + 3 * 16, 3, 1, KB, sl2, 1, 0);
	assign(s, ids + 6 * 16, ids + 6 * 16, 2, 1, KB, sl, 1, 0);	/* 5 */
	assign(s, ids + 8 * 16, ids + 8 * 16, 1, 1, KB, sl, 1, 3);
	/* A fetch makes room. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids, 1, &out), STORE_OK);
	etsi_keys_free(&out);
	assign(s, ids + 8 * 16, ids + 8 * 16, 1, 1, KB, sl, 1, 0);
	assert_int_equal(store_assigned_count(s), 8);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_full, 2);
	assert_int_equal(st.expired, 0);

	if (f->file) {
		/* After a restart the pair still counts 5. */
		store_close(s);
		s = fx_open(f);
		store_set_limits(s, 1, 5);
		assign(s, ids + 9 * 16, ids + 9 * 16, 1, 1, KB, sl, 1, 3);
	}
	/* Before the TTL: served. Nothing to wipe yet. */
	assert_int_equal(take(s, "sae-b", "sae-a", ids + 16, 1, &out), STORE_OK);
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
		assert_int_equal(db_int(f->db, "SELECT count(*) FROM akeys"), 0);
	/* The pair is empty again: 5 fit. */
	assign(s, ids + 9 * 16, ids + 9 * 16, 5, 1, KB, sl, 1, 0);
	store_close(s);
}

/* A database of the layout whose nonce counter lived in the file: refused. */
static void
test_file_old_layout(void **state)
{
	struct fx *f = *state;
	char err[512];
	int fd = open(f->db, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	close(fd);
	db_sql(f->db, "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB)");
	db_sql(f->db, "INSERT INTO meta(k, v) VALUES('nonce_hwm', 1048577)");
	assert_null(store_open(f->db, f->kek, KB, err, sizeof(err)));
	assert_non_null(strstr(err, "layout 1"));
	assert_non_null(strstr(err, "move the file away"));
	/* Nothing was changed in it. */
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chunks, setup_mem, teardown),
		cmocka_unit_test_setup_teardown(test_chunks, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_assign_take, setup_mem, teardown),
		cmocka_unit_test_setup_teardown(test_assign_take, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_race, setup_mem, teardown),
		cmocka_unit_test_setup_teardown(test_race, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_sealed_and_durable,
		    setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_refusals, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_no_nonce_reuse,
		    setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_tamper, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_cap, setup_mem,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_cap, setup_file,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_old_layout, setup_file,
		    teardown),
	};

	log_init("test_store", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Key store, SQLite backend, sealing: no (key, nonce) pair ever seals two
 * records across database loss, restore and copy; every column that decides
 * who gets a key is bound by the AAD (an edit is refused and counted).
 */
#include <unistd.h>

#include "common/log.h"
#include "common/seal.h"
#include "tests/unit/test_store_fx.h"

/* Every seal seen in any database: (epoch salt, nonce) -> the sealed blob. */
#define SEEN_MAX 4096
static struct seen {
	uint8_t	  salt[32];
	uint8_t	  nonce[12];
	uint8_t	  ct[256];
	size_t	  ctlen;
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
	sqlite3	     *db = db_raw(path);
	sqlite3_stmt *st;
	size_t	      n = 0, i, j;
	struct seen   e;

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
					fail_msg(
					    "%s: a (key, nonce) pair sealed "
					    "two different records",
					    path);
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

/* The no-nonce-reuse test's state: two batches, the files, snap marks. */
struct nr {
	struct fx *f;
	uint8_t	   ids1[10 * 16], keys1[10 * KB], ids2[10 * 16], keys2[10 * KB];
	char	   bak[160], cpy[160];
	size_t	   m1, m2, m3, m4; /* nseen after each step */
};

/* Chunk ord as sealed in snaps [from1, to1) (*a) and [from2, to2) (*b). */
static void
seen_twice(size_t from1, size_t to1, size_t from2, size_t to2, long long ord,
    const struct seen **a, const struct seen **b)
{
	*a = seen_ord(from1, to1, ord);
	*b = seen_ord(from2, to2, ord);
	assert_non_null(*a);
	assert_non_null(*b);
}

/* Batch 1, then the backup of that file. */
static void
nr_backup(struct nr *t)
{
	struct store *s = fx_open(t->f);

	assert_int_equal(store_add_chunks(s, 1, 10, t->ids1, t->keys1), 0);
	store_close(s);
	assert_int_equal(snap(t->f->db), 10);
	cp(t->f->db, t->bak);
}

/* Batch 2 arrives, 3 keys are assigned from it: 10 new seals. */
static void
nr_batch2(struct nr *t, bool restored)
{
	const char   *sl[] = { "sae-b" };
	struct store *s = fx_open(t->f);

	if (restored)
		assert_int_equal(store_count(s), 10);
	assert_int_equal(store_add_chunks(s, 2, 10, t->ids2, t->keys2), 0);
	cur_ids = t->ids2, cur_n = 10, cur_seq = 2;
	assign(s, t->ids2, t->ids2, 3, 1, KB, sl, 1, STORE_OK);
	store_close(s);
}

/* Restore the backup; batch 2 arrives again, bytes and all. */
static void
nr_restore(struct nr *t)
{
	const struct seen *a, *b;

	cp(t->bak, t->f->db);
	nr_batch2(t, true);
	assert_int_equal(snap(t->f->db), 20);
	t->m3 = nseen;
	assert_int_equal(t->m3 - t->m2, 10); /* 7 chunks + 3 keys, all new */
	seen_twice(t->m1, t->m2, t->m2, t->m3, (long long)STORE_ORD(2, 5), &a,
	    &b);
	assert_memory_not_equal(a->salt, b->salt, 32);
	assert_memory_not_equal(a->ct + 12, b->ct + 12, KB + 16);
}

/* Recreate: the database is lost, the KEK stays. */
static void
nr_recreate(struct nr *t)
{
	const struct seen *a, *b;
	struct store	  *s;

	unlink(t->f->db);
	s = fx_open(t->f);
	assert_int_equal(store_count(s), 0);
	assert_int_equal(store_add_chunks(s, 1, 10, t->ids1, t->keys1), 0);
	store_close(s);
	assert_int_equal(snap(t->f->db), 10);
	t->m4 = nseen;
	assert_int_equal(t->m4 - t->m3, 10);
	seen_twice(0, 10, t->m3, t->m4, (long long)STORE_ORD(1, 0), &a, &b);
	assert_memory_not_equal(a->ct, b->ct, KB + SEAL_OVERHEAD);
}

/* Copy: both files used at once with the same KEK. */
static void
nr_copy(struct nr *t)
{
	struct store *s, *s2;
	char	      err[256];

	cp(t->f->db, t->cpy);
	s = fx_open(t->f);
	s2 = store_open(t->cpy, t->f->kek, KB, err, sizeof(err));
	assert_non_null(s2);
	assert_int_equal(store_add_chunks(s, 2, 10, t->ids2, t->keys2), 0);
	assert_int_equal(store_add_chunks(s2, 2, 10, t->ids2, t->keys2), 0);
	store_close(s2);
	store_close(s);
	assert_int_equal(snap(t->f->db), 20);
	assert_int_equal(snap(t->cpy), 20);
	assert_int_equal(nseen - t->m4, 20); /* each copy sealed its own */
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
	static struct nr t;

	memset(&t, 0, sizeof(t));
	t.f = *state;
	snprintf(t.bak, sizeof(t.bak), "%s/backup.db", t.f->dir);
	snprintf(t.cpy, sizeof(t.cpy), "%s/copy.db", t.f->dir);
	nseen = 0;
	mk_chunks(10, t.ids1, t.keys1);
	mk_chunks(10, t.ids2, t.keys2);

	nr_backup(&t);
	nr_batch2(&t, false);
	t.m1 = nseen;
	assert_int_equal(snap(t.f->db), 20); /* 10 + 7 chunks + 3 keys */
	t.m2 = nseen;
	assert_int_equal(t.m2 - t.m1, 10);
	nr_restore(&t);
	nr_recreate(&t);
	nr_copy(&t);
	/* Epochs no record uses are gone: one per opening would pile up. */
	assert_true(db_int(t.f->db, "SELECT count(*) FROM epochs") <= 3);
}

/* Key IDs for the tamper test: one per column, and a control. */
enum {
	TK_OK,
	TK_MASTER,
	TK_SLAVES,
	TK_TAKEN,
	TK_SIZE,
	TK_T,
	TK_EP,
	TK_ID,
	TK_CT,
	TK_SWAP,
	TK__N
};

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
	snprintf(sql, sizeof(sql), "UPDATE akeys SET %s WHERE id = x'%s'", set,
	    h);
	db_sql(db, sql);
}

/* The edits of one column each (TK_ID and TK_SWAP name other rows: built). */
static const struct {
	int	    k;
	const char *set;
} edits[] = {
	{ TK_MASTER, "master = 'sae-q'" },
	{ TK_SLAVES, "slaves = 'sae-z' || char(10) || 'sae-x'" },
	{ TK_TAKEN, "taken = x'0000'" },
	{ TK_SIZE, "size = size + 8" },
	{ TK_T, "t = t + 86400000" },
	{ TK_EP, "ep = (SELECT max(ep) FROM epochs)" },
	{ TK_CT, "ct = substr(ct, 1, 20) || x'ff' || substr(ct, 22)" },
};

/* Who asks for each edited key (TK_ID: under its new ID). */
static const struct {
	int	    k;
	const char *caller, *master;
} asks[] = {
	{ TK_MASTER, "sae-b", "sae-q" }, /* whom the edit names */
	{ TK_MASTER, "sae-b", "sae-a" },
	{ TK_SLAVES, "sae-z", "sae-a" },
	{ TK_SLAVES, "sae-x", "sae-a" },
	{ TK_TAKEN, "sae-b", "sae-a" },
	{ TK_SIZE, "sae-b", "sae-a" },
	{ TK_T, "sae-b", "sae-a" },
	{ TK_EP, "sae-b", "sae-a" },
	{ TK_ID, "sae-b", "sae-a" },
	{ TK_CT, "sae-b", "sae-a" },
	{ TK_SWAP, "sae-b", "sae-a" },
};

/* The tamper test's keys: TK__N assigned ones (ids), 3 chunks (cids). */
struct tk {
	struct fx *f;
	uint8_t	   ids[TK__N * 16], keys[TK__N * KB], nid[16];
	uint8_t	   cids[3 * 16], ckeys[3 * KB];
};

/* The keys before any edit: TK__N of key_size under their chunk IDs, for
 * sae-b and sae-x; the TAKEN one taken by sae-b; a second epoch. */
static void
tk_fill(struct tk *t)
{
	const char	*sl[] = { "sae-b", "sae-x" };
	struct store	*s;
	struct etsi_keys out;

	mk_chunks(TK__N, t->ids, t->keys);
	mk_chunks(3, t->cids, t->ckeys);
	s = fx_open(t->f);
	assert_int_equal(store_add_chunks(s, 1, TK__N, t->ids, t->keys), 0);
	assert_int_equal(store_add_chunks(s, 2, 3, t->cids, t->ckeys), 0);
	cur_ids = t->ids, cur_n = TK__N, cur_seq = 1;
	assign(s, t->ids, t->ids, TK__N, 1, KB, sl, 2, STORE_OK);
	/* sae-b takes the TAKEN key now: its flag is set in the row. */
	assert_int_equal(take(s, "sae-b", "sae-a", t->ids + 16 * TK_TAKEN, 1,
			     &out),
	    STORE_OK);
	etsi_keys_free(&out);
	store_close(s);
	/* A new opening: a second epoch exists for the EP edit to point at. */
	s = fx_open(t->f);
	store_close(s);
}

/* The edits, with sqlite3 on the closed file: one column per key, and a
 * chunk renamed (its record no longer matches its ID). */
static void
tk_edit(struct tk *t)
{
	char   set[256], h[33];
	size_t i;

	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
		tamper(t->f->db, edits[i].set, t->ids + 16 * edits[i].k);
	memset(t->nid, 0x42, sizeof(t->nid));
	hexid(t->nid, h);
	snprintf(set, sizeof(set), "id = x'%s'", h);
	tamper(t->f->db, set, t->ids + 16 * TK_ID);
	hexid(t->ids + 16 * TK_OK, h);
	snprintf(set, sizeof(set),
	    "ct = (SELECT ct FROM akeys WHERE id = x'%s')", h);
	tamper(t->f->db, set, t->ids + 16 * TK_SWAP);
	db_sql(t->f->db,
	    "UPDATE chunks SET id = x'00112233445566778899aabbccddeeff'"
	    " WHERE ord = (SELECT min(ord) FROM chunks)");
}

/* The control is served; each edited key is refused, whoever asks. */
static void
tk_check_keys(struct tk *t, struct store *s)
{
	struct store_stats st;
	struct etsi_keys   out;
	uint8_t		   two[32], v2[2] = { 1, 1 };

	/* The control: an untouched key is served, with its bytes. */
	assert_int_equal(take(s, "sae-b", "sae-a", t->ids + 16 * TK_OK, 1,
			     &out),
	    STORE_OK);
	assert_memory_equal(out.v[0].key, t->keys + TK_OK * KB, KB);
	etsi_keys_free(&out);
	/* Each edited key: refused, whoever asks, even whom the edit names. */
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++)
		assert_int_equal(take(s, asks[i].caller, asks[i].master,
				     asks[i].k == TK_ID ?
					 t->nid :
					 t->ids + 16 * asks[i].k,
				     1, &out),
		    STORE_NOTFOUND);
	store_get_stats(s, &st);
	/* The MASTER ask naming the real master finds no row: not counted. */
	assert_int_equal(st.tampered, 10);
	/* Not served later either, and not in a batch with a good key. */
	memcpy(two, t->ids + 16 * TK_OK, 16); /* sae-x's share */
	memcpy(two + 16, t->ids + 16 * TK_CT, 16);
	assert_int_equal(etsi_keys_alloc(&out, 2), 0);
	assert_int_equal(store_take(s, "sae-x", "sae-a", two, v2, 2, &out),
	    STORE_NOTFOUND);
	etsi_keys_free(&out);
}

/* The renamed chunk: the reservation fails once, drops it, then works. */
static void
tk_check_chunk(struct tk *t, struct store *s)
{
	struct store_stats st;
	struct store_resv  r;
	size_t		   avail;

	assert_int_equal(store_count(s), 3);
	assert_int_equal(store_reserve(s, 1, 0, &r, &avail), -1);
	assert_int_equal(store_count(s), 2);
	assert_int_equal(store_reserve(s, 1, 0, &r, &avail), 0);
	assert_memory_equal(r.ids[0], t->cids + 16, 16);
	assert_memory_equal(r.keys, t->ckeys + KB, KB);
	store_resv_free(&r);
	store_get_stats(s, &st);
	assert_int_equal(st.tampered, 12); /* + the batch, + the chunk */
}

/*
 * Every column that decides who gets a key, edited with sqlite3: the key is
 * refused (to the SAE the edit names too), counted as tampered, while an
 * untouched key is served.
 */
static void
test_file_tamper(void **state)
{
	static struct tk t;
	struct store	*s;

	memset(&t, 0, sizeof(t));
	t.f = *state;
	tk_fill(&t);
	tk_edit(&t);
	s = fx_open(t.f);
	tk_check_keys(&t, s);
	tk_check_chunk(&t, s);
	store_close(s);
	assert_int_equal(db_int(t.f->db, "SELECT count(*) FROM chunks"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_no_nonce_reuse,
		    setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_tamper, setup_file,
		    teardown),
	};

	log_init("test_store_seal", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

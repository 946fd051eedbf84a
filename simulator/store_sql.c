/*
 * Key store, SQLite backend (store_be.h): open, the sealing glue, chunks and
 * expiry; the assigned keys are in store_sqlkey.c.
 *
 * Tables meta, epochs, chunks (keyed by their position ord = batch << 24 |
 * index, the same at both KMEs: no random-ID index to maintain) and akeys
 * (WITHOUT ROWID, keyed by key ID, slaves and taken flags inline; 1 KiB
 * pages to keep the WAL small for this random-access load).
 *
 * Sealing (layout 2): common/sealep.h. Each opening of the database starts
 * a new epoch (a fresh random salt in the epochs table, record key
 * HKDF(KEK, salt, EP_INFO)); records carry their epoch (column ep) and use
 * a counter nonce held in memory only. Why this and not a counter in the
 * database (layout 1): a database recreated, restored from a copy or copied
 * elsewhere rewound that counter under the same KEK and reused (key, nonce)
 * pairs; a restored database is opened in a new epoch instead.
 *
 * The AAD binds every column that decides who gets a key and when: for a
 * chunk its position and ID; for an assigned key its ID, size, creation
 * time, master, slaves and per-slave taken flags (these change when one of
 * several slaves takes the key: the record is sealed again). An edited
 * record does not open: it is refused and counted (tampered), never served.
 *
 * One connection under the store mutex, prepared statements, one transaction
 * per operation. synchronous=FULL for the commits a delivery depends on
 * (store_assign at the slave side, store_take), NORMAL for the others: a
 * chunk lost in a crash is dropped by both KMEs on the next sync, never
 * served twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/buf.h"
#include "common/log.h"
#include "simulator/store_sql.h"

#define LAYOUT	   2
#define EP_INFO	   "qkd-sim store v2 record key"
#define CHECK_INFO "qkd-sim store v2 kek check"
#define AAD_MAX	   (64 + 2 * (ETSI_MAX_SLAVES + 2) * (ETSI_ID_MAX + 3))
#define SWEEP_MAX  4096 /* expired keys deleted per transaction */

static const char *const sql_stmt[ST__N] = {
	[ST_INS_CHUNK] =
	    "INSERT INTO chunks(ord, id, ep, ct) VALUES(?, ?, ?, ?)",
	[ST_SEL_OLD] =
	    "SELECT ord, id, ep, ct FROM chunks ORDER BY ord ASC LIMIT ?",
	[ST_SEL_NEW] =
	    "SELECT ord, id, ep, ct FROM chunks ORDER BY ord DESC LIMIT ?",
	[ST_DEL_ORD] = "DELETE FROM chunks WHERE ord = ?",
	[ST_SEL_ORD] = "SELECT id, ep, ct FROM chunks WHERE ord = ?",
	[ST_INS_KEY] =
	    "INSERT INTO akeys(id, master, slaves, taken, size, t, ep,"
	    " ct) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_SEL_KEY] =
	    "SELECT master, slaves, taken, size, t, ep, ct FROM akeys"
	    " WHERE id = ?",
	[ST_UPD_TAKEN] =
	    "UPDATE akeys SET taken = ?, ep = ?, ct = ? WHERE id = ?",
	[ST_DEL_KEY] = "DELETE FROM akeys WHERE id = ?",
	[ST_SEL_OLDKEYS] = "SELECT id, master, slaves, taken FROM akeys"
			   " WHERE t <= ? LIMIT 4096", /* SWEEP_MAX */
};

static const char sql_schema[] = SQLDB_META_SCHEMA
    "CREATE TABLE IF NOT EXISTS chunks(ord INTEGER PRIMARY KEY,"
    " id BLOB NOT NULL, ep INTEGER NOT NULL, ct BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS akeys(id BLOB PRIMARY KEY, master TEXT NOT NULL,"
    " slaves TEXT NOT NULL, taken BLOB NOT NULL, size INTEGER NOT NULL,"
    " t INTEGER NOT NULL, ep INTEGER NOT NULL, ct BLOB NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS akeys_t ON akeys(t);";

static const struct store_ops sql_ops;

/* --------------------------------------------------------- SQLite glue */

/* synchronous=FULL (full) or NORMAL, if not already. */
static int
sync_set(struct store_sql *q, int full)
{
	if (full == q->sync_full)
		return 0;
	if (sqldb_exec(&q->d,
		full ? "PRAGMA synchronous=FULL" :
		       "PRAGMA synchronous=NORMAL") == -1)
		return -1;
	q->sync_full = full;
	return 0;
}

int
store_sql_begin(struct store *s, int full)
{
	struct store_sql *q = sq(s);

	return sync_set(q, full) == -1 ? -1 : sqldb_begin(&q->d);
}

/* ---------------------------------------------------------- sealing */

static const char *const ep_users[] = { "chunks", "akeys" };

static const struct sealep_conf ep_conf = {
	.table = "epochs",
	.info = EP_INFO,
	.check_info = CHECK_INFO,
	.users = ep_users,
	.nusers = 2,
	.aad_max = AAD_MAX,
};

int
store_sql_ep_ensure(struct store *s, size_t need)
{
	struct store_sql *q = sq(s);

	if (sealep_room(q->ep, need))
		return 0;
	/* The new epoch's salt is committed with synchronous=FULL. */
	return sync_set(q, 1) == -1 ? -1 : sealep_next(q->ep);
}

int
store_sql_unseal(struct store *s, int64_t ep, const uint8_t *ct, size_t ctlen,
    uint8_t *pt)
{
	if (sealep_open(sq(s)->ep, ep, ct, ctlen, pt) == -1) {
		s->stats.tampered++;
		return -1;
	}
	return 0;
}

void
store_sql_aad_chunk(struct store *s, uint64_t ord, const uint8_t id[16])
{
	struct sealep *e = sq(s)->ep;

	sealep_aad_begin(e, "qkd-sim chunk v2");
	sealep_aad_u64(e, ord);
	sealep_aad_bytes(e, id, 16);
	sealep_aad_u32(e, (uint32_t)s->kb);
}

void
store_sql_aad_key(struct store *s, const uint8_t id[16], size_t size,
    uint64_t t, const char *master, const char *slaves, const uint8_t *taken,
    size_t ns)
{
	struct sealep *e = sq(s)->ep;

	sealep_aad_begin(e, "qkd-sim akey v2\n");
	sealep_aad_bytes(e, id, 16);
	sealep_aad_u32(e, (uint32_t)size);
	sealep_aad_u64(e, t);
	sealep_aad_str(e, master);
	sealep_aad_str(e, slaves);
	sealep_aad_u16(e, (uint16_t)ns);
	sealep_aad_bytes(e, taken, ns);
}

/* --------------------------------------------------------------- open */

/*
 * 0: a new file; 2: this layout; 1: the layout before sealing epochs (its
 * nonce counter lived in the database); -1 on error.
 */
static int
db_layout(struct store *s)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *st = NULL;
	int	      r = -1;

	if (sqlite3_prepare_v2(d->db,
		"SELECT count(*) FROM sqlite_master "
		"WHERE name = 'meta'",
		-1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto done;
	if (sqlite3_column_int(st, 0) == 0) {
		r = 0;
		goto done;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(d->db, "SELECT v FROM meta WHERE k = 'layout'",
		-1, &st, NULL) != SQLITE_OK)
		goto done;
	r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
done:
	sqlite3_finalize(st);
	return r;
}

/*
 * For each slave in a newline-joined list that has not taken the key
 * (taken NULL: none has), adds d to its pair with master.
 */
static int
slaves_each(const char *list, const uint8_t *taken, size_t ns,
    const char *master, struct store *s, long d)
{
	char	    sl[ETSI_ID_MAX + 1];
	size_t	    i = 0, n;
	const char *e;

	for (; list != NULL && master != NULL; i++) {
		e = strchr(list, '\n');
		n = e ? (size_t)(e - list) : strlen(list);
		if (n < sizeof(sl) &&
		    (taken == NULL || (i < ns && !taken[i]))) {
			memcpy(sl, list, n);
			sl[n] = '\0';
			if (store_pair_add(s, master, sl, d) == -1)
				return -1;
		}
		if (e == NULL)
			break;
		list = e + 1;
	}
	return 0;
}

/* Counts, and the per-pair waiting keys, from the tables. */
static int
sql_count(struct store *s)
{
	struct store_sql *q = sq(s);
	sqlite3_stmt	 *st = NULL;
	uint64_t	  n;
	int		  rc = -1;

	if (sqldb_u64(&q->d, "SELECT count(*) FROM chunks", &n) == -1)
		return -1;
	s->nchunks = (size_t)n;
	if (sqlite3_prepare_v2(q->d.db,
		"SELECT master, slaves, taken FROM akeys", -1, &st,
		NULL) != SQLITE_OK)
		goto done;
	while (sqlite3_step(st) == SQLITE_ROW) {
		s->nakeys++;
		if (slaves_each((const char *)sqlite3_column_text(st, 1),
			sqlite3_column_blob(st, 2),
			(size_t)sqlite3_column_bytes(st, 2),
			(const char *)sqlite3_column_text(st, 0), s, 1) == -1)
			goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

/* The layout check, the pragmas, the schema and the statements. */
static int
sql_connect(struct store *s, const char *path,
    const uint8_t kek[static SEAL_KEK_LEN], int *fresh, char *err,
    size_t errlen)
{
	struct store_sql *q = sq(s);
	char		  why[256] = "";
	int		  layout;

	if (sqldb_open(&q->d, path, "store", why, sizeof(why)) == -1 ||
	    (layout = db_layout(s)) == -1)
		goto fail;
	if (layout != 0 && layout != LAYOUT) {
		snprintf(err, errlen,
		    "db_path %s has the key store layout %d "
		    "(nonce counter kept in the database, which a restored copy "
		    "rewinds); this qkd-sim needs layout %d and does not convert "
		    "it: move the file away and start again (a new store; the "
		    "peer KME drops its matching unassigned keys, and keys "
		    "assigned but not fetched in the old file are lost)",
		    path, layout, LAYOUT);
		return -1;
	}
	*fresh = layout == 0;
	if (sqldb_exec(&q->d, "PRAGMA page_size=1024") == -1 ||
	    sqldb_wal(&q->d, why, sizeof(why)) == -1 ||
	    sqldb_exec(&q->d, "PRAGMA secure_delete=ON") == -1 ||
	    sqldb_exec(&q->d, "PRAGMA synchronous=FULL") == -1 ||
	    sqldb_exec(&q->d, sql_schema) == -1 ||
	    sqldb_prepare(&q->d, sql_stmt, ST__N, why, sizeof(why)) == -1 ||
	    sqldb_meta_init(&q->d, why, sizeof(why)) == -1 ||
	    (q->ep = sealep_new(&q->d, &ep_conf, kek, why, sizeof(why))) ==
		NULL)
		goto fail;
	q->sync_full = 1;
	return 0;
fail:
	snprintf(err, errlen, "db_path %s: %s", path,
	    *why != '\0' || q->d.db == NULL ? why : sqlite3_errmsg(q->d.db));
	return -1;
}

/* A new file: its layout, key size, generation and KEK check. */
static int
sql_init(struct store *s, const char *path, char *err, size_t errlen)
{
	struct store_sql *q = sq(s);

	if (RAND_bytes(s->gen, 16) != 1 || store_sql_begin(s, 1) == -1)
		return -1;
	if (sqldb_meta_set_u64(&q->d, "layout", LAYOUT) == -1 ||
	    sqldb_meta_set_u64(&q->d, "key_bytes", s->kb) == -1 ||
	    sqldb_meta_set_blob(&q->d, "gen", s->gen, 16) == -1 ||
	    sealep_kek_set(q->ep) == -1 || sqldb_commit(&q->d) == -1) {
		sqldb_rollback(&q->d);
		snprintf(err, errlen, "db_path %s: cannot initialise", path);
		return -1;
	}
	return 0;
}

int
store_sql_open(struct store *s, const char *path, const char *kek_file,
    char *err, size_t errlen)
{
	struct store_sql *q;
	uint8_t		  kek[SEAL_KEK_LEN];
	uint64_t	  v = 0;
	int		  fresh, rc;
	char		  why[256];

	if (kek_file == NULL || *kek_file == '\0') {
		snprintf(err, errlen, "db_path %s needs a kek_file", path);
		return -1;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return -1;
	}
	s->ops = &sql_ops;
	s->be = q;
	if (seal_kek_load(kek_file, kek, err, errlen) == -1)
		return -1;
	rc = sql_connect(s, path, kek, &fresh, err, errlen);
	OPENSSL_cleanse(kek, sizeof(kek));
	if (rc == -1)
		return -1;
	if (!fresh && (!sqldb_meta_u64(&q->d, "key_bytes", &v) || v != s->kb)) {
		snprintf(err, errlen,
		    "db_path %s holds keys of %llu bits, "
		    "key_size is %zu",
		    path, (unsigned long long)v * 8, s->kb * 8);
		return -1;
	}
	if (fresh) {
		if (sql_init(s, path, err, errlen) == -1)
			return -1;
	} else {
		if (!sealep_kek_ok(q->ep)) {
			snprintf(err, errlen,
			    "kek_file %s does not match "
			    "db_path %s",
			    kek_file, path);
			return -1;
		}
		(void)sqldb_meta_blob(&q->d, "gen", s->gen, 16);
		(void)sqldb_meta_blob(&q->d, "peer_gen", s->peer_gen, 16);
		(void)sqldb_meta_u64(&q->d, "last_seq", &s->last_seq);
	}
	if (sealep_start(q->ep, why, sizeof(why)) == -1 || sql_count(s) == -1) {
		snprintf(err, errlen, "db_path %s: cannot load: %s", path,
		    sqlite3_errmsg(q->d.db));
		return -1;
	}
	log_info("store: %s: %zu chunks, %zu assigned keys, sealing epoch %lld",
	    path, s->nchunks, s->nakeys, (long long)sealep_epoch(q->ep));
	return 0;
}

/*
 * Room to seal n chunks, a buffer for one sealed chunk (sec_alloc'd, NULL on
 * failure) and a transaction at synchronous=NORMAL.
 */
static uint8_t *
q_chunks_begin(struct store *s, size_t n)
{
	uint8_t *ct = sec_alloc(s->kb + SEAL_OVH);

	if (ct == NULL || store_sql_ep_ensure(s, n) == -1 ||
	    store_sql_begin(s, 0) == -1) {
		sec_free(ct, s->kb + SEAL_OVH);
		return NULL;
	}
	return ct;
}

/*
 * Seals one chunk (into ct) and inserts it: SQLITE_DONE, SQLITE_CONSTRAINT
 * (its position or ID is already there), another SQLite code, or -1 if it
 * could not be sealed.
 */
static int
q_insert_chunk(struct store *s, uint64_t ord, const uint8_t id[16],
    const uint8_t *key, uint8_t *ct)
{
	struct store_sql *q = sq(s);
	sqlite3_stmt	 *st;
	int		  r;

	store_sql_aad_chunk(s, ord, id);
	if (sealep_seal(q->ep, key, s->kb, ct) == -1)
		return -1;
	st = sqldb_st(&q->d, ST_INS_CHUNK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ord);
	sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, sealep_epoch(q->ep));
	sqlite3_bind_blob(st, 4, ct, (int)(s->kb + SEAL_OVH), SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_reset(st);
	return r;
}

/* Commits (ok) or rolls back what q_chunks_begin began, frees ct; 0 or -1. */
static int
q_chunks_end(struct store *s, uint8_t *ct, bool ok, size_t added)
{
	struct sqldb *d = &sq(s)->d;
	int	      rc = -1;

	if (ok && sqldb_commit(d) == 0) {
		s->nchunks += added;
		rc = 0;
	} else
		sqldb_rollback(d);
	sec_free(ct, s->kb + SEAL_OVH);
	return rc;
}

static int
q_add_chunks(struct store *s, uint64_t seq, size_t n, const uint8_t *ids,
    const uint8_t *keys)
{
	struct sqldb *d = &sq(s)->d;
	uint8_t	     *ct;
	size_t	      i, added = 0;
	int	      r;

	if ((ct = q_chunks_begin(s, n)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		r = q_insert_chunk(s, STORE_ORD(seq, i), ids + 16 * i,
		    keys + i * s->kb, ct);
		if (r == SQLITE_CONSTRAINT)
			continue; /* duplicate ID */
		if (r != SQLITE_DONE) {
			if (r != -1)
				log_err("store: insert chunk: %s",
				    sqlite3_errmsg(d->db));
			break;
		}
		added++;
	}
	return q_chunks_end(s, ct,
	    i == n && sqldb_meta_set_u64(d, "last_seq", seq) == 0, added);
}

static int
q_drop(struct store *s, bool all, uint64_t seq, const uint8_t *peer_gen,
    size_t *dropped)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *st;
	size_t	      n;

	if (store_sql_begin(s, 0) == -1)
		return -1;
	if (sqlite3_prepare_v2(d->db,
		all ? "DELETE FROM chunks" :
		      "DELETE FROM chunks WHERE ord >= ?",
		-1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (!all)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)STORE_ORD(seq + 1, 0));
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	n = (size_t)sqlite3_changes(d->db);
	if ((peer_gen != NULL &&
		sqldb_meta_set_blob(d, "peer_gen", peer_gen, 16) == -1) ||
	    sqldb_commit(d) == -1)
		goto fail;
	s->nchunks -= n < s->nchunks ? n : s->nchunks;
	*dropped = n;
	return 0;
fail:
	sqldb_rollback(d);
	return -1;
}

/* Deletes one chunk found edited or damaged, in its own transaction. */
static void
q_drop_bad_chunk(struct store *s, uint64_t ord)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *del;

	log_warn("store: chunk at position %llu does not authenticate (its "
		 "record was edited or damaged): deleted, never served",
	    (unsigned long long)ord);
	if (store_sql_begin(s, 0) == -1)
		return;
	del = sqldb_st(d, ST_DEL_ORD);
	sqlite3_bind_int64(del, 1, (sqlite3_int64)ord);
	if (sqldb_done(d, del, "delete chunk") == -1 || sqldb_commit(d) == -1) {
		sqldb_rollback(d);
		return;
	}
	if (sqlite3_changes(d->db) > 0 && s->nchunks > 0)
		s->nchunks--;
}

static int
q_reserve(struct store *s, struct store_resv *r)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *st, *del;
	size_t	      i = 0;
	int	      rc = -1, bad = 0;

	if (store_sql_begin(s, 0) == -1)
		return -1;
	st = sqldb_st(d, r->newest ? ST_SEL_NEW : ST_SEL_OLD);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->n);
	while (i < r->n && sqlite3_step(st) == SQLITE_ROW) {
		r->ord[i] = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != 16 ||
		    (size_t)sqlite3_column_bytes(st, 3) != s->kb + SEAL_OVH) {
			bad = 1;
			break;
		}
		memcpy(r->ids[i], sqlite3_column_blob(st, 1), 16);
		store_sql_aad_chunk(s, r->ord[i], r->ids[i]);
		if (store_sql_unseal(s, sqlite3_column_int64(st, 2),
			sqlite3_column_blob(st, 3), s->kb + SEAL_OVH,
			r->keys + i * s->kb) == -1) {
			bad = 1;
			break;
		}
		i++;
	}
	sqlite3_reset(st);
	if (i != r->n) {
		/* The store heals: the next reservation goes past it. */
		if (bad) {
			sqldb_rollback(d);
			OPENSSL_cleanse(r->keys, r->n * r->kb);
			q_drop_bad_chunk(s, r->ord[i]);
			return -1;
		}
		goto done;
	}
	for (i = 0; i < r->n; i++) {
		del = sqldb_st(d, ST_DEL_ORD);
		sqlite3_bind_int64(del, 1, (sqlite3_int64)r->ord[i]);
		if (sqldb_done(d, del, "delete chunk") == -1)
			goto done;
	}
	if (sqldb_commit(d) == -1)
		goto done;
	s->nchunks -= r->n;
	rc = 0;
done:
	if (rc == -1) {
		sqldb_rollback(d);
		OPENSSL_cleanse(r->keys, r->n * r->kb);
	}
	return rc;
}

static int
q_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	uint8_t *ct;
	size_t	 i, added = 0;
	int	 x = 0;

	if ((ct = q_chunks_begin(s, r->n)) == NULL)
		return -1;
	for (i = 0; i < r->n && x != -1; i++) {
		if (drop && drop[i])
			continue;
		x = q_insert_chunk(s, r->ord[i], r->ids[i], r->keys + i * s->kb,
		    ct);
		if (x == SQLITE_DONE)
			added++;
	}
	return q_chunks_end(s, ct, x != -1, added);
}

/* Rebuilds the per-pair counts from the table (after a failed sweep). */
static void
q_recount(struct store *s)
{
	store_pairs_zero(s);
	s->nakeys = 0;
	if (sql_count(s) == -1)
		log_err("store: cannot count the assigned keys");
}

/* Deletes (secure_delete: overwritten) up to SWEEP_MAX expired rows. */
static int
q_expire(struct store *s, uint64_t now, size_t *n)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *st;
	uint8_t	     *ids;
	size_t	      i, k = 0;
	int	      rc = -1;

	if ((ids = malloc(SWEEP_MAX * 16)) == NULL)
		return -1;
	if (store_sql_begin(s, 0) == -1) {
		free(ids);
		return -1;
	}
	st = sqldb_st(d, ST_SEL_OLDKEYS);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(now - s->ttl_ms));
	while (k < SWEEP_MAX && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 16)
			continue;
		memcpy(ids + 16 * k++, sqlite3_column_blob(st, 0), 16);
		(void)slaves_each((const char *)sqlite3_column_text(st, 2),
		    sqlite3_column_blob(st, 3),
		    (size_t)sqlite3_column_bytes(st, 3),
		    (const char *)sqlite3_column_text(st, 1), s, -1);
	}
	sqlite3_reset(st);
	for (i = 0; i < k; i++) {
		st = sqldb_st(d, ST_DEL_KEY);
		sqlite3_bind_blob(st, 1, ids + 16 * i, 16, SQLITE_STATIC);
		if (sqldb_done(d, st, "expire key") == -1)
			goto done;
	}
	if (sqldb_commit(d) == -1)
		goto done;
	s->nakeys -= k < s->nakeys ? k : s->nakeys;
	*n = k;
	rc = 0;
done:
	if (rc == -1) {
		sqldb_rollback(d);
		q_recount(s);
	}
	free(ids);
	return rc;
}

static void
q_close(struct store *s)
{
	struct store_sql *q = sq(s);

	if (q == NULL)
		return;
	sealep_free(q->ep);
	sqldb_close(&q->d);
	free(q);
	s->be = NULL;
}

static const struct store_ops sql_ops = {
	.add_chunks = q_add_chunks,
	.drop = q_drop,
	.reserve = q_reserve,
	.putback = q_putback,
	.assign = store_sql_assign,
	.take = store_sql_take,
	.expire = q_expire,
	.size_hint = NULL,
	.close = q_close,
};

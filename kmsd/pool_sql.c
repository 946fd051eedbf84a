/*
 * kmsd's pool: the database (pool_int.h), through common/sqldb.h.
 *
 * Schema 4 (meta "schema" = 4): table batches(id INTEGER PRIMARY KEY,
 * master, slave, fetched_ms, n, ids, ep, blob), one row per pool_add batch (at
 * most POOL_ROW_MAX keys; larger batches become several rows). id is the
 * row's sequence number, allocated from meta next_seq and never reused
 * (pool_sql_rollback keeps next_seq above every high-water mark,
 * kmsd/hwm.h). One index, on (master, slave) (rowid implied): leases take a
 * pair's rows in sequence order, which is what the high-water mark relies
 * on, and the range delete of a lease; expiry and min(fetched_ms) scan the
 * pair's rows (a few hundred at most). ids is the batch's key IDs as a JSON
 * array of strings (Jansson writes and reads it; the view keys(batch,
 * master, slave, key_id, fetched_ms) lists them one per row for operators),
 * blob = the n keys sealed together in sealing epoch ep (pool_seal.c;
 * table epochs holds the epochs' salts). A lease takes whole rows: one row
 * deleted per batch and one AES-GCM open per batch, instead of per key.
 * Schemas 1 to 3 are refused at open, not converted (schema 3 sealed rows
 * with random nonces straight under the KEK).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/log.h"
#include "kmsd/pool_int.h"

#define POOL_SCHEMA 4 /* meta "schema": sequences, epochs */

enum {
	ST_INS,
	ST_SEL_LEASE,
	ST_DEL_LEASE,
	ST_DEL_OLD,
	ST_MIN,
	ST_ALL_IDS,
	ST_DEL_BELOW,
	ST__N
};

static const char *const sql_stmt[ST__N] = {
	[ST_INS] = "INSERT INTO batches(id, master, slave, fetched_ms, n, ids, "
		   "ep, blob) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
	/* In sequence order: what the high-water mark relies on. */
	[ST_SEL_LEASE] = "SELECT id, fetched_ms, n, ids, ep, blob FROM batches "
			 "WHERE master = ? AND slave = ? AND fetched_ms >= ? "
			 "ORDER BY id LIMIT ?",
	/* Exactly the rows ST_SEL_LEASE returned, up to the last one. */
	[ST_DEL_LEASE] = "DELETE FROM batches WHERE master = ? AND slave = ? "
			 "AND fetched_ms >= ? AND id <= ?",
	[ST_DEL_OLD] = "DELETE FROM batches WHERE master = ? AND slave = ? "
		       "AND fetched_ms < ? RETURNING n, ids",
	[ST_MIN] = "SELECT min(fetched_ms) FROM batches "
		   "WHERE master = ? AND slave = ?",
	[ST_ALL_IDS] = "SELECT ids FROM batches",
	/* At open: rows at or below the pair's high-water mark. */
	[ST_DEL_BELOW] = "DELETE FROM batches WHERE master = ? AND slave = ? "
			 "AND id <= ? RETURNING n",
};

static const char sql_schema[] = SQLDB_META_SCHEMA
    "CREATE TABLE IF NOT EXISTS batches(id INTEGER PRIMARY KEY,"
    " master TEXT NOT NULL, slave TEXT NOT NULL,"
    " fetched_ms INTEGER NOT NULL, n INTEGER NOT NULL,"
    " ids TEXT NOT NULL, ep INTEGER NOT NULL, blob BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS epochs(ep INTEGER PRIMARY KEY,"
    " salt BLOB NOT NULL);"
    /* Gone: sealep.c keeps shared epochs safe (pool_seal.c). */
    "DROP VIEW IF EXISTS epochs_recent;"
    /* (master, slave, id): leases in sequence order, no sort. */
    "CREATE INDEX IF NOT EXISTS batches_pair ON batches(master, slave);"
    /* For operators (sqlite3 pool.db 'SELECT key_id FROM keys'). */
    "CREATE VIEW IF NOT EXISTS keys AS SELECT b.id AS batch, b.master,"
    " b.slave, j.value AS key_id, b.fetched_ms FROM batches b,"
    " json_each(b.ids) j;";

/* An older (or newer) layout: refused, with what to do (two %s: the path). */
static const char old_layout[] =
    "pool %s: the database has another layout "
    "than this kmsd's (schema 4: rows of keys with sequence numbers, sealed "
    "in sealing epochs) and is not "
    "converted: stop kmsd, delete %s and its -wal and -shm files, and start "
    "again (the pool only caches keys the KME already delivered: deleting it "
    "loses those keys, which is safe)";

static void
bind_pair(sqlite3_stmt *st, const struct pair *pr)
{
	sqlite3_bind_text(st, 1, pr->master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pr->slave, -1, SQLITE_STATIC);
}

/* ------------------------------------------------------------- ids codec */

/*
 * The key IDs of keys[first .. first + n) as a JSON array of strings, into
 * out (outlen bytes); its length, or 0 (logged) if an ID is not UTF-8 or
 * out of memory.
 */
size_t
pool_ids_encode(const struct etsi_keys *keys, size_t first, size_t n, char *out,
    size_t outlen)
{
	json_t *a = json_array();
	size_t	i, len = 0;

	for (i = first; a != NULL && i < first + n; i++)
		if (json_array_append_new(a, json_string(keys->v[i].id)) == -1)
			break;
	if (a != NULL && i == first + n)
		len = json_dumpb(a, out, outlen, JSON_COMPACT);
	json_decref(a);
	if (len == 0 || len > outlen) {
		log_err("pool: add: key ID \"%s\" cannot be stored (not UTF-8, "
			"or out of memory)",
		    keys->v[i < first + n ? i : first].id);
		return 0;
	}
	return len;
}

int
pool_ids_decode(const char *s, size_t len, size_t n,
    void (*fn)(void *, size_t, const char *), void *arg)
{
	json_t *a, *v;
	size_t	i, l;
	int	rc = -1;

	if ((a = json_loadb(s, len, 0, NULL)) == NULL)
		return -1;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > POOL_ROW_MAX ||
	    (n != 0 && json_array_size(a) != n))
		goto done;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || (l = json_string_length(v)) == 0 ||
		    l > ETSI_KEY_ID_MAX || strlen(json_string_value(v)) != l)
			goto done;
	}
	/* json_array_foreach spelt out: cppcheck does not know the macro. */
	for (i = 0; i < json_array_size(a); i++)
		fn(arg, i, json_string_value(json_array_get(a, i)));
	rc = 0;
done:
	json_decref(a);
	return rc;
}

/* ------------------------------------------------------------ writing */

int
pool_row_buf_alloc(struct pool *p, struct row_buf *rb, size_t nkeys)
{
	rb->max = nkeys < POOL_ROW_MAX ? nkeys : POOL_ROW_MAX;
	rb->ids = malloc(2 + rb->max * POOL_ID_JSON);
	rb->pt = sec_alloc(rb->max * p->kb);
	rb->blob = malloc(rb->max * p->kb + SEAL_OVERHEAD);
	return rb->ids && rb->pt && rb->blob ? 0 : -1;
}

void
pool_row_buf_free(struct pool *p, struct row_buf *rb)
{
	free(rb->ids);
	sec_free(rb->pt, rb->max * p->kb);
	free(rb->blob);
	memset(rb, 0, sizeof(*rb));
}

static int
row_insert(struct pool *p, const struct pool_row *r, const uint8_t *blob)
{
	sqlite3_stmt *st = sqldb_st(&p->db, ST_INS);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_text(st, 2, r->pr->master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->pr->slave, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->fetched_ms);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->n);
	sqlite3_bind_text(st, 6, r->ids, (int)r->idslen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->ep);
	sqlite3_bind_blob(st, 8, blob, (int)(r->n * p->kb + SEAL_OVERHEAD),
	    SQLITE_STATIC);
	return sqldb_done(&p->db, st, "add");
}

/* In a transaction: keys[first .. first + n) as one row, sequence seq. */
static int
add_row(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb,
    uint64_t seq)
{
	struct pool_row r = { seq, 0, pr, fetched_ms, n, rb->ids, 0 };
	size_t		i;
	int		rc;

	if ((r.idslen = pool_ids_encode(keys, first, n, rb->ids,
		 2 + rb->max * POOL_ID_JSON)) == 0)
		return -1;
	for (i = 0; i < n; i++)
		memcpy(rb->pt + i * p->kb, keys->v[first + i].key, p->kb);
	rc = pool_seal_row(p, &r, rb->pt, rb->blob);
	OPENSSL_cleanse(rb->pt, n * p->kb);
	return rc == -1 ? -1 : row_insert(p, &r, rb->blob);
}

/*
 * In a transaction: keys[first .. first + n) as rows of at most
 * POOL_ROW_MAX keys, all stamped fetched_ms, with the next sequence
 * numbers. next_seq lives in the meta table and is read inside the write
 * transaction: several processes may share the pool.
 */
int
pool_sql_add(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb)
{
	uint64_t seq;
	size_t	 i, m;

	if (!sqldb_meta_u64(&p->db, "next_seq", &seq) || seq == 0 ||
	    seq > INT64_MAX / 2) {
		log_err("pool: meta next_seq is missing or out of range");
		return -1;
	}
	for (i = first; i < first + n; i += m, seq++) {
		m = first + n - i < POOL_ROW_MAX ? first + n - i : POOL_ROW_MAX;
		if (add_row(p, pr, keys, i, m, fetched_ms, rb, seq) == -1)
			return -1;
	}
	return sqldb_meta_set_u64(&p->db, "next_seq", seq);
}

/* ------------------------------------------------------------ reading */

/* Room for n rows in p->rows. */
int
pool_rows_grow(struct pool *p, size_t n)
{
	struct lrow *r;
	size_t	     cap;

	if (n <= p->rows_cap)
		return 0;
	cap = p->rows_cap ? 2 * p->rows_cap : 64;
	if (cap < n)
		cap = n;
	if ((r = realloc(p->rows, cap * sizeof(*r))) == NULL)
		return -1;
	memset(r + p->rows_cap, 0, (cap - p->rows_cap) * sizeof(*r));
	p->rows = r;
	p->rows_cap = cap;
	return 0;
}

int
pool_gbuf_set(struct gbuf *g, const void *src, size_t n)
{
	void *b;

	if (n > g->cap) {
		if ((b = realloc(g->p, n)) == NULL)
			return -1;
		g->p = b;
		g->cap = n;
	}
	if (n > 0 && src != NULL)
		memcpy(g->p, src, n);
	g->len = src != NULL ? n : 0;
	return 0;
}

/* Copies a column's bytes into a growable buffer; -1 out of memory. */
static int
col_copy(sqlite3_stmt *st, int col, bool text, struct gbuf *g)
{
	const void *src = text ? (const void *)sqlite3_column_text(st, col) :
				 sqlite3_column_blob(st, col);

	return pool_gbuf_set(g, src, (size_t)sqlite3_column_bytes(st, col));
}

/* The n column, 0 if out of range (the row then never opens). */
static size_t
col_n(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);

	return v > 0 && v <= POOL_ROW_MAX ? (size_t)v : 0;
}

/* One selected row into p->rows[i]; -1 out of memory. */
static int
row_read(struct pool *p, sqlite3_stmt *st, size_t i)
{
	struct lrow *r;

	if (pool_rows_grow(p, i + 1) == -1)
		return -1;
	r = &p->rows[i];
	r->seq = sqlite3_column_int64(st, 0);
	r->fetched_ms = (uint64_t)sqlite3_column_int64(st, 1);
	r->n = col_n(st, 2);
	r->ep = sqlite3_column_int64(st, 4);
	return col_copy(st, 3, true, &r->ids) == -1 ||
		col_copy(st, 5, false, &r->blob) == -1 ?
	    -1 :
	    0;
}

/*
 * Inside the lease transaction: the oldest unexpired rows of the pair into
 * p->rows until they hold at least `want` keys (whole rows: a lease is
 * rounded up to whole batches).
 */
int
pool_sql_lease_select(struct pool *p, struct pair *pr, uint64_t cutoff,
    size_t want, size_t *nrows, size_t *nkeys)
{
	sqlite3_stmt *st = sqldb_st(&p->db, ST_SEL_LEASE);
	size_t	      n = 0, keys = 0;
	int	      rc = SQLITE_DONE;

	*nrows = *nkeys = 0;
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)want);
	while (keys < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_read(p, st, n) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		keys += p->rows[n++].n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_err("pool: lease select: %s",
		    rc == SQLITE_NOMEM ? "out of memory" :
					 sqlite3_errmsg(p->db.db));
		return -1;
	}
	*nrows = n;
	*nkeys = keys;
	return 0;
}

/* Inside the lease transaction: deletes the nrows rows just selected
 * (corrupt ones too), in one range delete: ~2x cheaper than one per row. */
int
pool_sql_lease_delete(struct pool *p, struct pair *pr, uint64_t cutoff,
    size_t nrows)
{
	sqlite3_stmt *st = sqldb_st(&p->db, ST_DEL_LEASE);

	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, p->rows[nrows - 1].seq);
	if (sqldb_done(&p->db, st, "lease delete") == -1)
		return -1;
	if ((size_t)sqlite3_changes(p->db.db) != nrows) {
		/* Cannot happen inside one write transaction; never guess. */
		log_err("pool: lease delete removed %d rows, selected %zu",
		    sqlite3_changes(p->db.db), nrows);
		return -1;
	}
	return 0;
}

static void
retire_one(void *arg, size_t i, const char *id)
{
	struct pool *p = arg;

	(void)i;
	pool_retire_push(p, idset_hash(&p->ids, id));
}

void
pool_retire_ids(struct pool *p, const char *ids, size_t len)
{
	(void)pool_ids_decode(ids, len, 0, retire_one, p);
}

/*
 * Inside a transaction: deletes the pair's expired rows and queues their
 * IDs for retirement (a list that does not parse retires nothing: a
 * superset is safe); count (keys) in *n. The caller drops the queued IDs
 * (pool_retire_cut) if the transaction then fails.
 */
int
pool_sql_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	sqlite3_stmt *st = sqldb_st(&p->db, ST_DEL_OLD);
	const char   *ids;
	int	      rc;

	*n = 0;
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((ids = (const char *)sqlite3_column_text(st, 1)) != NULL)
			pool_retire_ids(p, ids,
			    (size_t)sqlite3_column_bytes(st, 1));
		*n += col_n(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: expire: %s", sqlite3_errmsg(p->db.db));
		return -1;
	}
	return 0;
}

/* The oldest fetched_ms still on disk for the pair (index lookup). */
int
pool_sql_disk_min(struct pool *p, struct pair *pr)
{
	sqlite3_stmt *st = sqldb_st(&p->db, ST_MIN);
	int	      rc;

	bind_pair(st, pr);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		pr->disk_min_ms = sqlite3_column_type(st, 0) == SQLITE_NULL ?
		    POOL_NO_MS :
		    (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		log_err("pool: min(fetched_ms): %s", sqlite3_errmsg(p->db.db));
		return -1;
	}
	return 0;
}

/* --------------------------------------------------------------- open */

/* One integer from a query, at open (not logged: the caller says). */
static int
open_u64(struct pool *p, const char *sql, uint64_t *v)
{
	sqlite3_stmt *st;
	int	      rc = -1;

	if (sqlite3_prepare_v2(p->db.db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Before the schema is created: an older layout is refused, with what to
 * do. Schema 1 had a table keys (one row per key, now a view); every
 * database since records its schema with its key size in one transaction.
 */
static int
layout_check(struct pool *p, const char *path, char *err, size_t errlen)
{
	uint64_t keys = 0, meta = 0, kb = 0, schema = 0;

	if (open_u64(p,
		"SELECT count(*) FROM sqlite_master WHERE type = "
		"'table' AND name = 'keys'",
		&keys) == -1 ||
	    open_u64(p,
		"SELECT count(*) FROM sqlite_master WHERE type = "
		"'table' AND name = 'meta'",
		&meta) == -1 ||
	    (meta &&
		(open_u64(p,
		     "SELECT count(*) FROM meta WHERE k = "
		     "'key_bytes'",
		     &kb) == -1 ||
		    open_u64(p,
			"SELECT coalesce("
			"(SELECT v FROM meta WHERE k = 'schema'), 0)",
			&schema) == -1))) {
		snprintf(err, errlen, "pool %s: %s", path,
		    sqlite3_errmsg(p->db.db));
		return -1;
	}
	if (keys > 0 || (kb > 0 && schema != POOL_SCHEMA)) {
		snprintf(err, errlen, old_layout, path, path);
		return -1;
	}
	return 0;
}

int
pool_sql_open(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen)
{
	const char *path = cfg->db_path;
	char	    why[256];

	if (sqldb_open(&p->db, path, "pool", why, sizeof(why)) == -1 ||
	    sqldb_wal(&p->db, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "pool %s: %s", path, why);
		return -1;
	}
	/* FULL: every COMMIT is on stable storage before it returns. */
	if (sqldb_exec(&p->db, "PRAGMA synchronous=FULL") == -1 ||
	    sqldb_exec(&p->db, "PRAGMA secure_delete=ON") == -1)
		goto fail;
	if (layout_check(p, path, err, errlen) == -1)
		return -1;
	if (sqldb_exec(&p->db, sql_schema) == -1)
		goto fail;
	if (sqldb_prepare(&p->db, sql_stmt, ST__N, why, sizeof(why)) == -1 ||
	    sqldb_meta_init(&p->db, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "pool %s: %s", path, why);
		return -1;
	}
	p->db_ready = true;
	return 0;
fail:
	snprintf(err, errlen, "pool %s: %s", path, sqlite3_errmsg(p->db.db));
	return -1;
}

void
pool_rows_free(struct pool *p)
{
	for (size_t i = 0; i < p->rows_cap; i++) {
		free(p->rows[i].ids.p);
		free(p->rows[i].blob.p);
	}
	free(p->rows);
	p->rows = NULL;
	p->rows_cap = 0;
}

void
pool_sql_close(struct pool *p)
{
	pool_rows_free(p);
	sqldb_close(&p->db);
	p->db_ready = false;
}

/* A new database: its key size, layout, first sequence and KEK check. */
static int
meta_new(struct pool *p, const char *path, char *err, size_t errlen)
{
	if (sqldb_begin(&p->db) == -1 || pool_seal_check_new(p) == -1 ||
	    sqldb_meta_set_u64(&p->db, "key_bytes", p->kb) == -1 ||
	    sqldb_meta_set_u64(&p->db, "schema", POOL_SCHEMA) == -1 ||
	    sqldb_meta_set_u64(&p->db, "next_seq", 1) == -1 ||
	    sqldb_commit(&p->db) == -1) {
		sqldb_rollback(&p->db);
		snprintf(err, errlen, "pool %s: cannot initialise: %s", path,
		    sqlite3_errmsg(p->db.db));
		return -1;
	}
	return 0;
}

/*
 * A new database records key_bytes and a KEK check value; an existing
 * one must match both, so that a wrong KEK or key size is refused at open
 * rather than discovered key by key.
 */
int
pool_sql_meta_check(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen)
{
	uint64_t kb;

	/* layout_check refused any other schema. */
	if (!sqldb_meta_u64(&p->db, "key_bytes", &kb))
		return meta_new(p, cfg->db_path, err, errlen);
	if (kb != p->kb) {
		snprintf(err, errlen,
		    "pool %s holds %llu-byte keys, key_bytes "
		    "is %u (use another db_path for another key size)",
		    cfg->db_path, (unsigned long long)kb, cfg->key_bytes);
		return -1;
	}
	if (!pool_seal_check_ok(p)) {
		snprintf(err, errlen,
		    "kek_file %s does not match pool %s: its "
		    "keys were sealed under another key-encryption key",
		    cfg->kek_file, cfg->db_path);
		return -1;
	}
	return 0;
}

/* In a transaction: drops the rows at or below each pair's mark. */
static int
rollback_marks(struct pool *p, uint64_t *rows, uint64_t *keys)
{
	sqlite3_stmt *st;
	int	      rc;

	for (size_t i = 0; i < p->hwm.n; i++) {
		st = sqldb_st(&p->db, ST_DEL_BELOW);
		sqlite3_bind_text(st, 1, p->hwm.v[i].master, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p->hwm.v[i].slave, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)p->hwm.v[i].mark);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			(*rows)++;
			*keys += (uint64_t)sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			log_err("pool: rollback check: %s",
			    sqlite3_errmsg(p->db.db));
			return -1;
		}
	}
	return 0;
}

/* In a transaction: drops every row (they belong to another pool ID). */
static int
rollback_all(struct pool *p, uint64_t *rows, uint64_t *keys)
{
	if (sqldb_u64(&p->db, "SELECT count(*) FROM batches", rows) == -1 ||
	    sqldb_u64(&p->db, "SELECT coalesce(sum(n), 0) FROM batches",
		keys) == -1)
		return -1;
	return sqldb_exec(&p->db, "DELETE FROM batches");
}

/* In a transaction: next_seq above every row and every mark. */
static int
seq_raise(struct pool *p)
{
	uint64_t next = 0, maxid = 0;

	if (sqldb_u64(&p->db, "SELECT coalesce(max(id), 0) FROM batches",
		&maxid) == -1)
		return -1;
	(void)sqldb_meta_u64(&p->db, "next_seq", &next);
	if (next <= maxid)
		next = maxid + 1;
	if (next <= hwm_max(&p->hwm))
		next = hwm_max(&p->hwm) + 1;
	return sqldb_meta_set_u64(&p->db, "next_seq", next);
}

static void
rollback_log(struct pool *p, const char *db_path, bool foreign, uint64_t rows,
    uint64_t keys)
{
	if (rows > 0 && foreign)
		log_warn(
		    "pool %s: %llu keys in %llu rows dropped, never served: "
		    "the database does not belong to the high-water mark file "
		    "%s (that file was lost or replaced, or the database was "
		    "copied from another pool)",
		    db_path, (unsigned long long)keys, (unsigned long long)rows,
		    p->hwm.path);
	else if (rows > 0)
		log_warn(
		    "pool %s: %llu keys in %llu restored/rolled back rows "
		    "refused and wiped: they were leased before (an older copy "
		    "of the database was restored, or a crash came between a "
		    "lease's high-water mark and its commit)",
		    db_path, (unsigned long long)keys,
		    (unsigned long long)rows);
}

/*
 * At open, one FULL transaction: the high-water marks against the database.
 * If the database's pool ID is not the mark file's (that file was lost or
 * replaced, or the database comes from another pool), every row is dropped;
 * otherwise each pair's rows at or below its mark: they were leased before
 * and are back because an older copy of the database was restored (or a
 * crash fell between a lease's mark and its COMMIT). Dropped rows are wiped
 * (secure_delete), logged and counted, never served. next_seq is raised
 * above every mark and row, so a new row never takes a consumed sequence.
 */
int
pool_sql_rollback(struct pool *p, const char *db_path, bool fresh, char *err,
    size_t errlen)
{
	uint8_t	 id[HWM_ID_LEN];
	uint64_t rows = 0, keys = 0;
	bool	 foreign;

	/* A new pool ID is durable before any row is sealed with it. */
	if (fresh && hwm_save(&p->hwm, p->seal, err, errlen) == -1)
		return -1;
	if (sqldb_begin(&p->db) == -1)
		goto fail;
	foreign = !sqldb_meta_blob(&p->db, "pool_id", id, sizeof(id)) ||
	    CRYPTO_memcmp(id, p->hwm.id, HWM_ID_LEN) != 0;
	if ((foreign ? rollback_all(p, &rows, &keys) :
		       rollback_marks(p, &rows, &keys)) == -1 ||
	    sqldb_meta_set_blob(&p->db, "pool_id", p->hwm.id, HWM_ID_LEN) ==
		-1 ||
	    seq_raise(p) == -1 || sqldb_commit(&p->db) == -1)
		goto fail;
	rollback_log(p, db_path, foreign, rows, keys);
	p->stats.rolled_back_rows += rows;
	p->stats.rolled_back_keys += keys;
	return 0;
fail:
	sqldb_rollback(&p->db);
	snprintf(err, errlen,
	    "pool %s: cannot check the rows against the "
	    "high-water marks in %s: %s",
	    db_path, p->hwm.path, sqlite3_errmsg(p->db.db));
	return -1;
}

struct ids_load {
	struct pool *p;
	bool	     oom;
};

static void
load_one(void *arg, size_t i, const char *id)
{
	struct ids_load *l = arg;

	(void)i;
	if (!l->oom && idset_add(&l->p->ids, idset_hash(&l->p->ids, id)) == -1)
		l->oom = true;
}

/* The ID set from the database. A list that does not parse is never served
 * (pool_lease_load drops its row): its IDs need not be in the set. */
static int
ids_load(struct pool *p)
{
	sqlite3_stmt   *st = sqldb_st(&p->db, ST_ALL_IDS);
	struct ids_load l = { p, false };
	const char     *ids;
	int		rc;

	while (!l.oom && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((ids = (const char *)sqlite3_column_text(st, 0)) != NULL)
			(void)pool_ids_decode(ids,
			    (size_t)sqlite3_column_bytes(st, 0), 0, load_one,
			    &l);
	sqlite3_reset(st);
	if (l.oom)
		log_err("pool: cannot build the key ID set: out of memory");
	return l.oom || rc != SQLITE_DONE ? -1 : 0;
}

/* The pairs present on disk, with their exact counts. */
static int
pairs_load(struct pool *p)
{
	sqlite3_stmt *st;
	struct pair  *pr;
	int	      rc;

	if (sqlite3_prepare_v2(p->db.db,
		"SELECT master, slave, sum(n), "
		"min(fetched_ms) FROM batches GROUP BY master, slave",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		const char *s = (const char *)sqlite3_column_text(st, 1);

		if (!etsi_id_valid(m) || !etsi_id_valid(s)) {
			log_warn("pool: rows with an invalid SAE pair ignored");
			continue;
		}
		if ((pr = pool_pair_get(p, m, s)) == NULL)
			break;
		pr->ndisk = (size_t)sqlite3_column_int64(st, 2);
		pr->disk_min_ms = (uint64_t)sqlite3_column_int64(st, 3);
		log_info("pool: (%s, %s): %zu keys on disk", m, s, pr->ndisk);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* At open: the pairs on disk and the ID set. */
int
pool_sql_load(struct pool *p, const char *db_path, char *err, size_t errlen)
{
	if (pairs_load(p) == 0 && ids_load(p) == 0)
		return 0;
	snprintf(err, errlen, "pool %s: cannot load the pool: %s", db_path,
	    sqlite3_errmsg(p->db.db));
	return -1;
}

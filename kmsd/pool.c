/*
 * kmsd's key pool (pool.h): SQLite on disk, leases in memory.
 *
 * Table keys(id INTEGER PRIMARY KEY, master, slave, key_id, fetched_ms,
 * blob) with one index, on (master, slave, fetched_ms): it serves "oldest
 * unexpired first" for leases (ties broken by rowid, which is insertion order
 * and part of every index entry), the range delete of a lease, the range
 * delete of expired rows, and min(fetched_ms). blob = seal(key) with AAD =
 * key_id, master, slave and fetched_ms, so a row edited on disk to move a key
 * to another pair, or to make it look younger, no longer opens.
 *
 * Key IDs are kept unique by an in-memory set, not by a UNIQUE index: KME key
 * IDs are random UUIDs, so deleting a lease of 256 rows would touch ~256
 * random index pages, all written to the WAL and fsynced; measured, that made
 * a lease refill 4x slower. The set holds keyed 64-bit hashes of the IDs in a
 * flat open-addressing table (no per-ID allocation). It is a multiset and
 * always a superset of the IDs on disk and in the leases (IDs leave it only
 * after their key left both), so "hash present" never misses a duplicate;
 * two distinct IDs with one hash (about n / 2^64 per add) only make pool_add
 * refuse a batch, which is safe.
 *
 * The no-key-twice guarantee rests on one ordering: a key leaves the database
 * in a committed synchronous=FULL transaction (the WAL is fsynced before
 * COMMIT returns) before it is unsealed, and is served only from memory after
 * that. A kill -9 or power cut therefore loses at most the unserved keys in
 * memory; nothing that was served can come back. Every commit is FULL: the
 * ones that are not on the serving path (add, expire) are rare, and one mode
 * avoids a PRAGMA per transaction.
 *
 * Two locks, always taken in this order: dbmu, then mu.
 *  - dbmu (the database side): the SQLite connection and its statements, the
 *    ID set, the lease staging buffers (rows, stage), the retire list, and
 *    per pair ndisk and disk_min_ms.
 *  - mu (the memory side): per pair the in-memory queue (lk, lbytes, head,
 *    n, cap, lease_min_ms, asked) and the notify callback.
 *  - The pair list is written under both and read under either; pairs are
 *    freed only by pool_close.
 * pool_take serves under mu alone (the fast path: no SQLite, no ID set, no
 * allocation). Keys move from disk into a pair's queue in two steps: under
 * dbmu alone a lease is read, deleted, committed and unsealed into `stage`
 * (lease_load); then under mu the queue is compacted and the stage appended
 * (lease_attach). pool_prefetch does this in the background whenever fewer
 * than lease_size keys are left in memory, so the queue normally holds the
 * current lease plus a standby one; pool_take leases synchronously (both
 * locks held) only when the queue cannot satisfy it.
 *
 * Served and expired queue entries keep their ID hash until the queue is
 * compacted (always under both locks); compaction moves those hashes to the
 * retire list, and they leave the ID set when dbmu is released (retire_flush),
 * outside mu. Expired rows deleted on disk go through the retire list too, so
 * a rolled-back transaction simply forgets them (retire_cut).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/timeutil.h"
#include "kmsd/pool.h"

#define POOL_LEASE_MAX	100000u		/* lease_size limit, as kmsd/config.c */
#define POOL_BUSY_MS	5000
#define POOL_AAD_MAX	(ETSI_KEY_ID_MAX + 2 * ETSI_ID_MAX + 3 + 8)
#define POOL_NO_MS	UINT64_MAX	/* "no row": min of an empty set */
/* pool_prefetch leases when fewer than this many leases' worth of keys are
 * in memory, topping up to one lease more: the slack the refill thread has to
 * deliver the next one under full load. Memory never holds more than
 * (POOL_STANDBY + 1) leases per pair through prefetching; that is what a
 * crash can discard. */
#define POOL_STANDBY	2

static const char kek_check_aad[] = "kmsd pool kek check";

enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_INS, ST_SEL_LEASE, ST_DEL_LEASE,
	ST_DEL_OLD, ST_MIN, ST_META_GET, ST_META_SET, ST_ALL_IDS, ST__N };

static const char *const sql_stmt[ST__N] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INS] = "INSERT INTO keys(master, slave, key_id, fetched_ms, blob) "
	    "VALUES(?, ?, ?, ?, ?)",
	[ST_SEL_LEASE] = "SELECT id, key_id, fetched_ms, blob FROM keys "
	    "WHERE master = ? AND slave = ? AND fetched_ms >= ? "
	    "ORDER BY fetched_ms, id LIMIT ?",
	/* Exactly the rows ST_SEL_LEASE returned, up to the last one. */
	[ST_DEL_LEASE] = "DELETE FROM keys WHERE master = ? AND slave = ? "
	    "AND fetched_ms >= ? AND (fetched_ms, id) <= (?, ?)",
	[ST_DEL_OLD] = "DELETE FROM keys WHERE master = ? AND slave = ? "
	    "AND fetched_ms < ? RETURNING key_id",
	[ST_MIN] = "SELECT min(fetched_ms) FROM keys WHERE master = ? AND slave = ?",
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)",
	[ST_ALL_IDS] = "SELECT key_id FROM keys",
};

static const char sql_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB);"
	"CREATE TABLE IF NOT EXISTS keys(id INTEGER PRIMARY KEY,"
	" master TEXT NOT NULL, slave TEXT NOT NULL,"
	" key_id TEXT NOT NULL, fetched_ms INTEGER NOT NULL,"
	" blob BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS keys_pair ON keys(master, slave, fetched_ms);";

/* A leased key's metadata; its bytes are at the same index alongside. */
struct lkey {
	char		 id[ETSI_KEY_ID_MAX + 1];
	uint64_t	 fetched_ms;
	uint64_t	 h;		/* ids_hash(id): retired without rehashing */
};

struct pair {
	struct pair	*next;		/* written under dbmu and mu */
	char		 master[ETSI_ID_MAX + 1];
	char		 slave[ETSI_ID_MAX + 1];
	/* Under dbmu. */
	size_t		 ndisk;		/* rows in the database, exact */
	uint64_t	 disk_min_ms;	/* oldest fetched_ms on disk, POOL_NO_MS */
	/* Under mu. The queue: entries [head, head + n) of cap, served from
	 * head; [0, head) were served or expired and await compaction. */
	struct lkey	*lk;
	uint8_t		*lbytes;	/* cap * key_bytes, sec_alloc */
	size_t		 head, n, cap;
	uint64_t	 lease_min_ms;	/* <= every queued fetched_ms */
	int		 asked;		/* prefetch asked for, or pointless */
};

/* Keyed 64-bit hashes of the key IDs in the pool: see the top comment. */
struct idset {
	uint64_t	*t;		/* 0 = empty slot */
	size_t		 cap;		/* a power of 2, at least 2 * n */
	size_t		 n;
	uint64_t	 seed[2];
};

/* Rows read by a lease transaction, before they are unsealed. */
struct lrow {
	sqlite3_int64	 rowid;
	struct lkey	 k;
	int		 bad;		/* blob of the wrong size */
	uint8_t		*blob;		/* kb + SEAL_OVERHEAD */
};

struct pool {
	pthread_mutex_t	 dbmu;
	pthread_mutex_t	 mu;
	/* Set at open, then read-only. */
	size_t		 kb;		/* key bytes */
	size_t		 lease_size;
	uint64_t	 ttl_ms;
	/* Under dbmu. */
	sqlite3		*db;
	sqlite3_stmt	*st[ST__N];
	struct seal	*seal;
	struct idset	 ids;
	struct lrow	*rows;
	size_t		 rows_cap;
	struct lkey	*stage;		/* an unsealed lease, not yet attached */
	uint8_t		*sbytes;	/* scap * kb, sec_alloc */
	size_t		 sn, scap;
	uint64_t	*retire;	/* hashes to drop from the ID set */
	size_t		 nretire, retire_cap;
	/* Under mu (and dbmu too for writes to the list). */
	struct pair	*pairs;
	void		(*notify)(void *);
	void		*notify_arg;
};
/* ----------------------------------------------------------- SQLite */

static int
db_exec(struct pool *p, const char *sql)
{
	char	*msg = NULL;

	if (sqlite3_exec(p->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("pool: %s: %s", sql, msg ? msg : sqlite3_errmsg(p->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
db_st(struct pool *p, int i)
{
	sqlite3_reset(p->st[i]);
	sqlite3_clear_bindings(p->st[i]);
	return p->st[i];
}

/* Runs a statement that returns no row; -1 logged with `what`. */
static int
db_done(struct pool *p, sqlite3_stmt *st, const char *what)
{
	int	rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: %s: %s", what, sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

static int
db_begin(struct pool *p)
{
	return db_done(p, db_st(p, ST_BEGIN), "BEGIN");
}

static void
db_rollback(struct pool *p)
{
	/* After a failed COMMIT SQLite may already have rolled back. */
	if (!sqlite3_get_autocommit(p->db))
		(void)db_done(p, db_st(p, ST_ROLLBACK), "ROLLBACK");
}

static int
db_commit(struct pool *p)
{
	if (db_done(p, db_st(p, ST_COMMIT), "COMMIT") == -1) {
		db_rollback(p);
		return -1;
	}
	return 0;
}

static void
bind_pair(sqlite3_stmt *st, const struct pair *pr)
{
	sqlite3_bind_text(st, 1, pr->master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pr->slave, -1, SQLITE_STATIC);
}

/* The oldest fetched_ms still on disk for the pair (index lookup). */
static int
disk_min_refresh(struct pool *p, struct pair *pr)
{
	sqlite3_stmt	*st = db_st(p, ST_MIN);
	int		 rc;

	bind_pair(st, pr);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		pr->disk_min_ms = sqlite3_column_type(st, 0) == SQLITE_NULL ?
		    POOL_NO_MS : (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		log_err("pool: min(fetched_ms): %s", sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------- sealing */

static size_t
pool_aad(uint8_t out[static POOL_AAD_MAX], const char *key_id,
    const struct pair *pr, uint64_t fetched_ms)
{
	size_t	a = strlen(key_id) + 1, b = strlen(pr->master) + 1;
	size_t	c = strlen(pr->slave) + 1;

	/* NUL-separated: none of the three strings can contain a NUL. */
	memcpy(out, key_id, a);
	memcpy(out + a, pr->master, b);
	memcpy(out + a + b, pr->slave, c);
	for (int i = 0; i < 8; i++)
		out[a + b + c + (size_t)i] = (uint8_t)(fetched_ms >> (56 - 8 * i));
	return a + b + c + 8;
}

/* -------------------------------------------------------------- ID set */

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Keyed, never 0 (the empty slot). Equal IDs always hash equal. */
static uint64_t
ids_hash(const struct idset *ids, const char *id)
{
	uint64_t	h = ids->seed[0], w;
	size_t		len = strlen(id), i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, id + i, 8);
		h = mix64(h ^ w) + ids->seed[1];
	}
	w = 0;
	memcpy(&w, id + i, len - i);
	h = mix64(h ^ w ^ ((uint64_t)len << 56)) ^ ids->seed[1];
	return h != 0 ? h : 1;
}

static int
ids_has(const struct idset *ids, uint64_t h)
{
	size_t	mask = ids->cap - 1, i;

	for (i = h & mask; ids->t[i] != 0; i = (i + 1) & mask)
		if (ids->t[i] == h)
			return 1;
	return 0;
}

static void
ids_put(struct idset *ids, uint64_t h)
{
	size_t	mask = ids->cap - 1, i;

	for (i = h & mask; ids->t[i] != 0; i = (i + 1) & mask)
		;
	ids->t[i] = h;
	ids->n++;
}

/* Room for one more at a load factor of at most 1/2; -1 out of memory. */
static int
ids_room(struct idset *ids)
{
	uint64_t	*old = ids->t;
	size_t		 oldcap = ids->cap, i;

	if (2 * (ids->n + 1) <= ids->cap)
		return 0;
	if ((ids->t = calloc(oldcap * 2, sizeof(*ids->t))) == NULL) {
		ids->t = old;
		return -1;
	}
	ids->cap = oldcap * 2;
	ids->n = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i] != 0)
			ids_put(ids, old[i]);
	free(old);
	return 0;
}

/* Adds one instance of h (a multiset); -1 out of memory. */
static int
ids_add(struct idset *ids, uint64_t h)
{
	if (ids_room(ids) == -1)
		return -1;
	ids_put(ids, h);
	return 0;
}

/* Removes one instance of h, if any (backward-shift deletion). */
static void
ids_del(struct idset *ids, uint64_t h)
{
	size_t	mask = ids->cap - 1, i, j, home;

	for (i = h & mask; ids->t[i] != h; i = (i + 1) & mask)
		if (ids->t[i] == 0)
			return;
	for (j = (i + 1) & mask; ids->t[j] != 0; j = (j + 1) & mask) {
		home = ids->t[j] & mask;
		/* Move t[j] into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			ids->t[i] = ids->t[j];
			i = j;
		}
	}
	ids->t[i] = 0;
	ids->n--;
}

static int
ids_init(struct idset *ids)
{
	if (RAND_bytes((uint8_t *)ids->seed, sizeof(ids->seed)) != 1 ||
	    (ids->t = calloc(1024, sizeof(*ids->t))) == NULL)
		return -1;
	ids->cap = 1024;
	return 0;
}

/* ------------------------------------------------------------- retire */

/* Queues h to leave the ID set at retire_flush. If that cannot grow, h just
 * stays in the set: a superset is safe. */
static void
retire_push(struct pool *p, uint64_t h)
{
	uint64_t	*r;
	size_t		 cap;

	if (p->nretire == p->retire_cap) {
		cap = p->retire_cap ? 2 * p->retire_cap : 1024;
		if ((r = realloc(p->retire, cap * sizeof(*r))) == NULL)
			return;
		p->retire = r;
		p->retire_cap = cap;
	}
	p->retire[p->nretire++] = h;
}

/* Forgets the hashes queued since `mark` (their transaction rolled back). */
static void
retire_cut(struct pool *p, size_t mark)
{
	if (mark < p->nretire)
		p->nretire = mark;
}

/* Under dbmu, not mu: the queued hashes leave the ID set. */
static void
retire_flush(struct pool *p)
{
	for (size_t i = 0; i < p->nretire; i++)
		ids_del(&p->ids, p->retire[i]);
	p->nretire = 0;
}

static void
db_unlock(struct pool *p)
{
	retire_flush(p);
	pthread_mutex_unlock(&p->dbmu);
}
/* --------------------------------------------------------------- pairs */

/* Under dbmu or mu. */
static struct pair *
pair_find(struct pool *p, const char *master, const char *slave)
{
	struct pair	*pr;

	for (pr = p->pairs; pr != NULL; pr = pr->next)
		if (strcmp(pr->master, master) == 0 &&
		    strcmp(pr->slave, slave) == 0)
			return pr;
	return NULL;
}

/* Under dbmu, not mu (it links the new pair under mu). */
static struct pair *
pair_get(struct pool *p, const char *master, const char *slave)
{
	struct pair	*pr;

	if ((pr = pair_find(p, master, slave)) != NULL)
		return pr;
	if ((pr = calloc(1, sizeof(*pr))) == NULL)
		return NULL;
	/* Callers checked both with etsi_id_valid: they fit. */
	snprintf(pr->master, sizeof(pr->master), "%s", master);
	snprintf(pr->slave, sizeof(pr->slave), "%s", slave);
	pr->disk_min_ms = POOL_NO_MS;
	pr->lease_min_ms = POOL_NO_MS;
	pthread_mutex_lock(&p->mu);
	pr->next = p->pairs;
	p->pairs = pr;
	pthread_mutex_unlock(&p->mu);
	return pr;
}

static void
pair_free(struct pool *p, struct pair *pr)
{
	sec_free(pr->lbytes, pr->cap * p->kb);
	free(pr->lk);
	free(pr);
}

/* ---------------------------------------------------------------- queue */

static uint8_t *
lease_bytes(struct pool *p, struct pair *pr, size_t i)
{
	return pr->lbytes + i * p->kb;
}

/*
 * Under dbmu and mu. Moves the live entries to the front, wiping the freed
 * tail; the IDs served since the last compaction are retired (they leave the
 * ID set at retire_flush, outside mu).
 */
static void
lease_compact(struct pool *p, struct pair *pr)
{
	if (pr->head == 0)
		return;
	for (size_t i = 0; i < pr->head; i++)
		retire_push(p, pr->lk[i].h);
	memmove(pr->lk, pr->lk + pr->head, pr->n * sizeof(*pr->lk));
	memmove(pr->lbytes, lease_bytes(p, pr, pr->head), pr->n * p->kb);
	OPENSSL_cleanse(lease_bytes(p, pr, pr->n), pr->head * p->kb);
	pr->head = 0;
}

/* Under dbmu and mu: room for `cap` entries, compacted. Fresh memory, so
 * that no stale key copy stays unwiped. */
static int
lease_reserve(struct pool *p, struct pair *pr, size_t cap)
{
	struct lkey	*lk;
	uint8_t		*b;

	lease_compact(p, pr);
	if (cap <= pr->cap)
		return 0;
	if ((lk = calloc(cap, sizeof(*lk))) == NULL)
		return -1;
	if ((b = sec_alloc(cap * p->kb)) == NULL) {
		free(lk);
		return -1;
	}
	if (pr->n > 0) {
		memcpy(lk, pr->lk, pr->n * sizeof(*lk));
		memcpy(b, pr->lbytes, pr->n * p->kb);
	}
	free(pr->lk);
	sec_free(pr->lbytes, pr->cap * p->kb);
	pr->lk = lk;
	pr->lbytes = b;
	pr->cap = cap;
	return 0;
}

/* Under dbmu and mu: drops (wipes) queued keys fetched before cutoff. */
static size_t
lease_expire(struct pool *p, struct pair *pr, uint64_t cutoff)
{
	size_t		 i, kept = 0, n0 = pr->n;
	uint64_t	 min = POOL_NO_MS;

	if (pr->lease_min_ms >= cutoff)
		return 0;
	lease_compact(p, pr);
	for (i = 0; i < n0; i++) {
		if (pr->lk[i].fetched_ms < cutoff) {
			retire_push(p, pr->lk[i].h);
			continue;
		}
		if (i != kept) {
			pr->lk[kept] = pr->lk[i];
			memcpy(lease_bytes(p, pr, kept), lease_bytes(p, pr, i),
			    p->kb);
		}
		if (pr->lk[kept].fetched_ms < min)
			min = pr->lk[kept].fetched_ms;
		kept++;
	}
	OPENSSL_cleanse(lease_bytes(p, pr, kept), (n0 - kept) * p->kb);
	pr->n = kept;
	pr->lease_min_ms = min;
	if (n0 != kept)
		log_info("pool: (%s, %s): %zu leased keys expired", pr->master,
		    pr->slave, n0 - kept);
	return n0 - kept;
}

/* ---------------------------------------------------------------- lease */

/* Under dbmu. */
static int
rows_reserve(struct pool *p, size_t n)
{
	size_t		 blen = p->kb + SEAL_OVERHEAD;
	struct lrow	*r;
	struct lkey	*lk;
	uint8_t		*b;

	if (n > p->scap) {
		if ((lk = calloc(n, sizeof(*lk))) == NULL)
			return -1;
		if ((b = sec_alloc(n * p->kb)) == NULL) {
			free(lk);
			return -1;
		}
		free(p->stage);
		sec_free(p->sbytes, p->scap * p->kb);
		p->stage = lk;
		p->sbytes = b;
		p->scap = n;
	}
	if (n <= p->rows_cap)
		return 0;
	if ((r = realloc(p->rows, n * sizeof(*r))) == NULL)
		return -1;
	p->rows = r;
	for (; p->rows_cap < n; p->rows_cap++)
		if ((r[p->rows_cap].blob = malloc(blen)) == NULL)
			return -1;
	return 0;
}

/*
 * Inside the lease transaction: reads up to `want` oldest unexpired rows of
 * the pair into p->rows and deletes them. Rows whose blob has the wrong size
 * are deleted too, and marked bad so that they are never served.
 */
static int
lease_read(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want,
    size_t *got)
{
	sqlite3_stmt	*st = db_st(p, ST_SEL_LEASE);
	struct lrow	*r;
	size_t		 n = 0, blen = p->kb + SEAL_OVERHEAD;
	int		 rc = SQLITE_DONE;

	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)want);
	while (n < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 1);

		r = &p->rows[n++];
		r->rowid = sqlite3_column_int64(st, 0);
		snprintf(r->k.id, sizeof(r->k.id), "%s", id ? id : "");
		r->k.fetched_ms = (uint64_t)sqlite3_column_int64(st, 2);
		r->k.h = ids_hash(&p->ids, r->k.id);
		r->bad = (size_t)sqlite3_column_bytes(st, 3) != blen;
		if (!r->bad)
			memcpy(r->blob, sqlite3_column_blob(st, 3), blen);
	}
	sqlite3_reset(st);
	if (n < want && rc != SQLITE_DONE) {
		log_err("pool: lease select: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	*got = n;
	if (n == 0)
		return 0;
	/* One range delete: ~2x cheaper than a DELETE per row. */
	st = db_st(p, ST_DEL_LEASE);
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)p->rows[n - 1].k.fetched_ms);
	sqlite3_bind_int64(st, 5, p->rows[n - 1].rowid);
	if (db_done(p, st, "lease delete") == -1)
		return -1;
	if ((size_t)sqlite3_changes(p->db) != n) {
		/* Cannot happen inside one write transaction; never guess. */
		log_err("pool: lease delete removed %d rows, selected %zu",
		    sqlite3_changes(p->db), n);
		return -1;
	}
	return 0;
}

/*
 * Inside a transaction, under dbmu: deletes the pair's expired rows and
 * queues their IDs for retirement; count in *n. The caller drops the queued
 * IDs (retire_cut) if the transaction then fails.
 */
static int
disk_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	sqlite3_stmt	*st = db_st(p, ST_DEL_OLD);
	int		 rc;

	*n = 0;
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id != NULL)
			retire_push(p, ids_hash(&p->ids, id));
		(*n)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: expire: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/* Under dbmu: unseals the rows just removed from disk into the stage. */
static void
lease_fill(struct pool *p, struct pair *pr, size_t nrows)
{
	uint8_t		 aad[POOL_AAD_MAX];
	struct lrow	*r;
	size_t		 i, alen, bad = 0;

	p->sn = 0;
	for (i = 0; i < nrows; i++) {
		r = &p->rows[i];
		alen = pool_aad(aad, r->k.id, pr, r->k.fetched_ms);
		if (r->bad || seal_open(p->seal, aad, alen, r->blob,
		    p->kb + SEAL_OVERHEAD, p->sbytes + p->sn * p->kb) == -1) {
			/* Tampered or corrupt: gone from disk, never served. */
			log_err("pool: (%s, %s): key \"%s\" (row %lld) does not "
			    "authenticate under the KEK: dropped", pr->master,
			    pr->slave, r->k.id, (long long)r->rowid);
			retire_push(p, r->k.h);
			bad++;
			continue;
		}
		p->stage[p->sn++] = r->k;
	}
	if (bad)
		log_err("pool: (%s, %s): %zu stored keys dropped as corrupt",
		    pr->master, pr->slave, bad);
}

/*
 * Under dbmu (mu is not needed, and may be held): takes a lease of up to
 * `want` keys into the stage. One FULL transaction deletes the pair's
 * expired rows and the `want` oldest others; only after COMMIT returned are
 * they unsealed. The keys are then off the disk: the caller attaches them
 * (lease_attach) before releasing dbmu.
 */
static int
lease_load(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want)
{
	size_t	nexp = 0, nrows = 0, mark = p->nretire;

	p->sn = 0;
	if (rows_reserve(p, want) == -1) {
		log_err("pool: lease of %zu keys: out of memory", want);
		return -1;
	}
	if (db_begin(p) == -1)
		return -1;
	/* disk_min_ms is exact or lower: no expired row, no DELETE to try. */
	if ((pr->disk_min_ms < cutoff &&
	    disk_expire(p, pr, cutoff, &nexp) == -1) ||
	    lease_read(p, pr, cutoff, want, &nrows) == -1 ||
	    db_commit(p) == -1) {
		db_rollback(p);
		retire_cut(p, mark);
		return -1;
	}
	pr->ndisk -= nexp + nrows <= pr->ndisk ? nexp + nrows : pr->ndisk;
	if (nexp)
		log_info("pool: (%s, %s): %zu expired keys dropped", pr->master,
		    pr->slave, nexp);
	lease_fill(p, pr, nrows);
	/* A read error here only makes the next expiry check run early. */
	if (disk_min_refresh(p, pr) == -1)
		pr->disk_min_ms = 0;
	return 0;
}

/*
 * Under dbmu and mu: appends the stage to the pair's queue and wipes the
 * stage. If the queue cannot grow, the staged keys are dropped (wiped; they
 * are off the disk, so never served) and -1 returned.
 */
static int
lease_attach(struct pool *p, struct pair *pr)
{
	size_t	i;
	int	rc = 0;

	if (p->sn == 0)
		return 0;
	if (lease_reserve(p, pr, pr->n + p->sn) == -1) {
		log_err("pool: (%s, %s): out of memory: %zu leased keys dropped",
		    pr->master, pr->slave, p->sn);
		for (i = 0; i < p->sn; i++)
			retire_push(p, p->stage[i].h);
		rc = -1;
	} else {
		memcpy(pr->lk + pr->n, p->stage, p->sn * sizeof(*p->stage));
		memcpy(lease_bytes(p, pr, pr->n), p->sbytes, p->sn * p->kb);
		for (i = 0; i < p->sn; i++)
			if (p->stage[i].fetched_ms < pr->lease_min_ms)
				pr->lease_min_ms = p->stage[i].fetched_ms;
		pr->n += p->sn;
	}
	OPENSSL_cleanse(p->sbytes, p->sn * p->kb);
	p->sn = 0;
	return rc;
}

/* Under mu: moves the n oldest queued keys into out (preallocated). */
static void
lease_serve(struct pool *p, struct pair *pr, size_t n, struct etsi_keys *out)
{
	struct etsi_key	*k;
	size_t		 i;

	for (i = 0; i < n; i++) {
		k = &out->v[i];
		memcpy(k->id, pr->lk[pr->head + i].id, sizeof(k->id));
		memcpy(k->key, lease_bytes(p, pr, pr->head + i), p->kb);
	}
	OPENSSL_cleanse(lease_bytes(p, pr, pr->head), n * p->kb);
	pr->head += n;
	pr->n -= n;
	if (pr->n == 0)
		pr->lease_min_ms = POOL_NO_MS;
}

static uint64_t
cutoff_of(const struct pool *p, uint64_t now_ms)
{
	return now_ms > p->ttl_ms ? now_ms - p->ttl_ms : 0;
}
/* ----------------------------------------------------------------- API */

/* n keys of p->kb bytes, allocated before any lock is taken. */
static int
out_alloc(struct pool *p, size_t n, struct etsi_keys *out)
{
	if (etsi_keys_alloc(out, n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((out->v[i].key = sec_alloc(p->kb)) == NULL) {
			etsi_keys_free(out);
			return -1;
		}
		out->v[i].len = p->kb;
	}
	return 0;
}

/* Under mu: whether to ask for a prefetch; the caller calls it unlocked. */
static void
(*ask_prefetch(struct pool *p, struct pair *pr, void **arg))(void *)
{
	if (pr->asked || pr->n >= POOL_STANDBY * p->lease_size ||
	    p->notify == NULL)
		return NULL;
	pr->asked = 1;
	*arg = p->notify_arg;
	return p->notify;
}

/*
 * The slow path, both locks: expire, lease synchronously if the queue is
 * short, serve. Returns as pool_take.
 */
static int
take_slow(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out, void (**fn)(void *), void **arg)
{
	struct pair	*pr;
	uint64_t	 cutoff;
	size_t		 want;
	int		 rc = 1;

	pthread_mutex_lock(&p->dbmu);
	pthread_mutex_lock(&p->mu);
	if ((pr = pair_find(p, master, slave)) == NULL)
		goto done;
	cutoff = cutoff_of(p, time_real_ms());
	lease_expire(p, pr, cutoff);
	if (pr->n < n && pr->ndisk > 0) {
		want = n - pr->n > p->lease_size ? n - pr->n : p->lease_size;
		if (lease_load(p, pr, cutoff, want) == -1 ||
		    lease_attach(p, pr) == -1) {
			rc = -1;
			goto done;
		}
	}
	/* If short, keep the queue: it is already off the disk, servable. */
	if (pr->n >= n) {
		lease_serve(p, pr, n, out);
		rc = 0;
	}
	*fn = ask_prefetch(p, pr, arg);
 done:
	pthread_mutex_unlock(&p->mu);
	db_unlock(p);
	return rc;
}

int
pool_take(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out)
{
	struct pair	*pr;
	void		(*fn)(void *) = NULL, *arg = NULL;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (n > ETSI_MAX_KEYS) {
		log_err("pool: take of %zu keys: at most %d", n, ETSI_MAX_KEYS);
		return -1;
	}
	if (out_alloc(p, n, out) == -1) {
		log_err("pool: take of %zu keys: out of memory", n);
		return -1;
	}
	/* The fast path: from memory, under mu alone. */
	pthread_mutex_lock(&p->mu);
	if ((pr = pair_find(p, master, slave)) != NULL && pr->n >= n &&
	    pr->lease_min_ms >= cutoff_of(p, time_real_ms())) {
		lease_serve(p, pr, n, out);
		fn = ask_prefetch(p, pr, &arg);
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	if (pr == NULL)
		rc = 1;
	else if (rc != 0)
		rc = take_slow(p, master, slave, n, out, &fn, &arg);
	if (fn != NULL)
		fn(arg);
	if (rc != 0)
		etsi_keys_free(out);
	return rc;
}

int
pool_prefetch(struct pool *p, const char *master, const char *slave)
{
	struct pair	*pr;
	uint64_t	 cutoff = cutoff_of(p, time_real_ms());
	size_t		 want;
	int		 rc = 0, need;

	pthread_mutex_lock(&p->dbmu);
	if ((pr = pair_find(p, master, slave)) == NULL) {
		db_unlock(p);
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	lease_expire(p, pr, cutoff);
	need = pr->n < POOL_STANDBY * p->lease_size;
	/* Up to one lease above the mark, in one transaction: under a load
	 * that drains a lease per transaction time, fewer larger ones keep up. */
	want = need ? (POOL_STANDBY + 1) * p->lease_size - pr->n : 0;
	pthread_mutex_unlock(&p->mu);
	/* The disk work without mu: pool_take goes on serving meanwhile. */
	if (need && pr->ndisk > 0 &&
	    (rc = lease_load(p, pr, cutoff, want)) == 0) {
		pthread_mutex_lock(&p->mu);
		rc = lease_attach(p, pr);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	/* Takers ask again once it can help: now, or after pool_add. */
	pr->asked = pr->ndisk == 0 || rc == -1;
	pthread_mutex_unlock(&p->mu);
	db_unlock(p);
	return rc;
}

void
pool_set_notify(struct pool *p, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&p->mu);
	p->notify = fn;
	p->notify_arg = arg;
	pthread_mutex_unlock(&p->mu);
}

/*
 * Under dbmu. Checks a batch before touching the database and enters its IDs
 * in the ID set (h[i] their hashes); -1 logged, with the set as it was. A KME
 * that repeats a key ID (in the batch, or one still in the pool) is broken:
 * none of the batch is taken.
 */
static int
add_check(struct pool *p, const struct etsi_keys *keys, uint64_t *h)
{
	size_t	i, j;
	int	r = 0;

	for (i = 0; i < keys->n; i++) {
		if (keys->v[i].len != p->kb || keys->v[i].key == NULL) {
			log_err("pool: add: key \"%s\" has %zu bytes, the pool "
			    "holds %zu-byte keys", keys->v[i].id, keys->v[i].len,
			    p->kb);
			return -1;
		}
		if (keys->v[i].id[0] == '\0' ||
		    memchr(keys->v[i].id, '\0', sizeof(keys->v[i].id)) == NULL) {
			log_err("pool: add: key %zu has no valid key ID", i);
			return -1;
		}
		h[i] = ids_hash(&p->ids, keys->v[i].id);
	}
	for (i = 0; i < keys->n; i++) {
		if (ids_has(&p->ids, h[i])) {
			r = 1;
			break;
		}
		if ((r = ids_add(&p->ids, h[i])) != 0)
			break;
	}
	if (i == keys->n)
		return 0;
	if (r == 1)
		log_err("pool: add: key ID \"%s\" is already in the pool or "
		    "repeated in the batch", keys->v[i].id);
	else
		log_err("pool: add: out of memory");
	for (j = 0; j < i; j++)
		ids_del(&p->ids, h[j]);
	return -1;
}

static void
add_undo_ids(struct pool *p, const uint64_t *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ids_del(&p->ids, h[i]);
}

static int
add_one(struct pool *p, struct pair *pr, const struct etsi_key *k,
    uint64_t fetched_ms)
{
	uint8_t		 aad[POOL_AAD_MAX], blob[ETSI_MAX_KEY_BYTES + SEAL_OVERHEAD];
	sqlite3_stmt	*st;
	size_t		 alen = pool_aad(aad, k->id, pr, fetched_ms);
	int		 rc;

	if (seal_seal(p->seal, aad, alen, k->key, p->kb, blob) == -1)
		return -1;
	st = db_st(p, ST_INS);
	bind_pair(st, pr);
	sqlite3_bind_text(st, 3, k->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)fetched_ms);
	sqlite3_bind_blob(st, 5, blob, (int)(p->kb + SEAL_OVERHEAD),
	    SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: add: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

int
pool_add(struct pool *p, const char *master, const char *slave,
    const struct etsi_keys *keys, uint64_t fetched_ms)
{
	struct pair	*pr;
	uint64_t	*h = NULL;
	size_t		 i;
	int		 rc = -1;

	if (!etsi_id_valid(master) || !etsi_id_valid(slave) ||
	    fetched_ms > INT64_MAX) {
		log_err("pool: add: bad SAE ID or fetched_ms");
		return -1;
	}
	if (keys->n == 0)
		return 0;
	if ((h = calloc(keys->n, sizeof(*h))) == NULL) {
		log_err("pool: add: out of memory");
		return -1;
	}
	pthread_mutex_lock(&p->dbmu);
	if ((pr = pair_get(p, master, slave)) == NULL) {
		log_err("pool: add: out of memory");
		goto done;
	}
	if (add_check(p, keys, h) == -1) {
		log_err("pool: add for (%s, %s): batch of %zu keys refused",
		    master, slave, keys->n);
		goto done;
	}
	if (db_begin(p) == -1) {
		add_undo_ids(p, h, keys->n);
		goto done;
	}
	for (i = 0; i < keys->n; i++)
		if (add_one(p, pr, &keys->v[i], fetched_ms) == -1)
			break;
	if (i < keys->n || db_commit(p) == -1) {
		db_rollback(p);
		add_undo_ids(p, h, keys->n);
		log_err("pool: add for (%s, %s): batch of %zu keys not stored",
		    master, slave, keys->n);
		goto done;
	}
	pr->ndisk += keys->n;
	if (fetched_ms < pr->disk_min_ms)
		pr->disk_min_ms = fetched_ms;
	pthread_mutex_lock(&p->mu);
	pr->asked = 0;		/* a prefetch can help again */
	pthread_mutex_unlock(&p->mu);
	rc = 0;
 done:
	db_unlock(p);
	free(h);
	return rc;
}

/*
 * Under dbmu, not mu: drops the pair's expired keys, queued and on disk;
 * count in *n.
 */
static int
pair_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	size_t	nd = 0, mark;

	pthread_mutex_lock(&p->mu);
	*n = lease_expire(p, pr, cutoff);
	pthread_mutex_unlock(&p->mu);
	if (pr->disk_min_ms >= cutoff)
		return 0;
	mark = p->nretire;
	if (db_begin(p) == -1)
		return -1;
	if (disk_expire(p, pr, cutoff, &nd) == -1 || db_commit(p) == -1) {
		db_rollback(p);
		retire_cut(p, mark);
		return -1;
	}
	pr->ndisk -= nd <= pr->ndisk ? nd : pr->ndisk;
	*n += nd;
	if (nd)
		log_info("pool: (%s, %s): %zu expired keys dropped", pr->master,
		    pr->slave, nd);
	return disk_min_refresh(p, pr);
}

size_t
pool_count(struct pool *p, const char *master, const char *slave)
{
	struct pair	*pr;
	size_t		 n = 0, dropped;

	pthread_mutex_lock(&p->dbmu);
	if ((pr = pair_find(p, master, slave)) != NULL) {
		/* Sweeping keeps the count to unexpired keys, as promised. */
		(void)pair_expire(p, pr, cutoff_of(p, time_real_ms()), &dropped);
		pthread_mutex_lock(&p->mu);
		n = pr->ndisk + pr->n;
		pthread_mutex_unlock(&p->mu);
	}
	db_unlock(p);
	return n;
}

size_t
pool_expire(struct pool *p, uint64_t now_ms)
{
	struct pair	*pr;
	size_t		 n = 0, d;

	pthread_mutex_lock(&p->dbmu);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		(void)pair_expire(p, pr, cutoff_of(p, now_ms), &d);
		n += d;
	}
	db_unlock(p);
	return n;
}

/* ---------------------------------------------------------------- open */

static int
meta_get(struct pool *p, const char *k, void *out, size_t n, uint64_t *iv)
{
	sqlite3_stmt	*st = db_st(p, ST_META_GET);
	int		 found = 0;

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (iv != NULL) {
			*iv = (uint64_t)sqlite3_column_int64(st, 0);
			found = 1;
		} else if ((size_t)sqlite3_column_bytes(st, 0) == n) {
			memcpy(out, sqlite3_column_blob(st, 0), n);
			found = 1;
		}
	}
	sqlite3_reset(st);
	return found;
}

static int
meta_set(struct pool *p, const char *k, const void *v, size_t n, uint64_t iv)
{
	sqlite3_stmt	*st = db_st(p, ST_META_SET);

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (v != NULL)
		sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, (sqlite3_int64)iv);
	return db_done(p, st, "meta");
}

/*
 * A new database records key_bytes and a sealed check record; an existing
 * one must match both, so that a wrong KEK or key size is refused at open
 * rather than discovered key by key.
 */
static int
meta_check(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen)
{
	static const uint8_t zero[16];
	uint8_t		 chk[sizeof(zero) + SEAL_OVERHEAD], pt[sizeof(zero)];
	uint64_t	 kb;

	if (!meta_get(p, "key_bytes", NULL, 0, &kb)) {
		if (db_begin(p) == -1 ||
		    seal_seal(p->seal, (const uint8_t *)kek_check_aad,
		    sizeof(kek_check_aad), zero, sizeof(zero), chk) == -1 ||
		    meta_set(p, "key_bytes", NULL, 0, p->kb) == -1 ||
		    meta_set(p, "kek_check", chk, sizeof(chk), 0) == -1 ||
		    db_commit(p) == -1) {
			db_rollback(p);
			snprintf(err, errlen, "pool %s: cannot initialise: %s",
			    cfg->db_path, sqlite3_errmsg(p->db));
			return -1;
		}
		return 0;
	}
	if (kb != p->kb) {
		snprintf(err, errlen, "pool %s holds %llu-byte keys, key_bytes "
		    "is %u (use another db_path for another key size)",
		    cfg->db_path, (unsigned long long)kb, cfg->key_bytes);
		return -1;
	}
	if (!meta_get(p, "kek_check", chk, sizeof(chk), NULL) ||
	    seal_open(p->seal, (const uint8_t *)kek_check_aad,
	    sizeof(kek_check_aad), chk, sizeof(chk), pt) == -1) {
		snprintf(err, errlen, "kek_file %s does not match pool %s: its "
		    "keys were sealed under another key-encryption key",
		    cfg->kek_file, cfg->db_path);
		return -1;
	}
	return 0;
}

/* The ID set from the database, at open. */
static int
ids_load(struct pool *p)
{
	sqlite3_stmt	*st = db_st(p, ST_ALL_IDS);
	int		 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id != NULL && ids_add(&p->ids, ids_hash(&p->ids, id)) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: cannot build the key ID set: %s",
		    sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/* The pairs present on disk, with their exact counts. */
static int
pairs_load(struct pool *p)
{
	sqlite3_stmt	*st;
	struct pair	*pr;
	int		 rc;

	if (sqlite3_prepare_v2(p->db, "SELECT master, slave, count(*), "
	    "min(fetched_ms) FROM keys GROUP BY master, slave", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		const char *s = (const char *)sqlite3_column_text(st, 1);

		if (!etsi_id_valid(m) || !etsi_id_valid(s)) {
			log_warn("pool: rows with an invalid SAE pair ignored");
			continue;
		}
		if ((pr = pair_get(p, m, s)) == NULL)
			break;
		pr->ndisk = (size_t)sqlite3_column_int64(st, 2);
		pr->disk_min_ms = (uint64_t)sqlite3_column_int64(st, 3);
		log_info("pool: (%s, %s): %zu keys on disk", m, s, pr->ndisk);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
db_open(struct pool *p, const struct pool_cfg *cfg, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 fd, wal = 0, i;

	/* Created 0600 here: SQLite gives -wal and -shm the same mode. */
	if ((fd = open(cfg->db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "pool %s: %s", cfg->db_path,
		    strerror(errno));
		return -1;
	}
	close(fd);
	if (sqlite3_open_v2(cfg->db_path, &p->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(p->db, POOL_BUSY_MS);
	if (sqlite3_prepare_v2(p->db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		snprintf(err, errlen, "pool %s: cannot use WAL mode: %s",
		    cfg->db_path, sqlite3_errmsg(p->db));
		return -1;
	}
	/* FULL: every COMMIT is on stable storage before it returns. */
	if (db_exec(p, "PRAGMA synchronous=FULL") == -1 ||
	    db_exec(p, "PRAGMA secure_delete=ON") == -1 ||
	    db_exec(p, sql_schema) == -1)
		goto fail;
	for (i = 0; i < ST__N; i++)
		if (sqlite3_prepare_v3(p->db, sql_stmt[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &p->st[i], NULL) != SQLITE_OK)
			goto fail;
	return 0;
 fail:
	snprintf(err, errlen, "pool %s: %s", cfg->db_path,
	    p->db ? sqlite3_errmsg(p->db) : "cannot open");
	return -1;
}

static int
cfg_check(const struct pool_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->db_path == NULL || *cfg->db_path == '\0')
		snprintf(err, errlen, "pool: db_path is not set");
	else if (cfg->kek_file == NULL || *cfg->kek_file == '\0')
		snprintf(err, errlen, "pool %s: kek_file is not set",
		    cfg->db_path);
	else if (cfg->key_bytes == 0 || cfg->key_bytes > ETSI_MAX_KEY_BYTES)
		snprintf(err, errlen, "pool: key_bytes %u is not in 1..%d",
		    cfg->key_bytes, ETSI_MAX_KEY_BYTES);
	else if (cfg->lease_size == 0 || cfg->lease_size > POOL_LEASE_MAX)
		snprintf(err, errlen, "pool: lease_size %u is not in 1..%u",
		    cfg->lease_size, POOL_LEASE_MAX);
	else if (cfg->ttl_s == 0)
		snprintf(err, errlen, "pool: ttl_s 0: keys need a lifetime of "
		    "at least 1 s");
	else
		return 0;
	return -1;
}

struct pool *
pool_open(const struct pool_cfg *cfg, char *err, size_t errlen)
{
	uint8_t		 kek[SEAL_KEK_LEN];
	struct pool	*p = NULL;
	int		 ok = 0;

	if (cfg_check(cfg, err, errlen) == -1 ||
	    seal_kek_load(cfg->kek_file, kek, err, errlen) == -1)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		p = NULL;
		snprintf(err, errlen, "pool: out of memory");
		goto done;
	}
	if (pthread_mutex_init(&p->dbmu, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		p = NULL;
		snprintf(err, errlen, "pool: out of memory");
		goto done;
	}
	p->kb = cfg->key_bytes;
	p->lease_size = cfg->lease_size;
	p->ttl_ms = (uint64_t)cfg->ttl_s * 1000u;
	if (ids_init(&p->ids) == -1) {
		snprintf(err, errlen, "pool: out of memory");
		goto done;
	}
	if ((p->seal = seal_new(kek)) == NULL) {
		snprintf(err, errlen, "pool: AES-256-GCM unavailable");
		goto done;
	}
	if (db_open(p, cfg, err, errlen) == -1 ||
	    meta_check(p, cfg, err, errlen) == -1)
		goto done;
	if (pairs_load(p) == -1 || ids_load(p) == -1) {
		snprintf(err, errlen, "pool %s: %s", cfg->db_path,
		    sqlite3_errmsg(p->db));
		goto done;
	}
	ok = 1;
 done:
	OPENSSL_cleanse(kek, sizeof(kek));
	if (!ok && p != NULL) {
		pool_close(p);
		p = NULL;
	}
	return p;
}

void
pool_close(struct pool *p)
{
	struct pair	*pr;
	size_t		 i;

	if (p == NULL)
		return;
	while ((pr = p->pairs) != NULL) {
		p->pairs = pr->next;
		pair_free(p, pr);
	}
	free(p->ids.t);
	free(p->retire);
	free(p->stage);
	sec_free(p->sbytes, p->scap * p->kb);
	for (i = 0; i < p->rows_cap; i++)
		free(p->rows[i].blob);
	free(p->rows);
	for (i = 0; i < ST__N; i++)
		sqlite3_finalize(p->st[i]);
	sqlite3_close(p->db);
	seal_free(p->seal);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->dbmu);
	free(p);
}

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
 * Key IDs are kept unique by an in-memory set (IDs on disk and leased), not by
 * a UNIQUE index: KME key IDs are random UUIDs, so deleting a lease of 256
 * rows would touch ~256 random index pages, all written to the WAL and
 * fsynced; measured, that made a lease refill 4x slower (~3.5 ms instead of
 * ~0.8 ms for 256 keys in a 40,000-key pool).
 *
 * The no-key-twice guarantee rests on one ordering: a key leaves the database
 * in a committed synchronous=FULL transaction (the WAL is fsynced before
 * COMMIT returns) before it is unsealed, and is served only from memory after
 * that. A kill -9 or power cut therefore loses at most the unserved rest of a
 * lease; nothing that was served can come back. Every commit is FULL: the
 * ones that are not on the serving path (add, expire) are rare, and one mode
 * avoids a PRAGMA per transaction.
 *
 * One connection, one mutex around the whole pool. Per-pair state (exact row
 * count, oldest fetched_ms on disk, the lease) lives in a short list: pairs
 * are configured, a handful.
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

/* A leased key's metadata; its bytes are in pair.lbytes at the same index. */
struct lkey {
	char		 id[ETSI_KEY_ID_MAX + 1];
	uint64_t	 fetched_ms;
};

struct pair {
	struct pair	*next;
	char		 master[ETSI_ID_MAX + 1];
	char		 slave[ETSI_ID_MAX + 1];
	size_t		 ndisk;		/* rows in the database, exact */
	uint64_t	 disk_min_ms;	/* oldest fetched_ms on disk, POOL_NO_MS */
	/* The lease: entries [head, head + n) of cap, served from head. */
	struct lkey	*lk;
	uint8_t		*lbytes;	/* cap * key_bytes, sec_alloc */
	size_t		 head, n, cap;
	uint64_t	 lease_min_ms;	/* <= every leased fetched_ms */
};

/* The key IDs in the pool (on disk and leased): a chained hash set. */
struct idnode {
	struct idnode	*next;
	char		 id[ETSI_KEY_ID_MAX + 1];
};

struct idset {
	struct idnode	**b;
	size_t		  nb;		/* buckets, a power of 2 */
	size_t		  n;
	uint64_t	  seed;
};

struct pool {
	pthread_mutex_t	 mu;
	struct idset	 ids;
	sqlite3		*db;
	sqlite3_stmt	*st[ST__N];
	struct seal	*seal;
	size_t		 kb;		/* key bytes */
	size_t		 lease_size;
	uint64_t	 ttl_ms;
	struct pair	*pairs;
	/* Rows read by a lease transaction, before they are unsealed. */
	struct lrow	*rows;
	size_t		 rows_cap;
};

struct lrow {
	sqlite3_int64	 rowid;
	struct lkey	 k;
	int		 bad;		/* blob of the wrong size */
	uint8_t		*blob;		/* kb + SEAL_OVERHEAD */
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
ids_hash(const struct idset *ids, const char *id)
{
	uint64_t	h = ids->seed ^ 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (uint8_t)*id) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static struct idnode **
ids_slot(struct idset *ids, const char *id)
{
	struct idnode	**np = &ids->b[ids_hash(ids, id) & (ids->nb - 1)];

	while (*np != NULL && strcmp((*np)->id, id) != 0)
		np = &(*np)->next;
	return np;
}

static int
ids_grow(struct idset *ids)
{
	struct idnode	**nb, *e, *next;
	size_t		  i, n = ids->nb * 2, h;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return -1;
	for (i = 0; i < ids->nb; i++)
		for (e = ids->b[i]; e != NULL; e = next) {
			next = e->next;
			h = ids_hash(ids, e->id) & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(ids->b);
	ids->b = nb;
	ids->nb = n;
	return 0;
}

/* 0 added, 1 already there, -1 out of memory. */
static int
ids_add(struct idset *ids, const char *id)
{
	struct idnode	**np, *e;

	if (ids->n >= ids->nb && ids_grow(ids) == -1)
		return -1;
	if (*(np = ids_slot(ids, id)) != NULL)
		return 1;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	*np = e;
	ids->n++;
	return 0;
}

static void
ids_del(struct idset *ids, const char *id)
{
	struct idnode	**np = ids_slot(ids, id), *e = *np;

	if (e == NULL)
		return;
	*np = e->next;
	free(e);
	ids->n--;
}

static int
ids_init(struct idset *ids)
{
	if (RAND_bytes((uint8_t *)&ids->seed, sizeof(ids->seed)) != 1 ||
	    (ids->b = calloc(1024, sizeof(*ids->b))) == NULL)
		return -1;
	ids->nb = 1024;
	return 0;
}

static void
ids_clear(struct idset *ids)
{
	struct idnode	*e;

	for (size_t i = 0; i < ids->nb; i++)
		while ((e = ids->b[i]) != NULL) {
			ids->b[i] = e->next;
			free(e);
		}
	ids->n = 0;
}

/* --------------------------------------------------------------- pairs */

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
	pr->next = p->pairs;
	p->pairs = pr;
	return pr;
}

static void
pair_free(struct pool *p, struct pair *pr)
{
	sec_free(pr->lbytes, pr->cap * p->kb);
	free(pr->lk);
	free(pr);
}

/* ---------------------------------------------------------------- lease */

static uint8_t *
lease_bytes(struct pool *p, struct pair *pr, size_t i)
{
	return pr->lbytes + i * p->kb;
}

/*
 * Moves the live entries to the front, wiping the freed tail. The IDs served
 * since the last compaction leave the ID set here, off the serving path (a
 * hash-set delete per key made a take from the lease ~5x slower).
 */
static void
lease_compact(struct pool *p, struct pair *pr)
{
	if (pr->head == 0)
		return;
	for (size_t i = 0; i < pr->head; i++)
		ids_del(&p->ids, pr->lk[i].id);
	memmove(pr->lk, pr->lk + pr->head, pr->n * sizeof(*pr->lk));
	memmove(pr->lbytes, lease_bytes(p, pr, pr->head), pr->n * p->kb);
	OPENSSL_cleanse(lease_bytes(p, pr, pr->n), pr->head * p->kb);
	pr->head = 0;
}

/* Room for `cap` entries; fresh memory so no stale key copy stays unwiped. */
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

/* Drops (wipes) leased keys fetched before cutoff; returns how many. */
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
			ids_del(&p->ids, pr->lk[i].id);
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

static int
rows_reserve(struct pool *p, size_t n)
{
	size_t		 blen = p->kb + SEAL_OVERHEAD;
	struct lrow	*r;

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
 * Deletes the pair's expired rows (inside a transaction) and their IDs from
 * the ID set; count in *n. If the transaction then fails, the caller
 * rebuilds the set (ids_resync).
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
			ids_del(&p->ids, id);
		(*n)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: expire: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/* Rebuilds the ID set from the database and the leases (after a failure). */
static int
ids_resync(struct pool *p)
{
	sqlite3_stmt	*st = db_st(p, ST_ALL_IDS);
	struct pair	*pr;
	size_t		 i;
	int		 rc;

	ids_clear(&p->ids);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id != NULL && ids_add(&p->ids, id) == -1)
			break;
	}
	sqlite3_reset(st);
	/* Served but not yet compacted IDs too: compaction deletes them. */
	for (pr = p->pairs; pr != NULL; pr = pr->next)
		for (i = 0; i < pr->head + pr->n; i++)
			if (ids_add(&p->ids, pr->lk[i].id) == -1)
				rc = SQLITE_NOMEM;
	if (rc != SQLITE_DONE) {
		log_err("pool: cannot rebuild the key ID set: %s",
		    sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/* Unseals the rows just removed from disk onto the end of the lease. */
static void
lease_fill(struct pool *p, struct pair *pr, size_t nrows)
{
	uint8_t		 aad[POOL_AAD_MAX];
	struct lrow	*r;
	size_t		 i, alen, bad = 0;

	for (i = 0; i < nrows; i++) {
		r = &p->rows[i];
		alen = pool_aad(aad, r->k.id, pr, r->k.fetched_ms);
		if (r->bad || seal_open(p->seal, aad, alen, r->blob,
		    p->kb + SEAL_OVERHEAD, lease_bytes(p, pr, pr->n)) == -1) {
			/* Tampered or corrupt: gone from disk, never served. */
			log_err("pool: (%s, %s): key \"%s\" (row %lld) does not "
			    "authenticate under the KEK: dropped", pr->master,
			    pr->slave, r->k.id, (long long)r->rowid);
			ids_del(&p->ids, r->k.id);
			bad++;
			continue;
		}
		pr->lk[pr->n] = r->k;
		if (r->k.fetched_ms < pr->lease_min_ms)
			pr->lease_min_ms = r->k.fetched_ms;
		pr->n++;
	}
	if (bad)
		log_err("pool: (%s, %s): %zu stored keys dropped as corrupt",
		    pr->master, pr->slave, bad);
}

/*
 * Takes a new lease of up to `want` keys: one FULL transaction deletes the
 * pair's expired rows and the `want` oldest others; only after COMMIT
 * returned are they unsealed into memory.
 */
static int
lease_take(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want)
{
	size_t	nexp = 0, nrows = 0;

	if (lease_reserve(p, pr, pr->n + want) == -1 ||
	    rows_reserve(p, want) == -1) {
		log_err("pool: lease of %zu keys: out of memory", want);
		return -1;
	}
	if (db_begin(p) == -1)
		return -1;
	if (disk_expire(p, pr, cutoff, &nexp) == -1 ||
	    lease_read(p, pr, cutoff, want, &nrows) == -1 ||
	    db_commit(p) == -1) {
		db_rollback(p);
		(void)ids_resync(p);
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

/* Moves the n oldest leased keys into out (allocated here). */
static int
lease_serve(struct pool *p, struct pair *pr, size_t n, struct etsi_keys *out)
{
	struct etsi_key	*k;
	size_t		 i;

	if (etsi_keys_alloc(out, n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		k = &out->v[i];
		if ((k->key = sec_alloc(p->kb)) == NULL) {
			etsi_keys_free(out);
			return -1;
		}
		k->len = p->kb;
		memcpy(k->id, pr->lk[pr->head + i].id, sizeof(k->id));
		memcpy(k->key, lease_bytes(p, pr, pr->head + i), p->kb);
	}
	OPENSSL_cleanse(lease_bytes(p, pr, pr->head), n * p->kb);
	pr->head += n;
	pr->n -= n;
	if (pr->n == 0)
		pr->lease_min_ms = POOL_NO_MS;
	return 0;
}

static uint64_t
cutoff_of(const struct pool *p, uint64_t now_ms)
{
	return now_ms > p->ttl_ms ? now_ms - p->ttl_ms : 0;
}

/* ----------------------------------------------------------------- API */

int
pool_take(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out)
{
	struct pair	*pr;
	uint64_t	 cutoff;
	size_t		 want;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (n > ETSI_MAX_KEYS) {
		log_err("pool: take of %zu keys: at most %d", n, ETSI_MAX_KEYS);
		return -1;
	}
	pthread_mutex_lock(&p->mu);
	if ((pr = pair_find(p, master, slave)) == NULL) {
		rc = 1;
		goto done;
	}
	cutoff = cutoff_of(p, time_real_ms());
	lease_expire(p, pr, cutoff);
	if (pr->n < n && pr->ndisk > 0) {
		want = n - pr->n > p->lease_size ? n - pr->n : p->lease_size;
		if (lease_take(p, pr, cutoff, want) == -1)
			goto done;
	}
	if (pr->n < n) {
		/* Keep the lease: it is already off the disk, still servable. */
		rc = 1;
		goto done;
	}
	rc = lease_serve(p, pr, n, out) == -1 ? -1 : 0;
 done:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/*
 * Checks a batch before touching the database and enters its IDs in the ID
 * set; -1 logged, with the set as it was. A KME that repeats a key ID (in the
 * batch, or one still in the pool) is broken: none of the batch is taken.
 */
static int
add_check(struct pool *p, const struct etsi_keys *keys)
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
	}
	for (i = 0; i < keys->n; i++)
		if ((r = ids_add(&p->ids, keys->v[i].id)) != 0)
			break;
	if (i == keys->n)
		return 0;
	if (r == 1)
		log_err("pool: add: key ID \"%s\" is already in the pool or "
		    "repeated in the batch", keys->v[i].id);
	else
		log_err("pool: add: out of memory");
	for (j = 0; j < i; j++)
		ids_del(&p->ids, keys->v[j].id);
	return -1;
}

static void
add_undo_ids(struct pool *p, const struct etsi_keys *keys)
{
	for (size_t i = 0; i < keys->n; i++)
		ids_del(&p->ids, keys->v[i].id);
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
	size_t		 i;
	int		 rc = -1;

	if (!etsi_id_valid(master) || !etsi_id_valid(slave) ||
	    fetched_ms > INT64_MAX) {
		log_err("pool: add: bad SAE ID or fetched_ms");
		return -1;
	}
	pthread_mutex_lock(&p->mu);
	if (keys->n == 0) {
		rc = 0;
		goto done;
	}
	if ((pr = pair_get(p, master, slave)) == NULL) {
		log_err("pool: add: out of memory");
		goto done;
	}
	if (add_check(p, keys) == -1) {
		log_err("pool: add for (%s, %s): batch of %zu keys refused",
		    master, slave, keys->n);
		goto done;
	}
	if (db_begin(p) == -1) {
		add_undo_ids(p, keys);
		goto done;
	}
	for (i = 0; i < keys->n; i++)
		if (add_one(p, pr, &keys->v[i], fetched_ms) == -1)
			break;
	if (i < keys->n || db_commit(p) == -1) {
		db_rollback(p);
		add_undo_ids(p, keys);
		log_err("pool: add for (%s, %s): batch of %zu keys not stored",
		    master, slave, keys->n);
		goto done;
	}
	pr->ndisk += keys->n;
	if (fetched_ms < pr->disk_min_ms)
		pr->disk_min_ms = fetched_ms;
	rc = 0;
 done:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Drops the pair's expired keys, on disk and leased; count in *n. */
static int
pair_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	size_t	nd = 0;

	*n = lease_expire(p, pr, cutoff);
	if (pr->disk_min_ms >= cutoff)
		return 0;
	if (db_begin(p) == -1)
		return -1;
	if (disk_expire(p, pr, cutoff, &nd) == -1 || db_commit(p) == -1) {
		db_rollback(p);
		(void)ids_resync(p);
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

	pthread_mutex_lock(&p->mu);
	if ((pr = pair_find(p, master, slave)) != NULL) {
		/* Sweeping keeps the count to unexpired keys, as promised. */
		(void)pair_expire(p, pr, cutoff_of(p, time_real_ms()), &dropped);
		n = pr->ndisk + pr->n;
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t
pool_expire(struct pool *p, uint64_t now_ms)
{
	struct pair	*pr;
	size_t		 n = 0, d;

	pthread_mutex_lock(&p->mu);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		(void)pair_expire(p, pr, cutoff_of(p, now_ms), &d);
		n += d;
	}
	pthread_mutex_unlock(&p->mu);
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
	if (pairs_load(p) == -1 || ids_resync(p) == -1) {
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
	ids_clear(&p->ids);
	free(p->ids.b);
	for (i = 0; i < p->rows_cap; i++)
		free(p->rows[i].blob);
	free(p->rows);
	for (i = 0; i < ST__N; i++)
		sqlite3_finalize(p->st[i]);
	sqlite3_close(p->db);
	seal_free(p->seal);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/*
 * kmsd's key pool (pool.h): SQLite on disk, leases in memory.
 *
 * Schema 3 (meta "schema" = 3): table batches(id INTEGER PRIMARY KEY,
 * master, slave, fetched_ms, n, ids, blob), one row per pool_add batch (at
 * most POOL_ROW_MAX keys; larger batches become several rows). id is the
 * row's sequence number, allocated from meta next_seq and never reused
 * (pool_open keeps next_seq above every high-water mark, kmsd/hwm.h). One
 * index, on (master, slave) (rowid implied): leases take a pair's rows in
 * sequence order, which is what the high-water mark relies on, and the
 * range delete of a lease; expiry and min(fetched_ms) scan the pair's rows
 * (a few hundred at most). ids is the batch's key IDs as a JSON
 * list of strings (written by ids_encode; the view keys(batch, master,
 * slave, key_id, fetched_ms) lists them one per row for operators), blob =
 * seal(the n keys' bytes, concatenated) under one nonce, with AAD = a
 * version label, the pool ID, master, slave, id, key size, fetched_ms, n
 * and ids, so a row edited on disk to move keys to another pair, to make
 * them look younger, to give them another sequence, or to rename or reorder
 * them, no longer opens. A lease takes whole rows: one row
 * deleted per batch and one AES-GCM open per batch, instead of per key.
 * Schemas 1 and 2 are refused at open, not converted.
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
#include "kmsd/hwm.h"
#include "kmsd/pool.h"

#define POOL_LEASE_MAX	100000u		/* lease_size limit, as kmsd/config.c */
#define POOL_BUSY_MS	5000
#define POOL_NO_MS	UINT64_MAX	/* "no row": min of an empty set */
#define POOL_SCHEMA	3		/* meta "schema": rows with sequences */
#define POOL_ROW_MAX	ETSI_MAX_KEYS	/* keys per row at most */
/* ids_encode's worst case per ID: every byte as \u00XX, quotes, comma. */
#define POOL_ID_JSON	(6 * ETSI_KEY_ID_MAX + 3)
/* pool_prefetch leases when fewer than this many leases' worth of keys are
 * in memory, topping up to one lease more (rounded up to whole rows): the
 * slack the refill thread has to deliver the next one under full load.
 * Memory never holds more than (POOL_STANDBY + 1) leases per pair, plus the
 * rest of the last row taken, through prefetching; that is what a crash can
 * discard. */
#define POOL_STANDBY	2

static const char kek_check_aad[] = "kmsd pool kek check";
static const char batch_aad_label[] = "kmsd pool batch v3";

enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_INS, ST_SEL_LEASE, ST_DEL_LEASE,
	ST_DEL_OLD, ST_MIN, ST_META_GET, ST_META_SET, ST_ALL_IDS, ST_DEL_BELOW,
	ST__N };

static const char *const sql_stmt[ST__N] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INS] = "INSERT INTO batches(id, master, slave, fetched_ms, n, ids, "
	    "blob) VALUES(?, ?, ?, ?, ?, ?, ?)",
	/* In sequence order: what the high-water mark relies on. */
	[ST_SEL_LEASE] = "SELECT id, fetched_ms, n, ids, blob FROM batches "
	    "WHERE master = ? AND slave = ? AND fetched_ms >= ? "
	    "ORDER BY id LIMIT ?",
	/* Exactly the rows ST_SEL_LEASE returned, up to the last one. */
	[ST_DEL_LEASE] = "DELETE FROM batches WHERE master = ? AND slave = ? "
	    "AND fetched_ms >= ? AND id <= ?",
	[ST_DEL_OLD] = "DELETE FROM batches WHERE master = ? AND slave = ? "
	    "AND fetched_ms < ? RETURNING n, ids",
	[ST_MIN] = "SELECT min(fetched_ms) FROM batches "
	    "WHERE master = ? AND slave = ?",
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)",
	[ST_ALL_IDS] = "SELECT ids FROM batches",
	/* At open: rows at or below the pair's high-water mark. */
	[ST_DEL_BELOW] = "DELETE FROM batches WHERE master = ? AND slave = ? "
	    "AND id <= ? RETURNING n",
};

static const char sql_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB);"
	"CREATE TABLE IF NOT EXISTS batches(id INTEGER PRIMARY KEY,"
	" master TEXT NOT NULL, slave TEXT NOT NULL,"
	" fetched_ms INTEGER NOT NULL, n INTEGER NOT NULL,"
	" ids TEXT NOT NULL, blob BLOB NOT NULL);"
	/* (master, slave, id): leases in sequence order, no sort. */
	"CREATE INDEX IF NOT EXISTS batches_pair ON batches(master, slave);"
	/* For operators (sqlite3 pool.db 'SELECT key_id FROM keys'). */
	"CREATE VIEW IF NOT EXISTS keys AS SELECT b.id AS batch, b.master,"
	" b.slave, j.value AS key_id, b.fetched_ms FROM batches b,"
	" json_each(b.ids) j;";

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
	size_t		 ndisk;		/* keys in the database, exact */
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

/* A growable buffer. */
struct gbuf {
	void		*p;
	size_t		 len, cap;
};

/* A row read by a lease transaction, before it is unsealed (the buffers
 * are kept for the next lease; ids and blob are not secret). */
struct lrow {
	sqlite3_int64	 rowid;
	uint64_t	 fetched_ms;
	size_t		 n;		/* keys, as the n column says */
	struct gbuf	 ids;		/* text, not NUL-terminated */
	struct gbuf	 blob;		/* n * kb + SEAL_OVERHEAD if intact */
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
	uint8_t		*aad;		/* batch_aad's buffer */
	size_t		 aad_cap;
	struct lkey	*stage;		/* an unsealed lease, not yet attached */
	uint8_t		*sbytes;	/* scap * kb, sec_alloc */
	size_t		 sn, scap;
	uint64_t	*retire;	/* hashes to drop from the ID set */
	size_t		 nretire, retire_cap;
	/* Under mu (and dbmu too for writes to the list). */
	struct pair	*pairs;
	void		(*notify)(void *);
	void		*notify_arg;
	/* Under dbmu. */
	struct hwm	 hwm;		/* pool ID and high-water marks */
	struct pool_stats stats;
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

/*
 * The key IDs of keys[first .. first + n) as a JSON list of strings, into
 * out (room for 2 + n * POOL_ID_JSON); returns its length. '"' and '\' are
 * escaped, and every byte outside 0x20..0x7e as \u00XX (ids_next reverses
 * exactly this).
 */
static size_t
ids_encode(const struct etsi_keys *keys, size_t first, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t		  o = 0, i;
	const char	 *c;

	out[o++] = '[';
	for (i = first; i < first + n; i++) {
		if (i > first)
			out[o++] = ',';
		out[o++] = '"';
		for (c = keys->v[i].id; *c != '\0'; c++) {
			uint8_t u = (uint8_t)*c;

			if (u == '"' || u == '\\') {
				out[o++] = '\\';
				out[o++] = (char)u;
			} else if (u < 0x20 || u > 0x7e) {
				memcpy(out + o, "\\u00", 4);
				out[o + 4] = hex[u >> 4];
				out[o + 5] = hex[u & 15];
				o += 6;
			} else
				out[o++] = (char)u;
		}
		out[o++] = '"';
	}
	out[o++] = ']';
	return o;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The next key ID of a list written by ids_encode (s, len; *pos 0 at the
 * start): 1 and the ID in out, 0 at the end of the list, -1 if malformed.
 */
static int
ids_next(const char *s, size_t len, size_t *pos, char out[ETSI_KEY_ID_MAX + 1])
{
	size_t	i = *pos, o = 0;
	int	hi, lo;

	if (i == 0) {
		if (len < 2 || s[0] != '[')
			return -1;
		i = 1;
	} else if (i < len && s[i] == ']')
		return i + 1 == len ? 0 : -1;
	else if (i < len && s[i] == ',')
		i++;
	else
		return -1;
	if (i >= len || s[i] != '"')
		return -1;
	for (i++; i < len && s[i] != '"'; i++) {
		char c = s[i];

		if (c == '\\') {
			if (++i >= len)
				return -1;
			if (s[i] == '"' || s[i] == '\\')
				c = s[i];
			else if (s[i] == 'u' && i + 4 < len && s[i + 1] == '0' &&
			    s[i + 2] == '0' && (hi = hexval(s[i + 3])) >= 0 &&
			    (lo = hexval(s[i + 4])) >= 0) {
				c = (char)(hi << 4 | lo);
				i += 4;
			} else
				return -1;
		}
		if (c == '\0' || o == ETSI_KEY_ID_MAX)
			return -1;
		out[o++] = c;
	}
	if (i >= len || o == 0)
		return -1;
	out[o] = '\0';
	*pos = i + 1;
	return 1;
}

/*
 * The AAD of a batch row, in p->aad (grown as needed; under dbmu): the label,
 * the pool ID, master, slave (NUL-terminated: none can contain a NUL), then
 * big-endian, 8 bytes each: seq, key bytes, fetched_ms and n; then the ids
 * text. NULL out of memory.
 */
static const uint8_t *
batch_aad(struct pool *p, uint64_t seq, const char *master, const char *slave,
    uint64_t fetched_ms, size_t n, const char *ids, size_t idslen,
    size_t *alen)
{
	size_t	a = sizeof(batch_aad_label) + HWM_ID_LEN, b = strlen(master) + 1;
	size_t	c = strlen(slave) + 1, len = a + b + c + 32 + idslen, o;
	uint8_t	*q;
	uint64_t v[4] = { seq, p->kb, fetched_ms, n };

	if (len > p->aad_cap) {
		if ((q = realloc(p->aad, len)) == NULL)
			return NULL;
		p->aad = q;
		p->aad_cap = len;
	}
	q = p->aad;
	memcpy(q, batch_aad_label, sizeof(batch_aad_label));
	memcpy(q + sizeof(batch_aad_label), p->hwm.id, HWM_ID_LEN);
	memcpy(q + a, master, b);
	memcpy(q + a + b, slave, c);
	o = a + b + c;
	for (size_t w = 0; w < 4; w++)
		for (size_t i = 0; i < 8; i++)
			q[o + 8 * w + i] = (uint8_t)(v[w] >> (56 - 8 * i));
	memcpy(q + o + 32, ids, idslen);
	*alen = len;
	return q;
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

/* Under dbmu: room for n rows in p->rows. */
static int
rows_grow(struct pool *p, size_t n)
{
	struct lrow	*r;
	size_t		 cap;

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

/* Copies a column's bytes into a growable buffer; -1 out of memory. */
static int
col_copy(sqlite3_stmt *st, int col, int text, struct gbuf *g)
{
	const void	*src = text ? (const void *)sqlite3_column_text(st, col) :
	    sqlite3_column_blob(st, col);
	size_t		 n = (size_t)sqlite3_column_bytes(st, col);
	void		*b;

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

/* Under dbmu: room for n unsealed keys in the stage. */
static int
stage_reserve(struct pool *p, size_t n)
{
	struct lkey	*lk;
	uint8_t		*b;

	if (n <= p->scap)
		return 0;
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
	return 0;
}

/*
 * Inside the lease transaction: reads the oldest unexpired rows of the pair
 * into p->rows until they hold at least `want` keys (whole rows: a lease is
 * rounded up to whole batches), reserves the stage for them and deletes
 * them. Rows found corrupt later (lease_fill) are deleted all the same.
 */
static int
lease_read(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want,
    size_t *nrows, size_t *nkeys)
{
	sqlite3_stmt	*st = db_st(p, ST_SEL_LEASE);
	struct lrow	*r;
	size_t		 n = 0, keys = 0;
	sqlite3_int64	 v;
	int		 rc = SQLITE_DONE;

	*nrows = *nkeys = 0;
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)want);
	while (keys < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (rows_grow(p, n + 1) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		r = &p->rows[n];
		r->rowid = sqlite3_column_int64(st, 0);
		r->fetched_ms = (uint64_t)sqlite3_column_int64(st, 1);
		v = sqlite3_column_int64(st, 2);
		r->n = v > 0 && v <= POOL_ROW_MAX ? (size_t)v : 0;
		if (col_copy(st, 3, 1, &r->ids) == -1 ||
		    col_copy(st, 4, 0, &r->blob) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		n++;
		keys += r->n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_err("pool: lease select: %s", rc == SQLITE_NOMEM ?
		    "out of memory" : sqlite3_errmsg(p->db));
		return -1;
	}
	if (n == 0)
		return 0;
	if (stage_reserve(p, keys) == -1) {
		log_err("pool: lease of %zu keys: out of memory", keys);
		return -1;
	}
	/* One range delete: ~2x cheaper than a DELETE per row. */
	st = db_st(p, ST_DEL_LEASE);
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	sqlite3_bind_int64(st, 4, p->rows[n - 1].rowid);
	if (db_done(p, st, "lease delete") == -1)
		return -1;
	if ((size_t)sqlite3_changes(p->db) != n) {
		/* Cannot happen inside one write transaction; never guess. */
		log_err("pool: lease delete removed %d rows, selected %zu",
		    sqlite3_changes(p->db), n);
		return -1;
	}
	*nrows = n;
	*nkeys = keys;
	return 0;
}

/* Queues the hashes of a row's IDs for retirement (as far as they parse). */
static void
retire_ids(struct pool *p, const char *ids, size_t len)
{
	char	id[ETSI_KEY_ID_MAX + 1];
	size_t	pos = 0;

	while (ids_next(ids, len, &pos, id) == 1)
		retire_push(p, ids_hash(&p->ids, id));
}

/*
 * Inside a transaction, under dbmu: deletes the pair's expired rows and
 * queues their IDs for retirement; count (keys) in *n. The caller drops the
 * queued IDs (retire_cut) if the transaction then fails.
 */
static int
disk_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	sqlite3_stmt	*st = db_st(p, ST_DEL_OLD);
	sqlite3_int64	 v;
	int		 rc;

	*n = 0;
	bind_pair(st, pr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ids = (const char *)sqlite3_column_text(st, 1);

		if (ids != NULL)
			retire_ids(p, ids, (size_t)sqlite3_column_bytes(st, 1));
		v = sqlite3_column_int64(st, 0);
		*n += v > 0 && v <= POOL_ROW_MAX ? (size_t)v : 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: expire: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	return 0;
}

/*
 * Under dbmu: unseals the rows just removed from disk into the stage (room
 * reserved by lease_read), one seal_open per row. A row that does not parse
 * or authenticate is dropped whole, never served; its IDs stay in the ID set
 * (a superset is safe, and a tampered ids list must not retire others').
 */
static void
lease_fill(struct pool *p, struct pair *pr, size_t nrows)
{
	char		 extra[ETSI_KEY_ID_MAX + 1];
	const char	*ids;
	const uint8_t	*aad;
	struct lrow	*r;
	struct lkey	*lk;
	size_t		 i, k, pos, alen, bad = 0;
	int		 ok;

	p->sn = 0;
	for (i = 0; i < nrows; i++) {
		r = &p->rows[i];
		lk = p->stage + p->sn;
		ids = r->ids.p;
		ok = r->n > 0 && r->blob.len == r->n * p->kb + SEAL_OVERHEAD;
		for (k = 0, pos = 0; ok && k < r->n; k++)
			ok = ids_next(ids, r->ids.len, &pos, lk[k].id) == 1;
		ok = ok && ids_next(ids, r->ids.len, &pos, extra) == 0;
		aad = ok ? batch_aad(p, (uint64_t)r->rowid, pr->master,
		    pr->slave, r->fetched_ms, r->n, ids, r->ids.len, &alen) :
		    NULL;
		if (aad == NULL || seal_open(p->seal, aad, alen, r->blob.p,
		    r->blob.len, p->sbytes + p->sn * p->kb) == -1) {
			/* Tampered or corrupt: gone from disk, never served. */
			if (r->n > 0)
				OPENSSL_cleanse(p->sbytes + p->sn * p->kb,
				    r->n * p->kb);
			log_err("pool: (%s, %s): row %lld (%zu keys) does not "
			    "authenticate under the KEK: dropped", pr->master,
			    pr->slave, (long long)r->rowid, r->n);
			bad += r->n;
			continue;
		}
		for (k = 0; k < r->n; k++) {
			lk[k].fetched_ms = r->fetched_ms;
			lk[k].h = ids_hash(&p->ids, lk[k].id);
		}
		p->sn += r->n;
	}
	if (bad)
		log_err("pool: (%s, %s): %zu stored keys dropped as corrupt",
		    pr->master, pr->slave, bad);
	p->stats.corrupt_keys += bad;
}

/*
 * Under dbmu (mu is not needed, and may be held): takes a lease of at least
 * `want` keys (whole rows), or what there is, into the stage. One FULL
 * transaction deletes the pair's expired rows and the oldest others; inside
 * it, before COMMIT, the pair's high-water mark is raised to the last row
 * leased and made durable (so an older copy of the database restored later
 * cannot bring these rows back; a crash between the two loses the lease, as
 * a crash after COMMIT would). Only after COMMIT returned are the rows
 * unsealed. The keys are then off the disk: the caller attaches them
 * (lease_attach) before releasing dbmu.
 */
static int
lease_load(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want)
{
	size_t	nexp = 0, nrows = 0, nkeys = 0, mark = p->nretire;

	p->sn = 0;
	if (db_begin(p) == -1)
		return -1;
	/* disk_min_ms is exact or lower: no expired row, no DELETE to try. */
	if ((pr->disk_min_ms < cutoff &&
	    disk_expire(p, pr, cutoff, &nexp) == -1) ||
	    lease_read(p, pr, cutoff, want, &nrows, &nkeys) == -1 ||
	    (nrows > 0 && hwm_raise(&p->hwm, p->seal, pr->master, pr->slave,
	    (uint64_t)p->rows[nrows - 1].rowid) == -1) ||
	    db_commit(p) == -1) {
		db_rollback(p);
		retire_cut(p, mark);
		return -1;
	}
	pr->ndisk -= nexp + nkeys <= pr->ndisk ? nexp + nkeys : pr->ndisk;
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

/* Scratch for add_row: sized for POOL_ROW_MAX keys. */
struct row_buf {
	char	*ids;		/* ids text */
	uint8_t	*pt;		/* plaintext, sec_alloc */
	uint8_t	*blob;
	size_t	 max;		/* keys */
};

static int
row_buf_alloc(struct pool *p, struct row_buf *rb, size_t nkeys)
{
	rb->max = nkeys < POOL_ROW_MAX ? nkeys : POOL_ROW_MAX;
	rb->ids = malloc(2 + rb->max * POOL_ID_JSON);
	rb->pt = sec_alloc(rb->max * p->kb);
	rb->blob = malloc(rb->max * p->kb + SEAL_OVERHEAD);
	return rb->ids && rb->pt && rb->blob ? 0 : -1;
}

static void
row_buf_free(struct pool *p, struct row_buf *rb)
{
	free(rb->ids);
	sec_free(rb->pt, rb->max * p->kb);
	free(rb->blob);
	memset(rb, 0, sizeof(*rb));
}

/* Under dbmu, in a transaction: inserts keys[first .. first + n) as one row,
 * sequence number *seq (then incremented). */
static int
add_row(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb,
    uint64_t *seq)
{
	char		*ids = rb->ids;
	uint8_t		*pt = rb->pt, *blob = rb->blob;
	const uint8_t	*aad;
	sqlite3_stmt	*st;
	size_t		 idslen, alen, i;
	int		 rc;

	idslen = ids_encode(keys, first, n, ids);
	if ((aad = batch_aad(p, *seq, pr->master, pr->slave, fetched_ms, n, ids,
	    idslen, &alen)) == NULL) {
		log_err("pool: add: out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		memcpy(pt + i * p->kb, keys->v[first + i].key, p->kb);
	rc = seal_seal(p->seal, aad, alen, pt, n * p->kb, blob);
	OPENSSL_cleanse(pt, n * p->kb);
	if (rc == -1)
		return -1;
	st = db_st(p, ST_INS);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)*seq);
	sqlite3_bind_text(st, 2, pr->master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, pr->slave, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)fetched_ms);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)n);
	sqlite3_bind_text(st, 6, ids, (int)idslen, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, blob, (int)(n * p->kb + SEAL_OVERHEAD),
	    SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: add: %s", sqlite3_errmsg(p->db));
		return -1;
	}
	(*seq)++;
	return 0;
}

static int	meta_get(struct pool *, const char *, void *, size_t, uint64_t *);
static int	meta_set(struct pool *, const char *, const void *, size_t,
		    uint64_t);

/*
 * Under dbmu, in a transaction: the next row sequence number. Kept in the
 * meta table, read inside the write transaction (several processes may
 * share the pool); pool_open keeps it above every high-water mark.
 */
static int
seq_next(struct pool *p, uint64_t *seq)
{
	if (!meta_get(p, "next_seq", NULL, 0, seq) || *seq == 0 ||
	    *seq > INT64_MAX / 2) {
		log_err("pool: meta next_seq is missing or out of range");
		return -1;
	}
	return 0;
}

/*
 * Under dbmu, in a transaction: the keys [first, first + n) of keys as rows
 * of at most POOL_ROW_MAX keys, all stamped fetched_ms.
 */
static int
add_rows(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb)
{
	uint64_t	seq;
	size_t		i, m;

	if (seq_next(p, &seq) == -1)
		return -1;
	for (i = first; i < first + n; i += m) {
		m = first + n - i < POOL_ROW_MAX ? first + n - i : POOL_ROW_MAX;
		if (add_row(p, pr, keys, i, m, fetched_ms, rb, &seq) == -1)
			return -1;
	}
	return meta_set(p, "next_seq", NULL, 0, seq);
}

int
pool_add(struct pool *p, const char *master, const char *slave,
    const struct etsi_keys *keys, uint64_t fetched_ms)
{
	struct pair	*pr;
	struct row_buf	 rb = { NULL, NULL, NULL, 0 };
	uint64_t	*h = NULL;
	int		 rc = -1;

	if (!etsi_id_valid(master) || !etsi_id_valid(slave) ||
	    fetched_ms > INT64_MAX) {
		log_err("pool: add: bad SAE ID or fetched_ms");
		return -1;
	}
	if (keys->n == 0)
		return 0;
	/* Scratch for one row, allocated before any lock is taken. */
	if ((h = calloc(keys->n, sizeof(*h))) == NULL ||
	    row_buf_alloc(p, &rb, keys->n) == -1) {
		log_err("pool: add: out of memory");
		goto out;
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
	if (add_rows(p, pr, keys, 0, keys->n, fetched_ms, &rb) == -1 ||
	    db_commit(p) == -1) {
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
 out:
	free(h);
	row_buf_free(p, &rb);
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
/* An older (or newer) layout: refused, with what to do (two %s: the path). */
static const char old_layout[] = "pool %s: the database has another layout "
    "than this kmsd's (schema 3: rows of keys with sequence numbers) and is not "
    "converted: stop kmsd, delete %s and its -wal and -shm files, and start "
    "again (the pool only caches keys the KME already delivered: deleting it "
    "loses those keys, which is safe)";

static int
meta_check(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen)
{
	static const uint8_t zero[16];
	uint8_t		 chk[sizeof(zero) + SEAL_OVERHEAD], pt[sizeof(zero)];
	uint64_t	 kb, schema;

	if (!meta_get(p, "key_bytes", NULL, 0, &kb)) {
		if (db_begin(p) == -1 ||
		    seal_seal(p->seal, (const uint8_t *)kek_check_aad,
		    sizeof(kek_check_aad), zero, sizeof(zero), chk) == -1 ||
		    meta_set(p, "key_bytes", NULL, 0, p->kb) == -1 ||
		    meta_set(p, "schema", NULL, 0, POOL_SCHEMA) == -1 ||
		    meta_set(p, "next_seq", NULL, 0, 1) == -1 ||
		    meta_set(p, "kek_check", chk, sizeof(chk), 0) == -1 ||
		    db_commit(p) == -1) {
			db_rollback(p);
			snprintf(err, errlen, "pool %s: cannot initialise: %s",
			    cfg->db_path, sqlite3_errmsg(p->db));
			return -1;
		}
		return 0;
	}
	if (!meta_get(p, "schema", NULL, 0, &schema) || schema != POOL_SCHEMA) {
		snprintf(err, errlen, old_layout, cfg->db_path, cfg->db_path);
		return -1;
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

/* One integer from a query (NULL reads as 0); -1 logged. */
static int
db_u64(struct pool *p, const char *sql, uint64_t *v)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		log_err("pool: %s: %s", sql, sqlite3_errmsg(p->db));
	sqlite3_finalize(st);
	return rc;
}

/* In a transaction: drops the rows at or below each pair's mark. */
static int
rollback_marks(struct pool *p, uint64_t *rows, uint64_t *keys)
{
	sqlite3_stmt	*st;
	int		 rc;

	for (size_t i = 0; i < p->hwm.n; i++) {
		st = db_st(p, ST_DEL_BELOW);
		sqlite3_bind_text(st, 1, p->hwm.v[i].master, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p->hwm.v[i].slave, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)p->hwm.v[i].mark);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			(*rows)++;
			*keys += (uint64_t)sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			log_err("pool: rollback check: %s", sqlite3_errmsg(p->db));
			return -1;
		}
	}
	return 0;
}

/* In a transaction: drops every row (they belong to another pool ID). */
static int
rollback_all(struct pool *p, uint64_t *rows, uint64_t *keys)
{
	if (db_u64(p, "SELECT count(*) FROM batches", rows) == -1 ||
	    db_u64(p, "SELECT coalesce(sum(n), 0) FROM batches", keys) == -1)
		return -1;
	return db_exec(p, "DELETE FROM batches");
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
static int
rollback_check(struct pool *p, const char *db_path, int fresh, char *err,
    size_t errlen)
{
	uint8_t		id[HWM_ID_LEN];
	uint64_t	rows = 0, keys = 0, next = 0, maxid = 0;
	int		foreign;

	/* A new pool ID is durable before any row is sealed with it. */
	if (fresh && hwm_save(&p->hwm, p->seal, err, errlen) == -1)
		return -1;
	if (db_begin(p) == -1)
		goto fail;
	foreign = !meta_get(p, "pool_id", id, sizeof(id), NULL) ||
	    CRYPTO_memcmp(id, p->hwm.id, HWM_ID_LEN) != 0;
	if ((foreign ? rollback_all(p, &rows, &keys) :
	    rollback_marks(p, &rows, &keys)) == -1 ||
	    meta_set(p, "pool_id", p->hwm.id, HWM_ID_LEN, 0) == -1 ||
	    db_u64(p, "SELECT coalesce(max(id), 0) FROM batches", &maxid) == -1)
		goto fail;
	(void)meta_get(p, "next_seq", NULL, 0, &next);
	if (next <= maxid)
		next = maxid + 1;
	if (next <= hwm_max(&p->hwm))
		next = hwm_max(&p->hwm) + 1;
	if (meta_set(p, "next_seq", NULL, 0, next) == -1 || db_commit(p) == -1)
		goto fail;
	if (rows > 0 && foreign)
		log_warn("pool %s: %llu keys in %llu rows dropped, never served: "
		    "the database does not belong to the high-water mark file "
		    "%s (that file was lost or replaced, or the database was "
		    "copied from another pool)", db_path,
		    (unsigned long long)keys, (unsigned long long)rows,
		    p->hwm.path);
	else if (rows > 0)
		log_warn("pool %s: %llu keys in %llu restored/rolled back rows "
		    "refused and wiped: they were leased before (an older copy "
		    "of the database was restored, or a crash came between a "
		    "lease's high-water mark and its commit)", db_path,
		    (unsigned long long)keys, (unsigned long long)rows);
	p->stats.rolled_back_rows += rows;
	p->stats.rolled_back_keys += keys;
	return 0;
 fail:
	db_rollback(p);
	snprintf(err, errlen, "pool %s: cannot check the rows against the "
	    "high-water marks in %s: %s", db_path, p->hwm.path,
	    sqlite3_errmsg(p->db));
	return -1;
}

/* The ID set from the database, at open. A list that does not parse is
 * never served (lease_fill drops its row): its IDs need not be in the set. */
static int
ids_load(struct pool *p)
{
	sqlite3_stmt	*st = db_st(p, ST_ALL_IDS);
	char		 id[ETSI_KEY_ID_MAX + 1];
	size_t		 pos, len;
	int		 rc, r;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ids = (const char *)sqlite3_column_text(st, 0);

		len = (size_t)sqlite3_column_bytes(st, 0);
		pos = 0;
		while (ids != NULL && (r = ids_next(ids, len, &pos, id)) == 1)
			if (ids_add(&p->ids, ids_hash(&p->ids, id)) == -1)
				break;
		if (ids != NULL && r == 1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("pool: cannot build the key ID set: %s",
		    rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(p->db));
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

	if (sqlite3_prepare_v2(p->db, "SELECT master, slave, sum(n), "
	    "min(fetched_ms) FROM batches GROUP BY master, slave", -1, &st,
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
	int		 fd, wal = 0, old, i;

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
	    db_exec(p, "PRAGMA secure_delete=ON") == -1)
		goto fail;
	/* Schema 1 had a table keys (one row per key), now a view. */
	if (sqlite3_prepare_v2(p->db, "SELECT 1 FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'keys'", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	old = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (old) {
		snprintf(err, errlen, old_layout, cfg->db_path, cfg->db_path);
		return -1;
	}
	if (db_exec(p, sql_schema) == -1)
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

/* The mark file (default: the database's path + ".hwm"): as hwm_load. */
static int
hwm_open(struct pool *p, const struct pool_cfg *cfg, char *err, size_t errlen)
{
	char	*path = NULL;
	size_t	 len;
	int	 rc;

	if (cfg->hwm_file == NULL || *cfg->hwm_file == '\0') {
		len = strlen(cfg->db_path) + sizeof(".hwm");
		if ((path = malloc(len)) == NULL) {
			snprintf(err, errlen, "pool: out of memory");
			return -1;
		}
		snprintf(path, len, "%s.hwm", cfg->db_path);
	}
	rc = hwm_load(&p->hwm, p->seal, path ? path : cfg->hwm_file, err,
	    errlen);
	free(path);
	if (rc == 1)
		log_info("pool: new high-water mark file %s", p->hwm.path);
	return rc;
}

struct pool *
pool_open(const struct pool_cfg *cfg, char *err, size_t errlen)
{
	uint8_t		 kek[SEAL_KEK_LEN];
	struct pool	*p = NULL;
	int		 ok = 0, fresh;

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
	    meta_check(p, cfg, err, errlen) == -1 ||
	    (fresh = hwm_open(p, cfg, err, errlen)) == -1 ||
	    rollback_check(p, cfg->db_path, fresh, err, errlen) == -1)
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

/*
 * Under dbmu and mu, in a transaction: the pair's queued keys as new rows
 * (one per run of keys fetched at the same time), with sequences above the
 * mark, so they are served after the rows already on disk. tmp has room for
 * pr->n keys; its key pointers borrow the queue's bytes.
 */
static int
release_pair(struct pool *p, struct pair *pr, struct row_buf *rb,
    struct etsi_keys *tmp)
{
	size_t	i, j;

	for (i = 0; i < pr->n; i++) {
		memcpy(tmp->v[i].id, pr->lk[i].id, sizeof(tmp->v[i].id));
		tmp->v[i].key = lease_bytes(p, pr, i);
		tmp->v[i].len = p->kb;
	}
	tmp->n = pr->n;
	for (i = 0; i < pr->n; i = j) {
		for (j = i + 1; j < pr->n && j - i < POOL_ROW_MAX &&
		    pr->lk[j].fetched_ms == pr->lk[i].fetched_ms; j++)
			;
		if (add_rows(p, pr, tmp, i, j - i, pr->lk[i].fetched_ms, rb)
		    == -1)
			return -1;
	}
	return 0;
}

/*
 * At a graceful stop: the keys leased into memory and not served go back to
 * the database (sealed as new rows, one FULL transaction), so a stop loses
 * no key. A crash still loses them (never serves them twice). Nothing is
 * served after this: the queues are emptied either way.
 */
static void
pool_release(struct pool *p)
{
	struct etsi_keys	 tmp = { NULL, 0 };
	struct row_buf		 rb = { NULL, NULL, NULL, 0 };
	struct pair		*pr;
	uint64_t		 cutoff = cutoff_of(p, time_real_ms());
	size_t			 total = 0, most = 0;
	int			 rc = -1;

	pthread_mutex_lock(&p->dbmu);
	pthread_mutex_lock(&p->mu);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		lease_expire(p, pr, cutoff);
		lease_compact(p, pr);
		total += pr->n;
		most = pr->n > most ? pr->n : most;
	}
	if (total == 0) {
		rc = 0;
		goto done;
	}
	if ((tmp.v = calloc(most, sizeof(*tmp.v))) == NULL ||
	    row_buf_alloc(p, &rb, most) == -1 || db_begin(p) == -1)
		goto done;
	for (pr = p->pairs; pr != NULL; pr = pr->next)
		if (pr->n > 0 && release_pair(p, pr, &rb, &tmp) == -1)
			break;
	if (pr != NULL || db_commit(p) == -1) {
		db_rollback(p);
		goto done;
	}
	p->stats.returned_keys += total;
	log_info("pool: %zu leased keys put back into the pool database", total);
	rc = 0;
 done:
	if (rc == -1)
		log_err("pool: %zu leased keys could not be put back on disk: "
		    "they are dropped (never served)", total);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		OPENSSL_cleanse(pr->lbytes, pr->n * p->kb);
		pr->n = 0;
		pr->lease_min_ms = POOL_NO_MS;
	}
	pthread_mutex_unlock(&p->mu);
	db_unlock(p);
	free(tmp.v);		/* the keys were the queue's */
	row_buf_free(p, &rb);
}

void
pool_stats(struct pool *p, struct pool_stats *out)
{
	pthread_mutex_lock(&p->dbmu);
	*out = p->stats;
	pthread_mutex_unlock(&p->dbmu);
}

void
pool_close(struct pool *p)
{
	struct pair	*pr;
	size_t		 i;

	if (p == NULL)
		return;
	if (p->db != NULL && p->st[ST__N - 1] != NULL)
		pool_release(p);
	while ((pr = p->pairs) != NULL) {
		p->pairs = pr->next;
		pair_free(p, pr);
	}
	free(p->ids.t);
	free(p->retire);
	free(p->stage);
	sec_free(p->sbytes, p->scap * p->kb);
	for (i = 0; i < p->rows_cap; i++) {
		free(p->rows[i].ids.p);
		free(p->rows[i].blob.p);
	}
	free(p->rows);
	free(p->aad);
	for (i = 0; i < ST__N; i++)
		sqlite3_finalize(p->st[i]);
	sqlite3_close(p->db);
	seal_free(p->seal);
	hwm_free(&p->hwm);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->dbmu);
	free(p);
}

/*
 * kmsd's pool inside: the types and calls its files share. Other modules
 * use pool.h only.
 *
 *   pool.c        the policy and the public API: pairs, take, prefetch,
 *                 add, count, expire, open, close (keys put back)
 *   pool_lease.c  leases: the in-memory queues, the stage, the retire list,
 *                 and moving a lease from disk into memory
 *   pool_sql.c    the database: schema, statements, rows read and written,
 *                 the key-ID list codec, the checks at open
 *   pool_seal.c   sealing: the AAD of a row, sealing and opening rows in
 *                 sealing epochs (common/sealep.h), the KEK check
 *   hwm.c         the high-water mark file
 *
 * The no-key-twice guarantee rests on one ordering: a key leaves the database
 * in a committed synchronous=FULL transaction (the WAL is fsynced before
 * COMMIT returns) before it is unsealed, and is served only from memory after
 * that. A kill -9 or power cut therefore loses at most the unserved keys in
 * memory; nothing that was served can come back. Every commit is FULL: the
 * ones that are not on the serving path (add, expire) are rare, and one mode
 * avoids a PRAGMA per transaction.
 *
 * Key IDs are kept unique by an in-memory set (common/idset.h), not by a
 * UNIQUE index: KME key IDs are random UUIDs, so deleting a lease of 256
 * rows would touch ~256 random index pages, all written to the WAL and
 * fsynced; measured, that made a lease refill 4x slower. The set is a
 * multiset and always a superset of the IDs on disk and in the leases (IDs
 * leave it only after their key left both), so "hash present" never misses a
 * duplicate; two distinct IDs with one hash (about n / 2^64 per add) only
 * make pool_add refuse a batch, which is safe.
 *
 * Two locks, always taken in this order: dbmu, then mu.
 *  - dbmu (the database side): the SQLite connection and its statements, the
 *    ID set, the lease staging buffers (rows, stage), the retire list, and
 *    per pair ndisk and disk_min_ms.
 *  - mu (the memory side): per pair the in-memory queue (q, head,
 *    n, cap, lease_min_ms, asked) and the notify callback.
 *  - The pair list is written under both and read under either; pairs are
 *    freed only by pool_close.
 * pool_take serves under mu alone (the fast path: no SQLite, no ID set, no
 * allocation). Keys move from disk into a pair's queue in two steps: under
 * dbmu alone a lease is read, deleted, committed and unsealed into `stage`
 * (pool_lease_load); then under mu the queue is compacted and the stage
 * appended (pool_lease_attach). pool_prefetch does this in the background
 * whenever fewer than lease_size keys are left in memory, so the queue
 * normally holds the current lease plus a standby one; pool_take leases
 * synchronously (both locks held) only when the queue cannot satisfy it.
 *
 * Served and expired queue entries keep their ID hash until the queue is
 * compacted (always under both locks); compaction moves those hashes to the
 * retire list, and they leave the ID set when dbmu is released
 * (pool_db_unlock), outside mu. Expired rows deleted on disk go through the
 * retire list too, so a rolled-back transaction simply forgets them
 * (pool_retire_cut).
 */
#ifndef KMSD_POOL_INT_H
#define KMSD_POOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/idset.h"
#include "common/sealep.h"
#include "common/seal.h"
#include "common/sqldb.h"
#include "kmsd/hwm.h"
#include "kmsd/pool.h"

#define POOL_LEASE_MAX 100000u	     /* lease_size limit, as kmsd/config.c */
#define POOL_NO_MS     UINT64_MAX    /* "no row": min of an empty set */
#define POOL_ROW_MAX   ETSI_MAX_KEYS /* keys per row at most */
/* The JSON text of one key ID at most: every byte as \u00XX, quotes, comma. */
#define POOL_ID_JSON (6 * ETSI_KEY_ID_MAX + 3)
/* pool_prefetch leases when fewer than this many leases' worth of keys are
 * in memory, topping up to one lease more (rounded up to whole rows): the
 * slack the refill thread has to deliver the next one under full load.
 * Memory never holds more than (POOL_STANDBY + 1) leases per pair, plus the
 * rest of the last row taken, through prefetching; that is what a crash can
 * discard. */
#define POOL_STANDBY 2

/* A leased key's metadata; its bytes are at the same index alongside. */
struct lkey {
	char	 id[ETSI_KEY_ID_MAX + 1];
	uint64_t fetched_ms;
	uint64_t h; /* idset_hash(id): retired without rehashing */
};

/* Keys in memory: metadata, and their bytes at the same index alongside. */
struct keyq {
	struct lkey *lk;
	uint8_t	    *b; /* cap * key_bytes, sec_alloc */
	size_t	     cap;
};

struct pair {
	struct pair *next; /* written under dbmu and mu */
	char	     master[ETSI_ID_MAX + 1];
	char	     slave[ETSI_ID_MAX + 1];
	/* Under dbmu. */
	size_t	     ndisk;	  /* keys in the database, exact */
	uint64_t     disk_min_ms; /* oldest fetched_ms on disk, POOL_NO_MS */
	/* Under mu. The queue: entries [head, head + n) of q, served from
	 * head; [0, head) were served or expired and await compaction. */
	struct keyq  q;
	size_t	     head, n;
	uint64_t     lease_min_ms; /* <= every queued fetched_ms */
	bool	     asked;	   /* prefetch asked for, or pointless */
};

/* A growable buffer. */
struct gbuf {
	void  *p;
	size_t len, cap;
};

/* A row read by a lease transaction, before it is unsealed (the buffers
 * are kept for the next lease; ids and blob are not secret). */
struct lrow {
	int64_t	    seq; /* the row's id */
	int64_t	    ep;	 /* its sealing epoch */
	uint64_t    fetched_ms;
	size_t	    n;	  /* keys, as the n column says */
	struct gbuf ids;  /* text, not NUL-terminated */
	struct gbuf blob; /* n * kb + SEAL_OVERHEAD if intact */
};

/* What a row's seal binds, besides the pool ID and the key size. */
struct pool_row {
	uint64_t	   seq;
	int64_t		   ep; /* sealing epoch (pool_seal_row sets it) */
	const struct pair *pr;
	uint64_t	   fetched_ms;
	size_t		   n;
	const char	  *ids; /* the ids column, as stored */
	size_t		   idslen;
};

/* Scratch for writing rows: sized for POOL_ROW_MAX keys at most. */
struct row_buf {
	char	*ids; /* ids text */
	uint8_t *pt;  /* plaintext, sec_alloc */
	uint8_t *blob;
	size_t	 max; /* keys */
};

struct pool_store;
struct pool_pg;

struct pool {
	pthread_mutex_t		 dbmu;
	pthread_mutex_t		 mu;
	/* Set at open, then read-only. */
	size_t			 kb; /* key bytes */
	size_t			 lease_size;
	uint64_t		 ttl_ms;
	const struct pool_store *st;   /* the backend, set at open */
	atomic_bool		 down; /* the database is unreachable */
	/* Under dbmu. */
	struct pool_pg		*pg;	   /* PostgreSQL (pool_pg.c), or NULL */
	struct sqldb		 db;	   /* SQLite */
	bool			 db_ready; /* every statement prepared */
	struct seal		*seal;	   /* the KEK: the mark file */
	struct sealep		*sep;	   /* the rows */
	struct idset		 ids;
	struct lrow		*rows;
	size_t			 rows_cap;
	struct keyq  stage;  /* an unsealed lease, not yet attached */
	size_t	     sn;     /* keys in the stage */
	uint64_t    *retire; /* hashes to drop from the ID set */
	size_t	     nretire, retire_cap;
	/* Under mu (and dbmu too for writes to the list). */
	struct pair *pairs;
	void (*notify)(void *);
	void		 *notify_arg;
	/* Under dbmu. */
	struct hwm	  hwm; /* pool ID and high-water marks */
	struct pool_stats stats;
};

/*
 * The storage backend: a function table, chosen at open (pool_sqlite.c for
 * SQLite, pool_pg.c for PostgreSQL). Every call is made under dbmu; the
 * run-time ones log their failures once and return -1. The writes run
 * between begin and commit (or rollback); a lease is lease_select then
 * lease_delete in one transaction, committed before any row is unsealed.
 */
struct pool_store {
	const char *name;
	int (*begin)(struct pool *p);
	int (*commit)(struct pool *p);
	void (*rollback)(struct pool *p);
	/* keys[first .. first + n) as rows, sealed, next sequence numbers. */
	int (*add)(struct pool *p, struct pair *pr,
	    const struct etsi_keys *keys, size_t first, size_t n,
	    uint64_t fetched_ms, struct row_buf *rb);
	/* The oldest unexpired rows of the pair into p->rows, whole rows until
	 * at least want keys, locked against every other taker. */
	int (*lease_select)(struct pool *p, struct pair *pr, uint64_t cutoff,
	    size_t want, size_t *nrows, size_t *nkeys);
	/* Deletes exactly those nrows rows (and raises any high-water mark). */
	int (*lease_delete)(struct pool *p, struct pair *pr, uint64_t cutoff,
	    size_t nrows);
	int (*expire)(struct pool *p, struct pair *pr, uint64_t cutoff,
	    size_t *n);
	int (*disk_min)(struct pool *p, struct pair *pr);
	/* NULL if pr->ndisk is exact in memory; else reads the shared count
	 * and disk_min_ms (other processes add and take rows). */
	int (*refresh)(struct pool *p, struct pair *pr);
	/* Before a transaction that seals up to nrows rows. */
	int (*seal_room)(struct pool *p, size_t nrows);
	/* Opens a row read by lease_select: as pool_open_row. */
	int (*open_row)(struct pool *p, const struct pool_row *r,
	    const uint8_t *blob, size_t bloblen, uint8_t *pt);
	/* NULL: this process refills alone. Else true if this process holds
	 * (took or renewed) the pair's refill lease. */
	bool (*refill_claim)(struct pool *p, struct pair *pr);
	void (*close)(struct pool *p); /* everything open frees */
};

/* pool_sqlite.c, pool_pg.c: open the backend (after the KEK is loaded,
 * pool_new and the ID set); set p->st first, so pool_close can clean. */
int pool_sqlite_open(struct pool *p, const struct pool_cfg *cfg,
    const uint8_t kek[SEAL_KEK_LEN], char *err, size_t errlen);
int pool_pg_open(struct pool *p, const struct pool_cfg *cfg,
    const uint8_t kek[SEAL_KEK_LEN], char *err, size_t errlen);

/* pool.c */
struct pair *pool_pair_find(struct pool *p, const char *master,
    const char *slave); /* under dbmu or mu */
struct pair *pool_pair_get(struct pool *p, const char *master,
    const char *slave); /* under dbmu, not mu */
uint64_t     pool_cutoff(const struct pool *p, uint64_t now_ms);

/* pool_lease.c: the retire list (under dbmu) */
void pool_retire_push(struct pool *p, uint64_t h);
void pool_retire_cut(struct pool *p, size_t mark);
/* Releases dbmu, after the retired hashes left the ID set (not under mu). */
void pool_db_unlock(struct pool *p);

/* pool_lease.c: the queue (under dbmu and mu, unless said otherwise) */
uint8_t *pool_lease_bytes(struct pool *p, struct pair *pr, size_t i);
void	 pool_lease_compact(struct pool *p, struct pair *pr);
size_t	 pool_lease_expire(struct pool *p, struct pair *pr, uint64_t cutoff);
/* Under dbmu (mu not needed): a lease of at least want keys into the stage. */
int
pool_lease_load(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want);
int  pool_lease_attach(struct pool *p, struct pair *pr);
void pool_lease_serve(struct pool *p, struct pair *pr, size_t n,
    struct etsi_keys *out);			     /* under mu */
void pool_lease_free(struct pool *p);		     /* at close */
void pool_keyq_free(struct pool *p, struct keyq *q); /* wipes */

/* pool_sql.c: open (setup: err, no log) */
int pool_sql_open(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen);
int pool_sql_meta_check(struct pool *p, const struct pool_cfg *cfg, char *err,
    size_t errlen);
int pool_sql_rollback(struct pool *p, const char *db_path, bool fresh,
    char *err, size_t errlen);
int
pool_sql_load(struct pool *p, const char *db_path, char *err, size_t errlen);
void pool_sql_close(struct pool *p);

/* pool_sql.c: rows (under dbmu; writes in a transaction; -1 logged) */
int  pool_row_buf_alloc(struct pool *p, struct row_buf *rb, size_t nkeys);
void pool_row_buf_free(struct pool *p, struct row_buf *rb);
int  pool_sql_add(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
     size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb);
int  pool_sql_lease_select(struct pool *p, struct pair *pr, uint64_t cutoff,
     size_t want, size_t *nrows, size_t *nkeys);
int  pool_sql_lease_delete(struct pool *p, struct pair *pr, uint64_t cutoff,
     size_t nrows);
int
pool_sql_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n);
int pool_sql_disk_min(struct pool *p, struct pair *pr);

/* pool_sql.c: the lease rows' buffers (p->rows), for every backend */
int    pool_rows_grow(struct pool *p, size_t n); /* room for n; -1 no memory */
/* g holds a copy of src's n bytes (none if src is NULL); -1 no memory. */
int    pool_gbuf_set(struct gbuf *g, const void *src, size_t n);
void   pool_rows_free(struct pool *p);
/* Queues the IDs of an ids column for retirement (none if it does not
 * parse: a superset is safe). */
void   pool_retire_ids(struct pool *p, const char *ids, size_t len);
/* pool_sql.c: the ids column as stored, into out; its length, or 0 (logged). */
size_t pool_ids_encode(const struct etsi_keys *keys, size_t first, size_t n,
    char *out, size_t outlen);
/*
 * pool_sql.c: the ids column. Exactly n key IDs (any number if n is 0),
 * each 1..ETSI_KEY_ID_MAX bytes: fn(arg, i, id) for each, in order, and 0;
 * -1 (fn not called) if the text is not such a JSON array of strings.
 */
int    pool_ids_decode(const char *s, size_t len, size_t n,
       void (*fn)(void *, size_t, const char *), void *arg);

/* pool_seal.c: setup (err, no log); the database is open */
int pool_seal_init(struct pool *p, const uint8_t kek[SEAL_KEK_LEN], char *err,
    size_t errlen);
/* This opening's sealing epoch (its own transaction). */
int
pool_seal_start(struct pool *p, const char *db_path, char *err, size_t errlen);
void pool_seal_free(struct pool *p);

/* pool_seal.c: run time (-1 logged unless said otherwise) */
/* The AAD of a row, as every backend seals it (label, pool ID, pair,
 * sequence, key size, fetched_ms, n, ids). -1 out of memory. */
int
pool_row_aad(const struct pool *p, const struct pool_row *r, struct buf *out);
/* Before a transaction that seals up to nrows rows: room in the epoch. */
int pool_seal_room(struct pool *p, size_t nrows);
/* blob gets r->n * kb + SEAL_OVERHEAD bytes; r->ep the epoch. */
int pool_seal_row(struct pool *p, struct pool_row *r, const uint8_t *pt,
    uint8_t *blob);
/* pt gets r->n * kb bytes; -1 (not logged) if the row does not open. */
int pool_open_row(struct pool *p, const struct pool_row *r, const uint8_t *blob,
    size_t bloblen, uint8_t *pt);
/* The KEK check: recorded in a new database (in its transaction), or
 * compared with this KEK's. */
int pool_seal_check_new(struct pool *p);
bool pool_seal_check_ok(struct pool *p);

#endif

/*
 * kmsd's key pool: keys already fetched from the KME with enc_keys, per
 * (local master SAE, remote slave SAE) pair, so that a local enc_keys is
 * answered without a round trip to the KME.
 *
 * Storage: SQLite (WAL, secure_delete=ON), one row per pool_add batch (at
 * most 1024 keys a row), the batch's key bytes sealed together with
 * AES-256-GCM under a key derived from the key-encryption key in kek_file
 * for this opening of the pool (sealing epochs, common/sealep.h); the
 * AAD binds each row to its key IDs, pair, fetch time, key size, sequence
 * number and pool ID, so a row moved, back-dated or relabelled on disk fails
 * to open. Rows are leased in sequence order and a high-water mark file
 * outside the database (kmsd/hwm.h) makes a restored older copy unable to
 * serve a leased row again. A database of an older layout is refused at
 * open (delete it: see kmsd/README.md).
 *
 * The guarantee: no key is ever returned twice, across threads, restarts,
 * kill -9 at any moment and a power cut. Lease scheme: pool_take serves from
 * memory; keys get there only as a lease, taken by deleting whole rows
 * (batches) from the database in one synchronous=FULL transaction before any
 * of them is unsealed, let alone served. A crash loses what was leased and not yet
 * served (discarded, never re-served); it can never resurrect a served key.
 * A graceful pool_close puts what was leased and not served back on disk.
 * pool_add commits with synchronous=FULL too, so a key the KME delivered is
 * either durably in the pool or lost, never half there.
 *
 * Leases are normally taken in the background (pool_prefetch, from the
 * refill thread), so that a pair holds its current lease plus a standby one
 * and pool_take only copies from memory under a short lock; the SQLite work
 * and its fsync run under a separate lock that pool_take does not need.
 * pool_take still leases synchronously when memory cannot satisfy it. A
 * lease is rounded up to whole rows, so with prefetching a crash discards at
 * most 3 * lease_size keys per pair rounded up to whole batches (the unserved
 * rest of the current lease and the standby: below 3 * lease_size + the
 * largest batch); the argument above is unchanged, as a standby lease is
 * just a lease nobody has served from yet.
 */
#ifndef KMSD_POOL_H
#define KMSD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"

struct pool;

struct pool_cfg {
	const char *db_path;	/* SQLite file; created if absent */
	const char *kek_file;	/* 32-byte KEK, created 0600 if absent */
	unsigned    key_bytes;	/* the size of every pooled key */
	unsigned    lease_size; /* keys per lease (e.g. 256) */
	unsigned    ttl_s;    /* keys older than this are dropped, not served */
	const char *hwm_file; /* high-water marks; NULL: db_path ".hwm" */
	/* Non-NULL: the pool is in PostgreSQL (libpq conninfo), shared with
	 * other kmsd processes; db_path and hwm_file are then unused. */
	const char *pg_conninfo;
	const char *instance; /* this process's name, in the refill lease */
};

/* Since pool_open. */
struct pool_stats {
	uint64_t rolled_back_rows; /* refused at open: see pool_open */
	uint64_t rolled_back_keys;
	uint64_t corrupt_keys;	/* rows that did not authenticate */
	uint64_t returned_keys; /* leases put back by pool_close */
};

/*
 * Opens (or creates) the pool. Rows that an older copy of the database
 * brought back (at or below their pair's high-water mark), or that belong to
 * another pool ID than the mark file's, are wiped, logged and counted
 * (pool_stats), never served.
 */
struct pool *pool_open(const struct pool_cfg *cfg, char *err, size_t errlen);
/*
 * NULL ok. The keys leased into memory and not served are put back on disk
 * first (a graceful stop loses no key); call it when nobody takes keys any
 * more.
 */
void	     pool_close(struct pool *p);
void	     pool_stats(struct pool *p, struct pool_stats *out);

/*
 * Adds keys the KME delivered for (master, slave), stamped fetched_ms
 * (CLOCK_REALTIME ms). Durable before it returns. Keys of another size than
 * key_bytes are refused (-1).
 */
int pool_add(struct pool *p, const char *master, const char *slave,
    const struct etsi_keys *keys, uint64_t fetched_ms);

/*
 * Takes n keys for (master, slave), oldest first, all or nothing: 0 and the
 * keys in out (key IDs as the KME gave them, out->n == n); 0 with out->n
 * == 0 if fewer than n unexpired keys are available (nothing taken); -1 on
 * a storage error.
 */
int pool_take(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out);

/*
 * Background leasing, for the refill thread: if fewer than 2 * lease_size
 * unexpired keys of (master, slave) are in memory, takes a lease from the
 * database that tops memory up to 3 * lease_size, rounded up to whole
 * batches (one FULL transaction,
 * exactly as pool_take's own leases) and appends it to what pool_take
 * serves. pool_take keeps serving from memory meanwhile. 0 (also: nothing to
 * do, no keys, unknown pair), -1 on a storage error. Call it every tick, and
 * when the notify callback fires.
 */
int pool_prefetch(struct pool *p, const char *master, const char *slave);

/*
 * fn(arg) is called (outside the pool's locks, from a pool_take thread) when
 * a pair's memory dropped below lease_size keys and a pool_prefetch would
 * help; once per such drop. fn must be quick and must not call into the pool
 * (kick the refill thread). NULL turns it off.
 */
void pool_set_notify(struct pool *p, void (*fn)(void *), void *arg);

/* Unexpired keys available for the pair (in the database and leased). */
size_t pool_count(struct pool *p, const char *master, const char *slave);

/* Drops keys fetched before now_ms - ttl; returns how many. */
size_t pool_expire(struct pool *p, uint64_t now_ms);

/*
 * True while the pool's database is unreachable (PostgreSQL down): then
 * pool_take serves nothing (-1) until a storage call has reconnected (the
 * refill thread tries every tick). Always false for SQLite.
 */
bool pool_unavailable(struct pool *p);

/*
 * True if this process may refill (master, slave) from the KME now: always
 * for SQLite; with PostgreSQL, if it holds the pair's refill lease (a row
 * in the shared database, taken when free or expired, renewed by each call
 * for 10 s), so that several kmsd on one pool do not all drain the KME.
 */
bool pool_refill_claim(struct pool *p, const char *master, const char *slave);

#endif

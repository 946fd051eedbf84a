/*
 * Inside the key store: the shared front (store.c) and the backends behind
 * one table of operations, in memory (store_mem.c) and SQLite (store_sql.c,
 * store_sqlkey.c). Not for other modules: they use store.h.
 *
 * The front holds the mutex, the per-pair counts of waiting keys, the
 * limits (time to live, cap per pair), the counters and the generations; it
 * calls an operation with the mutex held, so a backend never locks. A
 * backend keeps s->nchunks and s->nakeys exact, calls store_pair_full before
 * an assignment and store_pairs_assign / store_pair_add when keys come and
 * go, and counts what it refuses in s->stats.
 */
#ifndef SIM_STORE_BE_H
#define SIM_STORE_BE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "simulator/store.h"

struct store;

struct store_ops {
	/* store_add_chunks, without last_seq (the front keeps it). */
	int (*add_chunks)(struct store *, uint64_t seq, size_t n,
	    const uint8_t *ids, const uint8_t *keys);
	/*
	 * Drops every chunk (all) or those of batches after seq; peer_gen
	 * (may be NULL) is recorded with the change, atomically.
	 */
	int (*drop)(struct store *, bool all, uint64_t seq,
	    const uint8_t *peer_gen, size_t *dropped);
	/* Takes r->n chunks (there are that many) into r; 0 or -1. */
	int (*reserve)(struct store *, struct store_resv *r);
	int (*putback)(struct store *, struct store_resv *r,
	    const uint8_t *drop);
	/* store_assign, results and times initialised by the front. */
	int (*assign)(struct store *, struct store_assign *v, size_t n);
	enum store_rc (*take)(struct store *, const char *caller,
	    const char *master, const uint8_t *ids, const uint8_t *valid,
	    size_t n, struct etsi_keys *out);
	/* Deletes keys expired at now (the front checked ttl_ms > 0). */
	int (*expire)(struct store *, uint64_t now, size_t *n);
	void (*size_hint)(struct store *, size_t nchunks); /* or NULL */
	void (*close)(struct store *);			   /* frees s->be */
};

/* Keys assigned by a master to a slave and not yet taken by that slave. */
struct store_pair {
	char  *master;
	char  *slave;
	size_t n;
};

struct store {
	pthread_mutex_t		mu;
	const struct store_ops *ops;
	void		       *be; /* the backend's state */
	size_t			kb; /* bytes per chunk */
	uint8_t			gen[16];
	uint8_t			peer_gen[16];
	uint64_t		last_seq;
	size_t			nchunks;
	size_t			nakeys;

	uint64_t	   ttl_ms;   /* 0: keys never expire */
	size_t		   max_pair; /* 0: no cap */
	struct store_pair *pairs;
	size_t		   npairs, cappairs;
	struct store_stats stats;
};

/* The backends' constructors: set s->ops and s->be, or -1 with err. */
int store_mem_open(struct store *s, char *err, size_t errlen);
int store_sql_open(struct store *s, const char *path, const char *kek_file,
    char *err, size_t errlen);

/* True if a key created at t (ms) has expired at now. */
bool store_expired(const struct store *s, uint64_t t, uint64_t now);
/* Adds d (may be negative) to a pair's count; -1 only when out of memory. */
int
store_pair_add(struct store *s, const char *master, const char *slave, long d);
/* Sets every pair's count to 0 (before counting again). */
void store_pairs_zero(struct store *s);
/*
 * The cap: true (a->result 3, full_slave and waiting set, counted) if
 * a->nkeys more keys would put a (master, slave) pair over max_per_pair.
 */
bool store_pair_full(struct store *s, struct store_assign *a);
/* Counts an assignment's keys for its pairs (d 1) or uncounts them (d -1). */
void store_pairs_assign(struct store *s, const struct store_assign *a, long d);

#endif

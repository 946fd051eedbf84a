/*
 * Key store of one simulated KME.
 *
 * Two kinds of records:
 *  - chunks: unassigned key material of key_size bits, as produced by the
 *    emulated QKD link, identical at both KMEs under the same 16-byte ID and
 *    kept in arrival order (the link takes them from either end);
 *  - assigned keys: composed from chunks by an enc_keys request, waiting for
 *    their slave SAEs at this KME (dec_keys).
 *
 * Backends: an in-memory structure (db_path NULL), or SQLite (WAL,
 * secure_delete) with every key byte sealed with AES-256-GCM under a key
 * derived from the key-encryption key for each opening of the database (see
 * common/sealep.h and store_sql.c), the record's authorization columns being
 * the AAD. Every function is thread-safe and every multi-record change is
 * atomic. Inside: store_be.h.
 *
 * Assigned keys that no slave fetches expire after a time to live, and a
 * (master, slave) pair may have at most max_per_pair keys waiting
 * (store_set_limits).
 */
#ifndef SIM_STORE_H
#define SIM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"

struct store;

/*
 * Position of a chunk: its batch sequence number and its index in the batch,
 * identical at both KMEs. The order of the store, and the SQLite key.
 */
#define STORE_ORD(seq, i)  ((uint64_t)(seq) << 24 | (uint64_t)(i))
#define STORE_ORD_SEQ(ord) ((ord) >> 24)
#define STORE_BATCH_MAX	   (1u << 24) /* chunks per batch */

/* Chunks taken out of the store by the master side (store_reserve). */
struct store_resv {
	size_t n;
	size_t kb;     /* bytes per chunk */
	int    newest; /* taken from the newest end */
	uint8_t (*ids)[16];
	uint64_t *ord;	/* STORE_ORD of each chunk */
	uint8_t	 *keys; /* n * kb bytes, sec_alloc */
};

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND, /* a key is unknown, from another master, or already taken */
	STORE_UNAUTH, /* the caller is not a slave of a key */
	STORE_ERR,    /* backend failure */
	/* An assignment's result (store_assign), each a NACK on the link: */
	STORE_MISSING, /* chunks missing here (listed in missing) */
	STORE_DUPID,   /* a key ID is already in use */
	STORE_FULL,    /* a pair would pass max_per_pair */
};

/* One assignment to commit at the slave side (store_assign). */
struct store_assign {
	size_t	       nkeys;
	const uint8_t *ids;	   /* new key IDs, nkeys * 16 */
	unsigned       size_bytes; /* each key */
	unsigned       per;	   /* chunks per key */
	const uint8_t
	    *chunks; /* nkeys * per chunk IDs (16 bytes), key by key */
	const uint64_t	  *ords; /* and their STORE_ORD */
	const char	  *master;
	const char *const *slaves;
	size_t		   nslaves;
	/*
	 * out: STORE_OK committed; STORE_MISSING, STORE_DUPID, or STORE_FULL:
	 * the pair (master, slaves[full_slave]) already has `waiting` keys
	 * and this would pass max_per_pair (nothing changed)
	 */
	enum store_rc	   result;
	size_t		   full_slave;
	size_t		   waiting;
	uint64_t	   t;	/* set by store_assign: creation, ms */
	uint8_t (*missing)[16]; /* capacity nkeys * per, caller's */
	size_t nmissing;
};

/*
 * db_path NULL: in memory. Otherwise the SQLite file, created if absent, with
 * kek_file (32 bytes) created 0600 if absent and refused if group/other can
 * access it. key_bytes is the chunk size; a database made for another chunk
 * size is refused. -1 with a message in err.
 */
struct store *store_open(const char *db_path, const char *kek_file,
    size_t key_bytes, char *err, size_t errlen);
void	      store_close(struct store *s); /* NULL ok */

size_t	 store_count(struct store *s); /* chunks */
/*
 * The most chunks the caller will keep (max_key_count): the in-memory index
 * is sized for them at once, so it never has to grow under load. Optional.
 */
void	 store_size_hint(struct store *s, size_t nchunks);
/* Random per-store generation (a new in-memory store gets a new one). */
void	 store_gen(struct store *s, uint8_t out[static 16]);
/* Highest batch sequence number stored by store_add_chunks. */
uint64_t store_last_seq(struct store *s);

/*
 * Chunks from the transmitter: n IDs and n*key_bytes of key material, atomic,
 * all tagged with batch number seq. Duplicate IDs are skipped.
 */
int store_add_chunks(struct store *s, uint64_t seq, size_t n,
    const uint8_t *ids, const uint8_t *keys); /* ids: n * 16 */
/* Drops the chunks of batches after seq (receiver on reconnect); count out. */
int store_drop_after(struct store *s, uint64_t seq, size_t *dropped);
/*
 * Records the peer's store generation. If it differs from the recorded one,
 * every chunk is dropped (the peer lost or replaced its store). *dropped out.
 */
int
store_peer_gen(struct store *s, const uint8_t gen[static 16], size_t *dropped);

/*
 * Master side: takes n chunks out of the store (oldest first, or newest first)
 * into r. *avail is the chunks the store held: if it is less than n,
 * nothing is taken (0, r->n == 0); otherwise 0 and r->n == n. -1 error.
 */
int  store_reserve(struct store *s, size_t n, int newest, struct store_resv *r,
     size_t *avail);
/* Puts reserved chunks back where they were, except those with drop[i] set. */
int  store_putback(struct store *s, struct store_resv *r, const uint8_t *drop);
void store_resv_free(struct store_resv *r); /* wipes */

/*
 * Slave side: commits assignments, each atomically (all its chunks present,
 * same ID at the same position -> removed and its keys stored; otherwise
 * nothing changes). One backend
 * transaction for the whole array. 0, or -1 on a backend error (then every
 * result is unchanged state and must be treated as not committed).
 */
int store_assign(struct store *s, struct store_assign *v, size_t n);

/*
 * dec_keys: all or nothing over ids[0..n-1]; valid[i] 0 means the ID did not
 * parse (not found). On STORE_OK out->v[i].key / len are set (sec_alloc) and
 * the caller's share of each key is committed as taken before returning.
 */
enum store_rc store_take(struct store *s, const char *caller,
    const char *master, const uint8_t *ids /* n * 16 */, const uint8_t *valid,
    size_t n, struct etsi_keys *out);

/* Number of assigned keys still waiting for a slave (tests, status). */
size_t store_assigned_count(struct store *s);

/*
 * Assigned keys expire ttl_s seconds after their assignment (0: never); a
 * pair may have at most max_per_pair keys waiting for its slave (0: no cap).
 */
void store_set_limits(struct store *s, unsigned ttl_s, size_t max_per_pair);
/*
 * Deletes (and wipes) the assigned keys expired at now_ms (wall clock, ms);
 * *expired out. An expired key is never served even before this runs.
 */
int  store_expire(struct store *s, uint64_t now_ms, size_t *expired);

struct store_stats {
	size_t	 chunks; /* gauges */
	size_t	 assigned;
	uint64_t expired;      /* assigned keys wiped unfetched */
	uint64_t tampered;     /* records refused: they do not authenticate */
	uint64_t refused_full; /* assignments refused: pair at its cap */
};
void store_get_stats(struct store *s, struct store_stats *out);

#endif

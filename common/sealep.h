/*
 * Sealing epochs: records sealed in an SQLite database under keys that a
 * restored or copied database can never make us reuse. Built on seal.h
 * (AES-256-GCM, HKDF) and sqldb.h. Used by the simulator's store and by
 * kmsd's pool.
 *
 * Each opening of the database starts a new epoch: 32 fresh random bytes
 * (its salt) are committed to the owner's epochs table, and the epoch's
 * record key is HKDF-SHA256(KEK, salt, info). A record sealed in this epoch
 * stores the epoch number beside its blob (an `ep` column) and uses the nonce
 * 0^32 || a 64-bit counter (big-endian) held in memory only, from 0. No state
 * that a restore can rewind is trusted: a restored or copied database is
 * opened in a new epoch with a new random salt, so its key was never used
 * before (2^-256 collision odds), and within an epoch the counter is unique
 * by construction. An epoch is retired after SEALEP_SEALS_MAX seals; at
 * start, epochs no record refers to are deleted.
 *
 * Several processes (or contexts) may share one database file. An epoch's
 * number is chosen inside the write transaction that inserts it, so two
 * openers never take the same one. Another opener's start may delete this
 * context's epoch while no record uses it yet: the first seal of each
 * transaction puts it back (same number and salt), or, if the number has
 * been given to another epoch meanwhile, moves to a fresh epoch under a new
 * number, all inside the caller's transaction. A record of an epoch this
 * context does not know (another opener's) or knows under an old salt is
 * opened after reloading that epoch from the table, if the database's KEK
 * check value is this KEK's. The context owns the connection's commit and
 * rollback hooks (it tracks transactions with them).
 *
 * The AAD is built in the context before each seal or open (sealep_aad_*):
 * a label, then every column that decides who gets the record and when, so
 * that an edited or moved record does not open.
 *
 * The KEK check (sealep_kek_set / sealep_kek_ok) keeps meta rows "db_salt"
 * (32 random bytes) and "kek_check" (HKDF(KEK, db_salt, check_info)): a wrong
 * KEK is told apart from tampered records, and nothing is sealed for it.
 *
 * Not thread-safe: the owner serialises calls (it holds its database lock).
 * Errors: sealep_new and sealep_start (setup) write err and do not log; the
 * run-time calls log once, prefixed with the owner's name, and return -1.
 */
#ifndef COMMON_SEALEP_H
#define COMMON_SEALEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/seal.h"
#include "common/sqldb.h"

#define SEALEP_SEALS_MAX (1ull << 32) /* seals per epoch key */
#define SEALEP_SALT_LEN	 32

struct sealep_conf {
	const char *table;	/* epochs(ep INTEGER PRIMARY KEY, salt BLOB) */
	const char *info;	/* HKDF label of the record keys */
	const char *check_info; /* HKDF label of the KEK check value */
	const char *const *users; /* tables whose column ep names an epoch */
	size_t		   nusers;
	size_t		   aad_max; /* longest AAD, bytes */
};

struct sealep;

/*
 * A context over d (open, meta statements prepared; d->who names the owner
 * in logs), with a copy of kek (wiped by sealep_free). Creates the epochs
 * table if absent. c and the strings it points to must outlive the context.
 * NULL with the reason in err.
 */
struct sealep *sealep_new(struct sqldb *d, const struct sealep_conf *c,
    const uint8_t kek[static SEAL_KEK_LEN], char *err, size_t errlen);
void	       sealep_free(struct sealep *e); /* NULL ok; wipes */

/* Records a new KEK check value (in the caller's transaction). 0 or -1. */
int  sealep_kek_set(struct sealep *e);
/* True if the database's KEK check value is this KEK's. */
bool sealep_kek_ok(struct sealep *e);

/*
 * Deletes the epochs no record uses, loads the others' keys and starts a new
 * epoch (its own transaction). -1 with the reason in err.
 */
int	sealep_start(struct sealep *e, char *err, size_t errlen);
/* True if this epoch has room for n more seals. */
bool	sealep_room(const struct sealep *e, uint64_t n);
/*
 * Starts a new epoch: its salt is committed (own transaction, at the
 * owner's synchronous level; no transaction may be open) before any seal
 * uses it. 0, or -1 logged.
 */
int	sealep_next(struct sealep *e);
/* The current epoch's number, to store beside what sealep_seal wrote: read
 * it after the seal (the first seal of a transaction may renumber it). */
int64_t sealep_epoch(const struct sealep *e);

/*
 * The AAD builder: begin resets it to the label's bytes (no length), then
 * each call appends a field (integers big-endian; str: u16 length, bytes).
 * A field that does not fit makes the next seal or open fail.
 */
void sealep_aad_begin(struct sealep *e, const char *label);
void sealep_aad_u16(struct sealep *e, uint16_t v);
void sealep_aad_u32(struct sealep *e, uint32_t v);
void sealep_aad_u64(struct sealep *e, uint64_t v);
void sealep_aad_bytes(struct sealep *e, const void *p, size_t n);
void sealep_aad_str(struct sealep *e, const char *s);

/*
 * Seals pt (n bytes) under the current epoch with the built AAD: out gets
 * n + SEAL_OVERHEAD bytes. Call it inside the write transaction that stores
 * out. 0, or -1 logged (epoch used up, AAD too long, the epoch cannot be
 * claimed).
 */
int sealep_seal(struct sealep *e, const uint8_t *pt, size_t n, uint8_t *out);
/*
 * Opens a blob sealed in epoch ep with the built AAD: pt gets
 * bloblen - SEAL_OVERHEAD bytes. An epoch not known here, or one whose salt
 * changed on disk, is (re)loaded from the table first. 0, or -1 if the
 * epoch is unknown, the blob is short, or it does not authenticate (not
 * logged: the owner says which record it was).
 */
int sealep_open(struct sealep *e, int64_t ep, const uint8_t *blob,
    size_t bloblen, uint8_t *pt);

#endif

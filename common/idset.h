/*
 * A multiset of strings held as keyed 64-bit hashes in one flat
 * open-addressing table (linear probing, load factor at most 1/2,
 * backward-shift deletion): no allocation per member, 8 bytes each.
 *
 * Membership is by hash: two distinct strings with one hash (about n / 2^64
 * per query) look equal. That suits a guard that must never miss a member
 * (kmsd's pool refuses a key ID it may already hold) and may, very rarely,
 * refuse a newcomer. The hash key is random per set (RAND_bytes), so nobody
 * outside can choose strings that collide or cluster.
 *
 * Not thread-safe: the owner serialises.
 */
#ifndef COMMON_IDSET_H
#define COMMON_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idset {
	uint64_t *t;   /* 0 = empty slot */
	size_t	  cap; /* a power of 2, at least 2 * n */
	size_t	  n;   /* members, counting repeats */
	uint64_t  seed[2];
};

/* An empty set with a fresh random hash key; -1 out of memory or entropy. */
int  idset_init(struct idset *s);
void idset_free(struct idset *s); /* zeroed ok */

/* The keyed hash of a NUL-terminated string; never 0. Equal strings hash
 * equal within one set. */
uint64_t idset_hash(const struct idset *s, const char *str);

bool idset_has(const struct idset *s, uint64_t h);
/* Adds one instance of h; -1 out of memory (the set is unchanged). */
int  idset_add(struct idset *s, uint64_t h);
/* Removes one instance of h, if any. */
void idset_del(struct idset *s, uint64_t h);

#endif

/*
 * A hash table of records keyed by a 16-byte ID (the in-memory key store's
 * chunks and assigned keys). The records are the caller's: each starts with
 * a struct htab_node, and the table only points at them.
 *
 * Open addressing with linear probing: a slot holds the ID's hash and the
 * record. A lookup touches one slot line, and the record only when the
 * whole hash matches; a growth rehashes from the stored hashes without
 * touching the records. Deletion shifts the run back (no tombstones). The
 * hash is keyed with a random seed (IDs come from the network).
 */
#ifndef SIM_HTAB_H
#define SIM_HTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct htab_node {
	uint8_t id[16];
};

struct htab_slot {
	uint64_t	  h;
	struct htab_node *p; /* NULL: empty */
};

struct htab {
	struct htab_slot *s;
	size_t		  cap; /* power of 2 */
	size_t		  n;
	uint64_t	  seed;
};

/* An empty table with a random seed; 0 or -1 (no memory, no entropy). */
int  htab_init(struct htab *t);
void htab_free(struct htab *t); /* the slots, not the records */
/* Room for n entries at a load of at most 3/4 (best effort, capped). */
void htab_presize(struct htab *t, size_t n);
/* -1 only if the table is full and cannot grow. */
int  htab_add(struct htab *t, struct htab_node *n);
/* Removes the record n (the very pointer); absent is fine. */
void htab_del(struct htab *t, struct htab_node *n);

/* Inline: the in-memory store looks IDs up several times per key. */
static inline uint64_t
htab_hash(const struct htab *t, const uint8_t id[16])
{
	uint64_t a, b;

	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	a ^= t->seed;
	a *= 0x9e3779b97f4a7c15ULL;
	a ^= b + (a >> 29);
	a *= 0xbf58476d1ce4e5b9ULL;
	a ^= a >> 32;
	return a;
}

/* The record with this ID, or NULL. */
static inline struct htab_node *
htab_find(const struct htab *t, const uint8_t id[16])
{
	uint64_t h = htab_hash(t, id);
	size_t	 i, m = t->cap - 1;

	for (i = h & m; t->s[i].p != NULL; i = (i + 1) & m)
		if (t->s[i].h == h && memcmp(t->s[i].p->id, id, 16) == 0)
			return t->s[i].p;
	return NULL;
}

#endif

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

struct htab_node {
	uint8_t		 id[16];
};

struct htab_slot {
	uint64_t	  h;
	struct htab_node *p;		/* NULL: empty */
};

struct htab {
	struct htab_slot *s;
	size_t		  cap;		/* power of 2 */
	size_t		  n;
	uint64_t	  seed;
};

/* An empty table with a random seed; 0 or -1 (no memory, no entropy). */
int		  htab_init(struct htab *t);
void		  htab_free(struct htab *t);	/* the slots, not the records */
/* Room for n entries at a load of at most 3/4 (best effort, capped). */
void		  htab_presize(struct htab *t, size_t n);
struct htab_node *htab_find(const struct htab *t, const uint8_t id[16]);
/* -1 only if the table is full and cannot grow. */
int		  htab_add(struct htab *t, struct htab_node *n);
/* Removes the record n (the very pointer); absent is fine. */
void		  htab_del(struct htab *t, struct htab_node *n);

#endif

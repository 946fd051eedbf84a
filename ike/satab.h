/*
 * The IKE SA table's indexes and timers (ike/endpoint.c keeps the table):
 *
 *  - a hash of the SAs by SPIi (chained through each SA, buckets a power
 *    of two fixed at init, the hash keyed with a random seed so that a
 *    peer choosing SPIs cannot make one chain long): find, insert and
 *    delete in O(1). SPIi alone is the key because an initiator's SA in
 *    IKE_SA_INIT has no SPIr yet and a responder's duplicate check knows
 *    only SPIi; the caller compares SPIr (and the peer) along the chain;
 *  - a binary min-heap of the SAs by their next deadline (sa->tab.due,
 *    one entry per SA at most): arming, disarming and popping the due SA
 *    cost O(log n), and nothing looks at an SA whose time has not come.
 *
 * Neither allocates per SA: the links live in struct ike_sa (sa->tab).
 */
#ifndef IKE_SATAB_H
#define IKE_SATAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IKE_SATAB_SPI_LEN 8

struct ike_sa;

/* What the table keeps in each SA. */
struct ike_satab_link {
	struct ike_sa *h_next; /* hash chain */
	struct ike_sa *t_next; /* the endpoint's touched list */
	size_t	       idx;    /* slot in the endpoint's dense array */
	size_t	       bucket; /* its hash chain's (SPIi at insert) */
	size_t	       hp;     /* heap slot + 1; 0: no deadline */
	uint64_t       due;    /* the deadline (monotonic ns) while hp */
	bool	       touched, armed, ho;
};

struct ike_satab {
	struct ike_sa **bucket;
	size_t		mask;
	uint64_t	seed;
	struct ike_sa **heap;
	size_t		nheap, cap;
};

/* Room for max SAs; 0 or -1 (no memory). */
int  ike_satab_init(struct ike_satab *t, size_t max);
void ike_satab_free(struct ike_satab *t); /* the SAs are the caller's */

/* Hash by SPIi: an SA is found by the SPIi it had at insert. */
void	       ike_satab_insert(struct ike_satab *t, struct ike_sa *sa);
void	       ike_satab_remove(struct ike_satab *t, struct ike_sa *sa);
/* The first SA of the chain SPIi hashes to (walk sa->tab.h_next; the
 * chain also holds SAs of other SPIi). */
struct ike_sa *ike_satab_chain(const struct ike_satab *t,
    const uint8_t spi_i[static IKE_SATAB_SPI_LEN]);

/* Timers. arm: the deadline of sa is `at` (UINT64_MAX: none). */
void	 ike_satab_arm(struct ike_satab *t, struct ike_sa *sa, uint64_t at);
/* The earliest deadline, UINT64_MAX when none. */
uint64_t ike_satab_next(const struct ike_satab *t);
/* Takes the SA with the earliest deadline off the heap if it is <= now,
 * else NULL. */
struct ike_sa *ike_satab_due(struct ike_satab *t, uint64_t now);

#endif

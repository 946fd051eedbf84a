/* The IKE SA table's hash by SPIi and its heap of deadlines (satab.h). */
#include <stdlib.h>
#include <string.h>

#include "ike/crypto.h"
#include "ike/sa.h"
#include "ike/satab.h"

int
ike_satab_init(struct ike_satab *t, size_t max)
{
	size_t nb = 16;

	memset(t, 0, sizeof(*t));
	while (nb < max)
		nb <<= 1;
	if (ike_random((uint8_t *)&t->seed, sizeof(t->seed)) == -1)
		return -1;
	t->bucket = calloc(nb, sizeof(*t->bucket));
	t->heap = calloc(max > 0 ? max : 1, sizeof(*t->heap));
	if (t->bucket == NULL || t->heap == NULL) {
		ike_satab_free(t);
		return -1;
	}
	t->mask = nb - 1;
	t->cap = max;
	return 0;
}

void
ike_satab_free(struct ike_satab *t)
{
	free(t->bucket);
	free(t->heap);
	memset(t, 0, sizeof(*t));
}

/* A 64-bit mix (the murmur3 finalizer) of SPIi with the table's seed. */
static size_t
slot_of(const struct ike_satab *t, const uint8_t spi[static 8])
{
	uint64_t k;

	memcpy(&k, spi, sizeof(k));
	k ^= t->seed;
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return (size_t)k & t->mask;
}

void
ike_satab_insert(struct ike_satab *t, struct ike_sa *sa)
{
	size_t i = slot_of(t, sa->spi_i);

	sa->tab.bucket = i;
	sa->tab.h_next = t->bucket[i];
	t->bucket[i] = sa;
}

void
ike_satab_remove(struct ike_satab *t, struct ike_sa *sa)
{
	struct ike_sa **pp = &t->bucket[sa->tab.bucket];

	ike_satab_arm(t, sa, UINT64_MAX);
	for (; *pp != NULL; pp = &(*pp)->tab.h_next)
		if (*pp == sa) {
			*pp = sa->tab.h_next;
			sa->tab.h_next = NULL;
			return;
		}
}

struct ike_sa *
ike_satab_chain(const struct ike_satab *t,
    const uint8_t			spi_i[static IKE_SATAB_SPI_LEN])
{
	return t->bucket[slot_of(t, spi_i)];
}

/* ---- the heap (slots 0..nheap-1; sa->tab.hp is its slot + 1) ---- */

static void
heap_set(struct ike_satab *t, size_t i, struct ike_sa *sa)
{
	t->heap[i] = sa;
	sa->tab.hp = i + 1;
}

static void
heap_up(struct ike_satab *t, size_t i)
{
	struct ike_sa *sa = t->heap[i];

	while (i > 0 && t->heap[(i - 1) / 2]->tab.due > sa->tab.due) {
		heap_set(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(t, i, sa);
}

static void
heap_down(struct ike_satab *t, size_t i)
{
	struct ike_sa *sa = t->heap[i];
	size_t	       c;

	while ((c = 2 * i + 1) < t->nheap) {
		if (c + 1 < t->nheap &&
		    t->heap[c + 1]->tab.due < t->heap[c]->tab.due)
			c++;
		if (t->heap[c]->tab.due >= sa->tab.due)
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, sa);
}

static void
heap_take(struct ike_satab *t, struct ike_sa *sa)
{
	size_t	       i = sa->tab.hp - 1;
	struct ike_sa *last = t->heap[--t->nheap];

	sa->tab.hp = 0;
	if (last == sa)
		return;
	heap_set(t, i, last);
	heap_up(t, i);
	heap_down(t, last->tab.hp - 1);
}

void
ike_satab_arm(struct ike_satab *t, struct ike_sa *sa, uint64_t at)
{
	if (sa->tab.hp != 0)
		heap_take(t, sa);
	if (at == UINT64_MAX || t->nheap >= t->cap)
		return;
	sa->tab.due = at;
	heap_set(t, t->nheap++, sa);
	heap_up(t, t->nheap - 1);
}

uint64_t
ike_satab_next(const struct ike_satab *t)
{
	return t->nheap > 0 ? t->heap[0]->tab.due : UINT64_MAX;
}

struct ike_sa *
ike_satab_due(struct ike_satab *t, uint64_t now)
{
	struct ike_sa *sa;

	if (t->nheap == 0 || t->heap[0]->tab.due > now)
		return NULL;
	sa = t->heap[0];
	heap_take(t, sa);
	return sa;
}

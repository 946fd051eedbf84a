/* A multiset of keyed 64-bit string hashes (idset.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/idset.h"

#define IDSET_CAP0 1024

/* splitmix64's finaliser. */
static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t
idset_hash(const struct idset *s, const char *str)
{
	uint64_t h = s->seed[0], w;
	size_t	 len = strlen(str), i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, str + i, 8);
		h = mix64(h ^ w) + s->seed[1];
	}
	w = 0;
	memcpy(&w, str + i, len - i);
	h = mix64(h ^ w ^ ((uint64_t)len << 56)) ^ s->seed[1];
	return h != 0 ? h : 1;
}

bool
idset_has(const struct idset *s, uint64_t h)
{
	size_t mask = s->cap - 1, i;

	for (i = h & mask; s->t[i] != 0; i = (i + 1) & mask)
		if (s->t[i] == h)
			return true;
	return false;
}

static void
put(struct idset *s, uint64_t h)
{
	size_t mask = s->cap - 1, i;

	for (i = h & mask; s->t[i] != 0; i = (i + 1) & mask)
		;
	s->t[i] = h;
	s->n++;
}

/* Room for one more at a load factor of at most 1/2; -1 out of memory. */
static int
room(struct idset *s)
{
	uint64_t *old = s->t;
	size_t	  oldcap = s->cap, i;

	if (2 * (s->n + 1) <= s->cap)
		return 0;
	if ((s->t = calloc(oldcap * 2, sizeof(*s->t))) == NULL) {
		s->t = old;
		return -1;
	}
	s->cap = oldcap * 2;
	s->n = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i] != 0)
			put(s, old[i]);
	free(old);
	return 0;
}

int
idset_add(struct idset *s, uint64_t h)
{
	if (room(s) == -1)
		return -1;
	put(s, h);
	return 0;
}

void
idset_del(struct idset *s, uint64_t h)
{
	size_t mask = s->cap - 1, i, j, home;

	for (i = h & mask; s->t[i] != h; i = (i + 1) & mask)
		if (s->t[i] == 0)
			return;
	for (j = (i + 1) & mask; s->t[j] != 0; j = (j + 1) & mask) {
		home = s->t[j] & mask;
		/* Move t[j] into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->t[i] = s->t[j];
			i = j;
		}
	}
	s->t[i] = 0;
	s->n--;
}

int
idset_init(struct idset *s)
{
	memset(s, 0, sizeof(*s));
	if (RAND_bytes((uint8_t *)s->seed, sizeof(s->seed)) != 1 ||
	    (s->t = calloc(IDSET_CAP0, sizeof(*s->t))) == NULL)
		return -1;
	s->cap = IDSET_CAP0;
	return 0;
}

void
idset_free(struct idset *s)
{
	free(s->t);
	memset(s, 0, sizeof(*s));
}

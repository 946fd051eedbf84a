/* The data plane's lookup tables: u64 -> pointer, open addressing. */
#include <stdlib.h>

#include "ike/dp_int.h"

static size_t
slot_of(const struct dp_map *m, uint64_t key)
{
	/* A 64-bit mix (the murmur3 finalizer): SPIs are random, inner
	 * addresses are not. */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & m->mask;
}

int
dp_map_init(struct dp_map *m, size_t max_entries)
{
	size_t cap = 16;

	while (cap < 2 * max_entries)
		cap <<= 1;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = calloc(cap, sizeof(*m->vals));
	m->mask = cap - 1;
	if (m->keys == NULL || m->vals == NULL) {
		dp_map_free(m);
		return -1;
	}
	return 0;
}

void
dp_map_free(struct dp_map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
}

void *
dp_map_get(const struct dp_map *m, uint64_t key)
{
	for (size_t i = slot_of(m, key);; i = (i + 1) & m->mask) {
		if (m->vals[i] == NULL)
			return NULL;
		if (m->keys[i] == key)
			return m->vals[i];
	}
}

void *
dp_map_put(struct dp_map *m, uint64_t key, void *val)
{
	void *old;

	for (size_t i = slot_of(m, key);; i = (i + 1) & m->mask) {
		if (m->vals[i] == NULL) {
			m->keys[i] = key;
			m->vals[i] = val;
			return NULL;
		}
		if (m->keys[i] == key) {
			old = m->vals[i];
			m->vals[i] = val;
			return old;
		}
	}
}

void *
dp_map_del(struct dp_map *m, uint64_t key)
{
	size_t i = slot_of(m, key), j, home;
	void  *old;

	while (m->vals[i] != NULL && m->keys[i] != key)
		i = (i + 1) & m->mask;
	if ((old = m->vals[i]) == NULL)
		return NULL;
	/* Backward shift: move up each later entry of the run that may sit
	 * in the hole (its home slot is not cyclically in (i, j]). */
	for (j = (i + 1) & m->mask; m->vals[j] != NULL; j = (j + 1) & m->mask) {
		home = slot_of(m, m->keys[j]);
		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->vals[i] = NULL;
	return old;
}

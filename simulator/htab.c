/* Hash table of records keyed by a 16-byte ID (htab.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "simulator/htab.h"

#define H_MIN	   1024
#define H_HINT_MAX (8u << 20) /* entries a size hint may reserve */

int
htab_init(struct htab *t)
{
	memset(t, 0, sizeof(*t));
	if (RAND_bytes((uint8_t *)&t->seed, sizeof(t->seed)) != 1)
		return -1;
	t->cap = H_MIN;
	t->s = calloc(t->cap, sizeof(*t->s));
	return t->s ? 0 : -1;
}

void
htab_free(struct htab *t)
{
	free(t->s);
	memset(t, 0, sizeof(*t));
}

/* Re-slots every entry into a table of ncap slots; -1 leaves t as it was. */
static int
h_resize(struct htab *t, size_t ncap)
{
	struct htab_slot *ns;
	size_t		  i, j, m = ncap - 1;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < t->cap; i++) {
		if (t->s[i].p == NULL)
			continue;
		for (j = t->s[i].h & m; ns[j].p != NULL; j = (j + 1) & m)
			;
		ns[j] = t->s[i];
	}
	free(t->s);
	t->s = ns;
	t->cap = ncap;
	return 0;
}

void
htab_presize(struct htab *t, size_t n)
{
	size_t cap = t->cap;

	if (n > H_HINT_MAX)
		n = H_HINT_MAX;
	while (n * 4 > cap * 3)
		cap *= 2;
	if (cap > t->cap)
		(void)h_resize(t, cap);
}

int
htab_add(struct htab *t, struct htab_node *n)
{
	uint64_t h = htab_hash(t, n->id);
	size_t	 i, m;

	if ((t->n + 1) * 4 > t->cap * 3 && h_resize(t, t->cap * 2) == -1 &&
	    t->n + 1 >= t->cap)
		return -1; /* else: a fuller table, still correct */
	m = t->cap - 1;
	for (i = h & m; t->s[i].p != NULL; i = (i + 1) & m)
		;
	t->s[i].h = h;
	t->s[i].p = n;
	t->n++;
	return 0;
}

void
htab_del(struct htab *t, struct htab_node *n)
{
	uint64_t h = htab_hash(t, n->id);
	size_t	 i, j, k, m = t->cap - 1;

	for (i = h & m; t->s[i].p != n; i = (i + 1) & m)
		if (t->s[i].p == NULL)
			return;
	/* Shift back the entries of the run that may not stay behind a hole. */
	for (j = i;;) {
		j = (j + 1) & m;
		if (t->s[j].p == NULL)
			break;
		k = t->s[j].h & m; /* home slot of entry j */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue; /* home within (i, j]: stays */
		t->s[i] = t->s[j];
		i = j;
	}
	t->s[i].p = NULL;
	t->s[i].h = 0;
	t->n--;
}

/*
 * ike/satab (the IKE SA table's hash by SPIi and heap of deadlines) and
 * the endpoint table built on it (ike_ep_add / find / detach / sweep,
 * the half-open count, ike_ep_timers): 20,000 SAs found by their SPIs,
 * SAs of the same SPIi apart, deletes in any order; deadlines popped in
 * order against a sorted reference, re-armed and disarmed at random; the
 * timers tick only due and touched SAs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "ike/endpoint.h"
#include "ike/ikecfg.h"
#include "ike/sa.h"
#include "ike/satab.h"

#define NSA 20000

static struct ike_sa *
mk(uint64_t spi_i, uint64_t spi_r)
{
	struct ike_sa *sa = calloc(1, sizeof(*sa));

	assert_non_null(sa);
	memcpy(sa->spi_i, &spi_i, 8);
	memcpy(sa->spi_r, &spi_r, 8);
	return sa;
}

static struct ike_sa *
find(const struct ike_satab *t, uint64_t spi_i, uint64_t spi_r)
{
	struct ike_sa *sa = ike_satab_chain(t, (const uint8_t *)&spi_i);

	for (; sa != NULL; sa = sa->tab.h_next)
		if (memcmp(sa->spi_i, &spi_i, 8) == 0 &&
		    memcmp(sa->spi_r, &spi_r, 8) == 0)
			return sa;
	return NULL;
}

static void
test_hash(void **state)
{
	struct ike_satab t;
	struct ike_sa  **v = calloc(NSA, sizeof(*v));
	size_t		 maxchain = 0;

	(void)state;
	assert_int_equal(ike_satab_init(&t, NSA), 0);
	for (size_t i = 0; i < NSA; i++) {
		/* sequential SPIs (a worst case for a plain hash), and
		 * every tenth SPIi shared by two SAs */
		v[i] = mk(i - (i % 10 == 1), i + 7);
		ike_satab_insert(&t, v[i]);
	}
	for (size_t i = 0; i < NSA; i++) {
		uint64_t si, sr;

		memcpy(&si, v[i]->spi_i, 8);
		memcpy(&sr, v[i]->spi_r, 8);
		assert_ptr_equal(find(&t, si, sr), v[i]);
	}
	assert_null(find(&t, 123456789, 1));
	for (size_t b = 0; b <= t.mask; b++) {
		size_t n = 0;

		for (struct ike_sa *s = t.bucket[b]; s != NULL;
		     s = s->tab.h_next)
			n++;
		if (n > maxchain)
			maxchain = n;
	}
	assert_true(maxchain < 16); /* spread, not a list */
	/* delete the odd ones, in reverse: the even ones stay found */
	for (size_t i = NSA; i-- > 0;)
		if (i % 2 == 1)
			ike_satab_remove(&t, v[i]);
	for (size_t i = 0; i < NSA; i++) {
		uint64_t si, sr;

		memcpy(&si, v[i]->spi_i, 8);
		memcpy(&sr, v[i]->spi_r, 8);
		if (i % 2 == 1)
			assert_null(find(&t, si, sr));
		else
			assert_ptr_equal(find(&t, si, sr), v[i]);
	}
	for (size_t i = 0; i < NSA; i++)
		free(v[i]);
	free(v);
	ike_satab_free(&t);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_heap(void **state)
{
	struct ike_satab t;
	struct ike_sa  **v = calloc(NSA, sizeof(*v));
	uint64_t	*ref = calloc(NSA, sizeof(*ref)), now = 0;
	size_t		 nref = 0, k = 0;
	struct ike_sa	*sa;

	(void)state;
	srand(7);
	assert_int_equal(ike_satab_init(&t, NSA), 0);
	assert_int_equal(ike_satab_next(&t), UINT64_MAX);
	for (size_t i = 0; i < NSA; i++) {
		v[i] = mk(i, i);
		ike_satab_arm(&t, v[i], 1000 + (uint64_t)(rand() % 100000));
	}
	/* re-arm a third, disarm a tenth: only the last deadline counts */
	for (size_t i = 0; i < NSA; i += 3)
		ike_satab_arm(&t, v[i], 1000 + (uint64_t)(rand() % 100000));
	for (size_t i = 0; i < NSA; i += 10)
		ike_satab_arm(&t, v[i], UINT64_MAX);
	for (size_t i = 0; i < NSA; i++)
		if (v[i]->tab.hp != 0)
			ref[nref++] = v[i]->tab.due;
	assert_int_equal(t.nheap, nref);
	qsort(ref, nref, sizeof(*ref), cmp_u64);
	assert_null(ike_satab_due(&t, 999)); /* nothing due yet */
	assert_int_equal(ike_satab_next(&t), ref[0]);
	/* popped in deadline order, none before its time */
	for (now = 0; now <= 101000; now += 500)
		while ((sa = ike_satab_due(&t, now)) != NULL) {
			assert_true(sa->tab.due <= now);
			assert_int_equal(sa->tab.due, ref[k]);
			assert_int_equal(sa->tab.hp, 0);
			k++;
		}
	assert_int_equal(k, nref);
	assert_int_equal(t.nheap, 0);
	for (size_t i = 0; i < NSA; i++)
		free(v[i]);
	free(v);
	free(ref);
	ike_satab_free(&t);
}

/* ---- the endpoint's table and timers ---- */

static unsigned ticks;

static int
tick(void *ctx, struct ike_sa *sa, uint64_t now)
{
	(void)ctx;
	(void)now;
	ticks++;
	if (sa->st.conn == 1) /* the "dying" one */
		sa->state = SA_DEAD;
	return sa->st.conn == 2 ? 1 : INT_MAX; /* 2: due again in 1 ms */
}

static void
test_endpoint(void **state)
{
	static struct ikecfg c;
	struct ike_ep	    *ep = calloc(1, sizeof(*ep));
	struct ike_sa	    *v[100], *extra;
	uint8_t		     zero[8] = { 0 };
	uint64_t	     s;

	(void)state;
	c.role = IKE_ROLE_N3IWF;
	ep->cfg = &c;
	assert_int_equal(ike_ep_table_init(ep, 100), 0);
	for (size_t i = 0; i < 100; i++) {
		v[i] = ike_sa_new(&c, 0);
		assert_non_null(v[i]);
		s = 1000 + i;
		memcpy(v[i]->spi_i, &s, 8);
		s = 5000 + i;
		memcpy(v[i]->spi_r, &s, 8);
		v[i]->state = i < 30 ? SA_INIT : SA_ESTABLISHED;
		assert_int_equal(ike_ep_add(ep, v[i]), 0);
	}
	assert_true(ike_ep_full(ep));
	extra = ike_sa_new(&c, 0);
	assert_int_equal(ike_ep_add(ep, extra), -1); /* over max: refused */
	ike_sa_free(extra);
	assert_int_equal(ike_ep_half_open(ep), 30);
	s = 1042;
	assert_null(ike_ep_find(ep, (uint8_t *)&s, zero)); /* SPIr wrong */
	{
		uint64_t r = 5042;

		assert_ptr_equal(ike_ep_find(ep, (uint8_t *)&s, (uint8_t *)&r),
		    v[42]);
	}
	/* first pass: all touched (added), all tick once */
	ticks = 0;
	assert_int_equal(ike_ep_timers(ep, tick, NULL, 1000), 1000);
	assert_int_equal(ticks, 100);
	/* nothing touched, nothing due: no tick at all */
	ticks = 0;
	assert_int_equal(ike_ep_timers(ep, tick, NULL, 1000), 1000);
	assert_int_equal(ticks, 0);
	/* one dies in its tick (touched by us), one wants 1 ms */
	v[7]->st.conn = 1;
	v[8]->st.conn = 2;
	v[5]->state = SA_AUTH;
	v[5]->auth_started = 1;
	ike_ep_touch(ep, v[7]);
	ike_ep_touch(ep, v[8]);
	ike_ep_touch(ep, v[5]);
	ticks = 0;
	assert_int_equal(ike_ep_timers(ep, tick, NULL, 1000), 1);
	assert_int_equal(ticks, 3);
	assert_int_equal(ep->nsa, 99);		    /* v[7] freed */
	assert_int_equal(ike_ep_half_open(ep), 28); /* 7 and 5 left it */
	ticks = 0;
	while (ticks == 0)
		(void)ike_ep_timers(ep, tick, NULL, 1000);
	assert_int_equal(ticks, 1); /* v[8] alone, again */
	/* the rest of the table is still found after the moves */
	for (size_t i = 0; i < 100; i++) {
		uint64_t si = 1000 + i, sr = 5000 + i;

		if (i != 7)
			assert_ptr_equal(ike_ep_find(ep, (uint8_t *)&si,
					     (uint8_t *)&sr),
			    v[i]);
	}
	/* detach (to hand over) and the full sweep */
	ike_ep_detach(ep, v[9]);
	assert_int_equal(ep->nsa, 98);
	ike_sa_free(v[9]);
	v[10]->state = SA_DEAD;
	v[0]->state = SA_DEAD;
	ike_ep_sweep(ep);
	assert_int_equal(ep->nsa, 96);
	assert_int_equal(ike_ep_half_open(ep), 25); /* 0, 9, 10 */
	ike_ep_close(ep);
	free(ep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

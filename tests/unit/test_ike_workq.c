/*
 * ike/workq (the N3IWF's worker pool) and ike/cpuq (its DH jobs): every
 * job of two lanes comes back once, through the one eventfd, done by a
 * thread of its own lane with that thread's context; a lane is full at
 * its cap and not after its jobs are taken; close frees jobs never run
 * or never taken; the idle hook runs until it says there is no more;
 * a DH job gives the same IKE SA keys as the initiator derives on its
 * own, from the stock or not, and a bad peer value fails it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ike/cpuq.h"
#include "ike/ikev2.h"
#include "ike/workq.h"

struct tjob {
	struct ike_wq_job wq;
	int		  in, out;
	void		 *ran_ctx;
};

static atomic_int freed, idle_calls;

static void
tjob_free(struct ike_wq_job *j)
{
	atomic_fetch_add(&freed, 1);
	free(j);
}

static void
trun(void *ctx, struct ike_wq_job *wj)
{
	struct tjob *j = (struct tjob *)wj;

	j->out = 2 * j->in + (int)j->wq.lane;
	j->ran_ctx = ctx;
	usleep(100);
}

static bool
tidle(void *ctx)
{
	(void)ctx;
	return atomic_fetch_add(&idle_calls, 1) + 1 < 5;
}

static struct tjob *
tjob_new(unsigned lane, int in)
{
	struct tjob *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->wq.lane = lane;
	j->wq.free = tjob_free;
	j->in = in;
	return j;
}

static int wctx[2]; /* the kmsd lane's two workers' contexts */

static struct ike_wq *
pool(unsigned cap, bool idle)
{
	char		       err[128];
	struct ike_wq	      *q = ike_wq_new(err, sizeof(err));
	struct ike_wq_lane_cfg a, b;
	void		      *w[2] = { &wctx[0], &wctx[1] };

	assert_non_null(q);
	memset(&a, 0, sizeof(a));
	a.name = "t-kmsd";
	a.workers = 2;
	a.cap = cap;
	a.wctx = w;
	a.run = trun;
	b = a;
	b.name = "t-cpu";
	b.wctx = NULL;
	b.ctx = q; /* any non-NULL marker */
	b.idle = idle ? tidle : NULL;
	assert_int_equal(ike_wq_lane(q, IKE_WQ_KMSD, &a, err, sizeof(err)), 0);
	assert_int_equal(ike_wq_lane(q, IKE_WQ_CPU, &b, err, sizeof(err)), 0);
	assert_true(ike_wq_has(q, IKE_WQ_KMSD) && ike_wq_has(q, IKE_WQ_CPU));
	return q;
}

/* Drains until n jobs came back; checks each. */
static void
drain(struct ike_wq *q, int n, struct ike_wq *marker)
{
	uint8_t		seen[400] = { 0 };
	struct pollfd	pfd = { ike_wq_fd(q), POLLIN, 0 };
	struct tjob    *j;
	int		got = 0;

	while (got < n) {
		assert_true(poll(&pfd, 1, 5000) == 1);
		while ((j = (struct tjob *)ike_wq_done(q)) != NULL) {
			assert_int_equal(j->out, 2 * j->in + (int)j->wq.lane);
			if (j->wq.lane == IKE_WQ_KMSD)
				assert_true(j->ran_ctx == &wctx[0] ||
				    j->ran_ctx == &wctx[1]);
			else
				assert_ptr_equal(j->ran_ctx, marker);
			assert_int_equal(seen[j->in], 0);
			seen[j->in] = 1;
			got++;
			j->wq.free(&j->wq);
		}
	}
}

static void
test_lanes(void **state)
{
	struct ike_wq *q = pool(1000, false);

	(void)state;
	for (int i = 0; i < 400; i++)
		ike_wq_submit(q, &tjob_new(i % 2 ? IKE_WQ_CPU : IKE_WQ_KMSD,
					 i)
				      ->wq);
	drain(q, 400, q);
	assert_null(ike_wq_done(q));
	ike_wq_close(q);
}

static void
test_full(void **state)
{
	struct ike_wq *q = pool(3, false);

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_false(ike_wq_full(q, IKE_WQ_CPU));
		ike_wq_submit(q, &tjob_new(IKE_WQ_CPU, i)->wq);
	}
	assert_true(ike_wq_full(q, IKE_WQ_CPU));
	assert_false(ike_wq_full(q, IKE_WQ_KMSD)); /* lanes apart */
	ike_wq_submit(q, &tjob_new(IKE_WQ_CPU, 3)->wq); /* admitted work */
	drain(q, 4, q);
	assert_false(ike_wq_full(q, IKE_WQ_CPU)); /* done and taken */
	ike_wq_close(q);
}

static void
test_close_frees(void **state)
{
	struct ike_wq *q = pool(1000, false);

	(void)state;
	atomic_store(&freed, 0);
	for (int i = 0; i < 100; i++)
		ike_wq_submit(q, &tjob_new(i % 2, i)->wq);
	ike_wq_close(q); /* some run, some done, none taken: all freed */
	assert_int_equal(atomic_load(&freed), 100);
}

static void
test_idle(void **state)
{
	struct ike_wq *q;

	(void)state;
	atomic_store(&idle_calls, 0);
	q = pool(10, true);
	for (int i = 0; i < 200 && atomic_load(&idle_calls) < 6; i++)
		usleep(1000);
	usleep(20000);
	/* each of the 2 workers stops at its first "no more" */
	assert_true(atomic_load(&idle_calls) >= 5 &&
	    atomic_load(&idle_calls) <= 6);
	ike_wq_close(q);
}

/* One DH job against an initiator's key pair: keys as the initiator's. */
static void
dh_once(struct ike_wq *q, uint16_t group, int bad)
{
	static const uint8_t spi_i[8] = { 1 }, spi_r[8] = { 2 };
	struct ike_cpuq_job *j = ike_cpuq_job_new(IKE_CPUQ_DH), *r;
	struct ike_dh	    *ini = ike_dh_new(group);
	struct ike_sa_keys  *k = ike_sa_keys_new();
	struct pollfd	     pfd = { ike_wq_fd(q), POLLIN, 0 };
	struct buf	     pub, gir;

	assert_non_null(j);
	assert_non_null(ini);
	buf_init(&pub, 256);
	buf_init(&gir, 256);
	assert_int_equal(ike_dh_public(ini, &pub), 0);
	memcpy(j->spi_i, spi_i, 8);
	memcpy(j->spi_r, spi_r, 8);
	j->dh.group = group;
	j->dh.encr = IKE_ENCR_AES_CBC;
	j->dh.encr_bits = 256;
	j->dh.integ = IKE_INTEG_HMAC_SHA2_256_128;
	memcpy(j->dh.peer, pub.data, pub.len);
	j->dh.peer_len = pub.len;
	if (bad)
		memset(j->dh.peer, 0, pub.len);
	memset(j->dh.ni, 0x11, 32);
	memset(j->dh.nr, 0x22, 32);
	j->dh.ni_len = j->dh.nr_len = 32;
	ike_wq_submit(q, &j->wq);
	assert_true(poll(&pfd, 1, 5000) == 1);
	while ((r = (struct ike_cpuq_job *)ike_wq_done(q)) == NULL)
		assert_true(poll(&pfd, 1, 5000) == 1);
	assert_ptr_equal(r, j);
	if (bad) {
		assert_int_equal(j->rc, -1);
	} else {
		assert_int_equal(j->rc, 0);
		assert_int_equal(ike_dh_derive(ini, j->dh.pub, j->dh.pub_len,
				     &gir),
		    0);
		assert_int_equal(ike_ke_sa_keys(gir.data, gir.len, j->dh.ni, 32,
				     j->dh.nr, 32, spi_i, spi_r,
				     IKE_ENCR_AES_CBC, 256,
				     IKE_INTEG_HMAC_SHA2_256_128, k),
		    0);
		assert_memory_equal(k, j->dh.keys, sizeof(*k));
		assert_int_equal(k->d.len, 32);
	}
	ike_cpuq_job_free(j);
	ike_sa_keys_free(k);
	ike_dh_free(ini);
	buf_free(&pub);
	buf_free(&gir);
}

static void
test_cpuq_dh(void **state)
{
	char	       err[128];
	struct ike_wq *q = ike_wq_new(err, sizeof(err));

	(void)state;
	assert_non_null(q);
	assert_int_equal(ike_cpuq_open(q, 2, 8, IKE_KE_CURVE25519, 4, err,
			     sizeof(err)),
	    0);
	usleep(50000); /* the stock fills */
	for (int i = 0; i < 8; i++) /* from the stock, then made */
		dh_once(q, IKE_KE_CURVE25519, 0);
	dh_once(q, IKE_KE_MODP2048, 0); /* not the stock's group */
	dh_once(q, IKE_KE_ECP256, 0);
	dh_once(q, IKE_KE_CURVE25519, 1); /* all-zero X25519 value */
	dh_once(q, IKE_KE_MODP2048, 1);	  /* y = 0 */
	ike_wq_close(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lanes),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_close_frees),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_cpuq_dh),
	};

	log_init("test_ike_workq", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

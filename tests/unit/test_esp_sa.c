/*
 * ike/esp, SA state: the anti-replay window (in order, out of order,
 * duplicates, the exact edges, jumps), ESN inference across 2^32 (RFC 4303
 * appendix A2), sequence exhaustion, soft and hard lifetimes, setup
 * errors and the wrong direction, the SPI table (and against a model),
 * counters read from another thread, and keys wiped on free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ike/esp.h"
#include "tests/unit/esp_fx.h"

/* ---- replay window ---- */

/* Packets seq[] encapsulated in order, delivered in the order given. */
struct replay_env {
	struct esp_sa *o, *in;
	uint8_t	       pkt[8200][80];
	size_t	       len[8200];
	uint64_t       base; /* seq of pkt[0] */
};

static void
replay_env_init(struct replay_env *e, enum esp_alg alg, bool esn, uint64_t base,
    size_t n)
{
	e->o = sa_make(alg, esn, true, NULL);
	e->in = sa_make(alg, esn, false, NULL);
	e->base = base;
	esp_sa_test_set_seq(e->o, base - 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t b[4];

		put32(b, (uint32_t)i);
		assert_int_equal(esp_encap(e->o, b, 4, 4, e->pkt[i],
				     sizeof(e->pkt[i]), &e->len[i]),
		    ESP_OK);
	}
}

static enum esp_rc
deliver(struct replay_env *e, uint64_t seq)
{
	uint8_t	    b[80];
	size_t	    i = (size_t)(seq - e->base), off, ilen;
	uint8_t	    nh;
	enum esp_rc rc;

	memcpy(b, e->pkt[i], e->len[i]);
	rc = esp_decap(e->in, b, e->len[i], &off, &ilen, &nh);
	if (rc == ESP_OK) {
		uint8_t want[4];

		put32(want, (uint32_t)i);
		assert_int_equal(ilen, 4);
		assert_memory_equal(b + off, want, 4);
	}
	return rc;
}

static void
replay_env_free(struct replay_env *e)
{
	esp_sa_free(e->o);
	esp_sa_free(e->in);
}

static void
test_replay(void **state)
{
	static struct replay_env e;
	const uint64_t		 W = ESP_REPLAY_WINDOW;
	struct esp_stats	 st;

	replay_env_init(&e, ESP_AES_GCM_256, false, 1, 3 * W + 100);
	/* in order */
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(deliver(&e, s), ESP_OK);
	assert_int_equal(deliver(&e, 10), ESP_E_REPLAY); /* duplicate */
	assert_int_equal(deliver(&e, 1), ESP_E_REPLAY);
	/* a jump, then the gap out of order */
	assert_int_equal(deliver(&e, 100), ESP_OK);
	for (uint64_t s = 99; s > 10; s--)
		assert_int_equal(deliver(&e, s), ESP_OK);
	for (uint64_t s = 1; s <= 100; s++)
		assert_int_equal(deliver(&e, s), ESP_E_REPLAY);
	/* top = W + 50: the window is [51, W + 50] exactly */
	assert_int_equal(deliver(&e, W + 50), ESP_OK);
	assert_int_equal(deliver(&e, 50), ESP_E_REPLAY); /* just left */
	assert_int_equal(deliver(&e, 51), ESP_E_REPLAY); /* seen before */
	assert_int_equal(deliver(&e, 101), ESP_OK);	 /* in, unseen */
	assert_int_equal(deliver(&e, 101), ESP_E_REPLAY);
	/* top = 2W + 49: the left edge is W + 50, which was seen */
	assert_int_equal(deliver(&e, 2 * W + 49), ESP_OK);
	assert_int_equal(deliver(&e, W + 49), ESP_E_REPLAY); /* left */
	assert_int_equal(deliver(&e, W + 50), ESP_E_REPLAY); /* seen */
	assert_int_equal(deliver(&e, W + 51), ESP_OK);	     /* edge + 1 */
	/* a jump of more than the window clears it */
	assert_int_equal(deliver(&e, 3 * W + 60), ESP_OK);
	assert_int_equal(deliver(&e, 2 * W + 60), ESP_E_REPLAY);
	assert_int_equal(deliver(&e, 2 * W + 61), ESP_OK); /* left edge */
	assert_int_equal(deliver(&e, 3 * W + 59), ESP_OK);
	assert_int_equal(deliver(&e, 3 * W + 61), ESP_OK);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.seq, 3 * W + 61);
	assert_int_equal(st.replay, 2 + 100 + 2 + 1 + 2 + 1);
	assert_int_equal(st.icv, 0);
	replay_env_free(&e);
}

/* Every packet of a long run, each shuffled within a 64-packet span. */
static void
test_replay_shuffle(void **state)
{
	static struct replay_env e;
	struct esp_stats	 st;
	const size_t		 n = 8192;

	replay_env_init(&e, ESP_AES_CBC_256_SHA256, true, 1, n);
	for (size_t b = 0; b < n; b += 64)
		for (size_t k = 0; k < 64; k++) {
			size_t j = (k * 37) % 64; /* a permutation of 0..63 */

			assert_int_equal(deliver(&e, 1 + b + j), ESP_OK);
		}
	/* inside the window: seen; left of it, with ESN: read as 2^32
	 * ahead (RFC 4303 A2.1), so the ICV fails */
	for (size_t s = n - ESP_REPLAY_WINDOW + 1; s <= n; s++)
		assert_int_equal(deliver(&e, s), ESP_E_REPLAY);
	for (size_t s = n - ESP_REPLAY_WINDOW - 10; s <= n - ESP_REPLAY_WINDOW;
	     s++)
		assert_int_equal(deliver(&e, s), ESP_E_ICV);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.packets, n);
	replay_env_free(&e);
}

/* ESN: crossing 2^32, the high half inferred (RFC 4303 A2). */
static void
test_esn(void **state)
{
	static struct replay_env e;
	const uint64_t		 B = (uint64_t)1 << 32;
	struct esp_stats	 st;

	replay_env_init(&e, ESP_AES_GCM_256, true, B - 100, 300);
	esp_sa_test_set_seq(e.in, B - 101);
	for (uint64_t s = B - 100; s < B - 2; s++)
		assert_int_equal(deliver(&e, s), ESP_OK);
	/* B - 2, B - 1 held back; B .. B + 5 arrive first */
	for (uint64_t s = B; s <= B + 5; s++)
		assert_int_equal(deliver(&e, s), ESP_OK);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.seq, B + 5);
	/* from just before the boundary, after it: high half 0 inferred */
	assert_int_equal(deliver(&e, B - 1), ESP_OK);
	assert_int_equal(deliver(&e, B - 2), ESP_OK);
	assert_int_equal(deliver(&e, B - 1), ESP_E_REPLAY);
	assert_int_equal(deliver(&e, B + 3), ESP_E_REPLAY);
	/* a jump in the new subspace */
	assert_int_equal(deliver(&e, B + 150), ESP_OK);
	assert_int_equal(deliver(&e, B + 6), ESP_OK);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.seq, B + 150);
	assert_int_equal(st.icv, 0);
	replay_env_free(&e);

	/* With the window inside one subspace: a low value jumps ahead. */
	replay_env_init(&e, ESP_AES_CBC_256_SHA256, true, 2 * B - 10, 20);
	esp_sa_test_set_seq(e.in, 2 * B - 11);
	assert_int_equal(deliver(&e, 2 * B + 3), ESP_OK);
	assert_int_equal(deliver(&e, 2 * B - 10), ESP_OK);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.seq, 2 * B + 3);
	replay_env_free(&e);

	/* The exact left edge of a window inside one subspace: T - W + 1 is
	 * in it (high half kept), T - W is read as 2^32 ahead. */
	const uint64_t T = 2 * B + 5000, W = ESP_REPLAY_WINDOW;

	replay_env_init(&e, ESP_AES_GCM_256, true, T - W - 5, W + 10);
	esp_sa_test_set_seq(e.in, T);
	assert_int_equal(deliver(&e, T - W + 1), ESP_OK);
	assert_int_equal(deliver(&e, T - W), ESP_E_ICV);
	assert_int_equal(deliver(&e, T - W + 1), ESP_E_REPLAY);
	esp_sa_stats(e.in, &st);
	assert_int_equal(st.seq, T);
	replay_env_free(&e);
}
/* ---- sequence space, lifetimes ---- */

static void
test_seq_exhaust(void **state)
{
	for (int esn = 0; esn < 2; esn++) {
		struct esp_sa	*o = sa_make(ESP_AES_GCM_256, esn, true, NULL);
		uint64_t	 last = esn ? UINT64_MAX : UINT32_MAX;
		uint8_t		 pkt[MAXPKT];
		size_t		 len;
		struct esp_stats st;

		assert_false(esp_sa_soft(o));
		esp_sa_test_set_seq(o, last - 2);
		assert_true(esp_sa_soft(o)); /* past 2^31 / 2^63 */
		assert_int_equal(esp_encap(o, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_OK);
		assert_int_equal(esp_encap(o, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_OK);
		assert_memory_equal(pkt + 4, "\xff\xff\xff\xff", 4);
		assert_int_equal(esp_encap(o, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_E_SEQ);
		assert_int_equal(esp_encap(o, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_E_SEQ);
		esp_sa_stats(o, &st);
		assert_int_equal(st.seq, last);
		assert_int_equal(st.packets, 2);
		assert_int_equal(st.other, 2);
		esp_sa_free(o);
	}
	/* Non-ESN soft at 2^31 sequence numbers. */
	struct esp_sa *o = sa_make(ESP_AES_GCM_256, false, true, NULL);

	esp_sa_test_set_seq(o, ((uint64_t)1 << 31) - 1);
	assert_false(esp_sa_soft(o));
	esp_sa_test_set_seq(o, (uint64_t)1 << 31);
	assert_true(esp_sa_soft(o));
	esp_sa_free(o);
}

static void
test_lifetimes(void **state)
{
	struct esp_lifetime lp = { .soft_packets = 5, .hard_packets = 8 };
	struct esp_lifetime lb = { .soft_bytes = 250, .hard_bytes = 400 };

	for (int alg = 0; alg < 2; alg++) {
		struct esp_sa	*o = sa_make(alg, false, true, &lp);
		struct esp_sa	*in = sa_make(alg, false, false, &lp);
		uint8_t		 pkt[MAXPKT];
		size_t		 len;
		struct esp_stats st;

		for (int i = 0; i < 8; i++) {
			assert_int_equal(esp_sa_soft(o), i >= 5);
			assert_int_equal(esp_sa_soft(in), i >= 5);
			pass_one(o, in, 20, (unsigned)i);
		}
		assert_true(esp_sa_soft(o));
		assert_int_equal(esp_encap(o, pkt, 20, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_E_HARD);
		assert_int_equal(esp_decap(in, pkt, len, &len, &len, pkt),
		    ESP_E_HARD);
		esp_sa_stats(o, &st);
		assert_int_equal(st.packets, 8);
		assert_int_equal(st.other, 1);
		esp_sa_free(o);
		esp_sa_free(in);

		/* bytes: 100 per packet; soft from 250, hard at 400 */
		o = sa_make(alg, false, true, &lb);
		in = sa_make(alg, false, false, &lb);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(esp_sa_soft(o), i >= 3);
			pass_one(o, in, 100, (unsigned)i);
			assert_int_equal(esp_sa_soft(in), i >= 2);
		}
		assert_int_equal(esp_encap(o, pkt, 1, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_E_HARD);
		esp_sa_stats(in, &st);
		assert_int_equal(st.bytes, 400);
		esp_sa_free(o);
		esp_sa_free(in);
	}
}

/* ---- setup ---- */

static void
test_cfg_errors(void **state)
{
	struct esp_sa_cfg c = {
		.spi = SPI,
		.alg = ESP_AES_GCM_256,
		.enc_key = k_enc,
		.enc_len = 32,
	};
	char err[200] = "";

	assert_null(esp_sa_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "32 bytes, want 36"));
	assert_non_null(strstr(err, "0x11223344"));
	c.enc_len = 36;
	c.integ_key = k_integ;
	c.integ_len = 32;
	assert_null(esp_sa_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "integrity key of 32 bytes, want 0"));
	c.alg = ESP_AES_CBC_256_SHA256;
	assert_null(esp_sa_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "36 bytes, want 32"));
	c.enc_len = 32;
	c.integ_len = 16;
	assert_null(esp_sa_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "integrity key of 16 bytes, want 32"));
	c.alg = 7;
	assert_null(esp_sa_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown algorithm 7"));
	esp_sa_free(NULL);
	/* the wrong direction: refused, counted */
	{
		struct esp_sa *o = sa_make(ESP_AES_GCM_256, false, true, NULL);
		struct esp_sa *in =
		    sa_make(ESP_AES_GCM_256, false, false, NULL);
		uint8_t		 pkt[MAXPKT], nh;
		size_t		 len, off, ilen;
		struct esp_stats st;

		assert_int_equal(esp_encap(in, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_E_CRYPTO);
		assert_int_equal(esp_encap(o, pkt, 10, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_OK);
		assert_int_equal(esp_decap(o, pkt, len, &off, &ilen, &nh),
		    ESP_E_CRYPTO);
		esp_sa_stats(in, &st);
		assert_int_equal(st.other, 1);
		assert_int_equal(st.seq, 0);
		esp_sa_stats(o, &st);
		assert_int_equal(st.other, 1);
		assert_int_equal(st.packets, 1);
		esp_sa_free(o);
		esp_sa_free(in);
	}
	assert_string_equal(esp_rc_name(ESP_E_PAD), "pad");
	assert_string_equal(esp_rc_name(ESP_OK), "ok");
}

/* ---- SPI table ---- */

static struct esp_sa *
sa_spi(uint32_t spi_host)
{
	struct esp_sa_cfg c = {
		.spi = htonl(spi_host),
		.alg = ESP_AES_GCM_256,
		.enc_key = k_enc,
		.enc_len = 36,
	};
	char err[200];

	return esp_sa_new(&c, err, sizeof(err));
}

static void
test_spi_table(void **state)
{
	enum { N = 100 };
	struct esp_spi_table *t = esp_spi_table_new(N);
	struct esp_sa	     *sa[N + 1], *extra;

	assert_non_null(t);
	for (uint32_t i = 0; i <= N; i++)
		assert_non_null(sa[i] = sa_spi(0xc0000000u + i * 4096));
	for (int i = 0; i < N; i++)
		assert_int_equal(esp_spi_add(t, sa[i]), 0);
	/* full, and a duplicate SPI */
	assert_int_equal(esp_spi_add(t, sa[N]), -1);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(esp_spi_find(t, esp_sa_spi(sa[i])), sa[i]);
	assert_null(esp_spi_find(t, esp_sa_spi(sa[N])));
	assert_ptr_equal(esp_spi_del(t, esp_sa_spi(sa[7])), sa[7]);
	assert_null(esp_spi_del(t, esp_sa_spi(sa[7])));
	assert_null(esp_spi_find(t, esp_sa_spi(sa[7])));
	assert_non_null(extra = sa_spi(0xc0000000u + 50 * 4096));
	assert_int_equal(esp_spi_add(t, extra), -1); /* SPI of sa[50] */
	esp_sa_free(extra);
	assert_int_equal(esp_spi_add(t, sa[N]), 0);
	assert_ptr_equal(esp_spi_find(t, esp_sa_spi(sa[N])), sa[N]);
	/* churn: delete and re-add many times, all still found */
	for (int round = 0; round < 50; round++)
		for (int i = 0; i < N; i += 3) {
			if (i == 7)
				continue;
			assert_ptr_equal(esp_spi_del(t, esp_sa_spi(sa[i])),
			    sa[i]);
			assert_int_equal(esp_spi_add(t, sa[i]), 0);
		}
	for (int i = 0; i <= N; i++)
		if (i != 7)
			assert_ptr_equal(esp_spi_find(t, esp_sa_spi(sa[i])),
			    sa[i]);
	for (int i = 0; i <= N; i++) {
		if (i != 7)
			assert_ptr_equal(esp_spi_del(t, esp_sa_spi(sa[i])),
			    sa[i]);
		esp_sa_free(sa[i]);
	}
	assert_null(esp_spi_find(t, htonl(0xc0000000u)));
	esp_spi_table_free(t);
	esp_spi_table_free(NULL);
	assert_null(esp_spi_table_new(0));
}

/* Random adds, deletes and finds against a model of which SPIs are in. */
static void
test_spi_table_model(void **state)
{
	enum { MAX = 64, POOL = 300, OPS = 30000 };
	struct esp_spi_table *t = esp_spi_table_new(MAX);
	static struct esp_sa *sa[POOL];
	bool		      in[POOL] = { false };
	size_t		      count = 0;
	uint32_t	      r = 12345;

	for (int i = 0; i < POOL; i++)
		assert_non_null(sa[i] = sa_spi((uint32_t)i * 2654435761u));
	for (int op = 0; op < OPS; op++) {
		int k;

		r = r * 1103515245u + 12345u;
		k = (int)((r >> 8) % POOL);
		switch ((r >> 4) % 3) {
		case 0:
			assert_int_equal(esp_spi_add(t, sa[k]),
			    in[k] || count == MAX ? -1 : 0);
			if (!in[k] && count < MAX) {
				in[k] = true;
				count++;
			}
			break;
		case 1:
			assert_ptr_equal(esp_spi_del(t, esp_sa_spi(sa[k])),
			    in[k] ? sa[k] : NULL);
			if (in[k]) {
				in[k] = false;
				count--;
			}
			break;
		default:
			assert_ptr_equal(esp_spi_find(t, esp_sa_spi(sa[k])),
			    in[k] ? sa[k] : NULL);
		}
	}
	for (int i = 0; i < POOL; i++)
		assert_ptr_equal(esp_spi_find(t, esp_sa_spi(sa[i])),
		    in[i] ? sa[i] : NULL);
	for (int i = 0; i < POOL; i++) {
		if (in[i])
			assert_ptr_equal(esp_spi_del(t, esp_sa_spi(sa[i])),
			    sa[i]);
		esp_sa_free(sa[i]);
	}
	esp_spi_table_free(t);
}

/* Counters read by another thread while the SA's thread writes them. */
struct reader {
	struct esp_sa *sa;
	atomic_int     stop;
	uint64_t       reads, last;
	bool	       monotonic;
};

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;

	rd->monotonic = true;
	while (!atomic_load(&rd->stop)) {
		struct esp_stats st;

		esp_sa_stats(rd->sa, &st);
		if (st.packets < rd->last || st.seq < st.packets)
			rd->monotonic = false;
		rd->last = st.packets;
		rd->reads++;
	}
	return NULL;
}

static void
test_stats_threads(void **state)
{
	struct reader	 rd = { .sa =
				    sa_make(ESP_AES_GCM_256, false, true, NULL) };
	pthread_t	 th;
	uint8_t		 pkt[MAXPKT];
	size_t		 len;
	struct esp_stats st;

	assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
	for (int i = 0; i < 50000; i++)
		assert_int_equal(esp_encap(rd.sa, pkt, 40, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_OK);
	atomic_store(&rd.stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(rd.monotonic);
	assert_true(rd.reads > 0);
	esp_sa_stats(rd.sa, &st);
	assert_int_equal(st.packets, 50000);
	assert_int_equal(st.bytes, 50000 * 40);
	esp_sa_free(rd.sa);
}
static int    wipe_calls;
static size_t wipe_len;
static bool   wipe_zero;

static void
wipe_hook(const void *p, size_t n)
{
	const uint8_t *b = p;

	wipe_calls++;
	wipe_len = n;
	wipe_zero = true;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			wipe_zero = false;
}

static void
test_wipe(void **state)
{
	for (int alg = 0; alg < 2; alg++) {
		struct esp_sa *o = sa_make(alg, false, true, NULL);
		struct esp_sa *in = sa_make(alg, false, false, NULL);

		pass_one(o, in, 64, 2);
		esp_test_wipe_hook = wipe_hook;
		wipe_calls = 0;
		esp_sa_free(o);
		assert_int_equal(wipe_calls, 1);
		assert_true(wipe_len >= 36 + 32);
		assert_true(wipe_zero);
		esp_sa_free(in);
		assert_int_equal(wipe_calls, 2);
		assert_true(wipe_zero);
		esp_test_wipe_hook = NULL;
	}
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_replay_shuffle),
		cmocka_unit_test(test_esn),
		cmocka_unit_test(test_seq_exhaust),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_cfg_errors),
		cmocka_unit_test(test_spi_table),
		cmocka_unit_test(test_spi_table_model),
		cmocka_unit_test(test_stats_threads),
		cmocka_unit_test(test_wipe),
	};

	log_init("test_esp_sa", LOG_ERR);
	keys_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

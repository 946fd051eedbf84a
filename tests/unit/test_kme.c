/*
 * Two simulated KMEs in one process, paired over loopback with real mutual
 * TLS (test PKI from certs/mkcerts.sh; run from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/kme.h"

static char	   dir[64];
static char	   path_ca[128], crt_a[128], key_a[128], crt_b[128], key_b[128];
static char	   crt_bad[128], key_bad[128];
static struct kme *ka, *kb;
static uint16_t	   port_b;

static const char *sae_at_a[] = { "sae-a" };
static const char *sae_at_b[] = { "sae-b", "sae-x" };

/* What both KMEs share; each side then sets its own. */
static void
cfg_common(struct kme_cfg *c, const char *id, const char *peer)
{
	memset(c, 0, sizeof(*c));
	c->kme_id = id;
	c->link.peer_id = peer;
	c->key_size = 256;
	c->max_key_count = 50000;
	c->link.ca_file = path_ca;
	c->link_timeout_ms = 2000;
}

static void
cfg_a(struct kme_cfg *c)
{
	cfg_common(c, "kme-a", "kme-b");
	c->sae_ids = sae_at_a;
	c->n_sae = 1;
	c->transmitter = 1;
	c->key_rate = 200000000; /* 200 Mbit/s */
	c->link.peer_host = "127.0.0.1";
	c->link.peer_port = port_b;
	c->link.cert = crt_a;
	c->link.key = key_a;
}

static void
cfg_b(struct kme_cfg *c, uint16_t port)
{
	cfg_common(c, "kme-b", "kme-a");
	c->sae_ids = sae_at_b;
	c->n_sae = 2;
	c->link.listen_host = "127.0.0.1";
	c->link.listen_port = port;
	c->link.cert = crt_b;
	c->link.key = key_b;
}

static int
wait_up(struct kme *k, unsigned min_keys, unsigned ms)
{
	struct kme_info in;
	uint64_t	end = time_mono_ns() + (uint64_t)ms * 1000000;

	do {
		kme_get_info(k, &in);
		if (in.link_up && in.stored_key_count >= min_keys)
			return 1;
		time_sleep_ns(10000000);
	} while (time_mono_ns() < end);
	return 0;
}

static int
start_pair(void **state)
{
	struct kme_cfg c;
	char	       cmd[256], err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_kme.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "sh certs/mkcerts.sh %s >/dev/null 2>&1",
	    dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(path_ca, sizeof(path_ca), "%s/ca.crt", dir);
	snprintf(crt_a, sizeof(crt_a), "%s/kme-a.crt", dir);
	snprintf(key_a, sizeof(key_a), "%s/kme-a.key", dir);
	snprintf(crt_b, sizeof(crt_b), "%s/kme-b.crt", dir);
	snprintf(key_b, sizeof(key_b), "%s/kme-b.key", dir);
	snprintf(crt_bad, sizeof(crt_bad), "%s/kmsd-b.crt", dir);
	snprintf(key_bad, sizeof(key_bad), "%s/kmsd-b.key", dir);

	cfg_b(&c, 0);
	kb = kme_start(&c, err, sizeof(err));
	if (kb == NULL) {
		fprintf(stderr, "kme b: %s\n", err);
		return -1;
	}
	port_b = kme_link_port(kb);
	cfg_a(&c);
	ka = kme_start(&c, err, sizeof(err));
	if (ka == NULL) {
		fprintf(stderr, "kme a: %s\n", err);
		return -1;
	}
	if (!wait_up(ka, 1000, 5000) || !wait_up(kb, 1000, 5000))
		return -1;
	return 0;
}

static int
stop_pair(void **state)
{
	char cmd[128];

	(void)state;
	kme_stop(ka);
	kme_stop(kb);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
ids_of(const struct etsi_keys *k, struct etsi_key_ids *ids)
{
	assert_int_equal(etsi_key_ids_alloc(ids, k->n), 0);
	for (size_t i = 0; i < k->n; i++)
		snprintf(ids->ids[i], sizeof(ids->ids[i]), "%s", k->v[i].id);
}

static void
same_keys(const struct etsi_keys *x, const struct etsi_keys *y)
{
	assert_int_equal(x->n, y->n);
	for (size_t i = 0; i < x->n; i++) {
		assert_string_equal(x->v[i].id, y->v[i].id);
		assert_int_equal(x->v[i].len, y->v[i].len);
		assert_memory_equal(x->v[i].key, y->v[i].key, x->v[i].len);
	}
}

/* enc_keys at KME m for sae-a and slaves must succeed; ids are the keys' IDs. */
static void
enc_ok(struct kme *m, const char *const *slaves, size_t nslaves,
    unsigned number, unsigned size, struct etsi_keys *e,
    struct etsi_key_ids *ids)
{
	char err[ETSI_ERRLEN];

	assert_int_equal(kme_enc_keys(m, "sae-a", slaves, nslaves, number, size,
			     e, err),
	    KME_OK);
	assert_int_equal(e->n, number);
	assert_int_equal(e->v[0].len, size / 8);
	ids_of(e, ids);
}

/* dec_keys at KME s by slave gives the keys of e. */
static void
dec_same(struct kme *s, const char *slave, const struct etsi_key_ids *ids,
    const struct etsi_keys *e)
{
	struct etsi_keys d;
	char		 err[ETSI_ERRLEN];

	assert_int_equal(kme_dec_keys(s, slave, "sae-a", ids, &d, err), KME_OK);
	same_keys(e, &d);
	etsi_keys_free(&d);
}

/* number keys of size bits from sae-a at m to sae-b at s, and back out. */
static void
deliver(struct kme *m, struct kme *s, unsigned number, unsigned size)
{
	const char	   *slaves[] = { "sae-b" };
	struct etsi_keys    e;
	struct etsi_key_ids ids;

	enc_ok(m, slaves, 1, number, size, &e, &ids);
	dec_same(s, "sae-b", &ids, &e);
	etsi_key_ids_free(&ids);
	etsi_keys_free(&e);
}

static void
test_basic(void **state)
{
	const char	   *slaves[] = { "sae-b" };
	struct etsi_keys    e, d;
	struct etsi_key_ids ids;
	char		    err[ETSI_ERRLEN];

	(void)state;
	enc_ok(ka, slaves, 1, 13, 256, &e, &ids);
	/* Not a slave: 401, and nothing is consumed. */
	assert_int_equal(kme_dec_keys(kb, "sae-x", "sae-a", &ids, &d, err),
	    KME_EUNAUTH);
	/* Wrong master: not found. */
	assert_int_equal(kme_dec_keys(kb, "sae-b", "sae-x", &ids, &d, err),
	    KME_ENOTFOUND);
	dec_same(kb, "sae-b", &ids, &e);
	/* Never twice. */
	assert_int_equal(kme_dec_keys(kb, "sae-b", "sae-a", &ids, &d, err),
	    KME_ENOTFOUND);
	assert_string_equal(err, ETSI_MSG_KEYS_NOTFOUND);
	/* Not a UUID: simply not found. */
	snprintf(ids.ids[0], sizeof(ids.ids[0]), "not-a-uuid");
	assert_int_equal(kme_dec_keys(kb, "sae-b", "sae-a", &ids, &d, err),
	    KME_ENOTFOUND);
	etsi_key_ids_free(&ids);
	etsi_keys_free(&e);
}

static void
test_sizes(void **state)
{
	static const unsigned sizes[] = { 64, 136, 256, 512, 1000, 8192 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		deliver(ka, kb, 3, sizes[i]);
}

static void
test_two_slaves(void **state)
{
	const char	   *slaves[] = { "sae-b", "sae-x" };
	struct etsi_keys    e, d;
	struct etsi_key_ids ids;
	char		    err[ETSI_ERRLEN];

	(void)state;
	enc_ok(ka, slaves, 2, 2, 256, &e, &ids);
	dec_same(kb, "sae-b", &ids, &e);
	assert_int_equal(kme_dec_keys(kb, "sae-b", "sae-a", &ids, &d, err),
	    KME_ENOTFOUND);
	dec_same(kb, "sae-x", &ids, &e);
	assert_int_equal(kme_dec_keys(kb, "sae-x", "sae-a", &ids, &d, err),
	    KME_ENOTFOUND);
	etsi_key_ids_free(&ids);
	etsi_keys_free(&e);
}

static void
test_errors(void **state)
{
	const char	*local[] = { "sae-a" }, *nobody[] = { "sae-zzz" };
	const char	*slaves[] = { "sae-b" };
	struct etsi_keys e;
	char		 err[ETSI_ERRLEN];

	(void)state;
	assert_int_equal(kme_enc_keys(ka, "sae-a", local, 1, 1, 256, &e, err),
	    KME_EBADREQ);
	assert_non_null(strstr(err, "sae-a"));
	assert_int_equal(kme_enc_keys(ka, "sae-a", nobody, 1, 1, 256, &e, err),
	    KME_EBADREQ);
	assert_non_null(strstr(err, "sae-zzz"));
	/* 1000 keys of 8192 bits = 32000 chunks, more than the 50000-cap pool
	 * holds after the earlier tests? Ask for clearly too many instead. */
	assert_int_equal(kme_enc_keys(ka, "sae-a", slaves, 1, 1024, 16384, &e,
			     err),
	    KME_EUNAVAIL);
	assert_non_null(strstr(err,
	    "not enough key material: 1024 keys of "
	    "16384 bits requested"));
	assert_true(kme_sae_is_remote(ka, "sae-b"));
	assert_true(kme_sae_is_remote(ka, "sae-x"));
	assert_false(kme_sae_is_remote(ka, "sae-a"));
	assert_true(kme_sae_is_local(ka, "sae-a"));
	assert_true(kme_sae_is_remote(kb, "sae-a"));
}

/* ---------------------------------------------- concurrent masters */

#define PER_THREAD 300
#define THREADS	   3

struct worker {
	struct kme *k;
	const char *master, *slave;
	char (*ids)[ETSI_KEY_ID_MAX + 1];
	size_t n;
	int    fails;
};

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	const char	*slaves[1] = { w->slave };
	struct etsi_keys e;
	char		 err[ETSI_ERRLEN];

	for (int i = 0; i < PER_THREAD; i++) {
		if (kme_enc_keys(w->k, w->master, slaves, 1, 13, 256, &e,
			err) != KME_OK) {
			w->fails++;
			continue;
		}
		for (size_t j = 0; j < e.n; j++)
			snprintf(w->ids[w->n++], ETSI_KEY_ID_MAX + 1, "%s",
			    e.v[j].id);
		etsi_keys_free(&e);
	}
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_concurrent_masters(void **state)
{
	struct worker w[2 * THREADS];
	pthread_t     th[2 * THREADS];
	char(*all)[ETSI_KEY_ID_MAX + 1], (*sorted)[ETSI_KEY_ID_MAX + 1];
	size_t	 total = 0;
	uint64_t t0;

	(void)state;
	all = calloc(2 * THREADS * PER_THREAD * 13, sizeof(*all));
	assert_non_null(all);
	t0 = time_mono_ns();
	for (int i = 0; i < 2 * THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].k = i < THREADS ? ka : kb;
		w[i].master = i < THREADS ? "sae-a" : "sae-b";
		w[i].slave = i < THREADS ? "sae-b" : "sae-a";
		w[i].ids = all + (size_t)i * PER_THREAD * 13;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
				     &w[i]),
		    0);
	}
	for (int i = 0; i < 2 * THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].fails, 0);
		total += w[i].n;
	}
	fprintf(stderr, "  concurrent masters: %zu keys in %.1f ms\n", total,
	    (double)(time_mono_ns() - t0) / 1e6);
	/* No key ID handed to two masters. */
	sorted = calloc(total, sizeof(*sorted));
	assert_non_null(sorted);
	for (int i = 0, o = 0; i < 2 * THREADS; i++)
		for (size_t j = 0; j < w[i].n; j++)
			memcpy(sorted[o++], w[i].ids[j], sizeof(*sorted));
	qsort(sorted, total, sizeof(*sorted), cmp_id);
	for (size_t i = 1; i < total; i++)
		assert_string_not_equal(sorted[i - 1], sorted[i]);
	free(sorted);
	/* And each one can be collected by its slave at the other KME. */
	for (int i = 0; i < 2 * THREADS; i++) {
		struct etsi_key_ids ids;
		struct etsi_keys    d;
		char		    err[ETSI_ERRLEN];

		assert_int_equal(etsi_key_ids_alloc(&ids, 13), 0);
		for (size_t j = 0; j < 13; j++)
			snprintf(ids.ids[j], sizeof(ids.ids[j]), "%s",
			    w[i].ids[j]);
		int rc = kme_dec_keys(i < THREADS ? kb : ka, w[i].slave,
		    w[i].master, &ids, &d, err);
		if (rc != KME_OK)
			fprintf(stderr, "worker %d: %s (%s)\n", i, err,
			    ids.ids[0]);
		assert_int_equal(rc, KME_OK);
		etsi_keys_free(&d);
		etsi_key_ids_free(&ids);
	}
	free(all);
}

/* ------------------------------------------------ link down and back */

static void
test_reconnect(void **state)
{
	const char	*slaves[] = { "sae-b" };
	struct kme_cfg	 c;
	struct etsi_keys e;
	char		 err[ETSI_ERRLEN];
	uint64_t	 t0;

	(void)state;
	t0 = time_mono_ns();
	kme_stop(kb);
	kb = NULL;
	assert_true(time_mono_ns() - t0 < 1000000000ULL);
	/* A notices within its read loop. */
	for (int i = 0; i < 100; i++) {
		struct kme_info in;

		kme_get_info(ka, &in);
		if (!in.link_up)
			break;
		time_sleep_ns(10000000);
	}
	assert_int_equal(kme_enc_keys(ka, "sae-a", slaves, 1, 1, 256, &e, err),
	    KME_EUNAVAIL);
	assert_string_equal(err, "QKD link to kme-b is down");

	cfg_b(&c, port_b);
	kb = kme_start(&c, err, sizeof(err));
	assert_non_null(kb);
	assert_true(wait_up(ka, 0, 5000));
	/* B is a new in-memory store: A dropped its unshared keys. */
	assert_true(wait_up(kb, 100, 5000));
	assert_true(wait_up(ka, 100, 5000));
	deliver(ka, kb, 13, 256);
}

/* A peer whose certificate has the wrong CN never gets the link up. */
static void
test_wrong_peer(void **state)
{
	struct kme_cfg	c;
	struct kme     *rogue, *a2;
	struct kme_info in;
	char		err[ETSI_ERRLEN];

	(void)state;
	cfg_b(&c, 0);
	c.link.cert = crt_bad; /* CN kmsd-b */
	c.link.key = key_bad;
	rogue = kme_start(&c, err, sizeof(err));
	assert_non_null(rogue);
	cfg_a(&c);
	c.link.peer_port = kme_link_port(rogue);
	a2 = kme_start(&c, err, sizeof(err));
	assert_non_null(a2);
	time_sleep_ns(700000000ULL);
	kme_get_info(a2, &in);
	assert_int_equal(in.link_up, 0);
	kme_get_info(rogue, &in);
	assert_int_equal(in.link_up, 0);
	kme_stop(a2);
	kme_stop(rogue);
}

/* A KME with keys on disk: assigned keys survive its restart. */
static void
test_file_restart(void **state)
{
	const char	   *slaves[] = { "sae-b" };
	struct kme_cfg	    c;
	struct kme	   *a2, *b2;
	struct etsi_keys    e, d;
	struct etsi_key_ids ids;
	char		    err[ETSI_ERRLEN], db[160], kek[160];

	(void)state;
	snprintf(db, sizeof(db), "%s/b.db", dir);
	snprintf(kek, sizeof(kek), "%s/b.kek", dir);
	cfg_b(&c, 0);
	c.db_path = db;
	c.kek_file = kek;
	b2 = kme_start(&c, err, sizeof(err));
	assert_non_null(b2);
	uint16_t p = kme_link_port(b2);
	cfg_a(&c);
	c.link.peer_port = p;
	a2 = kme_start(&c, err, sizeof(err));
	assert_non_null(a2);
	assert_true(wait_up(a2, 200, 5000));
	enc_ok(a2, slaves, 1, 13, 256, &e, &ids);
	kme_stop(b2);
	cfg_b(&c, p);
	c.db_path = db;
	c.kek_file = kek;
	b2 = kme_start(&c, err, sizeof(err));
	assert_non_null(b2);
	dec_same(b2, "sae-b", &ids, &e);
	kme_stop(b2);
	b2 = kme_start(&c, err, sizeof(err));
	assert_non_null(b2);
	assert_int_equal(kme_dec_keys(b2, "sae-b", "sae-a", &ids, &d, err),
	    KME_ENOTFOUND);
	/* The pair still works after B's restart. */
	assert_true(wait_up(a2, 0, 5000));
	etsi_keys_free(&e);
	assert_true(wait_up(b2, 50, 5000));
	etsi_key_ids_free(&ids);
	deliver(a2, b2, 13, 256);
	kme_stop(a2);
	kme_stop(b2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_two_slaves),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_concurrent_masters),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_wrong_peer),
		cmocka_unit_test(test_file_restart),
	};

	log_init("test_kme", getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	sec_json_init();
	return cmocka_run_group_tests(tests, start_pair, stop_pair);
}

/*
 * kmsd/upstream.c against the real qkd-sim pair (tests/testbed.sh, with
 * MAX_KEY_PER_REQUEST=4 so that 13 keys take 4 calls), over HTTPS with the
 * test PKI: limits, splitting, byte-identical keys at both sites, refusals,
 * a KME that dies and comes back, concurrent callers and reloads. Run from
 * the repository root; BINDIR says where qkd-sim is.
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

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "kmsclient/kmsclient.h"
#include "kmsd/metrics.h"
#include "kmsd/upstream.h"
#include "tests/unit/testutil.h"

static char		dir[64];
static char		url_a[128], url_b[128], ca[256];
static char		crt_a[256], key_a[256], crt_b[256], key_b[256];
static struct upstream *ua, *ub; /* kmsd A (sae-a at KME A), kmsd B */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char	cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
env_get(const char *env, const char *name, char *out, size_t cap)
{
	char	    pat[64];
	const char *p;
	size_t	    n;

	snprintf(pat, sizeof(pat), "%s=", name);
	for (p = env; (p = strstr(p, pat)) != NULL; p++)
		if (p == env || p[-1] == '\n')
			break;
	assert_non_null(p);
	p += strlen(pat);
	n = strcspn(p, "\n");
	assert_true(n < cap);
	memcpy(out, p, n);
	out[n] = '\0';
}

static void
read_env(void)
{
	char   path[128], env[4096];
	FILE  *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/testbed.env", dir);
	assert_non_null(f = fopen(path, "r"));
	n = fread(env, 1, sizeof(env) - 1, f);
	fclose(f);
	env[n] = '\0';
	env_get(env, "KME_A_URL", url_a, sizeof(url_a));
	env_get(env, "KME_B_URL", url_b, sizeof(url_b));
	env_get(env, "CA", ca, sizeof(ca));
	env_get(env, "SAE_A_CERT", crt_a, sizeof(crt_a));
	env_get(env, "SAE_A_KEY", key_a, sizeof(key_a));
	env_get(env, "SAE_B_CERT", crt_b, sizeof(crt_b));
	env_get(env, "SAE_B_KEY", key_b, sizeof(key_b));
}

static struct upstream *
mk(const char *url, const char *sae, const char *crt, const char *key,
    unsigned conns)
{
	struct upstream_id  id = { sae, crt, key };
	struct upstream_cfg cfg = {
		.url = url,
		.ca = ca,
		.timeout_ms = 5000,
		.ids = &id,
		.nids = 1,
		.conns_per_id = conns,
	};
	struct upstream *u;
	char		 err[256];

	u = upstream_new(&cfg, err, sizeof(err));
	if (u == NULL)
		fail_msg("upstream_new: %s", err);
	return u;
}

static int
setup(void **state)
{
	(void)state;
	sec_json_init();
	log_init("test_upstream", LOG_WARN);
	snprintf(dir, sizeof(dir), "/tmp/test_upstream.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	setenv("MAX_KEY_PER_REQUEST", "4", 1);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("NO_KMSD", "1", 1); /* the KMEs only: we are kmsd */
	if (sh("sh tests/testbed.sh up %s >%s/up.log 2>&1", dir, dir) != 0) {
		sh("cat %s/up.log >&2", dir);
		sh("sh tests/testbed.sh down %s >/dev/null 2>&1; rm -rf %s",
		    dir, dir);
		return -1;
	}
	read_env();
	ua = mk(url_a, "sae-a", crt_a, key_a, 2);
	ub = mk(url_b, "sae-b", crt_b, key_b, 4);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	upstream_free(ua);
	upstream_free(ub);
	sh("sh tests/testbed.sh down %s >/dev/null 2>&1", dir);
	sh("rm -rf %s", dir);
	return 0;
}

/* Value of one rendered metrics series; -1 if absent. */
static double
metric(const char *series)
{
	struct buf  b;
	const char *p;
	double	    v = -1;
	size_t	    n = strlen(series);

	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b, NULL, 0, 0), 0);
	assert_int_equal(buf_add(&b, "", 1), 0);
	for (p = (char *)b.data; (p = strstr(p, series)) != NULL; p += n)
		if (p[-1] == '\n' && p[n] == ' ') {
			v = strtod(p + n + 1, NULL);
			break;
		}
	buf_free(&b);
	return v;
}

#define UP_ENC_OK                                                              \
	"kmsd_upstream_requests_total{endpoint=\"enc_keys\",result=\"ok\"}"
#define UP_ENC_ERR                                                             \
	"kmsd_upstream_requests_total{endpoint=\"enc_keys\",result=\"error\"}"
#define UP_DEC_OK                                                              \
	"kmsd_upstream_requests_total{endpoint=\"dec_keys\",result=\"ok\"}"
#define UP_ST_OK                                                               \
	"kmsd_upstream_requests_total{endpoint=\"status\",result=\"ok\"}"

/* Same IDs, same bytes, in any order. */
static void
same_keys(const struct etsi_keys *a, const struct etsi_keys *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t j;

		for (j = 0; j < b->n; j++)
			if (strcmp(a->v[i].id, b->v[j].id) == 0)
				break;
		assert_true(j < b->n);
		assert_int_equal(a->v[i].len, b->v[j].len);
		assert_int_equal(CRYPTO_memcmp(a->v[i].key, b->v[j].key,
				     a->v[i].len),
		    0);
	}
}

static void
distinct(const struct etsi_keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = i + 1; j < k->n; j++)
			assert_string_not_equal(k->v[i].id, k->v[j].id);
}

static void
test_status(void **state)
{
	struct etsi_status st;
	struct up_err	   e;

	(void)state;
	assert_int_equal(upstream_status(ua, "sae-a", "sae-b", &st, &e), 0);
	assert_int_equal(st.max_key_per_request, 4);
	assert_int_equal(st.key_size, 256);
	assert_int_equal(st.min_key_size, 64);
	assert_int_equal(st.max_key_size, 8192);
	assert_string_equal(st.master_sae_id, "sae-a");
	assert_string_equal(st.slave_sae_id, "sae-b");
	assert_string_equal(st.source_kme_id, "kme-a");
	assert_int_equal(upstream_reachable(ua), 1);
}

static void
test_split(void **state)
{
	struct etsi_key_req req = { .number = 13 };
	struct etsi_keys    a, b;
	struct etsi_key_ids ids;
	struct up_err	    e;
	double		    enc0 = metric(UP_ENC_OK), dec0 = metric(UP_DEC_OK);

	(void)state;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &a, &e), 0);
	assert_int_equal(a.n, 13);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(a.v[i].len, 32); /* KME default: 256 bits */
	distinct(&a);
	assert_true(metric(UP_ENC_OK) == enc0 + 4); /* 4 + 4 + 4 + 1 */

	testutil_ids_of(&a, &ids);
	assert_int_equal(upstream_dec(ub, "sae-b", "sae-a", &ids, &b, &e), 0);
	same_keys(&a, &b);
	assert_true(metric(UP_DEC_OK) == dec0 + 4);
	etsi_keys_free(&a);
	etsi_keys_free(&b);
	etsi_key_ids_free(&ids);

	/* An explicit size, split 4 + 2. */
	req.number = 6;
	req.size = 512;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &a, &e), 0);
	assert_int_equal(a.n, 6);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(a.v[i].len, 64);
	testutil_ids_of(&a, &ids);
	assert_int_equal(upstream_dec(ub, "sae-b", "sae-a", &ids, &b, &e), 0);
	same_keys(&a, &b);
	etsi_keys_free(&a);
	etsi_keys_free(&b);
	etsi_key_ids_free(&ids);
}

static void
test_refused(void **state)
{
	struct etsi_key_req req = { .number = 1, .size = 250 };
	struct etsi_keys    k;
	struct up_err	    e;

	(void)state;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &k, &e), -1);
	assert_int_equal(e.status, 400);
	assert_int_equal(e.kms, KMS_E_BADREQ);
	assert_string_equal(e.message, ETSI_MSG_SIZE_MULT8);
	assert_null(k.v);
	assert_int_equal(k.n, 0);
	assert_int_equal(upstream_reachable(ua), 1);

	/* Refused in the first part of a split: the KME's words, unchanged. */
	req.number = 13;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &k, &e), -1);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.message, ETSI_MSG_SIZE_MULT8);

	/* Not one of our identities: no call made. */
	req.size = 0;
	assert_int_equal(upstream_enc(ua, "sae-z", "sae-b", &req, &k, &e), -1);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.kms, KMS_E_ARG);
	assert_non_null(strstr(e.message, "sae-z"));

	/* Too many keys for one container. */
	req.number = ETSI_MAX_KEYS + 1;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &k, &e), -1);
	assert_int_equal(e.kms, KMS_E_ARG);
}

/* The second part of a dec_keys fails: nothing comes back, e says which. */
static void
test_later_part(void **state)
{
	struct etsi_key_req req = { .number = 4 };
	struct etsi_keys    a, b;
	struct etsi_key_ids ids;
	struct up_err	    e;

	(void)state;
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &a, &e), 0);
	assert_int_equal(etsi_key_ids_alloc(&ids, 8), 0);
	for (size_t i = 0; i < 4; i++)
		snprintf(ids.ids[i], sizeof(ids.ids[i]), "%s", a.v[i].id);
	for (size_t i = 4; i < 8; i++)
		snprintf(ids.ids[i], sizeof(ids.ids[i]),
		    "00000000-0000-4000-8000-00000000000%zu", i);
	assert_int_equal(upstream_dec(ub, "sae-b", "sae-a", &ids, &b, &e), -1);
	assert_int_equal(e.status, 400);
	assert_int_equal(e.kms, KMS_E_BADREQ);
	assert_string_equal(e.message,
	    "KME refused part 2 of 2: " ETSI_MSG_KEYS_NOTFOUND);
	assert_null(b.v);
	assert_int_equal(b.n, 0);
	etsi_keys_free(&a);
	etsi_key_ids_free(&ids);
}

static int
enc_one(struct upstream *u, struct up_err *e)
{
	struct etsi_key_req req = { .number = 1 };
	struct etsi_keys    k;
	int		    rc;

	rc = upstream_enc(u, "sae-a", "sae-b", &req, &k, e);
	etsi_keys_free(&k);
	return rc;
}

static void
test_kme_down_up(void **state)
{
	struct up_err e;
	uint64_t      t0;
	int	      rc;

	(void)state;
	assert_int_equal(enc_one(ua, &e), 0);
	assert_int_equal(upstream_reachable(ua), 1);
	assert_int_equal(sh("sh tests/testbed.sh kill a %s", dir), 0);

	assert_int_equal(enc_one(ua, &e), -1);
	assert_int_equal(e.status, 0);
	assert_true(e.kms == KMS_E_CONNECT || e.kms == KMS_E_TLS ||
	    e.kms == KMS_E_TIMEOUT);
	assert_true(e.message[0] != '\0');
	assert_int_equal(upstream_reachable(ua), 0);

	assert_int_equal(sh("sh tests/testbed.sh start a %s", dir), 0);
	/* The KME answers at once; keys flow once the QKD link is back. */
	t0 = time_mono_ns();
	while ((rc = enc_one(ua, &e)) == -1 && e.status == 503 &&
	    time_mono_ns() - t0 < 20000000000ull)
		time_sleep_ns(100000000);
	assert_int_equal(rc, 0);
	assert_int_equal(upstream_reachable(ua), 1);
}

struct worker {
	pthread_t	 t;
	int		 fails;
	struct etsi_keys keys; /* every key this thread got, from A */
};

/* same_keys() without cmocka asserts, which are not for other threads. */
static int
match(const struct etsi_keys *a, const struct etsi_keys *b)
{
	size_t hits = 0;

	for (size_t i = 0; a->n == b->n && i < a->n; i++)
		for (size_t j = 0; j < b->n; j++)
			if (strcmp(a->v[i].id, b->v[j].id) == 0 &&
			    a->v[i].len == b->v[j].len &&
			    CRYPTO_memcmp(a->v[i].key, b->v[j].key,
				a->v[i].len) == 0)
				hits++;
	return a->n == b->n && hits == a->n;
}

#define W_ROUNDS 10
#define W_KEYS	 6

static void *
worker(void *arg)
{
	struct worker	   *w = arg;
	struct etsi_key_req req = { .number = W_KEYS };
	struct etsi_keys    a, b;
	struct etsi_key_ids ids;
	struct up_err	    e;

	if (etsi_keys_alloc(&w->keys, W_ROUNDS * W_KEYS) == -1)
		return NULL;
	for (size_t r = 0; r < W_ROUNDS; r++) {
		if (upstream_enc(ua, "sae-a", "sae-b", &req, &a, &e) == -1) {
			w->fails++;
			continue;
		}
		memset(&ids, 0, sizeof(ids));
		if (etsi_key_ids_alloc(&ids, a.n) == 0) {
			for (size_t i = 0; i < a.n; i++)
				memcpy(ids.ids[i], a.v[i].id,
				    sizeof(ids.ids[i]));
			if (upstream_dec(ub, "sae-b", "sae-a", &ids, &b, &e) ==
				-1 ||
			    !match(&a, &b))
				w->fails++;
			etsi_keys_free(&b);
		}
		etsi_key_ids_free(&ids);
		for (size_t i = 0; i < a.n; i++) {
			w->keys.v[r * W_KEYS + i] = a.v[i];
			a.v[i].key = NULL;
		}
		etsi_keys_free(&a);
	}
	return NULL;
}

/* 4 threads over 2 connections (ua) and 4 (ub), with reloads meanwhile. */
static void
test_threads(void **state)
{
	struct worker	   w[4];
	struct upstream_id id = { "sae-a", crt_a, key_a };
	struct etsi_keys   all;
	char		   err[256];
	size_t		   n = 0;

	(void)state;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&w[i].t, NULL, worker, &w[i]),
		    0);
	for (int i = 0; i < 5; i++) {
		time_sleep_ns(20000000);
		assert_int_equal(upstream_reload(ua, &id, 1, err, sizeof(err)),
		    0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(w[i].t, NULL);
	assert_int_equal(etsi_keys_alloc(&all, 4 * W_ROUNDS * W_KEYS), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(w[i].fails, 0);
		for (size_t j = 0; j < w[i].keys.n; j++)
			memcpy(all.v[n++].id, w[i].keys.v[j].id,
			    sizeof(all.v[0].id));
		etsi_keys_free(&w[i].keys);
	}
	assert_int_equal(n, all.n);
	distinct(&all); /* no key ID handed out twice */
	etsi_keys_free(&all);
}

static void
test_reload_bad(void **state)
{
	struct upstream_id bad = { "sae-a", "/nonexistent.crt", key_a };
	struct upstream_id twice[2] = { { "sae-a", crt_a, key_a },
		{ "sae-a", crt_a, key_a } };
	struct up_err	   e;
	char		   err[256];

	(void)state;
	assert_int_equal(upstream_reload(ua, &bad, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent.crt"));
	assert_int_equal(upstream_reload(ua, twice, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(enc_one(ua, &e), 0); /* old table kept */
}

/*
 * The KME comes back with a lower max_key_per_request: the first part is
 * refused for the limit, kmsd reads the Status again and splits 3+3+3+3+1.
 */
static void
test_limits_change(void **state)
{
	struct etsi_key_req   req = { .number = 13 };
	struct kms_client_cfg kc = { url_a, crt_a, key_a, ca, 5000, 0 };
	struct kms_client    *c;
	struct etsi_status    st;
	struct etsi_keys      k;
	struct up_err	      e;
	char		      err[256];
	double		      ok0, bad0, st0;
	uint64_t	      t0;

	(void)state;
	assert_int_equal(enc_one(ua, &e), 0); /* limits cached: 4 */
	assert_int_equal(
	    sh("sh tests/testbed.sh stop a %s && sed -i "
	       "'s/^max_key_per_request = .*/max_key_per_request = 3/' "
	       "%s/kme-a.conf && sh tests/testbed.sh start a %s",
		dir, dir, dir),
	    0);
	assert_non_null(c = kms_client_new(&kc, err, sizeof(err)));
	t0 = time_mono_ns();
	while ((kms_status(c, "sae-b", &st) != KMS_OK ||
		   st.stored_key_count < 13) &&
	    time_mono_ns() - t0 < 20000000000ull)
		time_sleep_ns(100000000);
	kms_client_free(c);
	assert_int_equal(st.max_key_per_request, 3);

	ok0 = metric(UP_ENC_OK);
	bad0 = metric(UP_ENC_ERR);
	st0 = metric(UP_ST_OK);
	assert_int_equal(upstream_enc(ua, "sae-a", "sae-b", &req, &k, &e), 0);
	assert_int_equal(k.n, 13);
	distinct(&k);
	etsi_keys_free(&k);
	assert_true(metric(UP_ENC_ERR) == bad0 + 1);
	assert_true(metric(UP_ST_OK) == st0 + 1);
	assert_true(metric(UP_ENC_OK) == ok0 + 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_later_part),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_reload_bad),
		cmocka_unit_test(test_kme_down_up),
		cmocka_unit_test(test_limits_change),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The refill thread: keeps each configured (local master, remote slave) pool
 * between its low and high watermarks with large enc_keys batches from the
 * KME, and drops keys past their TTL. A pool that runs short wakes it early.
 * It also takes each pool's leases in the background (pool_prefetch), every
 * tick and whenever pool_take says a pair's memory is running low, so that
 * requests are served from memory without waiting for the database.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "kmsd/kmsd.h"
#include "kmsd/metrics.h"

#define REFILL_TICK_MS	  200
#define REFILL_EXPIRE_MS  5000
#define REFILL_PROBE_MS	  5000
#define REFILL_KEYSIZE_MS 60000

struct refill_pair {
	char	 master[ETSI_ID_MAX + 1];
	char	 slave[ETSI_ID_MAX + 1];
	bool	 failing;  /* log a failure once, and the recovery */
	bool	 filling;  /* fell below low: fill to high, across failures */
	unsigned kme_bits; /* the KME's default key_size; 0: not read yet */
};

/* Copy the pairs out so that the KME calls run without the config lock. */
static size_t
refill_pairs(struct kmsd *k, struct refill_pair *p, size_t max, unsigned *low,
    unsigned *high, unsigned *batch, unsigned *bits)
{
	size_t n = 0;

	pthread_rwlock_rdlock(&k->cfg_lock);
	for (size_t i = 0; i < k->cfg->nsaes; i++) {
		const struct kmsd_sae *s = &k->cfg->saes[i];

		for (size_t j = 0; j < s->npool && n < max; j++, n++) {
			snprintf(p[n].master, sizeof(p[n].master), "%s", s->id);
			snprintf(p[n].slave, sizeof(p[n].slave), "%s",
			    s->pool[j]);
		}
	}
	*low = k->cfg->pool_low;
	*high = k->cfg->pool_high;
	*batch = k->cfg->pool_batch;
	*bits = k->cfg->key_size;
	pthread_rwlock_unlock(&k->cfg_lock);
	return n;
}

/* Background leases: storage errors are logged by the pool; retried next tick. */
static void
refill_prefetch(struct kmsd *k, struct refill_pair *p, size_t n)
{
	for (size_t i = 0; i < n && !k->stop; i++)
		(void)pool_prefetch(k->pool, p[i].master, p[i].slave);
}

/* Fill one pool up to high; returns -1 when the KME failed. */
static int
refill_one(struct kmsd *k, struct refill_pair *p, unsigned low, unsigned high,
    unsigned batch, unsigned bits)
{
	struct etsi_key_req kr;
	struct etsi_keys    keys;
	struct up_err	    e;
	size_t		    have = pool_count(k->pool, p->master, p->slave);

	/* Hysteresis: start below low, then keep going until high. */
	if (have < low)
		p->filling = true;
	if (!p->filling)
		return 0;
	/* Another kmsd on a shared pool may be the pair's refiller: then the
	 * lease is checked again next tick, and taken if it lapsed. */
	while (have < high && !k->stop &&
	    pool_refill_claim(k->pool, p->master, p->slave)) {
		memset(&kr, 0, sizeof(kr));
		kr.number =
		    (unsigned)(high - have < batch ? high - have : batch);
		kr.size = bits;
		if (upstream_enc(k->up, p->master, p->slave, &kr, &keys, &e) ==
		    -1) {
			if (!p->failing)
				log_warn(
				    "pool %s -> %s: refill failed (%zu keys left): "
				    "%s",
				    p->master, p->slave, have, e.message);
			p->failing = true;
			return -1;
		}
		if (pool_add(k->pool, p->master, p->slave, &keys,
			time_real_ms()) == -1) {
			log_err(
			    "pool %s -> %s: cannot store %zu keys; they are "
			    "dropped",
			    p->master, p->slave, keys.n);
			etsi_keys_free(&keys);
			return -1;
		}
		etsi_keys_free(&keys);
		/* Keep a standby lease ready while a long fill runs. */
		(void)pool_prefetch(k->pool, p->master, p->slave);
		have = pool_count(k->pool, p->master, p->slave);
		if (p->failing)
			log_info("pool %s -> %s: refilling again", p->master,
			    p->slave);
		p->failing = false;
	}
	if (have >= high)
		p->filling = false;
	log_debug("pool %s -> %s: %zu keys", p->master, p->slave, have);
	return 0;
}

/*
 * /healthz says whether the KME answers. Refills tell it when there are
 * pools; otherwise (and while it is down) a status call every few seconds.
 */
static void
refill_probe(struct kmsd *k, size_t npairs)
{
	struct etsi_status st;
	struct up_err	   e;
	char master[ETSI_ID_MAX + 1] = "", slave[ETSI_ID_MAX + 1] = "";

	if (npairs > 0 && upstream_reachable(k->up))
		return;
	pthread_rwlock_rdlock(&k->cfg_lock);
	for (size_t i = 0; i < k->cfg->nsaes && master[0] == '\0'; i++)
		if (k->cfg->saes[i].npeers > 0) {
			snprintf(master, sizeof(master), "%s",
			    k->cfg->saes[i].id);
			snprintf(slave, sizeof(slave), "%s",
			    k->cfg->saes[i].peers[0]);
		}
	pthread_rwlock_unlock(&k->cfg_lock);
	if (master[0] != '\0')
		(void)upstream_status(k->up, master, slave, &st, &e);
}

/*
 * The pool holds keys of its own key_size, fetched with an explicit size;
 * a KME whose default key_size differs is legal but a likely
 * misconfiguration (SAEs that ask the KME or the peer's kmsd without a size
 * get other keys): warned once per change, and counted in /metrics.
 * Returns how many pairs are still unknown (the KME did not answer).
 */
static size_t
refill_key_size(struct kmsd *k, struct refill_pair *p, size_t n, unsigned bits)
{
	struct etsi_status st;
	struct up_err	   e;
	unsigned	   bad = 0, last = 0;
	size_t		   unknown = 0;

	for (size_t i = 0; i < n && !k->stop; i++) {
		if (upstream_status(k->up, p[i].master, p[i].slave, &st, &e) ==
			0 &&
		    st.key_size != p[i].kme_bits) {
			if (st.key_size != bits)
				log_warn(
				    "pool %s -> %s: the KME's default key_size "
				    "is %u bits, the pool's key_size %u: pooled "
				    "keys are fetched at %u bits; set [pool] "
				    "key_size to the KME's unless that is meant",
				    p[i].master, p[i].slave, st.key_size, bits,
				    bits);
			else if (p[i].kme_bits != 0)
				log_info(
				    "pool %s -> %s: the KME's default key_size "
				    "is now the pool's (%u bits)",
				    p[i].master, p[i].slave, bits);
			p[i].kme_bits = st.key_size;
		}
		if (p[i].kme_bits != 0) {
			bad += p[i].kme_bits != bits;
			last = p[i].kme_bits;
		} else
			unknown++;
	}
	metrics_key_size_mismatch(bad, last);
	return unknown;
}

void
kmsd_pool_metrics(struct kmsd *k)
{
	struct pool_stats st;

	pool_stats(k->pool, &st);
	metrics_pool_drops(st.rolled_back_keys, st.corrupt_keys);
}

/* When the periodic jobs last ran, in monotonic ms; 0: not yet. */
struct refill_clock {
	uint64_t expire, probe, ks;
};

static uint64_t
refill_now_ms(void)
{
	return time_mono_ns() / 1000000;
}

/* The jobs that run every few seconds rather than every tick. */
static void
refill_periodic(struct kmsd *k, struct refill_clock *t, struct refill_pair *p,
    size_t n, unsigned bits)
{
	if (refill_now_ms() - t->expire >= REFILL_EXPIRE_MS) {
		size_t dropped = pool_expire(k->pool, time_real_ms());

		if (dropped)
			log_info("pool: %zu keys past their TTL dropped",
			    dropped);
		t->expire = refill_now_ms();
	}
	if (t->probe == 0 || refill_now_ms() - t->probe >= REFILL_PROBE_MS) {
		refill_probe(k, n);
		t->probe = refill_now_ms();
	}
	if (t->ks == 0 || refill_now_ms() - t->ks >= REFILL_KEYSIZE_MS) {
		t->ks = refill_now_ms();
		/* Not read yet: again at the probe interval. */
		if (refill_key_size(k, p, n, bits) > 0)
			t->ks -= REFILL_KEYSIZE_MS - REFILL_PROBE_MS;
	}
}

/* Waits ms, or until kicked or stopped. */
static void
refill_sleep(struct kmsd *k, uint64_t ms)
{
	struct timespec ts;

	pthread_mutex_lock(&k->mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!k->stop && !k->kick)
		if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT)
			break;
	k->kick = false;
	pthread_mutex_unlock(&k->mu);
}

static void *
refill_main(void *arg)
{
	struct kmsd	   *k = arg;
	struct refill_pair *pairs;
	struct refill_clock clk = { 0, 0, 0 };
	size_t		    npairs, max = KMSD_MAX_SAES * KMSD_MAX_PEERS;
	unsigned	    low, high, batch, bits;
	uint64_t	    backoff_ms = REFILL_TICK_MS;
	bool		    any_fail;

	if ((pairs = calloc(max, sizeof(*pairs))) == NULL)
		return NULL;
	for (;;) {
		npairs =
		    refill_pairs(k, pairs, max, &low, &high, &batch, &bits);
		refill_prefetch(k, pairs, npairs);
		refill_periodic(k, &clk, pairs, npairs, bits);
		kmsd_pool_metrics(k);
		any_fail = false;
		for (size_t i = 0; i < npairs && !k->stop; i++)
			if (refill_one(k, &pairs[i], low, high, batch, bits) ==
			    -1)
				any_fail = true;
		/* Back off while the KME fails, up to 2 s; at once when it works. */
		backoff_ms = any_fail ?
		    (backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2) :
		    REFILL_TICK_MS;
		refill_sleep(k, backoff_ms);
		if (k->stop)
			break;
	}
	free(pairs);
	return NULL;
}

static void
refill_notify(void *arg)
{
	kmsd_refill_kick(arg);
}

int
kmsd_refill_start(struct kmsd *k)
{
	if (pthread_create(&k->refill, NULL, refill_main, k) != 0)
		return -1;
	k->refill_started = true;
	/* pool_take asks for a background lease when memory runs low. */
	pool_set_notify(k->pool, refill_notify, k);
	return 0;
}

void
kmsd_refill_kick(struct kmsd *k)
{
	pthread_mutex_lock(&k->mu);
	k->kick = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

void
kmsd_refill_stop(struct kmsd *k)
{
	if (!k->refill_started)
		return;
	pool_set_notify(k->pool, NULL, NULL);
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->refill, NULL);
	k->refill_started = false;
}

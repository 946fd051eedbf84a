/*
 * kmsd's counters for GET /metrics (Prometheus text format 0.0.4) and the
 * facts behind GET /healthz. Lock-free counters; safe from any thread.
 */
#ifndef KMSD_METRICS_H
#define KMSD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum metrics_ep { M_STATUS = 0, M_ENC, M_DEC, M_OTHER, M_NEP };

void metrics_request(enum metrics_ep ep, int http_status);
void metrics_keys_served(enum metrics_ep ep, size_t n); /* ENC or DEC */
void metrics_pool_hit(bool hit); /* enc_keys from pool or not */
void metrics_upstream(enum metrics_ep ep, bool ok, double seconds);
void metrics_upstream_error(enum metrics_ep ep);
/* The pool's drop counters (pool_stats), copied in by the refill thread. */
void metrics_pool_drops(uint64_t rolled_back_keys, uint64_t corrupt_keys);
/* Pooled pairs whose KME default key_size is not the pool's key size. */
void metrics_key_size_mismatch(unsigned pairs, unsigned kme_bits);

/* One pool gauge line per pair is added by the caller through this. */
struct metrics_pool_gauge {
	const char *master;
	const char *slave;
	size_t	    keys;
	size_t	    low;
	size_t	    high;
};

/* Appends the whole exposition to out; -1 if out's bound is too small. */
int metrics_render(struct buf *out, const struct metrics_pool_gauge *g,
    size_t ng, bool upstream_up);

#endif

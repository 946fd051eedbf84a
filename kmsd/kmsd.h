/* kmsd's running state, shared by its API handlers and its refill thread. */
#ifndef KMSD_KMSD_H
#define KMSD_KMSD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/httpd.h"
#include "kmsd/config.h"
#include "kmsd/pool.h"
#include "kmsd/upstream.h"

struct kmsd {
	struct kmsd_config *cfg; /* ACL and SAEs; swapped on SIGHUP */
	pthread_rwlock_t    cfg_lock;
	struct pool	   *pool;
	struct upstream	   *up;

	pthread_t	refill;
	bool		refill_started;
	pthread_mutex_t mu;
	pthread_cond_t	cv;
	atomic_int	stop;
	bool		kick;	  /* a pool ran short: refill now */
	atomic_int	stopping; /* SIGTERM: ETSI calls get 503 */
	atomic_int	inflight; /* ETSI calls being handled */
};

/* Northbound ETSI 014 API (mutual TLS), plus /healthz and /metrics. */
int kmsd_api_handle(void *ctx, const struct httpd_req *req,
    struct httpd_resp *resp);
/* /healthz and /metrics only, for the plain-HTTP metrics listener. */
int kmsd_ops_handle(void *ctx, const struct httpd_req *req,
    struct httpd_resp *resp);

/* The refill thread keeps every configured pool between its watermarks;
 * 0, or -1 when the thread cannot be started. */
int  kmsd_refill_start(struct kmsd *k);
void kmsd_refill_stop(struct kmsd *k);
void kmsd_refill_kick(struct kmsd *k);
/* Copies the pool's drop counters into /metrics. */
void kmsd_pool_metrics(struct kmsd *k);

#endif

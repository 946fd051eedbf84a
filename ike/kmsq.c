/* Asynchronous kmsd calls for the N3IWF: the kmsd lane of ike/workq.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "ike/kmsq.h"

static void
kmsq_job_free_wq(struct ike_wq_job *j)
{
	ike_kmsq_job_free((struct ike_kmsq_job *)j);
}

struct ike_kmsq_job *
ike_kmsq_job_new(void)
{
	struct ike_kmsq_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	if ((j->keys = ike_qkd_keys_new()) == NULL) {
		free(j);
		return NULL;
	}
	j->wq.lane = IKE_WQ_KMSD;
	j->wq.kind = IKE_KMSQ_JOB;
	j->wq.free = kmsq_job_free_wq;
	return j;
}

void
ike_kmsq_job_free(struct ike_kmsq_job *j)
{
	if (j == NULL)
		return;
	ike_qkd_keys_free(j->keys);
	free(j->req);
	free(j);
}

/* In a worker: the one kmsd call of the job, on the worker's connection. */
static void
kmsq_run(void *ctx, struct ike_wq_job *wj)
{
	struct ike_qkd	    *qkd = ctx;
	struct ike_kmsq_job *j = (struct ike_kmsq_job *)wj;
	uint64_t	     t0 = time_mono_ns();

	j->rc = j->dec ? ike_qkd_dec(qkd, j->sae,
			     (const char(*)[ETSI_KEY_ID_MAX + 1]) j->ids, j->n,
			     j->keys, j->why) :
			 ike_qkd_enc(qkd, j->sae, j->n, j->keys, j->why);
	j->ns = time_mono_ns() - t0;
}

static void
kmsq_qkd_free(void *ctx)
{
	ike_qkd_close(ctx);
}

int
ike_kmsq_open(struct ike_wq *q, const struct ikecfg *c, unsigned workers,
    unsigned cap, char *err, size_t errlen)
{
	struct ike_wq_lane_cfg lc;
	void		      *qkd[IKE_WQ_MAX_WORKERS];

	if (workers < 1 || workers > IKE_WQ_MAX_WORKERS || cap < workers) {
		snprintf(err, errlen,
		    "kmsd workers %u (1..%d) and queue %u (>= workers)",
		    workers, IKE_WQ_MAX_WORKERS, cap);
		return -1;
	}
	for (unsigned i = 0; i < workers; i++)
		if ((qkd[i] = ike_qkd_open(c, err, errlen)) == NULL) {
			while (i-- > 0)
				ike_qkd_close(qkd[i]);
			return -1;
		}
	memset(&lc, 0, sizeof(lc));
	lc.name = "ike-kmsd";
	lc.workers = workers;
	lc.cap = cap;
	lc.wctx = qkd;
	lc.wctx_free = kmsq_qkd_free;
	lc.run = kmsq_run;
	return ike_wq_lane(q, IKE_WQ_KMSD, &lc, err, errlen);
}

bool
ike_kmsq_full(const struct ike_wq *q)
{
	return ike_wq_full(q, IKE_WQ_KMSD);
}

int
ike_kmsq_submit(struct ike_wq *q, struct ike_kmsq_job *j)
{
	if (ike_kmsq_full(q))
		return -1;
	ike_wq_submit(q, &j->wq);
	return 0;
}

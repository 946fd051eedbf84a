/*
 * The N3IWF's part of rekeying (ike/rekey.h does the exchanges): in qkd
 * mode every rekey takes ONE fresh QKD key, drawn at kmsd A in a kmsq
 * worker (the loop never waits), charged to the QKD key budgets like the
 * keys of IKE_SA_INIT.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/kmsq.h"
#include "ike/n3iwf_int.h"
#include "ike/ratelimit.h"
#include "ike/rekey.h"

/* rk_ops.draw: ONE enc_keys {1, 256} for the UE's SAE. 0 queued, -1 no. */
static int
n3_rekey_draw(void *ctx, struct ike_sa *sa)
{
	struct n3	    *n = ctx;
	struct ike_kmsq_job *j;
	const char	    *which;
	unsigned long	     held;

	if (ike_kmsq_full(n->wq)) {
		n->stats.queue_full++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn("kmsd queue full: rekey key for SAE %s not "
				 "drawn (%lu more refusals not logged)",
			    sa->peer_sae, held);
		return -1;
	}
	if (n3iwf_budget(n, &sa->peer, (const char *)sa->peer_sae, 1, &which) ==
		-1 ||
	    (j = ike_kmsq_job_new()) == NULL)
		return -1;
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	snprintf(j->sae, sizeof(j->sae), "%s", (const char *)sa->peer_sae);
	j->n = 1;
	j->rekey = 1;
	if (ike_kmsq_submit(n->wq, j) == -1) { /* checked above */
		ike_kmsq_job_free(j);
		return -1;
	}
	return 0;
}

void
n3iwf_rekey_setup(struct n3 *n)
{
	ike_rekey_signal_setup(); /* SIGUSR2: rekey now */
	if (!ike_wq_has(n->wq, IKE_WQ_KMSD) || n->ep.cfg->mode != IKE_MODE_QKD)
		return;
	n->ep.rk_ops.draw = n3_rekey_draw;
	n->ep.rk_ops.ctx = n;
}

void
n3iwf_rekey_done(struct n3 *n, struct ike_kmsq_job *j)
{
	struct ike_qkd_keys *k = NULL;

	if (j->rc == 0) {
		n->ep.rks.qkd_drawn++;
		k = j->keys; /* the rekey takes it, or it goes back */
		j->keys = NULL;
	} else {
		n->stats.draw_fail++;
		log_warn("rekey key for SAE %s unavailable: kmsd %s: %s",
		    j->sae, n->ep.cfg->kmsd_url, j->why);
	}
	if (!ike_rekey_qkd_done(&n->ep, j->spi_i, j->spi_r, &k) && k != NULL) {
		n->stats.keys_wiped += j->n;
		log_info("rekey key for SAE %s came when no rekey wanted it: "
			 "wiped unused",
		    j->sae);
	}
	if (k != NULL)
		j->keys = k; /* freed (wiped) with the job */
}

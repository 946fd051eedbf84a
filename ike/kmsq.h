/*
 * Asynchronous kmsd calls for the N3IWF (qkd: enc_keys of the 13 keys;
 * qkd+dh: dec_keys of the PPK): the event loop hands a job to the kmsd
 * lane of its worker pool (ike/workq.h); worker threads, each with its own
 * kmsd connection (one ike_qkd each: a kms_client is not shared between
 * threads), make the call; finished jobs come back through the pool's
 * eventfd the event loop polls (kind IKE_KMSQ_JOB).
 *
 * A job names its IKE SA by SPIs, never by pointer: when the SA died while
 * the call was in flight, the event loop finds no SA and frees the job,
 * which wipes the keys. The queue holds at most `cap` jobs, queued and in
 * flight together, so a flood cannot grow it (issue 12: thousands of UEs
 * share it; more workers, more parallel kmsd calls).
 */
#ifndef IKE_KMSQ_H
#define IKE_KMSQ_H

#include <stdbool.h>
#include <stdint.h>

#include "ike/ikev2.h"
#include "ike/qkd.h"
#include "ike/workq.h"

#define IKE_KMSQ_JOB 1 /* ike_wq_job.kind */

struct ike_kmsq_job {
	struct ike_wq_job wq; /* first: the pool's */
	/* in */
	uint8_t		  spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN];
	int		  dec; /* 0: enc_keys for slave `sae`; 1: dec_keys */
	int	 rekey; /* enc_keys of 1 fresh key for a rekey (ike/rekey.h) */
	char	 sae[ETSI_ID_MAX + 1];	      /* slave SAE, or master (dec) */
	unsigned n;			      /* keys (dec: 1) */
	char	 ids[1][ETSI_KEY_ID_MAX + 1]; /* dec: key ID */
	uint8_t *req; /* dec: the parked IKE_AUTH (as received) */
	size_t	 req_len;
	/* out */
	struct ike_qkd_keys *keys; /* sec_alloc, wiped on free */
	int		     rc;   /* 0 or -1 (why) */
	char		     why[IKE_QKD_WHYLEN];
	uint64_t	     ns; /* time inside the kmsd call */
};

struct ikecfg;

/*
 * Opens `workers` kmsd connections and starts the kmsd lane of q with
 * them, `cap` calls queued or in flight at most. 0, or -1 with a reason.
 */
int  ike_kmsq_open(struct ike_wq *q, const struct ikecfg *c, unsigned workers,
     unsigned cap, char *err, size_t errlen);
/* true when a submit would be refused. */
bool ike_kmsq_full(const struct ike_wq *q);

/* A zeroed job with its key buffer; NULL on no memory. */
struct ike_kmsq_job *ike_kmsq_job_new(void);
void ike_kmsq_job_free(struct ike_kmsq_job *j); /* wipes; NULL ok */
/* Queues j (the pool owns it until ike_wq_done gives it back); -1: full. */
int  ike_kmsq_submit(struct ike_wq *q, struct ike_kmsq_job *j);

#endif

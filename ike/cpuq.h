/*
 * The N3IWF's public-key work in worker threads: the CPU lane of its
 * pool (ike/workq.h). Two kinds of job, each with its inputs by value
 * and its outputs back (nothing here sees an SA or the SA table):
 *
 *  - IKE_CPUQ_DH (IKE_SA_INIT, DH modes): our key pair (from the stock
 *    idle workers keep, else made now), our KE data, g^ir from the
 *    peer's (checked as ike_dh_derive does), SKEYSEED and the SK_* keys;
 *    the private key and g^ir never leave the worker.
 *  - IKE_CPUQ_SIG (IKE_AUTH): optionally the peer's RFC 7427 signature,
 *    after its certificate is checked against the CA and its ID; then,
 *    if that holds, our own signature over our AUTH octets.
 *
 * The stock: one key pair is used once. Idle workers keep up to
 * `stock` key pairs of the configured group ready, so that a responder's
 * key pair is made before its IKE_SA_INIT arrives (RFC 7296 allows
 * reusing one; we do not).
 */
#ifndef IKE_CPUQ_H
#define IKE_CPUQ_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"
#include "ike/workq.h"

#define IKE_CPUQ_DH  2 /* ike_wq_job.kind */
#define IKE_CPUQ_SIG 3

#define IKE_CPUQ_KE_MAX 256 /* MODP-2048's KE data, the longest */

struct ike_cpuq_job {
	struct ike_wq_job wq; /* first: the pool's */
	uint8_t		  spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN];
	uint32_t	  mid; /* SIG: the parked request's message ID */
	uint8_t		 *req; /* SIG: the parked request, as received */
	size_t		  req_len;
	int		  rc; /* out: 0, or -1 (DH: bad peer value) */
	uint64_t	  ns; /* out: time in the worker */
	struct {
		uint16_t group, encr, encr_bits, integ;
		uint8_t	 peer[IKE_CPUQ_KE_MAX], ni[IKE_NONCE_MAX],
		    nr[IKE_NONCE_MAX];
		size_t		    peer_len, ni_len, nr_len;
		/* out */
		uint8_t		    pub[IKE_CPUQ_KE_MAX];
		size_t		    pub_len;
		struct ike_sa_keys *keys;    /* sec_alloc, wiped on free */
		int		    stocked; /* the key pair was ready */
	} dh;
	struct {
		int	    verify; /* check the peer's signature first */
		X509_STORE *ca;	    /* shared, read only */
		struct buf  cert;   /* the peer's CERT (DER) */
		uint8_t	    id_type;
		struct buf  id; /* the peer's ID data */
		struct buf  peer_oct, peer_auth;
		EVP_PKEY   *key; /* ours, shared, read only (NULL: no sign) */
		struct buf  oct; /* our AUTH octets */
		struct buf  sig; /* out: our AUTH data (RFC 7427) */
	} au;
};

/*
 * Starts the CPU lane of q: `workers` threads, `cap` jobs at most, a
 * stock of up to `stock` key pairs of `group` (0: no stock). 0 or -1.
 */
int ike_cpuq_open(struct ike_wq *q, unsigned workers, unsigned cap,
    uint16_t group, unsigned stock, char *err, size_t errlen);

/* A zeroed job of kind IKE_CPUQ_DH or IKE_CPUQ_SIG; NULL: no memory. */
struct ike_cpuq_job *ike_cpuq_job_new(int kind);
void ike_cpuq_job_free(struct ike_cpuq_job *j); /* wipes; NULL ok */

#endif

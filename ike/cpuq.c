/* The N3IWF's DH and signatures in worker threads: the CPU lane. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/cpuq.h"

#define CPUQ_STOCK_MAX 256

/* The lane's context: key pairs made ahead by idle workers. */
struct cpuq_stock {
	pthread_mutex_t mu;
	unsigned	delay_ms; /* test hook: IKE_TEST_CPU_DELAY_MS */
	uint16_t	group;
	unsigned	want, n;
	struct ike_dh  *dh[CPUQ_STOCK_MAX];
};

static void
cpuq_job_free_wq(struct ike_wq_job *j)
{
	ike_cpuq_job_free((struct ike_cpuq_job *)j);
}

struct ike_cpuq_job *
ike_cpuq_job_new(int kind)
{
	struct ike_cpuq_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->wq.lane = IKE_WQ_CPU;
	j->wq.kind = kind;
	j->wq.free = cpuq_job_free_wq;
	buf_init(&j->au.cert, 65536);
	buf_init(&j->au.id, 4096);
	buf_init(&j->au.peer_oct, 4 * 65536);
	buf_init(&j->au.peer_auth, 4096);
	buf_init(&j->au.oct, 4 * 65536);
	buf_init(&j->au.sig, 1024);
	if (kind == IKE_CPUQ_DH && (j->dh.keys = ike_sa_keys_new()) == NULL) {
		ike_cpuq_job_free(j);
		return NULL;
	}
	return j;
}

void
ike_cpuq_job_free(struct ike_cpuq_job *j)
{
	if (j == NULL)
		return;
	ike_sa_keys_free(j->dh.keys);
	buf_free(&j->au.cert);
	buf_free(&j->au.id);
	buf_free(&j->au.peer_oct);
	buf_free(&j->au.peer_auth);
	buf_free(&j->au.oct);
	buf_free(&j->au.sig);
	free(j->req);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* A key pair of `group`: one from the stock, else a new one. */
static struct ike_dh *
stock_take(struct cpuq_stock *s, uint16_t group, int *stocked)
{
	struct ike_dh *dh = NULL;

	pthread_mutex_lock(&s->mu);
	if (s->group == group && s->n > 0)
		dh = s->dh[--s->n];
	pthread_mutex_unlock(&s->mu);
	*stocked = dh != NULL;
	return dh != NULL ? dh : ike_dh_new(group);
}

/* The lane's idle work: one more key pair while the stock is short. */
static bool
stock_fill(void *ctx)
{
	struct cpuq_stock *s = ctx;
	struct ike_dh	  *dh;
	bool		   more;

	pthread_mutex_lock(&s->mu);
	more = s->n < s->want;
	pthread_mutex_unlock(&s->mu);
	if (!more || (dh = ike_dh_new(s->group)) == NULL)
		return false;
	pthread_mutex_lock(&s->mu);
	if (s->n < s->want) {
		s->dh[s->n++] = dh;
		dh = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	ike_dh_free(dh);
	return true;
}

static void
stock_free(void *ctx)
{
	struct cpuq_stock *s = ctx;

	if (s == NULL)
		return;
	while (s->n > 0)
		ike_dh_free(s->dh[--s->n]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* IKE_CPUQ_DH: our KE data, g^ir, the SK_* keys (RFC 7296 2.14). */
static int
run_dh(struct cpuq_stock *s, struct ike_cpuq_job *j)
{
	struct ike_dh *dh;
	struct buf     pub, gir;
	int	       ret = -1;

	buf_init(&pub, IKE_CPUQ_KE_MAX);
	buf_init(&gir, IKE_CPUQ_KE_MAX);
	if ((dh = stock_take(s, j->dh.group, &j->dh.stocked)) == NULL ||
	    ike_dh_public(dh, &pub) == -1 || pub.len > sizeof(j->dh.pub) ||
	    ike_dh_derive(dh, j->dh.peer, j->dh.peer_len, &gir) == -1)
		goto done;
	memcpy(j->dh.pub, pub.data, pub.len);
	j->dh.pub_len = pub.len;
	ret = ike_ke_sa_keys(gir.data, gir.len, j->dh.ni, j->dh.ni_len,
	    j->dh.nr, j->dh.nr_len, j->spi_i, j->spi_r, j->dh.encr,
	    j->dh.encr_bits, j->dh.integ, j->dh.keys);
done:
	ike_dh_free(dh);
	buf_free(&pub);
	buf_free(&gir); /* wipes g^ir */
	return ret;
}

/* IKE_CPUQ_SIG: the peer's certificate and signature, then ours. */
static int
run_sig(struct ike_cpuq_job *j)
{
	X509 *x = NULL;
	int   ret = -1;

	if (j->au.verify) {
		if ((x = ike_cert_peer(j->au.cert.data, j->au.cert.len,
			 j->au.id_type, j->au.id.data, j->au.id.len,
			 j->au.ca)) == NULL ||
		    ike_auth_sig_verify(x, j->au.peer_oct.data,
			j->au.peer_oct.len, j->au.peer_auth.data,
			j->au.peer_auth.len) == -1)
			goto done;
	}
	if (j->au.key != NULL &&
	    ike_auth_sig_sign(j->au.key, j->au.oct.data, j->au.oct.len,
		&j->au.sig) == -1)
		goto done;
	ret = 0;
done:
	X509_free(x);
	return ret;
}

static void
cpuq_run(void *ctx, struct ike_wq_job *wj)
{
	struct cpuq_stock   *s = ctx;
	struct ike_cpuq_job *j = (struct ike_cpuq_job *)wj;
	uint64_t	     t0 = time_mono_ns();

	if (s->delay_ms > 0) { /* a slow job, for the tests */
		struct timespec d = { (time_t)(s->delay_ms / 1000),
			(long)(s->delay_ms % 1000) * 1000000 };

		nanosleep(&d, NULL);
	}
	j->rc = j->wq.kind == IKE_CPUQ_DH ? run_dh(ctx, j) : run_sig(j);
	j->ns = time_mono_ns() - t0;
}

int
ike_cpuq_open(struct ike_wq *q, unsigned workers, unsigned cap, uint16_t group,
    unsigned stock, char *err, size_t errlen)
{
	struct ike_wq_lane_cfg lc;
	struct cpuq_stock     *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&s->mu, NULL);
	/*
	 * The test hook: IKE_TEST_CPU_DELAY_MS=N makes every job take N ms
	 * more in its worker (queue full, SA gone before its DH, retransmits
	 * absorbed meanwhile: tests/integ/test_ike_workers.sh).
	 */
	if (getenv("IKE_TEST_CPU_DELAY_MS") != NULL)
		s->delay_ms = (unsigned)strtoul(getenv("IKE_TEST_CPU_DELAY_MS"),
		    NULL, 10);
	s->group = group;
	s->want = group != 0 && ike_dh_publen(group) > 0 ?
	    (stock < CPUQ_STOCK_MAX ? stock : CPUQ_STOCK_MAX) :
	    0;
	memset(&lc, 0, sizeof(lc));
	lc.name = "ike-crypto";
	lc.workers = workers;
	lc.cap = cap;
	lc.ctx = s;
	lc.ctx_free = stock_free;
	lc.run = cpuq_run;
	lc.idle = s->want > 0 ? stock_fill : NULL;
	return ike_wq_lane(q, IKE_WQ_CPU, &lc, err, errlen);
}

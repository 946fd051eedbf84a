/*
 * The N3IWF's public-key work, handed to the CPU lane of its worker pool
 * (ike/cpuq.h) and taken back in the event loop:
 *
 *  - IKE_SA_INIT's DH (psk, cert, qkd+dh): the new SA waits in the table
 *    in SA_INIT, as a qkd one waits for kmsd (a retransmitted IKE_SA_INIT
 *    is absorbed); the job makes our KE data and the SK_* keys; the
 *    response goes when it is back. Admission: a new IKE_SA_INIT that
 *    finds the lane full (crypto_queue) is dropped unanswered and
 *    counted: no state, no answer to amplify, the UE retransmits later.
 *  - IKE_AUTH's signatures: the peer's CERT and AUTH checked, our AUTH
 *    signed. The request is parked (sa->xc.parked: its retransmits are
 *    absorbed) and processed again, as received, with the results in
 *    n->sig_done, as the PPK does. Work of an admitted SA is never
 *    refused: one job per SA at most, the table bounds them.
 *
 * A job whose SA is gone (expired, deleted) when it comes back is freed,
 * which wipes its keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "ike/cpuq.h"
#include "ike/endpoint.h"
#include "ike/n3iwf_int.h"
#include "ike/pld.h"

/* ---- IKE_SA_INIT ---- */

int
n3iwf_cpu_init(struct n3 *n, struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_pld *pl)
{
	struct ike_cpuq_job *j;
	unsigned long	     held;

	if (ike_wq_full(n->wq, IKE_WQ_CPU)) {
		n->stats.cpu_busy++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn("crypto queue full: IKE_SA_INIT dropped, the "
				 "UE retransmits (%lu more not logged)",
			    held);
		return -1;
	}
	if (pl->ke.data.len > IKE_CPUQ_KE_MAX) {
		ike_ep_init_notify(&n->ep, p->natt, &p->from, sa->spi_i,
		    IKE_N_INVALID_SYNTAX, NULL, 0);
		return -1;
	}
	if ((j = ike_cpuq_job_new(IKE_CPUQ_DH)) == NULL)
		return -1;
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	j->dh.group = sa->prop.ke[0];
	j->dh.encr = sa->prop.encr;
	j->dh.encr_bits = sa->prop.encr_bits;
	j->dh.integ = sa->prop.integ;
	memcpy(j->dh.peer, pl->ke.data.p, pl->ke.data.len);
	j->dh.peer_len = pl->ke.data.len;
	memcpy(j->dh.ni, sa->ni, sa->ni_len);
	j->dh.ni_len = sa->ni_len;
	memcpy(j->dh.nr, sa->nr, sa->nr_len);
	j->dh.nr_len = sa->nr_len;
	if (buf_add(&sa->init_req, p->data, p->len) == -1 ||
	    ike_ep_add(&n->ep, sa) == -1) {
		ike_cpuq_job_free(j);
		return -1;
	}
	sa->state = SA_INIT;
	ike_wq_submit(n->wq, &j->wq);
	return 0;
}

/* A finished DH: the IKE_SA_INIT response, or nothing (SA gone). */
static void
n3_init_done(struct n3 *n, struct ike_cpuq_job *j)
{
	struct ike_sa	   *sa = ike_ep_find(&n->ep, j->spi_i, j->spi_r);
	struct ike_sa_keys *k;

	if (sa == NULL || sa->state != SA_INIT || sa->init_resp.len > 0) {
		log_debug("DH for an IKE SA that is gone: keys wiped");
		return; /* the caller frees j, which wipes the keys */
	}
	sa->st.init_dh_ns += j->ns;
	if (j->rc == -1) {
		ike_ep_init_notify(&n->ep, sa->natt, &sa->peer, sa->spi_i,
		    IKE_N_INVALID_SYNTAX, NULL, 0);
		sa->state = SA_DEAD;
		return;
	}
	log_debug("DH %s by a crypto worker in %.3f ms%s",
	    ike_xf_name(IKE_XF_KE, j->dh.group), (double)j->ns / 1e6,
	    j->dh.stocked ? " (key pair from the stock)" : "");
	k = sa->keys; /* the SA takes the keys, the job frees the empty set */
	sa->keys = j->dh.keys;
	j->dh.keys = k;
	if (n3iwf_init_resume(n, sa, j->dh.pub, j->dh.pub_len) == -1)
		sa->state = SA_DEAD;
}

/* ---- IKE_AUTH ---- */

/* The peer's CERT, ID and AUTH, checked as ike_sa_check_auth() does. */
static int
sig_verify_in(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl,
    struct ike_cpuq_job *j)
{
	if (!IKE_PLD_HAS(pl, IKE_PL_IDI) || !IKE_PLD_HAS(pl, IKE_PL_AUTH)) {
		log_warn("IKE_AUTH without IDi or AUTH");
		return -1;
	}
	if (pl->auth.method != IKE_AUTH_DIGITAL_SIG) {
		log_warn("peer AUTH method %u, expected %u", pl->auth.method,
		    IKE_AUTH_DIGITAL_SIG);
		return -1;
	}
	if (pl->ncert < 1 || pl->cert[0].enc != IKE_CERT_X509_SIG) {
		log_warn("peer signs but sent no X.509 CERT payload");
		return -1;
	}
	j->au.verify = 1;
	j->au.ca = n->ep.ca;
	j->au.id_type = pl->idi.type;
	return buf_add(&j->au.cert, pl->cert[0].data.p, pl->cert[0].data.len) ==
		    -1 ||
		buf_add(&j->au.id, pl->idi.data.p, pl->idi.data.len) == -1 ||
		buf_add(&j->au.peer_auth, pl->auth.data.p, pl->auth.data.len) ==
		    -1 ||
		ike_sa_octets(sa, 1, 0, &pl->idi.body, &j->au.peer_oct) == -1 ?
	    -1 :
	    0;
}

/* Our ID' (sa->my_id, as n3_add_idr will send it) and AUTH octets. */
static int
sig_sign_in(struct n3 *n, struct ike_sa *sa, struct ike_cpuq_job *j)
{
	struct ike_chain c;
	struct ike_bytes idb;
	struct buf	 scratch;
	int		 r;

	ike_ep_inner_init(&scratch, &c);
	r = ike_sa_add_id(&c, IKE_PL_IDR, n->ep.cfg->id, n->ep.cert,
	    &sa->my_id);
	buf_free(&scratch);
	if (r == -1 || n->ep.key == NULL)
		return -1;
	idb.p = sa->my_id.data;
	idb.len = sa->my_id.len;
	j->au.key = n->ep.key;
	return ike_sa_octets(sa, 0, 0, &idb, &j->au.oct);
}

/* The request being processed, as received (a resumed one: its job's). */
static int
sig_req(struct n3 *n, struct ike_cpuq_job *j)
{
	const uint8_t *p = n->ep.pkt.data;
	size_t	       len = n->ep.pkt.len;

	if (n->ppk_done != NULL) {
		p = n->ppk_done->req;
		len = n->ppk_done->req_len;
	}
	if ((j->req = malloc(len)) == NULL)
		return -1;
	memcpy(j->req, p, len);
	j->req_len = len;
	return 0;
}

/* Resumed: the job's verdict; the peer's ID' kept as check_auth does. */
static int
sig_result(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl,
    int verify)
{
	if (n->sig_done->rc == -1) {
		log_warn("peer AUTH (method %u) does not verify, or our "
			 "signature failed",
		    IKE_AUTH_DIGITAL_SIG);
		return -1;
	}
	if (!verify)
		return 0;
	buf_reset(&sa->peer_id);
	return buf_add(&sa->peer_id, pl->idi.body.p, pl->idi.body.len);
}

int
n3iwf_cpu_sig(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m,
    int verify)
{
	struct ike_cpuq_job *j;

	if (n->sig_done != NULL)
		return sig_result(n, sa, &m->pld, verify);
	if ((j = ike_cpuq_job_new(IKE_CPUQ_SIG)) == NULL)
		return -1;
	if ((verify && sig_verify_in(n, sa, &m->pld, j) == -1) ||
	    sig_sign_in(n, sa, j) == -1 || sig_req(n, j) == -1) {
		ike_cpuq_job_free(j);
		return -1;
	}
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	j->mid = m->hdr.msgid;
	ike_wq_submit(n->wq, &j->wq); /* admitted SA: never refused */
	sa->xc.parked = 1;
	return 1;
}

/* A finished signature job: the parked IKE_AUTH processed again. */
static void
n3_sig_done(struct n3 *n, struct ike_cpuq_job *j)
{
	struct ike_sa *sa = ike_ep_find(&n->ep, j->spi_i, j->spi_r);

	if (sa == NULL || !sa->xc.parked || sa->state != SA_AUTH ||
	    sa->xc.peer_mid != j->mid + 1) {
		log_debug("signature for an IKE SA that is gone: dropped");
		return;
	}
	sa->xc.parked = 0;
	log_debug("IKE_AUTH signature%s by a crypto worker in %.3f ms",
	    j->au.verify ? "s checked and made" : " made", (double)j->ns / 1e6);
	n->sig_done = j;
	n3iwf_auth_again(n, sa, j->req, j->req_len);
	n->sig_done = NULL;
}

void
n3iwf_cpu_done(struct n3 *n, struct ike_cpuq_job *j)
{
	if (j->wq.kind == IKE_CPUQ_DH)
		n3_init_done(n, j);
	else
		n3_sig_done(n, j);
}

/*
 * The N3IWF's exchanges after IKE_SA_INIT, on the endpoint core's events
 * (ike/n3iwf.c runs the loop): IKE_AUTH (rfc7296: PSK/signature AUTH and
 * one Child SA; NWu: certificate AUTH, EAP-5G rounds with the AMF
 * emulator, AUTH keyed by KN3IWF, CP, NAS_IP4_ADDRESS, NAS_TCP_PORT and
 * the signalling Child SA), the PPK of qkd+dh fetched in a kmsq worker
 * and the signatures made and checked in a crypto worker
 * (ike/n3iwf_cpu.c) while its IKE_AUTH is parked, the user-plane
 * CREATE_CHILD_SA the N3IWF starts (NWu), and INFORMATIONAL.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "ike/amf.h"
#include "ike/crypto.h"
#include "ike/eap5g.h"
#include "ike/endpoint.h"
#include "ike/ikev2.h"
#include "ike/kmsq.h"
#include "ike/msg.h"
#include "ike/n3iwf_int.h"
#include "ike/pld.h"
#include "ike/proposal.h"
#include "ike/qkd.h"
#include "ike/rekey.h"
#include "ike/sa.h"

/* ---- IKE_AUTH ---- */

static void
n3_fail(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m, uint16_t type,
    const char *why)
{
	log_warn("IKE_AUTH from the UE refused (%s): %s", ike_notify_name(type),
	    why);
	(void)ike_ep_respond_notify(&n->ep, sa, m, type);
	sa->state = SA_DEAD;
}

/* n3_ppk() said no: TEMPORARY_FAILURE (budget, queue) or AUTHENTICATION_FAILED. */
static void
n3_fail_ppk(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m,
    uint16_t type)
{
	n3_fail(n, sa, m, type,
	    type == IKE_N_TEMPORARY_FAILURE ?
		"QKD key budget spent or kmsd queue full" :
		"PPK required but not available");
}

/* No PPK: go on without it (0), or refuse with `type` (ppk_required). */
static uint16_t
n3_no_ppk(const struct n3 *n, uint16_t type)
{
	return n->ep.cfg->ppk_required ? type : 0;
}

/* The PPK's dec_keys came back (n->ppk_done): mix it in, or do without. */
static uint16_t
n3_ppk_use(struct n3 *n, struct ike_sa *sa)
{
	struct ike_kmsq_job *j = n->ppk_done;

	sa->st.init_kmsd_ns += j->ns;
	if (j->rc == -1) {
		log_warn("PPK %s from %s unavailable: %s", j->ids[0], j->sae,
		    j->why);
		return n3_no_ppk(n, IKE_N_AUTHENTICATION_FAILED);
	}
	ike_qkd_keys_free(sa->qk);
	sa->qk = j->keys; /* the SA owns (and wipes) it now */
	j->keys = NULL;
	return ike_sa_keys_ppk(sa) == -1 ? IKE_N_AUTHENTICATION_FAILED : 0;
}

/* Parks the IKE_AUTH request (n->ep.pkt, as received) in a dec_keys job. */
static int
n3_ppk_submit(struct n3 *n, struct ike_sa *sa, const struct ike_notify *pid)
{
	struct ike_kmsq_job *j;

	if ((j = ike_kmsq_job_new()) == NULL ||
	    (j->req = malloc(n->ep.pkt.len)) == NULL) {
		ike_kmsq_job_free(j);
		return -1;
	}
	memcpy(j->req, n->ep.pkt.data, n->ep.pkt.len);
	j->req_len = n->ep.pkt.len;
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	snprintf(j->sae, sizeof(j->sae), "%s", (const char *)sa->peer_sae);
	memcpy(j->ids[0], pid->data.p + 1, pid->data.len - 1);
	j->ids[0][pid->data.len - 1] = '\0';
	j->dec = 1;
	j->n = 1;
	if (ike_kmsq_submit(n->wq, j) == -1) { /* checked before */
		ike_kmsq_job_free(j);
		return -1;
	}
	sa->xc.parked = 1;
	return 0;
}

/*
 * qkd+dh: RFC 8784. PPK_IDENTITY (opaque, the ETSI key ID) -> ONE
 * dec_keys at kmsd, within the key budgets, in a kmsq worker: the request
 * is parked in the job (sa->xc.parked) and processed again when the key
 * comes (n3_ppk_done). 0: go on (sa->ppk_used says whether the PPK is
 * in) or parked; else the notify that refuses the IKE SA (with
 * ppk_required): AUTHENTICATION_FAILED, or TEMPORARY_FAILURE when over
 * budget or the queue is full.
 */
static uint16_t
n3_ppk(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	const struct ike_notify *pid = ike_pld_notify(pl, IKE_N_PPK_IDENTITY);
	const char		*which;
	unsigned long		 held;

	if (n->ep.cfg->mode != IKE_MODE_QKD_DH)
		return 0;
	if (n->ppk_done != NULL) /* resumed: checks and budget were done */
		return n3_ppk_use(n, sa);
	if (pid == NULL || pid->data.len < 2 ||
	    pid->data.len > ETSI_KEY_ID_MAX + 1 ||
	    (pid->data.p[0] != IKE_PPK_ID_OPAQUE &&
		pid->data.p[0] != IKE_PPK_ID_FIXED)) {
		log_warn("no usable PPK_IDENTITY from the UE");
		return n3_no_ppk(n, IKE_N_AUTHENTICATION_FAILED);
	}
	if (sa->peer_sae[0] == '\0') {
		log_warn(
		    "PPK %.*s: the UE's SAE ID is unknown (no QKD_REQUEST, no "
		    "--peer-sae)",
		    (int)pid->data.len - 1, (const char *)pid->data.p + 1);
		return n3_no_ppk(n, IKE_N_AUTHENTICATION_FAILED);
	}
	if (ike_kmsq_full(n->wq)) {
		n->stats.queue_full++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn(
			    "kmsd queue full: PPK of SAE %s not fetched (%lu more "
			    "refusals not logged)",
			    sa->peer_sae, held);
		return n3_no_ppk(n, IKE_N_TEMPORARY_FAILURE);
	}
	if (n3iwf_budget(n, &sa->peer, (const char *)sa->peer_sae, 1, &which) ==
	    -1)
		return n3_no_ppk(n, IKE_N_TEMPORARY_FAILURE);
	return n3_ppk_submit(n, sa, pid) == -1 ? IKE_N_AUTHENTICATION_FAILED :
						 0;
}

/* IDr, and CERT + AUTH signed by a crypto worker, or PSK-style AUTH. */
/*
 * The PPK step of the first IKE_AUTH (n3_ppk): true when the caller stops
 * here (refused, or parked until the PPK comes). Skipped when the request
 * comes back from its signatures: the PPK step was done before them.
 */
static bool
n3_ppk_step(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	uint16_t nt;

	if (n->sig_done != NULL)
		return false;
	if ((nt = n3_ppk(n, sa, &m->pld)) != 0) {
		n3_fail_ppk(n, sa, m, nt);
		return true;
	}
	return sa->xc.parked != 0;
}

static int
n3_add_idr(struct n3 *n, struct ike_sa *sa, struct ike_chain *c, int with_cert)
{
	X509			  *cert = with_cert ? n->ep.cert : NULL;
	const struct ike_cpuq_job *s = n->sig_done;

	if (ike_sa_add_id(c, IKE_PL_IDR, n->ep.cfg->id, cert, &sa->my_id) == -1)
		return -1;
	if (cert == NULL)
		return ike_sa_add_auth(sa, c, NULL, &sa->my_id, 0);
	if (s == NULL || s->au.sig.len == 0 ||
	    ike_pld_add_cert(c, IKE_PL_CERT, IKE_CERT_X509_SIG,
		n->ep.cert_der.data, n->ep.cert_der.len) == -1)
		return -1;
	return ike_pld_add_auth(c, IKE_AUTH_DIGITAL_SIG, s->au.sig.data,
	    s->au.sig.len);
}

/* SAi2 of the first IKE_AUTH: choose, keep the UE's SPI. */
static int
n3_choose_esp(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	if (!IKE_PLD_HAS(pl, IKE_PL_TSI) || !IKE_PLD_HAS(pl, IKE_PL_TSR) ||
	    ike_prop_choose_esp(n->ep.cfg, pl, &sa->esp_offer) == -1)
		return -1;
	memcpy(&sa->child[0].spi_i, sa->esp_offer.spi, 4);
	return 0;
}

/* Child SA 1 (signalling): our SPI, keys, SA + TS payloads. */
static int
n3_child1(struct n3 *n, struct ike_sa *sa, struct ike_chain *c)
{
	struct ike_child *ch = &sa->child[0];
	char		  ip[INET_ADDRSTRLEN];

	ch->prop = sa->esp_offer;
	if (ike_random((uint8_t *)&ch->spi_r, 4) == -1)
		return -1;
	memcpy(ch->prop.spi, &ch->spi_r, 4);
	if (ike_sa_child_keys(sa, ch, sa->ni, sa->ni_len, sa->nr, sa->nr_len) ==
	    -1)
		return -1;
	sa->nchild = 1;
	/* NWu: the UE's inner address <-> NAS_IP; kept for rekeys */
	ike_prop_ts_any(&ch->ts_ue);
	ike_prop_ts_any(&ch->ts_n3);
	if (n->ep.cfg->profile == IKE_PROFILE_NWU &&
	    (ike_prop_ts_host(&ch->ts_ue,
		 inet_ntop(AF_INET, &sa->cp_addr, ip, sizeof(ip))) == -1 ||
		ike_prop_ts_host(&ch->ts_n3, n->ep.cfg->nas_ip) == -1))
		return -1;
	ike_sa_log_fp(sa, "Child SA 1 (signalling)", ch);
	if (ike_pld_add_sa(c, &ch->prop, 1) == -1)
		return -1;
	return ike_pld_add_ts(c, IKE_PL_TSI, &ch->ts_ue) == -1 ||
		ike_pld_add_ts(c, IKE_PL_TSR, &ch->ts_n3) == -1 ?
	    -1 :
	    0;
}

/* CP reply: the UE's inner address (n3iwf_cp_alloc) with a /32 mask. */
static int
n3_add_cp(struct n3 *n, struct ike_sa *sa, struct ike_chain *c)
{
	struct ike_cp_pld    cp;
	static const uint8_t mask[4] = { 255, 255, 255, 255 };

	if (n3iwf_cp_alloc(n, sa) == -1)
		return -1;
	memset(&cp, 0, sizeof(cp));
	cp.type = IKE_CFG_REPLY;
	cp.nattr = 2;
	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	cp.attr[0].val.p = (const uint8_t *)&sa->cp_addr;
	cp.attr[0].val.len = 4;
	cp.attr[1].type = IKE_CP_INTERNAL_IP4_NETMASK;
	cp.attr[1].val.p = mask;
	cp.attr[1].val.len = 4;
	return ike_pld_add_cp(c, &cp);
}

static int
n3_add_nwu_cfg(struct n3 *n, struct ike_sa *sa, struct ike_chain *c)
{
	struct in_addr nas;
	uint8_t	       port[2] = { (uint8_t)(n->ep.cfg->nas_port >> 8),
		       (uint8_t)n->ep.cfg->nas_port };

	if (inet_pton(AF_INET, n->ep.cfg->nas_ip, &nas) != 1 ||
	    n3_add_cp(n, sa, c) == -1)
		return -1;
	return ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NAS_IP4_ADDRESS,
		   (const uint8_t *)&nas, 4) == -1 ||
		ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NAS_TCP_PORT, port,
		    2) == -1 ?
	    -1 :
	    0;
}

static void
n3_auth_rfc(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld	*pl = &m->pld;
	const struct ike_notify *np;
	struct ike_chain	 c;
	struct buf		 in;
	uint8_t			 method = ike_prop_auth_method(n->ep.cfg, 0);
	int			 ok, r;

	sa->auth_started = 1;
	if (n3_ppk_step(n, sa, m))
		return;
	np = ike_pld_notify(pl, IKE_N_NO_PPK_AUTH);
	if (n->ep.cfg->mode == IKE_MODE_QKD_DH && !sa->ppk_used) {
		/* RFC 8784: without the PPK only NO_PPK_AUTH can authenticate. */
		if (np == NULL || np->data.len < 5 || np->data.p[0] != method ||
		    ike_sa_check_auth(sa, pl, method, n->ep.ca, NULL,
			np->data.p + 4, np->data.len - 4, 1) == -1) {
			n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
			    "no PPK and no valid NO_PPK_AUTH");
			return;
		}
	} else if (method == IKE_AUTH_DIGITAL_SIG) {
		if ((r = n3iwf_cpu_sig(n, sa, m, 1)) == 1)
			return; /* parked until a crypto worker has checked it */
		if (r == -1) {
			n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
			    "AUTH does not verify");
			return;
		}
	} else if (ike_sa_check_auth(sa, pl, method, n->ep.ca, NULL, NULL, 0,
		       0) == -1) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    "AUTH does not verify");
		return;
	}
	if (n3_choose_esp(n, sa, pl) == -1) {
		n3_fail(n, sa, m, IKE_N_NO_PROPOSAL_CHOSEN,
		    "no acceptable ESP proposal");
		return;
	}
	ike_ep_inner_init(&in, &c);
	ok = n3_add_idr(n, sa, &c, method == IKE_AUTH_DIGITAL_SIG) == 0 &&
	    (!n->ep.cfg->tunnel || !IKE_PLD_HAS(pl, IKE_PL_CP) ||
		n3_add_cp(n, sa, &c) == 0) && /* tunnel: the UE's address */
	    n3_child1(n, sa, &c) == 0;
	if (ok && sa->ppk_used)
		ok = ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_PPK_IDENTITY,
			 NULL, 0) == 0;
	if (ok &&
	    ike_ep_respond(&n->ep, sa, IKE_AUTH, m->hdr.msgid, c.first, &in) ==
		0) {
		sa->st.auth_ns = ike_sa_lap(sa);
		ike_ep_established(&n->ep, sa);
	} else
		sa->state = SA_DEAD;
	buf_free(&in);
}

/* MID 1 of NWu: IDi, SAi2, TS, CP (and CERT + AUTH in cert mode). */
static void
n3_auth_nwu1(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld *pl = &m->pld;
	struct eap5g_msg      e;
	struct ike_chain      c;
	struct buf	      in, eap;
	int		      ok, r, cert = n->ep.cfg->mode == IKE_MODE_CERT;

	sa->auth_started = 1;
	if (!IKE_PLD_HAS(pl, IKE_PL_IDI)) {
		n3_fail(n, sa, m, IKE_N_INVALID_SYNTAX, "no IDi");
		return;
	}
	if (n3_ppk_step(n, sa, m))
		return;
	/* our AUTH signed (and in cert mode the UE's checked) by a worker */
	if ((r = n3iwf_cpu_sig(n, sa, m, cert)) == 1)
		return;
	if (r == -1) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    cert ? "UE certificate AUTH does not verify" :
			   "cannot sign our AUTH");
		return;
	}
	if (!cert) {
		buf_reset(&sa->peer_id); /* a resumed request adds it again */
		if (buf_add(&sa->peer_id, pl->idi.body.p, pl->idi.body.len) ==
		    -1)
			return;
	}
	if (n3_choose_esp(n, sa, pl) == -1) {
		n3_fail(n, sa, m, IKE_N_NO_PROPOSAL_CHOSEN,
		    "no acceptable ESP proposal");
		return;
	}
	if ((sa->amf = amf_new(&n->ep.sub)) == NULL)
		return;
	amf_set_subs(sa->amf, n->ep.subs);
	amf_set_ciphering(sa->amf, (uint8_t)n->ep.cfg->nas_ea);
	buf_init(&eap, 256);
	memset(&e, 0, sizeof(e));
	e.code = EAP_CODE_REQUEST;
	e.id = ++sa->eap_id;
	e.msg_id = EAP5G_START;
	ike_ep_inner_init(&in, &c);
	ok = n3_add_idr(n, sa, &c, 1) == 0 && eap5g_encode(&e, &eap) == 0 &&
	    ike_pld_add_eap(&c, eap.data, eap.len) == 0;
	if (ok && sa->ppk_used)
		ok = ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_PPK_IDENTITY,
			 NULL, 0) == 0;
	if (!ok ||
	    ike_ep_respond(&n->ep, sa, IKE_AUTH, m->hdr.msgid, c.first, &in) ==
		-1)
		sa->state = SA_DEAD;
	buf_free(&in);
	buf_free(&eap);
}

/* MID 2..: one EAP-5G round with the AMF emulator. */
static void
n3_auth_eap(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld *pl = &m->pld;
	struct eap5g_msg      rs, rq;
	struct ike_chain      c;
	struct buf	      in, eap, nas;
	int		      r;

	if (!IKE_PLD_HAS(pl, IKE_PL_EAP) ||
	    eap5g_decode(pl->eap.raw.p, pl->eap.raw.len, &rs) == -1 ||
	    rs.code != EAP_CODE_RESPONSE || rs.msg_id != EAP5G_NAS ||
	    rs.id != sa->eap_id) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    "bad EAP-5G response");
		return;
	}
	buf_init(&nas, IKE_MSG_MAX);
	buf_init(&eap, IKE_MSG_MAX);
	r = amf_handle(sa->amf, rs.nas, rs.nas_len, &nas);
	memset(&rq, 0, sizeof(rq));
	if (r == -1 || amf_failed(sa->amf)) {
		log_warn(
		    "5G registration of the UE refused by the AMF emulator");
		rq.code = EAP_CODE_FAILURE;
		rq.id = rs.id;
		sa->state = SA_DEAD;
	} else if (amf_auth_done(sa->amf)) {
		if (amf_kn3iwf(sa->amf, sa->kn3iwf) == -1)
			goto out;
		sa->have_kn3iwf = 1;
		sa->eap_done = 1;
		n->ep.sub.sqn = amf_sqn(sa->amf);
		rq.code = EAP_CODE_SUCCESS;
		rq.id = rs.id;
	} else {
		rq.code = EAP_CODE_REQUEST;
		rq.id = ++sa->eap_id;
		rq.msg_id = EAP5G_NAS;
		rq.nas = nas.data;
		rq.nas_len = nas.len;
	}
	ike_ep_inner_init(&in, &c);
	if (eap5g_encode(&rq, &eap) == 0 &&
	    ike_pld_add_eap(&c, eap.data, eap.len) == 0)
		(void)ike_ep_respond(&n->ep, sa, IKE_AUTH, m->hdr.msgid,
		    c.first, &in);
	buf_free(&in);
out:
	buf_free(&nas);
	buf_free(&eap);
}

/* The last IKE_AUTH: AUTH keyed by KN3IWF, CP, signalling Child SA. */
static void
n3_auth_final(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_chain c;
	struct buf	 in;
	int		 ok;

	if (ike_sa_check_auth(sa, &m->pld, IKE_AUTH_PSK, NULL, &sa->peer_id,
		NULL, 0, 0) == -1) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    "AUTH keyed by KN3IWF does not verify");
		return;
	}
	ike_ep_inner_init(&in, &c);
	ok = ike_sa_add_auth(sa, &c, NULL, &sa->my_id, 0) == 0 &&
	    n3_add_nwu_cfg(n, sa, &c) == 0 && n3_child1(n, sa, &c) == 0;
	if (!ok ||
	    ike_ep_respond(&n->ep, sa, IKE_AUTH, m->hdr.msgid, c.first, &in) ==
		-1) {
		sa->state = SA_DEAD;
		buf_free(&in);
		return;
	}
	buf_free(&in);
	sa->st.auth_ns = ike_sa_lap(sa);
	sa->state = SA_CHILD;
	n3iwf_tun_auth(n, sa);	  /* tunnel: signalling SA, the UE to NAS */
	if (n->ep.cfg->nas_tcp) { /* TS 23.502 4.12.5: on the PDU session */
		log_debug("user-plane Child SA waits for the PDU session "
			  "request over NAS/TCP");
		return;
	}
	if (n3iwf_create_child(n, sa) == -1)
		sa->state = SA_DEAD;
}

/* ---- the user-plane Child SA (N3IWF -> UE CREATE_CHILD_SA) ---- */

int
n3iwf_create_child(struct n3 *n, struct ike_sa *sa)
{
	struct ike_child    *ch = &sa->child[1];
	struct ike_chain     c;
	struct buf	     in;
	struct in_addr	     up;
	/* TS 24.502 9.3.1.2.2: length, PDU session ID 1, 1 QFI (1), default CSA. */
	static const uint8_t qos[] = { 4, 1, 1, 1, 0x01 };
	int		     ok;

	memset(ch, 0, sizeof(*ch));
	ike_prop_esp(n->ep.cfg, &ch->prop);
	ch->up = 1;
	if (ike_random((uint8_t *)&ch->spi_r, 4) == -1 ||
	    ike_random(sa->cc_nonce, sizeof(sa->cc_nonce)) == -1 ||
	    inet_pton(AF_INET, n->ep.cfg->up_ip, &up) != 1)
		return -1;
	memcpy(ch->prop.spi, &ch->spi_r, 4);
	ike_prop_ts_any(&ch->ts_ue); /* the user plane: any traffic */
	ike_prop_ts_any(&ch->ts_n3);
	ike_ep_inner_init(&in, &c);
	ok = ike_pld_add_sa(&c, &ch->prop, 1) == 0 &&
	    ike_pld_add_nonce(&c, sa->cc_nonce, sizeof(sa->cc_nonce)) == 0 &&
	    ike_pld_add_ts(&c, IKE_PL_TSI, &ch->ts_n3) == 0 &&
	    ike_pld_add_ts(&c, IKE_PL_TSR, &ch->ts_ue) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_5G_QOS_INFO, qos,
		sizeof(qos)) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_UP_IP4_ADDRESS,
		(const uint8_t *)&up, 4) == 0;
	ok = ok &&
	    ike_ep_request(&n->ep, sa, IKE_CREATE_CHILD_SA, c.first, &in) == 0;
	buf_free(&in);
	return ok ? 0 : -1;
}

static void
n3_child_done(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_child     *ch = &sa->child[1];
	struct ike_prop_desc  got;
	const struct ike_pld *pl = &m->pld;

	if (!IKE_PLD_HAS(pl, IKE_PL_NONCE) ||
	    ike_prop_reply_esp(&ch->prop, pl, &got) == -1 ||
	    ike_prop_ts_reply(pl, &ch->ts_n3, &ch->ts_ue) == -1) {
		log_warn("the UE refused the user-plane Child SA");
		n3iwf_tun_child(n, sa, false);
		sa->state = SA_DEAD;
		return;
	}
	ch->prop = got; /* the UE's SPI and ESN choice */
	memcpy(&ch->spi_i, got.spi, 4);
	if (ike_sa_child_keys(sa, ch, sa->cc_nonce, sizeof(sa->cc_nonce),
		pl->nonce.p, pl->nonce.len) == -1) {
		sa->state = SA_DEAD;
		return;
	}
	sa->nchild = 2;
	ike_sa_log_fp(sa, "Child SA 2 (user plane)", ch);
	sa->st.child_ns = ike_sa_lap(sa);
	ike_ep_established(&n->ep, sa); /* tunnel: installs it */
	n3iwf_tun_child(n, sa, true);	/* tunnel: the Accept goes */
}

/*
 * A finished PPK dec_keys: process the parked IKE_AUTH again, as received,
 * now with the key (n3_ppk sees n->ppk_done); or wipe it, the SA is gone.
 */
void
n3iwf_ppk_done(struct n3 *n, struct ike_kmsq_job *j)
{
	struct ike_sa *sa = ike_ep_find(&n->ep, j->spi_i, j->spi_r);

	if (sa == NULL || !sa->xc.parked || sa->state != SA_AUTH) {
		if (j->rc == 0) {
			n->stats.keys_wiped += j->n;
			log_info(
			    "PPK %s for SAE %s came after its IKE SA was gone: "
			    "wiped unused",
			    j->ids[0], j->sae);
		}
		return; /* the caller frees j, which wipes the key */
	}
	if (j->rc == -1)
		n->stats.draw_fail++;
	sa->xc.parked = 0;
	n->ppk_done = j;
	n3iwf_auth_again(n, sa, j->req, j->req_len);
	n->ppk_done = NULL;
}

void
n3iwf_auth_again(struct n3 *n, struct ike_sa *sa, const uint8_t *req,
    size_t len)
{
	struct ike_sk_ctx k;
	struct ike_msg	  m;

	ike_sa_sk(sa, 0, &k);
	memset(&m, 0, sizeof(m));
	if (ike_msg_parse(req, len, &k, &m) == -1) {
		sa->state = SA_DEAD; /* it parsed before: cannot happen */
		ike_msg_free(&m);
		return;
	}
	if (n->ep.cfg->profile == IKE_PROFILE_RFC7296)
		n3_auth_rfc(n, sa, &m);
	else
		n3_auth_nwu1(n, sa, &m);
	ike_msg_free(&m);
}

/* ---- dispatch (ike/n3iwf.c's loop) ---- */

void
n3iwf_request(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	switch (m->hdr.exchange) {
	case IKE_AUTH:
		if (sa->state != SA_AUTH) {
			(void)ike_ep_respond_notify(&n->ep, sa, m,
			    IKE_N_INVALID_SYNTAX);
			return;
		}
		if (n->ep.cfg->profile == IKE_PROFILE_RFC7296)
			n3_auth_rfc(n, sa, m);
		else if (!sa->auth_started)
			n3_auth_nwu1(n, sa, m);
		else if (!sa->eap_done)
			n3_auth_eap(n, sa, m);
		else
			n3_auth_final(n, sa, m);
		return;
	case IKE_CREATE_CHILD_SA: ike_rekey_request(&n->ep, sa, m); return;
	case IKE_INFORMATIONAL:
		if (ike_rekey_informational(&n->ep, sa, m)) {
			log_debug("IKE SA deleted by the UE");
			if (sa->state != SA_ESTABLISHED)
				ike_ep_csv_failed(&n->ep, sa);
			sa->state = SA_DEAD;
		}
		return;
	default:
		(void)ike_ep_respond_notify(&n->ep, sa, m,
		    IKE_N_NO_ADDITIONAL_SAS);
		return;
	}
}

void
n3iwf_response(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	if (ike_rekey_response(&n->ep, sa, m))
		return;
	if (sa->xc.req_exchange == IKE_CREATE_CHILD_SA && sa->state == SA_CHILD)
		n3_child_done(n, sa, m);
	else if (sa->xc.req_exchange == IKE_INFORMATIONAL &&
	    sa->state == SA_DELETING)
		sa->state = SA_DEAD;
}

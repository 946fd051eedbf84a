/*
 * The UE's IKE_AUTH (ike/ue_int.h): the first request (IDi, [CERT, AUTH],
 * CP, SAi2, TS, the PPK of qkd+dh), the N3IWF's AUTH checked, the EAP-5G
 * rounds of NWu against the N3IWF's AMF emulator and the final AUTH keyed
 * by KN3IWF, and the signalling Child SA from the last response.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/eap5g.h"
#include "ike/ikev2.h"
#include "ike/proposal.h"
#include "ike/ue_int.h"
#include "ike/usim.h"

static int
ue_child_from(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl,
    const struct ike_prop_desc *offer, struct ike_child *ch)
{
	/* We offered 0.0.0.0/0 both ways; NWu narrows to inner <-> NAS_IP. */
	ike_prop_ts_any(&ch->ts_ue);
	ike_prop_ts_any(&ch->ts_n3);
	if (ike_prop_ts_reply(pl, &ch->ts_ue, &ch->ts_n3) == -1 ||
	    ike_prop_reply_esp(offer, pl, &ch->prop) == -1) {
		FAIL(u, "no acceptable Child SA in the IKE_AUTH response");
		return -1;
	}
	memcpy(&ch->spi_r, ch->prop.spi, 4);
	return 0;
}

/* PPK_IDENTITY (and NO_PPK_AUTH) in the first IKE_AUTH request. */
static int
ue_add_ppk(struct ue *u, struct ike_sa *sa, struct ike_chain *c,
    const struct buf *id_body)
{
	uint8_t		 pid[1 + ETSI_KEY_ID_MAX];
	size_t		 n;
	struct buf	 tmp;
	struct ike_chain tc;
	int		 ret = -1;

	if (!sa->ppk_used)
		return 0;
	n = strlen(sa->qk->id[0]);
	pid[0] = IKE_PPK_ID_FIXED;
	memcpy(pid + 1, sa->qk->id[0], n);
	if (ike_pld_add_notify(c, 0, NULL, 0, IKE_N_PPK_IDENTITY, pid, n + 1) ==
	    -1)
		return -1;
	/* NO_PPK_AUTH: our AUTH without the PPK (not with EAP: no AUTH then). */
	if (u->ep.cfg->ppk_required || id_body == NULL)
		return 0;
	ike_ep_inner_init(&tmp, &tc);
	if (ike_sa_add_auth(sa, &tc,
		u->ep.cfg->mode == IKE_MODE_CERT ? u->ep.key : NULL, id_body,
		1) == -1 ||
	    tmp.len < 8)
		goto done;
	/* The AUTH payload body after the generic header: method, 3 reserved, data. */
	ret = ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NO_PPK_AUTH, tmp.data + 4,
	    tmp.len - 4);
done:
	buf_free(&tmp);
	return ret;
}

/* The N3IWF's PPK decision (RFC 8784: PPK_IDENTITY in its response). */
static int
ue_ppk_answer(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	if (!sa->ppk_used || ike_pld_notify(pl, IKE_N_PPK_IDENTITY) != NULL)
		return 0;
	if (u->ep.cfg->ppk_required) {
		FAIL(u, "the N3IWF did not use the PPK (ppk_required)");
		return -1;
	}
	log_warn("the N3IWF did not use the PPK: IKE SA without it");
	memcpy(sa->keys, sa->keys_noppk, sizeof(*sa->keys));
	sa->ppk_used = 0;
	return 0;
}

static int
ue_cp_request(struct ike_chain *c)
{
	struct ike_cp_pld cp;

	memset(&cp, 0, sizeof(cp));
	cp.type = IKE_CFG_REQUEST;
	cp.nattr = 1;
	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	return ike_pld_add_cp(c, &cp);
}

/* The first IKE_AUTH request: IDi, [CERT, AUTH], SAi2, TS, [CP (nwu, tunnel), PPK]. */
static int
ue_auth1(struct ue *u, struct ike_sa *sa, struct ike_msg *m)
{
	const struct ikecfg *c = u->ep.cfg;
	struct ike_prop_desc esp;
	struct ike_chain     ch;
	struct buf	     in;
	struct buf	    *idb = &sa->my_id;
	X509 *cert = c->mode == IKE_MODE_CERT ? u->ep.cert : NULL;
	int   nwu = c->profile == IKE_PROFILE_NWU, ok, ret;

	ike_prop_esp(c, &esp);
	if (ike_random(esp.spi, 4) == -1)
		return -1;
	memcpy(&sa->child[0].spi_i, esp.spi, 4);
	ike_ep_inner_init(&in, &ch);
	ok = ike_sa_add_id(&ch, IKE_PL_IDI, c->id, cert, idb) == 0;
	if (ok && cert != NULL)
		ok = ike_pld_add_cert(&ch, IKE_PL_CERT, IKE_CERT_X509_SIG,
			 u->ep.cert_der.data, u->ep.cert_der.len) == 0;
	/* NWu: the UE authenticates by EAP-5G (plus its signature in cert mode). */
	if (ok && (!nwu || cert != NULL))
		ok = ike_sa_add_auth(sa, &ch, cert ? u->ep.key : NULL, idb,
			 0) == 0;
	/* CP request: nwu, and the tunnel (its TUN takes the address) */
	ok = ok && ((!nwu && !c->tunnel) || ue_cp_request(&ch) == 0);
	ok = ok && ike_pld_add_sa(&ch, &esp, 1) == 0 &&
	    ike_prop_add_ts_any(&ch, IKE_PL_TSI) == 0 &&
	    ike_prop_add_ts_any(&ch, IKE_PL_TSR) == 0;
	ok = ok && ue_add_ppk(u, sa, &ch, nwu ? NULL : idb) == 0;
	ret = ok ? ue_exchange(u, sa, IKE_AUTH, ch.first, &in, m) : -1;
	buf_free(&in);
	if (ret == -1 && u->fail[0] == '\0')
		FAIL(u, "cannot build the IKE_AUTH request");
	return ret;
}

/* Checks the N3IWF's IDr/CERT/AUTH in the MID 1 response. */
static int
ue_check_n3iwf(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	uint8_t	    method = ike_prop_auth_method(u->ep.cfg, 1);
	uint16_t    et;
	const char *err;

	if ((err = ue_error_notify(pl, &et)) != NULL) {
		FAIL(u, "the N3IWF refused IKE_AUTH: %s (%u)", err, et);
		return -1;
	}
	if (ue_ppk_answer(u, sa, pl) == -1)
		return -1;
	if (ike_sa_check_auth(sa, pl, method, u->ep.ca, NULL, NULL, 0, 0) ==
	    -1) {
		FAIL(u, "the N3IWF's AUTH does not verify");
		return -1;
	}
	return 0;
}

static int
ue_child1_done(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	struct ike_prop_desc esp;
	struct ike_child    *ch = &sa->child[0];

	ike_prop_esp(u->ep.cfg, &esp);
	if (ue_child_from(u, sa, pl, &esp, ch) == -1 ||
	    ike_sa_child_keys(sa, ch, sa->ni, sa->ni_len, sa->nr, sa->nr_len) ==
		-1)
		return -1;
	sa->nchild = 1;
	ike_sa_log_fp(sa, "Child SA 1 (signalling)", ch);
	return 0;
}

/*
 * One EAP-5G round: the answer to the EAP-Request in pl in eap_out, or
 * *success when pl holds EAP-Success (KN3IWF made). 0, or -1 (u->fail).
 */
static int
ue_eap_round(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl,
    struct buf *eap_out, bool *success)
{
	struct eap5g_msg rq, rs;
	struct buf	 nas, an;
	int		 ret = -1;

	if (!IKE_PLD_HAS(pl, IKE_PL_EAP) ||
	    eap5g_decode(pl->eap.raw.p, pl->eap.raw.len, &rq) == -1) {
		FAIL(u, "IKE_AUTH response without a valid EAP-5G payload");
		return -1;
	}
	if (rq.code == EAP_CODE_SUCCESS) {
		if (usim_kn3iwf(sa->usim, sa->kn3iwf) == -1) {
			FAIL(u, "EAP-Success before NAS security was up");
			return -1;
		}
		sa->have_kn3iwf = 1;
		*success = true;
		return 0;
	}
	if (rq.code != EAP_CODE_REQUEST) {
		FAIL(u, "the N3IWF sent EAP-Failure: 5G registration refused");
		return -1;
	}
	buf_init(&nas, IKE_MSG_MAX);
	buf_init(&an, 256);
	memset(&rs, 0, sizeof(rs));
	rs.code = EAP_CODE_RESPONSE;
	rs.id = rq.id;
	rs.msg_id = EAP5G_NAS;
	if (rq.msg_id == EAP5G_START) {
		if (usim_an_params(sa->usim, &an) == -1 ||
		    usim_start(sa->usim, &nas) == -1)
			goto done;
	} else if (rq.msg_id == EAP5G_NAS) {
		if (usim_handle(sa->usim, rq.nas, rq.nas_len, &nas) == -1 ||
		    usim_failed(sa->usim)) {
			FAIL(u,
			    "the UE refuses the network's NAS message (5G-AKA)");
			goto done;
		}
	} else {
		FAIL(u, "unexpected EAP-5G message %s",
		    eap5g_msg_name(rq.msg_id));
		goto done;
	}
	rs.an = an.data;
	rs.an_len = an.len;
	rs.nas = nas.data;
	rs.nas_len = nas.len;
	ret = eap5g_encode(&rs, eap_out) == -1 ? -1 : 0;
done:
	buf_free(&nas);
	buf_free(&an);
	return ret;
}

int
ue_auth_nwu(struct ue *u, struct ike_sa *sa)
{
	struct ike_msg	      m;
	struct ike_chain      ch;
	struct buf	      in, eap;
	int		      r, ret = -1;
	bool		      success = false;
	const struct ike_pld *pl = &m.pld;

	buf_init(&eap, IKE_MSG_MAX);
	if ((sa->usim = usim_new(&u->ep.sub)) == NULL)
		goto done;
	if (ue_auth1(u, sa, &m) == -1)
		goto done;
	if (ue_check_n3iwf(u, sa, pl) == -1) {
		ike_msg_free(&m);
		goto done;
	}
	/* MID 2..: EAP-5G until EAP-Success. */
	for (int rounds = 0;; rounds++) {
		buf_reset(&eap);
		r = rounds > 8 ? -1 : ue_eap_round(u, sa, pl, &eap, &success);
		ike_msg_free(&m);
		if (r == -1)
			goto done;
		if (success)
			break;
		ike_ep_inner_init(&in, &ch);
		r = ike_pld_add_eap(&ch, eap.data, eap.len) == 0 ?
		    ue_exchange(u, sa, IKE_AUTH, ch.first, &in, &m) :
		    -1;
		buf_free(&in);
		if (r == -1)
			goto done;
	}
	u->ep.sub.sqn = usim_sqn(sa->usim);
	/* Last IKE_AUTH: AUTH keyed by KN3IWF (qkd: prf(key 12, KN3IWF)),
	 * over the IDi of MID 1; the N3IWF's covers its IDr of MID 1. */
	ike_ep_inner_init(&in, &ch);
	r = ike_sa_add_auth(sa, &ch, NULL, &sa->my_id, 0) == 0 ?
	    ue_exchange(u, sa, IKE_AUTH, ch.first, &in, &m) :
	    -1;
	buf_free(&in);
	if (r == -1)
		goto done;
	if (ike_sa_check_auth(sa, pl, IKE_AUTH_PSK, NULL, &sa->peer_id, NULL, 0,
		0) == -1) {
		FAIL(u, "the N3IWF's final AUTH does not verify");
		ike_msg_free(&m);
		goto done;
	}
	ret = ue_child1_done(u, sa, pl);
	ue_tun_cp(u, pl);
	ike_msg_free(&m);
done:
	buf_free(&eap);
	return ret;
}

int
ue_auth_rfc(struct ue *u, struct ike_sa *sa)
{
	struct ike_msg m;
	int	       ret = -1;

	if (ue_auth1(u, sa, &m) == -1)
		return -1;
	if (ue_check_n3iwf(u, sa, &m.pld) == 0)
		ret = ue_child1_done(u, sa, &m.pld);
	ue_tun_cp(u, &m.pld);
	ike_msg_free(&m);
	return ret;
}

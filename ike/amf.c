/*
 * AMF emulator: AMF/SEAF + AUSF + UDM/ARPF for one subscriber, running
 * 5G-AKA (TS 33.501 6.1.3.2) and the 5GMM registration procedure over NAS
 * PDUs. The message flow is documented in ike/amf.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/num.h"
#include "common/log.h"
#include "ike/amf.h"
#include "ike/kdf5g.h"
#include "ike/milenage.h"
#include "ike/nas.h"
#include "ike/nas_5gsm.h"
#include "ike/subs.h"

enum amf_state {
	AMF_WAIT_REG = 0, /* expecting Registration Request */
	AMF_WAIT_AUTH,	  /* Authentication Request sent */
	AMF_WAIT_SMC,	  /* Security Mode Command sent */
	AMF_WAIT_REG_CMP, /* Registration Accept sent, keys ready */
	AMF_DONE,
	AMF_FAILED,
};

struct amf {
	struct amf_sub sub;
	struct subs   *subs; /* a range (--subscribers), or NULL: sub alone */
	enum amf_state state;
	char	       snn[KDF5G_SNN_MAX];
	char	       mcc[4], mnc[4];
	uint8_t	       rand[16];
	bool	       fixed_rand;
	int	       resyncs;
	uint8_t	       xres_star[16], hxres_star[16];
	uint8_t	       kseaf[32], kamf[32], kn3iwf[32];
	uint8_t	       ue_ea, ue_ia; /* UE security capabilities */
	uint8_t	       ea_want;	     /* NAS_ALG_EA2 (if the UE has it) or EA0 */
	uint8_t	       ngksi;
	struct nas_sec sec;
	/* the one PDU session (5GSM, standing for the SMF too) */
	uint8_t	       pdu_addr[4], pdu_qfi;
	amf_pdu_fn     pdu_fn;
	void	      *pdu_arg;
	uint8_t	       pdu_psi, pdu_pti; /* psi 0: none asked */
	uint8_t	       reg_acc[64]; /* the Registration Accept, for NAS/TCP */
	size_t	       reg_acc_len;
	bool	       pdu_pending, pdu_up;
};

static const uint8_t abba0[2] = { 0x00, 0x00 };

/* ---- subscriber -------------------------------------------------------- */

void
amf_sub_default(struct amf_sub *s)
{
	static const uint8_t k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4,
		0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
	static const uint8_t opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a,
		0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

	memset(s, 0, sizeof(*s));
	snprintf(s->supi, sizeof(s->supi), "208930000000001");
	s->mnc_len = 2;
	memcpy(s->k, k, 16);
	memcpy(s->opc, opc, 16);
	s->amf[0] = 0xb9;
	s->amf[1] = 0xb9;
	s->sqn = 0xff9bb4d0b607ULL - 1;
}

static int
hex16(const char *h, uint8_t out[static 16])
{
	if (strlen(h) != 32)
		return -1;
	return num_unhex(h, out, 16);
}

int
amf_sub_set(struct amf_sub *s, const char *supi, const char *k_hex,
    const char *opc_hex, const char *op_hex, char *err, size_t errlen)
{
	uint8_t op[16];
	size_t	n;

	if (supi != NULL) {
		if (strncmp(supi, "imsi-", 5) == 0)
			supi += 5;
		n = strlen(supi);
		if (!nas_digits(supi, 6, 15)) {
			snprintf(err, errlen,
			    "supi \"%s\" is not 6-15 IMSI "
			    "digits",
			    supi);
			return -1;
		}
		memcpy(s->supi, supi, n + 1);
	}
	if (k_hex != NULL && hex16(k_hex, s->k) == -1) {
		snprintf(err, errlen, "k is not 32 hex digits");
		return -1;
	}
	if (opc_hex != NULL && hex16(opc_hex, s->opc) == -1) {
		snprintf(err, errlen, "opc is not 32 hex digits");
		return -1;
	}
	if (op_hex != NULL) {
		if (hex16(op_hex, op) == -1) {
			snprintf(err, errlen, "op is not 32 hex digits");
			return -1;
		}
		if (milenage_opc(s->k, op, s->opc) == -1) {
			OPENSSL_cleanse(op, sizeof(op));
			snprintf(err, errlen, "cannot compute OPc from op");
			return -1;
		}
		OPENSSL_cleanse(op, sizeof(op));
	}
	return 0;
}

void
amf_sub_wipe(struct amf_sub *s)
{
	if (s != NULL)
		OPENSSL_cleanse(s, sizeof(*s));
}

/* MCC / MNC / serving network name from the IMSI. */
int
amf_sub_plmn(const struct amf_sub *s, char mcc[static 4], char mnc[static 4],
    char *snn, size_t len)
{
	if ((s->mnc_len != 2 && s->mnc_len != 3) ||
	    strlen(s->supi) < 3 + s->mnc_len + 1)
		return -1;
	memcpy(mcc, s->supi, 3);
	mcc[3] = '\0';
	memcpy(mnc, s->supi + 3, s->mnc_len);
	mnc[s->mnc_len] = '\0';
	return kdf5g_snn(mcc, mnc, snn, len);
}

int
amf_sub_load(struct amf_sub *dst, const struct amf_sub *src, char mcc[static 4],
    char mnc[static 4], char *snn, size_t snnlen, const char *who)
{
	*dst = *src;
	dst->sqn &= AMF_SQN_MASK;
	if (amf_sub_plmn(dst, mcc, mnc, snn, snnlen) == -1) {
		log_err("%s: bad subscriber (SUPI %s, MNC length %u)", who,
		    src->supi, src->mnc_len);
		return -1;
	}
	return 0;
}

/* ---- life cycle -------------------------------------------------------- */

struct amf *
amf_new(const struct amf_sub *sub)
{
	struct amf *a;

	if ((a = sec_alloc(sizeof(*a))) == NULL)
		return NULL;
	if (amf_sub_load(&a->sub, sub, a->mcc, a->mnc, a->snn, sizeof(a->snn),
		"amf") == -1) {
		sec_free(a, sizeof(*a));
		return NULL;
	}
	a->ngksi = 0;
	a->ea_want = NAS_ALG_EA2;
	return a;
}

void
amf_set_subs(struct amf *a, struct subs *s)
{
	a->subs = s;
}

void
amf_set_ciphering(struct amf *a, uint8_t ea)
{
	a->ea_want = ea == NAS_ALG_EA2 ? NAS_ALG_EA2 : NAS_ALG_EA0;
}

void
amf_free(struct amf *a)
{
	if (a != NULL)
		sec_free(a, sizeof(*a));
}

void
amf_set_rand(struct amf *a, const uint8_t rand[static 16])
{
	memcpy(a->rand, rand, 16);
	a->fixed_rand = true;
}

uint64_t
amf_sqn(const struct amf *a)
{
	return a->sub.sqn;
}

int
amf_kn3iwf(const struct amf *a, uint8_t out[static 32])
{
	if (a->state != AMF_WAIT_REG_CMP && a->state != AMF_DONE)
		return -1;
	memcpy(out, a->kn3iwf, 32);
	return 0;
}

/* ---- 5G-AKA ------------------------------------------------------------ */

void
amf_sqn_bytes(uint64_t sqn, uint8_t out[static 6])
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(sqn >> (8 * (5 - i)));
}

uint64_t
amf_sqn_value(const uint8_t in[static 6])
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | in[i];
	return v;
}

/* The procedure ends in failure: the caller answers EAP-Failure. */
static void
failed(struct amf *a)
{
	a->state = AMF_FAILED;
}

bool
amf_auth_done(const struct amf *a)
{
	return a->state == AMF_WAIT_REG_CMP || a->state == AMF_DONE;
}

bool
amf_failed(const struct amf *a)
{
	return a->state == AMF_FAILED;
}

bool
amf_registered(const struct amf *a)
{
	return a->state == AMF_DONE;
}

/* UDM/ARPF + AUSF + SEAF: a fresh authentication vector, keep XRES*,
 * HXRES*, KSEAF; send the Authentication Request. */
static int
challenge(struct amf *a, struct buf *out)
{
	struct nas_msg m;
	uint8_t	       sqn[6], res[8], ck[16], ik[16], ak[6], mac[8];
	uint8_t	       kausf[32];
	int	       rc = -1;

	memset(&m, 0, sizeof(m));
	a->sub.sqn = (a->sub.sqn + 1) & AMF_SQN_MASK;
	amf_sqn_bytes(a->sub.sqn, sqn);
	if (a->subs != NULL &&
	    subs_sqn_set(a->subs, a->sub.supi, a->sub.sqn) == -1)
		goto done;
	if (!a->fixed_rand && RAND_bytes(a->rand, 16) != 1) {
		log_err("amf: RAND_bytes failed");
		goto done;
	}
	a->fixed_rand = false;
	if (milenage_f1(a->sub.k, a->sub.opc, a->rand, sqn, a->sub.amf, mac,
		NULL) == -1 ||
	    milenage_f2345(a->sub.k, a->sub.opc, a->rand, res, ck, ik, ak,
		NULL) == -1)
		goto done;
	for (int i = 0; i < 6; i++)
		m.autn[i] = sqn[i] ^ ak[i];
	memcpy(m.autn + 6, a->sub.amf, 2);
	memcpy(m.autn + 8, mac, 8);
	if (kdf5g_res_star(ck, ik, a->snn, a->rand, res, sizeof(res),
		a->xres_star) == -1 ||
	    kdf5g_hres_star(a->rand, a->xres_star, a->hxres_star) == -1 ||
	    kdf5g_kausf(ck, ik, a->snn, m.autn, kausf) == -1 ||
	    kdf5g_kseaf(kausf, a->snn, a->kseaf) == -1)
		goto done;
	m.type = NAS_AUTH_REQUEST;
	m.ngksi = a->ngksi;
	memcpy(m.abba, abba0, sizeof(abba0));
	m.abba_len = sizeof(abba0);
	memcpy(m.rand, a->rand, 16);
	if (nas_encode(&m, out) == -1)
		goto done;
	a->state = AMF_WAIT_AUTH;
	rc = 0;
done:
	OPENSSL_cleanse(res, sizeof(res));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(ik, sizeof(ik));
	OPENSSL_cleanse(ak, sizeof(ak));
	OPENSSL_cleanse(kausf, sizeof(kausf));
	return rc;
}

static int
reject(struct amf *a, uint8_t type, uint8_t cause, struct buf *out)
{
	struct nas_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.cause = cause;
	failed(a);
	return nas_encode(&m, out);
}

/* The range's subscriber imsi (keys derived, its last SQN) as a->sub. */
static int
amf_range_load(struct amf *a, const char *imsi)
{
	struct amf_sub s;
	int	       r = -1;

	if (subs_find(a->subs, imsi, &s) == 0)
		r = amf_sub_load(&a->sub, &s, a->mcc, a->mnc, a->snn,
		    sizeof(a->snn), "amf");
	amf_sub_wipe(&s);
	return r;
}

static int
on_reg_request(struct amf *a, const struct nas_msg *m, struct buf *out)
{
	char imsi[16];

	if (m->id_type != NAS_ID_SUCI ||
	    nas_suci_imsi(m->id, m->id_len, imsi, sizeof(imsi)) == -1) {
		log_warn("amf: Registration Request without a null-scheme "
			 "SUCI (identity type %u)",
		    m->id_type);
		return reject(a, NAS_REG_REJECT, 9, out); /* #9 */
	}
	if (a->subs != NULL ? amf_range_load(a, imsi) == -1 :
			      strcmp(imsi, a->sub.supi) != 0) {
		log_warn("amf: unknown subscriber imsi-%s", imsi);
		return reject(a, NAS_REG_REJECT, NAS_CAUSE_ILLEGAL_UE, out);
	}
	if (!m->has_cap) {
		log_warn("amf: Registration Request without UE security "
			 "capability");
		return -1;
	}
	if (!(m->cap_ea & 0x80) || !(m->cap_ia & (0x80 | 0x20))) {
		log_warn("amf: UE security capabilities lack 5G-EA0 and "
			 "5G-IA0/IA2");
		return reject(a, NAS_REG_REJECT, 23, out); /* #23 */
	}
	a->ue_ea = m->cap_ea;
	a->ue_ia = m->cap_ia;
	log_debug("amf: Registration Request from imsi-%s", imsi);
	return challenge(a, out);
}

/* UE answered Authentication Failure: resynchronise once on #21. */
static int
on_auth_failure(struct amf *a, const struct nas_msg *m, struct buf *out)
{
	uint8_t		     aks[6], sqn_ms[6], macs[8];
	static const uint8_t amf0[2];
	int		     rc = -1;

	if (m->cause != NAS_CAUSE_SYNCH_FAILURE || !m->has_auts ||
	    a->resyncs++ > 0) {
		log_warn("amf: UE rejected the network (5GMM cause #%u)",
		    m->cause);
		failed(a);
		return 0;
	}
	if (milenage_f2345(a->sub.k, a->sub.opc, a->rand, NULL, NULL, NULL,
		NULL, aks) == -1)
		return -1;
	for (int i = 0; i < 6; i++)
		sqn_ms[i] = m->auts[i] ^ aks[i];
	if (milenage_f1(a->sub.k, a->sub.opc, a->rand, sqn_ms, amf0, NULL,
		macs) == -1)
		goto done;
	if (CRYPTO_memcmp(macs, m->auts + 6, 8) != 0) {
		log_warn("amf: AUTS MAC-S check failed");
		failed(a);
		rc = 0;
		goto done;
	}
	a->sub.sqn = amf_sqn_value(sqn_ms);
	log_info("amf: SQN resynchronised");
	rc = challenge(a, out);
done:
	OPENSSL_cleanse(aks, sizeof(aks));
	OPENSSL_cleanse(macs, sizeof(macs));
	return rc;
}

/* SEAF checks HRES* against HXRES*, AUSF RES* against XRES*; then KAMF,
 * the NAS keys and the Security Mode Command. */
static int
on_auth_response(struct amf *a, const struct nas_msg *m, struct buf *out)
{
	struct nas_msg smc;
	uint8_t	       hres[16];
	int	       rc = -1;

	if (kdf5g_hres_star(a->rand, m->res_star, hres) == -1)
		return -1;
	if (CRYPTO_memcmp(hres, a->hxres_star, 16) != 0 ||
	    CRYPTO_memcmp(m->res_star, a->xres_star, 16) != 0) {
		log_warn("amf: RES* check failed for imsi-%s", a->sub.supi);
		return reject(a, NAS_AUTH_REJECT, 0, out);
	}
	memset(&smc, 0, sizeof(smc));
	if (kdf5g_kamf(a->kseaf, a->sub.supi, abba0, sizeof(abba0), a->kamf) ==
	    -1)
		goto done;
	a->sec.ia = (a->ue_ia & 0x20) ? NAS_ALG_IA2 : NAS_ALG_IA0;
	/* 128-NEA2 when wanted and in the UE's 5G-EA capabilities (0x20) */
	a->sec.ea = a->ea_want == NAS_ALG_EA2 && (a->ue_ea & 0x20) ?
	    NAS_ALG_EA2 :
	    NAS_ALG_EA0;
	a->sec.bearer = NAS_CONN_NON3GPP;
	if (kdf5g_nas_key(a->kamf, KDF5G_ALG_NAS_INT, a->sec.ia, a->sec.kint) ==
		-1 ||
	    (a->sec.ea == NAS_ALG_EA2 &&
		kdf5g_nas_key(a->kamf, KDF5G_ALG_NAS_ENC, a->sec.ea,
		    a->sec.kenc) == -1))
		goto done;
	a->sec.active = true;
	smc.type = NAS_SMC;
	smc.alg = (uint8_t)(a->sec.ea << 4 | a->sec.ia);
	smc.ngksi = a->ngksi;
	smc.cap_ea = a->ue_ea;
	smc.cap_ia = a->ue_ia;
	if (nas_encode_protected(&a->sec, NAS_SHT_INT_NEW, true, &smc, out) ==
	    -1)
		goto done;
	a->state = AMF_WAIT_SMC;
	rc = 0;
done:
	OPENSSL_cleanse(hres, sizeof(hres));
	return rc;
}

/* Security Mode Complete (uplink NAS COUNT 0): KN3IWF, Registration Accept. */
static int
on_smc_complete(struct amf *a, uint32_t ul_count, struct buf *out)
{
	struct nas_msg acc;
	size_t	       off;

	if (kdf5g_kn3iwf(a->kamf, ul_count, a->kn3iwf) == -1)
		return -1;
	memset(&acc, 0, sizeof(acc));
	acc.type = NAS_REG_ACCEPT;
	acc.reg_result = NAS_REGRESULT_NON3GPP;
	/* 5G-GUTI (9.11.3.4): PLMN, AMF region 0xca, AMF set 0x3f8 and
	 * pointer 0, a random 5G-TMSI */
	acc.id_type = NAS_ID_GUTI;
	acc.id[0] = 0xf0 | NAS_ID_GUTI;
	if (nas_plmn_encode(a->mcc, a->mnc, acc.id + 1) == -1 ||
	    RAND_bytes(acc.id + 7, 4) != 1)
		return -1;
	acc.id[4] = 0xca;
	acc.id[5] = 0xfe;
	acc.id[6] = 0x00;
	acc.id_len = 11;
	off = out->len;
	if (nas_encode_protected(&a->sec, NAS_SHT_INT_ENC, true, &acc, out) ==
		-1 ||
	    out->len - off > sizeof(a->reg_acc))
		return -1;
	a->reg_acc_len = out->len - off;
	memcpy(a->reg_acc, out->data + off, a->reg_acc_len);
	a->state = AMF_WAIT_REG_CMP;
	return 0;
}

/* ---- dispatch ---------------------------------------------------------- */

static int
handle_plain(struct amf *a, const struct nas_msg *m, struct buf *out)
{
	if (a->state == AMF_WAIT_REG && m->type == NAS_REG_REQUEST)
		return on_reg_request(a, m, out);
	if (a->state == AMF_WAIT_AUTH && m->type == NAS_AUTH_RESPONSE)
		return on_auth_response(a, m, out);
	if (a->state == AMF_WAIT_AUTH && m->type == NAS_AUTH_FAILURE)
		return on_auth_failure(a, m, out);
	if (a->state == AMF_WAIT_SMC && m->type == NAS_SMC_REJECT) {
		log_warn("amf: UE rejected the Security Mode Command (#%u)",
		    m->cause);
		failed(a);
		return 0;
	}
	log_warn("amf: unexpected NAS message 0x%02x in state %d", m->type,
	    (int)a->state);
	return -1;
}

/* ---- PDU session (5GSM, TS 24.501 6.4.1; TS 23.502 4.12.5) ------------ */

void
amf_set_session(struct amf *a, const uint8_t addr[static 4], uint8_t qfi,
    amf_pdu_fn fn, void *arg)
{
	memcpy(a->pdu_addr, addr, 4);
	a->pdu_qfi = qfi;
	a->pdu_fn = fn;
	a->pdu_arg = arg;
}

/* 5GSM message in a DL NAS TRANSPORT, integrity protected and ciphered. */
static int
send_sm(struct amf *a, const struct nas_sm *sm, struct buf *out)
{
	struct nas_msg m;
	struct buf     pl;
	int	       rc = -1;

	buf_init(&pl, NAS_MSG_MAX);
	memset(&m, 0, sizeof(m));
	m.type = NAS_DL_TRANSPORT;
	m.payload_type = NAS_PAYLOAD_N1_SM;
	m.psi = sm->psi;
	if (nas_sm_encode(sm, &pl) == 0) {
		m.payload = pl.data;
		m.payload_len = pl.len;
		rc = nas_encode_protected(&a->sec, NAS_SHT_INT_ENC, true, &m,
		    out);
	}
	buf_free(&pl);
	return rc;
}

static int
sm_reject(struct amf *a, const struct nas_sm *rq, uint8_t cause,
    struct buf *out)
{
	struct nas_sm r;

	memset(&r, 0, sizeof(r));
	r.type = NAS_SM_EST_REJECT;
	r.psi = rq->psi;
	r.pti = rq->pti;
	r.cause = cause;
	log_warn("amf: PDU session %u of imsi-%s rejected (5GSM cause #%u)",
	    rq->psi, a->sub.supi, cause);
	return send_sm(a, &r, out);
}

/* UL NAS TRANSPORT with a PDU Session Establishment Request: the N2 PDU
 * session resource setup goes to the N3IWF (pdu_fn); the Accept waits for
 * amf_pdu_done(). */
static int
on_ul_transport(struct amf *a, const struct nas_msg *m, struct buf *out)
{
	struct amf_pdu_setup s;
	struct nas_sm	     rq;

	if (m->payload_type != NAS_PAYLOAD_N1_SM ||
	    nas_sm_decode(m->payload, m->payload_len, &rq) == -1 ||
	    rq.type != NAS_SM_EST_REQUEST || m->psi != rq.psi) {
		log_warn("amf: UL NAS TRANSPORT without a PDU Session "
			 "Establishment Request");
		return -1;
	}
	if (rq.pdu_type != 0 && rq.pdu_type != NAS_PDU_IPV4)
		return sm_reject(a, &rq, 28, out); /* #28 unknown type */
	if (a->pdu_fn == NULL || a->pdu_psi != 0 ||
	    m->req_type != NAS_REQTYPE_INITIAL)
		return sm_reject(a, &rq, NAS_SM_CAUSE_REFUSED, out);
	a->pdu_psi = rq.psi;
	a->pdu_pti = rq.pti;
	a->pdu_pending = true;
	memset(&s, 0, sizeof(s));
	s.psi = rq.psi;
	s.qfi = a->pdu_qfi;
	memcpy(s.addr, a->pdu_addr, 4);
	log_debug("amf: PDU session %u of imsi-%s (DNN \"%s\"): asking the "
		  "N3IWF for the user-plane Child SA, QFI %u",
	    rq.psi, a->sub.supi, m->dnn, s.qfi);
	a->pdu_fn(a->pdu_arg, &s);
	return 0;
}

int
amf_pdu_done(struct amf *a, uint8_t psi, bool up, struct buf *nas_out)
{
	struct nas_sm acc;

	if (!a->pdu_pending || psi != a->pdu_psi) {
		log_err("amf: no PDU session %u waits for its Child SA", psi);
		return -1;
	}
	a->pdu_pending = false;
	memset(&acc, 0, sizeof(acc));
	acc.psi = a->pdu_psi;
	acc.pti = a->pdu_pti;
	if (!up) {
		a->pdu_psi = 0;
		return sm_reject(a, &acc, NAS_SM_CAUSE_REFUSED, nas_out);
	}
	acc.type = NAS_SM_EST_ACCEPT;
	acc.pdu_type = NAS_PDU_IPV4;
	acc.ssc_mode = NAS_SSC_MODE1;
	acc.qfi = a->pdu_qfi;
	acc.qos_rule = 1;
	acc.ambr_unit = NAS_AMBR_UNIT_1MBPS;
	acc.ambr_dl = acc.ambr_ul = 1000;
	acc.has_addr = true;
	memcpy(acc.addr, a->pdu_addr, 4);
	if (send_sm(a, &acc, nas_out) == -1)
		return -1;
	a->pdu_up = true;
	return 0;
}

const uint8_t *
amf_reg_accept(const struct amf *a, size_t *len)
{
	if (!amf_auth_done(a) || a->reg_acc_len == 0)
		return NULL;
	*len = a->reg_acc_len;
	return a->reg_acc;
}

bool
amf_pdu_up(const struct amf *a)
{
	return a->pdu_up;
}

/* ---- dispatch of protected messages ------------------------------------ */

static int
handle_protected(struct amf *a, const uint8_t *p, size_t n,
    const struct nas_msg *m, struct buf *out)
{
	uint32_t ul = a->sec.ul_count;

	if (a->state != AMF_WAIT_SMC && a->state != AMF_WAIT_REG_CMP &&
	    a->state != AMF_DONE) {
		log_warn("amf: protected NAS message in state %d",
		    (int)a->state);
		return -1;
	}
	if (nas_verify(&a->sec, false, p, n) == -1)
		return -1;
	if (a->state == AMF_WAIT_SMC && m->type == NAS_SMC_COMPLETE)
		return on_smc_complete(a, ul, out);
	if (a->state == AMF_WAIT_REG_CMP && m->type == NAS_REG_COMPLETE) {
		a->state = AMF_DONE;
		log_debug("amf: imsi-%s registered", a->sub.supi);
		return 0;
	}
	if (a->state == AMF_DONE && m->type == NAS_UL_TRANSPORT)
		return on_ul_transport(a, m, out);
	log_warn("amf: unexpected NAS message 0x%02x in state %d", m->type,
	    (int)a->state);
	a->sec.ul_count = ul; /* not consumed */
	return -1;
}

int
amf_handle(struct amf *a, const uint8_t *nas_in, size_t n, struct buf *nas_out)
{
	uint8_t	       plain[NAS_MSG_MAX];
	size_t	       plen = 0;
	uint8_t	       sht;
	struct nas_msg m;
	int	       rc = -1;

	if (a->state == AMF_FAILED) {
		log_warn("amf: NAS message after the procedure failed");
		return -1;
	}
	if (nas_open(&a->sec, false, nas_in, n, &sht, plain, &plen) == -1 ||
	    nas_decode(plain, plen, &m) == -1)
		log_warn("amf: malformed NAS PDU (%zu bytes)", n);
	else if (sht == NAS_SHT_PLAIN)
		rc = handle_plain(a, &m, nas_out);
	else
		rc = handle_protected(a, nas_in, n, &m, nas_out);
	OPENSSL_cleanse(&m, sizeof(m));
	OPENSSL_cleanse(plain, plen);
	return rc;
}

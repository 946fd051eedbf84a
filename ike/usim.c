/*
 * UE side: USIM (MILENAGE, AUTN check, SQN freshness, RES*, AUTS) and the
 * 5GMM procedures of registration over non-3GPP access (TS 24.501), the
 * peer of ike/amf.c. Flow: ike/amf.h.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "ike/eap5g.h"
#include "ike/kdf5g.h"
#include "ike/milenage.h"
#include "ike/nas.h"
#include "ike/nas_5gsm.h"
#include "ike/usim.h"

#define SQN_DELTA (1ULL << 28) /* TS 33.102 C.2.1 freshness window */
#define UE_CAP_EA 0xa0	       /* 5G-EA0, 128-5G-EA2 */
#define UE_CAP_IA 0xa0	       /* 5G-IA0, 128-5G-IA2 */

enum usim_state {
	UE_IDLE = 0,
	UE_WAIT_AUTH,	/* Registration Request sent */
	UE_WAIT_SMC,	/* Authentication Response sent */
	UE_WAIT_ACCEPT, /* Security Mode Complete sent, keys ready */
	UE_REGISTERED,
	UE_FAILED,
};

struct usim {
	struct amf_sub	sub; /* sub.sqn: highest accepted SQN */
	enum usim_state state;
	char		mcc[4], mnc[4], snn[KDF5G_SNN_MAX];
	uint8_t		ngksi;
	uint8_t		kamf[32], kn3iwf[32];
	uint8_t		guti[11];
	struct nas_sec	sec;
	uint8_t		pdu_psi, pdu_pti; /* the PDU session asked for */
	bool		pdu_wait, pdu_rejected;
	struct nas_sm	pdu; /* its Accept, once pdu.type is set */
};

struct usim *
usim_new(const struct amf_sub *sub)
{
	struct usim *u;

	if ((u = sec_alloc(sizeof(*u))) == NULL)
		return NULL;
	if (amf_sub_load(&u->sub, sub, u->mcc, u->mnc, u->snn, sizeof(u->snn),
		"usim") == -1) {
		sec_free(u, sizeof(*u));
		return NULL;
	}
	u->ngksi = NAS_NGKSI_NONE;
	return u;
}

void
usim_free(struct usim *u)
{
	if (u != NULL)
		sec_free(u, sizeof(*u));
}

int
usim_an_params(const struct usim *u, struct buf *out)
{
	return eap5g_an_build(out, u->mcc, u->mnc);
}

int
usim_start(struct usim *u, struct buf *nas_out)
{
	struct nas_msg m;

	if (u->state != UE_IDLE) {
		log_err("usim: registration already started");
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.type = NAS_REG_REQUEST;
	m.reg_type = NAS_REGTYPE_INITIAL;
	m.ngksi = NAS_NGKSI_NONE;
	m.id_type = NAS_ID_SUCI;
	if (nas_suci_build(u->sub.supi, u->sub.mnc_len, m.id, &m.id_len) == -1)
		return -1;
	m.has_cap = true;
	m.cap_ea = UE_CAP_EA;
	m.cap_ia = UE_CAP_IA;
	if (nas_encode(&m, nas_out) == -1)
		return -1;
	u->state = UE_WAIT_AUTH;
	return 0;
}

int
usim_kn3iwf(const struct usim *u, uint8_t out[static 32])
{
	if (u->state != UE_WAIT_ACCEPT && u->state != UE_REGISTERED)
		return -1;
	memcpy(out, u->kn3iwf, 32);
	return 0;
}

bool
usim_registered(const struct usim *u)
{
	return u->state == UE_REGISTERED;
}

uint64_t
usim_sqn(const struct usim *u)
{
	return u->sub.sqn;
}

/* ---- 5G-AKA ------------------------------------------------------------ */

static int
auth_failure(uint8_t cause, const uint8_t *auts, struct buf *out)
{
	struct nas_msg m;
	int	       rc;

	memset(&m, 0, sizeof(m));
	m.type = NAS_AUTH_FAILURE;
	m.cause = cause;
	if (auts != NULL) {
		memcpy(m.auts, auts, 14);
		m.has_auts = true;
	}
	rc = nas_encode(&m, out);
	OPENSSL_cleanse(&m, sizeof(m));
	return rc;
}

/* The UE refuses the network: the caller answers nothing more. */
static void
failed(struct usim *u)
{
	u->state = UE_FAILED;
}

bool
usim_auth_done(const struct usim *u)
{
	return u->state == UE_WAIT_ACCEPT || u->state == UE_REGISTERED;
}

bool
usim_failed(const struct usim *u)
{
	return u->state == UE_FAILED;
}

/* SQN out of range: AUTS = (SQN_MS xor AK*) || MAC-S, 33.102 6.3.3. */
static int
resync(struct usim *u, const uint8_t rand[static 16], struct buf *out)
{
	static const uint8_t amf0[2];
	uint8_t		     sqn_ms[6], aks[6], auts[14];
	int		     rc = -1;

	amf_sqn_bytes(u->sub.sqn, sqn_ms);
	if (milenage_f2345(u->sub.k, u->sub.opc, rand, NULL, NULL, NULL, NULL,
		aks) == -1 ||
	    milenage_f1(u->sub.k, u->sub.opc, rand, sqn_ms, amf0, NULL,
		auts + 6) == -1)
		goto done;
	for (int i = 0; i < 6; i++)
		auts[i] = sqn_ms[i] ^ aks[i];
	log_info("usim: SQN out of range, asking for resynchronisation");
	rc = auth_failure(NAS_CAUSE_SYNCH_FAILURE, auts, out);
done:
	OPENSSL_cleanse(aks, sizeof(aks));
	OPENSSL_cleanse(auts, sizeof(auts));
	return rc;
}

/* After a good AUTN: RES*, KAUSF, KSEAF, KAMF; Authentication Response. */
static int
auth_ok(struct usim *u, const struct nas_msg *m, const uint8_t res[static 8],
    const uint8_t ck[static 16], const uint8_t ik[static 16], struct buf *out)
{
	struct nas_msg r;
	uint8_t	       kausf[32], kseaf[32];
	int	       rc = -1;

	memset(&r, 0, sizeof(r));
	r.type = NAS_AUTH_RESPONSE;
	if (kdf5g_res_star(ck, ik, u->snn, m->rand, res, 8, r.res_star) == -1 ||
	    kdf5g_kausf(ck, ik, u->snn, m->autn, kausf) == -1 ||
	    kdf5g_kseaf(kausf, u->snn, kseaf) == -1 ||
	    kdf5g_kamf(kseaf, u->sub.supi, m->abba, m->abba_len, u->kamf) == -1)
		goto done;
	r.has_res_star = true;
	if (nas_encode(&r, out) == -1)
		goto done;
	u->ngksi = m->ngksi;
	u->state = UE_WAIT_SMC;
	rc = 0;
done:
	OPENSSL_cleanse(&r, sizeof(r));
	OPENSSL_cleanse(kausf, sizeof(kausf));
	OPENSSL_cleanse(kseaf, sizeof(kseaf));
	return rc;
}

static int
on_auth_request(struct usim *u, const struct nas_msg *m, struct buf *out)
{
	uint8_t	 res[8], ck[16], ik[16], ak[6], sqn[6], xmac[8];
	uint64_t s;
	int	 rc = -1;

	if (milenage_f2345(u->sub.k, u->sub.opc, m->rand, res, ck, ik, ak,
		NULL) == -1)
		goto done;
	for (int i = 0; i < 6; i++)
		sqn[i] = m->autn[i] ^ ak[i];
	if (milenage_f1(u->sub.k, u->sub.opc, m->rand, sqn, m->autn + 6, xmac,
		NULL) == -1)
		goto done;
	if (CRYPTO_memcmp(xmac, m->autn + 8, 8) != 0) {
		log_warn("usim: AUTN MAC check failed");
		failed(u);
		rc = auth_failure(NAS_CAUSE_MAC_FAILURE, NULL, out);
		goto done;
	}
	if (!(m->autn[6] & 0x80)) { /* AMF separation bit, 33.501 6.1.3.2 */
		log_warn("usim: AMF separation bit not set");
		failed(u);
		rc = auth_failure(26, NULL, out); /* #26 non-5G auth */
		goto done;
	}
	s = amf_sqn_value(sqn);
	if (s <= u->sub.sqn || s - u->sub.sqn > SQN_DELTA) {
		rc = resync(u, m->rand, out); /* state stays WAIT_AUTH */
		goto done;
	}
	u->sub.sqn = s;
	rc = auth_ok(u, m, res, ck, ik, out);
done:
	OPENSSL_cleanse(res, sizeof(res));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(ik, sizeof(ik));
	OPENSSL_cleanse(ak, sizeof(ak));
	return rc;
}

/* ---- security mode, registration --------------------------------------- */

static int
smc_reject(struct usim *u, uint8_t cause, struct buf *out)
{
	struct nas_msg m;

	memset(&m, 0, sizeof(m));
	m.type = NAS_SMC_REJECT;
	m.cause = cause;
	failed(u);
	return nas_encode(&m, out);
}

static int
on_smc(struct usim *u, const uint8_t *p, size_t n, const struct nas_msg *m,
    struct buf *out)
{
	struct nas_msg c;
	uint8_t	       ea = m->alg >> 4, ia = m->alg & 0x0f;

	if ((ea != NAS_ALG_EA0 && ea != NAS_ALG_EA2) ||
	    (ia != NAS_ALG_IA0 && ia != NAS_ALG_IA2) ||
	    !((0x80 >> ea) & UE_CAP_EA) || !((0x80 >> ia) & UE_CAP_IA) ||
	    (m->ngksi & 0x07) != u->ngksi) {
		log_warn("usim: Security Mode Command with 5G-EA%u/IA%u, "
			 "ngKSI %u",
		    ea, ia, m->ngksi);
		return smc_reject(u, NAS_CAUSE_SEC_MODE_REJECTED, out);
	}
	if (!m->has_cap || m->cap_ea != UE_CAP_EA || m->cap_ia != UE_CAP_IA) {
		log_warn("usim: replayed UE security capabilities differ");
		return smc_reject(u, 23, out); /* #23 mismatch */
	}
	nas_sec_wipe(&u->sec);
	u->sec.ia = ia;
	u->sec.ea = ea;
	u->sec.bearer = NAS_CONN_NON3GPP;
	if (kdf5g_nas_key(u->kamf, KDF5G_ALG_NAS_INT, ia, u->sec.kint) == -1 ||
	    (ea == NAS_ALG_EA2 &&
		kdf5g_nas_key(u->kamf, KDF5G_ALG_NAS_ENC, ea, u->sec.kenc) ==
		    -1))
		return -1;
	u->sec.active = true;
	if (nas_verify(&u->sec, true, p, n) == -1) {
		nas_sec_wipe(&u->sec);
		return smc_reject(u, NAS_CAUSE_SEC_MODE_REJECTED, out);
	}
	/* KN3IWF with the uplink NAS COUNT of the Security Mode Complete */
	if (kdf5g_kn3iwf(u->kamf, u->sec.ul_count, u->kn3iwf) == -1)
		return -1;
	memset(&c, 0, sizeof(c));
	c.type = NAS_SMC_COMPLETE;
	if (nas_encode_protected(&u->sec, NAS_SHT_INT_ENC_NEW, false, &c,
		out) == -1)
		return -1;
	u->state = UE_WAIT_ACCEPT;
	return 0;
}

static int
on_accept(struct usim *u, const uint8_t *p, size_t n, const struct nas_msg *m,
    struct buf *out)
{
	struct nas_msg c;

	if (nas_verify(&u->sec, true, p, n) == -1)
		return -1;
	if (m->id_len == sizeof(u->guti))
		memcpy(u->guti, m->id, sizeof(u->guti));
	memset(&c, 0, sizeof(c));
	c.type = NAS_REG_COMPLETE;
	if (nas_encode_protected(&u->sec, NAS_SHT_INT_ENC, false, &c, out) ==
	    -1)
		return -1;
	u->state = UE_REGISTERED;
	log_debug("usim: registered (result 0x%02x)", m->reg_result);
	return 0;
}

/* ---- PDU session ------------------------------------------------------- */

int
usim_pdu_request(struct usim *u, uint8_t psi, const char *dnn,
    struct buf *nas_out)
{
	struct nas_msg m;
	struct nas_sm  rq;
	struct buf     pl;
	int	       rc = -1;

	if (u->state != UE_REGISTERED || u->pdu_wait || psi == 0 || psi > 15 ||
	    (dnn != NULL && strlen(dnn) >= sizeof(m.dnn))) {
		log_err("usim: cannot ask for PDU session %u now", psi);
		return -1;
	}
	memset(&rq, 0, sizeof(rq));
	rq.type = NAS_SM_EST_REQUEST;
	rq.psi = psi;
	rq.pti = (uint8_t)(u->pdu_pti % 254 + 1);
	rq.pdu_type = NAS_PDU_IPV4;
	rq.ssc_mode = NAS_SSC_MODE1;
	memset(&m, 0, sizeof(m));
	m.type = NAS_UL_TRANSPORT;
	m.payload_type = NAS_PAYLOAD_N1_SM;
	m.psi = psi;
	m.req_type = NAS_REQTYPE_INITIAL;
	m.has_snssai = true;
	m.sst = 1; /* eMBB */
	if (dnn != NULL)
		memcpy(m.dnn, dnn, strlen(dnn) + 1);
	buf_init(&pl, NAS_MSG_MAX);
	if (nas_sm_encode(&rq, &pl) == 0) {
		m.payload = pl.data;
		m.payload_len = pl.len;
		rc = nas_encode_protected(&u->sec, NAS_SHT_INT_ENC, false, &m,
		    nas_out);
	}
	buf_free(&pl);
	if (rc == 0) {
		u->pdu_psi = psi;
		u->pdu_pti = rq.pti;
		u->pdu_wait = true;
		u->pdu_rejected = false;
	}
	return rc;
}

/* DL NAS TRANSPORT: the Accept or Reject of the session we asked for. */
static int
on_dl_transport(struct usim *u, const uint8_t *p, size_t n,
    const struct nas_msg *m)
{
	struct nas_sm sm;

	if (nas_verify(&u->sec, true, p, n) == -1)
		return -1;
	if (m->payload_type != NAS_PAYLOAD_N1_SM ||
	    nas_sm_decode(m->payload, m->payload_len, &sm) == -1 ||
	    !u->pdu_wait || sm.psi != u->pdu_psi || sm.pti != u->pdu_pti ||
	    (sm.type != NAS_SM_EST_ACCEPT && sm.type != NAS_SM_EST_REJECT)) {
		log_warn("usim: DL NAS TRANSPORT without the answer to PDU "
			 "session %u",
		    u->pdu_psi);
		return -1;
	}
	u->pdu_wait = false;
	if (sm.type == NAS_SM_EST_REJECT) {
		log_warn("usim: PDU session %u rejected (5GSM cause #%u)",
		    sm.psi, sm.cause);
		u->pdu_rejected = true;
		return 0;
	}
	if (sm.pdu_type != NAS_PDU_IPV4 || !sm.has_addr) {
		log_warn("usim: PDU Session Establishment Accept without an "
			 "IPv4 address");
		u->pdu_rejected = true;
		return 0;
	}
	u->pdu = sm;
	return 0;
}

bool
usim_pdu_session(const struct usim *u, struct nas_sm *out)
{
	if (u->pdu.type != NAS_SM_EST_ACCEPT)
		return false;
	*out = u->pdu;
	return true;
}

bool
usim_pdu_rejected(const struct usim *u)
{
	return u->pdu_rejected;
}

/* ---- dispatch ---------------------------------------------------------- */

int
usim_handle(struct usim *u, const uint8_t *nas_in, size_t n,
    struct buf *nas_out)
{
	uint8_t	       plain[NAS_MSG_MAX];
	size_t	       plen = 0;
	uint8_t	       sht;
	struct nas_msg m;
	int	       rc = -1;

	if (u->state == UE_FAILED || u->state == UE_IDLE) {
		log_warn("usim: NAS message in state %d", (int)u->state);
		return -1;
	}
	if (nas_open(&u->sec, true, nas_in, n, &sht, plain, &plen) == -1 ||
	    nas_decode(plain, plen, &m) == -1) {
		log_warn("usim: malformed NAS PDU (%zu bytes)", n);
		OPENSSL_cleanse(plain, plen);
		return -1;
	}
	if (sht == NAS_SHT_PLAIN && u->state == UE_WAIT_AUTH &&
	    m.type == NAS_AUTH_REQUEST)
		rc = on_auth_request(u, &m, nas_out);
	else if (sht == NAS_SHT_PLAIN &&
	    (m.type == NAS_AUTH_REJECT || m.type == NAS_REG_REJECT) &&
	    u->state < UE_WAIT_ACCEPT) {
		log_warn("usim: network sent %s (cause #%u)",
		    m.type == NAS_AUTH_REJECT ? "Authentication Reject" :
						"Registration Reject",
		    m.cause);
		failed(u);
		rc = 0;
	} else if (sht == NAS_SHT_INT_NEW && u->state == UE_WAIT_SMC &&
	    m.type == NAS_SMC)
		rc = on_smc(u, nas_in, n, &m, nas_out);
	else if (sht != NAS_SHT_PLAIN && u->state == UE_WAIT_ACCEPT &&
	    m.type == NAS_REG_ACCEPT)
		rc = on_accept(u, nas_in, n, &m, nas_out);
	else if (sht != NAS_SHT_PLAIN && u->state == UE_REGISTERED &&
	    m.type == NAS_DL_TRANSPORT)
		rc = on_dl_transport(u, nas_in, n, &m);
	else
		log_warn("usim: unexpected NAS message 0x%02x (SHT %u) in "
			 "state %d",
		    m.type, sht, (int)u->state);
	OPENSSL_cleanse(&m, sizeof(m));
	OPENSSL_cleanse(plain, plen);
	return rc;
}

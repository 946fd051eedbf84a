/* Minimal 5GMM codec (TS 24.501 8.2, 9.11); NAS security is in nas_sec.c. */
#include <string.h>

#include "common/log.h"
#include "ike/nas.h"
#include "ike/nas_5gsm.h"

/* Optional IEIs we build or look for. */
#define IEI_UE_SEC_CAP 0x2e /* TLV 4-10 */
#define IEI_RAND       0x21 /* TV 17 */
#define IEI_AUTN       0x20 /* TLV 18 */
#define IEI_RES_STAR   0x2d /* TLV 6-18 */
#define IEI_AUTS       0x30 /* TLV 16 (auth failure parameter) */
#define IEI_GUTI       0x77 /* TLV-E 14 */
#define IEI_PSI	       0x12 /* TV 2: PDU session ID */
#define IEI_REQ_TYPE   0x80 /* TV 1: request type */
#define IEI_SNSSAI     0x22 /* TLV 3-10 */
#define IEI_DNN	       0x25 /* TLV 3-102 */
#define IEI_5GMM_CAUSE 0x58 /* TV 2 */

/* ---- encoding ---------------------------------------------------------- */

static int
put_lv(struct buf *b, const uint8_t *p, size_t n)
{
	if (n > 0xff || buf_add_u8(b, (uint8_t)n) == -1)
		return -1;
	return buf_add(b, p, n);
}

static int
put_tlv(struct buf *b, uint8_t iei, const uint8_t *p, size_t n)
{
	if (buf_add_u8(b, iei) == -1)
		return -1;
	return put_lv(b, p, n);
}

int
nas_put_lve(struct buf *b, const uint8_t *p, size_t n)
{
	if (n > 0xffff || buf_add_u16(b, (uint16_t)n) == -1)
		return -1;
	return buf_add(b, p, n);
}

/* UL/DL NAS TRANSPORT (8.2.10, 8.2.11): spare | payload container type,
 * payload container (LV-E), then PDU session ID, request type, S-NSSAI,
 * DNN in the order of the tables. */
static int
enc_transport(const struct nas_msg *m, struct buf *b)
{
	uint8_t dnn[NAS_DNN_MAX + 1], sn[4] = { m->sst };
	size_t	dnn_len;

	if (m->payload_len == 0 ||
	    buf_add_u8(b, m->payload_type & 0x0f) == -1 ||
	    nas_put_lve(b, m->payload, m->payload_len) == -1)
		return -1;
	if (m->psi != 0 &&
	    (buf_add_u8(b, IEI_PSI) == -1 || buf_add_u8(b, m->psi) == -1))
		return -1;
	if (m->type == NAS_DL_TRANSPORT)
		return 0;
	if (m->req_type != 0 &&
	    buf_add_u8(b, (uint8_t)(IEI_REQ_TYPE | (m->req_type & 7))) == -1)
		return -1;
	memcpy(sn + 1, m->sd, 3);
	if (m->has_snssai &&
	    put_tlv(b, IEI_SNSSAI, sn, m->has_sd ? 4 : 1) == -1)
		return -1;
	if (m->dnn[0] != '\0' &&
	    (nas_dnn_encode(m->dnn, dnn, &dnn_len) == -1 ||
		put_tlv(b, IEI_DNN, dnn, dnn_len) == -1))
		return -1;
	return 0;
}

static int
enc_body(const struct nas_msg *m, struct buf *b)
{
	uint8_t cap[2] = { m->cap_ea, m->cap_ia };

	switch (m->type) {
	case NAS_REG_REQUEST:
		if (buf_add_u8(b,
			(uint8_t)((m->ngksi & 0x0f) << 4 |
			    (m->reg_type & 0x0f))) == -1 ||
		    nas_put_lve(b, m->id, m->id_len) == -1)
			return -1;
		if (m->has_cap && put_tlv(b, IEI_UE_SEC_CAP, cap, 2) == -1)
			return -1;
		return 0;
	case NAS_REG_ACCEPT:
		if (put_lv(b, &m->reg_result, 1) == -1)
			return -1;
		if (m->id_len > 0 &&
		    (buf_add_u8(b, IEI_GUTI) == -1 ||
			nas_put_lve(b, m->id, m->id_len) == -1))
			return -1;
		return 0;
	case NAS_AUTH_REQUEST:
		if (m->abba_len < 2 || m->abba_len > NAS_MAX_ABBA ||
		    buf_add_u8(b, m->ngksi & 0x0f) == -1 ||
		    put_lv(b, m->abba, m->abba_len) == -1 ||
		    buf_add_u8(b, IEI_RAND) == -1 ||
		    buf_add(b, m->rand, 16) == -1 ||
		    put_tlv(b, IEI_AUTN, m->autn, 16) == -1)
			return -1;
		return 0;
	case NAS_AUTH_RESPONSE:
		return put_tlv(b, IEI_RES_STAR, m->res_star, 16);
	case NAS_AUTH_FAILURE:
		if (buf_add_u8(b, m->cause) == -1)
			return -1;
		if (m->has_auts && put_tlv(b, IEI_AUTS, m->auts, 14) == -1)
			return -1;
		return 0;
	case NAS_REG_REJECT:
	case NAS_SMC_REJECT: return buf_add_u8(b, m->cause);
	case NAS_SMC:
		if (buf_add_u8(b, m->alg) == -1 ||
		    buf_add_u8(b, m->ngksi & 0x0f) == -1 ||
		    put_lv(b, cap, 2) == -1)
			return -1;
		return 0;
	case NAS_UL_TRANSPORT:
	case NAS_DL_TRANSPORT: return enc_transport(m, b);
	case NAS_REG_COMPLETE:
	case NAS_AUTH_REJECT:
	case NAS_SMC_COMPLETE: return 0;
	}
	log_err("%s: cannot build 5GMM message type 0x%02x", __func__, m->type);
	return -1;
}

int
nas_encode(const struct nas_msg *m, struct buf *out)
{
	if (buf_add_u8(out, NAS_EPD_5GMM) == -1 ||
	    buf_add_u8(out, NAS_SHT_PLAIN) == -1 ||
	    buf_add_u8(out, m->type) == -1 || enc_body(m, out) == -1) {
		log_err("%s: cannot build NAS message 0x%02x", __func__,
		    m->type);
		return -1;
	}
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

static int
get_lv(struct rd *r, const uint8_t **p, size_t *n)
{
	uint8_t l;

	if (rd_u8(r, &l) == -1 || rd_ptr(r, p, l) == -1)
		return -1;
	*n = l;
	return 0;
}

int
nas_get_lve(struct rd *r, const uint8_t **p, size_t *n)
{
	uint16_t l;

	if (rd_u16(r, &l) == -1 || rd_ptr(r, p, l) == -1)
		return -1;
	*n = l;
	return 0;
}

/* Skips an optional IE we do not use, by the IEI format rules of
 * TS 24.501 / 24.007 11.2.4: bit 8 set = 1-octet IE (type 1/2),
 * 0x7X = TLV-E, anything else TLV. */
static int
skip_ie(struct rd *r, uint8_t iei)
{
	const uint8_t *p;
	size_t	       n;

	if (iei & 0x80)
		return 0;
	if ((iei & 0xf0) == 0x70)
		return nas_get_lve(r, &p, &n);
	return get_lv(r, &p, &n);
}

static int
dec_cap(struct rd *r, struct nas_msg *m)
{
	const uint8_t *p;
	size_t	       n;

	if (get_lv(r, &p, &n) == -1 || n < 2 || n > 8)
		return -1;
	m->cap_ea = p[0];
	m->cap_ia = p[1];
	m->has_cap = true;
	return 0;
}

/* An optional IE of UL/DL NAS TRANSPORT: 1 if it was one we read, 0 if
 * not ours, -1 malformed. */
static int
dec_transport_ie(struct rd *r, struct nas_msg *m, uint8_t iei)
{
	const uint8_t *p;
	size_t	       n;

	if (iei == IEI_PSI || iei == IEI_5GMM_CAUSE || iei == 0x59)
		return rd_u8(r, iei == IEI_PSI ? &m->psi : &m->cause) == -1 ?
		    -1 :
		    1; /* TV 2; 0x59 old PDU session ID */
	if ((iei & 0xf0) == IEI_REQ_TYPE) {
		m->req_type = iei & 0x07;
		return 1;
	}
	if (iei == IEI_SNSSAI) {
		if (get_lv(r, &p, &n) == -1 || (n != 1 && n != 4 && n != 8))
			return -1;
		m->has_snssai = true;
		m->sst = p[0];
		m->has_sd = n >= 4;
		if (m->has_sd)
			memcpy(m->sd, p + 1, 3);
		return 1;
	}
	if (iei == IEI_DNN)
		return get_lv(r, &p, &n) == -1 ||
			nas_dnn_decode(p, n, m->dnn) == -1 ?
		    -1 :
		    1;
	return 0;
}

/* Optional IEs after the mandatory part; `want` names the ones this
 * message type may carry and we keep. */
static int
dec_optional(struct rd *r, struct nas_msg *m)
{
	const uint8_t *p;
	size_t	       n;
	uint8_t	       iei;
	int	       t;

	while (rd_left(r) > 0) {
		if (rd_u8(r, &iei) == -1)
			return -1;
		if ((m->type == NAS_UL_TRANSPORT ||
			m->type == NAS_DL_TRANSPORT) &&
		    (t = dec_transport_ie(r, m, iei)) != 0) {
			if (t == -1)
				return -1;
		} else if (m->type == NAS_REG_REQUEST &&
		    iei == IEI_UE_SEC_CAP) {
			if (dec_cap(r, m) == -1)
				return -1;
		} else if (m->type == NAS_REG_ACCEPT && iei == IEI_GUTI) {
			if (nas_get_lve(r, &p, &n) == -1 || n != 11 ||
			    (p[0] & 0x07) != NAS_ID_GUTI)
				return -1;
			memcpy(m->id, p, n);
			m->id_len = n;
			m->id_type = NAS_ID_GUTI;
		} else if (m->type == NAS_AUTH_FAILURE && iei == IEI_AUTS) {
			if (get_lv(r, &p, &n) == -1 || n != 14)
				return -1;
			memcpy(m->auts, p, 14);
			m->has_auts = true;
		} else if (m->type == NAS_AUTH_RESPONSE &&
		    iei == IEI_RES_STAR) {
			if (get_lv(r, &p, &n) == -1 || n != 16)
				return -1;
			memcpy(m->res_star, p, 16);
			m->has_res_star = true;
		} else if (m->type == NAS_AUTH_REQUEST && iei == IEI_RAND) {
			return -1; /* mandatory part, never repeated */
		} else if (skip_ie(r, iei) == -1)
			return -1;
	}
	return 0;
}

static int
dec_mandatory(struct rd *r, struct nas_msg *m)
{
	const uint8_t *p;
	size_t	       n;
	uint8_t	       v, iei;

	switch (m->type) {
	case NAS_REG_REQUEST:
		if (rd_u8(r, &v) == -1 || nas_get_lve(r, &p, &n) == -1 ||
		    n == 0 || n > NAS_MAX_ID)
			return -1;
		m->reg_type = v & 0x0f;
		m->ngksi = v >> 4;
		memcpy(m->id, p, n);
		m->id_len = n;
		m->id_type = p[0] & 0x07;
		return 0;
	case NAS_REG_ACCEPT:
		if (get_lv(r, &p, &n) == -1 || n != 1)
			return -1;
		m->reg_result = p[0];
		return 0;
	case NAS_AUTH_REQUEST:
		if (rd_u8(r, &v) == -1 || get_lv(r, &p, &n) == -1 || n < 2 ||
		    n > NAS_MAX_ABBA)
			return -1;
		m->ngksi = v & 0x0f;
		memcpy(m->abba, p, n);
		m->abba_len = n;
		/* RAND and AUTN are optional in 8.2.1 (EAP-AKA' has none);
		 * 5G-AKA needs both, in this order. */
		if (rd_u8(r, &iei) == -1 || iei != IEI_RAND ||
		    rd_bytes(r, m->rand, 16) == -1 || rd_u8(r, &iei) == -1 ||
		    iei != IEI_AUTN || get_lv(r, &p, &n) == -1 || n != 16)
			return -1;
		memcpy(m->autn, p, 16);
		return 0;
	case NAS_AUTH_FAILURE:
	case NAS_REG_REJECT:
	case NAS_SMC_REJECT: return rd_u8(r, &m->cause);
	case NAS_SMC:
		if (rd_u8(r, &m->alg) == -1 || rd_u8(r, &v) == -1 ||
		    dec_cap(r, m) == -1)
			return -1;
		m->ngksi = v & 0x0f;
		return 0;
	case NAS_UL_TRANSPORT:
	case NAS_DL_TRANSPORT:
		if (rd_u8(r, &v) == -1 ||
		    nas_get_lve(r, &m->payload, &m->payload_len) == -1 ||
		    m->payload_len == 0)
			return -1;
		m->payload_type = v & 0x0f;
		return 0;
	case NAS_AUTH_RESPONSE:
	case NAS_REG_COMPLETE:
	case NAS_AUTH_REJECT:
	case NAS_SMC_COMPLETE: return 0;
	}
	return -1;
}

int
nas_decode(const uint8_t *p, size_t n, struct nas_msg *m)
{
	struct rd r;
	uint8_t	  epd, sht;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	if (rd_u8(&r, &epd) == -1 || rd_u8(&r, &sht) == -1 ||
	    rd_u8(&r, &m->type) == -1) {
		log_debug("%s: truncated header (%zu bytes)", __func__, n);
		return -1;
	}
	if (epd != NAS_EPD_5GMM || (sht & 0x0f) != NAS_SHT_PLAIN) {
		log_debug("%s: not plain 5GMM (EPD 0x%02x SHT %u)", __func__,
		    epd, sht & 0x0fu);
		return -1;
	}
	if (dec_mandatory(&r, m) == -1 || dec_optional(&r, m) == -1) {
		log_debug("%s: malformed 5GMM message type 0x%02x", __func__,
		    m->type);
		return -1;
	}
	/* The Authentication Response parameter is optional in 8.2.2 but
	 * 5G-AKA cannot do without it. */
	if (m->type == NAS_AUTH_RESPONSE && !m->has_res_star) {
		log_debug("%s: Authentication Response without RES*", __func__);
		return -1;
	}
	return 0;
}

/* ---- identities -------------------------------------------------------- */

bool
nas_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, "0123456789") == n;
}

int
nas_plmn_encode(const char *mcc, const char *mnc, uint8_t out[static 3])
{
	uint8_t m3;

	if (!nas_digits(mcc, 3, 3) || !nas_digits(mnc, 2, 3)) {
		log_err("%s: bad PLMN \"%s\"/\"%s\"", __func__, mcc, mnc);
		return -1;
	}
	m3 = strlen(mnc) == 3 ? (uint8_t)(mnc[2] - '0') : 0x0f;
	out[0] = (uint8_t)((mcc[1] - '0') << 4 | (mcc[0] - '0'));
	out[1] = (uint8_t)(m3 << 4 | (mcc[2] - '0'));
	out[2] = (uint8_t)((mnc[1] - '0') << 4 | (mnc[0] - '0'));
	return 0;
}

int
nas_suci_build(const char *imsi, unsigned mnc_len, uint8_t *id, size_t *id_len)
{
	char   mcc[4], mnc[4];
	size_t n, msin, o = 0;

	if (strncmp(imsi, "imsi-", 5) == 0)
		imsi += 5;
	n = strlen(imsi);
	if (!nas_digits(imsi, 6, 15) || (mnc_len != 2 && mnc_len != 3) ||
	    n <= 3 + mnc_len) {
		log_err("%s: bad IMSI (%zu digits, MNC length %u)", __func__, n,
		    mnc_len);
		return -1;
	}
	memcpy(mcc, imsi, 3);
	mcc[3] = '\0';
	memcpy(mnc, imsi + 3, mnc_len);
	mnc[mnc_len] = '\0';
	id[o++] = NAS_ID_SUCI; /* SUPI format IMSI (000), type SUCI */
	if (nas_plmn_encode(mcc, mnc, id + o) == -1)
		return -1;
	o += 3;
	id[o++] = 0xf0; /* routing indicator "0" */
	id[o++] = 0xff;
	id[o++] = 0x00;	    /* protection scheme: null scheme */
	id[o++] = 0x00;	    /* home network public key id */
	msin = 3 + mnc_len; /* scheme output: MSIN in BCD */
	for (size_t i = msin; i < n; i += 2) {
		uint8_t lo = (uint8_t)(imsi[i] - '0');
		uint8_t hi = i + 1 < n ? (uint8_t)(imsi[i + 1] - '0') : 0x0f;

		id[o++] = (uint8_t)(hi << 4 | lo);
	}
	*id_len = o;
	return 0;
}

static int
bcd_digit(uint8_t d, char *out, size_t *o, size_t outlen, int filler_ok)
{
	if (d == 0x0f && filler_ok)
		return 0;
	if (d > 9 || *o + 1 >= outlen)
		return -1;
	out[(*o)++] = (char)('0' + d);
	return 0;
}

int
nas_suci_imsi(const uint8_t *id, size_t id_len, char *out, size_t outlen)
{
	size_t o = 0;

	if (id_len < 9 || id_len > 8 + 6 || (id[0] & 0x77) != NAS_ID_SUCI ||
	    (id[6] & 0x0f) != 0 || outlen < 16)
		return -1;
	if (bcd_digit(id[1] & 0x0f, out, &o, outlen, 0) == -1 ||
	    bcd_digit(id[1] >> 4, out, &o, outlen, 0) == -1 ||
	    bcd_digit(id[2] & 0x0f, out, &o, outlen, 0) == -1 ||
	    bcd_digit(id[3] & 0x0f, out, &o, outlen, 0) == -1 ||
	    bcd_digit(id[3] >> 4, out, &o, outlen, 0) == -1 ||
	    bcd_digit(id[2] >> 4, out, &o, outlen, 1) == -1)
		return -1;
	for (size_t i = 8; i < id_len; i++)
		if (bcd_digit(id[i] & 0x0f, out, &o, outlen, 0) == -1 ||
		    bcd_digit(id[i] >> 4, out, &o, outlen, i + 1 == id_len) ==
			-1)
			return -1;
	out[o] = '\0';
	return 0;
}

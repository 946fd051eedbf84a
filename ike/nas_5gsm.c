/* 5GSM PDU session establishment (TS 24.501 8.3.1-8.3.3, 9.11.4). */
#include <string.h>

#include "common/log.h"
#include "ike/nas_5gsm.h"

#define IEI_PDU_TYPE  0x90 /* TV 1, high nibble */
#define IEI_SSC_MODE  0xa0 /* TV 1, high nibble */
#define IEI_PDU_ADDR  0x29 /* TLV 7 (IPv4) */
#define IEI_5GSM_CAP  0x28 /* TLV, skipped */
#define QOS_OP_CREATE 1	   /* rule operation code "create new QoS rule" */
#define PF_MATCH_ALL  0x01 /* packet filter component type */
#define PF_BIDIR      3	   /* packet filter direction bidirectional */

/* ---- encoding ---------------------------------------------------------- */

/* One QoS rule (9.11.4.13): create, DQR, one match-all packet filter,
 * precedence 255, the QFI; as the LV-E "authorized QoS rules". */
static int
enc_qos_rules(const struct nas_sm *m, struct buf *b)
{
	const uint8_t rule[] = {
		(uint8_t)(QOS_OP_CREATE << 5 | 1 << 4 | 1), /* op, DQR, 1 PF */
		(uint8_t)(PF_BIDIR << 4 | 1), /* direction, id 1 */
		1, PF_MATCH_ALL,	      /* PF contents */
		0xff,			      /* precedence */
		(uint8_t)(m->qfi & 0x3f),     /* segregation 0 */
	};

	return buf_add_u16(b, (uint16_t)(3 + sizeof(rule))) == -1 ||
		buf_add_u8(b, m->qos_rule) == -1 ||
		buf_add_u16(b, (uint16_t)sizeof(rule)) == -1 ||
		buf_add(b, rule, sizeof(rule)) == -1 ?
	    -1 :
	    0;
}

static int
enc_accept(const struct nas_sm *m, struct buf *b)
{
	if (m->qfi == 0 || m->qfi > NAS_QFI_MAX || m->qos_rule == 0 ||
	    (m->pdu_type & 0xf8) || (m->ssc_mode & 0xf8))
		return -1;
	if (buf_add_u8(b, (uint8_t)(m->ssc_mode << 4 | m->pdu_type)) == -1 ||
	    enc_qos_rules(m, b) == -1 || buf_add_u8(b, 6) == -1 ||
	    buf_add_u8(b, m->ambr_unit) == -1 ||
	    buf_add_u16(b, m->ambr_dl) == -1 ||
	    buf_add_u8(b, m->ambr_unit) == -1 ||
	    buf_add_u16(b, m->ambr_ul) == -1)
		return -1;
	if (m->has_addr &&
	    (buf_add_u8(b, IEI_PDU_ADDR) == -1 || buf_add_u8(b, 5) == -1 ||
		buf_add_u8(b, NAS_PDU_IPV4) == -1 ||
		buf_add(b, m->addr, 4) == -1))
		return -1;
	return 0;
}

static int
enc_body(const struct nas_sm *m, struct buf *b)
{
	switch (m->type) {
	case NAS_SM_EST_REQUEST:
		/* integrity protection maximum data rate: full, both ways */
		if (buf_add_u8(b, 0xff) == -1 || buf_add_u8(b, 0xff) == -1)
			return -1;
		if (m->pdu_type != 0 &&
		    buf_add_u8(b,
			(uint8_t)(IEI_PDU_TYPE | (m->pdu_type & 7))) == -1)
			return -1;
		if (m->ssc_mode != 0 &&
		    buf_add_u8(b,
			(uint8_t)(IEI_SSC_MODE | (m->ssc_mode & 7))) == -1)
			return -1;
		return 0;
	case NAS_SM_EST_ACCEPT: return enc_accept(m, b);
	case NAS_SM_EST_REJECT: return buf_add_u8(b, m->cause);
	}
	return -1;
}

int
nas_sm_encode(const struct nas_sm *m, struct buf *out)
{
	if (m->psi == 0 || m->psi > 15 || m->pti == 0 || m->pti == 0xff ||
	    buf_add_u8(out, NAS_EPD_5GSM) == -1 ||
	    buf_add_u8(out, m->psi) == -1 || buf_add_u8(out, m->pti) == -1 ||
	    buf_add_u8(out, m->type) == -1 || enc_body(m, out) == -1) {
		log_err("%s: cannot build 5GSM message 0x%02x (PSI %u)",
		    __func__, m->type, m->psi);
		return -1;
	}
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/* The first QoS rule of the list: it must create a rule and carry a QFI;
 * further rules are read over (bounded) and ignored. */
static int
dec_qos_rules(struct rd *r, struct nas_sm *m)
{
	const uint8_t *p;
	struct rd      rules, rule;
	uint16_t       n, rlen;
	uint8_t	       op, pf, pflen, prec, qfi;

	if (rd_u16(r, &n) == -1 || rd_ptr(r, &p, n) == -1)
		return -1;
	rd_init(&rules, p, n);
	if (rd_u8(&rules, &m->qos_rule) == -1 || rd_u16(&rules, &rlen) == -1 ||
	    rd_ptr(&rules, &p, rlen) == -1 || m->qos_rule == 0)
		return -1;
	rd_init(&rule, p, rlen);
	if (rd_u8(&rule, &op) == -1 || op >> 5 != QOS_OP_CREATE)
		return -1;
	for (unsigned i = 0; i < (op & 0x0fu); i++)
		if (rd_u8(&rule, &pf) == -1 || rd_u8(&rule, &pflen) == -1 ||
		    rd_ptr(&rule, &p, pflen) == -1)
			return -1;
	if (rd_u8(&rule, &prec) == -1 || rd_u8(&rule, &qfi) == -1 ||
	    rd_left(&rule) != 0 || (qfi & 0x3f) == 0)
		return -1;
	m->qfi = qfi & 0x3f;
	return 0;
}

static int
dec_accept_opt(struct rd *r, struct nas_sm *m)
{
	const uint8_t *p;
	uint8_t	       iei, l;
	uint16_t       le;

	while (rd_left(r) > 0) {
		if (rd_u8(r, &iei) == -1)
			return -1;
		if (iei & 0x80)
			continue;	    /* type 1 IE */
		if ((iei & 0xf0) == 0x70) { /* TLV-E */
			if (rd_u16(r, &le) == -1 || rd_ptr(r, &p, le) == -1)
				return -1;
			continue;
		}
		if (iei == 0x59 || iei == 0x56) { /* TV 2: cause, RQ timer */
			if (rd_ptr(r, &p, 1) == -1)
				return -1;
			continue;
		}
		if (rd_u8(r, &l) == -1 || rd_ptr(r, &p, l) == -1)
			return -1;
		if (iei == IEI_PDU_ADDR) {
			if (l != 5 || (p[0] & 0x07) != NAS_PDU_IPV4)
				return -1;
			memcpy(m->addr, p + 1, 4);
			m->has_addr = true;
		}
	}
	return 0;
}

static int
dec_accept(struct rd *r, struct nas_sm *m)
{
	uint8_t sel, l, unit_ul;

	if (rd_u8(r, &sel) == -1 || dec_qos_rules(r, m) == -1 ||
	    rd_u8(r, &l) == -1 || l != 6 || rd_u8(r, &m->ambr_unit) == -1 ||
	    rd_u16(r, &m->ambr_dl) == -1 || rd_u8(r, &unit_ul) == -1 ||
	    rd_u16(r, &m->ambr_ul) == -1 || unit_ul != m->ambr_unit)
		return -1;
	m->pdu_type = sel & 0x07;
	m->ssc_mode = (sel >> 4) & 0x07;
	if (m->pdu_type == 0)
		return -1;
	return dec_accept_opt(r, m);
}

static int
dec_request(struct rd *r, struct nas_sm *m)
{
	const uint8_t *p;
	uint8_t	       iei, l;
	uint16_t       le;

	if (rd_ptr(r, &p, 2) == -1) /* integrity protection max data rate */
		return -1;
	while (rd_left(r) > 0) {
		if (rd_u8(r, &iei) == -1)
			return -1;
		if ((iei & 0xf0) == IEI_PDU_TYPE)
			m->pdu_type = iei & 0x07;
		else if ((iei & 0xf0) == IEI_SSC_MODE)
			m->ssc_mode = iei & 0x07;
		else if (iei & 0x80)
			continue;
		else if ((iei & 0xf0) == 0x70) {
			if (rd_u16(r, &le) == -1 || rd_ptr(r, &p, le) == -1)
				return -1;
		} else if (iei == 0x55) { /* TV 3: max packet filters */
			if (rd_ptr(r, &p, 2) == -1)
				return -1;
		} else if (rd_u8(r, &l) == -1 || rd_ptr(r, &p, l) == -1)
			return -1;
	}
	return 0;
}

int
nas_sm_decode(const uint8_t *p, size_t n, struct nas_sm *m)
{
	struct rd r;
	uint8_t	  epd;
	int	  rc = -1;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	if (rd_u8(&r, &epd) == -1 || epd != NAS_EPD_5GSM ||
	    rd_u8(&r, &m->psi) == -1 || rd_u8(&r, &m->pti) == -1 ||
	    rd_u8(&r, &m->type) == -1) {
		log_debug("%s: not a 5GSM message (%zu bytes)", __func__, n);
		return -1;
	}
	switch (m->type) {
	case NAS_SM_EST_REQUEST: rc = dec_request(&r, m); break;
	case NAS_SM_EST_ACCEPT: rc = dec_accept(&r, m); break;
	case NAS_SM_EST_REJECT:
		rc = rd_u8(&r, &m->cause) == -1 || rd_left(&r) != 0 ? -1 : 0;
		break;
	}
	if (rc == -1 || m->psi == 0 || m->psi > 15) {
		log_debug("%s: malformed 5GSM message 0x%02x", __func__,
		    m->type);
		return -1;
	}
	return 0;
}

/* ---- DNN --------------------------------------------------------------- */

int
nas_dnn_encode(const char *dnn, uint8_t *out, size_t *len)
{
	size_t n = strlen(dnn), o = 0;

	if (n == 0 || n > NAS_DNN_MAX)
		return -1;
	for (const char *s = dnn; *s != '\0';) {
		size_t l = strcspn(s, ".");

		if (l == 0 || l > 63)
			return -1;
		out[o++] = (uint8_t)l;
		memcpy(out + o, s, l);
		o += l;
		s += l;
		if (*s == '.' && *++s == '\0')
			return -1;
	}
	*len = o;
	return 0;
}

int
nas_dnn_decode(const uint8_t *p, size_t n, char *out)
{
	size_t i = 0, o = 0;

	if (n == 0 || n > NAS_DNN_MAX + 1)
		return -1;
	while (i < n) {
		size_t l = p[i++];

		if (l == 0 || l > n - i || o + (o > 0) + l > NAS_DNN_MAX)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			if (p[i + k] < 0x21 || p[i + k] > 0x7e ||
			    p[i + k] == '.')
				return -1;
			out[o++] = (char)p[i + k];
		}
		i += l;
	}
	out[o] = '\0';
	return 0;
}

/* EAP-5G (TS 24.502 9.3.2) encode/decode with bounds checks. */
#include <string.h>

#include "common/log.h"
#include "ike/eap5g.h"
#include "ike/nas.h"

#define EAP_HDR_LEN 4 /* Code, Identifier, Length */

const char *
eap5g_msg_name(uint8_t msg_id)
{
	switch (msg_id) {
	case EAP5G_START: return "5G-Start";
	case EAP5G_NAS: return "5G-NAS";
	case EAP5G_NOTIFICATION: return "5G-Notification";
	case EAP5G_STOP: return "5G-Stop";
	}
	return "5G-?";
}

static int
enc_body(const struct eap5g_msg *m, struct buf *b)
{
	if (m->msg_id == EAP5G_NAS) {
		if (m->nas_len == 0)
			return -1;
		if (m->code == EAP_CODE_RESPONSE &&
		    nas_put_lve(b, m->an, m->an_len) == -1)
			return -1;
		return nas_put_lve(b, m->nas, m->nas_len);
	}
	if (m->msg_id < EAP5G_START || m->msg_id > EAP5G_STOP)
		return -1;
	return buf_add(b, m->ext, m->ext_len);
}

int
eap5g_encode(const struct eap5g_msg *m, struct buf *out)
{
	size_t	 start = out->len, len;
	uint8_t *h;

	if ((h = buf_reserve(out, EAP_HDR_LEN)) == NULL)
		goto fail;
	h[0] = m->code;
	h[1] = m->id;
	if (m->code == EAP_CODE_REQUEST || m->code == EAP_CODE_RESPONSE) {
		if (buf_add_u8(out, EAP_TYPE_EXPANDED) == -1 ||
		    buf_add_u8(out, (uint8_t)(EAP5G_VENDOR_3GPP >> 16)) == -1 ||
		    buf_add_u16(out, (uint16_t)EAP5G_VENDOR_3GPP) == -1 ||
		    buf_add_u32(out, EAP5G_VENDOR_TYPE) == -1 ||
		    buf_add_u8(out, m->msg_id) == -1 ||
		    buf_add_u8(out, 0) == -1 || /* spare */
		    enc_body(m, out) == -1)
			goto fail;
	} else if (m->code != EAP_CODE_SUCCESS && m->code != EAP_CODE_FAILURE)
		goto fail;
	len = out->len - start;
	if (len > 0xffff)
		goto fail;
	/* back-patch the length (buf may have moved: index, not pointer) */
	out->data[start + 2] = (uint8_t)(len >> 8);
	out->data[start + 3] = (uint8_t)len;
	return 0;
fail:
	log_err("%s: cannot build EAP code %u %s", __func__, m->code,
	    eap5g_msg_name(m->msg_id));
	if (out->len > start)
		out->len = start;
	return -1;
}

static int
dec_body(struct rd *r, struct eap5g_msg *m)
{
	const uint8_t *p;
	size_t	       left = rd_left(r);

	if (m->msg_id == EAP5G_NAS) {
		if (m->code == EAP_CODE_RESPONSE &&
		    nas_get_lve(r, &m->an, &m->an_len) == -1)
			return -1;
		if (nas_get_lve(r, &m->nas, &m->nas_len) == -1 ||
		    m->nas_len == 0)
			return -1;
		/* 24.502 allows extensions after the NAS-PDU; keep them. */
		m->ext_len = rd_left(r);
		return rd_ptr(r, &m->ext, m->ext_len);
	}
	if (m->msg_id < EAP5G_START || m->msg_id > EAP5G_STOP)
		return -1;
	if (rd_ptr(r, &p, left) == -1)
		return -1;
	m->ext = left ? p : NULL;
	m->ext_len = left;
	return 0;
}

int
eap5g_decode(const uint8_t *p, size_t n, struct eap5g_msg *m)
{
	struct rd r;
	uint16_t  len, vt16;
	uint32_t  vtype;
	uint8_t	  type, v8, spare;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	if (rd_u8(&r, &m->code) == -1 || rd_u8(&r, &m->id) == -1 ||
	    rd_u16(&r, &len) == -1 || len != n)
		goto bad;
	if (m->code == EAP_CODE_SUCCESS || m->code == EAP_CODE_FAILURE)
		return len == EAP_HDR_LEN ? 0 : -1;
	if (m->code != EAP_CODE_REQUEST && m->code != EAP_CODE_RESPONSE)
		goto bad;
	if (rd_u8(&r, &type) == -1 || type != EAP_TYPE_EXPANDED ||
	    rd_u8(&r, &v8) == -1 || rd_u16(&r, &vt16) == -1 ||
	    ((uint32_t)v8 << 16 | vt16) != EAP5G_VENDOR_3GPP ||
	    rd_u32(&r, &vtype) == -1 || vtype != EAP5G_VENDOR_TYPE ||
	    rd_u8(&r, &m->msg_id) == -1 || rd_u8(&r, &spare) == -1 ||
	    dec_body(&r, m) == -1)
		goto bad;
	return 0;
bad:
	log_debug("%s: malformed EAP-5G packet (%zu bytes)", __func__, n);
	return -1;
}

int
eap5g_an_build(struct buf *out, const char *mcc, const char *mnc)
{
	uint8_t plmn[3];

	if (nas_plmn_encode(mcc, mnc, plmn) == -1 ||
	    buf_add_u8(out, EAP5G_AN_PLMN_ID) == -1 ||
	    buf_add_u8(out, 3) == -1 || buf_add(out, plmn, 3) == -1 ||
	    buf_add_u8(out, EAP5G_AN_EST_CAUSE) == -1 ||
	    buf_add_u8(out, 1) == -1 ||
	    buf_add_u8(out, EAP5G_CAUSE_MO_SIGNALLING) == -1)
		return -1;
	return 0;
}

int
eap5g_an_find(const uint8_t *an, size_t an_len, uint8_t type,
    const uint8_t **val, size_t *vlen)
{
	struct rd      r;
	const uint8_t *p;
	uint8_t	       t, l;

	*val = NULL;
	*vlen = 0;
	rd_init(&r, an, an_len);
	while (rd_left(&r) > 0) {
		if (rd_u8(&r, &t) == -1 || rd_u8(&r, &l) == -1 ||
		    rd_ptr(&r, &p, l) == -1) {
			*val = NULL;
			*vlen = 0;
			return -1;
		}
		if (t == type && *val == NULL) {
			*val = p;
			*vlen = l;
		}
	}
	return 0;
}

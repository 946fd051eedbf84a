/*
 * IKEv2 payloads: builders that append one payload each to a chain
 * (reserve / fill / back-patch of next-payload and length), and the SA
 * payload from decoded proposals.
 */
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/pld.h"

void
ike_chain_init(struct ike_chain *c, struct buf *b, size_t np_off)
{
	c->b = b;
	c->np_off = np_off;
	c->first = IKE_PL_NONE;
}

int
ike_pld_begin(struct ike_chain *c, uint8_t type, bool critical, size_t *start)
{
	uint8_t *h;

	*start = c->b->len;
	if ((h = buf_reserve(c->b, IKE_GEN_HDR_LEN)) == NULL) {
		log_err("%s: no room for %s payload", __func__,
		    ike_payload_name(type));
		return -1;
	}
	h[0] = IKE_PL_NONE;
	h[1] = critical ? IKE_PLD_CRITICAL : 0;
	h[2] = h[3] = 0;
	if (c->np_off != IKE_CHAIN_DETACHED)
		c->b->data[c->np_off] = type;
	if (c->first == IKE_PL_NONE)
		c->first = type;
	c->np_off = *start;
	return 0;
}

int
ike_pld_end(struct ike_chain *c, size_t start)
{
	size_t len = c->b->len - start;

	if (len > 0xffff) {
		log_err("%s: payload of %zu bytes too long", __func__, len);
		return -1;
	}
	c->b->data[start + 2] = (uint8_t)(len >> 8);
	c->b->data[start + 3] = (uint8_t)len;
	return 0;
}

static int
fail_add(const char *what, uint8_t type)
{
	log_err("ike_pld_add: %s payload: %s", ike_payload_name(type), what);
	return -1;
}

/* Payload with a small fixed prefix and then data. */
static int
add_simple(struct ike_chain *c, uint8_t type, const uint8_t *prefix,
    size_t plen, const uint8_t *data, size_t len)
{
	size_t start;

	if (ike_pld_begin(c, type, false, &start) == -1)
		return -1;
	if (buf_add(c->b, prefix, plen) == -1 || buf_add(c->b, data, len) == -1)
		return fail_add("does not fit", type);
	return ike_pld_end(c, start);
}

int
ike_pld_add_ke(struct ike_chain *c, uint16_t group, const uint8_t *data,
    size_t len)
{
	uint8_t pre[4] = { (uint8_t)(group >> 8), (uint8_t)group, 0, 0 };

	if (len == 0)
		return fail_add("empty", IKE_PL_KE);
	return add_simple(c, IKE_PL_KE, pre, sizeof(pre), data, len);
}

int
ike_pld_add_nonce(struct ike_chain *c, const uint8_t *n, size_t len)
{
	if (len < 16 || len > 256)
		return fail_add("nonce length not in 16..256", IKE_PL_NONCE);
	return add_simple(c, IKE_PL_NONCE, NULL, 0, n, len);
}

int
ike_pld_add_notify(struct ike_chain *c, uint8_t proto, const uint8_t *spi,
    size_t spi_len, uint16_t type, const uint8_t *data, size_t len)
{
	size_t start;

	if (spi_len > IKE_SPI_MAX)
		return fail_add("SPI too long", IKE_PL_NOTIFY);
	if (ike_pld_begin(c, IKE_PL_NOTIFY, false, &start) == -1)
		return -1;
	if (buf_add_u8(c->b, proto) == -1 ||
	    buf_add_u8(c->b, (uint8_t)spi_len) == -1 ||
	    buf_add_u16(c->b, type) == -1 ||
	    buf_add(c->b, spi, spi_len) == -1 || buf_add(c->b, data, len) == -1)
		return fail_add("does not fit", IKE_PL_NOTIFY);
	return ike_pld_end(c, start);
}

int
ike_pld_add_id(struct ike_chain *c, uint8_t pltype, uint8_t idtype,
    const uint8_t *data, size_t len)
{
	uint8_t pre[4] = { idtype, 0, 0, 0 };

	if ((pltype != IKE_PL_IDI && pltype != IKE_PL_IDR) || len == 0)
		return fail_add("bad type or empty", pltype);
	return add_simple(c, pltype, pre, sizeof(pre), data, len);
}

int
ike_pld_add_auth(struct ike_chain *c, uint8_t method, const uint8_t *data,
    size_t len)
{
	uint8_t pre[4] = { method, 0, 0, 0 };

	if (len == 0)
		return fail_add("empty", IKE_PL_AUTH);
	return add_simple(c, IKE_PL_AUTH, pre, sizeof(pre), data, len);
}

int
ike_pld_add_cert(struct ike_chain *c, uint8_t pltype, uint8_t enc,
    const uint8_t *data, size_t len)
{
	if (pltype != IKE_PL_CERT && pltype != IKE_PL_CERTREQ)
		return fail_add("bad type", pltype);
	return add_simple(c, pltype, &enc, 1, data, len);
}

int
ike_pld_add_eap(struct ike_chain *c, const uint8_t *eap, size_t len)
{
	if (len < 4 || len > 0xffff || (size_t)((eap[2] << 8) | eap[3]) != len)
		return fail_add("EAP length field disagrees", IKE_PL_EAP);
	return add_simple(c, IKE_PL_EAP, NULL, 0, eap, len);
}

int
ike_pld_add_cp(struct ike_chain *c, const struct ike_cp_pld *cp)
{
	uint8_t pre[4] = { cp->type, 0, 0, 0 };
	size_t	start;

	if (cp->nattr > IKE_CP_ATTR_MAX)
		return fail_add("too many attributes", IKE_PL_CP);
	if (ike_pld_begin(c, IKE_PL_CP, false, &start) == -1 ||
	    buf_add(c->b, pre, sizeof(pre)) == -1)
		return -1;
	for (size_t i = 0; i < cp->nattr; i++) {
		const struct ike_cp_attr *a = &cp->attr[i];

		if (a->val.len > 0xffff ||
		    buf_add_u16(c->b, a->type & 0x7fff) == -1 ||
		    buf_add_u16(c->b, (uint16_t)a->val.len) == -1 ||
		    buf_add(c->b, a->val.p, a->val.len) == -1)
			return fail_add("attribute does not fit", IKE_PL_CP);
	}
	return ike_pld_end(c, start);
}

int
ike_pld_add_ts(struct ike_chain *c, uint8_t pltype, const struct ike_ts_pld *ts)
{
	uint8_t pre[4] = { (uint8_t)ts->nts, 0, 0, 0 };
	size_t	start, alen;

	if ((pltype != IKE_PL_TSI && pltype != IKE_PL_TSR) || ts->nts == 0 ||
	    ts->nts > IKE_TS_MAX)
		return fail_add("bad type or selector count", pltype);
	if (ike_pld_begin(c, pltype, false, &start) == -1 ||
	    buf_add(c->b, pre, sizeof(pre)) == -1)
		return -1;
	for (size_t i = 0; i < ts->nts; i++) {
		const struct ike_ts *t = &ts->ts[i];

		if (t->type != IKE_TS_IPV4_ADDR_RANGE &&
		    t->type != IKE_TS_IPV6_ADDR_RANGE)
			return fail_add("unknown selector type", pltype);
		alen = t->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
		if (buf_add_u8(c->b, t->type) == -1 ||
		    buf_add_u8(c->b, t->ipproto) == -1 ||
		    buf_add_u16(c->b, (uint16_t)(8 + 2 * alen)) == -1 ||
		    buf_add_u16(c->b, t->sport) == -1 ||
		    buf_add_u16(c->b, t->eport) == -1 ||
		    buf_add(c->b, t->start, alen) == -1 ||
		    buf_add(c->b, t->end, alen) == -1)
			return fail_add("does not fit", pltype);
	}
	return ike_pld_end(c, start);
}

int
ike_pld_add_delete(struct ike_chain *c, uint8_t proto, uint8_t spi_len,
    const uint8_t *spis, uint16_t nspi)
{
	uint8_t pre[4] = { proto, spi_len, (uint8_t)(nspi >> 8),
		(uint8_t)nspi };

	if (proto == IKE_PROTO_IKE ? (spi_len != 0 || nspi != 0) : spi_len != 4)
		return fail_add("bad protocol / SPI size", IKE_PL_DELETE);
	return add_simple(c, IKE_PL_DELETE, pre, sizeof(pre), spis,
	    (size_t)nspi * spi_len);
}

/* ---- SA payload ---- */

static void
patch_u16(struct buf *b, size_t off, size_t v)
{
	b->data[off] = (uint8_t)(v >> 8);
	b->data[off + 1] = (uint8_t)v;
}

static int
add_xform(struct buf *b, const struct ike_xform *x, bool last)
{
	size_t start = b->len;

	if (buf_add_u8(b, last ? 0 : 3) == -1 || buf_add_u8(b, 0) == -1 ||
	    buf_add_u16(b, 0) == -1 || buf_add_u8(b, x->type) == -1 ||
	    buf_add_u8(b, 0) == -1 || buf_add_u16(b, x->id) == -1)
		return -1;
	if (x->keylen != 0 &&
	    (buf_add_u16(b, IKE_ATTR_AF | IKE_ATTR_KEY_LENGTH) == -1 ||
		buf_add_u16(b, x->keylen) == -1))
		return -1;
	patch_u16(b, start + 2, b->len - start);
	return 0;
}

static int
add_proposal(struct buf *b, const struct ike_proposal *p, bool last)
{
	size_t start = b->len;

	if (p->nxf == 0 || p->nxf > IKE_XF_MAX || p->spi_len > IKE_SPI_MAX)
		return -1;
	if (buf_add_u8(b, last ? 0 : 2) == -1 || buf_add_u8(b, 0) == -1 ||
	    buf_add_u16(b, 0) == -1 || buf_add_u8(b, p->num) == -1 ||
	    buf_add_u8(b, p->proto) == -1 || buf_add_u8(b, p->spi_len) == -1 ||
	    buf_add_u8(b, (uint8_t)p->nxf) == -1 ||
	    buf_add(b, p->spi, p->spi_len) == -1)
		return -1;
	for (size_t i = 0; i < p->nxf; i++)
		if (add_xform(b, &p->xf[i], i + 1 == p->nxf) == -1)
			return -1;
	if (b->len - start > 0xffff)
		return -1;
	patch_u16(b, start + 2, b->len - start);
	return 0;
}

int
ike_pld_add_sa_raw(struct ike_chain *c, const struct ike_sa_pld *sa)
{
	size_t start;

	if (sa->nprop == 0 || sa->nprop > IKE_PROP_MAX)
		return fail_add("proposal count", IKE_PL_SA);
	if (ike_pld_begin(c, IKE_PL_SA, false, &start) == -1)
		return -1;
	for (size_t i = 0; i < sa->nprop; i++)
		if (add_proposal(c->b, &sa->prop[i], i + 1 == sa->nprop) == -1)
			return fail_add("bad or oversized proposal", IKE_PL_SA);
	return ike_pld_end(c, start);
}

/*
 * IKEv2 payloads: the bounded parser of one payload chain (check, then
 * copy). Builders are in ike/pld_build.c, SA proposals in ike/pld_sa.c.
 */
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/pld.h"

static int
syntax(struct ike_pld *out, const char *what, unsigned long v)
{
	log_warn("ike_pld_parse: %s (%lu)", what, v);
	out->err = IKE_N_INVALID_SYNTAX;
	return -1;
}

static void
bytes_rest(struct rd *r, struct ike_bytes *b)
{
	b->len = rd_left(r);
	b->p = b->len ? r->p + r->off : NULL;
	r->off = r->len;
}

static int
parse_attr(struct rd *r, struct ike_xform *x)
{
	uint16_t       type, val;
	const uint8_t *skip;

	if (rd_u16(r, &type) == -1 || rd_u16(r, &val) == -1)
		return -1;
	if ((type & IKE_ATTR_AF) == 0) { /* TLV: val is the length */
		if (rd_ptr(r, &skip, val) == -1)
			return -1;
		x->bad_attr = 1;
		return 0;
	}
	if ((type & ~IKE_ATTR_AF) == IKE_ATTR_KEY_LENGTH && x->keylen == 0)
		x->keylen = val;
	else
		x->bad_attr = 1;
	return 0;
}

/* One transform substructure; *last is its "last" flag. */
static int
parse_xform(struct ike_pld *out, struct rd *r, struct ike_xform *x, bool *last)
{
	uint8_t	       lastb, res, type, res2;
	uint16_t       len, id;
	const uint8_t *body;
	struct rd      a;

	if (rd_u8(r, &lastb) == -1 || rd_u8(r, &res) == -1 ||
	    rd_u16(r, &len) == -1)
		return syntax(out, "SA: transform header truncated",
		    rd_left(r));
	if ((lastb != 0 && lastb != 3) || len < 8 ||
	    rd_ptr(r, &body, (size_t)len - 4) == -1)
		return syntax(out, "SA: bad transform header, length", len);
	rd_init(&a, body, (size_t)len - 4);
	if (rd_u8(&a, &type) == -1 || rd_u8(&a, &res2) == -1 ||
	    rd_u16(&a, &id) == -1)
		return syntax(out, "SA: transform truncated", len);
	memset(x, 0, sizeof(*x));
	x->type = type;
	x->id = id;
	while (rd_left(&a) > 0)
		if (parse_attr(&a, x) == -1)
			return syntax(out, "SA: transform attribute truncated",
			    rd_left(&a));
	*last = lastb == 0;
	return 0;
}

static int
parse_proposal_body(struct ike_pld *out, struct rd *r, struct ike_proposal *p)
{
	uint8_t nxf;
	bool	last = false;

	if (rd_u8(r, &p->num) == -1 || rd_u8(r, &p->proto) == -1 ||
	    rd_u8(r, &p->spi_len) == -1 || rd_u8(r, &nxf) == -1)
		return syntax(out, "SA: proposal truncated", rd_left(r));
	if (p->spi_len > IKE_SPI_MAX || rd_bytes(r, p->spi, p->spi_len) == -1)
		return syntax(out, "SA: bad SPI size", p->spi_len);
	if (nxf == 0 || nxf > IKE_XF_MAX)
		return syntax(out, "SA: transform count", nxf);
	for (p->nxf = 0; p->nxf < nxf; p->nxf++) {
		if (parse_xform(out, r, &p->xf[p->nxf], &last) == -1)
			return -1;
		if (last != (p->nxf + 1 == nxf))
			return syntax(out, "SA: transform last flag wrong at",
			    p->nxf);
	}
	if (rd_left(r) != 0)
		return syntax(out, "SA: bytes after transforms", rd_left(r));
	return 0;
}

static int
parse_sa(struct ike_pld *out, struct rd *r)
{
	struct ike_sa_pld *sa = &out->sa;
	uint8_t		   lastb, res;
	uint16_t	   len;
	const uint8_t	  *body;
	struct rd	   pr;

	for (;;) {
		if (sa->nprop == IKE_PROP_MAX)
			return syntax(out, "SA: too many proposals", sa->nprop);
		if (rd_u8(r, &lastb) == -1 || rd_u8(r, &res) == -1 ||
		    rd_u16(r, &len) == -1)
			return syntax(out, "SA: proposal header truncated",
			    rd_left(r));
		if ((lastb != 0 && lastb != 2) || len < 8 ||
		    rd_ptr(r, &body, (size_t)len - 4) == -1)
			return syntax(out, "SA: bad proposal length", len);
		rd_init(&pr, body, (size_t)len - 4);
		if (parse_proposal_body(out, &pr, &sa->prop[sa->nprop]) == -1)
			return -1;
		sa->nprop++;
		if (lastb == 0)
			break;
	}
	if (rd_left(r) != 0)
		return syntax(out, "SA: bytes after last proposal", rd_left(r));
	return 0;
}

static int
parse_ke(struct ike_pld *out, struct rd *r)
{
	uint16_t res;

	if (rd_u16(r, &out->ke.group) == -1 || rd_u16(r, &res) == -1 ||
	    rd_left(r) == 0)
		return syntax(out, "KE: truncated", rd_left(r));
	bytes_rest(r, &out->ke.data);
	return 0;
}

static int
parse_nonce(struct ike_pld *out, struct rd *r)
{
	if (rd_left(r) < 16 || rd_left(r) > 256)
		return syntax(out, "Nonce: length not in 16..256", rd_left(r));
	bytes_rest(r, &out->nonce);
	return 0;
}

static int
parse_notify(struct ike_pld *out, struct rd *r)
{
	struct ike_notify *n;

	if (out->nnotify == IKE_NOTIFY_MAX)
		return syntax(out, "Notify: too many", out->nnotify);
	n = &out->notify[out->nnotify];
	if (rd_u8(r, &n->proto) == -1 || rd_u8(r, &n->spi_len) == -1 ||
	    rd_u16(r, &n->type) == -1)
		return syntax(out, "Notify: truncated", rd_left(r));
	if (n->spi_len > IKE_SPI_MAX || rd_bytes(r, n->spi, n->spi_len) == -1)
		return syntax(out, "Notify: bad SPI size", n->spi_len);
	bytes_rest(r, &n->data);
	out->nnotify++;
	return 0;
}

static int
parse_id(struct ike_pld *out, struct rd *r, struct ike_id_pld *id)
{
	uint8_t res[3];

	id->body.p = r->p;
	id->body.len = r->len;
	if (rd_u8(r, &id->type) == -1 || rd_bytes(r, res, 3) == -1 ||
	    rd_left(r) == 0)
		return syntax(out, "ID: truncated", rd_left(r));
	bytes_rest(r, &id->data);
	return 0;
}

static int
parse_auth(struct ike_pld *out, struct rd *r)
{
	uint8_t res[3];

	if (rd_u8(r, &out->auth.method) == -1 || rd_bytes(r, res, 3) == -1 ||
	    rd_left(r) == 0)
		return syntax(out, "AUTH: truncated", rd_left(r));
	bytes_rest(r, &out->auth.data);
	return 0;
}

static int
parse_cert(struct ike_pld *out, struct rd *r, bool req)
{
	size_t		    *n = req ? &out->ncertreq : &out->ncert;
	struct ike_cert_pld *c = req ? out->certreq : out->cert;

	if (*n == IKE_CERT_MAX)
		return syntax(out, "CERT/CERTREQ: too many", *n);
	if (rd_u8(r, &c[*n].enc) == -1)
		return syntax(out, "CERT/CERTREQ: truncated", 0);
	bytes_rest(r, &c[*n].data);
	(*n)++;
	return 0;
}

static int
parse_eap(struct ike_pld *out, struct rd *r)
{
	uint16_t len;

	out->eap.raw.p = r->p;
	out->eap.raw.len = r->len;
	if (rd_u8(r, &out->eap.code) == -1 || rd_u8(r, &out->eap.id) == -1 ||
	    rd_u16(r, &len) == -1)
		return syntax(out, "EAP: truncated", r->len);
	if (len != r->len)
		return syntax(out, "EAP: length field disagrees", len);
	if (out->eap.code < IKE_EAP_REQUEST || out->eap.code > IKE_EAP_FAILURE)
		return syntax(out, "EAP: bad code", out->eap.code);
	if (out->eap.code <= IKE_EAP_RESPONSE && len < 5)
		return syntax(out, "EAP: request/response without type", len);
	r->off = r->len;
	return 0;
}

static int
parse_cp(struct ike_pld *out, struct rd *r)
{
	struct ike_cp_pld  *cp = &out->cp;
	struct ike_cp_attr *a;
	uint8_t		    res[3];
	uint16_t	    len;

	if (rd_u8(r, &cp->type) == -1 || rd_bytes(r, res, 3) == -1)
		return syntax(out, "CP: truncated", rd_left(r));
	while (rd_left(r) > 0) {
		if (cp->nattr == IKE_CP_ATTR_MAX)
			return syntax(out, "CP: too many attributes",
			    cp->nattr);
		a = &cp->attr[cp->nattr];
		if (rd_u16(r, &a->type) == -1 || rd_u16(r, &len) == -1 ||
		    rd_ptr(r, &a->val.p, len) == -1)
			return syntax(out, "CP: attribute truncated",
			    rd_left(r));
		a->type &= 0x7fff;
		a->val.len = len;
		if (len == 0)
			a->val.p = NULL;
		cp->nattr++;
	}
	return 0;
}

static int
parse_one_ts(struct ike_pld *out, struct rd *r, struct ike_ts_pld *tsp)
{
	struct ike_ts  ts;
	uint16_t       sellen;
	size_t	       alen;
	const uint8_t *skip;

	memset(&ts, 0, sizeof(ts));
	if (rd_u8(r, &ts.type) == -1 || rd_u8(r, &ts.ipproto) == -1 ||
	    rd_u16(r, &sellen) == -1 || sellen < 8)
		return syntax(out, "TS: selector header truncated", rd_left(r));
	if (ts.type != IKE_TS_IPV4_ADDR_RANGE &&
	    ts.type != IKE_TS_IPV6_ADDR_RANGE) {
		if (rd_ptr(r, &skip, (size_t)sellen - 4) == -1)
			return syntax(out, "TS: selector truncated", sellen);
		return 0; /* unknown type: skipped */
	}
	alen = ts.type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;
	if (sellen != 8 + 2 * alen || rd_u16(r, &ts.sport) == -1 ||
	    rd_u16(r, &ts.eport) == -1 || rd_bytes(r, ts.start, alen) == -1 ||
	    rd_bytes(r, ts.end, alen) == -1)
		return syntax(out, "TS: bad selector length", sellen);
	tsp->ts[tsp->nts++] = ts;
	return 0;
}

static int
parse_ts(struct ike_pld *out, struct rd *r, struct ike_ts_pld *tsp)
{
	uint8_t n, res[3];

	if (rd_u8(r, &n) == -1 || rd_bytes(r, res, 3) == -1 || n == 0)
		return syntax(out, "TS: truncated or empty", rd_left(r));
	if (n > IKE_TS_MAX)
		return syntax(out, "TS: too many selectors", n);
	for (uint8_t i = 0; i < n; i++)
		if (parse_one_ts(out, r, tsp) == -1)
			return -1;
	if (rd_left(r) != 0)
		return syntax(out, "TS: bytes after selectors", rd_left(r));
	return 0;
}

static int
parse_delete(struct ike_pld *out, struct rd *r)
{
	struct ike_delete_pld *d = &out->del;

	if (rd_u8(r, &d->proto) == -1 || rd_u8(r, &d->spi_len) == -1 ||
	    rd_u16(r, &d->nspi) == -1)
		return syntax(out, "Delete: truncated", rd_left(r));
	if (d->proto == IKE_PROTO_IKE ?
		(d->spi_len != 0 || d->nspi != 0) :
		(d->proto != IKE_PROTO_ESP && d->proto != IKE_PROTO_AH) ||
		    d->spi_len != 4)
		return syntax(out, "Delete: bad protocol / SPI size", d->proto);
	if (rd_left(r) != (size_t)d->nspi * d->spi_len)
		return syntax(out, "Delete: SPI count disagrees", d->nspi);
	bytes_rest(r, &d->spis);
	return 0;
}

static bool
repeatable(uint8_t type)
{
	return type == IKE_PL_NOTIFY || type == IKE_PL_CERT ||
	    type == IKE_PL_CERTREQ || type == IKE_PL_VENDOR;
}

/* A payload type parse_body() decodes (SK is handled apart). */
static bool
known(uint8_t type)
{
	return type >= IKE_PL_SA && type <= IKE_PL_EAP && type != IKE_PL_SK;
}

/* Decodes the body of a known payload type: 0, or -1 (out->err set). */
static int
parse_body(struct ike_pld *out, uint8_t type, struct rd *r)
{
	switch (type) {
	case IKE_PL_SA: return parse_sa(out, r);
	case IKE_PL_KE: return parse_ke(out, r);
	case IKE_PL_IDI: return parse_id(out, r, &out->idi);
	case IKE_PL_IDR: return parse_id(out, r, &out->idr);
	case IKE_PL_CERT: return parse_cert(out, r, false);
	case IKE_PL_CERTREQ: return parse_cert(out, r, true);
	case IKE_PL_AUTH: return parse_auth(out, r);
	case IKE_PL_NONCE: return parse_nonce(out, r);
	case IKE_PL_NOTIFY: return parse_notify(out, r);
	case IKE_PL_DELETE: return parse_delete(out, r);
	case IKE_PL_VENDOR: return 0;
	case IKE_PL_TSI: return parse_ts(out, r, &out->tsi);
	case IKE_PL_TSR: return parse_ts(out, r, &out->tsr);
	case IKE_PL_CP: return parse_cp(out, r);
	case IKE_PL_EAP: return parse_eap(out, r);
	default: return syntax(out, "no parser for type", type);
	}
}

static int
handle_payload(struct ike_pld *out, uint8_t type, bool critical,
    const uint8_t *body, size_t len)
{
	struct rd r;

	if (IKE_PLD_HAS(out, type) && !repeatable(type))
		return syntax(out, "payload appears twice, type", type);
	if (!known(type)) {
		if (!critical)
			return 0;
		log_warn("ike_pld_parse: unsupported critical payload %u",
		    type);
		out->err = IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD;
		out->err_type = type;
		return -1;
	}
	rd_init(&r, body, len);
	if (parse_body(out, type, &r) == -1)
		return -1;
	out->seen |= IKE_PLD_BIT(type);
	return 0;
}

/* The SK payload: must be the last one, body = the rest of the chain. */
static int
handle_sk(struct ike_pld *out, struct rd *r, uint8_t next, uint16_t plen)
{
	if ((size_t)plen - IKE_GEN_HDR_LEN != rd_left(r))
		return syntax(out, "SK: not the last payload, length", plen);
	if (IKE_PLD_HAS(out, IKE_PL_SK))
		return syntax(out, "SK: appears twice", 0);
	out->sk.first = next;
	out->sk.off = r->off;
	bytes_rest(r, &out->sk.body);
	out->seen |= IKE_PLD_BIT(IKE_PL_SK);
	return 0;
}

int
ike_pld_parse(uint8_t first, const uint8_t *p, size_t len, struct ike_pld *out)
{
	struct rd      r;
	uint8_t	       type = first, next, flags;
	uint16_t       plen;
	const uint8_t *body;

	memset(out, 0, sizeof(*out));
	rd_init(&r, p, len);
	while (type != IKE_PL_NONE) {
		if (out->n == IKE_PLD_MAX)
			return syntax(out, "too many payloads", out->n);
		if (rd_u8(&r, &next) == -1 || rd_u8(&r, &flags) == -1 ||
		    rd_u16(&r, &plen) == -1)
			return syntax(out, "payload header truncated, left",
			    rd_left(&r));
		if (plen < IKE_GEN_HDR_LEN)
			return syntax(out, "payload length below 4", plen);
		out->list[out->n].type = type;
		out->list[out->n].critical = (flags & IKE_PLD_CRITICAL) != 0;
		out->list[out->n].body.p = r.p + r.off;
		out->list[out->n].body.len = (size_t)plen - IKE_GEN_HDR_LEN;
		out->n++;
		if (type == IKE_PL_SK)
			return handle_sk(out, &r, next, plen);
		if (rd_ptr(&r, &body, (size_t)plen - IKE_GEN_HDR_LEN) == -1)
			return syntax(out, "payload length exceeds data", plen);
		if (handle_payload(out, type, (flags & IKE_PLD_CRITICAL) != 0,
			body, (size_t)plen - IKE_GEN_HDR_LEN) == -1)
			return -1;
		type = next;
	}
	if (rd_left(&r) != 0)
		return syntax(out, "bytes after the last payload", rd_left(&r));
	return 0;
}

const struct ike_notify *
ike_pld_notify(const struct ike_pld *p, uint16_t type)
{
	for (size_t i = 0; i < p->nnotify; i++)
		if (p->notify[i].type == type)
			return &p->notify[i];
	return NULL;
}

/*
 * IKEv2 payloads: bounded parser (check, then copy) and builders
 * (reserve / fill / back-patch). Also the name tables of ikev2.h.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/pld.h"

/* ---- name tables ---- */

struct ike_name {
	unsigned int	 v;
	const char	*name;
};

#define N(x)	{ x, #x }

static const char *
name_find(const struct ike_name *t, size_t n, unsigned int v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].v == v)
			return t[i].name;
	return "UNKNOWN";
}

#define NAME_FIND(t, v)	name_find((t), sizeof(t) / sizeof((t)[0]), (v))

static const struct ike_name exchange_names[] = {
	{ IKE_SA_INIT, "IKE_SA_INIT" }, { IKE_AUTH, "IKE_AUTH" },
	{ IKE_CREATE_CHILD_SA, "CREATE_CHILD_SA" },
	{ IKE_INFORMATIONAL, "INFORMATIONAL" },
};

static const struct ike_name payload_names[] = {
	{ IKE_PL_NONE, "NONE" }, { IKE_PL_SA, "SA" }, { IKE_PL_KE, "KE" },
	{ IKE_PL_IDI, "IDi" }, { IKE_PL_IDR, "IDr" }, { IKE_PL_CERT, "CERT" },
	{ IKE_PL_CERTREQ, "CERTREQ" }, { IKE_PL_AUTH, "AUTH" },
	{ IKE_PL_NONCE, "NONCE" }, { IKE_PL_NOTIFY, "NOTIFY" },
	{ IKE_PL_DELETE, "DELETE" }, { IKE_PL_VENDOR, "VENDOR" },
	{ IKE_PL_TSI, "TSi" }, { IKE_PL_TSR, "TSr" }, { IKE_PL_SK, "SK" },
	{ IKE_PL_CP, "CP" }, { IKE_PL_EAP, "EAP" },
};

#define NN(x)	{ IKE_N_##x, #x }
static const struct ike_name notify_names[] = {
	NN(UNSUPPORTED_CRITICAL_PAYLOAD), NN(INVALID_IKE_SPI),
	NN(INVALID_MAJOR_VERSION), NN(INVALID_SYNTAX), NN(INVALID_MESSAGE_ID),
	NN(INVALID_SPI), NN(NO_PROPOSAL_CHOSEN), NN(INVALID_KE_PAYLOAD),
	NN(AUTHENTICATION_FAILED), NN(SINGLE_PAIR_REQUIRED),
	NN(NO_ADDITIONAL_SAS), NN(INTERNAL_ADDRESS_FAILURE),
	NN(FAILED_CP_REQUIRED), NN(TS_UNACCEPTABLE), NN(INVALID_SELECTORS),
	NN(TEMPORARY_FAILURE), NN(CHILD_SA_NOT_FOUND), NN(INITIAL_CONTACT),
	NN(SET_WINDOW_SIZE), NN(ADDITIONAL_TS_POSSIBLE), NN(IPCOMP_SUPPORTED),
	NN(NAT_DETECTION_SOURCE_IP), NN(NAT_DETECTION_DESTINATION_IP),
	NN(COOKIE), NN(USE_TRANSPORT_MODE), NN(REKEY_SA),
	NN(ESP_TFC_PADDING_NOT_SUPPORTED), NN(NON_FIRST_FRAGMENTS_ALSO),
	NN(EAP_ONLY_AUTHENTICATION), NN(SIGNATURE_HASH_ALGORITHMS),
	NN(USE_PPK), NN(PPK_IDENTITY), NN(NO_PPK_AUTH), NN(5G_QOS_INFO),
	NN(NAS_IP4_ADDRESS), NN(NAS_IP6_ADDRESS), NN(UP_IP4_ADDRESS),
	NN(UP_IP6_ADDRESS), NN(NAS_TCP_PORT), NN(N3GPP_BACKOFF_TIMER),
	NN(QKD_KEY_IDS), NN(QKD_REQUEST), NN(QKD_UNAVAILABLE),
};

static const struct ike_name xf_type_names[] = {
	{ IKE_XF_ENCR, "ENCR" }, { IKE_XF_PRF, "PRF" },
	{ IKE_XF_INTEG, "INTEG" }, { IKE_XF_KE, "KE" }, { IKE_XF_ESN, "ESN" },
};

static const struct ike_name encr_names[] = {
	{ IKE_ENCR_AES_CBC, "ENCR_AES_CBC" },
	{ IKE_ENCR_AES_GCM_16, "ENCR_AES_GCM_16" },
};
static const struct ike_name prf_names[] = {
	{ IKE_PRF_HMAC_SHA2_256, "PRF_HMAC_SHA2_256" },
};
static const struct ike_name integ_names[] = {
	{ IKE_INTEG_NONE, "NONE" },
	{ IKE_INTEG_HMAC_SHA2_256_128, "AUTH_HMAC_SHA2_256_128" },
};
static const struct ike_name ke_names[] = {
	{ IKE_KE_NONE, "NONE" }, { IKE_KE_MODP2048, "MODP_2048" },
	{ IKE_KE_ECP256, "ECP_256" }, { IKE_KE_CURVE25519, "CURVE25519" },
	{ IKE_KE_QKD_ETSI014, "QKD_ETSI014" },
};
static const struct ike_name esn_names[] = {
	{ IKE_ESN_NONE, "NO_ESN" }, { IKE_ESN_YES, "ESN" },
};

const char *
ike_exchange_name(unsigned int v)
{
	return NAME_FIND(exchange_names, v);
}

const char *
ike_payload_name(unsigned int v)
{
	return NAME_FIND(payload_names, v);
}

const char *
ike_notify_name(unsigned int v)
{
	return NAME_FIND(notify_names, v);
}

const char *
ike_xf_type_name(unsigned int v)
{
	return NAME_FIND(xf_type_names, v);
}

const char *
ike_xf_name(unsigned int type, unsigned int id)
{
	switch (type) {
	case IKE_XF_ENCR:	return NAME_FIND(encr_names, id);
	case IKE_XF_PRF:	return NAME_FIND(prf_names, id);
	case IKE_XF_INTEG:	return NAME_FIND(integ_names, id);
	case IKE_XF_KE:		return NAME_FIND(ke_names, id);
	case IKE_XF_ESN:	return NAME_FIND(esn_names, id);
	default:		return "UNKNOWN";
	}
}

/* ---- parsing ---- */

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
	uint16_t	 type, val;
	const uint8_t	*skip;

	if (rd_u16(r, &type) == -1 || rd_u16(r, &val) == -1)
		return -1;
	if ((type & IKE_ATTR_AF) == 0) {		/* TLV: val is the length */
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
parse_xform(struct ike_pld *out, struct rd *r, struct ike_xform *x,
    int *last)
{
	uint8_t		 lastb, res, type, res2;
	uint16_t	 len, id;
	const uint8_t	*body;
	struct rd	 a;

	if (rd_u8(r, &lastb) == -1 || rd_u8(r, &res) == -1 ||
	    rd_u16(r, &len) == -1)
		return syntax(out, "SA: transform header truncated", rd_left(r));
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
	uint8_t	 nxf;
	int	 last = 0;

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
	struct ike_sa_pld	*sa = &out->sa;
	uint8_t			 lastb, res;
	uint16_t		 len;
	const uint8_t		*body;
	struct rd		 pr;

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
	uint16_t	res;

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
	struct ike_notify	*n;

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
	uint8_t	res[3];

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
	uint8_t	res[3];

	if (rd_u8(r, &out->auth.method) == -1 || rd_bytes(r, res, 3) == -1 ||
	    rd_left(r) == 0)
		return syntax(out, "AUTH: truncated", rd_left(r));
	bytes_rest(r, &out->auth.data);
	return 0;
}

static int
parse_cert(struct ike_pld *out, struct rd *r, int req)
{
	size_t			*n = req ? &out->ncertreq : &out->ncert;
	struct ike_cert_pld	*c = req ? out->certreq : out->cert;

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
	uint16_t	len;

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
	struct ike_cp_pld	*cp = &out->cp;
	struct ike_cp_attr	*a;
	uint8_t			 res[3];
	uint16_t		 len;

	if (rd_u8(r, &cp->type) == -1 || rd_bytes(r, res, 3) == -1)
		return syntax(out, "CP: truncated", rd_left(r));
	while (rd_left(r) > 0) {
		if (cp->nattr == IKE_CP_ATTR_MAX)
			return syntax(out, "CP: too many attributes", cp->nattr);
		a = &cp->attr[cp->nattr];
		if (rd_u16(r, &a->type) == -1 || rd_u16(r, &len) == -1 ||
		    rd_ptr(r, &a->val.p, len) == -1)
			return syntax(out, "CP: attribute truncated", rd_left(r));
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
	struct ike_ts	 ts;
	uint16_t	 sellen;
	size_t		 alen;
	const uint8_t	*skip;

	memset(&ts, 0, sizeof(ts));
	if (rd_u8(r, &ts.type) == -1 || rd_u8(r, &ts.ipproto) == -1 ||
	    rd_u16(r, &sellen) == -1 || sellen < 8)
		return syntax(out, "TS: selector header truncated", rd_left(r));
	if (ts.type != IKE_TS_IPV4_ADDR_RANGE &&
	    ts.type != IKE_TS_IPV6_ADDR_RANGE) {
		if (rd_ptr(r, &skip, (size_t)sellen - 4) == -1)
			return syntax(out, "TS: selector truncated", sellen);
		return 0;				/* unknown type: skipped */
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
	uint8_t	n, res[3];

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
	struct ike_delete_pld	*d = &out->del;

	if (rd_u8(r, &d->proto) == -1 || rd_u8(r, &d->spi_len) == -1 ||
	    rd_u16(r, &d->nspi) == -1)
		return syntax(out, "Delete: truncated", rd_left(r));
	if (d->proto == IKE_PROTO_IKE ? (d->spi_len != 0 || d->nspi != 0) :
	    (d->proto != IKE_PROTO_ESP && d->proto != IKE_PROTO_AH) ||
	    d->spi_len != 4)
		return syntax(out, "Delete: bad protocol / SPI size", d->proto);
	if (rd_left(r) != (size_t)d->nspi * d->spi_len)
		return syntax(out, "Delete: SPI count disagrees", d->nspi);
	bytes_rest(r, &d->spis);
	return 0;
}

static int
repeatable(uint8_t type)
{
	return type == IKE_PL_NOTIFY || type == IKE_PL_CERT ||
	    type == IKE_PL_CERTREQ || type == IKE_PL_VENDOR;
}

/* Decodes one known payload body; 1 = unknown type, 0 = ok, -1 = bad. */
static int
parse_body(struct ike_pld *out, uint8_t type, struct rd *r)
{
	switch (type) {
	case IKE_PL_SA:		return parse_sa(out, r);
	case IKE_PL_KE:		return parse_ke(out, r);
	case IKE_PL_IDI:	return parse_id(out, r, &out->idi);
	case IKE_PL_IDR:	return parse_id(out, r, &out->idr);
	case IKE_PL_CERT:	return parse_cert(out, r, 0);
	case IKE_PL_CERTREQ:	return parse_cert(out, r, 1);
	case IKE_PL_AUTH:	return parse_auth(out, r);
	case IKE_PL_NONCE:	return parse_nonce(out, r);
	case IKE_PL_NOTIFY:	return parse_notify(out, r);
	case IKE_PL_DELETE:	return parse_delete(out, r);
	case IKE_PL_VENDOR:	return 0;
	case IKE_PL_TSI:	return parse_ts(out, r, &out->tsi);
	case IKE_PL_TSR:	return parse_ts(out, r, &out->tsr);
	case IKE_PL_CP:		return parse_cp(out, r);
	case IKE_PL_EAP:	return parse_eap(out, r);
	default:		return 1;
	}
}

static int
handle_payload(struct ike_pld *out, uint8_t type, int critical,
    const uint8_t *body, size_t len)
{
	struct rd	r;
	int		rc;

	if (IKE_PLD_HAS(out, type) && !repeatable(type))
		return syntax(out, "payload appears twice, type", type);
	rd_init(&r, body, len);
	if ((rc = parse_body(out, type, &r)) == 1) {
		if (!critical)
			return 0;
		log_warn("ike_pld_parse: unsupported critical payload %u", type);
		out->err = IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD;
		out->err_type = type;
		return -1;
	}
	if (rc == 0)
		out->seen |= IKE_PLD_BIT(type);
	return rc;
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
ike_pld_parse(uint8_t first, const uint8_t *p, size_t len,
    struct ike_pld *out)
{
	struct rd	 r;
	uint8_t		 type = first, next, flags;
	uint16_t	 plen;
	const uint8_t	*body;

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
		if (handle_payload(out, type, flags & IKE_PLD_CRITICAL, body,
		    (size_t)plen - IKE_GEN_HDR_LEN) == -1)
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

/* ---- building ---- */

void
ike_chain_init(struct ike_chain *c, struct buf *b, size_t np_off)
{
	c->b = b;
	c->np_off = np_off;
	c->first = IKE_PL_NONE;
}

int
ike_pld_begin(struct ike_chain *c, uint8_t type, int critical, size_t *start)
{
	uint8_t	*h;

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
	size_t	len = c->b->len - start;

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
	size_t	start;

	if (ike_pld_begin(c, type, 0, &start) == -1)
		return -1;
	if (buf_add(c->b, prefix, plen) == -1 || buf_add(c->b, data, len) == -1)
		return fail_add("does not fit", type);
	return ike_pld_end(c, start);
}

int
ike_pld_add_ke(struct ike_chain *c, uint16_t group, const uint8_t *data,
    size_t len)
{
	uint8_t	pre[4] = { (uint8_t)(group >> 8), (uint8_t)group, 0, 0 };

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
	size_t	start;

	if (spi_len > IKE_SPI_MAX)
		return fail_add("SPI too long", IKE_PL_NOTIFY);
	if (ike_pld_begin(c, IKE_PL_NOTIFY, 0, &start) == -1)
		return -1;
	if (buf_add_u8(c->b, proto) == -1 ||
	    buf_add_u8(c->b, (uint8_t)spi_len) == -1 ||
	    buf_add_u16(c->b, type) == -1 || buf_add(c->b, spi, spi_len) == -1 ||
	    buf_add(c->b, data, len) == -1)
		return fail_add("does not fit", IKE_PL_NOTIFY);
	return ike_pld_end(c, start);
}

int
ike_pld_add_id(struct ike_chain *c, uint8_t pltype, uint8_t idtype,
    const uint8_t *data, size_t len)
{
	uint8_t	pre[4] = { idtype, 0, 0, 0 };

	if ((pltype != IKE_PL_IDI && pltype != IKE_PL_IDR) || len == 0)
		return fail_add("bad type or empty", pltype);
	return add_simple(c, pltype, pre, sizeof(pre), data, len);
}

int
ike_pld_add_auth(struct ike_chain *c, uint8_t method, const uint8_t *data,
    size_t len)
{
	uint8_t	pre[4] = { method, 0, 0, 0 };

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
	if (len < 4 || len > 0xffff ||
	    (size_t)((eap[2] << 8) | eap[3]) != len)
		return fail_add("EAP length field disagrees", IKE_PL_EAP);
	return add_simple(c, IKE_PL_EAP, NULL, 0, eap, len);
}

int
ike_pld_add_cp(struct ike_chain *c, const struct ike_cp_pld *cp)
{
	uint8_t	pre[4] = { cp->type, 0, 0, 0 };
	size_t	start;

	if (cp->nattr > IKE_CP_ATTR_MAX)
		return fail_add("too many attributes", IKE_PL_CP);
	if (ike_pld_begin(c, IKE_PL_CP, 0, &start) == -1 ||
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
ike_pld_add_ts(struct ike_chain *c, uint8_t pltype,
    const struct ike_ts_pld *ts)
{
	uint8_t	pre[4] = { (uint8_t)ts->nts, 0, 0, 0 };
	size_t	start, alen;

	if ((pltype != IKE_PL_TSI && pltype != IKE_PL_TSR) || ts->nts == 0 ||
	    ts->nts > IKE_TS_MAX)
		return fail_add("bad type or selector count", pltype);
	if (ike_pld_begin(c, pltype, 0, &start) == -1 ||
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
	uint8_t	pre[4] = { proto, spi_len, (uint8_t)(nspi >> 8), (uint8_t)nspi };

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
add_xform(struct buf *b, const struct ike_xform *x, int last)
{
	size_t	start = b->len;

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
add_proposal(struct buf *b, const struct ike_proposal *p, int last)
{
	size_t	start = b->len;

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
	size_t	start;

	if (sa->nprop == 0 || sa->nprop > IKE_PROP_MAX)
		return fail_add("proposal count", IKE_PL_SA);
	if (ike_pld_begin(c, IKE_PL_SA, 0, &start) == -1)
		return -1;
	for (size_t i = 0; i < sa->nprop; i++)
		if (add_proposal(c->b, &sa->prop[i], i + 1 == sa->nprop) == -1)
			return fail_add("bad or oversized proposal", IKE_PL_SA);
	return ike_pld_end(c, start);
}

static int
push_xf(struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t keylen)
{
	if (p->nxf == IKE_XF_MAX)
		return -1;
	p->xf[p->nxf].type = type;
	p->xf[p->nxf].id = id;
	p->xf[p->nxf].keylen = keylen;
	p->xf[p->nxf].bad_attr = 0;
	p->nxf++;
	return 0;
}

int
ike_prop_to_proposal(const struct ike_prop_desc *d, uint8_t num,
    struct ike_proposal *out)
{
	int	rc = 0;

	memset(out, 0, sizeof(*out));
	if (d->spi_len > IKE_SPI_MAX || d->nke > IKE_KE_MAX || d->encr == 0) {
		log_err("%s: bad proposal description", __func__);
		return -1;
	}
	out->num = d->num ? d->num : num;
	out->proto = d->proto;
	out->spi_len = d->spi_len;
	memcpy(out->spi, d->spi, d->spi_len);
	rc |= push_xf(out, IKE_XF_ENCR, d->encr, d->encr_bits);
	if (d->prf)
		rc |= push_xf(out, IKE_XF_PRF, d->prf, 0);
	if (d->integ)
		rc |= push_xf(out, IKE_XF_INTEG, d->integ, 0);
	for (size_t i = 0; i < d->nke; i++)
		rc |= push_xf(out, IKE_XF_KE, d->ke[i], 0);
	if (d->proto == IKE_PROTO_ESP || d->proto == IKE_PROTO_AH)
		rc |= push_xf(out, IKE_XF_ESN, IKE_ESN_NONE, 0);
	return rc ? -1 : 0;
}

int
ike_pld_add_sa(struct ike_chain *c, const struct ike_prop_desc *d, size_t n)
{
	struct ike_sa_pld	sa;

	if (n == 0 || n > IKE_PROP_MAX)
		return fail_add("proposal count", IKE_PL_SA);
	memset(&sa, 0, sizeof(sa));
	for (size_t i = 0; i < n; i++)
		if (ike_prop_to_proposal(&d[i], (uint8_t)(i + 1),
		    &sa.prop[i]) == -1)
			return -1;
	sa.nprop = n;
	return ike_pld_add_sa_raw(c, &sa);
}

/* ---- proposal selection ---- */

static int
xf_has(const struct ike_proposal *p, uint8_t type, uint16_t id,
    uint16_t keylen)
{
	for (size_t i = 0; i < p->nxf; i++)
		if (p->xf[i].type == type && p->xf[i].id == id &&
		    p->xf[i].keylen == keylen && !p->xf[i].bad_attr)
			return 1;
	return 0;
}

static size_t
xf_count(const struct ike_proposal *p, uint8_t type)
{
	size_t	n = 0;

	for (size_t i = 0; i < p->nxf; i++)
		n += p->xf[i].type == type;
	return n;
}

/* A transform type that policy leaves out must be absent or NONE (0). */
static int
xf_none_ok(const struct ike_proposal *p, uint8_t type)
{
	return xf_count(p, type) == 0 || xf_has(p, type, 0, 0);
}

static int
xf_known_types(const struct ike_proposal *p)
{
	for (size_t i = 0; i < p->nxf; i++)
		if (p->xf[i].type < IKE_XF_ENCR || p->xf[i].type > IKE_XF_ESN)
			return 0;
	return 1;
}

static int
prop_match(const struct ike_proposal *x, const struct ike_prop_desc *pol,
    struct ike_prop_desc *out)
{
	size_t	k;

	if (x->proto != pol->proto || !xf_known_types(x) ||
	    !xf_has(x, IKE_XF_ENCR, pol->encr, pol->encr_bits) ||
	    !(pol->prf ? xf_has(x, IKE_XF_PRF, pol->prf, 0) :
	    xf_count(x, IKE_XF_PRF) == 0) ||
	    !(pol->integ ? xf_has(x, IKE_XF_INTEG, pol->integ, 0) :
	    xf_none_ok(x, IKE_XF_INTEG)) ||
	    !xf_none_ok(x, IKE_XF_ESN))
		return -1;
	if (pol->nke == 0 && !xf_none_ok(x, IKE_XF_KE))
		return -1;
	for (k = 0; k < pol->nke; k++)
		if (xf_has(x, IKE_XF_KE, pol->ke[k], 0))
			break;
	if (pol->nke > 0 && k == pol->nke)
		return -1;
	memset(out, 0, sizeof(*out));
	out->num = x->num;
	out->proto = x->proto;
	out->spi_len = x->spi_len;
	memcpy(out->spi, x->spi, x->spi_len);
	out->encr = pol->encr;
	out->encr_bits = pol->encr_bits;
	out->prf = pol->prf;
	out->integ = pol->integ;
	out->nke = pol->nke ? 1 : 0;
	out->ke[0] = pol->nke ? pol->ke[k] : 0;
	return 0;
}

/* "ENCR_AES_GCM_16/256 PRF_HMAC_SHA2_256 QKD_ETSI014" for the log. */
static void
prop_str(const struct ike_proposal *p, char *s, size_t n)
{
	size_t	off = 0;
	int	w;

	s[0] = '\0';
	for (size_t i = 0; i < p->nxf && off < n; i++) {
		w = snprintf(s + off, n - off, "%s%s", i ? " " : "",
		    ike_xf_name(p->xf[i].type, p->xf[i].id));
		if (w < 0)
			return;
		off += (size_t)w;
		if (p->xf[i].keylen && off < n) {
			w = snprintf(s + off, n - off, "/%u", p->xf[i].keylen);
			if (w < 0)
				return;
			off += (size_t)w;
		}
	}
}

int
ike_sa_choose(const struct ike_sa_pld *offer, const struct ike_prop_desc *pol,
    size_t npol, struct ike_prop_desc *chosen)
{
	char	desc[256];

	for (size_t i = 0; i < offer->nprop; i++)
		for (size_t j = 0; j < npol; j++)
			if (prop_match(&offer->prop[i], &pol[j], chosen) == 0)
				return 0;
	if (offer->nprop > 0)
		prop_str(&offer->prop[0], desc, sizeof(desc));
	else
		snprintf(desc, sizeof(desc), "none");
	log_warn("%s: no acceptable proposal among %zu (first: %s)", __func__,
	    offer->nprop, desc);
	return -1;
}

int
ike_sa_check_reply(const struct ike_sa_pld *reply,
    const struct ike_prop_desc *offered, size_t noffered,
    struct ike_prop_desc *chosen)
{
	char	desc[256];

	if (reply->nprop != 1) {
		log_warn("%s: reply has %zu proposals, want 1", __func__,
		    reply->nprop);
		return -1;
	}
	for (uint8_t t = IKE_XF_ENCR; t <= IKE_XF_ESN; t++)
		if (xf_count(&reply->prop[0], t) > 1) {
			log_warn("%s: reply has several %s transforms",
			    __func__, ike_xf_type_name(t));
			return -1;
		}
	for (size_t j = 0; j < noffered; j++)
		if (prop_match(&reply->prop[0], &offered[j], chosen) == 0)
			return 0;
	prop_str(&reply->prop[0], desc, sizeof(desc));
	log_warn("%s: reply proposal (%s) was not offered", __func__, desc);
	return -1;
}

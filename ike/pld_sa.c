/*
 * SA proposals: policy descriptions <-> SA payloads, and the choosers of
 * the responder (ike_sa_choose) and the initiator (ike_sa_check_reply).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/pld.h"

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
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (d->spi_len > IKE_SPI_MAX || d->nke > IKE_KE_MAX ||
	    d->nesn > sizeof(d->esn) || d->encr == 0) {
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
	if (d->proto == IKE_PROTO_ESP || d->proto == IKE_PROTO_AH) {
		if (d->nesn == 0)
			rc |= push_xf(out, IKE_XF_ESN, IKE_ESN_NONE, 0);
		for (size_t i = 0; i < d->nesn; i++)
			rc |= push_xf(out, IKE_XF_ESN, d->esn[i], 0);
	}
	return rc ? -1 : 0;
}

bool
ike_prop_uses_esn(const struct ike_prop_desc *d)
{
	return d->nesn == 1 && d->esn[0] == IKE_ESN_YES;
}

int
ike_pld_add_sa(struct ike_chain *c, const struct ike_prop_desc *d, size_t n)
{
	struct ike_sa_pld sa;

	if (n == 0 || n > IKE_PROP_MAX) {
		log_err("ike_pld_add: SA payload: proposal count");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	for (size_t i = 0; i < n; i++)
		if (ike_prop_to_proposal(&d[i], (uint8_t)(i + 1),
			&sa.prop[i]) == -1)
			return -1;
	sa.nprop = n;
	return ike_pld_add_sa_raw(c, &sa);
}

/* ---- proposal selection ---- */

static bool
xf_has(const struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t keylen)
{
	for (size_t i = 0; i < p->nxf; i++)
		if (p->xf[i].type == type && p->xf[i].id == id &&
		    p->xf[i].keylen == keylen && !p->xf[i].bad_attr)
			return true;
	return false;
}

static size_t
xf_count(const struct ike_proposal *p, uint8_t type)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nxf; i++)
		n += p->xf[i].type == type;
	return n;
}

/* A transform type that policy leaves out must be absent or NONE (0). */
static bool
xf_none_ok(const struct ike_proposal *p, uint8_t type)
{
	return xf_count(p, type) == 0 || xf_has(p, type, 0, 0);
}

static bool
xf_known_types(const struct ike_proposal *p)
{
	for (size_t i = 0; i < p->nxf; i++)
		if (p->xf[i].type < IKE_XF_ENCR || p->xf[i].type > IKE_XF_ESN)
			return false;
	return true;
}

/*
 * The ESN value of x that policy pol takes (its order): ESP and AH take
 * pol's list (NO_ESN when it is empty; a proposal without ESN transform
 * counts as NO_ESN); IKE takes none, *esn stays 0. False: none fits.
 */
static bool
esn_pick(const struct ike_proposal *x, const struct ike_prop_desc *pol,
    uint8_t *esn)
{
	static const uint8_t none = IKE_ESN_NONE;
	const uint8_t	    *want = pol->nesn ? pol->esn : &none;
	size_t		     n = pol->nesn ? pol->nesn : 1;

	*esn = 0;
	if (pol->proto != IKE_PROTO_ESP && pol->proto != IKE_PROTO_AH)
		return xf_none_ok(x, IKE_XF_ESN);
	for (size_t i = 0; i < n; i++)
		if (xf_has(x, IKE_XF_ESN, want[i], 0) ||
		    (want[i] == IKE_ESN_NONE && xf_count(x, IKE_XF_ESN) == 0)) {
			*esn = want[i];
			return true;
		}
	return false;
}

/* Whether proposal x fits policy pol; fills *out (one transform per type). */
static bool
prop_match(const struct ike_proposal *x, const struct ike_prop_desc *pol,
    struct ike_prop_desc *out)
{
	size_t	k;
	uint8_t esn;

	if (x->proto != pol->proto || !xf_known_types(x) ||
	    !xf_has(x, IKE_XF_ENCR, pol->encr, pol->encr_bits) ||
	    !(pol->prf ? xf_has(x, IKE_XF_PRF, pol->prf, 0) :
			 xf_count(x, IKE_XF_PRF) == 0) ||
	    !(pol->integ ? xf_has(x, IKE_XF_INTEG, pol->integ, 0) :
			   xf_none_ok(x, IKE_XF_INTEG)) ||
	    !esn_pick(x, pol, &esn))
		return false;
	if (pol->nke == 0 && !xf_none_ok(x, IKE_XF_KE))
		return false;
	for (k = 0; k < pol->nke; k++)
		if (xf_has(x, IKE_XF_KE, pol->ke[k], 0))
			break;
	if (pol->nke > 0 && k == pol->nke)
		return false;
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
	out->nesn = x->proto == IKE_PROTO_ESP || x->proto == IKE_PROTO_AH;
	out->esn[0] = esn;
	return true;
}

/* "ENCR_AES_GCM_16/256 PRF_HMAC_SHA2_256 QKD_ETSI014" for the log. */
static void
prop_str(const struct ike_proposal *p, char *s, size_t n)
{
	size_t off = 0;
	int    w;

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
	char desc[256];

	for (size_t i = 0; i < offer->nprop; i++)
		for (size_t j = 0; j < npol; j++)
			if (prop_match(&offer->prop[i], &pol[j], chosen))
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
	char desc[256];

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
		if (prop_match(&reply->prop[0], &offered[j], chosen))
			return 0;
	prop_str(&reply->prop[0], desc, sizeof(desc));
	log_warn("%s: reply proposal (%s) was not offered", __func__, desc);
	return -1;
}

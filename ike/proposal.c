/* SA proposals per mode: what we offer, what we choose, TS, AUTH method. */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/proposal.h"

size_t
ike_prop_ike(const struct ikecfg *c, struct ike_prop_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->proto = IKE_PROTO_IKE;
	d->encr = c->aead ? IKE_ENCR_AES_GCM_16 : IKE_ENCR_AES_CBC;
	d->encr_bits = 256;
	d->prf = IKE_PRF_HMAC_SHA2_256;
	d->integ = c->aead ? IKE_INTEG_NONE : IKE_INTEG_HMAC_SHA2_256_128;
	d->nke = 1;
	d->ke[0] = c->mode == IKE_MODE_QKD ? ike_qkd_sched_ke(c->qkd_schedule) :
					     (uint16_t)c->dh_group;
	if (c->role == IKE_ROLE_UE && c->peer_transform != 0)
		d->ke[0] = (uint16_t)c->peer_transform;
	return 1;
}

size_t
ike_prop_esp(const struct ikecfg *c, struct ike_prop_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->proto = IKE_PROTO_ESP;
	d->spi_len = 4;
	d->encr = c->aead ? IKE_ENCR_AES_GCM_16 : IKE_ENCR_AES_CBC;
	d->encr_bits = 256;
	d->integ = c->aead ? IKE_INTEG_NONE : IKE_INTEG_HMAC_SHA2_256_128;
	/* ESN first: RFC 4303's 64-bit counter; NO_ESN for older peers */
	if (c->esn)
		d->esn[d->nesn++] = IKE_ESN_YES;
	d->esn[d->nesn++] = IKE_ESN_NONE;
	return 1;
}

/* qkd: the other QKD key schedule's KE transform, if the peer offers it. */
static uint16_t
other_schedule(const struct ikecfg *c, const struct ike_sa_pld *sa)
{
	uint16_t ours = ike_qkd_sched_ke(c->qkd_schedule);

	if (c->mode != IKE_MODE_QKD)
		return 0;
	for (size_t i = 0; i < sa->nprop; i++)
		for (size_t j = 0; j < sa->prop[i].nxf; j++) {
			const struct ike_xform *x = &sa->prop[i].xf[j];

			if (x->type == IKE_XF_KE && x->id != ours &&
			    (x->id == IKE_KE_QKD_ETSI014 ||
				x->id == IKE_KE_QKD_ETSI014_PRF))
				return x->id;
		}
	return 0;
}

uint16_t
ike_prop_choose_ike(const struct ikecfg *c, const struct ike_pld *pl,
    struct ike_prop_desc *chosen)
{
	struct ike_prop_desc pol;
	uint16_t	     other;

	ike_prop_ike(c, &pol);
	if (!IKE_PLD_HAS(pl, IKE_PL_SA))
		return IKE_N_NO_PROPOSAL_CHOSEN;
	if (ike_sa_choose(&pl->sa, &pol, 1, chosen) == -1) {
		if ((other = other_schedule(c, &pl->sa)) != 0)
			log_warn("QKD key schedule mismatch: the peer offers "
				 "KE %u (%s), we run the %s schedule (KE %u, "
				 "--qkd-schedule)",
			    other, ike_xf_name(IKE_XF_KE, other),
			    ike_qkd_sched_name(c->qkd_schedule),
			    ike_qkd_sched_ke(c->qkd_schedule));
		return IKE_N_NO_PROPOSAL_CHOSEN;
	}
	return 0;
}

const char *
ike_prop_refusal_hint(const struct ikecfg *c, uint16_t notify)
{
	if (c->mode != IKE_MODE_QKD || notify != IKE_N_NO_PROPOSAL_CHOSEN)
		return "";
	return c->qkd_schedule == IKE_QKD_SCHED_PRF ?
	    " (we run the QKD key schedule prf, KE 1026: does the N3IWF run "
	    "--qkd-schedule prf?)" :
	    " (we run the QKD key schedule paper, KE 1025: does the N3IWF run "
	    "--qkd-schedule paper?)";
}

uint16_t
ike_prop_check_ke(const struct ikecfg *c, const struct ike_prop_desc *chosen,
    const struct ike_pld *pl, uint8_t grp[static 2])
{
	uint16_t got;

	if (!ike_mode_has_dh(c->mode))
		return 0;
	if (IKE_PLD_HAS(pl, IKE_PL_KE) && pl->ke.group == chosen->ke[0])
		return 0;
	got = IKE_PLD_HAS(pl, IKE_PL_KE) ? pl->ke.group : 0;
	log_info("KE of group %u, want %u: INVALID_KE_PAYLOAD", got,
	    chosen->ke[0]);
	grp[0] = (uint8_t)(chosen->ke[0] >> 8);
	grp[1] = (uint8_t)chosen->ke[0];
	return IKE_N_INVALID_KE_PAYLOAD;
}

int
ike_prop_reply_ike(const struct ikecfg *c, const struct ike_sa_pld *reply,
    struct ike_prop_desc *chosen)
{
	struct ike_prop_desc offer;

	ike_prop_ike(c, &offer);
	return ike_sa_check_reply(reply, &offer, 1, chosen);
}

int
ike_prop_choose_esp(const struct ikecfg *c, const struct ike_pld *pl,
    struct ike_prop_desc *chosen)
{
	struct ike_prop_desc pol;

	ike_prop_esp(c, &pol);
	if (!IKE_PLD_HAS(pl, IKE_PL_SA) ||
	    ike_sa_choose(&pl->sa, &pol, 1, chosen) == -1 ||
	    chosen->spi_len != 4)
		return -1;
	return 0;
}

int
ike_prop_reply_esp(const struct ike_prop_desc *offer, const struct ike_pld *pl,
    struct ike_prop_desc *chosen)
{
	if (!IKE_PLD_HAS(pl, IKE_PL_SA) ||
	    ike_sa_check_reply(&pl->sa, offer, 1, chosen) == -1 ||
	    chosen->spi_len != 4)
		return -1;
	return 0;
}

/* One IPv4 range [start, end] (network order), every protocol and port. */
static void
ts_range(struct ike_ts_pld *ts, uint32_t start, uint32_t end)
{
	memset(ts, 0, sizeof(*ts));
	ts->nts = 1;
	ts->ts[0].type = IKE_TS_IPV4_ADDR_RANGE;
	ts->ts[0].sport = 0;
	ts->ts[0].eport = 65535;
	memcpy(ts->ts[0].start, &start, 4);
	memcpy(ts->ts[0].end, &end, 4);
}

void
ike_prop_ts_any(struct ike_ts_pld *ts)
{
	ts_range(ts, htonl(0), htonl(0xffffffffu));
}

int
ike_prop_ts_host(struct ike_ts_pld *ts, const char *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, ip, &a) != 1)
		return -1;
	ts_range(ts, a.s_addr, a.s_addr);
	return 0;
}

int
ike_prop_add_ts_any(struct ike_chain *c, uint8_t pltype)
{
	struct ike_ts_pld ts;

	ike_prop_ts_any(&ts);
	return ike_pld_add_ts(c, pltype, &ts);
}

int
ike_prop_add_ts_host(struct ike_chain *c, uint8_t pltype, const char *ip)
{
	struct ike_ts_pld ts;

	if (ike_prop_ts_host(&ts, ip) == -1)
		return -1;
	return ike_pld_add_ts(c, pltype, &ts);
}

/* Selector a lies inside b: type, protocol, ports, addresses. */
static bool
ts_in(const struct ike_ts *a, const struct ike_ts *b)
{
	size_t alen = a->type == IKE_TS_IPV4_ADDR_RANGE ? 4 : 16;

	return a->type == b->type &&
	    (b->ipproto == 0 || a->ipproto == b->ipproto) &&
	    b->sport <= a->sport && a->eport <= b->eport &&
	    memcmp(b->start, a->start, alen) <= 0 &&
	    memcmp(a->end, b->end, alen) <= 0;
}

bool
ike_prop_ts_within(const struct ike_ts_pld *a, const struct ike_ts_pld *b)
{
	for (size_t i = 0; i < a->nts; i++) {
		size_t j = 0;

		while (j < b->nts && !ts_in(&a->ts[i], &b->ts[j]))
			j++;
		if (j == b->nts)
			return false;
	}
	return a->nts > 0;
}

int
ike_prop_ts_reply(const struct ike_pld *pl, struct ike_ts_pld *tsi,
    struct ike_ts_pld *tsr)
{
	if (!IKE_PLD_HAS(pl, IKE_PL_TSI) || !IKE_PLD_HAS(pl, IKE_PL_TSR) ||
	    !ike_prop_ts_within(&pl->tsi, tsi) ||
	    !ike_prop_ts_within(&pl->tsr, tsr))
		return -1;
	*tsi = pl->tsi;
	*tsr = pl->tsr;
	return 0;
}

const char *
ike_prop_ts_str(const struct ike_ts_pld *ts, char *out, size_t len)
{
	char   s[INET6_ADDRSTRLEN], e[INET6_ADDRSTRLEN];
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ts->nts && off < len; i++) {
		const struct ike_ts *t = &ts->ts[i];
		int af = t->type == IKE_TS_IPV4_ADDR_RANGE ? AF_INET : AF_INET6;

		inet_ntop(af, t->start, s, sizeof(s));
		inet_ntop(af, t->end, e, sizeof(e));
		off +=
		    (size_t)snprintf(out + off, len - off, "%s%s-%s/%u/%u-%u",
			i ? "," : "", s, e, t->ipproto, t->sport, t->eport);
	}
	return out;
}

int
ike_prop_add_init_notifies(const struct ikecfg *c, struct ike_chain *ch,
    const struct ike_pld *rq)
{
	static const uint8_t sha256[2] = { 0, IKE_HASH_SHA2_256 };

	if (c->mode == IKE_MODE_QKD_DH &&
	    (rq == NULL || ike_pld_notify(rq, IKE_N_USE_PPK) != NULL) &&
	    ike_pld_add_notify(ch, 0, NULL, 0, IKE_N_USE_PPK, NULL, 0) == -1)
		return -1;
	if (ike_prop_n3iwf_signs(c) &&
	    (rq == NULL ||
		ike_pld_notify(rq, IKE_N_SIGNATURE_HASH_ALGORITHMS) != NULL) &&
	    ike_pld_add_notify(ch, 0, NULL, 0, IKE_N_SIGNATURE_HASH_ALGORITHMS,
		sha256, sizeof(sha256)) == -1)
		return -1;
	return 0;
}

bool
ike_prop_n3iwf_signs(const struct ikecfg *c)
{
	return c->mode == IKE_MODE_CERT || c->profile == IKE_PROFILE_NWU;
}

uint8_t
ike_prop_auth_method(const struct ikecfg *c, int n3iwf)
{
	if (n3iwf)
		return ike_prop_n3iwf_signs(c) ? IKE_AUTH_DIGITAL_SIG :
						 IKE_AUTH_PSK;
	return c->mode == IKE_MODE_CERT ? IKE_AUTH_DIGITAL_SIG : IKE_AUTH_PSK;
}

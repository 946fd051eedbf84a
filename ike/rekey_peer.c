/*
 * Rekeying, the peer's side (ike/rekey.h): its CREATE_CHILD_SA requests
 * (Child SA and IKE SA rekeys, checked against RFC 7296 2.25 before any
 * key is drawn), the N3IWF's parked request waiting for its fresh QKD
 * key, and INFORMATIONAL Deletes of Child SAs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/ikev2.h"
#include "ike/proposal.h"
#include "ike/qkd.h"
#include "ike/rekey_int.h"

/* The slot of the Child SA the peer names by its inbound SPI. */
static size_t
rq_slot(const struct ike_ep *ep, const struct ike_sa *sa, uint32_t spi)
{
	for (size_t i = 0; i < sa->nchild; i++)
		if (rk_spi_out(ep, &sa->child[i]) == spi)
			return i;
	return SIZE_MAX;
}

static bool
rq_is_old(const struct ike_ep *ep, const struct ike_rk *rk, uint32_t spi)
{
	for (size_t i = 0; i < rk->nold; i++)
		if (rk_spi_out(ep, &rk->old[i].ch) == spi)
			return true;
	return false;
}

/*
 * One side's selectors of the peer's rekey request rq against the Child
 * SA's own (RFC 7296 2.8, 2.9): the SA's when rq covers them (the same,
 * or wider: narrowed back), rq's when it narrows them, in *out; false
 * when neither holds the other (TS_UNACCEPTABLE).
 */
static bool
rq_ts_side(const struct ike_ts_pld *own, const struct ike_ts_pld *rq,
    struct ike_ts_pld *out)
{
	if (ike_prop_ts_within(own, rq))
		*out = *own;
	else if (ike_prop_ts_within(rq, own))
		*out = *rq;
	else
		return false;
	return true;
}

/* The selectors the rekey of ch answers with, in *ue, *n3; 0 or -1. */
static int
rq_ts(const struct ike_ep *ep, const struct ike_pld *pl,
    const struct ike_child *ch, struct ike_ts_pld *ue, struct ike_ts_pld *n3)
{
	const struct ike_ts_pld *rue, *rn3;

	if (!IKE_PLD_HAS(pl, IKE_PL_TSI) || !IKE_PLD_HAS(pl, IKE_PL_TSR))
		return -1;
	rk_ts_of(ep, pl, true, &rue, &rn3);
	return rq_ts_side(&ch->ts_ue, rue, ue) &&
		rq_ts_side(&ch->ts_n3, rn3, n3) ?
	    0 :
	    -1;
}

static uint16_t
rq_check_child(const struct ike_ep *ep, const struct ike_sa *sa,
    const struct ike_pld *pl, const struct ike_notify *n, size_t *idx)
{
	struct ike_ts_pld    ue, n3;
	const struct ike_rk *rk = sa->rk;
	uint32_t	     spi;

	if (n->proto != IKE_PROTO_ESP || n->spi_len != 4)
		return IKE_N_INVALID_SYNTAX;
	memcpy(&spi, n->spi, 4);
	/* 2.25.2: not while we rekey the IKE SA. */
	if (rk->out_kind == RK_IKE)
		return IKE_N_TEMPORARY_FAILURE;
	if ((*idx = rq_slot(ep, sa, spi)) != SIZE_MAX) {
		if (rk->have_peer)
			return IKE_N_TEMPORARY_FAILURE;
		return rq_ts(ep, pl, &sa->child[*idx], &ue, &n3) == 0 ?
		    0 :
		    IKE_N_TS_UNACCEPTABLE;
	}
	/* 2.25.1: one we are closing, or one that is gone. */
	return rq_is_old(ep, rk, spi) ? IKE_N_TEMPORARY_FAILURE :
					IKE_N_CHILD_SA_NOT_FOUND;
}

/* Checks before a key is drawn: 0, or the notify that refuses. */
static uint16_t
rq_check(const struct ike_ep *ep, const struct ike_sa *sa,
    const struct ike_pld *pl, enum rk_kind *kind, size_t *idx)
{
	const struct ike_rk	*rk = sa->rk;
	const struct ike_notify *n = ike_pld_notify(pl, IKE_N_REKEY_SA);

	if (sa->state != SA_ESTABLISHED || rk->rekeyed)
		return IKE_N_TEMPORARY_FAILURE;
	if (!IKE_PLD_HAS(pl, IKE_PL_SA) || !IKE_PLD_HAS(pl, IKE_PL_NONCE) ||
	    pl->sa.nprop == 0)
		return IKE_N_INVALID_SYNTAX;
	if (n != NULL) {
		*kind = RK_CHILD;
		return rq_check_child(ep, sa, pl, n, idx);
	}
	if (pl->sa.prop[0].proto != IKE_PROTO_IKE)
		return IKE_N_NO_ADDITIONAL_SAS; /* a new Child SA: not here */
	*kind = RK_IKE;
	/* 2.25.2: not while we create, rekey or close a Child SA. */
	if (rk->out_kind == RK_CHILD || rk->out_kind == RK_DEL || rk->have_peer)
		return IKE_N_TEMPORARY_FAILURE;
	return 0;
}

static void
rq_refuse(struct ike_ep *ep, struct ike_sa *sa, const struct ike_msg *m,
    uint16_t nt)
{
	if (nt == IKE_N_TEMPORARY_FAILURE)
		ep->rks.temp_fail++;
	log_info("rekey request of the peer refused: %s", ike_notify_name(nt));
	(void)ike_ep_respond_notify(ep, sa, m, nt);
}

static void
rq_nonce(struct rk_new *x, const struct ike_pld *pl)
{
	memcpy(x->ni, pl->nonce.p, pl->nonce.len);
	x->ni_len = pl->nonce.len;
	x->nr_len = IKE_NONCE_LEN;
}

/* Debug: the selectors the peer's rekey request of ch carries. */
static void
rq_log_ts(const struct ike_pld *pl, const struct ike_child *ch)
{
	char a[IKE_TS_STRLEN], b[IKE_TS_STRLEN];

	if (log_get_level() >= LOG_DEBUG)
		log_debug("rekey request of Child SA %08x/%08x: TSi %s, TSr %s",
		    ch->spi_i, ch->spi_r,
		    ike_prop_ts_str(&pl->tsi, a, sizeof(a)),
		    ike_prop_ts_str(&pl->tsr, b, sizeof(b)));
}

/* The peer rekeys Child SA idx; 0 done (answered), else the notify. */
static uint16_t
rq_child(struct ike_ep *ep, struct ike_sa *sa, const struct ike_msg *m,
    size_t idx, struct ike_dh **dh, struct buf *gir)
{
	struct ike_rk	    *rk = sa->rk;
	struct ike_prop_desc pol, got;
	struct ike_child     old = sa->child[idx];
	struct rk_new	     x;
	struct ike_chain     c;
	struct buf	     in;
	uint16_t	     ke = rk_policy_ke(ep->cfg, RK_CHILD);
	uint32_t	     spi;
	int		     ok;

	rk_policy_esp(ep->cfg, &pol);
	if (ike_sa_choose(&m->pld.sa, &pol, 1, &got) == -1 || got.spi_len != 4)
		return IKE_N_NO_PROPOSAL_CHOSEN;
	memset(&x, 0, sizeof(x));
	x.kind = RK_CHILD;
	x.idx = idx;
	rq_nonce(&x, &m->pld);
	x.ch = old;
	x.ch.keys = NULL;
	x.ch.prop = got;
	if (rq_ts(ep, &m->pld, &old, &x.ch.ts_ue, &x.ch.ts_n3) == -1)
		return IKE_N_TS_UNACCEPTABLE;
	rq_log_ts(&m->pld, &old);
	memcpy(rk_is_ue(ep) ? &x.ch.spi_r : &x.ch.spi_i, got.spi, 4);
	if (ike_random(x.nr, x.nr_len) == -1)
		return IKE_N_TEMPORARY_FAILURE;
	rk_test_nonce(ep, rk, x.nr, x.nr_len, false);
	if (ike_random((uint8_t *)&spi, 4) == -1 ||
	    (ke != 0 && ke != IKE_KE_QKD_ETSI014 &&
		(*dh = ike_dh_new(ke)) == NULL))
		return IKE_N_TEMPORARY_FAILURE;
	*(rk_is_ue(ep) ? &x.ch.spi_i : &x.ch.spi_r) = spi;
	memcpy(got.spi, &spi, 4);
	if (rk_gir(ep, *dh, &rk->pqk, ke, &m->pld, gir) == -1)
		return ke == IKE_KE_QKD_ETSI014 ? IKE_N_TEMPORARY_FAILURE :
						  IKE_N_INVALID_KE_PAYLOAD;
	if ((x.ch.keys = ike_child_keys_new()) == NULL ||
	    ike_rekey_child_keymat(&sa->keys->d, gir->data, gir->len, x.ni,
		x.ni_len, x.nr, x.nr_len, &got, !rk_is_ue(ep),
		x.ch.keys) == -1) {
		ike_child_keys_free(x.ch.keys);
		return IKE_N_TEMPORARY_FAILURE;
	}
	ike_ep_inner_init(&in, &c);
	ok = rk_add_tail(ep, &c, &got, x.nr, x.nr_len, &x.ch, false, *dh,
		 rk->pqk) == 0 &&
	    ike_ep_respond(ep, sa, IKE_CREATE_CHILD_SA, m->hdr.msgid, c.first,
		&in) == 0;
	buf_free(&in);
	if (!ok) {
		ike_child_keys_free(x.ch.keys);
		return IKE_N_TEMPORARY_FAILURE;
	}
	rk_made(ep, sa, &x.ch);
	rk_log_child(ep, sa, &old, &x.ch, false);
	if (rk->out_kind == RK_CHILD && rk->out.idx == idx) {
		log_info("rekey collision on a Child SA: waiting for our own "
			 "exchange");
		rk->have_peer = true;
		rk->peer = x; /* owns the keys now */
	} else
		rk_replace(ep, sa, idx, &x.ch, false);
	OPENSSL_cleanse(&x, sizeof(x));
	return 0;
}

/* The peer rekeys the IKE SA; 0 done (answered), else the notify. */
static uint16_t
rq_ike(struct ike_ep *ep, struct ike_sa *sa, const struct ike_msg *m,
    struct ike_dh **dh, struct buf *gir)
{
	struct ike_rk	    *rk = sa->rk;
	struct ike_prop_desc got;
	struct ike_sa	    *n;
	struct rk_new	     x;
	struct ike_chain     c;
	struct buf	     in;
	uint8_t		     grp[2];
	int		     ok;

	if (ike_prop_choose_ike(ep->cfg, &m->pld, &got) != 0 ||
	    got.spi_len != IKE_SPI_LEN)
		return IKE_N_NO_PROPOSAL_CHOSEN;
	if (ike_prop_check_ke(ep->cfg, &got, &m->pld, grp) != 0)
		return IKE_N_INVALID_KE_PAYLOAD;
	memset(&x, 0, sizeof(x));
	x.kind = RK_IKE;
	rq_nonce(&x, &m->pld);
	memcpy(x.spi_i, got.spi, IKE_SPI_LEN);
	if (ike_random(x.nr, x.nr_len) == -1)
		return IKE_N_TEMPORARY_FAILURE;
	rk_test_nonce(ep, rk, x.nr, x.nr_len, false);
	if (ike_random(x.spi_r, IKE_SPI_LEN) == -1 ||
	    (got.ke[0] != IKE_KE_QKD_ETSI014 &&
		(*dh = ike_dh_new(got.ke[0])) == NULL))
		return IKE_N_TEMPORARY_FAILURE;
	if (rk_gir(ep, *dh, &rk->pqk, rk_policy_ke(ep->cfg, RK_IKE), &m->pld,
		gir) == -1)
		return IKE_N_TEMPORARY_FAILURE;
	if ((n = rk_new_sa(ep, sa, &x, false, &got, gir)) == NULL)
		return IKE_N_TEMPORARY_FAILURE;
	memcpy(got.spi, x.spi_r, IKE_SPI_LEN);
	ike_ep_inner_init(&in, &c);
	ok = rk_add_tail(ep, &c, &got, x.nr, x.nr_len, NULL, false, *dh,
		 rk->pqk) == 0 &&
	    ike_ep_respond(ep, sa, IKE_CREATE_CHILD_SA, m->hdr.msgid, c.first,
		&in) == 0;
	buf_free(&in);
	if (!ok) {
		n->state = SA_DEAD;
		return IKE_N_TEMPORARY_FAILURE;
	}
	rk_log_ike(ep, sa, n, false);
	if (rk->out_kind == RK_IKE) {
		log_info("rekey collision on the IKE SA: waiting for our own "
			 "exchange");
		n->rk->rekeyed = true; /* no rekeys of its own meanwhile */
		n->rk->ike_hard = time_mono_ns() + RK_OLD_NS;
		rk->have_peer = true;
		rk->peer = x;
	} else
		rk_move(ep, sa, n); /* the old one: the peer deletes it */
	OPENSSL_cleanse(&x, sizeof(x));
	return 0;
}

/* Answers the request m (its key, if any, in rk->pqk; wiped after). */
static void
rq_process(struct ike_ep *ep, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_rk *rk = sa->rk;
	struct ike_dh *dh = NULL;
	struct buf     gir;
	enum rk_kind   kind = RK_NONE;
	size_t	       idx = 0;
	uint16_t       nt;

	buf_init(&gir, 1024);
	if ((nt = rq_check(ep, sa, &m->pld, &kind, &idx)) == 0)
		nt = kind == RK_CHILD ? rq_child(ep, sa, m, idx, &dh, &gir) :
					rq_ike(ep, sa, m, &dh, &gir);
	if (nt != 0)
		rq_refuse(ep, sa, m, nt);
	rk_drop_key(&rk->pqk);
	ike_dh_free(dh);
	buf_free(&gir);
}

void
ike_rekey_request(struct ike_ep *ep, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_rk *rk = rk_get(ep, sa);
	enum rk_kind   kind;
	size_t	       idx;
	uint16_t       nt;

	if (rk == NULL) {
		(void)ike_ep_respond_notify(ep, sa, m, IKE_N_TEMPORARY_FAILURE);
		return;
	}
	rk_release(ep, sa); /* the test hook's request goes first */
	if ((nt = rq_check(ep, sa, &m->pld, &kind, &idx)) != 0) {
		rq_refuse(ep, sa, m, nt);
		return;
	}
	if (rk_qkd(ep) && !rk_is_ue(ep)) {
		/* The N3IWF draws the request's fresh key first (or takes
		 * the one coming for a rekey of its own, which yields). */
		if (!rk->wait_key &&
		    (ep->rk_ops.draw == NULL ||
			ep->rk_ops.draw(ep->rk_ops.ctx, sa) == -1)) {
			rq_refuse(ep, sa, m, IKE_N_TEMPORARY_FAILURE);
			return;
		}
		rk->wait_key = true;
		rk->want = RK_NONE;
		buf_reset(&rk->parked);
		if (buf_add(&rk->parked, ep->pkt.data, ep->pkt.len) == -1)
			return;
		sa->xc.parked = 1;
		return;
	}
	rq_process(ep, sa, m);
}

/* The response to our rekey that waited for the parked request. */
static void
rq_resp_resume(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk	 *rk = sa->rk;
	struct ike_sk_ctx k;
	struct ike_msg	  m;

	if (rk->resp.len == 0)
		return;
	memset(&m, 0, sizeof(m));
	ike_sa_sk(sa, 0, &k);
	if (ike_msg_parse(rk->resp.data, rk->resp.len, &k, &m) == 0)
		(void)ike_rekey_response(ep, sa, &m);
	ike_msg_free(&m);
	buf_reset(&rk->resp);
}

/* The parked request, with its key (or none: kmsd failed). */
static void
rq_resume(struct ike_ep *ep, struct ike_sa *sa, struct ike_qkd_keys **keys)
{
	struct ike_rk	 *rk = sa->rk;
	struct ike_sk_ctx k;
	struct ike_msg	  m;

	sa->xc.parked = 0;
	memset(&m, 0, sizeof(m));
	ike_sa_sk(sa, 0, &k);
	if (ike_msg_parse(rk->parked.data, rk->parked.len, &k, &m) == 0) {
		if (*keys == NULL)
			rq_refuse(ep, sa, &m, IKE_N_TEMPORARY_FAILURE);
		else {
			rk->pqk = *keys;
			*keys = NULL;
			rq_process(ep, sa, &m);
		}
	}
	ike_msg_free(&m);
	buf_reset(&rk->parked);
	rq_resp_resume(ep, sa);
}

bool
ike_rekey_qkd_done(struct ike_ep *ep, const uint8_t spi_i[static IKE_SPI_LEN],
    const uint8_t spi_r[static IKE_SPI_LEN], struct ike_qkd_keys **keys)
{
	struct ike_sa *sa = ike_ep_find(ep, spi_i, spi_r);
	struct ike_rk *rk;

	if (sa == NULL || sa->state != SA_ESTABLISHED ||
	    (rk = sa->rk) == NULL || !rk->wait_key)
		return false;
	rk->wait_key = false;
	if (sa->xc.parked) {
		rq_resume(ep, sa, keys);
		return true;
	}
	if (rk->want == RK_NONE || *keys == NULL) {
		rk_retry_later(ep, rk);
		return false;
	}
	rk->qk = *keys;
	*keys = NULL;
	if (rk_send(ep, sa, rk->want, rk->want_idx) == -1) {
		log_warn("rekey: cannot send the CREATE_CHILD_SA request");
		rk_drop_key(&rk->qk);
		rk->out_kind = RK_NONE;
		rk_retry_later(ep, rk);
	}
	return true;
}

/* The peer deletes the Child SA it sends on with SPI spi; ours in *mine. */
static bool
rq_delete_child(struct ike_ep *ep, struct ike_sa *sa, uint32_t spi,
    uint32_t *mine)
{
	struct ike_rk *rk = sa->rk;
	size_t	       i;

	for (i = 0; i < rk->nold; i++)
		if (rk_spi_out(ep, &rk->old[i].ch) == spi) {
			*mine = rk_spi_in(ep, &rk->old[i].ch);
			return rk_old_drop(ep, sa, *mine, true);
		}
	if ((i = rq_slot(ep, sa, spi)) == SIZE_MAX || rk->have_peer ||
	    (rk->out_kind == RK_CHILD && rk->out.idx == i))
		return false;
	*mine = rk_spi_in(ep, &sa->child[i]);
	log_info("Child SA %08x/%08x deleted by the peer", sa->child[i].spi_i,
	    sa->child[i].spi_r);
	rk_slot_remove(ep, sa, i, false);
	return rk_old_drop(ep, sa, *mine, true);
}

bool
ike_rekey_informational(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m)
{
	const struct ike_delete_pld *d = &m->pld.del;
	struct ike_rk		    *rk = rk_get(ep, sa);
	struct ike_chain	     c;
	struct buf		     in;
	uint32_t		     mine[8], spi;
	uint16_t		     n = 0;
	bool			     ike = false;

	ike_ep_inner_init(&in, &c);
	if (IKE_PLD_HAS(&m->pld, IKE_PL_DELETE)) {
		ike = d->proto == IKE_PROTO_IKE;
		if (ike)
			ike_rekey_log_children(sa,
			    "IKE SA deleted by the peer");
		for (size_t k = 0; rk != NULL && d->proto == IKE_PROTO_ESP &&
		     d->spi_len == 4 && k < d->nspi && n < 8;
		     k++) {
			memcpy(&spi, d->spis.p + 4 * k, 4);
			if (rq_delete_child(ep, sa, spi, &mine[n]))
				n++;
		}
	}
	if (n > 0)
		(void)ike_pld_add_delete(&c, IKE_PROTO_ESP, 4,
		    (const uint8_t *)mine, n);
	(void)ike_ep_respond(ep, sa, IKE_INFORMATIONAL, m->hdr.msgid, c.first,
	    &in);
	buf_free(&in);
	return ike;
}

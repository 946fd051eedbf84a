/*
 * Rekeying (ike/rekey.h), the parts both sides use: the per-SA state and
 * its lifetimes, the policies, the keys of a rekey (KEYMAT, g^ir, the
 * fresh QKD key), the Child SA slots and the replaced SAs, new IKE SAs.
 * The exchanges are in ike/rekey.c (ours) and ike/rekey_peer.c (the
 * peer's).
 */
#include <limits.h>
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

#define NS 1000000000ull

/* ---- small helpers ---- */

bool
rk_is_ue(const struct ike_ep *ep)
{
	return ep->cfg->role == IKE_ROLE_UE;
}

bool
rk_qkd(const struct ike_ep *ep)
{
	return ep->cfg->mode == IKE_MODE_QKD;
}

uint32_t
rk_spi_in(const struct ike_ep *ep, const struct ike_child *ch)
{
	return rk_is_ue(ep) ? ch->spi_i : ch->spi_r;
}

uint32_t
rk_spi_out(const struct ike_ep *ep, const struct ike_child *ch)
{
	return rk_is_ue(ep) ? ch->spi_r : ch->spi_i;
}

void
rk_ts_of(const struct ike_ep *ep, const struct ike_pld *pl, bool peer_request,
    const struct ike_ts_pld **ue, const struct ike_ts_pld **n3)
{
	bool ue_init = rk_is_ue(ep) != peer_request;

	*ue = ue_init ? &pl->tsi : &pl->tsr;
	*n3 = ue_init ? &pl->tsr : &pl->tsi;
}

/*
 * A soft deadline: now + s seconds, minus up to jitter percent at random;
 * s 0: never (cfg: no rekey, the hard lifetime deletes).
 */
static uint64_t
rk_soft_at(const struct ikecfg *c, uint64_t now, unsigned s)
{
	uint64_t ns = (uint64_t)s * NS;
	uint32_t r = 0;

	if (s == 0)
		return UINT64_MAX;
	if (c->rekey_jitter > 0 && ike_random((uint8_t *)&r, sizeof(r)) == 0)
		ns -= ns / 10000 * (r % (c->rekey_jitter * 100 + 1));
	return now + ns;
}

void
rk_reset_child(struct ike_ep *ep, struct ike_rk *rk, size_t i)
{
	uint64_t now = time_mono_ns();

	rk->ch_soft[i] = rk_soft_at(ep->cfg, now, ep->cfg->child_soft_s);
	rk->ch_hard[i] = now + (uint64_t)ep->cfg->child_hard_s * NS;
}

struct ike_rk *
rk_get(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk;
	uint64_t       now = time_mono_ns();

	if (sa->rk != NULL)
		return sa->rk;
	if ((rk = calloc(1, sizeof(*rk))) == NULL)
		return NULL;
	buf_init(&rk->parked, IKE_MSG_MAX);
	buf_init(&rk->resp, IKE_MSG_MAX);
	rk->sig_gen = ike_rekey_sig_gen();
	rk->ike_soft = rk_soft_at(ep->cfg, now, ep->cfg->ike_soft_s);
	rk->ike_hard = now + (uint64_t)ep->cfg->ike_hard_s * NS;
	for (size_t i = 0; i < IKE_SA_CHILD_MAX; i++)
		rk_reset_child(ep, rk, i);
	sa->rk = rk;
	return rk;
}

void
rk_new_clear(struct rk_new *x)
{
	ike_child_keys_free(x->ch.keys);
	OPENSSL_cleanse(x, sizeof(*x));
}

void
rk_drop_key(struct ike_qkd_keys **k)
{
	ike_qkd_keys_free(*k);
	*k = NULL;
}

/* Our exchange is over: its DH, QKD key and unused new Child SA go. */
void
rk_out_clear(struct ike_rk *rk)
{
	rk->out_kind = RK_NONE;
	rk_new_clear(&rk->out);
	ike_dh_free(rk->dh);
	rk->dh = NULL;
	rk_drop_key(&rk->qk);
}

void
ike_rekey_free(struct ike_rk *rk)
{
	if (rk == NULL)
		return;
	rk_out_clear(rk);
	rk_new_clear(&rk->peer);
	rk_drop_key(&rk->pqk);
	for (size_t i = 0; i < rk->nold; i++)
		ike_child_keys_free(rk->old[i].ch.keys);
	if (rk->old != NULL)
		OPENSSL_cleanse(rk->old, RK_OLD_MAX * sizeof(*rk->old));
	free(rk->old);
	buf_free(&rk->parked);
	buf_free(&rk->resp);
	OPENSSL_cleanse(rk, sizeof(*rk));
	free(rk);
}

uint16_t
rk_policy_ke(const struct ikecfg *c, enum rk_kind kind)
{
	if (c->mode == IKE_MODE_QKD)
		return IKE_KE_QKD_ETSI014;
	if (kind == RK_IKE || c->mode == IKE_MODE_QKD_DH || c->child_pfs)
		return (uint16_t)c->dh_group;
	return 0;
}

void
rk_policy_esp(const struct ikecfg *c, struct ike_prop_desc *d)
{
	uint16_t ke = rk_policy_ke(c, RK_CHILD);

	ike_prop_esp(c, d);
	if (ke != 0) {
		d->nke = 1;
		d->ke[0] = ke;
	}
}

/* ---- keys ---- */

bool
ike_rekey_we_lose(const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, const uint8_t *pni, size_t pni_len, const uint8_t *pnr,
    size_t pnr_len)
{
	const uint8_t *v[4] = { ni, nr, pni, pnr };
	size_t	       l[4] = { ni_len, nr_len, pni_len, pnr_len };
	size_t	       lo = 0;

	for (size_t i = 1; i < 4; i++) {
		size_t n = l[i] < l[lo] ? l[i] : l[lo];
		int    c = memcmp(v[i], v[lo], n);

		if (c < 0 || (c == 0 && l[i] < l[lo]))
			lo = i;
	}
	return lo < 2;
}

int
ike_rekey_child_keymat(const struct ike_key *sk_d, const uint8_t *gir,
    size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, const struct ike_prop_desc *p, bool ue_started,
    struct ike_child_keys *k)
{
	if (ike_child_keys_derive(sk_d, gir_len ? gir : NULL, gir_len, ni,
		ni_len, nr, nr_len, p->encr, p->encr_bits, p->integ, k) == -1)
		return -1;
	/* The N3IWF started it: its "i -> r" is N3IWF -> UE. */
	if (!ue_started)
		ike_child_keys_swap(k);
	return 0;
}

/* UE, qkd: dec_keys of the one key the N3IWF named in QKD_KEY_IDS. */
static int
rk_fetch(struct ike_ep *ep, const struct ike_pld *pl, struct ike_qkd_keys **qk)
{
	const struct ike_notify *n = ike_pld_notify(pl, IKE_N_QKD_KEY_IDS);
	struct ike_qkd_keys	*k;

	if (ep->rk_ops.fetch == NULL || n == NULL) {
		log_warn("rekey: no QKD_KEY_IDS from the N3IWF");
		return -1;
	}
	if ((k = ike_qkd_keys_new()) == NULL)
		return -1;
	if (ike_qkd_ids_decode(n->data.p, n->data.len, 1, k) == -1 ||
	    ep->rk_ops.fetch(ep->rk_ops.ctx, k->id[0], k) == -1) {
		ike_qkd_keys_free(k);
		return -1;
	}
	*qk = k;
	return 0;
}

int
rk_gir(struct ike_ep *ep, struct ike_dh *dh, struct ike_qkd_keys **qk,
    uint16_t ke, const struct ike_pld *pl, struct buf *gir)
{
	if (ke == 0)
		return 0;
	if (ke == IKE_KE_QKD_ETSI014) {
		if (*qk == NULL && rk_fetch(ep, pl, qk) == -1)
			return -1;
		ep->rks.qkd_keys++;
		log_info("rekey: fresh QKD key %s", (*qk)->id[0]);
		return buf_add(gir, (*qk)->key[0], IKE_QKD_KEYLEN);
	}
	if (dh == NULL || !IKE_PLD_HAS(pl, IKE_PL_KE) || pl->ke.group != ke) {
		log_warn("rekey: no KE payload of group %u", ke);
		return -1;
	}
	return ike_dh_derive(dh, pl->ke.data.p, pl->ke.data.len, gir);
}

/*
 * The selectors of Child SA ch as TSi and TSr of an exchange we start
 * (request) or answer: TSi is the side of the exchange's initiator.
 */
static int
rk_add_ts(struct ike_ep *ep, struct ike_chain *c, const struct ike_child *ch,
    bool request)
{
	bool ue_init = rk_is_ue(ep) == request;

	return ike_pld_add_ts(c, IKE_PL_TSI,
		   ue_init ? &ch->ts_ue : &ch->ts_n3) == 0 &&
		ike_pld_add_ts(c, IKE_PL_TSR,
		    ue_init ? &ch->ts_n3 : &ch->ts_ue) == 0 ?
	    0 :
	    -1;
}

/* After the SA payload: Nonce, [KE], [TSi, TSr of ch], [QKD_KEY_IDS]. */
int
rk_add_tail(struct ike_ep *ep, struct ike_chain *c,
    const struct ike_prop_desc *p, const uint8_t *nonce, size_t nlen,
    const struct ike_child *ch, bool request, const struct ike_dh *dh,
    const struct ike_qkd_keys *qk)
{
	struct buf pub;
	uint8_t	   ids[1 + 16];
	size_t	   idlen;
	int	   ok;

	buf_init(&pub, 1024);
	ok = ike_pld_add_sa(c, p, 1) == 0 &&
	    ike_pld_add_nonce(c, nonce, nlen) == 0;
	if (ok && dh != NULL)
		ok = ike_dh_public(dh, &pub) == 0 &&
		    ike_pld_add_ke(c, ike_dh_group(dh), pub.data, pub.len) == 0;
	if (ok && ch != NULL)
		ok = rk_add_ts(ep, c, ch, request) == 0;
	if (ok && qk != NULL && !rk_is_ue(ep))
		ok = ike_qkd_ids_encode(qk, ids, sizeof(ids), &idlen) == 0 &&
		    ike_pld_add_notify(c, 0, NULL, 0, IKE_N_QKD_KEY_IDS, ids,
			idlen) == 0;
	buf_free(&pub);
	return ok ? 0 : -1;
}

/* ---- Child SAs: slots, replaced ones, Deletes ---- */

void
rk_made(struct ike_ep *ep, const struct ike_sa *sa, const struct ike_child *ch)
{
	if (ep->hooks.installed != NULL)
		ep->hooks.installed(ep->hooks.ctx, sa, ch);
}

void
rk_old_unplug(struct ike_ep *ep, struct ike_sa *sa, size_t i)
{
	struct rk_old *o = &sa->rk->old[i];

	if (o->gone)
		return;
	if (ep->hooks.removed != NULL)
		ep->hooks.removed(ep->hooks.ctx, sa, &o->ch);
	ike_child_keys_free(o->ch.keys);
	o->ch.keys = NULL;
	o->gone = true;
}

void
rk_old_remove(struct ike_ep *ep, struct ike_sa *sa, size_t i)
{
	struct ike_rk *rk = sa->rk;

	rk_old_unplug(ep, sa, i);
	log_debug("Child SA %08x/%08x removed", rk->old[i].ch.spi_i,
	    rk->old[i].ch.spi_r);
	memmove(&rk->old[i], &rk->old[i + 1],
	    (rk->nold - i - 1) * sizeof(rk->old[0]));
	rk->nold--;
	memset(&rk->old[rk->nold], 0, sizeof(rk->old[0]));
	if (rk->nold == 0) { /* an established UE keeps no replaced SAs */
		free(rk->old);
		rk->old = NULL;
	}
}

void
rk_old_add(struct ike_ep *ep, struct ike_sa *sa, const struct ike_child *ch,
    bool we_delete)
{
	struct ike_rk *rk = sa->rk;
	struct rk_old *o;

	if (rk->nold == RK_OLD_MAX)
		rk_old_remove(ep, sa, 0);
	if (rk->old == NULL &&
	    (rk->old = calloc(RK_OLD_MAX, sizeof(*rk->old))) == NULL) {
		log_err(
		    "rekey: no memory for a replaced Child SA: removed now");
		if (ep->hooks.removed != NULL)
			ep->hooks.removed(ep->hooks.ctx, sa, ch);
		ike_child_keys_free(ch->keys);
		return;
	}
	o = &rk->old[rk->nold++];
	memset(o, 0, sizeof(*o));
	o->ch = *ch;
	o->we_delete = we_delete;
	o->expire = time_mono_ns() + RK_OLD_NS;
}

/* The old Child SA (we send on) with inbound SPI `spi` of ours: gone. */
bool
rk_old_drop(struct ike_ep *ep, struct ike_sa *sa, uint32_t spi, bool ours)
{
	struct ike_rk *rk = sa->rk;

	for (size_t i = 0; i < rk->nold; i++)
		if ((ours ? rk_spi_in(ep, &rk->old[i].ch) :
			    rk_spi_out(ep, &rk->old[i].ch)) == spi) {
			rk_old_remove(ep, sa, i);
			return true;
		}
	return false;
}

void
rk_replace(struct ike_ep *ep, struct ike_sa *sa, size_t idx,
    const struct ike_child *nc, bool we_delete_old)
{
	struct ike_child old = sa->child[idx];

	sa->child[idx] = *nc;
	if (ep->hooks.replaced != NULL)
		ep->hooks.replaced(ep->hooks.ctx, sa, &old, &sa->child[idx],
		    we_delete_old);
	rk_old_add(ep, sa, &old, we_delete_old);
	rk_reset_child(ep, sa->rk, idx);
}

/* Slot idx is no more (hard lifetime, or the peer deleted it). */
void
rk_slot_remove(struct ike_ep *ep, struct ike_sa *sa, size_t idx, bool we_delete)
{
	struct ike_rk *rk = sa->rk;

	rk_old_add(ep, sa, &sa->child[idx], we_delete);
	for (size_t i = idx; i + 1 < sa->nchild; i++) {
		sa->child[i] = sa->child[i + 1];
		rk->ch_soft[i] = rk->ch_soft[i + 1];
		rk->ch_hard[i] = rk->ch_hard[i + 1];
	}
	sa->nchild--;
	memset(&sa->child[sa->nchild], 0, sizeof(sa->child[0]));
}

void
ike_rekey_unplug(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk = sa->rk;

	for (size_t i = 0; ep->hooks.removed != NULL && i < sa->nchild; i++)
		ep->hooks.removed(ep->hooks.ctx, sa, &sa->child[i]);
	if (rk == NULL)
		return;
	for (size_t i = 0; i < rk->nold; i++)
		rk_old_unplug(ep, sa, i);
	/* a colliding peer's new Child SA, installed, not yet in a slot */
	if (rk->have_peer && rk->peer.kind == RK_CHILD &&
	    ep->hooks.removed != NULL)
		ep->hooks.removed(ep->hooks.ctx, sa, &rk->peer.ch);
}

void
rk_log_child(struct ike_ep *ep, const struct ike_sa *sa,
    const struct ike_child *old, const struct ike_child *ch, bool ours)
{
	ep->rks.child++;
	if (ours)
		ep->rks.child_ours++;
	log_info("Child SA rekeyed: %08x/%08x -> %08x/%08x (%s%s, started "
		 "by %s)",
	    old->spi_i, old->spi_r, ch->spi_i, ch->spi_r,
	    ch->up ? "user plane" : "signalling",
	    ike_prop_uses_esn(&ch->prop) ? ", ESN" : "",
	    ours == rk_is_ue(ep) ? "the UE" : "the N3IWF");
	ike_sa_log_fp(sa, "Child SA (rekeyed)", ch);
}

/* ---- IKE SAs ---- */

struct ike_sa *
rk_new_sa(struct ike_ep *ep, struct ike_sa *old, const struct rk_new *x,
    bool initiator, const struct ike_prop_desc *p, const struct buf *gir)
{
	struct ike_sa *n;
	uint8_t	       seed[IKE_PRF_LEN];
	int	       r;

	if ((n = ike_sa_new(ep->cfg, initiator)) == NULL)
		return NULL;
	memcpy(n->spi_i, x->spi_i, IKE_SPI_LEN);
	memcpy(n->spi_r, x->spi_r, IKE_SPI_LEN);
	memcpy(n->ni, x->ni, x->ni_len);
	memcpy(n->nr, x->nr, x->nr_len);
	n->ni_len = x->ni_len;
	n->nr_len = x->nr_len;
	n->prop = *p;
	n->peer = old->peer;
	n->local = old->local;
	n->natt = old->natt;
	memcpy(n->peer_sae, old->peer_sae, sizeof(n->peer_sae));
	n->st.conn = old->st.conn;
	n->state = SA_ESTABLISHED;
	r = ike_skeyseed_rekey(&old->keys->d, gir->data, gir->len, x->ni,
		x->ni_len, x->nr, x->nr_len, seed) == 0 &&
		ike_sa_keys_derive(seed, x->ni, x->ni_len, x->nr, x->nr_len,
		    n->spi_i, n->spi_r, p->encr, p->encr_bits, p->integ,
		    n->keys) == 0 &&
		rk_get(ep, n) != NULL && ike_ep_add(ep, n) == 0 ?
	    0 :
	    -1;
	OPENSSL_cleanse(seed, sizeof(seed));
	if (r == -1) {
		ike_sa_free(n);
		return NULL;
	}
	ike_sa_log_fp(n, "IKE SA (rekeyed)", NULL);
	return n;
}

/* The Child SAs (and their timers, and the replaced ones) move over. */
void
rk_move(struct ike_ep *ep, struct ike_sa *from, struct ike_sa *to)
{
	struct ike_rk *f = rk_get(ep, from), *t = rk_get(ep, to);

	if (f == NULL || t == NULL)
		return;
	memcpy(to->child, from->child, sizeof(from->child));
	to->nchild = from->nchild;
	to->cp_addr = from->cp_addr; /* the UE keeps its inner address */
	to->amf = from->amf; /* and its 5G context (NAS over TCP uses it) */
	from->amf = NULL;
	to->usim = from->usim;
	from->usim = NULL;
	from->nchild = 0;
	memset(from->child, 0, sizeof(from->child));
	memcpy(t->ch_soft, f->ch_soft, sizeof(t->ch_soft));
	memcpy(t->ch_hard, f->ch_hard, sizeof(t->ch_hard));
	free(t->old); /* a new SA's: empty */
	t->old = f->old;
	t->nold = f->nold;
	f->nold = 0;
	f->old = NULL;
	t->rekeyed = false;
	f->rekeyed = true;
	f->ike_hard = time_mono_ns() + RK_OLD_NS;
	if (ep->role.moved != NULL)
		ep->role.moved(ep->role.ctx, from, to);
}

unsigned long long
rk_spi64(const uint8_t s[static IKE_SPI_LEN])
{
	unsigned long long v = 0;

	for (size_t i = 0; i < IKE_SPI_LEN; i++)
		v = v << 8 | s[i];
	return v;
}

void
rk_log_ike(struct ike_ep *ep, const struct ike_sa *old, const struct ike_sa *n,
    bool ours)
{
	ep->rks.ike++;
	if (ours)
		ep->rks.ike_ours++;
	log_info("IKE SA rekeyed: %016llx -> %016llx_i %016llx_r (started "
		 "by %s)",
	    rk_spi64(old->spi_i), rk_spi64(n->spi_i), rk_spi64(n->spi_r),
	    ours == rk_is_ue(ep) ? "the UE" : "the N3IWF");
}

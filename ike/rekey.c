/*
 * Rekeying (ike/rekey.h): lifetimes and timers, the rekeys we start and
 * their responses, collisions, the Deletes we send. The peer's requests
 * are in ike/rekey_peer.c.
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

/* A soft deadline: now + s seconds, minus up to jitter percent at random. */
static uint64_t
rk_soft_at(const struct ikecfg *c, uint64_t now, unsigned s)
{
	uint64_t ns = (uint64_t)s * NS;
	uint32_t r = 0;

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
	rk->ike_soft = rk_soft_at(ep->cfg, now, ep->cfg->ike_soft_s);
	rk->ike_hard = now + (uint64_t)ep->cfg->ike_hard_s * NS;
	for (size_t i = 0; i < IKE_SA_CHILD_MAX; i++)
		rk_reset_child(ep, rk, i);
	sa->rk = rk;
	return rk;
}

static void
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
static void
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
	buf_free(&rk->parked);
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
	struct ike_child_keys t;

	if (ike_child_keys_derive(sk_d, gir_len ? gir : NULL, gir_len, ni,
		ni_len, nr, nr_len, p->encr, p->encr_bits, p->integ, k) == -1)
		return -1;
	if (ue_started)
		return 0;
	/* The N3IWF started it: its "i -> r" is N3IWF -> UE. */
	t = *k;
	k->ei = t.er;
	k->ai = t.ar;
	k->er = t.ei;
	k->ar = t.ai;
	OPENSSL_cleanse(&t, sizeof(t));
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

/* After the SA payload: Nonce, [KE], [TSi, TSr], [QKD_KEY_IDS]. */
int
rk_add_tail(struct ike_ep *ep, struct ike_chain *c,
    const struct ike_prop_desc *p, const uint8_t *nonce, size_t nlen,
    bool child, const struct ike_dh *dh, const struct ike_qkd_keys *qk)
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
	if (ok && child)
		ok = ike_prop_add_ts_any(c, IKE_PL_TSI) == 0 &&
		    ike_prop_add_ts_any(c, IKE_PL_TSR) == 0;
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

static void
rk_old_remove(struct ike_ep *ep, struct ike_sa *sa, size_t i)
{
	struct ike_rk *rk = sa->rk;

	if (ep->hooks.removed != NULL)
		ep->hooks.removed(ep->hooks.ctx, sa, &rk->old[i].ch);
	log_debug("Child SA %08x/%08x removed", rk->old[i].ch.spi_i,
	    rk->old[i].ch.spi_r);
	ike_child_keys_free(rk->old[i].ch.keys);
	memmove(&rk->old[i], &rk->old[i + 1],
	    (rk->nold - i - 1) * sizeof(rk->old[0]));
	rk->nold--;
	memset(&rk->old[rk->nold], 0, sizeof(rk->old[0]));
}

void
rk_old_add(struct ike_ep *ep, struct ike_sa *sa, const struct ike_child *ch,
    bool we_delete)
{
	struct ike_rk *rk = sa->rk;
	struct rk_old *o;

	if (rk->nold == RK_OLD_MAX)
		rk_old_remove(ep, sa, 0);
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
		ep->hooks.replaced(ep->hooks.ctx, sa, &old, &sa->child[idx]);
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
rk_log_child(struct ike_ep *ep, const struct ike_sa *sa,
    const struct ike_child *old, const struct ike_child *ch, bool ours)
{
	ep->rks.child++;
	if (ours)
		ep->rks.child_ours++;
	log_info("Child SA rekeyed: %08x/%08x -> %08x/%08x (%s, started by "
		 "%s)",
	    old->spi_i, old->spi_r, ch->spi_i, ch->spi_r,
	    ch->up ? "user plane" : "signalling",
	    ours == rk_is_ue(ep) ? "the UE" : "the N3IWF");
	ike_sa_log_fp(sa, "Child SA (rekeyed)", ch);
}

/* Sends the Delete of one replaced Child SA; true if one went out. */
static bool
rk_send_delete(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk	*rk = sa->rk;
	struct ike_chain c;
	struct buf	 in;
	uint32_t	 spi;
	int		 r;

	for (size_t i = 0; i < rk->nold; i++) {
		if (!rk->old[i].we_delete || rk->old[i].sent)
			continue;
		spi = rk_spi_in(ep, &rk->old[i].ch);
		ike_ep_inner_init(&in, &c);
		r = ike_pld_add_delete(&c, IKE_PROTO_ESP, 4,
			(const uint8_t *)&spi, 1) == 0 ?
		    ike_ep_request(ep, sa, IKE_INFORMATIONAL, c.first, &in) :
		    -1;
		buf_free(&in);
		if (r == -1)
			return false;
		rk->old[i].sent = true;
		rk->out_kind = RK_DEL;
		rk->del_spi = spi;
		return true;
	}
	return false;
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
	from->nchild = 0;
	memset(from->child, 0, sizeof(from->child));
	memcpy(t->ch_soft, f->ch_soft, sizeof(t->ch_soft));
	memcpy(t->ch_hard, f->ch_hard, sizeof(t->ch_hard));
	memcpy(t->old, f->old, sizeof(t->old));
	t->nold = f->nold;
	f->nold = 0;
	memset(f->old, 0, sizeof(f->old));
	t->rekeyed = false;
	f->rekeyed = true;
	f->ike_hard = time_mono_ns() + RK_OLD_NS;
}

static unsigned long long
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

/* Initiator of a rekey: the old IKE SA goes, with a Delete. */
static void
rk_delete_old_ike(struct ike_ep *ep, struct ike_sa *sa)
{
	if (ike_ep_delete(ep, sa) == 0)
		sa->state = SA_DELETING;
	else
		sa->state = SA_DEAD;
}

/* Both exchanges rekeyed the IKE SA: one new SA survives (2.8.1). */
static void
rk_resolve_ike(struct ike_ep *ep, struct ike_sa *sa, struct ike_sa *own)
{
	struct ike_rk *rk = sa->rk;
	struct ike_sa *peer = ike_ep_find(ep, rk->peer.spi_i, rk->peer.spi_r);
	bool	       lose;

	lose = ike_rekey_we_lose(rk->out.ni, rk->out.ni_len, rk->out.nr,
	    rk->out.nr_len, rk->peer.ni, rk->peer.ni_len, rk->peer.nr,
	    rk->peer.nr_len);
	ep->rks.collisions++;
	rk->have_peer = false;
	log_info("rekey collision on the IKE SA: %s new IKE SA is redundant",
	    lose ? "our" : "the peer's");
	if (peer == NULL || peer->state != SA_ESTABLISHED) {
		rk_move(ep, sa, own);
		rk_delete_old_ike(ep, sa);
		return;
	}
	if (lose) {
		rk_move(ep, sa, peer);
		own->rk->rekeyed = true;
		ep->rks.redundant++;
		rk_delete_old_ike(ep, own);
		return; /* the old one: the peer deletes it */
	}
	rk_move(ep, sa, own);
	peer->rk->rekeyed = true; /* the peer deletes it */
	peer->rk->ike_hard = time_mono_ns() + RK_OLD_NS;
	rk_delete_old_ike(ep, sa);
}

/* Our exchange failed: a colliding one of the peer's stands alone. */
static void
rk_resolve_peer_alone(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk = sa->rk;
	struct ike_sa *n;

	if (!rk->have_peer)
		return;
	rk->have_peer = false;
	if (rk->peer.kind == RK_CHILD) {
		rk_replace(ep, sa, rk->peer.idx, &rk->peer.ch, false);
		rk->peer.ch.keys = NULL;
	} else if ((n = ike_ep_find(ep, rk->peer.spi_i, rk->peer.spi_r)) !=
	    NULL)
		rk_move(ep, sa, n);
	rk_new_clear(&rk->peer);
}

/* ---- our rekeys ---- */

int
rk_send(struct ike_ep *ep, struct ike_sa *sa, enum rk_kind kind, size_t idx)
{
	struct ike_rk	    *rk = sa->rk;
	struct rk_new	    *x = &rk->out;
	struct ike_prop_desc p;
	struct ike_chain     c;
	struct buf	     in;
	uint16_t	     ke = rk_policy_ke(ep->cfg, kind);
	uint32_t	     spi, old;
	int		     ok;

	rk_new_clear(x);
	x->kind = kind;
	x->idx = idx;
	x->ni_len = IKE_NONCE_LEN;
	if (ike_random(x->ni, IKE_NONCE_LEN) == -1)
		return -1;
	if (kind == RK_CHILD) {
		rk_policy_esp(ep->cfg, &p);
		x->ch = sa->child[idx];
		x->ch.keys = NULL;
		if (ike_random((uint8_t *)&spi, 4) == -1)
			return -1;
		*(rk_is_ue(ep) ? &x->ch.spi_i : &x->ch.spi_r) = spi;
		memcpy(p.spi, &spi, 4);
	} else {
		ike_prop_ike(ep->cfg, &p);
		p.spi_len = IKE_SPI_LEN;
		if (ike_random(x->spi_i, IKE_SPI_LEN) == -1)
			return -1;
		memcpy(p.spi, x->spi_i, IKE_SPI_LEN);
	}
	if (ke != 0 && ke != IKE_KE_QKD_ETSI014 &&
	    (rk->dh = ike_dh_new(ke)) == NULL)
		return -1;
	ike_ep_inner_init(&in, &c);
	old = kind == RK_CHILD ? rk_spi_in(ep, &sa->child[idx]) : 0;
	ok = kind != RK_CHILD ||
	    ike_pld_add_notify(&c, IKE_PROTO_ESP, (const uint8_t *)&old, 4,
		IKE_N_REKEY_SA, NULL, 0) == 0;
	ok = ok &&
	    rk_add_tail(ep, &c, &p, x->ni, x->ni_len, kind == RK_CHILD, rk->dh,
		rk->qk) == 0 &&
	    ike_ep_request(ep, sa, IKE_CREATE_CHILD_SA, c.first, &in) == 0;
	buf_free(&in);
	if (!ok)
		return -1;
	rk->out_kind = kind;
	log_debug("rekey of the %s started",
	    kind == RK_IKE	  ? "IKE SA" :
		sa->child[idx].up ? "user-plane Child SA" :
				    "signalling Child SA");
	return 0;
}

/* After a refusal: again in rekey_retry_s, or sooner, before a hard end. */
void
rk_retry_later(struct ike_ep *ep, struct ike_rk *rk)
{
	uint64_t now = time_mono_ns(),
		 d = (uint64_t)ep->cfg->rekey_retry_s * NS;
	uint64_t hard = rk->ike_hard;

	for (size_t i = 0; i < IKE_SA_CHILD_MAX; i++)
		if (rk->ch_hard[i] < hard)
			hard = rk->ch_hard[i];
	if (hard > now && (hard - now) / 3 < d)
		d = (hard - now) / 3;
	rk->retry = now + d;
}

/* Starts a rekey (N3IWF in qkd: draws its key first). */
static void
rk_start(struct ike_ep *ep, struct ike_sa *sa, enum rk_kind kind, size_t idx)
{
	struct ike_rk *rk = sa->rk;

	if (rk_qkd(ep) && !rk_is_ue(ep) && rk->qk == NULL) {
		if (ep->rk_ops.draw == NULL ||
		    ep->rk_ops.draw(ep->rk_ops.ctx, sa) == -1) {
			rk_retry_later(ep, rk);
			return;
		}
		rk->wait_key = true;
		rk->want = kind;
		rk->want_idx = idx;
		return;
	}
	if (rk_send(ep, sa, kind, idx) == -1) {
		log_warn("rekey: cannot send the CREATE_CHILD_SA request");
		rk_out_clear(rk);
		rk_retry_later(ep, rk);
	}
}

/* Both exchanges rekeyed the same Child SA: one new SA survives. */
static void
rk_resolve_child(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk = sa->rk;
	struct rk_new *x = &rk->out, *p = &rk->peer;
	bool	       lose;

	lose = ike_rekey_we_lose(x->ni, x->ni_len, x->nr, x->nr_len, p->ni,
	    p->ni_len, p->nr, p->nr_len);
	ep->rks.collisions++;
	log_info("rekey collision on a Child SA: %s new Child SA %08x/%08x is "
		 "redundant",
	    lose ? "our" : "the peer's", lose ? x->ch.spi_i : p->ch.spi_i,
	    lose ? x->ch.spi_r : p->ch.spi_r);
	if (lose) {
		rk_replace(ep, sa, x->idx, &p->ch, false);
		rk_old_add(ep, sa, &x->ch, true);
		ep->rks.redundant++;
	} else {
		rk_replace(ep, sa, x->idx, &x->ch, true);
		rk_old_add(ep, sa, &p->ch, false);
	}
	x->ch.keys = p->ch.keys = NULL;
	rk->have_peer = false;
	rk_new_clear(p);
}

static int
rk_nonce(const struct ike_pld *pl, uint8_t *out, size_t *len)
{
	if (!IKE_PLD_HAS(pl, IKE_PL_NONCE) || pl->nonce.len < IKE_NONCE_MIN ||
	    pl->nonce.len > IKE_NONCE_MAX)
		return -1;
	memcpy(out, pl->nonce.p, pl->nonce.len);
	*len = pl->nonce.len;
	return 0;
}

static int
rk_child_done(struct ike_ep *ep, struct ike_sa *sa, const struct ike_pld *pl)
{
	struct ike_rk	    *rk = sa->rk;
	struct rk_new	    *x = &rk->out;
	struct ike_prop_desc offer, got;
	struct ike_child     old = sa->child[x->idx];
	struct buf	     gir;
	int		     ret = -1;

	buf_init(&gir, 1024);
	rk_policy_esp(ep->cfg, &offer);
	if (ike_prop_reply_esp(&offer, pl, &got) == -1 ||
	    rk_nonce(pl, x->nr, &x->nr_len) == -1)
		goto done;
	memcpy(rk_is_ue(ep) ? &x->ch.spi_r : &x->ch.spi_i, got.spi, 4);
	x->ch.prop = got;
	if (rk_gir(ep, rk->dh, &rk->qk, rk_policy_ke(ep->cfg, RK_CHILD), pl,
		&gir) == -1 ||
	    (x->ch.keys = ike_child_keys_new()) == NULL ||
	    ike_rekey_child_keymat(&sa->keys->d, gir.data, gir.len, x->ni,
		x->ni_len, x->nr, x->nr_len, &got, rk_is_ue(ep),
		x->ch.keys) == -1)
		goto done;
	rk_made(ep, sa, &x->ch);
	rk_log_child(ep, sa, &old, &x->ch, true);
	if (rk->have_peer && rk->peer.kind == RK_CHILD &&
	    rk->peer.idx == x->idx)
		rk_resolve_child(ep, sa);
	else {
		rk_replace(ep, sa, x->idx, &x->ch, true);
		x->ch.keys = NULL;
	}
	ret = 0;
done:
	buf_free(&gir);
	return ret;
}

static int
rk_ike_done(struct ike_ep *ep, struct ike_sa *sa, const struct ike_pld *pl)
{
	struct ike_rk	    *rk = sa->rk;
	struct rk_new	    *x = &rk->out;
	struct ike_prop_desc offer, got;
	struct ike_sa	    *n;
	struct buf	     gir;
	int		     ret = -1;

	buf_init(&gir, 1024);
	ike_prop_ike(ep->cfg, &offer);
	if (!IKE_PLD_HAS(pl, IKE_PL_SA) ||
	    ike_sa_check_reply(&pl->sa, &offer, 1, &got) == -1 ||
	    got.spi_len != IKE_SPI_LEN || rk_nonce(pl, x->nr, &x->nr_len) == -1)
		goto done;
	memcpy(x->spi_r, got.spi, IKE_SPI_LEN);
	if (rk_gir(ep, rk->dh, &rk->qk, rk_policy_ke(ep->cfg, RK_IKE), pl,
		&gir) == -1 ||
	    (n = rk_new_sa(ep, sa, x, true, &got, &gir)) == NULL)
		goto done;
	rk_log_ike(ep, sa, n, true);
	if (rk->have_peer && rk->peer.kind == RK_IKE)
		rk_resolve_ike(ep, sa, n);
	else {
		rk_move(ep, sa, n);
		rk_delete_old_ike(ep, sa);
	}
	ret = 0;
done:
	buf_free(&gir);
	return ret;
}

static uint16_t
rk_error(const struct ike_pld *pl)
{
	for (size_t i = 0; i < pl->nnotify; i++)
		if (pl->notify[i].type <= IKE_N_ERROR_MAX)
			return pl->notify[i].type;
	return 0;
}

bool
ike_rekey_response(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m)
{
	struct ike_rk *rk = sa->rk;
	uint16_t       err;
	int	       r;

	if (rk == NULL || rk->out_kind == RK_NONE)
		return false;
	if (rk->out_kind == RK_DEL) {
		if (m->hdr.exchange != IKE_INFORMATIONAL)
			return false;
		(void)rk_old_drop(ep, sa, rk->del_spi, true);
		rk->out_kind = RK_NONE;
		return true;
	}
	if (m->hdr.exchange != IKE_CREATE_CHILD_SA)
		return false;
	if ((err = rk_error(&m->pld)) != 0) {
		log_info("rekey of the %s refused by the peer: %s",
		    rk->out_kind == RK_IKE ? "IKE SA" : "Child SA",
		    ike_notify_name(err));
		if (err == IKE_N_TEMPORARY_FAILURE)
			ep->rks.temp_fail++;
		r = -1;
	} else
		r = rk->out_kind == RK_CHILD ? rk_child_done(ep, sa, &m->pld) :
					       rk_ike_done(ep, sa, &m->pld);
	if (r == -1) {
		if (err == 0)
			log_warn("rekey of the %s failed: bad response",
			    rk->out_kind == RK_IKE ? "IKE SA" : "Child SA");
		rk_resolve_peer_alone(ep, sa);
		rk_retry_later(ep, rk);
	}
	rk_out_clear(rk);
	return true;
}

/* ---- timers ---- */

static uint64_t
rk_next(const struct ike_sa *sa, uint64_t now)
{
	const struct ike_rk *rk = sa->rk;
	uint64_t	     t[4 + 2 * IKE_SA_CHILD_MAX + RK_OLD_MAX];
	uint64_t	     best = UINT64_MAX;
	size_t		     n = 0;

	t[n++] = rk->ike_soft;
	t[n++] = rk->ike_hard;
	t[n++] = rk->retry;
	for (size_t i = 0; i < sa->nchild; i++) {
		t[n++] = rk->ch_soft[i];
		t[n++] = rk->ch_hard[i];
	}
	for (size_t i = 0; i < rk->nold; i++)
		t[n++] = rk->old[i].expire;
	for (size_t i = 0; i < n; i++)
		if (t[i] > now && t[i] < best)
			best = t[i];
	return best;
}

static int
rk_wait_ms(const struct ike_sa *sa, uint64_t now)
{
	uint64_t t = rk_next(sa, now);

	if (t == UINT64_MAX || t - now > (uint64_t)INT_MAX * 1000000u)
		return 1000;
	return (int)((t - now) / 1000000u) + 1;
}

/* Hard lifetimes: Child SAs deleted; replaced ones never deleted dropped. */
static void
rk_expire(struct ike_ep *ep, struct ike_sa *sa, uint64_t now)
{
	struct ike_rk *rk = sa->rk;

	for (size_t i = 0; i < rk->nold;)
		if (now >= rk->old[i].expire)
			rk_old_remove(ep, sa, i);
		else
			i++;
	for (size_t i = 0; i < sa->nchild; i++) {
		if (now < rk->ch_hard[i] || rk->wait_key ||
		    (rk->out_kind == RK_CHILD && rk->out.idx == i) ||
		    rk->have_peer)
			continue;
		log_warn("Child SA %08x/%08x: hard lifetime reached, deleted",
		    sa->child[i].spi_i, sa->child[i].spi_r);
		ep->rks.expired++;
		rk_slot_remove(ep, sa, i, true);
		return;
	}
}

int
ike_rekey_tick(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk;
	uint64_t       now = time_mono_ns();

	if (sa->state != SA_ESTABLISHED || (rk = rk_get(ep, sa)) == NULL)
		return INT_MAX;
	if (rk->rekeyed) {
		if (now < rk->ike_hard)
			return rk_wait_ms(sa, now);
		log_info("replaced IKE SA never deleted by the peer: dropped");
		sa->state = SA_DEAD;
		return 0;
	}
	if (now >= rk->ike_hard) {
		log_warn("IKE SA hard lifetime reached: deleted");
		ep->rks.expired++;
		rk_delete_old_ike(ep, sa);
		return 0;
	}
	rk_expire(ep, sa, now);
	if (sa->xc.req_pending || sa->xc.parked || rk->wait_key ||
	    rk->out_kind != RK_NONE || rk_send_delete(ep, sa))
		return rk_wait_ms(sa, now);
	if (now >= rk->retry) {
		if (now >= rk->ike_soft)
			rk_start(ep, sa, RK_IKE, 0);
		else
			for (size_t i = 0; i < sa->nchild; i++)
				if (now >= rk->ch_soft[i]) {
					rk_start(ep, sa, RK_CHILD, i);
					break;
				}
	}
	return rk_wait_ms(sa, now);
}

/* ---- the data plane's limits ---- */

static size_t
rk_slot(const struct ike_sa *sa, const struct ike_child *ch)
{
	for (size_t i = 0; i < sa->nchild; i++)
		if (sa->child[i].spi_i == ch->spi_i &&
		    sa->child[i].spi_r == ch->spi_r)
			return i;
	return SIZE_MAX;
}

void
ike_rekey_child_soft(struct ike_sa *sa, const struct ike_child *ch)
{
	size_t i = rk_slot(sa, ch);

	if (sa->rk != NULL && i != SIZE_MAX)
		sa->rk->ch_soft[i] = 0;
}

void
ike_rekey_child_hard(struct ike_sa *sa, const struct ike_child *ch)
{
	size_t i = rk_slot(sa, ch);

	if (sa->rk != NULL && i != SIZE_MAX)
		sa->rk->ch_hard[i] = 0;
}

bool
ike_rekey_replaced(const struct ike_sa *sa)
{
	return sa->rk != NULL && sa->rk->rekeyed;
}

void
ike_rekey_log_children(const struct ike_sa *sa, const char *when)
{
	char   list[IKE_SA_CHILD_MAX * 18 + 1];
	size_t off = 0;

	list[0] = '\0';
	for (size_t i = 0; i < sa->nchild && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off,
		    " %08x/%08x", sa->child[i].spi_i, sa->child[i].spi_r);
	log_info("%s: %zu Child SA(s) in use:%s; %zu replaced not yet "
		 "deleted",
	    when, sa->nchild, list, sa->rk != NULL ? sa->rk->nold : 0);
}

void
ike_rekey_stats_log(const struct ike_ep *ep)
{
	const struct ike_rekey_stats *s = &ep->rks;

	log_info("rekey stats: child=%lu child_ours=%lu ike=%lu ike_ours=%lu "
		 "collisions=%lu redundant=%lu temp_fail=%lu qkd_keys=%lu "
		 "qkd_drawn=%lu expired=%lu",
	    s->child, s->child_ours, s->ike, s->ike_ours, s->collisions,
	    s->redundant, s->temp_fail, s->qkd_keys, s->qkd_drawn, s->expired);
}

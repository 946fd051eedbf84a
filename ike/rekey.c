/*
 * Rekeying (ike/rekey.h): the timers, the rekeys we start and their
 * responses, collisions, the Deletes we send. The state and keys are in
 * ike/rekey_sa.c, the peer's requests in ike/rekey_peer.c.
 */
#include <limits.h>
#include <signal.h>
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

static volatile sig_atomic_t rk_sigusr2; /* SIGUSR2s, counted */

static void
rk_on_usr2(int sig)
{
	(void)sig;
	rk_sigusr2++;
}

void
ike_rekey_signal_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rk_on_usr2; /* no SA_RESTART: poll() returns */
	sigaction(SIGUSR2, &sa, NULL);
}

unsigned long
ike_rekey_sig_gen(void)
{
	return (unsigned long)rk_sigusr2;
}

/* After a SIGUSR2: the IKE SA now, then its Child SAs (their soft
 * deadlines move with them to the new IKE SA). */
static void
rk_operator(struct ike_rk *rk, const struct ike_sa *sa)
{
	unsigned long g = ike_rekey_sig_gen();

	if (rk->sig_gen == g)
		return;
	rk->sig_gen = g;
	log_info("rekey now (SIGUSR2): the IKE SA and its %zu Child SA(s)",
	    sa->nchild);
	rk->ike_soft = rk->retry = 0;
	for (size_t i = 0; i < sa->nchild; i++)
		rk->ch_soft[i] = 0;
}

/*
 * The test hook: IKE_TEST_REKEY_HOLD=ROLE[:lose|:win] names the role that
 * holds; NULL when it is not ours, else what follows the role ("" or
 * ":lose" / ":win").
 */
static const char *
rk_test_hook(const struct ike_ep *ep)
{
	const char *h = getenv("IKE_TEST_REKEY_HOLD");
	const char *r = rk_is_ue(ep) ? "ue" : "n3iwf";
	size_t	    n = strlen(r);

	if (h == NULL || strncmp(h, r, n) != 0 || (h[n] != '\0' && h[n] != ':'))
		return NULL;
	return h + n;
}

static bool
rk_test_hold(const struct ike_ep *ep)
{
	return rk_test_hook(ep) != NULL;
}

void
rk_test_nonce(const struct ike_ep *ep, const struct ike_rk *rk, uint8_t *nonce,
    size_t len, bool request)
{
	const char *h = rk_test_hook(ep);

	if (h == NULL || strcmp(h, request ? ":lose" : ":win") != 0 ||
	    (!request && rk->out_kind == RK_NONE))
		return;
	memset(nonce, 0, len);
	log_info("rekey: test hook: our %s nonce is all zero (we %s)",
	    request ? "request's" : "answer's", h + 1);
}

static const char *
rk_what(const struct ike_sa *sa, enum rk_kind kind, size_t idx)
{
	return kind == RK_IKE ? "IKE SA" :
	    sa->child[idx].up ? "user-plane Child SA" :
				"signalling Child SA";
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
	log_info("rekey collision on the IKE SA: %s new IKE SA %016llx_i "
		 "%016llx_r is redundant, %016llx_i %016llx_r survives",
	    lose ? "our" : "the peer's",
	    rk_spi64(lose ? own->spi_i : rk->peer.spi_i),
	    rk_spi64(lose ? own->spi_r : rk->peer.spi_r),
	    rk_spi64(lose ? rk->peer.spi_i : own->spi_i),
	    rk_spi64(lose ? rk->peer.spi_r : own->spi_r));
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

/* ---- our rekeys ---- */

static int
rk_send_now(struct ike_ep *ep, struct ike_sa *sa, enum rk_kind kind, size_t idx)
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
	rk_test_nonce(ep, rk, x->ni, x->ni_len, true);
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
	    rk_add_tail(ep, &c, &p, x->ni, x->ni_len,
		kind == RK_CHILD ? &x->ch : NULL, true, rk->dh, rk->qk) == 0 &&
	    ike_ep_request(ep, sa, IKE_CREATE_CHILD_SA, c.first, &in) == 0;
	buf_free(&in);
	if (!ok)
		return -1;
	rk->out_kind = kind;
	log_debug("rekey of the %s started", rk_what(sa, kind, idx));
	return 0;
}

int
rk_send(struct ike_ep *ep, struct ike_sa *sa, enum rk_kind kind, size_t idx)
{
	struct ike_rk *rk = sa->rk;

	if (!rk_test_hold(ep))
		return rk_send_now(ep, sa, kind, idx);
	rk->held = kind;
	rk->held_idx = idx;
	rk->held_until = time_mono_ns() + RK_HOLD_NS;
	log_info("rekey of the %s held (test hook) for the peer's request",
	    rk_what(sa, kind, idx));
	return 0;
}

void
rk_release(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk = sa->rk;
	enum rk_kind   kind = rk->held;

	if (kind == RK_NONE || sa->xc.req_pending)
		return;
	rk->held = RK_NONE;
	log_info("rekey of the %s released (test hook)",
	    rk_what(sa, kind, rk->held_idx));
	if (rk_send_now(ep, sa, kind, rk->held_idx) == -1) {
		log_warn("rekey: cannot send the CREATE_CHILD_SA request");
		rk_out_clear(rk);
		rk_retry_later(ep, rk);
	}
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

/*
 * The responder's selectors against those we proposed (the rekeyed SA's):
 * within them (the same, or narrowed), they become the new SA's; else
 * refused (RFC 7296 2.8: the new SA carries the old one's selectors).
 */
static int
rk_child_ts(const struct ike_ep *ep, const struct ike_pld *pl,
    struct ike_child *ch)
{
	struct ike_ts_pld *mine = rk_is_ue(ep) ? &ch->ts_ue : &ch->ts_n3;
	struct ike_ts_pld *theirs = rk_is_ue(ep) ? &ch->ts_n3 : &ch->ts_ue;
	char		   a[IKE_TS_STRLEN], b[IKE_TS_STRLEN];

	/* Our request: TSi is our side. */
	if (ike_prop_ts_reply(pl, mine, theirs) == 0)
		return 0;
	log_warn("rekey of a Child SA: the peer answers selectors TSi %s, "
		 "TSr %s, not within the Child SA's: refused",
	    ike_prop_ts_str(&pl->tsi, a, sizeof(a)),
	    ike_prop_ts_str(&pl->tsr, b, sizeof(b)));
	return -1;
}

/*
 * A new Child SA we refuse after the peer made it (its inbound SPI in
 * spi): never installed here, deleted at the peer with an INFORMATIONAL
 * Delete of our inbound SPI of it (its keys were never derived).
 */
static void
rk_refuse_new(struct ike_ep *ep, struct ike_sa *sa, const uint8_t spi[4])
{
	struct ike_child ch = sa->rk->out.ch;

	memcpy(rk_is_ue(ep) ? &ch.spi_r : &ch.spi_i, spi, 4);
	ch.keys = NULL;
	rk_old_add(ep, sa, &ch, true);
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
	if (rk_child_ts(ep, pl, &x->ch) == -1) {
		rk_refuse_new(ep, sa, got.spi);
		goto done;
	}
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

/*
 * CHILD_SA_NOT_FOUND to our rekey (2.25.1: the peer deleted the SA, a
 * hard lifetime, while our request was on its way): ours goes too, out
 * of the data plane, without a Delete (the peer's came, or crossed).
 */
static void
rk_child_gone(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_rk *rk = sa->rk;
	size_t	       i = rk->out.idx;
	uint32_t       in;

	if (rk->have_peer || i >= sa->nchild ||
	    rk_spi_out(ep, &sa->child[i]) != rk_spi_out(ep, &rk->out.ch))
		return;
	log_info("Child SA %08x/%08x is gone at the peer: removed",
	    sa->child[i].spi_i, sa->child[i].spi_r);
	in = rk_spi_in(ep, &sa->child[i]);
	rk_slot_remove(ep, sa, i, false);
	(void)rk_old_drop(ep, sa, in, true);
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
	if (sa->xc.parked && rk->wait_key && rk->want == RK_NONE &&
	    rk->parked.len > 0) {
		/* The peer's request came first (2.8.1) and waits for its
		 * key: this response waits for it (ike_rekey_qkd_done). */
		buf_reset(&rk->resp);
		if (buf_add(&rk->resp, ep->pkt.data, ep->pkt.len) == 0) {
			log_debug("rekey: our response waits for the peer's "
				  "request");
			return true;
		}
	}
	if ((err = rk_error(&m->pld)) != 0) {
		log_info("rekey of the %s refused by the peer: %s",
		    rk->out_kind == RK_IKE ? "IKE SA" : "Child SA",
		    ike_notify_name(err));
		if (err == IKE_N_TEMPORARY_FAILURE)
			ep->rks.temp_fail++;
		if (err == IKE_N_CHILD_SA_NOT_FOUND && rk->out_kind == RK_CHILD)
			rk_child_gone(ep, sa);
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
	if (rk->held != RK_NONE)
		t[n++] = rk->held_until;
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
		rk_old_unplug(ep, sa, rk->nold - 1); /* no packet more */
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
		ike_rekey_log_children(sa, "IKE SA hard lifetime reached");
		ep->rks.expired++;
		ike_rekey_unplug(ep, sa); /* its Child SAs carry no more */
		rk_delete_old_ike(ep, sa);
		return 0;
	}
	rk_expire(ep, sa, now);
	rk_operator(rk, sa);
	if (rk->held != RK_NONE) {
		if (now >= rk->held_until)
			rk_release(ep, sa);
		return rk_wait_ms(sa, now);
	}
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
	log_info("%s: IKE SA %016llx_i %016llx_r, %zu Child SA(s) in use:%s; "
		 "%zu replaced not yet deleted",
	    when, rk_spi64(sa->spi_i), rk_spi64(sa->spi_r), sa->nchild, list,
	    sa->rk != NULL ? sa->rk->nold : 0);
}

void
ike_rekey_stats_log(const struct ike_ep *ep)
{
	const struct ike_rekey_stats *s = &ep->rks;

	log_info(
	    "rekey counters: child=%lu child_ours=%lu ike=%lu ike_ours=%lu "
	    "collisions=%lu redundant=%lu temp_fail=%lu qkd_keys=%lu "
	    "qkd_drawn=%lu expired=%lu",
	    s->child, s->child_ours, s->ike, s->ike_ours, s->collisions,
	    s->redundant, s->temp_fail, s->qkd_keys, s->qkd_drawn, s->expired);
}

/*
 * What the rekey files share: ike/rekey_sa.c (state, lifetimes, keys,
 * Child SA slots, new IKE SAs), ike/rekey.c (timers, our own rekeys and
 * their responses, collisions, Deletes we send) and ike/rekey_peer.c
 * (the peer's CREATE_CHILD_SA and INFORMATIONAL, the N3IWF's parked
 * request waiting for its QKD key). Not for other modules: ike/rekey.h.
 */
#ifndef IKE_REKEY_INT_H
#define IKE_REKEY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "ike/rekey.h"

#define RK_OLD_MAX 8 /* replaced / redundant Child SAs awaiting Delete */
#define RK_OLD_NS  (30ull * 1000000000u) /* ... at most this long */

enum rk_kind { RK_NONE = 0, RK_CHILD, RK_IKE, RK_DEL };

/* What one CREATE_CHILD_SA exchange made (ours, or the peer's). */
struct rk_new {
	enum rk_kind	 kind;
	size_t		 idx; /* RK_CHILD: the slot of the rekeyed SA */
	uint8_t		 ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
	size_t		 ni_len, nr_len; /* of that exchange */
	struct ike_child ch;		 /* RK_CHILD: the new Child SA */
	uint8_t		 spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN]; /* RK_IKE */
};

struct rk_old {
	struct ike_child ch;
	bool		 we_delete; /* else the peer does */
	bool		 sent;	    /* our Delete is out */
	bool		 gone;	    /* out of the data plane, keys wiped */
	uint64_t	 expire;    /* dropped silently after */
};

struct ike_rk {
	uint64_t ike_soft, ike_hard; /* deadlines, ns (monotonic) */
	uint64_t ch_soft[IKE_SA_CHILD_MAX], ch_hard[IKE_SA_CHILD_MAX];
	uint64_t retry;	  /* no rekey of ours before (TEMPORARY_FAILURE) */
	bool	 rekeyed; /* this IKE SA was replaced: wait for its Delete */

	/* our outstanding exchange */
	enum rk_kind	     out_kind;
	struct rk_new	     out;
	struct ike_dh	    *dh;
	struct ike_qkd_keys *qk; /* its fresh QKD key (N3IWF: drawn first) */
	uint32_t	     del_spi; /* RK_DEL: our inbound SPI deleted */

	/* N3IWF, qkd: a key is being drawn for our rekey (want) or for
	 * the peer's request parked in `parked` (want RK_NONE) */
	bool		     wait_key;
	enum rk_kind	     want;
	size_t		     want_idx;
	struct buf	     parked;
	struct ike_qkd_keys *pqk; /* the key of the peer's request */

	/* the peer's exchange that collided with ours (2.8.1) */
	bool	      have_peer;
	struct rk_new peer;

	struct rk_old *old; /* RK_OLD_MAX, allocated while nold > 0 */
	size_t	       nold;

	unsigned long sig_gen; /* the operator's SIGUSR2 rekeys seen */
	/* N3IWF: the response to our rekey that came while the peer's
	 * colliding request (parked) waited for its key: handled after */
	struct buf    resp;
	/* test hook (environment IKE_TEST_REKEY_HOLD=ue|n3iwf): our
	 * request waits for the peer's, then goes out just before it is
	 * answered (a collision made on purpose), or after RK_HOLD_NS */
	enum rk_kind  held;
	size_t	      held_idx;
	uint64_t      held_until;
};

#define RK_HOLD_NS (5ull * 1000000000u)

/* ike/rekey_sa.c */
struct ike_rk *rk_get(struct ike_ep *ep, struct ike_sa *sa);
bool	       rk_is_ue(const struct ike_ep *ep);
bool	       rk_qkd(const struct ike_ep *ep);
uint32_t       rk_spi_in(const struct ike_ep *ep, const struct ike_child *ch);
uint32_t       rk_spi_out(const struct ike_ep *ep, const struct ike_child *ch);
void	       rk_reset_child(struct ike_ep *ep, struct ike_rk *rk, size_t i);
void	       rk_drop_key(struct ike_qkd_keys **k);
void	       rk_policy_esp(const struct ikecfg *c, struct ike_prop_desc *d);
uint16_t       rk_policy_ke(const struct ikecfg *c, enum rk_kind kind);
/* g^ir: the fresh QKD key (*qk; the UE fetches it first), DH, or none. */
int rk_gir(struct ike_ep *ep, struct ike_dh *dh, struct ike_qkd_keys **qk,
    uint16_t ke, const struct ike_pld *pl, struct buf *gir);
/* ch: a Child SA rekey (its selectors as TSi, TSr), NULL for the IKE SA;
 * request: we start the exchange (else we answer). */
int rk_add_tail(struct ike_ep *ep, struct ike_chain *c,
    const struct ike_prop_desc *p, const uint8_t *nonce, size_t nlen,
    const struct ike_child *ch, bool request, const struct ike_dh *dh,
    const struct ike_qkd_keys *qk);
/* pl's TSi and TSr as the UE's and the N3IWF's side; peer_request: pl is
 * the peer's request (else the response to ours). */
void
rk_ts_of(const struct ike_ep *ep, const struct ike_pld *pl, bool peer_request,
    const struct ike_ts_pld **ue, const struct ike_ts_pld **n3);
void
rk_made(struct ike_ep *ep, const struct ike_sa *sa, const struct ike_child *ch);
void rk_old_add(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_child *ch, bool we_delete);
bool rk_old_drop(struct ike_ep *ep, struct ike_sa *sa, uint32_t spi, bool ours);
void rk_replace(struct ike_ep *ep, struct ike_sa *sa, size_t idx,
    const struct ike_child *nc, bool we_delete_old);
void rk_slot_remove(struct ike_ep *ep, struct ike_sa *sa, size_t idx,
    bool we_delete);
void rk_log_child(struct ike_ep *ep, const struct ike_sa *sa,
    const struct ike_child *old, const struct ike_child *ch, bool ours);
struct ike_sa	   *
rk_new_sa(struct ike_ep *ep, struct ike_sa *old, const struct rk_new *x,
	 bool initiator, const struct ike_prop_desc *p, const struct buf *gir);
void rk_move(struct ike_ep *ep, struct ike_sa *from, struct ike_sa *to);
void rk_log_ike(struct ike_ep *ep, const struct ike_sa *old,
    const struct ike_sa *n, bool ours);
void rk_new_clear(struct rk_new *x);
void rk_out_clear(struct ike_rk *rk);
void rk_old_remove(struct ike_ep *ep, struct ike_sa *sa, size_t i);
/* Replaced SA i leaves the data plane now (its Delete may follow). */
void rk_old_unplug(struct ike_ep *ep, struct ike_sa *sa, size_t i);

unsigned long long rk_spi64(const uint8_t s[static IKE_SPI_LEN]);

/* ike/rekey.c */
int
rk_send(struct ike_ep *ep, struct ike_sa *sa, enum rk_kind kind, size_t idx);
/* The test hook's held request goes out now (before the peer's request is
 * answered, or at its deadline). */
void rk_release(struct ike_ep *ep, struct ike_sa *sa);
/*
 * The test hook's choice of the collision's loser (2.8.1: the lowest of
 * the four nonces): IKE_TEST_REKEY_HOLD=ROLE:lose zeroes the nonce of our
 * request (request), ROLE:win that of our answer to the peer's request
 * crossing one of ours. Else nothing.
 */
void rk_test_nonce(const struct ike_ep *ep, const struct ike_rk *rk,
    uint8_t *nonce, size_t len, bool request);
void rk_retry_later(struct ike_ep *ep, struct ike_rk *rk);

#endif

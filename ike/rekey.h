/*
 * Rekeying, shared by both roles (RFC 7296 1.3.2, 1.3.3, 2.8, 2.25):
 * lifetimes of the IKE SA and its Child SAs (soft: rekey, with jitter;
 * hard: delete; cfg *_soft_s, *_hard_s, child byte/packet limits),
 * CREATE_CHILD_SA rekeys started by either side, make-before-break (the
 * new SA is up before the old one is deleted, by the initiator of the
 * rekey, with INFORMATIONAL Delete), collisions (2.8.1: the exchange
 * holding the lowest of the four nonces made the redundant SA, which its
 * initiator deletes), TEMPORARY_FAILURE and CHILD_SA_NOT_FOUND (2.25).
 *
 * Keys: Child SA KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr); IKE SA
 * SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), then SK_* with the
 * new SPIs. g^ir is a fresh DH (KE payloads; always for the IKE SA in
 * psk/cert/qkd+dh, for Child SAs with cfg child_pfs or in qkd+dh) or, in
 * qkd mode, ONE fresh 256-bit QKD key per rekey: the N3IWF draws it
 * (ike_ep.rk_ops.draw, asynchronous) and sends its ID in QKD_KEY_IDS in
 * its request or in its response to the UE's; the UE fetches it
 * (rk_ops.fetch). The proposals carry KE = QKD_ETSI014 (1025) then.
 *
 * The roles call: ike_rekey_tick() for each SA in their timer pass,
 * ike_rekey_request() for the peer's CREATE_CHILD_SA,
 * ike_rekey_informational() for its INFORMATIONAL, ike_rekey_response()
 * for responses, ike_rekey_qkd_done() when a drawn key comes back.
 */
#ifndef IKE_REKEY_H
#define IKE_REKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike/crypto.h"
#include "ike/endpoint.h"
#include "ike/msg.h"
#include "ike/pld.h"
#include "ike/sa.h"

struct ike_qkd_keys;

/* The rekey state of one IKE SA (sa->rk); NULL ok. Wipes what it holds. */
void ike_rekey_free(struct ike_rk *rk);

/*
 * Timers of an established sa: starts a rekey at a soft lifetime (when
 * no request of ours is outstanding), deletes at a hard one, sends the
 * Delete of SAs a rekey replaced. Returns the ms until it wants to run
 * again (INT_MAX: nothing to do).
 */
int ike_rekey_tick(struct ike_ep *ep, struct ike_sa *sa);

/* The peer's CREATE_CHILD_SA request m on sa: answered here. */
void ike_rekey_request(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m);
/*
 * The peer's INFORMATIONAL request m: answered (Delete of Child SAs with
 * ours). true when it deletes the IKE SA (the caller marks it dead).
 */
bool ike_rekey_informational(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m);
/* A response on sa: true when it answered one of our rekey requests. */
bool ike_rekey_response(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m);
/*
 * N3IWF: the key drawn for the SA named by the SPIs came back (*keys
 * NULL: kmsd failed). true when a rekey took it (*keys is then NULL);
 * false: no rekey wants it (the caller wipes it).
 */
bool
ike_rekey_qkd_done(struct ike_ep *ep, const uint8_t spi_i[static IKE_SPI_LEN],
    const uint8_t spi_r[static IKE_SPI_LEN], struct ike_qkd_keys **keys);

/*
 * The data plane: ch (a Child SA of sa) reached its soft byte/packet
 * limit (rekey it now) or its hard one (delete it).
 */
void ike_rekey_child_soft(struct ike_sa *sa, const struct ike_child *ch);
void ike_rekey_child_hard(struct ike_sa *sa, const struct ike_child *ch);

/*
 * The operator's "rekey now" (as strongSwan's swanctl --rekey): after
 * ike_rekey_signal_setup(), each SIGUSR2 makes ike_rekey_tick() rekey
 * every established IKE SA at once, then its Child SAs (fresh QKD keys
 * in qkd mode). ike_rekey_sig_gen(): the SIGUSR2s so far.
 */
void	      ike_rekey_signal_setup(void);
unsigned long ike_rekey_sig_gen(void);

/*
 * Every Child SA of sa leaves the data plane (ep->hooks.removed): those
 * in use, the replaced ones still waiting for their Delete, a colliding
 * peer's new one. When the IKE SA ends (ike_ep_sweep) or reaches its
 * hard lifetime; a Child SA may so be removed twice (the hook's second
 * call does nothing).
 */
void ike_rekey_unplug(struct ike_ep *ep, struct ike_sa *sa);

/* true when a rekey replaced sa (it waits for its Delete). */
bool ike_rekey_replaced(const struct ike_sa *sa);

/* One log line: the Child SAs of sa in use, and the replaced ones left. */
void ike_rekey_log_children(const struct ike_sa *sa, const char *when);

/* One log line of ep->rks. */
void ike_rekey_stats_log(const struct ike_ep *ep);

/* ---- exposed for the unit tests ---- */

/*
 * RFC 7296 2.8.1: true when the lowest of the four nonces is in our
 * exchange (ni, nr), i.e. the SA our exchange made is the redundant one.
 */
bool ike_rekey_we_lose(const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, const uint8_t *pni, size_t pni_len, const uint8_t *pnr,
    size_t pnr_len);
/*
 * A rekeyed Child SA's keys: prf+(SK_d, gir | Ni | Nr) (gir may be
 * empty), oriented so that "i" is the UE -> N3IWF direction whoever
 * started the exchange (ue_started: the UE sent the request).
 */
int  ike_rekey_child_keymat(const struct ike_key *sk_d, const uint8_t *gir,
     size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
     size_t nr_len, const struct ike_prop_desc *p, bool ue_started,
     struct ike_child_keys *k);

#endif

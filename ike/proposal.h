/*
 * SA proposals for every mode, both sides. What we offer: the IKE SA
 * (AES-CBC-256 + HMAC-SHA2-256-128 or AES-GCM-16-256, PRF HMAC-SHA2-256,
 * KE = the DH group, or QKD_ETSI014 (1025) in qkd mode) and ESP; the
 * traffic selectors; the notifies a mode adds to IKE_SA_INIT (USE_PPK,
 * SIGNATURE_HASH_ALGORITHMS). What we choose: the responder picks from
 * the peer's proposals (ike_sa_choose in ike/pld.c does the matching),
 * the initiator checks the reply against its offer, and each side knows
 * which AUTH method the other must use in this mode and profile.
 */
#ifndef IKE_PROPOSAL_H
#define IKE_PROPOSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike/ikecfg.h"
#include "ike/pld.h"

/* Our proposals: IKE SA (KE = group or QKD) and ESP (SPI left zero). */
size_t ike_prop_ike(const struct ikecfg *c, struct ike_prop_desc *d);
size_t ike_prop_esp(const struct ikecfg *c, struct ike_prop_desc *d);

/*
 * Responder, IKE_SA_INIT: the first of the peer's proposals our policy
 * accepts, in *chosen; IKE_N_NO_PROPOSAL_CHOSEN when none (the chooser
 * logs the peer's first proposal). Then the KE payload: in the DH modes
 * it must be of the chosen group, else IKE_N_INVALID_KE_PAYLOAD with the
 * group we want in grp[2] (the notify data). 0: acceptable.
 */
uint16_t ike_prop_choose_ike(const struct ikecfg *c, const struct ike_pld *pl,
    struct ike_prop_desc *chosen);
uint16_t
ike_prop_check_ke(const struct ikecfg *c, const struct ike_prop_desc *chosen,
    const struct ike_pld *pl, uint8_t grp[static 2]);
/*
 * Initiator: words to append to the error a refused IKE_SA_INIT gives
 * (qkd mode, NO_PROPOSAL_CHOSEN: the QKD key schedule we run); "" else.
 */
const char *ike_prop_refusal_hint(const struct ikecfg *c, uint16_t notify);
/* Initiator: the IKE_SA_INIT reply is one of our proposals. 0 or -1. */
int ike_prop_reply_ike(const struct ikecfg *c, const struct ike_sa_pld *reply,
    struct ike_prop_desc *chosen);

/*
 * Child SAs. Choosing (IKE_AUTH SAi2, CREATE_CHILD_SA): SA, TSi and TSr
 * present, a proposal of our ESP policy with a 4-byte SPI; 0 or -1
 * (answer NO_PROPOSAL_CHOSEN). The reply to our offer: the same checks
 * against what we offered.
 */
int ike_prop_choose_esp(const struct ikecfg *c, const struct ike_pld *pl,
    struct ike_prop_desc *chosen);
int ike_prop_reply_esp(const struct ike_prop_desc *offer,
    const struct ike_pld *pl, struct ike_prop_desc *chosen);

/* Traffic selectors: all of IPv4, or one host (0 or -1). */
int  ike_prop_add_ts_any(struct ike_chain *c, uint8_t pltype);
int  ike_prop_add_ts_host(struct ike_chain *c, uint8_t pltype, const char *ip);
void ike_prop_ts_any(struct ike_ts_pld *ts);
int  ike_prop_ts_host(struct ike_ts_pld *ts, const char *ip);
/*
 * Every selector of a lies inside one selector of b (type, protocol,
 * ports, address range): a is b narrowed, or b itself. false for an
 * empty a.
 */
bool ike_prop_ts_within(const struct ike_ts_pld *a, const struct ike_ts_pld *b);
/*
 * The responder's TSi and TSr in pl against what we proposed (*tsi,
 * *tsr): both present and each within ours (narrowed or the same); then
 * they replace ours. 0, or -1 (refuse the Child SA).
 */
int  ike_prop_ts_reply(const struct ike_pld *pl, struct ike_ts_pld *tsi,
     struct ike_ts_pld *tsr);
/* "START-END/PROTO/SPORT-EPORT[,...]" for the logs; returns out. */
#define IKE_TS_STRLEN 256
const char *ike_prop_ts_str(const struct ike_ts_pld *ts, char *out, size_t len);

/*
 * The mode's notifies in IKE_SA_INIT: USE_PPK (qkd+dh) and
 * SIGNATURE_HASH_ALGORITHMS (when the N3IWF signs). rq NULL: our
 * request; else our response to rq (only what rq asked for).
 */
int ike_prop_add_init_notifies(const struct ikecfg *c, struct ike_chain *ch,
    const struct ike_pld *rq);

/* AUTH: the N3IWF signs (cert mode, and always in nwu). */
bool	ike_prop_n3iwf_signs(const struct ikecfg *c);
/* The AUTH method of the N3IWF's (n3iwf = 1) or the UE's first AUTH. */
uint8_t ike_prop_auth_method(const struct ikecfg *c, int n3iwf);

#endif

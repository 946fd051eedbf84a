/*
 * UE side of 5G-AKA and NAS registration (USIM + 5GMM), the peer of the
 * AMF emulator in ike/amf.h (see there for the message flow and how it
 * maps onto IKE_AUTH / EAP-5G).
 */
#ifndef IKE_USIM_H
#define IKE_USIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "ike/amf.h"
#include "ike/nas_5gsm.h"

struct usim;

struct usim *usim_new(const struct amf_sub *sub); /* NULL on error */
void	     usim_free(struct usim *u);		  /* wipes; NULL ok */

/* AN-parameters for the first EAP-Response/5G-NAS (selected PLMN from the
 * SUPI, establishment cause mo-Signalling). Appends to out. 0 or -1. */
int usim_an_params(const struct usim *u, struct buf *out);

/* The Registration Request (initial registration, SUCI with the null
 * scheme, UE security capabilities). Appends to nas_out. 0 or -1. */
int usim_start(struct usim *u, struct buf *nas_out);

/*
 * Handles one downlink NAS PDU; the answer (if any) is appended to nas_out.
 * 0, or -1 (logged, nothing to send) for a malformed or unexpected
 * message. Where the UE stands after a 0:
 *   usim_auth_done()  NAS security is up and KN3IWF ready (after the
 *                     Security Mode Command: nas_out holds Security Mode
 *                     Complete); still so after the Registration Accept
 *                     (nas_out holds Registration Complete);
 *   usim_failed()     the UE refuses the network: AUTN MAC wrong (nas_out
 *                     holds Authentication Failure #20), or Authentication
 *                     Reject received;
 *   neither           send nas_out (EAP-Response/5G-NAS) and wait. An SQN
 *                     out of range is not final: nas_out holds
 *                     Authentication Failure #21 with AUTS.
 * Once registered, a DL NAS TRANSPORT answers usim_pdu_request().
 */
int usim_handle(struct usim *u, const uint8_t *nas_in, size_t n,
    struct buf *nas_out);

bool usim_auth_done(const struct usim *u);
bool usim_failed(const struct usim *u);

/* 0 and KN3IWF once usim_auth_done(); -1 before. */
int usim_kn3iwf(const struct usim *u, uint8_t out[static 32]);

/* Once registered: the PDU Session Establishment Request for session psi
 * (IPv4, SSC mode 1, S-NSSAI SST 1, DNN if not NULL) in a protected UL NAS
 * TRANSPORT, appended to nas_out. 0 or -1 (not registered, one pending). */
int usim_pdu_request(struct usim *u, uint8_t psi, const char *dnn,
    struct buf *nas_out);

/* Whether the Accept came: then *out holds it (QFI, address, AMBR). */
bool usim_pdu_session(const struct usim *u, struct nas_sm *out);
/* Whether the network rejected the session (or accepted without IPv4). */
bool usim_pdu_rejected(const struct usim *u);

/* Whether the Registration Accept was handled. */
bool usim_registered(const struct usim *u);

/* Highest SQN accepted (store it to continue across runs). */
uint64_t usim_sqn(const struct usim *u);

#endif

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
 * *done:
 *    0  send nas_out (EAP-Response/5G-NAS) and wait;
 *    1  NAS security is up and KN3IWF ready (after the Security Mode
 *       Command: nas_out holds Security Mode Complete); also after the
 *       Registration Accept (nas_out holds Registration Complete);
 *   -1  the UE refuses the network: AUTN MAC wrong (nas_out holds
 *       Authentication Failure #20), or Authentication Reject received.
 * An SQN out of range is not final: nas_out holds Authentication Failure
 * #21 with AUTS and *done is 0.
 * Returns -1 for a malformed or unexpected message (nothing to send).
 */
int usim_handle(struct usim *u, const uint8_t *nas_in, size_t n,
    struct buf *nas_out, int *done);

/* 0 and KN3IWF once the Security Mode Command was accepted; -1 before. */
int usim_kn3iwf(const struct usim *u, uint8_t out[static 32]);

/* Whether the Registration Accept was handled. */
bool usim_registered(const struct usim *u);

/* Highest SQN accepted (store it to continue across runs). */
uint64_t usim_sqn(const struct usim *u);

#endif

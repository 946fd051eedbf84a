/*
 * EAP-5G (3GPP TS 24.502 9.3.2): expanded EAP (RFC 3748 5.7) with
 * Vendor-Id 10415 (3GPP) and Vendor-Type 3, carried in IKE_AUTH EAP
 * payloads between UE and N3IWF.
 *
 *  Code(1) Identifier(1) Length(2) | Type=254(1) Vendor-Id(3) Vendor-Type(4)
 *  | Message-Id(1) Spare(1) | body
 *
 * body by message:
 *   5G-Start        (N3IWF->UE Request):  Extensions (opaque, usually none)
 *   5G-NAS Request  (N3IWF->UE):          NAS-PDU length(2) NAS-PDU
 *   5G-NAS Response (UE->N3IWF):          AN-parameters length(2)
 *                                         AN-parameters NAS-PDU length(2) NAS-PDU
 *                                         (AN-parameters length 0 after the first)
 *   5G-Notification, 5G-Stop:             Extensions (opaque)
 *   EAP-Success / EAP-Failure:            Code Identifier Length=4 only
 *
 * AN-parameters (24.502 9.3.2.2.2.3): Type(1) Length(1) Value, types
 * GUAMI 1, selected PLMN ID 2, requested NSSAI 3, establishment cause 4.
 *
 * Decoding borrows pointers into the input (no copies); every length is
 * checked against what is there and any truncation or trailing garbage
 * is rejected with -1.
 */
#ifndef IKE_EAP5G_H
#define IKE_EAP5G_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define EAP_CODE_REQUEST  1
#define EAP_CODE_RESPONSE 2
#define EAP_CODE_SUCCESS  3
#define EAP_CODE_FAILURE  4
#define EAP_TYPE_EXPANDED 254
#define EAP5G_VENDOR_3GPP 10415
#define EAP5G_VENDOR_TYPE 3
#define EAP5G_HDR_LEN	  14 /* up to and including Spare */

#define EAP5G_START	   1
#define EAP5G_NAS	   2
#define EAP5G_NOTIFICATION 3
#define EAP5G_STOP	   4

#define EAP5G_AN_GUAMI		  1
#define EAP5G_AN_PLMN_ID	  2
#define EAP5G_AN_NSSAI		  3
#define EAP5G_AN_EST_CAUSE	  4
#define EAP5G_CAUSE_MO_SIGNALLING 3

struct eap5g_msg {
	uint8_t	       code;   /* EAP_CODE_* */
	uint8_t	       id;     /* EAP Identifier */
	uint8_t	       msg_id; /* EAP5G_*; Request/Response only */
	const uint8_t *an;     /* 5G-NAS Response: AN-parameters */
	size_t	       an_len;
	const uint8_t *nas; /* 5G-NAS: NAS PDU (1..65535 bytes) */
	size_t	       nas_len;
	const uint8_t *ext; /* Start/Notification/Stop: extensions */
	size_t	       ext_len;
};

/* Appends one whole EAP packet to out. 0 or -1. */
int eap5g_encode(const struct eap5g_msg *m, struct buf *out);

/* Parses one whole EAP packet (the EAP payload body); m's pointers borrow
 * p. -1 on anything but a well-formed EAP-5G packet or Success/Failure. */
int eap5g_decode(const uint8_t *p, size_t n, struct eap5g_msg *m);

/* Builds AN-parameters: selected PLMN ID (mcc 3 digits, mnc 2 or 3) and
 * establishment cause mo-Signalling. Appends to out. 0 or -1. */
int eap5g_an_build(struct buf *out, const char *mcc, const char *mnc);

/* Finds the first AN-parameter `type` in an AN-parameters field: 0 with
 * *val and *vlen set (*val NULL when absent), or -1 if the field is
 * malformed (*val NULL). */
int eap5g_an_find(const uint8_t *an, size_t an_len, uint8_t type,
    const uint8_t **val, size_t *vlen);

const char *eap5g_msg_name(uint8_t msg_id);

#endif

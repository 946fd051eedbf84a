/*
 * 5GSM (TS 24.501 8.3, 9.11.4) for one PDU session over NWu: PDU SESSION
 * ESTABLISHMENT REQUEST / ACCEPT / REJECT, carried in the payload
 * container (type N1 SM information) of the 5GMM UL / DL NAS TRANSPORT
 * (nas.h), which carries the PDU session ID, request type, S-NSSAI and
 * DNN for the AMF.
 *
 * 5GSM header: EPD 0x2e | PDU session ID | PTI | message type | IEs.
 * Request: integrity protection maximum data rate (V 2, "full rate"),
 *   PDU session type (TV 1, IEI 0x9-), SSC mode (TV 1, IEI 0xA-).
 * Accept: selected SSC mode << 4 | selected PDU session type (V 1),
 *   authorized QoS rules (LV-E: one "create new QoS rule", match-all
 *   packet filter, with the QFI), session AMBR (LV 6), PDU address
 *   (TLV 0x29, IPv4).
 * Reject: 5GSM cause (V 1).
 */
#ifndef IKE_NAS_5GSM_H
#define IKE_NAS_5GSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define NAS_EPD_5GSM	   0x2e
#define NAS_SM_EST_REQUEST 0xc1
#define NAS_SM_EST_ACCEPT  0xc2
#define NAS_SM_EST_REJECT  0xc3

#define NAS_PDU_IPV4	     1 /* PDU session type (9.11.4.11) */
#define NAS_SSC_MODE1	     1
#define NAS_AMBR_UNIT_1MBPS  6 /* session AMBR unit (9.11.4.14) */
#define NAS_QFI_MAX	     63
#define NAS_SM_CAUSE_UNKNOWN 27 /* #27 missing or unknown DNN */
#define NAS_SM_CAUSE_REFUSED 26 /* #26 insufficient resources */

#define NAS_DNN_MAX 63 /* DNN characters we keep */

struct nas_sm {
	uint8_t	 type;		   /* NAS_SM_EST_* */
	uint8_t	 psi;		   /* PDU session identity 1..15 */
	uint8_t	 pti;		   /* procedure transaction identity 1..254 */
	uint8_t	 pdu_type;	   /* Req: requested (0: none); Acc: selected */
	uint8_t	 ssc_mode;	   /* Req: requested (0: none); Acc: selected */
	uint8_t	 qfi;		   /* Acc: QFI of the default QoS rule, 1..63 */
	uint8_t	 qos_rule;	   /* Acc: its QoS rule identifier, 1..255 */
	uint8_t	 ambr_unit;	   /* Acc: NAS_AMBR_UNIT_* */
	uint16_t ambr_dl, ambr_ul; /* Acc: session AMBR in ambr_unit */
	bool	 has_addr;	   /* Acc: PDU address present */
	uint8_t	 addr[4];	   /* Acc: the UE's IPv4 address */
	uint8_t	 cause;		   /* Rej: 5GSM cause */
};

/* Appends the 5GSM message. 0 or -1 (a field out of range). */
int nas_sm_encode(const struct nas_sm *m, struct buf *out);

/* Parses a 5GSM message; -1 on truncation, another EPD, an unknown type,
 * a malformed or missing mandatory IE, or a QoS rule we cannot read. */
int nas_sm_decode(const uint8_t *p, size_t n, struct nas_sm *m);

/* DNN <-> its wire form (TS 23.003 9.1: length-prefixed labels).
 * nas_dnn_encode: out holds NAS_DNN_MAX + 1 bytes; 0 or -1.
 * nas_dnn_decode: out holds NAS_DNN_MAX + 1 chars; 0 or -1. */
int nas_dnn_encode(const char *dnn, uint8_t *out, size_t *len);
int nas_dnn_decode(const uint8_t *p, size_t n, char *out);

#endif

/*
 * Minimal 5GMM NAS codec (3GPP TS 24.501) for registration over non-3GPP
 * access with 5G-AKA: the real message types and IE layouts, only the IEs
 * our AMF emulator and UE use (unknown optional IEs are skipped when their
 * format is known from the IEI range, see nas.c).
 *
 * Plain 5GMM message:   EPD 0x7e | spare(4) SHT(4) = 0 | type | IEs
 * Protected message:    EPD 0x7e | SHT 1..4 | MAC(4) | SQN(1) | plain msg
 *
 * Security (nas_sec.c): 5G-IA2 (128-NIA2, AES-CMAC) or 5G-IA0, and
 * 5G-EA2 (128-NEA2, AES-128-CTR) or 5G-EA0 for the SHT 2/4 messages
 * (EA0: in clear, as TS 33.501 allows, for tshark to decode).
 */
#ifndef IKE_NAS_H
#define IKE_NAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define NAS_EPD_5GMM 0x7e

/* Security header types (9.3.1). */
#define NAS_SHT_PLAIN	    0
#define NAS_SHT_INT	    1 /* integrity protected */
#define NAS_SHT_INT_ENC	    2 /* integrity protected and ciphered */
#define NAS_SHT_INT_NEW	    3 /* ... with new 5G NAS security context */
#define NAS_SHT_INT_ENC_NEW 4

/* 5GMM message types (9.7). */
#define NAS_REG_REQUEST	  0x41
#define NAS_REG_ACCEPT	  0x42
#define NAS_REG_COMPLETE  0x43
#define NAS_REG_REJECT	  0x44
#define NAS_AUTH_REQUEST  0x56
#define NAS_AUTH_RESPONSE 0x57
#define NAS_AUTH_REJECT	  0x58
#define NAS_AUTH_FAILURE  0x59
#define NAS_SMC		  0x5d
#define NAS_SMC_COMPLETE  0x5e
#define NAS_SMC_REJECT	  0x5f
#define NAS_UL_TRANSPORT  0x67 /* UL NAS TRANSPORT (8.2.10) */
#define NAS_DL_TRANSPORT  0x68 /* DL NAS TRANSPORT (8.2.11) */

/* UL/DL NAS TRANSPORT: payload container type (9.11.3.40), request type
 * (9.11.3.47). */
#define NAS_PAYLOAD_N1_SM   1
#define NAS_REQTYPE_INITIAL 1

/* 5GMM causes (9.11.3.2) we use. */
#define NAS_CAUSE_ILLEGAL_UE	    3
#define NAS_CAUSE_MAC_FAILURE	    20
#define NAS_CAUSE_SYNCH_FAILURE	    21
#define NAS_CAUSE_SEC_MODE_REJECTED 24
#define NAS_CAUSE_PROTOCOL_ERROR    111

/* Identity types of 5GS mobile identity (9.11.3.4). */
#define NAS_ID_SUCI 1
#define NAS_ID_GUTI 2

#define NAS_NGKSI_NONE	      7 /* "no key is available" */
#define NAS_REGTYPE_INITIAL   1
#define NAS_REGRESULT_NON3GPP 2
#define NAS_ALG_EA0	      0
#define NAS_ALG_EA2	      2
#define NAS_ALG_IA0	      0
#define NAS_ALG_IA2	      2
#define NAS_CONN_NON3GPP      1 /* NAS connection identifier (BEARER) */

#define NAS_MAX_ID   32 /* mobile identity value bytes we keep */
#define NAS_MAX_ABBA 16
#define NAS_MSG_MAX  1024 /* largest NAS PDU we build */

/* One decoded plain 5GMM message; which fields mean something depends on
 * type (commented per field). */
struct nas_msg {
	uint8_t type;
	uint8_t ngksi;	  /* RegReq, AuthReq, SMC: TSC<<3 | KSI */
	uint8_t reg_type; /* RegReq: 5GS registration type */
	uint8_t id_type;  /* RegReq: NAS_ID_*; RegAccept: GUTI if id_len */
	uint8_t id[NAS_MAX_ID]; /* RegReq/RegAccept: 5GS mobile identity */
	size_t	id_len;
	bool	has_cap; /* RegReq, SMC (replayed): UE security capability */
	uint8_t cap_ea, cap_ia;	    /* 0x80 = EA0/IA0, 0x40 = 1, 0x20 = 2 */
	uint8_t abba[NAS_MAX_ABBA]; /* AuthReq */
	size_t	abba_len;
	uint8_t rand[16]; /* AuthReq */
	uint8_t autn[16]; /* AuthReq */
	bool	has_res_star;
	uint8_t res_star[16]; /* AuthResp (required by nas_decode) */
	uint8_t cause;	      /* AuthFailure, RegReject, SMC Reject */
	bool	has_auts;
	uint8_t auts[14];   /* AuthFailure #21 */
	uint8_t alg;	    /* SMC: EA << 4 | IA */
	uint8_t reg_result; /* RegAccept: 5GS registration result */
	/* UL/DL NAS TRANSPORT: the payload borrows the decoded bytes */
	uint8_t payload_type; /* NAS_PAYLOAD_* */
	const uint8_t *payload;
	size_t	       payload_len;
	uint8_t	       psi;	   /* PDU session ID IE, 0 = absent */
	uint8_t	       req_type;   /* UL: request type IE, 0 = absent */
	bool	       has_snssai; /* UL: S-NSSAI (SST, SD if has_sd) */
	bool	       has_sd;
	uint8_t	       sst, sd[3];
	char	       dnn[64]; /* UL: DNN ("" = absent), NAS_DNN_MAX chars */
};

/* Builds a plain message (SHT 0). Appends to out. 0 or -1. */
int nas_encode(const struct nas_msg *m, struct buf *out);
/* LV-E (24.007 11.2.1.1): 2-byte length, then the value; also the
 * length-prefixed fields of EAP-5G. 0 or -1 (too long / truncated). */
int nas_put_lve(struct buf *b, const uint8_t *p, size_t n);
int nas_get_lve(struct rd *r, const uint8_t **p, size_t *n);
/* Parses a plain message; -1 on truncation, bad EPD/SHT, unknown type,
 * malformed or missing mandatory IE, or trailing bytes. */
int nas_decode(const uint8_t *p, size_t n, struct nas_msg *m);

/* Whether s is min..max decimal digits (IMSI, SUPI, MCC, MNC). */
bool nas_digits(const char *s, size_t min, size_t max);

/* SUCI, null protection scheme (9.11.3.4): IMSI digits with MNC length. */
int
nas_suci_build(const char *imsi, unsigned mnc_len, uint8_t *id, size_t *id_len);
/* Back to IMSI digits (out >= 16 bytes); 0, or -1 if not a null-scheme
 * IMSI SUCI. */
int nas_suci_imsi(const uint8_t *id, size_t id_len, char *out, size_t outlen);
/* PLMN (MCC/MNC) into the 3-byte BCD form of 9.11.3.4 / NGAP. */
int nas_plmn_encode(const char *mcc, const char *mnc, uint8_t out[static 3]);

/* 5G NAS security context for one NAS connection. */
struct nas_sec {
	bool	 active;
	uint8_t	 ia, ea;   /* NAS_ALG_IA0/IA2, NAS_ALG_EA0/EA2 */
	uint8_t	 kint[16]; /* KNASint */
	uint8_t	 kenc[16]; /* KNASenc (EA2) */
	uint32_t ul_count; /* next uplink NAS COUNT */
	uint32_t dl_count; /* next downlink NAS COUNT */
	uint8_t	 bearer;   /* NAS_CONN_NON3GPP */
};

/* Splits a 5GMM PDU: *sht and the plain message inside (or the whole PDU
 * if SHT 0). No MAC check. 0 or -1 (truncated / not 5GMM). */
int nas_split(const uint8_t *p, size_t n, uint8_t *sht, const uint8_t **plain,
    size_t *plain_len);

/*
 * The plain message of PDU p into out (*outlen bytes): SHT 2 and 4 are
 * deciphered with s (if active) and the receiver's expected COUNT of that
 * direction; the rest is copied. No MAC check: nas_verify(p) does it, over
 * the ciphertext, before the message is acted on. 0 or -1.
 */
int nas_open(const struct nas_sec *s, bool downlink, const uint8_t *p, size_t n,
    uint8_t *sht, uint8_t out[static NAS_MSG_MAX], size_t *outlen);

/* Wraps a plain message with SHT sht (1..4) using the sender's count of
 * direction downlink or uplink, which is then advanced; SHT 2 and 4 are
 * ciphered with s->ea. */
int nas_protect(struct nas_sec *s, uint8_t sht, bool downlink,
    const uint8_t *plain, size_t n, struct buf *out);
/* nas_encode() then nas_protect(): the protected PDU is appended to out. */
int nas_encode_protected(struct nas_sec *s, uint8_t sht, bool downlink,
    const struct nas_msg *m, struct buf *out);

/* Checks the MAC and SQN of a protected PDU against the receiver's
 * expected count for that direction and advances it. 0 or -1. */
int nas_verify(struct nas_sec *s, bool downlink, const uint8_t *p, size_t n);

/* 128-NIA2 (TS 33.501 D.3.1.3 = TS 33.401 128-EIA2) on whole bytes:
 * first 32 bits of AES-CMAC(key, COUNT || BEARER<<3|DIR<<2 || 0^3 || msg). */
int nas_nia2(const uint8_t key[static 16], uint32_t count, uint8_t bearer,
    uint8_t dir, const uint8_t *msg, size_t n, uint8_t mac[static 4]);

/* 128-NEA2 (TS 33.501 D.2.2.3 = TS 33.401 128-EEA2, B.1.3) on whole
 * bytes: AES-128-CTR, counter block COUNT || BEARER<<3|DIR<<2 || 0^88.
 * in == out allowed. 0 or -1 (logged). */
int nas_nea2(const uint8_t key[static 16], uint32_t count, uint8_t bearer,
    uint8_t dir, const uint8_t *in, size_t n, uint8_t *out);

void nas_sec_wipe(struct nas_sec *s);

#endif

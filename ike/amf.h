/*
 * AMF emulator (network side: AMF + AUSF + UDM/ARPF for ONE subscriber)
 * running 5G-AKA (TS 33.501 6.1.3.2) and the NAS registration procedure
 * (TS 24.501) over NAS PDUs, inside the N3IWF. The UE side is ike/usim.h.
 *
 * Message flow and how it maps onto IKE_AUTH (paper Table II, TS 23.502
 * 4.12.2.2). "->" UE to N3IWF, "<-" N3IWF to UE.
 *
 *   MID 1  -> IKE_AUTH  IDi, SA, TS (no AUTH)
 *          <- EAP-Request/5G-Start
 *   MID 2  -> EAP-Response/5G-NAS: AN-parameters (usim_an_params) +
 *             Registration Request (usim_start)
 *          <- EAP-Request/5G-NAS: Authentication Request  (amf_handle)
 *   MID 3  -> EAP-Response/5G-NAS: Authentication Response (usim_handle)
 *          <- EAP-Request/5G-NAS: Security Mode Command   (amf_handle)
 *   MID 4  -> EAP-Response/5G-NAS: Security Mode Complete  (usim_handle,
 *             then usim_auth_done(): usim_kn3iwf() now works)
 *          <- EAP-Success   (amf_handle, then amf_auth_done(): amf_kn3iwf()
 *             works; its nas_out is the Registration Accept, see below)
 *   MID 5  -> IKE_AUTH AUTH (keyed by KN3IWF), CP; <- AUTH, CP, SA, TS,
 *             NAS_IP4_ADDRESS, NAS_TCP_PORT (signalling Child SA)
 *   then   <- Registration Accept over NAS/TCP in the signalling SA
 *             (nas_ue.c / nas_n3iwf.c): usim_handle answers Registration
 *             Complete -> amf_handle (nas_out empty, amf_registered());
 *          -> PDU Session Establishment Request -> the N3IWF makes the
 *             user-plane Child SA -> <- PDU Session Establishment Accept.
 *
 * So: the UE sends 3 EAP-Response/5G-NAS (MID 2, 3, 4); the N3IWF sends
 * 3 EAP-Requests (5G-Start in MID 1, 5G-NAS in MID 2 and 3), then
 * EAP-Success in MID 4; AUTH in MID 5. Drive it as a loop, not a fixed
 * count: an SQN resynchronisation (UE answers Authentication Failure #21
 * with AUTS) makes amf_handle send a fresh Authentication Request, which
 * costs one more round (EAP-Success in MID 5, AUTH in MID 6).
 *
 * NAS security: 5G-IA2 (AES-CMAC, integrity) with 5G-EA0 (null ciphering),
 * KNASint from KAMF (A.8). KN3IWF = KDF(KAMF, 0x6E, uplink NAS COUNT, 0x02)
 * with the uplink NAS COUNT of the Security Mode Complete, which is 0.
 */
#ifndef IKE_AMF_H
#define IKE_AMF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define AMF_SQN_MASK 0xffffffffffffULL /* SQN is 48 bits */

/* One subscriber, shared by the AMF (network) and the USIM (UE). */
struct amf_sub {
	char	 supi[24]; /* IMSI digits, "208930000000001" */
	unsigned mnc_len;  /* 2 or 3 MNC digits in the IMSI */
	uint8_t	 k[16];
	uint8_t	 opc[16];
	uint8_t	 amf[2]; /* authentication management field */
	uint64_t sqn;	 /* 48 bits: last SQN used / accepted */
};

/* Test set 1 of TS 35.208 (K, OPc, AMF b9b9) with SUPI 208930000000001,
 * MNC 93, SQN ff9bb4d0b607 - 1 (so the first challenge uses test set 1's
 * SQN). */
void amf_sub_default(struct amf_sub *s);

/* Overrides fields from configuration strings; NULL keeps the field.
 * supi: "imsi-<digits>" or "<digits>" (6..15). k_hex/opc_hex/op_hex: 32 hex
 * digits (op_hex: OPc is computed from OP and K; give opc_hex or op_hex).
 * Errors name the field (never its value for keys). 0 or -1. */
int amf_sub_set(struct amf_sub *s, const char *supi, const char *k_hex,
    const char *opc_hex, const char *op_hex, char *err, size_t errlen);

/* MCC, MNC (from the IMSI and mnc_len) and the serving network name
 * "5G:mncXXX.mccYYY.3gppnetwork.org" (snn: KDF5G_SNN_MAX bytes). 0 or -1. */
int amf_sub_plmn(const struct amf_sub *s, char mcc[static 4],
    char mnc[static 4], char *snn, size_t snnlen);

/* Copies src into *dst with the SQN cut to 48 bits, and fills the PLMN and
 * serving network name as amf_sub_plmn(). 0, or -1 for a bad subscriber
 * (logged, naming `who`: "amf" or "usim"). */
int
amf_sub_load(struct amf_sub *dst, const struct amf_sub *src, char mcc[static 4],
    char mnc[static 4], char *snn, size_t snnlen, const char *who);

/* Wipes K and OPc. */
void amf_sub_wipe(struct amf_sub *s);

/* SQN <-> its 6 big-endian bytes (AUTN, AUTS). */
void	 amf_sqn_bytes(uint64_t sqn, uint8_t out[static 6]);
uint64_t amf_sqn_value(const uint8_t in[static 6]);

/* Network side. */
struct amf;

struct amf *amf_new(const struct amf_sub *sub); /* NULL on error */
/*
 * A subscriber range (ike/subs.h, the N3IWF's --subscribers): the
 * Registration Request's SUPI is looked up there (keys derived, the SQN
 * last served to it) instead of the one subscriber of amf_new(); every
 * SQN the AMF uses is stored back. s outlives a; NULL: no range.
 */
struct subs;
void amf_set_subs(struct amf *a, struct subs *s);
/* The NAS ciphering the Security Mode Command selects: NAS_ALG_EA2
 * (128-NEA2, the default) when the UE has it, else EA0; or EA0 always. */
void amf_set_ciphering(struct amf *a, uint8_t ea);
void amf_free(struct amf *a); /* wipes; NULL ok */

/*
 * Handles one uplink NAS PDU and appends the answer (if any) to nas_out
 * (the caller resets it). 0, or -1 (logged, nothing to send, state
 * unchanged) for a malformed or unexpected message: the caller answers
 * EAP-Failure during registration, or drops it afterwards. Where the
 * procedure stands after a 0 is asked with the predicates below:
 *   amf_auth_done()  5G-AKA and Security Mode done: KN3IWF is ready
 *                    (amf_kn3iwf); nas_out holds the Registration Accept
 *                    (to send over NAS/TCP); answer EAP-Success;
 *   amf_failed()     rejected (wrong RES*, UE reported MAC failure, ...):
 *                    nas_out may hold Authentication Reject; EAP-Failure;
 *   neither          send nas_out in an EAP-Request/5G-NAS and wait;
 *   amf_registered() the Registration Complete came (nas_out empty).
 * Once registered, a PDU Session Establishment Request (UL NAS TRANSPORT)
 * calls the session callback (amf_set_session) and leaves nas_out empty;
 * a request the AMF refuses gets its Reject in nas_out.
 */
int
amf_handle(struct amf *a, const uint8_t *nas_in, size_t n, struct buf *nas_out);

bool amf_auth_done(const struct amf *a);
bool amf_failed(const struct amf *a);
bool amf_registered(const struct amf *a);

/*
 * The PDU session (TS 23.502 4.12.5): on the UE's PDU Session
 * Establishment Request the AMF (standing for the SMF) asks the N3IWF, by
 * fn, for the user-plane Child SA of this UE (the N2 PDU Session Resource
 * Setup Request): PDU session ID, QFI, the UE's PDU address. When that
 * Child SA is up (or failed), the N3IWF calls amf_pdu_done(), which puts
 * the PDU Session Establishment Accept (or Reject #26) in a protected DL
 * NAS TRANSPORT into nas_out, for the N3IWF to forward to the UE.
 */
struct amf_pdu_setup {
	uint8_t psi;
	uint8_t qfi;
	uint8_t addr[4];
};
typedef void (*amf_pdu_fn)(void *arg, const struct amf_pdu_setup *s);

/* The session the AMF gives: the UE's address, the QFI; fn as above (NULL:
 * every PDU session is rejected). */
void amf_set_session(struct amf *a, const uint8_t addr[static 4], uint8_t qfi,
    amf_pdu_fn fn, void *arg);
/* 0, or -1 if no session psi waits for its Child SA. */
int  amf_pdu_done(struct amf *a, uint8_t psi, bool up, struct buf *nas_out);
/* The Registration Accept amf_handle gave at amf_auth_done() (the N3IWF
 * sends it first on the UE's NAS/TCP connection), or NULL before. */
const uint8_t *amf_reg_accept(const struct amf *a, size_t *len);
/* Whether the Accept was built. */
bool	       amf_pdu_up(const struct amf *a);

/* 0 and the 32-byte KN3IWF once amf_auth_done(); -1 before. */
int amf_kn3iwf(const struct amf *a, uint8_t out[static 32]);

/* The SQN the AMF used last (store it to continue across runs). */
uint64_t amf_sqn(const struct amf *a);

/* Tests only: use this RAND for the next challenge instead of a random one. */
void amf_set_rand(struct amf *a, const uint8_t rand[static 16]);

#endif

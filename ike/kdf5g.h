/*
 * 3GPP key derivation: the generic KDF of TS 33.220 Annex B.2 and the
 * 5G-AKA key hierarchy of TS 33.501 Annex A, down to KN3IWF and the NAS
 * keys.
 *
 *   KDF(key, S) = HMAC-SHA-256(key, S),
 *   S = FC || P0 || L0 || P1 || L1 || ...   (Li = length of Pi, 2 bytes)
 *
 * CK || IK -> KAUSF (A.2) -> KSEAF (A.6) -> KAMF (A.7) -> KN3IWF (A.9)
 *                                                      -> KNASint/enc (A.8)
 * CK || IK -> RES* / XRES* (A.4);  HXRES* = SHA-256(RAND || XRES*) (A.5)
 *
 * All functions return 0 or -1 (bad argument or OpenSSL failure, logged).
 */
#ifndef IKE_KDF5G_H
#define IKE_KDF5G_H

#include <stddef.h>
#include <stdint.h>

#define KDF5G_KEY_LEN	   32 /* KAUSF, KSEAF, KAMF, KN3IWF */
#define KDF5G_RES_STAR_LEN 16
#define KDF5G_SNN_MAX	   64 /* "5G:mnc093.mcc208.3gppnetwork.org" */
#define KDF5G_MAX_PARAMS   4

/* FC values (TS 33.501 Annex A). */
#define KDF5G_FC_NAS_KEY     0x69 /* A.8 */
#define KDF5G_FC_KAUSF	     0x6a /* A.2 */
#define KDF5G_FC_RES_STAR    0x6b /* A.4 */
#define KDF5G_FC_KSEAF	     0x6c /* A.6 */
#define KDF5G_FC_KAMF	     0x6d /* A.7 */
#define KDF5G_FC_KGNB_KN3IWF 0x6e /* A.9 */

/* A.9 access type distinguisher, A.8 algorithm type distinguisher. */
#define KDF5G_ACCESS_3GPP    0x01
#define KDF5G_ACCESS_NON3GPP 0x02
#define KDF5G_ALG_NAS_ENC    0x01
#define KDF5G_ALG_NAS_INT    0x02

struct kdf5g_param {
	const uint8_t *p;
	size_t	       len; /* at most 65535 */
};

/* TS 33.220 B.2: out = HMAC-SHA-256(key, FC || P0 || L0 || ...). */
int kdf5g(const uint8_t *key, size_t keylen, uint8_t fc,
    const struct kdf5g_param *params, size_t nparams, uint8_t out[static 32]);

/* Serving network name (TS 24.501 9.12.1): "5G:mncXXX.mccYYY.3gppnetwork.org",
 * MNC padded to 3 digits. mcc: 3 digits, mnc: 2 or 3 digits. */
int kdf5g_snn(const char *mcc, const char *mnc, char *out, size_t outlen);

/* A.2: KAUSF = KDF(CK||IK, 0x6A, SNN, SQN xor AK). */
int kdf5g_kausf(const uint8_t ck[static 16], const uint8_t ik[static 16],
    const char *snn, const uint8_t sqn_xor_ak[static 6],
    uint8_t kausf[static 32]);

/* A.4: (X)RES* = last 16 bytes of KDF(CK||IK, 0x6B, SNN, RAND, RES). */
int kdf5g_res_star(const uint8_t ck[static 16], const uint8_t ik[static 16],
    const char *snn, const uint8_t rand[static 16], const uint8_t *res,
    size_t reslen, uint8_t res_star[static 16]);

/* A.5: HXRES* = last 16 bytes of SHA-256(RAND || XRES*). */
int kdf5g_hres_star(const uint8_t rand[static 16],
    const uint8_t res_star[static 16], uint8_t hres_star[static 16]);

/* A.6: KSEAF = KDF(KAUSF, 0x6C, SNN). */
int kdf5g_kseaf(const uint8_t kausf[static 32], const char *snn,
    uint8_t kseaf[static 32]);

/* A.7: KAMF = KDF(KSEAF, 0x6D, SUPI, ABBA). supi: the IMSI digits
 * ("208930000000001"; an "imsi-" prefix is stripped). */
int kdf5g_kamf(const uint8_t kseaf[static 32], const char *supi,
    const uint8_t *abba, size_t abbalen, uint8_t kamf[static 32]);

/* A.9: KN3IWF = KDF(KAMF, 0x6E, uplink NAS COUNT (4 bytes), 0x02). */
int kdf5g_kn3iwf(const uint8_t kamf[static 32], uint32_t ul_count,
    uint8_t kn3iwf[static 32]);

/* A.8: KNASenc/KNASint = last 16 bytes of KDF(KAMF, 0x69, alg type, alg id). */
int kdf5g_nas_key(const uint8_t kamf[static 32], uint8_t alg_type,
    uint8_t alg_id, uint8_t key[static 16]);

#endif

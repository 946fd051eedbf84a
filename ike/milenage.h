/*
 * MILENAGE (3GPP TS 35.206): the 3GPP authentication and key generation
 * functions f1, f1*, f2, f3, f4, f5, f5* on AES-128 (OpenSSL EVP).
 * Checked against the TS 35.208 test sets (tests/unit/test_ike_5g.c).
 *
 * All functions return 0, or -1 when AES fails (logged once).
 * Outputs may alias no input. Stack temporaries are wiped.
 */
#ifndef IKE_MILENAGE_H
#define IKE_MILENAGE_H

#include <stdint.h>

#define MILENAGE_K_LEN	  16
#define MILENAGE_RAND_LEN 16
#define MILENAGE_SQN_LEN  6
#define MILENAGE_AMF_LEN  2
#define MILENAGE_MAC_LEN  8
#define MILENAGE_RES_LEN  8
#define MILENAGE_AK_LEN	  6

/* OPc = AES_K(OP) xor OP. */
int milenage_opc(const uint8_t k[static 16], const uint8_t op[static 16],
    uint8_t opc[static 16]);

/* f1 (MAC-A, network authentication) and f1* (MAC-S, resynchronisation).
 * Either output may be NULL. */
int milenage_f1(const uint8_t k[static 16], const uint8_t opc[static 16],
    const uint8_t rand[static 16], const uint8_t sqn[static 6],
    const uint8_t amf[static 2], uint8_t mac_a[8], uint8_t mac_s[8]);

/* f2 (RES), f3 (CK), f4 (IK), f5 (AK) and f5* (AK for resync).
 * Any output may be NULL. */
int milenage_f2345(const uint8_t k[static 16], const uint8_t opc[static 16],
    const uint8_t rand[static 16], uint8_t res[8], uint8_t ck[16],
    uint8_t ik[16], uint8_t ak[6], uint8_t ak_s[6]);

#endif

/*
 * IKEv2 cryptography on OpenSSL 3 EVP: prf (HMAC-SHA2-256 only), prf+,
 * SKEYSEED and the seven SK_* keys, Child SA KEYMAT, key exchange groups
 * 14 (MODP-2048), 19 (ECP-256) and 31 (Curve25519), AUTH payload data
 * (PSK, RFC 7427 ECDSA P-256/SHA-256), RFC 8784 PPK mixing.
 *
 * Every function returns 0 on success and -1 on failure (logged once,
 * naming the value, never key bytes) unless documented otherwise.
 * Secrets live in struct ike_key (wipe with ike_key_wipe), in structs made
 * by the *_new functions (wiped on free), or in struct buf (wiped on free).
 *
 * Files: keys, prf and derivations in ike/crypto.c, key exchange in
 * ike/crypto_ke.c, AUTH and certificates in ike/crypto_auth.c.
 */
#ifndef IKE_CRYPTO_H
#define IKE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"

#define IKE_PRF_LEN	32 /* PRF_HMAC_SHA2_256 output and key length */
#define IKE_KEY_MAX	36 /* AES-256 + 4-byte salt (GCM) */
#define IKE_ICV_LEN	16 /* HMAC-SHA2-256-128 and GCM-16 */
#define IKE_PRFPLUS_MAX (255 * IKE_PRF_LEN)
#define IKE_NONCE_MIN	16  /* RFC 7296: at least 16 bytes ... */
#define IKE_NONCE_MAX	256 /* ... at most 256 */

/* One key. Wipe with ike_key_wipe() (or free the containing struct). */
struct ike_key {
	size_t	len;
	uint8_t k[IKE_KEY_MAX];
};

/* The IKE SA keys (RFC 7296 2.14). Allocate with ike_sa_keys_new(). */
struct ike_sa_keys {
	struct ike_key d, ai, ar, ei, er, pi, pr;
};

/* One Child SA's keys: "i" = initiator -> responder, "r" = responder -> initiator. */
struct ike_child_keys {
	struct ike_key ei, ai, er, ar;
};

void ike_key_wipe(struct ike_key *k);
int  ike_key_set(struct ike_key *k, const uint8_t *p, size_t len);
struct ike_sa_keys *ike_sa_keys_new(void);    /* sec_alloc, zeroed */
void ike_sa_keys_free(struct ike_sa_keys *k); /* wipes; NULL ok */
struct ike_child_keys *ike_child_keys_new(void);
void		       ike_child_keys_free(struct ike_child_keys *k);

/*
 * Key lengths of the transforms we implement, in bytes. For ENCR the
 * length includes the salt of AES-GCM (bits/8 + 4); encr_bits must be
 * 128, 192 or 256. INTEG_NONE gives 0. -1 for anything else.
 */
int ike_encr_keylen(uint16_t encr, uint16_t encr_bits, size_t *len);
int ike_integ_keylen(uint16_t integ, size_t *len);

/* prf = HMAC-SHA2-256(key, data). */
int ike_prf(const uint8_t *key, size_t klen, const uint8_t *data, size_t dlen,
    uint8_t out[static IKE_PRF_LEN]);
/* prf+ (RFC 7296 2.13): T1 | T2 | ..., Tn = prf(K, Tn-1 | S | n). */
int ike_prf_plus(const uint8_t *key, size_t klen, const uint8_t *seed,
    size_t slen, uint8_t *out, size_t outlen);

/* SKEYSEED = prf(Ni | Nr, g^ir). */
int
ike_skeyseed(const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
    const uint8_t *gir, size_t gir_len, uint8_t skeyseed[static IKE_PRF_LEN]);
/* Rekeyed IKE SA: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr). */
int  ike_skeyseed_rekey(const struct ike_key *old_sk_d, const uint8_t *gir,
     size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
     size_t nr_len, uint8_t skeyseed[static IKE_PRF_LEN]);
/*
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
 *   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * with SK_a* sized by integ (0 for AEAD) and SK_e* by encr/encr_bits.
 */
int  ike_sa_keys_derive(const uint8_t skeyseed[static IKE_PRF_LEN],
     const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
     const uint8_t spi_i[static 8], const uint8_t spi_r[static 8], uint16_t encr,
     uint16_t encr_bits, uint16_t integ, struct ike_sa_keys *k);
/*
 * The IKE SA keys from a shared secret (RFC 7296 2.14): SKEYSEED =
 * prf(Ni | Nr, secret), then ike_sa_keys_derive(). The secret is g^ir in
 * the DH modes and the one 256-bit QKD key in qkd mode's prf schedule
 * (ike/README.md), so the keys are bound to both nonces and both SPIs.
 */
int  ike_ke_sa_keys(const uint8_t *secret, size_t secret_len, const uint8_t *ni,
     size_t ni_len, const uint8_t *nr, size_t nr_len,
     const uint8_t spi_i[static 8], const uint8_t spi_r[static 8], uint16_t encr,
     uint16_t encr_bits, uint16_t integ, struct ike_sa_keys *k);
/*
 * Child SA KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr) (RFC 7296 2.17),
 * taken in the order encr i->r, integ i->r, encr r->i, integ r->i.
 * gir may be NULL (no PFS).
 */
int  ike_child_keys_derive(const struct ike_key *sk_d, const uint8_t *gir,
     size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
     size_t nr_len, uint16_t encr, uint16_t encr_bits, uint16_t integ,
     struct ike_child_keys *k);
/*
 * The two directions of k exchanged: a Child SA whose exchange the
 * N3IWF started gets its "i -> r" keys as N3IWF -> UE from KEYMAT, and
 * we keep "i" = the UE.
 */
void ike_child_keys_swap(struct ike_child_keys *k);

/*
 * RFC 8784 section 3: SK_d' = prf+(PPK, SK_d), SK_pi' = prf+(PPK, SK_pi),
 * SK_pr' = prf+(PPK, SK_pr), each as long as the original. `in` and `out`
 * may be the same struct; keep a copy of the unmixed SK_pi/SK_pr if
 * NO_PPK_AUTH must be computed or checked.
 */
int ike_ppk_mix(const uint8_t *ppk, size_t ppk_len,
    const struct ike_sa_keys *in, struct ike_sa_keys *out);

/*
 * Key exchange. ike_dh_new() makes a key pair for group 14, 19 or 31 (or
 * returns NULL, logged); ike_dh_public() appends our KE data (MODP: 256
 * bytes, big-endian, zero-padded; ECP-256: x | y, 64 bytes, RFC 5903;
 * X25519: 32 bytes); ike_dh_derive() validates the peer's KE data (length,
 * range 1 < y < p-1 for MODP, point on curve for ECP, non-zero result for
 * X25519) and appends g^ir (MODP: 256 bytes; ECP: x, 32 bytes; X25519: 32)
 * to `secret`. ike_dh_publen() is 0 for an unknown group.
 */
struct ike_dh;
struct ike_dh *ike_dh_new(uint16_t group);
uint16_t       ike_dh_group(const struct ike_dh *dh);
size_t	       ike_dh_publen(uint16_t group);
int	       ike_dh_public(const struct ike_dh *dh, struct buf *out);
int	       ike_dh_derive(struct ike_dh *dh, const uint8_t *peer, size_t len,
	       struct buf *secret);
void	       ike_dh_free(struct ike_dh *dh); /* NULL ok */

/*
 * AUTH (RFC 7296 2.15). The signed octets are
 *   RealMessage | Nonce (of the peer) | prf(SK_p, ID')
 * where ID' is the IDi/IDr payload body (after the generic header) and
 * SK_p is SK_pi for the initiator's AUTH, SK_pr for the responder's.
 * ike_auth_octets() appends them to `out`.
 */
int ike_auth_octets(const uint8_t *msg, size_t msg_len, const uint8_t *nonce,
    size_t nonce_len, const struct ike_key *sk_p, const uint8_t *id_body,
    size_t id_len, struct buf *out);
/* PSK AUTH data = prf(prf(secret, "Key Pad for IKEv2"), octets). */
int ike_auth_psk(const uint8_t *secret, size_t slen, const uint8_t *octets,
    size_t olen, uint8_t out[static IKE_PRF_LEN]);
/* 0 if auth equals the PSK AUTH data (constant-time compare), else -1. */
int ike_auth_psk_verify(const uint8_t *secret, size_t slen,
    const uint8_t *octets, size_t olen, const uint8_t *auth, size_t alen);
/*
 * RFC 7427 Digital Signature AUTH data, ECDSA P-256 with SHA-256:
 * len(1) | AlgorithmIdentifier(ecdsa-with-SHA256) | DER ECDSA signature.
 * sign appends it to `out`; verify checks it with the cert's public key.
 */
int ike_auth_sig_sign(EVP_PKEY *key, const uint8_t *octets, size_t olen,
    struct buf *out);
int ike_auth_sig_verify(X509 *cert, const uint8_t *octets, size_t olen,
    const uint8_t *auth, size_t alen);

/*
 * Certificates for CERT payloads (X.509 signature, encoding 4). Loaders
 * read PEM files and return NULL, not logged, when they cannot (setup
 * paths: the caller names the file in its error); ike_cert_verify()
 * checks `cert` against the CA (and its validity period). Free with
 * X509_free / EVP_PKEY_free / X509_STORE_free.
 */
X509	   *ike_cert_load(const char *path);
EVP_PKEY   *ike_key_load(const char *path);
X509_STORE *ike_ca_load(const char *path);
int	    ike_cert_der(X509 *cert, struct buf *out);
X509	   *ike_cert_from_der(const uint8_t *p, size_t len);
int	    ike_cert_verify(X509 *cert, X509_STORE *ca);
/*
 * The peer's certificate (DER, from its CERT payload), chained to ca and
 * named by its ID payload (type, data: the subject DN, or an FQDN the
 * certificate holds); NULL (logged) if not. Inputs by value: worker
 * threads call it (ike/cpuq.h).
 */
X509	   *ike_cert_peer(const uint8_t *der, size_t len, uint8_t id_type,
	  const uint8_t *id, size_t id_len, X509_STORE *ca);

/* Random bytes (SPIs, nonces, IVs). */
int ike_random(uint8_t *p, size_t len);

#endif

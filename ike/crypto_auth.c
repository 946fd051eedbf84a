/*
 * IKEv2 AUTH payload data (ike/crypto.h): the signed octets, PSK (RFC
 * 7296 2.15), RFC 7427 ECDSA P-256/SHA-256; and the certificates for
 * CERT payloads.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"

int
ike_auth_octets(const uint8_t *msg, size_t msg_len, const uint8_t *nonce,
    size_t nonce_len, const struct ike_key *sk_p, const uint8_t *id_body,
    size_t id_len, struct buf *out)
{
	uint8_t mac[IKE_PRF_LEN];

	if (ike_prf(sk_p->k, sk_p->len, id_body, id_len, mac) == -1)
		return -1;
	if (buf_add(out, msg, msg_len) == -1 ||
	    buf_add(out, nonce, nonce_len) == -1 ||
	    buf_add(out, mac, sizeof(mac)) == -1) {
		log_err("%s: signed octets do not fit", __func__);
		return -1;
	}
	return 0;
}

int
ike_auth_psk(const uint8_t *secret, size_t slen, const uint8_t *octets,
    size_t olen, uint8_t out[static IKE_PRF_LEN])
{
	static const char pad[] = "Key Pad for IKEv2";
	uint8_t		  k[IKE_PRF_LEN];
	int		  rc;

	rc = ike_prf(secret, slen, (const uint8_t *)pad, sizeof(pad) - 1, k);
	if (rc == 0)
		rc = ike_prf(k, sizeof(k), octets, olen, out);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int
ike_auth_psk_verify(const uint8_t *secret, size_t slen, const uint8_t *octets,
    size_t olen, const uint8_t *auth, size_t alen)
{
	uint8_t want[IKE_PRF_LEN];
	int	rc = -1;

	if (ike_auth_psk(secret, slen, octets, olen, want) == 0 &&
	    alen == sizeof(want) && CRYPTO_memcmp(want, auth, alen) == 0)
		rc = 0;
	OPENSSL_cleanse(want, sizeof(want));
	if (rc == -1)
		log_warn("%s: PSK AUTH mismatch (%zu bytes)", __func__, alen);
	return rc;
}

/* RFC 7427 A.3.1: AlgorithmIdentifier for ecdsa-with-SHA256, no params. */
static const uint8_t ecdsa_sha256_algid[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
	0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };

int
ike_auth_sig_sign(EVP_PKEY *key, const uint8_t *octets, size_t olen,
    struct buf *out)
{
	EVP_MD_CTX *c = NULL;
	uint8_t	   *d;
	size_t	    slen = 0, start = out->len;
	int	    ok;

	ok = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    buf_add_u8(out, sizeof(ecdsa_sha256_algid)) == 0 &&
	    buf_add(out, ecdsa_sha256_algid, sizeof(ecdsa_sha256_algid)) == 0 &&
	    (c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, key, NULL) ==
		1 &&
	    EVP_DigestSign(c, NULL, &slen, octets, olen) == 1 &&
	    (d = buf_reserve(out, slen)) != NULL &&
	    EVP_DigestSign(c, d, &slen, octets, olen) == 1;
	EVP_MD_CTX_free(c);
	if (!ok) {
		out->len = start;
		log_err("%s: ECDSA P-256/SHA-256 signing failed", __func__);
		return -1;
	}
	out->len = start + 1 + sizeof(ecdsa_sha256_algid) + slen;
	return 0;
}

int
ike_auth_sig_verify(X509 *cert, const uint8_t *octets, size_t olen,
    const uint8_t *auth, size_t alen)
{
	EVP_PKEY   *pk;
	EVP_MD_CTX *c = NULL;
	size_t	    hl = 1 + sizeof(ecdsa_sha256_algid);
	int	    ok;

	if (alen <= hl || auth[0] != sizeof(ecdsa_sha256_algid) ||
	    memcmp(auth + 1, ecdsa_sha256_algid, auth[0]) != 0) {
		log_warn("%s: AUTH is not ecdsa-with-SHA256 (%zu bytes)",
		    __func__, alen);
		return -1;
	}
	ok = (pk = X509_get0_pubkey(cert)) != NULL &&
	    EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    (c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, pk, NULL) ==
		1 &&
	    EVP_DigestVerify(c, auth + hl, alen - hl, octets, olen) == 1;
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	if (!ok)
		log_warn("%s: ECDSA signature does not verify", __func__);
	return ok ? 0 : -1;
}

/* ---- certificates ---- */

/*
 * The first PEM object of the file at `path`: a private key or an X.509
 * certificate. NULL when the file cannot be read or holds no such object;
 * not logged (a setup path: the caller names the file in its error).
 */
static void *
pem_load(const char *path, bool key)
{
	FILE *f;
	void *o;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	o = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) :
		  (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	return o;
}

X509 *
ike_cert_load(const char *path)
{
	return pem_load(path, false);
}

EVP_PKEY *
ike_key_load(const char *path)
{
	return pem_load(path, true);
}

X509_STORE *
ike_ca_load(const char *path)
{
	X509_STORE *s;

	if ((s = X509_STORE_new()) != NULL &&
	    X509_STORE_load_file(s, path) != 1) {
		X509_STORE_free(s);
		s = NULL;
	}
	ERR_clear_error();
	return s;
}

int
ike_cert_der(X509 *cert, struct buf *out)
{
	int	 n = i2d_X509(cert, NULL);
	uint8_t *d;

	if (n <= 0 || (d = buf_reserve(out, (size_t)n)) == NULL ||
	    i2d_X509(cert, &d) != n) {
		log_err("%s: cannot DER-encode the certificate", __func__);
		return -1;
	}
	return 0;
}

X509 *
ike_cert_from_der(const uint8_t *p, size_t len)
{
	const unsigned char *q = p;
	X509		    *x = NULL;

	if (len > 0 && len < INT_MAX)
		x = d2i_X509(NULL, &q, (long)len);
	if (x != NULL && q != p + len) {
		X509_free(x);
		x = NULL;
	}
	if (x == NULL)
		log_warn("%s: CERT data (%zu bytes) is not one DER certificate",
		    __func__, len);
	ERR_clear_error();
	return x;
}

int
ike_cert_verify(X509 *cert, X509_STORE *ca)
{
	X509_STORE_CTX *c;
	int		ok, err = 0;
	char		dn[256] = "?";

	if ((c = X509_STORE_CTX_new()) == NULL)
		return -1;
	ok = X509_STORE_CTX_init(c, ca, cert, NULL) == 1 &&
	    X509_verify_cert(c) == 1;
	if (!ok) {
		err = X509_STORE_CTX_get_error(c);
		X509_NAME_oneline(X509_get_subject_name(cert), dn, sizeof(dn));
		log_warn("%s: certificate %s rejected: %s", __func__, dn,
		    X509_verify_cert_error_string(err));
	}
	X509_STORE_CTX_free(c);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* true when the ID (type, data) names x: its subject DN, or an FQDN it holds. */
static bool
cert_names(X509 *x, uint8_t id_type, const uint8_t *id, size_t id_len)
{
	uint8_t *der = NULL;
	char	 name[256];
	int	 n;
	bool	 ok = false;

	if (id_type == IKE_ID_DER_ASN1_DN) {
		n = i2d_X509_NAME(X509_get_subject_name(x), &der);
		ok = n > 0 && (size_t)n == id_len &&
		    memcmp(der, id, id_len) == 0;
		OPENSSL_free(der);
	} else if (id_type == IKE_ID_FQDN && id_len < sizeof(name)) {
		memcpy(name, id, id_len);
		name[id_len] = '\0';
		ok = X509_check_host(x, name, 0, 0, NULL) == 1;
	}
	return ok;
}

X509 *
ike_cert_peer(const uint8_t *der, size_t len, uint8_t id_type,
    const uint8_t *id, size_t id_len, X509_STORE *ca)
{
	X509 *x;

	if ((x = ike_cert_from_der(der, len)) == NULL)
		return NULL;
	if (ca == NULL || ike_cert_verify(x, ca) == -1) {
		log_warn("peer certificate does not chain to our CA");
		X509_free(x);
		return NULL;
	}
	if (!cert_names(x, id_type, id, id_len)) {
		log_warn("peer ID (type %u) is not the certificate's subject",
		    id_type);
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * IKEv2 key exchange (ike/crypto.h): groups 14 (MODP-2048), 19 (ECP-256)
 * and 31 (Curve25519) on OpenSSL 3 EVP, with the peer value checks, and
 * the IKE SA keys from the shared secret a key exchange (or QKD) gives.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"

struct ike_dh {
	uint16_t  group;
	EVP_PKEY *key;
};

int
ike_ke_sa_keys(const uint8_t *secret, size_t secret_len, const uint8_t *ni,
    size_t ni_len, const uint8_t *nr, size_t nr_len,
    const uint8_t spi_i[static 8], const uint8_t spi_r[static 8], uint16_t encr,
    uint16_t encr_bits, uint16_t integ, struct ike_sa_keys *k)
{
	uint8_t skeyseed[IKE_PRF_LEN];
	int	ret;

	ret = ike_skeyseed(ni, ni_len, nr, nr_len, secret, secret_len,
		  skeyseed) == -1 ||
		ike_sa_keys_derive(skeyseed, ni, ni_len, nr, nr_len, spi_i,
		    spi_r, encr, encr_bits, integ, k) == -1 ?
	    -1 :
	    0;
	OPENSSL_cleanse(skeyseed, sizeof(skeyseed));
	return ret;
}

size_t
ike_dh_publen(uint16_t group)
{
	switch (group) {
	case IKE_KE_MODP2048: return 256;
	case IKE_KE_ECP256: return 64;
	case IKE_KE_CURVE25519: return 32;
	default: return 0;
	}
}

uint16_t
ike_dh_group(const struct ike_dh *dh)
{
	return dh->group;
}

static const char *
dh_alg(uint16_t group, const char **gname)
{
	*gname = NULL;
	switch (group) {
	case IKE_KE_MODP2048: *gname = "modp_2048"; return "DH";
	case IKE_KE_ECP256: *gname = "P-256"; return "EC";
	case IKE_KE_CURVE25519: return "X25519";
	default: return NULL;
	}
}

struct ike_dh *
ike_dh_new(uint16_t group)
{
	const char    *alg, *gname;
	EVP_PKEY_CTX  *c = NULL;
	struct ike_dh *dh;

	if ((alg = dh_alg(group, &gname)) == NULL) {
		log_err("%s: unsupported KE method %u", __func__, group);
		return NULL;
	}
	if ((dh = calloc(1, sizeof(*dh))) == NULL)
		return NULL;
	dh->group = group;
	if ((c = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(c) != 1 ||
	    (gname != NULL && EVP_PKEY_CTX_set_group_name(c, gname) != 1) ||
	    EVP_PKEY_generate(c, &dh->key) != 1) {
		log_err("%s: key generation for %s failed", __func__,
		    ike_xf_name(IKE_XF_KE, group));
		ike_dh_free(dh);
		dh = NULL;
	}
	EVP_PKEY_CTX_free(c);
	return dh;
}

void
ike_dh_free(struct ike_dh *dh)
{
	if (dh == NULL)
		return;
	EVP_PKEY_free(dh->key);
	free(dh);
}

int
ike_dh_public(const struct ike_dh *dh, struct buf *out)
{
	uint8_t pt[65], *d;
	size_t	len = 0, want = ike_dh_publen(dh->group);
	BIGNUM *y = NULL;
	int	ok = 0;

	if ((d = buf_reserve(out, want)) == NULL)
		return -1;
	switch (dh->group) {
	case IKE_KE_MODP2048:
		ok = EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY,
			 &y) == 1 &&
		    BN_bn2binpad(y, d, (int)want) == (int)want;
		break;
	case IKE_KE_ECP256:
		ok = EVP_PKEY_get_octet_string_param(dh->key,
			 OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
			 &len) == 1 &&
		    len == 65 && pt[0] == 0x04;
		if (ok)
			memcpy(d, pt + 1, 64);
		break;
	case IKE_KE_CURVE25519:
		len = want;
		ok = EVP_PKEY_get_raw_public_key(dh->key, d, &len) == 1 &&
		    len == want;
		break;
	}
	BN_free(y);
	if (!ok) {
		out->len -= want;
		log_err("%s: cannot export %s public value", __func__,
		    ike_xf_name(IKE_XF_KE, dh->group));
	}
	return ok ? 0 : -1;
}

/* MODP peer value: 1 < y < p-1, then an EVP_PKEY in the same group. */
static EVP_PKEY *
peer_modp(EVP_PKEY *ours, const uint8_t *p, size_t len)
{
	BIGNUM	       *y = NULL, *prime = NULL, *pm1 = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM     *par = NULL;
	EVP_PKEY_CTX   *c = NULL;
	EVP_PKEY       *peer = NULL;
	char		gname[] = "modp_2048";

	if ((y = BN_bin2bn(p, (int)len, NULL)) == NULL ||
	    EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_FFC_P, &prime) != 1 ||
	    (pm1 = BN_dup(prime)) == NULL || BN_sub_word(pm1, 1) != 1)
		goto done;
	if (BN_cmp(y, BN_value_one()) <= 0 || BN_cmp(y, pm1) >= 0) {
		log_warn(
		    "ike_dh_derive: MODP peer value out of range 1 < y < p-1");
		goto done;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		gname, 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y) != 1 ||
	    (par = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (c = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &peer, EVP_PKEY_PUBLIC_KEY, par) != 1)
		peer = NULL;
done:
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(par);
	OSSL_PARAM_BLD_free(bld);
	BN_free(y);
	BN_free(prime);
	BN_free(pm1);
	return peer;
}

/* ECP-256 peer value x | y: an EVP_PKEY, checked to be on the curve. */
static EVP_PKEY *
peer_ecp(const uint8_t *p, size_t len)
{
	uint8_t	      pt[65];
	char	      gname[] = "P-256";
	OSSL_PARAM    par[3];
	EVP_PKEY_CTX *c = NULL, *chk = NULL;
	EVP_PKEY     *peer = NULL;

	pt[0] = 0x04;
	memcpy(pt + 1, p, len);
	par[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    gname, 0);
	par[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt,
	    sizeof(pt));
	par[2] = OSSL_PARAM_construct_end();
	if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &peer, EVP_PKEY_PUBLIC_KEY, par) != 1 ||
	    (chk = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) == NULL ||
	    EVP_PKEY_public_check(chk) != 1) {
		log_warn(
		    "ike_dh_derive: ECP-256 peer value is not a point on the curve");
		EVP_PKEY_free(peer);
		peer = NULL;
	}
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(c);
	return peer;
}

static EVP_PKEY *
peer_key(const struct ike_dh *dh, const uint8_t *p, size_t len)
{
	switch (dh->group) {
	case IKE_KE_MODP2048: return peer_modp(dh->key, p, len);
	case IKE_KE_ECP256: return peer_ecp(p, len);
	case IKE_KE_CURVE25519:
		return EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, p,
		    len);
	default: return NULL;
	}
}

int
ike_dh_derive(struct ike_dh *dh, const uint8_t *peer, size_t len,
    struct buf *secret)
{
	EVP_PKEY     *pk = NULL;
	EVP_PKEY_CTX *c = NULL;
	size_t	      slen = 0, want = dh->group == IKE_KE_MODP2048 ? 256 : 32;
	uint8_t	     *d = NULL;
	int	      ok;

	if (len != ike_dh_publen(dh->group)) {
		log_warn("%s: %s peer value of %zu bytes, want %zu", __func__,
		    ike_xf_name(IKE_XF_KE, dh->group), len,
		    ike_dh_publen(dh->group));
		return -1;
	}
	ok = (pk = peer_key(dh, peer, len)) != NULL &&
	    (c = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL)) != NULL &&
	    EVP_PKEY_derive_init(c) == 1 &&
	    (dh->group != IKE_KE_MODP2048 ||
		EVP_PKEY_CTX_set_dh_pad(c, 1) == 1) &&
	    EVP_PKEY_derive_set_peer_ex(c, pk, 0) == 1 &&
	    EVP_PKEY_derive(c, NULL, &slen) == 1 && slen == want &&
	    (d = buf_reserve(secret, want)) != NULL &&
	    EVP_PKEY_derive(c, d, &slen) == 1 && slen == want;
	if (!ok) {
		if (d != NULL) {
			OPENSSL_cleanse(d, want);
			secret->len -= want;
		}
		log_warn("%s: %s shared secret derivation failed", __func__,
		    ike_xf_name(IKE_XF_KE, dh->group));
	}
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return ok ? 0 : -1;
}

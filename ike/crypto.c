/*
 * IKEv2 cryptography on OpenSSL 3 EVP: prf/prf+, key derivation, key
 * exchange groups 14/19/31, AUTH (PSK, RFC 7427 ECDSA), RFC 8784 PPK.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"

/* ---- keys ---- */

void
ike_key_wipe(struct ike_key *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

int
ike_key_set(struct ike_key *k, const uint8_t *p, size_t len)
{
	if (len > IKE_KEY_MAX) {
		log_err("%s: key of %zu bytes too long", __func__, len);
		return -1;
	}
	ike_key_wipe(k);
	if (len)
		memcpy(k->k, p, len);
	k->len = len;
	return 0;
}

struct ike_sa_keys *
ike_sa_keys_new(void)
{
	return sec_alloc(sizeof(struct ike_sa_keys));
}

void
ike_sa_keys_free(struct ike_sa_keys *k)
{
	if (k != NULL)
		sec_free(k, sizeof(*k));
}

struct ike_child_keys *
ike_child_keys_new(void)
{
	return sec_alloc(sizeof(struct ike_child_keys));
}

void
ike_child_keys_free(struct ike_child_keys *k)
{
	if (k != NULL)
		sec_free(k, sizeof(*k));
}

int
ike_encr_keylen(uint16_t encr, uint16_t encr_bits, size_t *len)
{
	if ((encr != IKE_ENCR_AES_CBC && encr != IKE_ENCR_AES_GCM_16) ||
	    (encr_bits != 128 && encr_bits != 192 && encr_bits != 256)) {
		log_err("%s: unsupported %s/%u", __func__,
		    ike_xf_name(IKE_XF_ENCR, encr), encr_bits);
		return -1;
	}
	*len = encr_bits / 8 + (encr == IKE_ENCR_AES_GCM_16 ? 4 : 0);
	return 0;
}

int
ike_integ_keylen(uint16_t integ, size_t *len)
{
	if (integ == IKE_INTEG_NONE)
		*len = 0;
	else if (integ == IKE_INTEG_HMAC_SHA2_256_128)
		*len = 32;
	else {
		log_err("%s: unsupported integrity %u", __func__, integ);
		return -1;
	}
	return 0;
}

/* ---- prf ---- */

struct iov {
	const uint8_t	*p;
	size_t		 len;
};

static EVP_MAC		*hmac_mac;
static pthread_once_t	 hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA2-256 over the concatenation of v[0..nv). */
static int
hmac_v(const uint8_t *key, size_t klen, const struct iov *v, size_t nv,
    uint8_t out[static IKE_PRF_LEN])
{
	static const uint8_t	 nokey[1];
	char			 md[] = "SHA256";
	OSSL_PARAM		 par[2];
	EVP_MAC_CTX		*c = NULL;
	size_t			 olen = 0;
	int			 ok;

	pthread_once(&hmac_once, hmac_fetch);
	par[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md, 0);
	par[1] = OSSL_PARAM_construct_end();
	ok = hmac_mac != NULL && (c = EVP_MAC_CTX_new(hmac_mac)) != NULL &&
	    EVP_MAC_init(c, klen ? key : nokey, klen, par) == 1;
	for (size_t i = 0; ok && i < nv; i++)
		ok = v[i].len == 0 || EVP_MAC_update(c, v[i].p, v[i].len) == 1;
	ok = ok && EVP_MAC_final(c, out, &olen, IKE_PRF_LEN) == 1 &&
	    olen == IKE_PRF_LEN;
	EVP_MAC_CTX_free(c);
	if (!ok)
		log_err("hmac: HMAC-SHA2-256 failed");
	return ok ? 0 : -1;
}

int
ike_prf(const uint8_t *key, size_t klen, const uint8_t *data, size_t dlen,
    uint8_t out[static IKE_PRF_LEN])
{
	struct iov	v = { data, dlen };

	return hmac_v(key, klen, &v, 1, out);
}

int
ike_prf_plus(const uint8_t *key, size_t klen, const uint8_t *seed,
    size_t slen, uint8_t *out, size_t outlen)
{
	uint8_t		t[IKE_PRF_LEN], n = 1;
	struct iov	v[3];
	size_t		off = 0, take;
	int		rc = 0;

	if (outlen > IKE_PRFPLUS_MAX) {
		log_err("%s: %zu bytes asked, at most %d", __func__, outlen,
		    IKE_PRFPLUS_MAX);
		return -1;
	}
	while (off < outlen && rc == 0) {
		v[0].p = t;
		v[0].len = n == 1 ? 0 : sizeof(t);
		v[1].p = seed;
		v[1].len = slen;
		v[2].p = &n;
		v[2].len = 1;
		if ((rc = hmac_v(key, klen, v, 3, t)) == 0) {
			take = outlen - off < sizeof(t) ? outlen - off : sizeof(t);
			memcpy(out + off, t, take);
			off += take;
			n++;
		}
	}
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

/* ---- IKE SA and Child SA keys ---- */

int
ike_skeyseed(const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, const uint8_t *gir, size_t gir_len,
    uint8_t skeyseed[static IKE_PRF_LEN])
{
	uint8_t	key[2 * IKE_NONCE_MAX];

	if (ni_len > IKE_NONCE_MAX || nr_len > IKE_NONCE_MAX) {
		log_err("%s: nonce too long (%zu, %zu)", __func__, ni_len,
		    nr_len);
		return -1;
	}
	memcpy(key, ni, ni_len);
	memcpy(key + ni_len, nr, nr_len);
	return ike_prf(key, ni_len + nr_len, gir, gir_len, skeyseed);
}

int
ike_skeyseed_rekey(const struct ike_key *old_sk_d, const uint8_t *gir,
    size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, uint8_t skeyseed[static IKE_PRF_LEN])
{
	struct iov	v[3] = { { gir, gir_len }, { ni, ni_len }, { nr, nr_len } };

	return hmac_v(old_sk_d->k, old_sk_d->len, v, 3, skeyseed);
}

/* Cuts the next `len` bytes of KEYMAT into *k. */
static int
take_key(struct ike_key *k, const uint8_t *km, size_t *off, size_t len)
{
	if (ike_key_set(k, km + *off, len) == -1)
		return -1;
	*off += len;
	return 0;
}

int
ike_sa_keys_derive(const uint8_t skeyseed[static IKE_PRF_LEN],
    const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
    const uint8_t spi_i[static 8], const uint8_t spi_r[static 8],
    uint16_t encr, uint16_t encr_bits, uint16_t integ, struct ike_sa_keys *k)
{
	uint8_t	 seed[2 * IKE_NONCE_MAX + 16], *km = NULL;
	size_t	 elen, alen, total, off = 0;
	int	 rc = -1;

	if (ike_encr_keylen(encr, encr_bits, &elen) == -1 ||
	    ike_integ_keylen(integ, &alen) == -1)
		return -1;
	if (ni_len > IKE_NONCE_MAX || nr_len > IKE_NONCE_MAX) {
		log_err("%s: nonce too long", __func__);
		return -1;
	}
	memcpy(seed, ni, ni_len);
	memcpy(seed + ni_len, nr, nr_len);
	memcpy(seed + ni_len + nr_len, spi_i, 8);
	memcpy(seed + ni_len + nr_len + 8, spi_r, 8);
	total = 3 * IKE_PRF_LEN + 2 * alen + 2 * elen;
	if ((km = sec_alloc(total)) == NULL ||
	    ike_prf_plus(skeyseed, IKE_PRF_LEN, seed, ni_len + nr_len + 16,
	    km, total) == -1)
		goto done;
	if (take_key(&k->d, km, &off, IKE_PRF_LEN) == -1 ||
	    take_key(&k->ai, km, &off, alen) == -1 ||
	    take_key(&k->ar, km, &off, alen) == -1 ||
	    take_key(&k->ei, km, &off, elen) == -1 ||
	    take_key(&k->er, km, &off, elen) == -1 ||
	    take_key(&k->pi, km, &off, IKE_PRF_LEN) == -1 ||
	    take_key(&k->pr, km, &off, IKE_PRF_LEN) == -1)
		goto done;
	rc = 0;
done:
	if (km != NULL)
		sec_free(km, total);
	return rc;
}

int
ike_child_keys_derive(const struct ike_key *sk_d, const uint8_t *gir,
    size_t gir_len, const uint8_t *ni, size_t ni_len, const uint8_t *nr,
    size_t nr_len, uint16_t encr, uint16_t encr_bits, uint16_t integ,
    struct ike_child_keys *k)
{
	struct buf	seed;
	uint8_t		*km = NULL;
	size_t		elen, alen, total = 0, off = 0;
	int		rc = -1;

	buf_init(&seed, 4096);
	if (ike_encr_keylen(encr, encr_bits, &elen) == -1 ||
	    ike_integ_keylen(integ, &alen) == -1)
		goto done;
	total = 2 * (elen + alen);
	if ((gir != NULL && buf_add(&seed, gir, gir_len) == -1) ||
	    buf_add(&seed, ni, ni_len) == -1 || buf_add(&seed, nr, nr_len) == -1) {
		log_err("%s: seed too long", __func__);
		goto done;
	}
	if ((km = sec_alloc(total)) == NULL ||
	    ike_prf_plus(sk_d->k, sk_d->len, seed.data, seed.len, km,
	    total) == -1)
		goto done;
	if (take_key(&k->ei, km, &off, elen) == -1 ||
	    take_key(&k->ai, km, &off, alen) == -1 ||
	    take_key(&k->er, km, &off, elen) == -1 ||
	    take_key(&k->ar, km, &off, alen) == -1)
		goto done;
	rc = 0;
done:
	if (km != NULL)
		sec_free(km, total);
	buf_free(&seed);
	return rc;
}

static int
ppk_one(const uint8_t *ppk, size_t ppk_len, const struct ike_key *in,
    struct ike_key *out)
{
	uint8_t	t[IKE_KEY_MAX];
	int	rc;

	rc = ike_prf_plus(ppk, ppk_len, in->k, in->len, t, in->len);
	if (rc == 0)
		rc = ike_key_set(out, t, in->len);
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

int
ike_ppk_mix(const uint8_t *ppk, size_t ppk_len, const struct ike_sa_keys *in,
    struct ike_sa_keys *out)
{
	if (ppk_len == 0) {
		log_err("%s: empty PPK", __func__);
		return -1;
	}
	if (in != out)
		*out = *in;
	if (ppk_one(ppk, ppk_len, &in->d, &out->d) == -1 ||
	    ppk_one(ppk, ppk_len, &in->pi, &out->pi) == -1 ||
	    ppk_one(ppk, ppk_len, &in->pr, &out->pr) == -1)
		return -1;
	return 0;
}

/* ---- key exchange ---- */

struct ike_dh {
	uint16_t	 group;
	EVP_PKEY	*key;
};

size_t
ike_dh_publen(uint16_t group)
{
	switch (group) {
	case IKE_KE_MODP2048:	return 256;
	case IKE_KE_ECP256:	return 64;
	case IKE_KE_CURVE25519:	return 32;
	default:		return 0;
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
	case IKE_KE_MODP2048:
		*gname = "modp_2048";
		return "DH";
	case IKE_KE_ECP256:
		*gname = "P-256";
		return "EC";
	case IKE_KE_CURVE25519:
		return "X25519";
	default:
		return NULL;
	}
}

struct ike_dh *
ike_dh_new(uint16_t group)
{
	const char	*alg, *gname;
	EVP_PKEY_CTX	*c = NULL;
	struct ike_dh	*dh;

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
	uint8_t	 pt[65], *d;
	size_t	 len = 0, want = ike_dh_publen(dh->group);
	BIGNUM	*y = NULL;
	int	 ok = 0;

	if ((d = buf_reserve(out, want)) == NULL)
		return -1;
	switch (dh->group) {
	case IKE_KE_MODP2048:
		ok = EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY,
		    &y) == 1 && BN_bn2binpad(y, d, (int)want) == (int)want;
		break;
	case IKE_KE_ECP256:
		ok = EVP_PKEY_get_octet_string_param(dh->key,
		    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
		    &len) == 1 && len == 65 && pt[0] == 0x04;
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
	BIGNUM		*y = NULL, *prime = NULL, *pm1 = NULL;
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*par = NULL;
	EVP_PKEY_CTX	*c = NULL;
	EVP_PKEY	*peer = NULL;
	char		 gname[] = "modp_2048";

	if ((y = BN_bin2bn(p, (int)len, NULL)) == NULL ||
	    EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_FFC_P, &prime) != 1 ||
	    (pm1 = BN_dup(prime)) == NULL || BN_sub_word(pm1, 1) != 1)
		goto done;
	if (BN_cmp(y, BN_value_one()) <= 0 || BN_cmp(y, pm1) >= 0) {
		log_warn("ike_dh_derive: MODP peer value out of range 1 < y < p-1");
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
	uint8_t		 pt[65];
	char		 gname[] = "P-256";
	OSSL_PARAM	 par[3];
	EVP_PKEY_CTX	*c = NULL, *chk = NULL;
	EVP_PKEY	*peer = NULL;

	pt[0] = 0x04;
	memcpy(pt + 1, p, len);
	par[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    gname, 0);
	par[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    pt, sizeof(pt));
	par[2] = OSSL_PARAM_construct_end();
	if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &peer, EVP_PKEY_PUBLIC_KEY, par) != 1 ||
	    (chk = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) == NULL ||
	    EVP_PKEY_public_check(chk) != 1) {
		log_warn("ike_dh_derive: ECP-256 peer value is not a point on the curve");
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
	case IKE_KE_MODP2048:
		return peer_modp(dh->key, p, len);
	case IKE_KE_ECP256:
		return peer_ecp(p, len);
	case IKE_KE_CURVE25519:
		return EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, p,
		    len);
	default:
		return NULL;
	}
}

int
ike_dh_derive(struct ike_dh *dh, const uint8_t *peer, size_t len,
    struct buf *secret)
{
	EVP_PKEY	*pk = NULL;
	EVP_PKEY_CTX	*c = NULL;
	size_t		 slen = 0, want = dh->group == IKE_KE_MODP2048 ? 256 : 32;
	uint8_t		*d = NULL;
	int		 ok;

	if (len != ike_dh_publen(dh->group)) {
		log_warn("%s: %s peer value of %zu bytes, want %zu", __func__,
		    ike_xf_name(IKE_XF_KE, dh->group), len,
		    ike_dh_publen(dh->group));
		return -1;
	}
	ok = (pk = peer_key(dh, peer, len)) != NULL &&
	    (c = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL)) != NULL &&
	    EVP_PKEY_derive_init(c) == 1 &&
	    (dh->group != IKE_KE_MODP2048 || EVP_PKEY_CTX_set_dh_pad(c, 1) == 1) &&
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

/* ---- AUTH ---- */

int
ike_auth_octets(const uint8_t *msg, size_t msg_len, const uint8_t *nonce,
    size_t nonce_len, const struct ike_key *sk_p, const uint8_t *id_body,
    size_t id_len, struct buf *out)
{
	uint8_t	mac[IKE_PRF_LEN];

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
	static const char	pad[] = "Key Pad for IKEv2";
	uint8_t			k[IKE_PRF_LEN];
	int			rc;

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
	uint8_t	want[IKE_PRF_LEN];
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
static const uint8_t ecdsa_sha256_algid[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
};

int
ike_auth_sig_sign(EVP_PKEY *key, const uint8_t *octets, size_t olen,
    struct buf *out)
{
	EVP_MD_CTX	*c = NULL;
	uint8_t		*d;
	size_t		 slen = 0, start = out->len;
	int		 ok;

	ok = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    buf_add_u8(out, sizeof(ecdsa_sha256_algid)) == 0 &&
	    buf_add(out, ecdsa_sha256_algid, sizeof(ecdsa_sha256_algid)) == 0 &&
	    (c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, key,
	    NULL) == 1 &&
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
	EVP_PKEY	*pk;
	EVP_MD_CTX	*c = NULL;
	size_t		 hl = 1 + sizeof(ecdsa_sha256_algid);
	int		 ok;

	if (alen <= hl || auth[0] != sizeof(ecdsa_sha256_algid) ||
	    memcmp(auth + 1, ecdsa_sha256_algid, auth[0]) != 0) {
		log_warn("%s: AUTH is not ecdsa-with-SHA256 (%zu bytes)",
		    __func__, alen);
		return -1;
	}
	ok = (pk = X509_get0_pubkey(cert)) != NULL &&
	    EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    (c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, pk,
	    NULL) == 1 &&
	    EVP_DigestVerify(c, auth + hl, alen - hl, octets, olen) == 1;
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	if (!ok)
		log_warn("%s: ECDSA signature does not verify", __func__);
	return ok ? 0 : -1;
}

/* ---- certificates ---- */

X509 *
ike_cert_load(const char *path)
{
	FILE	*f;
	X509	*x = NULL;

	if ((f = fopen(path, "r")) != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (x == NULL)
		log_err("%s: cannot read a PEM certificate from %s", __func__,
		    path);
	return x;
}

EVP_PKEY *
ike_key_load(const char *path)
{
	FILE		*f;
	EVP_PKEY	*k = NULL;

	if ((f = fopen(path, "r")) != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (k == NULL)
		log_err("%s: cannot read a PEM private key from %s", __func__,
		    path);
	return k;
}

X509_STORE *
ike_ca_load(const char *path)
{
	X509_STORE	*s;

	if ((s = X509_STORE_new()) == NULL)
		return NULL;
	if (X509_STORE_load_file(s, path) != 1) {
		log_err("%s: cannot load CA certificates from %s", __func__,
		    path);
		X509_STORE_free(s);
		return NULL;
	}
	return s;
}

int
ike_cert_der(X509 *cert, struct buf *out)
{
	int	 n = i2d_X509(cert, NULL);
	uint8_t	*d;

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
	const unsigned char	*q = p;
	X509			*x = NULL;

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
	X509_STORE_CTX	*c;
	int		 ok, err = 0;
	char		 dn[256] = "?";

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

int
ike_random(uint8_t *p, size_t len)
{
	if (len > INT_MAX || RAND_bytes(p, (int)len) != 1) {
		log_err("%s: RAND_bytes failed", __func__);
		return -1;
	}
	return 0;
}

/*
 * IKEv2 cryptography on OpenSSL 3 EVP: keys, prf/prf+, the IKE SA and
 * Child SA key derivations, RFC 8784 PPK mixing, random bytes. Key
 * exchange is in ike/crypto_ke.c, AUTH and certificates in
 * ike/crypto_auth.c (one API: ike/crypto.h).
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

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
	const uint8_t *p;
	size_t	       len;
};

static EVP_MAC	     *hmac_mac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

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
	static const uint8_t nokey[1];
	char		     md[] = "SHA256";
	OSSL_PARAM	     par[2];
	EVP_MAC_CTX	    *c = NULL;
	size_t		     olen = 0;
	int		     ok;

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
	struct iov v = { data, dlen };

	return hmac_v(key, klen, &v, 1, out);
}

int
ike_prf_plus(const uint8_t *key, size_t klen, const uint8_t *seed, size_t slen,
    uint8_t *out, size_t outlen)
{
	uint8_t	   t[IKE_PRF_LEN], n = 1;
	struct iov v[3];
	size_t	   off = 0, take;
	int	   rc = 0;

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
			take =
			    outlen - off < sizeof(t) ? outlen - off : sizeof(t);
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
ike_skeyseed(const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
    const uint8_t *gir, size_t gir_len, uint8_t skeyseed[static IKE_PRF_LEN])
{
	uint8_t key[2 * IKE_NONCE_MAX];

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
	struct iov v[3] = { { gir, gir_len }, { ni, ni_len }, { nr, nr_len } };

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
    const uint8_t spi_i[static 8], const uint8_t spi_r[static 8], uint16_t encr,
    uint16_t encr_bits, uint16_t integ, struct ike_sa_keys *k)
{
	uint8_t seed[2 * IKE_NONCE_MAX + 16], *km = NULL;
	size_t	elen, alen, total, off = 0;
	int	rc = -1;

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
	    ike_prf_plus(skeyseed, IKE_PRF_LEN, seed, ni_len + nr_len + 16, km,
		total) == -1)
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
	struct buf seed;
	uint8_t	  *km = NULL;
	size_t	   elen, alen, total = 0, off = 0;
	int	   rc = -1;

	buf_init(&seed, 4096);
	if (ike_encr_keylen(encr, encr_bits, &elen) == -1 ||
	    ike_integ_keylen(integ, &alen) == -1)
		goto done;
	total = 2 * (elen + alen);
	if ((gir != NULL && buf_add(&seed, gir, gir_len) == -1) ||
	    buf_add(&seed, ni, ni_len) == -1 ||
	    buf_add(&seed, nr, nr_len) == -1) {
		log_err("%s: seed too long", __func__);
		goto done;
	}
	if ((km = sec_alloc(total)) == NULL ||
	    ike_prf_plus(sk_d->k, sk_d->len, seed.data, seed.len, km, total) ==
		-1)
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

void
ike_child_keys_swap(struct ike_child_keys *k)
{
	struct ike_child_keys t = *k;

	k->ei = t.er;
	k->ai = t.ar;
	k->er = t.ei;
	k->ar = t.ai;
	OPENSSL_cleanse(&t, sizeof(t));
}

static int
ppk_one(const uint8_t *ppk, size_t ppk_len, const struct ike_key *in,
    struct ike_key *out)
{
	uint8_t t[IKE_KEY_MAX];
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

int
ike_random(uint8_t *p, size_t len)
{
	if (len > INT_MAX || RAND_bytes(p, (int)len) != 1) {
		log_err("%s: RAND_bytes failed", __func__);
		return -1;
	}
	return 0;
}

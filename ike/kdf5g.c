/* TS 33.220 B.2 KDF and the TS 33.501 Annex A key derivations. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "ike/kdf5g.h"
#include "ike/nas.h"

#define KDF5G_S_MAX 256 /* longest S we build: SNN + RAND + RES is ~90 */

int
kdf5g(const uint8_t *key, size_t keylen, uint8_t fc,
    const struct kdf5g_param *params, size_t nparams, uint8_t out[static 32])
{
	uint8_t	     s[KDF5G_S_MAX];
	size_t	     n = 0;
	unsigned int olen = 0;
	int	     rc = -1;

	if (key == NULL || keylen == 0 || nparams > KDF5G_MAX_PARAMS) {
		log_err("%s: bad arguments (%zu params)", __func__, nparams);
		return -1;
	}
	s[n++] = fc;
	for (size_t i = 0; i < nparams; i++) {
		size_t l = params[i].len;

		if (l > 0xffff || l + 2 > sizeof(s) - n ||
		    (l > 0 && params[i].p == NULL)) {
			log_err("%s: parameter P%zu too long (%zu)", __func__,
			    i, l);
			goto done;
		}
		if (l > 0)
			memcpy(s + n, params[i].p, l);
		n += l;
		s[n++] = (uint8_t)(l >> 8);
		s[n++] = (uint8_t)l;
	}
	if (HMAC(EVP_sha256(), key, (int)keylen, s, n, out, &olen) == NULL ||
	    olen != 32) {
		log_err("%s: HMAC-SHA-256 failed", __func__);
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(s, sizeof(s));
	return rc;
}

int
kdf5g_snn(const char *mcc, const char *mnc, char *out, size_t outlen)
{
	int n;

	if (!nas_digits(mcc, 3, 3) || !nas_digits(mnc, 2, 3)) {
		log_err("%s: bad PLMN \"%s\"/\"%s\"", __func__, mcc, mnc);
		return -1;
	}
	n = snprintf(out, outlen, "5G:mnc%s%s.mcc%s.3gppnetwork.org",
	    strlen(mnc) == 2 ? "0" : "", mnc, mcc);
	if (n < 0 || (size_t)n >= outlen) {
		log_err("%s: output too small", __func__);
		return -1;
	}
	return 0;
}

/* CK || IK as one 32-byte key. */
static void
ckik(const uint8_t ck[static 16], const uint8_t ik[static 16], uint8_t k[32])
{
	memcpy(k, ck, 16);
	memcpy(k + 16, ik, 16);
}

int
kdf5g_kausf(const uint8_t ck[static 16], const uint8_t ik[static 16],
    const char *snn, const uint8_t sqn_xor_ak[static 6],
    uint8_t kausf[static 32])
{
	uint8_t		   k[32];
	struct kdf5g_param p[2] = {
		{ (const uint8_t *)snn, strlen(snn) },
		{ sqn_xor_ak, 6 },
	};
	int rc;

	ckik(ck, ik, k);
	rc = kdf5g(k, sizeof(k), KDF5G_FC_KAUSF, p, 2, kausf);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int
kdf5g_res_star(const uint8_t ck[static 16], const uint8_t ik[static 16],
    const char *snn, const uint8_t rand[static 16], const uint8_t *res,
    size_t reslen, uint8_t res_star[static 16])
{
	uint8_t		   k[32], out[32];
	struct kdf5g_param p[3] = {
		{ (const uint8_t *)snn, strlen(snn) },
		{ rand, 16 },
		{ res, reslen },
	};
	int rc;

	if (reslen < 4 || reslen > 16) { /* RES is 32..128 bits */
		log_err("%s: bad RES length %zu", __func__, reslen);
		return -1;
	}
	ckik(ck, ik, k);
	if ((rc = kdf5g(k, sizeof(k), KDF5G_FC_RES_STAR, p, 3, out)) == 0)
		memcpy(res_star, out + 16, 16);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(out, sizeof(out));
	return rc;
}

int
kdf5g_hres_star(const uint8_t rand[static 16],
    const uint8_t res_star[static 16], uint8_t hres_star[static 16])
{
	uint8_t	     in[32], md[SHA256_DIGEST_LENGTH];
	unsigned int mdlen = 0;
	int	     rc = -1;

	memcpy(in, rand, 16);
	memcpy(in + 16, res_star, 16);
	if (EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md)) {
		log_err("%s: SHA-256 failed", __func__);
		goto done;
	}
	memcpy(hres_star, md + 16, 16);
	rc = 0;
done:
	OPENSSL_cleanse(in, sizeof(in));
	OPENSSL_cleanse(md, sizeof(md));
	return rc;
}

int
kdf5g_kseaf(const uint8_t kausf[static 32], const char *snn,
    uint8_t kseaf[static 32])
{
	struct kdf5g_param p[1] = { { (const uint8_t *)snn, strlen(snn) } };

	return kdf5g(kausf, 32, KDF5G_FC_KSEAF, p, 1, kseaf);
}

int
kdf5g_kamf(const uint8_t kseaf[static 32], const char *supi,
    const uint8_t *abba, size_t abbalen, uint8_t kamf[static 32])
{
	struct kdf5g_param p[2];

	if (strncmp(supi, "imsi-", 5) == 0)
		supi += 5;
	if (!nas_digits(supi, 5, 15) || abbalen < 2) {
		log_err("%s: bad SUPI or ABBA (%zu bytes)", __func__, abbalen);
		return -1;
	}
	p[0].p = (const uint8_t *)supi;
	p[0].len = strlen(supi);
	p[1].p = abba;
	p[1].len = abbalen;
	return kdf5g(kseaf, 32, KDF5G_FC_KAMF, p, 2, kamf);
}

int
kdf5g_kn3iwf(const uint8_t kamf[static 32], uint32_t ul_count,
    uint8_t kn3iwf[static 32])
{
	uint8_t cnt[4] = {
		(uint8_t)(ul_count >> 24),
		(uint8_t)(ul_count >> 16),
		(uint8_t)(ul_count >> 8),
		(uint8_t)ul_count,
	};
	uint8_t		   at = KDF5G_ACCESS_NON3GPP;
	struct kdf5g_param p[2] = { { cnt, 4 }, { &at, 1 } };

	return kdf5g(kamf, 32, KDF5G_FC_KGNB_KN3IWF, p, 2, kn3iwf);
}

int
kdf5g_nas_key(const uint8_t kamf[static 32], uint8_t alg_type, uint8_t alg_id,
    uint8_t key[static 16])
{
	uint8_t		   out[32];
	struct kdf5g_param p[2] = { { &alg_type, 1 }, { &alg_id, 1 } };
	int		   rc;

	if ((rc = kdf5g(kamf, 32, KDF5G_FC_NAS_KEY, p, 2, out)) == 0)
		memcpy(key, out + 16, 16);
	OPENSSL_cleanse(out, sizeof(out));
	return rc;
}

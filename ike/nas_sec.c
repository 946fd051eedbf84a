/*
 * 5G NAS security (TS 24.501 4.4, TS 33.501 annex D): 128-NIA2
 * (AES-CMAC) or NIA0 for integrity, 128-NEA2 (AES-128-CTR) or NEA0 for
 * ciphering, and the protected PDU around a plain 5GMM message.
 */
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/log.h"
#include "ike/nas.h"

/* 128-NIA2 and 128-NEA2 start from the same 8 bytes (33.401 B.1.3, B.2.3). */
static void
nas_iv8(uint32_t count, uint8_t bearer, uint8_t dir, uint8_t iv[static 8])
{
	iv[0] = (uint8_t)(count >> 24);
	iv[1] = (uint8_t)(count >> 16);
	iv[2] = (uint8_t)(count >> 8);
	iv[3] = (uint8_t)count;
	iv[4] = (uint8_t)((bearer & 0x1f) << 3 | (dir & 1) << 2);
	iv[5] = iv[6] = iv[7] = 0;
}

int
nas_nia2(const uint8_t key[static 16], uint32_t count, uint8_t bearer,
    uint8_t dir, const uint8_t *msg, size_t n, uint8_t mac[static 4])
{
	EVP_MAC	    *mac_alg = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM   params[2];
	uint8_t	     hdr[8], t[16];
	size_t	     tlen = 0;
	int	     rc = -1;

	nas_iv8(count, bearer, dir, hdr);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
	    (char *)(uintptr_t) "AES-128-CBC", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac_alg = EVP_MAC_fetch(NULL, "CMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac_alg)) == NULL ||
	    EVP_MAC_init(ctx, key, 16, params) != 1 ||
	    EVP_MAC_update(ctx, hdr, sizeof(hdr)) != 1 ||
	    (n > 0 && EVP_MAC_update(ctx, msg, n) != 1) ||
	    EVP_MAC_final(ctx, t, &tlen, sizeof(t)) != 1 || tlen != 16) {
		log_err("%s: AES-CMAC failed", __func__);
		goto done;
	}
	memcpy(mac, t, 4);
	rc = 0;
done:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac_alg);
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

int
nas_nea2(const uint8_t key[static 16], uint32_t count, uint8_t bearer,
    uint8_t dir, const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t		iv[16];
	int		len, rc = -1;

	memset(iv, 0, sizeof(iv));
	nas_iv8(count, bearer, dir, iv);
	if (n > INT_MAX)
		return -1;
	if ((ctx = EVP_CIPHER_CTX_new()) != NULL &&
	    EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
	    EVP_EncryptUpdate(ctx, out, &len, in, (int)n) == 1 &&
	    (size_t)len == n)
		rc = 0;
	else
		log_err("%s: AES-128-CTR failed", __func__);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* NEA0 or NEA2 of n bytes, in place allowed (in == out). */
static int
nas_cipher(const struct nas_sec *s, uint32_t count, bool downlink,
    const uint8_t *in, size_t n, uint8_t *out)
{
	switch (s->ea) {
	case NAS_ALG_EA0: memmove(out, in, n); return 0;
	case NAS_ALG_EA2:
		return nas_nea2(s->kenc, count, s->bearer,
		    (uint8_t)(downlink ? 1 : 0), in, n, out);
	}
	log_err("%s: unsupported 5G-EA%u", __func__, s->ea);
	return -1;
}

static bool
sht_ciphered(uint8_t sht)
{
	return sht == NAS_SHT_INT_ENC || sht == NAS_SHT_INT_ENC_NEW;
}

/* MAC over SQN || plain message (24.501 4.4.3.3): p points at the SQN. */
static int
nas_mac(const struct nas_sec *s, uint32_t count, bool downlink,
    const uint8_t *p, size_t n, uint8_t mac[static 4])
{
	switch (s->ia) {
	case NAS_ALG_IA0: memset(mac, 0, 4); return 0;
	case NAS_ALG_IA2:
		return nas_nia2(s->kint, count, s->bearer,
		    (uint8_t)(downlink ? 1 : 0), p, n, mac);
	}
	log_err("%s: unsupported 5G-IA%u", __func__, s->ia);
	return -1;
}

int
nas_split(const uint8_t *p, size_t n, uint8_t *sht, const uint8_t **plain,
    size_t *plain_len)
{
	if (n < 3 || p[0] != NAS_EPD_5GMM)
		return -1;
	*sht = p[1] & 0x0f;
	if (*sht == NAS_SHT_PLAIN) {
		*plain = p;
		*plain_len = n;
		return 0;
	}
	if (*sht > NAS_SHT_INT_ENC_NEW || n < 7 + 3)
		return -1;
	*plain = p + 7;
	*plain_len = n - 7;
	return 0;
}

int
nas_open(const struct nas_sec *s, bool downlink, const uint8_t *p, size_t n,
    uint8_t *sht, uint8_t out[static NAS_MSG_MAX], size_t *outlen)
{
	const uint8_t *plain;
	size_t	       plen;

	if (nas_split(p, n, sht, &plain, &plen) == -1 || plen > NAS_MSG_MAX)
		return -1;
	*outlen = plen;
	if (s == NULL || !s->active || !sht_ciphered(*sht)) {
		memcpy(out, plain, plen);
		return 0;
	}
	return nas_cipher(s, downlink ? s->dl_count : s->ul_count, downlink,
	    plain, plen, out);
}

int
nas_protect(struct nas_sec *s, uint8_t sht, bool downlink, const uint8_t *plain,
    size_t n, struct buf *out)
{
	uint32_t *cnt = downlink ? &s->dl_count : &s->ul_count;
	uint8_t	 *h;

	if (!s->active || sht < NAS_SHT_INT || sht > NAS_SHT_INT_ENC_NEW ||
	    (s->ea != NAS_ALG_EA0 && s->ea != NAS_ALG_EA2) || n < 3 ||
	    n > NAS_MSG_MAX) {
		log_err("%s: cannot protect (SHT %u, EA%u)", __func__, sht,
		    s->ea);
		return -1;
	}
	if ((h = buf_reserve(out, 7 + n)) == NULL)
		return -1;
	h[0] = NAS_EPD_5GMM;
	h[1] = sht;
	h[6] = (uint8_t)*cnt; /* NAS sequence number */
	if (sht_ciphered(sht)) {
		if (nas_cipher(s, *cnt, downlink, plain, n, h + 7) == -1)
			return -1;
	} else
		memcpy(h + 7, plain, n);
	/* the MAC covers the message as sent: ciphered (33.501 6.4.3) */
	if (nas_mac(s, *cnt, downlink, h + 6, n + 1, h + 2) == -1)
		return -1;
	(*cnt)++;
	return 0;
}

int
nas_encode_protected(struct nas_sec *s, uint8_t sht, bool downlink,
    const struct nas_msg *m, struct buf *out)
{
	struct buf plain;
	int	   rc = -1;

	buf_init(&plain, NAS_MSG_MAX);
	if (nas_encode(m, &plain) == 0 &&
	    nas_protect(s, sht, downlink, plain.data, plain.len, out) == 0)
		rc = 0;
	buf_free(&plain);
	return rc;
}

int
nas_verify(struct nas_sec *s, bool downlink, const uint8_t *p, size_t n)
{
	uint32_t *cnt = downlink ? &s->dl_count : &s->ul_count;
	uint8_t	  mac[4];

	if (!s->active || n < 7 + 3 || p[0] != NAS_EPD_5GMM ||
	    (p[1] & 0x0f) < NAS_SHT_INT ||
	    (p[1] & 0x0f) > NAS_SHT_INT_ENC_NEW) {
		log_debug("%s: not a protected 5GMM message", __func__);
		return -1;
	}
	if (p[6] != (uint8_t)*cnt) {
		log_warn("nas: NAS sequence number %u, expected %u", p[6],
		    (unsigned)(uint8_t)*cnt);
		return -1;
	}
	if (nas_mac(s, *cnt, downlink, p + 6, n - 6, mac) == -1)
		return -1;
	if (CRYPTO_memcmp(mac, p + 2, 4) != 0) {
		log_warn("nas: NAS MAC check failed (count %u)", *cnt);
		return -1;
	}
	(*cnt)++;
	return 0;
}

void
nas_sec_wipe(struct nas_sec *s)
{
	if (s != NULL)
		OPENSSL_cleanse(s, sizeof(*s));
}

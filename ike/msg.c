/*
 * IKEv2 messages: header, assembly, SK payload encryption/decryption
 * (AES-CBC + HMAC-SHA2-256-128, AES-GCM-16 per RFC 5282).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"
#include "ike/msg.h"
#include "ike/pld.h"

#define CBC_IV_LEN   16
#define CBC_BLOCK    16
#define GCM_IV_LEN   8
#define GCM_SALT_LEN 4

/* ---- header ---- */

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
ike_hdr_decode(const uint8_t *p, size_t len, struct ike_hdr *h)
{
	if (len < IKE_HDR_LEN) {
		log_warn("%s: datagram of %zu bytes is shorter than a header",
		    __func__, len);
		return -1;
	}
	memcpy(h->spi_i, p + IKE_HDR_OFF_SPI_I, IKE_SPI_LEN);
	memcpy(h->spi_r, p + IKE_HDR_OFF_SPI_R, IKE_SPI_LEN);
	h->next = p[IKE_HDR_OFF_NEXT];
	h->version = p[IKE_HDR_OFF_VERSION];
	h->exchange = p[IKE_HDR_OFF_EXCHANGE];
	h->flags = p[IKE_HDR_OFF_FLAGS];
	h->msgid = get_u32(p + IKE_HDR_OFF_MSGID);
	h->length = get_u32(p + IKE_HDR_OFF_LENGTH);
	if ((h->version >> 4) != (IKE_VERSION >> 4)) {
		log_warn("%s: major version %u, want 2", __func__,
		    h->version >> 4);
		return -1;
	}
	if (h->length != len) {
		log_warn("%s: length field %u, datagram %zu bytes", __func__,
		    h->length, len);
		return -1;
	}
	return 0;
}

void
ike_hdr_encode(const struct ike_hdr *h, uint8_t out[static IKE_HDR_LEN])
{
	memcpy(out + IKE_HDR_OFF_SPI_I, h->spi_i, IKE_SPI_LEN);
	memcpy(out + IKE_HDR_OFF_SPI_R, h->spi_r, IKE_SPI_LEN);
	out[IKE_HDR_OFF_NEXT] = h->next;
	out[IKE_HDR_OFF_VERSION] = h->version ? h->version : IKE_VERSION;
	out[IKE_HDR_OFF_EXCHANGE] = h->exchange;
	out[IKE_HDR_OFF_FLAGS] = h->flags;
	put_u32(out + IKE_HDR_OFF_MSGID, h->msgid);
	put_u32(out + IKE_HDR_OFF_LENGTH, h->length);
}

int
ike_msg_strip_marker(const uint8_t **p, size_t *len)
{
	static const uint8_t zero[IKE_NONESP_MARKER_LEN];

	if (*len < IKE_NONESP_MARKER_LEN ||
	    memcmp(*p, zero, IKE_NONESP_MARKER_LEN) != 0)
		return -1;
	*p += IKE_NONESP_MARKER_LEN;
	*len -= IKE_NONESP_MARKER_LEN;
	return 0;
}

int
ike_msg_add_marker(struct buf *out)
{
	static const uint8_t zero[IKE_NONESP_MARKER_LEN];

	return buf_add(out, zero, sizeof(zero));
}

/* ---- plain messages ---- */

int
ike_msg_begin(struct buf *out, const struct ike_hdr *h, struct ike_chain *c,
    size_t *start)
{
	struct ike_hdr hh = *h;
	uint8_t	      *d;

	*start = out->len;
	if ((d = buf_reserve(out, IKE_HDR_LEN)) == NULL) {
		log_err("%s: no room for the IKE header", __func__);
		return -1;
	}
	hh.next = IKE_PL_NONE;
	hh.length = IKE_HDR_LEN;
	ike_hdr_encode(&hh, d);
	ike_chain_init(c, out, *start + IKE_HDR_OFF_NEXT);
	return 0;
}

int
ike_msg_end(struct buf *out, size_t start)
{
	size_t len = out->len - start;

	if (len > IKE_MSG_MAX) {
		log_err("%s: message of %zu bytes too long", __func__, len);
		return -1;
	}
	put_u32(out->data + start + IKE_HDR_OFF_LENGTH, (uint32_t)len);
	return 0;
}

/* ---- SK payload ---- */

/* Checks the keys and picks the cipher; *ivlen is the on-wire IV length. */
static const EVP_CIPHER *
sk_cipher(const struct ike_sk_ctx *k, size_t *ivlen, size_t *keylen)
{
	size_t kl = k->ekey != NULL ? k->ekey->len : 0;

	if (k->encr == IKE_ENCR_AES_CBC && k->akey != NULL &&
	    k->akey->len > 0 && k->integ == IKE_INTEG_HMAC_SHA2_256_128) {
		*ivlen = CBC_IV_LEN;
		*keylen = kl;
		if (kl == 16 || kl == 24 || kl == 32)
			return kl == 16 ? EVP_aes_128_cbc() :
			    kl == 24	? EVP_aes_192_cbc() :
					  EVP_aes_256_cbc();
	} else if (k->encr == IKE_ENCR_AES_GCM_16) {
		*ivlen = GCM_IV_LEN;
		*keylen = kl - GCM_SALT_LEN;
		if (kl == 20 || kl == 28 || kl == 36)
			return kl == 20 ? EVP_aes_128_gcm() :
			    kl == 28	? EVP_aes_192_gcm() :
					  EVP_aes_256_gcm();
	}
	log_err("sk: unsupported keys: %s, key %zu bytes, integ %u",
	    ike_xf_name(IKE_XF_ENCR, k->encr), kl, k->integ);
	return NULL;
}

static int
hmac128(const struct ike_key *akey, const uint8_t *p, size_t len,
    uint8_t icv[static IKE_ICV_LEN])
{
	uint8_t mac[IKE_PRF_LEN];
	int	rc;

	rc = ike_prf(akey->k, akey->len, p, len, mac);
	memcpy(icv, mac, IKE_ICV_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/*
 * One AES pass in place over p[0..len). GCM: nonce = salt | iv, aad and
 * tag (set before decrypting, read after encrypting).
 */
static int
aes_run(const EVP_CIPHER *ciph, const struct ike_key *ek, size_t keylen,
    const uint8_t *iv, const uint8_t *aad, size_t aadlen, uint8_t *p,
    size_t len, uint8_t *tag, int enc)
{
	EVP_CIPHER_CTX *c;
	uint8_t		nonce[GCM_SALT_LEN + GCM_IV_LEN];
	int		gcm = EVP_CIPHER_get_mode(ciph) == EVP_CIPH_GCM_MODE;
	int		ok, n = 0, f = 0;

	if (gcm) {
		memcpy(nonce, ek->k + keylen, GCM_SALT_LEN);
		memcpy(nonce + GCM_SALT_LEN, iv, GCM_IV_LEN);
		iv = nonce;
	}
	ok = len <= INT32_MAX && (c = EVP_CIPHER_CTX_new()) != NULL;
	if (!ok)
		return -1;
	ok = EVP_CipherInit_ex(c, ciph, NULL, NULL, NULL, enc) == 1 &&
	    EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	    (!gcm ||
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, sizeof(nonce),
		    NULL) == 1) &&
	    EVP_CipherInit_ex(c, NULL, NULL, ek->k, iv, enc) == 1 &&
	    (!gcm || EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
	    EVP_CipherUpdate(c, p, &n, p, (int)len) == 1 &&
	    (!gcm || enc ||
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, IKE_ICV_LEN,
		    tag) == 1) &&
	    EVP_CipherFinal_ex(c, p + n, &f) == 1 && (size_t)(n + f) == len &&
	    (!gcm || !enc ||
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, IKE_ICV_LEN,
		    tag) == 1);
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return ok ? 0 : -1;
}

/* Writes header | SK header | IV and the plaintext to be encrypted. */
static int
seal_layout(struct buf *out, const struct ike_hdr *h, uint8_t first,
    const uint8_t *inner, size_t inner_len, size_t ivlen, size_t padlen)
{
	struct ike_hdr hh = *h;
	size_t	       ptlen = inner_len + padlen + 1;
	size_t	       total =
	    IKE_HDR_LEN + IKE_GEN_HDR_LEN + ivlen + ptlen + IKE_ICV_LEN;
	uint8_t *d;

	if (total > IKE_MSG_MAX ||
	    (d = buf_reserve(out, total - IKE_ICV_LEN)) == NULL) {
		log_err("ike_msg_seal: message of %zu bytes does not fit",
		    total);
		return -1;
	}
	hh.next = IKE_PL_SK;
	hh.length = (uint32_t)total;
	ike_hdr_encode(&hh, d);
	d += IKE_HDR_LEN;
	d[0] = first;
	d[1] = 0;
	d[2] = (uint8_t)((total - IKE_HDR_LEN) >> 8);
	d[3] = (uint8_t)(total - IKE_HDR_LEN);
	d += IKE_GEN_HDR_LEN;
	if (ike_random(d, ivlen) == -1)
		return -1;
	d += ivlen;
	if (inner_len)
		memcpy(d, inner, inner_len);
	memset(d + inner_len, 0, padlen);
	d[inner_len + padlen] = (uint8_t)padlen;
	return 0;
}

int
ike_msg_seal(struct buf *out, const struct ike_hdr *h, uint8_t first,
    const uint8_t *inner, size_t inner_len, const struct ike_sk_ctx *k)
{
	const EVP_CIPHER *ciph;
	size_t		  ivlen, keylen, padlen, start = out->len;
	size_t		  aadlen, ptlen;
	uint8_t		  icv[IKE_ICV_LEN], *pt;
	int		  cbc;

	if ((ciph = sk_cipher(k, &ivlen, &keylen)) == NULL)
		return -1;
	cbc = k->encr == IKE_ENCR_AES_CBC;
	padlen =
	    cbc ? (CBC_BLOCK - (inner_len + 1) % CBC_BLOCK) % CBC_BLOCK : 0;
	if (seal_layout(out, h, first, inner, inner_len, ivlen, padlen) == -1)
		goto fail;
	aadlen = IKE_HDR_LEN + IKE_GEN_HDR_LEN;
	ptlen = inner_len + padlen + 1;
	pt = out->data + start + aadlen + ivlen;
	if (aes_run(ciph, k->ekey, keylen, pt - ivlen, out->data + start,
		aadlen, pt, ptlen, icv, 1) == -1 ||
	    (cbc &&
		hmac128(k->akey, out->data + start, out->len - start, icv) ==
		    -1) ||
	    buf_add(out, icv, sizeof(icv)) == -1) {
		log_err("%s: encryption failed", __func__);
		goto fail;
	}
	return 0;
fail:
	if (out->len > start) {
		OPENSSL_cleanse(out->data + start, out->len - start);
		out->len = start;
	}
	return -1;
}

/* Removes padding from the plaintext just appended (ptlen bytes). */
static int
strip_padding(struct buf *plain, size_t ptlen)
{
	uint8_t padlen = plain->data[plain->len - 1];

	if ((size_t)padlen + 1 > ptlen) {
		log_warn("ike_msg_open: pad length %u exceeds %zu bytes",
		    padlen, ptlen);
		return -1;
	}
	plain->len -= (size_t)padlen + 1;
	return 0;
}

int
ike_msg_open(const uint8_t *msg, size_t len, const struct ike_pld *outer,
    const struct ike_sk_ctx *k, struct buf *plain)
{
	const EVP_CIPHER       *ciph;
	const struct ike_bytes *b = &outer->sk.body;
	size_t	ivlen, keylen, aadlen, ctlen, start = plain->len;
	uint8_t icv[IKE_ICV_LEN], tag[IKE_ICV_LEN], *ct;
	int	cbc;

	if ((ciph = sk_cipher(k, &ivlen, &keylen)) == NULL)
		return -1;
	cbc = k->encr == IKE_ENCR_AES_CBC;
	if (!IKE_PLD_HAS(outer, IKE_PL_SK) || b->p < msg || b->len > len ||
	    b->p + b->len != msg + len || b->len < ivlen + 1 + IKE_ICV_LEN ||
	    (cbc && (b->len - ivlen - IKE_ICV_LEN) % CBC_BLOCK != 0)) {
		log_warn("ike_msg_open: SK payload of %zu bytes malformed",
		    b->len);
		return -1;
	}
	aadlen = (size_t)(b->p - msg);
	ctlen = b->len - ivlen - IKE_ICV_LEN;
	memcpy(tag, b->p + b->len - IKE_ICV_LEN, IKE_ICV_LEN);
	if (cbc &&
	    (hmac128(k->akey, msg, len - IKE_ICV_LEN, icv) == -1 ||
		CRYPTO_memcmp(icv, tag, IKE_ICV_LEN) != 0)) {
		log_warn("ike_msg_open: ICV mismatch");
		return -1;
	}
	if (buf_add(plain, b->p + ivlen, ctlen) == -1)
		return -1;
	ct = plain->data + start;
	if (aes_run(ciph, k->ekey, keylen, b->p, msg, aadlen, ct, ctlen, tag,
		0) == -1 ||
	    strip_padding(plain, ctlen) == -1) {
		if (!cbc)
			log_warn(
			    "ike_msg_open: GCM tag mismatch or bad padding");
		OPENSSL_cleanse(ct, ctlen);
		plain->len = start;
		return -1;
	}
	return 0;
}

/* ---- receiving ---- */

static int
parse_protected(const uint8_t *msg, size_t len, const struct ike_sk_ctx *k,
    struct ike_msg *m)
{
	struct ike_pld *outer;
	int		rc = -1;

	if ((outer = malloc(sizeof(*outer))) == NULL)
		return -1;
	if (ike_pld_parse(m->hdr.next, msg + IKE_HDR_LEN, len - IKE_HDR_LEN,
		outer) == -1)
		goto done; /* unauthenticated: drop */
	if (!IKE_PLD_HAS(outer, IKE_PL_SK)) {
		log_warn("ike_msg_parse: %s message without SK payload",
		    ike_exchange_name(m->hdr.exchange));
		goto done;
	}
	if (ike_msg_open(msg, len, outer, k, &m->plain) == -1)
		goto done;
	m->protected = true;
	rc = ike_pld_parse(outer->sk.first, m->plain.data, m->plain.len,
	    &m->pld);
	m->err = m->pld.err;
	m->err_type = m->pld.err_type;
done:
	free(outer);
	return rc;
}

int
ike_msg_parse(const uint8_t *msg, size_t len, const struct ike_sk_ctx *k,
    struct ike_msg *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->plain, IKE_MSG_MAX);
	if (ike_hdr_decode(msg, len, &m->hdr) == -1)
		return -1;
	if (k != NULL)
		return parse_protected(msg, len, k, m);
	if (ike_pld_parse(m->hdr.next, msg + IKE_HDR_LEN, len - IKE_HDR_LEN,
		&m->pld) == -1) {
		m->err = m->pld.err;
		m->err_type = m->pld.err_type;
		return -1;
	}
	return 0;
}

void
ike_msg_free(struct ike_msg *m)
{
	if (m == NULL)
		return;
	buf_free(&m->plain);
	OPENSSL_cleanse(&m->pld, sizeof(m->pld));
}

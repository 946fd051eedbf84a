/* MILENAGE f1, f1*, f2-f5, f5* (3GPP TS 35.206 4.1) on AES-128 via EVP. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "ike/milenage.h"

/* Rotation amounts r1..r5 (bytes) and the last byte of constants c1..c5. */
static const unsigned rot_bytes[5] = { 8, 0, 4, 8, 12 };
static const uint8_t  c_last[5] = { 0x00, 0x01, 0x02, 0x04, 0x08 };

static EVP_CIPHER_CTX *
aes_new(const uint8_t k[static 16])
{
	EVP_CIPHER_CTX *c;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		goto fail;
	if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, k, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1) {
		EVP_CIPHER_CTX_free(c);
		goto fail;
	}
	return c;
fail:
	log_err("%s: AES-128 setup failed", __func__);
	return NULL;
}

static int
aes_block(EVP_CIPHER_CTX *c, const uint8_t in[static 16],
    uint8_t out[static 16])
{
	int n = 0;

	if (EVP_EncryptUpdate(c, out, &n, in, 16) != 1 || n != 16) {
		log_err("%s: AES-128 failed", __func__);
		return -1;
	}
	return 0;
}

int
milenage_opc(const uint8_t k[static 16], const uint8_t op[static 16],
    uint8_t opc[static 16])
{
	EVP_CIPHER_CTX *c;
	int		rc;

	if ((c = aes_new(k)) == NULL)
		return -1;
	rc = aes_block(c, op, opc);
	EVP_CIPHER_CTX_free(c);
	for (int i = 0; i < 16; i++)
		opc[i] ^= op[i];
	return rc;
}

/* TEMP = E_K(RAND xor OPc). */
static int
temp_block(EVP_CIPHER_CTX *c, const uint8_t opc[static 16],
    const uint8_t rand[static 16], uint8_t temp[static 16])
{
	uint8_t x[16];
	int	rc;

	for (int i = 0; i < 16; i++)
		x[i] = rand[i] ^ opc[i];
	rc = aes_block(c, x, temp);
	OPENSSL_cleanse(x, sizeof(x));
	return rc;
}

/* OUTi = E_K(rot(in xor OPc, ri) xor ci) xor OPc, i = 1..5. For i = 1 the
 * caller passes in = IN1 and pre = TEMP (added after the rotation). */
static int
out_block(EVP_CIPHER_CTX *c, unsigned i, const uint8_t opc[static 16],
    const uint8_t in[static 16], const uint8_t *pre, uint8_t out[static 16])
{
	uint8_t x[16], y[16];
	int	rc;

	for (unsigned j = 0; j < 16; j++)
		x[(j + 16 - rot_bytes[i - 1]) % 16] = in[j] ^ opc[j];
	x[15] ^= c_last[i - 1];
	if (pre != NULL)
		for (unsigned j = 0; j < 16; j++)
			x[j] ^= pre[j];
	rc = aes_block(c, x, y);
	for (unsigned j = 0; j < 16; j++)
		out[j] = y[j] ^ opc[j];
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(y, sizeof(y));
	return rc;
}

int
milenage_f1(const uint8_t k[static 16], const uint8_t opc[static 16],
    const uint8_t rand[static 16], const uint8_t sqn[static 6],
    const uint8_t amf[static 2], uint8_t mac_a[8], uint8_t mac_s[8])
{
	EVP_CIPHER_CTX *c;
	uint8_t		temp[16], in1[16], out1[16];
	int		rc = -1;

	if ((c = aes_new(k)) == NULL)
		return -1;
	memcpy(in1, sqn, 6);
	memcpy(in1 + 6, amf, 2);
	memcpy(in1 + 8, in1, 8);
	if (temp_block(c, opc, rand, temp) == -1 ||
	    out_block(c, 1, opc, in1, temp, out1) == -1)
		goto done;
	if (mac_a != NULL)
		memcpy(mac_a, out1, 8);
	if (mac_s != NULL)
		memcpy(mac_s, out1 + 8, 8);
	rc = 0;
done:
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(temp, sizeof(temp));
	OPENSSL_cleanse(in1, sizeof(in1));
	OPENSSL_cleanse(out1, sizeof(out1));
	return rc;
}

int
milenage_f2345(const uint8_t k[static 16], const uint8_t opc[static 16],
    const uint8_t rand[static 16], uint8_t res[8], uint8_t ck[16],
    uint8_t ik[16], uint8_t ak[6], uint8_t ak_s[6])
{
	EVP_CIPHER_CTX *c;
	uint8_t		temp[16], out[16];
	int		rc = -1;

	if ((c = aes_new(k)) == NULL)
		return -1;
	if (temp_block(c, opc, rand, temp) == -1)
		goto done;
	if (res != NULL || ak != NULL) {
		if (out_block(c, 2, opc, temp, NULL, out) == -1)
			goto done;
		if (ak != NULL)
			memcpy(ak, out, 6);
		if (res != NULL)
			memcpy(res, out + 8, 8);
	}
	if (ck != NULL && out_block(c, 3, opc, temp, NULL, ck) == -1)
		goto done;
	if (ik != NULL && out_block(c, 4, opc, temp, NULL, ik) == -1)
		goto done;
	if (ak_s != NULL) {
		if (out_block(c, 5, opc, temp, NULL, out) == -1)
			goto done;
		memcpy(ak_s, out, 6);
	}
	rc = 0;
done:
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(temp, sizeof(temp));
	OPENSSL_cleanse(out, sizeof(out));
	return rc;
}

/*
 * ike/crypto: HMAC-SHA2-256 (RFC 4231), prf+, SKEYSEED and SK_* keys,
 * Child SA KEYMAT, RFC 8784 PPK mixing and PSK AUTH against vectors
 * computed independently with python3's hmac; key exchange groups 14, 19
 * and 31 (equal secrets, bad peer values refused); RFC 7427 ECDSA AUTH
 * and certificate checks with a PKI made in memory.
 *
 * The v_* vectors below were generated with python3 (hmac, hashlib):
 *   prf = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
 *   def prfplus(k, s, n):
 *       out, t, i = b"", b"", 1
 *       while len(out) < n: t = prf(k, t + s + bytes([i])); out += t; i += 1
 *       return out[:n]
 *   ni, nr, gir = b"\x11"*32, b"\x22"*32, b"\x33"*256
 *   spii, spir = bytes(range(1, 9)), bytes(range(0x11, 0x19))
 *   v_prfplus = prfplus(bytes(range(32)), b"seed" * 10, 100)
 *   v_skeyseed = sks = prf(ni + nr, gir)
 *   v_sa_keymat_cbc = km = prfplus(sks, ni + nr + spii + spir, 7 * 32)
 *   v_sa_keymat_gcm = prfplus(sks, ni + nr + spii + spir, 32 + 2 * 36 + 64)
 *   v_child_keymat = prfplus(km[:32], ni + nr, 128)
 *   v_child_keymat_pfs = prfplus(km[:32], gir + ni + nr, 128)
 *   ppk = b"\x44" * 32; v_ppk_d = prfplus(ppk, km[:32], 32)
 *   v_ppk_pi = prfplus(ppk, km[160:192], 32); v_ppk_pr = prfplus(ppk, km[192:224], 32)
 *   v_psk_auth = prf(prf(b"secret", b"Key Pad for IKEv2"), b"octets")
 *   v_rekey_skeyseed = prf(km[:32], gir + ni + nr)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"

/* Test vectors, 12 bytes a line: not reflowed by the formatter. */
/* clang-format off */
static const uint8_t v_prfplus[100] = {
	0x73, 0x97, 0xcf, 0xb8, 0xea, 0x1c, 0x62, 0xe0, 0x5c, 0x63, 0xb6, 0x3d,
	0xd8, 0x6c, 0x27, 0x2b, 0x4e, 0xe7, 0xd2, 0xa5, 0x99, 0x0e, 0xbb, 0x02,
	0x46, 0xf5, 0x16, 0xf0, 0x87, 0x33, 0x70, 0x46, 0x66, 0x12, 0xe8, 0x80,
	0xbf, 0x5e, 0x2b, 0xf2, 0xb3, 0x81, 0xc2, 0x8a, 0x40, 0xd1, 0x32, 0x63,
	0xf0, 0xd4, 0xd7, 0x01, 0xb1, 0x12, 0x18, 0xf0, 0x26, 0x2d, 0xa2, 0xbf,
	0xb1, 0xe3, 0x2c, 0xe2, 0x5e, 0x3a, 0x04, 0x88, 0xcc, 0x84, 0xc7, 0x88,
	0x14, 0x35, 0x70, 0x4e, 0x45, 0x82, 0x19, 0xcf, 0x27, 0x71, 0xd1, 0xd3,
	0xf4, 0x30, 0xba, 0x65, 0x59, 0xa4, 0xf5, 0x82, 0x83, 0x9d, 0x47, 0x81,
	0x67, 0xe7, 0xc0, 0x60,
};
static const uint8_t v_skeyseed[32] = {
	0x9d, 0xdd, 0x0e, 0xc3, 0xe4, 0xac, 0xc5, 0x45, 0xb4, 0xd2, 0xb1, 0x85,
	0x5d, 0x81, 0x34, 0x99, 0xb1, 0x76, 0xd3, 0x8a, 0x3c, 0xe6, 0x96, 0x4b,
	0x0b, 0x67, 0xa6, 0x6b, 0x63, 0xed, 0xc4, 0xdc,
};
static const uint8_t v_sa_keymat_cbc[224] = {
	0xf8, 0x2d, 0x1c, 0x8e, 0xaa, 0xb2, 0x42, 0x93, 0x70, 0xff, 0x16, 0x8a,
	0xdf, 0x24, 0xd3, 0x36, 0x92, 0xdf, 0xeb, 0x0f, 0x1c, 0xc2, 0xcb, 0x42,
	0x37, 0x29, 0x99, 0xb4, 0x65, 0xe2, 0x71, 0x46, 0x98, 0xf4, 0xc4, 0xc3,
	0xbe, 0xcf, 0x39, 0x4d, 0xe9, 0x25, 0xb5, 0xa5, 0x2a, 0x44, 0xed, 0xe9,
	0x35, 0xd8, 0x4d, 0xbd, 0x0a, 0x84, 0x97, 0xac, 0x8b, 0xa6, 0xe3, 0x01,
	0xac, 0xd3, 0x12, 0x30, 0xc2, 0xde, 0xad, 0x86, 0xff, 0x07, 0x73, 0x23,
	0x49, 0x82, 0xa9, 0x45, 0xba, 0xf5, 0x57, 0x80, 0x79, 0x4a, 0x90, 0x2e,
	0xa1, 0xe5, 0x65, 0xb4, 0x24, 0x08, 0x35, 0xc0, 0x92, 0x72, 0xc0, 0x52,
	0x9e, 0xbe, 0xdf, 0x9c, 0xd8, 0x9b, 0xb5, 0x2c, 0x52, 0x39, 0x67, 0xcc,
	0x46, 0xab, 0x19, 0xd4, 0x0c, 0xf6, 0x6b, 0xe0, 0x44, 0x00, 0x12, 0x91,
	0x3e, 0x1d, 0x5c, 0x6c, 0x7b, 0x2f, 0x4c, 0x88, 0x9e, 0xb7, 0xd1, 0x52,
	0x49, 0x23, 0x9a, 0xea, 0xf5, 0x82, 0x58, 0xbb, 0x5e, 0x18, 0x3a, 0x31,
	0x9d, 0x82, 0x16, 0xda, 0x07, 0x8a, 0xcc, 0x4a, 0x02, 0x07, 0xc6, 0xb1,
	0xb6, 0xc7, 0xb7, 0x84, 0x8e, 0xa5, 0xe2, 0xb9, 0x55, 0xee, 0x3a, 0x1f,
	0x4e, 0xe0, 0xde, 0x12, 0x12, 0x71, 0xeb, 0xb0, 0x04, 0xc3, 0x86, 0x6f,
	0x6c, 0xc2, 0xea, 0x7b, 0xc2, 0xe0, 0xcb, 0xe1, 0xad, 0x97, 0x56, 0x86,
	0xaa, 0x8a, 0x72, 0x2d, 0x9f, 0x57, 0x9a, 0xde, 0x4b, 0x2b, 0x0f, 0x69,
	0x49, 0x4e, 0x71, 0xa2, 0x75, 0x92, 0xc6, 0x21, 0x1e, 0x93, 0x9c, 0xce,
	0x5d, 0x97, 0x44, 0x1c, 0x2e, 0x22, 0xa4, 0x5c,
};
static const uint8_t v_sa_keymat_gcm[168] = {
	0xf8, 0x2d, 0x1c, 0x8e, 0xaa, 0xb2, 0x42, 0x93, 0x70, 0xff, 0x16, 0x8a,
	0xdf, 0x24, 0xd3, 0x36, 0x92, 0xdf, 0xeb, 0x0f, 0x1c, 0xc2, 0xcb, 0x42,
	0x37, 0x29, 0x99, 0xb4, 0x65, 0xe2, 0x71, 0x46, 0x98, 0xf4, 0xc4, 0xc3,
	0xbe, 0xcf, 0x39, 0x4d, 0xe9, 0x25, 0xb5, 0xa5, 0x2a, 0x44, 0xed, 0xe9,
	0x35, 0xd8, 0x4d, 0xbd, 0x0a, 0x84, 0x97, 0xac, 0x8b, 0xa6, 0xe3, 0x01,
	0xac, 0xd3, 0x12, 0x30, 0xc2, 0xde, 0xad, 0x86, 0xff, 0x07, 0x73, 0x23,
	0x49, 0x82, 0xa9, 0x45, 0xba, 0xf5, 0x57, 0x80, 0x79, 0x4a, 0x90, 0x2e,
	0xa1, 0xe5, 0x65, 0xb4, 0x24, 0x08, 0x35, 0xc0, 0x92, 0x72, 0xc0, 0x52,
	0x9e, 0xbe, 0xdf, 0x9c, 0xd8, 0x9b, 0xb5, 0x2c, 0x52, 0x39, 0x67, 0xcc,
	0x46, 0xab, 0x19, 0xd4, 0x0c, 0xf6, 0x6b, 0xe0, 0x44, 0x00, 0x12, 0x91,
	0x3e, 0x1d, 0x5c, 0x6c, 0x7b, 0x2f, 0x4c, 0x88, 0x9e, 0xb7, 0xd1, 0x52,
	0x49, 0x23, 0x9a, 0xea, 0xf5, 0x82, 0x58, 0xbb, 0x5e, 0x18, 0x3a, 0x31,
	0x9d, 0x82, 0x16, 0xda, 0x07, 0x8a, 0xcc, 0x4a, 0x02, 0x07, 0xc6, 0xb1,
	0xb6, 0xc7, 0xb7, 0x84, 0x8e, 0xa5, 0xe2, 0xb9, 0x55, 0xee, 0x3a, 0x1f,
};
static const uint8_t v_child_keymat[128] = {
	0xfc, 0x38, 0xd3, 0x2e, 0x71, 0x48, 0x82, 0xeb, 0x18, 0x9f, 0x47, 0x0a,
	0x86, 0xad, 0x95, 0x48, 0xd9, 0x10, 0x6f, 0xc8, 0xfe, 0x0b, 0x7d, 0xa7,
	0x2c, 0x36, 0x94, 0x82, 0x0d, 0x6e, 0x18, 0x10, 0xad, 0xb5, 0x8f, 0x6c,
	0x05, 0x59, 0x8d, 0xa8, 0x08, 0xf8, 0xe7, 0x45, 0x6e, 0x1b, 0x8f, 0x5f,
	0xe9, 0x14, 0x4a, 0x2f, 0xd2, 0x0a, 0x70, 0x56, 0xca, 0x3b, 0x04, 0xe4,
	0x6b, 0xf6, 0x7b, 0x10, 0x27, 0x23, 0x19, 0xb1, 0x84, 0x45, 0xda, 0x43,
	0xf1, 0xc5, 0xc3, 0x56, 0x3d, 0x41, 0xd2, 0xec, 0x96, 0x33, 0xb3, 0x28,
	0x61, 0x83, 0xa8, 0x08, 0x8d, 0x0d, 0x78, 0x59, 0x85, 0x4b, 0x7a, 0x17,
	0x0e, 0xfb, 0x5a, 0xd1, 0x54, 0x86, 0x9c, 0x93, 0x3a, 0x9f, 0x28, 0x6c,
	0xcb, 0x25, 0x02, 0xfc, 0xe3, 0x61, 0x85, 0x2a, 0x9f, 0x0f, 0x5f, 0x12,
	0x91, 0xc3, 0xba, 0x81, 0x5f, 0xaf, 0x8f, 0xe7,
};
static const uint8_t v_child_keymat_pfs[128] = {
	0x4c, 0x26, 0x04, 0xce, 0x05, 0xbd, 0x70, 0xf6, 0xb4, 0x1a, 0xea, 0xc4,
	0xc8, 0x99, 0x43, 0xb6, 0xae, 0x47, 0x8c, 0x85, 0xe5, 0xde, 0x72, 0x71,
	0x1f, 0x7a, 0x83, 0xed, 0xfe, 0xd1, 0x85, 0x34, 0x94, 0xcb, 0x01, 0x0c,
	0x4c, 0xcb, 0x97, 0x76, 0xa1, 0x8a, 0x9a, 0x76, 0xf9, 0x94, 0x0a, 0xb1,
	0x34, 0x9b, 0xcd, 0x97, 0x97, 0x9c, 0x01, 0x88, 0xd1, 0xfb, 0x87, 0xbd,
	0xb3, 0xbd, 0x1c, 0xb4, 0x49, 0x45, 0x65, 0xc8, 0x99, 0x69, 0x0b, 0xe3,
	0x04, 0xd7, 0x81, 0x5e, 0x68, 0x11, 0x42, 0xa0, 0x38, 0x6a, 0x58, 0xd5,
	0xe3, 0xc3, 0x3f, 0x89, 0x4b, 0x9a, 0xa9, 0xaf, 0xc4, 0x9c, 0x99, 0x6e,
	0x74, 0x88, 0xc7, 0xd7, 0xa5, 0xdb, 0x1e, 0x48, 0xb7, 0xe6, 0xa0, 0x30,
	0xe1, 0xea, 0xe1, 0x1d, 0x10, 0x74, 0xa2, 0x12, 0xfd, 0x4e, 0x29, 0xce,
	0x58, 0xf5, 0x6b, 0x60, 0x9b, 0xdf, 0x9e, 0x01,
};
static const uint8_t v_ppk_d[32] = {
	0x2f, 0xe2, 0x36, 0x43, 0x69, 0xde, 0x88, 0x22, 0x1d, 0x86, 0xb2, 0xb5,
	0xfa, 0x0c, 0x9e, 0x7d, 0xc9, 0x1a, 0x40, 0xeb, 0x55, 0x19, 0xf4, 0x7c,
	0x29, 0xb6, 0x8d, 0x28, 0x8d, 0x17, 0xb5, 0xd3,
};
static const uint8_t v_ppk_pi[32] = {
	0xf3, 0x4a, 0x88, 0x16, 0xca, 0x90, 0x41, 0xb0, 0xb0, 0x4d, 0xbb, 0x18,
	0x16, 0xd3, 0x5b, 0xde, 0xfc, 0x32, 0xa3, 0x0b, 0x12, 0x31, 0xda, 0x6b,
	0xe3, 0x9a, 0x08, 0x64, 0x2e, 0xa4, 0xb7, 0xea,
};
static const uint8_t v_ppk_pr[32] = {
	0x73, 0xd0, 0x4d, 0xd0, 0x13, 0x8f, 0xe5, 0xa2, 0xca, 0x1b, 0x1e, 0x16,
	0xdb, 0xa1, 0xe2, 0x0f, 0x99, 0x0e, 0x47, 0xf1, 0xc0, 0x1e, 0x3b, 0x3a,
	0x96, 0x5a, 0x1b, 0xed, 0x25, 0x62, 0x29, 0x49,
};
static const uint8_t v_psk_auth[32] = {
	0x93, 0xd6, 0xb4, 0x32, 0xe9, 0x88, 0xc4, 0xc1, 0x84, 0xf4, 0x94, 0x57,
	0xef, 0x7d, 0xdf, 0xef, 0x93, 0x8f, 0x11, 0x79, 0xde, 0x41, 0x20, 0x12,
	0x0d, 0x1c, 0xc5, 0x23, 0xb3, 0x68, 0xd3, 0x3b,
};
static const uint8_t v_rekey_skeyseed[32] = {
	0xcf, 0x87, 0xde, 0x89, 0xb9, 0x52, 0x41, 0xf9, 0xcd, 0x6a, 0x67, 0x6a,
	0x7d, 0xba, 0x63, 0xd0, 0x04, 0x41, 0xb2, 0xd8, 0x53, 0x37, 0x0b, 0x52,
	0x49, 0xe2, 0x94, 0xa1, 0xdf, 0x44, 0x20, 0xe5,
};

static const uint8_t ni[32] = {
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
};
/* clang-format on */
static const uint8_t spii[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t spir[8] = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18 };
static uint8_t	     nr[32], gir[256], ppk[32];

static void
hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static int
setup_vectors(void **state)
{
	memset(nr, 0x22, sizeof(nr));
	memset(gir, 0x33, sizeof(gir));
	memset(ppk, 0x44, sizeof(ppk));
	return 0;
}

static void
test_hmac_rfc4231(void **state)
{
	uint8_t key[131], out[32], want[32];

	memset(key, 0x0b, 20); /* case 1 */
	assert_int_equal(ike_prf(key, 20, (const uint8_t *)"Hi There", 8, out),
	    0);
	hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
	    want, 32);
	assert_memory_equal(out, want, 32);
	assert_int_equal(ike_prf((const uint8_t *)"Jefe", 4, /* case 2 */
			     (const uint8_t *)"what do ya want for nothing?",
			     28, out),
	    0);
	hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    want, 32);
	assert_memory_equal(out, want, 32);
	memset(key, 0xaa, sizeof(key)); /* case 6 */
	assert_int_equal(
	    ike_prf(key, 131,
		(const uint8_t
			*)"Test Using Larger Than Block-Size Key - Hash Key First",
		54, out),
	    0);
	hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
	    want, 32);
	assert_memory_equal(out, want, 32);
}

static void
test_prf_plus(void **state)
{
	uint8_t key[32], seed[40], out[100], *big;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (size_t i = 0; i < 10; i++)
		memcpy(seed + 4 * i, "seed", 4);
	assert_int_equal(ike_prf_plus(key, 32, seed, 40, out, 100), 0);
	assert_memory_equal(out, v_prfplus, 100);
	/* A shorter request is a prefix of the longer one. */
	assert_int_equal(ike_prf_plus(key, 32, seed, 40, out, 33), 0);
	assert_memory_equal(out, v_prfplus, 33);
	big = malloc(IKE_PRFPLUS_MAX + 1);
	assert_non_null(big);
	assert_int_equal(ike_prf_plus(key, 32, seed, 40, big, IKE_PRFPLUS_MAX),
	    0);
	assert_int_equal(ike_prf_plus(key, 32, seed, 40, big,
			     IKE_PRFPLUS_MAX + 1),
	    -1);
	free(big);
}

static void
check_key(const struct ike_key *k, const uint8_t *want, size_t len)
{
	assert_int_equal(k->len, len);
	assert_memory_equal(k->k, want, len);
}

static void
test_sa_keys(void **state)
{
	uint8_t		    sks[32];
	struct ike_sa_keys *k = ike_sa_keys_new();
	const uint8_t	   *g = v_sa_keymat_gcm;

	assert_non_null(k);
	assert_int_equal(ike_skeyseed(ni, 32, nr, 32, gir, 256, sks), 0);
	assert_memory_equal(sks, v_skeyseed, 32);
	assert_int_equal(ike_sa_keys_derive(sks, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     k),
	    0);
	check_key(&k->d, v_sa_keymat_cbc, 32);
	check_key(&k->ai, v_sa_keymat_cbc + 32, 32);
	check_key(&k->ar, v_sa_keymat_cbc + 64, 32);
	check_key(&k->ei, v_sa_keymat_cbc + 96, 32);
	check_key(&k->er, v_sa_keymat_cbc + 128, 32);
	check_key(&k->pi, v_sa_keymat_cbc + 160, 32);
	check_key(&k->pr, v_sa_keymat_cbc + 192, 32);
	/* AES-GCM-16/256: no SK_a*, SK_e* = 32 key + 4 salt bytes. */
	assert_int_equal(ike_sa_keys_derive(sks, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, k),
	    0);
	check_key(&k->d, g, 32);
	assert_int_equal(k->ai.len, 0);
	check_key(&k->ei, g + 32, 36);
	check_key(&k->er, g + 68, 36);
	check_key(&k->pi, g + 104, 32);
	check_key(&k->pr, g + 136, 32);
	/* Unsupported transforms are refused. */
	assert_int_equal(ike_sa_keys_derive(sks, ni, 32, nr, 32, spii, spir, 3,
			     256, IKE_INTEG_NONE, k),
	    -1);
	assert_int_equal(ike_sa_keys_derive(sks, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_CBC, 100, IKE_INTEG_HMAC_SHA2_256_128,
			     k),
	    -1);
	ike_sa_keys_free(k);
	ike_sa_keys_free(NULL);
}

static void
test_rekey_skeyseed(void **state)
{
	struct ike_key d;
	uint8_t	       sks[32];

	assert_int_equal(ike_key_set(&d, v_sa_keymat_cbc, 32), 0);
	assert_int_equal(ike_skeyseed_rekey(&d, gir, 256, ni, 32, nr, 32, sks),
	    0);
	assert_memory_equal(sks, v_rekey_skeyseed, 32);
	ike_key_wipe(&d);
	assert_int_equal(d.len, 0);
}

static void
test_child_keys(void **state)
{
	struct ike_key	       d;
	struct ike_child_keys *c = ike_child_keys_new();

	assert_non_null(c);
	assert_int_equal(ike_key_set(&d, v_sa_keymat_cbc, 32), 0);
	assert_int_equal(ike_child_keys_derive(&d, NULL, 0, ni, 32, nr, 32,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     c),
	    0);
	check_key(&c->ei, v_child_keymat, 32);
	check_key(&c->ai, v_child_keymat + 32, 32);
	check_key(&c->er, v_child_keymat + 64, 32);
	check_key(&c->ar, v_child_keymat + 96, 32);
	assert_int_equal(ike_child_keys_derive(&d, gir, 256, ni, 32, nr, 32,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     c),
	    0);
	check_key(&c->ei, v_child_keymat_pfs, 32);
	check_key(&c->ar, v_child_keymat_pfs + 96, 32);
	/* GCM: 36-byte keys (key + salt), no integrity keys. */
	assert_int_equal(ike_child_keys_derive(&d, NULL, 0, ni, 32, nr, 32,
			     IKE_ENCR_AES_GCM_16, 256, IKE_INTEG_NONE, c),
	    0);
	check_key(&c->ei, v_child_keymat, 36);
	check_key(&c->er, v_child_keymat + 36, 36);
	assert_int_equal(c->ai.len, 0);
	ike_key_wipe(&d);
	ike_child_keys_free(c);
}

static void
test_ppk(void **state)
{
	struct ike_sa_keys *k = ike_sa_keys_new(), *o = ike_sa_keys_new();
	uint8_t		    sks[32];

	assert_non_null(k);
	assert_non_null(o);
	assert_int_equal(ike_skeyseed(ni, 32, nr, 32, gir, 256, sks), 0);
	assert_int_equal(ike_sa_keys_derive(sks, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     k),
	    0);
	assert_int_equal(ike_ppk_mix(ppk, 32, k, o), 0); /* separate */
	check_key(&o->d, v_ppk_d, 32);
	check_key(&o->pi, v_ppk_pi, 32);
	check_key(&o->pr, v_ppk_pr, 32);
	check_key(&o->ei, v_sa_keymat_cbc + 96, 32);	 /* untouched */
	assert_int_equal(ike_ppk_mix(ppk, 32, k, k), 0); /* in place */
	check_key(&k->d, v_ppk_d, 32);
	check_key(&k->pr, v_ppk_pr, 32);
	assert_int_equal(ike_ppk_mix(ppk, 0, k, k), -1);
	ike_sa_keys_free(k);
	ike_sa_keys_free(o);
}

static void
test_psk_auth(void **state)
{
	uint8_t	       out[32];
	struct buf     oct;
	struct ike_key skp;
	uint8_t mac[32], idb[8] = { IKE_ID_FQDN, 0, 0, 0, 'u', 'e', '.', 'x' };

	assert_int_equal(ike_auth_psk((const uint8_t *)"secret", 6,
			     (const uint8_t *)"octets", 6, out),
	    0);
	assert_memory_equal(out, v_psk_auth, 32);
	assert_int_equal(ike_auth_psk_verify((const uint8_t *)"secret", 6,
			     (const uint8_t *)"octets", 6, v_psk_auth, 32),
	    0);
	assert_int_equal(ike_auth_psk_verify((const uint8_t *)"secreT", 6,
			     (const uint8_t *)"octets", 6, v_psk_auth, 32),
	    -1);
	assert_int_equal(ike_auth_psk_verify((const uint8_t *)"secret", 6,
			     (const uint8_t *)"octets", 6, v_psk_auth, 31),
	    -1);
	/* Signed octets: message | nonce | prf(SK_p, ID'). */
	buf_init(&oct, 4096);
	assert_int_equal(ike_key_set(&skp, v_sa_keymat_cbc + 160, 32), 0);
	assert_int_equal(ike_auth_octets((const uint8_t *)"MSG", 3, nr, 32,
			     &skp, idb, sizeof(idb), &oct),
	    0);
	assert_int_equal(oct.len, 3 + 32 + 32);
	assert_memory_equal(oct.data, "MSG", 3);
	assert_memory_equal(oct.data + 3, nr, 32);
	assert_int_equal(ike_prf(skp.k, 32, idb, sizeof(idb), mac), 0);
	assert_memory_equal(oct.data + 35, mac, 32);
	buf_free(&oct);
	ike_key_wipe(&skp);
}

/* ---- key exchange ---- */

static void
dh_pair(uint16_t group)
{
	struct ike_dh *a = ike_dh_new(group), *b = ike_dh_new(group);
	struct buf     pa, pb, sa, sb;
	size_t	       want = group == IKE_KE_MODP2048 ? 256 : 32;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(ike_dh_group(a), group);
	buf_init(&pa, 1024);
	buf_init(&pb, 1024);
	buf_init(&sa, 1024);
	buf_init(&sb, 1024);
	assert_int_equal(ike_dh_public(a, &pa), 0);
	assert_int_equal(ike_dh_public(b, &pb), 0);
	assert_int_equal(pa.len, ike_dh_publen(group));
	assert_int_equal(ike_dh_derive(a, pb.data, pb.len, &sa), 0);
	assert_int_equal(ike_dh_derive(b, pa.data, pa.len, &sb), 0);
	assert_int_equal(sa.len, want);
	assert_int_equal(sb.len, want);
	assert_memory_equal(sa.data, sb.data, want);
	/* Wrong lengths are refused and leave the secret buffer alone. */
	assert_int_equal(ike_dh_derive(a, pb.data, pb.len - 1, &sa), -1);
	assert_int_equal(ike_dh_derive(a, pb.data, 0, &sa), -1);
	assert_int_equal(sa.len, want);
	buf_free(&pa);
	buf_free(&pb);
	buf_free(&sa);
	buf_free(&sb);
	ike_dh_free(a);
	ike_dh_free(b);
}

static void
test_dh_groups(void **state)
{
	dh_pair(IKE_KE_MODP2048);
	dh_pair(IKE_KE_ECP256);
	dh_pair(IKE_KE_CURVE25519);
	assert_null(ike_dh_new(IKE_KE_QKD_ETSI014));
	assert_null(ike_dh_new(2));
	assert_int_equal(ike_dh_publen(1025), 0);
	ike_dh_free(NULL);
}

/* RFC 3526 group 14 prime, for building p-1 and p. */
static const char modp2048_p[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D"
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF";

static void
expect_bad_peer(struct ike_dh *dh, const uint8_t *p, size_t len)
{
	struct buf s;

	buf_init(&s, 1024);
	assert_int_equal(ike_dh_derive(dh, p, len, &s), -1);
	assert_int_equal(s.len, 0);
	buf_free(&s);
}

static void
test_dh_bad_modp(void **state)
{
	struct ike_dh *dh = ike_dh_new(IKE_KE_MODP2048);
	uint8_t	       v[256];
	BIGNUM	      *p = NULL;

	assert_non_null(dh);
	memset(v, 0, sizeof(v));
	expect_bad_peer(dh, v, sizeof(v)); /* 0 */
	v[255] = 1;
	expect_bad_peer(dh, v, sizeof(v)); /* 1 */
	assert_true(BN_hex2bn(&p, modp2048_p) > 0);
	assert_int_equal(BN_bn2binpad(p, v, 256), 256);
	expect_bad_peer(dh, v, sizeof(v)); /* p */
	assert_int_equal(BN_sub_word(p, 1), 1);
	assert_int_equal(BN_bn2binpad(p, v, 256), 256);
	expect_bad_peer(dh, v, sizeof(v)); /* p - 1 */
	memset(v, 0xff, sizeof(v));
	expect_bad_peer(dh, v, sizeof(v)); /* > p */
	v[0] = 0x12;			   /* 1 < y < p - 1: ok */
	{
		struct buf s;

		buf_init(&s, 1024);
		assert_int_equal(ike_dh_derive(dh, v, sizeof(v), &s), 0);
		buf_free(&s);
	}
	BN_free(p);
	ike_dh_free(dh);
}

static void
test_dh_bad_ecp(void **state)
{
	struct ike_dh *dh = ike_dh_new(IKE_KE_ECP256);
	struct buf     pub;
	uint8_t	       v[64];

	assert_non_null(dh);
	memset(v, 0, sizeof(v));
	expect_bad_peer(dh, v, sizeof(v)); /* (0, 0) */
	v[31] = 1;
	v[63] = 1;
	expect_bad_peer(dh, v, sizeof(v)); /* (1, 1): not on curve */
	buf_init(&pub, 1024);
	assert_int_equal(ike_dh_public(dh, &pub), 0);
	memcpy(v, pub.data, 64);
	v[63] ^= 1; /* y flipped */
	expect_bad_peer(dh, v, sizeof(v));
	memset(v, 0xff, sizeof(v)); /* coordinates >= p */
	expect_bad_peer(dh, v, sizeof(v));
	buf_free(&pub);
	ike_dh_free(dh);
}

static void
test_dh_bad_x25519(void **state)
{
	struct ike_dh *dh = ike_dh_new(IKE_KE_CURVE25519);
	uint8_t	       v[32];

	assert_non_null(dh);
	memset(v, 0, sizeof(v)); /* low order: zero result */
	expect_bad_peer(dh, v, sizeof(v));
	v[0] = 1; /* u = 1: low order too */
	expect_bad_peer(dh, v, sizeof(v));
	expect_bad_peer(dh, v, 31);
	ike_dh_free(dh);
}

/* ---- signatures and certificates ---- */

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static X509 *
mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca)
{
	X509	  *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	if (ca) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL,
		    NID_basic_constraints, "critical,CA:TRUE");

		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static void
test_sig_auth(void **state)
{
	EVP_PKEY     *cak = ec_key(), *k = ec_key(), *evil = ec_key();
	X509	     *ca = mk_cert("test-ca", cak, NULL, cak, 1);
	X509	     *leaf = mk_cert("ue", k, ca, cak, 0);
	X509	     *rogue = mk_cert("ue", k, NULL, evil, 0), *back;
	X509_STORE   *st = X509_STORE_new();
	struct buf    sig, der;
	const uint8_t oct[] = "the signed octets";

	buf_init(&sig, 1024);
	buf_init(&der, 8192);
	assert_int_equal(ike_auth_sig_sign(k, oct, sizeof(oct), &sig), 0);
	assert_int_equal(sig.data[0], 12); /* AlgorithmIdentifier */
	assert_int_equal(ike_auth_sig_verify(leaf, oct, sizeof(oct), sig.data,
			     sig.len),
	    0);
	assert_int_equal(ike_auth_sig_verify(leaf, oct, sizeof(oct) - 1,
			     sig.data, sig.len),
	    -1); /* other octets */
	sig.data[sig.len - 3] ^= 0x40;
	assert_int_equal(ike_auth_sig_verify(leaf, oct, sizeof(oct), sig.data,
			     sig.len),
	    -1); /* tampered signature */
	assert_int_equal(ike_auth_sig_verify(leaf, oct, sizeof(oct), sig.data,
			     10),
	    -1); /* truncated */
	sig.data[5] ^= 1;
	assert_int_equal(ike_auth_sig_verify(leaf, oct, sizeof(oct), sig.data,
			     sig.len),
	    -1); /* other algorithm */
	/* Chain checks. */
	assert_int_equal(X509_STORE_add_cert(st, ca), 1);
	assert_int_equal(ike_cert_verify(leaf, st), 0);
	assert_int_equal(ike_cert_verify(rogue, st), -1);
	/* DER round trip for CERT payloads. */
	assert_int_equal(ike_cert_der(leaf, &der), 0);
	back = ike_cert_from_der(der.data, der.len);
	assert_non_null(back);
	assert_int_equal(X509_cmp(back, leaf), 0);
	assert_null(ike_cert_from_der(der.data, der.len - 1));
	assert_null(ike_cert_from_der(der.data, 0));
	X509_free(back);
	buf_free(&sig);
	buf_free(&der);
	X509_STORE_free(st);
	X509_free(ca);
	X509_free(leaf);
	X509_free(rogue);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(k);
	EVP_PKEY_free(evil);
}

static void
test_keylens(void **state)
{
	size_t n;

	assert_int_equal(ike_encr_keylen(IKE_ENCR_AES_CBC, 256, &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(ike_encr_keylen(IKE_ENCR_AES_GCM_16, 256, &n), 0);
	assert_int_equal(n, 36);
	assert_int_equal(ike_encr_keylen(IKE_ENCR_AES_GCM_16, 128, &n), 0);
	assert_int_equal(n, 20);
	assert_int_equal(ike_integ_keylen(IKE_INTEG_HMAC_SHA2_256_128, &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(ike_integ_keylen(2, &n), -1);
	assert_int_equal(ike_key_set(&(struct ike_key){ 0 }, gir, 37), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_prf_plus),
		cmocka_unit_test(test_sa_keys),
		cmocka_unit_test(test_rekey_skeyseed),
		cmocka_unit_test(test_child_keys),
		cmocka_unit_test(test_ppk),
		cmocka_unit_test(test_psk_auth),
		cmocka_unit_test(test_dh_groups),
		cmocka_unit_test(test_dh_bad_modp),
		cmocka_unit_test(test_dh_bad_ecp),
		cmocka_unit_test(test_dh_bad_x25519),
		cmocka_unit_test(test_sig_auth),
		cmocka_unit_test(test_keylens),
	};

	log_init("test_ike_crypto", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, setup_vectors, NULL);
}

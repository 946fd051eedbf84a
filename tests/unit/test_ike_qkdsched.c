/*
 * qkd mode's two QKD key schedules (ike/sa.c, ike/crypto_ke.c, ike/ikecfg.c):
 * prf (one 256-bit QKD key K as RFC 7296's shared secret) against vectors
 * computed independently with python3's hmac, the paper's (13 keys used
 * raw) unchanged, and what each schedule draws and names on the wire.
 *
 * The v_* vectors were generated with python3 (hmac, hashlib):
 *   prf = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
 *   def prfplus(k, s, n):
 *       out, t, i = b"", b"", 1
 *       while len(out) < n: t = prf(k, t + s + bytes([i])); out += t; i += 1
 *       return out[:n]
 *   K = bytes(range(0xa0, 0xc0))                   # the QKD key
 *   ni, nr = b"\x11" * 32, b"\x22" * 32
 *   ni2 = b"\x12" + b"\x11" * 31                    # one nonce bit differs
 *   spii, spir = bytes(range(1, 9)), bytes(range(0x11, 0x19))
 *   v_prf_skeyseed = sks = prf(ni + nr, K)
 *   v_prf_keymat = km = prfplus(sks, ni + nr + spii + spir, 7 * 32)
 *   v_prf_sk_d_ni2 = prfplus(prf(ni2 + nr, K), ni2 + nr + spii + spir, 32)
 *   v_prf_child = prfplus(km[:32], b"\x33" * 32 + b"\x44" * 32, 128)
 * km = SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr (32 bytes each:
 * AES-CBC-256, HMAC-SHA2-256-128); the Child SA KEYMAT is encr i->r, integ
 * i->r, encr r->i, integ r->i.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikecfg.h"
#include "ike/ikev2.h"
#include "ike/qkd.h"
#include "ike/sa.h"

/* clang-format off */
static const uint8_t v_prf_skeyseed[32] = {
	0x67, 0xb4, 0xf8, 0xb4, 0x2f, 0xb6, 0xd6, 0x2f, 0xa8, 0x73, 0xc7, 0x22,
	0x08, 0xbe, 0x07, 0x7f, 0x0e, 0xbf, 0xcb, 0x17, 0xe2, 0x02, 0x1a, 0x50,
	0xfc, 0x6b, 0x93, 0xad, 0x02, 0xdc, 0xfd, 0xd4,
};
static const uint8_t v_prf_keymat[224] = {
	0xbe, 0x0a, 0xea, 0x5d, 0xe9, 0xbd, 0xcc, 0x21, 0x86, 0x2c, 0x81, 0x77,
	0xb9, 0x8f, 0x5d, 0xe6, 0xb8, 0x40, 0x27, 0x75, 0x0d, 0x16, 0xad, 0x8e,
	0x01, 0xc8, 0x71, 0xfc, 0x87, 0xcd, 0xff, 0xbe, 0x0d, 0x90, 0x69, 0xe2,
	0x98, 0x9a, 0xcc, 0x0b, 0xa7, 0xe6, 0xb8, 0x75, 0x4b, 0xd9, 0x5c, 0x01,
	0x33, 0x15, 0x01, 0xed, 0xaa, 0xd7, 0xaa, 0xeb, 0xf6, 0xe5, 0xf1, 0x5d,
	0x1c, 0x10, 0xea, 0x4b, 0x55, 0x09, 0xc7, 0xd0, 0x29, 0x9a, 0xd9, 0x60,
	0xb1, 0x8b, 0xd9, 0x50, 0xc3, 0x12, 0x84, 0x4d, 0xf5, 0xf7, 0x40, 0x98,
	0xa1, 0x1f, 0xc9, 0xe2, 0x23, 0x06, 0x12, 0x5b, 0xfa, 0xf3, 0xc4, 0x7d,
	0x80, 0x8c, 0x10, 0xb9, 0x45, 0xeb, 0x4b, 0x60, 0xf6, 0x52, 0xe7, 0x8a,
	0xb4, 0xe1, 0x1e, 0x68, 0x86, 0x40, 0xbb, 0x26, 0xd9, 0xfd, 0xf4, 0xa0,
	0xf2, 0xc3, 0x21, 0x16, 0x03, 0x3c, 0x00, 0x33, 0xc3, 0x26, 0x0b, 0x68,
	0x6b, 0x28, 0xcd, 0x39, 0x23, 0x67, 0x6e, 0x49, 0x07, 0x05, 0x6b, 0x94,
	0x41, 0x68, 0x88, 0xff, 0x34, 0x65, 0x4d, 0xf1, 0xc3, 0x8c, 0xb7, 0xe7,
	0x09, 0xcc, 0x42, 0x56, 0x78, 0x03, 0xa6, 0xa3, 0x1f, 0x19, 0xc3, 0xe2,
	0xb4, 0x36, 0x3c, 0x66, 0x18, 0x88, 0x01, 0x99, 0xa2, 0xd5, 0x21, 0xe7,
	0xd9, 0xde, 0xc8, 0xdb, 0x80, 0x3b, 0x8c, 0xbe, 0xb4, 0xca, 0x1f, 0xc5,
	0x42, 0x90, 0x87, 0xc0, 0x2e, 0x59, 0xc4, 0xa6, 0xdb, 0x00, 0xc5, 0x61,
	0x88, 0x6f, 0x57, 0xe5, 0x07, 0x3d, 0x32, 0xe3, 0x8f, 0x88, 0x17, 0x9f,
	0xfa, 0x3e, 0x4e, 0xce, 0xd9, 0xde, 0x70, 0x1c,
};
static const uint8_t v_prf_sk_d_ni2[32] = {
	0xfe, 0x6d, 0x7e, 0xbf, 0x47, 0x51, 0x5f, 0xa1, 0x24, 0x15, 0xd3, 0xb9,
	0x26, 0x4c, 0x24, 0x7f, 0x26, 0x03, 0xcf, 0x65, 0xed, 0xdd, 0x41, 0x6b,
	0x9b, 0xf5, 0x79, 0xf1, 0xa4, 0x56, 0xb8, 0x3f,
};
static const uint8_t v_prf_child[128] = {
	0xf1, 0xe2, 0xe7, 0xa4, 0xad, 0xbd, 0xcf, 0x32, 0xc2, 0x46, 0xa0, 0x9e,
	0xef, 0x8a, 0x40, 0x8d, 0x8b, 0x9c, 0xa9, 0xf4, 0x26, 0xbc, 0xdd, 0x66,
	0x4f, 0xf0, 0xf7, 0x17, 0x5d, 0x3d, 0x8c, 0x6c, 0xd5, 0x06, 0xc1, 0xe0,
	0x49, 0xf1, 0x61, 0x67, 0xcd, 0xd4, 0xea, 0x5f, 0x91, 0x67, 0x3f, 0x02,
	0x12, 0x53, 0xaa, 0xad, 0x31, 0x96, 0x01, 0xea, 0x07, 0x0d, 0xf2, 0x9d,
	0x59, 0x61, 0xd3, 0xaa, 0xf9, 0xdb, 0x54, 0xc6, 0x0d, 0x6d, 0xde, 0x3b,
	0x66, 0x80, 0x07, 0x8a, 0x52, 0x74, 0x67, 0xe4, 0xfe, 0xcc, 0x48, 0xef,
	0x29, 0xde, 0x5e, 0x62, 0x83, 0xdc, 0x17, 0x5c, 0xa1, 0x89, 0xde, 0x4c,
	0x14, 0xb7, 0x4a, 0x2e, 0x3f, 0x46, 0x54, 0x2a, 0x7c, 0x70, 0xe1, 0xf8,
	0x93, 0xac, 0x3b, 0x63, 0x2f, 0xf9, 0x13, 0x76, 0x3c, 0x39, 0x0e, 0x98,
	0x23, 0xcf, 0x04, 0xb3, 0x5a, 0xf7, 0x7b, 0x41,
};
/* clang-format on */

static const uint8_t spii[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t spir[8] = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18 };

static void
qkd_key(uint8_t k[static IKE_QKD_KEYLEN])
{
	for (int i = 0; i < IKE_QKD_KEYLEN; i++)
		k[i] = (uint8_t)(0xa0 + i);
}

/* The seven SK_* against km (32 bytes each, in RFC 7296 order). */
static void
check_sa_keys(const struct ike_sa_keys *k, const uint8_t km[static 224])
{
	const struct ike_key *ks[] = { &k->d, &k->ai, &k->ar, &k->ei, &k->er,
		&k->pi, &k->pr };

	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(ks[i]->len, 32);
		assert_memory_equal(ks[i]->k, km + 32 * i, 32);
	}
}

static void
test_derive(void **state)
{
	struct ike_sa_keys *k = ike_sa_keys_new(), *k2 = ike_sa_keys_new();
	uint8_t		    K[IKE_QKD_KEYLEN], ni[32], nr[32], sks[32];

	(void)state;
	assert_non_null(k);
	assert_non_null(k2);
	qkd_key(K);
	memset(ni, 0x11, sizeof(ni));
	memset(nr, 0x22, sizeof(nr));
	assert_int_equal(ike_skeyseed(ni, 32, nr, 32, K, 32, sks), 0);
	assert_memory_equal(sks, v_prf_skeyseed, 32);
	assert_int_equal(ike_ke_sa_keys(K, 32, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     k),
	    0);
	check_sa_keys(k, v_prf_keymat);
	/* The same QKD key with one nonce bit flipped: every key differs. */
	ni[0] = 0x12;
	assert_int_equal(ike_ke_sa_keys(K, 32, ni, 32, nr, 32, spii, spir,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     k2),
	    0);
	assert_memory_equal(k2->d.k, v_prf_sk_d_ni2, 32);
	assert_memory_not_equal(k2->d.k, k->d.k, 32);
	assert_memory_not_equal(k2->ei.k, k->ei.k, 32);
	assert_memory_not_equal(k2->er.k, k->er.k, 32);
	assert_memory_not_equal(k2->ai.k, k->ai.k, 32);
	assert_memory_not_equal(k2->ar.k, k->ar.k, 32);
	assert_memory_not_equal(k2->pi.k, k->pi.k, 32);
	assert_memory_not_equal(k2->pr.k, k->pr.k, 32);
	/* ... and so does the responder's SPI (the keys bind the SPIs). */
	ni[0] = 0x11;
	assert_int_equal(ike_ke_sa_keys(K, 32, ni, 32, nr, 32, spii, spii,
			     IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
			     k2),
	    0);
	assert_memory_not_equal(k2->d.k, k->d.k, 32);
	/* Unsupported transforms are refused. */
	assert_int_equal(ike_ke_sa_keys(K, 32, ni, 32, nr, 32, spii, spir, 3,
			     256, IKE_INTEG_NONE, k2),
	    -1);
	ike_sa_keys_free(k);
	ike_sa_keys_free(k2);
}

/* An IKE SA (rfc7296, AES-CBC) after IKE_SA_INIT with the test nonces. */
static struct ike_sa *
sa_new(struct ikecfg *c, enum ike_qkd_sched s, int initiator)
{
	struct ike_sa *sa;

	memset(c, 0, sizeof(*c));
	c->mode = IKE_MODE_QKD;
	c->profile = IKE_PROFILE_RFC7296;
	c->qkd_schedule = s;
	assert_non_null(sa = ike_sa_new(c, initiator));
	memcpy(sa->spi_i, spii, 8);
	memcpy(sa->spi_r, spir, 8);
	memset(sa->ni, 0x11, 32);
	memset(sa->nr, 0x22, 32);
	sa->ni_len = sa->nr_len = 32;
	sa->prop.encr = IKE_ENCR_AES_CBC;
	sa->prop.encr_bits = 256;
	sa->prop.integ = IKE_INTEG_HMAC_SHA2_256_128;
	assert_non_null(sa->qk = ike_qkd_keys_new());
	return sa;
}

static void
test_sa_prf(void **state)
{
	struct ikecfg	     c;
	struct ike_sa	    *sa = sa_new(&c, IKE_QKD_SCHED_PRF, 1);
	struct ike_child    *ch = &sa->child[0];
	static const uint8_t zero[IKE_QKD_KEYLEN];
	uint8_t		     cni[32], cnr[32], sec[64];
	size_t		     len = 0;

	(void)state;
	sa->qk->n = 1;
	qkd_key(sa->qk->key[0]);
	assert_int_equal(ike_sa_keys_qkd(sa), 0);
	check_sa_keys(sa->keys, v_prf_keymat);
	/* K is wiped as soon as the SK_* exist. */
	assert_memory_equal(sa->qk->key[0], zero, IKE_QKD_KEYLEN);
	/* Child SA: KEYMAT = prf+(SK_d, Ni | Nr) of its exchange. */
	memset(cni, 0x33, sizeof(cni));
	memset(cnr, 0x44, sizeof(cnr));
	ch->prop = sa->prop;
	sa->nchild = 1;
	assert_int_equal(ike_sa_child_keys(sa, ch, cni, 32, cnr, 32), 0);
	assert_memory_equal(ch->keys->ei.k, v_prf_child, 32);
	assert_memory_equal(ch->keys->ai.k, v_prf_child + 32, 32);
	assert_memory_equal(ch->keys->er.k, v_prf_child + 64, 32);
	assert_memory_equal(ch->keys->ar.k, v_prf_child + 96, 32);
	/* rfc7296 AUTH: SK_pi for the initiator's, SK_pr for the responder's. */
	assert_int_equal(ike_sa_auth_secret(sa, 1, sec, sizeof(sec), &len), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(sec, v_prf_keymat + 160, 32);
	assert_int_equal(ike_sa_auth_secret(sa, 0, sec, sizeof(sec), &len), 0);
	assert_memory_equal(sec, v_prf_keymat + 192, 32);
	/* A prf SA wants exactly one QKD key. */
	sa->qk->n = 13;
	assert_int_equal(ike_sa_keys_qkd(sa), -1);
	ike_sa_free(sa);
}

static void
test_sa_paper(void **state)
{
	struct ikecfg  c;
	struct ike_sa *sa = sa_new(&c, IKE_QKD_SCHED_PAPER, 0);
	uint8_t	       sec[64];
	size_t	       len = 0;

	(void)state;
	sa->qk->n = IKE_QKD_NKEYS;
	for (int i = 0; i < IKE_QKD_NKEYS; i++)
		memset(sa->qk->key[i], 0x50 + i, IKE_QKD_KEYLEN);
	assert_int_equal(ike_sa_keys_qkd(sa), 0);
	/* Raw: SK_ei = key 0, SK_er = key 1, SK_ai = key 2, SK_ar = key 3. */
	assert_memory_equal(sa->keys->ei.k, sa->qk->key[QK_SK_EI], 32);
	assert_memory_equal(sa->keys->er.k, sa->qk->key[QK_SK_ER], 32);
	assert_memory_equal(sa->keys->ai.k, sa->qk->key[QK_SK_AI], 32);
	assert_memory_equal(sa->keys->ar.k, sa->qk->key[QK_SK_AR], 32);
	/* The PSK is key 12 for both AUTHs. */
	assert_int_equal(ike_sa_auth_secret(sa, 1, sec, sizeof(sec), &len), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(sec, sa->qk->key[QK_AUTH], 32);
	assert_int_equal(ike_sa_auth_secret(sa, 0, sec, sizeof(sec), &len), 0);
	assert_memory_equal(sec, sa->qk->key[QK_AUTH], 32);
	sa->qk->n = 1;
	assert_int_equal(ike_sa_keys_qkd(sa), -1);
	ike_sa_free(sa);
}

static void
test_names(void **state)
{
	struct ikecfg c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(ike_qkd_sched_nkeys(IKE_QKD_SCHED_PAPER), 13);
	assert_int_equal(ike_qkd_sched_nkeys(IKE_QKD_SCHED_PRF), 1);
	assert_int_equal(ike_qkd_sched_ke(IKE_QKD_SCHED_PAPER), 1025);
	assert_int_equal(ike_qkd_sched_ke(IKE_QKD_SCHED_PRF), 1026);
	assert_string_equal(ike_xf_name(IKE_XF_KE, 1026), "QKD_ETSI014_PRF");
	c.mode = IKE_MODE_QKD;
	c.qkd_schedule = IKE_QKD_SCHED_PRF;
	assert_string_equal(ike_qkd_sched_label(&c), "prf");
	assert_false(ike_qkd_raw(&c));
	c.qkd_schedule = IKE_QKD_SCHED_PAPER;
	assert_string_equal(ike_qkd_sched_label(&c), "paper");
	assert_true(ike_qkd_raw(&c));
	c.mode = IKE_MODE_QKD_DH;
	assert_string_equal(ike_qkd_sched_label(&c), "-");
	assert_false(ike_qkd_raw(&c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_sa_prf),
		cmocka_unit_test(test_sa_paper),
		cmocka_unit_test(test_names),
	};

	log_init("test_ike_qkdsched", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the 5G key machinery of ike/: MILENAGE (TS 35.208 test
 * sets), the TS 33.220 / 33.501 KDFs and 128-NIA2. The NAS and EAP-5G
 * codecs and the AMF <-> USIM registration have their own test files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/kdf5g.h"
#include "ike/milenage.h"
#include "ike/nas.h"
#include "tests/unit/ike5g_test.h"

/* ---- MILENAGE ---------------------------------------------------------- */

/* 3GPP TS 35.208 4.3, test sets 1-6 (also in TS 35.207). */
static const struct mset {
	const char *k, *rand, *sqn, *amf, *op, *opc;
	const char *f1, *f1s, *f2, *f5, *f3, *f4, *f5s;
} msets[] = {
	{ TS1_K, TS1_RAND, "ff9bb4d0b607", "b9b9", TS1_OP, TS1_OPC,
	    "4a9ffac354dfafb3", "01cfaf9ec4e871e9", TS1_F2, "aa689c648370",
	    TS1_F3, TS1_F4, "451e8beca43b" },
	{ "0396eb317b6d1c36f19c1c84cd6ffd16",
	    "c00d603103dcee52c4478119494202e8", "fd8eef40df7d", "af17",
	    "ff53bade17df5d4e793073ce9d7579fa", TS2_OPC, "5df5b31807e258b0",
	    "a8c016e51ef4a343", "d3a628ed988620f0", "c47783995f72",
	    "58c433ff7a7082acd424220f2b67c556",
	    "21a8c1f929702adb3e738488b9f5c5da", "30f1197061c1" },
	{ "fec86ba6eb707ed08905757b1bb44b8f",
	    "9f7c8d021accf4db213ccff0c7f71a6a", "9d0277595ffc", "725c",
	    "dbc59adcb6f9a0ef735477b7fadf8374",
	    "1006020f0a478bf6b699f15c062e42b3", "9cabc3e99baf7281",
	    "95814ba2b3044324", "8011c48c0c214ed2", "33484dc2136b",
	    "5dbdbb2954e8f3cde665b046179a5098",
	    "59a92d3b476a0443487055cf88b2307b", "deacdd848cc6" },
	{ "9e5944aea94b81165c82fbf9f32db751",
	    "ce83dbc54ac0274a157c17f80d017bd6", "0b604a81eca8", "9e09",
	    "223014c5806694c007ca1eeef57f004f",
	    "a64a507ae1a2a98bb88eb4210135dc87", "74a58220cba84c49",
	    "ac2cc74a96871837", "f365cd683cd92e96", "f0b9c08ad02e",
	    "e203edb3971574f5a94b0d61b816345d",
	    "0c4524adeac041c4dd830d20854fc46b", "6085a86c6f63" },
	{ "4ab1deb05ca6ceb051fc98e77d026a84",
	    "74b0cd6031a1c8339b2b6ce2b8c4a186", "e880a1b580b6", "9f07",
	    "2d16c5cd1fdf6b22383584e3bef2a8d8",
	    "dcf07cbd51855290b92a07a9891e523e", "49e785dd12626ef2",
	    "9e85790336bb3fa2", "5860fc1bce351e7e", "31e11a609118",
	    "7657766b373d1c2138f307e3de9242f9",
	    "1c42e960d89b8fa99f2744e0708ccb53", "fe2555e54aa9" },
	{ "6c38a116ac280c454f59332ee35c8c4f",
	    "ee6466bc96202c5a557abbeff8babf63", "414b98222181", "4464",
	    "1ba00a1a7c6700ac8c3ff3e96ad08725",
	    "3803ef5363b947c6aaa225e58fae3934", "078adfb488241a57",
	    "80246b8d0186bcf1", "16c8233f05a0ac28", "45b0f69ab06c",
	    "3f8c7587fe8e4b233af676aede30ba3b",
	    "a7466cc1e6b2a1337d49d3b66e95d7b4", "1f53cd2b1113" },
};

static void
test_milenage_sets(void **state)
{
	for (size_t i = 0; i < sizeof(msets) / sizeof(msets[0]); i++) {
		const struct mset *t = &msets[i];
		uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc[16];
		uint8_t maca[8], macs[8], res[8], ck[16], ik[16], ak[6], aks[6];

		hx(t->k, k, 16);
		hx(t->rand, rand, 16);
		hx(t->sqn, sqn, 6);
		hx(t->amf, amf, 2);
		hx(t->op, op, 16);
		assert_int_equal(milenage_opc(k, op, opc), 0);
		assert_hex(opc, t->opc);
		assert_int_equal(milenage_f1(k, opc, rand, sqn, amf, maca,
				     macs),
		    0);
		assert_hex(maca, t->f1);
		assert_hex(macs, t->f1s);
		assert_int_equal(milenage_f2345(k, opc, rand, res, ck, ik, ak,
				     aks),
		    0);
		assert_hex(res, t->f2);
		assert_hex(ck, t->f3);
		assert_hex(ik, t->f4);
		assert_hex(ak, t->f5);
		assert_hex(aks, t->f5s);
		/* NULL outputs are allowed */
		assert_int_equal(milenage_f1(k, opc, rand, sqn, amf, NULL,
				     macs),
		    0);
		assert_hex(macs, t->f1s);
		assert_int_equal(milenage_f2345(k, opc, rand, NULL, NULL, ik,
				     NULL, NULL),
		    0);
		assert_hex(ik, t->f4);
	}
}

/* ---- KDF ---------------------------------------------------------------- */

/*
 * The TS 33.220 KDF on published TS 33.401 KeNB vectors (KeNB = KDF(KASME,
 * FC 0x11, uplink NAS COUNT)), as in OpenAirInterface's
 * openair-cn/TEST/test_secu_kenb.c; rechecked with python3 hmac.
 */
static void
test_kdf_generic(void **state)
{
	static const struct {
		const char *key;
		uint32_t    count;
		const char *out;
	} v[] = {
		{ "238e457e0f758badbca8d34bb2612c10428d426757cb5553b2b184fa64bfc549",
		    0xdb1a3569,
		    "8eb1bf0083bd79281ef7034bf677e9ec529f196e15287514a2d122acf713b8e8" },
		{ "fa77e41f693c2a6e71455cb8687e6e6058ef91e2f5abd1bd3c496179481f308c",
		    0x00000012,
		    "0afe81266de52b8c8f1c3f4fe799be883f364b018e7368c41f14dd6d050e13e1" },
	};
	uint8_t key[32], out[32], cnt[4], big[300];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct kdf5g_param p[1] = { { cnt, 4 } };

		hx(v[i].key, key, 32);
		cnt[0] = (uint8_t)(v[i].count >> 24);
		cnt[1] = (uint8_t)(v[i].count >> 16);
		cnt[2] = (uint8_t)(v[i].count >> 8);
		cnt[3] = (uint8_t)v[i].count;
		assert_int_equal(kdf5g(key, 32, 0x11, p, 1, out), 0);
		assert_hex(out, v[i].out);
	}
	/* too long / too many parameters are refused */
	{
		struct kdf5g_param p[5] = { { big, sizeof(big) } };

		memset(big, 0, sizeof(big));
		assert_int_equal(kdf5g(key, 32, 0x6a, p, 1, out), -1);
		p[0].len = 1;
		assert_int_equal(kdf5g(key, 32, 0x6a, p, 5, out), -1);
		assert_int_equal(kdf5g(NULL, 0, 0x6a, p, 1, out), -1);
	}
}

/* The 5G-AKA chain on test set 1: the values of tests/unit/ike5g_test.h. */
static void
test_kdf_5g_chain(void **state)
{
	uint8_t ck[16], ik[16], rand[16], res[8], sqnak[6];
	uint8_t kausf[32], ress[16], hx16[16], kseaf[32], kamf[32], k[32];
	uint8_t abba[2] = { 0, 0 }, kn[16];
	char	snn[KDF5G_SNN_MAX];

	assert_int_equal(kdf5g_snn("208", "93", snn, sizeof(snn)), 0);
	assert_string_equal(snn, "5G:mnc093.mcc208.3gppnetwork.org");
	assert_int_equal(kdf5g_snn("310", "410", snn, sizeof(snn)), 0);
	assert_string_equal(snn, "5G:mnc410.mcc310.3gppnetwork.org");
	assert_int_equal(kdf5g_snn("20", "93", snn, sizeof(snn)), -1);
	assert_int_equal(kdf5g_snn("208", "9a", snn, sizeof(snn)), -1);
	assert_int_equal(kdf5g_snn("208", "93", snn, 10), -1);
	assert_int_equal(kdf5g_snn("208", "93", snn, sizeof(snn)), 0);

	hx(msets[0].f3, ck, 16);
	hx(msets[0].f4, ik, 16);
	hx(msets[0].rand, rand, 16);
	hx(msets[0].f2, res, 8);
	hx("55f328b43577", sqnak, 6); /* ff9bb4d0b607 ^ aa689c648370 */
	assert_int_equal(kdf5g_kausf(ck, ik, snn, sqnak, kausf), 0);
	assert_hex(kausf, V_KAUSF);
	assert_int_equal(kdf5g_res_star(ck, ik, snn, rand, res, 8, ress), 0);
	assert_hex(ress, V_RESS);
	assert_int_equal(kdf5g_res_star(ck, ik, snn, rand, res, 2, ress), -1);
	assert_int_equal(kdf5g_hres_star(rand, ress, hx16), 0);
	assert_hex(hx16, V_HXRES);
	assert_int_equal(kdf5g_kseaf(kausf, snn, kseaf), 0);
	assert_hex(kseaf, V_KSEAF);
	assert_int_equal(kdf5g_kamf(kseaf, "208930000000001", abba, 2, kamf),
	    0);
	assert_hex(kamf, V_KAMF);
	assert_int_equal(kdf5g_kamf(kseaf, "imsi-208930000000001", abba, 2, k),
	    0);
	assert_memory_equal(k, kamf, 32);
	assert_int_equal(kdf5g_kamf(kseaf, "imsi-2089x", abba, 2, k), -1);
	assert_int_equal(kdf5g_kn3iwf(kamf, 0, k), 0);
	assert_hex(k, V_KN3IWF);
	assert_int_equal(kdf5g_nas_key(kamf, KDF5G_ALG_NAS_INT, NAS_ALG_IA2,
			     kn),
	    0);
	assert_hex(kn, V_KNASINT);
}

/* 128-NIA2 = 128-EIA2, TS 33.401 Annex C.2, test set 2 (byte aligned). */
static void
test_nia2(void **state)
{
	uint8_t key[16], msg[8], mac[4];

	hx("d3c5d592327fb11c4035c6680af8c6d1", key, 16);
	hx("484583d5afe082ae", msg, 8);
	assert_int_equal(nas_nia2(key, 0x398a59b4, 0x1a, 1, msg, 8, mac), 0);
	assert_hex(mac, "b93787e6");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_milenage_sets),
		cmocka_unit_test(test_kdf_generic),
		cmocka_unit_test(test_kdf_5g_chain),
		cmocka_unit_test(test_nia2),
	};

	log_init("test_ike_5g", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

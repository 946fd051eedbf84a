/*
 * Shared by the unit tests of ike/'s 5G modules (test_ike_5g.c,
 * test_ike_nas.c, test_ike_eap5g.c, test_ike_amf.c): hex helpers and the
 * reference values they check against. Include after <cmocka.h>.
 */
#ifndef TESTS_IKE5G_TEST_H
#define TESTS_IKE5G_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Hex string -> bytes; the length must match exactly. */
static inline void
hx(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(s), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static inline void
assert_hex(const uint8_t *got, const char *want)
{
	uint8_t w[64];
	size_t	n = strlen(want) / 2;

	assert_true(n <= sizeof(w));
	hx(want, w, n);
	assert_memory_equal(got, w, n);
}

/* 3GPP TS 35.208 4.3 test set 1 (the default subscriber of ike/amf.h). */
#define TS1_K	 "465b5ce8b199b49faa5f0a2ee238a6bc"
#define TS1_RAND "23553cbe9637a89d218ae64dae47bf35"
#define TS1_OP	 "cdc202d5123e20f62b6d676ac72cb318"
#define TS1_OPC	 "cd63cb71954a9f4e48a5994e37a02baf"
#define TS1_F2	 "a54211d5e3ba50bf"		    /* RES */
#define TS1_F3	 "b40ba9a3c58b2a05bbf0d987b21bf8cb" /* CK */
#define TS1_F4	 "f769bcd751044604127672711c6d3441" /* IK */
/* test set 2's OPc */
#define TS2_OPC "53c15671c60a4b731c55b4a441c0bde2"

/*
 * The 5G-AKA chain on test set 1 (CK, IK, RES, SQN xor AK) with SNN
 * "5G:mnc093.mcc208.3gppnetwork.org", SUPI 208930000000001, ABBA 0000,
 * uplink NAS COUNT 0. Expected values computed independently with:
 *
 * python3 -c "import hmac,hashlib;h=bytes.fromhex
 * kdf=lambda k,fc,*p:hmac.new(k,bytes([fc])+b''.join(x+len(x).to_bytes(2,'big') for x in p),hashlib.sha256).digest()
 * ck=h('b40ba9a3c58b2a05bbf0d987b21bf8cb');ik=h('f769bcd751044604127672711c6d3441')
 * snn=b'5G:mnc093.mcc208.3gppnetwork.org';r=h('23553cbe9637a89d218ae64dae47bf35')
 * ka=kdf(ck+ik,0x6a,snn,h('55f328b43577'));rs=kdf(ck+ik,0x6b,snn,r,h('a54211d5e3ba50bf'))[16:]
 * ks=kdf(ka,0x6c,snn);km=kdf(ks,0x6d,b'208930000000001',h('0000'))
 * print(ka.hex(),rs.hex(),hashlib.sha256(r+rs).digest()[16:].hex(),ks.hex(),km.hex(),
 *  kdf(km,0x6e,h('00000000'),h('02')).hex(),kdf(km,0x69,h('02'),h('02'))[16:].hex())"
 */
#define V_KAUSF                                                                \
	"f2e35260f85194d4f891504d02111e56689ac23dd393bee3abbcc5bfbc013ef9"
#define V_RESS	"5cc9527f4d21c43bee83a15443acf1c4"
#define V_HXRES "6970075e3c8245fdc2073003cf166279"
#define V_KSEAF                                                                \
	"cfddde483bd1318a412e98870f556410905be4fb7500abed93ee16af71bbb3fa"
#define V_KAMF                                                                 \
	"9d63b519775a92ca861ca6a50d848fa8ebf160ea7b73735a85b33737e73c55b4"
#define V_KN3IWF                                                               \
	"6d4bf4108fea275ca013ff9c510d2e6f0fd80964fc0c203a6bee55df5e303210"
#define V_KNASINT "28ddb5356880149b9fee22f2367522a4"

#endif

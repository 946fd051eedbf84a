/*
 * Unit tests for ike/subs (the subscriber range of ike-ue --load and
 * ike-n3iwf --subscribers): the K/OPc derivation against vectors computed
 * apart (Python's hmac), the range and its checks, the AMF's SQN per SUPI
 * (hash table), and whole 5G-AKA runs of the AMF emulator with a range
 * against USIMs whose keys come from subs_derive().
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
#include "ike/amf.h"
#include "ike/ikecfg.h"
#include "ike/subs.h"
#include "ike/usim.h"

/* seed 00 01 .. 1f */
#define SEED64                                                                 \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* python3: hmac.new(bytes(range(32)), b"K208930000000042",
 * hashlib.sha256).hexdigest()[:32], and b"OPc..." */
static const uint8_t k42[16] = { 0xf0, 0xc7, 0x0c, 0x95, 0x72, 0xb5, 0x78, 0x33,
	0xf2, 0xe4, 0x59, 0xe0, 0x2f, 0x71, 0x3a, 0xde };
static const uint8_t opc42[16] = { 0x67, 0x5e, 0x62, 0x56, 0xbe, 0x48, 0x11,
	0x4e, 0xfc, 0x3f, 0x3f, 0x28, 0xb9, 0x44, 0x64, 0xae };

static struct subs *
range(uint64_t n, const char *first)
{
	struct amf_sub base;
	struct subs   *s;
	char	       err[256];

	amf_sub_default(&base);
	s = subs_new(&base, first, n, SEED64, err, sizeof(err));
	amf_sub_wipe(&base);
	return s;
}

static void
test_derive_vector(void **state)
{
	uint8_t	       seed[32], k[16], opc[16];
	struct subs   *s;
	struct amf_sub u, base;

	(void)state;
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)i;
	assert_int_equal(subs_keys(seed, 32, "208930000000042", k, opc), 0);
	assert_memory_equal(k, k42, 16);
	assert_memory_equal(opc, opc42, 16);
	/* UE 41 of a range from ...001 is SUPI ...042: the same keys */
	assert_non_null(s = range(100, NULL));
	assert_int_equal(subs_count(s), 100);
	assert_int_equal(subs_derive(s, 41, &u), 0);
	assert_string_equal(u.supi, "208930000000042");
	assert_memory_equal(u.k, k42, 16);
	assert_memory_equal(u.opc, opc42, 16);
	/* the base's AMF field, MNC length and start SQN */
	amf_sub_default(&base);
	assert_memory_equal(u.amf, base.amf, 2);
	assert_int_equal(u.mnc_len, base.mnc_len);
	assert_true(u.sqn == base.sqn);
	/* another SUPI, other keys; past the range: none */
	assert_int_equal(subs_derive(s, 42, &u), 0);
	assert_string_equal(u.supi, "208930000000043");
	assert_memory_not_equal(u.k, k42, 16);
	assert_int_equal(subs_derive(s, 100, &u), -1);
	amf_sub_wipe(&u);
	subs_free(s);
}

static void
test_range_checks(void **state)
{
	struct amf_sub base;
	char	       err[256];
	struct subs   *s;

	(void)state;
	amf_sub_default(&base);
	/* zero-padded to the width of supi_first */
	assert_non_null(s = range(10, "imsi-208930000000995"));
	{
		struct amf_sub u;

		assert_int_equal(subs_derive(s, 9, &u), 0);
		assert_string_equal(u.supi, "208930000001004");
		amf_sub_wipe(&u);
	}
	subs_free(s);
	assert_null(
	    subs_new(&base, "208939999999999", 2, SEED64, err, sizeof(err)));
	assert_non_null(strstr(err, "cross into another MCC/MNC"));
	assert_null(
	    subs_new(&base, "999999999999999", 2, SEED64, err, sizeof(err)));
	assert_non_null(strstr(err, "do not fit in 15 digits"));
	assert_null(subs_new(&base, "20893x", 2, SEED64, err, sizeof(err)));
	assert_non_null(strstr(err, "\"20893x\""));
	assert_null(subs_new(&base, NULL, 2, "0011", err, sizeof(err)));
	assert_non_null(strstr(err, "32-64 hex digits"));
	/* a bad seed is never quoted */
	assert_null(subs_new(&base, NULL, 2, "000102030405060708090a0b0c0d0eZZ",
	    err, sizeof(err)));
	assert_null(strstr(err, "0001020304"));
	assert_non_null(strstr(err, "not hex digits"));
	amf_sub_wipe(&base);
}

static void
test_find_and_sqn(void **state)
{
	struct subs   *s;
	struct amf_sub u, base;
	char	       supi[24];

	(void)state;
	amf_sub_default(&base);
	assert_non_null(s = range(5000, "208930000010000"));
	assert_int_equal(subs_find(s, "208930000010042", &u), 0);
	assert_true(u.sqn == base.sqn); /* never served: the base's */
	assert_int_equal(subs_find(s, "208930000009999", &u), -1);
	assert_int_equal(subs_find(s, "208930000015000", &u), -1);
	assert_int_equal(subs_find(s, "20893000001004", &u), -1);
	assert_int_equal(subs_find(s, "20893000001004x", &u), -1);
	/* every SQN set stays with its SUPI, through the table's growth */
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(supi, sizeof(supi), "%llu", 208930000010000ull + i);
		assert_int_equal(subs_sqn_set(s, supi, 1000 + i), 0);
	}
	assert_int_equal(subs_served(s), 3000);
	for (unsigned i = 0; i < 3000; i += 7) {
		snprintf(supi, sizeof(supi), "%llu", 208930000010000ull + i);
		assert_int_equal(subs_find(s, supi, &u), 0);
		assert_true(u.sqn == 1000 + i);
	}
	assert_int_equal(subs_sqn_set(s, "208930000010001", 77), 0);
	assert_int_equal(subs_served(s), 3000);
	assert_int_equal(subs_find(s, "208930000010001", &u), 0);
	assert_true(u.sqn == 77);
	assert_int_equal(subs_find(s, "208930000014999", &u), 0);
	assert_true(u.sqn == base.sqn);
	/* out of the range: ignored, not stored */
	assert_int_equal(subs_sqn_set(s, "208930000020000", 5), 0);
	assert_int_equal(subs_served(s), 3000);
	amf_sub_wipe(&u);
	subs_free(s);
}

/* 5G-AKA between the range's AMF and a USIM of sub: 1 both done, -1 the
 * AMF or the USIM refused. */
static int
aka(struct subs *s, const struct amf_sub *ue_sub, uint64_t *sqn)
{
	struct amf_sub base;
	struct amf    *a;
	struct usim   *u;
	struct buf     up, down;
	int	       r = 0;

	amf_sub_default(&base);
	assert_non_null(a = amf_new(&base));
	amf_set_subs(a, s);
	assert_non_null(u = usim_new(ue_sub));
	buf_init(&up, 4096);
	buf_init(&down, 4096);
	assert_int_equal(usim_start(u, &up), 0);
	for (int i = 0; i < 8 && r == 0; i++) {
		buf_reset(&down);
		if (amf_handle(a, up.data, up.len, &down) == -1 ||
		    amf_failed(a)) {
			r = -1;
			break;
		}
		buf_reset(&up);
		if (usim_handle(u, down.data, down.len, &up) == -1 ||
		    usim_failed(u))
			r = -1;
		else if (amf_auth_done(a) && usim_auth_done(u))
			r = 1;
	}
	*sqn = amf_sqn(a);
	buf_free(&up);
	buf_free(&down);
	usim_free(u);
	amf_free(a);
	amf_sub_wipe(&base);
	return r;
}

static void
test_amf_range(void **state)
{
	struct subs   *s, *other;
	struct amf_sub u, base;
	uint64_t       sqn, sqn2, sqn3;
	char	       err[256];

	(void)state;
	amf_sub_default(&base);
	assert_non_null(s = range(50, "208930000000100"));
	/* UE 7 of the range registers; its SQN is stored */
	assert_int_equal(subs_derive(s, 7, &u), 0);
	assert_int_equal(aka(s, &u, &sqn), 1);
	assert_true(sqn == ((base.sqn + 1) & AMF_SQN_MASK));
	assert_int_equal(subs_served(s), 1);
	/* again with a fresh USIM: a fresher SQN, still accepted */
	assert_int_equal(aka(s, &u, &sqn2), 1);
	assert_true(sqn2 == sqn + 1);
	/* another UE starts from the base's SQN */
	assert_int_equal(subs_derive(s, 8, &u), 0);
	assert_int_equal(aka(s, &u, &sqn3), 1);
	assert_true(sqn3 == sqn);
	assert_int_equal(subs_served(s), 2);
	/* a SUPI past the range: Registration Reject, nothing stored */
	assert_non_null(other = range(60, "208930000000100"));
	assert_int_equal(subs_derive(other, 55, &u), 0);
	assert_int_equal(aka(s, &u, &sqn), -1);
	assert_int_equal(subs_served(s), 2);
	subs_free(other);
	/* the right SUPI with another seed's keys: the USIM refuses */
	assert_non_null(
	    other = subs_new(&base, "208930000000100", 50,
		"ff0102030405060708090a0b0c0d0e0f", err, sizeof(err)));
	assert_int_equal(subs_derive(other, 7, &u), 0);
	assert_int_equal(aka(s, &u, &sqn), -1);
	subs_free(other);
	amf_sub_wipe(&u);
	amf_sub_wipe(&base);
	subs_free(s);
}

static void
test_cfg_parsers(void **state)
{
	uint8_t	 seed[IKE_SUB_SEED_MAX];
	size_t	 len;
	uint64_t v;
	unsigned d;
	char	 err[256];

	(void)state;
	assert_int_equal(ike_sub_seed(SEED64, seed, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 32);
	assert_int_equal(seed[31], 0x1f);
	assert_int_equal(ike_sub_seed("00112233445566778899aabbccddeeff", seed,
			     &len, err, sizeof(err)),
	    0);
	assert_int_equal(len, 16);
	assert_int_equal(ike_sub_seed("00112233445566778899aabbccddeef", seed,
			     &len, err, sizeof(err)),
	    -1);
	assert_int_equal(ike_sub_seed(SEED64 "00", seed, &len, err,
			     sizeof(err)),
	    -1);
	assert_int_equal(ike_supi_range("imsi-208930000000001", 2, 999, &v, &d,
			     err, sizeof(err)),
	    0);
	assert_true(v == 208930000000001ull);
	assert_int_equal(d, 15);
	assert_int_equal(ike_supi_range("20893999", 2, 1, &v, &d, err,
			     sizeof(err)),
	    0);
	assert_int_equal(ike_supi_range("20893999", 2, 2, &v, &d, err,
			     sizeof(err)),
	    -1);
	assert_int_equal(ike_supi_range("20893", 2, 1, &v, &d, err,
			     sizeof(err)),
	    -1);
	assert_int_equal(ike_supi_range("208930000000001", 2, 0, &v, &d, err,
			     sizeof(err)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive_vector),
		cmocka_unit_test(test_range_checks),
		cmocka_unit_test(test_find_and_sqn),
		cmocka_unit_test(test_amf_range),
		cmocka_unit_test(test_cfg_parsers),
	};

	log_init("test_ike_subs", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

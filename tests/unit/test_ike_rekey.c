/*
 * ike/rekey: the collision rule of RFC 7296 2.8.1 (the exchange holding the
 * lowest of the four nonces made the redundant SA) and the keys of a
 * rekeyed Child SA, prf+(SK_d, [g^ir] | Ni | Nr) with "i" = the UE whoever
 * started the exchange; vectors from python3's hmac (generator below).
 *
 *   def prf(k, d): return hmac.new(k, d, hashlib.sha256).digest()
 *   def prfplus(k, s, n): T = b""; out = b""; i = 1
 *       while len(out) < n: T = prf(k, T + s + bytes([i])); out += T; i += 1
 *       return out[:n]
 *   skd = bytes(range(32)); gir = bytes(0xa0 + i for i in range(32))
 *   ni = b"\x11" * 32; nr = b"\x22" * 32
 *   prfplus(skd, gir + ni + nr, 128), prfplus(skd, ni + nr, 128),
 *   prfplus(skd, gir + ni + nr, 72)   (AES-GCM: 36-byte keys, no integ)
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
#include "ike/ikev2.h"
#include "ike/rekey.h"

static const char km_pfs[] =
    "939ac92ccfe4d78f3a52aaf2a33bbb2c2857cc42d924762c3c222ff3aa509eee"
    "6d2dc333fcac33fdcb5787ffed4d638f49142ffbb388a487d45a537b78506f61"
    "7be3d4df6dcfe5d7b78dc5cad1b5ec7918ac15104831378e7826693e6ebc1dbc"
    "e47b56f5dfb96b3671c823c75ee92d686c45a763daeb7c2130c20b5b946c4079";
static const char km_nopfs[] =
    "bcd2c688c3771d5d4a21b639b82a5075d1bc4dbdbb74c51148c3fb4ac5441799"
    "8047086bb4ecf86f629f5b6a1f354529f90f42a4b877312998baaa00b92317a8"
    "06f43efd1e6e21cd60f6944198a5692db9950f76c7dab0f666032e922e416d25"
    "70cb35e564635bb7a6573aec3ec53dbd07e84f3ffa5b61f2e33fa581ed06963c";

static void
unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

struct keymat_fx {
	struct ike_key	     skd;
	uint8_t		     gir[32], ni[32], nr[32];
	struct ike_prop_desc p;
};

static void
fx_init(struct keymat_fx *f, int gcm)
{
	memset(f, 0, sizeof(*f));
	f->skd.len = 32;
	for (size_t i = 0; i < 32; i++) {
		f->skd.k[i] = (uint8_t)i;
		f->gir[i] = (uint8_t)(0xa0 + i);
	}
	memset(f->ni, 0x11, 32);
	memset(f->nr, 0x22, 32);
	f->p.proto = IKE_PROTO_ESP;
	f->p.encr = gcm ? IKE_ENCR_AES_GCM_16 : IKE_ENCR_AES_CBC;
	f->p.encr_bits = 256;
	f->p.integ = gcm ? IKE_INTEG_NONE : IKE_INTEG_HMAC_SHA2_256_128;
}

static void
check_key(const struct ike_key *k, const uint8_t *want, size_t len)
{
	assert_int_equal(k->len, len);
	assert_memory_equal(k->k, want, len);
}

/* CBC + HMAC: ei | ai | er | ar, swapped when the N3IWF started. */
static void
test_keymat_cbc(void **state)
{
	struct keymat_fx      f;
	struct ike_child_keys k;
	uint8_t		      want[128], nopfs[128];

	(void)state;
	fx_init(&f, 0);
	unhex(km_pfs, want, sizeof(want));
	unhex(km_nopfs, nopfs, sizeof(nopfs));
	memset(&k, 0, sizeof(k));
	assert_int_equal(ike_rekey_child_keymat(&f.skd, f.gir, 32, f.ni, 32,
			     f.nr, 32, &f.p, true, &k),
	    0);
	check_key(&k.ei, want, 32);
	check_key(&k.ai, want + 32, 32);
	check_key(&k.er, want + 64, 32);
	check_key(&k.ar, want + 96, 32);
	/* The N3IWF started: its i -> r is N3IWF -> UE, our "r". */
	assert_int_equal(ike_rekey_child_keymat(&f.skd, f.gir, 32, f.ni, 32,
			     f.nr, 32, &f.p, false, &k),
	    0);
	check_key(&k.er, want, 32);
	check_key(&k.ar, want + 32, 32);
	check_key(&k.ei, want + 64, 32);
	check_key(&k.ai, want + 96, 32);
	/* No g^ir (no PFS): prf+(SK_d, Ni | Nr). */
	assert_int_equal(ike_rekey_child_keymat(&f.skd, NULL, 0, f.ni, 32, f.nr,
			     32, &f.p, true, &k),
	    0);
	check_key(&k.ei, nopfs, 32);
	check_key(&k.ar, nopfs + 96, 32);
	/* Another g^ir (a fresh QKD key): other keys. */
	f.gir[0] ^= 1;
	assert_int_equal(ike_rekey_child_keymat(&f.skd, f.gir, 32, f.ni, 32,
			     f.nr, 32, &f.p, true, &k),
	    0);
	assert_memory_not_equal(k.ei.k, want, 32);
	ike_key_wipe(&k.ei);
}

/* AES-GCM: 36-byte keys (key + salt), no integrity keys. */
static void
test_keymat_gcm(void **state)
{
	struct keymat_fx      f;
	struct ike_child_keys k;
	uint8_t		      want[72];

	(void)state;
	fx_init(&f, 1);
	unhex(km_pfs, want, sizeof(want));
	memset(&k, 0, sizeof(k));
	assert_int_equal(ike_rekey_child_keymat(&f.skd, f.gir, 32, f.ni, 32,
			     f.nr, 32, &f.p, true, &k),
	    0);
	check_key(&k.ei, want, 36);
	check_key(&k.er, want + 36, 36);
	assert_int_equal(k.ai.len, 0);
	assert_int_equal(ike_rekey_child_keymat(&f.skd, f.gir, 32, f.ni, 32,
			     f.nr, 32, &f.p, false, &k),
	    0);
	check_key(&k.er, want, 36);
	check_key(&k.ei, want + 36, 36);
}

/* 2.8.1: lowest of the four nonces; byte order, then the shorter first. */
static void
test_collision_rule(void **state)
{
	static const struct {
		const char *ni, *nr, *pni, *pnr;
		bool	    lose;
	} t[] = {
		{ "05", "90", "10", "20", true },     /* our Ni lowest */
		{ "90", "05", "10", "20", true },     /* our Nr lowest */
		{ "10", "20", "05", "90", false },    /* the peer's Ni */
		{ "10", "20", "90", "05", false },    /* the peer's Nr */
		{ "1000", "ff", "10ff", "ff", true }, /* second byte decides */
		{ "10", "ff", "1000", "ff", true }, /* prefix: shorter lower */
		{ "1000", "ff", "10", "ff", false },
		{ "ff00", "fe", "ff01", "fd", false },
	};
	uint8_t v[4][8];
	size_t	l[4];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *h[4] = { t[i].ni, t[i].nr, t[i].pni, t[i].pnr };

		for (size_t j = 0; j < 4; j++) {
			l[j] = strlen(h[j]) / 2;
			unhex(h[j], v[j], l[j]);
		}
		assert_int_equal(ike_rekey_we_lose(v[0], l[0], v[1], l[1], v[2],
				     l[2], v[3], l[3]),
		    t[i].lose);
		/* The peer, with the roles swapped, decides the other way. */
		assert_int_equal(ike_rekey_we_lose(v[2], l[2], v[3], l[3], v[0],
				     l[0], v[1], l[1]),
		    !t[i].lose);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keymat_cbc),
		cmocka_unit_test(test_keymat_gcm),
		cmocka_unit_test(test_collision_rule),
	};

	log_init("test_ike_rekey", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

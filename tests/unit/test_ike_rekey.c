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
#include "ike/proposal.h"
#include "ike/rekey.h"
#include "ike/rekey_int.h"

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

/*
 * RFC 7296 2.8: a Child SA rekey carries the selectors of the SA it
 * replaces. The tail rk_send and the responder build (SA, Nonce, TSi,
 * TSr) for an NWu signalling SA (the UE's inner address <-> NAS_IP),
 * parsed back, and its TS payloads against bytes written here from RFC
 * 7296 3.13.1: TSi is the side of whoever starts the exchange.
 */
static const char ts_ue_hex[] = "01000000" /* 1 selector */
				"0700001000"
				"00ffff"
				"0a2d0002"
				"0a2d0002"; /* 10.45.0.2 */
static const char ts_n3_hex[] = "01000000"
				"0700001000"
				"00ffff"
				"0a000001"
				"0a000001"; /* NAS_IP 10.0.0.1 */

static const char ts_any_hex[] = "01000000"
				 "070000100000ffff"
				 "00000000ffffffff"; /* 0.0.0.0/0 */

static void
ts_tail(enum ike_role role, bool request, struct buf *b, struct ike_pld *pl)
{
	struct ikecfg	     cfg;
	struct ike_ep	     ep;
	struct ike_child     ch;
	struct ike_prop_desc p;
	struct ike_chain     c;
	uint8_t		     nonce[32];

	memset(&cfg, 0, sizeof(cfg));
	memset(&ep, 0, sizeof(ep));
	memset(&ch, 0, sizeof(ch));
	memset(nonce, 0x5a, sizeof(nonce));
	cfg.role = role;
	cfg.aead = 1;
	ep.cfg = &cfg;
	ike_prop_esp(&cfg, &p);
	p.spi_len = 4;
	assert_int_equal(ike_prop_ts_host(&ch.ts_ue, "10.45.0.2"), 0);
	assert_int_equal(ike_prop_ts_host(&ch.ts_n3, "10.0.0.1"), 0);
	buf_init(b, 4096);
	ike_chain_init(&c, b, IKE_CHAIN_DETACHED);
	assert_int_equal(rk_add_tail(&ep, &c, &p, nonce, sizeof(nonce), &ch,
			     request, NULL, NULL),
	    0);
	memset(pl, 0, sizeof(*pl));
	assert_int_equal(ike_pld_parse(c.first, b->data, b->len, pl), 0);
	assert_true(IKE_PLD_HAS(pl, IKE_PL_TSI));
	assert_true(IKE_PLD_HAS(pl, IKE_PL_TSR));
}

/* The bytes hex appear in b. */
static bool
has_body(const struct buf *b, const char *hex)
{
	uint8_t want[64];
	size_t	n = strlen(hex) / 2;

	unhex(hex, want, n);
	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, want, n) == 0)
			return true;
	return false;
}

static void
test_rekey_ts(void **state)
{
	static const struct {
		enum ike_role role;
		bool	      request, tsi_is_ue;
	} t[] = {
		{ IKE_ROLE_UE, true, true },	 /* the UE rekeys */
		{ IKE_ROLE_N3IWF, false, true }, /* ... the N3IWF answers */
		{ IKE_ROLE_N3IWF, true, false }, /* the N3IWF rekeys */
		{ IKE_ROLE_UE, false, false },	 /* ... the UE answers */
	};
	struct ike_ts_pld ue, n3;
	char		  s[IKE_TS_STRLEN];

	(void)state;
	assert_int_equal(ike_prop_ts_host(&ue, "10.45.0.2"), 0);
	assert_int_equal(ike_prop_ts_host(&n3, "10.0.0.1"), 0);
	assert_string_equal(ike_prop_ts_str(&ue, s, sizeof(s)),
	    "10.45.0.2-10.45.0.2/0/0-65535");
	{ /* positive control of the 0.0.0.0/0 search below */
		struct buf	 b;
		struct ike_chain c;

		buf_init(&b, 256);
		ike_chain_init(&c, &b, IKE_CHAIN_DETACHED);
		assert_int_equal(ike_prop_add_ts_any(&c, IKE_PL_TSI), 0);
		assert_true(has_body(&b, ts_any_hex));
		buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ike_pld		 pl;
		struct buf		 b;
		struct ikecfg		 cfg;
		struct ike_ep		 ep;
		const struct ike_ts_pld *gue, *gn3;

		ts_tail(t[i].role, t[i].request, &b, &pl);
		assert_memory_equal(&pl.tsi, t[i].tsi_is_ue ? &ue : &n3,
		    sizeof(ue));
		assert_memory_equal(&pl.tsr, t[i].tsi_is_ue ? &n3 : &ue,
		    sizeof(ue));
		assert_true(has_body(&b, ts_ue_hex));
		assert_true(has_body(&b, ts_n3_hex));
		assert_false(has_body(&b, ts_any_hex));
		/* The other side reads them back as the same two sides. */
		memset(&cfg, 0, sizeof(cfg));
		memset(&ep, 0, sizeof(ep));
		cfg.role =
		    t[i].role == IKE_ROLE_UE ? IKE_ROLE_N3IWF : IKE_ROLE_UE;
		ep.cfg = &cfg;
		rk_ts_of(&ep, &pl, t[i].request, &gue, &gn3);
		assert_memory_equal(gue, &ue, sizeof(ue));
		assert_memory_equal(gn3, &n3, sizeof(n3));
		buf_free(&b);
	}
}

/* Narrowed or the same: within; wider, disjoint, other protocol: not. */
static void
test_ts_within(void **state)
{
	struct ike_ts_pld any, host, host2, tcp, range, pl_tsi, pl_tsr;
	struct ike_pld	  pl;

	(void)state;
	ike_prop_ts_any(&any);
	assert_int_equal(ike_prop_ts_host(&host, "10.45.0.2"), 0);
	assert_int_equal(ike_prop_ts_host(&host2, "10.45.0.3"), 0);
	assert_int_equal(ike_prop_ts_host(&range, "10.45.0.0"), 0);
	range.ts[0].end[3] = 0xff; /* 10.45.0.0-10.45.0.255 */
	tcp = host;
	tcp.ts[0].ipproto = 6;
	tcp.ts[0].sport = tcp.ts[0].eport = 80;
	assert_int_equal(ike_prop_ts_host(&host, "not an address"), -1);
	assert_true(ike_prop_ts_within(&host, &host));
	assert_true(ike_prop_ts_within(&host, &any));
	assert_true(ike_prop_ts_within(&host, &range));
	assert_true(ike_prop_ts_within(&tcp, &host));
	assert_false(ike_prop_ts_within(&any, &host));
	assert_false(ike_prop_ts_within(&range, &host));
	assert_false(ike_prop_ts_within(&host2, &host));
	assert_false(ike_prop_ts_within(&host, &tcp));
	memset(&pl_tsi, 0, sizeof(pl_tsi));
	assert_false(ike_prop_ts_within(&pl_tsi, &any)); /* empty */
	/* A responder's answer: narrowed taken, wider or missing refused. */
	memset(&pl, 0, sizeof(pl));
	pl.seen = IKE_PLD_BIT(IKE_PL_TSI) | IKE_PLD_BIT(IKE_PL_TSR);
	pl.tsi = host;
	pl.tsr = any;
	pl_tsi = range;
	pl_tsr = any;
	assert_int_equal(ike_prop_ts_reply(&pl, &pl_tsi, &pl_tsr), 0);
	assert_memory_equal(&pl_tsi, &host, sizeof(host));
	pl.tsi = range;
	pl_tsi = host;
	assert_int_equal(ike_prop_ts_reply(&pl, &pl_tsi, &pl_tsr), -1);
	assert_memory_equal(&pl_tsi, &host, sizeof(host)); /* unchanged */
	pl.tsi = host2;
	assert_int_equal(ike_prop_ts_reply(&pl, &pl_tsi, &pl_tsr), -1);
	pl.tsi = host;
	pl.seen = IKE_PLD_BIT(IKE_PL_TSI);
	assert_int_equal(ike_prop_ts_reply(&pl, &pl_tsi, &pl_tsr), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keymat_cbc),
		cmocka_unit_test(test_keymat_gcm),
		cmocka_unit_test(test_collision_rule),
		cmocka_unit_test(test_rekey_ts),
		cmocka_unit_test(test_ts_within),
	};

	log_init("test_ike_rekey", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

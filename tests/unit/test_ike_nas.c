/*
 * Unit tests for ike/nas: the 5GMM codec (every message type round-trips,
 * exact wire bytes, truncations, malformed PDUs), SUCI and PLMN coding,
 * and NAS security (NIA2/NIA0 protect and verify, replay, bit flips).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/nas.h"
#include "tests/unit/ike5g_test.h"

/*
 * Every strict prefix of a valid PDU must be rejected by nas_decode, except
 * one that ends exactly where a trailing optional IE starts (`cut`, or 0):
 * that is the same message without the IE, which TS 24.501 allows.
 */
static void
nas_truncations(const struct buf *b, size_t cut)
{
	struct nas_msg m;

	for (size_t n = 0; n < b->len; n++)
		if (n != cut)
			assert_int_equal(nas_decode(b->data, n, &m), -1);
	if (cut) {
		assert_int_equal(nas_decode(b->data, cut, &m), 0);
		assert_int_equal(m.has_cap | m.has_auts | (m.id_len == 11), 0);
	}
}

static void
nas_roundtrip(const struct nas_msg *in, struct nas_msg *out, size_t cut)
{
	struct buf b;

	buf_init(&b, NAS_MSG_MAX);
	assert_int_equal(nas_encode(in, &b), 0);
	assert_int_equal(b.data[0], 0x7e);
	assert_int_equal(b.data[1], 0x00);
	assert_int_equal(b.data[2], in->type);
	assert_int_equal(nas_decode(b.data, b.len, out), 0);
	assert_int_equal(out->type, in->type);
	nas_truncations(&b, cut ? b.len - cut : 0);
	buf_free(&b);
}

/* ---- the messages, as one table ----------------------------------------- */

static const uint8_t suci[] = { 0x01, 0x02, 0xf8, 0x39, 0xf0, 0xff, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x10 };

/* Registration Request with SUCI (null scheme) */
static void
fill_reg_request(struct nas_msg *m)
{
	m->reg_type = NAS_REGTYPE_INITIAL;
	m->ngksi = NAS_NGKSI_NONE;
	assert_int_equal(nas_suci_build("imsi-208930000000001", 2, m->id,
			     &m->id_len),
	    0);
	assert_int_equal(m->id_len, sizeof(suci));
	assert_memory_equal(m->id, suci, sizeof(suci));
	m->has_cap = true;
	m->cap_ea = 0x80;
	m->cap_ia = 0xa0;
}

static void
check_reg_request(const struct nas_msg *m, const struct nas_msg *d)
{
	char imsi[16];

	assert_int_equal(d->reg_type, NAS_REGTYPE_INITIAL);
	assert_int_equal(d->ngksi, NAS_NGKSI_NONE);
	assert_int_equal(d->id_type, NAS_ID_SUCI);
	assert_int_equal(d->has_cap, 1);
	assert_int_equal(d->cap_ia, 0xa0);
	assert_int_equal(nas_suci_imsi(d->id, d->id_len, imsi, sizeof(imsi)),
	    0);
	assert_string_equal(imsi, "208930000000001");
}

static void
fill_auth_request(struct nas_msg *m)
{
	m->ngksi = 0;
	m->abba_len = 2;
	hx(TS1_RAND, m->rand, 16);
	memset(m->autn, 0x5a, 16);
}

static void
check_auth_request(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_int_equal(d->abba_len, 2);
	assert_memory_equal(d->rand, m->rand, 16);
	assert_memory_equal(d->autn, m->autn, 16);
}

static void
fill_auth_response(struct nas_msg *m)
{
	memset(m->res_star, 0xa5, 16);
}

static void
check_auth_response(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_memory_equal(d->res_star, m->res_star, 16);
}

/* Authentication Failure with AUTS */
static void
fill_auth_failure(struct nas_msg *m)
{
	m->cause = NAS_CAUSE_SYNCH_FAILURE;
	m->has_auts = true;
	memset(m->auts, 0x11, 14);
}

static void
check_auth_failure(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_int_equal(d->cause, 21);
	assert_int_equal(d->has_auts, 1);
	assert_memory_equal(d->auts, m->auts, 14);
}

static void
check_smc(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_int_equal(d->alg, 0x02);
	assert_int_equal(d->has_cap, 1);
	assert_int_equal(d->cap_ea, 0x80);
}

static void
check_cause(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_int_equal(d->cause, m->cause);
}

/* Registration Accept with 5G-GUTI */
static void
check_reg_accept(const struct nas_msg *m, const struct nas_msg *d)
{
	assert_int_equal(d->reg_result, 2);
	assert_int_equal(d->id_len, 11);
	assert_int_equal(d->id_type, NAS_ID_GUTI);
}

static const struct nas_case {
	const char    *name;
	struct nas_msg m;		/* type and the simple fields */
	void (*fill)(struct nas_msg *); /* the rest, or NULL */
	size_t cut;			/* trailing optional IE bytes, or 0 */
	void (*check)(const struct nas_msg *, const struct nas_msg *);
} nas_cases[] = {
	{ "Registration Request", { .type = NAS_REG_REQUEST }, fill_reg_request,
	    4, check_reg_request }, /* UE sec. capability */
	{ "Authentication Request", { .type = NAS_AUTH_REQUEST },
	    fill_auth_request, 0, check_auth_request },
	{ "Authentication Response", { .type = NAS_AUTH_RESPONSE },
	    fill_auth_response, 0, check_auth_response },
	{ "Authentication Failure", { .type = NAS_AUTH_FAILURE },
	    fill_auth_failure, 16, check_auth_failure }, /* AUTS IE */
	{ "Security Mode Command",
	    { .type = NAS_SMC, .alg = 0x02, .cap_ea = 0x80, .cap_ia = 0xa0 },
	    NULL, 0, check_smc },
	{ "Security Mode Complete", { .type = NAS_SMC_COMPLETE }, NULL, 0,
	    NULL },
	{ "Security Mode Reject", { .type = NAS_SMC_REJECT, .cause = 24 }, NULL,
	    0, check_cause },
	{ "Registration Accept",
	    { .type = NAS_REG_ACCEPT,
		.reg_result = NAS_REGRESULT_NON3GPP,
		.id_len = 11,
		.id = { 0xf2 } },
	    NULL, 14, check_reg_accept }, /* 5G-GUTI IE */
	{ "Registration Complete", { .type = NAS_REG_COMPLETE }, NULL, 0,
	    NULL },
	{ "Authentication Reject", { .type = NAS_AUTH_REJECT }, NULL, 0, NULL },
	{ "Registration Reject", { .type = NAS_REG_REJECT, .cause = 3 }, NULL,
	    0, check_cause },
};

static void
test_nas_roundtrips(void **state)
{
	for (size_t i = 0; i < sizeof(nas_cases) / sizeof(nas_cases[0]); i++) {
		const struct nas_case *c = &nas_cases[i];
		struct nas_msg	       m = c->m, d;

		print_message("%s\n", c->name);
		if (c->fill != NULL)
			c->fill(&m);
		nas_roundtrip(&m, &d, c->cut);
		if (c->check != NULL)
			c->check(&m, &d);
	}
}

/* ---- wire bytes ----------------------------------------------------------- */

static const struct wire_case {
	const char *name;
	uint8_t	    type;
	void (*fill)(struct nas_msg *);
	size_t len;
	struct {
		size_t	off;
		uint8_t v;
	} at[3];
} wire_cases[] = {
	/* 7e 00 41 71 00 0d <SUCI> 2e 02 80 a0 */
	{ "Registration Request", NAS_REG_REQUEST, fill_reg_request,
	    3 + 1 + 2 + 13 + 4, { { 3, 0x71 }, { 5, 13 }, { 19, 0x2e } } },
	/* 7e 00 56 00 02 00 00 21 <16> 20 10 <16> */
	{ "Authentication Request", NAS_AUTH_REQUEST, fill_auth_request,
	    3 + 1 + 3 + 17 + 18, { { 7, 0x21 }, { 24, 0x20 }, { 25, 0x10 } } },
};

/* Encodes wire_cases[i] into b and checks its length and marked bytes. */
static void
wire_encode(size_t i, struct buf *b)
{
	const struct wire_case *c = &wire_cases[i];
	struct nas_msg		m;

	print_message("%s\n", c->name);
	memset(&m, 0, sizeof(m));
	m.type = c->type;
	c->fill(&m);
	buf_init(b, NAS_MSG_MAX);
	assert_int_equal(nas_encode(&m, b), 0);
	assert_int_equal(b->len, c->len);
	for (size_t j = 0; j < sizeof(c->at) / sizeof(c->at[0]); j++)
		assert_int_equal(b->data[c->at[j].off], c->at[j].v);
}

static void
test_nas_wire(void **state)
{
	struct nas_msg d;
	struct buf     b;

	wire_encode(0, &b);
	/* an unknown optional TLV is skipped, a cut one is not */
	assert_int_equal(buf_add(&b, "\x40\x01\x00", 3), 0);
	assert_int_equal(nas_decode(b.data, b.len, &d), 0);
	assert_int_equal(nas_decode(b.data, b.len - 1, &d), -1);
	buf_free(&b);
	wire_encode(1, &b);
	b.data[25] = 0x0f; /* AUTN of the wrong size */
	assert_int_equal(nas_decode(b.data, b.len, &d), -1);
	buf_free(&b);
}

static void
test_nas_suci(void **state)
{
	struct nas_msg m;
	char	       imsi[16];

	memset(&m, 0, sizeof(m));
	/* odd number of MSIN digits, 3-digit MNC */
	assert_int_equal(nas_suci_build("310410123456789", 3, m.id, &m.id_len),
	    0);
	assert_int_equal(nas_suci_imsi(m.id, m.id_len, imsi, sizeof(imsi)), 0);
	assert_string_equal(imsi, "310410123456789");
	assert_int_equal(nas_suci_build("208930", 3, m.id, &m.id_len), -1);
	assert_int_equal(nas_suci_build("20893x000000001", 2, m.id, &m.id_len),
	    -1);
}

/* bad EPD, protected header, unknown type, Authentication Response
 * without RES* */
static void
test_nas_malformed(void **state)
{
	const uint8_t  noresp[] = { 0x7e, 0x00, 0x57 };
	uint8_t	       p[3] = { 0x2e, 0x00, 0x43 };
	struct nas_msg m, d;
	struct buf     b;

	assert_int_equal(nas_decode(noresp, 3, &d), -1);
	assert_int_equal(nas_decode(p, 3, &d), -1);
	p[0] = 0x7e;
	p[1] = 0x02;
	assert_int_equal(nas_decode(p, 3, &d), -1);
	p[1] = 0x00;
	p[2] = 0x99;
	assert_int_equal(nas_decode(p, 3, &d), -1);
	memset(&m, 0, sizeof(m));
	m.type = 0x99;
	buf_init(&b, NAS_MSG_MAX);
	assert_int_equal(nas_encode(&m, &b), -1);
	buf_free(&b);
}

/* ---- security ------------------------------------------------------------- */

static void
test_nas_security(void **state)
{
	struct nas_sec tx, rx;
	struct nas_msg m;
	struct buf     plain, prot;
	const uint8_t *in;
	size_t	       inlen;
	uint8_t	       sht;

	memset(&tx, 0, sizeof(tx));
	tx.active = true;
	tx.ia = NAS_ALG_IA2;
	tx.bearer = NAS_CONN_NON3GPP;
	hx(V_KNASINT, tx.kint, 16);
	rx = tx;
	memset(&m, 0, sizeof(m));
	m.type = NAS_SMC_COMPLETE;
	buf_init(&plain, NAS_MSG_MAX);
	buf_init(&prot, NAS_MSG_MAX);
	assert_int_equal(nas_encode(&m, &plain), 0);
	assert_int_equal(nas_protect(&tx, NAS_SHT_INT_ENC_NEW, false,
			     plain.data, plain.len, &prot),
	    0);
	assert_int_equal(prot.len, 7 + 3);
	assert_int_equal(prot.data[1], 4);
	assert_int_equal(prot.data[6], 0); /* SQN */
	assert_int_equal(tx.ul_count, 1);
	assert_int_equal(nas_split(prot.data, prot.len, &sht, &in, &inlen), 0);
	assert_int_equal(sht, 4);
	assert_int_equal(inlen, 3);
	for (size_t n = 0; n < prot.len; n++)
		assert_int_equal(nas_verify(&rx, false, prot.data, n), -1);
	/* wrong direction, flipped bits: MAC fails */
	assert_int_equal(nas_verify(&rx, true, prot.data, prot.len), -1);
	for (size_t i = 2; i < prot.len; i++) {
		prot.data[i] ^= 0x01;
		assert_int_equal(nas_verify(&rx, false, prot.data, prot.len),
		    -1);
		prot.data[i] ^= 0x01;
	}
	assert_int_equal(rx.ul_count, 0);
	assert_int_equal(nas_verify(&rx, false, prot.data, prot.len), 0);
	assert_int_equal(rx.ul_count, 1);
	/* replay */
	assert_int_equal(nas_verify(&rx, false, prot.data, prot.len), -1);
	/* NIA0: MAC zero */
	tx.ia = rx.ia = NAS_ALG_IA0;
	buf_reset(&prot);
	assert_int_equal(nas_protect(&tx, NAS_SHT_INT_ENC, false, plain.data,
			     plain.len, &prot),
	    0);
	assert_int_equal(prot.data[2] | prot.data[3] | prot.data[4] |
		prot.data[5],
	    0);
	assert_int_equal(nas_verify(&rx, false, prot.data, prot.len), 0);
	/* no ciphering other than EA0 and EA2 (128-NEA1, NEA3: not here) */
	tx.ea = 1;
	assert_int_equal(nas_protect(&tx, NAS_SHT_INT_ENC, false, plain.data,
			     plain.len, &prot),
	    -1);
	tx.ea = 3;
	assert_int_equal(nas_protect(&tx, NAS_SHT_INT_ENC, false, plain.data,
			     plain.len, &prot),
	    -1);
	nas_sec_wipe(&tx);
	nas_sec_wipe(&rx);
	buf_free(&plain);
	buf_free(&prot);
}

/*
 * 128-NEA2 = 128-EEA2 (TS 33.501 D.4.4 refers to TS 33.401 annex C.1):
 * test sets 1 (253 bits) and 2 (798 bits) of TS 33.401 C.1.1 and C.1.2.
 * Our NAS messages are whole bytes: the bits past LENGTH of the last byte
 * are left out of the comparison.
 */
static const struct {
	const char *key, *pt, *ct;
	uint32_t    count;
	uint8_t	    bearer, dir;
	size_t	    bits;
} nea2_sets[] = {
	{ "d3c5d592327fb11c4035c6680af8c6d1",
	    "981ba6824c1bfb1ab485472029b71d808ce33e2cc3c0b5fc1f3de8a6dc66b1f0",
	    "e9fed8a63d155304d71df20bf3e82214b20ed7dad2f233dc3c22d7bdeeed8e78",
	    0x398a59b4, 0x15, 1, 253 },
	{ "2bd6459f82c440e0952c49104805ff48",
	    "7ec61272743bf1614726446a6c38ced166f6ca76eb5430044286346cef130f92"
	    "922b03450d3a9975e5bd2ea0eb55ad8e1b199e3ec4316020e9a1b285e7627953"
	    "59b7bdfd39bef4b2484583d5afe082aee638bf5fd5a606193901a08f4ab41aab"
	    "9b134880",
	    "5961605353c64bdca15b195e288553a910632506d6200aa790c4c806c99904cf"
	    "2445cc50bb1cf168a49673734e081b57e324ce5259c0e78d4cd97b870976503c"
	    "0943f2cb5ae8f052c7b7d392239587b8956086bcab18836042e2e6ce42432a17"
	    "105c53d0",
	    0xc675a64b, 0x0c, 1, 798 },
};

static void
test_nea2_vectors(void **state)
{
	uint8_t key[16], pt[128], ct[128], out[128];

	for (size_t i = 0; i < sizeof(nea2_sets) / sizeof(nea2_sets[0]); i++) {
		size_t	n = (nea2_sets[i].bits + 7) / 8;
		uint8_t last = (uint8_t)(0xff << (8 * n - nea2_sets[i].bits));

		hx(nea2_sets[i].key, key, 16);
		hx(nea2_sets[i].pt, pt, n);
		hx(nea2_sets[i].ct, ct, n);
		assert_int_equal(nas_nea2(key, nea2_sets[i].count,
				     nea2_sets[i].bearer, nea2_sets[i].dir, pt,
				     n, out),
		    0);
		assert_memory_equal(out, ct, n - 1);
		assert_int_equal(out[n - 1] & last, ct[n - 1] & last);
		/* deciphering is the same operation, in place */
		assert_int_equal(nas_nea2(key, nea2_sets[i].count,
				     nea2_sets[i].bearer, nea2_sets[i].dir, out,
				     n, out),
		    0);
		assert_memory_equal(out, pt, n);
		/* the other direction gives another key stream */
		assert_int_equal(nas_nea2(key, nea2_sets[i].count,
				     nea2_sets[i].bearer, 0, pt, n, out),
		    0);
		assert_memory_not_equal(out, ct, n - 1);
	}
}

/*
 * 5G-EA2 on the protected PDU: SHT 2 and 4 are ciphered (the plain
 * message is not in the PDU), the MAC covers the ciphertext, nas_open
 * gives the plain message back to the receiver; SHT 1 and 3 stay clear.
 */
static void
test_nas_ciphered(void **state)
{
	struct nas_sec tx, rx;
	struct nas_msg m;
	struct buf     plain, prot;
	uint8_t	       out[NAS_MSG_MAX], sht;
	size_t	       outlen;

	memset(&tx, 0, sizeof(tx));
	tx.active = true;
	tx.ia = NAS_ALG_IA2;
	tx.ea = NAS_ALG_EA2;
	tx.bearer = NAS_CONN_NON3GPP;
	hx(V_KNASINT, tx.kint, 16);
	memset(tx.kenc, 0x5a, 16);
	rx = tx;
	memset(&m, 0, sizeof(m));
	m.type = NAS_REG_ACCEPT;
	m.reg_result = NAS_REGRESULT_NON3GPP;
	m.id_type = NAS_ID_GUTI;
	m.id_len = 11;
	memset(m.id, 0xab, 11);
	buf_init(&plain, NAS_MSG_MAX);
	buf_init(&prot, NAS_MSG_MAX);
	assert_int_equal(nas_encode(&m, &plain), 0);
	for (int i = 0; i < 2; i++) {
		uint8_t sh = i == 0 ? NAS_SHT_INT_ENC : NAS_SHT_INT;

		buf_reset(&prot);
		assert_int_equal(nas_protect(&tx, sh, true, plain.data,
				     plain.len, &prot),
		    0);
		assert_int_equal(prot.len, 7 + plain.len);
		if (sh == NAS_SHT_INT_ENC)
			assert_memory_not_equal(prot.data + 7, plain.data,
			    plain.len);
		else
			assert_memory_equal(prot.data + 7, plain.data,
			    plain.len);
		assert_int_equal(nas_open(&rx, true, prot.data, prot.len, &sht,
				     out, &outlen),
		    0);
		assert_int_equal(sht, sh);
		assert_int_equal(outlen, plain.len);
		assert_memory_equal(out, plain.data, plain.len);
		/* a ciphertext bit flipped: the MAC (over it) fails */
		prot.data[9] ^= 0x10;
		assert_int_equal(nas_verify(&rx, true, prot.data, prot.len),
		    -1);
		prot.data[9] ^= 0x10;
		assert_int_equal(nas_verify(&rx, true, prot.data, prot.len), 0);
	}
	/* the wrong KNASenc: the MAC passes, the message is garbage */
	buf_reset(&prot);
	assert_int_equal(nas_protect(&tx, NAS_SHT_INT_ENC, true, plain.data,
			     plain.len, &prot),
	    0);
	rx.kenc[0] ^= 1;
	assert_int_equal(nas_open(&rx, true, prot.data, prot.len, &sht, out,
			     &outlen),
	    0);
	assert_memory_not_equal(out, plain.data, plain.len);
	nas_sec_wipe(&tx);
	nas_sec_wipe(&rx);
	buf_free(&plain);
	buf_free(&prot);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nas_roundtrips),
		cmocka_unit_test(test_nas_wire),
		cmocka_unit_test(test_nas_suci),
		cmocka_unit_test(test_nas_malformed),
		cmocka_unit_test(test_nas_security),
		cmocka_unit_test(test_nea2_vectors),
		cmocka_unit_test(test_nas_ciphered),
	};

	log_init("test_ike_nas", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

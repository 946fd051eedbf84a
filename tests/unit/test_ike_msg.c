/*
 * ike/msg: header codec, non-ESP marker, plain message assembly, SK
 * round trips (AES-CBC + HMAC-SHA2-256-128 and AES-GCM-16), every
 * tampered byte and a wrong key refused, bad padding refused even under a
 * valid ICV, every truncation refused, bit flips survived.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"
#include "ike/msg.h"
#include "ike/pld.h"

static struct ike_key ek, ak, ek_gcm;

static const uint8_t nonce[32] = { 9, 8, 7 };

static int
setup_keys(void **state)
{
	uint8_t k[36];

	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(i * 7 + 1);
	if (ike_key_set(&ek, k, 32) || ike_key_set(&ak, k + 4, 32) ||
	    ike_key_set(&ek_gcm, k, 36))
		return -1;
	return 0;
}

static struct ike_sk_ctx
ctx(uint16_t encr)
{
	struct ike_sk_ctx c = { .encr = encr };

	if (encr == IKE_ENCR_AES_CBC) {
		c.ekey = &ek;
		c.integ = IKE_INTEG_HMAC_SHA2_256_128;
		c.akey = &ak;
	} else
		c.ekey = &ek_gcm;
	return c;
}

static struct ike_hdr
hdr(uint8_t exchange, uint32_t msgid)
{
	struct ike_hdr h = {
		.spi_i = { 1, 2, 3, 4, 5, 6, 7, 8 },
		.exchange = exchange,
		.flags = IKE_FLAG_I,
		.msgid = msgid,
	};
	return h;
}

static void
test_header(void **state)
{
	struct ike_hdr h = hdr(IKE_AUTH, 0x01020304), d;
	uint8_t	       raw[IKE_HDR_LEN];

	h.spi_r[7] = 9;
	h.next = IKE_PL_SK;
	h.length = IKE_HDR_LEN;
	ike_hdr_encode(&h, raw);
	assert_int_equal(raw[17], 0x20);
	assert_int_equal(raw[23], 4);
	assert_int_equal(ike_hdr_decode(raw, sizeof(raw), &d), 0);
	assert_memory_equal(d.spi_i, h.spi_i, 8);
	assert_int_equal(d.spi_r[7], 9);
	assert_int_equal(d.next, IKE_PL_SK);
	assert_int_equal(d.exchange, IKE_AUTH);
	assert_int_equal(d.flags, IKE_FLAG_I);
	assert_int_equal(d.msgid, 0x01020304);
	assert_int_equal(ike_hdr_decode(raw, sizeof(raw) - 1, &d), -1);
	raw[27] = 29;
	assert_int_equal(ike_hdr_decode(raw, sizeof(raw), &d), -1);
	raw[27] = 28;
	raw[17] = 0x21; /* minor ignored */
	assert_int_equal(ike_hdr_decode(raw, sizeof(raw), &d), 0);
	raw[17] = 0x30; /* major 3 */
	assert_int_equal(ike_hdr_decode(raw, sizeof(raw), &d), -1);
}

static void
test_marker(void **state)
{
	uint8_t	       pkt[8] = { 0, 0, 0, 0, 0xaa };
	uint8_t	       esp[8] = { 0xc0, 0, 0, 1 }, ka[1] = { 0xff };
	const uint8_t *p = pkt;
	size_t	       len = sizeof(pkt);
	struct buf     b;

	assert_int_equal(ike_msg_strip_marker(&p, &len), 0);
	assert_ptr_equal(p, pkt + 4);
	assert_int_equal(len, 4);
	p = esp;
	len = sizeof(esp);
	assert_int_equal(ike_msg_strip_marker(&p, &len), -1);
	assert_ptr_equal(p, esp);
	p = ka;
	len = 1;
	assert_int_equal(ike_msg_strip_marker(&p, &len), -1);
	buf_init(&b, 64);
	assert_int_equal(ike_msg_add_marker(&b), 0);
	assert_int_equal(b.len, 4);
	buf_free(&b);
}

/* IKE_SA_INIT request: SA, KE, Nonce, two notifies. */
static void
build_init(struct buf *out)
{
	struct ike_hdr	     h = hdr(IKE_SA_INIT, 0);
	struct ike_chain     c;
	struct ike_prop_desc d = {
		.proto = IKE_PROTO_IKE,
		.encr = IKE_ENCR_AES_CBC,
		.encr_bits = 256,
		.prf = IKE_PRF_HMAC_SHA2_256,
		.integ = IKE_INTEG_HMAC_SHA2_256_128,
		.nke = 1,
		.ke = { IKE_KE_CURVE25519 },
	};
	uint8_t ke[32] = { 5 }, natd[20] = { 6 };
	size_t	start;

	buf_init(out, IKE_MSG_MAX);
	assert_int_equal(ike_msg_begin(out, &h, &c, &start), 0);
	assert_int_equal(ike_pld_add_sa(&c, &d, 1), 0);
	assert_int_equal(ike_pld_add_ke(&c, IKE_KE_CURVE25519, ke, 32), 0);
	assert_int_equal(ike_pld_add_nonce(&c, nonce, 32), 0);
	assert_int_equal(ike_pld_add_notify(&c, 0, NULL, 0,
			     IKE_N_NAT_DETECTION_SOURCE_IP, natd, 20),
	    0);
	assert_int_equal(ike_pld_add_notify(&c, 0, NULL, 0,
			     IKE_N_NAT_DETECTION_DESTINATION_IP, natd, 20),
	    0);
	assert_int_equal(ike_msg_end(out, start), 0);
}

static void
test_plain(void **state)
{
	struct buf	b;
	struct ike_msg *m = malloc(sizeof(*m));
	uint8_t	       *cp;

	assert_non_null(m);
	build_init(&b);
	assert_int_equal(b.len, 28 + 48 + 40 + 36 + 28 + 28);
	assert_int_equal(ike_msg_parse(b.data, b.len, NULL, m), 0);
	assert_int_equal(m->hdr.exchange, IKE_SA_INIT);
	assert_int_equal(m->hdr.next, IKE_PL_SA);
	assert_int_equal(m->hdr.length, b.len);
	assert_int_equal(m->protected, 0);
	assert_int_equal(m->pld.n, 5);
	assert_int_equal(m->pld.ke.group, IKE_KE_CURVE25519);
	assert_int_equal(m->pld.nnotify, 2);
	ike_msg_free(m);
	/* A plain message offered to the decrypting path is refused. */
	{
		struct ike_sk_ctx k = ctx(IKE_ENCR_AES_CBC);

		assert_int_equal(ike_msg_parse(b.data, b.len, &k, m), -1);
		assert_int_equal(m->err, 0);
		ike_msg_free(m);
	}
	/* Every truncation fails, even with the length field fixed up. */
	for (size_t n = 0; n < b.len; n++) {
		cp = malloc(n ? n : 1);
		assert_non_null(cp);
		memcpy(cp, b.data, n);
		assert_int_equal(ike_msg_parse(cp, n, NULL, m), -1);
		ike_msg_free(m);
		if (n >= IKE_HDR_LEN) {
			cp[24] = cp[25] = 0;
			cp[26] = (uint8_t)(n >> 8);
			cp[27] = (uint8_t)n;
			assert_int_equal(ike_msg_parse(cp, n, NULL, m), -1);
			ike_msg_free(m);
		}
		free(cp);
	}
	free(m);
	buf_free(&b);
}

/* IKE_AUTH-like protected message; returns the message in *out. */
static void
build_protected(struct buf *out, const struct ike_sk_ctx *k, int marker)
{
	struct buf	  in;
	struct ike_chain  ic;
	struct ike_hdr	  h = hdr(IKE_AUTH, 1);
	struct ike_cp_pld cp = { .type = IKE_CFG_REQUEST, .nattr = 1 };

	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	buf_init(&in, IKE_MSG_MAX);
	buf_init(out, IKE_MSG_MAX);
	ike_chain_init(&ic, &in, IKE_CHAIN_DETACHED);
	assert_int_equal(ike_pld_add_id(&ic, IKE_PL_IDI, IKE_ID_FQDN,
			     (const uint8_t *)"ue", 2),
	    0);
	assert_int_equal(ike_pld_add_auth(&ic, IKE_AUTH_PSK, nonce, 32), 0);
	assert_int_equal(ike_pld_add_cp(&ic, &cp), 0);
	assert_int_equal(ike_pld_add_notify(&ic, 0, NULL, 0,
			     IKE_N_INITIAL_CONTACT, NULL, 0),
	    0);
	if (marker)
		assert_int_equal(ike_msg_add_marker(out), 0);
	assert_int_equal(ike_msg_seal(out, &h, ic.first, in.data, in.len, k),
	    0);
	buf_free(&in);
}

static void
round_trip(uint16_t encr)
{
	struct ike_sk_ctx k = ctx(encr);
	struct buf	  b;
	struct ike_msg	 *m = malloc(sizeof(*m));
	const uint8_t	 *p;
	size_t		  len;

	assert_non_null(m);
	build_protected(&b, &k, 1);
	p = b.data;
	len = b.len;
	assert_int_equal(ike_msg_strip_marker(&p, &len), 0);
	assert_int_equal(ike_msg_parse(p, len, &k, m), 0);
	assert_int_equal(m->protected, 1);
	assert_int_equal(m->hdr.next, IKE_PL_SK);
	assert_int_equal(m->hdr.msgid, 1);
	assert_int_equal(m->pld.n, 4);
	assert_memory_equal(m->pld.idi.data.p, "ue", 2);
	assert_int_equal(m->pld.auth.data.len, 32);
	assert_int_equal(m->pld.cp.type, IKE_CFG_REQUEST);
	assert_non_null(ike_pld_notify(&m->pld, IKE_N_INITIAL_CONTACT));
	if (encr == IKE_ENCR_AES_CBC) /* hdr 28 + SK 4 + IV 16 + 80 + ICV 16 */
		assert_int_equal(len, 28 + 4 + 16 + 80 + 16);
	else /* IV 8, 70 bytes + pad length byte */
		assert_int_equal(len, 28 + 4 + 8 + 71 + 16);
	ike_msg_free(m);
	/* Without keys, the SK payload is reported but not opened. */
	assert_int_equal(ike_msg_parse(p, len, NULL, m), 0);
	assert_true(IKE_PLD_HAS(&m->pld, IKE_PL_SK));
	assert_int_equal(m->pld.sk.first, IKE_PL_IDI);
	ike_msg_free(m);
	free(m);
	buf_free(&b);
}

static void
test_sk_cbc(void **state)
{
	round_trip(IKE_ENCR_AES_CBC);
}

static void
test_sk_gcm(void **state)
{
	round_trip(IKE_ENCR_AES_GCM_16);
}

static void
tamper(uint16_t encr)
{
	struct ike_sk_ctx k = ctx(encr), bad = ctx(encr);
	struct ike_key	  other;
	struct buf	  b;
	struct ike_msg	 *m = malloc(sizeof(*m));
	uint8_t		 *cp;

	assert_non_null(m);
	build_protected(&b, &k, 0);
	cp = malloc(b.len);
	assert_non_null(cp);
	/* Every byte changed: refused, silently (err 0). */
	for (size_t i = 0; i < b.len; i++) {
		memcpy(cp, b.data, b.len);
		cp[i] ^= 0x01;
		assert_int_equal(ike_msg_parse(cp, b.len, &k, m), -1);
		assert_int_equal(m->err, 0);
		ike_msg_free(m);
	}
	/* Every truncation refused (length field fixed up or not). */
	for (size_t n = 0; n < b.len; n++) {
		memcpy(cp, b.data, n);
		assert_int_equal(ike_msg_parse(cp, n, &k, m), -1);
		ike_msg_free(m);
		if (n >= IKE_HDR_LEN) {
			cp[26] = (uint8_t)(n >> 8);
			cp[27] = (uint8_t)n;
			assert_int_equal(ike_msg_parse(cp, n, &k, m), -1);
			ike_msg_free(m);
		}
	}
	/* Wrong encryption key, wrong integrity key. */
	other = *bad.ekey;
	other.k[3] ^= 0x80;
	bad.ekey = &other;
	assert_int_equal(ike_msg_parse(b.data, b.len, &bad, m), -1);
	ike_msg_free(m);
	if (encr == IKE_ENCR_AES_CBC) {
		bad = ctx(encr);
		other = ak;
		other.k[0] ^= 1;
		bad.akey = &other;
		assert_int_equal(ike_msg_parse(b.data, b.len, &bad, m), -1);
		ike_msg_free(m);
	}
	/* The other cipher with the same message. */
	bad = ctx(
	    encr == IKE_ENCR_AES_CBC ? IKE_ENCR_AES_GCM_16 : IKE_ENCR_AES_CBC);
	assert_int_equal(ike_msg_parse(b.data, b.len, &bad, m), -1);
	ike_msg_free(m);
	ike_key_wipe(&other);
	free(cp);
	free(m);
	buf_free(&b);
}

static void
test_tamper_cbc(void **state)
{
	tamper(IKE_ENCR_AES_CBC);
}

static void
test_tamper_gcm(void **state)
{
	tamper(IKE_ENCR_AES_GCM_16);
}

/*
 * Forges a protected message whose plaintext `pt` (with its own pad
 * length byte) is encrypted and authenticated correctly.
 */
static void
forge(uint16_t encr, const uint8_t *pt, size_t ptlen, struct buf *out)
{
	struct ike_hdr	h = hdr(IKE_AUTH, 1);
	int		cbc = encr == IKE_ENCR_AES_CBC, n, f;
	size_t		ivlen = cbc ? 16 : 8, total;
	uint8_t		iv[16] = { 1 }, nn[12], *d;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	assert_non_null(c);
	total = 28 + 4 + ivlen + ptlen + 16;
	h.next = IKE_PL_SK;
	h.length = (uint32_t)total;
	buf_init(out, IKE_MSG_MAX);
	d = buf_reserve(out, 32 + ivlen + ptlen);
	assert_non_null(d);
	ike_hdr_encode(&h, d);
	memcpy(d + 28,
	    (uint8_t[]){ IKE_PL_NONCE, 0, (uint8_t)((total - 28) >> 8),
		(uint8_t)(total - 28) },
	    4);
	memcpy(d + 32, iv, ivlen);
	memcpy(nn, ek_gcm.k + 32, 4);
	memcpy(nn + 4, iv, 8);
	assert_int_equal(EVP_EncryptInit_ex(c,
			     cbc ? EVP_aes_256_cbc() : EVP_aes_256_gcm(), NULL,
			     ek.k, cbc ? iv : nn),
	    1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	if (!cbc)
		assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, d, 32), 1);
	assert_int_equal(EVP_EncryptUpdate(c, d + 32 + ivlen, &n, pt,
			     (int)ptlen),
	    1);
	assert_int_equal(EVP_EncryptFinal_ex(c, d + 32 + ivlen + n, &f), 1);
	if (cbc) {
		uint8_t mac[32];

		assert_int_equal(ike_prf(ak.k, 32, out->data, out->len, mac),
		    0);
		assert_int_equal(buf_add(out, mac, 16), 0);
	} else {
		uint8_t tag[16];

		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
				     16, tag),
		    1);
		assert_int_equal(buf_add(out, tag, 16), 0);
	}
	EVP_CIPHER_CTX_free(c);
}

static void
bad_padding(uint16_t encr)
{
	struct ike_sk_ctx k = ctx(encr);
	struct ike_msg	 *m = malloc(sizeof(*m));
	struct buf	  b;
	uint8_t		  pt[32];

	assert_non_null(m);
	/* A Nonce payload of 16 bytes, then 11 padding bytes + pad length. */
	memset(pt, 0, sizeof(pt));
	memcpy(pt, (uint8_t[]){ 0, 0, 0, 20 }, 4);
	pt[31] = 11;
	forge(encr, pt, 32, &b);
	assert_int_equal(ike_msg_parse(b.data, b.len, &k, m), 0);
	assert_int_equal(m->pld.nonce.len, 16);
	ike_msg_free(m);
	buf_free(&b);
	pt[31] = 32; /* pad longer than the plaintext */
	forge(encr, pt, 32, &b);
	assert_int_equal(ike_msg_parse(b.data, b.len, &k, m), -1);
	ike_msg_free(m);
	buf_free(&b);
	pt[31] = 255;
	forge(encr, pt, 32, &b);
	assert_int_equal(ike_msg_parse(b.data, b.len, &k, m), -1);
	ike_msg_free(m);
	buf_free(&b);
	pt[31] = 12; /* eats into the Nonce */
	forge(encr, pt, 32, &b);
	assert_int_equal(ike_msg_parse(b.data, b.len, &k, m), -1);
	assert_int_equal(m->err, IKE_N_INVALID_SYNTAX); /* authenticated */
	ike_msg_free(m);
	buf_free(&b);
	free(m);
}

static void
test_bad_padding(void **state)
{
	bad_padding(IKE_ENCR_AES_CBC);
	bad_padding(IKE_ENCR_AES_GCM_16);
}

static void
test_inner_critical(void **state)
{
	struct ike_sk_ctx k = ctx(IKE_ENCR_AES_GCM_16);
	struct ike_msg	 *m = malloc(sizeof(*m));
	uint8_t		  pt[8] = { 0, IKE_PLD_CRITICAL, 0, 8, 1, 2, 3, 4 };

	assert_non_null(m);
	{
		struct buf     in, out;
		struct ike_hdr h = hdr(IKE_AUTH, 2);

		buf_init(&in, 64);
		buf_init(&out, IKE_MSG_MAX);
		assert_int_equal(buf_add(&in, pt, 8), 0);
		assert_int_equal(ike_msg_seal(&out, &h, 222, in.data, in.len,
				     &k),
		    0);
		assert_int_equal(ike_msg_parse(out.data, out.len, &k, m), -1);
		assert_int_equal(m->err, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD);
		assert_int_equal(m->err_type, 222);
		ike_msg_free(m);
		buf_free(&in);
		buf_free(&out);
	}
	free(m);
}

static void
test_empty_and_big(void **state)
{
	struct ike_sk_ctx k = ctx(IKE_ENCR_AES_CBC);
	struct ike_hdr	  h = hdr(IKE_INFORMATIONAL, 5);
	struct ike_msg	 *m = malloc(sizeof(*m));
	struct buf	  out;
	uint8_t		 *big = calloc(1, IKE_MSG_MAX);

	assert_non_null(m);
	assert_non_null(big);
	/* Empty INFORMATIONAL (liveness check). */
	buf_init(&out, IKE_MSG_MAX);
	assert_int_equal(ike_msg_seal(&out, &h, IKE_PL_NONE, NULL, 0, &k), 0);
	assert_int_equal(out.len, 28 + 4 + 16 + 16 + 16);
	assert_int_equal(ike_msg_parse(out.data, out.len, &k, m), 0);
	assert_int_equal(m->pld.n, 0);
	ike_msg_free(m);
	buf_free(&out);
	/* Too big for one message: refused, buffer left as it was. */
	buf_init(&out, IKE_MSG_MAX);
	assert_int_equal(ike_msg_seal(&out, &h, IKE_PL_NONCE, big,
			     IKE_MSG_MAX - 50, &k),
	    -1);
	assert_int_equal(out.len, 0);
	/* Bad keys: refused. */
	k.ekey = &ak;
	k.encr = IKE_ENCR_AES_GCM_16;
	assert_int_equal(ike_msg_seal(&out, &h, IKE_PL_NONE, NULL, 0, &k), -1);
	buf_free(&out);
	free(big);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_marker),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_sk_cbc),
		cmocka_unit_test(test_sk_gcm),
		cmocka_unit_test(test_tamper_cbc),
		cmocka_unit_test(test_tamper_gcm),
		cmocka_unit_test(test_bad_padding),
		cmocka_unit_test(test_inner_critical),
		cmocka_unit_test(test_empty_and_big),
	};

	log_init("test_ike_msg", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, setup_keys, NULL);
}

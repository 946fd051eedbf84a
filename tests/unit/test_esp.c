/*
 * ike/esp, packets: round trips of both transforms at every inner length
 * 0..1500 (so every padding length), the wire format against vectors
 * computed independently with python3's cryptography package and against
 * packets built here from the RFC formulas with one-shot OpenSSL calls,
 * fresh CBC IVs, tampering and truncation, bad padding, and no allocation
 * per packet. The window, ESN, lifetimes, the SPI table and wiping are in
 * test_esp_sa.c.
 *
 * The v_* vectors were generated with python3 (cryptography 48, hmac):
 *   key = bytes(range(0x40, 0x60)); salt = bytes([0xca, 0xfe, 0xba, 0xbe])
 *   ikey = bytes(range(0x80, 0xa0)); spi = bytes([0x11, 0x22, 0x33, 0x44])
 *   inner = bytes(range(37))
 *   def trailer(n, align, nh):
 *       p = (align - (n + 2) % align) % align
 *       return bytes(range(1, p + 1)) + bytes([p, nh])
 *   def gcm(seq, esn):
 *       iv = struct.pack(">Q", seq); lo = struct.pack(">I", seq & 0xffffffff)
 *       aad = spi + (struct.pack(">I", seq >> 32) if esn else b"") + lo
 *       ct = AESGCM(key).encrypt(salt + iv, inner + trailer(37, 4, 4), aad)
 *       return spi + lo + iv + ct
 *   def cbc(seq, esn, iv):
 *       lo = struct.pack(">I", seq & 0xffffffff)
 *       e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
 *       ct = e.update(inner + trailer(37, 16, 4)) + e.finalize()
 *       m = spi + lo + iv + ct
 *       return m + hmac.new(ikey, m + (struct.pack(">I", seq >> 32)
 *           if esn else b""), hashlib.sha256).digest()[:16]
 *   v_gcm = gcm(5, False); v_gcm_esn = gcm(0x100000002, True)
 *   v_cbc_esn = cbc(0x100000003, True, bytes(range(0xe0, 0xf0)))
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "ike/esp.h"
#include "tests/unit/esp_fx.h"

/* clang-format off */
static const uint8_t v_gcm[72] = {
	0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x05, 0x18, 0x24, 0xa2, 0xc5, 0x8f, 0x5a, 0xaa, 0xa2,
	0xc5, 0x3b, 0xf3, 0x32, 0xdc, 0x73, 0x3e, 0x7f, 0x4d, 0x5d, 0x73, 0x1c,
	0xac, 0xa5, 0xc5, 0x99, 0x3e, 0x20, 0xc5, 0x3b, 0xf3, 0x4f, 0x3e, 0x06,
	0xac, 0x39, 0xd8, 0xf3, 0xa3, 0x60, 0x85, 0x14, 0x02, 0x7d, 0x94, 0x7e,
	0x66, 0xba, 0x5f, 0x2d, 0xae, 0xee, 0x0f, 0x8f, 0x76, 0x3f, 0x80, 0x5a,
};
static const uint8_t v_gcm_esn[72] = {
	0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x02, 0xb8, 0xa7, 0xef, 0x86, 0x44, 0xef, 0xea, 0x58,
	0xc9, 0x79, 0x71, 0x9f, 0x89, 0xa9, 0x32, 0x36, 0x9f, 0x17, 0xf6, 0xb5,
	0x43, 0x41, 0x95, 0x99, 0x7c, 0x6d, 0x68, 0xe1, 0xc3, 0x67, 0x33, 0x61,
	0x7a, 0xc5, 0xfb, 0x89, 0xf2, 0x92, 0x37, 0xcf, 0xae, 0xc7, 0xa6, 0xa4,
	0x09, 0x39, 0x52, 0x34, 0xcb, 0x39, 0xc9, 0xfa, 0xd4, 0xdb, 0x40, 0x38,
};
static const uint8_t v_cbc_esn[88] = {
	0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x03, 0xe0, 0xe1, 0xe2, 0xe3,
	0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
	0xe2, 0x38, 0xa9, 0xaa, 0x2a, 0x61, 0x89, 0xdc, 0xa7, 0x43, 0x4d, 0x19,
	0xfe, 0x13, 0x1a, 0xed, 0xbc, 0x28, 0xff, 0x7e, 0x03, 0x02, 0x62, 0x3f,
	0x84, 0xf9, 0xce, 0x46, 0xa7, 0xe8, 0xd5, 0x82, 0x49, 0x5f, 0x47, 0x1f,
	0xfc, 0xa8, 0xa1, 0x6c, 0xac, 0xc1, 0x50, 0x83, 0xfe, 0xfc, 0x5f, 0xb7,
	0xc8, 0xa3, 0x9e, 0x12, 0x95, 0xbd, 0x8d, 0xd5, 0x22, 0xd5, 0xf6, 0xde,
	0x90, 0x53, 0x52, 0x6c,
};
/* clang-format on */

/* The expected length of the ESP packet of an n-byte inner packet. */
static size_t
esp_len(enum esp_alg alg, size_t n)
{
	size_t a = alg == ESP_AES_GCM_256 ? 4 : 16;
	size_t ct = (n + 2 + a - 1) / a * a;

	return 8 + (alg == ESP_AES_GCM_256 ? 8 : 16) + ct + 16;
}

static void
test_roundtrip(void **state)
{
	for (int alg = 0; alg < 2; alg++)
		for (int esn = 0; esn < 2; esn++) {
			struct esp_sa	*o = sa_make(alg, esn, true, NULL);
			struct esp_sa	*in = sa_make(alg, esn, false, NULL);
			uint8_t		 inner[1500], pkt[MAXPKT];
			uint64_t	 bytes = 0;
			struct esp_stats so, si;

			for (size_t n = 0; n <= 1500; n++) {
				size_t	len, off, ilen;
				uint8_t nh;

				inner_fill(inner, n, (unsigned)n);
				assert_int_equal(esp_encap(o, inner, n,
						     ESP_NH_GRE, pkt,
						     n + ESP_MAX_OVERHEAD,
						     &len),
				    ESP_OK);
				assert_int_equal(len, esp_len(alg, n));
				assert_int_equal(esp_decap(in, pkt, len, &off,
						     &ilen, &nh),
				    ESP_OK);
				assert_int_equal(ilen, n);
				assert_int_equal(nh, ESP_NH_GRE);
				assert_memory_equal(pkt + off, inner, n);
				bytes += n;
			}
			esp_sa_stats(o, &so);
			esp_sa_stats(in, &si);
			assert_int_equal(so.packets, 1501);
			assert_int_equal(si.packets, 1501);
			assert_int_equal(so.bytes, bytes);
			assert_int_equal(si.bytes, bytes);
			assert_int_equal(so.seq, 1501);
			assert_int_equal(si.seq, 1501);
			assert_int_equal(si.replay + si.icv + si.pad +
				si.shortp + si.other,
			    0);
			assert_int_equal(esp_sa_spi(o), SPI);
			esp_sa_free(o);
			esp_sa_free(in);
		}
}

/* ---- the wire format, from the RFC formulas ---- */

/*
 * An ESP packet of SPI, seq, iv (8 or 16 bytes) and the plaintext pt
 * (inner packet and trailer, as given: may be wrong on purpose), built
 * with one-shot OpenSSL calls: RFC 4106 (nonce salt | IV, AAD SPI |
 * [seq_hi |] seq_lo) or RFC 3602 + 4868 (ICV: HMAC over SPI | seq | IV |
 * ct [| seq_hi], 16 bytes). Returns its length.
 */
static size_t
build(enum esp_alg alg, bool esn, uint64_t seq, const uint8_t *iv,
    const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	size_t		ivlen = alg == ESP_AES_GCM_256 ? 8 : 16;
	uint8_t	       *ct = out + 8 + ivlen, aad[12], nonce[12], hi[4];
	int		n, m;
	unsigned	mdlen;
	uint8_t		md[32];

	assert_non_null(c);
	memcpy(out, "\x11\x22\x33\x44", 4);
	put32(out + 4, (uint32_t)seq);
	memcpy(out + 8, iv, ivlen);
	put32(hi, (uint32_t)(seq >> 32));
	if (alg == ESP_AES_GCM_256) {
		memcpy(nonce, k_enc + 32, 4);
		memcpy(nonce + 4, iv, 8);
		memcpy(aad, out, 4);
		memcpy(aad + 4, hi, 4);
		memcpy(aad + (esn ? 8 : 4), out + 4, 4);
		assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL,
				     k_enc, nonce),
		    1);
		assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, aad,
				     esn ? 12 : 8),
		    1);
	} else {
		assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL,
				     k_enc, iv),
		    1);
		EVP_CIPHER_CTX_set_padding(c, 0);
	}
	assert_int_equal(EVP_EncryptUpdate(c, ct, &n, pt, (int)ptlen), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &m), 1);
	assert_int_equal((size_t)(n + m), ptlen);
	if (alg == ESP_AES_GCM_256) {
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
				     16, ct + ptlen),
		    1);
	} else {
		uint8_t buf[8 + 16 + 1600 + 4];
		size_t	ml = 8 + 16 + ptlen;

		memcpy(buf, out, ml);
		if (esn) {
			memcpy(buf + ml, hi, 4);
			ml += 4;
		}
		assert_non_null(
		    HMAC(EVP_sha256(), k_integ, 32, buf, ml, md, &mdlen));
		memcpy(ct + ptlen, md, 16);
	}
	EVP_CIPHER_CTX_free(c);
	return 8 + ivlen + ptlen + 16;
}

/* inner | padding 1, 2, 3 ... | pad length | nh, aligned; its length. */
static size_t
plaintext(enum esp_alg alg, const uint8_t *inner, size_t n, uint8_t nh,
    uint8_t *pt)
{
	size_t a = alg == ESP_AES_GCM_256 ? 4 : 16;
	size_t p = (a - (n + 2) % a) % a;

	memcpy(pt, inner, n);
	for (size_t i = 0; i < p; i++)
		pt[n + i] = (uint8_t)(i + 1);
	pt[n + p] = (uint8_t)p;
	pt[n + p + 1] = nh;
	return n + p + 2;
}

static void
test_vectors(void **state)
{
	struct {
		enum esp_alg   alg;
		bool	       esn;
		uint64_t       seq;
		const uint8_t *v;
		size_t	       vlen;
	} t[] = {
		{ ESP_AES_GCM_256, false, 5, v_gcm, sizeof(v_gcm) },
		{ ESP_AES_GCM_256, true, 0x100000002, v_gcm_esn,
		    sizeof(v_gcm_esn) },
		{ ESP_AES_CBC_256_SHA256, true, 0x100000003, v_cbc_esn,
		    sizeof(v_cbc_esn) },
	};
	uint8_t inner[37];

	inner_fill(inner, 0, 0);
	for (size_t i = 0; i < sizeof(inner); i++)
		inner[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct esp_sa *o = sa_make(t[i].alg, t[i].esn, true, NULL);
		struct esp_sa *in = sa_make(t[i].alg, t[i].esn, false, NULL);
		uint8_t	       pkt[200], mine[200], pt[64];
		size_t	       len, off, ilen, ptlen;
		uint8_t	       nh;

		/* Ours encaps to the vector (GCM; CBC: with its own IV). */
		esp_sa_test_set_seq(o, t[i].seq - 1);
		assert_int_equal(esp_encap(o, inner, sizeof(inner), 4, pkt,
				     sizeof(pkt), &len),
		    ESP_OK);
		assert_int_equal(len, t[i].vlen);
		if (t[i].alg == ESP_AES_GCM_256)
			assert_memory_equal(pkt, t[i].v, len);
		else {
			ptlen =
			    plaintext(t[i].alg, inner, sizeof(inner), 4, pt);
			assert_int_equal(build(t[i].alg, t[i].esn, t[i].seq,
					     pkt + 8, pt, ptlen, mine),
			    len);
			assert_memory_equal(pkt, mine, len);
			/* and the builder agrees with python on the vector */
			assert_int_equal(build(t[i].alg, t[i].esn, t[i].seq,
					     t[i].v + 8, pt, ptlen, mine),
			    len);
			assert_memory_equal(mine, t[i].v, len);
		}
		/* Ours decaps the vector. */
		esp_sa_test_set_seq(in, t[i].seq - 1);
		memcpy(pkt, t[i].v, t[i].vlen);
		assert_int_equal(esp_decap(in, pkt, t[i].vlen, &off, &ilen,
				     &nh),
		    ESP_OK);
		assert_int_equal(ilen, sizeof(inner));
		assert_int_equal(nh, 4);
		assert_memory_equal(pkt + off, inner, ilen);
		esp_sa_free(o);
		esp_sa_free(in);
	}
}

/* Every length 0..64 and some larger: ours equals the builder's packet. */
static void
test_wire_format(void **state)
{
	static const size_t sizes[] = { 100, 511, 512, 1399, 1400, 1500 };

	for (int alg = 0; alg < 2; alg++)
		for (int esn = 0; esn < 2; esn++) {
			struct esp_sa *o = sa_make(alg, esn, true, NULL);
			uint8_t	       inner[1500], pkt[MAXPKT], mine[MAXPKT],
			    pt[1600];

			esp_sa_test_set_seq(o, esn ? 0xfffffff0 : 1000);
			for (size_t k = 0; k < 65 + 6; k++) {
				size_t n = k < 65 ? k : sizes[k - 65], len,
				       ptlen;
				struct esp_stats st;

				inner_fill(inner, n, (unsigned)k);
				assert_int_equal(esp_encap(o, inner, n, 41, pkt,
						     sizeof(pkt), &len),
				    ESP_OK);
				esp_sa_stats(o, &st);
				ptlen = plaintext(alg, inner, n, 41, pt);
				assert_int_equal(build(alg, esn, st.seq,
						     pkt + 8, pt, ptlen, mine),
				    len);
				assert_memory_equal(pkt, mine, len);
				if (alg == ESP_AES_GCM_256) {
					uint8_t iv[8];

					put32(iv, (uint32_t)(st.seq >> 32));
					put32(iv + 4, (uint32_t)st.seq);
					assert_memory_equal(pkt + 8, iv, 8);
				}
			}
			esp_sa_free(o);
		}
}

/* CBC IVs differ from packet to packet (64-IV batches refilled). */
static void
test_cbc_iv_fresh(void **state)
{
	struct esp_sa *o = sa_make(ESP_AES_CBC_256_SHA256, false, true, NULL);
	static uint8_t ivs[300][16];
	uint8_t	       pkt[MAXPKT];
	size_t	       len;

	for (int i = 0; i < 300; i++) {
		assert_int_equal(esp_encap(o, pkt, 0, 4, pkt, sizeof(pkt),
				     &len),
		    ESP_OK);
		memcpy(ivs[i], pkt + 8, 16);
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(ivs[i], ivs[j], 16);
	}
	esp_sa_free(o);
}
/* ---- integrity, padding, truncation ---- */

static void
test_tamper(void **state)
{
	for (int alg = 0; alg < 2; alg++)
		for (int esn = 0; esn < 2; esn++) {
			struct esp_sa	*o = sa_make(alg, esn, true, NULL);
			struct esp_sa	*in = sa_make(alg, esn, false, NULL);
			uint8_t		 inner[100], pkt[MAXPKT], b[MAXPKT];
			size_t		 len, off, ilen;
			uint8_t		 nh;
			struct esp_stats st;

			inner_fill(inner, sizeof(inner), 3);
			assert_int_equal(esp_encap(o, inner, sizeof(inner), 4,
					     pkt, sizeof(pkt), &len),
			    ESP_OK);
			/* every byte: SPI, seq, IV, ciphertext, ICV */
			for (size_t i = 0; i < len; i++) {
				memcpy(b, pkt, len);
				b[i] ^= 0x80;
				assert_int_equal(esp_decap(in, b, len, &off,
						     &ilen, &nh),
				    ESP_E_ICV);
			}
			/* every truncation */
			for (size_t l = 0; l < len; l++) {
				enum esp_rc rc;

				memcpy(b, pkt, len);
				rc = esp_decap(in, b, l, &off, &ilen, &nh);
				assert_true(
				    rc == ESP_E_SHORT || rc == ESP_E_ICV);
			}
			esp_sa_stats(in, &st);
			assert_true(st.icv >= len);
			assert_int_equal(st.icv + st.shortp, 2 * len);
			assert_int_equal(st.packets, 0);
			assert_int_equal(st.seq, 0); /* window unmoved */
			memcpy(b, pkt, len);
			assert_int_equal(esp_decap(in, b, len, &off, &ilen,
					     &nh),
			    ESP_OK);
			esp_sa_free(o);
			esp_sa_free(in);
		}
}

static void
test_bad_pad(void **state)
{
	for (int alg = 0; alg < 2; alg++) {
		struct esp_sa	*in = sa_make(alg, true, false, NULL);
		uint8_t		 inner[30], pt[64], pkt[200], iv[16];
		size_t		 ptlen, len, off, ilen;
		uint8_t		 nh;
		struct esp_stats st;
		uint64_t	 seq = 1;

		inner_fill(inner, sizeof(inner), 9);
		memset(iv, 0x5a, sizeof(iv));
		/* a wrong pad byte, each position */
		ptlen = plaintext(alg, inner, sizeof(inner), 4, pt);
		for (size_t p = 0; p < pt[ptlen - 2]; p++) {
			pt[sizeof(inner) + p] ^= 1;
			len = build(alg, true, seq++, iv, pt, ptlen, pkt);
			assert_int_equal(esp_decap(in, pkt, len, &off, &ilen,
					     &nh),
			    ESP_E_PAD);
			pt[sizeof(inner) + p] ^= 1;
		}
		/* a pad length longer than the plaintext */
		pt[ptlen - 2] = (uint8_t)(ptlen - 1);
		len = build(alg, true, seq++, iv, pt, ptlen, pkt);
		assert_int_equal(esp_decap(in, pkt, len, &off, &ilen, &nh),
		    ESP_E_PAD);
		/* the same packet with a good trailer passes */
		ptlen = plaintext(alg, inner, sizeof(inner), 4, pt);
		len = build(alg, true, seq, iv, pt, ptlen, pkt);
		assert_int_equal(esp_decap(in, pkt, len, &off, &ilen, &nh),
		    ESP_OK);
		assert_int_equal(ilen, sizeof(inner));
		esp_sa_stats(in, &st);
		assert_int_equal(st.pad, seq - 1);
		assert_int_equal(st.icv, 0);
		assert_int_equal(st.packets, 1);
		esp_sa_free(in);
	}
}
/* ---- no allocation per packet ---- */

static _Atomic long n_alloc;

static void *
count_malloc(size_t n, const char *file, int line)
{
	n_alloc++;
	return malloc(n);
}

static void *
count_realloc(void *p, size_t n, const char *file, int line)
{
	n_alloc++;
	return realloc(p, n);
}

static void
count_free(void *p, const char *file, int line)
{
	free(p);
}

static void
test_no_alloc(void **state)
{
	for (int alg = 0; alg < 2; alg++) {
		struct esp_sa *o = sa_make(alg, true, true, NULL);
		struct esp_sa *in = sa_make(alg, true, false, NULL);

		pass_one(o, in, 100, 1); /* warm up */
		n_alloc = 0;
		for (int i = 0; i < 1000; i++)
			pass_one(o, in, (size_t)(i % 1500), (unsigned)i);
		assert_int_equal(n_alloc, 0);
		esp_sa_free(o);
		esp_sa_free(in);
	}
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_alloc),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_wire_format),
		cmocka_unit_test(test_cbc_iv_fresh),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_bad_pad),
	};

	/* Before OpenSSL allocates anything: count what it allocates. */
	if (CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) !=
	    1)
		return 1;
	log_init("test_esp", LOG_ERR);
	keys_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The fixture of ike/esp's unit tests (test_esp.c, test_esp_sa.c): fixed
 * keys (the ones the python3 vectors in test_esp.c use), SAs made with
 * them, an inner packet pattern, one checked round trip.
 *
 * Header only (each test is one file, linked alone): every function is
 * static and marked unused, as no test file needs all of them.
 */
#ifndef TESTS_ESP_FX_H
#define TESTS_ESP_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "ike/esp.h"

#define FX static __attribute__((unused))

#define SPI    htonl(0x11223344)
#define MAXPKT (1500 + ESP_MAX_OVERHEAD)

static uint8_t k_enc[36], k_integ[32];

FX void
keys_init(void)
{
	for (int i = 0; i < 32; i++) {
		k_enc[i] = (uint8_t)(0x40 + i);
		k_integ[i] = (uint8_t)(0x80 + i);
	}
	memcpy(k_enc + 32, "\xca\xfe\xba\xbe", 4);
}

FX struct esp_sa *
sa_make(enum esp_alg alg, bool esn, bool outbound, const struct esp_lifetime *l)
{
	struct esp_sa_cfg c = {
		.spi = SPI,
		.alg = alg,
		.esn = esn,
		.outbound = outbound,
		.enc_key = k_enc,
		.enc_len = alg == ESP_AES_GCM_256 ? 36 : 32,
		.integ_key = alg == ESP_AES_GCM_256 ? NULL : k_integ,
		.integ_len = alg == ESP_AES_GCM_256 ? 0 : 32,
	};
	char	       err[200] = "";
	struct esp_sa *sa;

	if (l != NULL)
		c.life = *l;
	sa = esp_sa_new(&c, err, sizeof(err));
	if (sa == NULL)
		fail_msg("esp_sa_new: %s", err);
	return sa;
}

FX void
inner_fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

/* Encap inner (len n, seed) on o; decap on in; checks it came back. */
FX void
pass_one(struct esp_sa *o, struct esp_sa *in, size_t n, unsigned seed)
{
	uint8_t inner[1500], pkt[MAXPKT];
	size_t	len, off, ilen;
	uint8_t nh;

	inner_fill(inner, n, seed);
	assert_int_equal(esp_encap(o, inner, n, ESP_NH_IPV4, pkt, sizeof(pkt),
			     &len),
	    ESP_OK);
	assert_int_equal(esp_decap(in, pkt, len, &off, &ilen, &nh), ESP_OK);
	assert_int_equal(ilen, n);
	assert_int_equal(nh, ESP_NH_IPV4);
	assert_memory_equal(pkt + off, inner, n);
}

FX void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif

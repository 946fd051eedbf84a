/*
 * libFuzzer target for ike/esp.c's inbound path: the anti-replay window
 * and the ESN inference, against a model.
 *
 * Input: byte 0 picks the transform (bit 0: CBC, else GCM) and ESN (bit
 * 1); bytes 1..5 give the inbound SA's starting highest sequence number
 * (5 bytes, so the 2^32 boundary is in reach); then records of 6 bytes:
 * a signed 32-bit offset d, an inner length byte and a next header byte.
 * For each record the outbound SA (same keys) sends sequence number
 * top + d (clamped to the valid space) and the inbound SA gets it. The
 * outcome must be the one RFC 4303 3.4.3 and appendix A2 give: the full
 * number inferred from the low 32 bits within [top - W + 1, that + 2^32);
 * 0, seen, or left of the window: ESP_E_REPLAY; inferred wrong (only with
 * ESN): ESP_E_ICV; else ESP_OK with the inner packet intact. Each record
 * is then also delivered truncated by one byte and with a flipped byte,
 * which must never be ESP_OK.
 *
 * Seeds in fuzz/corpus/esp/ are small binary files written by hand
 * (printf with octal escapes; the README's "Input formats" says how).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ike/esp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define W	 ESP_REPLAY_WINDOW
#define MAX_SEEN 512

struct model {
	bool	 esn;
	uint64_t top, seen[MAX_SEEN];
	size_t	 nseen;
};

static struct esp_sa *
sa_make(bool cbc, bool esn, bool outbound)
{
	static const uint8_t key[36] = { 1, 2, 3, 4, 5 }, ikey[32] = { 9 };
	struct esp_sa_cfg    c = {
		   .spi = 0x01020304,
		   .alg = cbc ? ESP_AES_CBC_256_SHA256 : ESP_AES_GCM_256,
		   .esn = esn,
		   .outbound = outbound,
		   .enc_key = key,
		   .enc_len = cbc ? 32 : 36,
		   .integ_key = cbc ? ikey : NULL,
		   .integ_len = cbc ? 32 : 0,
	};
	char	       err[200];
	struct esp_sa *sa = esp_sa_new(&c, err, sizeof(err));

	if (sa == NULL)
		abort();
	return sa;
}

static bool
model_seen(const struct model *m, uint64_t s)
{
	for (size_t i = 0; i < m->nseen; i++)
		if (m->seen[i] == s)
			return true;
	return false;
}

/* What esp_decap must say for a packet with full sequence number s. */
static enum esp_rc
model_expect(const struct model *m, uint64_t s)
{
	uint64_t c = s;

	if (m->esn) { /* the candidate of RFC 4303 A2.1 */
		uint64_t lo = m->top >= W - 1 ? m->top - (W - 1) : 0;

		c = lo + (uint32_t)((uint32_t)s - (uint32_t)lo);
	}
	if (c == 0 || (c <= m->top && (m->top - c >= W || model_seen(m, c))))
		return ESP_E_REPLAY;
	return c == s ? ESP_OK : ESP_E_ICV;
}

static void
model_accept(struct model *m, uint64_t s)
{
	if (s > m->top)
		m->top = s;
	if (m->nseen < MAX_SEEN)
		m->seen[m->nseen++] = s;
	else
		abort(); /* records are capped below */
}

static uint64_t
next_seq(const struct model *m, int32_t d)
{
	uint64_t max = m->esn ? UINT64_MAX : UINT32_MAX, s;

	if (d < 0)
		s = m->top > (uint64_t) - (int64_t)d ? m->top + d : 1;
	else
		s = max - m->top > (uint64_t)d ? m->top + (uint64_t)d : max;
	return s == 0 ? 1 : s;
}

/* One record: send s, check the outcome, try the damaged copies. */
static void
one(struct esp_sa *o, struct esp_sa *in, struct model *m, uint64_t s,
    size_t ilen, uint8_t nh)
{
	uint8_t	    inner[255], pkt[255 + ESP_MAX_OVERHEAD], b[sizeof(pkt)];
	size_t	    len, off, got;
	uint8_t	    gnh;
	enum esp_rc want = model_expect(m, s);

	for (size_t i = 0; i < ilen; i++)
		inner[i] = (uint8_t)(s + i);
	esp_sa_test_set_seq(o, s - 1);
	if (esp_encap(o, inner, ilen, nh, pkt, sizeof(pkt), &len) != ESP_OK)
		abort();
	memcpy(b, pkt, len);
	if (esp_decap(in, b, len - 1, &off, &got, &gnh) == ESP_OK)
		abort();
	b[(s * 7) % len] ^= 0x10;
	if (esp_decap(in, b, len, &off, &got, &gnh) == ESP_OK)
		abort();
	if (esp_decap(in, pkt, len, &off, &got, &gnh) != want)
		abort();
	if (want != ESP_OK)
		return;
	if (got != ilen || gnh != nh || memcmp(pkt + off, inner, ilen) != 0)
		abort();
	model_accept(m, s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct esp_sa *o[4], *in[4];
	struct model	      m = { 0 };
	int		      k;
	uint64_t	      start = 0;

	if (o[0] == NULL) {
		log_init("esp_fuzz", LOG_ERR);
		for (k = 0; k < 4; k++) {
			o[k] = sa_make(k & 1, k & 2, true);
			in[k] = sa_make(k & 1, k & 2, false);
		}
	}
	if (size < 6)
		return 0;
	k = data[0] & 3;
	m.esn = (k & 2) != 0;
	for (int i = 1; i < 6; i++)
		start = start << 8 | data[i];
	if (!m.esn)
		start &= UINT32_MAX;
	esp_sa_test_set_seq(in[k], start);
	m.top = start;
	if (start != 0)
		model_accept(&m, start);
	for (size_t p = 6; p + 6 <= size && m.nseen < MAX_SEEN; p += 6) {
		int32_t d = (int32_t)((uint32_t)data[p] << 24 |
		    (uint32_t)data[p + 1] << 16 | (uint32_t)data[p + 2] << 8 |
		    data[p + 3]);

		one(o[k], in[k], &m, next_seq(&m, d), data[p + 4], data[p + 5]);
	}
	return 0;
}

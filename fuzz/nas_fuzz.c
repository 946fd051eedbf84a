/*
 * libFuzzer target for the NAS parsers of NWu: the 5GMM codec (ike/nas.c,
 * UL/DL NAS TRANSPORT included), the 5GSM codec (ike/nas_5gsm.c) and the
 * NAS over TCP reassembly (ike/nas_tcp.c).
 *
 * Input: one mode byte, then the data.
 *   mode 0: a NAS PDU: nas_split, then nas_decode of the plain message;
 *           a decoded transport's payload goes through nas_sm_decode, and
 *           a decoded message is encoded again and must decode again
 *   mode 1: a 5GSM message: nas_sm_decode, re-encode, decode
 *   mode 2: a TCP byte stream fed to the reassembly in chunks whose sizes
 *           come from the data; every envelope goes to mode 0
 *   mode 3: a NAS PDU received under a 128-NEA2 context (ike/nas_sec.c):
 *           nas_open (deciphers SHT 2/4), nas_decode, nas_verify; and the
 *           data as a plain message, protected with SHT 2 then opened,
 *           must come back as it was, its MAC verifying
 * Seeds: fuzz/corpus/nas/ (the byte-exact vectors of
 * tests/unit/test_ike_nas_5gsm.c, behind their mode byte).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/nas.h"
#include "ike/nas_5gsm.h"
#include "ike/nas_tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
sm(const uint8_t *p, size_t n)
{
	struct nas_sm m, m2;
	struct buf    b;

	if (nas_sm_decode(p, n, &m) == -1)
		return;
	buf_init(&b, NAS_MSG_MAX);
	if (nas_sm_encode(&m, &b) == 0 &&
	    nas_sm_decode(b.data, b.len, &m2) == -1)
		__builtin_trap();
	buf_free(&b);
}

static void
mm(const uint8_t *p, size_t n)
{
	const uint8_t *plain;
	size_t	       plen;
	uint8_t	       sht;
	struct nas_msg m, m2;
	struct buf     b;

	if (nas_split(p, n, &sht, &plain, &plen) == -1 ||
	    nas_decode(plain, plen, &m) == -1)
		return;
	if (m.payload != NULL)
		sm(m.payload, m.payload_len);
	buf_init(&b, NAS_MSG_MAX);
	if (nas_encode(&m, &b) == 0 && nas_decode(b.data, b.len, &m2) == -1)
		__builtin_trap();
	buf_free(&b);
}

static void
stream(const uint8_t *p, size_t n)
{
	static struct nas_tcp_rx r;
	const uint8_t		*msg;
	size_t			 len, o = 0, step;

	nas_tcp_rx_init(&r, n > 0 ? (size_t)p[0] * 16 : 0);
	while (o < n) {
		uint8_t *dst = nas_tcp_space(&r, &step);

		if (step == 0)
			break;
		step = step < (size_t)(p[o] % 97) + 1 ? step :
							(size_t)(p[o] % 97) + 1;
		step = step < n - o ? step : n - o;
		memcpy(dst, p + o, step);
		nas_tcp_fed(&r, step);
		o += step;
		while (nas_tcp_next(&r, &msg, &len))
			mm(msg, len);
	}
}

static void
ciphered(const uint8_t *p, size_t n)
{
	static const struct nas_sec s0 = { .active = true,
		.ia = NAS_ALG_IA2,
		.ea = NAS_ALG_EA2,
		.bearer = NAS_CONN_NON3GPP };
	struct nas_sec		    rx = s0, tx = s0;
	struct nas_msg		    m;
	struct buf		    b;
	uint8_t			    out[NAS_MSG_MAX], sht;
	size_t			    olen;

	if (nas_open(&rx, false, p, n, &sht, out, &olen) == 0 &&
	    nas_decode(out, olen, &m) == 0 && m.payload != NULL)
		sm(m.payload, m.payload_len);
	(void)nas_verify(&rx, false, p, n);
	if (n < 3 || n > NAS_MSG_MAX)
		return;
	rx = s0;
	buf_init(&b, 2 * NAS_MSG_MAX);
	if (nas_protect(&tx, NAS_SHT_INT_ENC, true, p, n, &b) == 0 &&
	    (nas_open(&rx, true, b.data, b.len, &sht, out, &olen) == -1 ||
		olen != n || memcmp(out, p, n) != 0 ||
		nas_verify(&rx, true, b.data, b.len) == -1))
		__builtin_trap();
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;

	if (!init) {
		log_init("nas_fuzz", LOG_ERR);
		init = 1;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: mm(data + 1, size - 1); break;
	case 1: sm(data + 1, size - 1); break;
	case 2: stream(data + 1, size - 1); break;
	case 3: ciphered(data + 1, size - 1); break;
	}
	return 0;
}

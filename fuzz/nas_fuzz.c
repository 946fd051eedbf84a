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
	switch (data[0] % 3) {
	case 0: mm(data + 1, size - 1); break;
	case 1: sm(data + 1, size - 1); break;
	case 2: stream(data + 1, size - 1); break;
	}
	return 0;
}

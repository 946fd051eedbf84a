/*
 * Unit tests for ike/nas_tcp (NAS message envelopes over TCP, TS 24.502
 * 9.4: framing, reassembly over any split of the stream, bounds) and for
 * the PDU session messages (ike/nas_5gsm and the UL/DL NAS TRANSPORT of
 * ike/nas): round trips, exact bytes laid out by hand from TS 24.501
 * 8.2.10, 8.3.1, 8.3.2 and 9.11.4 (the same bytes tshark decodes, see
 * ike/README.md), every truncation refused.
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
#include "ike/nas_5gsm.h"
#include "ike/nas_tcp.h"
#include "tests/unit/ike5g_test.h"

/* ---- framing ------------------------------------------------------------ */

/* Three envelopes (1, 300 and 4096 bytes) as one stream. */
static void
three_frames(struct buf *s, uint8_t *m1, uint8_t *m2, uint8_t *m3)
{
	memset(m1, 0x11, 1);
	for (size_t i = 0; i < 300; i++)
		m2[i] = (uint8_t)i;
	memset(m3, 0x33, NAS_TCP_MAX);
	buf_init(s, 3 * NAS_TCP_MAX);
	assert_int_equal(nas_tcp_frame(s, m1, 1), 0);
	assert_int_equal(nas_tcp_frame(s, m2, 300), 0);
	assert_int_equal(nas_tcp_frame(s, m3, NAS_TCP_MAX), 0);
	assert_int_equal(s->len, 3 * 2 + 1 + 300 + NAS_TCP_MAX);
	assert_int_equal(s->data[0], 0x00);
	assert_int_equal(s->data[1], 0x01); /* length field, big endian */
	assert_int_equal(s->data[3], 0x01);
	assert_int_equal(s->data[4], 0x2c); /* 300 */
}

/* Feeds the stream in chunks of `step` bytes at most, as read() into
 * nas_tcp_space() does; all three come out whole. */
static void
feed_in_steps(const struct buf *s, size_t step, const uint8_t *m2,
    const uint8_t *m3)
{
	struct nas_tcp_rx r;
	const uint8_t	 *msg;
	size_t		  len, got = 0;

	nas_tcp_rx_init(&r, 0);
	for (size_t o = 0, n; o < s->len; o += n) {
		uint8_t *p = nas_tcp_space(&r, &n);

		n = n < step ? n : step;
		n = n < s->len - o ? n : s->len - o;
		assert_true(n > 0);
		memcpy(p, s->data + o, n);
		nas_tcp_fed(&r, n);
		while (nas_tcp_next(&r, &msg, &len)) {
			got++;
			if (got == 1)
				assert_true(len == 1 && msg[0] == 0x11);
			else if (got == 2)
				assert_true(
				    len == 300 && memcmp(msg, m2, 300) == 0);
			else
				assert_true(len == NAS_TCP_MAX &&
				    memcmp(msg, m3, len) == 0);
		}
	}
	assert_int_equal(got, 3);
	assert_false(nas_tcp_partial(&r));
	assert_false(nas_tcp_broken(&r));
}

static void
test_nas_tcp_framing(void **state)
{
	static uint8_t m1[1], m2[300], m3[NAS_TCP_MAX];
	struct buf     s, big;
	size_t	       steps[] = { 1, 2, 3, 7, 301, 4097, 100000 };

	three_frames(&s, m1, m2, m3);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		feed_in_steps(&s, steps[i], m2, m3);
	/* the builder refuses empty and oversized messages */
	buf_init(&big, 3 * NAS_TCP_MAX);
	assert_int_equal(nas_tcp_frame(&big, m3, 0), -1);
	assert_int_equal(nas_tcp_frame(&big, m3, NAS_TCP_MAX + 1), -1);
	assert_int_equal(big.len, 0);
	buf_free(&big);
	buf_free(&s);
}

static void
test_nas_tcp_bounds(void **state)
{
	struct nas_tcp_rx r;
	const uint8_t	 *msg;
	size_t		  len;
	static uint8_t	  junk[NAS_TCP_HDR + NAS_TCP_MAX + 1];
	const uint8_t	  over[] = { 0x01, 0x01, 0xaa }; /* 257 > 256 */
	const uint8_t	  zero[] = { 0x00, 0x00, 0x7e };
	const uint8_t	  part[] = { 0x00, 0x05, 0x7e, 0x00 };

	/* a length above the receiver's maximum breaks the stream */
	nas_tcp_rx_init(&r, 256);
	assert_int_equal(nas_tcp_feed(&r, over, sizeof(over)), 0);
	assert_false(nas_tcp_next(&r, &msg, &len));
	assert_true(nas_tcp_broken(&r));
	assert_int_equal(nas_tcp_feed(&r, over, 1), -1); /* and stays so */
	/* exactly the maximum passes */
	nas_tcp_rx_init(&r, 1);
	assert_int_equal(nas_tcp_feed(&r, (const uint8_t[]){ 0, 1, 9 }, 3), 0);
	assert_true(nas_tcp_next(&r, &msg, &len));
	assert_int_equal(len, 1);
	/* length 0 is not a NAS message */
	nas_tcp_rx_init(&r, 0);
	assert_int_equal(nas_tcp_feed(&r, zero, sizeof(zero)), 0);
	assert_false(nas_tcp_next(&r, &msg, &len));
	assert_true(nas_tcp_broken(&r));
	/* a partial envelope waits, and says so (truncated at EOF) */
	nas_tcp_rx_init(&r, 0);
	assert_int_equal(nas_tcp_feed(&r, part, sizeof(part)), 0);
	assert_false(nas_tcp_next(&r, &msg, &len));
	assert_false(nas_tcp_broken(&r));
	assert_true(nas_tcp_partial(&r));
	/* more than the buffer holds is refused, not overrun */
	nas_tcp_rx_init(&r, 0);
	assert_int_equal(nas_tcp_feed(&r, junk, sizeof(junk)), -1);
	assert_int_equal(nas_tcp_feed(&r, junk, sizeof(junk) - 1), 0);
}

/* ---- 5GSM and NAS TRANSPORT --------------------------------------------- */

/* TS 24.501 8.3.1: EPD 2e, PSI 5, PTI 1, type c1, integrity protection
 * maximum data rate ff ff, PDU session type IPv4 (TV 9-: 91), SSC mode 1
 * (TV A-: a1). */
#define V_REQ "2e0501c1ffff91a1"
/* 8.3.2: selected SSC mode 1 | type IPv4 (11); QoS rules LV-E 0009: rule
 * 1, length 0006, create + DQR + 1 filter (31), filter bidirectional id 1
 * (31), 1 byte match-all (01 01), precedence ff, QFI 9; session AMBR 06:
 * 1 Mbps x 1000 both ways; PDU address (29) 05: IPv4 10.60.0.2. */
#define V_ACC                                                                  \
	"2e0501c211000901000631310101ff09060603e80603e829050"                  \
	"10a3c0002"
/* 8.2.10: 7e 00 67, payload container type N1 SM (01), payload LV-E,
 * PDU session ID (12) 5, request type initial (81), S-NSSAI (22) 01 01,
 * DNN (25) 09 "internet" as one label. */
#define V_UL "7e00670100082e0501c1ffff91a1120581220101250908696e7465726e6574"

static void
sm_accept(struct nas_sm *a)
{
	memset(a, 0, sizeof(*a));
	a->type = NAS_SM_EST_ACCEPT;
	a->psi = 5;
	a->pti = 1;
	a->pdu_type = NAS_PDU_IPV4;
	a->ssc_mode = NAS_SSC_MODE1;
	a->qfi = 9;
	a->qos_rule = 1;
	a->ambr_unit = NAS_AMBR_UNIT_1MBPS;
	a->ambr_dl = a->ambr_ul = 1000;
	a->has_addr = true;
	memcpy(a->addr, (const uint8_t[]){ 10, 60, 0, 2 }, 4);
}

static void
assert_buf_hex(const struct buf *b, const char *want)
{
	uint8_t w[128];
	size_t	n = strlen(want) / 2;

	assert_int_equal(b->len, n);
	hx(want, w, n);
	assert_memory_equal(b->data, w, n);
}

/* Every strict prefix of the 5GSM message is refused. */
static void
sm_truncations(const struct buf *b)
{
	struct nas_sm m;

	for (size_t n = 0; n < b->len; n++)
		assert_int_equal(nas_sm_decode(b->data, n, &m), -1);
}

static void
test_nas_5gsm_wire(void **state)
{
	struct nas_sm q, a, d;
	struct buf    b;

	buf_init(&b, NAS_MSG_MAX);
	memset(&q, 0, sizeof(q));
	q.type = NAS_SM_EST_REQUEST;
	q.psi = 5;
	q.pti = 1;
	q.pdu_type = NAS_PDU_IPV4;
	q.ssc_mode = NAS_SSC_MODE1;
	assert_int_equal(nas_sm_encode(&q, &b), 0);
	assert_buf_hex(&b, V_REQ);
	assert_int_equal(nas_sm_decode(b.data, b.len, &d), 0);
	assert_memory_equal(&d, &q, sizeof(q));
	/* without the optional IEs it is still a request */
	assert_int_equal(nas_sm_decode(b.data, 6, &d), 0);
	assert_int_equal(d.pdu_type, 0);
	buf_reset(&b);
	sm_accept(&a);
	assert_int_equal(nas_sm_encode(&a, &b), 0);
	assert_buf_hex(&b, V_ACC);
	assert_int_equal(nas_sm_decode(b.data, b.len, &d), 0);
	assert_memory_equal(&d, &a, sizeof(a));
	/* every prefix fails but the one without the PDU address */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(nas_sm_decode(b.data, n, &d) == 0,
		    n == b.len - 7);
	b.data[b.len - 7 + 2] = 2; /* PDU address of type IPv6 */
	assert_int_equal(nas_sm_decode(b.data, b.len, &d), -1);
	buf_reset(&b);
	memset(&d, 0, sizeof(d));
	d.type = NAS_SM_EST_REJECT;
	d.psi = 5;
	d.pti = 1;
	d.cause = NAS_SM_CAUSE_REFUSED;
	assert_int_equal(nas_sm_encode(&d, &b), 0);
	assert_buf_hex(&b, "2e0501c31a");
	sm_truncations(&b);
	/* out-of-range fields are not built */
	a.qfi = 64;
	assert_int_equal(nas_sm_encode(&a, &b), -1);
	sm_accept(&a);
	a.psi = 16;
	assert_int_equal(nas_sm_encode(&a, &b), -1);
	buf_free(&b);
}

static void
test_nas_transport_wire(void **state)
{
	struct nas_msg m, d;
	struct buf     b, sm;

	buf_init(&b, NAS_MSG_MAX);
	buf_init(&sm, NAS_MSG_MAX);
	hx(V_REQ, buf_reserve(&sm, 8), 8);
	memset(&m, 0, sizeof(m));
	m.type = NAS_UL_TRANSPORT;
	m.payload_type = NAS_PAYLOAD_N1_SM;
	m.payload = sm.data;
	m.payload_len = sm.len;
	m.psi = 5;
	m.req_type = NAS_REQTYPE_INITIAL;
	m.has_snssai = true;
	m.sst = 1;
	snprintf(m.dnn, sizeof(m.dnn), "internet");
	assert_int_equal(nas_encode(&m, &b), 0);
	assert_buf_hex(&b, V_UL);
	assert_int_equal(nas_decode(b.data, b.len, &d), 0);
	assert_int_equal(d.type, NAS_UL_TRANSPORT);
	assert_int_equal(d.payload_len, 8);
	assert_memory_equal(d.payload, sm.data, 8);
	assert_true(d.psi == 5 && d.req_type == 1 && d.has_snssai &&
	    !d.has_sd && d.sst == 1);
	assert_string_equal(d.dnn, "internet");
	for (size_t n = 0; n < 3 + 1 + 2 + 8; n++)
		assert_int_equal(nas_decode(b.data, n, &d), -1);
	/* a DL NAS TRANSPORT: the same container, the PSI, no more */
	buf_reset(&b);
	m.type = NAS_DL_TRANSPORT;
	assert_int_equal(nas_encode(&m, &b), 0);
	assert_buf_hex(&b, "7e00680100082e0501c1ffff91a11205");
	assert_int_equal(nas_decode(b.data, b.len, &d), 0);
	assert_true(d.psi == 5 && d.dnn[0] == '\0' && !d.has_snssai);
	b.data[b.len - 2] = 0x25; /* DNN IE with a 5-byte length but none */
	assert_int_equal(nas_decode(b.data, b.len, &d), -1);
	buf_free(&b);
	buf_free(&sm);
}

static void
test_nas_dnn(void **state)
{
	uint8_t w[NAS_DNN_MAX + 1];
	char	s[NAS_DNN_MAX + 1], big[80];
	size_t	n;

	assert_int_equal(nas_dnn_encode("ims.mnc093.mcc208", w, &n), 0);
	assert_int_equal(n, 18);
	assert_int_equal(w[0], 3);
	assert_int_equal(w[4], 6);
	assert_int_equal(nas_dnn_decode(w, n, s), 0);
	assert_string_equal(s, "ims.mnc093.mcc208");
	assert_int_equal(nas_dnn_encode("a..b", w, &n), -1);
	assert_int_equal(nas_dnn_encode("a.", w, &n), -1);
	assert_int_equal(nas_dnn_encode("", w, &n), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(nas_dnn_encode(big, w, &n), -1);
	big[NAS_DNN_MAX] = '\0';
	assert_int_equal(nas_dnn_encode(big, w, &n), 0);
	assert_int_equal(nas_dnn_decode(w, n, s), 0);
	assert_int_equal(strlen(s), NAS_DNN_MAX);
	w[0] = 200; /* label longer than the rest */
	assert_int_equal(nas_dnn_decode(w, n, s), -1);
	assert_int_equal(nas_dnn_decode((const uint8_t *)"\x01.", 2, s), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nas_tcp_framing),
		cmocka_unit_test(test_nas_tcp_bounds),
		cmocka_unit_test(test_nas_5gsm_wire),
		cmocka_unit_test(test_nas_transport_wire),
		cmocka_unit_test(test_nas_dnn),
	};

	log_init("test_ike_nas_5gsm", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

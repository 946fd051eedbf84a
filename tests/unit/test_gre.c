/*
 * ike/gre: the TS 24.502 9.3.3 header byte by byte (QFI in octet 5,
 * RQI in octet 8 bit 7, K set, EtherType of the payload), decap of what
 * encap wrote, each flag and version bit refused, every truncated
 * prefix refused, and a protocol type of zero (Release 19) accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ike/gre.h"

/* Inner packets: an IPv4 header, an IPv6 header (first bytes only). */
static const uint8_t ip4[20] = { 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1 };
static const uint8_t ip6[40] = { 0x60 };

static void
test_encap_bytes(void **state)
{
	struct gre_qos	     q = { 9, true };
	uint8_t		     h[GRE_HDR_LEN];
	static const uint8_t want4[] = { 0x20, 0, 0x08, 0x00, 9, 0, 0, 0x80 };
	static const uint8_t want6[] = { 0x20, 0, 0x86, 0xdd, 63, 0, 0, 0 };

	(void)state;
	assert_int_equal(gre_encap_hdr(h, &q, ip4, sizeof(ip4)), 0);
	assert_memory_equal(h, want4, GRE_HDR_LEN);
	q = (struct gre_qos){ 63, false };
	assert_int_equal(gre_encap_hdr(h, &q, ip6, sizeof(ip6)), 0);
	assert_memory_equal(h, want6, GRE_HDR_LEN);
	q.qfi = 64;
	assert_int_equal(gre_encap_hdr(h, &q, ip4, sizeof(ip4)), -1);
	q.qfi = 1;
	assert_int_equal(gre_encap_hdr(h, &q, ip4, 0), -1);
	assert_int_equal(gre_encap_hdr(h, &q, (const uint8_t *)"\x50", 1), -1);
}

static size_t
packet(uint8_t *p, uint8_t qfi, bool rqi)
{
	struct gre_qos q = { qfi, rqi };

	assert_int_equal(gre_encap_hdr(p, &q, ip4, sizeof(ip4)), 0);
	memcpy(p + GRE_HDR_LEN, ip4, sizeof(ip4));
	return GRE_HDR_LEN + sizeof(ip4);
}

static void
test_roundtrip(void **state)
{
	uint8_t	       p[64];
	struct gre_qos q;
	size_t	       n;

	(void)state;
	for (unsigned qfi = 0; qfi <= GRE_QFI_MAX; qfi++) {
		n = packet(p, (uint8_t)qfi, qfi & 1);
		assert_int_equal(gre_decap(p, n, &q), 0);
		assert_int_equal(q.qfi, qfi);
		assert_int_equal(q.rqi, (bool)(qfi & 1));
	}
	/* Protocol Type zero (Release 19): ignored by the receiver. */
	p[2] = p[3] = 0;
	assert_int_equal(gre_decap(p, n, &q), 0);
	/* Spare key bits do not leak into the QFI. */
	p[4] = 0xc5;
	assert_int_equal(gre_decap(p, n, &q), 0);
	assert_int_equal(q.qfi, 5);
}

static void
test_refused(void **state)
{
	uint8_t	       p[64], b[64];
	struct gre_qos q;
	size_t	       n;

	(void)state;
	n = packet(p, 5, false);
	/* Every bit of octets 1 and 2 but K flipped, and K cleared. */
	for (unsigned bit = 0; bit < 16; bit++) {
		memcpy(b, p, n);
		b[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
		assert_int_equal(gre_decap(b, n, &q), -1);
	}
	/* Every truncated prefix, the bare header included. */
	for (size_t i = 0; i <= GRE_HDR_LEN; i++)
		assert_int_equal(gre_decap(p, i, &q), -1);
	/* A payload that is not IP. */
	memcpy(b, p, n);
	b[GRE_HDR_LEN] = 0x50;
	assert_int_equal(gre_decap(b, n, &q), -1);
}

int
main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_encap_bytes),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(t, NULL, NULL);
}

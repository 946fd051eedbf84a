/*
 * Unit tests for ike/eap5g: every EAP-5G message round-trips (with every
 * truncation refused), exact bytes of 5G-Start, AN-parameters, and
 * malformed packets (type, vendor, vendor type, length, code).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/eap5g.h"

static const uint8_t nas[] = { 0x7e, 0x00, 0x43 };
static const uint8_t start_hdr[] = { 0x01, 0x07, 0x00, 0x0e, 0xfe, 0x00, 0x28,
	0xaf, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00 };

static void
eap_roundtrip(const struct eap5g_msg *in, struct eap5g_msg *out, struct buf *b)
{
	buf_reset(b);
	assert_int_equal(eap5g_encode(in, b), 0);
	assert_int_equal(b->data[2] << 8 | b->data[3], b->len);
	assert_int_equal(eap5g_decode(b->data, b->len, out), 0);
	assert_int_equal(out->code, in->code);
	assert_int_equal(out->id, in->id);
	for (size_t n = 0; n < b->len; n++)
		assert_int_equal(eap5g_decode(b->data, n, out), -1);
	assert_int_equal(eap5g_decode(b->data, b->len, out), 0);
}

/* ---- the messages, as one table ----------------------------------------- */

/* EAP-Request/5G-Start: exact bytes */
static void
check_start(const struct buf *b, const struct eap5g_msg *d,
    const struct buf *an)
{
	assert_int_equal(b->len, sizeof(start_hdr));
	assert_memory_equal(b->data, start_hdr, sizeof(start_hdr));
	assert_int_equal(d->msg_id, EAP5G_START);
}

/* EAP-Response/5G-NAS with AN-parameters */
static void
check_nas_first(const struct buf *b, const struct eap5g_msg *d,
    const struct buf *an)
{
	assert_int_equal(b->len, 14 + 2 + an->len + 2 + sizeof(nas));
	assert_int_equal(d->an_len, an->len);
	assert_memory_equal(d->an, an->data, an->len);
	assert_int_equal(d->nas_len, sizeof(nas));
	assert_memory_equal(d->nas, nas, sizeof(nas));
}

/* later responses: AN-parameters length 0 */
static void
check_nas_later(const struct buf *b, const struct eap5g_msg *d,
    const struct buf *an)
{
	assert_int_equal(b->data[14], 0);
	assert_int_equal(b->data[15], 0);
	assert_int_equal(d->an_len, 0);
}

/* EAP-Request/5G-NAS: no AN-parameters field */
static void
check_nas_request(const struct buf *b, const struct eap5g_msg *d,
    const struct buf *an)
{
	assert_int_equal(b->len, 14 + 2 + sizeof(nas));
	assert_memory_equal(d->nas, nas, sizeof(nas));
}

static void
check_stop(const struct buf *b, const struct eap5g_msg *d, const struct buf *an)
{
	assert_int_equal(d->msg_id, EAP5G_STOP);
}

static void
check_success(const struct buf *b, const struct eap5g_msg *d,
    const struct buf *an)
{
	assert_int_equal(b->len, 4);
}

static const struct eap_case {
	const char	*name;
	struct eap5g_msg m;
	bool		 with_an; /* attach the AN-parameters */
	void (*check)(const struct buf *, const struct eap5g_msg *,
	    const struct buf *);
} eap_cases[] = {
	{ "Request/5G-Start",
	    { .code = EAP_CODE_REQUEST, .id = 7, .msg_id = EAP5G_START }, false,
	    check_start },
	{ "Response/5G-NAS, first",
	    { .code = EAP_CODE_RESPONSE,
		.id = 8,
		.msg_id = EAP5G_NAS,
		.nas = nas,
		.nas_len = sizeof(nas) },
	    true, check_nas_first },
	{ "Response/5G-NAS, later",
	    { .code = EAP_CODE_RESPONSE,
		.id = 8,
		.msg_id = EAP5G_NAS,
		.nas = nas,
		.nas_len = sizeof(nas) },
	    false, check_nas_later },
	{ "Request/5G-NAS",
	    { .code = EAP_CODE_REQUEST,
		.id = 8,
		.msg_id = EAP5G_NAS,
		.nas = nas,
		.nas_len = sizeof(nas) },
	    false, check_nas_request },
	{ "Response/5G-Stop",
	    { .code = EAP_CODE_RESPONSE, .id = 9, .msg_id = EAP5G_STOP }, false,
	    check_stop },
	{ "Success", { .code = EAP_CODE_SUCCESS, .id = 10 }, false,
	    check_success },
	{ "Failure", { .code = EAP_CODE_FAILURE, .id = 10 }, false, NULL },
};

static void
test_eap5g_roundtrips(void **state)
{
	struct eap5g_msg m, d;
	struct buf	 b, an;

	buf_init(&b, 4096);
	buf_init(&an, 256);
	assert_int_equal(eap5g_an_build(&an, "208", "93"), 0);
	for (size_t i = 0; i < sizeof(eap_cases) / sizeof(eap_cases[0]); i++) {
		const struct eap_case *c = &eap_cases[i];

		print_message("%s\n", c->name);
		m = c->m;
		if (c->with_an) {
			m.an = an.data;
			m.an_len = an.len;
		}
		eap_roundtrip(&m, &d, &b);
		if (c->check != NULL)
			c->check(&b, &d, &an);
	}
	buf_free(&b);
	buf_free(&an);
}

/* ---- AN-parameters -------------------------------------------------------- */

static void
test_eap5g_an(void **state)
{
	struct buf     an;
	const uint8_t *v;
	size_t	       vl;

	buf_init(&an, 256);
	assert_int_equal(eap5g_an_build(&an, "208", "93"), 0);
	assert_int_equal(eap5g_an_find(an.data, an.len, EAP5G_AN_PLMN_ID, &v,
			     &vl),
	    0);
	assert_non_null(v);
	assert_int_equal(vl, 3);
	assert_int_equal(v[0], 0x02);
	assert_int_equal(v[1], 0xf8);
	assert_int_equal(v[2], 0x39);
	assert_int_equal(eap5g_an_find(an.data, an.len, EAP5G_AN_EST_CAUSE, &v,
			     &vl),
	    0);
	assert_non_null(v);
	assert_int_equal(v[0], EAP5G_CAUSE_MO_SIGNALLING);
	assert_int_equal(eap5g_an_find(an.data, an.len, EAP5G_AN_GUAMI, &v,
			     &vl),
	    0);
	assert_null(v); /* absent */
	assert_int_equal(eap5g_an_find(an.data, an.len - 1, EAP5G_AN_GUAMI, &v,
			     &vl),
	    -1);
	assert_null(v);
	buf_free(&an);
}

/* ---- malformed ------------------------------------------------------------ */

static void
test_eap5g_malformed(void **state)
{
	const uint8_t	 succ5[] = { 3, 1, 0, 5, 0 };
	struct eap5g_msg m, d;
	struct buf	 b;

	buf_init(&b, 4096);
	/* empty NAS-PDU is not valid */
	memset(&m, 0, sizeof(m));
	m.code = EAP_CODE_REQUEST;
	m.id = 8;
	m.msg_id = EAP5G_NAS;
	m.nas = nas;
	m.nas_len = 0;
	assert_int_equal(eap5g_encode(&m, &b), -1);
	assert_int_equal(b.len, 0);

	/* wrong type, vendor, vendor type, message id, length */
	assert_int_equal(buf_add(&b, start_hdr, sizeof(start_hdr)), 0);
	for (size_t i = 4; i < 13; i++) {
		b.data[i] ^= 0x40;
		assert_int_equal(eap5g_decode(b.data, b.len, &d), -1);
		b.data[i] ^= 0x40;
	}
	assert_int_equal(eap5g_decode(b.data, b.len, &d), 0);
	b.data[3] = 0x0f; /* Length > packet */
	assert_int_equal(eap5g_decode(b.data, b.len, &d), -1);
	b.data[3] = 0x0e;
	b.data[0] = 5; /* unknown code */
	assert_int_equal(eap5g_decode(b.data, b.len, &d), -1);
	assert_int_equal(eap5g_decode(succ5, 5, &d), -1);
	assert_string_equal(eap5g_msg_name(EAP5G_NAS), "5G-NAS");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eap5g_roundtrips),
		cmocka_unit_test(test_eap5g_an),
		cmocka_unit_test(test_eap5g_malformed),
	};

	log_init("test_ike_eap5g", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

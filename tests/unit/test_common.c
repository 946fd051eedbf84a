/* Unit tests for common/: buf, rd, b64, uuid, num. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/num.h"
#include "common/uuid.h"

static void
test_buf_bounds(void **state)
{
	struct buf b;
	uint8_t	   big[100];

	memset(big, 0xab, sizeof(big));
	buf_init(&b, 64);
	assert_int_equal(buf_add(&b, big, 60), 0);
	assert_int_equal(buf_add(&b, big, 5), -1); /* would pass max */
	assert_int_equal(b.len, 60);
	assert_int_equal(buf_add_u32(&b, 0x01020304), 0);
	assert_int_equal(b.len, 64);
	assert_int_equal(b.data[60], 1);
	assert_int_equal(b.data[63], 4);
	assert_null(buf_reserve(&b, 1));
	assert_null(buf_reserve(&b, SIZE_MAX)); /* no overflow */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	buf_free(&b); /* twice is fine */
	buf_free(NULL);
}

static void
test_buf_grow_keeps_data(void **state)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(buf_add_u16(&b, (uint16_t)i), 0);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(b.data[2 * i] << 8 | b.data[2 * i + 1],
		    i & 0xffff);
	buf_free(&b);
}

static void
test_rd(void **state)
{
	const uint8_t msg[] = { 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4,
		9 };
	struct rd     r;
	uint8_t	      u8, two[2];
	uint16_t      u16;
	uint32_t      u32;
	uint64_t      u64;

	rd_init(&r, msg, sizeof(msg));
	assert_int_equal(rd_u8(&r, &u8), 0);
	assert_int_equal(u8, 1);
	assert_int_equal(rd_u16(&r, &u16), 0);
	assert_int_equal(u16, 2);
	assert_int_equal(rd_u32(&r, &u32), 0);
	assert_int_equal(u32, 3);
	assert_int_equal(rd_u64(&r, &u64), 0);
	assert_int_equal(u64, 4);
	assert_int_equal(rd_left(&r), 1);
	assert_int_equal(rd_bytes(&r, two, 2), -1); /* short */
	assert_int_equal(rd_left(&r), 1);	    /* nothing consumed */
	assert_int_equal(rd_u16(&r, &u16), -1);
	assert_int_equal(rd_u8(&r, &u8), 0);
	assert_int_equal(u8, 9);
	assert_int_equal(rd_u8(&r, &u8), -1);
}

static void
test_b64_vectors(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		/* RFC 4648 s10 */
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char	enc[32];
	uint8_t dec[32];
	size_t	n;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t l = strlen(v[i].in);

		assert_int_equal(b64_encode((const uint8_t *)v[i].in, l, enc,
				     sizeof(enc)),
		    0);
		assert_string_equal(enc, v[i].out);
		assert_int_equal(b64_decode(v[i].out, strlen(v[i].out), dec,
				     sizeof(dec), &n),
		    0);
		assert_int_equal(n, l);
		assert_memory_equal(dec, v[i].in, l);
		/* exact-size output buffer works too */
		if (l > 0) {
			assert_int_equal(b64_decode(v[i].out, strlen(v[i].out),
					     dec, l, &n),
			    0);
			assert_int_equal(n, l);
			assert_memory_equal(dec, v[i].in, l);
		}
	}
	assert_int_equal(b64_encode((const uint8_t *)"foo", 3, enc, 4), -1);
}

static void
test_b64_bad(void **state)
{
	static const char *bad[] = { "Zg=", "Zg", "Z===", "Zm9v\n", "Zm 9v",
		"Zm9*", "=Zm9", "Zg==Zg==", "Zm9vY===" };
	uint8_t		   dec[32];
	size_t		   n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(b64_decode(bad[i], strlen(bad[i]), dec,
				     sizeof(dec), &n),
		    -1);
	assert_int_equal(b64_decode("Zm9vYmFy", 8, dec, 5, &n),
	    -1); /* too small */
}

static void
test_uuid(void **state)
{
	uint8_t a[16], b[16];
	char	s[UUID_STRLEN + 1];

	assert_int_equal(uuid_gen(a), 0);
	assert_int_equal(a[6] >> 4, 4);
	assert_int_equal(a[8] >> 6, 2);
	uuid_fmt(a, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(uuid_parse(s, b), 0);
	assert_memory_equal(a, b, 16);
	assert_int_equal(uuid_parse("8a2b5e8e-1d0c-4b6f-9a1d-2c3b4a5d6e7F", b),
	    0);
	assert_int_equal(b[15], 0x7f);
	assert_int_equal(uuid_parse("8a2b5e8e-1d0c-4b6f-9a1d-2c3b4a5d6e7", b),
	    -1);
	assert_int_equal(uuid_parse("8a2b5e8e11d0c-4b6f-9a1d-2c3b4a5d6e7f", b),
	    -1);
	assert_int_equal(uuid_parse("8a2b5e8e-1d0c-4b6f-9a1d-2c3b4a5d6e7g", b),
	    -1);
	assert_int_equal(uuid_parse("", b), -1);
	uuid_gen(b);
	assert_memory_not_equal(a, b, 16);
}

static void
test_num(void **state)
{
	uint64_t v;
	unsigned u;
	char	 host[64];
	uint16_t port;

	assert_int_equal(num_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(num_u64("18446744073709551616", 0, UINT64_MAX, &v),
	    -1);
	assert_int_equal(num_u64("-1", 0, 10, &v), -1);
	assert_int_equal(num_u64("+1", 0, 10, &v), -1);
	assert_int_equal(num_u64(" 1", 0, 10, &v), -1);
	assert_int_equal(num_u64("1 ", 0, 10, &v), -1);
	assert_int_equal(num_u64("1x", 0, 10, &v), -1);
	assert_int_equal(num_u64("", 0, 10, &v), -1);
	assert_int_equal(num_u64("11", 0, 10, &v), -1);
	assert_int_equal(num_uint("7", 8, 10, &u), -1);
	{
		const uint8_t want[3] = { 0x0a, 0xbc, 0xf9 };
		uint8_t	      b[3];

		assert_int_equal(num_unhex("0aBcf9", b, 3), 0);
		assert_memory_equal(b, want, 3);
		assert_int_equal(num_unhex("0aBcg9", b, 3), -1);
		assert_int_equal(num_unhex("0aBc9 ", b, 3), -1);
	}
	assert_int_equal(num_hostport("127.0.0.1:8443", host, sizeof(host),
			     &port, 0),
	    0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8443);
	assert_int_equal(num_hostport("localhost:1", host, sizeof(host), &port,
			     0),
	    0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(num_hostport("127.0.0.1:0", host, sizeof(host), &port,
			     0),
	    -1);
	assert_int_equal(num_hostport("127.0.0.1:0", host, sizeof(host), &port,
			     1),
	    0);
	assert_int_equal(num_hostport("127.0.0.1:65536", host, sizeof(host),
			     &port, 1),
	    -1);
	assert_int_equal(num_hostport("example.org:80", host, sizeof(host),
			     &port, 1),
	    -1);
	assert_int_equal(num_hostport(":80", host, sizeof(host), &port, 1), -1);
	assert_int_equal(num_hostport("127.0.0.1", host, sizeof(host), &port,
			     1),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_bounds),
		cmocka_unit_test(test_buf_grow_keeps_data),
		cmocka_unit_test(test_rd),
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_bad),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_num),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

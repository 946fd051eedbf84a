/* Unit tests for common/tlsid: escaping certificate names for logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/tlsid.h"

static void
test_escape_table(void **state)
{
	static const struct {
		const char *in;
		size_t	    len;
		const char *out;
	} t[] = {
		{ "sae-a", 5, "sae-a" }, { "", 0, "" },
		{ "a\"b", 3, "a\\x22b" }, { "a\\b", 3, "a\\x5cb" },
		{ "\x01\x1f\x7f", 3, "\\x01\\x1f\\x7f" },
		{ "\xc3\xa9", 2, "\\xc3\\xa9" }, { "a\nb", 3, "a\\x0ab" },
		{ "a\0b", 3, "a\\x00b" }, /* an embedded NUL is shown */
	};
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		tlsid_escape(t[i].in, t[i].len, out, sizeof(out));
		assert_string_equal(out, t[i].out);
	}
}

static void
test_escape_bounds(void **state)
{
	char in[200], out[512], exp[TLSID_LOG_MAX + 4], small[8];

	(void)state;
	memset(in, 'a', sizeof(in));
	tlsid_escape(in, sizeof(in), out, sizeof(out));
	memset(exp, 'a', TLSID_LOG_MAX);
	memcpy(exp + TLSID_LOG_MAX, "...", 4);
	assert_string_equal(out, exp); /* cut at TLSID_LOG_MAX */
	tlsid_escape(in, TLSID_LOG_MAX, out, sizeof(out));
	assert_int_equal(strlen(out), TLSID_LOG_MAX); /* exactly: no "..." */

	/* A small buffer: never overrun, always terminated, never half an
	 * escape. */
	memset(small, 'X', sizeof(small));
	tlsid_escape("\x01\x02\x03", 3, small, sizeof(small));
	assert_string_equal(small, "\\x01..."); /* 4 + 3 + NUL = 8 */
	tlsid_escape("\x01\x02\x03", 3, small, 7);
	assert_string_equal(small, "..."); /* no half escapes */
	tlsid_escape("\x01", 1, small, 5);
	assert_string_equal(small, "\\x01"); /* fits exactly: no cut */
	tlsid_escape("abc", 3, small, 1);
	assert_string_equal(small, "");
	small[0] = 'X';
	tlsid_escape("abc", 3, small, 0); /* nothing written */
	assert_int_equal(small[0], 'X');
	/* every non-printable byte value is escaped */
	for (int c = 0; c < 256; c++) {
		char ch = (char)c;

		tlsid_escape(&ch, 1, out, sizeof(out));
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			assert_int_equal(strlen(out), 4);
		else
			assert_int_equal(strlen(out), 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_table),
		cmocka_unit_test(test_escape_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

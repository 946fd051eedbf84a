/* UUID version 4 key IDs. */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/num.h"
#include "common/uuid.h"

int
uuid_gen(uint8_t out[static 16])
{
	if (RAND_bytes(out, 16) != 1)
		return -1;
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

void
uuid_fmt(const uint8_t id[static 16], char out[static UUID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t		  o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 0x0f];
	}
	out[o] = '\0';
}

int
uuid_parse(const char *s, uint8_t out[static 16])
{
	size_t o = 0;

	if (strlen(s) != UUID_STRLEN)
		return -1;
	for (size_t i = 0; i < UUID_STRLEN;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		if ((hi = num_hexval(s[i])) < 0 ||
		    (lo = num_hexval(s[i + 1])) < 0)
			return -1;
		out[o++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

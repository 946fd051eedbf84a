/* Strict parsing of numbers and host:port strings. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/num.h"

int
num_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
num_unhex(const char *s, uint8_t *out, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		int hi = num_hexval(s[2 * i]), lo = num_hexval(s[2 * i + 1]);

		bad |= hi | lo; /* negative if either is not hex */
		out[i] = (uint8_t)((hi & 0x0f) << 4 | (lo & 0x0f));
	}
	return bad < 0 ? -1 : 0;
}

int
num_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char		  *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1; /* rejects "", "-1", "+1", " 1" */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
num_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;

	if (num_u64(s, min, max, &v) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
num_hostport(const char *s, char *host, size_t hostcap, uint16_t *port,
    bool allow0)
{
	const char    *colon;
	struct in_addr a;
	unsigned       p;
	size_t	       hl;

	if (s == NULL || (colon = strrchr(s, ':')) == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (hl == 0 || hl >= hostcap)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1"); /* hostcap > 9 is checked below */
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	if (num_uint(colon + 1, allow0 ? 0 : 1, 65535, &p) == -1)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

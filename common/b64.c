/* Base64 through OpenSSL's EVP block coder, with strict input checks. */
#include <string.h>

#include <openssl/evp.h>

#include "common/b64.h"

int
b64_encode(const uint8_t *in, size_t n, char *out, size_t outcap)
{
	if (n > 0x3fffffff || outcap < B64_ENCLEN(n) + 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	out[B64_ENCLEN(n)] = '\0';
	return 0;
}

/* Alphabet check without branching on the character's value. */
static int
b64_char_ok(unsigned char c)
{
	int ok = 0;

	ok |= (c >= 'A') & (c <= 'Z');
	ok |= (c >= 'a') & (c <= 'z');
	ok |= (c >= '0') & (c <= '9');
	ok |= (c == '+') | (c == '/');
	return ok;
}

int
b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	size_t pad = 0, need;
	int    bad = 0, r;

	if (n % 4 != 0 || n > 0x3fffffff)
		return -1;
	if (n >= 1 && in[n - 1] == '=')
		pad++;
	if (n >= 2 && in[n - 2] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		bad |= !b64_char_ok((unsigned char)in[i]);
	if (bad)
		return -1;
	need = n / 4 * 3;
	if (need - pad > outcap)
		return -1;
	if (n == 0) {
		*outlen = 0;
		return 0;
	}
	/* EVP_DecodeBlock writes need bytes (padding included): use a bounce
	 * only when the caller's buffer is exactly sized. */
	if (need > outcap) {
		uint8_t tmp[4];

		if ((r = EVP_DecodeBlock(out, (const unsigned char *)in,
			 (int)(n - 4))) < 0)
			return -1;
		if (EVP_DecodeBlock(tmp, (const unsigned char *)in + n - 4, 4) <
		    0)
			return -1;
		memcpy(out + (size_t)r, tmp, 3 - pad);
		memset(tmp, 0, sizeof(tmp));
	} else if (EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) < 0)
		return -1;
	*outlen = need - pad;
	return 0;
}

/* Base64 (RFC 4648, with padding) for key bytes in JSON. */
#ifndef COMMON_B64_H
#define COMMON_B64_H

#include <stddef.h>
#include <stdint.h>

#define B64_ENCLEN(n) ((((n) + 2) / 3) * 4)

/* Writes B64_ENCLEN(n) chars plus NUL; returns -1 if outcap is too small. */
int b64_encode(const uint8_t *in, size_t n, char *out, size_t outcap);
/* Strict decode (padding required, no whitespace); -1 on bad input or outcap. */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen);

#endif

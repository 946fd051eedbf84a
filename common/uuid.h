/* RFC 4122 UUIDs (version 4) as key IDs: 16 bytes on the wire, 36 chars in JSON. */
#ifndef COMMON_UUID_H
#define COMMON_UUID_H

#include <stdint.h>

#define UUID_STRLEN 36

int  uuid_gen(uint8_t out[static 16]); /* 0 or -1 (no entropy) */
void uuid_fmt(const uint8_t id[static 16], char out[static UUID_STRLEN + 1]);
int
uuid_parse(const char *s, uint8_t out[static 16]); /* strict 8-4-4-4-12 hex */

#endif

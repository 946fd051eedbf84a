/* Strict number and address parsing: whole string, no sign, no spaces. */
#ifndef COMMON_NUM_H
#define COMMON_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit (either case), or -1. */
int num_hexval(char c);
/* The 2n hex digits at s (either case) as n bytes into out, looking at
 * every digit whatever it finds (keys: no early exit); 0, or -1 when one
 * is not a hex digit (out is then partly written: wipe it). */
int num_unhex(const char *s, uint8_t *out, size_t n);
int num_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int num_uint(const char *s, unsigned min, unsigned max, unsigned *out);
/* "host:port" (IPv4 literal or localhost); port 0 allowed when allow0. */
int num_hostport(const char *s, char *host, size_t hostcap, uint16_t *port,
    bool allow0);

#endif

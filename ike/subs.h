/*
 * A range of 5G subscribers (ike-ue --load, ike-n3iwf --subscribers):
 * SUPI = supi_first + i (i < n, as many digits as supi_first, the same
 * MCC and MNC), each with its own K and OPc derived from a seed:
 *
 *   K   = first 16 bytes of HMAC-SHA256(seed, "K"   || SUPI digits)
 *   OPc = first 16 bytes of HMAC-SHA256(seed, "OPc" || SUPI digits)
 *
 * and the AMF field, MNC length and start SQN of the configured
 * subscriber (the base). Both ends derive the keys on demand: no table
 * of subscribers. The AMF side keeps the last SQN it used per SUPI it
 * has served, in a hash table (O(1), grows with the SUPIs served), so a
 * second registration of a SUPI gets a fresher SQN than its first.
 *
 * Not thread-safe: one thread per range (the N3IWF's loop; the UE's
 * load mode derives with subs_derive(), which only reads).
 */
#ifndef IKE_SUBS_H
#define IKE_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "ike/amf.h"

struct subs;

/*
 * The range of n subscribers from supi_first ("imsi-" optional; NULL:
 * base's SUPI), keys from seed_hex (32..64 hex digits); base gives the
 * AMF field, MNC length and start SQN. NULL with err naming the bad value
 * (never the seed's).
 */
struct subs *subs_new(const struct amf_sub *base, const char *supi_first,
    uint64_t n, const char *seed_hex, char *err, size_t errlen);
void	     subs_free(struct subs *s); /* wipes; NULL ok */

uint64_t subs_count(const struct subs *s);

/* Subscriber i (< count) with its derived K and OPc in *out (wipe it:
 * amf_sub_wipe); the base's start SQN. 0 or -1. */
int subs_derive(const struct subs *s, uint64_t i, struct amf_sub *out);

/*
 * AMF: the subscriber with this SUPI (digits), keys derived, SQN the last
 * one served to it (else the base's): 0; -1 when the SUPI is not in the
 * range.
 */
int    subs_find(struct subs *s, const char *supi, struct amf_sub *out);
/* AMF: the SQN just used for supi (in the range; else ignored). 0 or -1
 * (no memory, logged). */
int    subs_sqn_set(struct subs *s, const char *supi, uint64_t sqn);
/* SUPIs served (with an SQN stored). */
size_t subs_served(const struct subs *s);

/* The derivation alone (tests): K and OPc of supi from seed. 0 or -1. */
int subs_keys(const uint8_t *seed, size_t seedlen, const char *supi,
    uint8_t k[static 16], uint8_t opc[static 16]);

#endif

/* A subscriber range: keys derived from a seed, the AMF's SQN per SUPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/num.h"
#include "ike/crypto.h"
#include "ike/ikecfg.h"
#include "ike/subs.h"

/* One SUPI served: its offset in the range + 1 (0: empty slot), its SQN. */
struct subs_slot {
	uint64_t key;
	uint64_t sqn;
};

struct subs {
	struct amf_sub	  base; /* keys unused: AMF field, MNC, SQN */
	uint64_t	  first, n;
	unsigned	  digits; /* of every SUPI in the range */
	uint8_t		  seed[IKE_SUB_SEED_MAX];
	size_t		  seedlen;
	struct subs_slot *tab; /* open addressing, a power of 2 */
	size_t		  cap, used;
};

struct subs *
subs_new(const struct amf_sub *base, const char *supi_first, uint64_t n,
    const char *seed_hex, char *err, size_t errlen)
{
	struct subs *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = *base;
	s->n = n;
	OPENSSL_cleanse(s->base.k, sizeof(s->base.k));
	OPENSSL_cleanse(s->base.opc, sizeof(s->base.opc));
	if (ike_supi_range(supi_first != NULL ? supi_first : base->supi,
		base->mnc_len, n, &s->first, &s->digits, err, errlen) == -1 ||
	    ike_sub_seed(seed_hex, s->seed, &s->seedlen, err, errlen) == -1) {
		subs_free(s);
		return NULL;
	}
	return s;
}

void
subs_free(struct subs *s)
{
	if (s == NULL)
		return;
	free(s->tab);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

uint64_t
subs_count(const struct subs *s)
{
	return s->n;
}

size_t
subs_served(const struct subs *s)
{
	return s->used;
}

/* first 16 bytes of HMAC-SHA256(seed, label || supi) */
static int
derive16(const uint8_t *seed, size_t seedlen, const char *label,
    const char *supi, uint8_t out[static 16])
{
	uint8_t in[8 + IKE_SUPI_DIGITS_MAX + 1], mac[IKE_PRF_LEN];
	size_t	ll = strlen(label), sl = strlen(supi);
	int	r;

	if (ll + sl > sizeof(in))
		return -1;
	memcpy(in, label, ll);
	memcpy(in + ll, supi, sl);
	r = ike_prf(seed, seedlen, in, ll + sl, mac);
	if (r == 0)
		memcpy(out, mac, 16);
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

int
subs_keys(const uint8_t *seed, size_t seedlen, const char *supi,
    uint8_t k[static 16], uint8_t opc[static 16])
{
	return derive16(seed, seedlen, "K", supi, k) == 0 &&
		derive16(seed, seedlen, "OPc", supi, opc) == 0 ?
	    0 :
	    -1;
}

int
subs_derive(const struct subs *s, uint64_t i, struct amf_sub *out)
{
	if (i >= s->n)
		return -1;
	*out = s->base;
	snprintf(out->supi, sizeof(out->supi), "%0*llu", (int)s->digits,
	    (unsigned long long)(s->first + i));
	if (subs_keys(s->seed, s->seedlen, out->supi, out->k, out->opc) == -1) {
		amf_sub_wipe(out);
		return -1;
	}
	return 0;
}

/* The SUPI's offset in the range, or -1 when it is not in it. */
static int
offset_of(const struct subs *s, const char *supi, uint64_t *off)
{
	uint64_t v;

	if (strlen(supi) != s->digits ||
	    num_u64(supi, 0, UINT64_MAX, &v) == -1 || v < s->first ||
	    v - s->first >= s->n)
		return -1;
	*off = v - s->first;
	return 0;
}

static size_t
slot_of(const struct subs *s, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */

	h ^= h >> 29;
	for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
		if (s->tab[i].key == key || s->tab[i].key == 0)
			return i;
}

static int
grow(struct subs *s)
{
	struct subs_slot *old = s->tab;
	size_t		  ocap = s->cap;

	s->cap = ocap ? ocap * 2 : 64;
	if ((s->tab = calloc(s->cap, sizeof(*s->tab))) == NULL) {
		s->tab = old;
		s->cap = ocap;
		return -1;
	}
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key != 0)
			s->tab[slot_of(s, old[i].key)] = old[i];
	free(old);
	return 0;
}

int
subs_find(struct subs *s, const char *supi, struct amf_sub *out)
{
	uint64_t off;

	if (offset_of(s, supi, &off) == -1 || subs_derive(s, off, out) == -1)
		return -1;
	if (s->cap > 0) {
		const struct subs_slot *e = &s->tab[slot_of(s, off + 1)];

		if (e->key != 0)
			out->sqn = e->sqn;
	}
	return 0;
}

int
subs_sqn_set(struct subs *s, const char *supi, uint64_t sqn)
{
	struct subs_slot *e;
	uint64_t	  off;

	if (offset_of(s, supi, &off) == -1)
		return 0;
	if ((s->used + 1) * 2 > s->cap && grow(s) == -1) {
		log_err("%s: out of memory for %zu SUPIs", __func__,
		    s->used + 1);
		return -1;
	}
	e = &s->tab[slot_of(s, off + 1)];
	if (e->key == 0) {
		e->key = off + 1;
		s->used++;
	}
	e->sqn = sqn & AMF_SQN_MASK;
	return 0;
}

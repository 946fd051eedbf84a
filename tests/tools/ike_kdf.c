/*
 * Test driver: runs libike's key derivation on inputs given in hex and
 * prints every result in hex, one "name HEX" per line, for
 * tests/tools/ikepeer.py to compare with its own RFC 7296 computation
 * (2.13 prf+, 2.14 SKEYSEED and SK_*, 2.17 Child SA KEYMAT with and
 * without PFS, 2.18 rekeyed SKEYSEED, RFC 8784 PPK mixing).
 *
 *   ike-kdf ENCR BITS INTEG NI NR GIR SPII SPIR PPK GIR2
 *   ike-kdf prfplus-limit      prints "refused N" when prf+ refuses N bytes
 *
 * The inputs are random test values, never real keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/num.h"
#include "ike/crypto.h"

#define KDF_MAX 512

struct hexarg {
	uint8_t p[KDF_MAX];
	size_t	len;
};

static int
unhex(const char *s, struct hexarg *out)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || n / 2 > sizeof(out->p)) {
		fprintf(stderr, "ike-kdf: bad hex argument of %zu digits\n", n);
		return -1;
	}
	if (num_unhex(s, out->p, n / 2) == -1) {
		fprintf(stderr, "ike-kdf: bad hex digit in \"%.16s\"\n", s);
		return -1;
	}
	out->len = n / 2;
	return 0;
}

static void
put(const char *name, const uint8_t *p, size_t len)
{
	printf("%s ", name);
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	printf("\n");
}

static void
put_child(const char *pre, const struct ike_child_keys *c)
{
	char n[32];

	snprintf(n, sizeof(n), "%sei", pre);
	put(n, c->ei.k, c->ei.len);
	snprintf(n, sizeof(n), "%sai", pre);
	put(n, c->ai.k, c->ai.len);
	snprintf(n, sizeof(n), "%ser", pre);
	put(n, c->er.k, c->er.len);
	snprintf(n, sizeof(n), "%sar", pre);
	put(n, c->ar.k, c->ar.len);
}

static int
prfplus_limit(void)
{
	static uint8_t	     out[IKE_PRFPLUS_MAX + 1];
	static const uint8_t key[32], seed[4];

	if (ike_prf_plus(key, sizeof(key), seed, sizeof(seed), out,
		IKE_PRFPLUS_MAX + 1) == -1)
		printf("refused %d\n", IKE_PRFPLUS_MAX + 1);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct hexarg   a[7];
	static uint8_t	       big[IKE_PRFPLUS_MAX];
	uint8_t		       seed[IKE_PRF_LEN], rk[IKE_PRF_LEN];
	struct ike_sa_keys    *k = ike_sa_keys_new(), *m = ike_sa_keys_new();
	struct ike_child_keys *c = ike_child_keys_new(),
			      *cp = ike_child_keys_new();
	uint16_t encr, bits, integ;
	int	 ret = 1;

	if (argc == 2 && strcmp(argv[1], "prfplus-limit") == 0) {
		ret = prfplus_limit();
		goto done;
	}
	if (argc != 11 || k == NULL || m == NULL || c == NULL || cp == NULL) {
		fprintf(stderr,
		    "usage: ike-kdf ENCR BITS INTEG NI NR GIR SPII SPIR "
		    "PPK GIR2 (hex)\n");
		goto done;
	}
	for (int i = 0; i < 7; i++)
		if (unhex(argv[4 + i], &a[i]) == -1)
			goto done;
	if (a[3].len != 8 || a[4].len != 8) {
		fprintf(stderr, "ike-kdf: SPIs must be 8 bytes\n");
		goto done;
	}
	encr = (uint16_t)atoi(argv[1]);
	bits = (uint16_t)atoi(argv[2]);
	integ = (uint16_t)atoi(argv[3]);
	if (ike_skeyseed(a[0].p, a[0].len, a[1].p, a[1].len, a[2].p, a[2].len,
		seed) == -1 ||
	    ike_sa_keys_derive(seed, a[0].p, a[0].len, a[1].p, a[1].len, a[3].p,
		a[4].p, encr, bits, integ, k) == -1 ||
	    ike_child_keys_derive(&k->d, NULL, 0, a[0].p, a[0].len, a[1].p,
		a[1].len, encr, bits, integ, c) == -1 ||
	    ike_child_keys_derive(&k->d, a[6].p, a[6].len, a[0].p, a[0].len,
		a[1].p, a[1].len, encr, bits, integ, cp) == -1 ||
	    ike_ppk_mix(a[5].p, a[5].len, k, m) == -1 ||
	    ike_skeyseed_rekey(&k->d, a[6].p, a[6].len, a[0].p, a[0].len,
		a[1].p, a[1].len, rk) == -1 ||
	    ike_prf_plus(seed, sizeof(seed), a[0].p, a[0].len, big,
		sizeof(big)) == -1)
		goto done;
	put("skeyseed", seed, sizeof(seed));
	put("sk_d", k->d.k, k->d.len);
	put("sk_ai", k->ai.k, k->ai.len);
	put("sk_ar", k->ar.k, k->ar.len);
	put("sk_ei", k->ei.k, k->ei.len);
	put("sk_er", k->er.k, k->er.len);
	put("sk_pi", k->pi.k, k->pi.len);
	put("sk_pr", k->pr.k, k->pr.len);
	put_child("child_", c);
	put_child("childpfs_", cp);
	put("ppk_d", m->d.k, m->d.len);
	put("ppk_pi", m->pi.k, m->pi.len);
	put("ppk_pr", m->pr.k, m->pr.len);
	put("rekey_skeyseed", rk, sizeof(rk));
	put("prfplus_8160", big, sizeof(big));
	ret = 0;
done:
	ike_sa_keys_free(k);
	ike_sa_keys_free(m);
	ike_child_keys_free(c);
	ike_child_keys_free(cp);
	return ret;
}

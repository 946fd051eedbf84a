/*
 * libFuzzer target: kmsclient reading a KME's answers (Status, Key
 * container, Error bodies, HTTP status, transport failures) through every
 * call of its API, with the real kmsclient.c built with -DKMS_FUZZ so that
 * the fake KME in fuzz.c answers in place of curl's transfer.
 *
 * Input: records separated by "\n#". The first holds the calls, two bytes
 * each (call, parameter); the others are the answers, one per call made,
 * in the format of fuzz_answers() (fuzz.h). E.g. "0a\n#0{...status...}".
 */
#include <stdlib.h>
#include <string.h>

#include "common/etsi.h"
#include "fuzz/fuzz.h"
#include "kmsclient/kmsclient.h"

#define CALLS_MAX 8

/* What a successful call promised: checked, then freed. */
static void
keys_check(struct etsi_keys *k, int rc, size_t want, unsigned bits)
{
	if (rc != KMS_OK) {
		if (k->n != 0 || k->v != NULL)
			abort(); /* a failed call hands out nothing */
		return;
	}
	if (k->n == 0 || (want && k->n != want))
		abort();
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].len == 0 || k->v[i].len > ETSI_MAX_KEY_BYTES ||
		    (bits && k->v[i].len * 8 != bits) || k->v[i].id[0] == '\0')
			abort();
	etsi_keys_free(k);
}

static void
call(struct kms_client *c, uint8_t op, uint8_t p)
{
	static const char  *idv[] = { "k0", "k1", "k2", "k3" };
	struct etsi_key_req req;
	struct etsi_key_ids ids;
	struct etsi_status  st;
	struct etsi_keys    k;
	unsigned	    n = 1 + p % 4, bits = (p & 0x10) ? 256 : 0;
	int		    rc;

	switch (op % 5) {
	case 0: (void)kms_status(c, "sae-b", &st); break;
	case 1:
		memset(&req, 0, sizeof(req));
		req.number = n;
		req.size = bits;
		rc = kms_enc_keys(c, "sae-b", &req, &k);
		keys_check(&k, rc, n, bits);
		break;
	case 2:
		rc = kms_enc_keys_get(c, "sae-b", (p & 0x20) ? 0 : n, bits, &k);
		keys_check(&k, rc, (p & 0x20) ? 1 : n, bits);
		break;
	case 3:
		if (etsi_key_ids_alloc(&ids, n) == -1)
			return;
		for (size_t i = 0; i < n; i++)
			strcpy(ids.ids[i], idv[i]);
		rc = kms_dec_keys(c, "sae-a", &ids, &k);
		keys_check(&k, rc, n, 0);
		etsi_key_ids_free(&ids);
		break;
	default:
		rc = kms_dec_keys_get(c, "sae-a", idv[p % 4], &k);
		keys_check(&k, rc, 1, 0);
		break;
	}
	/* What callers print after a failure must be a string. */
	(void)strlen(kms_last_message(c));
	(void)strlen(kms_last_detail(c));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kms_client_cfg cfg = {
		.url = "https://kme.test:8443"
	};
	static struct kms_client *c; /* reused, as callers do */
	const uint8_t		 *ops, *p = data;
	size_t			  nops, n = size;
	char			  err[256];

	fuzz_init();
	if ((ops = fuzz_next(&p, &n, &nops)) == NULL)
		return 0;
	fuzz_answers(p, n);
	if (c == NULL && (c = kms_client_new(&cfg, err, sizeof(err))) == NULL)
		abort();
	for (size_t i = 0; i < nops && i / 2 < CALLS_MAX; i += 2)
		call(c, ops[i], i + 1 < nops ? ops[i + 1] : 0);
	return 0;
}

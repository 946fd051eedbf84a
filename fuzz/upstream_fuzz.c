/*
 * libFuzzer target: kmsd's upstream side (kmsd/upstream.c) reading the
 * site KME's answers: the Status limits it caches and obeys, requests split
 * by max_key_per_request and joined, refusals that name a limit and the
 * retry after them, transport failures. kmsclient.c is built with
 * -DKMS_FUZZ: the fake KME in fuzz.c answers every call.
 *
 * Input: records separated by "\n#". The first holds the requests, three
 * bytes each (what, count, size); the others are the KME's answers in the
 * format of fuzz_answers() (fuzz.h), consumed one per upstream call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "kmsd/upstream.h"

#define REQS_MAX 4

/* 0 and 1025 are out of range, 1024 the most; small counts otherwise. */
static size_t
count_of(uint8_t b)
{
	return b == 0 ? 0 :
	    b == 255  ? ETSI_MAX_KEYS + 1 :
	    b == 254  ? ETSI_MAX_KEYS :
			1 + b % 24;
}

static void
keys_check(struct etsi_keys *k, int rc, size_t want, unsigned bits)
{
	if (rc != 0) {
		if (k->n != 0 || k->v != NULL)
			abort(); /* a failed request hands out nothing */
		return;
	}
	if (k->n != want)
		abort();
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].key == NULL || k->v[i].len == 0 ||
		    (bits && k->v[i].len * 8 != bits))
			abort();
	etsi_keys_free(k);
}

static void
request(struct upstream *u, const uint8_t *r)
{
	struct etsi_key_req req;
	struct etsi_key_ids ids;
	struct etsi_status  st;
	struct etsi_keys    k;
	struct up_err	    e;
	size_t		    n = count_of(r[1]);
	int		    rc;

	switch (r[0] % 3) {
	case 0: (void)upstream_status(u, "sae-a", "sae-b", &st, &e); break;
	case 1:
		memset(&req, 0, sizeof(req));
		req.number = (unsigned)n;
		req.size = (r[2] & 1) ? 8u * (r[2] >> 1) : 0;
		rc = upstream_enc(u, "sae-a", "sae-b", &req, &k, &e);
		keys_check(&k, rc, n ? n : 1, req.size); /* 0: one key */
		break;
	default:
		if (etsi_key_ids_alloc(&ids, n) == -1)
			return;
		for (size_t i = 0; i < n; i++)
			snprintf(ids.ids[i], sizeof(ids.ids[i]), "k%zu", i);
		rc = upstream_dec(u, "sae-a", "sae-b", &ids, &k, &e);
		keys_check(&k, rc, n, 0);
		etsi_key_ids_free(&ids);
		break;
	}
	(void)upstream_reachable(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct upstream_id ids[] = {
		{ "sae-a", "/dev/null", "/dev/null" },
	};
	static const struct upstream_cfg cfg = {
		.url = "https://kme.test:8443",
		.ids = ids,
		.nids = 1,
		.conns_per_id = 1,
	};
	struct upstream *u;
	const uint8_t	*reqs, *p = data;
	size_t		 nreqs, n = size;
	char		 err[256];

	fuzz_init();
	if ((reqs = fuzz_next(&p, &n, &nreqs)) == NULL)
		return 0;
	fuzz_answers(p, n);
	if ((u = upstream_new(&cfg, err, sizeof(err))) == NULL)
		abort();
	for (size_t i = 0; i + 3 <= nreqs && i / 3 < REQS_MAX; i += 3)
		request(u, reqs + i);
	upstream_free(u);
	return 0;
}

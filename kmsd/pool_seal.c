/*
 * kmsd's pool: sealing rows (pool_int.h). One seal per row: the n keys'
 * bytes, concatenated, under AES-256-GCM with the KEK (common/seal.h), with
 * AAD = a version label, the pool ID, master, slave (NUL-terminated: none
 * can contain a NUL), then big-endian, 8 bytes each: the row's sequence
 * number, key bytes, fetched_ms and n; then the ids text as stored. A row
 * edited on disk to move keys to another pair, to make them look younger,
 * to give them another sequence, or to rename or reorder them, no longer
 * opens. The KEK check record (meta kek_check) is 16 zero bytes sealed with
 * its own AAD: a wrong KEK is refused at open, not found row by row.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "kmsd/pool_int.h"

static const char kek_check_aad[] = "kmsd pool kek check";
static const char batch_aad_label[] = "kmsd pool batch v3";

/* The largest AAD: label, pool ID, two IDs, four numbers, a full ids list. */
#define AAD_MAX	(sizeof(batch_aad_label) + HWM_ID_LEN + \
	2 * (ETSI_ID_MAX + 1) + 32 + 2 + POOL_ROW_MAX * POOL_ID_JSON)

int
pool_seal_init(struct pool *p, const uint8_t kek[SEAL_KEK_LEN])
{
	buf_init(&p->aad, AAD_MAX);
	return (p->seal = seal_new(kek)) == NULL ? -1 : 0;
}

void
pool_seal_free(struct pool *p)
{
	seal_free(p->seal);
	p->seal = NULL;
	buf_free(&p->aad);
}

/* The AAD of row r in p->aad; -1 out of memory. */
static int
row_aad(struct pool *p, const struct pool_row *r)
{
	struct buf	*b = &p->aad;
	const char	*m = r->pr->master, *s = r->pr->slave;

	buf_reset(b);
	return buf_add(b, batch_aad_label, sizeof(batch_aad_label)) |
	    buf_add(b, p->hwm.id, HWM_ID_LEN) |
	    buf_add(b, m, strlen(m) + 1) | buf_add(b, s, strlen(s) + 1) |
	    buf_add_u64(b, r->seq) | buf_add_u64(b, p->kb) |
	    buf_add_u64(b, r->fetched_ms) | buf_add_u64(b, r->n) |
	    buf_add(b, r->ids, r->idslen) ? -1 : 0;
}

int
pool_seal_row(struct pool *p, const struct pool_row *r, const uint8_t *pt,
    uint8_t *blob)
{
	if (row_aad(p, r) == -1) {
		log_err("pool: add: out of memory");
		return -1;
	}
	/* seal_seal logs its own failures. */
	return seal_seal(p->seal, p->aad.data, p->aad.len, pt, r->n * p->kb,
	    blob);
}

int
pool_open_row(struct pool *p, const struct pool_row *r, const uint8_t *blob,
    size_t bloblen, uint8_t *pt)
{
	if (bloblen != r->n * p->kb + SEAL_OVERHEAD || row_aad(p, r) == -1)
		return -1;
	return seal_open(p->seal, p->aad.data, p->aad.len, blob, bloblen, pt);
}

int
pool_seal_check_new(struct pool *p, uint8_t chk[POOL_CHECK_LEN])
{
	static const uint8_t zero[POOL_CHECK_LEN - SEAL_OVERHEAD];

	return seal_seal(p->seal, (const uint8_t *)kek_check_aad,
	    sizeof(kek_check_aad), zero, sizeof(zero), chk);
}

bool
pool_seal_check_ok(struct pool *p, const uint8_t chk[POOL_CHECK_LEN])
{
	uint8_t	pt[POOL_CHECK_LEN - SEAL_OVERHEAD];
	bool	ok;

	ok = seal_open(p->seal, (const uint8_t *)kek_check_aad,
	    sizeof(kek_check_aad), chk, POOL_CHECK_LEN, pt) == 0;
	OPENSSL_cleanse(pt, sizeof(pt));
	return ok;
}

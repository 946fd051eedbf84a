/*
 * kmsd's pool: sealing rows (pool_int.h), through common/sealep.h, the
 * sealing epochs the simulator's store uses too. Each opening of the pool
 * starts an epoch: a fresh random salt in table epochs, the record key
 * HKDF(KEK, salt, "kmsd pool batch key"), nonces from a counter held in
 * memory; a row stores its epoch in column ep. A restored or copied
 * database is opened under a new key, so no (key, nonce) pair is ever used
 * twice, however the file is rewound.
 *
 * One seal per row: the n keys' bytes, concatenated, with AAD = a version
 * label, the pool ID, master, slave (length-prefixed), then big-endian, 8
 * bytes each: the row's sequence number, key bytes, fetched_ms and n; then
 * the ids text as stored. A row edited on disk to move keys to another
 * pair, to make them look younger, to give them another sequence (what the
 * high-water mark relies on), or to rename or reorder them, no longer
 * opens. The KEK check (meta db_salt, kek_check) is an HKDF value, nothing
 * sealed: a wrong KEK is refused at open, not found row by row.
 *
 * Several processes may share one pool: each seals in its own epoch, and
 * common/sealep.c keeps that safe (epochs numbered inside the write
 * transaction, an epoch another opener dropped as unused put back before
 * it seals, a row of an epoch this process has not seen loaded from table
 * epochs when it is read).
 *
 * The high-water mark file is sealed directly under the KEK (p->seal,
 * random nonces: it is rewritten whole, a few times per minute at most).
 */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sealep.h"
#include "kmsd/pool_int.h"

static const char	 batch_aad_label[] = "kmsd pool batch v4";
/* Epochs kept at open: those rows use. */
static const char *const ep_users[] = { "batches" };

/* The largest AAD: label, pool ID, two IDs, four numbers, a full ids list. */
#define AAD_MAX                                                                \
	(sizeof(batch_aad_label) + HWM_ID_LEN + 2 * (2 + ETSI_ID_MAX) + 32 +   \
	    2 + POOL_ROW_MAX * POOL_ID_JSON)

static const struct sealep_conf ep_conf = {
	.table = "epochs",
	.info = "kmsd pool batch key",
	.check_info = "kmsd pool kek check",
	.users = ep_users,
	.nusers = sizeof(ep_users) / sizeof(ep_users[0]),
	.aad_max = AAD_MAX,
};

int
pool_seal_init(struct pool *p, const uint8_t kek[SEAL_KEK_LEN], char *err,
    size_t errlen)
{
	char why[256];

	if ((p->seal = seal_new(kek)) == NULL) {
		snprintf(err, errlen, "pool: AES-256-GCM unavailable");
		return -1;
	}
	if ((p->sep = sealep_new(&p->db, &ep_conf, kek, why, sizeof(why))) ==
	    NULL) {
		snprintf(err, errlen, "pool: sealing epochs: %s", why);
		return -1;
	}
	return 0;
}

int
pool_seal_start(struct pool *p, const char *db_path, char *err, size_t errlen)
{
	char why[256];

	if (sealep_start(p->sep, why, sizeof(why)) == -1) {
		snprintf(err, errlen,
		    "pool %s: cannot start a sealing epoch: "
		    "%s",
		    db_path, why);
		return -1;
	}
	return 0;
}

void
pool_seal_free(struct pool *p)
{
	sealep_free(p->sep);
	p->sep = NULL;
	seal_free(p->seal);
	p->seal = NULL;
}

int
pool_seal_room(struct pool *p, size_t nrows)
{
	return sealep_room(p->sep, nrows) ? 0 : sealep_next(p->sep);
}

int
pool_row_aad(const struct pool *p, const struct pool_row *r, struct buf *out)
{
	size_t lm = strlen(r->pr->master), ls = strlen(r->pr->slave);

	buf_init(out, AAD_MAX);
	/* As sealep_aad_str: u16 length, then the bytes. */
	return buf_add(out, batch_aad_label, strlen(batch_aad_label)) == -1 ||
		buf_add(out, p->hwm.id, HWM_ID_LEN) == -1 ||
		buf_add_u16(out, (uint16_t)lm) == -1 ||
		buf_add(out, r->pr->master, lm) == -1 ||
		buf_add_u16(out, (uint16_t)ls) == -1 ||
		buf_add(out, r->pr->slave, ls) == -1 ||
		buf_add_u64(out, r->seq) == -1 ||
		buf_add_u64(out, p->kb) == -1 ||
		buf_add_u64(out, r->fetched_ms) == -1 ||
		buf_add_u64(out, r->n) == -1 ||
		buf_add(out, r->ids, r->idslen) == -1 ?
	    -1 :
	    0;
}

/* The row's AAD into the epoch context; -1 out of memory. */
static int
row_aad(struct pool *p, const struct pool_row *r)
{
	struct buf b;
	int	   rc = pool_row_aad(p, r, &b);

	sealep_aad_begin(p->sep, "");
	sealep_aad_bytes(p->sep, b.data, b.len);
	buf_free(&b);
	return rc;
}

int
pool_seal_row(struct pool *p, struct pool_row *r, const uint8_t *pt,
    uint8_t *blob)
{
	int rc;

	if (row_aad(p, r) == -1) {
		log_err("pool: out of memory");
		return -1;
	}
	rc = sealep_seal(p->sep, pt, r->n * p->kb, blob);
	/* After the seal: its first in a transaction may renumber the epoch. */
	r->ep = sealep_epoch(p->sep);
	return rc;
}

int
pool_open_row(struct pool *p, const struct pool_row *r, const uint8_t *blob,
    size_t bloblen, uint8_t *pt)
{
	if (bloblen != r->n * p->kb + SEAL_OVERHEAD || row_aad(p, r) == -1)
		return -1;
	return sealep_open(p->sep, r->ep, blob, bloblen, pt);
}

int
pool_seal_check_new(struct pool *p)
{
	return sealep_kek_set(p->sep);
}

bool
pool_seal_check_ok(struct pool *p)
{
	return sealep_kek_ok(p->sep);
}

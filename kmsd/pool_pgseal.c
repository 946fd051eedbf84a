/*
 * kmsd's pool in PostgreSQL (pool_pg.h): opening it (the tables, the meta
 * rows and their checks) and sealing its rows exactly as the SQLite pool
 * does (pool_seal.c): the same AAD (pool_row_aad), the record key
 * HKDF(KEK, salt, "kmsd pool batch key") of a sealing epoch, nonces 0^32 ||
 * a 64-bit counter held in memory. Each opening inserts a new epoch (a
 * fresh random salt) into table epochs, committed before it seals: its
 * number comes from a PostgreSQL sequence, so two processes never share
 * one, and a restored database is opened under a salt never used before.
 * Rows of other processes' epochs are opened after loading the epoch's
 * salt, inside the lease transaction (pg_epoch_need). The KEK check is
 * sealep's: meta db_salt and kek_check = HKDF(KEK, db_salt, "kmsd pool kek
 * check"), so a wrong KEK is refused at open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sealep.h"
#include "kmsd/pool_pg.h"

#define PG_SCHEMA 4 /* the row layout of SQLite's schema 4 */
/* Serialises the first opens: CREATE ... IF NOT EXISTS can race. */
#define PG_OPEN_LOCK "7216152710311740001"

static const char ep_info[] = "kmsd pool batch key";
static const char check_info[] = "kmsd pool kek check";

static const char *const pg_schema[] = {
	"SELECT pg_advisory_xact_lock(" PG_OPEN_LOCK ")",
	"CREATE TABLE IF NOT EXISTS meta(k text PRIMARY KEY, v bytea NOT NULL)",
	"CREATE SEQUENCE IF NOT EXISTS batch_seq",
	"CREATE TABLE IF NOT EXISTS batches(id bigint PRIMARY KEY,"
	" master text NOT NULL, slave text NOT NULL,"
	" fetched_ms bigint NOT NULL, n integer NOT NULL, ids text NOT NULL,"
	" ep bigint NOT NULL, blob bytea NOT NULL)",
	"CREATE INDEX IF NOT EXISTS batches_pair ON batches(master, slave, id)",
	"CREATE TABLE IF NOT EXISTS epochs(ep bigserial PRIMARY KEY,"
	" salt bytea NOT NULL)",
	"CREATE TABLE IF NOT EXISTS refill(master text, slave text,"
	" owner text NOT NULL, until_ms bigint NOT NULL,"
	" PRIMARY KEY(master, slave))",
	/* The holder's server process: its lease ends with its session. */
	"ALTER TABLE refill ADD COLUMN IF NOT EXISTS pid integer",
	/* For operators: psql -c 'SELECT key_id FROM keys'. */
	"CREATE OR REPLACE VIEW keys AS SELECT b.id AS batch, b.master,"
	" b.slave, j.value AS key_id, b.fetched_ms FROM batches b,"
	" json_array_elements_text(b.ids::json) j(value)",
};

/* ---------------------------------------------------------------- meta */

/* 1 and the value (exactly len bytes), 0 if absent, -1 on error. */
static int
meta_get(struct pool *p, const char *k, uint8_t *v, size_t len)
{
	struct pgq q = { 0 };
	PGresult  *r;
	int	   rc = 0;

	pgq_text(&q, k);
	if ((r = pg_exec(p, "meta", "SELECT v FROM meta WHERE k = $1", &q,
		 PGRES_TUPLES_OK)) == NULL)
		return -1;
	if (PQntuples(r) == 1 && (size_t)PQgetlength(r, 0, 0) == len) {
		memcpy(v, PQgetvalue(r, 0, 0), len);
		rc = 1;
	} else if (PQntuples(r) == 1)
		rc = -1;
	PQclear(r);
	return rc;
}

static int
meta_set(struct pool *p, const char *k, const void *v, size_t len)
{
	struct pgq q = { 0 };

	pgq_text(&q, k);
	pgq_bin(&q, v, len);
	return pg_cmd(p, "meta", "INSERT INTO meta(k, v) VALUES($1, $2)", &q);
}

static void
be64(uint8_t b[8], uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
}

static int
kek_value(const struct pool *p, const uint8_t *salt, uint8_t v[SEAL_KEK_LEN])
{
	return seal_subkey(p->pg->kek, salt, SEALEP_SALT_LEN, check_info, v);
}

/* A new pool: key size, layout, pool ID, KEK check. */
static int
meta_new(struct pool *p)
{
	uint8_t kb[8], sc[8], salt[SEALEP_SALT_LEN], v[SEAL_KEK_LEN];
	int	rc = -1;

	be64(kb, p->kb);
	be64(sc, PG_SCHEMA);
	if (RAND_bytes(p->hwm.id, HWM_ID_LEN) == 1 &&
	    RAND_bytes(salt, sizeof(salt)) == 1 && kek_value(p, salt, v) == 0 &&
	    meta_set(p, "key_bytes", kb, sizeof(kb)) == 0 &&
	    meta_set(p, "schema", sc, sizeof(sc)) == 0 &&
	    meta_set(p, "pool_id", p->hwm.id, HWM_ID_LEN) == 0 &&
	    meta_set(p, "db_salt", salt, sizeof(salt)) == 0 &&
	    meta_set(p, "kek_check", v, sizeof(v)) == 0)
		rc = 0;
	OPENSSL_cleanse(v, sizeof(v));
	return rc;
}

/* An existing pool: the same key size, layout and KEK; its pool ID. */
static int
meta_check(struct pool *p, const uint8_t kb[8], char *err, size_t errlen)
{
	uint8_t want[8], sc[8], salt[SEALEP_SALT_LEN], v[SEAL_KEK_LEN],
	    got[SEAL_KEK_LEN];
	bool ok;

	be64(want, p->kb);
	if (memcmp(kb, want, sizeof(want)) != 0) {
		snprintf(err, errlen,
		    "pool: PostgreSQL: the pool holds keys of another size than "
		    "key_size (use another database for another key size)");
		return -1;
	}
	be64(want, PG_SCHEMA);
	if (meta_get(p, "schema", sc, sizeof(sc)) != 1 ||
	    memcmp(sc, want, sizeof(sc)) != 0 ||
	    meta_get(p, "pool_id", p->hwm.id, HWM_ID_LEN) != 1) {
		snprintf(err, errlen,
		    "pool: PostgreSQL: the database has another layout than "
		    "this kmsd's (meta schema, pool_id)");
		return -1;
	}
	ok = meta_get(p, "db_salt", salt, sizeof(salt)) == 1 &&
	    meta_get(p, "kek_check", got, sizeof(got)) == 1 &&
	    kek_value(p, salt, v) == 0 && CRYPTO_memcmp(v, got, sizeof(v)) == 0;
	OPENSSL_cleanse(v, sizeof(v));
	if (!ok)
		snprintf(err, errlen,
		    "pool: PostgreSQL: kek_file does not match the pool: its "
		    "keys were sealed under another key-encryption key");
	return ok ? 0 : -1;
}

/* One transaction under the open lock: the tables, then the meta rows. */
int
pg_meta_open(struct pool *p, char *err, size_t errlen)
{
	uint8_t kb[8];
	size_t	i;
	int	has;

	if (pg_cmd(p, "open", "BEGIN", NULL) == -1)
		goto fail;
	for (i = 0; i < sizeof(pg_schema) / sizeof(pg_schema[0]); i++) {
		PGresult *r = pg_exec(p, "schema", pg_schema[i], NULL,
		    i == 0 ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);

		PQclear(r);
		if (r == NULL)
			goto fail;
	}
	if ((has = meta_get(p, "key_bytes", kb, sizeof(kb))) == -1 ||
	    (has == 0 && meta_new(p) == -1))
		goto fail;
	if (has == 1 && meta_check(p, kb, err, errlen) == -1) {
		PQclear(PQexec(p->pg->c, "ROLLBACK"));
		return -1;
	}
	if (pg_cmd(p, "open", "COMMIT", NULL) == 0)
		return 0;
fail:
	snprintf(err, errlen, "pool: PostgreSQL: cannot open the pool: %s",
	    p->pg->why);
	PQclear(PQexec(p->pg->c, "ROLLBACK"));
	return -1;
}

/* -------------------------------------------------------------- epochs */

/* The record key of salt. NULL on failure. */
static struct seal *
ep_seal(const struct pool *p, const uint8_t *salt)
{
	uint8_t	     key[SEAL_KEK_LEN];
	struct seal *sl = NULL;

	if (seal_subkey(p->pg->kek, salt, SEALEP_SALT_LEN, ep_info, key) == 0)
		sl = seal_new(key);
	OPENSSL_cleanse(key, sizeof(key));
	return sl;
}

/* Appends an epoch to the known ones; -1 out of memory. */
static int
ep_keep(struct pool_pg *g, int64_t ep, struct seal *sl)
{
	struct pg_ep *v;

	if ((v = realloc(g->eps, (g->neps + 1) * sizeof(*v))) == NULL)
		return -1;
	g->eps = v;
	v[g->neps].ep = ep;
	v[g->neps++].sl = sl;
	return 0;
}

/* A new epoch, committed (autocommit) before anything is sealed in it. */
static int
ep_new(struct pool *p)
{
	struct pool_pg *g = p->pg;
	uint8_t		salt[SEALEP_SALT_LEN];
	struct pgq	q = { 0 };
	struct seal    *sl;
	PGresult       *r;
	int64_t		ep;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    (sl = ep_seal(p, salt)) == NULL)
		return -1;
	pgq_bin(&q, salt, sizeof(salt));
	r = pg_exec(p, "new sealing epoch",
	    "INSERT INTO epochs(salt) VALUES($1) RETURNING ep::bigint", &q,
	    PGRES_TUPLES_OK);
	ep = r != NULL && PQntuples(r) == 1 ? pg_i64(r, 0, 0) : -1;
	PQclear(r);
	if (ep < 0 ||
	    (g->cur.sl != NULL && ep_keep(g, g->cur.ep, g->cur.sl) == -1)) {
		seal_free(sl);
		return -1;
	}
	g->cur.ep = ep;
	g->cur.sl = sl;
	g->ctr = 0;
	return 0;
}

int
pg_epoch_start(struct pool *p, char *err, size_t errlen)
{
	if (ep_new(p) == 0)
		return 0;
	snprintf(err, errlen,
	    "pool: PostgreSQL: cannot start a sealing epoch: %s", p->pg->why);
	return -1;
}

void
pg_seal_free(struct pool_pg *g)
{
	seal_free(g->cur.sl);
	for (size_t i = 0; i < g->neps; i++)
		seal_free(g->eps[i].sl);
	free(g->eps);
	g->eps = NULL;
	g->neps = 0;
}

int
pg_seal_room(struct pool *p, size_t nrows)
{
	if (p->pg->ctr + nrows <= SEALEP_SEALS_MAX)
		return 0;
	if (ep_new(p) == 0)
		return 0;
	log_err("pool: cannot start a new sealing epoch");
	return -1;
}

int
pg_seal_row(struct pool *p, struct pool_row *r, const uint8_t *pt,
    uint8_t *blob)
{
	struct pool_pg *g = p->pg;
	uint8_t		iv[SEAL_NONCE_LEN] = { 0 };
	struct buf	aad;
	int		rc = -1;

	if (g->ctr >= SEALEP_SEALS_MAX) {
		log_err("pool: sealing epoch %lld is used up",
		    (long long)g->cur.ep);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(g->ctr >> (56 - 8 * i));
	if (pool_row_aad(p, r, &aad) == 0) {
		g->ctr++;
		rc = seal_seal_iv(g->cur.sl, iv, aad.data, aad.len, pt,
		    r->n * p->kb, blob);
	}
	buf_free(&aad);
	if (rc == -1)
		log_err("pool: a row cannot be sealed");
	r->ep = g->cur.ep;
	return rc;
}

static struct seal *
ep_find(const struct pool_pg *g, int64_t ep)
{
	if (g->cur.sl != NULL && g->cur.ep == ep)
		return g->cur.sl;
	for (size_t i = 0; i < g->neps; i++)
		if (g->eps[i].ep == ep)
			return g->eps[i].sl;
	return NULL;
}

int
pg_epoch_need(struct pool *p, int64_t ep)
{
	struct pgq   q = { 0 };
	struct seal *sl;
	PGresult    *r;
	int	     rc = 0;

	if (ep_find(p->pg, ep) != NULL)
		return 0;
	pgq_i64(&q, ep);
	if ((r = pg_exec(p, "sealing epoch",
		 "SELECT salt FROM epochs WHERE ep = $1", &q,
		 PGRES_TUPLES_OK)) == NULL)
		return -1;
	/* Unknown: the row will not open, and is dropped as corrupt. */
	if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == SEALEP_SALT_LEN) {
		sl = ep_seal(p, (const uint8_t *)PQgetvalue(r, 0, 0));
		if (sl == NULL || ep_keep(p->pg, ep, sl) == -1) {
			seal_free(sl);
			log_err("pool: sealing epoch %lld: out of memory",
			    (long long)ep);
			rc = -1;
		}
	}
	PQclear(r);
	return rc;
}

int
pg_open_row(struct pool *p, const struct pool_row *r, const uint8_t *blob,
    size_t bloblen, uint8_t *pt)
{
	struct seal *sl = ep_find(p->pg, r->ep);
	struct buf   aad;
	int	     rc = -1;

	if (sl == NULL || bloblen != r->n * p->kb + SEAL_OVERHEAD)
		return -1;
	if (pool_row_aad(p, r, &aad) == 0)
		rc = seal_open(sl, aad.data, aad.len, blob, bloblen, pt);
	buf_free(&aad);
	return rc;
}

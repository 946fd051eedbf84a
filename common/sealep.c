/* Sealing epochs over an SQLite database (sealep.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sealep.h"

#define SQL_MAX 1024

/* An epoch: its number and the context of its record key. */
struct epoch {
	int64_t	     ep;
	struct seal *sl;
};

struct sealep {
	struct sqldb		 *d;
	const struct sealep_conf *c;
	uint8_t			  kek[SEAL_KEK_LEN];
	struct epoch		 *eps; /* every epoch a record refers to */
	size_t			  neps;
	struct seal		 *cur; /* eps[neps - 1].sl */
	int64_t			  cur_ep;
	uint64_t		  ctr; /* nonces used in this epoch */
	struct buf		  aad;
	bool			  aad_bad; /* a field did not fit */
};

struct sealep *
sealep_new(struct sqldb *d, const struct sealep_conf *c,
    const uint8_t kek[static SEAL_KEK_LEN], char *err, size_t errlen)
{
	struct sealep *e;
	char	       sql[SQL_MAX];

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->d = d;
	e->c = c;
	memcpy(e->kek, kek, SEAL_KEK_LEN);
	buf_init(&e->aad, c->aad_max);
	snprintf(sql, sizeof(sql),
	    "CREATE TABLE IF NOT EXISTS %s(ep INTEGER "
	    "PRIMARY KEY, salt BLOB NOT NULL)",
	    c->table);
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		sealep_free(e);
		return NULL;
	}
	return e;
}

void
sealep_free(struct sealep *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->neps; i++)
		seal_free(e->eps[i].sl);
	free(e->eps);
	buf_free(&e->aad);
	OPENSSL_cleanse(e->kek, sizeof(e->kek));
	free(e);
}

/* ---------------------------------------------------------- KEK check */

static int
kek_value(struct sealep *e, const uint8_t salt[SEALEP_SALT_LEN],
    uint8_t out[SEAL_KEK_LEN])
{
	return seal_subkey(e->kek, salt, SEALEP_SALT_LEN, e->c->check_info,
	    out);
}

int
sealep_kek_set(struct sealep *e)
{
	uint8_t salt[SEALEP_SALT_LEN], v[SEAL_KEK_LEN];
	int	rc = -1;

	if (RAND_bytes(salt, sizeof(salt)) == 1 && kek_value(e, salt, v) == 0 &&
	    sqldb_meta_set_blob(e->d, "db_salt", salt, sizeof(salt)) == 0 &&
	    sqldb_meta_set_blob(e->d, "kek_check", v, sizeof(v)) == 0)
		rc = 0;
	OPENSSL_cleanse(v, sizeof(v));
	return rc;
}

bool
sealep_kek_ok(struct sealep *e)
{
	uint8_t salt[SEALEP_SALT_LEN], want[SEAL_KEK_LEN], got[SEAL_KEK_LEN];
	bool	ok;

	ok = sqldb_meta_blob(e->d, "db_salt", salt, sizeof(salt)) &&
	    sqldb_meta_blob(e->d, "kek_check", got, sizeof(got)) &&
	    kek_value(e, salt, want) == 0 &&
	    CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* ------------------------------------------------------------- epochs */

/* Appends epoch ep with the key of salt; -1 on failure. */
static int
ep_add(struct sealep *e, int64_t ep, const uint8_t *salt, size_t saltlen)
{
	uint8_t	      key[SEAL_KEK_LEN];
	struct epoch *v;
	struct seal  *sl = NULL;

	if (seal_subkey(e->kek, salt, saltlen, e->c->info, key) == 0)
		sl = seal_new(key);
	OPENSSL_cleanse(key, sizeof(key));
	if (sl == NULL)
		return -1;
	if ((v = realloc(e->eps, (e->neps + 1) * sizeof(*v))) == NULL) {
		seal_free(sl);
		return -1;
	}
	e->eps = v;
	v[e->neps].ep = ep;
	v[e->neps].sl = sl;
	e->neps++;
	return 0;
}

/* Drops the epochs no record uses, then loads the others' keys. */
static int
ep_load(struct sealep *e)
{
	sqlite3_stmt *st = NULL;
	char	      sql[SQL_MAX];
	size_t	      i, off;
	int	      rc = -1;

	off = (size_t)snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE 1",
	    e->c->table);
	for (i = 0; i < e->c->nusers && off < sizeof(sql); i++)
		off += (size_t)snprintf(sql + off, sizeof(sql) - off,
		    " AND ep NOT IN (SELECT ep FROM %s)", e->c->users[i]);
	if (off >= sizeof(sql) || sqldb_exec(e->d, sql) == -1)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT ep, salt FROM %s ORDER BY ep",
	    e->c->table);
	if (sqlite3_prepare_v2(e->d->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	while (sqlite3_step(st) == SQLITE_ROW)
		if (ep_add(e, sqlite3_column_int64(st, 0),
			sqlite3_column_blob(st, 1),
			(size_t)sqlite3_column_bytes(st, 1)) == -1)
			goto done;
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

/* Commits (ep, salt) to the epochs table in its own transaction. */
static int
ep_record(struct sealep *e, int64_t ep, const uint8_t *salt)
{
	sqlite3_stmt *st = NULL;
	char	      sql[SQL_MAX];
	int	      rc = -1;

	snprintf(sql, sizeof(sql), "INSERT INTO %s(ep, salt) VALUES(?, ?)",
	    e->c->table);
	if (sqldb_begin(e->d) == -1)
		return -1;
	if (sqlite3_prepare_v2(e->d->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, ep);
		sqlite3_bind_blob(st, 2, salt, SEALEP_SALT_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE && sqldb_commit(e->d) == 0)
			rc = 0;
	}
	if (rc == -1) {
		log_err("%s: cannot record a sealing epoch: %s", e->d->who,
		    sqlite3_errmsg(e->d->db));
		sqldb_rollback(e->d);
	}
	sqlite3_finalize(st);
	return rc;
}

int
sealep_next(struct sealep *e)
{
	uint8_t salt[SEALEP_SALT_LEN];
	int64_t ep = e->neps > 0 ? e->eps[e->neps - 1].ep + 1 : 1;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    ep_add(e, ep, salt, sizeof(salt)) == -1) {
		log_err("%s: cannot start a sealing epoch", e->d->who);
		return -1;
	}
	/* The salt is committed first: then sealing may use it. */
	if (ep_record(e, ep, salt) == -1) {
		seal_free(e->eps[--e->neps].sl);
		return -1;
	}
	e->cur = e->eps[e->neps - 1].sl;
	e->cur_ep = ep;
	e->ctr = 0;
	return 0;
}

int
sealep_start(struct sealep *e, char *err, size_t errlen)
{
	if (ep_load(e) == -1 || sealep_next(e) == -1) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(e->d->db));
		return -1;
	}
	return 0;
}

bool
sealep_room(const struct sealep *e, uint64_t n)
{
	return e->cur != NULL && e->ctr + n <= SEALEP_SEALS_MAX;
}

int64_t
sealep_epoch(const struct sealep *e)
{
	return e->cur_ep;
}

static struct seal *
ep_find(const struct sealep *e, int64_t ep)
{
	size_t i;

	for (i = e->neps; i-- > 0;)
		if (e->eps[i].ep == ep)
			return e->eps[i].sl;
	return NULL;
}

/* ---------------------------------------------------------------- AAD */

void
sealep_aad_begin(struct sealep *e, const char *label)
{
	buf_reset(&e->aad);
	e->aad_bad = buf_add(&e->aad, label, strlen(label)) == -1;
}

void
sealep_aad_u16(struct sealep *e, uint16_t v)
{
	e->aad_bad |= buf_add_u16(&e->aad, v) == -1;
}

void
sealep_aad_u32(struct sealep *e, uint32_t v)
{
	e->aad_bad |= buf_add_u32(&e->aad, v) == -1;
}

void
sealep_aad_u64(struct sealep *e, uint64_t v)
{
	e->aad_bad |= buf_add_u64(&e->aad, v) == -1;
}

void
sealep_aad_bytes(struct sealep *e, const void *p, size_t n)
{
	e->aad_bad |= buf_add(&e->aad, p, n) == -1;
}

void
sealep_aad_str(struct sealep *e, const char *s)
{
	size_t n = strlen(s);

	if (n > UINT16_MAX) {
		e->aad_bad = true;
		return;
	}
	sealep_aad_u16(e, (uint16_t)n);
	sealep_aad_bytes(e, s, n);
}

/* ------------------------------------------------------------ sealing */

int
sealep_seal(struct sealep *e, const uint8_t *pt, size_t n, uint8_t *out)
{
	uint8_t	 iv[SEAL_NONCE_LEN] = { 0 };
	uint64_t c;
	int	 i;

	if (e->aad_bad) {
		log_err("%s: a record is too large to seal", e->d->who);
		return -1;
	}
	if (!sealep_room(e, 1)) {
		log_err("%s: sealing epoch %lld is used up", e->d->who,
		    (long long)e->cur_ep);
		return -1;
	}
	c = e->ctr++;
	for (i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(c >> (56 - 8 * i));
	return seal_seal_iv(e->cur, iv, e->aad.data, e->aad.len, pt, n, out);
}

int
sealep_open(struct sealep *e, int64_t ep, const uint8_t *blob, size_t bloblen,
    uint8_t *pt)
{
	struct seal *sl = ep_find(e, ep);

	if (sl == NULL || e->aad_bad || bloblen < SEAL_OVERHEAD)
		return -1;
	return seal_open(sl, e->aad.data, e->aad.len, blob, bloblen, pt);
}

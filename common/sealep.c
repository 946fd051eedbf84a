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

/* An epoch: its number, its salt and the context of its record key. */
struct epoch {
	int64_t	     ep;
	uint8_t	     salt[SEALEP_SALT_LEN];
	struct seal *sl;
};

struct sealep {
	struct sqldb		 *d;
	const struct sealep_conf *c;
	uint8_t			  kek[SEAL_KEK_LEN];
	struct epoch		 *eps; /* the epochs records were seen in */
	size_t			  neps;
	struct epoch		  cur; /* the one this context seals in */
	uint64_t		  ctr; /* nonces used in this epoch */
	bool	   claimed;	       /* cur is on disk in this transaction */
	struct buf aad;
	bool	   aad_bad; /* a field did not fit */
};

/* Commit and rollback hooks: the next transaction claims cur again. */
static int
on_commit(void *arg)
{
	((struct sealep *)arg)->claimed = false;
	return 0;
}

static void
on_rollback(void *arg)
{
	((struct sealep *)arg)->claimed = false;
}

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
	sqlite3_commit_hook(d->db, on_commit, e);
	sqlite3_rollback_hook(d->db, on_rollback, e);
	return e;
}

void
sealep_free(struct sealep *e)
{
	size_t i;

	if (e == NULL)
		return;
	/* The hooks go if they are ours, not another context's since. */
	if (e->d->db != NULL) {
		void *prev = sqlite3_commit_hook(e->d->db, NULL, NULL);

		if (prev != NULL && prev != (void *)e)
			sqlite3_commit_hook(e->d->db, on_commit, prev);
		prev = sqlite3_rollback_hook(e->d->db, NULL, NULL);
		if (prev != NULL && prev != (void *)e)
			sqlite3_rollback_hook(e->d->db, on_rollback, prev);
	}
	for (i = 0; i < e->neps; i++)
		seal_free(e->eps[i].sl);
	free(e->eps);
	seal_free(e->cur.sl);
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

/* Sets x to epoch ep with the key of salt (x->sl NULL before); -1 on
 * failure. */
static int
ep_make(struct sealep *e, struct epoch *x, int64_t ep, const uint8_t *salt,
    size_t saltlen)
{
	uint8_t key[SEAL_KEK_LEN];

	if (saltlen != SEALEP_SALT_LEN)
		return -1;
	x->ep = ep;
	memcpy(x->salt, salt, SEALEP_SALT_LEN);
	x->sl = NULL;
	if (seal_subkey(e->kek, salt, saltlen, e->c->info, key) == 0)
		x->sl = seal_new(key);
	OPENSSL_cleanse(key, sizeof(key));
	return x->sl == NULL ? -1 : 0;
}

/* Appends epoch ep with the key of salt to the known ones; -1 on failure. */
static int
ep_add(struct sealep *e, int64_t ep, const uint8_t *salt, size_t saltlen)
{
	struct epoch *v, x;

	if (ep_make(e, &x, ep, salt, saltlen) == -1)
		return -1;
	if ((v = realloc(e->eps, (e->neps + 1) * sizeof(*v))) == NULL) {
		seal_free(x.sl);
		return -1;
	}
	e->eps = v;
	v[e->neps++] = x;
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

enum ep_sql { EP_SALT, EP_INSERT, EP_INSERT_NEXT };

/* Prepares one statement on the epochs table. */
static sqlite3_stmt *
ep_stmt(struct sealep *e, enum ep_sql which)
{
	sqlite3_stmt *st = NULL;
	char	      sql[SQL_MAX];
	const char   *t = e->c->table;

	switch (which) {
	case EP_SALT:
		snprintf(sql, sizeof(sql), "SELECT salt FROM %s WHERE ep = ?",
		    t);
		break;
	case EP_INSERT:
		snprintf(sql, sizeof(sql),
		    "INSERT INTO %s(ep, salt) VALUES(?2, ?1)", t);
		break;
	case EP_INSERT_NEXT:
		snprintf(sql, sizeof(sql),
		    "INSERT INTO %s(ep, salt) SELECT coalesce(max(ep), 0) + 1, "
		    "?1 FROM %s RETURNING ep",
		    t, t);
		break;
	}
	if (sqlite3_prepare_v2(e->d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

/* The salt of epoch ep on disk (*found), or -1 on an error. */
static int
ep_salt(struct sealep *e, int64_t ep, uint8_t salt[SEALEP_SALT_LEN],
    bool *found)
{
	sqlite3_stmt *st = ep_stmt(e, EP_SALT);
	int	      r;

	*found = false;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, ep);
	if ((r = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == SEALEP_SALT_LEN) {
		memcpy(salt, sqlite3_column_blob(st, 0), SEALEP_SALT_LEN);
		*found = true;
	}
	sqlite3_finalize(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : -1;
}

/*
 * In the caller's write transaction: cur's salt goes on disk under a number
 * no other epoch has. With renumber, cur takes the next free number (the
 * number is chosen inside the transaction, so two openers never collide);
 * otherwise it keeps its number (re-inserted if another opener dropped it
 * as unused).
 */
static int
ep_insert(struct sealep *e, bool renumber)
{
	sqlite3_stmt *st;
	int	      r;

	st = ep_stmt(e, renumber ? EP_INSERT_NEXT : EP_INSERT);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, e->cur.salt, SEALEP_SALT_LEN, SQLITE_STATIC);
	if (!renumber)
		sqlite3_bind_int64(st, 2, e->cur.ep);
	r = sqlite3_step(st);
	if (renumber && r == SQLITE_ROW) {
		e->cur.ep = sqlite3_column_int64(st, 0);
		r = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : -1;
}

/*
 * In the caller's write transaction (ours with own): cur becomes a fresh
 * epoch (new salt, counter 0) under the next free number. The old one is
 * kept for opening its records if keep, else dropped; on failure cur is
 * as it was. -1 not logged.
 */
static int
ep_switch(struct sealep *e, bool keep, bool own)
{
	uint8_t	     salt[SEALEP_SALT_LEN];
	struct epoch old = e->cur;
	uint64_t     octr = e->ctr;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    ep_make(e, &e->cur, 0, salt, sizeof(salt)) == -1) {
		e->cur = old;
		return -1;
	}
	e->ctr = 0;
	if ((own && sqldb_begin(e->d) == -1) || ep_insert(e, true) == -1 ||
	    (own && sqldb_commit(e->d) == -1)) {
		if (own)
			sqldb_rollback(e->d);
		seal_free(e->cur.sl);
		e->cur = old;
		e->ctr = octr;
		return -1;
	}
	if (old.sl != NULL) {
		/* If that fails, its records reload it (ep_reload). */
		if (keep)
			(void)ep_add(e, old.ep, old.salt, sizeof(old.salt));
		seal_free(old.sl);
	}
	return 0;
}

/*
 * Before the first seal of a transaction: cur is on disk with our salt.
 * Another opener may have dropped it (no record used it yet): it goes back
 * under its number, or, if that number is another epoch's now, cur becomes
 * a fresh epoch under a new number. In the caller's transaction.
 */
static int
ep_claim(struct sealep *e)
{
	uint8_t salt[SEALEP_SALT_LEN];
	bool	found;

	if (ep_salt(e, e->cur.ep, salt, &found) == -1)
		return -1;
	if (found && memcmp(salt, e->cur.salt, sizeof(salt)) == 0)
		return 0;
	if (!found)
		return ep_insert(e, false);
	return ep_switch(e, false, false);
}

int
sealep_next(struct sealep *e)
{
	/* The salt is committed first: then sealing may use it. */
	if (ep_switch(e, true, true) == -1) {
		log_err("%s: cannot start a sealing epoch: %s", e->d->who,
		    sqlite3_errmsg(e->d->db));
		return -1;
	}
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
	return e->cur.sl != NULL && e->ctr + n <= SEALEP_SEALS_MAX;
}

int64_t
sealep_epoch(const struct sealep *e)
{
	return e->cur.ep;
}

static struct epoch *
ep_find(const struct sealep *e, int64_t ep)
{
	size_t i;

	for (i = e->neps; i-- > 0;)
		if (e->eps[i].ep == ep)
			return &e->eps[i];
	return NULL;
}

/*
 * Epoch ep as the epochs table has it now, for a record that did not open
 * under what this context knew (x: its entry, or NULL if unknown): another
 * opener's epoch, or a number reused after this context saw it. Only under
 * a KEK the database's check value names. NULL: nothing new.
 */
static struct epoch *
ep_reload(struct sealep *e, int64_t ep, struct epoch *x)
{
	uint8_t salt[SEALEP_SALT_LEN];
	bool	found;

	if (ep_salt(e, ep, salt, &found) == -1 || !found ||
	    (x != NULL && memcmp(salt, x->salt, sizeof(salt)) == 0) ||
	    !sealep_kek_ok(e))
		return NULL;
	if (x == NULL) {
		if (ep_add(e, ep, salt, sizeof(salt)) == -1)
			return NULL;
		return &e->eps[e->neps - 1];
	}
	seal_free(x->sl);
	if (ep_make(e, x, ep, salt, sizeof(salt)) == -1) {
		x->sl = NULL;
		return NULL;
	}
	return x;
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
	if (!e->claimed && e->cur.sl != NULL) {
		if (ep_claim(e) == -1) {
			log_err("%s: cannot claim sealing epoch %lld: %s",
			    e->d->who, (long long)e->cur.ep,
			    sqlite3_errmsg(e->d->db));
			return -1;
		}
		/* In autocommit mode each statement committed: claim again. */
		e->claimed = !sqlite3_get_autocommit(e->d->db);
	}
	if (!sealep_room(e, 1)) {
		log_err("%s: sealing epoch %lld is used up", e->d->who,
		    (long long)e->cur.ep);
		return -1;
	}
	c = e->ctr++;
	for (i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(c >> (56 - 8 * i));
	return seal_seal_iv(e->cur.sl, iv, e->aad.data, e->aad.len, pt, n, out);
}

int
sealep_open(struct sealep *e, int64_t ep, const uint8_t *blob, size_t bloblen,
    uint8_t *pt)
{
	struct epoch *x = ep_find(e, ep);

	if (e->aad_bad || bloblen < SEAL_OVERHEAD)
		return -1;
	if (e->cur.sl != NULL && ep == e->cur.ep &&
	    seal_open(e->cur.sl, e->aad.data, e->aad.len, blob, bloblen, pt) ==
		0)
		return 0;
	if (x != NULL && x->sl != NULL &&
	    seal_open(x->sl, e->aad.data, e->aad.len, blob, bloblen, pt) == 0)
		return 0;
	/* Another opener's epoch, or a number reused since: read it again. */
	if ((x = ep_reload(e, ep, x)) == NULL)
		return -1;
	return seal_open(x->sl, e->aad.data, e->aad.len, blob, bloblen, pt);
}

/* SQLite plumbing shared by kmsd's pool and the simulator's store (sqldb.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sqldb.h"

enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK };
enum { META_GET, META_SET };

static const char *const tx_sql[] = {
	[TX_BEGIN] = "BEGIN IMMEDIATE",
	[TX_COMMIT] = "COMMIT",
	[TX_ROLLBACK] = "ROLLBACK",
};

static const char *const meta_sql[] = {
	[META_GET] = "SELECT v FROM meta WHERE k = ?",
	[META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)",
};

static int
prepare(struct sqldb *d, const char *const *sql, size_t n, sqlite3_stmt **st,
    char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sqlite3_prepare_v3(d->db, sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
			return -1;
		}
	return 0;
}

int
sqldb_open(struct sqldb *d, const char *path, const char *who, char *err,
    size_t errlen)
{
	int fd;

	memset(d, 0, sizeof(*d));
	d->who = who;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	close(fd);
	if (sqlite3_open_v2(path, &d->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s",
		    d->db ? sqlite3_errmsg(d->db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(d->db, SQLDB_BUSY_MS);
	return prepare(d, tx_sql, 3, d->tx, err, errlen);
}

void
sqldb_close(struct sqldb *d)
{
	size_t i;

	for (i = 0; d->st != NULL && i < d->nst; i++)
		sqlite3_finalize(d->st[i]);
	free(d->st);
	for (i = 0; i < 3; i++)
		sqlite3_finalize(d->tx[i]);
	for (i = 0; i < 2; i++)
		sqlite3_finalize(d->meta[i]);
	sqlite3_close(d->db);
	memset(d, 0, sizeof(*d));
}

int
sqldb_wal(struct sqldb *d, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	bool	      wal = false;

	if (sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &st,
		NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") ==
		    0;
	sqlite3_finalize(st);
	if (!wal) {
		snprintf(err, errlen, "cannot use WAL mode: %s",
		    sqlite3_errmsg(d->db));
		return -1;
	}
	return 0;
}

int
sqldb_prepare(struct sqldb *d, const char *const *sql, size_t n, char *err,
    size_t errlen)
{
	if ((d->st = calloc(n, sizeof(*d->st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->nst = n;
	return prepare(d, sql, n, d->st, err, errlen);
}

int
sqldb_meta_init(struct sqldb *d, char *err, size_t errlen)
{
	return prepare(d, meta_sql, 2, d->meta, err, errlen);
}

int
sqldb_exec(struct sqldb *d, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("%s: %s: %s", d->who, sql,
		    msg ? msg : sqlite3_errmsg(d->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
st_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

sqlite3_stmt *
sqldb_st(struct sqldb *d, size_t i)
{
	return st_reset(d->st[i]);
}

int
sqldb_done(struct sqldb *d, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_err("%s: %s: %s", d->who, what, sqlite3_errmsg(d->db));
		return -1;
	}
	return 0;
}

int
sqldb_u64(struct sqldb *d, const char *sql, uint64_t *v)
{
	sqlite3_stmt *st;
	int	      rc = -1;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		log_err("%s: %s: %s", d->who, sql, sqlite3_errmsg(d->db));
	sqlite3_finalize(st);
	return rc;
}

int
sqldb_begin(struct sqldb *d)
{
	return sqldb_done(d, st_reset(d->tx[TX_BEGIN]), "BEGIN");
}

void
sqldb_rollback(struct sqldb *d)
{
	/* After a failed COMMIT SQLite may already have rolled back. */
	if (!sqlite3_get_autocommit(d->db))
		(void)sqldb_done(d, st_reset(d->tx[TX_ROLLBACK]), "ROLLBACK");
}

int
sqldb_commit(struct sqldb *d)
{
	if (sqldb_done(d, st_reset(d->tx[TX_COMMIT]), "COMMIT") == -1) {
		sqldb_rollback(d);
		return -1;
	}
	return 0;
}

/* The meta row k, stepped: the caller reads column 0, then resets. */
static sqlite3_stmt *
meta_row(struct sqldb *d, const char *k)
{
	sqlite3_stmt *st = st_reset(d->meta[META_GET]);

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return NULL;
	}
	return st;
}

bool
sqldb_meta_blob(struct sqldb *d, const char *k, void *out, size_t n)
{
	sqlite3_stmt *st;
	bool	      found = false;

	if ((st = meta_row(d, k)) == NULL)
		return false;
	if ((size_t)sqlite3_column_bytes(st, 0) == n) {
		memcpy(out, sqlite3_column_blob(st, 0), n);
		found = true;
	}
	sqlite3_reset(st);
	return found;
}

bool
sqldb_meta_u64(struct sqldb *d, const char *k, uint64_t *out)
{
	sqlite3_stmt *st;

	if ((st = meta_row(d, k)) == NULL)
		return false;
	*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return true;
}

int
sqldb_meta_set_blob(struct sqldb *d, const char *k, const void *v, size_t n)
{
	sqlite3_stmt *st = st_reset(d->meta[META_SET]);

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_STATIC);
	return sqldb_done(d, st, "meta set");
}

int
sqldb_meta_set_u64(struct sqldb *d, const char *k, uint64_t v)
{
	sqlite3_stmt *st = st_reset(d->meta[META_SET]);

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
	return sqldb_done(d, st, "meta set");
}

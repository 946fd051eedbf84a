/*
 * SQLite plumbing shared by kmsd's pool and the simulator's store: open a
 * database file created 0600, WAL, a table of prepared statements, steps that
 * log once where they fail, IMMEDIATE transactions, and the meta(k, v) table
 * both keep their layout, key size and check records in.
 *
 * Errors follow CONTRIBUTING.md: sqldb_open and sqldb_prepare (setup) write
 * the reason into err and do not log; the run-time calls log once, prefixed
 * with the owner's name ("pool", "store"), and return -1.
 */
#ifndef COMMON_SQLDB_H
#define COMMON_SQLDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define SQLDB_BUSY_MS 5000

/* meta(k, v): created by sqldb_meta_init, after the owner's schema or not. */
#define SQLDB_META_SCHEMA                                                      \
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB);"

struct sqldb {
	sqlite3	      *db;
	const char    *who; /* log prefix, a string literal */
	sqlite3_stmt **st;  /* the owner's statements, by index */
	size_t	       nst;
	sqlite3_stmt  *tx[3];	/* BEGIN IMMEDIATE, COMMIT, ROLLBACK */
	sqlite3_stmt  *meta[2]; /* get, set */
};

/*
 * Creates path 0600 if absent (SQLite gives -wal and -shm the same mode) and
 * opens it read-write, single-threaded (the owner serialises), with a busy
 * timeout. -1 with the reason alone in err (the caller names the file).
 */
int  sqldb_open(struct sqldb *d, const char *path, const char *who, char *err,
     size_t errlen);
/* Closes, finalising every statement; a zeroed or failed sqldb is fine. */
void sqldb_close(struct sqldb *d);

/* journal_mode=WAL, refused if SQLite answers otherwise. -1, reason in err. */
int sqldb_wal(struct sqldb *d, char *err, size_t errlen);
/* Prepares the owner's statements (persistent); -1, reason in err. */
int sqldb_prepare(struct sqldb *d, const char *const *sql, size_t n, char *err,
    size_t errlen);
/* Prepares the meta statements (the table must exist); -1, reason in err. */
int sqldb_meta_init(struct sqldb *d, char *err, size_t errlen);

/* Runs SQL text (pragmas, schema); -1 logged. */
int	      sqldb_exec(struct sqldb *d, const char *sql);
/* Statement i, reset and unbound. */
sqlite3_stmt *sqldb_st(struct sqldb *d, size_t i);
/* Steps a statement that returns no row, then resets it; -1 logged (what). */
int	      sqldb_done(struct sqldb *d, sqlite3_stmt *st, const char *what);
/* One integer from a query (NULL reads as 0); -1 logged. */
int	      sqldb_u64(struct sqldb *d, const char *sql, uint64_t *v);

int  sqldb_begin(struct sqldb *d); /* BEGIN IMMEDIATE */
/* COMMIT; on failure rolls back (if SQLite has not already) and -1. */
int  sqldb_commit(struct sqldb *d);
void sqldb_rollback(struct sqldb *d); /* if in a transaction */

/* meta: true if k is there (with exactly n bytes for a blob). */
bool sqldb_meta_blob(struct sqldb *d, const char *k, void *out, size_t n);
bool sqldb_meta_u64(struct sqldb *d, const char *k, uint64_t *out);
int
sqldb_meta_set_blob(struct sqldb *d, const char *k, const void *v, size_t n);
int sqldb_meta_set_u64(struct sqldb *d, const char *k, uint64_t v);

#endif

/*
 * kmsd's pool in PostgreSQL: what pool_pg.c (the connection, the function
 * table, rows) and pool_pgseal.c (open: schema, meta and KEK check; the
 * sealing epochs) share. Other files use pool_int.h's pool_pg_open only.
 *
 * Tables (created at the first open, under an advisory lock): meta(k, v
 * bytea) with key_bytes, schema, pool_id, db_salt, kek_check; batches(id,
 * master, slave, fetched_ms, n, ids, ep, blob) as SQLite's, id from the
 * sequence batch_seq (never reused, also across processes); epochs(ep
 * bigserial, salt); refill(master, slave, owner, until_ms), the refill
 * lease of each pair.
 */
#ifndef KMSD_POOL_PG_H
#define KMSD_POOL_PG_H

#include <libpq-fe.h>

#include "kmsd/pool_int.h"

#define PG_PARAMS_MAX 8

/* An epoch this process seals in or has opened rows of. */
struct pg_ep {
	int64_t	     ep;
	struct seal *sl;
};

struct pool_pg {
	PGconn	     *c;
	char	     *conninfo;
	uint64_t      retry_ms;	  /* no reconnect attempt before (monotonic) */
	char	      owner[192]; /* refill lease owner: instance, random */
	char	      why[256];	  /* the last error while opening */
	uint8_t	      kek[SEAL_KEK_LEN];
	struct pg_ep  cur; /* the epoch this process seals in */
	uint64_t      ctr; /* nonces used in cur */
	struct pg_ep *eps; /* others' epochs, as rows needed them */
	size_t	      neps;
};

/* Statement parameters: text, or binary (blobs). */
struct pgq {
	int	    n;
	const char *v[PG_PARAMS_MAX];
	int	    len[PG_PARAMS_MAX];
	int	    fmt[PG_PARAMS_MAX];
	char	    num[PG_PARAMS_MAX][24];
};

/* pool_pg.c */
void	  pgq_text(struct pgq *q, const char *s);
void	  pgq_u64(struct pgq *q, uint64_t v);
void	  pgq_i64(struct pgq *q, int64_t v);
void	  pgq_bin(struct pgq *q, const void *b, size_t n);
/*
 * Runs sql (binary results) on a live connection, reconnecting first if it
 * was lost (at most once a second); the result if its status is want, else
 * NULL, logged as "pool: what: ..." unless the database is unreachable
 * (that is logged once, when it goes); while the pool is being opened, not
 * logged but kept in p->pg->why.
 */
PGresult *pg_exec(struct pool *p, const char *what, const char *sql,
    const struct pgq *q, ExecStatusType want);
int	  pg_cmd(struct pool *p, const char *what, const char *sql,
	  const struct pgq *q);			       /* a command: 0 or -1 */
int64_t	  pg_i64(const PGresult *r, int row, int col); /* a bigint column */

/* pool_pgseal.c: open (setup: err, no log) */
int  pg_meta_open(struct pool *p, char *err, size_t errlen);
int  pg_epoch_start(struct pool *p, char *err, size_t errlen);
void pg_seal_free(struct pool_pg *g);
/* run time (-1 logged) */
int  pg_seal_room(struct pool *p, size_t nrows);
int  pg_seal_row(struct pool *p, struct pool_row *r, const uint8_t *pt,
     uint8_t *blob);
/* Inside the lease transaction: loads epoch ep if this process does not
 * know it, so that opening the leased rows needs no database. */
int  pg_epoch_need(struct pool *p, int64_t ep);
int  pg_open_row(struct pool *p, const struct pool_row *r, const uint8_t *blob,
     size_t bloblen, uint8_t *pt);

#endif

/*
 * kmsd's pool in PostgreSQL (pool_pg.h): the connection, the function table
 * (pool_int.h) and the rows. Several kmsd processes share one pool:
 *
 * - A lease selects the pair's oldest rows FOR UPDATE SKIP LOCKED and
 *   deletes them in the same transaction, committed (synchronous_commit as
 *   the server has it: keep it on) before any row is unsealed: two
 *   processes never lease one row, and a process killed before its COMMIT
 *   leaves its rows in the pool. Expiry skips locked rows too, so no
 *   statement here ever waits on another process's lease.
 * - Sequence numbers come from the sequence batch_seq: unique across
 *   processes, never reused.
 * - Refill: one process per pair at a time holds the pair's refill lease
 *   (table refill, 10 s, renewed at each batch, taken over at once when its
 *   holder's session ends), and counts the whole shared pool against the
 *   watermarks (pool_refill_claim).
 * - The connection: a statement that finds it broken marks the pool
 *   unavailable (pool_take answers -1, the API 503) and logs it once; the
 *   next storage call (the refill thread makes one every tick) reconnects,
 *   at most once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "kmsd/pool_pg.h"

#define PG_RETRY_MS	   1000
#define PG_REFILL_LEASE_MS 10000
#define PG_LEASE_ROWS	   8 /* rows locked per select of a lease */

/* ------------------------------------------------------------ queries */

void
pgq_text(struct pgq *q, const char *s)
{
	q->v[q->n] = s;
	q->len[q->n] = 0;
	q->fmt[q->n++] = 0;
}

void
pgq_u64(struct pgq *q, uint64_t v)
{
	snprintf(q->num[q->n], sizeof(q->num[0]), "%llu",
	    (unsigned long long)v);
	pgq_text(q, q->num[q->n]);
}

void
pgq_i64(struct pgq *q, int64_t v)
{
	snprintf(q->num[q->n], sizeof(q->num[0]), "%lld", (long long)v);
	pgq_text(q, q->num[q->n]);
}

void
pgq_bin(struct pgq *q, const void *b, size_t n)
{
	q->v[q->n] = b;
	q->len[q->n] = (int)n;
	q->fmt[q->n++] = 1;
}

int64_t
pg_i64(const PGresult *r, int row, int col)
{
	const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
	uint64_t       v = 0;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return -1;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* The connection is gone: the pool is unavailable until it is back. */
static void
pg_lost(struct pool *p, const char *what)
{
	if (!atomic_exchange(&p->down, true))
		log_err("pool: PostgreSQL unreachable (%s: %s): pooled "
			"requests get 503 until it is back",
		    what, PQerrorMessage(p->pg->c));
}

/* A live connection, or -1 (not logged: pg_lost said it). */
static int
pg_live(struct pool *p)
{
	struct pool_pg *g = p->pg;
	uint64_t	now = time_mono_ns() / 1000000u;

	if (PQstatus(g->c) == CONNECTION_OK && !atomic_load(&p->down))
		return 0;
	if (now < g->retry_ms)
		return -1;
	g->retry_ms = now + PG_RETRY_MS;
	PQreset(g->c);
	if (PQstatus(g->c) != CONNECTION_OK) {
		pg_lost(p, "reconnect");
		return -1;
	}
	if (atomic_exchange(&p->down, false))
		log_info("pool: PostgreSQL reachable again");
	return 0;
}

PGresult *
pg_exec(struct pool *p, const char *what, const char *sql, const struct pgq *q,
    ExecStatusType want)
{
	PGresult *r;

	if (pg_live(p) == -1)
		return NULL;
	r = PQexecParams(p->pg->c, sql, q ? q->n : 0, NULL, q ? q->v : NULL,
	    q ? q->len : NULL, q ? q->fmt : NULL, 1);
	if (r != NULL && PQresultStatus(r) == want)
		return r;
	if (!p->db_ready)
		snprintf(p->pg->why, sizeof(p->pg->why), "%s: %s", what,
		    r ? PQresultErrorMessage(r) : PQerrorMessage(p->pg->c));
	else if (PQstatus(p->pg->c) != CONNECTION_OK)
		pg_lost(p, what);
	else
		log_err("pool: %s: %s", what,
		    r ? PQresultErrorMessage(r) : PQerrorMessage(p->pg->c));
	PQclear(r);
	return NULL;
}

int
pg_cmd(struct pool *p, const char *what, const char *sql, const struct pgq *q)
{
	PGresult *r = pg_exec(p, what, sql, q, PGRES_COMMAND_OK);

	PQclear(r);
	return r != NULL ? 0 : -1;
}

/* -------------------------------------------------------- transactions */

static int
pg_begin(struct pool *p)
{
	return pg_cmd(p, "begin", "BEGIN", NULL);
}

/* A COMMIT of a failed transaction "succeeds" as ROLLBACK: not ours. */
static int
pg_commit(struct pool *p)
{
	PGresult *r = pg_exec(p, "commit", "COMMIT", NULL, PGRES_COMMAND_OK);
	int rc = r != NULL && strcmp(PQcmdStatus(r), "COMMIT") == 0 ? 0 : -1;

	if (r != NULL && rc == -1)
		log_err("pool: commit: the transaction was rolled back");
	PQclear(r);
	return rc;
}

static void
pg_rollback(struct pool *p)
{
	if (PQstatus(p->pg->c) == CONNECTION_OK &&
	    PQtransactionStatus(p->pg->c) != PQTRANS_IDLE)
		PQclear(PQexec(p->pg->c, "ROLLBACK"));
}

/* ---------------------------------------------------------------- rows */

static int
row_insert(struct pool *p, const struct pool_row *r, const uint8_t *blob)
{
	struct pgq q = { 0 };

	pgq_u64(&q, r->seq);
	pgq_text(&q, r->pr->master);
	pgq_text(&q, r->pr->slave);
	pgq_u64(&q, r->fetched_ms);
	pgq_u64(&q, r->n);
	pgq_bin(&q, r->ids, r->idslen); /* bytes: not NUL-terminated */
	pgq_i64(&q, r->ep);
	pgq_bin(&q, blob, r->n * p->kb + SEAL_OVERHEAD);
	return pg_cmd(p, "add",
	    "INSERT INTO batches(id, master, slave, fetched_ms, n, ids, ep, "
	    "blob) VALUES($1, $2, $3, $4, $5, convert_from($6, 'UTF8'), $7, $8)",
	    &q);
}

/* In a transaction: the next sequence number, or 0 (logged). */
static uint64_t
next_seq(struct pool *p)
{
	PGresult *r = pg_exec(p, "sequence",
	    "SELECT nextval('batch_seq')::bigint", NULL, PGRES_TUPLES_OK);
	int64_t	  v = r != NULL && PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;

	PQclear(r);
	return v > 0 ? (uint64_t)v : 0;
}

/* In a transaction: keys[first .. first + n) as rows of at most
 * POOL_ROW_MAX keys, with the next sequence numbers. */
static int
pg_add(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    size_t first, size_t n, uint64_t fetched_ms, struct row_buf *rb)
{
	struct pool_row r = { 0, 0, pr, fetched_ms, 0, rb->ids, 0 };
	size_t		i, j, m;
	int		rc;

	for (i = first; i < first + n; i += m) {
		m = first + n - i < POOL_ROW_MAX ? first + n - i : POOL_ROW_MAX;
		r.n = m;
		if ((r.seq = next_seq(p)) == 0 ||
		    (r.idslen = pool_ids_encode(keys, i, m, rb->ids,
			 2 + rb->max * POOL_ID_JSON)) == 0)
			return -1;
		for (j = 0; j < m; j++)
			memcpy(rb->pt + j * p->kb, keys->v[i + j].key, p->kb);
		rc = pg_seal_row(p, &r, rb->pt, rb->blob);
		OPENSSL_cleanse(rb->pt, m * p->kb);
		if (rc == -1 || row_insert(p, &r, rb->blob) == -1)
			return -1;
	}
	return 0;
}

/* A column's bytes into a growable buffer; -1 out of memory. */
static int
col_copy(const PGresult *res, int row, int col, struct gbuf *g)
{
	return pool_gbuf_set(g, PQgetvalue(res, row, col),
	    (size_t)PQgetlength(res, row, col));
}

/* Result row i into p->rows[at], its epoch known; -1 logged. */
static int
row_read(struct pool *p, const PGresult *res, int i, size_t at)
{
	struct lrow *r;
	int64_t	     n;

	if (pool_rows_grow(p, at + 1) == -1)
		goto oom;
	r = &p->rows[at];
	r->seq = pg_i64(res, i, 0);
	r->fetched_ms = (uint64_t)pg_i64(res, i, 1);
	n = pg_i64(res, i, 2);
	r->n = n > 0 && n <= POOL_ROW_MAX ? (size_t)n : 0;
	r->ep = pg_i64(res, i, 4);
	if (col_copy(res, i, 3, &r->ids) == -1 ||
	    col_copy(res, i, 5, &r->blob) == -1)
		goto oom;
	return pg_epoch_need(p, r->ep);
oom:
	log_err("pool: lease: out of memory");
	return -1;
}

/*
 * In the lease transaction: the pair's oldest unexpired rows that no other
 * process holds, locked, until they hold at least want keys (whole rows),
 * PG_LEASE_ROWS at a time; rows locked and not needed are only skipped by
 * others until COMMIT.
 */
static int
pg_lease_select(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want,
    size_t *nrows, size_t *nkeys)
{
	PGresult *res;
	int64_t	  after = 0;
	int	  i, got;

	*nrows = *nkeys = 0;
	do {
		struct pgq q = { 0 };

		pgq_text(&q, pr->master);
		pgq_text(&q, pr->slave);
		pgq_u64(&q, cutoff);
		pgq_i64(&q, after);
		pgq_u64(&q, PG_LEASE_ROWS);
		if ((res = pg_exec(p, "lease select",
			 "SELECT id, fetched_ms, n::bigint, ids, ep, blob "
			 "FROM batches WHERE master = $1 AND slave = $2 AND "
			 "fetched_ms >= $3 AND id > $4 ORDER BY id LIMIT $5 "
			 "FOR UPDATE SKIP LOCKED",
			 &q, PGRES_TUPLES_OK)) == NULL)
			return -1;
		got = PQntuples(res);
		for (i = 0; i < got && *nkeys < want; i++) {
			if (row_read(p, res, i, *nrows) == -1) {
				PQclear(res);
				return -1;
			}
			after = p->rows[*nrows].seq;
			*nkeys += p->rows[(*nrows)++].n;
		}
		PQclear(res);
	} while (got == PG_LEASE_ROWS && *nkeys < want);
	return 0;
}

/* In the lease transaction: exactly the rows selected (locked by us). */
static int
pg_lease_delete(struct pool *p, struct pair *pr, uint64_t cutoff, size_t nrows)
{
	struct pgq q = { 0 };
	PGresult  *r;
	char	  *list, *at;
	size_t	   i, len = 2 + nrows * 21;
	int	   rc = -1;

	(void)pr;
	(void)cutoff;
	if ((list = malloc(len)) == NULL) {
		log_err("pool: lease: out of memory");
		return -1;
	}
	at = list;
	*at++ = '{';
	for (i = 0; i < nrows; i++)
		at += snprintf(at, len - (size_t)(at - list), "%s%lld",
		    i ? "," : "", (long long)p->rows[i].seq);
	snprintf(at, len - (size_t)(at - list), "}");
	pgq_text(&q, list);
	if ((r = pg_exec(p, "lease delete",
		 "DELETE FROM batches WHERE id = ANY($1::bigint[])", &q,
		 PGRES_COMMAND_OK)) != NULL) {
		if (strtoull(PQcmdTuples(r), NULL, 10) == nrows)
			rc = 0;
		else /* They were locked by us: never guess. */
			log_err("pool: lease delete removed %s rows, selected "
				"%zu",
			    PQcmdTuples(r), nrows);
	}
	PQclear(r);
	free(list);
	return rc;
}

/* In a transaction: the pair's expired rows no one holds, deleted; their
 * IDs queued for retirement, their key count in *n. */
static int
pg_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	struct pgq q = { 0 };
	PGresult  *r;
	int64_t	   k;

	*n = 0;
	pgq_text(&q, pr->master);
	pgq_text(&q, pr->slave);
	pgq_u64(&q, cutoff);
	if ((r = pg_exec(p, "expire",
		 "DELETE FROM batches WHERE id IN (SELECT id FROM batches "
		 "WHERE master = $1 AND slave = $2 AND fetched_ms < $3 "
		 "FOR UPDATE SKIP LOCKED) RETURNING n::bigint, ids",
		 &q, PGRES_TUPLES_OK)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		pool_retire_ids(p, PQgetvalue(r, i, 1),
		    (size_t)PQgetlength(r, i, 1));
		if ((k = pg_i64(r, i, 0)) > 0)
			*n += (size_t)k;
	}
	PQclear(r);
	return 0;
}

/* The pair's keys in the shared pool and the oldest fetch time. */
static int
pg_refresh(struct pool *p, struct pair *pr)
{
	struct pgq q = { 0 };
	PGresult  *r;
	int64_t	   n, min;

	pgq_text(&q, pr->master);
	pgq_text(&q, pr->slave);
	if ((r = pg_exec(p, "count",
		 "SELECT coalesce(sum(n), 0)::bigint, "
		 "coalesce(min(fetched_ms), -1)::bigint FROM batches "
		 "WHERE master = $1 AND slave = $2",
		 &q, PGRES_TUPLES_OK)) == NULL)
		return -1;
	n = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
	min = PQntuples(r) == 1 ? pg_i64(r, 0, 1) : -1;
	PQclear(r);
	pr->ndisk = n > 0 ? (size_t)n : 0;
	pr->disk_min_ms = min >= 0 ? (uint64_t)min : POOL_NO_MS;
	return 0;
}

/*
 * Takes the pair's refill lease if free, expired or its holder's session is
 * gone (a kmsd killed: its server process ends with the connection, so the
 * pool is refilled again at once, not after PG_REFILL_LEASE_MS; the time
 * limit stays for a holder that hangs with its connection open); renews
 * it if ours.
 */
static bool
pg_refill_claim(struct pool *p, struct pair *pr)
{
	uint64_t   now = time_real_ms();
	struct pgq q = { 0 };
	PGresult  *r;
	bool	   ok;

	pgq_text(&q, pr->master);
	pgq_text(&q, pr->slave);
	pgq_text(&q, p->pg->owner);
	pgq_u64(&q, now + PG_REFILL_LEASE_MS);
	pgq_u64(&q, now);
	r = pg_exec(p, "refill lease",
	    "INSERT INTO refill(master, slave, owner, until_ms, pid) "
	    "VALUES($1, $2, $3, $4, pg_backend_pid()) "
	    "ON CONFLICT (master, slave) DO UPDATE "
	    "SET owner = excluded.owner, until_ms = excluded.until_ms, "
	    "pid = excluded.pid "
	    "WHERE refill.owner = excluded.owner OR refill.until_ms < $5 "
	    "OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
	    "WHERE a.pid = refill.pid) "
	    "RETURNING owner",
	    &q, PGRES_TUPLES_OK);
	ok = r != NULL && PQntuples(r) == 1;
	PQclear(r);
	return ok;
}

static void
pg_close(struct pool *p)
{
	struct pool_pg *g = p->pg;

	if (g == NULL)
		return;
	PQfinish(g->c);
	pg_seal_free(g);
	free(g->conninfo);
	OPENSSL_cleanse(g->kek, sizeof(g->kek));
	free(g);
	p->pg = NULL;
	pool_rows_free(p);
}

static const struct pool_store pg_store = {
	.name = "postgresql",
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.add = pg_add,
	.lease_select = pg_lease_select,
	.lease_delete = pg_lease_delete,
	.expire = pg_expire,
	.disk_min = pg_refresh,
	.refresh = pg_refresh,
	.seal_room = pg_seal_room,
	.open_row = pg_open_row,
	.refill_claim = pg_refill_claim,
	.close = pg_close,
};

/* Server notices ("already exists, skipping") are not ours to print. */
static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("pool: PostgreSQL: %s", msg);
}

/* The owner name of this process's refill leases: instance and random. */
static int
owner_make(struct pool_pg *g, const char *instance)
{
	uint8_t r[8];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	snprintf(g->owner, sizeof(g->owner),
	    "%.128s/%02x%02x%02x%02x%02x%02x%02x%02x",
	    instance ? instance : "kmsd", r[0], r[1], r[2], r[3], r[4], r[5],
	    r[6], r[7]);
	return 0;
}

int
pool_pg_open(struct pool *p, const struct pool_cfg *cfg,
    const uint8_t kek[SEAL_KEK_LEN], char *err, size_t errlen)
{
	struct pool_pg *g;

	p->st = &pg_store;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->conninfo = strdup(cfg->pg_conninfo)) == NULL) {
		free(g);
		snprintf(err, errlen, "pool: out of memory");
		return -1;
	}
	p->pg = g;
	memcpy(g->kek, kek, SEAL_KEK_LEN);
	if (owner_make(g, cfg->instance) == -1) {
		snprintf(err, errlen, "pool: no random bytes");
		return -1;
	}
	/* The conninfo may hold a password: never in a message. */
	g->c = PQconnectdb(g->conninfo);
	if (g->c == NULL || PQstatus(g->c) != CONNECTION_OK) {
		snprintf(err, errlen, "pool: PostgreSQL: cannot connect: %s",
		    g->c ? PQerrorMessage(g->c) : "out of memory");
		return -1;
	}
	PQsetNoticeProcessor(g->c, pg_notice, NULL);
	if (pg_meta_open(p, err, errlen) == -1 ||
	    pg_epoch_start(p, err, errlen) == -1)
		return -1;
	p->db_ready = true;
	log_info("pool: PostgreSQL pool open, refill lease owner %s", g->owner);
	return 0;
}

/*
 * kmsd's pool: leases (pool_int.h). A pair's queue holds the keys leased
 * into memory; a lease moves whole rows from the database into it in two
 * steps: pool_lease_load (under dbmu: read, delete, raise the high-water
 * mark, commit, then unseal into the stage) and pool_lease_attach (under
 * mu too: append the stage to the queue). Served and expired entries leave
 * the ID set through the retire list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/log.h"
#include "kmsd/pool_int.h"

/* ------------------------------------------------------------- retire */

/* Queues h to leave the ID set at pool_db_unlock. If that cannot grow, h
 * just stays in the set: a superset is safe. */
void
pool_retire_push(struct pool *p, uint64_t h)
{
	uint64_t *r;
	size_t	  cap;

	if (p->nretire == p->retire_cap) {
		cap = p->retire_cap ? 2 * p->retire_cap : 1024;
		if ((r = realloc(p->retire, cap * sizeof(*r))) == NULL)
			return;
		p->retire = r;
		p->retire_cap = cap;
	}
	p->retire[p->nretire++] = h;
}

/* Forgets the hashes queued since `mark` (their transaction rolled back). */
void
pool_retire_cut(struct pool *p, size_t mark)
{
	if (mark < p->nretire)
		p->nretire = mark;
}

void
pool_db_unlock(struct pool *p)
{
	for (size_t i = 0; i < p->nretire; i++)
		idset_del(&p->ids, p->retire[i]);
	p->nretire = 0;
	pthread_mutex_unlock(&p->dbmu);
}

/* -------------------------------------------------------------- queue */

uint8_t *
pool_lease_bytes(struct pool *p, struct pair *pr, size_t i)
{
	return pr->q.b + i * p->kb;
}

/*
 * Moves the live entries to the front, wiping the freed tail; the IDs
 * served since the last compaction are retired (they leave the ID set at
 * pool_db_unlock, outside mu).
 */
void
pool_lease_compact(struct pool *p, struct pair *pr)
{
	if (pr->head == 0)
		return;
	for (size_t i = 0; i < pr->head; i++)
		pool_retire_push(p, pr->q.lk[i].h);
	memmove(pr->q.lk, pr->q.lk + pr->head, pr->n * sizeof(*pr->q.lk));
	memmove(pr->q.b, pool_lease_bytes(p, pr, pr->head), pr->n * p->kb);
	OPENSSL_cleanse(pool_lease_bytes(p, pr, pr->n), pr->head * p->kb);
	pr->head = 0;
}

/*
 * Room for cap keys in q, the first keep of them kept. Fresh memory, so
 * that no stale key copy stays unwiped; the old is wiped and freed. -1 out
 * of memory (q unchanged).
 */
static int
keyq_grow(struct pool *p, struct keyq *q, size_t cap, size_t keep)
{
	struct keyq nq = { NULL, NULL, cap };

	if (cap <= q->cap)
		return 0;
	if ((nq.lk = calloc(cap, sizeof(*nq.lk))) == NULL)
		return -1;
	if ((nq.b = sec_alloc(cap * p->kb)) == NULL) {
		free(nq.lk);
		return -1;
	}
	if (keep > 0) {
		memcpy(nq.lk, q->lk, keep * sizeof(*nq.lk));
		memcpy(nq.b, q->b, keep * p->kb);
	}
	pool_keyq_free(p, q);
	*q = nq;
	return 0;
}

void
pool_keyq_free(struct pool *p, struct keyq *q)
{
	free(q->lk);
	sec_free(q->b, q->cap * p->kb);
	memset(q, 0, sizeof(*q));
}

/* Room for `cap` entries, compacted. */
static int
lease_reserve(struct pool *p, struct pair *pr, size_t cap)
{
	pool_lease_compact(p, pr);
	return keyq_grow(p, &pr->q, cap, pr->n);
}

/* Drops (wipes) queued keys fetched before cutoff; returns how many. */
size_t
pool_lease_expire(struct pool *p, struct pair *pr, uint64_t cutoff)
{
	size_t	 i, kept = 0, n0 = pr->n;
	uint64_t min = POOL_NO_MS;

	if (pr->lease_min_ms >= cutoff)
		return 0;
	pool_lease_compact(p, pr);
	for (i = 0; i < n0; i++) {
		if (pr->q.lk[i].fetched_ms < cutoff) {
			pool_retire_push(p, pr->q.lk[i].h);
			continue;
		}
		if (i != kept) {
			pr->q.lk[kept] = pr->q.lk[i];
			memcpy(pool_lease_bytes(p, pr, kept),
			    pool_lease_bytes(p, pr, i), p->kb);
		}
		if (pr->q.lk[kept].fetched_ms < min)
			min = pr->q.lk[kept].fetched_ms;
		kept++;
	}
	OPENSSL_cleanse(pool_lease_bytes(p, pr, kept), (n0 - kept) * p->kb);
	pr->n = kept;
	pr->lease_min_ms = min;
	if (n0 != kept)
		log_info("pool: (%s, %s): %zu leased keys expired", pr->master,
		    pr->slave, n0 - kept);
	return n0 - kept;
}

/* Under mu: moves the n oldest queued keys into out (preallocated). */
void
pool_lease_serve(struct pool *p, struct pair *pr, size_t n,
    struct etsi_keys *out)
{
	struct etsi_key *k;
	size_t		 i;

	for (i = 0; i < n; i++) {
		k = &out->v[i];
		memcpy(k->id, pr->q.lk[pr->head + i].id, sizeof(k->id));
		memcpy(k->key, pool_lease_bytes(p, pr, pr->head + i), p->kb);
	}
	OPENSSL_cleanse(pool_lease_bytes(p, pr, pr->head), n * p->kb);
	pr->head += n;
	pr->n -= n;
	if (pr->n == 0)
		pr->lease_min_ms = POOL_NO_MS;
}

/* -------------------------------------------------------------- stage */

static void
stage_id(void *arg, size_t i, const char *id)
{
	struct lkey *lk = arg;

	snprintf(lk[i].id, sizeof(lk[i].id), "%s", id);
}

/* Row i (just removed from disk) into the stage at p->sn; -1 if it does
 * not parse or authenticate (nothing of it staged). */
static int
stage_row(struct pool *p, struct pair *pr, size_t i)
{
	struct lrow    *r = &p->rows[i];
	struct lkey    *lk = p->stage.lk + p->sn;
	struct pool_row row = { (uint64_t)r->seq, r->ep, pr, r->fetched_ms,
		r->n, r->ids.p, r->ids.len };
	size_t		k;

	if (r->n == 0 ||
	    pool_ids_decode(r->ids.p, r->ids.len, r->n, stage_id, lk) == -1 ||
	    p->st->open_row(p, &row, r->blob.p, r->blob.len,
		p->stage.b + p->sn * p->kb) == -1)
		return -1;
	for (k = 0; k < r->n; k++) {
		lk[k].fetched_ms = r->fetched_ms;
		lk[k].h = idset_hash(&p->ids, lk[k].id);
	}
	p->sn += r->n;
	return 0;
}

/*
 * Under dbmu: unseals the rows just removed from disk into the stage (room
 * reserved for them), one seal open per row. A row that does not parse or
 * authenticate is dropped whole, never served; its IDs stay in the ID set
 * (a superset is safe, and a tampered ids list must not retire others').
 */
static void
lease_fill(struct pool *p, struct pair *pr, size_t nrows)
{
	struct lrow *r;
	size_t	     i, bad = 0;

	p->sn = 0;
	for (i = 0; i < nrows; i++) {
		if (stage_row(p, pr, i) == 0)
			continue;
		/* Tampered or corrupt: gone from disk, never served. */
		r = &p->rows[i];
		if (r->n > 0)
			OPENSSL_cleanse(p->stage.b + p->sn * p->kb,
			    r->n * p->kb);
		log_err("pool: (%s, %s): row %lld (%zu keys) does not "
			"authenticate under the KEK: dropped",
		    pr->master, pr->slave, (long long)r->seq, r->n);
		bad += r->n;
	}
	if (bad)
		log_err("pool: (%s, %s): %zu stored keys dropped as corrupt",
		    pr->master, pr->slave, bad);
	p->stats.corrupt_keys += bad;
}

/* ------------------------------------------------------------- leases */

/* Inside the lease transaction: selects, stages room for and deletes the
 * oldest unexpired rows of the pair (at least want keys, whole rows). */
static int
lease_take_rows(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want,
    size_t *nrows, size_t *nkeys)
{
	if (p->st->lease_select(p, pr, cutoff, want, nrows, nkeys) == -1)
		return -1;
	if (*nrows == 0)
		return 0;
	/* Room for the unsealed keys (dbmu), the stage's content is spent. */
	if (keyq_grow(p, &p->stage, *nkeys, 0) == -1) {
		log_err("pool: lease of %zu keys: out of memory", *nkeys);
		return -1;
	}
	return p->st->lease_delete(p, pr, cutoff, *nrows);
}

/*
 * Under dbmu (mu is not needed, and may be held): takes a lease of at least
 * `want` keys (whole rows), or what there is, into the stage. One FULL
 * transaction deletes the pair's expired rows and the oldest others; inside
 * it, before COMMIT, the pair's high-water mark is raised to the last row
 * leased and made durable (so an older copy of the database restored later
 * cannot bring these rows back; a crash between the two loses the lease, as
 * a crash after COMMIT would). Only after COMMIT returned are the rows
 * unsealed. The keys are then off the disk: the caller attaches them
 * (pool_lease_attach) before releasing dbmu.
 */
int
pool_lease_load(struct pool *p, struct pair *pr, uint64_t cutoff, size_t want)
{
	size_t nexp = 0, nrows = 0, nkeys = 0, mark = p->nretire;

	p->sn = 0;
	if (p->st->begin(p) == -1)
		return -1;
	/* disk_min_ms is exact or lower: no expired row, no DELETE to try. */
	if ((pr->disk_min_ms < cutoff &&
		p->st->expire(p, pr, cutoff, &nexp) == -1) ||
	    lease_take_rows(p, pr, cutoff, want, &nrows, &nkeys) == -1 ||
	    p->st->commit(p) == -1) {
		p->st->rollback(p);
		pool_retire_cut(p, mark);
		return -1;
	}
	pr->ndisk -= nexp + nkeys <= pr->ndisk ? nexp + nkeys : pr->ndisk;
	if (nexp)
		log_info("pool: (%s, %s): %zu expired keys dropped", pr->master,
		    pr->slave, nexp);
	lease_fill(p, pr, nrows);
	/* A read error here only makes the next expiry check run early. */
	if (p->st->disk_min(p, pr) == -1)
		pr->disk_min_ms = 0;
	return 0;
}

/*
 * Under dbmu and mu: appends the stage to the pair's queue and wipes the
 * stage. If the queue cannot grow, the staged keys are dropped (wiped; they
 * are off the disk, so never served) and -1 returned.
 */
int
pool_lease_attach(struct pool *p, struct pair *pr)
{
	size_t i;
	int    rc = 0;

	if (p->sn == 0)
		return 0;
	if (lease_reserve(p, pr, pr->n + p->sn) == -1) {
		log_err(
		    "pool: (%s, %s): out of memory: %zu leased keys dropped",
		    pr->master, pr->slave, p->sn);
		for (i = 0; i < p->sn; i++)
			pool_retire_push(p, p->stage.lk[i].h);
		rc = -1;
	} else {
		memcpy(pr->q.lk + pr->n, p->stage.lk,
		    p->sn * sizeof(*p->stage.lk));
		memcpy(pool_lease_bytes(p, pr, pr->n), p->stage.b,
		    p->sn * p->kb);
		for (i = 0; i < p->sn; i++)
			if (p->stage.lk[i].fetched_ms < pr->lease_min_ms)
				pr->lease_min_ms = p->stage.lk[i].fetched_ms;
		pr->n += p->sn;
	}
	OPENSSL_cleanse(p->stage.b, p->sn * p->kb);
	p->sn = 0;
	return rc;
}

/* At close: the stage and the retire list. */
void
pool_lease_free(struct pool *p)
{
	free(p->retire);
	p->retire = NULL;
	p->nretire = p->retire_cap = 0;
	pool_keyq_free(p, &p->stage);
}

/*
 * kmsd's key pool (pool.h): the policy and the public API. SQLite on disk
 * (pool_sql.c), rows sealed (pool_seal.c), leases in memory (pool_lease.c);
 * pool_int.h has the design: the locks, the ordering the no-key-twice
 * guarantee rests on, and the key ID set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/timeutil.h"
#include "kmsd/hwm.h"
#include "kmsd/pool_int.h"

/* --------------------------------------------------------------- pairs */

struct pair *
pool_pair_find(struct pool *p, const char *master, const char *slave)
{
	struct pair *pr;

	for (pr = p->pairs; pr != NULL; pr = pr->next)
		if (strcmp(pr->master, master) == 0 &&
		    strcmp(pr->slave, slave) == 0)
			return pr;
	return NULL;
}

/* Links a new pair under mu. */
struct pair *
pool_pair_get(struct pool *p, const char *master, const char *slave)
{
	struct pair *pr;

	if ((pr = pool_pair_find(p, master, slave)) != NULL)
		return pr;
	if ((pr = calloc(1, sizeof(*pr))) == NULL)
		return NULL;
	/* Callers checked both with etsi_id_valid: they fit. */
	snprintf(pr->master, sizeof(pr->master), "%s", master);
	snprintf(pr->slave, sizeof(pr->slave), "%s", slave);
	pr->disk_min_ms = POOL_NO_MS;
	pr->lease_min_ms = POOL_NO_MS;
	pthread_mutex_lock(&p->mu);
	pr->next = p->pairs;
	p->pairs = pr;
	pthread_mutex_unlock(&p->mu);
	return pr;
}

static void
pair_free(struct pool *p, struct pair *pr)
{
	pool_keyq_free(p, &pr->q);
	free(pr);
}

uint64_t
pool_cutoff(const struct pool *p, uint64_t now_ms)
{
	return now_ms > p->ttl_ms ? now_ms - p->ttl_ms : 0;
}

/* Under dbmu: the pair's shared disk count, where other processes add and
 * take rows (PostgreSQL); -1 logged. */
static int
pair_refresh(struct pool *p, struct pair *pr)
{
	return p->st->refresh != NULL ? p->st->refresh(p, pr) : 0;
}

/* Under dbmu: the pair; with a shared database (refresh set) made if new,
 * as another process may fill a pair this one never saw. */
static struct pair *
pair_lookup(struct pool *p, const char *master, const char *slave)
{
	if (p->st->refresh == NULL || !etsi_id_valid(master) ||
	    !etsi_id_valid(slave))
		return pool_pair_find(p, master, slave);
	return pool_pair_get(p, master, slave);
}

/*
 * Takes dbmu, finds the pair and refreshes its shared count: 1 with dbmu
 * held and *out the pair; 0 (no such pair) or -1 (storage error, logged)
 * with dbmu released.
 */
static int
pair_locked(struct pool *p, const char *master, const char *slave,
    struct pair **out)
{
	pthread_mutex_lock(&p->dbmu);
	if ((*out = pair_lookup(p, master, slave)) == NULL) {
		pool_db_unlock(p);
		return 0;
	}
	if (pair_refresh(p, *out) == -1) {
		pool_db_unlock(p);
		return -1;
	}
	return 1;
}

bool
pool_unavailable(struct pool *p)
{
	return atomic_load(&p->down);
}

bool
pool_refill_claim(struct pool *p, const char *master, const char *slave)
{
	struct pair *pr;
	bool	     ok;

	if (p->st->refill_claim == NULL)
		return true;
	pthread_mutex_lock(&p->dbmu);
	pr = pair_lookup(p, master, slave);
	ok = pr != NULL && p->st->refill_claim(p, pr);
	pool_db_unlock(p);
	return ok;
}

/* ---------------------------------------------------------------- take */

/* n keys of p->kb bytes, allocated before any lock is taken. */
static int
out_alloc(struct pool *p, size_t n, struct etsi_keys *out)
{
	if (etsi_keys_alloc(out, n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((out->v[i].key = sec_alloc(p->kb)) == NULL) {
			etsi_keys_free(out);
			return -1;
		}
		out->v[i].len = p->kb;
	}
	return 0;
}

/* Under mu: whether to ask for a prefetch; the caller calls it unlocked. */
static void (*ask_prefetch(struct pool *p, struct pair *pr, void **arg))(void *)
{
	if (pr->asked || pr->n >= POOL_STANDBY * p->lease_size ||
	    p->notify == NULL)
		return NULL;
	pr->asked = true;
	*arg = p->notify_arg;
	return p->notify;
}

/*
 * The slow path, both locks: expire, lease synchronously if the queue is
 * short, serve. 0 (*served: the keys are in out), -1 on a storage error.
 */
static int
take_slow(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out, bool *served, void (**fn)(void *), void **arg)
{
	struct pair *pr;
	uint64_t     cutoff;
	size_t	     want;
	int	     rc = 0;

	if ((rc = pair_locked(p, master, slave, &pr)) != 1)
		return rc;
	rc = 0;
	pthread_mutex_lock(&p->mu);
	cutoff = pool_cutoff(p, time_real_ms());
	pool_lease_expire(p, pr, cutoff);
	if (pr->n < n && pr->ndisk > 0) {
		want = n - pr->n > p->lease_size ? n - pr->n : p->lease_size;
		if (pool_lease_load(p, pr, cutoff, want) == -1 ||
		    pool_lease_attach(p, pr) == -1) {
			rc = -1;
			goto done;
		}
	}
	/* If short, keep the queue: it is already off the disk, servable. */
	if (pr->n >= n) {
		pool_lease_serve(p, pr, n, out);
		*served = true;
	}
	*fn = ask_prefetch(p, pr, arg);
done:
	pthread_mutex_unlock(&p->mu);
	pool_db_unlock(p);
	return rc;
}

int
pool_take(struct pool *p, const char *master, const char *slave, size_t n,
    struct etsi_keys *out)
{
	struct pair *pr;
	void (*fn)(void *) = NULL, *arg = NULL;
	bool served = false;
	int  rc = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (n > ETSI_MAX_KEYS) {
		log_err("pool: take of %zu keys: at most %d", n, ETSI_MAX_KEYS);
		return -1;
	}
	if (pool_unavailable(p))
		return -1; /* logged when it went down */
	if (out_alloc(p, n, out) == -1) {
		log_err("pool: take of %zu keys: out of memory", n);
		return -1;
	}
	/* The fast path: from memory, under mu alone. */
	pthread_mutex_lock(&p->mu);
	if ((pr = pool_pair_find(p, master, slave)) != NULL && pr->n >= n &&
	    pr->lease_min_ms >= pool_cutoff(p, time_real_ms())) {
		pool_lease_serve(p, pr, n, out);
		fn = ask_prefetch(p, pr, &arg);
		served = true;
	}
	pthread_mutex_unlock(&p->mu);
	if (!served)
		rc = take_slow(p, master, slave, n, out, &served, &fn, &arg);
	if (fn != NULL)
		fn(arg);
	if (!served)
		etsi_keys_free(out);
	return rc;
}

int
pool_prefetch(struct pool *p, const char *master, const char *slave)
{
	struct pair *pr;
	uint64_t     cutoff = pool_cutoff(p, time_real_ms());
	size_t	     want;
	int	     rc = 0;
	bool	     need;

	if ((rc = pair_locked(p, master, slave, &pr)) != 1)
		return rc;
	rc = 0;
	pthread_mutex_lock(&p->mu);
	pool_lease_expire(p, pr, cutoff);
	need = pr->n < POOL_STANDBY * p->lease_size;
	/* Up to one lease above the mark, in one transaction: under a load
	 * that drains a lease per transaction time, fewer larger ones keep up. */
	want = need ? (POOL_STANDBY + 1) * p->lease_size - pr->n : 0;
	pthread_mutex_unlock(&p->mu);
	/* The disk work without mu: pool_take goes on serving meanwhile. */
	if (need && pr->ndisk > 0 &&
	    (rc = pool_lease_load(p, pr, cutoff, want)) == 0) {
		pthread_mutex_lock(&p->mu);
		rc = pool_lease_attach(p, pr);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	/* Takers ask again once it can help: now, or after pool_add. */
	pr->asked = pr->ndisk == 0 || rc == -1;
	pthread_mutex_unlock(&p->mu);
	pool_db_unlock(p);
	return rc;
}

void
pool_set_notify(struct pool *p, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&p->mu);
	p->notify = fn;
	p->notify_arg = arg;
	pthread_mutex_unlock(&p->mu);
}

/* ----------------------------------------------------------------- add */

/*
 * Under dbmu. Checks a batch before touching the database and enters its IDs
 * in the ID set (h[i] their hashes); -1 logged, with the set as it was. A KME
 * that repeats a key ID (in the batch, or one still in the pool) is broken:
 * none of the batch is taken.
 */
static int
add_check(struct pool *p, const struct etsi_keys *keys, uint64_t *h)
{
	size_t i, j;
	int    r = 0;

	for (i = 0; i < keys->n; i++) {
		if (keys->v[i].len != p->kb || keys->v[i].key == NULL) {
			log_err("pool: add: key \"%s\" has %zu bytes, the pool "
				"holds %zu-byte keys",
			    keys->v[i].id, keys->v[i].len, p->kb);
			return -1;
		}
		if (keys->v[i].id[0] == '\0' ||
		    memchr(keys->v[i].id, '\0', sizeof(keys->v[i].id)) ==
			NULL) {
			log_err("pool: add: key %zu has no valid key ID", i);
			return -1;
		}
		h[i] = idset_hash(&p->ids, keys->v[i].id);
	}
	for (i = 0; i < keys->n; i++) {
		if (idset_has(&p->ids, h[i])) {
			r = 1;
			break;
		}
		if ((r = idset_add(&p->ids, h[i])) != 0)
			break;
	}
	if (i == keys->n)
		return 0;
	if (r == 1)
		log_err("pool: add: key ID \"%s\" is already in the pool or "
			"repeated in the batch",
		    keys->v[i].id);
	else
		log_err("pool: add: out of memory");
	for (j = 0; j < i; j++)
		idset_del(&p->ids, h[j]);
	return -1;
}

static void
add_undo_ids(struct pool *p, const uint64_t *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		idset_del(&p->ids, h[i]);
}

/* Under dbmu: the checked batch (IDs in the set, hashes h) in one FULL
 * transaction; on failure the IDs leave the set again. */
static int
add_commit(struct pool *p, struct pair *pr, const struct etsi_keys *keys,
    uint64_t fetched_ms, const uint64_t *h, struct row_buf *rb)
{
	/* Room in the sealing epoch first: a new one commits its salt. */
	if (p->st->seal_room(p, (keys->n + POOL_ROW_MAX - 1) / POOL_ROW_MAX) ==
		-1 ||
	    p->st->begin(p) == -1) {
		add_undo_ids(p, h, keys->n);
		return -1;
	}
	if (p->st->add(p, pr, keys, 0, keys->n, fetched_ms, rb) == -1 ||
	    p->st->commit(p) == -1) {
		p->st->rollback(p);
		add_undo_ids(p, h, keys->n);
		log_err("pool: add for (%s, %s): batch of %zu keys not stored",
		    pr->master, pr->slave, keys->n);
		return -1;
	}
	pr->ndisk += keys->n;
	if (fetched_ms < pr->disk_min_ms)
		pr->disk_min_ms = fetched_ms;
	pthread_mutex_lock(&p->mu);
	pr->asked = false; /* a prefetch can help again */
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int
pool_add(struct pool *p, const char *master, const char *slave,
    const struct etsi_keys *keys, uint64_t fetched_ms)
{
	struct pair   *pr;
	struct row_buf rb = { NULL, NULL, NULL, 0 };
	uint64_t      *h = NULL;
	int	       rc = -1;

	if (!etsi_id_valid(master) || !etsi_id_valid(slave) ||
	    fetched_ms > INT64_MAX) {
		log_err("pool: add: bad SAE ID or fetched_ms");
		return -1;
	}
	if (keys->n == 0)
		return 0;
	/* Scratch for one row, allocated before any lock is taken. */
	if ((h = calloc(keys->n, sizeof(*h))) == NULL ||
	    pool_row_buf_alloc(p, &rb, keys->n) == -1) {
		log_err("pool: add: out of memory");
		goto out;
	}
	pthread_mutex_lock(&p->dbmu);
	if ((pr = pool_pair_get(p, master, slave)) == NULL)
		log_err("pool: add: out of memory");
	else if (add_check(p, keys, h) == -1)
		log_err("pool: add for (%s, %s): batch of %zu keys refused",
		    master, slave, keys->n);
	else
		rc = add_commit(p, pr, keys, fetched_ms, h, &rb);
	pool_db_unlock(p);
out:
	free(h);
	pool_row_buf_free(p, &rb);
	return rc;
}

/* -------------------------------------------------------------- expiry */

/*
 * Under dbmu, not mu: drops the pair's expired keys, queued and on disk;
 * count in *n.
 */
static int
pair_expire(struct pool *p, struct pair *pr, uint64_t cutoff, size_t *n)
{
	size_t nd = 0, mark;

	pthread_mutex_lock(&p->mu);
	*n = pool_lease_expire(p, pr, cutoff);
	pthread_mutex_unlock(&p->mu);
	if (pr->disk_min_ms >= cutoff)
		return 0;
	mark = p->nretire;
	if (p->st->begin(p) == -1)
		return -1;
	if (p->st->expire(p, pr, cutoff, &nd) == -1 || p->st->commit(p) == -1) {
		p->st->rollback(p);
		pool_retire_cut(p, mark);
		return -1;
	}
	pr->ndisk -= nd <= pr->ndisk ? nd : pr->ndisk;
	*n += nd;
	if (nd)
		log_info("pool: (%s, %s): %zu expired keys dropped", pr->master,
		    pr->slave, nd);
	return p->st->disk_min(p, pr);
}

size_t
pool_count(struct pool *p, const char *master, const char *slave)
{
	struct pair *pr;
	size_t	     n = 0, dropped;

	pthread_mutex_lock(&p->dbmu);
	if ((pr = pair_lookup(p, master, slave)) != NULL &&
	    pair_refresh(p, pr) == 0) {
		/* Sweeping keeps the count to unexpired keys, as promised. */
		(void)pair_expire(p, pr, pool_cutoff(p, time_real_ms()),
		    &dropped);
		pthread_mutex_lock(&p->mu);
		n = pr->ndisk + pr->n;
		pthread_mutex_unlock(&p->mu);
	}
	pool_db_unlock(p);
	return n;
}

size_t
pool_expire(struct pool *p, uint64_t now_ms)
{
	struct pair *pr;
	size_t	     n = 0, d;

	pthread_mutex_lock(&p->dbmu);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		(void)pair_expire(p, pr, pool_cutoff(p, now_ms), &d);
		n += d;
	}
	pool_db_unlock(p);
	return n;
}

/* ---------------------------------------------------------------- open */

static int
cfg_check(const struct pool_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->kek_file == NULL || *cfg->kek_file == '\0')
		snprintf(err, errlen, "pool: kek_file is not set");
	else if (cfg->key_bytes == 0 || cfg->key_bytes > ETSI_MAX_KEY_BYTES)
		snprintf(err, errlen, "pool: key_bytes %u is not in 1..%d",
		    cfg->key_bytes, ETSI_MAX_KEY_BYTES);
	else if (cfg->lease_size == 0 || cfg->lease_size > POOL_LEASE_MAX)
		snprintf(err, errlen, "pool: lease_size %u is not in 1..%u",
		    cfg->lease_size, POOL_LEASE_MAX);
	else if (cfg->ttl_s == 0)
		snprintf(err, errlen,
		    "pool: ttl_s 0: keys need a lifetime of "
		    "at least 1 s");
	else
		return 0;
	return -1;
}

/* The object and its locks; NULL out of memory. */
static struct pool *
pool_new(const struct pool_cfg *cfg)
{
	struct pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		return NULL;
	}
	if (pthread_mutex_init(&p->dbmu, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		return NULL;
	}
	p->kb = cfg->key_bytes;
	p->lease_size = cfg->lease_size;
	p->ttl_ms = (uint64_t)cfg->ttl_s * 1000u;
	return p;
}

struct pool *
pool_open(const struct pool_cfg *cfg, char *err, size_t errlen)
{
	uint8_t	     kek[SEAL_KEK_LEN];
	struct pool *p = NULL;

	if (cfg_check(cfg, err, errlen) == -1 ||
	    seal_kek_load(cfg->kek_file, kek, err, errlen) == -1)
		return NULL;
	if ((p = pool_new(cfg)) == NULL || idset_init(&p->ids) == -1) {
		snprintf(err, errlen, "pool: out of memory");
		goto fail;
	}
	if ((cfg->pg_conninfo != NULL ?
		    pool_pg_open(p, cfg, kek, err, errlen) :
		    pool_sqlite_open(p, cfg, kek, err, errlen)) == -1)
		goto fail;
	OPENSSL_cleanse(kek, sizeof(kek));
	return p;
fail:
	OPENSSL_cleanse(kek, sizeof(kek));
	pool_close(p);
	return NULL;
}

/* ---------------------------------------------------------------- close */

/*
 * Under dbmu and mu, in a transaction: the pair's queued keys as new rows
 * (one per run of keys fetched at the same time), with sequences above the
 * mark, so they are served after the rows already on disk. tmp has room for
 * pr->n keys; its key pointers borrow the queue's bytes.
 */
static int
release_pair(struct pool *p, struct pair *pr, struct row_buf *rb,
    struct etsi_keys *tmp)
{
	size_t i, j;

	for (i = 0; i < pr->n; i++) {
		memcpy(tmp->v[i].id, pr->q.lk[i].id, sizeof(tmp->v[i].id));
		tmp->v[i].key = pool_lease_bytes(p, pr, i);
		tmp->v[i].len = p->kb;
	}
	tmp->n = pr->n;
	for (i = 0; i < pr->n; i = j) {
		for (j = i + 1; j < pr->n && j - i < POOL_ROW_MAX &&
		     pr->q.lk[j].fetched_ms == pr->q.lk[i].fetched_ms;
		     j++)
			;
		if (p->st->add(p, pr, tmp, i, j - i, pr->q.lk[i].fetched_ms,
			rb) == -1)
			return -1;
	}
	return 0;
}

/* Under dbmu and mu: every queue expired and compacted; total and largest. */
static size_t
release_prepare(struct pool *p, size_t *most)
{
	struct pair *pr;
	uint64_t     cutoff = pool_cutoff(p, time_real_ms());
	size_t	     total = 0;

	*most = 0;
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		pool_lease_expire(p, pr, cutoff);
		pool_lease_compact(p, pr);
		total += pr->n;
		*most = pr->n > *most ? pr->n : *most;
	}
	return total;
}

/* Under dbmu and mu: every queue as rows (at most total), in one FULL
 * transaction. */
static int
release_write(struct pool *p, size_t total, size_t most)
{
	struct etsi_keys tmp = { NULL, 0 };
	struct row_buf	 rb = { NULL, NULL, NULL, 0 };
	struct pair	*pr;
	int		 rc = -1;

	if ((tmp.v = calloc(most, sizeof(*tmp.v))) == NULL ||
	    pool_row_buf_alloc(p, &rb, most) == -1 ||
	    p->st->seal_room(p, total) == -1 || p->st->begin(p) == -1)
		goto done;
	for (pr = p->pairs; pr != NULL; pr = pr->next)
		if (pr->n > 0 && release_pair(p, pr, &rb, &tmp) == -1)
			break;
	if (pr != NULL || p->st->commit(p) == -1) {
		p->st->rollback(p);
		goto done;
	}
	rc = 0;
done:
	free(tmp.v); /* the keys were the queue's */
	pool_row_buf_free(p, &rb);
	return rc;
}

/*
 * At a graceful stop: the keys leased into memory and not served go back to
 * the database (sealed as new rows, one FULL transaction), so a stop loses
 * no key. A crash still loses them (never serves them twice). Nothing is
 * served after this: the queues are emptied either way.
 */
static void
pool_release(struct pool *p)
{
	struct pair *pr;
	size_t	     total, most;

	pthread_mutex_lock(&p->dbmu);
	pthread_mutex_lock(&p->mu);
	if ((total = release_prepare(p, &most)) == 0)
		;
	else if (release_write(p, total, most) == 0) {
		p->stats.returned_keys += total;
		log_info(
		    "pool: %zu leased keys put back into the pool database",
		    total);
	} else
		log_err("pool: %zu leased keys could not be put back on disk: "
			"they are dropped (never served)",
		    total);
	for (pr = p->pairs; pr != NULL; pr = pr->next) {
		OPENSSL_cleanse(pr->q.b, pr->n * p->kb);
		pr->n = 0;
		pr->lease_min_ms = POOL_NO_MS;
	}
	pthread_mutex_unlock(&p->mu);
	pool_db_unlock(p);
}

void
pool_stats(struct pool *p, struct pool_stats *out)
{
	pthread_mutex_lock(&p->dbmu);
	*out = p->stats;
	pthread_mutex_unlock(&p->dbmu);
}

void
pool_close(struct pool *p)
{
	struct pair *pr;

	if (p == NULL)
		return;
	if (p->db_ready)
		pool_release(p);
	while ((pr = p->pairs) != NULL) {
		p->pairs = pr->next;
		pair_free(p, pr);
	}
	idset_free(&p->ids);
	pool_lease_free(p);
	if (p->st != NULL)
		p->st->close(p);
	hwm_free(&p->hwm);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->dbmu);
	free(p);
}

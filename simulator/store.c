/*
 * Key store, the shared front (store.h): the mutex, the generations, the
 * per-pair counts of waiting keys and their cap, the time to live, the
 * counters; each operation is dispatched to the backend chosen at open
 * (store_be.h): in memory (store_mem.c) or SQLite (store_sql.c,
 * store_sqlkey.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/store.h"
#include "simulator/store_be.h"

struct store *
store_open(const char *db_path, const char *kek_file, size_t key_bytes,
    char *err, size_t errlen)
{
	struct store *s;
	int	      rc;

	if (key_bytes == 0 || key_bytes > ETSI_MAX_KEY_BYTES) {
		snprintf(err, errlen, "store: bad key size %zu bytes",
		    key_bytes);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->kb = key_bytes;
	if (db_path == NULL)
		rc = store_mem_open(s, err, errlen);
	else
		rc = store_sql_open(s, db_path, kek_file, err, errlen);
	if (rc == -1) {
		store_close(s);
		return NULL;
	}
	return s;
}

void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->ops != NULL)
		s->ops->close(s);
	for (i = 0; i < s->npairs; i++) {
		free(s->pairs[i].master);
		free(s->pairs[i].slave);
	}
	free(s->pairs);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

size_t
store_count(struct store *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->nchunks;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
store_size_hint(struct store *s, size_t nchunks)
{
	pthread_mutex_lock(&s->mu);
	if (s->ops->size_hint != NULL)
		s->ops->size_hint(s, nchunks);
	pthread_mutex_unlock(&s->mu);
}

size_t
store_assigned_count(struct store *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->nakeys;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
store_gen(struct store *s, uint8_t out[static 16])
{
	pthread_mutex_lock(&s->mu);
	memcpy(out, s->gen, 16);
	pthread_mutex_unlock(&s->mu);
}

uint64_t
store_last_seq(struct store *s)
{
	uint64_t v;

	pthread_mutex_lock(&s->mu);
	v = s->last_seq;
	pthread_mutex_unlock(&s->mu);
	return v;
}

void
store_set_limits(struct store *s, unsigned ttl_s, size_t max_per_pair)
{
	pthread_mutex_lock(&s->mu);
	s->ttl_ms = (uint64_t)ttl_s * 1000;
	s->max_pair = max_per_pair;
	pthread_mutex_unlock(&s->mu);
}

void
store_get_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->chunks = s->nchunks;
	out->assigned = s->nakeys;
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------- per-pair count */

static struct store_pair *
pair_find(struct store *s, const char *master, const char *slave)
{
	size_t i;

	for (i = 0; i < s->npairs; i++)
		if (strcmp(s->pairs[i].slave, slave) == 0 &&
		    strcmp(s->pairs[i].master, master) == 0)
			return &s->pairs[i];
	return NULL;
}

static size_t
pair_count(struct store *s, const char *master, const char *slave)
{
	struct store_pair *p = pair_find(s, master, slave);

	return p ? p->n : 0;
}

int
store_pair_add(struct store *s, const char *master, const char *slave, long d)
{
	struct store_pair *p = pair_find(s, master, slave), *v;

	if (p == NULL) {
		if (d <= 0)
			return 0;
		if (s->npairs == s->cappairs) {
			size_t nc = s->cappairs ? s->cappairs * 2 : 16;

			if ((v = realloc(s->pairs, nc * sizeof(*v))) == NULL)
				return -1;
			s->pairs = v;
			s->cappairs = nc;
		}
		p = &s->pairs[s->npairs];
		p->n = 0;
		p->master = strdup(master);
		p->slave = strdup(slave);
		if (p->master == NULL || p->slave == NULL) {
			free(p->master);
			free(p->slave);
			return -1;
		}
		s->npairs++;
	}
	if (d < 0 && (size_t)-d > p->n)
		p->n = 0;
	else
		p->n = (size_t)((long)p->n + d);
	return 0;
}

void
store_pairs_zero(struct store *s)
{
	size_t i;

	for (i = 0; i < s->npairs; i++)
		s->pairs[i].n = 0;
}
bool
store_pair_full(struct store *s, struct store_assign *a)
{
	size_t i, n;

	for (i = 0; s->max_pair > 0 && i < a->nslaves; i++) {
		n = pair_count(s, a->master, a->slaves[i]);
		if (n + a->nkeys > s->max_pair) {
			a->result = STORE_FULL;
			a->full_slave = i;
			a->waiting = n;
			s->stats.refused_full++;
			return true;
		}
	}
	return false;
}

void
store_pairs_assign(struct store *s, const struct store_assign *a, long d)
{
	size_t i;

	for (i = 0; i < a->nslaves; i++)
		if (store_pair_add(s, a->master, a->slaves[i],
			d * (long)a->nkeys) == -1)
			log_err(
			    "store: out of memory counting keys for %s -> %s",
			    a->master, a->slaves[i]);
}

bool
store_expired(const struct store *s, uint64_t t, uint64_t now)
{
	return s->ttl_ms > 0 && now >= t + s->ttl_ms;
}

/* -------------------------------------------------------------- chunks */

int
store_add_chunks(struct store *s, uint64_t seq, size_t n, const uint8_t *ids,
    const uint8_t *keys)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = s->ops->add_chunks(s, seq, n, ids, keys);
	if (rc == 0 && seq > s->last_seq)
		s->last_seq = seq;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_drop_after(struct store *s, uint64_t seq, size_t *dropped)
{
	int rc;

	*dropped = 0;
	pthread_mutex_lock(&s->mu);
	rc = s->ops->drop(s, false, seq, NULL, dropped);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_peer_gen(struct store *s, const uint8_t gen[static 16], size_t *dropped)
{
	int rc = 0;

	*dropped = 0;
	pthread_mutex_lock(&s->mu);
	if (memcmp(s->peer_gen, gen, 16) != 0) {
		rc = s->ops->drop(s, true, 0, gen, dropped);
		if (rc == 0)
			memcpy(s->peer_gen, gen, 16);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ------------------------------------------------------------- reserve */

static int
resv_alloc(struct store_resv *r, size_t n, size_t kb, int newest)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->kb = kb;
	r->newest = newest;
	r->ids = calloc(n ? n : 1, sizeof(*r->ids));
	r->ord = calloc(n ? n : 1, sizeof(*r->ord));
	r->keys = sec_alloc(n > 0 ? n * kb : 1);
	if (r->ids == NULL || r->ord == NULL || r->keys == NULL) {
		store_resv_free(r);
		return -1;
	}
	return 0;
}

void
store_resv_free(struct store_resv *r)
{
	if (r == NULL)
		return;
	free(r->ids);
	free(r->ord);
	if (r->keys)
		sec_free(r->keys, r->n > 0 ? r->n * r->kb : 1);
	memset(r, 0, sizeof(*r));
}

int
store_reserve(struct store *s, size_t n, int newest, struct store_resv *r,
    size_t *avail)
{
	int rc;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&s->mu);
	*avail = s->nchunks;
	if (n > s->nchunks) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	if (resv_alloc(r, n, s->kb, newest) == -1) {
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	rc = s->ops->reserve(s, r);
	pthread_mutex_unlock(&s->mu);
	if (rc == -1)
		store_resv_free(r);
	return rc;
}

int
store_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = s->ops->putback(s, r, drop);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ------------------------------------------------------ assign, take */

int
store_assign(struct store *s, struct store_assign *v, size_t n)
{
	uint64_t now = time_real_ms();
	size_t	 i;
	int	 rc;

	for (i = 0; i < n; i++) {
		v[i].result = STORE_MISSING;
		v[i].nmissing = 0;
		v[i].t = now;
	}
	pthread_mutex_lock(&s->mu);
	rc = s->ops->assign(s, v, n);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

enum store_rc
store_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n, struct etsi_keys *out)
{
	enum store_rc rc;

	pthread_mutex_lock(&s->mu);
	rc = s->ops->take(s, caller, master, ids, valid, n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_expire(struct store *s, uint64_t now_ms, size_t *n)
{
	int rc = 0;

	*n = 0;
	pthread_mutex_lock(&s->mu);
	if (s->ttl_ms > 0 && now_ms >= s->ttl_ms) {
		rc = s->ops->expire(s, now_ms, n);
		s->stats.expired += *n;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/*
 * Key store, SQLite backend: the assigned keys (store_sql.h). An assignment
 * deletes its chunks and inserts its sealed keys under a savepoint (all or
 * nothing per assignment, one transaction for the array); a take opens each
 * key, then deletes its row or seals it again with the caller's taken flag
 * set, and commits (synchronous=FULL) before a byte leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "simulator/store_sql.h"

/* ------------------------------------------------------------- assign */

/* "sae-b\nsae-x": SAE IDs are printable and have no newline. */
static char *
slaves_join(const char *const *v, size_t n)
{
	size_t i, len = 1;
	char  *out, *p;

	for (i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	if ((p = out = malloc(len)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "\n" : "", v[i]);
	*p = '\0';
	return out;
}

/* Index of sae in a joined list, or -1. */
static int
slaves_find(const char *list, const char *sae)
{
	size_t l = strlen(sae);
	int    i = 0;

	for (;;) {
		const char *e = strchr(list, '\n');
		size_t	    n = e ? (size_t)(e - list) : strlen(list);

		if (n == l && memcmp(list, sae, l) == 0)
			return i;
		if (e == NULL)
			return -1;
		list = e + 1;
		i++;
	}
}

/*
 * Chunk i of an assignment: checked against its ID, opened into its place
 * in tmp and deleted. 0 (a missing one is listed in a->missing), -1 error.
 */
static int
q_use_chunk(struct store *s, struct store_assign *a, size_t i, uint8_t *tmp)
{
	struct sqldb  *d = &sq(s)->d;
	sqlite3_stmt  *st = sqldb_st(d, ST_SEL_ORD);
	const uint8_t *id = a->chunks + 16 * i;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->ords[i]);
	if (sqlite3_step(st) != SQLITE_ROW ||
	    sqlite3_column_bytes(st, 0) != 16 ||
	    memcmp(sqlite3_column_blob(st, 0), id, 16) != 0)
		goto missing;
	store_sql_aad_chunk(s, a->ords[i], id);
	if ((size_t)sqlite3_column_bytes(st, 2) != s->kb + SEAL_OVH ||
	    store_sql_unseal(s, sqlite3_column_int64(st, 1),
		sqlite3_column_blob(st, 2), s->kb + SEAL_OVH,
		tmp + (i % a->per) * s->kb) == -1) {
		/* Missing for the peer, which drops its copy. */
		log_warn("store: chunk at position %llu does not "
			 "authenticate (its record was edited or damaged): "
			 "not used",
		    (unsigned long long)a->ords[i]);
		goto missing;
	}
	sqlite3_reset(st);
	st = sqldb_st(d, ST_DEL_ORD);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->ords[i]);
	return sqldb_done(d, st, "delete chunk");
missing:
	sqlite3_reset(st);
	memcpy(a->missing[a->nmissing++], id, 16);
	return 0;
}

/* Seals key k (in tmp) and inserts it: 0 (*dup: its key ID is in use,
 * nothing inserted), -1 error. */
static int
q_put_key(struct store *s, const struct store_assign *a, size_t k,
    const char *sl, const uint8_t *tmp, uint8_t *ct, bool *dup)
{
	static const uint8_t zero[ETSI_MAX_SLAVES + 1];
	struct store_sql    *q = sq(s);
	const uint8_t	    *id = a->ids + 16 * k;
	sqlite3_stmt	    *st;
	int		     r;

	store_sql_aad_key(s, id, a->size_bytes, a->t, a->master, sl, zero,
	    a->nslaves);
	if (sealep_seal(q->ep, tmp, a->size_bytes, ct) == -1)
		return -1;
	st = sqldb_st(&q->d, ST_INS_KEY);
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sl, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, zero, (int)a->nslaves, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, a->size_bytes);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)a->t);
	sqlite3_bind_int64(st, 7, sealep_epoch(q->ep));
	sqlite3_bind_blob(st, 8, ct, (int)(a->size_bytes + SEAL_OVH),
	    SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_reset(st);
	*dup = r == SQLITE_CONSTRAINT;
	return r == SQLITE_DONE || *dup ? 0 : -1;
}

/* One assignment, under a savepoint: all its keys stored, or no change. */
static int
q_assign_one(struct store *s, struct store_assign *a, uint8_t *tmp, uint8_t *ct)
{
	struct sqldb *d = &sq(s)->d;
	size_t	      nch = a->nkeys * a->per, i;
	char	     *sl;
	int	      r = 0;
	bool	      dup = false;

	a->nmissing = 0;
	if (store_pair_full(s, a))
		return 0;
	if (a->nslaves > ETSI_MAX_SLAVES + 1 ||
	    (sl = slaves_join(a->slaves, a->nslaves)) == NULL)
		return -1;
	if (sqldb_exec(d, "SAVEPOINT a") == -1) {
		free(sl);
		return -1;
	}
	/* Delete each chunk; a missing (or repeated) one shows as absent. */
	for (i = 0; i < nch; i++) {
		if ((r = q_use_chunk(s, a, i, tmp)) == -1)
			break;
		if (a->nmissing > 0 || i % a->per != a->per - 1)
			continue;
		/* The key: its chunks concatenated, truncated to its size. */
		if ((r = q_put_key(s, a, i / a->per, sl, tmp, ct, &dup)) != 0 ||
		    dup)
			break;
	}
	free(sl);
	if (r == -1) {
		(void)sqldb_exec(d, "ROLLBACK TO a");
		(void)sqldb_exec(d, "RELEASE a");
		return -1;
	}
	if (a->nmissing > 0 || dup) {
		a->result = a->nmissing > 0 ? STORE_MISSING : STORE_DUPID;
		if (sqldb_exec(d, "ROLLBACK TO a") == -1)
			return -1;
		return sqldb_exec(d, "RELEASE a");
	}
	a->result = STORE_OK;
	s->nchunks -= nch;
	s->nakeys += a->nkeys;
	store_pairs_assign(s, a, 1);
	return sqldb_exec(d, "RELEASE a");
}

int
store_sql_assign(struct store *s, struct store_assign *v, size_t n)
{
	struct sqldb *d = &sq(s)->d;
	size_t	      i, need = 0, maxper = 1, maxsz = 1;
	size_t	      nch0 = s->nchunks, nak0 = s->nakeys;
	uint8_t	     *tmp = NULL, *ct = NULL;
	int	      rc = 0;

	for (i = 0; i < n; i++) {
		need += v[i].nkeys;
		if (v[i].per > maxper)
			maxper = v[i].per;
		if (v[i].size_bytes > maxsz)
			maxsz = v[i].size_bytes;
	}
	tmp = sec_alloc(maxper * s->kb + maxper * s->kb);
	ct = sec_alloc(maxsz + SEAL_OVH);
	if (tmp == NULL || ct == NULL || store_sql_ep_ensure(s, need) == -1 ||
	    store_sql_begin(s, 1) == -1) {
		rc = -1;
		goto done;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = q_assign_one(s, &v[i], tmp, ct);
	if (rc == 0 && sqldb_commit(d) == -1)
		rc = -1;
	if (rc == -1) {
		sqldb_rollback(d);
		s->nchunks = nch0;
		s->nakeys = nak0;
		for (i = 0; i < n; i++)
			if (v[i].result == STORE_OK) {
				store_pairs_assign(s, &v[i], -1);
				v[i].result = STORE_MISSING;
			}
	}
done:
	sec_free(tmp, maxper * s->kb * 2);
	sec_free(ct, maxsz + SEAL_OVH);
	return rc;
}

/* --------------------------------------------------------------- take */

/* Per requested key: which slave the caller is, and its row. */
struct q_tk {
	int	 idx;
	size_t	 ns;
	uint8_t	 taken[ETSI_MAX_SLAVES + 1];
	uint64_t size, t;
	char	*slaves; /* kept to seal the row again */
};

static void
q_bad_key(const uint8_t id[16])
{
	char u[UUID_STRLEN + 1];

	uuid_fmt(id, u);
	log_warn("store: assigned key %s does not authenticate (its record "
		 "was edited or damaged): refused",
	    u);
}

/* Checks and opens key i of a take; STORE_OK, or why not. */
static enum store_rc
q_take_one(struct store *s, const char *caller, const char *master,
    const uint8_t id[16], uint64_t now, struct q_tk *tk, struct etsi_key *k)
{
	sqlite3_stmt *st = sqldb_st(&sq(s)->d, ST_SEL_KEY);
	enum store_rc rc = STORE_NOTFOUND;
	const char   *m, *sl;
	size_t	      len;

	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (m = (const char *)sqlite3_column_text(st, 0)) == NULL ||
	    strcmp(m, master) != 0 ||
	    (sl = (const char *)sqlite3_column_text(st, 1)) == NULL)
		goto done;
	if ((tk->idx = slaves_find(sl, caller)) == -1) {
		rc = STORE_UNAUTH;
		goto done;
	}
	tk->ns = (size_t)sqlite3_column_bytes(st, 2);
	len = (size_t)sqlite3_column_bytes(st, 6);
	if (tk->ns > sizeof(tk->taken) || (size_t)tk->idx >= tk->ns ||
	    len <= SEAL_OVH || len - SEAL_OVH > ETSI_MAX_KEY_BYTES) {
		s->stats.tampered++;
		q_bad_key(id);
		goto done;
	}
	memcpy(tk->taken, sqlite3_column_blob(st, 2), tk->ns);
	if (tk->taken[tk->idx])
		goto done;
	tk->size = (uint64_t)sqlite3_column_int64(st, 3);
	tk->t = (uint64_t)sqlite3_column_int64(st, 4);
	k->len = len - SEAL_OVH;
	if ((k->key = sec_alloc(k->len)) == NULL) {
		rc = STORE_ERR;
		goto done;
	}
	store_sql_aad_key(s, id, tk->size, tk->t, m, sl, tk->taken, tk->ns);
	if (store_sql_unseal(s, sqlite3_column_int64(st, 5),
		sqlite3_column_blob(st, 6), len, k->key) == -1) {
		q_bad_key(id);
		goto done;
	}
	if (store_expired(s, tk->t, now))
		goto done;
	if ((tk->slaves = strdup(sl)) == NULL) {
		rc = STORE_ERR;
		goto done;
	}
	rc = STORE_OK;
done:
	sqlite3_reset(st);
	return rc;
}

/* The caller's share is taken: the row goes, or is sealed again (new flags). */
static int
q_take_commit(struct store *s, const char *master, const uint8_t id[16],
    struct q_tk *tk, const struct etsi_key *k, uint8_t *ct, size_t *removed)
{
	struct sqldb *d = &sq(s)->d;
	sqlite3_stmt *st;
	size_t	      j;

	tk->taken[tk->idx] = 1;
	for (j = 0; j < tk->ns && tk->taken[j]; j++)
		;
	if (j == tk->ns) {
		st = sqldb_st(d, ST_DEL_KEY);
		sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
		(*removed)++;
	} else {
		store_sql_aad_key(s, id, tk->size, tk->t, master, tk->slaves,
		    tk->taken, tk->ns);
		if (sealep_seal(sq(s)->ep, k->key, k->len, ct) == -1)
			return -1;
		st = sqldb_st(d, ST_UPD_TAKEN);
		sqlite3_bind_blob(st, 1, tk->taken, (int)tk->ns, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, sealep_epoch(sq(s)->ep));
		sqlite3_bind_blob(st, 3, ct, (int)(k->len + SEAL_OVH),
		    SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, id, 16, SQLITE_STATIC);
	}
	return sqldb_done(d, st, "take key");
}

enum store_rc
store_sql_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n, struct etsi_keys *out)
{
	struct sqldb *d = &sq(s)->d;
	enum store_rc rc = STORE_ERR, r;
	struct q_tk  *tk;
	uint8_t	     *ct = NULL;
	uint64_t      now = time_real_ms();
	size_t	      i, j, removed = 0, ctlen = ETSI_MAX_KEY_BYTES + SEAL_OVH;
	int	      unauth = 0;

	if ((tk = calloc(n, sizeof(*tk))) == NULL)
		return STORE_ERR;
	/* Every key may be sealed again (several slaves): room for n seals. */
	if ((ct = sec_alloc(ctlen)) == NULL ||
	    store_sql_ep_ensure(s, n) == -1 || store_sql_begin(s, 1) == -1) {
		sec_free(ct, ctlen);
		free(tk);
		return STORE_ERR;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (valid[i] &&
			    memcmp(ids + 16 * i, ids + 16 * j, 16) == 0)
				break;
		if (!valid[i] || j < i) {
			rc = STORE_NOTFOUND;
			goto done;
		}
		r = q_take_one(s, caller, master, ids + 16 * i, now, &tk[i],
		    &out->v[i]);
		if (r == STORE_UNAUTH) {
			unauth = 1;
			continue;
		}
		if (r != STORE_OK) {
			rc = r;
			goto done;
		}
	}
	if (unauth) {
		rc = STORE_UNAUTH;
		goto done;
	}
	rc = STORE_ERR;
	for (i = 0; i < n; i++)
		if (q_take_commit(s, master, ids + 16 * i, &tk[i], &out->v[i],
			ct, &removed) == -1)
			goto done;
	/* Committed (fsync'd) before a single byte leaves this function. */
	if (sqldb_commit(d) == -1)
		goto done;
	s->nakeys -= removed;
	for (i = 0; i < n; i++)
		(void)store_pair_add(s, master, caller, -1);
	rc = STORE_OK;
done:
	if (rc != STORE_OK) {
		sqldb_rollback(d);
		for (i = 0; i < n; i++) {
			sec_free(out->v[i].key, out->v[i].len);
			out->v[i].key = NULL;
			out->v[i].len = 0;
		}
	}
	for (i = 0; i < n; i++)
		free(tk[i].slaves);
	sec_free(ct, ctlen);
	free(tk);
	return rc;
}

/*
 * kmsd's pool: the SQLite backend's function table (pool_int.h) and its
 * open sequence. The statements are in pool_sql.c, the sealing epochs in
 * pool_seal.c, the high-water mark file in hwm.c: a lease raises the pair's
 * mark inside its transaction, before COMMIT (see pool.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kmsd/hwm.h"
#include "kmsd/pool_int.h"

static int
sq_begin(struct pool *p)
{
	return sqldb_begin(&p->db);
}

static int
sq_commit(struct pool *p)
{
	return sqldb_commit(&p->db);
}

static void
sq_rollback(struct pool *p)
{
	sqldb_rollback(&p->db);
}

/* The lease's rows out, and the pair's mark up to the last (durable). */
static int
sq_lease_delete(struct pool *p, struct pair *pr, uint64_t cutoff, size_t nrows)
{
	if (pool_sql_lease_delete(p, pr, cutoff, nrows) == -1)
		return -1;
	return hwm_raise(&p->hwm, p->seal, pr->master, pr->slave,
	    (uint64_t)p->rows[nrows - 1].seq);
}

static void
sq_close(struct pool *p)
{
	pool_seal_free(p);
	pool_sql_close(p);
}

static const struct pool_store sqlite_store = {
	.name = "sqlite",
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.add = pool_sql_add,
	.lease_select = pool_sql_lease_select,
	.lease_delete = sq_lease_delete,
	.expire = pool_sql_expire,
	.disk_min = pool_sql_disk_min,
	.refresh = NULL,
	.seal_room = pool_seal_room,
	.open_row = pool_open_row,
	.refill_claim = NULL,
	.close = sq_close,
};

/* The mark file (default: the database's path + ".hwm"): as hwm_load. */
static int
hwm_open(struct pool *p, const struct pool_cfg *cfg, bool *fresh, char *err,
    size_t errlen)
{
	char  *path = NULL;
	size_t len;
	int    rc;

	if (cfg->hwm_file == NULL || *cfg->hwm_file == '\0') {
		len = strlen(cfg->db_path) + sizeof(".hwm");
		if ((path = malloc(len)) == NULL) {
			snprintf(err, errlen, "pool: out of memory");
			return -1;
		}
		snprintf(path, len, "%s.hwm", cfg->db_path);
	}
	rc = hwm_load(&p->hwm, p->seal, path ? path : cfg->hwm_file, fresh, err,
	    errlen);
	free(path);
	if (rc == 0 && *fresh)
		log_info("pool: new high-water mark file %s", p->hwm.path);
	return rc;
}

int
pool_sqlite_open(struct pool *p, const struct pool_cfg *cfg,
    const uint8_t kek[SEAL_KEK_LEN], char *err, size_t errlen)
{
	bool fresh;

	p->st = &sqlite_store;
	if (cfg->db_path == NULL || *cfg->db_path == '\0') {
		snprintf(err, errlen, "pool: db_path is not set");
		return -1;
	}
	if (pool_sql_open(p, cfg, err, errlen) == -1 ||
	    pool_seal_init(p, kek, err, errlen) == -1 ||
	    pool_sql_meta_check(p, cfg, err, errlen) == -1 ||
	    hwm_open(p, cfg, &fresh, err, errlen) == -1 ||
	    pool_sql_rollback(p, cfg->db_path, fresh, err, errlen) == -1 ||
	    pool_seal_start(p, cfg->db_path, err, errlen) == -1 ||
	    pool_sql_load(p, cfg->db_path, err, errlen) == -1)
		return -1;
	return 0;
}

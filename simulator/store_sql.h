/*
 * Key store, SQLite backend: what its two files share (store_sql.c: open,
 * sealing glue, chunks, expiry; store_sqlkey.c: assignments and takes).
 * Private to the store.
 */
#ifndef SIM_STORE_SQL_H
#define SIM_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "common/seal.h"
#include "common/sealep.h"
#include "common/sqldb.h"
#include "simulator/store_be.h"

#define SEAL_OVH SEAL_OVERHEAD

enum {
	ST_INS_CHUNK,
	ST_SEL_OLD,
	ST_SEL_NEW,
	ST_DEL_ORD,
	ST_SEL_ORD,
	ST_INS_KEY,
	ST_SEL_KEY,
	ST_UPD_TAKEN,
	ST_DEL_KEY,
	ST_SEL_OLDKEYS,
	ST__N
};

struct store_sql {
	struct sqldb   d;
	int	       sync_full; /* synchronous=FULL now */
	struct sealep *ep;
};

static inline struct store_sql *
sq(struct store *s)
{
	return s->be;
}

/* BEGIN IMMEDIATE at synchronous FULL (full) or NORMAL. */
int  store_sql_begin(struct store *s, int full);
/* Room for `need` more seals in this epoch; else a new one (no transaction open). */
int  store_sql_ep_ensure(struct store *s, size_t need);
/* pt gets ctlen - SEAL_OVH bytes; -1 if it does not authenticate (counted). */
int  store_sql_unseal(struct store *s, int64_t ep, const uint8_t *ct,
     size_t ctlen, uint8_t *pt);
/* The AAD of a chunk: its position, ID and size. */
void store_sql_aad_chunk(struct store *s, uint64_t ord, const uint8_t id[16]);
/*
 * The AAD of an assigned key: every column that decides who may take it and
 * until when (slaves: the stored newline-joined list; taken: one flag each).
 */
void store_sql_aad_key(struct store *s, const uint8_t id[16], size_t size,
    uint64_t t, const char *master, const char *slaves, const uint8_t *taken,
    size_t ns);

/* The assigned keys (store_sqlkey.c). */
int store_sql_assign(struct store *s, struct store_assign *v, size_t n);
enum store_rc
store_sql_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n, struct etsi_keys *out);

#endif

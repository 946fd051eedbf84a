/*
 * The pool's high-water marks, kept outside its database so that a restored
 * (older) copy of the database cannot bring back rows that were already
 * leased: a small file sealed under the KEK (common/seal.h: it cannot be
 * edited undetected), rewritten atomically, holding a random pool ID (bound
 * into every row's AAD) and, per (master, slave) pair, the highest row
 * sequence number ever leased. Rows are leased in sequence order, so every
 * row of the pair at or below its mark has left the database: a row found
 * there at open came from an older copy and is dropped, never served.
 *
 * Not thread-safe: the pool calls it under its database lock, and inside a
 * SQLite write transaction, which also serialises several processes sharing
 * one pool (hwm_raise merges what the file holds before writing).
 */
#ifndef KMSD_HWM_H
#define KMSD_HWM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"
#include "common/seal.h"

#define HWM_ID_LEN 16

struct hwm_ent {
	char	 master[ETSI_ID_MAX + 1];
	char	 slave[ETSI_ID_MAX + 1];
	uint64_t mark; /* every seq <= mark was leased */
};

struct hwm {
	char	       *path;
	uint8_t		id[HWM_ID_LEN]; /* pool ID, in every row's AAD */
	struct hwm_ent *v;
	size_t		n, cap;
};

/*
 * Reads path into h, or, if it does not exist, gives h a fresh random pool
 * ID and no marks (*fresh: the caller saves it before sealing a row with
 * the ID). 0, or -1 with err if the file is unreadable or does not
 * authenticate.
 */
int hwm_load(struct hwm *h, struct seal *s, const char *path, bool *fresh,
    char *err, size_t errlen);
int hwm_save(struct hwm *h, struct seal *s, char *err, size_t errlen);

/*
 * Raises (master, slave)'s mark to at least seq, merges the marks the file
 * holds now (another process's leases), and saves: durable when it returns
 * 0. -1 logged.
 */
int hwm_raise(struct hwm *h, struct seal *s, const char *master,
    const char *slave, uint64_t seq);

uint64_t hwm_get(const struct hwm *h, const char *master,
    const char *slave);		       /* 0: none */
uint64_t hwm_max(const struct hwm *h); /* over all pairs */
void	 hwm_free(struct hwm *h);      /* NULL ok */

#endif

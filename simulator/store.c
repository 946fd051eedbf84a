/*
 * Key store: in-memory backend and SQLite backend behind one API (store.h).
 *
 * In memory: chunks live in a hash table (by ID) threaded on a doubly linked
 * list in arrival order; assigned keys in a second hash table. One mutex.
 *
 * SQLite: tables meta, epochs, chunks (keyed by their position ord = batch
 * << 24 | index, the same at both KMEs: no random-ID index to maintain) and
 * akeys (WITHOUT ROWID, keyed by key ID, slaves and taken flags inline; 1
 * KiB pages to keep the WAL small for this random-access load).
 *
 * Sealing (layout 2): common/sealep.h. Each opening of the database starts
 * a new epoch (a fresh random salt in the epochs table, record key
 * HKDF(KEK, salt, EP_INFO)); records carry their epoch (column ep) and use
 * a counter nonce held in memory only. Why this and not a counter in the
 * database (layout 1): a database recreated, restored from a copy or copied
 * elsewhere rewound that counter under the same KEK and reused (key, nonce)
 * pairs; a restored database is opened in a new epoch instead.
 *
 * The AAD binds every column that decides who gets a key and when: for a
 * chunk its position and ID; for an assigned key its ID, size, creation
 * time, master, slaves and per-slave taken flags (these change when one of
 * several slaves takes the key: the record is sealed again). An edited
 * record does not open: it is refused and counted (tampered), never served.
 *
 * One connection under the store mutex, prepared statements, one transaction
 * per operation. synchronous=FULL for the commits a delivery depends on
 * (store_assign at the slave side, store_take), NORMAL for the others; see
 * simulator/DESIGN-notes.md for why that is enough.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/buf.h"
#include "common/seal.h"
#include "common/sealep.h"
#include "common/sqldb.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "simulator/store.h"

#define SEAL_OVH	SEAL_OVERHEAD
#define LAYOUT		2
#define EP_INFO		"qkd-sim store v2 record key"
#define CHECK_INFO	"qkd-sim store v2 kek check"
#define AAD_MAX		(64 + 2 * (ETSI_MAX_SLAVES + 2) * (ETSI_ID_MAX + 3))
#define SWEEP_MAX	4096	/* expired keys deleted per transaction */

struct hnode {
	uint8_t		 id[16];
};

/*
 * Open addressing with linear probing: a slot holds the ID's hash and the
 * record. A lookup touches one slot line, and the record only when the
 * whole hash matches; a growth rehashes from the stored hashes without
 * touching the records. Deletion shifts the run back (no tombstones).
 */
struct hslot {
	uint64_t	 h;
	struct hnode	*p;		/* NULL: empty */
};

struct htab {
	struct hslot	 *s;
	size_t		  cap;		/* power of 2 */
	size_t		  n;
};

struct chunk {
	struct hnode	 h;		/* first member */
	struct chunk	*prev, *next;
	uint64_t	 ord;		/* STORE_ORD(batch, index) */
	uint8_t		 mark;
	uint8_t		 key[];
};

struct akey {
	struct hnode	 h;		/* first member */
	struct akey	*prev, *next;	/* creation order, for expiry */
	uint64_t	 t;		/* created, ms since the epoch */
	char		*master;
	char		**slaves;
	uint8_t		*taken;
	size_t		 nslaves;
	size_t		 nleft;
	uint8_t		 mark;
	size_t		 len;
	uint8_t		*key;		/* sec_alloc */
};

enum { ST_INS_CHUNK, ST_SEL_OLD, ST_SEL_NEW, ST_DEL_ORD, ST_SEL_ORD,
	ST_INS_KEY, ST_SEL_KEY, ST_UPD_TAKEN, ST_DEL_KEY, ST_SEL_OLDKEYS,
	ST__N };

static const char *const sql_stmt[ST__N] = {
	[ST_INS_CHUNK] = "INSERT INTO chunks(ord, id, ep, ct) VALUES(?, ?, ?, ?)",
	[ST_SEL_OLD] = "SELECT ord, id, ep, ct FROM chunks ORDER BY ord ASC LIMIT ?",
	[ST_SEL_NEW] = "SELECT ord, id, ep, ct FROM chunks ORDER BY ord DESC LIMIT ?",
	[ST_DEL_ORD] = "DELETE FROM chunks WHERE ord = ?",
	[ST_SEL_ORD] = "SELECT id, ep, ct FROM chunks WHERE ord = ?",
	[ST_INS_KEY] = "INSERT INTO akeys(id, master, slaves, taken, size, t, ep,"
	    " ct) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_SEL_KEY] = "SELECT master, slaves, taken, size, t, ep, ct FROM akeys"
	    " WHERE id = ?",
	[ST_UPD_TAKEN] = "UPDATE akeys SET taken = ?, ep = ?, ct = ? WHERE id = ?",
	[ST_DEL_KEY] = "DELETE FROM akeys WHERE id = ?",
	[ST_SEL_OLDKEYS] = "SELECT id, master, slaves, taken FROM akeys"
	    " WHERE t <= ? LIMIT 4096",	/* SWEEP_MAX */
};

static const char sql_schema[] =
	SQLDB_META_SCHEMA
	"CREATE TABLE IF NOT EXISTS chunks(ord INTEGER PRIMARY KEY,"
	" id BLOB NOT NULL, ep INTEGER NOT NULL, ct BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS akeys(id BLOB PRIMARY KEY, master TEXT NOT NULL,"
	" slaves TEXT NOT NULL, taken BLOB NOT NULL, size INTEGER NOT NULL,"
	" t INTEGER NOT NULL, ep INTEGER NOT NULL, ct BLOB NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS akeys_t ON akeys(t);";

/* Keys assigned by a master to a slave and not yet taken by that slave. */
struct pairc {
	char		*master;
	char		*slave;
	size_t		 n;
};

struct store {
	pthread_mutex_t	 mu;
	size_t		 kb;		/* bytes per chunk */
	uint8_t		 gen[16];
	uint8_t		 peer_gen[16];
	uint64_t	 last_seq;
	size_t		 nchunks;
	size_t		 nakeys;
	uint64_t	 hseed;

	/* memory backend */
	struct htab	 ct;		/* chunks */
	struct htab	 kt;		/* assigned keys */
	struct chunk	*head, *tail;	/* oldest .. newest */

	struct akey	*ahead, *atail;	/* assigned keys, oldest .. newest */

	/* expiry, cap, counters (both backends) */
	uint64_t	 ttl_ms;	/* 0: assigned keys never expire */
	size_t		 max_pair;	/* 0: no cap */
	uint64_t	 last_sweep_ms;
	struct pairc	*pairs;
	size_t		 npairs, cappairs;
	struct store_stats stats;

	/* SQLite backend */
	struct sqldb	 d;		/* d.db NULL: in memory */
	int		 sync_full;
	struct sealep	*ep;
};

/* ---------------------------------------------------------------- hash */

#define H_MIN		1024
#define H_HINT_MAX	(8u << 20)	/* entries a size hint may reserve */

static uint64_t
h_hash(const struct store *s, const uint8_t id[16])
{
	uint64_t a, b;

	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	a ^= s->hseed;
	a *= 0x9e3779b97f4a7c15ULL;
	a ^= b + (a >> 29);
	a *= 0xbf58476d1ce4e5b9ULL;
	a ^= a >> 32;
	return a;
}

static int
h_init(struct htab *t)
{
	t->cap = H_MIN;
	t->n = 0;
	t->s = calloc(t->cap, sizeof(*t->s));
	return t->s ? 0 : -1;
}

/* Re-slots every entry into a table of ncap slots; -1 leaves t as it was. */
static int
h_resize(struct htab *t, size_t ncap)
{
	struct hslot *ns;
	size_t i, j, m = ncap - 1;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < t->cap; i++) {
		if (t->s[i].p == NULL)
			continue;
		for (j = t->s[i].h & m; ns[j].p != NULL; j = (j + 1) & m)
			;
		ns[j] = t->s[i];
	}
	free(t->s);
	t->s = ns;
	t->cap = ncap;
	return 0;
}

/* Room for n entries at a load of at most 3/4 (best effort). */
static void
h_presize(struct htab *t, size_t n)
{
	size_t cap = t->cap;

	if (n > H_HINT_MAX)
		n = H_HINT_MAX;
	while (n * 4 > cap * 3)
		cap *= 2;
	if (cap > t->cap)
		(void)h_resize(t, cap);
}

static struct hnode *
h_find(const struct store *s, const struct htab *t, const uint8_t id[16])
{
	uint64_t h = h_hash(s, id);
	size_t i, m = t->cap - 1;

	for (i = h & m; t->s[i].p != NULL; i = (i + 1) & m)
		if (t->s[i].h == h && memcmp(t->s[i].p->id, id, 16) == 0)
			return t->s[i].p;
	return NULL;
}

/* -1 only if the table is full and cannot grow. */
static int
h_add(const struct store *s, struct htab *t, struct hnode *n)
{
	uint64_t h = h_hash(s, n->id);
	size_t i, m;

	if ((t->n + 1) * 4 > t->cap * 3 && h_resize(t, t->cap * 2) == -1 &&
	    t->n + 1 >= t->cap)
		return -1;	/* else: a fuller table, still correct */
	m = t->cap - 1;
	for (i = h & m; t->s[i].p != NULL; i = (i + 1) & m)
		;
	t->s[i].h = h;
	t->s[i].p = n;
	t->n++;
	return 0;
}

static void
h_del(const struct store *s, struct htab *t, struct hnode *n)
{
	uint64_t h = h_hash(s, n->id);
	size_t i, j, k, m = t->cap - 1;

	for (i = h & m; t->s[i].p != n; i = (i + 1) & m)
		if (t->s[i].p == NULL)
			return;
	/* Shift back the entries of the run that may not stay behind a hole. */
	for (j = i;;) {
		j = (j + 1) & m;
		if (t->s[j].p == NULL)
			break;
		k = t->s[j].h & m;	/* home slot of entry j */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;	/* home within (i, j]: stays */
		t->s[i] = t->s[j];
		i = j;
	}
	t->s[i].p = NULL;
	t->s[i].h = 0;
	t->n--;
}

/* ------------------------------------------------------- memory chunks */

static void
m_link_tail(struct store *s, struct chunk *c)
{
	c->next = NULL;
	c->prev = s->tail;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
}

static void
m_link_head(struct store *s, struct chunk *c)
{
	c->prev = NULL;
	c->next = s->head;
	if (s->head)
		s->head->prev = c;
	else
		s->tail = c;
	s->head = c;
}

static void
m_unlink(struct store *s, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	c->prev = c->next = NULL;
}

static void
m_chunk_free(struct store *s, struct chunk *c)
{
	OPENSSL_cleanse(c->key, s->kb);
	free(c);
}

/* Removes c from the table and the list and frees it. */
static void
m_chunk_del(struct store *s, struct chunk *c)
{
	h_del(s, &s->ct, &c->h);
	m_unlink(s, c);
	s->nchunks--;
	m_chunk_free(s, c);
}

static struct chunk *
m_chunk_new(struct store *s, const uint8_t id[16], uint64_t ord,
    const uint8_t *key)
{
	struct chunk *c;

	c = malloc(sizeof(*c) + s->kb);
	if (c == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	memcpy(c->h.id, id, 16);
	c->ord = ord;
	memcpy(c->key, key, s->kb);
	return c;
}

/* One block: the struct, then the slave pointers, the key bytes, the taken
 * flags and the strings. Freed (and the key wiped) with m_akey_free. */
static struct akey *
m_akey_new(const struct store_assign *a, const uint8_t id[16])
{
	struct akey *ak;
	size_t sz, i, ml = strlen(a->master) + 1, sl = 0, l;
	char *p;

	for (i = 0; i < a->nslaves; i++)
		sl += strlen(a->slaves[i]) + 1;
	sz = sizeof(*ak) + a->size_bytes + a->nslaves * (sizeof(char *) + 1) +
	    ml + sl;
	if ((ak = malloc(sz)) == NULL)
		return NULL;
	memset(ak, 0, sizeof(*ak));
	memcpy(ak->h.id, id, 16);
	ak->len = a->size_bytes;
	ak->slaves = (char **)(void *)(ak + 1);
	ak->key = (uint8_t *)(ak->slaves + a->nslaves);
	ak->taken = ak->key + ak->len;
	memset(ak->taken, 0, a->nslaves);
	p = (char *)(ak->taken + a->nslaves);
	ak->master = p;
	memcpy(p, a->master, ml);
	p += ml;
	for (i = 0; i < a->nslaves; i++) {
		l = strlen(a->slaves[i]) + 1;
		memcpy(p, a->slaves[i], l);
		ak->slaves[i] = p;
		p += l;
	}
	ak->nslaves = ak->nleft = a->nslaves;
	return ak;
}

static void
m_akey_free(struct akey *a)
{
	if (a == NULL)
		return;
	OPENSSL_cleanse(a->key, a->len);
	free(a);
}

/* Adds ak to the table and at the newest end of the expiry list. */
static int
m_akey_add(struct store *s, struct akey *ak)
{
	if (h_add(s, &s->kt, &ak->h) == -1)
		return -1;
	ak->next = NULL;
	ak->prev = s->atail;
	if (s->atail)
		s->atail->next = ak;
	else
		s->ahead = ak;
	s->atail = ak;
	s->nakeys++;
	return 0;
}

/* Removes ak from the table and the list, wipes and frees it. */
static void
m_akey_del(struct store *s, struct akey *ak)
{
	h_del(s, &s->kt, &ak->h);
	if (ak->prev)
		ak->prev->next = ak->next;
	else
		s->ahead = ak->next;
	if (ak->next)
		ak->next->prev = ak->prev;
	else
		s->atail = ak->prev;
	s->nakeys--;
	m_akey_free(ak);
}

/* --------------------------------------------------------- SQLite glue */

/* BEGIN IMMEDIATE at synchronous FULL (full) or NORMAL. */
static int
tx_begin(struct store *s, int full)
{
	if (full != s->sync_full) {
		if (sqldb_exec(&s->d, full ? "PRAGMA synchronous=FULL" :
		    "PRAGMA synchronous=NORMAL") == -1)
			return -1;
		s->sync_full = full;
	}
	return sqldb_begin(&s->d);
}

/* ---------------------------------------------------------- sealing */

static const char *const ep_users[] = { "chunks", "akeys" };

static const struct sealep_conf ep_conf = {
	.table = "epochs",
	.info = EP_INFO,
	.check_info = CHECK_INFO,
	.users = ep_users,
	.nusers = 2,
	.aad_max = AAD_MAX,
};

/* Room for `need` more seals in this epoch; else a new one (no transaction open). */
static int
ep_ensure(struct store *s, size_t need)
{
	if (sealep_room(s->ep, need))
		return 0;
	/* The new epoch's salt is committed with synchronous=FULL. */
	if (s->sync_full != 1) {
		if (sqldb_exec(&s->d, "PRAGMA synchronous=FULL") == -1)
			return -1;
		s->sync_full = 1;
	}
	return sealep_next(s->ep);
}

/* pt gets ctlen - SEAL_OVH bytes; -1 if it does not authenticate (counted). */
static int
unseal_rec(struct store *s, int64_t ep, const uint8_t *ct, size_t ctlen,
    uint8_t *pt)
{
	if (sealep_open(s->ep, ep, ct, ctlen, pt) == -1) {
		s->stats.tampered++;
		return -1;
	}
	return 0;
}

/* The AAD of a chunk: its position, ID and size. */
static void
aad_chunk(struct store *s, uint64_t ord, const uint8_t id[16])
{
	sealep_aad_begin(s->ep, "qkd-sim chunk v2");
	sealep_aad_u64(s->ep, ord);
	sealep_aad_bytes(s->ep, id, 16);
	sealep_aad_u32(s->ep, (uint32_t)s->kb);
}

/*
 * The AAD of an assigned key: every column that decides who may take it and
 * until when (slaves: the stored newline-joined list; taken: one flag each).
 */
static void
aad_key(struct store *s, const uint8_t id[16], size_t size, uint64_t t,
    const char *master, const char *slaves, const uint8_t *taken, size_t ns)
{
	sealep_aad_begin(s->ep, "qkd-sim akey v2\n");
	sealep_aad_bytes(s->ep, id, 16);
	sealep_aad_u32(s->ep, (uint32_t)size);
	sealep_aad_u64(s->ep, t);
	sealep_aad_str(s->ep, master);
	sealep_aad_str(s->ep, slaves);
	sealep_aad_u16(s->ep, (uint16_t)ns);
	sealep_aad_bytes(s->ep, taken, ns);
}

/* --------------------------------------------------------------- open */

/*
 * 0: a new file; 2: this layout; 1: the layout before sealing epochs (its
 * nonce counter lived in the database); -1 on error.
 */
static int
db_layout(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int r = -1;

	if (sqlite3_prepare_v2(s->d.db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'meta'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto done;
	if (sqlite3_column_int(st, 0) == 0) {
		r = 0;
		goto done;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->d.db, "SELECT v FROM meta WHERE k = 'layout'",
	    -1, &st, NULL) != SQLITE_OK)
		goto done;
	r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
done:
	sqlite3_finalize(st);
	return r;
}

static int pair_add(struct store *s, const char *master, const char *slave,
    long d);
static int slaves_each(const char *list, const uint8_t *taken, size_t ns,
    const char *master, struct store *s, long d);

/* Counts, and the per-pair waiting keys, from the tables. */
static int
sql_count(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(s->d.db, "SELECT count(*) FROM chunks", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto done;
	s->nchunks = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->d.db, "SELECT master, slaves, taken FROM akeys",
	    -1, &st, NULL) != SQLITE_OK)
		goto done;
	while (sqlite3_step(st) == SQLITE_ROW) {
		s->nakeys++;
		if (slaves_each((const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
		    (const char *)sqlite3_column_text(st, 0), s, 1) == -1)
			goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

/* The layout check, the pragmas, the schema and the statements. */
static int
sql_connect(struct store *s, const char *path,
    const uint8_t kek[static SEAL_KEK_LEN], int *fresh, char *err,
    size_t errlen)
{
	char why[256] = "";
	int layout;

	if (sqldb_open(&s->d, path, "store", why, sizeof(why)) == -1 ||
	    (layout = db_layout(s)) == -1)
		goto fail;
	if (layout != 0 && layout != LAYOUT) {
		snprintf(err, errlen, "db_path %s has the key store layout %d "
		    "(nonce counter kept in the database, which a restored copy "
		    "rewinds); this qkd-sim needs layout %d and does not convert "
		    "it: move the file away and start again (a new store; the "
		    "peer KME drops its matching unassigned keys, and keys "
		    "assigned but not fetched in the old file are lost)", path,
		    layout, LAYOUT);
		return -1;
	}
	*fresh = layout == 0;
	if (sqldb_exec(&s->d, "PRAGMA page_size=1024") == -1 ||
	    sqldb_wal(&s->d, why, sizeof(why)) == -1 ||
	    sqldb_exec(&s->d, "PRAGMA secure_delete=ON") == -1 ||
	    sqldb_exec(&s->d, "PRAGMA synchronous=FULL") == -1 ||
	    sqldb_exec(&s->d, sql_schema) == -1 ||
	    sqldb_prepare(&s->d, sql_stmt, ST__N, why, sizeof(why)) == -1 ||
	    sqldb_meta_init(&s->d, why, sizeof(why)) == -1 ||
	    (s->ep = sealep_new(&s->d, &ep_conf, kek, why,
	    sizeof(why))) == NULL)
		goto fail;
	s->sync_full = 1;
	return 0;
fail:
	snprintf(err, errlen, "db_path %s: %s", path,
	    *why != '\0' || s->d.db == NULL ? why : sqlite3_errmsg(s->d.db));
	return -1;
}

/* A new file: its layout, key size, generation and KEK check. */
static int
sql_init(struct store *s, const char *path, char *err, size_t errlen)
{
	if (RAND_bytes(s->gen, 16) != 1 || tx_begin(s, 1) == -1)
		return -1;
	if (sqldb_meta_set_u64(&s->d, "layout", LAYOUT) == -1 ||
	    sqldb_meta_set_u64(&s->d, "key_bytes", s->kb) == -1 ||
	    sqldb_meta_set_blob(&s->d, "gen", s->gen, 16) == -1 ||
	    sealep_kek_set(s->ep) == -1 || sqldb_commit(&s->d) == -1) {
		sqldb_rollback(&s->d);
		snprintf(err, errlen, "db_path %s: cannot initialise", path);
		return -1;
	}
	return 0;
}

static int
sql_open(struct store *s, const char *path, const char *kek_file, char *err,
    size_t errlen)
{
	uint8_t kek[SEAL_KEK_LEN];
	uint64_t v = 0;
	int fresh, rc;
	char why[256];

	if (kek_file == NULL || *kek_file == '\0') {
		snprintf(err, errlen, "db_path %s needs a kek_file", path);
		return -1;
	}
	if (seal_kek_load(kek_file, kek, err, errlen) == -1)
		return -1;
	rc = sql_connect(s, path, kek, &fresh, err, errlen);
	OPENSSL_cleanse(kek, sizeof(kek));
	if (rc == -1)
		return -1;
	if (!fresh && (!sqldb_meta_u64(&s->d, "key_bytes", &v) || v != s->kb)) {
		snprintf(err, errlen, "db_path %s holds keys of %llu bits, "
		    "key_size is %zu", path, (unsigned long long)v * 8, s->kb * 8);
		return -1;
	}
	if (fresh) {
		if (sql_init(s, path, err, errlen) == -1)
			return -1;
	} else {
		if (!sealep_kek_ok(s->ep)) {
			snprintf(err, errlen, "kek_file %s does not match "
			    "db_path %s", kek_file, path);
			return -1;
		}
		(void)sqldb_meta_blob(&s->d, "gen", s->gen, 16);
		(void)sqldb_meta_blob(&s->d, "peer_gen", s->peer_gen, 16);
		(void)sqldb_meta_u64(&s->d, "last_seq", &s->last_seq);
	}
	if (sealep_start(s->ep, why, sizeof(why)) == -1 || sql_count(s) == -1) {
		snprintf(err, errlen, "db_path %s: cannot load: %s", path,
		    sqlite3_errmsg(s->d.db));
		return -1;
	}
	log_info("store: %s: %zu chunks, %zu assigned keys, sealing epoch %lld",
	    path, s->nchunks, s->nakeys, (long long)sealep_epoch(s->ep));
	return 0;
}

struct store *
store_open(const char *db_path, const char *kek_file, size_t key_bytes,
    char *err, size_t errlen)
{
	struct store *s;

	if (key_bytes == 0 || key_bytes > ETSI_MAX_KEY_BYTES) {
		snprintf(err, errlen, "store: bad key size %zu bytes", key_bytes);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->kb = key_bytes;
	if (RAND_bytes((uint8_t *)&s->hseed, sizeof(s->hseed)) != 1 ||
	    h_init(&s->ct) == -1 || h_init(&s->kt) == -1) {
		snprintf(err, errlen, "store: cannot initialise");
		store_close(s);
		return NULL;
	}
	if (db_path == NULL) {
		if (RAND_bytes(s->gen, 16) != 1) {
			snprintf(err, errlen, "store: no entropy");
			store_close(s);
			return NULL;
		}
		return s;
	}
	if (sql_open(s, db_path, kek_file, err, errlen) == -1) {
		store_close(s);
		return NULL;
	}
	return s;
}

void
store_close(struct store *s)
{
	struct chunk *c, *nc;
	size_t i;

	if (s == NULL)
		return;
	for (c = s->head; c != NULL; c = nc) {
		nc = c->next;
		m_chunk_free(s, c);
	}
	for (i = 0; s->kt.s != NULL && i < s->kt.cap; i++)
		if (s->kt.s[i].p != NULL)
			m_akey_free((struct akey *)s->kt.s[i].p);
	free(s->ct.s);
	free(s->kt.s);
	sealep_free(s->ep);
	sqldb_close(&s->d);
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
	if (s->d.db == NULL)
		h_presize(&s->ct, nchunks);
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

static struct pairc *
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
	struct pairc *p = pair_find(s, master, slave);

	return p ? p->n : 0;
}

/* Adds d (may be negative) to the pair's count; -1 only when out of memory. */
static int
pair_add(struct store *s, const char *master, const char *slave, long d)
{
	struct pairc *p = pair_find(s, master, slave), *v;

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

/*
 * For each slave in a newline-joined list that has not taken the key
 * (taken NULL: none has), adds d to its pair with master.
 */
static int
slaves_each(const char *list, const uint8_t *taken, size_t ns,
    const char *master, struct store *s, long d)
{
	char sl[ETSI_ID_MAX + 1];
	size_t i = 0, n;
	const char *e;

	for (; list != NULL && master != NULL; i++) {
		e = strchr(list, '\n');
		n = e ? (size_t)(e - list) : strlen(list);
		if (n < sizeof(sl) && (taken == NULL || (i < ns && !taken[i]))) {
			memcpy(sl, list, n);
			sl[n] = '\0';
			if (pair_add(s, master, sl, d) == -1)
				return -1;
		}
		if (e == NULL)
			break;
		list = e + 1;
	}
	return 0;
}

/* -------------------------------------------------------------- chunks */

static int
m_add_chunks(struct store *s, uint64_t seq, size_t n, const uint8_t *ids,
    const uint8_t *keys)
{
	struct chunk *c;
	size_t i;

	for (i = 0; i < n; i++) {
		if (h_find(s, &s->ct, ids + 16 * i) != NULL)
			continue;
		c = m_chunk_new(s, ids + 16 * i, STORE_ORD(seq, i),
		    keys + i * s->kb);
		if (c == NULL)
			return -1;	/* the ones before stay: the peer re-syncs */
		if (h_add(s, &s->ct, &c->h) == -1) {
			m_chunk_free(s, c);
			return -1;
		}
		m_link_tail(s, c);
		s->nchunks++;
	}
	return 0;
}

static int
q_add_chunks(struct store *s, uint64_t seq, size_t n, const uint8_t *ids,
    const uint8_t *keys)
{
	uint8_t *ct;
	size_t i, added = 0;
	sqlite3_stmt *st;
	int rc = -1, r;

	ct = sec_alloc(s->kb + SEAL_OVH);
	if (ct == NULL || ep_ensure(s, n) == -1 || tx_begin(s, 0) == -1) {
		sec_free(ct, s->kb + SEAL_OVH);
		return -1;
	}
	for (i = 0; i < n; i++) {
		aad_chunk(s, STORE_ORD(seq, i), ids + 16 * i);
		if (sealep_seal(s->ep, keys + i * s->kb, s->kb, ct) == -1)
			goto done;
		st = sqldb_st(&s->d, ST_INS_CHUNK);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)STORE_ORD(seq, i));
		sqlite3_bind_blob(st, 2, ids + 16 * i, 16, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, sealep_epoch(s->ep));
		sqlite3_bind_blob(st, 4, ct, (int)(s->kb + SEAL_OVH), SQLITE_STATIC);
		r = sqlite3_step(st);
		sqlite3_reset(st);
		if (r == SQLITE_CONSTRAINT)
			continue;	/* duplicate ID */
		if (r != SQLITE_DONE) {
			log_err("store: insert chunk: %s", sqlite3_errmsg(s->d.db));
			goto done;
		}
		added++;
	}
	if (sqldb_meta_set_u64(&s->d, "last_seq", seq) == -1 || sqldb_commit(&s->d) == -1)
		goto done;
	s->nchunks += added;
	rc = 0;
done:
	if (rc == -1)
		sqldb_rollback(&s->d);
	sec_free(ct, s->kb + SEAL_OVH);
	return rc;
}

int
store_add_chunks(struct store *s, uint64_t seq, size_t n,
    const uint8_t *ids, const uint8_t *keys)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = s->d.db ? q_add_chunks(s, seq, n, ids, keys) :
	    m_add_chunks(s, seq, n, ids, keys);
	if (rc == 0 && seq > s->last_seq)
		s->last_seq = seq;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
drop_chunks(struct store *s, int all, uint64_t seq, size_t *dropped)
{
	struct chunk *c, *nc;
	sqlite3_stmt *st;
	size_t n = 0;

	if (s->d.db == NULL) {
		for (c = s->head; c != NULL; c = nc) {
			nc = c->next;
			if (all || STORE_ORD_SEQ(c->ord) > seq) {
				m_chunk_del(s, c);
				n++;
			}
		}
		*dropped = n;
		return 0;
	}
	if (sqlite3_prepare_v2(s->d.db, all ? "DELETE FROM chunks" :
	    "DELETE FROM chunks WHERE ord >= ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (!all)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)STORE_ORD(seq + 1, 0));
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	n = (size_t)sqlite3_changes(s->d.db);
	s->nchunks -= n < s->nchunks ? n : s->nchunks;
	*dropped = n;
	return 0;
}

int
store_drop_after(struct store *s, uint64_t seq, size_t *dropped)
{
	int rc;

	*dropped = 0;
	pthread_mutex_lock(&s->mu);
	if (s->d.db && tx_begin(s, 0) == -1) {
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	rc = drop_chunks(s, 0, seq, dropped);
	if (s->d.db && (rc == -1 || sqldb_commit(&s->d) == -1)) {
		sqldb_rollback(&s->d);
		rc = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_peer_gen(struct store *s, const uint8_t gen[static 16], size_t *dropped)
{
	int rc = 0;

	*dropped = 0;
	pthread_mutex_lock(&s->mu);
	if (memcmp(s->peer_gen, gen, 16) == 0)
		goto done;
	if (s->d.db && tx_begin(s, 0) == -1) {
		rc = -1;
		goto done;
	}
	rc = drop_chunks(s, 1, 0, dropped);
	if (s->d.db && (rc == -1 || sqldb_meta_set_blob(&s->d, "peer_gen", gen, 16) == -1 ||
	    sqldb_commit(&s->d) == -1)) {
		sqldb_rollback(&s->d);
		rc = -1;
	}
	if (rc == 0)
		memcpy(s->peer_gen, gen, 16);
done:
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

static int
m_reserve(struct store *s, struct store_resv *r)
{
	struct chunk *c;
	size_t i;

	for (i = 0; i < r->n; i++) {
		c = r->newest ? s->tail : s->head;
		memcpy(r->ids[i], c->h.id, 16);
		r->ord[i] = c->ord;
		memcpy(r->keys + i * s->kb, c->key, s->kb);
		m_chunk_del(s, c);
	}
	return 0;
}

/* Deletes one chunk found edited or damaged, in its own transaction. */
static void
q_drop_bad_chunk(struct store *s, uint64_t ord)
{
	sqlite3_stmt *del;

	log_warn("store: chunk at position %llu does not authenticate (its "
	    "record was edited or damaged): deleted, never served",
	    (unsigned long long)ord);
	if (tx_begin(s, 0) == -1)
		return;
	del = sqldb_st(&s->d, ST_DEL_ORD);
	sqlite3_bind_int64(del, 1, (sqlite3_int64)ord);
	if (sqldb_done(&s->d, del, "delete chunk") == -1 || sqldb_commit(&s->d) == -1) {
		sqldb_rollback(&s->d);
		return;
	}
	if (sqlite3_changes(s->d.db) > 0 && s->nchunks > 0)
		s->nchunks--;
}

static int
q_reserve(struct store *s, struct store_resv *r)
{
	sqlite3_stmt *st, *del;
	size_t i = 0;
	int rc = -1, bad = 0;

	if (tx_begin(s, 0) == -1)
		return -1;
	st = sqldb_st(&s->d, r->newest ? ST_SEL_NEW : ST_SEL_OLD);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->n);
	while (i < r->n && sqlite3_step(st) == SQLITE_ROW) {
		r->ord[i] = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != 16 ||
		    (size_t)sqlite3_column_bytes(st, 3) != s->kb + SEAL_OVH) {
			bad = 1;
			break;
		}
		memcpy(r->ids[i], sqlite3_column_blob(st, 1), 16);
		aad_chunk(s, r->ord[i], r->ids[i]);
		if (unseal_rec(s, sqlite3_column_int64(st, 2),
		    sqlite3_column_blob(st, 3), s->kb + SEAL_OVH,
		    r->keys + i * s->kb) == -1) {
			bad = 1;
			break;
		}
		i++;
	}
	sqlite3_reset(st);
	if (i != r->n) {
		/* The store heals: the next reservation goes past it. */
		if (bad) {
			sqldb_rollback(&s->d);
			OPENSSL_cleanse(r->keys, r->n * r->kb);
			q_drop_bad_chunk(s, r->ord[i]);
			return -1;
		}
		goto done;
	}
	for (i = 0; i < r->n; i++) {
		del = sqldb_st(&s->d, ST_DEL_ORD);
		sqlite3_bind_int64(del, 1, (sqlite3_int64)r->ord[i]);
		if (sqldb_done(&s->d, del, "delete chunk") == -1)
			goto done;
	}
	if (sqldb_commit(&s->d) == -1)
		goto done;
	rc = 0;
done:
	if (rc == -1) {
		sqldb_rollback(&s->d);
		OPENSSL_cleanse(r->keys, r->n * r->kb);
	}
	return rc;
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
		return 1;
	}
	if (resv_alloc(r, n, s->kb, newest) == -1) {
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	rc = s->d.db ? q_reserve(s, r) : m_reserve(s, r);
	if (rc == 0 && s->d.db)
		s->nchunks -= n;	/* m_reserve counted its own */
	pthread_mutex_unlock(&s->mu);
	if (rc == -1)
		store_resv_free(r);
	return rc;
}

static int
m_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	struct chunk *c;
	size_t i, k;

	/* Reverse order so that the first one taken ends up at its end again. */
	for (k = r->n; k-- > 0;) {
		i = k;
		if (drop && drop[i])
			continue;
		if (h_find(s, &s->ct, r->ids[i]) != NULL)
			continue;
		c = m_chunk_new(s, r->ids[i], r->ord[i], r->keys + i * s->kb);
		if (c == NULL)
			return -1;
		if (h_add(s, &s->ct, &c->h) == -1) {
			m_chunk_free(s, c);
			return -1;
		}
		if (r->newest)
			m_link_tail(s, c);
		else
			m_link_head(s, c);
		s->nchunks++;
	}
	return 0;
}

static int
q_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	uint8_t *ct;
	sqlite3_stmt *st;
	size_t i, added = 0;
	int rc = -1;

	ct = sec_alloc(s->kb + SEAL_OVH);
	if (ct == NULL || ep_ensure(s, r->n) == -1 || tx_begin(s, 0) == -1) {
		sec_free(ct, s->kb + SEAL_OVH);
		return -1;
	}
	for (i = 0; i < r->n; i++) {
		if (drop && drop[i])
			continue;
		aad_chunk(s, r->ord[i], r->ids[i]);
		if (sealep_seal(s->ep, r->keys + i * s->kb, s->kb, ct) == -1)
			goto done;
		st = sqldb_st(&s->d, ST_INS_CHUNK);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)r->ord[i]);
		sqlite3_bind_blob(st, 2, r->ids[i], 16, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, sealep_epoch(s->ep));
		sqlite3_bind_blob(st, 4, ct, (int)(s->kb + SEAL_OVH), SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE)
			added++;
		sqlite3_reset(st);
	}
	if (sqldb_commit(&s->d) == -1)
		goto done;
	s->nchunks += added;
	rc = 0;
done:
	if (rc == -1)
		sqldb_rollback(&s->d);
	sec_free(ct, s->kb + SEAL_OVH);
	return rc;
}

int
store_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = s->d.db ? q_putback(s, r, drop) : m_putback(s, r, drop);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* -------------------------------------------------------------- assign */

/*
 * The cap: 1 (result 3, full_slave and waiting set) if nkeys more keys
 * would put a (master, slave) pair over max_per_pair.
 */
static int
pair_full(struct store *s, struct store_assign *a)
{
	size_t i, n;

	for (i = 0; s->max_pair > 0 && i < a->nslaves; i++) {
		n = pair_count(s, a->master, a->slaves[i]);
		if (n + a->nkeys > s->max_pair) {
			a->result = 3;
			a->full_slave = i;
			a->waiting = n;
			s->stats.refused_full++;
			return 1;
		}
	}
	return 0;
}

/* Counts an assignment's keys for its pairs (d 1) or uncounts them (d -1). */
static void
pairs_assign(struct store *s, const struct store_assign *a, long d)
{
	size_t i;

	for (i = 0; i < a->nslaves; i++)
		if (pair_add(s, a->master, a->slaves[i], d * (long)a->nkeys) == -1)
			log_err("store: out of memory counting keys for %s -> %s",
			    a->master, a->slaves[i]);
}

static int
m_assign_one(struct store *s, struct store_assign *a)
{
	size_t nch = a->nkeys * a->per, i, k;
	struct chunk **cv;
	struct akey *ak;
	int rc = -1;

	a->nmissing = 0;
	if (pair_full(s, a))
		return 0;
	if ((cv = calloc(nch, sizeof(*cv))) == NULL)
		return -1;
	/* Find every chunk once; a repeated one counts as missing. */
	for (i = 0; i < nch; i++) {
		cv[i] = (struct chunk *)h_find(s, &s->ct, a->chunks + 16 * i);
		if (cv[i] == NULL || cv[i]->mark) {
			memcpy(a->missing[a->nmissing++], a->chunks + 16 * i, 16);
			cv[i] = NULL;
		} else
			cv[i]->mark = 1;
	}
	for (k = 0; k < a->nkeys && a->nmissing == 0 && a->result != 2; k++) {
		if (h_find(s, &s->kt, a->ids + 16 * k) != NULL)
			a->result = 2;
		for (i = 0; i < k && a->result != 2; i++)
			if (memcmp(a->ids + 16 * i, a->ids + 16 * k, 16) == 0)
				a->result = 2;
	}
	if (a->nmissing > 0 || a->result == 2) {
		if (a->nmissing > 0)
			a->result = 1;
		rc = 0;
		goto done;
	}
	for (k = 0; k < a->nkeys; k++) {
		if ((ak = m_akey_new(a, a->ids + 16 * k)) == NULL)
			goto done;
		ak->t = a->t;
		/* Concatenate the chunks, truncated to the key size. */
		for (i = 0; i < a->per; i++) {
			size_t off = i * s->kb, n = s->kb;

			if (off + n > ak->len)
				n = ak->len - off;
			memcpy(ak->key + off, cv[k * a->per + i]->key, n);
		}
		if (m_akey_add(s, ak) == -1) {
			m_akey_free(ak);
			goto done;
		}
	}
	/* Only now, with every key stored, remove the chunks. */
	for (i = 0; i < nch; i++) {
		m_chunk_del(s, cv[i]);
		cv[i] = NULL;
	}
	pairs_assign(s, a, 1);
	a->result = 0;
	rc = 0;
done:
	if (rc == -1) {
		/* Out of memory: remove the keys added so far. */
		for (k = 0; k < a->nkeys; k++) {
			ak = (struct akey *)h_find(s, &s->kt, a->ids + 16 * k);
			if (ak != NULL)
				m_akey_del(s, ak);
		}
	}
	for (i = 0; i < nch; i++)
		if (cv[i] != NULL)
			cv[i]->mark = 0;
	free(cv);
	return rc;
}

/* "sae-b\nsae-x": SAE IDs are printable and have no newline. */
static char *
slaves_join(const char *const *v, size_t n)
{
	size_t i, len = 1;
	char *out, *p;

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
	int i = 0;

	for (;;) {
		const char *e = strchr(list, '\n');
		size_t n = e ? (size_t)(e - list) : strlen(list);

		if (n == l && memcmp(list, sae, l) == 0)
			return i;
		if (e == NULL)
			return -1;
		list = e + 1;
		i++;
	}
}

static int
q_assign_one(struct store *s, struct store_assign *a, uint8_t *tmp,
    uint8_t *ct)
{
	static const uint8_t zero[ETSI_MAX_SLAVES + 1];
	size_t nch = a->nkeys * a->per, i, k;
	sqlite3_stmt *st;
	char *sl;
	int r;

	a->nmissing = 0;
	if (pair_full(s, a))
		return 0;
	if (a->nslaves > sizeof(zero) || (sl = slaves_join(a->slaves,
	    a->nslaves)) == NULL)
		return -1;
	if (sqldb_exec(&s->d, "SAVEPOINT a") == -1) {
		free(sl);
		return -1;
	}
	/* Delete each chunk; a missing (or repeated) one shows as absent. */
	for (i = 0; i < nch; i++) {
		st = sqldb_st(&s->d, ST_SEL_ORD);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)a->ords[i]);
		r = sqlite3_step(st);
		if (r != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 16 ||
		    memcmp(sqlite3_column_blob(st, 0), a->chunks + 16 * i, 16) != 0) {
			sqlite3_reset(st);
			memcpy(a->missing[a->nmissing++], a->chunks + 16 * i, 16);
			continue;
		}
		aad_chunk(s, a->ords[i], a->chunks + 16 * i);
		if ((size_t)sqlite3_column_bytes(st, 2) != s->kb + SEAL_OVH ||
		    unseal_rec(s, sqlite3_column_int64(st, 1),
		    sqlite3_column_blob(st, 2), s->kb + SEAL_OVH,
		    tmp + (i % a->per) * s->kb) == -1) {
			/* Missing for the peer, which drops its copy. */
			log_warn("store: chunk at position %llu does not "
			    "authenticate (its record was edited or damaged): "
			    "not used", (unsigned long long)a->ords[i]);
			sqlite3_reset(st);
			memcpy(a->missing[a->nmissing++], a->chunks + 16 * i, 16);
			continue;
		}
		sqlite3_reset(st);
		st = sqldb_st(&s->d, ST_DEL_ORD);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)a->ords[i]);
		if (sqldb_done(&s->d, st, "delete chunk") == -1)
			goto fail;
		if (a->nmissing > 0 || i % a->per != a->per - 1)
			continue;
		/* The key: its chunks concatenated, truncated to its size. */
		k = i / a->per;
		aad_key(s, a->ids + 16 * k, a->size_bytes, a->t, a->master, sl,
		    zero, a->nslaves);
		if (sealep_seal(s->ep, tmp, a->size_bytes, ct) == -1)
			goto fail;
		st = sqldb_st(&s->d, ST_INS_KEY);
		sqlite3_bind_blob(st, 1, a->ids + 16 * k, 16, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, a->master, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sl, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, zero, (int)a->nslaves, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, a->size_bytes);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)a->t);
		sqlite3_bind_int64(st, 7, sealep_epoch(s->ep));
		sqlite3_bind_blob(st, 8, ct, (int)(a->size_bytes + SEAL_OVH),
		    SQLITE_STATIC);
		r = sqlite3_step(st);
		sqlite3_reset(st);
		if (r == SQLITE_CONSTRAINT) {
			a->result = 2;
			goto undo;
		}
		if (r != SQLITE_DONE)
			goto fail;
	}
	if (a->nmissing > 0) {
		a->result = 1;
		goto undo;
	}
	free(sl);
	a->result = 0;
	s->nchunks -= nch;
	s->nakeys += a->nkeys;
	pairs_assign(s, a, 1);
	return sqldb_exec(&s->d, "RELEASE a");
undo:
	free(sl);
	if (sqldb_exec(&s->d, "ROLLBACK TO a") == -1)
		return -1;
	return sqldb_exec(&s->d, "RELEASE a");
fail:
	free(sl);
	(void)sqldb_exec(&s->d, "ROLLBACK TO a");
	(void)sqldb_exec(&s->d, "RELEASE a");
	return -1;
}

int
store_assign(struct store *s, struct store_assign *v, size_t n)
{
	size_t i, need = 0, maxper = 1, maxsz = 1;
	size_t nch0 = 0, nak0 = 0;
	uint8_t *tmp = NULL, *ct = NULL;
	uint64_t now = time_real_ms();
	int rc = 0;

	for (i = 0; i < n; i++) {
		v[i].result = 1;
		v[i].nmissing = 0;
		v[i].t = now;
	}
	pthread_mutex_lock(&s->mu);
	if (s->d.db == NULL) {
		for (i = 0; i < n && rc == 0; i++)
			rc = m_assign_one(s, &v[i]);
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	for (i = 0; i < n; i++) {
		need += v[i].nkeys;
		if (v[i].per > maxper)
			maxper = v[i].per;
		if (v[i].size_bytes > maxsz)
			maxsz = v[i].size_bytes;
	}
	tmp = sec_alloc(maxper * s->kb + maxper * s->kb);
	ct = sec_alloc(maxsz + SEAL_OVH);
	nch0 = s->nchunks;
	nak0 = s->nakeys;
	if (tmp == NULL || ct == NULL || ep_ensure(s, need) == -1 ||
	    tx_begin(s, 1) == -1) {
		rc = -1;
		goto done;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = q_assign_one(s, &v[i], tmp, ct);
	if (rc == 0 && sqldb_commit(&s->d) == -1)
		rc = -1;
	if (rc == -1) {
		sqldb_rollback(&s->d);
		s->nchunks = nch0;
		s->nakeys = nak0;
		for (i = 0; i < n; i++)
			if (v[i].result == 0) {
				pairs_assign(s, &v[i], -1);
				v[i].result = 1;
			}
	}
done:
	pthread_mutex_unlock(&s->mu);
	sec_free(tmp, maxper * s->kb * 2);
	sec_free(ct, maxsz + SEAL_OVH);
	return rc;
}

/* ---------------------------------------------------------------- take */

static int
expired(const struct store *s, uint64_t t, uint64_t now)
{
	return s->ttl_ms > 0 && now >= t + s->ttl_ms;
}

static enum store_rc
m_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n,
    struct etsi_keys *out)
{
	struct akey *ak;
	size_t i, j;
	enum store_rc rc = STORE_OK;
	uint64_t now = time_real_ms();
	int unauth = 0;

	for (i = 0; i < n && rc == STORE_OK; i++) {
		ak = valid[i] ? (struct akey *)h_find(s, &s->kt, ids + 16 * i) : NULL;
		if (ak == NULL || ak->mark || strcmp(ak->master, master) != 0 ||
		    expired(s, ak->t, now)) {
			rc = STORE_NOTFOUND;
			break;
		}
		ak->mark = 1;		/* a repeated ID in one request */
		for (j = 0; j < ak->nslaves; j++)
			if (strcmp(ak->slaves[j], caller) == 0)
				break;
		if (j == ak->nslaves)
			unauth = 1;
		else if (ak->taken[j])
			rc = STORE_NOTFOUND;
	}
	for (j = 0; j < i + (i < n); j++)
		if (valid[j] && (ak = (struct akey *)h_find(s, &s->kt, ids + 16 * j)))
			ak->mark = 0;
	if (rc == STORE_OK && unauth)
		rc = STORE_UNAUTH;
	if (rc != STORE_OK)
		return rc;
	for (i = 0; i < n; i++) {
		ak = (struct akey *)h_find(s, &s->kt, ids + 16 * i);
		out->v[i].key = sec_alloc(ak->len);
		if (out->v[i].key == NULL) {
			for (j = 0; j < i; j++) {
				sec_free(out->v[j].key, out->v[j].len);
				out->v[j].key = NULL;
				out->v[j].len = 0;
			}
			return STORE_ERR;
		}
		memcpy(out->v[i].key, ak->key, ak->len);
		out->v[i].len = ak->len;
	}
	for (i = 0; i < n; i++) {
		ak = (struct akey *)h_find(s, &s->kt, ids + 16 * i);
		for (j = 0; j < ak->nslaves; j++)
			if (strcmp(ak->slaves[j], caller) == 0 && !ak->taken[j]) {
				ak->taken[j] = 1;
				ak->nleft--;
			}
		(void)pair_add(s, master, caller, -1);
		if (ak->nleft == 0)
			m_akey_del(s, ak);
	}
	return STORE_OK;
}

/* Per requested key: which slave the caller is, and its row. */
struct q_tk {
	int		 idx;
	size_t		 ns;
	uint8_t		 taken[ETSI_MAX_SLAVES + 1];
	uint64_t	 size, t;
	char		*slaves;	/* kept to seal the row again */
};

static void
q_bad_key(const uint8_t id[16])
{
	char u[UUID_STRLEN + 1];

	uuid_fmt(id, u);
	log_warn("store: assigned key %s does not authenticate (its record "
	    "was edited or damaged): refused", u);
}

/* Checks and opens key i of a take; STORE_OK, or why not. */
static enum store_rc
q_take_one(struct store *s, const char *caller, const char *master,
    const uint8_t id[16], uint64_t now, struct q_tk *tk, struct etsi_key *k)
{
	sqlite3_stmt *st = sqldb_st(&s->d, ST_SEL_KEY);
	enum store_rc rc = STORE_NOTFOUND;
	const char *m, *sl;
	size_t len;

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
	aad_key(s, id, tk->size, tk->t, m, sl, tk->taken, tk->ns);
	if (unseal_rec(s, sqlite3_column_int64(st, 5),
	    sqlite3_column_blob(st, 6), len, k->key) == -1) {
		q_bad_key(id);
		goto done;
	}
	if (expired(s, tk->t, now))
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
	sqlite3_stmt *st;
	size_t j;

	tk->taken[tk->idx] = 1;
	for (j = 0; j < tk->ns && tk->taken[j]; j++)
		;
	if (j == tk->ns) {
		st = sqldb_st(&s->d, ST_DEL_KEY);
		sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
		(*removed)++;
	} else {
		aad_key(s, id, tk->size, tk->t, master, tk->slaves, tk->taken,
		    tk->ns);
		if (sealep_seal(s->ep, k->key, k->len, ct) == -1)
			return -1;
		st = sqldb_st(&s->d, ST_UPD_TAKEN);
		sqlite3_bind_blob(st, 1, tk->taken, (int)tk->ns, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, sealep_epoch(s->ep));
		sqlite3_bind_blob(st, 3, ct, (int)(k->len + SEAL_OVH), SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, id, 16, SQLITE_STATIC);
	}
	return sqldb_done(&s->d, st, "take key");
}

static enum store_rc
q_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n,
    struct etsi_keys *out)
{
	enum store_rc rc = STORE_ERR, r;
	struct q_tk *tk;
	uint8_t *ct = NULL;
	uint64_t now = time_real_ms();
	size_t i, j, removed = 0, ctlen = ETSI_MAX_KEY_BYTES + SEAL_OVH;
	int unauth = 0;

	if ((tk = calloc(n, sizeof(*tk))) == NULL)
		return STORE_ERR;
	/* Every key may be sealed again (several slaves): room for n seals. */
	if ((ct = sec_alloc(ctlen)) == NULL || ep_ensure(s, n) == -1 ||
	    tx_begin(s, 1) == -1) {
		sec_free(ct, ctlen);
		free(tk);
		return STORE_ERR;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (valid[i] && memcmp(ids + 16 * i, ids + 16 * j, 16) == 0)
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
		if (q_take_commit(s, master, ids + 16 * i, &tk[i], &out->v[i], ct,
		    &removed) == -1)
			goto done;
	/* Committed (fsync'd) before a single byte leaves this function. */
	if (sqldb_commit(&s->d) == -1)
		goto done;
	s->nakeys -= removed;
	for (i = 0; i < n; i++)
		(void)pair_add(s, master, caller, -1);
	rc = STORE_OK;
done:
	if (rc != STORE_OK) {
		sqldb_rollback(&s->d);
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

enum store_rc
store_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n,
    struct etsi_keys *out)
{
	enum store_rc rc;

	pthread_mutex_lock(&s->mu);
	rc = s->d.db ? q_take(s, caller, master, ids, valid, n, out) :
	    m_take(s, caller, master, ids, valid, n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ------------------------------------------------------------ expiry */

static size_t
m_expire(struct store *s, uint64_t now)
{
	struct akey *ak;
	size_t n = 0, j;

	while ((ak = s->ahead) != NULL && expired(s, ak->t, now)) {
		for (j = 0; j < ak->nslaves; j++)
			if (!ak->taken[j])
				(void)pair_add(s, ak->master, ak->slaves[j], -1);
		m_akey_del(s, ak);
		n++;
	}
	return n;
}

/* Rebuilds the per-pair counts from the table (after a failed sweep). */
static void
q_recount(struct store *s)
{
	size_t i;

	for (i = 0; i < s->npairs; i++)
		s->pairs[i].n = 0;
	s->nakeys = 0;
	if (sql_count(s) == -1)
		log_err("store: cannot count the assigned keys");
}

/* Deletes (secure_delete: overwritten) up to SWEEP_MAX expired rows. */
static int
q_expire(struct store *s, uint64_t now, size_t *n)
{
	sqlite3_stmt *st;
	uint8_t *ids;
	size_t i, k = 0;
	int rc = -1;

	if ((ids = malloc(SWEEP_MAX * 16)) == NULL)
		return -1;
	if (tx_begin(s, 0) == -1) {
		free(ids);
		return -1;
	}
	st = sqldb_st(&s->d, ST_SEL_OLDKEYS);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(now - s->ttl_ms));
	while (k < SWEEP_MAX && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 16)
			continue;
		memcpy(ids + 16 * k++, sqlite3_column_blob(st, 0), 16);
		(void)slaves_each((const char *)sqlite3_column_text(st, 2),
		    sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3),
		    (const char *)sqlite3_column_text(st, 1), s, -1);
	}
	sqlite3_reset(st);
	for (i = 0; i < k; i++) {
		st = sqldb_st(&s->d, ST_DEL_KEY);
		sqlite3_bind_blob(st, 1, ids + 16 * i, 16, SQLITE_STATIC);
		if (sqldb_done(&s->d, st, "expire key") == -1)
			goto done;
	}
	if (sqldb_commit(&s->d) == -1)
		goto done;
	s->nakeys -= k < s->nakeys ? k : s->nakeys;
	*n = k;
	rc = 0;
done:
	if (rc == -1) {
		sqldb_rollback(&s->d);
		q_recount(s);
	}
	free(ids);
	return rc;
}

int
store_expire(struct store *s, uint64_t now_ms, size_t *n)
{
	int rc = 0;

	*n = 0;
	pthread_mutex_lock(&s->mu);
	if (s->ttl_ms > 0 && now_ms >= s->ttl_ms) {
		if (s->d.db)
			rc = q_expire(s, now_ms, n);
		else
			*n = m_expire(s, now_ms);
		s->stats.expired += *n;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

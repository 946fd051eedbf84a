/*
 * Key store, in-memory backend (store_be.h): chunks live in a hash table
 * (by ID) threaded on a doubly linked list in arrival order; assigned keys
 * in a second hash table, on a list in creation order (for expiry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/htab.h"
#include "simulator/store_be.h"

struct chunk {
	struct htab_node h; /* first member */
	struct chunk	*prev, *next;
	uint64_t	 ord; /* STORE_ORD(batch, index) */
	uint8_t		 mark;
	uint8_t		 key[];
};

struct akey {
	struct htab_node h;	      /* first member */
	struct akey	*prev, *next; /* creation order, for expiry */
	uint64_t	 t;	      /* created, ms since the epoch */
	char		*master;
	char	       **slaves;
	uint8_t		*taken;
	size_t		 nslaves;
	size_t		 nleft;
	uint8_t		 mark;
	size_t		 len;
	uint8_t		*key; /* sec_alloc */
};

struct mem {
	struct htab   ct;	     /* chunks */
	struct htab   kt;	     /* assigned keys */
	struct chunk *head, *tail;   /* oldest .. newest */
	struct akey  *ahead, *atail; /* assigned keys, oldest .. newest */
};

static struct mem *
mem(struct store *s)
{
	return s->be;
}

/* ------------------------------------------------------- memory chunks */

static void
m_link_tail(struct store *s, struct chunk *c)
{
	c->next = NULL;
	c->prev = mem(s)->tail;
	if (mem(s)->tail)
		mem(s)->tail->next = c;
	else
		mem(s)->head = c;
	mem(s)->tail = c;
}

static void
m_link_head(struct store *s, struct chunk *c)
{
	c->prev = NULL;
	c->next = mem(s)->head;
	if (mem(s)->head)
		mem(s)->head->prev = c;
	else
		mem(s)->tail = c;
	mem(s)->head = c;
}

static void
m_unlink(struct store *s, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		mem(s)->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		mem(s)->tail = c->prev;
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
	htab_del(&mem(s)->ct, &c->h);
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
	size_t	     sz, i, ml = strlen(a->master) + 1, sl = 0, l;
	char	    *p;

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
	if (htab_add(&mem(s)->kt, &ak->h) == -1)
		return -1;
	ak->next = NULL;
	ak->prev = mem(s)->atail;
	if (mem(s)->atail)
		mem(s)->atail->next = ak;
	else
		mem(s)->ahead = ak;
	mem(s)->atail = ak;
	s->nakeys++;
	return 0;
}

/* Removes ak from the table and the list, wipes and frees it. */
static void
m_akey_del(struct store *s, struct akey *ak)
{
	htab_del(&mem(s)->kt, &ak->h);
	if (ak->prev)
		ak->prev->next = ak->next;
	else
		mem(s)->ahead = ak->next;
	if (ak->next)
		ak->next->prev = ak->prev;
	else
		mem(s)->atail = ak->prev;
	s->nakeys--;
	m_akey_free(ak);
}

static int
m_add_chunks(struct store *s, uint64_t seq, size_t n, const uint8_t *ids,
    const uint8_t *keys)
{
	struct chunk *c;
	size_t	      i;

	for (i = 0; i < n; i++) {
		if (htab_find(&mem(s)->ct, ids + 16 * i) != NULL)
			continue;
		c = m_chunk_new(s, ids + 16 * i, STORE_ORD(seq, i),
		    keys + i * s->kb);
		if (c == NULL)
			return -1; /* the ones before stay: the peer re-syncs */
		if (htab_add(&mem(s)->ct, &c->h) == -1) {
			m_chunk_free(s, c);
			return -1;
		}
		m_link_tail(s, c);
		s->nchunks++;
	}
	return 0;
}

static int
m_reserve(struct store *s, struct store_resv *r)
{
	struct chunk *c;
	size_t	      i;

	for (i = 0; i < r->n; i++) {
		c = r->newest ? mem(s)->tail : mem(s)->head;
		memcpy(r->ids[i], c->h.id, 16);
		r->ord[i] = c->ord;
		memcpy(r->keys + i * s->kb, c->key, s->kb);
		m_chunk_del(s, c);
	}
	return 0;
}

static int
m_putback(struct store *s, struct store_resv *r, const uint8_t *drop)
{
	struct chunk *c;
	size_t	      i, k;

	/* Reverse order so that the first one taken ends up at its end again. */
	for (k = r->n; k-- > 0;) {
		i = k;
		if (drop && drop[i])
			continue;
		if (htab_find(&mem(s)->ct, r->ids[i]) != NULL)
			continue;
		c = m_chunk_new(s, r->ids[i], r->ord[i], r->keys + i * s->kb);
		if (c == NULL)
			return -1;
		if (htab_add(&mem(s)->ct, &c->h) == -1) {
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
m_assign_one(struct store *s, struct store_assign *a)
{
	size_t	       nch = a->nkeys * a->per, i, k;
	struct chunk **cv;
	struct akey   *ak;
	int	       rc = -1;

	a->nmissing = 0;
	if (store_pair_full(s, a))
		return 0;
	if ((cv = calloc(nch, sizeof(*cv))) == NULL)
		return -1;
	/* Find every chunk once; a repeated one counts as missing. */
	for (i = 0; i < nch; i++) {
		cv[i] =
		    (struct chunk *)htab_find(&mem(s)->ct, a->chunks + 16 * i);
		if (cv[i] == NULL || cv[i]->mark) {
			memcpy(a->missing[a->nmissing++], a->chunks + 16 * i,
			    16);
			cv[i] = NULL;
		} else
			cv[i]->mark = 1;
	}
	for (k = 0;
	     k < a->nkeys && a->nmissing == 0 && a->result != STORE_DUPID;
	     k++) {
		if (htab_find(&mem(s)->kt, a->ids + 16 * k) != NULL)
			a->result = STORE_DUPID;
		for (i = 0; i < k && a->result != STORE_DUPID; i++)
			if (memcmp(a->ids + 16 * i, a->ids + 16 * k, 16) == 0)
				a->result = STORE_DUPID;
	}
	if (a->nmissing > 0 || a->result == STORE_DUPID) {
		if (a->nmissing > 0)
			a->result = STORE_MISSING;
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
	store_pairs_assign(s, a, 1);
	a->result = STORE_OK;
	rc = 0;
done:
	if (rc == -1) {
		/* Out of memory: remove the keys added so far. */
		for (k = 0; k < a->nkeys; k++) {
			ak = (struct akey *)htab_find(&mem(s)->kt,
			    a->ids + 16 * k);
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

static enum store_rc
m_take(struct store *s, const char *caller, const char *master,
    const uint8_t *ids, const uint8_t *valid, size_t n, struct etsi_keys *out)
{
	struct akey  *ak;
	size_t	      i, j;
	enum store_rc rc = STORE_OK;
	uint64_t      now = time_real_ms();
	int	      unauth = 0;

	for (i = 0; i < n && rc == STORE_OK; i++) {
		ak = valid[i] ?
		    (struct akey *)htab_find(&mem(s)->kt, ids + 16 * i) :
		    NULL;
		if (ak == NULL || ak->mark || strcmp(ak->master, master) != 0 ||
		    store_expired(s, ak->t, now)) {
			rc = STORE_NOTFOUND;
			break;
		}
		ak->mark = 1; /* a repeated ID in one request */
		for (j = 0; j < ak->nslaves; j++)
			if (strcmp(ak->slaves[j], caller) == 0)
				break;
		if (j == ak->nslaves)
			unauth = 1;
		else if (ak->taken[j])
			rc = STORE_NOTFOUND;
	}
	for (j = 0; j < i + (i < n); j++)
		if (valid[j] &&
		    (ak = (struct akey *)htab_find(&mem(s)->kt, ids + 16 * j)))
			ak->mark = 0;
	if (rc == STORE_OK && unauth)
		rc = STORE_UNAUTH;
	if (rc != STORE_OK)
		return rc;
	for (i = 0; i < n; i++) {
		ak = (struct akey *)htab_find(&mem(s)->kt, ids + 16 * i);
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
		ak = (struct akey *)htab_find(&mem(s)->kt, ids + 16 * i);
		for (j = 0; j < ak->nslaves; j++)
			if (strcmp(ak->slaves[j], caller) == 0 &&
			    !ak->taken[j]) {
				ak->taken[j] = 1;
				ak->nleft--;
			}
		(void)store_pair_add(s, master, caller, -1);
		if (ak->nleft == 0)
			m_akey_del(s, ak);
	}
	return STORE_OK;
}

static int
m_expire(struct store *s, uint64_t now, size_t *expired)
{
	struct akey *ak;
	size_t	     n = 0, j;

	while ((ak = mem(s)->ahead) != NULL && store_expired(s, ak->t, now)) {
		for (j = 0; j < ak->nslaves; j++)
			if (!ak->taken[j])
				(void)store_pair_add(s, ak->master,
				    ak->slaves[j], -1);
		m_akey_del(s, ak);
		n++;
	}
	*expired = n;
	return 0;
}

/* ---------------------------------------------------------- the rest */

static int
m_drop(struct store *s, bool all, uint64_t seq, const uint8_t *peer_gen,
    size_t *dropped)
{
	struct chunk *c, *nc;
	size_t	      n = 0;

	(void)peer_gen; /* kept by the front */
	for (c = mem(s)->head; c != NULL; c = nc) {
		nc = c->next;
		if (all || STORE_ORD_SEQ(c->ord) > seq) {
			m_chunk_del(s, c);
			n++;
		}
	}
	*dropped = n;
	return 0;
}

static int
m_assign(struct store *s, struct store_assign *v, size_t n)
{
	size_t i;
	int    rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		rc = m_assign_one(s, &v[i]);
	return rc;
}

static void
m_size_hint(struct store *s, size_t nchunks)
{
	htab_presize(&mem(s)->ct, nchunks);
}

static void
m_close(struct store *s)
{
	struct mem   *m = mem(s);
	struct chunk *c, *nc;
	struct akey  *ak, *nak;

	if (m == NULL)
		return;
	for (c = m->head; c != NULL; c = nc) {
		nc = c->next;
		m_chunk_free(s, c);
	}
	for (ak = m->ahead; ak != NULL; ak = nak) {
		nak = ak->next;
		m_akey_free(ak);
	}
	htab_free(&m->ct);
	htab_free(&m->kt);
	free(m);
	s->be = NULL;
}

static const struct store_ops mem_ops = {
	.add_chunks = m_add_chunks,
	.drop = m_drop,
	.reserve = m_reserve,
	.putback = m_putback,
	.assign = m_assign,
	.take = m_take,
	.expire = m_expire,
	.size_hint = m_size_hint,
	.close = m_close,
};

int
store_mem_open(struct store *s, char *err, size_t errlen)
{
	struct mem *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return -1;
	}
	s->ops = &mem_ops;
	s->be = m;
	if (htab_init(&m->ct) == -1 || htab_init(&m->kt) == -1) {
		snprintf(err, errlen, "store: cannot initialise");
		return -1;
	}
	if (RAND_bytes(s->gen, 16) != 1) {
		snprintf(err, errlen, "store: no entropy");
		return -1;
	}
	return 0;
}

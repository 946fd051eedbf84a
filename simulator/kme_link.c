/*
 * What one simulated KME does when its peer speaks on the QKD link
 * (kme_int.h): the HELLO exchange, key generation (the transmitter's KEYS
 * batches and the receiver's KEYS_ACKs) and the peer side of an assignment
 * (ASSIGN, committed in bursts, answered ASSIGN_ACK or ASSIGN_NACK). Every
 * callback runs on the link's I/O thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/kme_int.h"

#define MAX_INFLIGHT 64 /* unacknowledged KEYS batches */

static void
batch_free(struct kme_batch *b, size_t kb)
{
	if (b == NULL)
		return;
	free(b->ids);
	sec_free(b->keys, b->n * kb);
	free(b);
}

static void
passign_free(struct kme_passign *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nslaves; i++)
		free(p->slaves[i]);
	free(p->ids);
	free(p->chunks);
	free(p->ords);
	free(p->missing);
	free(p);
}

void
kme_link_reset(struct kme *k)
{
	struct kme_batch *b;
	size_t		  i;

	while ((b = k->bhead) != NULL) {
		k->bhead = b->next;
		batch_free(b, k->kb);
	}
	k->btail = NULL;
	k->nbatch = k->bkeys = 0;
	for (i = 0; i < k->npa; i++)
		passign_free(k->pa[i]);
	k->npa = 0;
}

/* ---------------------------------------------------------------- HELLO */

static int
cb_hello(void *arg, struct buf *b)
{
	struct kme *k = arg;
	uint8_t	    gen[16];
	size_t	    i;
	int	    rc;

	store_gen(k->st, gen);
	rc = buf_add_u8(b, KME_PROTO_VERSION) |
	    buf_add_u8(b, (uint8_t)k->transmitter) |
	    buf_add_u32(b, k->key_size) | buf_add(b, gen, 16) |
	    buf_add_u64(b, store_last_seq(k->st)) | kme_put_str(b, k->id) |
	    buf_add_u16(b, (uint16_t)k->nsae);
	for (i = 0; i < k->nsae; i++)
		rc |= kme_put_str(b, k->sae[i]);
	return rc ? -1 : 0;
}

/* The peer's HELLO, parsed up to its SAE list. */
struct hello {
	uint8_t	 ver, tx, gen[16];
	uint32_t key_size;
	uint64_t last;
	uint16_t nsae;
	char	 id[ETSI_ID_MAX + 1];
};

/* Reads the fixed part of a HELLO and checks it pairs with this KME. */
static int
hello_check(struct kme *k, struct rd *r, struct hello *h, char *why,
    size_t whylen)
{
	if (rd_u8(r, &h->ver) == -1 || rd_u8(r, &h->tx) == -1 ||
	    rd_u32(r, &h->key_size) == -1 || rd_bytes(r, h->gen, 16) == -1 ||
	    rd_u64(r, &h->last) == -1 ||
	    kme_get_str(r, h->id, sizeof(h->id)) == -1 ||
	    rd_u16(r, &h->nsae) == -1) {
		snprintf(why, whylen, "malformed HELLO");
		return -1;
	}
	if (h->ver != KME_PROTO_VERSION) {
		snprintf(why, whylen, "protocol version %u, expected %u",
		    h->ver, (unsigned)KME_PROTO_VERSION);
		return -1;
	}
	if (strcmp(h->id, k->peer_id) != 0) {
		snprintf(why, whylen, "peer says it is KME \"%s\"", h->id);
		return -1;
	}
	if (h->key_size != k->key_size) {
		snprintf(why, whylen, "peer key_size is %u bits, ours is %u",
		    h->key_size, k->key_size);
		return -1;
	}
	if (!!h->tx == !!k->transmitter) {
		snprintf(why, whylen, "%s KMEs are configured as transmitter",
		    h->tx ? "both" : "neither of the");
		return -1;
	}
	return 0;
}

/* The SAE IDs at the end of a HELLO; NULL if malformed (why set). */
static char **
hello_saes(struct rd *r, uint16_t ns, char *why, size_t whylen)
{
	char **v, s[ETSI_ID_MAX + 1];
	size_t i;

	if ((v = calloc(ns ? ns : 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < ns; i++)
		if (kme_get_str(r, s, sizeof(s)) == -1 ||
		    (v[i] = strdup(s)) == NULL) {
			kme_strv_free(v, i);
			snprintf(why, whylen, "malformed SAE list in HELLO");
			return NULL;
		}
	return v;
}

/*
 * Drops the chunks the peer cannot have: all of them if its store is new,
 * else (receiver) those of batches the transmitter never stored.
 */
static void
hello_resync(struct kme *k, const struct hello *h)
{
	size_t dropped = 0, dropped2 = 0;

	pthread_mutex_lock(&k->order_mu);
	if (store_peer_gen(k->st, h->gen, &dropped) == 0 && !k->transmitter)
		(void)store_drop_after(k->st, h->last, &dropped2);
	pthread_mutex_unlock(&k->order_mu);
	if (dropped)
		log_info("kme: peer KME %s has a new key store: dropped %zu "
			 "unassigned keys",
		    k->peer_id, dropped);
	if (dropped2)
		log_info("kme: dropped %zu keys that the transmitter never "
			 "confirmed",
		    dropped2);
}

static int
cb_up(void *arg, const uint8_t *p, size_t n, char *why, size_t whylen)
{
	struct kme  *k = arg;
	struct hello h;
	struct rd    r;
	char	   **v;

	rd_init(&r, p, n);
	if (hello_check(k, &r, &h, why, whylen) == -1 ||
	    (v = hello_saes(&r, h.nsae, why, whylen)) == NULL)
		return -1;
	hello_resync(k, &h);
	pthread_mutex_lock(&k->mu);
	kme_strv_free(k->rsae, k->nrsae);
	k->rsae = v;
	k->nrsae = h.nsae;
	pthread_mutex_unlock(&k->mu);
	k->gen_last_ns = time_mono_ns();
	k->gen_acc = 0;
	return 0;
}

static void
cb_down(void *arg)
{
	kme_link_reset(arg);
}

/* ----------------------------------------------------------- generation */

/* Keys of key_size the elapsed time has produced and the store has room for. */
static size_t
gen_due(struct kme *k, size_t *room)
{
	uint64_t now = time_mono_ns(), dt, unit, nk;
	size_t	 stored;

	dt = now - k->gen_last_ns;
	k->gen_last_ns = now;
	if (dt > 1000000000ULL)
		dt = 1000000000ULL;
	k->gen_acc += k->key_rate * dt;
	unit = (uint64_t)k->key_size * 1000000000ULL;
	nk = k->gen_acc / unit;
	k->gen_acc -= nk * unit;
	stored = store_count(k->st);
	*room = stored + k->bkeys < k->max_key_count ?
	    k->max_key_count - stored - k->bkeys :
	    0;
	if (*room == 0)
		k->gen_acc = 0; /* a full store banks no credit */
	return (size_t)nk;
}

/* n fresh chunks, sent as one KEYS batch and kept until its ACK. */
static int
gen_batch(struct kme *k, size_t n)
{
	struct kme_batch *b;
	struct buf	  f;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	b->n = n;
	b->ids = malloc(n * 16);
	b->keys = sec_alloc(n * k->kb);
	if (b->ids == NULL || b->keys == NULL ||
	    kme_uuid_bulk(b->ids, n) == -1 ||
	    RAND_bytes(b->keys, (int)(n * k->kb)) != 1) {
		batch_free(b, k->kb);
		return -1;
	}
	b->seq = k->next_seq++;
	buf_init(&f, LINK_FRAME_MAX);
	if (buf_add_u64(&f, b->seq) == -1 ||
	    buf_add_u32(&f, (uint32_t)n) == -1 ||
	    buf_add(&f, b->ids, n * 16) == -1 ||
	    buf_add(&f, b->keys, n * k->kb) == -1 ||
	    link_send(k->link, KT_KEYS, 0, f.data, f.len) == -1) {
		buf_free(&f);
		batch_free(b, k->kb);
		return -1;
	}
	buf_free(&f);
	if (k->btail)
		k->btail->next = b;
	else
		k->bhead = b;
	k->btail = b;
	k->nbatch++;
	k->bkeys += n;
	log_debug("kme: sent key batch %llu (%zu keys)",
	    (unsigned long long)b->seq, n);
	return 0;
}

/* Transmitter: turns elapsed time into fresh key material for both sides. */
static void
cb_tick(void *arg)
{
	struct kme *k = arg;
	size_t	    nk, room, per_frame, n;

	kme_sweep(k);
	if (!k->transmitter)
		return;
	nk = gen_due(k, &room);
	per_frame = (LINK_FRAME_MAX - 12) / (16 + k->kb);
	while (nk > 0 && room > 0 && k->nbatch < MAX_INFLIGHT) {
		n = nk;
		if (n > room)
			n = room;
		if (n > per_frame)
			n = per_frame;
		if (gen_batch(k, n) == -1)
			return;
		nk -= n;
		room -= n;
	}
}
/* ----------------------------------------------------------------- KEYS */

/* Receiver: store a batch, then acknowledge it. */
static void
on_keys(struct kme *k, const uint8_t *p, size_t n)
{
	struct rd      r;
	uint64_t       seq;
	uint32_t       cnt;
	const uint8_t *ids, *keys;
	uint8_t	       ack[9];
	int	       ok, i;

	rd_init(&r, p, n);
	if (k->transmitter || rd_u64(&r, &seq) == -1 ||
	    rd_u32(&r, &cnt) == -1 ||
	    rd_left(&r) != (size_t)cnt * (16 + k->kb) ||
	    rd_ptr(&r, &ids, (size_t)cnt * 16) == -1 ||
	    rd_ptr(&r, &keys, (size_t)cnt * k->kb) == -1) {
		log_warn("kme: malformed KEYS frame from %s ignored",
		    k->peer_id);
		return;
	}
	for (i = 0; i < 8; i++)
		ack[i] = (uint8_t)(seq >> (56 - 8 * i));
	pthread_mutex_lock(&k->order_mu);
	ok = store_add_chunks(k->st, seq, cnt, ids, keys) == 0;
	ack[8] = (uint8_t)ok;
	(void)link_send(k->link, KT_KEYS_ACK, 0, ack, sizeof(ack));
	pthread_mutex_unlock(&k->order_mu);
	if (!ok)
		log_err("kme: cannot store key batch %llu from %s",
		    (unsigned long long)seq, k->peer_id);
	else
		log_debug("kme: stored key batch %llu (%u keys)",
		    (unsigned long long)seq, cnt);
}

/* Transmitter: the receiver holds the batch, so we may hold it too. */
static void
on_keys_ack(struct kme *k, const uint8_t *p, size_t n)
{
	struct rd	  r;
	uint64_t	  seq;
	uint8_t		  ok;
	struct kme_batch *b = k->bhead;

	rd_init(&r, p, n);
	if (!k->transmitter || rd_u64(&r, &seq) == -1 || rd_u8(&r, &ok) == -1 ||
	    b == NULL || b->seq != seq) {
		log_warn("kme: unexpected KEYS_ACK from %s ignored",
		    k->peer_id);
		return;
	}
	k->bhead = b->next;
	if (k->bhead == NULL)
		k->btail = NULL;
	k->nbatch--;
	k->bkeys -= b->n;
	if (!ok)
		log_warn("kme: peer %s could not store key batch %llu: dropped",
		    k->peer_id, (unsigned long long)seq);
	else if (store_add_chunks(k->st, seq, b->n, b->ids, b->keys) == -1)
		log_err("kme: cannot store key batch %llu",
		    (unsigned long long)seq);
	batch_free(b, k->kb);
}

/* --------------------------------------------------------------- ASSIGN */

/* A new pending ASSIGN; NULL when out of memory (no answer: the master
 * times out). */
static struct kme_passign *
passign_new(struct kme *k, uint32_t reqid)
{
	struct kme_passign *a, **np;
	size_t		    nc;

	if (k->npa == k->capa) {
		nc = k->capa ? k->capa * 2 : 16;
		if ((np = realloc(k->pa, nc * sizeof(*np))) == NULL)
			return NULL;
		k->pa = np;
		k->capa = nc;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->reqid = reqid;
	k->pa[k->npa++] = a;
	return a;
}

static int
passign_bad(struct kme_passign *a, const char *why)
{
	a->bad = 1;
	if (why != NULL)
		snprintf(a->why, sizeof(a->why), "%s", why);
	return -1;
}

/* Size, number, chunks per key, master and slaves (all attached here). */
static int
assign_head(struct kme *k, struct kme_passign *a, struct rd *r, uint32_t *size,
    uint16_t *nkeys, uint16_t *per)
{
	char	s[ETSI_ID_MAX + 1];
	uint8_t ns;
	size_t	i;

	if (rd_u32(r, size) == -1 || rd_u16(r, nkeys) == -1 ||
	    rd_u16(r, per) == -1 ||
	    kme_get_str(r, a->master, sizeof(a->master)) == -1 ||
	    rd_u8(r, &ns) == -1 || ns == 0 || ns > ETSI_MAX_SLAVES + 1)
		return passign_bad(a, "malformed key assignment");
	for (i = 0; i < ns; i++) {
		if (kme_get_str(r, s, sizeof(s)) == -1)
			return passign_bad(a, "malformed key assignment");
		if ((a->slaves[a->nslaves] = strdup(s)) == NULL)
			return passign_bad(a, NULL);
		a->nslaves++;
		if (!kme_sae_is_local(k, s)) {
			snprintf(a->why, sizeof(a->why),
			    "slave SAE ID \"%s\" is "
			    "not attached to KME %s",
			    s, k->id);
			return passign_bad(a, NULL);
		}
	}
	return 0;
}

/* The key IDs, then the chunk IDs and positions; fills a->a. */
static int
assign_body(struct kme *k, struct kme_passign *a, struct rd *r, uint32_t size,
    uint16_t nkeys, uint16_t per)
{
	size_t i, nch = (size_t)nkeys * per;

	if (size == 0 || size % 8 != 0 || nkeys == 0 || per == 0 ||
	    size / 8 > ETSI_MAX_KEY_BYTES || (size_t)per * k->key_size < size ||
	    (size_t)(per - 1) * k->key_size >= size ||
	    rd_left(r) != (nkeys + nch) * 16 + nch * 8)
		return passign_bad(a, "malformed key assignment");
	a->ids = malloc((size_t)nkeys * 16);
	a->chunks = malloc(nch * 16);
	a->missing = malloc(nch * 16);
	a->ords = malloc(nch * sizeof(*a->ords));
	if (a->ids == NULL || a->chunks == NULL || a->missing == NULL ||
	    a->ords == NULL)
		return passign_bad(a, NULL);
	(void)rd_bytes(r, a->ids, (size_t)nkeys * 16);
	(void)rd_bytes(r, a->chunks, nch * 16);
	for (i = 0; i < nch; i++)
		(void)rd_u64(r, &a->ords[i]);
	a->a.ords = a->ords;
	a->a.nkeys = nkeys;
	a->a.ids = a->ids[0];
	a->a.size_bytes = size / 8;
	a->a.per = per;
	a->a.chunks = a->chunks[0];
	a->a.master = a->master;
	a->a.slaves = (const char *const *)a->slaves;
	a->a.nslaves = a->nslaves;
	a->a.missing = a->missing;
	return 0;
}

/* Peer side of an assignment: parse now, commit at flush. */
static void
on_assign(struct kme *k, uint32_t reqid, const uint8_t *p, size_t n)
{
	struct kme_passign *a;
	struct rd	    r;
	uint32_t	    size;
	uint16_t	    nkeys, per;

	if ((a = passign_new(k, reqid)) == NULL)
		return;
	rd_init(&r, p, n);
	if (assign_head(k, a, &r, &size, &nkeys, &per) == 0)
		(void)assign_body(k, a, &r, size, nkeys, per);
}

static void
reply_assign(struct kme *k, struct kme_passign *a, int stored)
{
	struct buf b;

	if (stored && a->a.result == STORE_OK) {
		(void)link_send(k->link, KT_ASSIGN_ACK, a->reqid, NULL, 0);
		return;
	}
	buf_init(&b, LINK_FRAME_MAX);
	if (stored && a->a.result == STORE_FULL) {
		char why[ETSI_ERRLEN];

		snprintf(why, sizeof(why),
		    "%zu keys from master SAE \"%.40s\" "
		    "wait for slave SAE \"%.40s\" at KME %.40s "
		    "(max_keys_per_pair %u)",
		    a->a.waiting, a->master, a->slaves[a->a.full_slave], k->id,
		    k->max_pair);
		log_info("kme: refused a key assignment: %s", why);
		(void)buf_add_u8(&b, NACK_FULL);
		(void)kme_put_str(&b, why);
	} else if (a->bad || (stored && a->a.result == STORE_DUPID)) {
		(void)buf_add_u8(&b, NACK_BADREQ);
		(void)kme_put_str(&b,
		    a->bad && a->why[0] ? a->why : "bad key assignment");
	} else if (!stored) {
		(void)buf_add_u8(&b, NACK_STORE);
	} else {
		(void)buf_add_u8(&b, NACK_MISSING);
		(void)buf_add_u32(&b, (uint32_t)a->a.nmissing);
		(void)buf_add(&b, a->a.missing, a->a.nmissing * 16);
	}
	(void)link_send(k->link, KT_ASSIGN_NACK, a->reqid, b.data, b.len);
	buf_free(&b);
}

/* Commits every ASSIGN of the burst in one store transaction, then answers. */
static void
cb_flush(void *arg)
{
	struct kme	    *k = arg;
	struct store_assign *v;
	size_t		     i, j = 0;
	int		     ok;

	if (k->npa == 0)
		return;
	v = calloc(k->npa, sizeof(*v));
	for (i = 0; v != NULL && i < k->npa; i++)
		if (!k->pa[i]->bad)
			v[j++] = k->pa[i]->a;
	ok = v != NULL && store_assign(k->st, v, j) == 0;
	for (i = 0, j = 0; i < k->npa; i++) {
		if (!k->pa[i]->bad && v != NULL)
			k->pa[i]->a = v[j++];
		reply_assign(k, k->pa[i], ok);
		if (ok && !k->pa[i]->bad && k->pa[i]->a.result == STORE_OK)
			log_debug("kme: committed assignment of %zu keys for "
				  "master %s",
			    k->pa[i]->a.nkeys, k->pa[i]->master);
		passign_free(k->pa[i]);
	}
	k->npa = 0;
	free(v);
}

static void
cb_frame(void *arg, uint8_t type, uint32_t reqid, const uint8_t *p, size_t n)
{
	struct kme *k = arg;

	switch (type) {
	case KT_KEYS: on_keys(k, p, n); break;
	case KT_KEYS_ACK: on_keys_ack(k, p, n); break;
	case KT_ASSIGN: on_assign(k, reqid, p, n); break;
	default:
		log_debug("kme: frame type 0x%02x from %s ignored", type,
		    k->peer_id);
	}
}

void
kme_link_ops(struct kme *k, struct link_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->arg = k;
	ops->hello = cb_hello;
	ops->up = cb_up;
	ops->down = cb_down;
	ops->frame = cb_frame;
	ops->flush = cb_flush;
	ops->tick = cb_tick;
}

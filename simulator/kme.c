/*
 * One simulated KME (kme.h): key generation over the emulated QKD link,
 * assignment of keys to (master, slaves) synchronised with the peer, and
 * delivery to the slaves. Transport in link.c, storage in store.c; the
 * protocol on the link is described in simulator/DESIGN-notes.md.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "simulator/kme.h"
#include "simulator/link.h"
#include "simulator/store.h"

#define PROTO_VERSION	1
#define KT_KEYS		0x10	/* transmitter -> receiver: a batch of chunks */
#define KT_KEYS_ACK	0x11	/* receiver -> transmitter: batch stored */
#define KT_ASSIGN	0x20	/* master's KME -> peer: commit an assignment */
#define KT_ASSIGN_ACK	(LINK_T_REPLY | 0x20)
#define KT_ASSIGN_NACK	(LINK_T_REPLY | 0x21)
#define NACK_MISSING	1	/* chunks missing at the peer (listed) */
#define NACK_BADREQ	2	/* a slave not attached there, bad sizes */
#define NACK_STORE	3	/* store failure at the peer: nothing committed */
#define NACK_FULL	4	/* a pair has max_keys_per_pair keys waiting (text) */
#define SWEEP_MS	1000	/* expired keys are wiped this often */
#define ASSIGN_TRIES	4
#define MAX_INFLIGHT	64	/* unacknowledged KEYS batches */
#define TICK_MS		10
#define DEFAULT_TIMEOUT_MS 2000

struct batch {
	struct batch	*next;
	uint64_t	 seq;
	size_t		 n;
	uint8_t		*ids;		/* n * 16 */
	uint8_t		*keys;		/* n * kb, sec_alloc */
};

/* An ASSIGN received from the peer, committed at the next flush. */
struct passign {
	uint32_t	 reqid;
	int		 bad;
	char		 why[ETSI_ERRLEN];
	char		 master[ETSI_ID_MAX + 1];
	char		*slaves[ETSI_MAX_SLAVES + 1];
	size_t		 nslaves;
	uint8_t		(*ids)[16];
	uint8_t		(*chunks)[16];
	uint64_t	*ords;
	uint8_t		(*missing)[16];
	struct store_assign a;
};

struct kme {
	/* configuration, owned copies */
	char		 *id;
	char		 *peer_id;
	char		**sae;
	size_t		  nsae;
	unsigned	  key_size, min_key_size, max_key_size, max_key_count;
	int		  transmitter;
	uint64_t	  key_rate;
	unsigned	  timeout_ms;
	int		  listen_side;
	size_t		  kb;
	unsigned	  key_ttl_s, max_pair;
	uint64_t	  last_sweep;	/* ms; under sweep_mu */
	pthread_mutex_t	  sweep_mu;

	struct store	 *st;
	struct link	 *link;

	/* Orders chunk arrival (store + KEYS_ACK) against reservation (+ ASSIGN). */
	pthread_mutex_t	  order_mu;

	pthread_mutex_t	  mu;		/* remote SAE list */
	char		**rsae;
	size_t		  nrsae;

	/* I/O thread only */
	uint64_t	  next_seq;
	uint64_t	  gen_last_ns;
	uint64_t	  gen_acc;	/* bit-nanoseconds not yet turned into keys */
	struct batch	 *bhead, *btail;
	size_t		  nbatch, bkeys;
	struct passign	**pa;
	size_t		  npa, capa;
};

/* ------------------------------------------------------------ helpers */

static int
put_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	if (n > 255)
		return -1;
	return buf_add_u8(b, (uint8_t)n) == -1 || buf_add(b, s, n) == -1 ? -1 : 0;
}

/* A length-prefixed ID string; -1 if truncated or not a valid ETSI ID. */
static int
get_str(struct rd *r, char *out, size_t cap)
{
	uint8_t n;

	if (rd_u8(r, &n) == -1 || (size_t)n + 1 > cap || rd_bytes(r, out, n) == -1)
		return -1;
	out[n] = '\0';
	return etsi_id_valid(out) ? 0 : -1;
}

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static int
in_list(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* Random version 4 UUIDs in bulk. */
static int
uuid_bulk(uint8_t *ids, size_t n)
{
	size_t i;

	if (n > 0 && RAND_bytes(ids, (int)(n * 16)) != 1)
		return -1;
	for (i = 0; i < n; i++) {
		ids[i * 16 + 6] = (uint8_t)((ids[i * 16 + 6] & 0x0f) | 0x40);
		ids[i * 16 + 8] = (uint8_t)((ids[i * 16 + 8] & 0x3f) | 0x80);
	}
	return 0;
}

static void
batch_free(struct batch *b, size_t kb)
{
	if (b == NULL)
		return;
	free(b->ids);
	sec_free(b->keys, b->n * kb);
	free(b);
}

static void
passign_free(struct passign *p)
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

/* Wipes expired assigned keys, at most once per SWEEP_MS (any thread). */
static void
kme_sweep(struct kme *k)
{
	uint64_t now = time_real_ms();
	size_t n = 0;

	if (k->key_ttl_s == 0 || pthread_mutex_trylock(&k->sweep_mu) != 0)
		return;
	if (now - k->last_sweep >= SWEEP_MS) {
		k->last_sweep = now;
		if (store_expire(k->st, now, &n) == -1)
			log_err("kme: cannot wipe expired keys");
		else if (n > 0)
			log_info("kme: %zu assigned keys not fetched within "
			    "key_ttl_s %u s: wiped", n, k->key_ttl_s);
	}
	pthread_mutex_unlock(&k->sweep_mu);
}

/* ------------------------------------------------------- link callbacks */

static int
cb_hello(void *arg, struct buf *b)
{
	struct kme *k = arg;
	uint8_t gen[16];
	size_t i;
	int rc;

	store_gen(k->st, gen);
	rc = buf_add_u8(b, PROTO_VERSION) | buf_add_u8(b, (uint8_t)k->transmitter) |
	    buf_add_u32(b, k->key_size) | buf_add(b, gen, 16) |
	    buf_add_u64(b, store_last_seq(k->st)) | put_str(b, k->id) |
	    buf_add_u16(b, (uint16_t)k->nsae);
	for (i = 0; i < k->nsae; i++)
		rc |= put_str(b, k->sae[i]);
	return rc ? -1 : 0;
}

static int
cb_up(void *arg, const uint8_t *p, size_t n, char *why, size_t whylen)
{
	struct kme *k = arg;
	struct rd r;
	uint8_t ver, tx, gen[16];
	uint32_t ks;
	uint64_t last;
	uint16_t ns;
	char id[ETSI_ID_MAX + 1], **v = NULL;
	size_t i, dropped = 0, dropped2 = 0;

	rd_init(&r, p, n);
	if (rd_u8(&r, &ver) == -1 || rd_u8(&r, &tx) == -1 || rd_u32(&r, &ks) == -1 ||
	    rd_bytes(&r, gen, 16) == -1 || rd_u64(&r, &last) == -1 ||
	    get_str(&r, id, sizeof(id)) == -1 || rd_u16(&r, &ns) == -1) {
		snprintf(why, whylen, "malformed HELLO");
		return -1;
	}
	if (ver != PROTO_VERSION) {
		snprintf(why, whylen, "protocol version %u, expected %u", ver,
		    PROTO_VERSION);
		return -1;
	}
	if (strcmp(id, k->peer_id) != 0) {
		snprintf(why, whylen, "peer says it is KME \"%s\"", id);
		return -1;
	}
	if (ks != k->key_size) {
		snprintf(why, whylen, "peer key_size is %u bits, ours is %u", ks,
		    k->key_size);
		return -1;
	}
	if (!!tx == !!k->transmitter) {
		snprintf(why, whylen, "%s KMEs are configured as transmitter",
		    tx ? "both" : "neither of the");
		return -1;
	}
	if ((v = calloc(ns ? ns : 1, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < ns; i++) {
		char s[ETSI_ID_MAX + 1];

		if (get_str(&r, s, sizeof(s)) == -1 || (v[i] = strdup(s)) == NULL) {
			strv_free(v, i);
			snprintf(why, whylen, "malformed SAE list in HELLO");
			return -1;
		}
	}
	pthread_mutex_lock(&k->order_mu);
	if (store_peer_gen(k->st, gen, &dropped) == 0 && !k->transmitter)
		(void)store_drop_after(k->st, last, &dropped2);
	pthread_mutex_unlock(&k->order_mu);
	if (dropped)
		log_info("kme: peer KME %s has a new key store: dropped %zu "
		    "unassigned keys", k->peer_id, dropped);
	if (dropped2)
		log_info("kme: dropped %zu keys that the transmitter never "
		    "confirmed", dropped2);
	pthread_mutex_lock(&k->mu);
	strv_free(k->rsae, k->nrsae);
	k->rsae = v;
	k->nrsae = ns;
	pthread_mutex_unlock(&k->mu);
	k->gen_last_ns = time_mono_ns();
	k->gen_acc = 0;
	return 0;
}

static void
cb_down(void *arg)
{
	struct kme *k = arg;
	struct batch *b;
	size_t i;

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

/* Transmitter: turns elapsed time into fresh key material for both sides. */
static void
cb_tick(void *arg)
{
	struct kme *k = arg;
	uint64_t now = time_mono_ns(), dt, unit, nk;
	size_t stored, room, per_frame, n;
	struct batch *b;
	struct buf f;

	kme_sweep(k);
	if (!k->transmitter)
		return;
	dt = now - k->gen_last_ns;
	k->gen_last_ns = now;
	if (dt > 1000000000ULL)
		dt = 1000000000ULL;
	k->gen_acc += k->key_rate * dt;
	unit = (uint64_t)k->key_size * 1000000000ULL;
	nk = k->gen_acc / unit;
	k->gen_acc -= nk * unit;
	stored = store_count(k->st);
	room = stored + k->bkeys < k->max_key_count ?
	    k->max_key_count - stored - k->bkeys : 0;
	if (room == 0) {
		k->gen_acc = 0;		/* a full store banks no credit */
		return;
	}
	per_frame = (LINK_FRAME_MAX - 12) / (16 + k->kb);
	while (nk > 0 && room > 0 && k->nbatch < MAX_INFLIGHT) {
		n = (size_t)nk;
		if (n > room)
			n = room;
		if (n > per_frame)
			n = per_frame;
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return;
		b->n = n;
		b->ids = malloc(n * 16);
		b->keys = sec_alloc(n * k->kb);
		if (b->ids == NULL || b->keys == NULL || uuid_bulk(b->ids, n) == -1 ||
		    RAND_bytes(b->keys, (int)(n * k->kb)) != 1) {
			batch_free(b, k->kb);
			return;
		}
		b->seq = k->next_seq++;
		buf_init(&f, LINK_FRAME_MAX);
		if (buf_add_u64(&f, b->seq) == -1 || buf_add_u32(&f, (uint32_t)n) == -1 ||
		    buf_add(&f, b->ids, n * 16) == -1 ||
		    buf_add(&f, b->keys, n * k->kb) == -1 ||
		    link_send(k->link, KT_KEYS, 0, f.data, f.len) == -1) {
			buf_free(&f);
			batch_free(b, k->kb);
			return;
		}
		buf_free(&f);
		if (k->btail)
			k->btail->next = b;
		else
			k->bhead = b;
		k->btail = b;
		k->nbatch++;
		k->bkeys += n;
		nk -= n;
		room -= n;
		log_debug("kme: sent key batch %llu (%zu keys)",
		    (unsigned long long)b->seq, n);
	}
}

/* Receiver: store a batch, then acknowledge it. */
static void
on_keys(struct kme *k, const uint8_t *p, size_t n)
{
	struct rd r;
	uint64_t seq;
	uint32_t cnt;
	const uint8_t *ids, *keys;
	uint8_t ack[9];
	int ok, i;

	rd_init(&r, p, n);
	if (k->transmitter || rd_u64(&r, &seq) == -1 || rd_u32(&r, &cnt) == -1 ||
	    rd_left(&r) != (size_t)cnt * (16 + k->kb) ||
	    rd_ptr(&r, &ids, (size_t)cnt * 16) == -1 ||
	    rd_ptr(&r, &keys, (size_t)cnt * k->kb) == -1) {
		log_warn("kme: malformed KEYS frame from %s ignored", k->peer_id);
		return;
	}
	for (i = 0; i < 8; i++)
		ack[i] = (uint8_t)(seq >> (56 - 8 * i));
	pthread_mutex_lock(&k->order_mu);
	ok = store_add_chunks(k->st, seq, cnt, ids,
	    keys) == 0;
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
	struct rd r;
	uint64_t seq;
	uint8_t ok;
	struct batch *b = k->bhead;

	rd_init(&r, p, n);
	if (!k->transmitter || rd_u64(&r, &seq) == -1 || rd_u8(&r, &ok) == -1 ||
	    b == NULL || b->seq != seq) {
		log_warn("kme: unexpected KEYS_ACK from %s ignored", k->peer_id);
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
	else if (store_add_chunks(k->st, seq, b->n, b->ids,
	    b->keys) == -1)
		log_err("kme: cannot store key batch %llu", (unsigned long long)seq);
	batch_free(b, k->kb);
}

/* Peer side of an assignment: parse now, commit at flush. */
static void
on_assign(struct kme *k, uint32_t reqid, const uint8_t *p, size_t n)
{
	struct passign *a;
	struct rd r;
	uint32_t size;
	uint16_t nkeys, per;
	uint8_t ns;
	char s[ETSI_ID_MAX + 1];
	size_t i, nch;

	if (k->npa == k->capa) {
		size_t nc = k->capa ? k->capa * 2 : 16;
		struct passign **np = realloc(k->pa, nc * sizeof(*np));

		if (np == NULL)
			return;		/* no answer: the master times out */
		k->pa = np;
		k->capa = nc;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return;
	a->reqid = reqid;
	k->pa[k->npa++] = a;
	rd_init(&r, p, n);
	if (rd_u32(&r, &size) == -1 || rd_u16(&r, &nkeys) == -1 ||
	    rd_u16(&r, &per) == -1 || get_str(&r, a->master, sizeof(a->master)) == -1 ||
	    rd_u8(&r, &ns) == -1 || ns == 0 || ns > ETSI_MAX_SLAVES + 1) {
		a->bad = 1;
		snprintf(a->why, sizeof(a->why), "malformed key assignment");
		return;
	}
	for (i = 0; i < ns; i++) {
		if (get_str(&r, s, sizeof(s)) == -1) {
			a->bad = 1;
			snprintf(a->why, sizeof(a->why), "malformed key assignment");
			return;
		}
		if ((a->slaves[a->nslaves] = strdup(s)) == NULL) {
			a->bad = 1;
			return;
		}
		a->nslaves++;
		if (!kme_sae_is_local(k, s)) {
			a->bad = 1;
			snprintf(a->why, sizeof(a->why), "slave SAE ID \"%s\" is not "
			    "attached to KME %s", s, k->id);
			return;
		}
	}
	nch = (size_t)nkeys * per;
	if (size == 0 || size % 8 != 0 || nkeys == 0 || per == 0 ||
	    size / 8 > ETSI_MAX_KEY_BYTES || (size_t)per * k->key_size < size ||
	    (size_t)(per - 1) * k->key_size >= size ||
	    rd_left(&r) != (nkeys + nch) * 16 + nch * 8) {
		a->bad = 1;
		snprintf(a->why, sizeof(a->why), "malformed key assignment");
		return;
	}
	a->ids = malloc((size_t)nkeys * 16);
	a->chunks = malloc(nch * 16);
	a->missing = malloc(nch * 16);
	a->ords = malloc(nch * sizeof(*a->ords));
	if (a->ids == NULL || a->chunks == NULL || a->missing == NULL ||
	    a->ords == NULL) {
		a->bad = 1;
		return;
	}
	(void)rd_bytes(&r, a->ids, (size_t)nkeys * 16);
	(void)rd_bytes(&r, a->chunks, nch * 16);
	for (i = 0; i < nch; i++)
		(void)rd_u64(&r, &a->ords[i]);
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
}

static void
reply_assign(struct kme *k, struct passign *a, int stored)
{
	struct buf b;

	if (stored && a->a.result == 0) {
		(void)link_send(k->link, KT_ASSIGN_ACK, a->reqid, NULL, 0);
		return;
	}
	buf_init(&b, LINK_FRAME_MAX);
	if (stored && a->a.result == 3) {
		char why[ETSI_ERRLEN];

		snprintf(why, sizeof(why), "%zu keys from master SAE \"%.40s\" "
		    "wait for slave SAE \"%.40s\" at KME %.40s "
		    "(max_keys_per_pair %u)", a->a.waiting, a->master,
		    a->slaves[a->a.full_slave], k->id, k->max_pair);
		log_info("kme: refused a key assignment: %s", why);
		(void)buf_add_u8(&b, NACK_FULL);
		(void)put_str(&b, why);
	} else if (a->bad || (stored && a->a.result == 2)) {
		(void)buf_add_u8(&b, NACK_BADREQ);
		(void)put_str(&b, a->bad && a->why[0] ? a->why :
		    "bad key assignment");
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
	struct kme *k = arg;
	struct store_assign *v;
	size_t i, j = 0;
	int ok;

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
		if (ok && !k->pa[i]->bad && k->pa[i]->a.result == 0)
			log_debug("kme: committed assignment of %zu keys for "
			    "master %s", k->pa[i]->a.nkeys, k->pa[i]->master);
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
	case KT_KEYS:
		on_keys(k, p, n);
		break;
	case KT_KEYS_ACK:
		on_keys_ack(k, p, n);
		break;
	case KT_ASSIGN:
		on_assign(k, reqid, p, n);
		break;
	default:
		log_debug("kme: frame type 0x%02x from %s ignored", type,
		    k->peer_id);
	}
}

/* -------------------------------------------------------------- start */

static int
cfg_check(const struct kme_cfg *c, char *err, size_t errlen)
{
	if (c->kme_id == NULL || !etsi_id_valid(c->kme_id) ||
	    c->peer_kme_id == NULL || !etsi_id_valid(c->peer_kme_id)) {
		snprintf(err, errlen, "kme_id and peer_kme_id must be valid IDs");
		return -1;
	}
	if (c->key_size == 0 || c->key_size % 8 != 0 ||
	    c->key_size / 8 > ETSI_MAX_KEY_BYTES) {
		snprintf(err, errlen, "key_size %u is not a positive multiple of 8 "
		    "up to %u", c->key_size, ETSI_MAX_KEY_BYTES * 8);
		return -1;
	}
	if (c->max_key_count == 0) {
		snprintf(err, errlen, "max_key_count must be positive");
		return -1;
	}
	if ((c->link_listen_host == NULL) == (c->link_peer_host == NULL)) {
		snprintf(err, errlen, "set exactly one of link_listen and link_peer");
		return -1;
	}
	if (c->link_cert == NULL || c->link_key == NULL || c->ca_file == NULL) {
		snprintf(err, errlen, "the QKD link needs link_cert, link_key and "
		    "ca_file");
		return -1;
	}
	if (c->transmitter && (c->key_rate == 0 || c->key_rate > 10000000000ULL)) {
		snprintf(err, errlen, "key_rate %llu bits/s is out of range",
		    (unsigned long long)c->key_rate);
		return -1;
	}
	return 0;
}

struct kme *
kme_start(const struct kme_cfg *cfg, char *err, size_t errlen)
{
	struct kme *k;
	struct link_cfg lc;
	struct link_ops ops;
	size_t i;

	if (cfg_check(cfg, err, errlen) == -1)
		return NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->order_mu, NULL);
	pthread_mutex_init(&k->mu, NULL);
	pthread_mutex_init(&k->sweep_mu, NULL);
	k->id = strdup(cfg->kme_id);
	k->peer_id = strdup(cfg->peer_kme_id);
	k->sae = calloc(cfg->n_sae ? cfg->n_sae : 1, sizeof(char *));
	if (k->id == NULL || k->peer_id == NULL || k->sae == NULL)
		goto oom;
	for (i = 0; i < cfg->n_sae; i++, k->nsae++)
		if ((k->sae[i] = strdup(cfg->sae_ids[i])) == NULL)
			goto oom;
	k->key_size = cfg->key_size;
	k->kb = cfg->key_size / 8;
	k->min_key_size = cfg->min_key_size;
	k->max_key_size = cfg->max_key_size;
	k->max_key_count = cfg->max_key_count;
	k->transmitter = cfg->transmitter;
	k->key_rate = cfg->key_rate;
	k->timeout_ms = cfg->link_timeout_ms ? cfg->link_timeout_ms :
	    DEFAULT_TIMEOUT_MS;
	k->listen_side = cfg->link_listen_host != NULL;

	k->st = store_open(cfg->db_path, cfg->kek_file, k->kb, err, errlen);
	if (k->st == NULL)
		goto fail;
	k->next_seq = store_last_seq(k->st) + 1;
	store_size_hint(k->st, k->max_key_count);
	k->key_ttl_s = cfg->key_ttl_s;
	k->max_pair = cfg->max_keys_per_pair;
	store_set_limits(k->st, k->key_ttl_s, k->max_pair);
	kme_sweep(k);		/* keys that expired while the KME was down */

	memset(&lc, 0, sizeof(lc));
	lc.self_id = k->id;
	lc.peer_id = k->peer_id;
	lc.listen_host = cfg->link_listen_host;
	lc.listen_port = cfg->link_listen_port;
	lc.peer_host = cfg->link_peer_host;
	lc.peer_port = cfg->link_peer_port;
	lc.cert = cfg->link_cert;
	lc.key = cfg->link_key;
	lc.ca_file = cfg->ca_file;
	lc.tick_ms = TICK_MS;
	memset(&ops, 0, sizeof(ops));
	ops.arg = k;
	ops.hello = cb_hello;
	ops.up = cb_up;
	ops.down = cb_down;
	ops.frame = cb_frame;
	ops.flush = cb_flush;
	ops.tick = cb_tick;
	k->link = link_start(&lc, &ops, err, errlen);
	if (k->link == NULL)
		goto fail;
	log_info("kme: %s started (%s, key_size %u, %s)", k->id,
	    k->transmitter ? "transmitter" : "receiver", k->key_size,
	    cfg->db_path ? cfg->db_path : "keys in memory");
	return k;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	kme_stop(k);
	return NULL;
}

void
kme_stop(struct kme *k)
{
	if (k == NULL)
		return;
	link_stop(k->link);	/* joins the I/O thread: callbacks are over */
	k->link = NULL;
	cb_down(k);
	free(k->pa);
	store_close(k->st);
	strv_free(k->sae, k->nsae);
	strv_free(k->rsae, k->nrsae);
	free(k->id);
	free(k->peer_id);
	pthread_mutex_destroy(&k->order_mu);
	pthread_mutex_destroy(&k->mu);
	pthread_mutex_destroy(&k->sweep_mu);
	free(k);
}

uint16_t
kme_link_port(const struct kme *k)
{
	return k ? link_port(k->link) : 0;
}

void
kme_get_info(struct kme *k, struct kme_info *out)
{
	struct store_stats st;

	kme_sweep(k);
	store_get_stats(k->st, &st);
	memset(out, 0, sizeof(*out));
	snprintf(out->peer_kme_id, sizeof(out->peer_kme_id), "%s", k->peer_id);
	out->link_up = link_is_up(k->link);
	out->stored_key_count = (unsigned)st.chunks;
	out->assigned = st.assigned;
	out->expired = st.expired;
	out->tampered = st.tampered;
	out->refused_full = st.refused_full;
}

int
kme_sae_is_local(struct kme *k, const char *sae)
{
	return in_list(k->sae, k->nsae, sae);
}

int
kme_sae_is_remote(struct kme *k, const char *sae)
{
	int r;

	pthread_mutex_lock(&k->mu);
	r = in_list(k->rsae, k->nrsae, sae);
	pthread_mutex_unlock(&k->mu);
	return r;
}

/* ------------------------------------------------------------ enc_keys */

static int
assign_frame(struct buf *f, const char *master, const char *const *slaves,
    size_t nslaves, unsigned number, unsigned size_bits, unsigned per,
    const uint8_t *ids, const struct store_resv *r)
{
	size_t i;
	int rc;

	rc = buf_add_u32(f, size_bits) | buf_add_u16(f, (uint16_t)number) |
	    buf_add_u16(f, (uint16_t)per) | put_str(f, master) |
	    buf_add_u8(f, (uint8_t)nslaves);
	for (i = 0; i < nslaves; i++)
		rc |= put_str(f, slaves[i]);
	rc |= buf_add(f, ids, (size_t)number * 16);
	rc |= buf_add(f, r->ids, r->n * 16);
	for (i = 0; i < r->n; i++)
		rc |= buf_add_u64(f, r->ord[i]);
	return rc ? -1 : 0;
}

static int
fill_keys(struct kme *k, const struct store_resv *r, const uint8_t *ids,
    unsigned number, unsigned size_bits, unsigned per, struct etsi_keys *out)
{
	size_t i;

	if (etsi_keys_alloc(out, number) == -1)
		return -1;
	for (i = 0; i < number; i++) {
		out->v[i].key = sec_alloc(size_bits / 8);
		if (out->v[i].key == NULL) {
			etsi_keys_free(out);
			return -1;
		}
		out->v[i].len = size_bits / 8;
		memcpy(out->v[i].key, r->keys + i * per * k->kb, size_bits / 8);
		uuid_fmt(ids + i * 16, out->v[i].id);
	}
	return 0;
}

/* Marks the chunks the peer lacks; returns how many of ours matched. */
static size_t
mark_missing(const struct store_resv *r, const struct buf *reply, uint8_t *drop)
{
	struct rd rd;
	uint8_t reason, id[16];
	uint32_t n, i;
	size_t j, hit = 0;

	rd_init(&rd, reply->data, reply->len);
	if (rd_u8(&rd, &reason) == -1 || rd_u32(&rd, &n) == -1)
		return 0;
	for (i = 0; i < n && rd_bytes(&rd, id, 16) == 0; i++)
		for (j = 0; j < r->n; j++)
			if (!drop[j] && memcmp(r->ids[j], id, 16) == 0) {
				drop[j] = 1;
				hit++;
				break;
			}
	return hit;
}

static uint8_t
nack_reason(const struct buf *reply, char *why, size_t whylen)
{
	struct rd rd;
	uint8_t reason = 0, n;

	why[0] = '\0';
	rd_init(&rd, reply->data, reply->len);
	(void)rd_u8(&rd, &reason);
	if ((reason == NACK_BADREQ || reason == NACK_FULL) &&
	    rd_u8(&rd, &n) == 0 && (size_t)n < whylen &&
	    rd_bytes(&rd, why, n) == 0)
		why[n] = '\0';
	return reason;
}

int
kme_enc_keys(struct kme *k, const char *master, const char *const *slaves,
    size_t nslaves, unsigned number, unsigned size_bits,
    struct etsi_keys *out, char err[static ETSI_ERRLEN])
{
	struct store_resv r;
	struct link_wait w;
	struct buf f;
	uint8_t *ids = NULL, *drop = NULL, reason;
	unsigned per;
	size_t i, total, avail;
	uint64_t epoch;
	int attempt, rc, wr;
	char why[ETSI_ERRLEN];

	memset(out, 0, sizeof(*out));
	if (!link_is_up(k->link)) {
		snprintf(err, ETSI_ERRLEN, "QKD link to %s is down", k->peer_id);
		return KME_EUNAVAIL;
	}
	if (nslaves == 0 || nslaves > ETSI_MAX_SLAVES + 1 || number == 0 ||
	    number > ETSI_MAX_KEYS || size_bits == 0 || size_bits % 8 != 0 ||
	    size_bits / 8 > ETSI_MAX_KEY_BYTES) {
		snprintf(err, ETSI_ERRLEN, "bad key request");
		return KME_EBADREQ;
	}
	for (i = 0; i < nslaves; i++)
		if (!kme_sae_is_remote(k, slaves[i])) {
			snprintf(err, ETSI_ERRLEN, "slave SAE ID \"%.*s\" is not "
			    "attached to KME %s", ETSI_ID_MAX, slaves[i], k->peer_id);
			return KME_EBADREQ;
		}
	per = (size_bits + k->key_size - 1) / k->key_size;
	total = (size_t)number * per;
	if (total * 24 + number * 16 + 64 + (nslaves + 1) * 256 > LINK_FRAME_MAX) {
		snprintf(err, ETSI_ERRLEN, "request too large: %u keys of %u bits "
		    "need %zu keys of %u bits", number, size_bits, total,
		    k->key_size);
		return KME_EBADREQ;
	}
	if ((ids = malloc((size_t)number * 16)) == NULL ||
	    (drop = calloc(total, 1)) == NULL) {
		free(ids);
		snprintf(err, ETSI_ERRLEN, "out of memory");
		return KME_EUNAVAIL;
	}
	rc = KME_EUNAVAIL;
	snprintf(err, ETSI_ERRLEN, "key material at KME %s and its peer %s is "
	    "out of step; try again", k->id, k->peer_id);
	for (attempt = 0; attempt < ASSIGN_TRIES; attempt++) {
		pthread_mutex_lock(&k->order_mu);
		if (!link_is_up(k->link)) {
			pthread_mutex_unlock(&k->order_mu);
			snprintf(err, ETSI_ERRLEN, "QKD link to %s is down",
			    k->peer_id);
			break;
		}
		wr = store_reserve(k->st, total, !k->listen_side, &r, &avail);
		if (wr != 0) {
			pthread_mutex_unlock(&k->order_mu);
			if (wr == 1)
				snprintf(err, ETSI_ERRLEN, "not enough key material: "
				    "%u keys of %u bits requested, %zu available",
				    number, size_bits, avail / per);
			else
				snprintf(err, ETSI_ERRLEN, "key store error");
			break;
		}
		if (size_bits == k->key_size)
			memcpy(ids, r.ids, (size_t)number * 16);
		else if (uuid_bulk(ids, number) == -1) {
			(void)store_putback(k->st, &r, NULL);
			pthread_mutex_unlock(&k->order_mu);
			store_resv_free(&r);
			snprintf(err, ETSI_ERRLEN, "no entropy for key IDs");
			break;
		}
		buf_init(&f, LINK_FRAME_MAX);
		epoch = link_epoch(k->link);
		wr = assign_frame(&f, master, slaves, nslaves, number, size_bits,
		    per, ids, &r);
		if (wr == 0 && link_call_begin(k->link, &w, KT_ASSIGN, f.data,
		    f.len) == -1) {
			link_call_end(k->link, &w);
			wr = -1;
		}
		if (wr == -1) {
			/* Nothing left this KME: the chunks go back. */
			(void)store_putback(k->st, &r, NULL);
			pthread_mutex_unlock(&k->order_mu);
			buf_free(&f);
			store_resv_free(&r);
			snprintf(err, ETSI_ERRLEN, "QKD link to %s is down",
			    k->peer_id);
			break;
		}
		pthread_mutex_unlock(&k->order_mu);
		buf_free(&f);
		wr = link_call_wait(k->link, &w, k->timeout_ms);
		if (wr == 0 && w.type == KT_ASSIGN_ACK) {
			if (fill_keys(k, &r, ids, number, size_bits, per, out) == 0)
				rc = KME_OK;
			else
				snprintf(err, ETSI_ERRLEN, "out of memory");
			link_call_end(k->link, &w);
			store_resv_free(&r);
			break;
		}
		if (wr != 0) {
			/* The peer may have committed: never put these back. */
			link_call_end(k->link, &w);
			store_resv_free(&r);
			if (wr == -2)
				snprintf(err, ETSI_ERRLEN, "QKD link to %s: no answer "
				    "to a key assignment within %u ms; the keys "
				    "were discarded", k->peer_id, k->timeout_ms);
			else
				snprintf(err, ETSI_ERRLEN, "QKD link to %s went down "
				    "during a key assignment; the keys were "
				    "discarded", k->peer_id);
			log_warn("kme: %s", err);
			break;
		}
		reason = nack_reason(&w.reply, why, sizeof(why));
		memset(drop, 0, total);
		if (reason == NACK_MISSING)
			(void)mark_missing(&r, &w.reply, drop);
		link_call_end(k->link, &w);
		/* Nothing was committed at the peer: put back what it has. */
		pthread_mutex_lock(&k->order_mu);
		if (link_epoch(k->link) == epoch)
			(void)store_putback(k->st, &r, drop);
		pthread_mutex_unlock(&k->order_mu);
		store_resv_free(&r);
		if (reason == NACK_MISSING) {
			log_info("kme: peer %s lacks keys of an assignment; "
			    "dropped them, retrying", k->peer_id);
			continue;
		}
		if (reason == NACK_BADREQ) {
			snprintf(err, ETSI_ERRLEN, "peer KME %s refused the key "
			    "assignment: %.160s", k->peer_id, why);
			rc = KME_EBADREQ;
		} else if (reason == NACK_FULL) {
			/* 503: the slave has to fetch first; no key was used. */
			snprintf(err, ETSI_ERRLEN, "too many keys waiting: %.180s; "
			    "fetch them first", why);
		} else {
			snprintf(err, ETSI_ERRLEN, "peer KME %s could not store the "
			    "key assignment", k->peer_id);
		}
		break;
	}
	free(ids);
	free(drop);
	return rc;
}

/* ------------------------------------------------------------ dec_keys */

int
kme_dec_keys(struct kme *k, const char *caller, const char *master,
    const struct etsi_key_ids *ids, struct etsi_keys *out,
    char err[static ETSI_ERRLEN])
{
	uint8_t (*bin)[16] = NULL, *valid = NULL;
	enum store_rc src;
	size_t i, n = ids->n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n > ETSI_MAX_KEYS) {
		snprintf(err, ETSI_ERRLEN, "key_IDs must list 1 to %d keys",
		    ETSI_MAX_KEYS);
		return KME_EBADREQ;
	}
	bin = calloc(n, sizeof(*bin));
	valid = calloc(n, 1);
	if (bin == NULL || valid == NULL || etsi_keys_alloc(out, n) == -1) {
		free(bin);
		free(valid);
		snprintf(err, ETSI_ERRLEN, "out of memory");
		return KME_EUNAVAIL;
	}
	for (i = 0; i < n; i++)
		valid[i] = uuid_parse(ids->ids[i], bin[i]) == 0;
	kme_sweep(k);
	src = store_take(k->st, caller, master, bin[0], valid,
	    n, out);
	switch (src) {
	case STORE_OK:
		for (i = 0; i < n; i++)
			uuid_fmt(bin[i], out->v[i].id);
		rc = KME_OK;
		break;
	case STORE_NOTFOUND:
		snprintf(err, ETSI_ERRLEN, "%s", ETSI_MSG_KEYS_NOTFOUND);
		rc = KME_ENOTFOUND;
		break;
	case STORE_UNAUTH:
		snprintf(err, ETSI_ERRLEN, "SAE %.*s is not a slave of one or "
		    "more of the keys specified", ETSI_ID_MAX, caller);
		rc = KME_EUNAUTH;
		break;
	default:
		snprintf(err, ETSI_ERRLEN, "key store error");
		rc = KME_EUNAVAIL;
	}
	if (rc != KME_OK)
		etsi_keys_free(out);
	free(bin);
	free(valid);
	return rc;
}

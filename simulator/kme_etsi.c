/*
 * The ETSI GS QKD 014 operations of one simulated KME (kme.h): enc_keys,
 * the master side of an assignment (reserve chunks here, have the peer KME
 * commit the same assignment, then answer), and dec_keys, the slave side
 * (take keys the peer assigned). Their outcomes are enum kme_rc, with a
 * message for the Error body in err.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/uuid.h"
#include "simulator/kme_int.h"

#define ASSIGN_TRIES 4

/* One enc_keys call. */
struct enc {
	struct kme	  *k;
	const char	  *master;
	const char *const *slaves;
	size_t		   nslaves;
	unsigned	   number, size_bits;
	unsigned	   per;	  /* chunks per key */
	size_t		   total; /* chunks in all */
	uint8_t		  *ids;	  /* number * 16: the new key IDs */
	uint8_t		  *drop;  /* total: chunks the peer lacks */
	struct store_resv  r;	  /* this attempt's chunks */
	struct link_wait   w;	  /* and its ASSIGN in flight */
	uint64_t	   epoch; /* the link's, when it was sent */
};

/* Checks what the HTTP layer cannot: the link, the slaves, the frame size. */
static enum kme_rc
enc_check(struct enc *e, char *err)
{
	struct kme *k = e->k;
	size_t	    i;

	if (!link_is_up(k->link)) {
		snprintf(err, ETSI_ERRLEN, "QKD link to %s is down",
		    k->peer_id);
		return KME_EUNAVAIL;
	}
	if (e->nslaves == 0 || e->nslaves > ETSI_MAX_SLAVES + 1 ||
	    e->number == 0 || e->number > ETSI_MAX_KEYS || e->size_bits == 0 ||
	    e->size_bits % 8 != 0 || e->size_bits / 8 > ETSI_MAX_KEY_BYTES) {
		snprintf(err, ETSI_ERRLEN, "bad key request");
		return KME_EBADREQ;
	}
	for (i = 0; i < e->nslaves; i++)
		if (!kme_sae_is_remote(k, e->slaves[i])) {
			snprintf(err, ETSI_ERRLEN,
			    "slave SAE ID \"%.*s\" is not "
			    "attached to KME %s",
			    ETSI_ID_MAX, e->slaves[i], k->peer_id);
			return KME_EBADREQ;
		}
	e->per = (e->size_bits + k->key_size - 1) / k->key_size;
	e->total = (size_t)e->number * e->per;
	if (e->total * 24 + e->number * 16 + 64 + (e->nslaves + 1) * 256 >
	    LINK_FRAME_MAX) {
		snprintf(err, ETSI_ERRLEN,
		    "request too large: %u keys of %u bits "
		    "need %zu keys of %u bits",
		    e->number, e->size_bits, e->total, k->key_size);
		return KME_EBADREQ;
	}
	return KME_OK;
}

/* The ASSIGN payload: what the peer needs to compose the same keys. */
static int
enc_frame(const struct enc *e, struct buf *f)
{
	size_t i;
	int    rc;

	rc = buf_add_u32(f, e->size_bits) |
	    buf_add_u16(f, (uint16_t)e->number) |
	    buf_add_u16(f, (uint16_t)e->per) | kme_put_str(f, e->master) |
	    buf_add_u8(f, (uint8_t)e->nslaves);
	for (i = 0; i < e->nslaves; i++)
		rc |= kme_put_str(f, e->slaves[i]);
	rc |= buf_add(f, e->ids, (size_t)e->number * 16);
	rc |= buf_add(f, e->r.ids, e->r.n * 16);
	for (i = 0; i < e->r.n; i++)
		rc |= buf_add_u64(f, e->r.ord[i]);
	return rc ? -1 : 0;
}

/* Under order_mu: the reserved chunks' ASSIGN goes out, or they go back. */
static int
enc_send_locked(struct enc *e, char *err)
{
	struct kme *k = e->k;
	struct buf  f;
	int	    rc;

	if (e->size_bits == k->key_size)
		memcpy(e->ids, e->r.ids, (size_t)e->number * 16);
	else if (kme_uuid_bulk(e->ids, e->number) == -1) {
		(void)store_putback(k->st, &e->r, NULL);
		snprintf(err, ETSI_ERRLEN, "no entropy for key IDs");
		return -1;
	}
	buf_init(&f, LINK_FRAME_MAX);
	e->epoch = link_epoch(k->link);
	rc = enc_frame(e, &f);
	if (rc == 0 &&
	    link_call_begin(k->link, &e->w, KT_ASSIGN, f.data, f.len) == -1) {
		link_call_end(k->link, &e->w);
		rc = -1;
	}
	buf_free(&f);
	if (rc == -1) {
		/* Nothing left this KME: the chunks go back. */
		(void)store_putback(k->st, &e->r, NULL);
		snprintf(err, ETSI_ERRLEN, "QKD link to %s is down",
		    k->peer_id);
	}
	return rc;
}

/* Reserves total chunks and sends their ASSIGN; -1 with err set. */
static int
enc_reserve(struct enc *e, char *err)
{
	struct kme *k = e->k;
	size_t	    avail;
	int	    rc;

	pthread_mutex_lock(&k->order_mu);
	if (!link_is_up(k->link)) {
		pthread_mutex_unlock(&k->order_mu);
		snprintf(err, ETSI_ERRLEN, "QKD link to %s is down",
		    k->peer_id);
		return -1;
	}
	rc = store_reserve(k->st, e->total, !k->listen_side, &e->r, &avail);
	if (rc == -1 || avail < e->total) {
		pthread_mutex_unlock(&k->order_mu);
		if (rc == 0)
			snprintf(err, ETSI_ERRLEN,
			    "not enough key material: "
			    "%u keys of %u bits requested, %zu available",
			    e->number, e->size_bits, avail / e->per);
		else
			snprintf(err, ETSI_ERRLEN, "key store error");
		return -1;
	}
	rc = enc_send_locked(e, err);
	pthread_mutex_unlock(&k->order_mu);
	if (rc == -1)
		store_resv_free(&e->r);
	return rc;
}

/* ASSIGN_ACK: the peer committed; the reserved chunks become the keys. */
static enum kme_rc
enc_fill(const struct enc *e, struct etsi_keys *out, char *err)
{
	size_t i, len = e->size_bits / 8;

	if (etsi_keys_alloc(out, e->number) == -1)
		goto oom;
	for (i = 0; i < e->number; i++) {
		if ((out->v[i].key = sec_alloc(len)) == NULL) {
			etsi_keys_free(out);
			goto oom;
		}
		out->v[i].len = len;
		memcpy(out->v[i].key, e->r.keys + i * e->per * e->k->kb, len);
		uuid_fmt(e->ids + i * 16, out->v[i].id);
	}
	return KME_OK;
oom:
	snprintf(err, ETSI_ERRLEN, "out of memory");
	return KME_EUNAVAIL;
}

/* No answer: the peer may have committed, so the chunks are discarded. */
static void
enc_lost(const struct enc *e, bool timed_out, char *err)
{
	if (timed_out)
		snprintf(err, ETSI_ERRLEN,
		    "QKD link to %s: no answer to a key "
		    "assignment within %u ms; the keys were discarded",
		    e->k->peer_id, e->k->timeout_ms);
	else
		snprintf(err, ETSI_ERRLEN,
		    "QKD link to %s went down during a "
		    "key assignment; the keys were discarded",
		    e->k->peer_id);
	log_warn("kme: %s", err);
}

/* Marks the chunks the peer lacks (listed in a NACK_MISSING). */
static void
nack_missing(struct enc *e, const struct buf *reply)
{
	struct rd rd;
	uint8_t	  reason, id[16];
	uint32_t  n, i;
	size_t	  j;

	rd_init(&rd, reply->data, reply->len);
	if (rd_u8(&rd, &reason) == -1 || rd_u32(&rd, &n) == -1)
		return;
	for (i = 0; i < n && rd_bytes(&rd, id, 16) == 0; i++)
		for (j = 0; j < e->r.n; j++)
			if (!e->drop[j] && memcmp(e->r.ids[j], id, 16) == 0) {
				e->drop[j] = 1;
				break;
			}
}

/* A NACK's reason, and its text for NACK_BADREQ and NACK_FULL. */
static uint8_t
nack_reason(const struct buf *reply, char *why, size_t whylen)
{
	struct rd rd;
	uint8_t	  reason = 0, n;

	why[0] = '\0';
	rd_init(&rd, reply->data, reply->len);
	(void)rd_u8(&rd, &reason);
	if ((reason == NACK_BADREQ || reason == NACK_FULL) &&
	    rd_u8(&rd, &n) == 0 && (size_t)n < whylen &&
	    rd_bytes(&rd, why, n) == 0)
		why[n] = '\0';
	return reason;
}

/*
 * ASSIGN_NACK: nothing was committed at the peer; the chunks it has go
 * back. 0: try again (the chunks it lacked are dropped); -1: *rc and err
 * are the answer.
 */
static int
enc_nack(struct enc *e, enum kme_rc *rc, char *err)
{
	struct kme *k = e->k;
	char	    why[ETSI_ERRLEN];
	uint8_t	    reason;

	reason = nack_reason(&e->w.reply, why, sizeof(why));
	memset(e->drop, 0, e->total);
	if (reason == NACK_MISSING)
		nack_missing(e, &e->w.reply);
	link_call_end(k->link, &e->w);
	pthread_mutex_lock(&k->order_mu);
	if (link_epoch(k->link) == e->epoch)
		(void)store_putback(k->st, &e->r, e->drop);
	pthread_mutex_unlock(&k->order_mu);
	store_resv_free(&e->r);
	*rc = KME_EUNAVAIL;
	switch (reason) {
	case NACK_MISSING:
		log_info("kme: peer %s lacks keys of an assignment; dropped "
			 "them, retrying",
		    k->peer_id);
		return 0;
	case NACK_BADREQ:
		snprintf(err, ETSI_ERRLEN,
		    "peer KME %s refused the key "
		    "assignment: %.160s",
		    k->peer_id, why);
		*rc = KME_EBADREQ;
		break;
	case NACK_FULL:
		/* 503: the slave has to fetch first; no key was used. */
		snprintf(err, ETSI_ERRLEN,
		    "too many keys waiting: %.180s; "
		    "fetch them first",
		    why);
		break;
	default:
		snprintf(err, ETSI_ERRLEN,
		    "peer KME %s could not store the key "
		    "assignment",
		    k->peer_id);
	}
	return -1;
}

/* One assignment attempt; 0: try again, -1: *rc and err are the answer. */
static int
enc_attempt(struct enc *e, struct etsi_keys *out, enum kme_rc *rc, char *err)
{
	struct kme *k = e->k;

	*rc = KME_EUNAVAIL;
	if (enc_reserve(e, err) == -1)
		return -1;
	if (link_call_wait(k->link, &e->w, k->timeout_ms) == -1) {
		enc_lost(e, e->w.timed_out, err);
		link_call_end(k->link, &e->w);
		store_resv_free(&e->r);
		return -1;
	}
	if (e->w.type != KT_ASSIGN_ACK)
		return enc_nack(e, rc, err);
	*rc = enc_fill(e, out, err);
	link_call_end(k->link, &e->w);
	store_resv_free(&e->r);
	return -1;
}

enum kme_rc
kme_enc_keys(struct kme *k, const char *master, const char *const *slaves,
    size_t nslaves, unsigned number, unsigned size_bits, struct etsi_keys *out,
    char err[static ETSI_ERRLEN])
{
	struct enc  e;
	enum kme_rc rc;
	int	    attempt;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	e.k = k;
	e.master = master;
	e.slaves = slaves;
	e.nslaves = nslaves;
	e.number = number;
	e.size_bits = size_bits;
	if ((rc = enc_check(&e, err)) != KME_OK)
		return rc;
	if ((e.ids = malloc((size_t)number * 16)) == NULL ||
	    (e.drop = calloc(e.total, 1)) == NULL) {
		free(e.ids);
		snprintf(err, ETSI_ERRLEN, "out of memory");
		return KME_EUNAVAIL;
	}
	rc = KME_EUNAVAIL;
	snprintf(err, ETSI_ERRLEN,
	    "key material at KME %s and its peer %s is "
	    "out of step; try again",
	    k->id, k->peer_id);
	for (attempt = 0; attempt < ASSIGN_TRIES; attempt++)
		if (enc_attempt(&e, out, &rc, err) == -1)
			break;
	free(e.ids);
	free(e.drop);
	return rc;
}

/* ------------------------------------------------------------ dec_keys */

enum kme_rc
kme_dec_keys(struct kme *k, const char *caller, const char *master,
    const struct etsi_key_ids *ids, struct etsi_keys *out,
    char err[static ETSI_ERRLEN])
{
	uint8_t(*bin)[16] = NULL, *valid = NULL;
	enum store_rc src;
	size_t	      i, n = ids->n;
	enum kme_rc   rc;

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
	src = store_take(k->st, caller, master, bin[0], valid, n, out);
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
		snprintf(err, ETSI_ERRLEN,
		    "SAE %.*s is not a slave of one or "
		    "more of the keys specified",
		    ETSI_ID_MAX, caller);
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

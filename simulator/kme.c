/*
 * One simulated KME (kme.h): start and stop, the SAE lists, the status
 * counters and the sweep of expired keys. What happens on the QKD link is
 * kme_link.c, the ETSI operations kme_etsi.c (see kme_int.h); transport in
 * link*.c, storage in store*.c; the protocol on the link is described in
 * simulator/README.md.
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

#define SWEEP_MS	   1000 /* expired keys are wiped this often */
#define TICK_MS		   10
#define DEFAULT_TIMEOUT_MS 2000

/* ------------------------------------------------------------ helpers */

int
kme_put_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	if (n > 255)
		return -1;
	return buf_add_u8(b, (uint8_t)n) == -1 || buf_add(b, s, n) == -1 ? -1 :
									   0;
}

int
kme_get_str(struct rd *r, char *out, size_t cap)
{
	uint8_t n;

	if (rd_u8(r, &n) == -1 || (size_t)n + 1 > cap ||
	    rd_bytes(r, out, n) == -1)
		return -1;
	out[n] = '\0';
	return etsi_id_valid(out) ? 0 : -1;
}

void
kme_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static bool
in_list(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int
kme_uuid_bulk(uint8_t *ids, size_t n)
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

void
kme_sweep(struct kme *k)
{
	uint64_t now = time_real_ms();
	size_t	 n = 0;

	if (k->key_ttl_s == 0 || pthread_mutex_trylock(&k->sweep_mu) != 0)
		return;
	if (now - k->last_sweep >= SWEEP_MS) {
		k->last_sweep = now;
		if (store_expire(k->st, now, &n) == -1)
			log_err("kme: cannot wipe expired keys");
		else if (n > 0)
			log_info("kme: %zu assigned keys not fetched within "
				 "key_ttl_s %u s: wiped",
			    n, k->key_ttl_s);
	}
	pthread_mutex_unlock(&k->sweep_mu);
}

/* -------------------------------------------------------------- start */

static int
cfg_check(const struct kme_cfg *c, char *err, size_t errlen)
{
	if (c->kme_id == NULL || !etsi_id_valid(c->kme_id) ||
	    c->link.peer_id == NULL || !etsi_id_valid(c->link.peer_id)) {
		snprintf(err, errlen,
		    "kme_id and peer_kme_id must be valid IDs");
		return -1;
	}
	if (c->key_size == 0 || c->key_size % 8 != 0 ||
	    c->key_size / 8 > ETSI_MAX_KEY_BYTES) {
		snprintf(err, errlen,
		    "key_size %u is not a positive multiple of 8 "
		    "up to %u",
		    c->key_size, (unsigned)ETSI_MAX_KEY_BYTES * 8);
		return -1;
	}
	if (c->max_key_count == 0) {
		snprintf(err, errlen, "max_key_count must be positive");
		return -1;
	}
	if ((c->link.listen_host == NULL) == (c->link.peer_host == NULL)) {
		snprintf(err, errlen,
		    "set exactly one of link_listen and link_peer");
		return -1;
	}
	if (c->link.cert == NULL || c->link.key == NULL ||
	    c->link.ca_file == NULL) {
		snprintf(err, errlen,
		    "the QKD link needs link_cert, link_key and "
		    "ca_file");
		return -1;
	}
	if (c->transmitter &&
	    (c->key_rate == 0 || c->key_rate > 10000000000ULL)) {
		snprintf(err, errlen, "key_rate %llu bits/s is out of range",
		    (unsigned long long)c->key_rate);
		return -1;
	}
	return 0;
}

/* Owned copies of the configuration the KME keeps. */
static int
kme_copy_cfg(struct kme *k, const struct kme_cfg *cfg)
{
	size_t i;

	k->id = strdup(cfg->kme_id);
	k->peer_id = strdup(cfg->link.peer_id);
	k->sae = calloc(cfg->n_sae ? cfg->n_sae : 1, sizeof(char *));
	if (k->id == NULL || k->peer_id == NULL || k->sae == NULL)
		return -1;
	for (i = 0; i < cfg->n_sae; i++, k->nsae++)
		if ((k->sae[i] = strdup(cfg->sae_ids[i])) == NULL)
			return -1;
	k->key_size = cfg->key_size;
	k->kb = cfg->key_size / 8;
	k->max_key_count = cfg->max_key_count;
	k->transmitter = cfg->transmitter;
	k->key_rate = cfg->key_rate;
	k->timeout_ms =
	    cfg->link_timeout_ms ? cfg->link_timeout_ms : DEFAULT_TIMEOUT_MS;
	k->listen_side = cfg->link.listen_host != NULL;
	k->key_ttl_s = cfg->key_ttl_s;
	k->max_pair = cfg->max_keys_per_pair;
	return 0;
}

struct kme *
kme_start(const struct kme_cfg *cfg, char *err, size_t errlen)
{
	struct kme     *k;
	struct link_cfg lc;
	struct link_ops ops;

	if (cfg_check(cfg, err, errlen) == -1)
		return NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->order_mu, NULL);
	pthread_mutex_init(&k->mu, NULL);
	pthread_mutex_init(&k->sweep_mu, NULL);
	if (kme_copy_cfg(k, cfg) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	k->st = store_open(cfg->db_path, cfg->kek_file, k->kb, err, errlen);
	if (k->st == NULL)
		goto fail;
	k->next_seq = store_last_seq(k->st) + 1;
	store_size_hint(k->st, k->max_key_count);
	store_set_limits(k->st, k->key_ttl_s, k->max_pair);
	kme_sweep(k); /* keys that expired while the KME was down */

	lc = cfg->link;
	lc.self_id = k->id;
	lc.peer_id = k->peer_id;
	lc.tick_ms = TICK_MS;
	kme_link_ops(k, &ops);
	k->link = link_start(&lc, &ops, err, errlen);
	if (k->link == NULL)
		goto fail;
	log_info("kme: %s started (%s, key_size %u, %s)", k->id,
	    k->transmitter ? "transmitter" : "receiver", k->key_size,
	    cfg->db_path ? cfg->db_path : "keys in memory");
	return k;
fail:
	kme_stop(k);
	return NULL;
}

void
kme_stop(struct kme *k)
{
	if (k == NULL)
		return;
	link_stop(k->link); /* joins the I/O thread: callbacks are over */
	k->link = NULL;
	kme_link_reset(k);
	free(k->pa);
	store_close(k->st);
	kme_strv_free(k->sae, k->nsae);
	kme_strv_free(k->rsae, k->nrsae);
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

bool
kme_sae_is_local(struct kme *k, const char *sae)
{
	return in_list(k->sae, k->nsae, sae);
}

bool
kme_sae_is_remote(struct kme *k, const char *sae)
{
	bool r;

	pthread_mutex_lock(&k->mu);
	r = in_list(k->rsae, k->nrsae, sae);
	pthread_mutex_unlock(&k->mu);
	return r;
}

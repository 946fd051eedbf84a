/*
 * kmsd northbound: ETSI GS QKD 014 for local SAEs. Identity from the client
 * certificate, the ACL from the config, enc_keys of the pool's key size
 * served from the pool, everything else forwarded to the KME.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/etsiapi.h"
#include "common/log.h"
#include "kmsclient/kmsclient.h"
#include "kmsd/kmsd.h"
#include "kmsd/metrics.h"

static enum metrics_ep
ep_of(enum etsiapi_op op)
{
	return op == ETSIAPI_STATUS ? M_STATUS :
	    op == ETSIAPI_ENC	    ? M_ENC :
				      M_DEC;
}

/* The northbound limits: kmsd splits upstream, so it takes more per call. */
static void
kmsd_limits(const struct kmsd_config *c, struct etsiapi_limits *l)
{
	l->key_size = c->key_size;
	l->min_key_size = 8;
	l->max_key_size = ETSI_MAX_KEY_BYTES * 8;
	l->max_key_per_request = c->max_key_per_request;
	l->max_sae_id_count = ETSI_MAX_SLAVES;
}

/*
 * An upstream failure as the local SAE sees it: the KME's 400 and 401 pass
 * through (a dec_keys 401 means the caller is not the key's slave), a KME
 * that cannot be reached or fails is a 503, a local failure a 500.
 */
static int
up_error(struct httpd_resp *resp, const struct up_err *e)
{
	char	    msg[ETSI_ERRLEN];
	const char *detail = e->detail[0] ? e->detail : NULL;

	if (e->status == 400 || e->status == 401)
		return httpd_error(resp, e->status, e->message, detail);
	if (e->status == 0 &&
	    (e->kms == KMS_E_CONNECT || e->kms == KMS_E_TLS ||
		e->kms == KMS_E_TIMEOUT)) {
		snprintf(msg, sizeof(msg), "KME unreachable: %.200s",
		    e->message);
		return httpd_error(resp, 503, msg, detail);
	}
	if (e->status == 0) {
		snprintf(msg, sizeof(msg),
		    "kmsd could not call the KME: %.200s", e->message);
		return httpd_error(resp, 500, msg, detail);
	}
	if (e->status == 503)
		snprintf(msg, sizeof(msg), "KME unavailable: %.200s",
		    e->message);
	else
		snprintf(msg, sizeof(msg), "KME answered %d: %.200s", e->status,
		    e->message);
	return httpd_error(resp, 503, msg, detail);
}

static int
acl_refuse(struct httpd_resp *resp, const char *caller, const char *what,
    const char *peer)
{
	char msg[ETSI_ERRLEN];

	log_info("refused: SAE \"%s\" may not %s \"%s\" (ACL)", caller, what,
	    peer);
	snprintf(msg, sizeof(msg), "SAE \"%s\" may not %s \"%s\"", caller, what,
	    peer);
	return httpd_error(resp, 401, msg, NULL);
}

static bool
is_pooled(const struct kmsd_sae *s, const char *slave)
{
	for (size_t i = 0; i < s->npool; i++)
		if (strcmp(s->pool[i], slave) == 0)
			return true;
	return false;
}

static unsigned
sat_add(unsigned a, size_t b)
{
	return b > UINT_MAX - a ? UINT_MAX : a + (unsigned)b;
}

/*
 * The KME's Status as seen through kmsd (documented in kmsd/README.md), with
 * the spec's relations kept: stored_key_count <= max_key_count (the pool's
 * keys and its capacity are added to both), max_key_per_request <=
 * max_key_count, min_key_size <= key_size <= max_key_size with key_size the
 * size kmsd serves when a request names none.
 */
static void
status_through(const struct kmsd_config *c, bool pooled, size_t inpool,
    struct etsi_status *st)
{
	if (pooled) {
		st->stored_key_count = sat_add(st->stored_key_count, inpool);
		st->max_key_count = sat_add(st->max_key_count,
		    inpool > c->pool_high ? inpool : c->pool_high);
	}
	if (st->max_key_count < st->stored_key_count)
		st->max_key_count = st->stored_key_count;
	st->max_key_per_request = c->max_key_per_request;
	if (st->max_key_count > 0 &&
	    st->max_key_per_request > st->max_key_count)
		st->max_key_per_request = st->max_key_count;
	st->key_size = c->key_size;
	if (st->min_key_size == 0 || st->min_key_size > c->key_size)
		st->min_key_size = c->key_size;
	if (st->max_key_size < c->key_size)
		st->max_key_size = c->key_size;
}

static int
api_status(struct kmsd *k, const struct kmsd_sae *s, const char *slave,
    struct httpd_resp *resp)
{
	struct etsi_status st;
	struct up_err	   e;
	bool		   pooled = is_pooled(s, slave);

	if (!kmsd_sae_has_peer(s, slave))
		return acl_refuse(resp, s->id, "exchange keys with", slave);
	if (upstream_status(k->up, s->id, slave, &st, &e) == -1)
		return up_error(resp, &e);
	status_through(k->cfg, pooled,
	    pooled ? pool_count(k->pool, s->id, slave) : 0, &st);
	resp->status = 200;
	resp->body = etsi_status_dump(&st);
	return resp->body ? 0 : -1;
}

/* Keys for the caller: counted, then the answer (keys wiped after). */
static int
api_keys_reply(struct httpd_resp *resp, enum metrics_ep ep,
    struct etsi_keys *keys)
{
	metrics_keys_served(ep, keys->n);
	return etsiapi_keys_reply(resp, keys);
}

/*
 * enc_keys from the pool, when the request is one it serves (a pooled
 * pair, the pool's key size, no additional slaves or optional extensions);
 * false to go upstream. A miss wakes the refill thread.
 */
static bool
pool_serves(struct kmsd *k, const struct kmsd_sae *s, const char *slave,
    const struct etsi_key_req *kr)
{
	return is_pooled(s, slave) && kr->size == k->cfg->key_size &&
	    kr->nslaves == 0 && kr->n_ext_optional == 0;
}

static bool
api_enc_pooled(struct kmsd *k, const struct kmsd_sae *s, const char *slave,
    const struct etsi_key_req *kr, struct etsi_keys *keys)
{
	if (!pool_serves(k, s, slave, kr))
		return false;
	if (pool_take(k->pool, s->id, slave, kr->number, keys) == -1 ||
	    keys->n == 0) {
		metrics_pool_hit(false);
		kmsd_refill_kick(k);
		return false;
	}
	metrics_pool_hit(true);
	log_debug("enc_keys %s -> %s: %u keys from the pool", s->id, slave,
	    kr->number);
	return true;
}

static int
api_enc(struct kmsd *k, const struct httpd_req *req, const struct kmsd_sae *s,
    const char *slave, struct httpd_resp *resp)
{
	struct etsiapi_limits lim;
	struct etsi_key_req   kr;
	struct etsi_keys      keys = { NULL, 0 };
	struct up_err	      e;
	int		      ret;

	if (!kmsd_sae_has_peer(s, slave))
		return acl_refuse(resp, s->id, "request keys for", slave);
	kmsd_limits(k->cfg, &lim);
	if (etsiapi_enc_request(req, &lim, s->id, slave, &kr, resp) == -1) {
		etsi_key_req_free(&kr);
		return resp->body ? 0 : -1;
	}
	for (size_t i = 0; i < kr.nslaves; i++)
		if (!kmsd_sae_has_peer(s, kr.slaves[i])) {
			ret = acl_refuse(resp, s->id, "request keys for",
			    kr.slaves[i]);
			goto done;
		}
	if (api_enc_pooled(k, s, slave, &kr, &keys))
		ret = api_keys_reply(resp, M_ENC, &keys);
	else if (pool_serves(k, s, slave, &kr) && pool_unavailable(k->pool))
		/* Not around the pool to the KME: the outage shows at once,
		 * and kmsd processes sharing the pool do not all drain the
		 * KME with it; the refill thread reconnects. */
		ret = httpd_error(resp, 503,
		    "kmsd's key pool database is unreachable", NULL);
	else if (upstream_enc(k->up, s->id, slave, &kr, &keys, &e) == -1) {
		log_info("enc_keys %s -> %s: %u x %u bits failed upstream: %s",
		    s->id, slave, kr.number, kr.size, e.message);
		ret = up_error(resp, &e);
	} else
		ret = api_keys_reply(resp, M_ENC, &keys);
done:
	etsi_key_req_free(&kr);
	return ret;
}

static int
api_dec(struct kmsd *k, const struct httpd_req *req, const struct kmsd_sae *s,
    const char *master, struct httpd_resp *resp)
{
	struct etsiapi_limits lim;
	struct etsi_key_ids   ids;
	struct etsi_keys      keys = { NULL, 0 };
	struct up_err	      e;
	int		      ret;

	if (!kmsd_sae_has_peer(s, master))
		return acl_refuse(resp, s->id, "receive keys from", master);
	kmsd_limits(k->cfg, &lim);
	if (etsiapi_dec_request(req, &lim, &ids, resp) == -1)
		return resp->body ? 0 : -1;
	if (upstream_dec(k->up, s->id, master, &ids, &keys, &e) == -1) {
		log_info("dec_keys %s <- %s: %zu keys failed upstream: %s",
		    s->id, master, ids.n, e.message);
		ret = up_error(resp, &e);
	} else
		ret = api_keys_reply(resp, M_DEC, &keys);
	etsi_key_ids_free(&ids);
	return ret;
}

static int
api_etsi(struct kmsd *k, const struct httpd_req *req, struct httpd_resp *resp,
    enum etsiapi_op *op)
{
	const struct kmsd_sae *s;
	const char	      *caller;
	char		       sae[ETSI_ID_MAX + 1], msg[ETSI_ERRLEN];

	if (etsiapi_route(req, sae, op, resp) == -1)
		return resp->body ? 0 : -1;
	caller = etsiapi_identity(k->cfg->map, k->cfg->nmap, req->peer_cn);
	if ((s = kmsd_config_sae(k->cfg, caller)) == NULL) {
		log_info("refused %s %s: SAE \"%s\" is not configured here",
		    req->method, req->path, caller);
		snprintf(msg, sizeof(msg),
		    "SAE \"%s\" is not a local SAE of %s", caller, k->cfg->id);
		return httpd_error(resp, 401, msg, NULL);
	}
	switch (*op) {
	case ETSIAPI_STATUS: return api_status(k, s, sae, resp);
	case ETSIAPI_ENC: return api_enc(k, req, s, sae, resp);
	default: return api_dec(k, req, s, sae, resp);
	}
}

static int
ops_healthz(struct kmsd *k, struct httpd_resp *resp)
{
	struct buf b;
	char	   line[512];
	bool	   up = upstream_reachable(k->up), empty = false;
	int	   n;

	buf_init(&b, 1 << 20);
	n = snprintf(line, sizeof(line),
	    "{\"id\":\"%s\",\"upstream\":\"%s\","
	    "\"pools\":[",
	    k->cfg->id, up ? "reachable" : "unreachable");
	buf_add(&b, line, (size_t)n);
	for (size_t i = 0, first = 1; i < k->cfg->nsaes; i++) {
		const struct kmsd_sae *s = &k->cfg->saes[i];

		for (size_t j = 0; j < s->npool; j++, first = 0) {
			size_t c = pool_count(k->pool, s->id, s->pool[j]);

			empty |= c == 0;
			n = snprintf(line, sizeof(line),
			    "%s{\"master\":\"%s\","
			    "\"slave\":\"%s\",\"keys\":%zu,\"low\":%u,\"high\":%u}",
			    first ? "" : ",", s->id, s->pool[j], c,
			    k->cfg->pool_low, k->cfg->pool_high);
			buf_add(&b, line, (size_t)n);
		}
	}
	/* Serving from the pool while the KME is away is degraded, not down. */
	n = snprintf(line, sizeof(line), "],\"status\":\"%s\"}\n",
	    up	      ? "ok" :
		empty ? "down" :
			"degraded");
	if (buf_add(&b, line, (size_t)n + 1) == -1) {
		buf_free(&b);
		return -1;
	}
	resp->status = up || !empty ? 200 : 503;
	resp->body = strdup((char *)b.data);
	buf_free(&b);
	return resp->body ? 0 : -1;
}

static int
ops_metrics(struct kmsd *k, struct httpd_resp *resp)
{
	struct metrics_pool_gauge g[KMSD_MAX_SAES * KMSD_MAX_PEERS];
	struct buf		  b;
	size_t			  ng = 0;

	for (size_t i = 0; i < k->cfg->nsaes; i++) {
		const struct kmsd_sae *s = &k->cfg->saes[i];

		for (size_t j = 0; j < s->npool; j++, ng++) {
			g[ng].master = s->id;
			g[ng].slave = s->pool[j];
			g[ng].keys = pool_count(k->pool, s->id, s->pool[j]);
			g[ng].low = k->cfg->pool_low;
			g[ng].high = k->cfg->pool_high;
		}
	}
	buf_init(&b, 4 << 20);
	if (metrics_render(&b, g, ng, upstream_reachable(k->up)) == -1 ||
	    buf_add(&b, "", 1) == -1) {
		buf_free(&b);
		return -1;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body = strdup((char *)b.data);
	buf_free(&b);
	return resp->body ? 0 : -1;
}

static bool
is_ops_path(const struct httpd_req *req)
{
	return strcmp(req->path, "/healthz") == 0 ||
	    strcmp(req->path, "/metrics") == 0;
}

/* /healthz or /metrics (is_ops_path). */
static int
ops(struct kmsd *k, const struct httpd_req *req, struct httpd_resp *resp)
{
	if (strcmp(req->method, "GET") != 0)
		return httpd_error(resp, 405, "method not allowed here (GET)",
		    NULL);
	return req->path[1] == 'h' ? ops_healthz(k, resp) :
				     ops_metrics(k, resp);
}

/*
 * On the mutual-TLS API port, /healthz and /metrics only for the client
 * named by metrics_sae: any SAE certificate of the CA is not enough (the
 * plain-HTTP ops listener is for a trusted operations network).
 */
static int
ops_on_api(struct kmsd *k, const struct httpd_req *req, struct httpd_resp *resp)
{
	const char *who = k->cfg->metrics_sae;

	if (who != NULL && strcmp(req->peer_cn, who) == 0)
		return ops(k, req, resp);
	log_info("refused %s %s on the API port to \"%s\": not metrics_sae",
	    req->method, req->path, req->peer_cn);
	return httpd_error(resp, 401,
	    "/healthz and /metrics are served on "
	    "metrics_listen, or here only to the client named by metrics_sae",
	    NULL);
}

int
kmsd_api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct kmsd    *k = ctx;
	enum etsiapi_op op = ETSIAPI_STATUS;
	bool		etsi = !is_ops_path(req);
	int		rc;

	/* Counted before the check: drain() in main.c waits for these. */
	atomic_fetch_add(&k->inflight, 1);
	pthread_rwlock_rdlock(&k->cfg_lock);
	if (!etsi)
		rc = ops_on_api(k, req, resp);
	else
		rc = atomic_load(&k->stopping) ?
		    httpd_error(resp, 503, "kmsd is stopping", NULL) :
		    api_etsi(k, req, resp, &op);
	pthread_rwlock_unlock(&k->cfg_lock);
	atomic_fetch_sub(&k->inflight, 1);
	if (etsi)
		metrics_request(resp->status == 404 || resp->status == 405 ?
			M_OTHER :
			ep_of(op),
		    rc == -1 ? 500 : resp->status);
	return rc;
}

int
kmsd_ops_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct kmsd *k = ctx;
	int	     rc;

	if (!is_ops_path(req))
		return httpd_error(resp, 404,
		    "unknown path: this listener serves "
		    "/healthz and /metrics",
		    NULL);
	pthread_rwlock_rdlock(&k->cfg_lock);
	rc = ops(k, req, resp);
	pthread_rwlock_unlock(&k->cfg_lock);
	return rc;
}

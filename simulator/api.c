/*
 * ETSI GS QKD 014 V1.1.1 of one simulated KME: identity, then the key
 * store's outcomes mapped to 200/400/401/503 with Error bodies. Routing and
 * request checks are common/etsiapi.c, shared with kmsd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "simulator/api.h"

static int
api_kme_error(struct httpd_resp *resp, enum kme_rc rc, const char *err)
{
	switch (rc) {
	case KME_EBADREQ: return httpd_error(resp, 400, err, NULL);
	case KME_EUNAUTH: return httpd_error(resp, 401, err, NULL);
	case KME_ENOTFOUND:
		return httpd_error(resp, 400, ETSI_MSG_KEYS_NOTFOUND,
		    err[0] ? err : NULL);
	default: return httpd_error(resp, 503, err, NULL);
	}
}

static int
api_status(struct api *a, const char *master, const char *slave,
    struct httpd_resp *resp)
{
	struct etsi_status st;
	struct kme_info	   info;
	char		   msg[ETSI_ERRLEN];

	kme_get_info(a->kme, &info);
	if (!kme_sae_is_remote(a->kme, slave)) {
		snprintf(msg, sizeof(msg),
		    "slave_SAE_ID \"%s\" is not attached "
		    "to the peer KME%s",
		    slave,
		    info.link_up ?
			"" :
			" (the QKD link is down: peer SAEs unknown)");
		return httpd_error(resp, info.link_up ? 400 : 503, msg, NULL);
	}
	memset(&st, 0, sizeof(st));
	snprintf(st.source_kme_id, sizeof(st.source_kme_id), "%s", a->kme_id);
	snprintf(st.target_kme_id, sizeof(st.target_kme_id), "%s",
	    info.peer_kme_id);
	snprintf(st.master_sae_id, sizeof(st.master_sae_id), "%s", master);
	snprintf(st.slave_sae_id, sizeof(st.slave_sae_id), "%s", slave);
	st.key_size = a->lim.key_size;
	st.stored_key_count = info.stored_key_count;
	st.max_key_count = a->max_key_count;
	st.max_key_per_request = a->lim.max_key_per_request;
	st.max_key_size = a->lim.max_key_size;
	st.min_key_size = a->lim.min_key_size;
	st.max_sae_id_count = a->lim.max_sae_id_count;
	resp->status = 200;
	resp->body = etsi_status_dump(&st);
	return resp->body ? 0 : -1;
}

static int
api_enc(struct api *a, const struct httpd_req *req, const char *master,
    const char *slave, struct httpd_resp *resp)
{
	struct etsi_key_req kr;
	struct etsi_keys    keys = { NULL, 0 };
	const char	  **slaves = NULL;
	char		    err[ETSI_ERRLEN];
	enum kme_rc	    rc;
	int		    ret = -1;

	if (etsiapi_enc_request(req, &a->lim, master, slave, &kr, resp) == -1) {
		ret = resp->body ? 0 : -1;
		goto done;
	}
	if ((slaves = calloc(kr.nslaves + 1, sizeof(*slaves))) == NULL)
		goto done;
	slaves[0] = slave;
	for (size_t i = 0; i < kr.nslaves; i++)
		slaves[i + 1] = kr.slaves[i];
	rc = kme_enc_keys(a->kme, master, slaves, kr.nslaves + 1, kr.number,
	    kr.size, &keys, err);
	if (rc != KME_OK) {
		log_info("enc_keys %s -> %s: %u x %u bits refused: %s", master,
		    slave, kr.number, kr.size, err);
		ret = api_kme_error(resp, rc, err);
		goto done;
	}
	log_debug("enc_keys %s -> %s: %u x %u bits delivered", master, slave,
	    kr.number, kr.size);
	ret = etsiapi_keys_reply(resp, &keys);
done:
	free(slaves);
	etsi_key_req_free(&kr);
	return ret;
}

static int
api_dec(struct api *a, const struct httpd_req *req, const char *caller,
    const char *master, struct httpd_resp *resp)
{
	struct etsi_key_ids ids;
	struct etsi_keys    keys = { NULL, 0 };
	char		    err[ETSI_ERRLEN];
	enum kme_rc	    rc;
	int		    ret;

	if (etsiapi_dec_request(req, &a->lim, &ids, resp) == -1)
		return resp->body ? 0 : -1;
	rc = kme_dec_keys(a->kme, caller, master, &ids, &keys, err);
	if (rc != KME_OK) {
		log_info("dec_keys %s <- %s: %zu keys refused: %s", caller,
		    master, ids.n, err);
		ret = api_kme_error(resp, rc, err);
	} else {
		log_debug("dec_keys %s <- %s: %zu keys delivered", caller,
		    master, ids.n);
		ret = etsiapi_keys_reply(resp, &keys);
	}
	etsi_key_ids_free(&ids);
	return ret;
}

int
api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct api     *a = ctx;
	char		sae[ETSI_ID_MAX + 1], msg[ETSI_ERRLEN];
	const char     *caller;
	enum etsiapi_op op;

	if (etsiapi_route(req, sae, &op, resp) == -1)
		return resp->body ? 0 : -1;
	caller = etsiapi_identity(a->map, a->nmap, req->peer_cn);
	if (a->map_only && caller == req->peer_cn) {
		/* A KME that knows its SAEs only by registered certificates. */
		log_info(
		    "refused %s %s: certificate CN \"%s\" is not registered "
		    "in [sae_map] of %s",
		    req->method, req->path, req->peer_cn, a->kme_id);
		snprintf(msg, sizeof(msg),
		    "certificate CN \"%s\" is not "
		    "registered at KME %s",
		    req->peer_cn, a->kme_id);
		return httpd_error(resp, 401, msg, NULL);
	}
	if (!kme_sae_is_local(a->kme, caller)) {
		log_info("refused %s %s: SAE \"%s\" is not attached to %s",
		    req->method, req->path, caller, a->kme_id);
		snprintf(msg, sizeof(msg),
		    "SAE \"%s\" is not attached to KME %s", caller, a->kme_id);
		return httpd_error(resp, 401, msg, NULL);
	}
	switch (op) {
	case ETSIAPI_STATUS: return api_status(a, caller, sae, resp);
	case ETSIAPI_ENC: return api_enc(a, req, caller, sae, resp);
	default: return api_dec(a, req, caller, sae, resp);
	}
}

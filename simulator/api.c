/*
 * ETSI GS QKD 014 V1.1.1 over HTTPS: routing, identity, request checks and
 * the mapping of key-store outcomes to 200/400/401/503 with Error bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/num.h"
#include "simulator/api.h"

#define API_PREFIX	"/api/v1/keys/"

enum api_op { OP_STATUS, OP_ENC, OP_DEC };

/* Split "/api/v1/keys/{SAE}/{op}" strictly; -1 if the path is not ours. */
static int
api_route(const char *path, char sae[static ETSI_ID_MAX + 1], enum api_op *op)
{
	const char	*p, *slash;
	size_t		 n;

	if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0)
		return -1;
	p = path + strlen(API_PREFIX);
	if ((slash = strchr(p, '/')) == NULL)
		return -1;
	n = (size_t)(slash - p);
	if (n == 0 || n > ETSI_ID_MAX)
		return -1;
	memcpy(sae, p, n);
	sae[n] = '\0';
	if (!etsi_id_valid(sae))
		return -1;
	if (strcmp(slash + 1, "status") == 0)
		*op = OP_STATUS;
	else if (strcmp(slash + 1, "enc_keys") == 0)
		*op = OP_ENC;
	else if (strcmp(slash + 1, "dec_keys") == 0)
		*op = OP_DEC;
	else
		return -1;
	return 0;
}

/* The caller's SAE ID: its certificate CN, or what the map says it is. */
static const char *
api_identity(const struct api *a, const char *cn)
{
	for (size_t i = 0; i < a->nmap; i++)
		if (strcmp(a->map[i].cn, cn) == 0)
			return a->map[i].sae;
	return cn;
}

static int
api_kme_error(struct httpd_resp *resp, int rc, const char *err)
{
	switch (rc) {
	case KME_EBADREQ:
		return httpd_error(resp, 400, err, NULL);
	case KME_EUNAUTH:
		return httpd_error(resp, 401, err, NULL);
	case KME_ENOTFOUND:
		return httpd_error(resp, 400, ETSI_MSG_KEYS_NOTFOUND, err[0] ? err : NULL);
	default:
		return httpd_error(resp, 503, err, NULL);
	}
}

static int
api_keys_reply(struct httpd_resp *resp, struct etsi_keys *keys)
{
	resp->status = 200;
	resp->secret = 1;
	resp->body = etsi_keys_dump(keys);
	etsi_keys_free(keys);
	return resp->body ? 0 : -1;
}

static int
api_status(struct api *a, const char *master, const char *slave,
    struct httpd_resp *resp)
{
	struct etsi_status	st;
	struct kme_info		info;
	char			msg[ETSI_ERRLEN];

	kme_get_info(a->kme, &info);
	if (!kme_sae_is_remote(a->kme, slave)) {
		snprintf(msg, sizeof(msg), "slave_SAE_ID \"%s\" is not attached "
		    "to the peer KME%s", slave, info.link_up ? "" :
		    " (the QKD link is down: peer SAEs unknown)");
		return httpd_error(resp, info.link_up ? 400 : 503, msg, NULL);
	}
	memset(&st, 0, sizeof(st));
	snprintf(st.source_kme_id, sizeof(st.source_kme_id), "%s", a->kme_id);
	snprintf(st.target_kme_id, sizeof(st.target_kme_id), "%s", info.peer_kme_id);
	snprintf(st.master_sae_id, sizeof(st.master_sae_id), "%s", master);
	snprintf(st.slave_sae_id, sizeof(st.slave_sae_id), "%s", slave);
	st.key_size = a->key_size;
	st.stored_key_count = info.stored_key_count;
	st.max_key_count = a->max_key_count;
	st.max_key_per_request = a->max_key_per_request;
	st.max_key_size = a->max_key_size;
	st.min_key_size = a->min_key_size;
	st.max_sae_id_count = a->max_sae_id_count;
	resp->status = 200;
	resp->body = etsi_status_dump(&st);
	return resp->body ? 0 : -1;
}

/* The GET form of enc_keys: only number and size, each at most once. */
static int
api_enc_query(const struct httpd_req *req, struct etsi_key_req *kr,
    char err[static ETSI_ERRLEN])
{
	const char	*v;
	unsigned	 known = 0;
	int		 dup;

	kr->number = 1;
	if ((v = httpd_query(req, "number", &dup)) != NULL) {
		known++;
		if (dup || num_uint(v, 1, ETSI_MAX_KEYS * 64u, &kr->number) == -1) {
			snprintf(err, ETSI_ERRLEN, "query parameter number \"%.32s\" "
			    "is not a positive integer%s", v, dup ? " (given twice)" : "");
			return -1;
		}
	}
	if ((v = httpd_query(req, "size", &dup)) != NULL) {
		known++;
		if (dup || num_uint(v, 1, 1u << 30, &kr->size) == -1) {
			snprintf(err, ETSI_ERRLEN, "query parameter size \"%.32s\" "
			    "is not a positive integer%s", v, dup ? " (given twice)" : "");
			return -1;
		}
	}
	if (httpd_query_count(req) != known) {
		snprintf(err, ETSI_ERRLEN, "the GET form of enc_keys takes only the "
		    "query parameters number and size");
		return -1;
	}
	return 0;
}

/* Request limits that the KME advertises in its Status. */
static int
api_enc_check(const struct api *a, const char *master, const char *slave,
    struct etsi_key_req *kr, char err[static ETSI_ERRLEN], const char **detail)
{
	*detail = NULL;
	if (kr->n_ext_mandatory > 0) {
		snprintf(err, ETSI_ERRLEN, "%s", ETSI_MSG_EXT_MAND);
		*detail = kr->ext_mandatory ? kr->ext_mandatory[0] : NULL;
		return -1;
	}
	if (kr->size == 0)
		kr->size = a->key_size;
	if (kr->size % 8 != 0) {
		snprintf(err, ETSI_ERRLEN, "%s", ETSI_MSG_SIZE_MULT8);
		return -1;
	}
	if (kr->size < a->min_key_size || kr->size > a->max_key_size) {
		snprintf(err, ETSI_ERRLEN, "size %u is outside [min_key_size %u, "
		    "max_key_size %u]", kr->size, a->min_key_size, a->max_key_size);
		return -1;
	}
	if (kr->number > a->max_key_per_request) {
		snprintf(err, ETSI_ERRLEN, "number %u exceeds max_key_per_request %u",
		    kr->number, a->max_key_per_request);
		return -1;
	}
	if (kr->nslaves > a->max_sae_id_count) {
		snprintf(err, ETSI_ERRLEN, "%zu additional_slave_SAE_IDs exceed "
		    "max_SAE_ID_count %u", kr->nslaves, a->max_sae_id_count);
		return -1;
	}
	for (size_t i = 0; i < kr->nslaves; i++) {
		if (strcmp(kr->slaves[i], slave) == 0 ||
		    strcmp(kr->slaves[i], master) == 0) {
			snprintf(err, ETSI_ERRLEN, "additional_slave_SAE_IDs "
			    "\"%s\" repeats the master or slave SAE", kr->slaves[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(kr->slaves[i], kr->slaves[j]) == 0) {
				snprintf(err, ETSI_ERRLEN, "additional_slave_SAE_IDs "
				    "\"%s\" is listed twice", kr->slaves[i]);
				return -1;
			}
	}
	return 0;
}

static int
api_enc(struct api *a, const struct httpd_req *req, const char *master,
    const char *slave, struct httpd_resp *resp)
{
	struct etsi_key_req	 kr;
	struct etsi_keys	 keys = { NULL, 0 };
	const char		**slaves = NULL;
	const char		*detail;
	char			 err[ETSI_ERRLEN];
	int			 rc, ret = -1;

	memset(&kr, 0, sizeof(kr));
	if (strcmp(req->method, "GET") == 0)
		rc = api_enc_query(req, &kr, err);
	else if (req->body == NULL) {
		kr.number = 1;			/* empty body: all defaults */
		rc = 0;
	} else
		rc = etsi_key_req_parse(req->body, req->body_len, &kr, err);
	if (rc == -1) {
		ret = httpd_error(resp, 400, err, NULL);
		goto done;
	}
	if (api_enc_check(a, master, slave, &kr, err, &detail) == -1) {
		ret = httpd_error(resp, 400, err, detail);
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
	ret = api_keys_reply(resp, &keys);
done:
	free(slaves);
	etsi_key_req_free(&kr);
	return ret;
}

static int
api_dec(struct api *a, const struct httpd_req *req, const char *caller,
    const char *master, struct httpd_resp *resp)
{
	struct etsi_key_ids	 ids = { NULL, 0 };
	struct etsi_keys	 keys = { NULL, 0 };
	const char		*v;
	char			 err[ETSI_ERRLEN];
	int			 rc, dup, ret = -1;

	if (strcmp(req->method, "GET") == 0) {
		v = httpd_query(req, "key_ID", &dup);
		if (v == NULL || dup || httpd_query_count(req) != 1) {
			ret = httpd_error(resp, 400, "the GET form of dec_keys takes "
			    "exactly one query parameter key_ID", NULL);
			goto done;
		}
		if (strlen(v) == 0 || strlen(v) > ETSI_KEY_ID_MAX) {
			ret = httpd_error(resp, 400, ETSI_MSG_KEYS_NOTFOUND, v);
			goto done;
		}
		if (etsi_key_ids_alloc(&ids, 1) == -1)
			goto done;
		snprintf(ids.ids[0], sizeof(ids.ids[0]), "%s", v);
	} else if (req->body == NULL) {
		ret = httpd_error(resp, 400, "dec_keys needs a Key IDs body", NULL);
		goto done;
	} else if (etsi_key_ids_parse(req->body, req->body_len, &ids, err) == -1) {
		ret = httpd_error(resp, 400, err, NULL);
		goto done;
	}
	if (ids.n > a->max_key_per_request) {
		snprintf(err, sizeof(err), "%zu key_IDs exceed max_key_per_request %u",
		    ids.n, a->max_key_per_request);
		ret = httpd_error(resp, 400, err, NULL);
		goto done;
	}
	rc = kme_dec_keys(a->kme, caller, master, &ids, &keys, err);
	if (rc != KME_OK) {
		log_info("dec_keys %s <- %s: %zu keys refused: %s", caller, master,
		    ids.n, err);
		ret = api_kme_error(resp, rc, err);
		goto done;
	}
	log_debug("dec_keys %s <- %s: %zu keys delivered", caller, master, ids.n);
	ret = api_keys_reply(resp, &keys);
done:
	etsi_key_ids_free(&ids);
	return ret;
}

int
api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct api	*a = ctx;
	char		 sae[ETSI_ID_MAX + 1], msg[ETSI_ERRLEN];
	const char	*caller;
	enum api_op	 op;
	int		 get, post;

	if (api_route(req->path, sae, &op) == -1)
		return httpd_error(resp, 404, "unknown path: the API is "
		    "/api/v1/keys/{SAE_ID}/status|enc_keys|dec_keys", NULL);
	get = strcmp(req->method, "GET") == 0;
	post = strcmp(req->method, "POST") == 0;
	if (!(get || (post && op != OP_STATUS))) {
		snprintf(msg, sizeof(msg), "method %.16s not allowed here (%s)",
		    req->method, op == OP_STATUS ? "GET" : "GET or POST");
		return httpd_error(resp, 405, msg, NULL);
	}
	caller = api_identity(a, req->peer_cn);
	if (!kme_sae_is_local(a->kme, caller)) {
		log_info("refused %s %s: SAE \"%s\" is not attached to %s",
		    req->method, req->path, caller, a->kme_id);
		snprintf(msg, sizeof(msg), "SAE \"%s\" is not attached to KME %s",
		    caller, a->kme_id);
		return httpd_error(resp, 401, msg, NULL);
	}
	switch (op) {
	case OP_STATUS:
		return api_status(a, caller, sae, resp);
	case OP_ENC:
		return api_enc(a, req, caller, sae, resp);
	default:
		return api_dec(a, req, caller, sae, resp);
	}
}

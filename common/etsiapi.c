/* ETSI GS QKD 014 request routing and checks shared by qkd-sim and kmsd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/etsiapi.h"
#include "common/num.h"

#define API_PREFIX "/api/v1/keys/"

static int
route_path(const char *path, char sae[static ETSI_ID_MAX + 1],
    enum etsiapi_op *op)
{
	const char *p, *slash;
	size_t	    n;

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
		*op = ETSIAPI_STATUS;
	else if (strcmp(slash + 1, "enc_keys") == 0)
		*op = ETSIAPI_ENC;
	else if (strcmp(slash + 1, "dec_keys") == 0)
		*op = ETSIAPI_DEC;
	else
		return -1;
	return 0;
}

int
etsiapi_route(const struct httpd_req *req, char sae[static ETSI_ID_MAX + 1],
    enum etsiapi_op *op, struct httpd_resp *resp)
{
	char msg[ETSI_ERRLEN];
	int  get, post;

	if (route_path(req->path, sae, op) == -1) {
		httpd_error(resp, 404,
		    "unknown path: the API is "
		    "/api/v1/keys/{SAE_ID}/status|enc_keys|dec_keys",
		    NULL);
		return -1;
	}
	get = strcmp(req->method, "GET") == 0;
	post = strcmp(req->method, "POST") == 0;
	if (!(get || (post && *op != ETSIAPI_STATUS))) {
		snprintf(msg, sizeof(msg), "method %.16s not allowed here (%s)",
		    req->method, *op == ETSIAPI_STATUS ? "GET" : "GET or POST");
		httpd_error(resp, 405, msg, NULL);
		return -1;
	}
	return 0;
}

const char *
etsiapi_identity(const struct etsiapi_map *map, size_t nmap, const char *cn)
{
	for (size_t i = 0; i < nmap; i++)
		if (strcmp(map[i].cn, cn) == 0)
			return map[i].sae;
	return cn;
}

static int
query_uint(const struct httpd_req *req, const char *name, unsigned max,
    unsigned *out, unsigned *known, char err[static ETSI_ERRLEN])
{
	const char *v;
	int	    dup;

	if ((v = httpd_query(req, name, &dup)) == NULL)
		return 0;
	(*known)++;
	if (dup || num_uint(v, 1, max, out) == -1) {
		snprintf(err, ETSI_ERRLEN,
		    "query parameter %s \"%.32s\" is not a "
		    "positive integer%s",
		    name, v, dup ? " (given twice)" : "");
		return -1;
	}
	return 0;
}

/* The GET form of enc_keys: only number and size, each at most once. */
static int
enc_query(const struct httpd_req *req, struct etsi_key_req *kr,
    char err[static ETSI_ERRLEN])
{
	unsigned known = 0;

	kr->number = 1;
	if (query_uint(req, "number", 1u << 30, &kr->number, &known, err) ==
		-1 ||
	    query_uint(req, "size", 1u << 30, &kr->size, &known, err) == -1)
		return -1;
	if (httpd_query_count(req) != known) {
		snprintf(err, ETSI_ERRLEN,
		    "the GET form of enc_keys takes only the "
		    "query parameters number and size");
		return -1;
	}
	return 0;
}

static int
slaves_check(const struct etsi_key_req *kr, const char *master,
    const char *slave, char err[static ETSI_ERRLEN])
{
	for (size_t i = 0; i < kr->nslaves; i++) {
		if (strcmp(kr->slaves[i], slave) == 0 ||
		    strcmp(kr->slaves[i], master) == 0) {
			snprintf(err, ETSI_ERRLEN,
			    "additional_slave_SAE_IDs "
			    "\"%s\" repeats the master or slave SAE",
			    kr->slaves[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(kr->slaves[i], kr->slaves[j]) == 0) {
				snprintf(err, ETSI_ERRLEN,
				    "additional_slave_SAE_IDs "
				    "\"%s\" is listed twice",
				    kr->slaves[i]);
				return -1;
			}
	}
	return 0;
}

/* Limits the KME advertises in its Status. */
static int
enc_check(const struct etsiapi_limits *l, const char *master, const char *slave,
    struct etsi_key_req *kr, char err[static ETSI_ERRLEN], const char **detail)
{
	*detail = NULL;
	if (kr->n_ext_mandatory > 0) {
		snprintf(err, ETSI_ERRLEN, "%s", ETSI_MSG_EXT_MAND);
		*detail = kr->ext_mandatory ? kr->ext_mandatory[0] : NULL;
		return -1;
	}
	if (kr->size == 0)
		kr->size = l->key_size;
	if (kr->size % 8 != 0) {
		snprintf(err, ETSI_ERRLEN, "%s", ETSI_MSG_SIZE_MULT8);
		return -1;
	}
	if (kr->size < l->min_key_size || kr->size > l->max_key_size) {
		snprintf(err, ETSI_ERRLEN,
		    "size %u is outside [min_key_size %u, "
		    "max_key_size %u]",
		    kr->size, l->min_key_size, l->max_key_size);
		return -1;
	}
	if (kr->number > l->max_key_per_request) {
		snprintf(err, ETSI_ERRLEN,
		    "number %u exceeds max_key_per_request %u", kr->number,
		    l->max_key_per_request);
		return -1;
	}
	if (kr->nslaves > l->max_sae_id_count) {
		snprintf(err, ETSI_ERRLEN,
		    "%zu additional_slave_SAE_IDs exceed "
		    "max_SAE_ID_count %u",
		    kr->nslaves, l->max_sae_id_count);
		return -1;
	}
	return slaves_check(kr, master, slave, err);
}

int
etsiapi_enc_request(const struct httpd_req *req, const struct etsiapi_limits *l,
    const char *master, const char *slave, struct etsi_key_req *kr,
    struct httpd_resp *resp)
{
	const char *detail = NULL;
	char	    err[ETSI_ERRLEN];
	int	    rc;

	memset(kr, 0, sizeof(*kr));
	if (strcmp(req->method, "GET") == 0)
		rc = enc_query(req, kr, err);
	else if (req->body == NULL) {
		kr->number = 1; /* empty body: all defaults */
		rc = 0;
	} else
		rc = etsi_key_req_parse(req->body, req->body_len, kr, err);
	if (rc == 0)
		rc = enc_check(l, master, slave, kr, err, &detail);
	if (rc == -1)
		httpd_error(resp, 400, err, detail);
	return rc;
}

int
etsiapi_dec_request(const struct httpd_req *req, const struct etsiapi_limits *l,
    struct etsi_key_ids *ids, struct httpd_resp *resp)
{
	const char *v;
	char	    err[ETSI_ERRLEN];
	int	    dup;

	ids->ids = NULL;
	ids->n = 0;
	if (strcmp(req->method, "GET") == 0) {
		v = httpd_query(req, "key_ID", &dup);
		if (v == NULL || dup || httpd_query_count(req) != 1) {
			httpd_error(resp, 400,
			    "the GET form of dec_keys takes "
			    "exactly one query parameter key_ID",
			    NULL);
			return -1;
		}
		if (strlen(v) == 0 || strlen(v) > ETSI_KEY_ID_MAX) {
			httpd_error(resp, 400, ETSI_MSG_KEYS_NOTFOUND, v);
			return -1;
		}
		if (etsi_key_ids_alloc(ids, 1) == -1)
			return -1;
		snprintf(ids->ids[0], sizeof(ids->ids[0]), "%s", v);
	} else if (req->body == NULL) {
		httpd_error(resp, 400, "dec_keys needs a Key IDs body", NULL);
		return -1;
	} else if (etsi_key_ids_parse(req->body, req->body_len, ids, err) ==
	    -1) {
		httpd_error(resp, 400, err, NULL);
		return -1;
	}
	if (ids->n > l->max_key_per_request) {
		snprintf(err, sizeof(err),
		    "%zu key_IDs exceed max_key_per_request %u", ids->n,
		    l->max_key_per_request);
		httpd_error(resp, 400, err, NULL);
		etsi_key_ids_free(ids);
		return -1;
	}
	return 0;
}

int
etsiapi_keys_reply(struct httpd_resp *resp, struct etsi_keys *keys)
{
	resp->status = 200;
	resp->secret = true;
	resp->body = etsi_keys_dump(keys);
	etsi_keys_free(keys);
	return resp->body ? 0 : -1;
}

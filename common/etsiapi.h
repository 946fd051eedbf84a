/*
 * The server side of ETSI GS QKD 014 over HTTP that qkd-sim and kmsd share:
 * routing of /api/v1/keys/{SAE_ID}/{op}, the caller's identity, and the
 * parsing and limit checks of enc_keys and dec_keys requests (GET and POST
 * forms). What is done with a valid request is the caller's business.
 */
#ifndef COMMON_ETSIAPI_H
#define COMMON_ETSIAPI_H

#include "common/etsi.h"
#include "common/httpd.h"

enum etsiapi_op { ETSIAPI_STATUS, ETSIAPI_ENC, ETSIAPI_DEC };

/* What a KME (or kmsd) advertises in its Status and enforces. */
struct etsiapi_limits {
	unsigned key_size;
	unsigned min_key_size;
	unsigned max_key_size;
	unsigned max_key_per_request;
	unsigned max_sae_id_count;
};

/* A certificate CN that stands for another SAE ID. */
struct etsiapi_map {
	char *cn;
	char *sae;
};

/*
 * Route a request: fills sae and op, or sets a 404/405 Error in resp and
 * returns -1.
 */
int etsiapi_route(const struct httpd_req *req, char sae[static ETSI_ID_MAX + 1],
    enum etsiapi_op *op, struct httpd_resp *resp);

/* The caller's SAE ID: its certificate CN, or what the map says it is. */
const char *
etsiapi_identity(const struct etsiapi_map *map, size_t nmap, const char *cn);

/*
 * An enc_keys request (GET query or POST body) checked against the limits;
 * size 0 becomes key_size. -1 with a 400 Error in resp.
 */
int etsiapi_enc_request(const struct httpd_req *req,
    const struct etsiapi_limits *l, const char *master, const char *slave,
    struct etsi_key_req *kr, struct httpd_resp *resp);

/* A dec_keys request (GET key_ID or POST Key IDs); -1 with a 400 in resp. */
int
etsiapi_dec_request(const struct httpd_req *req, const struct etsiapi_limits *l,
    struct etsi_key_ids *ids, struct httpd_resp *resp);

/* 200 with a Key container; wipes and frees keys. */
int etsiapi_keys_reply(struct httpd_resp *resp, struct etsi_keys *keys);

#endif

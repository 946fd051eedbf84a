/* The ETSI GS QKD 014 V1.1.1 HTTP API of one simulated KME. */
#ifndef SIM_API_H
#define SIM_API_H

#include "common/etsiapi.h"
#include "common/httpd.h"
#include "simulator/kme.h"

struct api {
	struct kme		 *kme;
	const char		 *kme_id;
	struct etsiapi_limits	  lim;
	unsigned		  max_key_count;
	const struct etsiapi_map *map;
	size_t			  nmap;
	int			  map_only; /* only mapped CNs are callers */
};

/* httpd_handler for the KME's API; ctx is a struct api. */
int api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);

#endif

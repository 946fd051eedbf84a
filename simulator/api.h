/* The ETSI GS QKD 014 V1.1.1 HTTP API of one simulated KME. */
#ifndef SIM_API_H
#define SIM_API_H

#include "common/httpd.h"
#include "simulator/kme.h"

struct sim_map {
	char	*cn;		/* certificate subject CN */
	char	*sae;		/* SAE ID it stands for */
};

struct api {
	struct kme		*kme;
	const char		*kme_id;
	unsigned		 key_size;
	unsigned		 min_key_size;
	unsigned		 max_key_size;
	unsigned		 max_key_per_request;
	unsigned		 max_key_count;
	unsigned		 max_sae_id_count;
	const struct sim_map	*map;
	size_t			 nmap;
};

/* httpd_handler for the KME's API; ctx is a struct api. */
int	api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);

#endif

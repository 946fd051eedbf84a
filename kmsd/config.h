/* kmsd configuration: its table for common/cfg (file, flags, --help, man). */
#ifndef KMSD_CONFIG_H
#define KMSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "common/etsiapi.h"
#include "common/httpd.h"

#define KMSD_MAX_SAES  32
#define KMSD_MAX_PEERS 32
#define KMSD_MAX_MAP   64

/* A local SAE: its upstream certificate, whom it may exchange keys with. */
struct kmsd_sae {
	char  *id;
	char  *cert; /* presented upstream on its behalf */
	char  *key;
	char  *peers[KMSD_MAX_PEERS]; /* ACL: remote SAEs */
	size_t npeers;
	char  *pool[KMSD_MAX_PEERS]; /* remote SAEs to keep a key pool for */
	size_t npool;
};

struct kmsd_config {
	/* [kmsd] */
	char	*id;
	char	 listen_host[64];
	uint16_t listen_port;
	char	*cert, *key, *ca;
	char	*db, *kek_file, *ready_file, *log_level;
	char	 metrics_host[64];
	uint16_t metrics_port;
	int	 metrics_set;
	char	*metrics_sae; /* CN served /metrics on the API port */
	unsigned max_body;
	unsigned max_key_per_request; /* northbound; split upstream */
	struct httpd_limits http;     /* API connection limits */
	/* [upstream] */
	int		    simulator; /* mode = simulator */
	char		   *url;
	char		   *up_ca;
	unsigned	    timeout_ms;
	unsigned	    connections;
	char		   *sim_config;
	/* [pool] */
	unsigned	    key_size; /* bits of pooled keys */
	unsigned	pool_low, pool_high, pool_batch, pool_lease, pool_ttl_s;
	int		pool_pg;     /* backend = postgresql */
	char	       *pg_conninfo; /* its libpq connection string */
	/* [sae NAME] */
	struct kmsd_sae saes[KMSD_MAX_SAES];
	size_t		nsaes;
	/* [sae_map] */
	struct etsiapi_map map[KMSD_MAX_MAP];
	size_t		   nmap;
};

/* Every setting of kmsd, with the checks after the file and the flags. */
extern const struct cfg_table kmsd_cfg_table;

void kmsd_config_free(struct kmsd_config *c);

const struct kmsd_sae	   *
kmsd_config_sae(const struct kmsd_config *c, const char *id);
bool kmsd_sae_has_peer(const struct kmsd_sae *s, const char *peer);

#endif

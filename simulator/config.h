/* qkd-sim configuration: its table for common/cfg (file, flags, --help, man). */
#ifndef SIM_CONFIG_H
#define SIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "simulator/api.h"

#define SIM_MAX_SAES 64
#define SIM_MAX_MAP  64

struct sim_config {
	char	*id;
	char	 listen_host[64];
	uint16_t listen_port;
	char	*cert, *key, *ca;
	char	*saes[SIM_MAX_SAES];
	size_t	 nsaes;
	unsigned key_size, min_key_size, max_key_size;
	unsigned max_key_per_request, max_key_count, max_sae_id_count;
	unsigned max_body;
	unsigned key_ttl_s, max_keys_per_pair;
	char	 metrics_host[64]; /* plain-HTTP /metrics, if set */
	uint16_t metrics_port;
	int	 metrics_set;
	struct httpd_limits http; /* API connection limits */
	char		   *db, *kek_file, *ready_file, *log_level;
	/* [link] */
	int		    transmitter;
	char		    link_listen_host[64];
	uint16_t	    link_listen_port;
	int		    link_listen_set;
	char		    link_peer_host[64];
	uint16_t	    link_peer_port;
	int		    link_peer_set;
	char		   *peer_id;
	uint64_t	    key_rate;
	unsigned	    link_timeout_ms;
	/* [sae_map] */
	struct etsiapi_map  map[SIM_MAX_MAP];
	size_t		    nmap;
	int map_only; /* [kme] sae_map_only: unmapped CNs get 401 */
};

/* Every setting of qkd-sim, with the checks after the file and the flags
 * (also kmsd's embedded KME: [upstream] simulator_config). */
extern const struct cfg_table sim_cfg_table;

void sim_config_free(struct sim_config *c);

#endif

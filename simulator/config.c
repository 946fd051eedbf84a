/* qkd-sim configuration (libinih for the file, same setter for the flags). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"
#include "simulator/config.h"

void
sim_config_defaults(struct sim_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 8443;
	c->key_size = 256;
	c->min_key_size = 64;
	c->max_key_size = 8192;
	c->max_key_per_request = 128;
	c->max_key_count = 100000;
	c->max_sae_id_count = 8;
	c->max_body = 64 * 1024;
	c->key_ttl_s = 7200;
	c->max_keys_per_pair = 100000;
	c->key_rate = 1000000;
	c->link_timeout_ms = 2000;
}

static int
set_kme(struct sim_config *c, const char *n, const char *v, char *err, size_t el)
{
	int	rc;

	if (strcmp(n, "id") == 0) {
		if (!etsi_id_valid(v)) {
			snprintf(err, el, "id \"%s\" is not a valid KME ID", v);
			return -1;
		}
		return cfg_str(&c->id, v);
	}
	if (strcmp(n, "listen") == 0)
		return cfg_addr(c->listen_host, sizeof(c->listen_host),
		    &c->listen_port, n, v, err, el);
	if (strcmp(n, "cert") == 0)
		return cfg_str(&c->cert, v);
	if (strcmp(n, "key") == 0)
		return cfg_str(&c->key, v);
	if (strcmp(n, "ca") == 0)
		return cfg_str(&c->ca, v);
	if (strcmp(n, "saes") == 0)
		return cfg_id_list(c->saes, &c->nsaes, SIM_MAX_SAES, n, v, err, el);
	if (strcmp(n, "sae_map_only") == 0) {
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
			snprintf(err, el, "sae_map_only \"%s\" is neither yes nor no", v);
			return -1;
		}
		c->map_only = strcmp(v, "yes") == 0;
		return 0;
	}
	if (strcmp(n, "key_size") == 0)
		return cfg_uint(&c->key_size, n, v, 8, ETSI_MAX_KEY_BYTES * 8, err, el);
	if (strcmp(n, "min_key_size") == 0)
		return cfg_uint(&c->min_key_size, n, v, 8, ETSI_MAX_KEY_BYTES * 8, err, el);
	if (strcmp(n, "max_key_size") == 0)
		return cfg_uint(&c->max_key_size, n, v, 8, ETSI_MAX_KEY_BYTES * 8, err, el);
	if (strcmp(n, "max_key_per_request") == 0)
		return cfg_uint(&c->max_key_per_request, n, v, 1, ETSI_MAX_KEYS, err, el);
	if (strcmp(n, "max_key_count") == 0)
		return cfg_uint(&c->max_key_count, n, v, 1, 100000000, err, el);
	if (strcmp(n, "max_sae_id_count") == 0)
		return cfg_uint(&c->max_sae_id_count, n, v, 0, ETSI_MAX_SLAVES, err, el);
	if (strcmp(n, "max_body") == 0)
		return cfg_uint(&c->max_body, n, v, 1024, 16 * 1024 * 1024, err, el);
	if (strcmp(n, "key_ttl_s") == 0)
		return cfg_uint(&c->key_ttl_s, n, v, 0, 100000000, err, el);
	if (strcmp(n, "max_keys_per_pair") == 0)
		return cfg_uint(&c->max_keys_per_pair, n, v, 0, 100000000, err, el);
	if (strcmp(n, "metrics_listen") == 0) {
		c->metrics_set = 1;
		return cfg_addr(c->metrics_host, sizeof(c->metrics_host),
		    &c->metrics_port, n, v, err, el);
	}
	if (strcmp(n, "db") == 0)
		return cfg_str(&c->db, v);
	if (strcmp(n, "kek_file") == 0)
		return cfg_str(&c->kek_file, v);
	if (strcmp(n, "ready_file") == 0)
		return cfg_str(&c->ready_file, v);
	if (strcmp(n, "log_level") == 0)
		return cfg_str(&c->log_level, v);
	if ((rc = httpd_limits_set(&c->http, n, v, err, el)) != 1)
		return rc;
	snprintf(err, el, "unknown setting \"%s\" in [kme]", n);
	return -1;
}

static int
set_link(struct sim_config *c, const char *n, const char *v, char *err, size_t el)
{
	if (strcmp(n, "role") == 0) {
		if (strcmp(v, "transmitter") != 0 && strcmp(v, "receiver") != 0) {
			snprintf(err, el, "role \"%s\" is neither transmitter "
			    "nor receiver", v);
			return -1;
		}
		c->transmitter = strcmp(v, "transmitter") == 0;
		return 0;
	}
	if (strcmp(n, "listen") == 0) {
		c->link_listen_set = 1;
		return cfg_addr(c->link_listen_host, sizeof(c->link_listen_host),
		    &c->link_listen_port, n, v, err, el);
	}
	if (strcmp(n, "peer") == 0) {
		c->link_peer_set = 1;
		return cfg_addr(c->link_peer_host, sizeof(c->link_peer_host),
		    &c->link_peer_port, n, v, err, el);
	}
	if (strcmp(n, "peer_id") == 0) {
		if (!etsi_id_valid(v)) {
			snprintf(err, el, "peer_id \"%s\" is not a valid KME ID", v);
			return -1;
		}
		return cfg_str(&c->peer_id, v);
	}
	if (strcmp(n, "key_rate") == 0) {
		if (num_u64(v, 1, 100000000000ull, &c->key_rate) == -1) {
			snprintf(err, el, "key_rate \"%s\" is not a number of bits/s "
			    "in [1, 1e11]", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(n, "timeout_ms") == 0)
		return cfg_uint(&c->link_timeout_ms, n, v, 10, 600000, err, el);
	snprintf(err, el, "unknown setting \"%s\" in [link]", n);
	return -1;
}

int
sim_config_set(struct sim_config *c, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	int	rc;

	err[0] = '\0';
	if (strcmp(section, "kme") == 0)
		rc = set_kme(c, name, value, err, errlen);
	else if (strcmp(section, "link") == 0)
		rc = set_link(c, name, value, err, errlen);
	else if (strcmp(section, "sae_map") == 0)
		rc = cfg_map_add(c->map, &c->nmap, SIM_MAX_MAP, name, value, err, errlen);
	else {
		snprintf(err, errlen, "unknown section [%s]", section);
		rc = -1;
	}
	if (rc == -1 && err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	return rc;
}

static int
sim_config_setter(void *ctx, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	return sim_config_set(ctx, section, name, value, err, errlen);
}

int
sim_config_load(struct sim_config *c, const char *path, char *err, size_t errlen)
{
	return cfg_load(path, sim_config_setter, c, err, errlen);
}

int
sim_config_finish(struct sim_config *c, char *err, size_t errlen)
{
	const char	*miss = NULL;

	if (c->id == NULL)
		miss = "id";
	else if (c->cert == NULL)
		miss = "cert";
	else if (c->key == NULL)
		miss = "key";
	else if (c->ca == NULL)
		miss = "ca";
	else if (c->peer_id == NULL)
		miss = "peer_id";
	else if (c->nsaes == 0)
		miss = "saes";
	if (miss) {
		snprintf(err, errlen, "%s is not set", miss);
		return -1;
	}
	if (c->link_listen_set == c->link_peer_set) {
		snprintf(err, errlen, "set exactly one of [link] listen and [link] peer");
		return -1;
	}
	if (c->key_size % 8 || c->min_key_size % 8 || c->max_key_size % 8) {
		snprintf(err, errlen, "key sizes must be multiples of 8 (key_size %u, "
		    "min_key_size %u, max_key_size %u)", c->key_size,
		    c->min_key_size, c->max_key_size);
		return -1;
	}
	if (c->min_key_size > c->key_size || c->key_size > c->max_key_size) {
		snprintf(err, errlen, "need min_key_size %u <= key_size %u <= "
		    "max_key_size %u", c->min_key_size, c->key_size, c->max_key_size);
		return -1;
	}
	if (c->db && c->kek_file == NULL) {
		snprintf(err, errlen, "db \"%s\" needs kek_file (the key-encryption "
		    "key file)", c->db);
		return -1;
	}
	return 0;
}

void
sim_config_free(struct sim_config *c)
{
	free(c->id);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c->db);
	free(c->kek_file);
	free(c->ready_file);
	free(c->log_level);
	free(c->peer_id);
	for (size_t i = 0; i < c->nsaes; i++)
		free(c->saes[i]);
	for (size_t i = 0; i < c->nmap; i++) {
		free(c->map[i].cn);
		free(c->map[i].sae);
	}
}

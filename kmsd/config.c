/* kmsd configuration: every line goes through kmsd_config_set, so the file
 * and the flags share one checker, and errors name the bad value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"
#include "kmsd/config.h"

void
kmsd_config_defaults(struct kmsd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 7443;
	c->max_body = 64 * 1024;
	c->max_key_per_request = 1024;
	c->timeout_ms = 3000;
	c->connections = 4;
	c->key_size = 256;
	c->pool_low = 256;
	c->pool_high = 1024;
	c->pool_batch = 128;
	c->pool_lease = 256;
	c->pool_ttl_s = 3600;
}

static int
set_main(struct kmsd_config *c, const char *n, const char *v, char *err, size_t el)
{
	int	rc;

	if (strcmp(n, "id") == 0)
		return cfg_str(&c->id, v);
	if (strcmp(n, "listen") == 0)
		return cfg_addr(c->listen_host, sizeof(c->listen_host),
		    &c->listen_port, n, v, err, el);
	if (strcmp(n, "metrics_listen") == 0) {
		c->metrics_set = 1;
		return cfg_addr(c->metrics_host, sizeof(c->metrics_host),
		    &c->metrics_port, n, v, err, el);
	}
	if (strcmp(n, "metrics_sae") == 0) {
		if (!etsi_id_valid(v)) {
			snprintf(err, el, "metrics_sae \"%s\" is not a valid "
			    "certificate CN", v);
			return -1;
		}
		return cfg_str(&c->metrics_sae, v);
	}
	if (strcmp(n, "cert") == 0)
		return cfg_str(&c->cert, v);
	if (strcmp(n, "key") == 0)
		return cfg_str(&c->key, v);
	if (strcmp(n, "ca") == 0)
		return cfg_str(&c->ca, v);
	if (strcmp(n, "db") == 0)
		return cfg_str(&c->db, v);
	if (strcmp(n, "kek_file") == 0)
		return cfg_str(&c->kek_file, v);
	if (strcmp(n, "ready_file") == 0)
		return cfg_str(&c->ready_file, v);
	if (strcmp(n, "log_level") == 0)
		return cfg_str(&c->log_level, v);
	if (strcmp(n, "max_body") == 0)
		return cfg_uint(&c->max_body, n, v, 1024, 16 * 1024 * 1024, err, el);
	if (strcmp(n, "max_key_per_request") == 0)
		return cfg_uint(&c->max_key_per_request, n, v, 1, ETSI_MAX_KEYS, err, el);
	if ((rc = httpd_limits_set(&c->http, n, v, err, el)) != 1)
		return rc;
	snprintf(err, el, "unknown setting \"%s\" in [kmsd]", n);
	return -1;
}

static int
set_upstream(struct kmsd_config *c, const char *n, const char *v, char *err,
    size_t el)
{
	if (strcmp(n, "mode") == 0) {
		if (strcmp(v, "hardware") != 0 && strcmp(v, "simulator") != 0) {
			snprintf(err, el, "mode \"%s\" is neither hardware nor "
			    "simulator", v);
			return -1;
		}
		c->simulator = strcmp(v, "simulator") == 0;
		return 0;
	}
	if (strcmp(n, "url") == 0) {
		if (strncmp(v, "https://", 8) != 0) {
			snprintf(err, el, "url \"%s\" is not an https:// URL", v);
			return -1;
		}
		return cfg_str(&c->url, v);
	}
	if (strcmp(n, "ca") == 0)
		return cfg_str(&c->up_ca, v);
	if (strcmp(n, "timeout_ms") == 0)
		return cfg_uint(&c->timeout_ms, n, v, 10, 600000, err, el);
	if (strcmp(n, "connections") == 0)
		return cfg_uint(&c->connections, n, v, 1, 64, err, el);
	if (strcmp(n, "simulator_config") == 0)
		return cfg_str(&c->sim_config, v);
	snprintf(err, el, "unknown setting \"%s\" in [upstream]", n);
	return -1;
}

static int
set_pool(struct kmsd_config *c, const char *n, const char *v, char *err, size_t el)
{
	if (strcmp(n, "key_size") == 0)
		return cfg_uint(&c->key_size, n, v, 8, ETSI_MAX_KEY_BYTES * 8, err, el);
	if (strcmp(n, "low") == 0)
		return cfg_uint(&c->pool_low, n, v, 0, 10000000, err, el);
	if (strcmp(n, "high") == 0)
		return cfg_uint(&c->pool_high, n, v, 1, 10000000, err, el);
	if (strcmp(n, "batch") == 0)
		return cfg_uint(&c->pool_batch, n, v, 1, 100000, err, el);
	if (strcmp(n, "lease") == 0)
		return cfg_uint(&c->pool_lease, n, v, 1, 100000, err, el);
	if (strcmp(n, "ttl_s") == 0)
		return cfg_uint(&c->pool_ttl_s, n, v, 1, 100000000, err, el);
	snprintf(err, el, "unknown setting \"%s\" in [pool]", n);
	return -1;
}

static struct kmsd_sae *
sae_get(struct kmsd_config *c, const char *id, char *err, size_t el)
{
	for (size_t i = 0; i < c->nsaes; i++)
		if (strcmp(c->saes[i].id, id) == 0)
			return &c->saes[i];
	if (!etsi_id_valid(id) || c->nsaes == KMSD_MAX_SAES) {
		snprintf(err, el, "[sae %s]: not a valid SAE ID (or more than %d SAEs)",
		    id, KMSD_MAX_SAES);
		return NULL;
	}
	if ((c->saes[c->nsaes].id = strdup(id)) == NULL)
		return NULL;
	return &c->saes[c->nsaes++];
}

static int
set_sae(struct kmsd_config *c, const char *id, const char *n, const char *v,
    char *err, size_t el)
{
	struct kmsd_sae	*s;

	if ((s = sae_get(c, id, err, el)) == NULL)
		return -1;
	if (strcmp(n, "cert") == 0)
		return cfg_str(&s->cert, v);
	if (strcmp(n, "key") == 0)
		return cfg_str(&s->key, v);
	if (strcmp(n, "peers") == 0)
		return cfg_id_list(s->peers, &s->npeers, KMSD_MAX_PEERS, n, v, err, el);
	if (strcmp(n, "pool") == 0)
		return cfg_id_list(s->pool, &s->npool, KMSD_MAX_PEERS, n, v, err, el);
	snprintf(err, el, "unknown setting \"%s\" in [sae %s]", n, id);
	return -1;
}

int
kmsd_config_set(struct kmsd_config *c, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	int	rc;

	err[0] = '\0';
	if (strcmp(section, "kmsd") == 0)
		rc = set_main(c, name, value, err, errlen);
	else if (strcmp(section, "upstream") == 0)
		rc = set_upstream(c, name, value, err, errlen);
	else if (strcmp(section, "pool") == 0)
		rc = set_pool(c, name, value, err, errlen);
	else if (strncmp(section, "sae ", 4) == 0)
		rc = set_sae(c, section + 4, name, value, err, errlen);
	else if (strcmp(section, "sae_map") == 0)
		rc = cfg_map_add(c->map, &c->nmap, KMSD_MAX_MAP, name, value, err, errlen);
	else {
		snprintf(err, errlen, "unknown section [%s]", section);
		rc = -1;
	}
	if (rc == -1 && err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	return rc;
}

static int
kmsd_config_setter(void *ctx, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	return kmsd_config_set(ctx, section, name, value, err, errlen);
}

int
kmsd_config_load(struct kmsd_config *c, const char *path, char *err, size_t errlen)
{
	return cfg_load(path, kmsd_config_setter, c, err, errlen);
}

static int
sae_finish(const struct kmsd_sae *s, char *err, size_t errlen)
{
	if (s->cert == NULL || s->key == NULL) {
		snprintf(err, errlen, "[sae %s] needs cert and key (its identity "
		    "at the KME)", s->id);
		return -1;
	}
	for (size_t i = 0; i < s->npool; i++)
		if (!kmsd_sae_has_peer(s, s->pool[i])) {
			snprintf(err, errlen, "[sae %s] pool \"%s\" is not in its "
			    "peers", s->id, s->pool[i]);
			return -1;
		}
	return 0;
}

int
kmsd_config_finish(struct kmsd_config *c, char *err, size_t errlen)
{
	const char	*miss = NULL;

	if (c->cert == NULL)
		miss = "[kmsd] cert";
	else if (c->key == NULL)
		miss = "[kmsd] key";
	else if (c->ca == NULL)
		miss = "[kmsd] ca";
	else if (c->db == NULL)
		miss = "[kmsd] db";
	else if (c->kek_file == NULL)
		miss = "[kmsd] kek_file";
	else if (c->simulator && c->sim_config == NULL)
		miss = "[upstream] simulator_config (mode = simulator)";
	else if (!c->simulator && c->url == NULL)
		miss = "[upstream] url (mode = hardware)";
	else if (c->nsaes == 0)
		miss = "an [sae ID] section";
	if (miss) {
		snprintf(err, errlen, "%s is not set", miss);
		return -1;
	}
	if (c->id == NULL && (c->id = strdup("kmsd")) == NULL)
		return -1;
	if (c->up_ca == NULL && (c->up_ca = strdup(c->ca)) == NULL)
		return -1;
	if (c->key_size % 8 != 0) {
		snprintf(err, errlen, "[pool] key_size \"%u\" is not a multiple of 8",
		    c->key_size);
		return -1;
	}
	if (c->pool_low >= c->pool_high) {
		snprintf(err, errlen, "[pool] low %u must be below high %u",
		    c->pool_low, c->pool_high);
		return -1;
	}
	for (size_t i = 0; i < c->nsaes; i++)
		if (sae_finish(&c->saes[i], err, errlen) == -1)
			return -1;
	return 0;
}

static void
sae_free(struct kmsd_sae *s)
{
	free(s->id);
	free(s->cert);
	free(s->key);
	for (size_t i = 0; i < s->npeers; i++)
		free(s->peers[i]);
	for (size_t i = 0; i < s->npool; i++)
		free(s->pool[i]);
}

void
kmsd_config_free(struct kmsd_config *c)
{
	free(c->id);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c->metrics_sae);
	free(c->db);
	free(c->kek_file);
	free(c->ready_file);
	free(c->log_level);
	free(c->url);
	free(c->up_ca);
	free(c->sim_config);
	for (size_t i = 0; i < c->nsaes; i++)
		sae_free(&c->saes[i]);
	for (size_t i = 0; i < c->nmap; i++) {
		free(c->map[i].cn);
		free(c->map[i].sae);
	}
	memset(c, 0, sizeof(*c));
}

const struct kmsd_sae *
kmsd_config_sae(const struct kmsd_config *c, const char *id)
{
	for (size_t i = 0; i < c->nsaes; i++)
		if (strcmp(c->saes[i].id, id) == 0)
			return &c->saes[i];
	return NULL;
}

int
kmsd_sae_has_peer(const struct kmsd_sae *s, const char *peer)
{
	for (size_t i = 0; i < s->npeers; i++)
		if (strcmp(s->peers[i], peer) == 0)
			return 1;
	return 0;
}

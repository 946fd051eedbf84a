/* kmsd configuration: the table of its settings (common/cfg.h does the
 * rest), the [sae ID] sections, and the checks across settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "kmsd/config.h"

#define K(m) CFG_AT(struct kmsd_config, m)
#define S(m) CFG_AT(struct kmsd_sae, m)

static const struct cfg_name log_levels[] = { { "error", 0 }, { "warn", 0 },
	{ "info", 0 }, { "debug", 0 }, { NULL, 0 } };
static const struct cfg_name modes[] = { { "hardware", 0 }, { "simulator", 1 },
	{ NULL, 0 } };

static const struct cfg_name backends[] = { { "sqlite", 0 },
	{ "postgresql", 1 }, { NULL, 0 } };

static const struct cfg_opt kmsd_opts[] = {
	{ "kmsd", "id", CFG_STR, K(id), "kmsd", "id",
	    .help = "name in logs and /healthz", .arg = "NAME" },
	{ "kmsd", "listen", CFG_ADDR, K(listen_host), "127.0.0.1:7443",
	    "listen", .help = "ETSI 014 API for local SAEs (mutual TLS)",
	    .off2 = offsetof(struct kmsd_config, listen_port) },
	{ "kmsd", "cert", CFG_PATH, K(cert), NULL, "cert",
	    .help = "kmsd's server certificate (PEM; required)" },
	{ "kmsd", "key", CFG_PATH, K(key), NULL, "key",
	    .help = "kmsd's server private key (required)" },
	{ "kmsd", "ca", CFG_PATH, K(ca), NULL, "ca",
	    .help = "CA that local SAE certificates chain to (required)" },
	{ "kmsd", "db", CFG_PATH, K(db), NULL, "db",
	    .help = "key pool database, SQLite (required with [pool] "
		    "backend sqlite)" },
	{ "kmsd", "kek_file", CFG_PATH, K(kek_file), NULL, "kek-file",
	    .help =
		"key-encryption key file (0600; made if absent; required)" },
	{ "kmsd", "metrics_listen", CFG_ADDR, K(metrics_host), NULL,
	    "metrics-listen",
	    .help = "plain-HTTP /healthz and /metrics (off if unset)",
	    .off2 = offsetof(struct kmsd_config, metrics_port),
	    .seen = CFG_SEEN(struct kmsd_config, metrics_set) },
	{ "kmsd", "metrics_sae", CFG_ID, K(metrics_sae), NULL, "metrics-sae",
	    .help =
		"client CN also served /healthz, /metrics on the API port" },
	{ "kmsd", "ready_file", CFG_PATH, K(ready_file), NULL, "ready-file",
	    .help =
		"write api_port=, metrics_port=, kme_port=, pid= here when up" },
	{ "kmsd", "log_level", CFG_STR, K(log_level), "info", "log-level",
	    .help = "least important log lines written", .names = log_levels },
	{ "kmsd", "max_body", CFG_UINT, K(max_body), "65536", NULL,
	    .help = "largest request body in bytes", .min = 1024,
	    .max = 16 * 1024 * 1024 },
	{ "kmsd", "max_key_per_request", CFG_UINT, K(max_key_per_request),
	    "1024", "max-key-per-request",
	    .help = "keys per local request (split for the KME)", .min = 1,
	    .max = ETSI_MAX_KEYS },
	CFG_HTTPD_LIMITS("kmsd", struct kmsd_config, http),
	{ "upstream", "mode", CFG_ENUM, K(simulator), "hardware", "mode",
	    .help = "hardware (a KME at url) or simulator (embedded qkd-sim)",
	    .names = modes },
	{ "upstream", "url", CFG_URL, K(url), NULL, "upstream",
	    .help = "the KME (hardware mode)" },
	{ "upstream", "ca", CFG_PATH, K(up_ca), NULL, "upstream-ca",
	    .help = "CA of the KME's certificate (default: [kmsd] ca)" },
	{ "upstream", "timeout_ms", CFG_UINT, K(timeout_ms), "3000",
	    "upstream-timeout-ms", .help = "per KME call, milliseconds",
	    .min = 10, .max = 600000 },
	{ "upstream", "connections", CFG_UINT, K(connections), "4", NULL,
	    .help = "persistent TLS connections per SAE identity", .min = 1,
	    .max = 64 },
	{ "upstream", "simulator_config", CFG_PATH, K(sim_config), NULL,
	    "simulator-config",
	    .help = "qkd-sim config of the embedded KME "
		    "(simulator mode)" },
	{ "pool", "key_size", CFG_UINT, K(key_size), "256", NULL,
	    .help = "bits of pooled keys, a multiple of 8", .min = 8,
	    .max = ETSI_MAX_KEY_BYTES * 8 },
	{ "pool", "low", CFG_UINT, K(pool_low), "256", "pool-low",
	    .help = "refill below this many keys per pair", .min = 0,
	    .max = 10000000 },
	{ "pool", "high", CFG_UINT, K(pool_high), "1024", "pool-high",
	    .help = "refill up to this many", .min = 1, .max = 10000000 },
	{ "pool", "batch", CFG_UINT, K(pool_batch), "128", NULL,
	    .help = "keys per refill request", .min = 1, .max = 100000 },
	{ "pool", "lease", CFG_UINT, K(pool_lease), "256", NULL,
	    .help = "keys taken from disk per lease", .min = 1, .max = 100000 },
	{ "pool", "ttl_s", CFG_UINT, K(pool_ttl_s), "3600", "pool-ttl-s",
	    .help = "drop pooled keys older than this, seconds", .min = 1,
	    .max = 100000000 },
	{ "pool", "backend", CFG_ENUM, K(pool_pg), "sqlite", "pool-backend",
	    .help = "sqlite ([kmsd] db, this kmsd alone) or postgresql "
		    "(conninfo; a pool several kmsd share)",
	    .names = backends },
	/* No flag: a conninfo may hold a password, and ps shows argv. */
	{ "pool", "conninfo", CFG_STR, K(pg_conninfo), NULL, NULL,
	    .help = "libpq connection string of the PostgreSQL pool "
		    "(required with backend postgresql)" },
	{ "sae *", "cert", CFG_PATH, S(cert), NULL, NULL,
	    .help = "kmsd's client certificate for this local SAE at the KME "
		    "(required)" },
	{ "sae *", "key", CFG_PATH, S(key), NULL, NULL,
	    .help = "its private key (required)" },
	{ "sae *", "peers", CFG_IDLIST, S(peers), NULL, NULL,
	    .help = "ACL: remote SAEs this SAE exchanges keys with",
	    .max = KMSD_MAX_PEERS, .off2 = offsetof(struct kmsd_sae, npeers) },
	{ "sae *", "pool", CFG_IDLIST, S(pool), NULL, NULL,
	    .help = "remote SAEs to keep a key pool for (among peers)",
	    .max = KMSD_MAX_PEERS, .off2 = offsetof(struct kmsd_sae, npool) },
	{ "sae_map", "*", CFG_MAP, K(map), NULL, NULL,
	    .help =
		"a client certificate CN (the key) that stands for this SAE ID",
	    .max = KMSD_MAX_MAP, .off2 = offsetof(struct kmsd_config, nmap) },
};

/* [sae ID]: the SAE of that ID, made on its first setting. */
static void *
kmsd_sae_instance(void *cfg, const char *name, const char *id, bool *fresh,
    char *err, size_t el)
{
	struct kmsd_config *c = cfg;

	*fresh = false;
	for (size_t i = 0; i < c->nsaes; i++)
		if (strcmp(c->saes[i].id, id) == 0)
			return &c->saes[i];
	if (!etsi_id_valid(id) || c->nsaes == KMSD_MAX_SAES) {
		snprintf(err, el,
		    "[sae %s]: not a valid SAE ID (or more than %d SAEs)", id,
		    KMSD_MAX_SAES);
		return NULL;
	}
	if ((c->saes[c->nsaes].id = strdup(id)) == NULL)
		return NULL;
	*fresh = true;
	return &c->saes[c->nsaes++];
}

static int
sae_finish(const struct kmsd_sae *s, char *err, size_t errlen)
{
	if (s->cert == NULL || s->key == NULL) {
		snprintf(err, errlen,
		    "[sae %s] needs cert and key (its identity "
		    "at the KME)",
		    s->id);
		return -1;
	}
	for (size_t i = 0; i < s->npool; i++)
		if (!kmsd_sae_has_peer(s, s->pool[i])) {
			snprintf(err, errlen,
			    "[sae %s] pool \"%s\" is not in its "
			    "peers",
			    s->id, s->pool[i]);
			return -1;
		}
	return 0;
}

/* The first setting that is required here and missing, or NULL. */
static const char *
kmsd_missing(const struct kmsd_config *c)
{
	if (c->cert == NULL)
		return "[kmsd] cert";
	if (c->key == NULL)
		return "[kmsd] key";
	if (c->ca == NULL)
		return "[kmsd] ca";
	if (!c->pool_pg && c->db == NULL)
		return "[kmsd] db";
	if (c->pool_pg && c->pg_conninfo == NULL)
		return "[pool] conninfo (backend = postgresql)";
	if (c->kek_file == NULL)
		return "[kmsd] kek_file";
	if (c->simulator && c->sim_config == NULL)
		return "[upstream] simulator_config (mode = simulator)";
	if (!c->simulator && c->url == NULL)
		return "[upstream] url (mode = hardware)";
	if (c->nsaes == 0)
		return "an [sae ID] section";
	return NULL;
}

static int
kmsd_config_finish(void *cfg, char *err, size_t errlen)
{
	struct kmsd_config *c = cfg;
	const char	   *miss;

	if ((miss = kmsd_missing(c)) != NULL) {
		snprintf(err, errlen, "%s is not set", miss);
		return -1;
	}
	if (c->up_ca == NULL && (c->up_ca = strdup(c->ca)) == NULL)
		return -1;
	if (c->key_size % 8 != 0) {
		snprintf(err, errlen,
		    "[pool] key_size \"%u\" is not a multiple of 8",
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
kmsd_config_init(void *cfg)
{
	memset(cfg, 0, sizeof(struct kmsd_config));
}

void
kmsd_config_free(struct kmsd_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nsaes; i++) {
		cfg_release(&kmsd_cfg_table, &c->saes[i], true);
		free(c->saes[i].id);
	}
	cfg_release(&kmsd_cfg_table, c, false);
	memset(c, 0, sizeof(*c));
}

static void
kmsd_config_free_cb(void *cfg)
{
	kmsd_config_free(cfg);
}

const struct cfg_table kmsd_cfg_table = {
	.prog = "kmsd",
	.usage =
	    "kmsd --config FILE [options]\n       kmsd --check-config FILE",
	.about =
	    "Per-site key daemon: ETSI GS QKD 014 with mutual TLS for local "
	    "SAEs,\na prefetched encrypted key pool, and the site's KME behind "
	    "it.\nSee kmsd/README.md.",
	.tail = "signals: SIGTERM/SIGINT stop, SIGHUP reloads the ACL and "
		"certificates",
	.opts = kmsd_opts,
	.nopts = sizeof(kmsd_opts) / sizeof(kmsd_opts[0]),
	.init = kmsd_config_init,
	.finish = kmsd_config_finish,
	.free = kmsd_config_free_cb,
	.instance = kmsd_sae_instance,
};

const struct kmsd_sae *
kmsd_config_sae(const struct kmsd_config *c, const char *id)
{
	for (size_t i = 0; i < c->nsaes; i++)
		if (strcmp(c->saes[i].id, id) == 0)
			return &c->saes[i];
	return NULL;
}

bool
kmsd_sae_has_peer(const struct kmsd_sae *s, const char *peer)
{
	for (size_t i = 0; i < s->npeers; i++)
		if (strcmp(s->peers[i], peer) == 0)
			return true;
	return false;
}

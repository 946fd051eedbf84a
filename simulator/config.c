/* qkd-sim configuration: the table of its settings (common/cfg.h does the
 * rest) and the checks across settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/httpd.h"
#include "simulator/config.h"

#define K(m)	CFG_AT(struct sim_config, m)
#define KEYBITS (ETSI_MAX_KEY_BYTES * 8)

static const struct cfg_name log_levels[] = { { "error", 0 }, { "warn", 0 },
	{ "info", 0 }, { "debug", 0 }, { NULL, 0 } };
static const struct cfg_name roles[] = { { "transmitter", 1 },
	{ "receiver", 0 }, { NULL, 0 } };

static const struct cfg_opt sim_opts[] = {
	{ "kme", "id", CFG_ID, K(id), NULL, "id",
	    .help = "this KME's ID, also its certificate's CN (required)" },
	{ "kme", "listen", CFG_ADDR, K(listen_host), "127.0.0.1:8443", "listen",
	    .help = "API address (port 0: any free one)",
	    .off2 = offsetof(struct sim_config, listen_port) },
	{ "kme", "cert", CFG_PATH, K(cert), NULL, "cert",
	    .help = "server certificate, PEM (required)" },
	{ "kme", "key", CFG_PATH, K(key), NULL, "key",
	    .help = "server private key, PEM (required)" },
	{ "kme", "ca", CFG_PATH, K(ca), NULL, "ca",
	    .help = "CA for client and peer certificates (required)" },
	{ "kme", "saes", CFG_IDLIST, K(saes), NULL, "saes",
	    .help = "SAE IDs attached to this KME (required)",
	    .max = SIM_MAX_SAES, .off2 = offsetof(struct sim_config, nsaes) },
	{ "kme", "sae_map_only", CFG_BOOL, K(map_only), "no", "sae-map-only",
	    .help = "yes: only CNs listed in [sae_map] may call" },
	{ "kme", "key_size", CFG_UINT, K(key_size), "256", "key-size",
	    .help = "default key size in bits", .min = 8, .max = KEYBITS },
	{ "kme", "min_key_size", CFG_UINT, K(min_key_size), "64",
	    "min-key-size", .help = "smallest key size served", .min = 8,
	    .max = KEYBITS },
	{ "kme", "max_key_size", CFG_UINT, K(max_key_size), "8192",
	    "max-key-size", .help = "largest key size served", .min = 8,
	    .max = KEYBITS },
	{ "kme", "max_key_per_request", CFG_UINT, K(max_key_per_request), "128",
	    "max-key-per-request", .help = "keys per request", .min = 1,
	    .max = ETSI_MAX_KEYS },
	{ "kme", "max_key_count", CFG_UINT, K(max_key_count), "100000",
	    "max-key-count", .help = "keys stored at most", .min = 1,
	    .max = 100000000 },
	{ "kme", "max_sae_id_count", CFG_UINT, K(max_sae_id_count), "8",
	    "max-sae-id-count", .help = "additional slave SAEs in a request",
	    .min = 0, .max = ETSI_MAX_SLAVES },
	{ "kme", "max_body", CFG_UINT, K(max_body), "65536", NULL,
	    .help = "largest request body in bytes", .min = 1024,
	    .max = 16 * 1024 * 1024 },
	{ "kme", "key_ttl_s", CFG_UINT, K(key_ttl_s), "7200", "key-ttl-s",
	    .help = "assigned keys unfetched this long are wiped (0: never)",
	    .min = 0, .max = 100000000 },
	{ "kme", "max_keys_per_pair", CFG_UINT, K(max_keys_per_pair), "100000",
	    "max-keys-per-pair",
	    .help = "keys waiting per master/slave pair (0: no cap)", .min = 0,
	    .max = 100000000 },
	{ "kme", "metrics_listen", CFG_ADDR, K(metrics_host), NULL,
	    "metrics-listen", .help = "plain-HTTP /metrics (off if unset)",
	    .off2 = offsetof(struct sim_config, metrics_port),
	    .seen = CFG_SEEN(struct sim_config, metrics_set) },
	{ "kme", "db", CFG_PATH, K(db), NULL, "db",
	    .help = "SQLite file: keys survive restarts (memory if unset)" },
	{ "kme", "kek_file", CFG_PATH, K(kek_file), NULL, "kek-file",
	    .help = "key-encryption key file (0600; made if absent)" },
	{ "kme", "ready_file", CFG_PATH, K(ready_file), NULL, "ready-file",
	    .help = "write api_port=, link_port=, metrics_port=, pid= here "
		    "when up" },
	{ "kme", "log_level", CFG_STR, K(log_level), "info", "log-level",
	    .help = "least important log lines written", .names = log_levels },
	CFG_HTTPD_LIMITS("kme", struct sim_config, http),
	{ "link", "role", CFG_ENUM, K(transmitter), "receiver", "role",
	    .help = "transmitter (makes key material) or receiver",
	    .names = roles },
	{ "link", "listen", CFG_ADDR, K(link_listen_host), NULL, "link-listen",
	    .help = "accept the peer KME here (this or peer)",
	    .off2 = offsetof(struct sim_config, link_listen_port),
	    .seen = CFG_SEEN(struct sim_config, link_listen_set) },
	{ "link", "peer", CFG_ADDR, K(link_peer_host), NULL, "link-peer",
	    .help = "connect to the peer KME here (this or listen)",
	    .off2 = offsetof(struct sim_config, link_peer_port),
	    .seen = CFG_SEEN(struct sim_config, link_peer_set) },
	{ "link", "peer_id", CFG_ID, K(peer_id), NULL, "peer-id",
	    .help = "the peer KME's ID, its certificate's CN (required)" },
	{ "link", "key_rate", CFG_UINT, K(key_rate), "1000000", "key-rate",
	    .help = "secret-key rate in bits/s", .min = 1,
	    .max = 100000000000ull },
	{ "link", "timeout_ms", CFG_UINT, K(link_timeout_ms), "2000",
	    "link-timeout-ms", .help = "wait for the peer's commit, ms",
	    .min = 10, .max = 600000 },
	{ "sae_map", "*", CFG_MAP, K(map), NULL, NULL,
	    .help = "a client certificate CN (the key) that stands for this "
		    "SAE ID",
	    .max = SIM_MAX_MAP, .off2 = offsetof(struct sim_config, nmap) },
};

/* The first setting that is required and missing, or NULL. */
static const char *
sim_missing(const struct sim_config *c)
{
	if (c->id == NULL)
		return "id";
	if (c->cert == NULL)
		return "cert";
	if (c->key == NULL)
		return "key";
	if (c->ca == NULL)
		return "ca";
	if (c->peer_id == NULL)
		return "peer_id";
	if (c->nsaes == 0)
		return "saes";
	return NULL;
}

static int
sim_config_finish(void *cfg, char *err, size_t errlen)
{
	struct sim_config *c = cfg;
	const char	  *miss;

	if ((miss = sim_missing(c)) != NULL) {
		snprintf(err, errlen, "%s is not set", miss);
		return -1;
	}
	if (c->link_listen_set == c->link_peer_set) {
		snprintf(err, errlen,
		    "set exactly one of [link] listen and [link] peer");
		return -1;
	}
	if (c->key_size % 8 || c->min_key_size % 8 || c->max_key_size % 8) {
		snprintf(err, errlen,
		    "key sizes must be multiples of 8 (key_size %u, "
		    "min_key_size %u, max_key_size %u)",
		    c->key_size, c->min_key_size, c->max_key_size);
		return -1;
	}
	if (c->min_key_size > c->key_size || c->key_size > c->max_key_size) {
		snprintf(err, errlen,
		    "need min_key_size %u <= key_size %u <= "
		    "max_key_size %u",
		    c->min_key_size, c->key_size, c->max_key_size);
		return -1;
	}
	if (c->db && c->kek_file == NULL) {
		snprintf(err, errlen,
		    "db \"%s\" needs kek_file (the key-encryption "
		    "key file)",
		    c->db);
		return -1;
	}
	return 0;
}

static void
sim_config_init(void *cfg)
{
	memset(cfg, 0, sizeof(struct sim_config));
}

void
sim_config_free(struct sim_config *c)
{
	cfg_release(&sim_cfg_table, c, false);
}

static void
sim_config_free_cb(void *cfg)
{
	sim_config_free(cfg);
}

const struct cfg_table sim_cfg_table = {
	.prog = "qkd-sim",
	.usage = "qkd-sim [--config FILE] [options]\n"
		 "       qkd-sim --check-config FILE [options]",
	.about =
	    "One ETSI GS QKD 014 KME of a simulated QKD pair. Run two (site "
	    "A and\nsite B); their QKD link is emulated over mutual TLS. See "
	    "simulator/README.md.",
	.opts = sim_opts,
	.nopts = sizeof(sim_opts) / sizeof(sim_opts[0]),
	.init = sim_config_init,
	.finish = sim_config_finish,
	.free = sim_config_free_cb,
};

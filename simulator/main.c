/* qkd-sim: one ETSI GS QKD 014 KME of a simulated QKD pair. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "simulator/config.h"
#include "simulator/sim.h"

/* Every flag but --config/--check-config/--help sets one config entry. */
static const struct cfg_flag sim_flags[] = {
	{ "id",			"kme",	"id",		"this KME's ID (e.g. kme-a)" },
	{ "listen",		"kme",	"listen",	"API address IPV4:PORT (port 0: any free one)" },
	{ "cert",		"kme",	"cert",		"server certificate (PEM)" },
	{ "key",		"kme",	"key",		"server private key (PEM)" },
	{ "ca",			"kme",	"ca",		"CA for client and peer certificates" },
	{ "saes",		"kme",	"saes",		"SAE IDs attached to this KME, comma separated" },
	{ "sae-map-only",	"kme",	"sae_map_only",	"yes: only CNs listed in [sae_map] may call (no)" },
	{ "key-size",		"kme",	"key_size",	"default key size in bits (256)" },
	{ "min-key-size",	"kme",	"min_key_size",	"smallest key size served (64)" },
	{ "max-key-size",	"kme",	"max_key_size",	"largest key size served (8192)" },
	{ "max-key-per-request", "kme",	"max_key_per_request", "keys per request (128)" },
	{ "max-key-count",	"kme",	"max_key_count", "keys stored at most (100000)" },
	{ "max-sae-id-count",	"kme",	"max_sae_id_count", "additional slave SAEs (8)" },
	{ "key-ttl-s",		"kme",	"key_ttl_s",	"assigned keys unfetched this long are wiped (7200; 0 never)" },
	{ "max-keys-per-pair",	"kme",	"max_keys_per_pair", "keys waiting per master/slave pair (100000; 0 no cap)" },
	{ "metrics-listen",	"kme",	"metrics_listen", "plain-HTTP /metrics on IPV4:PORT (off)" },
	{ "db",			"kme",	"db",		"SQLite file: keys survive restarts" },
	{ "kek-file",		"kme",	"kek_file",	"key-encryption key file (0600; made if absent)" },
	{ "ready-file",		"kme",	"ready_file",	"write api_port= and link_port= here when up" },
	{ "log-level",		"kme",	"log_level",	"error, warn, info or debug (info)" },
	{ "role",		"link",	"role",		"transmitter (makes key material) or receiver" },
	{ "link-listen",	"link",	"listen",	"accept the peer KME on IPV4:PORT" },
	{ "link-peer",		"link",	"peer",		"connect to the peer KME at IPV4:PORT" },
	{ "peer-id",		"link",	"peer_id",	"the peer KME's ID (its certificate CN)" },
	{ "key-rate",		"link",	"key_rate",	"secret-key rate in bits/s (1000000)" },
	{ "link-timeout-ms",	"link",	"timeout_ms",	"wait for the peer's commit (2000)" },
};
#define NFLAGS	(sizeof(sim_flags) / sizeof(sim_flags[0]))

static void
usage(FILE *f)
{
	fprintf(f, "usage: qkd-sim [--config FILE] [--check-config FILE] [options]\n\n"
	    "One ETSI GS QKD 014 KME of a simulated QKD pair. Run two (site A and\n"
	    "site B); their QKD link is emulated over mutual TLS. Flags override\n"
	    "the config file (INI: [kme], [link], [sae_map] CN = SAE_ID).\n\n");
	cfg_flags_usage(f, sim_flags, NFLAGS);
}

static int
write_ready(const char *path, uint16_t api, uint16_t link, uint16_t metrics)
{
	char	tmp[4096];
	FILE	*f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "api_port=%u\nlink_port=%u\nmetrics_port=%u\npid=%ld\n", api,
	    link, metrics, (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

static int
sim_setter(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	return sim_config_set(ctx, section, name, value, err, errlen);
}

/* Two passes: --config first, so that every other flag overrides it. */
static int
parse_args(int argc, char **argv, struct sim_config *c, int *check_only)
{
	struct cfg_args	a;
	char		err[512] = "";

	if (cfg_args_scan("qkd-sim", argc, argv, sim_flags, NFLAGS, &a) == -1) {
		usage(stderr);
		return -1;
	}
	if (a.help) {
		usage(stdout);
		exit(0);
	}
	*check_only = a.check_only;
	if ((a.file && sim_config_load(c, a.file, err, sizeof(err)) == -1) ||
	    cfg_args_apply(argc, argv, sim_flags, NFLAGS, sim_setter, c, err,
	    sizeof(err)) == -1 || sim_config_finish(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "qkd-sim: config: %s\n", err);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sim_config	 c;
	struct sim		*sim = NULL;
	enum log_level		 lvl = LOG_INFO;
	sigset_t		 set;
	char			 err[512];
	int			 check_only = 0, sig, ret = 1;

	sim_config_defaults(&c);
	log_init("qkd-sim", LOG_INFO);
	if (parse_args(argc, argv, &c, &check_only) == -1)
		goto done;
	if (c.log_level && log_level_parse(c.log_level, &lvl) == -1) {
		fprintf(stderr, "qkd-sim: config: log_level \"%s\" is not one of "
		    "error, warn, info, debug\n", c.log_level);
		goto done;
	}
	if (check_only) {
		printf("qkd-sim: config is valid\n");
		ret = 0;
		goto done;
	}
	log_init(c.id, lvl);
	sec_json_init();
	sec_harden();

	/* Threads started from here on inherit the blocked signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((sim = sim_start(&c, err, sizeof(err))) == NULL) {
		log_err("cannot start: %s", err);
		goto done;
	}
	if (c.ready_file && write_ready(c.ready_file, sim_api_port(sim),
	    sim_link_port(sim), sim_metrics_port(sim)) == -1) {
		log_err("cannot write ready file \"%s\"", c.ready_file);
		goto done;
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload in the simulator");
			continue;
		}
		log_info("%s: stopping", strsignal(sig));
		break;
	}
	ret = 0;
done:
	sim_stop(sim);
	sim_config_free(&c);
	return ret;
}

/* qkd-sim: one ETSI GS QKD 014 KME of a simulated QKD pair. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "common/log.h"
#include "simulator/api.h"
#include "simulator/config.h"
#include "simulator/kme.h"

/* Every flag but --config/--check-config/--help sets one config entry. */
static const struct sim_flag {
	const char	*flag;
	const char	*section;
	const char	*name;
	const char	*help;
} sim_flags[] = {
	{ "id",			"kme",	"id",		"this KME's ID (e.g. kme-a)" },
	{ "listen",		"kme",	"listen",	"API address IPV4:PORT (port 0: any free one)" },
	{ "cert",		"kme",	"cert",		"server certificate (PEM)" },
	{ "key",		"kme",	"key",		"server private key (PEM)" },
	{ "ca",			"kme",	"ca",		"CA for client and peer certificates" },
	{ "saes",		"kme",	"saes",		"SAE IDs attached to this KME, comma separated" },
	{ "key-size",		"kme",	"key_size",	"default key size in bits (256)" },
	{ "min-key-size",	"kme",	"min_key_size",	"smallest key size served (64)" },
	{ "max-key-size",	"kme",	"max_key_size",	"largest key size served (8192)" },
	{ "max-key-per-request", "kme",	"max_key_per_request", "keys per request (128)" },
	{ "max-key-count",	"kme",	"max_key_count", "keys stored at most (100000)" },
	{ "max-sae-id-count",	"kme",	"max_sae_id_count", "additional slave SAEs (8)" },
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
	fprintf(f, "  --config FILE             read settings from FILE\n"
	    "  --check-config FILE       check FILE and exit (0 if good)\n");
	for (size_t i = 0; i < NFLAGS; i++)
		fprintf(f, "  --%-22s  %s\n", sim_flags[i].flag, sim_flags[i].help);
	fprintf(f, "  -h, --help                this text\n");
}

static int
write_ready(const char *path, uint16_t api, uint16_t link)
{
	char	tmp[4096];
	FILE	*f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "api_port=%u\nlink_port=%u\npid=%ld\n", api, link, (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* Two passes: --config first, so that every other flag overrides it. */
static int
parse_args(int argc, char **argv, struct sim_config *c, int *check_only)
{
	struct option	 opts[NFLAGS + 4];
	char		 err[512] = "";
	const char	*cfgfile = NULL;
	int		 ch, idx;

	for (size_t i = 0; i < NFLAGS; i++)
		opts[i] = (struct option){ sim_flags[i].flag, required_argument, NULL, 0 };
	opts[NFLAGS] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[NFLAGS + 1] = (struct option){ "check-config", required_argument, NULL, 'C' };
	opts[NFLAGS + 2] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[NFLAGS + 3] = (struct option){ NULL, 0, NULL, 0 };

	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			exit(0);
		}
		if (ch == 'c' || ch == 'C') {
			cfgfile = optarg;
			*check_only = ch == 'C';
		} else if (ch != 0) {
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "qkd-sim: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (cfgfile && sim_config_load(c, cfgfile, err, sizeof(err)) == -1)
		goto bad;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (ch == 0 && sim_config_set(c, sim_flags[idx].section,
		    sim_flags[idx].name, optarg, err, sizeof(err)) == -1) {
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
			    " (flag --%s)", sim_flags[idx].flag);
			goto bad;
		}
	}
	if (sim_config_finish(c, err, sizeof(err)) == -1)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "qkd-sim: config: %s\n", err);
	return -1;
}

static void
fill_kme_cfg(const struct sim_config *c, struct kme_cfg *k)
{
	memset(k, 0, sizeof(*k));
	k->kme_id = c->id;
	k->sae_ids = (const char **)(uintptr_t)c->saes;
	k->n_sae = c->nsaes;
	k->key_size = c->key_size;
	k->min_key_size = c->min_key_size;
	k->max_key_size = c->max_key_size;
	k->max_key_count = c->max_key_count;
	k->db_path = c->db;
	k->kek_file = c->kek_file;
	k->transmitter = c->transmitter;
	k->key_rate = c->key_rate;
	if (c->link_listen_set) {
		k->link_listen_host = c->link_listen_host;
		k->link_listen_port = c->link_listen_port;
	} else {
		k->link_peer_host = c->link_peer_host;
		k->link_peer_port = c->link_peer_port;
	}
	k->link_cert = c->cert;
	k->link_key = c->key;
	k->ca_file = c->ca;
	k->peer_kme_id = c->peer_id;
	k->link_timeout_ms = c->link_timeout_ms;
}

int
main(int argc, char **argv)
{
	struct sim_config	 c;
	struct kme_cfg		 kc;
	struct httpd_cfg	 hc;
	struct api		 api;
	struct kme		*kme = NULL;
	struct httpd		*httpd = NULL;
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

	/* Threads started from here on inherit the blocked signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	fill_kme_cfg(&c, &kc);
	if ((kme = kme_start(&kc, err, sizeof(err))) == NULL) {
		log_err("cannot start: %s", err);
		goto done;
	}
	memset(&api, 0, sizeof(api));
	api.kme = kme;
	api.kme_id = c.id;
	api.key_size = c.key_size;
	api.min_key_size = c.min_key_size;
	api.max_key_size = c.max_key_size;
	api.max_key_per_request = c.max_key_per_request;
	api.max_key_count = c.max_key_count;
	api.max_sae_id_count = c.max_sae_id_count;
	api.map = c.map;
	api.nmap = c.nmap;
	memset(&hc, 0, sizeof(hc));
	hc.host = c.listen_host;
	hc.port = c.listen_port;
	hc.cert_file = c.cert;
	hc.key_file = c.key;
	hc.ca_file = c.ca;
	hc.max_body = c.max_body;
	hc.name = "api";
	if ((httpd = httpd_start(&hc, api_handle, &api, err, sizeof(err))) == NULL) {
		log_err("cannot start the API: %s", err);
		goto done;
	}
	log_info("ETSI 014 API on https://%s:%u, QKD link %s %s:%u, peer %s, "
	    "%s, %zu SAE(s), storage %s", c.listen_host, httpd_port(httpd),
	    c.link_listen_set ? "listening on" : "to",
	    c.link_listen_set ? c.link_listen_host : c.link_peer_host,
	    c.link_listen_set ? kme_link_port(kme) : c.link_peer_port, c.peer_id,
	    c.transmitter ? "transmitter" : "receiver", c.nsaes,
	    c.db ? c.db : "memory");
	if (c.ready_file && write_ready(c.ready_file, httpd_port(httpd),
	    kme_link_port(kme)) == -1) {
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
	httpd_stop(httpd);
	kme_stop(kme);
	sim_config_free(&c);
	return ret;
}

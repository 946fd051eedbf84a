/* kmsd: the per-site key daemon in front of the site's KME. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/tlsid.h"
#include "kmsd/kmsd.h"
#include "simulator/sim.h"

static const struct cfg_flag kmsd_flags[] = {
	{ "id",			"kmsd",	"id",		"name in logs and /healthz" },
	{ "listen",		"kmsd",	"listen",	"ETSI 014 API for local SAEs, IPV4:PORT (7443)" },
	{ "cert",		"kmsd",	"cert",		"kmsd's server certificate (PEM)" },
	{ "key",		"kmsd",	"key",		"kmsd's server private key" },
	{ "ca",			"kmsd",	"ca",		"CA that local SAE certificates chain to" },
	{ "db",			"kmsd",	"db",		"key pool database (SQLite)" },
	{ "kek-file",		"kmsd",	"kek_file",	"key-encryption key file (0600; made if absent)" },
	{ "metrics-listen",	"kmsd",	"metrics_listen", "plain-HTTP /healthz and /metrics (off)" },
	{ "metrics-sae",	"kmsd",	"metrics_sae",	"client CN also served /healthz, /metrics on the API port (none)" },
	{ "ready-file",		"kmsd",	"ready_file",	"write api_port= (and more) here when up" },
	{ "log-level",		"kmsd",	"log_level",	"error, warn, info or debug (info)" },
	{ "max-key-per-request", "kmsd", "max_key_per_request", "keys per local request (1024)" },
	{ "mode",		"upstream", "mode",	"hardware (a KME at --upstream) or simulator" },
	{ "upstream",		"upstream", "url",	"the KME, https://HOST:PORT" },
	{ "upstream-ca",	"upstream", "ca",	"CA of the KME's certificate (default: --ca)" },
	{ "upstream-timeout-ms", "upstream", "timeout_ms", "per KME call (3000)" },
	{ "simulator-config",	"upstream", "simulator_config", "qkd-sim config of the embedded KME" },
	{ "pool-low",		"pool",	"low",		"refill below this many keys per pair (256)" },
	{ "pool-high",		"pool",	"high",		"refill up to this many (1024)" },
	{ "pool-ttl-s",		"pool",	"ttl_s",	"drop pooled keys older than this (3600)" },
};
#define NFLAGS	(sizeof(kmsd_flags) / sizeof(kmsd_flags[0]))

static void
usage(FILE *f)
{
	fprintf(f, "usage: kmsd --config FILE [options]\n"
	    "       kmsd --check-config FILE\n\n"
	    "Per-site key daemon: ETSI GS QKD 014 with mutual TLS for local SAEs,\n"
	    "a prefetched encrypted key pool, and the site's KME behind it.\n"
	    "Flags override the config file (INI: [kmsd], [upstream], [pool],\n"
	    "[sae ID] cert/key/peers/pool, [sae_map]). See kmsd/README.md.\n\n");
	cfg_flags_usage(f, kmsd_flags, NFLAGS);
	fprintf(f, "\nsignals: SIGTERM/SIGINT stop, SIGHUP reloads the ACL and "
	    "certificates\n");
}

static int
kmsd_setter(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	return kmsd_config_set(ctx, section, name, value, err, errlen);
}

struct kmsd_args {
	struct cfg_args	  a;
	int		  argc;
	char		**argv;
};

/* The config file, then the flags on top; used at start and on SIGHUP. */
static int
load_config(const struct kmsd_args *ka, struct kmsd_config *c, char *err,
    size_t errlen)
{
	kmsd_config_defaults(c);
	if (ka->a.file && kmsd_config_load(c, ka->a.file, err, errlen) == -1)
		return -1;
	if (cfg_args_apply(ka->argc, ka->argv, kmsd_flags, NFLAGS, kmsd_setter, c,
	    err, errlen) == -1)
		return -1;
	return kmsd_config_finish(c, err, errlen);
}

static int
parse_args(int argc, char **argv, struct kmsd_args *ka)
{
	ka->argc = argc;
	ka->argv = argv;
	if (cfg_args_scan("kmsd", argc, argv, kmsd_flags, NFLAGS, &ka->a) == -1) {
		usage(stderr);
		return -1;
	}
	if (ka->a.help) {
		usage(stdout);
		exit(0);
	}
	return 0;
}

static int
write_ready(const char *path, uint16_t api, uint16_t ops, uint16_t kme)
{
	char	tmp[4096];
	FILE	*f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "api_port=%u\nmetrics_port=%u\nkme_port=%u\npid=%ld\n", api, ops,
	    kme, (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

static struct upstream_id *
upstream_ids(const struct kmsd_config *c)
{
	struct upstream_id	*ids;

	if ((ids = calloc(c->nsaes, sizeof(*ids))) == NULL)
		return NULL;
	for (size_t i = 0; i < c->nsaes; i++) {
		char	why[TLSID_WHYLEN];

		ids[i].sae = c->saes[i].id;
		ids[i].cert = c->saes[i].cert;
		ids[i].key = c->saes[i].key;
		if (tlsid_cert_is(ids[i].cert, c->ca, ids[i].sae, why,
		    sizeof(why)) == 1)
			log_warn("[sae %s] cert %s has CN \"%s\" and is issued by "
			    "[kmsd] ca, the CA of the local SAEs: the KME cannot "
			    "tell kmsd from the SAE itself, which could call the "
			    "KME around kmsd's ACL; give kmsd its own certificate "
			    "(kmsd/README.md, Identities)", ids[i].sae,
			    ids[i].cert, ids[i].sae);
	}
	return ids;
}

static struct httpd *
api_listen(struct kmsd *k, const struct kmsd_config *c, uint16_t port,
    char *err, size_t errlen)
{
	struct httpd_cfg	hc;

	memset(&hc, 0, sizeof(hc));
	hc.host = c->listen_host;
	hc.port = port;
	hc.cert_file = c->cert;
	hc.key_file = c->key;
	hc.ca_file = c->ca;
	hc.max_body = c->max_body;
	hc.lim = c->http;
	hc.name = "api";
	return httpd_start(&hc, kmsd_api_handle, k, err, errlen);
}

/* SIGHUP: a new ACL, new upstream certificates, a new server certificate. */
static void
reload(struct kmsd *k, const struct kmsd_args *a, struct httpd **api)
{
	struct kmsd_config	*nc, *old;
	struct upstream_id	*ids = NULL;
	struct httpd		*napi;
	char			 err[512];
	uint16_t		 port = httpd_port(*api);

	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		return;
	if (load_config(a, nc, err, sizeof(err)) == -1) {
		log_err("SIGHUP: config not reloaded: %s", err);
		goto fail;
	}
	if ((ids = upstream_ids(nc)) == NULL ||
	    upstream_reload(k->up, ids, nc->nsaes, err, sizeof(err)) == -1) {
		log_err("SIGHUP: upstream identities not reloaded: %s", err);
		goto fail;
	}
	/* The server certificate: a new listener on the same port (the
	 * listeners use SO_REUSEPORT), then the old one goes. */
	if ((napi = api_listen(k, nc, port, err, sizeof(err))) == NULL) {
		log_err("SIGHUP: new server certificate not loaded, keeping the "
		    "old listener: %s", err);
		napi = *api;
	} else
		httpd_stop(*api);
	pthread_rwlock_wrlock(&k->cfg_lock);
	old = k->cfg;
	k->cfg = nc;
	pthread_rwlock_unlock(&k->cfg_lock);
	*api = napi;
	kmsd_config_free(old);
	free(old);
	free(ids);
	log_info("SIGHUP: ACL, SAE certificates and server certificate reloaded");
	return;
fail:
	free(ids);
	kmsd_config_free(nc);
	free(nc);
}

/*
 * A graceful stop: new ETSI calls get 503, the ones being handled finish
 * (up to DRAIN_MS), and their answers get DRAIN_FLUSH_MS to be written
 * before the listener closes; then pool_close puts the unserved leases back.
 */
#define DRAIN_MS	5000
#define DRAIN_FLUSH_MS	200
static void
drain(struct kmsd *k)
{
	int	i, n;

	atomic_store(&k->stopping, 1);
	for (i = 0; (n = atomic_load(&k->inflight)) > 0 && i < DRAIN_MS / 10;
	    i++)
		time_sleep_ns(10 * 1000000ull);
	if (n > 0)
		log_warn("stopping with %d requests still being handled", n);
	time_sleep_ns(DRAIN_FLUSH_MS * 1000000ull);
}

/* Simulator mode: the site's KME runs inside kmsd, reached over HTTPS. */
static struct sim *
start_sim(struct kmsd_config *c, struct sim_config *sc, char *err, size_t errlen)
{
	struct sim	*s;
	char		 url[128], e2[400];

	sim_config_defaults(sc);
	if (sim_config_load(sc, c->sim_config, e2, sizeof(e2)) == -1 ||
	    sim_config_finish(sc, e2, sizeof(e2)) == -1) {
		snprintf(err, errlen, "simulator_config: %s", e2);
		return NULL;
	}
	if ((s = sim_start(sc, err, errlen)) == NULL)
		return NULL;
	snprintf(url, sizeof(url), "https://%s:%u", sc->listen_host, sim_api_port(s));
	free(c->url);
	c->url = strdup(url);
	return s;
}

int
main(int argc, char **argv)
{
	struct kmsd		 k;
	struct kmsd_args	 args;
	struct kmsd_config	*c;
	struct sim_config	 sc;
	struct sim		*sim = NULL;
	struct httpd		*api = NULL, *opsd = NULL;
	struct upstream_id	*ids = NULL;
	struct upstream_cfg	 uc;
	struct pool_cfg		 pc;
	struct httpd_cfg	 hc;
	enum log_level		 lvl = LOG_INFO;
	sigset_t		 set;
	char			 err[512];
	int			 sig, ret = 1;

	memset(&k, 0, sizeof(k));
	memset(&sc, 0, sizeof(sc));
	pthread_rwlock_init(&k.cfg_lock, NULL);
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	log_init("kmsd", LOG_INFO);
	if ((c = k.cfg = calloc(1, sizeof(*c))) == NULL)
		return 1;
	if (parse_args(argc, argv, &args) == -1)
		goto done;
	if (load_config(&args, c, err, sizeof(err)) == -1) {
		fprintf(stderr, "kmsd: config: %s\n", err);
		goto done;
	}
	if (c->log_level && log_level_parse(c->log_level, &lvl) == -1) {
		fprintf(stderr, "kmsd: config: log_level \"%s\" is not one of "
		    "error, warn, info, debug\n", c->log_level);
		goto done;
	}
	if (args.a.check_only) {
		printf("kmsd: config is valid\n");
		ret = 0;
		goto done;
	}
	log_init(c->id, lvl);
	sec_json_init();
	sec_harden();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (c->simulator && (sim = start_sim(c, &sc, err, sizeof(err))) == NULL) {
		log_err("cannot start the embedded KME: %s", err);
		goto done;
	}
	memset(&pc, 0, sizeof(pc));
	pc.db_path = c->db;
	pc.kek_file = c->kek_file;
	pc.key_bytes = c->key_size / 8;
	pc.lease_size = c->pool_lease;
	pc.ttl_s = c->pool_ttl_s;
	if ((k.pool = pool_open(&pc, err, sizeof(err))) == NULL) {
		log_err("cannot open the key pool: %s", err);
		goto done;
	}
	kmsd_pool_metrics(&k);
	if ((ids = upstream_ids(c)) == NULL)
		goto done;
	memset(&uc, 0, sizeof(uc));
	uc.url = c->url;
	uc.ca = c->up_ca;
	uc.timeout_ms = c->timeout_ms;
	uc.ids = ids;
	uc.nids = c->nsaes;
	uc.conns_per_id = c->connections;
	if ((k.up = upstream_new(&uc, err, sizeof(err))) == NULL) {
		log_err("cannot set up the KME client: %s", err);
		goto done;
	}
	if ((api = api_listen(&k, c, c->listen_port, err, sizeof(err))) == NULL) {
		log_err("cannot start the API: %s", err);
		goto done;
	}
	if (c->metrics_set) {
		memset(&hc, 0, sizeof(hc));
		hc.host = c->metrics_host;
		hc.port = c->metrics_port;
		hc.name = "metrics";
		if ((opsd = httpd_start(&hc, kmsd_ops_handle, &k, err,
		    sizeof(err))) == NULL) {
			log_err("cannot start the metrics listener: %s", err);
			goto done;
		}
	}
	if (kmsd_refill_start(&k) == -1)
		goto done;
	log_info("ETSI 014 API on https://%s:%u for %zu local SAE(s); KME %s (%s "
	    "mode); pool %s", c->listen_host, httpd_port(api), c->nsaes,
	    c->url, c->simulator ? "simulator" : "hardware", c->db);
	if (opsd)
		log_info("/healthz and /metrics on http://%s:%u", c->metrics_host,
		    httpd_port(opsd));
	if (c->ready_file && write_ready(c->ready_file, httpd_port(api),
	    opsd ? httpd_port(opsd) : 0, sim ? sim_api_port(sim) : 0) == -1) {
		log_err("cannot write ready file \"%s\"", c->ready_file);
		goto done;
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&k, &args, &api);
			continue;
		}
		log_info("%s: stopping", strsignal(sig));
		drain(&k);
		break;
	}
	ret = 0;
done:
	kmsd_refill_stop(&k);
	httpd_stop(api);
	httpd_stop(opsd);
	upstream_free(k.up);
	pool_close(k.pool);
	sim_stop(sim);
	sim_config_free(&sc);
	free(ids);
	kmsd_config_free(k.cfg);
	free(k.cfg);
	return ret;
}

/* kmsd: the per-site key daemon in front of the site's KME. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/daemon.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/tlsid.h"
#include "kmsd/kmsd.h"
#include "simulator/sim.h"

static struct upstream_id *
upstream_ids(const struct kmsd_config *c)
{
	struct upstream_id *ids;

	if ((ids = calloc(c->nsaes, sizeof(*ids))) == NULL)
		return NULL;
	for (size_t i = 0; i < c->nsaes; i++) {
		char why[TLSID_WHYLEN];

		ids[i].sae = c->saes[i].id;
		ids[i].cert = c->saes[i].cert;
		ids[i].key = c->saes[i].key;
		if (tlsid_cert_is(ids[i].cert, c->ca, ids[i].sae, why,
			sizeof(why)) == 1)
			log_warn(
			    "[sae %s] cert %s has CN \"%s\" and is issued by "
			    "[kmsd] ca, the CA of the local SAEs: the KME cannot "
			    "tell kmsd from the SAE itself, which could call the "
			    "KME around kmsd's ACL; give kmsd its own certificate "
			    "(kmsd/README.md, Identities)",
			    ids[i].sae, ids[i].cert, ids[i].sae);
	}
	return ids;
}

static struct httpd *
api_listen(struct kmsd *k, const struct kmsd_config *c, uint16_t port,
    char *err, size_t errlen)
{
	struct httpd_cfg hc = daemon_api_cfg(c->listen_host, port, c->cert,
	    c->key, c->ca, c->max_body, &c->http);

	return httpd_start(&hc, kmsd_api_handle, k, err, errlen);
}

/* What runs: the listeners, the embedded KME, the command line (reload). */
struct kmsd_run {
	struct kmsd	    k;
	struct cfg_cmd	    cmd;
	struct sim_config   sc;
	struct sim	   *sim;
	struct httpd	   *api, *opsd;
	struct upstream_id *ids;
};

/* SIGHUP: a new ACL, new upstream certificates, a new server certificate. */
static void
reload(void *ctx)
{
	struct kmsd_run	   *r = ctx;
	struct kmsd	   *k = &r->k;
	struct httpd	  **api = &r->api;
	struct kmsd_config *nc, *old;
	struct upstream_id *ids = NULL;
	struct httpd	   *napi;
	char		    err[512];
	uint16_t	    port = httpd_port(*api);

	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		return;
	if (cfg_build(&kmsd_cfg_table, nc, r->cmd.file, &r->cmd, err,
		sizeof(err)) == -1) {
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
		log_err(
		    "SIGHUP: new server certificate not loaded, keeping the "
		    "old listener: %s",
		    err);
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
	log_info(
	    "SIGHUP: ACL, SAE certificates and server certificate reloaded");
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
#define DRAIN_MS       5000
#define DRAIN_FLUSH_MS 200
static void
drain(struct kmsd *k)
{
	int i, n;

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
start_sim(struct kmsd_config *c, struct sim_config *sc, char *err,
    size_t errlen)
{
	struct sim *s;
	char	    url[128], e2[400];

	if (cfg_build(&sim_cfg_table, sc, c->sim_config, NULL, e2,
		sizeof(e2)) == -1) {
		snprintf(err, errlen, "simulator_config: %s", e2);
		return NULL;
	}
	if ((s = sim_start(sc, err, errlen)) == NULL)
		return NULL;
	snprintf(url, sizeof(url), "https://%s:%u", sc->listen_host,
	    sim_api_port(s));
	free(c->url);
	c->url = strdup(url);
	return s;
}

static int
open_pool(struct kmsd *k, const struct kmsd_config *c, char *err, size_t errlen)
{
	struct pool_cfg pc;

	memset(&pc, 0, sizeof(pc));
	pc.db_path = c->db;
	pc.kek_file = c->kek_file;
	pc.key_bytes = c->key_size / 8;
	pc.lease_size = c->pool_lease;
	pc.ttl_s = c->pool_ttl_s;
	pc.pg_conninfo = c->pool_pg ? c->pg_conninfo : NULL;
	pc.instance = c->id;
	if ((k->pool = pool_open(&pc, err, errlen)) == NULL)
		return -1;
	kmsd_pool_metrics(k);
	return 0;
}

static int
open_upstream(struct kmsd_run *r, const struct kmsd_config *c, char *err,
    size_t errlen)
{
	struct upstream_cfg uc;

	if ((r->ids = upstream_ids(c)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&uc, 0, sizeof(uc));
	uc.url = c->url;
	uc.ca = c->up_ca;
	uc.timeout_ms = c->timeout_ms;
	uc.ids = r->ids;
	uc.nids = c->nsaes;
	uc.conns_per_id = c->connections;
	r->k.up = upstream_new(&uc, err, errlen);
	return r->k.up == NULL ? -1 : 0;
}

/* The API, and the plain-HTTP /healthz and /metrics if asked for. */
static int
open_listeners(struct kmsd_run *r, const struct kmsd_config *c)
{
	struct httpd_cfg hc;
	char		 err[512];

	if ((r->api = api_listen(&r->k, c, c->listen_port, err, sizeof(err))) ==
	    NULL) {
		log_err("cannot start the API: %s", err);
		return -1;
	}
	if (!c->metrics_set)
		return 0;
	memset(&hc, 0, sizeof(hc));
	hc.host = c->metrics_host;
	hc.port = c->metrics_port;
	hc.name = "metrics";
	if ((r->opsd = httpd_start(&hc, kmsd_ops_handle, &r->k, err,
		 sizeof(err))) == NULL) {
		log_err("cannot start the metrics listener: %s", err);
		return -1;
	}
	return 0;
}

/* The embedded KME, the pool, the KME client, the listeners, the refill. */
static int
start(struct kmsd_run *r)
{
	struct kmsd_config *c = r->k.cfg;
	char		    err[512];

	if (c->simulator &&
	    (r->sim = start_sim(c, &r->sc, err, sizeof(err))) == NULL) {
		log_err("cannot start the embedded KME: %s", err);
		return -1;
	}
	if (open_pool(&r->k, c, err, sizeof(err)) == -1) {
		log_err("cannot open the key pool: %s", err);
		return -1;
	}
	if (open_upstream(r, c, err, sizeof(err)) == -1) {
		log_err("cannot set up the KME client: %s", err);
		return -1;
	}
	if (open_listeners(r, c) == -1 || kmsd_refill_start(&r->k) == -1)
		return -1;
	return 0;
}

/* Says where kmsd listens, in the log and in the ready file. */
static int
announce(struct kmsd_run *r)
{
	const struct kmsd_config *c = r->k.cfg;

	log_info(
	    "ETSI 014 API on https://%s:%u for %zu local SAE(s); KME %s (%s "
	    "mode); pool %s",
	    c->listen_host, httpd_port(r->api), c->nsaes, c->url,
	    c->simulator ? "simulator" : "hardware",
	    c->pool_pg ? "in PostgreSQL" : c->db);
	if (r->opsd)
		log_info("/healthz and /metrics on http://%s:%u",
		    c->metrics_host, httpd_port(r->opsd));
	if (c->ready_file &&
	    daemon_ready(c->ready_file,
		"api_port=%u\n"
		"metrics_port=%u\nkme_port=%u\n",
		httpd_port(r->api), r->opsd ? httpd_port(r->opsd) : 0,
		r->sim ? sim_api_port(r->sim) : 0) == -1) {
		log_err("cannot write ready file \"%s\"", c->ready_file);
		return -1;
	}
	return 0;
}

static void
stop(struct kmsd_run *r)
{
	kmsd_refill_stop(&r->k);
	httpd_stop(r->api);
	httpd_stop(r->opsd);
	upstream_free(r->k.up);
	pool_close(r->k.pool);
	sim_stop(r->sim);
	sim_config_free(&r->sc);
	free(r->ids);
	kmsd_config_free(r->k.cfg);
	free(r->k.cfg);
}

int
main(int argc, char **argv)
{
	static struct kmsd_run r;
	sigset_t	       set;
	int		       rc, ret = 1;

	pthread_rwlock_init(&r.k.cfg_lock, NULL);
	pthread_mutex_init(&r.k.mu, NULL);
	pthread_cond_init(&r.k.cv, NULL);
	log_init("kmsd", LOG_INFO);
	if ((r.k.cfg = calloc(1, sizeof(*r.k.cfg))) == NULL)
		return 1;
	if ((rc = cfg_main(&kmsd_cfg_table, r.k.cfg, argc, argv, &r.cmd)) ==
		-1 ||
	    cfg_cmd_done(&r.cmd)) {
		ret = rc == -1 ? 1 : 0;
		goto done;
	}
	daemon_start(r.k.cfg->id, r.k.cfg->log_level, &set);
	if (start(&r) == -1 || announce(&r) == -1)
		goto done;
	daemon_wait(&set, reload, &r);
	drain(&r.k);
	ret = 0;
done:
	stop(&r);
	return ret;
}

/*
 * Start and stop one simulated KME: its key logic, its HTTPS API and, if
 * configured, a plain-HTTP /metrics listener for operators.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/daemon.h"
#include "common/httpd.h"
#include "common/log.h"
#include "simulator/api.h"
#include "simulator/kme.h"
#include "simulator/sim.h"

struct sim {
	struct kme   *kme;
	struct httpd *httpd;
	struct httpd *ops; /* /metrics, or NULL */
	struct api    api;
};

/* Prometheus text of the key store's gauges and counters. */
static int
sim_metrics(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct sim     *s = ctx;
	struct kme_info i;
	char		b[2048];

	if (strcmp(req->path, "/metrics") != 0)
		return httpd_error(resp, 404,
		    "unknown path: this listener "
		    "serves /metrics",
		    NULL);
	if (strcmp(req->method, "GET") != 0)
		return httpd_error(resp, 405, "method not allowed here (GET)",
		    NULL);
	kme_get_info(s->kme, &i);
	snprintf(b, sizeof(b),
	    "# HELP qkdsim_link_up 1 if the QKD link to the peer KME is up.\n"
	    "# TYPE qkdsim_link_up gauge\nqkdsim_link_up %d\n"
	    "# HELP qkdsim_stored_keys Keys of key_size ready to assign.\n"
	    "# TYPE qkdsim_stored_keys gauge\nqkdsim_stored_keys %u\n"
	    "# HELP qkdsim_assigned_keys Assigned keys waiting here for a slave SAE.\n"
	    "# TYPE qkdsim_assigned_keys gauge\nqkdsim_assigned_keys %zu\n"
	    "# HELP qkdsim_keys_expired_total Assigned keys wiped unfetched after key_ttl_s.\n"
	    "# TYPE qkdsim_keys_expired_total counter\n"
	    "qkdsim_keys_expired_total %llu\n"
	    "# HELP qkdsim_keys_tampered_total Stored records refused because they do not authenticate.\n"
	    "# TYPE qkdsim_keys_tampered_total counter\n"
	    "qkdsim_keys_tampered_total %llu\n"
	    "# HELP qkdsim_assign_refused_total Key assignments refused here: a master/slave pair had max_keys_per_pair keys waiting.\n"
	    "# TYPE qkdsim_assign_refused_total counter\n"
	    "qkdsim_assign_refused_total{reason=\"pair_cap\"} %llu\n",
	    i.link_up, i.stored_key_count, i.assigned,
	    (unsigned long long)i.expired, (unsigned long long)i.tampered,
	    (unsigned long long)i.refused_full);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body = strdup(b);
	return resp->body ? 0 : -1;
}

static void
sim_kme_cfg(const struct sim_config *c, struct kme_cfg *k)
{
	memset(k, 0, sizeof(*k));
	k->kme_id = c->id;
	k->sae_ids = (const char **)(uintptr_t)c->saes;
	k->n_sae = c->nsaes;
	k->key_size = c->key_size;
	k->max_key_count = c->max_key_count;
	k->db_path = c->db;
	k->kek_file = c->kek_file;
	k->key_ttl_s = c->key_ttl_s;
	k->max_keys_per_pair = c->max_keys_per_pair;
	k->transmitter = c->transmitter;
	k->key_rate = c->key_rate;
	k->link_timeout_ms = c->link_timeout_ms;
	if (c->link_listen_set) {
		k->link.listen_host = c->link_listen_host;
		k->link.listen_port = c->link_listen_port;
	} else {
		k->link.peer_host = c->link_peer_host;
		k->link.peer_port = c->link_peer_port;
	}
	k->link.cert = c->cert;
	k->link.key = c->key;
	k->link.ca_file = c->ca;
	k->link.peer_id = c->peer_id;
}

struct sim *
sim_start(const struct sim_config *c, char *err, size_t errlen)
{
	struct sim	*s;
	struct kme_cfg	 kc;
	struct httpd_cfg hc;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sim_kme_cfg(c, &kc);
	if ((s->kme = kme_start(&kc, err, errlen)) == NULL)
		goto fail;
	s->api.kme = s->kme;
	s->api.kme_id = c->id;
	s->api.lim.key_size = c->key_size;
	s->api.lim.min_key_size = c->min_key_size;
	s->api.lim.max_key_size = c->max_key_size;
	s->api.lim.max_key_per_request = c->max_key_per_request;
	s->api.lim.max_sae_id_count = c->max_sae_id_count;
	s->api.max_key_count = c->max_key_count;
	s->api.map = c->map;
	s->api.nmap = c->nmap;
	s->api.map_only = c->map_only;
	hc = daemon_api_cfg(c->listen_host, c->listen_port, c->cert, c->key,
	    c->ca, c->max_body, &c->http);
	if ((s->httpd = httpd_start(&hc, api_handle, &s->api, err, errlen)) ==
	    NULL)
		goto fail;
	if (c->metrics_set) {
		memset(&hc, 0, sizeof(hc));
		hc.host = c->metrics_host;
		hc.port = c->metrics_port;
		hc.max_body = 1024;
		hc.name = "metrics";
		if ((s->ops = httpd_start(&hc, sim_metrics, s, err, errlen)) ==
		    NULL)
			goto fail;
		log_info("/metrics on http://%s:%u", c->metrics_host,
		    httpd_port(s->ops));
	}
	log_info("ETSI 014 API on https://%s:%u, QKD link %s %s:%u, peer %s, "
		 "%s, %zu SAE(s), storage %s",
	    c->listen_host, httpd_port(s->httpd),
	    c->link_listen_set ? "listening on" : "to",
	    c->link_listen_set ? c->link_listen_host : c->link_peer_host,
	    c->link_listen_set ? kme_link_port(s->kme) : c->link_peer_port,
	    c->peer_id, c->transmitter ? "transmitter" : "receiver", c->nsaes,
	    c->db ? c->db : "memory");
	return s;
fail:
	sim_stop(s);
	return NULL;
}

void
sim_stop(struct sim *s)
{
	if (s == NULL)
		return;
	httpd_stop(s->ops);
	httpd_stop(s->httpd);
	kme_stop(s->kme);
	free(s);
}

uint16_t
sim_api_port(const struct sim *s)
{
	return httpd_port(s->httpd);
}

uint16_t
sim_metrics_port(const struct sim *s)
{
	return s->ops ? httpd_port(s->ops) : 0;
}

uint16_t
sim_link_port(const struct sim *s)
{
	return kme_link_port(s->kme);
}

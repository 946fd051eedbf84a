/*
 * kmsd's southbound side: ETSI 014 calls to the site's KME (a Clavis XGR,
 * any ETSI 014 KME, or qkd-sim) on behalf of local SAEs. Each local SAE has
 * its own client certificate upstream (a real KMS knows each SAE by its
 * certificate); each identity keeps a few persistent TLS connections
 * (libkmsclient handles), HTTP/1.1, with a timeout on every call.
 *
 * The KME's Status limits (max_key_per_request, min/max_key_size, key_size)
 * are read and obeyed: a request for more keys than the KME allows per call
 * is split into as many calls as needed and answered as one Key container.
 * Thread-safe.
 */
#ifndef KMSD_UPSTREAM_H
#define KMSD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"

struct upstream;

/* The certificate kmsd presents upstream when acting for one local SAE. */
struct upstream_id {
	const char *sae;
	const char *cert;
	const char *key;
};

struct upstream_cfg {
	const char		 *url;	      /* https://host:port of the KME */
	const char		 *ca;	      /* CA of the KME's server cert */
	long			  timeout_ms; /* per call */
	const struct upstream_id *ids;
	size_t			  nids;
	unsigned conns_per_id; /* persistent connections (e.g. 4) */
};

/* An upstream failure, for the northbound answer and the logs. */
struct up_err {
	int  status; /* HTTP status from the KME, or 0 for transport */
	int  kms;    /* enum kms_err */
	char message[ETSI_ERRLEN];
	char detail[ETSI_ERRLEN];
};

struct upstream	     *
upstream_new(const struct upstream_cfg *cfg, char *err, size_t errlen);
void upstream_free(struct upstream *u); /* NULL ok */

/* Replace the identities (SIGHUP: new certificates); open calls finish. */
int upstream_reload(struct upstream *u, const struct upstream_id *ids,
    size_t nids, char *err, size_t errlen);

/* Status for (master, slave), through master's identity; caches the limits. */
int upstream_status(struct upstream *u, const char *master, const char *slave,
    struct etsi_status *out, struct up_err *e);

/*
 * enc_keys as master for slave (additional slaves, size, extensions as in
 * req), split by the KME's max_key_per_request. 0, or -1 with e filled.
 * If a later part fails, the keys of the earlier parts are wiped and lost:
 * never handed out, never kept.
 */
int upstream_enc(struct upstream *u, const char *master, const char *slave,
    const struct etsi_key_req *req, struct etsi_keys *out, struct up_err *e);

/* dec_keys for caller (the slave) from master, split likewise. */
int upstream_dec(struct upstream *u, const char *caller, const char *master,
    const struct etsi_key_ids *ids, struct etsi_keys *out, struct up_err *e);

/* Whether the last call (or status probe) reached the KME. */
bool upstream_reachable(struct upstream *u);

#endif

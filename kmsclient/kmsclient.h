/*
 * ETSI GS QKD 014 client (libcurl, OpenSSL flavour): Get status, Get key
 * (enc_keys) and Get key with key IDs (dec_keys), against a KME, qkd-sim or
 * kmsd.
 *
 * One client = one curl easy handle = one kept-alive HTTP/1.1 connection,
 * mutual TLS with hostname verification. A client is used by one thread at
 * a time (no internal locking); use one client per thread.
 *
 * Every call returns KMS_OK or a kms_err; after an error, kms_last_status(),
 * kms_last_message() and kms_last_detail() tell what happened: the KME's
 * Error body ({"message", "details"}) for refusals, curl's error text for
 * transport errors. These never hold key material. Keys come back in
 * struct etsi_keys (sec_alloc memory): release them with etsi_keys_free().
 * The process should call sec_json_init() once (kms_client_new does not,
 * since it changes Jansson's allocator for the whole process); a program
 * linked with the shared libkmsclient calls kms_json_secure() instead.
 *
 * Installed (make install): this header and common/etsi.h under
 * $(includedir)/qkd-ipsec, libkmsclient.so.1 (kmsclient/libkmsclient.map
 * lists what it exports), and kmsclient.pc: `pkg-config --cflags --libs
 * kmsclient`, then #include <kmsclient/kmsclient.h>.
 */
#ifndef KMSCLIENT_KMSCLIENT_H
#define KMSCLIENT_KMSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/etsi.h"

#define KMS_MAX_RESPONSE       (4u << 20) /* answer body cap, bytes */
#define KMS_DEFAULT_TIMEOUT_MS 10000

struct kms_client;

struct kms_client_cfg {
	const char *url;  /* https://host:port */
	const char *cert; /* client certificate, PEM; NULL: none */
	const char *key;  /* its private key, PEM */
	const char
	    *ca; /* CA file the server must chain to; NULL: system store */
	long timeout_ms; /* whole-call limit; 0: KMS_DEFAULT_TIMEOUT_MS */
	bool allow_http; /* accept http:// (keys in clear: tests only) */
};

enum kms_err {
	KMS_OK = 0,
	KMS_E_ARG, /* bad argument (invalid SAE ID, key ID, URL) */
	KMS_E_NOMEM,
	KMS_E_CONNECT, /* could not connect, connection lost */
	KMS_E_TLS,     /* handshake or certificate verification failed */
	KMS_E_TIMEOUT,
	KMS_E_BADREQ,  /* HTTP 400 */
	KMS_E_UNAUTH,  /* HTTP 401 */
	KMS_E_UNAVAIL, /* HTTP 503 */
	KMS_E_HTTP,    /* any other non-200 status */
	KMS_E_PROTO,   /* malformed or inconsistent answer */
};

/* NULL on error, with a reason in err. Does not connect yet. */
struct kms_client      *
kms_client_new(const struct kms_client_cfg *cfg, char *err, size_t errlen);
void kms_client_free(struct kms_client *c); /* NULL ok */

/* GET /api/v1/keys/{slave_sae}/status */
int kms_status(struct kms_client *c, const char *slave_sae,
    struct etsi_status *out);
/* POST /api/v1/keys/{slave_sae}/enc_keys; req NULL means {} (one key of the
 * KME's default size). Checks that req->number keys (of req->size bits when
 * given) came back. */
int kms_enc_keys(struct kms_client *c, const char *slave_sae,
    const struct etsi_key_req *req, struct etsi_keys *out);
/* GET /api/v1/keys/{slave_sae}/enc_keys?number=&size=; 0 leaves one out. */
int kms_enc_keys_get(struct kms_client *c, const char *slave_sae,
    unsigned number, unsigned size, struct etsi_keys *out);
/* POST /api/v1/keys/{master_sae}/dec_keys; checks that exactly the asked
 * key IDs came back (in any order). */
int kms_dec_keys(struct kms_client *c, const char *master_sae,
    const struct etsi_key_ids *ids, struct etsi_keys *out);
/* GET /api/v1/keys/{master_sae}/dec_keys?key_ID= */
int kms_dec_keys_get(struct kms_client *c, const char *master_sae,
    const char *key_id, struct etsi_keys *out);

const char *kms_strerror(int err);
/* sec_json_init() for programs that see only this header: once per
 * process, before the first client. */
void	    kms_json_secure(void);
/* HTTP reason phrase of the statuses a KME answers, e.g. "Bad Request";
 * NULL for others. */
const char *kms_http_reason(int status);
/* About the last call: HTTP status (0 if none), message, detail ("" if none). */
int	    kms_last_status(const struct kms_client *c);
const char *kms_last_message(const struct kms_client *c);
const char *kms_last_detail(const struct kms_client *c);

#endif
